/* audit_syslog.c - the syslog sink (audit_syslog.h): a sender for the
 * tail (tail.h) that turns each batch of audit lines into A.5 messages
 * (audit_a5.h), frames them (RFC 6587 octet counting: "LENGTH SP
 * MESSAGE"), writes them on one TCP or TLS connection kept open, and
 * reports the batch delivered once the collector's TCP acknowledged it. */
#include "audit_syslog.h"

#include "audit_a5.h"
#include "gateway.h"
#include "tail.h"
#include "tls.h"

#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_BYTES (64u << 10)   /* of audit lines per batch */
#define CONNECT_TIMEOUT_MS 10000  /* TCP connect, and the TLS handshake */
#define WRITE_TIMEOUT_MS 30000
#define ACK_TIMEOUT_MS 30000      /* for the collector to take the batch */
#define ACK_POLL_MS 5
#define ACCEPTANCE_TIMEOUT_MS 2000 /* TLS 1.3: the collector's verdict on
                                      our certificate (a session ticket) */

static struct {
    gw_syslog_target target;
    char *target_text;
    char *ca_file, *cert_file, *key_file; /* tls:// only: copies */
    /* tls:// only: replaced by gw_syslog_reload (main thread), read by
     * the sender when it connects; under lock. */
    tls_context *tls;
    pthread_mutex_t lock;
    atomic_bool renew;        /* reloaded: reconnect before the next batch */
    char aet[DCM_AE_TITLE_MAX + 1];
    char host[256];
    gw_a5_source source;
    dcm_transport *conn;      /* NULL: not connected */
    int fd;                   /* conn's socket (owned by conn) */
    gw_tail *tail;
} s = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the target ------------------------------------------------------------------- */

static bool host_char(char c, bool bracketed)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
           (bracketed && (c == ':' || c == '%'));
}

int gw_syslog_target_parse(const char *text, gw_syslog_target *out,
                           char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    bool tcp = strncmp(text, "tcp://", 6) == 0;
    out->tls = strncmp(text, "tls://", 6) == 0;
    if (!tcp && !out->tls) {
        snprintf(why, why_size, "a syslog collector starts with tcp:// or "
                 "tls://");
        return -1;
    }
    const char *host = text + 6, *end;
    bool bracketed = *host == '[';
    if (bracketed) {
        host++;
        end = strchr(host, ']');
        if (!end) {
            snprintf(why, why_size, "']' missing after the IPv6 address");
            return -1;
        }
    } else {
        end = host + strcspn(host, ":");
    }
    size_t host_len = (size_t)(end - host);
    for (size_t i = 0; i < host_len; i++)
        if (!host_char(host[i], bracketed)) {
            snprintf(why, why_size, "a host name has letters, digits, "
                     "'.', '-' (no path, no user)");
            return -1;
        }
    if (host_len == 0 || host_len >= sizeof out->host) {
        snprintf(why, why_size, "no host, or a host name too long");
        return -1;
    }
    memcpy(out->host, host, host_len);
    const char *rest = end + bracketed;
    const char *port = out->tls ? GW_SYSLOG_TLS_PORT : GW_SYSLOG_TCP_PORT;
    if (*rest == ':') {
        port = rest + 1;
        char *digits_end;
        long number = strtol(port, &digits_end, 10);
        if (!*port || *digits_end || port[0] < '0' || port[0] > '9' ||
            number < 1 || number > 65535) {
            snprintf(why, why_size, "the port is a number, 1 to 65535");
            return -1;
        }
    } else if (*rest) {
        snprintf(why, why_size, "unexpected text after the host");
        return -1;
    }
    snprintf(out->port, sizeof out->port, "%s", port);
    return 0;
}

/* ---- the connection ---------------------------------------------------------------- */

static void disconnect(const char *why)
{
    if (!s.conn)
        return;
    s.conn->ops->close(s.conn);
    s.conn = NULL;
    gw_log(GW_LOG_INFO, "syslog.disconnected", "collector=%s reason=\"%s\"",
           s.target_text, why);
}

static int connect_collector(char *why, size_t why_size)
{
    dcm_error err = {0};
    char peer[64];
    int fd = dcm_tcp_connect(s.target.host, s.target.port,
                             CONNECT_TIMEOUT_MS, peer, &err);
    dcm_transport *t = NULL;
    if (fd >= 0 && s.target.tls) {
        pthread_mutex_lock(&s.lock);
        tls_context *ctx = tls_context_ref(s.tls);
        pthread_mutex_unlock(&s.lock);
        t = tls_connect(ctx, fd, peer, s.target.host, CONNECT_TIMEOUT_MS,
                        &err); /* holds its own reference */
        tls_context_unref(ctx);
        /* Else a refused certificate would cost a batch: written, taken
         * by TCP, dropped by the collector. */
        if (t && tls_transport_await_acceptance(t, ACCEPTANCE_TIMEOUT_MS,
                                                &err) < 0) {
            t->ops->close(t);
            t = NULL;
        }
    } else if (fd >= 0) {
        t = dcm_tcp_transport(fd, peer, &err);
    }
    if (!t) { /* the transports own fd, also when they fail */
        snprintf(why, why_size, "%s", err.message);
        return -1;
    }
    s.conn = t;
    s.fd = fd;
    const tls_identity *id = tls_transport_identity(t);
    gw_log(GW_LOG_INFO, "syslog.connected", "collector=%s peer=%s%s%s",
           s.target_text, peer, id ? " tls=" : "", id ? id->protocol : "");
    return 0;
}

/* The collector never sends: data, an end or an error waiting on the
 * socket mean the connection is over (a TLS 1.3 session ticket is read
 * and dropped by the transport, which then reports a timeout). */
static bool still_open(void)
{
    char byte;
    dcm_error err = {0};
    long got = s.conn->ops->read(s.conn, &byte, 1, 0, &err);
    return got == DCM_E_TIMEOUT || got > 0;
}

/* Waits until the collector's TCP has acknowledged every byte written
 * (the send queue is empty) and the connection has no error: only then
 * is a batch counted as delivered. */
static bool acknowledged(char *why, size_t why_size)
{
    for (long waited_ms = 0;; waited_ms += ACK_POLL_MS) {
        int queued = 0;
        if (ioctl(s.fd, SIOCOUTQ, &queued) < 0) {
            snprintf(why, why_size, "cannot read the send queue");
            return false;
        }
        if (queued == 0)
            break;
        if (waited_ms >= ACK_TIMEOUT_MS) {
            snprintf(why, why_size, "the collector took no data for %d s",
                     ACK_TIMEOUT_MS / 1000);
            return false;
        }
        nanosleep(&(struct timespec){.tv_nsec = ACK_POLL_MS * 1000000L},
                  NULL);
    }
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0 || error) {
        snprintf(why, why_size, "connection error: %s", strerror(error));
        return false;
    }
    return true;
}

/* ---- a batch ----------------------------------------------------------------------- */

/* The framed messages of lines, appended to *frames. Lines that are no
 * audit event are logged and left out (they count as delivered). */
static bool frame_lines(const char *lines, size_t len, char **frames,
                        size_t *frames_len)
{
    size_t cap = 0;
    for (const char *line = lines; line < lines + len;) {
        const char *end = memchr(line, '\n', (size_t)(lines + len - line));
        size_t msg_len = 0;
        char why[200];
        char *msg = gw_a5_syslog_message(line, (size_t)(end - line),
                                         &s.source, &msg_len, why,
                                         sizeof why);
        line = end + 1;
        if (!msg) {
            char quoted[400];
            gw_log(GW_LOG_WARN, "syslog.skipped", "reason=\"%s\"",
                   gw_log_quote(why, quoted, sizeof quoted));
            continue;
        }
        char prefix[24];
        size_t prefix_len = (size_t)snprintf(prefix, sizeof prefix, "%zu ",
                                             msg_len);
        if (*frames_len + prefix_len + msg_len > cap) {
            size_t grown_cap = 2 * (cap + prefix_len + msg_len);
            char *grown = realloc(*frames, grown_cap);
            if (!grown) {
                free(msg);
                return false;
            }
            *frames = grown;
            cap = grown_cap;
        }
        memcpy(*frames + *frames_len, prefix, prefix_len);
        memcpy(*frames + *frames_len + prefix_len, msg, msg_len);
        *frames_len += prefix_len + msg_len;
        free(msg);
    }
    return true;
}

/* The tail's sender: the whole batch, or nothing (then all of it again
 * later: the collector may see some messages twice). */
static size_t send_lines(void *ctx, const char *lines, size_t len, char *why,
                         size_t why_size)
{
    (void)ctx;
    char *frames = NULL;
    size_t frames_len = 0;
    if (!frame_lines(lines, len, &frames, &frames_len)) {
        free(frames);
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    if (frames_len == 0)
        return len; /* nothing in it to send */
    if (s.conn && !still_open())
        disconnect("closed by the collector");
    if (atomic_exchange(&s.renew, false))
        disconnect("the TLS files were reloaded");
    bool sent = s.conn || connect_collector(why, why_size) == 0;
    if (sent) {
        dcm_error err = {0};
        sent = s.conn->ops->write(s.conn, frames, frames_len,
                                  WRITE_TIMEOUT_MS, &err) == DCM_OK;
        if (!sent)
            snprintf(why, why_size, "%s", err.message);
    }
    sent = sent && acknowledged(why, why_size);
    free(frames);
    if (!sent) {
        disconnect(why);
        return 0;
    }
    return len;
}

/* Last on the sending thread: the connection (and OpenSSL's state for
 * the thread) goes with it. */
static void sender_done(void)
{
    disconnect("stopping");
    tls_thread_done();
}

/* ---- start and stop ---------------------------------------------------------------- */

/* The paths of c's TLS files, copied (gw_syslog_reload reads them
 * again). */
static bool keep_tls_files(const gw_syslog_config *c)
{
    const char *given[] = {c->ca_file, c->cert_file, c->key_file};
    char **kept[] = {&s.ca_file, &s.cert_file, &s.key_file};
    for (size_t i = 0; i < 3; i++)
        if (given[i] && !(*kept[i] = strdup(given[i])))
            return false;
    return true;
}

/* A client context from the kept files. */
static tls_context *load_tls_files(dcm_error *err)
{
    tls_client_config tc = {.profile = TLS_PROFILE_BCP195,
                            .ca_file = s.ca_file,
                            .cert_file = s.cert_file,
                            .key_file = s.key_file};
    return tls_client_context_new(&tc, err);
}

int gw_syslog_start(const gw_syslog_config *c, dcm_error *err)
{
    char why[160];
    if (gw_syslog_target_parse(c->target, &s.target, why, sizeof why) < 0)
        return dcm_fail(err, DCM_E_ARG, -1, "syslog %s: %s", c->target, why);
    if (s.target.tls && !c->ca_file)
        return dcm_fail(err, DCM_E_ARG, -1, "syslog over TLS needs the "
                        "collector's CA: audit { syslog-ca }");
    if (!(s.target_text = strdup(c->target)) ||
        (s.target.tls && !keep_tls_files(c))) {
        gw_syslog_stop();
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    }
    if (s.target.tls && !(s.tls = load_tls_files(err))) {
        gw_syslog_stop();
        return -1;
    }
    snprintf(s.aet, sizeof s.aet, "%s", c->aet);
    if (gethostname(s.host, sizeof s.host) < 0)
        s.host[0] = '\0';
    s.host[sizeof s.host - 1] = '\0';
    s.source = (gw_a5_source){.aet = s.aet,
                              .host = s.host[0] ? s.host : NULL,
                              .pid = (long)getpid()};
    gw_tail_config tc = {.name = "syslog", .file = c->audit_file,
                         .offset_suffix = ".syslog-offset",
                         .batch_bytes = BATCH_BYTES, .send = send_lines,
                         .thread_done = sender_done};
    if (!(s.tail = gw_tail_start(&tc, err))) {
        gw_syslog_stop();
        return -1;
    }
    gw_log(GW_LOG_INFO, "syslog.started", "collector=%s offset=%llu",
           s.target_text,
           (unsigned long long)gw_tail_saved_offset(c->audit_file,
                                                    ".syslog-offset"));
    return DCM_OK;
}

int gw_syslog_reload(dcm_error *err)
{
    if (!s.tail || !s.target.tls)
        return DCM_OK;
    tls_context *fresh = load_tls_files(err);
    if (!fresh)
        return -1;
    pthread_mutex_lock(&s.lock);
    tls_context *old = s.tls;
    s.tls = fresh;
    pthread_mutex_unlock(&s.lock);
    tls_context_unref(old); /* a connection made with it keeps its own */
    atomic_store(&s.renew, true);
    gw_log(GW_LOG_INFO, "syslog.reloaded", "collector=%s ca=%s cert=%s",
           s.target_text, s.ca_file, s.cert_file ? s.cert_file : "-");
    return DCM_OK;
}

void gw_syslog_stop(void)
{
    gw_tail_stop(s.tail);
    s.tail = NULL;
    tls_context_unref(s.tls);
    s.tls = NULL;
    free(s.target_text);
    s.target_text = NULL;
    free(s.ca_file);
    free(s.cert_file);
    free(s.key_file);
    s.ca_file = s.cert_file = s.key_file = NULL;
    atomic_store(&s.renew, false);
}
