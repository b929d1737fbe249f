/* scrub.c - cleaning free text (the "C" of Clean Descriptors, Retain
 * Patient Characteristics, Clean Graphics and Clean Structured Content).
 *
 * PS3.15 asks to replace such text "with values of similar meaning known
 * not to contain identifying information". No program can know that of
 * free text in general; what SIREN does, and docs/POLICY.md says, is to
 * blank every occurrence of the identifying values this very instance
 * carries elsewhere (names and their parts, IDs, accession numbers,
 * dates, institutions: whatever the profile removes or replaces), in any
 * letter case, and the dates also in their usual spellings. Text that
 * names someone the instance does not name elsewhere is not caught.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 1024  /* per instance: bounds the cleaning's cost */
#define MIN_WORD 2      /* shorter parts (initials) would blank letters */

void anon_words_free(anon_words *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->items[i]);
    free(w->items);
    memset(w, 0, sizeof *w);
}

static int add_word(anon_words *w, const char *text, size_t len,
                    dcm_error *err)
{
    while (len > 0 && (*text == ' ' || *text == '^' || *text == '='))
        text++, len--;
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '^'))
        len--;
    if (len < MIN_WORD || w->count == MAX_WORDS)
        return DCM_OK;
    for (size_t i = 0; i < w->count; i++)
        if (strlen(w->items[i]) == len &&
            strncasecmp(w->items[i], text, len) == 0)
            return DCM_OK;
    if (w->count == w->capacity) {
        size_t more = w->capacity ? w->capacity * 2 : 32;
        char **bigger = realloc(w->items, more * sizeof *bigger);
        if (!bigger)
            return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        w->items = bigger;
        w->capacity = more;
    }
    if (!(w->items[w->count] = strndup(text, len)))
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    w->count++;
    return DCM_OK;
}

/* A date also as people write it: 1965-03-07, 07.03.1965, 03/07/1965,
 * 07/03/1965. */
static int add_date(anon_words *w, const char *d, dcm_error *err)
{
    char forms[4][16];
    if (strlen(d) < 8)
        return DCM_OK;
    snprintf(forms[0], sizeof forms[0], "%.4s-%.2s-%.2s", d, d + 4, d + 6);
    snprintf(forms[1], sizeof forms[1], "%.2s.%.2s.%.4s", d + 6, d + 4, d);
    snprintf(forms[2], sizeof forms[2], "%.2s/%.2s/%.4s", d + 4, d + 6, d);
    snprintf(forms[3], sizeof forms[3], "%.2s/%.2s/%.4s", d + 6, d + 4, d);
    int rc = add_word(w, d, 8, err);
    for (int i = 0; i < 4 && rc == DCM_OK; i++)
        rc = add_word(w, forms[i], strlen(forms[i]), err);
    return rc;
}

/* A value's words: a person name whole and by component (family, given,
 * middle, each group); any other value whole, value by value. */
static int add_value(anon_words *w, dcm_vr vr, const char *text,
                     dcm_error *err)
{
    int rc = DCM_OK;
    for (const char *v = text; rc == DCM_OK && *v;) {
        size_t len = strcspn(v, "\\");
        if (vr == DCM_VR_DA || vr == DCM_VR_DT) {
            char date[9];
            snprintf(date, sizeof date, "%.*s", (int)(len < 8 ? len : 8), v);
            rc = add_date(w, date, err);
        } else {
            rc = add_word(w, v, len, err);
            for (size_t i = 0; vr == DCM_VR_PN && rc == DCM_OK && i < len;) {
                size_t part = strcspn(v + i, "^=\\ ");
                if (part > len - i)
                    part = len - i;
                rc = add_word(w, v + i, part, err);
                i += part + 1;
            }
        }
        v += len;
        if (*v == '\\')
            v++;
    }
    return rc;
}

/* The value representations identifying values come in. */
static bool collects(dcm_vr vr)
{
    switch (vr) {
    case DCM_VR_PN: case DCM_VR_LO: case DCM_VR_SH: case DCM_VR_AE:
    case DCM_VR_UC: case DCM_VR_DA: case DCM_VR_DT: case DCM_VR_ST:
        return true;
    default:
        return false;
    }
}

static int collect(anon_words *w, const pol_policy *p, const dcm_dataset *ds,
                   dcm_error *err)
{
    for (size_t i = 0; i < dcm_dataset_count(ds); i++) {
        const dcm_element *el = dcm_dataset_at(ds, i);
        uint32_t tag = dcm_element_tag(el);
        dcm_vr vr = dcm_element_vr(el);
        anon_decision d = anon_decide(p, ds, tag, vr);
        int rc = DCM_OK;
        if (dcm_element_kind_of(el) == DCM_KIND_SEQUENCE) {
            for (size_t k = 0; k < dcm_element_item_count(el) && rc == 0; k++)
                rc = collect(w, p, dcm_element_item(el, k), err);
        } else if (d.action != ACT_KEEP && d.action != ACT_CLEAN &&
                   collects(vr) && dcm_element_length(el) > 0) {
            char *text = dcm_element_get_string(el, err);
            if (!text)
                return err ? err->code : DCM_E_NOMEM;
            rc = add_value(w, vr, text, err);
            free(text);
        }
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

int anon_words_collect(anon_words *w, const pol_policy *p,
                       const dcm_dataset *ds, dcm_error *err)
{
    return collect(w, p, ds, err);
}

static bool is_word_char(char c)
{
    return isalnum((unsigned char)c) || (c & 0x80);
}

/* Case-insensitive (ASCII letters; other bytes exactly) search from s
 * within text. A word shorter than SHORT_WORD (a short family name, an
 * initial) is found only as a whole word, lest it blank the letters of
 * every other word; a longer one (an ID inside "ID12345") anywhere. */
#define SHORT_WORD 4
static char *find_word(char *text, char *s, const char *word, size_t len)
{
    for (; *s; s++) {
        if (strncasecmp(s, word, len) != 0)
            continue;
        if (len >= SHORT_WORD ||
            ((s == text || !is_word_char(s[-1])) && !is_word_char(s[len])))
            return s;
    }
    return NULL;
}

size_t anon_words_scrub(const anon_words *w, char *text)
{
    size_t count = 0;
    for (size_t i = 0; i < w->count; i++) {
        const char *word = w->items[i];
        size_t len = strlen(word);
        for (char *at = find_word(text, text, word, len); at;
             at = find_word(text, at + len, word, len)) {
            memset(at, '*', len);
            count++;
        }
    }
    return count;
}
