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

/* The lower-case letter of cp for the scripts names are written in
 * (Latin with its European extensions, Greek, Cyrillic); cp itself for
 * anything else. Each pair has the same UTF-8 length, so folding keeps
 * byte offsets. */
static uint32_t fold_codepoint(uint32_t cp)
{
    bool latin1 = cp >= 0xC0 && cp <= 0xDE && cp != 0xD7;
    bool greek = cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2;
    bool cyrillic = cp >= 0x410 && cp <= 0x42F;
    if ((cp >= 'A' && cp <= 'Z') || latin1 || greek || cyrillic)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    /* Greek capitals with tonos, and final sigma as sigma. */
    if (cp == 0x386)
        return 0x3AC;
    if (cp >= 0x388 && cp <= 0x38A)
        return cp + 0x25;
    if (cp == 0x38C)
        return 0x3CC;
    if (cp == 0x38E || cp == 0x38F)
        return cp + 0x3F;
    if (cp == 0x3C2)
        return 0x3C3;
    /* Latin Extended Additional (Vietnamese, Welsh): upper case even. */
    if (((cp >= 0x1E00 && cp <= 0x1E95) || (cp >= 0x1EA0 && cp <= 0x1EFF)) &&
        cp % 2 == 0)
        return cp + 1;
    /* Latin Extended-A: upper case even, except in 0139-0148 and
     * 0179-017E where it is odd. */
    bool odd_upper = (cp >= 0x139 && cp <= 0x148) ||
                     (cp >= 0x179 && cp <= 0x17E);
    if (cp >= 0x100 && cp <= 0x17F && cp != 0x130 && cp != 0x138 &&
        cp != 0x149 && cp != 0x17F && (cp % 2 == 1) == odd_upper)
        return cp + 1;
    return cp;
}

/* Folds UTF-8 text to lower case in place (see fold_codepoint). */
static void fold_case(char *text)
{
    unsigned char *s = (unsigned char *)text;
    while (*s) {
        if (*s < 0x80) {
            *s = (unsigned char)fold_codepoint(*s);
            s++;
        } else if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
            uint32_t cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
            uint32_t folded = fold_codepoint(cp);
            s[0] = (unsigned char)(0xC0 | folded >> 6);
            s[1] = (unsigned char)(0x80 | (folded & 0x3F));
            s += 2;
        } else if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 &&
                   (s[2] & 0xC0) == 0x80) {
            uint32_t cp = (uint32_t)(s[0] & 0x0F) << 12 |
                          (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
            uint32_t folded = fold_codepoint(cp);
            s[1] = (unsigned char)(0x80 | ((folded >> 6) & 0x3F));
            s[2] = (unsigned char)(0x80 | (folded & 0x3F));
            s += 3;
        } else {
            s++; /* four bytes: no case to fold in the scripts of names */
        }
    }
}

static int add_word(anon_words *w, const char *text, size_t len,
                    dcm_error *err)
{
    while (len > 0 && (*text == ' ' || *text == '^' || *text == '='))
        text++, len--;
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '^'))
        len--;
    if (len < MIN_WORD)
        return DCM_OK;
    if (w->count == MAX_WORDS) {
        w->incomplete = true;
        return DCM_OK;
    }
    char *word = strndup(text, len);
    if (!word)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    fold_case(word);
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->items[i], word) == 0) {
            free(word);
            return DCM_OK;
        }
    if (w->count == w->capacity) {
        size_t more = w->capacity ? w->capacity * 2 : 32;
        char **bigger = realloc(w->items, more * sizeof *bigger);
        if (!bigger) {
            free(word);
            return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        }
        w->items = bigger;
        w->capacity = more;
    }
    w->items[w->count++] = word; /* folded: see anon_words_scrub */
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

/* Search from s within folded text for a folded word. A word shorter
 * than SHORT_WORD (a short family name, an initial) is found only as a
 * whole word, lest it blank the letters of every other word; a longer one
 * (an ID inside "ID12345") anywhere. */
#define SHORT_WORD 4
static char *find_word(char *text, char *s, const char *word, size_t len)
{
    for (; *s; s++) {
        if (strncmp(s, word, len) != 0)
            continue;
        if (len >= SHORT_WORD ||
            ((s == text || !is_word_char(s[-1])) && !is_word_char(s[len])))
            return s;
    }
    return NULL;
}

/* A byte no UTF-8 text holds (a control character the decoder never
 * produces in a value): marks bytes to drop. */
#define CONTINUATION_MARK '\x01'

/* Blanks len bytes at s: the first byte of each character becomes '*',
 * its UTF-8 continuation bytes are marked for removal, so that a blanked
 * name is as many characters long as it was, and the value keeps within
 * its VR's length in characters. */
static void blank(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s[i] = ((unsigned char)s[i] & 0xC0) == 0x80 ? CONTINUATION_MARK : '*';
}

size_t anon_words_scrub(const anon_words *w, char *text)
{
    /* Matched in a case-folded copy, blanked in text at the same offsets
     * (folding keeps them). */
    char *folded = strdup(text);
    if (!folded) {
        /* No memory to compare: blank all of it rather than keep a name. */
        size_t len = strlen(text);
        memset(text, '*', len);
        return len > 0;
    }
    fold_case(folded);
    size_t count = 0;
    for (size_t i = 0; i < w->count; i++) {
        const char *word = w->items[i];
        size_t len = strlen(word);
        for (char *at = find_word(folded, folded, word, len); at;
             at = find_word(folded, at + len, word, len)) {
            blank(text + (at - folded), len);
            memset(at, '*', len);
            count++;
        }
    }
    free(folded);
    /* One '*' per character: drop the continuation bytes blank() marked. */
    char *out = text;
    for (const char *in = text; *in; in++)
        if (*in != CONTINUATION_MARK)
            *out++ = *in;
    *out = '\0';
    return count;
}
