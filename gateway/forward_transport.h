/*
 * forward_transport.h - how the forwarder (forward.c) reaches the archive.
 * forward.c owns the folder, the workers, the backoff and what an answer
 * means for a file (forward.h); a transport owns the connection of each
 * worker (its "link") and says, for one file sent on it, what the archive
 * answered, in the forwarder's terms. Two transports: DIMSE C-STORE over
 * TCP or DICOM-TLS (forward_dimse.c) and Orthanc's REST API, POST
 * /instances over http or https (forward_rest.c, rest_answer.c). Internal
 * to gateway/.
 *
 * Threads: setup, reload and teardown run on the thread that starts and
 * stops the forwarder (reload on any one thread while workers send); a
 * link belongs to its worker's thread from link_new to link_free.
 */
#ifndef SIREN_GW_FORWARD_TRANSPORT_H
#define SIREN_GW_FORWARD_TRANSPORT_H

#include "forward.h"
#include "scu.h"

#include <stdbool.h>
#include <stddef.h>

/* What one send came to. */
typedef enum gw_fwd_kind {
    GW_FWD_STORED,  /* the archive holds the instance (perhaps already did) */
    GW_FWD_REFUSED, /* refused for good: the file is at fault */
    GW_FWD_LATER,   /* refused for now: the file waits, others go on */
    GW_FWD_BROKEN,  /* the connection failed with the file on it */
    GW_FWD_AWAY,    /* the archive could not be reached or is busy */
    GW_FWD_DENIED,  /* the archive refuses us, not the file (credentials,
                       a URL that is not its API): like AWAY, but only an
                       operator can end it, so it is logged as an error */
} gw_fwd_kind;

typedef struct gw_fwd_answer {
    gw_fwd_kind kind;
    bool warning;        /* STORED with a warning status */
    char status[32];     /* the archive's word, for the log and the audit:
                            "0000", "A700" (DIMSE), "Success",
                            "AlreadyStored", "http_400" (REST); one token */
    char archive_id[80]; /* the archive's own name for the instance (REST:
                            Orthanc's ID); "" if none */
    /* DIMSE: the file's compressed syntax (UID) when it went decoded, as
     * Explicit VR Little Endian, because the archive refused that syntax;
     * "" when it went as it is. */
    char decoded_from[DCM_UID_MAX + 1];
    /* In words, from the archive in part (quote it in logs): for REFUSED
     * the whole reason ("the archive refused it: ..."); for LATER what it
     * answered ("status 0xA700 (...)", "HTTP 500: ..."); for BROKEN, AWAY
     * and DENIED the error; for STORED a comment, often "". No control
     * characters. */
    char detail[480];
} gw_fwd_answer;

/* A worker's connection to the archive, private to its transport. */
typedef struct gw_fwd_link gw_fwd_link;

typedef struct gw_fwd_transport {
    const char *name; /* "dimse", "rest" */
    /* The transport needs the file's SOP class and syntax (DIMSE: the
     * presentation context): a file our reader refuses is refused for
     * good here. Otherwise it is sent and the archive judges it. */
    bool needs_dicom;
    /* What all links share (the peer, a TLS context, credentials), made
     * from the checked configuration c, which outlives it. NULL with err
     * filled. */
    void *(*setup)(const gw_forward_config *c, dcm_error *err);
    /* Reads again what may change while running (REST: the credentials);
     * on failure the old stays in use. NULL: nothing to read. */
    int (*reload)(void *shared, dcm_error *err);
    void (*teardown)(void *shared); /* accepts NULL */
    /* A worker's link, closed; NULL out of memory. */
    gw_fwd_link *(*link_new)(void *shared, unsigned worker_id);
    /* Sends the file at path (id read from it) on l, opening l first if
     * need be; *out says what came of it. Bounded by the timeout. */
    void (*send)(gw_fwd_link *l, const char *path, const gw_scu_file *id,
                 gw_fwd_answer *out);
    /* True while l holds a connection (counted in the forwarder's
     * stats.associations, released when idle). */
    bool (*is_open)(const gw_fwd_link *l);
    /* Ends l's connection: orderly when it can carry on, else cut. why
     * is for the log ("idle", "stop"). Nothing if it is closed. */
    void (*close)(gw_fwd_link *l, bool orderly, const char *why);
    /* Frees a closed l on the worker's own thread, with what the thread
     * holds for the transport; accepts NULL. */
    void (*link_free)(gw_fwd_link *l);
} gw_fwd_transport;

extern const gw_fwd_transport gw_fwd_dimse;
extern const gw_fwd_transport gw_fwd_rest;

/* ---- Orthanc's answers to POST /instances (rest_answer.c) -----------------
 *
 * Pure functions of the bytes: no I/O, no allocation; the fuzz harness
 * fuzz_rest_answer and test_rest_answer call them. */

/* The members of Orthanc's JSON answer the forwarder reads: of an upload
 * ({"ID": ..., "Status": "Success", ...}) or of an error ({"Message":
 * "Bad file format", "Details": "...", ...}). Values longer than their
 * field are cut (at a UTF-8 character boundary); control characters
 * become spaces. */
typedef struct gw_rest_answer {
    char status[32];
    char id[80];
    char message[128];
    char details[256];
} gw_rest_answer;

/* The largest answer body read; the rest is not kept. */
#define GW_REST_ANSWER_MAX (64u << 10)

/* Reads body (len bytes, not NUL-terminated) into out: 0 if it is one
 * JSON object (white space around it allowed), -1 if not, in which case
 * out holds nothing. Members other than the four above, of any type and
 * nesting up to 64 levels, are skipped; a member of the four whose value
 * is not a string is left empty. */
int gw_rest_answer_parse(const char *body, size_t len, gw_rest_answer *out);

/* What an HTTP answer (status, and the body's members when parsed) to
 * POST /instances means for the file: fills out (kind, status, detail,
 * archive_id). Only 200 with "Status" "Success" or "AlreadyStored" and
 * an "ID" is STORED; anything else with 200 is LATER, as is 500 and the
 * 5xx not listed; 401, 403, 407, 3xx, 404 and 405 are DENIED; 408, 429,
 * 502, 503, 504 and 507 are AWAY; the other 4xx are REFUSED. */
void gw_rest_judge(long http_status, const gw_rest_answer *body, bool parsed,
                   gw_fwd_answer *out);

#endif /* SIREN_GW_FORWARD_TRANSPORT_H */
