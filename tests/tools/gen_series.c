/* gen_series - writes synthetic DICOM test data with the data core:
 *
 *   gen_series ct OUTDIR COUNT         COUNT CT Image Storage instances
 *   gen_series multiframe OUT FRAMES   one Enhanced CT file of FRAMES frames
 *
 * Both write Explicit VR Little Endian, 512x512 pixels of 16 bits allocated
 * and 12 stored (MONOCHROME2, CT numbers stored as HU + 1024), with a
 * deterministic phantom-like picture (body, lungs, spine, a lesion) that
 * changes from slice to slice. Each run makes fresh Study, Series, Frame of
 * Reference and SOP Instance UIDs; everything else is the same every time.
 *
 * The headers carry FAKE patient data on purpose - names, IDs, dates, an
 * address, institution and staff, free text, a private block and nested
 * sequences that repeat it - so that de-identification tests can check
 * that none of it survives. No real person is described.
 *
 * The CT files are OUTDIR/CT000001.dcm ... (OUTDIR is created if needed).
 * The multi-frame file holds its whole pixel value in memory twice while
 * it is built (the data core copies values): 2 x FRAMES x 512 KiB.
 * Exit status: 0 written, 1 failure (message on stderr), 2 usage. */
#include "dicom.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROWS 512
#define COLUMNS 512
#define FRAME_BYTES ((size_t)ROWS * COLUMNS * 2)
#define CT_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define ENHANCED_CT_IMAGE_STORAGE "1.2.840.10008.5.1.4.1.1.2.1"
/* An OW value must stay below the 0xFFFFFFFF (undefined) length. */
#define MAX_FRAMES ((size_t)(0xFFFFFFFEu / FRAME_BYTES))

/* Slice spacing and the position of the first slice, in mm. */
#define SLICE_MM 1.25
#define FIRST_SLICE_Z_MM (-100.0)

static const char *program = "gen_series";

static void die(const char *what, const dcm_error *err)
{
    fprintf(stderr, "%s: %s: %s\n", program, what,
            err && err->message[0] ? err->message : "failed");
    exit(1);
}

/* ---- setting attributes by keyword ----------------------------------------- */

static uint32_t tag_of(const char *keyword, dcm_vr *vr)
{
    const dcm_dict_entry *entry = dcm_dict_find_keyword(keyword);
    if (!entry) {
        fprintf(stderr, "%s: %s is not in the dictionary\n", program, keyword);
        exit(1);
    }
    if (vr)
        *vr = entry->vr;
    return entry->tag;
}

/* A string attribute with the dictionary's VR. */
static void put(dcm_dataset *ds, const char *keyword, const char *text)
{
    dcm_vr vr;
    uint32_t tag = tag_of(keyword, &vr);
    if (!dcm_vr_is_string(vr)) {
        fprintf(stderr, "%s: %s is %s, not a string\n", program, keyword,
                dcm_vr_name(vr));
        exit(1);
    }
    dcm_error err = {0};
    if (dcm_dataset_set_string(ds, tag, vr, text, &err) < 0)
        die(keyword, &err);
}

static void putf(dcm_dataset *ds, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void putf(dcm_dataset *ds, const char *keyword, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof text) {
        fprintf(stderr, "%s: %s: value too long\n", program, keyword);
        exit(1);
    }
    put(ds, keyword, text);
}

static void put_us(dcm_dataset *ds, const char *keyword, uint16_t value)
{
    uint8_t bytes[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    dcm_error err = {0};
    if (dcm_dataset_set_bytes(ds, tag_of(keyword, NULL), DCM_VR_US, bytes,
                              sizeof bytes, &err) < 0)
        die(keyword, &err);
}

static void put_ul_values(dcm_dataset *ds, const char *keyword,
                          const uint32_t *values, size_t count)
{
    uint8_t bytes[4 * 4];
    if (count > 4)
        abort();
    for (size_t i = 0; i < count; i++)
        for (int b = 0; b < 4; b++)
            bytes[4 * i + (size_t)b] = (uint8_t)(values[i] >> (8 * b));
    dcm_error err = {0};
    if (dcm_dataset_set_bytes(ds, tag_of(keyword, NULL), DCM_VR_UL, bytes,
                              4 * count, &err) < 0)
        die(keyword, &err);
}

static void put_fd(dcm_dataset *ds, const char *keyword, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint8_t bytes[8];
    for (int b = 0; b < 8; b++)
        bytes[b] = (uint8_t)(bits >> (8 * b));
    dcm_error err = {0};
    if (dcm_dataset_set_bytes(ds, tag_of(keyword, NULL), DCM_VR_FD, bytes,
                              sizeof bytes, &err) < 0)
        die(keyword, &err);
}

/* An AT attribute naming the tag of another keyword. */
static void put_at(dcm_dataset *ds, const char *keyword, const char *target)
{
    uint32_t value = tag_of(target, NULL);
    uint16_t group = DCM_TAG_GROUP(value), element = DCM_TAG_ELEMENT(value);
    uint8_t bytes[4] = {(uint8_t)group, (uint8_t)(group >> 8),
                        (uint8_t)element, (uint8_t)(element >> 8)};
    dcm_error err = {0};
    if (dcm_dataset_set_bytes(ds, tag_of(keyword, NULL), DCM_VR_AT, bytes,
                              sizeof bytes, &err) < 0)
        die(keyword, &err);
}

/* A private element (explicit VR: the VR travels with it). */
static void put_private(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                        const char *text)
{
    dcm_error err = {0};
    if (dcm_dataset_set_string(ds, tag, vr, text, &err) < 0)
        die("private element", &err);
}

/* A new sequence of one item; returns the item (borrowed). */
static dcm_dataset *one_item(dcm_dataset *ds, const char *keyword)
{
    dcm_error err = {0};
    dcm_element *seq = dcm_dataset_set_sequence(ds, tag_of(keyword, NULL), &err);
    dcm_dataset *item = seq ? dcm_element_append_item(seq, &err) : NULL;
    if (!item)
        die(keyword, &err);
    return item;
}

static void fresh_uid(char uid[DCM_UID_MAX + 1])
{
    dcm_error err = {0};
    if (dcm_uid_generate(uid, &err) < 0)
        die("new UID", &err);
}

/* ---- the fake patient, study and equipment ------------------------------ */

typedef struct study {
    char study_uid[DCM_UID_MAX + 1];
    char series_uid[DCM_UID_MAX + 1];
    char frame_of_reference_uid[DCM_UID_MAX + 1];
} study;

static void new_study(study *s)
{
    fresh_uid(s->study_uid);
    fresh_uid(s->series_uid);
    fresh_uid(s->frame_of_reference_uid);
}

/* Patient, study, series, equipment and the private block: everything that
 * identifies someone, the same in every instance of the series. */
static void put_common(dcm_dataset *ds, const study *s, const char *sop_class,
                       const char *sop_instance)
{
    put(ds, "SpecificCharacterSet", "ISO_IR 100");
    put(ds, "InstanceCreationDate", "20240315");
    put(ds, "InstanceCreationTime", "101544");
    put(ds, "SOPClassUID", sop_class);
    put(ds, "SOPInstanceUID", sop_instance);
    put(ds, "StudyDate", "20240315");
    put(ds, "SeriesDate", "20240315");
    put(ds, "AcquisitionDate", "20240315");
    put(ds, "ContentDate", "20240315");
    put(ds, "StudyTime", "101203");
    put(ds, "SeriesTime", "101410");
    put(ds, "AcquisitionTime", "101412.250000");
    put(ds, "ContentTime", "101412.250000");
    put(ds, "AccessionNumber", "A20240315-0042");
    put(ds, "Modality", "CT");
    put(ds, "Manufacturer", "SIREN Synthetic Imaging");
    put(ds, "InstitutionName", "Example General Hospital");
    put(ds, "InstitutionAddress", "12 Sample Street, Springfield 99999");
    put(ds, "ReferringPhysicianName", "Smith^John^^Dr.");
    put(ds, "StationName", "CTSCAN01");
    put(ds, "StudyDescription", "CT THORAX W/O CONTRAST");
    put(ds, "SeriesDescription", "Thorax 1.25mm STANDARD");
    put(ds, "InstitutionalDepartmentName", "Radiology");
    put(ds, "PerformingPhysicianName", "Jones^Mary");
    put(ds, "OperatorsName", "Miller^Alex");
    put(ds, "ManufacturerModelName", "PHANTOM 5000");

    put(ds, "PatientName", "Testperson^Erika^Maria");
    put(ds, "PatientID", "SIREN-000123");
    put(ds, "IssuerOfPatientID", "EXAMPLE GENERAL");
    put(ds, "PatientBirthDate", "19580704");
    put(ds, "PatientSex", "F");
    dcm_dataset *other_id = one_item(ds, "OtherPatientIDsSequence");
    put(other_id, "PatientID", "MRN-4471-99");
    put(other_id, "IssuerOfPatientID", "SPRINGFIELD CLINIC");
    put(other_id, "TypeOfPatientID", "TEXT");
    put(ds, "PatientAge", "065Y");
    put(ds, "PatientSize", "1.68");
    put(ds, "PatientWeight", "71.5");
    put(ds, "PatientAddress", "7 Imaginary Lane^^Springfield^^99999");
    put(ds, "PatientTelephoneNumbers", "+1 555 0100 123");
    put(ds, "AdditionalPatientHistory",
        "Erika Testperson, born 1958-07-04, referred by Dr. Smith.");

    put(ds, "BodyPartExamined", "CHEST");
    put(ds, "KVP", "120");
    put(ds, "DeviceSerialNumber", "SN-0815-4711");
    put(ds, "SoftwareVersions", "gen_series 1");
    put(ds, "ProtocolName", "THORAX ROUTINE");
    put(ds, "PatientPosition", "HFS");

    put(ds, "StudyInstanceUID", s->study_uid);
    put(ds, "SeriesInstanceUID", s->series_uid);
    put(ds, "StudyID", "S0042");
    put(ds, "SeriesNumber", "3");
    put(ds, "FrameOfReferenceUID", s->frame_of_reference_uid);
    put(ds, "PositionReferenceIndicator", "SN");

    put(ds, "PerformedProcedureStepStartDate", "20240315");
    put(ds, "PerformedProcedureStepStartTime", "101203");
    put(ds, "PerformedProcedureStepID", "PPS-88121");
    dcm_dataset *request = one_item(ds, "RequestAttributesSequence");
    put(request, "AccessionNumber", "A20240315-0042");
    put(request, "RequestedProcedureID", "RP-88121");
    put(request, "ScheduledProcedureStepID", "SPS-88121");
    put(request, "RequestedProcedureDescription", "CT THORAX W/O CONTRAST");

    /* A private block that repeats the identity, as some vendors do. */
    put_private(ds, DCM_TAG(0x0009, 0x0010), DCM_VR_LO, "SIREN SYNTHETIC PHI");
    put_private(ds, DCM_TAG(0x0009, 0x1001), DCM_VR_LO,
                "Testperson^Erika^Maria");
    put_private(ds, DCM_TAG(0x0009, 0x1002), DCM_VR_DA, "19580704");
    put_private(ds, DCM_TAG(0x0009, 0x1003), DCM_VR_LT,
                "MRN SIREN-000123 scanned at Example General Hospital");
}

/* Pixel module attributes shared by both kinds of output. */
static void put_pixel_module(dcm_dataset *ds)
{
    put_us(ds, "SamplesPerPixel", 1);
    put(ds, "PhotometricInterpretation", "MONOCHROME2");
    put_us(ds, "Rows", ROWS);
    put_us(ds, "Columns", COLUMNS);
    put_us(ds, "BitsAllocated", 16);
    put_us(ds, "BitsStored", 12);
    put_us(ds, "HighBit", 11);
    put_us(ds, "PixelRepresentation", 0);
}

/* ---- pixels ------------------------------------------------------------------- */

/* Deterministic noise in [-20, 20] HU from a hash of the position. */
static int noise_hu(uint32_t x, uint32_t y, uint32_t z)
{
    uint32_t h = x * 0x9E3779B1u ^ y * 0x85EBCA77u ^ z * 0xC2B2AE3Du;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return (int)(h % 41u) - 20;
}

static bool inside(double x, double y, double cx, double cy, double rx,
                   double ry)
{
    double dx = (x - cx) / rx, dy = (y - cy) / ry;
    return dx * dx + dy * dy <= 1.0;
}

/* One slice of the phantom: t in [0, 1] is the position along the body.
 * Stored values are HU + 1024, clamped to 12 bits. */
static void phantom_slice(uint16_t *pixels, uint32_t slice, double t)
{
    double body_rx = 190.0 + 20.0 * t, body_ry = 140.0 + 10.0 * t;
    double lung_rx = 55.0 + 25.0 * t, lung_ry = 85.0 + 20.0 * t;
    double lesion_r = 18.0 * (1.0 - 4.0 * (t - 0.5) * (t - 0.5));
    for (uint32_t y = 0; y < ROWS; y++) {
        for (uint32_t x = 0; x < COLUMNS; x++) {
            double px = x, py = y;
            int hu = -1000; /* air */
            if (py > 430.0 && py < 440.0 && px > 60.0 && px < 452.0)
                hu = 300; /* the table */
            if (inside(px, py, 256, 250, body_rx, body_ry)) {
                hu = 40; /* soft tissue */
                if (!inside(px, py, 256, 250, body_rx - 12, body_ry - 12))
                    hu = -90; /* fat under the skin */
                if (inside(px, py, 180, 235, lung_rx, lung_ry) ||
                    inside(px, py, 332, 235, lung_rx, lung_ry))
                    hu = -850; /* lungs */
                if (lesion_r > 0 && inside(px, py, 330, 210, lesion_r, lesion_r))
                    hu = 60; /* a nodule in the left lung */
                if (inside(px, py, 256, 350, 22, 20))
                    hu = 700; /* vertebra */
                else if (inside(px, py, 256, 350, 30, 28))
                    hu = 400; /* cortical rim */
                if (inside(px, py, 256, 200, 45, 40) && t > 0.3 && t < 0.8)
                    hu = 45; /* heart */
            }
            int stored = hu + 1024 + noise_hu(x, y, slice);
            if (stored < 0)
                stored = 0;
            if (stored > 4095)
                stored = 4095;
            pixels[(size_t)y * COLUMNS + x] = (uint16_t)stored;
        }
    }
}

/* Native pixel data is little endian whatever the host. */
static void to_little_endian(uint16_t *pixels, size_t count)
{
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe == 1)
        return;
    for (size_t i = 0; i < count; i++)
        pixels[i] = (uint16_t)(pixels[i] << 8 | pixels[i] >> 8);
}

static void put_pixel_data(dcm_dataset *ds, const uint16_t *pixels,
                           size_t bytes)
{
    dcm_error err = {0};
    if (dcm_dataset_set_bytes(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, pixels, bytes,
                              &err) < 0)
        die("PixelData", &err);
}

static void write_file(const dcm_dataset *ds, const char *path)
{
    dcm_error err = {0};
    if (dcm_write_file_path(ds, NULL, path, &err) < 0)
        die(path, &err);
}

/* ---- CT Image Storage series ----------------------------------------------- */

static void put_ct_instance(dcm_dataset *ds, size_t index, size_t count)
{
    put(ds, "ImageType", "ORIGINAL\\PRIMARY\\AXIAL");
    double z = FIRST_SLICE_Z_MM + SLICE_MM * (double)index;
    put(ds, "SliceThickness", "1.25");
    put(ds, "DataCollectionDiameter", "500");
    put(ds, "ReconstructionDiameter", "360");
    put(ds, "GantryDetectorTilt", "0");
    put(ds, "TableHeight", "160");
    put(ds, "RotationDirection", "CW");
    put(ds, "ExposureTime", "500");
    put(ds, "XRayTubeCurrent", "180");
    put(ds, "Exposure", "90");
    put(ds, "ConvolutionKernel", "STANDARD");
    putf(ds, "AcquisitionNumber", "%u", 1u);
    putf(ds, "InstanceNumber", "%zu", index + 1);
    putf(ds, "ImagePositionPatient", "-180\\-180\\%.2f", z);
    put(ds, "ImageOrientationPatient", "1\\0\\0\\0\\1\\0");
    putf(ds, "SliceLocation", "%.2f", z);
    putf(ds, "ImageComments", "Erika Testperson slice %zu of %zu", index + 1,
         count);
    put_pixel_module(ds);
    put(ds, "PixelSpacing", "0.703125\\0.703125");
    put(ds, "WindowCenter", "40\\-600");
    put(ds, "WindowWidth", "400\\1500");
    put(ds, "RescaleIntercept", "-1024");
    put(ds, "RescaleSlope", "1");
    put(ds, "RescaleType", "HU");
}

static int make_ct_series(const char *dir, size_t count)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", program, dir,
                strerror(errno));
        return 1;
    }
    study s;
    new_study(&s);
    uint16_t *pixels = malloc(FRAME_BYTES);
    if (!pixels)
        die("pixel buffer", NULL);
    for (size_t i = 0; i < count; i++) {
        char uid[DCM_UID_MAX + 1];
        fresh_uid(uid);
        dcm_dataset *ds = dcm_dataset_new();
        if (!ds)
            die("new dataset", NULL);
        put_common(ds, &s, CT_IMAGE_STORAGE, uid);
        put_ct_instance(ds, i, count);
        phantom_slice(pixels, (uint32_t)i,
                      count > 1 ? (double)i / (double)(count - 1) : 0.5);
        to_little_endian(pixels, FRAME_BYTES / 2);
        put_pixel_data(ds, pixels, FRAME_BYTES);
        char path[4096];
        if (snprintf(path, sizeof path, "%s/CT%06zu.dcm", dir, i + 1) >=
            (int)sizeof path) {
            fprintf(stderr, "%s: %s: path too long\n", program, dir);
            return 1;
        }
        write_file(ds, path);
        dcm_dataset_free(ds);
    }
    free(pixels);
    return 0;
}

/* ---- Enhanced CT Image Storage (multi-frame) ------------------------------- */

static void put_enhanced_ct(dcm_dataset *ds, size_t frames)
{
    put(ds, "ImageType", "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
    put(ds, "AcquisitionDateTime", "20240315101412.250000");
    put_fd(ds, "AcquisitionDuration", 8.5);
    put(ds, "ContentQualification", "PRODUCT");
    put(ds, "PixelPresentation", "MONOCHROME");
    put(ds, "VolumetricProperties", "VOLUME");
    put(ds, "VolumeBasedCalculationTechnique", "NONE");
    put(ds, "BurnedInAnnotation", "NO");
    put(ds, "RecognizableVisualFeatures", "NO");
    put(ds, "LossyImageCompression", "00");
    put(ds, "PresentationLUTShape", "IDENTITY");
    put(ds, "InstanceNumber", "1");
    put(ds, "AcquisitionNumber", "1");
    put(ds, "ImageComments", "Erika Testperson, volume for 3D review");
    putf(ds, "NumberOfFrames", "%zu", frames);
    put_pixel_module(ds);

    char dimension_uid[DCM_UID_MAX + 1];
    fresh_uid(dimension_uid);
    dcm_dataset *organization = one_item(ds, "DimensionOrganizationSequence");
    put(organization, "DimensionOrganizationUID", dimension_uid);
    dcm_error err = {0};
    dcm_element *index_seq =
        dcm_dataset_set_sequence(ds, tag_of("DimensionIndexSequence", NULL),
                                 &err);
    if (!index_seq)
        die("DimensionIndexSequence", &err);
    const char *pointers[2] = {"StackID", "InStackPositionNumber"};
    for (int i = 0; i < 2; i++) {
        dcm_dataset *index = dcm_element_append_item(index_seq, &err);
        if (!index)
            die("DimensionIndexSequence", &err);
        put(index, "DimensionOrganizationUID", dimension_uid);
        put_at(index, "DimensionIndexPointer", pointers[i]);
        put_at(index, "FunctionalGroupPointer", "FrameContentSequence");
    }

    /* Type 2: present, empty. */
    if (!dcm_dataset_set_sequence(ds, tag_of("AcquisitionContextSequence", NULL),
                                  &err))
        die("AcquisitionContextSequence", &err);

    dcm_dataset *shared = one_item(ds, "SharedFunctionalGroupsSequence");
    dcm_dataset *measures = one_item(shared, "PixelMeasuresSequence");
    put(measures, "PixelSpacing", "0.703125\\0.703125");
    put(measures, "SliceThickness", "1.25");
    dcm_dataset *orientation = one_item(shared, "PlaneOrientationSequence");
    put(orientation, "ImageOrientationPatient", "1\\0\\0\\0\\1\\0");
    dcm_dataset *transform = one_item(shared, "PixelValueTransformationSequence");
    put(transform, "RescaleIntercept", "-1024");
    put(transform, "RescaleSlope", "1");
    put(transform, "RescaleType", "HU");
    dcm_dataset *voi = one_item(shared, "FrameVOILUTSequence");
    put(voi, "WindowCenter", "40");
    put(voi, "WindowWidth", "400");
    dcm_dataset *frame_type = one_item(shared, "CTImageFrameTypeSequence");
    put(frame_type, "FrameType", "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
    put(frame_type, "PixelPresentation", "MONOCHROME");
    put(frame_type, "VolumetricProperties", "VOLUME");
    put(frame_type, "VolumeBasedCalculationTechnique", "NONE");

    dcm_element *per_frame = dcm_dataset_set_sequence(
        ds, tag_of("PerFrameFunctionalGroupsSequence", NULL), &err);
    if (!per_frame)
        die("PerFrameFunctionalGroupsSequence", &err);
    for (size_t f = 0; f < frames; f++) {
        dcm_dataset *item = dcm_element_append_item(per_frame, &err);
        if (!item)
            die("PerFrameFunctionalGroupsSequence", &err);
        dcm_dataset *content = one_item(item, "FrameContentSequence");
        put(content, "StackID", "1");
        put_ul_values(content, "InStackPositionNumber",
                      (const uint32_t[]){(uint32_t)(f + 1)}, 1);
        put_ul_values(content, "DimensionIndexValues",
                      (const uint32_t[]){1, (uint32_t)(f + 1)}, 2);
        dcm_dataset *position = one_item(item, "PlanePositionSequence");
        putf(position, "ImagePositionPatient", "-180\\-180\\%.2f",
             FIRST_SLICE_Z_MM + SLICE_MM * (double)f);
    }
}

static int make_multiframe(const char *path, size_t frames)
{
    study s;
    new_study(&s);
    char uid[DCM_UID_MAX + 1];
    fresh_uid(uid);
    dcm_dataset *ds = dcm_dataset_new();
    if (!ds)
        die("new dataset", NULL);
    put_common(ds, &s, ENHANCED_CT_IMAGE_STORAGE, uid);
    put_enhanced_ct(ds, frames);
    size_t bytes = frames * FRAME_BYTES;
    uint16_t *pixels = malloc(bytes);
    if (!pixels) {
        fprintf(stderr, "%s: no memory for %zu bytes of pixels\n", program,
                bytes);
        return 1;
    }
    for (size_t f = 0; f < frames; f++)
        phantom_slice(pixels + f * (FRAME_BYTES / 2), (uint32_t)f,
                      frames > 1 ? (double)f / (double)(frames - 1) : 0.5);
    to_little_endian(pixels, bytes / 2);
    put_pixel_data(ds, pixels, bytes);
    free(pixels); /* the dataset holds its own copy */
    write_file(ds, path);
    dcm_dataset_free(ds);
    return 0;
}

/* ---- command line -------------------------------------------------------------- */

static bool parse_count(const char *text, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || value == 0 ||
        value > max)
        return false;
    *out = (size_t)value;
    return true;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: gen_series ct OUTDIR COUNT\n"
            "       gen_series multiframe OUT.dcm FRAMES\n"
            "Writes synthetic 512x512 16-bit CT data with fake patient data\n"
            "(Explicit VR Little Endian). A frame is 512 KiB: 2048 frames\n"
            "make a 1 GiB pixel value (at most %zu frames).\n",
            MAX_FRAMES);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return usage();
    size_t count;
    if (strcmp(argv[1], "ct") == 0) {
        if (!parse_count(argv[3], 99999, &count)) {
            fprintf(stderr, "%s: COUNT must be 1 to 99999\n", program);
            return 2;
        }
        return make_ct_series(argv[2], count);
    }
    if (strcmp(argv[1], "multiframe") == 0) {
        if (!parse_count(argv[3], MAX_FRAMES, &count)) {
            fprintf(stderr, "%s: FRAMES must be 1 to %zu\n", program,
                    MAX_FRAMES);
            return 2;
        }
        return make_multiframe(argv[2], count);
    }
    return usage();
}
