/* cmd_serve.c - `siren serve --dir DIR`: a C-STORE SCP that writes every
 * received instance into a directory, durably, before answering Success.
 * The gateway service (spool, policies, forwarding) builds on this.
 *
 * Threads: the main thread accepts; each association runs in its own
 * thread, at most --max-associations at once. A connection beyond that is
 * answered with A-ASSOCIATE-RJ "local limit exceeded" (transient) by a
 * short-lived thread, at most REFUSERS of those; beyond that the
 * connection waits in the kernel's backlog. A thread per association
 * keeps each DICOM conversation a plain sequence of blocking calls, each
 * bounded by a timeout, so one slow or hostile peer holds one thread and
 * nothing else. */
#include "gateway.h"

#include "dicom.h"

#include <dirent.h>
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
#include <time.h>
#include <unistd.h>

#define REFUSERS 8              /* threads answering "too many" at once */
#define REFUSAL_WAIT_MS 3000    /* how long a refuser waits for the request */
#define TEMP_PREFIX ".incoming-" /* a file being received */

typedef struct server {
    const char *dir;
    dcm_scp_config scp;
    const char **allowed_calling; /* NULL: any calling AE title */
    size_t allowed_count;
    int max_associations;
    int active, refusing;         /* guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    atomic_uint next_file;
} server;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

/* ---- writing instances -------------------------------------------------------- */

typedef struct association_stats {
    server *srv;
    unsigned stored, refused;
    unsigned long long bytes;
    char peer[64];
    char calling_ae[DCM_AE_TITLE_MAX + 1];
} association_stats;

typedef struct incoming {
    association_stats *stats;
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

static int store_begin(void *ctx, const dcm_assoc *a, const dcm_command *rq,
                       void **instance, uint16_t *status)
{
    association_stats *stats = ctx;
    incoming *in = calloc(1, sizeof *in);
    if (!in) {
        *status = DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    in->stats = stats;
    in->rq = *rq;
    snprintf(in->temp_path, sizeof in->temp_path, "%s/" TEMP_PREFIX "XXXXXX",
             stats->srv->dir);
    in->fd = mkostemp(in->temp_path, O_CLOEXEC); /* mode 0600 */
    const dcm_pcontext *pc = dcm_assoc_context(a, rq->context_id);
    dcm_error err = {0};
    if (in->fd < 0 ||
        dcm_write_meta(rq->sop_class, rq->sop_instance, pc->accepted->uid,
                       stats->calling_ae, write_fd, in, &err) < 0) {
        gw_log(GW_LOG_ERROR, "store.failed", "peer=%s reason=\"%s\"",
               stats->peer, in->fd < 0 ? strerror(errno) : err.message);
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
    }
    free(cls_uid);
    free(inst_uid);
    dcm_file_free(f);
    return status;
}

/* fsync of the directory makes the new name durable. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
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
    association_stats *stats = in->stats;
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
        final_name(stats->srv, path, sizeof path);
        if (rename(in->temp_path, path) < 0 || sync_dir(stats->srv->dir) < 0) {
            status = DCM_STATUS_OUT_OF_RESOURCES;
            snprintf(comment, 65, "cannot write the data set to disk");
        }
    }
    if (status == DCM_STATUS_SUCCESS) {
        stats->stored++;
        stats->bytes += in->bytes;
        gw_log(GW_LOG_INFO, "store.ok", "peer=%s sop_instance=%s bytes=%llu "
               "file=%s", stats->peer, in->rq.sop_instance, in->bytes, path);
    } else {
        unlink(in->temp_path);
        stats->refused++;
        gw_log(GW_LOG_WARN, "store.refused", "peer=%s sop_instance=%s "
               "status=0x%04X reason=\"%s\"", stats->peer, in->rq.sop_instance,
               status, comment);
    }
    free(in);
    return status;
}

/* ---- associations ------------------------------------------------------------- */

static int check_calling_ae(void *ctx, const dcm_assoc_info *rq,
                            const dcm_transport *t, dcm_reject *rj)
{
    const server *srv = ctx;
    (void)t;
    if (!srv->allowed_calling)
        return 0;
    for (size_t i = 0; i < srv->allowed_count; i++)
        if (strcmp(rq->calling_ae, srv->allowed_calling[i]) == 0)
            return 0;
    *rj = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_USER,
                       DCM_RJ_CALLING_AE_NOT_RECOGNIZED};
    return -1;
}

typedef struct connection {
    server *srv;
    int fd;
    char peer[64];
} connection;

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

static void *run_association(void *arg)
{
    connection *c = arg;
    server *srv = c->srv;
    association_stats stats = {.srv = srv};
    snprintf(stats.peer, sizeof stats.peer, "%s", c->peer);
    dcm_error err = {0};
    dcm_transport *t = dcm_tcp_transport(c->fd, c->peer, &err);
    dcm_assoc *a = t ? dcm_assoc_accept(t, &srv->scp, &err) : NULL;
    if (!a) {
        gw_log(GW_LOG_WARN, "assoc.failed", "peer=%s reason=\"%s\"", c->peer,
               err.message);
    } else {
        const dcm_assoc_info *info = dcm_assoc_info_of(a);
        snprintf(stats.calling_ae, sizeof stats.calling_ae, "%s",
                 info->calling_ae);
        gw_log(GW_LOG_INFO, "assoc.accepted", "peer=%s calling=%s called=%s "
               "contexts=%zu/%zu peer_max_pdu=%u implementation=\"%s\"%s%s",
               c->peer, info->calling_ae, info->called_ae,
               accepted_contexts(info), info->context_count,
               info->peer_max_pdu, info->peer_implementation_version,
               info->user.type ? " user=" : "",
               info->user.type ? info->user.username : "");
        dcm_store_handler handler = {.begin = store_begin, .data = write_fd,
                                     .end = store_end, .ctx = &stats};
        int rc = dcm_scp_serve(a, &handler, &err);
        gw_log(rc == DCM_OK ? GW_LOG_INFO : GW_LOG_WARN,
               rc == DCM_OK ? "assoc.released" : "assoc.ended",
               "peer=%s stored=%u refused=%u bytes=%llu%s%s%s", c->peer,
               stats.stored, stats.refused, stats.bytes,
               rc == DCM_OK ? "" : " reason=\"", rc == DCM_OK ? "" : err.message,
               rc == DCM_OK ? "" : "\"");
        dcm_assoc_free(a);
    }
    finish(srv, &srv->active);
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
    dcm_net_limits limits = c->srv->scp.limits;
    if (limits.artim_timeout_ms > REFUSAL_WAIT_MS)
        limits.artim_timeout_ms = REFUSAL_WAIT_MS;
    if (t)
        dcm_assoc_refuse(t, &rj, &limits);
    gw_log(GW_LOG_WARN, "assoc.refused", "peer=%s reason=\"more than %d "
           "associations\"", c->peer, c->srv->max_associations);
    finish(c->srv, &c->srv->refusing);
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
        free(c);
    }
    pthread_attr_destroy(&attr);
}

static void dispatch(server *srv, int fd, const char *peer)
{
    connection *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    *c = (connection){.srv = srv, .fd = fd};
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    pthread_mutex_lock(&srv->lock);
    int *counter = srv->active < srv->max_associations ? &srv->active
                   : srv->refusing < REFUSERS          ? &srv->refusing
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

/* ---- the command ---------------------------------------------------------------- */

static const char serve_help[] =
    "usage: siren serve --dir DIR [OPTIONS]\n\n"
    "A C-STORE SCP over plain TCP that writes each received instance into\n"
    "DIR (a Part 10 file named by time and sequence, never by peer data),\n"
    "fsyncs it, and only then answers Success. C-ECHO is answered too.\n\n"
    "  --dir DIR              where instances go (must exist)\n"
    "  --port PORT            TCP port (default 11112; 0 picks a free one)\n"
    "  --bind ADDRESS         listen on this address only (default all)\n"
    "  --aet AE               the called AE title we answer to (default SIREN)\n"
    "  --allow-calling AE     accept only these calling AE titles (repeatable)\n"
    "  --max-associations N   at once (default 32); more are refused\n"
    "  --max-pdu N            largest P-DATA PDU we receive (default 131072)\n"
    "  --timeout S            each PDU must arrive within S seconds (default 60)\n"
    "  --idle-timeout S       an idle association is aborted after S seconds\n"
    "                         (default 300)\n"
    "  --artim-timeout S      a new connection must send its association\n"
    "                         request within S seconds (default 30)\n"
    "  --accept-syntax UID    accept this transfer syntax (repeatable, in\n"
    "                         order of preference; default: explicit and\n"
    "                         implicit VR little endian, deflated, the\n"
    "                         compressed syntaxes, big endian)\n\n"
    "Stops on SIGINT or SIGTERM. Logs one line per event on stderr; the port\n"
    "is logged as serve.listening port=N.\n";

typedef struct serve_options {
    const char *dir, *port, *bind, *aet;
    const char *allowed[64];
    size_t allowed_count;
    const char *syntaxes[64];
    size_t syntax_count;
    int max_associations, timeout_s, idle_timeout_s, artim_timeout_s;
    uint32_t max_pdu;
} serve_options;

static int parse_serve_options(int argc, char **argv, serve_options *o)
{
    *o = (serve_options){.port = "11112", .aet = "SIREN",
                         .max_associations = 32, .timeout_s = 60,
                         .idle_timeout_s = 300, .artim_timeout_s = 30,
                         .max_pdu = DCM_DEFAULT_MAX_PDU_BYTES};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(serve_help, stdout);
            exit(GW_EXIT_OK);
        }
        const char *value = i + 1 < argc ? argv[++i] : NULL;
        if (!value) {
            fprintf(stderr, "%s needs a value\n", opt);
            return -1;
        }
        if (strcmp(opt, "--dir") == 0)
            o->dir = value;
        else if (strcmp(opt, "--port") == 0)
            o->port = value;
        else if (strcmp(opt, "--bind") == 0)
            o->bind = value;
        else if (strcmp(opt, "--aet") == 0)
            o->aet = value;
        else if (strcmp(opt, "--allow-calling") == 0 && o->allowed_count < 64)
            o->allowed[o->allowed_count++] = value;
        else if (strcmp(opt, "--accept-syntax") == 0 && o->syntax_count < 64) {
            if (!dcm_ts_find(value)) {
                fprintf(stderr, "--accept-syntax: unknown transfer syntax "
                                "'%s'\n", value);
                return -1;
            }
            o->syntaxes[o->syntax_count++] = value;
        }
        else if (strcmp(opt, "--max-associations") == 0)
            o->max_associations = atoi(value);
        else if (strcmp(opt, "--max-pdu") == 0)
            o->max_pdu = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(opt, "--timeout") == 0)
            o->timeout_s = atoi(value);
        else if (strcmp(opt, "--idle-timeout") == 0)
            o->idle_timeout_s = atoi(value);
        else if (strcmp(opt, "--artim-timeout") == 0)
            o->artim_timeout_s = atoi(value);
        else {
            fprintf(stderr, "unknown option '%s'\n\n%s", opt, serve_help);
            return -1;
        }
    }
    if (!o->dir || o->max_associations < 1 || o->timeout_s < 1 ||
        o->idle_timeout_s < 1 || o->artim_timeout_s < 1 || o->max_pdu < 4096 || o->max_pdu > (16u << 20) ||
        strlen(o->aet) > DCM_AE_TITLE_MAX) {
        fprintf(stderr, "--dir is required; counts and timeouts are "
                        "positive; --max-pdu is 4096..16777216; AE titles "
                        "have at most 16 characters\n\n%s", serve_help);
        return -1;
    }
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int gw_cmd_serve(int argc, char **argv)
{
    serve_options o;
    if (parse_serve_options(argc, argv, &o) < 0)
        return GW_EXIT_USAGE;
    struct stat st;
    if (stat(o.dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "siren serve: %s is not a directory\n", o.dir);
        return GW_EXIT_FAILURE;
    }
    /* Static: association threads may outlive this function by the moment
     * between its return and the process exit. */
    static server srv;
    srv = (server){.dir = o.dir, .max_associations = o.max_associations};
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.changed, NULL);
    srv.scp.ae_title = o.aet;
    srv.scp.check = check_calling_ae;
    srv.scp.check_ctx = &srv;
    dcm_net_limits_default(&srv.scp.limits);
    srv.scp.limits.max_pdu_bytes = o.max_pdu;
    srv.scp.limits.dimse_timeout_ms = o.timeout_s * 1000;
    srv.scp.limits.idle_timeout_ms = o.idle_timeout_s * 1000;
    srv.scp.limits.artim_timeout_ms = o.artim_timeout_s * 1000;
    if (o.allowed_count) {
        srv.allowed_calling = o.allowed;
        srv.allowed_count = o.allowed_count;
    }
    if (o.syntax_count) {
        srv.scp.ts_preference = o.syntaxes;
        srv.scp.ts_preference_count = o.syntax_count;
    }
    remove_stale_temp_files(o.dir);

    dcm_error err = {0};
    int listen_fd = dcm_tcp_listen(o.bind, o.port, 128, &err);
    if (listen_fd < 0) {
        fprintf(stderr, "siren serve: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    install_signals();
    gw_log(GW_LOG_INFO, "serve.listening", "port=%d aet=%s dir=%s "
           "max_associations=%d", dcm_tcp_local_port(listen_fd), o.aet, o.dir,
           o.max_associations);
    while (!stop_requested) {
        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0)
            continue;
        char peer[64];
        int fd = dcm_tcp_accept(listen_fd, peer, &err);
        if (fd >= 0)
            dispatch(&srv, fd, peer);
    }
    close(listen_fd);
    gw_log(GW_LOG_INFO, "serve.stopping", "active=%d", srv.active);
    wait_for_associations(&srv, 10);
    return GW_EXIT_OK;
}
