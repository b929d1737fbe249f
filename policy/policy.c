/* policy.c - the compiled policy object: loading, sharing, the accessors
 * the engine reads it through, the reject/quarantine filter, templates and
 * diagnostics. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- diagnostics ------------------------------------------------------------ */

void pol_diags_free(pol_diags *diags)
{
    if (!diags)
        return;
    free(diags->items);
    memset(diags, 0, sizeof *diags);
}

const char *pol_diag_format(const pol_diag *d, char *buf, size_t size)
{
    int n;
    if (d->line)
        n = snprintf(buf, size, "%s:%u:%u: %s: %s", d->file, d->line,
                     d->column, d->warning ? "warning" : "error", d->message);
    else
        n = snprintf(buf, size, "%s: %s: %s", d->file,
                     d->warning ? "warning" : "error", d->message);
    if (d->hint[0] && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " (hint: %s)", d->hint);
    return buf;
}

const char *pol_lookup_env(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

/* ---- the object --------------------------------------------------------------- */

char *policy_keep_string(pol_policy *p, const char *text)
{
    char **bigger =
        realloc(p->strings, (p->string_count + 1) * sizeof *bigger);
    if (!bigger)
        return NULL;
    p->strings = bigger;
    char *copy = strdup(text);
    if (copy)
        p->strings[p->string_count++] = copy;
    return copy;
}

static void policy_free(pol_policy *p)
{
    for (size_t i = 0; i < p->gate_count; i++)
        cond_free(p->gates[i].condition);
    free(p->gates);
    pixels_free(p);
    free(p->rules);
    for (size_t i = 0; i < p->table_count; i++)
        table_free(p->tables[i]);
    free(p->tables);
    for (size_t i = 0; i < p->file_count; i++)
        free(p->files[i]);
    free(p->files);
    for (size_t i = 0; i < p->string_count; i++)
        free(p->strings[i]);
    free(p->strings);
    if (p->key) {
        explicit_bzero(p->key, p->key_len);
        free(p->key);
    }
    free(p);
}

pol_policy *pol_policy_load(const char *path, pol_lookup_fn lookup,
                            void *lookup_ctx, pol_diags *diags)
{
    pol_policy *p = calloc(1, sizeof *p);
    if (!p) {
        pol_diags_add(diags, false, path, 0, 0, NULL, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    if (!policy_compile(p, path, lookup, lookup_ctx, diags)) {
        policy_free(p);
        return NULL;
    }
    return p;
}

pol_policy *pol_policy_ref(pol_policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void pol_policy_unref(pol_policy *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

void pol_slot_init(pol_slot *slot, pol_policy *p)
{
    pthread_mutex_init(&slot->lock, NULL);
    slot->current = p;
}

pol_policy *pol_slot_acquire(pol_slot *slot)
{
    /* The lock orders the reference against a concurrent swap's unref:
     * without it the policy could be freed between the load and the ref. */
    pthread_mutex_lock(&slot->lock);
    pol_policy *p = pol_policy_ref(slot->current);
    pthread_mutex_unlock(&slot->lock);
    return p;
}

void pol_slot_swap(pol_slot *slot, pol_policy *p)
{
    pthread_mutex_lock(&slot->lock);
    pol_policy *old = slot->current;
    slot->current = p;
    pthread_mutex_unlock(&slot->lock);
    pol_policy_unref(old);
}

void pol_slot_destroy(pol_slot *slot)
{
    pol_policy_unref(slot->current);
    slot->current = NULL;
    pthread_mutex_destroy(&slot->lock);
}

const char *pol_policy_name(const pol_policy *p) { return p->name; }
const char *pol_policy_main_file(const pol_policy *p)
{
    return p->file_count ? p->files[0] : "";
}

unsigned pol_policy_version(const pol_policy *p) { return p->version; }
const char *pol_policy_hash(const pol_policy *p) { return p->hash; }
unsigned pol_policy_options(const pol_policy *p) { return p->options; }
bool pol_policy_keep_list(const pol_policy *p) { return p->keep_list; }

const char *pol_policy_key_id(const pol_policy *p)
{
    return p->key ? p->key_id : "";
}

const uint8_t *pol_policy_key(const pol_policy *p, size_t *len)
{
    *len = p->key_len;
    return p->key;
}

const pol_rule *pol_policy_rules(const pol_policy *p, size_t *count)
{
    *count = p->rule_count;
    return p->rules;
}

bool pol_policy_date_shift(const pol_policy *p, const pol_tagref **ref,
                           int *min_days, int *max_days, bool *back)
{
    if (!p->has_shift)
        return false;
    *ref = &p->shift_ref;
    *min_days = p->shift_min;
    *max_days = p->shift_max;
    *back = p->shift_back;
    return true;
}

bool pol_policy_gate(const pol_policy *p, size_t index, pol_gate_info *out)
{
    if (index >= p->gate_count)
        return false;
    const gate *g = &p->gates[index];
    *out = (pol_gate_info){.verdict = g->verdict, .unless = g->unless,
                           .because = g->because,
                           .unless_redacted = g->unless_redacted,
                           .file = g->file, .line = g->line};
    return true;
}

pol_verdict pol_policy_filter(const pol_policy *p, const dcm_dataset *ds,
                              char *reason, size_t size)
{
    for (size_t i = 0; i < p->gate_count; i++) {
        const gate *g = &p->gates[i];
        if (cond_eval(g->condition, ds) == g->unless)
            continue;
        if (g->unless_redacted && pol_policy_redactions(p, ds, NULL, 0) > 0)
            continue;
        if (g->because)
            snprintf(reason, size, "%s (%s:%u)", g->because, g->file,
                     g->line);
        else
            snprintf(reason, size, "%s:%u", g->file, g->line);
        return g->verdict;
    }
    if (size)
        reason[0] = '\0';
    return POL_ACCEPT;
}

/* ---- templates --------------------------------------------------------------- */

#define TEMPLATE_ORIGINAL "original:"

/* Parses "{...}" at text (which points at the '{'): the tag named and
 * whether the original is meant; returns the length of the reference, or
 * 0 when it is malformed (reason in error). */
static size_t template_ref(const char *text, uint32_t *tag, bool *original,
                           char *error, size_t size)
{
    const char *close = strchr(text, '}');
    const char *name = text + 1;
    *original = strncmp(name, TEMPLATE_ORIGINAL,
                        strlen(TEMPLATE_ORIGINAL)) == 0;
    if (*original)
        name += strlen(TEMPLATE_ORIGINAL);
    char keyword[80];
    size_t len = close ? (size_t)(close - name) : 0;
    if (!close || len == 0 || len >= sizeof keyword) {
        snprintf(error, size, "'{' without a keyword and '}'");
        return 0;
    }
    memcpy(keyword, name, len);
    keyword[len] = '\0';
    const dcm_dict_entry *entry = dcm_dict_find_keyword(keyword);
    if (!entry) {
        snprintf(error, size, "unknown attribute '%s' in the template",
                 keyword);
        return 0;
    }
    *tag = entry->tag;
    return (size_t)(close - text) + 1;
}

/* Walks a template: literal text to out (if given), references to fn. */
typedef struct walk {
    pol_template_get_fn get;
    pol_template_ref_fn each;
    void *ctx;
    char *out;
    size_t size, used;
    bool overflow;
} walk;

static void emit(walk *w, const char *text, size_t len)
{
    if (!w->out)
        return;
    if (w->used + len >= w->size) {
        w->overflow = true;
        return;
    }
    memcpy(w->out + w->used, text, len);
    w->used += len;
    w->out[w->used] = '\0';
}

static int template_walk(const char *text, walk *w, char *error, size_t size)
{
    for (const char *c = text; *c;) {
        if ((c[0] == '{' && c[1] == '{') || (c[0] == '}' && c[1] == '}')) {
            emit(w, c, 1);
            c += 2;
        } else if (c[0] == '}') {
            snprintf(error, size, "'}' without '{' (write }} for a brace)");
            return -1;
        } else if (c[0] == '{') {
            uint32_t tag;
            bool original;
            size_t len = template_ref(c, &tag, &original, error, size);
            if (len == 0)
                return -1;
            if (w->each)
                w->each(w->ctx, tag, original);
            if (w->get) {
                const char *value = w->get(w->ctx, tag, original);
                if (value)
                    emit(w, value, strlen(value));
            }
            c += len;
        } else {
            emit(w, c, 1);
            c++;
        }
    }
    return 0;
}

int pol_template_check(const char *text, char *error, size_t size)
{
    walk w = {0};
    return template_walk(text, &w, error, size);
}

void pol_template_each(const char *text, pol_template_ref_fn fn, void *ctx)
{
    char error[160];
    walk w = {.each = fn, .ctx = ctx};
    template_walk(text, &w, error, sizeof error);
}

int pol_template_expand(const char *text, pol_template_get_fn get, void *ctx,
                        char *out, size_t size)
{
    char error[160];
    walk w = {.get = get, .ctx = ctx, .out = out, .size = size};
    if (size == 0)
        return -1;
    out[0] = '\0';
    if (template_walk(text, &w, error, sizeof error) < 0 || w.overflow)
        return -1;
    return (int)w.used;
}
