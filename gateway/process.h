/*
 * process.h - the processor pool: takes instances from spool/received,
 * applies the policy of the site that sent each, and moves the result to
 * spool/outgoing (or the instance to spool/quarantine with a reason).
 * Each instance is processed wholly under one policy version: the one
 * its site has when its processing starts.
 */
#ifndef SIREN_GW_PROCESS_H
#define SIREN_GW_PROCESS_H

#include "policy.h"
#include "spool.h"

#include <stdint.h>

typedef struct gw_processor gw_processor;

typedef struct gw_process_config {
    const gw_spool *spool;
    int threads;              /* >= 1 */
    /* A reference to the current policy of the site an instance came
     * from (site NULL: the plain listener), dropped when the instance is
     * done; NULL if there is none (the instance is quarantined). */
    pol_policy *(*policy_for)(void *ctx, const char *site);
    void *ctx;
    /* Called after an instance reached spool/outgoing (wakes the
     * forwarder); may be NULL. */
    void (*processed)(void *ctx);
} gw_process_config;

typedef struct gw_process_counts {
    uint64_t processed, quarantined, failed;
} gw_process_counts;

/* Starts the threads; they process what the spool already holds first. */
gw_processor *gw_process_start(const gw_process_config *c, dcm_error *err);
/* A new instance is in spool/received. */
void gw_process_wake(gw_processor *p);
/* Finishes the instances in hand, then joins the threads and frees p. */
void gw_process_stop(gw_processor *p);
gw_process_counts gw_process_counts_of(gw_processor *p);

#endif /* SIREN_GW_PROCESS_H */
