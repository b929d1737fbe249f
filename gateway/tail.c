/* tail.c - shipping a file of lines from a durable offset (tail.h): the
 * offset file, reading whole lines, the thread with its backoff. */
#include "tail.h"

#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct gw_tail {
    char *name, *file, *offset_file;
    size_t batch_bytes;
    gw_tail_send_fn send;
    void *ctx;
    void (*thread_done)(void);
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

/* ---- the offset ------------------------------------------------------------------ */

static uint64_t load_offset(const char *offset_file)
{
    FILE *f = fopen(offset_file, "re");
    unsigned long long offset = 0;
    if (f) {
        if (fscanf(f, "%llu", &offset) != 1)
            offset = 0;
        fclose(f);
    }
    return offset;
}

uint64_t gw_tail_saved_offset(const char *file, const char *suffix)
{
    char path[4200];
    snprintf(path, sizeof path, "%s%s", file, suffix);
    return load_offset(path);
}

/* Written to a temporary name, synced, renamed: a crash leaves the old
 * offset or the new one, never a broken one. */
static void save_offset(const gw_tail *t, uint64_t offset)
{
    char temp[4200];
    snprintf(temp, sizeof temp, "%s.tmp", t->offset_file);
    FILE *f = fopen(temp, "we");
    bool ok = f && fprintf(f, "%llu\n", (unsigned long long)offset) > 0 &&
              fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(temp, t->offset_file) < 0)
        gw_log(GW_LOG_ERROR, "tail.offset_failed", "sink=%s file=%s "
               "reason=\"%s\"", t->name, t->offset_file, strerror(errno));
}

/* ---- a batch --------------------------------------------------------------------- */

/* Up to batch_bytes of whole lines from *offset into buf: their length;
 * 0 when there is no whole line yet. A file shorter than the offset was
 * replaced (rotated, restored): shipping starts again at its beginning. A
 * "line" of batch_bytes without an end cannot have come from the audit
 * trail (its lines are short): it is skipped, and said so. */
static size_t read_lines(gw_tail *t, uint64_t *offset, char *buf)
{
    int fd = open(t->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size < *offset) {
        gw_log(GW_LOG_WARN, "tail.file_replaced", "sink=%s file=%s "
               "offset=%llu size=%lld", t->name, t->file,
               (unsigned long long)*offset, (long long)st.st_size);
        *offset = 0;
        save_offset(t, 0);
    }
    ssize_t got = pread(fd, buf, t->batch_bytes, (off_t)*offset);
    close(fd);
    size_t whole = 0;
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == '\n')
            whole = (size_t)i + 1;
    if (whole == 0 && got > 0 && (size_t)got == t->batch_bytes) {
        gw_log(GW_LOG_ERROR, "tail.line_too_long", "sink=%s file=%s "
               "offset=%llu skipped=%zu", t->name, t->file,
               (unsigned long long)*offset, t->batch_bytes);
        *offset += t->batch_bytes;
        save_offset(t, *offset);
    }
    return whole;
}

/* ---- the thread ------------------------------------------------------------------- */

/* Waits ms, or less if stopping; false when stopping. */
static bool pause_ms(gw_tail *t, long ms)
{
    pthread_mutex_lock(&t->lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (!t->stopping &&
           pthread_cond_timedwait(&t->wake, &t->lock, &until) == 0)
        ;
    bool go_on = !t->stopping;
    pthread_mutex_unlock(&t->lock);
    return go_on;
}

static bool stopping(gw_tail *t)
{
    pthread_mutex_lock(&t->lock);
    bool stop = t->stopping;
    pthread_mutex_unlock(&t->lock);
    return stop;
}

/* One batch from *offset: true when there were lines (*had_lines) and
 * all of them went; the offset moves past what went. */
static bool ship_batch(gw_tail *t, char *buf, uint64_t *offset,
                       bool *had_lines, char *why, size_t why_size)
{
    size_t len = read_lines(t, offset, buf);
    size_t sent = len ? t->send(t->ctx, buf, len, why, why_size) : 0;
    if (sent > len)
        sent = len; /* a sender's mistake must not skip lines */
    if (sent) {
        *offset += sent;
        save_offset(t, *offset);
    }
    *had_lines = len > 0;
    return len && sent == len;
}

static void *run_tail(void *arg)
{
    gw_tail *t = arg;
    char *buf = malloc(t->batch_bytes);
    uint64_t offset = load_offset(t->offset_file);
    long backoff_ms = 0;
    char why[256];
    bool had_lines;
    while (buf && !stopping(t)) {
        why[0] = '\0';
        if (ship_batch(t, buf, &offset, &had_lines, why, sizeof why)) {
            backoff_ms = 0;
            continue; /* more may be waiting */
        }
        if (had_lines) {
            backoff_ms = backoff_ms ? backoff_ms * 2 : 1000;
            if (backoff_ms > GW_TAIL_BACKOFF_MAX_MS)
                backoff_ms = GW_TAIL_BACKOFF_MAX_MS;
            char quoted[600];
            gw_log(GW_LOG_WARN, "tail.retry", "sink=%s reason=\"%s\" "
                   "offset=%llu retry_in_ms=%ld", t->name,
                   gw_log_quote(why, quoted, sizeof quoted),
                   (unsigned long long)offset, backoff_ms);
        }
        if (!pause_ms(t, had_lines ? backoff_ms : GW_TAIL_POLL_MS))
            break;
    }
    /* Stopping: with the receiver reachable, what was written since the
     * last look (the service's last events) goes too, as long as it goes
     * through; otherwise it stays in the file for the next start. */
    while (buf && backoff_ms == 0 &&
           ship_batch(t, buf, &offset, &had_lines, why, sizeof why))
        ;
    if (!buf)
        gw_log(GW_LOG_ERROR, "tail.stopped", "sink=%s reason=\"out of "
               "memory\"", t->name);
    free(buf);
    if (t->thread_done)
        t->thread_done();
    return NULL;
}

static void tail_free(gw_tail *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t->name);
    free(t->file);
    free(t->offset_file);
    free(t);
}

gw_tail *gw_tail_start(const gw_tail_config *c, dcm_error *err)
{
    gw_tail *t = calloc(1, sizeof *t);
    if (!t) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    size_t offset_len = strlen(c->file) + strlen(c->offset_suffix) + 1;
    t->name = strdup(c->name);
    t->file = strdup(c->file);
    t->offset_file = malloc(offset_len);
    if (!t->name || !t->file || !t->offset_file) {
        tail_free(t);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    snprintf(t->offset_file, offset_len, "%s%s", c->file, c->offset_suffix);
    t->batch_bytes = c->batch_bytes;
    t->send = c->send;
    t->ctx = c->ctx;
    t->thread_done = c->thread_done;
    if (pthread_create(&t->thread, NULL, run_tail, t) != 0) {
        tail_free(t);
        dcm_fail(err, DCM_E_NOMEM, -1, "cannot start the %s thread",
                 c->name);
        return NULL;
    }
    return t;
}

void gw_tail_stop(gw_tail *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    tail_free(t);
}
