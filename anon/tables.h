/*
 * tables.h - private to anon/: the PS3.15 tables the de-identification
 * engine works from, generated at build time from the standard's data in
 * anon/tables/ (see its README.md for how each quirk of the data is read):
 *
 * - Table E.1-1, Application Level Confidentiality Profile Attributes: per
 *   attribute the Basic Profile action and each option's action;
 * - Table E.3.10-1, Safe Private Attributes (Retain Safe Private Option);
 * - Table E.3.4-1, SR content items and their actions (Clean Structured
 *   Content Option).
 *
 * anon/tools/gen_tables.c writes the data into tables_data.c; tables.c
 * searches it. The data is immutable: every function here is safe from any
 * thread, and every pointer returned points into static data (never freed,
 * valid for the life of the program).
 *
 * Tags are uint32_t, group in the high 16 bits, as DCM_TAG() of dicom.h
 * makes them.
 */
#ifndef SIREN_ANON_TABLES_H
#define SIREN_ANON_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PS3.15 Table E.1-1a action codes. The combined codes (Z/D ... X/Z/U*)
 * mean the weaker action unless the attribute's Type in the IOD requires
 * the stronger one; the engine decides, the table only says which. */
typedef enum anon_code {
    ANON_CODE_NONE = 0, /* no entry in this column */
    ANON_CODE_D,        /* replace with a dummy value */
    ANON_CODE_Z,        /* zero length, or a dummy value */
    ANON_CODE_X,        /* remove */
    ANON_CODE_K,        /* keep (sequences are still cleaned) */
    ANON_CODE_C,        /* clean: similar meaning, nothing identifying */
    ANON_CODE_U,        /* a UID consistent within the set */
    ANON_CODE_XZ,       /* X/Z */
    ANON_CODE_XD,       /* X/D */
    ANON_CODE_ZD,       /* Z/D */
    ANON_CODE_XZD,      /* X/Z/D */
    ANON_CODE_XZU,      /* X/Z/U*: the table's asterisk is part of it */
    ANON_CODES          /* how many codes; not a code */
} anon_code;

/* The option columns of Tables E.1-1 and E.3.4-1, in Table E.1-1's order.
 * Table E.3.4-1 has no Safe Private, Structured Content or Graphics
 * column: those are always ANON_CODE_NONE in its rows. */
typedef enum anon_column {
    ANON_COL_SAFE_PRIVATE,
    ANON_COL_UIDS,
    ANON_COL_DEVICE,
    ANON_COL_INSTITUTION,
    ANON_COL_PATIENT_CHARS,
    ANON_COL_LONG_FULL_DATES,
    ANON_COL_LONG_MODIF_DATES,
    ANON_COL_CLEAN_DESC,
    ANON_COL_CLEAN_STRUCT,
    ANON_COL_CLEAN_GRAPHICS,
    ANON_COLUMNS /* how many columns; not a column */
} anon_column;

/* "X/Z/U*", "K", "" for ANON_CODE_NONE; NULL for a value that is not an
 * anon_code. */
const char *anon_code_name(anon_code code);
/* The option's name as PS3.15 E.3 words it, "Retain Safe Private Option";
 * NULL for a value that is not an anon_column. */
const char *anon_column_name(anon_column column);

/* ---- Table E.1-1 --------------------------------------------------------- */

/* One row of Table E.1-1. A tag matches the row when
 * (tag & mask) == (row->tag & mask): mask is 0xFFFFFFFF for one attribute,
 * 0xFF00FFFF for (60XX,3000), 0xFF000000 for (50XX,XXXX) (X digits match
 * anything), 0x00010000 with tag 0x00010000 for the private row (GGGG,EEEE)
 * where GGGG is odd. */
typedef struct anon_row {
    uint32_t tag;
    uint32_t mask;
    const char *tag_text; /* as the table prints it: "(60XX,3000)" */
    const char *name;     /* as the table prints it: "Patient's Name" */
    uint8_t note;         /* N of a "(see Note N)" after the name, else 0 */
    bool in_std_comp_iod; /* "In Std. Comp. IOD": Y */
    uint8_t basic;        /* anon_code: the Basic Profile column */
    uint8_t option[ANON_COLUMNS]; /* anon_code per option column */
} anon_row;

/* The row for a standard attribute: the row for exactly this tag if there
 * is one, else the repeating-group row that covers it ((6002,3000) ->
 * (60XX,3000)); NULL if the table does not list it, and always NULL for a
 * tag in an odd group: private attributes follow anon_table_private_row()
 * (and Table E.3.10-1), never a standard row. O(log n): a binary search,
 * then the three repeating-group rows. */
const anon_row *anon_table_find(uint32_t tag);
/* The row "(GGGG,EEEE) where GGGG is odd", Private Attributes. Never NULL. */
const anon_row *anon_table_private_row(void);
/* Every row, the private row included, in the table's order (by name);
 * *count gets how many. For `siren policy explain` and conformance tests. */
const anon_row *anon_table_rows(size_t *count);

/* ---- Table E.3.10-1 ------------------------------------------------------ */

/* One safe private attribute: element (gggg,xxEE) of whichever block the
 * creator reserved in group gggg. */
typedef struct anon_safe_private {
    uint16_t group;
    uint8_t element;     /* the element's low byte, EE */
    const char *creator; /* no trailing spaces */
    char vr[3];          /* "DS"; "" where the table gives none */
    char vr_alt[3];      /* "OB" for the table's "OW/OB", else "" */
    const char *vm;      /* "1", "1-n" */
    const char *meaning;
} anon_safe_private;

/* The safe private attribute (group, xx element) of creator, or NULL.
 * creator is the dataset's Private Creator value: its trailing spaces (an
 * LO's padding) are ignored; everything else is compared exactly, case
 * included, because PS3.5 7.8.1 identifies a block by the creator's exact
 * value and a near match is not the vendor whose attribute was judged safe.
 * NULL creator: NULL. O(log n). */
const anon_safe_private *anon_safe_private_find(uint16_t group,
                                                uint8_t element,
                                                const char *creator);
/* Every row, ascending by (group, element, creator); *count gets how many. */
const anon_safe_private *anon_safe_private_rows(size_t *count);

/* ---- Table E.3.4-1 ------------------------------------------------------- */

/* One SR content item of Table E.3.4-1: a concept name with a value type.
 * The same concept can appear with several value types and different
 * actions (Source of Measurement: IMAGE D, WAVEFORM X). */
typedef struct anon_sr_row {
    const char *code_value;     /* "121022" */
    const char *scheme;         /* the designator a dataset holds: "NCDR" */
    const char *scheme_version; /* "2.0b" from "NCDR [2.0b]", else NULL */
    const char *meaning;        /* "Accession Number" */
    const char *value_type;     /* "TEXT", "IMAGE", ... (PS3.3 C.17.3) */
    bool retired;               /* "Retd.": Y */
    bool in_std_template;       /* "In Std. Tpl.": Y */
    uint8_t basic;              /* anon_code */
    uint8_t option[ANON_COLUMNS];
} anon_sr_row;

/* The row for concept (code_value, scheme) with this value type, or NULL.
 * Compared exactly; any NULL argument: NULL. O(log n). */
const anon_sr_row *anon_sr_find(const char *code_value, const char *scheme,
                                const char *value_type);
/* The rows for concept (code_value, scheme), whatever the value type:
 * adjacent, ascending by value type; *count gets how many (0 and NULL if
 * the concept is not listed). O(log n). */
const anon_sr_row *anon_sr_find_concept(const char *code_value,
                                        const char *scheme, size_t *count);
/* Every row, ascending by (code value, scheme, value type); *count gets
 * how many. */
const anon_sr_row *anon_sr_rows(size_t *count);

/* ---- the generated data (tables_data.c): for tables.c and its test ------- */

extern const anon_row anon_data_rows[];       /* table order */
extern const size_t anon_data_row_count;
extern const uint16_t anon_data_rows_exact[]; /* indices, ascending tag */
extern const size_t anon_data_rows_exact_count;
extern const uint16_t anon_data_rows_masked[]; /* indices, repeating groups */
extern const size_t anon_data_rows_masked_count;
extern const size_t anon_data_row_private; /* index of the private row */

extern const anon_safe_private anon_data_safe_privates[];
extern const size_t anon_data_safe_private_count;

extern const anon_sr_row anon_data_sr_rows[];
extern const size_t anon_data_sr_row_count;

#endif /* SIREN_ANON_TABLES_H */
