/*
 * internal.h - private to dicom/: the shapes behind the opaque types of
 * dicom.h and helpers shared by the module's files. Nothing outside dicom/
 * includes this.
 */
#ifndef SIREN_DICOM_INTERNAL_H
#define SIREN_DICOM_INTERNAL_H

#include "dicom.h"

#include <stdarg.h>

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
/* The descriptor of a file source, -1 for memory. */
int dcm_source_fd(const dcm_source *src);
/* Copies exactly len bytes at offset; DCM_E_TRUNCATED past the end. */
int dcm_source_read(const dcm_source *src, uint64_t offset, void *buf,
                    size_t len, dcm_error *err);
/* The bytes at offset if the source is in memory, else NULL. */
const uint8_t *dcm_source_memory(const dcm_source *src, uint64_t offset);

/* Writes all len bytes to fd (retrying short writes and EINTR); 0, or -1
 * with errno set. */
int dcm_write_all(int fd, const void *data, size_t len);

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
    uint32_t parent_tag;       /* the sequence an item belongs to */
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

/* ---- network internals (net_*.c) ----------------------------------------- */

/* Waits until fd is ready for events (POLLIN/POLLOUT) within timeout_ms:
 * DCM_OK, DCM_E_TIMEOUT or DCM_E_IO. */
int dcm_fd_wait(int fd, short events, int timeout_ms);

/* PDU types (PS3.8 9.3). */
enum dcm_pdu_type {
    DCM_PDU_ASSOCIATE_RQ = 0x01,
    DCM_PDU_ASSOCIATE_AC = 0x02,
    DCM_PDU_ASSOCIATE_RJ = 0x03,
    DCM_PDU_P_DATA = 0x04,
    DCM_PDU_RELEASE_RQ = 0x05,
    DCM_PDU_RELEASE_RP = 0x06,
    DCM_PDU_ABORT = 0x07,
};

#define DCM_PDU_HEADER_BYTES 6
#define DCM_MIN_PEER_MAX_PDU 1024 /* smallest maximum length we accept */
#define DCM_PDV_HEADER_BYTES 6 /* item length (4), context ID, control */

/* A growable byte buffer for encoding PDUs; on allocation failure it
 * stops growing and remembers (checked once at the end). */
typedef struct dcm_bytes {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} dcm_bytes;

void dcm_bytes_u8(dcm_bytes *b, uint8_t v);
void dcm_bytes_u16(dcm_bytes *b, uint16_t v); /* big endian, as PS3.8 */
void dcm_bytes_u32(dcm_bytes *b, uint32_t v);
void dcm_bytes_put(dcm_bytes *b, const void *p, size_t n);
/* Writes v big endian at offset (a length reserved earlier). */
void dcm_bytes_patch16(dcm_bytes *b, size_t offset, uint16_t v);
void dcm_bytes_patch32(dcm_bytes *b, size_t offset, uint32_t v);

/* What our side puts in the user information item. */
typedef struct dcm_pdu_local {
    uint32_t max_pdu_bytes;
    const dcm_user_identity *user; /* requests only; NULL: none */
} dcm_pdu_local;

/* Encodes A-ASSOCIATE-RQ (request true: contexts with their proposed
 * syntaxes) or -AC (contexts with results and the accepted syntax, role
 * and async replies for what the peer proposed) from info into out,
 * header included. */
int dcm_pdu_encode_associate(bool request, const dcm_assoc_info *info,
                             const dcm_pdu_local *local, dcm_bytes *out,
                             dcm_error *err);
/* Parses the body (after the 6-byte header) of an A-ASSOCIATE-RQ or -AC
 * into info. Every length is checked; DCM_E_INVALID says what is wrong. */
int dcm_pdu_parse_associate(bool request, const uint8_t *body, size_t len,
                            dcm_assoc_info *info, dcm_error *err);
/* The fixed 4-byte bodies of RJ, RELEASE-RQ/RP and ABORT. */
void dcm_pdu_encode_short(uint8_t type, uint8_t b1, uint8_t b2, uint8_t b3,
                          uint8_t out[10]);

/* The Upper Layer state machine (PS3.8 9.2, Table 9-10). */
typedef enum dcm_ul_state {
    DCM_STA1 = 1, DCM_STA2, DCM_STA3, DCM_STA4, DCM_STA5, DCM_STA6, DCM_STA7,
    DCM_STA8, DCM_STA9, DCM_STA10, DCM_STA11, DCM_STA12, DCM_STA13,
} dcm_ul_state;

typedef enum dcm_ul_event {
    DCM_EVT1 = 1,  /* A-ASSOCIATE request (local user) */
    DCM_EVT2,      /* transport connect confirmation */
    DCM_EVT3,      /* A-ASSOCIATE-AC PDU received */
    DCM_EVT4,      /* A-ASSOCIATE-RJ PDU received */
    DCM_EVT5,      /* transport connection indication */
    DCM_EVT6,      /* A-ASSOCIATE-RQ PDU received */
    DCM_EVT7,      /* A-ASSOCIATE response (accept) */
    DCM_EVT8,      /* A-ASSOCIATE response (reject) */
    DCM_EVT9,      /* P-DATA request */
    DCM_EVT10,     /* P-DATA-TF PDU received */
    DCM_EVT11,     /* A-RELEASE request */
    DCM_EVT12,     /* A-RELEASE-RQ PDU received */
    DCM_EVT13,     /* A-RELEASE-RP PDU received */
    DCM_EVT14,     /* A-RELEASE response */
    DCM_EVT15,     /* A-ABORT request */
    DCM_EVT16,     /* A-ABORT PDU received */
    DCM_EVT17,     /* transport connection closed */
    DCM_EVT18,     /* ARTIM timer expired */
    DCM_EVT19,     /* unrecognized or invalid PDU received */
} dcm_ul_event;

typedef enum dcm_ul_action {
    DCM_ACT_NONE = 0, /* the event is not valid in the state */
    DCM_AE1, DCM_AE2, DCM_AE3, DCM_AE4, DCM_AE5, DCM_AE6, DCM_AE7, DCM_AE8,
    DCM_DT1, DCM_DT2,
    DCM_AR1, DCM_AR2, DCM_AR3, DCM_AR4, DCM_AR5, DCM_AR6, DCM_AR7, DCM_AR8,
    DCM_AR9, DCM_AR10,
    DCM_AA1, DCM_AA2, DCM_AA3, DCM_AA4, DCM_AA5, DCM_AA6, DCM_AA7, DCM_AA8,
} dcm_ul_action;

/* The action Table 9-10 prescribes for event in state. */
dcm_ul_action dcm_ul_action_for(dcm_ul_state state, dcm_ul_event event);
/* "AA-8" and so on, for logs and tests. */
const char *dcm_ul_action_name(dcm_ul_action action);

/* One PDV of a received P-DATA PDU; data points into the association's
 * buffer and stays valid until the next call. */
typedef struct dcm_pdv {
    uint8_t context_id;
    bool command; /* else data set */
    bool last;    /* last fragment of its command or data set */
    const uint8_t *data;
    size_t len;
} dcm_pdv;

/* The next PDV, reading a P-DATA PDU when the last one is used up; the
 * first byte of a new PDU may take first_timeout_ms. A release request is
 * answered here (DCM_RECEIVED_RELEASE); anything unexpected ends the
 * association the way Table 9-10 says (a negative error). */
int dcm_assoc_next_pdv(dcm_assoc *a, int first_timeout_ms, dcm_pdv *pdv,
                       dcm_error *err);
/* Where to put the payload of the next PDV to send, and how much fits. */
uint8_t *dcm_assoc_pdv_space(dcm_assoc *a, size_t *capacity);
/* Sends one P-DATA PDU holding one PDV of len payload bytes (already in
 * the space). */
int dcm_assoc_send_pdv(dcm_assoc *a, uint8_t context_id, bool command,
                       bool last, size_t len, dcm_error *err);
const dcm_net_limits *dcm_assoc_limits(const dcm_assoc *a);
/* After a command that announces a data set: the context it must come on
 * (dcm_receive_dataset checks it); -1 when no data set is due. */
void dcm_assoc_set_dataset_due(dcm_assoc *a, int context_id);
int dcm_assoc_dataset_due(const dcm_assoc *a);

#endif /* SIREN_DICOM_INTERNAL_H */
