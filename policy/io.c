/* io.c - the files a policy or a configuration names: read whole (they
 * are small and bounded), relative to the file that names them. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pol_resolve_path(const char *base, const char *name, char *out,
                         size_t size)
{
    const char *slash = strrchr(base, '/');
    if (name[0] == '/' || !slash)
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "%.*s/%s", (int)(slash - base), base, name);
}

char *policy_read_file(const char *path, size_t max, size_t *len,
                       char *error, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(error, size, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        snprintf(error, size, "%s is not a regular file of at most %zu bytes",
                 path, max);
        close(fd);
        return NULL;
    }
    char *data = malloc((size_t)st.st_size + 1);
    ssize_t got = data ? read(fd, data, (size_t)st.st_size) : -1;
    close(fd);
    if (got != st.st_size) {
        snprintf(error, size, "cannot read %s", path);
        free(data);
        return NULL;
    }
    data[got] = '\0';
    *len = (size_t)got;
    return data;
}
