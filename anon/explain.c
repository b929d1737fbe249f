/* explain.c - what a compliance officer asks before a policy goes live:
 * the engine's warnings about a policy (anon_check) and, per attribute,
 * what happens to it and why (anon_explain). Both ask decide.c, the
 * same code the engine runs, so that they cannot tell a different story. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- warnings ------------------------------------------------------------------ */

/* The standard tag a rule names on its own (a keyword or (gggg,eeee), no
 * mask, no creator, last step of a path), or 0. */
static uint32_t rule_exact_tag(const pol_rule *rule)
{
    const pol_tag *last = &rule->ref.steps[rule->ref.length - 1];
    if (last->creator[0] || last->mask != 0xFFFFFFFFu)
        return 0;
    return last->tag;
}

static dcm_vr dictionary_vr(uint32_t tag)
{
    const dcm_dict_entry *e = dcm_dict_find(tag);
    return e ? e->vr : DCM_VR_NONE;
}

/* The action the profile (table, options, mode) takes for tag, ignoring
 * the policy's own lines. */
static anon_decision profile_decision(const pol_policy *p, uint32_t tag)
{
    return anon_decide_standard(p, tag, dictionary_vr(tag));
}

static void warn(pol_diags *diags, const pol_rule *rule, const char *hint,
                 const char *message)
{
    pol_diags_add(diags, true, rule->file, rule->line, rule->column, hint,
                  "%s", message);
}

static void fail(pol_diags *diags, const pol_rule *rule, const char *hint,
                 const char *message)
{
    pol_diags_add(diags, false, rule->file, rule->line, rule->column, hint,
                  "%s", message);
}

static void check_keep(const pol_policy *p, const pol_rule *rule,
                       pol_diags *diags)
{
    char message[256];
    const pol_tag *last = &rule->ref.steps[rule->ref.length - 1];
    if (last->creator[0] || dcm_tag_is_private(last->tag)) {
        bool safe = last->creator[0] &&
                    (pol_policy_options(p) & POL_OPT_RETAIN_SAFE_PRIVATE) &&
                    anon_safe_private_find(
                        DCM_TAG_GROUP(last->tag),
                        (uint8_t)(DCM_TAG_ELEMENT(last->tag) & 0xFF),
                        last->creator);
        if (!safe) {
            snprintf(message, sizeof message,
                     "keeps private attribute %s, which Table E.3.10-1 does "
                     "not list as safe",
                     rule->ref.text);
            warn(diags, rule,
                 "make sure no vendor writes names, IDs or dates there",
                 message);
        }
        return;
    }
    uint32_t tag = rule_exact_tag(rule);
    if (!tag)
        return;
    anon_decision d = profile_decision(p, tag);
    if (d.action == ACT_KEEP)
        return;
    snprintf(message, sizeof message,
             "keeps %s, which the profile would %s%s%s", rule->ref.text,
             anon_action_name(d.action), d.row ? ": " : "",
             d.row ? d.row->name : "");
    warn(diags, rule,
         "a kept identifier leaves the gateway as received; keep it only on "
         "purpose",
         message);
}

typedef struct template_check {
    const pol_policy *p;
    const pol_rule *rule;
    pol_diags *diags;
} template_check;

/* {original:X} of an attribute the profile would not keep puts that
 * original value back into the output. */
static void check_template_ref(void *ctx, uint32_t tag, bool original)
{
    template_check *tc = ctx;
    if (!original)
        return;
    anon_decision d = profile_decision(tc->p, tag);
    size_t count;
    const pol_rule *rules = pol_policy_rules(tc->p, &count);
    for (size_t i = count; i > 0; i--)
        if (rule_exact_tag(&rules[i - 1]) == tag &&
            rules[i - 1].ref.length == 1) {
            d.action = rules[i - 1].kind == POL_KEEP ? ACT_KEEP : ACT_REPLACE;
            break;
        }
    if (d.action == ACT_KEEP)
        return;
    const dcm_dict_entry *e = dcm_dict_find(tag);
    char message[256];
    snprintf(message, sizeof message,
             "copies the original value of %s, which the profile does not "
             "keep, into %s",
             e ? e->keyword : "an attribute", tc->rule->ref.text);
    warn(tc->diags, tc->rule,
         "use {Keyword} for the de-identified value", message);
}

/* A replacement needs a VR that can hold it. */
static void check_value_rule(const pol_rule *rule, pol_diags *diags)
{
    uint32_t tag = rule_exact_tag(rule);
    dcm_vr vr = tag ? dictionary_vr(tag) : DCM_VR_NONE;
    if (vr == DCM_VR_NONE)
        return;
    char message[256];
    bool text = dcm_vr_is_string(vr);
    switch (rule->kind) {
    case POL_REMAP_UID:
        if (vr == DCM_VR_UI)
            return;
        snprintf(message, sizeof message,
                 "remap needs a UID, and %s is %s", rule->ref.text,
                 dcm_vr_name(vr));
        fail(diags, rule, "use hash, replace or remove", message);
        return;
    case POL_SHIFT_DATE:
        if (vr == DCM_VR_DA || vr == DCM_VR_DT)
            return;
        snprintf(message, sizeof message,
                 "shift needs a date (DA or DT), and %s is %s",
                 rule->ref.text, dcm_vr_name(vr));
        fail(diags, rule, "times of day are kept or removed, not shifted",
             message);
        return;
    case POL_HASH:
    case POL_REPLACE:
    case POL_LOOKUP:
        if (vr == DCM_VR_UI && rule->kind == POL_HASH) {
            snprintf(message, sizeof message,
                     "a hash is not a valid UID (%s)", rule->ref.text);
            fail(diags, rule, "use remap for UIDs", message);
        } else if (!text) {
            snprintf(message, sizeof message,
                     "%s is %s, which cannot hold a text value",
                     rule->ref.text, dcm_vr_name(vr));
            fail(diags, rule, "use remove or empty", message);
        }
        return;
    default:
        return;
    }
}

static bool has_rule_for(const pol_policy *p, uint32_t tag)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    for (size_t i = 0; i < count; i++)
        if (rules[i].ref.length == 1 && rule_exact_tag(&rules[i]) == tag)
            return true;
    return false;
}

void anon_check(const pol_policy *p, pol_diags *diags)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    for (size_t i = 0; i < count; i++) {
        const pol_rule *rule = &rules[i];
        if (rule->kind == POL_KEEP)
            check_keep(p, rule, diags);
        if (rule->kind == POL_REPLACE) {
            template_check tc = {p, rule, diags};
            pol_template_each(rule->text, check_template_ref, &tc);
        }
        check_value_rule(rule, diags);
    }
    /* Table E.1-1 gives Patient ID an empty or dummy value: every
     * patient's studies then look alike, which no trial wants. */
    if (!has_rule_for(p, DCM_TAG(0x0010, 0x0020)) &&
        profile_decision(p, DCM_TAG(0x0010, 0x0020)).action != ACT_KEEP)
        pol_diags_add(diags, true, pol_policy_main_file(p), 0, 0,
                      "replace PatientID with hash, or with a lookup of "
                      "subject IDs",
                      "PatientID becomes the same value for every patient: "
                      "studies of different patients cannot be told apart");
}

/* ---- explain ------------------------------------------------------------------ */

static const char *rule_kind_name(pol_action_kind kind)
{
    static const char *const names[] = {
        [POL_KEEP] = "keep",        [POL_REMOVE] = "remove",
        [POL_EMPTY] = "empty",      [POL_REPLACE] = "replace",
        [POL_HASH] = "hash",        [POL_LOOKUP] = "lookup",
        [POL_REMAP_UID] = "remap",  [POL_SHIFT_DATE] = "shift",
    };
    return names[kind];
}

/* "basic X" or "basic D, retain-patient-characteristics K". */
static void print_table_source(const anon_decision *d, FILE *out)
{
    fprintf(out, "Table E.1-1 \"%s\" %s: basic %s", d->row->name,
            d->row->tag_text, anon_code_name((anon_code)d->row->basic));
    if (d->column >= 0)
        fprintf(out, ", option %s %s",
                pol_option_name(anon_column_option(d->column)),
                anon_code_name(d->code));
}

static void print_source(const anon_decision *d, FILE *out)
{
    switch (d->source) {
    case SRC_POLICY:
        fprintf(out, "%s:%u: %s %s", d->rule->file, d->rule->line,
                rule_kind_name(d->rule->kind), d->rule->ref.text);
        break;
    case SRC_TABLE:
        print_table_source(d, out);
        break;
    case SRC_SAFE_PRIVATE:
        fputs("Table E.3.10-1 (retain-safe-private)", out);
        break;
    case SRC_PRIVATE:
        fputs("Table E.1-1 private attributes: basic X", out);
        break;
    case SRC_UNLISTED:
        fputs("not in Table E.1-1: kept (mode standard)", out);
        break;
    case SRC_UNKNOWN:
        fputs("in no data dictionary: removed", out);
        break;
    case SRC_KEEP_LIST:
        fputs(d->action == ACT_KEEP ? "image attribute (mode keep-list)"
                                    : "not kept by name (mode keep-list)",
              out);
        break;
    }
}

static void print_decision(uint32_t tag, const char *name,
                           const anon_decision *d, FILE *out)
{
    fprintf(out, "(%04X,%04X) %-40s %-12s ", DCM_TAG_GROUP(tag),
            DCM_TAG_ELEMENT(tag), name, anon_action_name(d->action));
    print_source(d, out);
    fputc('\n', out);
}

/* Lines that name the attribute inside sequences only (paths): they do
 * not decide the top-level attribute but do decide in those items. */
static void print_path_rules(const pol_policy *p, uint32_t tag, FILE *out)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    for (size_t i = 0; i < count; i++)
        if (rules[i].ref.length > 1 && rule_exact_tag(&rules[i]) == tag)
            fprintf(out, "    inside sequences: %s:%u: %s %s\n",
                    rules[i].file, rules[i].line,
                    rule_kind_name(rules[i].kind), rules[i].ref.text);
}

static bool parse_attribute(const char *text, uint32_t *tag)
{
    unsigned group, element;
    char end;
    if (sscanf(text, "(%4x,%4x%c", &group, &element, &end) == 3 &&
        end == ')' && text[11] == '\0') {
        *tag = DCM_TAG(group, element);
        return true;
    }
    const dcm_dict_entry *e = dcm_dict_find_keyword(text);
    if (!e)
        return false;
    *tag = e->tag;
    return true;
}

static void explain_one(const pol_policy *p, const dcm_dataset *top,
                        uint32_t tag, FILE *out)
{
    const dcm_dict_entry *e = dcm_dict_find(tag);
    anon_decision d = anon_decide(p, top, tag, dictionary_vr(tag));
    print_decision(tag, e ? e->keyword : "?", &d, out);
    print_path_rules(p, tag, out);
}

static void print_header(const pol_policy *p, FILE *out)
{
    fprintf(out, "policy \"%s\" version %u sha256:%s\n", pol_policy_name(p),
            pol_policy_version(p), pol_policy_hash(p));
    fprintf(out, "mode %s, key %s\noptions:",
            pol_policy_keep_list(p) ? "keep-list" : "standard",
            pol_policy_key_id(p)[0] ? pol_policy_key_id(p) : "none");
    unsigned options = pol_policy_options(p);
    if (!options)
        fputs(" none", out);
    for (unsigned bit = 1; bit; bit <<= 1)
        if (options & bit && pol_option_name(bit))
            fprintf(out, " %s", pol_option_name(bit));
    fputc('\n', out);
    const pol_tagref *ref;
    int min_days, max_days;
    bool back;
    if (pol_policy_date_shift(p, &ref, &min_days, &max_days, &back))
        fprintf(out, "dates shifted by %d..%d days %s, keyed by %s\n",
                min_days, max_days, back ? "back" : "forward", ref->text);
    pol_gate_info g;
    for (size_t i = 0; pol_policy_gate(p, i, &g); i++)
        fprintf(out, "%s:%u: %s %s%s%s%s\n", g.file, g.line,
                g.verdict == POL_REJECT ? "reject" : "quarantine",
                g.unless ? "unless its condition holds" : "if its condition holds",
                g.unless_redacted ? ", unless a redact line applies" : "",
                g.because ? ": " : "", g.because ? g.because : "");
}

static const char *when_text(pol_when when)
{
    return when == POL_IF       ? " if its condition holds"
           : when == POL_UNLESS ? " unless its condition holds"
                                : "";
}

/* The compress, keep-syntax and redact lines and the settings that go
 * with them; nothing when the policy has none of these lines. */
static void print_pixels(const pol_policy *p, FILE *out)
{
    pol_compression c;
    pol_rect r;
    pol_when when;
    if (!pol_policy_compress_line(p, 0, &c, &when) &&
        !pol_policy_redact_line(p, 0, &r, &when))
        return;
    fputs("\npixels (the first compress or keep-syntax line that applies "
          "wins; every redact line that applies adds its rectangle):\n",
          out);
    for (size_t i = 0; pol_policy_compress_line(p, i, &c, &when); i++) {
        char text[96];
        pol_compression_format(&c, text, sizeof text);
        fprintf(out, "%s:%u: %s%s (%s)%s\n", c.file, c.line,
                c.codec == POL_CODEC_NONE ? "" : "compress to ", text,
                c.ts_uid ? c.ts_uid : "syntax as received", when_text(when));
    }
    for (size_t i = 0; pol_policy_redact_line(p, i, &r, &when); i++)
        fprintf(out, "%s:%u: redact rectangle x %u y %u width %u height "
                     "%u%s\n",
                r.file, r.line, r.x, r.y, r.width, r.height, when_text(when));
    fprintf(out, "on compression failure: %s; lossless results %s; "
                 "already-lossy images %s\n",
            pol_policy_keep_original_on_failure(p) ? "keep the original"
                                                   : "quarantine",
            pol_policy_verify_lossless(p) ? "verified" : "not verified",
            pol_policy_allow_lossy_recompression(p)
                ? "may be compressed lossily again"
                : "never compressed lossily again");
}

static void explain_all(const pol_policy *p, const dcm_dataset *top,
                        FILE *out)
{
    print_header(p, out);
    fputs("\nTable E.1-1 attributes:\n", out);
    size_t count;
    const anon_row *rows = anon_table_rows(&count);
    for (size_t i = 0; i < count; i++) {
        const anon_row *row = &rows[i];
        if (row == anon_table_private_row())
            continue;
        const dcm_dict_entry *e = dcm_dict_find(row->tag);
        anon_decision d =
            anon_decide(p, top, row->tag, dictionary_vr(row->tag));
        print_decision(row->tag, e ? e->keyword : row->name, &d, out);
    }
    fputs("\npolicy lines:\n", out);
    size_t rule_count;
    const pol_rule *rules = pol_policy_rules(p, &rule_count);
    for (size_t i = 0; i < rule_count; i++)
        fprintf(out, "%s:%u: %s %s\n", rules[i].file, rules[i].line,
                rule_kind_name(rules[i].kind), rules[i].ref.text);
    fprintf(out, "\nprivate attributes: %s\n",
            pol_policy_options(p) & POL_OPT_RETAIN_SAFE_PRIVATE
                ? "kept where Table E.3.10-1 lists them (and where a "
                  "policy line keeps them), else removed"
                : "removed, except where a policy line keeps them");
    fprintf(out, "other attributes: %s\n",
            pol_policy_keep_list(p)
                ? "removed, except those describing the image and pixels"
                : "kept (mode standard)");
    print_pixels(p, out);
}

int anon_explain(const pol_policy *p, const char *const *attrs, size_t count,
                 FILE *out)
{
    dcm_dataset *top = dcm_dataset_new();
    if (!top) {
        fputs("out of memory\n", stderr);
        return -1;
    }
    int rc = 0;
    if (count == 0)
        explain_all(p, top, out);
    for (size_t i = 0; i < count; i++) {
        uint32_t tag;
        if (!parse_attribute(attrs[i], &tag)) {
            fprintf(stderr, "unknown attribute '%s': give a keyword "
                            "(PatientName) or (gggg,eeee)\n",
                    attrs[i]);
            rc = -1;
            continue;
        }
        explain_one(p, top, tag, out);
    }
    dcm_dataset_free(top);
    return rc;
}
