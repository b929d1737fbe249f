/*
 * test_gateway_pixels.c - the processor's pixel stage (gateway/pixels.c)
 * on datasets built here, under policies written to a scratch folder in
 * $SIREN_TEST_TMP: the black value of each photometric interpretation
 * (signed, MONOCHROME1, YBR_FULL_422 pairs), the rectangle clipped to the
 * image and nothing outside it touched, redaction alone (native, or the
 * received lossless syntax), compression with the lossless check, the
 * lossy marks (ratio and method appended, a deterministic new SOP
 * Instance UID, the derivation), the failures: quarantine, keep-original
 * (which still blanks the rectangles), PALETTE COLOR never forwarded
 * unblanked. The audit event and metrics are recorded by stand-ins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "codec.h"
#include "metrics.h"
#include "pixels.h"
#include "scratch.h"

#define T_SOP_INSTANCE DCM_TAG(0x0008, 0x0018)
#define T_MODALITY DCM_TAG(0x0008, 0x0060)
#define T_MANUFACTURER DCM_TAG(0x0008, 0x0070)
#define T_SAMPLES DCM_TAG(0x0028, 0x0002)
#define T_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define T_PLANAR DCM_TAG(0x0028, 0x0006)
#define T_ROWS DCM_TAG(0x0028, 0x0010)
#define T_COLUMNS DCM_TAG(0x0028, 0x0011)
#define T_BITS_STORED DCM_TAG(0x0028, 0x0101)
#define T_HIGH_BIT DCM_TAG(0x0028, 0x0102)
#define T_BURNED_IN DCM_TAG(0x0028, 0x0301)
#define T_LOSSY DCM_TAG(0x0028, 0x2110)
#define T_LOSSY_RATIO DCM_TAG(0x0028, 0x2112)
#define T_LOSSY_METHOD DCM_TAG(0x0028, 0x2114)
#define T_DERIVATION_CODES DCM_TAG(0x0008, 0x9215)
#define T_SOURCE_IMAGES DCM_TAG(0x0008, 0x2112)
#define T_REFERENCED_INSTANCE DCM_TAG(0x0008, 0x1155)

static char dir[512], key_path[600];

/* ---- stand-ins for the audit trail and the metrics ------------------------------ */

static char last_event[64], last_action[32];
static unsigned metric_calls;

void gw_audit(const char *event, ...)
{
    snprintf(last_event, sizeof last_event, "%s", event);
    va_list ap;
    va_start(ap, event);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (strcmp(key, "action") == 0 && value)
            snprintf(last_action, sizeof last_action, "%s", value);
    }
    va_end(ap);
}

void gw_metric_pixels(const char *action, bool redacted,
                      uint64_t bytes_before, uint64_t bytes_after)
{
    (void)action, (void)redacted, (void)bytes_before, (void)bytes_after;
    metric_calls++;
}

/* ---- scratch folder and policies ------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    if (scratch_make(dir, sizeof dir, "test_pixels") < 0)
        return -1;
    snprintf(key_path, sizeof key_path, "%s/key", dir);
    scratch_write(key_path, "siren-test-key-0123456789abcdef", 0600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return scratch_remove(dir);
}

/* A policy with the basic profile, the test key and body. */
static pol_policy *policy(const char *body)
{
    static unsigned serial;
    char path[700], text[2048];
    snprintf(path, sizeof path, "%s/p%u.policy", dir, serial++);
    snprintf(text, sizeof text,
             "policy \"pixels\" version 1\n  profile basic\n"
             "  key file \"%s\"\n%s\nend\n", key_path, body);
    scratch_write(path, text, 0644);
    pol_diags diags = {0};
    pol_policy *p = pol_policy_load(path, pol_lookup_env, NULL, &diags);
    char line[1024];
    for (size_t i = 0; !p && i < diags.count; i++)
        print_error("%s\n", pol_diag_format(&diags.items[i], line,
                                             sizeof line));
    pol_diags_free(&diags);
    assert_non_null(p);
    return p;
}

/* ---- datasets --------------------------------------------------------------------- */

static void set_us(dcm_dataset *ds, uint32_t tag, uint16_t value)
{
    uint8_t bytes[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    assert_int_equal(dcm_dataset_set_bytes(ds, tag, DCM_VR_US, bytes, 2,
                                           NULL), DCM_OK);
}

static void set_str(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                    const char *text)
{
    assert_int_equal(dcm_dataset_set_string(ds, tag, vr, text, NULL),
                     DCM_OK);
}

static char *get_str(const dcm_dataset *ds, uint32_t tag)
{
    dcm_element *el = dcm_dataset_find(ds, tag);
    assert_non_null(el);
    char *value = dcm_element_get_string(el, NULL);
    assert_non_null(value);
    return value;
}

static void assert_str(const dcm_dataset *ds, uint32_t tag,
                       const char *expected)
{
    char *value = get_str(ds, tag);
    assert_string_equal(value, expected);
    free(value);
}

/* An image of rows x columns, one frame, with pixels (bits_allocated 8:
 * one byte per sample, 16: two, 32: four; samples interleaved) from the
 * caller, native Explicit VR Little Endian. */
static dcm_dataset *image(const char *photometric, uint16_t samples,
                          uint16_t rows, uint16_t columns, uint16_t bits,
                          uint16_t stored, uint16_t is_signed,
                          const void *pixels, size_t len)
{
    dcm_dataset *ds = dcm_dataset_new();
    assert_non_null(ds);
    set_str(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.7");
    set_str(ds, T_SOP_INSTANCE, DCM_VR_UI, "2.25.1234567890");
    set_str(ds, T_MODALITY, DCM_VR_CS, "OT");
    set_str(ds, T_MANUFACTURER, DCM_VR_LO, "ACME");
    set_us(ds, T_SAMPLES, samples);
    set_str(ds, T_PHOTOMETRIC, DCM_VR_CS, photometric);
    if (samples > 1)
        set_us(ds, T_PLANAR, 0);
    set_us(ds, T_ROWS, rows);
    set_us(ds, T_COLUMNS, columns);
    set_us(ds, DCM_TAG_BITS_ALLOCATED, bits);
    set_us(ds, T_BITS_STORED, stored);
    set_us(ds, T_HIGH_BIT, (uint16_t)(stored - 1));
    set_us(ds, DCM_TAG_PIXEL_REPRESENTATION, is_signed);
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA,
                                           bits > 8 ? DCM_VR_OW : DCM_VR_OB,
                                           pixels, len, NULL), DCM_OK);
    dcm_dataset_set_syntax(ds, dcm_ts_find(DCM_TS_EXPLICIT_LE));
    return ds;
}

/* Frame 0 of ds decoded (owned by the caller), and its description. */
static uint8_t *frame_of(const dcm_dataset *ds, size_t *len,
                         codec_image *decoded)
{
    dcm_error err = {0};
    codec_source *src = codec_source_open(ds, NULL, &err);
    if (!src)
        print_error("%s\n", err.message);
    assert_non_null(src);
    uint8_t *data = NULL;
    assert_int_equal(codec_source_decode(src, 0, &data, len, decoded, &err),
                     DCM_OK);
    codec_source_free(src);
    return data;
}

static const char *syntax_of(const dcm_dataset *ds)
{
    const dcm_ts *ts = dcm_dataset_syntax(ds);
    return ts ? ts->uid : "";
}

/* plan on ds as received, then apply (the steps process.c runs). */
static int run(const pol_policy *p, dcm_dataset *ds, gw_pixel_outcome *out)
{
    gw_pixel_plan plan;
    gw_pixels_plan(p, ds, &plan);
    int rc = gw_pixels_apply(&plan, p, ds, out);
    gw_pixels_plan_free(&plan);
    return rc;
}

/* ---- tests ------------------------------------------------------------------------ */

/* Signed MONOCHROME1, 12 of 16 bits: black is the highest value, 2047;
 * the rectangle is clipped at the image's edge; redaction alone writes
 * native Explicit VR Little Endian and sets Burned In Annotation NO. */
static void redacts_native_monochrome1_signed(void **state)
{
    (void)state;
    int16_t pixels[6 * 8];
    for (size_t i = 0; i < 48; i++)
        pixels[i] = (int16_t)((int)i * 37 - 900);
    dcm_dataset *ds = image("MONOCHROME1", 1, 6, 8, 16, 12, 1, pixels,
                            sizeof pixels);
    pol_policy *p = policy("  redact rectangle 5 4 100 100 if Manufacturer "
                           "== \"ACME\"");
    gw_pixel_outcome out;
    assert_int_equal(run(p, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_REDACTED);
    assert_int_equal(out.redacted, 1);
    assert_string_equal(syntax_of(ds), DCM_TS_EXPLICIT_LE);
    assert_str(ds, T_BURNED_IN, "NO");
    size_t len;
    codec_image decoded;
    uint8_t *frame = frame_of(ds, &len, &decoded);
    assert_int_equal(len, sizeof pixels);
    for (int row = 0; row < 6; row++)
        for (int col = 0; col < 8; col++) {
            int16_t value;
            memcpy(&value, frame + 2 * (row * 8 + col), 2);
            bool inside = row >= 4 && col >= 5;
            assert_int_equal(value, inside ? 2047 : pixels[row * 8 + col]);
        }
    free(frame);
    pol_policy_unref(p);
    dcm_dataset_free(ds);
}

/* Signed MONOCHROME2: the lowest value (-2^15), not 0 (water in CT). */
static void redacts_signed_monochrome2_to_its_lowest_value(void **state)
{
    (void)state;
    int16_t pixels[4 * 4] = {0};
    dcm_dataset *ds = image("MONOCHROME2", 1, 4, 4, 16, 16, 1, pixels,
                            sizeof pixels);
    /* The sender's stated range no longer holds once blanked. */
    uint8_t zero[2] = {0, 0};
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG(0x0028, 0x0106),
                                           DCM_VR_SS, zero, 2, NULL), 0);
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG(0x0028, 0x0107),
                                           DCM_VR_SS, zero, 2, NULL), 0);
    pol_policy *p = policy("  redact rectangle 0 0 1 1");
    gw_pixel_outcome out;
    assert_int_equal(run(p, ds, &out), 0);
    assert_null(dcm_dataset_find(ds, DCM_TAG(0x0028, 0x0106)));
    assert_null(dcm_dataset_find(ds, DCM_TAG(0x0028, 0x0107)));
    size_t len;
    codec_image decoded;
    uint8_t *frame = frame_of(ds, &len, &decoded);
    int16_t first, second;
    memcpy(&first, frame, 2);
    memcpy(&second, frame + 2, 2);
    assert_int_equal(first, -32768);
    assert_int_equal(second, 0);
    free(frame);
    pol_policy_unref(p);
    dcm_dataset_free(ds);
}

/* Native YBR_FULL_422 (Y1 Y2 Cb Cr per pair): Y black inside; the pair's
 * chroma neutral only when both of its pixels are inside. */
static void redacts_ybr_full_422_by_pairs(void **state)
{
    (void)state;
    uint8_t pixels[1 * 3 * 4]; /* one row of three pairs */
    memset(pixels, 200, sizeof pixels);
    dcm_dataset *ds = image("YBR_FULL_422", 3, 1, 6, 8, 8, 0, pixels,
                            sizeof pixels);
    pol_policy *p = policy("  redact rectangle 1 0 3 1"); /* columns 1-3 */
    gw_pixel_outcome out;
    assert_int_equal(run(p, ds, &out), 0);
    const uint8_t expected[12] = {200, 0, 200, 200,  /* pair 0: half in */
                                  0, 0, 128, 128,    /* pair 1: all in */
                                  200, 200, 200, 200};
    dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_non_null(el);
    assert_memory_equal(dcm_element_bytes(el), expected, sizeof expected);
    pol_policy_unref(p);
    dcm_dataset_free(ds);
}

/* Compression with a rectangle: JPEG-LS lossless, checked, then decoded
 * here: blank inside, equal outside. Then a redact line alone on that
 * encapsulated result keeps its (lossless, encodable) syntax. */
static void compresses_and_keeps_a_lossless_syntax(void **state)
{
    (void)state;
    uint8_t pixels[16 * 16];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 7 + 3);
    dcm_dataset *ds = image("MONOCHROME2", 1, 16, 16, 8, 8, 0, pixels,
                            sizeof pixels);
    pol_policy *p = policy("  compress to jpeg-ls-lossless\n"
                           "  redact rectangle 2 3 4 5");
    gw_pixel_outcome out;
    metric_calls = 0;
    assert_int_equal(run(p, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_COMPRESSED);
    assert_string_equal(out.verify, "passed");
    assert_string_equal(out.to_ts, CODEC_TS_JPEG_LS_LOSSLESS);
    assert_string_equal(syntax_of(ds), CODEC_TS_JPEG_LS_LOSSLESS);
    assert_false(out.lossy);
    assert_null(dcm_dataset_find(ds, T_LOSSY));
    gw_pixels_record("f.dcm", &out);
    assert_string_equal(last_event, "instance.pixels");
    assert_string_equal(last_action, "compressed");
    assert_int_equal(metric_calls, 1);
    size_t len;
    codec_image decoded;
    uint8_t *frame = frame_of(ds, &len, &decoded);
    for (int i = 0; i < 256; i++) {
        int row = i / 16, col = i % 16;
        bool inside = row >= 3 && row < 8 && col >= 2 && col < 6;
        assert_int_equal(frame[i], inside ? 0 : pixels[i]);
    }
    free(frame);
    pol_policy *redact = policy("  redact rectangle 0 0 1 1");
    assert_int_equal(run(redact, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_REDACTED);
    assert_string_equal(syntax_of(ds), CODEC_TS_JPEG_LS_LOSSLESS);
    frame = frame_of(ds, &len, &decoded);
    assert_int_equal(frame[0], 0);
    assert_int_equal(frame[1], pixels[1]);
    free(frame);
    /* Already in the line's syntax, nothing to blank: left as it is. */
    uint64_t before = out.bytes_after;
    pol_policy *same = policy("  compress to jpeg-ls-lossless");
    assert_int_equal(run(same, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_UNCHANGED);
    assert_int_equal(out.bytes_after, before);
    pol_policy_unref(same);
    pol_policy_unref(redact);
    pol_policy_unref(p);
    dcm_dataset_free(ds);
}

/* Lossy: 01, ratio and method appended after the earlier ones, a new SOP
 * Instance UID that is the same for the same input and policy, the
 * derivation code and the predecessor. */
static void marks_a_lossy_result(void **state)
{
    (void)state;
    uint8_t pixels[16 * 16 * 3];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i % 3 == 0 ? i : 90);
    pol_policy *p = policy("  compress to jpeg quality 80");
    char uids[2][DCM_UID_MAX + 1];
    for (int copy = 0; copy < 2; copy++) {
        dcm_dataset *ds = image("RGB", 3, 16, 16, 8, 8, 0, pixels,
                                sizeof pixels);
        set_str(ds, T_LOSSY_RATIO, DCM_VR_DS, "5");
        set_str(ds, T_LOSSY_METHOD, DCM_VR_CS, "ISO_14495_1");
        gw_pixel_outcome out;
        assert_int_equal(run(p, ds, &out), 0);
        assert_int_equal(out.action, GW_PIXELS_COMPRESSED);
        assert_true(out.lossy);
        assert_string_equal(out.verify, "lossy");
        assert_str(ds, T_LOSSY, "01");
        assert_str(ds, T_PHOTOMETRIC, "YBR_FULL_422");
        char *ratio = get_str(ds, T_LOSSY_RATIO);
        assert_true(strncmp(ratio, "5\\", 2) == 0 && strlen(ratio) > 3);
        free(ratio);
        assert_str(ds, T_LOSSY_METHOD, "ISO_14495_1\\ISO_10918_1");
        char *uid = get_str(ds, T_SOP_INSTANCE);
        assert_string_equal(uid, out.sop_instance);
        assert_true(strncmp(uid, "2.25.", 5) == 0 && dcm_uid_is_valid(uid));
        assert_string_not_equal(uid, "2.25.1234567890");
        snprintf(uids[copy], sizeof uids[copy], "%s", uid);
        free(uid);
        dcm_element *codes = dcm_dataset_find(ds, T_DERIVATION_CODES);
        assert_non_null(codes);
        assert_str(dcm_element_item(codes, 0), DCM_TAG(0x0008, 0x0100),
                   "113040");
        dcm_element *source = dcm_dataset_find(ds, T_SOURCE_IMAGES);
        assert_non_null(source);
        assert_str(dcm_element_item(source, 0), T_REFERENCED_INSTANCE,
                   "2.25.1234567890");
        dcm_dataset_free(ds);
    }
    assert_string_equal(uids[0], uids[1]);
    pol_policy_unref(p);
}

/* Redaction of JPEG Baseline pixels without a compress line: never
 * recompressed lossily on its own (native), and still marked lossy even
 * when the sender did not say so. */
static void redacts_lossy_input_into_native(void **state)
{
    (void)state;
    uint8_t pixels[16 * 16];
    memset(pixels, 100, sizeof pixels);
    dcm_dataset *ds = image("MONOCHROME2", 1, 16, 16, 8, 8, 0, pixels,
                            sizeof pixels);
    pol_policy *jpeg = policy("  compress to jpeg quality 95");
    pol_policy *redact = policy("  redact rectangle 0 0 8 8");
    gw_pixel_outcome out;
    assert_int_equal(run(jpeg, ds, &out), 0);
    assert_string_equal(syntax_of(ds), CODEC_TS_JPEG_BASELINE);
    assert_int_equal(dcm_dataset_remove(ds, T_LOSSY), DCM_OK);
    assert_int_equal(dcm_dataset_remove(ds, T_LOSSY_METHOD), DCM_OK);
    assert_int_equal(run(redact, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_REDACTED);
    assert_string_equal(syntax_of(ds), DCM_TS_EXPLICIT_LE);
    assert_str(ds, T_LOSSY, "01");
    assert_str(ds, T_LOSSY_METHOD, "ISO_10918_1");
    dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_non_null(el);
    const uint8_t *bytes = dcm_element_bytes(el);
    assert_int_equal(bytes[0], 0);
    assert_true(abs(bytes[15 * 16 + 15] - 100) <= 2);
    pol_policy_unref(jpeg);
    pol_policy_unref(redact);
    dcm_dataset_free(ds);
}

/* JPEG Baseline cannot carry 32-bit samples: quarantine by default;
 * keep-original keeps the received syntax but still blanks. */
static void handles_an_encoder_failure(void **state)
{
    (void)state;
    uint32_t pixels[4 * 4];
    for (size_t i = 0; i < 16; i++)
        pixels[i] = 0x10000000u + (uint32_t)i;
    const char *lines = "  compress to jpeg quality 90\n"
                        "  redact rectangle 0 0 2 2\n";
    char body[256];
    pol_policy *quarantine = policy(lines);
    dcm_dataset *ds = image("MONOCHROME2", 1, 4, 4, 32, 32, 0, pixels,
                            sizeof pixels);
    gw_pixel_outcome out;
    assert_int_equal(run(quarantine, ds, &out), -1);
    assert_int_equal(out.action, GW_PIXELS_FAILED);
    assert_non_null(strstr(out.reason, "compression failed"));
    dcm_dataset_free(ds);

    snprintf(body, sizeof body, "%s  on compression-failure keep-original",
             lines);
    pol_policy *keep = policy(body);
    ds = image("MONOCHROME2", 1, 4, 4, 32, 32, 0, pixels, sizeof pixels);
    assert_int_equal(run(keep, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_KEPT);
    assert_string_equal(out.to_ts, DCM_TS_EXPLICIT_LE);
    assert_non_null(strstr(out.reason, "kept in the received syntax"));
    size_t len;
    codec_image decoded;
    uint8_t *frame = frame_of(ds, &len, &decoded);
    uint32_t value;
    memcpy(&value, frame, 4);
    assert_int_equal(value, 0);          /* (0,0): blanked */
    memcpy(&value, frame + 4 * 2, 4);
    assert_int_equal(value, pixels[2]);  /* (0,2): outside */
    free(frame);
    dcm_dataset_free(ds);
    pol_policy_unref(quarantine);
    pol_policy_unref(keep);
}

/* Which palette entry is black is unknown: never forwarded unblanked,
 * keep-original or not. Without pixel data there is nothing to do. */
static void never_forwards_what_it_cannot_blank(void **state)
{
    (void)state;
    uint8_t pixels[4] = {1, 2, 3, 4};
    pol_policy *p = policy("  redact rectangle 0 0 1 1\n"
                           "  on compression-failure keep-original");
    dcm_dataset *ds = image("PALETTE COLOR", 1, 2, 2, 8, 8, 0, pixels,
                            sizeof pixels);
    gw_pixel_outcome out;
    assert_int_equal(run(p, ds, &out), -1);
    assert_int_equal(out.action, GW_PIXELS_FAILED);
    assert_non_null(strstr(out.reason, "redaction failed"));
    assert_int_equal(dcm_dataset_remove(ds, DCM_TAG_PIXEL_DATA), DCM_OK);
    assert_int_equal(run(p, ds, &out), 0);
    assert_int_equal(out.action, GW_PIXELS_NONE);
    dcm_dataset_free(ds);
    pol_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redacts_native_monochrome1_signed),
        cmocka_unit_test(redacts_signed_monochrome2_to_its_lowest_value),
        cmocka_unit_test(redacts_ybr_full_422_by_pairs),
        cmocka_unit_test(compresses_and_keeps_a_lossless_syntax),
        cmocka_unit_test(marks_a_lossy_result),
        cmocka_unit_test(redacts_lossy_input_into_native),
        cmocka_unit_test(handles_an_encoder_failure),
        cmocka_unit_test(never_forwards_what_it_cannot_blank),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
