/*
 * jit_abi.h — the interface between libflow and its JIT module (libflow-jit.so).
 *
 * DESIGN
 *   The JIT (jit.c, linked with LLVM) is not part of libflow: it is a shared
 *   object loaded with dlopen the first time a plan with lambdas asks for native
 *   code (jit_load.c), so that a program that never meets a lambda never maps
 *   libLLVM. libflow exports only the flow_* API, so the module cannot link
 *   against libflow's internals: when it is loaded, libflow hands it a table of
 *   the few runtime functions it needs (jit_rt_table: the interpreter's expr_step,
 *   which the generated code calls, expr_stack_types, and the allocator, which
 *   goes through the plan's context). The module exports one symbol,
 *   JIT_MODULE_ENTRY, which checks the table's ABI version and sizes and fills a
 *   jit_module_ops (attach and detach) — or refuses with one line.
 *
 *   Both sides are built from the same headers (plan.h, expr.h); the ABI version
 *   changes whenever this table, struct expr_jit or the plan's layout changes in a
 *   way the other side would misread. sizeof(fl_plan) and sizeof(struct
 *   expr_jit) travel in the table as a second check against a module from another
 *   build.
 *
 *   struct expr_jit is made and freed by the module (through the table's
 *   allocator) and read by libflow on the hot path (expr_run, jit_native ...):
 *   no call through a table there.
 *
 *   Layer: core.
 */
#ifndef FLOW_JIT_ABI_H
#define FLOW_JIT_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "expr.h"
#include "jit.h"
#include "plan.h"

#define JIT_ABI_VERSION 1
#define JIT_MODULE_NAME "libflow-jit.so"
#define JIT_MODULE_ENTRY "flow_jit_module_init"

/* What the module attaches to a plan (p->jit). */
struct expr_jit {
    expr_native *fn;  /* fn[lam]: native code, or NULL (interpreted) */
    uint32_t n;       /* lambdas */
    jit_kernel *kern; /* kern[node]: fused range loop ending at node, or NULL */
    uint8_t *kstages; /* kstages[node]: its number of stages */
    jit_thunk *thunk; /* thunk[task]: direct-call thunk of a C task, or NULL */
    void *lljit;      /* the module's own (the LLVMOrcLLJITRef that owns the code) */
    jit_stats stats;  /* figures of the compilation */
};

/* The runtime as the module sees it: given by libflow at load time. */
typedef struct jit_rt_table {
    uint32_t abi;       /* JIT_ABI_VERSION */
    uint32_t size;      /* sizeof(jit_rt_table) */
    uint32_t plan_size; /* sizeof(fl_plan) */
    uint32_t jit_size;  /* sizeof(struct expr_jit) */
    /* the interpreter: one instruction (called by the generated code), and the
     * static stack types before an instruction (expr.h) */
    int (*expr_step)(const fl_plan *p, uint32_t lam, uint32_t pc, const fl_val *args,
                     fl_val *st, int *sp, expr_error *err);
    int (*expr_stack_types)(const fl_plan *p, uint32_t lam, uint32_t pc, uint32_t *types,
                            int *n);
    /* the allocator of a context (ctx.h's fl_malloc, fl_calloc, fl_free) */
    void *(*malloc)(fl_ctx *c, size_t n);
    void *(*calloc)(fl_ctx *c, size_t n, size_t size);
    void (*free)(fl_ctx *c, void *q);
} jit_rt_table;

/* What the module gives back. */
typedef struct jit_module_ops {
    uint32_t abi; /* JIT_ABI_VERSION */
    /* Compile every lambda of p (verified) into a new expr_jit: 0 and *out, or -1
     * with one line in err. */
    int (*attach)(fl_plan *p, expr_jit **out, char *err, size_t errlen);
    /* Free what attach made (p is the plan it was made for). */
    void (*detach)(fl_plan *p, expr_jit *j);
} jit_module_ops;

/* The module's one exported function (named JIT_MODULE_ENTRY): keeps rt (which
 * outlives the module), fills *ops; 0, or -1 with one line in err when rt is not
 * the table it was built for. */
typedef int (*jit_module_init_fn)(const jit_rt_table *rt, jit_module_ops *ops, char *err,
                                  size_t errlen);

#endif /* FLOW_JIT_ABI_H */
