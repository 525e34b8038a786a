/*
 * expr_verify.c — the static typing of expression code (expr.h: expr_verify,
 * expr_stack_types).
 *
 * DESIGN
 * An abstract run of one lambda over types instead of values: one pass in code
 * order keeps the stack of types; every jump (forward only) records the stack it
 * carries at its target, and the state at an instruction is the fall-through
 * state joined with every recorded one, which must agree. The rules below are the
 * type signature of each opcode in expr_ops.h; code that passes cannot make the
 * interpreter read a value as the wrong kind, leave its stack bounds, or leak.
 * The compiler only emits such code; plans from disk are checked with expr_verify.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "expr_ops.h"

typedef struct vstack {
    uint32_t t[EXPR_RT_MAX_STACK]; /* types, bottom first */
    int n;                         /* height */
} vstack;

/* Most type words the states recorded at jump targets may take (64 MB). */
#define VERIFY_MAX_POOL (1u << 24)

typedef struct vm {
    const fl_plan *p;      /* the plan */
    const plan_lambda *l;    /* the lambda */
    uint32_t *at;            /* per instruction: where in pool the state that jumps
                                carry there starts, or PLAN_NONE (malloc'ed) */
    uint32_t *pool;          /* recorded states: height, then the types (malloc'ed) */
    uint32_t npool, cappool; /* words used, capacity */
    char *err;               /* message buffer */
    size_t errlen;           /* its size */
} vm;

static int bad(vm *m, uint32_t pc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(vm *m, uint32_t pc, const char *fmt, ...) {
    if (!m->err || !m->errlen) return -1;
    int k = snprintf(m->err, m->errlen, "bad expression code at instruction %u: ", pc);
    if (k < 0 || (size_t)k >= m->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err + k, m->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- type classes ---- */

static uint32_t kind(const fl_plan *p, uint32_t t) {
    return t < p->n_types ? p->types[t].kind : PT__COUNT;
}
static bool is_word(const fl_plan *p, uint32_t t) {
    uint32_t k = kind(p, t);
    return t == EXPR_TY_WORD || k == PT_INT || k == PT_BOOL || k == PT_DURATION;
}
static bool is_flt(const fl_plan *p, uint32_t t) {
    return t == EXPR_TY_FLOAT || kind(p, t) == PT_FLOAT;
}
static bool is_s(const fl_plan *p, uint32_t t) {
    uint32_t k = kind(p, t);
    return k == PT_STR || k == PT_PATH || k == PT_DIR || k == PT_DATE || k == PT_TIME;
}

/* Same layout: what matters for reading and releasing a value. */
static bool compat(const fl_plan *p, uint32_t a, uint32_t b, int depth) {
    if (a == b) return true;
    if (depth > 64) return false;
    if (is_word(p, a)) return is_word(p, b);
    if (is_flt(p, a)) return is_flt(p, b);
    if (is_s(p, a)) return is_s(p, b);
    uint32_t k = kind(p, a);
    if (k != kind(p, b)) return false;
    if (k == PT_BYTES) return true;
    const plan_type *x = &p->types[a], *y = &p->types[b];
    if (k == PT_LIST) return compat(p, x->elem, y->elem, depth + 1);
    if (k != PT_RECORD || x->n != y->n) return false;
    for (uint32_t i = 0; i < x->n; i++)
        if (!compat(p, p->fields[x->first + i].type, p->fields[y->first + i].type, depth + 1))
            return false;
    return true;
}

/* ---- the abstract run ---- */

static bool same_stack(const fl_plan *p, const vstack *a, const uint32_t *b);

/* A jump carries the stack st to target: the first one there records it, the others
 * must agree with it. */
static int record(vm *m, uint32_t pc, uint32_t target, const vstack *st) {
    if (target <= pc || target >= m->l->ncode) return bad(m, pc, "jump to %u", target);
    if (m->at[target] != PLAN_NONE) {
        if (!same_stack(m->p, st, m->pool + m->at[target]))
            return bad(m, pc, "stacks disagree where paths meet at %u", target);
        return 0;
    }
    uint32_t need = (uint32_t)st->n + 1;
    if (m->npool + need > VERIFY_MAX_POOL) return bad(m, pc, "too many branches");
    if (m->npool + need > m->cappool) {
        uint32_t cap = m->cappool ? m->cappool : 1024;
        while (cap < m->npool + need)
            cap *= 2;
        uint32_t *q = fl_reallocarray(m->p->ctx, m->pool, cap, sizeof *q);
        if (!q) return bad(m, pc, "out of memory");
        m->pool = q;
        m->cappool = cap;
    }
    m->at[target] = m->npool;
    m->pool[m->npool] = (uint32_t)st->n;
    memcpy(m->pool + m->npool + 1, st->t, (size_t)st->n * sizeof *st->t);
    m->npool += need;
    return 0;
}

/* b: a recorded state (height, then types) */
static bool same_stack(const fl_plan *p, const vstack *a, const uint32_t *b) {
    if ((uint32_t)a->n != b[0]) return false;
    for (int i = 0; i < a->n; i++)
        if (!compat(p, a->t[i], b[1 + i], 0)) return false;
    return true;
}

#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (st.n < (k)) return bad(m, pc, "%s needs %d operands", name, (k));                      \
    } while (0)
#define WANT(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond)) return bad(m, pc, "%s: %s", name, what);                                      \
    } while (0)
#define PUSH(ty)                                                                                   \
    do {                                                                                           \
        if (st.n >= EXPR_RT_MAX_STACK) return bad(m, pc, "stack overflow");                        \
        st.t[st.n++] = (ty);                                                                       \
    } while (0)
#define TOPT st.t[st.n - 1]

static const char *const op_names[] = {
#define X(name, pops, pushes, doc) #name,
    FLOW_EXPR_OPS(X)
#undef X
};

/* Run the types up to instruction `upto` (its state goes to *out) or, with
 * upto = PLAN_NONE, through the whole lambda. */
static int run(vm *m, uint32_t upto, vstack *out) {
    const fl_plan *p = m->p;
    const plan_lambda *l = m->l;
    const plan_instr *code = p->code + l->first_code;
    const uint32_t *ptypes = p->typelist + l->first_ptype;
    vstack st = {.n = 0};
    bool live = true; /* the previous instruction falls through */
    for (uint32_t pc = 0; pc < l->ncode; pc++) {
        /* join the states jumps carry here */
        if (m->at[pc] != PLAN_NONE) {
            const uint32_t *rec = m->pool + m->at[pc];
            if (!live) {
                st.n = (int)rec[0];
                memcpy(st.t, rec + 1, rec[0] * sizeof *rec);
                live = true;
            } else if (!same_stack(p, &st, rec)) {
                return bad(m, pc, "stacks disagree where paths meet");
            }
        }
        if (!live) return bad(m, pc, "unreachable instruction");
        if (pc == upto) {
            *out = st;
            return 0;
        }
        const plan_instr *in = &code[pc];
        if (in->op >= EOP__COUNT) return bad(m, pc, "opcode %u", in->op);
        if (in->loc != PLAN_NONE && in->loc >= p->n_locs) return bad(m, pc, "loc %u", in->loc);
        const char *name = op_names[in->op];
        uint32_t a = (uint32_t)in->a;
        bool a_type = a < p->n_types, a_val = a < p->n_values;
        switch ((fl_expr_op)in->op) {
            case EOP_IMM:
                PUSH(EXPR_TY_WORD);
                break;
            case EOP_CONST_I:
            case EOP_CONST_F:
            case EOP_CONST_S:
            case EOP_CONST_V: {
                WANT(a_val, "no such constant");
                uint32_t t = p->values[a].type;
                if (in->op == EOP_CONST_I) WANT(is_word(p, t), "not an int constant");
                if (in->op == EOP_CONST_F) WANT(is_flt(p, t), "not a float constant");
                if (in->op == EOP_CONST_S) WANT(is_s(p, t), "not a string constant");
                if (in->op == EOP_CONST_V)
                    WANT(kind(p, t) == PT_LIST || kind(p, t) == PT_RECORD, "not a list/record");
                PUSH(t);
                break;
            }
            case EOP_PARAM:
            case EOP_PARAM_REF: {
                WANT(a < l->nparams, "no such parameter");
                uint32_t t = ptypes[a];
                bool scalar = is_word(p, t) || is_flt(p, t);
                WANT(in->op == EOP_PARAM ? scalar : !scalar && t < p->n_types, "wrong variant");
                PUSH(t);
                break;
            }
            case EOP_ADD_I:
            case EOP_SUB_I:
            case EOP_MUL_I:
            case EOP_DIV_I:
            case EOP_MOD_I:
            case EOP_EQ_I:
            case EOP_NE_I:
            case EOP_LT_I:
            case EOP_LE_I:
            case EOP_GT_I:
            case EOP_GE_I:
                NEED(2);
                WANT(is_word(p, st.t[st.n - 1]) && is_word(p, st.t[st.n - 2]), "int operands");
                st.n -= 2;
                PUSH(EXPR_TY_WORD);
                break;
            case EOP_ADD_F:
            case EOP_SUB_F:
            case EOP_MUL_F:
            case EOP_DIV_F:
            case EOP_MOD_F:
            case EOP_EQ_F:
            case EOP_NE_F:
            case EOP_LT_F:
            case EOP_LE_F:
            case EOP_GT_F:
            case EOP_GE_F: {
                NEED(2);
                WANT(is_flt(p, st.t[st.n - 1]) && is_flt(p, st.t[st.n - 2]), "float operands");
                bool cmp = in->op >= EOP_EQ_F;
                st.n -= 2;
                PUSH(cmp ? EXPR_TY_WORD : EXPR_TY_FLOAT);
                break;
            }
            case EOP_NEG_I:
            case EOP_NOT:
                NEED(1);
                WANT(is_word(p, TOPT), "int operand");
                TOPT = EXPR_TY_WORD;
                break;
            case EOP_NEG_F:
                NEED(1);
                WANT(is_flt(p, TOPT), "float operand");
                break;
            case EOP_I2F:
                WANT(in->a >= 0 && in->a < st.n, "slot out of range");
                WANT(is_word(p, st.t[st.n - 1 - in->a]), "int operand");
                st.t[st.n - 1 - in->a] = EXPR_TY_FLOAT;
                break;
            case EOP_EQ_S:
            case EOP_NE_S:
            case EOP_LT_S:
            case EOP_LE_S:
            case EOP_GT_S:
            case EOP_GE_S:
            case EOP_CONTAINS:
            case EOP_STARTS_WITH:
            case EOP_ENDS_WITH:
                NEED(2);
                WANT(is_s(p, a), "operand a must be a string type");
                WANT(is_s(p, st.t[st.n - 1]) && is_s(p, st.t[st.n - 2]), "string operands");
                st.n -= 2;
                PUSH(EXPR_TY_WORD);
                break;
            case EOP_EQ_V:
            case EOP_NE_V:
                NEED(2);
                WANT(a_type && (kind(p, a) == PT_LIST || kind(p, a) == PT_RECORD), "type a");
                WANT(compat(p, a, st.t[st.n - 1], 0) && compat(p, a, st.t[st.n - 2], 0),
                     "operands of type a");
                st.n -= 2;
                PUSH(EXPR_TY_WORD);
                break;
            case EOP_JUMP:
                if (record(m, pc, a, &st)) return -1;
                live = false;
                break;
            case EOP_JUMP_IF_FALSE:
            case EOP_JUMP_IF_TRUE:
                NEED(1);
                WANT(is_word(p, TOPT), "bool operand");
                st.n--;
                if (record(m, pc, a, &st)) return -1;
                break;
            case EOP_RET:
                WANT(st.n == 1, "the stack must hold exactly the result");
                WANT(compat(p, l->ret, st.t[0], 0), "result of the lambda's type");
                st.n = 0;
                live = false;
                break;
            case EOP_FIELD:
                NEED(1);
                WANT(a_type && kind(p, a) == PT_RECORD && in->b < p->types[a].n, "record field");
                WANT(compat(p, a, TOPT, 0), "record operand");
                TOPT = p->fields[p->types[a].first + in->b].type;
                break;
            case EOP_MAKE_RECORD: {
                WANT(a_type && kind(p, a) == PT_RECORD, "record type");
                int n = (int)p->types[a].n;
                NEED(n);
                for (int i = 0; i < n; i++)
                    WANT(compat(p, p->fields[p->types[a].first + i].type, st.t[st.n - n + i], 0),
                         "field types");
                st.n -= n;
                PUSH(a);
                break;
            }
            case EOP_MAKE_LIST: {
                WANT(a_type && kind(p, a) == PT_LIST, "list type");
                int n = in->b;
                NEED(n);
                for (int i = 0; i < n; i++)
                    WANT(compat(p, p->types[a].elem, st.t[st.n - n + i], 0), "element types");
                st.n -= n;
                PUSH(a);
                break;
            }
            case EOP_INDEX:
                NEED(2);
                WANT(a_type && kind(p, a) == PT_LIST, "list type");
                WANT(compat(p, a, st.t[st.n - 2], 0) && is_word(p, TOPT), "list and int");
                st.n -= 2;
                PUSH(p->types[a].elem);
                break;
            case EOP_SHQUOTE_L:
                NEED(1);
                WANT(a_type && kind(p, a) == PT_LIST && is_s(p, p->types[a].elem), "list type");
                WANT(compat(p, a, TOPT, 0), "list operand");
                TOPT = p->types[a].elem;
                break;
            case EOP_LEN_L:
                NEED(1);
                WANT(a_type && kind(p, a) == PT_LIST && compat(p, a, TOPT, 0), "list operand");
                TOPT = EXPR_TY_WORD;
                break;
            case EOP_JOIN_L:
                NEED(2);
                WANT(a_type && kind(p, a) == PT_LIST && is_s(p, p->types[a].elem), "list type");
                WANT(compat(p, a, st.t[st.n - 2], 0) && is_s(p, TOPT), "list and separator");
                st.n -= 2;
                PUSH(p->types[a].elem);
                break;
            case EOP_CONCAT:
            case EOP_JOIN_P:
            case EOP_REPLACE:
            case EOP_INTERP: {
                int n = in->op == EOP_REPLACE ? 3 : in->op == EOP_INTERP ? (int)in->b : 2;
                WANT(n >= 1, "at least one part");
                NEED(n);
                WANT(is_s(p, a), "operand a must be a string type");
                for (int i = 1; i <= n; i++)
                    WANT(is_s(p, st.t[st.n - i]), "string operands");
                st.n -= n;
                PUSH(a);
                break;
            }
            case EOP_TOSTR_I:
            case EOP_TOSTR_B:
            case EOP_TOSTR_F:
                NEED(1);
                WANT(is_s(p, a), "operand a must be a string type");
                WANT(in->op == EOP_TOSTR_F ? is_flt(p, TOPT) : is_word(p, TOPT), "scalar operand");
                TOPT = a;
                break;
            case EOP_SHQUOTE:
            case EOP_BASENAME:
            case EOP_DIRNAME:
            case EOP_STEM:
            case EOP_EXT:
            case EOP_UPPER:
            case EOP_LOWER:
            case EOP_LEN_S:
            case EOP_INT_S:
            case EOP_FLOAT_S:
                NEED(1);
                WANT(is_s(p, a) && is_s(p, TOPT), "string operand");
                TOPT = in->op == EOP_LEN_S || in->op == EOP_INT_S ? EXPR_TY_WORD
                       : in->op == EOP_FLOAT_S                    ? EXPR_TY_FLOAT
                                                                  : a;
                break;
            case EOP_DAY_T:
                NEED(1);
                WANT(kind(p, a) == PT_DATE && kind(p, TOPT) == PT_TIME, "a time operand, a date result");
                TOPT = a;
                break;
            case EOP_INT_F:
                NEED(1);
                WANT(is_flt(p, TOPT), "float operand");
                TOPT = EXPR_TY_WORD;
                break;
            default:
                return bad(m, pc, "opcode %u", in->op);
        }
    }
    if (live) return bad(m, l->ncode, "the code does not end in RET");
    if (upto != PLAN_NONE) return bad(m, upto, "not reached");
    return 0;
}

static int start(const fl_plan *p, uint32_t lam, vm *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->p = p;
    m->err = err;
    m->errlen = errlen;
    if (lam >= p->n_lambdas) return bad(m, 0, "no lambda %u", lam);
    const plan_lambda *l = &p->lambdas[lam];
    m->l = l;
    if (l->ncode == 0 || l->first_code > p->n_code || l->ncode > p->n_code - l->first_code)
        return bad(m, 0, "code out of range");
    if (l->nparams > EXPR_RT_MAX_PARAMS || l->first_ptype > p->n_typelist ||
        l->nparams > p->n_typelist - l->first_ptype)
        return bad(m, 0, "parameters out of range");
    for (uint32_t i = 0; i < l->nparams; i++)
        if (p->typelist[l->first_ptype + i] >= p->n_types) return bad(m, 0, "parameter type");
    if (l->ret >= p->n_types) return bad(m, 0, "result type");
    m->at = fl_reallocarray(p->ctx, NULL, l->ncode, sizeof *m->at);
    if (!m->at) return bad(m, 0, "out of memory");
    for (uint32_t i = 0; i < l->ncode; i++)
        m->at[i] = PLAN_NONE;
    return 0;
}

static void finish(vm *m) {
    if (!m->p) return;
    fl_free(m->p->ctx, m->at);
    fl_free(m->p->ctx, m->pool);
}

int expr_verify(const fl_plan *p, uint32_t lam, char *err, size_t errlen) {
    vm m;
    if (start(p, lam, &m, err, errlen)) {
        finish(&m);
        return -1;
    }
    vstack unused;
    int r = run(&m, PLAN_NONE, &unused);
    finish(&m);
    return r;
}

int expr_stack_types(const fl_plan *p, uint32_t lam, uint32_t pc, uint32_t *types, int *n) {
    vm m;
    *n = 0;
    if (start(p, lam, &m, NULL, 0)) {
        finish(&m);
        return -1;
    }
    vstack *st = fl_malloc(p->ctx, sizeof *st);
    if (!st) {
        finish(&m);
        return -1;
    }
    int r = run(&m, pc, st);
    if (r == 0) {
        memcpy(types, st->t, (size_t)st->n * sizeof *types);
        *n = st->n;
    }
    fl_free(p->ctx, st);
    finish(&m);
    return r;
}
