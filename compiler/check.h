/*
 * check.h — the checker's internal context, shared by the checker's files:
 * compile.c (the driver, declarations, tasks, parameters), check_module.c (imports),
 * check_types.c,
 * check_const.c (constants), check_options.c (task options), check_schedule.c,
 * check_library.c, check_map.c (the name maps) and check_body.c (flow and group
 * bodies: expressions, calls, mapping, combine, lowering to graph nodes).
 *
 * DESIGN
 * Checking and lowering are one walk: each expression is type-checked and, when
 * it holds a run-time value, emitted at once as a plan node (its arguments were
 * emitted before it, so a graph's nodes are in dependency order by construction).
 * Expressions that denote a task rather than a value (`t`, `t.partial(...)`,
 * `combine(...)`) evaluate to a *callable*: a task or group plus the nodes its
 * partial application has bound so far. A plain group call is inlined by walking
 * the group's body again in a fresh scope (fresh nodes); the first walk of a group
 * body reports its errors, later walks are silent (ctx->d points at a mute diag).
 * Types are plan type indexes; names are looked up in hash maps (chk_map), so the
 * checker stays linear in the size of the program.
 */
#ifndef FLOW_CHECK_H
#define FLOW_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "compile.h"
#include "diag.h"
#include "check_expr.h"
#include "htab.h"
#include "plan.h"

#define CHK_MAX_INLINE_DEPTH 32 /* groups inlined inside groups */
#define CHK_MAX_PARAMS 256      /* parameters of one task, group or flow */
#define CHK_MAX_ARGS 256        /* arguments of one call */
#define CHK_MAX_EXPR_DEPTH 200  /* nesting of flow-level expressions */
/* nodes in one plan: group inlining can multiply them, so the limit grows with the
 * source: CHK_BASE_NODES + CHK_NODES_PER_BYTE per source byte, at most CHK_MAX_NODES */
#define CHK_BASE_NODES 200000u
#define CHK_NODES_PER_BYTE 10u
#define CHK_MAX_NODES 10000000u
#define CHK_MAX_LIB_BYTES (1u << 30) /* a larger library file is not read */

/* string -> int map on the one hash table (htab.h); keys are borrowed */
typedef struct chk_map {
    struct chk_entry { const char *key; int val; } *e; /* the entries, in the order added */
    int cap, n;                                         /* room in e, entries */
    fl_htab tab;                                        /* a key's hash -> its index in e */
} chk_map;

/* 0, or -1 when out of memory or key is NULL (an allocation that failed) */
int chk_map_put(fl_ctx *ctx, chk_map *m, const char *key, int val);
int chk_map_get(const chk_map *m, const char *key); /* -1 when absent */
void chk_map_free(fl_ctx *ctx, chk_map *m);

/* a top-level declaration */
typedef enum chk_decl_kind { DK_LIB, DK_TASK, DK_TYPE, DK_FLOW, DK_GROUP } chk_decl_kind;

typedef struct chk_decl {
    chk_decl_kind kind;   /* what it declares */
    const fl_node *ast; /* its declaration */
    int mod;              /* the module that declares it (index into ctx->mods) */
    const char *qname;    /* its name qualified by its module ("common.clean"; the plain
                             name in the program itself): the name the plan records */
    uint32_t index;       /* LIB: plan lib; TASK: plan task; FLOW/GROUP: plan graph;
                             TYPE: resolved type (PLAN_NONE until resolved) */
    int state;            /* TYPE: 0 unresolved, 1 resolving, 2 done, 3 failed */
    bool reported;        /* GROUP: its body was walked with the real diag (errors shown) */
    bool bad;             /* its declaration or body had errors (callers stay quiet) */
    bool inlining;        /* GROUP: being inlined right now (recursion check) */
    struct elf_symtab *syms; /* LIB: symbols when the file was found and read */
} chk_decl;

/* one `import` of a module: the name it is used by, where, and the file */
typedef struct chk_import {
    const char *alias;  /* `as` name, or the file's stem, or "std" */
    const fl_node *at;  /* the IMPORT declaration */
    int mod;            /* the imported module (index into ctx->mods), or -1: it could not
                           be loaded (reported; its uses stay quiet) */
} chk_import;

/* one source file of the compilation (check_module.c): 0 is the program */
typedef struct chk_module {
    const char *path;   /* as diagnostics name it (owned, except module 0's) */
    char *real;         /* its realpath (owned), or NULL: the file's identity */
    const char *prefix; /* qualifies its declarations: "" for the program, "common." (owned) */
    const char *src;    /* its text (owned, except module 0's) */
    size_t len;         /* its length */
    const fl_node *prog; /* its PROGRAM node, or NULL after syntax errors */
    uint8_t sha256[32]; /* hash of src (recorded in the plan) */
    chk_import *imports; /* what it imports, in source order (owned) */
    int nimports, capimports;
    chk_map aliases;    /* alias -> index in imports */
} chk_module;

/* what an expression evaluates to */
typedef enum chk_val_kind { CV_ERR, CV_NODE, CV_TASK, CV_GROUP } chk_val_kind;

typedef struct chk_val {
    chk_val_kind kind; /* CV_ERR: already reported */
    uint32_t type;     /* NODE: the value's type */
    uint32_t node;     /* NODE: plan node */
    uint32_t ref;      /* TASK: plan task; GROUP: index into ctx->decls */
    uint32_t *bound;   /* TASK/GROUP: per parameter, the node bound by .partial, or
                          PLAN_NONE (arena array of nparams), or NULL: nothing bound */
    bool fresh;        /* TASK: a combine made by the expression just evaluated */
} chk_val;

/* one name visible in a body */
typedef struct chk_local {
    const char *name;  /* the name */
    fl_span span;    /* where it was bound */
    chk_val val;       /* its value */
} chk_local;

typedef struct chk_scope {
    chk_local *items;  /* from the context (fl_malloc) */
    int n, cap;        /* used, allocated */
    chk_map map;       /* name -> index in items */
    chk_map later;     /* let names of this body not bound yet -> statement index */
    const fl_nodes *stmts; /* the body's statements (for notes) */
    const char *prefix;/* inlined group: its binding's path ("g", "outer/inner") prefixed
                          with '/' to node names, else NULL */
    chk_map calls;     /* unbound calls named so far in this body: task/group name -> count
                          (instance names add, add#2, ...; keys in the arena) */
} chk_scope;

typedef struct chk_ctx {
    fl_plan *plan;            /* the plan being built */
    fl_diag *diag;            /* the real diagnostics */
    fl_diag mute;             /* diagnostics of silent re-walks (output discarded) */
    fl_diag *d;               /* current: diag or &mute */
    const flowc_options *opt;   /* command line */
    fl_ctx *ctx;                /* the compilation's context: every allocation, and out of
                                   memory (chk_oom) */
    ast_arena *ar;              /* scratch memory of the compilation */
    expr_ctx ex;                /* for the expression module (diag follows d) */
    chk_module *mods;           /* the program and the files it imports (check_module.c) */
    int nmods, capmods;         /* used, allocated */
    int mod;                    /* the module whose code is being checked */
    struct chk_locrun { uint32_t first_loc; int mod; } *locruns; /* from first_loc on, plan
                                   locs are in mod (until the next run): each switch of
                                   module opens a run (chk_enter_module) */
    int nlocruns, caplocruns;   /* used, allocated */
    chk_decl *decls;            /* top-level declarations in source order (from ctx) */
    int ndecls;                 /* their number */
    chk_map names;              /* qualified declaration name -> index in decls */
    chk_map combines;           /* generated combine name -> how many more share it */
    const char **cand;          /* scratch for "did you mean" candidate lists */
    int ncand, capcand;         /* used, allocated */
    int depth;                  /* expression nesting (bounded) */
    int inline_depth;           /* groups being inlined */
    uint32_t node_limit;        /* nodes the plan may hold (see CHK_MAX_NODES) */
    uint32_t nodes_replayed;    /* nodes of the bodies a memo told again (not in the plan) */
    const char *const_what;     /* what a constant being checked is for, or NULL */
    const fl_node *bind_expr; /* the expression a `let` being checked binds directly ... */
    const char *bind_name;      /* ... and its name: a call that is bind_expr takes that name */
    uint32_t bind_type;         /* ... and its declared type (let x: T = e), else PLAN_NONE */
    bool too_big;               /* node_limit was reached (reported once) */
    struct flowc_memo *memo;    /* flowc lsp: flow bodies kept between compiles
                                   (check_memo.c), or NULL */
    struct chk_obs_memo *obs_memo; /* texts told to the observer, by what they describe
                                      (check_body.c; NULL until one is kept) */
    uint32_t t_void, t_int, t_float, t_bool, t_str, t_path, t_dir, t_date, t_dur; /* types */
} chk_ctx;

/* Out of memory so far in this compilation: an allocation failed somewhere (it
 * returned NULL, the caller gave up on that piece and reported nothing). The
 * driver stops at the next pass; flowc_compile returns NULL. */
static inline bool chk_oom(const chk_ctx *c) {
    return c->ctx->errcode == FL_ENOMEM;
}

/* compile.c: helpers every checker file uses */
void chk_cand_reset(chk_ctx *c);                /* empty the "did you mean" candidates */
void chk_cand_add(chk_ctx *c, const char *name); /* add one candidate (borrowed) */
/* "did you mean 'x'?" (written into buf) for the closest candidate, or NULL */
const char *chk_hint_closest(chk_ctx *c, const char *name, char *buf, size_t len);
uint32_t chk_loc(chk_ctx *c, fl_span sp);     /* the span as a plan location */
/* parameters of a task, flow or group appended to plan->params: [*first, *first + *n) */
void chk_params(chk_ctx *c, const fl_nodes *ps, uint32_t *first, uint32_t *n);
/* a top-level name of the current module, or NULL */
chk_decl *chk_find_decl(chk_ctx *c, const char *name);

/* check_module.c: imports and module-qualified names */
/* Load every file the program imports (breadth-first, each once); errors reported. */
void chk_modules_load(chk_ctx *c, const fl_node *prog);
void chk_modules_record(chk_ctx *c); /* the imported sources into the plan */
void chk_modules_free(chk_ctx *c);
/* make module m current (names, diagnostics' file); returns the previous one */
int chk_enter_module(chk_ctx *c, int m);
chk_decl *chk_find_decl_in(chk_ctx *c, int m, const char *name); /* NULL when absent */
/* the module the current module imports as alias, or -1 (not an import, or one that
 * could not be loaded) */
int chk_module_of_alias(chk_ctx *c, const char *alias);
/* the import of the current module named alias (loaded or not), or NULL */
const chk_import *chk_import_of_alias(chk_ctx *c, const char *alias);
/* name, bound at `at` as a `what` ("task", "parameter"), is the name of an import of the
 * current module: reported (both positions), true */
bool chk_hides_import(chk_ctx *c, const char *name, fl_span at, const char *what);
/* alias.name from the current module: NULL (reported) when the module has no such name,
 * NULL (silent) when alias is not an import */
chk_decl *chk_find_qualified(chk_ctx *c, const char *alias, const char *name, fl_span at);

/* check_types.c */
/* a type as the user reads it ("nothing (void)", "[str]", "{a: int}") into buf */
const char *chk_type_text(chk_ctx *c, uint32_t t, char *buf, size_t len);
uint32_t chk_resolve_type(chk_ctx *c, const fl_node *t); /* PLAN_NONE after an error */
/* a declared `type`, resolved once (use: where it is used, for the cycle error) */
uint32_t chk_resolve_decl_type(chk_ctx *c, chk_decl *dc, const fl_node *use);

/* check_const.c */
bool chk_is_const(const fl_node *e); /* a literal, or a list/record of them */
/* e as a plan value of type want (PLAN_NONE: its own type); PLAN_NONE when it does
 * not fit (reported when report is true) */
uint32_t chk_const_value(chk_ctx *c, const fl_node *e, uint32_t want, bool report);
/* the text of a STR node without interpolation (arena memory), or NULL */
const char *chk_str_text(chk_ctx *c, const fl_node *e, bool report);

/* check_options.c */
const char *const *chk_option_names(int *n); /* the task options, as `with {...}` names them */
void chk_task_options(chk_ctx *c, uint32_t task, const fl_nodes *opts);
/* The well-formed names of the first `secrets:` option among opts (arena memory), at
 * most max; errors are left to chk_task_options. */
#define CHK_MAX_SECRETS 64
int chk_task_secret_names(chk_ctx *c, const fl_nodes *opts, const char **names, int max);

/* check_schedule.c: the schedule of flow declaration fl, stored in plan graph `graph` */
void chk_schedule(chk_ctx *c, const fl_node *fl, uint32_t graph);

/* check_library.c: a library declaration, lowered to a plan lib (dc->index) */
void chk_library(chk_ctx *c, chk_decl *dc);
/* the folder part of path ("." when it has none), or NULL when out of memory */
char *chk_dir_of(fl_ctx *ctx, const char *path);
/* path of target relative to folder base (both absolute and canonical), or NULL */
char *chk_relative_to(fl_ctx *ctx, const char *base, const char *target);

/* check_body.c */
void chk_body(chk_ctx *c, chk_decl *dc);
/* told to the observer (compile.h), if any: a task, group or flow declaration's
 * signature; a name at `use` that names declaration dc; type t named `name` at `at` */
void chk_observe_decl(chk_ctx *c, chk_decl *dc);
void chk_observe_ref(chk_ctx *c, fl_span use, const chk_decl *dc);
void chk_observe_type(chk_ctx *c, fl_span at, const char *name, uint32_t t);
void chk_observe_free(chk_ctx *c); /* what the observer's helpers kept */

/* how many combines of the same halves (name "combine(a,b)") came before this one, -1
 * when none; counts this one (told to the memo) */
int chk_combine_count(chk_ctx *c, const char *name);

/* check_memo.c: flow bodies kept between compiles (flowc lsp; the design is there).
 * Every call does nothing when the compile has no memo (c->memo NULL). */
void chk_memo_begin(chk_ctx *c, const flowc_options *opt); /* wraps the sink and observer */
void chk_memo_env(chk_ctx *c);   /* after the declarations: the environment's digest */
/* before a flow's body: true when it was replayed (do not check it), else it is being
 * recorded until chk_memo_flow_end */
bool chk_memo_flow(chk_ctx *c, chk_decl *dc);
void chk_memo_flow_end(chk_ctx *c, chk_decl *dc);
void chk_memo_taint(chk_ctx *c); /* the body being recorded changed what others see */
void chk_memo_combine(chk_ctx *c, const char *name); /* a combine name was counted */
void chk_memo_end(chk_ctx *c);   /* unwraps; drops the flows this compile did not see */

/* ---- check_typed.c: std's typed table tasks (read_csv, read_json, write_csv, write_json) */
typedef enum chk_typed {
    TYPED_NONE,
    TYPED_READ_CSV,
    TYPED_READ_JSON,
    TYPED_WRITE_CSV,
    TYPED_WRITE_JSON
} chk_typed;
chk_typed chk_typed_kind(chk_ctx *c, uint32_t task); /* TYPED_NONE for any other task */
/* The copy of the typed task specialised to type t (reading t, or writing its first
 * parameter as t), with the hidden parameter type_; PLAN_NONE after an error at `at`.
 * The copy reading one record returns it in a list of one (chk_typed_one): the caller
 * opens it (an elem node; a flatten after .expand). */
uint32_t chk_typed_task(chk_ctx *c, uint32_t task, chk_typed kind, uint32_t t, fl_span at);
bool chk_typed_one(chk_ctx *c, uint32_t task); /* a copy reading one record */

#endif
