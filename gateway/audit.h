/*
 * audit.h - the audit trail: one JSON object per line for each event a
 * compliance officer relies on (association accepted or refused with the
 * certificate's identity, instance received, refused, de-identified with
 * the policy's name, version and hash, quarantined, delivered; security
 * alerts).
 *
 *   {"time":"2026-11-29T10:00:00.123Z","event":"instance.processed",
 *    "site":"site-a","policy":"basic","policy_version":"1",...}
 *
 * Events are queued and written by a thread of their own, so that a slow
 * disk does not hold up an association: each line is written as it comes
 * (a killed gateway loses none written), and the file fdatasync'ed at
 * most every 200 ms (a power failure may lose the last 200 ms). The
 * queue holds GW_AUDIT_QUEUE events; beyond that the caller writes its
 * event itself and waits for the disk: a record is never dropped.
 * The file is also the spool of the sinks that ship it elsewhere, each
 * from an offset of its own (tail.h): Splunk's HTTP Event Collector
 * (hec.h) and a syslog collector, as PS3.15 A.5 DICOM audit messages
 * (audit_syslog.h, audit_a5.h).
 */
#ifndef SIREN_GW_AUDIT_H
#define SIREN_GW_AUDIT_H

#include "dicom.h"

#define GW_AUDIT_QUEUE 65536

/* Starts the audit trail into path (appended to, created mode 0600), or
 * standard output for "-". Until then, and after gw_audit_stop, events
 * are not recorded. */
int gw_audit_start(const char *path, dcm_error *err);
/* Records an event: key and value strings in pairs, ended by NULL. A NULL
 * value leaves its key out. Thread-safe. */
void gw_audit(const char *event, ...) __attribute__((sentinel));
/* Writes what is queued, syncs, closes. */
void gw_audit_stop(void);

#endif /* SIREN_GW_AUDIT_H */
