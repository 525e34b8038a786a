/*
 * fuzz_parse.c — libFuzzer target for the scanner and parser.
 *
 * Any byte string goes through flow_parse(); diagnostics go to /dev/null
 * (opened once). Besides "no crash, no leak, no UB", it checks what the
 * parser promises: a tree is returned exactly when no error was reported,
 * every node has a sane span, and no tree is deeper than the nesting limit
 * allows (so later passes may recurse safely).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ast.h"
#include "diag.h"
#include "parser.h"

/* The deepest tree possible: PROGRAM > FLOW > LET > expression of at most
 * PARSE_MAX_DEPTH levels, plus slack for ARG/OPTION wrappers. */
#define FUZZ_MAX_TREE (PARSE_MAX_DEPTH + 16)

static FILE *devnull; /* where diagnostics go: opened once, kept for the process */

static void check_tree(const flow_node *n, int depth) {
    if (!n) return;
    if (depth > FUZZ_MAX_TREE) {
        fprintf(stderr, "tree deeper than %d\n", FUZZ_MAX_TREE);
        abort();
    }
    if ((unsigned)n->kind >= AST__COUNT || n->span.line < 1 || n->span.col < 1 ||
        n->span.end_line < n->span.line ||
        (n->span.end_line == n->span.line && n->span.end_col < n->span.col - 1)) {
        fprintf(stderr, "bad node %s at %d:%d-%d:%d\n", ast_kind_name(n->kind), n->span.line,
                n->span.col, n->span.end_line, n->span.end_col);
        abort();
    }
    check_tree(n->a, depth + 1);
    check_tree(n->b, depth + 1);
    check_tree(n->c, depth + 1);
    for (int i = 0; i < n->list.len; i++)
        check_tree(n->list.items[i], depth + 1);
    for (int i = 0; i < n->list2.len; i++)
        check_tree(n->list2.items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    flow_diag d;
    diag_init(&d, "fuzz.flow", (const char *)data, size, devnull);
    ast_arena *ar = ast_arena_new();
    flow_node *prog = flow_parse(ar, &d, (const char *)data, size);
    if ((prog != NULL) != (d.errors == 0)) {
        fprintf(stderr, "tree returned with %d errors\n", d.errors);
        abort();
    }
    if (prog) {
        check_tree(prog, 0);
        ast_dump(prog, devnull);
    }
    ast_arena_free(ar);
    return 0;
}
