/*
 * gateway.h - the siren program's subcommands. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the process exit
 * status: 0 success, 1 a failure the user can act on (bad file, bad
 * configuration), 2 wrong usage.
 */
#ifndef SIREN_GATEWAY_H
#define SIREN_GATEWAY_H

#define GW_EXIT_OK 0
#define GW_EXIT_FAILURE 1
#define GW_EXIT_USAGE 2

int gw_cmd_dump(int argc, char **argv);

#endif /* SIREN_GATEWAY_H */
