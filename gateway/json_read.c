/* json_read.c - a bounded reader of flat JSON objects (json_read.h): one
 * pass over the line, decoded strings written into one buffer no longer
 * than the line (an escape never decodes to more bytes than it takes). */
#include "json_read.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *p, *end, *start;
    char *out;              /* where the next decoded byte goes */
    char *why;
    size_t why_size;
} reader;

static int fail(reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(reader *r, const char *fmt, ...)
{
    char message[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    snprintf(r->why, r->why_size, "%s at byte %zu", message,
             (size_t)(r->p - r->start));
    return -1;
}

static void skip_space(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
                             *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* ---- JSON text (json_read.h) ---- */

size_t gw_json_utf8(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Four hex digits at *at into *value; false, *at unmoved, if they are not
 * there. */
static bool hex4(const unsigned char **at, const unsigned char *end,
                 uint32_t *value)
{
    if (end - *at < 4)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (*at)[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return false;
        v = v * 16 + (uint32_t)digit;
    }
    *at += 4;
    *value = v;
    return true;
}

bool gw_json_unicode_escape(const unsigned char **at,
                            const unsigned char *end, uint32_t *cp)
{
    if (!hex4(at, end, cp))
        return false;
    if (*cp < 0xD800 || *cp > 0xDFFF)
        return true;
    const unsigned char *low_at = *at + 2;
    uint32_t low;
    if (*cp <= 0xDBFF && end - *at >= 6 && (*at)[0] == '\\' &&
        (*at)[1] == 'u' && hex4(&low_at, end, &low) && low >= 0xDC00 &&
        low <= 0xDFFF) {
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (low - 0xDC00);
        *at = low_at;
    } else {
        *cp = 0xFFFD; /* a lone surrogate; what follows stands alone */
    }
    return true;
}

static bool digits(const unsigned char **at, const unsigned char *end)
{
    const unsigned char *start = *at;
    while (*at < end && **at >= '0' && **at <= '9')
        (*at)++;
    return *at > start;
}

static bool next_is(const unsigned char **at, const unsigned char *end,
                    char c)
{
    if (*at == end || **at != (unsigned char)c)
        return false;
    (*at)++;
    return true;
}

const char *gw_json_number(const unsigned char **at,
                           const unsigned char *end)
{
    next_is(at, end, '-');
    if (!next_is(at, end, '0') && !digits(at, end))
        return "not a value";
    if (next_is(at, end, '.') && !digits(at, end))
        return "a digit must follow '.'";
    if (next_is(at, end, 'e') || next_is(at, end, 'E')) {
        if (!next_is(at, end, '+'))
            next_is(at, end, '-');
        if (!digits(at, end))
            return "a digit must follow the exponent";
    }
    return NULL;
}

/* ---- flat objects ---- */

/* After "\u": the code point into r->out, U+0000 as U+FFFD so that no
 * value hides a NUL. At most 6 bytes in, 3 out, or 12 in, 4 out. */
static int unicode_escape(reader *r)
{
    uint32_t cp;
    if (!gw_json_unicode_escape(&r->p, r->end, &cp))
        return fail(r, "\\u needs four hex digits");
    r->out += gw_json_utf8(cp ? cp : 0xFFFD, (unsigned char *)r->out);
    return 0;
}

/* A string at r->p (its opening quote), decoded into r->out and ended
 * with a NUL; *text is where it starts. */
static int read_string(reader *r, const char **text)
{
    if (r->p >= r->end || *r->p != '"')
        return fail(r, "a string must start with '\"'");
    r->p++;
    *text = r->out;
    for (;;) {
        if (r->p >= r->end)
            return fail(r, "unterminated string");
        unsigned char c = *r->p++;
        if (c == '"')
            break;
        if (c < 0x20) {
            r->p--;
            return fail(r, "control byte 0x%02x in a string", c);
        }
        if (c != '\\') {
            *r->out++ = (char)c;
            continue;
        }
        if (r->p >= r->end)
            return fail(r, "unterminated escape");
        c = *r->p++;
        static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *e = NULL;
        for (size_t i = 0; i + 1 < sizeof escapes; i += 2)
            if (escapes[i] == (char)c)
                e = &escapes[i + 1];
        if (e) {
            *r->out++ = *e;
        } else if (c == 'u') {
            if (unicode_escape(r) < 0)
                return -1;
        } else {
            r->p -= 2; /* at the backslash */
            return fail(r, "unknown escape \\%c", c >= 0x20 && c < 0x7F
                                                       ? c : '?');
        }
    }
    *r->out++ = '\0';
    return 0;
}

/* A number as RFC 8259 writes it; its text is copied. */
static int read_number(reader *r, const char **text)
{
    const unsigned char *start = r->p;
    const char *why = gw_json_number(&r->p, r->end);
    if (why)
        return fail(r, "%s", why);
    size_t len = (size_t)(r->p - start);
    *text = r->out;
    memcpy(r->out, start, len);
    r->out += len;
    *r->out++ = '\0';
    return 0;
}

static bool literal(reader *r, const char *word)
{
    size_t len = strlen(word);
    if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
        return false;
    r->p += len;
    return true;
}

/* A value: its text, or NULL for null. true/false take 4 and 5 bytes
 * and decode to 5 and 6 with the NUL: no more than a string would. */
static int read_value(reader *r, const char **text)
{
    if (r->p < r->end && *r->p == '"')
        return read_string(r, text);
    if (literal(r, "null")) {
        *text = NULL;
        return 0;
    }
    const char *word = literal(r, "true") ? "true"
                       : literal(r, "false") ? "false" : NULL;
    if (word) {
        *text = r->out;
        memcpy(r->out, word, strlen(word) + 1);
        r->out += strlen(word) + 1;
        return 0;
    }
    if (r->p < r->end && (*r->p == '{' || *r->p == '['))
        return fail(r, "nested objects and arrays are not read");
    return read_number(r, text);
}

static int read_object(reader *r, gw_json_flat *o)
{
    skip_space(r);
    if (r->p >= r->end || *r->p != '{')
        return fail(r, "not a JSON object");
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
    } else {
        for (;;) {
            const char *key = NULL, *value = NULL;
            skip_space(r);
            if (read_string(r, &key) < 0)
                return -1;
            skip_space(r);
            if (r->p >= r->end || *r->p != ':')
                return fail(r, "':' expected");
            r->p++;
            skip_space(r);
            if (read_value(r, &value) < 0)
                return -1;
            if (value) {
                if (o->count == GW_JSON_FLAT_MAX_FIELDS)
                    return fail(r, "more than %d fields",
                                GW_JSON_FLAT_MAX_FIELDS);
                o->keys[o->count] = key;
                o->values[o->count++] = value;
            }
            skip_space(r);
            if (r->p < r->end && *r->p == ',') {
                r->p++;
                continue;
            }
            if (r->p < r->end && *r->p == '}') {
                r->p++;
                break;
            }
            return fail(r, "',' or '}' expected");
        }
    }
    skip_space(r);
    if (r->p != r->end)
        return fail(r, "text after the object");
    return 0;
}

int gw_json_flat_parse(const char *line, size_t len, gw_json_flat *out,
                       char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (len > GW_JSON_FLAT_MAX_BYTES) {
        snprintf(why, why_size, "line of %zu bytes, more than %u", len,
                 GW_JSON_FLAT_MAX_BYTES);
        return -1;
    }
    /* Decoded text is never longer than the input: each string loses its
     * two quotes and gains one NUL; escapes shrink; a number or literal
     * (at least 1 byte) follows a ':' that is not copied. */
    out->text = malloc(len + 1);
    if (!out->text) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    reader r = {.p = (const unsigned char *)line,
                .end = (const unsigned char *)line + len,
                .start = (const unsigned char *)line, .out = out->text,
                .why = why, .why_size = why_size};
    if (read_object(&r, out) < 0) {
        out->count = 0;
        return -1;
    }
    return 0;
}

const char *gw_json_flat_get(const gw_json_flat *o, const char *key)
{
    for (size_t i = 0; i < o->count; i++)
        if (strcmp(o->keys[i], key) == 0)
            return o->values[i];
    return NULL;
}

void gw_json_flat_free(gw_json_flat *o)
{
    free(o->text);
    o->text = NULL;
    o->count = 0;
}
