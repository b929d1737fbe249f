/* ts.c - the transfer syntaxes of PS3.6 Annex A and how each encodes data. */
#include "internal.h"

#include <string.h>

/* Columns: explicit VR, big endian, deflated, encapsulated, retired. */
#define NATIVE(uid, name) {uid, name, true, false, false, false, false}
#define ENCAPS(uid, name) {uid, name, true, false, false, true, false}
#define ENCAPS_RETIRED(uid, name) {uid, name, true, false, false, true, true}

static const dcm_ts ts_table[] = {
    {DCM_TS_IMPLICIT_LE, "Implicit VR Little Endian",
     false, false, false, false, false},
    NATIVE(DCM_TS_EXPLICIT_LE, "Explicit VR Little Endian"),
    ENCAPS("1.2.840.10008.1.2.1.98",
           "Encapsulated Uncompressed Explicit VR Little Endian"),
    {DCM_TS_DEFLATED_LE, "Deflated Explicit VR Little Endian",
     true, false, true, false, false},
    {DCM_TS_EXPLICIT_BE, "Explicit VR Big Endian",
     true, true, false, false, true},
    ENCAPS("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"),
    ENCAPS("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.53",
                   "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.54",
                   "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.55",
                   "JPEG Full Progression, Non-Hierarchical (Process 10 & 12)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.56",
                   "JPEG Full Progression, Non-Hierarchical (Process 11 & 13)"),
    ENCAPS("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.58",
                   "JPEG Lossless, Non-Hierarchical (Process 15)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.59",
                   "JPEG Extended, Hierarchical (Process 16 & 18)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.60",
                   "JPEG Extended, Hierarchical (Process 17 & 19)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.61",
                   "JPEG Spectral Selection, Hierarchical (Process 20 & 22)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.62",
                   "JPEG Spectral Selection, Hierarchical (Process 21 & 23)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.63",
                   "JPEG Full Progression, Hierarchical (Process 24 & 26)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.64",
                   "JPEG Full Progression, Hierarchical (Process 25 & 27)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.65",
                   "JPEG Lossless, Hierarchical (Process 28)"),
    ENCAPS_RETIRED("1.2.840.10008.1.2.4.66",
                   "JPEG Lossless, Hierarchical (Process 29)"),
    ENCAPS("1.2.840.10008.1.2.4.70",
           "JPEG Lossless, Non-Hierarchical, First-Order Prediction "
           "(Process 14 [Selection Value 1])"),
    ENCAPS("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression"),
    ENCAPS("1.2.840.10008.1.2.4.81",
           "JPEG-LS Lossy (Near-Lossless) Image Compression"),
    ENCAPS("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)"),
    ENCAPS("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression"),
    ENCAPS("1.2.840.10008.1.2.4.92",
           "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)"),
    ENCAPS("1.2.840.10008.1.2.4.93",
           "JPEG 2000 Part 2 Multi-component Image Compression"),
    NATIVE("1.2.840.10008.1.2.4.94", "JPIP Referenced"),
    {"1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate",
     true, false, true, false, false},
    ENCAPS("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
    ENCAPS("1.2.840.10008.1.2.4.100.1",
           "Fragmentable MPEG2 Main Profile / Main Level"),
    ENCAPS("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level"),
    ENCAPS("1.2.840.10008.1.2.4.101.1",
           "Fragmentable MPEG2 Main Profile / High Level"),
    ENCAPS("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
    ENCAPS("1.2.840.10008.1.2.4.102.1",
           "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1"),
    ENCAPS("1.2.840.10008.1.2.4.103",
           "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1"),
    ENCAPS("1.2.840.10008.1.2.4.103.1",
           "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1"),
    ENCAPS("1.2.840.10008.1.2.4.104",
           "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video"),
    ENCAPS("1.2.840.10008.1.2.4.104.1",
           "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video"),
    ENCAPS("1.2.840.10008.1.2.4.105",
           "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video"),
    ENCAPS("1.2.840.10008.1.2.4.105.1",
           "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video"),
    ENCAPS("1.2.840.10008.1.2.4.106",
           "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2"),
    ENCAPS("1.2.840.10008.1.2.4.106.1",
           "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2"),
    ENCAPS("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1"),
    ENCAPS("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1"),
    ENCAPS("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ENCAPS("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
    ENCAPS("1.2.840.10008.1.2.4.112", "JPEG XL"),
    ENCAPS("1.2.840.10008.1.2.4.201",
           "High-Throughput JPEG 2000 Image Compression (Lossless Only)"),
    ENCAPS("1.2.840.10008.1.2.4.202",
           "High-Throughput JPEG 2000 with RPCL Options Image Compression "
           "(Lossless Only)"),
    ENCAPS("1.2.840.10008.1.2.4.203",
           "High-Throughput JPEG 2000 Image Compression"),
    NATIVE("1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced"),
    {"1.2.840.10008.1.2.4.205", "JPIP HTJ2K Referenced Deflate",
     true, false, true, false, false},
    ENCAPS("1.2.840.10008.1.2.5", "RLE Lossless"),
    NATIVE("1.2.840.10008.1.2.7.1",
           "SMPTE ST 2110-20 Uncompressed Progressive Active Video"),
    NATIVE("1.2.840.10008.1.2.7.2",
           "SMPTE ST 2110-20 Uncompressed Interlaced Active Video"),
    NATIVE("1.2.840.10008.1.2.7.3", "SMPTE ST 2110-30 PCM Digital Audio"),
    ENCAPS("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression"),
};

const dcm_ts *dcm_ts_find(const char *uid)
{
    if (!uid)
        return NULL;
    /* UI values are padded with NUL to even length; spaces are a common
     * (invalid) variant that DCMTK tolerates too. */
    size_t len = strlen(uid);
    while (len > 0 && (uid[len - 1] == ' ' || uid[len - 1] == '\0'))
        len--;
    for (size_t i = 0; i < sizeof ts_table / sizeof ts_table[0]; i++) {
        const char *known = ts_table[i].uid;
        if (strlen(known) == len && memcmp(known, uid, len) == 0)
            return &ts_table[i];
    }
    return NULL;
}

const char *const dcm_default_ts_preference[] = {
    DCM_TS_EXPLICIT_LE,
    DCM_TS_IMPLICIT_LE,
    DCM_TS_DEFLATED_LE,
    "1.2.840.10008.1.2.4.70",   /* JPEG Lossless SV1 */
    "1.2.840.10008.1.2.4.57",   /* JPEG Lossless */
    "1.2.840.10008.1.2.4.80",   /* JPEG-LS Lossless */
    "1.2.840.10008.1.2.4.90",   /* JPEG 2000 Lossless */
    "1.2.840.10008.1.2.4.201",  /* HTJ2K Lossless */
    "1.2.840.10008.1.2.4.202",  /* HTJ2K Lossless RPCL */
    "1.2.840.10008.1.2.5",      /* RLE Lossless */
    "1.2.840.10008.1.2.4.92",   /* JPEG 2000 Part 2 Lossless */
    "1.2.840.10008.1.2.4.110",  /* JPEG XL Lossless */
    "1.2.840.10008.1.2.8.1",    /* Deflated Image Frame Compression */
    "1.2.840.10008.1.2.1.98",   /* Encapsulated Uncompressed */
    "1.2.840.10008.1.2.4.50",   /* JPEG Baseline */
    "1.2.840.10008.1.2.4.51",   /* JPEG Extended */
    "1.2.840.10008.1.2.4.81",   /* JPEG-LS Near-Lossless */
    "1.2.840.10008.1.2.4.91",   /* JPEG 2000 */
    "1.2.840.10008.1.2.4.93",   /* JPEG 2000 Part 2 */
    "1.2.840.10008.1.2.4.203",  /* HTJ2K */
    "1.2.840.10008.1.2.4.111",  /* JPEG XL JPEG Recompression */
    "1.2.840.10008.1.2.4.112",  /* JPEG XL */
    "1.2.840.10008.1.2.4.100",  /* MPEG2 MP@ML */
    "1.2.840.10008.1.2.4.100.1",
    "1.2.840.10008.1.2.4.101",  /* MPEG2 MP@HL */
    "1.2.840.10008.1.2.4.101.1",
    "1.2.840.10008.1.2.4.102",  /* MPEG-4 AVC/H.264 */
    "1.2.840.10008.1.2.4.102.1",
    "1.2.840.10008.1.2.4.103",
    "1.2.840.10008.1.2.4.103.1",
    "1.2.840.10008.1.2.4.104",
    "1.2.840.10008.1.2.4.104.1",
    "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.105.1",
    "1.2.840.10008.1.2.4.106",
    "1.2.840.10008.1.2.4.106.1",
    "1.2.840.10008.1.2.4.107",  /* HEVC/H.265 Main */
    "1.2.840.10008.1.2.4.108",  /* HEVC/H.265 Main 10 */
    DCM_TS_EXPLICIT_BE,
};

const size_t dcm_default_ts_preference_count =
    sizeof dcm_default_ts_preference / sizeof dcm_default_ts_preference[0];
