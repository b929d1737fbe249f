/* scu_native.c - a compressed file decoded into native Explicit VR Little
 * Endian for an archive that accepts only native syntaxes (scu.h,
 * gw_scu_write_native).
 *
 * The file is written in three parts so that one decoded frame at a time
 * is in memory, whatever the size of the image: the elements before Pixel
 * Data (through the writer, from one reading of the file with the pixel
 * data and everything after it removed), then Pixel Data itself (its
 * header here, the frames as codec/ decodes them), then the elements
 * after Pixel Data (through the writer, from a second reading of the
 * file with everything up to Pixel Data removed). */
#include "scu.h"

#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION DCM_TAG(0x0028, 0x0006)
/* The largest value an explicit VR element of 32-bit length holds
 * (0xFFFFFFFF means undefined length), rounded down to even. */
#define MAX_NATIVE_PIXEL_BYTES 0xFFFFFFFEull

/* Removes the elements of ds from tag on. */
static void remove_from(dcm_dataset *ds, uint32_t tag)
{
    size_t count;
    while ((count = dcm_dataset_count(ds)) > 0) {
        uint32_t last = dcm_element_tag(dcm_dataset_at(ds, count - 1));
        if (last < tag)
            break;
        dcm_dataset_remove(ds, last);
    }
}

/* Removes the elements of ds up to and including tag. */
static void remove_through(dcm_dataset *ds, uint32_t tag)
{
    while (dcm_dataset_count(ds) > 0) {
        uint32_t first = dcm_element_tag(dcm_dataset_at(ds, 0));
        if (first > tag)
            break;
        dcm_dataset_remove(ds, first);
    }
}

/* The native Pixel Data's length for frames of frame_len bytes: checked
 * against the 32-bit length field, and for 1-bit images, whose native
 * frames follow each other bit by bit, against frames that would not
 * start on a byte. */
static int native_length(const codec_image *image, size_t frame_len,
                         uint64_t *total, dcm_error *err)
{
    uint64_t bits = (uint64_t)image->rows * image->columns *
                    image->samples_per_pixel;
    if (image->bits_allocated == 1 && image->frames > 1 && bits % 8)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "1-bit frames that do "
                        "not end on a byte boundary are not re-packed");
    if (frame_len && image->frames > MAX_NATIVE_PIXEL_BYTES / frame_len)
        return dcm_fail(err, DCM_E_LIMIT, -1, "%u decoded frames of %zu "
                        "bytes exceed what native Pixel Data can hold",
                        image->frames, frame_len);
    *total = (uint64_t)image->frames * frame_len; /* padded, still fits */
    return DCM_OK;
}

/* The elements before Pixel Data, with the attributes the decoded frames
 * go with, as a Part 10 file in Explicit VR Little Endian. */
static int write_head(dcm_dataset *ds, const codec_image *decoded, int *fd,
                      dcm_error *err)
{
    int rc = dcm_dataset_set_string(ds, TAG_PHOTOMETRIC, DCM_VR_CS,
                                    codec_photometric_name(decoded->photometric),
                                    err);
    if (rc == DCM_OK && decoded->samples_per_pixel > 1) {
        uint8_t interleaved[2] = {0, 0};
        rc = dcm_dataset_set_bytes(ds, TAG_PLANAR_CONFIGURATION, DCM_VR_US,
                                   interleaved, sizeof interleaved, err);
    }
    if (rc < 0)
        return rc;
    dcm_dataset_set_syntax(ds, NULL);
    dcm_write_options options = {.transfer_syntax = DCM_TS_EXPLICIT_LE};
    return dcm_write_file(ds, &options, dcm_fd_writer, fd, err);
}

static int write_bytes(int *fd, const void *data, size_t len, dcm_error *err)
{
    if (dcm_fd_writer(fd, data, len) < 0)
        return dcm_fail(err, DCM_E_IO, -1, "writing the decoded copy: %s",
                        strerror(errno));
    return DCM_OK;
}

/* Pixel Data's explicit VR header: tag, OB or OW, reserved, length. */
static int write_pixel_header(int *fd, const codec_image *image,
                              uint64_t padded, dcm_error *err)
{
    uint8_t header[12] = {0xE0, 0x7F, 0x10, 0x00, 'O',
                          image->bits_allocated > 8 ? 'W' : 'B', 0, 0};
    for (int i = 0; i < 4; i++)
        header[8 + i] = (uint8_t)(padded >> (8 * i));
    return write_bytes(fd, header, sizeof header, err);
}

/* The frames of src decoded, one after the other; frame 0 (first, of
 * first_len bytes) was decoded already. Each must be as long as it. */
static int write_frames(const codec_source *src, const uint8_t *first,
                        size_t first_len, int *fd, dcm_error *err)
{
    int rc = write_bytes(fd, first, first_len, err);
    uint32_t frames = codec_source_image(src)->frames;
    for (uint32_t index = 1; rc == DCM_OK && index < frames; index++) {
        uint8_t *frame = NULL;
        size_t len = 0;
        codec_image decoded;
        rc = codec_source_decode(src, index, &frame, &len, &decoded, err);
        if (rc == DCM_OK && len != first_len)
            rc = dcm_fail(err, DCM_E_INVALID, -1, "frame %u decodes to %zu "
                          "bytes, frame 1 to %zu", index + 1, len, first_len);
        if (rc == DCM_OK)
            rc = write_bytes(fd, frame, len, err);
        free(frame);
    }
    return rc;
}

/* Everything from the head's end through Pixel Data, the first frame
 * decoded before anything is written (it says the photometric
 * interpretation the head must carry). */
static int write_decoded(const codec_source *src, dcm_dataset *head, int *fd,
                         dcm_error *err)
{
    uint8_t *first = NULL;
    size_t first_len = 0;
    codec_image decoded;
    const codec_image *stored = codec_source_image(src);
    uint64_t total = 0;
    int rc = codec_source_decode(src, 0, &first, &first_len, &decoded, err);
    if (rc == DCM_OK && (decoded.bits_allocated != stored->bits_allocated ||
                         decoded.samples_per_pixel !=
                             stored->samples_per_pixel))
        rc = dcm_fail(err, DCM_E_UNSUPPORTED, -1, "the decoder made %u-bit "
                      "samples, %u per pixel, of an image that declares %u "
                      "and %u", decoded.bits_allocated,
                      decoded.samples_per_pixel, stored->bits_allocated,
                      stored->samples_per_pixel);
    if (rc == DCM_OK)
        rc = native_length(stored, first_len, &total, err);
    if (rc == DCM_OK)
        rc = write_head(head, &decoded, fd, err);
    if (rc == DCM_OK)
        rc = write_pixel_header(fd, stored, total + total % 2, err);
    if (rc == DCM_OK)
        rc = write_frames(src, first, first_len, fd, err);
    if (rc == DCM_OK && total % 2)
        rc = write_bytes(fd, "", 1, err);
    free(first);
    return rc;
}

int gw_scu_write_native(const char *path, int fd, dcm_error *err)
{
    dcm_file *pixels = dcm_file_open(path, NULL, err);
    dcm_file *head = pixels ? dcm_file_open(path, NULL, err) : NULL;
    codec_source *src =
        head ? codec_source_open(dcm_file_dataset(pixels), NULL, err) : NULL;
    int rc = src ? DCM_OK : (err && err->code ? err->code : DCM_E_INVALID);
    if (rc == DCM_OK) {
        dcm_dataset *before = dcm_file_dataset(head);
        /* The offset tables went with the fragments they described. */
        remove_from(before, DCM_TAG_EXTENDED_OFFSET_TABLE);
        rc = write_decoded(src, before, &fd, err);
    }
    codec_source_free(src); /* it borrowed what the tail is cut from */
    if (rc == DCM_OK) {
        dcm_dataset *after = dcm_file_dataset(pixels);
        remove_through(after, DCM_TAG_PIXEL_DATA);
        dcm_dataset_set_syntax(after, NULL);
        if (dcm_dataset_count(after) > 0)
            rc = dcm_write_dataset(after, DCM_TS_EXPLICIT_LE, dcm_fd_writer,
                                   &fd, err);
    }
    dcm_file_free(head);
    dcm_file_free(pixels);
    return rc;
}
