/* deidentify.c - one instance under one policy (deidentify.h). */
#include "deidentify.h"

#include <stdio.h>
#include <string.h>

gw_deid_status gw_deidentify(const pol_policy *p, dcm_dataset *ds,
                             gw_deid *out)
{
    memset(out, 0, sizeof *out);
    /* The pixel lines decide on the instance as received, and act on the
     * de-identified one (pixels.h). */
    gw_pixel_plan plan;
    gw_pixels_plan(p, ds, &plan);
    dcm_error err = {0};
    if (anon_apply(p, ds, &out->anon, &err) < 0) {
        out->status = GW_DEID_ERROR;
        snprintf(out->why, sizeof out->why, "not de-identified: %s",
                 err.message);
    } else if (out->anon.verdict != POL_ACCEPT) {
        out->status = GW_DEID_REFUSED;
        snprintf(out->why, sizeof out->why, "%s by policy %s version %u: %s",
                 out->anon.verdict == POL_REJECT ? "rejected" : "quarantined",
                 pol_policy_name(p), pol_policy_version(p), out->anon.reason);
    } else if (gw_pixels_apply(&plan, p, ds, &out->pixels) < 0) {
        out->status = GW_DEID_PIXELS_FAILED;
        snprintf(out->why, sizeof out->why, "pixels: %s", out->pixels.reason);
    } else {
        out->status = GW_DEID_FORWARD;
    }
    gw_pixels_plan_free(&plan);
    return out->status;
}
