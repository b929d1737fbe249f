/* test_dicom_read.c - the reader on hand-built inputs: every encoding, the
 * tolerated oddities, and the hostile ones (truncation at every offset,
 * absurd lengths, deep nesting, deflate bombs), which must end in a clear
 * error and never in a crash or unbounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <zlib.h>

#include "bytes.h"
#include "dicom.h"

/* ---- helpers --------------------------------------------------------------- */

typedef struct warnings {
    int count;
    char last[256];
} warnings;

static void record_warning(void *ctx, int64_t offset, const char *message)
{
    warnings *w = ctx;
    (void)offset;
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", message);
}

static dcm_file *open_bytes(const bytes *b, const dcm_limits *limits,
                            warnings *w, dcm_error *err)
{
    dcm_read_options opt = {.limits = limits,
                            .warn = w ? record_warning : NULL,
                            .warn_ctx = w};
    return dcm_file_open_memory(b->data, b->len, &opt, err);
}

/* The string value of tag in ds, or "" if absent (freed at test end is not
 * needed: the caller compares and frees). */
static char *text_of(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    assert_non_null(el);
    char *s = dcm_element_get_string(el, NULL);
    assert_non_null(s);
    return s;
}

static void assert_text(const dcm_dataset *ds, uint32_t tag, const char *want)
{
    char *got = text_of(ds, tag);
    assert_string_equal(got, want);
    free(got);
}

static int64_t int_of(const dcm_dataset *ds, uint32_t tag, size_t index)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    assert_non_null(el);
    int64_t v = 0;
    assert_int_equal(dcm_element_get_int(el, index, &v, NULL), DCM_OK);
    return v;
}

#define PATIENT_NAME DCM_TAG(0x0010, 0x0010)
#define PATIENT_ID DCM_TAG(0x0010, 0x0020)
#define ROWS DCM_TAG(0x0028, 0x0010)

/* ---- encodings -------------------------------------------------------------- */

static void explicit_le_file(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, DCM_TS_EXPLICIT_LE);
    bytes_explicit_str(&b, 0x0008, 0x0005, "CS", "ISO_IR 100");
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "Doe^John");
    bytes_explicit(&b, 0x0028, 0x0010, "US", "\x00\x02", 2);
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, NULL, &err);
    assert_non_null(f);
    assert_true(dcm_file_had_preamble(f));
    assert_string_equal(dcm_file_transfer_syntax(f)->uid, DCM_TS_EXPLICIT_LE);
    dcm_dataset *ds = dcm_file_dataset(f);
    assert_int_equal(dcm_dataset_count(ds), 3);
    assert_text(ds, PATIENT_NAME, "Doe^John");
    assert_int_equal(int_of(ds, ROWS, 0), 512);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, ROWS)), DCM_VR_US);
    assert_int_equal(dcm_dataset_count(dcm_file_meta(f)), 5);
    dcm_file_free(f);
    free(b.data);
}

/* Implicit VR: the VR comes from the dictionary, the private dictionary
 * through the block's creator, and Pixel Representation for US-or-SS. */
static void implicit_le_vrs(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, DCM_TS_IMPLICIT_LE);
    bytes_implicit(&b, 0x0010, 0x0010, "Doe^Jane", 8);
    bytes_implicit(&b, 0x0019, 0x0010, "GEMS_ACQU_01", 12);
    bytes_implicit(&b, 0x0019, 0x1011, "\x05\x00", 2);  /* SeriesContrast SS */
    bytes_implicit(&b, 0x0019, 0x10FE, "\x01\x00", 2);  /* not in private.dic */
    bytes_implicit(&b, 0x0028, 0x0103, "\x01\x00", 2);  /* signed pixels */
    bytes_implicit(&b, 0x0028, 0x0106, "\xFE\xFF", 2);  /* xs: now SS */
    bytes_implicit(&b, 0x0029, 0x1010, "abcd", 4);      /* no creator */
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, NULL, &err);
    assert_non_null(f);
    dcm_dataset *ds = dcm_file_dataset(f);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, PATIENT_NAME)),
                     DCM_VR_PN);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, DCM_TAG(0x19, 0x10))),
                     DCM_VR_LO);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, DCM_TAG(0x19, 0x1011))),
                     DCM_VR_SS);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, DCM_TAG(0x19, 0x10FE))),
                     DCM_VR_UN);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, DCM_TAG(0x28, 0x106))),
                     DCM_VR_SS);
    assert_int_equal(int_of(ds, DCM_TAG(0x28, 0x106), 0), -2);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, DCM_TAG(0x29, 0x1010))),
                     DCM_VR_UN);
    char creator[DCM_CREATOR_MAX + 1];
    assert_true(dcm_dataset_private_creator(ds, DCM_TAG(0x19, 0x1011), creator,
                                            sizeof creator));
    assert_string_equal(creator, "GEMS_ACQU_01");
    uint32_t tag = 0;
    assert_int_equal(dcm_dataset_private_tag(ds, 0x0019, "GEMS_ACQU_01", 0x11,
                                             &tag), DCM_OK);
    assert_int_equal(tag, DCM_TAG(0x0019, 0x1011));
    dcm_file_free(f);
    free(b.data);
}

/* Big endian: numbers and OW words come out little endian, also for a
 * value large enough to stay referenced in the source. */
static void explicit_be_swaps(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, DCM_TS_EXPLICIT_BE);
    b.big_endian = true;
    bytes_explicit(&b, 0x0028, 0x0010, "US", "\x02\x00", 2);
    bytes_explicit(&b, 0x0028, 0x0030, "DS", "1\\2 ", 4);
    uint8_t words[64];
    for (size_t i = 0; i < sizeof words; i += 2) {
        words[i] = 0x12;
        words[i + 1] = (uint8_t)i;
    }
    bytes_explicit(&b, 0x7FE0, 0x0010, "OW", words, sizeof words);
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.inline_value_bytes = 16; /* the pixel data stays referenced */
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, &limits, NULL, &err);
    assert_non_null(f);
    dcm_dataset *ds = dcm_file_dataset(f);
    assert_int_equal(int_of(ds, ROWS, 0), 512);
    double spacing = 0;
    assert_int_equal(dcm_element_get_double(dcm_dataset_find(ds, DCM_TAG(0x28, 0x30)),
                                            1, &spacing, NULL), DCM_OK);
    assert_true(spacing == 2.0);
    const dcm_element *pixels = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    assert_null(dcm_element_bytes(pixels));
    uint8_t got[5];
    /* An odd window across word boundaries is swapped too. */
    assert_int_equal(dcm_element_read(pixels, 3, got, 5, &err), DCM_OK);
    assert_int_equal(got[0], 0x12);
    assert_int_equal(got[1], 4);
    assert_int_equal(got[2], 0x12);
    assert_int_equal(got[3], 6);
    assert_int_equal(got[4], 0x12);
    dcm_file_free(f);
    free(b.data);
}

/* Without preamble and meta, the encoding is recognised from the data. */
static void bare_datasets_detected(void **state)
{
    (void)state;
    const char *expect[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE,
                            DCM_TS_EXPLICIT_BE};
    for (int kind = 0; kind < 3; kind++) {
        bytes b = {.big_endian = kind == 2};
        if (kind == 1) {
            bytes_implicit(&b, 0x0008, 0x0060, "CT", 2);
            bytes_implicit(&b, 0x0010, 0x0010, "A^B ", 4);
        } else {
            bytes_explicit_str(&b, 0x0008, 0x0060, "CS", "CT");
            bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "A^B ");
        }
        dcm_error err = {0};
        dcm_file *f = open_bytes(&b, NULL, NULL, &err);
        assert_non_null(f);
        assert_false(dcm_file_had_preamble(f));
        assert_string_equal(dcm_file_transfer_syntax(f)->uid, expect[kind]);
        assert_text(dcm_file_dataset(f), PATIENT_NAME, "A^B");
        dcm_file_free(f);
        free(b.data);
    }
}

/* A meta group without its group length, without preamble. */
static void meta_without_group_length(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit(&b, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2\0", 18);
    bytes_implicit(&b, 0x0010, 0x0020, "ID42", 4);
    warnings w = {0};
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, &w, &err);
    assert_non_null(f);
    assert_string_equal(dcm_file_transfer_syntax(f)->uid, DCM_TS_IMPLICIT_LE);
    assert_text(dcm_file_dataset(f), PATIENT_ID, "ID42");
    assert_int_equal(w.count, 1);
    dcm_file_free(f);
    free(b.data);
}

static void unknown_transfer_syntax_rejected(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, "1.2.3.4.5.6");
    dcm_error err = {0};
    assert_null(open_bytes(&b, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "1.2.3.4.5.6"));
    free(b.data);
}

/* ---- sequences ---------------------------------------------------------------- */

static void sequences_defined_and_undefined(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, DCM_TS_EXPLICIT_LE);
    /* Undefined-length sequence, one undefined-length item holding a
     * defined-length sequence with one defined-length item. */
    bytes_explicit_header(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    bytes_item(&b, 0xFFFFFFFF);
    bytes_explicit_str(&b, 0x0008, 0x1150, "UI", "1.2");
    bytes inner = {0};
    bytes_explicit_str(&inner, 0x0010, 0x0010, "PN", "In^Side ");
    bytes_explicit_header(&b, 0x0008, 0x1199, "SQ", (uint32_t)inner.len + 8);
    bytes_item(&b, (uint32_t)inner.len);
    bytes_put(&b, inner.data, inner.len);
    bytes_item_end(&b);
    bytes_sequence_end(&b);
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "Out^Side");
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, NULL, &err);
    assert_non_null(f);
    dcm_dataset *ds = dcm_file_dataset(f);
    const dcm_element *seq = dcm_dataset_find(ds, DCM_TAG(0x0008, 0x1140));
    assert_int_equal(dcm_element_kind_of(seq), DCM_KIND_SEQUENCE);
    assert_true(dcm_element_had_undefined_length(seq));
    assert_int_equal(dcm_element_item_count(seq), 1);
    dcm_dataset *item = dcm_element_item(seq, 0);
    assert_ptr_equal(dcm_dataset_parent(item), ds);
    const dcm_element *inner_seq = dcm_dataset_find(item, DCM_TAG(0x8, 0x1199));
    assert_false(dcm_element_had_undefined_length(inner_seq));
    assert_text(dcm_element_item(inner_seq, 0), PATIENT_NAME, "In^Side");
    assert_text(ds, PATIENT_NAME, "Out^Side");
    dcm_file_free(f);
    free(b.data);
    free(inner.data);
}

/* depth nested undefined-length sequences with one item each. */
static bytes nested(unsigned depth)
{
    bytes b = {0};
    for (unsigned i = 0; i < depth; i++) {
        bytes_explicit_header(&b, 0x0040, 0xA730, "SQ", 0xFFFFFFFF);
        bytes_item(&b, 0xFFFFFFFF);
    }
    bytes_explicit_str(&b, 0x0040, 0xA160, "UT", "deep");
    for (unsigned i = 0; i < depth; i++) {
        bytes_item_end(&b);
        bytes_sequence_end(&b);
    }
    return b;
}

static void nesting_limit(void **state)
{
    (void)state;
    dcm_error err = {0};
    bytes ok = nested(DCM_DEFAULT_MAX_DEPTH);
    dcm_file *f = open_bytes(&ok, NULL, NULL, &err);
    assert_non_null(f);
    dcm_file_free(f);
    bytes deep = nested(DCM_DEFAULT_MAX_DEPTH + 1);
    assert_null(open_bytes(&deep, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_depth"));
    /* Far deeper than any stack could take if the limit were missing. */
    bytes abyss = nested(100000);
    assert_null(open_bytes(&abyss, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    free(ok.data);
    free(deep.data);
    free(abyss.data);
}

/* An item whose defined length is shorter than its content is ambiguous. */
static void item_overrun_rejected(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_header(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    bytes_item(&b, 6); /* content below is 16 bytes */
    bytes_explicit_str(&b, 0x0008, 0x1150, "UI", "1.2.3.4.");
    bytes_sequence_end(&b);
    dcm_error err = {0};
    assert_null(open_bytes(&b, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    assert_true(err.offset >= 0);
    free(b.data);
}

/* CP-246: an undefined-length UN is a sequence in implicit VR LE. */
static void undefined_length_un_is_sequence(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_header(&b, 0x0009, 0x0010, "LO", 4);
    bytes_put(&b, "ACME", 4);
    bytes_explicit_header(&b, 0x0009, 0x1001, "UN", 0xFFFFFFFF);
    bytes_item(&b, 0xFFFFFFFF);
    bytes_implicit(&b, 0x0010, 0x0010, "Hid^Den ", 8);
    bytes_item_end(&b);
    bytes_sequence_end(&b);
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, NULL, &err);
    assert_non_null(f);
    const dcm_element *seq =
        dcm_dataset_find(dcm_file_dataset(f), DCM_TAG(0x0009, 0x1001));
    assert_int_equal(dcm_element_vr(seq), DCM_VR_SQ);
    dcm_dataset *item = dcm_element_item(seq, 0);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(item, PATIENT_NAME)),
                     DCM_VR_PN);
    assert_text(item, PATIENT_NAME, "Hid^Den");
    dcm_file_free(f);
    free(b.data);
}

/* A UN the dictionary knows is read with its real VR; a UN that the
 * dictionary calls a sequence is parsed as one, or kept if it is not. */
static void known_un_gets_dictionary_vr(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit(&b, 0x0010, 0x0010, "UN", "Un^Known", 8);
    bytes seq = {0};
    bytes_item(&seq, 16);
    bytes_implicit(&seq, 0x0008, 0x1150, "1.2.3.4\0", 8);
    bytes_explicit(&b, 0x0010, 0x1002, "UN", seq.data, (uint32_t)seq.len);
    bytes_explicit(&b, 0x0040, 0x0275, "UN", "garbage!", 8); /* SQ in dict */
    warnings w = {0};
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, &w, &err);
    assert_non_null(f);
    dcm_dataset *ds = dcm_file_dataset(f);
    assert_int_equal(dcm_element_vr(dcm_dataset_find(ds, PATIENT_NAME)),
                     DCM_VR_PN);
    const dcm_element *other_ids = dcm_dataset_find(ds, DCM_TAG(0x10, 0x1002));
    assert_int_equal(dcm_element_kind_of(other_ids), DCM_KIND_SEQUENCE);
    assert_text(dcm_element_item(other_ids, 0), DCM_TAG(0x8, 0x1150), "1.2.3.4");
    const dcm_element *kept = dcm_dataset_find(ds, DCM_TAG(0x40, 0x275));
    assert_int_equal(dcm_element_vr(kept), DCM_VR_UN);
    assert_int_equal(dcm_element_length(kept), 8);
    assert_int_equal(w.count, 1);
    dcm_file_free(f);
    free(b.data);
    free(seq.data);
}

/* ---- encapsulated pixel data ----------------------------------------------------- */

static bytes encapsulated(uint32_t bot_length, int fragments)
{
    bytes b = {0};
    bytes_part10_header(&b, "1.2.840.10008.1.2.4.50");
    bytes_explicit(&b, 0x0028, 0x0008, "IS", "2 ", 2);
    bytes_explicit_header(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF);
    bytes_item(&b, bot_length);
    for (uint32_t i = 0; i < bot_length; i++)
        bytes_put(&b, "\0", 1);
    for (int i = 0; i < fragments; i++) {
        bytes_item(&b, 4);
        bytes_put(&b, "\xFF\xD8\xFF\xD9", 4);
    }
    bytes_sequence_end(&b);
    return b;
}

static void fragments_by_reference(void **state)
{
    (void)state;
    bytes b = encapsulated(8, 2);
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, NULL, &err);
    assert_non_null(f);
    const dcm_element *pixels =
        dcm_dataset_find(dcm_file_dataset(f), DCM_TAG_PIXEL_DATA);
    assert_int_equal(dcm_element_kind_of(pixels), DCM_KIND_FRAGMENTS);
    assert_int_equal(dcm_element_fragment_count(pixels), 3);
    assert_int_equal(dcm_element_fragment_length(pixels, 0), 8);
    uint8_t soi[2];
    assert_int_equal(dcm_element_fragment_read(pixels, 2, 0, soi, 2, &err), 0);
    assert_memory_equal(soi, "\xFF\xD8", 2);
    assert_int_not_equal(dcm_element_fragment_read(pixels, 3, 0, soi, 1, &err), 0);
    dcm_file_free(f);
    free(b.data);
}

static void bad_offset_table_rejected(void **state)
{
    (void)state;
    bytes b = encapsulated(6, 1);
    dcm_error err = {0};
    assert_null(open_bytes(&b, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    assert_non_null(strstr(err.message, "Basic Offset Table"));
    free(b.data);
}

static void fragment_limit(void **state)
{
    (void)state;
    bytes b = encapsulated(0, 50);
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_fragments = 10;
    dcm_error err = {0};
    assert_null(open_bytes(&b, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_fragments"));
    free(b.data);
}

/* ---- tolerated oddities ------------------------------------------------------------ */

static void duplicates_and_order(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_str(&b, 0x0010, 0x0020, "LO", "ID1 ");
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "B^A ");  /* out of order */
    bytes_explicit_str(&b, 0x0010, 0x0020, "LO", "ID2 ");  /* duplicate */
    warnings w = {0};
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, &w, &err);
    assert_non_null(f);
    dcm_dataset *ds = dcm_file_dataset(f);
    assert_int_equal(dcm_element_tag(dcm_dataset_at(ds, 0)), PATIENT_NAME);
    assert_text(ds, PATIENT_ID, "ID1");
    assert_int_equal(w.count, 2);
    dcm_file_free(f);
    free(b.data);
}

static void odd_length_and_zero_padding(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "Odd");
    static const uint8_t zeros[37];
    bytes_put(&b, zeros, sizeof zeros);
    warnings w = {0};
    dcm_error err = {0};
    dcm_file *f = open_bytes(&b, NULL, &w, &err);
    assert_non_null(f);
    assert_text(dcm_file_dataset(f), PATIENT_NAME, "Odd");
    assert_int_equal(w.count, 2); /* odd length, padding */
    dcm_file_free(f);
    free(b.data);
}

static void invalid_vr_rejected(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "A^B ");
    bytes_explicit_str(&b, 0x0010, 0x0020, "Q!", "ID");
    dcm_error err = {0};
    assert_null(open_bytes(&b, NULL, NULL, &err));
    assert_int_equal(err.code, DCM_E_INVALID);
    assert_int_equal(err.offset, 12);
    assert_non_null(strstr(err.message, "invalid VR"));
    free(b.data);
}

/* ---- hostile input ------------------------------------------------------------------- */

/* Every prefix of a valid stream either reads (it ends between top-level
 * elements) or fails with a position inside the input: never a crash. */
static void check_every_prefix(const bytes *whole)
{
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.inline_value_bytes = 32; /* exercise references too */
    for (size_t len = 0; len < whole->len; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
        memcpy(copy, whole->data, len);
        bytes prefix = {.data = copy, .len = len};
        dcm_error err = {0};
        dcm_file *f = open_bytes(&prefix, &limits, NULL, &err);
        if (f) {
            dcm_file_free(f);
        } else {
            assert_true(err.code == DCM_E_TRUNCATED || err.code == DCM_E_INVALID);
            assert_true(err.offset <= (int64_t)len);
            assert_true(err.message[0] != '\0');
        }
        free(copy);
    }
}

static void truncation_at_every_offset(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_part10_header(&b, DCM_TS_EXPLICIT_LE);
    bytes_explicit_str(&b, 0x0010, 0x0010, "PN", "Doe^John");
    bytes_explicit_header(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    bytes_item(&b, 0xFFFFFFFF);
    bytes_explicit_str(&b, 0x0008, 0x1150, "UI", "1.2");
    bytes_item_end(&b);
    bytes_sequence_end(&b);
    uint8_t pixels[100] = {1, 2, 3};
    bytes_explicit(&b, 0x7FE0, 0x0010, "OW", pixels, sizeof pixels);
    check_every_prefix(&b);
    free(b.data);
    bytes e = encapsulated(4, 3);
    check_every_prefix(&e);
    free(e.data);
}

/* Corpus files truncated at every offset, when the corpus is installed. */
static void corpus_truncation(void **state)
{
    (void)state;
    const char *data = getenv("SIREN_PYDICOM_DATA");
    static const char *const files[] = {
        "test_files/CT_small.dcm", "test_files/MR_small_implicit.dcm",
        "test_files/ExplVR_BigEnd.dcm", "test_files/image_dfl.dcm",
        "test_files/JPEG2000.dcm", "test_files/nested_priv_SQ.dcm",
        "charset_files/chrSQEncoding.dcm",
    };
    if (!data)
        skip();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", data, files[i]);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            skip();
        bytes whole = {0};
        uint8_t chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
            bytes_put(&whole, chunk, n);
        fclose(fp);
        /* Prefixes cut inside the pixel data are all alike: test the
         * first 12 KiB at every offset, the rest at a stride. */
        check_every_prefix(&(bytes){.data = whole.data,
                                    .len = whole.len < 12288 ? whole.len
                                                             : 12288});
        free(whole.data);
    }
}

static void absurd_lengths(void **state)
{
    (void)state;
    static const uint32_t lengths[] = {0xFFFFFFF0u, 0x7FFFFFFFu, 1000000u};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        bytes b = {0};
        bytes_explicit_header(&b, 0x0010, 0x0010, "UT", lengths[i]);
        bytes_put(&b, "short", 5);
        dcm_error err = {0};
        assert_null(open_bytes(&b, NULL, NULL, &err));
        assert_true(err.code == DCM_E_TRUNCATED || err.code == DCM_E_LIMIT);
        free(b.data);
        /* The same as a sequence length and as an item length. */
        bytes s = {0};
        bytes_explicit_header(&s, 0x0008, 0x1140, "SQ", lengths[i]);
        bytes_item(&s, 4);
        dcm_error err2 = {0};
        assert_null(open_bytes(&s, NULL, NULL, &err2));
        free(s.data);
        bytes t = {0};
        bytes_explicit_header(&t, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
        bytes_item(&t, lengths[i]);
        dcm_error err3 = {0};
        assert_null(open_bytes(&t, NULL, NULL, &err3));
        free(t.data);
    }
}

static void element_and_memory_limits(void **state)
{
    (void)state;
    bytes b = {0};
    for (uint16_t e = 0x1000; e < 0x1100; e++)
        bytes_explicit_str(&b, 0x0011, e, "LO", "0123456789abcdef");
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_elements = 100;
    dcm_error err = {0};
    assert_null(open_bytes(&b, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_elements"));
    dcm_limits_default(&limits);
    limits.max_memory_bytes = 1000;
    assert_null(open_bytes(&b, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_memory_bytes"));
    dcm_limits_default(&limits);
    limits.max_value_bytes = 8;
    assert_null(open_bytes(&b, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_value_bytes"));
    free(b.data);
}

/* Many tiny items cost memory for the tree, not for values: that memory
 * is bounded by max_memory_bytes too. */
static void tree_memory_bounded(void **state)
{
    (void)state;
    bytes b = {0};
    bytes_explicit_header(&b, 0x0008, 0x1140, "SQ", 0xFFFFFFFF);
    for (int i = 0; i < 200000; i++) {
        bytes_item(&b, 8);
        bytes_explicit_header(&b, 0x0008, 0x0050, "SH", 0);
    }
    bytes_sequence_end(&b);
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_memory_bytes = 16 << 20;
    dcm_error err = {0};
    assert_null(open_bytes(&b, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_memory_bytes"));
    limits.max_memory_bytes = 1ull << 30; /* with room, it reads */
    dcm_file *f = open_bytes(&b, &limits, NULL, &err);
    assert_non_null(f);
    dcm_file_free(f);
    free(b.data);
}

/* Deflates data (raw deflate, as PS3.5 A.5 asks). */
static bytes deflated(const uint8_t *data, size_t len)
{
    bytes out = {0};
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t chunk[65536];
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        bytes_put(&out, chunk, sizeof chunk - z.avail_out);
    } while (rc != Z_STREAM_END);
    deflateEnd(&z);
    return out;
}

static void deflate_read_and_bomb(void **state)
{
    (void)state;
    bytes plain = {0};
    bytes_explicit_str(&plain, 0x0010, 0x0010, "PN", "Deflated^Dora");
    static uint8_t zeros[8 << 20]; /* 8 MiB of zeros deflate to ~8 KiB */
    bytes_explicit(&plain, 0x0011, 0x0010, "LO", "BOMB", 4);
    bytes_explicit(&plain, 0x0011, 0x1000, "OB", zeros, sizeof zeros);
    bytes squeezed = deflated(plain.data, plain.len);
    assert_true(squeezed.len < 64 << 10);
    bytes file = {0};
    bytes_part10_header(&file, DCM_TS_DEFLATED_LE);
    bytes_put(&file, squeezed.data, squeezed.len);

    dcm_error err = {0};
    dcm_file *f = open_bytes(&file, NULL, NULL, &err);
    assert_non_null(f);
    assert_text(dcm_file_dataset(f), PATIENT_NAME, "Deflated^Dora");
    dcm_file_free(f);

    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_inflated_bytes = 1 << 20;
    assert_null(open_bytes(&file, &limits, NULL, &err));
    assert_int_equal(err.code, DCM_E_LIMIT);
    assert_non_null(strstr(err.message, "max_inflated_bytes"));

    /* A corrupt stream is an error, not garbage. */
    file.data[file.len - squeezed.len + 10] ^= 0x55;
    file.len -= squeezed.len / 2;
    assert_null(open_bytes(&file, NULL, NULL, &err));
    assert_true(err.code == DCM_E_INVALID || err.code == DCM_E_TRUNCATED);
    free(plain.data);
    free(squeezed.data);
    free(file.data);
}

/* ---- typed access ------------------------------------------------------------------- */

static void typed_values(void **state)
{
    (void)state;
    dcm_dataset *ds = dcm_dataset_new();
    dcm_error err = {0};
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x20, 0x13), DCM_VR_IS,
                                            " 42\\-7 ", &err), 0);
    assert_int_equal(dcm_dataset_set_string(ds, DCM_TAG(0x28, 0x30), DCM_VR_DS,
                                            "0.5\\1e2", &err), 0);
    uint8_t at[4] = {0x10, 0x00, 0x20, 0x00};
    assert_int_equal(dcm_dataset_set_bytes(ds, DCM_TAG(0x20, 0x9165), DCM_VR_AT,
                                           at, 4, &err), 0);
    assert_int_equal(int_of(ds, DCM_TAG(0x20, 0x13), 0), 42);
    assert_int_equal(int_of(ds, DCM_TAG(0x20, 0x13), 1), -7);
    assert_int_equal(int_of(ds, DCM_TAG(0x20, 0x9165), 0), 0x00100020);
    double d = 0;
    assert_int_equal(dcm_element_get_double(dcm_dataset_find(ds, DCM_TAG(0x28, 0x30)),
                                            1, &d, &err), 0);
    assert_true(d == 100.0);
    const dcm_element *is = dcm_dataset_find(ds, DCM_TAG(0x20, 0x13));
    assert_int_equal(dcm_element_value_count(is), 2);
    int64_t v;
    assert_int_equal(dcm_element_get_int(is, 2, &v, &err), DCM_E_NOT_FOUND);
    assert_int_equal(dcm_dataset_remove(ds, DCM_TAG(0x20, 0x13)), DCM_OK);
    assert_int_equal(dcm_dataset_remove(ds, DCM_TAG(0x20, 0x13)), DCM_E_NOT_FOUND);
    dcm_dataset_free(ds);
}

static void uids(void **state)
{
    (void)state;
    assert_true(dcm_uid_is_valid("1.2.840.10008.1.2"));
    assert_true(dcm_uid_is_valid("0.0"));
    assert_false(dcm_uid_is_valid("1.02"));
    assert_false(dcm_uid_is_valid("1..2"));
    assert_false(dcm_uid_is_valid("1.2."));
    assert_false(dcm_uid_is_valid(""));
    assert_false(dcm_uid_is_valid("1.2.a"));
    char a[DCM_UID_MAX + 1], b[DCM_UID_MAX + 1];
    assert_int_equal(dcm_uid_generate(a, NULL), DCM_OK);
    assert_int_equal(dcm_uid_generate(b, NULL), DCM_OK);
    assert_true(dcm_uid_is_valid(a));
    assert_memory_equal(a, "2.25.", 5);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explicit_le_file),
        cmocka_unit_test(implicit_le_vrs),
        cmocka_unit_test(explicit_be_swaps),
        cmocka_unit_test(bare_datasets_detected),
        cmocka_unit_test(meta_without_group_length),
        cmocka_unit_test(unknown_transfer_syntax_rejected),
        cmocka_unit_test(sequences_defined_and_undefined),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(item_overrun_rejected),
        cmocka_unit_test(undefined_length_un_is_sequence),
        cmocka_unit_test(known_un_gets_dictionary_vr),
        cmocka_unit_test(fragments_by_reference),
        cmocka_unit_test(bad_offset_table_rejected),
        cmocka_unit_test(fragment_limit),
        cmocka_unit_test(duplicates_and_order),
        cmocka_unit_test(odd_length_and_zero_padding),
        cmocka_unit_test(invalid_vr_rejected),
        cmocka_unit_test(truncation_at_every_offset),
        cmocka_unit_test(corpus_truncation),
        cmocka_unit_test(absurd_lengths),
        cmocka_unit_test(element_and_memory_limits),
        cmocka_unit_test(tree_memory_bounded),
        cmocka_unit_test(deflate_read_and_bomb),
        cmocka_unit_test(typed_values),
        cmocka_unit_test(uids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
