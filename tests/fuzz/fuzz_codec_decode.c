/* fuzz_codec_decode.c - libFuzzer harness for one decoder of codec/, built
 * once per decoder wrapper with FUZZ_SYNTAX set to its transfer syntax
 * (fuzz_codec_rle, fuzz_codec_jpeg, fuzz_codec_jpegls, fuzz_codec_j2k).
 *
 * Input: an 8-byte image description, then the codestream of one frame:
 *   rows (u16 LE), columns (u16 LE), samples per pixel (1 or 3: low bit
 *   of byte 4), bits allocated (8/16/32: byte 5 % 3), bits stored (byte
 *   6), flags (byte 7: bit 0 signed, bits 1-3 photometric).
 * The description may disagree with the codestream: that is the point.
 * What decodes must be as large as the description says, and if the
 * syntax is lossless and the frame small, it must encode again and pass
 * the lossless check.
 * tests/fuzz/fuzz_codec.seeds makes seeds from the pydicom corpus. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_SYNTAX
#error "FUZZ_SYNTAX names the transfer syntax this harness decodes"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DESCRIPTION_BYTES 8
#define REENCODE_MAX_BYTES (64u << 10)

static codec_image describe(const uint8_t *d)
{
    static const uint16_t allocated[] = {8, 16, 32};
    static const codec_photometric mono[] = {CODEC_PI_MONOCHROME2,
                                             CODEC_PI_MONOCHROME1,
                                             CODEC_PI_PALETTE_COLOR};
    static const codec_photometric colour[] = {
        CODEC_PI_RGB, CODEC_PI_YBR_FULL, CODEC_PI_YBR_FULL_422,
        CODEC_PI_YBR_RCT, CODEC_PI_YBR_ICT};
    codec_image image = {0};
    image.rows = (uint32_t)(d[0] | d[1] << 8);
    image.columns = (uint32_t)(d[2] | d[3] << 8);
    image.samples_per_pixel = (d[4] & 1) ? 3 : 1;
    image.bits_allocated = allocated[d[5] % 3];
    image.bits_stored = d[6];
    image.high_bit = (uint16_t)(d[6] - 1);
    image.pixel_representation = d[7] & 1;
    unsigned pi = (d[7] >> 1) & 7;
    image.photometric = image.samples_per_pixel == 3 ? colour[pi % 5]
                                                     : mono[pi % 3];
    image.frames = 1;
    return image;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < DESCRIPTION_BYTES)
        return 0;
    codec_image stored = describe(data);
    codec_limits limits;
    codec_limits_default(&limits);
    limits.max_frame_bytes = 1u << 20; /* keep each run quick */
    uint8_t *frame;
    size_t len;
    codec_image decoded;
    if (codec_decode_frame(FUZZ_SYNTAX, &stored, data + DESCRIPTION_BYTES,
                           size - DESCRIPTION_BYTES, &limits, &frame, &len,
                           &decoded, NULL) < 0)
        return 0;
    size_t want;
    if (codec_frame_bytes(&decoded, &want, NULL) < 0 || want != len)
        abort();
    uint8_t *stream;
    size_t stream_len;
    codec_encoded encoded;
    /* Re-encoding large frames would halve the runs per second. */
    if (codec_can_encode(FUZZ_SYNTAX) && len <= REENCODE_MAX_BYTES &&
        codec_encode_frame(FUZZ_SYNTAX, &decoded, frame, len, NULL, &stream,
                           &stream_len, &encoded, NULL) == 0) {
        if (!encoded.lossy &&
            codec_verify_lossless(FUZZ_SYNTAX, &decoded, frame, len, stream,
                                  stream_len, &encoded.image, &limits,
                                  NULL) != 0)
            abort(); /* our own lossless output must come back */
        free(stream);
    }
    free(frame);
    return 0;
}
