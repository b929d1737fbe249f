/* test_codec_frames.c - the image description read from a dataset and
 * checked before anything is allocated; native frames (multi-frame,
 * planar configuration 1, bits allocated 1 with frames off byte
 * boundaries, referenced values read from a file); encapsulated frames
 * per PS3.5 A.4 (Basic and Extended Offset Tables, one fragment per
 * frame, frames found by their EOI marker); the encapsulation writer
 * (padding per syntax, offset tables) read back through a written file;
 * the sample loops against codec_sample_get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bytes.h"
#include "codec_images.h"
#include "internal.h"

#define TAG_ROWS DCM_TAG(0x0028, 0x0010)
#define TAG_HIGH_BIT DCM_TAG(0x0028, 0x0102)
#define TAG_SAMPLES DCM_TAG(0x0028, 0x0002)
#define TAG_FRAMES DCM_TAG(0x0028, 0x0008)

static dcm_dataset *image_dataset(const codec_image *image)
{
    dcm_dataset *ds = dcm_dataset_new();
    assert_non_null(ds);
    synth_attributes(ds, image);
    return ds;
}

/* ---- image description ---------------------------------------------------- */

static void image_read_and_checked(void **state)
{
    (void)state;
    codec_image want = synth_image(5, 3, 3, 16, 12, true);
    want.planar_configuration = 1;
    want.frames = 4;
    dcm_dataset *ds = image_dataset(&want);
    codec_image got;
    dcm_error err = {0};
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err), 0);
    assert_int_equal(got.rows, 5);
    assert_int_equal(got.columns, 3);
    assert_int_equal(got.samples_per_pixel, 3);
    assert_int_equal(got.bits_allocated, 16);
    assert_int_equal(got.bits_stored, 12);
    assert_int_equal(got.high_bit, 11);
    assert_int_equal(got.pixel_representation, 1);
    assert_int_equal(got.planar_configuration, 1);
    assert_int_equal(got.photometric, CODEC_PI_RGB);
    assert_int_equal(got.frames, 4);

    /* High Bit other than Bits Stored - 1. */
    synth_set_us(ds, TAG_HIGH_BIT, 15);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_UNSUPPORTED);
    synth_set_us(ds, TAG_HIGH_BIT, 11);
    /* Three samples of MONOCHROME2. */
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS,
                           "MONOCHROME2", NULL);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_INVALID);
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "YBR_FULL ",
                           NULL);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err), 0);
    assert_int_equal(got.photometric, CODEC_PI_YBR_FULL);
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "HSV",
                           NULL);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_UNSUPPORTED);
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "RGB",
                           NULL);
    /* Rows missing, then zero. */
    dcm_dataset_remove(ds, TAG_ROWS);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_INVALID);
    assert_non_null(strstr(err.message, "Rows"));
    synth_set_us(ds, TAG_ROWS, 0);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_INVALID);
    synth_set_us(ds, TAG_ROWS, 5);
    /* Number of Frames negative, or above the limit. */
    dcm_dataset_set_string(ds, TAG_FRAMES, DCM_VR_IS, "-1", NULL);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_INVALID);
    dcm_dataset_set_string(ds, TAG_FRAMES, DCM_VR_IS, "70000", NULL);
    assert_int_equal(codec_image_from_dataset(ds, NULL, &got, &err),
                     DCM_E_LIMIT);
    dcm_dataset_free(ds);
}

/* Sizes claimed by the attributes are refused by arithmetic alone: the
 * test would run out of memory if anything were allocated for them. */
static void limits_before_allocation(void **state)
{
    (void)state;
    codec_image huge = synth_image(65535, 65535, 3, 32, 32, false);
    dcm_error err = {0};
    assert_int_equal(codec_image_check(&huge, NULL, &err), DCM_E_LIMIT);
    codec_image many = synth_image(4096, 4096, 1, 16, 16, false);
    many.frames = 65535; /* 2 TiB in all */
    assert_int_equal(codec_image_check(&many, NULL, &err), DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "frames"));
    codec_limits limits;
    codec_limits_default(&limits);
    many.frames = 3;
    assert_int_equal(codec_image_check(&many, &limits, &err), 0);
    limits.max_total_bytes = 2 * 4096 * 4096 * 2;
    assert_int_equal(codec_image_check(&many, &limits, &err), DCM_E_LIMIT);
    limits.max_total_bytes = CODEC_DEFAULT_MAX_TOTAL_BYTES;
    limits.max_columns = 1024;
    assert_int_equal(codec_image_check(&many, &limits, &err), DCM_E_LIMIT);
    /* The same through a dataset with pixel data of a few bytes. */
    dcm_dataset *ds = image_dataset(&huge);
    uint8_t few[4] = {0};
    dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, few, 4, NULL);
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    dcm_dataset_free(ds);
}

/* ---- native frames ---------------------------------------------------------- */

/* Frames f of image stored one after another (planar as image says). */
static uint8_t *native_frames(const codec_image *image, size_t *len)
{
    size_t frame = synth_frame_bytes(image);
    uint8_t *all = malloc(frame * image->frames);
    assert_non_null(all);
    for (uint32_t f = 0; f < image->frames; f++) {
        codec_image interleaved = *image;
        interleaved.planar_configuration = 0;
        uint8_t *one = synth_frame(&interleaved, f);
        if (image->planar_configuration == 0) {
            memcpy(all + f * frame, one, frame);
        } else {
            size_t pixels = (size_t)image->rows * image->columns;
            size_t unit = image->bits_allocated / 8;
            for (size_t p = 0; p < pixels; p++)
                for (size_t s = 0; s < 3; s++)
                    memcpy(all + f * frame + (s * pixels + p) * unit,
                           one + (p * 3 + s) * unit, unit);
        }
        free(one);
    }
    *len = frame * image->frames;
    return all;
}

static void native_multiframe(void **state)
{
    (void)state;
    const codec_image images[] = {
        synth_image(3, 5, 1, 16, 12, true),
        synth_image(3, 5, 3, 8, 8, false),
        synth_image(2, 7, 1, 32, 32, false),
    };
    for (size_t i = 0; i < 3; i++) {
        codec_image image = images[i];
        image.frames = 3;
        dcm_dataset *ds = image_dataset(&image);
        size_t len;
        uint8_t *all = native_frames(&image, &len);
        dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, all, len,
                              NULL);
        dcm_error err = {0};
        codec_source *src = codec_source_open(ds, NULL, &err);
        assert_non_null(src);
        size_t frame = synth_frame_bytes(&image);
        uint8_t *buf = malloc(frame);
        for (uint32_t f = 0; f < 3; f++) {
            assert_int_equal(codec_source_read_native(src, f, buf, frame, &err),
                             0);
            assert_memory_equal(buf, all + f * frame, frame);
        }
        assert_int_equal(codec_source_read_native(src, 3, buf, frame, &err),
                         DCM_E_ARG);
        uint8_t *stream;
        size_t stream_len;
        assert_int_equal(codec_source_read_encoded(src, 0, &stream,
                                                   &stream_len, &err),
                         DCM_E_ARG);
        free(buf);
        free(all);
        codec_source_free(src);
        dcm_dataset_free(ds);
    }
}

/* Planar configuration 1: read as stored, decoded interleaved. */
static void native_planar(void **state)
{
    (void)state;
    codec_image image = synth_image(4, 5, 3, 16, 16, false);
    image.planar_configuration = 1;
    image.frames = 2;
    dcm_dataset *ds = image_dataset(&image);
    size_t len;
    uint8_t *all = native_frames(&image, &len);
    dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, all, len, NULL);
    codec_source *src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    uint8_t *decoded;
    size_t decoded_len;
    codec_image decoded_image;
    assert_int_equal(codec_source_decode(src, 1, &decoded, &decoded_len,
                                         &decoded_image, NULL),
                     0);
    codec_image interleaved = image;
    interleaved.planar_configuration = 0;
    uint8_t *want = synth_frame(&interleaved, 1);
    assert_int_equal(decoded_len, synth_frame_bytes(&image));
    assert_memory_equal(decoded, want, decoded_len);
    assert_int_equal(decoded_image.planar_configuration, 0);
    assert_int_equal(decoded_image.frames, 1);
    free(want);
    free(decoded);
    free(all);
    codec_source_free(src);
    dcm_dataset_free(ds);
}

/* Decoded native samples keep only their stored bits: stray high bits
 * (an overlay, garbage) cleared, signed samples sign-extended. */
static void native_stored_bits(void **state)
{
    (void)state;
    const bool signs[] = {false, true};
    const uint8_t stored[8] = {0x23, 0xF1, 0xFF, 0x0F, 0x00, 0x08, 0x01, 0x00};
    const uint8_t want[2][8] = {
        {0x23, 0x01, 0xFF, 0x0F, 0x00, 0x08, 0x01, 0x00},
        {0x23, 0x01, 0xFF, 0xFF, 0x00, 0xF8, 0x01, 0x00}};
    for (size_t i = 0; i < 2; i++) {
        codec_image image = synth_image(2, 2, 1, 16, 12, signs[i]);
        dcm_dataset *ds = image_dataset(&image);
        dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, stored, 8,
                              NULL);
        codec_source *src = codec_source_open(ds, NULL, NULL);
        assert_non_null(src);
        uint8_t *decoded;
        size_t len;
        codec_image decoded_image;
        assert_int_equal(codec_source_decode(src, 0, &decoded, &len,
                                             &decoded_image, NULL),
                         0);
        assert_memory_equal(decoded, want[i], 8);
        free(decoded);
        codec_source_free(src);
        dcm_dataset_free(ds);
    }
}

/* The sample loops the codecs convert every frame with (samples.c: a
 * loop per width, colour split in one pass, an AVX2 copy on x86-64) give
 * what codec_sample_get gives sample by sample, for every width, sign and
 * component count, at runs that are no multiple of a vector's width and
 * start anywhere; and put back writes those samples' stored bits, only
 * within the run. */
static void sample_loops_match_one_by_one(void **state)
{
    (void)state;
    const struct {
        uint16_t samples, allocated, stored;
        bool is_signed;
    } layouts[] = {{1, 8, 8, false},   {1, 8, 6, true},   {1, 16, 12, false},
                   {1, 16, 12, true},  {1, 16, 16, true}, {1, 32, 31, false},
                   {1, 32, 32, true},  {3, 8, 8, false},  {3, 8, 7, true},
                   {3, 16, 16, false}, {3, 16, 10, true}};
    const size_t runs[][2] = {{0, 1}, {0, 37}, {5, 100}, {3, 61}};
    enum { max_pixels = 105, max_bytes = max_pixels * 3 * 4 };
    uint8_t frame[max_bytes], put[max_bytes], want[max_bytes];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 131u + (i >> 3) * 17u + 0x5Au);
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        codec_image image = synth_image(1, max_pixels, layouts[l].samples,
                                        layouts[l].allocated,
                                        layouts[l].stored,
                                        layouts[l].is_signed);
        size_t components = image.samples_per_pixel;
        size_t width = codec_sample_bytes(&image);
        memcpy(want, frame, sizeof want);
        codec_normalize_samples(&image, want, sizeof want);
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            size_t first = runs[r][0], count = runs[r][1];
            int32_t values[CODEC_MAX_COMPONENTS][max_pixels];
            int32_t *planes[CODEC_MAX_COMPONENTS] = {values[0], values[1],
                                                     values[2]};
            codec_pixels_get(&image, frame, first, count, planes);
            for (size_t i = 0; i < count; i++)
                for (size_t c = 0; c < components; c++)
                    assert_int_equal(
                        values[c][i],
                        (int32_t)codec_sample_get(
                            &image, frame, (first + i) * components + c));
            memset(put, 0xEE, sizeof put);
            codec_pixels_put(&image, put, first, count,
                             (const int32_t *const *)planes);
            size_t start = first * components * width;
            size_t end = (first + count) * components * width;
            assert_memory_equal(put + start, want + start, end - start);
            for (size_t i = 0; i < sizeof put; i++)
                if (i < start || i >= end)
                    assert_int_equal(put[i], 0xEE);
        }
    }
}

/* Bits allocated 1: frames of 15 bits follow each other bit by bit. */
static void native_one_bit(void **state)
{
    (void)state;
    codec_image image = synth_image(3, 5, 1, 1, 1, false);
    image.frames = 5;
    dcm_dataset *ds = image_dataset(&image);
    /* Frame f: pixel p set when (p + f) % 3 == 0. */
    uint8_t packed[10] = {0}; /* 75 bits */
    for (uint32_t f = 0; f < 5; f++)
        for (uint32_t p = 0; p < 15; p++)
            if ((p + f) % 3 == 0) {
                uint32_t bit = f * 15 + p;
                packed[bit / 8] |= (uint8_t)(1u << (bit % 8));
            }
    dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, packed,
                          sizeof packed, NULL);
    codec_source *src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    for (uint32_t f = 0; f < 5; f++) {
        uint8_t frame[2];
        assert_int_equal(codec_source_read_native(src, f, frame, 2, NULL), 0);
        for (uint32_t p = 0; p < 15; p++)
            assert_int_equal((frame[p / 8] >> (p % 8)) & 1,
                             (p + f) % 3 == 0);
        assert_int_equal(frame[1] & 0x80, 0); /* bit 15 is not the frame's */
    }
    codec_source_free(src);
    /* One byte short of five frames. */
    dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, packed, 9, NULL);
    dcm_error err = {0};
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_TRUNCATED);
    dcm_dataset_free(ds);
}

static int to_bytes(void *ctx, const void *data, size_t len)
{
    bytes_put(ctx, data, len);
    return 0;
}

/* Writes ds to memory and opens it again with small inline values, so
 * that pixel data and fragments are referenced, not copied. */
static dcm_file *through_file(const dcm_dataset *ds, bytes *out)
{
    dcm_write_options options = {.sop_class_uid = "1.2.840.10008.5.1.4.1.1.7",
                                 .sop_instance_uid = "1.2.3.4"};
    dcm_error err = {0};
    if (dcm_write_file(ds, &options, to_bytes, out, &err) != 0)
        fail_msg("write: %s", err.message);
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.inline_value_bytes = 16;
    dcm_read_options read = {.limits = &limits};
    dcm_file *file = dcm_file_open_memory(out->data, out->len, &read, &err);
    if (!file)
        fail_msg("read: %s", err.message);
    return file;
}

static void native_from_file(void **state)
{
    (void)state;
    codec_image image = synth_image(31, 17, 1, 16, 16, true);
    image.frames = 4;
    dcm_dataset *ds = image_dataset(&image);
    size_t len;
    uint8_t *all = native_frames(&image, &len);
    dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, all, len, NULL);
    bytes out = {0};
    dcm_file *file = through_file(ds, &out);
    const dcm_element *pixel =
        dcm_dataset_find(dcm_file_dataset(file), DCM_TAG_PIXEL_DATA);
    assert_null(dcm_element_bytes(pixel)); /* referenced, not in memory */
    codec_source *src = codec_source_open(dcm_file_dataset(file), NULL, NULL);
    assert_non_null(src);
    size_t frame = synth_frame_bytes(&image);
    uint8_t *buf = malloc(frame);
    assert_int_equal(codec_source_read_native(src, 2, buf, frame, NULL), 0);
    assert_memory_equal(buf, all + 2 * frame, frame);
    free(buf);
    codec_source_free(src);
    dcm_file_free(file);
    free(out.data);
    free(all);
    dcm_dataset_free(ds);
}

/* ---- encapsulated frames ---------------------------------------------------- */

static const dcm_ts *ts(const char *uid)
{
    return dcm_ts_find(uid);
}

/* An encapsulated dataset of image, its fragments given as (data, length)
 * pairs of bytes, BOT first. */
static dcm_dataset *encapsulated(const codec_image *image, const char *uid,
                                 const uint8_t *const *fragments,
                                 const size_t *lengths, size_t count)
{
    dcm_dataset *ds = image_dataset(image);
    dcm_element *pixel =
        dcm_dataset_set_fragments(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, NULL);
    assert_non_null(pixel);
    assert_int_equal(dcm_element_set_fragment(pixel, 0, fragments[0],
                                              lengths[0], NULL),
                     0);
    for (size_t i = 1; i < count; i++)
        assert_int_equal(dcm_element_append_fragment(pixel, fragments[i],
                                                     lengths[i], NULL),
                         0);
    dcm_dataset_set_syntax(ds, ts(uid));
    return ds;
}

static void expect_frame(const codec_source *src, uint32_t index,
                         const void *want, size_t want_len)
{
    uint8_t *data;
    size_t len;
    dcm_error err = {0};
    if (codec_source_read_encoded(src, index, &data, &len, &err) != 0)
        fail_msg("frame %u: %s", index, err.message);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
    free(data);
}

/* Made-up JPEG-like codestreams: SOI ... EOI. */
static const uint8_t jpeg_a1[] = {0xFF, 0xD8, 1, 2};
static const uint8_t jpeg_a2[] = {3, 4, 0xFF, 0xD9};
static const uint8_t jpeg_b1[] = {0xFF, 0xD8, 5, 6, 7, 0xFF, 0xD9, 0x00};
static const uint8_t jpeg_c1[] = {0xFF, 0xD8, 8, 9};
static const uint8_t jpeg_c2[] = {10, 11};
static const uint8_t jpeg_c3[] = {12, 0xFF, 0xFF, 0xD9};

static void fragments_without_table(void **state)
{
    (void)state;
    codec_image image = synth_image(2, 2, 1, 8, 8, false);
    image.frames = 3;
    /* Fragments 1 and 2 together: the first codestream. */
    static const uint8_t frame0_parts[] = {0xFF, 0xD8, 1, 2, 3, 4, 0xFF,
                                           0xD9};
    /* One fragment per frame. */
    const uint8_t *one[] = {NULL, jpeg_a1, jpeg_a2, jpeg_b1};
    const size_t one_len[] = {0, 4, 4, 8};
    dcm_dataset *ds = encapsulated(&image, CODEC_TS_RLE, one, one_len, 4);
    codec_source *src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    expect_frame(src, 1, jpeg_a2, 4);
    codec_source_free(src);
    dcm_dataset_free(ds);

    /* One frame in two fragments, no table: the frame is all of them. */
    image.frames = 1;
    ds = encapsulated(&image, CODEC_TS_RLE, one, one_len, 3);
    src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    expect_frame(src, 0, frame0_parts, sizeof frame0_parts);
    codec_source_free(src);
    dcm_dataset_free(ds);
    image.frames = 3;

    /* Six fragments, three frames: split at EOI markers (JPEG only). */
    const uint8_t *six[] = {NULL, jpeg_a1, jpeg_a2, jpeg_b1,
                            jpeg_c1, jpeg_c2, jpeg_c3};
    const size_t six_len[] = {0, 4, 4, 8, 4, 2, 4};
    ds = encapsulated(&image, CODEC_TS_JPEG_BASELINE, six, six_len, 7);
    src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    const uint8_t frame2[] = {0xFF, 0xD8, 8, 9, 10, 11, 12, 0xFF, 0xFF, 0xD9};
    expect_frame(src, 0, frame0_parts, sizeof frame0_parts);
    expect_frame(src, 1, jpeg_b1, sizeof jpeg_b1);
    expect_frame(src, 2, frame2, sizeof frame2);
    codec_source_free(src);
    dcm_dataset_free(ds);

    /* The same fragments under RLE: no marker to go by. */
    ds = encapsulated(&image, CODEC_TS_RLE, six, six_len, 7);
    dcm_error err = {0};
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    dcm_dataset_free(ds);

    /* Markers that make four codestreams for three frames. */
    image.frames = 3;
    const uint8_t *four[] = {NULL, jpeg_b1, jpeg_b1, jpeg_b1, jpeg_b1, jpeg_c1};
    const size_t four_len[] = {0, 8, 8, 8, 8, 4};
    ds = encapsulated(&image, CODEC_TS_JPEG_BASELINE, four, four_len, 6);
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    dcm_dataset_free(ds);
}

static void basic_offset_table(void **state)
{
    (void)state;
    codec_image image = synth_image(2, 2, 1, 8, 8, false);
    image.frames = 2;
    /* Frame 0: fragments 1-2 (8 + 4 + 8 + 4 bytes of items), frame 1 at 24. */
    uint8_t bot[8] = {0, 0, 0, 0, 24, 0, 0, 0};
    const uint8_t *frags[] = {bot, jpeg_a1, jpeg_a2, jpeg_c1, jpeg_c3};
    const size_t lens[] = {8, 4, 4, 4, 4};
    dcm_dataset *ds = encapsulated(&image, CODEC_TS_J2K, frags, lens, 5);
    codec_source *src = codec_source_open(ds, NULL, NULL);
    assert_non_null(src);
    const uint8_t frame1[] = {0xFF, 0xD8, 8, 9, 12, 0xFF, 0xFF, 0xD9};
    expect_frame(src, 1, frame1, sizeof frame1);
    codec_source_free(src);
    dcm_dataset_free(ds);

    /* An offset inside a fragment, a table of the wrong size. */
    dcm_error err = {0};
    bot[4] = 20;
    ds = encapsulated(&image, CODEC_TS_J2K, frags, lens, 5);
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    dcm_dataset_free(ds);
    const size_t short_lens[] = {4, 4, 4, 4, 4};
    ds = encapsulated(&image, CODEC_TS_J2K, frags, short_lens, 5);
    assert_null(codec_source_open(ds, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    dcm_dataset_free(ds);
    /* Offsets past the last fragment. */
    bot[4] = 0;
    bot[6] = 1;
    ds = encapsulated(&image, CODEC_TS_J2K, frags, lens, 5);
    assert_null(codec_source_open(ds, NULL, &err));
    dcm_dataset_free(ds);
}

/* ---- the writer ------------------------------------------------------------ */

static void writer_pads_per_syntax(void **state)
{
    (void)state;
    /* JPEG: an odd codestream gets an FFH fill byte before its EOI. */
    static const uint8_t odd_jpeg[] = {0xFF, 0xD8, 1, 0xFF, 0xD9};
    static const uint8_t odd_j2k[] = {0xFF, 0x4F, 2, 0xFF, 0xD9};
    codec_image image = synth_image(2, 2, 1, 8, 8, false);
    image.frames = 2;
    dcm_dataset *ds = image_dataset(&image);
    codec_writer *w = codec_writer_new(CODEC_TS_JPEG_LS_LOSSLESS, NULL);
    assert_non_null(w);
    assert_int_equal(codec_writer_add_frame(w, odd_jpeg, 5, NULL), 0);
    assert_int_equal(codec_writer_add_frame(w, jpeg_a1, 4, NULL), 0);
    assert_int_equal(codec_writer_finish(w, ds, NULL), 0);
    codec_writer_free(w);
    dcm_element *pixel = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_int_equal(dcm_element_fragment_count(pixel), 3);
    uint8_t got[8];
    assert_int_equal(dcm_element_fragment_length(pixel, 1), 6);
    dcm_element_fragment_read(pixel, 1, 0, got, 6, NULL);
    const uint8_t filled[] = {0xFF, 0xD8, 1, 0xFF, 0xFF, 0xD9};
    assert_memory_equal(got, filled, 6);
    /* The Basic Offset Table: 0 and 8 + 6. */
    const uint8_t bot[] = {0, 0, 0, 0, 14, 0, 0, 0};
    dcm_element_fragment_read(pixel, 0, 0, got, 8, NULL);
    assert_memory_equal(got, bot, 8);
    assert_string_equal(dcm_dataset_syntax(ds)->uid,
                        CODEC_TS_JPEG_LS_LOSSLESS);

    /* JPEG 2000: a trailing 00H. */
    w = codec_writer_new(CODEC_TS_J2K_LOSSLESS, NULL);
    assert_int_equal(codec_writer_add_frame(w, odd_j2k, 5, NULL), 0);
    assert_int_equal(codec_writer_add_frame(w, odd_j2k, 5, NULL), 0);
    assert_int_equal(codec_writer_finish(w, ds, NULL), 0);
    codec_writer_free(w);
    pixel = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    dcm_element_fragment_read(pixel, 2, 0, got, 6, NULL);
    const uint8_t padded[] = {0xFF, 0x4F, 2, 0xFF, 0xD9, 0x00};
    assert_memory_equal(got, padded, 6);
    /* Refusals: a native syntax, an empty frame, no frames. */
    assert_null(codec_writer_new(DCM_TS_EXPLICIT_LE, NULL));
    w = codec_writer_new(CODEC_TS_RLE, NULL);
    assert_int_equal(codec_writer_add_frame(w, odd_j2k, 0, NULL), DCM_E_ARG);
    assert_int_equal(codec_writer_finish(w, ds, NULL), DCM_E_ARG);
    codec_writer_free(w);
    dcm_dataset_free(ds);
}

/* Frames encoded, encapsulated, written to a file, read back and decoded:
 * with a Basic Offset Table, and with an Extended one (the 32-bit bound
 * lowered so that a few small frames pass it). */
static void writer_through_file(void **state)
{
    (void)state;
    const char *syntaxes[] = {CODEC_TS_RLE, CODEC_TS_JPEG_LS_LOSSLESS,
                              CODEC_TS_J2K_LOSSLESS};
    for (size_t t = 0; t < 3; t++)
        for (int extended = 0; extended < 2; extended++) {
            codec_image image = synth_image(13, 11, 1, 16, 12, false);
            image.frames = 3;
            dcm_dataset *ds = image_dataset(&image);
            dcm_dataset_set_string(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI,
                                   "1.2.840.10008.5.1.4.1.1.7", NULL);
            codec_writer *w = codec_writer_new(syntaxes[t], NULL);
            uint8_t *frames[3];
            codec_encoded encoded;
            for (uint32_t f = 0; f < 3; f++) {
                frames[f] = synth_frame(&image, f);
                uint8_t *stream;
                size_t len;
                assert_int_equal(codec_encode_frame(syntaxes[t], &image,
                                                    frames[f],
                                                    synth_frame_bytes(&image),
                                                    NULL, &stream, &len,
                                                    &encoded, NULL),
                                 0);
                assert_int_equal(codec_writer_add_frame(w, stream, len, NULL),
                                 0);
                free(stream);
            }
            assert_int_equal(codec_writer_finish_bounded(
                                 w, ds, extended ? 16 : UINT32_MAX, NULL),
                             0);
            codec_writer_free(w);
            assert_true((dcm_dataset_find(ds, DCM_TAG_EXTENDED_OFFSET_TABLE) !=
                         NULL) == extended);
            bytes out = {0};
            dcm_file *file = through_file(ds, &out);
            dcm_error err = {0};
            codec_source *src =
                codec_source_open(dcm_file_dataset(file), NULL, &err);
            if (!src)
                fail_msg("%s: %s", syntaxes[t], err.message);
            const dcm_element *pixel = dcm_dataset_find(
                dcm_file_dataset(file), DCM_TAG_PIXEL_DATA);
            assert_int_equal(dcm_element_fragment_length(pixel, 0),
                             extended ? 0 : 12);
            for (uint32_t f = 0; f < 3; f++) {
                uint8_t *decoded;
                size_t len;
                codec_image decoded_image;
                if (codec_source_decode(src, f, &decoded, &len,
                                        &decoded_image, &err) != 0)
                    fail_msg("%s frame %u: %s", syntaxes[t], f, err.message);
                assert_memory_equal(decoded, frames[f], len);
                free(decoded);
                free(frames[f]);
            }
            codec_source_free(src);
            dcm_file_free(file);
            free(out.data);
            dcm_dataset_free(ds);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_read_and_checked),
        cmocka_unit_test(limits_before_allocation),
        cmocka_unit_test(native_multiframe),
        cmocka_unit_test(native_planar),
        cmocka_unit_test(native_stored_bits),
        cmocka_unit_test(sample_loops_match_one_by_one),
        cmocka_unit_test(native_one_bit),
        cmocka_unit_test(native_from_file),
        cmocka_unit_test(fragments_without_table),
        cmocka_unit_test(basic_offset_table),
        cmocka_unit_test(writer_pads_per_syntax),
        cmocka_unit_test(writer_through_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
