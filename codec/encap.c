/*
 * encap.c - writing encapsulated Pixel Data (PS3.5 A.4): one fragment per
 * frame, each of even length, and the offset table that says where each
 * frame starts (Basic, or Extended when an offset needs more than 32
 * bits).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct codec_writer {
    const dcm_ts *ts;
    bool jpeg_fill; /* pad with FFH before the final marker (JPEG, JPEG-LS) */
    uint8_t **frames;
    uint64_t *lengths;
    size_t count, capacity;
};

/* JPEG and JPEG-LS: ISO 10918-1 B.1.1.2 and ISO 14495-1 allow FFH fill
 * bytes before any marker, so an odd codestream becomes even with FFH
 * inserted before its EOI (PS3.5 A.4 note 1). */
static bool syntax_pads_with_fill(const char *uid)
{
    return strcmp(uid, CODEC_TS_JPEG_BASELINE) == 0 ||
           strcmp(uid, CODEC_TS_JPEG_EXTENDED) == 0 ||
           strcmp(uid, CODEC_TS_JPEG_LOSSLESS) == 0 ||
           strcmp(uid, CODEC_TS_JPEG_LOSSLESS_SV1) == 0 ||
           strcmp(uid, CODEC_TS_JPEG_LS_LOSSLESS) == 0 ||
           strcmp(uid, CODEC_TS_JPEG_LS_NEAR_LOSSLESS) == 0;
}

codec_writer *codec_writer_new(const char *ts_uid, dcm_error *err)
{
    const dcm_ts *ts = ts_uid ? dcm_ts_find(ts_uid) : NULL;
    if (!ts || !ts->encapsulated) {
        dcm_fail(err, DCM_E_ARG, -1, "%.64s is no encapsulated syntax",
                 ts_uid ? ts_uid : "(none)");
        return NULL;
    }
    codec_writer *w = calloc(1, sizeof *w);
    if (!w) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    w->ts = ts;
    w->jpeg_fill = syntax_pads_with_fill(ts->uid);
    return w;
}

void codec_writer_free(codec_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->frames[i]);
    free(w->frames);
    free(w->lengths);
    free(w);
}

static int grow(codec_writer *w, dcm_error *err)
{
    if (w->count < w->capacity)
        return DCM_OK;
    size_t capacity = w->capacity ? w->capacity * 2 : 8;
    uint8_t **frames = realloc(w->frames, capacity * sizeof *frames);
    if (frames)
        w->frames = frames;
    uint64_t *lengths = realloc(w->lengths, capacity * sizeof *lengths);
    if (lengths)
        w->lengths = lengths;
    if (!frames || !lengths)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for frames");
    w->capacity = capacity;
    return DCM_OK;
}

int codec_writer_add_frame(codec_writer *w, const uint8_t *data, size_t len,
                           dcm_error *err)
{
    if (len == 0 || len > DCM_UNDEFINED_LENGTH - 2)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "a frame of %zu bytes cannot be one fragment", len);
    bool odd = len % 2 != 0;
    bool fill = odd && w->jpeg_fill && len >= 2 && data[len - 2] == 0xFF &&
                data[len - 1] == 0xD9;
    int rc = grow(w, err);
    if (rc < 0)
        return rc;
    uint8_t *copy = malloc(len + odd);
    if (!copy)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a frame");
    if (fill) {
        /* ... FF D9 -> ... FF FF D9 */
        memcpy(copy, data, len - 2);
        memcpy(copy + len - 2, "\xFF\xFF\xD9", 3);
    } else {
        memcpy(copy, data, len);
        if (odd)
            copy[len] = 0x00;
    }
    w->frames[w->count] = copy;
    w->lengths[w->count] = len + odd;
    w->count++;
    return DCM_OK;
}

static void put_le(uint8_t *p, uint64_t value, size_t width)
{
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

/* Offsets of each frame's item from the first one's, and whether one of
 * them passes max_basic_offset. */
static bool frame_offsets(const codec_writer *w, uint64_t *offsets,
                          uint64_t max_basic_offset)
{
    uint64_t at = 0;
    bool extended = false;
    for (size_t i = 0; i < w->count; i++) {
        offsets[i] = at;
        extended |= at > max_basic_offset;
        at += 8 + w->lengths[i];
    }
    return extended;
}

static int set_tables(const codec_writer *w, dcm_dataset *ds,
                      dcm_element *pixel, const uint64_t *offsets,
                      bool extended, dcm_error *err)
{
    size_t width = extended ? 8 : 4;
    uint8_t *table = malloc(w->count * width);
    uint8_t *lengths = malloc(w->count * 8);
    int rc = DCM_OK;
    if (!table || !lengths)
        rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for offsets");
    for (size_t i = 0; rc == DCM_OK && i < w->count; i++) {
        put_le(table + i * width, offsets[i], width);
        put_le(lengths + i * 8, w->lengths[i], 8);
    }
    if (rc == DCM_OK && !extended)
        rc = dcm_element_set_fragment(pixel, 0, table, w->count * 4, err);
    if (rc == DCM_OK && extended)
        rc = dcm_dataset_set_bytes(ds, DCM_TAG_EXTENDED_OFFSET_TABLE,
                                   DCM_VR_OV, table, w->count * 8, err);
    if (rc == DCM_OK && extended)
        rc = dcm_dataset_set_bytes(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS,
                                   DCM_VR_OV, lengths, w->count * 8, err);
    free(table);
    free(lengths);
    return rc;
}

int codec_writer_finish_bounded(codec_writer *w, dcm_dataset *ds,
                                uint64_t max_basic_offset, dcm_error *err)
{
    if (w->count == 0)
        return dcm_fail(err, DCM_E_ARG, -1, "no frames to encapsulate");
    uint64_t *offsets = malloc(w->count * sizeof *offsets);
    if (!offsets)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for offsets");
    bool extended = frame_offsets(w, offsets, max_basic_offset);
    dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
    dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS);
    dcm_element *pixel =
        dcm_dataset_set_fragments(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, err);
    int rc = pixel ? DCM_OK : (err ? err->code : DCM_E_NOMEM);
    for (size_t i = 0; rc == DCM_OK && i < w->count; i++)
        rc = dcm_element_append_fragment(pixel, w->frames[i],
                                         (size_t)w->lengths[i], err);
    if (rc == DCM_OK)
        rc = set_tables(w, ds, pixel, offsets, extended, err);
    free(offsets);
    if (rc < 0) {
        /* Never leave half-written pixel data behind. */
        dcm_dataset_remove(ds, DCM_TAG_PIXEL_DATA);
        dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
        dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS);
        return rc;
    }
    dcm_dataset_set_syntax(ds, w->ts);
    return DCM_OK;
}

int codec_writer_finish(codec_writer *w, dcm_dataset *ds, dcm_error *err)
{
    return codec_writer_finish_bounded(w, ds, UINT32_MAX, err);
}
