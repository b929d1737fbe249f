/* hec.c - shipping the audit file to Splunk's HTTP Event Collector
 * (hec.h) with libcurl: batches of lines from the saved offset, the
 * offset saved after each accepted batch, retries with backoff. */
#include "hec.h"

#include "gateway.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_BYTES (256u << 10) /* of audit lines per POST */
#define POLL_MS 1000
#define BACKOFF_MAX_MS 60000
#define TIMEOUT_S 30

static struct {
    gw_hec_config c;
    char *url, *token_header, *audit_file, *offset_file, *ca_file, *source;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool running, stopping;
} h = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* ---- the offset ------------------------------------------------------------------ */

static uint64_t load_offset(void)
{
    FILE *f = fopen(h.offset_file, "re");
    unsigned long long offset = 0;
    if (f) {
        if (fscanf(f, "%llu", &offset) != 1)
            offset = 0;
        fclose(f);
    }
    return offset;
}

/* Written to a temporary name, synced, renamed: a crash leaves the old
 * offset or the new one, never a broken one. */
static void save_offset(uint64_t offset)
{
    char temp[4200];
    snprintf(temp, sizeof temp, "%s.tmp", h.offset_file);
    FILE *f = fopen(temp, "we");
    bool ok = f && fprintf(f, "%llu\n", (unsigned long long)offset) > 0 &&
              fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(temp, h.offset_file) < 0)
        gw_log(GW_LOG_ERROR, "hec.offset_failed", "file=%s reason=\"%s\"",
               h.offset_file, strerror(errno));
}

/* ---- a batch --------------------------------------------------------------------- */

/* Up to BATCH_BYTES of whole lines from offset: their bytes (owned by the
 * caller) and length; NULL when there is no whole line yet. */
static char *read_lines(uint64_t offset, size_t *len)
{
    int fd = open(h.audit_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(BATCH_BYTES);
    ssize_t got = buf ? pread(fd, buf, BATCH_BYTES, (off_t)offset) : -1;
    close(fd);
    size_t whole = 0;
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == '\n')
            whole = (size_t)i + 1;
    if (whole == 0) {
        free(buf);
        return NULL;
    }
    *len = whole;
    return buf;
}

/* The HEC body: one {"source":..,"sourcetype":..,"event":LINE} per line. */
static char *hec_body(const char *lines, size_t len, size_t *body_len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += lines[i] == '\n';
    char prefix[300];
    size_t used = 0;
    prefix[used++] = '{';
    prefix[used] = '\0';
    gw_json_field(prefix, sizeof prefix, &used, "source", h.source);
    gw_json_field(prefix, sizeof prefix, &used, "sourcetype", "siren:audit");
    snprintf(prefix + used, sizeof prefix - used, ",\"event\":");
    size_t prefix_len = strlen(prefix);
    char *body = malloc(len + count * (prefix_len + 2) + 1);
    if (!body)
        return NULL;
    size_t n = 0;
    for (const char *line = lines; line < lines + len;) {
        const char *end = memchr(line, '\n', (size_t)(lines + len - line));
        memcpy(body + n, prefix, prefix_len);
        n += prefix_len;
        memcpy(body + n, line, (size_t)(end - line));
        n += (size_t)(end - line);
        body[n++] = '}';
        body[n++] = '\n';
        line = end + 1;
    }
    body[n] = '\0';
    *body_len = n;
    return body;
}

/* True when the collector accepted the batch. */
static bool post(const char *body, size_t len, char *why, size_t size)
{
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(why, size, "cannot start libcurl");
        return false;
    }
    struct curl_slist *headers =
        curl_slist_append(NULL, h.token_header);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, h.url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (h.ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, h.ca_file);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        snprintf(why, size, "%s", curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(why, size, "HTTP status %ld", status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK && status == 200;
}

/* ---- the thread ------------------------------------------------------------------- */

/* Waits ms, or less if stopping; false when stopping. */
static bool pause_ms(long ms)
{
    pthread_mutex_lock(&h.lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (!h.stopping &&
           pthread_cond_timedwait(&h.wake, &h.lock, &until) == 0)
        ;
    bool go_on = !h.stopping;
    pthread_mutex_unlock(&h.lock);
    return go_on;
}

static void *run_shipper(void *arg)
{
    (void)arg;
    uint64_t offset = load_offset();
    long backoff = 0;
    for (;;) {
        size_t len = 0, body_len = 0;
        char *lines = read_lines(offset, &len);
        char *body = lines ? hec_body(lines, len, &body_len) : NULL;
        char why[256] = "";
        bool sent = body && post(body, body_len, why, sizeof why);
        free(lines);
        free(body);
        if (sent) {
            offset += len;
            save_offset(offset);
            backoff = 0;
            continue; /* more may be waiting */
        }
        if (len) {
            backoff = backoff ? backoff * 2 : 1000;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            gw_log(GW_LOG_WARN, "hec.retry", "url=%s reason=\"%s\" "
                   "retry_in_ms=%ld", h.url, why, backoff);
        }
        /* Stopping with lines left: they stay in the file for the next
         * start. */
        if (!pause_ms(len ? backoff : POLL_MS))
            break;
    }
    return NULL;
}

static char *copy(const char *s)
{
    return s ? strdup(s) : NULL;
}

int gw_hec_start(const gw_hec_config *c, dcm_error *err)
{
    size_t header_len = strlen("Authorization: Splunk ") + strlen(c->token) + 1;
    h.token_header = malloc(header_len);
    h.offset_file = malloc(strlen(c->audit_file) + sizeof ".hec-offset");
    h.url = copy(c->url);
    h.audit_file = copy(c->audit_file);
    h.ca_file = copy(c->ca_file);
    h.source = copy(c->source ? c->source : "siren");
    if (!h.token_header || !h.offset_file || !h.url || !h.audit_file ||
        !h.source)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    snprintf(h.token_header, header_len, "Authorization: Splunk %s",
             c->token);
    sprintf(h.offset_file, "%s.hec-offset", c->audit_file);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot start libcurl");
    if (pthread_create(&h.thread, NULL, run_shipper, NULL) != 0)
        return dcm_fail(err, DCM_E_NOMEM, -1, "cannot start the HEC thread");
    h.running = true;
    gw_log(GW_LOG_INFO, "hec.started", "url=%s offset=%llu", h.url,
           (unsigned long long)load_offset());
    return DCM_OK;
}

void gw_hec_stop(void)
{
    if (!h.running)
        return;
    pthread_mutex_lock(&h.lock);
    h.stopping = true;
    pthread_cond_signal(&h.wake);
    pthread_mutex_unlock(&h.lock);
    pthread_join(h.thread, NULL);
    h.running = false;
    curl_global_cleanup();
    free(h.url);
    free(h.token_header);
    free(h.audit_file);
    free(h.offset_file);
    free(h.ca_file);
    free(h.source);
}
