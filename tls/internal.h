/*
 * internal.h - private to tls/: the context behind tls_context and what the
 * certificate checks and the transport share.
 */
#ifndef SIREN_TLS_INTERNAL_H
#define SIREN_TLS_INTERNAL_H

#include "tls.h"

#include <openssl/ssl.h>
#include <stdatomic.h>

struct tls_context {
    atomic_int refs;
    SSL_CTX *ssl_ctx;
    bool server;
    size_t pin_count;
    char pins[TLS_MAX_PINS][65]; /* lower-case hex SPKI SHA-256 */
};

/* Why certificate verification failed, kept per connection by the verify
 * callback (OpenSSL only reports the first error code): the words a log
 * line and a security event carry. */
typedef struct tls_verdict {
    char reason[160];
} tls_verdict;

/* The SSL ex_data slot holding a connection's tls_verdict. */
int tls_verdict_index(void);

/* printf-style dcm_fail for this module. */
int tls_fail(dcm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The newest OpenSSL error in words (and the queue emptied). */
const char *tls_openssl_reason(char *buf, size_t size);

/* Fills id from the peer's certificate and the session. */
void tls_identity_fill(SSL *ssl, tls_identity *id);

#endif /* SIREN_TLS_INTERNAL_H */
