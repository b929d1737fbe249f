/* read.c - parsing Part 10 files and bare datasets (PS3.10 7, PS3.5 7).
 *
 * The parser walks the input once. Small values are copied into the tree;
 * values longer than limits.inline_value_bytes and every pixel data
 * fragment stay in the source and are referenced by offset. Every length
 * read from the input is checked against what remains of the input, of the
 * enclosing item or sequence, and against the limits before it is used.
 * Nesting is bounded by limits.max_depth, so the recursion is too. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct dcm_file {
    dcm_source *source; /* what the dataset was parsed from */
    uint64_t dataset_offset; /* in the input, after the meta */
    dcm_dataset *meta;
    dcm_dataset *dataset;
    const dcm_ts *ts;
    bool had_preamble;
};

/* How the bytes at hand are encoded; changes inside CP-246 UN sequences. */
typedef struct encoding {
    bool explicit_vr;
    bool big_endian;
} encoding;

#define NO_END UINT64_MAX /* an undefined-length item: ends at a delimiter */
#define READ_BUFFER_BYTES (256u << 10)

typedef struct reader {
    dcm_source *src;
    uint64_t pos;
    uint64_t size;
    /* A window of an fd source, so that small reads are not syscalls. */
    uint8_t *window;
    uint64_t window_start;
    size_t window_len;
    dcm_limits limits;
    uint64_t element_count;
    uint64_t memory_bytes;
    dcm_warn_fn warn;
    void *warn_ctx;
    dcm_error *err;
} reader;

/* ---- low-level input -------------------------------------------------------- */

static void warnx(reader *r, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warnx(reader *r, uint64_t offset, const char *fmt, ...)
{
    if (!r->warn)
        return;
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    r->warn(r->warn_ctx, (int64_t)offset, message);
}

static uint64_t remaining(const reader *r)
{
    return r->size - r->pos;
}

/* Pointer to the next n bytes (n <= READ_BUFFER_BYTES) without consuming
 * them; NULL with DCM_E_TRUNCATED/IO in r->err. */
static const uint8_t *peek(reader *r, size_t n)
{
    if (remaining(r) < n) {
        dcm_fail(r->err, DCM_E_TRUNCATED, (int64_t)r->pos,
                 "the input ends %llu bytes in, %zu more bytes expected",
                 (unsigned long long)r->size, n - (size_t)remaining(r));
        return NULL;
    }
    const uint8_t *mem = dcm_source_memory(r->src, r->pos);
    if (mem)
        return mem;
    if (r->pos < r->window_start ||
        r->pos + n > r->window_start + r->window_len) {
        uint64_t want = remaining(r) < READ_BUFFER_BYTES ? remaining(r)
                                                        : READ_BUFFER_BYTES;
        if (dcm_source_read(r->src, r->pos, r->window, (size_t)want, r->err) < 0)
            return NULL;
        r->window_start = r->pos;
        r->window_len = (size_t)want;
    }
    return r->window + (r->pos - r->window_start);
}

static const uint8_t *take(reader *r, size_t n)
{
    const uint8_t *p = peek(r, n);
    if (p)
        r->pos += n;
    return p;
}

static uint16_t get16(const uint8_t *p, bool big_endian)
{
    return big_endian ? (uint16_t)(p[0] << 8 | p[1])
                      : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t get32(const uint8_t *p, bool big_endian)
{
    return big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                            (uint32_t)p[2] << 8 | p[3]
                      : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[1] << 8 | p[0];
}

static uint32_t get_tag(const uint8_t *p, bool big_endian)
{
    return DCM_TAG(get16(p, big_endian), get16(p + 2, big_endian));
}

/* ---- element headers ---------------------------------------------------- */

typedef struct header {
    uint64_t offset; /* where the tag starts */
    uint32_t tag;
    dcm_vr vr;       /* as encoded, or DCM_VR_NONE for implicit/items */
    uint32_t length;
} header;

static bool is_delimiter_group(uint32_t tag)
{
    return DCM_TAG_GROUP(tag) == 0xFFFE;
}

static int read_header(reader *r, encoding enc, header *h)
{
    h->offset = r->pos;
    const uint8_t *p = take(r, 8);
    if (!p)
        return r->err ? r->err->code : DCM_E_TRUNCATED;
    h->tag = get_tag(p, enc.big_endian);
    h->vr = DCM_VR_NONE;
    /* Items and delimiters never carry a VR (PS3.5 7.5). */
    if (!enc.explicit_vr || is_delimiter_group(h->tag)) {
        h->length = get32(p + 4, enc.big_endian);
        return DCM_OK;
    }
    h->vr = dcm_vr_from_chars(p[4], p[5]);
    if (h->vr == DCM_VR_NONE)
        return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                        "(%04X,%04X): invalid VR bytes 0x%02X 0x%02X in "
                        "explicit VR data", DCM_TAG_GROUP(h->tag),
                        DCM_TAG_ELEMENT(h->tag), p[4], p[5]);
    if (!dcm_vr_has_long_length(h->vr)) {
        h->length = get16(p + 6, enc.big_endian);
        return DCM_OK;
    }
    /* Two reserved bytes, then a 4-byte length. */
    const uint8_t *len = take(r, 4);
    if (!len)
        return r->err ? r->err->code : DCM_E_TRUNCATED;
    h->length = get32(len, enc.big_endian);
    return DCM_OK;
}

/* ---- the VR when the encoding does not say ------------------------------- */

static dcm_vr private_vr(const dcm_dataset *ds, uint32_t tag)
{
    if (dcm_tag_is_private_creator(tag))
        return DCM_VR_LO;
    char creator[DCM_CREATOR_MAX + 1];
    if (!dcm_dataset_private_creator(ds, tag, creator, sizeof creator))
        return DCM_VR_UN;
    const dcm_dict_entry *entry = dcm_dict_find_private(creator, tag);
    return entry && entry->vr != DCM_VR_NONE ? entry->vr : DCM_VR_UN;
}

/* US or SS for an element whose VR depends on Pixel Representation. */
static dcm_vr pixel_representation_vr(const dcm_dataset *ds, dcm_vr unsigned_vr,
                                      dcm_vr signed_vr)
{
    for (; ds; ds = dcm_dataset_parent(ds)) {
        const dcm_element *pr =
            dcm_dataset_find(ds, DCM_TAG_PIXEL_REPRESENTATION);
        int64_t value;
        if (pr && dcm_element_get_int(pr, 0, &value, NULL) == DCM_OK)
            return value == 1 ? signed_vr : unsigned_vr;
    }
    return unsigned_vr;
}

static dcm_vr implicit_vr(const dcm_dataset *ds, uint32_t tag)
{
    if (DCM_TAG_ELEMENT(tag) == 0x0000)
        return DCM_VR_UL; /* group length */
    if (dcm_tag_is_private(tag))
        return private_vr(ds, tag);
    const dcm_dict_entry *entry = dcm_dict_find(tag);
    if (!entry || entry->vr == DCM_VR_NONE)
        return DCM_VR_UN;
    if (entry->vr == DCM_VR_US && entry->vr_alt == DCM_VR_SS)
        return pixel_representation_vr(ds, DCM_VR_US, DCM_VR_SS);
    return entry->vr;
}

/* ---- values --------------------------------------------------------------- */

/* Memory the tree takes besides values, charged against max_memory_bytes
 * so that a file of many tiny elements or items is bounded too: an element
 * slot (arrays grow by doubling, so up to twice its size), an item's
 * dataset with its first array of elements. */
#define ELEMENT_COST (2 * sizeof(dcm_element))
#define ITEM_COST (sizeof(dcm_dataset) + sizeof(dcm_dataset *) + \
                   8 * sizeof(dcm_element))

static int charge_memory(reader *r, uint64_t bytes, uint64_t offset)
{
    if (!dcm_add_fits(r->memory_bytes, bytes, r->limits.max_memory_bytes))
        return dcm_fail(r->err, DCM_E_LIMIT, (int64_t)offset,
                        "the dataset needs more memory than max_memory_bytes "
                        "(%llu)", (unsigned long long)r->limits.max_memory_bytes);
    r->memory_bytes += bytes;
    return DCM_OK;
}

/* Counts an element or item against max_elements and max_memory_bytes. */
static int count_element(reader *r, uint64_t offset, uint64_t cost)
{
    if (++r->element_count > r->limits.max_elements)
        return dcm_fail(r->err, DCM_E_LIMIT, (int64_t)offset,
                        "more than %llu elements (limit max_elements)",
                        (unsigned long long)r->limits.max_elements);
    return charge_memory(r, cost, offset);
}

/* Checks that a value of length bytes at the current position fits the
 * input, the enclosing item (end) and the value size limit. */
static int check_fits(reader *r, const header *h, uint64_t length,
                      uint64_t end)
{
    if (length > r->limits.max_value_bytes)
        return dcm_fail(r->err, DCM_E_LIMIT, (int64_t)h->offset,
                        "(%04X,%04X): value of %llu bytes is larger than "
                        "max_value_bytes (%llu)", DCM_TAG_GROUP(h->tag),
                        DCM_TAG_ELEMENT(h->tag), (unsigned long long)length,
                        (unsigned long long)r->limits.max_value_bytes);
    if (length > remaining(r))
        return dcm_fail(r->err, DCM_E_TRUNCATED, (int64_t)h->offset,
                        "(%04X,%04X): value of %llu bytes but only %llu bytes "
                        "remain in the input", DCM_TAG_GROUP(h->tag),
                        DCM_TAG_ELEMENT(h->tag), (unsigned long long)length,
                        (unsigned long long)remaining(r));
    if (end != NO_END && length > end - r->pos)
        return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                        "(%04X,%04X): value of %llu bytes runs past the end "
                        "of its item or sequence at offset %llu",
                        DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag),
                        (unsigned long long)length, (unsigned long long)end);
    return DCM_OK;
}

/* An element or item header that itself crosses the end of its enclosing
 * item or sequence. */
static int past_end(reader *r, const header *h, uint64_t end)
{
    return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                    "(%04X,%04X) starts inside but runs past the end of its "
                    "item or sequence at offset %llu", DCM_TAG_GROUP(h->tag),
                    DCM_TAG_ELEMENT(h->tag), (unsigned long long)end);
}

/* Reads a value into el: copied if small, else referenced. */
static int read_value(reader *r, encoding enc, dcm_element *el, uint64_t length)
{
    dcm_value *v = &el->u.value;
    v->length = length;
    size_t unit = dcm_vr_unit_size((dcm_vr)el->vr);
    bool swap = enc.big_endian && unit > 1;
    if (swap && length % unit != 0) {
        warnx(r, r->pos, "(%04X,%04X): %s value of %llu bytes is not a "
              "multiple of %zu; left unswapped", DCM_TAG_GROUP(el->tag),
              DCM_TAG_ELEMENT(el->tag), dcm_vr_name((dcm_vr)el->vr),
              (unsigned long long)length, unit);
        swap = false;
    }
    if (length > r->limits.inline_value_bytes) {
        v->storage = DCM_STORE_REF;
        v->u.offset = r->pos;
        v->swap_unit = swap ? (uint8_t)unit : 0;
        el->source = dcm_source_ref(r->src);
        r->pos += length;
        return DCM_OK;
    }
    int rc = charge_memory(r, length + 1, r->pos);
    if (rc < 0)
        return rc;
    v->storage = DCM_STORE_INLINE;
    v->u.bytes = malloc((size_t)length + 1);
    if (!v->u.bytes)
        return dcm_fail(r->err, DCM_E_NOMEM, (int64_t)r->pos,
                        "out of memory for a %llu-byte value",
                        (unsigned long long)length);
    if (length <= READ_BUFFER_BYTES) { /* usually: from the read window */
        const uint8_t *p = peek(r, (size_t)length);
        if (!p)
            return r->err ? r->err->code : DCM_E_TRUNCATED;
        memcpy(v->u.bytes, p, (size_t)length);
    } else {
        rc = dcm_source_read(r->src, r->pos, v->u.bytes, (size_t)length, r->err);
        if (rc < 0)
            return rc;
    }
    v->u.bytes[length] = 0; /* strings can be read as C strings */
    if (swap)
        dcm_swap_bytes(v->u.bytes, (size_t)length, unit);
    r->pos += length;
    return DCM_OK;
}

/* ---- sequences, items, fragments ----------------------------------------- */

static int parse_items(reader *r, encoding enc, dcm_dataset *ds, uint64_t end,
                       uint32_t depth);

static uint64_t end_of(const reader *r, uint32_t length)
{
    return length == DCM_UNDEFINED_LENGTH ? NO_END : r->pos + length;
}

static int parse_sequence(reader *r, encoding enc, dcm_element *seq,
                          const header *h, uint64_t outer_end, uint32_t depth)
{
    if (depth >= r->limits.max_depth)
        return dcm_fail(r->err, DCM_E_LIMIT, (int64_t)h->offset,
                        "(%04X,%04X): sequences nested deeper than %u "
                        "(limit max_depth)", DCM_TAG_GROUP(h->tag),
                        DCM_TAG_ELEMENT(h->tag), r->limits.max_depth);
    if (h->length != DCM_UNDEFINED_LENGTH) {
        int rc = check_fits(r, h, h->length, outer_end);
        if (rc < 0)
            return rc;
    }
    uint64_t end = end_of(r, h->length);
    for (;;) {
        if (end != NO_END && r->pos == end)
            return DCM_OK;
        header item = {0};
        int rc = read_header(r, (encoding){false, enc.big_endian}, &item);
        if (rc < 0)
            return rc;
        if (end != NO_END && r->pos > end)
            return past_end(r, &item, end);
        if (item.tag == DCM_TAG_SEQUENCE_DELIMITATION) {
            if (end == NO_END)
                return DCM_OK;
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)item.offset,
                            "sequence delimiter inside the defined-length "
                            "sequence (%04X,%04X)", DCM_TAG_GROUP(h->tag),
                            DCM_TAG_ELEMENT(h->tag));
        }
        if (item.tag != DCM_TAG_ITEM)
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)item.offset,
                            "expected an item (FFFE,E000) in sequence "
                            "(%04X,%04X), found (%04X,%04X)",
                            DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag),
                            DCM_TAG_GROUP(item.tag), DCM_TAG_ELEMENT(item.tag));
        if ((rc = count_element(r, item.offset, ITEM_COST)) < 0)
            return rc;
        if (item.length != DCM_UNDEFINED_LENGTH &&
            (rc = check_fits(r, &item, item.length, end)) < 0)
            return rc;
        dcm_dataset *ds = dcm_element_append_item(seq, r->err);
        if (!ds)
            return DCM_E_NOMEM;
        ds->undefined_length = item.length == DCM_UNDEFINED_LENGTH;
        ds->input_offset = item.offset;
        rc = parse_items(r, enc, ds, end_of(r, item.length), depth + 1);
        if (rc < 0)
            return rc;
        if (end != NO_END && r->pos > end)
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)item.offset,
                            "item runs past the end of sequence (%04X,%04X)",
                            DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag));
    }
}

static int add_fragment(reader *r, dcm_element *el, const header *item)
{
    size_t count = el->u.frag.count;
    if (count >= r->limits.max_fragments)
        return dcm_fail(r->err, DCM_E_LIMIT, (int64_t)item->offset,
                        "more than %llu pixel data fragments "
                        "(limit max_fragments)",
                        (unsigned long long)r->limits.max_fragments);
    int rc = charge_memory(r, 2 * sizeof(dcm_value), item->offset);
    if (rc < 0)
        return rc;
    if (count == el->u.frag.capacity) {
        size_t capacity = count ? count * 2 : 8;
        dcm_value *bigger = realloc(el->u.frag.frags, capacity * sizeof *bigger);
        if (!bigger)
            return dcm_fail(r->err, DCM_E_NOMEM, (int64_t)item->offset,
                            "out of memory for fragment %zu", count);
        el->u.frag.frags = bigger;
        el->u.frag.capacity = capacity;
    }
    dcm_value *frag = &el->u.frag.frags[el->u.frag.count++];
    memset(frag, 0, sizeof *frag);
    frag->storage = DCM_STORE_REF;
    frag->length = item->length;
    frag->u.offset = r->pos;
    r->pos += item->length;
    return DCM_OK;
}

/* Encapsulated pixel data (PS3.5 A.4): items, the first being the Basic
 * Offset Table, then a sequence delimiter. Fragments stay in the source. */
static int parse_fragments(reader *r, dcm_element *el, const header *h,
                           uint64_t outer_end)
{
    el->kind = DCM_KIND_FRAGMENTS;
    el->source = dcm_source_ref(r->src);
    for (;;) {
        header item = {0};
        int rc = read_header(r, (encoding){false, false}, &item);
        if (rc < 0)
            return rc;
        if (item.tag == DCM_TAG_SEQUENCE_DELIMITATION)
            break;
        if (item.tag != DCM_TAG_ITEM)
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)item.offset,
                            "expected a fragment item (FFFE,E000) in "
                            "encapsulated (%04X,%04X), found (%04X,%04X)",
                            DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag),
                            DCM_TAG_GROUP(item.tag), DCM_TAG_ELEMENT(item.tag));
        if (item.length == DCM_UNDEFINED_LENGTH)
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)item.offset,
                            "pixel data fragment with undefined length");
        if ((rc = check_fits(r, &item, item.length, outer_end)) < 0 ||
            (rc = add_fragment(r, el, &item)) < 0)
            return rc;
        if (item.length % 2)
            warnx(r, item.offset, "pixel data fragment %zu has odd length %u",
                  el->u.frag.count - 1, item.length);
    }
    if (el->u.frag.count == 0)
        return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                        "encapsulated pixel data without a Basic Offset "
                        "Table item");
    if (el->u.frag.frags[0].length % 4)
        return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                        "Basic Offset Table of %llu bytes is not a whole "
                        "number of 32-bit offsets",
                        (unsigned long long)el->u.frag.frags[0].length);
    return DCM_OK;
}

/* ---- elements and datasets ---------------------------------------------- */

/* Where a new element goes: appended in the common case, inserted when the
 * input is out of order, NULL (and *skip) for a duplicate, which DCMTK
 * also ignores. */
static dcm_element *slot_for(reader *r, dcm_dataset *ds, const header *h,
                             bool *skip)
{
    *skip = false;
    size_t count = dcm_dataset_count(ds);
    if (count == 0 || dcm_dataset_at(ds, count - 1)->tag < h->tag)
        return dcm_dataset_append(ds, h->tag, r->err);
    if (dcm_dataset_find(ds, h->tag)) {
        warnx(r, h->offset, "(%04X,%04X) appears twice in one dataset; the "
              "second one is ignored", DCM_TAG_GROUP(h->tag),
              DCM_TAG_ELEMENT(h->tag));
        *skip = true;
        return NULL;
    }
    warnx(r, h->offset, "(%04X,%04X) is out of ascending tag order",
          DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag));
    return dcm_dataset_insert(ds, h->tag, r->err);
}

/* Skips a duplicate element's value, whatever its kind, by parsing it into
 * a scratch dataset that is then dropped. */
static int parse_element(reader *r, encoding enc, dcm_dataset *ds,
                         const header *h, uint64_t end, uint32_t depth);

static int skip_duplicate(reader *r, encoding enc, dcm_dataset *ds,
                          const header *h, uint64_t end, uint32_t depth)
{
    dcm_dataset *scratch = dcm_dataset_new();
    if (!scratch)
        return dcm_fail(r->err, DCM_E_NOMEM, (int64_t)h->offset,
                        "out of memory");
    scratch->parent = ds;
    int rc = parse_element(r, enc, scratch, h, end, depth);
    dcm_dataset_free(scratch);
    return rc;
}

/* A defined-length UN in little endian data whose tag the dictionary
 * knows holds the implicit VR LE encoding of its value (PS3.5 6.2.2), so it
 * is read with the dictionary's VR, as pydicom does: rules and the
 * de-identifier then see PatientName as a PN even when a sender wrote UN.
 * DCM_VR_UN if that does not apply. */
static dcm_vr known_vr_for_un(encoding enc, const dcm_dataset *ds,
                              const header *h)
{
    if (h->vr != DCM_VR_UN || enc.big_endian ||
        h->length == DCM_UNDEFINED_LENGTH)
        return DCM_VR_UN;
    dcm_vr vr = implicit_vr(ds, h->tag);
    if (vr == DCM_VR_UN || vr == DCM_VR_NONE)
        return DCM_VR_UN;
    if (!dcm_vr_has_long_length(vr) && h->length > 0xFFFF)
        return DCM_VR_UN;
    if (h->length % dcm_vr_unit_size(vr))
        return DCM_VR_UN;
    return vr;
}

/* A UN whose dictionary VR is SQ: parsed as an implicit VR LE sequence so
 * that what is inside is visible. If it does not parse, it stays opaque UN
 * bytes (input and the reader's counters are rewound). */
static int parse_un_sequence(reader *r, dcm_element *el, const header *h,
                             uint64_t end, uint32_t depth)
{
    uint64_t start = r->pos;
    uint64_t element_count = r->element_count;
    uint64_t memory_bytes = r->memory_bytes;
    dcm_error attempt = {0};
    dcm_error *caller_err = r->err;
    r->err = &attempt;
    el->vr = DCM_VR_SQ;
    el->kind = DCM_KIND_SEQUENCE;
    int rc = parse_sequence(r, (encoding){false, false}, el, h, end, depth);
    r->err = caller_err;
    if (rc == DCM_OK)
        return DCM_OK;
    if (rc == DCM_E_NOMEM || rc == DCM_E_LIMIT || rc == DCM_E_IO)
        return dcm_fail(r->err, rc, attempt.offset, "%s", attempt.message);
    warnx(r, h->offset, "(%04X,%04X) UN is not the sequence the dictionary "
          "says (%s); kept as UN", DCM_TAG_GROUP(h->tag),
          DCM_TAG_ELEMENT(h->tag), attempt.message);
    dcm_element_clear(el);
    el->vr = DCM_VR_UN;
    el->kind = DCM_KIND_VALUE;
    r->pos = start;
    r->element_count = element_count;
    r->memory_bytes = memory_bytes;
    int fits = check_fits(r, h, h->length, end);
    return fits < 0 ? fits : read_value(r, (encoding){true, false}, el,
                                        h->length);
}

static int parse_element(reader *r, encoding enc, dcm_dataset *ds,
                         const header *h, uint64_t end, uint32_t depth)
{
    int rc = count_element(r, h->offset, ELEMENT_COST);
    if (rc < 0)
        return rc;
    dcm_vr vr = enc.explicit_vr ? h->vr : implicit_vr(ds, h->tag);
    dcm_vr un_as = enc.explicit_vr ? known_vr_for_un(enc, ds, h) : DCM_VR_UN;
    bool undefined = h->length == DCM_UNDEFINED_LENGTH;
    bool skip;
    dcm_element *el = slot_for(r, ds, h, &skip);
    if (skip)
        return skip_duplicate(r, enc, ds, h, end, depth);
    if (!el)
        return DCM_E_NOMEM;
    el->undefined_length = undefined;
    el->vr = (uint8_t)vr;

    if (un_as == DCM_VR_SQ)
        return parse_un_sequence(r, el, h, end, depth);
    if (un_as != DCM_VR_UN)
        el->vr = (uint8_t)un_as;
    if (vr == DCM_VR_SQ || (undefined && vr == DCM_VR_UN)) {
        /* CP-246: an undefined-length UN is a sequence in implicit VR LE. */
        encoding inner = enc;
        if (vr == DCM_VR_UN) {
            inner = (encoding){false, false};
            el->vr = DCM_VR_SQ;
        }
        el->kind = DCM_KIND_SEQUENCE;
        return parse_sequence(r, inner, el, h, end, depth);
    }
    if (undefined) {
        if (h->tag == DCM_TAG_PIXEL_DATA &&
            (vr == DCM_VR_OB || vr == DCM_VR_OW || !enc.explicit_vr))
            return parse_fragments(r, el, h, end);
        return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h->offset,
                        "(%04X,%04X) %s has an undefined length, which only "
                        "sequences and encapsulated pixel data may have",
                        DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag),
                        dcm_vr_name(vr));
    }
    if ((rc = check_fits(r, h, h->length, end)) < 0)
        return rc;
    if (h->length % 2)
        warnx(r, h->offset, "(%04X,%04X) has odd length %u",
              DCM_TAG_GROUP(h->tag), DCM_TAG_ELEMENT(h->tag), h->length);
    el->kind = DCM_KIND_VALUE;
    return read_value(r, enc, el, h->length);
}

/* True if every remaining byte of the input is zero: trailing padding that
 * some writers leave after the dataset (DCMTK reads past it too). */
static bool only_zeros_remain(reader *r)
{
    uint64_t at = r->pos;
    uint8_t chunk[4096];
    while (at < r->size) {
        size_t n = r->size - at < sizeof chunk ? (size_t)(r->size - at)
                                               : sizeof chunk;
        if (dcm_source_read(r->src, at, chunk, n, NULL) < 0)
            return false;
        for (size_t i = 0; i < n; i++)
            if (chunk[i])
                return false;
        at += n;
    }
    return true;
}

/* Zero bytes where a tag should start, and nothing but zeros after them. */
static bool at_zero_padding(reader *r)
{
    size_t n = remaining(r) < 4 ? (size_t)remaining(r) : 4;
    const uint8_t *p = peek(r, n);
    if (!p || (n > 0 && memcmp(p, "\0\0\0\0", n) != 0))
        return false;
    return only_zeros_remain(r);
}

/* Parses elements into ds until end (a defined item length or the end of
 * the input for the top level) or, for NO_END, an item delimiter. */
static int parse_items(reader *r, encoding enc, dcm_dataset *ds, uint64_t end,
                       uint32_t depth)
{
    bool top_level = ds->parent == NULL;
    for (;;) {
        if (end != NO_END && r->pos >= end)
            return DCM_OK;
        if (r->pos == r->size) {
            if (top_level)
                return DCM_OK;
            return dcm_fail(r->err, DCM_E_TRUNCATED, (int64_t)r->pos,
                            "the input ends inside an item");
        }
        if (top_level && at_zero_padding(r)) {
            warnx(r, r->pos, "%llu bytes of zero padding after the dataset",
                  (unsigned long long)remaining(r));
            r->pos = r->size;
            return DCM_OK;
        }
        header h = {0};
        int rc = read_header(r, enc, &h);
        if (rc < 0)
            return rc;
        if (end != NO_END && r->pos > end)
            return past_end(r, &h, end);
        if (h.tag == DCM_TAG_ITEM_DELIMITATION) {
            if (end == NO_END)
                return DCM_OK;
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h.offset,
                            "item delimiter outside an undefined-length item");
        }
        if (is_delimiter_group(h.tag))
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)h.offset,
                            "unexpected (%04X,%04X) among data elements",
                            DCM_TAG_GROUP(h.tag), DCM_TAG_ELEMENT(h.tag));
        if ((rc = parse_element(r, enc, ds, &h, end, depth)) < 0)
            return rc;
    }
}

/* ---- Part 10 framing ------------------------------------------------------ */

static bool has_preamble(reader *r)
{
    if (r->size < 132)
        return false;
    r->pos = 128;
    const uint8_t *magic = peek(r, 4);
    r->pos = 0;
    return magic && memcmp(magic, "DICM", 4) == 0;
}

/* The group of the next tag, read little endian, or 0 at the end. */
static uint16_t next_group_le(reader *r)
{
    const uint8_t *p = remaining(r) >= 4 ? peek(r, 4) : NULL;
    return p ? get16(p, false) : 0;
}

/* The meta group: explicit VR little endian, read while the group is 0002
 * (the group length is checked but not trusted; some writers omit it). */
static int parse_meta(reader *r, dcm_dataset *meta)
{
    uint64_t start = r->pos;
    encoding enc = {true, false};
    while (remaining(r) >= 8 && next_group_le(r) == 0x0002) {
        header h = {0};
        int rc = read_header(r, enc, &h);
        if (rc < 0)
            return rc;
        if ((rc = parse_element(r, enc, meta, &h, NO_END, 0)) < 0)
            return rc;
    }
    dcm_element *group_length =
        dcm_dataset_find(meta, DCM_TAG_FILE_META_GROUP_LENGTH);
    int64_t declared;
    if (!group_length)
        warnx(r, start, "file meta without (0002,0000) group length");
    else if (dcm_element_get_int(group_length, 0, &declared, NULL) == DCM_OK &&
             (uint64_t)declared != r->pos - start - 12)
        warnx(r, start, "file meta group length says %lld bytes, the group "
              "has %llu", (long long)declared,
              (unsigned long long)(r->pos - start - 12));
    return DCM_OK;
}

static const dcm_ts *meta_transfer_syntax(reader *r, const dcm_dataset *meta,
                                          bool *present)
{
    const dcm_element *el = dcm_dataset_find(meta, DCM_TAG_TRANSFER_SYNTAX_UID);
    *present = el != NULL;
    if (!el)
        return NULL;
    char *uid = dcm_element_get_string(el, r->err);
    if (!uid)
        return NULL;
    const dcm_ts *ts = dcm_ts_find(uid);
    if (!ts)
        dcm_fail(r->err, DCM_E_UNSUPPORTED, -1,
                 "unknown transfer syntax \"%.64s\" in the file meta", uid);
    free(uid);
    return ts;
}

/* Guesses the encoding of a dataset without a meta from its first
 * element: the byte order that gives a small group number, explicit if a
 * VR follows the tag. */
static const dcm_ts *detect_syntax(reader *r)
{
    const uint8_t *p = remaining(r) >= 8 ? peek(r, 8) : NULL;
    if (!p)
        return dcm_ts_find(DCM_TS_IMPLICIT_LE);
    if (get16(p, false) > 0x00FF && get16(p, true) > 0x00FF)
        return NULL; /* data sets start with a low group in any order */
    bool big_endian = get16(p, false) > 0x00FF && get16(p, true) <= 0x00FF;
    bool explicit_vr = dcm_vr_from_chars(p[4], p[5]) != DCM_VR_NONE;
    if (big_endian)
        return dcm_ts_find(DCM_TS_EXPLICIT_BE);
    return dcm_ts_find(explicit_vr ? DCM_TS_EXPLICIT_LE : DCM_TS_IMPLICIT_LE);
}

/* ---- deflate (PS3.5 A.5) ------------------------------------------------- */

static int temp_file(const char *dir, dcm_error *err)
{
    if (!dir || !*dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/siren-inflate-XXXXXX", dir) >=
        (int)sizeof path)
        return dcm_fail(err, DCM_E_ARG, -1, "temporary directory path too long");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot create a temporary file in "
                        "%s: %s", dir, strerror(errno));
    unlink(path);
    return fd;
}

/* Inflates the rest of r's input into an unlinked temporary file (so that
 * memory stays bounded), at most max_inflated_bytes, and returns a source
 * over it. */
static dcm_source *inflate_rest(reader *r, const char *temp_dir)
{
    enum { CHUNK = 64 << 10 };
    int fd = temp_file(temp_dir, r->err);
    if (fd < 0)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    uint8_t *in = malloc(CHUNK), *out = malloc(CHUNK);
    if (!in || !out || inflateInit2(&z, -MAX_WBITS) != Z_OK) {
        free(in);
        free(out);
        close(fd);
        dcm_fail(r->err, DCM_E_NOMEM, (int64_t)r->pos, "cannot start inflate");
        return NULL;
    }
    uint64_t inflated = 0, start = r->pos;
    int zrc = Z_OK, rc = DCM_OK;
    while (zrc != Z_STREAM_END && rc == DCM_OK) {
        if (z.avail_in == 0) {
            size_t n = remaining(r) < CHUNK ? (size_t)remaining(r) : CHUNK;
            if (n == 0) {
                rc = dcm_fail(r->err, DCM_E_TRUNCATED, (int64_t)r->pos,
                              "deflated data set ends before its stream does");
                break;
            }
            if ((rc = dcm_source_read(r->src, r->pos, in, n, r->err)) < 0)
                break;
            r->pos += n;
            z.next_in = in;
            z.avail_in = (uInt)n;
        }
        z.next_out = out;
        z.avail_out = CHUNK;
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
            rc = dcm_fail(r->err, DCM_E_INVALID, (int64_t)start,
                          "deflated data set is corrupt: %s",
                          z.msg ? z.msg : "inflate failed");
            break;
        }
        size_t produced = CHUNK - z.avail_out;
        inflated += produced;
        if (inflated > r->limits.max_inflated_bytes)
            rc = dcm_fail(r->err, DCM_E_LIMIT, (int64_t)start,
                          "deflated data set inflates past "
                          "max_inflated_bytes (%llu)",
                          (unsigned long long)r->limits.max_inflated_bytes);
        else if (dcm_write_all(fd, out, produced) < 0)
            rc = dcm_fail(r->err, DCM_E_IO, (int64_t)start,
                          "cannot write the inflated data set: %s",
                          strerror(errno));
    }
    inflateEnd(&z);
    free(in);
    free(out);
    if (rc < 0) {
        close(fd);
        return NULL;
    }
    dcm_source *src = dcm_source_from_fd(fd, inflated);
    if (!src) {
        close(fd);
        dcm_fail(r->err, DCM_E_NOMEM, -1, "out of memory");
    }
    return src;
}

/* ---- files ---------------------------------------------------------------- */

void dcm_file_free(dcm_file *file)
{
    if (!file)
        return;
    dcm_dataset_free(file->meta);
    dcm_dataset_free(file->dataset);
    dcm_source_unref(file->source);
    free(file);
}

/* Switches r to the inflated dataset. Positions in errors then count in
 * the inflated stream, which the message says. */
static int switch_to_inflated(reader *r, dcm_file *file,
                              const dcm_read_options *opt)
{
    if (!r->window && !(r->window = malloc(READ_BUFFER_BYTES)))
        return dcm_fail(r->err, DCM_E_NOMEM, -1, "out of memory");
    dcm_source *inflated = inflate_rest(r, opt ? opt->temp_dir : NULL);
    if (!inflated)
        return r->err ? r->err->code : DCM_E_INVALID;
    dcm_source_unref(file->source);
    file->source = inflated;
    r->src = inflated;
    r->pos = 0;
    r->size = dcm_source_size(inflated);
    r->window_len = 0;
    return DCM_OK;
}

/* A dataset without any Part 10 framing, in the syntax the caller names. */
static int parse_bare(reader *r, dcm_file *file, const dcm_read_options *opt)
{
    file->ts = opt->transfer_syntax ? dcm_ts_find(opt->transfer_syntax) : NULL;
    if (!file->ts)
        return dcm_fail(r->err, DCM_E_ARG, -1, "a bare dataset needs a known "
                        "transfer syntax");
    int rc;
    if (file->ts->deflated && (rc = switch_to_inflated(r, file, opt)) < 0)
        return rc;
    dcm_dataset_set_syntax(file->dataset, file->ts);
    encoding enc = {file->ts->explicit_vr, file->ts->big_endian};
    return parse_items(r, enc, file->dataset, NO_END, 0);
}

static int parse_file(reader *r, dcm_file *file, const dcm_read_options *opt)
{
    if (opt && opt->dataset_only)
        return parse_bare(r, file, opt);
    file->had_preamble = has_preamble(r);
    if (file->had_preamble)
        r->pos = 132;
    int rc;
    if (next_group_le(r) == 0x0002 && (rc = parse_meta(r, file->meta)) < 0)
        return rc;

    bool ts_in_meta;
    file->ts = meta_transfer_syntax(r, file->meta, &ts_in_meta);
    if (ts_in_meta && !file->ts)
        return r->err ? r->err->code : DCM_E_UNSUPPORTED;
    if (!file->ts && opt && opt->transfer_syntax) {
        file->ts = dcm_ts_find(opt->transfer_syntax);
        if (!file->ts)
            return dcm_fail(r->err, DCM_E_ARG, -1, "unknown transfer syntax "
                            "\"%.64s\"", opt->transfer_syntax);
    }
    if (!file->ts) {
        file->ts = detect_syntax(r);
        if (!file->ts)
            return dcm_fail(r->err, DCM_E_INVALID, (int64_t)r->pos,
                            "not DICOM: no \"DICM\" at offset 128, no file "
                            "meta, and no data set starts here");
        if (dcm_dataset_count(file->meta) > 0)
            warnx(r, r->pos, "file meta has no transfer syntax; the data "
                  "looks like %s", file->ts->name);
    }
    file->dataset_offset = r->pos;
    if (file->ts->deflated && (rc = switch_to_inflated(r, file, opt)) < 0)
        return rc;
    dcm_dataset_set_syntax(file->dataset, file->ts);
    encoding enc = {file->ts->explicit_vr, file->ts->big_endian};
    rc = parse_items(r, enc, file->dataset, NO_END, 0);
    if (rc < 0 && file->ts->deflated && r->err) {
        size_t used = strlen(r->err->message);
        snprintf(r->err->message + used, sizeof r->err->message - used,
                 " (offset in the inflated data set)");
    }
    return rc;
}

static dcm_file *open_source(dcm_source *src, const dcm_read_options *opt,
                             dcm_error *err)
{
    dcm_file *file = calloc(1, sizeof *file);
    reader r;
    memset(&r, 0, sizeof r);
    r.err = err;
    bool in_memory = dcm_source_memory(src, 0) != NULL;
    if (!file || !(file->meta = dcm_dataset_new()) ||
        !(file->dataset = dcm_dataset_new()) ||
        (!in_memory && !(r.window = malloc(READ_BUFFER_BYTES)))) {
        free(r.window);
        dcm_file_free(file);
        dcm_source_unref(src);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    file->source = src;
    if (opt && opt->limits)
        r.limits = *opt->limits;
    else
        dcm_limits_default(&r.limits);
    r.warn = opt ? opt->warn : NULL;
    r.warn_ctx = opt ? opt->warn_ctx : NULL;
    r.src = src;
    r.size = dcm_source_size(src);
    int rc = DCM_OK;
    if (r.size > r.limits.max_total_bytes)
        rc = dcm_fail(err, DCM_E_LIMIT, 0, "input of %llu bytes is larger than "
                      "max_total_bytes (%llu)", (unsigned long long)r.size,
                      (unsigned long long)r.limits.max_total_bytes);
    else
        rc = parse_file(&r, file, opt);
    free(r.window);
    if (rc < 0) {
        dcm_file_free(file);
        return NULL;
    }
    return file;
}

dcm_file *dcm_file_open(const char *path, const dcm_read_options *options,
                        dcm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dcm_fail(err, DCM_E_IO, -1, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        dcm_fail(err, DCM_E_IO, -1, "not a regular file");
        close(fd);
        return NULL;
    }
    dcm_source *src = dcm_source_from_fd(fd, (uint64_t)st.st_size);
    if (!src) {
        close(fd);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    return open_source(src, options, err);
}

dcm_file *dcm_file_open_memory(const void *data, size_t len,
                               const dcm_read_options *options, dcm_error *err)
{
    dcm_source *src = dcm_source_from_memory(data, len, false);
    if (!src) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    return open_source(src, options, err);
}

dcm_dataset *dcm_file_meta(const dcm_file *file)
{
    return file->meta;
}

dcm_dataset *dcm_file_dataset(const dcm_file *file)
{
    return file->dataset;
}

const dcm_ts *dcm_file_transfer_syntax(const dcm_file *file)
{
    return file->ts;
}

bool dcm_file_had_preamble(const dcm_file *file)
{
    return file->had_preamble;
}

uint64_t dcm_file_dataset_offset(const dcm_file *file)
{
    return file->dataset_offset;
}

void dcm_limits_default(dcm_limits *limits)
{
    limits->max_depth = DCM_DEFAULT_MAX_DEPTH;
    limits->max_value_bytes = DCM_DEFAULT_MAX_VALUE_BYTES;
    limits->max_elements = DCM_DEFAULT_MAX_ELEMENTS;
    limits->max_fragments = DCM_DEFAULT_MAX_FRAGMENTS;
    limits->max_total_bytes = DCM_DEFAULT_MAX_TOTAL_BYTES;
    limits->max_memory_bytes = DCM_DEFAULT_MAX_MEMORY_BYTES;
    limits->max_inflated_bytes = DCM_DEFAULT_MAX_INFLATED_BYTES;
    limits->inline_value_bytes = DCM_DEFAULT_INLINE_VALUE_BYTES;
}
