/* lex.c - tokens of the policy (and configuration) language. The language
 * is line-oriented: a statement ends at the end of its line, unless the
 * line ends with a backslash. '#' starts a comment. ${NAME} and
 * ${NAME:-default} take values from the environment: inside a string they
 * become part of it; outside, the value becomes one token of its own (a
 * number, a word or a string), so a variable can never change the
 * structure of a line. */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pol_diags_add(pol_diags *diags, bool warning, const char *file, unsigned line,
             unsigned column, const char *hint, const char *fmt, ...)
{
    if (diags->count == diags->capacity) {
        size_t capacity = diags->capacity ? diags->capacity * 2 : 16;
        pol_diag *bigger = realloc(diags->items, capacity * sizeof *bigger);
        if (!bigger) {
            diags->errors += !warning;
            return -1;
        }
        diags->items = bigger;
        diags->capacity = capacity;
    }
    pol_diag *d = &diags->items[diags->count++];
    memset(d, 0, sizeof *d);
    d->warning = warning;
    snprintf(d->file, sizeof d->file, "%s", file ? file : "");
    d->line = line;
    d->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    snprintf(d->hint, sizeof d->hint, "%s", hint ? hint : "");
    if (!warning)
        diags->errors++;
    return -1;
}

void policy_hash_part(EVP_MD_CTX *hash, const char *label, const void *data,
                      size_t len)
{
    uint64_t n = len;
    EVP_DigestUpdate(hash, label, strlen(label) + 1);
    EVP_DigestUpdate(hash, &n, sizeof n);
    EVP_DigestUpdate(hash, data, len);
}

void lex_init(lexer *lx, const char *file, const char *src, size_t len,
              pol_lookup_fn lookup, void *ctx, pol_diags *diags,
              EVP_MD_CTX *hash)
{
    memset(lx, 0, sizeof *lx);
    lx->file = file;
    lx->src = src;
    lx->len = len;
    lx->line = lx->column = 1;
    lx->lookup = lookup;
    lx->lookup_ctx = ctx;
    lx->diags = diags;
    lx->hash = hash;
}

static int at(const lexer *lx, size_t ahead)
{
    return lx->pos + ahead < lx->len ? (unsigned char)lx->src[lx->pos + ahead]
                                     : -1;
}

static void advance(lexer *lx)
{
    if (lx->pos >= lx->len)
        return;
    if (lx->src[lx->pos] == '\n') {
        lx->line++;
        lx->column = 1;
    } else {
        lx->column++;
    }
    lx->pos++;
}

static int error_at(lexer *lx, unsigned line, unsigned column,
                    const char *hint, const char *message)
{
    return pol_diags_add(lx->diags, false, lx->file, line, column, hint, "%s",
                    message);
}

/* Appends c to t's text; false when it is full. */
static bool put(token *t, size_t *n, char c)
{
    if (*n + 1 >= sizeof t->text)
        return false;
    t->text[(*n)++] = c;
    t->text[*n] = '\0';
    return true;
}

static bool is_name_char(int c)
{
    return c >= 0 && (isalnum(c) || c == '_');
}

/* ${NAME} or ${NAME:-default} at the current position: the value appended
 * to t's text. Returns false after reporting an error. */
static bool expand_variable(lexer *lx, token *t, size_t *n)
{
    unsigned line = lx->line, column = lx->column;
    advance(lx); /* $ */
    advance(lx); /* { */
    char name[128];
    size_t len = 0;
    while (is_name_char(at(lx, 0)) && len + 1 < sizeof name) {
        name[len++] = (char)at(lx, 0);
        advance(lx);
    }
    name[len] = '\0';
    char fallback[512];
    size_t flen = 0;
    bool has_default = false;
    if (at(lx, 0) == ':' && at(lx, 1) == '-') {
        has_default = true;
        advance(lx);
        advance(lx);
        while (at(lx, 0) >= 0 && at(lx, 0) != '}' && at(lx, 0) != '\n' &&
               flen + 1 < sizeof fallback) {
            fallback[flen++] = (char)at(lx, 0);
            advance(lx);
        }
    }
    fallback[flen] = '\0';
    if (len == 0 || at(lx, 0) != '}') {
        error_at(lx, line, column, "write ${NAME} or ${NAME:-default}",
                 "malformed variable reference");
        return false;
    }
    advance(lx); /* } */
    const char *value = lx->lookup ? lx->lookup(lx->lookup_ctx, name) : NULL;
    if (!value && !has_default) {
        pol_diags_add(lx->diags, false, lx->file, line, column,
                 "set it in the environment, or give a default: "
                 "${NAME:-value}", "variable ${%s} is not set", name);
        return false;
    }
    if (!value)
        value = fallback;
    if (lx->hash) {
        policy_hash_part(lx->hash, "variable", name, strlen(name));
        policy_hash_part(lx->hash, "value", value, strlen(value));
    }
    for (const char *p = value; *p; p++)
        if (!put(t, n, *p)) {
            error_at(lx, line, column, NULL, "variable value too long");
            return false;
        }
    return true;
}

static void lex_string(lexer *lx, token *t)
{
    unsigned line = lx->line, column = lx->column;
    size_t n = 0;
    t->kind = TOK_STRING;
    advance(lx); /* opening quote */
    for (;;) {
        int c = at(lx, 0);
        if (c < 0 || c == '\n') {
            error_at(lx, line, column, "close it with \" on the same line",
                     "string not closed");
            return;
        }
        if (c == '"') {
            advance(lx);
            return;
        }
        if (c == '$' && at(lx, 1) == '{') {
            expand_variable(lx, t, &n);
            continue;
        }
        /* Only \" \\ and \$ are escapes. Any other backslash is itself:
         * DICOM values use it between values ("DERIVED\SECONDARY") and
         * regular expressions before a character ("^1\.2\.840"). */
        if (c == '\\' && (at(lx, 1) == '"' || at(lx, 1) == '\\' ||
                           at(lx, 1) == '$')) {
            advance(lx);
            c = at(lx, 0);
        }
        if (!put(t, &n, (char)c)) {
            error_at(lx, line, column, NULL, "string too long");
            return;
        }
        advance(lx);
    }
}

/* (gggg,eeee), (60xx,3000), (0019,"CREATOR",10): the text up to the
 * closing parenthesis, checked by the parser. */
static bool looks_like_tag(const lexer *lx)
{
    for (size_t i = 1; i <= 4; i++) {
        int c = at(lx, i);
        if (c < 0 || !(isxdigit(c) || c == 'x' || c == 'X'))
            return false;
    }
    return at(lx, 5) == ',';
}

static void lex_tag(lexer *lx, token *t)
{
    unsigned line = lx->line, column = lx->column;
    size_t n = 0;
    bool quoted = false;
    t->kind = TOK_TAG;
    while (at(lx, 0) >= 0 && at(lx, 0) != '\n') {
        int c = at(lx, 0);
        put(t, &n, (char)c);
        advance(lx);
        if (c == '"')
            quoted = !quoted;
        if (c == ')' && !quoted)
            return;
    }
    error_at(lx, line, column, "write (gggg,eeee) or (gggg,\"CREATOR\",ee)",
             "tag not closed with ')'");
}

static void lex_word(lexer *lx, token *t)
{
    size_t n = 0;
    t->kind = TOK_WORD;
    while (is_name_char(at(lx, 0)) || at(lx, 0) == '-' ||
           (at(lx, 0) == '.' && at(lx, 1) != '.')) {
        put(t, &n, (char)at(lx, 0));
        advance(lx);
    }
}

static void lex_number(lexer *lx, token *t)
{
    size_t n = 0;
    t->kind = TOK_NUMBER;
    if (at(lx, 0) == '-') {
        put(t, &n, '-');
        advance(lx);
    }
    /* Digits and single dots (1.5, UIDs); ".." is a range. */
    while (isdigit(at(lx, 0)) || (at(lx, 0) == '.' && at(lx, 1) != '.')) {
        put(t, &n, (char)at(lx, 0));
        advance(lx);
    }
    if (is_name_char(at(lx, 0))) /* 50xx, 3D: a word after all */
        t->kind = TOK_WORD;
    while (is_name_char(at(lx, 0)) || at(lx, 0) == '-') {
        put(t, &n, (char)at(lx, 0));
        advance(lx);
    }
}

/* ${NAME} outside a string: one token of its own. */
static void lex_variable_token(lexer *lx, token *t)
{
    size_t n = 0;
    t->text[0] = '\0';
    /* Not set (reported): an empty string, as inside quotes. Left as
     * TOK_END, it ended the file for the parser, which then reported
     * nothing of the lines after it. */
    t->kind = TOK_STRING;
    if (!expand_variable(lx, t, &n))
        return;
    bool digits = n > 0, word = n > 0 && (isalpha((unsigned char)t->text[0]) ||
                                          t->text[0] == '_');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->text[i];
        digits = digits && (isdigit(c) || (c == '.' && i > 0));
        word = word && (isalnum(c) || c == '_' || c == '-' || c == '.');
    }
    t->kind = digits ? TOK_NUMBER : word ? TOK_WORD : TOK_STRING;
}

static bool skip_blank(lexer *lx)
{
    for (;;) {
        int c = at(lx, 0);
        if (c == ' ' || c == '\t' || c == '\r') {
            advance(lx);
        } else if (c == '\\' && (at(lx, 1) == '\n' ||
                                 (at(lx, 1) == '\r' && at(lx, 2) == '\n'))) {
            while (at(lx, 0) != '\n')
                advance(lx);
            advance(lx); /* a continued line */
        } else if (c == '#') {
            while (at(lx, 0) >= 0 && at(lx, 0) != '\n')
                advance(lx);
        } else {
            return c >= 0;
        }
    }
}

static void lex_token(lexer *lx, token *t)
{
    memset(t, 0, offsetof(token, text) + 1);
    for (;;) {
        if (!skip_blank(lx)) {
            t->kind = TOK_END;
            t->line = lx->line;
            t->column = lx->column;
            return;
        }
        t->line = lx->line;
        t->column = lx->column;
        int c = at(lx, 0), next = at(lx, 1);
        if (c == '\n') {
            t->kind = TOK_NEWLINE;
            advance(lx);
        } else if (c == '"') {
            lex_string(lx, t);
        } else if (c == '$' && next == '{') {
            lex_variable_token(lx, t);
        } else if (c == '(' && looks_like_tag(lx)) {
            lex_tag(lx, t);
        } else if (isalpha(c) || c == '_') {
            lex_word(lx, t);
        } else if (isdigit(c) || (c == '-' && isdigit(next))) {
            lex_number(lx, t);
        } else if ((c == '=' || c == '!' || c == '<' || c == '>') &&
                   next == '=') {
            t->kind = TOK_OP;
            t->text[0] = (char)c;
            t->text[1] = '=';
            t->text[2] = '\0';
            advance(lx);
            advance(lx);
        } else if (c == '<' || c == '>') {
            t->kind = TOK_OP;
            t->text[0] = (char)c;
            t->text[1] = '\0';
            advance(lx);
        } else if (c == '.' && next == '.') {
            t->kind = TOK_PUNCT;
            strcpy(t->text, "..");
            advance(lx);
            advance(lx);
        } else if (strchr("(),/", c)) {
            t->kind = TOK_PUNCT;
            t->text[0] = (char)c;
            t->text[1] = '\0';
            advance(lx);
        } else {
            char message[64];
            snprintf(message, sizeof message, "unexpected character '%c'",
                     isprint(c) ? c : '?');
            error_at(lx, lx->line, lx->column, NULL, message);
            advance(lx);
            continue;
        }
        return;
    }
}

void lex_next(lexer *lx, token *t)
{
    if (lx->has_peeked) {
        *t = lx->peeked;
        lx->has_peeked = false;
    } else {
        lex_token(lx, t);
    }
    lx->last = t->kind;
}

const token *lex_peek(lexer *lx)
{
    if (!lx->has_peeked) {
        lex_token(lx, &lx->peeked);
        lx->has_peeked = true;
    }
    return &lx->peeked;
}

int lex_error_at(lexer *lx, const token *t, const char *hint,
                 const char *message)
{
    return pol_diags_add(lx->diags, false, lx->file, t->line, t->column, hint,
                         "%s", message);
}

int lex_expect_word(lexer *lx, const char *word, const char *hint)
{
    token t;
    lex_next(lx, &t);
    if (is_word(&t, word))
        return 0;
    return pol_diags_add(lx->diags, false, lx->file, t.line, t.column, hint,
                         "expected '%s', found '%s'", word, shown(&t));
}
