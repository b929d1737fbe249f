/* cmd_client.c - `siren echo` and `siren send`: a C-ECHO and a C-STORE
 * client, over plain TCP or DICOM-TLS (the shared pieces are in scu.c). */
#include "gateway.h"
#include "scu.h"

#include "dicom.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options, HOST PORT and, with --tls, the client context; the index of
 * the first argument after PORT, or -1. */
static int parse_client_options(int argc, char **argv, gw_client_options *o,
                                const char *help, const char *program)
{
    int first = gw_client_options_parse(argc, argv, o, help, NULL, NULL);
    return first < 0 || gw_client_options_tls(o, program) < 0 ? -1 : first;
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
             gw_client_options_help);
    gw_client_options o;
    int first = parse_client_options(argc, argv, &o, help, "siren echo");
    if (first < 0)
        return GW_EXIT_USAGE;
    if (first != argc) {
        fputs(help, stderr);
        tls_context_unref(o.peer.tls);
        return GW_EXIT_USAGE;
    }
    dcm_proposal echo = {.abstract_syntax = DCM_VERIFICATION_SOP_CLASS,
                         .syntaxes = {dcm_ts_find(DCM_TS_IMPLICIT_LE)},
                         .syntax_count = 1};
    dcm_error err = {0};
    dcm_assoc *a = gw_scu_open(&o.peer, &echo, 1, &err);
    uint16_t status = 0xFFFF;
    int rc = a ? dcm_echo(a, &status, &err) : err.code;
    if (rc == DCM_OK)
        rc = dcm_assoc_release(a, &err);
    dcm_assoc_free(a);
    tls_context_unref(o.peer.tls);
    if (rc < 0) {
        fprintf(stderr, "siren echo: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    printf("echo %s:%s (%s): status 0x%04X, %s\n", o.peer.host, o.peer.port,
           o.peer.called_ae, status, gw_status_words(status));
    return status == DCM_STATUS_SUCCESS ? GW_EXIT_OK : GW_EXIT_FAILURE;
}

/* ---- siren send ------------------------------------------------------------------- */

typedef struct outgoing_file {
    char *path;
    gw_scu_file id;
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
    gw_scu_file id;
    int rc = gw_scu_file_read(path, &id, &err);
    if (rc < 0) {
        fprintf(stderr, rc == DCM_E_NOT_FOUND ? "%s: %s, not sent\n"
                                              : "%s: %s\n", path, err.message);
        list->unreadable++;
        return;
    }
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
    item->id = id;
}

/* Proposals for files[first..], stopping before the file that would need
 * a 129th context; returns where it stopped. */
static size_t build_proposals(const file_list *list, size_t first,
                              gw_proposals *proposals)
{
    proposals->count = 0;
    size_t i = first;
    while (i < list->count && gw_proposals_add(proposals,
                                               &list->items[i].id) == 0)
        i++;
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
    printf("%s: status 0x%04X, %s%s%s\n", path, status,
           gw_status_words(status), comment[0] ? ": " : "", comment);
    if (!gw_status_ok(status))
        tally->failed++;
    else if (status != DCM_STATUS_SUCCESS)
        tally->warnings++;
    tally->sent += gw_status_ok(status);
}

/* Sends files[first..end) with the proposals; when an association is lost
 * on the way (the peer aborted, say), the rest goes on a new one. */
static void send_batch(const gw_scu_peer *peer, const file_list *list,
                       size_t first, size_t end,
                       const gw_proposals *proposals, send_tally *tally)
{
    dcm_assoc *a = NULL;
    uint16_t message_id = 0;
    for (size_t i = first; i < end; i++) {
        if (a && !dcm_assoc_is_established(a)) {
            dcm_assoc_free(a);
            a = NULL;
        }
        dcm_error err = {0};
        if (!a && !(a = gw_scu_open(peer, proposals->items, proposals->count,
                                    &err))) {
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
             gw_client_options_help);
    gw_client_options o;
    int first = parse_client_options(argc, argv, &o, help, "siren send");
    if (first < 0 || first == argc) {
        if (first == argc) {
            fputs(help, stderr);
            tls_context_unref(o.peer.tls);
        }
        return GW_EXIT_USAGE;
    }
    file_list list = {0};
    for (int i = first; i < argc; i++)
        list.unreadable += gw_walk_files(argv[i], add_file, &list);
    send_tally tally = {.failed = (int)list.unreadable};
    gw_proposals *proposals = malloc(sizeof *proposals);
    for (size_t start = 0; start < list.count && proposals;) {
        size_t end = build_proposals(&list, start, proposals);
        send_batch(&o.peer, &list, start, end, proposals, &tally);
        start = end;
    }
    printf("sent %d, with warnings %d, failed %d\n", tally.sent,
           tally.warnings, tally.failed);
    for (size_t i = 0; i < list.count; i++)
        free(list.items[i].path);
    free(list.items);
    free(proposals);
    tls_context_unref(o.peer.tls);
    return tally.failed ? GW_EXIT_FAILURE : GW_EXIT_OK;
}
