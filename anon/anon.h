/*
 * anon.h - the de-identification engine: PS3.15 Annex E (Basic
 * Application Level Confidentiality Profile, Table E.1-1 of DICOM 2024b,
 * with its options) applied to a dataset under a compiled policy.
 *
 * anon_apply is a pure function of (dataset, policy): no clock, no random
 * numbers. Every pseudonym, UID and date shift comes from HMAC-SHA256
 * under the policy's key, so the same input gives the same output on any
 * gateway replica, after any restart, and two policies with different
 * keys give unlinkable outputs.
 *
 * The rules, in the order they decide an attribute (docs/POLICY.md says
 * the same for officers):
 *   1. a policy line naming the attribute (the last such line wins);
 *   2. a private attribute: removed, unless Retain Safe Private lists it;
 *   3. a row of Table E.1-1: the Basic Profile's action, replaced by the
 *      action of each option in force that has one (C before K);
 *   4. any other attribute: kept (standard mode) or removed (keep-list
 *      mode, except the attributes that describe the image and pixels).
 * Sequences are entered at every depth unless removed or replaced.
 */
#ifndef SIREN_ANON_H
#define SIREN_ANON_H

#include "dicom.h"
#include "policy.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What happened to one instance. */
typedef struct anon_result {
    pol_verdict verdict;   /* POL_ACCEPT: the dataset was de-identified */
    char reason[512];      /* for a rejected or quarantined instance */
    /* Counts over all depths, for the audit trail and siren apply. */
    size_t removed;        /* attributes and content items removed */
    size_t emptied;        /* made zero-length */
    size_t replaced;       /* dummy, constant, template, lookup, hash */
    size_t uids_remapped;
    size_t dates_shifted;
    size_t cleaned;        /* text values scrubbed of identifying words */
    size_t kept_private;
} anon_result;

/* De-identifies ds (a top-level dataset, as read) in place under policy
 * p. First the policy's reject and quarantine conditions run on the
 * dataset as received; a verdict other than POL_ACCEPT leaves ds
 * untouched. Text is converted to UTF-8 (Specific Character Set
 * ISO_IR 192) so that matching, hashing and cleaning see characters, not
 * bytes. Returns DCM_OK with result filled (also for a refused instance),
 * or a negative code with err for a failure to process (out of memory, a
 * value that cannot be decoded): such an instance must not be forwarded.
 * Thread-safe for distinct datasets; p is only read. */
int anon_apply(const pol_policy *p, dcm_dataset *ds, anon_result *result,
               dcm_error *err);

/* Adds the engine's diagnostics about a policy to diags. Warnings: policy
 * lines that keep an attribute the profile would remove, replace or clean
 * (a kept identifier), templates that copy an original identifying value,
 * a Patient ID emptied for everyone. Errors: lines the engine cannot
 * carry out (remap of a non-UID, shift of a non-date, a text into a
 * binary VR); a policy with such errors must not be used, so every
 * loader runs this after pol_policy_load. */
void anon_check(const pol_policy *p, pol_diags *diags);

/* Prints, for each attribute named in attrs (keywords or "(gggg,eeee)"),
 * or for every row of Table E.1-1 and every policy line when count is 0,
 * the action taken and where it comes from. Returns 0, or -1 when an
 * attribute name is unknown (reported on stderr). */
int anon_explain(const pol_policy *p, const char *const *attrs, size_t count,
                 FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_ANON_H */
