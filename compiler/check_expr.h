/*
 * check_expr.h — lambdas and interpolated strings: type-checking (language.md §8, §2,
 * §4 sh commands) and lowering to the plan's typed stack code (runtime/core/expr_ops.h).
 *
 * The checker (compiler/check*.c) calls these wherever a lambda or an sh command
 * appears: map, filter, stitch, label, `= sh "..."`. Each call appends one
 * plan_lambda (its code, constants, locs and parameter types) to cx->plan and
 * returns its index. Errors go to cx->diag with the exact span; on error nothing
 * is left in the plan (the arrays are rolled back) and PLAN_NONE is returned.
 *
 * Ownership: the AST is borrowed (it lives in the compilation's arena); the plan is
 * the caller's. No state survives a call apart from what it appended to the plan.
 */
#ifndef FLOWC_CHECK_EXPR_H
#define FLOWC_CHECK_EXPR_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"
#include "plan.h"

/* Limits (each overstepped limit is a compile error naming it). */
#define EXPR_MAX_DEPTH 64   /* nesting of sub-expressions inside one lambda */
#define EXPR_MAX_STACK 256  /* operand-stack slots one lambda may need at run time */
#define EXPR_MAX_CODE 65536 /* instructions in one lambda */
#define EXPR_MAX_PARAMS 32  /* parameters of one lambda (an sh command: with `out`) */

typedef struct expr_ctx {
    fl_plan *plan; /* where lambdas, code, constants, types and locs are appended */
    fl_diag *diag; /* where errors go */
    /* expr_lower_sh: the secret names the task declares (`secrets: [...]`), for
     * `{secret.NAME}` in its command; NULL / 0: none */
    const char *const *secrets;
    int nsecrets;
} expr_ctx;

/* Type-check an AST_LAMBDA whose parameter types come from context (ptypes[0..nparams)),
 * lower it to a plan lambda. want_ret: the required result type, or PLAN_NONE to
 * infer it. The lambda must declare exactly nparams parameters (else an arity error).
 * Returns the plan lambda index and *ret = its result type (ret may be NULL); on error
 * reports through diag and returns PLAN_NONE. */
uint32_t expr_lower_lambda(expr_ctx *cx, const fl_node *lambda, const uint32_t *ptypes,
                           int nparams, uint32_t want_ret, uint32_t *ret);

/* As expr_lower_lambda, but the lambda may declare only the FIRST k of the offered
 * parameters, 1 <= k <= nparams (a task's `label`: it receives the instance's arguments
 * in parameter order). The plan lambda has k parameters: call it with the first k
 * arguments. More than nparams (or zero) declared parameters is an arity error. */
uint32_t expr_lower_lambda_prefix(expr_ctx *cx, const fl_node *lambda, const uint32_t *ptypes,
                                  int nparams, uint32_t want_ret, uint32_t *ret);

/* An sh command (an AST_STR): interpolations may use the task's parameters
 * (pnames/ptypes[0..nparams)) and, when has_out, `out`; each interpolated value is
 * converted to str (TOSTR) and shell-quoted (SHQUOTE, POSIX single quotes); literal
 * parts are kept as written. Returns a lambda over (params..., out: str) -> str (the
 * `out` parameter is always present, the last one, even when !has_out), or PLAN_NONE
 * after reporting an error. `{secret.NAME}` (NAME among cx->secrets) becomes the literal
 * text "$FLOW_SECRET_<NAME upper-cased>" (double-quoted): the shell expands it, in the
 * task's own worker, to the path of the secret's file (docs/secrets.md); the plan never
 * holds more than the name. A ptypes entry PLAN_NONE is a parameter whose type was in
 * error (reported already): using it fails the command without a second message. */
uint32_t expr_lower_sh(expr_ctx *cx, const fl_node *cmd, const char *const *pnames,
                       const uint32_t *ptypes, int nparams, bool has_out);

/* Is `name` one of the lambda built-ins (len basename dirname stem ext join str int
 * float upper lower replace contains starts_with ends_with)? */
bool expr_is_builtin(const char *name);

#endif /* FLOWC_CHECK_EXPR_H */
