/*
 * config.h - the gateway's configuration file (`siren serve -c FILE`), in
 * the policy language's family of syntax (policy/ parses it, this gives
 * it meaning). examples/siren.conf is the annotated example; every
 * setting, its type and bounds are in the table at the top of config.c.
 *
 * Paths in the file are relative to the file's folder. An empty value
 * (from an unset ${VAR:-}) means "not set" for optional settings.
 */
#ifndef SIREN_GW_CONFIG_H
#define SIREN_GW_CONFIG_H

#include "dicom.h"
#include "policy.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define GW_MAX_SITES 64
#define GW_MAX_SITE_AETS 16
#define GW_MAX_CRLS 8
#define GW_MAX_PINS 16
#define GW_NAME_MAX 64

typedef char gw_path[PATH_MAX];
typedef char gw_aet[DCM_AE_TITLE_MAX + 1];

/* A sending site over DICOM-TLS. */
typedef struct gw_site_config {
    char name[GW_NAME_MAX];   /* letters, digits, - . _ */
    char match[512];          /* "cn:site-a.example.org", see tls_match_parse */
    gw_aet aets[GW_MAX_SITE_AETS];
    size_t aet_count;
    gw_path policy;
    const char *file;         /* where the site block is, for messages */
    unsigned line;
} gw_site_config;

/* The limits of the DICOM listeners, from the configuration file's
 * "limits" block and "tls" max-handshakes/handshake-timeout, or from
 * `serve --dir`'s options of the same names; one table of bounds in
 * config.c serves both. */
typedef struct gw_listen_limits {
    int max_associations;     /* at once, both listeners */
    int timeout_s;            /* DIMSE: a message's parts */
    int idle_timeout_s;       /* between messages */
    int artim_timeout_s;      /* association set-up and release */
    uint32_t max_pdu;         /* the largest PDU we receive */
    int max_handshakes;       /* TLS handshakes at once */
    int handshake_timeout_s;
} gw_listen_limits;

typedef struct gw_config {
    gw_path file;             /* the configuration file read */
    gw_aet aet;               /* the called AE title we answer to */
    char bind[64];            /* listen address; "" = all */
    gw_path spool;
    uint64_t spool_quota;     /* bytes; 0 = until the disk is full */
    int processors;           /* de-identification threads; 0 = cores */
    char user[64];            /* started as root: run as this user */

    /* DICOM-TLS listener for sites. */
    char tls_port[16];        /* "" = none */
    gw_path tls_cert, tls_key, sites_ca;
    gw_path crls[GW_MAX_CRLS];
    size_t crl_count;
    char pins[GW_MAX_PINS][65];
    size_t pin_count;
    char tls_profile[32];
    gw_site_config sites[GW_MAX_SITES];
    size_t site_count;

    /* Plain DICOM listener for a local network. */
    char plain_port[16];      /* "" = none */
    gw_aet plain_calling[GW_MAX_SITE_AETS];
    size_t plain_calling_count;
    gw_path plain_policy;

    /* The archive instances are delivered to. */
    char archive_host[256], archive_port[16];
    gw_aet archive_aet, archive_calling_aet;
    bool archive_tls;
    gw_path archive_ca, archive_cert, archive_key;
    char archive_server_name[256];
    int archive_connections;
    char archive_url[512];    /* Orthanc's REST API instead of DICOM; "" none */
    gw_path archive_credentials; /* "user:password" for the REST API */
    int archive_timeout_s;    /* connect and each step (REST: without
                                 progress), either transport */

    /* The audit trail: a file of JSON lines, "-" for standard output,
     * "" for none. */
    gw_path audit_file;
    char hec_url[512];        /* Splunk HTTP Event Collector; "" none */
    char hec_token[256];      /* its token, or read from hec_token_file */
    gw_path hec_token_file, hec_ca;
    char syslog[512];         /* tcp://HOST[:PORT], tls://...; "" none */
    gw_path syslog_ca, syslog_cert, syslog_key; /* for tls:// */
    char metrics_port[16];    /* HTTP /metrics, /healthz; "" none */
    char metrics_bind[64];    /* an IPv4 address; "" = 127.0.0.1 */

    gw_listen_limits limits;
} gw_config;

/* Reads and checks the configuration at path into c. Returns 0, or -1
 * after adding diagnostics (file:line:column) to diags. Policies are not
 * compiled here (see gw_config_check_policies). */
int gw_config_load(const char *path, gw_config *c, pol_diags *diags);

/* The limits' defaults (those of a configuration without them). */
void gw_listen_limits_default(gw_listen_limits *l);
/* Sets the limit named name ("max-pdu", "timeout", "handshake-timeout",
 * ...: the setting's name in the file) from text, within the file's
 * bounds. Returns 1 when set, 0 when no limit has that name, -1 (why
 * filled: the bounds) when text is not a whole number within them. */
int gw_listen_limits_set(gw_listen_limits *l, const char *name,
                         const char *text, char *why, size_t why_size);

/* The settings that differ between the running configuration and a
 * fresh read of it but take effect only at a restart (listener ports and
 * address, spool, processors, user, the archive, audit and metrics
 * blocks): their names ("archive.host spool") into names (size bytes,
 * cut short if need be); returns how many. */
size_t gw_config_restart_changes(const gw_config *running,
                                 const gw_config *fresh, char *names,
                                 size_t size);

#endif /* SIREN_GW_CONFIG_H */
