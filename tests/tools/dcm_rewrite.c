/* dcm_rewrite - reads a DICOM file with the data core and writes it back:
 *
 *   dcm_rewrite [--no-sync] [--ts explicit|implicit|deflated|UID] IN OUT
 *
 * The corpus tests compare what DCMTK and pydicom read from OUT with what
 * they read from IN; the benchmarks time it against DCMTK's dcmconv. The
 * default target is Explicit VR Little Endian, or the input's own syntax
 * when its pixel data is encapsulated (which is explicit VR little endian
 * too). OUT is written with dcm_write_file_path (temporary name, fsync,
 * rename: what the gateway does), or with --no-sync straight into OUT
 * without fsync (what dcmconv does, for a like-for-like benchmark).
 * Exit status: 0 written, 1 IN unreadable or OUT not written, 2 usage. */
#include "dicom.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *syntax_uid(const char *name)
{
    if (strcmp(name, "explicit") == 0)
        return DCM_TS_EXPLICIT_LE;
    if (strcmp(name, "implicit") == 0)
        return DCM_TS_IMPLICIT_LE;
    if (strcmp(name, "deflated") == 0)
        return DCM_TS_DEFLATED_LE;
    return name;
}

/* SOP class/instance from the input's meta, for datasets that do not carry
 * them (DICOMDIR). Owned by the caller. */
static char *meta_string(const dcm_file *file, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(dcm_file_meta(file), tag);
    char *value = el ? dcm_element_get_string(el, NULL) : NULL;
    if (value && !*value) {
        free(value);
        value = NULL;
    }
    return value;
}

/* Partial datasets from test suites may have no SOP UIDs anywhere; a Part
 * 10 file needs them, so they get Secondary Capture and a fresh instance
 * UID (dcmconv invents a private class for them). */
#define FALLBACK_SOP_CLASS "1.2.840.10008.5.1.4.1.1.7"

static char *fresh_uid(void)
{
    char *uid = malloc(DCM_UID_MAX + 1);
    if (uid && dcm_uid_generate(uid, NULL) < 0) {
        free(uid);
        uid = NULL;
    }
    return uid;
}

/* Writes straight into path, no fsync. */
static int write_unsynced(const dcm_dataset *ds, const dcm_write_options *o,
                          const char *path, dcm_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err->message, sizeof err->message, "cannot create it");
        return DCM_E_IO;
    }
    int rc = dcm_write_file(ds, o, dcm_fd_writer, &fd, err);
    if (close(fd) < 0 && rc == DCM_OK)
        rc = DCM_E_IO;
    return rc;
}

int main(int argc, char **argv)
{
    const char *ts = NULL;
    bool sync = true;
    int arg = 1;
    for (; arg < argc && argv[arg][0] == '-'; arg++) {
        if (strcmp(argv[arg], "--no-sync") == 0) {
            sync = false;
        } else if (strcmp(argv[arg], "--ts") == 0 && arg + 1 < argc) {
            ts = syntax_uid(argv[++arg]);
        } else {
            break;
        }
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: dcm_rewrite [--no-sync] [--ts explicit|"
                        "implicit|deflated|UID] IN OUT\n");
        return 2;
    }
    const char *in = argv[arg], *out = argv[arg + 1];
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(in, NULL, &err);
    if (!file) {
        fprintf(stderr, "%s: offset %lld: %s\n", in, (long long)err.offset,
                err.message);
        return 1;
    }
    dcm_dataset *ds = dcm_file_dataset(file);
    char *sop_class = NULL, *sop_instance = NULL;
    if (!dcm_dataset_find(ds, DCM_TAG_SOP_CLASS_UID))
        sop_class = meta_string(file, DCM_TAG_MEDIA_SOP_CLASS_UID);
    if (!dcm_dataset_find(ds, DCM_TAG_SOP_INSTANCE_UID))
        sop_instance = meta_string(file, DCM_TAG_MEDIA_SOP_INSTANCE_UID);
    if (!dcm_dataset_find(ds, DCM_TAG_SOP_CLASS_UID) && !sop_class)
        sop_class = strdup(FALLBACK_SOP_CLASS);
    if (!dcm_dataset_find(ds, DCM_TAG_SOP_INSTANCE_UID) && !sop_instance)
        sop_instance = fresh_uid();
    dcm_write_options options = {
        .transfer_syntax = ts,
        .deflate_level = -1,
        .sop_class_uid = sop_class,
        .sop_instance_uid = sop_instance,
    };
    int rc = sync ? dcm_write_file_path(ds, &options, out, &err)
                  : write_unsynced(ds, &options, out, &err);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", out, err.message);
    free(sop_class);
    free(sop_instance);
    dcm_file_free(file);
    return rc < 0 ? 1 : 0;
}
