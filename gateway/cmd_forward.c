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
    int connections, idle_release_ms, backoff_min_ms, backoff_max_ms;
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
    "\n"
    "Delivers the DICOM files of OUTGOING (names ending in .dcm; names\n"
    "starting with '.' are unfinished and left alone), oldest name first,\n"
    "to the C-STORE SCP at HOST PORT (the archive) over a few persistent\n"
    "associations. A file the archive stored (success or warning; an\n"
    "instance it already has counts) is removed. A file it refuses for good\n"
    "(0122, 0124, A9xx, Cxxx, SOP class not accepted, not DICOM) is moved to\n"
    "FAILED with FAILED/NAME.reason saying why. Connection failures and\n"
    "refusals that may pass (A700 out of resources, ...) are tried again\n"
    "with exponential backoff and jitter. Watches OUTGOING (every second)\n"
    "until SIGTERM or SIGINT; with --once, stops when it is empty. Stop the\n"
    "service first: one forwarder per folder.\n\n"
    "  --dir DIR       the folder to deliver (spool/outgoing)\n"
    "  --failed DIR    where refused files go (made if missing; same file\n"
    "                  system as --dir)\n"
    "  --once          stop when OUTGOING is empty\n"
    "  --connections N parallel associations (default 2, at most 64)\n"
    "  --idle-release S\n"
    "                  release an association unused this long (default 5)\n"
    "  --backoff-min S first pause after a failure (default 1; decimals)\n"
    "  --backoff-max S longest pause (default 60)\n";

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
    const char **dir = strcmp(opt, "--dir") == 0      ? &o->dir
                       : strcmp(opt, "--failed") == 0 ? &o->failed
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
    char help[4096];
    snprintf(help, sizeof help, "%s%s\nExit status: 0 no file was refused "
             "for good, 1 some went to FAILED or the forwarder could not "
             "start, 2 usage.\n", forward_help_head, gw_client_options_help);
    forward_options fo = {0};
    gw_client_options o;
    int first = gw_client_options_parse(argc, argv, &o, help, forward_option,
                                        &fo);
    if (first < 0)
        return GW_EXIT_USAGE;
    if (first != argc || !fo.dir || !fo.failed) {
        fprintf(stderr, "siren forward needs --dir, --failed, HOST and PORT"
                        "\n\n%s", help);
        return GW_EXIT_USAGE;
    }
    gw_forward_config c = {
        .outgoing_dir = fo.dir, .failed_dir = fo.failed,
        .host = o.peer.host, .port = o.peer.port,
        .called_ae = o.peer.called_ae, .calling_ae = o.peer.calling_ae,
        .connections = fo.connections, .tls = o.tls,
        .tls_ca = o.tls_config.ca_file, .tls_cert = o.tls_config.cert_file,
        .tls_key = o.tls_config.key_file,
        .tls_server_name = o.peer.server_name,
        .tls_profile = o.tls_config.profile, .timeout_ms = o.peer.timeout_ms,
        .backoff_min_ms = fo.backoff_min_ms,
        .backoff_max_ms = fo.backoff_max_ms,
        .idle_release_ms = fo.idle_release_ms, .max_pdu = o.peer.max_pdu};
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
