/* test_dicom_write.c - the writer: what every output carries (fresh meta,
 * even lengths, no group lengths), each target syntax read back by our
 * reader, and the refusals (transcoding, big endian). The corpus test
 * checks our output against DCMTK and pydicom. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "bytes.h"
#include "dicom.h"

static int to_bytes(void *ctx, const void *data, size_t len)
{
    bytes_put(ctx, data, len);
    return 0;
}

#define PATIENT_NAME DCM_TAG(0x0010, 0x0010)

/* A small image dataset with a nested sequence and private data. */
static dcm_dataset *sample(void)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_error err = {0};
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI,
                                            "1.2.840.10008.5.1.4.1.1.7", &err), 0);
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG_SOP_INSTANCE_UID,
                                            DCM_VR_UI, "1.2.3.4.5", &err), 0);
    assert_int_equal(dcm_dataset_set_string(ds, PATIENT_NAME, DCM_VR_PN, "Odd^Len",
                                            &err), 0);
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x0010, 0x0000), DCM_VR_UL,
                                            "", &err), 0); /* group length */
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x0009, 0x0010), DCM_VR_LO,
                                            "ACME 1.0", &err), 0);
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x0009, 0x1001), DCM_VR_LO,
                                            "secret", &err), 0);
    dcm_element *seq = dcm_dataset_set_sequence(ds, DCM_TAG(0x0008, 0x1140), &err);
    assert_non_null(seq);
    dcm_dataset *item = dcm_element_append_item(seq, &err);
    assert_non_null(item);
    assert_int_equal(dcm_dataset_set_string(item, DCM_TAG(0x0008, 0x1155),
                                            DCM_VR_UI, "1.2.3", &err), 0);
    uint16_t rows = 2;
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG(0x0028, 0x0010), DCM_VR_US,
                                           &rows, 2, &err), 0);
    uint8_t pixels[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW,
                                           pixels, sizeof pixels, &err), 0);
    return ds;
}

static dcm_file *write_and_read(const dcm_dataset *ds, const char *ts,
                                bytes *out)
{
    dcm_write_options opt = {.transfer_syntax = ts, .deflate_level = -1,
                             .source_ae_title = "SIREN"};
    dcm_error err = {0};
    int rc = dcm_write_file(ds, &opt, to_bytes, out, &err);
    if (rc != DCM_OK)
        fail_msg("write failed: %s", err.message);
    dcm_file *f = dcm_file_open_memory(out->data, out->len, NULL, &err);
    if (!f)
        fail_msg("read back failed at %lld: %s", (long long)err.offset,
                 err.message);
    return f;
}

static void assert_text(const dcm_dataset *ds, uint32_t tag, const char *want)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    assert_non_null(el);
    char *got = dcm_element_get_string(el, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void round_trip(const char *ts)
{
    dcm_dataset *ds = sample();
    bytes out = {0};
    dcm_file *f = write_and_read(ds, ts, &out);
    assert_string_equal(dcm_file_transfer_syntax(f)->uid, ts);
    const dcm_dataset *back = dcm_file_dataset(f);
    assert_null(dcm_dataset_find(back, DCM_TAG(0x0010, 0x0000)));
    assert_text(back, PATIENT_NAME, "Odd^Len");
    /* Padded to even length with a space for PN. */
    assert_int_equal(dcm_element_length(dcm_dataset_find(back, PATIENT_NAME)), 8);
    /* Implicit VR cannot say the VR of a private element that no
     * dictionary knows: it comes back as UN, bytes intact. */
    const dcm_element *private_el = dcm_dataset_find(back, DCM_TAG(0x9, 0x1001));
    if (strcmp(ts, DCM_TS_IMPLICIT_LE) == 0)
        assert_int_equal(dcm_element_vr(private_el), DCM_VR_UN);
    else
        assert_int_equal(dcm_element_vr(private_el), DCM_VR_LO);
    assert_memory_equal(dcm_element_bytes(private_el), "secret", 6);
    const dcm_element *seq = dcm_dataset_find(back, DCM_TAG(0x0008, 0x1140));
    assert_int_equal(dcm_element_item_count(seq), 1);
    assert_text(dcm_element_item(seq, 0), DCM_TAG(0x0008, 0x1155), "1.2.3");
    uint8_t pixels[8];
    assert_int_equal(dcm_element_read(dcm_dataset_find(back, DCM_TAG_PIXEL_DATA),
                                      0, pixels, 8, NULL), 0);
    assert_memory_equal(pixels, "\1\2\3\4\5\6\7\x08", 8);
    const dcm_dataset *meta = dcm_file_meta(f);
    assert_text(meta, DCM_TAG_TRANSFER_SYNTAX_UID, ts);
    assert_text(meta, DCM_TAG_MEDIA_SOP_INSTANCE_UID, "1.2.3.4.5");
    assert_text(meta, DCM_TAG_IMPLEMENTATION_CLASS_UID,
                DCM_IMPLEMENTATION_CLASS_UID);
    assert_text(meta, DCM_TAG_SOURCE_AE_TITLE, "SIREN");
    dcm_file_free(f);
    free(out.data);
    dcm_dataset_free(ds);
}

static void explicit_round_trip(void **state)
{
    (void)state;
    round_trip(DCM_TS_EXPLICIT_LE);
}

static void implicit_round_trip(void **state)
{
    (void)state;
    round_trip(DCM_TS_IMPLICIT_LE);
}

static void deflated_round_trip(void **state)
{
    (void)state;
    round_trip(DCM_TS_DEFLATED_LE);
}

/* The meta's group length counts exactly the meta elements after it. */
static void meta_group_length_exact(void **state)
{
    (void)state;
    dcm_dataset *ds = sample();
    bytes out = {0};
    dcm_file *f = write_and_read(ds, DCM_TS_EXPLICIT_LE, &out);
    int64_t declared = 0;
    assert_int_equal(dcm_element_get_int(dcm_dataset_find(dcm_file_meta(f),
                                             DCM_TAG_FILE_META_GROUP_LENGTH),
                                         0, &declared, NULL), 0);
    /* The dataset starts right after the meta: its first tag (0008,0016). */
    size_t dataset_start = 132 + 12 + (size_t)declared;
    assert_memory_equal(out.data + dataset_start, "\x08\x00\x16\x00", 4);
    dcm_file_free(f);
    free(out.data);
    dcm_dataset_free(ds);
}

/* A short-VR value longer than 64 KiB can only travel as UN. */
static void long_value_becomes_un(void **state)
{
    (void)state;
    dcm_dataset *ds = sample();
    size_t n = 70000;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x0008, 0x1030),
                                            DCM_VR_LO, text, NULL), 0);
    bytes out = {0};
    dcm_file *f = write_and_read(ds, DCM_TS_EXPLICIT_LE, &out);
    const dcm_element *el =
        dcm_dataset_find(dcm_file_dataset(f), DCM_TAG(0x0008, 0x1030));
    assert_int_equal(dcm_element_vr(el), DCM_VR_UN);
    assert_int_equal(dcm_element_length(el), n);
    dcm_file_free(f);
    free(out.data);
    free(text);
    dcm_dataset_free(ds);
}

static void encapsulated_kept_and_refused(void **state)
{
    (void)state;
    dcm_dataset *ds = sample();
    dcm_error err = {0};
    dcm_element *pixels = dcm_dataset_set_fragments(ds, DCM_TAG_PIXEL_DATA,
                                                    DCM_VR_OB, &err);
    assert_non_null(pixels);
    assert_int_equal(dcm_element_append_fragment(pixels, "\xFF\xD8\xFF", 3,
                                                 &err), 0);
    const dcm_ts *jpeg = dcm_ts_find("1.2.840.10008.1.2.4.50");
    dcm_dataset_set_syntax(ds, jpeg);

    bytes out = {0};
    dcm_file *f = write_and_read(ds, NULL, &out);
    assert_ptr_equal(dcm_file_transfer_syntax(f), jpeg);
    const dcm_element *back =
        dcm_dataset_find(dcm_file_dataset(f), DCM_TAG_PIXEL_DATA);
    assert_int_equal(dcm_element_fragment_count(back), 2);
    assert_int_equal(dcm_element_fragment_length(back, 1), 4); /* padded */
    dcm_file_free(f);
    free(out.data);

    bytes refused = {0};
    dcm_write_options opt = {.transfer_syntax = DCM_TS_EXPLICIT_LE};
    assert_int_equal(dcm_write_file(ds, &opt, to_bytes, &refused, &err),
                     DCM_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "transcoding"));
    opt.transfer_syntax = "1.2.840.10008.1.2.4.90";
    assert_int_equal(dcm_write_file(ds, &opt, to_bytes, &refused, &err),
                     DCM_E_UNSUPPORTED);
    opt.transfer_syntax = DCM_TS_EXPLICIT_BE;
    assert_int_equal(dcm_write_file(ds, &opt, to_bytes, &refused, &err),
                     DCM_E_UNSUPPORTED);
    free(refused.data);
    dcm_dataset_free(ds);
}

static void missing_sop_uids_refused(void **state)
{
    (void)state;
    dcm_dataset *ds = dcm_dataset_new();
    bytes out = {0};
    dcm_error err = {0};
    assert_int_equal(dcm_write_file(ds, NULL, to_bytes, &out, &err),
                     DCM_E_INVALID);
    assert_non_null(strstr(err.message, "SOP Class UID"));
    dcm_write_options opt = {.sop_class_uid = "1.2.3", .sop_instance_uid = "4.5"};
    assert_int_equal(dcm_write_file(ds, &opt, to_bytes, &out, &err), DCM_OK);
    free(out.data);
    dcm_dataset_free(ds);
}

/* Datasets as they travel in P-DATA: no preamble, no meta. */
static void bare_dataset_written(void **state)
{
    (void)state;
    dcm_dataset *ds = sample();
    bytes out = {0};
    dcm_error err = {0};
    assert_int_equal(dcm_write_dataset(ds, DCM_TS_IMPLICIT_LE, to_bytes, &out,
                                       &err), 0);
    dcm_read_options opt = {.transfer_syntax = DCM_TS_IMPLICIT_LE};
    dcm_file *f = dcm_file_open_memory(out.data, out.len, &opt, &err);
    assert_non_null(f);
    assert_int_equal(dcm_dataset_count(dcm_file_meta(f)), 0);
    assert_text(dcm_file_dataset(f), PATIENT_NAME, "Odd^Len");
    dcm_file_free(f);
    free(out.data);
    dcm_dataset_free(ds);
}

/* dcm_dataset_take_bytes keeps the caller's buffer (no copy), writes like
 * set_bytes, and owns the buffer when it refuses (ASan would see a leak
 * or a double free). */
static void taken_value_written(void **state)
{
    (void)state;
    dcm_dataset *ds = sample();
    dcm_error err = {0};
    uint8_t *pixels = malloc(4 + 1);
    memcpy(pixels, "\x01\x02\x03\x04", 4);
    assert_int_equal(dcm_dataset_take_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW,
                                            pixels, 4, &err),
                     DCM_OK);
    const dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_ptr_equal(dcm_element_bytes(el), pixels);
    assert_int_equal(dcm_element_length(el), 4);
    bytes out = {0};
    dcm_file *f = write_and_read(ds, DCM_TS_EXPLICIT_LE, &out);
    uint8_t back[4];
    assert_int_equal(dcm_element_read(dcm_dataset_find(dcm_file_dataset(f),
                                                       DCM_TAG_PIXEL_DATA),
                                      0, back, 4, NULL), 0);
    assert_memory_equal(back, "\x01\x02\x03\x04", 4);
    dcm_file_free(f);
    free(out.data);
    assert_int_equal(dcm_dataset_take_bytes(ds, DCM_TAG(0x0008, 0x1115),
                                            DCM_VR_SQ, malloc(1), 0, &err),
                     DCM_E_ARG);
    dcm_dataset_free(ds);
}

/* Writing to a path replaces the file only once the new one is complete. */
static void write_to_path(void **state)
{
    (void)state;
    const char *tmp = getenv("SIREN_TEST_TMP");
    char path[1024];
    snprintf(path, sizeof path, "%s/write_to_path.dcm", tmp ? tmp : "/tmp");
    dcm_dataset *ds = sample();
    dcm_error err = {0};
    assert_int_equal(dcm_write_file_path(ds, NULL, path, &err), DCM_OK);
    dcm_file *f = dcm_file_open(path, NULL, &err);
    assert_non_null(f);
    assert_text(dcm_file_dataset(f), PATIENT_NAME, "Odd^Len");
    dcm_file_free(f);
    dcm_dataset *bad = dcm_dataset_new(); /* no SOP UIDs: write fails */
    assert_int_not_equal(dcm_write_file_path(bad, NULL, path, &err), DCM_OK);
    f = dcm_file_open(path, NULL, &err); /* the old file is intact */
    assert_non_null(f);
    dcm_file_free(f);
    remove(path);
    dcm_dataset_free(bad);
    dcm_dataset_free(ds);
}

/* Big endian input comes out little endian, values unchanged. */
static void big_endian_converted(void **state)
{
    (void)state;
    bytes in = {0};
    bytes_part10_header(&in, DCM_TS_EXPLICIT_BE);
    in.big_endian = true;
    bytes_explicit_str(&in, 0x0008, 0x0016, "UI", "1.2.3.");
    bytes_explicit_str(&in, 0x0008, 0x0018, "UI", "1.2.4.");
    bytes_explicit(&in, 0x0028, 0x0010, "US", "\x01\x02", 2);
    bytes_explicit(&in, 0x7FE0, 0x0010, "OW", "\x01\x02\x03\x04", 4);
    dcm_error err = {0};
    dcm_file *src = dcm_file_open_memory(in.data, in.len, NULL, &err);
    assert_non_null(src);
    bytes out = {0};
    dcm_file *f = write_and_read(dcm_file_dataset(src), DCM_TS_EXPLICIT_LE, &out);
    int64_t rows = 0;
    assert_int_equal(dcm_element_get_int(dcm_dataset_find(dcm_file_dataset(f),
                                                          DCM_TAG(0x28, 0x10)),
                                         0, &rows, NULL), 0);
    assert_int_equal(rows, 0x0102);
    uint8_t pixels[4];
    assert_int_equal(dcm_element_read(dcm_dataset_find(dcm_file_dataset(f),
                                                       DCM_TAG_PIXEL_DATA),
                                      0, pixels, 4, NULL), 0);
    assert_memory_equal(pixels, "\x02\x01\x04\x03", 4);
    dcm_file_free(f);
    dcm_file_free(src);
    free(out.data);
    free(in.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explicit_round_trip),
        cmocka_unit_test(implicit_round_trip),
        cmocka_unit_test(deflated_round_trip),
        cmocka_unit_test(meta_group_length_exact),
        cmocka_unit_test(long_value_becomes_un),
        cmocka_unit_test(encapsulated_kept_and_refused),
        cmocka_unit_test(missing_sop_uids_refused),
        cmocka_unit_test(bare_dataset_written),
        cmocka_unit_test(taken_value_written),
        cmocka_unit_test(write_to_path),
        cmocka_unit_test(big_endian_converted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
