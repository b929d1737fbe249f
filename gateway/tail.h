/*
 * tail.h - a thread that ships a growing file of lines (the audit trail)
 * from a durable offset: it reads the whole lines written since the
 * offset, hands them to a sender, and moves the offset past the lines the
 * sender says it delivered. The offset lives in FILE<suffix> (e.g.
 * "audit.jsonl.hec-offset"), written to a temporary name, synced and
 * renamed, so a crash leaves the old offset or the new one: a line may be
 * shipped twice, never skipped.
 *
 * The Splunk HEC shipper (hec.c) and the syslog sink (audit_syslog.c) are
 * two senders on this one loop.
 *
 * Threads: each gw_tail runs one thread of its own; the sender is called
 * only from it. gw_tail_start and gw_tail_stop are called by one thread
 * (the service's main thread).
 */
#ifndef SIREN_GW_TAIL_H
#define SIREN_GW_TAIL_H

#include "dicom.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_TAIL_POLL_MS 1000         /* how often the file is looked at */
#define GW_TAIL_BACKOFF_MAX_MS 60000 /* longest wait after failures */

/* Delivers lines (len bytes of whole lines, each ended by '\n'). Returns
 * how many of those bytes were delivered (whole lines, from the start):
 * len when all were, fewer when it failed after those (why then says what
 * failed, for the log; the remaining lines are offered again after a
 * backoff). A line that can never be delivered (it does not parse) counts
 * as delivered: the sender logs it and goes on. */
typedef size_t (*gw_tail_send_fn)(void *ctx, const char *lines, size_t len,
                                  char *why, size_t why_size);

typedef struct gw_tail_config {
    const char *name;          /* "hec", "syslog": for log events */
    const char *file;          /* the file of lines */
    const char *offset_suffix; /* appended to file: the offset's file */
    size_t batch_bytes;        /* at most this much per call of send */
    gw_tail_send_fn send;
    void *ctx;                 /* for send; outlives the tail */
    void (*thread_done)(void); /* called last on the thread; may be NULL */
} gw_tail_config;

typedef struct gw_tail gw_tail;

/* Starts the thread. The configuration's strings are copied. Owned by the
 * caller: gw_tail_stop. */
gw_tail *gw_tail_start(const gw_tail_config *c, dcm_error *err);
/* Lets the call of send in flight finish (it is bounded by the sender's
 * own timeouts), stops the thread, frees t. NULL is allowed. */
void gw_tail_stop(gw_tail *t);

/* The offset saved for file<suffix> (0 when there is none). */
uint64_t gw_tail_saved_offset(const char *file, const char *suffix);

#endif /* SIREN_GW_TAIL_H */
