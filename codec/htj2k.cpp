/*
 * htj2k.cpp - HTJ2K encoding (1.2.840.10008.1.2.4.201 lossless, .203
 * lossy) through OpenJPH, a C++ library: the thin adapter behind
 * codec_htj2k_encode() in internal.h, and codec_htj2k_decode(), the
 * lossless check's decoder for what the encoder wrote (three times as
 * fast as OpenJPEG's HTJ2K decoder on a 640x480 RGB frame).
 * HTJ2K that arrives from sites is decoded by OpenJPEG (j2k.c), which
 * reads Part 15 codestreams since 2.5, is fuzzed with the rest of
 * Part 1, and reads more of Part 15 than OpenJPH 0.9.
 *
 * OpenJPH reports errors through a process-wide handler that must not
 * return; the one installed here (once) throws, and every call is wrapped
 * so that no C++ exception crosses into C. Its info and warning messages,
 * printed by default, are dropped: library modules never print.
 *
 * OpenJPH 0.9 has no rate control: lossy encoding takes a quantisation
 * step. For a target PSNR the step is derived as uniform quantisation
 * noise (MSE = step^2 / 12 on samples normalised to 1); for a target
 * ratio it is searched (bisection on its logarithm, a few encodes) for
 * the finest step whose codestream is no larger than the ratio allows.
 */
#include "internal.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

#include <openjph/ojph_arch.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_message.h>
#include <openjph/ojph_params.h>

namespace {

constexpr double default_psnr_db = 45.0;
constexpr unsigned max_decompositions = 5;
/* Quantisation steps searched for a ratio, on samples normalised to 1. */
constexpr double finest_step = 1e-6;
constexpr double coarsest_step = 1.0;
constexpr int ratio_search_steps = 8;

class throwing_error : public ojph::message_error {
public:
    __attribute__((format(printf, 5, 6))) void
    operator()(int code, const char *file, int line, const char *fmt,
               ...) override
    {
        (void)file;
        (void)line;
        char text[200];
        va_list args;
        va_start(args, fmt);
        std::vsnprintf(text, sizeof text, fmt, args);
        va_end(args);
        char message[240];
        std::snprintf(message, sizeof message, "%s (OpenJPH 0x%x)", text,
                      static_cast<unsigned>(code));
        throw std::runtime_error(message);
    }
};

class silent_warning : public ojph::message_warning {
public:
    void operator()(int, const char *, int, const char *, ...) override {}
};

class silent_info : public ojph::message_info {
public:
    void operator()(int, const char *, int, const char *, ...) override {}
};

void install_handlers()
{
    static std::once_flag once;
    std::call_once(once, [] {
        static throwing_error error;
        static silent_warning warning;
        static silent_info info;
        ojph::configure_error(&error);
        ojph::configure_warning(&warning);
        ojph::configure_info(&info);
    });
}

/* Decomposition levels: at most max_decompositions, and no more than the
 * smaller side allows. */
unsigned decompositions(const codec_image *image)
{
    uint32_t side = image->rows < image->columns ? image->rows
                                                 : image->columns;
    unsigned levels = 0;
    while (levels < max_decompositions && (side >> (levels + 1)) > 0)
        levels++;
    return levels;
}

void set_parameters(ojph::codestream &cs, const codec_image *image,
                    bool lossless, double step)
{
    ojph::param_siz siz = cs.access_siz();
    siz.set_image_extent(ojph::point(image->columns, image->rows));
    siz.set_num_components(image->samples_per_pixel);
    for (ojph::ui32 c = 0; c < image->samples_per_pixel; c++)
        siz.set_component(c, ojph::point(1, 1), image->bits_stored,
                          image->pixel_representation == 1);
    siz.set_image_offset(ojph::point(0, 0));
    siz.set_tile_size(ojph::size(0, 0));
    siz.set_tile_offset(ojph::point(0, 0));
    ojph::param_cod cod = cs.access_cod();
    cod.set_num_decomposition(decompositions(image));
    cod.set_block_dims(64, 64);
    cod.set_progression_order("RPCL");
    cod.set_color_transform(image->photometric == CODEC_PI_RGB);
    cod.set_reversible(lossless);
    if (!lossless)
        cs.access_qcd().set_irrev_quant(static_cast<float>(step));
    cs.set_planar(false);
}

/* A row's samples, one plane per component: OpenJPH takes and gives one
 * component's line at a time, and the frame's interleaved samples are
 * split and joined a whole row at once (codec_pixels_get/put). */
class row_planes {
public:
    explicit row_planes(const codec_image *image)
        : columns_(image->columns), components_(image->samples_per_pixel),
          samples_(columns_ * components_)
    {
        if (components_ > CODEC_MAX_COMPONENTS)
            throw std::runtime_error("more components than an image has");
        for (size_t c = 0; c < components_; c++)
            planes_[c] = samples_.data() + c * columns_;
    }
    int32_t *const *planes() { return planes_; }
    int32_t *plane(size_t c) { return planes_[c]; }
    size_t bytes() const { return columns_ * sizeof(int32_t); }

private:
    size_t columns_, components_;
    std::vector<int32_t> samples_;
    int32_t *planes_[CODEC_MAX_COMPONENTS] = {};
};

void push_rows(ojph::codestream &cs, const codec_image *image,
               const uint8_t *frame)
{
    row_planes row(image);
    ojph::ui32 next = 0;
    ojph::line_buf *line = cs.exchange(nullptr, next);
    for (uint32_t y = 0; y < image->rows; y++) {
        codec_pixels_get(image, frame, (size_t)y * image->columns,
                         image->columns, row.planes());
        for (size_t c = 0; c < image->samples_per_pixel; c++) {
            if (next != c || line->size < image->columns)
                throw std::runtime_error("OpenJPH asked for a line out of "
                                         "order or shorter than a row");
            std::memcpy(line->i32, row.plane(c), row.bytes());
            line = cs.exchange(line, next);
        }
    }
}

/* One codestream (throws on OpenJPH's errors). */
std::vector<uint8_t> encode_once(const codec_image *image,
                                 const uint8_t *frame, bool lossless,
                                 double step)
{
    ojph::codestream cs;
    set_parameters(cs, image, lossless, step);
    ojph::mem_outfile file;
    file.open();
    cs.write_headers(&file);
    push_rows(cs, image, frame);
    cs.flush();
    const uint8_t *data = file.get_data();
    std::vector<uint8_t> stream(data, data + file.tell());
    cs.close();
    return stream;
}

/* The finest step whose codestream fits len / ratio bytes; the coarsest
 * step's codestream when none does. */
std::vector<uint8_t> encode_for_ratio(const codec_image *image,
                                      const uint8_t *frame, size_t len,
                                      double ratio)
{
    size_t target = static_cast<size_t>(static_cast<double>(len) / ratio);
    double fine = std::log(finest_step), coarse = std::log(coarsest_step);
    std::vector<uint8_t> best = encode_once(image, frame, false,
                                            coarsest_step);
    if (best.size() > target)
        return best;
    for (int i = 0; i < ratio_search_steps; i++) {
        double middle = (fine + coarse) / 2;
        std::vector<uint8_t> stream =
            encode_once(image, frame, false, std::exp(middle));
        if (stream.size() <= target) {
            coarse = middle;
            best = std::move(stream);
        } else {
            fine = middle;
        }
    }
    return best;
}

/* The codestream's image is the one the dataset describes (the layout
 * codec.h gives frames, one sample per pixel per component). */
void check_header(ojph::param_siz siz, const codec_image *decoded)
{
    ojph::point extent = siz.get_image_extent();
    ojph::point offset = siz.get_image_offset();
    if (extent.x != decoded->columns || extent.y != decoded->rows ||
        offset.x != 0 || offset.y != 0 ||
        siz.get_num_components() != decoded->samples_per_pixel)
        throw std::runtime_error("the codestream's image is not the "
                                 "dataset's");
    for (ojph::ui32 c = 0; c < decoded->samples_per_pixel; c++) {
        ojph::point step = siz.get_downsampling(c);
        ojph::ui32 depth = siz.get_bit_depth(c);
        if (step.x != 1 || step.y != 1 || depth < 1 ||
            depth > decoded->bits_allocated ||
            siz.is_signed(c) != (decoded->pixel_representation == 1))
            throw std::runtime_error("a component is subsampled or does "
                                     "not fit the dataset's samples");
    }
}

void pull_rows(ojph::codestream &cs, const codec_image *decoded,
               uint8_t *out)
{
    row_planes row(decoded);
    for (uint32_t y = 0; y < decoded->rows; y++) {
        for (size_t c = 0; c < decoded->samples_per_pixel; c++) {
            ojph::ui32 next = 0;
            ojph::line_buf *line = cs.pull(next);
            if (next != c || line->size < decoded->columns)
                throw std::runtime_error("OpenJPH gave a line out of order "
                                         "or shorter than a row");
            std::memcpy(row.plane(c), line->i32, row.bytes());
        }
        codec_pixels_put(decoded, out, (size_t)y * decoded->columns,
                         decoded->columns, row.planes());
    }
}

} // namespace

int codec_htj2k_decode(const codec_image *stored, const codec_image *decoded,
                       const uint8_t *data, size_t len, uint8_t *out,
                       size_t out_len, dcm_error *err)
{
    (void)stored;
    (void)out_len; /* codec_frame_bytes(decoded): what pull_rows fills */
    install_handlers();
    try {
        ojph::mem_infile file;
        file.open(data, len);
        ojph::codestream cs;
        cs.read_headers(&file);
        check_header(cs.access_siz(), decoded);
        cs.set_planar(false);
        cs.create();
        pull_rows(cs, decoded, out);
        cs.close();
    } catch (const std::bad_alloc &) {
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for HTJ2K");
    } catch (const std::exception &e) {
        return dcm_fail(err, DCM_E_INVALID, -1, "HTJ2K decoding: %s",
                        e.what());
    }
    return DCM_OK;
}

int codec_htj2k_encode(const codec_image *image, const uint8_t *frame,
                       size_t len, const codec_encode_options *opts,
                       bool lossless, codec_buf *out, codec_encoded *encoded,
                       dcm_error *err)
{
    if (image->bits_stored > 16)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "HTJ2K encoding of %u-bit samples (at most 16)",
                        image->bits_stored);
    if (!lossless && image->photometric == CODEC_PI_PALETTE_COLOR)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1,
                        "lossy HTJ2K of palette indexes would change colours");
    double psnr_db = opts->psnr_db > 0 ? opts->psnr_db : default_psnr_db;
    if (!lossless && opts->ratio > 0 &&
        !(opts->ratio >= 1 && opts->ratio <= 1000))
        return dcm_fail(err, DCM_E_ARG, -1,
                        "HTJ2K ratio %g is not within 1..1000", opts->ratio);
    if (!lossless && opts->ratio <= 0 && !(psnr_db >= 10 && psnr_db <= 200))
        return dcm_fail(err, DCM_E_ARG, -1,
                        "HTJ2K PSNR %g dB is not within 10..200", psnr_db);
    install_handlers();
    try {
        std::vector<uint8_t> stream;
        if (lossless)
            stream = encode_once(image, frame, true, 0);
        else if (opts->ratio > 0)
            stream = encode_for_ratio(image, frame, len, opts->ratio);
        else
            stream = encode_once(image, frame, false,
                                 std::sqrt(12.0) *
                                     std::pow(10.0, -psnr_db / 20));
        int rc = codec_buf_append(out, stream.data(), stream.size(), err);
        if (rc < 0)
            return rc;
    } catch (const std::bad_alloc &) {
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for HTJ2K");
    } catch (const std::exception &e) {
        return dcm_fail(err, DCM_E_INVALID, -1, "HTJ2K encoding: %s",
                        e.what());
    }
    codec_j2k_describe(encoded, image->photometric == CODEC_PI_RGB, lossless,
                       "ISO_15444_15");
    return DCM_OK;
}
