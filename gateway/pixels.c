/* pixels.c - the processor's pixel stage (pixels.h): redaction and
 * compression of the de-identified instance, one frame in memory at a
 * time (plus the encoded frames, or for a native result the whole new
 * Pixel Data, handed to the dataset without a copy), with the attribute updates PS3.3 C.7.6.1.1.5 and PS3.5
 * ask for, and the audit event that says what happened.
 *
 * The rule that keeps burned-in text out of the archive: pixels that a
 * redact line applies to never leave unblanked. A failure while blanking
 * quarantines the instance whatever "on compression-failure" says; that
 * line only chooses between the received syntax (blanked pixels
 * re-encoded as without a compress line) and quarantine when the
 * compression itself fails. */
#include "pixels.h"

#include "audit.h"
#include "codec.h"
#include "gateway.h"
#include "metrics.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION DCM_TAG(0x0028, 0x0006)
#define TAG_BURNED_IN_ANNOTATION DCM_TAG(0x0028, 0x0301)
#define TAG_LOSSY_COMPRESSION DCM_TAG(0x0028, 0x2110)
#define TAG_LOSSY_RATIO DCM_TAG(0x0028, 0x2112)
#define TAG_LOSSY_METHOD DCM_TAG(0x0028, 0x2114)
#define TAG_DERIVATION_DESCRIPTION DCM_TAG(0x0008, 0x2111)
#define TAG_SOURCE_IMAGE_SEQUENCE DCM_TAG(0x0008, 0x2112)
#define TAG_DERIVATION_CODE_SEQUENCE DCM_TAG(0x0008, 0x9215)
#define TAG_REFERENCED_SOP_CLASS DCM_TAG(0x0008, 0x1150)
#define TAG_REFERENCED_SOP_INSTANCE DCM_TAG(0x0008, 0x1155)
#define TAG_PURPOSE_OF_REFERENCE DCM_TAG(0x0040, 0xA170)
#define TAG_CODE_VALUE DCM_TAG(0x0008, 0x0100)
#define TAG_CODING_SCHEME DCM_TAG(0x0008, 0x0102)
#define TAG_CODE_MEANING DCM_TAG(0x0008, 0x0104)

/* The HMAC label of lossy results' SOP Instance UIDs: changing it changes
 * every such UID ever issued (like anon/'s labels). */
#define LABEL_LOSSY_UID "siren-lossy-uid-v1"
#define DERIVATION_TEXT "Lossy compressed by SIREN"
#define ST_MAX 1024 /* Derivation Description is ST */

/* ---- the plan --------------------------------------------------------------------- */

void gw_pixels_plan(const pol_policy *p, const dcm_dataset *ds,
                    gw_pixel_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->has_pixels = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA) != NULL;
    if (!plan->has_pixels)
        return;
    pol_policy_compression(p, ds, &plan->compression, plan->skipped,
                           sizeof plan->skipped);
    size_t count = pol_policy_redactions(p, ds, NULL, 0);
    if (count == 0)
        return;
    plan->rects = calloc(count, sizeof *plan->rects);
    if (!plan->rects) {
        plan->out_of_memory = true;
        return;
    }
    size_t again = pol_policy_redactions(p, ds, plan->rects, count);
    plan->rect_count = again < count ? again : count;
}

void gw_pixels_plan_free(gw_pixel_plan *plan)
{
    free(plan->rects);
    plan->rects = NULL;
    plan->rect_count = 0;
}

/* ---- blanking --------------------------------------------------------------------- */

/* The stored value that displays black, per sample (index 0 luminance or
 * red, 1 and 2 the others), for a decoded image: the lowest value of the
 * stored range for MONOCHROME2 (0, or -2^(bits-1) when signed: 0 of a
 * signed CT is water, not black), the highest for MONOCHROME1, 0 for RGB,
 * Y 0 with neutral chroma (half range) for YBR_FULL and YBR_FULL_422. */
static int black_samples(const codec_image *image, int64_t black[3],
                         dcm_error *err)
{
    int64_t half = (int64_t)1 << (image->bits_stored - 1);
    bool is_signed = image->pixel_representation == 1;
    switch (image->photometric) {
    case CODEC_PI_MONOCHROME2:
        black[0] = is_signed ? -half : 0;
        break;
    case CODEC_PI_MONOCHROME1:
        black[0] = is_signed ? half - 1 : 2 * half - 1;
        break;
    case CODEC_PI_RGB:
        black[0] = black[1] = black[2] = 0;
        break;
    case CODEC_PI_YBR_FULL:
    case CODEC_PI_YBR_FULL_422:
        black[0] = 0;
        black[1] = black[2] = half;
        break;
    default:
        /* PALETTE COLOR: which index is black depends on the palette. */
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "cannot choose a black value for %s pixels",
                        codec_photometric_name(image->photometric));
    }
    return DCM_OK;
}

/* Writes value at sample index of a frame of bits_allocated 8, 16 or 32
 * (little endian, two's complement for negative values). */
static void put_sample(uint8_t *frame, uint16_t bits_allocated, size_t index,
                       int64_t value)
{
    uint32_t bits = (uint32_t)value;
    if (bits_allocated == 8) {
        frame[index] = (uint8_t)bits;
    } else if (bits_allocated == 16) {
        frame[2 * index] = (uint8_t)bits;
        frame[2 * index + 1] = (uint8_t)(bits >> 8);
    } else {
        for (int b = 0; b < 4; b++)
            frame[4 * index + (size_t)b] = (uint8_t)(bits >> (8 * b));
    }
}

/* Blanks rect, clipped to the image, in frame (a decoded frame as codec.h
 * lays it out, planar configuration 0). YBR_FULL_422 keeps Y1 Y2 Cb Cr
 * per pair of pixels: Y is blanked per pixel, the pair's chroma only when
 * both pixels are inside (a pixel outside keeps its colour). */
static void blank_rect(const codec_image *image, uint8_t *frame,
                       const pol_rect *rect, const int64_t black[3])
{
    uint32_t x_end = rect->x + rect->width, y_end = rect->y + rect->height;
    if (x_end > image->columns)
        x_end = image->columns;
    if (y_end > image->rows)
        y_end = image->rows;
    bool subsampled = image->photometric == CODEC_PI_YBR_FULL_422;
    size_t per_row = subsampled ? (size_t)image->columns * 2
                                : (size_t)image->columns *
                                      image->samples_per_pixel;
    for (uint32_t row = rect->y; row < y_end; row++) {
        size_t start = row * per_row;
        for (uint32_t col = rect->x; col < x_end; col++) {
            if (subsampled) {
                size_t pair = start + (size_t)(col / 2) * 4;
                put_sample(frame, image->bits_allocated, pair + col % 2,
                           black[0]);
                bool whole_pair = col % 2 == 1 && col > rect->x;
                if (whole_pair) {
                    put_sample(frame, image->bits_allocated, pair + 2,
                               black[1]);
                    put_sample(frame, image->bits_allocated, pair + 3,
                               black[2]);
                }
                continue;
            }
            size_t pixel = start + (size_t)col * image->samples_per_pixel;
            for (uint16_t s = 0; s < image->samples_per_pixel; s++)
                put_sample(frame, image->bits_allocated, pixel + s,
                           black[s]);
        }
    }
}

/* ---- transcoding ------------------------------------------------------------------ */

/* What one pass over the frames made. */
typedef struct result {
    codec_image image;        /* the attributes the new pixel data needs */
    bool lossy;
    const char *lossy_method;
    uint64_t uncompressed_bytes, encoded_bytes;
    const char *verify;
} result;

typedef struct pass {
    const char *target;          /* encapsulated syntax; NULL: native */
    const codec_encode_options *options;
    const pol_rect *rects;
    size_t rect_count;
    bool verify;
} pass;

/* Encodes one decoded frame into w, checking a lossless result. */
static int encode_frame(const pass *job, const codec_image *decoded,
                        const uint8_t *frame, size_t len, uint32_t index,
                        codec_writer *w, result *r, dcm_error *err)
{
    uint8_t *stream = NULL;
    size_t stream_len = 0;
    codec_encoded encoded;
    int rc = codec_encode_frame(job->target, decoded, frame, len,
                                job->options, &stream, &stream_len,
                                &encoded, err);
    if (rc == DCM_OK && !encoded.lossy && job->verify &&
        codec_verify_lossless(job->target, decoded, frame, len, stream,
                              stream_len, &encoded.image, NULL, err) < 0) {
        r->verify = "failed";
        rc = DCM_E_INVALID;
    }
    if (rc == DCM_OK && index > 0 &&
        (encoded.image.photometric != r->image.photometric ||
         encoded.lossy != r->lossy))
        rc = dcm_fail(err, DCM_E_INVALID, -1,
                      "frame %u encoded unlike the first", index + 1);
    if (rc == DCM_OK)
        rc = codec_writer_add_frame(w, stream, stream_len, err);
    if (rc == DCM_OK) {
        r->image = encoded.image;
        r->lossy = encoded.lossy;
        r->lossy_method = encoded.lossy_method;
        r->encoded_bytes += stream_len + (stream_len & 1);
    }
    free(stream);
    return rc;
}

/* Decodes every frame of ds, blanks, and encodes into job->target (or
 * gathers native frames); only on success does ds get the new Pixel Data
 * and syntax (a failing codec_writer_finish leaves it without Pixel
 * Data: the caller quarantines). The other attributes are the caller's. */
static int transcode(const pass *job, dcm_dataset *ds, result *r,
                     dcm_error *err)
{
    memset(r, 0, sizeof *r);
    r->verify = !job->target ? "n/a" : job->verify ? "not run" : "off";
    codec_source *src = codec_source_open(ds, NULL, err);
    if (!src)
        return DCM_E_INVALID;
    const codec_image stored = *codec_source_image(src);
    codec_writer *w = job->target ? codec_writer_new(job->target, err) : NULL;
    uint8_t *native = NULL;
    size_t frame_bytes = 0;
    int rc = job->target && !w ? DCM_E_NOMEM : DCM_OK;
    if (rc == DCM_OK && stored.bits_allocated == 1)
        rc = dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                      "pixel data of Bits Allocated 1 is not transcoded");
    for (uint32_t i = 0; rc == DCM_OK && i < stored.frames; i++) {
        uint8_t *frame = NULL;
        size_t len = 0;
        codec_image decoded;
        int64_t black[3];
        rc = codec_source_decode(src, i, &frame, &len, &decoded, err);
        if (rc == DCM_OK && job->rect_count > 0)
            rc = black_samples(&decoded, black, err);
        for (size_t k = 0; rc == DCM_OK && k < job->rect_count; k++)
            blank_rect(&decoded, frame, &job->rects[k], black);
        if (rc == DCM_OK && i == 0) {
            frame_bytes = len;
            r->image = decoded;
            /* A decoded frame may be larger than the stored one (JPEG's
             * YBR_FULL_422 comes back RGB): checked again. */
            if (!job->target && len > (SIZE_MAX - 1) / stored.frames)
                rc = dcm_fail(err, DCM_E_LIMIT, -1,
                              "%u decoded frames exceed the address space",
                              stored.frames);
            else if (!job->target &&
                     !(native = malloc(len * stored.frames + 1)))
                rc = dcm_fail(err, DCM_E_NOMEM, -1,
                              "out of memory for %u frames", stored.frames);
        } else if (rc == DCM_OK && len != frame_bytes) {
            rc = dcm_fail(err, DCM_E_INVALID, -1,
                          "frame %u decodes to %zu bytes, not %zu", i + 1,
                          len, frame_bytes);
        }
        if (rc == DCM_OK && job->target)
            rc = encode_frame(job, &decoded, frame, len, i, w, r, err);
        else if (rc == DCM_OK)
            memcpy(native + (size_t)i * len, frame, len);
        r->uncompressed_bytes += len;
        free(frame);
    }
    codec_source_free(src);
    if (rc == DCM_OK && job->target) {
        rc = codec_writer_finish(w, ds, err);
        if (job->verify)
            r->verify = "passed";
    } else if (rc == DCM_OK) {
        size_t total = frame_bytes * stored.frames;
        rc = dcm_dataset_take_bytes(ds, DCM_TAG_PIXEL_DATA,
                                    r->image.bits_allocated > 8 ? DCM_VR_OW
                                                                : DCM_VR_OB,
                                    native, total, err);
        native = NULL; /* the dataset's now, whatever rc says */
        if (rc == DCM_OK) {
            dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
            dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS);
            dcm_dataset_set_syntax(ds, dcm_ts_find(DCM_TS_EXPLICIT_LE));
        }
        r->encoded_bytes = total;
    }
    r->image.frames = stored.frames;
    free(native);
    codec_writer_free(w);
    return rc;
}

/* ---- attributes ------------------------------------------------------------------- */

/* The string value of tag in ds, "" when absent (owned by the caller). */
static char *string_of(const dcm_dataset *ds, uint32_t tag)
{
    dcm_element *el = dcm_dataset_find(ds, tag);
    char *value = el ? dcm_element_get_string(el, NULL) : NULL;
    return value ? value : strdup("");
}

/* Sets tag to its values with one more appended (multi-valued: the
 * history of earlier lossy steps stays). */
static int append_value(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                        const char *value, dcm_error *err)
{
    char *old = string_of(ds, tag);
    if (!old)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    size_t size = strlen(old) + strlen(value) + 2;
    char *joined = malloc(size);
    int rc = joined ? DCM_OK : dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    if (joined) {
        snprintf(joined, size, "%s%s%s", old, old[0] ? "\\" : "", value);
        rc = dcm_dataset_set_string(ds, tag, vr, joined, err);
    }
    free(joined);
    free(old);
    return rc;
}

/* An item of the sequence tag of ds, appended to the items it has. */
static dcm_dataset *append_item(dcm_dataset *ds, uint32_t tag, dcm_error *err)
{
    dcm_element *seq = dcm_dataset_find(ds, tag);
    if (!seq || dcm_element_kind_of(seq) != DCM_KIND_SEQUENCE)
        seq = dcm_dataset_set_sequence(ds, tag, err);
    return seq ? dcm_element_append_item(seq, err) : NULL;
}

static int set_code(dcm_dataset *item, const char *value, const char *meaning,
                    dcm_error *err)
{
    int rc;
    if ((rc = dcm_dataset_set_string(item, TAG_CODE_VALUE, DCM_VR_SH, value,
                                     err)) < 0 ||
        (rc = dcm_dataset_set_string(item, TAG_CODING_SCHEME, DCM_VR_SH,
                                     "DCM", err)) < 0)
        return rc;
    return dcm_dataset_set_string(item, TAG_CODE_MEANING, DCM_VR_LO, meaning,
                                  err);
}

/* The new SOP Instance UID of a lossy result: a UUIDv8 (RFC 9562) under
 * 2.25 from HMAC-SHA256(policy key, label NUL syntax NUL uid), or from
 * SHA-256 of the same when the policy has no key. The same instance under
 * the same policy gets the same UID on every replica and retry. */
static void lossy_uid(const pol_policy *p, const char *ts_uid,
                      const char *uid, char out[DCM_UID_MAX + 1])
{
    char message[sizeof LABEL_LOSSY_UID + 2 * (DCM_UID_MAX + 1)];
    int len = snprintf(message, sizeof message, "%s%c%s%c%s",
                       LABEL_LOSSY_UID, 0, ts_uid, 0, uid);
    size_t message_len = len < 0 ? 0
                         : (size_t)len < sizeof message ? (size_t)len
                                                         : sizeof message - 1;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    size_t key_len = 0;
    const uint8_t *key = pol_policy_key(p, &key_len);
    if (key)
        HMAC(EVP_sha256(), key, (int)key_len, (const uint8_t *)message,
             message_len, digest, &digest_len);
    else
        EVP_Digest(message, message_len, digest, &digest_len, EVP_sha256(),
                   NULL);
    digest[6] = (uint8_t)((digest[6] & 0x0F) | 0x80); /* version 8 */
    digest[8] = (uint8_t)((digest[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    dcm_uid_from_uuid(digest, out);
}

/* PS3.3 C.7.6.1.1.5 and C.7.6.1.1.3 for a lossy result: Lossy Image
 * Compression 01 with this step's ratio and method appended, a new SOP
 * Instance UID, and the derivation: Derivation Description, Derivation
 * Code Sequence (DCM 113040 Lossy Compression) and Source Image Sequence
 * naming the predecessor (DCM 121320 Uncompressed predecessor) by its
 * de-identified UID. */
static int mark_lossy(const pol_policy *p, dcm_dataset *ds, const char *ts_uid,
                      const result *r, gw_pixel_outcome *out, dcm_error *err)
{
    char ratio[17], *old_uid = string_of(ds, DCM_TAG_SOP_INSTANCE_UID);
    char *sop_class = string_of(ds, DCM_TAG_SOP_CLASS_UID);
    char *description = string_of(ds, TAG_DERIVATION_DESCRIPTION);
    int rc = old_uid && sop_class && description
                 ? DCM_OK
                 : dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    if (rc == DCM_OK && !old_uid[0])
        rc = dcm_fail(err, DCM_E_INVALID, -1, "no SOP Instance UID");
    snprintf(ratio, sizeof ratio, "%.2f", out->ratio);
    if (rc == DCM_OK) {
        lossy_uid(p, ts_uid, old_uid, out->sop_instance);
        if ((rc = dcm_dataset_set_string(ds, TAG_LOSSY_COMPRESSION, DCM_VR_CS,
                                         "01", err)) == DCM_OK &&
            (rc = append_value(ds, TAG_LOSSY_RATIO, DCM_VR_DS, ratio, err)) ==
                DCM_OK &&
            (rc = append_value(ds, TAG_LOSSY_METHOD, DCM_VR_CS,
                               r->lossy_method ? r->lossy_method : "",
                               err)) == DCM_OK)
            rc = dcm_dataset_set_string(ds, DCM_TAG_SOP_INSTANCE_UID,
                                        DCM_VR_UI, out->sop_instance, err);
    }
    if (rc == DCM_OK) {
        /* Earlier derivation text stays when ours fits after it. */
        char text[ST_MAX + 1];
        int n = snprintf(text, sizeof text, "%s%s" DERIVATION_TEXT " %s %s:1",
                         description, description[0] ? "; " : "",
                         r->lossy_method ? r->lossy_method : "", ratio);
        if (n < 0 || (size_t)n > ST_MAX)
            snprintf(text, sizeof text, DERIVATION_TEXT " %s %s:1",
                     r->lossy_method ? r->lossy_method : "", ratio);
        rc = dcm_dataset_set_string(ds, TAG_DERIVATION_DESCRIPTION, DCM_VR_ST,
                                    text, err);
    }
    dcm_dataset *code = rc == DCM_OK
                            ? append_item(ds, TAG_DERIVATION_CODE_SEQUENCE, err)
                            : NULL;
    if (rc == DCM_OK)
        rc = code ? set_code(code, "113040", "Lossy Compression", err)
                  : DCM_E_NOMEM;
    dcm_dataset *source = rc == DCM_OK
                              ? append_item(ds, TAG_SOURCE_IMAGE_SEQUENCE, err)
                              : NULL;
    dcm_dataset *purpose = NULL;
    if (rc == DCM_OK && source &&
        (rc = dcm_dataset_set_string(source, TAG_REFERENCED_SOP_CLASS,
                                     DCM_VR_UI, sop_class, err)) == DCM_OK &&
        (rc = dcm_dataset_set_string(source, TAG_REFERENCED_SOP_INSTANCE,
                                     DCM_VR_UI, old_uid, err)) == DCM_OK)
        purpose = append_item(source, TAG_PURPOSE_OF_REFERENCE, err);
    if (rc == DCM_OK)
        rc = purpose ? set_code(purpose, "121320", "Uncompressed predecessor",
                                err)
                     : DCM_E_NOMEM;
    free(old_uid);
    free(sop_class);
    free(description);
    return rc;
}

/* Pixels that came in JPEG Baseline or Extended were lossy compressed
 * (DCT) whatever the sender wrote: once they leave in another syntax the
 * syntax no longer says so, so Lossy Image Compression must (PS3.3
 * C.7.6.1.1.5: once 01, always 01). */
static int keep_lossy_history(dcm_dataset *ds, const char *received_uid,
                              dcm_error *err)
{
    if (strcmp(received_uid, CODEC_TS_JPEG_BASELINE) != 0 &&
        strcmp(received_uid, CODEC_TS_JPEG_EXTENDED) != 0)
        return DCM_OK;
    char *flag = string_of(ds, TAG_LOSSY_COMPRESSION);
    bool marked = flag && strcmp(flag, "01") == 0;
    free(flag);
    if (marked)
        return DCM_OK;
    int rc = dcm_dataset_set_string(ds, TAG_LOSSY_COMPRESSION, DCM_VR_CS, "01",
                                    err);
    return rc == DCM_OK ? append_value(ds, TAG_LOSSY_METHOD, DCM_VR_CS,
                                       "ISO_10918_1", err)
                        : rc;
}

/* The attributes of the new pixel data (PS3.3 C.7.6.3), Burned In
 * Annotation after a redaction, and the lossy marks. */
/* Blanked or lossy pixels may fall outside the range the sender stated:
 * the optional Smallest/Largest Image Pixel Value and Pixel Value in
 * Series (0028,0106-0109) go rather than mislead a viewer's window. */
static void remove_value_range(dcm_dataset *ds)
{
    for (uint32_t tag = DCM_TAG(0x0028, 0x0106);
         tag <= DCM_TAG(0x0028, 0x0109); tag++)
        dcm_dataset_remove(ds, tag);
}

static int update_attributes(const pol_policy *p, dcm_dataset *ds,
                             const char *ts_uid, const result *r,
                             gw_pixel_outcome *out, dcm_error *err)
{
    int rc = keep_lossy_history(ds, out->from_ts, err);
    if (rc == DCM_OK)
        rc = dcm_dataset_set_string(ds, TAG_PHOTOMETRIC, DCM_VR_CS,
                                    codec_photometric_name(r->image.photometric),
                                    err);
    if (rc == DCM_OK && r->image.samples_per_pixel > 1) {
        uint8_t zero[2] = {0, 0};
        rc = dcm_dataset_set_bytes(ds, TAG_PLANAR_CONFIGURATION, DCM_VR_US,
                                   zero, sizeof zero, err);
    }
    /* A redact line is the officer's statement that its rectangles hold
     * all the burned-in text of the layout it names (docs/POLICY.md): the
     * image has none left. */
    if (rc == DCM_OK && out->redacted > 0)
        rc = dcm_dataset_set_string(ds, TAG_BURNED_IN_ANNOTATION, DCM_VR_CS,
                                    "NO", err);
    if (rc == DCM_OK && r->lossy)
        rc = mark_lossy(p, ds, ts_uid, r, out, err);
    if (rc == DCM_OK && (out->redacted > 0 || r->lossy))
        remove_value_range(ds);
    return rc;
}

/* ---- the stage -------------------------------------------------------------------- */

/* Encapsulated syntaxes that lose nothing. */
static bool is_lossless_encapsulated(const char *uid)
{
    static const char *const lossless[] = {
        CODEC_TS_RLE, CODEC_TS_JPEG_LOSSLESS, CODEC_TS_JPEG_LOSSLESS_SV1,
        CODEC_TS_JPEG_LS_LOSSLESS, CODEC_TS_J2K_LOSSLESS,
        CODEC_TS_HTJ2K_LOSSLESS, CODEC_TS_HTJ2K_LOSSLESS_RPCL};
    for (size_t i = 0; i < sizeof lossless / sizeof *lossless; i++)
        if (strcmp(uid, lossless[i]) == 0)
            return true;
    return false;
}

/* Where blanked pixels go without a compress line: the received syntax
 * when it is lossless and this build encodes it, else native Explicit VR
 * Little Endian (NULL); never a lossy syntax on its own. */
static const char *fallback_target(const dcm_ts *received)
{
    if (received && received->encapsulated &&
        is_lossless_encapsulated(received->uid) &&
        codec_can_encode(received->uid))
        return received->uid;
    return NULL;
}

uint64_t gw_pixels_bytes(const dcm_dataset *ds)
{
    dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    if (!el)
        return 0;
    if (dcm_element_kind_of(el) != DCM_KIND_FRAGMENTS)
        return dcm_element_length(el);
    uint64_t total = 0;
    for (size_t i = 0; i < dcm_element_fragment_count(el); i++)
        total += dcm_element_fragment_length(el, i);
    return total;
}

/* One pass and its attribute updates. *replaced: ds got new Pixel Data
 * (then a failure leaves it half-updated: nothing of it may be kept). */
static int run(const pol_policy *p, dcm_dataset *ds, const pass *job,
               gw_pixel_outcome *out, bool *replaced, dcm_error *err)
{
    result r;
    int rc = transcode(job, ds, &r, err);
    *replaced = rc == DCM_OK;
    if (rc < 0) {
        out->verify = r.verify;
        return rc;
    }
    const dcm_ts *now = dcm_dataset_syntax(ds);
    snprintf(out->to_ts, sizeof out->to_ts, "%s",
             now ? now->uid : DCM_TS_EXPLICIT_LE);
    out->frames = r.image.frames;
    out->lossy = r.lossy;
    out->verify = r.lossy ? "lossy" : r.verify;
    out->ratio = r.encoded_bytes ? (double)r.uncompressed_bytes /
                                       (double)r.encoded_bytes
                                 : 0;
    out->bytes_after = gw_pixels_bytes(ds);
    return update_attributes(p, ds, out->to_ts, &r, out, err);
}

static int fail(gw_pixel_outcome *out, const char *what, const char *why)
{
    out->action = GW_PIXELS_FAILED;
    out->to_ts[0] = '\0'; /* nothing leaves in any syntax */
    snprintf(out->reason, sizeof out->reason, "%s: %s", what, why);
    return -1;
}

int gw_pixels_apply(const gw_pixel_plan *plan, const pol_policy *p,
                    dcm_dataset *ds, gw_pixel_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->verify = "n/a";
    const pol_compression *c = &plan->compression;
    bool compress = c->codec != POL_CODEC_NONE && c->ts_uid;
    if (!plan->has_pixels || (!compress && plan->rect_count == 0 &&
                              !plan->out_of_memory && !plan->skipped[0]))
        return 0;
    const dcm_ts *received = dcm_dataset_syntax(ds);
    snprintf(out->from_ts, sizeof out->from_ts, "%s",
             received ? received->uid : DCM_TS_EXPLICIT_LE);
    out->codec = compress ? pol_codec_name(c->codec) : NULL;
    out->bytes_before = out->bytes_after = gw_pixels_bytes(ds);
    snprintf(out->reason, sizeof out->reason, "%s", plan->skipped);
    if (plan->out_of_memory)
        return fail(out, "redaction", "out of memory for the rectangles");
    if (!compress && plan->rect_count == 0) {
        out->action = GW_PIXELS_UNCHANGED; /* only a skipped lossy line */
        snprintf(out->to_ts, sizeof out->to_ts, "%s", out->from_ts);
        return 0;
    }
    if (compress && plan->rect_count == 0 &&
        strcmp(out->from_ts, c->ts_uid) == 0) {
        out->action = GW_PIXELS_UNCHANGED;
        snprintf(out->to_ts, sizeof out->to_ts, "%s", out->from_ts);
        return 0;
    }
    codec_encode_options options = {.quality = c->quality,
                                    .near_lossless = c->near_error,
                                    .ratio = c->ratio,
                                    .psnr_db = c->psnr_db};
    pass job = {.target = compress ? c->ts_uid : fallback_target(received),
                .options = &options,
                .rects = plan->rects,
                .rect_count = plan->rect_count,
                .verify = pol_policy_verify_lossless(p)};
    out->redacted = plan->rect_count;
    dcm_error err = {0};
    bool replaced;
    if (run(p, ds, &job, out, &replaced, &err) == DCM_OK) {
        out->action = compress ? GW_PIXELS_COMPRESSED : GW_PIXELS_REDACTED;
        return 0;
    }
    /* Without Pixel Data (a failed finish), or with new pixel data but
     * not all its attributes, nothing can be kept. */
    if (!compress || !pol_policy_keep_original_on_failure(p) || replaced ||
        !dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA))
        return fail(out, !compress            ? "redaction failed"
                         : plan->rect_count ? "redaction or compression failed"
                                            : "compression failed",
                    err.message);
    char first[sizeof err.message];
    snprintf(first, sizeof first, "%s", err.message);
    snprintf(out->reason, sizeof out->reason,
             "compression to %s failed: %s; kept in the received syntax",
             out->codec, first);
    out->action = GW_PIXELS_KEPT;
    snprintf(out->to_ts, sizeof out->to_ts, "%s", out->from_ts);
    if (plan->rect_count == 0)
        return 0;
    /* The rectangles are still blanked: the received syntax's fallback. */
    pass again = job;
    again.target = fallback_target(received);
    const char *verify = out->verify;
    if (run(p, ds, &again, out, &replaced, &err) < 0)
        return fail(out, "redaction failed", err.message);
    out->verify = verify; /* the failed compression's */
    return 0;
}

/* ---- the record ------------------------------------------------------------------- */

const char *gw_pixel_action_name(gw_pixel_action action)
{
    switch (action) {
    case GW_PIXELS_COMPRESSED: return "compressed";
    case GW_PIXELS_REDACTED: return "redacted";
    case GW_PIXELS_KEPT: return "kept";
    case GW_PIXELS_UNCHANGED: return "unchanged";
    case GW_PIXELS_FAILED: return "failed";
    case GW_PIXELS_NONE: break;
    }
    return "none";
}

void gw_pixels_record(const char *name, const gw_pixel_outcome *out)
{
    if (out->action == GW_PIXELS_NONE)
        return;
    char redacted[24], frames[16], ratio[24], before[24], after[24];
    snprintf(redacted, sizeof redacted, "%zu", out->redacted);
    snprintf(frames, sizeof frames, "%u", out->frames);
    snprintf(ratio, sizeof ratio, "%.2f", out->ratio);
    snprintf(before, sizeof before, "%llu",
             (unsigned long long)out->bytes_before);
    snprintf(after, sizeof after, "%llu",
             (unsigned long long)out->bytes_after);
    bool encoded = out->frames > 0;
    const char *action = gw_pixel_action_name(out->action);
    gw_audit("instance.pixels", "file", name, "action", action, "codec",
             out->codec, "ts_from", out->from_ts[0] ? out->from_ts : NULL,
             "ts_to", out->to_ts[0] ? out->to_ts : NULL, "redacted",
             out->redacted ? redacted : NULL, "frames",
             encoded ? frames : NULL, "lossy", out->lossy ? "yes" : "no",
             "ratio", encoded ? ratio : NULL, "verify", out->verify,
             "bytes_before", before, "bytes_after", after, "sop_instance",
             out->sop_instance[0] ? out->sop_instance : NULL, "reason",
             out->reason[0] ? out->reason : NULL, NULL);
    char quoted[600];
    gw_log(out->action == GW_PIXELS_FAILED || out->action == GW_PIXELS_KEPT
               ? GW_LOG_WARN
               : GW_LOG_INFO,
           "instance.pixels",
           "file=%s action=%s codec=%s ts_from=%s ts_to=%s redacted=%zu "
           "ratio=%.2f verify=%s bytes_before=%s bytes_after=%s reason=\"%s\"",
           name, action, out->codec ? out->codec : "", out->from_ts,
           out->to_ts, out->redacted, out->ratio, out->verify, before, after,
           gw_log_quote(out->reason, quoted, sizeof quoted));
    gw_metric_pixels(action, out->redacted > 0, out->bytes_before,
                     out->action == GW_PIXELS_FAILED ? out->bytes_before
                                                     : out->bytes_after);
}
