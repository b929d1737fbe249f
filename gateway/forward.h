/*
 * forward.h - the forwarder: delivers the instances of the spool's
 * outgoing directory to the archive, and removes each one the archive has
 * confirmed, over one of two transports: C-STORE (plain DICOM or
 * DICOM-TLS) on a few persistent associations, or Orthanc's REST API
 * (POST /instances, the file as the body, over http or https with basic
 * authentication) on a few persistent HTTP connections (libcurl).
 * Internal to gateway/.
 *
 * What it does with each file (finished names "*.dcm", oldest name
 * first; '.'-names are unfinished and never touched):
 *
 *   DIMSE                        REST
 *   success 0000, warnings       HTTP 200 with "Status"   delivered: the
 *   Bxxx and 0001 (Orthanc       "Success" or             file is removed
 *   answers 0000 for an          "AlreadyStored" and an   (unlink, fsync of
 *   instance it already has)     "ID"                     the folder)
 *
 *   0122, 0124, A9xx, Cxxx, no   HTTP 400, 413, 415 and   refused for good:
 *   presentation context         the other 4xx not        moved to the
 *   accepted for its SOP class   below                    failed folder
 *   and syntax                                            with NAME.reason
 *   DIMSE: a file that is not DICOM or                     (Orthanc's words)
 *   has no SOP Class UID is not sent;
 *   REST sends it: Orthanc answers 400
 *
 *   A7xx, any other failure      HTTP 500 and the 5xx     refused for now:
 *   status                       not below; 200 with      tried again after
 *                                "FilteredOut",           a backoff of its
 *                                "Failure" or a body      own, other files
 *                                that is not Orthanc's    go on meanwhile;
 *                                answer                   after max_refusals
 *                                                         such answers while
 *   the archive took other files since the first, the file is what fails:
 *   moved to failed
 *
 *   connection refused or lost,  the same, and HTTP 408,  the archive is
 *   TLS or association failure,  429, 502, 503, 504, 507  away: the thread
 *   timeout, abort                                        waits (backoff),
 *                                                         then tries the
 *                                                         same file again;
 *                                                         never moved
 *
 *                                HTTP 401, 403, 407       the archive
 *                                (credentials), 3xx,      refuses us: as
 *                                404, 405 (a URL that     away, each try
 *                                is not Orthanc's API)    logged as an
 *                                                         error
 *   (A file on which the connection fails max_refusals times while
 *   other files go is moved to failed as well.)
 *
 * REST credentials: "user:password" on the first and only line of a file
 * that others may not read (mode 600, or 640 for a group), read at start,
 * by gw_forward_reload, and again after each 401/403/407 (so that a
 * rotated secret is taken up); never logged.
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
 * Threads: gw_forward_wake, gw_forward_reload and gw_forward_stats_of may
 * be called from any thread at any time between start and stop; start and
 * stop from one.
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
/* The longest REST URL, and credentials line. */
#define GW_FORWARD_MAX_URL 512
#define GW_FORWARD_MAX_CREDENTIALS 512

typedef enum gw_forward_transport {
    GW_FORWARD_DIMSE, /* C-STORE, plain or DICOM-TLS */
    GW_FORWARD_REST,  /* Orthanc's REST API, POST /instances */
} gw_forward_transport;

/* Zero in a number means its default. The strings are borrowed: they must
 * outlive the forwarder. */
typedef struct gw_forward_config {
    const char *outgoing_dir; /* instances to deliver */
    const char *failed_dir;   /* refused for good (created if missing; on
                                 the same file system: files are renamed) */
    gw_forward_transport transport;
    /* DIMSE: the archive's address and AE titles. */
    const char *host, *port;
    const char *called_ae, *calling_ae;
    /* REST: Orthanc's REST API, "http(s)://host:port[/prefix]" (no user
     * or password in it); the credentials file (NULL: none sent). */
    const char *url;
    const char *credentials_file;
    int connections;          /* parallel associations or HTTP
                                 connections (threads), 1..64 */
    bool tls;                 /* DIMSE: DICOM-TLS (REST: https:// says) */
    const char *tls_ca;       /* the CA bundle the archive's certificate
                                 chains to: required with tls; for https,
                                 NULL means the system's */
    const char *tls_cert, *tls_key; /* DIMSE: our client certificate,
                                       optional */
    const char *tls_server_name;    /* DIMSE: NULL: host */
    tls_profile tls_profile;        /* DIMSE */
    int timeout_ms;           /* connect, handshake, each DIMSE step; REST:
                                 connect, and the longest time without
                                 progress while sending or awaiting the
                                 answer (a large file may take longer in
                                 all) */
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
                           refusals for now, credentials refused */
    uint64_t bytes;     /* file bytes delivered */
    uint64_t queued;    /* files in outgoing at the last look, less those
                           delivered or failed since */
    unsigned associations; /* open now (REST: HTTP connections) */
    /* The last look found nothing to send, nothing in hand and nothing
     * waiting for another try: the folder is empty. */
    bool idle;
} gw_forward_stats;

typedef struct gw_forwarder gw_forwarder;

/* Checks the configuration and folders, takes the folder's lock, makes
 * the TLS context (DIMSE) or reads the credentials (REST) and starts the
 * threads; they begin with what the folder already holds. NULL with err
 * filled. Owned by the caller (gw_forward_stop). */
gw_forwarder *gw_forward_start(const gw_forward_config *c, dcm_error *err);
/* Reads again what may change while running (REST: the credentials
 * file), for SIGHUP; on failure (err filled) the old stays in use. Any
 * thread, not at once with start or stop. */
int gw_forward_reload(gw_forwarder *f, dcm_error *err);
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
