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

static void put_utf8(reader *r, uint32_t cp)
{
    unsigned char *o = (unsigned char *)r->out;
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xC0 | cp >> 6);
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xE0 | cp >> 12);
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | cp >> 18);
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    r->out = (char *)o;
}

/* Four hex digits after "\u"; -1 if they are not there. */
static long hex4(reader *r)
{
    if (r->end - r->p < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = r->p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    r->p += 4;
    return value;
}

/* After "\u": a code point, a surrogate pair, or U+FFFD for a lone
 * surrogate and for U+0000. At most 6 bytes in, 3 out, or 12 in, 4 out. */
static int unicode_escape(reader *r)
{
    long unit = hex4(r);
    if (unit < 0)
        return fail(r, "\\u needs four hex digits");
    uint32_t cp = (uint32_t)unit;
    if (unit >= 0xD800 && unit <= 0xDBFF && r->end - r->p >= 6 &&
        r->p[0] == '\\' && r->p[1] == 'u') {
        const unsigned char *save = r->p;
        r->p += 2;
        long low = hex4(r);
        if (low >= 0xDC00 && low <= 0xDFFF)
            cp = 0x10000 + (((uint32_t)unit - 0xD800) << 10) +
                 ((uint32_t)low - 0xDC00);
        else
            r->p = save; /* the next escape stands on its own */
    }
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    put_utf8(r, cp);
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

static bool is_digit(const reader *r)
{
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* A number as RFC 8259 writes it; its text is copied. */
static int read_number(reader *r, const char **text)
{
    const unsigned char *start = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (!is_digit(r))
        return fail(r, "not a value");
    if (*r->p == '0')
        r->p++;
    else
        while (is_digit(r))
            r->p++;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!is_digit(r))
            return fail(r, "a digit must follow '.'");
        while (is_digit(r))
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!is_digit(r))
            return fail(r, "a digit must follow the exponent");
        while (is_digit(r))
            r->p++;
    }
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
            const char *key, *value;
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
