/* signals.c - the signals of the long-running commands (serve, forward). */
#include "gateway.h"

#include <signal.h>
#include <string.h>

void gw_install_signals(void (*on_stop)(int), void (*on_reload)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (on_reload) {
        sa.sa_handler = on_reload;
        sigaction(SIGHUP, &sa, NULL);
    }
    /* A peer that goes away mid-write is an error return, not a death. */
    signal(SIGPIPE, SIG_IGN);
}
