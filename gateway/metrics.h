/*
 * metrics.h - the service's numbers for Prometheus and its health, on a
 * loopback HTTP port (libmicrohttpd):
 *
 *   GET /metrics   Prometheus text format 0.0.4
 *   GET /healthz   200 "ok", or 503 with the reason (spool full, no
 *                  processor, archive unreachable for long)
 *
 * Counters are updated where things happen (cheap atomic adds); gauges
 * (queues, spool usage, associations) are read when scraped, through the
 * callback the service gives.
 */
#ifndef SIREN_GW_METRICS_H
#define SIREN_GW_METRICS_H

#include "dicom.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sites ever configured, the plain listener, and "(other)" for any past
 * that number (a name keeps its slot across reloads). */
#define GW_METRICS_MAX_SITES 128
#define GW_METRICS_NAME_MAX 64

/* What the service reports when scraped. */
typedef struct gw_gauges {
    uint64_t spool_bytes, spool_quota;
    uint64_t received_queue, outgoing_queue, quarantined, failed;
    unsigned associations, archive_associations;
    uint64_t forwarded, forward_failed, forward_retries, forwarded_bytes;
    bool spool_full, archive_idle;
    int64_t archive_down_s; /* seconds since the last delivery while files
                               wait, 0 when all is delivered */
} gw_gauges;

typedef void (*gw_gauges_fn)(void *ctx, gw_gauges *out);

/* Listens on address (IPv4; NULL or "": 127.0.0.1, the default: the
 * numbers name sites and the archive) and port. */
int gw_metrics_start(const char *address, const char *bind_port,
                     gw_gauges_fn gauges, void *ctx, dcm_error *err);
void gw_metrics_stop(void);

/* The slot of the site of that name ("(plain)" for the plain listener)
 * for the counters below: the same slot for the same name for the
 * process's life. Thread-safe; any time, before start too. */
size_t gw_metrics_slot(const char *name);

/* Events, by the site's slot. */
void gw_metric_received(size_t site, uint64_t bytes);
void gw_metric_rejected(size_t site);
void gw_metric_quarantined(void);
/* A refused TLS handshake or certificate, by its reason in words. */
void gw_metric_tls_failure(const char *reason);
/* Seconds from receipt to de-identified, and to delivered. */
void gw_metric_processed(double seconds);
void gw_metric_delivered(double seconds);
/* The pixel stage's outcome for one instance: action "compressed",
 * "redacted", "kept", "unchanged" or "failed" (pixels.h), whether
 * rectangles were blanked, and the Pixel Data bytes before and after. */
void gw_metric_pixels(const char *action, bool redacted,
                      uint64_t bytes_before, uint64_t bytes_after);

#endif /* SIREN_GW_METRICS_H */
