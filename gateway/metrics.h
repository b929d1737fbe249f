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

#define GW_METRICS_MAX_SITES 65 /* the sites and the plain listener */

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

/* Names of the sites, in index order (the plain listener last, as
 * "(plain)"); borrowed for the process's life. */
int gw_metrics_start(const char *bind_port, const char *const *sites,
                     size_t site_count, gw_gauges_fn gauges, void *ctx,
                     dcm_error *err);
void gw_metrics_stop(void);

/* Events, by site index (site_count: the plain listener). */
void gw_metric_received(size_t site, uint64_t bytes);
void gw_metric_rejected(size_t site);
void gw_metric_quarantined(void);
/* A refused TLS handshake or certificate, by its reason in words. */
void gw_metric_tls_failure(const char *reason);
/* Seconds from receipt to de-identified, and to delivered. */
void gw_metric_processed(double seconds);
void gw_metric_delivered(double seconds);

#endif /* SIREN_GW_METRICS_H */
