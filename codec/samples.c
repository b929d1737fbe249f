/*
 * samples.c - the loops between a frame's samples (codec.h's layout: little
 * endian, components interleaved) and the int32 planes and lines the codec
 * libraries take and give. They run for every sample an encoder reads and
 * every sample a decoder writes, the lossless check's included: a quarter
 * of an HTJ2K encode when each sample went through codec_sample_get, an
 * eighth with a loop per component and a variable stride.
 *
 * So each loop is written once per sample width with a stride the
 * compiler knows, three components are split in one pass, and on x86-64
 * GCC builds the hot functions twice, for AVX2 and for the baseline, the
 * loader picking one by the CPU (target_clones: one binary for every
 * x86-64). CMakeLists.txt lets the vectoriser use its full cost model for
 * this file only.
 */
#include "internal.h"

/* target_clones needs GCC and an ifunc-capable loader (glibc's; not musl). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__)
#define CODEC_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CODEC_VECTOR_CLONES
#endif

size_t codec_sample_bytes(const codec_image *image)
{
    return image->bits_allocated / 8u;
}

/* Little-endian samples of 16 and 32 bits, byte by byte (any host). */
static inline uint32_t load16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void store16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void store32(uint8_t *p, uint32_t v)
{
    for (size_t b = 0; b < 4; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

static uint32_t stored_mask(const codec_image *image)
{
    return image->bits_stored >= 32 ? UINT32_MAX
                                    : (1u << image->bits_stored) - 1u;
}

static uint32_t sign_bit(const codec_image *image)
{
    return image->pixel_representation == 1 ? 1u << (image->bits_stored - 1)
                                            : 0;
}

/* raw reduced to its stored bits (mask) and, when sign is the sign bit of
 * a signed sample, sign-extended; the two's complement pattern of the
 * result, as int32 or as bits_allocated bits. */
static inline uint32_t reduce(uint32_t raw, uint32_t mask, uint32_t sign)
{
    return ((raw & mask) ^ sign) - sign;
}

/* The reference the loops below are tested against: one sample, its sign
 * taken by arithmetic rather than by reduce(). */
int64_t codec_sample_get(const codec_image *image, const uint8_t *frame,
                         size_t i)
{
    uint32_t raw = image->bits_allocated == 8    ? frame[i]
                   : image->bits_allocated == 16 ? load16(frame + 2 * i)
                                                 : load32(frame + 4 * i);
    unsigned bits = image->bits_stored;
    raw &= stored_mask(image);
    if (image->pixel_representation == 1 && (raw >> (bits - 1)) & 1u)
        return (int64_t)raw - ((int64_t)1 << bits);
    return raw;
}

/* Every step-th sample of one width into out; called with step 1 spelled
 * out, so that the inlined copy is a plain run. */
static inline void get8(const uint8_t *p, size_t step, size_t count,
                        int32_t *out, uint32_t mask, uint32_t sign)
{
    for (size_t i = 0; i < count; i++)
        out[i] = (int32_t)reduce(p[i * step], mask, sign);
}

static inline void get16(const uint8_t *p, size_t step, size_t count,
                         int32_t *out, uint32_t mask, uint32_t sign)
{
    for (size_t i = 0; i < count; i++)
        out[i] = (int32_t)reduce(load16(p + 2 * i * step), mask, sign);
}

static inline void get32(const uint8_t *p, size_t step, size_t count,
                         int32_t *out, uint32_t mask, uint32_t sign)
{
    for (size_t i = 0; i < count; i++)
        out[i] = (int32_t)reduce(load32(p + 4 * i * step), mask, sign);
}

CODEC_VECTOR_CLONES
void codec_samples_get(const codec_image *image, const uint8_t *frame,
                       size_t first, size_t step, size_t count, int32_t *out)
{
    uint32_t mask = stored_mask(image), sign = sign_bit(image);
    const uint8_t *p = frame + first * codec_sample_bytes(image);
    switch (image->bits_allocated) {
    case 8:
        if (step == 1)
            get8(p, 1, count, out, mask, sign);
        else
            get8(p, step, count, out, mask, sign);
        break;
    case 16:
        if (step == 1)
            get16(p, 1, count, out, mask, sign);
        else
            get16(p, step, count, out, mask, sign);
        break;
    default:
        if (step == 1)
            get32(p, 1, count, out, mask, sign);
        else
            get32(p, step, count, out, mask, sign);
        break;
    }
}

static inline void put8(uint8_t *p, size_t step, size_t count,
                        const int32_t *in)
{
    for (size_t i = 0; i < count; i++)
        p[i * step] = (uint8_t)in[i];
}

static inline void put16(uint8_t *p, size_t step, size_t count,
                         const int32_t *in)
{
    for (size_t i = 0; i < count; i++)
        store16(p + 2 * i * step, (uint32_t)in[i]);
}

static inline void put32(uint8_t *p, size_t step, size_t count,
                         const int32_t *in)
{
    for (size_t i = 0; i < count; i++)
        store32(p + 4 * i * step, (uint32_t)in[i]);
}

CODEC_VECTOR_CLONES
void codec_samples_put(const codec_image *image, uint8_t *frame,
                       size_t first, size_t step, size_t count,
                       const int32_t *in)
{
    uint8_t *p = frame + first * codec_sample_bytes(image);
    switch (image->bits_allocated) {
    case 8:
        if (step == 1)
            put8(p, 1, count, in);
        else
            put8(p, step, count, in);
        break;
    case 16:
        if (step == 1)
            put16(p, 1, count, in);
        else
            put16(p, step, count, in);
        break;
    default:
        if (step == 1)
            put32(p, 1, count, in);
        else
            put32(p, step, count, in);
        break;
    }
}

/* Colour of 8 bits allocated, the common case (RGB and YBR_FULL
 * ultrasound, photographs, secondary captures), in one pass; restrict
 * tells the compiler the planes and the frame do not overlap. */
static inline void get_colour8(const uint8_t *restrict p, size_t count,
                               int32_t *restrict c0, int32_t *restrict c1,
                               int32_t *restrict c2, uint32_t mask,
                               uint32_t sign)
{
    for (size_t i = 0; i < count; i++) {
        c0[i] = (int32_t)reduce(p[3 * i], mask, sign);
        c1[i] = (int32_t)reduce(p[3 * i + 1], mask, sign);
        c2[i] = (int32_t)reduce(p[3 * i + 2], mask, sign);
    }
}

static inline void put_colour8(uint8_t *restrict p, size_t count,
                               const int32_t *restrict c0,
                               const int32_t *restrict c1,
                               const int32_t *restrict c2)
{
    for (size_t i = 0; i < count; i++) {
        p[3 * i] = (uint8_t)c0[i];
        p[3 * i + 1] = (uint8_t)c1[i];
        p[3 * i + 2] = (uint8_t)c2[i];
    }
}

CODEC_VECTOR_CLONES
void codec_pixels_get(const codec_image *image, const uint8_t *frame,
                      size_t first, size_t count, int32_t *const planes[])
{
    size_t components = image->samples_per_pixel;
    if (components == 3 && image->bits_allocated == 8) {
        get_colour8(frame + 3 * first, count, planes[0], planes[1],
                    planes[2], stored_mask(image), sign_bit(image));
        return;
    }
    for (size_t c = 0; c < components; c++)
        codec_samples_get(image, frame, first * components + c, components,
                          count, planes[c]);
}

CODEC_VECTOR_CLONES
void codec_pixels_put(const codec_image *image, uint8_t *frame,
                      size_t first, size_t count,
                      const int32_t *const planes[])
{
    size_t components = image->samples_per_pixel;
    if (components == 3 && image->bits_allocated == 8) {
        put_colour8(frame + 3 * first, count, planes[0], planes[1],
                    planes[2]);
        return;
    }
    for (size_t c = 0; c < components; c++)
        codec_samples_put(image, frame, first * components + c, components,
                          count, planes[c]);
}

CODEC_VECTOR_CLONES
void codec_normalize_samples(const codec_image *image, uint8_t *frame,
                             size_t len)
{
    if (image->bits_allocated == 1 ||
        image->bits_stored == image->bits_allocated)
        return;
    uint32_t mask = stored_mask(image), sign = sign_bit(image);
    size_t samples = len / codec_sample_bytes(image);
    switch (image->bits_allocated) {
    case 8:
        for (size_t i = 0; i < samples; i++)
            frame[i] = (uint8_t)reduce(frame[i], mask, sign);
        break;
    case 16:
        for (size_t i = 0; i < samples; i++)
            store16(frame + 2 * i, reduce(load16(frame + 2 * i), mask, sign));
        break;
    default:
        for (size_t i = 0; i < samples; i++)
            store32(frame + 4 * i, reduce(load32(frame + 4 * i), mask, sign));
        break;
    }
}

