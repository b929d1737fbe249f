/* main.c - the siren program: dispatches to its subcommands. */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

#ifndef SIREN_VERSION
#define SIREN_VERSION "0.1.0"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"apply", gw_cmd_apply, "de-identify DICOM files under a policy"},
    {"diff", gw_cmd_diff, "show what a policy changes in a DICOM file"},
    {"dump", gw_cmd_dump, "print DICOM files element by element"},
    {"echo", gw_cmd_echo, "send a C-ECHO to a DICOM peer"},
    {"forward", gw_cmd_forward, "deliver a spool's outgoing folder to the archive"},
    {"policy", gw_cmd_policy, "check a policy, explain what it does"},
    {"preview", gw_cmd_preview, "render a frame as PNG with the policy's redactions"},
    {"send", gw_cmd_send, "send DICOM files with C-STORE"},
    {"serve", gw_cmd_serve, "the gateway service (-c FILE), or a C-STORE SCP into a directory"},
    {"spool", gw_cmd_spool, "list, show, retry or purge what the spool holds"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: siren COMMAND [ARGS...]\n\n"
                 "SIREN secure ingress gateway %s\n\ncommands:\n",
            SIREN_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'siren COMMAND --help' describes a command, "
                 "'siren --version'\nprints the version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return GW_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        usage(stdout);
        return GW_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("siren %s\n", SIREN_VERSION);
        return GW_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "siren: unknown command '%s'\n\n", name);
    usage(stderr);
    return GW_EXIT_USAGE;
}
