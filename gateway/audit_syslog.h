/*
 * audit_syslog.h - the audit trail sent to a syslog collector as PS3.15
 * A.5 DICOM audit messages (audit_a5.h): RFC 5424 messages with RFC 6587
 * octet counting over TCP, or over TLS (RFC 5425; the collector's
 * certificate verified against a CA file, its host name or address
 * checked, an optional client certificate).
 *
 * The audit file is the spool: a thread (tail.h) converts the lines
 * written since the offset it last sent (kept, durably, in
 * AUDIT_FILE.syslog-offset) and moves the offset once the collector's
 * TCP has acknowledged the bytes (the kernel's send queue is empty).
 * Syslog has no acknowledgement of its own: after a reconnect a line may
 * be sent twice; a collector that dies with acknowledged bytes unread
 * loses them (they stay in the audit file). A collector that is away or
 * slow delays the sending, never the gateway: the thread reconnects with
 * a backoff (1 s doubling to 60 s).
 */
#ifndef SIREN_GW_AUDIT_SYSLOG_H
#define SIREN_GW_AUDIT_SYSLOG_H

#include "dicom.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_SYSLOG_TCP_PORT "514"  /* the usual port of syslog over TCP */
#define GW_SYSLOG_TLS_PORT "6514" /* RFC 5425 */

/* Where the collector is: "tcp://HOST[:PORT]" or "tls://HOST[:PORT]"
 * (an IPv6 address in brackets). */
typedef struct gw_syslog_target {
    bool tls;
    char host[256];
    char port[8];
} gw_syslog_target;

/* Parses text into out. Returns 0, or -1 with why filled (for a
 * configuration error). Any thread. */
int gw_syslog_target_parse(const char *text, gw_syslog_target *out,
                           char *why, size_t why_size);

typedef struct gw_syslog_config {
    const char *audit_file; /* the JSON lines to send */
    const char *target;     /* tcp://... or tls://... */
    const char *ca_file;    /* TLS: the CA the collector's certificate
                               must chain to (required for tls://) */
    const char *cert_file;  /* TLS: optional client certificate (chain) */
    const char *key_file;   /*      and its key (mode 600) */
    const char *aet;        /* the gateway's AE title: the audit source */
} gw_syslog_config;

/* Starts the sending thread (the TLS context is made here: a bad CA,
 * certificate or key fails the start). One sink per process; called by
 * the main thread. */
int gw_syslog_start(const gw_syslog_config *c, dcm_error *err);
/* SIGHUP: reads the collector's CA and the client certificate and key
 * again, from the paths given at the start (a changed path in siren.conf
 * is a restart's business), and has the sender reconnect with them
 * before its next batch. A file that does not load fails the reload
 * (err says why) and the running ones stay. Nothing to do for tcp:// or
 * without a sink. Main thread. */
int gw_syslog_reload(dcm_error *err);
/* Finishes the batch in flight (bounded by the timeouts: 10 s to connect,
 * 30 s to write); the rest waits in the file. */
void gw_syslog_stop(void);

#endif /* SIREN_GW_AUDIT_SYSLOG_H */
