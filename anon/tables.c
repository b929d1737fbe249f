/*
 * tables.c - lookups in the PS3.15 tables that tools/gen_tables.c
 * generates into tables_data.c. Every table is sorted by its key at build
 * time; each search here is a binary search over it.
 */
#include "tables.h"

#include <string.h>

static const char *const code_names[ANON_CODES] = {
    [ANON_CODE_NONE] = "",
    [ANON_CODE_D] = "D",
    [ANON_CODE_Z] = "Z",
    [ANON_CODE_X] = "X",
    [ANON_CODE_K] = "K",
    [ANON_CODE_C] = "C",
    [ANON_CODE_U] = "U",
    [ANON_CODE_XZ] = "X/Z",
    [ANON_CODE_XD] = "X/D",
    [ANON_CODE_ZD] = "Z/D",
    [ANON_CODE_XZD] = "X/Z/D",
    [ANON_CODE_XZU] = "X/Z/U*",
};

/* The options' names as the section titles of PS3.15 E.3 write them. */
static const char *const column_names[ANON_COLUMNS] = {
    [ANON_COL_SAFE_PRIVATE] = "Retain Safe Private Option",
    [ANON_COL_UIDS] = "Retain UIDs Option",
    [ANON_COL_DEVICE] = "Retain Device Identity Option",
    [ANON_COL_INSTITUTION] = "Retain Institution Identity Option",
    [ANON_COL_PATIENT_CHARS] = "Retain Patient Characteristics Option",
    [ANON_COL_LONG_FULL_DATES] =
        "Retain Longitudinal Temporal Information With Full Dates Option",
    [ANON_COL_LONG_MODIF_DATES] =
        "Retain Longitudinal Temporal Information With Modified Dates Option",
    [ANON_COL_CLEAN_DESC] = "Clean Descriptors Option",
    [ANON_COL_CLEAN_STRUCT] = "Clean Structured Content Option",
    [ANON_COL_CLEAN_GRAPHICS] = "Clean Graphics Option",
};

const char *anon_code_name(anon_code code)
{
    if ((unsigned)code >= ANON_CODES)
        return NULL;
    return code_names[code];
}

const char *anon_column_name(anon_column column)
{
    if ((unsigned)column >= ANON_COLUMNS)
        return NULL;
    return column_names[column];
}

/* ---- Table E.1-1 --------------------------------------------------------- */

const anon_row *anon_table_find(uint32_t tag)
{
    size_t low = 0, high = anon_data_rows_exact_count;
    /* Odd groups are private: only the private row speaks for them, even
     * where a repeating group such as 60XX would match (6001,3000). */
    if (tag & 0x00010000u)
        return NULL;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const anon_row *row = &anon_data_rows[anon_data_rows_exact[mid]];
        if (row->tag == tag)
            return row;
        if (row->tag < tag)
            low = mid + 1;
        else
            high = mid;
    }
    /* The generator refused repeating groups that overlap each other or
     * an exact row, so the first match is the only one. */
    for (size_t i = 0; i < anon_data_rows_masked_count; i++) {
        const anon_row *row = &anon_data_rows[anon_data_rows_masked[i]];
        if (((tag ^ row->tag) & row->mask) == 0)
            return row;
    }
    return NULL;
}

const anon_row *anon_table_private_row(void)
{
    return &anon_data_rows[anon_data_row_private];
}

const anon_row *anon_table_rows(size_t *count)
{
    *count = anon_data_row_count;
    return anon_data_rows;
}

/* ---- Table E.3.10-1 ------------------------------------------------------ */

/* Orders row against the key (group, element, creator of creator_len
 * bytes) as the generator sorted the table: creators in strcmp order. */
static int compare_safe_private(const anon_safe_private *row, uint16_t group,
                                uint8_t element, const char *creator,
                                size_t creator_len)
{
    const unsigned char *have = (const unsigned char *)row->creator;
    const unsigned char *want = (const unsigned char *)creator;
    if (row->group != group)
        return row->group < group ? -1 : 1;
    if (row->element != element)
        return row->element < element ? -1 : 1;
    for (size_t i = 0; i < creator_len; i++) {
        if (have[i] != want[i]) /* also when the row's creator ends */
            return have[i] < want[i] ? -1 : 1;
    }
    return have[creator_len] != '\0'; /* the row's creator is longer */
}

const anon_safe_private *anon_safe_private_find(uint16_t group,
                                                uint8_t element,
                                                const char *creator)
{
    size_t low = 0, high = anon_data_safe_private_count, creator_len;
    if (!creator)
        return NULL;
    /* An LO value may carry a padding space; the table's creators have
     * none (the generator trimmed them). */
    creator_len = strlen(creator);
    while (creator_len > 0 && creator[creator_len - 1] == ' ')
        creator_len--;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const anon_safe_private *row = &anon_data_safe_privates[mid];
        int order = compare_safe_private(row, group, element, creator,
                                         creator_len);
        if (order == 0)
            return row;
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

const anon_safe_private *anon_safe_private_rows(size_t *count)
{
    *count = anon_data_safe_private_count;
    return anon_data_safe_privates;
}

/* ---- Table E.3.4-1 ------------------------------------------------------- */

/* Orders row against (code_value, scheme[, value_type]) in the table's
 * order; without value_type, any row of the concept compares equal. */
static int compare_sr(const anon_sr_row *row, const char *code_value,
                      const char *scheme, const char *value_type)
{
    int order = strcmp(row->code_value, code_value);
    if (order == 0)
        order = strcmp(row->scheme, scheme);
    if (order == 0 && value_type)
        order = strcmp(row->value_type, value_type);
    return order;
}

/* Index of the first row not ordered before the key. */
static size_t sr_lower_bound(const char *code_value, const char *scheme,
                             const char *value_type)
{
    size_t low = 0, high = anon_data_sr_row_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (compare_sr(&anon_data_sr_rows[mid], code_value, scheme,
                       value_type) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

const anon_sr_row *anon_sr_find(const char *code_value, const char *scheme,
                                const char *value_type)
{
    size_t i;
    if (!code_value || !scheme || !value_type)
        return NULL;
    i = sr_lower_bound(code_value, scheme, value_type);
    if (i < anon_data_sr_row_count &&
        compare_sr(&anon_data_sr_rows[i], code_value, scheme,
                   value_type) == 0)
        return &anon_data_sr_rows[i];
    return NULL;
}

const anon_sr_row *anon_sr_find_concept(const char *code_value,
                                        const char *scheme, size_t *count)
{
    size_t first, end;
    *count = 0;
    if (!code_value || !scheme)
        return NULL;
    first = sr_lower_bound(code_value, scheme, NULL);
    end = first;
    /* a concept has a handful of value types at most: a short scan */
    while (end < anon_data_sr_row_count &&
           compare_sr(&anon_data_sr_rows[end], code_value, scheme, NULL) == 0)
        end++;
    if (end == first)
        return NULL;
    *count = end - first;
    return &anon_data_sr_rows[first];
}

const anon_sr_row *anon_sr_rows(size_t *count)
{
    *count = anon_data_sr_row_count;
    return anon_data_sr_rows;
}
