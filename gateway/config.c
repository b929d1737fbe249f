/* config.c - the gateway's configuration: the statements policy/ parses,
 * checked against one typed table of settings with their bounds, and
 * whole-file checks (a listener, sites for TLS, an archive). Every error
 * names the line and column of the value at fault. */
#include "config.h"

#include "audit_syslog.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum setting_type {
    T_STRING,  /* text of at most size - 1 bytes */
    T_AET,     /* an AE title: 1-16 characters, no backslash or control */
    T_PORT,    /* 0-65535, or empty (none) */
    T_PATH,    /* relative to the configuration file's folder */
    T_INT,     /* min..max */
    T_BOOL,    /* on/off, yes/no, true/false */
    T_BYTES,   /* a number and a unit: 20 GiB; 0 = none */
    T_SYSLOG,  /* a syslog collector: tcp://HOST[:PORT], tls://...; or empty */
} setting_type;

/* One setting: where it may appear (block, NULL at the top), its name,
 * its type, and where it goes. A list setting (max_count > 1) appends one
 * value per line to an array of max_count entries with a count. */
typedef struct setting {
    const char *block;
    const char *name;
    setting_type type;
    size_t offset, size;      /* in gw_config, or gw_site_config in "site" */
    long min, max;            /* T_INT */
    size_t count_offset;      /* list: where its count is */
    size_t max_count;         /* 1 for a single value */
} setting;

#define C(field) offsetof(gw_config, field), sizeof(((gw_config *)0)->field)
#define L(field) C(limits.field)
#define S(field) offsetof(gw_site_config, field), \
                 sizeof(((gw_site_config *)0)->field)
#define LIST(field, count) offsetof(gw_config, field), \
                 sizeof(((gw_config *)0)->field[0]), 0, 0, \
                 offsetof(gw_config, count), \
                 sizeof(((gw_config *)0)->field) / \
                     sizeof(((gw_config *)0)->field[0])

static const setting settings[] = {
    {NULL, "aet", T_AET, C(aet), 0, 0, 0, 1},
    {NULL, "bind", T_STRING, C(bind), 0, 0, 0, 1},
    {NULL, "spool", T_PATH, C(spool), 0, 0, 0, 1},
    {NULL, "spool-quota", T_BYTES, C(spool_quota), 0, 0, 0, 1},
    {NULL, "processors", T_INT, C(processors), 0, 256, 0, 1},
    {NULL, "user", T_STRING, C(user), 0, 0, 0, 1},

    {"tls", "port", T_PORT, C(tls_port), 0, 0, 0, 1},
    {"tls", "certificate", T_PATH, C(tls_cert), 0, 0, 0, 1},
    {"tls", "key", T_PATH, C(tls_key), 0, 0, 0, 1},
    {"tls", "sites-ca", T_PATH, C(sites_ca), 0, 0, 0, 1},
    {"tls", "crl", T_PATH, LIST(crls, crl_count)},
    {"tls", "pin", T_STRING, LIST(pins, pin_count)},
    {"tls", "profile", T_STRING, C(tls_profile), 0, 0, 0, 1},
    {"tls", "max-handshakes", T_INT, L(max_handshakes), 1, 4096, 0, 1},
    {"tls", "handshake-timeout", T_INT, L(handshake_timeout_s), 1, 600, 0, 1},

    {"site", "certificate", T_STRING, S(match), 0, 0, 0, 1},
    {"site", "aet", T_AET, offsetof(gw_site_config, aets),
     sizeof(((gw_site_config *)0)->aets[0]), 0, 0,
     offsetof(gw_site_config, aet_count), GW_MAX_SITE_AETS},
    {"site", "policy", T_PATH, S(policy), 0, 0, 0, 1},

    {"plain", "port", T_PORT, C(plain_port), 0, 0, 0, 1},
    {"plain", "allow-calling", T_AET, LIST(plain_calling, plain_calling_count)},
    {"plain", "policy", T_PATH, C(plain_policy), 0, 0, 0, 1},

    {"archive", "host", T_STRING, C(archive_host), 0, 0, 0, 1},
    {"archive", "port", T_PORT, C(archive_port), 0, 0, 0, 1},
    {"archive", "aet", T_AET, C(archive_aet), 0, 0, 0, 1},
    {"archive", "calling-aet", T_AET, C(archive_calling_aet), 0, 0, 0, 1},
    {"archive", "tls", T_BOOL, C(archive_tls), 0, 0, 0, 1},
    {"archive", "ca", T_PATH, C(archive_ca), 0, 0, 0, 1},
    {"archive", "certificate", T_PATH, C(archive_cert), 0, 0, 0, 1},
    {"archive", "key", T_PATH, C(archive_key), 0, 0, 0, 1},
    {"archive", "server-name", T_STRING, C(archive_server_name), 0, 0, 0, 1},
    {"archive", "connections", T_INT, C(archive_connections), 1, 64, 0, 1},
    {"archive", "url", T_STRING, C(archive_url), 0, 0, 0, 1},
    {"archive", "credentials", T_PATH, C(archive_credentials), 0, 0, 0, 1},
    {"archive", "timeout", T_INT, C(archive_timeout_s), 1, 3600, 0, 1},

    {"audit", "file", T_PATH, C(audit_file), 0, 0, 0, 1},
    {"audit", "splunk-hec-url", T_STRING, C(hec_url), 0, 0, 0, 1},
    {"audit", "splunk-hec-token", T_STRING, C(hec_token), 0, 0, 0, 1},
    {"audit", "splunk-hec-token-file", T_PATH, C(hec_token_file), 0, 0, 0,
     1},
    {"audit", "splunk-hec-ca", T_PATH, C(hec_ca), 0, 0, 0, 1},
    {"audit", "syslog", T_SYSLOG, C(syslog), 0, 0, 0, 1},
    {"audit", "syslog-ca", T_PATH, C(syslog_ca), 0, 0, 0, 1},
    {"audit", "syslog-cert", T_PATH, C(syslog_cert), 0, 0, 0, 1},
    {"audit", "syslog-key", T_PATH, C(syslog_key), 0, 0, 0, 1},
    {"metrics", "port", T_PORT, C(metrics_port), 0, 0, 0, 1},
    {"metrics", "bind", T_STRING, C(metrics_bind), 0, 0, 0, 1},

    {"limits", "max-associations", T_INT, L(max_associations), 1, 4096, 0, 1},
    {"limits", "timeout", T_INT, L(timeout_s), 1, 3600, 0, 1},
    {"limits", "idle-timeout", T_INT, L(idle_timeout_s), 1, 86400, 0, 1},
    {"limits", "artim-timeout", T_INT, L(artim_timeout_s), 1, 600, 0, 1},
    {"limits", "max-pdu", T_INT, L(max_pdu), 4096, 16 << 20, 0, 1},
};

static const char *const blocks[] = {"tls", "site", "plain", "archive",
                                     "audit", "metrics", "limits",
                                     NULL};

static int fail_at(pol_diags *d, const pol_conf_node *n, unsigned line,
                   unsigned column, const char *hint, const char *message)
{
    return pol_diags_add(d, false, n->file, line, column, hint, "%s",
                         message);
}

static int fail_node(pol_diags *d, const pol_conf_node *n, const char *hint,
                     const char *message)
{
    return fail_at(d, n, n->line, n->column, hint, message);
}

static bool valid_aet(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > DCM_AE_TITLE_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '\\' || (unsigned char)*s > 0x7E)
            return false;
    return true;
}

static bool parse_long(const char *text, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(text, &end, 10);
    return *text && !*end && errno == 0;
}

/* The T_INT setting s's value in text; false, with its bounds in bounds,
 * when text is not a whole number within them. */
static bool read_int(const setting *s, const char *text, long *number,
                     char *bounds, size_t size)
{
    if (parse_long(text, number) && *number >= s->min && *number <= s->max)
        return true;
    snprintf(bounds, size, "a whole number, %ld to %ld", s->min, s->max);
    return false;
}

/* "20 GiB", "512MiB", "0": bytes. */
static bool parse_bytes(const pol_conf_node *n, uint64_t *out)
{
    static const struct { const char *unit; uint64_t factor; } units[] = {
        {"", 1},          {"B", 1},          {"KiB", 1ull << 10},
        {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    };
    char text[64];
    snprintf(text, sizeof text, "%s%s", n->args[0].text,
             n->arg_count > 1 ? n->args[1].text : "");
    if (!text[0]) { /* an unset ${VAR:-}: no limit */
        *out = 0;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || errno || n->arg_count > 2)
        return false;
    while (*end == ' ') /* "50 GiB" written as one string */
        end++;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(end, units[i].unit) == 0 &&
            value <= UINT64_MAX / units[i].factor) {
            *out = value * units[i].factor;
            return true;
        }
    return false;
}

/* Stores one value of setting s, given on node n, into base. */
static int store(const setting *s, const pol_conf_node *n, char *base,
                 pol_diags *d)
{
    if (n->arg_count == 0) /* a setting's name alone on its line */
        return fail_node(d, n, "one value per setting", "no value");
    if (s->type == T_BYTES)
        return parse_bytes(n, (uint64_t *)(base + s->offset))
                   ? 0
                   : fail_at(d, n, n->args[0].line, n->args[0].column,
                             "a number and B, KiB, MiB, GiB or TiB",
                             "not a size");
    if (n->arg_count != 1)
        return fail_node(d, n, "one value per setting", "too many values");
    const pol_conf_value *v = &n->args[0];
    size_t *count = s->max_count > 1 ? (size_t *)(base + s->count_offset)
                                     : NULL;
    if (count && *count == s->max_count)
        return fail_at(d, n, v->line, v->column, NULL, "too many of these");
    char *slot = base + s->offset + (count ? *count * s->size : 0);
    long number;
    char path[PATH_MAX];
    /* What is stored: the value, or a path resolved against the file's
     * folder. */
    const char *text = v->text;
    switch (s->type) {
    case T_AET:
        if (!valid_aet(v->text))
            return fail_at(d, n, v->line, v->column,
                           "1 to 16 printable ASCII characters",
                           "not an AE title");
        break;
    case T_PORT:
        if (v->text[0] && (!parse_long(v->text, &number) || number < 0 ||
                           number > 65535))
            return fail_at(d, n, v->line, v->column, "0 to 65535",
                           "not a port");
        break;
    case T_INT: {
        char bounds[64];
        if (!read_int(s, v->text, &number, bounds, sizeof bounds))
            return fail_at(d, n, v->line, v->column, bounds,
                           "out of bounds");
        *(int *)slot = (int)number; /* int or uint32_t: same bytes */
        return 0;
    }
    case T_BOOL: {
        bool on = !strcmp(v->text, "on") || !strcmp(v->text, "yes") ||
                  !strcmp(v->text, "true");
        bool off = !strcmp(v->text, "off") || !strcmp(v->text, "no") ||
                   !strcmp(v->text, "false") || !v->text[0];
        if (!on && !off)
            return fail_at(d, n, v->line, v->column, "on or off",
                           "not on/off");
        *(bool *)slot = on;
        return 0;
    }
    case T_SYSLOG: {
        gw_syslog_target target;
        char why[160];
        if (v->text[0] &&
            gw_syslog_target_parse(v->text, &target, why, sizeof why) < 0)
            return fail_at(d, n, v->line, v->column,
                           "tcp://HOST[:PORT] or tls://HOST[:PORT]", why);
        break;
    }
    case T_PATH: /* "-": standard output, where a setting allows it */
        if (v->text[0] && strcmp(v->text, "-") != 0) {
            pol_resolve_path(n->file, v->text, path, sizeof path);
            text = path;
        }
        break;
    default:
        break;
    }
    if (strlen(text) >= s->size)
        return fail_at(d, n, v->line, v->column, NULL, "value too long");
    memcpy(slot, text, strlen(text) + 1);
    if (count && text[0]) /* an empty list entry adds nothing */
        (*count)++;
    return 0;
}

static const setting *find_setting(const char *block, const char *name)
{
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        const setting *s = &settings[i];
        if (strcmp(s->name, name) == 0 &&
            ((!block && !s->block) ||
             (block && s->block && strcmp(block, s->block) == 0)))
            return &settings[i];
    }
    return NULL;
}

/* The statements of a block (or the top level) into base. */
static int read_settings(const pol_conf_node *parent, const char *block,
                         char *base, pol_diags *d)
{
    int rc = 0;
    for (size_t i = 0; i < parent->child_count; i++) {
        const pol_conf_node *n = &parent->children[i];
        if (n->is_block && !block)
            continue; /* read by the caller */
        const setting *s = find_setting(block, n->name);
        char message[160];
        if (!s) {
            snprintf(message, sizeof message, "unknown setting '%s'%s%s",
                     n->name, block ? " in " : "", block ? block : "");
            rc = fail_node(d, n, "examples/siren.conf lists every setting",
                           message);
            continue;
        }
        if (store(s, n, base, d) < 0)
            rc = -1;
    }
    return rc;
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) >= GW_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' &&
            *s != '_')
            return false;
    return true;
}

static int read_site(const pol_conf_node *n, gw_config *c, pol_diags *d)
{
    if (c->site_count == GW_MAX_SITES)
        return fail_node(d, n, NULL, "too many sites");
    if (n->arg_count != 1 || !valid_name(n->args[0].text))
        return fail_node(d, n, "site \"NAME\": letters, digits, - . _",
                         "a site needs a name");
    for (size_t i = 0; i < c->site_count; i++)
        if (strcmp(c->sites[i].name, n->args[0].text) == 0)
            return fail_node(d, n, NULL, "a second site of that name");
    gw_site_config *s = &c->sites[c->site_count];
    memset(s, 0, sizeof *s);
    memcpy(s->name, n->args[0].text, strlen(n->args[0].text) + 1);
    s->file = n->file;
    s->line = n->line;
    if (read_settings(n, "site", (char *)s, d) < 0)
        return -1;
    tls_match match;
    dcm_error err = {0};
    if (!s->match[0] || tls_match_parse(s->match, &match, &err) < 0)
        return fail_node(d, n, "certificate cn:NAME, dn:..., san-dns:..., "
                         "spki:HEX",
                         s->match[0] ? err.message
                                     : "the site names no certificate");
    if (s->aet_count == 0)
        return fail_node(d, n, "aet TITLE", "the site has no AE title");
    if (!s->policy[0])
        return fail_node(d, n, "policy \"FILE\"", "the site has no policy");
    c->site_count++;
    return 0;
}

void gw_listen_limits_default(gw_listen_limits *l)
{
    *l = (gw_listen_limits){.max_associations = 32, .timeout_s = 60,
                            .idle_timeout_s = 300, .artim_timeout_s = 30,
                            .max_pdu = DCM_DEFAULT_MAX_PDU_BYTES,
                            .max_handshakes = 16, .handshake_timeout_s = 10};
}

int gw_listen_limits_set(gw_listen_limits *l, const char *name,
                         const char *text, char *why, size_t why_size)
{
    const size_t first = offsetof(gw_config, limits);
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        const setting *s = &settings[i];
        if (s->offset < first || s->offset >= first + sizeof *l ||
            strcmp(s->name, name) != 0)
            continue;
        long number;
        if (!read_int(s, text, &number, why, why_size))
            return -1;
        /* every limit is an int or a uint32_t: the same bytes */
        *(int *)((char *)l + (s->offset - first)) = (int)number;
        return 1;
    }
    return 0;
}

static void set_defaults(gw_config *c, const char *path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->file, sizeof c->file, "%s", path);
    snprintf(c->aet, sizeof c->aet, "SIREN");
    pol_resolve_path(path, "spool", c->spool, sizeof c->spool);
    snprintf(c->tls_profile, sizeof c->tls_profile, "bcp195");
    c->archive_connections = 2;
    c->archive_timeout_s = 30;
    gw_listen_limits_default(&c->limits);
}

/* What the file as a whole must say. */
static int check_whole(const gw_config *c, const pol_conf_node *root,
                       pol_diags *d)
{
    const char *problem =
        !c->tls_port[0] && !c->plain_port[0]
            ? "no listener: give tls { port } and/or plain { port }"
        : c->tls_port[0] && (!c->tls_cert[0] || !c->tls_key[0] ||
                             !c->sites_ca[0])
            ? "DICOM-TLS needs tls { certificate, key, sites-ca }"
        : c->tls_port[0] && c->site_count == 0
            ? "DICOM-TLS needs at least one site"
        : tls_profile_parse(c->tls_profile) < 0
            ? "tls profile is bcp195, modified-bcp195 or tls13"
        : c->plain_port[0] && !c->plain_policy[0]
            ? "the plain listener needs a policy"
        : !c->archive_url[0] && (!c->archive_host[0] ||
                                 !c->archive_port[0] || !c->archive_aet[0])
            ? "archive { host, port, aet } (DICOM) or archive { url } "
              "(Orthanc's REST API) are required"
        : c->archive_url[0] && c->archive_tls
            ? "archive tls is for DICOM: over REST, an https:// url says TLS"
        : !c->archive_url[0] && c->archive_credentials[0]
            ? "archive credentials are for the REST API: give archive { url }"
        : c->archive_tls && !c->archive_ca[0]
            ? "archive tls needs the archive's CA: archive { ca }"
        : c->hec_url[0] && (!c->audit_file[0] || !strcmp(c->audit_file, "-"))
            ? "the Splunk collector ships the audit file: give audit { file }"
        : c->hec_url[0] && !c->hec_token[0] && !c->hec_token_file[0]
            ? "the Splunk collector needs splunk-hec-token(-file)"
        : c->syslog[0] && (!c->audit_file[0] || !strcmp(c->audit_file, "-"))
            ? "the syslog sink sends the audit file: give audit { file }"
        : c->syslog[0] && !strncmp(c->syslog, "tls://", 6) && !c->syslog_ca[0]
            ? "syslog over TLS needs the collector's CA: audit { syslog-ca }"
        : !c->syslog_cert[0] != !c->syslog_key[0]
            ? "a syslog client certificate needs syslog-cert and syslog-key"
            : NULL;
    if (problem)
        pol_diags_add(d, false, root->file, 0, 0,
                      "examples/siren.conf shows a complete file", "%s",
                      problem);
    return problem ? -1 : 0;
}

/* The last "name" statement in the blocks named block, or NULL. */
static const pol_conf_node *find_statement(const pol_conf_node *root,
                                           const char *block,
                                           const char *name)
{
    const pol_conf_node *found = NULL;
    for (size_t i = 0; i < root->child_count; i++) {
        const pol_conf_node *b = &root->children[i];
        if (!b->is_block || strcmp(b->name, block) != 0)
            continue;
        for (size_t j = 0; j < b->child_count; j++)
            if (!b->children[j].is_block &&
                strcmp(b->children[j].name, name) == 0)
                found = &b->children[j];
    }
    return found;
}

/* archive { url }: Orthanc's REST API, instead of a DICOM host. */
static int check_archive_url(const pol_conf_node *root, const gw_config *c,
                             pol_diags *d)
{
    const pol_conf_node *url = find_statement(root, "archive", "url");
    if (!url || !c->archive_url[0])
        return 0;
    const pol_conf_value *v = &url->args[0];
    if (strncmp(c->archive_url, "http://", 7) != 0 &&
        strncmp(c->archive_url, "https://", 8) != 0)
        return fail_at(d, url, v->line, v->column,
                       "url \"http://127.0.0.1:8042\" or https://...",
                       "not an http:// or https:// URL");
    if (c->archive_host[0])
        return fail_at(d, url, v->line, v->column,
                       "leave out host, port and aet (DICOM) to deliver "
                       "over Orthanc's REST API, or url to deliver over "
                       "DICOM",
                       "archive url and host are exclusive");
    return 0;
}

int gw_config_load(const char *path, gw_config *c, pol_diags *d)
{
    set_defaults(c, path);
    pol_conf_node *root = pol_conf_load(path, blocks, pol_lookup_env, NULL,
                                        d);
    if (!root)
        return -1;
    int rc = read_settings(root, NULL, (char *)c, d);
    for (size_t i = 0; i < root->child_count; i++) {
        const pol_conf_node *n = &root->children[i];
        if (!n->is_block)
            continue;
        if (strcmp(n->name, "site") == 0) {
            if (read_site(n, c, d) < 0)
                rc = -1;
        } else if (n->arg_count) {
            rc = fail_node(d, n, NULL, "this block takes no value");
        } else if (read_settings(n, n->name, (char *)c, d) < 0) {
            rc = -1;
        }
    }
    if (!c->archive_calling_aet[0])
        memcpy(c->archive_calling_aet, c->aet, sizeof c->aet);
    if (rc == 0)
        rc = check_archive_url(root, c, d);
    if (rc == 0)
        rc = check_whole(c, root, d);
    pol_conf_free(root);
    return rc;
}

/* What a reload cannot change in a running service: the sockets it
 * listens on, the spool, its threads and user, where it delivers, and its
 * audit and metrics outlets. Everything else (sites, policies, TLS files,
 * limits, the AE title) a SIGHUP takes up. */
static bool restart_only(const setting *s)
{
    static const char *const blocks_restart[] = {"archive", "audit",
                                                 "metrics", NULL};
    static const char *const top_restart[] = {"bind", "spool", "processors",
                                              "user", NULL};
    if (!s->block) {
        for (size_t i = 0; top_restart[i]; i++)
            if (strcmp(s->name, top_restart[i]) == 0)
                return true;
        return false;
    }
    for (size_t i = 0; blocks_restart[i]; i++)
        if (strcmp(s->block, blocks_restart[i]) == 0)
            return true;
    return strcmp(s->name, "port") == 0; /* tls, plain: the listeners */
}

static bool setting_differs(const setting *s, const gw_config *a,
                            const gw_config *b)
{
    size_t bytes = s->size;
    if (s->max_count > 1) {
        size_t count = *(const size_t *)((const char *)a + s->count_offset);
        if (count != *(const size_t *)((const char *)b + s->count_offset))
            return true;
        bytes = s->size * count;
    }
    const char *va = (const char *)a + s->offset;
    const char *vb = (const char *)b + s->offset;
    if (s->type == T_INT || s->type == T_BOOL || s->type == T_BYTES)
        return memcmp(va, vb, bytes) != 0;
    for (size_t at = 0; at < bytes; at += s->size) /* strings */
        if (strncmp(va + at, vb + at, s->size) != 0)
            return true;
    return false;
}

size_t gw_config_restart_changes(const gw_config *running,
                                 const gw_config *fresh, char *names,
                                 size_t size)
{
    size_t changed = 0, used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        const setting *s = &settings[i];
        if ((s->block && strcmp(s->block, "site") == 0) || /* not in c */
            !restart_only(s) || !setting_differs(s, running, fresh))
            continue;
        int n = snprintf(names + used, size - used, "%s%s%s%s",
                         changed ? " " : "", s->block ? s->block : "",
                         s->block ? "." : "", s->name);
        if (n > 0 && (size_t)n < size - used)
            used += (size_t)n;
        changed++;
    }
    return changed;
}
