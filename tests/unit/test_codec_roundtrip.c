/* test_codec_roundtrip.c - every encoder against its decoder on synthetic
 * images (8, 12, 16, 32 bits, signed, mono, RGB, palette, MONOCHROME1,
 * 1x1, 3x5, 511x513): RLE, JPEG-LS, JPEG 2000 and HTJ2K (OpenJPH's
 * output read by OpenJPEG) lossless bit-exact and passing
 * codec_verify_lossless; JPEG Baseline, JPEG-LS near-lossless, JPEG 2000
 * and HTJ2K lossy within a stated error (PSNR, or NEAR); the lossless
 * check catching a loss; hostile codestreams (truncated, garbage, wrong
 * dimensions, huge claimed sizes) ending in a clean error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "codec_images.h"

typedef struct shape {
    uint32_t rows, columns;
    uint16_t samples, allocated, stored;
    bool is_signed;
} shape;

/* The shapes every lossless codec must carry bit-exactly. */
static const shape lossless_shapes[] = {
    {1, 1, 1, 8, 8, false},      {3, 5, 1, 8, 8, false},
    {5, 3, 3, 8, 8, false},      {511, 513, 1, 16, 12, false},
    {64, 48, 1, 16, 16, true},   {17, 33, 1, 16, 12, true},
    {33, 17, 3, 16, 16, false},  {40, 30, 1, 16, 16, false},
    {511, 513, 3, 8, 8, false},  {7, 9, 1, 8, 7, true},
};

/* Encodes, checks with codec_verify_lossless, decodes and compares. */
static void lossless_roundtrip(const char *ts, const shape *sh)
{
    codec_image image = synth_image(sh->rows, sh->columns, sh->samples,
                                    sh->allocated, sh->stored, sh->is_signed);
    uint8_t *frame = synth_frame(&image, 0);
    size_t len = synth_frame_bytes(&image);
    uint8_t *stream;
    size_t stream_len;
    codec_encoded encoded;
    dcm_error err = {0};
    int rc = codec_encode_frame(ts, &image, frame, len, NULL, &stream,
                                &stream_len, &encoded, &err);
    if (rc != 0)
        fail_msg("%s %ux%u %u-bit: %s", ts, sh->columns, sh->rows, sh->stored,
                 err.message);
    assert_false(encoded.lossy);
    assert_int_equal(codec_verify_lossless(ts, &image, frame, len, stream,
                                           stream_len, &encoded.image, NULL,
                                           &err),
                     0);
    uint8_t *decoded;
    size_t decoded_len;
    codec_image decoded_image;
    assert_int_equal(codec_decode_frame(ts, &encoded.image, stream, stream_len,
                                        NULL, &decoded, &decoded_len,
                                        &decoded_image, &err),
                     0);
    assert_int_equal(decoded_len, len);
    assert_int_equal(decoded_image.photometric, image.photometric);
    /* Synthetic samples are sign-extended already: bytes must match. */
    assert_memory_equal(decoded, frame, len);
    free(decoded);
    free(stream);
    free(frame);
}

static void rle_lossless(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lossless_shapes / sizeof *lossless_shapes; i++)
        lossless_roundtrip(CODEC_TS_RLE, &lossless_shapes[i]);
    /* RLE also carries 32-bit samples (4 segments per sample). */
    shape wide = {9, 11, 1, 32, 32, true};
    lossless_roundtrip(CODEC_TS_RLE, &wide);
    shape wide_rgb = {4, 6, 3, 32, 24, false};
    lossless_roundtrip(CODEC_TS_RLE, &wide_rgb);
}

static void jpegls_lossless(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lossless_shapes / sizeof *lossless_shapes; i++)
        lossless_roundtrip(CODEC_TS_JPEG_LS_LOSSLESS, &lossless_shapes[i]);
}

static void j2k_lossless(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lossless_shapes / sizeof *lossless_shapes; i++)
        lossless_roundtrip(CODEC_TS_J2K_LOSSLESS, &lossless_shapes[i]);
}

/* HTJ2K encoded by OpenJPH, decoded by OpenJPEG. */
static void htj2k_lossless(void **state)
{
    (void)state;
    if (!codec_can_encode(CODEC_TS_HTJ2K_LOSSLESS))
        skip();
    for (size_t i = 0; i < sizeof lossless_shapes / sizeof *lossless_shapes; i++)
        lossless_roundtrip(CODEC_TS_HTJ2K_LOSSLESS, &lossless_shapes[i]);
}

/* RGB through JPEG 2000 lossless is stored as YBR_RCT and comes back RGB. */
static void j2k_rgb_is_rct(void **state)
{
    (void)state;
    codec_image image = synth_image(8, 8, 3, 8, 8, false);
    uint8_t *frame = synth_frame(&image, 0);
    uint8_t *stream;
    size_t stream_len;
    codec_encoded encoded;
    assert_int_equal(codec_encode_frame(CODEC_TS_J2K_LOSSLESS, &image, frame,
                                        synth_frame_bytes(&image), NULL,
                                        &stream, &stream_len, &encoded, NULL),
                     0);
    assert_int_equal(encoded.image.photometric, CODEC_PI_YBR_RCT);
    free(stream);
    free(frame);
}

/* PALETTE COLOR and MONOCHROME1 travel as they are through lossless
 * syntaxes; lossy ones refuse palette indexes. */
static void palette_and_monochrome1(void **state)
{
    (void)state;
    const char *lossless[] = {CODEC_TS_RLE, CODEC_TS_JPEG_LS_LOSSLESS,
                              CODEC_TS_J2K_LOSSLESS};
    const codec_photometric kinds[] = {CODEC_PI_PALETTE_COLOR,
                                       CODEC_PI_MONOCHROME1};
    for (size_t k = 0; k < 2; k++) {
        codec_image image = synth_image(9, 7, 1, 8, 8, false);
        image.photometric = kinds[k];
        uint8_t *frame = synth_frame(&image, 0);
        size_t len = synth_frame_bytes(&image);
        for (size_t t = 0; t < 3; t++) {
            uint8_t *stream;
            size_t stream_len;
            codec_encoded encoded;
            assert_int_equal(codec_encode_frame(lossless[t], &image, frame,
                                                len, NULL, &stream,
                                                &stream_len, &encoded, NULL),
                             0);
            assert_int_equal(encoded.image.photometric, kinds[k]);
            assert_int_equal(codec_verify_lossless(lossless[t], &image, frame,
                                                   len, stream, stream_len,
                                                   &encoded.image, NULL, NULL),
                             0);
            free(stream);
        }
        if (kinds[k] == CODEC_PI_PALETTE_COLOR) {
            const char *lossy[] = {CODEC_TS_JPEG_BASELINE,
                                   CODEC_TS_JPEG_LS_NEAR_LOSSLESS, CODEC_TS_J2K};
            for (size_t t = 0; t < 3; t++) {
                uint8_t *stream;
                size_t stream_len;
                codec_encoded encoded;
                assert_int_equal(codec_encode_frame(lossy[t], &image, frame,
                                                    len, NULL, &stream,
                                                    &stream_len, &encoded,
                                                    NULL),
                                 DCM_E_UNSUPPORTED);
            }
        }
        free(frame);
    }
}

/* Encodes lossily and returns the decoded frame (and the original). */
static uint8_t *lossy_roundtrip(const char *ts, const codec_image *image,
                                const codec_encode_options *opts,
                                uint8_t **original, codec_encoded *encoded,
                                double *ratio)
{
    *original = synth_frame(image, 0);
    size_t len = synth_frame_bytes(image);
    uint8_t *stream, *decoded;
    size_t stream_len, decoded_len;
    codec_image decoded_image;
    dcm_error err = {0};
    if (codec_encode_frame(ts, image, *original, len, opts, &stream,
                           &stream_len, encoded, &err) != 0)
        fail_msg("%s: %s", ts, err.message);
    assert_true(encoded->lossy);
    assert_non_null(encoded->lossy_method);
    if (codec_decode_frame(ts, &encoded->image, stream, stream_len, NULL,
                           &decoded, &decoded_len, &decoded_image, &err) != 0)
        fail_msg("%s decode: %s", ts, err.message);
    assert_int_equal(decoded_len, len);
    *ratio = (double)len / (double)stream_len;
    free(stream);
    return decoded;
}

/* JPEG Baseline at quality 90: PSNR at least 35 dB on mono and colour
 * (4:2:2 YCbCr, written as YBR_FULL_422 and decoded to RGB). */
static void jpeg_baseline_lossy(void **state)
{
    (void)state;
    const uint16_t samples[] = {1, 3};
    for (size_t i = 0; i < 2; i++) {
        codec_image image = synth_image(97, 131, samples[i], 8, 8, false);
        codec_encode_options opts = {.quality = 90};
        uint8_t *original;
        codec_encoded encoded;
        double ratio;
        uint8_t *decoded = lossy_roundtrip(CODEC_TS_JPEG_BASELINE, &image,
                                           &opts, &original, &encoded, &ratio);
        assert_string_equal(encoded.lossy_method, "ISO_10918_1");
        assert_int_equal(encoded.image.photometric,
                         samples[i] == 3 ? CODEC_PI_YBR_FULL_422
                                         : CODEC_PI_MONOCHROME2);
        double psnr = synth_psnr(&image, original, decoded);
        if (psnr < 35)
            fail_msg("JPEG quality 90, %u samples: PSNR %.1f dB", samples[i],
                     psnr);
        free(decoded);
        free(original);
    }
}

/* Odd sizes through JPEG Baseline (partial MCUs, 4:2:2 on odd widths). */
static void jpeg_baseline_odd_sizes(void **state)
{
    (void)state;
    const shape shapes[] = {{1, 1, 1, 8, 8, false}, {1, 1, 3, 8, 8, false},
                            {3, 5, 3, 8, 8, false}, {511, 513, 3, 8, 8, false},
                            {513, 511, 1, 8, 8, false}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        codec_image image =
            synth_image(shapes[i].rows, shapes[i].columns, shapes[i].samples,
                        8, 8, false);
        codec_encode_options opts = {.quality = 95};
        uint8_t *original;
        codec_encoded encoded;
        double ratio;
        uint8_t *decoded = lossy_roundtrip(CODEC_TS_JPEG_BASELINE, &image,
                                           &opts, &original, &encoded, &ratio);
        double psnr = synth_psnr(&image, original, decoded);
        if (psnr < 30)
            fail_msg("JPEG %ux%u x%u: PSNR %.1f dB", image.columns,
                     image.rows, image.samples_per_pixel, psnr);
        free(decoded);
        free(original);
    }
}

/* Quality is honoured: a lower one makes a smaller codestream. */
static void jpeg_quality_changes_size(void **state)
{
    (void)state;
    codec_image image = synth_image(64, 64, 1, 8, 8, false);
    uint8_t *frame = synth_frame(&image, 0);
    size_t sizes[2];
    const int qualities[] = {30, 95};
    for (size_t i = 0; i < 2; i++) {
        codec_encode_options opts = {.quality = qualities[i]};
        uint8_t *stream;
        codec_encoded encoded;
        assert_int_equal(codec_encode_frame(CODEC_TS_JPEG_BASELINE, &image,
                                            frame, synth_frame_bytes(&image),
                                            &opts, &stream, &sizes[i],
                                            &encoded, NULL),
                         0);
        free(stream);
    }
    assert_true(sizes[0] < sizes[1]);
    codec_encode_options bad = {.quality = 101};
    uint8_t *stream;
    size_t len;
    codec_encoded encoded;
    assert_int_equal(codec_encode_frame(CODEC_TS_JPEG_BASELINE, &image, frame,
                                        synth_frame_bytes(&image), &bad,
                                        &stream, &len, &encoded, NULL),
                     DCM_E_ARG);
    free(frame);
}

/* JPEG-LS near-lossless: no sample moves by more than NEAR. */
static void jpegls_near_lossless(void **state)
{
    (void)state;
    const shape shapes[] = {{61, 47, 1, 16, 12, false},
                            {31, 29, 3, 8, 8, false},
                            {20, 20, 1, 16, 16, true}};
    for (size_t i = 0; i < 3; i++) {
        codec_image image =
            synth_image(shapes[i].rows, shapes[i].columns, shapes[i].samples,
                        shapes[i].allocated, shapes[i].stored,
                        shapes[i].is_signed);
        codec_encode_options opts = {.near_lossless = 3};
        uint8_t *original;
        codec_encoded encoded;
        double ratio;
        uint8_t *decoded = lossy_roundtrip(CODEC_TS_JPEG_LS_NEAR_LOSSLESS,
                                           &image, &opts, &original, &encoded,
                                           &ratio);
        size_t count = (size_t)image.rows * image.columns *
                       image.samples_per_pixel;
        size_t unit = image.bits_allocated / 8;
        int64_t modulo = (int64_t)1 << image.bits_stored;
        for (size_t k = 0; k < count; k++) {
            int64_t a = 0, b = 0;
            memcpy(&a, original + k * unit, unit);
            memcpy(&b, decoded + k * unit, unit);
            int64_t diff = llabs((a - b) % modulo);
            /* JPEG-LS errors wrap modulo the range (ISO 14495-1 A.4.5). */
            if (diff > 3 && modulo - diff > 3)
                fail_msg("JPEG-LS NEAR 3: sample %zu moved by %lld", k,
                         (long long)diff);
        }
        free(decoded);
        free(original);
    }
}

/* JPEG 2000 lossy by ratio and by PSNR on 8- and 12-bit images. */
static void j2k_lossy(void **state)
{
    (void)state;
    const codec_image images[] = {synth_image(128, 96, 1, 8, 8, false),
                                  synth_image(64, 80, 1, 16, 12, false),
                                  synth_image(50, 70, 3, 8, 8, false)};
    for (size_t i = 0; i < 3; i++) {
        codec_encode_options by_ratio = {.ratio = 10};
        codec_encode_options by_psnr = {.psnr_db = 40};
        uint8_t *original;
        codec_encoded encoded;
        double ratio;
        uint8_t *decoded = lossy_roundtrip(CODEC_TS_J2K, &images[i], &by_ratio,
                                           &original, &encoded, &ratio);
        double psnr = synth_psnr(&images[i], original, decoded);
        /* The ratio is of the bytes as stored: 12 bits in 16 come out
         * 10:1 too, not 13.3:1 (OpenJPEG counts the stored bits). */
        if (ratio < 8 || ratio > 11 || psnr < 30)
            fail_msg("J2K ratio 10 on image %zu: ratio %.1f, PSNR %.1f dB", i,
                     ratio, psnr);
        if (images[i].samples_per_pixel == 3)
            assert_int_equal(encoded.image.photometric, CODEC_PI_YBR_ICT);
        free(decoded);
        free(original);
        decoded = lossy_roundtrip(CODEC_TS_J2K, &images[i], &by_psnr,
                                  &original, &encoded, &ratio);
        psnr = synth_psnr(&images[i], original, decoded);
        /* OpenJPEG aims at the PSNR per layer, not exactly: 3 dB slack. */
        if (psnr < 37)
            fail_msg("J2K PSNR 40 on image %zu: %.1f dB", i, psnr);
        free(decoded);
        free(original);
    }
}

/* HTJ2K lossy by PSNR (a derived quantisation step) and by ratio (a
 * searched one: never larger than the ratio allows). */
static void htj2k_lossy(void **state)
{
    (void)state;
    if (!codec_can_encode(CODEC_TS_HTJ2K))
        skip();
    const codec_image images[] = {synth_image(128, 96, 1, 8, 8, false),
                                  synth_image(64, 80, 1, 16, 12, false),
                                  synth_image(50, 70, 3, 8, 8, false)};
    for (size_t i = 0; i < 3; i++) {
        codec_encode_options by_psnr = {.psnr_db = 40};
        codec_encode_options by_ratio = {.ratio = 10};
        uint8_t *original;
        codec_encoded encoded;
        double ratio;
        uint8_t *decoded = lossy_roundtrip(CODEC_TS_HTJ2K, &images[i],
                                           &by_psnr, &original, &encoded,
                                           &ratio);
        assert_string_equal(encoded.lossy_method, "ISO_15444_15");
        double psnr = synth_psnr(&images[i], original, decoded);
        /* The step is derived from the PSNR, not searched: 5 dB slack. */
        if (psnr < 35 || ratio <= 1)
            fail_msg("HTJ2K PSNR 40 on image %zu: %.1f dB, ratio %.1f", i,
                     psnr, ratio);
        free(decoded);
        free(original);
        decoded = lossy_roundtrip(CODEC_TS_HTJ2K, &images[i], &by_ratio,
                                  &original, &encoded, &ratio);
        psnr = synth_psnr(&images[i], original, decoded);
        if (ratio < 10 || psnr < 30)
            fail_msg("HTJ2K ratio 10 on image %zu: ratio %.1f, %.1f dB", i,
                     ratio, psnr);
        free(decoded);
        free(original);
    }
}

/* HTJ2K is checked by OpenJPH's decoder, not OpenJPEG's: a frame that is
 * not what was encoded and a cut codestream both fail, cleanly. */
static void verify_catches_htj2k_loss(const codec_image *image,
                                      uint8_t *frame, size_t len)
{
    uint8_t *stream;
    size_t stream_len;
    codec_encoded encoded;
    dcm_error err = {0};
    assert_int_equal(codec_encode_frame(CODEC_TS_HTJ2K_LOSSLESS, image, frame,
                                        len, NULL, &stream, &stream_len,
                                        &encoded, &err),
                     0);
    frame[len - 1] ^= 1; /* bit 8 of the last 12-bit sample */
    assert_int_equal(codec_verify_lossless(CODEC_TS_HTJ2K_LOSSLESS, image,
                                           frame, len, stream, stream_len,
                                           &encoded.image, NULL, &err),
                     DCM_E_INVALID);
    assert_non_null(strstr(err.message, "not lossless"));
    frame[len - 1] ^= 1;
    assert_int_equal(codec_verify_lossless(CODEC_TS_HTJ2K_LOSSLESS, image,
                                           frame, len, stream, stream_len / 2,
                                           &encoded.image, NULL, &err) < 0,
                     true);
    free(stream);
}

/* The lossless check fails when a codestream lost something. */
static void verify_catches_loss(void **state)
{
    (void)state;
    codec_image image = synth_image(32, 32, 1, 16, 12, false);
    uint8_t *frame = synth_frame(&image, 0);
    size_t len = synth_frame_bytes(&image);
    codec_encode_options opts = {.near_lossless = 4};
    uint8_t *stream;
    size_t stream_len;
    codec_encoded encoded;
    dcm_error err = {0};
    assert_int_equal(codec_encode_frame(CODEC_TS_JPEG_LS_NEAR_LOSSLESS, &image,
                                        frame, len, &opts, &stream,
                                        &stream_len, &encoded, &err),
                     0);
    assert_int_equal(codec_verify_lossless(CODEC_TS_JPEG_LS_NEAR_LOSSLESS,
                                           &image, frame, len, stream,
                                           stream_len, &encoded.image, NULL,
                                           &err),
                     DCM_E_INVALID);
    assert_non_null(strstr(err.message, "not lossless"));
    free(stream);
    /* An RLE literal changed by one: still a valid stream, one sample off. */
    assert_int_equal(codec_encode_frame(CODEC_TS_RLE, &image, frame, len, NULL,
                                        &stream, &stream_len, &encoded, &err),
                     0);
    stream[stream_len - 2] ^= 1;
    assert_int_equal(codec_verify_lossless(CODEC_TS_RLE, &image, frame, len,
                                           stream, stream_len, &encoded.image,
                                           NULL, &err),
                     DCM_E_INVALID);
    free(stream);
    if (codec_can_encode(CODEC_TS_HTJ2K_LOSSLESS))
        verify_catches_htj2k_loss(&image, frame, len);
    free(frame);
}

/* ---- hostile codestreams ------------------------------------------------ */

typedef struct codec_case {
    const char *ts;
    codec_image image;
} codec_case;

static void expect_decode_error(const char *ts, const codec_image *stored,
                                const uint8_t *data, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    codec_image decoded;
    dcm_error err = {0};
    int rc = codec_decode_frame(ts, stored, data, len, NULL, &out, &out_len,
                                &decoded, &err);
    if (rc >= 0)
        fail_msg("%s: %zu hostile bytes decoded", ts, len);
    assert_null(out);
    assert_true(err.message[0] != '\0');
}

static void hostile_streams(void **state)
{
    (void)state;
    const codec_case cases[] = {
        {CODEC_TS_RLE, synth_image(40, 30, 1, 16, 12, false)},
        {CODEC_TS_JPEG_BASELINE, synth_image(40, 32, 3, 8, 8, false)},
        {CODEC_TS_JPEG_LS_LOSSLESS, synth_image(40, 30, 1, 16, 12, false)},
        {CODEC_TS_J2K_LOSSLESS, synth_image(40, 30, 1, 16, 12, false)},
        {CODEC_TS_J2K, synth_image(40, 30, 3, 8, 8, false)},
        {CODEC_TS_HTJ2K_LOSSLESS, synth_image(40, 30, 1, 16, 12, true)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const codec_image *image = &cases[i].image;
        uint8_t *frame = synth_frame(image, 0);
        uint8_t *stream;
        size_t len;
        codec_encoded encoded;
        assert_int_equal(codec_encode_frame(cases[i].ts, image, frame,
                                            synth_frame_bytes(image), NULL,
                                            &stream, &len, &encoded, NULL),
                         0);
        /* Truncated at several points. */
        const size_t cuts[] = {0, 1, 2, 10, 63, len / 3, len / 2, len - 3};
        for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++)
            if (cuts[c] < len)
                expect_decode_error(cases[i].ts, &encoded.image, stream,
                                    cuts[c]);
        /* Dimensions that disagree with the codestream. */
        codec_image wrong = encoded.image;
        wrong.rows += 1;
        expect_decode_error(cases[i].ts, &wrong, stream, len);
        wrong = encoded.image;
        wrong.columns = 1;
        expect_decode_error(cases[i].ts, &wrong, stream, len);
        /* Garbage after a valid header may decode to noise (RLE has no
         * check), but only into a frame of the right size. */
        size_t keep = len < 80 ? len / 2 : 80;
        for (size_t k = keep; k < len; k++)
            stream[k] = (uint8_t)(k * 151u + 7u);
        uint8_t *noise = NULL;
        size_t noise_len = 0;
        codec_image decoded;
        if (codec_decode_frame(cases[i].ts, &encoded.image, stream, len, NULL,
                               &noise, &noise_len, &decoded, NULL) == 0)
            assert_int_equal(noise_len, synth_frame_bytes(&decoded));
        else
            assert_null(noise);
        free(noise);
        free(stream);
        free(frame);
    }
}

/* Huge claimed sizes stop before anything is allocated or decoded. */
static void huge_sizes_refused(void **state)
{
    (void)state;
    static const uint8_t tiny[64] = {1, 0, 0, 0, 64};
    codec_image huge = synth_image(65535, 65535, 3, 32, 32, false);
    uint8_t *out = NULL;
    size_t out_len;
    codec_image decoded;
    dcm_error err = {0};
    assert_int_equal(codec_decode_frame(CODEC_TS_RLE, &huge, tiny, sizeof tiny,
                                        NULL, &out, &out_len, &decoded, &err),
                     DCM_E_LIMIT);
    assert_null(out);
    codec_limits limits;
    codec_limits_default(&limits);
    limits.max_frame_bytes = 1000;
    codec_image small = synth_image(40, 30, 1, 8, 8, false);
    assert_int_equal(codec_decode_frame(CODEC_TS_RLE, &small, tiny,
                                        sizeof tiny, &limits, &out, &out_len,
                                        &decoded, &err),
                     DCM_E_LIMIT);
    limits.max_frame_bytes = CODEC_DEFAULT_MAX_FRAME_BYTES;
    limits.max_rows = 20;
    assert_int_equal(codec_decode_frame(CODEC_TS_RLE, &small, tiny,
                                        sizeof tiny, &limits, &out, &out_len,
                                        &decoded, &err),
                     DCM_E_LIMIT);
    /* An RLE header claiming more segments than the image has. */
    codec_image mono = synth_image(2, 2, 1, 8, 8, false);
    uint8_t claims[64] = {15, 0, 0, 0, 64};
    expect_decode_error(CODEC_TS_RLE, &mono, claims, sizeof claims);
}

/* What the encoders refuse, cleanly. */
static void encoders_refuse(void **state)
{
    (void)state;
    uint8_t *stream;
    size_t len;
    codec_encoded encoded;
    codec_image twelve = synth_image(8, 8, 1, 16, 12, false);
    uint8_t *frame = synth_frame(&twelve, 0);
    assert_int_equal(codec_encode_frame(CODEC_TS_JPEG_BASELINE, &twelve, frame,
                                        synth_frame_bytes(&twelve), NULL,
                                        &stream, &len, &encoded, NULL),
                     DCM_E_UNSUPPORTED);
    /* A buffer of the wrong size. */
    assert_int_equal(codec_encode_frame(CODEC_TS_RLE, &twelve, frame, 3, NULL,
                                        &stream, &len, &encoded, NULL),
                     DCM_E_ARG);
    /* Planar configuration 1 is not taken. */
    codec_image planar = synth_image(2, 2, 3, 8, 8, false);
    planar.planar_configuration = 1;
    assert_int_equal(codec_encode_frame(CODEC_TS_RLE, &planar, frame, 12,
                                        NULL, &stream, &len, &encoded, NULL),
                     DCM_E_ARG);
    /* Native and unknown syntaxes have no encoder here. */
    assert_int_equal(codec_encode_frame(DCM_TS_EXPLICIT_LE, &twelve, frame,
                                        synth_frame_bytes(&twelve), NULL,
                                        &stream, &len, &encoded, NULL),
                     DCM_E_UNSUPPORTED);
    assert_false(codec_can_encode("1.2.3"));
    assert_true(codec_can_decode(DCM_TS_IMPLICIT_LE));
    assert_true(codec_can_decode(CODEC_TS_HTJ2K));
    free(frame);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rle_lossless),
        cmocka_unit_test(jpegls_lossless),
        cmocka_unit_test(j2k_lossless),
        cmocka_unit_test(htj2k_lossless),
        cmocka_unit_test(j2k_rgb_is_rct),
        cmocka_unit_test(palette_and_monochrome1),
        cmocka_unit_test(jpeg_baseline_lossy),
        cmocka_unit_test(jpeg_baseline_odd_sizes),
        cmocka_unit_test(jpeg_quality_changes_size),
        cmocka_unit_test(jpegls_near_lossless),
        cmocka_unit_test(j2k_lossy),
        cmocka_unit_test(htj2k_lossy),
        cmocka_unit_test(verify_catches_loss),
        cmocka_unit_test(hostile_streams),
        cmocka_unit_test(huge_sizes_refused),
        cmocka_unit_test(encoders_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
