/* tagref.c - naming attributes in a policy: keywords, numbers with masks,
 * private elements by creator, and paths through sequences.
 *
 *   PatientName                  a keyword of the standard dictionary
 *   (0010,0010)                  a tag by number
 *   (60xx,3000) (50xx,xxxx)      x: any hex digit in that place
 *   (0019,"GEMS_ACQU_01",10)     a private element by creator and low byte,
 *                                whichever block the creator holds in a file
 *   (0019,"GEMS_ACQU_01",xx)     every element of that creator's block
 *   RequestAttributesSequence/AccessionNumber
 *                                B directly inside an item of A
 *
 * A single step names the attribute at every depth of nesting; a path's
 * first step may itself be at any depth (the path is matched from the
 * inside out).
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Four hex digits or x (any digit): value and mask of a 16-bit half. */
static bool parse_hex4(const char *s, uint16_t *value, uint16_t *mask)
{
    *value = *mask = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i];
        *value = (uint16_t)(*value << 4);
        *mask = (uint16_t)(*mask << 4);
        if (c == 'x' || c == 'X')
            continue;
        if (!isxdigit(c))
            return false;
        *value |= (uint16_t)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
        *mask |= 0xF;
    }
    return true;
}

static int tag_error(lexer *lx, const token *t, const char *message)
{
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                    "write (gggg,eeee), (60xx,3000) or (gggg,\"CREATOR\",ee)",
                    "%s: %s", message, t->text);
}

/* (gggg,"CREATOR",ee): a private element by its creator. */
static int parse_private_step(lexer *lx, const token *t, uint16_t group,
                              pol_tag *step)
{
    /* The opening quote, right after "(gggg,": the creator starts at
     * open + 1 (text + 7 here lost its first letter, and for an unclosed
     * "(gggg,\"" searched past the end of the text). */
    const char *open = t->text + 6;
    const char *close = strchr(open + 1, '"');
    if (!close)
        return tag_error(lx, t, "private creator not closed");
    size_t len = (size_t)(close - open - 1);
    while (len > 0 && open[len] == ' ') /* creators are compared unpadded */
        len--;
    if (len == 0 || len > DCM_CREATOR_MAX)
        return tag_error(lx, t, "private creator must be 1 to 64 characters");
    if (!(group & 1) || group <= 0x0008 || group == 0xFFFF)
        return tag_error(lx, t, "a private creator needs an odd group "
                                "above 0008");
    const char *rest = close + 1;
    uint16_t element, emask;
    char digits[5] = {'0', '0', rest[0] ? rest[1] : 0, rest[0] ? rest[2] : 0,
                      0};
    if (rest[0] != ',' || !parse_hex4(digits, &element, &emask) ||
        strcmp(rest + 3, ")") != 0)
        return tag_error(lx, t, "after the creator come the element's last "
                                "two hex digits, e.g. ,10) or ,xx) for all");
    memcpy(step->creator, open + 1, len);
    step->creator[len] = '\0';
    step->tag = DCM_TAG(group, element);
    /* The block byte (ee of gggg,xxee) differs from file to file. */
    step->mask = 0xFFFF0000u | (emask & 0xFFu);
    return 0;
}

static int parse_number_step(lexer *lx, const token *t, pol_tag *step)
{
    uint16_t group, gmask, element, emask;
    const char *s = t->text;
    if (strlen(s) < 7 || s[0] != '(' || !parse_hex4(s + 1, &group, &gmask) ||
        s[5] != ',')
        return tag_error(lx, t, "malformed tag");
    if (s[6] == '"') {
        if (gmask != 0xFFFF)
            return tag_error(lx, t, "a private creator needs an exact group");
        return parse_private_step(lx, t, group, step);
    }
    if (strlen(s) != 11 || !parse_hex4(s + 6, &element, &emask) ||
        s[10] != ')')
        return tag_error(lx, t, "malformed tag");
    step->tag = DCM_TAG(group, element);
    /* x in a group never reaches into the private (odd) groups: (60xx,3000)
     * is the overlays of groups 6000-60FE, not a vendor's (6001,3000). */
    if (gmask != 0xFFFF && !(group & 1))
        gmask |= 1;
    step->mask = (uint32_t)gmask << 16 | emask;
    step->creator[0] = '\0';
    if (gmask == 0xFFFF && dcm_tag_is_private(step->tag) &&
        element >= 0x1000)
        pol_diags_add(lx->diags, true, lx->file, t->line, t->column,
                 "name it by creator: (gggg,\"CREATOR\",ee)",
                 "%s names a private element by its block number, which "
                 "differs between files and vendors", t->text);
    return 0;
}

/* A keyword of the standard dictionary. Repeating groups (OverlayData is
 * (60xx,3000)) keep their mask: the dictionary gives (6002,3000) the same
 * entry as (6000,3000). The mask keeps the group's low bit: the repeating
 * groups are even, and (6001,3000) is a private element (dcm_dict_find
 * gives it no entry), which "keep OverlayData" must not keep. */
static int parse_keyword_step(lexer *lx, const token *t, pol_tag *step)
{
    const dcm_dict_entry *entry = dcm_dict_find_keyword(t->text);
    if (!entry)
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                        "use a keyword of PS3.6 (as dcmdump prints it) or "
                        "a number (gggg,eeee)",
                        "unknown attribute '%s'", t->text);
    step->tag = entry->tag;
    step->mask = 0xFFFFFFFFu;
    step->creator[0] = '\0';
    if (dcm_dict_find(entry->tag + 0x00020000u) == entry)
        step->mask = 0xFF01FFFFu;
    return 0;
}

static int parse_step(lexer *lx, const token *t, pol_tag *step)
{
    if (t->kind == TOK_TAG)
        return parse_number_step(lx, t, step);
    if (t->kind == TOK_WORD)
        return parse_keyword_step(lx, t, step);
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                    "name it by keyword (PatientName) or number (0010,0010)",
                    "expected an attribute, found '%s'",
                    t->kind == TOK_NEWLINE ? "end of line" : t->text);
}

static void append_text(pol_tagref *ref, const char *text)
{
    size_t used = strlen(ref->text);
    snprintf(ref->text + used, sizeof ref->text - used, "%s%s",
             used ? "/" : "", text);
}

int parse_tagref(lexer *lx, const token *first, pol_tagref *out)
{
    memset(out, 0, sizeof *out);
    token t = *first;
    for (;;) {
        if (out->length == POL_MAX_PATH)
            return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                            NULL, "a path may have at most %d steps",
                            POL_MAX_PATH);
        if (parse_step(lx, &t, &out->steps[out->length]) < 0)
            return -1;
        out->length++;
        append_text(out, t.text);
        const token *next = lex_peek(lx);
        if (next->kind != TOK_PUNCT || strcmp(next->text, "/") != 0)
            return 0;
        lex_next(lx, &t); /* the slash */
        lex_next(lx, &t);
    }
}

/* Whether step names element tag of ds (whose creators ds holds). */
static bool step_matches(const pol_tag *step, const dcm_dataset *ds,
                         uint32_t tag)
{
    if ((tag & step->mask) != (step->tag & step->mask))
        return false;
    if (!step->creator[0])
        return true;
    char creator[DCM_CREATOR_MAX + 1];
    return dcm_dataset_private_creator(ds, tag, creator, sizeof creator) &&
           strcmp(creator, step->creator) == 0;
}

bool pol_tagref_matches(const pol_tagref *ref, const dcm_dataset *ds,
                        uint32_t tag)
{
    if (ref->length == 0 || !step_matches(&ref->steps[ref->length - 1], ds,
                                          tag))
        return false;
    const dcm_dataset *item = ds;
    for (size_t i = ref->length - 1; i > 0; i--) {
        const dcm_dataset *holder = dcm_dataset_parent(item);
        if (!holder || !step_matches(&ref->steps[i - 1], holder,
                                     dcm_dataset_parent_tag(item)))
            return false;
        item = holder;
    }
    return true;
}
