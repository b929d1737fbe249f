/* cmd_client.c - `siren echo` and `siren send`: a C-ECHO and a C-STORE
 * client, over plain TCP or DICOM-TLS. */
#include "gateway.h"

#include "dicom.h"
#include "tls.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct client_options {
    const char *calling_ae;
    const char *called_ae;
    const char *host;
    const char *port;
    int timeout_ms;
    uint32_t max_pdu;
    bool tls;
    tls_client_config tls_config;
    const char *server_name; /* the name the server certificate must carry */
    tls_context *tls_ctx;    /* made once the options are read */
} client_options;

static const char client_options_help[] =
    "  --aet AE        our (calling) AE title (default SIREN)\n"
    "  --call AE       the peer's (called) AE title (default ANY-SCP)\n"
    "  --timeout S     seconds to wait for the peer at each step (default 60)\n"
    "  --max-pdu N     largest P-DATA PDU we receive (default 131072)\n"
    "\nDICOM-TLS:\n"
    "  --tls           use DICOM-TLS (the server certificate is verified)\n"
    "  --tls-ca FILE   CA bundle the server certificate must chain to\n"
    "  --tls-cert FILE our certificate (chain) and key, if the server asks\n"
    "  --tls-key FILE  (the key file must be mode 600 or stricter)\n"
    "  --tls-server-name NAME\n"
    "                  the name the server certificate must carry (default\n"
    "                  HOST)\n"
    "  --tls-profile NAME\n"
    "                  bcp195 (default), modified-bcp195 or tls13\n";

/* Reads one option with its value; -1 if unknown. */
static int client_option(client_options *o, const char *opt, const char *value)
{
    if (strcmp(opt, "--aet") == 0)
        o->calling_ae = value;
    else if (strcmp(opt, "--call") == 0)
        o->called_ae = value;
    else if (strcmp(opt, "--timeout") == 0)
        o->timeout_ms = atoi(value) * 1000;
    else if (strcmp(opt, "--max-pdu") == 0)
        o->max_pdu = (uint32_t)strtoul(value, NULL, 10);
    else if (strcmp(opt, "--tls-ca") == 0)
        o->tls_config.ca_file = value;
    else if (strcmp(opt, "--tls-cert") == 0)
        o->tls_config.cert_file = value;
    else if (strcmp(opt, "--tls-key") == 0)
        o->tls_config.key_file = value;
    else if (strcmp(opt, "--tls-server-name") == 0)
        o->server_name = value;
    else if (strcmp(opt, "--tls-profile") == 0) {
        int profile = tls_profile_parse(value);
        if (profile < 0)
            return -1;
        o->tls_config.profile = (tls_profile)profile;
    } else
        return -1;
    return 0;
}

/* With --tls: the client context, made once for every association. */
static int prepare_tls(client_options *o)
{
    if (!o->tls)
        return 0;
    if (!o->tls_config.ca_file) {
        fprintf(stderr, "--tls needs --tls-ca (the CA of the server)\n");
        return -1;
    }
    dcm_error err = {0};
    o->tls_ctx = tls_client_context_new(&o->tls_config, &err);
    if (!o->tls_ctx) {
        fprintf(stderr, "TLS: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* Parses the options shared by the clients; returns the index of the
 * first positional argument, or -1 after printing the error. */
static int parse_client_options(int argc, char **argv, client_options *o,
                                const char *help)
{
    *o = (client_options){.calling_ae = "SIREN", .called_ae = "ANY-SCP",
                          .timeout_ms = 60000,
                          .max_pdu = DCM_DEFAULT_MAX_PDU_BYTES};
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(help, stdout);
            exit(GW_EXIT_OK);
        }
        if (strcmp(opt, "--tls") == 0) {
            o->tls = true;
            i++;
            continue;
        }
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value) {
            fprintf(stderr, "%s needs a value\n\n%s", opt, help);
            return -1;
        }
        if (client_option(o, opt, value) < 0) {
            fprintf(stderr, "unknown option or value '%s %s'\n\n%s", opt,
                    value, help);
            return -1;
        }
        i += 2;
    }
    if (strlen(o->calling_ae) > DCM_AE_TITLE_MAX ||
        strlen(o->called_ae) > DCM_AE_TITLE_MAX || o->timeout_ms <= 0 ||
        o->max_pdu < 4096) {
        fprintf(stderr, "AE titles have at most 16 characters, timeouts are "
                        "positive, --max-pdu is at least 4096\n");
        return -1;
    }
    if (argc - i < 2) {
        fputs(help, stderr);
        return -1;
    }
    o->host = argv[i];
    o->port = argv[i + 1];
    return prepare_tls(o) < 0 ? -1 : i + 2;
}

/* Connects and requests an association with the given proposals. */
static dcm_assoc *open_association(const client_options *o,
                                   const dcm_proposal *proposals, size_t count,
                                   dcm_error *err)
{
    char peer[64];
    int fd = dcm_tcp_connect(o->host, o->port, o->timeout_ms, peer, err);
    if (fd < 0)
        return NULL;
    dcm_transport *t =
        o->tls ? tls_connect(o->tls_ctx, fd, peer,
                             o->server_name ? o->server_name : o->host,
                             o->timeout_ms, err)
               : dcm_tcp_transport(fd, peer, err);
    if (!t)
        return NULL;
    dcm_scu_config cfg = {.calling_ae = o->calling_ae,
                          .called_ae = o->called_ae,
                          .proposals = proposals,
                          .proposal_count = count};
    dcm_net_limits_default(&cfg.limits);
    cfg.limits.dimse_timeout_ms = o->timeout_ms;
    cfg.limits.max_pdu_bytes = o->max_pdu;
    return dcm_assoc_request(t, &cfg, err);
}

static const char *status_words(uint16_t status)
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
    default: return (status & 0xF000) == 0xB000 ? "warning" : "failure";
    }
}

static bool status_ok(uint16_t status)
{
    return status == DCM_STATUS_SUCCESS || (status & 0xF000) == 0xB000;
}

/* ---- siren echo --------------------------------------------------------------- */

static const char echo_help_head[] =
    "usage: siren echo [OPTIONS] HOST PORT\n\n"
    "Sends a C-ECHO (DICOM verification) and prints the answer.\n\n";

int gw_cmd_echo(int argc, char **argv)
{
    char help[2048];
    snprintf(help, sizeof help, "%s%s\nExit status: 0 the peer answered "
             "success, 1 otherwise, 2 usage.\n", echo_help_head,
             client_options_help);
    client_options o;
    int first = parse_client_options(argc, argv, &o, help);
    if (first < 0)
        return GW_EXIT_USAGE;
    if (first != argc) {
        fputs(help, stderr);
        return GW_EXIT_USAGE;
    }
    dcm_proposal echo = {.abstract_syntax = DCM_VERIFICATION_SOP_CLASS,
                         .syntaxes = {dcm_ts_find(DCM_TS_IMPLICIT_LE)},
                         .syntax_count = 1};
    dcm_error err = {0};
    dcm_assoc *a = open_association(&o, &echo, 1, &err);
    uint16_t status = 0xFFFF;
    int rc = a ? dcm_echo(a, &status, &err) : err.code;
    if (rc == DCM_OK)
        rc = dcm_assoc_release(a, &err);
    dcm_assoc_free(a);
    tls_context_unref(o.tls_ctx);
    if (rc < 0) {
        fprintf(stderr, "siren echo: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    printf("echo %s:%s (%s): status 0x%04X, %s\n", o.host, o.port, o.called_ae,
           status, status_words(status));
    return status == DCM_STATUS_SUCCESS ? GW_EXIT_OK : GW_EXIT_FAILURE;
}

/* ---- siren send ------------------------------------------------------------------- */

typedef struct outgoing_file {
    char *path;
    char sop_class[DCM_UID_MAX + 1];
    const dcm_ts *ts;
} outgoing_file;

typedef struct file_list {
    outgoing_file *items;
    size_t count, capacity;
    size_t unreadable;
} file_list;

/* A gw_file_fn: the file joins the list if it is DICOM with a SOP class. */
static void add_file(void *ctx, const char *path)
{
    file_list *list = ctx;
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(path, NULL, &err);
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        list->unreadable++;
        return;
    }
    const dcm_element *el =
        dcm_dataset_find(dcm_file_dataset(f), DCM_TAG_SOP_CLASS_UID);
    if (!el)
        el = dcm_dataset_find(dcm_file_meta(f), DCM_TAG_MEDIA_SOP_CLASS_UID);
    char *sop_class = el ? dcm_element_get_string(el, NULL) : NULL;
    if (!sop_class || !dcm_uid_is_valid(sop_class)) {
        fprintf(stderr, "%s: no SOP Class UID, not sent\n", path);
        list->unreadable++;
    } else {
        if (list->count == list->capacity) {
            list->capacity = list->capacity ? list->capacity * 2 : 64;
            list->items = realloc(list->items,
                                  list->capacity * sizeof *list->items);
            if (!list->items) {
                perror("siren send");
                exit(GW_EXIT_FAILURE);
            }
        }
        outgoing_file *item = &list->items[list->count++];
        item->path = strdup(path);
        snprintf(item->sop_class, sizeof item->sop_class, "%s", sop_class);
        item->ts = dcm_file_transfer_syntax(f);
    }
    free(sop_class);
    dcm_file_free(f);
}

static void add_syntax(dcm_proposal *p, const dcm_ts *ts)
{
    for (size_t i = 0; i < p->syntax_count; i++)
        if (p->syntaxes[i] == ts)
            return;
    if (p->syntax_count < DCM_MAX_CONTEXT_SYNTAXES)
        p->syntaxes[p->syntax_count++] = ts;
}

/* The context a file goes on: one per SOP class for native data sets
 * (their own syntax plus the little endian ones they can be re-encoded
 * into) and one per SOP class and compressed syntax (which only that
 * syntax can carry: an acceptor picks one syntax per context). */
static dcm_proposal *proposal_for(dcm_proposal *proposals, size_t count,
                                  const outgoing_file *f)
{
    for (size_t j = 0; j < count; j++) {
        dcm_proposal *p = &proposals[j];
        if (strcmp(p->abstract_syntax, f->sop_class) != 0)
            continue;
        bool compressed = p->syntaxes[0]->encapsulated;
        if (compressed ? p->syntaxes[0] == f->ts : !f->ts->encapsulated)
            return p;
    }
    return NULL;
}

/* Proposals for files[first..], stopping before the file that would need
 * a 129th context; returns where it stopped. */
static size_t build_proposals(const file_list *list, size_t first,
                              dcm_proposal *proposals, size_t *count)
{
    *count = 0;
    size_t i = first;
    for (; i < list->count; i++) {
        const outgoing_file *f = &list->items[i];
        dcm_proposal *p = proposal_for(proposals, *count, f);
        if (!p) {
            if (*count == DCM_MAX_CONTEXTS)
                break;
            p = &proposals[(*count)++];
            *p = (dcm_proposal){.abstract_syntax = f->sop_class};
        }
        add_syntax(p, f->ts);
        if (!f->ts->encapsulated) {
            add_syntax(p, dcm_ts_find(DCM_TS_EXPLICIT_LE));
            add_syntax(p, dcm_ts_find(DCM_TS_IMPLICIT_LE));
        }
    }
    return i;
}

typedef struct send_tally {
    int sent, warnings, failed;
} send_tally;

/* Sends one file and tallies the answer. */
static void send_one(dcm_assoc *a, const char *path, uint16_t message_id,
                     send_tally *tally)
{
    uint16_t status = 0;
    char comment[65] = "";
    dcm_error err = {0};
    if (dcm_store_file(a, path, message_id, &status, comment, &err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        tally->failed++;
        return;
    }
    printf("%s: status 0x%04X, %s%s%s\n", path, status, status_words(status),
           comment[0] ? ": " : "", comment);
    if (!status_ok(status))
        tally->failed++;
    else if (status != DCM_STATUS_SUCCESS)
        tally->warnings++;
    tally->sent += status_ok(status);
}

/* Sends files[first..end) with the proposals; when an association is lost
 * on the way (the peer aborted, say), the rest goes on a new one. */
static void send_batch(const client_options *o, const file_list *list,
                       size_t first, size_t end, const dcm_proposal *proposals,
                       size_t count, send_tally *tally)
{
    dcm_assoc *a = NULL;
    uint16_t message_id = 0;
    for (size_t i = first; i < end; i++) {
        if (a && !dcm_assoc_is_established(a)) {
            dcm_assoc_free(a);
            a = NULL;
        }
        dcm_error err = {0};
        if (!a && !(a = open_association(o, proposals, count, &err))) {
            fprintf(stderr, "siren send: %s\n", err.message);
            tally->failed += (int)(end - i);
            return;
        }
        send_one(a, list->items[i].path, ++message_id, tally);
    }
    dcm_error err = {0};
    if (a && dcm_assoc_is_established(a) && dcm_assoc_release(a, &err) < 0)
        fprintf(stderr, "siren send: release: %s\n", err.message);
    dcm_assoc_free(a);
}

static const char send_help_head[] =
    "usage: siren send [OPTIONS] HOST PORT FILE|DIRECTORY...\n\n"
    "Sends DICOM files (directories recursively) with C-STORE, each data set\n"
    "byte for byte in its own transfer syntax when the peer accepts it, else\n"
    "re-encoded into one it accepts (native pixel data only). One line per\n"
    "file with the peer's status.\n\n";

int gw_cmd_send(int argc, char **argv)
{
    char help[2048];
    snprintf(help, sizeof help, "%s%s\nExit status: 0 every file stored "
             "(warnings included), 1 otherwise, 2 usage.\n", send_help_head,
             client_options_help);
    client_options o;
    int first = parse_client_options(argc, argv, &o, help);
    if (first < 0 || first == argc) {
        if (first == argc)
            fputs(help, stderr);
        return GW_EXIT_USAGE;
    }
    file_list list = {0};
    for (int i = first; i < argc; i++)
        list.unreadable += gw_walk_files(argv[i], add_file, &list);
    send_tally tally = {.failed = list.unreadable};
    dcm_proposal *proposals = calloc(DCM_MAX_CONTEXTS, sizeof *proposals);
    for (size_t start = 0; start < list.count && proposals;) {
        size_t count;
        size_t end = build_proposals(&list, start, proposals, &count);
        send_batch(&o, &list, start, end, proposals, count, &tally);
        start = end;
    }
    printf("sent %d, with warnings %d, failed %d\n", tally.sent,
           tally.warnings, tally.failed);
    for (size_t i = 0; i < list.count; i++)
        free(list.items[i].path);
    free(list.items);
    free(proposals);
    tls_context_unref(o.tls_ctx);
    return tally.failed ? GW_EXIT_FAILURE : GW_EXIT_OK;
}
