/*
 * test_gateway_scu.c - what the forwarder proposes and what it sends an
 * archive that refuses a compressed syntax (gateway/scu.c,
 * gateway/scu_native.c): a compressed file brings its own context first
 * and the native one of its class, contexts are shared and never exceed
 * DCM_MAX_CONTEXTS; gw_scu_write_native turns RLE and JPEG 2000 files
 * (made here with codec/) into Explicit VR Little Endian with the same
 * samples in every frame, the photometric interpretation the decoder
 * gives, the elements after Pixel Data kept, and refuses a cut
 * codestream. Files in $SIREN_TEST_TMP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "scu.h"
#include "scratch.h"

#define CT_IMAGE "1.2.840.10008.5.1.4.1.1.2"
#define MR_IMAGE "1.2.840.10008.5.1.4.1.1.4"
#define T_SOP_CLASS DCM_TAG(0x0008, 0x0016)
#define T_SOP_INSTANCE DCM_TAG(0x0008, 0x0018)
#define T_SAMPLES DCM_TAG(0x0028, 0x0002)
#define T_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define T_PLANAR DCM_TAG(0x0028, 0x0006)
#define T_FRAMES DCM_TAG(0x0028, 0x0008)
#define T_ROWS DCM_TAG(0x0028, 0x0010)
#define T_COLUMNS DCM_TAG(0x0028, 0x0011)
#define T_BITS_ALLOCATED DCM_TAG(0x0028, 0x0100)
#define T_BITS_STORED DCM_TAG(0x0028, 0x0101)
#define T_HIGH_BIT DCM_TAG(0x0028, 0x0102)
#define T_PIXEL_REPRESENTATION DCM_TAG(0x0028, 0x0103)
#define T_AFTER_CREATOR DCM_TAG(0x7FE1, 0x0010)
#define T_AFTER_VALUE DCM_TAG(0x7FE1, 0x1001)

static char dir[512];

/* ---- proposals -------------------------------------------------------------------- */

static gw_scu_file file_of(const char *sop_class, const char *ts_uid)
{
    gw_scu_file f = {0};
    snprintf(f.sop_class, sizeof f.sop_class, "%s", sop_class);
    f.ts = dcm_ts_find(ts_uid);
    assert_non_null(f.ts);
    return f;
}

static void assert_syntaxes(const dcm_proposal *p, const char *first,
                            const char *second)
{
    assert_int_equal(p->syntax_count, second ? 2 : 1);
    assert_string_equal(p->syntaxes[0]->uid, first);
    if (second)
        assert_string_equal(p->syntaxes[1]->uid, second);
}

static void test_compressed_brings_native_context(void **state)
{
    (void)state;
    gw_proposals *p = calloc(1, sizeof *p);
    gw_scu_file jpegls = file_of(CT_IMAGE, CODEC_TS_JPEG_LS_LOSSLESS);
    assert_int_equal(gw_proposals_add(p, &jpegls), 0);
    assert_int_equal(p->count, 2);
    /* Its own syntax alone first: an acceptor offered native syntaxes in
     * the same context would often take one of those instead. */
    assert_syntaxes(&p->items[0], CODEC_TS_JPEG_LS_LOSSLESS, NULL);
    assert_syntaxes(&p->items[1], DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE);
    assert_string_equal(p->items[1].abstract_syntax, CT_IMAGE);
    assert_ptr_equal(gw_proposals_find(p, &jpegls), &p->items[0]);

    gw_scu_file j2k = file_of(CT_IMAGE, CODEC_TS_J2K_LOSSLESS);
    assert_null(gw_proposals_find(p, &j2k));
    assert_int_equal(gw_proposals_add(p, &j2k), 0);
    assert_int_equal(p->count, 3); /* the native context is shared */
    assert_syntaxes(&p->items[2], CODEC_TS_J2K_LOSSLESS, NULL);

    gw_scu_file implicit = file_of(CT_IMAGE, DCM_TS_IMPLICIT_LE);
    assert_ptr_equal(gw_proposals_find(p, &implicit), &p->items[1]);
    assert_int_equal(gw_proposals_add(p, &implicit), 0);
    assert_int_equal(p->count, 3);
    assert_syntaxes(&p->items[1], DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE);

    gw_scu_file mr = file_of(MR_IMAGE, DCM_TS_EXPLICIT_LE);
    assert_int_equal(gw_proposals_add(p, &mr), 0);
    assert_int_equal(p->count, 4);
    assert_syntaxes(&p->items[3], DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE);
    free(p);
}

static void test_proposals_full(void **state)
{
    (void)state;
    gw_proposals *p = calloc(1, sizeof *p);
    char uid[32];
    for (unsigned i = 0; i < DCM_MAX_CONTEXTS - 1; i++) {
        snprintf(uid, sizeof uid, "1.2.3.%u", i + 1);
        gw_scu_file f = file_of(uid, DCM_TS_EXPLICIT_LE);
        assert_int_equal(gw_proposals_add(p, &f), 0);
    }
    assert_int_equal(p->count, DCM_MAX_CONTEXTS - 1);
    /* Two contexts needed, one left: nothing is added. */
    gw_scu_file rle = file_of("1.2.3.999", CODEC_TS_RLE);
    assert_int_equal(gw_proposals_add(p, &rle), -1);
    assert_int_equal(p->count, DCM_MAX_CONTEXTS - 1);
    /* A compressed file of a class proposed already needs one. */
    gw_scu_file known = file_of("1.2.3.7", CODEC_TS_RLE);
    assert_int_equal(gw_proposals_add(p, &known), 0);
    assert_int_equal(p->count, DCM_MAX_CONTEXTS);
    free(p);
}

/* ---- gw_scu_write_native ---------------------------------------------------------- */

static void set_us(dcm_dataset *ds, uint32_t tag, uint16_t value)
{
    uint8_t bytes[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    assert_int_equal(dcm_dataset_set_bytes(ds, tag, DCM_VR_US, bytes, 2,
                                           NULL), 0);
}

/* A dataset for image, its pixel data not set yet. */
static dcm_dataset *image_dataset(const codec_image *image)
{
    dcm_dataset *ds = dcm_dataset_new();
    char frames[16];
    snprintf(frames, sizeof frames, "%u", image->frames);
    assert_int_equal(dcm_dataset_set_string(ds, T_SOP_CLASS, DCM_VR_UI,
                                            CT_IMAGE, NULL), 0);
    assert_int_equal(dcm_dataset_set_string(ds, T_SOP_INSTANCE, DCM_VR_UI,
                                            "1.2.3.4.5", NULL), 0);
    set_us(ds, T_SAMPLES, image->samples_per_pixel);
    assert_int_equal(dcm_dataset_set_string(
                         ds, T_PHOTOMETRIC, DCM_VR_CS,
                         codec_photometric_name(image->photometric), NULL),
                     0);
    if (image->samples_per_pixel == 3)
        set_us(ds, T_PLANAR, 0);
    assert_int_equal(dcm_dataset_set_string(ds, T_FRAMES, DCM_VR_IS, frames,
                                            NULL), 0);
    set_us(ds, T_ROWS, (uint16_t)image->rows);
    set_us(ds, T_COLUMNS, (uint16_t)image->columns);
    set_us(ds, T_BITS_ALLOCATED, image->bits_allocated);
    set_us(ds, T_BITS_STORED, image->bits_stored);
    set_us(ds, T_HIGH_BIT, image->high_bit);
    set_us(ds, T_PIXEL_REPRESENTATION, image->pixel_representation);
    /* Something after Pixel Data, which the native copy must keep. */
    assert_int_equal(dcm_dataset_set_string(ds, T_AFTER_CREATOR, DCM_VR_LO,
                                            "SIREN TEST", NULL), 0);
    assert_int_equal(dcm_dataset_set_string(ds, T_AFTER_VALUE, DCM_VR_LO,
                                            "after the pixels", NULL), 0);
    return ds;
}

/* Writes image (frames: all of them, native) compressed into ts_uid to
 * dir/name; the path is returned. cut: the first frame's codestream cut
 * to half. */
static char *write_compressed(const char *name, const codec_image *image,
                              const uint8_t *frames, const char *ts_uid,
                              bool cut)
{
    size_t frame_len;
    assert_int_equal(codec_frame_bytes(image, &frame_len, NULL), 0);
    dcm_dataset *ds = image_dataset(image);
    codec_writer *w = codec_writer_new(ts_uid, NULL);
    assert_non_null(w);
    codec_encoded encoded;
    codec_image one = *image;
    one.frames = 1;
    for (uint32_t i = 0; i < image->frames; i++) {
        uint8_t *stream;
        size_t len;
        assert_int_equal(codec_encode_frame(ts_uid, &one,
                                            frames + i * frame_len,
                                            frame_len, NULL, &stream, &len,
                                            &encoded, NULL), 0);
        assert_int_equal(codec_writer_add_frame(w, stream,
                                                cut && i == 0 ? len / 2
                                                              : len, NULL),
                         0);
        free(stream);
    }
    assert_int_equal(codec_writer_finish(w, ds, NULL), 0);
    codec_writer_free(w);
    assert_int_equal(dcm_dataset_set_string(
                         ds, T_PHOTOMETRIC, DCM_VR_CS,
                         codec_photometric_name(encoded.image.photometric),
                         NULL), 0);
    char *path = malloc(1024);
    snprintf(path, 1024, "%s/%s", dir, name);
    dcm_write_options options = {.transfer_syntax = ts_uid};
    dcm_error err = {0};
    int rc = dcm_write_file_path(ds, &options, path, &err);
    if (rc < 0)
        fail_msg("writing %s: %s", path, err.message);
    dcm_dataset_free(ds);
    return path;
}

/* gw_scu_write_native of path into path.native; its return code, the
 * native file opened in *out when 0. */
static int to_native(const char *path, dcm_file **out)
{
    char native[1100];
    snprintf(native, sizeof native, "%s.native", path);
    int fd = open(native, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dcm_error err = {0};
    int rc = gw_scu_write_native(path, fd, &err);
    assert_int_equal(close(fd), 0);
    if (rc == DCM_OK) {
        *out = dcm_file_open(native, NULL, &err);
        if (!*out)
            fail_msg("the native copy does not read back: %s", err.message);
    } else {
        assert_true(err.message[0] != '\0');
    }
    return rc;
}

static char *string_of(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    assert_non_null(el);
    return dcm_element_get_string(el, NULL);
}

static void assert_native(dcm_file *f, const uint8_t *frames, size_t len,
                          const char *photometric)
{
    assert_string_equal(dcm_file_transfer_syntax(f)->uid,
                        DCM_TS_EXPLICIT_LE);
    const dcm_dataset *ds = dcm_file_dataset(f);
    const dcm_element *pixels = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_non_null(pixels);
    assert_int_equal(dcm_element_kind_of(pixels), DCM_KIND_VALUE);
    assert_int_equal(dcm_element_length(pixels), len + len % 2);
    uint8_t *got = malloc(len);
    assert_int_equal(dcm_element_read(pixels, 0, got, len, NULL), 0);
    assert_memory_equal(got, frames, len);
    free(got);
    char *text = string_of(ds, T_PHOTOMETRIC);
    assert_string_equal(text, photometric);
    free(text);
    text = string_of(ds, T_AFTER_VALUE);
    assert_string_equal(text, "after the pixels");
    free(text);
    text = string_of(ds, T_SOP_INSTANCE);
    assert_string_equal(text, "1.2.3.4.5");
    free(text);
}

static void test_native_from_rle_frames(void **state)
{
    (void)state;
    codec_image image = {.rows = 5, .columns = 7, .samples_per_pixel = 1,
                         .bits_allocated = 16, .bits_stored = 16,
                         .high_bit = 15, .pixel_representation = 1,
                         .photometric = CODEC_PI_MONOCHROME2, .frames = 3};
    size_t len = 3 * 5 * 7 * 2;
    uint8_t frames[3 * 5 * 7 * 2];
    for (size_t i = 0; i < len / 2; i++) {
        int16_t v = (int16_t)(i * 977 % 4000) - 2000;
        frames[2 * i] = (uint8_t)v;
        frames[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
    }
    char *path = write_compressed("rle.dcm", &image, frames, CODEC_TS_RLE,
                                  false);
    dcm_file *f = NULL;
    assert_int_equal(to_native(path, &f), DCM_OK);
    assert_native(f, frames, len, "MONOCHROME2");
    dcm_file_free(f);
    free(path);
}

static void test_native_from_j2k_colour(void **state)
{
    (void)state;
    codec_image image = {.rows = 3, .columns = 5, .samples_per_pixel = 3,
                         .bits_allocated = 8, .bits_stored = 8,
                         .high_bit = 7, .photometric = CODEC_PI_RGB,
                         .frames = 1};
    uint8_t frame[3 * 5 * 3];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * 37 + 11);
    char *path = write_compressed("j2k.dcm", &image, frame,
                                  CODEC_TS_J2K_LOSSLESS, false);
    dcm_file *compressed = dcm_file_open(path, NULL, NULL);
    char *stored = string_of(dcm_file_dataset(compressed), T_PHOTOMETRIC);
    assert_string_equal(stored, "YBR_RCT"); /* as the encoder said */
    free(stored);
    dcm_file_free(compressed);
    dcm_file *f = NULL;
    assert_int_equal(to_native(path, &f), DCM_OK);
    /* 45 bytes: padded to 46, the samples the same. */
    assert_native(f, frame, sizeof frame, "RGB");
    dcm_file_free(f);
    free(path);
}

static void test_native_refuses_cut_codestream(void **state)
{
    (void)state;
    codec_image image = {.rows = 8, .columns = 8, .samples_per_pixel = 1,
                         .bits_allocated = 8, .bits_stored = 8,
                         .high_bit = 7, .photometric = CODEC_PI_MONOCHROME2,
                         .frames = 1};
    uint8_t frame[64];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)(i * i);
    char *path = write_compressed("cut.dcm", &image, frame,
                                  CODEC_TS_JPEG_LS_LOSSLESS, true);
    dcm_file *f = NULL;
    int rc = to_native(path, &f);
    assert_true(rc < 0 && rc != DCM_E_IO && rc != DCM_E_NOMEM);
    free(path);
}

int main(void)
{
    if (scratch_make(dir, sizeof dir, "gateway_scu") < 0) {
        perror(dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compressed_brings_native_context),
        cmocka_unit_test(test_proposals_full),
        cmocka_unit_test(test_native_from_rle_frames),
        cmocka_unit_test(test_native_from_j2k_colour),
        cmocka_unit_test(test_native_refuses_cut_codestream),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (failed == 0 && scratch_remove(dir) != 0)
        return 1;
    return failed;
}
