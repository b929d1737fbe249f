/* spool.c - the stages of an instance on disk (spool.h says how they are
 * used): folders, listings, durable moves. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unistd.h>

int gw_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

bool gw_spool_path(char *out, size_t size, const char *dir,
                   const char *prefix, const char *name)
{
    int n = snprintf(out, size, "%s/%s%s", dir, prefix, name);
    return n >= 0 && (size_t)n < size;
}

double gw_spool_age_s(const char *name)
{
    char *end;
    unsigned long long ms = strtoull(name, &end, 10);
    if (end == name || *end != '-')
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double age = (double)now.tv_sec + now.tv_nsec / 1e9 - (double)ms / 1e3;
    return age > 0 ? age : 0;
}

static bool finished_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".dcm") == 0;
}

/* Unfinished files ('.'-names and the writer's "*.tmp-*") of an earlier
 * run: never acknowledged or never renamed into place, so removing them
 * loses nothing. */
static void remove_unfinished(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if ((e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 &&
             strcmp(e->d_name, "..") != 0) ||
            strstr(e->d_name, ".tmp-"))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

static int make_dir(const char *path, dcm_error *err)
{
    struct stat st;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return dcm_fail(err, DCM_E_IO, -1, "cannot create %s: %s", path,
                        strerror(errno));
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return dcm_fail(err, DCM_E_IO, -1, "%s is not a directory", path);
    return DCM_OK;
}

int gw_spool_paths(gw_spool *s, const char *root, dcm_error *err)
{
    memset(s, 0, sizeof *s);
    if (snprintf(s->root, sizeof s->root, "%s", root) >= (int)sizeof s->root ||
        strlen(root) + 16 >= sizeof s->root)
        return dcm_fail(err, DCM_E_ARG, -1, "spool path too long");
    snprintf(s->received, sizeof s->received, "%s/received", root);
    snprintf(s->outgoing, sizeof s->outgoing, "%s/outgoing", root);
    snprintf(s->quarantine, sizeof s->quarantine, "%s/quarantine", root);
    snprintf(s->failed, sizeof s->failed, "%s/failed", root);
    s->lock_fd = -1;
    return DCM_OK;
}

static int lock_spool(gw_spool *s, dcm_error *err)
{
    s->lock_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lock_fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot open %s: %s", s->root,
                        strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
        return DCM_OK;
    int why = errno;
    close(s->lock_fd);
    s->lock_fd = -1;
    if (why == EWOULDBLOCK)
        return dcm_fail(err, DCM_E_IO, -1, "spool %s is in use by another "
                        "siren serve", s->root);
    return dcm_fail(err, DCM_E_IO, -1, "cannot lock spool %s: %s", s->root,
                    strerror(why));
}

int gw_spool_open(gw_spool *s, const char *root, dcm_error *err)
{
    int rc = gw_spool_paths(s, root, err);
    if (rc < 0)
        return rc;
    const char *dirs[] = {s->root, s->received, s->outgoing, s->quarantine,
                          s->failed};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        rc = make_dir(dirs[i], err);
        if (rc < 0)
            return rc;
        if (i == 0 && (rc = lock_spool(s, err)) < 0)
            return rc;
        if (i > 0)
            remove_unfinished(dirs[i]);
    }
    return gw_sync_dir(s->root) < 0
               ? dcm_fail(err, DCM_E_IO, -1, "fsync %s: %s", s->root,
                          strerror(errno))
               : DCM_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void gw_spool_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int gw_spool_list(const char *dir, char ***names, size_t *count,
                  dcm_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return dcm_fail(err, DCM_E_IO, -1, "cannot read %s: %s", dir,
                        strerror(errno));
    size_t capacity = 0;
    struct dirent *e;
    int rc = DCM_OK;
    while (rc == DCM_OK && (e = readdir(d)) != NULL) {
        if (!finished_name(e->d_name))
            continue;
        if (*count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **more = realloc(*names, capacity * sizeof *more);
            if (!more) {
                rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
                break;
            }
            *names = more;
        }
        if (!((*names)[*count] = strdup(e->d_name)))
            rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        else
            (*count)++;
    }
    closedir(d);
    if (rc < 0) {
        gw_spool_names_free(*names, *count);
        *names = NULL;
        *count = 0;
        return rc;
    }
    if (*count) /* qsort of NULL, even for 0 names, is undefined */
        qsort(*names, *count, sizeof **names, compare_names);
    return DCM_OK;
}

int gw_spool_move(const char *from, const char *to, const char *name,
                  dcm_error *err)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s/%s", from, name);
    snprintf(b, sizeof b, "%s/%s", to, name);
    /* The new name first, then the old one gone: a crash in between
     * leaves the instance in both stages, never in none. */
    if (rename(a, b) < 0 || gw_sync_dir(to) < 0 || gw_sync_dir(from) < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot move %s to %s: %s", a, to,
                        strerror(errno));
    return DCM_OK;
}

int gw_spool_write_reason(const char *dir, const char *name,
                          const char *reason, dcm_error *err)
{
    char temp[PATH_MAX], path[PATH_MAX];
    snprintf(temp, sizeof temp, "%s/.%s.reason", dir, name);
    snprintf(path, sizeof path, "%s/%s.reason", dir, name);
    FILE *f = fopen(temp, "we");
    bool ok = f && fprintf(f, "%s\n", reason) >= 0 && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(temp, path) < 0 || gw_sync_dir(dir) < 0) {
        unlink(temp);
        return dcm_fail(err, DCM_E_IO, -1, "cannot write %s: %s", path,
                        strerror(errno));
    }
    return DCM_OK;
}

int gw_spool_drop(const char *dir, const char *name, dcm_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return dcm_fail(err, DCM_E_IO, -1, "cannot remove %s: %s", path,
                        strerror(errno));
    return DCM_OK;
}

int gw_spool_remove(const char *dir, const char *name, dcm_error *err)
{
    if (gw_spool_drop(dir, name, err) < 0)
        return -1;
    return gw_sync_dir(dir) < 0
               ? dcm_fail(err, DCM_E_IO, -1, "fsync %s: %s", dir,
                          strerror(errno))
               : DCM_OK;
}

static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL)
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    closedir(d);
    return total;
}

uint64_t gw_spool_usage(const gw_spool *s)
{
    return dir_bytes(s->received) + dir_bytes(s->outgoing) +
           dir_bytes(s->quarantine) + dir_bytes(s->failed);
}

/* ---- what the receiver recorded ------------------------------------------------ */

#define TAG_PRIVATE_INFO DCM_TAG(0x0002, 0x0102)
/* The receiver writes a few hundred bytes; more is not ours. */
#define PROVENANCE_MAX 4096

bool gw_spool_provenance(const dcm_file *f, char *json, size_t size)
{
    const dcm_element *el = dcm_dataset_find(dcm_file_meta(f),
                                             TAG_PRIVATE_INFO);
    uint64_t len = el ? dcm_element_length(el) : 0;
    if (!len || len > PROVENANCE_MAX || len >= size ||
        dcm_element_read(el, 0, json, (size_t)len, NULL) < 0)
        return false;
    json[len] = '\0';
    /* OB values are padded to even length with a NUL or a space. */
    while (len && (json[len - 1] == '\0' || json[len - 1] == ' '))
        json[--len] = '\0';
    return len > 0;
}

bool gw_spool_site_of(const dcm_file *f, char *site, size_t size)
{
    char json[PROVENANCE_MAX + 1];
    if (!gw_spool_provenance(f, json, sizeof json))
        return false;
    const char *at = strstr(json, "\"site\":\"");
    if (!at)
        return false;
    at += strlen("\"site\":\"");
    size_t n = strcspn(at, "\"\\");
    if (n == 0 || n >= size || at[n] != '"')
        return false;
    memcpy(site, at, n);
    site[n] = '\0';
    return true;
}
