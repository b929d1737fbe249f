/*
 * policy.h - the policy language of SIREN: what a compliance officer writes
 * for a trial or a site, compiled into an immutable object the engine
 * (anon/) applies to every instance.
 *
 *   policy "hobit" version 4
 *     profile basic
 *     option retain-longitudinal-modified-dates
 *     key file "${HOBIT_KEY:-/run/secrets/hobit-hmac}"
 *     reject unless Modality in (CT, MR) because "only CT and MR"
 *     replace PatientID with lookup "subjects.csv" column subject_id else quarantine
 *     replace PatientName with "{PatientID}"
 *     keep (0019,"GEMS_ACQU_01",10)
 *   end
 *
 * docs/POLICY.md is the guide for the people who write these files; the
 * grammar in words is at the top of policy/parse.c.
 *
 * Errors and warnings come as diagnostics, each with file:line:column, a
 * message and a hint. A policy is compiled once, is immutable, reference
 * counted and safe to share between threads (pol_policy_ref/unref are
 * thread-safe); reloading means compiling a new one and swapping the
 * pointer, so that every instance is processed wholly under one version.
 */
#ifndef SIREN_POLICY_H
#define SIREN_POLICY_H

#include "dicom.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- diagnostics ------------------------------------------------------- */

typedef struct pol_diag {
    bool warning;
    char file[256];
    unsigned line, column; /* 1-based; 0 when the whole file is meant */
    char message[256];
    char hint[256];        /* what to do, or "" */
} pol_diag;

typedef struct pol_diags {
    pol_diag *items;
    size_t count, capacity;
    size_t errors;
} pol_diags;

void pol_diags_free(pol_diags *diags);
/* "file:line:column: error: message (hint: ...)" into buf. */
const char *pol_diag_format(const pol_diag *d, char *buf, size_t size);
/* Adds a diagnostic (the engine adds its warnings this way); returns -1
 * so that error paths can return it. line 0: the whole file. */
int pol_diags_add(pol_diags *diags, bool warning, const char *file,
                  unsigned line, unsigned column, const char *hint,
                  const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* ---- variables ------------------------------------------------------------- */

/* Values for ${NAME}: NULL when undefined (then ${NAME:-default} gives the
 * default and a bare ${NAME} is an error). */
typedef const char *(*pol_lookup_fn)(void *ctx, const char *name);
/* The process environment (getenv). */
const char *pol_lookup_env(void *ctx, const char *name);

/* ---- attributes a line names ----------------------------------------------- */

/* One step of a tag reference: a tag with a mask (group masks like 60xx
 * and element masks), or a private element by creator. */
typedef struct pol_tag {
    uint32_t tag;      /* for private: group and the element's low byte */
    uint32_t mask;     /* bits of tag that must match (0xFFFFFFFF exact) */
    char creator[DCM_CREATOR_MAX + 1]; /* private creator, or "" */
} pol_tag;

#define POL_MAX_PATH 8

/* A tag, or a path of them: "A/B" is B in an item of sequence A. A single
 * tag matches at every depth. */
typedef struct pol_tagref {
    size_t length;
    pol_tag steps[POL_MAX_PATH];
    char text[128]; /* as written, for messages */
} pol_tagref;

/* Whether ref names element tag of ds, whose enclosing items are known
 * through dcm_dataset_parent. */
bool pol_tagref_matches(const pol_tagref *ref, const dcm_dataset *ds,
                        uint32_t tag);

/* ---- replace templates -------------------------------------------------------- */

/* A replace text may name other attributes of the same instance:
 * {Keyword} is the attribute's value after de-identification, and
 * {original:Keyword} its value as received ("{{" and "}}" are braces).
 * Only top-level attributes, by keyword. */

/* 0 if text is a well-formed template (or plain text); else -1 with the
 * reason in error. */
int pol_template_check(const char *text, char *error, size_t size);
/* Calls fn for each attribute the template names. */
typedef void (*pol_template_ref_fn)(void *ctx, uint32_t tag, bool original);
void pol_template_each(const char *text, pol_template_ref_fn fn, void *ctx);
/* Expands a checked template into out: get gives an attribute's value
 * (borrowed; NULL for an absent one, which expands to nothing). Returns
 * the length, or -1 if out is too small. */
typedef const char *(*pol_template_get_fn)(void *ctx, uint32_t tag,
                                           bool original);
int pol_template_expand(const char *text, pol_template_get_fn get, void *ctx,
                        char *out, size_t size);

/* ---- the compiled policy ---------------------------------------------------- */

/* PS3.15 Table E.1-1 options, as bits. */
enum pol_option {
    POL_OPT_CLEAN_PIXEL_DATA = 1u << 0,
    POL_OPT_CLEAN_VISUAL_FEATURES = 1u << 1,
    POL_OPT_CLEAN_GRAPHICS = 1u << 2,
    POL_OPT_CLEAN_STRUCTURED_CONTENT = 1u << 3,
    POL_OPT_CLEAN_DESCRIPTORS = 1u << 4,
    POL_OPT_RETAIN_LONG_FULL_DATES = 1u << 5,
    POL_OPT_RETAIN_LONG_MODIFIED_DATES = 1u << 6,
    POL_OPT_RETAIN_PATIENT_CHARACTERISTICS = 1u << 7,
    POL_OPT_RETAIN_DEVICE_IDENTITY = 1u << 8,
    POL_OPT_RETAIN_INSTITUTION_IDENTITY = 1u << 9,
    POL_OPT_RETAIN_UIDS = 1u << 10,
    POL_OPT_RETAIN_SAFE_PRIVATE = 1u << 11,
};

/* The option's policy-language name ("retain-uids"), NULL if not a
 * single option bit. */
const char *pol_option_name(unsigned option);

typedef enum pol_action_kind {
    POL_KEEP,
    POL_REMOVE,
    POL_EMPTY,
    POL_REPLACE,      /* a constant or a template of other values */
    POL_HASH,         /* keyed hash, shaped to the VR */
    POL_LOOKUP,       /* a column of a CSV table */
    POL_REMAP_UID,
    POL_SHIFT_DATE,
} pol_action_kind;

typedef enum pol_missing {
    POL_MISSING_REJECT,
    POL_MISSING_QUARANTINE,
    POL_MISSING_KEEP,
    POL_MISSING_DEFAULT,
} pol_missing;

typedef struct pol_table pol_table; /* a CSV lookup table, loaded */

/* The value a table gives for key, or NULL. Borrowed from the table. */
const char *pol_table_get(const pol_table *table, const char *key);

typedef struct pol_rule {
    pol_tagref ref;
    pol_action_kind kind;
    const char *text;        /* POL_REPLACE: the constant or template */
    const pol_table *table;  /* POL_LOOKUP */
    pol_missing missing;     /* POL_LOOKUP: a key the table lacks */
    const char *fallback;    /* POL_MISSING_DEFAULT */
    const char *file;        /* where the line is, for explain and audit */
    unsigned line, column;
} pol_rule;

typedef enum pol_verdict {
    POL_ACCEPT = 0,
    POL_REJECT,
    POL_QUARANTINE,
} pol_verdict;

typedef struct pol_policy pol_policy;

/* Compiles the policy file at path (following includes, relative to the
 * including file). NULL when diags->errors > 0; warnings may come with a
 * policy. Owned by the caller: pol_policy_unref. */
pol_policy *pol_policy_load(const char *path, pol_lookup_fn lookup,
                            void *lookup_ctx, pol_diags *diags);
pol_policy *pol_policy_ref(pol_policy *p);
void pol_policy_unref(pol_policy *p);

/* Where the current policy of a site lives while the gateway runs. A
 * reload compiles the new policy first, then swaps it in; a thread that
 * acquired the old one keeps it (its reference) until it is done with the
 * instance, so every instance is processed wholly under one version. */
typedef struct pol_slot {
    pthread_mutex_t lock;
    pol_policy *current;
} pol_slot;

/* Takes over the caller's reference to p (which may be NULL). */
void pol_slot_init(pol_slot *slot, pol_policy *p);
/* A new reference to the current policy (NULL if none): pol_policy_unref
 * it when the instance is done. */
pol_policy *pol_slot_acquire(pol_slot *slot);
/* Puts p (taking over the caller's reference) in place of the current
 * policy, whose slot reference is dropped. */
void pol_slot_swap(pol_slot *slot, pol_policy *p);
void pol_slot_destroy(pol_slot *slot);

const char *pol_policy_name(const pol_policy *p);
/* The file the policy was loaded from (for messages about it as a whole). */
const char *pol_policy_main_file(const pol_policy *p);
unsigned pol_policy_version(const pol_policy *p);
/* Hex SHA-256 of everything the policy was compiled from: the files'
 * bytes, the values variables took, the tables' bytes. Two policies with
 * the same hash treat every instance alike. */
const char *pol_policy_hash(const pol_policy *p);
/* "sha256:<first 16 hex>" of the HMAC key: which key, never the key. */
const char *pol_policy_key_id(const pol_policy *p);
unsigned pol_policy_options(const pol_policy *p);
/* True when only table-kept, policy-kept and image attributes survive. */
bool pol_policy_keep_list(const pol_policy *p);
/* The HMAC key (borrowed; NULL if the policy has none). */
const uint8_t *pol_policy_key(const pol_policy *p, size_t *len);
/* Per-tag rules in file order; later rules win for the same attribute. */
const pol_rule *pol_policy_rules(const pol_policy *p, size_t *count);
/* The date shift: days in [min, max] from HMAC of the element named by
 * ref (PatientID by default), backwards if back. False if none set. */
bool pol_policy_date_shift(const pol_policy *p, const pol_tagref **ref,
                           int *min_days, int *max_days, bool *back);

/* The reject and quarantine lines, for explain. */
typedef struct pol_gate_info {
    pol_verdict verdict;
    bool unless;          /* "unless COND" rather than "if COND" */
    bool unless_redacted; /* "... unless redacted": does not fire when a
                             redact line applies to the instance */
    const char *because;  /* the reason text, or NULL */
    const char *file;
    unsigned line;
} pol_gate_info;
/* Fills out with line index (in file order); false past the last. */
bool pol_policy_gate(const pol_policy *p, size_t index, pol_gate_info *out);

/* Runs the reject/quarantine conditions on ds (a top-level dataset): the
 * first that fires decides (a line "... unless redacted" does not fire
 * when a redact line applies to ds). reason gets its text (or the line) and
 * file:line. POL_ACCEPT when none fires. */
pol_verdict pol_policy_filter(const pol_policy *p, const dcm_dataset *ds,
                              char *reason, size_t size);

/* ---- pixels: compression and redaction --------------------------------------- */

/* What the processor does to pixel data, from these lines (docs/POLICY.md,
 * "Pixels: compression and redaction"):
 *
 *   compress to CODEC [PARAMETER VALUE] [if|unless COND]
 *   keep-syntax [if|unless COND]
 *   redact rectangle X Y WIDTH HEIGHT [if|unless COND]
 *   on compression-failure keep-original|quarantine
 *   allow lossy-recompression
 *   verify lossless on|off
 *
 * Conditions are those of reject and quarantine lines, and like them see
 * the instance as received. The queries below only read the policy: they
 * are thread-safe, as the filter is. */

typedef enum pol_codec {
    POL_CODEC_NONE,           /* keep the transfer syntax as received */
    POL_CODEC_RLE,            /* RLE Lossless, 1.2.840.10008.1.2.5 */
    POL_CODEC_JPEG,           /* JPEG Baseline (8-bit, lossy), .4.50 */
    POL_CODEC_JPEG_LS,        /* JPEG-LS Lossless, .4.80 */
    POL_CODEC_JPEG_LS_NEAR,   /* JPEG-LS Near-Lossless, .4.81 */
    POL_CODEC_J2K_LOSSLESS,   /* JPEG 2000 Lossless Only, .4.90 */
    POL_CODEC_J2K,            /* JPEG 2000 (lossy here), .4.91 */
    POL_CODEC_HTJ2K_LOSSLESS, /* HTJ2K Lossless Only, .4.201 */
    POL_CODEC_HTJ2K,          /* HTJ2K (lossy here), .4.203 */
} pol_codec;

/* The codec's name in the language ("jpeg2000-lossless"); "keep-syntax"
 * for POL_CODEC_NONE. Static. */
const char *pol_codec_name(pol_codec codec);

typedef struct pol_compression {
    pol_codec codec;
    const char *ts_uid;  /* the target transfer syntax; NULL for NONE */
    bool lossy;          /* the codec loses information as configured */
    int quality;         /* POL_CODEC_JPEG: 1..100; else 0 */
    int near_error;      /* POL_CODEC_JPEG_LS_NEAR: NEAR, 1..255; else 0 */
    double ratio;        /* J2K, HTJ2K: ratio (10 for 10:1) > 1, or 0 */
    double psnr_db;      /* J2K, HTJ2K when ratio is 0: target PSNR */
    const char *file;    /* the line that decided; NULL when none did */
    unsigned line;
} pol_compression;

/* The line as the language writes it after "compress to" ("jpeg quality
 * 90", "jpeg2000 ratio 12.5"), or "keep-syntax", into buf. Returns buf. */
const char *pol_compression_format(const pol_compression *c, char *buf,
                                   size_t size);

/* The first compress or keep-syntax line (in file order, includes where
 * they stand) that applies to ds (a top-level dataset, as received; its
 * syntax is dcm_dataset_syntax(ds), NULL meaning native) fills out; the
 * strings in out are borrowed from the policy. A lossy line is skipped
 * when ds is already lossy (Lossy Image Compression (0028,2110) 01, or a
 * syntax that is not known to be lossless) and the policy does not say
 * "allow lossy-recompression": then reason (always NUL-terminated when
 * reason_size > 0; "" otherwise) says which line was passed over and why,
 * and the next lines are tried. Returns false, with codec POL_CODEC_NONE
 * and file NULL, when no line applies: the syntax is kept. */
bool pol_policy_compression(const pol_policy *p, const dcm_dataset *ds,
                            pol_compression *out, char *reason,
                            size_t reason_size);

/* A rectangle of pixels to blank on every frame: columns x .. x+width-1,
 * rows y .. y+height-1, from the top-left corner; width and height >= 1,
 * x + width and y + height <= 65535. Parts outside the image are not
 * there to blank. */
typedef struct pol_rect {
    uint32_t x, y, width, height;
    const char *file;    /* the redact line (borrowed from the policy) */
    unsigned line;
} pol_rect;

/* The rectangles of every redact line that applies to ds (as received),
 * in file order: the first max go into out. Returns how many apply,
 * which may be more than max (call again with a larger out). */
size_t pol_policy_redactions(const pol_policy *p, const dcm_dataset *ds,
                             pol_rect *out, size_t max);

/* "on compression-failure keep-original": an encoder failure or a failed
 * lossless check keeps the instance in its received syntax. False (the
 * default, "quarantine"): the instance is quarantined. */
bool pol_policy_keep_original_on_failure(const pol_policy *p);
/* "verify lossless on" (the default): each lossless encode is decoded
 * and compared before the instance moves on. */
bool pol_policy_verify_lossless(const pol_policy *p);
/* "allow lossy-recompression": lossy lines apply to already-lossy data. */
bool pol_policy_allow_lossy_recompression(const pol_policy *p);

/* For explain: whether a line has a condition. */
typedef enum pol_when { POL_ALWAYS, POL_IF, POL_UNLESS } pol_when;
/* The compress/keep-syntax line at index (file order); false past the
 * last. */
bool pol_policy_compress_line(const pol_policy *p, size_t index,
                              pol_compression *out, pol_when *when);
/* The redact line at index (file order); false past the last. */
bool pol_policy_redact_line(const pol_policy *p, size_t index, pol_rect *out,
                            pol_when *when);

/* ---- configuration files ------------------------------------------------------ */

/* The gateway's configuration is written in the same family of syntax as
 * policies: one statement per line, a word and its values; '#' comments,
 * '\' continuations, "strings", ${VAR} and ${VAR:-default}; a statement
 * whose word the reader names as a block opens one, closed by "end" (at
 * the top level only: blocks do not nest).
 * policy/ gives the tree; the program gives it meaning. */
typedef struct pol_conf_value {
    char *text;       /* a string's content, or the word/number as written */
    bool quoted;      /* written as a "string" */
    unsigned line, column;
} pol_conf_value;

typedef struct pol_conf_node {
    char *name;       /* the statement's first word; NULL for the root */
    const char *file; /* the file it is in (the root's copy) */
    unsigned line, column;
    pol_conf_value *args;
    size_t arg_count;
    bool is_block;
    struct pol_conf_node *children; /* a block's statements, in order */
    size_t child_count, child_capacity;
} pol_conf_node;

/* Parses the file at path. blocks: NULL-terminated list of the words
 * that open a block. NULL when diags got errors (each at file:line:
 * column); else the root, whose children are the top-level statements.
 * Owned by the caller: pol_conf_free. */
pol_conf_node *pol_conf_load(const char *path, const char *const *blocks,
                             pol_lookup_fn lookup, void *lookup_ctx,
                             pol_diags *diags);
void pol_conf_free(pol_conf_node *root);
/* name relative to the folder of base (the file that names it), unless
 * name is absolute: how policies and configurations name other files. */
void pol_resolve_path(const char *base, const char *name, char *out,
                      size_t size);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_POLICY_H */
