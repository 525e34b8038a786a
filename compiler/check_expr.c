/*
 * check_expr.c — type-checking and lowering of lambdas and interpolated strings (see
 * check_expr.h).
 *
 * DESIGN
 * One recursive pass over the expression does both jobs: lower(e) checks e, appends
 * its code to plan->code (typed opcodes of runtime/core/expr_ops.h) and returns its type,
 * or PLAN_NONE after reporting an error (callers then stay quiet, so one mistake
 * gives one message). The pass tracks the operand-stack height of the code it
 * emits, so the lambda's stack need is known exactly and bounded (EXPR_MAX_STACK),
 * and a nesting counter bounds recursion (EXPR_MAX_DEPTH).
 *
 * Jumps are emitted with a placeholder target and patched when the target is known;
 * targets are relative to the lambda's first instruction. Only forward jumps exist.
 *
 * Mixed int/float arithmetic and comparisons promote the int side (I2F, which works
 * in place on a slot below the top, so the right operand can be converted after
 * both are pushed). An `if` whose branches are int and float converts the int one;
 * when that is the then-branch, its jump goes to a conversion stub appended after
 * the else-branch, so code is only ever appended, never moved.
 *
 * On any error, the plan's arrays that this call appended to are rolled back.
 */
#include "check_expr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "expr_ops.h"
#include "types.h"

/* INTERP gathers at most this many parts at once (long strings are folded). */
#define EXPR_INTERP_CHUNK 32

typedef struct lw {
    expr_ctx *cx;             /* the caller's context */
    fl_plan *p;             /* = cx->plan */
    uint32_t first;           /* index in plan->code of the lambda's first instruction */
    const char *const *names; /* parameter names */
    const uint32_t *ptypes;   /* parameter types */
    int nparams;              /* number of parameters */
    bool sh;                  /* lowering an sh command (for names and messages) */
    bool quote;               /* the string being lowered is the command itself: its
                                 interpolations are shell-quoted (not nested strings) */
    bool has_out;             /* sh: `out` may be used */
    int depth;                /* current nesting of lower() calls */
    int sp, maxsp;            /* operand-stack height now and at most */
    bool failed;              /* an error was reported */
    bool limit_reported;      /* a limit error was reported (only one) */
    fl_span loc_span;       /* span of the last loc added (to share it) */
    uint32_t loc;             /* that loc, or PLAN_NONE */
    uint32_t t_int, t_float, t_bool, t_str, t_path, t_date, t_dur; /* basic types */
} lw;

/* ---- small helpers ------------------------------------------------------------ */

static const char *tname(lw *w, uint32_t t, char *buf, size_t len) {
    plan_type_text(w->p, t, buf, len);
    return buf;
}

/* an error at sp; marks the lambda failed (it will be rolled back) */
static void err(lw *w, fl_span sp, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err(lw *w, fl_span sp, const char *hint, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->failed = true;
    diag_error(w->cx->diag, sp, hint, "%s", msg);
}

/* a limit was overstepped: reported once per lambda, however deep the recursion */
static void limit_err(lw *w, fl_span sp, const char *fmt, int limit) {
    if (w->limit_reported) return;
    w->limit_reported = true;
    w->failed = true;
    diag_error(w->cx->diag, sp, NULL, fmt, limit);
}

static bool same_span(fl_span a, fl_span b) {
    return a.line == b.line && a.col == b.col && a.end_line == b.end_line && a.end_col == b.end_col;
}

/* the plan location of sp; consecutive instructions of one span share one entry */
static uint32_t loc_for(lw *w, fl_span sp) {
    if (w->loc != PLAN_NONE && same_span(sp, w->loc_span)) return w->loc;
    w->loc_span = sp;
    w->loc = plan_add_loc(
        w->p, (uint32_t)(sp.line > 0 ? sp.line : 0), (uint32_t)(sp.col > 0 ? sp.col : 0),
        (uint32_t)(sp.end_line > 0 ? sp.end_line : 0), (uint32_t)(sp.end_col > 0 ? sp.end_col : 0));
    return w->loc;
}

/* Append one instruction; delta = pushes - pops. Returns its index relative to the
 * lambda's first instruction. */
static uint32_t emit(lw *w, fl_expr_op op, int32_t a, uint32_t b, fl_span sp, int delta) {
    uint32_t rel = w->p->n_code - w->first;
    if (rel >= EXPR_MAX_CODE) {
        limit_err(w, sp, "expression is too large (more than %d instructions)", EXPR_MAX_CODE);
        return rel;
    }
    uint32_t i = PLAN_PUSH(w->p, code);
    w->p->code[i] = (plan_instr){(uint16_t)op, (uint16_t)b, a, loc_for(w, sp)};
    w->sp += delta;
    if (w->sp > w->maxsp) w->maxsp = w->sp;
    if (w->sp > EXPR_MAX_STACK)
        limit_err(w, sp, "expression is too large (needs more than %d stack slots)",
                  EXPR_MAX_STACK);
    return rel;
}

/* the index of the next instruction, relative to the lambda's first (a jump target) */
static uint32_t here(lw *w) {
    return w->p->n_code - w->first;
}

/* set the target of the jump emitted at `at` */
static void patch(lw *w, uint32_t at, uint32_t target) {
    if (w->first + at < w->p->n_code) w->p->code[w->first + at].a = (int32_t)target;
}

static uint32_t new_value(lw *w, uint32_t type) {
    uint32_t v = PLAN_PUSH(w->p, values);
    w->p->values[v].type = type;
    return v;
}

static bool is_k(lw *w, uint32_t t, plan_type_kind k) {
    return ty_is(w->p, t, k);
}
static bool is_str(lw *w, uint32_t t) {
    return ty_is_strlike(w->p, t);
}
static bool is_num(lw *w, uint32_t t) {
    return is_k(w, t, PT_INT) || is_k(w, t, PT_FLOAT);
}
/* values of type t own memory at run time (strings, bytes, lists, records) */
static bool is_heap(lw *w, uint32_t t) {
    return is_str(w, t) || is_k(w, t, PT_BYTES) || is_k(w, t, PT_LIST) || is_k(w, t, PT_RECORD);
}

/* Push a string constant (text of n bytes). */
static uint32_t push_str(lw *w, const char *s, size_t n, uint32_t type, fl_span sp) {
    if (memchr(s, 0, n)) {
        err(w, sp, NULL, "a string in an expression cannot hold a NUL character");
        return PLAN_NONE;
    }
    uint32_t v = new_value(w, type);
    w->p->values[v].u.s = plan_intern_str(w->p, s);
    emit(w, EOP_CONST_S, (int32_t)v, 0, sp, 1);
    return type;
}

/* push an int constant: an immediate when it fits in 32 bits (durations never do:
 * they are plan values), else a plan value loaded by index */
static void push_int(lw *w, int64_t i, uint32_t type, fl_span sp) {
    if (i >= INT32_MIN && i <= INT32_MAX && type != w->t_dur) {
        emit(w, EOP_IMM, (int32_t)i, 0, sp, 1);
        return;
    }
    uint32_t v = new_value(w, type);
    w->p->values[v].u.i = i;
    emit(w, EOP_CONST_I, (int32_t)v, 0, sp, 1);
}

static uint32_t lower(lw *w, const fl_node *e, uint32_t hint);

/* ---- names -------------------------------------------------------------------- */

static const char *const builtin_names[] = {
#define X(name, text, nargs, doc) text,
    FLOW_EXPR_BUILTINS(X)
#undef X
};
static const int builtin_arity[] = {
#define X(name, text, nargs, doc) nargs,
    FLOW_EXPR_BUILTINS(X)
#undef X
};
#define NBUILTINS ((int)EB__COUNT)

bool expr_is_builtin(const char *name) {
    for (int i = 0; i < NBUILTINS; i++)
        if (!strcmp(builtin_names[i], name)) return true;
    return false;
}

static int builtin_id(const char *name) {
    for (int i = 0; i < NBUILTINS; i++)
        if (!strcmp(builtin_names[i], name)) return i;
    return -1;
}

static uint32_t lower_name(lw *w, const fl_node *e) {
    for (int i = 0; i < w->nparams; i++)
        if (w->names[i] && !strcmp(w->names[i], e->name)) {
            uint32_t t = w->ptypes[i];
            if (t == PLAN_NONE) { /* its type was in error, reported there: no follow-on */
                w->failed = true;
                return PLAN_NONE;
            }
            emit(w, is_heap(w, t) ? EOP_PARAM_REF : EOP_PARAM, i, 0, e->span, 1);
            return t;
        }
    if (w->sh && !strcmp(e->name, "out")) {
        err(w, e->span, "only a task returning path or dir gets an output to fill",
            "'out' is not available in this command");
        return PLAN_NONE;
    }
    if (expr_is_builtin(e->name)) {
        err(w, e->span, NULL, "'%s' is a built-in function: call it, as in %s(x)", e->name,
            e->name);
        return PLAN_NONE;
    }
    char hb[160];
    const char *hint = diag_did_you_mean(e->name, w->names, w->nparams, hb, sizeof hb);
    if (w->sh)
        err(w, e->span, hint, "unknown name '%s': a command can use only the task's parameters%s",
            e->name, w->has_out ? " and 'out'" : "");
    else
        err(w, e->span, hint,
            "unknown name '%s': a lambda can use only its parameters and constants", e->name);
    return PLAN_NONE;
}

/* ---- conversions ---------------------------------------------------------------- */

/* Convert the value on top of the stack (type t) to str for interpolation. */
static uint32_t to_str(lw *w, uint32_t t, fl_span sp) {
    char b[128];
    if (is_str(w, t)) return w->t_str;
    if (is_k(w, t, PT_INT))
        emit(w, EOP_TOSTR_I, (int32_t)w->t_str, 0, sp, 0);
    else if (is_k(w, t, PT_FLOAT))
        emit(w, EOP_TOSTR_F, (int32_t)w->t_str, 0, sp, 0);
    else if (is_k(w, t, PT_BOOL))
        emit(w, EOP_TOSTR_B, (int32_t)w->t_str, 0, sp, 0);
    else {
        err(w, sp, is_k(w, t, PT_LIST) ? "join the elements first: join(xs, \" \")" : NULL,
            "cannot turn a value of type %s into a string: only int, float, bool and "
            "string-like values can be interpolated",
            tname(w, t, b, sizeof b));
        return PLAN_NONE;
    }
    return w->t_str;
}

/* Make the value of type `have` on the stack, `below` slots under the top, fit `want`
 * (int -> float promotion only). Returns false when it does not fit. */
static bool coerce(lw *w, uint32_t have, uint32_t want, int below, fl_span sp) {
    if (ty_same(w->p, have, want)) return true;
    if (is_k(w, have, PT_INT) && is_k(w, want, PT_FLOAT)) {
        emit(w, EOP_I2F, below, 0, sp, 0);
        return true;
    }
    return false;
}

/* ---- strings -------------------------------------------------------------------- */

/* `{secret.NAME}` in an sh command (unless the task has a parameter called `secret`):
 * pushes the text "$FLOW_SECRET_<NAME>" (in double quotes, so the shell makes one word of
 * the path) when the task declares NAME, else reports the error (*ok = false). Returns
 * false when `part` is not such a reference (it is lowered as usual then). */
static bool lower_secret(lw *w, const fl_node *part, bool *ok) {
    if (part->kind != AST_MEMBER || !part->a || part->a->kind != AST_NAME ||
        strcmp(part->a->name, "secret"))
        return false;
    for (int i = 0; i < w->nparams; i++)
        if (w->names[i] && !strcmp(w->names[i], "secret")) return false;
    const expr_ctx *cx = w->cx;
    for (int i = 0; i < cx->nsecrets; i++)
        if (!strcmp(cx->secrets[i], part->name)) {
            char text[100] = "\"$FLOW_SECRET_";
            size_t n = strlen(text);
            for (const char *q = part->name; *q && n + 3 < sizeof text; q++)
                text[n++] = (*q >= 'a' && *q <= 'z') ? (char)(*q - 32) : *q;
            text[n++] = '"';
            text[n] = 0;
            if (push_str(w, text, n, w->t_str, part->span) == PLAN_NONE) *ok = false;
            return true;
        }
    char hint[160];
    snprintf(hint, sizeof hint, "declare it: with {secrets: [\"%.100s\"]}", part->name);
    err(w, part->nspan, hint, "this task does not declare the secret '%s'", part->name);
    *ok = false;
    return true;
}

/* An AST_STR: literal parts and interpolated expressions, concatenated. In sh mode
 * each interpolated value is shell-quoted. */
static uint32_t lower_str(lw *w, const fl_node *e) {
    int n = 0; /* parts on the stack */
    bool ok = true;
    for (int i = 0; i < e->list.len; i++) {
        const fl_node *part = e->list.items[i];
        if (part->kind == AST_STRPART) {
            size_t len = part->ival > 0 ? (size_t)part->ival : 0;
            if (len == 0 || !part->sval) continue;
            if (push_str(w, part->sval, len, w->t_str, part->span) == PLAN_NONE) ok = false;
        } else if (w->sh && w->quote && lower_secret(w, part, &ok)) {
            /* `{secret.NAME}`: lower_secret pushed the text or reported why not */
        } else {
            bool quote = w->quote;
            w->quote = false; /* strings inside the interpolation are plain */
            uint32_t t = lower(w, part, PLAN_NONE);
            w->quote = quote;
            if (t == PLAN_NONE) {
                ok = false;
                continue;
            }
            if (quote && is_k(w, t, PT_LIST) && is_str(w, w->p->types[t].elem)) {
                /* a list of paths/strings: one quoted word per element */
                emit(w, EOP_SHQUOTE_L, (int32_t)t, 0, part->span, 0);
            } else if (to_str(w, t, part->span) == PLAN_NONE) {
                ok = false;
                continue;
            } else if (quote) {
                emit(w, EOP_SHQUOTE, (int32_t)w->t_str, 0, part->span, 0);
            }
        }
        if (++n == EXPR_INTERP_CHUNK) {
            emit(w, EOP_INTERP, (int32_t)w->t_str, (uint32_t)n, e->span, 1 - n);
            n = 1;
        }
    }
    if (!ok) return PLAN_NONE;
    if (n == 0) return push_str(w, "", 0, w->t_str, e->span);
    if (n > 1) emit(w, EOP_INTERP, (int32_t)w->t_str, (uint32_t)n, e->span, 1 - n);
    return w->t_str;
}

/* ---- operators ------------------------------------------------------------------ */

static uint32_t lower_and_or(lw *w, const fl_node *e) {
    char b1[128];
    bool is_and = e->op == OP_AND;
    uint32_t ta = lower(w, e->a, w->t_bool);
    if (ta != PLAN_NONE && !is_k(w, ta, PT_BOOL))
        err(w, e->a->span, NULL, "'%s' needs bool operands, not %s", is_and ? "and" : "or",
            tname(w, ta, b1, sizeof b1));
    uint32_t j1 = emit(w, is_and ? EOP_JUMP_IF_FALSE : EOP_JUMP_IF_TRUE, 0, 0, e->span, -1);
    uint32_t tb = lower(w, e->b, w->t_bool);
    if (tb != PLAN_NONE && !is_k(w, tb, PT_BOOL))
        err(w, e->b->span, NULL, "'%s' needs bool operands, not %s", is_and ? "and" : "or",
            tname(w, tb, b1, sizeof b1));
    uint32_t j2 = emit(w, EOP_JUMP, 0, 0, e->span, 0);
    patch(w, j1, here(w));
    w->sp--; /* the short-circuit path pushes its own constant */
    emit(w, EOP_IMM, is_and ? 0 : 1, 0, e->span, 1);
    patch(w, j2, here(w));
    if (ta == PLAN_NONE || tb == PLAN_NONE || w->failed) return PLAN_NONE;
    return w->t_bool;
}

static const fl_expr_op cmp_i[] = {EOP_EQ_I, EOP_NE_I, EOP_LT_I, EOP_LE_I, EOP_GT_I, EOP_GE_I};
static const fl_expr_op cmp_f[] = {EOP_EQ_F, EOP_NE_F, EOP_LT_F, EOP_LE_F, EOP_GT_F, EOP_GE_F};
static const fl_expr_op cmp_s[] = {EOP_EQ_S, EOP_NE_S, EOP_LT_S, EOP_LE_S, EOP_GT_S, EOP_GE_S};

static uint32_t lower_binary(lw *w, const fl_node *e) {
    char b1[128], b2[128];
    if (e->op == OP_AND || e->op == OP_OR) return lower_and_or(w, e);
    uint32_t ta = lower(w, e->a, PLAN_NONE);
    uint32_t tb = lower(w, e->b, PLAN_NONE);
    if (ta == PLAN_NONE || tb == PLAN_NONE) return PLAN_NONE;
    const char *op = ast_op_text(e->op);
    bool num = is_num(w, ta) && is_num(w, tb);
    bool flt = num && (is_k(w, ta, PT_FLOAT) || is_k(w, tb, PT_FLOAT));
    if (num && flt) { /* promote the int side(s) */
        if (is_k(w, ta, PT_INT)) emit(w, EOP_I2F, 1, 0, e->a->span, 0);
        if (is_k(w, tb, PT_INT)) emit(w, EOP_I2F, 0, 0, e->b->span, 0);
    }
    switch (e->op) {
        case OP_ADD:
            if (is_str(w, ta) && is_str(w, tb)) {
                emit(w, EOP_CONCAT, (int32_t)w->t_str, 0, e->span, -1);
                return w->t_str;
            }
            /* fall through */
        case OP_SUB:
        case OP_MUL:
        case OP_DIV:
        case OP_MOD: {
            if (!num) {
                const char *hint = NULL;
                if (e->op == OP_ADD && (is_str(w, ta) || is_str(w, tb)))
                    hint = "turn the other operand into a string with str(...), or use "
                           "interpolation: \"{a}{b}\"";
                if (e->op == OP_ADD)
                    err(w, e->span, hint, "'+' needs two numbers or two strings, not %s and %s",
                        tname(w, ta, b1, sizeof b1), tname(w, tb, b2, sizeof b2));
                else
                    err(w, e->span, NULL, "'%s' needs numbers, not %s and %s", op,
                        tname(w, ta, b1, sizeof b1), tname(w, tb, b2, sizeof b2));
                return PLAN_NONE;
            }
            if ((e->op == OP_DIV || e->op == OP_MOD) && !flt && e->b->kind == AST_INT &&
                e->b->ival == 0)
                diag_warning(w->cx->diag, e->b->span, NULL,
                             "%s by zero: this fails whenever it is evaluated",
                             e->op == OP_DIV ? "division" : "modulo");
            static const fl_expr_op ai[] = {EOP_ADD_I, EOP_SUB_I, EOP_MUL_I, EOP_DIV_I,
                                              EOP_MOD_I};
            static const fl_expr_op af[] = {EOP_ADD_F, EOP_SUB_F, EOP_MUL_F, EOP_DIV_F,
                                              EOP_MOD_F};
            int k = e->op - OP_ADD;
            emit(w, flt ? af[k] : ai[k], 0, 0, e->span, -1);
            return flt ? w->t_float : w->t_int;
        }
        case OP_EQ:
        case OP_NE:
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE: {
            int k = e->op - OP_EQ;
            bool eq = e->op == OP_EQ || e->op == OP_NE;
            if (num) {
                emit(w, flt ? cmp_f[k] : cmp_i[k], 0, 0, e->span, -1);
                return w->t_bool;
            }
            if (is_str(w, ta) && is_str(w, tb) && is_k(w, ta, PT_TIME) != is_k(w, tb, PT_TIME)) {
                bool day = is_k(w, ta, PT_DATE) || is_k(w, tb, PT_DATE);
                err(w, e->span,
                    day ? "date(t) is the UTC day of a time t: compare date(t) with the date"
                        : "a time compares only with a time, e.g. 2026-01-31T13:00:00Z",
                    "cannot compare %s with %s", tname(w, ta, b1, sizeof b1),
                    tname(w, tb, b2, sizeof b2));
                return PLAN_NONE;
            }
            if (is_str(w, ta) && is_str(w, tb)) {
                emit(w, cmp_s[k], (int32_t)w->t_str, 0, e->span, -1);
                return w->t_bool;
            }
            if (is_k(w, ta, PT_DURATION) && is_k(w, tb, PT_DURATION)) {
                emit(w, cmp_i[k], 0, 0, e->span, -1);
                return w->t_bool;
            }
            if (eq && is_k(w, ta, PT_BOOL) && is_k(w, tb, PT_BOOL)) {
                emit(w, cmp_i[k], 0, 0, e->span, -1);
                return w->t_bool;
            }
            if (eq && (is_k(w, ta, PT_LIST) || is_k(w, ta, PT_RECORD)) && ty_same(w->p, ta, tb)) {
                emit(w, e->op == OP_EQ ? EOP_EQ_V : EOP_NE_V, (int32_t)ta, 0, e->span, -1);
                return w->t_bool;
            }
            if (eq)
                err(w, e->span, NULL,
                    "cannot compare %s with %s: '%s' needs two values of one type",
                    tname(w, ta, b1, sizeof b1), tname(w, tb, b2, sizeof b2), op);
            else
                err(w, e->span, NULL, "'%s' compares two numbers or two strings, not %s and %s", op,
                    tname(w, ta, b1, sizeof b1), tname(w, tb, b2, sizeof b2));
            return PLAN_NONE;
        }
        default:
            err(w, e->span, NULL, "operator '%s' cannot be used here", op);
            return PLAN_NONE;
    }
}

static uint32_t lower_unary(lw *w, const fl_node *e) {
    char b1[128];
    if (e->op == OP_NEG && e->a && e->a->kind == AST_INT && e->a->ival != INT64_MIN) {
        /* a negative literal */
        push_int(w, -e->a->ival, w->t_int, e->span);
        return w->t_int;
    }
    if (e->op == OP_NEG && e->a && e->a->kind == AST_FLOAT) {
        uint32_t v = new_value(w, w->t_float);
        w->p->values[v].u.f = -e->a->fval;
        emit(w, EOP_CONST_F, (int32_t)v, 0, e->span, 1);
        return w->t_float;
    }
    uint32_t t = lower(w, e->a, PLAN_NONE);
    if (t == PLAN_NONE) return PLAN_NONE;
    if (e->op == OP_NOT) {
        if (!is_k(w, t, PT_BOOL)) {
            err(w, e->span, NULL, "'not' needs a bool, not %s", tname(w, t, b1, sizeof b1));
            return PLAN_NONE;
        }
        emit(w, EOP_NOT, 0, 0, e->span, 0);
        return t;
    }
    if (is_k(w, t, PT_INT))
        emit(w, EOP_NEG_I, 0, 0, e->span, 0);
    else if (is_k(w, t, PT_FLOAT))
        emit(w, EOP_NEG_F, 0, 0, e->span, 0);
    else {
        err(w, e->span, NULL, "'-' needs a number, not %s", tname(w, t, b1, sizeof b1));
        return PLAN_NONE;
    }
    return t;
}

static uint32_t lower_if(lw *w, const fl_node *e, uint32_t hint) {
    char b1[128], b2[128];
    uint32_t tc = lower(w, e->a, w->t_bool);
    if (tc != PLAN_NONE && !is_k(w, tc, PT_BOOL)) {
        err(w, e->a->span, NULL, "the condition of 'if' must be a bool, not %s",
            tname(w, tc, b1, sizeof b1));
        tc = PLAN_NONE;
    }
    uint32_t jelse = emit(w, EOP_JUMP_IF_FALSE, 0, 0, e->span, -1);
    int sp0 = w->sp;
    uint32_t tt = lower(w, e->b, hint);
    uint32_t jend = emit(w, EOP_JUMP, 0, 0, e->span, 0);
    patch(w, jelse, here(w));
    w->sp = sp0;
    uint32_t te = lower(w, e->c, tt != PLAN_NONE ? tt : hint);
    if (tc == PLAN_NONE || tt == PLAN_NONE || te == PLAN_NONE) return PLAN_NONE;
    if (ty_same(w->p, tt, te)) {
        patch(w, jend, here(w));
        return tt;
    }
    if (is_k(w, tt, PT_FLOAT) && is_k(w, te, PT_INT)) {
        emit(w, EOP_I2F, 0, 0, e->c->span, 0);
        patch(w, jend, here(w));
        return tt;
    }
    if (is_k(w, tt, PT_INT) && is_k(w, te, PT_FLOAT)) {
        /* the then-branch jumps to a conversion stub after the else-branch */
        uint32_t jskip = emit(w, EOP_JUMP, 0, 0, e->span, 0);
        patch(w, jend, here(w));
        emit(w, EOP_I2F, 0, 0, e->b->span, 0);
        patch(w, jskip, here(w));
        return te;
    }
    err(w, e->c->span, NULL, "the branches of 'if' have different types: %s and %s",
        tname(w, tt, b1, sizeof b1), tname(w, te, b2, sizeof b2));
    return PLAN_NONE;
}

/* ---- records and lists ------------------------------------------------------------ */

static uint32_t lower_list(lw *w, const fl_node *e, uint32_t hint) {
    char b1[128], b2[128];
    uint32_t elem_hint = is_k(w, hint, PT_LIST) ? w->p->types[hint].elem : PLAN_NONE;
    int n = e->list.len;
    if (n == 0) {
        if (elem_hint == PLAN_NONE) {
            err(w, e->span, "an empty list can only be written where its type is known",
                "cannot tell the element type of an empty list here");
            return PLAN_NONE;
        }
        emit(w, EOP_MAKE_LIST, (int32_t)hint, 0, e->span, 1);
        return hint;
    }
    if (n > EXPR_MAX_STACK) {
        limit_err(w, e->span, "list literal too long (more than %d elements)", EXPR_MAX_STACK);
        return PLAN_NONE;
    }
    uint32_t elem = PLAN_NONE, ts[EXPR_MAX_STACK];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const fl_node *x = e->list.items[i];
        uint32_t t = lower(w, x, elem != PLAN_NONE ? elem : elem_hint);
        ts[i] = t;
        if (t == PLAN_NONE) {
            ok = false;
            continue;
        }
        if (elem == PLAN_NONE)
            elem = t;
        else if (ty_same(w->p, elem, t)) {
        } else if (is_k(w, elem, PT_INT) && is_k(w, t, PT_FLOAT))
            elem = t;
        else if (is_k(w, elem, PT_FLOAT) && is_k(w, t, PT_INT)) {
        } else {
            err(w, x->span, NULL, "list elements must have one type: %s here, %s before",
                tname(w, t, b1, sizeof b1), tname(w, elem, b2, sizeof b2));
            ok = false;
        }
    }
    if (!ok) return PLAN_NONE;
    if (is_k(w, elem, PT_INT) && is_k(w, elem_hint, PT_FLOAT)) elem = elem_hint;
    if (is_k(w, elem, PT_FLOAT)) /* promote the int elements, in place on the stack */
        for (int i = 0; i < n; i++)
            if (is_k(w, ts[i], PT_INT)) emit(w, EOP_I2F, n - 1 - i, 0, e->list.items[i]->span, 0);
    uint32_t lt = plan_type_list(w->p, elem);
    emit(w, EOP_MAKE_LIST, (int32_t)lt, (uint32_t)n, e->span, 1 - n);
    return lt;
}

static uint32_t lower_record(lw *w, const fl_node *e, uint32_t hint) {
    char b1[128], b2[128];
    int n = e->list.len;
    if (n > EXPR_MAX_STACK) {
        limit_err(w, e->span, "record literal too large (more than %d fields)", EXPR_MAX_STACK);
        return PLAN_NONE;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(e->list.items[i]->name, e->list.items[j]->name)) {
                err(w, e->list.items[i]->nspan, NULL, "field '%s' is given twice",
                    e->list.items[i]->name);
                return PLAN_NONE;
            }
    /* With a record hint of the same field names, build that type, in its order. */
    if (is_k(w, hint, PT_RECORD) && w->p->types[hint].n == (uint32_t)n) {
        const plan_type *ht = &w->p->types[hint];
        int order[EXPR_MAX_STACK];
        bool match = true;
        for (int k = 0; k < n && match; k++) {
            const char *fname = plan_str(w->p, w->p->fields[ht->first + k].name);
            order[k] = -1;
            for (int i = 0; i < n; i++)
                if (!strcmp(e->list.items[i]->name, fname)) order[k] = i;
            if (order[k] < 0) match = false;
        }
        if (match) {
            bool ok = true;
            for (int k = 0; k < n; k++) {
                const fl_node *fi = e->list.items[order[k]];
                uint32_t ft = w->p->fields[w->p->types[hint].first + k].type;
                uint32_t t = lower(w, fi->a, ft);
                if (t == PLAN_NONE) {
                    ok = false;
                } else if (!coerce(w, t, ft, 0, fi->a->span)) {
                    err(w, fi->a->span, NULL, "field '%s' should be %s, not %s", fi->name,
                        tname(w, ft, b1, sizeof b1), tname(w, t, b2, sizeof b2));
                    ok = false;
                }
            }
            if (!ok) return PLAN_NONE;
            emit(w, EOP_MAKE_RECORD, (int32_t)hint, 0, e->span, 1 - n);
            return hint;
        }
    }
    plan_field fields[EXPR_MAX_STACK];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const fl_node *fi = e->list.items[i];
        uint32_t t = lower(w, fi->a, PLAN_NONE);
        if (t == PLAN_NONE) ok = false;
        fields[i] = (plan_field){plan_intern_str(w->p, fi->name), t};
    }
    if (!ok) return PLAN_NONE;
    uint32_t rt = plan_type_record(w->p, PLAN_NONE, fields, (uint32_t)n);
    emit(w, EOP_MAKE_RECORD, (int32_t)rt, 0, e->span, 1 - n);
    return rt;
}

static uint32_t lower_member(lw *w, const fl_node *e) {
    char b1[128];
    uint32_t t = lower(w, e->a, PLAN_NONE);
    if (t == PLAN_NONE) return PLAN_NONE;
    if (!is_k(w, t, PT_RECORD)) {
        err(w, e->nspan,
            is_k(w, t, PT_LIST) ? "inside a lambda, lists have only len(xs) and xs[i]" : NULL,
            "a value of type %s has no field '%s'", tname(w, t, b1, sizeof b1), e->name);
        return PLAN_NONE;
    }
    const plan_type *rt = &w->p->types[t];
    const char *cands[EXPR_MAX_STACK];
    int nc = 0;
    for (uint32_t k = 0; k < rt->n; k++) {
        const plan_field *f = &w->p->fields[rt->first + k];
        const char *fname = plan_str(w->p, f->name);
        if (!strcmp(fname, e->name)) {
            if (k > UINT16_MAX) {
                err(w, e->nspan, NULL, "record has too many fields to access '%s'", e->name);
                return PLAN_NONE;
            }
            uint32_t ft = f->type;
            emit(w, EOP_FIELD, (int32_t)t, k, e->span, 0);
            return ft;
        }
        if (nc < EXPR_MAX_STACK) cands[nc++] = fname;
    }
    char hint[160];
    err(w, e->nspan, diag_did_you_mean(e->name, cands, nc, hint, sizeof hint),
        "%s has no field '%s'", tname(w, t, b1, sizeof b1), e->name);
    return PLAN_NONE;
}

static uint32_t lower_index(lw *w, const fl_node *e) {
    char b1[128];
    uint32_t tl = lower(w, e->a, PLAN_NONE);
    uint32_t ti = lower(w, e->b, w->t_int);
    if (tl == PLAN_NONE || ti == PLAN_NONE) return PLAN_NONE;
    if (!is_k(w, tl, PT_LIST)) {
        err(w, e->a->span, NULL, "only lists can be indexed, not %s", tname(w, tl, b1, sizeof b1));
        return PLAN_NONE;
    }
    if (!is_k(w, ti, PT_INT)) {
        err(w, e->b->span, NULL, "a list index must be an int, not %s",
            tname(w, ti, b1, sizeof b1));
        return PLAN_NONE;
    }
    emit(w, EOP_INDEX, (int32_t)tl, 0, e->span, -1);
    return w->p->types[tl].elem;
}

/* ---- built-in calls ----------------------------------------------------------------- */

static uint32_t lower_call(lw *w, const fl_node *e) {
    char b1[128];
    const fl_node *callee = e->a;
    if (!callee || callee->kind != AST_NAME) {
        err(w, e->span, NULL, "only the built-in functions can be called inside a lambda");
        return PLAN_NONE;
    }
    int id = builtin_id(callee->name);
    if (id < 0) {
        bool is_param = false;
        for (int i = 0; i < w->nparams; i++)
            if (w->names[i] && !strcmp(w->names[i], callee->name)) is_param = true;
        char hint[400];
        const char *h =
            is_param ? NULL
                     : diag_did_you_mean(callee->name, builtin_names, NBUILTINS, hint, sizeof hint);
        if (!is_param && !h) /* nothing close: the whole (short) list */
            h = diag_name_list(hint, sizeof hint, "the built-in functions:", builtin_names,
                               NBUILTINS);
        err(w, callee->span, h,
            is_param ? "'%s' is a parameter, not a function: a lambda can call only the "
                       "built-in functions"
                     : "unknown function '%s': a lambda can call only the built-in functions",
            callee->name);
        return PLAN_NONE;
    }
    const int *arity = builtin_arity;
    int n = e->list.len;
    for (int i = 0; i < n; i++)
        if (e->list.items[i]->name) {
            err(w, e->list.items[i]->nspan, NULL, "%s() takes no named arguments", callee->name);
            return PLAN_NONE;
        }
    if (n != arity[id]) {
        err(w, e->span, NULL, "%s() takes %d argument%s, not %d", callee->name, arity[id],
            arity[id] == 1 ? "" : "s", n);
        return PLAN_NONE;
    }
    uint32_t t[3];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        t[i] = lower(w, e->list.items[i]->a, PLAN_NONE);
        if (t[i] == PLAN_NONE) ok = false;
    }
    if (!ok) return PLAN_NONE;
    int32_t S = (int32_t)w->t_str;
    const char *name = callee->name;
    int bad = -1;            /* the first argument of a wrong type */
    const char *want = NULL; /* what it should have been */
    uint32_t res = PLAN_NONE;
    switch ((fl_expr_builtin)id) {
        case EB_LEN:
            if (is_str(w, t[0]))
                emit(w, EOP_LEN_S, S, 0, e->span, 0);
            else if (is_k(w, t[0], PT_LIST))
                emit(w, EOP_LEN_L, (int32_t)t[0], 0, e->span, 0);
            else
                bad = 0, want = "a string or a list";
            res = w->t_int;
            break;
        case EB_BASENAME:
        case EB_DIRNAME:
        case EB_STEM:
        case EB_EXT:
        case EB_UPPER:
        case EB_LOWER: {
            static const fl_expr_op ops[] = {
                [EB_BASENAME] = EOP_BASENAME, [EB_DIRNAME] = EOP_DIRNAME, [EB_STEM] = EOP_STEM,
                [EB_EXT] = EOP_EXT,           [EB_UPPER] = EOP_UPPER,     [EB_LOWER] = EOP_LOWER};
            if (is_str(w, t[0]))
                emit(w, ops[id], S, 0, e->span, 0);
            else
                bad = 0, want = "a string";
            res = w->t_str;
            break;
        }
        case EB_JOIN:
            if (is_k(w, t[0], PT_LIST) && is_str(w, w->p->types[t[0]].elem)) {
                if (is_str(w, t[1]))
                    emit(w, EOP_JOIN_L, (int32_t)t[0], 0, e->span, -1);
                else
                    bad = 1, want = "a string (the separator)";
                res = w->t_str;
            } else if (is_str(w, t[0])) {
                if (is_str(w, t[1]))
                    emit(w, EOP_JOIN_P, (int32_t)w->t_path, 0, e->span, -1);
                else
                    bad = 1, want = "a string or path";
                res = w->t_path;
            } else
                bad = 0, want = "a path, or a list of strings";
            break;
        case EB_STR:
            res = to_str(w, t[0], e->list.items[0]->a->span);
            break;
        case EB_DATE:
            if (is_k(w, t[0], PT_TIME))
                emit(w, EOP_DAY_T, (int32_t)w->t_date, 0, e->span, 0);
            else
                bad = 0, want = "a time";
            res = w->t_date;
            break;
        case EB_INT:
            if (is_k(w, t[0], PT_INT) || is_k(w, t[0], PT_BOOL)) {
            } else if (is_k(w, t[0], PT_FLOAT))
                emit(w, EOP_INT_F, 0, 0, e->span, 0);
            else if (is_str(w, t[0]))
                emit(w, EOP_INT_S, S, 0, e->span, 0);
            else
                bad = 0, want = "an int, float, bool or string";
            res = w->t_int;
            break;
        case EB_FLOAT:
            if (is_k(w, t[0], PT_FLOAT)) {
            } else if (is_k(w, t[0], PT_INT))
                emit(w, EOP_I2F, 0, 0, e->span, 0);
            else if (is_str(w, t[0]))
                emit(w, EOP_FLOAT_S, S, 0, e->span, 0);
            else
                bad = 0, want = "an int, float or string";
            res = w->t_float;
            break;
        case EB_REPLACE:
            for (int i = 0; i < 3 && bad < 0; i++)
                if (!is_str(w, t[i])) bad = i, want = "a string";
            if (bad < 0) emit(w, EOP_REPLACE, S, 0, e->span, -2);
            res = w->t_str;
            break;
        case EB_CONTAINS:
        case EB_STARTS_WITH:
        case EB_ENDS_WITH: {
            static const fl_expr_op ops[] = {[EB_CONTAINS] = EOP_CONTAINS,
                                               [EB_STARTS_WITH] = EOP_STARTS_WITH,
                                               [EB_ENDS_WITH] = EOP_ENDS_WITH};
            for (int i = 0; i < 2 && bad < 0; i++)
                if (!is_str(w, t[i])) bad = i, want = "a string";
            if (bad < 0) emit(w, ops[id], S, 0, e->span, -1);
            res = w->t_bool;
            break;
        }
        default:
            res = PLAN_NONE;
            break;
    }
    if (bad >= 0) {
        err(w, e->list.items[bad]->span, NULL, "argument %d of %s() must be %s, not %s", bad + 1,
            name, want, tname(w, t[bad], b1, sizeof b1));
        return PLAN_NONE;
    }
    return res;
}

/* ---- the dispatcher ----------------------------------------------------------------- */

static uint32_t lower(lw *w, const fl_node *e, uint32_t hint) {
    if (!e) return PLAN_NONE;
    if (++w->depth > EXPR_MAX_DEPTH) {
        limit_err(w, e->span, "expression nested too deeply (more than %d levels)", EXPR_MAX_DEPTH);
        w->depth--;
        return PLAN_NONE;
    }
    uint32_t t = PLAN_NONE;
    switch (e->kind) {
        case AST_INT:
            push_int(w, e->ival, w->t_int, e->span);
            t = w->t_int;
            break;
        case AST_FLOAT: {
            uint32_t v = new_value(w, w->t_float);
            w->p->values[v].u.f = e->fval;
            emit(w, EOP_CONST_F, (int32_t)v, 0, e->span, 1);
            t = w->t_float;
            break;
        }
        case AST_BOOL:
            emit(w, EOP_IMM, e->ival ? 1 : 0, 0, e->span, 1);
            t = w->t_bool;
            break;
        case AST_DURATION:
            push_int(w, e->ival, w->t_dur, e->span);
            t = w->t_dur;
            break;
        case AST_DATE:
            t = push_str(w, e->sval ? e->sval : "", e->sval ? strlen(e->sval) : 0, w->t_date,
                         e->span);
            break;
        case AST_TIME:
            t = push_str(w, e->sval ? e->sval : "", e->sval ? strlen(e->sval) : 0,
                         plan_type_basic(w->p, PT_TIME), /* added on first use */
                         e->span);
            break;
        case AST_STR:
            t = lower_str(w, e);
            break;
        case AST_NAME:
            t = lower_name(w, e);
            break;
        case AST_LIST:
            t = lower_list(w, e, hint);
            break;
        case AST_RECORD:
            t = lower_record(w, e, hint);
            break;
        case AST_MEMBER:
            t = lower_member(w, e);
            break;
        case AST_INDEX:
            t = lower_index(w, e);
            break;
        case AST_BINARY:
            t = lower_binary(w, e);
            break;
        case AST_UNARY:
            t = lower_unary(w, e);
            break;
        case AST_IF:
            t = lower_if(w, e, hint);
            break;
        case AST_CALL:
            t = lower_call(w, e);
            break;
        case AST_LAMBDA:
            err(w, e->span, NULL, "a lambda cannot contain another lambda");
            break;
        default:
            err(w, e->span, NULL, "this is not allowed inside a lambda (%s)",
                ast_kind_name(e->kind));
            break;
    }
    w->depth--;
    return t;
}

/* ---- entry points --------------------------------------------------------------------- */

/* Marks of the plan arrays, to roll back a failed lowering. */
typedef struct plan_marks {
    uint32_t code, values, locs, typelist, lambdas; /* n_* at the start */
} plan_marks;

/* where the plan's arrays end now, to roll back to after an error */
static plan_marks mark(const fl_plan *p) {
    return (plan_marks){p->n_code, p->n_values, p->n_locs, p->n_typelist, p->n_lambdas};
}

static void rollback(fl_plan *p, plan_marks m) {
    p->n_code = m.code;
    p->n_values = m.values;
    p->n_locs = m.locs;
    p->n_typelist = m.typelist;
    p->n_lambdas = m.lambdas;
}

/* a fresh walker over cx's plan, with the basic types looked up once */
static void lw_init(lw *w, expr_ctx *cx) {
    memset(w, 0, sizeof *w);
    w->cx = cx;
    w->p = cx->plan;
    w->first = cx->plan->n_code;
    w->loc = PLAN_NONE;
    w->t_int = plan_type_basic(w->p, PT_INT);
    w->t_float = plan_type_basic(w->p, PT_FLOAT);
    w->t_bool = plan_type_basic(w->p, PT_BOOL);
    w->t_str = plan_type_basic(w->p, PT_STR);
    w->t_path = plan_type_basic(w->p, PT_PATH);
    w->t_date = plan_type_basic(w->p, PT_DATE);
    w->t_dur = plan_type_basic(w->p, PT_DURATION);
}

/* Lower `body` (already set up in w) and append the plan lambda. */
static uint32_t finish(lw *w, plan_marks m, const fl_node *body, fl_span lspan,
                       uint32_t want_ret, uint32_t *ret) {
    char b1[128], b2[128];
    uint32_t t = lower(w, body, want_ret);
    if (t != PLAN_NONE && want_ret != PLAN_NONE && !coerce(w, t, want_ret, 0, body->span)) {
        err(w, body->span, NULL, "this lambda gives %s, but %s is needed here",
            tname(w, t, b1, sizeof b1), tname(w, want_ret, b2, sizeof b2));
        t = PLAN_NONE;
    }
    if (t != PLAN_NONE && want_ret != PLAN_NONE) t = want_ret;
    if (t == PLAN_NONE || w->failed) {
        rollback(w->p, m);
        if (ret) *ret = PLAN_NONE;
        return PLAN_NONE;
    }
    emit(w, EOP_RET, 0, 0, body->span, -1);
    if (w->failed) { /* a limit in the last instruction */
        rollback(w->p, m);
        if (ret) *ret = PLAN_NONE;
        return PLAN_NONE;
    }
    uint32_t first_ptype = w->p->n_typelist;
    for (int i = 0; i < w->nparams; i++) {
        uint32_t k = PLAN_PUSH(w->p, typelist);
        w->p->typelist[k] = w->ptypes[i];
    }
    uint32_t li = PLAN_PUSH(w->p, lambdas);
    plan_lambda *l = &w->p->lambdas[li];
    l->first_ptype = first_ptype;
    l->nparams = (uint32_t)w->nparams;
    l->ret = t;
    l->first_code = w->first;
    l->ncode = w->p->n_code - w->first;
    l->nlocals = 0;
    w->loc = PLAN_NONE;
    l->loc = loc_for(w, lspan);
    if (ret) *ret = t;
    return li;
}

/* expr_lower_lambda and expr_lower_lambda_prefix (prefix: fewer parameters may be
 * declared than offered) */
static uint32_t lower_lambda(expr_ctx *cx, const fl_node *lambda, const uint32_t *ptypes,
                             int nparams, uint32_t want_ret, uint32_t *ret, bool prefix) {
    if (ret) *ret = PLAN_NONE;
    if (!lambda || lambda->kind != AST_LAMBDA) {
        fl_span sp = lambda ? lambda->span : (fl_span){0, 0, 0, 0};
        diag_error(cx->diag, sp, "write a lambda such as x => x + 1", "a lambda is needed here");
        return PLAN_NONE;
    }
    int k = lambda->list.len;
    if (prefix ? (k < 1 || k > nparams) : k != nparams) {
        if (prefix && k < 1)
            diag_error(cx->diag, lambda->span, NULL, "this lambda needs at least one parameter");
        else if (prefix)
            diag_error(cx->diag, lambda->span, NULL,
                       "this lambda takes %d parameter%s, but at most %d can be given here", k,
                       k == 1 ? "" : "s", nparams);
        else
            diag_error(cx->diag, lambda->span, NULL,
                       "this lambda takes %d parameter%s, but %d %s given here", k,
                       k == 1 ? "" : "s", nparams, nparams == 1 ? "is" : "are");
        return PLAN_NONE;
    }
    if (k > EXPR_MAX_PARAMS) {
        diag_error(cx->diag, lambda->span, NULL, "a lambda can take at most %d parameters",
                   EXPR_MAX_PARAMS);
        return PLAN_NONE;
    }
    const char *names[EXPR_MAX_PARAMS];
    for (int i = 0; i < k; i++) {
        names[i] = lambda->list.items[i]->name;
        for (int j = 0; j < i; j++)
            if (names[i] && names[j] && !strcmp(names[i], names[j])) {
                diag_error(cx->diag, lambda->list.items[i]->span, NULL,
                           "parameter '%s' is declared twice", names[i]);
                return PLAN_NONE;
            }
    }
    plan_marks m = mark(cx->plan);
    lw w;
    lw_init(&w, cx);
    w.names = names;
    w.ptypes = ptypes;
    w.nparams = k;
    return finish(&w, m, lambda->a, lambda->span, want_ret, ret);
}

uint32_t expr_lower_lambda(expr_ctx *cx, const fl_node *lambda, const uint32_t *ptypes,
                           int nparams, uint32_t want_ret, uint32_t *ret) {
    return lower_lambda(cx, lambda, ptypes, nparams, want_ret, ret, false);
}

uint32_t expr_lower_lambda_prefix(expr_ctx *cx, const fl_node *lambda, const uint32_t *ptypes,
                                  int nparams, uint32_t want_ret, uint32_t *ret) {
    return lower_lambda(cx, lambda, ptypes, nparams, want_ret, ret, true);
}

uint32_t expr_lower_sh(expr_ctx *cx, const fl_node *cmd, const char *const *pnames,
                       const uint32_t *ptypes, int nparams, bool has_out) {
    if (!cmd || cmd->kind != AST_STR) {
        diag_error(cx->diag, cmd ? cmd->span : (fl_span){0, 0, 0, 0}, NULL,
                   "an sh command must be a string");
        return PLAN_NONE;
    }
    if (nparams + 1 > EXPR_MAX_PARAMS) {
        diag_error(cx->diag, cmd->span, NULL, "a command task can take at most %d parameters",
                   EXPR_MAX_PARAMS - 1);
        return PLAN_NONE;
    }
    const char *names[EXPR_MAX_PARAMS];
    uint32_t types[EXPR_MAX_PARAMS];
    plan_marks m = mark(cx->plan);
    lw w;
    lw_init(&w, cx);
    for (int i = 0; i < nparams; i++)
        names[i] = pnames[i], types[i] = ptypes[i];
    names[nparams] = has_out ? "out" : NULL;
    types[nparams] = w.t_str;
    w.names = names;
    w.ptypes = types;
    w.nparams = nparams + 1;
    w.sh = true;
    w.quote = true;
    w.has_out = has_out;
    return finish(&w, m, cmd, cmd->span, w.t_str, NULL);
}
