/* pixels.c - the lines of the pixel stage: compression, redaction, and
 * what happens when an encoder fails.
 *
 *   compress to CODEC [PARAMETER VALUE] [if|unless COND]
 *       rle | jpeg-ls-lossless | jpeg2000-lossless | htj2k-lossless
 *       | jpeg quality 1..100 | jpeg-ls-near-lossless error 1..255
 *       | jpeg2000|htj2k ratio R (1 < R <= 1000) | psnr P (20..150 dB)
 *   keep-syntax [if|unless COND]
 *   redact rectangle X Y WIDTH HEIGHT [if|unless COND]
 *   on compression-failure keep-original|quarantine
 *   allow lossy-recompression
 *   verify lossless on|off
 *
 * compress and keep-syntax lines form one list in file order, the first
 * that applies wins (like a firewall); every redact line that applies
 * adds its rectangle. The compiled lines are read by the gateway's
 * processor through policy.h; parse.c hands the statements here.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COORDINATE 65535u /* Rows and Columns are US */
#define MAX_RATIO 1000.0
#define MIN_PSNR_DB 20.0
#define MAX_PSNR_DB 150.0

/* The parameter a codec takes after its name. */
typedef enum pol_codec_param {
    PARAM_NONE,
    PARAM_QUALITY,      /* quality 1..100 */
    PARAM_NEAR,         /* error 1..255 */
    PARAM_RATIO_OR_PSNR,
} pol_codec_param;

static const struct pol_codec_info {
    pol_codec codec;
    const char *name;
    const char *ts_uid;
    bool lossy;
    pol_codec_param param;
} codecs[] = {
    {POL_CODEC_RLE, "rle", "1.2.840.10008.1.2.5", false, PARAM_NONE},
    {POL_CODEC_JPEG, "jpeg", "1.2.840.10008.1.2.4.50", true, PARAM_QUALITY},
    {POL_CODEC_JPEG_LS, "jpeg-ls-lossless", "1.2.840.10008.1.2.4.80", false,
     PARAM_NONE},
    {POL_CODEC_JPEG_LS_NEAR, "jpeg-ls-near-lossless",
     "1.2.840.10008.1.2.4.81", true, PARAM_NEAR},
    {POL_CODEC_J2K_LOSSLESS, "jpeg2000-lossless", "1.2.840.10008.1.2.4.90",
     false, PARAM_NONE},
    {POL_CODEC_J2K, "jpeg2000", "1.2.840.10008.1.2.4.91", true,
     PARAM_RATIO_OR_PSNR},
    {POL_CODEC_HTJ2K_LOSSLESS, "htj2k-lossless", "1.2.840.10008.1.2.4.201",
     false, PARAM_NONE},
    {POL_CODEC_HTJ2K, "htj2k", "1.2.840.10008.1.2.4.203", true,
     PARAM_RATIO_OR_PSNR},
};

#define CODEC_NAMES                                                          \
    "rle, jpeg-ls-lossless, jpeg2000-lossless, htj2k-lossless, jpeg "       \
    "quality N, jpeg-ls-near-lossless error N, jpeg2000 ratio|psnr N, "     \
    "htj2k ratio|psnr N"

static const struct pol_codec_info *pol_codec_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof codecs / sizeof *codecs; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

const char *pol_codec_name(pol_codec codec)
{
    for (size_t i = 0; i < sizeof codecs / sizeof *codecs; i++)
        if (codecs[i].codec == codec)
            return codecs[i].name;
    return "keep-syntax";
}

const char *pol_compression_format(const pol_compression *c, char *buf,
                                   size_t size)
{
    const char *name = pol_codec_name(c->codec);
    if (c->codec == POL_CODEC_JPEG)
        snprintf(buf, size, "%s quality %d", name, c->quality);
    else if (c->codec == POL_CODEC_JPEG_LS_NEAR)
        snprintf(buf, size, "%s error %d", name, c->near_error);
    else if (c->lossy && c->ratio > 0)
        snprintf(buf, size, "%s ratio %g", name, c->ratio);
    else if (c->lossy)
        snprintf(buf, size, "%s psnr %g", name, c->psnr_db);
    else
        snprintf(buf, size, "%s", name);
    return buf;
}

/* ---- parsing ------------------------------------------------------------------ */

/* Room for one more element of size bytes in *array. */
static bool grow(void **array, size_t *capacity, size_t count, size_t size)
{
    if (count < *capacity)
        return true;
    size_t more = *capacity ? *capacity * 2 : 8;
    void *bigger = realloc(*array, more * size);
    if (!bigger)
        return false;
    *array = bigger;
    *capacity = more;
    return true;
}

/* A whole number in [min, max]; message and hint say what it is. */
static int parse_whole(lexer *lx, long min, long max, const char *what,
                       const char *hint, long *out)
{
    token t;
    lex_next(lx, &t);
    char *end;
    errno = 0;
    long v = strtol(t.text, &end, 10);
    if (t.kind != TOK_NUMBER || *end || errno || v < min || v > max)
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             hint, "%s must be a whole number from %ld to "
                             "%ld, found '%s'", what, min, max, shown(&t));
    *out = v;
    return 0;
}

/* A number above low (exclusive: ratio) or from low (psnr), up to high. */
static int parse_real(lexer *lx, double low, bool low_included, double high,
                      const char *what, const char *hint, double *out)
{
    token t;
    lex_next(lx, &t);
    char *end;
    double v = strtod(t.text, &end);
    bool low_ok = low_included ? v >= low : v > low;
    if (t.kind != TOK_NUMBER || *end || !isfinite(v) || !low_ok || v > high)
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             hint, "%s must be a number %s %g %s %g, found "
                             "'%s'", what, low_included ? "from" : "above",
                             low, low_included ? "to" : "and at most", high,
                             shown(&t));
    *out = v;
    return 0;
}

/* [if|unless COND] up to the end of the line. */
static int parse_when(lexer *lx, pol_when *when, cond **condition)
{
    const token *next = lex_peek(lx);
    *when = POL_ALWAYS;
    *condition = NULL;
    if (next->kind == TOK_NEWLINE || next->kind == TOK_END)
        return 0;
    if (!is_word(next, "if") && !is_word(next, "unless"))
        return pol_diags_add(lx->diags, false, lx->file, next->line,
                             next->column,
                             "a condition as on reject lines: ... if "
                             "Modality == US",
                             "expected 'if', 'unless' or the end of the "
                             "line, found '%s'", shown(next));
    token t;
    lex_next(lx, &t);
    *when = is_word(&t, "if") ? POL_IF : POL_UNLESS;
    return parse_condition(lx, condition);
}

/* The parameter after the codec's name into target. */
static int parse_param(lexer *lx, const struct pol_codec_info *info,
                       pol_compression *target)
{
    long whole;
    token t;
    switch (info->param) {
    case PARAM_NONE:
        return 0;
    case PARAM_QUALITY:
        if (lex_expect_word(lx, "quality", "write: compress to jpeg quality 90") <
                0 ||
            parse_whole(lx, 1, 100, "JPEG quality",
                        "90 keeps fine detail; lower numbers lose more",
                        &whole) < 0)
            return -1;
        target->quality = (int)whole;
        return 0;
    case PARAM_NEAR:
        if (lex_expect_word(lx, "error", "write: compress to "
                                     "jpeg-ls-near-lossless error 2") < 0 ||
            parse_whole(lx, 1, 255, "the near-lossless error",
                        "the largest difference allowed in a sample; for "
                        "none, use jpeg-ls-lossless",
                        &whole) < 0)
            return -1;
        target->near_error = (int)whole;
        return 0;
    case PARAM_RATIO_OR_PSNR:
        lex_next(lx, &t);
        if (is_word(&t, "ratio"))
            return parse_real(lx, 1, false, MAX_RATIO, "the compression ratio",
                              "10 means 10:1; for no loss, use the "
                              "-lossless codec",
                              &target->ratio);
        if (is_word(&t, "psnr"))
            return parse_real(lx, MIN_PSNR_DB, true, MAX_PSNR_DB,
                              "the PSNR in dB",
                              "45 keeps the image close to the original; "
                              "higher keeps more",
                              &target->psnr_db);
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             "lossy: ratio 10 or psnr 45; lossless: "
                             "compress to jpeg2000-lossless or "
                             "htj2k-lossless",
                             "expected 'ratio' or 'psnr' after %s, found "
                             "'%s'", info->name, shown(&t));
    }
    return 0;
}

/* A line that can never apply: an earlier one applies to every instance
 * and is never skipped (a lossy line is skipped for lossy input). */
static void warn_unreachable(pol_policy *p, lexer *lx, const token *kw)
{
    for (size_t i = 0; i + 1 < p->compress_count; i++) {
        const compress_line *earlier = &p->compress[i];
        if (earlier->when != POL_ALWAYS || earlier->target.lossy)
            continue;
        pol_diags_add(lx->diags, true, lx->file, kw->line, kw->column,
                      "the first line that applies wins: put lines with a "
                      "condition before the line without one",
                      "this line never applies: %s:%u applies to every "
                      "instance", earlier->target.file, earlier->target.line);
        return;
    }
}

/* compress to CODEC ... and keep-syntax. */
static int st_compress(pol_policy *p, lexer *lx, const token *kw)
{
    pol_compression target = {.codec = POL_CODEC_NONE, .file = lx->file,
                              .line = kw->line};
    if (is_word(kw, "compress")) {
        token t;
        if (lex_expect_word(lx, "to", "write: compress to jpeg2000-lossless") < 0)
            return -1;
        lex_next(lx, &t);
        const struct pol_codec_info *info =
            t.kind == TOK_WORD ? pol_codec_by_name(t.text) : NULL;
        if (!info)
            return pol_diags_add(lx->diags, false, lx->file, t.line,
                                 t.column, "codecs: " CODEC_NAMES,
                                 "unknown codec '%s'", shown(&t));
        target.codec = info->codec;
        target.ts_uid = info->ts_uid;
        target.lossy = info->lossy;
        if (parse_param(lx, info, &target) < 0)
            return -1;
    }
    if (!grow((void **)&p->compress, &p->compress_capacity, p->compress_count,
              sizeof *p->compress))
        return lex_error_at(lx, kw, NULL, "out of memory");
    compress_line *line = &p->compress[p->compress_count++];
    *line = (compress_line){.target = target};
    if (parse_when(lx, &line->when, &line->condition) < 0)
        return -1;
    warn_unreachable(p, lx, kw);
    return 0;
}

/* One of X Y WIDTH HEIGHT. */
static int coordinate(lexer *lx, long min, const char *what, uint32_t *out)
{
    long v;
    if (parse_whole(lx, min, MAX_COORDINATE, what,
                    "in pixels: redact rectangle X Y WIDTH HEIGHT", &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int st_redact(pol_policy *p, lexer *lx, const token *kw)
{
    pol_rect rect = {.file = lx->file, .line = kw->line};
    if (lex_expect_word(lx, "rectangle", "write: redact rectangle X Y WIDTH "
                                     "HEIGHT") < 0 ||
        coordinate(lx, 0, "X", &rect.x) < 0 ||
        coordinate(lx, 0, "Y", &rect.y) < 0 ||
        coordinate(lx, 1, "WIDTH", &rect.width) < 0 ||
        coordinate(lx, 1, "HEIGHT", &rect.height) < 0)
        return -1;
    /* Each is at most 65535: the sums cannot overflow. */
    if (rect.x + rect.width > MAX_COORDINATE)
        return pol_diags_add(lx->diags, false, lx->file, kw->line, kw->column,
                             "Columns is at most 65535",
                             "the rectangle ends past column 65535 (X + "
                             "WIDTH is %u)", rect.x + rect.width);
    if (rect.y + rect.height > MAX_COORDINATE)
        return pol_diags_add(lx->diags, false, lx->file, kw->line, kw->column,
                             "Rows is at most 65535",
                             "the rectangle ends past row 65535 (Y + HEIGHT "
                             "is %u)", rect.y + rect.height);
    if (!grow((void **)&p->redact, &p->redact_capacity, p->redact_count,
              sizeof *p->redact))
        return lex_error_at(lx, kw, NULL, "out of memory");
    redact_line *line = &p->redact[p->redact_count++];
    *line = (redact_line){.rect = rect};
    return parse_when(lx, &line->when, &line->condition);
}

/* on compression-failure keep-original|quarantine */
static int st_on_failure(pol_policy *p, lexer *lx, const token *kw)
{
    token t;
    if (lex_expect_word(lx, "compression-failure",
                    "write: on compression-failure quarantine") < 0)
        return -1;
    lex_next(lx, &t);
    if (!is_word(&t, "keep-original") && !is_word(&t, "quarantine"))
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             "keep-original forwards the instance in the "
                             "syntax it came in; quarantine holds it",
                             "expected keep-original or quarantine, found "
                             "'%s'", shown(&t));
    if (p->failure_line)
        return pol_diags_add(lx->diags, false, lx->file, kw->line, kw->column,
                             NULL, "a second 'on compression-failure' line "
                             "(the first is on line %u)", p->failure_line);
    p->failure_line = kw->line;
    p->keep_original_on_failure = is_word(&t, "keep-original");
    return 0;
}

/* verify lossless on|off */
static int st_verify(pol_policy *p, lexer *lx, const token *kw)
{
    token t;
    if (lex_expect_word(lx, "lossless", "write: verify lossless on") < 0)
        return -1;
    lex_next(lx, &t);
    if (!is_word(&t, "on") && !is_word(&t, "off"))
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             "on (the default) decodes each lossless "
                             "result and compares it with the original",
                             "expected on or off, found '%s'", shown(&t));
    if (p->verify_line)
        return pol_diags_add(lx->diags, false, lx->file, kw->line, kw->column,
                             NULL, "a second 'verify lossless' line (the "
                             "first is on line %u)", p->verify_line);
    p->verify_line = kw->line;
    p->verify_off = is_word(&t, "off");
    if (p->verify_off)
        pol_diags_add(lx->diags, true, lx->file, t.line, t.column,
                      "keep the check unless throughput demands otherwise",
                      "lossless results are not checked: an encoder fault "
                      "would reach the archive unnoticed");
    return 0;
}

/* allow lossy-recompression */
static int st_allow(pol_policy *p, lexer *lx, const token *kw)
{
    (void)kw;
    token t;
    lex_next(lx, &t);
    if (!is_word(&t, "lossy-recompression"))
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                             "write: allow lossy-recompression",
                             "expected lossy-recompression, found '%s'",
                             shown(&t));
    if (p->allow_lossy_recompression)
        pol_diags_add(lx->diags, true, lx->file, t.line, t.column, NULL,
                      "allow lossy-recompression given twice");
    p->allow_lossy_recompression = true;
    pol_diags_add(lx->diags, true, lx->file, t.line, t.column,
                  "make sure the protocol allows a second generation of "
                  "loss", "lossy lines also apply to images already "
                  "compressed with loss, which then lose more");
    return 0;
}

static const char *const statement_words[] = {
    "compress", "keep-syntax", "redact", "on", "verify", "allow",
};

bool pixels_is_statement(const token *kw)
{
    for (size_t i = 0; i < sizeof statement_words / sizeof *statement_words;
         i++)
        if (is_word(kw, statement_words[i]))
            return true;
    return false;
}

int pixels_statement(pol_policy *p, lexer *lx, const token *kw)
{
    if (is_word(kw, "redact"))
        return st_redact(p, lx, kw);
    if (is_word(kw, "on"))
        return st_on_failure(p, lx, kw);
    if (is_word(kw, "verify"))
        return st_verify(p, lx, kw);
    if (is_word(kw, "allow"))
        return st_allow(p, lx, kw);
    return st_compress(p, lx, kw);
}

void pixels_free(pol_policy *p)
{
    for (size_t i = 0; i < p->compress_count; i++)
        cond_free(p->compress[i].condition);
    free(p->compress);
    for (size_t i = 0; i < p->redact_count; i++)
        cond_free(p->redact[i].condition);
    free(p->redact);
}

/* ---- queries ------------------------------------------------------------------ */

static bool applies(pol_when when, const cond *condition,
                    const dcm_dataset *ds)
{
    if (when == POL_ALWAYS)
        return true;
    return cond_eval(condition, ds) == (when == POL_IF);
}

/* Syntaxes whose pixel data is known to be exactly what was acquired:
 * the lossless JPEG processes, JPEG-LS and JPEG 2000 lossless, HTJ2K
 * lossless, JPEG XL lossless, RLE, Deflated Image Frame Compression,
 * Encapsulated Uncompressed. Any other encapsulated syntax may
 * hold lossy data (JPEG 2000 .91 and HTJ2K .203 may be reversible, but
 * only the codestream says so). */
static const char *const lossless_syntaxes[] = {
    "1.2.840.10008.1.2.4.57",  "1.2.840.10008.1.2.4.58",
    "1.2.840.10008.1.2.4.65",  "1.2.840.10008.1.2.4.66",
    "1.2.840.10008.1.2.4.70",  "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",  "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.8.1",   "1.2.840.10008.1.2.1.98",
};

static bool syntax_may_be_lossy(const dcm_ts *ts)
{
    if (!ts || !ts->encapsulated)
        return false;
    for (size_t i = 0;
         i < sizeof lossless_syntaxes / sizeof *lossless_syntaxes; i++)
        if (strcmp(ts->uid, lossless_syntaxes[i]) == 0)
            return false;
    return true;
}

/* Why ds is already lossy, into why; false if it is not. */
static bool already_lossy(const dcm_dataset *ds, char *why, size_t size)
{
    char *flag = dcm_dataset_get_utf8(ds, DCM_TAG(0x0028, 0x2110), NULL);
    bool flagged = false;
    if (flag) {
        char *value = flag;
        while (*value == ' ')
            value++;
        flagged = strncmp(value, "01", 2) == 0 &&
                  strspn(value + 2, " ") == strlen(value + 2);
        free(flag);
    }
    if (flagged) {
        snprintf(why, size, "Lossy Image Compression is 01");
        return true;
    }
    const dcm_ts *ts = dcm_dataset_syntax(ds);
    if (syntax_may_be_lossy(ts)) {
        snprintf(why, size, "transfer syntax %s may be lossy", ts->uid);
        return true;
    }
    return false;
}

bool pol_policy_compression(const pol_policy *p, const dcm_dataset *ds,
                            pol_compression *out, char *reason,
                            size_t reason_size)
{
    bool skipped = false, checked = false, lossy = false;
    char why[128];
    if (reason_size)
        reason[0] = '\0';
    for (size_t i = 0; i < p->compress_count; i++) {
        const compress_line *line = &p->compress[i];
        if (!applies(line->when, line->condition, ds))
            continue;
        if (line->target.lossy && !p->allow_lossy_recompression) {
            if (!checked) {
                lossy = already_lossy(ds, why, sizeof why);
                checked = true;
            }
            if (lossy) {
                if (!skipped && reason_size) {
                    char text[96];
                    snprintf(reason, reason_size,
                             "compress to %s skipped: %s and the policy "
                             "does not allow lossy recompression (%s:%u)",
                             pol_compression_format(&line->target, text,
                                                    sizeof text),
                             why, line->target.file, line->target.line);
                }
                skipped = true;
                continue;
            }
        }
        *out = line->target;
        return true;
    }
    *out = (pol_compression){.codec = POL_CODEC_NONE};
    return false;
}

size_t pol_policy_redactions(const pol_policy *p, const dcm_dataset *ds,
                             pol_rect *out, size_t max)
{
    size_t count = 0;
    for (size_t i = 0; i < p->redact_count; i++) {
        const redact_line *line = &p->redact[i];
        if (!applies(line->when, line->condition, ds))
            continue;
        if (count < max)
            out[count] = line->rect;
        count++;
    }
    return count;
}

bool pol_policy_keep_original_on_failure(const pol_policy *p)
{
    return p->keep_original_on_failure;
}

bool pol_policy_verify_lossless(const pol_policy *p)
{
    return !p->verify_off;
}

bool pol_policy_allow_lossy_recompression(const pol_policy *p)
{
    return p->allow_lossy_recompression;
}

bool pol_policy_compress_line(const pol_policy *p, size_t index,
                              pol_compression *out, pol_when *when)
{
    if (index >= p->compress_count)
        return false;
    *out = p->compress[index].target;
    *when = p->compress[index].when;
    return true;
}

bool pol_policy_redact_line(const pol_policy *p, size_t index, pol_rect *out,
                            pol_when *when)
{
    if (index >= p->redact_count)
        return false;
    *out = p->redact[index].rect;
    *when = p->redact[index].when;
    return true;
}
