/*
 * jpegls.c - JPEG-LS lossless and near-lossless (1.2.840.10008.1.2.4.80 and
 * .81) through CharLS's C API.
 *
 * CharLS takes and gives samples of 1 byte (precision up to 8) or 2 bytes
 * (up to 16), pixel-interleaved except for interleave mode "none", which
 * it gives plane by plane. DICOM keeps colour as it is (no HP colour
 * transforms, PS3.5 8.2.3), so RGB stays RGB. Signed samples travel as
 * their bits_stored-bit pattern; decode_frame sign-extends them again.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <charls/charls.h>

#define JPEGLS_DEFAULT_NEAR 2

static int charls_failure(charls_jpegls_errc code, const char *what,
                          dcm_error *err)
{
    return dcm_fail(err, DCM_E_INVALID, -1, "JPEG-LS %s: %s", what,
                    charls_get_error_message(code));
}

static size_t unit_bytes(int32_t bits)
{
    return bits <= 8 ? 1 : 2;
}

static uint32_t read_unit(const uint8_t *p, size_t unit)
{
    return unit == 1 ? p[0] : (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* ---- decoding -------------------------------------------------------------- */

static int check_frame(const charls_frame_info *info,
                       const codec_image *decoded, dcm_error *err)
{
    if (info->width != decoded->columns || info->height != decoded->rows ||
        info->component_count != decoded->samples_per_pixel)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG-LS codestream is %ux%u with %d components, "
                        "the dataset says %ux%u with %u",
                        info->width, info->height, info->component_count,
                        decoded->columns, decoded->rows,
                        decoded->samples_per_pixel);
    if (info->bits_per_sample < 2 ||
        info->bits_per_sample > decoded->bits_allocated ||
        decoded->bits_allocated > 16)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG-LS precision %d does not fit Bits Allocated %u",
                        info->bits_per_sample, decoded->bits_allocated);
    return DCM_OK;
}

/* Copies CharLS's output into the frame layout, a row at a time through
 * row (columns * samples_per_pixel values). */
static void unpack(const uint8_t *samples, size_t unit, bool planar,
                   const codec_image *decoded, int32_t *row, uint8_t *out)
{
    size_t pixels = (size_t)decoded->rows * decoded->columns;
    size_t components = decoded->samples_per_pixel;
    size_t per_row = decoded->columns * components;
    for (size_t y = 0; y < decoded->rows; y++) {
        for (size_t i = 0; i < per_row; i++) {
            size_t p = y * decoded->columns + i / components;
            size_t c = i % components;
            size_t from = planar ? c * pixels + p : p * components + c;
            row[i] = (int32_t)read_unit(samples + from * unit, unit);
        }
        codec_samples_put(decoded, out, y * per_row, 1, per_row, row);
    }
}

static int decode_with(charls_jpegls_decoder *dec, const codec_image *decoded,
                       const uint8_t *data, size_t len, uint8_t *out,
                       dcm_error *err)
{
    charls_jpegls_errc code;
    charls_frame_info info;
    charls_interleave_mode mode;
    if ((code = charls_jpegls_decoder_set_source_buffer(dec, data, len)) ||
        (code = charls_jpegls_decoder_read_header(dec)) ||
        (code = charls_jpegls_decoder_get_frame_info(dec, &info)) ||
        (code = charls_jpegls_decoder_get_interleave_mode(dec, &mode)))
        return charls_failure(code, "header", err);
    int rc = check_frame(&info, decoded, err);
    if (rc < 0)
        return rc;
    size_t unit = unit_bytes(info.bits_per_sample);
    size_t size = (size_t)info.width * info.height *
                  (size_t)info.component_count * unit;
    uint8_t *samples = malloc(size);
    int32_t *row = malloc((size_t)info.width * info.component_count *
                          sizeof *row);
    if (!samples || !row)
        rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory decoding");
    else if ((code = charls_jpegls_decoder_decode_to_buffer(dec, samples,
                                                             size, 0)))
        rc = charls_failure(code, "decoding", err);
    else
        unpack(samples, unit, mode == CHARLS_INTERLEAVE_MODE_NONE, decoded,
               row, out);
    free(row);
    free(samples);
    return rc;
}

/* The codestream up to and including its EOI marker, after which DICOM
 * may have padded with a 00H byte. CharLS 2.4, fed a codestream cut off
 * without its EOI, spins for tens of seconds before it gives up (it reads
 * zero bits past the end): a cut codestream is refused here instead. */
static int trim_to_eoi(const uint8_t *data, size_t *len, dcm_error *err)
{
    size_t end = *len;
    if (end > 0 && data[end - 1] == 0x00)
        end--;
    if (end < 2 || data[end - 2] != 0xFF || data[end - 1] != 0xD9)
        return dcm_fail(err, DCM_E_TRUNCATED, (int64_t)*len,
                        "JPEG-LS codestream of %zu bytes does not end with "
                        "an EOI marker (truncated?)",
                        *len);
    *len = end;
    return DCM_OK;
}

int codec_jpegls_decode(const codec_image *stored, const codec_image *decoded,
                        const uint8_t *data, size_t len, uint8_t *out,
                        size_t out_len, dcm_error *err)
{
    (void)stored;
    (void)out_len;
    int rc = trim_to_eoi(data, &len, err);
    if (rc < 0)
        return rc;
    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (!dec)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG-LS");
    rc = decode_with(dec, decoded, data, len, out, err);
    charls_jpegls_decoder_destroy(dec);
    return rc;
}

/* ---- encoding -------------------------------------------------------------- */

/* The frame's samples reduced to their stored bits, in CharLS's units
 * (signed ones as their bits_stored-bit pattern). */
static uint8_t *pack(const codec_image *image, const uint8_t *frame,
                     size_t unit, size_t *size)
{
    size_t per_row = (size_t)image->columns * image->samples_per_pixel;
    uint8_t *samples = malloc(per_row * image->rows * unit);
    int32_t *row = malloc(per_row * sizeof *row);
    if (!samples || !row) {
        free(samples);
        free(row);
        return NULL;
    }
    uint32_t mask = (uint32_t)((1ull << image->bits_stored) - 1u);
    for (size_t y = 0; y < image->rows; y++) {
        codec_samples_get(image, frame, y * per_row, 1, per_row, row);
        uint8_t *to = samples + y * per_row * unit;
        for (size_t i = 0; i < per_row; i++) {
            uint32_t value = (uint32_t)row[i] & mask;
            to[i * unit] = (uint8_t)value;
            if (unit == 2)
                to[i * unit + 1] = (uint8_t)(value >> 8);
        }
    }
    free(row);
    *size = per_row * image->rows * unit;
    return samples;
}

static int encode_with(charls_jpegls_encoder *enc, const codec_image *image,
                       const uint8_t *samples, size_t size, int near,
                       codec_buf *out, dcm_error *err)
{
    charls_frame_info info = {
        .width = image->columns, .height = image->rows,
        .bits_per_sample = image->bits_stored,
        .component_count = image->samples_per_pixel};
    charls_jpegls_errc code;
    size_t estimate = 0, written = 0;
    if ((code = charls_jpegls_encoder_set_frame_info(enc, &info)) ||
        (code = charls_jpegls_encoder_set_near_lossless(enc, near)) ||
        (code = charls_jpegls_encoder_set_interleave_mode(
             enc, image->samples_per_pixel > 1 ? CHARLS_INTERLEAVE_MODE_SAMPLE
                                               : CHARLS_INTERLEAVE_MODE_NONE)) ||
        (code = charls_jpegls_encoder_get_estimated_destination_size(
             enc, &estimate)))
        return charls_failure(code, "parameters", err);
    int rc = codec_buf_reserve(out, estimate, err);
    if (rc < 0)
        return rc;
    if ((code = charls_jpegls_encoder_set_destination_buffer(
             enc, out->data + out->len, estimate)) ||
        (code = charls_jpegls_encoder_encode_from_buffer(enc, samples, size,
                                                         0)) ||
        (code = charls_jpegls_encoder_get_bytes_written(enc, &written)))
        return charls_failure(code, "encoding", err);
    out->len += written;
    return DCM_OK;
}

int codec_jpegls_encode(const codec_image *image, const uint8_t *frame,
                        size_t len, const codec_encode_options *opts,
                        bool lossless, codec_buf *out, codec_encoded *encoded,
                        dcm_error *err)
{
    (void)len;
    if (image->bits_stored < 2 || image->bits_stored > 16)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "JPEG-LS holds 2 to 16 bits per sample, not %u",
                        image->bits_stored);
    int near = 0;
    if (!lossless) {
        near = opts->near_lossless ? opts->near_lossless : JPEGLS_DEFAULT_NEAR;
        if (near < 0 || near > 255)
            return dcm_fail(err, DCM_E_ARG, -1,
                            "JPEG-LS NEAR %d is not within 0..255", near);
        if (image->photometric == CODEC_PI_PALETTE_COLOR)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "lossy JPEG-LS of palette indexes would change "
                            "colours");
    }
    size_t size;
    uint8_t *samples = pack(image, frame, unit_bytes(image->bits_stored),
                            &size);
    if (!samples)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory encoding");
    charls_jpegls_encoder *enc = charls_jpegls_encoder_create();
    int rc = enc ? encode_with(enc, image, samples, size, near, out, err)
                 : dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG-LS");
    charls_jpegls_encoder_destroy(enc);
    free(samples);
    if (rc == DCM_OK) {
        encoded->lossy = near > 0;
        encoded->lossy_method = near > 0 ? "ISO_14495_1" : NULL;
        encoded->image.planar_configuration = 0;
    }
    return rc;
}
