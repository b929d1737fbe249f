/*
 * sites.h - who may send to the gateway, and under which rules: the sites
 * of the DICOM-TLS listener (the certificate that proves each, its calling
 * AE titles, its policy), the plain listener's calling AE titles and
 * policy, the TLS context, and the limits of new associations. Internal
 * to gateway/.
 *
 * One immutable, reference-counted table. The service builds it from the
 * configuration at start and again at each SIGHUP, and swaps it in whole:
 * an association keeps the table it started with until its release (its
 * site, certificate rules and reject lines do not change under it), and a
 * reload that fails anywhere - the file, a policy, a certificate - changes
 * nothing.
 */
#ifndef SIREN_GW_SITES_H
#define SIREN_GW_SITES_H

#include "config.h"
#include "dicom.h"
#include "policy.h"
#include "tls.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GW_MAX_PLAIN_AETS 64

typedef struct gw_site {
    char name[GW_NAME_MAX];
    tls_match match;
    gw_aet aets[GW_MAX_SITE_AETS];
    size_t aet_count;
    pol_policy *policy;       /* the table's reference; NULL: none */
    size_t metrics_slot;      /* see gw_metrics_slot */
} gw_site;

typedef struct gw_sites {
    atomic_int refs;
    gw_site sites[GW_MAX_SITES];
    size_t count;
    /* The plain listener: calling AE titles allowed (none listed: any). */
    gw_aet plain_calling[GW_MAX_PLAIN_AETS];
    size_t plain_calling_count;
    pol_policy *plain_policy; /* NULL: none */
    size_t plain_metrics_slot;
    tls_context *tls;         /* the table's reference; NULL: no TLS */
    /* For new associations. */
    gw_aet aet;               /* the called AE title we answer to */
    dcm_net_limits limits;
    int max_associations, max_handshakes, handshake_timeout_ms;
    uint64_t spool_quota;     /* bytes; 0: until the disk is full */
} gw_sites;

/* Prints diagnostics on stderr, one file:line:column line each (warnings
 * too when with_warnings); returns the number of warnings among them. */
size_t gw_print_diags(const pol_diags *d, bool with_warnings);
/* Compiles the policy at path with the de-identification engine's checks
 * (anon_check), its diagnostics printed (gw_print_diags); *warnings (may
 * be NULL) gets their number. NULL if it has errors. Owned by the caller:
 * pol_policy_unref. */
pol_policy *gw_policy_load(const char *path, bool with_warnings,
                           size_t *warnings);

/* An empty table (one reference) for the caller to fill; the limits are
 * dcm_net_limits_default's. NULL when out of memory. */
gw_sites *gw_sites_new(void);
/* The limits of t's new associations (and its handshakes) from l. */
void gw_sites_set_limits(gw_sites *t, const gw_listen_limits *l);

/* The table the configuration c describes: its policies compiled (with
 * the de-identification engine's checks; diagnostics and policy.loaded
 * lines are logged) and, when c has a TLS listener, a new TLS context
 * (certificates, key, CRLs read now). NULL with err filled if any of it
 * fails. Owned by the caller (gw_sites_unref); c is not kept. */
gw_sites *gw_sites_load(const gw_config *c, dcm_error *err);

gw_sites *gw_sites_ref(gw_sites *t);
/* Drops a reference; the last frees the table, its policies' references
 * and its TLS context's. Accepts NULL. */
void gw_sites_unref(gw_sites *t);

/* The site whose calling AE titles include ae; NULL if none. */
const gw_site *gw_sites_by_ae(const gw_sites *t, const char *ae);
/* The site of that name; NULL if none. */
const gw_site *gw_sites_by_name(const gw_sites *t, const char *name);
/* Whether the plain listener accepts the calling AE title ae. */
bool gw_sites_plain_allows(const gw_sites *t, const char *ae);

#endif /* SIREN_GW_SITES_H */
