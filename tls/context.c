/* context.c - TLS contexts for the PS3.15 BCP 195 profiles, and the checks
 * every certificate of a peer's chain must pass beyond OpenSSL's own: no
 * SHA-1 or MD5 signatures, RSA keys of 2048 bits or more, EC keys of 256
 * bits or more, and no CA certificate used as a leaf. */
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int tls_fail(dcm_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->offset = -1;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *tls_openssl_reason(char *buf, size_t size)
{
    unsigned long code = ERR_get_error();
    if (!code) {
        snprintf(buf, size, "no reason given");
        return buf;
    }
    const char *reason = ERR_reason_error_string(code);
    snprintf(buf, size, "%s", reason ? reason : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* ---- profiles ---------------------------------------------------------------- */

typedef struct profile_def {
    const char *name;
    int min_version, max_version;
    const char *tls12_ciphers; /* OpenSSL names of the TLS 1.2 suites */
    const char *tls13_suites;
    const char *groups;        /* key exchange groups, strongest first */
} profile_def;

static const profile_def profiles[] = {
    [TLS_PROFILE_BCP195] = {
        "bcp195", TLS1_2_VERSION, TLS1_3_VERSION,
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
        "TLS_CHACHA20_POLY1305_SHA256",
        "X25519:P-256:P-384"},
    [TLS_PROFILE_MODIFIED_BCP195] = {
        "modified-bcp195", TLS1_2_VERSION, TLS1_3_VERSION,
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        "P-256:P-384:ffdhe2048:ffdhe3072"},
    [TLS_PROFILE_TLS13] = {
        "tls13", TLS1_3_VERSION, TLS1_3_VERSION,
        NULL,
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
        "TLS_CHACHA20_POLY1305_SHA256",
        "X25519:P-256:P-384"},
};

int tls_profile_parse(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (strcasecmp(name, profiles[i].name) == 0)
            return (int)i;
    return -1;
}

const char *tls_profile_name(tls_profile profile)
{
    return (unsigned)profile < sizeof profiles / sizeof profiles[0]
               ? profiles[profile].name : "?";
}

static int apply_profile(SSL_CTX *ssl_ctx, tls_profile profile,
                         dcm_error *err)
{
    if ((unsigned)profile >= sizeof profiles / sizeof profiles[0])
        return tls_fail(err, DCM_E_ARG, "unknown TLS profile %d", profile);
    const profile_def *p = &profiles[profile];
    char why[128];
    if (!SSL_CTX_set_min_proto_version(ssl_ctx, p->min_version) ||
        !SSL_CTX_set_max_proto_version(ssl_ctx, p->max_version) ||
        (p->tls12_ciphers &&
         !SSL_CTX_set_cipher_list(ssl_ctx, p->tls12_ciphers)) ||
        !SSL_CTX_set_ciphersuites(ssl_ctx, p->tls13_suites) ||
        !SSL_CTX_set1_groups_list(ssl_ctx, p->groups))
        return tls_fail(err, DCM_E_UNSUPPORTED, "TLS profile %s: %s", p->name,
                        tls_openssl_reason(why, sizeof why));
    if (profile == TLS_PROFILE_MODIFIED_BCP195)
        SSL_CTX_set_dh_auto(ssl_ctx, 1); /* DHE groups of >= 2048 bits */
    /* Security level 2: nothing under 112 bits of strength, which also
     * refuses RSA/DH under 2048 bits and SHA-1 in the handshake. */
    SSL_CTX_set_security_level(ssl_ctx, 2);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    /* Every connection is verified in full: no resumption that could
     * outlive a revocation or a reload (and no TLS 1.3 tickets sent that
     * could never be honoured). */
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ssl_ctx, 0);
    return DCM_OK;
}

/* ---- certificate checks -------------------------------------------------------- */

static pthread_once_t verdict_once = PTHREAD_ONCE_INIT;
static int verdict_slot = -1;

static void make_verdict_slot(void)
{
    verdict_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int tls_verdict_index(void)
{
    pthread_once(&verdict_once, make_verdict_slot);
    return verdict_slot;
}

/* OpenSSL's verification errors in the words an operator needs. */
static const char *verify_error_words(int code)
{
    switch (code) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return "certificate expired";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "certificate not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "unknown CA or missing intermediate certificate";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return "self-signed certificate";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "unknown CA: the chain ends in a root that is not trusted";
    case X509_V_ERR_CERT_REVOKED: return "certificate revoked";
    case X509_V_ERR_INVALID_PURPOSE:
        return "wrong key usage or extended key usage for this side";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        return "no CRL for the issuer (CRL checking is on)";
    case X509_V_ERR_CRL_HAS_EXPIRED: return "CRL expired";
    case X509_V_ERR_CRL_NOT_YET_VALID: return "CRL not yet valid";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: return "bad certificate signature";
    case X509_V_ERR_CA_MD_TOO_WEAK: return "signed with a weak digest";
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_EE_KEY_TOO_SMALL: return "key too small";
    case X509_V_ERR_INVALID_CA: return "issuer is not a CA";
    case X509_V_ERR_PATH_LENGTH_EXCEEDED: return "chain too long";
    case X509_V_ERR_HOSTNAME_MISMATCH: return "host name does not match";
    default: return X509_verify_cert_error_string(code);
    }
}

static bool self_signed(X509 *cert)
{
    return X509_check_issued(cert, cert) == X509_V_OK;
}

/* Our own rules for one certificate of the chain; NULL if it passes. */
static const char *extra_check(X509 *cert, int depth, bool server_side)
{
    int md_nid = 0, pk_nid = 0;
    if (!self_signed(cert) &&
        X509_get_signature_info(cert, &md_nid, &pk_nid, NULL, NULL) &&
        (md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md5_sha1))
        return "signed with SHA-1 or MD5";
    EVP_PKEY *key = X509_get0_pubkey(cert);
    if (!key)
        return "unreadable public key";
    int bits = EVP_PKEY_get_bits(key);
    int type = EVP_PKEY_get_base_id(key);
    if ((type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS) &&
        bits < TLS_MIN_RSA_BITS)
        return "RSA key under 2048 bits";
    if (type == EVP_PKEY_EC && bits < TLS_MIN_EC_BITS)
        return "EC key under 256 bits";
    if (depth == 0 && server_side && X509_check_ca(cert) != 0)
        return "a CA certificate used as a client certificate";
    return NULL;
}

static int verify_callback(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(
        store, SSL_get_ex_data_X509_STORE_CTX_idx());
    tls_verdict *verdict = ssl ? SSL_get_ex_data(ssl, tls_verdict_index())
                               : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    int code = X509_STORE_CTX_get_error(store);
    /* OpenSSL's security level reports weak keys and digests before our
     * check runs; our words for them are more precise. */
    bool weak = code == X509_V_ERR_EE_KEY_TOO_SMALL ||
                code == X509_V_ERR_CA_KEY_TOO_SMALL ||
                code == X509_V_ERR_CA_MD_TOO_WEAK;
    const char *reason = NULL;
    if (ok || weak)
        reason = extra_check(cert, X509_STORE_CTX_get_error_depth(store),
                             ssl && SSL_is_server(ssl));
    if (!reason && !ok)
        reason = verify_error_words(code);
    if (!reason)
        return 1;
    if (verdict && !verdict->reason[0]) {
        char issuer[200] = "";
        if (code == X509_V_ERR_UNABLE_TO_GET_CRL && cert) {
            X509_NAME_oneline(X509_get_issuer_name(cert), issuer,
                              sizeof issuer);
            snprintf(verdict->reason, sizeof verdict->reason,
                     "%s: none from %.100s (every CA of the chain needs one)",
                     reason, issuer);
        } else {
            snprintf(verdict->reason, sizeof verdict->reason, "%s", reason);
        }
    }
    if (ok)
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/* ---- loading ---------------------------------------------------------------------- */

int tls_check_key_file(const char *path, dcm_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return tls_fail(err, DCM_E_IO, "private key %s: %s", path,
                        strerror(errno));
    if (!S_ISREG(st.st_mode))
        return tls_fail(err, DCM_E_ARG, "private key %s is not a file", path);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return tls_fail(err, DCM_E_ARG, "private key %s is readable by group "
                        "or others: chmod 600 %s", path, path);
    return DCM_OK;
}

/* A file the context needs, with the operating system's words when it
 * cannot be read (OpenSSL's own message would be vaguer). */
static int readable(const char *what, const char *path, dcm_error *err)
{
    if (!path)
        return tls_fail(err, DCM_E_ARG, "no %s given", what);
    if (access(path, R_OK) < 0)
        return tls_fail(err, DCM_E_IO, "%s %s: %s", what, path,
                        strerror(errno));
    return DCM_OK;
}

static int load_identity(SSL_CTX *ssl_ctx, const char *cert_file,
                         const char *key_file, dcm_error *err)
{
    char why[128];
    int rc = readable("certificate", cert_file, err);
    if (rc == DCM_OK)
        rc = readable("private key", key_file, err);
    if (rc == DCM_OK)
        rc = tls_check_key_file(key_file, err);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert_file) != 1)
        return tls_fail(err, DCM_E_ARG, "certificate %s: %s", cert_file,
                        tls_openssl_reason(why, sizeof why));
    /* The key's own content never appears in a message: OpenSSL's reasons
     * describe the failure, not the bytes. */
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return tls_fail(err, DCM_E_ARG, "private key %s: %s", key_file,
                        tls_openssl_reason(why, sizeof why));
    if (SSL_CTX_check_private_key(ssl_ctx) != 1)
        return tls_fail(err, DCM_E_ARG, "private key %s does not belong to "
                        "certificate %s", key_file, cert_file);
    return DCM_OK;
}

static int load_crls(X509_STORE *store, const char *const *files, size_t count,
                     dcm_error *err)
{
    char why[128];
    for (size_t i = 0; i < count; i++) {
        int rc = readable("CRL", files[i], err);
        if (rc < 0)
            return rc;
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lookup || X509_load_crl_file(lookup, files[i], X509_FILETYPE_PEM) <= 0)
            return tls_fail(err, DCM_E_ARG, "CRL %s: %s", files[i],
                            tls_openssl_reason(why, sizeof why));
    }
    if (count > 0)
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
                                        X509_V_FLAG_CRL_CHECK_ALL);
    return DCM_OK;
}

static int load_trust(SSL_CTX *ssl_ctx, const char *ca_file,
                      const char *const *crl_files, size_t crl_count,
                      int purpose, dcm_error *err)
{
    char why[128];
    int rc = readable("CA bundle", ca_file, err);
    if (rc < 0)
        return rc;
    if (SSL_CTX_load_verify_locations(ssl_ctx, ca_file, NULL) != 1)
        return tls_fail(err, DCM_E_ARG, "CA bundle %s: %s", ca_file,
                        tls_openssl_reason(why, sizeof why));
    X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
    /* The purpose checks extended key usage (clientAuth for a site,
     * serverAuth for an archive) and the key usage bits. */
    X509_STORE_set_purpose(store, purpose);
    X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT);
    SSL_CTX_set_verify_depth(ssl_ctx, 8);
    return load_crls(store, crl_files, crl_count, err);
}

static tls_context *context_new(bool server, dcm_error *err)
{
    tls_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        tls_fail(err, DCM_E_NOMEM, "out of memory");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    ctx->server = server;
    ctx->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx->ssl_ctx) {
        free(ctx);
        tls_fail(err, DCM_E_NOMEM, "cannot make an OpenSSL context");
        return NULL;
    }
    return ctx;
}

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
              (s[n] >= 'A' && s[n] <= 'F')))
            return false;
    return n == 64;
}

static int set_pins(tls_context *ctx, const char *const *pins, size_t count,
                    dcm_error *err)
{
    if (count > TLS_MAX_PINS)
        return tls_fail(err, DCM_E_LIMIT, "at most %d pinned keys",
                        TLS_MAX_PINS);
    for (size_t i = 0; i < count; i++) {
        if (!is_hex64(pins[i]))
            return tls_fail(err, DCM_E_ARG, "pinned key \"%.80s\" is not 64 "
                            "hex digits (SHA-256 of the SubjectPublicKeyInfo)",
                            pins[i]);
        for (size_t j = 0; j < 64; j++)
            ctx->pins[i][j] = (char)(pins[i][j] | 0x20); /* lower case */
        ctx->pins[i][64] = '\0';
    }
    ctx->pin_count = count;
    return DCM_OK;
}

tls_context *tls_server_context_new(const tls_server_config *cfg,
                                    dcm_error *err)
{
    tls_context *ctx = context_new(true, err);
    if (!ctx)
        return NULL;
    int rc = apply_profile(ctx->ssl_ctx, cfg->profile, err);
    if (rc == DCM_OK)
        rc = load_identity(ctx->ssl_ctx, cfg->cert_file, cfg->key_file, err);
    if (rc == DCM_OK)
        rc = load_trust(ctx->ssl_ctx, cfg->ca_file, cfg->crl_files,
                        cfg->crl_count, X509_PURPOSE_SSL_CLIENT, err);
    if (rc == DCM_OK)
        rc = set_pins(ctx, cfg->pinned_spki, cfg->pinned_count, err);
    if (rc < 0) {
        tls_context_unref(ctx);
        return NULL;
    }
    int mode = SSL_VERIFY_PEER | (cfg->allow_no_client_cert
                                      ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    SSL_CTX_set_verify(ctx->ssl_ctx, mode, verify_callback);
    /* Tell clients which CAs we accept, so they pick the right cert. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
    if (names)
        SSL_CTX_set_client_CA_list(ctx->ssl_ctx, names);
    return ctx;
}

tls_context *tls_client_context_new(const tls_client_config *cfg,
                                    dcm_error *err)
{
    tls_context *ctx = context_new(false, err);
    if (!ctx)
        return NULL;
    int rc = apply_profile(ctx->ssl_ctx, cfg->profile, err);
    if (rc == DCM_OK && (cfg->cert_file || cfg->key_file)) {
        if (!cfg->cert_file || !cfg->key_file)
            rc = tls_fail(err, DCM_E_ARG, "a client certificate needs both "
                          "the certificate and the key file");
        else
            rc = load_identity(ctx->ssl_ctx, cfg->cert_file, cfg->key_file,
                               err);
    }
    if (rc == DCM_OK)
        rc = load_trust(ctx->ssl_ctx, cfg->ca_file, cfg->crl_files,
                        cfg->crl_count, X509_PURPOSE_SSL_SERVER, err);
    if (rc < 0) {
        tls_context_unref(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, verify_callback);
    return ctx;
}

tls_context *tls_context_ref(tls_context *ctx)
{
    if (ctx)
        atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

void tls_context_unref(tls_context *ctx)
{
    if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}
