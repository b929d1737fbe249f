/*
 * hec.h - the audit trail shipped to a Splunk HTTP Event Collector
 * (`POST /services/collector/event`, `Authorization: Splunk <token>`).
 *
 * The audit file is the spool: a thread (tail.h) reads the lines written
 * since the offset it last shipped (kept, durably, in
 * AUDIT_FILE.hec-offset), posts them in batches, and moves the offset only
 * when Splunk has answered 200.
 * A slow or absent collector delays the shipping, never the gateway, and
 * loses nothing: after a restart, shipping resumes at the offset. (A line
 * may be sent twice if the gateway stops between Splunk's answer and the
 * offset's write.)
 */
#ifndef SIREN_GW_HEC_H
#define SIREN_GW_HEC_H

#include "dicom.h"

typedef struct gw_hec_config {
    const char *audit_file; /* the JSON lines to ship */
    const char *url;        /* https://splunk:8088/services/collector/event */
    const char *token;      /* the HEC token */
    const char *ca_file;    /* to verify an https collector; NULL: system */
    const char *source;     /* "source" of the events, e.g. the AE title */
} gw_hec_config;

/* Starts the shipping thread; it looks for new lines every second. */
int gw_hec_start(const gw_hec_config *c, dcm_error *err);
/* Finishes the batch in flight; the rest waits in the file. */
void gw_hec_stop(void);

#endif /* SIREN_GW_HEC_H */
