/* cmd_forward.c - `siren forward`: the gateway's forwarder (forward.c) on
 * its own, for an operator who flushes a spool's outgoing folder by hand
 * (with the service stopped: one forwarder per folder) and for tests. */
#include "gateway.h"
#include "forward.h"
#include "scu.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct forward_options {
    const char *dir, *failed;
    const char *url, *credentials, *ca; /* REST */
    int connections, idle_release_ms, backoff_min_ms, backoff_max_ms;
    int timeout_ms;                     /* REST; DIMSE: the shared one */
    bool once;
} forward_options;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static const char forward_help_head[] =
    "usage: siren forward [OPTIONS] --dir OUTGOING --failed FAILED HOST PORT\n"
    "       siren forward [OPTIONS] --dir OUTGOING --failed FAILED --url URL\n"
    "                     [--credentials FILE] [--ca FILE] [--timeout S]\n"
    "\n"
    "Delivers the DICOM files of OUTGOING (names ending in .dcm; names\n"
    "starting with '.' are unfinished and left alone), oldest name first,\n"
    "to the archive: the C-STORE SCP at HOST PORT over a few persistent\n"
    "associations, or with --url Orthanc's REST API (POST URL/instances,\n"
    "the file as the body) over a few persistent HTTP connections. A file\n"
    "the archive stored (success or warning; an instance it already has,\n"
    "\"AlreadyStored\", counts) is removed. A file it refuses for good\n"
    "(0122, 0124, A9xx, Cxxx, SOP class not accepted, HTTP 400 and most 4xx,\n"
    "not DICOM) is moved to FAILED with FAILED/NAME.reason saying why.\n"
    "Connection failures and refusals that may pass (A700 out of resources,\n"
    "HTTP 5xx, ...) are tried again with exponential backoff and jitter, as\n"
    "are credentials the archive refuses (HTTP 401/403, logged as errors).\n"
    "Watches OUTGOING (every second) until SIGTERM or SIGINT; with --once,\n"
    "stops when it is empty. Stop the service first: one forwarder per\n"
    "folder.\n\n"
    "  --dir DIR       the folder to deliver (spool/outgoing)\n"
    "  --failed DIR    where refused files go (made if missing; same file\n"
    "                  system as --dir)\n"
    "  --once          stop when OUTGOING is empty\n"
    "  --connections N parallel associations or HTTP connections (default\n"
    "                  2, at most 64)\n"
    "  --idle-release S\n"
    "                  close one unused this long (default 5)\n"
    "  --backoff-min S first pause after a failure (default 1; decimals)\n"
    "  --backoff-max S longest pause (default 60)\n";

static const char forward_help_rest[] =
    "\nOrthanc's REST API (instead of HOST PORT and the DICOM options):\n"
    "  --url URL       the API's root, http://HOST:8042 or https://...\n"
    "  --credentials FILE\n"
    "                  user:password on one line, for basic authentication\n"
    "                  (mode 600 or 640: a file others can read is refused)\n"
    "  --ca FILE       CA bundle of an https archive (default: the system's)\n"
    "  --timeout S     seconds to connect, and at most without progress while\n"
    "                  sending or awaiting the answer (default 30)\n";

/* Seconds with decimals to milliseconds; -1 if not a positive number. */
static int seconds_to_ms(const char *text)
{
    char *end;
    double seconds = strtod(text, &end);
    if (end == text || *end || !(seconds > 0) || seconds > 86400)
        return -1;
    int ms = (int)(seconds * 1000 + 0.5);
    return ms > 0 ? ms : 1;
}

/* A gw_option_fn for forward's own options. */
static int forward_option(void *ctx, const char *opt, const char *value)
{
    forward_options *o = ctx;
    if (strcmp(opt, "--once") == 0) {
        o->once = true;
        return 1;
    }
    int *ms = strcmp(opt, "--idle-release") == 0  ? &o->idle_release_ms
              : strcmp(opt, "--backoff-min") == 0 ? &o->backoff_min_ms
              : strcmp(opt, "--backoff-max") == 0 ? &o->backoff_max_ms
                                                  : NULL;
    const char **dir = strcmp(opt, "--dir") == 0           ? &o->dir
                       : strcmp(opt, "--failed") == 0      ? &o->failed
                       : strcmp(opt, "--url") == 0         ? &o->url
                       : strcmp(opt, "--credentials") == 0 ? &o->credentials
                       : strcmp(opt, "--ca") == 0          ? &o->ca
                                                           : NULL;
    bool connections = strcmp(opt, "--connections") == 0;
    if ((!ms && !dir && !connections) || !value)
        return 0; /* not ours, or the shared parser says a value is due */
    if (dir)
        *dir = value;
    else if (ms && (*ms = seconds_to_ms(value)) < 0)
        return -1;
    else if (connections && (o->connections = atoi(value)) < 1)
        return -1;
    return 2;
}

static bool is_rest(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--url") == 0)
            return true;
    return false;
}

/* With --url: forward's own options and --timeout; the DICOM ones (AE
 * titles, TLS) do not apply. 0, or -1 after printing why. */
static int parse_rest_options(int argc, char **argv, forward_options *fo,
                              const char *help)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(help, stdout);
            exit(GW_EXIT_OK);
        }
        int took = strcmp(opt, "--timeout") != 0
                       ? forward_option(fo, opt, value)
                   : value && (fo->timeout_ms = seconds_to_ms(value)) > 0
                       ? 2
                       : -1;
        if (took <= 0) {
            fprintf(stderr, "siren forward: unknown option, missing or "
                    "unusable value: '%s%s%s' (the DICOM options do not "
                    "go with --url)\n\n%s", opt, value ? " " : "",
                    value ? value : "", help);
            return -1;
        }
        i += took - 1;
    }
    if (!fo->dir || !fo->failed) {
        fprintf(stderr, "siren forward needs --dir and --failed\n\n%s", help);
        return -1;
    }
    return 0;
}

/* Until a signal or, with --once, until the folder is empty. */
static void wait_for_end(gw_forwarder *f, bool once)
{
    const struct timespec tick = {.tv_nsec = 100 * 1000000};
    while (!stop_requested) {
        if (once && gw_forward_stats_of(f).idle)
            return;
        nanosleep(&tick, NULL);
    }
}

int gw_cmd_forward(int argc, char **argv)
{
    char help[8192];
    snprintf(help, sizeof help, "%s\nDICOM, to HOST PORT:\n%s%s\nExit "
             "status: 0 no file was refused for good, 1 some went to FAILED "
             "or the forwarder could not start, 2 usage.\n",
             forward_help_head, gw_client_options_help, forward_help_rest);
    forward_options fo = {0};
    gw_forward_config c;
    if (is_rest(argc, argv)) {
        if (parse_rest_options(argc, argv, &fo, help) < 0)
            return GW_EXIT_USAGE;
        c = (gw_forward_config){.transport = GW_FORWARD_REST, .url = fo.url,
                                .credentials_file = fo.credentials,
                                .tls_ca = fo.ca,
                                .timeout_ms = fo.timeout_ms};
    } else {
        gw_client_options o;
        int first = gw_client_options_parse(argc, argv, &o, help,
                                            forward_option, &fo);
        if (first < 0)
            return GW_EXIT_USAGE;
        if (first != argc || !fo.dir || !fo.failed || fo.credentials ||
            fo.ca) {
            fprintf(stderr, "siren forward needs --dir, --failed, HOST and "
                            "PORT (--credentials and --ca go with --url)"
                            "\n\n%s", help);
            return GW_EXIT_USAGE;
        }
        c = (gw_forward_config){
            .transport = GW_FORWARD_DIMSE,
            .host = o.peer.host, .port = o.peer.port,
            .called_ae = o.peer.called_ae, .calling_ae = o.peer.calling_ae,
            .tls = o.tls, .tls_ca = o.tls_config.ca_file,
            .tls_cert = o.tls_config.cert_file,
            .tls_key = o.tls_config.key_file,
            .tls_server_name = o.peer.server_name,
            .tls_profile = o.tls_config.profile,
            .timeout_ms = o.peer.timeout_ms, .max_pdu = o.peer.max_pdu};
    }
    c.outgoing_dir = fo.dir;
    c.failed_dir = fo.failed;
    c.connections = fo.connections;
    c.backoff_min_ms = fo.backoff_min_ms;
    c.backoff_max_ms = fo.backoff_max_ms;
    c.idle_release_ms = fo.idle_release_ms;
    gw_install_signals(on_stop_signal, NULL);
    dcm_error err = {0};
    gw_forwarder *f = gw_forward_start(&c, &err);
    if (!f) {
        fprintf(stderr, "siren forward: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    wait_for_end(f, fo.once);
    gw_forward_stats s;
    gw_forward_stop(f, &s);
    printf("delivered %llu (with warnings %llu), failed %llu, retries %llu, "
           "left %llu\n", (unsigned long long)s.delivered,
           (unsigned long long)s.warnings, (unsigned long long)s.failed,
           (unsigned long long)s.retries, (unsigned long long)s.queued);
    return s.failed ? GW_EXIT_FAILURE : GW_EXIT_OK;
}
