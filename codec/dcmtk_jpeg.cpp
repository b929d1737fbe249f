/*
 * dcmtk_jpeg.cpp - the JPEG processes libjpeg-turbo 2.1 cannot decode
 * (12-bit Extended, Lossless .57/.70, any precision up to 16) through
 * DCMTK's IJG-based decoders (dcmjpeg's DJDecompressIJG8Bit/12Bit/16Bit):
 * the thin adapter behind codec_dcmtk_jpeg_decode() in internal.h, built
 * only when DCMTK's development files are installed.
 *
 * DCMTK logs through oflog, which prints warnings by default; its level
 * is set to OFF once, since library modules never print. Its decoders
 * report failures as OFCondition; nothing is thrown through here, but
 * every call is wrapped all the same so that no C++ exception reaches C.
 */
#include "internal.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <new>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmjpeg/djcparam.h>
#include <dcmtk/dcmjpeg/djdecabs.h>
#include <dcmtk/dcmjpeg/djdijg12.h>
#include <dcmtk/dcmjpeg/djdijg16.h>
#include <dcmtk/dcmjpeg/djdijg8.h>
#include <dcmtk/dcmjpeg/djutils.h>
#include <dcmtk/oflog/oflog.h>

namespace {

void silence_dcmtk()
{
    static std::once_flag once;
    std::call_once(once, [] { OFLog::configure(OFLogger::OFF_LOG_LEVEL); });
}

std::unique_ptr<DJDecoder> decoder_for(unsigned precision,
                                       const DJCodecParameter &params,
                                       bool ybr)
{
    if (precision <= 8)
        return std::make_unique<DJDecompressIJG8Bit>(params, ybr);
    if (precision <= 12)
        return std::make_unique<DJDecompressIJG12Bit>(params, ybr);
    return std::make_unique<DJDecompressIJG16Bit>(params, ybr);
}

int check_header(const codec_image *decoded, const codec_jpeg_header *header,
                 dcm_error *err)
{
    if (header->columns != decoded->columns || header->rows != decoded->rows ||
        header->components != decoded->samples_per_pixel)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG codestream is %ux%u with %u components, the "
                        "dataset says %ux%u with %u",
                        header->columns, header->rows, header->components,
                        decoded->columns, decoded->rows,
                        decoded->samples_per_pixel);
    if (header->precision < 2 || header->precision > 16 ||
        header->precision > decoded->bits_allocated ||
        decoded->bits_allocated > 16)
        return dcm_fail(err, DCM_E_INVALID, -1,
                        "JPEG precision %u does not fit Bits Allocated %u",
                        header->precision, decoded->bits_allocated);
    return DCM_OK;
}

} // namespace

int codec_dcmtk_jpeg_decode(const codec_image *stored,
                            const codec_image *decoded,
                            const codec_jpeg_header *header,
                            const uint8_t *data, size_t len, uint8_t *out,
                            size_t out_len, dcm_error *err)
{
    int rc = check_header(decoded, header, err);
    if (rc < 0)
        return rc;
    if (len > UINT32_MAX || out_len > UINT32_MAX)
        return dcm_fail(err, DCM_E_LIMIT, -1,
                        "DCMTK's JPEG decoder takes frames below 4 GiB");
    silence_dcmtk();
    bool ybr = stored->photometric == CODEC_PI_YBR_FULL ||
               stored->photometric == CODEC_PI_YBR_FULL_422;
    try {
        DJCodecParameter params(ECC_lossyYCbCr, EDC_photometricInterpretation,
                                EUC_never, EPC_colorByPixel);
        std::unique_ptr<DJDecoder> decoder =
            decoder_for(header->precision, params, ybr);
        if (decoder->bytesPerSample() != decoded->bits_allocated / 8)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "JPEG of %u bits into Bits Allocated %u",
                            header->precision, decoded->bits_allocated);
        OFCondition status = decoder->init();
        if (status.good())
            /* DCMTK's interface is not const-correct; it only reads. */
            status = decoder->decode(const_cast<Uint8 *>(data),
                                     static_cast<Uint32>(len), out,
                                     static_cast<Uint32>(out_len),
                                     decoded->pixel_representation == 1);
        /* The IJG code "suspends" when the data ends before the image. */
        if (status == EJ_Suspension)
            return dcm_fail(err, DCM_E_TRUNCATED, -1,
                            "JPEG codestream ends before the image does");
        if (status.bad())
            return dcm_fail(err, DCM_E_INVALID, -1, "JPEG (DCMTK): %s",
                            status.text());
        /* YCbCr must have been converted; other colour comes back as it
         * was stored (the decoder then names no colour model). */
        if (ybr && decoded->photometric == CODEC_PI_RGB &&
            decoder->getDecompressedColorModel() != EPI_RGB)
            return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                            "JPEG (DCMTK): YCbCr not converted to RGB");
    } catch (const std::bad_alloc &) {
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for JPEG");
    } catch (const std::exception &e) {
        return dcm_fail(err, DCM_E_INVALID, -1, "JPEG (DCMTK): %s", e.what());
    }
    return DCM_OK;
}
