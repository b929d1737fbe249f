/* dcm_rewrite - reads a DICOM file with the data core and writes it back:
 *
 *   dcm_rewrite [--ts explicit|implicit|deflated|UID] IN OUT
 *
 * The corpus tests compare what DCMTK and pydicom read from OUT with what
 * they read from IN; the benchmarks time it against DCMTK's dcmconv. The
 * default target is Explicit VR Little Endian, or the input's own syntax
 * when its pixel data is encapsulated (which is explicit VR little endian
 * too). Exit status: 0 written, 1 IN unreadable or OUT not written, 2 usage. */
#include "dicom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    const char *ts = NULL;
    int arg = 1;
    if (arg + 1 < argc && strcmp(argv[arg], "--ts") == 0) {
        ts = syntax_uid(argv[arg + 1]);
        arg += 2;
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: dcm_rewrite [--ts explicit|implicit|deflated|"
                        "UID] IN OUT\n");
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
    int rc = dcm_write_file_path(ds, &options, out, &err);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", out, err.message);
    free(sop_class);
    free(sop_instance);
    dcm_file_free(file);
    return rc < 0 ? 1 : 0;
}
