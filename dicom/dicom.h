/*
 * dicom.h - the DICOM data core of SIREN (PS3.5 encoding, PS3.6 dictionary,
 * PS3.10 files).
 *
 * What lives here: the data dictionary, value representations, transfer
 * syntaxes, a dataset tree (sequences, items, encapsulated pixel data), a
 * reader for every non-retired transfer syntax encoding (implicit and
 * explicit VR little endian, explicit VR big endian, deflate), a writer
 * (explicit/implicit VR little endian, deflate), Specific Character Set
 * decoding to UTF-8, UIDs and a dcmdump-like printer.
 *
 * Conventions used throughout this header:
 * - Errors: a fallible function returns 0 (or a pointer) on success and a
 *   negative DCM_E_* code (or NULL) on failure, and fills the dcm_error that
 *   the caller passed (which may be NULL when the caller does not care).
 * - Ownership: stated at each function. "Borrowed" pointers stay valid as
 *   long as the object they came from and until that object is modified.
 *   Every _free() accepts NULL.
 * - Large values (pixel data, big OB/OW/UN, long text) read from a file are
 *   not copied into memory: the element keeps a reference (offset, length)
 *   into its source, read on demand with dcm_element_read().
 * - Threads: the dictionary, VR and transfer syntax tables are immutable and
 *   safe from any thread. A dcm_file or dcm_dataset may be used by one thread
 *   at a time; distinct objects are independent (they never share state).
 */
#ifndef SIREN_DICOM_H
#define SIREN_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

enum dcm_error_code {
    DCM_OK = 0,
    DCM_E_NOMEM = -1,       /* out of memory */
    DCM_E_IO = -2,          /* the operating system refused a read/write */
    DCM_E_TRUNCATED = -3,   /* the input ends before the data does */
    DCM_E_INVALID = -4,     /* the input breaks the standard in a way that
                               makes it ambiguous or unreadable */
    DCM_E_LIMIT = -5,       /* the input exceeds a configured limit */
    DCM_E_UNSUPPORTED = -6, /* valid DICOM this code does not handle */
    DCM_E_NOT_FOUND = -7,   /* no such element / entry */
    DCM_E_ARG = -8,         /* the caller passed something unusable */
    DCM_E_TIMEOUT = -9,     /* the peer took longer than a timeout allows */
    DCM_E_CLOSED = -10,     /* the peer closed the connection */
    DCM_E_ABORTED = -11,    /* the association was aborted (A-ABORT) */
    DCM_E_REJECTED = -12,   /* the association was rejected (A-ASSOCIATE-RJ) */
};

/* Where and why something failed. offset is the byte offset in the input
 * (for deflated input: in the inflated stream, noted in the message) or -1
 * when no position applies; for network errors the message names the peer
 * where the caller gave one. */
typedef struct dcm_error {
    int code;
    int64_t offset;
    char message[256];
} dcm_error;

/* A constant name for an error code ("truncated", "invalid", ...). */
const char *dcm_error_code_name(int code);
/* printf-style fill of err (which may be NULL); offset -1 when no input
 * offset applies. Returns code so callers can `return dcm_fail(...)`. The
 * modules above dicom/ report their errors the same way. */
int dcm_fail(dcm_error *err, int code, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------------
 * Tags
 * ------------------------------------------------------------------------ */

#define DCM_TAG(group, element) \
    ((uint32_t)(((uint32_t)(group) << 16) | ((uint32_t)(element) & 0xFFFFu)))
#define DCM_TAG_GROUP(tag) ((uint16_t)((uint32_t)(tag) >> 16))
#define DCM_TAG_ELEMENT(tag) ((uint16_t)((uint32_t)(tag) & 0xFFFFu))

/* The few tags the data core itself depends on. Other modules look tags up
 * by keyword (dcm_dict_find_keyword) or spell them with DCM_TAG(). */
#define DCM_TAG_FILE_META_GROUP_LENGTH DCM_TAG(0x0002, 0x0000)
#define DCM_TAG_FILE_META_VERSION DCM_TAG(0x0002, 0x0001)
#define DCM_TAG_MEDIA_SOP_CLASS_UID DCM_TAG(0x0002, 0x0002)
#define DCM_TAG_MEDIA_SOP_INSTANCE_UID DCM_TAG(0x0002, 0x0003)
#define DCM_TAG_TRANSFER_SYNTAX_UID DCM_TAG(0x0002, 0x0010)
#define DCM_TAG_IMPLEMENTATION_CLASS_UID DCM_TAG(0x0002, 0x0012)
#define DCM_TAG_IMPLEMENTATION_VERSION_NAME DCM_TAG(0x0002, 0x0013)
#define DCM_TAG_SOURCE_AE_TITLE DCM_TAG(0x0002, 0x0016)
#define DCM_TAG_SPECIFIC_CHARACTER_SET DCM_TAG(0x0008, 0x0005)
#define DCM_TAG_SOP_CLASS_UID DCM_TAG(0x0008, 0x0016)
#define DCM_TAG_SOP_INSTANCE_UID DCM_TAG(0x0008, 0x0018)
#define DCM_TAG_PIXEL_REPRESENTATION DCM_TAG(0x0028, 0x0103)
#define DCM_TAG_BITS_ALLOCATED DCM_TAG(0x0028, 0x0100)
#define DCM_TAG_EXTENDED_OFFSET_TABLE DCM_TAG(0x7FE0, 0x0001)
#define DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS DCM_TAG(0x7FE0, 0x0002)
#define DCM_TAG_PIXEL_DATA DCM_TAG(0x7FE0, 0x0010)
#define DCM_TAG_ITEM DCM_TAG(0xFFFE, 0xE000)
#define DCM_TAG_ITEM_DELIMITATION DCM_TAG(0xFFFE, 0xE00D)
#define DCM_TAG_SEQUENCE_DELIMITATION DCM_TAG(0xFFFE, 0xE0DD)

/* The value length that means "undefined, ends with a delimiter". */
#define DCM_UNDEFINED_LENGTH 0xFFFFFFFFu

/* A private data element: odd group above 0008 (0001-0007 and FFFF are not
 * permitted groups at all). */
bool dcm_tag_is_private(uint32_t tag);
/* A private creator element: (gggg,0010) to (gggg,00FF), gggg private. */
bool dcm_tag_is_private_creator(uint32_t tag);

/* ------------------------------------------------------------------------
 * Value representations (PS3.5 6.2)
 * ------------------------------------------------------------------------ */

typedef enum dcm_vr {
    DCM_VR_NONE = 0, /* no VR: items and delimiters, or not known */
    DCM_VR_AE, DCM_VR_AS, DCM_VR_AT, DCM_VR_CS, DCM_VR_DA, DCM_VR_DS,
    DCM_VR_DT, DCM_VR_FD, DCM_VR_FL, DCM_VR_IS, DCM_VR_LO, DCM_VR_LT,
    DCM_VR_OB, DCM_VR_OD, DCM_VR_OF, DCM_VR_OL, DCM_VR_OV, DCM_VR_OW,
    DCM_VR_PN, DCM_VR_SH, DCM_VR_SL, DCM_VR_SQ, DCM_VR_SS, DCM_VR_ST,
    DCM_VR_SV, DCM_VR_TM, DCM_VR_UC, DCM_VR_UI, DCM_VR_UL, DCM_VR_UN,
    DCM_VR_UR, DCM_VR_US, DCM_VR_UT, DCM_VR_UV,
    DCM_VR_COUNT
} dcm_vr;

/* Two-letter name, "na" for DCM_VR_NONE and "??" for anything else. */
const char *dcm_vr_name(dcm_vr vr);
/* The VR spelled by two bytes, DCM_VR_NONE if they spell none. */
dcm_vr dcm_vr_from_chars(uint8_t first, uint8_t second);
/* Explicit VR encodings give this VR a 4-byte length (PS3.5 Table 7.1-1). */
bool dcm_vr_has_long_length(dcm_vr vr);
/* A character string VR (AE ... UT, PN, UI ...). */
bool dcm_vr_is_string(dcm_vr vr);
/* A string VR whose characters follow Specific Character Set (SH, LO, ST,
 * LT, UC, UT, PN); the others are the default repertoire. */
bool dcm_vr_uses_charset(dcm_vr vr);
/* Size of one binary number in this VR (2 for US/SS/OW/AT, 4 for UL, SL,
 * FL, OF, OL, 8 for FD, OD, SV, UV, OV), 1 for everything else: the unit
 * in which big endian data is byte-swapped. */
size_t dcm_vr_unit_size(dcm_vr vr);
/* The byte that pads a value of this VR to even length ('\0' for UI and
 * binary VRs, ' ' for the other strings). */
uint8_t dcm_vr_padding(dcm_vr vr);

/* ------------------------------------------------------------------------
 * Data dictionary (generated at build time from DCMTK's dicom.dic and
 * private.dic)
 * ------------------------------------------------------------------------ */

typedef struct dcm_dict_entry {
    uint32_t tag;        /* for a repeating group or range: the first tag */
    dcm_vr vr;           /* the VR to use when the encoding does not say */
    dcm_vr vr_alt;       /* the other VR the standard allows for this tag
                            (SS besides US, OB besides OW), or DCM_VR_NONE */
    const char *keyword; /* "PatientName"; for private entries DCMTK's name */
    const char *vm;      /* "1", "1-n", "2-2n", ... */
    const char *creator; /* private creator, NULL for standard entries */
    bool retired;
} dcm_dict_entry;

/* Standard (public) entry for a tag, including repeating groups such as
 * (60xx,3000) and (50xx,xxxx). NULL if unknown. O(log n). */
const dcm_dict_entry *dcm_dict_find(uint32_t tag);
/* Private entry: creator and the tag's group and element low byte, e.g.
 * ("GEMS_ACQU_01", (0019,1011)) finds (0019,"GEMS_ACQU_01",11) whichever
 * block (0019,10xx .. 0019,FFxx) the creator was given. A few entries of
 * DCMTK's private.dic name a full element ("PHILIPS MR/PART" 1000 vs 1100):
 * those hold only in their own block. NULL if unknown. */
const dcm_dict_entry *dcm_dict_find_private(const char *creator, uint32_t tag);
/* Standard entry by keyword ("PatientName"), NULL if unknown. O(log n). */
const dcm_dict_entry *dcm_dict_find_keyword(const char *keyword);

/* ------------------------------------------------------------------------
 * Transfer syntaxes (PS3.5 Section 10, PS3.6 Annex A)
 * ------------------------------------------------------------------------ */

#define DCM_TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define DCM_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DCM_TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define DCM_TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

typedef struct dcm_ts {
    const char *uid;
    const char *name;  /* as in PS3.6, e.g. "JPEG 2000 Image Compression" */
    bool explicit_vr;
    bool big_endian;
    bool deflated;     /* the dataset after the file meta is deflated */
    bool encapsulated; /* pixel data is encapsulated (fragments) */
    bool retired;
} dcm_ts;

/* The transfer syntax with this UID (trailing padding ignored), NULL if
 * this code does not know it. */
const dcm_ts *dcm_ts_find(const char *uid);

/* ------------------------------------------------------------------------
 * Limits: every bound the reader enforces on hostile input.
 * ------------------------------------------------------------------------ */

typedef struct dcm_limits {
    uint32_t max_depth;          /* sequence nesting */
    uint64_t max_value_bytes;    /* one element's value or fragment */
    uint64_t max_elements;       /* elements in one file, at all levels */
    uint64_t max_fragments;      /* fragments of one encapsulated value */
    uint64_t max_total_bytes;    /* the input */
    uint64_t max_memory_bytes;   /* memory one file's tree and the values
                                    it holds in memory may take */
    uint64_t max_inflated_bytes; /* a deflated dataset, once inflated */
    uint32_t inline_value_bytes; /* longer values are referenced, not read */
} dcm_limits;

#define DCM_DEFAULT_MAX_DEPTH 64u
#define DCM_DEFAULT_MAX_VALUE_BYTES (2ull << 30)      /* 2 GiB */
#define DCM_DEFAULT_MAX_ELEMENTS (1ull << 20)         /* 1 Mi */
#define DCM_DEFAULT_MAX_FRAGMENTS (1ull << 20)        /* 1 Mi */
#define DCM_DEFAULT_MAX_TOTAL_BYTES (16ull << 30)     /* 16 GiB */
#define DCM_DEFAULT_MAX_MEMORY_BYTES (256ull << 20)   /* 256 MiB */
#define DCM_DEFAULT_MAX_INFLATED_BYTES (512ull << 20) /* 512 MiB */
#define DCM_DEFAULT_INLINE_VALUE_BYTES (64u << 10)    /* 64 KiB */

/* The defaults above. */
void dcm_limits_default(dcm_limits *limits);

/* ------------------------------------------------------------------------
 * Datasets and elements
 * ------------------------------------------------------------------------ */

typedef struct dcm_dataset dcm_dataset;
typedef struct dcm_element dcm_element;

typedef enum dcm_element_kind {
    DCM_KIND_VALUE = 0, /* a value of bytes (possibly empty) */
    DCM_KIND_SEQUENCE,  /* SQ: zero or more items, each a dataset */
    DCM_KIND_FRAGMENTS, /* encapsulated pixel data: offset table + frames */
} dcm_element_kind;

/* A new empty dataset. Owned by the caller: dcm_dataset_free(). */
dcm_dataset *dcm_dataset_new(void);
/* Frees a dataset from dcm_dataset_new() and everything it holds. Items
 * and file datasets belong to their sequence or file: never free them. */
void dcm_dataset_free(dcm_dataset *ds);

/* Number of elements directly in ds (not counting nested items). */
size_t dcm_dataset_count(const dcm_dataset *ds);
/* The index-th element in ascending tag order (borrowed). */
dcm_element *dcm_dataset_at(const dcm_dataset *ds, size_t index);
/* The element with this tag directly in ds (borrowed), NULL if absent. */
dcm_element *dcm_dataset_find(const dcm_dataset *ds, uint32_t tag);
/* Removes and frees an element; DCM_E_NOT_FOUND if there is none. */
int dcm_dataset_remove(dcm_dataset *ds, uint32_t tag);
/* For an item: the dataset holding its sequence; NULL for a top level. */
dcm_dataset *dcm_dataset_parent(const dcm_dataset *ds);
/* For an item: the tag of the sequence it is an item of; 0 at top level. */
uint32_t dcm_dataset_parent_tag(const dcm_dataset *ds);

/* The private creator of a private element's block, e.g. for (0019,1010)
 * the value of (0019,0010) without its padding, copied NUL-terminated into
 * buf. False if tag is not a private data element, ds has no creator for
 * its block, or the creator does not fit in size bytes (a valid LO creator
 * fits in DCM_CREATOR_MAX + 1). Looks only in ds. */
#define DCM_CREATOR_MAX 64
bool dcm_dataset_private_creator(const dcm_dataset *ds, uint32_t tag,
                                 char *buf, size_t size);
/* The tag a private element has in ds: creator block in group, low byte
 * element_byte; DCM_E_NOT_FOUND if ds has no such creator. */
int dcm_dataset_private_tag(const dcm_dataset *ds, uint16_t group,
                            const char *creator, uint8_t element_byte,
                            uint32_t *tag_out);

/* The transfer syntax whose pixel data encoding the dataset holds: the
 * syntax it was read with (for a file), or what the caller set. New
 * datasets start with NULL, which means "native pixel data". */
const dcm_ts *dcm_dataset_syntax(const dcm_dataset *ds);
void dcm_dataset_set_syntax(dcm_dataset *ds, const dcm_ts *ts);

/* Sets (adds or replaces) an element with a copy of len bytes of value,
 * which must already be encoded for vr in little endian; a string is not
 * padded here (the writer pads). */
int dcm_dataset_set_bytes(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                          const void *value, size_t len, dcm_error *err);
/* The same without the copy, for values too large to hold twice (decoded
 * pixel data): value is a malloc'ed buffer of at least len + 1 bytes (the
 * last one gets the NUL every in-memory value ends with), and the
 * dataset owns it from this call on, also when the call fails (it is
 * freed then). */
int dcm_dataset_take_bytes(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                           uint8_t *value, size_t len, dcm_error *err);
/* Sets a string element (copies text; backslash separates values). */
int dcm_dataset_set_string(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                           const char *text, dcm_error *err);
/* Sets an empty sequence (replacing any element with that tag) and returns
 * it (borrowed). */
dcm_element *dcm_dataset_set_sequence(dcm_dataset *ds, uint32_t tag,
                                      dcm_error *err);
/* Appends a new empty item to a sequence and returns it (borrowed). */
dcm_dataset *dcm_element_append_item(dcm_element *seq, dcm_error *err);
/* Removes and frees the index-th item of a sequence; later items move
 * down by one. */
int dcm_element_remove_item(dcm_element *seq, size_t index, dcm_error *err);

uint32_t dcm_element_tag(const dcm_element *el);
dcm_vr dcm_element_vr(const dcm_element *el);
dcm_element_kind dcm_element_kind_of(const dcm_element *el);
/* Value length in bytes for DCM_KIND_VALUE; 0 for the other kinds. */
uint64_t dcm_element_length(const dcm_element *el);
/* True when the input gave this sequence, item set or pixel data an
 * undefined length (kept for dumping; the writer decides for itself). */
bool dcm_element_had_undefined_length(const dcm_element *el);

/* The value bytes if they are in memory (little endian), else NULL (the
 * value is referenced: use dcm_element_read). Borrowed. */
const uint8_t *dcm_element_bytes(const dcm_element *el);
/* Copies len bytes of the value starting at offset into buf (little
 * endian, whatever the input's byte order). */
int dcm_element_read(const dcm_element *el, uint64_t offset, void *buf,
                     size_t len, dcm_error *err);

/* Sequences: number of items and the index-th item (borrowed). */
size_t dcm_element_item_count(const dcm_element *el);
dcm_dataset *dcm_element_item(const dcm_element *el, size_t index);

/* Encapsulated pixel data: number of items including the Basic Offset
 * Table (item 0, possibly empty), and each item's length and bytes. */
size_t dcm_element_fragment_count(const dcm_element *el);
uint64_t dcm_element_fragment_length(const dcm_element *el, size_t index);
int dcm_element_fragment_read(const dcm_element *el, size_t index,
                              uint64_t offset, void *buf, size_t len,
                              dcm_error *err);
/* Appends a fragment holding a copy of len bytes (for encoders). The
 * element must be DCM_KIND_FRAGMENTS; see dcm_dataset_set_fragments. */
int dcm_element_append_fragment(dcm_element *el, const void *data,
                                size_t len, dcm_error *err);
/* Replaces the bytes of the index-th item with a copy of len bytes (item
 * 0: the Basic Offset Table, which encoders fill once they know where
 * their frames start). */
int dcm_element_set_fragment(dcm_element *el, size_t index, const void *data,
                             size_t len, dcm_error *err);
/* Sets an encapsulated element with an empty Basic Offset Table. */
dcm_element *dcm_dataset_set_fragments(dcm_dataset *ds, uint32_t tag,
                                       dcm_vr vr, dcm_error *err);

/* Number of values: backslash-separated for strings (0 for an empty
 * value), value length / unit size for binary numbers. */
size_t dcm_element_value_count(const dcm_element *el);
/* The whole value as a NUL-terminated string, trailing padding (spaces,
 * NULs) removed, in the encoding of the input (see dcm_dataset_get_utf8).
 * Owned by the caller (free()). NULL with DCM_E_ARG if not a string VR. */
char *dcm_element_get_string(const dcm_element *el, dcm_error *err);
/* One value as an integer (US, SS, UL, SL, SV, UV, IS, AT) or a double
 * (those, plus FL, FD, DS). */
int dcm_element_get_int(const dcm_element *el, size_t index, int64_t *out,
                        dcm_error *err);
int dcm_element_get_double(const dcm_element *el, size_t index, double *out,
                           dcm_error *err);

/* The value of a string element of ds decoded to UTF-8 under the Specific
 * Character Set that applies to ds (its own, else its parents'). Owned by
 * the caller (free()). Bytes that cannot be decoded become U+FFFD. */
char *dcm_dataset_get_utf8(const dcm_dataset *ds, uint32_t tag,
                           dcm_error *err);
/* Re-encodes every string value of ds (all levels) to UTF-8 and sets
 * Specific Character Set to ISO_IR 192. The writer otherwise keeps the
 * input's encoding byte for byte. */
int dcm_dataset_convert_to_utf8(dcm_dataset *ds, dcm_error *err);

/* ------------------------------------------------------------------------
 * Specific Character Set (PS3.5 Section 6.1, PS3.3 C.12.1.1.2)
 * ------------------------------------------------------------------------ */

typedef struct dcm_charset dcm_charset;

/* Parses a Specific Character Set value ("ISO_IR 100", "\ISO 2022 IR 87",
 * ...). An empty value means the default repertoire. Owned by the caller:
 * dcm_charset_free(). DCM_E_UNSUPPORTED names an unknown term. */
dcm_charset *dcm_charset_parse(const char *value, size_t len, dcm_error *err);
void dcm_charset_free(dcm_charset *cs);
/* Decodes a string value of the given VR to UTF-8, NUL-terminated, owned
 * by the caller. ISO 2022 escapes are honoured and reset as PS3.5 6.1.2.5.3
 * says (at value and PN component group delimiters, and at control
 * characters). Undecodable bytes become U+FFFD and set *lossy to true if
 * lossy is given (it is never set back to false, so that a caller can
 * collect it over many values). */
char *dcm_charset_decode(const dcm_charset *cs, dcm_vr vr,
                         const uint8_t *bytes, size_t len, size_t *out_len,
                         bool *lossy, dcm_error *err);

/* ------------------------------------------------------------------------
 * Reading files
 * ------------------------------------------------------------------------ */

typedef struct dcm_file dcm_file;

/* Called for each tolerated oddity (odd length, missing group length, ...)
 * with the byte offset and a message. */
typedef void (*dcm_warn_fn)(void *ctx, int64_t offset, const char *message);

typedef struct dcm_read_options {
    const dcm_limits *limits;    /* NULL: dcm_limits_default() */
    /* For input without a Part 10 file meta: the transfer syntax to assume;
     * NULL: detect implicit/explicit VR and byte order from the data. */
    const char *transfer_syntax;
    dcm_warn_fn warn;            /* NULL: warnings are dropped */
    void *warn_ctx;
    /* Where a deflated dataset is inflated to (an unlinked file); NULL:
     * $TMPDIR, else /tmp. */
    const char *temp_dir;
    /* The input is a bare dataset in transfer_syntax (required then), as
     * DIMSE messages are: no preamble, meta or encoding detection. */
    bool dataset_only;
} dcm_read_options;

/* Opens and parses a DICOM file: a Part 10 file (preamble, "DICM", meta) or
 * a bare dataset. Large values stay in the file, which stays open (one
 * descriptor) until dcm_file_free(). options may be NULL. Owned by the
 * caller. On error: NULL, err says what and at which byte offset. */
dcm_file *dcm_file_open(const char *path, const dcm_read_options *options,
                        dcm_error *err);
/* The same for bytes in memory. data is borrowed, not copied: it must
 * outlive the returned file. */
dcm_file *dcm_file_open_memory(const void *data, size_t len,
                               const dcm_read_options *options,
                               dcm_error *err);
void dcm_file_free(dcm_file *file);

/* The file meta group (0002,xxxx) as read; empty if there was none. */
dcm_dataset *dcm_file_meta(const dcm_file *file);
/* The dataset after the meta. Belongs to the file. */
dcm_dataset *dcm_file_dataset(const dcm_file *file);
/* The transfer syntax the dataset was read with. */
const dcm_ts *dcm_file_transfer_syntax(const dcm_file *file);
/* True if the input had the 128-byte preamble and "DICM". */
bool dcm_file_had_preamble(const dcm_file *file);
/* Where the dataset starts in the input (after the meta); for deflated
 * input, where the deflated stream starts. */
uint64_t dcm_file_dataset_offset(const dcm_file *file);

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

/* Where written bytes go: returns 0, or -1 with errno set. */
typedef int (*dcm_write_fn)(void *ctx, const void *data, size_t len);

/* A dcm_write_fn writing to the file descriptor *(int *)ctx. Writing
 * through it also lets referenced values be copied from file to file by
 * the kernel (copy_file_range) instead of through a buffer. */
int dcm_fd_writer(void *ctx, const void *data, size_t len);

/* Project identity written into every file meta we make. */
#define DCM_IMPLEMENTATION_CLASS_UID "2.25.69362924982350334951942534072083546756"
#define DCM_IMPLEMENTATION_VERSION_NAME "SIREN_0.1"

typedef struct dcm_write_options {
    /* Target syntax. NULL: the dataset's own encapsulated syntax if its
     * pixel data is encapsulated, else Explicit VR Little Endian. */
    const char *transfer_syntax;
    const char *source_ae_title; /* (0002,0016); NULL: not written */
    /* Media Storage SOP Class/Instance UID; NULL: the dataset's SOP Class
     * and Instance UID (0008,0016)/(0008,0018), which must then exist. */
    const char *sop_class_uid;
    const char *sop_instance_uid;
    int deflate_level;           /* zlib level 0-9 for deflate; -1 default */
} dcm_write_options;

/* Writes ds as a Part 10 file: preamble, "DICM", a fresh file meta (group
 * length, version, SOP class and instance, transfer syntax, our
 * implementation class UID and version name), then the dataset: group
 * length elements and (0002,xxxx) elements of ds dropped, values padded to
 * even length, sequences and items with undefined lengths (write.c says
 * why). options may be NULL. Pixel data is written as it is encoded: a
 * target syntax that would need transcoding is DCM_E_UNSUPPORTED. */
int dcm_write_file(const dcm_dataset *ds, const dcm_write_options *options,
                   dcm_write_fn write, void *ctx, dcm_error *err);
/* The same into a new file at path (created 0600, fsync'ed before return;
 * replaced only if complete: written to a temporary name, then renamed,
 * then the directory fsync'ed). DCM_E_IO from that last step means the
 * file is complete at path but its name may not survive a crash. */
int dcm_write_file_path(const dcm_dataset *ds,
                        const dcm_write_options *options, const char *path,
                        dcm_error *err);
/* A file meta for dcm_write_meta: the three UIDs are required, the rest
 * optional (NULL: not written). */
typedef struct dcm_meta {
    const char *sop_class_uid;
    const char *sop_instance_uid;
    const char *ts_uid;
    const char *source_ae_title;     /* (0002,0016) */
    const char *sending_ae_title;    /* (0002,0017) */
    const char *receiving_ae_title;  /* (0002,0018) */
    const char *sending_address;     /* (0002,0027), a URI */
    const char *private_creator_uid; /* (0002,0100), with private_info */
    const void *private_info;        /* (0002,0102), OB */
    size_t private_info_len;
} dcm_meta;

/* Writes the preamble, "DICM" and the file meta for a dataset that follows
 * as bytes already encoded in meta->ts_uid (a C-STORE data set received
 * from the network, written to disk as it arrives). */
int dcm_write_meta(const dcm_meta *meta, dcm_write_fn write, void *ctx,
                   dcm_error *err);
/* Whether dcm_write_dataset could write ds in ts_uid (the syntax is known
 * and writable, the pixel data needs no transcoding, ds is no DICOMDIR):
 * checked before a C-STORE announces a data set it must then deliver. */
int dcm_write_check(const dcm_dataset *ds, const char *ts_uid,
                    dcm_error *err);
/* Writes only the dataset (no preamble, no meta) in transfer syntax
 * ts_uid, as a DIMSE data set travels on the network. */
int dcm_write_dataset(const dcm_dataset *ds, const char *ts_uid,
                      dcm_write_fn write, void *ctx, dcm_error *err);

/* ------------------------------------------------------------------------
 * UIDs
 * ------------------------------------------------------------------------ */

#define DCM_UID_MAX 64

/* A UID is 1-64 characters of digits and dots, components without leading
 * zeros (except "0"), no empty component. */
bool dcm_uid_is_valid(const char *uid);
/* A new random UID under 2.25 (PS3.5 B.2) into out[DCM_UID_MAX + 1]. */
int dcm_uid_generate(char out[DCM_UID_MAX + 1], dcm_error *err);
/* "2.25.<decimal>" of a UUID's 128 bits (big endian, as RFC 9562 writes
 * them), into out[DCM_UID_MAX + 1]. */
void dcm_uid_from_uuid(const uint8_t uuid[16], char out[DCM_UID_MAX + 1]);

/* ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------ */

/* Prints the file as dcmdump does: a meta section and a dataset section,
 * one element per line (tag, VR, value or length, "#", length, VM,
 * keyword), nested items indented. Large values are shown by length. */
int dcm_dump_file(const dcm_file *file, FILE *out, dcm_error *err);
/* Prints one dataset at the given indentation (in levels). */
int dcm_dump_dataset(const dcm_dataset *ds, int indent, FILE *out,
                     dcm_error *err);


/* ========================================================================
 * Network: the DICOM Upper Layer (PS3.8) and DIMSE (PS3.7)
 *
 * An association runs over a transport (plain TCP here, TLS in tls/). The
 * calls below block, each bounded by the timeouts of its configuration;
 * one association is used by one thread at a time, and distinct
 * associations are independent (the gateway runs one thread each).
 * ======================================================================== */

/* ---- transports ------------------------------------------------------- */

typedef struct dcm_transport dcm_transport;

typedef struct dcm_transport_ops {
    /* Reads 1 to len bytes, waiting at most timeout_ms (< 0: no limit).
     * Returns the count, or DCM_E_CLOSED at the end of the stream,
     * DCM_E_TIMEOUT, DCM_E_IO. */
    long (*read)(dcm_transport *t, void *buf, size_t len, int timeout_ms,
                 dcm_error *err);
    /* Writes all len bytes within timeout_ms. */
    int (*write)(dcm_transport *t, const void *buf, size_t len,
                 int timeout_ms, dcm_error *err);
    /* Closes the connection and frees t. */
    void (*close)(dcm_transport *t);
} dcm_transport_ops;

/* Every transport starts with this; implementations embed it first. */
struct dcm_transport {
    const dcm_transport_ops *ops;
    char peer[64];  /* "address:port" of the other end, for logs */
    void *identity; /* who the peer proved to be (TLS), or NULL; owned by
                       the transport */
};

/* A listening TCP socket on address (NULL or "" for all) and port, with
 * SO_REUSEADDR; returns the descriptor. */
int dcm_tcp_listen(const char *address, const char *port, int backlog,
                   dcm_error *err);
/* The port a listening socket is bound to (for port "0"). */
int dcm_tcp_local_port(int fd);
/* Accepts one connection, returns its descriptor with TCP_NODELAY set
 * (Nagle's algorithm and delayed ACKs cost ~40 ms per DIMSE exchange). */
int dcm_tcp_accept(int listen_fd, char peer[64], dcm_error *err);
/* Connects within timeout_ms; TCP_NODELAY set. Returns the descriptor. */
int dcm_tcp_connect(const char *host, const char *port, int timeout_ms,
                    char peer[64], dcm_error *err);
/* A plain TCP transport over a connected socket (takes the descriptor). */
dcm_transport *dcm_tcp_transport(int fd, const char *peer, dcm_error *err);

/* ---- association parameters ------------------------------------------ */

#define DCM_AE_TITLE_MAX 16
#define DCM_MAX_CONTEXTS 128          /* presentation context IDs 1..255 odd */
#define DCM_MAX_CONTEXT_SYNTAXES 32   /* known transfer syntaxes kept per
                                         proposed context */
#define DCM_APPLICATION_CONTEXT "1.2.840.10008.3.1.1.1"
#define DCM_VERIFICATION_SOP_CLASS "1.2.840.10008.1.1"

/* Presentation context results (PS3.8 9.3.3.2). */
enum dcm_pc_result {
    DCM_PC_ACCEPTED = 0,
    DCM_PC_USER_REJECTED = 1,
    DCM_PC_NO_REASON = 2,
    DCM_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3,
    DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4,
};

typedef struct dcm_pcontext {
    uint8_t id;
    uint8_t result; /* enum dcm_pc_result */
    char abstract_syntax[DCM_UID_MAX + 1];
    /* Proposed transfer syntaxes this code knows, in the proposer's order
     * (unknown ones cannot be accepted and are only counted). */
    uint8_t proposed_count;
    uint8_t unknown_count;
    const dcm_ts *proposed[DCM_MAX_CONTEXT_SYNTAXES];
    const dcm_ts *accepted; /* when result is DCM_PC_ACCEPTED */
    /* SCP/SCU role selection (PS3.7 D.3.3.4): -1 not negotiated. */
    int8_t scu_role, scp_role;
} dcm_pcontext;

/* User Identity Negotiation (PS3.7 D.3.3.7): recorded, not verified (site
 * identity comes from TLS). A passcode is never kept. */
enum dcm_user_identity_type {
    DCM_USER_NONE = 0,
    DCM_USER_USERNAME = 1,
    DCM_USER_USERNAME_PASSCODE = 2,
    DCM_USER_KERBEROS = 3,
    DCM_USER_SAML = 4,
    DCM_USER_JWT = 5,
};

typedef struct dcm_user_identity {
    uint8_t type;            /* enum dcm_user_identity_type */
    bool response_requested;
    char username[129];      /* types 1 and 2, printable, may be cut */
    uint16_t primary_length; /* bytes of the primary field as sent */
} dcm_user_identity;

/* What one side proposed or the two agreed, as seen from this end. */
typedef struct dcm_assoc_info {
    uint16_t protocol_version;             /* bit 0: version 1 */
    char calling_ae[DCM_AE_TITLE_MAX + 1]; /* without padding spaces */
    char called_ae[DCM_AE_TITLE_MAX + 1];
    char application_context[DCM_UID_MAX + 1];
    size_t context_count;
    dcm_pcontext contexts[DCM_MAX_CONTEXTS];
    uint32_t peer_max_pdu;   /* the most the peer receives; 0: no limit */
    char peer_implementation_uid[DCM_UID_MAX + 1];
    char peer_implementation_version[DCM_AE_TITLE_MAX + 1];
    bool async_window_proposed;
    uint16_t async_invoked, async_performed;
    dcm_user_identity user;
} dcm_assoc_info;

/* A-ASSOCIATE-RJ (PS3.8 9.3.4). */
enum {
    DCM_RJ_PERMANENT = 1, DCM_RJ_TRANSIENT = 2,
    DCM_RJ_SOURCE_USER = 1, DCM_RJ_SOURCE_ACSE = 2,
    DCM_RJ_SOURCE_PRESENTATION = 3,
    /* reasons, source user */
    DCM_RJ_NO_REASON = 1, DCM_RJ_CONTEXT_NOT_SUPPORTED = 2,
    DCM_RJ_CALLING_AE_NOT_RECOGNIZED = 3, DCM_RJ_CALLED_AE_NOT_RECOGNIZED = 7,
    /* reasons, source ACSE */
    DCM_RJ_PROTOCOL_VERSION_NOT_SUPPORTED = 2,
    /* reasons, source presentation */
    DCM_RJ_TEMPORARY_CONGESTION = 1, DCM_RJ_LOCAL_LIMIT_EXCEEDED = 2,
};

typedef struct dcm_reject {
    uint8_t result, source, reason;
} dcm_reject;

/* Words for a rejection ("permanent, service user: calling AE title not
 * recognized") into buf. */
const char *dcm_reject_describe(const dcm_reject *rj, char *buf, size_t size);

/* Limits and timeouts of one association, either side. */
typedef struct dcm_net_limits {
    uint32_t max_pdu_bytes;       /* P-DATA we receive, announced; 4096..16Mi */
    uint32_t max_associate_bytes; /* A-ASSOCIATE-RQ/AC we accept */
    uint32_t max_command_bytes;   /* one DIMSE command set */
    int artim_timeout_ms;         /* waiting for A-ASSOCIATE-RQ, or for the
                                     peer to close after release/abort */
    int dimse_timeout_ms;         /* each PDU once it has started, and each
                                     response the SCU waits for */
    int idle_timeout_ms;          /* an SCP waiting for the next command */
} dcm_net_limits;

#define DCM_DEFAULT_MAX_PDU_BYTES (128u << 10)
#define DCM_DEFAULT_MAX_ASSOCIATE_BYTES (256u << 10)
#define DCM_DEFAULT_MAX_COMMAND_BYTES (64u << 10)
#define DCM_DEFAULT_ARTIM_TIMEOUT_MS 30000
#define DCM_DEFAULT_DIMSE_TIMEOUT_MS 60000
#define DCM_DEFAULT_IDLE_TIMEOUT_MS 300000

void dcm_net_limits_default(dcm_net_limits *limits);

/* Accept side. check is called with the parsed request after the
 * protocol-level checks (version, application context, called AE); it
 * returns 0 to go on or fills reject. */
typedef int (*dcm_assoc_check_fn)(void *ctx, const dcm_assoc_info *request,
                                  const dcm_transport *transport,
                                  dcm_reject *reject);

typedef struct dcm_scp_config {
    const char *ae_title;     /* called AE title we answer to (required) */
    dcm_assoc_check_fn check; /* NULL: accept any calling AE */
    void *check_ctx;
    /* Abstract syntaxes accepted; NULL: Verification and every storage
     * SOP class (dcm_storage_sop_classes). */
    const char *const *abstract_syntaxes;
    size_t abstract_syntax_count;
    /* Transfer syntax UIDs in order of preference; for each proposed
     * context the first of these that the requestor proposed is accepted.
     * NULL: dcm_default_ts_preference. */
    const char *const *ts_preference;
    size_t ts_preference_count;
    dcm_net_limits limits;
} dcm_scp_config;

/* Request side: what to propose. */
typedef struct dcm_proposal {
    const char *abstract_syntax;
    const dcm_ts *syntaxes[DCM_MAX_CONTEXT_SYNTAXES];
    size_t syntax_count;
} dcm_proposal;

typedef struct dcm_scu_config {
    const char *calling_ae;
    const char *called_ae;
    const dcm_proposal *proposals; /* up to DCM_MAX_CONTEXTS */
    size_t proposal_count;
    const dcm_user_identity *user; /* NULL: none proposed */
    dcm_net_limits limits;
} dcm_scu_config;

/* The storage SOP classes accepted by default (from PS3.4 via the project's
 * sops.json), NULL-terminated. */
extern const char *const dcm_storage_sop_classes[];
extern const size_t dcm_storage_sop_class_count;
/* Default transfer syntax preference (UIDs): explicit VR LE, implicit VR
 * LE, deflated, then the compressed image and video syntaxes (accepted as
 * sent), then explicit VR big endian. Not accepted: retired JPEG processes
 * and the JPIP syntaxes (their pixel data is a URL elsewhere). */
extern const char *const dcm_default_ts_preference[];
extern const size_t dcm_default_ts_preference_count;

typedef struct dcm_assoc dcm_assoc;

/* Runs the accepting side of association establishment on transport (the
 * association owns it from here, also on failure). Returns the established
 * association, or NULL: DCM_E_REJECTED (we sent A-ASSOCIATE-RJ; the
 * message says why), DCM_E_ABORTED, DCM_E_TIMEOUT, DCM_E_CLOSED, ... */
dcm_assoc *dcm_assoc_accept(dcm_transport *transport,
                            const dcm_scp_config *config, dcm_error *err);
/* Rejects a connection before reading its request fully (too many
 * associations): reads the A-ASSOCIATE-RQ within the ARTIM timeout, sends
 * A-ASSOCIATE-RJ with reject, closes. Always consumes transport. */
void dcm_assoc_refuse(dcm_transport *transport, const dcm_reject *reject,
                      const dcm_net_limits *limits);
/* Runs the requesting side. DCM_E_REJECTED carries the acceptor's reasons
 * in the message. */
dcm_assoc *dcm_assoc_request(dcm_transport *transport,
                             const dcm_scu_config *config, dcm_error *err);
/* The negotiated parameters (contexts with results, the peer's AE titles,
 * max PDU, identity). Borrowed. */
const dcm_assoc_info *dcm_assoc_info_of(const dcm_assoc *assoc);
const dcm_transport *dcm_assoc_transport(const dcm_assoc *assoc);
/* The accepted context with this ID, or NULL. */
const dcm_pcontext *dcm_assoc_context(const dcm_assoc *assoc, uint8_t id);
/* An accepted context for abstract syntax, preferring one whose transfer
 * syntax is ts (may be NULL); NULL if none. */
const dcm_pcontext *dcm_assoc_find_context(const dcm_assoc *assoc,
                                           const char *abstract_syntax,
                                           const dcm_ts *ts);
/* Requestor: orderly release (A-RELEASE-RQ, waits for RP). */
int dcm_assoc_release(dcm_assoc *assoc, dcm_error *err);
/* Either side: A-ABORT (service user), then close. */
void dcm_assoc_abort(dcm_assoc *assoc);
/* Closes what is left and frees. Accepts NULL. */
void dcm_assoc_free(dcm_assoc *assoc);
/* True while the association can carry DIMSE messages (not released,
 * aborted or failed). */
bool dcm_assoc_is_established(const dcm_assoc *assoc);

/* ---- DIMSE messages (PS3.7) ------------------------------------------- */

enum dcm_command_field {
    DCM_C_STORE_RQ = 0x0001, DCM_C_STORE_RSP = 0x8001,
    DCM_C_ECHO_RQ = 0x0030, DCM_C_ECHO_RSP = 0x8030,
};

/* Status codes (PS3.4 B.2.3, PS3.7 C). */
enum dcm_status {
    DCM_STATUS_SUCCESS = 0x0000,
    DCM_STATUS_WARNING_COERCION = 0xB000,
    DCM_STATUS_WARNING_ELEMENTS_DISCARDED = 0xB006,
    DCM_STATUS_WARNING_DATASET_MISMATCH = 0xB007,
    DCM_STATUS_OUT_OF_RESOURCES = 0xA700,
    DCM_STATUS_DATASET_MISMATCH = 0xA900,
    DCM_STATUS_CANNOT_UNDERSTAND = 0xC000,
    DCM_STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122,
    DCM_STATUS_NOT_AUTHORIZED = 0x0124,
    DCM_STATUS_PROCESSING_FAILURE = 0x0110,
    DCM_STATUS_UNRECOGNIZED_OPERATION = 0x0211,
};

typedef struct dcm_command {
    uint16_t field;        /* enum dcm_command_field */
    uint16_t message_id;
    uint16_t responded_id; /* responses */
    uint16_t priority;
    uint16_t status;       /* responses */
    bool has_dataset;
    uint8_t context_id;    /* the presentation context it travels on */
    char sop_class[DCM_UID_MAX + 1];
    char sop_instance[DCM_UID_MAX + 1];
    char move_originator_ae[DCM_AE_TITLE_MAX + 1];
    uint16_t move_originator_id;
    char error_comment[65];
} dcm_command;

/* What dcm_receive_command got. */
enum dcm_received {
    DCM_RECEIVED_COMMAND = 0, /* *cmd filled */
    DCM_RECEIVED_RELEASE = 1, /* the peer released; we replied; done */
};

/* Waits (idle timeout) for the next DIMSE command. A command with a data
 * set must be followed by dcm_receive_dataset. Returns enum dcm_received or
 * a negative error (the association is then aborted or gone). */
int dcm_receive_command(dcm_assoc *assoc, dcm_command *cmd, dcm_error *err);
/* Streams the data set that follows a command to write (in the transfer
 * syntax of its context), one PDV at a time; write NULL discards it. A
 * write failure stops the writing but not the reading: the rest is
 * drained so that the association can answer with a failure status;
 * *write_failed tells. */
int dcm_receive_dataset(dcm_assoc *assoc, dcm_write_fn write, void *ctx,
                        uint64_t *bytes, bool *write_failed, dcm_error *err);
/* Sends a command (and says whether a data set follows in cmd). */
int dcm_send_command(dcm_assoc *assoc, const dcm_command *cmd,
                     dcm_error *err);

/* Reads up to len bytes of a data set to send; returns the count, 0 at
 * the end, or -1 (with errno set). */
typedef long (*dcm_read_fn)(void *ctx, void *buf, size_t len);
/* Sends a data set on context_id from read, in PDVs up to the peer's max
 * PDU. */
int dcm_send_dataset(dcm_assoc *assoc, uint8_t context_id, dcm_read_fn read,
                     void *ctx, dcm_error *err);

/* SCU: C-ECHO; *status gets the response status. */
int dcm_echo(dcm_assoc *assoc, uint16_t *status, dcm_error *err);
/* SCU: C-STORE of a DICOM file. The data set goes byte for byte when a
 * context accepted its transfer syntax, else re-encoded into one the
 * context accepted (native pixel data only). *status gets the response;
 * error_comment (65 bytes, may be NULL) its Error Comment. */
int dcm_store_file(dcm_assoc *assoc, const char *path, uint16_t message_id,
                   uint16_t *status, char *error_comment, dcm_error *err);

/* SCP: what to do with a C-STORE. */
typedef struct dcm_store_handler {
    /* A request arrived: return a sink for its data set in *instance, or
     * fill *status with a failure (the data is then drained). */
    int (*begin)(void *ctx, const dcm_assoc *assoc, const dcm_command *rq,
                 void **instance, uint16_t *status);
    dcm_write_fn data; /* called with instance as ctx */
    /* After the data set: complete says whether it arrived whole and was
     * written; returns the status to answer (and may fill comment). */
    uint16_t (*end)(void *instance, bool complete, char comment[65]);
    void *ctx;
} dcm_store_handler;

/* SCP loop: answers C-ECHO, runs C-STORE through store, answers anything
 * else with "unrecognized operation" (0x0211), until the peer releases
 * (returns DCM_OK) or the association fails (negative). */
int dcm_scp_serve(dcm_assoc *assoc, const dcm_store_handler *store,
                  dcm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_DICOM_H */
