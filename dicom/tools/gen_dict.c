/*
 * gen_dict.c - siren_gen_dict: builds dict_data.c, the tables behind
 * dcm_dict_find() and friends, from DCMTK's data dictionary files.
 *
 *   siren_gen_dict DICOM_DIC PRIVATE_DIC OUT.c
 *
 * The input format is the one the files' header comments describe: one
 * entry per line, tab-separated fields Tag, VR, Name, VM and Version (some
 * private.dic lines leave out Version); a line whose first non-blank
 * character is '#' is a comment. Tags are written
 *   (gggg,eeee)              one tag
 *   (gggg-gggg,eeee)         a repeating group, even groups only
 *   (gggg-o-gggg,eeee)       odd groups only ("-e-" even, "-u-" all)
 *   (gggg,eeee-eeee)         an element range (same restrictors)
 *   (gggg,"CREATOR",ee)      private: element ee of any block the creator
 *                            reserved, (gggg,10ee) ... (gggg,FFee)
 *   (gggg,"CREATOR",bbee)    private: only element bbee (bb >= 10)
 * and private groups may be ranges too. An entry replaces an earlier one
 * with the same key (same tags, same creator); private.dic is read after
 * dicom.dic.
 *
 * Where this reading differs from DCMTK's own, on purpose:
 * - An element range without a restrictor covers every element. PS3.6
 *   writes these ranges as (0020,31xx), x being any digit; DCMTK reads
 *   "3100-31FF" as even elements only and would not know (0020,3101).
 *   A group range without a restrictor covers even groups, as in DCMTK:
 *   PS3.5 7.6 repeats groups 50xx and 60xx in even groups only.
 * - Whitespace inside a name is removed, as DCMTK does when it loads a
 *   name, so "End NumberForBaseline" becomes the keyword it shows,
 *   "EndNumberForBaseline". Standard keywords lose DCMTK's "RETIRED_"
 *   prefix (the retired flag says it instead).
 *
 * The layout of the output is documented in ../dict_data.h.
 *
 * The generator refuses rather than guesses: a line it cannot use is
 * reported on stderr as "file:line: message" and the exit status is 1.
 * Output goes to OUT.c.tmp, renamed to OUT.c once complete, so a failed or
 * interrupted run never leaves a table that make would take as current.
 * The output depends only on the input files' contents and base names.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on the input. The real files stay far below them (the longest
 * line has about 110 bytes, the longest name 68 characters, the two files
 * together about 8000 entries); input beyond them is not a dictionary. */
#define MAX_LINE_BYTES 1024
#define MAX_ENTRIES 65536
#define MAX_ERRORS 20           /* stop reading a file after this many */
#define MAX_KEYWORD_BYTES 128
#define MAX_CREATOR_BYTES 64    /* a private creator is an LO value */
#define MAX_VM_BYTES 16         /* "1-n", "2-2n", "1-32" */
#define MAX_PATH_BYTES 4096
#define FIELD_COUNT_MAX 5       /* Tag, VR, Name, VM, Version */
#define FIELD_COUNT_MIN 4       /* Version is optional */

enum parity { PARITY_ANY = 0, PARITY_EVEN = 1, PARITY_ODD = 2 };

/* The spelling of enum dcm_dict_parity in dict_data.h, by enum parity. */
static const char *const parity_names[] = {
    [PARITY_ANY] = "DCM_DICT_ANY",
    [PARITY_EVEN] = "DCM_DICT_EVEN",
    [PARITY_ODD] = "DCM_DICT_ODD",
};

/* A group or element part of a tag: first..last, inclusive. */
struct span {
    uint16_t first, last;
    uint8_t parity; /* enum parity; PARITY_ANY when first == last */
};

/* Where an entry came from, for messages. */
struct origin {
    const char *file;
    unsigned long line;
};

struct entry {
    struct span group;
    struct span element; /* private: first == last == 00ee or bbee */
    char vr[3];          /* two letters, "" for none */
    char vr_alt[3];
    char keyword[MAX_KEYWORD_BYTES + 1];
    char vm[MAX_VM_BYTES + 1];
    char creator[MAX_CREATOR_BYTES + 1]; /* "" for a standard entry */
    bool retired;
    size_t order; /* position in the input: the later entry wins */
    struct origin origin;
};

struct dictionary {
    struct entry *entries;
    size_t count, capacity;
};

static void report(const struct origin *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(const struct origin *at, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%lu: ", at->file, at->line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- small character helpers (locale-independent) ------------------------ */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

static bool is_printable(char c)
{
    return c >= 0x20 && c <= 0x7E;
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
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

/* Strips blanks from both ends of text in place. */
static char *trim(char *text)
{
    size_t len;
    while (is_blank(*text))
        text++;
    len = strlen(text);
    while (len > 0 && is_blank(text[len - 1]))
        text[--len] = '\0';
    return text;
}

/* ---- reading lines -------------------------------------------------------- */

enum line_status { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_NUL, LINE_IO };

/* Reads one line (without its '\n') into buf[cap], NUL-terminated. A line
 * that does not fit, or holds a NUL byte, is consumed and refused. */
static enum line_status read_line(FILE *in, char *buf, size_t cap)
{
    size_t len = 0;
    bool too_long = false, has_nul = false;
    int c;
    while ((c = getc(in)) != EOF && c != '\n') {
        if (c == '\0')
            has_nul = true;
        if (len + 1 < cap)
            buf[len++] = (char)c;
        else
            too_long = true;
    }
    buf[len] = '\0';
    if (ferror(in))
        return LINE_IO;
    if (c == EOF && len == 0 && !too_long && !has_nul)
        return LINE_EOF;
    if (too_long)
        return LINE_TOO_LONG;
    return has_nul ? LINE_NUL : LINE_OK;
}

/* ---- the Tag field -------------------------------------------------------- */

/* Reads the hex digits at *cursor; returns how many there were (values of
 * more than 4 digits are not accumulated: the caller refuses them). */
static size_t read_hex(const char **cursor, unsigned *value)
{
    size_t digits = 0;
    *value = 0;
    while (hex_value(**cursor) >= 0) {
        if (digits < 4)
            *value = *value * 16u + (unsigned)hex_value(**cursor);
        digits++;
        (*cursor)++;
    }
    return digits;
}

static bool read_hex4(const char **cursor, unsigned *value,
                      const char *what, const struct origin *at)
{
    if (read_hex(cursor, value) != 4) {
        report(at, "%s: expected 4 hex digits", what);
        return false;
    }
    return true;
}

/* An optional restrictor after "first-": "o-", "e-" or "u-". A letter
 * followed by '-' is a restrictor ('e' is also a hex digit, but a hex
 * digit there would be followed by three more). */
static bool read_restrictor(const char **cursor, uint8_t *parity,
                            const char *what, const struct origin *at)
{
    const char *p = *cursor;
    if (p[0] == '\0' || p[1] != '-')
        return true;
    switch (p[0]) {
    case 'o': case 'O': *parity = PARITY_ODD; break;
    case 'e': case 'E': *parity = PARITY_EVEN; break;
    case 'u': case 'U': *parity = PARITY_ANY; break;
    default:
        report(at, "%s range: unknown restrictor '%c' (o, e or u)", what,
               is_printable(p[0]) ? p[0] : '?');
        return false;
    }
    *cursor = p + 2;
    return true;
}

static bool is_odd(unsigned number)
{
    return (number & 1u) != 0;
}

/* "gggg", "gggg-gggg" or "gggg-X-gggg" (X one of o, e, u). A range with
 * no restrictor gets default_parity. */
static bool parse_span(const char **cursor, struct span *span,
                       uint8_t default_parity, const char *what,
                       const struct origin *at)
{
    unsigned first, last;
    uint8_t parity = default_parity;
    if (!read_hex4(cursor, &first, what, at))
        return false;
    span->first = span->last = (uint16_t)first;
    span->parity = PARITY_ANY;
    if (**cursor != '-')
        return true;
    (*cursor)++;
    if (!read_restrictor(cursor, &parity, what, at) ||
        !read_hex4(cursor, &last, what, at))
        return false;
    if (last < first) {
        report(at, "%s range %04X-%04X runs backwards", what, first, last);
        return false;
    }
    if ((parity == PARITY_ODD && !is_odd(first)) ||
        (parity == PARITY_EVEN && is_odd(first))) {
        report(at, "%s range starts at %04X, which its %s restriction "
               "excludes", what, first,
               parity == PARITY_ODD ? "odd" : "even");
        return false;
    }
    span->last = (uint16_t)last;
    span->parity = first == last ? PARITY_ANY : parity;
    return true;
}

/* "CREATOR" (the cursor is on the opening quote): printable, no quote or
 * backslash (an LO value cannot hold one), no blank at either end (the
 * lookup trims the caller's trailing spaces, so it could never match). */
static bool parse_creator(const char **cursor, char *creator,
                          const struct origin *at)
{
    const char *start = *cursor + 1;
    const char *end = strchr(start, '"');
    size_t len;
    if (!end) {
        report(at, "private creator: no closing quote");
        return false;
    }
    len = (size_t)(end - start);
    if (len == 0 || len > MAX_CREATOR_BYTES) {
        report(at, "private creator: must have 1 to %d characters",
               MAX_CREATOR_BYTES);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_printable(start[i]) || start[i] == '\\') {
            report(at, "private creator: character 0x%02X not allowed",
                   (unsigned)(unsigned char)start[i]);
            return false;
        }
    }
    if (start[0] == ' ' || start[len - 1] == ' ') {
        report(at, "private creator \"%.*s\": leading or trailing space",
               (int)len, start);
        return false;
    }
    memcpy(creator, start, len);
    creator[len] = '\0';
    *cursor = end + 1;
    return true;
}

/* The element of a private entry: "ee" (any block) or "bbee" with bb at
 * least 10 (one block). */
static bool parse_private_element(const char **cursor, struct span *element,
                                  const struct origin *at)
{
    unsigned value;
    size_t digits = read_hex(cursor, &value);
    if (digits != 2 && digits != 4) {
        report(at, "private element: expected ee or bbee in hex");
        return false;
    }
    if (digits == 4 && value < 0x1000u) {
        report(at, "private element %04X: a fixed element must lie in a "
               "private block, 1000-FFFF", value);
        return false;
    }
    if (**cursor == '-') {
        report(at, "private element ranges are not supported");
        return false;
    }
    element->first = element->last = (uint16_t)value;
    element->parity = PARITY_ANY;
    return true;
}

static bool expect_char(const char **cursor, char wanted, const char *what,
                        const struct origin *at)
{
    if (**cursor != wanted) {
        report(at, "%s: expected '%c'", what, wanted);
        return false;
    }
    (*cursor)++;
    return true;
}

/* The whole Tag field into e->group, e->element and e->creator. */
static bool parse_tag(const char *text, struct entry *e,
                      const struct origin *at)
{
    const char *p = text;
    if (!expect_char(&p, '(', "tag", at) ||
        !parse_span(&p, &e->group, PARITY_EVEN, "group", at) ||
        !expect_char(&p, ',', "tag", at))
        return false;
    if (*p == '"') {
        if (!parse_creator(&p, e->creator, at) ||
            !expect_char(&p, ',', "tag", at) ||
            !parse_private_element(&p, &e->element, at))
            return false;
    } else if (!parse_span(&p, &e->element, PARITY_ANY, "element", at)) {
        return false;
    }
    if (!expect_char(&p, ')', "tag", at))
        return false;
    if (*p != '\0') {
        report(at, "tag: unexpected text after ')'");
        return false;
    }
    return true;
}

/* ---- the VR, Name, VM and Version fields ---------------------------------- */

struct vr_spelling {
    char dic[3];    /* as dicom.dic writes it */
    char vr[3];     /* dcm_dict_entry.vr, "" for DCM_VR_NONE */
    char vr_alt[3]; /* dcm_dict_entry.vr_alt */
};

static const struct vr_spelling vr_spellings[] = {
    {"AE", "AE", ""}, {"AS", "AS", ""}, {"AT", "AT", ""}, {"CS", "CS", ""},
    {"DA", "DA", ""}, {"DS", "DS", ""}, {"DT", "DT", ""}, {"FD", "FD", ""},
    {"FL", "FL", ""}, {"IS", "IS", ""}, {"LO", "LO", ""}, {"LT", "LT", ""},
    {"OB", "OB", ""}, {"OD", "OD", ""}, {"OF", "OF", ""}, {"OL", "OL", ""},
    {"OV", "OV", ""}, {"OW", "OW", ""}, {"PN", "PN", ""}, {"SH", "SH", ""},
    {"SL", "SL", ""}, {"SQ", "SQ", ""}, {"SS", "SS", ""}, {"ST", "ST", ""},
    {"SV", "SV", ""}, {"TM", "TM", ""}, {"UC", "UC", ""}, {"UI", "UI", ""},
    {"UL", "UL", ""}, {"UN", "UN", ""}, {"UR", "UR", ""}, {"US", "US", ""},
    {"UT", "UT", ""}, {"UV", "UV", ""},
    /* DCMTK's pseudo-VRs, for tags whose VR depends on other attributes
     * (Pixel Representation, Bits Allocated, the transfer syntax): the VR
     * to assume first and the other one the standard allows. */
    {"xs", "US", "SS"}, /* US or SS */
    {"ox", "OW", "OB"}, /* OB or OW */
    {"px", "OW", "OB"}, /* Pixel Data: OB or OW */
    {"lt", "OW", "US"}, /* LUT Data: US or OW */
    {"up", "UL", ""},   /* an offset in a DICOMDIR: UL */
    {"na", "", ""},     /* items and delimiters have no VR */
};

static bool parse_vr(const char *text, struct entry *e,
                     const struct origin *at)
{
    size_t count = sizeof vr_spellings / sizeof vr_spellings[0];
    for (size_t i = 0; i < count; i++) {
        if (strcmp(text, vr_spellings[i].dic) == 0) {
            memcpy(e->vr, vr_spellings[i].vr, sizeof e->vr);
            memcpy(e->vr_alt, vr_spellings[i].vr_alt, sizeof e->vr_alt);
            return true;
        }
    }
    report(at, "unknown VR \"%s\"", text);
    return false;
}

/* Copies text into keyword[MAX_KEYWORD_BYTES + 1] without its blanks. */
static bool copy_without_blanks(const char *text, char *keyword,
                                const struct origin *at)
{
    size_t len = 0;
    for (; *text; text++) {
        if (is_blank(*text))
            continue;
        if (!is_printable(*text)) {
            report(at, "name: character 0x%02X not allowed",
                   (unsigned)(unsigned char)*text);
            return false;
        }
        if (len == MAX_KEYWORD_BYTES) {
            report(at, "name longer than %d characters", MAX_KEYWORD_BYTES);
            return false;
        }
        keyword[len++] = *text;
    }
    keyword[len] = '\0';
    return true;
}

#define RETIRED_PREFIX "RETIRED_"

/* The keyword: DCMTK's name for a private entry; for a standard entry the
 * PS3.6 keyword, letters and digits only, without DCMTK's prefix. */
static bool parse_name(const char *text, struct entry *e,
                       const struct origin *at)
{
    size_t prefix_len = strlen(RETIRED_PREFIX);
    if (!copy_without_blanks(text, e->keyword, at))
        return false;
    if (e->creator[0] == '\0' &&
        strncmp(e->keyword, RETIRED_PREFIX, prefix_len) == 0) {
        memmove(e->keyword, e->keyword + prefix_len,
                strlen(e->keyword) - prefix_len + 1);
        e->retired = true;
    }
    if (e->keyword[0] == '\0') {
        report(at, "empty name");
        return false;
    }
    if (e->creator[0] != '\0')
        return true;
    for (const char *c = e->keyword; *c; c++) {
        if (!is_alnum(*c)) {
            report(at, "keyword \"%s\": PS3.6 keywords hold letters and "
                   "digits only", e->keyword);
            return false;
        }
    }
    return true;
}

static const char *skip_digits(const char *text)
{
    while (*text >= '0' && *text <= '9')
        text++;
    return text;
}

/* "1", "1-3", "1-n", "2-2n": digits, then optionally '-' and digits, or
 * digits and 'n', or 'n'. */
static bool parse_vm(const char *text, struct entry *e,
                     const struct origin *at)
{
    const char *p = skip_digits(text);
    bool ok = p != text;
    if (ok && *p == '-') {
        const char *upper = p + 1;
        p = skip_digits(upper);
        if (*p == 'n')
            p++;
        else if (p == upper)
            ok = false;
    }
    if (!ok || *p != '\0' || strlen(text) > MAX_VM_BYTES) {
        report(at, "bad VM \"%s\"", text);
        return false;
    }
    memcpy(e->vm, text, strlen(text) + 1);
    return true;
}

/* ---- one line ------------------------------------------------------------- */

/* Splits line at tabs into fields[FIELD_COUNT_MAX]; returns the number of
 * fields, FIELD_COUNT_MAX + 1 if there are too many. */
static size_t split_fields(char *line, char *fields[FIELD_COUNT_MAX])
{
    size_t count = 0;
    char *start = line;
    for (;;) {
        char *tab = strchr(start, '\t');
        if (count == FIELD_COUNT_MAX)
            return FIELD_COUNT_MAX + 1;
        if (tab)
            *tab = '\0';
        fields[count++] = trim(start);
        if (!tab)
            return count;
        start = tab + 1;
    }
}

static bool is_range(const struct entry *e)
{
    return e->group.first != e->group.last ||
           e->element.first != e->element.last;
}

/* Checks that make sense only for the whole entry. */
static bool check_entry(const struct entry *e, const struct origin *at)
{
    bool is_private = e->creator[0] != '\0';
    bool group_range = e->group.first != e->group.last;
    bool covers_odd_groups =
        group_range ? e->group.parity != PARITY_EVEN : is_odd(e->group.first);
    bool only_odd_groups =
        group_range ? e->group.parity == PARITY_ODD : is_odd(e->group.first);
    if (is_private && !only_odd_groups) {
        report(at, "private entries belong to odd groups only "
               "(write a group range as gggg-o-gggg)");
        return false;
    }
    /* In an odd group only the group length and the creators (elements
     * 0000-00FF) are standard: 0100-0FFF are reserved, and dict.c resolves
     * elements from 1000 on through their creator only, so a range that
     * reached there would claim private data or be silently unreachable. */
    if (!is_private && is_range(e) && covers_odd_groups &&
        e->element.last > 0x00FFu) {
        report(at, "a standard range over odd (private) groups must stay "
               "within elements 0000-00FF");
        return false;
    }
    return true;
}

static bool parse_line(char *line, struct entry *e, const struct origin *at)
{
    static const char *const field_names[FIELD_COUNT_MAX] = {
        "Tag", "VR", "Name", "VM", "Version"};
    char *fields[FIELD_COUNT_MAX];
    size_t count = split_fields(line, fields);
    if (count < FIELD_COUNT_MIN || count > FIELD_COUNT_MAX) {
        report(at, "expected %d or %d tab-separated fields (Tag, VR, Name, "
               "VM, Version), found %s%zu", FIELD_COUNT_MIN,
               FIELD_COUNT_MAX, count > FIELD_COUNT_MAX ? "more than " : "",
               count > FIELD_COUNT_MAX ? (size_t)FIELD_COUNT_MAX : count);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (fields[i][0] == '\0') {
            report(at, "the %s field is empty (fields are separated by "
                   "one tab)", field_names[i]);
            return false;
        }
    }
    memset(e, 0, sizeof *e);
    e->origin = *at;
    if (!parse_tag(fields[0], e, at) || !parse_vr(fields[1], e, at) ||
        !parse_name(fields[2], e, at) || !parse_vm(fields[3], e, at))
        return false;
    if (count == FIELD_COUNT_MAX && strstr(fields[4], "retired"))
        e->retired = true;
    return check_entry(e, at);
}

/* ---- reading a file ------------------------------------------------------- */

static bool is_comment_or_blank(const char *line)
{
    while (is_blank(*line))
        line++;
    return *line == '\0' || *line == '#';
}

static bool append_entry(struct dictionary *dict, const struct entry *e)
{
    if (dict->count == dict->capacity) {
        size_t capacity = dict->capacity ? dict->capacity * 2 : 1024;
        struct entry *grown;
        if (capacity > MAX_ENTRIES)
            capacity = MAX_ENTRIES;
        if (dict->count == capacity) {
            report(&e->origin, "more than %d entries: not a data "
                   "dictionary?", MAX_ENTRIES);
            return false;
        }
        grown = realloc(dict->entries, capacity * sizeof *grown);
        if (!grown) {
            report(&e->origin, "out of memory");
            return false;
        }
        dict->entries = grown;
        dict->capacity = capacity;
    }
    dict->entries[dict->count] = *e;
    dict->entries[dict->count].order = dict->count;
    dict->count++;
    return true;
}

static void report_line_problem(const struct origin *at,
                                enum line_status status)
{
    if (status == LINE_TOO_LONG)
        report(at, "line longer than %d bytes", MAX_LINE_BYTES);
    else if (status == LINE_NUL)
        report(at, "line holds a NUL byte");
    else
        report(at, "read error: %s", strerror(errno));
}

/* Reads every entry of path into dict; false after reporting errors. */
static bool read_dictionary(const char *path, struct dictionary *dict)
{
    char line[MAX_LINE_BYTES + 1];
    struct origin at = {path, 0};
    unsigned errors = 0;
    enum line_status status;
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return false;
    }
    while ((status = read_line(in, line, sizeof line)) != LINE_EOF) {
        struct entry e;
        at.line++;
        /* a long comment is harmless: its start says it is one */
        if (status == LINE_TOO_LONG && is_comment_or_blank(line))
            continue;
        if (status != LINE_OK) {
            report_line_problem(&at, status);
            errors++;
            if (status == LINE_IO)
                break;
        } else if (is_comment_or_blank(line)) {
            continue;
        } else if (!parse_line(line, &e, &at)) {
            errors++;
        } else if (!append_entry(dict, &e)) {
            errors++;
            break;
        }
        if (errors == MAX_ERRORS) {
            report(&at, "too many errors, giving up on this file");
            break;
        }
    }
    fclose(in);
    return errors == 0;
}

/* ---- ordering ------------------------------------------------------------- */

static int compare_numbers(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int compare_spans(const struct span *a, const struct span *b)
{
    int diff = compare_numbers(a->first, b->first);
    if (!diff)
        diff = compare_numbers(a->last, b->last);
    if (!diff)
        diff = compare_numbers(a->parity, b->parity);
    return diff;
}

/* Same key, same place in the dictionary: the later one replaces it. */
static int compare_keys(const struct entry *a, const struct entry *b)
{
    int diff = strcmp(a->creator, b->creator);
    if (!diff)
        diff = compare_spans(&a->group, &b->group);
    if (!diff)
        diff = compare_spans(&a->element, &b->element);
    return diff;
}

static int by_key_then_order(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int diff = compare_keys(a, b);
    return diff ? diff : compare_numbers(a->order, b->order);
}

/* How many numbers a span covers. */
static uint64_t span_size(const struct span *s)
{
    uint64_t width = (uint64_t)s->last - s->first;
    return s->parity == PARITY_ANY ? width + 1 : width / 2 + 1;
}

static int by_tag(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int diff = compare_numbers(a->group.first, b->group.first);
    return diff ? diff : compare_numbers(a->element.first, b->element.first);
}

/* Most specific first, then by key (keys are unique: a total order). */
static int by_specificity(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int diff = compare_numbers(span_size(&a->group) * span_size(&a->element),
                               span_size(&b->group) * span_size(&b->element));
    return diff ? diff : compare_keys(a, b);
}

/* (creator, element byte), then most specific first: one group before a
 * range of groups, one block before any block. Then by key. */
static int by_private_lookup(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int diff = strcmp(a->creator, b->creator);
    if (!diff)
        diff = compare_numbers(a->element.first & 0xFFu,
                               b->element.first & 0xFFu);
    if (!diff)
        diff = compare_numbers(span_size(&a->group), span_size(&b->group));
    if (!diff) /* a fixed block (element >= 1000) sorts first */
        diff = compare_numbers(b->element.first > 0xFFu,
                               a->element.first > 0xFFu);
    return diff ? diff : compare_keys(a, b);
}

static int by_keyword(const void *pa, const void *pb)
{
    const struct entry *const *a = pa, *const *b = pb;
    return strcmp((*a)->keyword, (*b)->keyword);
}

/* Sorts by key and keeps, of entries with the same key, the last read. */
static void drop_replaced(struct dictionary *dict)
{
    size_t kept = 0;
    if (dict->count == 0)
        return;
    qsort(dict->entries, dict->count, sizeof *dict->entries,
          by_key_then_order);
    for (size_t i = 0; i < dict->count; i++) {
        bool replaced = i + 1 < dict->count &&
                        compare_keys(&dict->entries[i],
                                     &dict->entries[i + 1]) == 0;
        if (!replaced)
            dict->entries[kept++] = dict->entries[i];
    }
    dict->count = kept;
}

/* ---- the tables ----------------------------------------------------------- */

struct tables {
    struct entry *standard, *ranges, *privates; /* into one allocation */
    size_t standard_count, range_count, private_count;
    const struct entry **keywords; /* standard, then ranges, by keyword */
    size_t keyword_count;
};

/* Splits dict (replaced entries already dropped) into sorted tables. */
static bool build_tables(const struct dictionary *dict, struct tables *t)
{
    struct entry *all = malloc((dict->count + 1) * sizeof *all);
    size_t i, n = 0;
    memset(t, 0, sizeof *t);
    t->keywords = malloc((dict->count + 1) * sizeof *t->keywords);
    if (!all || !t->keywords) {
        free(all);
        fprintf(stderr, "siren_gen_dict: out of memory\n");
        return false;
    }
    /* standard | ranges | privates, in one array */
    for (int pass = 0; pass < 3; pass++) {
        for (i = 0; i < dict->count; i++) {
            const struct entry *e = &dict->entries[i];
            int kind = e->creator[0] ? 2 : is_range(e) ? 1 : 0;
            if (kind == pass)
                all[n++] = *e;
        }
        if (pass == 0)
            t->standard_count = n;
        else if (pass == 1)
            t->range_count = n - t->standard_count;
    }
    t->private_count = n - t->standard_count - t->range_count;
    t->standard = all;
    t->ranges = all + t->standard_count;
    t->privates = t->ranges + t->range_count;
    qsort(t->standard, t->standard_count, sizeof *all, by_tag);
    qsort(t->ranges, t->range_count, sizeof *all, by_specificity);
    qsort(t->privates, t->private_count, sizeof *all, by_private_lookup);
    for (i = 0; i < t->standard_count + t->range_count; i++)
        t->keywords[t->keyword_count++] = &all[i];
    qsort(t->keywords, t->keyword_count, sizeof *t->keywords, by_keyword);
    return true;
}

static void free_tables(struct tables *t)
{
    free(t->standard);
    free(t->keywords);
}

static void print_tag(FILE *out, const struct entry *e)
{
    fprintf(out, "(%04X,%04X)", (unsigned)e->group.first,
            (unsigned)e->element.first);
}

/* dcm_dict_find_keyword needs one entry per keyword. */
static bool check_keywords_unique(const struct tables *t)
{
    bool ok = true;
    for (size_t i = 1; i < t->keyword_count; i++) {
        const struct entry *a = t->keywords[i - 1], *b = t->keywords[i];
        if (strcmp(a->keyword, b->keyword) != 0)
            continue;
        /* report the later line, naming the earlier */
        if (b->order < a->order) {
            const struct entry *swap = a;
            a = b;
            b = swap;
        }
        fprintf(stderr, "%s:%lu: keyword %s is already used by ",
                b->origin.file, b->origin.line, b->keyword);
        print_tag(stderr, a);
        fprintf(stderr, " at %s:%lu\n", a->origin.file, a->origin.line);
        ok = false;
    }
    if (t->standard_count == 0) {
        fprintf(stderr, "siren_gen_dict: no standard entries: is the first "
                "file DCMTK's dicom.dic?\n");
        ok = false;
    }
    return ok;
}

/* ---- writing -------------------------------------------------------------- */

/* A C string literal. Fields hold printable ASCII only (checked when
 * read); '?' is escaped so that no "??x" can read as a trigraph. */
static void emit_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (; *text; text++) {
        if (*text == '"' || *text == '\\' || *text == '?')
            fputc('\\', out);
        fputc(*text, out);
    }
    fputc('"', out);
}

static void emit_vr(FILE *out, const char *vr)
{
    if (vr[0])
        fprintf(out, "DCM_VR_%s", vr);
    else
        fputs("DCM_VR_NONE", out);
}

/* The dcm_dict_entry initializer, without a trailing comma. */
static void emit_entry(FILE *out, const struct entry *e)
{
    fprintf(out, "{0x%04X%04Xu, ", (unsigned)e->group.first,
            (unsigned)e->element.first);
    emit_vr(out, e->vr);
    fputs(", ", out);
    emit_vr(out, e->vr_alt);
    fputs(", ", out);
    emit_string(out, e->keyword);
    fputs(", ", out);
    emit_string(out, e->vm);
    fputs(", ", out);
    if (e->creator[0])
        emit_string(out, e->creator);
    else
        fputs("NULL", out);
    fprintf(out, ", %s}", e->retired ? "true" : "false");
}

static void emit_count(FILE *out, const char *name, size_t count)
{
    fprintf(out, "};\nconst size_t %s = %zu;\n\n", name, count);
}

/* C11 has no empty initializer lists: an empty table gets one zeroed
 * element that its count of 0 keeps out of reach. */
static void emit_placeholder_if_empty(FILE *out, size_t count)
{
    if (count == 0)
        fputs("    {{0, DCM_VR_NONE, DCM_VR_NONE, NULL, NULL, NULL, false}, "
              "0, 0, 0, 0},\n", out);
}

static void emit_standard(FILE *out, const struct tables *t)
{
    fputs("const dcm_dict_entry dcm_dict_standard[] = {\n", out);
    for (size_t i = 0; i < t->standard_count; i++) {
        fputs("    ", out);
        emit_entry(out, &t->standard[i]);
        fputs(",\n", out);
    }
    emit_count(out, "dcm_dict_standard_count", t->standard_count);
}

static void emit_ranges(FILE *out, const struct tables *t)
{
    fputs("const dcm_dict_range dcm_dict_ranges[] = {\n", out);
    for (size_t i = 0; i < t->range_count; i++) {
        const struct entry *e = &t->ranges[i];
        fputs("    {", out);
        emit_entry(out, e);
        fprintf(out, ", 0x%04Xu, 0x%04Xu, %s, %s},\n",
                (unsigned)e->group.last, (unsigned)e->element.last,
                parity_names[e->group.parity],
                parity_names[e->element.parity]);
    }
    emit_placeholder_if_empty(out, t->range_count);
    emit_count(out, "dcm_dict_range_count", t->range_count);
}

static void emit_privates(FILE *out, const struct tables *t)
{
    fputs("const dcm_dict_private dcm_dict_privates[] = {\n", out);
    for (size_t i = 0; i < t->private_count; i++) {
        const struct entry *e = &t->privates[i];
        fputs("    {", out);
        emit_entry(out, e);
        fprintf(out, ", 0x%04Xu, %s, 0x%02Xu, 0x%02Xu},\n",
                (unsigned)e->group.last, parity_names[e->group.parity],
                (unsigned)(e->element.first & 0xFFu),
                (unsigned)(e->element.first >> 8));
    }
    emit_placeholder_if_empty(out, t->private_count);
    emit_count(out, "dcm_dict_private_count", t->private_count);
}

static void emit_keywords(FILE *out, const struct tables *t)
{
    fputs("const dcm_dict_entry *const dcm_dict_keywords[] = {\n", out);
    for (size_t i = 0; i < t->keyword_count; i++) {
        const struct entry *e = t->keywords[i];
        if (e < t->ranges)
            fprintf(out, "    &dcm_dict_standard[%zu],\n",
                    (size_t)(e - t->standard));
        else
            fprintf(out, "    &dcm_dict_ranges[%zu].entry,\n",
                    (size_t)(e - t->ranges));
    }
    emit_count(out, "dcm_dict_keyword_count", t->keyword_count);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void emit_all(FILE *out, const struct tables *t,
                     const char *dicom_dic, const char *private_dic)
{
    fprintf(out,
            "/*\n * dict_data.c - GENERATED by siren_gen_dict from %s and "
            "%s\n * (DCMTK's data dictionary). Do not edit: the generator "
            "is\n * dicom/tools/gen_dict.c, the layout dicom/dict_data.h.\n"
            " */\n#include \"dict_data.h\"\n\n",
            base_name(dicom_dic), base_name(private_dic));
    emit_standard(out, t);
    emit_ranges(out, t);
    emit_privates(out, t);
    emit_keywords(out, t);
}

/* Writes the tables to path through path.tmp and a rename. */
static bool write_output(const char *path, const struct tables *t,
                         const char *dicom_dic, const char *private_dic)
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
    emit_all(out, t, dicom_dic, private_dic);
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
    struct dictionary dict = {NULL, 0, 0};
    struct tables tables;
    bool ok;
    if (argc != 4) {
        fprintf(stderr, "usage: siren_gen_dict DICOM_DIC PRIVATE_DIC "
                "OUT.c\n");
        return 2;
    }
    /* Read both files even if the first fails: all the errors at once. */
    ok = read_dictionary(argv[1], &dict);
    ok = read_dictionary(argv[2], &dict) && ok;
    if (ok) {
        drop_replaced(&dict);
        ok = build_tables(&dict, &tables);
        if (ok) {
            ok = check_keywords_unique(&tables) &&
                 write_output(argv[3], &tables, argv[1], argv[2]);
            free_tables(&tables);
        }
    }
    free(dict.entries);
    return ok ? 0 : 1;
}
