/*
 * codec_images.h - synthetic images for the codec tests: a description,
 * frames with smooth content plus texture (so that lossy codecs have
 * something to lose and PSNR means something), and datasets holding them.
 */
#ifndef SIREN_TEST_CODEC_IMAGES_H
#define SIREN_TEST_CODEC_IMAGES_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static inline codec_image synth_image(uint32_t rows, uint32_t columns,
                                      uint16_t samples, uint16_t allocated,
                                      uint16_t stored, bool is_signed)
{
    codec_image image = {
        .rows = rows, .columns = columns, .samples_per_pixel = samples,
        .bits_allocated = allocated, .bits_stored = stored,
        .high_bit = (uint16_t)(stored - 1),
        .pixel_representation = is_signed ? 1 : 0,
        .photometric = samples == 3 ? CODEC_PI_RGB : CODEC_PI_MONOCHROME2,
        .frames = 1};
    return image;
}

static inline size_t synth_frame_bytes(const codec_image *image)
{
    size_t frame_len = 0;
    if (codec_frame_bytes(image, &frame_len, NULL) < 0)
        abort();
    return frame_len;
}

/* Sample value (x, y, sample s, frame f) within the stored range: a
 * gradient, a slow wave and a little texture. Signed images span
 * negative values too. */
static inline int64_t synth_value(const codec_image *image, uint32_t x,
                                  uint32_t y, unsigned s, uint32_t f)
{
    unsigned bits = image->bits_stored;
    double range = ldexp(1.0, (int)bits) - 1;
    double t = (double)(x + 2 * y + 17 * s + 29 * f) /
               (double)(image->columns + 2 * image->rows + 64);
    double wave = 0.25 * sin((x + 3.0 * s) / 9.0) * cos((y + 5.0 * f) / 7.0);
    double v = range * (0.1 + 0.55 * t + 0.3 * (0.5 + wave));
    int64_t value = (int64_t)v + (int64_t)((x * 7 + y * 13 + s) % 5);
    if (value > (int64_t)range)
        value = (int64_t)range;
    if (image->pixel_representation == 1)
        value -= (int64_t)1 << (bits - 1);
    return value;
}

static inline void synth_put(const codec_image *image, uint8_t *frame,
                             size_t i, int64_t value)
{
    size_t unit = image->bits_allocated / 8;
    for (size_t b = 0; b < unit; b++)
        frame[i * unit + b] = (uint8_t)((uint64_t)value >> (8 * b));
}

/* One frame, interleaved (planar configuration 0), malloc'ed. */
static inline uint8_t *synth_frame(const codec_image *image, uint32_t f)
{
    uint8_t *frame = calloc(1, synth_frame_bytes(image));
    if (!frame)
        abort();
    size_t spp = image->samples_per_pixel;
    for (uint32_t y = 0; y < image->rows; y++)
        for (uint32_t x = 0; x < image->columns; x++)
            for (unsigned s = 0; s < spp; s++)
                synth_put(image, frame,
                          ((size_t)y * image->columns + x) * spp + s,
                          synth_value(image, x, y, s, f));
    return frame;
}

static inline void synth_set_us(dcm_dataset *ds, uint32_t tag, unsigned value)
{
    uint8_t le[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    if (dcm_dataset_set_bytes(ds, tag, DCM_VR_US, le, 2, NULL) < 0)
        abort();
}

/* The Image Pixel attributes of image in ds (no Pixel Data). */
static inline void synth_attributes(dcm_dataset *ds, const codec_image *image)
{
    synth_set_us(ds, DCM_TAG(0x0028, 0x0002), image->samples_per_pixel);
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS,
                           codec_photometric_name(image->photometric), NULL);
    if (image->samples_per_pixel > 1)
        synth_set_us(ds, DCM_TAG(0x0028, 0x0006),
                     image->planar_configuration);
    char frames[16];
    snprintf(frames, sizeof frames, "%u", image->frames);
    dcm_dataset_set_string(ds, DCM_TAG(0x0028, 0x0008), DCM_VR_IS, frames,
                           NULL);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0010), image->rows);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0011), image->columns);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0100), image->bits_allocated);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0101), image->bits_stored);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0102), image->high_bit);
    synth_set_us(ds, DCM_TAG(0x0028, 0x0103), image->pixel_representation);
}

/* PSNR in dB of b against a (unsigned samples) over their stored range;
 * 999 when identical. */
static inline double synth_psnr(const codec_image *image, const uint8_t *a,
                                const uint8_t *b)
{
    size_t count = (size_t)image->rows * image->columns *
                   image->samples_per_pixel;
    size_t unit = image->bits_allocated / 8;
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        int64_t va = 0, vb = 0;
        for (size_t k = 0; k < unit; k++) {
            va |= (int64_t)a[i * unit + k] << (8 * k);
            vb |= (int64_t)b[i * unit + k] << (8 * k);
        }
        double d = (double)(va - vb);
        sum += d * d;
    }
    if (sum == 0)
        return 999;
    double peak = ldexp(1.0, image->bits_stored) - 1;
    return 10 * log10(peak * peak / (sum / (double)count));
}

#endif /* SIREN_TEST_CODEC_IMAGES_H */
