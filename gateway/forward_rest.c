/* forward_rest.c - the forwarder's REST transport (forward_transport.h):
 * POST /instances to Orthanc with libcurl, the file streamed from disk as
 * the body (a 1 GiB instance is never in memory), basic authentication
 * with the credentials file's user and password, the answer read into a
 * bounded buffer and judged by rest_answer.c. Each worker keeps one curl
 * easy handle, and with it its connection, between files: the REST
 * counterpart of a persistent association. */
#include "forward_transport.h"

#include "gateway.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rest_shared {
    char *instances_url;          /* the API's URL + "/instances" */
    const char *url;              /* as configured, for logs */
    const char *credentials_file; /* NULL: none sent */
    const char *ca_file;          /* NULL: the system's CAs */
    long timeout_ms;
    bool curl_started;
    pthread_mutex_t lock;         /* guards what follows */
    char userpwd[GW_FORWARD_MAX_CREDENTIALS + 1];
    unsigned generation;          /* bumped at each read of the file */
} rest_shared;

struct gw_fwd_link {
    rest_shared *s;
    unsigned worker;
    CURL *curl;                   /* NULL: closed */
    struct curl_slist *headers;
    bool connected;               /* the last request had an answer */
    unsigned generation;          /* of the credentials set on curl */
    unsigned sent;                /* on curl since it was made */
    char *answer;                 /* GW_REST_ANSWER_MAX bytes */
    size_t answer_len;
    bool answer_too_long;
    char error[CURL_ERROR_SIZE];
};

/* ---- the credentials file ------------------------------------------------------- */

/* An open file that holds a secret: a regular file others can neither
 * read nor write (the owner's group may read it: 640 with the gateway's
 * group suits Docker and systemd alike). */
static int check_secret_file(int fd, const char *path, dcm_error *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return dcm_fail(err, DCM_E_IO, -1, "credentials file %s: %s", path,
                        strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s is not a "
                        "file", path);
    if (st.st_mode & (S_IROTH | S_IWOTH))
        return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s is open to "
                        "others (mode %03o): chmod 600 %s (or 640 for the "
                        "gateway's group)", path,
                        (unsigned)(st.st_mode & 0777), path);
    return DCM_OK;
}

/* "user:password" alone on the first line (a line end after it is
 * allowed, nothing else): into out. The messages never show the text. */
static int parse_credentials(const char *text, size_t len, const char *path,
                             char *out, size_t size, dcm_error *err)
{
    size_t line = 0;
    while (line < len && text[line] != '\n' && text[line] != '\r')
        line++;
    size_t end = line;
    if (end < len && text[end] == '\r')
        end++;
    if (end < len && text[end] == '\n')
        end++;
    if (end != len)
        return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s: one line "
                        "user:password, nothing after it", path);
    const char *colon = memchr(text, ':', line);
    if (!colon || colon == text)
        return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s: the line "
                        "must be user:password", path);
    for (size_t i = 0; i < line; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7F)
            return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s: a "
                            "control character in user:password", path);
    if (line >= size)
        return dcm_fail(err, DCM_E_ARG, -1, "credentials file %s: longer "
                        "than %zu bytes", path, size - 1);
    memcpy(out, text, line);
    out[line] = '\0';
    return DCM_OK;
}

static int read_credentials(const char *path, char *out, size_t size,
                            dcm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "credentials file %s: %s", path,
                        strerror(errno));
    char text[GW_FORWARD_MAX_CREDENTIALS + 3]; /* and "\r\n", and one more */
    size_t len = 0;
    int rc = check_secret_file(fd, path, err);
    while (rc == DCM_OK && len < sizeof text) {
        ssize_t got = read(fd, text + len, sizeof text - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = dcm_fail(err, DCM_E_IO, -1, "credentials file %s: %s", path,
                          strerror(errno));
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (rc == DCM_OK && len == sizeof text)
        rc = dcm_fail(err, DCM_E_ARG, -1, "credentials file %s: longer than "
                      "%zu bytes", path, size - 1);
    if (rc == DCM_OK)
        rc = parse_credentials(text, len, path, out, size, err);
    explicit_bzero(text, sizeof text);
    return rc;
}

static int rest_reload(void *shared, dcm_error *err)
{
    rest_shared *s = shared;
    if (!s->credentials_file)
        return DCM_OK;
    char fresh[sizeof s->userpwd];
    if (read_credentials(s->credentials_file, fresh, sizeof fresh, err) < 0)
        return -1;
    pthread_mutex_lock(&s->lock);
    bool changed = strcmp(fresh, s->userpwd) != 0;
    memcpy(s->userpwd, fresh, sizeof fresh);
    s->generation++;
    unsigned generation = s->generation;
    pthread_mutex_unlock(&s->lock);
    explicit_bzero(fresh, sizeof fresh);
    if (changed && generation > 1)
        gw_log(GW_LOG_INFO, "forward.credentials_changed", "file=%s",
               s->credentials_file);
    return DCM_OK;
}

/* ---- the URL --------------------------------------------------------------------- */

static int url_part(CURLU *u, CURLUPart part, char **out)
{
    *out = NULL;
    return curl_url_get(u, part, out, 0) == CURLUE_OK ? 0 : -1;
}

/* url (http or https, no user, query or fragment) with "/instances"
 * added to its path into s->instances_url. */
static int make_instances_url(rest_shared *s, const char *url, bool has_user,
                              dcm_error *err)
{
    if (strlen(url) > GW_FORWARD_MAX_URL)
        return dcm_fail(err, DCM_E_ARG, -1, "the archive URL is longer "
                        "than %d bytes", GW_FORWARD_MAX_URL);
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *password = NULL, *query = NULL,
         *fragment = NULL, *path = NULL, *host = NULL, *whole = NULL;
    int rc = DCM_OK;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        url_part(u, CURLUPART_SCHEME, &scheme) < 0 ||
        url_part(u, CURLUPART_HOST, &host) < 0 ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        rc = dcm_fail(err, DCM_E_ARG, -1, "the archive URL %s is not an "
                      "http:// or https:// URL", url);
    else if (url_part(u, CURLUPART_USER, &user) == 0 ||
             url_part(u, CURLUPART_PASSWORD, &password) == 0)
        rc = dcm_fail(err, DCM_E_ARG, -1, "the archive URL holds a user: "
                      "give user and password in the credentials file");
    else if (url_part(u, CURLUPART_QUERY, &query) == 0 ||
             url_part(u, CURLUPART_FRAGMENT, &fragment) == 0)
        rc = dcm_fail(err, DCM_E_ARG, -1, "the archive URL %s has a query "
                      "or fragment: give the REST API's root", url);
    if (rc == DCM_OK) {
        url_part(u, CURLUPART_PATH, &path);
        size_t len = path ? strlen(path) : 0;
        while (len > 0 && path[len - 1] == '/')
            len--;
        char joined[GW_FORWARD_MAX_URL + 16];
        snprintf(joined, sizeof joined, "%.*s/instances", (int)len,
                 path ? path : "");
        if (curl_url_set(u, CURLUPART_PATH, joined, 0) != CURLUE_OK ||
            url_part(u, CURLUPART_URL, &whole) < 0 ||
            !(s->instances_url = strdup(whole)))
            rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    }
    /* Basic authentication in clear beyond this machine. */
    if (rc == DCM_OK && has_user && strcmp(scheme, "http") == 0 &&
        strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0 &&
        strcmp(host, "[::1]") != 0)
        gw_log(GW_LOG_WARN, "forward.plain_http", "url=%s reason=\"the "
               "password crosses the network in clear: use https\"", url);
    curl_free(scheme);
    curl_free(user);
    curl_free(password);
    curl_free(query);
    curl_free(fragment);
    curl_free(path);
    curl_free(host);
    curl_free(whole);
    curl_url_cleanup(u);
    return rc;
}

/* ---- setup ------------------------------------------------------------------------ */

static void rest_teardown(void *shared)
{
    rest_shared *s = shared;
    if (!s)
        return;
    explicit_bzero(s->userpwd, sizeof s->userpwd);
    free(s->instances_url);
    pthread_mutex_destroy(&s->lock);
    if (s->curl_started)
        curl_global_cleanup();
    free(s);
}

static void *rest_setup(const gw_forward_config *c, dcm_error *err)
{
    rest_shared *s = calloc(1, sizeof *s);
    if (!s) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->url = c->url;
    s->credentials_file = c->credentials_file;
    s->ca_file = c->tls_ca;
    s->timeout_ms = c->timeout_ms;
    s->curl_started = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    int rc = s->curl_started ? DCM_OK
                             : dcm_fail(err, DCM_E_IO, -1, "cannot start "
                                        "libcurl");
    if (rc == DCM_OK)
        rc = make_instances_url(s, c->url, c->credentials_file != NULL, err);
    if (rc == DCM_OK && s->ca_file && access(s->ca_file, R_OK) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "CA file %s: %s", s->ca_file,
                      strerror(errno));
    if (rc == DCM_OK)
        rc = rest_reload(s, err);
    if (rc < 0) {
        rest_teardown(s);
        return NULL;
    }
    return s;
}

/* ---- a worker's handle ------------------------------------------------------------ */

static size_t read_body(char *buf, size_t size, size_t count, void *ctx)
{
    FILE *file = ctx;
    size_t got = fread(buf, 1, size * count, file);
    return ferror(file) ? CURL_READFUNC_ABORT : got;
}

/* curl rewinds the body when it must send it again (a kept connection
 * the archive had closed). */
static int seek_body(void *ctx, curl_off_t offset, int origin)
{
    return fseeko(ctx, (off_t)offset, origin) == 0 ? CURL_SEEKFUNC_OK
                                                     : CURL_SEEKFUNC_FAIL;
}

/* The answer, bounded: a longer one ends the transfer. */
static size_t keep_answer(char *data, size_t size, size_t count, void *ctx)
{
    gw_fwd_link *l = ctx;
    size_t len = size * count;
    if (len > GW_REST_ANSWER_MAX - l->answer_len) {
        l->answer_too_long = true;
        return 0;
    }
    memcpy(l->answer + l->answer_len, data, len);
    l->answer_len += len;
    return len;
}

static gw_fwd_link *rest_link_new(void *shared, unsigned worker_id)
{
    gw_fwd_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (!(l->answer = malloc(GW_REST_ANSWER_MAX))) {
        free(l);
        return NULL;
    }
    l->s = shared;
    l->worker = worker_id;
    return l;
}

static bool rest_is_open(const gw_fwd_link *l)
{
    return l->curl && l->connected;
}

static void rest_close(gw_fwd_link *l, bool orderly, const char *why)
{
    (void)orderly; /* HTTP has nothing to say before closing */
    if (!l->curl)
        return;
    if (l->connected)
        gw_log(GW_LOG_INFO, "forward.connection_closed", "worker=%u sent=%u "
               "why=%s", l->worker, l->sent, why);
    curl_easy_cleanup(l->curl);
    curl_slist_free_all(l->headers);
    l->curl = NULL;
    l->headers = NULL;
    l->connected = false;
    l->sent = 0;
}

static void rest_link_free(gw_fwd_link *l)
{
    if (!l)
        return;
    rest_close(l, false, "stop");
    free(l->answer);
    free(l);
}

/* Orthanc (its web server) never answers "Expect: 100-continue": without
 * the empty Expect header curl would wait a second before each body. */
static const char *const header_lines[] = {
    "Content-Type: application/dicom", "Accept: application/json", "Expect:",
};

static bool open_handle(gw_fwd_link *l)
{
    const rest_shared *s = l->s;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    for (size_t i = 0; curl && i < sizeof header_lines / sizeof *header_lines;
         i++) {
        struct curl_slist *more = curl_slist_append(headers, header_lines[i]);
        if (!more) {
            curl_slist_free_all(headers);
            curl_easy_cleanup(curl);
            return false;
        }
        headers = more;
    }
    if (!curl)
        return false;
    long stall_s = (s->timeout_ms + 999) / 1000;
    curl_easy_setopt(curl, CURLOPT_URL, s->instances_url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, seek_body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, l->error);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms);
    /* No progress for the timeout, sending or awaiting the answer (the
     * archive storing a large file), ends it; a whole transfer may take
     * longer. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (s->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    l->curl = curl;
    l->headers = headers;
    l->generation = 0;
    l->sent = 0;
    return true;
}

/* The credentials as last read, if curl has older ones. */
static void use_credentials(gw_fwd_link *l)
{
    rest_shared *s = l->s;
    pthread_mutex_lock(&s->lock);
    if (l->generation != s->generation) {
        curl_easy_setopt(l->curl, CURLOPT_USERPWD, s->userpwd);
        l->generation = s->generation;
    }
    pthread_mutex_unlock(&s->lock);
}

/* 401, 403, 407: the file is read again (an operator may have fixed it;
 * a rotated secret is taken up), and the reason says where it came from. */
static void credentials_refused(gw_fwd_link *l, gw_fwd_answer *out)
{
    rest_shared *s = l->s;
    size_t used = strlen(out->detail);
    snprintf(out->detail + used, sizeof out->detail - used, " (%s%s)",
             s->credentials_file ? "credentials file " : "no credentials file "
             "given", s->credentials_file ? s->credentials_file : "");
    dcm_error err = {0};
    if (rest_reload(s, &err) < 0)
        gw_log(GW_LOG_ERROR, "forward.credentials_unreadable", "worker=%u "
               "reason=\"%s\"", l->worker, err.message);
}

/* curl could not finish: nothing was sent (no connection, TLS refused)
 * is the archive being away; a request cut short is a broken
 * connection, which the file counts. */
static void transfer_failed(gw_fwd_link *l, CURLcode rc, gw_fwd_answer *out)
{
    long request_bytes = 0;
    curl_easy_getinfo(l->curl, CURLINFO_REQUEST_SIZE, &request_bytes);
    out->kind = request_bytes > 0 ? GW_FWD_BROKEN : GW_FWD_AWAY;
    snprintf(out->status, sizeof out->status, "none");
    if (l->answer_too_long)
        snprintf(out->detail, sizeof out->detail, "the archive's answer is "
                 "longer than %u bytes", GW_REST_ANSWER_MAX);
    else
        snprintf(out->detail, sizeof out->detail, "%s: %s", l->s->url,
                 l->error[0] ? l->error : curl_easy_strerror(rc));
    l->connected = false;
}

static void note_connection(gw_fwd_link *l)
{
    long made = 0;
    curl_easy_getinfo(l->curl, CURLINFO_NUM_CONNECTS, &made);
    if (made > 0)
        gw_log(GW_LOG_INFO, "forward.connected", "worker=%u url=%s", l->worker,
               l->s->url);
    l->connected = true;
}

static void rest_send(gw_fwd_link *l, const char *path, const gw_scu_file *id,
                      gw_fwd_answer *out)
{
    (void)id; /* Orthanc reads the UIDs from the body */
    memset(out, 0, sizeof *out);
    if (!l->curl && !open_handle(l)) {
        out->kind = GW_FWD_AWAY;
        snprintf(out->detail, sizeof out->detail, "cannot start a libcurl "
                 "handle (out of memory)");
        return;
    }
    FILE *file = fopen(path, "rbe");
    struct stat st;
    if (!file || fstat(fileno(file), &st) < 0) {
        out->kind = GW_FWD_BROKEN;
        snprintf(out->detail, sizeof out->detail, "cannot read %s: %s", path,
                 strerror(errno));
        if (file)
            fclose(file);
        return;
    }
    use_credentials(l);
    l->answer_len = 0;
    l->answer_too_long = false;
    l->error[0] = '\0';
    curl_easy_setopt(l->curl, CURLOPT_READDATA, file);
    curl_easy_setopt(l->curl, CURLOPT_SEEKDATA, file);
    curl_easy_setopt(l->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)st.st_size);
    CURLcode rc = curl_easy_perform(l->curl);
    fclose(file);
    if (rc != CURLE_OK) {
        transfer_failed(l, rc, out);
        return;
    }
    note_connection(l);
    l->sent++;
    long http_status = 0;
    curl_easy_getinfo(l->curl, CURLINFO_RESPONSE_CODE, &http_status);
    gw_rest_answer answer;
    bool parsed = gw_rest_answer_parse(l->answer, l->answer_len, &answer) == 0;
    gw_rest_judge(http_status, &answer, parsed, out);
    if (http_status == 401 || http_status == 403 || http_status == 407)
        credentials_refused(l, out);
}

const gw_fwd_transport gw_fwd_rest = {
    .name = "rest",
    .needs_dicom = false,
    .setup = rest_setup,
    .reload = rest_reload,
    .teardown = rest_teardown,
    .link_new = rest_link_new,
    .send = rest_send,
    .is_open = rest_is_open,
    .close = rest_close,
    .link_free = rest_link_free,
};
