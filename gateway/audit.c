/* audit.c - the audit trail (audit.h): a queue of lines and the thread
 * that appends them to the file as they come, and syncs the file at most
 * every AUDIT_SYNC_MS. */
#include "audit.h"

#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_LINE_MAX 4096
/* Lines are written at once (a killed process loses none that was
 * written: the kernel has them); the file is synced at most this often,
 * so that the audit's flushes do not crowd the spool's on the disk. A
 * power failure may lose the lines of the last AUDIT_SYNC_MS. */
#define AUDIT_SYNC_MS 200

static struct {
    pthread_mutex_t lock;   /* guards all that follows */
    pthread_cond_t more;    /* a line was queued, or stop */
    pthread_t writer;
    bool running, stopping;
    int fd;
    char **queue;           /* a ring of GW_AUDIT_QUEUE lines */
    size_t head, count;
    pthread_mutex_t write_lock; /* one writer of the file at a time */
    bool unsynced;              /* lines written since the last sync */
    struct timespec last_sync;
} audit = {.lock = PTHREAD_MUTEX_INITIALIZER,
           .more = PTHREAD_COND_INITIALIZER,
           .write_lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static int64_t ms_since(const struct timespec *then)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - then->tv_sec) * 1000 +
           (now.tv_nsec - then->tv_nsec) / 1000000;
}

/* Under write_lock. */
static void sync_file(void)
{
    if (audit.fd != STDOUT_FILENO && audit.unsynced)
        fdatasync(audit.fd);
    audit.unsynced = false;
    clock_gettime(CLOCK_MONOTONIC, &audit.last_sync);
}

/* Appends lines to the file; syncs if sync_now or if the last sync is
 * AUDIT_SYNC_MS old. */
static void write_lines(char **lines, size_t count, bool sync_now)
{
    pthread_mutex_lock(&audit.write_lock);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(lines[i]), done = 0;
        while (done < len) {
            ssize_t n = write(audit.fd, lines[i] + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                gw_log(GW_LOG_ERROR, "audit.write_failed", "reason=\"%s\"",
                       strerror(errno));
                break;
            }
            done += (size_t)n;
        }
    }
    audit.unsynced = true;
    if (sync_now || ms_since(&audit.last_sync) >= AUDIT_SYNC_MS)
        sync_file();
    pthread_mutex_unlock(&audit.write_lock);
}

/* Syncs what was written if it waited long enough, else returns how many
 * ms it may still wait (-1: nothing waits). */
static int64_t sync_if_due(void)
{
    pthread_mutex_lock(&audit.write_lock);
    int64_t wait = -1;
    if (audit.unsynced) {
        wait = AUDIT_SYNC_MS - ms_since(&audit.last_sync);
        if (wait <= 0)
            sync_file();
    }
    pthread_mutex_unlock(&audit.write_lock);
    return wait > 0 ? wait : -1;
}

/* Waits for a line or stop; meanwhile syncs what was written when due. */
static void wait_for_lines(void)
{
    while (audit.count == 0 && !audit.stopping) {
        pthread_mutex_unlock(&audit.lock);
        int64_t wait = sync_if_due();
        pthread_mutex_lock(&audit.lock);
        if (audit.count || audit.stopping)
            break;
        if (wait < 0) {
            pthread_cond_wait(&audit.more, &audit.lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&audit.more, &audit.lock, &until);
    }
}

#define BATCH 256 /* lines per write */

static void *run_writer(void *arg)
{
    (void)arg;
    char *batch[BATCH];
    pthread_mutex_lock(&audit.lock);
    for (;;) {
        wait_for_lines();
        if (audit.count == 0)
            break;
        size_t n = 0;
        while (audit.count > 0 && n < BATCH) {
            batch[n++] = audit.queue[audit.head];
            audit.head = (audit.head + 1) % GW_AUDIT_QUEUE;
            audit.count--;
        }
        pthread_mutex_unlock(&audit.lock);
        write_lines(batch, n, false);
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
        pthread_mutex_lock(&audit.lock);
    }
    pthread_mutex_unlock(&audit.lock);
    pthread_mutex_lock(&audit.write_lock);
    sync_file();
    pthread_mutex_unlock(&audit.write_lock);
    return NULL;
}

int gw_audit_start(const char *path, dcm_error *err)
{
    int fd = strcmp(path, "-") == 0
                 ? STDOUT_FILENO
                 : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "audit file %s: %s", path,
                        strerror(errno));
    char **queue = calloc(GW_AUDIT_QUEUE, sizeof *queue);
    if (!queue) {
        if (fd != STDOUT_FILENO)
            close(fd);
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    }
    pthread_mutex_lock(&audit.lock);
    audit.fd = fd;
    audit.unsynced = false;
    clock_gettime(CLOCK_MONOTONIC, &audit.last_sync);
    audit.queue = queue;
    audit.head = audit.count = 0;
    audit.stopping = false;
    audit.running = pthread_create(&audit.writer, NULL, run_writer, NULL) == 0;
    pthread_mutex_unlock(&audit.lock);
    if (!audit.running) {
        gw_audit_stop();
        return dcm_fail(err, DCM_E_NOMEM, -1, "cannot start the audit thread");
    }
    return DCM_OK;
}

/* {"time":"...","event":"...",key:value...}\n into line. */
static void format_line(char *line, size_t size, const char *event,
                        va_list ap)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char when[40];
    size_t len = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(when + len, sizeof when - len, ".%03ldZ", now.tv_nsec / 1000000);
    size_t n = 1;
    line[0] = '{';
    gw_json_field(line, size - 2, &n, "time", when);
    gw_json_field(line, size - 2, &n, "event", event);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (value)
            gw_json_field(line, size - 2, &n, key, value);
    }
    line[n++] = '}';
    line[n++] = '\n';
    line[n] = '\0';
}

void gw_audit(const char *event, ...)
{
    pthread_mutex_lock(&audit.lock);
    bool on = audit.running && !audit.stopping;
    pthread_mutex_unlock(&audit.lock);
    if (!on)
        return;
    char *line = malloc(AUDIT_LINE_MAX);
    if (!line) {
        gw_log(GW_LOG_ERROR, "audit.lost", "event=%s reason=\"out of "
               "memory\"", event);
        return;
    }
    va_list ap;
    va_start(ap, event);
    format_line(line, AUDIT_LINE_MAX, event, ap);
    va_end(ap);
    pthread_mutex_lock(&audit.lock);
    if (!audit.running || audit.stopping) { /* stopped meanwhile */
        pthread_mutex_unlock(&audit.lock);
        free(line);
        return;
    }
    if (audit.count < GW_AUDIT_QUEUE) {
        audit.queue[(audit.head + audit.count) % GW_AUDIT_QUEUE] = line;
        audit.count++;
        pthread_cond_signal(&audit.more);
        pthread_mutex_unlock(&audit.lock);
        return;
    }
    pthread_mutex_unlock(&audit.lock);
    /* The queue is full: the disk is slower than the events. Wait for it
     * rather than lose the record. */
    write_lines(&line, 1, true);
    free(line);
}

void gw_audit_stop(void)
{
    pthread_mutex_lock(&audit.lock);
    bool running = audit.running;
    audit.stopping = true;
    pthread_cond_broadcast(&audit.more);
    pthread_mutex_unlock(&audit.lock);
    if (running)
        pthread_join(audit.writer, NULL);
    pthread_mutex_lock(&audit.lock);
    pthread_mutex_lock(&audit.write_lock); /* a full-queue writer is done */
    if (audit.fd >= 0 && audit.fd != STDOUT_FILENO)
        close(audit.fd);
    audit.fd = -1;
    pthread_mutex_unlock(&audit.write_lock);
    free(audit.queue);
    audit.queue = NULL;
    audit.running = false;
    pthread_mutex_unlock(&audit.lock);
}
