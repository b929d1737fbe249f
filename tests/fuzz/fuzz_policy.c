/* fuzz_policy.c - libFuzzer harness for the policy compiler (policy/: the
 * lexer, the parser, conditions, tag references, templates and CSV
 * tables, the pixel lines), and for what a compiled policy does: the
 * reject/quarantine filter on a fixed dataset, the compression and
 * redaction queries on it (as received and as already-lossy JPEG),
 * replace templates, table lookups, tag references against the
 * dataset's elements. The filter runs on a thread
 * with a quarter of the stack of the gateway's association threads. The
 * same main file is also read as a configuration (policy/config.c: the
 * syntax of siren.conf, with the gateway's block words).
 *
 * pol_policy_load reads files, so each input is written to files in a
 * temporary folder of this process (made once, removed at exit). The
 * input is up to three parts, separated by a line "%%":
 *
 *   part 0  p.policy, the policy loaded
 *   part 1  t.csv, a lookup table (else a fixed one: key,value rows)
 *   part 2  i.policy, for include "i.policy" (else a fixed one); any
 *           further "%%" lines are part of it
 *
 * The folder also holds files a policy may name: k (a 32-byte key, mode
 * 0600), k644 (a key others may read, refused), short (a key too short),
 * subjects.csv (as examples/policies/subjects.csv). Variables: ${KEY} and
 * ${SIREN_PSEUDONYM_KEY} are "k", ${MOD} "CT", ${NUM} "42", ${STR} a string
 * with spaces and quotes, ${LONG} 1100 characters, ${EMPTY} ""; the others
 * are unset.
 *
 * Beyond the sanitizers it checks that a policy comes exactly when there
 * is no error, and that what the parser accepted holds: replace texts are
 * well-formed templates, date shift ranges are not empty, "else default"
 * has its text, compression parameters are in their ranges, a lossy
 * line never applies to lossy data unless allowed, rectangles are not
 * empty and end within 65535.
 *
 * FUZZ_POLICY_TRACE=1 in the environment prints each run's diagnostics and
 * whether it compiled (to check what a seed or a finding reaches). */
#include "dicom.h"
#include "policy.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[4096];
static char policy_path[4200];
static dcm_dataset *dataset;
static dcm_dataset *lossy_dataset; /* the same, flagged and in JPEG */
static char long_value[1101];
static int trace = -1; /* FUZZ_POLICY_TRACE: 1 prints, 0 quiet */

static const char default_table[] = "key,value,other\n"
                                    "PAT-0001,S-001,A\n"
                                    "\"quoted, key\",S-002,B\n";
static const char default_include[] = "keep SoftwareVersions\n"
                                      "reject if Modality == XA\n";
static const char subjects[] = "patient_id,subject_id,arm\n"
                               "PAT-0001,HOBIT-001,A\n"
                               "PAT-0002,HOBIT-002,B\n"
                               "1CT1,HOBIT-004,B\n";

static void write_file(const char *name, const void *bytes, size_t len,
                       mode_t mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* Written over, then cut to length: on ext4 a truncation to zero
     * followed by writes forces the data out at close (auto_da_alloc),
     * which made each run take 10 ms. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0 || fchmod(fd, mode) < 0 ||
        (len && pwrite(fd, bytes, len, 0) != (ssize_t)len) ||
        ftruncate(fd, (off_t)len) < 0) {
        perror(path);
        abort();
    }
    close(fd);
}

static void remove_dir(void)
{
    static const char *const names[] = {"p.policy", "t.csv",    "i.policy",
                                        "k",        "k644",     "short",
                                        "subjects.csv"};
    char path[4200];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    dcm_dataset_free(dataset);
    dataset = NULL;
    dcm_dataset_free(lossy_dataset);
    lossy_dataset = NULL;
}

static void set(dcm_dataset *ds, uint16_t group, uint16_t element, dcm_vr vr,
                const char *text)
{
    if (dcm_dataset_set_string(ds, DCM_TAG(group, element), vr, text, NULL) <
        0)
        abort();
}

/* What conditions and references look at: strings of several VRs, a
 * multi-valued one, numbers, a private block, and a sequence whose item
 * holds another sequence. */
static dcm_dataset *make_dataset(void)
{
    dcm_dataset *ds = dcm_dataset_new();
    if (!ds)
        abort();
    set(ds, 0x0008, 0x0005, DCM_VR_CS, "ISO_IR 100");
    set(ds, 0x0008, 0x0016, DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.2");
    set(ds, 0x0008, 0x0018, DCM_VR_UI, "1.2.3.4.5.6");
    set(ds, 0x0008, 0x0020, DCM_VR_DA, "20240131");
    set(ds, 0x0008, 0x0050, DCM_VR_SH, "ACC 123 ");
    set(ds, 0x0008, 0x0060, DCM_VR_CS, "CT");
    set(ds, 0x0008, 0x0080, DCM_VR_LO, "H\xf4pital Nord");
    set(ds, 0x0008, 0x1030, DCM_VR_LO, "CHEST\\ABDOMEN");
    set(ds, 0x0010, 0x0010, DCM_VR_PN, "Doe^John");
    set(ds, 0x0010, 0x0020, DCM_VR_LO, "PAT-0001");
    set(ds, 0x0010, 0x1010, DCM_VR_AS, "045Y");
    set(ds, 0x0018, 0x0050, DCM_VR_DS, "1.5\\2.50\\-3e2");
    set(ds, 0x0018, 0x1020, DCM_VR_LO, "VE11C\\ syngo ");
    set(ds, 0x0019, 0x0010, DCM_VR_LO, "GEMS_ACQU_01");
    set(ds, 0x0019, 0x1024, DCM_VR_DS, "17");
    set(ds, 0x0020, 0x0013, DCM_VR_IS, "7");
    set(ds, 0x0020, 0x4000, DCM_VR_LT, "a\\b c");
    set(ds, 0x0028, 0x0301, DCM_VR_CS, "NO");
    set(ds, 0x6000, 0x0022, DCM_VR_LO, "overlay");
    uint16_t rows = 512;
    double b_value = 1000.5;
    float graphic[1100]; /* more values than a test looks at */
    for (size_t i = 0; i < sizeof graphic / sizeof *graphic; i++)
        graphic[i] = (float)i / 2;
    if (dcm_dataset_set_bytes(ds, DCM_TAG(0x0028, 0x0010), DCM_VR_US, &rows,
                              sizeof rows, NULL) < 0 ||
        dcm_dataset_set_bytes(ds, DCM_TAG(0x0018, 0x9087), DCM_VR_FD,
                              &b_value, sizeof b_value, NULL) < 0 ||
        dcm_dataset_set_bytes(ds, DCM_TAG(0x0070, 0x0022), DCM_VR_FL,
                              graphic, sizeof graphic, NULL) < 0)
        abort();
    /* RequestAttributesSequence > item > AccessionNumber, and
     * ReferencedStudySequence inside it. */
    dcm_element *seq = dcm_dataset_set_sequence(ds, DCM_TAG(0x0040, 0x0275),
                                                NULL);
    dcm_dataset *item = seq ? dcm_element_append_item(seq, NULL) : NULL;
    if (!item)
        abort();
    set(item, 0x0008, 0x0050, DCM_VR_SH, "ACC-IN-ITEM");
    set(item, 0x0040, 0x1001, DCM_VR_SH, "RP1");
    dcm_element *inner = dcm_dataset_set_sequence(
        item, DCM_TAG(0x0008, 0x1110), NULL);
    dcm_dataset *inner_item = inner ? dcm_element_append_item(inner, NULL)
                                    : NULL;
    if (!inner_item || !dcm_element_append_item(seq, NULL))
        abort();
    set(inner_item, 0x0008, 0x1155, DCM_VR_UI, "1.2.3.9");
    set(inner_item, 0x0010, 0x0020, DCM_VR_LO, "PAT-0002");
    return ds;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_policy.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    snprintf(policy_path, sizeof policy_path, "%s/p.policy", dir);
    static const char key[] = "0123456789abcdef0123456789abcdef\n";
    write_file("k", key, sizeof key - 1, 0600);
    write_file("k644", key, sizeof key - 1, 0644);
    write_file("short", "0123\n", 5, 0600);
    write_file("subjects.csv", subjects, sizeof subjects - 1, 0644);
    memset(long_value, 'L', sizeof long_value - 1);
    dataset = make_dataset();
    lossy_dataset = make_dataset();
    set(lossy_dataset, 0x0028, 0x2110, DCM_VR_CS, "01");
    dcm_dataset_set_syntax(lossy_dataset,
                           dcm_ts_find("1.2.840.10008.1.2.4.50"));
    atexit(remove_dir);
}

static const char *lookup(void *ctx, const char *name)
{
    (void)ctx;
    static const struct {
        const char *name, *value;
    } vars[] = {
        {"KEY", "k"},   {"SIREN_PSEUDONYM_KEY", "k"},
        {"MOD", "CT"},  {"NUM", "42"},
        {"EMPTY", ""},  {"STR", "a \"b\" c\\d"},
    };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (strcmp(name, vars[i].name) == 0)
            return vars[i].value;
    if (strcmp(name, "LONG") == 0)
        return long_value;
    return NULL;
}

/* Template values: the original from the dataset, the new one fixed
 * (absent for every other attribute). */
typedef struct values {
    char *owned[32];
    size_t count;
} values;

static const char *get_value(void *ctx, uint32_t tag, bool original)
{
    values *v = ctx;
    if (!original)
        return (tag & 1) ? NULL : "NEW^VALUE";
    if (v->count == sizeof v->owned / sizeof *v->owned)
        return NULL;
    char *text = dcm_dataset_get_utf8(dataset, tag, NULL);
    if (text)
        v->owned[v->count++] = text;
    return text;
}

static void count_ref(void *ctx, uint32_t tag, bool original)
{
    (void)tag;
    (void)original;
    (*(size_t *)ctx)++;
}

/* Every element of ds and its items against ref: the path walk up
 * through the items' parents. */
static size_t match_all(const pol_tagref *ref, const dcm_dataset *ds)
{
    size_t hits = 0;
    for (size_t i = 0; i < dcm_dataset_count(ds); i++) {
        const dcm_element *el = dcm_dataset_at(ds, i);
        hits += pol_tagref_matches(ref, ds, dcm_element_tag(el));
        for (size_t k = 0; k < dcm_element_item_count(el); k++)
            hits += match_all(ref, dcm_element_item(el, k));
    }
    return hits;
}

/* The filter as the gateway runs it: on an association thread, whose
 * stack is 256 KiB (gateway/cmd_serve.c), shared with DIMSE, the store
 * handler and the engine: the filter gets a quarter of it here. (A
 * condition of a thousand tests joined by "or" once overflowed it.) */
#define FILTER_STACK (64 << 10)
static void *filter(void *arg)
{
    const pol_policy *p = arg;
    char reason[256], small[8];
    pol_policy_filter(p, dataset, reason, sizeof reason);
    pol_policy_filter(p, dataset, small, sizeof small);
    pol_policy_filter(p, dataset, reason, 0);
    return NULL;
}

/* What the parser accepted for a compress line holds. */
static void check_compression(const pol_compression *c)
{
    char text[96];
    pol_compression_format(c, text, sizeof text);
    if ((c->codec == POL_CODEC_NONE) != (c->ts_uid == NULL))
        abort();
    if (c->codec == POL_CODEC_JPEG && (c->quality < 1 || c->quality > 100))
        abort();
    if (c->codec == POL_CODEC_JPEG_LS_NEAR &&
        (c->near_error < 1 || c->near_error > 255))
        abort();
    if ((c->codec == POL_CODEC_J2K || c->codec == POL_CODEC_HTJ2K) &&
        !(c->ratio > 1) && !(c->psnr_db >= 20))
        abort();
}

/* The pixel queries on ds: the compress line chosen is one of the
 * policy's, and never a lossy one for lossy data unless allowed. */
static void exercise_pixels(const pol_policy *p, const dcm_dataset *ds,
                            bool lossy)
{
    pol_compression c, line;
    pol_when when;
    char reason[256], small[8];
    bool found = pol_policy_compression(p, ds, &c, reason, sizeof reason);
    pol_policy_compression(p, ds, &c, small, sizeof small);
    if (pol_policy_compression(p, ds, &c, NULL, 0) != found)
        abort();
    if (found != (c.file != NULL))
        abort();
    if (lossy && c.lossy && !pol_policy_allow_lossy_recompression(p))
        abort();
    for (size_t i = 0; pol_policy_compress_line(p, i, &line, &when); i++)
        check_compression(&line);
    pol_rect rects[4], rect;
    size_t count = pol_policy_redactions(p, ds, rects, 4);
    if (pol_policy_redactions(p, ds, NULL, 0) != count)
        abort();
    for (size_t i = 0; pol_policy_redact_line(p, i, &rect, &when); i++)
        if (rect.width == 0 || rect.height == 0 ||
            rect.x + rect.width > 65535 || rect.y + rect.height > 65535 ||
            !rect.file)
            abort();
    pol_policy_keep_original_on_failure(p);
    pol_policy_verify_lossless(p);
}

static void exercise(const pol_policy *p)
{
    pthread_attr_t attr;
    pthread_t thread;
    if (pthread_attr_init(&attr) != 0 ||
        pthread_attr_setstacksize(&attr, FILTER_STACK) != 0 ||
        pthread_create(&thread, &attr, filter, (void *)p) != 0 ||
        pthread_join(thread, NULL) != 0)
        abort();
    pthread_attr_destroy(&attr);
    pol_gate_info gate;
    for (size_t i = 0; pol_policy_gate(p, i, &gate); i++)
        if (!gate.file)
            abort();
    size_t key_len;
    pol_policy_key(p, &key_len);
    if (strlen(pol_policy_hash(p)) != 64 || !pol_policy_name(p) ||
        !pol_policy_key_id(p) || !pol_policy_main_file(p))
        abort();
    for (unsigned bit = 1; bit; bit <<= 1)
        if (pol_policy_options(p) & bit)
            pol_option_name(bit);
    const pol_tagref *shift;
    int min_days, max_days;
    bool back;
    if (pol_policy_date_shift(p, &shift, &min_days, &max_days, &back)) {
        if (min_days > max_days)
            abort(); /* the parser refuses an empty range */
        match_all(shift, dataset);
    }
    exercise_pixels(p, dataset, false);
    exercise_pixels(p, lossy_dataset, true);
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    for (size_t i = 0; i < count; i++) {
        const pol_rule *r = &rules[i];
        match_all(&r->ref, dataset);
        if (r->kind == POL_LOOKUP) {
            pol_table_get(r->table, "PAT-0001");
            pol_table_get(r->table, "quoted, key");
            pol_table_get(r->table, "");
            if (r->missing == POL_MISSING_DEFAULT && !r->fallback)
                abort();
        }
        if (r->kind != POL_REPLACE)
            continue;
        char error[160], out[4096];
        if (pol_template_check(r->text, error, sizeof error) < 0)
            abort(); /* the parser checked it */
        size_t refs = 0;
        pol_template_each(r->text, count_ref, &refs);
        values v = {.count = 0};
        pol_template_expand(r->text, get_value, &v, out, sizeof out);
        pol_template_expand(r->text, get_value, &v, out, 5);
        for (size_t k = 0; k < v.count; k++)
            free(v.owned[k]);
    }
}

/* The syntax tree of a configuration: blocks only at the top level,
 * every node and value with its text. */
static void check_conf(const pol_conf_node *n, int depth)
{
    if (depth > 0 && (!n->name || !n->file || (n->is_block && depth > 1)))
        abort();
    for (size_t i = 0; i < n->arg_count; i++)
        if (!n->args[i].text)
            abort();
    if (!n->is_block && n->child_count)
        abort();
    for (size_t i = 0; i < n->child_count; i++)
        check_conf(&n->children[i], depth + 1);
}

static void load_conf(void)
{
    /* gateway/config.c's block words */
    static const char *const blocks[] = {"tls", "site", "plain", "archive",
                                         "limits", NULL};
    pol_diags diags = {0};
    pol_conf_node *root = pol_conf_load(policy_path, blocks, lookup, NULL,
                                        &diags);
    if (!root != (diags.errors > 0))
        abort(); /* a tree exactly when there is no error */
    if (root)
        check_conf(root, 0);
    pol_conf_free(root);
    pol_diags_free(&diags);
}

/* The next part of the input, up to a line "%%" or the end: true when
 * such a line ends it (then another part follows, maybe empty). */
static bool next_part(const uint8_t **data, size_t *size,
                      const uint8_t **part, size_t *len)
{
    const uint8_t *start = *data;
    *part = start;
    for (size_t i = 0; i + 3 <= *size; i++) {
        if ((i == 0 || start[i - 1] == '\n') &&
            memcmp(start + i, "%%\n", 3) == 0) {
            *len = i;
            *data += i + 3;
            *size -= i + 3;
            return true;
        }
    }
    *len = *size;
    *data += *size;
    *size = 0;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dataset)
        setup();
    if (trace < 0) {
        const char *env = getenv("FUZZ_POLICY_TRACE");
        trace = env && *env == '1';
    }
    const uint8_t *part[3];
    size_t len[3] = {0, 0, 0};
    bool has[3] = {true, false, false};
    for (int i = 0; i < 3 && has[i]; i++) {
        bool more = next_part(&data, &size, &part[i], &len[i]);
        if (i < 2)
            has[i + 1] = more;
        else
            len[i] += more ? 3 + size : 0; /* the rest: include file */
    }
    write_file("p.policy", part[0], len[0], 0644);
    if (has[1])
        write_file("t.csv", part[1], len[1], 0644);
    else
        write_file("t.csv", default_table, sizeof default_table - 1, 0644);
    if (has[2])
        write_file("i.policy", part[2], len[2], 0644);
    else
        write_file("i.policy", default_include, sizeof default_include - 1,
                   0644);

    pol_diags diags = {0};
    pol_policy *p = pol_policy_load(policy_path, lookup, NULL, &diags);
    if (!p != (diags.errors > 0))
        abort(); /* a policy exactly when there is no error */
    char line[1024];
    for (size_t i = 0; i < diags.count; i++) {
        pol_diag_format(&diags.items[i], line, sizeof line);
        if (trace)
            fprintf(stderr, "  %s\n", line);
    }
    if (diags.count)
        pol_diag_format(&diags.items[0], line, 12);
    pol_diags_free(&diags);
    if (trace)
        fprintf(stderr, "fuzz_policy: %s\n", p ? "compiled" : "refused");
    if (p) {
        pol_policy *again = pol_policy_ref(p);
        exercise(again);
        pol_policy_unref(again);
        pol_policy_unref(p);
    }
    load_conf();
    return 0;
}
