/*
 * j2k.c - JPEG 2000 (1.2.840.10008.1.2.4.90/.91) through OpenJPEG:
 * decoding, also of HTJ2K (.201/.202/.203, which OpenJPEG 2.5 decodes),
 * and Part 1 encoding, lossless (5-3 wavelet) or lossy (9-7) by ratio or
 * by PSNR.
 *
 * DICOM carries a bare codestream (PS3.5 A.4.4); a JP2 file is accepted
 * on decoding because some writers put one there. Colour: the decoder
 * undoes the reversible or irreversible component transform when the
 * codestream says it was applied (so YBR_RCT/YBR_ICT come back RGB); the
 * encoder applies it to RGB and reports YBR_RCT (lossless) or YBR_ICT.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openjpeg.h>

#define J2K_DEFAULT_PSNR_DB 45.0
#define J2K_MAX_RESOLUTIONS 6
#define J2K_MAX_BITS 24

/* ---- memory streams ---------------------------------------------------------- */

typedef struct mem_stream {
    const uint8_t *in; /* decoding: the codestream */
    codec_buf *out;    /* encoding: where it goes */
    size_t len, pos;
} mem_stream;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_stream *s = user;
    if (s->pos >= s->len)
        return (OPJ_SIZE_T)-1;
    size_t take = s->len - s->pos < n ? s->len - s->pos : n;
    memcpy(buf, s->in + s->pos, take);
    s->pos += take;
    return take;
}

static OPJ_SIZE_T mem_write(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_stream *s = user;
    size_t end;
    if (__builtin_add_overflow(s->pos, n, &end))
        return (OPJ_SIZE_T)-1;
    if (end > s->out->len) {
        if (codec_buf_reserve(s->out, end - s->out->len, NULL) < 0)
            return (OPJ_SIZE_T)-1;
        s->out->len = end;
    }
    memcpy(s->out->data + s->pos, buf, n);
    s->pos = end;
    s->len = s->out->len;
    return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    mem_stream *s = user;
    if (n < 0 || (uint64_t)n > s->len - s->pos)
        return -1;
    s->pos += (size_t)n;
    return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user)
{
    mem_stream *s = user;
    if (n < 0 || (uint64_t)n > s->len)
        return OPJ_FALSE;
    s->pos = (size_t)n;
    return OPJ_TRUE;
}

static opj_stream_t *stream_new(mem_stream *s, bool input)
{
    opj_stream_t *stream = opj_stream_create(1u << 16, input);
    if (!stream)
        return NULL;
    opj_stream_set_user_data(stream, s, NULL);
    if (input) {
        opj_stream_set_read_function(stream, mem_read);
        opj_stream_set_user_data_length(stream, s->len);
    } else {
        opj_stream_set_write_function(stream, mem_write);
    }
    opj_stream_set_skip_function(stream, mem_skip);
    opj_stream_set_seek_function(stream, mem_seek);
    return stream;
}

/* OpenJPEG's first error message, kept for dcm_error. */
typedef struct opj_failure {
    char message[200];
} opj_failure;

static void on_error(const char *msg, void *user)
{
    opj_failure *failure = user;
    if (failure->message[0] == '\0') {
        snprintf(failure->message, sizeof failure->message, "%s", msg);
        size_t n = strlen(failure->message);
        if (n > 0 && failure->message[n - 1] == '\n')
            failure->message[n - 1] = '\0';
    }
}

static void on_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

static void set_handlers(opj_codec_t *codec, opj_failure *failure)
{
    opj_set_error_handler(codec, on_error, failure);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
}

/* ---- decoding -------------------------------------------------------------- */

static bool is_jp2(const uint8_t *data, size_t len)
{
    static const uint8_t signature[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ',
                                          0x0D, 0x0A, 0x87, 0x0A};
    return len >= sizeof signature &&
           memcmp(data, signature, sizeof signature) == 0;
}

static int check_header(const opj_image_t *img, const codec_image *decoded,
                        dcm_error *err)
{
    if (img->x1 - img->x0 != decoded->columns ||
        img->y1 - img->y0 != decoded->rows ||
        img->numcomps != decoded->samples_per_pixel)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG 2000 codestream is %ux%u with %u components, "
                        "the dataset says %ux%u with %u",
                        img->x1 - img->x0, img->y1 - img->y0, img->numcomps,
                        decoded->columns, decoded->rows,
                        decoded->samples_per_pixel);
    for (OPJ_UINT32 c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *comp = &img->comps[c];
        if (comp->dx != 1 || comp->dy != 1 || comp->prec == 0 ||
            comp->prec > decoded->bits_allocated)
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "JPEG 2000 component %u is subsampled or has %u "
                            "bits for Bits Allocated %u",
                            c, comp->prec, decoded->bits_allocated);
    }
    return DCM_OK;
}

static void copy_out(const opj_image_t *img, const codec_image *decoded,
                     uint8_t *out)
{
    const int32_t *planes[CODEC_MAX_COMPONENTS];
    for (size_t c = 0; c < decoded->samples_per_pixel; c++)
        planes[c] = img->comps[c].data;
    codec_pixels_put(decoded, out, 0, (size_t)decoded->rows * decoded->columns,
                     planes);
}

int codec_j2k_decode(const codec_image *stored, const codec_image *decoded,
                     const uint8_t *data, size_t len, uint8_t *out,
                     size_t out_len, dcm_error *err)
{
    (void)stored;
    (void)out_len;
    mem_stream s = {.in = data, .len = len};
    opj_failure failure = {{0}};
    opj_codec_t *codec =
        opj_create_decompress(is_jp2(data, len) ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    opj_stream_t *stream = stream_new(&s, true);
    opj_image_t *img = NULL;
    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    int rc = DCM_OK;
    if (!codec || !stream) {
        rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG 2000");
        goto done;
    }
    set_handlers(codec, &failure);
    /* Strict: a truncated codestream is an error, not a blurred image. */
    if (!opj_setup_decoder(codec, &params) ||
        !opj_decoder_set_strict_mode(codec, OPJ_TRUE) ||
        !opj_read_header(stream, codec, &img)) {
        rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG 2000 header: %s",
                      failure.message[0] ? failure.message : "unreadable");
        goto done;
    }
    if ((rc = check_header(img, decoded, err)) < 0)
        goto done;
    if (!opj_decode(codec, stream, img) ||
        !opj_end_decompress(codec, stream)) {
        rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG 2000: %s",
                      failure.message[0] ? failure.message : "cannot decode");
        goto done;
    }
    /* A truncated codestream can decode "successfully" with missing
     * tiles; OpenJPEG reports that as an error message only. */
    if (failure.message[0]) {
        rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG 2000: %s",
                      failure.message);
        goto done;
    }
    copy_out(img, decoded, out);
done:
    opj_image_destroy(img);
    opj_stream_destroy(stream);
    opj_destroy_codec(codec);
    return rc;
}

/* ---- encoding -------------------------------------------------------------- */

/* At most J2K_MAX_RESOLUTIONS, and no more than the smaller side allows
 * (each level halves it; the lowest must keep a pixel). */
static int resolutions(const codec_image *image)
{
    uint32_t side = image->rows < image->columns ? image->rows
                                                 : image->columns;
    int levels = 1;
    while (levels < J2K_MAX_RESOLUTIONS && (side >> levels) > 0)
        levels++;
    return levels;
}

static opj_image_t *make_image(const codec_image *image, const uint8_t *frame)
{
    opj_image_cmptparm_t parms[CODEC_MAX_COMPONENTS];
    memset(parms, 0, sizeof parms);
    size_t components = image->samples_per_pixel;
    for (size_t c = 0; c < components; c++) {
        parms[c].dx = parms[c].dy = 1;
        parms[c].w = image->columns;
        parms[c].h = image->rows;
        parms[c].prec = image->bits_stored;
        parms[c].sgnd = image->pixel_representation;
    }
    opj_image_t *img = opj_image_create(
        (OPJ_UINT32)components, parms,
        components == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    if (!img)
        return NULL;
    img->x0 = img->y0 = 0;
    img->x1 = image->columns;
    img->y1 = image->rows;
    int32_t *planes[CODEC_MAX_COMPONENTS];
    for (size_t c = 0; c < components; c++)
        planes[c] = img->comps[c].data;
    codec_pixels_get(image, frame, 0, (size_t)image->rows * image->columns,
                     planes);
    return img;
}

static int set_params(const codec_image *image,
                      const codec_encode_options *opts, bool lossless,
                      opj_cparameters_t *params, dcm_error *err)
{
    opj_set_default_encoder_parameters(params);
    params->tcp_numlayers = 1;
    params->numresolution = resolutions(image);
    params->tcp_mct = image->photometric == CODEC_PI_RGB ? 1 : 0;
    if (lossless) {
        params->tcp_rates[0] = 0; /* all of it */
        params->cp_disto_alloc = 1;
        return DCM_OK;
    }
    params->irreversible = 1;
    if (opts->ratio > 0) {
        if (!(opts->ratio >= 1 && opts->ratio <= 1000))
            return dcm_fail(err, DCM_E_ARG, -1,
                            "JPEG 2000 ratio %g is not within 1..1000",
                            opts->ratio);
        /* OpenJPEG's rate counts the stored bits; DICOM's ratio (and
         * the policy's) the bytes as stored, bits allocated. */
        params->tcp_rates[0] = (float)(opts->ratio * image->bits_stored /
                                       image->bits_allocated);
        params->cp_disto_alloc = 1;
        return DCM_OK;
    }
    double psnr = opts->psnr_db > 0 ? opts->psnr_db : J2K_DEFAULT_PSNR_DB;
    if (!(psnr >= 10 && psnr <= 200))
        return dcm_fail(err, DCM_E_ARG, -1,
                        "JPEG 2000 PSNR %g dB is not within 10..200", psnr);
    params->tcp_distoratio[0] = (float)psnr;
    params->cp_fixed_quality = 1;
    return DCM_OK;
}

static int encode_image(opj_image_t *img, opj_cparameters_t *params,
                        codec_buf *out, dcm_error *err)
{
    mem_stream s = {.out = out, .len = out->len, .pos = out->len};
    opj_failure failure = {{0}};
    opj_codec_t *codec = opj_create_compress(OPJ_CODEC_J2K);
    opj_stream_t *stream = stream_new(&s, false);
    int rc = DCM_OK;
    if (!codec || !stream) {
        rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG 2000");
    } else {
        set_handlers(codec, &failure);
        if (!opj_setup_encoder(codec, params, img) ||
            !opj_start_compress(codec, img, stream) ||
            !opj_encode(codec, stream) || !opj_end_compress(codec, stream))
            rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG 2000 encoding: %s",
                          failure.message[0] ? failure.message : "failed");
    }
    opj_stream_destroy(stream);
    opj_destroy_codec(codec);
    return rc;
}

int codec_j2k_encode(const codec_image *image, const uint8_t *frame,
                     size_t len, const codec_encode_options *opts,
                     bool lossless, codec_buf *out, codec_encoded *encoded,
                     dcm_error *err)
{
    (void)len;
    if (image->bits_stored > J2K_MAX_BITS)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "JPEG 2000 encoding of %u-bit samples (at most %d)",
                        image->bits_stored, J2K_MAX_BITS);
    if (!lossless && image->photometric == CODEC_PI_PALETTE_COLOR)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "lossy JPEG 2000 of palette indexes would change "
                        "colours");
    opj_cparameters_t params;
    int rc = set_params(image, opts, lossless, &params, err);
    if (rc < 0)
        return rc;
    opj_image_t *img = make_image(image, frame);
    if (!img)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG 2000");
    rc = encode_image(img, &params, out, err);
    opj_image_destroy(img);
    if (rc < 0)
        return rc;
    codec_j2k_describe(encoded, params.tcp_mct, lossless, "ISO_15444_1");
    return DCM_OK;
}

void codec_j2k_describe(codec_encoded *encoded, bool colour_transform,
                        bool lossless, const char *lossy_method)
{
    if (colour_transform)
        encoded->image.photometric =
            lossless ? CODEC_PI_YBR_RCT : CODEC_PI_YBR_ICT;
    encoded->image.planar_configuration = 0;
    encoded->lossy = !lossless;
    encoded->lossy_method = lossless ? NULL : lossy_method;
}
