/* cmd_apply.c - "siren apply" and "siren diff": a policy applied to files
 * offline, exactly as the gateway applies it to what it receives (the
 * same gw_deidentify: de-identification and the pixel stage), so that an
 * officer can try a policy on samples and see, element by element, what
 * it changes. */
#include "deidentify.h"
#include "gateway.h"
#include "pixels.h"
#include "sites.h"

#include "anon.h"
#include "dicom.h"
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char apply_help[] =
    "usage: siren apply --policy FILE -o OUTDIR [-q] INPUT...\n\n"
    "De-identifies DICOM files (INPUT: files, or folders walked\n"
    "recursively) under the policy exactly as the gateway's processor\n"
    "does, pixel stage included (redact and compress lines), and writes\n"
    "the results to OUTDIR, each named by its new SOP Instance UID\n"
    "(instance-N.dcm if it has none valid; a lossy compressed result gets\n"
    "a new one). Rejected and quarantined instances are not written, nor\n"
    "are those whose pixels cannot be redacted or compressed (quarantined\n"
    "with a reason \"pixels: ...\", as the gateway does); the summary gives\n"
    "the reasons and counts what the pixel stage did:\n"
    "  compressed  encoded in the syntax of the compress line that applies\n"
    "  redacted    rectangles blanked, the syntax kept (or native)\n"
    "  kept        the compression failed, the received syntax kept\n"
    "              (\"on compression-failure keep-original\")\n"
    "  unchanged   already in the line's syntax, or a lossy line skipped\n"
    "  failed      quarantined (counted there too)\n\n"
    "  --policy FILE   the policy (as `siren policy check` accepts it)\n"
    "  -o, --output D  the output folder (created if missing)\n"
    "  -q, --quiet     no progress line, no per-file lines\n\n"
    "Exit status: 0 every file was read and processed (rejections and\n"
    "quarantines included), 1 a file could not be read or written, or\n"
    "the policy did not compile, 2 usage.\n";

static const char diff_help[] =
    "usage: siren diff --policy FILE [--all] INPUT\n\n"
    "Applies the policy to one DICOM file in memory and prints what it\n"
    "changes, element by element at every depth of nesting:\n"
    "  - TAG path  value       removed\n"
    "  + TAG path  value       added\n"
    "  ~ TAG path  old -> new  changed\n"
    "    TAG path  value       unchanged (only with --all)\n\n"
    "The gateway's pixel stage runs too. Pixel Data that it redacts or\n"
    "compresses is one line, e.g.\n"
    "  ~ (7FE0,0010) PixelData native 524288 bytes -> JPEG-LS Lossless\n"
    "    Image Compression 201733 bytes\n"
    "the Transfer Syntax UID (0002,0010) of the file as written and the\n"
    "attributes that go with the new pixels (Photometric Interpretation,\n"
    "Lossy Image Compression, a lossy result's new SOP Instance UID, Burned\n"
    "In Annotation NO after a redaction) are shown like other elements,\n"
    "and a \"pixel data:\" line before the summary says what the stage did.\n\n"
    "Exit status: 0 done (also for a rejected or quarantined instance,\n"
    "whose reason is printed; an instance whose pixels cannot be processed\n"
    "is quarantined), 1 the file or the policy could not be read, 2 usage.\n";

/* ---- shared ----------------------------------------------------------------------- */

static void print_open_error(const char *path, const dcm_error *err)
{
    if (err->offset >= 0)
        fprintf(stderr, "%s: offset %lld: %s\n", path,
                (long long)err->offset, err->message);
    else
        fprintf(stderr, "%s: %s\n", path, err->message);
}

/* ---- siren apply ---------------------------------------------------------------- */

typedef struct path_list {
    char **items;
    size_t count, capacity;
} path_list;

static void add_path(void *ctx, const char *path)
{
    path_list *list = ctx;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 256;
        char **more = realloc(list->items, capacity * sizeof *more);
        if (!more) {
            perror("siren apply");
            exit(GW_EXIT_FAILURE);
        }
        list->items = more;
        list->capacity = capacity;
    }
    if (!(list->items[list->count] = strdup(path))) {
        perror("siren apply");
        exit(GW_EXIT_FAILURE);
    }
    list->count++;
}

/* Why instances were refused, with how many each: the summary's lines. */
#define MAX_REASONS 32

typedef struct tally {
    size_t written, rejected, quarantined, failed;
    size_t removed, replaced, remapped, shifted, cleaned;
    size_t pixels[GW_PIXELS_FAILED + 1]; /* by gw_pixel_action */
    size_t blanked;                       /* written with rectangles */
    struct {
        char text[GW_DEID_WHY_MAX];
        const char *label; /* "rejected", "quarantined", a pixel action */
        size_t count;
    } reasons[MAX_REASONS];
    size_t reason_count, other_reasons;
} tally;

static void count_reason(tally *t, const char *label, const char *reason)
{
    for (size_t i = 0; i < t->reason_count; i++)
        if (strcmp(t->reasons[i].label, label) == 0 &&
            strcmp(t->reasons[i].text, reason) == 0) {
            t->reasons[i].count++;
            return;
        }
    if (t->reason_count == MAX_REASONS) {
        t->other_reasons++;
        return;
    }
    snprintf(t->reasons[t->reason_count].text,
             sizeof t->reasons[t->reason_count].text, "%s", reason);
    t->reasons[t->reason_count].label = label;
    t->reasons[t->reason_count].count = 1;
    t->reason_count++;
}

/* The output name: the instance's (new) SOP Instance UID, which is
 * digits and dots once valid, else a sequence number. Never a name from
 * the input. */
static void output_name(const dcm_dataset *ds, size_t index, char *name,
                        size_t size)
{
    const dcm_element *el = dcm_dataset_find(ds, DCM_TAG_SOP_INSTANCE_UID);
    char *uid = el ? dcm_element_get_string(el, NULL) : NULL;
    if (uid && dcm_uid_is_valid(uid))
        snprintf(name, size, "%s.dcm", uid);
    else
        snprintf(name, size, "instance-%06zu.dcm", index + 1);
    free(uid);
}

/* Writes ds to dir/name through a temporary name, so that an interrupted
 * run never leaves a partial file under a final name. No fsync: this is
 * an offline tool, run again after a crash (the gateway's spool is where
 * durability matters). */
static int write_output(const dcm_dataset *ds, const char *dir,
                        const char *name, dcm_error *err)
{
    char final_path[4096], temp_path[4096];
    if ((size_t)snprintf(final_path, sizeof final_path, "%s/%s", dir, name) >=
            sizeof final_path ||
        (size_t)snprintf(temp_path, sizeof temp_path, "%s/.partial-%s", dir,
                         name) >= sizeof temp_path)
        return dcm_fail(err, DCM_E_ARG, -1, "output path too long");
    int fd = open(temp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "%s: %s", temp_path,
                        strerror(errno));
    int rc = dcm_write_file(ds, NULL, dcm_fd_writer, &fd, err);
    if (close(fd) < 0 && rc == DCM_OK)
        rc = dcm_fail(err, DCM_E_IO, -1, "%s: %s", temp_path,
                      strerror(errno));
    if (rc == DCM_OK && rename(temp_path, final_path) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "%s: %s", final_path,
                      strerror(errno));
    if (rc != DCM_OK)
        unlink(temp_path);
    return rc;
}

/* What the pixel stage did, in a few words: "compressed to
 * htj2k-lossless, ratio 2.31:1, verify passed", "kept, 1 rectangle
 * blanked: compression to ... failed: ...". */
static void describe_pixels(const gw_pixel_outcome *o, char *buf, size_t size)
{
    char blanked[48] = "";
    if (o->redacted)
        snprintf(blanked, sizeof blanked, ", %zu rectangle%s blanked",
                 o->redacted, o->redacted == 1 ? "" : "s");
    const char *sep = o->reason[0] ? ": " : "";
    if (o->action == GW_PIXELS_COMPRESSED)
        snprintf(buf, size, "compressed to %s, ratio %.2f:1, verify %s%s%s%s",
                 o->codec ? o->codec : "?", o->ratio, o->verify, blanked, sep,
                 o->reason);
    else
        snprintf(buf, size, "%s%s%s%s", gw_pixel_action_name(o->action),
                 blanked, sep, o->reason);
}

/* Counts a written instance's pixel stage; what it has to say (a failed
 * compression kept, a lossy line skipped) goes with the reasons. */
static void count_pixels(tally *t, const char *path, bool quiet,
                         const gw_pixel_outcome *o)
{
    if (o->action == GW_PIXELS_NONE)
        return;
    t->pixels[o->action]++;
    t->blanked += o->redacted > 0;
    if (!o->reason[0])
        return;
    count_reason(t, gw_pixel_action_name(o->action), o->reason);
    if (!quiet) {
        char text[sizeof o->reason + 128];
        describe_pixels(o, text, sizeof text);
        fprintf(stderr, "%s: pixel data %s\n", path, text);
    }
}

static void apply_one(const pol_policy *p, const char *path, size_t index,
                      const char *out_dir, bool quiet, tally *t)
{
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(path, NULL, &err);
    if (!f) {
        print_open_error(path, &err);
        t->failed++;
        return;
    }
    dcm_dataset *ds = dcm_file_dataset(f);
    gw_deid d;
    char name[DCM_UID_MAX + 16];
    switch (gw_deidentify(p, ds, &d)) {
    case GW_DEID_ERROR:
        fprintf(stderr, "%s: %s\n", path, d.why);
        t->failed++;
        break;
    case GW_DEID_REFUSED: {
        bool rejected = d.anon.verdict == POL_REJECT;
        const char *label = rejected ? "rejected" : "quarantined";
        if (!quiet)
            fprintf(stderr, "%s: %s: %s\n", path, label, d.anon.reason);
        count_reason(t, label, d.anon.reason);
        *(rejected ? &t->rejected : &t->quarantined) += 1;
        break;
    }
    case GW_DEID_PIXELS_FAILED:
        /* Quarantined by the gateway, with this reason. */
        if (!quiet)
            fprintf(stderr, "%s: quarantined: %s\n", path, d.why);
        count_reason(t, "quarantined", d.why);
        t->quarantined++;
        t->pixels[GW_PIXELS_FAILED]++;
        break;
    case GW_DEID_FORWARD:
        output_name(ds, index, name, sizeof name);
        if (write_output(ds, out_dir, name, &err) != DCM_OK) {
            fprintf(stderr, "%s: not written: %s\n", path, err.message);
            t->failed++;
            break;
        }
        t->written++;
        t->removed += d.anon.removed + d.anon.emptied;
        t->replaced += d.anon.replaced;
        t->remapped += d.anon.uids_remapped;
        t->shifted += d.anon.dates_shifted;
        t->cleaned += d.anon.cleaned;
        count_pixels(t, path, quiet, &d.pixels);
        break;
    }
    dcm_file_free(f);
}

static void print_summary(const tally *t, size_t total, const char *out_dir)
{
    printf("%zu file%s: %zu written to %s, %zu rejected, %zu quarantined, "
           "%zu failed\n",
           total, total == 1 ? "" : "s", t->written, out_dir, t->rejected,
           t->quarantined, t->failed);
    printf("in the written files: %zu attributes removed or emptied, %zu "
           "replaced, %zu UIDs remapped, %zu dates shifted, %zu texts "
           "cleaned\n",
           t->removed, t->replaced, t->remapped, t->shifted, t->cleaned);
    const size_t *px = t->pixels;
    if (px[GW_PIXELS_COMPRESSED] + px[GW_PIXELS_REDACTED] +
        px[GW_PIXELS_KEPT] + px[GW_PIXELS_UNCHANGED] + px[GW_PIXELS_FAILED])
        printf("pixel data: %zu compressed, %zu redacted, %zu kept, %zu "
               "unchanged, %zu failed; rectangles blanked in %zu\n",
               px[GW_PIXELS_COMPRESSED], px[GW_PIXELS_REDACTED],
               px[GW_PIXELS_KEPT], px[GW_PIXELS_UNCHANGED],
               px[GW_PIXELS_FAILED], t->blanked);
    for (size_t i = 0; i < t->reason_count; i++)
        printf("  %zu %s: %s\n", t->reasons[i].count, t->reasons[i].label,
               t->reasons[i].text);
    if (t->other_reasons)
        printf("  %zu refused for other reasons\n", t->other_reasons);
}

/* "[#########           ] 45/100" on one terminal line. */
static void show_progress(size_t done, size_t total)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    size_t filled = total ? done * WIDTH / total : WIDTH;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : ' ';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu", bar, done, total);
}

typedef struct apply_options {
    const char *policy;
    const char *out_dir;
    bool quiet, all;
    int first_input;
} apply_options;

/* Options of apply (-o needed) and diff (--all allowed). -1: usage. */
static int parse_options(int argc, char **argv, bool diff, apply_options *o)
{
    const char *help = diff ? diff_help : apply_help;
    *o = (apply_options){0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(help, stdout);
            exit(GW_EXIT_OK);
        } else if (strcmp(opt, "--") == 0) {
            i++;
            break;
        } else if (strcmp(opt, "--policy") == 0 && has_value) {
            o->policy = argv[++i];
        } else if (!diff && (strcmp(opt, "-o") == 0 ||
                             strcmp(opt, "--output") == 0) && has_value) {
            o->out_dir = argv[++i];
        } else if (!diff && (strcmp(opt, "-q") == 0 ||
                             strcmp(opt, "--quiet") == 0)) {
            o->quiet = true;
        } else if (diff && strcmp(opt, "--all") == 0) {
            o->all = true;
        } else {
            fprintf(stderr, "unknown option or missing value: %s\n\n%s", opt,
                    help);
            return -1;
        }
    }
    o->first_input = i;
    const char *problem = !o->policy                 ? "--policy is required"
                          : !diff && !o->out_dir     ? "-o OUTDIR is required"
                          : i >= argc                ? "no input given"
                          : diff && i + 1 != argc    ? "diff takes one file"
                                                     : NULL;
    if (problem) {
        fprintf(stderr, "%s\n\n%s", problem, help);
        return -1;
    }
    return 0;
}

static bool make_output_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return false;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: not a directory\n", dir);
        return false;
    }
    return true;
}

int gw_cmd_apply(int argc, char **argv)
{
    apply_options o;
    if (parse_options(argc, argv, false, &o) < 0)
        return GW_EXIT_USAGE;
    pol_policy *p = gw_policy_load(o.policy, !o.quiet, NULL);
    if (!p)
        return GW_EXIT_FAILURE;
    if (!make_output_dir(o.out_dir)) {
        pol_policy_unref(p);
        return GW_EXIT_FAILURE;
    }
    path_list inputs = {0};
    tally *t = calloc(1, sizeof *t);
    if (!t) {
        perror("siren apply");
        exit(GW_EXIT_FAILURE);
    }
    for (int i = o.first_input; i < argc; i++)
        t->failed += gw_walk_files(argv[i], add_path, &inputs);
    size_t total = inputs.count + t->failed; /* unreadable paths count */
    bool progress = !o.quiet && isatty(STDERR_FILENO);
    for (size_t i = 0; i < inputs.count; i++) {
        apply_one(p, inputs.items[i], i, o.out_dir, o.quiet, t);
        if (progress)
            show_progress(i + 1, inputs.count);
        free(inputs.items[i]);
    }
    if (progress)
        fputc('\n', stderr);
    print_summary(t, total, o.out_dir);
    int status = t->failed ? GW_EXIT_FAILURE : GW_EXIT_OK;
    free(inputs.items);
    free(t);
    pol_policy_unref(p);
    return status;
}

/* ---- siren diff ----------------------------------------------------------------- */

/* Values longer than this are shown shortened. */
#define SHOWN_VALUE_MAX 64
/* Binary values up to this size are compared byte for byte; larger ones
 * (pixel data) by length. */
#define COMPARED_BINARY_MAX (1u << 20)

typedef struct diff_state {
    bool all;             /* unchanged elements too */
    bool pixels_replaced; /* the pixel stage wrote new Pixel Data */
    size_t removed, added, changed, unchanged;
} diff_state;

/* A printable form of an element's value into buf: text decoded to
 * UTF-8 and shortened; binary values by length. */
static void show_value(const dcm_dataset *ds, const dcm_element *el,
                       char *buf, size_t size)
{
    dcm_vr vr = dcm_element_vr(el);
    if (dcm_element_kind_of(el) == DCM_KIND_SEQUENCE) {
        size_t items = dcm_element_item_count(el);
        snprintf(buf, size, "(%zu item%s)", items, items == 1 ? "" : "s");
        return;
    }
    if (dcm_element_kind_of(el) != DCM_KIND_VALUE || !dcm_vr_is_string(vr)) {
        snprintf(buf, size, "(%s, %llu bytes)", dcm_vr_name(vr),
                 (unsigned long long)dcm_element_length(el));
        return;
    }
    char *text = dcm_dataset_get_utf8(ds, dcm_element_tag(el), NULL);
    if (!text) {
        snprintf(buf, size, "(undecodable)");
        return;
    }
    /* One line per element: control characters (line breaks of an LT or
     * UT, escape sequences) are shown as '.'. */
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '.';
    if (strlen(text) > SHOWN_VALUE_MAX)
        snprintf(buf, size, "\"%.*s...\"", SHOWN_VALUE_MAX, text);
    else
        snprintf(buf, size, "\"%s\"", text);
    free(text);
}

/* Whether two non-sequence elements hold the same value. */
static bool same_value(const dcm_dataset *a_ds, const dcm_element *a,
                       const dcm_dataset *b_ds, const dcm_element *b)
{
    if (dcm_element_vr(a) != dcm_element_vr(b) ||
        dcm_element_kind_of(a) != dcm_element_kind_of(b))
        return false;
    if (dcm_element_kind_of(a) == DCM_KIND_FRAGMENTS)
        return dcm_element_fragment_count(a) == dcm_element_fragment_count(b);
    if (dcm_vr_is_string(dcm_element_vr(a))) {
        char *x = dcm_dataset_get_utf8(a_ds, dcm_element_tag(a), NULL);
        char *y = dcm_dataset_get_utf8(b_ds, dcm_element_tag(b), NULL);
        bool same = x && y && strcmp(x, y) == 0;
        free(x);
        free(y);
        return same;
    }
    uint64_t len = dcm_element_length(a);
    if (len != dcm_element_length(b))
        return false;
    if (len == 0 || len > COMPARED_BINARY_MAX)
        return true;
    uint8_t *x = malloc(len), *y = malloc(len);
    bool same = x && y && dcm_element_read(a, 0, x, len, NULL) == DCM_OK &&
                dcm_element_read(b, 0, y, len, NULL) == DCM_OK &&
                memcmp(x, y, len) == 0;
    free(x);
    free(y);
    return same;
}

/* The keyword of an element: the standard one, or for a private element
 * the dictionary's name under its creator, or "". */
static const char *keyword_of(const dcm_dataset *ds, uint32_t tag)
{
    char creator[DCM_CREATOR_MAX + 1];
    if (dcm_tag_is_private_creator(tag))
        return "PrivateCreator";
    const dcm_dict_entry *e =
        !dcm_tag_is_private(tag) ? dcm_dict_find(tag)
        : dcm_dataset_private_creator(ds, tag, creator, sizeof creator)
            ? dcm_dict_find_private(creator, tag)
            : NULL;
    return e ? e->keyword : "";
}

/* The top-level Pixel Data of ds in words: "native 524288 bytes",
 * "JPEG-LS Lossless Image Compression 201733 bytes". */
static void show_pixels(const dcm_dataset *ds, const dcm_element *el,
                        char *buf, size_t size)
{
    const dcm_ts *ts = dcm_dataset_syntax(ds);
    bool encapsulated = dcm_element_kind_of(el) == DCM_KIND_FRAGMENTS;
    snprintf(buf, size, "%s %llu bytes",
             encapsulated && ts ? ts->name : "native",
             (unsigned long long)gw_pixels_bytes(ds));
}

static void print_line(char mark, const dcm_dataset *ds, uint32_t tag,
                       const char *path, const char *value)
{
    printf("%c (%04X,%04X) %s%s %s\n", mark, DCM_TAG_GROUP(tag),
           DCM_TAG_ELEMENT(tag), path, keyword_of(ds, tag), value);
}

static void diff_datasets(const dcm_dataset *a, const dcm_dataset *b,
                          const char *path, diff_state *st);

/* An element's value as a diff line shows it: the image's Pixel Data
 * by its syntax and size, the others by show_value. */
static void describe(const dcm_dataset *ds, const dcm_element *el,
                     const char *path, char *buf, size_t size)
{
    if (!path[0] && dcm_element_tag(el) == DCM_TAG_PIXEL_DATA)
        show_pixels(ds, el, buf, size);
    else
        show_value(ds, el, buf, size);
}

static void diff_one(const dcm_dataset *a_ds, const dcm_element *a,
                     const dcm_dataset *b_ds, const dcm_element *b,
                     const char *path, diff_state *st)
{
    char before[SHOWN_VALUE_MAX + 64], after[SHOWN_VALUE_MAX + 64];
    uint32_t tag = dcm_element_tag(a ? a : b);
    if (!b || !a) {
        describe(a ? a_ds : b_ds, a ? a : b, path, before, sizeof before);
        print_line(a ? '-' : '+', a ? a_ds : b_ds, tag, path, before);
        *(a ? &st->removed : &st->added) += 1;
        return;
    }
    bool sequences = dcm_element_kind_of(a) == DCM_KIND_SEQUENCE &&
                     dcm_element_kind_of(b) == DCM_KIND_SEQUENCE;
    if (sequences) {
        const char *keyword = keyword_of(a_ds, tag);
        size_t na = dcm_element_item_count(a), nb = dcm_element_item_count(b);
        if (na != nb) {
            show_value(a_ds, a, before, sizeof before);
            show_value(b_ds, b, after, sizeof after);
            char both[2 * sizeof before + 8];
            snprintf(both, sizeof both, "%s -> %s", before, after);
            print_line('~', a_ds, tag, path, both);
            st->changed++;
        }
        for (size_t i = 0; i < (na > nb ? na : nb); i++) {
            char item_path[512];
            snprintf(item_path, sizeof item_path, "%s%s[%zu]/", path,
                     keyword[0] ? keyword : "?", i + 1);
            const dcm_dataset *ia = i < na ? dcm_element_item(a, i) : NULL;
            const dcm_dataset *ib = i < nb ? dcm_element_item(b, i) : NULL;
            diff_datasets(ia, ib, item_path, st);
        }
        return;
    }
    /* Pixel data re-encoded to the same bytes (a rectangle that was
     * black already) is still what the gateway wrote anew. */
    bool replaced = !path[0] && tag == DCM_TAG_PIXEL_DATA &&
                    st->pixels_replaced;
    if (!replaced && same_value(a_ds, a, b_ds, b)) {
        st->unchanged++;
        if (st->all) {
            describe(a_ds, a, path, before, sizeof before);
            print_line(' ', a_ds, tag, path, before);
        }
        return;
    }
    describe(a_ds, a, path, before, sizeof before);
    describe(b_ds, b, path, after, sizeof after);
    char both[2 * sizeof before + 8];
    snprintf(both, sizeof both, "%s -> %s", before, after);
    print_line('~', a_ds, tag, path, both);
    st->changed++;
}

/* Both lists are in ascending tag order: a merge. Either dataset may be
 * NULL (an item only one side has). */
static void diff_datasets(const dcm_dataset *a, const dcm_dataset *b,
                          const char *path, diff_state *st)
{
    size_t na = a ? dcm_dataset_count(a) : 0, nb = b ? dcm_dataset_count(b) : 0;
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        const dcm_element *ea = i < na ? dcm_dataset_at(a, i) : NULL;
        const dcm_element *eb = j < nb ? dcm_dataset_at(b, j) : NULL;
        uint32_t ta = ea ? dcm_element_tag(ea) : UINT32_MAX;
        uint32_t tb = eb ? dcm_element_tag(eb) : UINT32_MAX;
        if (ea && (!eb || ta < tb)) {
            diff_one(a, ea, b, NULL, path, st);
            i++;
        } else if (eb && (!ea || tb < ta)) {
            diff_one(a, NULL, b, eb, path, st);
            j++;
        } else {
            diff_one(a, ea, b, eb, path, st);
            i++;
            j++;
        }
    }
}

/* The syntax dcm_write_file gives ds (dicom.h): its own encapsulated
 * syntax while its Pixel Data is fragments, else Explicit VR Little
 * Endian. */
static const char *written_syntax(const dcm_dataset *ds)
{
    const dcm_ts *ts = dcm_dataset_syntax(ds);
    const dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    if (ts && ts->encapsulated && el &&
        dcm_element_kind_of(el) == DCM_KIND_FRAGMENTS)
        return ts->uid;
    return DCM_TS_EXPLICIT_LE;
}

/* The Transfer Syntax UID (file meta) of the input and of the file the
 * gateway would write: it changes with compression, and for native
 * input not in Explicit VR Little Endian. */
static void diff_syntax(const dcm_dataset *a, const dcm_dataset *b,
                        diff_state *st)
{
    const dcm_ts *input = dcm_dataset_syntax(a);
    if (!input)
        return;
    const char *written = written_syntax(b);
    char value[2 * (DCM_UID_MAX + 3) + 8];
    bool same = strcmp(input->uid, written) == 0;
    snprintf(value, sizeof value, same ? "\"%s\"" : "\"%s\" -> \"%s\"",
             input->uid, written);
    *(same ? &st->unchanged : &st->changed) += 1;
    if (!same || st->all)
        print_line(same ? ' ' : '~', a, DCM_TAG(0x0002, 0x0010), "", value);
}

int gw_cmd_diff(int argc, char **argv)
{
    apply_options o;
    if (parse_options(argc, argv, true, &o) < 0)
        return GW_EXIT_USAGE;
    pol_policy *p = gw_policy_load(o.policy, true, NULL);
    if (!p)
        return GW_EXIT_FAILURE;
    const char *path = argv[o.first_input];
    dcm_error err = {0};
    dcm_file *before = dcm_file_open(path, NULL, &err);
    dcm_file *after = before ? dcm_file_open(path, NULL, &err) : NULL;
    int status = GW_EXIT_FAILURE;
    gw_deid d;
    if (!after) {
        print_open_error(path, &err);
    } else if (gw_deidentify(p, dcm_file_dataset(after), &d) ==
               GW_DEID_ERROR) {
        fprintf(stderr, "%s: %s\n", path, d.why);
    } else if (d.status == GW_DEID_REFUSED) {
        printf("%s: %s: %s\n", path,
               d.anon.verdict == POL_REJECT ? "rejected" : "quarantined",
               d.anon.reason);
        status = GW_EXIT_OK;
    } else if (d.status == GW_DEID_PIXELS_FAILED) {
        printf("%s: quarantined: %s\n", path, d.why);
        status = GW_EXIT_OK;
    } else {
        const gw_pixel_outcome *px = &d.pixels;
        diff_state st = {
            .all = o.all,
            .pixels_replaced = px->action == GW_PIXELS_COMPRESSED ||
                               px->action == GW_PIXELS_REDACTED ||
                               (px->action == GW_PIXELS_KEPT &&
                                px->redacted > 0)};
        diff_syntax(dcm_file_dataset(before), dcm_file_dataset(after), &st);
        diff_datasets(dcm_file_dataset(before), dcm_file_dataset(after), "",
                      &st);
        if (px->action != GW_PIXELS_NONE) {
            char text[sizeof px->reason + 128];
            describe_pixels(px, text, sizeof text);
            printf("pixel data: %s\n", text);
        }
        printf("%zu removed, %zu added, %zu changed, %zu unchanged "
               "(policy \"%s\" version %u)\n",
               st.removed, st.added, st.changed, st.unchanged,
               pol_policy_name(p), pol_policy_version(p));
        status = GW_EXIT_OK;
    }
    dcm_file_free(after);
    dcm_file_free(before);
    pol_policy_unref(p);
    return status;
}
