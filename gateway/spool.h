/*
 * spool.h - the gateway's spool: where every instance lives, durably, from
 * the moment it is acknowledged until the archive has it.
 *
 *   received/    stored by the receiver (fsync'ed, then Success)
 *   outgoing/    de-identified by a processor, waiting for the forwarder
 *   quarantine/  held for review: refused by the policy after receipt,
 *                unreadable, or failed to process; NAME.reason says why
 *   failed/      refused for good by the archive; NAME.reason says why
 *
 * An instance moves between stages only by rename(2) of a complete,
 * fsync'ed file followed by an fsync of the directories, so after a crash
 * every instance is whole in at least one stage; files whose name starts
 * with '.' are unfinished and are removed at start. Names are made by the
 * receiver from a clock and counters, never from peer data, and sort in
 * arrival order.
 */
#ifndef SIREN_GW_SPOOL_H
#define SIREN_GW_SPOOL_H

#include "dicom.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_spool {
    char root[PATH_MAX];
    char received[PATH_MAX], outgoing[PATH_MAX];
    char quarantine[PATH_MAX], failed[PATH_MAX];
    int lock_fd;              /* root, flock'ed by the service; -1 */
} gw_spool;

/* Takes the spool for this process (an exclusive flock on root, kept until
 * the process ends: a second `siren serve` on the same spool is refused,
 * before it could remove the first one's unfinished files), creates the
 * stage folders (mode 0700) under root if missing and removes unfinished
 * files left by a crash. For the service only: a running service's
 * unfinished files are not leftovers. */
int gw_spool_open(gw_spool *s, const char *root, dcm_error *err);
/* Only the folder names under root, nothing made or removed on disk: for
 * tools that look at the spool while the service may run. */
int gw_spool_paths(gw_spool *s, const char *root, dcm_error *err);
/* The finished instances ("*.dcm", not starting with '.') of a stage, in
 * name order. *names is owned by the caller: gw_spool_names_free. */
int gw_spool_list(const char *dir, char ***names, size_t *count,
                  dcm_error *err);
void gw_spool_names_free(char **names, size_t count);
/* Moves name from one stage to another, durably. */
int gw_spool_move(const char *from, const char *to, const char *name,
                  dcm_error *err);
/* Writes dir/NAME.reason (the text and a newline), durably. */
int gw_spool_write_reason(const char *dir, const char *name,
                          const char *reason, dcm_error *err);
/* Removes dir/name, durably. */
int gw_spool_remove(const char *dir, const char *name, dcm_error *err);
/* Removes dir/name once its successor is durable (the de-identified file
 * for a received one; the archive's confirmation for an outgoing one),
 * without syncing the folder: if a power failure brings the name back,
 * the instance is processed or delivered again with the same result (the
 * same name in outgoing/, the same SOP Instance UID, which the archive
 * stores once). Saves a flush an instance at each stage. */
int gw_spool_drop(const char *dir, const char *name, dcm_error *err);
/* Bytes of all files in the stages (for the quota). */
uint64_t gw_spool_usage(const gw_spool *s);
/* dir/prefix+name into out; false if it does not fit. */
bool gw_spool_path(char *out, size_t size, const char *dir,
                   const char *prefix, const char *name);
/* Seconds since the receiver named the instance (its name starts with
 * the time in milliseconds); 0 for a name that does not. */
double gw_spool_age_s(const char *name);
/* fsync of a directory: makes the names in it durable. */
int gw_sync_dir(const char *dir);

/* The provenance the receiver recorded in a stored instance's file meta,
 * (0002,0102) Private Information: a JSON object of strings ("received",
 * "peer", "calling_ae", "site", the TLS identity...). Into json (NUL-
 * terminated); false if the file has none or it does not fit. */
bool gw_spool_provenance(const dcm_file *f, char *json, size_t size);
/* The site in that provenance ("site":"NAME", names being letters,
 * digits and - . _); false for the plain listener's instances. */
bool gw_spool_site_of(const dcm_file *f, char *site, size_t size);

#endif /* SIREN_GW_SPOOL_H */
