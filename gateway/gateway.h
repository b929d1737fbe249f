/*
 * gateway.h - the siren program's subcommands. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the process exit
 * status: 0 success, 1 a failure the user can act on (bad file, bad
 * configuration), 2 wrong usage.
 */
#ifndef SIREN_GATEWAY_H
#define SIREN_GATEWAY_H

#include <stddef.h>

#define GW_EXIT_OK 0
#define GW_EXIT_FAILURE 1
#define GW_EXIT_USAGE 2

int gw_cmd_dump(int argc, char **argv);
int gw_cmd_echo(int argc, char **argv);
int gw_cmd_send(int argc, char **argv);
int gw_cmd_forward(int argc, char **argv);
int gw_cmd_serve(int argc, char **argv);
int gw_cmd_policy(int argc, char **argv);
int gw_cmd_apply(int argc, char **argv);
int gw_cmd_diff(int argc, char **argv);
int gw_cmd_spool(int argc, char **argv);
int gw_cmd_preview(int argc, char **argv);

/* Input files (files.c): calls fn for path if it is a file, or for every
 * file below it (in name order, hidden names left out, so that runs
 * repeat). Returns how many paths could not be read (each reported on
 * stderr). */
typedef void (*gw_file_fn)(void *ctx, const char *path);
size_t gw_walk_files(const char *path, gw_file_fn fn, void *ctx);

/* SIGINT/SIGTERM call on_stop, SIGHUP on_reload (if not NULL); SIGPIPE
 * is ignored (signals.c). */
void gw_install_signals(void (*on_stop)(int), void (*on_reload)(int));

/* JSON (json.c). gw_json_string appends text as a JSON string to out
 * (size bytes, *used of them in use); gw_json_field appends "key":"value"
 * to an object begun with '{' (a comma first unless it is the first). */
void gw_json_string(char *out, size_t size, size_t *used, const char *text);
void gw_json_field(char *out, size_t size, size_t *used, const char *key,
                   const char *value);

/* Logging (log.c): one line per event on stderr, "level event key=value". */
typedef enum gw_log_level {
    GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR
} gw_log_level;

void gw_log_set_level(gw_log_level level);
void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* text made safe inside a "..." log field (quotes, backslashes, control
 * and non-ASCII bytes escaped) into buf; returns buf. For anything a peer
 * chose: AE titles, certificate names. */
const char *gw_log_quote(const char *text, char *buf, size_t size);

#endif /* SIREN_GATEWAY_H */
