/*
 * pixels.h - the processor's pixel stage: blanks the policy's redaction
 * rectangles and compresses pixel data to the syntax its compress lines
 * choose (docs/OPERATIONS.md, "The pixel stage").
 *
 * Two steps, because policy conditions see the instance as received but
 * the pixels are changed on the de-identified one: gw_pixels_plan runs
 * before anon_apply, gw_pixels_apply after it. Both are thread-safe for
 * distinct datasets and plans (the policy is only read).
 */
#ifndef SIREN_GW_PIXELS_H
#define SIREN_GW_PIXELS_H

#include "dicom.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the policy decided for one instance, as received. */
typedef struct gw_pixel_plan {
    bool has_pixels;           /* the instance has Pixel Data at all */
    pol_compression compression; /* codec POL_CODEC_NONE: keep the syntax */
    char skipped[256];         /* a lossy line passed over, and why; "" */
    pol_rect *rects;           /* owned; rect_count of them */
    size_t rect_count;
    bool out_of_memory;        /* the rectangles could not be kept */
} gw_pixel_plan;

/* Fills plan from the policy's pixel lines as they apply to ds, the
 * top-level dataset as received (before anon_apply). The strings in plan
 * are borrowed from p, which must outlive it. Release with
 * gw_pixels_plan_free. */
void gw_pixels_plan(const pol_policy *p, const dcm_dataset *ds,
                    gw_pixel_plan *plan);
void gw_pixels_plan_free(gw_pixel_plan *plan);

typedef enum gw_pixel_action {
    GW_PIXELS_NONE,       /* nothing to do: no line applied */
    GW_PIXELS_COMPRESSED, /* encoded in the compress line's syntax */
    GW_PIXELS_REDACTED,   /* blanked, syntax kept (or native, see below) */
    GW_PIXELS_KEPT,       /* compression failed; the received syntax kept
                             ("on compression-failure keep-original") */
    GW_PIXELS_UNCHANGED,  /* already in the line's syntax, nothing blanked */
    GW_PIXELS_FAILED,     /* the instance must be quarantined */
} gw_pixel_action;

/* What gw_pixels_apply did, for the audit trail and the metrics. */
typedef struct gw_pixel_outcome {
    gw_pixel_action action;
    const char *codec;           /* the line's codec name, static or NULL */
    char from_ts[DCM_UID_MAX + 1]; /* syntax as received */
    char to_ts[DCM_UID_MAX + 1];   /* syntax forwarded ("" if none) */
    size_t redacted;             /* rectangles blanked on every frame */
    uint32_t frames;
    bool lossy;                  /* this stage lost information */
    double ratio;                /* uncompressed bytes / encoded bytes */
    const char *verify;          /* "passed", "off", "lossy", "n/a" */
    uint64_t bytes_before, bytes_after; /* Pixel Data value bytes */
    char sop_instance[DCM_UID_MAX + 1]; /* a lossy result's new UID */
    char reason[512];            /* why kept or failed; a skipped line */
} gw_pixel_outcome;

/* Carries out plan on ds, the de-identified dataset (after anon_apply,
 * verdict accept), in place: decodes each frame, blanks the rectangles,
 * encodes it in the target syntax (lossless results checked when the
 * policy says "verify lossless on"), and updates the attributes that go
 * with the new pixel data. Returns 0 with *out filled; -1 when the
 * instance must not be forwarded (out->action GW_PIXELS_FAILED, reason
 * says why): ds may then hold half-changed pixel data and must be
 * dropped. Never forwards pixels a redact line applies to unblanked. */
int gw_pixels_apply(const gw_pixel_plan *plan, const pol_policy *p,
                    dcm_dataset *ds, gw_pixel_outcome *out);

/* Records out for the instance in spool file name: the "instance.pixels"
 * audit event, a log line and the metrics. Nothing for GW_PIXELS_NONE. */
void gw_pixels_record(const char *name, const gw_pixel_outcome *out);

/* The action's word in the audit trail ("compressed", ...). */
const char *gw_pixel_action_name(gw_pixel_action action);

/* Bytes of ds's Pixel Data value: native, or all its fragments; 0
 * without Pixel Data. */
uint64_t gw_pixels_bytes(const dcm_dataset *ds);

#endif /* SIREN_GW_PIXELS_H */
