/*
 * scratch.h - a unit test's scratch folder: made with mkdtemp under
 * $SIREN_TEST_TMP (ctest sets it; /tmp otherwise), files written into it
 * with a given mode, and the whole folder removed at the end. Include it
 * after cmocka.h: scratch_write asserts.
 */
#ifndef SIREN_TEST_SCRATCH_H
#define SIREN_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* dir (size bytes) becomes a new folder BASE/NAME.XXXXXX. 0, or -1 with
 * errno. */
static inline int scratch_make(char *dir, size_t size, const char *name)
{
    const char *base = getenv("SIREN_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700); /* ctest's folder may not exist yet */
    if (snprintf(dir, size, "%s/%s.XXXXXX", base, name) >= (int)size)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

/* path holds text and has mode (chmod: not reduced by the umask). */
static inline void scratch_write(const char *path, const char *text,
                                 mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static inline int scratch_remove_entry(const char *path,
                                       const struct stat *st, int flag,
                                       struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* dir and everything in it. 0, or -1. */
static inline int scratch_remove(const char *dir)
{
    return nftw(dir, scratch_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif /* SIREN_TEST_SCRATCH_H */
