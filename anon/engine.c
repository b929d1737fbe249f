/* engine.c - anon_apply: the walk over an instance that carries out each
 * attribute's decision (decide.c) at every depth, then the policy's
 * templates, then the stamps that say what was done.
 *
 * Order of work, and why:
 *   1. the policy's reject/quarantine conditions, on the instance as
 *      received (an officer writes them about what sites send);
 *   2. lookups whose key is missing from their table: these refuse the
 *      instance too, so they are found before anything changes;
 *   3. text to UTF-8, so that cleaning, hashing and templates see the
 *      same characters whatever character set a site used;
 *   4. the identifying words for cleaning, and the originals templates
 *      name, from the instance still intact;
 *   5. the walk; 6. templates (they may name new values); 7. stamps.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_CONTENT_SEQUENCE DCM_TAG(0x0040, 0xA730)
#define TAG_CONCEPT_NAME_CODE_SEQUENCE DCM_TAG(0x0040, 0xA043)
#define TAG_VALUE_TYPE DCM_TAG(0x0040, 0xA040)
#define TAG_TEXT_VALUE DCM_TAG(0x0040, 0xA160)
#define TAG_CODE_VALUE DCM_TAG(0x0008, 0x0100)
#define TAG_CODING_SCHEME DCM_TAG(0x0008, 0x0102)
#define TAG_CODE_MEANING DCM_TAG(0x0008, 0x0104)
#define TAG_LONG_CODE_VALUE DCM_TAG(0x0008, 0x0119)
#define TAG_URN_CODE_VALUE DCM_TAG(0x0008, 0x0120)
#define TAG_PATIENT_IDENTITY_REMOVED DCM_TAG(0x0012, 0x0062)
#define TAG_DEIDENTIFICATION_METHOD DCM_TAG(0x0012, 0x0063)
#define TAG_DEIDENTIFICATION_CODES DCM_TAG(0x0012, 0x0064)
#define TAG_LONGITUDINAL_MODIFIED DCM_TAG(0x0028, 0x0303)

#define MAX_VALUE_TEXT 65536 /* a replaced or templated value */

/* A replace line whose template waits for the walk's new values. */
typedef struct deferred {
    dcm_dataset *ds;
    uint32_t tag;
    dcm_vr vr;
    const pol_rule *rule;
} deferred;

typedef struct original {
    uint32_t tag;
    char *value; /* UTF-8, NULL if absent */
} original;

/* How the items of an SR content tree are judged (Clean Structured
 * Content): the content item's concept may prescribe the fate of its
 * value attributes. */
typedef struct sr_scope {
    bool in_sr;
    bool has_concept;        /* Table E.3.4-1 lists the item's concept */
    anon_decision concept;
} sr_scope;

typedef struct walk {
    const pol_policy *p;
    unsigned options;
    anon_keys keys;
    int shift_days;
    bool has_shift;
    anon_words words;
    deferred *deferred;
    size_t deferred_count, deferred_capacity;
    original *originals;
    size_t original_count;
    char **scratch;          /* new values handed to templates */
    size_t scratch_count;
    dcm_dataset *top;
    anon_result *result;
    dcm_error *err;
} walk;

/* ---- values ------------------------------------------------------------------- */

/* A fixed value for D that carries nothing: shaped to the VR so that the
 * attribute stays valid. NULL for binary VRs (see set_dummy). */
static const char *dummy_text(dcm_vr vr)
{
    switch (vr) {
    case DCM_VR_DA: return "19000101";
    case DCM_VR_DT: return "19000101000000";
    case DCM_VR_TM: return "000000";
    case DCM_VR_AS: return "000Y";
    case DCM_VR_DS: case DCM_VR_IS: return "0";
    case DCM_VR_UR: return "urn:anonymized";
    case DCM_VR_AE: case DCM_VR_CS: case DCM_VR_LO: case DCM_VR_LT:
    case DCM_VR_PN: case DCM_VR_SH: case DCM_VR_ST: case DCM_VR_UC:
    case DCM_VR_UT:
        return "ANONYMIZED";
    default:
        return NULL;
    }
}

static int set_text(walk *w, dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                    const char *text)
{
    return dcm_dataset_set_string(ds, tag, vr, text, w->err);
}

static int set_dummy(walk *w, dcm_dataset *ds, uint32_t tag, dcm_vr vr)
{
    w->result->replaced++;
    if (vr == DCM_VR_SQ) {
        dcm_element *seq = dcm_dataset_set_sequence(ds, tag, w->err);
        return seq && dcm_element_append_item(seq, w->err) ? DCM_OK
                                                           : DCM_E_NOMEM;
    }
    const char *text = dummy_text(vr);
    if (text)
        return set_text(w, ds, tag, vr, text);
    /* Binary: zeros of one unit (an even number of bytes). */
    static const uint8_t zeros[8];
    size_t unit = dcm_vr_unit_size(vr);
    return dcm_dataset_set_bytes(ds, tag, vr, zeros, unit < 2 ? 2 : unit,
                                 w->err);
}

static int set_empty(walk *w, dcm_dataset *ds, uint32_t tag, dcm_vr vr)
{
    w->result->emptied++;
    if (vr == DCM_VR_SQ)
        return dcm_dataset_set_sequence(ds, tag, w->err) ? DCM_OK
                                                        : DCM_E_NOMEM;
    return dcm_dataset_set_bytes(ds, tag, vr == DCM_VR_NONE ? DCM_VR_UN : vr,
                                 "", 0, w->err);
}

static int remove_element(walk *w, dcm_dataset *ds, uint32_t tag)
{
    w->result->removed++;
    dcm_dataset_remove(ds, tag);
    return DCM_OK;
}

/* The element's text (UTF-8 by now), or NULL after setting the error. */
static char *text_of(walk *w, const dcm_element *el)
{
    return dcm_element_get_string(el, w->err);
}

static bool is_text_value(const dcm_element *el)
{
    return dcm_element_kind_of(el) == DCM_KIND_VALUE &&
           dcm_vr_is_string(dcm_element_vr(el));
}

static int remap_uids(walk *w, dcm_dataset *ds, const dcm_element *el)
{
    uint32_t tag = dcm_element_tag(el);
    if (dcm_element_vr(el) != DCM_VR_UI || !is_text_value(el))
        return remove_element(w, ds, tag); /* not a UID we can map */
    char *text = text_of(w, el);
    if (!text)
        return w->err->code;
    /* Each value on its own; well-known UIDs (classes, syntaxes) stay.
     * A mapped value is at most DCM_UID_MAX; an unmapped one is itself. */
    size_t values = 1;
    for (const char *c = text; *c; c++)
        values += *c == '\\';
    size_t size = strlen(text) + values * (DCM_UID_MAX + 1) + 1;
    char *out = malloc(size);
    if (!out) {
        free(text);
        return dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
    }
    size_t used = 0;
    char *rest = text;
    bool first = true;
    for (char *v; (v = strsep(&rest, "\\")) != NULL; first = false) {
        while (*v == ' ')
            v++;
        char mapped[DCM_UID_MAX + 1];
        if (*v && !anon_uid_is_well_known(v)) {
            anon_remap_uid(&w->keys, v, mapped);
            v = mapped;
            w->result->uids_remapped++;
        }
        used += (size_t)snprintf(out + used, size - used, "%s%s",
                                 first ? "" : "\\", v);
    }
    free(text);
    int rc = set_text(w, ds, tag, DCM_VR_UI, out);
    free(out);
    return rc;
}

static int shift_dates(walk *w, dcm_dataset *ds, const dcm_element *el)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    if (vr == DCM_VR_TM)
        return DCM_OK; /* whole days: the time of day is unchanged */
    if ((vr != DCM_VR_DA && vr != DCM_VR_DT) || !is_text_value(el) ||
        !w->has_shift)
        return set_empty(w, ds, tag, vr);
    char *text = text_of(w, el);
    if (!text)
        return w->err->code;
    size_t size = 2 * strlen(text) + 16;
    char *out = malloc(size);
    int rc;
    if (!out) {
        rc = dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
    } else if (anon_shift_value(vr, text, w->shift_days, out, size)) {
        w->result->dates_shifted++;
        rc = set_text(w, ds, tag, vr, out);
    } else {
        rc = set_empty(w, ds, tag, vr); /* not a date: it says nothing */
    }
    free(out);
    free(text);
    return rc;
}

static int hash_value(walk *w, dcm_dataset *ds, const dcm_element *el)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    if (vr == DCM_VR_UI)
        return remap_uids(w, ds, el);
    if (!is_text_value(el) || !dummy_text(vr) || vr == DCM_VR_DA ||
        vr == DCM_VR_DT || vr == DCM_VR_TM || vr == DCM_VR_DS ||
        vr == DCM_VR_IS || vr == DCM_VR_AS || vr == DCM_VR_UR)
        return remove_element(w, ds, tag); /* no text to hash into */
    char *text = text_of(w, el);
    if (!text)
        return w->err->code;
    int rc = DCM_OK;
    if (*text) { /* empty stays empty: it identifies no one */
        char hashed[17];
        anon_hash_text(&w->keys, text, hashed);
        w->result->replaced++;
        rc = set_text(w, ds, tag, vr, hashed);
    }
    free(text);
    return rc;
}

static int clean_text(walk *w, dcm_dataset *ds, const dcm_element *el)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    /* With more identifying words than the cleaner holds, some would go
     * unblanked: the text goes instead. */
    if (!is_text_value(el) || w->words.incomplete)
        return remove_element(w, ds, tag);
    char *text = text_of(w, el);
    if (!text)
        return w->err->code;
    int rc = DCM_OK;
    if (anon_words_scrub(&w->words, text) > 0) {
        w->result->cleaned++;
        rc = set_text(w, ds, tag, vr, text);
    }
    free(text);
    return rc;
}

/* ---- policy lines -------------------------------------------------------------- */

static bool has_template(const pol_rule *rule)
{
    return strchr(rule->text, '{') != NULL;
}

static int defer(walk *w, dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                 const pol_rule *rule)
{
    if (w->deferred_count == w->deferred_capacity) {
        size_t more = w->deferred_capacity ? w->deferred_capacity * 2 : 8;
        deferred *bigger = realloc(w->deferred, more * sizeof *bigger);
        if (!bigger)
            return dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
        w->deferred = bigger;
        w->deferred_capacity = more;
    }
    w->deferred[w->deferred_count++] =
        (deferred){.ds = ds, .tag = tag, .vr = vr, .rule = rule};
    return DCM_OK;
}

static int check_text_vr(walk *w, uint32_t tag, dcm_vr vr,
                         const pol_rule *rule)
{
    if (dummy_text(vr) || vr == DCM_VR_UI)
        return DCM_OK;
    return dcm_fail(w->err, DCM_E_INVALID, -1,
                    "%s:%u: (%04X,%04X) is %s and cannot hold a text value",
                    rule->file, rule->line, DCM_TAG_GROUP(tag),
                    DCM_TAG_ELEMENT(tag), dcm_vr_name(vr));
}

static int replace_value(walk *w, dcm_dataset *ds, const dcm_element *el,
                         const pol_rule *rule)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    int rc = check_text_vr(w, tag, vr, rule);
    if (rc < 0)
        return rc;
    if (has_template(rule))
        return defer(w, ds, tag, vr, rule);
    w->result->replaced++;
    return set_text(w, ds, tag, vr, rule->text);
}

static int lookup_value(walk *w, dcm_dataset *ds, const dcm_element *el,
                        const pol_rule *rule)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    int rc = check_text_vr(w, tag, vr, rule);
    if (rc < 0 || !is_text_value(el))
        return rc;
    char *key = text_of(w, el);
    if (!key)
        return w->err->code;
    const char *value = pol_table_get(rule->table, key);
    free(key);
    if (!value && rule->missing == POL_MISSING_KEEP)
        return DCM_OK;
    if (!value)
        value = rule->fallback; /* POL_MISSING_DEFAULT: checked before */
    if (!value)
        return dcm_fail(w->err, DCM_E_INVALID, -1, "%s:%u: key vanished",
                        rule->file, rule->line);
    w->result->replaced++;
    return set_text(w, ds, tag, vr, value);
}

/* ---- the walk -------------------------------------------------------------------- */

static int walk_dataset(walk *w, dcm_dataset *ds, const sr_scope *scope);

static int walk_items(walk *w, const dcm_element *el, const sr_scope *scope)
{
    for (size_t i = 0; i < dcm_element_item_count(el); i++) {
        int rc = walk_dataset(w, dcm_element_item(el, i), scope);
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

static int clean_content_items(walk *w, dcm_element *seq);

static int apply(walk *w, dcm_dataset *ds, dcm_element *el,
                 const anon_decision *d, const sr_scope *scope)
{
    uint32_t tag = dcm_element_tag(el);
    dcm_vr vr = dcm_element_vr(el);
    bool seq = dcm_element_kind_of(el) == DCM_KIND_SEQUENCE;
    if (seq && d->action != ACT_KEEP && d->action != ACT_REMOVE &&
        d->action != ACT_EMPTY && d->action != ACT_DUMMY &&
        d->action != ACT_CLEAN_SR)
        return remove_element(w, ds, tag); /* no text to work on */
    switch (d->action) {
    case ACT_KEEP:
        if (dcm_tag_is_private(tag) && !dcm_tag_is_private_creator(tag))
            w->result->kept_private++;
        return seq ? walk_items(w, el, scope) : DCM_OK;
    case ACT_REMOVE:
        return remove_element(w, ds, tag);
    case ACT_EMPTY:
        return set_empty(w, ds, tag, seq ? DCM_VR_SQ : vr);
    case ACT_DUMMY:
        return set_dummy(w, ds, tag, seq ? DCM_VR_SQ : vr);
    case ACT_REMAP:
        return remap_uids(w, ds, el);
    case ACT_SHIFT:
        return shift_dates(w, ds, el);
    case ACT_HASH:
        return hash_value(w, ds, el);
    case ACT_CLEAN:
        return clean_text(w, ds, el);
    case ACT_CLEAN_SR:
        return seq ? clean_content_items(w, el) : clean_text(w, ds, el);
    case ACT_REPLACE:
        return replace_value(w, ds, el, d->rule);
    case ACT_LOOKUP:
        return lookup_value(w, ds, el, d->rule);
    }
    return DCM_OK;
}

/* The value attributes of an SR content item (PS3.3 C.17.3). */
static bool is_content_value(uint32_t tag)
{
    switch (tag) {
    case DCM_TAG(0x0040, 0xA160): /* Text Value */
    case DCM_TAG(0x0040, 0xA123): /* Person Name */
    case DCM_TAG(0x0040, 0xA120): /* DateTime */
    case DCM_TAG(0x0040, 0xA121): /* Date */
    case DCM_TAG(0x0040, 0xA122): /* Time */
    case DCM_TAG(0x0040, 0xA124): /* UID */
        return true;
    default:
        return false;
    }
}

/* Inside a content tree, the item's concept (Table E.3.4-1) decides its
 * value; a concept the table does not list keeps its value, cleaned if it
 * is text, and nested content is judged the same way. */
static anon_decision sr_decision(const sr_scope *scope, uint32_t tag,
                                 dcm_vr vr, anon_decision d)
{
    if (!scope || !scope->in_sr || d.source == SRC_POLICY)
        return d;
    if (tag == TAG_CONTENT_SEQUENCE) {
        d.action = ACT_CLEAN_SR;
    } else if (is_content_value(tag) && scope->has_concept) {
        d = scope->concept;
        d.action = anon_code_action(d.code, d.column, true, vr);
    } else if (tag == TAG_TEXT_VALUE) {
        d.action = ACT_CLEAN;
    }
    return d;
}

/* Private creators go when no element of their block is left. */
static void drop_empty_creators(walk *w, dcm_dataset *ds)
{
    for (size_t i = dcm_dataset_count(ds); i > 0; i--) {
        uint32_t tag = dcm_element_tag(dcm_dataset_at(ds, i - 1));
        if (!dcm_tag_is_private_creator(tag))
            continue;
        uint32_t first = DCM_TAG(DCM_TAG_GROUP(tag),
                                 (DCM_TAG_ELEMENT(tag) & 0xFF) << 8);
        bool used = false;
        for (size_t k = i; k < dcm_dataset_count(ds) && !used; k++) {
            uint32_t other = dcm_element_tag(dcm_dataset_at(ds, k));
            used = other >= first && other <= first + 0xFF;
        }
        if (!used && anon_decide(w->p, ds, tag, DCM_VR_LO).source !=
                         SRC_POLICY)
            remove_element(w, ds, tag);
    }
}

static int walk_dataset(walk *w, dcm_dataset *ds, const sr_scope *scope)
{
    /* Backwards, so that removing element i leaves 0..i-1 in place. */
    for (size_t i = dcm_dataset_count(ds); i > 0; i--) {
        dcm_element *el = dcm_dataset_at(ds, i - 1);
        uint32_t tag = dcm_element_tag(el);
        if (dcm_tag_is_private_creator(tag))
            continue; /* see drop_empty_creators */
        dcm_vr vr = dcm_element_vr(el);
        anon_decision d = anon_decide(w->p, ds, tag, vr);
        d = sr_decision(scope, tag, vr, d);
        int rc = apply(w, ds, el, &d, scope);
        if (rc < 0)
            return rc;
    }
    drop_empty_creators(w, ds);
    return DCM_OK;
}

/* The item's concept name: code value and scheme, as Table E.3.4-1 keys
 * them. False if the item has none. */
static bool concept_of(const dcm_dataset *item, char *code, char *scheme,
                       char *value_type, size_t size)
{
    const dcm_element *seq =
        dcm_dataset_find(item, TAG_CONCEPT_NAME_CODE_SEQUENCE);
    if (!seq || dcm_element_item_count(seq) == 0)
        return false;
    const dcm_dataset *name = dcm_element_item(seq, 0);
    static const uint32_t code_tags[] = {TAG_CODE_VALUE, TAG_LONG_CODE_VALUE,
                                         TAG_URN_CODE_VALUE};
    char *c = NULL;
    for (size_t i = 0; i < 3 && !c; i++)
        c = dcm_dataset_find(name, code_tags[i])
                ? dcm_dataset_get_utf8(name, code_tags[i], NULL)
                : NULL;
    char *s = dcm_dataset_find(name, TAG_CODING_SCHEME)
                  ? dcm_dataset_get_utf8(name, TAG_CODING_SCHEME, NULL)
                  : NULL;
    char *t = dcm_dataset_find(item, TAG_VALUE_TYPE)
                  ? dcm_dataset_get_utf8(item, TAG_VALUE_TYPE, NULL)
                  : NULL;
    bool ok = c && s;
    if (ok) {
        snprintf(code, size, "%s", c);
        snprintf(scheme, size, "%s", s);
        snprintf(value_type, size, "%s", t ? t : "");
    }
    free(c);
    free(s);
    free(t);
    return ok;
}

static int clean_content_items(walk *w, dcm_element *seq)
{
    for (size_t i = dcm_element_item_count(seq); i > 0; i--) {
        dcm_dataset *item = dcm_element_item(seq, i - 1);
        sr_scope scope = {.in_sr = true};
        char code[80], scheme[80], value_type[80];
        if (concept_of(item, code, scheme, value_type, sizeof code)) {
            const anon_sr_row *row = anon_sr_find(code, scheme, value_type);
            if (row) {
                scope.has_concept = true;
                scope.concept = anon_decide_sr_row(row, w->options);
            }
        }
        if (scope.has_concept && scope.concept.action == ACT_REMOVE) {
            w->result->removed++;
            if (dcm_element_remove_item(seq, i - 1, w->err) < 0)
                return w->err->code;
            continue;
        }
        int rc = walk_dataset(w, item, &scope);
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

/* ---- before the walk -------------------------------------------------------------- */

/* Lookup lines whose key is not in their table, on the instance as
 * received: the verdict their line asks for, or POL_ACCEPT. */
static pol_verdict missing_lookups(walk *w, const dcm_dataset *ds)
{
    for (size_t i = 0; i < dcm_dataset_count(ds); i++) {
        const dcm_element *el = dcm_dataset_at(ds, i);
        uint32_t tag = dcm_element_tag(el);
        anon_decision d = anon_decide(w->p, ds, tag, dcm_element_vr(el));
        /* Only the items the walk keeps matter: a lookup inside a
         * sequence that is removed never runs. */
        bool kept_items = d.action == ACT_KEEP || d.action == ACT_CLEAN_SR;
        for (size_t k = 0; kept_items && k < dcm_element_item_count(el);
             k++) {
            pol_verdict v = missing_lookups(w, dcm_element_item(el, k));
            if (v != POL_ACCEPT)
                return v;
        }
        if (d.action != ACT_LOOKUP || !is_text_value(el) ||
            (d.rule->missing != POL_MISSING_REJECT &&
             d.rule->missing != POL_MISSING_QUARANTINE))
            continue;
        char *key = dcm_dataset_get_utf8(ds, tag, NULL);
        bool found = key && pol_table_get(d.rule->table, key);
        if (!found) {
            const dcm_dict_entry *e = dcm_dict_find(tag);
            snprintf(w->result->reason, sizeof w->result->reason,
                     "%s (%04X,%04X) not found in the lookup table of %s:%u",
                     e ? e->keyword : "attribute", DCM_TAG_GROUP(tag),
                     DCM_TAG_ELEMENT(tag), d.rule->file, d.rule->line);
        }
        free(key);
        if (!found)
            return d.rule->missing == POL_MISSING_REJECT ? POL_REJECT
                                                         : POL_QUARANTINE;
    }
    return POL_ACCEPT;
}

/* A lookup line naming a top-level attribute the instance lacks. */
static pol_verdict absent_lookups(walk *w, const dcm_dataset *ds)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(w->p, &count);
    for (size_t i = 0; i < count; i++) {
        const pol_rule *r = &rules[i];
        if (r->kind != POL_LOOKUP || r->ref.length != 1 ||
            r->ref.steps[0].mask != 0xFFFFFFFFu ||
            r->ref.steps[0].creator[0] ||
            dcm_dataset_find(ds, r->ref.steps[0].tag) ||
            (r->missing != POL_MISSING_REJECT &&
             r->missing != POL_MISSING_QUARANTINE))
            continue;
        snprintf(w->result->reason, sizeof w->result->reason,
                 "%s is absent, and %s:%u looks it up", r->ref.text, r->file,
                 r->line);
        return r->missing == POL_MISSING_REJECT ? POL_REJECT : POL_QUARANTINE;
    }
    return POL_ACCEPT;
}

static int shift_offset(walk *w, const dcm_dataset *ds)
{
    const pol_tagref *ref;
    int min_days, max_days;
    bool back;
    if (!pol_policy_date_shift(w->p, &ref, &min_days, &max_days, &back))
        return DCM_OK;
    /* The offset belongs to the patient: the first value the reference
     * names at the top level ("" when absent: one offset for all such). */
    char *id = NULL;
    for (size_t i = 0; i < dcm_dataset_count(ds) && !id; i++) {
        uint32_t tag = dcm_element_tag(dcm_dataset_at(ds, i));
        if (pol_tagref_matches(ref, ds, tag))
            id = dcm_dataset_get_utf8(ds, tag, NULL);
    }
    int days = anon_shift_days(&w->keys, id ? id : "", min_days, max_days);
    free(id);
    w->shift_days = back ? -days : days;
    w->has_shift = true;
    return DCM_OK;
}

static void note_original(void *ctx, uint32_t tag, bool is_original)
{
    walk *w = ctx;
    if (!is_original)
        return;
    for (size_t i = 0; i < w->original_count; i++)
        if (w->originals[i].tag == tag)
            return;
    original *bigger = realloc(w->originals, (w->original_count + 1) *
                                                 sizeof *bigger);
    if (!bigger)
        return; /* expand then finds no original: an empty part */
    w->originals = bigger;
    w->originals[w->original_count].tag = tag;
    w->originals[w->original_count].value =
        dcm_dataset_find(w->top, tag)
            ? dcm_dataset_get_utf8(w->top, tag, NULL)
            : NULL;
    w->original_count++;
}

static void keep_originals(walk *w)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(w->p, &count);
    for (size_t i = 0; i < count; i++)
        if (rules[i].kind == POL_REPLACE)
            pol_template_each(rules[i].text, note_original, w);
}

/* ---- after the walk --------------------------------------------------------------- */

static const char *template_value(void *ctx, uint32_t tag, bool is_original)
{
    walk *w = ctx;
    if (is_original) {
        for (size_t i = 0; i < w->original_count; i++)
            if (w->originals[i].tag == tag)
                return w->originals[i].value;
        return NULL;
    }
    const dcm_element *el = dcm_dataset_find(w->top, tag);
    if (!el || !is_text_value(el))
        return NULL;
    char **bigger = realloc(w->scratch, (w->scratch_count + 1) *
                                            sizeof *bigger);
    if (!bigger)
        return NULL;
    w->scratch = bigger;
    char *value = dcm_element_get_string(el, NULL);
    if (value)
        w->scratch[w->scratch_count++] = value;
    return value;
}

/* A replace line for a top-level attribute the instance lacks adds it:
 * "replace PatientName with ..." means the output has that name. */
static int add_absent(walk *w)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(w->p, &count);
    for (size_t i = 0; i < count; i++) {
        const pol_rule *r = &rules[i];
        const pol_tag *step = &r->ref.steps[0];
        if (r->kind != POL_REPLACE || r->ref.length != 1 ||
            step->mask != 0xFFFFFFFFu || step->creator[0] ||
            dcm_dataset_find(w->top, step->tag))
            continue;
        const dcm_dict_entry *entry = dcm_dict_find(step->tag);
        if (!entry || !dummy_text(entry->vr))
            continue;
        /* A placeholder keeps the order of later lines for this tag. */
        int rc = set_text(w, w->top, step->tag, entry->vr, "");
        if (rc == DCM_OK)
            rc = has_template(r) ? defer(w, w->top, step->tag, entry->vr, r)
                                 : set_text(w, w->top, step->tag, entry->vr,
                                            r->text);
        if (rc < 0)
            return rc;
        w->result->replaced++;
    }
    return DCM_OK;
}

static int expand_templates(walk *w)
{
    char *text = malloc(MAX_VALUE_TEXT);
    if (!text)
        return dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
    int rc = DCM_OK;
    /* Values are computed first, then set: a template naming an
     * attribute another template sets sees its value before templates. */
    char **values = calloc(w->deferred_count + 1, sizeof *values);
    for (size_t i = 0; values && i < w->deferred_count && rc == DCM_OK; i++) {
        const deferred *d = &w->deferred[i];
        if (pol_template_expand(d->rule->text, template_value, w, text,
                                MAX_VALUE_TEXT) < 0 ||
            !(values[i] = strdup(text)))
            rc = dcm_fail(w->err, DCM_E_LIMIT, -1,
                          "%s:%u: the template's value is too long",
                          d->rule->file, d->rule->line);
    }
    if (!values)
        rc = dcm_fail(w->err, DCM_E_NOMEM, -1, "out of memory");
    for (size_t i = 0; rc == DCM_OK && i < w->deferred_count; i++) {
        const deferred *d = &w->deferred[i];
        rc = set_text(w, d->ds, d->tag, d->vr, values[i]);
        w->result->replaced++;
    }
    for (size_t i = 0; values && i < w->deferred_count; i++)
        free(values[i]);
    free(values);
    free(text);
    return rc;
}

/* ---- stamps (PS3.15 E.1.1, PS3.3 C.7.1.1) ------------------------------------------ */

static const struct {
    unsigned option;
    const char *code, *meaning;
} method_codes[] = { /* CID 7050 */
    {POL_OPT_CLEAN_PIXEL_DATA, "113101", "Clean Pixel Data Option"},
    {POL_OPT_CLEAN_VISUAL_FEATURES, "113102",
     "Clean Recognizable Visual Features Option"},
    {POL_OPT_CLEAN_GRAPHICS, "113103", "Clean Graphics Option"},
    {POL_OPT_CLEAN_STRUCTURED_CONTENT, "113104",
     "Clean Structured Content Option"},
    {POL_OPT_CLEAN_DESCRIPTORS, "113105", "Clean Descriptors Option"},
    {POL_OPT_RETAIN_LONG_FULL_DATES, "113106",
     "Retain Longitudinal Temporal Information Full Dates Option"},
    {POL_OPT_RETAIN_LONG_MODIFIED_DATES, "113107",
     "Retain Longitudinal Temporal Information Modified Dates Option"},
    {POL_OPT_RETAIN_PATIENT_CHARACTERISTICS, "113108",
     "Retain Patient Characteristics Option"},
    {POL_OPT_RETAIN_DEVICE_IDENTITY, "113109", "Retain Device Identity Option"},
    {POL_OPT_RETAIN_UIDS, "113110", "Retain UIDs Option"},
    {POL_OPT_RETAIN_SAFE_PRIVATE, "113111", "Retain Safe Private Option"},
    {POL_OPT_RETAIN_INSTITUTION_IDENTITY, "113112",
     "Retain Institution Identity Option"},
};

static int add_code(walk *w, dcm_element *seq, const char *code,
                    const char *meaning)
{
    dcm_dataset *item = dcm_element_append_item(seq, w->err);
    if (!item)
        return DCM_E_NOMEM;
    int rc = set_text(w, item, TAG_CODE_VALUE, DCM_VR_SH, code);
    if (rc == DCM_OK)
        rc = set_text(w, item, TAG_CODING_SCHEME, DCM_VR_SH, "DCM");
    if (rc == DCM_OK)
        rc = set_text(w, item, TAG_CODE_MEANING, DCM_VR_LO, meaning);
    return rc;
}

static int stamp(walk *w)
{
    const pol_policy *p = w->p;
    char method[160];
    /* LO values hold 64 characters: the name and version, then the
     * first 192 bits of the policy's SHA-256 as a value of its own (the
     * audit trail records all of it). */
    snprintf(method, sizeof method, "SIREN %.40s version %u\\policy "
             "sha256:%.48s",
             pol_policy_name(p), pol_policy_version(p), pol_policy_hash(p));
    int rc = set_text(w, w->top, TAG_PATIENT_IDENTITY_REMOVED, DCM_VR_CS,
                      "YES");
    if (rc == DCM_OK)
        rc = set_text(w, w->top, TAG_DEIDENTIFICATION_METHOD, DCM_VR_LO,
                      method);
    dcm_element *codes =
        rc == DCM_OK ? dcm_dataset_set_sequence(w->top,
                                                TAG_DEIDENTIFICATION_CODES,
                                                w->err)
                     : NULL;
    if (!codes)
        return rc < 0 ? rc : DCM_E_NOMEM;
    rc = add_code(w, codes, "113100",
                  "Basic Application Confidentiality Profile");
    for (size_t i = 0; rc == DCM_OK &&
                       i < sizeof method_codes / sizeof *method_codes;
         i++)
        if (w->options & method_codes[i].option)
            rc = add_code(w, codes, method_codes[i].code,
                          method_codes[i].meaning);
    const char *dates = (w->options & POL_OPT_RETAIN_LONG_FULL_DATES)
                            ? "UNMODIFIED"
                        : (w->options & POL_OPT_RETAIN_LONG_MODIFIED_DATES) ||
                                w->result->dates_shifted
                            ? "MODIFIED"
                            : "REMOVED";
    if (rc == DCM_OK)
        rc = set_text(w, w->top, TAG_LONGITUDINAL_MODIFIED, DCM_VR_CS, dates);
    return rc;
}

/* ---- anon_apply -------------------------------------------------------------------- */

static void walk_free(walk *w)
{
    anon_words_free(&w->words);
    free(w->deferred);
    for (size_t i = 0; i < w->original_count; i++)
        free(w->originals[i].value);
    free(w->originals);
    for (size_t i = 0; i < w->scratch_count; i++)
        free(w->scratch[i]);
    free(w->scratch);
}

static bool needs_words(unsigned options)
{
    return options & (POL_OPT_CLEAN_DESCRIPTORS | POL_OPT_CLEAN_GRAPHICS |
                      POL_OPT_CLEAN_STRUCTURED_CONTENT |
                      POL_OPT_RETAIN_PATIENT_CHARACTERISTICS);
}

int anon_apply(const pol_policy *p, dcm_dataset *ds, anon_result *result,
               dcm_error *err)
{
    dcm_error local;
    if (!err)
        err = &local;
    memset(result, 0, sizeof *result);
    result->verdict = pol_policy_filter(p, ds, result->reason,
                                        sizeof result->reason);
    if (result->verdict != POL_ACCEPT)
        return DCM_OK;
    walk w = {.p = p, .options = pol_policy_options(p), .top = ds,
              .result = result, .err = err};
    w.keys.key = pol_policy_key(p, &w.keys.key_len);
    result->verdict = absent_lookups(&w, ds);
    if (result->verdict == POL_ACCEPT)
        result->verdict = missing_lookups(&w, ds);
    if (result->verdict != POL_ACCEPT)
        return DCM_OK;
    int rc = dcm_dataset_convert_to_utf8(ds, err);
    if (rc == DCM_OK)
        rc = shift_offset(&w, ds);
    if (rc == DCM_OK && needs_words(w.options))
        rc = anon_words_collect(&w.words, p, ds, err);
    if (rc == DCM_OK) {
        keep_originals(&w);
        rc = walk_dataset(&w, ds, NULL);
    }
    if (rc == DCM_OK)
        rc = add_absent(&w);
    if (rc == DCM_OK)
        rc = expand_templates(&w);
    if (rc == DCM_OK)
        rc = stamp(&w);
    walk_free(&w);
    return rc;
}
