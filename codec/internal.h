/*
 * internal.h - what the parts of codec/ share and no other module sees:
 * the growable output buffer, sample access, and one decoder and encoder
 * per family of transfer syntaxes.
 */
#ifndef SIREN_CODEC_INTERNAL_H
#define SIREN_CODEC_INTERNAL_H

#include "codec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growable byte buffer the encoders write codestreams into. */
typedef struct codec_buf {
    uint8_t *data;
    size_t len, capacity;
} codec_buf;

int codec_buf_reserve(codec_buf *buf, size_t extra, dcm_error *err);
int codec_buf_append(codec_buf *buf, const void *data, size_t len,
                     dcm_error *err);
void codec_buf_release(codec_buf *buf);

/* a * b and a + b, false when the result would not fit. */
bool codec_mul_u64(uint64_t a, uint64_t b, uint64_t *out);
bool codec_add_u64(uint64_t a, uint64_t b, uint64_t *out);

/* Samples per pixel of a checked image: 1 (grey, palette) or 3 (colour). */
#define CODEC_MAX_COMPONENTS 3

/* Bytes of one sample (bits allocated 8, 16, 32 -> 1, 2, 4). */
size_t codec_sample_bytes(const codec_image *image);
/* Sample i of a frame (little endian, bits_allocated 8/16/32), reduced to
 * its stored bits: sign-extended for pixel representation 1, masked
 * otherwise. */
int64_t codec_sample_get(const codec_image *image, const uint8_t *frame,
                         size_t i);
/* count samples from sample index first, every step-th (step 1: a run
 * of samples; step samples_per_pixel: one component of interleaved
 * pixels), reduced as codec_sample_get does, into out. Bits stored at most
 * 31, or signed: the value must fit an int32. */
void codec_samples_get(const codec_image *image, const uint8_t *frame,
                       size_t first, size_t step, size_t count, int32_t *out);
/* The reverse: each value's low bits_allocated bits into count samples
 * from index first, every step-th. */
void codec_samples_put(const codec_image *image, uint8_t *frame,
                       size_t first, size_t step, size_t count,
                       const int32_t *in);
/* count pixels from pixel index first, their samples_per_pixel
 * interleaved samples reduced as codec_samples_get does, into one plane
 * per component (planes[c][i]: samples_per_pixel planes of count values,
 * none overlapping the frame or another). */
void codec_pixels_get(const codec_image *image, const uint8_t *frame,
                      size_t first, size_t count, int32_t *const planes[]);
/* The reverse, as codec_samples_put does. */
void codec_pixels_put(const codec_image *image, uint8_t *frame,
                      size_t first, size_t count,
                      const int32_t *const planes[]);

/* Brings every sample of a frame (len bytes, bits allocated 8/16/32) to
 * its stored bits: signed ones sign-extended to bits_allocated, unsigned
 * ones without stray high bits (overlays, garbage), as the frame layout
 * of codec.h says. */
void codec_normalize_samples(const codec_image *image, uint8_t *frame,
                             size_t len);

/* Decoders fill out (out_len bytes: codec_frame_bytes of decoded) from a
 * codestream; stored is the image the dataset describes, decoded what the
 * dispatcher expects back (codec.c). They check the codestream's header
 * against decoded before they decode. */
typedef int (*codec_decode_fn)(const codec_image *stored,
                               const codec_image *decoded,
                               const uint8_t *data, size_t len, uint8_t *out,
                               size_t out_len, dcm_error *err);
/* Encoders append the codestream of a frame (planar configuration 0) to
 * out and fill encoded. lossless tells the syntax's mode. */
typedef int (*codec_encode_fn)(const codec_image *image, const uint8_t *frame,
                               size_t len, const codec_encode_options *opts,
                               bool lossless, codec_buf *out,
                               codec_encoded *encoded, dcm_error *err);

int codec_rle_decode(const codec_image *stored, const codec_image *decoded,
                     const uint8_t *data, size_t len, uint8_t *out,
                     size_t out_len, dcm_error *err);
int codec_rle_encode(const codec_image *image, const uint8_t *frame,
                     size_t len, const codec_encode_options *opts,
                     bool lossless, codec_buf *out, codec_encoded *encoded,
                     dcm_error *err);

int codec_jpeg_decode(const codec_image *stored, const codec_image *decoded,
                      const uint8_t *data, size_t len, uint8_t *out,
                      size_t out_len, dcm_error *err);
int codec_jpeg_encode(const codec_image *image, const uint8_t *frame,
                      size_t len, const codec_encode_options *opts,
                      bool lossless, codec_buf *out, codec_encoded *encoded,
                      dcm_error *err);

int codec_jpegls_decode(const codec_image *stored, const codec_image *decoded,
                        const uint8_t *data, size_t len, uint8_t *out,
                        size_t out_len, dcm_error *err);
int codec_jpegls_encode(const codec_image *image, const uint8_t *frame,
                        size_t len, const codec_encode_options *opts,
                        bool lossless, codec_buf *out, codec_encoded *encoded,
                        dcm_error *err);

int codec_j2k_decode(const codec_image *stored, const codec_image *decoded,
                     const uint8_t *data, size_t len, uint8_t *out,
                     size_t out_len, dcm_error *err);
/* What a JPEG 2000 or HTJ2K encoder says of its codestream: RGB with the
 * component transform becomes YBR_RCT (lossless) or YBR_ICT (lossy),
 * PS3.5 8.2.4; interleaved; lossy_method when lossy. */
void codec_j2k_describe(codec_encoded *encoded, bool colour_transform,
                        bool lossless, const char *lossy_method);
int codec_j2k_encode(const codec_image *image, const uint8_t *frame,
                     size_t len, const codec_encode_options *opts,
                     bool lossless, codec_buf *out, codec_encoded *encoded,
                     dcm_error *err);

/* What a JPEG codestream's frame header (SOFn, ISO 10918-1 B.2.2) says. */
typedef struct codec_jpeg_header {
    unsigned marker;    /* 0xC0 .. 0xCF: the process */
    unsigned precision; /* bits per sample */
    uint32_t rows, columns;
    unsigned components;
} codec_jpeg_header;

/* Walks the marker segments from SOI to the first SOFn; DCM_E_INVALID or
 * DCM_E_TRUNCATED if there is none. */
int codec_jpeg_read_header(const uint8_t *data, size_t len,
                           codec_jpeg_header *header, dcm_error *err);

#ifdef SIREN_CODEC_DCMTK
/* JPEG processes libjpeg-turbo 2.1 lacks (12-bit, lossless) through
 * DCMTK's IJG-based decoders (dcmtk_jpeg.cpp). */
int codec_dcmtk_jpeg_decode(const codec_image *stored,
                            const codec_image *decoded,
                            const codec_jpeg_header *header,
                            const uint8_t *data, size_t len, uint8_t *out,
                            size_t out_len, dcm_error *err);
#endif

#ifdef SIREN_CODEC_HTJ2K
/* HTJ2K encoding through OpenJPH (htj2k.cpp, built when it is found). */
int codec_htj2k_encode(const codec_image *image, const uint8_t *frame,
                       size_t len, const codec_encode_options *opts,
                       bool lossless, codec_buf *out, codec_encoded *encoded,
                       dcm_error *err);
/* OpenJPH's decoder, for the lossless check of what codec_htj2k_encode
 * wrote (codec.c); not for codestreams from outside. */
int codec_htj2k_decode(const codec_image *stored, const codec_image *decoded,
                       const uint8_t *data, size_t len, uint8_t *out,
                       size_t out_len, dcm_error *err);
#endif

/* The writer with the 32-bit offset bound as a parameter, so that the
 * Extended Offset Table can be tested without 4 GiB of frames. */
int codec_writer_finish_bounded(codec_writer *w, dcm_dataset *ds,
                                uint64_t max_basic_offset, dcm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_CODEC_INTERNAL_H */
