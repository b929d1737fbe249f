/* forward.c - the forwarder (forward.h says what it does with a file):
 * the folder, the workers, the backoff and the outcome of each file,
 * whatever the transport (forward_transport.h: DIMSE or REST).
 *
 * Threads: `connections` workers, each with one link to the archive (at
 * most one association or HTTP connection) and at most one file in hand
 * (its claim). What they share is guarded by one
 * mutex: the names of the last look at the folder not yet taken (sorted,
 * taken from the front), every worker's claim, the files refused for now
 * (sorted by name) and the counters. A look at the folder happens under
 * the mutex as well, and a worker removes or moves its file before it
 * gives its claim up, so a look sees every file either claimed or gone:
 * no two workers ever hold the same file. The network work happens
 * outside the mutex. */
#include "forward.h"

#include "audit.h"
#include "forward_transport.h"
#include "gateway.h"
#include "metrics.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The shortest pause, whatever the jitter drew: no busy loop. */
#define MIN_DELAY_MS 50

/* A file the archive refused for now (or lost the connection over). */
typedef struct waiting {
    char *name;
    unsigned refusals;
    uint64_t delivered_mark; /* stats.delivered at its first refusal */
    int64_t not_before_ms;
} waiting;

typedef struct worker {
    gw_forwarder *f;
    unsigned id;
    pthread_t thread;
    char *claim; /* the file in hand, guarded by f->lock */
    /* The rest belongs to the worker's thread. */
    gw_fwd_link *link;
    bool open;   /* link holds a connection, as counted in the stats */
    int64_t last_used_ms;
    unsigned failures; /* connection failures in a row: the backoff */
    bool warned;       /* the file just delivered had a warning status */
    uint64_t random;
} worker;

struct gw_forwarder {
    gw_forward_config c;
    const gw_fwd_transport *t;
    void *shared;      /* what t's links share */
    char archive[600]; /* "host:port called=AE" or the URL, for logs and
                          reasons */
    char audit_archive[600]; /* "AE@host:port" or the URL */
    int dir_fd;        /* outgoing, flock'ed while we work on it */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC */
    bool stopping, need_look;
    int64_t last_look_ms;
    int64_t next_due_ms; /* the first refused file's next try; 0: none */
    char **pending;
    size_t pending_count, pending_next;
    waiting *waiting;
    size_t waiting_count, waiting_capacity;
    gw_forward_stats stats;
    unsigned worker_count;
    worker *workers;
};

typedef enum outcome {
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,    /* moved to the failed folder */
    OUTCOME_GONE,      /* no longer in the folder (removed by hand) */
    OUTCOME_LATER,     /* refused for now: waits for its next try */
    OUTCOME_KEPT,      /* stopping: stays as it is */
} outcome;

/* ---- time and chance ----------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits on f->changed (f->lock held) until deadline_ms at the latest. */
static void wait_until(gw_forwarder *f, int64_t deadline_ms)
{
    struct timespec until = {.tv_sec = deadline_ms / 1000,
                             .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(&f->changed, &f->lock, &until);
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t next_random(worker *w)
{
    w->random ^= w->random >> 12;
    w->random ^= w->random << 25;
    w->random ^= w->random >> 27;
    return w->random * 0x2545F4914F6CDD1DULL;
}

/* Full jitter for the n-th failure in a row (n >= 1). */
static int64_t backoff_ms(worker *w, unsigned n)
{
    int64_t ceiling = w->f->c.backoff_min_ms;
    for (unsigned i = 1; i < n && ceiling < w->f->c.backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > w->f->c.backoff_max_ms)
        ceiling = w->f->c.backoff_max_ms;
    int64_t delay = (int64_t)(next_random(w) % (uint64_t)(ceiling + 1));
    return delay < MIN_DELAY_MS ? MIN_DELAY_MS : delay;
}

static bool is_stopping(gw_forwarder *f)
{
    pthread_mutex_lock(&f->lock);
    bool stopping = f->stopping;
    pthread_mutex_unlock(&f->lock);
    return stopping;
}

/* ---- files refused for now (f->lock held) ---------------------------------------- */

/* The entry for name, or where it would go. */
static size_t waiting_index(const gw_forwarder *f, const char *name,
                            bool *found)
{
    size_t low = 0, high = f->waiting_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int order = strcmp(f->waiting[mid].name, name);
        if (order == 0) {
            *found = true;
            return mid;
        }
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    *found = false;
    return low;
}

/* The entry for name, made if missing; NULL out of memory. */
static waiting *waiting_entry(gw_forwarder *f, const char *name)
{
    bool found;
    size_t at = waiting_index(f, name, &found);
    if (found)
        return &f->waiting[at];
    if (f->waiting_count == f->waiting_capacity) {
        size_t capacity = f->waiting_capacity ? f->waiting_capacity * 2 : 16;
        waiting *more = realloc(f->waiting, capacity * sizeof *more);
        if (!more)
            return NULL;
        f->waiting = more;
        f->waiting_capacity = capacity;
    }
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    memmove(&f->waiting[at + 1], &f->waiting[at],
            (f->waiting_count - at) * sizeof *f->waiting);
    f->waiting_count++;
    f->waiting[at] = (waiting){.name = copy,
                               .delivered_mark = f->stats.delivered};
    return &f->waiting[at];
}

static void waiting_remove(gw_forwarder *f, const char *name)
{
    bool found;
    size_t at = waiting_index(f, name, &found);
    if (!found)
        return;
    free(f->waiting[at].name);
    memmove(&f->waiting[at], &f->waiting[at + 1],
            (f->waiting_count - at - 1) * sizeof *f->waiting);
    f->waiting_count--;
}

/* ---- looking at the folder (f->lock held) ---------------------------------------- */

static bool claimed(const gw_forwarder *f, const char *name)
{
    for (unsigned i = 0; i < f->worker_count; i++)
        if (f->workers[i].claim && strcmp(f->workers[i].claim, name) == 0)
            return true;
    return false;
}

static bool any_claim(const gw_forwarder *f)
{
    for (unsigned i = 0; i < f->worker_count; i++)
        if (f->workers[i].claim)
            return true;
    return false;
}

static void drop_pending(gw_forwarder *f)
{
    for (size_t i = f->pending_next; i < f->pending_count; i++)
        free(f->pending[i]);
    free(f->pending);
    f->pending = NULL;
    f->pending_count = f->pending_next = 0;
}

/* Keeps the entry of names[i] (walking both sorted lists at once; the
 * entries of files no longer in the folder are dropped on the way).
 * Returns it, or NULL if names[i] has none. */
static waiting *keep_waiting(gw_forwarder *f, const char *name, size_t *next,
                             size_t *kept)
{
    while (*next < f->waiting_count &&
           strcmp(f->waiting[*next].name, name) < 0)
        free(f->waiting[(*next)++].name);
    if (*next == f->waiting_count || strcmp(f->waiting[*next].name, name))
        return NULL;
    f->waiting[*kept] = f->waiting[(*next)++];
    return &f->waiting[(*kept)++];
}

/* The folder anew: pending becomes its files in name order, less those
 * in hand and those refused for now whose time has not come. */
static void look(gw_forwarder *f, int64_t now)
{
    f->need_look = false;
    f->last_look_ms = now;
    char **names;
    size_t count;
    dcm_error err = {0};
    if (gw_spool_list(f->c.outgoing_dir, &names, &count, &err) < 0) {
        gw_log(GW_LOG_ERROR, "forward.look_failed", "dir=%s reason=\"%s\"",
               f->c.outgoing_dir, err.message);
        return;
    }
    drop_pending(f);
    size_t next_waiting = 0, kept = 0, taken = 0;
    f->next_due_ms = 0;
    for (size_t i = 0; i < count; i++) {
        waiting *entry = keep_waiting(f, names[i], &next_waiting, &kept);
        bool later = entry && entry->not_before_ms > now;
        if (later && (!f->next_due_ms || entry->not_before_ms < f->next_due_ms))
            f->next_due_ms = entry->not_before_ms;
        if (later || claimed(f, names[i]))
            free(names[i]);
        else
            names[taken++] = names[i];
    }
    while (next_waiting < f->waiting_count)
        free(f->waiting[next_waiting++].name);
    f->waiting_count = kept;
    f->pending = names;
    f->pending_count = taken;
    f->stats.queued = count;
    f->stats.idle = taken == 0 && kept == 0 && !any_claim(f);
}

/* ---- what a worker does next ----------------------------------------------------- */

typedef enum next_step { NEXT_FILE, NEXT_RELEASE, NEXT_STOP } next_step;

/* Waits for a file to claim (w->claim), for the moment to release an
 * idle connection, or for the stop. Looks at the folder when it was
 * woken, when poll_ms passed, or when a refused file's time came. */
static next_step next_file(worker *w)
{
    gw_forwarder *f = w->f;
    next_step step = NEXT_STOP;
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        int64_t now = now_ms();
        if (f->pending_next < f->pending_count) {
            w->claim = f->pending[f->pending_next];
            f->pending[f->pending_next++] = NULL;
            step = NEXT_FILE;
            break;
        }
        int64_t look_at = f->need_look ? now : f->last_look_ms + f->c.poll_ms;
        if (f->next_due_ms && f->next_due_ms < look_at)
            look_at = f->next_due_ms;
        if (now >= look_at) {
            look(f, now);
            continue;
        }
        int64_t until = look_at;
        if (w->open) {
            int64_t release_at = w->last_used_ms + f->c.idle_release_ms;
            if (now >= release_at) {
                step = NEXT_RELEASE;
                break;
            }
            if (release_at < until)
                until = release_at;
        }
        wait_until(f, until);
    }
    pthread_mutex_unlock(&f->lock);
    return step;
}

/* The claim given up, the counters told, the others woken (a finished
 * file may mean the folder has changed, or is empty). */
static void finish_file(worker *w, outcome result, uint64_t bytes,
                        bool warning)
{
    gw_forwarder *f = w->f;
    pthread_mutex_lock(&f->lock);
    if (result == OUTCOME_DELIVERED) {
        f->stats.delivered++;
        f->stats.warnings += warning;
        f->stats.bytes += bytes;
    }
    f->stats.failed += result == OUTCOME_FAILED;
    if (result == OUTCOME_DELIVERED || result == OUTCOME_FAILED) {
        if (f->stats.queued)
            f->stats.queued--;
    }
    if (result != OUTCOME_LATER && result != OUTCOME_KEPT)
        waiting_remove(f, w->claim);
    free(w->claim);
    w->claim = NULL;
    f->need_look = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
}

/* Counts one more failure of the file in hand and sets its next try.
 * True if it is final: max_refusals of them, and the archive took other
 * files since the first, so the file is what fails, not the archive. */
static bool count_refusal(worker *w, int64_t *delay_ms)
{
    gw_forwarder *f = w->f;
    pthread_mutex_lock(&f->lock);
    waiting *entry = waiting_entry(f, w->claim);
    bool final = false;
    *delay_ms = backoff_ms(w, entry ? entry->refusals + 1 : 1);
    if (entry) {
        entry->refusals++;
        entry->not_before_ms = now_ms() + *delay_ms;
        final = entry->refusals >= (unsigned)f->c.max_refusals &&
                f->stats.delivered > entry->delivered_mark;
    }
    pthread_mutex_unlock(&f->lock);
    return final;
}

/* The archive is away, or refuses us (a->kind DENIED: an operator must
 * act, so it is an error): waits (backoff, longer with each failure in a
 * row), unless the forwarder stops meanwhile. */
static void pause_worker(worker *w, const gw_fwd_answer *a)
{
    gw_forwarder *f = w->f;
    w->failures++;
    int64_t delay = backoff_ms(w, w->failures);
    char quoted[1000];
    bool denied = a->kind == GW_FWD_DENIED;
    gw_log(denied ? GW_LOG_ERROR : GW_LOG_WARN,
           denied ? "forward.denied" : "forward.retry", "worker=%u file=%s "
           "attempt=%u delay_ms=%lld reason=\"%s\"", w->id, w->claim,
           w->failures, (long long)delay,
           gw_log_quote(a->detail, quoted, sizeof quoted));
    pthread_mutex_lock(&f->lock);
    f->stats.retries++;
    int64_t deadline = now_ms() + delay;
    while (!f->stopping && now_ms() < deadline)
        wait_until(f, deadline);
    pthread_mutex_unlock(&f->lock);
}

/* ---- the link ------------------------------------------------------------------ */

/* The stats follow the link's connection after each call on it. */
static void sync_open(worker *w)
{
    bool open = w->f->t->is_open(w->link);
    if (open == w->open)
        return;
    w->open = open;
    pthread_mutex_lock(&w->f->lock);
    if (open)
        w->f->stats.associations++;
    else
        w->f->stats.associations--;
    pthread_mutex_unlock(&w->f->lock);
}

static void close_link(worker *w, bool orderly, const char *why)
{
    w->f->t->close(w->link, orderly, why);
    sync_open(w);
}

/* ---- one file ------------------------------------------------------------------- */

/* A field of the file for the audit trail: NULL (left out) when empty. */
static const char *audit_value(const char *text)
{
    return text && text[0] ? text : NULL;
}

/* Moves the file in hand to the failed folder with NAME.reason. If that
 * cannot be done (a full disk), the file stays and waits like a refusal
 * for now: it must neither be lost nor tried again at once. */
static outcome fail_file(worker *w, const gw_scu_file *id, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
static outcome fail_file(worker *w, const gw_scu_file *id, const char *fmt,
                         ...)
{
    gw_forwarder *f = w->f;
    char reason[800], text[1800], when[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm utc;
    gmtime_r(&t, &utc);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    snprintf(text, sizeof text, "file: %s\ntime: %s\narchive: %s\n"
             "sop_class: %s\nsop_instance: %s\nreason: %s", w->claim, when,
             f->archive, id ? id->sop_class : "", id ? id->sop_instance : "",
             reason);
    char quoted[1200];
    gw_log_quote(reason, quoted, sizeof quoted);
    dcm_error err = {0};
    if (gw_spool_write_reason(f->c.failed_dir, w->claim, text, &err) < 0 ||
        gw_spool_move(f->c.outgoing_dir, f->c.failed_dir, w->claim,
                      &err) < 0) {
        gw_log(GW_LOG_ERROR, "forward.move_failed", "worker=%u file=%s "
               "failed_dir=%s error=\"%s\" refused_because=\"%s\"", w->id,
               w->claim, f->c.failed_dir, err.message, quoted);
        int64_t delay;
        count_refusal(w, &delay);
        return OUTCOME_LATER;
    }
    gw_log(GW_LOG_ERROR, "forward.failed", "worker=%u file=%s "
           "sop_instance=%s moved_to=%s reason=\"%s\"", w->id, w->claim,
           id ? id->sop_instance : "", f->c.failed_dir, quoted);
    gw_audit("instance.failed", "file", w->claim, "sop_class",
             audit_value(id ? id->sop_class : NULL), "sop_instance",
             id ? id->sop_instance : NULL, "study",
             audit_value(id ? id->study : NULL), "patient_id",
             audit_value(id ? id->patient_id : NULL), "reason", reason, NULL);
    return OUTCOME_FAILED;
}

/* The archive has it: the file leaves the spool. */
static outcome deliver(worker *w, const gw_scu_file *id,
                       const gw_fwd_answer *a, uint64_t bytes, int64_t ms)
{
    gw_forwarder *f = w->f;
    dcm_error err = {0};
    if (gw_spool_drop(f->c.outgoing_dir, w->claim, &err) < 0) {
        /* Sending it again is harmless (the archive answers success for
         * an instance it holds), looping on it is not. */
        gw_log(GW_LOG_ERROR, "forward.remove_failed", "worker=%u file=%s "
               "reason=\"%s\"", w->id, w->claim, err.message);
        int64_t delay;
        count_refusal(w, &delay);
        return OUTCOME_LATER;
    }
    w->warned = a->warning;
    gw_metric_delivered(gw_spool_age_s(w->claim));
    /* The file is the de-identified one: its header names the instance
     * as the archive now holds it. */
    gw_audit("instance.forwarded", "file", w->claim, "sop_class",
             audit_value(id->sop_class), "sop_instance", id->sop_instance,
             "study", audit_value(id->study), "patient_id",
             audit_value(id->patient_id), "archive", f->audit_archive,
             "status", a->status, "archive_id", audit_value(a->archive_id),
             "decoded_from", audit_value(a->decoded_from), NULL);
    char quoted[1000];
    gw_log(a->warning ? GW_LOG_WARN : GW_LOG_INFO, "forward.delivered",
           "worker=%u file=%s sop_instance=%s status=%s%s%s%s%s bytes=%llu "
           "ms=%lld%s%s%s", w->id, w->claim, id->sop_instance, a->status,
           a->archive_id[0] ? " archive_id=" : "", a->archive_id,
           a->decoded_from[0] ? " decoded_from=" : "", a->decoded_from,
           (unsigned long long)bytes, (long long)ms,
           a->detail[0] ? " comment=\"" : "",
           a->detail[0] ? gw_log_quote(a->detail, quoted, sizeof quoted) : "",
           a->detail[0] ? "\"" : "");
    return OUTCOME_DELIVERED;
}

/* Refused for now: the file waits for a try of its own, unless it has
 * been refused often enough, while other files went, to be what fails. */
static outcome refused_for_now(worker *w, const gw_scu_file *id,
                               const gw_fwd_answer *a)
{
    int64_t delay;
    if (count_refusal(w, &delay))
        return fail_file(w, id, "the archive refused it %d times, last with "
                         "%s, while it took other instances",
                         w->f->c.max_refusals, a->detail);
    pthread_mutex_lock(&w->f->lock);
    w->f->stats.retries++;
    pthread_mutex_unlock(&w->f->lock);
    char quoted[1000];
    gw_log(GW_LOG_WARN, "forward.refused", "worker=%u file=%s sop_instance=%s "
           "status=%s delay_ms=%lld reason=\"%s\"", w->id, w->claim,
           id->sop_instance, a->status, (long long)delay,
           gw_log_quote(a->detail, quoted, sizeof quoted));
    return OUTCOME_LATER;
}

/* The connection failed with the file on it (the transport has tried a
 * reused one again already). The file counts a failure (a file that
 * always breaks the connection must not stall its worker for ever) and
 * the worker pauses. */
static outcome connection_failed(worker *w, const gw_scu_file *id,
                                 const gw_fwd_answer *a)
{
    int64_t delay;
    if (count_refusal(w, &delay))
        return fail_file(w, id, "the connection failed %d times with this "
                         "file on it while the archive took other "
                         "instances; last: %s", w->f->c.max_refusals,
                         a->detail);
    pause_worker(w, a);
    return OUTCOME_LATER;
}

static outcome send_file(worker *w, const char *path, const gw_scu_file *id,
                         uint64_t bytes)
{
    gw_forwarder *f = w->f;
    while (!is_stopping(f)) {
        gw_fwd_answer a;
        int64_t started = now_ms();
        f->t->send(w->link, path, id, &a);
        w->last_used_ms = now_ms();
        sync_open(w);
        switch (a.kind) {
        case GW_FWD_STORED:
            w->failures = 0;
            return deliver(w, id, &a, bytes, w->last_used_ms - started);
        case GW_FWD_REFUSED:
            w->failures = 0;
            return fail_file(w, id, "%s", a.detail);
        case GW_FWD_LATER:
            w->failures = 0;
            return refused_for_now(w, id, &a);
        case GW_FWD_BROKEN:
            return connection_failed(w, id, &a);
        case GW_FWD_AWAY:
        case GW_FWD_DENIED:
            pause_worker(w, &a); /* the same file again after it */
            break;
        }
    }
    return OUTCOME_KEPT;
}

/* Sends the file in hand; *bytes gets its size. */
static outcome forward_one(worker *w, uint64_t *bytes)
{
    gw_forwarder *f = w->f;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->c.outgoing_dir, w->claim);
    struct stat st = {0};
    if (stat(path, &st) < 0 && errno == ENOENT) {
        gw_log(GW_LOG_DEBUG, "forward.gone", "worker=%u file=%s", w->id,
               w->claim);
        return OUTCOME_GONE;
    }
    gw_scu_file id = {0};
    dcm_error err = {0};
    int rc = gw_scu_file_read(path, &id, &err);
    *bytes = rc == DCM_OK || !f->t->needs_dicom ? (uint64_t)st.st_size : 0;
    if (rc == DCM_E_NOMEM || rc == DCM_E_IO) {
        int64_t delay; /* our trouble, not the file's: later */
        count_refusal(w, &delay);
        gw_log(GW_LOG_ERROR, "forward.read_failed", "worker=%u file=%s "
               "delay_ms=%lld reason=\"%s\"", w->id, w->claim,
               (long long)delay, err.message);
        return OUTCOME_LATER;
    }
    if (!f->t->needs_dicom) {
        /* The UIDs are for the log and the audit trail: what our reader
         * cannot make out goes all the same, for the archive to judge. */
        if (rc < 0)
            gw_log(GW_LOG_WARN, "forward.unreadable", "worker=%u file=%s "
                   "reason=\"%s\" (sent for the archive to judge)", w->id,
                   w->claim, err.message);
        return send_file(w, path, &id, *bytes);
    }
    if (rc < 0)
        return fail_file(w, NULL, "not a DICOM file that can be sent: %s",
                         err.message);
    if (!dcm_uid_is_valid(id.sop_instance))
        return fail_file(w, &id, "no valid SOP Instance UID");
    return send_file(w, path, &id, *bytes);
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (;;) {
        next_step step = next_file(w);
        if (step == NEXT_STOP)
            break;
        if (step == NEXT_RELEASE) {
            close_link(w, true, "idle");
            continue;
        }
        uint64_t bytes = 0;
        w->warned = false;
        outcome result = forward_one(w, &bytes);
        finish_file(w, result, bytes, w->warned);
    }
    close_link(w, true, "stop");
    w->f->t->link_free(w->link);
    w->link = NULL;
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------- */

static void apply_defaults(gw_forward_config *c)
{
    if (!c->connections)
        c->connections = GW_FORWARD_DEFAULT_CONNECTIONS;
    if (!c->timeout_ms)
        c->timeout_ms = GW_FORWARD_DEFAULT_TIMEOUT_MS;
    if (!c->backoff_min_ms)
        c->backoff_min_ms = GW_FORWARD_DEFAULT_BACKOFF_MIN_MS;
    if (!c->backoff_max_ms)
        c->backoff_max_ms = c->backoff_min_ms > GW_FORWARD_DEFAULT_BACKOFF_MAX_MS
                                ? c->backoff_min_ms
                                : GW_FORWARD_DEFAULT_BACKOFF_MAX_MS;
    if (!c->idle_release_ms)
        c->idle_release_ms = GW_FORWARD_DEFAULT_IDLE_RELEASE_MS;
    if (!c->poll_ms)
        c->poll_ms = GW_FORWARD_DEFAULT_POLL_MS;
    if (!c->max_refusals)
        c->max_refusals = GW_FORWARD_DEFAULT_MAX_REFUSALS;
    if (!c->max_pdu)
        c->max_pdu = DCM_DEFAULT_MAX_PDU_BYTES;
}

/* What the transport needs: the archive's DICOM address and AE titles,
 * or its URL. */
static int check_archive(const gw_forward_config *c, dcm_error *err)
{
    if (c->transport == GW_FORWARD_REST) {
        if (!c->url || !c->url[0])
            return dcm_fail(err, DCM_E_ARG, -1, "forwarding over REST needs "
                            "the archive's URL");
        if (c->tls)
            return dcm_fail(err, DCM_E_ARG, -1, "tls is for DICOM; over "
                            "REST, an https:// URL says TLS");
        return DCM_OK;
    }
    if (c->transport != GW_FORWARD_DIMSE)
        return dcm_fail(err, DCM_E_ARG, -1, "no such transport");
    if (!c->host || !c->port || !c->called_ae || !c->calling_ae)
        return dcm_fail(err, DCM_E_ARG, -1, "the forwarder needs the "
                        "archive's host, port and AE title, and our AE "
                        "title");
    if (c->credentials_file)
        return dcm_fail(err, DCM_E_ARG, -1, "credentials are for the REST "
                        "API (a URL), not for DICOM");
    if (!c->called_ae[0] || strlen(c->called_ae) > DCM_AE_TITLE_MAX ||
        !c->calling_ae[0] || strlen(c->calling_ae) > DCM_AE_TITLE_MAX)
        return dcm_fail(err, DCM_E_ARG, -1, "AE titles have 1 to 16 "
                        "characters");
    if (c->tls && !c->tls_ca)
        return dcm_fail(err, DCM_E_ARG, -1, "forwarding over TLS needs the "
                        "CA bundle the archive's certificate chains to");
    return DCM_OK;
}

static int check_config(const gw_forward_config *c, dcm_error *err)
{
    if (!c->outgoing_dir || !c->failed_dir)
        return dcm_fail(err, DCM_E_ARG, -1, "the forwarder needs the "
                        "outgoing and failed folders");
    if (check_archive(c, err) < 0)
        return -1;
    if (c->connections < 1 || c->connections > GW_FORWARD_MAX_CONNECTIONS)
        return dcm_fail(err, DCM_E_ARG, -1, "connections must be 1 to %d",
                        GW_FORWARD_MAX_CONNECTIONS);
    if (c->timeout_ms < 0 || c->backoff_min_ms < 0 ||
        c->backoff_max_ms < c->backoff_min_ms || c->idle_release_ms < 0 ||
        c->poll_ms < 0 || c->max_refusals < 0 || c->max_pdu < 4096)
        return dcm_fail(err, DCM_E_ARG, -1, "timeouts and delays are "
                        "positive, the longest backoff is at least the "
                        "shortest, max_pdu is at least 4096");
    return DCM_OK;
}

/* Both folders exist (failed is made if missing) on one file system, so
 * that a refused file moves by rename, atomically. */
static int check_folders(const gw_forward_config *c, dcm_error *err)
{
    struct stat out, failed;
    if (stat(c->outgoing_dir, &out) < 0 || !S_ISDIR(out.st_mode))
        return dcm_fail(err, DCM_E_IO, -1, "%s is not a folder",
                        c->outgoing_dir);
    if (mkdir(c->failed_dir, 0700) < 0 && errno != EEXIST)
        return dcm_fail(err, DCM_E_IO, -1, "cannot create %s: %s",
                        c->failed_dir, strerror(errno));
    if (stat(c->failed_dir, &failed) < 0 || !S_ISDIR(failed.st_mode))
        return dcm_fail(err, DCM_E_IO, -1, "%s is not a folder",
                        c->failed_dir);
    if (out.st_dev != failed.st_dev)
        return dcm_fail(err, DCM_E_ARG, -1, "%s and %s are on different "
                        "file systems: refused files are moved by rename, "
                        "put the failed folder beside the outgoing one",
                        c->failed_dir, c->outgoing_dir);
    return DCM_OK;
}

/* The folder's lock: one forwarder per folder, or files go twice. */
static int lock_folder(gw_forwarder *f, dcm_error *err)
{
    f->dir_fd = open(f->c.outgoing_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot open %s: %s",
                        f->c.outgoing_dir, strerror(errno));
    if (flock(f->dir_fd, LOCK_EX | LOCK_NB) < 0)
        return dcm_fail(err, DCM_E_IO, -1, errno == EWOULDBLOCK
                        ? "another forwarder is delivering %s (siren serve "
                          "or siren forward): stop it first"
                        : "cannot lock %s", f->c.outgoing_dir);
    return DCM_OK;
}

/* The archive in words for logs and reasons, and for the audit trail. */
static void name_archive(gw_forwarder *f)
{
    const gw_forward_config *c = &f->c;
    if (c->transport == GW_FORWARD_REST) {
        snprintf(f->archive, sizeof f->archive, "%s", c->url);
        snprintf(f->audit_archive, sizeof f->audit_archive, "%s", c->url);
        return;
    }
    snprintf(f->archive, sizeof f->archive, "%s:%s called=%s%s", c->host,
             c->port, c->called_ae, c->tls ? " tls" : "");
    snprintf(f->audit_archive, sizeof f->audit_archive, "%s@%s:%s",
             c->called_ae, c->host, c->port);
}

static void seed(worker *w)
{
    if (getrandom(&w->random, sizeof w->random, 0) != sizeof w->random)
        w->random = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL;
    w->random ^= (uint64_t)(w->id + 1) * 0xBF58476D1CE4E5B9ULL;
    if (!w->random)
        w->random = 1; /* xorshift stays at 0 for ever */
}

static int start_workers(gw_forwarder *f, dcm_error *err)
{
    f->workers = calloc((size_t)f->c.connections, sizeof *f->workers);
    if (!f->workers)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    for (int i = 0; i < f->c.connections; i++) {
        worker *w = &f->workers[i];
        *w = (worker){.f = f, .id = (unsigned)i + 1};
        seed(w);
        if (!(w->link = f->t->link_new(f->shared, w->id)))
            return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        if (pthread_create(&w->thread, NULL, run_worker, w) != 0) {
            f->t->link_free(w->link);
            w->link = NULL;
            return dcm_fail(err, DCM_E_NOMEM, -1, "cannot start a forwarder "
                            "thread");
        }
        f->worker_count++;
    }
    return DCM_OK;
}

gw_forwarder *gw_forward_start(const gw_forward_config *config,
                               dcm_error *err)
{
    gw_forward_config c = *config;
    apply_defaults(&c);
    if (check_config(&c, err) < 0 || check_folders(&c, err) < 0)
        return NULL;
    gw_forwarder *f = calloc(1, sizeof *f);
    if (!f) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    f->c = c;
    f->dir_fd = -1;
    f->need_look = true;
    f->t = c.transport == GW_FORWARD_REST ? &gw_fwd_rest : &gw_fwd_dimse;
    name_archive(f);
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (lock_folder(f, err) < 0 ||
        !(f->shared = f->t->setup(&f->c, err)) || start_workers(f, err) < 0) {
        gw_forward_stop(f, NULL);
        return NULL;
    }
    if (c.transport == GW_FORWARD_REST)
        gw_log(GW_LOG_INFO, "forward.started", "outgoing=%s failed=%s "
               "transport=rest url=%s credentials=%s connections=%d "
               "timeout_ms=%d", c.outgoing_dir, c.failed_dir, c.url,
               c.credentials_file ? c.credentials_file : "(none)",
               c.connections, c.timeout_ms);
    else
        gw_log(GW_LOG_INFO, "forward.started", "outgoing=%s failed=%s "
               "transport=dimse archive=%s:%s called=%s calling=%s tls=%s "
               "connections=%d timeout_ms=%d", c.outgoing_dir, c.failed_dir,
               c.host, c.port, c.called_ae, c.calling_ae,
               c.tls ? tls_profile_name(c.tls_profile) : "off",
               c.connections, c.timeout_ms);
    return f;
}

int gw_forward_reload(gw_forwarder *f, dcm_error *err)
{
    if (!f->t->reload)
        return DCM_OK;
    return f->t->reload(f->shared, err);
}

void gw_forward_wake(gw_forwarder *f)
{
    pthread_mutex_lock(&f->lock);
    f->need_look = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
}

gw_forward_stats gw_forward_stats_of(gw_forwarder *f)
{
    pthread_mutex_lock(&f->lock);
    gw_forward_stats stats = f->stats;
    pthread_mutex_unlock(&f->lock);
    return stats;
}

void gw_forward_stop(gw_forwarder *f, gw_forward_stats *final)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    for (unsigned i = 0; i < f->worker_count; i++)
        pthread_join(f->workers[i].thread, NULL);
    if (final)
        *final = f->stats;
    if (f->worker_count)
        gw_log(GW_LOG_INFO, "forward.stopped", "delivered=%llu failed=%llu "
               "retries=%llu bytes=%llu left=%llu",
               (unsigned long long)f->stats.delivered,
               (unsigned long long)f->stats.failed,
               (unsigned long long)f->stats.retries,
               (unsigned long long)f->stats.bytes,
               (unsigned long long)f->stats.queued);
    for (int i = 0; f->workers && i < f->c.connections; i++)
        f->t->link_free(f->workers[i].link); /* those never started */
    free(f->workers);
    drop_pending(f);
    for (size_t i = 0; i < f->waiting_count; i++)
        free(f->waiting[i].name);
    free(f->waiting);
    if (f->t)
        f->t->teardown(f->shared);
    if (f->dir_fd >= 0)
        close(f->dir_fd); /* and the lock with it */
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
