/* process.c - the processor pool (process.h). Threads share one queue of
 * names from spool/received: a thread that finds it empty lists the
 * folder again, leaving out names other threads hold, so no instance is
 * processed twice at once, and a crash mid-way leaves it in received/ to
 * be processed again (the result is the same: anon_apply is a pure
 * function of the instance and the policy). */
#include "process.h"

#include "anon.h"
#include "audit.h"
#include "deidentify.h"
#include "gateway.h"
#include "metrics.h"
#include "pixels.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define RESCAN_MS 1000 /* also without a wake: files put there by hand */

struct gw_processor {
    gw_process_config config;
    pthread_t threads[MAX_THREADS];
    int thread_count;
    pthread_mutex_t lock;           /* guards what follows */
    pthread_cond_t wake;
    bool stopping, woken;
    char **queue;                   /* names to process, in order */
    size_t queue_count, queue_next;
    char *busy[MAX_THREADS];        /* names being processed */
    gw_process_counts counts;
};

/* ---- one instance ----------------------------------------------------------------- */

static void quarantine(gw_processor *p, const char *name, const char *why)
{
    const gw_spool *s = p->config.spool;
    dcm_error err = {0};
    /* The reason first: an instance in quarantine always has one. */
    if (gw_spool_write_reason(s->quarantine, name, why, &err) < 0 ||
        gw_spool_move(s->received, s->quarantine, name, &err) < 0) {
        gw_log(GW_LOG_ERROR, "instance.stuck", "file=%s reason=\"%s\"", name,
               err.message);
        return;
    }
    char quoted[600];
    gw_log(GW_LOG_WARN, "instance.quarantined", "file=%s reason=\"%s\"", name,
           gw_log_quote(why, quoted, sizeof quoted));
    gw_audit("instance.quarantined", "file", name, "reason", why, NULL);
    gw_metric_quarantined();
    pthread_mutex_lock(&p->lock);
    p->counts.quarantined++;
    pthread_mutex_unlock(&p->lock);
}

/* Writes the de-identified dataset to outgoing/ under a '.'-name, then
 * renames it: the forwarder only ever sees complete files. */
static int write_outgoing(const gw_spool *s, const dcm_dataset *ds,
                          const char *name, dcm_error *err)
{
    char temp[PATH_MAX], path[PATH_MAX];
    if (!gw_spool_path(temp, sizeof temp, s->outgoing, ".processing-", name) ||
        !gw_spool_path(path, sizeof path, s->outgoing, "", name))
        return dcm_fail(err, DCM_E_ARG, -1, "spool path too long");
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot create %s: %s", temp,
                        strerror(errno));
    int rc = dcm_write_file(ds, NULL, dcm_fd_writer, &fd, err);
    if (rc == DCM_OK && fdatasync(fd) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "fdatasync %s: %s", temp,
                      strerror(errno));
    if (close(fd) < 0 && rc == DCM_OK)
        rc = dcm_fail(err, DCM_E_IO, -1, "close %s: %s", temp,
                      strerror(errno));
    if (rc == DCM_OK && (rename(temp, path) < 0 || gw_sync_dir(s->outgoing) < 0))
        rc = dcm_fail(err, DCM_E_IO, -1, "cannot rename into %s: %s",
                      s->outgoing, strerror(errno));
    if (rc != DCM_OK)
        unlink(temp);
    return rc;
}

/* A value of the de-identified data set (text decoded to UTF-8, a UID
 * as it is: ASCII by its VR); NULL when absent or empty. Owned by the
 * caller. */
static char *deidentified_value(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    char *value = !el ? NULL
                  : dcm_element_vr(el) == DCM_VR_UI
                      ? dcm_element_get_string(el, NULL)
                      : dcm_dataset_get_utf8(ds, tag, NULL);
    if (value && !value[0]) {
        free(value);
        return NULL;
    }
    return value;
}

/* The audit event names the instance by what the policy made of it (the
 * new UIDs, the Patient ID it left, a pseudonym or nothing), never by
 * what was received: the trail goes to Splunk and syslog. */
static void log_processed(const char *name, const char *site,
                          const pol_policy *pol, const anon_result *r,
                          const dcm_dataset *ds)
{
    char *uid = deidentified_value(ds, DCM_TAG_SOP_INSTANCE_UID);
    char *sop_class = deidentified_value(ds, DCM_TAG_SOP_CLASS_UID);
    char *study = deidentified_value(ds, DCM_TAG(0x0020, 0x000D));
    char *patient_id = deidentified_value(ds, DCM_TAG(0x0010, 0x0020));
    char version[16];
    snprintf(version, sizeof version, "%u", pol_policy_version(pol));
    gw_metric_processed(gw_spool_age_s(name));
    gw_audit("instance.deidentified", "file", name, "site", site,
             "policy", pol_policy_name(pol), "policy_version", version,
             "policy_sha256", pol_policy_hash(pol), "sop_class", sop_class,
             "sop_instance", uid, "study", study, "patient_id", patient_id,
             NULL);
    gw_log(GW_LOG_INFO, "instance.processed",
           "file=%s site=%s policy=%s version=%u policy_sha256=%s "
           "sop_instance=%s removed=%zu replaced=%zu uids=%zu dates=%zu",
           name, site, pol_policy_name(pol), pol_policy_version(pol),
           pol_policy_hash(pol), uid ? uid : "", r->removed + r->emptied,
           r->replaced, r->uids_remapped, r->dates_shifted);
    free(uid);
    free(sop_class);
    free(study);
    free(patient_id);
}

/* Processes received/name under its site's current policy. */
static void process_one(gw_processor *p, const char *name)
{
    const gw_spool *s = p->config.spool;
    char path[PATH_MAX], site[64] = "", why[700];
    dcm_error err = {0};
    dcm_file *f = gw_spool_path(path, sizeof path, s->received, "", name)
                      ? dcm_file_open(path, NULL, &err)
                      : NULL;
    if (!f && access(path, F_OK) < 0 && errno == ENOENT) {
        /* Gone since the listing: another thread processed it (a refill
         * can list a name again while its thread finishes), or an
         * operator moved it. Nothing to do. */
        gw_log(GW_LOG_DEBUG, "instance.gone", "file=%s", name);
        return;
    }
    if (!f) {
        snprintf(why, sizeof why, "unreadable: %s", err.message);
        quarantine(p, name, why);
        return;
    }
    bool from_site = gw_spool_site_of(f, site, sizeof site);
    pol_policy *pol = p->config.policy_for(p->config.ctx,
                                           from_site ? site : NULL);
    dcm_dataset *ds = dcm_file_dataset(f);
    gw_deid deid;
    if (!pol) {
        snprintf(why, sizeof why, "no policy for %s%s", from_site ? "site " :
                 "the plain listener", site);
        quarantine(p, name, why);
    } else if (gw_deidentify(pol, ds, &deid) != GW_DEID_FORWARD) {
        /* A pixel stage that failed is on the record (nothing else is:
         * its action is GW_PIXELS_NONE then). */
        gw_pixels_record(name, &deid.pixels);
        quarantine(p, name, deid.why);
    } else if (write_outgoing(s, ds, name, &err) < 0 ||
               gw_spool_drop(s->received, name, &err) < 0) {
        /* Left in received/: tried again at the next scan. */
        gw_log(GW_LOG_ERROR, "instance.failed", "file=%s reason=\"%s\"", name,
               err.message);
        pthread_mutex_lock(&p->lock);
        p->counts.failed++;
        pthread_mutex_unlock(&p->lock);
    } else {
        gw_pixels_record(name, &deid.pixels);
        log_processed(name, from_site ? site : "(plain)", pol, &deid.anon,
                      ds);
        pthread_mutex_lock(&p->lock);
        p->counts.processed++;
        pthread_mutex_unlock(&p->lock);
        if (p->config.processed)
            p->config.processed(p->config.ctx);
    }
    pol_policy_unref(pol);
    dcm_file_free(f);
}

/* ---- the queue -------------------------------------------------------------------- */

static bool is_busy(const gw_processor *p, const char *name)
{
    for (int i = 0; i < p->thread_count; i++)
        if (p->busy[i] && strcmp(p->busy[i], name) == 0)
            return true;
    return false;
}

/* Lists received/ again into the queue (under the lock). */
static void refill(gw_processor *p)
{
    gw_spool_names_free(p->queue, p->queue_count);
    p->queue = NULL;
    p->queue_count = p->queue_next = 0;
    dcm_error err = {0};
    if (gw_spool_list(p->config.spool->received, &p->queue, &p->queue_count,
                      &err) < 0)
        gw_log(GW_LOG_ERROR, "spool.unreadable", "reason=\"%s\"", err.message);
}

/* The next name for thread index (owned by the caller), or NULL when
 * stopping. Waits for a wake or RESCAN_MS when there is nothing. */
static char *next_name(gw_processor *p, int index)
{
    pthread_mutex_lock(&p->lock);
    free(p->busy[index]);
    p->busy[index] = NULL;
    char *name = NULL;
    while (!p->stopping && !name) {
        while (p->queue_next < p->queue_count && !name) {
            char *candidate = p->queue[p->queue_next++];
            if (!is_busy(p, candidate))
                name = strdup(candidate);
        }
        if (name)
            break;
        if (!p->woken) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += RESCAN_MS / 1000;
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
        }
        p->woken = false;
        if (!p->stopping)
            refill(p);
    }
    p->busy[index] = name ? strdup(name) : NULL;
    pthread_mutex_unlock(&p->lock);
    return name;
}

typedef struct worker {
    gw_processor *p;
    int index;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    gw_processor *p = w->p;
    int index = w->index;
    free(w);
    for (char *name; (name = next_name(p, index)) != NULL; free(name))
        process_one(p, name);
    return NULL;
}

/* ---- the pool --------------------------------------------------------------------- */

gw_processor *gw_process_start(const gw_process_config *c, dcm_error *err)
{
    gw_processor *p = calloc(1, sizeof *p);
    if (!p) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    p->config = *c;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->woken = true; /* list what the spool holds at once */
    int wanted = c->threads < 1 ? 1 : c->threads > MAX_THREADS ? MAX_THREADS
                                                               : c->threads;
    for (int i = 0; i < wanted; i++) {
        worker *w = malloc(sizeof *w);
        if (w)
            *w = (worker){p, i};
        if (!w || pthread_create(&p->threads[i], NULL, run_worker, w) != 0) {
            free(w);
            break;
        }
        p->thread_count++;
    }
    if (p->thread_count == 0) {
        dcm_fail(err, DCM_E_NOMEM, -1, "cannot start processor threads");
        free(p);
        return NULL;
    }
    return p;
}

void gw_process_wake(gw_processor *p)
{
    pthread_mutex_lock(&p->lock);
    p->woken = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void gw_process_stop(gw_processor *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->thread_count; i++)
        pthread_join(p->threads[i], NULL);
    for (int i = 0; i < p->thread_count; i++)
        free(p->busy[i]);
    gw_spool_names_free(p->queue, p->queue_count);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
}

gw_process_counts gw_process_counts_of(gw_processor *p)
{
    pthread_mutex_lock(&p->lock);
    gw_process_counts c = p->counts;
    pthread_mutex_unlock(&p->lock);
    return c;
}
