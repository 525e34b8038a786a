/*
 * compile.h — from a parsed program to a plan: name resolution, type checking
 * (language.md §4–§8), lowering. The entry point of the checker (compile.c and
 * compiler/check_*.c; the design is in check.h).
 */
#ifndef FLOW_COMPILE_H
#define FLOW_COMPILE_H

#include "ast.h"
#include "diag.h"
#include "plan.h"

/* What the checker found, told as it goes (flowc lsp: hover, go-to-definition), and
 * where an import's text comes from; every callback may be NULL. Modules are numbered as the checker loads them: 0 is the
 * program, file is as its diagnostics name it; the strings live until the call returns.
 * Only the walk that reports errors is told (a group inlined again is not). */
typedef struct flowc_observer {
    void *user;
    /* module mod (file, realpath or NULL) was loaded by the import at `at` of module from */
    void (*module)(void *user, int mod, const char *file, const char *real, int from, fl_span at);
    /* what stands at `at` in module mod: a type or a signature, as the user reads it */
    void (*hover)(void *user, int mod, fl_span at, const char *text);
    /* the name used at `use` in module mod is bound at `def` in module def_mod */
    void (*ref)(void *user, int mod, fl_span use, int def_mod, fl_span def);
    /* the text to compile for the imported file whose realpath is real (an editor's
     * unsaved buffer), its length in *len; NULL: read the file. Copied at once. */
    const char *(*source)(void *user, const char *real, size_t *len);
} flowc_observer;

/* What checking each flow body told, kept from one compile to the next so that an
 * unchanged body is not checked again (flowc lsp; compiler/check_memo.c). One memo per
 * document, given to every compile of it; used only when the diagnostics have a sink. */
typedef struct flowc_memo flowc_memo;
flowc_memo *flowc_memo_new(void); /* NULL when out of memory */
void flowc_memo_free(flowc_memo *m);
int flowc_memo_replayed(const flowc_memo *m); /* flows told again by the last compile */

typedef struct flowc_options {
    const char *source_path; /* the .flow file as given on the command line */
    const char *plan_path;   /* where the plan will be written (library paths are stored
                                relative to its folder); NULL with --check and flowc lsp,
                                which write no plan: the content hashes of the source, its
                                modules and libraries are then not computed (zeros) */
    const char *src;         /* the source text and its length (for the source hash) */
    size_t len;
    fl_ctx *ctx;             /* where the compiler allocates (NULL: fl_ctx_default()); its
                                error sink is cleared first, then records only allocation
                                failures */
    const char *const *include; /* -I folders, searched for imports in order (borrowed) */
    int n_include;              /* their number */
    const char *share_dir;      /* the installed share/flow/ folder, or NULL */
    const flowc_observer *obs;  /* told what the checker finds, or NULL */
    flowc_memo *memo;           /* flow bodies kept between compiles, or NULL; with one
                                   (and a diagnostics sink) no plan is returned */
} flowc_options;

/* Check prog and lower it. Errors and warnings go to diag; returns NULL when
 * any error was reported (or a memo was used), else a plan the caller frees with plan_free.
 * Out of memory: NULL, the context's errcode is FL_ENOMEM, diag stayed silent
 * from the failure on (diag.h), and everything the compiler allocated is freed. */
fl_plan *flowc_compile(const fl_node *prog, fl_diag *diag, const flowc_options *opt);

#endif
