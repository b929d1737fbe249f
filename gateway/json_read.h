/*
 * json_read.h - reading JSON (RFC 8259) the gateway did not write itself.
 *
 * The audit trail's lines read back: one flat JSON object per line,
 * whose values are strings, numbers, true, false or null, as audit.c
 * writes them. Nested objects and arrays are refused: the audit trail has
 * none, and a reader that accepts only what it needs is a smaller target.
 * The line is untrusted (the file may have been edited or damaged):
 * lengths and counts are bounded, and every failure says why and at which
 * byte.
 *
 * Below them, the pieces of JSON text that this reader and the reader of
 * the archive's answers (rest_answer.c, which skips nested values) share.
 *
 * Threads: the functions keep no state; an object is used by one thread.
 */
#ifndef SIREN_GW_JSON_READ_H
#define SIREN_GW_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_JSON_FLAT_MAX_FIELDS 64
#define GW_JSON_FLAT_MAX_BYTES (64u << 10) /* of one line */

typedef struct gw_json_flat {
    size_t count;
    const char *keys[GW_JSON_FLAT_MAX_FIELDS];   /* UTF-8 as decoded, */
    const char *values[GW_JSON_FLAT_MAX_FIELDS]; /* NUL-terminated */
    char *text; /* holds the decoded keys and values */
} gw_json_flat;

/* Parses len bytes (one object, whitespace and a line end around it
 * allowed) into out. Strings are unescaped; \u escapes become UTF-8 (a
 * lone surrogate or \u0000 becomes U+FFFD, so that no value hides a NUL);
 * other bytes are kept as they are (the caller checks UTF-8 where it
 * matters). A number keeps its text; true and false become "true" and
 * "false"; a null value leaves its key out. Returns 0, or -1 with why
 * filled; out owns its memory either way (gw_json_flat_free). */
int gw_json_flat_parse(const char *line, size_t len, gw_json_flat *out,
                       char *why, size_t why_size);
/* The value of the first field named key, or NULL. Borrowed from o. */
const char *gw_json_flat_get(const gw_json_flat *o, const char *key);
/* Frees what parsing allocated; o may be zeroed or parsed. */
void gw_json_flat_free(gw_json_flat *o);

/* ---- JSON text ----
 * Each reads from *at, never at or past end, and on success leaves *at
 * just after what it read. */

/* After "\u": four hex digits, and when they are a high surrogate
 * followed by "\u" and a low one, that pair too, into *cp; a lone
 * surrogate is U+FFFD. false, *at unmoved, without four hex digits. */
bool gw_json_unicode_escape(const unsigned char **at,
                            const unsigned char *end, uint32_t *cp);
/* A number as RFC 8259 writes it: NULL, or why not, with *at at the byte
 * that is wrong. */
const char *gw_json_number(const unsigned char **at,
                           const unsigned char *end);
/* Code point cp (at most U+10FFFF) as UTF-8 into out; its length, 1-4. */
size_t gw_json_utf8(uint32_t cp, unsigned char out[4]);

#endif /* SIREN_GW_JSON_READ_H */
