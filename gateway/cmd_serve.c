/* cmd_serve.c - `siren serve --dir DIR`: a C-STORE SCP that writes every
 * received instance into a directory, durably, before answering Success.
 * It listens on DICOM-TLS for sites (each site's certificate bound to its
 * calling AE titles) and, only when asked, on plain DICOM. The gateway
 * service (spool, policies, forwarding) builds on this.
 *
 * Threads: the main thread accepts; each association runs in its own
 * thread, at most --max-associations at once, and at most
 * --max-handshakes of them in a TLS handshake. A plain connection beyond
 * the limit is answered with A-ASSOCIATE-RJ "local limit exceeded"
 * (transient) by a short-lived thread, at most REFUSERS of those; a TLS
 * one is closed (a refusal would cost a handshake first). A thread per
 * association keeps each DICOM conversation a plain sequence of blocking
 * calls, each bounded by a timeout, so one slow or hostile peer holds one
 * thread and nothing else.
 *
 * Who may send and under which rules (sites, policies, TLS context,
 * limits) is one table (sites.h) that SIGHUP rebuilds - from the
 * configuration file under the service, from the options' files under
 * serve --dir - and swaps in whole for new connections; established ones
 * keep the table they started with. */
#include "gateway.h"

#include "anon.h"
#include "audit.h"
#include "audit_syslog.h"
#include "config.h"
#include "dicom.h"
#include "forward.h"
#include "hec.h"
#include "metrics.h"
#include "policy.h"
#include "process.h"
#include "sites.h"
#include "spool.h"
#include "tls.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define REFUSERS 8              /* threads answering "too many" at once */
#define REFUSAL_WAIT_MS 3000    /* how long a refuser waits for the request */
#define TEMP_PREFIX ".incoming-" /* a file being received */
#define MAX_SITES GW_MAX_SITES
#define MAX_LIST GW_MAX_PLAIN_AETS

typedef struct server {
    const char *dir;
    dcm_scp_config scp;           /* each association gets a copy, with
                                     its table's AE title and limits */
    pthread_mutex_t lock;         /* guards what follows */
    pthread_cond_t changed;
    int active, refusing, handshaking;
    gw_sites *sites;              /* for new connections */
    atomic_uint next_file;
    /* The gateway service (serve -c): its configuration as started (what
     * a reload cannot change comes from here), the spool and its
     * processors. */
    const gw_config *config;      /* NULL for serve --dir */
    gw_spool spool;
    gw_processor *processor;
    gw_forwarder *forwarder;
    atomic_bool spool_full;       /* measured by the main thread */
} server;

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void on_reload_signal(int signo)
{
    (void)signo;
    reload_requested = 1;
}

/* One accepted connection and, once established, its association. */
typedef struct connection {
    server *srv;
    int fd;
    bool tls;
    char peer[64];
    gw_sites *table;              /* the rules it started under */
    const tls_identity *identity; /* TLS: the verified certificate */
    const gw_site *site;          /* TLS: the site it proved to be */
    char calling_ae[DCM_AE_TITLE_MAX + 1];
    char called_ae[DCM_AE_TITLE_MAX + 1];
    unsigned stored, refused;
    unsigned long long bytes;
} connection;

/* ---- security events ------------------------------------------------------------- */

/* Errors from the network layers start with the peer: in a log line it
 * is already the peer= field. */
static const char *without_peer(const connection *c, const char *reason)
{
    size_t peer_len = strlen(c->peer);
    if (strncmp(reason, c->peer, peer_len) == 0 &&
        strncmp(reason + peer_len, ": ", 2) == 0)
        return reason + peer_len + 2;
    return reason;
}

/* A rejected certificate, a site mismatch: one line an operator (and, with
 * the gateway service, the audit trail) can act on. */
static void security_alert(const connection *c, const char *reason)
{
    reason = without_peer(c, reason);
    char quoted[320], subject[600], certificate[800] = "";
    const tls_identity *id = c->identity;
    if (id && id->has_certificate)
        snprintf(certificate, sizeof certificate, " subject=\"%s\" "
                 "spki_sha256=%s serial=%s",
                 gw_log_quote(id->subject, subject, sizeof subject),
                 id->spki_sha256, id->serial);
    gw_log(GW_LOG_WARN, "security.alert", "peer=%s reason=\"%s\"%s", c->peer,
           gw_log_quote(reason, quoted, sizeof quoted), certificate);
    gw_metric_tls_failure(reason);
    bool cert = id && id->has_certificate;
    gw_audit("security.alert", "peer", c->peer, "reason", reason,
             "cert_subject", cert ? id->subject : NULL,
             "cert_serial", cert ? id->serial : NULL,
             "cert_spki_sha256", cert ? id->spki_sha256 : NULL, NULL);
}

/* ---- who may associate -------------------------------------------------------------- */

/* TLS: the calling AE title must be a site's, and the certificate that
 * site's. Plain: the calling AE title must be allowed, if a list is set. */
static int check_peer(void *ctx, const dcm_assoc_info *rq,
                      const dcm_transport *t, dcm_reject *rj)
{
    connection *c = ctx;
    *rj = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_USER,
                       DCM_RJ_CALLING_AE_NOT_RECOGNIZED};
    char reason[200];
    if (!c->tls)
        return gw_sites_plain_allows(c->table, rq->calling_ae) ? 0 : -1;
    const gw_site *s = gw_sites_by_ae(c->table, rq->calling_ae);
    if (!s) {
        snprintf(reason, sizeof reason, "calling AE title %s belongs to no "
                 "site", rq->calling_ae);
        security_alert(c, reason);
        return -1;
    }
    if (!tls_identity_matches(tls_transport_identity(t), &s->match)) {
        snprintf(reason, sizeof reason, "certificate is not site %s's, whose "
                 "AE title %s it used", s->name, rq->calling_ae);
        security_alert(c, reason);
        return -1;
    }
    c->site = s;
    return 0;
}

/* ---- writing instances ---------------------------------------------------------- */

typedef struct incoming {
    connection *conn;
    int fd;
    char temp_path[PATH_MAX];
    dcm_command rq;
    unsigned long long bytes;
} incoming;

static int write_fd(void *ctx, const void *data, size_t len)
{
    incoming *in = ctx;
    off_t start = (off_t)in->bytes;
    if (dcm_fd_writer(&in->fd, data, len) < 0)
        return -1;
    in->bytes += len;
    /* Start writing this part to disk now, while the rest arrives: the
     * fdatasync before Success then waits for less. */
    sync_file_range(in->fd, start, (off_t)len, SYNC_FILE_RANGE_WRITE);
    return 0;
}

/* Who sent the instance, for (0002,0102) Private Information of the stored
 * file: the gateway keeps the site's identity with every instance. */
static size_t provenance(const connection *c, char *out, size_t size)
{
    size_t n = 1;
    out[0] = '{';
    char when[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    gw_json_field(out, size, &n, "received", when);
    gw_json_field(out, size, &n, "peer", c->peer);
    gw_json_field(out, size, &n, "calling_ae", c->calling_ae);
    gw_json_field(out, size, &n, "called_ae", c->called_ae);
    gw_json_field(out, size, &n, "transport", c->tls ? "tls" : "plain");
    if (c->site)
        gw_json_field(out, size, &n, "site", c->site->name);
    if (c->identity) {
        gw_json_field(out, size, &n, "tls_protocol", c->identity->protocol);
        gw_json_field(out, size, &n, "tls_cipher", c->identity->cipher);
        gw_json_field(out, size, &n, "cert_subject", c->identity->subject);
        gw_json_field(out, size, &n, "cert_issuer", c->identity->issuer);
        gw_json_field(out, size, &n, "cert_serial", c->identity->serial);
        gw_json_field(out, size, &n, "cert_spki_sha256", c->identity->spki_sha256);
        gw_json_field(out, size, &n, "cert_sha256", c->identity->cert_sha256);
    }
    if (n + 1 < size)
        out[n++] = '}';
    out[n] = '\0';
    return n;
}

static int store_begin(void *ctx, const dcm_assoc *a, const dcm_command *rq,
                       void **instance, uint16_t *status)
{
    connection *c = ctx;
    if (atomic_load(&c->srv->spool_full)) {
        /* Refused before a byte is written: the sender keeps the
         * instance and may try again; nothing is acknowledged unstored. */
        gw_log(GW_LOG_WARN, "store.refused", "peer=%s sop_instance=%s "
               "status=0xA700 reason=\"spool full\"", c->peer,
               rq->sop_instance);
        *status = DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    incoming *in = calloc(1, sizeof *in);
    if (!in) {
        *status = DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    in->conn = c;
    in->rq = *rq;
    snprintf(in->temp_path, sizeof in->temp_path, "%s/" TEMP_PREFIX "XXXXXX",
             c->srv->dir);
    in->fd = mkostemp(in->temp_path, O_CLOEXEC); /* mode 0600 */
    const dcm_pcontext *pc = dcm_assoc_context(a, rq->context_id);
    char info[2048], address[80];
    snprintf(address, sizeof address, "dicom://%s", c->peer);
    dcm_meta meta = {.sop_class_uid = rq->sop_class,
                     .sop_instance_uid = rq->sop_instance,
                     .ts_uid = pc->accepted->uid,
                     .source_ae_title = c->calling_ae,
                     .sending_ae_title = c->calling_ae,
                     .receiving_ae_title = c->called_ae,
                     .sending_address = address,
                     .private_creator_uid = DCM_IMPLEMENTATION_CLASS_UID,
                     .private_info = info,
                     .private_info_len = provenance(c, info, sizeof info)};
    dcm_error err = {0};
    if (in->fd < 0 || dcm_write_meta(&meta, write_fd, in, &err) < 0) {
        gw_log(GW_LOG_ERROR, "store.failed", "peer=%s reason=\"%s\"", c->peer,
               in->fd < 0 ? strerror(errno) : err.message);
        if (in->fd >= 0) {
            close(in->fd);
            unlink(in->temp_path);
        }
        free(in);
        *status = DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    *instance = in;
    return 0;
}

/* For the metrics: the slot of the site, or of the plain listener. */
static size_t site_index(const connection *c)
{
    return c->site ? c->site->metrics_slot : c->table->plain_metrics_slot;
}

/* The policy of the connection's site (or of the plain listener) in the
 * table it started under; NULL for serve --dir. Borrowed from the table. */
static pol_policy *connection_policy(const connection *c)
{
    return c->site ? c->site->policy : c->table->plain_policy;
}

/* The policy's reject lines, on the header as received, before Success:
 * the site learns at once that the instance is refused, and why. (Its
 * quarantine lines run in the processor: the instance is accepted and
 * held.) */
static uint16_t filter_header(incoming *in, const dcm_dataset *ds,
                              char comment[65])
{
    pol_policy *p = connection_policy(in->conn);
    char reason[512];
    uint16_t status = DCM_STATUS_SUCCESS;
    if (p && pol_policy_filter(p, ds, reason, sizeof reason) == POL_REJECT) {
        char quoted[600];
        snprintf(comment, 65, "%.64s", reason);
        status = DCM_STATUS_NOT_AUTHORIZED;
        gw_log(GW_LOG_INFO, "instance.rejected", "peer=%s sop_instance=%s "
               "policy=%s version=%u reason=\"%s\"", in->conn->peer,
               in->rq.sop_instance, pol_policy_name(p),
               pol_policy_version(p), gw_log_quote(reason, quoted,
                                                   sizeof quoted));
        gw_metric_rejected(site_index(in->conn));
        char version[16];
        snprintf(version, sizeof version, "%u", pol_policy_version(p));
        gw_audit("instance.rejected", "peer", in->conn->peer, "site",
                 in->conn->site ? in->conn->site->name : NULL,
                 "calling_ae", in->conn->calling_ae, "sop_class",
                 in->rq.sop_class, "sop_instance", in->rq.sop_instance,
                 "policy", pol_policy_name(p), "policy_version", version,
                 "reason", reason, NULL);
    }
    return status;
}

/* The stored file must be a data set of the SOP class and instance its
 * command announced; returns the status that answers it. */
static uint16_t check_stored(incoming *in, char comment[65])
{
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(in->temp_path, NULL, &err);
    if (!f) {
        snprintf(comment, 65, "unreadable data set: %.40s", err.message);
        return DCM_STATUS_CANNOT_UNDERSTAND;
    }
    const dcm_dataset *ds = dcm_file_dataset(f);
    const dcm_element *cls = dcm_dataset_find(ds, DCM_TAG_SOP_CLASS_UID);
    const dcm_element *inst = dcm_dataset_find(ds, DCM_TAG_SOP_INSTANCE_UID);
    char *cls_uid = cls ? dcm_element_get_string(cls, NULL) : NULL;
    char *inst_uid = inst ? dcm_element_get_string(inst, NULL) : NULL;
    uint16_t status = DCM_STATUS_SUCCESS;
    if (!cls_uid || !inst_uid || strcmp(cls_uid, in->rq.sop_class) != 0 ||
        strcmp(inst_uid, in->rq.sop_instance) != 0) {
        snprintf(comment, 65, "data set SOP class/instance differ from the "
                 "command");
        status = DCM_STATUS_DATASET_MISMATCH;
    } else {
        status = filter_header(in, ds, comment);
    }
    free(cls_uid);
    free(inst_uid);
    dcm_file_free(f);
    return status;
}

/* A name from a clock, the process and a counter: never from peer data. */
static void final_name(server *srv, char *out, size_t size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned seq = atomic_fetch_add(&srv->next_file, 1);
    snprintf(out, size, "%s/%lld%03ld-%d-%06u.dcm", srv->dir,
             (long long)now.tv_sec, now.tv_nsec / 1000000, (int)getpid(), seq);
}

static uint16_t store_end(void *instance, bool complete, char comment[65])
{
    incoming *in = instance;
    connection *c = in->conn;
    uint16_t status = DCM_STATUS_OUT_OF_RESOURCES;
    bool durable = complete && fdatasync(in->fd) == 0;
    if (close(in->fd) < 0)
        durable = false;
    if (!complete)
        snprintf(comment, 65, "data set incomplete");
    else if (!durable)
        snprintf(comment, 65, "cannot write the data set to disk");
    else
        status = check_stored(in, comment);
    char path[PATH_MAX];
    if (status == DCM_STATUS_SUCCESS) {
        final_name(c->srv, path, sizeof path);
        if (rename(in->temp_path, path) < 0 || gw_sync_dir(c->srv->dir) < 0) {
            status = DCM_STATUS_OUT_OF_RESOURCES;
            snprintf(comment, 65, "cannot write the data set to disk");
        }
    }
    if (status == DCM_STATUS_SUCCESS) {
        /* Under the lock: the main thread clears it before stopping the
         * processors, so a wake never reaches a freed pool. */
        pthread_mutex_lock(&c->srv->lock);
        if (c->srv->processor)
            gw_process_wake(c->srv->processor);
        pthread_mutex_unlock(&c->srv->lock);
        c->stored++;
        c->bytes += in->bytes;
        gw_log(GW_LOG_INFO, "store.ok", "peer=%s%s%s sop_instance=%s "
               "bytes=%llu file=%s", c->peer, c->site ? " site=" : "",
               c->site ? c->site->name : "", in->rq.sop_instance, in->bytes,
               path);
        gw_metric_received(site_index(c), in->bytes);
        char bytes[24];
        snprintf(bytes, sizeof bytes, "%llu", in->bytes);
        gw_audit("instance.received", "peer", c->peer, "site",
                 c->site ? c->site->name : NULL, "calling_ae", c->calling_ae,
                 "sop_class", in->rq.sop_class, "sop_instance",
                 in->rq.sop_instance, "bytes", bytes, "file",
                 strrchr(path, '/') + 1, NULL);
    } else {
        unlink(in->temp_path);
        c->refused++;
        gw_log(GW_LOG_WARN, "store.refused", "peer=%s sop_instance=%s "
               "status=0x%04X reason=\"%s\"", c->peer, in->rq.sop_instance,
               status, comment);
    }
    free(in);
    return status;
}

/* ---- associations --------------------------------------------------------------- */

static void finish(server *srv, int *counter)
{
    pthread_mutex_lock(&srv->lock);
    (*counter)--;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
}

static size_t accepted_contexts(const dcm_assoc_info *info)
{
    size_t n = 0;
    for (size_t i = 0; i < info->context_count; i++)
        n += info->contexts[i].result == DCM_PC_ACCEPTED;
    return n;
}

/* The TLS handshake, at most max_handshakes at once, with the context of
 * the moment (a SIGHUP may replace it meanwhile). */
static dcm_transport *handshake(connection *c, dcm_error *err)
{
    server *srv = c->srv;
    const gw_sites *table = c->table;
    pthread_mutex_lock(&srv->lock);
    bool room = srv->handshaking < table->max_handshakes;
    if (room)
        srv->handshaking++;
    pthread_mutex_unlock(&srv->lock);
    if (!room) {
        close(c->fd);
        err->code = DCM_E_LIMIT;
        snprintf(err->message, sizeof err->message, "more than %d TLS "
                 "handshakes at once", table->max_handshakes);
        return NULL;
    }
    dcm_transport *t = tls_accept(table->tls, c->fd, c->peer,
                                  table->handshake_timeout_ms, err);
    finish(srv, &srv->handshaking);
    return t;
}

static void log_accepted(const connection *c, const dcm_assoc_info *info)
{
    char user[160] = "";
    if (info->user.type) {
        char quoted[140];
        snprintf(user, sizeof user, " user=\"%s\"",
                 gw_log_quote(info->user.username, quoted, sizeof quoted));
    }
    char version[40];
    gw_log(GW_LOG_INFO, "assoc.accepted", "peer=%s%s%s calling=%s called=%s "
           "contexts=%zu/%zu peer_max_pdu=%u implementation=\"%s\"%s%s%s%s",
           c->peer, c->site ? " site=" : "", c->site ? c->site->name : "",
           info->calling_ae, info->called_ae, accepted_contexts(info),
           info->context_count, info->peer_max_pdu,
           gw_log_quote(info->peer_implementation_version, version,
                        sizeof version),
           c->identity ? " tls=" : "",
           c->identity ? c->identity->protocol : "",
           c->identity ? " cert_serial=" : "",
           c->identity ? c->identity->serial : "");
    if (user[0])
        gw_log(GW_LOG_INFO, "assoc.user_identity", "peer=%s%s", c->peer, user);
    const tls_identity *id = c->identity;
    bool cert = id && id->has_certificate;
    gw_audit("association.accepted", "peer", c->peer, "site",
             c->site ? c->site->name : NULL, "calling_ae", info->calling_ae,
             "called_ae", info->called_ae, "transport", id ? "tls" : "plain",
             "tls_protocol", id ? id->protocol : NULL,
             "cert_subject", cert ? id->subject : NULL,
             "cert_issuer", cert ? id->issuer : NULL,
             "cert_serial", cert ? id->serial : NULL,
             "cert_spki_sha256", cert ? id->spki_sha256 : NULL, NULL);
}

static void serve_association(connection *c, dcm_transport *t)
{
    dcm_error err = {0};
    dcm_scp_config scp = c->srv->scp;
    scp.ae_title = c->table->aet;
    scp.limits = c->table->limits;
    scp.check_ctx = c;
    dcm_assoc *a = dcm_assoc_accept(t, &scp, &err);
    if (!a) {
        gw_log(GW_LOG_WARN, "assoc.failed", "peer=%s reason=\"%s\"", c->peer,
               err.message);
        return;
    }
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    snprintf(c->calling_ae, sizeof c->calling_ae, "%s", info->calling_ae);
    snprintf(c->called_ae, sizeof c->called_ae, "%s", info->called_ae);
    log_accepted(c, info);
    dcm_store_handler handler = {.begin = store_begin, .data = write_fd,
                                 .end = store_end, .ctx = c};
    int rc = dcm_scp_serve(a, &handler, &err);
    gw_log(rc == DCM_OK ? GW_LOG_INFO : GW_LOG_WARN,
           rc == DCM_OK ? "assoc.released" : "assoc.ended",
           "peer=%s stored=%u refused=%u bytes=%llu%s%s%s", c->peer,
           c->stored, c->refused, c->bytes,
           rc == DCM_OK ? "" : " reason=\"", rc == DCM_OK ? "" : err.message,
           rc == DCM_OK ? "" : "\"");
    dcm_assoc_free(a);
}

static void *run_association(void *arg)
{
    connection *c = arg;
    dcm_error err = {0};
    dcm_transport *t = c->tls ? handshake(c, &err)
                              : dcm_tcp_transport(c->fd, c->peer, &err);
    if (!t && err.code == DCM_E_REJECTED)
        security_alert(c, err.message);
    else if (!t) {
        gw_log(GW_LOG_WARN, c->tls ? "tls.failed" : "assoc.failed",
               "peer=%s reason=\"%s\"", c->peer,
               without_peer(c, err.message));
        if (c->tls)
            gw_metric_tls_failure(err.message);
    }
    if (t) {
        c->identity = tls_transport_identity(t);
        serve_association(c, t);
    }
    if (c->tls)
        tls_thread_done();
    finish(c->srv, &c->srv->active);
    gw_sites_unref(c->table);
    free(c);
    return NULL;
}

static void *run_refusal(void *arg)
{
    connection *c = arg;
    dcm_error err = {0};
    dcm_transport *t = dcm_tcp_transport(c->fd, c->peer, &err);
    dcm_reject rj = {DCM_RJ_TRANSIENT, DCM_RJ_SOURCE_PRESENTATION,
                     DCM_RJ_LOCAL_LIMIT_EXCEEDED};
    /* A refusal slot is held only briefly: a peer that does not send its
     * request soon is not worth an answer. */
    dcm_net_limits limits = c->table->limits;
    if (limits.artim_timeout_ms > REFUSAL_WAIT_MS)
        limits.artim_timeout_ms = REFUSAL_WAIT_MS;
    if (t)
        dcm_assoc_refuse(t, &rj, &limits);
    gw_log(GW_LOG_WARN, "assoc.refused", "peer=%s reason=\"more than %d "
           "associations\"", c->peer, c->table->max_associations);
    finish(c->srv, &c->srv->refusing);
    gw_sites_unref(c->table);
    free(c);
    return NULL;
}

/* Starts a detached thread for the connection, or closes it if that is
 * impossible. */
static void start_thread(connection *c, void *(*run)(void *), int *counter)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_t thread;
    if (pthread_create(&thread, &attr, run, c) != 0) {
        gw_log(GW_LOG_ERROR, "thread.failed", "peer=%s", c->peer);
        close(c->fd);
        finish(c->srv, counter);
        gw_sites_unref(c->table);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void dispatch(server *srv, int fd, const char *peer, bool tls)
{
    connection *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    *c = (connection){.srv = srv, .fd = fd, .tls = tls};
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    pthread_mutex_lock(&srv->lock);
    c->table = gw_sites_ref(srv->sites);
    int *counter = srv->active < c->table->max_associations ? &srv->active
                   : !tls && srv->refusing < REFUSERS        ? &srv->refusing
                                                             : NULL;
    if (counter)
        (*counter)++;
    pthread_mutex_unlock(&srv->lock);
    if (counter == &srv->active) {
        start_thread(c, run_association, counter);
    } else if (counter) {
        start_thread(c, run_refusal, counter);
    } else {
        gw_log(GW_LOG_WARN, "assoc.dropped", "peer=%s reason=\"overloaded\"",
               peer);
        close(fd);
        gw_sites_unref(c->table);
        free(c);
    }
}

/* Files left half-received by an earlier run: never acknowledged, so
 * removing them loses nothing a sender was told is stored. */
static void remove_stale_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strncmp(entry->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0 &&
            unlinkat(dirfd(d), entry->d_name, 0) == 0)
            gw_log(GW_LOG_INFO, "store.stale_removed", "file=%s/%s", dir,
                   entry->d_name);
    }
    closedir(d);
}

static void wait_for_associations(server *srv, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&srv->lock);
    while (srv->active + srv->refusing > 0 &&
           pthread_cond_timedwait(&srv->changed, &srv->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&srv->lock);
}

/* ---- the command ------------------------------------------------------------------ */

static const char serve_help[] =
    "usage: siren serve -c|--config FILE [--check]\n"
    "       siren serve --dir DIR [OPTIONS]\n\n"
    "With -c, the gateway service: the listeners, sites, spool, policies,\n"
    "archive and audit trail of the configuration FILE (examples/siren.conf\n"
    "is the annotated example; docs/OPERATIONS.md); no other options.\n"
    "--check loads it, compiles every policy and reads the certificates,\n"
    "prints \"configuration OK\" and exits. SIGHUP reloads it.\n\n"
    "With --dir, a C-STORE SCP that writes each received instance into DIR\n"
    "(a Part 10 file named by time and sequence, never by peer data; its\n"
    "meta holds who sent it), syncs it to disk, and only then answers\n"
    "Success. C-ECHO is answered too. Sites come over DICOM-TLS; plain\n"
    "DICOM only on --port.\n\n"
    "  --dir DIR              where instances go (must exist)\n"
    "  --aet AE               the called AE title we answer to (default SIREN)\n"
    "  --bind ADDRESS         listen on this address only (default all)\n"
    "  --max-associations N   at once (default 32, at most 4096); more are\n"
    "                         refused\n"
    "  --max-pdu N            largest P-DATA PDU we receive (default 131072,\n"
    "                         4096 to 16777216)\n"
    "  --timeout S            each PDU must arrive within S seconds (default\n"
    "                         60, at most 3600)\n"
    "  --idle-timeout S       an idle association is aborted after S seconds\n"
    "                         (default 300, at most 86400)\n"
    "  --artim-timeout S      a new connection must send its association\n"
    "                         request within S seconds (default 30, at most\n"
    "                         600)\n"
    "  --accept-syntax UID    accept this transfer syntax (repeatable, in\n"
    "                         order of preference; default: explicit and\n"
    "                         implicit VR little endian, deflated, the\n"
    "                         compressed syntaxes, big endian)\n\n"
    "DICOM-TLS listener (on when --tls-cert is given):\n"
    "  --tls-port PORT        (default 2762; 0 picks a free one)\n"
    "  --tls-cert FILE        our certificate (chain), PEM\n"
    "  --tls-key FILE         our private key, PEM (mode 600 or stricter)\n"
    "  --sites-ca FILE        CA bundle site certificates must chain to\n"
    "  --crl FILE             CRL to check site certificates against\n"
    "                         (repeatable; read again on SIGHUP)\n"
    "  --tls-profile NAME     bcp195 (PS3.15 B.12, default), modified-bcp195\n"
    "                         (B.13), tls13 (TLS 1.3 only)\n"
    "  --pin SPKI             accept only keys with this SHA-256 (hex, of the\n"
    "                         SubjectPublicKeyInfo; repeatable)\n"
    "  --site 'NAME|MATCH|AE[,AE...]'\n"
    "                         a site: the certificate property that names it\n"
    "                         (dn:, cn:, san-dns:, san-uri:, san-email:,\n"
    "                         spki:) and the calling AE titles it may use\n"
    "                         (repeatable; at least one with TLS)\n"
    "  --max-handshakes N     TLS handshakes at once (default 16, at most\n"
    "                         4096)\n"
    "  --handshake-timeout S  (default 10, at most 600)\n\n"
    "Plain DICOM listener (only when asked for):\n"
    "  --port PORT            TCP port (0 picks a free one)\n"
    "  --allow-calling AE     accept only these calling AE titles (repeatable)\n\n"
    "SIGINT/SIGTERM stop it; SIGHUP reloads certificate, key and CRLs.\n"
    "Logs one line per event on stderr; the ports are logged as\n"
    "serve.listening tls_port=N port=N.\n";

typedef struct serve_options {
    const char *dir, *port, *tls_port, *bind, *aet;
    const char *allowed[MAX_LIST];
    size_t allowed_count;
    const char *syntaxes[MAX_LIST];
    size_t syntax_count;
    const char *crls[MAX_LIST];
    size_t crl_count;
    const char *pins[TLS_MAX_PINS];
    size_t pin_count;
    const char *sites[MAX_SITES];
    size_t site_count;
    const char *cert, *key, *sites_ca, *profile;
    gw_listen_limits limits;
} serve_options;

/* Appends value to a list option; false when the list is full. */
static bool add_to(const char **list, size_t *count, size_t max,
                   const char *value)
{
    if (*count >= max)
        return false;
    list[(*count)++] = value;
    return true;
}

static int parse_option(serve_options *o, const char *opt, const char *value)
{
    /* --max-associations, --timeout, --max-pdu, ...: the limits block's
     * settings, with the configuration file's bounds */
    char why[128];
    int limit = strncmp(opt, "--", 2) == 0
                    ? gw_listen_limits_set(&o->limits, opt + 2, value, why,
                                           sizeof why)
                    : 0;
    if (limit < 0)
        fprintf(stderr, "siren serve: %s: %s\n", opt, why);
    if (limit != 0)
        return limit > 0 ? 0 : -1;
    bool ok = true;
    if (strcmp(opt, "--dir") == 0) o->dir = value;
    else if (strcmp(opt, "--port") == 0) o->port = value;
    else if (strcmp(opt, "--tls-port") == 0) o->tls_port = value;
    else if (strcmp(opt, "--bind") == 0) o->bind = value;
    else if (strcmp(opt, "--aet") == 0) o->aet = value;
    else if (strcmp(opt, "--tls-cert") == 0) o->cert = value;
    else if (strcmp(opt, "--tls-key") == 0) o->key = value;
    else if (strcmp(opt, "--sites-ca") == 0) o->sites_ca = value;
    else if (strcmp(opt, "--tls-profile") == 0) o->profile = value;
    else if (strcmp(opt, "--allow-calling") == 0)
        ok = add_to(o->allowed, &o->allowed_count, MAX_LIST, value);
    else if (strcmp(opt, "--accept-syntax") == 0)
        ok = add_to(o->syntaxes, &o->syntax_count, MAX_LIST, value);
    else if (strcmp(opt, "--crl") == 0)
        ok = add_to(o->crls, &o->crl_count, MAX_LIST, value);
    else if (strcmp(opt, "--pin") == 0)
        ok = add_to(o->pins, &o->pin_count, TLS_MAX_PINS, value);
    else if (strcmp(opt, "--site") == 0)
        ok = add_to(o->sites, &o->site_count, MAX_SITES, value);
    else {
        fprintf(stderr, "unknown option '%s'\n\n%s", opt, serve_help);
        return -1;
    }
    if (!ok)
        fprintf(stderr, "too many %s options\n", opt);
    return ok ? 0 : -1;
}

static int parse_serve_options(int argc, char **argv, serve_options *o)
{
    *o = (serve_options){.aet = "SIREN", .profile = "bcp195"};
    gw_listen_limits_default(&o->limits);
    /* Every option takes one value: step over option and value together. */
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(serve_help, stdout);
            exit(GW_EXIT_OK);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n", argv[i]);
            return -1;
        }
        if (parse_option(o, argv[i], argv[i + 1]) < 0)
            return -1;
    }
    if (o->cert && !o->tls_port)
        o->tls_port = "2762";
    const char *problem =
        !o->dir ? "--dir is required"
        : !o->port && !o->tls_port ? "no listener: give --tls-cert (DICOM-TLS) "
                                     "and/or --port (plain DICOM)"
        : o->tls_port && (!o->cert || !o->key || !o->sites_ca)
            ? "DICOM-TLS needs --tls-cert, --tls-key and --sites-ca"
        : o->tls_port && o->site_count == 0
            ? "DICOM-TLS needs at least one --site"
        : tls_profile_parse(o->profile) < 0
            ? "--tls-profile is bcp195, modified-bcp195 or tls13"
        : strlen(o->aet) > DCM_AE_TITLE_MAX ? "--aet has at most 16 characters"
                                            : NULL;
    if (problem) {
        fprintf(stderr, "siren serve: %s\n\n%s", problem, serve_help);
        return -1;
    }
    for (size_t i = 0; i < o->syntax_count; i++)
        if (!dcm_ts_find(o->syntaxes[i])) {
            fprintf(stderr, "--accept-syntax: unknown transfer syntax '%s'\n",
                    o->syntaxes[i]);
            return -1;
        }
    return 0;
}

/* 'NAME|MATCH|AE[,AE...]' into a site. */
static int parse_site(const char *text, gw_site *s)
{
    char copy[1024];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
        return -1;
    char *match = strchr(copy, '|');
    char *aets = match ? strchr(match + 1, '|') : NULL;
    if (!aets)
        return -1;
    *match++ = '\0';
    *aets++ = '\0';
    dcm_error err = {0};
    if (!*copy || strlen(copy) >= sizeof s->name ||
        tls_match_parse(match, &s->match, &err) < 0) {
        fprintf(stderr, "--site '%s': %s\n", text,
                err.message[0] ? err.message : "bad site name");
        return -1;
    }
    memcpy(s->name, copy, strlen(copy) + 1); /* length checked above */
    s->aet_count = 0;
    for (char *save = NULL, *ae = strtok_r(aets, ",", &save); ae;
         ae = strtok_r(NULL, ",", &save)) {
        if (strlen(ae) > DCM_AE_TITLE_MAX || s->aet_count == GW_MAX_SITE_AETS)
            return -1;
        memcpy(s->aets[s->aet_count++], ae, strlen(ae) + 1);
    }
    s->metrics_slot = gw_metrics_slot(s->name);
    return s->aet_count ? 0 : -1;
}

/* serve --dir: the table from the options, the certificate files read
 * now (again at each SIGHUP). NULL after saying why on stderr. */
static gw_sites *table_from_options(const serve_options *o)
{
    gw_sites *t = gw_sites_new();
    if (!t)
        return NULL;
    snprintf(t->aet, sizeof t->aet, "%s", o->aet);
    gw_sites_set_limits(t, &o->limits);
    for (size_t i = 0; i < o->allowed_count; i++)
        snprintf(t->plain_calling[i], sizeof t->plain_calling[i], "%s",
                 o->allowed[i]);
    t->plain_calling_count = o->allowed_count;
    for (size_t i = 0; i < o->site_count; i++)
        if (parse_site(o->sites[i], &t->sites[t->count++]) < 0) {
            fprintf(stderr, "siren serve: --site '%s' is not 'NAME|MATCH|"
                            "AE[,AE...]'\n", o->sites[i]);
            gw_sites_unref(t);
            return NULL;
        }
    if (!o->tls_port)
        return t;
    tls_server_config tc = {
        .profile = (tls_profile)tls_profile_parse(o->profile),
        .cert_file = o->cert, .key_file = o->key, .ca_file = o->sites_ca,
        .crl_files = o->crls, .crl_count = o->crl_count,
        .pinned_spki = o->pins, .pinned_count = o->pin_count};
    dcm_error err = {0};
    if (!(t->tls = tls_server_context_new(&tc, &err))) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        gw_sites_unref(t);
        return NULL;
    }
    return t;
}

/* What every association starts from; its table adds the AE title and
 * the limits. */
static void configure(server *srv, const serve_options *o)
{
    srv->dir = o->dir;
    srv->scp.check = check_peer;
    if (o->syntax_count) {
        srv->scp.ts_preference = o->syntaxes;
        srv->scp.ts_preference_count = o->syntax_count;
    }
}

/* Puts t (the caller's reference) in place of the current table. */
static void swap_table(server *srv, gw_sites *t)
{
    pthread_mutex_lock(&srv->lock);
    gw_sites *old = srv->sites;
    srv->sites = t;
    pthread_mutex_unlock(&srv->lock);
    gw_sites_unref(old);
}

static int open_listener(const serve_options *o, const char *port)
{
    dcm_error err = {0};
    int fd = dcm_tcp_listen(o->bind, port, 128, &err);
    if (fd < 0)
        fprintf(stderr, "siren serve: %s\n", err.message);
    return fd;
}

/* The spool is full when it holds its quota, or when the disk it is on
 * has less than SPOOL_MIN_FREE left (a write failing midway would refuse
 * the instance anyway, after the sender sent all of it). */
#define SPOOL_MIN_FREE (64ull << 20)
#define SPOOL_MEASURE_S 2

static void measure_spool(server *srv)
{
    struct statvfs fs;
    uint64_t free_bytes = statvfs(srv->spool.root, &fs) == 0
                              ? (uint64_t)fs.f_bavail * fs.f_frsize
                              : UINT64_MAX;
    pthread_mutex_lock(&srv->lock);
    uint64_t quota = srv->sites->spool_quota;
    pthread_mutex_unlock(&srv->lock);
    bool full = free_bytes < SPOOL_MIN_FREE ||
                (quota && gw_spool_usage(&srv->spool) >= quota);
    if (full != atomic_load(&srv->spool_full))
        gw_log(full ? GW_LOG_WARN : GW_LOG_INFO,
               full ? "spool.full" : "spool.available",
               "free_bytes=%llu quota=%llu", (unsigned long long)free_bytes,
               (unsigned long long)quota);
    atomic_store(&srv->spool_full, full);
}

/* ---- the gateway service: serve -c FILE -------------------------------------------- */

/* The listeners' options from the configuration (the table holds the
 * rest). */
static void options_from_config(const gw_config *c, serve_options *o)
{
    *o = (serve_options){
        .dir = NULL, .aet = c->aet, .bind = c->bind[0] ? c->bind : NULL,
        .port = c->plain_port[0] ? c->plain_port : NULL,
        .tls_port = c->tls_port[0] ? c->tls_port : NULL,
        .cert = c->tls_cert, .key = c->tls_key, .sites_ca = c->sites_ca,
        .profile = c->tls_profile, .limits = c->limits};
}

/* The current policy of the site an instance came from (site_name NULL:
 * the plain listener's), for the processor: a reference it drops. */
static pol_policy *policy_for_site(void *ctx, const char *site_name)
{
    server *srv = ctx;
    pthread_mutex_lock(&srv->lock);
    const gw_sites *t = srv->sites;
    const gw_site *s = site_name ? gw_sites_by_name(t, site_name) : NULL;
    pol_policy *p = !site_name ? t->plain_policy : s ? s->policy : NULL;
    if (p)
        pol_policy_ref(p);
    pthread_mutex_unlock(&srv->lock);
    return p;
}

/* SIGHUP under the service: the configuration file read again and the
 * whole table rebuilt from it. NULL (logged) if anything fails: the
 * running table stays. */
static gw_sites *reload_config(const server *srv)
{
    const gw_config *running = srv->config;
    gw_config *fresh = calloc(1, sizeof *fresh);
    pol_diags diags = {0};
    int rc = fresh ? gw_config_load(running->file, fresh, &diags) : -1;
    gw_print_diags(&diags, true);
    pol_diags_free(&diags);
    dcm_error err = {0};
    gw_sites *t = NULL;
    char names[512];
    if (rc < 0)
        snprintf(err.message, sizeof err.message, "%.200s has errors",
                 running->file);
    else if ((running->tls_port[0] && !fresh->tls_port[0]) ||
             (running->plain_port[0] && !fresh->plain_port[0]))
        snprintf(err.message, sizeof err.message, "a reload cannot close a "
                 "listener; restart for that");
    else if ((t = gw_sites_load(fresh, &err)) &&
             gw_config_restart_changes(running, fresh, names, sizeof names))
        gw_log(GW_LOG_WARN, "config.restart_needed", "settings=\"%s\" "
               "(changed in the file; the running values stay until a "
               "restart)", names);
    if (!t)
        gw_log(GW_LOG_ERROR, "config.reload_failed", "file=%s reason=\"%s\" "
               "(the running configuration stays in force)", running->file,
               err.message);
    free(fresh);
    return t;
}

/* SIGHUP. Anything failing leaves the current table in force. The
 * forwarder reads its archive credentials again either way, and the
 * syslog sink its TLS files. */
static void reload(server *srv, const serve_options *o)
{
    dcm_error err = {0};
    if (srv->forwarder && gw_forward_reload(srv->forwarder, &err) < 0)
        gw_log(GW_LOG_ERROR, "forward.reload_failed", "reason=\"%s\" (the "
               "archive credentials in use stay)", err.message);
    if (gw_syslog_reload(&err) < 0)
        gw_log(GW_LOG_ERROR, "syslog.reload_failed", "reason=\"%s\" (the "
               "TLS files in use stay)", err.message);
    gw_sites *t = srv->config ? reload_config(srv) : table_from_options(o);
    if (!t) {
        if (!srv->config)
            gw_log(GW_LOG_ERROR, "tls.reload_failed", "(the previous "
                   "certificates stay in use)");
        return;
    }
    size_t sites = t->count;
    bool tls = t->tls != NULL;
    swap_table(srv, t);
    if (tls)
        gw_log(GW_LOG_INFO, "tls.reloaded", "cert=%s crls=%zu",
               srv->config ? srv->config->tls_cert : o->cert,
               srv->config ? srv->config->crl_count : o->crl_count);
    if (srv->config)
        gw_log(GW_LOG_INFO, "config.reloaded", "file=%s sites=%zu",
               srv->config->file, sites);
}

/* The processor put an instance into outgoing/. */
static void wake_forwarder(void *ctx)
{
    server *srv = ctx;
    if (srv->forwarder)
        gw_forward_wake(srv->forwarder);
}

static gw_forwarder *start_forwarder(server *srv, dcm_error *err)
{
    const gw_config *c = srv->config;
    bool rest = c->archive_url[0] != '\0';
    gw_forward_config fc = {
        .outgoing_dir = srv->spool.outgoing, .failed_dir = srv->spool.failed,
        .transport = rest ? GW_FORWARD_REST : GW_FORWARD_DIMSE,
        .host = c->archive_host, .port = c->archive_port,
        .called_ae = c->archive_aet, .calling_ae = c->archive_calling_aet,
        .url = rest ? c->archive_url : NULL,
        .credentials_file = c->archive_credentials[0] ? c->archive_credentials
                                                      : NULL,
        .connections = c->archive_connections, .tls = c->archive_tls,
        .tls_ca = c->archive_ca[0] ? c->archive_ca : NULL,
        .tls_cert = c->archive_cert[0] ? c->archive_cert : NULL,
        .tls_key = c->archive_key[0] ? c->archive_key : NULL,
        .tls_server_name = c->archive_server_name[0] ? c->archive_server_name
                                                     : NULL,
        .tls_profile = (tls_profile)tls_profile_parse(c->tls_profile),
        .timeout_ms = c->archive_timeout_s * 1000};
    return gw_forward_start(&fc, err);
}

static size_t stage_count(const char *dir)
{
    char **names;
    size_t count;
    dcm_error err = {0};
    if (gw_spool_list(dir, &names, &count, &err) < 0)
        return 0;
    gw_spool_names_free(names, count);
    return count;
}

/* For a scrape of /metrics or /healthz (the metrics thread). */
static void read_gauges(void *ctx, gw_gauges *g)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last_delivered;
    static time_t last_progress;
    server *srv = ctx;
    gw_forward_stats f = gw_forward_stats_of(srv->forwarder);
    *g = (gw_gauges){.spool_bytes = gw_spool_usage(&srv->spool),
                     .spool_quota = srv->config->spool_quota,
                     .received_queue = stage_count(srv->spool.received),
                     .outgoing_queue = stage_count(srv->spool.outgoing),
                     .quarantined = stage_count(srv->spool.quarantine),
                     .failed = stage_count(srv->spool.failed),
                     .archive_associations = f.associations,
                     .forwarded = f.delivered, .forward_failed = f.failed,
                     .forward_retries = f.retries,
                     .forwarded_bytes = f.bytes,
                     .spool_full = atomic_load(&srv->spool_full)};
    pthread_mutex_lock(&srv->lock);
    g->associations = (unsigned)srv->active;
    pthread_mutex_unlock(&srv->lock);
    /* The archive is "down" while files wait and none goes out. */
    pthread_mutex_lock(&lock);
    time_t now = time(NULL);
    if (f.delivered != last_delivered || g->outgoing_queue == 0 ||
        !last_progress) {
        last_delivered = f.delivered;
        last_progress = now;
    }
    g->archive_down_s = g->outgoing_queue ? now - last_progress : 0;
    pthread_mutex_unlock(&lock);
}

static int start_metrics(server *srv, dcm_error *err)
{
    const gw_config *c = srv->config;
    if (!c->metrics_port[0])
        return DCM_OK;
    return gw_metrics_start(c->metrics_bind, c->metrics_port, read_gauges,
                            srv, err);
}

static int processor_threads(const gw_config *c)
{
    if (c->processors > 0)
        return c->processors;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

/* -c FILE [--check]: the configuration into options, the spool opened.
 * Returns 0 to serve, GW_EXIT_* to exit with. */
static int load_service(int argc, char **argv, server *srv, serve_options *o,
                        bool *check_only)
{
    if (argc < 3 || argc > 4 ||
        (argc == 4 && strcmp(argv[3], "--check") != 0)) {
        fputs("usage: siren serve -c FILE [--check]\n", stderr);
        return GW_EXIT_USAGE;
    }
    *check_only = argc == 4;
    gw_config *c = calloc(1, sizeof *c);
    pol_diags diags = {0};
    int rc = c ? gw_config_load(argv[2], c, &diags) : -1;
    gw_print_diags(&diags, true);
    pol_diags_free(&diags);
    if (rc < 0) {
        free(c);
        return GW_EXIT_FAILURE;
    }
    srv->config = c; /* lives as long as the process */
    options_from_config(c, o);
    return 0;
}

/* --check: the file, its policies and certificates. */
static int check_service(const gw_config *c)
{
    dcm_error err = {0};
    gw_sites *t = gw_sites_load(c, &err);
    if (!t) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    gw_sites_unref(t);
    printf("%s: configuration OK: %zu site%s, %s%s%s\n", c->file,
           c->site_count, c->site_count == 1 ? "" : "s",
           c->tls_port[0] ? "DICOM-TLS" : "",
           c->tls_port[0] && c->plain_port[0] ? " and " : "",
           c->plain_port[0] ? "plain DICOM" : "");
    return GW_EXIT_OK;
}

/* Run as root (to bind port 104, say), the service goes on as the
 * configured user: its groups, then its group, then its user, and it
 * checks that root cannot be taken back. */
static int drop_privileges(const gw_config *c)
{
    if (geteuid() != 0 || !c->user[0])
        return 0;
    struct passwd *pw = getpwnam(c->user);
    if (!pw) {
        fprintf(stderr, "siren serve: user %s does not exist\n", c->user);
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
        setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
        setuid(0) == 0) {
        fprintf(stderr, "siren serve: cannot become user %s: %s\n", c->user,
                strerror(errno));
        return -1;
    }
    gw_log(GW_LOG_INFO, "serve.user", "user=%s uid=%u gid=%u", c->user,
           (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    return 0;
}

/* The token is read from its file (a Docker secret) unless given. */
static int start_hec(const gw_config *c, dcm_error *err)
{
    char token[256];
    snprintf(token, sizeof token, "%s", c->hec_token);
    if (!token[0]) {
        FILE *f = fopen(c->hec_token_file, "re");
        if (!f || !fgets(token, sizeof token, f)) {
            if (f)
                fclose(f);
            return dcm_fail(err, DCM_E_IO, -1, "cannot read the HEC token "
                            "from %s", c->hec_token_file);
        }
        fclose(f);
        token[strcspn(token, "\r\n")] = '\0';
    }
    gw_hec_config hc = {.audit_file = c->audit_file, .url = c->hec_url,
                        .token = token,
                        .ca_file = c->hec_ca[0] ? c->hec_ca : NULL,
                        .source = c->aet};
    return gw_hec_start(&hc, err);
}

static int start_service(server *srv, serve_options *o)
{
    const gw_config *c = srv->config;
    dcm_error err = {0};
    if (!(srv->sites = gw_sites_load(c, &err))) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    if (gw_spool_open(&srv->spool, c->spool, &err) < 0) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    o->dir = srv->dir = srv->spool.received;
    gw_syslog_config sc = {.audit_file = c->audit_file, .target = c->syslog,
                           .ca_file = c->syslog_ca[0] ? c->syslog_ca : NULL,
                           .cert_file = c->syslog_cert[0] ? c->syslog_cert
                                                          : NULL,
                           .key_file = c->syslog_key[0] ? c->syslog_key
                                                        : NULL,
                           .aet = c->aet};
    if ((c->audit_file[0] && gw_audit_start(c->audit_file, &err) < 0) ||
        (c->hec_url[0] && start_hec(c, &err) < 0) ||
        (c->syslog[0] && gw_syslog_start(&sc, &err) < 0)) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    gw_audit("application.started", NULL);
    /* The forwarder first: the processor wakes it. */
    if (!(srv->forwarder = start_forwarder(srv, &err))) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    gw_process_config pc = {.spool = &srv->spool,
                            .threads = processor_threads(c),
                            .policy_for = policy_for_site, .ctx = srv,
                            .processed = wake_forwarder};
    if (!(srv->processor = gw_process_start(&pc, &err))) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    if (start_metrics(srv, &err) < 0) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    gw_log(GW_LOG_INFO, "service.started", "spool=%s processors=%d",
           c->spool, pc.threads);
    return 0;
}

int gw_cmd_serve(int argc, char **argv)
{
    /* Static: association threads may outlive this function by the moment
     * between its return and the process exit. */
    static server srv;
    serve_options o;
    bool service = argc >= 2 && (strcmp(argv[1], "-c") == 0 ||
                                 strcmp(argv[1], "--config") == 0);
    bool check_only = false;
    if (service) {
        int rc = load_service(argc, argv, &srv, &o, &check_only);
        if (rc != 0)
            return rc;
    } else if (parse_serve_options(argc, argv, &o) < 0) {
        return GW_EXIT_USAGE;
    }
    struct stat st;
    if (!service && (stat(o.dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "siren serve: %s is not a directory\n", o.dir);
        return GW_EXIT_FAILURE;
    }
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.changed, NULL);
    configure(&srv, &o);
    if (check_only)
        return check_service(srv.config);
    if (!service && !(srv.sites = table_from_options(&o)))
        return GW_EXIT_FAILURE;

    int tls_fd = o.tls_port ? open_listener(&o, o.tls_port) : -1;
    int plain_fd = o.port ? open_listener(&o, o.port) : -1;
    if ((o.tls_port && tls_fd < 0) || (o.port && plain_fd < 0))
        return GW_EXIT_FAILURE;
    /* The ports are bound: root is no longer needed. The spool, keys and
     * policies are then opened as the user that will own them. */
    if (service && (drop_privileges(srv.config) < 0 ||
                    start_service(&srv, &o) != 0))
        return GW_EXIT_FAILURE;
    remove_stale_temp_files(o.dir);
    gw_install_signals(on_stop_signal, on_reload_signal);
    char ports[64] = "";
    size_t used = 0;
    if (tls_fd >= 0)
        used += (size_t)snprintf(ports, sizeof ports, "tls_port=%d ",
                                 dcm_tcp_local_port(tls_fd));
    if (plain_fd >= 0)
        snprintf(ports + used, sizeof ports - used, "port=%d ",
                 dcm_tcp_local_port(plain_fd));
    gw_log(GW_LOG_INFO, "serve.listening", "%saet=%s dir=%s "
           "max_associations=%d%s%s", ports, o.aet, o.dir,
           o.limits.max_associations, tls_fd >= 0 ? " tls_profile=" : "",
           tls_fd >= 0 ? o.profile : "");
    time_t last_measure = 0;
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            reload(&srv, &o);
        }
        time_t now = time(NULL);
        if (srv.config && now - last_measure >= SPOOL_MEASURE_S) {
            measure_spool(&srv);
            last_measure = now;
        }
        struct pollfd p[2] = {{.fd = tls_fd, .events = POLLIN},
                              {.fd = plain_fd, .events = POLLIN}};
        if (poll(p, 2, 500) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            char peer[64];
            dcm_error err = {0};
            int fd = dcm_tcp_accept(p[i].fd, peer, &err);
            if (fd >= 0)
                dispatch(&srv, fd, peer, i == 0);
        }
    }
    if (tls_fd >= 0)
        close(tls_fd);
    if (plain_fd >= 0)
        close(plain_fd);
    gw_log(GW_LOG_INFO, "serve.stopping", "active=%d", srv.active);
    wait_for_associations(&srv, 10);
    /* What is in hand is finished; what waits in the spool stays there
     * for the next start. */
    gw_metrics_stop();
    pthread_mutex_lock(&srv.lock);
    gw_processor *processor = srv.processor;
    srv.processor = NULL;
    pthread_mutex_unlock(&srv.lock);
    gw_process_stop(processor);
    gw_forward_stop(srv.forwarder, NULL);
    srv.forwarder = NULL;
    gw_audit("application.stopped", NULL);
    gw_audit_stop();
    gw_hec_stop();
    gw_syslog_stop();
    return GW_EXIT_OK;
}
