/* match.c - which certificate belongs to which site: a site names one
 * property of its certificate (the whole subject, its common name, a
 * subject alternative name, or the SHA-256 of its public key), and a peer
 * is that site only if its verified certificate has it. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *prefix;
    tls_match_kind kind;
} kinds[] = {
    {"dn:", TLS_MATCH_SUBJECT},     {"cn:", TLS_MATCH_CN},
    {"san-dns:", TLS_MATCH_SAN_DNS}, {"san-uri:", TLS_MATCH_SAN_URI},
    {"san-email:", TLS_MATCH_SAN_EMAIL}, {"spki:", TLS_MATCH_SPKI},
};

static bool is_hex_digest(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 64 && s[n] == '\0';
}

int tls_match_parse(const char *text, tls_match *out, dcm_error *err)
{
    if (!text)
        return tls_fail(err, DCM_E_ARG, "no certificate match given");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncasecmp(text, kinds[i].prefix, n) != 0)
            continue;
        const char *value = text + n;
        if (!*value || strlen(value) >= sizeof out->value)
            return tls_fail(err, DCM_E_ARG, "\"%.80s\": the value after %s is "
                            "empty or too long", text, kinds[i].prefix);
        if (kinds[i].kind == TLS_MATCH_SPKI && !is_hex_digest(value))
            return tls_fail(err, DCM_E_ARG, "\"%.80s\": spki: takes the 64 hex "
                            "digits of a SHA-256", text);
        out->kind = kinds[i].kind;
        snprintf(out->value, sizeof out->value, "%s", value);
        return DCM_OK;
    }
    return tls_fail(err, DCM_E_ARG, "\"%.80s\": a certificate match is one of "
                    "dn:, cn:, san-dns:, san-uri:, san-email:, spki:", text);
}

/* A SAN of the certificate with this prefix equal to value (host names
 * compared case-insensitively, as DNS does). */
static bool has_san(const tls_identity *id, const char *prefix,
                    const char *value, bool ignore_case)
{
    size_t p = strlen(prefix);
    for (size_t i = 0; i < id->san_count; i++) {
        if (strncmp(id->sans[i], prefix, p) != 0)
            continue;
        const char *san = id->sans[i] + p;
        if (ignore_case ? strcasecmp(san, value) == 0 : strcmp(san, value) == 0)
            return true;
    }
    return false;
}

/* RFC 5280 7.5: the local part of an e-mail address is compared exactly,
 * the domain without regard to case. */
static bool same_email(const char *a, const char *b)
{
    const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');
    if (!at_a || !at_b || at_a - a != at_b - b)
        return false;
    return strncmp(a, b, (size_t)(at_a - a)) == 0 &&
           strcasecmp(at_a, at_b) == 0;
}

static bool has_email(const tls_identity *id, const char *value)
{
    for (size_t i = 0; i < id->san_count; i++)
        if (strncmp(id->sans[i], "email:", 6) == 0 &&
            same_email(id->sans[i] + 6, value))
            return true;
    return false;
}

bool tls_identity_matches(const tls_identity *id, const tls_match *m)
{
    if (!id || !id->has_certificate)
        return false;
    switch (m->kind) {
    case TLS_MATCH_SUBJECT: return strcmp(id->subject, m->value) == 0;
    case TLS_MATCH_CN: return strcasecmp(id->common_name, m->value) == 0;
    case TLS_MATCH_SAN_DNS: return has_san(id, "DNS:", m->value, true);
    case TLS_MATCH_SAN_URI: return has_san(id, "URI:", m->value, false);
    case TLS_MATCH_SAN_EMAIL: return has_email(id, m->value);
    case TLS_MATCH_SPKI: return strcasecmp(id->spki_sha256, m->value) == 0;
    }
    return false;
}
