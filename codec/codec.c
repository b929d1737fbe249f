/*
 * codec.c - decoding, encoding and the lossless check of one frame,
 * dispatched by transfer syntax to the codec that handles it.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum family {
    FAMILY_RLE,
    FAMILY_JPEG,     /* JPEG processes 1, 2 and 4 (libjpeg-turbo) */
    FAMILY_JPEG_LS,
    FAMILY_J2K,      /* JPEG 2000 Part 1 and HTJ2K (Part 15) */
} family;

typedef struct syntax {
    const char *uid;
    family family;
    codec_decode_fn decode; /* NULL: not decoded by this build */
    codec_encode_fn encode; /* NULL: not encoded by this build */
    bool lossless;          /* the mode the encoder runs in */
    /* The lossless check's decoder when not decode: the encoder's own
     * library, which reads everything its encoder writes, faster. */
    codec_decode_fn check;
} syntax;

static const syntax syntaxes[] = {
    {CODEC_TS_RLE, FAMILY_RLE, codec_rle_decode, codec_rle_encode, true,
     NULL},
    {CODEC_TS_JPEG_BASELINE, FAMILY_JPEG, codec_jpeg_decode,
     codec_jpeg_encode, false, NULL},
    {CODEC_TS_JPEG_EXTENDED, FAMILY_JPEG, codec_jpeg_decode, NULL, false,
     NULL},
#ifdef SIREN_CODEC_DCMTK
    {CODEC_TS_JPEG_LOSSLESS, FAMILY_JPEG, codec_jpeg_decode, NULL, true,
     NULL},
    {CODEC_TS_JPEG_LOSSLESS_SV1, FAMILY_JPEG, codec_jpeg_decode, NULL, true,
     NULL},
#endif
    {CODEC_TS_JPEG_LS_LOSSLESS, FAMILY_JPEG_LS, codec_jpegls_decode,
     codec_jpegls_encode, true, NULL},
    {CODEC_TS_JPEG_LS_NEAR_LOSSLESS, FAMILY_JPEG_LS, codec_jpegls_decode,
     codec_jpegls_encode, false, NULL},
    {CODEC_TS_J2K_LOSSLESS, FAMILY_J2K, codec_j2k_decode, codec_j2k_encode,
     true, NULL},
    {CODEC_TS_J2K, FAMILY_J2K, codec_j2k_decode, codec_j2k_encode, false,
     NULL},
#ifdef SIREN_CODEC_HTJ2K
    {CODEC_TS_HTJ2K_LOSSLESS, FAMILY_J2K, codec_j2k_decode,
     codec_htj2k_encode, true, codec_htj2k_decode},
    {CODEC_TS_HTJ2K, FAMILY_J2K, codec_j2k_decode, codec_htj2k_encode,
     false, NULL},
#else
    {CODEC_TS_HTJ2K_LOSSLESS, FAMILY_J2K, codec_j2k_decode, NULL, true,
     NULL},
    {CODEC_TS_HTJ2K, FAMILY_J2K, codec_j2k_decode, NULL, false, NULL},
#endif
    /* RPCL HTJ2K also asks for TLM markers, which OpenJPH 0.9 does not
     * write: decoded only. */
    {CODEC_TS_HTJ2K_LOSSLESS_RPCL, FAMILY_J2K, codec_j2k_decode, NULL, true,
     NULL},
};

static const syntax *find_syntax(const char *ts_uid)
{
    const dcm_ts *ts = ts_uid ? dcm_ts_find(ts_uid) : NULL;
    if (!ts)
        return NULL;
    for (size_t i = 0; i < sizeof syntaxes / sizeof syntaxes[0]; i++)
        if (strcmp(syntaxes[i].uid, ts->uid) == 0)
            return &syntaxes[i];
    return NULL;
}

bool codec_can_decode(const char *ts_uid)
{
    const dcm_ts *ts = ts_uid ? dcm_ts_find(ts_uid) : NULL;
    if (ts && !ts->encapsulated)
        return true;
    const syntax *s = find_syntax(ts_uid);
    return s && s->decode;
}

bool codec_can_encode(const char *ts_uid)
{
    const syntax *s = find_syntax(ts_uid);
    return s && s->encode;
}

/* What a decoder of this family returns for an image stored as stored:
 * planar configuration 0, and colour as PS3.5 8.2 says the codestream
 * holds it once decoded (JPEG's YCbCr and JPEG 2000's RCT/ICT undone). */
static int expected_decoded(const syntax *s, const codec_image *stored,
                            codec_image *decoded, dcm_error *err)
{
    *decoded = *stored;
    decoded->frames = 1;
    decoded->planar_configuration = 0;
    if (stored->bits_allocated == 1)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "Bits Allocated 1 in an encapsulated syntax");
    switch (stored->photometric) {
    case CODEC_PI_YBR_FULL_422:
    case CODEC_PI_YBR_FULL:
        /* Lossy JPEG's YCbCr comes back RGB; lossless JPEG has no colour
         * transform. */
        if (s->family == FAMILY_JPEG && !s->lossless)
            decoded->photometric = CODEC_PI_RGB;
        else if (stored->photometric == CODEC_PI_YBR_FULL_422)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "YBR_FULL_422 in %s", s->uid);
        break;
    case CODEC_PI_YBR_RCT:
    case CODEC_PI_YBR_ICT:
        if (s->family != FAMILY_J2K)
            return dcm_fail(err, DCM_E_INVALID, -1, "%s outside JPEG 2000",
                            codec_photometric_name(stored->photometric));
        decoded->photometric = CODEC_PI_RGB;
        break;
    default:
        break;
    }
    return DCM_OK;
}

/* The syntax of ts_uid if this build decodes it, else NULL with err. */
static const syntax *decodable(const char *ts_uid, dcm_error *err)
{
    const syntax *s = find_syntax(ts_uid);
    if (s && s->decode)
        return s;
    dcm_fail(err, DCM_E_UNSUPPORTED, -1,
             "no decoder for transfer syntax %.64s",
             ts_uid ? ts_uid : "(none)");
    return NULL;
}

/* One frame through decode, one of s's decoders. */
static int decode_with(const syntax *s, codec_decode_fn decode,
                       const codec_image *stored, const uint8_t *data,
                       size_t len, const codec_limits *limits, uint8_t **out,
                       size_t *out_len, codec_image *decoded, dcm_error *err)
{
    *out = NULL;
    *out_len = 0;
    codec_image one = *stored;
    one.frames = 1;
    size_t bytes;
    int rc;
    if ((rc = codec_image_check(&one, limits, err)) < 0 ||
        (rc = expected_decoded(s, &one, decoded, err)) < 0 ||
        (rc = codec_frame_bytes(decoded, &bytes, err)) < 0)
        return rc;
    uint8_t *buf = calloc(1, bytes);
    if (!buf)
        return dcm_fail(err, DCM_E_NOMEM, -1,
                        "out of memory for a %zu-byte frame", bytes);
    rc = decode(&one, decoded, data, len, buf, bytes, err);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    codec_normalize_samples(decoded, buf, bytes);
    *out = buf;
    *out_len = bytes;
    return DCM_OK;
}

int codec_decode_frame(const char *ts_uid, const codec_image *stored,
                       const uint8_t *data, size_t len,
                       const codec_limits *limits, uint8_t **out,
                       size_t *out_len, codec_image *decoded, dcm_error *err)
{
    *out = NULL;
    *out_len = 0;
    const syntax *s = decodable(ts_uid, err);
    if (!s)
        return DCM_E_UNSUPPORTED;
    return decode_with(s, s->decode, stored, data, len, limits, out, out_len,
                       decoded, err);
}

static int check_encodable(const codec_image *image, size_t len,
                           dcm_error *err)
{
    codec_image one = *image;
    one.frames = 1;
    size_t bytes;
    int rc;
    if ((rc = codec_image_check(&one, NULL, err)) < 0 ||
        (rc = codec_frame_bytes(&one, &bytes, err)) < 0)
        return rc;
    if (image->bits_allocated == 1 ||
        image->photometric == CODEC_PI_YBR_FULL_422 ||
        image->photometric == CODEC_PI_YBR_RCT ||
        image->photometric == CODEC_PI_YBR_ICT)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "frames of Bits Allocated %u %s are not encoded",
                        image->bits_allocated,
                        codec_photometric_name(image->photometric));
    if (image->planar_configuration != 0)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "frames to encode must be interleaved (Planar "
                        "Configuration 0)");
    if (len != bytes)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "a frame of %zu bytes where %zu were expected", len,
                        bytes);
    return DCM_OK;
}

int codec_encode_frame(const char *ts_uid, const codec_image *image,
                       const uint8_t *frame, size_t len,
                       const codec_encode_options *options, uint8_t **out,
                       size_t *out_len, codec_encoded *encoded,
                       dcm_error *err)
{
    *out = NULL;
    *out_len = 0;
    const syntax *s = find_syntax(ts_uid);
    if (!s || !s->encode)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "no encoder for transfer syntax %.64s",
                        ts_uid ? ts_uid : "(none)");
    int rc = check_encodable(image, len, err);
    if (rc < 0)
        return rc;
    codec_encode_options defaults = {0};
    if (!options)
        options = &defaults;
    memset(encoded, 0, sizeof *encoded);
    encoded->image = *image;
    codec_buf buf = {0};
    rc = s->encode(image, frame, len, options, s->lossless, &buf, encoded, err);
    if (rc < 0) {
        codec_buf_release(&buf);
        return rc;
    }
    *out = buf.data;
    *out_len = buf.len;
    return DCM_OK;
}

int codec_verify_lossless(const char *ts_uid, const codec_image *image,
                          const uint8_t *frame, size_t len,
                          const uint8_t *encoded, size_t encoded_len,
                          const codec_image *encoded_image,
                          const codec_limits *limits, dcm_error *err)
{
    int rc = check_encodable(image, len, err);
    if (rc < 0)
        return rc;
    const syntax *s = decodable(ts_uid, err);
    if (!s)
        return DCM_E_UNSUPPORTED;
    uint8_t *decoded;
    size_t decoded_len;
    codec_image decoded_image;
    rc = decode_with(s, s->check ? s->check : s->decode, encoded_image,
                     encoded, encoded_len, limits, &decoded, &decoded_len,
                     &decoded_image, err);
    if (rc < 0)
        return rc;
    if (decoded_image.photometric != image->photometric ||
        decoded_image.bits_allocated != image->bits_allocated ||
        decoded_len != len) {
        free(decoded);
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "decodes to %s, %u bits allocated, %zu bytes instead "
                        "of %s, %u bits, %zu bytes",
                        codec_photometric_name(decoded_image.photometric),
                        decoded_image.bits_allocated, decoded_len,
                        codec_photometric_name(image->photometric),
                        image->bits_allocated, len);
    }
    /* Both frames are in codec.h's layout (stored bits, sign-extended), so
     * equal bytes are equal samples; the sample walk below only runs to
     * say where they differ, or to accept differences above the stored
     * bits of a frame that was not in that layout. */
    if (memcmp(frame, decoded, len) == 0) {
        free(decoded);
        return DCM_OK;
    }
    size_t samples = (size_t)image->rows * image->columns *
                     image->samples_per_pixel;
    for (size_t i = 0; i < samples && rc == DCM_OK; i++) {
        int64_t want = codec_sample_get(image, frame, i);
        int64_t got = codec_sample_get(image, decoded, i);
        if (want != got)
            rc = dcm_fail(err, DCM_E_INVALID, -1,
                          "not lossless: sample %zu (row %zu) is %lld, was "
                          "%lld",
                          i,
                          i / ((size_t)image->columns *
                               image->samples_per_pixel),
                          (long long)got, (long long)want);
    }
    free(decoded);
    return rc;
}
