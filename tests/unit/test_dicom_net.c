/*
 * test_dicom_net.c - the network layer (PS3.8 Upper Layer, PS3.7 DIMSE)
 * as a peer sees it. Read from top to bottom it says:
 *
 *  1. which action the Upper Layer takes for every event in every state,
 *     compared cell by cell with PS3.8 Table 9-10 as written out here from
 *     the standard;
 *  2. what an A-ASSOCIATE-RQ/-AC carries on the wire, what the parser makes
 *     of it, and which malformed PDUs it refuses;
 *  3. whole associations over a socketpair, the acceptor (dcm_assoc_accept,
 *     dcm_scp_serve) in a thread and the requestor in the test: negotiation,
 *     rejection, C-ECHO, C-STORE byte for byte or re-encoded, status codes,
 *     release, abort, the size of the PDUs each side sends, the table's
 *     abort actions, release collisions;
 *  4. DIMSE command and data sets through dcm_send_command and
 *     dcm_receive_command.
 *
 * Where one side has to break the rules, or be watched byte by byte, it is
 * driven by hand with raw PDUs (raw_*) or its transport is wrapped in a tap
 * that records every byte it reads and writes.
 *
 * Nothing here waits on a clock: each step blocks on the other side's
 * bytes (the socketpair makes the order fixed). The 5 s timeouts only turn
 * a bug that would hang into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "internal.h"

#define CT_IMAGE "1.2.840.10008.5.1.4.1.1.2"
#define MR_IMAGE "1.2.840.10008.5.1.4.1.1.4"
#define NOT_A_STORAGE_CLASS "1.2.3.4.5.6.7.8.9"
#define JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define TIMEOUT_MS 5000
#define PATH_BYTES 512

#define assert_ok(expr, err)                                                 \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != DCM_OK)                                                   \
            fail_msg("%s returned %d: %s", #expr, rc_, (err)->message);      \
    } while (0)

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static const dcm_ts *ts(const char *uid)
{
    const dcm_ts *found = dcm_ts_find(uid);
    assert_non_null(found);
    return found;
}

/* ========================================================================
 * 1. The state table (PS3.8 9.2.3, Table 9-10)
 * ======================================================================== */

/* Table 9-10 as the standard prints it: a row per event, a column per
 * state; "" where the event cannot happen in the state. */
static const char *const table_9_10[19][13] = {
    /*           Sta1    Sta2    Sta3    Sta4    Sta5    Sta6    Sta7
                 Sta8    Sta9    Sta10   Sta11   Sta12   Sta13 */
    /* Evt1  A-ASSOCIATE request (local user) */
    {"AE-1", "", "", "", "", "", "", "", "", "", "", "", ""},
    /* Evt2  transport connect confirmation */
    {"", "", "", "AE-2", "", "", "", "", "", "", "", "", ""},
    /* Evt3  A-ASSOCIATE-AC PDU received */
    {"", "AA-1", "AA-8", "", "AE-3", "AA-8", "AA-8",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"},
    /* Evt4  A-ASSOCIATE-RJ PDU received */
    {"", "AA-1", "AA-8", "", "AE-4", "AA-8", "AA-8",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"},
    /* Evt5  transport connection indication */
    {"AE-5", "", "", "", "", "", "", "", "", "", "", "", ""},
    /* Evt6  A-ASSOCIATE-RQ PDU received */
    {"", "AE-6", "AA-8", "", "AA-8", "AA-8", "AA-8",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-7"},
    /* Evt7  A-ASSOCIATE response primitive (accept) */
    {"", "", "AE-7", "", "", "", "", "", "", "", "", "", ""},
    /* Evt8  A-ASSOCIATE response primitive (reject) */
    {"", "", "AE-8", "", "", "", "", "", "", "", "", "", ""},
    /* Evt9  P-DATA request primitive */
    {"", "", "", "", "", "DT-1", "", "AR-7", "", "", "", "", ""},
    /* Evt10 P-DATA-TF PDU received */
    {"", "AA-1", "AA-8", "", "AA-8", "DT-2", "AR-6",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"},
    /* Evt11 A-RELEASE request primitive */
    {"", "", "", "", "", "AR-1", "", "", "", "", "", "", ""},
    /* Evt12 A-RELEASE-RQ PDU received */
    {"", "AA-1", "AA-8", "", "AA-8", "AR-2", "AR-8",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-6"},
    /* Evt13 A-RELEASE-RP PDU received */
    {"", "AA-1", "AA-8", "", "AA-8", "AA-8", "AR-3",
     "AA-8", "AA-8", "AR-10", "AR-3", "AA-8", "AA-6"},
    /* Evt14 A-RELEASE response primitive */
    {"", "", "", "", "", "", "", "AR-4", "AR-9", "", "", "AR-4", ""},
    /* Evt15 A-ABORT request primitive */
    {"", "", "AA-1", "AA-2", "AA-1", "AA-1", "AA-1",
     "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", ""},
    /* Evt16 A-ABORT PDU received */
    {"", "AA-2", "AA-3", "", "AA-3", "AA-3", "AA-3",
     "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-2"},
    /* Evt17 transport connection closed indication */
    {"", "AA-5", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4",
     "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AR-5"},
    /* Evt18 ARTIM timer expired */
    {"", "AA-2", "", "", "", "", "", "", "", "", "", "", "AA-2"},
    /* Evt19 unrecognized or invalid PDU received */
    {"", "AA-1", "AA-8", "", "AA-8", "AA-8", "AA-8",
     "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-7"},
};

/* Every (state, event) pair, all 247 of them; each difference is printed
 * before the test fails. */
static void state_table_is_ps3_8_table_9_10(void **state)
{
    (void)state;
    int differences = 0;
    for (int event = 1; event <= 19; event++)
        for (int sta = 1; sta <= 13; sta++) {
            const char *want = table_9_10[event - 1][sta - 1];
            if (!want[0])
                want = "none";
            const char *got = dcm_ul_action_name(
                dcm_ul_action_for((dcm_ul_state)sta, (dcm_ul_event)event));
            if (strcmp(want, got) != 0) {
                print_error("Evt%d in Sta%d: PS3.8 says %s, net_fsm.c %s\n",
                            event, sta, want, got);
                differences++;
            }
        }
    assert_int_equal(differences, 0);
}

/* The action enumerators are spelled as the standard spells them, and
 * anything outside Sta1-13 / Evt1-19 has no action. */
static void state_table_names_and_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        int first, count;
    } families[] = {{"AE", DCM_AE1, 8}, {"DT", DCM_DT1, 2},
                    {"AR", DCM_AR1, 10}, {"AA", DCM_AA1, 8}};
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (int i = 0; i < families[f].count; i++) {
            char want[16];
            snprintf(want, sizeof want, "%s-%d", families[f].prefix, i + 1);
            assert_string_equal(
                dcm_ul_action_name((dcm_ul_action)(families[f].first + i)),
                want);
        }
    assert_string_equal(dcm_ul_action_name(DCM_ACT_NONE), "none");
    assert_int_equal(dcm_ul_action_for((dcm_ul_state)0, DCM_EVT1),
                     DCM_ACT_NONE);
    assert_int_equal(dcm_ul_action_for((dcm_ul_state)14, DCM_EVT17),
                     DCM_ACT_NONE);
    assert_int_equal(dcm_ul_action_for(DCM_STA6, (dcm_ul_event)0),
                     DCM_ACT_NONE);
    assert_int_equal(dcm_ul_action_for(DCM_STA6, (dcm_ul_event)20),
                     DCM_ACT_NONE);
}

/* ========================================================================
 * 2. A-ASSOCIATE PDUs
 * ======================================================================== */

/* ---- building PDUs by hand (big endian, as PS3.8) ----------------------- */

/* A 16-byte AE title field holding exactly these bytes, space padded. */
static void put_ae_field(dcm_bytes *b, const char *ae)
{
    char field[16];
    size_t n = strlen(ae);
    memset(field, ' ', sizeof field);
    memcpy(field, ae, n < 16 ? n : 16);
    dcm_bytes_put(b, field, sizeof field);
}

/* The PDU header and fixed fields of an A-ASSOCIATE-RQ (PS3.8 9.3.2). */
static void rq_begin(dcm_bytes *b, const char *called, const char *calling)
{
    static const uint8_t reserved[32];
    b->len = 0;
    dcm_bytes_u8(b, DCM_PDU_ASSOCIATE_RQ);
    dcm_bytes_u8(b, 0);
    dcm_bytes_u32(b, 0); /* PDU length: pdu_end */
    dcm_bytes_u16(b, 1); /* protocol version 1 */
    dcm_bytes_u16(b, 0);
    put_ae_field(b, called);
    put_ae_field(b, calling);
    dcm_bytes_put(b, reserved, sizeof reserved);
}

static void pdu_end(dcm_bytes *b)
{
    dcm_bytes_patch32(b, 2, (uint32_t)(b->len - DCM_PDU_HEADER_BYTES));
}

/* An item or sub-item: type, reserved, 2-byte length (item_end). */
static size_t item_begin(dcm_bytes *b, uint8_t type)
{
    dcm_bytes_u8(b, type);
    dcm_bytes_u8(b, 0);
    size_t at = b->len;
    dcm_bytes_u16(b, 0);
    return at;
}

static void item_end(dcm_bytes *b, size_t length_at)
{
    dcm_bytes_patch16(b, length_at, (uint16_t)(b->len - length_at - 2));
}

static void item_text(dcm_bytes *b, uint8_t type, const char *text)
{
    size_t at = item_begin(b, type);
    dcm_bytes_put(b, text, strlen(text));
    item_end(b, at);
}

/* A presentation context item (0x20): ID, abstract syntax, transfer
 * syntaxes (NULL-terminated). */
static void rq_context(dcm_bytes *b, uint8_t id, const char *abstract, ...)
{
    size_t at = item_begin(b, 0x20);
    dcm_bytes_u8(b, id);
    dcm_bytes_put(b, "\0\0\0", 3);
    item_text(b, 0x30, abstract);
    va_list ap;
    va_start(ap, abstract);
    for (const char *uid; (uid = va_arg(ap, const char *)) != NULL;)
        item_text(b, 0x40, uid);
    va_end(ap);
    item_end(b, at);
}

/* The user information item with its mandatory sub-items (maximum length,
 * implementation class UID); the caller may add more before item_end. */
static size_t user_info_begin(dcm_bytes *b, uint32_t max_pdu_bytes)
{
    size_t at = item_begin(b, 0x50);
    size_t max_at = item_begin(b, 0x51);
    dcm_bytes_u32(b, max_pdu_bytes);
    item_end(b, max_at);
    item_text(b, 0x52, "1.2.3.4.5.6");
    return at;
}

static void rq_user_info(dcm_bytes *b, uint32_t max_pdu_bytes)
{
    item_end(b, user_info_begin(b, max_pdu_bytes));
}

/* A well-formed request; every malformed one below differs from it in
 * one thing. Its second context proposes a transfer syntax nobody knows. */
static void good_request(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    rq_context(b, 3, CT_IMAGE, DCM_TS_EXPLICIT_LE, "1.2.3.999.1",
               DCM_TS_IMPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

/* Parses an A-ASSOCIATE PDU built whole (header included). */
static int parse_pdu(bool request, const dcm_bytes *pdu, dcm_assoc_info *info,
                     dcm_error *err)
{
    return dcm_pdu_parse_associate(request, pdu->data + DCM_PDU_HEADER_BYTES,
                                   pdu->len - DCM_PDU_HEADER_BYTES, info, err);
}

/* The content of the nth sub-item of this type in the user information
 * item of a whole A-ASSOCIATE PDU, or NULL. */
static const uint8_t *user_sub_item(const dcm_bytes *pdu, uint8_t type,
                                    size_t nth, size_t *len)
{
    size_t pos = DCM_PDU_HEADER_BYTES + 68;
    while (pos + 4 <= pdu->len) {
        size_t item_len = be16(pdu->data + pos + 2);
        if (pdu->data[pos] == 0x50) {
            size_t sub = pos + 4, end = pos + 4 + item_len;
            while (sub + 4 <= end) {
                size_t sub_len = be16(pdu->data + sub + 2);
                if (pdu->data[sub] == type && nth-- == 0) {
                    *len = sub_len;
                    return pdu->data + sub + 4;
                }
                sub += 4 + sub_len;
            }
        }
        pos += 4 + item_len;
    }
    return NULL;
}

static void set_context(dcm_pcontext *pc, uint8_t id, const char *abstract)
{
    memset(pc, 0, sizeof *pc);
    pc->id = id;
    pc->scu_role = pc->scp_role = -1;
    snprintf(pc->abstract_syntax, sizeof pc->abstract_syntax, "%s", abstract);
}

/* ---- round trips --------------------------------------------------------- */

/* What SIREN's requestor puts on the wire and what an acceptor reads. */
static void request_round_trip(void **state)
{
    (void)state;
    dcm_assoc_info *rq = calloc(1, sizeof *rq);
    dcm_assoc_info *got = calloc(1, sizeof *got);
    assert_non_null(rq);
    assert_non_null(got);
    snprintf(rq->called_ae, sizeof rq->called_ae, "SIREN_SCP");
    snprintf(rq->calling_ae, sizeof rq->calling_ae, "CT01");
    set_context(&rq->contexts[0], 1, DCM_VERIFICATION_SOP_CLASS);
    rq->contexts[0].proposed[0] = ts(DCM_TS_IMPLICIT_LE);
    rq->contexts[0].proposed_count = 1;
    set_context(&rq->contexts[1], 3, CT_IMAGE);
    rq->contexts[1].proposed[0] = ts(DCM_TS_EXPLICIT_LE);
    rq->contexts[1].proposed[1] = ts(DCM_TS_IMPLICIT_LE);
    rq->contexts[1].proposed[2] = ts(DCM_TS_DEFLATED_LE);
    rq->contexts[1].proposed_count = 3;
    rq->contexts[1].scu_role = 1; /* role selection for CT: SCU, not SCP */
    rq->contexts[1].scp_role = 0;
    set_context(&rq->contexts[2], 5, CT_IMAGE); /* CT again, no role */
    rq->contexts[2].proposed[0] = ts(JPEG_BASELINE);
    rq->contexts[2].proposed_count = 1;
    rq->context_count = 3;
    dcm_user_identity user = {.type = DCM_USER_USERNAME,
                              .response_requested = true,
                              .username = "alice"};
    dcm_pdu_local local = {.max_pdu_bytes = 16384, .user = &user};
    dcm_bytes pdu = {0};
    dcm_error err = {0};
    assert_ok(dcm_pdu_encode_associate(true, rq, &local, &pdu, &err), &err);

    /* On the wire: type 1, the length of what follows the header, protocol
     * version 1, the AE titles in 16-byte fields padded with spaces. */
    assert_int_equal(pdu.data[0], DCM_PDU_ASSOCIATE_RQ);
    assert_int_equal(be32(pdu.data + 2), pdu.len - DCM_PDU_HEADER_BYTES);
    assert_int_equal(be16(pdu.data + 6), 1);
    assert_memory_equal(pdu.data + 10, "SIREN_SCP       ", 16);
    assert_memory_equal(pdu.data + 26, "CT01            ", 16);
    /* One role selection sub-item for CT: UID length, UID, SCU 1, SCP 0. */
    size_t len;
    const uint8_t *role = user_sub_item(&pdu, 0x54, 0, &len);
    assert_non_null(role);
    assert_int_equal(len, 2 + strlen(CT_IMAGE) + 2);
    assert_int_equal(be16(role), strlen(CT_IMAGE));
    assert_memory_equal(role + 2, CT_IMAGE, strlen(CT_IMAGE));
    assert_int_equal(role[len - 2], 1);
    assert_int_equal(role[len - 1], 0);
    assert_null(user_sub_item(&pdu, 0x54, 1, &len));
    /* User identity: type 1, response requested, "alice", no passcode. */
    const uint8_t *identity = user_sub_item(&pdu, 0x58, 0, &len);
    assert_non_null(identity);
    assert_int_equal(len, 4 + 5 + 2);
    assert_int_equal(identity[0], DCM_USER_USERNAME);
    assert_int_equal(identity[1], 1);
    assert_int_equal(be16(identity + 2), 5);
    assert_memory_equal(identity + 4, "alice", 5);
    assert_int_equal(be16(identity + 9), 0);

    assert_ok(parse_pdu(true, &pdu, got, &err), &err);
    assert_int_equal(got->protocol_version, 1);
    assert_string_equal(got->called_ae, "SIREN_SCP"); /* padding gone */
    assert_string_equal(got->calling_ae, "CT01");
    assert_string_equal(got->application_context, DCM_APPLICATION_CONTEXT);
    assert_int_equal(got->context_count, 3);
    for (size_t i = 0; i < 3; i++) {
        const dcm_pcontext *want = &rq->contexts[i], *pc = &got->contexts[i];
        assert_int_equal(pc->id, want->id);
        assert_string_equal(pc->abstract_syntax, want->abstract_syntax);
        assert_int_equal(pc->proposed_count, want->proposed_count);
        for (size_t j = 0; j < want->proposed_count; j++)
            assert_ptr_equal(pc->proposed[j], want->proposed[j]);
        assert_int_equal(pc->unknown_count, 0);
    }
    /* The role sub-item names an abstract syntax: it applies to every
     * context proposing it. */
    assert_int_equal(got->contexts[0].scu_role, -1);
    assert_int_equal(got->contexts[0].scp_role, -1);
    assert_int_equal(got->contexts[1].scu_role, 1);
    assert_int_equal(got->contexts[1].scp_role, 0);
    assert_int_equal(got->contexts[2].scu_role, 1);
    assert_int_equal(got->contexts[2].scp_role, 0);
    assert_int_equal(got->peer_max_pdu, 16384);
    assert_string_equal(got->peer_implementation_uid,
                        DCM_IMPLEMENTATION_CLASS_UID);
    assert_string_equal(got->peer_implementation_version,
                        DCM_IMPLEMENTATION_VERSION_NAME);
    assert_false(got->async_window_proposed);
    assert_int_equal(got->user.type, DCM_USER_USERNAME);
    assert_true(got->user.response_requested);
    assert_string_equal(got->user.username, "alice");
    assert_int_equal(got->user.primary_length, 5);
    free(pdu.data);
    free(rq);
    free(got);
}

/* A request as other implementations send it: leading spaces in an AE
 * title, an unknown transfer syntax, an asynchronous operations window, a
 * role selection asking for SCP, and user name plus passcode. */
static void request_from_another_implementation(void **state)
{
    (void)state;
    dcm_bytes pdu = {0};
    rq_begin(&pdu, "  SIREN", "MODALITY");
    item_text(&pdu, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(&pdu, 1, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    rq_context(&pdu, 3, CT_IMAGE, DCM_TS_EXPLICIT_LE, "1.2.3.999.1",
               DCM_TS_IMPLICIT_LE, NULL);
    size_t user_at = user_info_begin(&pdu, 0); /* 0: no limit */
    size_t at = item_begin(&pdu, 0x53);        /* async: 5 invoked, 3 done */
    dcm_bytes_u16(&pdu, 5);
    dcm_bytes_u16(&pdu, 3);
    item_end(&pdu, at);
    at = item_begin(&pdu, 0x54); /* CT: SCU 0, SCP 1 */
    dcm_bytes_u16(&pdu, (uint16_t)strlen(CT_IMAGE));
    dcm_bytes_put(&pdu, CT_IMAGE, strlen(CT_IMAGE));
    dcm_bytes_u8(&pdu, 0);
    dcm_bytes_u8(&pdu, 1);
    item_end(&pdu, at);
    item_text(&pdu, 0x55, "OTHER_2.1");
    at = item_begin(&pdu, 0x58); /* user name and passcode */
    dcm_bytes_u8(&pdu, DCM_USER_USERNAME_PASSCODE);
    dcm_bytes_u8(&pdu, 0);
    dcm_bytes_u16(&pdu, 5);
    dcm_bytes_put(&pdu, "alice", 5);
    dcm_bytes_u16(&pdu, 6);
    dcm_bytes_put(&pdu, "s3cret", 6);
    item_end(&pdu, at);
    item_end(&pdu, user_at);
    pdu_end(&pdu);

    dcm_assoc_info *got = calloc(1, sizeof *got);
    assert_non_null(got);
    dcm_error err = {0};
    assert_ok(parse_pdu(true, &pdu, got, &err), &err);
    assert_string_equal(got->called_ae, "SIREN");
    assert_int_equal(got->context_count, 2);
    /* Known syntaxes kept in the proposer's order, the unknown counted. */
    const dcm_pcontext *ct = &got->contexts[1];
    assert_int_equal(ct->proposed_count, 2);
    assert_ptr_equal(ct->proposed[0], ts(DCM_TS_EXPLICIT_LE));
    assert_ptr_equal(ct->proposed[1], ts(DCM_TS_IMPLICIT_LE));
    assert_int_equal(ct->unknown_count, 1);
    assert_int_equal(ct->scu_role, 0);
    assert_int_equal(ct->scp_role, 1);
    assert_int_equal(got->contexts[0].scu_role, -1);
    assert_int_equal(got->peer_max_pdu, 0);
    assert_string_equal(got->peer_implementation_uid, "1.2.3.4.5.6");
    assert_string_equal(got->peer_implementation_version, "OTHER_2.1");
    assert_true(got->async_window_proposed);
    assert_int_equal(got->async_invoked, 5);
    assert_int_equal(got->async_performed, 3);
    /* The user name is recorded; the passcode is nowhere in what the
     * parser kept. */
    assert_int_equal(got->user.type, DCM_USER_USERNAME_PASSCODE);
    assert_false(got->user.response_requested);
    assert_string_equal(got->user.username, "alice");
    assert_null(memmem(got, sizeof *got, "s3cret", 6));
    free(pdu.data);
    free(got);
}

/* What SIREN's acceptor answers: a result per context (the transfer syntax
 * sub-item only means something on acceptance), the role it grants, 1/1
 * for an asynchronous window, an empty user identity response when one was
 * requested. */
static void accept_round_trip(void **state)
{
    (void)state;
    dcm_assoc_info *ac = calloc(1, sizeof *ac);
    dcm_assoc_info *got = calloc(1, sizeof *got);
    assert_non_null(ac);
    assert_non_null(got);
    snprintf(ac->called_ae, sizeof ac->called_ae, "SIREN_SCP");
    snprintf(ac->calling_ae, sizeof ac->calling_ae, "CT01");
    set_context(&ac->contexts[0], 1, DCM_VERIFICATION_SOP_CLASS);
    ac->contexts[0].accepted = ts(DCM_TS_IMPLICIT_LE);
    set_context(&ac->contexts[1], 3, CT_IMAGE);
    ac->contexts[1].accepted = ts(DCM_TS_EXPLICIT_LE);
    ac->contexts[1].scu_role = 1;
    ac->contexts[1].scp_role = 0;
    set_context(&ac->contexts[2], 5, NOT_A_STORAGE_CLASS);
    ac->contexts[2].result = DCM_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
    set_context(&ac->contexts[3], 7, MR_IMAGE);
    ac->contexts[3].result = DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
    ac->context_count = 4;
    ac->async_window_proposed = true; /* the requestor asked for 5/3 */
    ac->async_invoked = 5;
    ac->async_performed = 3;
    ac->user.type = DCM_USER_USERNAME;
    ac->user.response_requested = true;
    dcm_pdu_local local = {.max_pdu_bytes = 32768};
    dcm_bytes pdu = {0};
    dcm_error err = {0};
    assert_ok(dcm_pdu_encode_associate(false, ac, &local, &pdu, &err), &err);

    assert_int_equal(pdu.data[0], DCM_PDU_ASSOCIATE_AC);
    assert_int_equal(be32(pdu.data + 2), pdu.len - DCM_PDU_HEADER_BYTES);
    assert_memory_equal(pdu.data + 10, "SIREN_SCP       ", 16);
    assert_memory_equal(pdu.data + 26, "CT01            ", 16);
    size_t len;
    const uint8_t *async = user_sub_item(&pdu, 0x53, 0, &len);
    assert_non_null(async);
    assert_int_equal(len, 4);
    assert_int_equal(be16(async), 1);
    assert_int_equal(be16(async + 2), 1);
    const uint8_t *role = user_sub_item(&pdu, 0x54, 0, &len);
    assert_non_null(role);
    assert_int_equal(be16(role), strlen(CT_IMAGE));
    assert_memory_equal(role + 2, CT_IMAGE, strlen(CT_IMAGE));
    assert_int_equal(role[len - 2], 1);
    assert_int_equal(role[len - 1], 0);
    const uint8_t *identity = user_sub_item(&pdu, 0x59, 0, &len);
    assert_non_null(identity);
    assert_int_equal(len, 2);
    assert_int_equal(be16(identity), 0);

    assert_ok(parse_pdu(false, &pdu, got, &err), &err);
    assert_int_equal(got->context_count, 4);
    static const uint8_t ids[] = {1, 3, 5, 7};
    static const uint8_t results[] = {
        DCM_PC_ACCEPTED, DCM_PC_ACCEPTED, DCM_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED,
        DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(got->contexts[i].id, ids[i]);
        assert_int_equal(got->contexts[i].result, results[i]);
    }
    assert_ptr_equal(got->contexts[0].accepted, ts(DCM_TS_IMPLICIT_LE));
    assert_ptr_equal(got->contexts[1].accepted, ts(DCM_TS_EXPLICIT_LE));
    assert_null(got->contexts[2].accepted);
    assert_null(got->contexts[3].accepted);
    assert_int_equal(got->peer_max_pdu, 32768);
    assert_true(got->async_window_proposed);
    assert_int_equal(got->async_invoked, 1);
    assert_int_equal(got->async_performed, 1);
    assert_string_equal(got->peer_implementation_uid,
                        DCM_IMPLEMENTATION_CLASS_UID);
    free(pdu.data);
    free(ac);
    free(got);
}

/* PS3.8 9.3.3: the AE title fields of an A-ASSOCIATE-AC "shall not be
 * tested when received" - an acceptor that leaves them blank is still
 * understood. */
static void accept_with_blank_ae_fields_is_read(void **state)
{
    (void)state;
    dcm_assoc_info *ac = calloc(1, sizeof *ac);
    dcm_assoc_info *got = calloc(1, sizeof *got);
    assert_non_null(ac);
    assert_non_null(got);
    set_context(&ac->contexts[0], 1, DCM_VERIFICATION_SOP_CLASS);
    ac->contexts[0].accepted = ts(DCM_TS_IMPLICIT_LE);
    ac->context_count = 1; /* called_ae and calling_ae left empty */
    dcm_pdu_local local = {.max_pdu_bytes = 16384};
    dcm_bytes pdu = {0};
    dcm_error err = {0};
    assert_ok(dcm_pdu_encode_associate(false, ac, &local, &pdu, &err), &err);
    assert_memory_equal(pdu.data + 10, "                ", 16);
    int rc = parse_pdu(false, &pdu, got, &err);
    size_t contexts = got->context_count;
    free(pdu.data);
    free(ac);
    free(got);
    if (rc != DCM_OK)
        fail_msg("the A-ASSOCIATE-AC was refused: %s", err.message);
    assert_int_equal(contexts, 1);
}

/* ---- malformed requests -------------------------------------------------- */

static void item_past_the_end(dcm_bytes *b)
{
    good_request(b);
    /* a last item that says 40 bytes follow, with 21 left in the PDU */
    dcm_bytes_u8(b, 0x10);
    dcm_bytes_u8(b, 0);
    dcm_bytes_u16(b, 40);
    dcm_bytes_put(b, DCM_APPLICATION_CONTEXT, strlen(DCM_APPLICATION_CONTEXT));
    pdu_end(b);
}

static void sub_item_past_its_item(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    size_t at = item_begin(b, 0x20);
    dcm_bytes_u8(b, 1);
    dcm_bytes_put(b, "\0\0\0", 3);
    dcm_bytes_u8(b, 0x30); /* abstract syntax: says 40, has 17 */
    dcm_bytes_u8(b, 0);
    dcm_bytes_u16(b, 40);
    dcm_bytes_put(b, DCM_VERIFICATION_SOP_CLASS,
                  strlen(DCM_VERIFICATION_SOP_CLASS));
    item_end(b, at);
    rq_context(b, 3, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL); /* the PDU goes on */
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void even_context_id(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 2, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void duplicate_context_ids(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    rq_context(b, 1, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void contexts_129(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    for (int id = 1; id <= 255; id += 2) /* all 128 odd IDs */
        rq_context(b, (uint8_t)id, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    rq_context(b, 1, CT_IMAGE, DCM_TS_IMPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void uid_of_65_characters(dcm_bytes *b)
{
    char uid[66];
    memset(uid, '9', 65);
    memcpy(uid, "1.2.", 4);
    uid[65] = '\0';
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, uid, DCM_TS_IMPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void uid_with_letters(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, "1.2.840.10008.CT", DCM_TS_IMPLICIT_LE, NULL);
    rq_user_info(b, 16384);
    pdu_end(b);
}

static void no_user_information(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    pdu_end(b);
}

static void ae_with_control_character(dcm_bytes *b)
{
    good_request(b);
    memcpy(b->data + 10, "SIR\tEN          ", 16);
}

static void ae_empty(dcm_bytes *b)
{
    good_request(b);
    memset(b->data + 26, ' ', 16); /* calling AE: all spaces */
}

static void role_length_mismatch(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    size_t user_at = user_info_begin(b, 16384);
    size_t at = item_begin(b, 0x54); /* UID, then three role bytes */
    dcm_bytes_u16(b, (uint16_t)strlen(CT_IMAGE));
    dcm_bytes_put(b, CT_IMAGE, strlen(CT_IMAGE));
    dcm_bytes_put(b, "\1\0\0", 3);
    item_end(b, at);
    item_end(b, user_at);
    pdu_end(b);
}

static void identity_secondary_length(dcm_bytes *b)
{
    rq_begin(b, "SIREN", "MODALITY");
    item_text(b, 0x10, DCM_APPLICATION_CONTEXT);
    rq_context(b, 1, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    size_t user_at = user_info_begin(b, 16384);
    size_t at = item_begin(b, 0x58); /* passcode: says 10, has 6 */
    dcm_bytes_u8(b, DCM_USER_USERNAME_PASSCODE);
    dcm_bytes_u8(b, 0);
    dcm_bytes_u16(b, 5);
    dcm_bytes_put(b, "alice", 5);
    dcm_bytes_u16(b, 10);
    dcm_bytes_put(b, "s3cret", 6);
    item_end(b, at);
    item_end(b, user_at);
    pdu_end(b);
}

/* Each malformed request is DCM_E_INVALID with a message that says what
 * is wrong; the parse of the good one they derive from succeeds. */
static void malformed_requests_refused(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        void (*build)(dcm_bytes *b);
        const char *message;
    } cases[] = {
        {"an item length past the end of the PDU", item_past_the_end,
         "item length runs past its enclosing item"},
        {"a sub-item past the end of its item", sub_item_past_its_item,
         "item length runs past its enclosing item"},
        {"an even presentation context ID", even_context_id,
         "an even presentation context ID"},
        {"a presentation context ID used twice", duplicate_context_ids,
         "a presentation context ID used twice"},
        {"129 presentation contexts", contexts_129,
         "more than 128 presentation contexts"},
        {"a UID of 65 characters", uid_of_65_characters,
         "longer than 64 characters"},
        {"a UID with letters", uid_with_letters,
         "a UID holds a character other than digits and dots"},
        {"no user information item", no_user_information,
         "no user information item"},
        {"a called AE title with a TAB", ae_with_control_character,
         "an AE title holds a control character"},
        {"an empty calling AE title", ae_empty, "an AE title is empty"},
        {"a role selection whose lengths disagree", role_length_mismatch,
         "role selection length mismatch"},
        {"a passcode length past the sub-item", identity_secondary_length,
         "user identity secondary field length"},
    };
    dcm_assoc_info *info = calloc(1, sizeof *info);
    assert_non_null(info);
    dcm_bytes pdu = {0};
    dcm_error err = {0};
    good_request(&pdu);
    assert_ok(parse_pdu(true, &pdu, info, &err), &err);
    assert_int_equal(info->contexts[1].unknown_count, 1);
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pdu.len = 0;
        cases[i].build(&pdu);
        assert_false(pdu.failed);
        err = (dcm_error){0};
        int rc = parse_pdu(true, &pdu, info, &err);
        if (rc != DCM_E_INVALID || !strstr(err.message, cases[i].message) ||
            strncmp(err.message, "invalid A-ASSOCIATE PDU: ", 25) != 0) {
            print_error("%s: returned %d \"%s\", wanted DCM_E_INVALID \"%s\"\n",
                        cases[i].what, rc, err.message, cases[i].message);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    free(pdu.data);
    free(info);
}

/* ========================================================================
 * 3. Associations over a socketpair
 * ======================================================================== */

/* ---- a tap: a transport that records what passes through another -------- */

typedef struct tap {
    dcm_transport base; /* first, as every transport */
    dcm_transport *inner;
    dcm_bytes in, out;  /* every byte read, every byte written */
} tap;

static long tap_read(dcm_transport *t, void *buf, size_t len, int timeout_ms,
                     dcm_error *err)
{
    tap *tp = (tap *)t;
    long got = tp->inner->ops->read(tp->inner, buf, len, timeout_ms, err);
    if (got > 0)
        dcm_bytes_put(&tp->in, buf, (size_t)got);
    return got;
}

static int tap_write(dcm_transport *t, const void *buf, size_t len,
                     int timeout_ms, dcm_error *err)
{
    tap *tp = (tap *)t;
    int rc = tp->inner->ops->write(tp->inner, buf, len, timeout_ms, err);
    if (rc == DCM_OK)
        dcm_bytes_put(&tp->out, buf, len);
    return rc;
}

/* Closes the connection; the tap and its records belong to the test. */
static void tap_close(dcm_transport *t)
{
    tap *tp = (tap *)t;
    tp->inner->ops->close(tp->inner);
    tp->inner = NULL;
}

static const dcm_transport_ops tap_ops = {tap_read, tap_write, tap_close};

static dcm_transport *tap_wrap(tap *tp, dcm_transport *inner)
{
    tp->base.ops = &tap_ops;
    snprintf(tp->base.peer, sizeof tp->base.peer, "%s", inner->peer);
    tp->inner = inner;
    return &tp->base;
}

static void tap_clear(tap *tp)
{
    free(tp->in.data);
    free(tp->out.data);
}

/* What a recorded byte stream held, PDU by PDU. */
typedef struct wire_stats {
    size_t pdus;
    uint8_t types[32];    /* the types of the first 32 PDUs, in order */
    size_t pdata;         /* P-DATA-TF PDUs */
    size_t largest_pdata; /* the largest P-DATA-TF variable field */
    size_t command_pdvs, data_pdvs;
    bool whole;           /* the stream is whole PDUs and PDVs */
} wire_stats;

static wire_stats wire_scan(const dcm_bytes *stream)
{
    wire_stats w = {.whole = true};
    size_t pos = 0;
    while (pos + DCM_PDU_HEADER_BYTES <= stream->len) {
        const uint8_t *pdu = stream->data + pos;
        size_t len = be32(pdu + 2);
        if (len > stream->len - pos - DCM_PDU_HEADER_BYTES)
            break;
        if (w.pdus < sizeof w.types)
            w.types[w.pdus] = pdu[0];
        w.pdus++;
        if (pdu[0] == DCM_PDU_P_DATA) {
            w.pdata++;
            if (len > w.largest_pdata)
                w.largest_pdata = len;
            size_t at = 0;
            while (at + DCM_PDV_HEADER_BYTES <= len) {
                size_t item = be32(pdu + 6 + at);
                if (item < 2 || item > len - at - 4) {
                    w.whole = false;
                    break;
                }
                if (pdu[6 + at + 5] & 1)
                    w.command_pdvs++;
                else
                    w.data_pdvs++;
                at += 4 + item;
            }
            if (at != len)
                w.whole = false;
        }
        pos += DCM_PDU_HEADER_BYTES + len;
    }
    if (pos != stream->len)
        w.whole = false;
    return w;
}

/* ---- the acceptor, in a thread ------------------------------------------- */

#define MAX_STORED 4

/* One instance the SCP's store handler received. */
typedef struct stored {
    char sop_class[DCM_UID_MAX + 1];
    char sop_instance[DCM_UID_MAX + 1];
    uint16_t message_id;
    const dcm_ts *syntax; /* of the context it came on */
    dcm_bytes data;
    bool complete;
} stored;

typedef struct scp scp;
struct scp {
    /* set by the test before scp_start */
    dcm_scp_config config;
    const char *refuse_calling_ae; /* the check callback rejects it */
    uint16_t begin_refusal;        /* the store handler's begin answers
                                      every C-STORE with it when nonzero */
    void (*script)(scp *s, dcm_assoc *a); /* instead of dcm_scp_serve */
    dcm_bytes outgoing;                   /* a data set the script sends */
    /* what happened (read after scp_join) */
    int fd;
    pthread_t thread;
    tap wire;
    int accept_code;
    dcm_error accept_err;
    dcm_assoc_info *info; /* the acceptor's view of what was agreed */
    bool check_called;
    char check_calling_ae[DCM_AE_TITLE_MAX + 1];
    int serve_code;
    dcm_error serve_err;
    stored stored[MAX_STORED];
    size_t stored_count;
    /* a script's results */
    int codes[10];
    dcm_command commands[4];
    dcm_bytes dataset;
};

static void test_limits(dcm_net_limits *limits, uint32_t max_pdu_bytes)
{
    dcm_net_limits_default(limits);
    limits->max_pdu_bytes = max_pdu_bytes;
    limits->artim_timeout_ms = TIMEOUT_MS;
    limits->dimse_timeout_ms = TIMEOUT_MS;
    limits->idle_timeout_ms = TIMEOUT_MS;
}

static int check_calling_ae(void *ctx, const dcm_assoc_info *request,
                            const dcm_transport *transport,
                            dcm_reject *reject)
{
    scp *s = ctx;
    (void)transport;
    s->check_called = true;
    snprintf(s->check_calling_ae, sizeof s->check_calling_ae, "%s",
             request->calling_ae);
    if (s->refuse_calling_ae &&
        strcmp(request->calling_ae, s->refuse_calling_ae) == 0) {
        *reject = (dcm_reject){DCM_RJ_PERMANENT, DCM_RJ_SOURCE_USER,
                               DCM_RJ_CALLING_AE_NOT_RECOGNIZED};
        return -1;
    }
    return 0;
}

static int collect_begin(void *ctx, const dcm_assoc *assoc,
                         const dcm_command *rq, void **instance,
                         uint16_t *status)
{
    scp *s = ctx;
    if (s->begin_refusal || s->stored_count == MAX_STORED) {
        *status = s->begin_refusal ? s->begin_refusal
                                   : DCM_STATUS_OUT_OF_RESOURCES;
        return -1;
    }
    stored *st = &s->stored[s->stored_count++];
    memcpy(st->sop_class, rq->sop_class, sizeof st->sop_class);
    memcpy(st->sop_instance, rq->sop_instance, sizeof st->sop_instance);
    st->message_id = rq->message_id;
    st->syntax = dcm_assoc_context(assoc, rq->context_id)->accepted;
    *instance = st;
    return 0;
}

static int append_bytes(void *ctx, const void *data, size_t len)
{
    dcm_bytes *b = ctx;
    dcm_bytes_put(b, data, len);
    return b->failed ? -1 : 0;
}

static int collect_data(void *instance, const void *data, size_t len)
{
    return append_bytes(&((stored *)instance)->data, data, len);
}

static uint16_t collect_end(void *instance, bool complete, char comment[65])
{
    (void)comment;
    ((stored *)instance)->complete = complete;
    return complete ? DCM_STATUS_SUCCESS : DCM_STATUS_PROCESSING_FAILURE;
}

/* The thread: accept on fd (through a tap), then serve or run the script.
 * It records and never asserts (cmocka asserts belong to the test's
 * thread). */
static void *scp_main(void *arg)
{
    scp *s = arg;
    dcm_transport *t = dcm_tcp_transport(s->fd, "requestor", &s->accept_err);
    if (!t) {
        s->accept_code = s->accept_err.code;
        return NULL;
    }
    dcm_assoc *a = dcm_assoc_accept(tap_wrap(&s->wire, t), &s->config,
                                    &s->accept_err);
    if (!a) {
        s->accept_code = s->accept_err.code;
        return NULL;
    }
    s->accept_code = DCM_OK;
    *s->info = *dcm_assoc_info_of(a);
    if (s->script) {
        s->script(s, a);
    } else {
        dcm_store_handler store = {collect_begin, collect_data, collect_end,
                                   s};
        s->serve_code = dcm_scp_serve(a, &store, &s->serve_err);
    }
    dcm_assoc_free(a);
    return NULL;
}

/* An acceptor called "SIREN" that takes Verification and every storage
 * class in the default syntax preference, with 5 s timeouts. */
static scp *scp_new(void)
{
    scp *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->info = calloc(1, sizeof *s->info);
    assert_non_null(s->info);
    s->config.ae_title = "SIREN";
    s->config.check = check_calling_ae;
    s->config.check_ctx = s;
    test_limits(&s->config.limits, DCM_DEFAULT_MAX_PDU_BYTES);
    s->accept_code = 1; /* not run */
    for (size_t i = 0; i < sizeof s->codes / sizeof s->codes[0]; i++)
        s->codes[i] = 99; /* not reached */
    return s;
}

static void scp_start(scp *s, int fd)
{
    s->fd = fd;
    assert_int_equal(pthread_create(&s->thread, NULL, scp_main, s), 0);
}

static void scp_join(scp *s)
{
    assert_int_equal(pthread_join(s->thread, NULL), 0);
}

static void scp_free(scp *s)
{
    for (size_t i = 0; i < s->stored_count; i++)
        free(s->stored[i].data.data);
    tap_clear(&s->wire);
    free(s->outgoing.data);
    free(s->dataset.data);
    free(s->info);
    free(s);
}

/* ---- the requestor, in the test's thread --------------------------------- */

typedef struct scu {
    dcm_scu_config config;
    dcm_proposal proposals[8];
    tap wire;
} scu;

/* A requestor "MODALITY" calling "SIREN", 5 s timeouts. */
static void scu_init(scu *u)
{
    memset(u, 0, sizeof *u);
    u->config.calling_ae = "MODALITY";
    u->config.called_ae = "SIREN";
    u->config.proposals = u->proposals;
    test_limits(&u->config.limits, DCM_DEFAULT_MAX_PDU_BYTES);
}

/* Proposes abstract with transfer syntaxes (UIDs, NULL-terminated); the
 * contexts get IDs 1, 3, 5, ... in this order. */
static void scu_propose(scu *u, const char *abstract, ...)
{
    assert_true(u->config.proposal_count < 8);
    dcm_proposal *p = &u->proposals[u->config.proposal_count++];
    p->abstract_syntax = abstract;
    va_list ap;
    va_start(ap, abstract);
    for (const char *uid; (uid = va_arg(ap, const char *)) != NULL;)
        p->syntaxes[p->syntax_count++] = ts(uid);
    va_end(ap);
}

static dcm_assoc *scu_request(scu *u, int fd, dcm_error *err)
{
    dcm_transport *t = dcm_tcp_transport(fd, "acceptor", err);
    assert_non_null(t);
    return dcm_assoc_request(tap_wrap(&u->wire, t), &u->config, err);
}

static void socket_pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
                     0);
}

/* Starts s on one end of a new socketpair and requests on the other. */
static dcm_assoc *associate(scp *s, scu *u, dcm_error *err)
{
    int fds[2];
    socket_pair(fds);
    scp_start(s, fds[0]);
    return scu_request(u, fds[1], err);
}

#define assert_associated(a, err)                                            \
    do {                                                                     \
        if (!(a))                                                            \
            fail_msg("association failed: %s", (err)->message);              \
    } while (0)

/* ---- raw PDUs for the sides driven by hand ------------------------------- */

static void raw_send(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t put = send(fd, p, len, MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            fail_msg("send: %s", strerror(errno));
        p += put;
        len -= (size_t)put;
    }
}

/* Exactly len bytes; false at the end of the stream. Fails the test when
 * nothing comes for TIMEOUT_MS (the other side hangs). */
static bool raw_read(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        struct pollfd ready = {.fd = fd, .events = POLLIN};
        if (poll(&ready, 1, TIMEOUT_MS) == 0)
            fail_msg("the peer sent nothing for %d ms", TIMEOUT_MS);
        ssize_t got = recv(fd, p, len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        len -= (size_t)got;
    }
    return true;
}

/* One PDU: its type and its body (after the 6-byte header). */
static bool raw_read_pdu(int fd, uint8_t *type, dcm_bytes *body)
{
    uint8_t header[DCM_PDU_HEADER_BYTES];
    if (!raw_read(fd, header, sizeof header))
        return false;
    *type = header[0];
    uint32_t len = be32(header + 2);
    assert_true(len <= (16u << 20));
    body->len = 0;
    if (len > body->cap) {
        body->data = realloc(body->data, len);
        assert_non_null(body->data);
        body->cap = len;
    }
    if (len && !raw_read(fd, body->data, len))
        fail_msg("the stream ended inside a PDU of type 0x%02X", *type);
    body->len = len;
    return true;
}

/* Reads the next PDU and checks it is one of the 10-byte ones with these
 * three last bytes (RJ: result, source, reason; ABORT: -, source, reason;
 * RELEASE: 0, 0, 0). */
static void raw_expect_short(int fd, uint8_t type, uint8_t b1, uint8_t b2,
                             uint8_t b3)
{
    dcm_bytes body = {0};
    uint8_t got;
    assert_true(raw_read_pdu(fd, &got, &body));
    assert_int_equal(got, type);
    assert_int_equal(body.len, 4);
    assert_int_equal(body.data[1], b1);
    assert_int_equal(body.data[2], b2);
    assert_int_equal(body.data[3], b3);
    free(body.data);
}

static void raw_send_short(int fd, uint8_t type)
{
    uint8_t pdu[10];
    dcm_pdu_encode_short(type, 0, 0, 0, pdu);
    raw_send(fd, pdu, sizeof pdu);
}

/* A recorded stream holding exactly this 10-byte PDU at offset. */
static void assert_short_at(const dcm_bytes *stream, size_t offset,
                            uint8_t type, uint8_t b1, uint8_t b2, uint8_t b3)
{
    uint8_t want[10];
    dcm_pdu_encode_short(type, b1, b2, b3, want);
    assert_true(stream->len >= offset + 10);
    assert_memory_equal(stream->data + offset, want, 10);
}

/* The A-ASSOCIATE-RQ of a requestor "HAND" proposing Verification (context
 * 1, implicit VR little endian) to "SIREN", as SIREN's encoder makes it. */
static void verification_request(dcm_bytes *pdu, uint32_t max_pdu_bytes)
{
    dcm_assoc_info *rq = calloc(1, sizeof *rq);
    assert_non_null(rq);
    snprintf(rq->called_ae, sizeof rq->called_ae, "SIREN");
    snprintf(rq->calling_ae, sizeof rq->calling_ae, "HAND");
    set_context(&rq->contexts[0], 1, DCM_VERIFICATION_SOP_CLASS);
    rq->contexts[0].proposed[0] = ts(DCM_TS_IMPLICIT_LE);
    rq->contexts[0].proposed_count = 1;
    rq->context_count = 1;
    dcm_pdu_local local = {.max_pdu_bytes = max_pdu_bytes};
    dcm_error err = {0};
    assert_ok(dcm_pdu_encode_associate(true, rq, &local, pdu, &err), &err);
    free(rq);
}

/* Its answer from an acceptor that takes context 1 as implicit VR LE. */
static void verification_accept(dcm_bytes *pdu, uint32_t max_pdu_bytes)
{
    dcm_assoc_info *ac = calloc(1, sizeof *ac);
    assert_non_null(ac);
    snprintf(ac->called_ae, sizeof ac->called_ae, "SIREN");
    snprintf(ac->calling_ae, sizeof ac->calling_ae, "MODALITY");
    set_context(&ac->contexts[0], 1, DCM_VERIFICATION_SOP_CLASS);
    ac->contexts[0].accepted = ts(DCM_TS_IMPLICIT_LE);
    ac->context_count = 1;
    dcm_pdu_local local = {.max_pdu_bytes = max_pdu_bytes};
    dcm_error err = {0};
    assert_ok(dcm_pdu_encode_associate(false, ac, &local, pdu, &err), &err);
    free(ac);
}

/* A hand-driven requestor's association with the acceptor on fd. */
static void raw_associate(int fd, uint32_t max_pdu_bytes)
{
    dcm_bytes pdu = {0};
    verification_request(&pdu, max_pdu_bytes);
    raw_send(fd, pdu.data, pdu.len);
    uint8_t type;
    assert_true(raw_read_pdu(fd, &type, &pdu));
    assert_int_equal(type, DCM_PDU_ASSOCIATE_AC);
    free(pdu.data);
}

/* A C-ECHO-RQ command set (implicit VR little endian, PS3.7 9.3.5). */
static void echo_command(bytes *cmd, uint16_t message_id)
{
    bytes body = {0};
    uint8_t field[2] = {0x30, 0x00}, id[2] = {(uint8_t)message_id,
                                              (uint8_t)(message_id >> 8)};
    uint8_t no_dataset[2] = {0x01, 0x01};
    bytes_implicit(&body, 0x0000, 0x0002, "1.2.840.10008.1.1\0", 18);
    bytes_implicit(&body, 0x0000, 0x0100, field, 2);
    bytes_implicit(&body, 0x0000, 0x0110, id, 2);
    bytes_implicit(&body, 0x0000, 0x0800, no_dataset, 2);
    uint8_t group_length[4] = {(uint8_t)body.len, (uint8_t)(body.len >> 8), 0,
                               0};
    bytes_implicit(cmd, 0x0000, 0x0000, group_length, 4);
    bytes_put(cmd, body.data, body.len);
    free(body.data);
}

/* Appends a PDV item to a P-DATA-TF PDU begun with pdata_begin. */
static void pdata_begin(dcm_bytes *b)
{
    b->len = 0;
    dcm_bytes_u8(b, DCM_PDU_P_DATA);
    dcm_bytes_u8(b, 0);
    dcm_bytes_u32(b, 0); /* pdu_end */
}

static void pdata_pdv(dcm_bytes *b, uint8_t context_id, bool command,
                      bool last, const void *data, size_t len)
{
    dcm_bytes_u32(b, (uint32_t)len + 2);
    dcm_bytes_u8(b, context_id);
    dcm_bytes_u8(b, (uint8_t)((command ? 1 : 0) | (last ? 2 : 0)));
    dcm_bytes_put(b, data, len);
}

/* A data set to send, from memory (dcm_read_fn). */
typedef struct memory_reader {
    const uint8_t *data;
    size_t len, pos;
} memory_reader;

static long read_memory(void *ctx, void *buf, size_t len)
{
    memory_reader *r = ctx;
    size_t n = r->len - r->pos < len ? r->len - r->pos : len;
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return (long)n;
}

/* ---- test files ---------------------------------------------------------- */

static const char *tmp_dir(void)
{
    const char *dir = getenv("SIREN_TEST_TMP");
    return dir && *dir ? dir : "/tmp";
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static void set_us(dcm_dataset *ds, uint32_t tag, uint16_t v)
{
    uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    dcm_error err = {0};
    assert_ok(dcm_dataset_set_bytes(ds, tag, DCM_VR_US, le, 2, &err), &err);
}

static void set_text(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                     const char *text)
{
    dcm_error err = {0};
    assert_ok(dcm_dataset_set_string(ds, tag, vr, text, &err), &err);
}

/* A CT image of rows x columns 16-bit pixels, written to
 * $SIREN_TEST_TMP/name in ts_uid. */
static void write_ct(const char *name, const char *ts_uid, uint16_t rows,
                     uint16_t columns, char path[PATH_BYTES])
{
    dcm_error err = {0};
    dcm_dataset *ds = dcm_dataset_new();
    assert_non_null(ds);
    char instance[DCM_UID_MAX + 1];
    assert_ok(dcm_uid_generate(instance, &err), &err);
    set_text(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, CT_IMAGE);
    set_text(ds, DCM_TAG_SOP_INSTANCE_UID, DCM_VR_UI, instance);
    set_text(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "CT");
    set_text(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "Doe^Jane");
    set_text(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "SIREN-42");
    set_us(ds, DCM_TAG(0x0028, 0x0002), 1);
    set_text(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "MONOCHROME2");
    set_us(ds, DCM_TAG(0x0028, 0x0010), rows);
    set_us(ds, DCM_TAG(0x0028, 0x0011), columns);
    set_us(ds, DCM_TAG_BITS_ALLOCATED, 16);
    set_us(ds, DCM_TAG(0x0028, 0x0101), 12);
    set_us(ds, DCM_TAG(0x0028, 0x0102), 11);
    set_us(ds, DCM_TAG_PIXEL_REPRESENTATION, 0);
    size_t pixel_bytes = (size_t)rows * columns * 2;
    uint8_t *pixels = malloc(pixel_bytes);
    assert_non_null(pixels);
    fill_pattern(pixels, pixel_bytes, rows);
    assert_ok(dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, pixels,
                                    pixel_bytes, &err), &err);
    free(pixels);
    dcm_write_options opt = {.transfer_syntax = ts_uid, .deflate_level = -1};
    snprintf(path, PATH_BYTES, "%s/%s", tmp_dir(), name);
    assert_ok(dcm_write_file_path(ds, &opt, path, &err), &err);
    dcm_dataset_free(ds);
}

/* The data set of a Part 10 file as it is on disk (after the meta). */
static void file_dataset_bytes(const char *path, dcm_bytes *out)
{
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(path, NULL, &err);
    if (!f)
        fail_msg("%s: %s", path, err.message);
    uint64_t offset = dcm_file_dataset_offset(f);
    dcm_file_free(f);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)offset, SEEK_SET), 0);
    uint8_t chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        dcm_bytes_put(out, chunk, got);
    fclose(fp);
}

/* Same elements, same values (VRs aside: implicit VR has none on the
 * wire). */
static void assert_same_elements(const dcm_dataset *want,
                                 const dcm_dataset *got)
{
    assert_int_equal(dcm_dataset_count(got), dcm_dataset_count(want));
    for (size_t i = 0; i < dcm_dataset_count(want); i++) {
        const dcm_element *w = dcm_dataset_at(want, i);
        const dcm_element *g = dcm_dataset_find(got, dcm_element_tag(w));
        if (!g)
            fail_msg("element %08X missing", dcm_element_tag(w));
        size_t len = (size_t)dcm_element_length(w);
        assert_int_equal(dcm_element_length(g), len);
        uint8_t *wb = malloc(len + 1), *gb = malloc(len + 1);
        assert_non_null(wb);
        assert_non_null(gb);
        dcm_error err = {0};
        assert_ok(dcm_element_read(w, 0, wb, len, &err), &err);
        assert_ok(dcm_element_read(g, 0, gb, len, &err), &err);
        assert_memory_equal(wb, gb, len);
        free(wb);
        free(gb);
    }
}

/* ---- establishment, C-ECHO, release -------------------------------------- */

/* The simplest association: Verification, one C-ECHO, an orderly
 * release; what each side knows of the other afterwards. */
static void echo_then_release(void **state)
{
    (void)state;
    scp *s = scp_new();
    s->config.limits.max_pdu_bytes = 32768;
    scu u;
    scu_init(&u);
    u.config.limits.max_pdu_bytes = 65536;
    dcm_user_identity alice = {.type = DCM_USER_USERNAME,
                               .response_requested = true,
                               .username = "alice"};
    u.config.user = &alice;
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    assert_true(dcm_assoc_is_established(a));

    /* The requestor's view: the acceptor's limit and identity. */
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    assert_int_equal(info->peer_max_pdu, 32768);
    assert_string_equal(info->peer_implementation_uid,
                        DCM_IMPLEMENTATION_CLASS_UID);
    assert_non_null(dcm_assoc_context(a, 1));
    assert_ptr_equal(dcm_assoc_context(a, 1)->accepted, ts(DCM_TS_IMPLICIT_LE));

    uint16_t status = 0xFFFF;
    assert_ok(dcm_echo(a, &status, &err), &err);
    assert_int_equal(status, DCM_STATUS_SUCCESS);
    assert_ok(dcm_assoc_release(a, &err), &err);
    assert_false(dcm_assoc_is_established(a));
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->accept_code, DCM_OK);
    assert_int_equal(s->serve_code, DCM_OK);

    /* The acceptor's view: who called, their limit and user name. */
    assert_string_equal(s->info->calling_ae, "MODALITY");
    assert_string_equal(s->info->called_ae, "SIREN");
    assert_int_equal(s->info->peer_max_pdu, 65536);
    assert_int_equal(s->info->user.type, DCM_USER_USERNAME);
    assert_string_equal(s->info->user.username, "alice");
    assert_true(s->check_called);

    /* On the wire: RQ with padded AE titles, P-DATA, RELEASE-RQ last; the
     * acceptor's AC, P-DATA, RELEASE-RP last. */
    const dcm_bytes *sent = &u.wire.out, *received = &u.wire.in;
    assert_int_equal(sent->data[0], DCM_PDU_ASSOCIATE_RQ);
    assert_memory_equal(sent->data + 10, "SIREN           ", 16);
    assert_memory_equal(sent->data + 26, "MODALITY        ", 16);
    wire_stats out = wire_scan(sent), in = wire_scan(received);
    assert_true(out.whole);
    assert_true(in.whole);
    assert_int_equal(out.pdus, 3);
    assert_int_equal(out.types[1], DCM_PDU_P_DATA);
    assert_short_at(sent, sent->len - 10, DCM_PDU_RELEASE_RQ, 0, 0, 0);
    assert_int_equal(in.pdus, 3);
    assert_int_equal(in.types[0], DCM_PDU_ASSOCIATE_AC);
    assert_int_equal(in.types[1], DCM_PDU_P_DATA);
    assert_short_at(received, received->len - 10, DCM_PDU_RELEASE_RP, 0, 0,
                    0);
    tap_clear(&u.wire);
    scp_free(s);
}

/* For each proposed context the acceptor takes the first syntax of ITS
 * preference that was proposed; an abstract syntax it does not take is
 * result 3, no common transfer syntax result 4. Both ends agree. */
static void negotiation_follows_the_acceptor(void **state)
{
    (void)state;
    static const char *const preference[] = {DCM_TS_EXPLICIT_LE,
                                             DCM_TS_IMPLICIT_LE};
    scp *s = scp_new();
    s->config.ts_preference = preference;
    s->config.ts_preference_count = 2;
    scu u;
    scu_init(&u);
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    scu_propose(&u, CT_IMAGE, DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, NULL);
    scu_propose(&u, NOT_A_STORAGE_CLASS, DCM_TS_EXPLICIT_LE, NULL);
    scu_propose(&u, MR_IMAGE, JPEG_BASELINE, DCM_TS_EXPLICIT_BE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);

    static const struct {
        uint8_t id, result;
        const char *accepted;
    } want[] = {
        {1, DCM_PC_ACCEPTED, DCM_TS_IMPLICIT_LE},
        {3, DCM_PC_ACCEPTED, DCM_TS_EXPLICIT_LE}, /* proposed second */
        {5, DCM_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED, NULL},
        {7, DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED, NULL},
    };
    const dcm_assoc_info *mine = dcm_assoc_info_of(a);
    assert_int_equal(mine->context_count, 4);
    for (size_t i = 0; i < 4; i++) {
        const dcm_pcontext *pc = &mine->contexts[i];
        assert_int_equal(pc->id, want[i].id);
        assert_int_equal(pc->result, want[i].result);
        assert_string_equal(pc->abstract_syntax,
                            u.proposals[i].abstract_syntax);
        if (want[i].accepted) {
            assert_ptr_equal(pc->accepted, ts(want[i].accepted));
            assert_ptr_equal(dcm_assoc_context(a, pc->id), pc);
        } else {
            assert_null(dcm_assoc_context(a, pc->id));
        }
    }
    assert_int_equal(dcm_assoc_find_context(a, CT_IMAGE, NULL)->id, 3);
    assert_null(dcm_assoc_find_context(a, MR_IMAGE, NULL));
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    assert_int_equal(s->info->context_count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s->info->contexts[i].id, want[i].id);
        assert_int_equal(s->info->contexts[i].result, want[i].result);
        if (want[i].accepted)
            assert_ptr_equal(s->info->contexts[i].accepted,
                             ts(want[i].accepted));
    }
    tap_clear(&u.wire);
    scp_free(s);
}

/* ---- rejection ----------------------------------------------------------- */

/* A request for another AE title: A-ASSOCIATE-RJ permanent (1), service
 * user (1), called AE title not recognized (7), before the site's check
 * is asked. */
static void wrong_called_ae_rejected(void **state)
{
    (void)state;
    scp *s = scp_new();
    scu u;
    scu_init(&u);
    u.config.called_ae = "NOT_SIREN";
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_null(a);
    assert_int_equal(err.code, DCM_E_REJECTED);
    assert_non_null(strstr(err.message, "permanent, service user: called AE "
                                        "title not recognized (7)"));
    scp_join(s);
    assert_int_equal(s->accept_code, DCM_E_REJECTED);
    assert_non_null(strstr(s->accept_err.message, "NOT_SIREN"));
    assert_false(s->check_called);
    assert_int_equal(u.wire.in.len, 10);
    assert_short_at(&u.wire.in, 0, DCM_PDU_ASSOCIATE_RJ, DCM_RJ_PERMANENT,
                    DCM_RJ_SOURCE_USER, DCM_RJ_CALLED_AE_NOT_RECOGNIZED);
    tap_clear(&u.wire);
    scp_free(s);
}

/* The site's check refuses a calling AE: its reject goes out as given
 * (1, 1, 3: calling AE title not recognized). */
static void calling_ae_refused_by_check(void **state)
{
    (void)state;
    scp *s = scp_new();
    s->refuse_calling_ae = "INTRUDER";
    scu u;
    scu_init(&u);
    u.config.calling_ae = "INTRUDER";
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_null(a);
    assert_int_equal(err.code, DCM_E_REJECTED);
    assert_non_null(strstr(err.message, "calling AE title not recognized (3)"));
    scp_join(s);
    assert_int_equal(s->accept_code, DCM_E_REJECTED);
    assert_true(s->check_called);
    assert_string_equal(s->check_calling_ae, "INTRUDER");
    assert_int_equal(u.wire.in.len, 10);
    assert_short_at(&u.wire.in, 0, DCM_PDU_ASSOCIATE_RJ, DCM_RJ_PERMANENT,
                    DCM_RJ_SOURCE_USER, DCM_RJ_CALLING_AE_NOT_RECOGNIZED);
    tap_clear(&u.wire);
    scp_free(s);
}

/* A request whose application context name is not DICOM's (by hand:
 * SIREN's encoder always writes DICOM's): 1, 1, 2 - application context
 * name not supported. */
static void foreign_application_context_rejected(void **state)
{
    (void)state;
    scp *s = scp_new();
    int fds[2];
    socket_pair(fds);
    scp_start(s, fds[0]);
    dcm_bytes pdu = {0};
    verification_request(&pdu, 16384);
    uint8_t *name = memmem(pdu.data, pdu.len, DCM_APPLICATION_CONTEXT,
                           strlen(DCM_APPLICATION_CONTEXT));
    assert_non_null(name);
    name[strlen(DCM_APPLICATION_CONTEXT) - 1] = '2'; /* 1.2.840.10008.3.1.1.2 */
    raw_send(fds[1], pdu.data, pdu.len);
    raw_expect_short(fds[1], DCM_PDU_ASSOCIATE_RJ, DCM_RJ_PERMANENT,
                     DCM_RJ_SOURCE_USER, DCM_RJ_CONTEXT_NOT_SUPPORTED);
    close(fds[1]);
    scp_join(s);
    assert_int_equal(s->accept_code, DCM_E_REJECTED);
    assert_non_null(strstr(s->accept_err.message,
                           "application context name not supported"));
    free(pdu.data);
    scp_free(s);
}

/* A request that does not offer protocol version 1 (bit 0 of the
 * version field): permanent (1), ACSE provider (2), protocol version not
 * supported (2). */
static void unsupported_protocol_version_rejected(void **state)
{
    (void)state;
    scp *s = scp_new();
    int fds[2];
    socket_pair(fds);
    scp_start(s, fds[0]);
    dcm_bytes pdu = {0};
    verification_request(&pdu, 16384);
    dcm_bytes_patch16(&pdu, DCM_PDU_HEADER_BYTES, 2); /* version 2 only */
    raw_send(fds[1], pdu.data, pdu.len);
    raw_expect_short(fds[1], DCM_PDU_ASSOCIATE_RJ, DCM_RJ_PERMANENT,
                     DCM_RJ_SOURCE_ACSE,
                     DCM_RJ_PROTOCOL_VERSION_NOT_SUPPORTED);
    close(fds[1]);
    scp_join(s);
    assert_int_equal(s->accept_code, DCM_E_REJECTED);
    assert_non_null(strstr(s->accept_err.message,
                           "protocol version not supported"));
    free(pdu.data);
    scp_free(s);
}

/* ---- C-STORE ------------------------------------------------------------- */

/* A context that took the file's own syntax carries the file's data set
 * byte for byte. */
static void store_sends_the_file_byte_for_byte(void **state)
{
    (void)state;
    char explicit_path[PATH_BYTES], implicit_path[PATH_BYTES];
    write_ct("net_explicit.dcm", DCM_TS_EXPLICIT_LE, 16, 16, explicit_path);
    write_ct("net_implicit.dcm", DCM_TS_IMPLICIT_LE, 8, 8, implicit_path);
    scp *s = scp_new();
    scu u;
    scu_init(&u);
    scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    scu_propose(&u, CT_IMAGE, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    uint16_t status = 0xFFFF;
    char comment[65] = "untouched";
    assert_ok(dcm_store_file(a, explicit_path, 1, &status, comment, &err),
              &err);
    assert_int_equal(status, DCM_STATUS_SUCCESS);
    assert_string_equal(comment, "");
    assert_ok(dcm_store_file(a, implicit_path, 2, &status, NULL, &err), &err);
    assert_int_equal(status, DCM_STATUS_SUCCESS);
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    assert_int_equal(s->stored_count, 2);

    const char *paths[2] = {explicit_path, implicit_path};
    const char *syntaxes[2] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    for (size_t i = 0; i < 2; i++) {
        const stored *st = &s->stored[i];
        dcm_bytes file = {0};
        file_dataset_bytes(paths[i], &file);
        assert_true(st->complete);
        assert_int_equal(st->message_id, i + 1);
        assert_string_equal(st->sop_class, CT_IMAGE);
        assert_ptr_equal(st->syntax, ts(syntaxes[i]));
        assert_int_equal(st->data.len, file.len);
        assert_memory_equal(st->data.data, file.data, file.len);
        free(file.data);
    }
    tap_clear(&u.wire);
    scp_free(s);
}

/* When the acceptor takes only another native little endian syntax, the
 * data set is re-encoded into it: read back, it holds the same elements
 * and values. */
static void store_reencodes_into_the_accepted_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *file, *accepted;
    } cases[] = {{DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE},
                 {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE}};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_BYTES];
        write_ct(i == 0 ? "net_reencode_e.dcm" : "net_reencode_i.dcm",
                 cases[i].file, 16, 16, path);
        scp *s = scp_new();
        s->config.ts_preference = &cases[i].accepted;
        s->config.ts_preference_count = 1;
        scu u;
        scu_init(&u);
        scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE,
                    NULL);
        dcm_error err = {0};
        dcm_assoc *a = associate(s, &u, &err);
        assert_associated(a, &err);
        assert_ptr_equal(dcm_assoc_context(a, 1)->accepted,
                         ts(cases[i].accepted));
        uint16_t status = 0xFFFF;
        assert_ok(dcm_store_file(a, path, 5, &status, NULL, &err), &err);
        assert_int_equal(status, DCM_STATUS_SUCCESS);
        assert_ok(dcm_assoc_release(a, &err), &err);
        dcm_assoc_free(a);
        scp_join(s);
        assert_int_equal(s->stored_count, 1);
        const stored *st = &s->stored[0];
        assert_ptr_equal(st->syntax, ts(cases[i].accepted));

        dcm_bytes file = {0};
        file_dataset_bytes(path, &file);
        assert_true(st->data.len != file.len ||
                    memcmp(st->data.data, file.data, file.len) != 0);
        dcm_read_options opt = {.transfer_syntax = cases[i].accepted,
                                .dataset_only = true};
        dcm_file *sent = dcm_file_open_memory(st->data.data, st->data.len,
                                              &opt, &err);
        if (!sent)
            fail_msg("what arrived does not read as %s: %s",
                     cases[i].accepted, err.message);
        dcm_file *original = dcm_file_open(path, NULL, &err);
        assert_non_null(original);
        assert_same_elements(dcm_file_dataset(original),
                             dcm_file_dataset(sent));
        dcm_file_free(original);
        dcm_file_free(sent);
        free(file.data);
        tap_clear(&u.wire);
        scp_free(s);
    }
}

/* The store handler refuses (out of resources): the requestor gets that
 * status, nothing is stored, the association carries on. */
static void store_refused_by_the_handler(void **state)
{
    (void)state;
    char path[PATH_BYTES];
    write_ct("net_refused.dcm", DCM_TS_EXPLICIT_LE, 8, 8, path);
    scp *s = scp_new();
    s->begin_refusal = DCM_STATUS_OUT_OF_RESOURCES;
    scu u;
    scu_init(&u);
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    uint16_t status = 0;
    assert_ok(dcm_store_file(a, path, 1, &status, NULL, &err), &err);
    assert_int_equal(status, 0xA700);
    assert_ok(dcm_echo(a, &status, &err), &err);
    assert_int_equal(status, DCM_STATUS_SUCCESS);
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    assert_int_equal(s->stored_count, 0);
    tap_clear(&u.wire);
    scp_free(s);
}

/* A C-STORE-RQ naming another SOP class than its context's abstract
 * syntax: 0x0122 (SOP class not supported) with a comment, data drained. */
static void store_of_another_sop_class_refused(void **state)
{
    (void)state;
    scp *s = scp_new();
    scu u;
    scu_init(&u);
    scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    dcm_command rq = {.field = DCM_C_STORE_RQ, .message_id = 3,
                      .has_dataset = true, .context_id = 1};
    snprintf(rq.sop_class, sizeof rq.sop_class, "%s", MR_IMAGE);
    snprintf(rq.sop_instance, sizeof rq.sop_instance, "1.2.3.4");
    assert_ok(dcm_send_command(a, &rq, &err), &err);
    uint8_t data[300];
    fill_pattern(data, sizeof data, 3);
    memory_reader reader = {data, sizeof data, 0};
    assert_ok(dcm_send_dataset(a, 1, read_memory, &reader, &err), &err);
    dcm_command rsp;
    assert_int_equal(dcm_receive_command(a, &rsp, &err), DCM_RECEIVED_COMMAND);
    assert_int_equal(rsp.field, DCM_C_STORE_RSP);
    assert_int_equal(rsp.responded_id, 3);
    assert_int_equal(rsp.status, 0x0122);
    assert_string_equal(rsp.error_comment,
                        "SOP class differs from the presentation context's");
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    assert_int_equal(s->stored_count, 0);
    tap_clear(&u.wire);
    scp_free(s);
}

/* Any other operation (here a C-FIND-RQ with its identifier) is drained
 * and answered 0x0211, unrecognized operation. */
static void other_operations_unrecognized(void **state)
{
    (void)state;
    scp *s = scp_new();
    scu u;
    scu_init(&u);
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    dcm_command find = {.field = 0x0020, .message_id = 4, .has_dataset = true,
                        .context_id = 1};
    snprintf(find.sop_class, sizeof find.sop_class, "%s",
             DCM_VERIFICATION_SOP_CLASS);
    assert_ok(dcm_send_command(a, &find, &err), &err);
    uint8_t identifier[64];
    fill_pattern(identifier, sizeof identifier, 4);
    memory_reader reader = {identifier, sizeof identifier, 0};
    assert_ok(dcm_send_dataset(a, 1, read_memory, &reader, &err), &err);
    dcm_command rsp;
    assert_int_equal(dcm_receive_command(a, &rsp, &err), DCM_RECEIVED_COMMAND);
    assert_int_equal(rsp.field, 0x8020);
    assert_int_equal(rsp.responded_id, 4);
    assert_int_equal(rsp.status, DCM_STATUS_UNRECOGNIZED_OPERATION);
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    tap_clear(&u.wire);
    scp_free(s);
}

/* Each side sends P-DATA no larger than the other announced: a 100 KB
 * image to an acceptor that takes 4096 bytes arrives in PDUs of at most
 * 4096, byte for byte, while the requestor announced 1 MiB. */
static void store_respects_the_acceptor_max_pdu(void **state)
{
    (void)state;
    char path[PATH_BYTES];
    write_ct("net_large.dcm", DCM_TS_EXPLICIT_LE, 160, 320, path);
    scp *s = scp_new();
    s->config.limits.max_pdu_bytes = 4096;
    scu u;
    scu_init(&u);
    u.config.limits.max_pdu_bytes = 1u << 20;
    scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    assert_int_equal(dcm_assoc_info_of(a)->peer_max_pdu, 4096);
    uint16_t status = 0xFFFF;
    assert_ok(dcm_store_file(a, path, 1, &status, NULL, &err), &err);
    assert_int_equal(status, DCM_STATUS_SUCCESS);
    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->info->peer_max_pdu, 1u << 20);
    assert_int_equal(s->stored_count, 1);
    dcm_bytes file = {0};
    file_dataset_bytes(path, &file);
    assert_true(file.len > 100 * 1024);
    assert_int_equal(s->stored[0].data.len, file.len);
    assert_memory_equal(s->stored[0].data.data, file.data, file.len);
    wire_stats in = wire_scan(&s->wire.in);
    assert_true(in.whole);
    assert_true(in.largest_pdata <= 4096);
    assert_true(in.data_pdvs >= file.len / (4096 - DCM_PDV_HEADER_BYTES));
    free(file.data);
    tap_clear(&u.wire);
    scp_free(s);
}

/* ---- abort and the table's abort actions --------------------------------- */

/* The requestor aborts: A-ABORT (service user, reason 0) on the wire and
 * dcm_scp_serve ends with DCM_E_ABORTED. */
static void abort_by_the_requestor(void **state)
{
    (void)state;
    scp *s = scp_new();
    scu u;
    scu_init(&u);
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);
    uint16_t status;
    assert_ok(dcm_echo(a, &status, &err), &err);
    dcm_assoc_abort(a);
    assert_false(dcm_assoc_is_established(a));
    dcm_assoc_free(a);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_E_ABORTED);
    assert_non_null(strstr(s->serve_err.message,
                           "aborted the association (source 0, reason 0)"));
    assert_short_at(&u.wire.out, u.wire.out.len - 10, DCM_PDU_ABORT, 0, 0, 0);
    tap_clear(&u.wire);
    scp_free(s);
}

/* PDUs the established association does not expect (Table 9-10, Sta6):
 * another A-ASSOCIATE-RQ (Evt6) and a PDU of no known type (Evt19) are
 * both AA-8: A-ABORT from the service provider (source 2) with reason
 * unexpected PDU (2) or unrecognized PDU (1); dcm_scp_serve fails with
 * DCM_E_INVALID naming the action and the state the PDU arrived in. */
static void unexpected_pdus_abort(void **state)
{
    (void)state;
    for (int unknown_type = 1; unknown_type >= 0; unknown_type--) {
        scp *s = scp_new();
        int fds[2];
        socket_pair(fds);
        scp_start(s, fds[0]);
        raw_associate(fds[1], 16384);
        dcm_bytes pdu = {0};
        if (unknown_type) {
            uint8_t odd[10];
            dcm_pdu_encode_short(0x09, 0, 0, 0, odd);
            raw_send(fds[1], odd, sizeof odd);
        } else {
            verification_request(&pdu, 16384);
            raw_send(fds[1], pdu.data, pdu.len);
        }
        raw_expect_short(fds[1], DCM_PDU_ABORT, 0, 2, unknown_type ? 1 : 2);
        uint8_t type;
        assert_false(raw_read_pdu(fds[1], &type, &pdu)); /* then it closes */
        close(fds[1]);
        scp_join(s);
        int code = s->serve_code;
        dcm_error said = s->serve_err;
        free(pdu.data);
        scp_free(s);
        assert_int_equal(code, DCM_E_INVALID);
        const char *want = unknown_type ? "unknown PDU type 0x09"
                                        : "(AA-8 in state 6)";
        if (!strstr(said.message, want))
            fail_msg("\"%s\" does not say \"%s\"", said.message, want);
    }
}

/* ---- release collisions (PS3.8 9.2.1, both sides send A-RELEASE-RQ) ------ */

/* SIREN requests and releases; the acceptor, by hand, releases too. All
 * its PDUs are written before the requestor starts (the socket keeps them),
 * so the requestor meets them in a fixed order:
 *   Sta6 -RQ sent-> Sta7 -peer's RQ (AR-8)-> Sta9 -RP sent (AR-9)-> Sta11
 *   -peer's RP (AR-3)-> released. */
static void release_collision_requestor_side(void **state)
{
    (void)state;
    int fds[2];
    socket_pair(fds);
    int hand = fds[0];
    dcm_bytes pdu = {0};
    verification_accept(&pdu, 16384);
    raw_send(hand, pdu.data, pdu.len);
    raw_send_short(hand, DCM_PDU_RELEASE_RQ);
    raw_send_short(hand, DCM_PDU_RELEASE_RP);

    scu u;
    scu_init(&u);
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = scu_request(&u, fds[1], &err);
    assert_associated(a, &err);
    assert_ok(dcm_assoc_release(a, &err), &err);
    assert_false(dcm_assoc_is_established(a));
    dcm_assoc_free(a);

    /* The requestor sent its RQ, then, seeing ours, answered it. */
    uint8_t type;
    assert_true(raw_read_pdu(hand, &type, &pdu));
    assert_int_equal(type, DCM_PDU_ASSOCIATE_RQ);
    raw_expect_short(hand, DCM_PDU_RELEASE_RQ, 0, 0, 0);
    raw_expect_short(hand, DCM_PDU_RELEASE_RP, 0, 0, 0);
    assert_false(raw_read_pdu(hand, &type, &pdu));
    close(hand);
    free(pdu.data);
    tap_clear(&u.wire);
}

/* SIREN accepts and releases (the acceptor may); the requestor, by hand,
 * releases at the same time and answers SIREN's RQ, then closes its
 * sending side. The acceptor waits for the requestor's answer first:
 *   Sta6 -RQ sent-> Sta7 -peer's RQ (AR-8)-> Sta10 -peer's RP (AR-10)->
 *   Sta12 -RP sent (AR-4)-> Sta13 -connection closed (AR-5)-> released. */
static void release_collision_acceptor_side(void **state)
{
    (void)state;
    int fds[2];
    socket_pair(fds);
    int hand = fds[1];
    dcm_bytes pdu = {0};
    verification_request(&pdu, 16384);
    raw_send(hand, pdu.data, pdu.len);

    dcm_scp_config config = {.ae_title = "SIREN"};
    test_limits(&config.limits, 16384);
    dcm_error err = {0};
    dcm_transport *t = dcm_tcp_transport(fds[0], "hand", &err);
    assert_non_null(t);
    dcm_assoc *a = dcm_assoc_accept(t, &config, &err);
    assert_associated(a, &err);
    raw_send_short(hand, DCM_PDU_RELEASE_RQ);
    raw_send_short(hand, DCM_PDU_RELEASE_RP);
    assert_int_equal(shutdown(hand, SHUT_WR), 0);
    assert_ok(dcm_assoc_release(a, &err), &err);
    assert_false(dcm_assoc_is_established(a));
    dcm_assoc_free(a);

    uint8_t type;
    assert_true(raw_read_pdu(hand, &type, &pdu));
    assert_int_equal(type, DCM_PDU_ASSOCIATE_AC);
    raw_expect_short(hand, DCM_PDU_RELEASE_RQ, 0, 0, 0);
    raw_expect_short(hand, DCM_PDU_RELEASE_RP, 0, 0, 0);
    assert_false(raw_read_pdu(hand, &type, &pdu));
    close(hand);
    free(pdu.data);
}

/* ========================================================================
 * 4. DIMSE messages
 * ======================================================================== */

#define DATASET_BYTES (100u * 1024)

/* The acceptor's side of dimse_round_trip; codes[i] is each step's
 * result. */
static void dimse_script(scp *s, dcm_assoc *a)
{
    dcm_error *err = &s->serve_err;
    dcm_command *got = s->commands;
    /* 1. C-ECHO-RQ, answered */
    if ((s->codes[0] = dcm_receive_command(a, &got[0], err)) != 0)
        return;
    dcm_command rsp = {.field = DCM_C_ECHO_RSP,
                       .responded_id = got[0].message_id,
                       .status = DCM_STATUS_SUCCESS,
                       .context_id = got[0].context_id};
    memcpy(rsp.sop_class, got[0].sop_class, sizeof rsp.sop_class);
    if ((s->codes[1] = dcm_send_command(a, &rsp, err)) != 0)
        return;
    /* 2. C-STORE-RQ and its data set, answered with a failure and a
     *    comment */
    if ((s->codes[2] = dcm_receive_command(a, &got[1], err)) != 0)
        return;
    uint64_t received = 0;
    bool write_failed = true;
    s->codes[3] = dcm_receive_dataset(a, append_bytes, &s->dataset, &received,
                                      &write_failed, err);
    if (s->codes[3] != 0 || write_failed || received != s->dataset.len)
        return;
    rsp = (dcm_command){.field = DCM_C_STORE_RSP,
                        .responded_id = got[1].message_id,
                        .status = DCM_STATUS_OUT_OF_RESOURCES,
                        .context_id = got[1].context_id};
    memcpy(rsp.sop_class, got[1].sop_class, sizeof rsp.sop_class);
    memcpy(rsp.sop_instance, got[1].sop_instance, sizeof rsp.sop_instance);
    snprintf(rsp.error_comment, sizeof rsp.error_comment,
             "spool full: 0 bytes free");
    if ((s->codes[4] = dcm_send_command(a, &rsp, err)) != 0)
        return;
    /* 3. a data set the other way: the acceptor's own C-STORE-RQ */
    dcm_command rq = {.field = DCM_C_STORE_RQ, .message_id = 9,
                      .has_dataset = true, .context_id = got[1].context_id};
    memcpy(rq.sop_class, got[1].sop_class, sizeof rq.sop_class);
    snprintf(rq.sop_instance, sizeof rq.sop_instance, "1.2.3.9");
    if ((s->codes[5] = dcm_send_command(a, &rq, err)) != 0)
        return;
    memory_reader reader = {s->outgoing.data, s->outgoing.len, 0};
    if ((s->codes[6] = dcm_send_dataset(a, rq.context_id, read_memory,
                                        &reader, err)) != 0)
        return;
    if ((s->codes[7] = dcm_receive_command(a, &got[2], err)) != 0)
        return;
    /* 4. the requestor releases */
    s->codes[8] = dcm_receive_command(a, &got[3], err);
}

/* Command sets with every field SIREN uses, both ways, and a 100 KB data
 * set each way between two ends that take PDUs of 4096 bytes: it goes in
 * PDVs of at most that and arrives whole. */
static void dimse_round_trip(void **state)
{
    (void)state;
    scp *s = scp_new();
    s->script = dimse_script;
    s->config.limits.max_pdu_bytes = 4096;
    uint8_t *pattern = malloc(DATASET_BYTES);
    assert_non_null(pattern);
    fill_pattern(pattern, DATASET_BYTES, 2);
    dcm_bytes_put(&s->outgoing, pattern, DATASET_BYTES);
    fill_pattern(pattern, DATASET_BYTES, 1); /* what the requestor sends */
    scu u;
    scu_init(&u);
    u.config.limits.max_pdu_bytes = 4096;
    scu_propose(&u, DCM_VERIFICATION_SOP_CLASS, DCM_TS_IMPLICIT_LE, NULL);
    scu_propose(&u, CT_IMAGE, DCM_TS_EXPLICIT_LE, NULL);
    dcm_error err = {0};
    dcm_assoc *a = associate(s, &u, &err);
    assert_associated(a, &err);

    /* C-ECHO */
    dcm_command echo = {.field = DCM_C_ECHO_RQ, .message_id = 7,
                        .context_id = 1};
    snprintf(echo.sop_class, sizeof echo.sop_class, "%s",
             DCM_VERIFICATION_SOP_CLASS);
    assert_ok(dcm_send_command(a, &echo, &err), &err);
    dcm_command rsp;
    assert_int_equal(dcm_receive_command(a, &rsp, &err), DCM_RECEIVED_COMMAND);
    assert_int_equal(rsp.field, DCM_C_ECHO_RSP);
    assert_int_equal(rsp.responded_id, 7);
    assert_int_equal(rsp.status, DCM_STATUS_SUCCESS);
    assert_false(rsp.has_dataset);
    assert_int_equal(rsp.context_id, 1);
    assert_string_equal(rsp.sop_class, DCM_VERIFICATION_SOP_CLASS);
    assert_string_equal(rsp.error_comment, "");

    /* C-STORE with a 100 KB data set, answered 0xA700 with a comment */
    dcm_command store = {.field = DCM_C_STORE_RQ, .message_id = 8,
                         .priority = 2, .has_dataset = true, .context_id = 3,
                         .move_originator_id = 42};
    snprintf(store.sop_class, sizeof store.sop_class, "%s", CT_IMAGE);
    snprintf(store.sop_instance, sizeof store.sop_instance,
             "1.2.826.0.1.3680043.10.1");
    snprintf(store.move_originator_ae, sizeof store.move_originator_ae,
             "MOVER");
    assert_ok(dcm_send_command(a, &store, &err), &err);
    memory_reader reader = {pattern, DATASET_BYTES, 0};
    assert_ok(dcm_send_dataset(a, 3, read_memory, &reader, &err), &err);
    assert_int_equal(dcm_receive_command(a, &rsp, &err), DCM_RECEIVED_COMMAND);
    assert_int_equal(rsp.field, DCM_C_STORE_RSP);
    assert_int_equal(rsp.responded_id, 8);
    assert_int_equal(rsp.status, DCM_STATUS_OUT_OF_RESOURCES);
    assert_string_equal(rsp.error_comment, "spool full: 0 bytes free");
    assert_string_equal(rsp.sop_class, CT_IMAGE);
    assert_string_equal(rsp.sop_instance, "1.2.826.0.1.3680043.10.1");
    assert_false(rsp.has_dataset);

    /* the acceptor's C-STORE-RQ and its data set, answered */
    dcm_command rq;
    assert_int_equal(dcm_receive_command(a, &rq, &err), DCM_RECEIVED_COMMAND);
    assert_int_equal(rq.field, DCM_C_STORE_RQ);
    assert_int_equal(rq.message_id, 9);
    assert_true(rq.has_dataset);
    assert_int_equal(rq.context_id, 3);
    dcm_bytes back = {0};
    uint64_t received = 0;
    bool write_failed = true;
    assert_ok(dcm_receive_dataset(a, append_bytes, &back, &received,
                                  &write_failed, &err), &err);
    assert_false(write_failed);
    assert_int_equal(received, DATASET_BYTES);
    assert_int_equal(back.len, DATASET_BYTES);
    assert_memory_equal(back.data, s->outgoing.data, DATASET_BYTES);
    dcm_command answer = {.field = DCM_C_STORE_RSP, .responded_id = 9,
                          .status = DCM_STATUS_SUCCESS, .context_id = 3};
    memcpy(answer.sop_class, rq.sop_class, sizeof answer.sop_class);
    assert_ok(dcm_send_command(a, &answer, &err), &err);

    assert_ok(dcm_assoc_release(a, &err), &err);
    dcm_assoc_free(a);
    scp_join(s);

    /* What the acceptor received, step by step. */
    for (int i = 0; i < 8; i++)
        if (s->codes[i] != DCM_OK)
            fail_msg("acceptor step %d: %d (%s)", i, s->codes[i],
                     s->serve_err.message);
    assert_int_equal(s->codes[8], DCM_RECEIVED_RELEASE);
    const dcm_command *c = &s->commands[0];
    assert_int_equal(c->field, DCM_C_ECHO_RQ);
    assert_int_equal(c->message_id, 7);
    assert_false(c->has_dataset);
    assert_int_equal(c->context_id, 1);
    assert_string_equal(c->sop_class, DCM_VERIFICATION_SOP_CLASS);
    c = &s->commands[1];
    assert_int_equal(c->field, DCM_C_STORE_RQ);
    assert_int_equal(c->message_id, 8);
    assert_int_equal(c->priority, 2);
    assert_true(c->has_dataset);
    assert_int_equal(c->context_id, 3);
    assert_string_equal(c->sop_class, CT_IMAGE);
    assert_string_equal(c->sop_instance, "1.2.826.0.1.3680043.10.1");
    assert_string_equal(c->move_originator_ae, "MOVER");
    assert_int_equal(c->move_originator_id, 42);
    assert_int_equal(s->dataset.len, DATASET_BYTES);
    assert_memory_equal(s->dataset.data, pattern, DATASET_BYTES);
    c = &s->commands[2];
    assert_int_equal(c->field, DCM_C_STORE_RSP);
    assert_int_equal(c->responded_id, 9);
    assert_int_equal(c->status, DCM_STATUS_SUCCESS);

    /* Both ways: PDUs within 4096 bytes, the data sets in many PDVs. */
    wire_stats to_acceptor = wire_scan(&s->wire.in);
    wire_stats to_requestor = wire_scan(&u.wire.in);
    assert_true(to_acceptor.whole);
    assert_true(to_requestor.whole);
    assert_true(to_acceptor.largest_pdata <= 4096);
    assert_true(to_requestor.largest_pdata <= 4096);
    size_t least = DATASET_BYTES / (4096 - DCM_PDV_HEADER_BYTES);
    assert_true(to_acceptor.data_pdvs >= least);
    assert_true(to_requestor.data_pdvs >= least);
    free(back.data);
    free(pattern);
    tap_clear(&u.wire);
    scp_free(s);
}

/* A command set may come in several PDVs, in one P-DATA PDU or several:
 * a C-ECHO-RQ in three fragments (one PDU, then two PDVs in a second one)
 * is answered like any other. */
static void command_in_fragments(void **state)
{
    (void)state;
    scp *s = scp_new();
    int fds[2];
    socket_pair(fds);
    scp_start(s, fds[0]);
    int hand = fds[1];
    raw_associate(hand, 16384);

    bytes cmd = {0};
    echo_command(&cmd, 0x1234);
    assert_true(cmd.len > 40);
    dcm_bytes pdu = {0};
    pdata_begin(&pdu);
    pdata_pdv(&pdu, 1, true, false, cmd.data, 10);
    pdu_end(&pdu);
    raw_send(hand, pdu.data, pdu.len);
    pdata_begin(&pdu);
    pdata_pdv(&pdu, 1, true, false, cmd.data + 10, 20);
    pdata_pdv(&pdu, 1, true, true, cmd.data + 30, cmd.len - 30);
    pdu_end(&pdu);
    raw_send(hand, pdu.data, pdu.len);

    /* The C-ECHO-RSP, reassembled from its PDVs. */
    dcm_bytes answer = {0};
    bool last = false;
    while (!last) {
        uint8_t type;
        assert_true(raw_read_pdu(hand, &type, &pdu));
        assert_int_equal(type, DCM_PDU_P_DATA);
        for (size_t at = 0; at < pdu.len && !last;) {
            size_t item = be32(pdu.data + at);
            assert_int_equal(pdu.data[at + 4], 1);
            assert_true(pdu.data[at + 5] & 1);
            last = pdu.data[at + 5] & 2;
            dcm_bytes_put(&answer, pdu.data + at + 6, item - 2);
            at += 4 + item;
        }
    }
    dcm_read_options opt = {.transfer_syntax = DCM_TS_IMPLICIT_LE,
                            .dataset_only = true};
    dcm_error err = {0};
    dcm_file *f = dcm_file_open_memory(answer.data, answer.len, &opt, &err);
    if (!f)
        fail_msg("the response is no command set: %s", err.message);
    static const struct {
        uint16_t element;
        int64_t value;
    } want[] = {{0x0100, DCM_C_ECHO_RSP}, {0x0120, 0x1234},
                {0x0800, 0x0101}, {0x0900, DCM_STATUS_SUCCESS}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const dcm_element *el =
            dcm_dataset_find(dcm_file_dataset(f), DCM_TAG(0, want[i].element));
        assert_non_null(el);
        int64_t v = -1;
        assert_ok(dcm_element_get_int(el, 0, &v, &err), &err);
        assert_int_equal(v, want[i].value);
    }
    dcm_file_free(f);

    raw_send_short(hand, DCM_PDU_RELEASE_RQ);
    raw_expect_short(hand, DCM_PDU_RELEASE_RP, 0, 0, 0);
    close(hand);
    scp_join(s);
    assert_int_equal(s->serve_code, DCM_OK);
    free(cmd.data);
    free(pdu.data);
    free(answer.data);
    scp_free(s);
}

/* ========================================================================
 * Last, because the bug it shows crashes the process under ASan.
 * ======================================================================== */

/* A requestor that announces a maximum PDU of 4 bytes - too small for any
 * PDV (6 bytes of header) - must never get a P-DATA-TF PDU longer than
 * that: the acceptor refuses, aborts or stays silent, but it does not
 * overrun its buffer or the peer's limit. */
static void tiny_max_pdu_is_never_exceeded(void **state)
{
    (void)state;
    scp *s = scp_new();
    int fds[2];
    socket_pair(fds);
    scp_start(s, fds[0]);
    int hand = fds[1];
    dcm_bytes pdu = {0};
    verification_request(&pdu, 4);
    raw_send(hand, pdu.data, pdu.len);
    uint8_t type;
    assert_true(raw_read_pdu(hand, &type, &pdu));
    if (type == DCM_PDU_ASSOCIATE_AC) {
        bytes cmd = {0};
        echo_command(&cmd, 1);
        pdata_begin(&pdu);
        pdata_pdv(&pdu, 1, true, true, cmd.data, cmd.len);
        pdu_end(&pdu);
        raw_send(hand, pdu.data, pdu.len);
        free(cmd.data);
        while (raw_read_pdu(hand, &type, &pdu) && type != DCM_PDU_ABORT) {
            if (type == DCM_PDU_P_DATA && pdu.len > 4)
                fail_msg("the acceptor sent a P-DATA-TF PDU of %zu bytes to "
                         "a peer that takes 4", pdu.len);
            if (type == DCM_PDU_P_DATA)
                break;
        }
    } else {
        assert_true(type == DCM_PDU_ASSOCIATE_RJ || type == DCM_PDU_ABORT);
    }
    close(hand);
    scp_join(s);
    free(pdu.data);
    scp_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_table_is_ps3_8_table_9_10),
        cmocka_unit_test(state_table_names_and_bounds),
        cmocka_unit_test(request_round_trip),
        cmocka_unit_test(request_from_another_implementation),
        cmocka_unit_test(accept_round_trip),
        cmocka_unit_test(accept_with_blank_ae_fields_is_read),
        cmocka_unit_test(malformed_requests_refused),
        cmocka_unit_test(echo_then_release),
        cmocka_unit_test(negotiation_follows_the_acceptor),
        cmocka_unit_test(wrong_called_ae_rejected),
        cmocka_unit_test(calling_ae_refused_by_check),
        cmocka_unit_test(foreign_application_context_rejected),
        cmocka_unit_test(unsupported_protocol_version_rejected),
        cmocka_unit_test(store_sends_the_file_byte_for_byte),
        cmocka_unit_test(store_reencodes_into_the_accepted_syntax),
        cmocka_unit_test(store_refused_by_the_handler),
        cmocka_unit_test(store_of_another_sop_class_refused),
        cmocka_unit_test(other_operations_unrecognized),
        cmocka_unit_test(store_respects_the_acceptor_max_pdu),
        cmocka_unit_test(abort_by_the_requestor),
        cmocka_unit_test(unexpected_pdus_abort),
        cmocka_unit_test(release_collision_requestor_side),
        cmocka_unit_test(release_collision_acceptor_side),
        cmocka_unit_test(dimse_round_trip),
        cmocka_unit_test(command_in_fragments),
        cmocka_unit_test(tiny_max_pdu_is_never_exceeded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
