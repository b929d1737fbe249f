/* net_assoc.c - associations: establishment (both sides), the PDU reader,
 * P-DATA framing, release and abort, driven by the Upper Layer state table
 * of net_fsm.c.
 *
 * Every received PDU becomes an event of PS3.8 Table 9-10 and the table
 * says what happens; an event the current state does not expect (a PDU out
 * of order, a malformed one, a timeout) ends in the table's abort action
 * for that association only. Lengths are checked before anything is
 * allocated or read: PDU lengths against the limit for their type, PDV
 * lengths against what remains of their PDU. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A-ABORT sources and reasons (PS3.8 9.3.8). */
enum {
    ABORT_SOURCE_USER = 0,
    ABORT_SOURCE_PROVIDER = 2,
    ABORT_REASON_NOT_SPECIFIED = 0,
    ABORT_REASON_UNRECOGNIZED_PDU = 1,
    ABORT_REASON_UNEXPECTED_PDU = 2,
    ABORT_REASON_INVALID_PARAMETER = 6,
};

struct dcm_assoc {
    dcm_transport *transport;
    dcm_ul_state state;
    bool requestor;
    dcm_net_limits limits;
    dcm_assoc_info info;  /* negotiated, as seen from this end */
    uint32_t send_pdu_bytes; /* variable part of the P-DATA PDUs we send */
    uint8_t *in;          /* the body of the PDU being read */
    size_t in_cap;
    size_t in_len, in_pos; /* a P-DATA body and the next PDV in it */
    uint8_t *out;         /* a P-DATA PDU being built */
    size_t out_cap;
    int dataset_due;      /* context of an announced data set, or -1 */
    uint8_t invalid_reason; /* A-ABORT reason for the last invalid PDU */
    /* Bytes read from the transport ahead of need, so that a PDU header
     * and small PDUs do not each cost a system call. */
    uint8_t *ahead;
    size_t ahead_pos, ahead_len;
};

#define READ_AHEAD_BYTES (64u << 10)

/* ---- clocks and reading ---------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Time left before deadline (ms), or -1 for none. */
static int remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Reads exactly len bytes before the deadline: a peer that trickles bytes
 * cannot stretch one PDU past its timeout. */
static int read_exact(dcm_assoc *a, void *buf, size_t len, int64_t deadline,
                      dcm_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t buffered = a->ahead_len - a->ahead_pos;
        if (buffered > 0) {
            size_t n = buffered < len ? buffered : len;
            memcpy(p, a->ahead + a->ahead_pos, n);
            a->ahead_pos += n;
            p += n;
            len -= n;
            continue;
        }
        /* A large remainder goes straight to its place; a small one comes
         * with whatever else the socket holds. */
        bool direct = len >= READ_AHEAD_BYTES || !a->ahead;
        long got = a->transport->ops->read(a->transport, direct ? p : a->ahead,
                                           direct ? len : READ_AHEAD_BYTES,
                                           remaining_ms(deadline), err);
        if (got < 0)
            return (int)got;
        if (direct) {
            p += got;
            len -= (size_t)got;
        } else {
            a->ahead_pos = 0;
            a->ahead_len = (size_t)got;
        }
    }
    return DCM_OK;
}

static bool grow_in(dcm_assoc *a, size_t len)
{
    if (len <= a->in_cap)
        return true;
    uint8_t *bigger = realloc(a->in, len);
    if (!bigger)
        return false;
    a->in = bigger;
    a->in_cap = len;
    return true;
}

/* The largest body a PDU of this type may have, or 0 for an unknown type. */
static uint32_t body_limit(const dcm_assoc *a, uint8_t type)
{
    switch (type) {
    case DCM_PDU_ASSOCIATE_RQ:
    case DCM_PDU_ASSOCIATE_AC:
        return a->limits.max_associate_bytes;
    case DCM_PDU_P_DATA:
        return a->limits.max_pdu_bytes;
    case DCM_PDU_ASSOCIATE_RJ:
    case DCM_PDU_RELEASE_RQ:
    case DCM_PDU_RELEASE_RP:
    case DCM_PDU_ABORT:
        return 4;
    default:
        return 0;
    }
}

/* Reads one PDU into a->in. The first byte may take first_timeout_ms (the
 * peer may be idle between messages); the rest of the PDU must arrive
 * within the DIMSE timeout. A PDU whose type or length is unacceptable
 * gives DCM_E_INVALID without its body being read. */
static int read_pdu(dcm_assoc *a, int first_timeout_ms, uint8_t *type,
                    size_t *len, dcm_error *err)
{
    uint8_t header[DCM_PDU_HEADER_BYTES];
    int rc = read_exact(a, header, 1, deadline_after(first_timeout_ms), err);
    if (rc < 0)
        return rc;
    int64_t deadline = deadline_after(a->limits.dimse_timeout_ms);
    if ((rc = read_exact(a, header + 1, sizeof header - 1, deadline, err)) < 0)
        return rc;
    *type = header[0];
    uint32_t length = (uint32_t)header[2] << 24 | (uint32_t)header[3] << 16 |
                      (uint32_t)header[4] << 8 | header[5];
    uint32_t limit = body_limit(a, *type);
    a->invalid_reason = ABORT_REASON_UNRECOGNIZED_PDU;
    if (limit == 0)
        return dcm_fail(err, DCM_E_INVALID, -1, "%s sent an unknown PDU type "
                        "0x%02X", a->transport->peer, *type);
    bool fixed = limit == 4;
    a->invalid_reason = ABORT_REASON_INVALID_PARAMETER;
    if ((fixed && length != 4) || length > limit)
        return dcm_fail(err, DCM_E_INVALID, -1, "%s sent a PDU of type 0x%02X "
                        "with length %u (%s %u)", a->transport->peer, *type,
                        length, fixed ? "must be" : "limit", limit);
    if (!grow_in(a, length))
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a PDU");
    if ((rc = read_exact(a, a->in, length, deadline, err)) < 0)
        return rc;
    *len = length;
    return DCM_OK;
}

static dcm_ul_event event_for_pdu(uint8_t type)
{
    switch (type) {
    case DCM_PDU_ASSOCIATE_RQ: return DCM_EVT6;
    case DCM_PDU_ASSOCIATE_AC: return DCM_EVT3;
    case DCM_PDU_ASSOCIATE_RJ: return DCM_EVT4;
    case DCM_PDU_P_DATA: return DCM_EVT10;
    case DCM_PDU_RELEASE_RQ: return DCM_EVT12;
    case DCM_PDU_RELEASE_RP: return DCM_EVT13;
    case DCM_PDU_ABORT: return DCM_EVT16;
    default: return DCM_EVT19;
    }
}

/* ---- sending ------------------------------------------------------------------ */

static int send_bytes(dcm_assoc *a, const void *data, size_t len,
                      dcm_error *err)
{
    return a->transport->ops->write(a->transport, data, len,
                                    a->limits.dimse_timeout_ms, err);
}

static int send_short(dcm_assoc *a, uint8_t type, uint8_t b1, uint8_t b2,
                      uint8_t b3, dcm_error *err)
{
    uint8_t pdu[10];
    dcm_pdu_encode_short(type, b1, b2, b3, pdu);
    return send_bytes(a, pdu, sizeof pdu, err);
}

/* ---- the state machine's abort and close actions ------------------------------ */

/* Waits in Sta13 for the peer to close, at most the ARTIM timeout
 * (PS3.8 9.1.5); PDUs that still arrive are ignored (AA-6) or answered
 * with A-ABORT (AA-7). Then closes. */
static void await_close(dcm_assoc *a)
{
    int64_t artim = deadline_after(a->limits.artim_timeout_ms);
    while (a->state == DCM_STA13) {
        uint8_t type = 0;
        size_t len = 0;
        dcm_error ignored;
        int rc = read_pdu(a, remaining_ms(artim), &type, &len, &ignored);
        dcm_ul_event event = rc == DCM_OK           ? event_for_pdu(type)
                             : rc == DCM_E_INVALID  ? DCM_EVT19
                             : rc == DCM_E_TIMEOUT  ? DCM_EVT18
                                                    : DCM_EVT17;
        dcm_ul_action action = dcm_ul_action_for(a->state, event);
        if (action == DCM_AA7)
            send_short(a, DCM_PDU_ABORT, 0, ABORT_SOURCE_PROVIDER,
                       ABORT_REASON_UNEXPECTED_PDU, &ignored);
        /* A PDU refused for its type or length was not read to its end:
         * the stream has lost its framing, nothing more can be read. */
        if (action == DCM_AR5 || action == DCM_AA2 || rc == DCM_E_INVALID ||
            rc == DCM_E_IO || rc == DCM_E_NOMEM)
            a->state = DCM_STA1;
    }
}

/* Sends A-ABORT and goes to Sta13; the connection is closed when the
 * association is freed. */
static void send_abort(dcm_assoc *a, uint8_t source, uint8_t reason)
{
    dcm_error ignored;
    send_short(a, DCM_PDU_ABORT, 0, source, reason, &ignored);
    a->state = DCM_STA13;
}

/* The table's answer to an event the flow did not expect: the abort
 * actions. Returns the error the caller reports (err already says why;
 * for a received A-ABORT it is said here). */
static int unexpected(dcm_assoc *a, dcm_ul_event event, int rc,
                      dcm_error *err)
{
    dcm_ul_state state = a->state;
    dcm_ul_action action = dcm_ul_action_for(state, event);
    /* The reason we give: what was wrong with the PDU (unknown type,
     * bad parameter) or that it was not expected now. */
    uint8_t reason = event == DCM_EVT19 ? a->invalid_reason
                                        : ABORT_REASON_UNEXPECTED_PDU;
    switch (action) {
    case DCM_AA1: /* the local user gives up (Evt15), or a PDU in Sta2
                     before any association */
        if (event == DCM_EVT15)
            send_abort(a, ABORT_SOURCE_USER, ABORT_REASON_NOT_SPECIFIED);
        else
            send_abort(a, ABORT_SOURCE_PROVIDER, reason);
        break;
    case DCM_AA8:
        send_abort(a, ABORT_SOURCE_PROVIDER, reason);
        break;
    case DCM_AA3: /* the peer aborted */
        a->state = DCM_STA1;
        return dcm_fail(err, DCM_E_ABORTED, -1, "%s aborted the association "
                        "(source %u, reason %u)", a->transport->peer, a->in[2],
                        a->in[3]);
    case DCM_AA7:
        send_abort(a, ABORT_SOURCE_PROVIDER, ABORT_REASON_UNEXPECTED_PDU);
        break;
    default: /* AA-2, AA-4, AA-5, AR-5, AA-6: the connection is gone or goes */
        a->state = DCM_STA1;
        break;
    }
    if (rc == DCM_OK)
        rc = dcm_fail(err, DCM_E_INVALID, -1, "%s sent a PDU that is not "
                      "expected now (%s in state %d)", a->transport->peer,
                      dcm_ul_action_name(action), (int)state);
    return rc;
}

/* The event for a failed read: a malformed PDU, the timer, or the end. */
static dcm_ul_event event_for_failure(const dcm_assoc *a, int rc)
{
    if (rc == DCM_E_INVALID)
        return DCM_EVT19;
    if (rc == DCM_E_CLOSED || rc == DCM_E_IO)
        return DCM_EVT17;
    if (rc == DCM_E_TIMEOUT && (a->state == DCM_STA2 || a->state == DCM_STA13))
        return DCM_EVT18; /* ARTIM runs in these states */
    /* A DIMSE timeout or a local failure: the local user gives up on the
     * association, an A-ABORT request. */
    return DCM_EVT15;
}

/* ---- association objects ------------------------------------------------------- */

void dcm_net_limits_default(dcm_net_limits *limits)
{
    limits->max_pdu_bytes = DCM_DEFAULT_MAX_PDU_BYTES;
    limits->max_associate_bytes = DCM_DEFAULT_MAX_ASSOCIATE_BYTES;
    limits->max_command_bytes = DCM_DEFAULT_MAX_COMMAND_BYTES;
    limits->artim_timeout_ms = DCM_DEFAULT_ARTIM_TIMEOUT_MS;
    limits->dimse_timeout_ms = DCM_DEFAULT_DIMSE_TIMEOUT_MS;
    limits->idle_timeout_ms = DCM_DEFAULT_IDLE_TIMEOUT_MS;
}

static dcm_assoc *assoc_new(dcm_transport *t, const dcm_net_limits *limits,
                            bool requestor, dcm_error *err)
{
    dcm_assoc *a = calloc(1, sizeof *a);
    if (!a) {
        t->ops->close(t);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    a->transport = t;
    a->requestor = requestor;
    a->limits = *limits;
    if (a->limits.max_pdu_bytes < 4096)
        a->limits.max_pdu_bytes = 4096; /* PS3.8 Annex D: no smaller */
    a->state = DCM_STA1;
    a->dataset_due = -1;
    a->ahead = malloc(READ_AHEAD_BYTES); /* optional: reads work without */
    return a;
}

void dcm_assoc_free(dcm_assoc *a)
{
    if (!a)
        return;
    a->transport->ops->close(a->transport);
    free(a->in);
    free(a->out);
    free(a->ahead);
    free(a);
}

void dcm_assoc_abort(dcm_assoc *a)
{
    if (a && dcm_ul_action_for(a->state, DCM_EVT15) == DCM_AA1)
        send_abort(a, ABORT_SOURCE_USER, ABORT_REASON_NOT_SPECIFIED);
}

bool dcm_assoc_is_established(const dcm_assoc *a)
{
    return a->state == DCM_STA6;
}

const dcm_assoc_info *dcm_assoc_info_of(const dcm_assoc *a)
{
    return &a->info;
}

const dcm_transport *dcm_assoc_transport(const dcm_assoc *a)
{
    return a->transport;
}

const dcm_pcontext *dcm_assoc_context(const dcm_assoc *a, uint8_t id)
{
    for (size_t i = 0; i < a->info.context_count; i++) {
        const dcm_pcontext *pc = &a->info.contexts[i];
        if (pc->id == id && pc->result == DCM_PC_ACCEPTED)
            return pc;
    }
    return NULL;
}

const dcm_pcontext *dcm_assoc_find_context(const dcm_assoc *a,
                                           const char *abstract_syntax,
                                           const dcm_ts *ts)
{
    const dcm_pcontext *any = NULL;
    for (size_t i = 0; i < a->info.context_count; i++) {
        const dcm_pcontext *pc = &a->info.contexts[i];
        if (pc->result != DCM_PC_ACCEPTED ||
            strcmp(pc->abstract_syntax, abstract_syntax) != 0)
            continue;
        if (!ts || pc->accepted == ts)
            return pc;
        if (!any)
            any = pc;
    }
    return any;
}

/* Both sides send P-DATA no larger than the peer takes and than our own
 * limit (the peer may say 0: no limit). */
static void set_send_size(dcm_assoc *a)
{
    uint32_t peer = a->info.peer_max_pdu;
    a->send_pdu_bytes = peer && peer < a->limits.max_pdu_bytes
                            ? peer : a->limits.max_pdu_bytes;
    if (a->send_pdu_bytes < 4096 && peer == 0)
        a->send_pdu_bytes = 4096;
}

/* ---- accepting --------------------------------------------------------------- */

const char *dcm_reject_describe(const dcm_reject *rj, char *buf, size_t size)
{
    static const char *const user_reasons[8] = {
        NULL, "no reason given", "application context name not supported",
        "calling AE title not recognized", NULL, NULL, NULL,
        "called AE title not recognized"};
    const char *reason = NULL;
    if (rj->source == DCM_RJ_SOURCE_USER && rj->reason < 8)
        reason = user_reasons[rj->reason];
    else if (rj->source == DCM_RJ_SOURCE_ACSE)
        reason = rj->reason == 2 ? "protocol version not supported"
                                 : "no reason given";
    else if (rj->source == DCM_RJ_SOURCE_PRESENTATION)
        reason = rj->reason == 1   ? "temporary congestion"
                 : rj->reason == 2 ? "local limit exceeded"
                                   : NULL;
    snprintf(buf, size, "%s, %s: %s (%u)",
             rj->result == DCM_RJ_PERMANENT ? "permanent" : "transient",
             rj->source == DCM_RJ_SOURCE_USER    ? "service user"
             : rj->source == DCM_RJ_SOURCE_ACSE  ? "ACSE provider"
                                                 : "presentation provider",
             reason ? reason : "unknown reason", rj->reason);
    return buf;
}

static bool in_list(const char *uid, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] && strcmp(uid, list[i]) == 0)
            return true;
    return false;
}

static bool abstract_syntax_supported(const dcm_scp_config *cfg,
                                      const char *uid)
{
    if (cfg->abstract_syntaxes)
        return in_list(uid, cfg->abstract_syntaxes, cfg->abstract_syntax_count);
    return strcmp(uid, DCM_VERIFICATION_SOP_CLASS) == 0 ||
           in_list(uid, dcm_storage_sop_classes, dcm_storage_sop_class_count);
}

/* Answers each proposed context: the first syntax of our preference that
 * the requestor proposed; roles as proposed for SCU, never SCP (this
 * acceptor stores, it does not send). */
static void negotiate_contexts(const dcm_scp_config *cfg, dcm_assoc_info *info)
{
    const char *const *pref = cfg->ts_preference ? cfg->ts_preference
                                                 : dcm_default_ts_preference;
    size_t pref_count = cfg->ts_preference ? cfg->ts_preference_count
                                           : dcm_default_ts_preference_count;
    for (size_t i = 0; i < info->context_count; i++) {
        dcm_pcontext *pc = &info->contexts[i];
        pc->accepted = NULL;
        if (!abstract_syntax_supported(cfg, pc->abstract_syntax)) {
            pc->result = DCM_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
            continue;
        }
        for (size_t p = 0; p < pref_count && !pc->accepted; p++)
            for (size_t j = 0; j < pc->proposed_count && !pc->accepted; j++)
                if (strcmp(pc->proposed[j]->uid, pref[p]) == 0)
                    pc->accepted = pc->proposed[j];
        pc->result = pc->accepted ? DCM_PC_ACCEPTED
                                  : DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
        if (pc->scu_role >= 0)
            pc->scp_role = 0;
    }
}

/* The acceptor's decision on a well-formed request (AE-6, Sta3 -> Evt7/8). */
static bool acceptable(dcm_assoc *a, const dcm_scp_config *cfg,
                       dcm_reject *rj)
{
    const dcm_assoc_info *rq = &a->info;
    *rj = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_USER, DCM_RJ_NO_REASON};
    if (!(rq->protocol_version & 1)) {
        *rj = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_ACSE,
                           DCM_RJ_PROTOCOL_VERSION_NOT_SUPPORTED};
        return false;
    }
    if (strcmp(rq->application_context, DCM_APPLICATION_CONTEXT) != 0) {
        rj->reason = DCM_RJ_CONTEXT_NOT_SUPPORTED;
        return false;
    }
    if (cfg->ae_title && strcmp(rq->called_ae, cfg->ae_title) != 0) {
        rj->reason = DCM_RJ_CALLED_AE_NOT_RECOGNIZED;
        return false;
    }
    if (cfg->check && cfg->check(cfg->check_ctx, rq, a->transport, rj) != 0)
        return false;
    return true;
}

static int send_reject(dcm_assoc *a, const dcm_reject *rj, dcm_error *err)
{
    dcm_error ignored;
    send_short(a, DCM_PDU_ASSOCIATE_RJ, rj->result, rj->source, rj->reason,
               &ignored);
    a->state = DCM_STA13; /* AE-8: RJ sent, ARTIM started */
    await_close(a);
    char words[128];
    return dcm_fail(err, DCM_E_REJECTED, -1, "rejected %s (calling %s, "
                    "called %s): %s", a->transport->peer, a->info.calling_ae,
                    a->info.called_ae,
                    dcm_reject_describe(rj, words, sizeof words));
}

static int send_accept(dcm_assoc *a, dcm_error *err)
{
    dcm_bytes pdu = {0};
    dcm_pdu_local local = {.max_pdu_bytes = a->limits.max_pdu_bytes};
    int rc = dcm_pdu_encode_associate(false, &a->info, &local, &pdu, err);
    if (rc == DCM_OK)
        rc = send_bytes(a, pdu.data, pdu.len, err);
    free(pdu.data);
    if (rc == DCM_OK) {
        a->state = DCM_STA6; /* AE-7 */
        set_send_size(a);
    }
    return rc;
}

/* Sta2: waits (ARTIM) for the A-ASSOCIATE-RQ and parses it into a->info.
 * Returns DCM_OK in Sta3, or the failure after the table's action. */
static int receive_request(dcm_assoc *a, dcm_error *err)
{
    a->state = DCM_STA2; /* AE-5: connection open, ARTIM started */
    uint8_t type = 0;
    size_t len = 0;
    int rc = read_pdu(a, a->limits.artim_timeout_ms, &type, &len, err);
    dcm_ul_event event = rc == DCM_OK ? event_for_pdu(type)
                                      : event_for_failure(a, rc);
    if (rc == DCM_OK && event == DCM_EVT6) {
        rc = dcm_pdu_parse_associate(true, a->in, len, &a->info, err);
        if (rc == DCM_OK) {
            a->state = DCM_STA3; /* AE-6: indication to the user */
            return DCM_OK;
        }
        a->invalid_reason = ABORT_REASON_INVALID_PARAMETER;
        event = DCM_EVT19;
    }
    return unexpected(a, event, rc, err);
}

dcm_assoc *dcm_assoc_accept(dcm_transport *t, const dcm_scp_config *cfg,
                            dcm_error *err)
{
    dcm_assoc *a = assoc_new(t, &cfg->limits, false, err);
    if (!a)
        return NULL;
    int rc = receive_request(a, err);
    if (rc == DCM_OK) {
        dcm_reject rj;
        if (acceptable(a, cfg, &rj)) {
            negotiate_contexts(cfg, &a->info);
            rc = send_accept(a, err);
        } else {
            rc = send_reject(a, &rj, err);
        }
    }
    if (rc < 0) {
        dcm_assoc_free(a);
        return NULL;
    }
    return a;
}

void dcm_assoc_refuse(dcm_transport *t, const dcm_reject *rj,
                      const dcm_net_limits *limits)
{
    dcm_error ignored;
    dcm_assoc *a = assoc_new(t, limits, false, &ignored);
    if (!a)
        return;
    if (receive_request(a, &ignored) == DCM_OK)
        send_reject(a, rj, &ignored);
    dcm_assoc_free(a);
}

/* ---- requesting ------------------------------------------------------------------ */

/* The request's contexts: IDs 1, 3, 5, ... in the order of the proposals. */
static int fill_request(dcm_assoc *a, const dcm_scu_config *cfg,
                        dcm_error *err)
{
    dcm_assoc_info *rq = &a->info;
    if (cfg->proposal_count == 0 || cfg->proposal_count > DCM_MAX_CONTEXTS)
        return dcm_fail(err, DCM_E_ARG, -1, "%zu presentation contexts "
                        "proposed (1 to 128 possible)", cfg->proposal_count);
    snprintf(rq->calling_ae, sizeof rq->calling_ae, "%s", cfg->calling_ae);
    snprintf(rq->called_ae, sizeof rq->called_ae, "%s", cfg->called_ae);
    snprintf(rq->application_context, sizeof rq->application_context, "%s",
             DCM_APPLICATION_CONTEXT);
    for (size_t i = 0; i < cfg->proposal_count; i++) {
        const dcm_proposal *p = &cfg->proposals[i];
        dcm_pcontext *pc = &rq->contexts[i];
        if (p->syntax_count == 0 || p->syntax_count > DCM_MAX_CONTEXT_SYNTAXES ||
            !dcm_uid_is_valid(p->abstract_syntax))
            return dcm_fail(err, DCM_E_ARG, -1, "proposal %zu is not usable",
                            i);
        pc->id = (uint8_t)(2 * i + 1);
        pc->scu_role = pc->scp_role = -1;
        snprintf(pc->abstract_syntax, sizeof pc->abstract_syntax, "%s",
                 p->abstract_syntax);
        pc->proposed_count = (uint8_t)p->syntax_count;
        memcpy(pc->proposed, p->syntaxes, p->syntax_count * sizeof p->syntaxes[0]);
    }
    rq->context_count = cfg->proposal_count;
    return DCM_OK;
}

/* Matches the answered contexts to what we proposed: IDs must be ours, an
 * accepted syntax one we proposed for that context. */
static int take_answer(dcm_assoc *a, const dcm_assoc_info *proposed,
                       dcm_error *err)
{
    dcm_assoc_info *ac = &a->info;
    for (size_t i = 0; i < ac->context_count; i++) {
        dcm_pcontext *pc = &ac->contexts[i];
        const dcm_pcontext *ours = NULL;
        for (size_t j = 0; j < proposed->context_count && !ours; j++)
            if (proposed->contexts[j].id == pc->id)
                ours = &proposed->contexts[j];
        if (!ours)
            return dcm_fail(err, DCM_E_INVALID, -1, "%s answered a "
                            "presentation context %u we did not propose",
                            a->transport->peer, pc->id);
        memcpy(pc->abstract_syntax, ours->abstract_syntax,
               sizeof pc->abstract_syntax);
        bool proposed_it = pc->result != DCM_PC_ACCEPTED;
        for (size_t j = 0; j < ours->proposed_count && !proposed_it; j++)
            proposed_it = ours->proposed[j] == pc->accepted;
        if (!proposed_it)
            return dcm_fail(err, DCM_E_INVALID, -1, "%s accepted context %u "
                            "with a transfer syntax we did not propose",
                            a->transport->peer, pc->id);
    }
    return DCM_OK;
}

static int send_request(dcm_assoc *a, const dcm_scu_config *cfg,
                        dcm_error *err)
{
    dcm_bytes pdu = {0};
    dcm_pdu_local local = {.max_pdu_bytes = a->limits.max_pdu_bytes,
                           .user = cfg->user};
    int rc = dcm_pdu_encode_associate(true, &a->info, &local, &pdu, err);
    if (rc == DCM_OK)
        rc = send_bytes(a, pdu.data, pdu.len, err);
    free(pdu.data);
    if (rc == DCM_OK)
        a->state = DCM_STA5; /* AE-2 */
    return rc;
}

/* Sta5: the answer to our request. */
static int receive_answer(dcm_assoc *a, const dcm_assoc_info *proposed,
                          dcm_error *err)
{
    uint8_t type = 0;
    size_t len = 0;
    int rc = read_pdu(a, a->limits.dimse_timeout_ms, &type, &len, err);
    dcm_ul_event event = rc == DCM_OK ? event_for_pdu(type)
                                      : event_for_failure(a, rc);
    if (rc == DCM_OK && event == DCM_EVT4) { /* AE-4 */
        dcm_reject rj = {a->in[1], a->in[2], a->in[3]};
        char words[128];
        a->state = DCM_STA1;
        return dcm_fail(err, DCM_E_REJECTED, -1, "%s rejected the "
                        "association: %s", a->transport->peer,
                        dcm_reject_describe(&rj, words, sizeof words));
    }
    if (rc == DCM_OK && event == DCM_EVT3) { /* AE-3 */
        rc = dcm_pdu_parse_associate(false, a->in, len, &a->info, err);
        if (rc == DCM_OK)
            rc = take_answer(a, proposed, err);
        if (rc == DCM_OK) {
            a->state = DCM_STA6;
            set_send_size(a);
            return DCM_OK;
        }
        a->invalid_reason = ABORT_REASON_INVALID_PARAMETER;
        event = DCM_EVT19;
    }
    return unexpected(a, event, rc, err);
}

dcm_assoc *dcm_assoc_request(dcm_transport *t, const dcm_scu_config *cfg,
                             dcm_error *err)
{
    dcm_assoc *a = assoc_new(t, &cfg->limits, true, err);
    if (!a)
        return NULL;
    dcm_assoc_info *proposed = malloc(sizeof *proposed);
    a->state = DCM_STA4; /* AE-1: the transport is already connected */
    int rc = proposed ? fill_request(a, cfg, err)
                      : dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    if (rc == DCM_OK) {
        *proposed = a->info;
        rc = send_request(a, cfg, err);
    }
    if (rc == DCM_OK)
        rc = receive_answer(a, proposed, err);
    free(proposed);
    if (rc < 0) {
        dcm_assoc_free(a);
        return NULL;
    }
    return a;
}

/* ---- data transfer ----------------------------------------------------------------- */

/* Answers the peer's A-RELEASE-RQ (AR-2, then our response AR-4) and
 * waits for it to close. */
static int answer_release(dcm_assoc *a, dcm_error *err)
{
    a->state = DCM_STA8;
    int rc = send_short(a, DCM_PDU_RELEASE_RP, 0, 0, 0, err);
    a->state = DCM_STA13;
    if (rc == DCM_OK)
        await_close(a);
    return rc < 0 ? rc : DCM_RECEIVED_RELEASE;
}

int dcm_assoc_next_pdv(dcm_assoc *a, int first_timeout_ms, dcm_pdv *pdv,
                       dcm_error *err)
{
    while (a->in_pos >= a->in_len) {
        if (a->state != DCM_STA6 && a->state != DCM_STA7)
            return dcm_fail(err, DCM_E_ARG, -1, "no association to read from");
        a->in_len = a->in_pos = 0;
        uint8_t type = 0;
        size_t len = 0;
        int rc = read_pdu(a, first_timeout_ms, &type, &len, err);
        dcm_ul_event event = rc == DCM_OK ? event_for_pdu(type)
                                          : event_for_failure(a, rc);
        dcm_ul_action action = dcm_ul_action_for(a->state, event);
        if (action == DCM_DT2 || action == DCM_AR6) {
            a->in_len = len;
        } else if (action == DCM_AR2) {
            return answer_release(a, err);
        } else {
            return unexpected(a, event, rc, err);
        }
    }
    /* A PDV item: length (4, counting what follows), context ID, control
     * header (bit 0 command, bit 1 last fragment), data. */
    size_t left = a->in_len - a->in_pos;
    const uint8_t *p = a->in + a->in_pos;
    uint32_t item_len = left >= 4 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                        (uint32_t)p[2] << 8 | p[3]
                                  : 0;
    if (left < DCM_PDV_HEADER_BYTES || item_len < 2 || item_len > left - 4) {
        dcm_fail(err, DCM_E_INVALID, -1, "%s sent a PDV item whose length "
                 "does not fit its P-DATA PDU", a->transport->peer);
        a->invalid_reason = ABORT_REASON_INVALID_PARAMETER;
        return unexpected(a, DCM_EVT19, DCM_E_INVALID, err);
    }
    pdv->context_id = p[4];
    pdv->command = p[5] & 1;
    pdv->last = (p[5] >> 1) & 1;
    pdv->data = p + DCM_PDV_HEADER_BYTES;
    pdv->len = item_len - 2;
    a->in_pos += 4 + (size_t)item_len;
    if (!dcm_assoc_context(a, pdv->context_id)) {
        dcm_fail(err, DCM_E_INVALID, -1, "%s sent data on presentation "
                 "context %u, which is not accepted", a->transport->peer,
                 pdv->context_id);
        a->invalid_reason = ABORT_REASON_INVALID_PARAMETER;
        return unexpected(a, DCM_EVT19, DCM_E_INVALID, err);
    }
    return DCM_OK;
}

uint8_t *dcm_assoc_pdv_space(dcm_assoc *a, size_t *capacity)
{
    size_t total = DCM_PDU_HEADER_BYTES + (size_t)a->send_pdu_bytes;
    if (a->out_cap < total) {
        uint8_t *bigger = realloc(a->out, total);
        if (!bigger)
            return NULL;
        a->out = bigger;
        a->out_cap = total;
    }
    *capacity = a->send_pdu_bytes - DCM_PDV_HEADER_BYTES;
    return a->out + DCM_PDU_HEADER_BYTES + DCM_PDV_HEADER_BYTES;
}

int dcm_assoc_send_pdv(dcm_assoc *a, uint8_t context_id, bool command,
                       bool last, size_t len, dcm_error *err)
{
    if (dcm_ul_action_for(a->state, DCM_EVT9) != DCM_DT1)
        return dcm_fail(err, DCM_E_ARG, -1, "no established association to "
                        "send on");
    uint32_t item_len = (uint32_t)len + 2;
    uint32_t pdu_len = item_len + 4;
    uint8_t *p = a->out;
    p[0] = DCM_PDU_P_DATA;
    p[1] = 0;
    p[2] = (uint8_t)(pdu_len >> 24);
    p[3] = (uint8_t)(pdu_len >> 16);
    p[4] = (uint8_t)(pdu_len >> 8);
    p[5] = (uint8_t)pdu_len;
    p[6] = (uint8_t)(item_len >> 24);
    p[7] = (uint8_t)(item_len >> 16);
    p[8] = (uint8_t)(item_len >> 8);
    p[9] = (uint8_t)item_len;
    p[10] = context_id;
    p[11] = (uint8_t)((command ? 1 : 0) | (last ? 2 : 0));
    return send_bytes(a, p, DCM_PDU_HEADER_BYTES + pdu_len, err);
}

const dcm_net_limits *dcm_assoc_limits(const dcm_assoc *a)
{
    return &a->limits;
}

void dcm_assoc_set_dataset_due(dcm_assoc *a, int context_id)
{
    a->dataset_due = context_id;
}

int dcm_assoc_dataset_due(const dcm_assoc *a)
{
    return a->dataset_due;
}

/* ---- release ------------------------------------------------------------------------ */

int dcm_assoc_release(dcm_assoc *a, dcm_error *err)
{
    if (dcm_ul_action_for(a->state, DCM_EVT11) != DCM_AR1)
        return dcm_fail(err, DCM_E_ARG, -1, "no established association to "
                        "release");
    int rc = send_short(a, DCM_PDU_RELEASE_RQ, 0, 0, 0, err);
    if (rc < 0)
        return rc;
    a->state = DCM_STA7;
    for (;;) {
        uint8_t type = 0;
        size_t len = 0;
        rc = read_pdu(a, a->limits.dimse_timeout_ms, &type, &len, err);
        dcm_ul_event event = rc == DCM_OK ? event_for_pdu(type)
                                          : event_for_failure(a, rc);
        switch (dcm_ul_action_for(a->state, event)) {
        case DCM_AR3: /* RP: released; we close (on free) */
            a->state = DCM_STA1;
            return DCM_OK;
        case DCM_AR6: /* late data for us: nothing is waiting for it */
            break;
        case DCM_AR8: /* release collision (PS3.8 9.2.1): the requestor
                         answers first (Sta9, AR-9, Sta11); the acceptor
                         waits for that answer (Sta10) */
            if (!a->requestor) {
                a->state = DCM_STA10;
                break;
            }
            rc = send_short(a, DCM_PDU_RELEASE_RP, 0, 0, 0, err);
            if (rc < 0)
                return rc;
            a->state = DCM_STA11;
            break;
        case DCM_AR10: /* acceptor side of a collision: Sta12, answer */
            rc = send_short(a, DCM_PDU_RELEASE_RP, 0, 0, 0, err);
            a->state = DCM_STA13;
            if (rc == DCM_OK)
                await_close(a);
            return rc;
        default:
            return unexpected(a, event, rc, err);
        }
    }
}
