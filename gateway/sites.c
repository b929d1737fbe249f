/* sites.c - the table of sites, policies, TLS context and association
 * limits (sites.h). */
#include "sites.h"

#include "anon.h"
#include "gateway.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gw_sites *gw_sites_new(void)
{
    gw_sites *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    dcm_net_limits_default(&t->limits);
    t->plain_metrics_slot = gw_metrics_slot("(plain)");
    return t;
}

gw_sites *gw_sites_ref(gw_sites *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void gw_sites_unref(gw_sites *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->count; i++)
        pol_policy_unref(t->sites[i].policy);
    pol_policy_unref(t->plain_policy);
    tls_context_unref(t->tls);
    free(t);
}

const gw_site *gw_sites_by_ae(const gw_sites *t, const char *ae)
{
    for (size_t i = 0; i < t->count; i++)
        for (size_t j = 0; j < t->sites[i].aet_count; j++)
            if (strcmp(t->sites[i].aets[j], ae) == 0)
                return &t->sites[i];
    return NULL;
}

const gw_site *gw_sites_by_name(const gw_sites *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->sites[i].name, name) == 0)
            return &t->sites[i];
    return NULL;
}

bool gw_sites_plain_allows(const gw_sites *t, const char *ae)
{
    if (t->plain_calling_count == 0)
        return true;
    for (size_t i = 0; i < t->plain_calling_count; i++)
        if (strcmp(t->plain_calling[i], ae) == 0)
            return true;
    return false;
}

/* ---- from the configuration ---------------------------------------------------------- */

size_t gw_print_diags(const pol_diags *d, bool with_warnings)
{
    size_t warnings = 0;
    for (size_t i = 0; i < d->count; i++) {
        char line[1024];
        warnings += d->items[i].warning;
        if (!d->items[i].warning || with_warnings)
            fprintf(stderr, "%s\n", pol_diag_format(&d->items[i], line,
                                                      sizeof line));
    }
    return warnings;
}

pol_policy *gw_policy_load(const char *path, bool with_warnings,
                           size_t *warnings)
{
    pol_diags diags = {0};
    pol_policy *p = pol_policy_load(path, pol_lookup_env, NULL, &diags);
    if (p)
        anon_check(p, &diags);
    size_t count = gw_print_diags(&diags, with_warnings);
    if (warnings)
        *warnings = count;
    if (p && diags.errors) {
        pol_policy_unref(p);
        p = NULL;
    }
    pol_diags_free(&diags);
    return p;
}

/* A site's (or the plain listener's) policy, logged. */
static pol_policy *compile_policy(const char *path, const char *owner)
{
    pol_policy *p = gw_policy_load(path, true, NULL);
    if (p)
        gw_log(GW_LOG_INFO, "policy.loaded", "file=%s policy=%s version=%u "
               "policy_sha256=%s for=%s", path, pol_policy_name(p),
               pol_policy_version(p), pol_policy_hash(p), owner);
    else
        gw_log(GW_LOG_ERROR, "policy.failed", "file=%s for=%s", path, owner);
    return p;
}

static int load_site(gw_site *s, const gw_site_config *sc, dcm_error *err)
{
    memcpy(s->name, sc->name, sizeof s->name);
    if (tls_match_parse(sc->match, &s->match, err) < 0)
        return -1;
    memcpy(s->aets, sc->aets, sizeof s->aets);
    s->aet_count = sc->aet_count;
    s->metrics_slot = gw_metrics_slot(s->name);
    s->policy = compile_policy(sc->policy, s->name);
    if (!s->policy)
        return dcm_fail(err, DCM_E_INVALID, -1, "policy %s of site %s does "
                        "not compile", sc->policy, s->name);
    return 0;
}

/* The certificates, key and CRLs are read here, once for the table. */
static int load_tls(gw_sites *t, const gw_config *c, dcm_error *err)
{
    const char *crls[GW_MAX_CRLS], *pins[GW_MAX_PINS];
    for (size_t i = 0; i < c->crl_count; i++)
        crls[i] = c->crls[i];
    for (size_t i = 0; i < c->pin_count; i++)
        pins[i] = c->pins[i];
    tls_server_config tc = {
        .profile = (tls_profile)tls_profile_parse(c->tls_profile),
        .cert_file = c->tls_cert, .key_file = c->tls_key,
        .ca_file = c->sites_ca, .crl_files = crls, .crl_count = c->crl_count,
        .pinned_spki = pins, .pinned_count = c->pin_count};
    t->tls = tls_server_context_new(&tc, err);
    return t->tls ? 0 : -1;
}

void gw_sites_set_limits(gw_sites *t, const gw_listen_limits *l)
{
    t->limits.max_pdu_bytes = l->max_pdu;
    t->limits.dimse_timeout_ms = l->timeout_s * 1000;
    t->limits.idle_timeout_ms = l->idle_timeout_s * 1000;
    t->limits.artim_timeout_ms = l->artim_timeout_s * 1000;
    t->max_associations = l->max_associations;
    t->max_handshakes = l->max_handshakes;
    t->handshake_timeout_ms = l->handshake_timeout_s * 1000;
}

gw_sites *gw_sites_load(const gw_config *c, dcm_error *err)
{
    gw_sites *t = gw_sites_new();
    if (!t) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    memcpy(t->aet, c->aet, sizeof t->aet);
    gw_sites_set_limits(t, &c->limits);
    t->spool_quota = c->spool_quota;
    int rc = 0;
    for (size_t i = 0; i < c->site_count && rc == 0; i++, t->count++)
        rc = load_site(&t->sites[i], &c->sites[i], err);
    memcpy(t->plain_calling, c->plain_calling, sizeof c->plain_calling);
    t->plain_calling_count = c->plain_calling_count;
    if (rc == 0 && c->plain_policy[0] &&
        !(t->plain_policy = compile_policy(c->plain_policy, "(plain)")))
        rc = dcm_fail(err, DCM_E_INVALID, -1, "policy %s of the plain "
                      "listener does not compile", c->plain_policy);
    if (rc == 0 && c->tls_port[0])
        rc = load_tls(t, c, err);
    if (rc < 0) {
        gw_sites_unref(t);
        return NULL;
    }
    return t;
}
