/* fuzz_dicom_net.c - libFuzzer harness for the network layer: the PDU
 * parser, the Upper Layer state machine (PS3.8 Table 9-10) and DIMSE,
 * driven through the public API over an in-memory transport that plays
 * the peer.
 *
 * Input layout:
 *   byte 0  how the peer's bytes arrive and end
 *           bits 0-3  piece size class: 0 all at once, else pieces of
 *                     1..piece_max[class] bytes (sizes from a PRNG seeded
 *                     with byte 0, so the same input splits the same way)
 *           bit 4     the stream ends in DCM_E_TIMEOUT instead of
 *                     DCM_E_CLOSED (the timer paths: ARTIM, DIMSE, idle)
 *   byte 1  what this end does
 *           bits 0-1  0, 1: accept (dcm_assoc_accept + dcm_scp_serve);
 *                     2: refuse (dcm_assoc_refuse); 3: request
 *                     (dcm_assoc_request, C-ECHO, release: the input then
 *                     plays the acceptor)
 *           bit 2     the store handler refuses each instance (drain path)
 *           bit 3     a restrictive acceptor: Verification and CT Image
 *                     Storage only, implicit VR LE only, and a check that
 *                     rejects calling AE titles starting with 'X'
 *   bytes 2-  what the peer sends
 *
 * Oracle beyond the sanitizers: everything this end writes must be whole,
 * well-formed PDUs (a known type whose length field matches) with P-DATA
 * no longer than the peer's maximum length, and after an A-ABORT nothing
 * but another A-ABORT (AA-7 in Sta13) may be written.
 *
 * FUZZ_NET_TRACE=1 in the environment prints what each run wrote and how
 * it ended (to check what a seed or a finding reaches). */
#include "dicom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int trace = -1; /* FUZZ_NET_TRACE: 1 prints, 0 quiet */

typedef struct mem_transport {
    dcm_transport base; /* first */
    const uint8_t *data;
    size_t len, pos;
    uint32_t rng;
    size_t piece_max;   /* 0: whatever is asked */
    int end_code;       /* DCM_E_CLOSED or DCM_E_TIMEOUT */
    bool aborted;       /* we wrote an A-ABORT */
    uint32_t peer_max;  /* the peer's maximum length once known; 0: none */
    size_t written;     /* bytes this end wrote */
} mem_transport;

static const size_t piece_max[16] = {0,  1,   2,   3,    4,    5,    7,    13,
                                     16, 64, 100, 256, 1024, 4096, 9000, 70000};

static uint32_t next_rand(mem_transport *m)
{
    /* xorshift32; a zero state would stay zero */
    uint32_t x = m->rng ? m->rng : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rng = x;
    return x;
}

static long mem_read(dcm_transport *t, void *buf, size_t len, int timeout_ms,
                     dcm_error *err)
{
    mem_transport *m = (mem_transport *)t;
    (void)timeout_ms; /* reads never wait: a timeout only ends the stream */
    if (len == 0)
        abort(); /* the contract is 1 to len bytes */
    if (m->pos >= m->len) {
        if (err) {
            err->code = m->end_code;
            snprintf(err->message, sizeof err->message, "end of input");
        }
        return m->end_code;
    }
    size_t n = m->len - m->pos;
    if (n > len)
        n = len;
    if (m->piece_max) {
        size_t piece = 1 + next_rand(m) % m->piece_max;
        if (n > piece)
            n = piece;
    }
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (long)n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Every write of the association layer is one whole PDU. */
static int mem_write(dcm_transport *t, const void *buf, size_t len,
                     int timeout_ms, dcm_error *err)
{
    mem_transport *m = (mem_transport *)t;
    const uint8_t *p = buf;
    (void)timeout_ms;
    (void)err;
    if (m->aborted && (len < 1 || p[0] != 0x07)) {
        /* In Sta13 only AA-7 writes: another A-ABORT */
        fprintf(stderr, "wrote %zu bytes after an A-ABORT\n", len);
        abort();
    }
    if (len < 6 || p[0] < 0x01 || p[0] > 0x07 || be32(p + 2) != len - 6) {
        fprintf(stderr, "wrote a malformed PDU (%zu bytes, type 0x%02X)\n",
                len, len ? p[0] : 0);
        abort();
    }
    if ((p[0] == 0x03 || p[0] >= 0x05) && len != 10) {
        fprintf(stderr, "wrote a PDU of type 0x%02X with %zu bytes\n", p[0],
                len);
        abort();
    }
    if (p[0] == 0x04) { /* P-DATA: its PDV items must fill it exactly */
        if (m->peer_max && len - 6 > m->peer_max) {
            fprintf(stderr, "wrote a P-DATA PDU of %zu bytes, over the "
                    "peer's maximum length %u\n", len - 6, m->peer_max);
            abort();
        }
        size_t at = 6;
        while (at < len) {
            if (len - at < 6 || be32(p + at) < 2 || be32(p + at) > len - at - 4) {
                fprintf(stderr, "wrote a P-DATA PDU with a bad PDV item\n");
                abort();
            }
            at += 4 + be32(p + at);
        }
    }
    if (trace)
        fprintf(stderr, "  wrote PDU 0x%02X, %zu bytes [%02X %02X %02X]\n",
                p[0], len, p[7 % len], p[8 % len], p[9 % len]);
    if (p[0] == 0x07)
        m->aborted = true;
    m->written += len;
    return DCM_OK;
}

static void mem_close(dcm_transport *t)
{
    free(t);
}

static const dcm_transport_ops mem_ops = {
    .read = mem_read, .write = mem_write, .close = mem_close};

/* ---- the store handler: counts and discards -------------------------------- */

typedef struct sink {
    bool refuse;
    unsigned long long bytes;
    int instance;
} sink;

static int sink_begin(void *ctx, const dcm_assoc *a, const dcm_command *rq,
                      void **instance, uint16_t *status)
{
    sink *s = ctx;
    (void)a;
    (void)rq;
    if (s->refuse) {
        *status = DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    *instance = s;
    return 0;
}

static int sink_data(void *ctx, const void *bytes, size_t len)
{
    sink *s = ctx;
    (void)bytes;
    s->bytes += len;
    return 0;
}

static uint16_t sink_end(void *instance, bool complete, char comment[65])
{
    (void)instance;
    if (!complete) {
        snprintf(comment, 65, "incomplete");
        return DCM_STATUS_OUT_OF_RESOURCES;
    }
    return DCM_STATUS_SUCCESS;
}

static int reject_x(void *ctx, const dcm_assoc_info *rq,
                    const dcm_transport *t, dcm_reject *rj)
{
    (void)ctx;
    (void)t;
    if (rq->calling_ae[0] != 'X')
        return 0;
    *rj = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_USER,
                       DCM_RJ_CALLING_AE_NOT_RECOGNIZED};
    return -1;
}

/* Short timeouts: they never fire (reads return at once), but keep a
 * harness that drifted onto a real transport from hanging. */
static void small_limits(dcm_net_limits *limits)
{
    dcm_net_limits_default(limits);
    limits->artim_timeout_ms = 10;
    limits->dimse_timeout_ms = 10;
    limits->idle_timeout_ms = 10;
}

static void run_acceptor(dcm_transport *t, uint8_t mode)
{
    static const char *const abstract[] = {DCM_VERIFICATION_SOP_CLASS,
                                           "1.2.840.10008.5.1.4.1.1.2"};
    static const char *const syntaxes[] = {DCM_TS_IMPLICIT_LE};
    dcm_scp_config cfg = {.ae_title = "SIREN"};
    small_limits(&cfg.limits);
    if (mode & 8) {
        cfg.abstract_syntaxes = abstract;
        cfg.abstract_syntax_count = 2;
        cfg.ts_preference = syntaxes;
        cfg.ts_preference_count = 1;
        cfg.check = reject_x;
    }
    dcm_error err = {0};
    if ((mode & 3) == 2) {
        dcm_reject rj = {DCM_RJ_TRANSIENT, DCM_RJ_SOURCE_PRESENTATION,
                         DCM_RJ_LOCAL_LIMIT_EXCEEDED};
        dcm_assoc_refuse(t, &rj, &cfg.limits);
        return;
    }
    dcm_assoc *a = dcm_assoc_accept(t, &cfg, &err);
    if (trace)
        fprintf(stderr, "  accept: %s\n", a ? "established" : err.message);
    if (!a)
        return;
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    ((mem_transport *)t)->peer_max = info->peer_max_pdu;
    /* What the gateway logs and checks must be sane strings and counts. */
    if (info->context_count > DCM_MAX_CONTEXTS ||
        strlen(info->calling_ae) > DCM_AE_TITLE_MAX ||
        strlen(info->called_ae) > DCM_AE_TITLE_MAX ||
        strlen(info->user.username) >= sizeof info->user.username ||
        strlen(info->peer_implementation_version) > DCM_AE_TITLE_MAX)
        abort();
    for (size_t i = 0; i < info->context_count; i++) {
        const dcm_pcontext *pc = &info->contexts[i];
        if (pc->id % 2 == 0 || pc->proposed_count > DCM_MAX_CONTEXT_SYNTAXES ||
            (pc->result == DCM_PC_ACCEPTED && !pc->accepted))
            abort();
    }
    sink s = {.refuse = (mode & 4) != 0};
    dcm_store_handler handler = {.begin = sink_begin, .data = sink_data,
                                 .end = sink_end, .ctx = &s};
    int rc = dcm_scp_serve(a, &handler, &err);
    if (trace)
        fprintf(stderr, "  serve: %s (%llu data bytes)\n",
                rc == DCM_OK ? "released" : err.message, s.bytes);
    if (dcm_assoc_is_established(a))
        abort(); /* dcm_scp_serve returns only when it is over */
    dcm_assoc_free(a);
}

/* The input answers as an acceptor would: A-ASSOCIATE-AC/RJ, the C-ECHO
 * response, A-RELEASE-RP. */
static void run_requestor(dcm_transport *t)
{
    dcm_proposal proposals[2] = {
        {.abstract_syntax = DCM_VERIFICATION_SOP_CLASS,
         .syntaxes = {dcm_ts_find(DCM_TS_IMPLICIT_LE)},
         .syntax_count = 1},
        {.abstract_syntax = "1.2.840.10008.5.1.4.1.1.2",
         .syntaxes = {dcm_ts_find(DCM_TS_EXPLICIT_LE),
                      dcm_ts_find(DCM_TS_IMPLICIT_LE)},
         .syntax_count = 2},
    };
    dcm_user_identity user = {.type = DCM_USER_USERNAME,
                              .response_requested = true};
    snprintf(user.username, sizeof user.username, "fuzz");
    dcm_scu_config cfg = {.calling_ae = "FUZZ", .called_ae = "SIREN",
                          .proposals = proposals, .proposal_count = 2,
                          .user = &user};
    small_limits(&cfg.limits);
    dcm_error err = {0};
    dcm_assoc *a = dcm_assoc_request(t, &cfg, &err);
    if (trace)
        fprintf(stderr, "  request: %s\n", a ? "established" : err.message);
    if (!a)
        return;
    ((mem_transport *)t)->peer_max = dcm_assoc_info_of(a)->peer_max_pdu;
    uint16_t status = 0xFFFF;
    int rc = dcm_echo(a, &status, &err);
    if (trace)
        fprintf(stderr, "  echo: %s, status 0x%04X\n",
                rc == DCM_OK ? "answered" : err.message, status);
    if (rc == DCM_OK && dcm_assoc_is_established(a)) {
        rc = dcm_assoc_release(a, &err);
        if (trace)
            fprintf(stderr, "  release: %s\n",
                    rc == DCM_OK ? "released" : err.message);
    } else if (dcm_assoc_is_established(a)) {
        dcm_assoc_abort(a);
    }
    dcm_assoc_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (trace < 0) {
        const char *env = getenv("FUZZ_NET_TRACE");
        trace = env && *env && *env != '0';
    }
    if (size < 2)
        return 0;
    mem_transport *m = calloc(1, sizeof *m);
    if (!m)
        return 0;
    m->base.ops = &mem_ops;
    snprintf(m->base.peer, sizeof m->base.peer, "fuzz:1");
    m->data = data + 2;
    m->len = size - 2;
    m->rng = data[0] * 0x01000193u + 1;
    m->piece_max = piece_max[data[0] & 15];
    m->end_code = data[0] & 16 ? DCM_E_TIMEOUT : DCM_E_CLOSED;
    if ((data[1] & 3) == 3)
        run_requestor(&m->base);
    else
        run_acceptor(&m->base, data[1]);
    return 0;
}
