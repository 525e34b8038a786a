/*
 * ast.h — the syntax tree of a .flow file.
 *
 * The parser (grammar/flow.y) builds it and does nothing else; the checker
 * (compiler/check*.c) reads it. Every node carries its source span. All nodes,
 * lists and strings live in one arena per compilation (ast_arena), freed at once.
 *
 * One generic node struct; what each field means for each kind is written
 * beside the kind in FLOW_AST_KINDS. Unused fields are NULL / 0 / empty.
 */
#ifndef FLOW_AST_H
#define FLOW_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

typedef struct fl_span {
    int line, col;         /* first character, 1-based (col counts bytes) */
    int end_line, end_col; /* last character, inclusive */
} fl_span;

/* X(kind, description of the fields it uses) */
#define FLOW_AST_KINDS(X)                                                                          \
    /* ---- top level ---- */                                                                      \
    X(PROGRAM, "list: declarations in source order")                                               \
    X(LIBRARY, "name; sval: the path string as written (escapes decoded)")                         \
    X(TASK, "name; list: PARAMs; a: return type or NULL (void); b: BIND_SYMBOL or BIND_SH; "       \
            "list2: OPTIONs of `with {...}`")                                                      \
    X(BIND_SYMBOL, "name: library name; sval: C symbol")                                           \
    X(BIND_SH, "a: the command, a STR node (may interpolate)")                                     \
    X(TYPEDECL, "name; a: the type")                                                               \
    X(FLOW, "name; list: PARAMs; a: return type or NULL; b: schedule STR or NULL; list2: body; "  \
            "c: NULL or a WITH of OPTIONs: the clauses start, tz, watch")                        \
    X(GROUP, "name; list: PARAMs; a: return type or NULL; list2: body")                            \
    X(IMPORT, "sval: the path as written, or NULL; b: NAME of `import std` (else NULL); "        \
              "a: NAME after `as`, or NULL")                                                       \
    X(PARAM, "name; a: type; b: default expression or NULL")                                       \
    X(OPTION, "name; a: value expression (an entry of `with {name: value}`)")                      \
    /* ---- types ---- */                                                                          \
    X(TNAME, "name: int float bool str path dir bytes date time duration, or a declared type; "  \
             "sval: the module of a qualified type (m.Name), else NULL")                           \
    X(TLIST, "a: element type")                                                                    \
    X(TRECORD, "list: FIELDDECLs")                                                                 \
    X(FIELDDECL, "name; a: type")                                                                  \
    /* ---- statements ---- */                                                                     \
    X(LET, "name; a: expression; b: the declared type (let x: T = e) or NULL; "                    \
           "list: NAMEs after `after`")                                                            \
    X(RETURN, "a: expression")                                                                     \
    X(EXPRSTMT, "a: expression (a call run for its effect); list: NAMEs after `after`")           \
    /* ---- expressions ---- */                                                                    \
    X(INT, "ival")                                                                                 \
    X(FLOAT, "fval")                                                                               \
    X(BOOL, "ival: 0 or 1")                                                                        \
    X(STR, "list: parts in order, each a STRPART (literal text) or an expression {…}")            \
    X(STRPART, "sval: literal text, escapes decoded; ival: its byte length (may hold NUL)")        \
    X(DURATION, "ival: milliseconds; sval: the literal as written")                                \
    X(DATE, "sval: \"YYYY-MM-DD\" (validated as a real calendar day by the scanner)")              \
    X(TIME, "sval: \"YYYY-MM-DDTHH:MM:SSZ\" (validated by the scanner: fv_time_problem)")     \
    X(NAME, "name")                                                                                \
    X(LIST, "list: elements")                                                                      \
    X(RECORD, "list: FIELDINITs")                                                                  \
    X(FIELDINIT, "name; a: value")                                                                 \
    X(CALL, "a: callee (NAME, or MEMBER for t.partial(...) / xs.map(...)); list: ARGs")           \
    X(ARG, "name: NULL for a positional argument; a: value")                                      \
    X(MEMBER, "a: object; name: the member (r.f, t.expand, xs.map)")                               \
    X(INDEX, "a: list; b: index")                                                                  \
    X(BINARY, "op; a; b")                                                                          \
    X(UNARY, "op (OP_NOT, OP_NEG); a")                                                             \
    X(IF, "a: condition; b: then; c: else")                                                        \
    X(LAMBDA, "list: LPARAMs; a: body")                                                            \
    X(LPARAM, "name")                                                                              \
    X(WITH, "a: expression (e.g. combine(...)); list: OPTIONs")

typedef enum fl_ast_kind {
#define X(k, doc) AST_##k,
    FLOW_AST_KINDS(X)
#undef X
        AST__COUNT
} fl_ast_kind;

#define FLOW_AST_OPS(X)                                                                            \
    X(ADD, "+") X(SUB, "-") X(MUL, "*") X(DIV, "/") X(MOD, "%") X(EQ, "==") X(NE, "!=")            \
        X(LT, "<") X(LE, "<=") X(GT, ">") X(GE, ">=") X(AND, "and") X(OR, "or") X(NOT, "not")      \
            X(NEG, "-")

typedef enum fl_ast_op {
#define X(o, s) OP_##o,
    FLOW_AST_OPS(X)
#undef X
        OP__COUNT
} fl_ast_op;

typedef struct fl_node fl_node;

typedef struct fl_nodes {
    fl_node **items; /* arena memory */
    int len, cap;
} fl_nodes;

struct fl_node {
    fl_ast_kind kind;
    fl_span span;   /* the whole construct */
    fl_span nspan;  /* span of `name` where the node has one (else = span) */
    const char *name; /* identifier (see the kind's description) */
    const char *sval; /* string payload */
    int64_t ival;     /* integer payload */
    double fval;      /* float payload */
    int op;           /* fl_ast_op for BINARY / UNARY */
    fl_node *a, *b, *c;
    fl_nodes list, list2;
};

/* ---- the arena: every allocation of a compilation, freed at once ----
 * Chunks come from the context (fl_malloc). Out of memory: ast_arena_new and
 * ast_alloc return NULL, the context records FL_ENOMEM (so fl_failed(ctx) tells
 * every caller after the fact) and the arena stays valid: what it holds is freed
 * by ast_arena_free as usual. */
typedef struct ast_arena ast_arena;

ast_arena *ast_arena_new(fl_ctx *ctx); /* NULL when out of memory */
/* With chunks of `chunk` bytes instead of 64 KiB; 0: every allocation is its own
 * request to the context (tests: failing allocation N then reaches every node). */
ast_arena *ast_arena_new_chunked(fl_ctx *ctx, size_t chunk);
void ast_arena_free(ast_arena *ar);
fl_ctx *ast_arena_ctx(const ast_arena *ar); /* the context it allocates from */
void *ast_alloc(ast_arena *ar, size_t n); /* zeroed; NULL when out of memory */
char *ast_strndup(ast_arena *ar, const char *s, size_t n); /* NULL when out of memory */

fl_node *ast_node(ast_arena *ar, fl_ast_kind kind, fl_span span); /* NULL: no memory */
/* Append n to list (the items array grows in the arena); false when out of memory
 * (the list is then unchanged). */
bool ast_push(ast_arena *ar, fl_nodes *list, fl_node *n);
const char *ast_kind_name(fl_ast_kind k);
const char *ast_op_text(int op);

/* The first node of kind k in n's tree (n itself, then a, b, c, list, list2, depth
 * first), or NULL. */
const fl_node *ast_find(const fl_node *n, fl_ast_kind k);

/* Print the tree, one node a line, indented (for tests and --emit=ast). */
void ast_dump(const fl_node *n, void *file /* FILE* */);

/* ---- the parser (grammar/flow.y) ----
 * Parses src (len bytes, need not be NUL-terminated). Syntax errors go to diag
 * (several per run, with positions); returns the PROGRAM node, or NULL when
 * any syntax error was reported. Never crashes or hangs on any input.
 * Out of memory (fl_failed(ast_arena_ctx(ar)) afterwards): NULL, with no
 * diagnostic of its own (diag is muted from then on, see diag.h); the scanner's
 * memory is given back either way. */
struct fl_diag;
fl_node *fl_parse(ast_arena *ar, struct fl_diag *diag, const char *src, size_t len);

/* fl_parse of a piece of a file whose first line is line first_line of it (positions
 * are the file's): flowc lsp parses a document by pieces (compiler/lsp.c). */
fl_node *fl_parse_at(ast_arena *ar, struct fl_diag *diag, const char *src, size_t len,
                     int first_line);

/* The comments of a file, in source order (`# ...` to the end of its line; the
 * AST has no place for them). Only the formatter asks for them (compiler/fmt.c). */
typedef struct fl_comment {
    fl_span span; /* from '#' to the last byte before the newline */
    size_t off;   /* byte offset of the '#' */
    size_t len;   /* bytes, '#' included, newline excluded */
} fl_comment;
typedef struct fl_comments {
    fl_comment *items; /* arena memory */
    int len, cap;
} fl_comments;

/* fl_parse, and every comment of the file into *comments (arena memory). */
fl_node *fl_parse_comments(ast_arena *ar, struct fl_diag *diag, const char *src, size_t len,
                           fl_comments *comments);

#endif /* FLOW_AST_H */
