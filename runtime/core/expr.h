/*
 * expr.h — running the plan's expression code (lambdas and sh commands).
 *
 * The interpreter (expr_interp.c) is the reference semantics of runtime/core/expr_ops.h;
 * the JIT must give identical results. It is reentrant and thread-safe (no state
 * outside the call; the plan is only read), keeps its operand stack on the C stack,
 * and allocates nothing for lambdas over scalars.
 */
#ifndef FLOW_EXPR_RT_H
#define FLOW_EXPR_RT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plan.h"
#include "value.h"

/* Bounds the interpreter relies on (the compiler never emits more; expr_verify
 * rejects code that would need more). */
#define EXPR_RT_MAX_STACK 256                /* operand-stack slots */
#define EXPR_RT_MAX_PARAMS 64                /* parameters of one lambda */
#ifndef EXPR_RT_MAX_STRING                   /* (a test build may lower it) */
#define EXPR_RT_MAX_STRING ((size_t)1 << 30) /* bytes of a string an expression builds */
#endif

typedef struct expr_error {
    uint32_t loc;  /* plan loc of the failing instruction (PLAN_NONE if unknown) */
    char msg[200]; /* e.g. "integer overflow in '*'" */
} expr_error;

/* The message of an instruction that could not allocate its value (the plan's
 * context says so too): not the lambda's fault, so callers end the run rather than
 * fail the instance. */
#define EXPR_OOM_MSG "out of memory"
static inline int expr_error_is_oom(const expr_error *e) {
    return strcmp(e->msg, EXPR_OOM_MSG) == 0;
}

/* Run lambda `lam` on args (borrowed; of the lambda's parameter types, one per
 * parameter). Returns 0 and a new reference in *out, or -1 with err filled (and
 * *out untouched). Thread-safe; no allocation for scalar-only lambdas. */
int expr_eval(const fl_plan *p, uint32_t lam, const fl_val *args, fl_val *out,
              expr_error *err);

/* Run the single instruction pc (relative; not a jump nor RET) of lambda lam on
 * the operand stack st[0..*sp), exactly as expr_eval would: it pops its operands,
 * pushes its result and updates *sp. On a run-time error: -1, err filled and every
 * value on the stack released (as expr_eval does), else 0. For engines that run
 * most instructions themselves and hand the others (and every error path) to the
 * interpreter, so that both share one definition of each instruction. */
int expr_step(const fl_plan *p, uint32_t lam, uint32_t pc, const fl_val *args, fl_val *st,
              int *sp, expr_error *err);

/* Format err as "file.flow:12:7: integer overflow in '*'" (the file from
 * plan->source, the position from plan->locs[err->loc]). Returns buf. */
char *expr_error_format(const fl_plan *p, const expr_error *err, char *buf, size_t len);

/* Check that lambda `lam` is well-formed code the interpreter may run: opcodes and
 * operands in range, jumps inside the lambda, operand types consistent along every
 * path, stack within EXPR_RT_MAX_STACK, ends in RET of the lambda's result type.
 * For plans read from disk (call once per lambda after plan_read). 0 when fine, else
 * -1 and one line in err. */
int expr_verify(const fl_plan *p, uint32_t lam, char *err, size_t errlen);

/* The types of the values on the operand stack just before instruction pc (relative)
 * of lambda lam: types[0..*n), bottom first. Scalars may be given as EXPR_TY_WORD
 * (an int, bool or duration) or EXPR_TY_FLOAT instead of a plan type. Used to release
 * the stack after a run-time error, and by expr_verify. 0, or -1 if pc is unreachable
 * or the code is malformed. */
#define EXPR_TY_WORD (UINT32_MAX - 1)
#define EXPR_TY_FLOAT (UINT32_MAX - 2)
int expr_stack_types(const fl_plan *p, uint32_t lam, uint32_t pc, uint32_t *types, int *n);

#endif /* FLOW_EXPR_RT_H */
