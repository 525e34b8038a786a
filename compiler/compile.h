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

typedef struct flowc_options {
    const char *source_path; /* the .flow file as given on the command line */
    const char *plan_path;   /* where the plan will be written (library paths are stored
                                relative to its folder); NULL with --check */
    const char *src;         /* the source text and its length (for the source hash) */
    size_t len;
    fl_ctx *ctx;             /* where the compiler allocates (NULL: fl_ctx_default()); its
                                error sink is cleared first, then records only allocation
                                failures */
    const char *const *include; /* -I folders, searched for imports in order (borrowed) */
    int n_include;              /* their number */
    const char *share_dir;      /* the installed share/flow/ folder, or NULL */
} flowc_options;

/* Check prog and lower it. Errors and warnings go to diag; returns NULL when
 * any error was reported, else a plan the caller frees with plan_free.
 * Out of memory: NULL, the context's errcode is FL_ENOMEM, diag stayed silent
 * from the failure on (diag.h), and everything the compiler allocated is freed. */
fl_plan *flowc_compile(const fl_node *prog, fl_diag *diag, const flowc_options *opt);

#endif
