/*
 * internal.h - private to dicom/: the shapes behind the opaque types of
 * dicom.h and helpers shared by the module's files. Nothing outside dicom/
 * includes this.
 */
#ifndef SIREN_DICOM_INTERNAL_H
#define SIREN_DICOM_INTERNAL_H

#include "dicom.h"

#include <stdarg.h>

/* printf-style error fill; returns code so callers can `return dcm_fail()`. */
int dcm_fail(dcm_error *err, int code, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Overflow-safe a + b <= limit for sizes read from input. */
static inline bool dcm_add_fits(uint64_t a, uint64_t b, uint64_t limit)
{
    return a <= limit && b <= limit - a;
}

/* ---- sources: where referenced values live -------------------------------
 * A source is either a file descriptor (read with pread) or bytes in
 * memory. It is reference-counted because every element that references it
 * holds it alive; a file keeps one reference. */

typedef struct dcm_source dcm_source;

dcm_source *dcm_source_from_fd(int fd, uint64_t size);  /* takes the fd */
dcm_source *dcm_source_from_memory(const uint8_t *data, size_t len,
                                   bool owned);     /* owned: free() it */
dcm_source *dcm_source_ref(dcm_source *src);
void dcm_source_unref(dcm_source *src);
uint64_t dcm_source_size(const dcm_source *src);
/* Copies exactly len bytes at offset; DCM_E_TRUNCATED past the end. */
int dcm_source_read(const dcm_source *src, uint64_t offset, void *buf,
                    size_t len, dcm_error *err);
/* The bytes at offset if the source is in memory, else NULL. */
const uint8_t *dcm_source_memory(const dcm_source *src, uint64_t offset);

/* Swaps each unit_size-byte number in buf (len a multiple of unit_size). */
void dcm_swap_bytes(uint8_t *buf, size_t len, size_t unit_size);

/* ---- the dataset tree ---------------------------------------------------- */

enum dcm_storage {
    DCM_STORE_INLINE = 0, /* bytes in memory, owned by the element */
    DCM_STORE_REF,        /* bytes in a source, read on demand */
};

/* A run of bytes: in memory or in a source. Big endian input keeps its
 * byte order in the source; swap_unit says how to swap it on the way out. */
typedef struct dcm_value {
    uint8_t storage;   /* enum dcm_storage */
    uint8_t swap_unit; /* 0: no swap; 2, 4, 8: byte-swap in these units */
    uint64_t length;
    union {
        uint8_t *bytes;  /* INLINE */
        uint64_t offset; /* REF, within the element's source */
    } u;
} dcm_value;

struct dcm_element {
    uint32_t tag;
    uint8_t vr;                /* dcm_vr */
    uint8_t kind;              /* dcm_element_kind */
    bool undefined_length;     /* as read */
    dcm_source *source;        /* for REF values/fragments; a reference */
    union {
        dcm_value value;       /* DCM_KIND_VALUE */
        struct {               /* DCM_KIND_SEQUENCE */
            dcm_dataset **items;
            size_t count, capacity;
        } seq;
        struct {               /* DCM_KIND_FRAGMENTS; [0] = offset table */
            dcm_value *frags;
            size_t count, capacity;
        } frag;
    } u;
    dcm_dataset *owner;        /* the dataset holding this element */
};

struct dcm_dataset {
    dcm_element *elements;     /* ascending tag order */
    size_t count, capacity;
    dcm_dataset *parent;       /* enclosing dataset of an item */
    const dcm_ts *syntax;      /* top level only: see dcm_dataset_syntax */
    bool undefined_length;     /* item as read */
    uint64_t input_offset;     /* where the item's tag was in the input (0:
                                  not read from input); DICOMDIR offsets
                                  refer to it */
};

/* Frees what an element holds (not the element struct itself). */
void dcm_element_clear(dcm_element *el);
/* Returns a slot for tag in ds, inserted in order (replacing and clearing
 * an existing element with that tag). The slot is zeroed but for tag and
 * owner. Pointers to other elements of ds may move. */
dcm_element *dcm_dataset_insert(dcm_dataset *ds, uint32_t tag,
                                dcm_error *err);
/* Appends an element known to sort after every element of ds (reader's
 * fast path); NULL with DCM_E_NOMEM. */
dcm_element *dcm_dataset_append(dcm_dataset *ds, uint32_t tag,
                                dcm_error *err);
/* Frees the contents of a dataset (elements), keeping the struct. */
void dcm_dataset_clear(dcm_dataset *ds);
/* Copies len bytes of a value starting at offset, in little endian. */
int dcm_value_read(const dcm_value *v, const dcm_source *src,
                   uint64_t offset, void *buf, size_t len, dcm_error *err);

/* ---- charset helpers used by dataset.c ----------------------------------- */

/* The Specific Character Set that applies to ds (its own or an ancestor's)
 * as raw bytes; *len 0 when none applies. Borrowed. */
const uint8_t *dcm_dataset_charset_value(const dcm_dataset *ds, size_t *len);

#endif /* SIREN_DICOM_INTERNAL_H */
