/* hec.c - shipping the audit file to Splunk's HTTP Event Collector
 * (hec.h) with libcurl: a sender for the tail (tail.h), which reads the
 * lines from the saved offset and moves it after each accepted batch. */
#include "hec.h"

#include "gateway.h"
#include "tail.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_BYTES (256u << 10) /* of audit lines per POST */
#define TIMEOUT_S 30

static struct {
    char *url, *token_header, *ca_file, *source;
    gw_tail *tail;
} h;

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

/* The tail's sender: the whole batch in one POST, or nothing. */
static size_t send_batch(void *ctx, const char *lines, size_t len, char *why,
                         size_t why_size)
{
    (void)ctx;
    size_t body_len = 0;
    char *body = hec_body(lines, len, &body_len);
    if (!body) {
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    bool sent = post(body, body_len, why, why_size);
    free(body);
    return sent ? len : 0;
}

static char *copy(const char *s)
{
    return s ? strdup(s) : NULL;
}

int gw_hec_start(const gw_hec_config *c, dcm_error *err)
{
    size_t header_len = strlen("Authorization: Splunk ") + strlen(c->token) + 1;
    h.token_header = malloc(header_len);
    h.url = copy(c->url);
    h.ca_file = copy(c->ca_file);
    h.source = copy(c->source ? c->source : "siren");
    if (!h.token_header || !h.url || !h.source)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    snprintf(h.token_header, header_len, "Authorization: Splunk %s",
             c->token);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot start libcurl");
    gw_tail_config tc = {.name = "hec", .file = c->audit_file,
                         .offset_suffix = ".hec-offset",
                         .batch_bytes = BATCH_BYTES, .send = send_batch};
    if (!(h.tail = gw_tail_start(&tc, err)))
        return -1;
    gw_log(GW_LOG_INFO, "hec.started", "url=%s offset=%llu", h.url,
           (unsigned long long)gw_tail_saved_offset(c->audit_file,
                                                    ".hec-offset"));
    return DCM_OK;
}

void gw_hec_stop(void)
{
    if (!h.tail)
        return;
    gw_tail_stop(h.tail);
    h.tail = NULL;
    curl_global_cleanup();
    free(h.url);
    free(h.token_header);
    free(h.ca_file);
    free(h.source);
}
