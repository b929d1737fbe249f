/*
 * tls.h - DICOM-TLS for SIREN (PS3.15 Annex B) on OpenSSL 3: contexts for
 * the BCP 195 profiles, client-certificate validation with the checks a
 * registry needs, the peer's identity, and TLS transports that plug into
 * the network layer of dicom.h.
 *
 * Errors use dcm_error: a failed handshake says why in words ("certificate
 * expired", "unknown CA or missing intermediate", "revoked", ...), never
 * with key material.
 *
 * Threads: a tls_context is immutable once made and may be shared by any
 * number of threads (reference counted; tls_context_ref/unref are
 * thread-safe). A transport is used by one thread at a time. Reloading
 * certificates means making a new context; transports already running
 * keep the context they started with.
 */
#ifndef SIREN_TLS_H
#define SIREN_TLS_H

#include "dicom.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Profiles (PS3.15 Annex B). The retired ones (TLS 1.0/1.1, CBC, 3DES,
 * NULL, anonymous) are not offered at all. */
typedef enum tls_profile {
    /* B.12 BCP 195 RFC 8996/9325 (default): TLS 1.2 and 1.3, ECDHE key
     * exchange, AEAD suites only (AES-GCM, ChaCha20-Poly1305), the
     * server's preference. */
    TLS_PROFILE_BCP195 = 0,
    /* B.13 Modified BCP 195: TLS 1.2 and 1.3, AES-GCM only, ECDHE on NIST
     * curves or DHE of 2048 bits or more. */
    TLS_PROFILE_MODIFIED_BCP195,
    /* TLS 1.3 only. */
    TLS_PROFILE_TLS13,
} tls_profile;

/* "bcp195", "modified-bcp195", "tls13" -> profile; -1 if unknown. */
int tls_profile_parse(const char *name);
const char *tls_profile_name(tls_profile profile);

#define TLS_MIN_RSA_BITS 2048
#define TLS_MIN_EC_BITS 256
#define TLS_MAX_PINS 16

typedef struct tls_server_config {
    tls_profile profile;
    const char *cert_file; /* our certificate (chain), PEM */
    const char *key_file;  /* our private key, PEM: refused if readable by
                              group or others */
    const char *ca_file;   /* CA bundle site certificates must chain to */
    const char *const *crl_files; /* PEM CRLs; checked for every
                                     certificate of the chain when given */
    size_t crl_count;
    bool allow_no_client_cert; /* default false: a certificate is required */
    /* Optional pinning: hex SHA-256 of the client's SubjectPublicKeyInfo;
     * when any is given, only those keys are accepted. */
    const char *const *pinned_spki;
    size_t pinned_count;
} tls_server_config;

typedef struct tls_client_config {
    tls_profile profile;
    const char *ca_file;     /* CAs the server certificate must chain to */
    const char *cert_file;   /* optional client certificate and key */
    const char *key_file;
    const char *const *crl_files;
    size_t crl_count;
} tls_client_config;

typedef struct tls_context tls_context;

/* Makes a context: loads and checks the certificate, the key (and that
 * they match), the CA bundle and the CRLs. Owned by the caller
 * (tls_context_unref). */
tls_context *tls_server_context_new(const tls_server_config *config,
                                    dcm_error *err);
tls_context *tls_client_context_new(const tls_client_config *config,
                                    dcm_error *err);
tls_context *tls_context_ref(tls_context *ctx);
void tls_context_unref(tls_context *ctx);

/* Frees what OpenSSL keeps per thread (its random generators). A thread
 * that ran TLS calls it last, before it reports itself done: OpenSSL
 * would otherwise free them only after the thread function returns,
 * which a process exiting at that moment never sees (a leak at exit). */
void tls_thread_done(void);

/* Who the peer proved to be: its certificate. */
#define TLS_MAX_SANS 8

typedef struct tls_identity {
    char subject[512];     /* RFC 2253, most specific first, as printed by
                              openssl x509 -noout -subject -nameopt RFC2253,
                              e.g. "CN=site-a.example.org,O=Site A" */
    char common_name[256];
    char issuer[512];
    char serial[128];      /* hex */
    char not_after[32];    /* "2027-11-29T10:00:00Z" */
    char spki_sha256[65];  /* hex SHA-256 of the SubjectPublicKeyInfo */
    char cert_sha256[65];  /* hex SHA-256 of the whole certificate */
    size_t san_count;
    char sans[TLS_MAX_SANS][256]; /* "DNS:host", "URI:...", "email:...",
                                     "IP:127.0.0.1" */
    char protocol[16];     /* "TLSv1.3" */
    char cipher[64];
    bool has_certificate;  /* false only when no certificate was required */
} tls_identity;

/* The identity of a transport made by tls_accept or tls_connect (NULL for
 * another kind of transport). Borrowed from the transport. */
const tls_identity *tls_transport_identity(const dcm_transport *transport);

/* Runs the server side of the handshake on a connected socket within
 * timeout_ms and returns a transport (it owns fd from here, also on
 * failure). On failure: NULL, DCM_E_REJECTED for a peer certificate that
 * does not pass or is missing (err says why in words: a security event),
 * DCM_E_INVALID for a handshake that fails otherwise (no common protocol
 * or suite, an alert from the peer), DCM_E_TIMEOUT, DCM_E_CLOSED,
 * DCM_E_IO. The transport never raises SIGPIPE. With TLS 1.3 a client's
 * tls_connect returns before the server has judged the client's
 * certificate: a refused client learns it on its first read. */
dcm_transport *tls_accept(tls_context *ctx, int fd, const char *peer,
                          int timeout_ms, dcm_error *err);
/* The client side: verifies the server's certificate against the CA and
 * host_name (also sent as SNI). */
dcm_transport *tls_connect(tls_context *ctx, int fd, const char *peer,
                           const char *host_name, int timeout_ms,
                           dcm_error *err);
/* For a client whose server never answers (syslog): with TLS 1.3 the
 * server judges our certificate after tls_connect has returned, and a
 * refusal is an alert that the first write does not see (the bytes are
 * acknowledged by TCP and dropped). Waits up to timeout_ms for the
 * server's verdict: a session ticket (sent once the client's certificate
 * has passed) or data is acceptance, DCM_OK; an alert or a close is the
 * refusal, DCM_E_INVALID/DCM_E_CLOSED with the alert in err; a server
 * that sends no tickets is taken as accepting once timeout_ms has
 * passed. DCM_OK at once for TLS 1.2, whose handshake holds the verdict,
 * and for other transports. Data the server sent while waiting is
 * dropped. */
int tls_transport_await_acceptance(dcm_transport *transport, int timeout_ms,
                                   dcm_error *err);

/* ---- sites: which certificate belongs to which site ------------------ */

typedef enum tls_match_kind {
    TLS_MATCH_SUBJECT,   /* "dn:CN=...,O=..." whole subject, RFC 2253 */
    TLS_MATCH_CN,        /* "cn:site-a.example.org" subject common name */
    TLS_MATCH_SAN_DNS,   /* "san-dns:host" */
    TLS_MATCH_SAN_URI,   /* "san-uri:https://..." */
    TLS_MATCH_SAN_EMAIL, /* "san-email:pacs@site" */
    TLS_MATCH_SPKI,      /* "spki:<64 hex>" SHA-256 of the public key */
} tls_match_kind;

typedef struct tls_match {
    tls_match_kind kind;
    char value[512];
} tls_match;

/* Parses "kind:value" (kinds above; case of hex and kind ignored). */
int tls_match_parse(const char *text, tls_match *out, dcm_error *err);
/* True if the identity's certificate satisfies the match: dn and
 * san-uri exactly, cn, san-dns and spki without regard to case, san-email
 * with the local part exact and the domain without regard to case. */
bool tls_identity_matches(const tls_identity *id, const tls_match *match);

/* Checks that a private key file is not readable by group or others
 * (keys are secrets: a world-readable key is refused with what to do). */
int tls_check_key_file(const char *path, dcm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_TLS_H */
