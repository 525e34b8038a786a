/*
 * test_jit.c — the JIT against the interpreter: same results, same errors (message
 * and loc), same reference counts (ASan finds leaks and double frees).
 *
 * Lambdas are compiled from source text by the real compiler path (parse, check,
 * expr_lower_lambda, expr_verify), many into one plan; the plan is then JIT-compiled
 * once (jit_attach) and every lambda is run by both engines on several inputs:
 * expr_eval (the interpreter) and expr_run (the native code).
 *
 *  - hand-written cases cover every opcode and every error path;
 *  - a corpus of JIT_CORPUS random well-typed expressions from a seeded generator
 *    (ints, floats, bools, strings, a record, a list; overflow, division by zero,
 *    bad indexes and bad conversions are frequent on purpose).
 *
 * Built without LLVM the comparisons are skipped (the interpreter alone runs).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <ffi.h>

#include "check_expr.h"
#include "expr.h"
#include "jit.h"
#include "expr_ops.h"
#include "types.h"

#if defined(__SANITIZE_ADDRESS__)
#define JIT_CORPUS 2000 /* under ASan (make check's second pass): a smaller corpus */
#else
#define JIT_CORPUS 10000 /* random expressions */
#endif
#define JIT_BATCH 1000 /* lambdas per plan (one JIT each) */
#define NPARAMS 6      /* (x: int, y: int, s: str, f: float, r: Pair, xs: [int]) */
#define NINPUTS 6      /* argument tuples each lambda runs on */

typedef struct tj {
    fl_plan *p;  /* the plan lambdas go to */
    ast_arena *ar; /* parse trees */
    char *src;     /* the last program text */
    char *errs;    /* diagnostics of the last compile */
    size_t nerrs;  /* their length */
    uint32_t t_int, t_float, t_bool, t_str, t_path, t_lint, t_lstr, t_pair; /* types */
    uint32_t ptypes[NPARAMS];      /* the parameters of every lambda */
    fl_val in[NINPUTS][NPARAMS]; /* inputs */
} tj;

static const char *const in_s[NINPUTS] = {"", "a/b.tar.gz", "12", " -7 ", "x'y/", "3.5e1"};
static const int64_t in_x[NINPUTS] = {0, 1, -7, 3, INT64_MAX, INT64_MIN};
static const int64_t in_y[NINPUTS] = {2, 0, -1, 100, -3, 1};
static const double in_f[NINPUTS] = {0.0, 1.5, -2.25, 1e300, -0.0, 7.0};

static tj *tj_new(void) {
    tj *t = calloc(1, sizeof *t);
    fl_plan *p = t->p = plan_new(fl_ctx_default());
    p->source = plan_intern_str(p, "t.flow");
    t->ar = ast_arena_new(fl_ctx_default());
    t->t_int = plan_type_basic(p, PT_INT);
    t->t_float = plan_type_basic(p, PT_FLOAT);
    t->t_bool = plan_type_basic(p, PT_BOOL);
    t->t_str = plan_type_basic(p, PT_STR);
    t->t_path = plan_type_basic(p, PT_PATH);
    t->t_lint = plan_type_list(p, t->t_int);
    t->t_lstr = plan_type_list(p, t->t_str);
    plan_field pf[] = {{plan_intern_str(p, "a"), t->t_int}, {plan_intern_str(p, "b"), t->t_str}};
    t->t_pair = plan_type_record(p, plan_intern_str(p, "Pair"), pf, 2);
    uint32_t pt[NPARAMS] = {t->t_int, t->t_int, t->t_str, t->t_float, t->t_pair, t->t_lint};
    memcpy(t->ptypes, pt, sizeof pt);
    for (int k = 0; k < NINPUTS; k++) {
        fl_val *a = t->in[k];
        a[0].i = in_x[k];
        a[1].i = in_y[k];
        a[2] = fv_str_cstr(p, t->t_str, in_s[k]);
        a[3].f = in_f[k];
        a[4] = fv_rec_new(p, t->t_pair);
        fv_as_rec(a[4])->fields[0].i = in_y[k] * 3;
        fv_as_rec(a[4])->fields[1] = fv_str_cstr(p, t->t_str, in_s[(k + 1) % NINPUTS]);
        a[5] = fv_list_new(p, t->t_lint, k % 4);
        for (int i = 0; i < k % 4; i++)
            fv_as_list(a[5])->items[i].i = in_x[(k + i) % NINPUTS];
    }
    return t;
}

static void tj_free(tj *t) {
    for (int k = 0; k < NINPUTS; k++)
        for (int i = 0; i < NPARAMS; i++)
            fv_decref(t->p, t->ptypes[i], t->in[k][i]);
    jit_detach(t->p);
    plan_free(t->p);
    ast_arena_free(t->ar);
    free(t->src);
    free(t->errs);
    free(t);
}

/* Compile "(x, y, s, f, r, xs) => BODY" written on line 3; PLAN_NONE when the text
 * does not type-check (the generator may produce such text, rarely). */
static uint32_t lam(tj *t, const char *body) {
    size_t need = strlen(body) + 128;
    char *text = malloc(need);
    snprintf(text, need, "flow f() {\n    let y = q.map(\n(x, y, s, f, r, xs) => %s)\n}\n", body);
    free(t->src);
    free(t->errs);
    t->errs = NULL;
    t->src = text;
    FILE *f = open_memstream(&t->errs, &t->nerrs);
    fl_diag d;
    diag_init(&d, "t.flow", t->src, strlen(t->src), f);
    const fl_node *prog = fl_parse(t->ar, &d, t->src, strlen(t->src));
    const fl_node *l = prog ? ast_find(prog, AST_LAMBDA) : NULL;
    uint32_t li = PLAN_NONE, ret;
    if (l && d.errors == 0) {
        expr_ctx cx = {t->p, &d, NULL, 0};
        li = expr_lower_lambda(&cx, l, t->ptypes, NPARAMS, PLAN_NONE, &ret);
    }
    fclose(f);
    if (li != PLAN_NONE) {
        char why[256] = "";
        int v = expr_verify(t->p, li, why, sizeof why);
        if (v) fprintf(stderr, "verify: %s (%s)\n", why, body);
        assert_int_equal(v, 0);
    }
    return li;
}

/* Run lambda li on input k through both engines; fail the test on any difference. */
static int both(tj *t, uint32_t li, int k, const char *body) {
    fl_val a, b;
    expr_error ea, eb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    int ra = expr_eval(t->p, li, t->in[k], &a, &ea);
    int rb = expr_run(t->p, li, t->in[k], &b, &eb);
    uint32_t rt = t->p->lambdas[li].ret;
    bool same = ra == rb;
    if (same && ra == 0) same = fv_equal(t->p, rt, a, b);
    if (same && ra != 0) same = ea.loc == eb.loc && !strcmp(ea.msg, eb.msg);
    if (!same) {
        fprintf(stderr,
                "differ on input %d: %s\n  interpreter: %d %s (loc %u)\n  jit: %d %s (loc %u)\n", k,
                body, ra, ra ? ea.msg : "", ra ? ea.loc : 0, rb, rb ? eb.msg : "", rb ? eb.loc : 0);
        if (ra == 0 && rb == 0) {
            fv_print_json(t->p, rt, a, stderr);
            fputs(" vs ", stderr);
            fv_print_json(t->p, rt, b, stderr);
            fputc('\n', stderr);
        }
    }
    if (ra == 0) fv_decref(t->p, rt, a);
    if (rb == 0) fv_decref(t->p, rt, b);
    assert_true(same);
    return ra != 0;
}

static void attach(tj *t, uint32_t want_compiled) {
    char err[300] = "";
    int rc = jit_attach(t->p, err, sizeof err);
    if (rc) fprintf(stderr, "jit_attach: %s\n", err);
    assert_int_equal(rc, 0);
    jit_stats s = jit_stats_of(t->p);
    assert_int_equal(s.compiled, want_compiled);
}

/* ---- hand-written cases: every opcode, every error ---- */

static const char *const cases[] = {
    "x * 3 + 1",
    "x - y",
    "x / y",
    "x % y",
    "-x",
    "x * y",
    "x + y",
    "-(x - y) * 2",
    "x / 2 + x % 3",
    "f + 1.5",
    "f - 2",
    "f * f",
    "f / 0.0",
    "f % 2.5",
    "-f",
    "f / 3",
    "float(x) / 4.0 - 1",
    "x < y",
    "x <= y",
    "x > y",
    "x >= y",
    "x == y",
    "x != y",
    "f < 1.0",
    "f <= 1.5",
    "f > 0.0",
    "f >= -0.0",
    "f == 0.0",
    "f != f / 0.0",
    "s == \"12\"",
    "s != \"\"",
    "s < \"b\"",
    "s <= r.b",
    "s > r.b",
    "s >= \"a\"",
    "xs == [1, 2]",
    "xs != xs",
    "not (x > 1)",
    "x > 1 and y > 1",
    "x > 1 or y > 1",
    "if x > y then x else y",
    "if x > 0 then s else r.b",
    "if f > 1.0 then 1 else 2",
    "r.a",
    "r.b",
    "r.a + x",
    "len(xs)",
    "xs[y]",
    "xs[0]",
    "[x, y, 3][y]",
    "len([s, r.b])",
    "join([s, r.b], \"-\")",
    "s + r.b",
    "\"<{x}|{s}|{f}|{x > 1}>\"",
    "str(x)",
    "str(f)",
    "str(x > y)",
    "len(s)",
    "basename(s)",
    "dirname(s)",
    "stem(s)",
    "ext(s)",
    "join(s, r.b)",
    "upper(s)",
    "lower(\"AbC\" + s)",
    "replace(s, \"/\", \"::\")",
    "contains(s, \"/\")",
    "starts_with(s, \"a\")",
    "ends_with(s, \"z\")",
    "int(s)",
    "int(f)",
    "float(s)",
    "int(f * 1e300)",
    "x * 9223372036854775807",
    "x + 9223372036854775807",
    "x - 9223372036854775807 - 2",
    "x / 0",
    "x % 0",
    "{a = x, b = s}",
    "{a = x, b = s}.b",
    "[s, \"k\"]",
    "[f, 1.0]",
    "if x > 0 then xs else [y]",
    "int(str(x) + s)",
    "float(str(f))",
    "(x + 1) * (y - 1) / (x - y)",
};

static void test_cases(void **state) {
    (void)state;
    tj *t = tj_new();
    uint32_t n = sizeof cases / sizeof *cases;
    uint32_t *li = calloc(n, sizeof *li);
    for (uint32_t i = 0; i < n; i++) {
        li[i] = lam(t, cases[i]);
        if (li[i] == PLAN_NONE) fprintf(stderr, "does not compile: %s\n%s", cases[i], t->errs);
        assert_int_not_equal(li[i], PLAN_NONE);
    }
    if (!jit_available()) {
        free(li);
        tj_free(t);
        skip();
    }
    attach(t, t->p->n_lambdas);
    for (uint32_t i = 0; i < n; i++)
        for (int k = 0; k < NINPUTS; k++)
            both(t, li[i], k, cases[i]);
    free(li);
    tj_free(t);
}

/* ---- the random corpus ---- */

typedef struct rng {
    uint64_t s; /* xorshift64* state */
} rng;

static uint32_t rnd(rng *r, uint32_t n) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ULL) >> 33) % n;
}

typedef enum { GI, GF, GB, GS } gty;

typedef struct sb {
    char *d;         /* text */
    size_t len, cap; /* used, capacity */
} sb;

static void put(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->d = realloc(b->d, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->d + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void gen(rng *r, sb *b, gty t, int depth);

static void gen2(rng *r, sb *b, const char *op, gty a, gty c, int depth) {
    put(b, "(");
    gen(r, b, a, depth - 1);
    put(b, " %s ", op);
    gen(r, b, c, depth - 1);
    put(b, ")");
}

static void gen_call(rng *r, sb *b, const char *fn, int n, const gty *ts, int depth) {
    put(b, "%s(", fn);
    for (int i = 0; i < n; i++) {
        if (i) put(b, ", ");
        gen(r, b, ts[i], depth - 1);
    }
    put(b, ")");
}

static const char *const lit_s[] = {"\"\"",    "\"a\"",   "\"a/b.c\"", "\"x.tar.gz\"",
                                    "\"12\"",  "\" 7 \"", "\"/\"",     "\"ab\"",
                                    "\"3.5\"", "\"nan\"", "\"-0\""};
static const char *const lit_i[] = {"0",
                                    "1",
                                    "2",
                                    "3",
                                    "7",
                                    "-1",
                                    "100",
                                    "1000000007",
                                    "9223372036854775807",
                                    "4611686018427387904"};
static const char *const lit_f[] = {"0.0", "1.5", "0.1", "2.0", "1e308", "-3.25", "1e-7"};

static void gen(rng *r, sb *b, gty t, int depth) {
    static const gty SS[3] = {GS, GS, GS}, II[2] = {GI, GI};
    if (depth <= 0 || rnd(r, 4) == 0) { /* a leaf */
        switch (t) {
            case GI: {
                uint32_t k = rnd(r, 5);
                if (k == 0)
                    put(b, "x");
                else if (k == 1)
                    put(b, "y");
                else if (k == 2)
                    put(b, "r.a");
                else
                    put(b, "%s", lit_i[rnd(r, sizeof lit_i / sizeof *lit_i)]);
                return;
            }
            case GF:
                if (rnd(r, 2))
                    put(b, "f");
                else
                    put(b, "%s", lit_f[rnd(r, sizeof lit_f / sizeof *lit_f)]);
                return;
            case GB:
                put(b, "%s", rnd(r, 2) ? "true" : "false");
                return;
            case GS: {
                uint32_t k = rnd(r, 3);
                if (k == 0)
                    put(b, "s");
                else if (k == 1)
                    put(b, "r.b");
                else
                    put(b, "%s", lit_s[rnd(r, sizeof lit_s / sizeof *lit_s)]);
                return;
            }
        }
    }
    switch (t) {
        case GI:
            switch (rnd(r, 14)) {
                case 0:
                    gen2(r, b, "+", GI, GI, depth);
                    return;
                case 1:
                    gen2(r, b, "-", GI, GI, depth);
                    return;
                case 2:
                    gen2(r, b, "*", GI, GI, depth);
                    return;
                case 3:
                    gen2(r, b, "/", GI, GI, depth);
                    return;
                case 4:
                    gen2(r, b, "%", GI, GI, depth);
                    return;
                case 5:
                    put(b, "(-");
                    gen(r, b, GI, depth - 1);
                    put(b, ")");
                    return;
                case 6:
                    gen_call(r, b, "len", 1, SS, depth);
                    return;
                case 7:
                    put(b, "len(xs)");
                    return;
                case 8:
                    put(b, "xs[");
                    gen(r, b, GI, depth - 1);
                    put(b, "]");
                    return;
                case 9:
                    put(b, "[");
                    gen(r, b, GI, depth - 1);
                    put(b, ", ");
                    gen(r, b, GI, depth - 1);
                    put(b, "][");
                    gen(r, b, GI, depth - 1);
                    put(b, "]");
                    return;
                case 10:
                    put(b, "(if ");
                    gen(r, b, GB, depth - 1);
                    put(b, " then ");
                    gen(r, b, GI, depth - 1);
                    put(b, " else ");
                    gen(r, b, GI, depth - 1);
                    put(b, ")");
                    return;
                case 11:
                    put(b, "int(");
                    gen(r, b, GF, depth - 1);
                    put(b, ")");
                    return;
                case 12:
                    put(b, "int(");
                    gen(r, b, GS, depth - 1);
                    put(b, ")");
                    return;
                default:
                    put(b, "int(str(");
                    gen(r, b, GI, depth - 1);
                    put(b, "))");
                    return;
            }
        case GF:
            switch (rnd(r, 10)) {
                case 0:
                    gen2(r, b, "+", GF, GF, depth);
                    return;
                case 1:
                    gen2(r, b, "-", GF, GI, depth);
                    return;
                case 2:
                    gen2(r, b, "*", GI, GF, depth);
                    return;
                case 3:
                    gen2(r, b, "/", GF, GF, depth);
                    return;
                case 4:
                    gen2(r, b, "%", GF, GF, depth);
                    return;
                case 5:
                    put(b, "(-");
                    gen(r, b, GF, depth - 1);
                    put(b, ")");
                    return;
                case 6:
                    put(b, "float(");
                    gen(r, b, GI, depth - 1);
                    put(b, ")");
                    return;
                case 7:
                    put(b, "float(");
                    gen(r, b, GS, depth - 1);
                    put(b, ")");
                    return;
                case 8:
                    put(b, "(if ");
                    gen(r, b, GB, depth - 1);
                    put(b, " then ");
                    gen(r, b, GF, depth - 1);
                    put(b, " else ");
                    gen(r, b, GF, depth - 1);
                    put(b, ")");
                    return;
                default:
                    put(b, "float(str(");
                    gen(r, b, GF, depth - 1);
                    put(b, "))");
                    return;
            }
        case GB: {
            static const char *const cmp[] = {"<", "<=", ">", ">=", "==", "!="};
            const char *c = cmp[rnd(r, 6)];
            switch (rnd(r, 10)) {
                case 0:
                    gen2(r, b, c, GI, GI, depth);
                    return;
                case 1:
                    gen2(r, b, c, GF, GF, depth);
                    return;
                case 2:
                    gen2(r, b, c, GS, GS, depth);
                    return;
                case 3:
                    gen2(r, b, c, GI, GF, depth);
                    return;
                case 4:
                    gen2(r, b, "and", GB, GB, depth);
                    return;
                case 5:
                    gen2(r, b, "or", GB, GB, depth);
                    return;
                case 6:
                    put(b, "(not ");
                    gen(r, b, GB, depth - 1);
                    put(b, ")");
                    return;
                case 7:
                    gen_call(r, b, "contains", 2, SS, depth);
                    return;
                case 8:
                    gen_call(r, b, rnd(r, 2) ? "starts_with" : "ends_with", 2, SS, depth);
                    return;
                default:
                    put(b, "(xs %s [", rnd(r, 2) ? "==" : "!=");
                    gen(r, b, GI, depth - 1);
                    put(b, "])");
                    return;
            }
        }
        case GS:
            switch (rnd(r, 16)) {
                case 0:
                    gen2(r, b, "+", GS, GS, depth);
                    return;
                case 1:
                    put(b, "\"<{");
                    gen(r, b, GI, depth - 1);
                    put(b, "}|{");
                    gen(r, b, GS, depth - 1);
                    put(b, "}|{");
                    gen(r, b, GF, depth - 1);
                    put(b, "}>\"");
                    return;
                case 2:
                    put(b, "str(");
                    gen(r, b, GI, depth - 1);
                    put(b, ")");
                    return;
                case 3:
                    put(b, "str(");
                    gen(r, b, GF, depth - 1);
                    put(b, ")");
                    return;
                case 4:
                    put(b, "str(");
                    gen(r, b, GB, depth - 1);
                    put(b, ")");
                    return;
                case 5:
                    gen_call(r, b, "upper", 1, SS, depth);
                    return;
                case 6:
                    gen_call(r, b, "lower", 1, SS, depth);
                    return;
                case 7:
                    gen_call(r, b, "replace", 3, SS, depth);
                    return;
                case 8:
                    gen_call(r, b, "basename", 1, SS, depth);
                    return;
                case 9:
                    gen_call(r, b, "dirname", 1, SS, depth);
                    return;
                case 10:
                    gen_call(r, b, "stem", 1, SS, depth);
                    return;
                case 11:
                    gen_call(r, b, "ext", 1, SS, depth);
                    return;
                case 12:
                    put(b, "join([");
                    gen(r, b, GS, depth - 1);
                    put(b, ", ");
                    gen(r, b, GS, depth - 1);
                    put(b, "], ");
                    gen(r, b, GS, depth - 1);
                    put(b, ")");
                    return;
                case 13:
                    put(b, "(if ");
                    gen(r, b, GB, depth - 1);
                    put(b, " then ");
                    gen(r, b, GS, depth - 1);
                    put(b, " else ");
                    gen(r, b, GS, depth - 1);
                    put(b, ")");
                    return;
                case 14:
                    put(b, "[s, r.b][");
                    gen(r, b, GI, depth - 1);
                    put(b, "]");
                    return;
                default:
                    put(b, "str(");
                    gen_call(r, b, "len", 1, SS, depth - 1);
                    put(b, ")");
                    return;
            }
    }
    (void)II;
}

static void test_corpus(void **state) {
    (void)state;
    if (!jit_available()) skip();
    rng r = {0x9e3779b97f4a7c15ULL};
    int compiled = 0, failed_compile = 0, runs = 0;
    double jit_ms = 0;
    int errors = 0;
    sb b = {0};
    char **bodies = calloc(JIT_BATCH, sizeof *bodies);
    uint32_t *lis = calloc(JIT_BATCH, sizeof *lis);
    for (int done = 0; done < JIT_CORPUS;) {
        tj *t = tj_new();
        int n = 0;
        while (n < JIT_BATCH && done < JIT_CORPUS) {
            b.len = 0;
            gen(&r, &b, (gty)rnd(&r, 4), 1 + (int)rnd(&r, 5));
            done++;
            uint32_t li = lam(t, b.d);
            if (li == PLAN_NONE) {
                if (failed_compile < 5) fprintf(stderr, "skipped: %s\n%s", b.d, t->errs);
                failed_compile++;
                continue;
            }
            bodies[n] = strdup(b.d);
            lis[n++] = li;
        }
        attach(t, t->p->n_lambdas);
        jit_stats js = jit_stats_of(t->p);
        jit_ms += js.create_ms + js.build_ms + js.opt_ms + js.codegen_ms;
        if (getenv("JIT_DEBUG"))
            fprintf(stderr, "batch: create %.0f build %.0f opt %.0f codegen %.0f ms\n",
                    js.create_ms, js.build_ms, js.opt_ms, js.codegen_ms);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < NINPUTS; k++, runs++)
                errors += both(t, lis[i], k, bodies[i]);
            free(bodies[i]);
        }
        compiled += n;
        tj_free(t);
    }
    free(b.d);
    free(bodies);
    free(lis);
    fprintf(stderr,
            "corpus: %d expressions compiled (%d rejected by the checker), %d runs each way "
            "(%d run-time errors), JIT %.0f ms\n",
            compiled, failed_compile, runs, errors, jit_ms);
    assert_true(compiled >= JIT_CORPUS * 95 / 100);
}

/* Change one field of an instruction: the opcode (a few out of range), operand a
 * (a few negative) or operand b. */
static void mutate(plan_instr *in, rng *r) {
    uint32_t what = rnd(r, 3), v = rnd(r, 1u << 20);
    if (what == 0)
        in->op = (uint16_t)(v % (EOP__COUNT + 2));
    else if (what == 1)
        in->a = (int32_t)(v % 40) - 4;
    else
        in->b = (uint16_t)(v % 6);
}

/* Mutated code (one operand or opcode changed): whatever expr_verify accepts is
 * compiled (or left to the interpreter) and must behave as the interpreter does. */
static void test_mutants(void **state) {
    (void)state;
    if (!jit_available()) skip();
    static const char *const srcs[] = {
        "if x > 2 and len(s) < 9 then \"{s}-{x * 2}\" else upper(s) + str(xs[0])",
        "[len(xs), x % 3, int(\"4\")][1] == 0 or contains(s, \"a\")",
        "{a = x, b = basename(s)}.b + join([s, r.b], \",\")",
        "if f > 1.0 then x * y - 3 else -(y / (x + 1))",
    };
    rng seed = {4242};
    int accepted = 0, compiled = 0;
    for (int batch = 0; batch < 3; batch++) {
        tj *t = tj_new();
        uint32_t lis[400];
        int n = 0;
        for (int m = 0; m < 400; m++) {
            uint32_t li = lam(t, srcs[m % 4]);
            assert_int_not_equal(li, PLAN_NONE);
            const plan_lambda *l = &t->p->lambdas[li];
            plan_instr *code = t->p->code + l->first_code;
            uint32_t at = rnd(&seed, l->ncode);
            plan_instr save = code[at];
            mutate(&code[at], &seed);
            char why[256];
            if (expr_verify(t->p, li, why, sizeof why) == 0) {
                lis[n++] = li;
                accepted++;
            } else {
                code[at] = save; /* rejected: the original code, still compared */
                lis[n++] = li;
            }
        }
        char err[300] = "";
        int rc = jit_attach(t->p, err, sizeof err);
        if (rc) fprintf(stderr, "jit_attach: %s\n", err);
        assert_int_equal(rc, 0);
        compiled += (int)jit_stats_of(t->p).compiled;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < NINPUTS; k++)
                both(t, lis[i], k, srcs[i % 4]);
        tj_free(t);
    }
    fprintf(
        stderr,
        "mutants: %d accepted by the verifier, %d of 1200 lambdas compiled, all run both ways\n",
        accepted, compiled);
    assert_true(accepted > 50);
}

/* A plan without lambdas attaches nothing; detaching twice is harmless; LLVM=0 says so. */
static void test_attach_edges(void **state) {
    (void)state;
    fl_plan *p = plan_new(fl_ctx_default());
    char err[200] = "";
    if (jit_available()) {
        assert_int_equal(jit_attach(p, err, sizeof err), 0);
        assert_null(p->jit);
    } else {
        assert_int_equal(jit_attach(p, err, sizeof err), -1);
        assert_string_equal(err, "built without LLVM");
    }
    jit_detach(p);
    jit_detach(p);
    plan_free(p);
}

/* The figure: ns per call of `x => x * 3 + 1` through each engine (printed). */
static void test_speed(void **state) {
    (void)state;
    if (!jit_available()) skip();
    tj *t = tj_new();
    uint32_t li = lam(t, "x * 3 + 1");
    uint32_t lf = lam(t, "x % 7 == 0");
    attach(t, 2);
    fl_val a[NPARAMS], out;
    memcpy(a, t->in[0], sizeof a);
    expr_error e;
    enum { N = 2000000 };
    int64_t sum = 0;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < N; i++) {
        a[0].i = i;
        expr_eval(t->p, li, a, &out, &e);
        a[0] = out;
        expr_eval(t->p, lf, a, &out, &e);
        sum += out.i;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t sum2 = 0;
    for (int64_t i = 0; i < N; i++) {
        a[0].i = i;
        expr_run(t->p, li, a, &out, &e);
        a[0] = out;
        expr_run(t->p, lf, a, &out, &e);
        sum2 += out.i;
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    assert_int_equal(sum, sum2);
    double ni = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
    double nj = ((double)(t2.tv_sec - t1.tv_sec) * 1e9 + (double)(t2.tv_nsec - t1.tv_nsec)) / N;
    fprintf(stderr, "map+filter lambdas per element: interpreter %.1f ns, jit %.1f ns\n", ni, nj);
    tj_free(t);
}

/* ---- direct-call thunks of C tasks ---- */

__attribute__((noinline)) static int64_t c_add1(int64_t x) {
    return x + 1;
}
__attribute__((noinline)) static const char *c_pick(double f, bool b, const char *s) {
    return b ? s : f > 1.0 ? "big" : "small";
}
__attribute__((noinline)) static bool c_less(int64_t a, int64_t b) {
    return a < b;
}
__attribute__((noinline)) static double c_scale(double a, int64_t k, bool neg) {
    return neg ? -a * (double)k : a * (double)k;
}
static int64_t c_seen;
__attribute__((noinline)) static void c_note(int64_t x) {
    c_seen = x;
}

static uint32_t add_task(tj *t, const uint32_t *pt, uint32_t n, uint32_t ret) {
    fl_plan *p = t->p;
    uint32_t ti = PLAN_PUSH(p, tasks);
    memset(&p->tasks[ti], 0, sizeof p->tasks[ti]);
    p->tasks[ti].kind = TK_C;
    p->tasks[ti].first_param = p->n_params;
    p->tasks[ti].nparams = n;
    p->tasks[ti].ret = ret;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        memset(&p->params[k], 0, sizeof p->params[k]);
        p->params[k].type = pt[i];
    }
    return ti;
}

static double ns_since(struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0->tv_sec) * 1e9 + (double)(t1.tv_nsec - t0->tv_nsec);
    *t0 = t1;
    return ns;
}

/* Thunks give what ffi_call gives, for every simple signature; the per-call figures
 * (direct call, ffi_call with a prepared cif, thunk) are printed. */
static void test_thunks(void **state) {
    (void)state;
    if (!jit_available()) skip();
    tj *t = tj_new();
    uint32_t t_void = plan_type_basic(t->p, PT_VOID);
    uint32_t p1[] = {t->t_int}, p2[] = {t->t_float, t->t_bool, t->t_str},
             p3[] = {t->t_int, t->t_int}, p4[] = {t->t_float, t->t_int, t->t_bool};
    uint32_t k_add = add_task(t, p1, 1, t->t_int);
    uint32_t k_pick = add_task(t, p2, 3, t->t_str);
    uint32_t k_less = add_task(t, p3, 2, t->t_bool);
    uint32_t k_scale = add_task(t, p4, 3, t->t_float);
    uint32_t k_note = add_task(t, p1, 1, t_void);
    uint32_t k_list = add_task(t, (uint32_t[]){t->t_lint}, 1, t->t_int); /* not simple */
    lam(t, "x + 1"); /* a plan without lambdas gets no JIT */
    attach(t, 1);
    assert_int_equal(jit_stats_of(t->p).thunks, 5);
    assert_null(jit_task_thunk(t->p, k_list));

    int64_t x = 41, y = 42;
    double f = 1.5;
    bool b = false;
    const char *s = "given";
    union {
        int64_t i;
        double f;
        const char *s;
        ffi_arg a;
    } r1, r2;
    /* add1 */
    void *av[3] = {&x};
    jit_task_thunk(t->p, k_add)((void *)c_add1, &r1, av);
    assert_int_equal(r1.i, 42);
    /* pick, both ways of b */
    for (int k = 0; k < 2; k++) {
        b = k;
        void *av2[3] = {&f, &b, &s};
        jit_task_thunk(t->p, k_pick)((void *)c_pick, &r1, av2);
        assert_string_equal(r1.s, c_pick(f, b, s));
    }
    /* less: a bool result widened as libffi does */
    ffi_cif cif;
    ffi_type *at[2] = {&ffi_type_sint64, &ffi_type_sint64};
    assert_int_equal(ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_uint8, at), FFI_OK);
    void *av3[2] = {&x, &y};
    r1.a = r2.a = 0;
    jit_task_thunk(t->p, k_less)((void *)c_less, &r1, av3);
    ffi_call(&cif, FFI_FN(c_less), &r2, av3);
    assert_int_equal(r1.a & 0xff, r2.a & 0xff);
    assert_int_equal(r1.a & 0xff, 1);
    /* scale */
    b = true;
    void *av4[3] = {&f, &x, &b};
    jit_task_thunk(t->p, k_scale)((void *)c_scale, &r1, av4);
    assert_true(r1.f == c_scale(f, x, b));
    /* void */
    jit_task_thunk(t->p, k_note)((void *)c_note, &r1, av);
    assert_int_equal(c_seen, 41);

    /* the figures */
    enum { N = 2000000 };
    ffi_cif c1;
    ffi_type *a1[1] = {&ffi_type_sint64};
    assert_int_equal(ffi_prep_cif(&c1, FFI_DEFAULT_ABI, 1, &ffi_type_sint64, a1), FFI_OK);
    jit_thunk th = jit_task_thunk(t->p, k_add);
    int64_t (*volatile direct)(int64_t) = c_add1;
    int64_t sum = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < N; i++)
        sum += direct(i);
    double nd = ns_since(&t0) / N;
    for (int64_t i = 0; i < N; i++) {
        void *a[1] = {&i};
        ffi_call(&c1, FFI_FN(c_add1), &r1, a);
        sum += r1.i;
    }
    double nf = ns_since(&t0) / N;
    for (int64_t i = 0; i < N; i++) {
        void *a[1] = {&i};
        th((void *)c_add1, &r1, a);
        sum += r1.i;
    }
    double nt = ns_since(&t0) / N;
    assert_true(sum != 0);
    fprintf(stderr,
            "per call of a trivial C task: direct %.1f ns, ffi_call %.1f ns, JIT thunk %.1f ns\n",
            nd, nf, nt);
    tj_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_edges), cmocka_unit_test(test_cases),
        cmocka_unit_test(test_corpus),       cmocka_unit_test(test_mutants),
        cmocka_unit_test(test_speed),        cmocka_unit_test(test_thunks),
    };
    const char *only = getenv("TEST_JIT_ONLY"); /* bench/jit.sh: "test_thunks" */
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
