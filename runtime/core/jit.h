/*
 * jit.h — native code for the plan's lambdas (LLVM ORC LLJIT), and the one entry
 * point through which the runtime runs a lambda, compiled or interpreted.
 *
 * jit_attach compiles every lambda of a loaded plan into one LLVM module (one JIT
 * per plan, once per load) and hangs the result on plan->jit; expr_run then calls
 * the native function of a lambda when there is one and the interpreter
 * (expr_eval) otherwise. Results, errors (message and loc) and reference counts are
 * identical in both engines: see docs/jit.md. Built with LLVM=0, jit_attach fails
 * with "built without LLVM" and everything is interpreted.
 *
 * The code generator is a module of its own (jit.c, libflow-jit.so, linked with
 * LLVM), opened by jit_attach (jit_load.c) the first time a plan with lambdas asks
 * for native code; jit_abi.h is the table between them. Everything else declared
 * here is libflow's (jit_load.c) and never loads LLVM.
 */
#ifndef FLOW_JIT_H
#define FLOW_JIT_H

#include <stddef.h>
#include <stdint.h>

#include "expr.h"
#include "plan.h"

#define JIT_MAX_LAMBDAS 1000000 /* more lambdas than this in one plan: interpret them all */
#define JIT_MAX_CODE 65536      /* a lambda longer than this stays interpreted */

typedef struct expr_jit expr_jit;

/* Figures of one compilation (for --jit-stats style reports and the benchmark). */
typedef struct jit_stats {
    double create_ms;    /* creating the LLJIT */
    double build_ms;     /* building the IR of every lambda */
    double opt_ms;       /* the optimisation pipeline */
    double codegen_ms;   /* machine code: adding the module and looking every lambda up */
    uint32_t compiled;   /* lambdas with native code */
    uint32_t helper_ops; /* instructions handed to the interpreter's expr_step */
    uint32_t kernels;    /* fused range loops (jit_range_kernel) */
    uint32_t thunks;     /* direct-call thunks of C tasks (jit_task_thunk) */
} jit_stats;

/* 1 when this build has the JIT (LLVM=1: a module to load), else 0. */
int jit_available(void);

/* Compile every lambda of p (which must have passed expr_verify) and attach the
 * result to p->jit. 0, or -1 with one line in err (p->jit stays NULL and lambdas
 * are interpreted). A plan without lambdas: 0 at once, nothing loaded; else the
 * JIT module is loaded first (once per process): a module that is missing or
 * refuses is -1 with "JIT module PATH: REASON" in err. */
int jit_attach(fl_plan *p, char *err, size_t errlen);

/* Detach and free p's native code (before plan_free). No-op when there is none. */
void jit_detach(fl_plan *p);

/* The figures of p's compilation; zeros when p has no JIT. */
jit_stats jit_stats_of(const fl_plan *p);

/* The native code of lambda lam (same contract as expr_eval, minus the plan and the
 * lambda index), or NULL when it has none: for loops that call one lambda many
 * times (the scheduler's fused chains). */
typedef int (*expr_native)(const fl_val *args, fl_val *out, expr_error *err);
expr_native jit_native(const fl_plan *p, uint32_t lam);

/* A fused loop over range(start, start+n) (the scheduler's fusion, sched.c): each
 * element goes through the chain of map/filter lambdas ending at a plan node, all
 * inlined into one native loop. The kept values are written to items (unless NULL,
 * for len) and counted in *kept. On a lambda's run-time error: -1, err as the
 * interpreter gives it, *fail_stage the failing stage (0 = the innermost) and
 * *kept the values written so far; else 0. */
typedef int (*jit_kernel)(int64_t start, int64_t n, int64_t *kept, fl_val *items,
                          int32_t *fail_stage, expr_error *err);

/* The fused loop of plan node `node` (a map, filter or len) over a chain of
 * nstages map/filter stages whose source is a range, or NULL: built only for
 * chains of lambdas over scalars (int, float, bool, duration). */
jit_kernel jit_range_kernel(const fl_plan *p, uint32_t node, int *nstages);

/* A direct-call thunk for C task ti: calls fn with the C arguments avalue[i] point
 * at and stores the result in rbuf, exactly as ffi_call(&cif, fn, rbuf, avalue)
 * with the task's prepared cif would (a bool result widened to ffi_arg). Built for
 * tasks whose parameters and result are int, float, bool, duration or str-like
 * (result also void); NULL for the others, which keep libffi. */
typedef void (*jit_thunk)(void *fn, void *rbuf, void **avalue);
jit_thunk jit_task_thunk(const fl_plan *p, uint32_t ti);

/* Run lambda `lam` on args exactly as expr_eval does (same contract), with the
 * native code when p has it. The single dispatch point of the runtime. */
int expr_run(const fl_plan *p, uint32_t lam, const fl_val *args, fl_val *out,
             expr_error *err);

#endif /* FLOW_JIT_H */
