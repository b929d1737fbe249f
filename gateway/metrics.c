/* metrics.c - counters, histograms and the HTTP endpoint (metrics.h). */
#include "metrics.h"

#include "gateway.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- counters -------------------------------------------------------------------- */

typedef struct site_counts {
    atomic_uint_least64_t received, bytes, rejected;
} site_counts;

/* Reasons of refused TLS peers, as the tls module words them. */
static const struct {
    const char *label, *words;
} tls_reasons[] = {
    {"expired", "expired"},
    {"not_yet_valid", "not yet valid"},
    {"revoked", "revoked"},
    {"unknown_ca", "unknown CA"},
    {"self_signed", "self-signed"},
    {"wrong_usage", "usage"},
    {"ca_certificate", "CA certificate"},
    {"weak_key", "key under"},
    {"weak_signature", "SHA-1"},
    {"no_certificate", "no client certificate"},
    {"wrong_site", "site"},
    {"protocol", "handshake failed"},
};
#define TLS_REASONS (sizeof tls_reasons / sizeof *tls_reasons)

/* Seconds; a histogram's upper bounds, +Inf last. */
static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                 10, 30, 60, 300};
#define BUCKETS (sizeof buckets / sizeof *buckets)

/* The pixel stage's actions, in the order /metrics lists them. */
static const char *const pixel_actions[] = {"compressed", "redacted", "kept",
                                            "unchanged", "failed"};
#define PIXEL_ACTIONS (sizeof pixel_actions / sizeof *pixel_actions)

typedef struct histogram {
    atomic_uint_least64_t counts[BUCKETS + 1];
    atomic_uint_least64_t sum_us;
} histogram;

static struct {
    /* Sites by slot: a name once given keeps its slot (and its counts)
     * for the process's life, even if a reload removes the site. */
    pthread_mutex_t names_lock;
    char names[GW_METRICS_MAX_SITES][GW_METRICS_NAME_MAX];
    atomic_size_t site_count;
    site_counts per_site[GW_METRICS_MAX_SITES];
    atomic_uint_least64_t quarantined;
    atomic_uint_least64_t tls_failures[TLS_REASONS + 1]; /* +1: other */
    histogram processed, delivered;
    atomic_uint_least64_t pixels[PIXEL_ACTIONS];
    atomic_uint_least64_t pixels_redacted, pixel_bytes_in, pixel_bytes_out;
    gw_gauges_fn gauges;
    void *ctx;
    struct MHD_Daemon *daemon;
} m = {.names_lock = PTHREAD_MUTEX_INITIALIZER};

size_t gw_metrics_slot(const char *name)
{
    pthread_mutex_lock(&m.names_lock);
    size_t count = atomic_load(&m.site_count), slot = 0;
    while (slot < count && strcmp(m.names[slot], name) != 0)
        slot++;
    if (slot == count && count < GW_METRICS_MAX_SITES - 1) {
        snprintf(m.names[slot], sizeof m.names[slot], "%s", name);
        atomic_store(&m.site_count, count + 1);
    } else if (slot == count) {
        slot = GW_METRICS_MAX_SITES - 1; /* all slots taken: "(other)" */
    }
    pthread_mutex_unlock(&m.names_lock);
    return slot;
}

static site_counts *site_at(size_t slot)
{
    return &m.per_site[slot < GW_METRICS_MAX_SITES ? slot
                                                   : GW_METRICS_MAX_SITES - 1];
}

void gw_metric_received(size_t site, uint64_t bytes)
{
    atomic_fetch_add(&site_at(site)->received, 1);
    atomic_fetch_add(&site_at(site)->bytes, bytes);
}

void gw_metric_rejected(size_t site)
{
    atomic_fetch_add(&site_at(site)->rejected, 1);
}

void gw_metric_quarantined(void)
{
    atomic_fetch_add(&m.quarantined, 1);
}

void gw_metric_tls_failure(const char *reason)
{
    size_t i = 0;
    while (i < TLS_REASONS && !strstr(reason, tls_reasons[i].words))
        i++;
    atomic_fetch_add(&m.tls_failures[i], 1);
}

static void observe(histogram *h, double seconds)
{
    size_t i = 0;
    while (i < BUCKETS && seconds > buckets[i])
        i++;
    atomic_fetch_add(&h->counts[i], 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

void gw_metric_processed(double seconds)
{
    observe(&m.processed, seconds);
}

void gw_metric_delivered(double seconds)
{
    observe(&m.delivered, seconds);
}

void gw_metric_pixels(const char *action, bool redacted,
                      uint64_t bytes_before, uint64_t bytes_after)
{
    for (size_t i = 0; i < PIXEL_ACTIONS; i++)
        if (strcmp(action, pixel_actions[i]) == 0)
            atomic_fetch_add(&m.pixels[i], 1);
    if (redacted)
        atomic_fetch_add(&m.pixels_redacted, 1);
    atomic_fetch_add(&m.pixel_bytes_in, bytes_before);
    atomic_fetch_add(&m.pixel_bytes_out, bytes_after);
}

/* ---- the text format ------------------------------------------------------------ */

typedef struct text {
    char *buf;
    size_t len, size;
} text;

static void put(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->buf ? vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap)
                       : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < t->size - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t bigger = t->size ? t->size * 2 : 16384;
        char *more = realloc(t->buf, bigger);
        if (!more)
            return; /* the scrape gets what fits */
        t->buf = more;
        t->size = bigger;
    }
}

static void header(text *t, const char *name, const char *type,
                   const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_histogram(text *t, const char *name, const char *help,
                          histogram *h)
{
    header(t, name, "histogram", help);
    uint64_t total = 0;
    for (size_t i = 0; i <= BUCKETS; i++) {
        total += atomic_load(&h->counts[i]);
        if (i < BUCKETS)
            put(t, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i],
                (unsigned long long)total);
        else
            put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                (unsigned long long)total);
    }
    put(t, "%s_sum %.6f\n%s_count %llu\n", name,
        (double)atomic_load(&h->sum_us) / 1e6, name,
        (unsigned long long)total);
}

static void put_site_counter(text *t, const char *name, const char *help,
                             size_t offset)
{
    header(t, name, "counter", help);
    size_t count = atomic_load(&m.site_count);
    for (size_t i = 0; i < GW_METRICS_MAX_SITES; i++) {
        if (i >= count && i != GW_METRICS_MAX_SITES - 1)
            continue;
        atomic_uint_least64_t *v =
            (atomic_uint_least64_t *)((char *)&m.per_site[i] + offset);
        if (i == GW_METRICS_MAX_SITES - 1 && !atomic_load(v))
            continue; /* "(other)" only once used */
        put(t, "%s{site=\"%s\"} %llu\n", name,
            i < count ? m.names[i] : "(other)",
            (unsigned long long)atomic_load(v));
    }
}

static void put_gauge(text *t, const char *name, const char *help,
                      const char *type, uint64_t value)
{
    header(t, name, type, help);
    put(t, "%s %llu\n", name, (unsigned long long)value);
}

static void render(text *t)
{
    gw_gauges g = {0};
    m.gauges(m.ctx, &g);
    put_site_counter(t, "siren_instances_received_total",
                     "Instances stored and acknowledged, per site.",
                     offsetof(site_counts, received));
    put_site_counter(t, "siren_bytes_received_total",
                     "Bytes of instances stored, per site.",
                     offsetof(site_counts, bytes));
    put_site_counter(t, "siren_instances_rejected_total",
                     "Instances refused by a policy's reject line, per "
                     "site.", offsetof(site_counts, rejected));
    put_gauge(t, "siren_instances_quarantined_total",
              "Instances moved to quarantine.", "counter",
              atomic_load(&m.quarantined));
    put_gauge(t, "siren_instances_forwarded_total",
              "Instances the archive confirmed.", "counter", g.forwarded);
    put_gauge(t, "siren_bytes_forwarded_total", "Bytes delivered.",
              "counter", g.forwarded_bytes);
    put_gauge(t, "siren_forward_failed_total",
              "Instances the archive refused for good.", "counter",
              g.forward_failed);
    put_gauge(t, "siren_forward_retries_total",
              "Transient failures while forwarding.", "counter",
              g.forward_retries);
    header(t, "siren_tls_failures_total", "counter",
           "Refused TLS peers, by reason.");
    for (size_t i = 0; i <= TLS_REASONS; i++)
        put(t, "siren_tls_failures_total{reason=\"%s\"} %llu\n",
            i < TLS_REASONS ? tls_reasons[i].label : "other",
            (unsigned long long)atomic_load(&m.tls_failures[i]));
    put_gauge(t, "siren_queue_received", "Instances waiting for a "
              "processor.", "gauge", g.received_queue);
    put_gauge(t, "siren_queue_outgoing", "Instances waiting for the "
              "archive.", "gauge", g.outgoing_queue);
    put_gauge(t, "siren_quarantine_instances", "Instances held in "
              "quarantine.", "gauge", g.quarantined);
    put_gauge(t, "siren_failed_instances", "Instances the archive refused, "
              "held.", "gauge", g.failed);
    put_gauge(t, "siren_spool_bytes", "Bytes in the spool.", "gauge",
              g.spool_bytes);
    put_gauge(t, "siren_spool_quota_bytes", "The spool's quota (0: none).",
              "gauge", g.spool_quota);
    put_gauge(t, "siren_spool_full", "1 while new instances get A700.",
              "gauge", g.spool_full);
    put_gauge(t, "siren_associations", "Open associations from sites.",
              "gauge", g.associations);
    put_gauge(t, "siren_archive_associations", "Open associations to the "
              "archive.", "gauge", g.archive_associations);
    header(t, "siren_pixels_instances_total", "counter",
           "Instances through the pixel stage, by action.");
    for (size_t i = 0; i < PIXEL_ACTIONS; i++)
        put(t, "siren_pixels_instances_total{action=\"%s\"} %llu\n",
            pixel_actions[i], (unsigned long long)atomic_load(&m.pixels[i]));
    put_gauge(t, "siren_pixels_redacted_total",
              "Instances with rectangles blanked.", "counter",
              atomic_load(&m.pixels_redacted));
    put_gauge(t, "siren_pixel_bytes_in_total",
              "Pixel Data bytes into the pixel stage.", "counter",
              atomic_load(&m.pixel_bytes_in));
    put_gauge(t, "siren_pixel_bytes_out_total",
              "Pixel Data bytes out of the pixel stage (in minus out: "
              "bytes saved).", "counter", atomic_load(&m.pixel_bytes_out));
    put_histogram(t, "siren_processing_seconds",
                  "From receipt to de-identified.", &m.processed);
    put_histogram(t, "siren_delivery_seconds",
                  "From receipt to confirmed by the archive.", &m.delivered);
}

/* ---- HTTP ------------------------------------------------------------------------- */

/* Not healthy: the reason, or NULL. */
static const char *unhealthy(void)
{
    gw_gauges g = {0};
    m.gauges(m.ctx, &g);
    if (g.spool_full)
        return "spool full: new instances are refused (A700)";
    if (g.archive_down_s > 600)
        return "nothing delivered to the archive for over 10 minutes "
               "while instances wait";
    return NULL;
}

static enum MHD_Result reply(struct MHD_Connection *connection,
                             unsigned status, const char *type, char *body,
                             size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(connection, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *connection,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
    if (strcmp(method, "GET") != 0)
        return reply(connection, 405, "text/plain", strdup("GET only\n"), 9);
    if (strcmp(url, "/metrics") == 0) {
        text t = {0};
        render(&t);
        return reply(connection, t.buf ? 200 : 500,
                     "text/plain; version=0.0.4", t.buf ? t.buf :
                     strdup(""), t.len);
    }
    if (strcmp(url, "/healthz") == 0) {
        const char *why = unhealthy();
        char *body = malloc(256);
        if (!body)
            return MHD_NO;
        int n = snprintf(body, 256, "%s\n", why ? why : "ok");
        return reply(connection, why ? 503 : 200, "text/plain", body,
                     (size_t)n);
    }
    return reply(connection, 404, "text/plain",
                 strdup("/metrics or /healthz\n"), 21);
}

int gw_metrics_start(const char *address, const char *bind_port,
                     gw_gauges_fn gauges, void *ctx, dcm_error *err)
{
    char *end;
    unsigned long port = strtoul(bind_port, &end, 10);
    if (*end || port > 65535)
        return dcm_fail(err, DCM_E_ARG, -1, "metrics port %s", bind_port);
    if (!address || !address[0])
        address = "127.0.0.1";
    struct sockaddr_in where = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, address, &where.sin_addr) != 1)
        return dcm_fail(err, DCM_E_ARG, -1, "metrics bind %s is not an IPv4 "
                        "address", address);
    m.gauges = gauges;
    m.ctx = ctx;
    m.daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
        NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &where,
        MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_END);
    if (!m.daemon)
        return dcm_fail(err, DCM_E_IO, -1, "cannot listen for metrics on "
                        "%s:%s", address, bind_port);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(m.daemon, MHD_DAEMON_INFO_BIND_PORT);
    gw_log(GW_LOG_INFO, "metrics.listening", "address=%s port=%u", address,
           info ? info->port : (unsigned)port);
    return DCM_OK;
}

void gw_metrics_stop(void)
{
    if (m.daemon)
        MHD_stop_daemon(m.daemon);
    m.daemon = NULL;
}
