/* cmd_preview.c - "siren preview": one frame of a DICOM file as a PNG,
 * with the rectangles of the policy's redact lines that apply to it
 * shown black, so that a compliance officer can check on a real sample
 * what a redact line removes before it goes live.
 *
 * The rectangles are painted black in the rendered image (black as
 * displayed, whatever the photometric interpretation, window or palette),
 * and the automatic window leaves their pixels out, so that burned-in
 * text or the blank do not squeeze the contrast of the rest. The PNG is
 * written here (PNG is a small container: a signature and CRC-checked
 * chunks) with zlib's deflate, streamed row by row: only the decoded
 * frame is held in memory. */
#include "gateway.h"
#include "sites.h"

#include "codec.h"
#include "dicom.h"
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TAG_WINDOW_CENTER DCM_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH DCM_TAG(0x0028, 0x1051)
#define TAG_RESCALE_INTERCEPT DCM_TAG(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE DCM_TAG(0x0028, 0x1053)
/* Palette Color Lookup Tables (PS3.3 C.7.6.3): descriptors, data, and
 * the segmented form, which the preview does not render. */
#define TAG_PALETTE_DESCRIPTOR(i) DCM_TAG(0x0028, 0x1101 + (i))
#define TAG_PALETTE_DATA(i) DCM_TAG(0x0028, 0x1201 + (i))
#define TAG_SEGMENTED_PALETTE(i) DCM_TAG(0x0028, 0x1221 + (i))

static const char preview_help[] =
    "usage: siren preview --policy FILE -o OUT.png [--frame N]\n"
    "                     [--window CENTER WIDTH] INPUT\n\n"
    "Renders one frame of a DICOM file (native or any compressed syntax\n"
    "this build decodes) as a PNG, with the rectangles of the policy's\n"
    "redact lines that apply to the file painted black, and prints which\n"
    "rectangles those are (policy file:line). Nothing else is drawn.\n\n"
    "  --policy FILE    the policy (as `siren policy check` accepts it)\n"
    "  -o, --output F   the PNG to write\n"
    "  --frame N        the frame to render, from 1 (default 1)\n"
    "  --window C W     window center and width, in rescaled values\n"
    "                   (default: the file's first Window Center/Width;\n"
    "                   without those, the lowest to the highest value of\n"
    "                   the frame outside the rectangles; 8-bit unsigned\n"
    "                   images without a window are shown as stored)\n\n"
    "Grayscale is rescaled (Rescale Slope/Intercept), windowed linearly and\n"
    "inverted for MONOCHROME1; RGB and YBR_FULL are shown in colour;\n"
    "PALETTE COLOR through its lookup tables when they are given whole\n"
    "(segmented palettes are refused).\n\n"
    "Exit status: 0 written, 1 the policy, the file or the frame cannot be\n"
    "rendered (the message says why), 2 usage.\n";

typedef struct preview_options {
    const char *policy, *output, *input;
    uint32_t frame; /* from 1 */
    bool window_given;
    double center, width;
} preview_options;

/* ---- the command line ------------------------------------------------------------ */

static bool parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(text, &end);
    return end != text && !*end && errno == 0 && isfinite(*out);
}

static bool parse_frame(const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || value < 1 ||
        value > UINT32_MAX)
        return false;
    *out = (uint32_t)value;
    return true;
}

/* 0 to go on, PARSE_HELP after --help, else the exit status (what is
 * wrong printed). */
#define PARSE_HELP (-1)
static int parse_args(int argc, char **argv, preview_options *o)
{
    *o = (preview_options){.frame = 1};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(preview_help, stdout);
            return PARSE_HELP;
        } else if (strcmp(arg, "--policy") == 0 && has_value) {
            o->policy = argv[++i];
        } else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) &&
                   has_value) {
            o->output = argv[++i];
        } else if (strcmp(arg, "--frame") == 0 && has_value) {
            if (!parse_frame(argv[++i], &o->frame)) {
                fprintf(stderr, "siren preview: --frame takes a frame "
                                "number from 1, not '%s'\n", argv[i]);
                return GW_EXIT_USAGE;
            }
        } else if (strcmp(arg, "--window") == 0 && i + 2 < argc) {
            if (!parse_double(argv[i + 1], &o->center) ||
                !parse_double(argv[i + 2], &o->width) || o->width < 1) {
                fprintf(stderr, "siren preview: --window takes a center "
                                "and a width of at least 1\n");
                return GW_EXIT_USAGE;
            }
            o->window_given = true;
            i += 2;
        } else if (arg[0] == '-' || o->input) {
            fprintf(stderr, "siren preview: unexpected '%s'\n\n%s", arg,
                    preview_help);
            return GW_EXIT_USAGE;
        } else {
            o->input = arg;
        }
    }
    if (!o->policy || !o->output || !o->input) {
        fputs(preview_help, stderr);
        return GW_EXIT_USAGE;
    }
    return 0;
}

/* ---- the rendering -------------------------------------------------------------- */

/* One of the three palette lookup tables, as 8-bit output. */
typedef struct palette_lut {
    uint8_t *values;
    uint32_t entries;
    int64_t first; /* the stored value mapped to values[0] */
} palette_lut;

/* How stored samples become displayed 8-bit values. */
typedef struct view {
    const codec_image *image; /* as decoded */
    const uint8_t *frame;
    const pol_rect *rects;
    size_t rect_count;
    double slope, intercept;
    bool identity; /* 8-bit unsigned shown as stored */
    double center, width;
    const char *window_from; /* "option", "file", "frame", "none" */
    palette_lut palette[3];
} view;

/* Sample index of a decoded frame (planar configuration 0), as stored:
 * signed samples are sign-extended to bits allocated already. */
static int64_t sample_at(const codec_image *image, const uint8_t *frame,
                         size_t index)
{
    bool is_signed = image->pixel_representation == 1;
    switch (image->bits_allocated) {
    case 1:
        return (frame[index / 8] >> (index % 8)) & 1;
    case 8:
        return is_signed ? (int8_t)frame[index] : frame[index];
    case 16: {
        uint16_t v = (uint16_t)(frame[2 * index] | frame[2 * index + 1] << 8);
        return is_signed ? (int16_t)v : v;
    }
    default: {
        uint32_t v = 0;
        for (int b = 3; b >= 0; b--)
            v = v << 8 | frame[4 * index + (size_t)b];
        return is_signed ? (int64_t)(int32_t)v : (int64_t)v;
    }
    }
}

static bool in_rects(const view *v, uint32_t row, uint32_t col)
{
    for (size_t i = 0; i < v->rect_count; i++) {
        const pol_rect *r = &v->rects[i];
        if (col >= r->x && col - r->x < r->width && row >= r->y &&
            row - r->y < r->height)
            return true;
    }
    return false;
}

/* PS3.3 C.11.2.1.2.1, the linear VOI function, to 0..255. */
static uint8_t windowed(double x, double center, double width)
{
    if (width <= 1)
        return x <= center - 0.5 ? 0 : 255;
    double y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0;
    if (y <= 0)
        return 0;
    if (y >= 255)
        return 255;
    return (uint8_t)(y + 0.5);
}

static uint8_t gray_at(const view *v, size_t index)
{
    int64_t stored = sample_at(v->image, v->frame, index);
    uint8_t shown;
    if (v->identity)
        shown = (uint8_t)stored;
    else
        shown = windowed((double)stored * v->slope + v->intercept, v->center,
                         v->width);
    return v->image->photometric == CODEC_PI_MONOCHROME1 ? 255 - shown
                                                         : shown;
}

static uint8_t clamp_byte(double value)
{
    return value <= 0 ? 0 : value >= 255 ? 255 : (uint8_t)(value + 0.5);
}

/* A colour sample to 8 bits. */
static uint8_t colour_byte(const view *v, int64_t stored)
{
    int shift = v->image->bits_stored > 8 ? v->image->bits_stored - 8 : 0;
    return (uint8_t)(stored < 0 ? 0 : (stored >> shift) & 0xFF);
}

static void palette_at(const view *v, int64_t index, uint8_t rgb[3])
{
    for (int c = 0; c < 3; c++) {
        const palette_lut *lut = &v->palette[c];
        int64_t at = index - lut->first;
        if (at < 0)
            at = 0;
        if (at >= (int64_t)lut->entries)
            at = (int64_t)lut->entries - 1;
        rgb[c] = lut->values[at];
    }
}

static void colour_at(const view *v, uint32_t row, uint32_t col,
                      uint8_t rgb[3])
{
    const codec_image *im = v->image;
    size_t pixel = (size_t)row * im->columns + col;
    if (im->photometric == CODEC_PI_PALETTE_COLOR) {
        palette_at(v, sample_at(im, v->frame, pixel), rgb);
        return;
    }
    int64_t s[3];
    if (im->photometric == CODEC_PI_YBR_FULL_422) { /* Y1 Y2 Cb Cr */
        size_t pair = ((size_t)row * im->columns + col / 2 * 2) * 2;
        s[0] = sample_at(im, v->frame, pair + col % 2);
        s[1] = sample_at(im, v->frame, pair + 2);
        s[2] = sample_at(im, v->frame, pair + 3);
    } else {
        for (int c = 0; c < 3; c++)
            s[c] = sample_at(im, v->frame, pixel * 3 + (size_t)c);
    }
    for (int c = 0; c < 3; c++)
        rgb[c] = colour_byte(v, s[c]);
    if (im->photometric == CODEC_PI_RGB)
        return;
    /* YBR_FULL (PS3.3 C.7.6.3.1.2): full-range ITU-R BT.601. */
    double y = rgb[0], cb = rgb[1] - 128.0, cr = rgb[2] - 128.0;
    rgb[0] = clamp_byte(y + 1.402 * cr);
    rgb[1] = clamp_byte(y - 0.344136 * cb - 0.714136 * cr);
    rgb[2] = clamp_byte(y + 1.772 * cb);
}

static bool is_gray(const codec_image *image)
{
    return image->photometric == CODEC_PI_MONOCHROME1 ||
           image->photometric == CODEC_PI_MONOCHROME2;
}

/* One output row: 1 byte per pixel (gray) or 3 (colour). */
static void render_row(const view *v, uint32_t row, uint8_t *out)
{
    const codec_image *im = v->image;
    bool gray = is_gray(im);
    for (uint32_t col = 0; col < im->columns; col++) {
        uint8_t *px = out + (size_t)col * (gray ? 1 : 3);
        if (in_rects(v, row, col))
            memset(px, 0, gray ? 1 : 3);
        else if (gray)
            *px = gray_at(v, (size_t)row * im->columns + col);
        else
            colour_at(v, row, col, px);
    }
}

/* ---- the view from the dataset -------------------------------------------------- */

static bool first_double(const dcm_dataset *ds, uint32_t tag, double *out)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el && dcm_element_value_count(el) > 0 &&
           dcm_element_get_double(el, 0, out, NULL) == DCM_OK &&
           isfinite(*out);
}

/* One palette lookup table, when given whole (PS3.3 C.7.6.3.1.5-6). */
static int read_palette(const dcm_dataset *ds, int c, const codec_image *im,
                        palette_lut *lut, dcm_error *err)
{
    static const char *const names[] = {"Red", "Green", "Blue"};
    const dcm_element *desc = dcm_dataset_find(ds, TAG_PALETTE_DESCRIPTOR(c));
    const dcm_element *data = dcm_dataset_find(ds, TAG_PALETTE_DATA(c));
    int64_t entries, first, bits;
    if (dcm_dataset_find(ds, TAG_SEGMENTED_PALETTE(c)) || !data || !desc)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "PALETTE COLOR with a "
                        "segmented or missing %s Palette Color Lookup Table "
                        "is not rendered by the preview", names[c]);
    if (dcm_element_value_count(desc) != 3 ||
        dcm_element_get_int(desc, 0, &entries, err) < 0 ||
        dcm_element_get_int(desc, 1, &first, err) < 0 ||
        dcm_element_get_int(desc, 2, &bits, err) < 0 ||
        (bits != 8 && bits != 16))
        return dcm_fail(err, DCM_E_INVALID, -1, "the %s Palette Color Lookup "
                        "Table Descriptor is not 3 values with 8 or 16 bits",
                        names[c]);
    entries = entries == 0 ? 65536 : entries & 0xFFFF;
    if (im->pixel_representation == 1 && first > 32767)
        first -= 65536; /* US or SS: the pixels' sign decides */
    uint64_t need = (uint64_t)entries * (bits == 16 ? 2 : 1);
    if (dcm_element_length(data) < need)
        return dcm_fail(err, DCM_E_INVALID, -1, "the %s Palette Color Lookup "
                        "Table Data holds fewer than %lld entries", names[c],
                        (long long)entries);
    uint8_t *raw = malloc(need);
    lut->values = malloc((size_t)entries);
    if (!raw || !lut->values) {
        free(raw);
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    }
    int rc = dcm_element_read(data, 0, raw, need, err);
    for (int64_t i = 0; rc == DCM_OK && i < entries; i++)
        lut->values[i] = bits == 16 ? raw[2 * i + 1] : raw[i]; /* high byte */
    free(raw);
    lut->entries = (uint32_t)entries;
    lut->first = first;
    return rc;
}

/* The lowest and highest rescaled value outside the rectangles; false
 * when every pixel is inside one. */
static bool frame_range(const view *v, double *low, double *high)
{
    const codec_image *im = v->image;
    bool any = false;
    for (uint32_t row = 0; row < im->rows; row++)
        for (uint32_t col = 0; col < im->columns; col++) {
            if (in_rects(v, row, col))
                continue;
            double x = (double)sample_at(im, v->frame,
                                         (size_t)row * im->columns + col) *
                           v->slope +
                       v->intercept;
            if (!any || x < *low)
                *low = x;
            if (!any || x > *high)
                *high = x;
            any = true;
        }
    return any;
}

/* The window for grayscale: the option, else the file's, else 8-bit
 * unsigned as stored, else the frame's range. */
static void choose_window(view *v, const dcm_dataset *ds,
                          const preview_options *o)
{
    const codec_image *im = v->image;
    v->slope = 1;
    v->intercept = 0;
    if (!first_double(ds, TAG_RESCALE_SLOPE, &v->slope) || v->slope == 0)
        v->slope = 1;
    if (!first_double(ds, TAG_RESCALE_INTERCEPT, &v->intercept))
        v->intercept = 0;
    double low = 0, high = 0;
    if (o->window_given) {
        v->center = o->center;
        v->width = o->width;
        v->window_from = "option";
    } else if (first_double(ds, TAG_WINDOW_CENTER, &v->center) &&
               first_double(ds, TAG_WINDOW_WIDTH, &v->width) &&
               v->width >= 1) {
        v->window_from = "file";
    } else if (im->bits_stored == 8 && im->bits_allocated == 8 &&
               im->pixel_representation == 0 && v->slope == 1 &&
               v->intercept == 0) {
        v->identity = true;
        v->window_from = "none";
    } else {
        frame_range(v, &low, &high);
        v->width = high - low + 1;
        v->center = (low + high) / 2 + 0.5;
        v->window_from = "frame";
    }
}

static int prepare_view(view *v, const dcm_dataset *ds,
                        const preview_options *o, dcm_error *err)
{
    const codec_image *im = v->image;
    switch (im->photometric) {
    case CODEC_PI_MONOCHROME1:
    case CODEC_PI_MONOCHROME2:
        choose_window(v, ds, o);
        return DCM_OK;
    case CODEC_PI_RGB:
    case CODEC_PI_YBR_FULL:
    case CODEC_PI_YBR_FULL_422:
        if (im->bits_allocated == 1)
            break;
        v->window_from = "none";
        return DCM_OK;
    case CODEC_PI_PALETTE_COLOR:
        if (im->bits_allocated != 8 && im->bits_allocated != 16)
            break;
        v->window_from = "none";
        for (int c = 0; c < 3; c++) {
            int rc = read_palette(ds, c, im, &v->palette[c], err);
            if (rc < 0)
                return rc;
        }
        return DCM_OK;
    default:
        break;
    }
    return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "%u-bit %s pixels are not "
                    "rendered by the preview", im->bits_allocated,
                    codec_photometric_name(im->photometric));
}

/* ---- PNG ------------------------------------------------------------------------ */

/* A chunk: length, type, data, CRC-32 of type and data. */
static int png_chunk(FILE *out, const char type[4], const uint8_t *data,
                     uint32_t len)
{
    uint8_t head[8] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                       (uint8_t)(len >> 8), (uint8_t)len,
                       (uint8_t)type[0], (uint8_t)type[1],
                       (uint8_t)type[2], (uint8_t)type[3]};
    uLong crc = crc32(0L, head + 4, 4);
    if (len)
        crc = crc32(crc, data, len);
    uint8_t tail[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                       (uint8_t)(crc >> 8), (uint8_t)crc};
    return fwrite(head, 1, 8, out) == 8 &&
                   (len == 0 || fwrite(data, 1, len, out) == len) &&
                   fwrite(tail, 1, 4, out) == 4
               ? 0
               : -1;
}

#define PNG_IDAT_BYTES (64u << 10)

/* Deflates len bytes (flush: Z_NO_FLUSH or Z_FINISH) into IDAT chunks. */
static int png_deflate(z_stream *z, FILE *out, uint8_t *buf,
                       const uint8_t *data, size_t len, int flush)
{
    z->next_in = (Bytef *)data;
    z->avail_in = (uInt)len;
    int zrc;
    do {
        z->next_out = buf;
        z->avail_out = PNG_IDAT_BYTES;
        zrc = deflate(z, flush);
        if (zrc == Z_STREAM_ERROR)
            return -1;
        uint32_t made = PNG_IDAT_BYTES - z->avail_out;
        if (made && png_chunk(out, "IDAT", buf, made) < 0)
            return -1;
    } while (z->avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return 0;
}

/* The whole PNG: 8-bit gray or RGB, no interlace, filter 0 on every row. */
static int write_png(const view *v, FILE *out, dcm_error *err)
{
    const codec_image *im = v->image;
    uint8_t channels = is_gray(im) ? 1 : 3;
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G',
                                         '\r', '\n', 0x1A, '\n'};
    uint8_t ihdr[13] = {
        (uint8_t)(im->columns >> 24), (uint8_t)(im->columns >> 16),
        (uint8_t)(im->columns >> 8), (uint8_t)im->columns,
        (uint8_t)(im->rows >> 24), (uint8_t)(im->rows >> 16),
        (uint8_t)(im->rows >> 8), (uint8_t)im->rows,
        8, channels == 1 ? 0 : 2, 0, 0, 0};
    size_t row_bytes = 1 + (size_t)im->columns * channels;
    uint8_t *row = calloc(1, row_bytes);
    uint8_t *buf = malloc(PNG_IDAT_BYTES);
    z_stream z = {0};
    bool started = row && buf && deflateInit(&z, 6) == Z_OK;
    int rc = started ? 0 : -1;
    if (rc == 0 && (fwrite(signature, 1, 8, out) != 8 ||
                    png_chunk(out, "IHDR", ihdr, sizeof ihdr) < 0))
        rc = -1;
    for (uint32_t r = 0; rc == 0 && r < im->rows; r++) {
        render_row(v, r, row + 1); /* row[0]: filter type 0, none */
        rc = png_deflate(&z, out, buf, row, row_bytes, Z_NO_FLUSH);
    }
    if (rc == 0)
        rc = png_deflate(&z, out, buf, NULL, 0, Z_FINISH);
    if (rc == 0)
        rc = png_chunk(out, "IEND", NULL, 0);
    if (started)
        deflateEnd(&z);
    free(row);
    free(buf);
    if (rc < 0)
        return dcm_fail(err, started ? DCM_E_IO : DCM_E_NOMEM, -1,
                        "%s", started ? strerror(errno) : "out of memory");
    return DCM_OK;
}

/* ---- the command ---------------------------------------------------------------- */

static int fail(const char *what, const dcm_error *err)
{
    if (err->offset >= 0)
        fprintf(stderr, "siren preview: %s: offset %lld: %s\n", what,
                (long long)err->offset, err->message);
    else
        fprintf(stderr, "siren preview: %s: %s\n", what, err->message);
    return GW_EXIT_FAILURE;
}

/* The rectangles that apply to ds (owned by the caller: free()), printed;
 * -1 out of memory. */
static int redactions(const pol_policy *p, const dcm_dataset *ds,
                      pol_rect **rects, size_t *count)
{
    *count = pol_policy_redactions(p, ds, NULL, 0);
    *rects = calloc(*count ? *count : 1, sizeof **rects);
    if (!*rects)
        return -1;
    pol_policy_redactions(p, ds, *rects, *count);
    for (size_t i = 0; i < *count; i++)
        printf("redact rectangle %u %u %u %u (%s:%u)\n", (*rects)[i].x,
               (*rects)[i].y, (*rects)[i].width, (*rects)[i].height,
               (*rects)[i].file, (*rects)[i].line);
    if (*count == 0)
        printf("no redact line applies\n");
    return 0;
}

/* Writes the PNG of v to path: through a temporary name, so that a
 * failure leaves no partial image under the name asked for. */
static int save_png(const view *v, const char *path, dcm_error *err)
{
    char temp[4096];
    if ((size_t)snprintf(temp, sizeof temp, "%s.tmp-%ld", path,
                         (long)getpid()) >= sizeof temp)
        return dcm_fail(err, DCM_E_ARG, -1, "path too long");
    FILE *out = fopen(temp, "wb");
    if (!out)
        return dcm_fail(err, DCM_E_IO, -1, "%s", strerror(errno));
    int rc = write_png(v, out, err);
    if (fclose(out) != 0 && rc == DCM_OK)
        rc = dcm_fail(err, DCM_E_IO, -1, "%s", strerror(errno));
    if (rc == DCM_OK && rename(temp, path) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "%s", strerror(errno));
    if (rc < 0)
        unlink(temp);
    return rc;
}

/* Decodes the frame, renders and writes it. */
static int render(const preview_options *o, const dcm_dataset *ds,
                  const codec_source *src, const pol_rect *rects,
                  size_t rect_count)
{
    dcm_error err = {0};
    uint8_t *frame = NULL;
    size_t len = 0;
    codec_image decoded;
    if (codec_source_decode(src, o->frame - 1, &frame, &len, &decoded,
                            &err) < 0)
        return fail(o->input, &err);
    view v = {.image = &decoded, .frame = frame, .rects = rects,
              .rect_count = rect_count};
    int status = GW_EXIT_OK;
    if (prepare_view(&v, ds, o, &err) < 0)
        status = fail(o->input, &err);
    else if (save_png(&v, o->output, &err) < 0)
        status = fail(o->output, &err);
    else if (v.identity || !is_gray(&decoded))
        printf("wrote %s: %ux%u, frame %u of %u, %s\n", o->output,
               decoded.columns, decoded.rows, o->frame,
               codec_source_image(src)->frames,
               codec_photometric_name(decoded.photometric));
    else
        printf("wrote %s: %ux%u, frame %u of %u, %s, window %g/%g (%s)\n",
               o->output, decoded.columns, decoded.rows, o->frame,
               codec_source_image(src)->frames,
               codec_photometric_name(decoded.photometric), v.center,
               v.width, v.window_from);
    for (int c = 0; c < 3; c++)
        free(v.palette[c].values);
    free(frame);
    return status;
}

/* The frame of the file in o, with the policy's rectangles. */
static int preview_file(const preview_options *o, const pol_policy *p)
{
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(o->input, NULL, &err);
    if (!file)
        return fail(o->input, &err);
    const dcm_dataset *ds = dcm_file_dataset(file);
    int status = GW_EXIT_FAILURE;
    codec_source *src = NULL;
    pol_rect *rects = NULL;
    size_t count = 0;
    if (!dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA)) {
        fprintf(stderr, "siren preview: %s: no Pixel Data (7FE0,0010) to "
                        "render\n", o->input);
    } else if (!(src = codec_source_open(ds, NULL, &err))) {
        fail(o->input, &err);
    } else if (o->frame > codec_source_image(src)->frames) {
        fprintf(stderr, "siren preview: %s: no frame %u: the image has %u "
                        "frame%s\n", o->input, o->frame,
                codec_source_image(src)->frames,
                codec_source_image(src)->frames == 1 ? "" : "s");
    } else if (redactions(p, ds, &rects, &count) < 0) {
        fprintf(stderr, "siren preview: out of memory\n");
    } else {
        status = render(o, ds, src, rects, count);
    }
    free(rects);
    codec_source_free(src);
    dcm_file_free(file);
    return status;
}

int gw_cmd_preview(int argc, char **argv)
{
    preview_options o;
    int parsed = parse_args(argc, argv, &o);
    if (parsed == PARSE_HELP)
        return GW_EXIT_OK;
    if (parsed != 0)
        return parsed;
    pol_policy *p = gw_policy_load(o.policy, false, NULL);
    if (!p)
        return GW_EXIT_FAILURE;
    int status = preview_file(&o, p);
    pol_policy_unref(p);
    return status;
}
