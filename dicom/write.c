/* write.c - writing datasets and Part 10 files (PS3.10 7.1, PS3.5 7).
 *
 * Choices made here, the same for every output:
 * - Sequences and items are written with undefined lengths and delimiters:
 *   the writer streams (no pass to measure nested lengths first), and
 *   readers recognise sequences even in implicit VR output where they do
 *   not know a private tag.
 * - Group length elements (gggg,0000) are dropped; the file meta gets a
 *   fresh (0002,0000). File meta elements found inside a dataset are
 *   dropped too: the meta is ours to write.
 * - Values are padded to even length with the VR's padding byte.
 * - A value too long for a 16-bit length field is written as UN in
 *   explicit VR (PS3.5 6.2.2 note), as DCMTK does.
 * - Referenced values are copied from their source in chunks, byte-swapped
 *   from big endian input on the way. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define OUT_BUFFER_BYTES (256u << 10)
#define COPY_CHUNK_BYTES (1u << 20)

/* DICOMDIR (PS3.10 8): directory records point at each other by their
 * byte offset from the start of the file. Rewriting moves every record, so
 * a DICOMDIR is written twice: the first pass only counts bytes and notes
 * where each record lands; the second writes, translating each offset from
 * the record it pointed to in the input to where that record is now. */
typedef struct record_move {
    uint64_t from, to;
} record_move;

typedef struct relocation {
    const dcm_element *records; /* the Directory Record Sequence */
    record_move *moves;         /* sorted by from after the first pass */
    size_t count, capacity;
    bool measuring;             /* first pass */
} relocation;

typedef struct writer {
    dcm_write_fn write;
    void *ctx;
    uint8_t *buf;
    size_t len;
    uint64_t position;  /* bytes emitted so far (before any deflate) */
    int out_fd;         /* the output file when writing to one, else -1 */
    bool explicit_vr;
    z_stream *deflate;  /* non-NULL while writing a deflated dataset */
    relocation *dicomdir; /* non-NULL while writing a DICOMDIR */
    dcm_error *err;
} writer;

/* ---- output --------------------------------------------------------------- */

static int sink(writer *w, const void *data, size_t len)
{
    if (len == 0)
        return DCM_OK;
    if (w->write(w->ctx, data, len) < 0)
        return dcm_fail(w->err, DCM_E_IO, -1, "write failed: %s",
                        strerror(errno));
    return DCM_OK;
}

/* Pushes bytes through zlib (flush_mode Z_NO_FLUSH or Z_FINISH) to sink. */
static int deflate_out(writer *w, const uint8_t *data, size_t len,
                       int flush_mode)
{
    uint8_t out[64 << 10];
    z_stream *z = w->deflate;
    z->next_in = (Bytef *)data;
    z->avail_in = (uInt)len;
    int zrc;
    do {
        z->next_out = out;
        z->avail_out = sizeof out;
        zrc = deflate(z, flush_mode);
        if (zrc == Z_STREAM_ERROR)
            return dcm_fail(w->err, DCM_E_INVALID, -1, "deflate failed");
        int rc = sink(w, out, sizeof out - z->avail_out);
        if (rc < 0)
            return rc;
    } while (z->avail_out == 0 ||
             (flush_mode == Z_FINISH && zrc != Z_STREAM_END));
    return DCM_OK;
}

static int flush(writer *w)
{
    int rc = w->deflate ? deflate_out(w, w->buf, w->len, Z_NO_FLUSH)
                        : sink(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

static int emit(writer *w, const void *data, size_t len)
{
    w->position += len;
    if (w->len + len > OUT_BUFFER_BYTES) {
        int rc = flush(w);
        if (rc < 0)
            return rc;
        if (len > OUT_BUFFER_BYTES / 2) /* large: skip the copy */
            return w->deflate ? deflate_out(w, data, len, Z_NO_FLUSH)
                              : sink(w, data, len);
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return DCM_OK;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

/* ---- element headers ------------------------------------------------------ */

static int emit_tag_length(writer *w, uint32_t tag, uint32_t length)
{
    uint8_t h[8];
    put16(h, DCM_TAG_GROUP(tag));
    put16(h + 2, DCM_TAG_ELEMENT(tag));
    put32(h + 4, length);
    return emit(w, h, sizeof h);
}

/* The VR to put on the wire: what we know, UN for unknown and for values
 * that do not fit their VR's 16-bit length. */
static dcm_vr wire_vr(dcm_vr vr, uint32_t length)
{
    if (vr == DCM_VR_NONE)
        return DCM_VR_UN;
    if (!dcm_vr_has_long_length(vr) && length > 0xFFFF &&
        length != DCM_UNDEFINED_LENGTH)
        return DCM_VR_UN;
    return vr;
}

static int emit_header(writer *w, uint32_t tag, dcm_vr vr, uint32_t length)
{
    if (!w->explicit_vr)
        return emit_tag_length(w, tag, length);
    vr = wire_vr(vr, length);
    const char *name = dcm_vr_name(vr);
    uint8_t h[12];
    put16(h, DCM_TAG_GROUP(tag));
    put16(h + 2, DCM_TAG_ELEMENT(tag));
    h[4] = (uint8_t)name[0];
    h[5] = (uint8_t)name[1];
    if (!dcm_vr_has_long_length(vr)) {
        put16(h + 6, (uint16_t)length);
        return emit(w, h, 8);
    }
    put16(h + 6, 0);
    put32(h + 8, length);
    return emit(w, h, 12);
}

/* ---- values ----------------------------------------------------------------- */

/* Writes a value's bytes and its padding (to even length). */
/* A referenced value straight from its file into the output file by the
 * kernel (copy_file_range: no copy through user space, a reflink on file
 * systems that can). DCM_E_UNSUPPORTED when this path does not apply or
 * the kernel declines before anything was copied: the caller then copies
 * through a buffer. */
static int kernel_copy(writer *w, const dcm_value *v, const dcm_source *src)
{
    int in_fd = dcm_source_fd(src);
    if (w->out_fd < 0 || in_fd < 0 || w->deflate || v->swap_unit)
        return DCM_E_UNSUPPORTED;
    int rc = flush(w);
    if (rc < 0)
        return rc;
    loff_t in_at = (loff_t)v->u.offset;
    uint64_t left = v->length;
    while (left > 0) {
        size_t want = left < (1u << 30) ? (size_t)left : (1u << 30);
        ssize_t copied = copy_file_range(in_fd, &in_at, w->out_fd, NULL, want,
                                         0);
        if (copied < 0 && errno == EINTR)
            continue;
        if (copied <= 0 && left == v->length &&
            (copied == 0 || errno == EXDEV || errno == ENOSYS ||
             errno == EINVAL || errno == EOPNOTSUPP))
            return DCM_E_UNSUPPORTED;
        if (copied <= 0)
            return dcm_fail(w->err, copied == 0 ? DCM_E_TRUNCATED : DCM_E_IO, -1,
                            "copying a value: %s",
                            copied == 0 ? "the input ended" : strerror(errno));
        left -= (uint64_t)copied;
    }
    w->position += v->length;
    return DCM_OK;
}

static int emit_value(writer *w, const dcm_value *v, const dcm_source *src,
                      uint8_t padding)
{
    int rc;
    if (v->storage == DCM_STORE_INLINE) {
        rc = emit(w, v->u.bytes, (size_t)v->length);
    } else if ((rc = kernel_copy(w, v, src)) != DCM_E_UNSUPPORTED) {
        /* copied, or failed for good */
    } else {
        uint8_t *chunk = malloc(COPY_CHUNK_BYTES);
        if (!chunk)
            return dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
        rc = DCM_OK;
        for (uint64_t at = 0; at < v->length && rc == DCM_OK;) {
            size_t n = v->length - at < COPY_CHUNK_BYTES
                           ? (size_t)(v->length - at) : COPY_CHUNK_BYTES;
            rc = dcm_value_read(v, src, at, chunk, n, w->err);
            if (rc == DCM_OK)
                rc = emit(w, chunk, n);
            at += n;
        }
        free(chunk);
    }
    if (rc == DCM_OK && v->length % 2)
        rc = emit(w, &padding, 1);
    return rc;
}

static int even_length(uint64_t length, uint32_t tag, dcm_error *err,
                       uint32_t *out)
{
    uint64_t padded = length + (length % 2);
    if (padded >= DCM_UNDEFINED_LENGTH)
        return dcm_fail(err, DCM_E_LIMIT, -1, "(%04X,%04X): value of %llu "
                        "bytes is too long for DICOM", DCM_TAG_GROUP(tag),
                        DCM_TAG_ELEMENT(tag), (unsigned long long)length);
    *out = (uint32_t)padded;
    return DCM_OK;
}

static int write_items(writer *w, const dcm_dataset *ds, bool top_level);

/* First DICOMDIR pass: where a directory record item starts now. */
static int note_record(writer *w, const dcm_dataset *record)
{
    relocation *dir = w->dicomdir;
    if (dir->count == dir->capacity) {
        size_t capacity = dir->capacity ? dir->capacity * 2 : 64;
        record_move *bigger = realloc(dir->moves, capacity * sizeof *bigger);
        if (!bigger)
            return dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
        dir->moves = bigger;
        dir->capacity = capacity;
    }
    dir->moves[dir->count++] =
        (record_move){.from = record->input_offset, .to = w->position};
    return DCM_OK;
}

static int write_sequence(writer *w, const dcm_element *el)
{
    bool records = w->dicomdir && w->dicomdir->measuring &&
                   el == w->dicomdir->records;
    int rc = emit_header(w, el->tag, DCM_VR_SQ, DCM_UNDEFINED_LENGTH);
    for (size_t i = 0; i < el->u.seq.count && rc == DCM_OK; i++) {
        if (records)
            rc = note_record(w, el->u.seq.items[i]);
        if (rc == DCM_OK)
            rc = emit_tag_length(w, DCM_TAG_ITEM, DCM_UNDEFINED_LENGTH);
        if (rc == DCM_OK)
            rc = write_items(w, el->u.seq.items[i], false);
        if (rc == DCM_OK)
            rc = emit_tag_length(w, DCM_TAG_ITEM_DELIMITATION, 0);
    }
    if (rc == DCM_OK)
        rc = emit_tag_length(w, DCM_TAG_SEQUENCE_DELIMITATION, 0);
    return rc;
}

static int write_fragments(writer *w, const dcm_element *el)
{
    dcm_vr vr = el->vr == DCM_VR_OW ? DCM_VR_OW : DCM_VR_OB;
    int rc = emit_header(w, el->tag, vr, DCM_UNDEFINED_LENGTH);
    for (size_t i = 0; i < el->u.frag.count && rc == DCM_OK; i++) {
        const dcm_value *frag = &el->u.frag.frags[i];
        uint32_t length = 0;
        rc = even_length(frag->length, el->tag, w->err, &length);
        if (rc == DCM_OK)
            rc = emit_tag_length(w, DCM_TAG_ITEM, length);
        if (rc == DCM_OK)
            rc = emit_value(w, frag, el->source, 0);
    }
    if (rc == DCM_OK)
        rc = emit_tag_length(w, DCM_TAG_SEQUENCE_DELIMITATION, 0);
    return rc;
}

/* The DICOMDIR elements whose values are offsets of directory records. */
static bool is_record_offset(uint32_t tag)
{
    return tag == DCM_TAG(0x0004, 0x1200) || tag == DCM_TAG(0x0004, 0x1202) ||
           tag == DCM_TAG(0x0004, 0x1400) || tag == DCM_TAG(0x0004, 0x1420);
}

static int compare_moves(const void *a, const void *b)
{
    const record_move *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* Second DICOMDIR pass: an offset, moved to where its record is now (0
 * means "none" and stays 0). */
static int write_record_offset(writer *w, const dcm_element *el)
{
    uint8_t value[4];
    if (el->u.value.length != 4 ||
        dcm_value_read(&el->u.value, el->source, 0, value, 4, w->err) < 0)
        return dcm_fail(w->err, DCM_E_INVALID, -1, "(%04X,%04X) is not a "
                        "4-byte offset", DCM_TAG_GROUP(el->tag),
                        DCM_TAG_ELEMENT(el->tag));
    uint64_t from = (uint64_t)value[0] | (uint64_t)value[1] << 8 |
                    (uint64_t)value[2] << 16 | (uint64_t)value[3] << 24;
    uint64_t to = 0;
    if (from != 0) {
        record_move key = {.from = from};
        const record_move *move =
            w->dicomdir->count == 0
                ? NULL
                : bsearch(&key, w->dicomdir->moves, w->dicomdir->count,
                          sizeof key, compare_moves);
        if (!move)
            return dcm_fail(w->err, DCM_E_INVALID, -1, "(%04X,%04X): offset "
                            "%llu points to no directory record",
                            DCM_TAG_GROUP(el->tag), DCM_TAG_ELEMENT(el->tag),
                            (unsigned long long)from);
        to = move->to;
    }
    if (to > UINT32_MAX)
        return dcm_fail(w->err, DCM_E_LIMIT, -1, "DICOMDIR larger than 4 GiB");
    put32(value, (uint32_t)to);
    int rc = emit_header(w, el->tag, DCM_VR_UL, 4);
    return rc < 0 ? rc : emit(w, value, 4);
}

static int write_element(writer *w, const dcm_element *el)
{
    if (w->dicomdir && !w->dicomdir->measuring && is_record_offset(el->tag) &&
        el->kind == DCM_KIND_VALUE)
        return write_record_offset(w, el);
    switch (el->kind) {
    case DCM_KIND_SEQUENCE:
        return write_sequence(w, el);
    case DCM_KIND_FRAGMENTS:
        return write_fragments(w, el);
    default: {
        uint32_t length = 0;
        int rc = even_length(el->u.value.length, el->tag, w->err, &length);
        if (rc == DCM_OK)
            rc = emit_header(w, el->tag, (dcm_vr)el->vr, length);
        if (rc == DCM_OK)
            rc = emit_value(w, &el->u.value, el->source,
                            dcm_vr_padding((dcm_vr)el->vr));
        return rc;
    }
    }
}

/* Elements that a written dataset never carries (see the top comment). */
static bool dropped(uint32_t tag, bool top_level)
{
    if (DCM_TAG_ELEMENT(tag) == 0x0000)
        return true;
    return top_level && DCM_TAG_GROUP(tag) == 0x0002;
}

static int write_items(writer *w, const dcm_dataset *ds, bool top_level)
{
    for (size_t i = 0; i < ds->count; i++) {
        const dcm_element *el = &ds->elements[i];
        if (dropped(el->tag, top_level))
            continue;
        int rc = write_element(w, el);
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

/* ---- transfer syntax checks ------------------------------------------------- */

static bool encapsulated_pixels(const dcm_dataset *ds)
{
    const dcm_element *pixels = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    return pixels && pixels->kind == DCM_KIND_FRAGMENTS;
}

/* The syntax to write ds in: the one asked for, else the dataset's own
 * encapsulated syntax if its pixel data is encapsulated, else Explicit VR
 * Little Endian. */
static const dcm_ts *target_syntax(const dcm_dataset *ds, const char *uid,
                                   dcm_error *err)
{
    const dcm_ts *ts;
    if (uid)
        ts = dcm_ts_find(uid);
    else if (ds->syntax && ds->syntax->encapsulated && encapsulated_pixels(ds))
        ts = ds->syntax;
    else
        ts = dcm_ts_find(DCM_TS_EXPLICIT_LE);
    if (!ts) {
        dcm_fail(err, DCM_E_UNSUPPORTED, -1, "unknown transfer syntax "
                 "\"%.64s\"", uid);
        return NULL;
    }
    if (ts->big_endian) {
        dcm_fail(err, DCM_E_UNSUPPORTED, -1, "writing %s is not supported "
                 "(retired by the standard)", ts->name);
        return NULL;
    }
    return ts;
}

/* Pixel data can only be written in the syntax it is encoded in:
 * changing between native and encapsulated or between codecs is the
 * codec module's job. */
static int check_pixel_encoding(const dcm_dataset *ds, const dcm_ts *ts,
                                dcm_error *err)
{
    const dcm_element *pixels = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    if (!pixels)
        return DCM_OK;
    bool encapsulated = pixels->kind == DCM_KIND_FRAGMENTS;
    if (encapsulated && ts->encapsulated && ds->syntax == ts)
        return DCM_OK;
    if (!encapsulated && !ts->encapsulated)
        return DCM_OK;
    const char *have = encapsulated && ds->syntax ? ds->syntax->name
                       : encapsulated             ? "an encapsulated syntax"
                                                  : "native (uncompressed)";
    return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                    "pixel data is encoded as %s; writing it as %s needs "
                    "transcoding", have, ts->name);
}

static const dcm_element *directory_records(const dcm_dataset *ds);

/* ---- datasets ---------------------------------------------------------------- */

static int write_body(writer *w, const dcm_dataset *ds, const dcm_ts *ts,
                      int level)
{
    w->explicit_vr = ts->explicit_vr;
    z_stream z;
    if (ts->deflated) {
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, level, Z_DEFLATED, -MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return dcm_fail(w->err, DCM_E_NOMEM, -1, "cannot start deflate");
        w->deflate = &z;
    }
    int rc = write_items(w, ds, true);
    if (rc == DCM_OK)
        rc = flush(w);
    if (w->deflate) {
        if (rc == DCM_OK)
            rc = deflate_out(w, NULL, 0, Z_FINISH);
        /* PS3.5 A.5: an odd-length deflated stream gets one trailing NUL,
         * so that files and network fragments keep even lengths. */
        static const uint8_t pad = 0;
        if (rc == DCM_OK && z.total_out % 2)
            rc = sink(w, &pad, 1);
        deflateEnd(&z);
        w->deflate = NULL;
    }
    return rc;
}

static int writer_init(writer *w, dcm_write_fn fn, void *ctx, dcm_error *err)
{
    memset(w, 0, sizeof *w);
    w->write = fn;
    w->ctx = ctx;
    w->err = err;
    w->out_fd = fn == dcm_fd_writer ? *(const int *)ctx : -1;
    w->buf = malloc(OUT_BUFFER_BYTES);
    if (!w->buf)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    return DCM_OK;
}

int dcm_write_check(const dcm_dataset *ds, const char *ts_uid,
                    dcm_error *err)
{
    const dcm_ts *ts = target_syntax(ds, ts_uid, err);
    if (!ts)
        return err ? err->code : DCM_E_UNSUPPORTED;
    int rc = check_pixel_encoding(ds, ts, err);
    if (rc < 0)
        return rc;
    if (directory_records(ds))
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "a DICOMDIR is a file "
                        "(its offsets count from the file meta), not a "
                        "dataset to send");
    return DCM_OK;
}

int dcm_write_dataset(const dcm_dataset *ds, const char *ts_uid,
                      dcm_write_fn write, void *ctx, dcm_error *err)
{
    int rc = dcm_write_check(ds, ts_uid, err);
    if (rc < 0)
        return rc;
    const dcm_ts *ts = target_syntax(ds, ts_uid, err);
    writer w;
    if ((rc = writer_init(&w, write, ctx, err)) < 0)
        return rc;
    rc = write_body(&w, ds, ts, Z_DEFAULT_COMPRESSION);
    free(w.buf);
    return rc;
}

/* ---- file meta (PS3.10 7.1) -------------------------------------------------- */

/* A string value of ds, or NULL if absent or not a string. Owned. */
static char *string_of(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el ? dcm_element_get_string(el, NULL) : NULL;
}

static int add_meta_uid(dcm_dataset *meta, uint32_t tag, const char *uid,
                        const char *what, dcm_error *err)
{
    if (!uid || !*uid)
        return dcm_fail(err, DCM_E_INVALID, -1, "the dataset has no %s, "
                        "which a file meta needs", what);
    return dcm_dataset_set_string(meta, tag, DCM_VR_UI, uid, err);
}

static int add_meta_text(dcm_dataset *meta, uint32_t tag, dcm_vr vr,
                         const char *text, dcm_error *err)
{
    return text ? dcm_dataset_set_string(meta, tag, vr, text, err) : DCM_OK;
}

/* The meta elements after the group length (PS3.10 7.1). */
static int fill_meta(dcm_dataset *meta, const dcm_meta *m, dcm_error *err)
{
    static const uint8_t version[2] = {0x00, 0x01};
    int rc = dcm_dataset_set_bytes(meta, DCM_TAG_FILE_META_VERSION, DCM_VR_OB,
                                   version, sizeof version, err);
    if (rc == DCM_OK)
        rc = add_meta_uid(meta, DCM_TAG_MEDIA_SOP_CLASS_UID, m->sop_class_uid,
                          "SOP Class UID", err);
    if (rc == DCM_OK)
        rc = add_meta_uid(meta, DCM_TAG_MEDIA_SOP_INSTANCE_UID,
                          m->sop_instance_uid, "SOP Instance UID", err);
    if (rc == DCM_OK)
        rc = dcm_dataset_set_string(meta, DCM_TAG_TRANSFER_SYNTAX_UID,
                                    DCM_VR_UI, m->ts_uid, err);
    if (rc == DCM_OK)
        rc = dcm_dataset_set_string(meta, DCM_TAG_IMPLEMENTATION_CLASS_UID,
                                    DCM_VR_UI, DCM_IMPLEMENTATION_CLASS_UID,
                                    err);
    if (rc == DCM_OK)
        rc = dcm_dataset_set_string(meta, DCM_TAG_IMPLEMENTATION_VERSION_NAME,
                                    DCM_VR_SH, DCM_IMPLEMENTATION_VERSION_NAME,
                                    err);
    if (rc == DCM_OK)
        rc = add_meta_text(meta, DCM_TAG_SOURCE_AE_TITLE, DCM_VR_AE,
                           m->source_ae_title, err);
    if (rc == DCM_OK)
        rc = add_meta_text(meta, DCM_TAG(0x0002, 0x0017), DCM_VR_AE,
                           m->sending_ae_title, err);
    if (rc == DCM_OK)
        rc = add_meta_text(meta, DCM_TAG(0x0002, 0x0018), DCM_VR_AE,
                           m->receiving_ae_title, err);
    if (rc == DCM_OK)
        rc = add_meta_text(meta, DCM_TAG(0x0002, 0x0027), DCM_VR_UR,
                           m->sending_address, err);
    if (rc == DCM_OK && m->private_creator_uid && m->private_info) {
        rc = dcm_dataset_set_string(meta, DCM_TAG(0x0002, 0x0100), DCM_VR_UI,
                                    m->private_creator_uid, err);
        if (rc == DCM_OK)
            rc = dcm_dataset_set_bytes(meta, DCM_TAG(0x0002, 0x0102),
                                       DCM_VR_OB, m->private_info,
                                       m->private_info_len, err);
    }
    return rc;
}

/* The meta for ds: SOP UIDs from the options, else from ds. */
static int build_meta(const dcm_dataset *ds, const dcm_ts *ts,
                      const dcm_write_options *opt, dcm_dataset *meta,
                      dcm_error *err)
{
    char *sop_class = string_of(ds, DCM_TAG_SOP_CLASS_UID);
    char *sop_instance = string_of(ds, DCM_TAG_SOP_INSTANCE_UID);
    const char *class_uid = opt && opt->sop_class_uid ? opt->sop_class_uid
                                                      : sop_class;
    const char *instance_uid = opt && opt->sop_instance_uid
                                   ? opt->sop_instance_uid : sop_instance;
    dcm_meta m = {.sop_class_uid = class_uid,
                  .sop_instance_uid = instance_uid,
                  .ts_uid = ts->uid,
                  .source_ae_title = opt ? opt->source_ae_title : NULL};
    int rc = fill_meta(meta, &m, err);
    free(sop_class);
    free(sop_instance);
    return rc;
}

/* Sums the encoded size of the meta elements for (0002,0000). */
static uint32_t meta_group_length(const dcm_dataset *meta)
{
    uint32_t total = 0;
    for (size_t i = 0; i < meta->count; i++) {
        const dcm_element *el = &meta->elements[i];
        uint64_t padded = el->u.value.length + el->u.value.length % 2;
        total += (dcm_vr_has_long_length((dcm_vr)el->vr) ? 12u : 8u) +
                 (uint32_t)padded;
    }
    return total;
}

static int write_meta(writer *w, const dcm_dataset *meta)
{
    static const uint8_t preamble[128];
    uint8_t group_length[4];
    put32(group_length, meta_group_length(meta));
    w->explicit_vr = true;
    int rc = emit(w, preamble, sizeof preamble);
    if (rc == DCM_OK)
        rc = emit(w, "DICM", 4);
    if (rc == DCM_OK)
        rc = emit_header(w, DCM_TAG_FILE_META_GROUP_LENGTH, DCM_VR_UL, 4);
    if (rc == DCM_OK)
        rc = emit(w, group_length, sizeof group_length);
    for (size_t i = 0; i < meta->count && rc == DCM_OK; i++)
        rc = write_element(w, &meta->elements[i]);
    if (rc == DCM_OK)
        rc = flush(w);
    return rc;
}

int dcm_write_meta(const dcm_meta *m, dcm_write_fn write, void *ctx,
                   dcm_error *err)
{
    dcm_dataset *meta = dcm_dataset_new();
    if (!meta)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    writer w;
    int rc = fill_meta(meta, m, err);
    if (rc == DCM_OK && (rc = writer_init(&w, write, ctx, err)) == DCM_OK) {
        rc = write_meta(&w, meta);
        free(w.buf);
    }
    dcm_dataset_free(meta);
    return rc;
}

static int discard(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

/* Meta then dataset, through a fresh writer. */
static int write_pass(const dcm_dataset *ds, const dcm_dataset *meta,
                      const dcm_ts *ts, int level, dcm_write_fn write,
                      void *ctx, relocation *dicomdir, dcm_error *err)
{
    writer w;
    int rc = writer_init(&w, write, ctx, err);
    if (rc < 0)
        return rc;
    w.dicomdir = dicomdir;
    rc = write_meta(&w, meta);
    if (rc == DCM_OK)
        rc = write_body(&w, ds, ts, level);
    free(w.buf);
    return rc;
}

static const dcm_element *directory_records(const dcm_dataset *ds)
{
    const dcm_element *el = dcm_dataset_find(ds, DCM_TAG(0x0004, 0x1220));
    return el && el->kind == DCM_KIND_SEQUENCE ? el : NULL;
}

/* The two passes of a DICOMDIR (see struct relocation). */
static int write_dicomdir(const dcm_dataset *ds, const dcm_dataset *meta,
                          const dcm_ts *ts, dcm_write_fn write, void *ctx,
                          dcm_error *err)
{
    if (strcmp(ts->uid, DCM_TS_EXPLICIT_LE) != 0)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "a DICOMDIR is written "
                        "only as Explicit VR Little Endian (PS3.10), not as "
                        "%s", ts->name);
    relocation dir = {.records = directory_records(ds), .measuring = true};
    int rc = write_pass(ds, meta, ts, Z_DEFAULT_COMPRESSION, discard, NULL,
                        &dir, err);
    if (rc == DCM_OK) {
        if (dir.count > 0)
            qsort(dir.moves, dir.count, sizeof *dir.moves, compare_moves);
        dir.measuring = false;
        rc = write_pass(ds, meta, ts, Z_DEFAULT_COMPRESSION, write, ctx, &dir,
                        err);
    }
    free(dir.moves);
    return rc;
}

int dcm_write_file(const dcm_dataset *ds, const dcm_write_options *options,
                   dcm_write_fn write, void *ctx, dcm_error *err)
{
    const dcm_ts *ts = target_syntax(ds, options ? options->transfer_syntax
                                                 : NULL, err);
    if (!ts)
        return err ? err->code : DCM_E_UNSUPPORTED;
    int rc = check_pixel_encoding(ds, ts, err);
    if (rc < 0)
        return rc;
    dcm_dataset *meta = dcm_dataset_new();
    if (!meta)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    rc = build_meta(ds, ts, options, meta, err);
    if (rc == DCM_OK && directory_records(ds))
        rc = write_dicomdir(ds, meta, ts, write, ctx, err);
    else if (rc == DCM_OK)
        rc = write_pass(ds, meta, ts,
                        options ? options->deflate_level
                                : Z_DEFAULT_COMPRESSION,
                        write, ctx, NULL, err);
    dcm_dataset_free(meta);
    return rc;
}

/* ---- files on disk ----------------------------------------------------------- */

int dcm_fd_writer(void *ctx, const void *data, size_t len)
{
    return dcm_write_all(*(const int *)ctx, data, len);
}

/* fsync of the directory makes the rename itself durable. */
static int sync_directory_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int dcm_write_file_path(const dcm_dataset *ds,
                        const dcm_write_options *options, const char *path,
                        dcm_error *err)
{
    char temp[4096];
    if (snprintf(temp, sizeof temp, "%s.tmp-XXXXXX", path) >= (int)sizeof temp)
        return dcm_fail(err, DCM_E_ARG, -1, "path too long");
    int fd = mkostemp(temp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot create %s: %s", temp,
                        strerror(errno));
    int rc = dcm_write_file(ds, options, dcm_fd_writer, &fd, err);
    if (rc == DCM_OK && fsync(fd) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "fsync %s: %s", temp, strerror(errno));
    if (close(fd) < 0 && rc == DCM_OK)
        rc = dcm_fail(err, DCM_E_IO, -1, "close %s: %s", temp, strerror(errno));
    if (rc == DCM_OK && rename(temp, path) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "rename to %s: %s", path,
                      strerror(errno));
    if (rc < 0) {
        unlink(temp);
        return rc;
    }
    if (sync_directory_of(path) < 0)
        return dcm_fail(err, DCM_E_IO, -1, "fsync of the directory of %s: %s",
                        path, strerror(errno));
    return DCM_OK;
}
