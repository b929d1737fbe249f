/* codec_tool - decodes and encodes the pixel data of DICOM files with
 * codec/, for the codec integration test (until siren has a subcommand):
 *
 *   codec_tool syntaxes
 *   codec_tool info IN
 *   codec_tool decode IN OUT.raw
 *   codec_tool encode TS IN OUT [--quality N] [--near N] [--ratio R]
 *                               [--psnr DB] [--no-verify] [--no-sync]
 *   codec_tool encode-list TS LIST [the same options]
 *
 * syntaxes prints each compressed syntax codec/ knows with what this build
 * does with it ("UID decode encode", "-" for no), since the C++ adapters
 * are optional. info prints the image as stored: "rows columns samples bits_allocated
 * bits_stored pixel_representation planar photometric frames syntax".
 * decode writes every frame decoded (planar configuration 0, little
 * endian), one after the other, to OUT.raw and prints the decoded image
 * the same way. encode decodes each frame of IN, encodes it into transfer
 * syntax TS (a UID), checks every lossless one with codec_verify_lossless,
 * and writes OUT with the new pixel data and the attributes that go with
 * it (Photometric Interpretation, Planar Configuration, Lossy Image
 * Compression, Ratio and Method), as dcm_write_file_path does (fsync'ed,
 * then renamed). For bench/codec.py, which times encoders against tools
 * that neither check nor flush what they write: --no-verify skips the
 * lossless check and --no-sync writes OUT in place without fsync.
 * encode-list does the same for every "IN<tab>OUT" line of LIST in one
 * process, as the gateway's long-running pixel stage does (no process
 * start-up or dynamic linking per file), stopping at the first failure.
 * Exit status: 0 done, 1 failure (the message on stderr), 2 usage. */
#include "codec.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR DCM_TAG(0x0028, 0x0006)
#define TAG_LOSSY DCM_TAG(0x0028, 0x2110)
#define TAG_LOSSY_RATIO DCM_TAG(0x0028, 0x2112)
#define TAG_LOSSY_METHOD DCM_TAG(0x0028, 0x2114)

static int failed(const char *what, const dcm_error *err)
{
    fprintf(stderr, "codec_tool: %s: %s (%s)\n", what, err->message,
            dcm_error_code_name(err->code));
    return 1;
}

static void print_image(const codec_image *image, const char *syntax)
{
    printf("%u %u %u %u %u %u %u %s %u %s\n", image->rows, image->columns,
           image->samples_per_pixel, image->bits_allocated,
           image->bits_stored, image->pixel_representation,
           image->planar_configuration,
           codec_photometric_name(image->photometric), image->frames, syntax);
}

static int info(const char *in)
{
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(in, NULL, &err);
    if (!file)
        return failed(in, &err);
    codec_image image;
    int rc = codec_image_from_dataset(dcm_file_dataset(file), NULL, &image,
                                      &err);
    if (rc == 0)
        print_image(&image, dcm_file_transfer_syntax(file)->uid);
    dcm_file_free(file);
    return rc == 0 ? 0 : failed(in, &err);
}

static int decode(const char *in, const char *out_path)
{
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(in, NULL, &err);
    if (!file)
        return failed(in, &err);
    codec_source *src = codec_source_open(dcm_file_dataset(file), NULL, &err);
    FILE *out = src ? fopen(out_path, "wb") : NULL;
    int status = src ? 0 : failed(in, &err);
    if (src && !out) {
        perror(out_path);
        status = 1;
    }
    codec_image decoded = {0};
    uint32_t frames = src ? codec_source_image(src)->frames : 0;
    for (uint32_t f = 0; status == 0 && f < frames; f++) {
        uint8_t *data;
        size_t len;
        if (codec_source_decode(src, f, &data, &len, &decoded, &err) < 0) {
            status = failed(in, &err);
            break;
        }
        if (fwrite(data, 1, len, out) != len) {
            perror(out_path);
            status = 1;
        }
        free(data);
    }
    if (out && fclose(out) != 0)
        status = 1;
    if (status == 0) {
        decoded.frames = frames;
        print_image(&decoded, codec_source_syntax(src)->uid);
    }
    codec_source_free(src);
    dcm_file_free(file);
    return status;
}

/* The attributes that go with the encoded pixel data. */
static int update_attributes(dcm_dataset *ds, const codec_encoded *encoded,
                             uint64_t raw_bytes, uint64_t encoded_bytes,
                             dcm_error *err)
{
    int rc = dcm_dataset_set_string(
        ds, TAG_PHOTOMETRIC, DCM_VR_CS,
        codec_photometric_name(encoded->image.photometric), err);
    if (rc == 0 && encoded->image.samples_per_pixel > 1) {
        uint8_t zero[2] = {0, 0};
        rc = dcm_dataset_set_bytes(ds, TAG_PLANAR, DCM_VR_US, zero, 2, err);
    }
    if (rc == 0 && encoded->lossy) {
        char ratio[17];
        snprintf(ratio, sizeof ratio, "%.4g",
                 (double)raw_bytes / (double)(encoded_bytes ? encoded_bytes : 1));
        rc = dcm_dataset_set_string(ds, TAG_LOSSY, DCM_VR_CS, "01", err);
        if (rc == 0)
            rc = dcm_dataset_set_string(ds, TAG_LOSSY_RATIO, DCM_VR_DS, ratio,
                                        err);
        if (rc == 0)
            rc = dcm_dataset_set_string(ds, TAG_LOSSY_METHOD, DCM_VR_CS,
                                        encoded->lossy_method, err);
    }
    return rc;
}

/* What encode does besides encoding: both true unless the options say. */
typedef struct encode_flags {
    bool verify; /* codec_verify_lossless on every lossless frame */
    bool sync;   /* dcm_write_file_path, else in place without fsync */
} encode_flags;

static int encode_frames(codec_source *src, const char *ts,
                         const codec_encode_options *opts, bool verify,
                         dcm_dataset *ds, dcm_error *err)
{
    codec_writer *w = codec_writer_new(ts, err);
    if (!w)
        return -1;
    codec_encoded encoded = {0};
    uint64_t raw_bytes = 0, encoded_bytes = 0;
    int rc = 0;
    uint32_t frames = codec_source_image(src)->frames;
    for (uint32_t f = 0; rc == 0 && f < frames; f++) {
        uint8_t *frame, *stream = NULL;
        size_t len, stream_len = 0;
        codec_image image;
        rc = codec_source_decode(src, f, &frame, &len, &image, err);
        if (rc == 0)
            rc = codec_encode_frame(ts, &image, frame, len, opts, &stream,
                                    &stream_len, &encoded, err);
        if (rc == 0 && verify && !encoded.lossy)
            rc = codec_verify_lossless(ts, &image, frame, len, stream,
                                       stream_len, &encoded.image, NULL, err);
        if (rc == 0)
            rc = codec_writer_add_frame(w, stream, stream_len, err);
        raw_bytes += len;
        encoded_bytes += stream_len;
        free(frame);
        free(stream);
    }
    if (rc == 0)
        rc = codec_writer_finish(w, ds, err);
    codec_writer_free(w);
    if (rc == 0)
        rc = update_attributes(ds, &encoded, raw_bytes, encoded_bytes, err);
    return rc;
}

/* Writes straight into path, no fsync (as dcm_rewrite --no-sync). */
static int write_unsynced(const dcm_dataset *ds,
                          const dcm_write_options *options, const char *path,
                          dcm_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err->message, sizeof err->message, "cannot create it");
        err->code = DCM_E_IO;
        return DCM_E_IO;
    }
    int rc = dcm_write_file(ds, options, dcm_fd_writer, &fd, err);
    if (close(fd) < 0 && rc == DCM_OK) {
        snprintf(err->message, sizeof err->message, "cannot close it");
        err->code = DCM_E_IO;
        rc = DCM_E_IO;
    }
    return rc;
}

static int encode(const char *ts, const char *in, const char *out,
                  const codec_encode_options *opts, encode_flags flags)
{
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(in, NULL, &err);
    if (!file)
        return failed(in, &err);
    dcm_dataset *ds = dcm_file_dataset(file);
    codec_source *src = codec_source_open(ds, NULL, &err);
    int status = src ? 0 : failed(in, &err);
    /* The source reads the pixel data being replaced: all frames are
     * encoded before encode_frames swaps it. */
    if (status == 0 &&
        encode_frames(src, ts, opts, flags.verify, ds, &err) < 0)
        status = failed(in, &err);
    codec_source_free(src);
    if (status == 0) {
        dcm_write_options options = {.transfer_syntax = ts};
        int rc = flags.sync ? dcm_write_file_path(ds, &options, out, &err)
                            : write_unsynced(ds, &options, out, &err);
        if (rc < 0)
            status = failed(out, &err);
    }
    dcm_file_free(file);
    return status;
}

/* Lines of LIST: "IN<tab>OUT", at most PATH_MAX each side. */
static int encode_list(const char *ts, const char *list,
                       const codec_encode_options *opts, encode_flags flags)
{
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "codec_tool: cannot open %s\n", list);
        return 1;
    }
    char line[2 * 4096 + 2];
    int status = 0;
    while (status == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) {
            fprintf(stderr, "codec_tool: %s: a line without a tab\n", list);
            status = 1;
            break;
        }
        *tab = '\0';
        status = encode(ts, line, tab + 1, opts, flags);
    }
    fclose(f);
    return status;
}

static int syntaxes(void)
{
    static const char *const known[] = {
        CODEC_TS_RLE, CODEC_TS_JPEG_BASELINE, CODEC_TS_JPEG_EXTENDED,
        CODEC_TS_JPEG_LOSSLESS, CODEC_TS_JPEG_LOSSLESS_SV1,
        CODEC_TS_JPEG_LS_LOSSLESS, CODEC_TS_JPEG_LS_NEAR_LOSSLESS,
        CODEC_TS_J2K_LOSSLESS, CODEC_TS_J2K, CODEC_TS_HTJ2K_LOSSLESS,
        CODEC_TS_HTJ2K_LOSSLESS_RPCL, CODEC_TS_HTJ2K};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        printf("%s %s %s\n", known[i],
               codec_can_decode(known[i]) ? "decode" : "-",
               codec_can_encode(known[i]) ? "encode" : "-");
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: codec_tool syntaxes\n"
            "       codec_tool info IN\n"
            "       codec_tool decode IN OUT.raw\n"
            "       codec_tool encode TS IN OUT [--quality N] [--near N] "
            "[--ratio R] [--psnr DB]\n"
            "                                   [--no-verify] [--no-sync]\n"
            "       codec_tool encode-list TS LIST [the same options]\n");
    return 2;
}

static int parse_options(int argc, char **argv, codec_encode_options *opts,
                         encode_flags *flags)
{
    int i = 0;
    while (i < argc) {
        if (strcmp(argv[i], "--no-verify") == 0) {
            flags->verify = false;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--no-sync") == 0) {
            flags->sync = false;
            i++;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        char *end;
        double value = strtod(argv[i + 1], &end);
        if (*end != '\0')
            return -1;
        if (strcmp(argv[i], "--quality") == 0)
            opts->quality = (int)value;
        else if (strcmp(argv[i], "--near") == 0)
            opts->near_lossless = (int)value;
        else if (strcmp(argv[i], "--ratio") == 0)
            opts->ratio = value;
        else if (strcmp(argv[i], "--psnr") == 0)
            opts->psnr_db = value;
        else
            return -1;
        i += 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "syntaxes") == 0)
        return syntaxes();
    if (argc == 3 && strcmp(argv[1], "info") == 0)
        return info(argv[2]);
    if (argc == 4 && strcmp(argv[1], "decode") == 0)
        return decode(argv[2], argv[3]);
    if (argc >= 5 && strcmp(argv[1], "encode") == 0) {
        codec_encode_options opts = {0};
        encode_flags flags = {.verify = true, .sync = true};
        if (parse_options(argc - 5, argv + 5, &opts, &flags) < 0)
            return usage();
        return encode(argv[2], argv[3], argv[4], &opts, flags);
    }
    if (argc >= 4 && strcmp(argv[1], "encode-list") == 0) {
        codec_encode_options opts = {0};
        encode_flags flags = {.verify = true, .sync = true};
        if (parse_options(argc - 4, argv + 4, &opts, &flags) < 0)
            return usage();
        return encode_list(argv[2], argv[3], &opts, flags);
    }
    return usage();
}
