/*
 * flow.y — the grammar of .flow files (language.md; summary in docs/syntax.md).
 *
 * DESIGN
 * A pure (reentrant) LALR(1) parser: all state lives in a fl_parser passed
 * down from fl_parse() (grammar/flow.l, beside the scanner). Actions only
 * build the AST (compiler/ast.h) in the compilation's arena; they never check
 * meaning, except the few things that are syntax in disguise (a library path
 * may not interpolate) and the nesting bound (PARSE_MAX_DEPTH).
 *
 * Terminators: the scanner turns a newline into a terminator only when the
 * line's last token can end a statement and no ( [ or string interpolation is
 * open. At bracket depth 0 it sends TERM0, inside { } it sends TERM, so
 * declarations are separated by TERM0 and statements, record fields, record
 * type fields and `with` options by TERM (or ','). The distinction lets
 * declaration-level error recovery skip a whole broken flow body: it resumes
 * only at the next top-level terminator.
 *
 * Syntax errors: `parse.error custom` with LAC, so the expected set is exact;
 * yyreport_syntax_error names tokens as a user writes them, folds the many
 * tokens that can start an expression into "expression", and adds hints,
 * among them the keyword a misspelled one is closest to (`retrun r`: the
 * scanner remembers the last two identifiers for it). Errors found by the
 * scanner are reported there and reach the parser as LEXERR, which is never
 * reported twice.
 *
 * Recovery: `error` rules at the declaration and the statement level. After a
 * syntax error bison skips to the next terminator at that level and goes on, so
 * every broken declaration or statement is reported once; bison reports nothing
 * more until three tokens were shifted, which keeps one mistake to one message.
 * A file with syntax errors is not checked (see docs/compiler.md).
 *
 * Out of memory: node helpers return NULL when the arena cannot allocate (the
 * context then holds FL_ENOMEM) and every action tolerates a NULL child; the next
 * reduction stops the parse (YYLLOC_DEFAULT, which bison runs before every action,
 * checks the context and jumps to YYNOMEM), so no action ever builds on a node
 * that was never made. fl_parse then returns NULL with no message of its own.
 * Bison's own stacks stay on malloc (its LAC stack is grown outside yyparse, where
 * the context cannot be reached); their exhaustion is bison's "memory exhausted".
 */
%define api.pure full
%define api.prefix {fl_yy}
%define api.location.type {fl_span}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%parse-param {fl_parser *p}
%lex-param {fl_parser *p}
%initial-action { @$ = (fl_span){p->first_line, 1, p->first_line, 1}; }

%code requires {
#include <stddef.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"

/* Deepest nesting accepted: open brackets (scanner) and expression/type tree
 * depth (parser). Beyond it one clear error, never a stack overflow later. */
#define PARSE_MAX_DEPTH 200
/* The parser's own stack (right-recursive chains such as `- - - x`). */
#define PARSE_MAX_STACK 10000

typedef struct fl_lexer fl_lexer;
struct lex_block;

/* The state of one parse, shared by scanner and parser (no globals). */
typedef struct fl_parser {
    ast_arena *ar;         /* where every node goes */
    fl_diag *diag;       /* where errors go */
    void *scanner;         /* the flex scanner (yyscan_t) */
    fl_lexer *lx;        /* the scanner's extra state (brackets, strings) */
    fl_node *program;    /* the result */
    int depth_reported;    /* the nesting-depth error was given once already */
    const char *src;       /* the source text (borrowed) */
    size_t len;            /* its length */
    fl_ctx *ctx;           /* the compilation's context (the arena's) */
    struct lex_block *blocks; /* every block flex holds, so a fatal error can free them */
    void *on_fatal;        /* jmp_buf * to leave by when flex gives up (out of memory) */
    fl_comments *comments; /* where the comments go (fl_parse_comments), or NULL */
    int first_line;        /* the line number of src's first line (fl_parse_at) */
} fl_parser;
}

%code provides {
/* Implemented in flow.l: the scanner and what the error reporter asks it. */
int fl_lex_next(FL_YYSTYPE *lval, fl_span *lloc, fl_parser *p);
/* Innermost open bracket ('(' '[' '{' or 'I' for a string interpolation)
 * and where it opened; 0 when none is open. */
int fl_lex_open_bracket(const fl_parser *p, fl_span *where);
/* When the closer at `at` did not match the open bracket, that bracket. */
int fl_lex_mismatch(const fl_parser *p, fl_span at, fl_span *opened);
/* The text of the last token read (back 0: the parser's look-ahead) or of the one
 * before it (back 1) when that token is an identifier, and its span; else NULL. */
const char *fl_lex_ident(const fl_parser *p, int back, fl_span *at);
/* The span of the last token read (back 0) or of the one before it (back 1). */
fl_span fl_lex_token_at(const fl_parser *p, int back);
/* The last declaration keyword seen at depth 0 (TASK, FLOW...) or 0. */
int fl_lex_last_decl(const fl_parser *p);
/* A new node of the parse (every node the scanner or parser makes comes from here). */
fl_node *fl_parse_node(fl_parser *p, fl_ast_kind kind, fl_span sp);
/* Whether the scanner reported an error earlier on the line of `at`. */
int fl_lex_error_before(const fl_parser *p, fl_span at);
/* What made the terminator token at `at`: ';', '\n', or 0 for the end of the file. */
int fl_lex_term_kind(const fl_parser *p, fl_span at);
}

%code {
#include <string.h>

#define YYMAXDEPTH PARSE_MAX_STACK

/* Also the out-of-memory check before every action (see the top of this file). */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                                                \
    do {                                                                                           \
        if (p->ctx->errcode == FL_ENOMEM) YYNOMEM;                                                 \
        if (N) {                                                                                   \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                                                    \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                                                      \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                                            \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                                              \
        } else {                                                                                   \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;                               \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;                                  \
        }                                                                                          \
    } while (0)

static int fl_yylex(FL_YYSTYPE *lval, fl_span *lloc, fl_parser *p) {
    return fl_lex_next(lval, lloc, p);
}
static void fl_yyerror(fl_span *loc, fl_parser *p, const char *msg);

/* Every node the parser makes carries its subtree depth beside it (the AST
 * has no field for it): nodes are allocated as pnode, fl_node first. */
typedef struct pnode {
    fl_node n; /* the node itself (must stay first) */
    int depth;   /* 1 + the deepest child */
} pnode;

static int depth_of(const fl_node *n) {
    return n ? ((const pnode *)n)->depth : 0;
}

fl_node *fl_parse_node(fl_parser *p, fl_ast_kind kind, fl_span sp) {
    pnode *pn = ast_alloc(p->ar, sizeof *pn);
    if (!pn) return NULL;
    pn->n.kind = kind;
    pn->n.span = sp;
    pn->n.nspan = sp;
    pn->depth = 1;
    return &pn->n;
}

/* A node with children a, b, c (any may be NULL), depth-checked. */
#define mk fl_parse_node

static fl_node *mk3(fl_parser *p, fl_ast_kind kind, fl_span sp, fl_node *a,
                      fl_node *b, fl_node *c) {
    fl_node *n = mk(p, kind, sp);
    if (!n) return NULL;
    n->a = a;
    n->b = b;
    n->c = c;
    int d = depth_of(a);
    if (depth_of(b) > d) d = depth_of(b);
    if (depth_of(c) > d) d = depth_of(c);
    ((pnode *)n)->depth = d + 1;
    if (d + 1 > PARSE_MAX_DEPTH && !p->depth_reported) {
        p->depth_reported = 1;
        diag_error(p->diag, sp, "split it with 'let' bindings",
                   "expression nested too deeply (more than %d levels)", PARSE_MAX_DEPTH);
    }
    return n;
}

static fl_node *named(fl_parser *p, fl_ast_kind kind, fl_span sp, const char *name,
                        fl_span nsp) {
    fl_node *n = mk(p, kind, sp);
    if (!n) return NULL;
    n->name = name;
    n->nspan = nsp;
    return n;
}

/* A node with a name (spanning nsp) and one child. */
static fl_node *named1(fl_parser *p, fl_ast_kind kind, fl_span sp, const char *name,
                         fl_span nsp, fl_node *a) {
    fl_node *n = mk3(p, kind, sp, a, NULL, NULL);
    if (!n) return NULL;
    n->name = name;
    n->nspan = nsp;
    return n;
}

/* A node that owns a list: its depth is 1 + the deepest element. */
static fl_node *with_list(fl_parser *p, fl_node *n, fl_nodes list) {
    if (!n) return NULL;
    n->list = list;
    int d = 0;
    for (int i = 0; i < list.len; i++)
        if (depth_of(list.items[i]) > d) d = depth_of(list.items[i]);
    if (d + 1 > ((pnode *)n)->depth) ((pnode *)n)->depth = d + 1;
    if (d + 1 > PARSE_MAX_DEPTH && !p->depth_reported) {
        p->depth_reported = 1;
        diag_error(p->diag, n->span, "split it with 'let' bindings",
                   "expression nested too deeply (more than %d levels)", PARSE_MAX_DEPTH);
    }
    return n;
}

/* A node with one child a and a list. */
static fl_node *listed(fl_parser *p, fl_ast_kind kind, fl_span sp, fl_node *a,
                         fl_nodes list) {
    return with_list(p, mk3(p, kind, sp, a, NULL, NULL), list);
}

/* A list of one node / a list with one more: out of memory leaves it as it was
 * (the context says so and the next reduction stops the parse). */
static fl_nodes one(fl_parser *p, fl_node *n) {
    fl_nodes l = {0};
    (void)ast_push(p->ar, &l, n);
    return l;
}

static fl_nodes more(fl_parser *p, fl_nodes l, fl_node *n) {
    (void)ast_push(p->ar, &l, n);
    return l;
}

static fl_node *binary(fl_parser *p, fl_span sp, int op, fl_node *a, fl_node *b) {
    fl_node *n = mk3(p, AST_BINARY, sp, a, b, NULL);
    if (n) n->op = op;
    return n;
}

static fl_node *unary(fl_parser *p, fl_span sp, int op, fl_node *a) {
    fl_node *n = mk3(p, AST_UNARY, sp, a, NULL, NULL);
    if (n) n->op = op;
    return n;
}

/* A string literal's text when it has no interpolation (then it is one
 * STRPART) and no NUL byte; else NULL and an error. */
static const char *const_string(fl_parser *p, fl_node *str, const char *what) {
    if (!str || !str->list.len) return NULL; /* out of memory: the parse stops */
    for (int i = 0; i < str->list.len; i++) {
        fl_node *part = str->list.items[i];
        if (part->kind != AST_STRPART) {
            diag_error(p->diag, part->span, NULL, "%s cannot interpolate an expression", what);
            return NULL;
        }
        if (memchr(part->sval, 0, (size_t)part->ival)) {
            diag_error(p->diag, part->span, NULL, "%s cannot hold a NUL byte", what);
            return NULL;
        }
    }
    return str->list.items[0]->sval;
}
}

%union {
    fl_node *node;
    fl_nodes list;
    const char *id;
}

/* Token names are what a user would write; yyreport_syntax_error prints them. */
%token LEXERR "invalid token"
%token TERM "newline"
%token TERM0 "end of line"
%token <id> IDENT "identifier"
%token <node> INT "number" FLOAT "float" DURATION "duration" DATE "date" TIME "time"
%token <node> STR_TEXT "string text"
%token STR_BEGIN "string" STR_END "end of string"
%token INTERP_BEGIN "'{' in a string" INTERP_END "'}' of an interpolation"
%token LIBRARY "'library'" TASK "'task'" FLOW "'flow'" GROUP "'group'" TYPE "'type'"
%token LET "'let'" RETURN "'return'" WITH "'with'" SH "'sh'" SCHEDULE "'schedule'"
%token AFTER "'after'" TRUE "'true'" FALSE "'false'" IF "'if'" THEN "'then'" ELSE "'else'"
%token AND "'and'" OR "'or'" NOT "'not'"
%token ARROW "'->'" FATARROW "'=>'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
%token LPAREN_LAMBDA "'(' of a lambda"
%token PLUS "'+'"
%token MINUS "'-'"
%token STAR "'*'"
%token SLASH "'/'"
%token PERCENT "'%'"
%token LT "'<'"
%token GT "'>'"
%token DOT "'.'"
%token COMMA "','"
%token COLON "':'"
%token ASSIGN "'='"
%token LPAREN "'('"
%token RPAREN "')'"
%token LBRACKET "'['"
%token RBRACKET "']'"
%token LBRACE "'{'"
%token RBRACE "'}'"
%token IMPORT "'import'"

%type <node> program decl task_decl binding task_opts flow_decl group_decl opt_ret opt_schedule
%type <node> flow_clause clause_value
%type <node> param type fielddecl stmt expr with_expr or_expr and_expr not_expr cmp_expr
%type <node> add_expr mul_expr unary_expr postfix primary string option arg fieldinit lambda
%type <node> lparam name_ref import_decl import_target opt_alias
%type <list> decls params opt_params fielddecls fielddecl_list body stmts stmt_seq opt_after
%type <list> names options option_list args opt_args exprs opt_exprs fieldinits fieldinit_list
%type <list> str_parts lparams opt_lparams flow_clauses

%%

/* Leading terminators are spelled out rather than an empty opt_terms0 before
 * decls: with LAC a syntax error in the first declaration is found in the first
 * state, before any empty rule is reduced, so decl's `error` rule must be
 * reachable from that state for the parse to recover and go on. */
program
    : opt_terms0                       { $$ = p->program = mk(p, AST_PROGRAM, @$); }
    | decls opt_terms0                 { $$ = p->program = listed(p, AST_PROGRAM, @1, NULL, $1); }
    | terms0 decls opt_terms0          { $$ = p->program = listed(p, AST_PROGRAM, @2, NULL, $2); }
    ;

opt_terms0: %empty | terms0 ;
terms0: TERM0 | terms0 TERM0 ;
opt_terms: %empty | terms ;
terms: TERM | terms TERM ;

decls
    : decl                             { $$ = one(p, $1); }
    | decls terms0 decl                { $$ = more(p, $1, $3); }
    ;

decl
    : LIBRARY IDENT ASSIGN string
        {
            $$ = named(p, AST_LIBRARY, @$, $2, @2);
            if ($$) $$->sval = const_string(p, $4, "a library path");
        }
    | task_decl
    | TYPE IDENT ASSIGN type           { $$ = named1(p, AST_TYPEDECL, @$, $2, @2, $4); }
    | flow_decl
    | group_decl
    | import_decl
    | error                            { $$ = mk(p, AST_PROGRAM, @$); }
    ;

/* import "path.flow" [as NAME] | import NAME [as NAME]. `import` and `as` are
 * contextual: the scanner sends IMPORT only for `import` at the start of a top-level
 * declaration (everywhere else it is a name), and `as` is any name here, checked by
 * the action, so v1 programs that use them as names parse unchanged. */
import_decl
    : IMPORT import_target opt_alias
        {
            $$ = mk3(p, AST_IMPORT, @$, $3, NULL, NULL);
            if ($$ && $2) {
                if ($2->kind == AST_NAME) $$->b = $2;
                else $$->sval = const_string(p, $2, "an import path");
            }
        }
    ;
import_target
    : string
    | IDENT                            { $$ = named(p, AST_NAME, @$, $1, @1); }
    ;
opt_alias
    : %empty                           { $$ = NULL; }
    | IDENT IDENT
        {
            $$ = named(p, AST_NAME, @2, $2, @2);
            if (strcmp($1, "as"))
                diag_error(p->diag, @1, "import \"x.flow\" as x", "expected 'as', found '%s'", $1);
        }
    ;

/* task NAME ( params ) [-> type] = binding [with { options }] */
task_decl
    : TASK IDENT LPAREN opt_params RPAREN opt_ret ASSIGN binding task_opts
        {
            $$ = with_list(p, mk3(p, AST_TASK, @$, $6, $8, NULL), $4);
            if ($$) {
                $$->name = $2;
                $$->nspan = @2;
                if ($9) $$->list2 = $9->list;
            }
        }
    ;

binding
    : IDENT DOT IDENT
        {
            $$ = named(p, AST_BIND_SYMBOL, @$, $1, @1);
            if ($$) $$->sval = $3;
        }
    | SH string                        { $$ = mk3(p, AST_BIND_SH, @$, $2, NULL, NULL); }
    ;

task_opts
    : %empty                           { $$ = NULL; }
    | WITH LBRACE options RBRACE       { $$ = with_list(p, mk(p, AST_WITH, @$), $3); }
    ;

opt_ret
    : %empty                           { $$ = NULL; }
    | ARROW type                       { $$ = $2; }
    ;

/* flow NAME ( params ) [-> type] [schedule "cron" [start D] [tz "Zone"]] [watch P]
 * { statements }. start, tz and watch are contextual: any name parses here as a
 * clause, and the checker (check_schedule.c) says which names are clauses. */
flow_decl
    : FLOW IDENT LPAREN opt_params RPAREN opt_ret opt_schedule flow_clauses body
        {
            fl_node *cl = $8.len ? with_list(p, mk(p, AST_WITH, @8), $8) : NULL;
            $$ = with_list(p, mk3(p, AST_FLOW, @$, $6, $7, cl), $4);
            if ($$) {
                $$->name = $2;
                $$->nspan = @2;
                $$->list2 = $9;
            }
        }
    ;

flow_clauses
    : %empty                           { $$ = (fl_nodes){0}; }
    | flow_clauses flow_clause         { $$ = more(p, $1, $2); }
    ;
flow_clause
    : IDENT clause_value               { $$ = named1(p, AST_OPTION, @$, $1, @1, $2); }
    ;
clause_value
    : DATE
    | TIME
    | string
    | IDENT                            { $$ = named(p, AST_NAME, @$, $1, @1); }
    ;

opt_schedule
    : %empty                           { $$ = NULL; }
    | SCHEDULE string                  { $$ = $2; }
    ;

/* group NAME ( params ) [-> type] { statements } */
group_decl
    : GROUP IDENT LPAREN opt_params RPAREN opt_ret body
        {
            $$ = with_list(p, mk3(p, AST_GROUP, @$, $6, NULL, NULL), $4);
            if ($$) {
                $$->name = $2;
                $$->nspan = @2;
                $$->list2 = $7;
            }
        }
    ;

opt_params
    : %empty                           { $$ = (fl_nodes){0}; }
    | params                           { $$ = $1; }
    | params COMMA                     { $$ = $1; }
    ;

params
    : param                            { $$ = one(p, $1); }
    | params COMMA param               { $$ = more(p, $1, $3); }
    ;

/* NAME : type [= default] */
param
    : IDENT COLON type                 { $$ = named1(p, AST_PARAM, @$, $1, @1, $3); }
    | IDENT COLON type ASSIGN expr     {
                                           $$ = named1(p, AST_PARAM, @$, $1, @1, $3);
                                           if ($$) $$->b = $5;
                                       }
    ;

/* ---- types: int | [T] | {a: T, b: U} | Name ---- */
type
    : IDENT                            { $$ = named(p, AST_TNAME, @$, $1, @1); }
    | IDENT DOT IDENT                  { /* a type of an imported module: m.Name */
                                         $$ = named(p, AST_TNAME, @$, $3, @3);
                                         if ($$) $$->sval = $1;
                                       }
    | LBRACKET type RBRACKET           { $$ = mk3(p, AST_TLIST, @$, $2, NULL, NULL); }
    | LBRACE fielddecls RBRACE         { $$ = with_list(p, mk(p, AST_TRECORD, @$), $2); }
    ;

/* Record fields, record type fields and options share one layout: items
 * separated by COMMA or terminators (newlines inside { }), with an optional
 * trailing separator and optional leading terminators. */
fielddecls
    : opt_terms                        { $$ = (fl_nodes){0}; }
    | opt_terms fielddecl_list opt_sep { $$ = $2; }
    ;
fielddecl_list
    : fielddecl                        { $$ = one(p, $1); }
    | fielddecl_list sep fielddecl     { $$ = more(p, $1, $3); }
    ;
fielddecl
    : IDENT COLON type                 { $$ = named1(p, AST_FIELDDECL, @$, $1, @1, $3); }
    ;

sep: COMMA | terms | COMMA terms ;
opt_sep: %empty | sep ;

options
    : opt_terms                        { $$ = (fl_nodes){0}; }
    | opt_terms option_list opt_sep    { $$ = $2; }
    ;
option_list
    : option                           { $$ = one(p, $1); }
    | option_list sep option           { $$ = more(p, $1, $3); }
    ;
/* NAME : value */
option
    : IDENT COLON expr                 { $$ = named1(p, AST_OPTION, @$, $1, @1, $3); }
    ;

/* ---- statements ---- */
body
    : LBRACE stmts RBRACE              { $$ = $2; }
    ;

stmts
    : opt_terms                        { $$ = (fl_nodes){0}; }
    | opt_terms stmt_seq opt_terms     { $$ = $2; }
    ;

stmt_seq
    : stmt                             { $$ = one(p, $1); }
    | stmt_seq terms stmt              { $$ = more(p, $1, $3); }
    ;

stmt
    : LET IDENT ASSIGN expr opt_after
        {
            $$ = with_list(p, mk3(p, AST_LET, @$, $4, NULL, NULL), $5);
            if ($$) {
                $$->name = $2;
                $$->nspan = @2;
            }
        }
    | LET IDENT COLON type ASSIGN expr opt_after   /* a typed binding: let rows: [Hit] = e */
        {
            $$ = with_list(p, mk3(p, AST_LET, @$, $6, $4, NULL), $7);
            if ($$) {
                $$->name = $2;
                $$->nspan = @2;
            }
        }
    | RETURN expr                      { $$ = mk3(p, AST_RETURN, @$, $2, NULL, NULL); }
    | expr opt_after                   { $$ = listed(p, AST_EXPRSTMT, @$, $1, $2); }
    | error                            { $$ = mk(p, AST_EXPRSTMT, @$); }
    ;

opt_after
    : %empty                           { $$ = (fl_nodes){0}; }
    | AFTER names                      { $$ = $2; }
    ;

names
    : name_ref                         { $$ = one(p, $1); }
    | names COMMA name_ref             { $$ = more(p, $1, $3); }
    ;

name_ref
    : IDENT                            { $$ = named(p, AST_NAME, @$, $1, @1); }
    ;

/* ---- expressions, loosest first ---- */
expr
    : with_expr
    | lambda
    | IF expr THEN expr ELSE expr      { $$ = mk3(p, AST_IF, @$, $2, $4, $6); }
    ;

/* x => body | (a, b) => body */
lambda
    : lparam FATARROW expr             { $$ = listed(p, AST_LAMBDA, @$, $3, one(p, $1)); }
    | LPAREN_LAMBDA opt_lparams RPAREN FATARROW expr
                                       { $$ = listed(p, AST_LAMBDA, @$, $5, $2); }
    ;
lparam
    : IDENT                            { $$ = named(p, AST_LPARAM, @$, $1, @1); }
    ;
opt_lparams
    : %empty                           { $$ = (fl_nodes){0}; }
    | lparams                          { $$ = $1; }
    | lparams COMMA                    { $$ = $1; }
    ;
lparams
    : lparam                           { $$ = one(p, $1); }
    | lparams COMMA lparam             { $$ = more(p, $1, $3); }
    ;

/* e with { options } — options for a combined task */
with_expr
    : or_expr
    | with_expr WITH LBRACE options RBRACE { $$ = listed(p, AST_WITH, @$, $1, $4); }
    ;

or_expr
    : and_expr
    | or_expr OR and_expr              { $$ = binary(p, @$, OP_OR, $1, $3); }
    ;
and_expr
    : not_expr
    | and_expr AND not_expr            { $$ = binary(p, @$, OP_AND, $1, $3); }
    ;
not_expr
    : cmp_expr
    | NOT not_expr                     { $$ = unary(p, @$, OP_NOT, $2); }
    ;
/* comparisons do not chain: a < b < c is a syntax error */
cmp_expr
    : add_expr
    | add_expr EQ add_expr             { $$ = binary(p, @$, OP_EQ, $1, $3); }
    | add_expr NE add_expr             { $$ = binary(p, @$, OP_NE, $1, $3); }
    | add_expr LT add_expr             { $$ = binary(p, @$, OP_LT, $1, $3); }
    | add_expr LE add_expr             { $$ = binary(p, @$, OP_LE, $1, $3); }
    | add_expr GT add_expr             { $$ = binary(p, @$, OP_GT, $1, $3); }
    | add_expr GE add_expr             { $$ = binary(p, @$, OP_GE, $1, $3); }
    ;
add_expr
    : mul_expr
    | add_expr PLUS mul_expr           { $$ = binary(p, @$, OP_ADD, $1, $3); }
    | add_expr MINUS mul_expr          { $$ = binary(p, @$, OP_SUB, $1, $3); }
    ;
mul_expr
    : unary_expr
    | mul_expr STAR unary_expr         { $$ = binary(p, @$, OP_MUL, $1, $3); }
    | mul_expr SLASH unary_expr        { $$ = binary(p, @$, OP_DIV, $1, $3); }
    | mul_expr PERCENT unary_expr      { $$ = binary(p, @$, OP_MOD, $1, $3); }
    ;
unary_expr
    : postfix
    | MINUS unary_expr                 { $$ = unary(p, @$, OP_NEG, $2); }
    ;

/* f(args) | x.name | xs[i] */
postfix
    : primary
    | postfix LPAREN opt_args RPAREN   { $$ = listed(p, AST_CALL, @$, $1, $3); }
    | postfix DOT IDENT                { $$ = named1(p, AST_MEMBER, @$, $3, @3, $1); }
    | postfix LBRACKET expr RBRACKET   { $$ = mk3(p, AST_INDEX, @$, $1, $3, NULL); }
    ;

opt_args
    : %empty                           { $$ = (fl_nodes){0}; }
    | args                             { $$ = $1; }
    | args COMMA                       { $$ = $1; }
    ;
args
    : arg                              { $$ = one(p, $1); }
    | args COMMA arg                   { $$ = more(p, $1, $3); }
    ;
/* value | name = value */
arg
    : expr                             { $$ = mk3(p, AST_ARG, @$, $1, NULL, NULL); }
    | IDENT ASSIGN expr                { $$ = named1(p, AST_ARG, @$, $1, @1, $3); }
    ;

primary
    : INT
    | FLOAT
    | DURATION
    | DATE
    | TIME
    | TRUE                             { $$ = mk(p, AST_BOOL, @$); if ($$) $$->ival = 1; }
    | FALSE                            { $$ = mk(p, AST_BOOL, @$); if ($$) $$->ival = 0; }
    | string
    | IDENT                            { $$ = named(p, AST_NAME, @$, $1, @1); }
    | LBRACKET opt_exprs RBRACKET      { $$ = with_list(p, mk(p, AST_LIST, @$), $2); }
    | LBRACE fieldinits RBRACE         { $$ = with_list(p, mk(p, AST_RECORD, @$), $2); }
    | LPAREN expr RPAREN               { $$ = $2; }
    ;

opt_exprs
    : %empty                           { $$ = (fl_nodes){0}; }
    | exprs                            { $$ = $1; }
    | exprs COMMA                      { $$ = $1; }
    ;
exprs
    : expr                             { $$ = one(p, $1); }
    | exprs COMMA expr                 { $$ = more(p, $1, $3); }
    ;

fieldinits
    : opt_terms                        { $$ = (fl_nodes){0}; }
    | opt_terms fieldinit_list opt_sep { $$ = $2; }
    ;
fieldinit_list
    : fieldinit                        { $$ = one(p, $1); }
    | fieldinit_list sep fieldinit     { $$ = more(p, $1, $3); }
    ;
/* NAME = value */
fieldinit
    : IDENT ASSIGN expr                { $$ = named1(p, AST_FIELDINIT, @$, $1, @1, $3); }
    ;

/* "text {expr} text" */
string
    : STR_BEGIN str_parts STR_END
        {
            $$ = with_list(p, mk(p, AST_STR, @$), $2);
            if ($$ && $2.len == 0) { /* "" still has its one (empty) literal part */
                fl_node *part = mk(p, AST_STRPART, @$);
                if (part) {
                    part->sval = "";
                    (void)ast_push(p->ar, &$$->list, part);
                }
            }
        }
    ;
str_parts
    : %empty                           { $$ = (fl_nodes){0}; }
    | str_parts STR_TEXT               { $$ = more(p, $1, $2); }
    | str_parts INTERP_BEGIN expr INTERP_END
                                       { $$ = more(p, $1, $3); }
    ;

%%

/* ---- syntax errors ---- */

static int has(const yysymbol_kind_t *set, int n, yysymbol_kind_t k) {
    for (int i = 0; i < n; i++)
        if (set[i] == k) return 1;
    return 0;
}

/* Tokens that may start an expression: listed as one "expression". */
static int starts_expr(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_INT: case YYSYMBOL_FLOAT: case YYSYMBOL_DURATION: case YYSYMBOL_DATE: case YYSYMBOL_TIME:
    case YYSYMBOL_STR_BEGIN: case YYSYMBOL_TRUE: case YYSYMBOL_FALSE: case YYSYMBOL_IDENT:
    case YYSYMBOL_LPAREN_LAMBDA: case YYSYMBOL_IF: case YYSYMBOL_NOT: case YYSYMBOL_LPAREN:
    case YYSYMBOL_LBRACKET: case YYSYMBOL_LBRACE: case YYSYMBOL_MINUS:
        return 1;
    default:
        return 0;
    }
}

/* Tokens that would continue an expression (operators, postfix): left out of
 * a long expected list, where they only hide the useful ',' or ')'. */
static int continues_expr(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_PLUS: case YYSYMBOL_MINUS: case YYSYMBOL_STAR: case YYSYMBOL_SLASH:
    case YYSYMBOL_PERCENT: case YYSYMBOL_LT: case YYSYMBOL_GT: case YYSYMBOL_EQ: case YYSYMBOL_NE:
    case YYSYMBOL_LE: case YYSYMBOL_GE: case YYSYMBOL_AND: case YYSYMBOL_OR: case YYSYMBOL_WITH:
    case YYSYMBOL_DOT: case YYSYMBOL_LPAREN: case YYSYMBOL_LBRACKET: case YYSYMBOL_AFTER:
        return 1;
    default:
        return 0;
    }
}

static const char *token_text(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_TERM: case YYSYMBOL_TERM0: return "newline";
    case YYSYMBOL_YYEOF: return "end of file";
    default: return yysymbol_name(k);
    }
}

/* A hint for the usual mistakes, or NULL. `all` is the whole expected set. */
static const char *syntax_hint(const fl_parser *p, yysymbol_kind_t la, fl_span at,
                               const yysymbol_kind_t *all, int nall, int want_expr, char *hint,
                               size_t size) {
    fl_span open, opened;
    int ob = fl_lex_open_bracket(p, &open);
    int mm = fl_lex_mismatch(p, at, &opened);
    if (mm) {
        snprintf(hint, size, "the '%c' opened at %d:%d is not closed", mm == 'I' ? '{' : mm,
                 opened.line, opened.col);
        return hint;
    }
    if (la == YYSYMBOL_YYEOF && ob) {
        snprintf(hint, size, "the '%c' opened at %d:%d is never closed",
                 ob == 'I' ? '{' : ob, open.line, open.col);
        return hint;
    }
    if (la == YYSYMBOL_ASSIGN && has(all, nall, YYSYMBOL_AFTER)) {
        return "a name is bound with 'let name = value'";
    }
    if ((la == YYSYMBOL_LT || la == YYSYMBOL_GT || la == YYSYMBOL_LE || la == YYSYMBOL_GE ||
                la == YYSYMBOL_EQ || la == YYSYMBOL_NE) && !has(all, nall, la) &&
               has(all, nall, YYSYMBOL_PLUS)) {
        return "comparisons do not chain: write a < b and b < c";
    }
    if (la >= YYSYMBOL_LIBRARY && la <= YYSYMBOL_NOT && has(all, nall, YYSYMBOL_IDENT) &&
               !want_expr) {
        snprintf(hint, size, "%s is a keyword and cannot be used as a name",
                 yysymbol_name(la));
        return hint;
    }
    if (ob == '{' && (la == YYSYMBOL_FLOW || la == YYSYMBOL_TASK || la == YYSYMBOL_GROUP ||
                             la == YYSYMBOL_LIBRARY || la == YYSYMBOL_TYPE)) {
        snprintf(hint, size,
                 "the '{' opened at %d:%d is not closed (declarations do not nest)", open.line,
                 open.col);
        return hint;
    }
    if (la == YYSYMBOL_EQ && has(all, nall, YYSYMBOL_ASSIGN)) {
        return "'==' compares two values; use '=' here";
    }
    if (la == YYSYMBOL_ASSIGN && has(all, nall, YYSYMBOL_EQ)) {
        return "to compare two values, write '=='";
    }
    if (la == YYSYMBOL_COLON && has(all, nall, YYSYMBOL_ASSIGN) && ob == '(') {
        return "a named argument is written name = value, as in f(a = 1)";
    }
    if (la == YYSYMBOL_COLON && has(all, nall, YYSYMBOL_ASSIGN)) {
        return "record literals are written {name = value}; ':' is for types and 'with' options";
    }
    if (la == YYSYMBOL_ASSIGN && has(all, nall, YYSYMBOL_COLON)) {
        return "parameters, record types and 'with' options are written 'name: ...'";
    }
    if (has(all, nall, YYSYMBOL_ASSIGN) && fl_lex_last_decl(p) == TASK && !ob) {
        return "a task is bound with '= lib.symbol' or '= sh \"command\"'";
    }
    if ((la == YYSYMBOL_LET || la == YYSYMBOL_RETURN) && has(all, nall, YYSYMBOL_TASK)) {
        return "statements belong inside the { } of a flow or group";
    }
    if ((starts_expr(la) || la == YYSYMBOL_STR_BEGIN) && la != YYSYMBOL_MINUS &&
        la != YYSYMBOL_LPAREN && la != YYSYMBOL_LBRACKET && has(all, nall, YYSYMBOL_COMMA) &&
        fl_lex_token_at(p, 1).end_line == at.line) {
        return "is a ',' missing before it?"; /* two items side by side: max(a 2) */
    }
    if (ob && ob != '{' && at.line != open.line) {
        snprintf(hint, size, "the '%c' opened at %d:%d is not closed yet",
                 ob == 'I' ? '{' : ob, open.line, open.col);
        return hint;
    }
    return NULL;
}

/* The keywords: LIBRARY..NOT, and the contextual IMPORT. */
static int is_keyword(yysymbol_kind_t k) {
    return (k >= YYSYMBOL_LIBRARY && k <= YYSYMBOL_NOT) || k == YYSYMBOL_IMPORT;
}

/* A misspelled keyword: the keyword closest to `word` (among the expected ones when
 * `only` holds the expected set, else among all), as a hint in buf; NULL when none
 * is close. Keyword token names are quoted. Words shorter than three letters are
 * not corrected: `x` is no misspelled `or`. */
static const char *keyword_hint(const char *word, const yysymbol_kind_t *only, int nonly,
                                char *buf, size_t size) {
    char names[YYNTOKENS][16];
    const char *cands[YYNTOKENS];
    int n = 0;
    for (int k = 0; k < YYNTOKENS; k++) {
        if (!is_keyword((yysymbol_kind_t)k)) continue;
        if (only && !has(only, nonly, (yysymbol_kind_t)k)) continue;
        const char *q = yysymbol_name((yysymbol_kind_t)k); /* "'name'" */
        snprintf(names[n], sizeof names[n], "%.*s", (int)strlen(q) - 2, q + 1);
        cands[n] = names[n];
        n++;
    }
    char dym[64];
    if (!word || strlen(word) < 3 || !diag_did_you_mean(word, cands, n, dym, sizeof dym)) return NULL;
    snprintf(buf, size, "%s ('%s' is not a keyword)", dym, word);
    return buf;
}

static int yyreport_syntax_error(const yypcontext_t *yc, fl_parser *p) {
    yysymbol_kind_t la = yypcontext_token(yc);
    if (la == YYSYMBOL_LEXERR) return 0; /* the scanner reported it */
    fl_span at = *yypcontext_location(yc);
    if (fl_lex_error_before(p, at)) return 0; /* most likely a consequence of it */

    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(yc, exp, YYNTOKENS);
    if (n < 0) n = 0;

    /* the expected list as a user reads it */
    const char *words[YYNTOKENS];
    int nw = 0, expr_done = 0, term_done = 0;
    int want_expr = has(exp, n, YYSYMBOL_INT);
    yysymbol_kind_t all[YYNTOKENS]; /* the whole set, for the hints */
    int nall = n;
    memcpy(all, exp, sizeof all);
    if (!want_expr && n > 1) { /* drop what would merely continue an expression */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (exp[i] != YYSYMBOL_FATARROW && (n <= 4 || !continues_expr(exp[i])) &&
                exp[i] != YYSYMBOL_DOT) /* '.' only continues a name (m.Type, lib.sym) */
                exp[k++] = exp[i];
        n = k;
    }
    int want_type = !want_expr && has(exp, n, YYSYMBOL_IDENT) && has(exp, n, YYSYMBOL_LBRACKET) &&
                    has(exp, n, YYSYMBOL_LBRACE);
    for (int i = 0; i < n; i++) {
        yysymbol_kind_t k = exp[i];
        if (want_expr && starts_expr(k)) {
            if (!expr_done) words[nw++] = "expression";
            expr_done = 1;
            continue;
        }
        if (want_type && (k == YYSYMBOL_IDENT || k == YYSYMBOL_LBRACKET || k == YYSYMBOL_LBRACE)) {
            if (!expr_done) words[nw++] = "type";
            expr_done = 1;
            continue;
        }
        if (k == YYSYMBOL_TERM || k == YYSYMBOL_TERM0) {
            if (term_done) continue;
            term_done = 1;
        }
        if (k == YYSYMBOL_LEXERR || k == YYSYMBOL_STR_TEXT || k == YYSYMBOL_INTERP_BEGIN) continue;
        words[nw++] = token_text(k);
    }

    char what[160];
    fl_span id_at;
    const char *la_id = la == YYSYMBOL_IDENT ? fl_lex_ident(p, 0, &id_at) : NULL;
    if (la_id) {
        snprintf(what, sizeof what, "identifier '%.60s%s'", la_id, strlen(la_id) > 60 ? "..." : "");
    } else if (la == YYSYMBOL_IDENT) {
        snprintf(what, sizeof what, "identifier");
    } else if (la == YYSYMBOL_TERM || la == YYSYMBOL_TERM0) {
        int kind = fl_lex_term_kind(p, at);
        snprintf(what, sizeof what, "%s", kind == ';' ? "';'" : kind ? "newline" : "end of file");
    } else {
        snprintf(what, sizeof what, "%s", token_text(la));
    }

    char msg[512];
    int len = snprintf(msg, sizeof msg, "unexpected %s", what);
    if (nw > 0 && nw <= 4) {
        len += snprintf(msg + len, sizeof msg - (size_t)len, ", expected ");
        for (int i = 0; i < nw && len < (int)sizeof msg - 40; i++)
            len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%s",
                            i == 0 ? "" : i == nw - 1 ? " or " : ", ", words[i]);
    }

    char hint[256];
    const char *h = syntax_hint(p, la, at, all, nall, want_expr, hint, sizeof hint);
    /* A misspelled keyword: where a keyword but no name may stand, the identifier
     * itself (`tsak f()`); or the name just before the unexpected token, which
     * the parser took for an expression (`retrun r`): then the caret goes on it. */
    fl_span prev_at;
    const char *prev_id = fl_lex_ident(p, 1, &prev_at);
    if (!h && prev_id && (h = keyword_hint(prev_id, NULL, 0, hint, sizeof hint))) {
        at = prev_at;
        snprintf(msg, sizeof msg, "unexpected %s after '%.60s'", what, prev_id);
    } else if (!h && la_id && !has(all, nall, YYSYMBOL_IDENT)) {
        h = keyword_hint(la_id, all, nall, hint, sizeof hint);
        if (!h && has(all, nall, YYSYMBOL_TASK) && has(all, nall, YYSYMBOL_FLOW)) {
            /* where a declaration starts (`def f()`): the keywords that can start one */
            const char *kw[YYNTOKENS];
            int m = 0;
            for (int i = 0; i < nall; i++)
                if (is_keyword(all[i])) kw[m++] = yysymbol_name(all[i]);
            size_t k = (size_t)snprintf(hint, sizeof hint, "a declaration starts with");
            for (int i = 0; i < m && k < sizeof hint; i++)
                k += (size_t)snprintf(hint + k, sizeof hint - k, "%s %s",
                                      i == 0 ? "" : i == m - 1 ? " or" : ",", kw[i]);
            h = hint;
        }
    }
    diag_error(p->diag, at, h, "%s", msg);
    return 0;
}

static void fl_yyerror(fl_span *loc, fl_parser *p, const char *msg) {
    if (strstr(msg, "exhausted"))
        diag_error(p->diag, *loc, "split it with 'let' bindings",
                   "the program is nested too deeply to parse");
    else
        diag_error(p->diag, *loc, NULL, "%s", msg);
}
