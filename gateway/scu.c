/* scu.c - what the gateway's DICOM clients share (scu.h): options,
 * associations, proposals, statuses. */
#include "scu.h"

#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the peer ------------------------------------------------------------ */

dcm_assoc *gw_scu_open(const gw_scu_peer *peer, const dcm_proposal *proposals,
                       size_t count, dcm_error *err)
{
    char address[64];
    int fd = dcm_tcp_connect(peer->host, peer->port, peer->timeout_ms,
                             address, err);
    if (fd < 0)
        return NULL;
    dcm_transport *t =
        peer->tls ? tls_connect(peer->tls, fd, address,
                                peer->server_name ? peer->server_name
                                                  : peer->host,
                                peer->timeout_ms, err)
                  : dcm_tcp_transport(fd, address, err);
    if (!t)
        return NULL;
    dcm_scu_config cfg = {.calling_ae = peer->calling_ae,
                          .called_ae = peer->called_ae,
                          .proposals = proposals,
                          .proposal_count = count};
    dcm_net_limits_default(&cfg.limits);
    cfg.limits.dimse_timeout_ms = peer->timeout_ms;
    if (peer->max_pdu)
        cfg.limits.max_pdu_bytes = peer->max_pdu;
    return dcm_assoc_request(t, &cfg, err);
}

/* ---- the command line -------------------------------------------------------- */

const char gw_client_options_help[] =
    "  --aet AE        our (calling) AE title (default SIREN)\n"
    "  --call AE       the peer's (called) AE title (default ANY-SCP)\n"
    "  --timeout S     seconds to wait for the peer at each step (default 60)\n"
    "  --max-pdu N     largest P-DATA PDU we receive (default 131072)\n"
    "\nDICOM-TLS:\n"
    "  --tls           use DICOM-TLS (the server certificate is verified)\n"
    "  --tls-ca FILE   CA bundle the server certificate must chain to\n"
    "                  (required with --tls)\n"
    "  --tls-cert FILE our certificate (chain) and key, if the server asks\n"
    "  --tls-key FILE  (the key file must be mode 600 or stricter)\n"
    "  --tls-server-name NAME\n"
    "                  the name the server certificate must carry (default\n"
    "                  HOST)\n"
    "  --tls-profile NAME\n"
    "                  bcp195 (default), modified-bcp195 or tls13\n";

/* Reads one shared option with its value; -1 if unknown or unusable. */
static int client_option(gw_client_options *o, const char *opt,
                         const char *value)
{
    if (strcmp(opt, "--aet") == 0)
        o->peer.calling_ae = value;
    else if (strcmp(opt, "--call") == 0)
        o->peer.called_ae = value;
    else if (strcmp(opt, "--timeout") == 0)
        o->peer.timeout_ms = atoi(value) * 1000;
    else if (strcmp(opt, "--max-pdu") == 0)
        o->peer.max_pdu = (uint32_t)strtoul(value, NULL, 10);
    else if (strcmp(opt, "--tls-ca") == 0)
        o->tls_config.ca_file = value;
    else if (strcmp(opt, "--tls-cert") == 0)
        o->tls_config.cert_file = value;
    else if (strcmp(opt, "--tls-key") == 0)
        o->tls_config.key_file = value;
    else if (strcmp(opt, "--tls-server-name") == 0)
        o->peer.server_name = value;
    else if (strcmp(opt, "--tls-profile") == 0) {
        int profile = tls_profile_parse(value);
        if (profile < 0)
            return -1;
        o->tls_config.profile = (tls_profile)profile;
    } else
        return -1;
    return 0;
}

/* One option at argv[i]: how many arguments it took, or -1 after
 * printing why not. */
static int one_option(int argc, char **argv, int i, gw_client_options *o,
                      const char *help, gw_option_fn extra, void *ctx)
{
    const char *opt = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
        fputs(help, stdout);
        exit(GW_EXIT_OK);
    }
    if (strcmp(opt, "--tls") == 0) {
        o->tls = true;
        return 1;
    }
    int took = extra ? extra(ctx, opt, value) : 0;
    if (took == 0) {
        if (!value) {
            fprintf(stderr, "%s needs a value\n\n%s", opt, help);
            return -1;
        }
        took = client_option(o, opt, value) < 0 ? -1 : 2;
    }
    if (took < 0)
        fprintf(stderr, "unknown option or value '%s %s'\n\n%s", opt,
                value ? value : "", help);
    return took;
}

int gw_client_options_parse(int argc, char **argv, gw_client_options *o,
                            const char *help, gw_option_fn extra, void *ctx)
{
    *o = (gw_client_options){
        .peer = {.calling_ae = "SIREN", .called_ae = "ANY-SCP",
                 .timeout_ms = 60000, .max_pdu = DCM_DEFAULT_MAX_PDU_BYTES}};
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        int took = one_option(argc, argv, i, o, help, extra, ctx);
        if (took < 0)
            return -1;
        i += took;
    }
    if (strlen(o->peer.calling_ae) > DCM_AE_TITLE_MAX ||
        strlen(o->peer.called_ae) > DCM_AE_TITLE_MAX ||
        o->peer.timeout_ms <= 0 || o->peer.max_pdu < 4096) {
        fprintf(stderr, "AE titles have at most 16 characters, timeouts are "
                        "positive, --max-pdu is at least 4096\n");
        return -1;
    }
    if (argc - i < 2) {
        fputs(help, stderr);
        return -1;
    }
    o->peer.host = argv[i];
    o->peer.port = argv[i + 1];
    return i + 2;
}

int gw_client_options_tls(gw_client_options *o, const char *program)
{
    if (!o->tls)
        return 0;
    if (!o->tls_config.ca_file) {
        fprintf(stderr, "%s: --tls needs --tls-ca (the CA of the server)\n",
                program);
        return -1;
    }
    dcm_error err = {0};
    o->peer.tls = tls_client_context_new(&o->tls_config, &err);
    if (!o->peer.tls) {
        fprintf(stderr, "%s: TLS: %s\n", program, err.message);
        return -1;
    }
    return 0;
}

/* ---- files and presentation contexts --------------------------------------- */

/* A UID of the data set (what is stored is the data set, so it says what
 * the C-STORE command will announce), else of the meta (meta_tag 0:
 * none there). */
static void uid_of(const dcm_file *f, uint32_t tag, uint32_t meta_tag,
                   char out[DCM_UID_MAX + 1])
{
    const dcm_element *el = dcm_dataset_find(dcm_file_dataset(f), tag);
    if (!el && meta_tag)
        el = dcm_dataset_find(dcm_file_meta(f), meta_tag);
    char *text = el ? dcm_element_get_string(el, NULL) : NULL;
    snprintf(out, DCM_UID_MAX + 1, "%s", text ? text : "");
    free(text);
}

/* A text of the data set decoded to UTF-8 into out[size], cut before a
 * character that does not fit whole; "" when absent. */
static void utf8_of(const dcm_file *f, uint32_t tag, char *out, size_t size)
{
    char *text = dcm_dataset_get_utf8(dcm_file_dataset(f), tag, NULL);
    size_t len = text ? strlen(text) : 0;
    if (len >= size) {
        len = size - 1;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, text ? text : "", len);
    out[len] = '\0';
    free(text);
}

int gw_scu_file_read(const char *path, gw_scu_file *out, dcm_error *err)
{
    dcm_file *f = dcm_file_open(path, NULL, err);
    if (!f)
        return err && err->code ? err->code : DCM_E_INVALID;
    uid_of(f, DCM_TAG_SOP_CLASS_UID, DCM_TAG_MEDIA_SOP_CLASS_UID,
           out->sop_class);
    uid_of(f, DCM_TAG_SOP_INSTANCE_UID, DCM_TAG_MEDIA_SOP_INSTANCE_UID,
           out->sop_instance);
    out->ts = dcm_file_transfer_syntax(f);
    uid_of(f, DCM_TAG(0x0020, 0x000D), 0, out->study);
    utf8_of(f, DCM_TAG(0x0010, 0x0020), out->patient_id,
            sizeof out->patient_id);
    dcm_file_free(f);
    if (!dcm_uid_is_valid(out->sop_class))
        return dcm_fail(err, DCM_E_NOT_FOUND, -1, "no SOP Class UID");
    return DCM_OK;
}

/* The context for SOP class sop_class and compressed syntax compressed,
 * or for its native data sets when compressed is NULL. */
static dcm_proposal *find_item(const gw_proposals *p, const char *sop_class,
                               const dcm_ts *compressed)
{
    for (size_t j = 0; j < p->count; j++) {
        const dcm_proposal *item = &p->items[j];
        if (strcmp(item->abstract_syntax, sop_class) != 0)
            continue;
        const dcm_ts *first = item->syntaxes[0];
        if (first->encapsulated ? first == compressed : compressed == NULL)
            return (dcm_proposal *)item;
    }
    return NULL;
}

const dcm_proposal *gw_proposals_find(const gw_proposals *p,
                                      const gw_scu_file *f)
{
    return find_item(p, f->sop_class, f->ts->encapsulated ? f->ts : NULL);
}

/* A new context for sop_class, without syntaxes yet (room checked). */
static dcm_proposal *new_item(gw_proposals *p, const char *sop_class)
{
    char *uid = p->abstract_syntaxes[p->count];
    snprintf(uid, sizeof p->abstract_syntaxes[0], "%s", sop_class);
    dcm_proposal *item = &p->items[p->count++];
    *item = (dcm_proposal){.abstract_syntax = uid};
    return item;
}

static void add_syntax(dcm_proposal *p, const dcm_ts *ts)
{
    for (size_t i = 0; i < p->syntax_count; i++)
        if (p->syntaxes[i] == ts)
            return;
    if (p->syntax_count < DCM_MAX_CONTEXT_SYNTAXES)
        p->syntaxes[p->syntax_count++] = ts;
}

int gw_proposals_add(gw_proposals *p, const gw_scu_file *f)
{
    dcm_proposal *own = (dcm_proposal *)gw_proposals_find(p, f);
    dcm_proposal *native =
        f->ts->encapsulated ? find_item(p, f->sop_class, NULL) : own;
    size_t needed = (own == NULL) + (f->ts->encapsulated && !native);
    if (p->count + needed > DCM_MAX_CONTEXTS)
        return -1;
    if (!own)
        own = new_item(p, f->sop_class);
    add_syntax(own, f->ts);
    if (!native)
        native = f->ts->encapsulated ? new_item(p, f->sop_class) : own;
    add_syntax(native, dcm_ts_find(DCM_TS_EXPLICIT_LE));
    add_syntax(native, dcm_ts_find(DCM_TS_IMPLICIT_LE));
    return 0;
}

/* ---- C-STORE answers --------------------------------------------------------- */

const char *gw_status_words(uint16_t status)
{
    switch (status) {
    case DCM_STATUS_SUCCESS: return "success";
    case DCM_STATUS_WARNING_COERCION: return "warning: coercion of data elements";
    case DCM_STATUS_WARNING_ELEMENTS_DISCARDED: return "warning: elements discarded";
    case DCM_STATUS_WARNING_DATASET_MISMATCH: return "warning: data set does not match SOP class";
    case DCM_STATUS_OUT_OF_RESOURCES: return "refused: out of resources";
    case DCM_STATUS_DATASET_MISMATCH: return "error: data set does not match SOP class";
    case DCM_STATUS_CANNOT_UNDERSTAND: return "error: cannot understand";
    case DCM_STATUS_SOP_CLASS_NOT_SUPPORTED: return "refused: SOP class not supported";
    case DCM_STATUS_NOT_AUTHORIZED: return "refused: not authorized";
    case DCM_STATUS_PROCESSING_FAILURE: return "processing failure";
    default:
        return gw_status_ok(status) ? "warning" : "failure";
    }
}

bool gw_status_ok(uint16_t status)
{
    return status == DCM_STATUS_SUCCESS || status == 0x0001 ||
           (status & 0xF000) == 0xB000;
}
