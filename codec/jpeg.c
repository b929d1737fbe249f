/*
 * jpeg.c - JPEG Baseline and Extended 8-bit (1.2.840.10008.1.2.4.50/.51)
 * through libjpeg-turbo: decoding, and Baseline encoding with a quality.
 *
 * Colour per PS3.5 8.2.1: Photometric Interpretation YBR_FULL_422 or
 * YBR_FULL means the codestream holds YCbCr (libjpeg converts it to RGB);
 * RGB means no colour transform, which libjpeg would otherwise assume for
 * three components unless a JFIF or Adobe marker says so. The encoder
 * turns RGB into YCbCr with 4:2:2 subsampling (YBR_FULL_422, as the
 * standard asks of lossy colour JPEG).
 *
 * libjpeg reports fatal errors through error_exit, which must not return:
 * it longjmps back to the call. A warning (corrupt or truncated data,
 * which libjpeg would patch over with grey) is an error here too.
 */
#include "internal.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define JPEG_DEFAULT_QUALITY 90

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool warned;
} jpeg_failure;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    cinfo->err->format_message(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    /* Level -1 is a warning about the data; trace levels are ignored. */
    if (level < 0 && !failure->warned) {
        cinfo->err->format_message(cinfo, failure->message);
        failure->warned = true;
    }
}

static void failure_init(jpeg_failure *failure)
{
    memset(failure, 0, sizeof *failure);
    jpeg_std_error(&failure->mgr);
    failure->mgr.error_exit = on_error_exit;
    failure->mgr.emit_message = on_message;
}

/* ---- the frame header ------------------------------------------------------ */

static bool is_sof(unsigned marker)
{
    /* SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC). */
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
           marker != 0xC8 && marker != 0xCC;
}

int codec_jpeg_read_header(const uint8_t *data, size_t len,
                           codec_jpeg_header *header, dcm_error *err)
{
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8)
        return dcm_fail(err, DCM_E_INVALID, 0, "JPEG codestream without SOI");
    size_t at = 2;
    while (at + 4 <= len) {
        if (data[at] != 0xFF)
            return dcm_fail(err, DCM_E_INVALID, (int64_t)at,
                            "JPEG: no marker where one belongs");
        unsigned marker = data[at + 1];
        if (marker == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        size_t segment = (size_t)data[at + 2] << 8 | data[at + 3];
        if (segment < 2 || segment > len - at - 2)
            return dcm_fail(err, DCM_E_TRUNCATED, (int64_t)at,
                            "JPEG: marker segment %02X overruns the "
                            "codestream",
                            marker);
        if (is_sof(marker)) {
            if (segment < 8)
                return dcm_fail(err, DCM_E_INVALID, (int64_t)at,
                                "JPEG: frame header too short");
            const uint8_t *p = data + at + 4;
            header->marker = marker;
            header->precision = p[0];
            header->rows = (uint32_t)p[1] << 8 | p[2];
            header->columns = (uint32_t)p[3] << 8 | p[4];
            header->components = p[5];
            return DCM_OK;
        }
        at += 2 + segment;
    }
    return dcm_fail(err, DCM_E_TRUNCATED, (int64_t)len,
                    "JPEG codestream ends before its frame header");
}

/* ---- decoding -------------------------------------------------------------- */

static int check_header(const struct jpeg_decompress_struct *cinfo,
                        const codec_image *decoded, dcm_error *err)
{
    if (cinfo->image_width != decoded->columns ||
        cinfo->image_height != decoded->rows ||
        cinfo->num_components != decoded->samples_per_pixel)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG codestream is %ux%u with %d components, the "
                        "dataset says %ux%u with %u",
                        cinfo->image_width, cinfo->image_height,
                        cinfo->num_components, decoded->columns,
                        decoded->rows, decoded->samples_per_pixel);
    if (cinfo->data_precision != 8 || decoded->bits_allocated != 8)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "JPEG of %d-bit precision, %u bits allocated: only "
                        "8-bit JPEG is decoded here",
                        cinfo->data_precision, decoded->bits_allocated);
    return DCM_OK;
}

/* Everything libjpeg may longjmp out of, with cinfo set up by the caller. */
static int decode_body(struct jpeg_decompress_struct *cinfo,
                       const codec_image *stored, const codec_image *decoded,
                       uint8_t *out, size_t out_len, dcm_error *err)
{
    jpeg_read_header(cinfo, TRUE);
    int rc = check_header(cinfo, decoded, err);
    if (rc < 0)
        return rc;
    if (decoded->samples_per_pixel == 3) {
        if (stored->photometric == CODEC_PI_RGB && !cinfo->saw_JFIF_marker &&
            !cinfo->saw_Adobe_marker)
            cinfo->jpeg_color_space = JCS_RGB;
        cinfo->out_color_space = JCS_RGB;
    } else {
        cinfo->out_color_space = JCS_GRAYSCALE;
    }
    jpeg_start_decompress(cinfo);
    size_t row_bytes = (size_t)decoded->columns * decoded->samples_per_pixel;
    if (row_bytes * decoded->rows != out_len)
        return dcm_fail(err, DCM_E_ARG, -1, "JPEG output size mismatch");
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out + (size_t)cinfo->output_scanline * row_bytes;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
            return dcm_fail(err, DCM_E_TRUNCATED, -1,
                            "JPEG codestream ends at row %u",
                            cinfo->output_scanline);
    }
    jpeg_finish_decompress(cinfo);
    return DCM_OK;
}

/* libjpeg-turbo 2.1 decodes 8-bit DCT processes only. */
static bool turbo_decodes(const codec_jpeg_header *header)
{
    bool lossless = header->marker == 0xC3 || header->marker == 0xC7 ||
                    header->marker == 0xCB || header->marker == 0xCF;
    return header->precision == 8 && !lossless;
}

int codec_jpeg_decode(const codec_image *stored, const codec_image *decoded,
                      const uint8_t *data, size_t len, uint8_t *out,
                      size_t out_len, dcm_error *err)
{
    if (len == 0 || len > ULONG_MAX)
        return dcm_fail(err, DCM_E_TRUNCATED, -1, "empty JPEG codestream");
    codec_jpeg_header header;
    int rc = codec_jpeg_read_header(data, len, &header, err);
    if (rc < 0)
        return rc;
    if (!turbo_decodes(&header)) {
#ifdef SIREN_CODEC_DCMTK
        return codec_dcmtk_jpeg_decode(stored, decoded, &header, data, len,
                                       out, out_len, err);
#else
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "JPEG process SOF%u with %u-bit samples needs the "
                        "DCMTK adapter, not built",
                        header.marker - 0xC0, header.precision);
#endif
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    failure_init(&failure);
    cinfo.err = &failure.mgr;
    jpeg_create_decompress(&cinfo);
    if (setjmp(failure.jump)) {
        rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG: %s", failure.message);
    } else {
        jpeg_mem_src(&cinfo, data, (unsigned long)len);
        rc = decode_body(&cinfo, stored, decoded, out, out_len, err);
        if (rc == DCM_OK && failure.warned)
            rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG: %s",
                          failure.message);
    }
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

/* ---- encoding -------------------------------------------------------------- */

static int check_encodable(const codec_image *image, dcm_error *err)
{
    if (image->bits_allocated != 8 || image->pixel_representation != 0)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "JPEG Baseline holds unsigned 8-bit samples, not "
                        "%u-bit %s",
                        image->bits_allocated,
                        image->pixel_representation ? "signed" : "unsigned");
    if (image->photometric == CODEC_PI_PALETTE_COLOR)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "lossy JPEG of palette indexes would change colours");
    return DCM_OK;
}

static void set_colour(struct jpeg_compress_struct *cinfo,
                       const codec_image *image, codec_encoded *encoded)
{
    if (image->samples_per_pixel == 1) {
        cinfo->in_color_space = JCS_GRAYSCALE;
        cinfo->input_components = 1;
        jpeg_set_defaults(cinfo);
        return;
    }
    cinfo->in_color_space =
        image->photometric == CODEC_PI_YBR_FULL ? JCS_YCbCr : JCS_RGB;
    cinfo->input_components = 3;
    jpeg_set_defaults(cinfo);
    jpeg_set_colorspace(cinfo, JCS_YCbCr);
    /* 4:2:2: Cb and Cr at half the horizontal, full vertical resolution. */
    cinfo->comp_info[0].h_samp_factor = 2;
    cinfo->comp_info[0].v_samp_factor = 1;
    cinfo->comp_info[1].h_samp_factor = 1;
    cinfo->comp_info[1].v_samp_factor = 1;
    cinfo->comp_info[2].h_samp_factor = 1;
    cinfo->comp_info[2].v_samp_factor = 1;
    encoded->image.photometric = CODEC_PI_YBR_FULL_422;
}

static void encode_body(struct jpeg_compress_struct *cinfo,
                        const codec_image *image, const uint8_t *frame,
                        int quality, codec_encoded *encoded)
{
    cinfo->image_width = image->columns;
    cinfo->image_height = image->rows;
    set_colour(cinfo, image, encoded);
    /* No JFIF marker: DICOM's attributes say what the samples are. */
    cinfo->write_JFIF_header = FALSE;
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    size_t row_bytes = (size_t)image->columns * image->samples_per_pixel;
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)(frame + (size_t)cinfo->next_scanline *
                                              row_bytes);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
}

int codec_jpeg_encode(const codec_image *image, const uint8_t *frame,
                      size_t len, const codec_encode_options *opts,
                      bool lossless, codec_buf *out, codec_encoded *encoded,
                      dcm_error *err)
{
    (void)len;
    (void)lossless;
    int rc = check_encodable(image, err);
    if (rc < 0)
        return rc;
    int quality = opts->quality ? opts->quality : JPEG_DEFAULT_QUALITY;
    if (quality < 1 || quality > 100)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "JPEG quality %d is not within 1..100", quality);
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    failure_init(&failure);
    cinfo.err = &failure.mgr;
    jpeg_create_compress(&cinfo);
    /* volatile: read after a longjmp. */
    unsigned char *volatile stream = NULL;
    unsigned long stream_len = 0;
    if (setjmp(failure.jump)) {
        rc = dcm_fail(err, DCM_E_INVALID, -1, "JPEG: %s", failure.message);
    } else {
        jpeg_mem_dest(&cinfo, (unsigned char **)&stream, &stream_len);
        encode_body(&cinfo, image, frame, quality, encoded);
        rc = codec_buf_append(out, stream, stream_len, err);
    }
    jpeg_destroy_compress(&cinfo);
    free(stream);
    if (rc == DCM_OK) {
        encoded->lossy = true;
        encoded->lossy_method = "ISO_10918_1";
        encoded->image.planar_configuration = 0;
    }
    return rc;
}
