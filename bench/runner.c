/* runner - runs a batch of commands one after another and reports their
 * wall time and the largest peak RSS among them:
 *
 *   runner [--fsync-last-arg] < COMMANDS      prints "SECONDS MAXRSS_BYTES"
 *
 * COMMANDS has one command a line, arguments separated by tabs. Each runs
 * with stdout on /dev/null; the batch stops at the first failure (exit 1,
 * the command on stderr). --fsync-last-arg fsyncs each command's last
 * argument (its output file) and that file's folder inside the timed span.
 *
 * bench/data_core.py and bench/anon.py use this instead of timing children
 * themselves because a child's ru_maxrss counts the memory of the process
 * that forked it (Linux records the parent's high-water mark at exec):
 * forked from Python it would never read below Python's ~10 MiB. This
 * process stays near 1 MiB.
 * Built by bench/run.sh; not part of the product. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 256

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int fsync_with_folder(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int rc = fsync_path(path);
    if (rc == 0)
        rc = fsync_path(dirname(copy));
    free(copy);
    return rc;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int fsync_last = argc == 2 && strcmp(argv[1], "--fsync-last-arg") == 0;
    if (argc > 2 || (argc == 2 && !fsync_last)) {
        fprintf(stderr, "usage: runner [--fsync-last-arg] < COMMANDS\n");
        return 2;
    }
    /* Read the whole batch first: nothing but the commands is timed. */
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap + 1);
    for (size_t got; text && (got = fread(text + len, 1, cap - len, stdin)) > 0;) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(text, 2 * cap + 1);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
    }
    if (!text) {
        fprintf(stderr, "runner: out of memory\n");
        return 1;
    }
    text[len] = '\0';
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) {
        perror("runner: /dev/null");
        return 1;
    }

    long max_rss_kib = 0;
    double start = now_seconds();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *args[MAX_ARGS + 1];
        int count = 0;
        for (char *arg = strsep(&line, "\t"); arg; arg = strsep(&line, "\t")) {
            if (count == MAX_ARGS) {
                fprintf(stderr, "runner: more than %d arguments\n", MAX_ARGS);
                return 1;
            }
            args[count++] = arg;
        }
        args[count] = NULL;
        if (count == 0 || !*args[0])
            continue;
        pid_t pid = fork();
        if (pid < 0) {
            perror("runner: fork");
            return 1;
        }
        if (pid == 0) {
            dup2(devnull, STDOUT_FILENO);
            execvp(args[0], args);
            fprintf(stderr, "runner: %s: %s\n", args[0], strerror(errno));
            _exit(127);
        }
        int status;
        struct rusage usage;
        while (wait4(pid, &status, 0, &usage) < 0) {
            if (errno != EINTR) {
                perror("runner: wait4");
                return 1;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "runner: failed (status 0x%x):", status);
            for (int i = 0; i < count; i++)
                fprintf(stderr, " %s", args[i]);
            fprintf(stderr, "\n");
            return 1;
        }
        if (usage.ru_maxrss > max_rss_kib)
            max_rss_kib = usage.ru_maxrss;
        if (fsync_last && fsync_with_folder(args[count - 1]) < 0) {
            fprintf(stderr, "runner: fsync %s: %s\n", args[count - 1],
                    strerror(errno));
            return 1;
        }
    }
    double seconds = now_seconds() - start;
    printf("%.6f %ld\n", seconds, max_rss_kib * 1024);
    free(text);
    return 0;
}
