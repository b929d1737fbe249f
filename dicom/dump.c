/* dump.c - a dcmdump-like listing of files and datasets, one element a line:
 *
 *   (0010,0010) PN [Yamada^Tarou]                          #  12, 1 PatientName
 *
 * Text values are shown decoded to UTF-8 (under Specific Character Set)
 * with control characters escaped; binary values as numbers or hex; long
 * values shortened with "..." (only their first bytes are read). */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_CHARS 64  /* longer values are shortened */
#define VALUE_COLUMN 40 /* width of the value before the '#' */

typedef struct text {
    char buf[SHOWN_CHARS * 4 + 16];
    size_t len;
    bool full;
} text;

static void text_add(text *t, const char *s, size_t n)
{
    if (t->full)
        return;
    if (t->len + n > SHOWN_CHARS) {
        n = t->len < SHOWN_CHARS ? SHOWN_CHARS - t->len : 0;
        t->full = true;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    if (t->full) {
        memcpy(t->buf + t->len, "...", 3);
        t->len += 3;
    }
    t->buf[t->len] = '\0';
}

static void text_printf(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(text *t, const char *fmt, ...)
{
    char piece[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (n > 0)
        text_add(t, piece, (size_t)n < sizeof piece ? (size_t)n
                                                    : sizeof piece - 1);
}

/* UTF-8 text, control characters and backslash-free escapes for bytes a
 * terminal should not interpret. */
static void add_printable(text *t, const char *s, size_t len)
{
    for (size_t i = 0; i < len && !t->full; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            text_add(t, "\\n", 2);
        else if (c == '\r')
            text_add(t, "\\r", 2);
        else if (c < 0x20 || c == 0x7F)
            text_printf(t, "\\x%02x", c);
        else
            text_add(t, (const char *)&c, 1);
    }
}

/* The first bytes of a value, enough to show SHOWN_CHARS characters. */
static size_t head_bytes(const dcm_element *el, uint8_t *buf, size_t size)
{
    uint64_t len = dcm_element_length(el);
    size_t n = len < size ? (size_t)len : size;
    if (dcm_element_read(el, 0, buf, n, NULL) < 0)
        return 0;
    return n;
}

static void format_string(const dcm_dataset *ds, const dcm_element *el,
                          text *t)
{
    char *raw = dcm_element_get_string(el, NULL);
    if (!raw) {
        text_add(t, "(unreadable)", 12);
        return;
    }
    size_t raw_len = strlen(raw);
    size_t cs_len;
    const uint8_t *cs_value = dcm_dataset_charset_value(ds, &cs_len);
    dcm_charset *cs = dcm_charset_parse(cs_value ? (const char *)cs_value : "",
                                        cs_len, NULL);
    size_t utf8_len = 0;
    char *utf8 = dcm_charset_decode(cs, (dcm_vr)el->vr, (const uint8_t *)raw,
                                    raw_len, &utf8_len, NULL, NULL);
    text_add(t, "[", 1);
    if (utf8)
        add_printable(t, utf8, utf8_len);
    else
        add_printable(t, raw, raw_len);
    if (!t->full)
        text_add(t, "]", 1);
    free(utf8);
    dcm_charset_free(cs);
    free(raw);
}

static uint64_t le_value(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i > 0; i--)
        v = v << 8 | p[i - 1];
    return v;
}

static void format_number(dcm_vr vr, const uint8_t *p, text *t)
{
    switch (vr) {
    case DCM_VR_US: text_printf(t, "%u", (unsigned)le_value(p, 2)); break;
    case DCM_VR_SS: text_printf(t, "%d", (int16_t)le_value(p, 2)); break;
    case DCM_VR_UL: text_printf(t, "%" PRIu32, (uint32_t)le_value(p, 4)); break;
    case DCM_VR_SL: text_printf(t, "%" PRId32, (int32_t)le_value(p, 4)); break;
    case DCM_VR_UV: text_printf(t, "%" PRIu64, le_value(p, 8)); break;
    case DCM_VR_SV: text_printf(t, "%" PRId64, (int64_t)le_value(p, 8)); break;
    case DCM_VR_AT:
        text_printf(t, "(%04x,%04x)", (unsigned)le_value(p, 2),
                    (unsigned)le_value(p + 2, 2));
        break;
    case DCM_VR_FL: {
        uint32_t bits = (uint32_t)le_value(p, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        text_printf(t, "%g", (double)f);
        break;
    }
    case DCM_VR_FD: {
        uint64_t bits = le_value(p, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        text_printf(t, "%g", d);
        break;
    }
    default: /* OB, OW, OF, OD, OL, OV, UN: hex in units */
        for (size_t i = dcm_vr_unit_size(vr); i > 0; i--)
            text_printf(t, "%02x", p[i - 1]);
    }
}

static bool is_numeric(dcm_vr vr)
{
    return vr == DCM_VR_US || vr == DCM_VR_SS || vr == DCM_VR_UL ||
           vr == DCM_VR_SL || vr == DCM_VR_UV || vr == DCM_VR_SV ||
           vr == DCM_VR_AT || vr == DCM_VR_FL || vr == DCM_VR_FD;
}

static void format_binary(const dcm_element *el, text *t)
{
    uint8_t head[SHOWN_CHARS * 2];
    dcm_vr vr = (dcm_vr)el->vr;
    size_t unit = dcm_vr_unit_size(vr);
    size_t n = head_bytes(el, head, sizeof head);
    for (size_t at = 0; at + unit <= n && !t->full; at += unit) {
        if (at)
            text_add(t, "\\", 1);
        format_number(is_numeric(vr) || unit > 1 ? vr : DCM_VR_OB, head + at,
                      t);
    }
    if (n < dcm_element_length(el) && !t->full)
        text_add(t, "...", 3);
}

static const char *keyword_of(const dcm_dataset *ds, uint32_t tag)
{
    if (DCM_TAG_ELEMENT(tag) == 0 && DCM_TAG_GROUP(tag) != 0x0002)
        return "GroupLength";
    const dcm_dict_entry *entry = NULL;
    char creator[DCM_CREATOR_MAX + 1];
    if (dcm_tag_is_private_creator(tag))
        return "PrivateCreator";
    if (dcm_tag_is_private(tag)) {
        if (dcm_dataset_private_creator(ds, tag, creator, sizeof creator))
            entry = dcm_dict_find_private(creator, tag);
    } else {
        entry = dcm_dict_find(tag);
    }
    return entry ? entry->keyword : "Unknown Tag & Data";
}

/* Characters (not bytes) of UTF-8 text, for column alignment. */
static int utf8_width(const char *s)
{
    int width = 0;
    for (; *s; s++)
        width += ((unsigned char)*s & 0xC0) != 0x80;
    return width;
}

static void print_line(FILE *out, int indent, uint32_t tag, const char *vr,
                       const char *value, const char *length, size_t vm,
                       const char *keyword)
{
    fprintf(out, "%*s(%04x,%04x) %s %s", indent * 2, "", DCM_TAG_GROUP(tag),
            DCM_TAG_ELEMENT(tag), vr, value);
    int used = indent * 2 + 15 + utf8_width(value);
    int column = indent * 2 + 15 + VALUE_COLUMN;
    fprintf(out, "%*s #%4s, %zu %s\n", used < column ? column - used : 0, "",
            length, vm, keyword);
}

static int dump_items(const dcm_dataset *ds, int indent, FILE *out);

static void dump_sequence(const dcm_element *el, const dcm_dataset *ds,
                          int indent, FILE *out)
{
    char value[64];
    size_t count = el->u.seq.count;
    snprintf(value, sizeof value, "(Sequence with %s length #=%zu)",
             el->undefined_length ? "undefined" : "explicit", count);
    print_line(out, indent, el->tag, "SQ", value,
               el->undefined_length ? "u/l" : "-", 1, keyword_of(ds, el->tag));
    for (size_t i = 0; i < count; i++) {
        const dcm_dataset *item = el->u.seq.items[i];
        snprintf(value, sizeof value, "(Item with %s length #=%zu)",
                 item->undefined_length ? "undefined" : "explicit",
                 item->count);
        print_line(out, indent + 1, DCM_TAG_ITEM, "na", value,
                   item->undefined_length ? "u/l" : "-", 1, "Item");
        dump_items(item, indent + 2, out);
        if (item->undefined_length)
            print_line(out, indent + 1, DCM_TAG_ITEM_DELIMITATION, "na",
                       "(ItemDelimitationItem)", "0", 0,
                       "ItemDelimitationItem");
    }
    if (el->undefined_length)
        print_line(out, indent, DCM_TAG_SEQUENCE_DELIMITATION, "na",
                   "(SequenceDelimitationItem)", "0", 0,
                   "SequenceDelimitationItem");
}

static void dump_fragments(const dcm_element *el, const dcm_dataset *ds,
                           int indent, FILE *out)
{
    char value[64], length[24];
    snprintf(value, sizeof value, "(PixelSequence #=%zu)", el->u.frag.count);
    print_line(out, indent, el->tag, dcm_vr_name((dcm_vr)el->vr), value, "u/l",
               1, keyword_of(ds, el->tag));
    for (size_t i = 0; i < el->u.frag.count; i++) {
        uint8_t head[SHOWN_CHARS / 3 + 1];
        uint64_t frag_len = el->u.frag.frags[i].length;
        size_t n = frag_len < sizeof head ? (size_t)frag_len : sizeof head;
        text t = {.len = 0};
        if (n == 0)
            text_add(&t, "(no value available)", 20);
        else if (dcm_element_fragment_read(el, i, 0, head, n, NULL) == DCM_OK)
            for (size_t b = 0; b < n && !t.full; b++)
                text_printf(&t, b ? "\\%02x" : "%02x", head[b]);
        if (n < frag_len && !t.full)
            text_add(&t, "...", 3);
        snprintf(length, sizeof length, "%llu", (unsigned long long)frag_len);
        print_line(out, indent + 1, DCM_TAG_ITEM, "pi", t.buf, length, 1,
                   "Item");
    }
    print_line(out, indent, DCM_TAG_SEQUENCE_DELIMITATION, "na",
               "(SequenceDelimitationItem)", "0", 0,
               "SequenceDelimitationItem");
}

static void dump_value(const dcm_element *el, const dcm_dataset *ds,
                       int indent, FILE *out)
{
    dcm_vr vr = (dcm_vr)el->vr;
    text t = {.len = 0};
    t.buf[0] = '\0';
    if (dcm_element_length(el) == 0)
        text_add(&t, "(no value available)", 20);
    else if (dcm_vr_is_string(vr))
        format_string(ds, el, &t);
    else
        format_binary(el, &t);
    char length[24];
    snprintf(length, sizeof length, "%llu",
             (unsigned long long)dcm_element_length(el));
    print_line(out, indent, el->tag, vr == DCM_VR_NONE ? "??" : dcm_vr_name(vr),
               t.buf, length, dcm_element_value_count(el),
               keyword_of(ds, el->tag));
}

static int dump_items(const dcm_dataset *ds, int indent, FILE *out)
{
    for (size_t i = 0; i < ds->count; i++) {
        const dcm_element *el = &ds->elements[i];
        switch (el->kind) {
        case DCM_KIND_SEQUENCE: dump_sequence(el, ds, indent, out); break;
        case DCM_KIND_FRAGMENTS: dump_fragments(el, ds, indent, out); break;
        default: dump_value(el, ds, indent, out);
        }
    }
    return DCM_OK;
}

int dcm_dump_dataset(const dcm_dataset *ds, int indent, FILE *out,
                     dcm_error *err)
{
    dump_items(ds, indent, out);
    if (ferror(out))
        return dcm_fail(err, DCM_E_IO, -1, "cannot write the listing");
    return DCM_OK;
}

int dcm_dump_file(const dcm_file *file, FILE *out, dcm_error *err)
{
    const dcm_dataset *meta = dcm_file_meta(file);
    const dcm_ts *ts = dcm_file_transfer_syntax(file);
    fprintf(out, "\n# Dicom-File-Format\n");
    if (dcm_dataset_count(meta) > 0) {
        fprintf(out, "\n# Dicom-Meta-Information-Header\n"
                     "# Used TransferSyntax: Explicit VR Little Endian\n");
        dump_items(meta, 0, out);
    }
    fprintf(out, "\n# Dicom-Data-Set\n# Used TransferSyntax: %s\n", ts->name);
    return dcm_dump_dataset(dcm_file_dataset(file), 0, out, err);
}
