/*
 * rle.c - RLE Lossless (1.2.840.10008.1.2.5), PS3.5 Annex G, written here:
 * no library in Debian offers it on its own (DCMTK's and GDCM's live
 * inside their toolkits' object models).
 *
 * A frame is a 64-byte header (segment count, then 15 segment offsets,
 * little endian) and one segment per byte of each sample, most significant
 * byte first, for each sample in turn (G.2). Each segment is PackBits
 * (G.3.1): a header byte n in 0..127 copies the next n+1 bytes, -1..-127
 * repeats the next byte -n+1 times, -128 is skipped. The encoder runs each
 * row separately and pads segments to even length.
 */
#include "internal.h"

#include <string.h>

#define RLE_HEADER_BYTES 64u
#define RLE_MAX_SEGMENTS 15u

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Decodes one segment into every stride-th byte of out, starting at out[0],
 * until pixels bytes are written. */
static int unpack_segment(const uint8_t *seg, size_t seg_len, uint8_t *out,
                          size_t pixels, size_t stride, unsigned index,
                          dcm_error *err)
{
    size_t in = 0, done = 0;
    while (done < pixels) {
        if (in >= seg_len)
            return dcm_fail(err, DCM_E_TRUNCATED, -1,
                            "RLE segment %u ends after %zu of %zu bytes",
                            index, done, pixels);
        int8_t header = (int8_t)seg[in++];
        if (header == -128)
            continue;
        if (header >= 0) {
            size_t run = (size_t)header + 1;
            if (run > seg_len - in || run > pixels - done)
                return dcm_fail(err, DCM_E_INVALID, -1,
                                "RLE segment %u: a literal run of %zu bytes "
                                "overruns its segment or row data",
                                index, run);
            for (size_t i = 0; i < run; i++)
                out[(done + i) * stride] = seg[in + i];
            in += run;
            done += run;
        } else {
            size_t run = (size_t)(1 - header);
            if (in >= seg_len || run > pixels - done)
                return dcm_fail(err, DCM_E_INVALID, -1,
                                "RLE segment %u: a replicate run of %zu "
                                "bytes overruns its segment or frame",
                                index, run);
            uint8_t value = seg[in++];
            for (size_t i = 0; i < run; i++)
                out[(done + i) * stride] = value;
            done += run;
        }
    }
    return DCM_OK;
}

int codec_rle_decode(const codec_image *stored, const codec_image *decoded,
                     const uint8_t *data, size_t len, uint8_t *out,
                     size_t out_len, dcm_error *err)
{
    (void)stored;
    size_t sample_bytes = codec_sample_bytes(decoded);
    size_t samples = decoded->samples_per_pixel;
    size_t segments = sample_bytes * samples;
    size_t pixels = (size_t)decoded->rows * decoded->columns;
    if (len > UINT32_MAX)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "RLE frame of %zu bytes: offsets have 32 bits", len);
    if (len < RLE_HEADER_BYTES)
        return dcm_fail(err, DCM_E_TRUNCATED, 0,
                        "RLE frame of %zu bytes has no header", len);
    uint32_t count = read_u32(data);
    if (count != segments)
        return dcm_fail(err, DCM_E_INVALID, 0,
                        "RLE header names %u segments, the image needs %zu",
                        count, segments);
    uint32_t offsets[RLE_MAX_SEGMENTS + 1];
    for (size_t i = 0; i < count; i++) {
        offsets[i] = read_u32(data + 4 + 4 * i);
        bool ascending = i == 0 ? offsets[i] == RLE_HEADER_BYTES
                                : offsets[i] >= offsets[i - 1];
        if (!ascending || offsets[i] > len)
            return dcm_fail(err, DCM_E_INVALID, (int64_t)(4 + 4 * i),
                            "RLE segment %zu offset %u is out of order or "
                            "past the frame's %zu bytes",
                            i, offsets[i], len);
    }
    offsets[count] = (uint32_t)len;
    if (out_len != pixels * segments)
        return dcm_fail(err, DCM_E_ARG, -1, "RLE output size mismatch");
    /* Segment s holds byte (sample_bytes - 1 - s % sample_bytes), little
     * endian, of sample s / sample_bytes: the most significant first. */
    for (size_t s = 0; s < count; s++) {
        size_t sample = s / sample_bytes;
        size_t byte = sample_bytes - 1 - s % sample_bytes;
        int rc = unpack_segment(data + offsets[s], offsets[s + 1] - offsets[s],
                                out + sample * sample_bytes + byte, pixels,
                                segments, (unsigned)s, err);
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

/* PackBits of one row of `columns` bytes taken every stride-th byte. */
static int pack_row(const uint8_t *row, size_t columns, size_t stride,
                    codec_buf *out, dcm_error *err)
{
    size_t i = 0;
    uint8_t chunk[129];
    while (i < columns) {
        size_t run = 1;
        while (i + run < columns && run < 128 &&
               row[(i + run) * stride] == row[i * stride])
            run++;
        if (run >= 2) {
            chunk[0] = (uint8_t)(int8_t)(1 - (int)run);
            chunk[1] = row[i * stride];
            int rc = codec_buf_append(out, chunk, 2, err);
            if (rc < 0)
                return rc;
            i += run;
            continue;
        }
        /* Literal: up to the next pair of equal bytes, at most 128. */
        size_t lit = 1;
        while (i + lit < columns && lit < 128 &&
               !(i + lit + 1 < columns &&
                 row[(i + lit) * stride] == row[(i + lit + 1) * stride]))
            lit++;
        chunk[0] = (uint8_t)(lit - 1);
        for (size_t k = 0; k < lit; k++)
            chunk[1 + k] = row[(i + k) * stride];
        int rc = codec_buf_append(out, chunk, lit + 1, err);
        if (rc < 0)
            return rc;
        i += lit;
    }
    return DCM_OK;
}

int codec_rle_encode(const codec_image *image, const uint8_t *frame,
                     size_t len, const codec_encode_options *opts,
                     bool lossless, codec_buf *out, codec_encoded *encoded,
                     dcm_error *err)
{
    (void)len;
    (void)opts;
    (void)lossless;
    size_t sample_bytes = codec_sample_bytes(image);
    size_t segments = sample_bytes * image->samples_per_pixel;
    size_t columns = image->columns;
    if (segments > RLE_MAX_SEGMENTS)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "RLE holds at most 15 segments, not %zu", segments);
    uint8_t header[RLE_HEADER_BYTES] = {0};
    int rc = codec_buf_append(out, header, sizeof header, err);
    header[0] = (uint8_t)segments;
    for (size_t s = 0; rc == DCM_OK && s < segments; s++) {
        if (out->len > UINT32_MAX)
            return dcm_fail(err, DCM_E_LIMIT, -1,
                            "RLE frame passes 4 GiB at segment %zu", s);
        for (int b = 0; b < 4; b++)
            header[4 + 4 * s + (size_t)b] = (uint8_t)(out->len >> (8 * b));
        size_t sample = s / sample_bytes;
        size_t byte = sample_bytes - 1 - s % sample_bytes;
        const uint8_t *plane = frame + sample * sample_bytes + byte;
        for (uint32_t r = 0; rc == DCM_OK && r < image->rows; r++)
            rc = pack_row(plane + (size_t)r * columns * segments, columns,
                          segments, out, err);
        if (rc == DCM_OK && out->len % 2 != 0)
            rc = codec_buf_append(out, "\0", 1, err);
    }
    if (rc < 0)
        return rc;
    memcpy(out->data, header, sizeof header);
    encoded->image.planar_configuration = 0;
    encoded->lossy = false;
    encoded->lossy_method = NULL;
    return DCM_OK;
}
