/* fuzz_codec_frames.c - libFuzzer harness for the frames of a dataset's
 * pixel data: a DICOM file read by dicom/, then codec_source_open (image
 * description, native frame sizes, offset tables, fragments to frames)
 * and every frame read and decoded. Seeds: the pydicom corpus. */
#include "codec.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_memory_bytes = 64u << 20;
    limits.inline_value_bytes = 256; /* exercise referenced values */
    dcm_read_options options = {.limits = &limits};
    dcm_file *file = dcm_file_open_memory(data, size, &options, NULL);
    if (!file)
        return 0;
    codec_limits codec_limits;
    codec_limits_default(&codec_limits);
    codec_limits.max_frame_bytes = 8u << 20; /* keep each run quick */
    codec_limits.max_total_bytes = 32u << 20;
    codec_limits.max_encoded_frame_bytes = 8u << 20;
    codec_source *src =
        codec_source_open(dcm_file_dataset(file), &codec_limits, NULL);
    uint32_t frames = src ? codec_source_image(src)->frames : 0;
    for (uint32_t f = 0; f < frames && f < 8; f++) {
        uint8_t *frame;
        size_t len;
        codec_image decoded;
        if (codec_source_decode(src, f, &frame, &len, &decoded, NULL) == 0)
            free(frame);
    }
    codec_source_free(src);
    dcm_file_free(file);
    return 0;
}
