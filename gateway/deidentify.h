/*
 * deidentify.h - what the processor does to one instance under a policy,
 * in one function that `siren apply` and `siren diff` call too, so that
 * an officer's trial run and the gateway cannot drift apart: the pixel
 * plan on the instance as received, anon_apply, then the pixel stage on
 * the de-identified dataset (pixels.h), and the quarantine reason of
 * each way it can fail. Records nothing: the audit trail, the log and
 * where the result goes are the caller's.
 */
#ifndef SIREN_GW_DEIDENTIFY_H
#define SIREN_GW_DEIDENTIFY_H

#include "anon.h"
#include "dicom.h"
#include "pixels.h"
#include "policy.h"

typedef enum gw_deid_status {
    GW_DEID_FORWARD,       /* de-identified, pixels done: ds may leave */
    GW_DEID_ERROR,         /* anon_apply failed (ds must be dropped) */
    GW_DEID_REFUSED,       /* the policy rejected or quarantined it:
                              anon.verdict and anon.reason; ds untouched */
    GW_DEID_PIXELS_FAILED, /* the pixel stage failed: pixels.reason (ds
                              must be dropped) */
} gw_deid_status;

#define GW_DEID_WHY_MAX 700

typedef struct gw_deid {
    gw_deid_status status;
    anon_result anon;        /* anon_apply's result, unless GW_DEID_ERROR */
    gw_pixel_outcome pixels; /* the pixel stage's; action GW_PIXELS_NONE
                                when it did not run */
    char why[GW_DEID_WHY_MAX]; /* unless GW_DEID_FORWARD: the reason the
                                processor quarantines the instance with */
} gw_deid;

/* Processes ds, a top-level dataset as received, in place under policy p
 * and fills *out; returns out->status. Thread-safe for distinct datasets
 * (p is only read). */
gw_deid_status gw_deidentify(const pol_policy *p, dcm_dataset *ds,
                             gw_deid *out);

#endif /* SIREN_GW_DEIDENTIFY_H */
