/* source.c - where referenced values live: a file descriptor read with
 * pread(), or bytes in memory. Reference-counted because each element that
 * references a source keeps it alive after its file object is gone. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dcm_source {
    unsigned refs;
    int fd;              /* -1 for memory */
    const uint8_t *data; /* memory sources */
    bool owns_data;
    uint64_t size;
};

dcm_source *dcm_source_from_fd(int fd, uint64_t size)
{
    dcm_source *src = calloc(1, sizeof *src);
    if (!src)
        return NULL;
    src->refs = 1;
    src->fd = fd;
    src->size = size;
    return src;
}

dcm_source *dcm_source_from_memory(const uint8_t *data, size_t len, bool owned)
{
    dcm_source *src = calloc(1, sizeof *src);
    if (!src)
        return NULL;
    src->refs = 1;
    src->fd = -1;
    /* An empty input may come as NULL; pointer arithmetic needs an
     * object. */
    src->data = data ? data : (const uint8_t *)"";
    src->owns_data = owned;
    src->size = len;
    return src;
}

dcm_source *dcm_source_ref(dcm_source *src)
{
    if (src)
        src->refs++;
    return src;
}

void dcm_source_unref(dcm_source *src)
{
    if (!src || --src->refs > 0)
        return;
    if (src->fd >= 0)
        close(src->fd);
    if (src->owns_data)
        free((void *)src->data);
    free(src);
}

int dcm_source_fd(const dcm_source *src)
{
    return src->fd;
}

uint64_t dcm_source_size(const dcm_source *src)
{
    return src->size;
}

const uint8_t *dcm_source_memory(const dcm_source *src, uint64_t offset)
{
    return src->fd < 0 && offset <= src->size ? src->data + offset : NULL;
}

int dcm_source_read(const dcm_source *src, uint64_t offset, void *buf,
                    size_t len, dcm_error *err)
{
    if (!dcm_add_fits(offset, len, src->size))
        return dcm_fail(err, DCM_E_TRUNCATED, (int64_t)offset,
                        "%zu bytes wanted, the input ends at %llu", len,
                        (unsigned long long)src->size);
    if (src->fd < 0) {
        memcpy(buf, src->data + offset, len);
        return DCM_OK;
    }
    uint8_t *out = buf;
    while (len > 0) {
        ssize_t got = pread(src->fd, out, len, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return dcm_fail(err, DCM_E_IO, (int64_t)offset, "read failed: %s",
                            strerror(errno));
        if (got == 0)
            return dcm_fail(err, DCM_E_TRUNCATED, (int64_t)offset,
                            "the file shrank while being read");
        out += got;
        offset += (uint64_t)got;
        len -= (size_t)got;
    }
    return DCM_OK;
}

void dcm_swap_bytes(uint8_t *buf, size_t len, size_t unit_size)
{
    if (unit_size < 2)
        return;
    for (size_t at = 0; at + unit_size <= len; at += unit_size)
        for (size_t i = 0; i < unit_size / 2; i++) {
            uint8_t byte = buf[at + i];
            buf[at + i] = buf[at + unit_size - 1 - i];
            buf[at + unit_size - 1 - i] = byte;
        }
}

int dcm_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t put = write(fd, p, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return -1;
        p += put;
        len -= (size_t)put;
    }
    return 0;
}
