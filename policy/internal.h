/*
 * internal.h - private to policy/: the lexer, the condition tree and the
 * compiled policy's shape.
 */
#ifndef SIREN_POLICY_INTERNAL_H
#define SIREN_POLICY_INTERNAL_H

#include "policy.h"

#include <openssl/evp.h>
#include <regex.h>
#include <stdatomic.h>
#include <string.h>

/* ---- lexer -------------------------------------------------------------------- */

typedef enum tok_kind {
    TOK_END,     /* end of the file */
    TOK_NEWLINE, /* end of a statement */
    TOK_WORD,    /* keyword, attribute keyword or bare value: CT, retain-uids */
    TOK_NUMBER,
    TOK_STRING,  /* "..." unescaped, variables substituted */
    TOK_TAG,     /* (0010,0010), (60xx,3000), (0019,"CREATOR",10) as text */
    TOK_OP,      /* == != < <= > >= */
    TOK_PUNCT,   /* ( ) , / .. */
} tok_kind;

#define TOKEN_TEXT 1024

typedef struct token {
    tok_kind kind;
    char text[TOKEN_TEXT];
    unsigned line, column;
} token;

typedef struct lexer {
    const char *file;     /* for diagnostics */
    const char *src;
    size_t len, pos;
    unsigned line, column;
    pol_lookup_fn lookup;
    void *lookup_ctx;
    pol_diags *diags;
    EVP_MD_CTX *hash;     /* variables' values go into the policy hash */
    token peeked;
    bool has_peeked;
    tok_kind last;        /* kind of the last token lex_next returned */
} lexer;

void lex_init(lexer *lx, const char *file, const char *src, size_t len,
              pol_lookup_fn lookup, void *ctx, pol_diags *diags,
              EVP_MD_CTX *hash);
/* The next token (TOK_END forever at the end). Lexical errors are
 * reported to diags and the offending characters skipped. */
void lex_next(lexer *lx, token *t);
const token *lex_peek(lexer *lx);

static inline bool is_word(const token *t, const char *word)
{
    return t->kind == TOK_WORD && strcmp(t->text, word) == 0;
}

/* A token as a message shows it. */
static inline const char *shown(const token *t)
{
    return t->kind == TOK_NEWLINE ? "end of line"
           : t->kind == TOK_END   ? "end of file"
                                  : t->text;
}

/* Diagnostics at a token (the statements' parsers share them): an error
 * with the message as it is; "expected 'WORD', found ..." unless the next
 * token is word. Both return -1 on an error. */
int lex_error_at(lexer *lx, const token *t, const char *hint,
                 const char *message);
int lex_expect_word(lexer *lx, const char *word, const char *hint);

/* ---- files (io.c) ---------------------------------------------------------- */

/* The whole file, NUL-terminated, if it is a regular file of at most max
 * bytes; NULL with the reason in error. Owned by the caller (free). */
char *policy_read_file(const char *path, size_t max, size_t *len,
                       char *error, size_t size);

/* Adds one part of what a policy is compiled from to its hash: a label,
 * the length, the bytes. The framing keeps parts apart ("ab"+"c" is not
 * "a"+"bc"). File names are left out on purpose: the same files read
 * from another folder are the same policy. */
void policy_hash_part(EVP_MD_CTX *hash, const char *label, const void *data,
                      size_t len);

/* ---- tag references ------------------------------------------------------------- */

/* Parses a tag reference (keyword, (gggg,eeee) with x masks, private
 * (gggg,"creator",ee), and paths joined by '/') from the token stream.
 * The first token is t. */
int parse_tagref(lexer *lx, const token *t, pol_tagref *out);

/* ---- conditions ---------------------------------------------------------------- */

typedef enum cond_kind {
    COND_AND, COND_OR, COND_NOT,
    COND_COMPARE,  /* ref op value */
    COND_IN,       /* ref in (v, ...) */
    COND_EXISTS,
    COND_CONTAINS,
    COND_MATCHES,  /* POSIX extended regular expression */
} cond_kind;

typedef enum cond_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cond_op;

typedef struct cond {
    cond_kind kind;
    struct cond *left, *right; /* AND, OR; NOT uses left */
    pol_tagref ref;
    cond_op op;
    char **values;
    size_t value_count;
    regex_t regex;
    bool has_regex;
} cond;

/* cond := or-expression of and-expressions of [not] primaries. */
int parse_condition(lexer *lx, cond **out);
bool cond_eval(const cond *c, const dcm_dataset *ds);
void cond_free(cond *c);

/* ---- the policy ------------------------------------------------------------------- */

typedef struct gate {
    pol_verdict verdict; /* POL_REJECT or POL_QUARANTINE */
    bool unless;         /* fires when the condition is false */
    cond *condition;
    char *because;       /* reason text, or NULL */
    bool unless_redacted; /* held back when a redact line applies */
    const char *file;
    unsigned line;
    unsigned redacted_column; /* of "unless redacted", for its warning */
} gate;

struct pol_table {
    char *path;
    size_t count;
    char **keys;   /* sorted, for binary search */
    char **values;
};

/* Loads column value_column of a CSV file, keyed by key_column (NULL:
 * the first column). The file's bytes go into hash. */
pol_table *table_load(const char *path, const char *key_column,
                      const char *value_column, EVP_MD_CTX *hash,
                      char *error, size_t error_size);
void table_free(pol_table *t);

/* ---- pixels (pixels.c) ----------------------------------------------------- */

/* A compress or keep-syntax line: target.codec POL_CODEC_NONE for
 * keep-syntax; target.file and target.line say where it is. */
typedef struct compress_line {
    pol_compression target;
    pol_when when;
    cond *condition; /* NULL when POL_ALWAYS */
} compress_line;

typedef struct redact_line {
    pol_rect rect;
    pol_when when;
    cond *condition;
} redact_line;

/* Whether kw starts a statement of the pixel stage: compress,
 * keep-syntax, redact, verify, allow, on. */
bool pixels_is_statement(const token *kw);
/* Parses that statement into p; -1 after reporting an error. */
int pixels_statement(pol_policy *p, lexer *lx, const token *kw);
void pixels_free(pol_policy *p);

struct pol_policy {
    atomic_int refs;
    char name[128];
    unsigned version;
    unsigned options;
    bool keep_list;
    bool have_profile;
    uint8_t *key;
    size_t key_len;
    char key_id[32];
    char hash[65];
    pol_rule *rules;
    size_t rule_count, rule_capacity;
    gate *gates;
    size_t gate_count, gate_capacity;
    pol_table **tables;
    size_t table_count;
    char **files;     /* names of the files, owned (rules point to them) */
    size_t file_count;
    char **strings;   /* texts rules and gates point to, owned */
    size_t string_count;
    bool has_shift;
    pol_tagref shift_ref;
    int shift_min, shift_max;
    bool shift_back;
    compress_line *compress;   /* in file order: the first that applies wins */
    size_t compress_count, compress_capacity;
    redact_line *redact;       /* in file order: every one that applies */
    size_t redact_count, redact_capacity;
    bool allow_lossy_recompression;
    bool verify_off;           /* "verify lossless off" */
    bool keep_original_on_failure;
    unsigned verify_line, failure_line; /* where they were set, or 0 */
};

/* A copy of text owned by p (freed with it); NULL on allocation failure. */
char *policy_keep_string(pol_policy *p, const char *text);

/* Compiles the file at path into p (parse.c). Returns p, or NULL when
 * errors were reported to diags. */
pol_policy *policy_compile(pol_policy *p, const char *path,
                           pol_lookup_fn lookup, void *lookup_ctx,
                           pol_diags *diags);

#endif /* SIREN_POLICY_INTERNAL_H */
