/*
 * internal.h - private to anon/: how an attribute's fate is decided
 * (decide.c), the keyed pseudonyms (pseudo.c), the cleaning of free text
 * (scrub.c) and the walk that applies it all (engine.c).
 */
#ifndef SIREN_ANON_INTERNAL_H
#define SIREN_ANON_INTERNAL_H

#include "anon.h"
#include "tables.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- decisions ------------------------------------------------------------- */

/* What happens to one attribute. */
typedef enum anon_action {
    ACT_KEEP,        /* unchanged; a sequence's items are still walked */
    ACT_REMOVE,
    ACT_EMPTY,       /* zero length; an empty sequence */
    ACT_DUMMY,       /* a fixed value of the VR; a sequence: one empty item */
    ACT_REMAP,       /* UIDs -> 2.25.<HMAC> */
    ACT_SHIFT,       /* dates moved by the patient's offset */
    ACT_HASH,        /* keyed hash shaped to the VR */
    ACT_CLEAN,       /* text: identifying words of the instance blanked */
    ACT_CLEAN_SR,    /* a content sequence: items judged by Table E.3.4-1 */
    ACT_REPLACE,     /* a policy constant or template */
    ACT_LOOKUP,      /* a policy CSV table */
} anon_action;

/* Where a decision came from, for explain and for the audit. */
typedef enum anon_source {
    SRC_POLICY,      /* a policy line (rule) */
    SRC_TABLE,       /* a row of Table E.1-1 (row, column) */
    SRC_SAFE_PRIVATE,/* Table E.3.10-1 under Retain Safe Private */
    SRC_PRIVATE,     /* the private row of Table E.1-1 */
    SRC_UNLISTED,    /* not in the table: standard mode keeps it */
    SRC_UNKNOWN,     /* in no dictionary (nor private): cannot be judged,
                        so removed */
    SRC_KEEP_LIST,   /* keep-list mode: removed, or kept as image data */
} anon_source;

typedef struct anon_decision {
    anon_action action;
    anon_source source;
    const pol_rule *rule;   /* SRC_POLICY */
    const anon_row *row;    /* SRC_TABLE, SRC_PRIVATE */
    int column;             /* the option column that decided; -1: basic */
    anon_code code;         /* the table's code behind the action */
} anon_decision;

/* The option column of Table E.1-1 a policy option bit corresponds to, or
 * -1 (clean pixel data and visual features have no column). */
int anon_option_column(unsigned option);
/* The other way round: the option bit of a column, 0 for -1. */
unsigned anon_column_option(int column);
/* The action a table row prescribes under the options in force, for an
 * element of this VR: options replace the Basic Profile's code (a C
 * before a K), and combined codes resolve as docs/POLICY.md explains. */
anon_decision anon_decide_row(const anon_row *row, unsigned options,
                              dcm_vr vr);
/* The action of a code (C: as meant by the option of column) for an
 * element of VR vr. */
anon_action anon_code_action(anon_code code, int column, bool in_std_iod,
                             dcm_vr vr);
/* The same for an SR content item's row of Table E.3.4-1. */
anon_decision anon_decide_sr_row(const anon_sr_row *row, unsigned options);
/* The decision for element tag (of VR vr) of ds under p: policy lines,
 * then private rules, then Table E.1-1, then the mode. */
anon_decision anon_decide(const pol_policy *p, const dcm_dataset *ds,
                          uint32_t tag, dcm_vr vr);
/* In keep-list mode, the attributes that describe the image and survive
 * without a table row or a policy line. */
bool anon_is_image_attribute(uint32_t tag);
/* Rules 3 and 4 alone (no policy line, no private rule): what the
 * profile and the mode do with a standard attribute. */
anon_decision anon_decide_standard(const pol_policy *p, uint32_t tag,
                                   dcm_vr vr);
const char *anon_action_name(anon_action action);

/* ---- keyed pseudonyms (pseudo.c) ------------------------------------------ */

typedef struct anon_keys {
    const uint8_t *key;
    size_t key_len;
} anon_keys;

/* "2.25.<decimal>" from HMAC-SHA256(key, uid): a UUID (RFC 9562 version
 * 8) as PS3.5 B.2 asks. out holds DCM_UID_MAX + 1. */
void anon_remap_uid(const anon_keys *k, const char *uid,
                    char out[DCM_UID_MAX + 1]);
/* A registered DICOM UID (1.2.840.10008...) names no one: never remapped. */
bool anon_uid_is_well_known(const char *uid);
/* 16 characters of base32 (A-Z, 2-7) from HMAC-SHA256(key, text): valid
 * in every text VR, 80 bits. out holds 17. */
void anon_hash_text(const anon_keys *k, const char *text, char out[17]);
/* The patient's date offset: min_days + HMAC(key, id) mod range. */
int anon_shift_days(const anon_keys *k, const char *id, int min_days,
                    int max_days);
/* Shifts a DA or DT value (backslash-separated values, ranges A-B) by
 * days; false when a value is not a valid date (the caller empties it).
 * out holds at least 2 * strlen(value) + 1. */
bool anon_shift_value(dcm_vr vr, const char *value, int days, char *out,
                      size_t size);

/* ---- cleaning free text (scrub.c) ------------------------------------------- */

/* Identifying words of one instance, found before anything is changed:
 * names, IDs, dates and places the profile removes or replaces. */
typedef struct anon_words {
    char **items;           /* case-folded */
    size_t count, capacity;
    bool incomplete;        /* more words than the cap: cleaning cannot be
                               trusted, so cleaned text is removed */
} anon_words;

/* Collects from ds, at every depth, the values of the attributes whose
 * decision under p is not to keep them. */
int anon_words_collect(anon_words *w, const pol_policy *p,
                       const dcm_dataset *ds, dcm_error *err);
void anon_words_free(anon_words *w);
/* Blanks every case-insensitive occurrence of a word in text, in place,
 * with one '*' per character (text can only get shorter); returns how
 * many. */
size_t anon_words_scrub(const anon_words *w, char *text);

#endif /* SIREN_ANON_INTERNAL_H */
