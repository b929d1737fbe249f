/* fuzz_dicom_read.c - libFuzzer harness for the DICOM reader, and through
 * it the charset decoder, the printer and the writer: whatever the reader
 * accepts must also print, decode and write without a crash. */
#include "dicom.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard(void *ctx, const void *bytes, size_t len)
{
    (void)ctx;
    (void)bytes;
    (void)len;
    return 0;
}

/* Text elements that rules and the de-identifier read through UTF-8. */
static const uint32_t text_tags[] = {
    DCM_TAG(0x0010, 0x0010), DCM_TAG(0x0010, 0x0020), DCM_TAG(0x0008, 0x0080),
    DCM_TAG(0x0008, 0x1030), DCM_TAG(0x0020, 0x4000),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_inflated_bytes = 16u << 20; /* keep each run quick */
    limits.max_memory_bytes = 64u << 20;
    limits.inline_value_bytes = 256;       /* exercise references */
    dcm_read_options options = {.limits = &limits};
    dcm_file *file = dcm_file_open_memory(data, size, &options, NULL);
    if (!file)
        return 0;
    dcm_dataset *ds = dcm_file_dataset(file);
    dcm_dump_file(file, sink, NULL);
    for (size_t i = 0; i < sizeof text_tags / sizeof text_tags[0]; i++)
        free(dcm_dataset_get_utf8(ds, text_tags[i], NULL));
    dcm_write_options write_options = {
        .sop_class_uid = "1.2.3", .sop_instance_uid = "1.2.3.4",
        .deflate_level = 1};
    dcm_write_file(ds, &write_options, discard, NULL, NULL);
    if (dcm_dataset_convert_to_utf8(ds, NULL) == DCM_OK) {
        write_options.transfer_syntax = DCM_TS_IMPLICIT_LE;
        dcm_write_file(ds, &write_options, discard, NULL, NULL);
    }
    dcm_file_free(file);
    return 0;
}
