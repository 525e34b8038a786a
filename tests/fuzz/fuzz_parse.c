/*
 * fuzz_parse.c — libFuzzer target for the scanner and parser.
 *
 * Any byte string goes through fl_parse(); diagnostics go to /dev/null
 * (opened once). Besides "no crash, no leak, no UB", it checks what the
 * parser promises: a tree is returned exactly when no error was reported,
 * every node has a sane span, and no tree is deeper than the nesting limit
 * allows (so later passes may recurse safely).
 *
 * Round trip: an accepted tree (not too deep) is printed back as canonical
 * source — every compound expression in parentheses, string text re-escaped —
 * and that source must parse to the same tree (spans aside). This catches
 * escapes, numbers or fields that do not survive, and grammar ambiguities.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"
#include "parser.h"

/* The deepest tree possible: PROGRAM > FLOW > LET > expression of at most
 * PARSE_MAX_DEPTH levels, plus slack for ARG/OPTION wrappers. */
#define FUZZ_MAX_TREE (PARSE_MAX_DEPTH + 16)

static FILE *devnull; /* where diagnostics go: opened once, kept for the process */

static void check_tree(const fl_node *n, int depth) {
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

/* ---- the canonical printer ---- */

/* Trees deeper than this are not round-tripped: their parenthesised print
 * could pass the bracket limit. */
#define FUZZ_ROUND_TRIP_DEPTH 60

static void print_node(const fl_node *n, FILE *f);

static void print_list(const fl_nodes *l, const char *sep, FILE *f) {
    for (int i = 0; i < l->len; i++) {
        if (i) fputs(sep, f);
        print_node(l->items[i], f);
    }
}

static void print_text(const fl_node *part, FILE *f) {
    static const char special[] = "\"\\{}\n\t";
    static const char *const escaped[] = {"\\\"", "\\\\", "\\{", "\\}", "\\n", "\\t"};
    for (int64_t i = 0; i < part->ival; i++) {
        unsigned char c = (unsigned char)part->sval[i];
        const char *at = c ? strchr(special, c) : NULL;
        if (at)
            fputs(escaped[at - special], f);
        else if (c < 32 || c == 127)
            fprintf(f, "\\u{%x}", c);
        else
            fputc(c, f);
    }
}

static void print_after(const fl_node *n, FILE *f) {
    if (n->list.len) fputs(" after ", f), print_list(&n->list, ", ", f);
}

static void print_header(const char *kw, const fl_node *n, FILE *f) {
    fprintf(f, "%s %s(", kw, n->name);
    print_list(&n->list, ", ", f);
    fputc(')', f);
    if (n->a) fputs(" -> ", f), print_node(n->a, f);
}

static void print_node(const fl_node *n, FILE *f) {
    switch (n->kind) {
        case AST_PROGRAM:
            print_list(&n->list, "\n", f);
            break;
        case AST_LIBRARY: {
            fl_node part = {.sval = n->sval, .ival = (int64_t)strlen(n->sval)};
            fprintf(f, "library %s = \"", n->name);
            print_text(&part, f);
            fputc('"', f);
            break;
        }
        case AST_TASK:
            print_header("task", n, f);
            fputs(" = ", f);
            print_node(n->b, f);
            if (n->list2.len) fputs(" with {", f), print_list(&n->list2, ", ", f), fputc('}', f);
            break;
        case AST_BIND_SYMBOL:
            fprintf(f, "%s.%s", n->name, n->sval);
            break;
        case AST_BIND_SH:
            fputs("sh ", f), print_node(n->a, f);
            break;
        case AST_TYPEDECL:
            fprintf(f, "type %s = ", n->name), print_node(n->a, f);
            break;
        case AST_FLOW:
        case AST_GROUP:
            print_header(n->kind == AST_FLOW ? "flow" : "group", n, f);
            if (n->b) fputs(" schedule ", f), print_node(n->b, f);
            if (n->kind == AST_FLOW && n->c) /* the clauses start, tz, watch */
                for (int i = 0; i < n->c->list.len; i++) {
                    const fl_node *o = n->c->list.items[i];
                    fprintf(f, " %s ", o->name), print_node(o->a, f);
                }
            fputs(" {\n", f);
            print_list(&n->list2, "\n", f);
            fputs("\n}", f);
            break;
        case AST_PARAM:
            fprintf(f, "%s: ", n->name), print_node(n->a, f);
            if (n->b) fputs(" = ", f), print_node(n->b, f);
            break;
        case AST_OPTION:
        case AST_FIELDDECL:
            fprintf(f, "%s: ", n->name), print_node(n->a, f);
            break;
        case AST_IMPORT: /* import "path" | import NAME, then [as NAME] */
            fputs("import ", f);
            if (n->b) {
                fputs(n->b->name, f);
            } else {
                fl_node part = {.sval = n->sval, .ival = (int64_t)strlen(n->sval)};
                fputc('"', f), print_text(&part, f), fputc('"', f);
            }
            if (n->a) fprintf(f, " as %s", n->a->name);
            break;
        case AST_TNAME:
            if (n->sval) fprintf(f, "%s.", n->sval); /* m.Name */
            fputs(n->name, f);
            break;
        case AST_NAME:
        case AST_LPARAM:
            fputs(n->name, f);
            break;
        case AST_TLIST:
            fputc('[', f), print_node(n->a, f), fputc(']', f);
            break;
        case AST_TRECORD:
        case AST_RECORD:
            fputc('{', f), print_list(&n->list, ", ", f), fputc('}', f);
            break;
        case AST_LET:
            fprintf(f, "let %s", n->name);
            if (n->b) fputs(": ", f), print_node(n->b, f); /* a typed binding */
            fputs(" = ", f), print_node(n->a, f), print_after(n, f);
            break;
        case AST_RETURN:
            fputs("return ", f), print_node(n->a, f);
            break;
        case AST_EXPRSTMT:
            print_node(n->a, f), print_after(n, f);
            break;
        case AST_INT:
            fprintf(f, "%lld", (long long)n->ival);
            break;
        case AST_FLOAT: {
            char buf[64];
            snprintf(buf, sizeof buf, "%.17g", n->fval);
            fputs(buf, f);
            if (!strpbrk(buf, ".e")) fputs(".0", f);
            break;
        }
        case AST_BOOL:
            fputs(n->ival ? "true" : "false", f);
            break;
        case AST_STR:
            fputc('"', f);
            for (int i = 0; i < n->list.len; i++) {
                const fl_node *part = n->list.items[i];
                if (part->kind == AST_STRPART)
                    print_text(part, f);
                else
                    fputc('{', f), print_node(part, f), fputc('}', f);
            }
            fputc('"', f);
            break;
        case AST_STRPART:
            print_text(n, f);
            break;
        case AST_DURATION:
        case AST_DATE:
        case AST_TIME:
            fputs(n->sval, f);
            break;
        case AST_LIST:
            fputc('[', f), print_list(&n->list, ", ", f), fputc(']', f);
            break;
        case AST_FIELDINIT:
        case AST_ARG:
            if (n->name) fprintf(f, "%s = ", n->name);
            print_node(n->a, f);
            break;
        case AST_CALL:
            fputc('(', f), print_node(n->a, f), fputs(")(", f);
            print_list(&n->list, ", ", f);
            fputc(')', f);
            break;
        case AST_MEMBER:
            fputc('(', f), print_node(n->a, f), fprintf(f, ").%s", n->name);
            break;
        case AST_INDEX:
            fputc('(', f), print_node(n->a, f), fputs(")[", f), print_node(n->b, f), fputc(']', f);
            break;
        case AST_BINARY:
            fputc('(', f), print_node(n->a, f), fprintf(f, " %s ", ast_op_text(n->op));
            print_node(n->b, f), fputc(')', f);
            break;
        case AST_UNARY:
            fprintf(f, "(%s ", n->op == OP_NOT ? "not" : "-"), print_node(n->a, f), fputc(')', f);
            break;
        case AST_IF:
            fputs("(if ", f), print_node(n->a, f), fputs(" then ", f), print_node(n->b, f);
            fputs(" else ", f), print_node(n->c, f), fputc(')', f);
            break;
        case AST_LAMBDA:
            fputs("((", f), print_list(&n->list, ", ", f), fputs(") => ", f), print_node(n->a, f);
            fputc(')', f);
            break;
        case AST_WITH:
            fputc('(', f), print_node(n->a, f), fputs(" with {", f);
            print_list(&n->list, ", ", f), fputs("})", f);
            break;
        default:
            abort();
    }
}

/* ---- tree equality, spans aside ---- */

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same(const fl_node *x, const fl_node *y);

static int same_list(const fl_nodes *a, const fl_nodes *b) {
    if (a->len != b->len) return 0;
    for (int i = 0; i < a->len; i++)
        if (!same(a->items[i], b->items[i])) return 0;
    return 1;
}

static int same(const fl_node *x, const fl_node *y) {
    if (!x || !y) return x == y;
    if (x->kind != y->kind || !same_str(x->name, y->name) || x->ival != y->ival || x->op != y->op ||
        memcmp(&x->fval, &y->fval, sizeof x->fval) != 0)
        return 0;
    if (x->kind == AST_STRPART) {
        if (memcmp(x->sval, y->sval, (size_t)x->ival) != 0) return 0;
    } else if (!same_str(x->sval, y->sval)) {
        return 0;
    }
    return same(x->a, y->a) && same(x->b, y->b) && same(x->c, y->c) &&
           same_list(&x->list, &y->list) && same_list(&x->list2, &y->list2);
}

static int tree_depth(const fl_node *n) {
    if (!n) return 0;
    int d = tree_depth(n->a);
    int k = tree_depth(n->b);
    if (k > d) d = k;
    k = tree_depth(n->c);
    if (k > d) d = k;
    for (int i = 0; i < n->list.len; i++)
        if ((k = tree_depth(n->list.items[i])) > d) d = k;
    for (int i = 0; i < n->list2.len; i++)
        if ((k = tree_depth(n->list2.items[i])) > d) d = k;
    return d + 1;
}

static void round_trip(const fl_node *prog) {
    if (tree_depth(prog) > FUZZ_ROUND_TRIP_DEPTH) return;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    print_node(prog, f);
    fputc('\n', f);
    fclose(f);
    fl_diag d;
    diag_init(&d, "round-trip.flow", text, len, stderr);
    ast_arena *ar = ast_arena_new(fl_ctx_default());
    fl_node *again = fl_parse(ar, &d, text, len);
    if (!again || !same(prog, again)) {
        fprintf(stderr, "round trip failed; printed source:\n%s\n", text);
        abort();
    }
    ast_arena_free(ar);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    fl_diag d;
    diag_init(&d, "fuzz.flow", (const char *)data, size, devnull);
    ast_arena *ar = ast_arena_new(fl_ctx_default());
    fl_node *prog = fl_parse(ar, &d, (const char *)data, size);
    if ((prog != NULL) != (d.errors == 0)) {
        fprintf(stderr, "tree returned with %d errors\n", d.errors);
        abort();
    }
    if (prog) {
        check_tree(prog, 0);
        ast_dump(prog, devnull);
        round_trip(prog);
    }
    ast_arena_free(ar);
    return 0;
}
