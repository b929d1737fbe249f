/*
 * frames.c - the frames of a dataset's pixel data: native frames read one
 * at a time from the element's source, and the mapping of encapsulated
 * fragments to frames per PS3.5 A.4 (Extended Offset Table, Basic Offset
 * Table, one fragment per frame, or frames found by their end marker).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Frame i of encapsulated pixel data is fragments first .. first+count-1
 * (indexes into the element, so the Basic Offset Table is item 0). */
typedef struct frame_span {
    size_t first, count;
} frame_span;

struct codec_source {
    const dcm_dataset *ds;
    const dcm_element *pixel;
    const dcm_ts *ts;
    codec_image image;
    codec_limits limits;
    size_t frame_bytes;  /* native: bytes of one frame (codec_frame_bytes) */
    frame_span *spans;   /* encapsulated: one per frame */
};

static const dcm_ts *native_syntax(void)
{
    return dcm_ts_find(DCM_TS_EXPLICIT_LE);
}

/* ---- native pixel data ---------------------------------------------------- */

static int open_native(codec_source *src, dcm_error *err)
{
    if (dcm_element_kind_of(src->pixel) != DCM_KIND_VALUE)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Pixel Data is not a value in a native syntax");
    /* PS3.3 C.7.6.3.1.2: pairs of pixels share Cb and Cr. */
    if (src->image.photometric == CODEC_PI_YBR_FULL_422 &&
        src->image.columns % 2 != 0)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "native YBR_FULL_422 with an odd number of columns "
                        "(%u)",
                        src->image.columns);
    int rc = codec_frame_bytes(&src->image, &src->frame_bytes, err);
    if (rc < 0)
        return rc;
    /* Frames of bits allocated 1 follow each other bit by bit. */
    uint64_t bits = src->image.bits_allocated == 1
                        ? (uint64_t)src->image.rows * src->image.columns
                        : (uint64_t)src->frame_bytes * 8;
    uint64_t need = bits * src->image.frames; /* bounded by image_check */
    need = need / 8 + (need % 8 != 0);
    if (dcm_element_length(src->pixel) < need)
        return dcm_fail(err, DCM_E_TRUNCATED, -1,
                        "Pixel Data holds %llu bytes, %u frames need %llu",
                        (unsigned long long)dcm_element_length(src->pixel),
                        src->image.frames, (unsigned long long)need);
    return DCM_OK;
}

/* Bits allocated 1: frame index starts at bit index * rows * columns,
 * which need not be a byte boundary; shift it down to bit 0. */
static int read_bit_frame(const codec_source *src, uint32_t index,
                          uint8_t *buf, size_t len, dcm_error *err)
{
    uint64_t frame_bits = (uint64_t)src->image.rows * src->image.columns;
    uint64_t first_bit = frame_bits * index;
    uint64_t first_byte = first_bit / 8;
    unsigned shift = (unsigned)(first_bit % 8);
    if (shift == 0)
        return dcm_element_read(src->pixel, first_byte, buf, len, err);
    /* One more byte than the frame holds, when the value has it. */
    uint64_t available = dcm_element_length(src->pixel) - first_byte;
    size_t span = available > len ? len + 1 : len;
    uint8_t *tmp = malloc(span);
    if (!tmp)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory reading a frame");
    int rc = dcm_element_read(src->pixel, first_byte, tmp, span, err);
    if (rc == DCM_OK) {
        for (size_t i = 0; i < len; i++) {
            unsigned next = i + 1 < span ? tmp[i + 1] : 0;
            buf[i] = (uint8_t)((tmp[i] >> shift) | (next << (8 - shift)));
        }
        /* Bits past the frame's end are not the frame's. */
        unsigned tail = (unsigned)(frame_bits % 8);
        if (tail)
            buf[len - 1] &= (uint8_t)((1u << tail) - 1u);
    }
    free(tmp);
    return rc;
}

int codec_source_read_native(const codec_source *src, uint32_t index,
                             void *buf, size_t len, dcm_error *err)
{
    if (src->ts->encapsulated)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "pixel data is encapsulated (%s)", src->ts->name);
    if (index >= src->image.frames)
        return dcm_fail(err, DCM_E_ARG, -1, "no frame %u of %u", index,
                        src->image.frames);
    if (len < src->frame_bytes)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "a %zu-byte buffer for a %zu-byte frame", len,
                        src->frame_bytes);
    if (src->image.bits_allocated == 1)
        return read_bit_frame(src, index, buf, src->frame_bytes, err);
    return dcm_element_read(src->pixel, (uint64_t)src->frame_bytes * index,
                            buf, src->frame_bytes, err);
}

/* ---- encapsulated pixel data: offset tables -------------------------------- */

static uint64_t read_le(const uint8_t *p, size_t width)
{
    uint64_t value = 0;
    for (size_t i = width; i-- > 0;)
        value = value << 8 | p[i];
    return value;
}

/* Offsets (relative to the first fragment's item tag) to spans: each
 * offset must be where a fragment's item starts, ascending from 0. */
static int spans_from_offsets(codec_source *src, const uint64_t *offsets,
                              dcm_error *err)
{
    size_t fragments = dcm_element_fragment_count(src->pixel);
    size_t fragment = 1;
    uint64_t position = 0;
    uint32_t frames = src->image.frames;
    for (uint32_t f = 0; f < frames; f++) {
        while (fragment < fragments && position < offsets[f]) {
            position += 8 + dcm_element_fragment_length(src->pixel, fragment);
            fragment++;
        }
        if (fragment >= fragments || position != offsets[f])
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "offset table: frame %u at offset %llu is not "
                            "the start of a fragment",
                            f, (unsigned long long)offsets[f]);
        if (f > 0 && offsets[f] <= offsets[f - 1])
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "offset table: offsets do not ascend at frame %u",
                            f);
        src->spans[f].first = fragment;
        if (f > 0)
            src->spans[f - 1].count = fragment - src->spans[f - 1].first;
    }
    src->spans[frames - 1].count = fragments - src->spans[frames - 1].first;
    return DCM_OK;
}

/* Reads an offset table value (width 4: Basic, items of the element; 8:
 * the Extended one, an OV element) of exactly one entry per frame. */
static int load_offsets(codec_source *src, const dcm_element *table,
                        size_t width, uint64_t *offsets, dcm_error *err)
{
    uint64_t length = table ? dcm_element_length(table)
                            : dcm_element_fragment_length(src->pixel, 0);
    uint64_t frames = src->image.frames;
    if (length != frames * width)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "%s offset table has %llu bytes for %u frames",
                        width == 8 ? "extended" : "basic",
                        (unsigned long long)length, src->image.frames);
    uint8_t *raw = malloc(length);
    if (!raw)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for offsets");
    int rc = table ? dcm_element_read(table, 0, raw, length, err)
                   : dcm_element_fragment_read(src->pixel, 0, 0, raw, length,
                                               err);
    for (uint64_t f = 0; rc == DCM_OK && f < frames; f++)
        offsets[f] = read_le(raw + f * width, width);
    free(raw);
    return rc;
}

/* ---- encapsulated pixel data: frames by their end marker ------------------- */

/* JPEG (EOI), JPEG-LS (EOI) and JPEG 2000 / HTJ2K (EOC) codestreams all end
 * with FFD9, which their entropy-coded data never contains. */
static bool syntax_ends_with_ffd9(const dcm_ts *ts)
{
    static const char *const prefix = "1.2.840.10008.1.2.4.";
    return strncmp(ts->uid, prefix, strlen(prefix)) == 0;
}

/* True when fragment index ends a codestream: its last two bytes, after
 * at most one padding byte (00H or FFH), are FF D9. */
static int fragment_ends_frame(const codec_source *src, size_t index,
                               bool *ends, dcm_error *err)
{
    uint64_t length = dcm_element_fragment_length(src->pixel, index);
    uint8_t tail[3] = {0, 0, 0};
    size_t take = length < 3 ? (size_t)length : 3;
    *ends = false;
    int rc = dcm_element_fragment_read(src->pixel, index, length - take,
                                       tail + 3 - take, take, err);
    if (rc < 0)
        return rc;
    *ends = (tail[1] == 0xFF && tail[2] == 0xD9) ||
            (take == 3 && tail[0] == 0xFF && tail[1] == 0xD9);
    return DCM_OK;
}

static int spans_from_markers(codec_source *src, dcm_error *err)
{
    size_t fragments = dcm_element_fragment_count(src->pixel);
    uint32_t frame = 0;
    size_t first = 1;
    for (size_t i = 1; i < fragments; i++) {
        bool ends;
        int rc = fragment_ends_frame(src, i, &ends, err);
        if (rc < 0)
            return rc;
        if (!ends)
            continue;
        if (frame == src->image.frames)
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "more codestreams in the fragments than the %u "
                            "frames",
                            src->image.frames);
        src->spans[frame].first = first;
        src->spans[frame].count = i + 1 - first;
        frame++;
        first = i + 1;
    }
    if (frame != src->image.frames || first != fragments)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "%zu fragments without offset table do not split "
                        "into %u frames",
                        fragments - 1, src->image.frames);
    return DCM_OK;
}

static int map_frames(codec_source *src, dcm_error *err)
{
    size_t fragments = dcm_element_fragment_count(src->pixel);
    uint32_t frames = src->image.frames;
    if (fragments < 2)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "encapsulated Pixel Data without fragments");
    const dcm_element *eot =
        dcm_dataset_find(src->ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
    if (eot || dcm_element_fragment_length(src->pixel, 0) > 0) {
        uint64_t *offsets = calloc(frames, sizeof *offsets);
        if (!offsets)
            return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for offsets");
        int rc = load_offsets(src, eot, eot ? 8 : 4, offsets, err);
        if (rc == DCM_OK)
            rc = spans_from_offsets(src, offsets, err);
        free(offsets);
        return rc;
    }
    if (frames == 1) {
        src->spans[0].first = 1;
        src->spans[0].count = fragments - 1;
        return DCM_OK;
    }
    if (fragments - 1 == frames) {
        for (uint32_t f = 0; f < frames; f++) {
            src->spans[f].first = 1 + (size_t)f;
            src->spans[f].count = 1;
        }
        return DCM_OK;
    }
    if (!syntax_ends_with_ffd9(src->ts))
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "%zu fragments for %u frames and no offset table",
                        fragments - 1, frames);
    return spans_from_markers(src, err);
}

static int open_encapsulated(codec_source *src, dcm_error *err)
{
    if (dcm_element_kind_of(src->pixel) != DCM_KIND_FRAGMENTS)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "Pixel Data is not encapsulated in %s", src->ts->name);
    src->spans = calloc(src->image.frames, sizeof *src->spans);
    if (!src->spans)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for frames");
    return map_frames(src, err);
}

/* ---- the source ------------------------------------------------------------ */

codec_source *codec_source_open(const dcm_dataset *ds,
                                const codec_limits *limits, dcm_error *err)
{
    codec_source *src = calloc(1, sizeof *src);
    if (!src) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    src->ds = ds;
    if (limits)
        src->limits = *limits;
    else
        codec_limits_default(&src->limits);
    src->ts = dcm_dataset_syntax(ds) ? dcm_dataset_syntax(ds)
                                     : native_syntax();
    src->pixel = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    int rc;
    if (!src->pixel)
        rc = dcm_fail(err, DCM_E_NOT_FOUND, -1, "no Pixel Data");
    else
        rc = codec_image_from_dataset(ds, &src->limits, &src->image, err);
    if (rc == DCM_OK)
        rc = src->ts->encapsulated ? open_encapsulated(src, err)
                                   : open_native(src, err);
    if (rc < 0) {
        codec_source_free(src);
        return NULL;
    }
    return src;
}

void codec_source_free(codec_source *src)
{
    if (!src)
        return;
    free(src->spans);
    free(src);
}

const codec_image *codec_source_image(const codec_source *src)
{
    return &src->image;
}

const dcm_ts *codec_source_syntax(const codec_source *src)
{
    return src->ts;
}

int codec_source_read_encoded(const codec_source *src, uint32_t index,
                              uint8_t **data, size_t *len, dcm_error *err)
{
    *data = NULL;
    *len = 0;
    if (!src->ts->encapsulated)
        return dcm_fail(err, DCM_E_ARG, -1, "pixel data is native (%s)",
                        src->ts->name);
    if (index >= src->image.frames)
        return dcm_fail(err, DCM_E_ARG, -1, "no frame %u of %u", index,
                        src->image.frames);
    const frame_span *span = &src->spans[index];
    uint64_t total = 0;
    for (size_t i = 0; i < span->count; i++) {
        uint64_t length =
            dcm_element_fragment_length(src->pixel, span->first + i);
        if (!codec_add_u64(total, length, &total) ||
            total > src->limits.max_encoded_frame_bytes)
            return dcm_fail(err, DCM_E_LIMIT, -1,
                            "frame %u's codestream exceeds the limit of %llu "
                            "bytes",
                            index,
                            (unsigned long long)
                                src->limits.max_encoded_frame_bytes);
    }
    uint8_t *buf = malloc(total ? (size_t)total : 1);
    if (!buf)
        return dcm_fail(err, DCM_E_NOMEM, -1,
                        "out of memory for a %llu-byte codestream",
                        (unsigned long long)total);
    size_t at = 0;
    for (size_t i = 0; i < span->count; i++) {
        size_t length =
            (size_t)dcm_element_fragment_length(src->pixel, span->first + i);
        int rc = dcm_element_fragment_read(src->pixel, span->first + i, 0,
                                           buf + at, length, err);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        at += length;
    }
    *data = buf;
    *len = at;
    return DCM_OK;
}

/* Planar configuration 1 (RRR..GGG..BBB..) to 0 (RGBRGB..). */
static void interleave(const codec_image *image, const uint8_t *planes,
                       uint8_t *out)
{
    size_t pixels = (size_t)image->rows * image->columns;
    size_t sample = codec_sample_bytes(image);
    for (size_t p = 0; p < pixels; p++)
        for (size_t s = 0; s < 3; s++)
            memcpy(out + (p * 3 + s) * sample,
                   planes + (s * pixels + p) * sample, sample);
}

static int decode_native(const codec_source *src, uint32_t index,
                         uint8_t **data, size_t *len, codec_image *decoded,
                         dcm_error *err)
{
    uint8_t *frame = malloc(src->frame_bytes ? src->frame_bytes : 1);
    if (!frame)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a frame");
    int rc = codec_source_read_native(src, index, frame, src->frame_bytes, err);
    if (rc < 0) {
        free(frame);
        return rc;
    }
    *decoded = src->image;
    decoded->frames = 1;
    codec_normalize_samples(decoded, frame, src->frame_bytes);
    if (src->image.planar_configuration == 1) {
        uint8_t *interleaved = malloc(src->frame_bytes);
        if (!interleaved) {
            free(frame);
            return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a frame");
        }
        interleave(&src->image, frame, interleaved);
        free(frame);
        frame = interleaved;
        decoded->planar_configuration = 0;
    }
    *data = frame;
    *len = src->frame_bytes;
    return DCM_OK;
}

int codec_source_decode(const codec_source *src, uint32_t index,
                        uint8_t **data, size_t *len, codec_image *decoded,
                        dcm_error *err)
{
    *data = NULL;
    *len = 0;
    if (!src->ts->encapsulated)
        return decode_native(src, index, data, len, decoded, err);
    uint8_t *stream;
    size_t stream_len;
    int rc = codec_source_read_encoded(src, index, &stream, &stream_len, err);
    if (rc < 0)
        return rc;
    codec_image stored = src->image;
    stored.frames = 1;
    rc = codec_decode_frame(src->ts->uid, &stored, stream, stream_len,
                            &src->limits, data, len, decoded, err);
    free(stream);
    return rc;
}
