/* files.c - the input files of siren send, apply and diff: a file, or
 * every file below a directory. */
#include "gateway.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Directories nested deeper are not entered (a loop of bind mounts). */
#define WALK_MAX_DEPTH 32

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a directory, hidden ones left out, sorted; NULL with
 * *count 0 for an empty or unreadable one. */
static char **sorted_names(DIR *dir, size_t *count)
{
    char **names = NULL;
    size_t capacity = 0;
    *count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (*count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **more = realloc(names, capacity * sizeof *names);
            if (!more)
                break;
            names = more;
        }
        if (!(names[*count] = strdup(entry->d_name)))
            break;
        (*count)++;
    }
    qsort(names, *count, sizeof *names, compare_names);
    return names;
}

static size_t walk(const char *path, int depth, gw_file_fn fn, void *ctx)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fn(ctx, path);
        return 0;
    }
    DIR *dir = depth < WALK_MAX_DEPTH ? opendir(path) : NULL;
    if (!dir) {
        fprintf(stderr, "%s: cannot read directory\n", path);
        return 1;
    }
    size_t count, unreadable = 0;
    char **names = sorted_names(dir, &count);
    closedir(dir);
    for (size_t i = 0; i < count; i++) {
        char child[4096];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", path, names[i]) >=
            sizeof child) {
            fprintf(stderr, "%s/%s: path too long\n", path, names[i]);
            unreadable++;
        } else {
            unreadable += walk(child, depth + 1, fn, ctx);
        }
        free(names[i]);
    }
    free(names);
    return unreadable;
}

size_t gw_walk_files(const char *path, gw_file_fn fn, void *ctx)
{
    return walk(path, 0, fn, ctx);
}
