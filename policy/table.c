/* table.c - CSV lookup tables for "replace X with lookup ...".
 *
 * The file is RFC 4180 CSV with a header row naming the columns: fields
 * separated by commas, optionally in double quotes (a quote inside is
 * doubled), lines ending in LF or CRLF, a UTF-8 byte order mark at the
 * start skipped. Unquoted fields lose their surrounding spaces. A key
 * may appear only once: two rows for one patient would make the
 * pseudonym depend on the order of the file.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE_MAX_BYTES (64u << 20)
#define TABLE_MAX_COLUMNS 256
#define TABLE_MAX_FIELD 1024

typedef struct csv {
    const char *p, *end;
    unsigned line;
} csv;

/* Reads one field into buf; *last tells whether it ended its row. */
static int csv_field(csv *in, char *buf, bool *last, char *error, size_t size)
{
    size_t n = 0, kept = 0; /* kept: up to the closing quote, untrimmed */
    bool quoted = false;
    unsigned opened = in->line; /* a quote may run on over line ends */
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t'))
        in->p++;
    if (in->p < in->end && *in->p == '"') {
        quoted = true;
        in->p++;
    }
    for (;;) {
        if (in->p >= in->end) {
            if (quoted) {
                snprintf(error, size, "line %u: quote not closed", opened);
                return -1;
            }
            *last = true;
            break;
        }
        char c = *in->p++;
        if (quoted && c == '"') {
            if (in->p < in->end && *in->p == '"') {
                in->p++;
            } else {
                quoted = false;
                kept = n;
                continue;
            }
        } else if (!quoted && (c == ',' || c == '\n')) {
            *last = c == '\n';
            break;
        } else if (!quoted && c == '\r' && in->p < in->end && *in->p == '\n') {
            continue;
        }
        if (c == '\n')
            in->line++; /* inside quotes */
        if (n + 1 >= TABLE_MAX_FIELD) {
            snprintf(error, size, "line %u: field longer than %d bytes",
                     in->line, TABLE_MAX_FIELD - 1);
            return -1;
        }
        buf[n++] = c;
    }
    while (n > kept && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    return 0;
}

/* Reads a row: up to TABLE_MAX_COLUMNS fields. Returns the field count. */
static int csv_row(csv *in, char fields[][TABLE_MAX_FIELD], char *error,
                   size_t size)
{
    int count = 0;
    bool last = false;
    while (!last) {
        if (count == TABLE_MAX_COLUMNS) {
            snprintf(error, size, "line %u: more than %d columns", in->line,
                     TABLE_MAX_COLUMNS);
            return -1;
        }
        if (csv_field(in, fields[count], &last, error, size) < 0)
            return -1;
        count++;
    }
    in->line++;
    return count;
}

static int find_column(char header[][TABLE_MAX_FIELD], int count,
                       const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(header[i], name) == 0)
            return i;
    return -1;
}

static int compare_rows(const void *a, const void *b, void *keys)
{
    char **k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

/* Sorts keys and values together by key; false on a duplicate key. */
static bool sort_rows(pol_table *t, char *error, size_t size)
{
    /* A header without rows: t->keys and t->values are still NULL, and
     * memcpy to NULL is undefined even for 0 bytes. Every lookup misses. */
    if (t->count == 0)
        return true;
    size_t *order = malloc((t->count ? t->count : 1) * sizeof *order);
    char **keys = malloc((t->count ? t->count : 1) * sizeof *keys);
    char **values = malloc((t->count ? t->count : 1) * sizeof *values);
    bool ok = order && keys && values;
    for (size_t i = 0; ok && i < t->count; i++)
        order[i] = i;
    if (ok)
        qsort_r(order, t->count, sizeof *order, compare_rows, t->keys);
    for (size_t i = 0; ok && i < t->count; i++) {
        keys[i] = t->keys[order[i]];
        values[i] = t->values[order[i]];
        if (i > 0 && strcmp(keys[i - 1], keys[i]) == 0) {
            snprintf(error, size, "key \"%s\" appears twice", keys[i]);
            ok = false;
        }
    }
    if (ok) {
        memcpy(t->keys, keys, t->count * sizeof *keys);
        memcpy(t->values, values, t->count * sizeof *values);
    } else if (!order || !keys || !values) {
        snprintf(error, size, "out of memory");
    }
    free(order);
    free(keys);
    free(values);
    return ok;
}

static bool add_row(pol_table *t, size_t *capacity, const char *key,
                    const char *value)
{
    if (t->count == *capacity) {
        size_t more = *capacity ? *capacity * 2 : 64;
        char **k = realloc(t->keys, more * sizeof *k);
        if (k)
            t->keys = k;
        char **v = realloc(t->values, more * sizeof *v);
        if (v)
            t->values = v;
        if (!k || !v)
            return false;
        *capacity = more;
    }
    t->keys[t->count] = strdup(key);
    t->values[t->count] = strdup(value);
    t->count++; /* counted even if NULL so that table_free frees it */
    return t->keys[t->count - 1] && t->values[t->count - 1];
}

static int load_rows(pol_table *t, csv *in, char fields[][TABLE_MAX_FIELD],
                     const char *key_column, const char *value_column,
                     char *error, size_t size)
{
    int columns = csv_row(in, fields, error, size);
    if (columns < 0)
        return -1;
    int key = key_column ? find_column(fields, columns, key_column) : 0;
    int value = find_column(fields, columns, value_column);
    if (key < 0 || value < 0) {
        snprintf(error, size, "the header has no column \"%s\"",
                 key < 0 ? key_column : value_column);
        return -1;
    }
    size_t capacity = 0;
    while (in->p < in->end) {
        unsigned line = in->line;
        int count = csv_row(in, fields, error, size);
        if (count < 0)
            return -1;
        if (count == 1 && fields[0][0] == '\0')
            continue; /* a blank line */
        if (count <= key || count <= value) {
            snprintf(error, size, "line %u: %d fields, the header has %d",
                     line, count, columns);
            return -1;
        }
        if (fields[key][0] == '\0') {
            snprintf(error, size, "line %u: empty key", line);
            return -1;
        }
        if (!add_row(t, &capacity, fields[key], fields[value])) {
            snprintf(error, size, "out of memory");
            return -1;
        }
    }
    return sort_rows(t, error, size) ? 0 : -1;
}

pol_table *table_load(const char *path, const char *key_column,
                      const char *value_column, EVP_MD_CTX *hash,
                      char *error, size_t error_size)
{
    size_t len;
    char *data = policy_read_file(path, TABLE_MAX_BYTES, &len, error,
                                  error_size);
    if (!data)
        return NULL;
    if (hash)
        policy_hash_part(hash, "table", data, len);
    pol_table *t = calloc(1, sizeof *t);
    /* One row's fields: 256 KiB, too much for a thread's stack. */
    char (*fields)[TABLE_MAX_FIELD] = malloc(TABLE_MAX_COLUMNS *
                                             sizeof *fields);
    csv in = {.p = data, .end = data + len, .line = 1};
    /* Spreadsheets save "CSV UTF-8" with a byte order mark, which would
     * otherwise be part of the first column's name. */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        in.p += 3;
    if (!t || !fields || !(t->path = strdup(path)) ||
        load_rows(t, &in, fields, key_column, value_column, error,
                  error_size) < 0) {
        if (!t || !fields)
            snprintf(error, error_size, "out of memory");
        table_free(t);
        t = NULL;
    }
    free(fields);
    free(data);
    return t;
}

void table_free(pol_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->keys[i]);
        free(t->values[i]);
    }
    free(t->keys);
    free(t->values);
    free(t->path);
    free(t);
}

const char *pol_table_get(const pol_table *table, const char *key)
{
    size_t low = 0, high = table->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int order = strcmp(table->keys[mid], key);
        if (order == 0)
            return table->values[mid];
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}
