/* dataset.c - the dataset tree: elements kept in ascending tag order,
 * sequences of item datasets, encapsulated fragments, and typed accessors. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- datasets ------------------------------------------------------------ */

dcm_dataset *dcm_dataset_new(void)
{
    return calloc(1, sizeof(dcm_dataset));
}

void dcm_dataset_clear(dcm_dataset *ds)
{
    for (size_t i = 0; i < ds->count; i++)
        dcm_element_clear(&ds->elements[i]);
    free(ds->elements);
    ds->elements = NULL;
    ds->count = ds->capacity = 0;
}

void dcm_dataset_free(dcm_dataset *ds)
{
    if (!ds)
        return;
    dcm_dataset_clear(ds);
    free(ds);
}

static void value_clear(dcm_value *v)
{
    if (v->storage == DCM_STORE_INLINE)
        free(v->u.bytes);
    memset(v, 0, sizeof *v);
}

void dcm_element_clear(dcm_element *el)
{
    switch (el->kind) {
    case DCM_KIND_VALUE:
        value_clear(&el->u.value);
        break;
    case DCM_KIND_SEQUENCE:
        for (size_t i = 0; i < el->u.seq.count; i++)
            dcm_dataset_free(el->u.seq.items[i]);
        free(el->u.seq.items);
        break;
    case DCM_KIND_FRAGMENTS:
        for (size_t i = 0; i < el->u.frag.count; i++)
            value_clear(&el->u.frag.frags[i]);
        free(el->u.frag.frags);
        break;
    }
    dcm_source_unref(el->source);
    uint32_t tag = el->tag;
    dcm_dataset *owner = el->owner;
    memset(el, 0, sizeof *el);
    el->tag = tag;
    el->owner = owner;
}

size_t dcm_dataset_count(const dcm_dataset *ds)
{
    return ds->count;
}

dcm_element *dcm_dataset_at(const dcm_dataset *ds, size_t index)
{
    return index < ds->count ? &ds->elements[index] : NULL;
}

/* Index of the first element whose tag is >= tag. */
static size_t lower_bound(const dcm_dataset *ds, uint32_t tag)
{
    size_t low = 0, high = ds->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (ds->elements[mid].tag < tag)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

dcm_element *dcm_dataset_find(const dcm_dataset *ds, uint32_t tag)
{
    size_t at = lower_bound(ds, tag);
    return at < ds->count && ds->elements[at].tag == tag ? &ds->elements[at]
                                                          : NULL;
}

int dcm_dataset_remove(dcm_dataset *ds, uint32_t tag)
{
    size_t at = lower_bound(ds, tag);
    if (at >= ds->count || ds->elements[at].tag != tag)
        return DCM_E_NOT_FOUND;
    dcm_element_clear(&ds->elements[at]);
    memmove(&ds->elements[at], &ds->elements[at + 1],
            (ds->count - at - 1) * sizeof ds->elements[0]);
    ds->count--;
    return DCM_OK;
}

dcm_dataset *dcm_dataset_parent(const dcm_dataset *ds)
{
    return ds->parent;
}

uint32_t dcm_dataset_parent_tag(const dcm_dataset *ds)
{
    return ds->parent_tag;
}

static bool grow(void **array, size_t *capacity, size_t needed,
                 size_t item_size)
{
    if (needed <= *capacity)
        return true;
    size_t wanted = *capacity ? *capacity * 2 : 8;
    if (wanted < needed)
        wanted = needed;
    if (wanted > SIZE_MAX / item_size)
        return false;
    void *bigger = realloc(*array, wanted * item_size);
    if (!bigger)
        return false;
    *array = bigger;
    *capacity = wanted;
    return true;
}

dcm_element *dcm_dataset_insert(dcm_dataset *ds, uint32_t tag, dcm_error *err)
{
    size_t at = lower_bound(ds, tag);
    if (at < ds->count && ds->elements[at].tag == tag) {
        dcm_element_clear(&ds->elements[at]);
        return &ds->elements[at];
    }
    if (!grow((void **)&ds->elements, &ds->capacity, ds->count + 1,
              sizeof ds->elements[0])) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory adding an element");
        return NULL;
    }
    memmove(&ds->elements[at + 1], &ds->elements[at],
            (ds->count - at) * sizeof ds->elements[0]);
    ds->count++;
    dcm_element *el = &ds->elements[at];
    memset(el, 0, sizeof *el);
    el->tag = tag;
    el->owner = ds;
    return el;
}

dcm_element *dcm_dataset_append(dcm_dataset *ds, uint32_t tag, dcm_error *err)
{
    if (!grow((void **)&ds->elements, &ds->capacity, ds->count + 1,
              sizeof ds->elements[0])) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory adding an element");
        return NULL;
    }
    dcm_element *el = &ds->elements[ds->count++];
    memset(el, 0, sizeof *el);
    el->tag = tag;
    el->owner = ds;
    return el;
}

const dcm_ts *dcm_dataset_syntax(const dcm_dataset *ds)
{
    return ds->syntax;
}

void dcm_dataset_set_syntax(dcm_dataset *ds, const dcm_ts *ts)
{
    ds->syntax = ts;
}

/* ---- private blocks (PS3.5 7.8.1) ---------------------------------------- */

/* The creator value of an element, padding removed; NULL if not inline. */
static const char *creator_text(const dcm_element *creator, size_t *len)
{
    if (!creator || creator->kind != DCM_KIND_VALUE ||
        creator->u.value.storage != DCM_STORE_INLINE)
        return NULL;
    const char *text = (const char *)creator->u.value.u.bytes;
    size_t n = (size_t)creator->u.value.length;
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\0'))
        n--;
    *len = n;
    return text;
}

bool dcm_dataset_private_creator(const dcm_dataset *ds, uint32_t tag,
                                 char *buf, size_t size)
{
    if (!dcm_tag_is_private(tag) || DCM_TAG_ELEMENT(tag) < 0x1000)
        return false;
    uint32_t creator_tag =
        DCM_TAG(DCM_TAG_GROUP(tag), DCM_TAG_ELEMENT(tag) >> 8);
    size_t len;
    const char *text = creator_text(dcm_dataset_find(ds, creator_tag), &len);
    if (!text || len >= size)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return true;
}

int dcm_dataset_private_tag(const dcm_dataset *ds, uint16_t group,
                            const char *creator, uint8_t element_byte,
                            uint32_t *tag_out)
{
    size_t want = strlen(creator);
    for (uint16_t block = 0x10; block <= 0xFF; block++) {
        size_t len;
        const char *text =
            creator_text(dcm_dataset_find(ds, DCM_TAG(group, block)), &len);
        if (text && len == want && memcmp(text, creator, len) == 0) {
            *tag_out = DCM_TAG(group, (uint16_t)(block << 8 | element_byte));
            return DCM_OK;
        }
    }
    return DCM_E_NOT_FOUND;
}

/* ---- building ------------------------------------------------------------ */

/* A copy of len bytes followed by a NUL (so that string values can be read
 * as C strings without another copy). */
static uint8_t *copy_with_nul(const void *value, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, value, len);
    copy[len] = 0;
    return copy;
}

static int check_value(uint32_t tag, dcm_vr vr, size_t len, dcm_error *err)
{
    if (vr == DCM_VR_SQ || len > DCM_UNDEFINED_LENGTH - 1)
        return dcm_fail(err, DCM_E_ARG, -1,
                        "(%04X,%04X): not a value for a %s element",
                        DCM_TAG_GROUP(tag), DCM_TAG_ELEMENT(tag),
                        dcm_vr_name(vr));
    return DCM_OK;
}

int dcm_dataset_take_bytes(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                           uint8_t *value, size_t len, dcm_error *err)
{
    int rc = check_value(tag, vr, len, err);
    dcm_element *el = rc == DCM_OK ? dcm_dataset_insert(ds, tag, err) : NULL;
    if (!el) {
        free(value);
        return rc < 0 ? rc : DCM_E_NOMEM;
    }
    value[len] = 0; /* in-memory values are NUL-terminated */
    el->vr = (uint8_t)vr;
    el->kind = DCM_KIND_VALUE;
    el->u.value.storage = DCM_STORE_INLINE;
    el->u.value.length = len;
    el->u.value.u.bytes = value;
    return DCM_OK;
}

int dcm_dataset_set_bytes(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                          const void *value, size_t len, dcm_error *err)
{
    int rc = check_value(tag, vr, len, err);
    if (rc < 0)
        return rc;
    uint8_t *copy = copy_with_nul(value, len);
    if (!copy)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    return dcm_dataset_take_bytes(ds, tag, vr, copy, len, err);
}

int dcm_dataset_set_string(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                           const char *text, dcm_error *err)
{
    return dcm_dataset_set_bytes(ds, tag, vr, text, strlen(text), err);
}

dcm_element *dcm_dataset_set_sequence(dcm_dataset *ds, uint32_t tag,
                                      dcm_error *err)
{
    dcm_element *el = dcm_dataset_insert(ds, tag, err);
    if (el) {
        el->vr = DCM_VR_SQ;
        el->kind = DCM_KIND_SEQUENCE;
    }
    return el;
}

dcm_dataset *dcm_element_append_item(dcm_element *seq, dcm_error *err)
{
    if (seq->kind != DCM_KIND_SEQUENCE) {
        dcm_fail(err, DCM_E_ARG, -1, "not a sequence");
        return NULL;
    }
    dcm_dataset *item = dcm_dataset_new();
    if (!item || !grow((void **)&seq->u.seq.items, &seq->u.seq.capacity,
                       seq->u.seq.count + 1, sizeof(dcm_dataset *))) {
        free(item);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory adding an item");
        return NULL;
    }
    item->parent = seq->owner;
    item->parent_tag = seq->tag;
    seq->u.seq.items[seq->u.seq.count++] = item;
    return item;
}

int dcm_element_remove_item(dcm_element *seq, size_t index, dcm_error *err)
{
    if (seq->kind != DCM_KIND_SEQUENCE || index >= seq->u.seq.count)
        return dcm_fail(err, DCM_E_ARG, -1, "no item %zu to remove", index);
    dcm_dataset_free(seq->u.seq.items[index]);
    memmove(&seq->u.seq.items[index], &seq->u.seq.items[index + 1],
            (seq->u.seq.count - index - 1) * sizeof *seq->u.seq.items);
    seq->u.seq.count--;
    return DCM_OK;
}

dcm_element *dcm_dataset_set_fragments(dcm_dataset *ds, uint32_t tag,
                                       dcm_vr vr, dcm_error *err)
{
    dcm_element *el = dcm_dataset_insert(ds, tag, err);
    if (!el)
        return NULL;
    el->vr = (uint8_t)vr;
    el->kind = DCM_KIND_FRAGMENTS;
    /* Item 0 is the Basic Offset Table, empty until someone fills it. */
    if (dcm_element_append_fragment(el, NULL, 0, err) < 0) {
        dcm_dataset_remove(ds, tag);
        return NULL;
    }
    return el;
}

int dcm_element_append_fragment(dcm_element *el, const void *data, size_t len,
                                dcm_error *err)
{
    if (el->kind != DCM_KIND_FRAGMENTS)
        return dcm_fail(err, DCM_E_ARG, -1, "not encapsulated pixel data");
    uint8_t *copy = copy_with_nul(data, len);
    if (!copy || !grow((void **)&el->u.frag.frags, &el->u.frag.capacity,
                       el->u.frag.count + 1, sizeof(dcm_value))) {
        free(copy);
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory adding a fragment");
    }
    dcm_value *frag = &el->u.frag.frags[el->u.frag.count++];
    memset(frag, 0, sizeof *frag);
    frag->storage = DCM_STORE_INLINE;
    frag->length = len;
    frag->u.bytes = copy;
    return DCM_OK;
}

int dcm_element_set_fragment(dcm_element *el, size_t index, const void *data,
                             size_t len, dcm_error *err)
{
    if (el->kind != DCM_KIND_FRAGMENTS || index >= el->u.frag.count)
        return dcm_fail(err, DCM_E_ARG, -1, "no fragment %zu to set", index);
    uint8_t *copy = copy_with_nul(data, len);
    if (!copy)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory setting a fragment");
    dcm_value *frag = &el->u.frag.frags[index];
    value_clear(frag);
    frag->storage = DCM_STORE_INLINE;
    frag->length = len;
    frag->u.bytes = copy;
    return DCM_OK;
}

/* ---- element accessors ---------------------------------------------------- */

uint32_t dcm_element_tag(const dcm_element *el)
{
    return el->tag;
}

dcm_vr dcm_element_vr(const dcm_element *el)
{
    return (dcm_vr)el->vr;
}

dcm_element_kind dcm_element_kind_of(const dcm_element *el)
{
    return (dcm_element_kind)el->kind;
}

uint64_t dcm_element_length(const dcm_element *el)
{
    return el->kind == DCM_KIND_VALUE ? el->u.value.length : 0;
}

bool dcm_element_had_undefined_length(const dcm_element *el)
{
    return el->undefined_length;
}

const uint8_t *dcm_element_bytes(const dcm_element *el)
{
    if (el->kind != DCM_KIND_VALUE)
        return NULL;
    if (el->u.value.storage == DCM_STORE_INLINE)
        return el->u.value.u.bytes;
    return NULL;
}

int dcm_value_read(const dcm_value *v, const dcm_source *src, uint64_t offset,
                   void *buf, size_t len, dcm_error *err)
{
    if (!dcm_add_fits(offset, len, v->length))
        return dcm_fail(err, DCM_E_ARG, -1,
                        "read of %zu bytes at %llu past a %llu-byte value", len,
                        (unsigned long long)offset,
                        (unsigned long long)v->length);
    if (v->storage == DCM_STORE_INLINE) {
        if (len)
            memcpy(buf, v->u.bytes + offset, len);
        return DCM_OK;
    }
    unsigned unit = v->swap_unit;
    if (unit < 2) {
        return dcm_source_read(src, v->u.offset + offset, buf, len, err);
    }
    /* Big endian source: read whole units around the window, swap them,
     * hand out the part asked for. */
    uint8_t unit_buf[8];
    uint8_t *out = buf;
    while (len > 0) {
        uint64_t unit_start = offset - offset % unit;
        size_t skip = (size_t)(offset - unit_start);
        size_t avail = v->length - unit_start < unit
                           ? (size_t)(v->length - unit_start) : unit;
        if (skip == 0 && len >= unit) {
            size_t whole = len - len % unit;
            int rc = dcm_source_read(src, v->u.offset + offset, out, whole, err);
            if (rc < 0)
                return rc;
            dcm_swap_bytes(out, whole, unit);
            out += whole;
            offset += whole;
            len -= whole;
            continue;
        }
        int rc = dcm_source_read(src, v->u.offset + unit_start, unit_buf,
                                 avail, err);
        if (rc < 0)
            return rc;
        if (avail == unit)
            dcm_swap_bytes(unit_buf, unit, unit);
        size_t take = avail - skip < len ? avail - skip : len;
        memcpy(out, unit_buf + skip, take);
        out += take;
        offset += take;
        len -= take;
    }
    return DCM_OK;
}

int dcm_element_read(const dcm_element *el, uint64_t offset, void *buf,
                     size_t len, dcm_error *err)
{
    if (el->kind != DCM_KIND_VALUE)
        return dcm_fail(err, DCM_E_ARG, -1, "(%04X,%04X) holds no plain value",
                        DCM_TAG_GROUP(el->tag), DCM_TAG_ELEMENT(el->tag));
    return dcm_value_read(&el->u.value, el->source, offset, buf, len, err);
}

size_t dcm_element_item_count(const dcm_element *el)
{
    return el->kind == DCM_KIND_SEQUENCE ? el->u.seq.count : 0;
}

dcm_dataset *dcm_element_item(const dcm_element *el, size_t index)
{
    if (el->kind != DCM_KIND_SEQUENCE || index >= el->u.seq.count)
        return NULL;
    return el->u.seq.items[index];
}

size_t dcm_element_fragment_count(const dcm_element *el)
{
    return el->kind == DCM_KIND_FRAGMENTS ? el->u.frag.count : 0;
}

uint64_t dcm_element_fragment_length(const dcm_element *el, size_t index)
{
    if (el->kind != DCM_KIND_FRAGMENTS || index >= el->u.frag.count)
        return 0;
    return el->u.frag.frags[index].length;
}

int dcm_element_fragment_read(const dcm_element *el, size_t index,
                              uint64_t offset, void *buf, size_t len,
                              dcm_error *err)
{
    if (el->kind != DCM_KIND_FRAGMENTS || index >= el->u.frag.count)
        return dcm_fail(err, DCM_E_ARG, -1, "no fragment %zu", index);
    return dcm_value_read(&el->u.frag.frags[index], el->source, offset, buf,
                          len, err);
}

/* ---- typed values --------------------------------------------------------- */

/* Strings whose value may contain a backslash as text: one value. */
static bool vr_single_valued_text(dcm_vr vr)
{
    return vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT ||
           vr == DCM_VR_UR;
}

static bool vr_is_number(dcm_vr vr)
{
    switch (vr) {
    case DCM_VR_US: case DCM_VR_SS: case DCM_VR_UL: case DCM_VR_SL:
    case DCM_VR_FL: case DCM_VR_FD: case DCM_VR_SV: case DCM_VR_UV:
    case DCM_VR_AT:
        return true;
    default:
        return false;
    }
}

/* Bytes of one value of a binary number VR: AT is two 16-bit numbers. */
static size_t number_size(dcm_vr vr)
{
    return vr == DCM_VR_AT ? 4 : dcm_vr_unit_size(vr);
}

/* The whole value in memory: the inline bytes, or a fresh copy (NUL
 * terminated) that the caller frees through *to_free. */
static const uint8_t *value_bytes(const dcm_element *el, uint8_t **to_free,
                                  dcm_error *err)
{
    *to_free = NULL;
    const uint8_t *inline_bytes = dcm_element_bytes(el);
    if (inline_bytes || el->kind != DCM_KIND_VALUE)
        return inline_bytes ? inline_bytes : (const uint8_t *)"";
    uint64_t len = el->u.value.length;
    if (len >= SIZE_MAX) {
        dcm_fail(err, DCM_E_LIMIT, -1, "value too large for memory");
        return NULL;
    }
    uint8_t *copy = malloc((size_t)len + 1);
    if (!copy) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory reading a value");
        return NULL;
    }
    if (dcm_element_read(el, 0, copy, (size_t)len, err) < 0) {
        free(copy);
        return NULL;
    }
    copy[len] = 0;
    *to_free = copy;
    return copy;
}

size_t dcm_element_value_count(const dcm_element *el)
{
    if (el->kind == DCM_KIND_SEQUENCE)
        return el->u.seq.count;
    if (el->kind == DCM_KIND_FRAGMENTS)
        return 1;
    dcm_vr vr = (dcm_vr)el->vr;
    uint64_t len = el->u.value.length;
    if (len == 0)
        return 0;
    if (vr_is_number(vr))
        return (size_t)(len / number_size(vr));
    if (!dcm_vr_is_string(vr) || vr_single_valued_text(vr))
        return 1;
    uint8_t *owned;
    const uint8_t *bytes = value_bytes(el, &owned, NULL);
    if (!bytes)
        return 1;
    size_t count = 1;
    for (uint64_t i = 0; i < len; i++)
        count += bytes[i] == '\\';
    free(owned);
    return count;
}

char *dcm_element_get_string(const dcm_element *el, dcm_error *err)
{
    if (el->kind != DCM_KIND_VALUE || !dcm_vr_is_string((dcm_vr)el->vr)) {
        dcm_fail(err, DCM_E_ARG, -1, "(%04X,%04X) is not a string (%s)",
                 DCM_TAG_GROUP(el->tag), DCM_TAG_ELEMENT(el->tag),
                 dcm_vr_name((dcm_vr)el->vr));
        return NULL;
    }
    uint8_t *owned;
    const uint8_t *bytes = value_bytes(el, &owned, err);
    if (!bytes)
        return NULL;
    size_t len = (size_t)el->u.value.length;
    while (len > 0 && (bytes[len - 1] == ' ' || bytes[len - 1] == '\0'))
        len--;
    char *text = owned ? (char *)owned : malloc(len + 1);
    if (!text) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    if (!owned)
        memcpy(text, bytes, len);
    text[len] = '\0';
    return text;
}

/* The index-th backslash-separated value of a string element, trimmed of
 * spaces, into buf. */
static int string_value_at(const dcm_element *el, size_t index, char *buf,
                           size_t size, dcm_error *err)
{
    char *text = dcm_element_get_string(el, err);
    if (!text)
        return err ? err->code : DCM_E_ARG;
    const char *start = text;
    for (size_t i = 0; i < index && start; i++) {
        start = strchr(start, '\\');
        if (start)
            start++;
    }
    if (!start) {
        free(text);
        return dcm_fail(err, DCM_E_NOT_FOUND, -1, "no value %zu", index);
    }
    const char *end = strchr(start, '\\');
    if (!end)
        end = start + strlen(start);
    while (start < end && *start == ' ')
        start++;
    while (end > start && end[-1] == ' ')
        end--;
    size_t len = (size_t)(end - start);
    if (len >= size) {
        free(text);
        return dcm_fail(err, DCM_E_INVALID, -1, "value %zu is too long", index);
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    free(text);
    return DCM_OK;
}

/* Reads the index-th binary number of el as little endian bytes. */
static int number_bytes(const dcm_element *el, size_t index, uint8_t out[8],
                        dcm_error *err)
{
    size_t size = number_size((dcm_vr)el->vr);
    if (index >= dcm_element_value_count(el))
        return dcm_fail(err, DCM_E_NOT_FOUND, -1, "no value %zu", index);
    return dcm_element_read(el, (uint64_t)index * size, out, size, err);
}

static uint64_t little_endian(const uint8_t *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i > 0; i--)
        v = v << 8 | b[i - 1];
    return v;
}

int dcm_element_get_int(const dcm_element *el, size_t index, int64_t *out,
                        dcm_error *err)
{
    dcm_vr vr = (dcm_vr)el->vr;
    uint8_t b[8];
    int rc;
    switch (vr) {
    case DCM_VR_US: case DCM_VR_UL: case DCM_VR_UV: case DCM_VR_SS:
    case DCM_VR_SL: case DCM_VR_SV: case DCM_VR_AT:
        if ((rc = number_bytes(el, index, b, err)) < 0)
            return rc;
        break;
    case DCM_VR_IS: {
        char text[32];
        if ((rc = string_value_at(el, index, text, sizeof text, err)) < 0)
            return rc;
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end || errno)
            return dcm_fail(err, DCM_E_INVALID, -1, "IS value \"%s\" is not "
                            "an integer", text);
        *out = v;
        return DCM_OK;
    }
    default:
        return dcm_fail(err, DCM_E_ARG, -1, "(%04X,%04X): %s is not an "
                        "integer VR", DCM_TAG_GROUP(el->tag),
                        DCM_TAG_ELEMENT(el->tag), dcm_vr_name(vr));
    }
    switch (vr) {
    case DCM_VR_US: *out = (int64_t)little_endian(b, 2); break;
    case DCM_VR_SS: *out = (int16_t)little_endian(b, 2); break;
    case DCM_VR_UL: *out = (int64_t)little_endian(b, 4); break;
    case DCM_VR_SL: *out = (int32_t)little_endian(b, 4); break;
    case DCM_VR_SV: *out = (int64_t)little_endian(b, 8); break;
    case DCM_VR_AT: /* group then element, each a 16-bit number */
        *out = (int64_t)((little_endian(b, 2) << 16) | little_endian(b + 2, 2));
        break;
    default: { /* UV: out of range for int64 is an error, not a wrap */
        uint64_t v = little_endian(b, 8);
        if (v > INT64_MAX)
            return dcm_fail(err, DCM_E_LIMIT, -1, "UV value too large");
        *out = (int64_t)v;
    }
    }
    return DCM_OK;
}

int dcm_element_get_double(const dcm_element *el, size_t index, double *out,
                           dcm_error *err)
{
    dcm_vr vr = (dcm_vr)el->vr;
    if (vr == DCM_VR_FL || vr == DCM_VR_FD) {
        uint8_t b[8];
        int rc = number_bytes(el, index, b, err);
        if (rc < 0)
            return rc;
        if (vr == DCM_VR_FL) {
            uint32_t bits = (uint32_t)little_endian(b, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            *out = f;
        } else {
            uint64_t bits = little_endian(b, 8);
            memcpy(out, &bits, sizeof *out);
        }
        return DCM_OK;
    }
    if (vr == DCM_VR_DS) {
        char text[32];
        int rc = string_value_at(el, index, text, sizeof text, err);
        if (rc < 0)
            return rc;
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || *end || errno)
            return dcm_fail(err, DCM_E_INVALID, -1,
                            "DS value \"%s\" is not a number", text);
        *out = v;
        return DCM_OK;
    }
    int64_t v;
    int rc = dcm_element_get_int(el, index, &v, err);
    if (rc == DCM_OK)
        *out = (double)v;
    return rc;
}

/* ---- character sets ------------------------------------------------------- */

const uint8_t *dcm_dataset_charset_value(const dcm_dataset *ds, size_t *len)
{
    for (; ds; ds = ds->parent) {
        const dcm_element *el =
            dcm_dataset_find(ds, DCM_TAG_SPECIFIC_CHARACTER_SET);
        const uint8_t *bytes = el ? dcm_element_bytes(el) : NULL;
        if (bytes) {
            *len = (size_t)el->u.value.length;
            return bytes;
        }
    }
    *len = 0;
    return NULL;
}

static dcm_charset *charset_of(const dcm_dataset *ds, dcm_error *err)
{
    size_t len;
    const uint8_t *value = dcm_dataset_charset_value(ds, &len);
    return dcm_charset_parse(value ? (const char *)value : "", len, err);
}

char *dcm_dataset_get_utf8(const dcm_dataset *ds, uint32_t tag, dcm_error *err)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    if (!el) {
        dcm_fail(err, DCM_E_NOT_FOUND, -1, "(%04X,%04X) is absent",
                 DCM_TAG_GROUP(tag), DCM_TAG_ELEMENT(tag));
        return NULL;
    }
    char *raw = dcm_element_get_string(el, err);
    if (!raw)
        return NULL;
    dcm_charset *cs = charset_of(ds, err);
    char *utf8 = NULL;
    if (cs)
        utf8 = dcm_charset_decode(cs, (dcm_vr)el->vr, (const uint8_t *)raw,
                                  strlen(raw), NULL, NULL, err);
    dcm_charset_free(cs);
    free(raw);
    return utf8;
}

/* Decodes the string elements of ds under cs (the set in force for ds),
 * then its items under theirs, then marks ds as UTF-8. */
static int convert_dataset(dcm_dataset *ds, dcm_error *err);

static int convert_element(dcm_element *el, const dcm_charset *cs,
                           dcm_error *err)
{
    if (el->kind == DCM_KIND_SEQUENCE) {
        for (size_t i = 0; i < el->u.seq.count; i++) {
            int rc = convert_dataset(el->u.seq.items[i], err);
            if (rc < 0)
                return rc;
        }
        return DCM_OK;
    }
    if (el->kind != DCM_KIND_VALUE || !dcm_vr_uses_charset((dcm_vr)el->vr))
        return DCM_OK;
    uint8_t *owned;
    const uint8_t *bytes = value_bytes(el, &owned, err);
    if (!bytes)
        return err ? err->code : DCM_E_NOMEM;
    size_t utf8_len;
    char *utf8 = dcm_charset_decode(cs, (dcm_vr)el->vr, bytes,
                                    (size_t)el->u.value.length, &utf8_len,
                                    NULL, err);
    free(owned);
    if (!utf8)
        return err ? err->code : DCM_E_NOMEM;
    dcm_vr vr = (dcm_vr)el->vr;
    dcm_dataset *owner = el->owner;
    int rc = dcm_dataset_set_bytes(owner, el->tag, vr, utf8, utf8_len, err);
    free(utf8);
    return rc;
}

static int convert_dataset(dcm_dataset *ds, dcm_error *err)
{
    dcm_charset *cs = charset_of(ds, err);
    if (!cs)
        return err ? err->code : DCM_E_NOMEM;
    int rc = DCM_OK;
    for (size_t i = 0; i < ds->count && rc == DCM_OK; i++)
        rc = convert_element(&ds->elements[i], cs, err);
    dcm_charset_free(cs);
    if (rc == DCM_OK && (!ds->parent ||
                         dcm_dataset_find(ds, DCM_TAG_SPECIFIC_CHARACTER_SET)))
        rc = dcm_dataset_set_string(ds, DCM_TAG_SPECIFIC_CHARACTER_SET,
                                    DCM_VR_CS, "ISO_IR 192", err);
    return rc;
}

int dcm_dataset_convert_to_utf8(dcm_dataset *ds, dcm_error *err)
{
    return convert_dataset(ds, err);
}
