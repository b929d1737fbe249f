/*
 * bytes.h - building DICOM byte streams by hand for the unit tests, so that
 * each test shows exactly which bytes it feeds the reader.
 */
#ifndef SIREN_TEST_BYTES_H
#define SIREN_TEST_BYTES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct bytes {
    uint8_t *data;
    size_t len, cap;
    bool big_endian; /* numbers (tags, lengths) written big endian */
} bytes;

static inline void bytes_put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void bytes_u16(bytes *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    if (b->big_endian) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
    bytes_put(b, p, 2);
}

static inline void bytes_u32(bytes *b, uint32_t v)
{
    if (b->big_endian) {
        bytes_u16(b, (uint16_t)(v >> 16));
        bytes_u16(b, (uint16_t)v);
    } else {
        bytes_u16(b, (uint16_t)v);
        bytes_u16(b, (uint16_t)(v >> 16));
    }
}

static inline void bytes_tag(bytes *b, uint16_t group, uint16_t element)
{
    bytes_u16(b, group);
    bytes_u16(b, element);
}

static inline bool bytes_long_vr(const char *vr)
{
    static const char *const long_vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW",
                                           "SQ", "SV", "UC", "UN", "UR", "UT",
                                           "UV"};
    for (size_t i = 0; i < sizeof long_vrs / sizeof long_vrs[0]; i++)
        if (memcmp(vr, long_vrs[i], 2) == 0)
            return true;
    return false;
}

/* Header of an explicit VR element; length may be 0xFFFFFFFF. */
static inline void bytes_explicit_header(bytes *b, uint16_t group,
                                         uint16_t element, const char *vr,
                                         uint32_t length)
{
    bytes_tag(b, group, element);
    bytes_put(b, vr, 2);
    if (bytes_long_vr(vr)) {
        bytes_u16(b, 0);
        bytes_u32(b, length);
    } else {
        bytes_u16(b, (uint16_t)length);
    }
}

static inline void bytes_explicit(bytes *b, uint16_t group, uint16_t element,
                                  const char *vr, const void *value,
                                  uint32_t length)
{
    bytes_explicit_header(b, group, element, vr, length);
    bytes_put(b, value, length);
}

static inline void bytes_explicit_str(bytes *b, uint16_t group,
                                      uint16_t element, const char *vr,
                                      const char *text)
{
    bytes_explicit(b, group, element, vr, text, (uint32_t)strlen(text));
}

static inline void bytes_implicit(bytes *b, uint16_t group, uint16_t element,
                                  const void *value, uint32_t length)
{
    bytes_tag(b, group, element);
    bytes_u32(b, length);
    bytes_put(b, value, length);
}

/* Item, item delimiter and sequence delimiter (no VR in any encoding). */
static inline void bytes_item(bytes *b, uint32_t length)
{
    bytes_tag(b, 0xFFFE, 0xE000);
    bytes_u32(b, length);
}

static inline void bytes_item_end(bytes *b)
{
    bytes_tag(b, 0xFFFE, 0xE00D);
    bytes_u32(b, 0);
}

static inline void bytes_sequence_end(bytes *b)
{
    bytes_tag(b, 0xFFFE, 0xE0DD);
    bytes_u32(b, 0);
}

/* Preamble, "DICM" and a file meta (always explicit VR LE) naming ts. */
static inline void bytes_part10_header(bytes *b, const char *ts)
{
    static const uint8_t preamble[128];
    bool was_big = b->big_endian;
    b->big_endian = false;
    bytes_put(b, preamble, sizeof preamble);
    bytes_put(b, "DICM", 4);
    bytes meta = {0};
    static const uint8_t version[2] = {0, 1};
    char uid[65];
    size_t n = strlen(ts);
    memcpy(uid, ts, n);
    if (n % 2)
        uid[n++] = '\0';
    bytes_explicit(&meta, 0x0002, 0x0001, "OB", version, 2);
    bytes_explicit(&meta, 0x0002, 0x0002, "UI", "1.2.3\0", 6);
    bytes_explicit(&meta, 0x0002, 0x0003, "UI", "1.2.3.4\0", 8);
    bytes_explicit(&meta, 0x0002, 0x0010, "UI", uid, (uint32_t)n);
    uint8_t group_length[4] = {(uint8_t)meta.len, (uint8_t)(meta.len >> 8),
                               (uint8_t)(meta.len >> 16),
                               (uint8_t)(meta.len >> 24)};
    bytes_explicit(b, 0x0002, 0x0000, "UL", group_length, 4);
    bytes_put(b, meta.data, meta.len);
    free(meta.data);
    b->big_endian = was_big;
}

#endif /* SIREN_TEST_BYTES_H */
