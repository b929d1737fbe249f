/*
 * audit_a5.h - the audit trail's events as DICOM audit messages (PS3.15
 * A.5: the XML of the A.5.1 schema, event IDs and codes of PS3.16 CID
 * 400-404 from the DCM coding scheme), framed for syslog (RFC 5424).
 *
 * Each JSON line of the audit file (audit.h) maps to one message; the
 * table at the top of audit_a5.c is the mapping, docs/OPERATIONS.md shows
 * it. Every field of the event also travels as a ParticipantObjectDetail
 * (base64, as the schema wants), so the message loses nothing the line
 * held.
 *
 * Threads: no state; any thread.
 */
#ifndef SIREN_GW_AUDIT_A5_H
#define SIREN_GW_AUDIT_A5_H

#include "json_read.h"

#include <stddef.h>

/* Who reports: the gateway. */
typedef struct gw_a5_source {
    const char *aet;  /* its AE title: AuditSourceID, its participant */
    const char *host; /* its host name (NULL: none) */
    long pid;         /* its process, RFC 5424 PROCID */
} gw_a5_source;

/* The RFC 5424 message (header, "-" for structured data, BOM, the A.5
 * XML on one line) for one audit line, without a line end or framing:
 * malloc'ed, *len bytes (also NUL-terminated), owned by the caller.
 * NULL with why filled when the line is not an audit event (no JSON
 * object, no valid time) or its event has no message (why says which). */
char *gw_a5_syslog_message(const char *line, size_t line_len,
                           const gw_a5_source *src, size_t *len, char *why,
                           size_t why_size);

#endif /* SIREN_GW_AUDIT_A5_H */
