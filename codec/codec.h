/*
 * codec.h - pixel data of SIREN: image descriptions, frames of native and
 * encapsulated pixel data (PS3.5 8 and A.4), decoding and encoding of
 * frames per transfer syntax, the encapsulation writer and the lossless
 * check.
 *
 * Conventions (as in dicom/dicom.h):
 * - Errors: a fallible function returns 0 (or a pointer) on success and a
 *   negative DCM_E_* code (or NULL) on failure, and fills the dcm_error the
 *   caller passed (which may be NULL).
 * - Ownership: stated at each function; every _free() accepts NULL.
 * - Everything read from a dataset or a codestream is hostile: dimensions,
 *   frame counts and sizes are checked against a codec_limits, with
 *   overflow-safe arithmetic, before anything is allocated for them.
 * - Threads: no global state. The functions are safe from any thread as
 *   long as each codec_source and each dataset is used by one thread at a
 *   time (the libraries below are thread-safe per codec instance).
 *
 * Frame layout. A "frame" in memory is what one frame of native pixel data
 * would hold in Explicit VR Little Endian: samples of bits_allocated bits,
 * little endian, rows by columns, with samples interleaved (planar
 * configuration 0) unless the codec_image that goes with it says 1. Bits
 * allocated 1 means bits packed from the least significant bit, the frame
 * starting at bit 0 of its first byte. YBR_FULL_422 means the subsampled
 * native layout (Y1 Y2 Cb Cr for each pair of pixels, PS3.3 C.7.6.3.1.2).
 * Samples are reduced to their stored bits: signed ones sign-extended to
 * bits_allocated, unsigned ones with the bits above bits_stored clear.
 * Decoders always return planar configuration 0.
 */
#ifndef SIREN_CODEC_H
#define SIREN_CODEC_H

#include "dicom.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Transfer syntaxes this module encodes or decodes
 * ------------------------------------------------------------------------ */

#define CODEC_TS_RLE "1.2.840.10008.1.2.5"
#define CODEC_TS_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define CODEC_TS_JPEG_EXTENDED "1.2.840.10008.1.2.4.51"
#define CODEC_TS_JPEG_LOSSLESS "1.2.840.10008.1.2.4.57"
#define CODEC_TS_JPEG_LOSSLESS_SV1 "1.2.840.10008.1.2.4.70"
#define CODEC_TS_JPEG_LS_LOSSLESS "1.2.840.10008.1.2.4.80"
#define CODEC_TS_JPEG_LS_NEAR_LOSSLESS "1.2.840.10008.1.2.4.81"
#define CODEC_TS_J2K_LOSSLESS "1.2.840.10008.1.2.4.90"
#define CODEC_TS_J2K "1.2.840.10008.1.2.4.91"
#define CODEC_TS_HTJ2K_LOSSLESS "1.2.840.10008.1.2.4.201"
#define CODEC_TS_HTJ2K_LOSSLESS_RPCL "1.2.840.10008.1.2.4.202"
#define CODEC_TS_HTJ2K "1.2.840.10008.1.2.4.203"

/* Whether this build decodes / encodes pixel data of the transfer syntax
 * with this UID. Native syntaxes (implicit, explicit, big endian,
 * deflated) count as decodable. JPEG Lossless and 12-bit JPEG decode only
 * when the DCMTK adapter was built, HTJ2K encodes only with OpenJPH's. */
bool codec_can_decode(const char *ts_uid);
bool codec_can_encode(const char *ts_uid);

/* ------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------ */

typedef struct codec_limits {
    uint32_t max_rows;               /* at most 65535 (Rows is US) */
    uint32_t max_columns;            /* at most 65535 */
    uint32_t max_frames;             /* Number of Frames */
    uint64_t max_frame_bytes;        /* one decoded frame in memory */
    uint64_t max_total_bytes;        /* all decoded frames of one image */
    uint64_t max_encoded_frame_bytes; /* one frame's codestream in memory */
} codec_limits;

#define CODEC_DEFAULT_MAX_ROWS 65535u
#define CODEC_DEFAULT_MAX_COLUMNS 65535u
#define CODEC_DEFAULT_MAX_FRAMES 65535u
#define CODEC_DEFAULT_MAX_FRAME_BYTES (512ull << 20)         /* 512 MiB */
#define CODEC_DEFAULT_MAX_TOTAL_BYTES (8ull << 30)           /* 8 GiB */
#define CODEC_DEFAULT_MAX_ENCODED_FRAME_BYTES (512ull << 20) /* 512 MiB */

/* The defaults above. */
void codec_limits_default(codec_limits *limits);

/* ------------------------------------------------------------------------
 * Image description (PS3.3 C.7.6.3 Image Pixel Module)
 * ------------------------------------------------------------------------ */

typedef enum codec_photometric {
    CODEC_PI_UNKNOWN = 0,
    CODEC_PI_MONOCHROME1,
    CODEC_PI_MONOCHROME2,
    CODEC_PI_PALETTE_COLOR,
    CODEC_PI_RGB,
    CODEC_PI_YBR_FULL,
    CODEC_PI_YBR_FULL_422,
    CODEC_PI_YBR_RCT, /* JPEG 2000 reversible colour transform */
    CODEC_PI_YBR_ICT, /* JPEG 2000 irreversible colour transform */
} codec_photometric;

/* The defined term ("MONOCHROME2", ...), "" for CODEC_PI_UNKNOWN. */
const char *codec_photometric_name(codec_photometric pi);
/* The value for a defined term (trailing spaces ignored), or
 * CODEC_PI_UNKNOWN. */
codec_photometric codec_photometric_parse(const char *text);

typedef struct codec_image {
    uint32_t rows, columns;
    uint16_t samples_per_pixel;    /* 1 or 3 */
    uint16_t bits_allocated;       /* 1, 8, 16 or 32 */
    uint16_t bits_stored;          /* 1 .. bits_allocated */
    uint16_t high_bit;             /* bits_stored - 1 */
    uint16_t pixel_representation; /* 0 unsigned, 1 two's complement */
    uint16_t planar_configuration; /* 0 interleaved, 1 by plane */
    codec_photometric photometric;
    uint32_t frames;               /* Number of Frames, 1 when absent */
} codec_image;

/* Reads the Image Pixel attributes of ds into *image and checks them
 * (codec_image_check). Nothing is allocated. limits NULL: the defaults. */
int codec_image_from_dataset(const dcm_dataset *ds,
                             const codec_limits *limits, codec_image *image,
                             dcm_error *err);
/* Checks an image description: values the standard allows together
 * (photometric against samples per pixel, high bit = bits stored - 1, ...)
 * and within limits, the frame and total sizes computed without overflow.
 * DCM_E_INVALID, DCM_E_UNSUPPORTED or DCM_E_LIMIT say which. */
int codec_image_check(const codec_image *image, const codec_limits *limits,
                      dcm_error *err);
/* Bytes one frame of image takes in the layout described at the top (for
 * bits allocated 1: the bytes that hold its bits). DCM_E_LIMIT if that
 * exceeds SIZE_MAX. */
int codec_frame_bytes(const codec_image *image, size_t *bytes,
                      dcm_error *err);

/* ------------------------------------------------------------------------
 * Frames of a dataset's pixel data
 * ------------------------------------------------------------------------ */

typedef struct codec_source codec_source;

/* Opens the pixel data (7FE0,0010) of ds in the transfer syntax that ds
 * holds (dcm_dataset_syntax): checks the image description, that native
 * pixel data is as long as its frames, and for encapsulated pixel data
 * maps fragments to frames (Extended Offset Table, else Basic Offset
 * Table, else one fragment per frame when the counts match, else frames
 * ending with an EOI/EOC marker for JPEG, JPEG-LS and JPEG 2000 syntaxes).
 * Nothing of the pixel data is read into memory beyond the offset tables
 * and a few marker bytes. ds is borrowed and must outlive the source and
 * stay unmodified; limits is copied (NULL: the defaults). Owned by the
 * caller: codec_source_free(). */
codec_source *codec_source_open(const dcm_dataset *ds,
                                const codec_limits *limits, dcm_error *err);
void codec_source_free(codec_source *src);

/* The image as stored (borrowed, lives as long as src). */
const codec_image *codec_source_image(const codec_source *src);
/* The transfer syntax of the pixel data (never NULL). */
const dcm_ts *codec_source_syntax(const codec_source *src);

/* Native pixel data: copies frame index as stored (planar configuration
 * as the image says) into buf, which holds codec_frame_bytes() bytes.
 * Reads only that frame's bytes from the dataset's source. DCM_E_ARG for
 * encapsulated pixel data. */
int codec_source_read_native(const codec_source *src, uint32_t index,
                             void *buf, size_t len, dcm_error *err);
/* Encapsulated pixel data: the codestream of frame index, its fragments
 * joined, into a new buffer (*data owned by the caller: free()).
 * DCM_E_ARG for native pixel data. */
int codec_source_read_encoded(const codec_source *src, uint32_t index,
                              uint8_t **data, size_t *len, dcm_error *err);
/* Any syntax: frame index decoded into a new buffer in the layout at the
 * top, planar configuration 0 (*data owned by the caller: free()), and
 * *decoded describing it (photometric after any colour conversion the
 * codec did, e.g. YBR_FULL_422 JPEG -> RGB). */
int codec_source_decode(const codec_source *src, uint32_t index,
                        uint8_t **data, size_t *len, codec_image *decoded,
                        dcm_error *err);

/* ------------------------------------------------------------------------
 * Decoding and encoding one frame
 * ------------------------------------------------------------------------ */

/* Decodes one frame's codestream (data, len: borrowed) of transfer syntax
 * ts_uid for an image described by stored (the dataset's attributes) into
 * a new buffer (*out owned by the caller: free()). The codestream's own
 * dimensions, components and precision must agree with stored, else
 * DCM_E_INVALID; the output is allocated only after that check, within
 * limits (NULL: the defaults). *decoded describes the output (planar
 * configuration 0, frames 1). */
int codec_decode_frame(const char *ts_uid, const codec_image *stored,
                       const uint8_t *data, size_t len,
                       const codec_limits *limits, uint8_t **out,
                       size_t *out_len, codec_image *decoded, dcm_error *err);

typedef struct codec_encode_options {
    int quality;          /* JPEG Baseline: 1-100 (0: 90) */
    int near_lossless;    /* JPEG-LS .81: NEAR, the largest error (0: 2) */
    double ratio;         /* JPEG 2000 .91 / HTJ2K .203: compression ratio
                             (e.g. 10 for 10:1) of the frame's bytes as
                             stored (bits allocated); 0: use psnr */
    double psnr_db;       /* JPEG 2000 .91 / HTJ2K .203: target quality when
                             ratio is 0 (0: 45 dB) */
} codec_encode_options;

/* What an encoder made. */
typedef struct codec_encoded {
    codec_image image;       /* the attributes to write with it: e.g.
                                photometric YBR_FULL_422 for colour JPEG
                                Baseline, YBR_RCT for JPEG 2000 lossless
                                colour; planar configuration 0 */
    bool lossy;              /* Lossy Image Compression (0028,2110) 01 */
    const char *lossy_method; /* (0028,2114) "ISO_10918_1", ... when lossy */
} codec_encoded;

/* Encodes one frame (frame, len: borrowed, in the layout at the top with
 * planar configuration 0 for colour) described by image into transfer
 * syntax ts_uid. *out (owned by the caller: free()) is the codestream,
 * not yet padded to even length (codec_writer pads). options NULL: the
 * defaults. DCM_E_UNSUPPORTED for an image the syntax cannot carry (e.g.
 * 16-bit JPEG Baseline). */
int codec_encode_frame(const char *ts_uid, const codec_image *image,
                       const uint8_t *frame, size_t len,
                       const codec_encode_options *options, uint8_t **out,
                       size_t *out_len, codec_encoded *encoded,
                       dcm_error *err);

/* The lossless check run before an instance moves on: decodes encoded (a
 * codestream of ts_uid with the attributes encoded_image, as the encoder
 * returned them) with the encoder's own library (OpenJPH for HTJ2K, where
 * codec_decode_frame uses OpenJPEG) and compares it with the
 * original frame (image, frame, len as given to codec_encode_frame): every
 * sample's stored bits (bits_stored, sign included) must be equal. A
 * mismatch is DCM_E_INVALID naming the first differing sample. */
int codec_verify_lossless(const char *ts_uid, const codec_image *image,
                          const uint8_t *frame, size_t len,
                          const uint8_t *encoded, size_t encoded_len,
                          const codec_image *encoded_image,
                          const codec_limits *limits, dcm_error *err);

/* ------------------------------------------------------------------------
 * Writing encapsulated pixel data (PS3.5 A.4)
 * ------------------------------------------------------------------------ */

typedef struct codec_writer codec_writer;

/* Starts new encapsulated Pixel Data (OB) for frames of ts_uid (an
 * encapsulated syntax). Nothing is changed in any dataset until
 * codec_writer_finish. Owned by the caller: codec_writer_free(). */
codec_writer *codec_writer_new(const char *ts_uid, dcm_error *err);
/* Adds one frame as one fragment (data copied), padded to even length as
 * the syntax asks: JPEG and JPEG-LS with an FFH fill byte before the EOI
 * marker, others with a trailing 00H. */
int codec_writer_add_frame(codec_writer *w, const uint8_t *data, size_t len,
                           dcm_error *err);
/* Replaces Pixel Data of ds with the frames added so far: a Basic Offset
 * Table when every offset fits in 32 bits, else an empty one and an
 * Extended Offset Table (7FE0,0001) with its lengths (7FE0,0002); any
 * stale offset tables are removed; the dataset's syntax is set to
 * ts_uid. On failure ds is left without Pixel Data (never with half of
 * it). The frames stay in the writer too until codec_writer_free(). */
int codec_writer_finish(codec_writer *w, dcm_dataset *ds, dcm_error *err);
void codec_writer_free(codec_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* SIREN_CODEC_H */
