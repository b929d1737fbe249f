/*
 * forward.h - the forwarder: delivers the instances of the spool's
 * outgoing directory to the archive with C-STORE (plain DICOM or
 * DICOM-TLS) over a few persistent associations, and removes each one the
 * archive has confirmed. Internal to gateway/.
 *
 * What it does with each file (finished names "*.dcm", oldest name
 * first; '.'-names are unfinished and never touched):
 *
 *   success 0000, warnings Bxxx and 0001   delivered: the file is removed
 *                                          (unlink, fsync of the folder);
 *                                          Orthanc answers 0000 for an
 *                                          instance it already has
 *   0122, 0124, A9xx, Cxxx, no presentation
 *   context accepted for its SOP class and
 *   syntax, not DICOM or no SOP Class UID  refused for good: moved to the
 *                                          failed folder with NAME.reason
 *   A7xx, any other failure status         refused for now: tried again
 *                                          after a backoff of its own,
 *                                          other files go on meanwhile;
 *                                          after max_refusals such answers
 *                                          while the archive took other
 *                                          files since the first, the file
 *                                          is what fails: moved to failed
 *   connection refused or lost, TLS or
 *   association failure, timeout, abort    the archive is away: the thread
 *                                          waits (backoff), then tries the
 *                                          same file again; never moved
 *
 * Backoff: full jitter, a delay drawn uniformly from [0, min(max, min *
 * 2^(n-1))] for the n-th failure in a row (at least 50 ms), so that
 * threads and gateways do not call a recovering archive in step. A wake
 * (a new file) never shortens it: while the archive is away, new files
 * wait with the others.
 *
 * Only one forwarder works on a directory at a time (an flock on it), so
 * that `siren forward` by hand and the service never send a file twice.
 *
 * Threads: gw_forward_wake and gw_forward_stats_of may be called from any
 * thread at any time between start and stop; start and stop from one.
 */
#ifndef SIREN_GW_FORWARD_H
#define SIREN_GW_FORWARD_H

#include "dicom.h"
#include "tls.h"

#include <stdbool.h>
#include <stdint.h>

#define GW_FORWARD_DEFAULT_CONNECTIONS 2
#define GW_FORWARD_MAX_CONNECTIONS 64
#define GW_FORWARD_DEFAULT_TIMEOUT_MS 30000
#define GW_FORWARD_DEFAULT_BACKOFF_MIN_MS 1000
#define GW_FORWARD_DEFAULT_BACKOFF_MAX_MS 60000
/* Below Orthanc's own idle limit (DicomScpTimeout, 30 s), so that we end
 * an idle association before the archive drops it under us. */
#define GW_FORWARD_DEFAULT_IDLE_RELEASE_MS 5000
#define GW_FORWARD_DEFAULT_POLL_MS 1000
#define GW_FORWARD_DEFAULT_MAX_REFUSALS 5

/* Zero in a number means its default. The strings are borrowed: they must
 * outlive the forwarder. */
typedef struct gw_forward_config {
    const char *outgoing_dir; /* instances to deliver */
    const char *failed_dir;   /* refused for good (created if missing; on
                                 the same file system: files are renamed) */
    const char *host, *port;  /* the archive */
    const char *called_ae, *calling_ae;
    int connections;          /* parallel associations (threads), 1..64 */
    bool tls;
    const char *tls_ca;       /* required with tls */
    const char *tls_cert, *tls_key; /* our client certificate, optional */
    const char *tls_server_name;    /* NULL: host */
    tls_profile tls_profile;
    int timeout_ms;           /* connect, handshake, each DIMSE step */
    int backoff_min_ms, backoff_max_ms;
    int idle_release_ms;      /* an unused association is released */
    int poll_ms;              /* the folder is looked at this often (and
                                 at each gw_forward_wake) */
    int max_refusals;         /* see "refused for now" above */
    uint32_t max_pdu;         /* the largest P-DATA PDU we receive */
} gw_forward_config;

typedef struct gw_forward_stats {
    uint64_t delivered; /* instances the archive confirmed */
    uint64_t warnings;  /* of those, with a warning status */
    uint64_t failed;    /* moved to the failed folder */
    uint64_t retries;   /* transient failures: connections, associations,
                           refusals for now */
    uint64_t bytes;     /* file bytes delivered */
    uint64_t queued;    /* files in outgoing at the last look, less those
                           delivered or failed since */
    unsigned associations; /* open now */
    /* The last look found nothing to send, nothing in hand and nothing
     * waiting for another try: the folder is empty. */
    bool idle;
} gw_forward_stats;

typedef struct gw_forwarder gw_forwarder;

/* Checks the configuration and folders, takes the folder's lock, makes
 * the TLS context and starts the threads; they begin with what the
 * folder already holds. NULL with err filled. Owned by the caller
 * (gw_forward_stop). */
gw_forwarder *gw_forward_start(const gw_forward_config *c, dcm_error *err);
/* A new file is in outgoing: look now rather than at the next poll. */
void gw_forward_wake(gw_forwarder *f);
/* Finishes the sends in flight (each bounded by the timeout), releases
 * the associations, joins the threads and frees f; *final (may be NULL)
 * gets the last counters. What was not sent stays in outgoing. Accepts
 * NULL. */
void gw_forward_stop(gw_forwarder *f, gw_forward_stats *final);
/* The counters, consistent with each other. */
gw_forward_stats gw_forward_stats_of(gw_forwarder *f);

#endif /* SIREN_GW_FORWARD_H */
