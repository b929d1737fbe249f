/*
 * gen_tables.c - siren_gen_anon_tables: builds tables_data.c, the PS3.15
 * tables behind anon/tables.c, from the standard's data in anon/tables/.
 *
 *   siren_gen_anon_tables E1-1.json E3.10-1.csv E3.4-1.csv OUT.c
 *
 * E1-1.json is Table E.1-1 (Application Level Confidentiality Profile
 * Attributes) as innolitics/dicom-standard extracts it: an array of flat
 * objects whose values are strings. E3.10-1.csv (Safe Private Attributes)
 * and E3.4-1.csv (Clean Structured Content) are CSV with a header row,
 * quoted fields and "" for a quote inside one. anon/tables/README.md says
 * what each value may be and how the quirks of the data are read; the
 * layout of the output is anon/tables.h.
 *
 * The generator refuses rather than guesses: a value it does not
 * understand is reported on stderr as "file:line: message" and the exit
 * status is 1, so that a new edition of a table is read correctly or not
 * at all. Output goes to OUT.c.tmp, renamed to OUT.c once complete, and
 * depends only on the inputs' contents and base names.
 *
 * No JSON or CSV library: the two readers below accept only the shapes
 * these tables have, and decode strings in place inside the file's buffer
 * (a decoded string is never longer than its text), so every string the
 * tables hold points into one of the three buffers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on the input. The real files stay far below them (120 KB, 621
 * rows, 7 keys per object, 14 columns, names of 67 characters). */
#define MAX_INPUT_BYTES (4u << 20)
#define MAX_ROWS 4096 /* fits the uint16_t indices of tables.h */
#define MAX_MEMBERS 32
#define MAX_COLUMNS 16
#define MAX_ERRORS 20
#define MAX_CREATOR_BYTES 64 /* a private creator is an LO value */
#define MAX_LABEL_BYTES 96
#define MAX_PATH_BYTES 4096

/* The private row's tag text, the one row that is not a tag. */
#define PRIVATE_ROW_TAG "(GGGG,EEEE) WHERE GGGG IS ODD"

/* ---- messages ------------------------------------------------------------- */

/* Where a message is about: file, line, and the row's label ("(0008,0050)
 * Accession Number"), "" before the row is known. */
struct where {
    const char *file;
    unsigned long line;
    const char *label;
};

static unsigned error_count;

static void complain(const struct where *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void complain(const struct where *at, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%lu: ", at->file, at->line);
    if (at->label && at->label[0])
        fprintf(stderr, "%s: ", at->label);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    error_count++;
}

static bool too_many_errors(const struct where *at)
{
    if (error_count < MAX_ERRORS)
        return false;
    fprintf(stderr, "%s:%lu: too many errors, giving up\n", at->file,
            at->line);
    return true;
}

/* ---- characters ----------------------------------------------------------- */

static bool is_printable(char c)
{
    return c >= 0x20 && c <= 0x7E;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A copy of text for a label, non-printable bytes shown as '?'. */
static void make_label(char *label, size_t size, const char *tag,
                       const char *name)
{
    size_t len = 0;
    const char *parts[2] = {tag, name};
    for (int i = 0; i < 2; i++) {
        const char *p = parts[i] ? parts[i] : "";
        if (i == 1 && len + 1 < size && p[0])
            label[len++] = ' ';
        for (; *p && len + 1 < size; p++)
            label[len++] = is_printable(*p) ? *p : '?';
    }
    label[len] = '\0';
}

/* First byte of text that is not printable ASCII, or NULL. */
static const char *find_unprintable(const char *text)
{
    for (; *text; text++)
        if (!is_printable(*text))
            return text;
    return NULL;
}

/* ---- reading a file whole ------------------------------------------------- */

struct text {
    const char *path;
    char *bytes; /* NUL-terminated; no NUL inside */
    size_t len;
};

static bool read_text(const char *path, struct text *t)
{
    FILE *in = fopen(path, "rb");
    struct where at = {path, 1, ""};
    bool ok = true;
    memset(t, 0, sizeof *t);
    t->path = path;
    if (!in) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        error_count++;
        return false;
    }
    t->bytes = malloc(MAX_INPUT_BYTES + 2);
    if (!t->bytes) {
        fclose(in);
        fprintf(stderr, "%s: out of memory\n", path);
        error_count++;
        return false;
    }
    t->len = fread(t->bytes, 1, MAX_INPUT_BYTES + 1, in);
    if (ferror(in)) {
        fprintf(stderr, "%s: read error: %s\n", path, strerror(errno));
        ok = false;
    } else if (t->len > MAX_INPUT_BYTES) {
        fprintf(stderr, "%s: larger than %u bytes: not a PS3.15 table\n",
                path, MAX_INPUT_BYTES);
        ok = false;
    }
    fclose(in);
    if (!ok) {
        error_count++;
        return false;
    }
    t->bytes[t->len] = '\0';
    for (size_t i = 0; i < t->len; i++) {
        if (t->bytes[i] == '\n')
            at.line++;
        else if (t->bytes[i] == '\0') {
            complain(&at, "NUL byte in the file");
            return false;
        }
    }
    return true;
}

/* ---- action codes and columns (the spellings of tables.h) ----------------- */

enum code {
    CODE_NONE, CODE_D, CODE_Z, CODE_X, CODE_K, CODE_C, CODE_U,
    CODE_XZ, CODE_XD, CODE_ZD, CODE_XZD, CODE_XZU, CODE_COUNT
};

static const char *const code_texts[CODE_COUNT] = {
    "", "D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*",
};

static const char *const code_symbols[CODE_COUNT] = {
    "ANON_CODE_NONE", "ANON_CODE_D", "ANON_CODE_Z", "ANON_CODE_X",
    "ANON_CODE_K", "ANON_CODE_C", "ANON_CODE_U", "ANON_CODE_XZ",
    "ANON_CODE_XD", "ANON_CODE_ZD", "ANON_CODE_XZD", "ANON_CODE_XZU",
};

/* Which codes a Basic Profile cell may hold (Table E.1-1a), and which an
 * option cell: the 2024b and 2023b tables use K and C there only, and a
 * table that starts to use others needs a person to read what it means. */
#define BASIC_CODES "D, Z, X, U, Z/D, X/Z, X/D, X/Z/D or X/Z/U*"
#define OPTION_CODES "K or C"

static bool is_basic_code(int code)
{
    return code != CODE_NONE && code != CODE_K && code != CODE_C;
}

static bool is_option_code(int code)
{
    return code == CODE_K || code == CODE_C;
}

/* The code spelled text, or -1. */
static int find_code(const char *text)
{
    for (int i = 0; i < CODE_COUNT; i++)
        if (strcmp(text, code_texts[i]) == 0)
            return i;
    return -1;
}

enum column {
    COL_SAFE_PRIVATE, COL_UIDS, COL_DEVICE, COL_INSTITUTION,
    COL_PATIENT_CHARS, COL_LONG_FULL_DATES, COL_LONG_MODIF_DATES,
    COL_CLEAN_DESC, COL_CLEAN_STRUCT, COL_CLEAN_GRAPHICS, COL_COUNT
};

static const char *const column_symbols[COL_COUNT] = {
    "ANON_COL_SAFE_PRIVATE", "ANON_COL_UIDS", "ANON_COL_DEVICE",
    "ANON_COL_INSTITUTION", "ANON_COL_PATIENT_CHARS",
    "ANON_COL_LONG_FULL_DATES", "ANON_COL_LONG_MODIF_DATES",
    "ANON_COL_CLEAN_DESC", "ANON_COL_CLEAN_STRUCT",
    "ANON_COL_CLEAN_GRAPHICS",
};

/* The option keys of the JSON, by column. */
static const char *const column_json_keys[COL_COUNT] = {
    "rtnSafePrivOpt", "rtnUIDsOpt", "rtnDevIdOpt", "rtnInstIdOpt",
    "rtnPatCharsOpt", "rtnLongFullDatesOpt", "rtnLongModifDatesOpt",
    "cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt",
};

/* Reads an option cell; "" is no entry when empty_ok (CSV), refused
 * otherwise (the JSON leaves an empty cell's key out). */
static bool parse_option(const char *text, bool empty_ok, uint8_t *code,
                         const char *column, const struct where *at)
{
    int found = find_code(text);
    if (text[0] == '\0' && empty_ok) {
        *code = CODE_NONE;
        return true;
    }
    if (found < 0 || !is_option_code(found)) {
        complain(at, "%s \"%s\" is not %s", column, text, OPTION_CODES);
        return false;
    }
    *code = (uint8_t)found;
    return true;
}

static bool parse_basic(const char *text, uint8_t *code, const char *column,
                        const struct where *at)
{
    int found = find_code(text);
    if (found < 0 || !is_basic_code(found)) {
        complain(at, "%s \"%s\" is not %s", column, text, BASIC_CODES);
        return false;
    }
    *code = (uint8_t)found;
    return true;
}

static bool parse_yes_no(const char *text, bool *value, const char *column,
                         const struct where *at)
{
    if (strcmp(text, "Y") == 0 || strcmp(text, "N") == 0) {
        *value = text[0] == 'Y';
        return true;
    }
    complain(at, "%s \"%s\" is not Y or N", column, text);
    return false;
}

/* ---- JSON: an array of objects whose values are strings ------------------- */

struct json_cursor {
    char *p;
    struct where at; /* at.line follows p */
};

struct json_member {
    const char *key;
    char *value;
    unsigned long line;
};

struct json_object {
    struct json_member members[MAX_MEMBERS];
    size_t count;
    unsigned long line;
};

static void json_skip_blanks(struct json_cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n') {
        if (*c->p == '\n')
            c->at.line++;
        c->p++;
    }
}

static bool json_expect(struct json_cursor *c, char wanted, const char *what)
{
    json_skip_blanks(c);
    if (*c->p != wanted) {
        if (*c->p == '\0')
            complain(&c->at, "expected %s, found the end of the file", what);
        else
            complain(&c->at, "expected %s, found '%c'", what,
                     is_printable(*c->p) ? *c->p : '?');
        return false;
    }
    c->p++;
    return true;
}

/* The escape after a backslash (c->p on the letter) into *out. \uXXXX is
 * taken for printable ASCII only: the tables are ASCII. */
static bool json_read_escape(struct json_cursor *c, char *out)
{
    static const char letters[] = "\"\\/bfnrt";
    static const char values[] = "\"\\/\b\f\n\r\t";
    const char *letter = *c->p ? strchr(letters, *c->p) : NULL;
    unsigned value = 0;
    if (letter) {
        *out = values[letter - letters];
        c->p++;
        return true;
    }
    if (*c->p != 'u') {
        complain(&c->at, "unknown escape in a string");
        return false;
    }
    for (int i = 1; i <= 4; i++) {
        if (hex_value(c->p[i]) < 0) {
            complain(&c->at, "\\u needs 4 hex digits");
            return false;
        }
        value = value * 16u + (unsigned)hex_value(c->p[i]);
    }
    if (value < 0x20 || value > 0x7E) {
        complain(&c->at, "\\u%04X: only printable ASCII is expected", value);
        return false;
    }
    *out = (char)value;
    c->p += 5;
    return true;
}

/* A string (c->p on the opening quote), decoded in place; *out points to
 * it, NUL-terminated. */
static bool json_read_string(struct json_cursor *c, char **out)
{
    char *write;
    if (!json_expect(c, '"', "a string"))
        return false;
    *out = write = c->p;
    for (;;) {
        char ch = *c->p;
        if (ch == '"')
            break;
        if (ch == '\0') {
            complain(&c->at, "string not closed");
            return false;
        }
        if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7E) {
            complain(&c->at, "byte 0x%02X in a string: the tables are "
                     "printable ASCII", (unsigned)(unsigned char)ch);
            return false;
        }
        c->p++;
        if (ch == '\\' && !json_read_escape(c, &ch))
            return false;
        *write++ = ch;
    }
    c->p++;
    *write = '\0'; /* at or before the closing quote, already read */
    return true;
}

static bool json_read_member(struct json_cursor *c, struct json_object *obj)
{
    struct json_member *m;
    char *key;
    if (obj->count == MAX_MEMBERS) {
        complain(&c->at, "more than %d keys in one object", MAX_MEMBERS);
        return false;
    }
    m = &obj->members[obj->count];
    json_skip_blanks(c);
    m->line = c->at.line;
    if (!json_read_string(c, &key) ||
        !json_expect(c, ':', "':' after a key"))
        return false;
    m->key = key;
    json_skip_blanks(c);
    if (*c->p != '"') {
        complain(&c->at, "the value of \"%s\" is not a string", m->key);
        return false;
    }
    if (!json_read_string(c, &m->value))
        return false;
    obj->count++;
    return true;
}

static bool json_read_object(struct json_cursor *c, struct json_object *obj)
{
    obj->count = 0;
    json_skip_blanks(c);
    obj->line = c->at.line;
    if (!json_expect(c, '{', "'{' (each row is an object)"))
        return false;
    json_skip_blanks(c);
    if (*c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        if (!json_read_member(c, obj))
            return false;
        json_skip_blanks(c);
        if (*c->p != ',')
            break;
        c->p++;
    }
    return json_expect(c, '}', "',' or '}'");
}

typedef bool (*json_row_fn)(struct json_object *obj, const char *file);

/* Calls row() for each object of the array that is the whole of t. A
 * syntax error stops the reading; a row() that fails does not. */
static bool json_read_rows(struct text *t, json_row_fn row)
{
    struct json_cursor c = {t->bytes, {t->path, 1, ""}};
    bool ok = true;
    struct json_object *obj = malloc(sizeof *obj);
    if (!obj) {
        complain(&c.at, "out of memory");
        return false;
    }
    if (!json_expect(&c, '[', "'[' (the table is an array of rows)"))
        goto fail;
    json_skip_blanks(&c);
    while (*c.p != ']') {
        if (!json_read_object(&c, obj))
            goto fail;
        ok = row(obj, t->path) && ok;
        if (too_many_errors(&c.at))
            goto fail;
        json_skip_blanks(&c);
        if (*c.p != ',')
            break;
        c.p++;
    }
    if (!json_expect(&c, ']', "',' or ']'"))
        goto fail;
    json_skip_blanks(&c);
    if (*c.p != '\0') {
        complain(&c.at, "text after the array");
        goto fail;
    }
    free(obj);
    return ok;
fail:
    free(obj);
    return false;
}

/* ---- CSV: a header row, then records of as many fields -------------------- */

struct csv_cursor {
    char *p;
    struct where at;
};

/* One field, decoded in place into *out. *end gets the byte that ended it:
 * ',', '\n' (for "\r\n" too) or '\0'. */
static bool csv_read_field(struct csv_cursor *c, char **out, char *end)
{
    char *write = c->p;
    bool quoted = *c->p == '"';
    struct where open_at = c->at; /* where a quote left open began */
    *out = write;
    if (quoted) {
        c->p++;
        for (;;) {
            if (*c->p == '\0') {
                complain(&open_at, "quoted field not closed");
                return false;
            }
            if (*c->p == '"' && c->p[1] != '"')
                break;
            if (*c->p == '"')
                c->p++; /* "" is one quote */
            else if (*c->p == '\n')
                c->at.line++;
            *write++ = *c->p++;
        }
        c->p++;
    } else {
        while (*c->p != ',' && *c->p != '\r' && *c->p != '\n' &&
               *c->p != '\0') {
            if (*c->p == '"') {
                complain(&c->at, "quote inside an unquoted field");
                return false;
            }
            *write++ = *c->p++;
        }
    }
    *end = *c->p;
    if (*end == '\r') {
        if (c->p[1] != '\n') {
            complain(&c->at, "carriage return without a line feed");
            return false;
        }
        c->p++;
        *end = '\n';
    }
    if (*end != ',' && *end != '\n' && *end != '\0') {
        complain(&c->at, "text after a closing quote");
        return false;
    }
    if (*end == '\n')
        c->at.line++;
    if (*end != '\0')
        c->p++;
    *write = '\0'; /* at or before the byte that ended the field */
    return true;
}

/* Reads one record into fields[MAX_COLUMNS]; *count gets how many (0 at
 * the end of the input); at->line becomes the record's first line. */
static bool csv_read_record(struct csv_cursor *c, char **fields,
                            size_t *count, struct where *record_at)
{
    char end;
    *count = 0;
    *record_at = c->at;
    if (*c->p == '\0')
        return true;
    do {
        if (*count == MAX_COLUMNS) {
            complain(record_at, "more than %d fields", MAX_COLUMNS);
            return false;
        }
        if (!csv_read_field(c, &fields[*count], &end))
            return false;
        (*count)++;
    } while (end == ',');
    return true;
}

typedef bool (*csv_row_fn)(char **fields, const struct where *at);

/* Checks the header of t against columns[column_count], then calls row()
 * for each record, which must have column_count printable fields. */
static bool csv_read_rows(struct text *t, const char *const *columns,
                          size_t column_count, csv_row_fn row)
{
    struct csv_cursor c = {t->bytes, {t->path, 1, ""}};
    char *fields[MAX_COLUMNS];
    size_t count;
    struct where at;
    bool ok = true;
    if (!csv_read_record(&c, fields, &count, &at))
        return false;
    for (size_t i = 0; i < column_count; i++) {
        if (i >= count || strcmp(fields[i], columns[i]) != 0) {
            complain(&at, "header: column %zu should be \"%s\"", i + 1,
                     columns[i]);
            return false;
        }
    }
    if (count != column_count) {
        complain(&at, "header: %zu columns, expected %zu", count,
                 column_count);
        return false;
    }
    for (;;) {
        const char *bad;
        bool fields_ok = true;
        if (!csv_read_record(&c, fields, &count, &at))
            return false;
        if (count == 0)
            return ok;
        if (count != column_count) {
            complain(&at, "%zu fields, expected %zu", count, column_count);
            return false;
        }
        for (size_t i = 0; i < count; i++) {
            if ((bad = find_unprintable(fields[i])) != NULL) {
                complain(&at, "column \"%s\": byte 0x%02X is not printable "
                         "ASCII", columns[i],
                         (unsigned)(unsigned char)*bad);
                fields_ok = false;
            }
        }
        ok = fields_ok && row(fields, &at) && ok;
        if (too_many_errors(&at))
            return false;
    }
}

/* ---- Table E.1-1 ---------------------------------------------------------- */

struct e11_row {
    uint32_t tag, mask;
    const char *tag_text, *name;
    unsigned note;
    bool in_std_comp_iod, is_private;
    uint8_t basic, option[COL_COUNT];
    unsigned long line;
};

static struct e11_row e11_rows[MAX_ROWS];
static size_t e11_count;
static const char *e11_file;

/* "(gggg,eeee)" with X for any digit, or the private row. */
static bool parse_e11_tag(const char *text, struct e11_row *row,
                          const struct where *at)
{
    uint32_t tag = 0, mask = 0;
    if (strcmp(text, PRIVATE_ROW_TAG) == 0) {
        row->tag = row->mask = 0x00010000u; /* any tag of an odd group */
        row->is_private = true;
        return true;
    }
    if (strlen(text) != 11 || text[0] != '(' || text[5] != ',' ||
        text[10] != ')')
        goto bad;
    for (int i = 1; i < 10; i++) {
        int digit = hex_value(text[i]);
        if (i == 5)
            continue;
        tag <<= 4;
        mask <<= 4;
        if (digit >= 0) {
            tag |= (uint32_t)digit;
            mask |= 0xFu;
        } else if ((text[i] != 'X' && text[i] != 'x') || i <= 2) {
            goto bad; /* a group's first two digits are always fixed */
        }
    }
    if ((mask & 0x00010000u) && (tag & 0x00010000u)) {
        complain(at, "a row for an odd (private) group: such tags follow "
                 "the private row only, so this row would never apply");
        return false;
    }
    row->tag = tag;
    row->mask = mask;
    return true;
bad:
    complain(at, "tag \"%s\" is neither (gggg,eeee), a repeating group "
             "such as (60XX,3000), nor \"%s\"", text, PRIVATE_ROW_TAG);
    return false;
}

/* The name, with a trailing "(see Note N)" (after a space or line breaks,
 * as the 2024b JSON writes Icon Image Sequence's) taken off into note. */
static bool parse_e11_name(char *text, struct e11_row *row,
                           const struct where *at)
{
    static const char note_prefix[] = "(see Note ";
    char *open = strrchr(text, '(');
    const char *bad;
    size_t len;
    row->note = 0;
    if (open && strncmp(open, note_prefix, strlen(note_prefix)) == 0) {
        char *digits = open + strlen(note_prefix), *p = digits;
        while (is_digit(*p) && p - digits < 3)
            p++;
        if (p == digits || strcmp(p, ")") != 0 || atoi(digits) == 0) {
            complain(at, "name: cannot read the note reference \"%s\"",
                     open);
            return false;
        }
        row->note = (unsigned)atoi(digits);
        while (open > text && (open[-1] == ' ' || open[-1] == '\n'))
            open--;
        *open = '\0';
    }
    len = strlen(text);
    if ((bad = find_unprintable(text)) != NULL) {
        complain(at, "name: byte 0x%02X is not printable ASCII",
                 (unsigned)(unsigned char)*bad);
        return false;
    }
    if (len == 0 || text[0] == ' ' || text[len - 1] == ' ') {
        complain(at, "name: empty, or a space at an end");
        return false;
    }
    row->name = text;
    return true;
}

/* id must be the tag text in lower case without brackets and commas,
 * blanks as '-': "(0008,0050)" -> "00080050". */
static bool check_e11_id(const char *id, const char *tag_text,
                         const struct where *at)
{
    const char *t = tag_text, *i = id;
    for (; *t; t++) {
        char want = *t;
        if (want == '(' || want == ')' || want == ',')
            continue;
        if (want == ' ')
            want = '-';
        else if (want >= 'A' && want <= 'Z')
            want = (char)(want - 'A' + 'a');
        if (*i++ != want)
            goto bad;
    }
    if (*i == '\0')
        return true;
bad:
    complain(at, "id \"%s\" does not match the tag: was the row extracted "
             "whole?", id);
    return false;
}

enum e11_key { KEY_NAME, KEY_TAG, KEY_STD_COMP_IOD, KEY_BASIC, KEY_ID,
               KEY_OPTION /* + column */, KEY_COUNT = KEY_OPTION + COL_COUNT };

static const char *e11_key_name(int key)
{
    static const char *const names[KEY_OPTION] = {
        "name", "tag", "stdCompIOD", "basicProfile", "id"};
    return key < KEY_OPTION ? names[key] : column_json_keys[key - KEY_OPTION];
}

/* Sorts obj's members into by_key[KEY_COUNT] (NULL where absent); refuses
 * unknown and repeated keys, and missing required ones. */
static bool index_e11_members(struct json_object *obj,
                              struct json_member **by_key,
                              const struct where *at)
{
    bool ok = true;
    for (int k = 0; k < KEY_COUNT; k++)
        by_key[k] = NULL;
    for (size_t i = 0; i < obj->count; i++) {
        struct json_member *m = &obj->members[i];
        struct where member_at = {at->file, m->line, at->label};
        int k = 0;
        while (k < KEY_COUNT && strcmp(m->key, e11_key_name(k)) != 0)
            k++;
        if (k == KEY_COUNT) {
            complain(&member_at, "unknown key \"%s\"", m->key);
            ok = false;
        } else if (by_key[k]) {
            complain(&member_at, "key \"%s\" given twice", m->key);
            ok = false;
        } else {
            by_key[k] = m;
        }
    }
    for (int k = 0; k < KEY_OPTION; k++) {
        if (!by_key[k]) {
            complain(at, "no \"%s\"", e11_key_name(k));
            ok = false;
        }
    }
    return ok;
}

static bool e11_add_row(struct json_object *obj, const char *file)
{
    struct json_member *by_key[KEY_COUNT];
    struct e11_row *row = &e11_rows[e11_count];
    char label[MAX_LABEL_BYTES];
    struct where at = {file, obj->line, label};
    bool ok;
    if (e11_count == MAX_ROWS) {
        complain(&at, "more than %d rows", MAX_ROWS);
        return false;
    }
    memset(row, 0, sizeof *row);
    row->line = obj->line;
    label[0] = '\0';
    if (!index_e11_members(obj, by_key, &at))
        return false;
    make_label(label, sizeof label, by_key[KEY_TAG]->value,
               by_key[KEY_NAME]->value);
    row->tag_text = by_key[KEY_TAG]->value;
    /* every check, so that one run reports all of a row's problems */
    at.line = by_key[KEY_TAG]->line;
    ok = parse_e11_tag(row->tag_text, row, &at);
    at.line = by_key[KEY_ID]->line;
    ok = check_e11_id(by_key[KEY_ID]->value, row->tag_text, &at) && ok;
    at.line = by_key[KEY_NAME]->line;
    ok = parse_e11_name(by_key[KEY_NAME]->value, row, &at) && ok;
    at.line = by_key[KEY_STD_COMP_IOD]->line;
    ok = parse_yes_no(by_key[KEY_STD_COMP_IOD]->value, &row->in_std_comp_iod,
                      "stdCompIOD", &at) && ok;
    at.line = by_key[KEY_BASIC]->line;
    ok = parse_basic(by_key[KEY_BASIC]->value, &row->basic, "basicProfile",
                     &at) && ok;
    for (int col = 0; col < COL_COUNT; col++) {
        struct json_member *m = by_key[KEY_OPTION + col];
        if (!m)
            continue;
        at.line = m->line;
        ok = parse_option(m->value, false, &row->option[col],
                          column_json_keys[col], &at) && ok;
    }
    if (ok)
        e11_count++;
    return ok;
}

/* ---- Table E.3.10-1 ------------------------------------------------------- */

static const char *const safe_columns[] = {
    "Data Element", "Private Creator", "VR", "VM", "Meaning"};
enum { SAFE_ELEMENT, SAFE_CREATOR, SAFE_VR, SAFE_VM, SAFE_MEANING,
       SAFE_COLUMNS };

struct safe_row {
    uint16_t group;
    uint8_t element;
    const char *creator;
    char vr[3], vr_alt[3];
    const char *vm, *meaning;
    unsigned long line;
};

static struct safe_row safe_rows[MAX_ROWS];
static size_t safe_count;
static const char *safe_file;

/* PS3.5 6.2: the VRs. */
static const char *const vr_names[] = {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT",
    "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
    "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};

static bool is_vr(const char *text, size_t len)
{
    size_t count = sizeof vr_names / sizeof vr_names[0];
    for (size_t i = 0; i < count; i++)
        if (len == 2 && strncmp(text, vr_names[i], 2) == 0)
            return true;
    return false;
}

/* "DS", "OW/OB" (either VR), or "" (the table gives none). */
static bool parse_safe_vr(const char *text, struct safe_row *row,
                          const struct where *at)
{
    size_t len = strlen(text);
    if (len == 0)
        return true;
    if (is_vr(text, len) ||
        (len == 5 && text[2] == '/' && is_vr(text, 2) && is_vr(text + 3, 2))) {
        memcpy(row->vr, text, 2);
        if (len == 5)
            memcpy(row->vr_alt, text + 3, 2);
        return true;
    }
    complain(at, "VR \"%s\" is not a VR, two VRs as \"OW/OB\", or empty",
             text);
    return false;
}

/* "1", "3-4", "1-n", "2-2n": digits, then optionally '-' and digits,
 * digits and 'n', or 'n'. */
static bool parse_vm(const char *text, const struct where *at)
{
    const char *p = text;
    bool ok;
    while (is_digit(*p))
        p++;
    ok = p != text;
    if (ok && *p == '-') {
        const char *upper = ++p;
        while (is_digit(*p))
            p++;
        if (*p == 'n')
            p++;
        else if (p == upper)
            ok = false;
    }
    if (!ok || *p != '\0') {
        complain(at, "VM \"%s\" is not a value multiplicity", text);
        return false;
    }
    return true;
}

/* PS3.5 7.8.1: odd groups are private, except 0001, 0003, 0005, 0007 and
 * FFFF. */
static bool is_private_group(unsigned group)
{
    return (group & 1u) && group > 0x0007u && group != 0xFFFFu;
}

/* "(gggg,xxee)": a private group, any block, the element's low byte. */
static bool parse_safe_element(const char *text, struct safe_row *row,
                               const struct where *at)
{
    unsigned group = 0, element = 0;
    bool ok = strlen(text) == 11 && text[0] == '(' && text[5] == ',' &&
              (text[6] == 'x' || text[6] == 'X') &&
              (text[7] == 'x' || text[7] == 'X') && text[10] == ')';
    for (int i = 1; ok && i <= 4; i++) {
        ok = hex_value(text[i]) >= 0;
        group = group * 16u + (unsigned)(ok ? hex_value(text[i]) : 0);
    }
    for (int i = 8; ok && i <= 9; i++) {
        ok = hex_value(text[i]) >= 0;
        element = element * 16u + (unsigned)(ok ? hex_value(text[i]) : 0);
    }
    if (!ok) {
        complain(at, "Data Element \"%s\" is not (gggg,xxee)", text);
        return false;
    }
    if (!is_private_group(group)) {
        complain(at, "Data Element \"%s\": group %04X is not private", text,
                 group);
        return false;
    }
    row->group = (uint16_t)group;
    row->element = (uint8_t)element;
    return true;
}

/* Trailing spaces are an LO's padding: trimmed, as the lookup trims the
 * dataset's value. A leading space would never match, nor would a
 * backslash (not allowed in an LO) or more than 64 characters. */
static bool parse_safe_creator(char *text, struct safe_row *row,
                               const struct where *at)
{
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ' ')
        text[--len] = '\0';
    if (len == 0 || len > MAX_CREATOR_BYTES || text[0] == ' ' ||
        strchr(text, '\\')) {
        complain(at, "Private Creator \"%s\": empty, longer than %d, a "
                 "leading space or a backslash", text, MAX_CREATOR_BYTES);
        return false;
    }
    row->creator = text;
    return true;
}

static bool safe_add_row(char **fields, const struct where *record_at)
{
    struct safe_row *row = &safe_rows[safe_count];
    char label[MAX_LABEL_BYTES];
    struct where at = *record_at;
    bool ok;
    if (safe_count == MAX_ROWS) {
        complain(&at, "more than %d rows", MAX_ROWS);
        return false;
    }
    memset(row, 0, sizeof *row);
    row->line = at.line;
    make_label(label, sizeof label, fields[SAFE_ELEMENT],
               fields[SAFE_CREATOR]);
    at.label = label;
    ok = parse_safe_element(fields[SAFE_ELEMENT], row, &at);
    ok = parse_safe_creator(fields[SAFE_CREATOR], row, &at) && ok;
    ok = parse_safe_vr(fields[SAFE_VR], row, &at) && ok;
    ok = parse_vm(fields[SAFE_VM], &at) && ok;
    /* The Meaning is for people, and may be empty: the 2023b table leaves
     * it blank for (0119,xx21) and (0129,xx29) of SIEMENS Ultrasound
     * SC2000. */
    row->vm = fields[SAFE_VM];
    row->meaning = fields[SAFE_MEANING];
    if (ok)
        safe_count++;
    return ok;
}

/* ---- Table E.3.4-1 -------------------------------------------------------- */

static const char *const sr_columns[] = {
    "Code Meaning", "Code Value", "Coding Scheme Designator", "Value Type",
    "Retd. (from )", "In Std. Tpl. (from )", "Basic Prof.",
    "Rtn. UIDs Opt.", "Rtn. Dev. Id. Opt.", "Rtn. Inst. Id. Opt.",
    "Rtn. Pat. Chars. Opt.", "Rtn. Long. Full Dates Opt.",
    "Rtn. Long. Modif. Dates Opt.", "Clean Desc. Opt."};
enum { SR_MEANING, SR_CODE_VALUE, SR_SCHEME, SR_VALUE_TYPE, SR_RETIRED,
       SR_IN_TEMPLATE, SR_BASIC, SR_FIRST_OPTION, SR_COLUMNS = 14 };

/* The option columns of Table E.3.4-1, from SR_FIRST_OPTION on. */
static const enum column sr_option_columns[SR_COLUMNS - SR_FIRST_OPTION] = {
    COL_UIDS, COL_DEVICE, COL_INSTITUTION, COL_PATIENT_CHARS,
    COL_LONG_FULL_DATES, COL_LONG_MODIF_DATES, COL_CLEAN_DESC};

struct sr_row {
    const char *code_value, *scheme, *scheme_version, *meaning, *value_type;
    bool retired, in_std_template;
    uint8_t basic, option[COL_COUNT];
    unsigned long line;
};

static struct sr_row sr_rows[MAX_ROWS];
static size_t sr_count;
static const char *sr_file;

/* PS3.3 C.17.3.2.1: the value types of SR content items. */
static const char *const value_types[] = {
    "TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME",
    "COMPOSITE", "IMAGE", "WAVEFORM", "SCOORD", "SCOORD3D", "TCOORD",
    "CONTAINER", "TABLE"};

static bool parse_value_type(const char *text, const struct where *at)
{
    size_t count = sizeof value_types / sizeof value_types[0];
    for (size_t i = 0; i < count; i++)
        if (strcmp(text, value_types[i]) == 0)
            return true;
    complain(at, "Value Type \"%s\" is not an SR value type", text);
    return false;
}

static bool is_designator_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
           c == '.' || c == '_' || c == '-' || c == ':';
}

/* "DCM", or "NCDR [2.0b]": designator and version, as PS3.16 writes a
 * versioned scheme. Split in place. */
static bool parse_scheme(char *text, struct sr_row *row,
                         const struct where *at)
{
    char *p = text, *version = NULL;
    while (is_designator_char(*p))
        p++;
    if (p != text && p[0] == ' ' && p[1] == '[') {
        char *close = strchr(p + 2, ']');
        if (close && close[1] == '\0' && close > p + 2 &&
            !memchr(p + 2, '[', (size_t)(close - (p + 2)))) {
            *close = '\0';
            version = p + 2;
            *p = '\0';
        }
    }
    if (p == text || (*p != '\0' && !version)) {
        complain(at, "Coding Scheme Designator \"%s\" is neither a "
                 "designator nor \"DESIGNATOR [VERSION]\"", text);
        return false;
    }
    row->scheme = text;
    row->scheme_version = version;
    return true;
}

static bool parse_code_value(const char *text, const struct where *at)
{
    if (text[0] == '\0' || strchr(text, ' ')) {
        complain(at, "Code Value \"%s\": empty or with a space", text);
        return false;
    }
    return true;
}

static bool sr_add_row(char **fields, const struct where *record_at)
{
    struct sr_row *row = &sr_rows[sr_count];
    char label[MAX_LABEL_BYTES];
    struct where at = *record_at;
    bool ok;
    if (sr_count == MAX_ROWS) {
        complain(&at, "more than %d rows", MAX_ROWS);
        return false;
    }
    memset(row, 0, sizeof *row);
    row->line = at.line;
    make_label(label, sizeof label, fields[SR_MEANING],
               fields[SR_VALUE_TYPE]);
    at.label = label;
    row->meaning = fields[SR_MEANING];
    row->code_value = fields[SR_CODE_VALUE];
    row->value_type = fields[SR_VALUE_TYPE];
    ok = row->meaning[0] != '\0';
    if (!ok)
        complain(&at, "no Code Meaning");
    ok = parse_code_value(row->code_value, &at) && ok;
    ok = parse_scheme(fields[SR_SCHEME], row, &at) && ok;
    ok = parse_value_type(row->value_type, &at) && ok;
    ok = parse_yes_no(fields[SR_RETIRED], &row->retired,
                      sr_columns[SR_RETIRED], &at) && ok;
    ok = parse_yes_no(fields[SR_IN_TEMPLATE], &row->in_std_template,
                      sr_columns[SR_IN_TEMPLATE], &at) && ok;
    ok = parse_basic(fields[SR_BASIC], &row->basic, sr_columns[SR_BASIC],
                     &at) && ok;
    for (int i = SR_FIRST_OPTION; i < SR_COLUMNS; i++)
        ok = parse_option(fields[i], true,
                          &row->option[sr_option_columns[i - SR_FIRST_OPTION]],
                          sr_columns[i], &at) && ok;
    if (ok)
        sr_count++;
    return ok;
}

/* ---- ordering and whole-table checks -------------------------------------- */

static int compare_numbers(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/* Indices of the E.1-1 rows, by kind. */
struct e11_index {
    uint16_t exact[MAX_ROWS], masked[MAX_ROWS];
    size_t exact_count, masked_count, private_row;
};

static int e11_by_tag(const void *pa, const void *pb)
{
    const struct e11_row *a = &e11_rows[*(const uint16_t *)pa];
    const struct e11_row *b = &e11_rows[*(const uint16_t *)pb];
    int diff = compare_numbers(a->tag, b->tag);
    return diff ? diff : compare_numbers(a->line, b->line);
}

static void report_pair(const char *file, const struct e11_row *later,
                        const struct e11_row *earlier, const char *what)
{
    struct where at = {file, later->line, ""};
    complain(&at, "%s %s %s row %s %s at line %lu", later->tag_text,
             later->name, what, earlier->tag_text, earlier->name,
             earlier->line);
}

/* Two rows match a common tag when they agree on every bit both fix. */
static bool rows_overlap(const struct e11_row *a, const struct e11_row *b)
{
    return ((a->tag ^ b->tag) & a->mask & b->mask) == 0;
}

/* Sorts the exact rows by tag and refuses what would make the order of
 * the lookup matter: repeated tags, exact rows inside a repeating group,
 * repeating groups that overlap. Exactly one private row. */
static bool index_e11(struct e11_index *ix)
{
    bool ok = true;
    size_t private_rows = 0;
    memset(ix, 0, sizeof *ix);
    for (size_t i = 0; i < e11_count; i++) {
        if (e11_rows[i].is_private) {
            ix->private_row = i;
            private_rows++;
        } else if (e11_rows[i].mask == 0xFFFFFFFFu) {
            ix->exact[ix->exact_count++] = (uint16_t)i;
        } else {
            ix->masked[ix->masked_count++] = (uint16_t)i;
        }
    }
    if (private_rows != 1) {
        fprintf(stderr, "%s: %zu rows \"%s\", expected one\n", e11_file,
                private_rows, PRIVATE_ROW_TAG);
        error_count++;
        ok = false;
    }
    qsort(ix->exact, ix->exact_count, sizeof ix->exact[0], e11_by_tag);
    for (size_t i = 1; i < ix->exact_count; i++) {
        const struct e11_row *a = &e11_rows[ix->exact[i - 1]];
        const struct e11_row *b = &e11_rows[ix->exact[i]];
        if (a->tag == b->tag) {
            report_pair(e11_file, b, a, "repeats the tag of");
            ok = false;
        }
    }
    for (size_t m = 0; m < ix->masked_count; m++) {
        const struct e11_row *group = &e11_rows[ix->masked[m]];
        for (size_t i = 0; i < ix->exact_count; i++)
            if (rows_overlap(group, &e11_rows[ix->exact[i]])) {
                report_pair(e11_file, &e11_rows[ix->exact[i]], group,
                            "lies inside the repeating-group");
                ok = false;
            }
        for (size_t n = 0; n < m; n++)
            if (rows_overlap(group, &e11_rows[ix->masked[n]])) {
                report_pair(e11_file, group, &e11_rows[ix->masked[n]],
                            "overlaps the repeating-group");
                ok = false;
            }
    }
    return ok;
}

static int safe_by_key(const void *pa, const void *pb)
{
    const struct safe_row *a = pa, *b = pb;
    int diff = compare_numbers(a->group, b->group);
    if (!diff)
        diff = compare_numbers(a->element, b->element);
    if (!diff)
        diff = strcmp(a->creator, b->creator);
    return diff ? diff : compare_numbers(a->line, b->line);
}

static bool sort_safe(void)
{
    bool ok = true;
    qsort(safe_rows, safe_count, sizeof safe_rows[0], safe_by_key);
    for (size_t i = 1; i < safe_count; i++) {
        const struct safe_row *a = &safe_rows[i - 1], *b = &safe_rows[i];
        if (a->group == b->group && a->element == b->element &&
            strcmp(a->creator, b->creator) == 0) {
            struct where at = {safe_file, b->line, ""};
            complain(&at, "(%04X,xx%02X) \"%s\" is already at line %lu",
                     b->group, b->element, b->creator, a->line);
            ok = false;
        }
    }
    return ok;
}

static int sr_compare_keys(const struct sr_row *a, const struct sr_row *b)
{
    int diff = strcmp(a->code_value, b->code_value);
    if (!diff)
        diff = strcmp(a->scheme, b->scheme);
    if (!diff)
        diff = strcmp(a->value_type, b->value_type);
    return diff;
}

static int sr_by_key(const void *pa, const void *pb)
{
    const struct sr_row *a = pa, *b = pb;
    int diff = sr_compare_keys(a, b);
    return diff ? diff : compare_numbers(a->line, b->line);
}

static bool sort_sr(void)
{
    bool ok = true;
    qsort(sr_rows, sr_count, sizeof sr_rows[0], sr_by_key);
    for (size_t i = 1; i < sr_count; i++) {
        const struct sr_row *a = &sr_rows[i - 1], *b = &sr_rows[i];
        if (sr_compare_keys(a, b) == 0) {
            struct where at = {sr_file, b->line, ""};
            complain(&at, "(%s, %s) %s as %s is already at line %lu",
                     b->code_value, b->scheme, b->meaning, b->value_type,
                     a->line);
            ok = false;
        }
    }
    return ok;
}

/* ---- writing -------------------------------------------------------------- */

/* A C string literal. Strings are printable ASCII (checked when read);
 * '?' is escaped so that no "??x" can read as a trigraph. */
static void emit_string(FILE *out, const char *text)
{
    if (!text) {
        fputs("NULL", out);
        return;
    }
    fputc('"', out);
    for (; *text; text++) {
        if (*text == '"' || *text == '\\' || *text == '?')
            fputc('\\', out);
        fputc(*text, out);
    }
    fputc('"', out);
}

/* {0} or {[ANON_COL_X] = ANON_CODE_K, ...}: only the filled cells. */
static void emit_options(FILE *out, const uint8_t *option)
{
    const char *separator = "";
    fputc('{', out);
    for (int col = 0; col < COL_COUNT; col++) {
        if (option[col] == CODE_NONE)
            continue;
        fprintf(out, "%s[%s] = %s", separator, column_symbols[col],
                code_symbols[option[col]]);
        separator = ", ";
    }
    fputs(separator[0] ? "}" : "0}", out);
}

static void emit_count(FILE *out, const char *name, size_t count)
{
    fprintf(out, "};\nconst size_t %s = %zu;\n\n", name, count);
}

static void emit_e11(FILE *out, const struct e11_index *ix)
{
    fputs("const anon_row anon_data_rows[] = {\n", out);
    for (size_t i = 0; i < e11_count; i++) {
        const struct e11_row *r = &e11_rows[i];
        fprintf(out, "    {0x%08Xu, 0x%08Xu, ", r->tag, r->mask);
        emit_string(out, r->tag_text);
        fputs(", ", out);
        emit_string(out, r->name);
        fprintf(out, ", %u, %s, %s, ", r->note,
                r->in_std_comp_iod ? "true" : "false",
                code_symbols[r->basic]);
        emit_options(out, r->option);
        fputs("},\n", out);
    }
    emit_count(out, "anon_data_row_count", e11_count);

    fputs("const uint16_t anon_data_rows_exact[] = {", out);
    for (size_t i = 0; i < ix->exact_count; i++)
        fprintf(out, "%s%u,", i % 12 ? " " : "\n    ", ix->exact[i]);
    if (ix->exact_count == 0)
        fputs("0", out);
    fputs("\n", out);
    emit_count(out, "anon_data_rows_exact_count", ix->exact_count);

    fputs("const uint16_t anon_data_rows_masked[] = {\n   ", out);
    for (size_t i = 0; i < ix->masked_count; i++)
        fprintf(out, " %u,", ix->masked[i]);
    if (ix->masked_count == 0)
        fputs(" 0", out);
    fputs("\n", out);
    emit_count(out, "anon_data_rows_masked_count", ix->masked_count);

    fprintf(out, "const size_t anon_data_row_private = %zu;\n\n",
            ix->private_row);
}

static void emit_safe(FILE *out)
{
    fputs("const anon_safe_private anon_data_safe_privates[] = {\n", out);
    for (size_t i = 0; i < safe_count; i++) {
        const struct safe_row *r = &safe_rows[i];
        fprintf(out, "    {0x%04Xu, 0x%02Xu, ", r->group, r->element);
        emit_string(out, r->creator);
        fputs(", ", out);
        emit_string(out, r->vr);
        fputs(", ", out);
        emit_string(out, r->vr_alt);
        fputs(", ", out);
        emit_string(out, r->vm);
        fputs(", ", out);
        emit_string(out, r->meaning);
        fputs("},\n", out);
    }
    if (safe_count == 0)
        fputs("    {0, 0, NULL, \"\", \"\", NULL, NULL},\n", out);
    emit_count(out, "anon_data_safe_private_count", safe_count);
}

static void emit_sr(FILE *out)
{
    fputs("const anon_sr_row anon_data_sr_rows[] = {\n", out);
    for (size_t i = 0; i < sr_count; i++) {
        const struct sr_row *r = &sr_rows[i];
        const char *fields[5] = {r->code_value, r->scheme, r->scheme_version,
                                 r->meaning, r->value_type};
        fputs("    {", out);
        for (int f = 0; f < 5; f++) {
            emit_string(out, fields[f]);
            fputs(", ", out);
        }
        fprintf(out, "%s, %s, %s, ", r->retired ? "true" : "false",
                r->in_std_template ? "true" : "false",
                code_symbols[r->basic]);
        emit_options(out, r->option);
        fputs("},\n", out);
    }
    if (sr_count == 0)
        fputs("    {NULL, NULL, NULL, NULL, NULL, false, false, 0, {0}},\n",
              out);
    emit_count(out, "anon_data_sr_row_count", sr_count);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void emit_all(FILE *out, const struct e11_index *ix,
                     char *const *inputs)
{
    fprintf(out,
            "/*\n * tables_data.c - GENERATED by siren_gen_anon_tables from\n"
            " * %s,\n * %s and\n * %s\n"
            " * (DICOM PS3.15 Tables E.1-1, E.3.10-1, E.3.4-1). Do not edit:"
            "\n * the generator is anon/tools/gen_tables.c, the layout "
            "anon/tables.h.\n */\n#include \"tables.h\"\n\n",
            base_name(inputs[0]), base_name(inputs[1]), base_name(inputs[2]));
    emit_e11(out, ix);
    emit_safe(out);
    emit_sr(out);
}

/* Writes the tables to path through path.tmp and a rename. */
static bool write_output(const char *path, const struct e11_index *ix,
                         char *const *inputs)
{
    char tmp_path[MAX_PATH_BYTES];
    FILE *out;
    bool ok;
    int len = snprintf(tmp_path, sizeof tmp_path, "%s.tmp", path);
    if (len < 0 || (size_t)len >= sizeof tmp_path) {
        fprintf(stderr, "%s: path too long\n", path);
        return false;
    }
    out = fopen(tmp_path, "w");
    if (!out) {
        fprintf(stderr, "%s: cannot create: %s\n", tmp_path,
                strerror(errno));
        return false;
    }
    emit_all(out, ix, inputs);
    ok = !ferror(out);
    ok = (fclose(out) == 0) && ok;
    if (ok && rename(tmp_path, path) != 0) {
        fprintf(stderr, "%s: cannot rename to %s: %s\n", tmp_path, path,
                strerror(errno));
        ok = false;
    } else if (!ok) {
        fprintf(stderr, "%s: write error: %s\n", tmp_path, strerror(errno));
    }
    if (!ok)
        remove(tmp_path);
    return ok;
}

int main(int argc, char **argv)
{
    struct text e11_text, safe_text, sr_text;
    struct e11_index *ix;
    bool ok;
    if (argc != 5) {
        fprintf(stderr, "usage: siren_gen_anon_tables E1-1.json "
                "E3.10-1.csv E3.4-1.csv OUT.c\n");
        return 2;
    }
    e11_file = argv[1];
    safe_file = argv[2];
    sr_file = argv[3];
    /* All three files even if one fails: every error in one run. */
    ok = read_text(argv[1], &e11_text) &&
         json_read_rows(&e11_text, e11_add_row);
    ok = read_text(argv[2], &safe_text) &&
         csv_read_rows(&safe_text, safe_columns, SAFE_COLUMNS, safe_add_row) &&
         ok;
    ok = read_text(argv[3], &sr_text) &&
         csv_read_rows(&sr_text, sr_columns, SR_COLUMNS, sr_add_row) && ok;
    ix = malloc(sizeof *ix);
    if (!ix) {
        fprintf(stderr, "siren_gen_anon_tables: out of memory\n");
        ok = false;
    }
    if (ok) {
        ok = index_e11(ix);
        ok = sort_safe() && ok;
        ok = sort_sr() && ok;
    }
    if (ok)
        ok = write_output(argv[4], ix, argv + 1);
    free(ix);
    free(e11_text.bytes);
    free(safe_text.bytes);
    free(sr_text.bytes);
    return ok && error_count == 0 ? 0 : 1;
}
