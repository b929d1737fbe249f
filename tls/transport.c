/* transport.c - the TLS transport: the handshake within a deadline on a
 * non-blocking socket, then SSL_read/SSL_write behind the dcm_transport
 * interface, and the peer's identity read from its certificate. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct tls_transport {
    dcm_transport base; /* first: the transport is the tls_transport */
    SSL *ssl;
    int fd;
    tls_context *ctx;
    tls_verdict verdict;
    tls_identity identity;
} tls_transport;

static const dcm_transport_ops tls_ops;

void tls_thread_done(void)
{
    OPENSSL_thread_stop();
}

const tls_identity *tls_transport_identity(const dcm_transport *t)
{
    if (!t || t->ops != &tls_ops)
        return NULL;
    return &((const tls_transport *)t)->identity;
}

/* ---- waiting -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for what OpenSSL asked for (ssl_error WANT_READ or WANT_WRITE)
 * until deadline (< 0: none). */
static int wait_for(tls_transport *t, int ssl_error, int64_t deadline)
{
    int timeout = -1;
    if (deadline >= 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return DCM_E_TIMEOUT;
        timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    struct pollfd p = {.fd = t->fd,
                       .events = ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                                   : POLLIN};
    int ready;
    do {
        ready = poll(&p, 1, timeout);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0)
        return DCM_E_IO;
    return ready == 0 ? DCM_E_TIMEOUT : DCM_OK;
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* ---- identity --------------------------------------------------------------------- */

static void name_text(const X509_NAME *name, char *out, size_t size)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return;
    /* RFC 2253 with control and non-ASCII characters escaped: what the
     * peer wrote cannot inject anything into a log line. */
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, out, (int)size - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}

/* Printable ASCII copy of untrusted text (SANs), others as '?'. */
static void printable(const unsigned char *text, int len, char *out,
                      size_t size)
{
    size_t n = 0;
    for (int i = 0; i < len && n + 1 < size; i++)
        out[n++] = text[i] >= 0x20 && text[i] < 0x7F ? (char)text[i] : '?';
    out[n] = '\0';
}

static void common_name(X509_NAME *name, char *out, size_t size)
{
    out[0] = '\0';
    int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    X509_NAME_ENTRY *entry = at >= 0 ? X509_NAME_get_entry(name, at) : NULL;
    unsigned char *utf8 = NULL;
    int len = entry ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry))
                    : -1;
    if (len >= 0)
        printable(utf8, len, out, size);
    OPENSSL_free(utf8);
}

static void hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static void spki_digest(X509 *cert, char out[65])
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    unsigned char md[32];
    unsigned int md_len = 0;
    out[0] = '\0';
    if (len > 0 && EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(),
                              NULL) && md_len == 32)
        hex(md, 32, out);
    OPENSSL_free(der);
}

static void serial_text(X509 *cert, char *out, size_t size)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *text = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, size, "%s", text ? text : "");
    OPENSSL_free(text);
    BN_free(bn);
}

static void time_text(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    out[0] = '\0';
    if (t && ASN1_TIME_to_tm(t, &tm))
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void san_list(X509 *cert, tls_identity *id)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
                                            NULL);
    int count = names ? sk_GENERAL_NAME_num(names) : 0;
    for (int i = 0; i < count && id->san_count < TLS_MAX_SANS; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const char *prefix = gn->type == GEN_DNS     ? "DNS:"
                             : gn->type == GEN_URI   ? "URI:"
                             : gn->type == GEN_EMAIL ? "email:"
                                                     : NULL;
        char *out = id->sans[id->san_count];
        if (prefix) {
            const ASN1_IA5STRING *s = gn->d.ia5;
            size_t p = strlen(prefix);
            memcpy(out, prefix, p);
            printable(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), out + p,
                      sizeof id->sans[0] - p);
            id->san_count++;
        } else if (gn->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *ip = gn->d.ip;
            int len = ASN1_STRING_length(ip);
            char text[INET6_ADDRSTRLEN] = "?";
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6,
                          ASN1_STRING_get0_data(ip), text, sizeof text);
            snprintf(out, sizeof id->sans[0], "IP:%s", text);
            id->san_count++;
        }
    }
    GENERAL_NAMES_free(names);
}

void tls_identity_fill(SSL *ssl, tls_identity *id)
{
    memset(id, 0, sizeof *id);
    snprintf(id->protocol, sizeof id->protocol, "%s", SSL_get_version(ssl));
    snprintf(id->cipher, sizeof id->cipher, "%s", SSL_get_cipher_name(ssl));
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert)
        return;
    id->has_certificate = true;
    name_text(X509_get_subject_name(cert), id->subject, sizeof id->subject);
    name_text(X509_get_issuer_name(cert), id->issuer, sizeof id->issuer);
    common_name(X509_get_subject_name(cert), id->common_name,
                sizeof id->common_name);
    serial_text(cert, id->serial, sizeof id->serial);
    time_text(X509_get0_notAfter(cert), id->not_after, sizeof id->not_after);
    spki_digest(cert, id->spki_sha256);
    unsigned char md[32];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) && md_len == 32)
        hex(md, 32, id->cert_sha256);
    san_list(cert, id);
}

/* ---- the transport ----------------------------------------------------------------- */

/* Why an SSL call failed, in words: our verdict on the certificate, then
 * OpenSSL's verification result, then its error queue. */
/* The refused certificate, for the security event: subject and serial
 * (escaped by RFC 2253 printing), or "" if none was sent. */
static const char *refused_certificate(tls_transport *t, char *out,
                                       size_t size)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    out[0] = '\0';
    if (cert) {
        char subject[256], serial[80];
        name_text(X509_get_subject_name(cert), subject, sizeof subject);
        serial_text(cert, serial, sizeof serial);
        snprintf(out, size, " (subject %s, serial %s)", subject, serial);
    }
    return out;
}

static int failure(tls_transport *t, int ssl_error, const char *what,
                   dcm_error *err)
{
    char why[128], cert[400];
    if (t->verdict.reason[0])
        return tls_fail(err, DCM_E_REJECTED, "%s: %s rejected: %s%s",
                        t->base.peer, what, t->verdict.reason,
                        refused_certificate(t, cert, sizeof cert));
    long verify = SSL_get_verify_result(t->ssl);
    if (verify != X509_V_OK && SSL_get0_peer_certificate(t->ssl))
        return tls_fail(err, DCM_E_REJECTED, "%s: %s rejected: %s%s",
                        t->base.peer, what,
                        X509_verify_cert_error_string(verify),
                        refused_certificate(t, cert, sizeof cert));
    if (ssl_error == SSL_ERROR_ZERO_RETURN ||
        (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0))
        return tls_fail(err, DCM_E_CLOSED, "%s closed the connection during "
                        "the %s", t->base.peer, what);
    if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return tls_fail(err, errno == ECONNRESET || errno == EPIPE
                                 ? DCM_E_CLOSED : DCM_E_IO,
                        "%s: %s: %s", t->base.peer, what, strerror(errno));
    /* A peer without the certificate we require is refused like a bad
     * one; other failures (no common protocol or suite, the peer's alert)
     * are not about who the peer is. */
    bool no_certificate = ERR_GET_REASON(ERR_peek_error()) ==
                          SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE;
    tls_openssl_reason(why, sizeof why);
    if (no_certificate)
        return tls_fail(err, DCM_E_REJECTED, "%s: %s rejected: no client "
                        "certificate", t->base.peer, what);
    return tls_fail(err, DCM_E_INVALID, "%s: %s failed: %s", t->base.peer,
                    what, why);
}

static long tls_read(dcm_transport *base, void *buf, size_t len,
                     int timeout_ms, dcm_error *err)
{
    tls_transport *t = (tls_transport *)base;
    int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(t->ssl, buf, len, &got) == 1)
            return (long)got;
        int e = SSL_get_error(t->ssl, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return failure(t, e, "read", err);
        int rc = wait_for(t, e, deadline);
        if (rc == DCM_E_TIMEOUT)
            return tls_fail(err, rc, "%s: timed out waiting for data",
                            base->peer);
        if (rc < 0)
            return tls_fail(err, rc, "%s: %s", base->peer, strerror(errno));
    }
}

static int tls_write(dcm_transport *base, const void *buf, size_t len,
                     int timeout_ms, dcm_error *err)
{
    tls_transport *t = (tls_transport *)base;
    int64_t deadline = deadline_after(timeout_ms);
    const uint8_t *p = buf;
    while (len > 0) {
        size_t put = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_write_ex(t->ssl, p, len, &put) == 1) {
            p += put;
            len -= put;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return failure(t, e, "write", err);
        int rc = wait_for(t, e, deadline);
        if (rc == DCM_E_TIMEOUT)
            return tls_fail(err, rc, "%s: timed out waiting to send",
                            base->peer);
        if (rc < 0)
            return tls_fail(err, rc, "%s: %s", base->peer, strerror(errno));
    }
    return DCM_OK;
}

static void tls_close(dcm_transport *base)
{
    tls_transport *t = (tls_transport *)base;
    if (t->ssl) {
        /* close_notify, best effort: the socket is non-blocking and the
         * peer's answer is not awaited. */
        if (SSL_is_init_finished(t->ssl))
            SSL_shutdown(t->ssl);
        SSL_free(t->ssl);
    }
    if (t->fd >= 0)
        close(t->fd);
    tls_context_unref(t->ctx);
    free(t);
}

static const dcm_transport_ops tls_ops = {
    .read = tls_read,
    .write = tls_write,
    .close = tls_close,
};

/* ---- a socket BIO that never raises SIGPIPE ---------------------------------
 * OpenSSL's own socket BIO writes with write(), which raises SIGPIPE when
 * the peer is gone and kills a process that does not ignore it. This one
 * sends with MSG_NOSIGNAL, as the plain TCP transport does. */

static int nosig_write(BIO *bio, const char *data, int len)
{
    int fd = *(const int *)BIO_get_data(bio);
    ssize_t put = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    BIO_clear_retry_flags(bio);
    if (put < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)put;
}

static int nosig_read(BIO *bio, char *data, int len)
{
    int fd = *(const int *)BIO_get_data(bio);
    ssize_t got = recv(fd, data, (size_t)len, 0);
    BIO_clear_retry_flags(bio);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_read(bio);
    return (int)got;
}

static long nosig_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)bio;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int nosig_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void make_nosig_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "siren socket");
    if (m && BIO_meth_set_write(m, nosig_write) &&
        BIO_meth_set_read(m, nosig_read) && BIO_meth_set_ctrl(m, nosig_ctrl) &&
        BIO_meth_set_create(m, nosig_create))
        nosig_method = m;
}

/* A BIO on t's socket (the BIO points at t->fd, which outlives it). */
static BIO *socket_bio(tls_transport *t)
{
    pthread_once(&nosig_once, make_nosig_method);
    BIO *bio = nosig_method ? BIO_new(nosig_method) : NULL;
    if (bio)
        BIO_set_data(bio, &t->fd);
    return bio;
}

static tls_transport *transport_new(tls_context *ctx, int fd, const char *peer,
                                    dcm_error *err)
{
    tls_transport *t = calloc(1, sizeof *t);
    if (!t) {
        close(fd);
        tls_fail(err, DCM_E_NOMEM, "out of memory");
        return NULL;
    }
    t->base.ops = &tls_ops;
    snprintf(t->base.peer, sizeof t->base.peer, "%s", peer ? peer : "?");
    t->base.identity = &t->identity;
    t->fd = fd;
    t->ctx = tls_context_ref(ctx);
    int flags = fcntl(fd, F_GETFL);
    t->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = t->ssl ? socket_bio(t) : NULL;
    if (bio)
        SSL_set_bio(t->ssl, bio, bio); /* the SSL owns it from here */
    if (!t->ssl || !bio || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        !SSL_set_ex_data(t->ssl, tls_verdict_index(), &t->verdict)) {
        tls_close(&t->base);
        tls_fail(err, DCM_E_NOMEM, "cannot set up TLS on %s", peer);
        return NULL;
    }
    return t;
}

/* A pinned key, if pins are configured, is the only acceptable one. */
static bool pinned(const tls_context *ctx, const tls_identity *id)
{
    if (ctx->pin_count == 0)
        return true;
    for (size_t i = 0; i < ctx->pin_count; i++)
        if (strcmp(ctx->pins[i], id->spki_sha256) == 0)
            return true;
    return false;
}

static int handshake(tls_transport *t, bool server, int timeout_ms,
                     dcm_error *err)
{
    int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int rc = server ? SSL_accept(t->ssl) : SSL_connect(t->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(t->ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return failure(t, e, "TLS handshake", err);
        int wait = wait_for(t, e, deadline);
        if (wait == DCM_E_TIMEOUT)
            return tls_fail(err, wait, "%s: TLS handshake not done in %d ms",
                            t->base.peer, timeout_ms);
        if (wait < 0)
            return tls_fail(err, wait, "%s: %s", t->base.peer, strerror(errno));
    }
    tls_identity_fill(t->ssl, &t->identity);
    if (!pinned(t->ctx, &t->identity))
        return tls_fail(err, DCM_E_REJECTED, "%s: TLS handshake rejected: key "
                        "not among the pinned keys (SPKI SHA-256 %s)",
                        t->base.peer, t->identity.spki_sha256);
    return DCM_OK;
}

dcm_transport *tls_accept(tls_context *ctx, int fd, const char *peer,
                          int timeout_ms, dcm_error *err)
{
    if (!ctx->server) {
        close(fd);
        tls_fail(err, DCM_E_ARG, "a client context cannot accept");
        return NULL;
    }
    tls_transport *t = transport_new(ctx, fd, peer, err);
    if (!t)
        return NULL;
    if (handshake(t, true, timeout_ms, err) < 0) {
        tls_close(&t->base);
        return NULL;
    }
    return &t->base;
}

/* The name the server certificate must carry: an IP address (matched
 * against IP SANs) or a host name (DNS SANs, also sent as SNI). */
static int expect_name(SSL *ssl, const char *host_name)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, host_name, addr) == 1 ||
        inet_pton(AF_INET6, host_name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host_name)
                   ? 0 : -1;
    return SSL_set_tlsext_host_name(ssl, host_name) &&
                   SSL_set1_host(ssl, host_name)
               ? 0 : -1;
}

/* A client's TLS 1.3 session becomes resumable when a ticket arrives. */
static bool ticket_received(const tls_transport *t)
{
    const SSL_SESSION *session = SSL_get0_session(t->ssl);
    return session && SSL_SESSION_is_resumable(session);
}

int tls_transport_await_acceptance(dcm_transport *base, int timeout_ms,
                                   dcm_error *err)
{
    tls_transport *t = (tls_transport *)base;
    if (base->ops != &tls_ops || SSL_is_server(t->ssl) ||
        SSL_version(t->ssl) < TLS1_3_VERSION)
        return DCM_OK;
    int64_t deadline = deadline_after(timeout_ms);
    while (!ticket_received(t)) {
        unsigned char byte;
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(t->ssl, &byte, 1, &got) == 1)
            return DCM_OK; /* the server talks: it took us */
        int e = SSL_get_error(t->ssl, 0);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return failure(t, e, "acceptance of our certificate", err);
        if (ticket_received(t))
            break;
        int rc = wait_for(t, e, deadline);
        if (rc == DCM_E_TIMEOUT)
            break; /* no tickets from this server, and no refusal */
        if (rc < 0)
            return tls_fail(err, rc, "%s: %s", base->peer, strerror(errno));
    }
    return DCM_OK;
}

dcm_transport *tls_connect(tls_context *ctx, int fd, const char *peer,
                           const char *host_name, int timeout_ms,
                           dcm_error *err)
{
    if (ctx->server) {
        close(fd);
        tls_fail(err, DCM_E_ARG, "a server context cannot connect");
        return NULL;
    }
    tls_transport *t = transport_new(ctx, fd, peer, err);
    if (!t)
        return NULL;
    if (host_name && expect_name(t->ssl, host_name) < 0) {
        tls_close(&t->base);
        tls_fail(err, DCM_E_ARG, "cannot check host name %s", host_name);
        return NULL;
    }
    if (handshake(t, false, timeout_ms, err) < 0) {
        tls_close(&t->base);
        return NULL;
    }
    return &t->base;
}
