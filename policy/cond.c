/* cond.c - the conditions of reject and quarantine lines.
 *
 *   cond    := and-expr { "or" and-expr }
 *   and-expr:= unary { "and" unary }
 *   unary   := "not" unary | "(" cond ")" | test
 *   test    := REF "exists"
 *            | REF op VALUE                op: == != < <= > >=
 *            | REF ["not"] "in" "(" VALUE { "," VALUE } ")"
 *            | REF ["not"] "contains" VALUE
 *            | REF ["not"] "matches" STRING  (POSIX extended regex)
 *
 * Semantics, as docs/POLICY.md states them for officers: a test looks at
 * the top-level attribute (a path A/B looks into every item of A); text is
 * compared after decoding to UTF-8, without leading and trailing spaces;
 * a multi-valued attribute passes when any of its values does; numbers
 * compare as numbers when both sides are numbers; a test on an absent
 * attribute is false, except that "not" inverts the whole test.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 64   /* in (...) */
#define MAX_DEPTH 32    /* nested parentheses and "not" */

static bool is_punct(const token *t, const char *p)
{
    return t->kind == TOK_PUNCT && strcmp(t->text, p) == 0;
}

static int expected(lexer *lx, const token *t, const char *what,
                    const char *hint)
{
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column, hint,
                    "expected %s, found '%s'", what, shown(t));
}

static cond *cond_new(cond_kind kind)
{
    cond *c = calloc(1, sizeof *c);
    if (c)
        c->kind = kind;
    return c;
}

void cond_free(cond *c)
{
    /* Along the right of a chain (right-deep, see parse_chain) a loop: one
     * call per test would overflow the stack for a long chain. */
    while (c) {
        cond *right = c->right;
        cond_free(c->left);
        for (size_t i = 0; i < c->value_count; i++)
            free(c->values[i]);
        free(c->values);
        if (c->has_regex)
            regfree(&c->regex);
        free(c);
        c = right;
    }
}

static int add_value(lexer *lx, cond *c, const token *t)
{
    if (t->kind != TOK_WORD && t->kind != TOK_NUMBER && t->kind != TOK_STRING)
        return expected(lx, t, "a value", "a word (CT), a number or a "
                                          "\"string\"");
    if (c->value_count == MAX_VALUES)
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column, NULL,
                        "at most %d values in a list", MAX_VALUES);
    char **bigger = realloc(c->values, (c->value_count + 1) * sizeof *bigger);
    if (!bigger)
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column, NULL,
                        "out of memory");
    c->values = bigger;
    if (!(c->values[c->value_count] = strdup(t->text)))
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column, NULL,
                        "out of memory");
    c->value_count++;
    return 0;
}

static int parse_list(lexer *lx, cond *c)
{
    token t;
    lex_next(lx, &t);
    if (!is_punct(&t, "("))
        return expected(lx, &t, "'('", "write: Modality in (CT, MR)");
    for (;;) {
        lex_next(lx, &t);
        if (add_value(lx, c, &t) < 0)
            return -1;
        lex_next(lx, &t);
        if (is_punct(&t, ")"))
            return 0;
        if (!is_punct(&t, ","))
            return expected(lx, &t, "',' or ')'", NULL);
    }
}

/* glibc's regcomp writes a repetition out: "a{3}" becomes "aaa" and "a+"
 * "aa*", nested ones multiplied, so "(a{1,1000}){1,1000}" or twenty
 * nested "(...+)" took gigabytes and seconds to compile: a few characters
 * of a policy could stop the gateway at load. This is the size of the
 * pattern so written out, or a bound past MAX_REGEX_SIZE. The bound is
 * low because the memory grows with the square of the optional copies
 * ("a{1,256}" 0.6 MB, "a{1,1000}" 8 MB, "(a?){1000}" 8 MB), and an
 * included file's lines count each time it is included. */
#define MAX_REGEX_SIZE 256
#define MAX_REGEX_GROUPS 64

/* The digits at c (as many as there are, capped), and what follows. */
static const char *regex_count(const char *c, unsigned long *n)
{
    for (*n = 0; *c >= '0' && *c <= '9'; c++)
        if (*n <= MAX_REGEX_SIZE)
            *n = *n * 10 + (unsigned long)(*c - '0');
    return c;
}

static unsigned long regex_size(const char *re)
{
    unsigned long size[MAX_REGEX_GROUPS] = {0}; /* of each open group */
    unsigned long last = 0; /* size of the atom a repetition applies to */
    int depth = 0;
    for (const char *c = re; *c; c++) {
        if (*c == '(') {
            if (++depth == MAX_REGEX_GROUPS)
                return MAX_REGEX_SIZE + 1;
            size[depth] = 0;
            last = 0;
            continue;
        }
        if (*c == '|' || *c == '*' || *c == '?') {
            last = *c == '|' ? 0 : last;
            continue;
        }
        const char *end = c;
        unsigned long count = *c == '+' ? 2 : 0;
        if (*c == '{') { /* {m}, {m,}, {m,n} and (GNU) {,n} */
            unsigned long low, high;
            end = regex_count(c + 1, &low);
            high = low;
            if (*end == ',') {
                const char *digits = end + 1;
                end = regex_count(digits, &high);
                if (end == digits)
                    high = low + 1; /* {m,}: m copies and a star */
            }
            if (end > c + 1 && *end == '}')
                count = high > 0 ? high : 1;
        }
        if (count > 0) {
            c = end;
            size[depth] += last * (count - 1);
            last *= count;
            if (size[depth] > MAX_REGEX_SIZE)
                return MAX_REGEX_SIZE + 1;
            continue;
        }
        if (*c == ')' && depth > 0) {
            last = size[depth--];
        } else if (*c == '[') { /* a bracket expression: one character */
            c += c[1] == '^' ? 2 : 1;
            c += *c == ']';
            while (*c && *c != ']')
                c++;
            if (!*c)
                break;
            last = 1;
        } else {
            c += *c == '\\' && c[1];
            last = 1;
        }
        size[depth] += last;
        if (size[depth] > MAX_REGEX_SIZE)
            return MAX_REGEX_SIZE + 1;
    }
    return size[0];
}

static int compile_regex(lexer *lx, cond *c, const token *t)
{
    if (t->kind != TOK_STRING)
        return expected(lx, t, "a \"regular expression\"", NULL);
    if (regex_size(t->text) > MAX_REGEX_SIZE)
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                        "repeat with * or + rather than large {m,n}, and "
                        "do not nest repetitions",
                        "regular expression too large: more than %d "
                        "characters with its repetitions written out",
                        MAX_REGEX_SIZE);
    int rc = regcomp(&c->regex, t->text, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &c->regex, why, sizeof why);
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                        "POSIX extended syntax: ^, $, [...], (a|b), *, +",
                        "bad regular expression: %s", why);
    }
    c->has_regex = true;
    return add_value(lx, c, t);
}

static const struct {
    const char *text;
    cond_op op;
} operators[] = {
    {"==", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT},
    {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE},
};

/* REF ... : the test after the attribute. Wraps it in NOT for "not in". */
static int parse_test(lexer *lx, const token *first, cond **out)
{
    cond *c = cond_new(COND_COMPARE);
    if (!c)
        return expected(lx, first, "memory", NULL);
    *out = c;
    if (parse_tagref(lx, first, &c->ref) < 0)
        return -1;
    token t;
    lex_next(lx, &t);
    bool negate = false;
    if (is_word(&t, "not")) {
        negate = true;
        lex_next(lx, &t);
    }
    int rc;
    if (t.kind == TOK_OP && !negate) {
        for (size_t i = 0; i < sizeof operators / sizeof *operators; i++)
            if (strcmp(t.text, operators[i].text) == 0)
                c->op = operators[i].op;
        lex_next(lx, &t);
        rc = add_value(lx, c, &t);
    } else if (is_word(&t, "exists") && !negate) {
        c->kind = COND_EXISTS;
        rc = 0;
    } else if (is_word(&t, "in")) {
        c->kind = COND_IN;
        rc = parse_list(lx, c);
    } else if (is_word(&t, "contains")) {
        c->kind = COND_CONTAINS;
        lex_next(lx, &t);
        rc = add_value(lx, c, &t);
    } else if (is_word(&t, "matches")) {
        c->kind = COND_MATCHES;
        lex_next(lx, &t);
        rc = compile_regex(lx, c, &t);
    } else {
        return expected(lx, &t, negate ? "in, contains or matches"
                                       : "a test",
                        "==, !=, <, <=, >, >=, in (...), contains, matches, "
                        "exists");
    }
    if (rc == 0 && negate) {
        cond *n = cond_new(COND_NOT);
        if (!n)
            return expected(lx, &t, "memory", NULL);
        n->left = c;
        *out = n;
    }
    return rc;
}

static int parse_or(lexer *lx, cond **out, int depth);

static int parse_unary(lexer *lx, cond **out, int depth)
{
    token t;
    lex_next(lx, &t);
    if (depth > MAX_DEPTH)
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column, NULL,
                        "condition nested more than %d deep", MAX_DEPTH);
    if (is_word(&t, "not")) {
        cond *n = cond_new(COND_NOT);
        if (!n)
            return expected(lx, &t, "memory", NULL);
        *out = n;
        return parse_unary(lx, &n->left, depth + 1);
    }
    if (is_punct(&t, "(")) {
        if (parse_or(lx, out, depth + 1) < 0)
            return -1;
        lex_next(lx, &t);
        return is_punct(&t, ")") ? 0 : expected(lx, &t, "')'", NULL);
    }
    if (t.kind != TOK_WORD && t.kind != TOK_TAG)
        return expected(lx, &t, "an attribute, 'not' or '('",
                        "e.g. Modality in (CT, MR)");
    return parse_test(lx, &t, out);
}

/* A chain of one binary operator, built right-deep: a or (b or (c ...)).
 * The operators are associative and the operands still run left to right;
 * built left-deep, evaluating and freeing a chain recursed once per test,
 * and a policy with thousands of tests joined by "or" (in (...) takes at
 * most 64 values) overflowed the 256 KiB stack of an association thread.
 * cond_eval and cond_free loop along the right instead. */
static int parse_chain(lexer *lx, cond **out, int depth, const char *word,
                       cond_kind kind,
                       int (*operand)(lexer *, cond **, int))
{
    if (operand(lx, out, depth) < 0)
        return -1;
    cond **tail = out;
    while (is_word(lex_peek(lx), word)) {
        token t;
        lex_next(lx, &t);
        cond *both = cond_new(kind);
        if (!both)
            return expected(lx, &t, "memory", NULL);
        both->left = *tail;
        *tail = both;
        tail = &both->right;
        if (operand(lx, tail, depth) < 0)
            return -1;
    }
    return 0;
}

static int parse_and(lexer *lx, cond **out, int depth)
{
    return parse_chain(lx, out, depth, "and", COND_AND, parse_unary);
}

static int parse_or(lexer *lx, cond **out, int depth)
{
    return parse_chain(lx, out, depth, "or", COND_OR, parse_and);
}

int parse_condition(lexer *lx, cond **out)
{
    *out = NULL;
    return parse_or(lx, out, 0);
}

/* ---- evaluation ------------------------------------------------------------ */

static bool parse_number(const char *text, double *out)
{
    char *end;
    if (!*text)
        return false;
    *out = strtod(text, &end);
    return *end == '\0' && isfinite(*out);
}

/* One value of the attribute against the test. */
static bool value_passes(const cond *c, const char *text)
{
    double have, want;
    bool numbers = c->value_count > 0 && parse_number(text, &have) &&
                   parse_number(c->values[0], &want);
    switch (c->kind) {
    case COND_IN:
        for (size_t i = 0; i < c->value_count; i++) {
            if (strcmp(text, c->values[i]) == 0 ||
                (parse_number(text, &have) &&
                 parse_number(c->values[i], &want) && have == want))
                return true;
        }
        return false;
    case COND_CONTAINS:
        return strstr(text, c->values[0]) != NULL;
    case COND_MATCHES:
        return regexec(&c->regex, text, 0, NULL, 0) == 0;
    case COND_COMPARE: {
        int order = numbers ? (have > want) - (have < want)
                            : strcmp(text, c->values[0]);
        switch (c->op) {
        case OP_EQ: return order == 0;
        case OP_NE: return order != 0;
        case OP_LT: return order < 0;
        case OP_LE: return order <= 0;
        case OP_GT: return order > 0;
        case OP_GE: return order >= 0;
        }
        return false;
    }
    default:
        return false;
    }
}

static char *trimmed(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

/* Text VRs whose backslash is a character, not a value separator. */
static bool single_valued(dcm_vr vr)
{
    return vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT ||
           vr == DCM_VR_UR;
}

static bool string_passes(const cond *c, const dcm_dataset *holder,
                          const dcm_element *el)
{
    char *text = dcm_dataset_get_utf8(holder, dcm_element_tag(el), NULL);
    if (!text)
        return false;
    bool pass = false;
    /* Every test, contains and matches too, looks at one value at a
     * time: "ImageType matches \"^AXIAL$\"" means a value AXIAL. */
    if (single_valued(dcm_element_vr(el))) {
        pass = value_passes(c, trimmed(text));
    } else {
        char *rest = text;
        for (char *v; !pass && (v = strsep(&rest, "\\")) != NULL;)
            pass = value_passes(c, trimmed(v));
    }
    free(text);
    return pass;
}

static bool number_passes(const cond *c, const dcm_element *el)
{
    size_t count = dcm_element_value_count(el);
    if (count > MAX_VALUES * 16)
        count = MAX_VALUES * 16; /* a test is not a scan of pixel data */
    for (size_t i = 0; i < count; i++) {
        double v;
        char text[64];
        if (dcm_element_get_double(el, i, &v, NULL) < 0)
            return false;
        snprintf(text, sizeof text, "%.17g", v);
        if (value_passes(c, text))
            return true;
    }
    return false;
}

static bool element_passes(const cond *c, const dcm_dataset *holder,
                           const dcm_element *el)
{
    if (c->kind == COND_EXISTS)
        return true;
    if (dcm_element_kind_of(el) != DCM_KIND_VALUE)
        return false;
    if (dcm_vr_is_string(dcm_element_vr(el)))
        return string_passes(c, holder, el);
    return number_passes(c, el);
}

/* Any element named by steps [step, length) of the ref, below ds. */
static bool any_passes(const cond *c, const dcm_dataset *ds, size_t step)
{
    const pol_tagref *ref = &c->ref;
    for (size_t i = 0; i < dcm_dataset_count(ds); i++) {
        const dcm_element *el = dcm_dataset_at(ds, i);
        pol_tagref one = {.length = 1, .steps = {ref->steps[step]}};
        if (!pol_tagref_matches(&one, ds, dcm_element_tag(el)))
            continue;
        if (step + 1 == ref->length) {
            if (element_passes(c, ds, el))
                return true;
            continue;
        }
        for (size_t k = 0; k < dcm_element_item_count(el); k++)
            if (any_passes(c, dcm_element_item(el, k), step + 1))
                return true;
    }
    return false;
}

bool cond_eval(const cond *c, const dcm_dataset *ds)
{
    switch (c->kind) {
    case COND_AND:
    case COND_OR: {
        /* A chain is right-deep (parse_chain): a loop along the right. */
        cond_kind kind = c->kind;
        for (; c->kind == kind; c = c->right)
            if (cond_eval(c->left, ds) == (kind == COND_OR))
                return kind == COND_OR;
        return cond_eval(c, ds);
    }
    case COND_NOT:
        return !cond_eval(c->left, ds);
    default:
        return any_passes(c, ds, 0);
    }
}
