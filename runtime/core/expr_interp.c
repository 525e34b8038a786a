/*
 * expr_interp.c — the reference interpreter of the plan's expression code (expr.h).
 *
 * DESIGN
 * One loop over the lambda's flat code, one switch on the opcode, an operand stack
 * of EXPR_RT_MAX_STACK untyped words on the C stack. The code is typed, so every
 * instruction knows the types of its operands statically: no tag is stored or
 * tested at run time. Each stack slot owns its value (a new reference for heap
 * values); an instruction releases what it pops.
 *
 * An instruction that can fail checks before it pops, so at the failure the stack
 * holds exactly the values the code had pushed before that instruction; their
 * types are then recovered from the code (expr_stack_types, shared with the
 * verifier) and they are released. Errors are rare, so this keeps the hot path
 * free of any bookkeeping.
 *
 * The semantics of every opcode here are the contract a JIT must reproduce; the
 * string and path built-ins are plain helper functions (str_*) over fv_str.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "expr_ops.h"

/* ---- a string builder with inline storage (spills to the heap when long) ---- */

typedef struct sbuf {
    char *data;        /* inline or malloc'ed */
    size_t len, cap;   /* bytes used, capacity */
    bool too_long;     /* more than EXPR_RT_MAX_STRING was put, or memory ran out: the
                          rest is dropped */
    bool nomem;        /* ... and it was memory (the context's error says so) */
    fl_ctx *ctx;       /* allocates data when it spills */
    char inline_[256]; /* storage for short strings */
} sbuf;

static void sb_init(sbuf *b, fl_ctx *ctx) {
    b->ctx = ctx;
    b->data = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
    b->too_long = false;
    b->nomem = false;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->too_long || n > EXPR_RT_MAX_STRING - b->len) {
        b->too_long = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > EXPR_RT_MAX_STRING) cap = EXPR_RT_MAX_STRING; /* len + n fits: checked above */
        char *d = fl_malloc(b->ctx, cap);
        if (!d) {
            b->too_long = b->nomem = true;
            return;
        }
        memcpy(d, b->data, b->len);
        if (b->data != b->inline_) fl_free(b->ctx, b->data);
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* The finished string as a value of type t, or a NULL object when it grew too long
 * (*too_long set) or memory ran out; frees the builder's storage. */
static fl_val sb_done(const fl_plan *p, uint32_t t, sbuf *b, bool *too_long) {
    fl_val v = {.o = NULL};
    if (!b->too_long) v = fv_str_new(p, t, b->data, (int64_t)b->len);
    *too_long = b->too_long && !b->nomem;
    if (b->data != b->inline_) fl_free(b->ctx, b->data);
    return v;
}

/* ---- string and path helpers (pure; each returns a new string value, or a NULL
 * object when memory ran out or, for those with a too_long flag, when the string
 * would be longer than EXPR_RT_MAX_STRING, the flag then set) ---- */

static fv_str *S(fl_val v) {
    return fv_as_str(v);
}

/* [start, end) of s without trailing slashes; "/" for a string of slashes only. */
static size_t trim_slashes(const char *s, size_t n) {
    size_t e = n;
    while (e > 1 && s[e - 1] == '/')
        e--;
    return e;
}

/* The last component: pathlib's name ("a/b/" -> "b", "/" -> "", "" -> ""). */
static void base_range(const char *s, size_t n, size_t *b, size_t *e) {
    *e = trim_slashes(s, n);
    if (*e == 1 && s[0] == '/') *e = 0;
    size_t i = *e;
    while (i > 0 && s[i - 1] != '/')
        i--;
    *b = i;
}

/* Index of the dot starting the extension of name[0..n), or n when there is none
 * (no dot, a leading dot only as in ".bashrc", or a trailing dot as in "a."). */
static size_t ext_start(const char *name, size_t n) {
    size_t i = n;
    while (i > 0 && name[i - 1] != '.')
        i--;
    if (i <= 1 || i == n) return n; /* no dot, dot first, or dot last */
    return i - 1;
}

static fl_val str_basename(const fl_plan *p, uint32_t t, const fv_str *s) {
    size_t b, e;
    base_range(s->data, (size_t)s->len, &b, &e);
    return fv_str_new(p, t, s->data + b, (int64_t)(e - b));
}

static fl_val str_dirname(const fl_plan *p, uint32_t t, const fv_str *s) {
    const char *d = s->data;
    size_t e = trim_slashes(d, (size_t)s->len);
    if (e == 0) return fv_str_new(p, t, ".", 1);
    if (e == 1 && d[0] == '/') return fv_str_new(p, t, "/", 1);
    while (e > 0 && d[e - 1] != '/')
        e--; /* drop the last component */
    if (e == 0) return fv_str_new(p, t, ".", 1);
    while (e > 1 && d[e - 1] == '/')
        e--; /* and the slashes before it */
    return fv_str_new(p, t, d, (int64_t)e);
}

static fl_val str_stem_or_ext(const fl_plan *p, uint32_t t, const fv_str *s, bool stem) {
    size_t b, e;
    base_range(s->data, (size_t)s->len, &b, &e);
    size_t x = b + ext_start(s->data + b, e - b);
    if (stem) return fv_str_new(p, t, s->data + b, (int64_t)(x - b));
    return fv_str_new(p, t, s->data + x, (int64_t)(e - x));
}

/* join(a, b) -> path: b when absolute or a empty; a when b empty; else a "/" b
 * with a's trailing slashes folded into one. */
static fl_val str_join_path(const fl_plan *p, uint32_t t, const fv_str *a, const fv_str *b,
                            bool *too_long) {
    if (b->len > 0 && b->data[0] == '/') return fv_str_new(p, t, b->data, b->len);
    if (a->len == 0) return fv_str_new(p, t, b->data, b->len);
    if (b->len == 0) return fv_str_new(p, t, a->data, a->len);
    sbuf sb;
    sb_init(&sb, p->ctx);
    size_t e = trim_slashes(a->data, (size_t)a->len);
    sb_put(&sb, a->data, e);
    if (!(e == 1 && a->data[0] == '/')) sb_put(&sb, "/", 1);
    sb_put(&sb, b->data, (size_t)b->len);
    return sb_done(p, t, &sb, too_long);
}

static fl_val str_case(const fl_plan *p, uint32_t t, const fv_str *s, bool up) {
    fl_val v = fv_str_new(p, t, s->data, s->len);
    if (!v.o) return v;
    char *d = fv_as_str(v)->data;
    for (int64_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (up && c >= 'a' && c <= 'z') d[i] = (char)(c - 32);
        if (!up && c >= 'A' && c <= 'Z') d[i] = (char)(c + 32);
    }
    return v;
}

static const char *find(const fv_str *s, size_t from, const fv_str *sub) {
    if ((size_t)s->len < from || (size_t)sub->len > (size_t)s->len - from) return NULL;
    return memmem(s->data + from, (size_t)s->len - from, sub->data, (size_t)sub->len);
}

static fl_val str_replace(const fl_plan *p, uint32_t t, const fv_str *s, const fv_str *old,
                            const fv_str *new_, bool *too_long) {
    if (old->len == 0) return fv_str_new(p, t, s->data, s->len);
    sbuf sb;
    sb_init(&sb, p->ctx);
    size_t at = 0;
    const char *hit;
    while ((hit = find(s, at, old))) {
        size_t h = (size_t)(hit - s->data);
        sb_put(&sb, s->data + at, h - at);
        sb_put(&sb, new_->data, (size_t)new_->len);
        at = h + (size_t)old->len;
    }
    sb_put(&sb, s->data + at, (size_t)s->len - at);
    return sb_done(p, t, &sb, too_long);
}

/* POSIX single quotes: 'it'\''s' — one word whatever the content. */
static void sb_shquote(sbuf *sb, const fv_str *s) {
    sb_put(sb, "'", 1);
    for (int64_t i = 0; i < s->len; i++) {
        if (s->data[i] == '\'')
            sb_put(sb, "'\\''", 4);
        else
            sb_put(sb, &s->data[i], 1);
    }
    sb_put(sb, "'", 1);
}

static fl_val str_shquote(const fl_plan *p, uint32_t t, const fv_str *s, bool *too_long) {
    sbuf sb;
    sb_init(&sb, p->ctx);
    sb_shquote(&sb, s);
    return sb_done(p, t, &sb, too_long);
}

/* The elements of a list of strings as quoted words separated by spaces. */
static fl_val str_shquote_list(const fl_plan *p, uint32_t t, const fv_list *xs,
                               bool *too_long) {
    sbuf sb;
    sb_init(&sb, p->ctx);
    for (int64_t i = 0; i < xs->len; i++) {
        if (i) sb_put(&sb, " ", 1);
        sb_shquote(&sb, S(xs->items[i]));
    }
    return sb_done(p, t, &sb, too_long);
}

/* Python's repr of a float: the fewest significant digits that read back as the same
 * double; fixed notation for decimal exponents -4..15, else d.ddde+XX; ".0" added when
 * the text would read as an integer; "nan", "inf", "-inf". */
static int fmt_float(double d, char *buf, size_t len) {
    if (isnan(d)) return snprintf(buf, len, "nan");
    if (isinf(d)) return snprintf(buf, len, d < 0 ? "-inf" : "inf");
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, len, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    const char *e = strchr(buf, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (exp10 >= -4 && exp10 < 16 && prec < exp10 + 1) prec = exp10 + 1;
    int n = snprintf(buf, len, "%.*g", prec, d);
    if (!strpbrk(buf, ".e") && (size_t)n + 2 < len) n += snprintf(buf + n, len - (size_t)n, ".0");
    return n;
}

static bool blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copy s without surrounding blanks into buf (NUL-terminated); false when too long. */
static bool trimmed(const fv_str *s, char *buf, size_t len) {
    const char *b = s->data, *e = s->data + s->len;
    while (b < e && blank(*b))
        b++;
    while (e > b && blank(e[-1]))
        e--;
    if ((size_t)(e - b) >= len) return false;
    memcpy(buf, b, (size_t)(e - b));
    buf[e - b] = 0;
    return true;
}

/* A short printable excerpt of s for an error message. */
static void excerpt(const fv_str *s, char *buf, size_t len) {
    size_t n = (size_t)s->len < len - 4 ? (size_t)s->len : len - 4;
    if (n > 40) n = 40;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        buf[k++] = (s->data[i] >= 32 && s->data[i] < 127) ? s->data[i] : '?';
    if ((size_t)s->len > n) buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
}

/* `==` of two lists or records: element by element with the language's `==`, so
 * floats compare as IEEE numbers at any depth (nan != nan, -0.0 == 0.0), unlike the
 * value model's fv_equal, which is identity of values for caching. */
static bool deep_eq(const fl_plan *p, uint32_t type, fl_val a, fl_val b) {
    const plan_type *t = &p->types[type];
    switch ((plan_type_kind)t->kind) {
        case PT_FLOAT:
            return a.f == b.f;
        case PT_STR:
        case PT_PATH:
        case PT_DIR:
        case PT_DATE:
        case PT_TIME:
            return S(a)->len == S(b)->len && memcmp(S(a)->data, S(b)->data, (size_t)S(a)->len) == 0;
        case PT_BYTES:
            return fv_as_bytes(a)->len == fv_as_bytes(b)->len &&
                   memcmp(fv_as_bytes(a)->data, fv_as_bytes(b)->data,
                          (size_t)fv_as_bytes(a)->len) == 0;
        case PT_LIST: {
            const fv_list *x = fv_as_list(a), *y = fv_as_list(b);
            if (x->len != y->len) return false;
            for (int64_t i = 0; i < x->len; i++)
                if (!deep_eq(p, t->elem, x->items[i], y->items[i])) return false;
            return true;
        }
        case PT_RECORD:
            for (uint32_t i = 0; i < t->n; i++)
                if (!deep_eq(p, p->fields[t->first + i].type, fv_as_rec(a)->fields[i],
                             fv_as_rec(b)->fields[i]))
                    return false;
            return true;
        default: /* int, bool, duration */
            return a.i == b.i;
    }
}

/* ---- the loop ---- */

/* Release the values on the stack when instruction pc fails (see DESIGN). */
static void unwind(const fl_plan *p, uint32_t lam, uint32_t pc, fl_val *st, int sp) {
    uint32_t types[EXPR_RT_MAX_STACK];
    int n = 0;
    if (expr_stack_types(p, lam, pc, types, &n) != 0 || n != sp) return; /* cannot happen */
    for (int i = 0; i < n; i++)
        if (types[i] < p->n_types) fv_decref(p, types[i], st[i]);
}

static int fail(const fl_plan *p, uint32_t lam, uint32_t pc, fl_val *st, int sp,
                expr_error *err, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int fail(const fl_plan *p, uint32_t lam, uint32_t pc, fl_val *st, int sp,
                expr_error *err, const char *fmt, ...) {
    const plan_lambda *l = &p->lambdas[lam];
    err->loc = p->code[l->first_code + pc].loc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    unwind(p, lam, pc, st, sp);
    return -1;
}

#define TOP st[sp - 1]
#define NEXT st[sp - 2]
#define FAIL(...) return fail(p, lam, pc, st, sp, err, __VA_ARGS__)
/* a string builder or helper gave up (too long, or out of memory): the operands
 * are still on the stack */
#define CHECK_LEN(v, too_long, what)                                                               \
    do {                                                                                           \
        if (!(v).o && (too_long))                                                                  \
            FAIL("string longer than %zu MiB in %s", (size_t)EXPR_RT_MAX_STRING >> 20, what);      \
        if (!(v).o) FAIL(EXPR_OOM_MSG);                                                            \
    } while (0)
/* a constructor gave no object: the stack is as before the instruction */
#define CHECK_MEM(v)                                                                               \
    do {                                                                                           \
        if (!(v).o) FAIL(EXPR_OOM_MSG);                                                            \
    } while (0)
#define BIN_I(OPNAME, BUILTIN)                                                                     \
    do {                                                                                           \
        int64_t r_;                                                                                \
        if (BUILTIN(NEXT.i, TOP.i, &r_)) FAIL("integer overflow in '" OPNAME "'");                 \
        NEXT.i = r_;                                                                               \
        sp--;                                                                                      \
    } while (0)
#define CMP(FIELD, OP)                                                                             \
    do {                                                                                           \
        NEXT.i = NEXT.FIELD OP TOP.FIELD;                                                          \
        sp--;                                                                                      \
    } while (0)
#define CMP_S(OP)                                                                                  \
    do {                                                                                           \
        int c_ = str_cmp(S(NEXT), S(TOP));                                                         \
        fv_decref(p, (uint32_t)in->a, NEXT);                                                       \
        fv_decref(p, (uint32_t)in->a, TOP);                                                        \
        sp--;                                                                                      \
        TOP.i = c_ OP 0;                                                                           \
    } while (0)

static int str_cmp(const fv_str *a, const fv_str *b) {
    size_t n = (size_t)(a->len < b->len ? a->len : b->len);
    int c = memcmp(a->data, b->data, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* The loop, entered at instruction pc with the stack st[0..*spp); it stops before
 * instruction `stop` (1), at RET (0, the result in *out) or on an error (-1, the
 * stack released); `stepping` false: never stops (the test folds away). Inlined
 * into both entry points. */
static inline __attribute__((always_inline)) int run(const fl_plan *p, uint32_t lam, uint32_t pc,
                                                     bool stepping, uint32_t stop,
                                                     const fl_val *args, fl_val *st, int *spp,
                                                     fl_val *out, expr_error *err) {
    const plan_lambda *l = &p->lambdas[lam];
    const plan_instr *code = p->code + l->first_code;
    const uint32_t *ptypes = p->typelist + l->first_ptype;
    int sp = *spp;
    for (;;) {
        if (stepping && pc == stop) {
            *spp = sp;
            return 1;
        }
        const plan_instr *in = &code[pc];
        switch ((fl_expr_op)in->op) {
            /* ---- operands ---- */
            case EOP_IMM:
                st[sp++].i = in->a;
                break;
            case EOP_CONST_I:
                st[sp++].i = p->values[in->a].u.i;
                break;
            case EOP_CONST_F:
                st[sp++].f = p->values[in->a].u.f;
                break;
            case EOP_CONST_S: {
                const plan_value *v = &p->values[in->a];
                fl_val sv = fv_str_cstr(p, v->type, plan_str(p, v->u.s));
                CHECK_MEM(sv);
                st[sp++] = sv;
                break;
            }
            case EOP_CONST_V: {
                fl_val cv = fv_from_const(p, (uint32_t)in->a);
                if (!cv.o && fv_is_heap(p, p->values[in->a].type)) FAIL(EXPR_OOM_MSG);
                st[sp++] = cv;
                break;
            }
            case EOP_PARAM:
                st[sp++] = args[in->a];
                break;
            case EOP_PARAM_REF:
                fv_incref(p, ptypes[in->a], args[in->a]);
                st[sp++] = args[in->a];
                break;
            /* ---- arithmetic ---- */
            case EOP_ADD_I:
                BIN_I("+", __builtin_add_overflow);
                break;
            case EOP_SUB_I:
                BIN_I("-", __builtin_sub_overflow);
                break;
            case EOP_MUL_I:
                BIN_I("*", __builtin_mul_overflow);
                break;
            case EOP_DIV_I:
                if (TOP.i == 0) FAIL("division by zero in '/'");
                if (TOP.i == -1 && NEXT.i == INT64_MIN) FAIL("integer overflow in '/'");
                NEXT.i /= TOP.i;
                sp--;
                break;
            case EOP_MOD_I:
                if (TOP.i == 0) FAIL("modulo by zero in '%%'");
                NEXT.i = TOP.i == -1 ? 0 : NEXT.i % TOP.i;
                sp--;
                break;
            case EOP_NEG_I:
                if (TOP.i == INT64_MIN) FAIL("integer overflow in '-'");
                TOP.i = -TOP.i;
                break;
            case EOP_ADD_F:
                NEXT.f += TOP.f;
                sp--;
                break;
            case EOP_SUB_F:
                NEXT.f -= TOP.f;
                sp--;
                break;
            case EOP_MUL_F:
                NEXT.f *= TOP.f;
                sp--;
                break;
            case EOP_DIV_F:
                NEXT.f /= TOP.f;
                sp--;
                break;
            case EOP_MOD_F:
                NEXT.f = fmod(NEXT.f, TOP.f);
                sp--;
                break;
            case EOP_NEG_F:
                TOP.f = -TOP.f;
                break;
            case EOP_I2F:
                st[sp - 1 - in->a].f = (double)st[sp - 1 - in->a].i;
                break;
            /* ---- comparison ---- */
            case EOP_EQ_I:
                CMP(i, ==);
                break;
            case EOP_NE_I:
                CMP(i, !=);
                break;
            case EOP_LT_I:
                CMP(i, <);
                break;
            case EOP_LE_I:
                CMP(i, <=);
                break;
            case EOP_GT_I:
                CMP(i, >);
                break;
            case EOP_GE_I:
                CMP(i, >=);
                break;
            case EOP_EQ_F:
                CMP(f, ==);
                break;
            case EOP_NE_F:
                CMP(f, !=);
                break;
            case EOP_LT_F:
                CMP(f, <);
                break;
            case EOP_LE_F:
                CMP(f, <=);
                break;
            case EOP_GT_F:
                CMP(f, >);
                break;
            case EOP_GE_F:
                CMP(f, >=);
                break;
            case EOP_EQ_S:
                CMP_S(==);
                break;
            case EOP_NE_S:
                CMP_S(!=);
                break;
            case EOP_LT_S:
                CMP_S(<);
                break;
            case EOP_LE_S:
                CMP_S(<=);
                break;
            case EOP_GT_S:
                CMP_S(>);
                break;
            case EOP_GE_S:
                CMP_S(>=);
                break;
            case EOP_EQ_V:
            case EOP_NE_V: {
                bool eq = deep_eq(p, (uint32_t)in->a, NEXT, TOP);
                fv_decref(p, (uint32_t)in->a, NEXT);
                fv_decref(p, (uint32_t)in->a, TOP);
                sp--;
                TOP.i = in->op == EOP_EQ_V ? eq : !eq;
                break;
            }
            case EOP_NOT:
                TOP.i = !TOP.i;
                break;
            /* ---- control ---- */
            case EOP_JUMP:
                pc = (uint32_t)in->a;
                continue;
            case EOP_JUMP_IF_FALSE:
                if (!st[--sp].i) {
                    pc = (uint32_t)in->a;
                    continue;
                }
                break;
            case EOP_JUMP_IF_TRUE:
                if (st[--sp].i) {
                    pc = (uint32_t)in->a;
                    continue;
                }
                break;
            case EOP_RET:
                *out = st[--sp];
                *spp = sp;
                return 0;
            /* ---- records and lists ---- */
            case EOP_FIELD: {
                const plan_type *rt = &p->types[in->a];
                uint32_t ft = p->fields[rt->first + in->b].type;
                fl_val v = fv_as_rec(TOP)->fields[in->b];
                fv_incref(p, ft, v);
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP = v;
                break;
            }
            case EOP_MAKE_RECORD: {
                uint32_t n = p->types[in->a].n;
                fl_val r = fv_rec_new(p, (uint32_t)in->a);
                CHECK_MEM(r); /* the fields are still on the stack */
                sp -= (int)n;
                if (n) memcpy(fv_as_rec(r)->fields, &st[sp], n * sizeof(fl_val));
                st[sp++] = r;
                break;
            }
            case EOP_MAKE_LIST: {
                uint32_t n = in->b;
                fl_val v = fv_list_new(p, (uint32_t)in->a, n);
                CHECK_MEM(v); /* the items are still on the stack */
                sp -= (int)n;
                if (n) memcpy(fv_as_list(v)->items, &st[sp], n * sizeof(fl_val));
                st[sp++] = v;
                break;
            }
            case EOP_INDEX: {
                fv_list *xs = fv_as_list(NEXT);
                int64_t i = TOP.i;
                if (i < 0 || i >= xs->len)
                    FAIL("index %" PRId64 " out of range for a list of length %" PRId64, i,
                         xs->len);
                uint32_t et = p->types[in->a].elem;
                fl_val v = xs->items[i];
                fv_incref(p, et, v);
                fv_decref(p, (uint32_t)in->a, NEXT);
                sp--;
                TOP = v;
                break;
            }
            case EOP_LEN_L: {
                int64_t n = fv_as_list(TOP)->len;
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP.i = n;
                break;
            }
            case EOP_JOIN_L: {
                uint32_t et = p->types[in->a].elem;
                fv_list *xs = fv_as_list(NEXT);
                fv_str *sep = S(TOP);
                sbuf sb;
                sb_init(&sb, p->ctx);
                for (int64_t i = 0; i < xs->len; i++) {
                    if (i) sb_put(&sb, sep->data, (size_t)sep->len);
                    sb_put(&sb, S(xs->items[i])->data, (size_t)S(xs->items[i])->len);
                }
                bool too_long;
                fl_val v = sb_done(p, et, &sb, &too_long);
                CHECK_LEN(v, too_long, "join()");
                fv_decref(p, et, TOP);
                fv_decref(p, (uint32_t)in->a, NEXT);
                sp--;
                TOP = v;
                break;
            }
            /* ---- strings ---- */
            case EOP_CONCAT:
            case EOP_INTERP: {
                int n = in->op == EOP_CONCAT ? 2 : (int)in->b;
                sbuf sb;
                sb_init(&sb, p->ctx);
                for (int k = sp - n; k < sp; k++)
                    sb_put(&sb, S(st[k])->data, (size_t)S(st[k])->len);
                bool too_long;
                fl_val v = sb_done(p, (uint32_t)in->a, &sb, &too_long);
                CHECK_LEN(v, too_long, in->op == EOP_CONCAT ? "'+'" : "an interpolation");
                for (int k = sp - n; k < sp; k++)
                    fv_decref(p, (uint32_t)in->a, st[k]);
                sp -= n;
                st[sp++] = v;
                break;
            }
            case EOP_TOSTR_I: {
                char buf[32];
                int n = snprintf(buf, sizeof buf, "%" PRId64, TOP.i);
                fl_val v = fv_str_new(p, (uint32_t)in->a, buf, n);
                CHECK_MEM(v);
                TOP = v;
                break;
            }
            case EOP_TOSTR_F: {
                char buf[40];
                int n = fmt_float(TOP.f, buf, sizeof buf);
                fl_val v = fv_str_new(p, (uint32_t)in->a, buf, n);
                CHECK_MEM(v);
                TOP = v;
                break;
            }
            case EOP_TOSTR_B: {
                fl_val v = TOP.i ? fv_str_new(p, (uint32_t)in->a, "true", 4)
                                 : fv_str_new(p, (uint32_t)in->a, "false", 5);
                CHECK_MEM(v);
                TOP = v;
                break;
            }
            case EOP_LEN_S: {
                int64_t n = S(TOP)->len;
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP.i = n;
                break;
            }
            case EOP_SHQUOTE:
            case EOP_BASENAME:
            case EOP_DIRNAME:
            case EOP_STEM:
            case EOP_EXT:
            case EOP_UPPER:
            case EOP_LOWER: {
                uint32_t t = (uint32_t)in->a;
                const fv_str *s = S(TOP);
                fl_val v;
                bool too_long = false;
                switch (in->op) {
                    case EOP_SHQUOTE:
                        v = str_shquote(p, t, s, &too_long);
                        break;
                    case EOP_BASENAME:
                        v = str_basename(p, t, s);
                        break;
                    case EOP_DIRNAME:
                        v = str_dirname(p, t, s);
                        break;
                    case EOP_STEM:
                        v = str_stem_or_ext(p, t, s, true);
                        break;
                    case EOP_EXT:
                        v = str_stem_or_ext(p, t, s, false);
                        break;
                    case EOP_UPPER:
                        v = str_case(p, t, s, true);
                        break;
                    default:
                        v = str_case(p, t, s, false);
                        break;
                }
                CHECK_LEN(v, too_long, "a command's quoting");
                fv_decref(p, t, TOP);
                TOP = v;
                break;
            }
            case EOP_DAY_T: { /* a verified time: at least "YYYY-MM-DD" */
                const fv_str *s = S(TOP);
                fl_val v = fv_str_new(p, (uint32_t)in->a, s->data, s->len < 10 ? s->len : 10);
                CHECK_MEM(v);
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP = v;
                break;
            }
            case EOP_SHQUOTE_L: {
                uint32_t et = p->types[in->a].elem;
                bool too_long = false;
                fl_val v = str_shquote_list(p, et, fv_as_list(TOP), &too_long);
                CHECK_LEN(v, too_long, "a command's quoting");
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP = v;
                break;
            }
            case EOP_JOIN_P: {
                bool too_long = false;
                fl_val v = str_join_path(p, (uint32_t)in->a, S(NEXT), S(TOP), &too_long);
                CHECK_LEN(v, too_long, "join()");
                fv_decref(p, (uint32_t)in->a, NEXT);
                fv_decref(p, (uint32_t)in->a, TOP);
                sp--;
                TOP = v;
                break;
            }
            case EOP_REPLACE: {
                uint32_t t = (uint32_t)in->a;
                bool too_long = false;
                fl_val v = str_replace(p, t, S(st[sp - 3]), S(NEXT), S(TOP), &too_long);
                CHECK_LEN(v, too_long, "replace()");
                for (int k = sp - 3; k < sp; k++)
                    fv_decref(p, t, st[k]);
                sp -= 2;
                TOP = v;
                break;
            }
            case EOP_CONTAINS:
            case EOP_STARTS_WITH:
            case EOP_ENDS_WITH: {
                const fv_str *s = S(NEXT), *x = S(TOP);
                bool r;
                if (in->op == EOP_CONTAINS)
                    r = x->len == 0 || find(s, 0, x) != NULL;
                else if (x->len > s->len)
                    r = false;
                else if (in->op == EOP_STARTS_WITH)
                    r = memcmp(s->data, x->data, (size_t)x->len) == 0;
                else
                    r = memcmp(s->data + s->len - x->len, x->data, (size_t)x->len) == 0;
                fv_decref(p, (uint32_t)in->a, NEXT);
                fv_decref(p, (uint32_t)in->a, TOP);
                sp--;
                TOP.i = r;
                break;
            }
            case EOP_INT_S: {
                char buf[64], ex[48];
                char *end = buf;
                long long v = 0;
                errno = 0;
                if (trimmed(S(TOP), buf, sizeof buf)) {
                    const char *d = buf + (buf[0] == '-' || buf[0] == '+');
                    if (*d >= '0' && *d <= '9') v = strtoll(buf, &end, 10);
                }
                if (end == buf || *end || errno == ERANGE) {
                    excerpt(S(TOP), ex, sizeof ex);
                    FAIL(errno == ERANGE ? "int(): '%s' is out of range"
                                         : "int(): '%s' is not an integer",
                         ex);
                }
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP.i = v;
                break;
            }
            case EOP_INT_F: {
                double f = TOP.f;
                if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) {
                    char buf[40];
                    fmt_float(f, buf, sizeof buf);
                    FAIL("int(): %s is out of range", buf);
                }
                TOP.i = (int64_t)f;
                break;
            }
            case EOP_FLOAT_S: {
                char buf[128], ex[48];
                char *end = buf;
                double v = 0;
                if (trimmed(S(TOP), buf, sizeof buf)) v = strtod(buf, &end);
                if (end == buf || *end) {
                    excerpt(S(TOP), ex, sizeof ex);
                    FAIL("float(): '%s' is not a number", ex);
                }
                fv_decref(p, (uint32_t)in->a, TOP);
                TOP.f = v;
                break;
            }
            default:
                FAIL("bad instruction %u", (unsigned)in->op);
        }
        pc++;
    }
}

int expr_eval(const fl_plan *p, uint32_t lam, const fl_val *args, fl_val *out,
              expr_error *err) {
    fl_val st[EXPR_RT_MAX_STACK];
    int sp = 0;
    return run(p, lam, 0, false, 0, args, st, &sp, out, err);
}

int expr_step(const fl_plan *p, uint32_t lam, uint32_t pc, const fl_val *args, fl_val *st,
              int *sp, expr_error *err) {
    const plan_instr *in = &p->code[p->lambdas[lam].first_code + pc];
    switch ((fl_expr_op)in->op) {
        case EOP_JUMP:
        case EOP_JUMP_IF_FALSE:
        case EOP_JUMP_IF_TRUE:
        case EOP_RET:
            err->loc = in->loc;
            snprintf(err->msg, sizeof err->msg, "expr_step: instruction %u transfers control",
                     (unsigned)in->op);
            return -1;
        default:
            return run(p, lam, pc, true, pc + 1, args, st, sp, NULL, err) < 0 ? -1 : 0;
    }
}

char *expr_error_format(const fl_plan *p, const expr_error *err, char *buf, size_t len) {
    const char *file = plan_loc_file(p, err->loc);
    if (err->loc < p->n_locs)
        snprintf(buf, len, "%s:%u:%u: %s", file, p->locs[err->loc].line, p->locs[err->loc].col,
                 err->msg);
    else
        snprintf(buf, len, "%s: %s", file, err->msg);
    return buf;
}
