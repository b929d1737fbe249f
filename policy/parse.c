/* parse.c - compiling a policy file.
 *
 * The grammar, one statement per line ('#' comments, '\' continues a
 * line, ${VAR} and ${VAR:-default} anywhere):
 *
 *   policy "NAME" version N            opens the policy (once, first)
 *   end                                closes it (last)
 *   include "FILE"                     statements of another file, here
 *   profile basic                      PS3.15 Basic Profile (required)
 *   option OPTION                      a PS3.15 option, e.g. retain-uids
 *   mode keep-list | standard          what happens to unlisted attributes
 *   key file "FILE"                    the HMAC-SHA256 secret
 *   reject|quarantine if|unless COND [unless redacted] [because "TEXT"]
 *   keep|remove|empty|remap|hash|shift REF
 *   replace REF with "TEXT"            a constant, or a template with
 *                                      {Keyword} / {original:Keyword}
 *   replace REF with hash
 *   replace REF with lookup "FILE.csv" [key COLUMN] column COLUMN \
 *           else reject|quarantine|keep|default "TEXT"
 *   shift dates by hmac-days(REF, MIN..MAX) [back|forward]
 *   compress to CODEC ... [if|unless COND]    pixel lines: pixels.c
 *   keep-syntax [if|unless COND]
 *   redact rectangle X Y WIDTH HEIGHT [if|unless COND]
 *   on compression-failure keep-original|quarantine
 *   allow lossy-recompression
 *   verify lossless on|off
 *
 * FILE names are relative to the file that names them. Conditions are in
 * cond.c, attribute references (REF) in tagref.c. Errors are collected
 * (one per bad line, the parser carries on with the next line) so that
 * an officer sees all of them at once.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INCLUDE_DEPTH 8
#define MAX_FILES 16 /* files read for one policy, each include counted */
#define MAX_POLICY_FILE (1u << 20)
#define KEY_MIN_BYTES 16
#define KEY_MAX_BYTES 4096
#define SHIFT_MAX_DAYS 36500

typedef struct parser {
    pol_policy *p;
    pol_diags *diags;
    pol_lookup_fn lookup;
    void *lookup_ctx;
    EVP_MD_CTX *hash;
    const char *stack[MAX_INCLUDE_DEPTH]; /* files being read, outermost first */
    int depth;
    bool opened, closed;
    unsigned key_line, shift_line, policy_line;
    unsigned shift_column, policy_column; /* where the keyword stands */
    const char *shift_file; /* 'shift dates' may be in an included file */
    const char *main_file;
} parser;

/* ---- small helpers -------------------------------------------------------- */

static int expect_string(lexer *lx, token *t, const char *what)
{
    lex_next(lx, t);
    if (t->kind == TOK_STRING && t->text[0])
        return 0;
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                    "put it in double quotes", "expected %s, found '%s'",
                    what, shown(t));
}

/* Skips the rest of a bad line so that parsing resumes at the next. */
static void skip_line(lexer *lx)
{
    token t;
    do
        lex_next(lx, &t);
    while (t.kind != TOK_NEWLINE && t.kind != TOK_END);
}

static int end_of_statement(lexer *lx)
{
    token t;
    lex_next(lx, &t);
    if (t.kind == TOK_NEWLINE || t.kind == TOK_END)
        return 0;
    pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
             "one statement per line", "unexpected '%s' after the statement",
             t.text);
    skip_line(lx);
    return -1;
}

/* ---- building the policy -------------------------------------------------- */

static pol_rule *add_rule(parser *ps, lexer *lx, const token *at)
{
    pol_policy *p = ps->p;
    if (p->rule_count == p->rule_capacity) {
        size_t more = p->rule_capacity ? p->rule_capacity * 2 : 32;
        pol_rule *bigger = realloc(p->rules, more * sizeof *bigger);
        if (!bigger) {
            lex_error_at(lx, at, NULL, "out of memory");
            return NULL;
        }
        p->rules = bigger;
        p->rule_capacity = more;
    }
    pol_rule *r = &p->rules[p->rule_count++];
    memset(r, 0, sizeof *r);
    /* The file being read, not the last one opened: after an include
     * returns, files[] ends with the included file. */
    r->file = lx->file;
    r->line = at->line;
    r->column = at->column;
    return r;
}

static gate *add_gate(parser *ps, lexer *lx, const token *at)
{
    pol_policy *p = ps->p;
    if (p->gate_count == p->gate_capacity) {
        size_t more = p->gate_capacity ? p->gate_capacity * 2 : 8;
        gate *bigger = realloc(p->gates, more * sizeof *bigger);
        if (!bigger) {
            lex_error_at(lx, at, NULL, "out of memory");
            return NULL;
        }
        p->gates = bigger;
        p->gate_capacity = more;
    }
    gate *g = &p->gates[p->gate_count++];
    memset(g, 0, sizeof *g);
    g->file = lx->file; /* as in add_rule */
    g->line = at->line;
    return g;
}

static const char *file_name_kept(pol_policy *p, const char *path)
{
    char **bigger = realloc(p->files, (p->file_count + 1) * sizeof *bigger);
    if (!bigger)
        return NULL;
    p->files = bigger;
    if (!(p->files[p->file_count] = strdup(path)))
        return NULL;
    return p->files[p->file_count++];
}

/* ---- statements ------------------------------------------------------------ */

static int parse_file(parser *ps, const char *path, const token *from,
                      lexer *from_lx);

static int st_policy(parser *ps, lexer *lx, const token *kw)
{
    token name, version;
    /* depth 1: the main file is being read. */
    if (ps->depth > 1)
        return lex_error_at(lx, kw, "only the main file opens the policy",
                        "'policy' in an included file");
    if (ps->opened)
        return lex_error_at(lx, kw, "one policy per file", "a second 'policy'");
    ps->opened = true;
    ps->policy_line = kw->line;
    ps->policy_column = kw->column;
    if (expect_string(lx, &name, "the policy's name") < 0)
        return -1;
    if (strlen(name.text) >= sizeof ps->p->name)
        return lex_error_at(lx, &name, NULL, "name too long");
    for (const char *c = name.text; *c; c++)
        if (*c < 0x20 || *c == 0x7F || *c == '\\')
            return lex_error_at(lx, &name, "letters, digits, spaces, - . _",
                            "control character in the name");
    memcpy(ps->p->name, name.text, strlen(name.text) + 1);
    if (lex_expect_word(lx, "version", "write: policy \"NAME\" version 1") < 0)
        return -1;
    lex_next(lx, &version);
    char *end;
    errno = 0;
    unsigned long v = strtoul(version.text, &end, 10);
    if (version.kind != TOK_NUMBER || *end || errno || v == 0 ||
        v > 999999)
        return lex_error_at(lx, &version, "a whole number from 1, raised at each "
                                      "change", "bad version");
    ps->p->version = (unsigned)v;
    return 0;
}

static int st_profile(parser *ps, lexer *lx)
{
    token t;
    lex_next(lx, &t);
    if (!is_word(&t, "basic"))
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                        "the PS3.15 profile is 'basic'; options refine it",
                        "unknown profile '%s'", shown(&t));
    ps->p->have_profile = true;
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
    const char *alias;
} option_names[] = {
    {"clean-pixel-data", POL_OPT_CLEAN_PIXEL_DATA, NULL},
    {"clean-recognizable-visual-features", POL_OPT_CLEAN_VISUAL_FEATURES,
     "clean-visual-features"},
    {"clean-graphics", POL_OPT_CLEAN_GRAPHICS, NULL},
    {"clean-structured-content", POL_OPT_CLEAN_STRUCTURED_CONTENT, NULL},
    {"clean-descriptors", POL_OPT_CLEAN_DESCRIPTORS, NULL},
    {"retain-longitudinal-full-dates", POL_OPT_RETAIN_LONG_FULL_DATES, NULL},
    {"retain-longitudinal-modified-dates", POL_OPT_RETAIN_LONG_MODIFIED_DATES,
     NULL},
    {"retain-patient-characteristics", POL_OPT_RETAIN_PATIENT_CHARACTERISTICS,
     NULL},
    {"retain-device-identity", POL_OPT_RETAIN_DEVICE_IDENTITY, NULL},
    {"retain-institution-identity", POL_OPT_RETAIN_INSTITUTION_IDENTITY,
     NULL},
    {"retain-uids", POL_OPT_RETAIN_UIDS, NULL},
    {"retain-safe-private", POL_OPT_RETAIN_SAFE_PRIVATE, NULL},
};

const char *pol_option_name(unsigned option)
{
    for (size_t i = 0; i < sizeof option_names / sizeof *option_names; i++)
        if (option_names[i].bit == option)
            return option_names[i].name;
    return NULL;
}

/* What a retain option leaves in, for its warning. */
static const char *retain_warning(unsigned bit)
{
    switch (bit) {
    case POL_OPT_RETAIN_LONG_FULL_DATES:
        return "keeps every date and time as acquired";
    case POL_OPT_RETAIN_PATIENT_CHARACTERISTICS:
        return "keeps age, sex, size, weight and other characteristics";
    case POL_OPT_RETAIN_DEVICE_IDENTITY:
        return "keeps device serial numbers and station names";
    case POL_OPT_RETAIN_INSTITUTION_IDENTITY:
        return "keeps institution names and addresses";
    case POL_OPT_RETAIN_UIDS:
        return "keeps the original UIDs, which link back to the source "
               "records";
    case POL_OPT_RETAIN_SAFE_PRIVATE:
        return "keeps the private attributes PS3.15 lists as safe";
    default:
        return NULL;
    }
}

static int st_option(parser *ps, lexer *lx)
{
    token t;
    lex_next(lx, &t);
    for (size_t i = 0; i < sizeof option_names / sizeof *option_names; i++) {
        if (!is_word(&t, option_names[i].name) &&
            !(option_names[i].alias && is_word(&t, option_names[i].alias)))
            continue;
        unsigned bit = option_names[i].bit;
        if (ps->p->options & bit)
            pol_diags_add(lx->diags, true, lx->file, t.line, t.column, NULL,
                     "option %s given twice", t.text);
        if (bit == POL_OPT_CLEAN_PIXEL_DATA ||
            bit == POL_OPT_CLEAN_VISUAL_FEATURES)
            return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                            "name the rectangles with redact lines and "
                            "quarantine if BurnedInAnnotation == YES "
                            "unless redacted",
                            "option %s would stamp that %s, which SIREN "
                            "cannot promise: it blanks only the rectangles "
                            "redact lines name", t.text,
                            bit == POL_OPT_CLEAN_PIXEL_DATA
                                ? "all burned-in text is gone"
                                : "no recognizable visual feature remains");
        ps->p->options |= bit;
        const char *what = retain_warning(bit);
        if (what)
            pol_diags_add(lx->diags, true, lx->file, t.line, t.column,
                     "make sure the protocol and the ethics approval allow "
                     "it", "option %s %s", t.text, what);
        return 0;
    }
    return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                    "see docs/POLICY.md for the PS3.15 options",
                    "unknown option '%s'", shown(&t));
}

static int st_mode(parser *ps, lexer *lx)
{
    token t;
    lex_next(lx, &t);
    if (is_word(&t, "keep-list") || is_word(&t, "standard")) {
        ps->p->keep_list = is_word(&t, "keep-list");
        return 0;
    }
    return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                    "mode keep-list, or mode standard (the default)",
                    "unknown mode '%s'", shown(&t));
}

/* Reads the secret. The file is refused if others may read it; a final
 * newline (echo, openssl rand -hex > file) is not part of the key. */
static int load_key(parser *ps, lexer *lx, const token *t, const char *path)
{
    char error[512];
    size_t len;
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                        "chmod 600 the file (or 400), owned by the gateway's "
                        "user", "key file %s is readable by group or others",
                        path);
    char *data = policy_read_file(path, KEY_MAX_BYTES, &len, error, sizeof error);
    if (!data)
        return lex_error_at(lx, t, "key file \"/run/secrets/NAME\"", error);
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len < KEY_MIN_BYTES) {
        explicit_bzero(data, len);
        free(data);
        return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                        "make one: openssl rand -hex 32 > FILE",
                        "key in %s is shorter than %d bytes", path,
                        KEY_MIN_BYTES);
    }
    pol_policy *p = ps->p;
    p->key = (uint8_t *)data;
    p->key_len = len;
    uint8_t digest[32];
    unsigned digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL);
    int n = snprintf(p->key_id, sizeof p->key_id, "sha256:");
    for (int i = 0; i < 8; i++)
        n += snprintf(p->key_id + n, sizeof p->key_id - (size_t)n, "%02x",
                      digest[i]);
    /* A different key treats instances differently: it changes the hash. */
    policy_hash_part(ps->hash, "key", p->key_id, strlen(p->key_id));
    return 0;
}

static int st_key(parser *ps, lexer *lx)
{
    token t;
    if (lex_expect_word(lx, "file", "write: key file \"/run/secrets/NAME\"") < 0 ||
        expect_string(lx, &t, "the key file's name") < 0)
        return -1;
    if (ps->p->key)
        return lex_error_at(lx, &t, NULL, "a second key");
    char path[PATH_MAX];
    pol_resolve_path(lx->file, t.text, path, sizeof path);
    ps->key_line = t.line;
    return load_key(ps, lx, &t, path);
}

static int st_gate(parser *ps, lexer *lx, const token *kw)
{
    gate *g = add_gate(ps, lx, kw);
    if (!g)
        return -1;
    g->verdict = is_word(kw, "reject") ? POL_REJECT : POL_QUARANTINE;
    token t;
    lex_next(lx, &t);
    if (!is_word(&t, "if") && !is_word(&t, "unless"))
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                        "write: reject unless Modality in (CT, MR)",
                        "expected 'if' or 'unless', found '%s'", shown(&t));
    g->unless = is_word(&t, "unless");
    if (parse_condition(lx, &g->condition) < 0)
        return -1;
    if (is_word(lex_peek(lx), "unless")) {
        lex_next(lx, &t);
        if (lex_expect_word(lx, "redacted", "write: quarantine if "
                                        "BurnedInAnnotation == YES unless "
                                        "redacted") < 0)
            return -1;
        g->unless_redacted = true;
        g->redacted_column = t.column;
    }
    if (is_word(lex_peek(lx), "because")) {
        lex_next(lx, &t);
        if (expect_string(lx, &t, "the reason") < 0)
            return -1;
        if (!(g->because = policy_keep_string(ps->p, t.text)))
            return lex_error_at(lx, &t, NULL, "out of memory");
    }
    return 0;
}

/* keep|remove|empty|remap|hash|shift REF */
static int st_simple_rule(parser *ps, lexer *lx, const token *kw,
                          pol_action_kind kind)
{
    token t;
    lex_next(lx, &t);
    pol_rule *r = add_rule(ps, lx, kw);
    if (!r || parse_tagref(lx, &t, &r->ref) < 0)
        return -1;
    r->kind = kind;
    return 0;
}

static int parse_missing(parser *ps, lexer *lx, pol_rule *r)
{
    token t;
    if (lex_expect_word(lx, "else", "say what a key missing from the table "
                                "does: else reject|quarantine|keep|default "
                                "\"TEXT\"") < 0)
        return -1;
    lex_next(lx, &t);
    if (is_word(&t, "reject")) {
        r->missing = POL_MISSING_REJECT;
    } else if (is_word(&t, "quarantine")) {
        r->missing = POL_MISSING_QUARANTINE;
    } else if (is_word(&t, "keep")) {
        r->missing = POL_MISSING_KEEP;
        pol_diags_add(lx->diags, true, lx->file, t.line, t.column,
                 "else quarantine holds them for review instead",
                 "values missing from the table pass through unchanged");
    } else if (is_word(&t, "default")) {
        r->missing = POL_MISSING_DEFAULT;
        if (expect_string(lx, &t, "the default value") < 0)
            return -1;
        if (!(r->fallback = policy_keep_string(ps->p, t.text)))
            return lex_error_at(lx, &t, NULL, "out of memory");
    } else {
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column, NULL,
                        "expected reject, quarantine, keep or default, "
                        "found '%s'", shown(&t));
    }
    return 0;
}

/* A column name: a word or a string. */
static int column_name(lexer *lx, token *t)
{
    lex_next(lx, t);
    if ((t->kind == TOK_WORD || t->kind == TOK_STRING) && t->text[0])
        return 0;
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column,
                    "the column's name in the header row",
                    "expected a column name, found '%s'", shown(t));
}

static int parse_lookup(parser *ps, lexer *lx, pol_rule *r)
{
    token file, key, value;
    bool has_key = false;
    if (expect_string(lx, &file, "the table's file name") < 0)
        return -1;
    if (is_word(lex_peek(lx), "key")) {
        lex_next(lx, &key);
        if (column_name(lx, &key) < 0)
            return -1;
        has_key = true;
    }
    if (lex_expect_word(lx, "column", "write: lookup \"FILE.csv\" column NAME") <
            0 ||
        column_name(lx, &value) < 0)
        return -1;
    char path[PATH_MAX], error[512];
    pol_resolve_path(lx->file, file.text, path, sizeof path);
    pol_table *table = table_load(path, has_key ? key.text : NULL,
                                  value.text, ps->hash, error, sizeof error);
    if (!table) /* "line 3" of the table, not of the policy */
        return pol_diags_add(lx->diags, false, lx->file, file.line,
                             file.column, NULL, "%s: %s", file.text, error);
    pol_policy *p = ps->p;
    pol_table **bigger =
        realloc(p->tables, (p->table_count + 1) * sizeof *bigger);
    if (!bigger) {
        table_free(table);
        return lex_error_at(lx, &file, NULL, "out of memory");
    }
    p->tables = bigger;
    p->tables[p->table_count++] = table;
    r->kind = POL_LOOKUP;
    r->table = table;
    return parse_missing(ps, lx, r);
}

static int st_replace(parser *ps, lexer *lx, const token *kw)
{
    token t;
    lex_next(lx, &t);
    pol_rule *r = add_rule(ps, lx, kw);
    if (!r || parse_tagref(lx, &t, &r->ref) < 0)
        return -1;
    if (lex_expect_word(lx, "with", "write: replace PatientName with \"ANON\"") <
        0)
        return -1;
    lex_next(lx, &t);
    if (t.kind == TOK_STRING) {
        char error[160];
        if (pol_template_check(t.text, error, sizeof error) < 0)
            return lex_error_at(lx, &t, "{Keyword} is the new value, "
                                    "{original:Keyword} the value as "
                                    "received", error);
        r->kind = POL_REPLACE;
        if (!(r->text = policy_keep_string(ps->p, t.text)))
            return lex_error_at(lx, &t, NULL, "out of memory");
        return 0;
    }
    if (is_word(&t, "hash")) {
        r->kind = POL_HASH;
        return 0;
    }
    if (is_word(&t, "lookup"))
        return parse_lookup(ps, lx, r);
    return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                    "with \"TEXT\", with hash, or with lookup \"FILE.csv\" "
                    "column NAME else ...",
                    "expected a value, found '%s'", shown(&t));
}

static int parse_int(lexer *lx, int *out)
{
    token t;
    lex_next(lx, &t);
    char *end;
    errno = 0;
    long v = strtol(t.text, &end, 10);
    if (t.kind != TOK_NUMBER || *end || errno || v < 0 || v > SHIFT_MAX_DAYS)
        return pol_diags_add(lx->diags, false, lx->file, t.line, t.column, NULL,
                        "expected a number of days from 0 to %d, found '%s'",
                        SHIFT_MAX_DAYS, shown(&t));
    *out = (int)v;
    return 0;
}

static int expect_punct(lexer *lx, const char *p)
{
    token t;
    lex_next(lx, &t);
    if (t.kind == TOK_PUNCT && strcmp(t.text, p) == 0)
        return 0;
    return pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                    "write: shift dates by hmac-days(PatientID, 1..365) back",
                    "expected '%s', found '%s'", p, shown(&t));
}

/* shift dates by hmac-days(REF, MIN..MAX) [back|forward], or shift REF. */
static int st_shift(parser *ps, lexer *lx, const token *kw)
{
    if (!is_word(lex_peek(lx), "dates"))
        return st_simple_rule(ps, lx, kw, POL_SHIFT_DATE);
    token t;
    pol_policy *p = ps->p;
    lex_next(lx, &t);
    if (p->has_shift)
        return lex_error_at(lx, kw, NULL, "a second 'shift dates' line");
    if (lex_expect_word(lx, "by", NULL) < 0 ||
        lex_expect_word(lx, "hmac-days", "the offset comes from the key and "
                                     "the patient: hmac-days(PatientID, "
                                     "1..365)") < 0 ||
        expect_punct(lx, "(") < 0)
        return -1;
    lex_next(lx, &t);
    if (parse_tagref(lx, &t, &p->shift_ref) < 0 || expect_punct(lx, ",") < 0 ||
        parse_int(lx, &p->shift_min) < 0 || expect_punct(lx, "..") < 0 ||
        parse_int(lx, &p->shift_max) < 0 || expect_punct(lx, ")") < 0)
        return -1;
    if (p->shift_min > p->shift_max)
        return lex_error_at(lx, kw, "write the smaller number first",
                        "the range of days is empty");
    p->shift_back = true;
    if (is_word(lex_peek(lx), "back") || is_word(lex_peek(lx), "forward")) {
        lex_next(lx, &t);
        p->shift_back = is_word(&t, "back");
    }
    p->has_shift = true;
    ps->shift_line = kw->line;
    ps->shift_column = kw->column;
    ps->shift_file = lx->file;
    return 0;
}

static int st_include(parser *ps, lexer *lx, const token *kw)
{
    token t;
    if (expect_string(lx, &t, "the file's name") < 0)
        return -1;
    if (end_of_statement(lx) < 0)
        return 0; /* reported, and the line is skipped */
    char path[PATH_MAX];
    pol_resolve_path(lx->file, t.text, path, sizeof path);
    (void)kw;
    parse_file(ps, path, &t, lx); /* its errors are reported */
    return 0;
}

/* One statement, starting with kw. */
static int statement(parser *ps, lexer *lx, const token *kw)
{
    static const struct {
        const char *word;
        pol_action_kind kind;
    } simple[] = {
        {"keep", POL_KEEP},   {"remove", POL_REMOVE},
        {"empty", POL_EMPTY}, {"remap", POL_REMAP_UID},
        {"hash", POL_HASH},
    };
    if (is_word(kw, "policy"))
        return st_policy(ps, lx, kw);
    if (is_word(kw, "include"))
        return st_include(ps, lx, kw);
    if (!ps->opened || ps->closed)
        return lex_error_at(lx, kw, "a policy file is: policy \"NAME\" version "
                                "N ... end",
                        ps->closed ? "statement after 'end'"
                                   : "statement before 'policy'");
    if (is_word(kw, "end")) {
        if (ps->depth > 1)
            return lex_error_at(lx, kw, "only the main file closes the policy",
                            "'end' in an included file");
        ps->closed = true;
        return 0;
    }
    if (is_word(kw, "profile"))
        return st_profile(ps, lx);
    if (is_word(kw, "option"))
        return st_option(ps, lx);
    if (is_word(kw, "mode"))
        return st_mode(ps, lx);
    if (is_word(kw, "key"))
        return st_key(ps, lx);
    if (is_word(kw, "reject") || is_word(kw, "quarantine"))
        return st_gate(ps, lx, kw);
    if (is_word(kw, "replace"))
        return st_replace(ps, lx, kw);
    if (is_word(kw, "shift"))
        return st_shift(ps, lx, kw);
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++)
        if (is_word(kw, simple[i].word))
            return st_simple_rule(ps, lx, kw, simple[i].kind);
    if (pixels_is_statement(kw))
        return pixels_statement(ps->p, lx, kw);
    return pol_diags_add(lx->diags, false, lx->file, kw->line, kw->column,
                    "statements: profile, option, mode, key, reject, "
                    "quarantine, keep, remove, empty, replace, remap, hash, "
                    "shift, compress, keep-syntax, redact, on, verify, "
                    "allow, include, end",
                    "unknown statement '%s'", shown(kw));
}

static void parse_statements(parser *ps, lexer *lx)
{
    for (;;) {
        token kw;
        lex_next(lx, &kw);
        if (kw.kind == TOK_END)
            return;
        if (kw.kind == TOK_NEWLINE)
            continue;
        if (kw.kind != TOK_WORD) {
            pol_diags_add(lx->diags, false, lx->file, kw.line, kw.column, NULL,
                     "a statement starts with a word, not '%s'", kw.text);
            skip_line(lx);
            continue;
        }
        bool include = is_word(&kw, "include");
        if (statement(ps, lx, &kw) < 0) {
            /* Resume at the next line, unless the error was its end. */
            if (lx->last != TOK_NEWLINE && lx->last != TOK_END)
                skip_line(lx);
            continue;
        }
        if (!include)
            end_of_statement(lx);
    }
}

/* Reads and parses one file; from/from_lx name the include line. */
static int parse_file(parser *ps, const char *path, const token *from,
                      lexer *from_lx)
{
    char error[512];
    for (int i = 0; i < ps->depth; i++)
        if (strcmp(ps->stack[i], path) == 0)
            return lex_error_at(from_lx, from, NULL, "the file includes itself");
    if (ps->depth == MAX_INCLUDE_DEPTH)
        return pol_diags_add(from_lx->diags, false, from_lx->file, from->line,
                        from->column, NULL, "includes nested more than %d "
                        "deep", MAX_INCLUDE_DEPTH);
    /* A file is read again at each include naming it, and "./x" or "x"
     * are different names to the check above: without this bound a file
     * including itself a few times as "./x" was read exponentially often
     * (k lines, k^8 readings) before the depth check stopped it. */
    if (ps->p->file_count == MAX_FILES)
        return pol_diags_add(from_lx->diags, false, from_lx->file, from->line,
                        from->column, "include each file once",
                        "more than %d files included", MAX_FILES);
    size_t len;
    char *src = policy_read_file(path, MAX_POLICY_FILE, &len, error, sizeof error);
    if (!src) {
        if (from_lx)
            return lex_error_at(from_lx, from, NULL, error);
        return pol_diags_add(ps->diags, false, path, 0, 0, NULL, "%s", error);
    }
    const char *name = file_name_kept(ps->p, path);
    if (!name) {
        free(src);
        return pol_diags_add(ps->diags, false, path, 0, 0, NULL, "out of memory");
    }
    /* The hash covers every file's bytes, in reading order. */
    policy_hash_part(ps->hash, "file", src, len);
    lexer lx;
    lex_init(&lx, name, src, len, ps->lookup, ps->lookup_ctx, ps->diags,
             ps->hash);
    ps->stack[ps->depth++] = name;
    if (strlen(src) != len)
        pol_diags_add(ps->diags, false, name, 0, 0, NULL,
                 "the file holds a NUL byte: not a text file");
    else
        parse_statements(ps, &lx);
    ps->depth--;
    free(src);
    return 0;
}

/* ---- whole-policy checks --------------------------------------------------- */

static bool has_rule(const pol_policy *p, pol_action_kind kind)
{
    for (size_t i = 0; i < p->rule_count; i++)
        if (p->rules[i].kind == kind)
            return true;
    return false;
}

static void check_policy(parser *ps)
{
    pol_policy *p = ps->p;
    pol_diags *d = ps->diags;
    const char *file = ps->main_file;
    unsigned line = ps->policy_line, column = ps->policy_column;
    if (!ps->opened) {
        pol_diags_add(d, false, file, 0, 0, "begin with: policy \"NAME\" version 1",
                 "no 'policy' line");
        return;
    }
    if (!ps->closed)
        pol_diags_add(d, false, file, 0, 0, "close the policy with a line 'end'",
                 "the policy has no 'end'");
    if (!p->have_profile)
        pol_diags_add(d, false, file, line, column,
                 "add the line: profile basic", "the policy names no profile");
    unsigned dates = POL_OPT_RETAIN_LONG_FULL_DATES |
                     POL_OPT_RETAIN_LONG_MODIFIED_DATES;
    if ((p->options & dates) == dates)
        pol_diags_add(d, false, file, line, column, "choose one of the two",
                 "retain-longitudinal-full-dates and "
                 "retain-longitudinal-modified-dates exclude each other");
    if ((p->options & POL_OPT_RETAIN_LONG_MODIFIED_DATES) && !p->has_shift)
        pol_diags_add(d, false, file, line, column,
                 "add: shift dates by hmac-days(PatientID, 1..365) back",
                 "retain-longitudinal-modified-dates needs a 'shift dates' "
                 "line");
    if (p->has_shift && !(p->options & POL_OPT_RETAIN_LONG_MODIFIED_DATES) &&
        !has_rule(p, POL_SHIFT_DATE))
        pol_diags_add(d, true, ps->shift_file, ps->shift_line,
                      ps->shift_column,
                 "add option retain-longitudinal-modified-dates, or shift "
                 "lines for the attributes to shift",
                 "'shift dates' has no effect: the basic profile removes "
                 "the dates");
    if (has_rule(p, POL_SHIFT_DATE) && !p->has_shift)
        pol_diags_add(d, false, file, line, column,
                 "add: shift dates by hmac-days(PatientID, 1..365) back",
                 "a 'shift' line needs the 'shift dates by' line that sets "
                 "the offset");
    for (size_t i = 0; i < p->gate_count; i++)
        if (p->gates[i].unless_redacted && p->redact_count == 0)
            pol_diags_add(d, true, p->gates[i].file, p->gates[i].line,
                          p->gates[i].redacted_column,
                          "add the redact rectangle lines for the devices "
                          "whose burned-in text you know",
                          "'unless redacted' always fires: the policy has "
                          "no redact line");
    bool needs_key = !(p->options & POL_OPT_RETAIN_UIDS) ||
                     has_rule(p, POL_HASH) || has_rule(p, POL_REMAP_UID) ||
                     has_rule(p, POL_SHIFT_DATE) || p->has_shift;
    if (needs_key && !p->key)
        pol_diags_add(d, false, file, line, column,
                 "add: key file \"/run/secrets/NAME\" (openssl rand -hex 32)",
                 "the policy remaps UIDs, hashes or shifts dates and needs "
                 "a key for that");
}

pol_policy *policy_compile(pol_policy *p, const char *path,
                           pol_lookup_fn lookup, void *lookup_ctx,
                           pol_diags *diags)
{
    size_t errors_before = diags->errors;
    parser ps = {.p = p, .diags = diags, .lookup = lookup,
                 .lookup_ctx = lookup_ctx, .main_file = path};
    if (!(ps.hash = EVP_MD_CTX_new()) ||
        !EVP_DigestInit_ex(ps.hash, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ps.hash);
        pol_diags_add(diags, false, path, 0, 0, NULL, "cannot start SHA-256");
        return NULL;
    }
    parse_file(&ps, path, NULL, NULL);
    if (diags->errors == errors_before)
        check_policy(&ps);
    uint8_t digest[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ps.hash, digest, &len);
    EVP_MD_CTX_free(ps.hash);
    for (unsigned i = 0; i < len; i++)
        snprintf(p->hash + 2 * i, 3, "%02x", digest[i]);
    return diags->errors == errors_before ? p : NULL;
}
