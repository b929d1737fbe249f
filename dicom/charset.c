/*
 * charset.c - Specific Character Set (0008,0005): the defined terms of
 * PS3.3 C.12.1.1.2 and the decoding of text values to UTF-8 (PS3.5 6.1).
 *
 * Every defined term but ISO_IR 192, GB18030 and GBK names graphic
 * character sets that sit in G0 (bytes 21-7E) or G1 (bytes A0-FF) of an
 * ISO 2022 code. Such values go through a small ISO 2022 state machine
 * (decode_iso2022): value 1 designates the initial G0 and G1 (PS3.5
 * 6.1.2.5.1), escape sequences redesignate them when code extensions are
 * in use (PS3.5 6.1.2.4, 6.1.2.5), and value 1's sets come back before
 * every control character and delimiter (PS3.5 6.1.2.5.3). glibc's iconv
 * converts the characters of each set. UTF-8 is validated here; GB18030
 * and GBK go through iconv in one piece, because their trail bytes overlap
 * ASCII (a 5C trail byte is not a backslash).
 *
 * A dcm_charset caches iconv descriptors: one object is used by one thread
 * at a time (dicom.h, "Threads").
 */
#include "internal.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#define ESC 0x1B
#define SS3 0x8F              /* EUC-JP's prefix for a JIS X 0212 character */
#define REPLACEMENT 0xFFFDu   /* what an undecodable byte becomes */
#define ICONV_ROOM 16         /* output bytes that always take one iconv
                                 character, so each pass makes progress */
#define TERM_KEY_MAX 32       /* longer terms cannot be defined terms */
#define TERM_SHOWN_MAX 64     /* bytes of a term quoted in a message */

/* ------------------------------------------------------------------------
 * Character sets
 * ------------------------------------------------------------------------ */

/* The iconv codecs used, all converted to UTF-8. */
enum codec {
    CODEC_LATIN1, CODEC_LATIN2, CODEC_LATIN3, CODEC_LATIN4, CODEC_CYRILLIC,
    CODEC_ARABIC, CODEC_GREEK, CODEC_HEBREW, CODEC_LATIN5, CODEC_LATIN9,
    CODEC_THAI, CODEC_EUC_JP, CODEC_EUC_KR, CODEC_EUC_CN, CODEC_GB18030,
    CODEC_GBK,
    CODEC_COUNT,
    CODEC_NONE = CODEC_COUNT, /* decoded in this file, without iconv */
};

static const char *const codec_names[CODEC_COUNT] = {
    [CODEC_LATIN1] = "ISO-8859-1",   [CODEC_LATIN2] = "ISO-8859-2",
    [CODEC_LATIN3] = "ISO-8859-3",   [CODEC_LATIN4] = "ISO-8859-4",
    [CODEC_CYRILLIC] = "ISO-8859-5", [CODEC_ARABIC] = "ISO-8859-6",
    [CODEC_GREEK] = "ISO-8859-7",    [CODEC_HEBREW] = "ISO-8859-8",
    [CODEC_LATIN5] = "ISO-8859-9",   [CODEC_LATIN9] = "ISO-8859-15",
    [CODEC_THAI] = "TIS-620",        [CODEC_EUC_JP] = "EUC-JP",
    [CODEC_EUC_KR] = "EUC-KR",       [CODEC_EUC_CN] = "EUC-CN",
    [CODEC_GB18030] = "GB18030",     [CODEC_GBK] = "GBK",
};

/* The graphic character sets G0 or G1 can hold (PS3.3 Tables C.12-2 to
 * C.12-4). */
enum gset {
    GSET_NONE,     /* no set: G1 when value 1 is empty or ISO_IR 6 */
    GSET_ASCII,    /* ISO-IR 6, and ISO-IR 14 (see the escapes table) */
    GSET_KATAKANA, /* ISO-IR 13, JIS X 0201 katakana */
    GSET_JIS_X0208,
    GSET_JIS_X0212,
    GSET_LATIN1, GSET_LATIN2, GSET_LATIN3, GSET_LATIN4, GSET_CYRILLIC,
    GSET_ARABIC, GSET_GREEK, GSET_HEBREW, GSET_LATIN5, GSET_LATIN9,
    GSET_THAI,
    GSET_KS_X1001,
    GSET_GB2312,
    GSET_COUNT
};

struct gset_info {
    uint8_t codec;      /* enum codec */
    uint8_t char_bytes; /* bytes per character: 2 for the 94x94 sets */
};

static const struct gset_info gsets[GSET_COUNT] = {
    [GSET_NONE] = {CODEC_NONE, 1},
    [GSET_ASCII] = {CODEC_NONE, 1},
    [GSET_KATAKANA] = {CODEC_NONE, 1},
    /* JIS X 0208 and 0212 pairs are re-encoded as EUC-JP for iconv. */
    [GSET_JIS_X0208] = {CODEC_EUC_JP, 2},
    [GSET_JIS_X0212] = {CODEC_EUC_JP, 2},
    [GSET_LATIN1] = {CODEC_LATIN1, 1},
    [GSET_LATIN2] = {CODEC_LATIN2, 1},
    [GSET_LATIN3] = {CODEC_LATIN3, 1},
    [GSET_LATIN4] = {CODEC_LATIN4, 1},
    [GSET_CYRILLIC] = {CODEC_CYRILLIC, 1},
    [GSET_ARABIC] = {CODEC_ARABIC, 1},
    [GSET_GREEK] = {CODEC_GREEK, 1},
    [GSET_HEBREW] = {CODEC_HEBREW, 1},
    [GSET_LATIN5] = {CODEC_LATIN5, 1},
    [GSET_LATIN9] = {CODEC_LATIN9, 1},
    [GSET_THAI] = {CODEC_THAI, 1},
    /* In G1 these are the GR bytes of EUC-KR and EUC-CN as they are. */
    [GSET_KS_X1001] = {CODEC_EUC_KR, 2},
    [GSET_GB2312] = {CODEC_EUC_CN, 2},
};

/* Escape sequences (the bytes after ESC) that designate a set to G0 or G1
 * (PS3.3 Tables C.12-3 and C.12-4). */
struct escape {
    const char *bytes;
    bool to_g1;
    uint8_t gset;
};

static const struct escape escapes[] = {
    {"(B", false, GSET_ASCII},
    /* JIS X 0201 Romaji differs from ASCII only at 5C (yen sign) and 7E
     * (overline). 5C must stay the value delimiter that callers split on
     * (PS3.5 6.1.2.3), so Romaji decodes as ASCII, as pydicom does too. */
    {"(J", false, GSET_ASCII},
    {")I", true, GSET_KATAKANA},
    {"$B", false, GSET_JIS_X0208},
    {"$(D", false, GSET_JIS_X0212},
    {"$)C", true, GSET_KS_X1001},
    {"$)A", true, GSET_GB2312},
    {"-A", true, GSET_LATIN1},
    {"-B", true, GSET_LATIN2},
    {"-C", true, GSET_LATIN3},
    {"-D", true, GSET_LATIN4},
    {"-F", true, GSET_GREEK},
    {"-G", true, GSET_ARABIC},
    {"-H", true, GSET_HEBREW},
    {"-L", true, GSET_CYRILLIC},
    {"-M", true, GSET_LATIN5},
    {"-T", true, GSET_THAI},
    {"-b", true, GSET_LATIN9},
};

/* ------------------------------------------------------------------------
 * Defined terms
 * ------------------------------------------------------------------------ */

enum form {
    FORM_ISO2022, /* sets in G0 and G1, see the file comment */
    FORM_UTF8,    /* ISO_IR 192 */
    FORM_ICONV,   /* GB18030, GBK: the whole value through one codec */
};

struct term {
    const char *name;    /* as PS3.3 Tables C.12-2 to C.12-5 spell it */
    uint8_t form;        /* enum form */
    bool code_extension; /* an "ISO 2022" term (PS3.3 C.12.1.1.2) */
    uint8_t g0, g1;      /* FORM_ISO2022: the sets the term designates */
    uint8_t codec;       /* FORM_ICONV */
};

#define SINGLE(name, g1) \
    {name, FORM_ISO2022, false, GSET_ASCII, g1, CODEC_NONE}
#define EXTENDED(name, g0, g1) \
    {name, FORM_ISO2022, true, g0, g1, CODEC_NONE}

static const struct term terms[] = {
    SINGLE("ISO_IR 6", GSET_NONE), /* first: also the empty value 1 */
    SINGLE("ISO_IR 100", GSET_LATIN1),
    SINGLE("ISO_IR 101", GSET_LATIN2),
    SINGLE("ISO_IR 109", GSET_LATIN3),
    SINGLE("ISO_IR 110", GSET_LATIN4),
    SINGLE("ISO_IR 144", GSET_CYRILLIC),
    SINGLE("ISO_IR 127", GSET_ARABIC),
    SINGLE("ISO_IR 126", GSET_GREEK),
    SINGLE("ISO_IR 138", GSET_HEBREW),
    SINGLE("ISO_IR 148", GSET_LATIN5),
    SINGLE("ISO_IR 203", GSET_LATIN9),
    SINGLE("ISO_IR 13", GSET_KATAKANA),
    SINGLE("ISO_IR 166", GSET_THAI),
    EXTENDED("ISO 2022 IR 6", GSET_ASCII, GSET_NONE),
    EXTENDED("ISO 2022 IR 100", GSET_ASCII, GSET_LATIN1),
    EXTENDED("ISO 2022 IR 101", GSET_ASCII, GSET_LATIN2),
    EXTENDED("ISO 2022 IR 109", GSET_ASCII, GSET_LATIN3),
    EXTENDED("ISO 2022 IR 110", GSET_ASCII, GSET_LATIN4),
    EXTENDED("ISO 2022 IR 144", GSET_ASCII, GSET_CYRILLIC),
    EXTENDED("ISO 2022 IR 127", GSET_ASCII, GSET_ARABIC),
    EXTENDED("ISO 2022 IR 126", GSET_ASCII, GSET_GREEK),
    EXTENDED("ISO 2022 IR 138", GSET_ASCII, GSET_HEBREW),
    EXTENDED("ISO 2022 IR 148", GSET_ASCII, GSET_LATIN5),
    EXTENDED("ISO 2022 IR 203", GSET_ASCII, GSET_LATIN9),
    EXTENDED("ISO 2022 IR 13", GSET_ASCII, GSET_KATAKANA),
    EXTENDED("ISO 2022 IR 166", GSET_ASCII, GSET_THAI),
    EXTENDED("ISO 2022 IR 87", GSET_JIS_X0208, GSET_NONE),
    EXTENDED("ISO 2022 IR 159", GSET_JIS_X0212, GSET_NONE),
    EXTENDED("ISO 2022 IR 149", GSET_ASCII, GSET_KS_X1001),
    EXTENDED("ISO 2022 IR 58", GSET_ASCII, GSET_GB2312),
    {"ISO_IR 192", FORM_UTF8, false, GSET_NONE, GSET_NONE, CODEC_NONE},
    {"GB18030", FORM_ICONV, false, GSET_NONE, GSET_NONE, CODEC_GB18030},
    {"GBK", FORM_ICONV, false, GSET_NONE, GSET_NONE, CODEC_GBK},
};

#undef SINGLE
#undef EXTENDED

/* iconv descriptors, opened on first use. */
struct converters {
    iconv_t cd[CODEC_COUNT];
};

#define NO_CONVERTER ((iconv_t)-1)

struct dcm_charset {
    uint8_t form;                  /* enum form, from value 1 */
    uint8_t codec;                 /* FORM_ICONV */
    uint8_t initial_g0;            /* FORM_ISO2022: value 1's sets */
    uint8_t initial_g1;
    bool code_extension;           /* escape sequences are honoured */
    /* Behind a pointer so that decoding a const dcm_charset can cache. */
    struct converters *converters;
};

/* The converter for codec, opened now if need be; NO_CONVERTER if this
 * system's iconv lacks it. */
static iconv_t converter(struct converters *conv, uint8_t codec)
{
    if (conv->cd[codec] == NO_CONVERTER)
        conv->cd[codec] = iconv_open("UTF-8", codec_names[codec]);
    return conv->cd[codec];
}

/* ------------------------------------------------------------------------
 * Parsing (0008,0005)
 * ------------------------------------------------------------------------ */

static bool is_term_space(char c)
{
    return c == ' ' || c == '\0';
}

static bool is_ascii_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ascii_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The spelling-insensitive key of a term: upper case, words and numbers
 * separated by one space, so that the misspellings real files hold
 * ("iso_ir100", "ISO-IR 100", "ISO IR 100", all corrected by pydicom too)
 * give the key of "ISO_IR 100", "ISO IR 100". False if the term holds a
 * byte no defined term has or is too long to be one. */
static bool term_key(const char *text, size_t len, char key[TERM_KEY_MAX])
{
    size_t key_len = 0;
    bool boundary = false, prev_digit = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ' ' || c == '_' || c == '-') {
            boundary = true;
            continue;
        }
        if (!is_ascii_digit(c) && !is_ascii_letter(c))
            return false;
        bool digit = is_ascii_digit(c);
        if (key_len + 2 >= TERM_KEY_MAX)
            return false;
        if (key_len > 0 && (boundary || digit != prev_digit))
            key[key_len++] = ' ';
        key[key_len++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        boundary = false;
        prev_digit = digit;
    }
    key[key_len] = '\0';
    return true;
}

static const struct term *find_term(const char *text, size_t len)
{
    char key[TERM_KEY_MAX], known[TERM_KEY_MAX];

    if (!term_key(text, len, key))
        return NULL;
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        const char *name = terms[i].name;
        if (term_key(name, strlen(name), known) && strcmp(key, known) == 0)
            return &terms[i];
    }
    return NULL;
}

/* A term quoted safely in a message: bytes outside printable ASCII as
 * '?', cut at TERM_SHOWN_MAX bytes. */
static void show_term(const char *text, size_t len,
                      char shown[TERM_SHOWN_MAX + 1])
{
    size_t shown_len = len < TERM_SHOWN_MAX ? len : TERM_SHOWN_MAX;
    for (size_t i = 0; i < shown_len; i++)
        shown[i] = (text[i] >= 0x20 && text[i] < 0x7F) ? text[i] : '?';
    shown[shown_len] = '\0';
}

/* Opens the converters a term needs now, so that a system without them
 * fails here, with a message, rather than decoding everything to U+FFFD. */
static int open_converters(dcm_charset *cs, const struct term *term,
                           const char *shown, dcm_error *err)
{
    const uint8_t codecs[] = {gsets[term->g0].codec, gsets[term->g1].codec,
                              term->codec};

    for (size_t i = 0; i < sizeof codecs; i++) {
        if (codecs[i] == CODEC_NONE)
            continue;
        if (converter(cs->converters, codecs[i]) == NO_CONVERTER)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "Specific Character Set \"%s\" needs iconv to "
                            "convert %s, which this system lacks: install "
                            "glibc's gconv modules", shown,
                            codec_names[codecs[i]]);
    }
    return 0;
}

/* What the values of (0008,0005) seen so far add up to. */
struct parse_state {
    const struct term *first; /* value 1 */
    size_t values;
    bool any_iso2022_term;
};

/* One backslash-separated value of (0008,0005). An empty value 1 means the
 * default repertoire (PS3.3 C.12.1.1.2); an empty later value says
 * nothing and is skipped. */
static int parse_value(dcm_charset *cs, struct parse_state *state,
                       const char *text, size_t len, dcm_error *err)
{
    const struct term *term = &terms[0];

    while (len > 0 && is_term_space(text[len - 1]))
        len--;
    while (len > 0 && is_term_space(text[0])) {
        text++;
        len--;
    }
    if (len > 0) {
        char shown[TERM_SHOWN_MAX + 1];
        show_term(text, len, shown);
        term = find_term(text, len);
        if (!term)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "Specific Character Set value %zu \"%s\" is not "
                            "a defined term this code supports (PS3.3 "
                            "C.12.1.1.2)", state->values + 1, shown);
        int rc = open_converters(cs, term, shown, err);
        if (rc != 0)
            return rc;
    }
    if (state->values == 0)
        state->first = term;
    state->any_iso2022_term |= term->code_extension;
    state->values++;
    return 0;
}

/* Value 1 decides the form and the initial sets (PS3.5 6.1.2.5.1).
 * Tolerated against PS3.3 Table C.12-4: a multi-byte set as value 1, which
 * puts KS X 1001 or GB2312 in G1 from the start, while JIS X 0208 and 0212
 * wait for their escape and G0 starts in ASCII, as in ISO-2022-JP. ISO_IR
 * 192, GB18030 and GBK allow no code extension (PS3.5 6.1.2.5.4): first,
 * they make the other values moot; later, no escape reaches them. */
static void settle(dcm_charset *cs, const struct parse_state *state)
{
    const struct term *first = state->first;

    cs->form = first->form;
    cs->codec = first->codec;
    cs->initial_g0 =
        gsets[first->g0].char_bytes == 1 ? first->g0 : (uint8_t)GSET_ASCII;
    cs->initial_g1 = first->g1;
    cs->code_extension = state->values > 1 || state->any_iso2022_term;
}

static dcm_charset *charset_new(void)
{
    dcm_charset *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->converters = malloc(sizeof *cs->converters);
    if (!cs->converters) {
        free(cs);
        return NULL;
    }
    for (size_t i = 0; i < CODEC_COUNT; i++)
        cs->converters->cd[i] = NO_CONVERTER;
    return cs;
}

dcm_charset *dcm_charset_parse(const char *value, size_t len, dcm_error *err)
{
    struct parse_state state = {&terms[0], 0, false};
    size_t start = 0;

    if (!value && len > 0) {
        dcm_fail(err, DCM_E_ARG, -1, "Specific Character Set: no bytes");
        return NULL;
    }
    if (!value)
        value = ""; /* no pointer arithmetic on NULL below */
    dcm_charset *cs = charset_new();
    if (!cs) {
        dcm_fail(err, DCM_E_NOMEM, -1,
                 "out of memory parsing Specific Character Set");
        return NULL;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i < len && value[i] != '\\')
            continue;
        if (parse_value(cs, &state, value + start, i - start, err) != 0) {
            dcm_charset_free(cs);
            return NULL;
        }
        start = i + 1;
    }
    settle(cs, &state);
    return cs;
}

void dcm_charset_free(dcm_charset *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < CODEC_COUNT; i++)
        if (cs->converters->cd[i] != NO_CONVERTER)
            iconv_close(cs->converters->cd[i]);
    free(cs->converters);
    free(cs);
}

/* ------------------------------------------------------------------------
 * The UTF-8 being built
 * ------------------------------------------------------------------------ */

struct text {
    char *data;
    size_t len;
    size_t cap; /* bytes allocated, the terminating NUL included */
};

/* Room for extra more bytes and the NUL, growing by doubling. */
static int text_reserve(struct text *t, size_t extra)
{
    if (t->cap > t->len && t->cap - t->len - 1 >= extra)
        return 0;
    if (extra > SIZE_MAX - 1 - t->len)
        return DCM_E_NOMEM;
    size_t need = t->len + extra + 1;
    size_t cap = t->cap <= SIZE_MAX / 2 ? t->cap * 2 : SIZE_MAX;
    if (cap < need)
        cap = need;
    char *grown = realloc(t->data, cap);
    if (!grown)
        return DCM_E_NOMEM;
    t->data = grown;
    t->cap = cap;
    return 0;
}

static int text_append(struct text *t, const void *bytes, size_t n)
{
    int rc = text_reserve(t, n);
    if (rc != 0)
        return rc;
    memcpy(t->data + t->len, bytes, n);
    t->len += n;
    return 0;
}

static int text_byte(struct text *t, uint8_t byte)
{
    return text_append(t, &byte, 1);
}

/* A character from U+0800 to U+FFFF, three bytes in UTF-8: the only kind
 * this file makes itself (JIS X 0201 katakana and U+FFFD). */
static int text_char3(struct text *t, uint16_t code_point)
{
    const uint8_t utf8[3] = {
        (uint8_t)(0xE0 | (code_point >> 12)),
        (uint8_t)(0x80 | ((code_point >> 6) & 0x3F)),
        (uint8_t)(0x80 | (code_point & 0x3F)),
    };
    return text_append(t, utf8, sizeof utf8);
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

struct decoder {
    const dcm_charset *cs;
    dcm_vr vr;
    struct text out;
    bool lossy;       /* some bytes became U+FFFD */
    uint8_t g0, g1;   /* enum gset: the sets designated now */
};

static int add_replacement(struct decoder *d)
{
    d->lossy = true;
    return text_char3(&d->out, REPLACEMENT);
}

static int add_replacements(struct decoder *d, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int rc = add_replacement(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Converts len bytes of codec to UTF-8. Characters are unit bytes long (1
 * for the variable-length codes): an undecodable or cut-off character
 * becomes one U+FFFD and conversion resumes unit bytes further, which
 * keeps the pairs of a 94x94 set aligned. */
static int convert(struct decoder *d, uint8_t codec, const uint8_t *src,
                   size_t len, size_t unit)
{
    iconv_t cd = converter(d->cs->converters, codec);
    /* iconv's prototype takes char ** but never writes to the input. */
    char *in = (char *)(uintptr_t)src;
    size_t in_left = len;

    if (cd == NO_CONVERTER)
        return add_replacements(d, len / unit + (len % unit != 0));
    iconv(cd, NULL, NULL, NULL, NULL);
    while (in_left > 0) {
        int rc = text_reserve(&d->out, ICONV_ROOM);
        if (rc != 0)
            return rc;
        char *out = d->out.data + d->out.len;
        size_t out_left = d->out.cap - d->out.len - 1;
        size_t converted = iconv(cd, &in, &in_left, &out, &out_left);
        d->out.len = (size_t)(out - d->out.data);
        if (converted != (size_t)-1 || errno == E2BIG)
            continue;
        size_t skip = in_left < unit ? in_left : unit;
        in += skip;
        in_left -= skip;
        iconv(cd, NULL, NULL, NULL, NULL);
        rc = add_replacement(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The default repertoire (PS3.5 6.1.2.2): bytes 00-7F are themselves,
 * others are no character of it. */
static int decode_ascii(struct decoder *d, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int rc = in[i] < 0x80 ? text_byte(&d->out, in[i]) : add_replacement(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Length of the well-formed UTF-8 character at in (Unicode Table 3-7: no
 * overlong forms, surrogates or code points past U+10FFFF), or 0 with
 * *bad_len the bytes to replace by one U+FFFD (the maximal ill-formed
 * prefix, as Unicode recommends). */
static size_t utf8_char_len(const uint8_t *in, size_t avail, size_t *bad_len)
{
    uint8_t lead = in[0], low = 0x80, high = 0xBF;
    size_t need;

    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        *bad_len = 1;
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= avail || in[i] < low || in[i] > high) {
            *bad_len = i;
            return 0;
        }
        low = 0x80;
        high = 0xBF;
    }
    return need;
}

/* ISO_IR 192 (PS3.3 Table C.12-5): already UTF-8, once validated. */
static int decode_utf8(struct decoder *d, const uint8_t *in, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        size_t bad_len = 0;
        size_t char_len = utf8_char_len(in + pos, len - pos, &bad_len);
        int rc = char_len > 0 ? text_append(&d->out, in + pos, char_len)
                              : add_replacement(d);
        if (rc != 0)
            return rc;
        pos += char_len > 0 ? char_len : bad_len;
    }
    return 0;
}

/* Value 1's sets are active at the start of a value (PS3.5 6.1.2.5.1) and
 * again before every control character and delimiter (PS3.5 6.1.2.5.3). */
static void restore_initial_sets(struct decoder *d)
{
    d->g0 = d->cs->initial_g0;
    d->g1 = d->cs->initial_g1;
}

/* The delimiters of PS3.5 6.1.2.5.3: the backslash between values (but
 * not in ST, LT and UT, single values where it is text: PS3.5 6.2) and,
 * in PN, '^' between components and '=' between component groups. */
static bool is_delimiter(dcm_vr vr, uint8_t byte)
{
    if (byte == '\\')
        return vr != DCM_VR_ST && vr != DCM_VR_LT && vr != DCM_VR_UT;
    return vr == DCM_VR_PN && (byte == '^' || byte == '=');
}

static const struct escape *find_escape(const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++)
        if (strlen(escapes[i].bytes) == len &&
            memcmp(escapes[i].bytes, bytes, len) == 0)
            return &escapes[i];
    return NULL;
}

/* An escape sequence at in (ISO 2022: ESC, intermediate bytes 20-2F, a
 * final byte 30-7E) designating a set to G0 or G1 (PS3.5 6.1.2.5). An
 * unknown or cut-off sequence becomes one U+FFFD. Sets not named in
 * (0008,0005) are honoured too: the escape says what the bytes are. */
static int designate(struct decoder *d, const uint8_t *in, size_t avail,
                     size_t *used)
{
    size_t end = 1;

    while (end < avail && in[end] >= 0x20 && in[end] <= 0x2F)
        end++;
    if (end == avail || in[end] < 0x30 || in[end] > 0x7E) {
        *used = end;
        return add_replacement(d);
    }
    *used = end + 1;
    const struct escape *escape = find_escape(in + 1, end);
    if (!escape)
        return add_replacement(d);
    if (escape->to_g1)
        d->g1 = escape->gset;
    else
        d->g0 = escape->gset;
    return 0;
}

/* Two-byte characters of JIS X 0208 or 0212 in G0: bytes 21-7E taken in
 * pairs, so that a 5C, 5E or 3D inside a pair is half a character, not a
 * delimiter. EUC-JP holds the same pairs with the high bits set, after an
 * SS3 byte for JIS X 0212. A lone last byte becomes U+FFFD. */
static int decode_g0_pairs(struct decoder *d, const uint8_t *in,
                           size_t avail, size_t *used)
{
    size_t run = 0, pos;

    while (run < avail && in[run] >= 0x21 && in[run] <= 0x7E)
        run++;
    *used = run;
    for (pos = 0; pos + 1 < run; pos += 2) {
        uint8_t euc[3];
        size_t euc_len = 0;
        if (d->g0 == GSET_JIS_X0212)
            euc[euc_len++] = SS3;
        euc[euc_len++] = (uint8_t)(in[pos] | 0x80);
        euc[euc_len++] = (uint8_t)(in[pos + 1] | 0x80);
        int rc = convert(d, CODEC_EUC_JP, euc, euc_len, euc_len);
        if (rc != 0)
            return rc;
    }
    return pos < run ? add_replacement(d) : 0;
}

/* JIS X 0201 katakana (ISO-IR 13): A1-DF are U+FF61-U+FF9F in order. */
static int decode_katakana(struct decoder *d, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int rc = in[i] >= 0xA1 && in[i] <= 0xDF
                     ? text_char3(&d->out, (uint16_t)(0xFF61 + in[i] - 0xA1))
                     : add_replacement(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A run of bytes 80-FF: characters of the set in G1. */
static int decode_g1_run(struct decoder *d, const uint8_t *in, size_t avail,
                         size_t *used)
{
    size_t run = 0;

    while (run < avail && in[run] >= 0x80)
        run++;
    *used = run;
    switch (d->g1) {
    case GSET_NONE:
        return add_replacements(d, run);
    case GSET_KATAKANA:
        return decode_katakana(d, in, run);
    default:
        return convert(d, gsets[d->g1].codec, in, run,
                       gsets[d->g1].char_bytes);
    }
}

/* Decodes what starts at in: an escape sequence, a control character, a
 * delimiter, or a run of characters; *used gets the bytes it took. */
static int iso2022_step(struct decoder *d, const uint8_t *in, size_t avail,
                        size_t *used)
{
    uint8_t byte = in[0];

    *used = 1;
    if (byte == ESC && d->cs->code_extension)
        return designate(d, in, avail, used);
    if (byte < 0x20) {
        restore_initial_sets(d);
        return text_byte(&d->out, byte);
    }
    if (byte >= 0x80)
        return decode_g1_run(d, in, avail, used);
    /* SPACE and DEL are themselves whatever G0 holds (ISO 2022). */
    if (byte == ' ' || byte == 0x7F || gsets[d->g0].char_bytes == 1) {
        if (is_delimiter(d->vr, byte))
            restore_initial_sets(d);
        return text_byte(&d->out, byte);
    }
    return decode_g0_pairs(d, in, avail, used);
}

static int decode_iso2022(struct decoder *d, const uint8_t *in, size_t len)
{
    size_t pos = 0;

    restore_initial_sets(d);
    while (pos < len) {
        size_t used;
        int rc = iso2022_step(d, in + pos, len - pos, &used);
        if (rc != 0)
            return rc;
        pos += used;
    }
    return 0;
}

/* Only SH, LO, ST, LT, UC, UT and PN follow Specific Character Set (PS3.5
 * 6.1.2.3); the other string VRs are the default repertoire. */
static int decode_value(struct decoder *d, const uint8_t *in, size_t len)
{
    if (!d->cs || !dcm_vr_uses_charset(d->vr))
        return decode_ascii(d, in, len);
    switch (d->cs->form) {
    case FORM_UTF8:
        return decode_utf8(d, in, len);
    case FORM_ICONV:
        return convert(d, d->cs->codec, in, len, 1);
    default:
        return decode_iso2022(d, in, len);
    }
}

/* *lossy is only ever set to true, so that a caller can gather it over
 * many values. */
char *dcm_charset_decode(const dcm_charset *cs, dcm_vr vr,
                         const uint8_t *bytes, size_t len, size_t *out_len,
                         bool *lossy, dcm_error *err)
{
    struct decoder d = {.cs = cs, .vr = vr};

    if (!bytes && len > 0) {
        dcm_fail(err, DCM_E_ARG, -1, "text value to decode: no bytes");
        return NULL;
    }
    if (!bytes)
        bytes = (const uint8_t *)""; /* no pointer arithmetic on NULL */
    int rc = text_reserve(&d.out, len);
    if (rc == 0)
        rc = decode_value(&d, bytes, len);
    if (rc != 0) {
        free(d.out.data);
        dcm_fail(err, rc, -1, "out of memory decoding a %zu-byte %s value",
                 len, dcm_vr_name(vr));
        return NULL;
    }
    d.out.data[d.out.len] = '\0';
    if (out_len)
        *out_len = d.out.len;
    if (lossy && d.lossy)
        *lossy = true;
    char *fitted = realloc(d.out.data, d.out.len + 1);
    return fitted ? fitted : d.out.data;
}
