/*
 * image.c - the image description: reading the Image Pixel attributes,
 * checking them against the standard and the limits, frame sizes; the
 * small helpers the codecs share (buffers, checked arithmetic). The
 * sample loops are in samples.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void codec_limits_default(codec_limits *limits)
{
    limits->max_rows = CODEC_DEFAULT_MAX_ROWS;
    limits->max_columns = CODEC_DEFAULT_MAX_COLUMNS;
    limits->max_frames = CODEC_DEFAULT_MAX_FRAMES;
    limits->max_frame_bytes = CODEC_DEFAULT_MAX_FRAME_BYTES;
    limits->max_total_bytes = CODEC_DEFAULT_MAX_TOTAL_BYTES;
    limits->max_encoded_frame_bytes = CODEC_DEFAULT_MAX_ENCODED_FRAME_BYTES;
}

/* ---- checked arithmetic and buffers --------------------------------------- */

bool codec_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool codec_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

int codec_buf_reserve(codec_buf *buf, size_t extra, dcm_error *err)
{
    size_t need;
    if (__builtin_add_overflow(buf->len, extra, &need))
        return dcm_fail(err, DCM_E_LIMIT, -1, "codestream too large");
    if (need <= buf->capacity)
        return DCM_OK;
    size_t capacity = buf->capacity ? buf->capacity : 4096;
    while (capacity < need)
        capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
    uint8_t *grown = realloc(buf->data, capacity);
    if (!grown)
        return dcm_fail(err, DCM_E_NOMEM, -1,
                        "out of memory for a %zu-byte codestream", need);
    buf->data = grown;
    buf->capacity = capacity;
    return DCM_OK;
}

int codec_buf_append(codec_buf *buf, const void *data, size_t len,
                     dcm_error *err)
{
    if (len == 0)
        return DCM_OK;
    int rc = codec_buf_reserve(buf, len, err);
    if (rc < 0)
        return rc;
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return DCM_OK;
}

void codec_buf_release(codec_buf *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

/* ---- photometric interpretation ------------------------------------------ */

static const char *const photometric_names[] = {
    [CODEC_PI_UNKNOWN] = "",
    [CODEC_PI_MONOCHROME1] = "MONOCHROME1",
    [CODEC_PI_MONOCHROME2] = "MONOCHROME2",
    [CODEC_PI_PALETTE_COLOR] = "PALETTE COLOR",
    [CODEC_PI_RGB] = "RGB",
    [CODEC_PI_YBR_FULL] = "YBR_FULL",
    [CODEC_PI_YBR_FULL_422] = "YBR_FULL_422",
    [CODEC_PI_YBR_RCT] = "YBR_RCT",
    [CODEC_PI_YBR_ICT] = "YBR_ICT",
};

#define PHOTOMETRIC_COUNT (sizeof photometric_names / sizeof photometric_names[0])

const char *codec_photometric_name(codec_photometric pi)
{
    if ((size_t)pi >= PHOTOMETRIC_COUNT)
        return "";
    return photometric_names[pi];
}

codec_photometric codec_photometric_parse(const char *text)
{
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ' ')
        len--;
    for (size_t pi = 1; pi < PHOTOMETRIC_COUNT; pi++) {
        if (strlen(photometric_names[pi]) == len &&
            memcmp(photometric_names[pi], text, len) == 0)
            return (codec_photometric)pi;
    }
    return CODEC_PI_UNKNOWN;
}

/* ---- reading the attributes ----------------------------------------------- */

#define TAG_SAMPLES_PER_PIXEL DCM_TAG(0x0028, 0x0002)
#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION DCM_TAG(0x0028, 0x0006)
#define TAG_NUMBER_OF_FRAMES DCM_TAG(0x0028, 0x0008)
#define TAG_ROWS DCM_TAG(0x0028, 0x0010)
#define TAG_COLUMNS DCM_TAG(0x0028, 0x0011)
#define TAG_BITS_STORED DCM_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT DCM_TAG(0x0028, 0x0102)

/* One integer attribute in [0, max]; absent: fallback, or an error when
 * fallback is negative (the attribute is required). */
static int read_uint(const dcm_dataset *ds, uint32_t tag, const char *name,
                     int64_t max, int64_t fallback, int64_t *out,
                     dcm_error *err)
{
    dcm_element *el = dcm_dataset_find(ds, tag);
    if (!el || dcm_element_value_count(el) == 0) {
        if (fallback < 0)
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "%s is missing or empty", name);
        *out = fallback;
        return DCM_OK;
    }
    int64_t value;
    if (dcm_element_get_int(el, 0, &value, err) < 0)
        return dcm_fail(err, DCM_E_INVALID, -1, "%s is not a number", name);
    if (value < 0 || value > max)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "%s %lld is out of range 0..%lld", name,
                        (long long)value, (long long)max);
    *out = value;
    return DCM_OK;
}

static int read_photometric(const dcm_dataset *ds, codec_photometric *out,
                            dcm_error *err)
{
    dcm_element *el = dcm_dataset_find(ds, TAG_PHOTOMETRIC);
    if (!el)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Photometric Interpretation is missing");
    char *text = dcm_element_get_string(el, err);
    if (!text)
        return err ? err->code : DCM_E_INVALID;
    *out = codec_photometric_parse(text);
    int rc = DCM_OK;
    if (*out == CODEC_PI_UNKNOWN)
        rc = dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                      "Photometric Interpretation \"%.64s\" is not supported",
                      text);
    free(text);
    return rc;
}

int codec_image_from_dataset(const dcm_dataset *ds,
                             const codec_limits *limits, codec_image *image,
                             dcm_error *err)
{
    memset(image, 0, sizeof *image);
    int64_t rows, columns, samples, allocated, stored, high, representation,
        planar, frames;
    int rc;
    if ((rc = read_uint(ds, TAG_ROWS, "Rows", 0xFFFF, -1, &rows, err)) < 0 ||
        (rc = read_uint(ds, TAG_COLUMNS, "Columns", 0xFFFF, -1, &columns,
                        err)) < 0 ||
        (rc = read_uint(ds, TAG_SAMPLES_PER_PIXEL, "Samples per Pixel", 0xFFFF,
                        -1, &samples, err)) < 0 ||
        (rc = read_uint(ds, DCM_TAG_BITS_ALLOCATED, "Bits Allocated", 0xFFFF,
                        -1, &allocated, err)) < 0 ||
        (rc = read_uint(ds, TAG_BITS_STORED, "Bits Stored", 0xFFFF, -1,
                        &stored, err)) < 0 ||
        (rc = read_uint(ds, TAG_HIGH_BIT, "High Bit", 0xFFFF, -1, &high,
                        err)) < 0 ||
        (rc = read_uint(ds, DCM_TAG_PIXEL_REPRESENTATION,
                        "Pixel Representation", 0xFFFF, -1, &representation,
                        err)) < 0 ||
        (rc = read_uint(ds, TAG_PLANAR_CONFIGURATION, "Planar Configuration",
                        0xFFFF, 0, &planar, err)) < 0 ||
        (rc = read_uint(ds, TAG_NUMBER_OF_FRAMES, "Number of Frames",
                        INT32_MAX, 1, &frames, err)) < 0 ||
        (rc = read_photometric(ds, &image->photometric, err)) < 0)
        return rc;
    image->rows = (uint32_t)rows;
    image->columns = (uint32_t)columns;
    image->samples_per_pixel = (uint16_t)samples;
    image->bits_allocated = (uint16_t)allocated;
    image->bits_stored = (uint16_t)stored;
    image->high_bit = (uint16_t)high;
    image->pixel_representation = (uint16_t)representation;
    /* Planar Configuration only has a meaning for colour. */
    image->planar_configuration = samples > 1 ? (uint16_t)planar : 0;
    image->frames = (uint32_t)frames;
    return codec_image_check(image, limits, err);
}

/* ---- checks --------------------------------------------------------------- */

static bool photometric_is_colour(codec_photometric pi)
{
    return pi == CODEC_PI_RGB || pi == CODEC_PI_YBR_FULL ||
           pi == CODEC_PI_YBR_FULL_422 || pi == CODEC_PI_YBR_RCT ||
           pi == CODEC_PI_YBR_ICT;
}

static int check_sampling(const codec_image *image, dcm_error *err)
{
    unsigned allocated = image->bits_allocated;
    if (allocated != 1 && allocated != 8 && allocated != 16 && allocated != 32)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "Bits Allocated %u is not supported (1, 8, 16, 32)",
                        allocated);
    if (image->bits_stored == 0 || image->bits_stored > allocated)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Bits Stored %u does not fit Bits Allocated %u",
                        image->bits_stored, allocated);
    /* PS3.5 8.1.1: the stored bits are the low ones. */
    if (image->high_bit != image->bits_stored - 1)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "High Bit %u is not Bits Stored - 1 (%u)",
                        image->high_bit, image->bits_stored - 1u);
    if (image->pixel_representation > 1)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Pixel Representation %u is neither 0 nor 1",
                        image->pixel_representation);
    return DCM_OK;
}

static int check_colour(const codec_image *image, dcm_error *err)
{
    unsigned samples = image->samples_per_pixel;
    bool colour = photometric_is_colour(image->photometric);
    if (image->photometric == CODEC_PI_UNKNOWN)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "no supported Photometric Interpretation");
    if (samples != (colour ? 3u : 1u))
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Samples per Pixel %u does not go with %s", samples,
                        codec_photometric_name(image->photometric));
    if (image->planar_configuration > 1)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Planar Configuration %u is neither 0 nor 1",
                        image->planar_configuration);
    if (image->bits_allocated == 1 && colour)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Bits Allocated 1 with %s",
                        codec_photometric_name(image->photometric));
    if (image->photometric == CODEC_PI_YBR_FULL_422 &&
        image->planar_configuration != 0)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "YBR_FULL_422 with Planar Configuration 1");
    return DCM_OK;
}

/* Bits of one frame, without overflow. */
static bool frame_bits(const codec_image *image, uint64_t *bits)
{
    uint64_t pixels = (uint64_t)image->rows * image->columns;
    /* YBR_FULL_422: two samples per pixel on average. */
    uint64_t samples_per_pixel = image->photometric == CODEC_PI_YBR_FULL_422
                                     ? 2
                                     : image->samples_per_pixel;
    uint64_t samples;
    return codec_mul_u64(pixels, samples_per_pixel, &samples) &&
           codec_mul_u64(samples, image->bits_allocated, bits);
}

int codec_frame_bytes(const codec_image *image, size_t *bytes,
                      dcm_error *err)
{
    uint64_t bits;
    if (!frame_bits(image, &bits) || bits / 8 + 1 > SIZE_MAX)
        return dcm_fail(err, DCM_E_LIMIT, -1, "a frame of %ux%u is too large",
                        image->columns, image->rows);
    *bytes = (size_t)(bits / 8 + (bits % 8 != 0));
    return DCM_OK;
}

int codec_image_check(const codec_image *image, const codec_limits *limits,
                      dcm_error *err)
{
    codec_limits defaults;
    if (!limits) {
        codec_limits_default(&defaults);
        limits = &defaults;
    }
    int rc;
    if (image->rows == 0 || image->columns == 0)
        return dcm_fail(err, DCM_E_INVALID, -1, "an image of %ux%u pixels",
                        image->columns, image->rows);
    if (image->rows > limits->max_rows || image->columns > limits->max_columns)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "%ux%u pixels exceed the limit of %ux%u",
                        image->columns, image->rows, limits->max_columns,
                        limits->max_rows);
    if (image->frames == 0 || image->frames > limits->max_frames)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "Number of Frames %u is not within 1..%u",
                        image->frames, limits->max_frames);
    if ((rc = check_sampling(image, err)) < 0 ||
        (rc = check_colour(image, err)) < 0)
        return rc;
    uint64_t bits, frame, total;
    if (!frame_bits(image, &bits))
        return dcm_fail(err, DCM_E_LIMIT, -1, "frame size overflows");
    frame = bits / 8 + (bits % 8 != 0);
    if (frame > limits->max_frame_bytes)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "a frame of %llu bytes exceeds the limit of %llu",
                        (unsigned long long)frame,
                        (unsigned long long)limits->max_frame_bytes);
    /* A frame of bits allocated 1 may share a byte with the next one:
     * the whole is counted in bits. */
    if (!codec_mul_u64(bits, image->frames, &total))
        return dcm_fail(err, DCM_E_LIMIT, -1, "pixel data size overflows");
    total = total / 8 + (total % 8 != 0);
    if (total > limits->max_total_bytes)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "%u frames of %llu bytes exceed the limit of %llu "
                        "bytes",
                        image->frames, (unsigned long long)frame,
                        (unsigned long long)limits->max_total_bytes);
    return DCM_OK;
}
