/* forward_dimse.c - the forwarder's DIMSE transport (forward_transport.h):
 * C-STORE over TCP or DICOM-TLS on one persistent association per worker.
 * An association proposes every SOP class its worker has seen, each with
 * the file's own syntax plus Explicit and Implicit VR Little Endian (a
 * compressed syntax gets a context of its own, proposed before the
 * native one of its class); a file of a class not proposed yet ends it
 * and opens one proposing them all. A compressed file whose syntax the
 * archive refused while it took a native one goes decoded: a copy in
 * Explicit VR Little Endian under a hidden name beside it (the spool
 * removes such leftovers at start), sent, then removed; the file itself
 * is never changed. */
#include "forward_transport.h"

#include "codec.h"
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* PS3.7 C.4.3 Duplicate SOP Instance: archives that are not Orthanc say
 * so for an instance they already hold, which is what we want. */
#define STATUS_DUPLICATE_INSTANCE 0x0111

typedef struct dimse_shared {
    gw_scu_peer peer;
    bool tls;
} dimse_shared;

struct gw_fwd_link {
    const dimse_shared *s;
    unsigned worker;
    dcm_assoc *assoc;
    gw_proposals proposals; /* what assoc was (or the next one will be)
                               proposed: grows with the files seen */
    unsigned sent_on_assoc;
    uint16_t message_id;
};

static void *dimse_setup(const gw_forward_config *c, dcm_error *err)
{
    dimse_shared *s = calloc(1, sizeof *s);
    if (!s) {
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    s->peer = (gw_scu_peer){.host = c->host, .port = c->port,
                            .calling_ae = c->calling_ae,
                            .called_ae = c->called_ae,
                            .timeout_ms = c->timeout_ms,
                            .max_pdu = c->max_pdu,
                            .server_name = c->tls_server_name};
    s->tls = c->tls;
    if (c->tls) {
        tls_client_config tc = {.profile = c->tls_profile,
                                .ca_file = c->tls_ca,
                                .cert_file = c->tls_cert,
                                .key_file = c->tls_key};
        s->peer.tls = tls_client_context_new(&tc, err);
        if (!s->peer.tls) {
            free(s);
            return NULL;
        }
    }
    return s;
}

static void dimse_teardown(void *shared)
{
    dimse_shared *s = shared;
    if (!s)
        return;
    tls_context_unref(s->peer.tls);
    free(s);
}

static gw_fwd_link *dimse_link_new(void *shared, unsigned worker_id)
{
    gw_fwd_link *l = calloc(1, sizeof *l);
    if (l) {
        l->s = shared;
        l->worker = worker_id;
    }
    return l;
}

static bool dimse_is_open(const gw_fwd_link *l)
{
    return l->assoc != NULL;
}

/* Ends the association: orderly (A-RELEASE) when it can carry on, else
 * aborted (a half-sent data set, a peer that went away). */
static void dimse_close(gw_fwd_link *l, bool orderly, const char *why)
{
    if (!l->assoc)
        return;
    if (orderly && dcm_assoc_is_established(l->assoc)) {
        dcm_error err = {0};
        if (dcm_assoc_release(l->assoc, &err) < 0)
            gw_log(GW_LOG_WARN, "forward.release_failed", "worker=%u "
                   "reason=\"%s\"", l->worker, err.message);
        gw_log(GW_LOG_INFO, "forward.assoc_released", "worker=%u sent=%u "
               "why=%s", l->worker, l->sent_on_assoc, why);
    } else {
        dcm_assoc_abort(l->assoc);
    }
    dcm_assoc_free(l->assoc);
    l->assoc = NULL;
}

static void dimse_link_free(gw_fwd_link *l)
{
    if (!l)
        return;
    if (l->s->tls)
        tls_thread_done();
    free(l);
}

static size_t accepted_contexts(const dcm_assoc *a)
{
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    size_t n = 0;
    for (size_t i = 0; i < info->context_count; i++)
        n += info->contexts[i].result == DCM_PC_ACCEPTED;
    return n;
}

/* An association on which the file can go: the one open if a context
 * was proposed for it, else a new one proposing what the worker has sent
 * so far and the file (a file of another SOP class or compressed syntax
 * cannot join an association: contexts are fixed at its start). */
static int ensure_association(gw_fwd_link *l, const gw_scu_file *id,
                              dcm_error *err)
{
    if (l->assoc && !dcm_assoc_is_established(l->assoc))
        dimse_close(l, false, "lost");
    if (l->assoc && gw_proposals_find(&l->proposals, id))
        return 0;
    dimse_close(l, true, "new-context");
    if (!gw_proposals_find(&l->proposals, id) &&
        gw_proposals_add(&l->proposals, id) < 0) {
        l->proposals.count = 0; /* 128 contexts: start afresh */
        gw_proposals_add(&l->proposals, id);
    }
    l->assoc = gw_scu_open(&l->s->peer, l->proposals.items,
                           l->proposals.count, err);
    if (!l->assoc)
        return -1;
    l->sent_on_assoc = 0;
    l->message_id = 0;
    const tls_identity *tls =
        tls_transport_identity(dcm_assoc_transport(l->assoc));
    gw_log(GW_LOG_INFO, "forward.assoc_opened", "worker=%u peer=%s "
           "called=%s contexts=%zu/%zu%s%s", l->worker,
           dcm_assoc_transport(l->assoc)->peer, l->s->peer.called_ae,
           accepted_contexts(l->assoc), l->proposals.count,
           tls ? " tls=" : "", tls ? tls->protocol : "");
    return 0;
}

/* Statuses that will not change however often the file is sent. */
static bool refused_for_good(uint16_t status)
{
    return status == DCM_STATUS_SOP_CLASS_NOT_SUPPORTED ||
           status == DCM_STATUS_NOT_AUTHORIZED ||
           (status & 0xFF00) == 0xA900 || (status & 0xF000) == 0xC000;
}

/* The C-STORE response in the forwarder's terms. */
static void judge_status(uint16_t status, const char *comment,
                         gw_fwd_answer *out)
{
    char clean[65], said[80];
    snprintf(clean, sizeof clean, "%s", comment);
    for (char *c = clean; *c; c++) /* the archive's text: no controls */
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = ' ';
    snprintf(said, sizeof said, "%s%s", clean[0] ? ": " : "", clean);
    snprintf(out->status, sizeof out->status, "%04X", status);
    if (gw_status_ok(status) || status == STATUS_DUPLICATE_INSTANCE) {
        out->kind = GW_FWD_STORED;
        out->warning = status != DCM_STATUS_SUCCESS;
        snprintf(out->detail, sizeof out->detail, "%s", clean);
    } else if (refused_for_good(status)) {
        out->kind = GW_FWD_REFUSED;
        snprintf(out->detail, sizeof out->detail, "the archive refused it: "
                 "status 0x%04X (%s)%s", status, gw_status_words(status),
                 said);
    } else {
        out->kind = GW_FWD_LATER;
        snprintf(out->detail, sizeof out->detail, "status 0x%04X (%s)%s",
                 status, gw_status_words(status), said);
    }
}

/* Whether the association took a native little endian syntax for
 * sop_class (what dcm_store_file can send a native file in). */
static bool native_accepted(const dcm_assoc *a, const char *sop_class)
{
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    for (size_t i = 0; i < info->context_count; i++) {
        const dcm_pcontext *pc = &info->contexts[i];
        if (pc->result == DCM_PC_ACCEPTED &&
            strcmp(pc->abstract_syntax, sop_class) == 0 &&
            !pc->accepted->encapsulated && !pc->accepted->big_endian)
            return true;
    }
    return false;
}

/* A compressed file whose syntax the association refused while it took
 * a native one for the class: it goes decoded. */
static bool goes_decoded(const dcm_assoc *a, const gw_scu_file *id)
{
    if (!id->ts->encapsulated)
        return false;
    const dcm_pcontext *pc = dcm_assoc_find_context(a, id->sop_class, id->ts);
    return !(pc && pc->accepted == id->ts) &&
           native_accepted(a, id->sop_class);
}

/* Writes the decoded copy of path into temp (a hidden name beside it).
 * 0, or -1 with out filled: refused for good when the file cannot be
 * decoded, for now when the copy could not be written. */
static int decode_to_temp(const gw_fwd_link *l, const char *path,
                          const gw_scu_file *id, char *temp, size_t size,
                          gw_fwd_answer *out)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    dcm_error err = {0};
    int rc = DCM_OK, fd = -1;
    if (!codec_can_decode(id->ts->uid))
        rc = dcm_fail(&err, DCM_E_UNSUPPORTED, -1, "this build cannot decode "
                      "%s", id->ts->name);
    else if ((size_t)snprintf(temp, size, "%.*s.tmp-native-%u-%s", dir_len,
                              path, l->worker,
                              slash ? slash + 1 : path) >= size)
        rc = dcm_fail(&err, DCM_E_IO, -1, "path too long for the decoded "
                      "copy");
    else if ((fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
                                  O_NOFOLLOW, 0600)) < 0)
        rc = dcm_fail(&err, DCM_E_IO, -1, "cannot create %s: %s", temp,
                      strerror(errno));
    else
        rc = gw_scu_write_native(path, fd, &err);
    if (fd >= 0 && close(fd) < 0 && rc == DCM_OK)
        rc = dcm_fail(&err, DCM_E_IO, -1, "writing %s: %s", temp,
                      strerror(errno));
    if (rc == DCM_OK)
        return 0;
    if (fd >= 0)
        unlink(temp);
    temp[0] = '\0';
    if (rc == DCM_E_IO || rc == DCM_E_NOMEM) { /* our trouble: later */
        out->kind = GW_FWD_LATER;
        snprintf(out->detail, sizeof out->detail, "the archive takes SOP "
                 "class %s only in a native syntax and the decoded copy "
                 "could not be written: %s", id->sop_class, err.message);
    } else {
        out->kind = GW_FWD_REFUSED;
        snprintf(out->detail, sizeof out->detail, "the archive refused it "
                 "in %s and takes SOP class %s only in a native syntax, "
                 "into which it cannot be decoded: %s", id->ts->name,
                 id->sop_class, err.message);
    }
    return -1;
}

static void dimse_send(gw_fwd_link *l, const char *path,
                       const gw_scu_file *id, gw_fwd_answer *out)
{
    memset(out, 0, sizeof *out);
    for (bool retried = false;; retried = true) {
        dcm_error err = {0};
        if (ensure_association(l, id, &err) < 0) {
            out->kind = GW_FWD_AWAY; /* the same file again after a pause */
            snprintf(out->detail, sizeof out->detail, "%s", err.message);
            return;
        }
        bool reused = l->sent_on_assoc > 0;
        char temp[PATH_MAX] = "";
        if (goes_decoded(l->assoc, id)) {
            if (decode_to_temp(l, path, id, temp, sizeof temp, out) < 0)
                return;
            const char *name = strrchr(path, '/');
            gw_log(GW_LOG_INFO, "forward.decoded", "worker=%u file=%s "
                   "from=%s to=%s", l->worker, name ? name + 1 : path,
                   id->ts->uid, DCM_TS_EXPLICIT_LE);
        }
        uint16_t status = 0;
        char comment[65] = "";
        int rc = dcm_store_file(l->assoc, temp[0] ? temp : path,
                                ++l->message_id, &status, comment, &err);
        if (temp[0])
            unlink(temp);
        if (rc == DCM_OK) {
            if (temp[0])
                snprintf(out->decoded_from, sizeof out->decoded_from, "%s",
                         id->ts->uid);
            l->sent_on_assoc++;
            judge_status(status, comment, out);
            return;
        }
        if (rc == DCM_E_UNSUPPORTED) { /* no context took it: nothing sent */
            out->kind = GW_FWD_REFUSED;
            snprintf(out->detail, sizeof out->detail, "the archive refused "
                     "its presentation context: %s", err.message);
            return;
        }
        dimse_close(l, false, "failed");
        /* An association that had carried files may just have been
         * closed by the archive while it sat idle: once more at once, on
         * a new one. */
        if (!reused || retried) {
            out->kind = GW_FWD_BROKEN;
            snprintf(out->detail, sizeof out->detail, "%s", err.message);
            return;
        }
        const char *name = strrchr(path, '/');
        gw_log(GW_LOG_INFO, "forward.reconnect", "worker=%u file=%s "
               "reason=\"%s\"", l->worker, name ? name + 1 : path,
               err.message);
    }
}

const gw_fwd_transport gw_fwd_dimse = {
    .name = "dimse",
    .needs_dicom = true,
    .setup = dimse_setup,
    .teardown = dimse_teardown,
    .link_new = dimse_link_new,
    .send = dimse_send,
    .is_open = dimse_is_open,
    .close = dimse_close,
    .link_free = dimse_link_free,
};
