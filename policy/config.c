/* config.c - configuration files in the policy language's family: the
 * same lexer (comments, continuations, strings, ${VAR}), one statement
 * per line, blocks closed by "end". This file knows only the syntax; the
 * program that reads the tree (gateway/config.c) gives it meaning and
 * reports what it does not accept at the node's file:line:column. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CONFIG_FILE (1u << 20)
#define MAX_CONFIG_DEPTH 8
#define MAX_CONFIG_ARGS 32

static bool opens_block(const char *const *blocks, const char *word)
{
    for (size_t i = 0; blocks && blocks[i]; i++)
        if (strcmp(blocks[i], word) == 0)
            return true;
    return false;
}

static pol_conf_node *add_child(pol_conf_node *parent)
{
    if (parent->child_count == parent->child_capacity) {
        size_t more = parent->child_capacity ? parent->child_capacity * 2 : 8;
        pol_conf_node *bigger =
            realloc(parent->children, more * sizeof *bigger);
        if (!bigger)
            return NULL;
        parent->children = bigger;
        parent->child_capacity = more;
    }
    pol_conf_node *n = &parent->children[parent->child_count++];
    memset(n, 0, sizeof *n);
    return n;
}

static void free_node(pol_conf_node *n)
{
    for (size_t i = 0; i < n->arg_count; i++)
        free(n->args[i].text);
    free(n->args);
    for (size_t i = 0; i < n->child_count; i++)
        free_node(&n->children[i]);
    free(n->children);
    free(n->name);
}

void pol_conf_free(pol_conf_node *root)
{
    if (!root)
        return;
    free_node(root);
    free((char *)root->file); /* the root allocated it: see pol_conf_load */
    free(root);
}

static bool add_arg(pol_conf_node *n, const token *t)
{
    pol_conf_value *bigger =
        realloc(n->args, (n->arg_count + 1) * sizeof *bigger);
    if (!bigger)
        return false;
    n->args = bigger;
    pol_conf_value *v = &n->args[n->arg_count];
    v->quoted = t->kind == TOK_STRING;
    v->line = t->line;
    v->column = t->column;
    if (!(v->text = strdup(t->text)))
        return false;
    n->arg_count++;
    return true;
}

typedef struct conf_parser {
    lexer lx;
    const char *const *blocks;
    const char *file; /* owned by the root */
} conf_parser;

static void skip_line(lexer *lx)
{
    token t;
    while (lx->last != TOK_NEWLINE && lx->last != TOK_END)
        lex_next(lx, &t);
}

/* Reads statements into parent until "end" (depth > 0) or the end of the
 * file. Returns false at the end of the file. */
static bool parse_block(conf_parser *cp, pol_conf_node *parent, int depth)
{
    lexer *lx = &cp->lx;
    for (;;) {
        token kw;
        lex_next(lx, &kw);
        if (kw.kind == TOK_END)
            return false;
        if (kw.kind == TOK_NEWLINE)
            continue;
        if (kw.kind != TOK_WORD) {
            pol_diags_add(lx->diags, false, lx->file, kw.line, kw.column,
                          NULL, "a statement starts with a word, not '%s'",
                          kw.text);
            skip_line(lx);
            continue;
        }
        if (strcmp(kw.text, "end") == 0 && depth > 0) {
            token t;
            lex_next(lx, &t);
            if (t.kind != TOK_NEWLINE && t.kind != TOK_END) {
                pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                              "'end' stands alone on its line",
                              "unexpected '%s' after 'end'", t.text);
                skip_line(lx);
            }
            return true;
        }
        pol_conf_node *n = add_child(parent);
        if (!n || !(n->name = strdup(kw.text))) {
            pol_diags_add(lx->diags, false, lx->file, kw.line, kw.column,
                          NULL, "out of memory");
            return false;
        }
        n->file = cp->file;
        n->line = kw.line;
        n->column = kw.column;
        token t;
        for (lex_next(lx, &t); t.kind != TOK_NEWLINE && t.kind != TOK_END;
             lex_next(lx, &t)) {
            if (n->arg_count == MAX_CONFIG_ARGS) {
                pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                              "one setting per line", "more than %d values",
                              MAX_CONFIG_ARGS);
                skip_line(lx);
                break;
            }
            if (!add_arg(n, &t)) {
                pol_diags_add(lx->diags, false, lx->file, t.line, t.column,
                              NULL, "out of memory");
                return false;
            }
        }
        /* Blocks open at the top level only: inside one, a block's word
         * ("tls" in an archive block) is a setting. */
        if (depth > 0 || !opens_block(cp->blocks, n->name))
            continue;
        n->is_block = true;
        if (depth + 1 >= MAX_CONFIG_DEPTH) {
            pol_diags_add(lx->diags, false, lx->file, n->line, n->column,
                          NULL, "blocks nested more than %d deep",
                          MAX_CONFIG_DEPTH);
            return false;
        }
        if (!parse_block(cp, n, depth + 1)) {
            pol_diags_add(lx->diags, false, lx->file, n->line, n->column,
                          "close it with a line 'end'",
                          "'%s' has no 'end'", n->name);
            return false;
        }
    }
}

pol_conf_node *pol_conf_load(const char *path, const char *const *blocks,
                             pol_lookup_fn lookup, void *lookup_ctx,
                             pol_diags *diags)
{
    size_t errors_before = diags->errors;
    char error[512];
    size_t len;
    char *src = policy_read_file(path, MAX_CONFIG_FILE, &len, error,
                                 sizeof error);
    if (!src) {
        pol_diags_add(diags, false, path, 0, 0, NULL, "%s", error);
        return NULL;
    }
    pol_conf_node *root = calloc(1, sizeof *root);
    char *file = strdup(path);
    if (!root || !file) {
        free(root);
        free(file);
        free(src);
        pol_diags_add(diags, false, path, 0, 0, NULL, "out of memory");
        return NULL;
    }
    root->file = file;
    root->is_block = true;
    conf_parser cp = {.blocks = blocks, .file = root->file};
    lex_init(&cp.lx, root->file, src, len, lookup, lookup_ctx, diags, NULL);
    if (strlen(src) != len)
        pol_diags_add(diags, false, path, 0, 0, NULL,
                      "the file holds a NUL byte: not a text file");
    else
        parse_block(&cp, root, 0);
    free(src);
    if (diags->errors != errors_before) {
        pol_conf_free(root);
        return NULL;
    }
    return root;
}
