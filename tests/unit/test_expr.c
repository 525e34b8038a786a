/*
 * test_expr.c — lambdas and interpolated strings from source text to values:
 * type checking (messages and positions), lowering, the interpreter, run-time
 * errors with their positions, sh quoting, the verifier, and a speed figure.
 *
 * Each lambda is parsed inside a tiny program, on a line of its own (line 3,
 * column 1), so error positions in the expectations read as "t.flow:3:COL".
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

#include "check_expr.h"
#include "expr.h"
#include "expr_ops.h"
#include "types.h"

typedef struct tx {
    fl_plan *p;  /* the plan lambdas go to */
    ast_arena *ar; /* parse trees */
    char *src;     /* the last program text */
    char *errs;    /* diagnostics of the last compile (memstream) */
    size_t nerrs;  /* their length */
    uint32_t t_int, t_float, t_bool, t_str, t_path, t_dir, t_date, t_dur; /* basic types */
    uint32_t t_lint, t_lstr, t_lpath, t_llint;                            /* lists */
    uint32_t t_row;  /* Row = {file: path, n: int} */
    uint32_t t_pair; /* {a: int, b: str} */
} tx;

static tx *tx_new(void) {
    tx *t = calloc(1, sizeof *t);
    t->p = plan_new(fl_ctx_default());
    t->p->source = plan_intern_str(t->p, "t.flow");
    t->ar = ast_arena_new(fl_ctx_default());
    fl_plan *p = t->p;
    t->t_int = plan_type_basic(p, PT_INT);
    t->t_float = plan_type_basic(p, PT_FLOAT);
    t->t_bool = plan_type_basic(p, PT_BOOL);
    t->t_str = plan_type_basic(p, PT_STR);
    t->t_path = plan_type_basic(p, PT_PATH);
    t->t_dir = plan_type_basic(p, PT_DIR);
    t->t_date = plan_type_basic(p, PT_DATE);
    t->t_dur = plan_type_basic(p, PT_DURATION);
    t->t_lint = plan_type_list(p, t->t_int);
    t->t_lstr = plan_type_list(p, t->t_str);
    t->t_lpath = plan_type_list(p, t->t_path);
    t->t_llint = plan_type_list(p, t->t_lint);
    plan_field rf[] = {{plan_intern_str(p, "file"), t->t_path},
                       {plan_intern_str(p, "n"), t->t_int}};
    t->t_row = plan_type_record(p, plan_intern_str(p, "Row"), rf, 2);
    plan_field pf[] = {{plan_intern_str(p, "a"), t->t_int}, {plan_intern_str(p, "b"), t->t_str}};
    t->t_pair = plan_type_record(p, PLAN_NONE, pf, 2);
    return t;
}

static void tx_free(tx *t) {
    plan_free(t->p);
    ast_arena_free(t->ar);
    free(t->src);
    free(t->errs);
    free(t);
}

/* Parse `text` (a whole program) and run `fn` on the node of kind k; diagnostics of
 * both steps land in t->errs. */
static const fl_node *parse_find(tx *t, const char *text, fl_ast_kind k, fl_diag *d,
                                   FILE **f) {
    free(t->src);
    free(t->errs);
    t->errs = NULL;
    t->src = strdup(text);
    *f = open_memstream(&t->errs, &t->nerrs);
    diag_init(d, "t.flow", t->src, strlen(t->src), *f);
    const fl_node *prog = fl_parse(t->ar, d, t->src, strlen(t->src));
    assert_non_null(prog);
    const fl_node *n = ast_find(prog, k);
    assert_non_null(n);
    return n;
}

/* Compile a lambda written on line 3, column 1. PLAN_NONE on a compile error. */
static uint32_t lam_ex(tx *t, const char *lsrc, const uint32_t *ptypes, int n, uint32_t want,
                       bool prefix) {
    char text[4096];
    snprintf(text, sizeof text, "flow f() {\n    let y = q.map(\n%s)\n}\n", lsrc);
    fl_diag d;
    FILE *f;
    const fl_node *l = parse_find(t, text, AST_LAMBDA, &d, &f);
    expr_ctx cx = {t->p, &d, NULL, 0};
    uint32_t ret;
    uint32_t li = prefix ? expr_lower_lambda_prefix(&cx, l, ptypes, n, want, &ret)
                         : expr_lower_lambda(&cx, l, ptypes, n, want, &ret);
    fclose(f);
    if (li != PLAN_NONE) {
        char why[256] = "";
        int v = expr_verify(t->p, li, why, sizeof why);
        if (v) fprintf(stderr, "verify: %s (%s)\n", why, lsrc);
        assert_int_equal(v, 0);
        assert_int_equal(d.errors, 0);
    } else {
        assert_true(d.errors > 0);
    }
    return li;
}

static uint32_t lam(tx *t, const char *lsrc, const uint32_t *ptypes, int n, uint32_t want) {
    return lam_ex(t, lsrc, ptypes, n, want, false);
}

/* A compile error whose text contains `want` (position and message). */
static void bad_lam(tx *t, const char *lsrc, const uint32_t *ptypes, int n, uint32_t want_ret,
                    const char *want) {
    uint32_t li = lam(t, lsrc, ptypes, n, want_ret);
    assert_int_equal(li, PLAN_NONE);
    if (!strstr(t->errs, want)) fprintf(stderr, "got: %s\nwant: %s\n", t->errs, want);
    assert_non_null(strstr(t->errs, want));
}

static fl_val run(tx *t, uint32_t li, const fl_val *args) {
    fl_val out;
    expr_error e;
    int r = expr_eval(t->p, li, args, &out, &e);
    if (r) fprintf(stderr, "run: %s\n", e.msg);
    assert_int_equal(r, 0);
    return out;
}

/* A run-time error; returns its formatted text in a static buffer of the caller. */
static void run_err(tx *t, uint32_t li, const fl_val *args, const char *want) {
    fl_val out;
    expr_error e;
    assert_int_equal(expr_eval(t->p, li, args, &out, &e), -1);
    char buf[300];
    expr_error_format(t->p, &e, buf, sizeof buf);
    if (!strstr(buf, want)) fprintf(stderr, "got: %s\nwant: %s\n", buf, want);
    assert_non_null(strstr(buf, want));
}

/* one-int-parameter lambdas */
static int64_t ev_i(tx *t, const char *src, int64_t x) {
    uint32_t li = lam(t, src, &t->t_int, 1, PLAN_NONE);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val a = {.i = x};
    return run(t, li, &a).i;
}

static double ev_f(tx *t, const char *src, double x) {
    uint32_t li = lam(t, src, &t->t_float, 1, t->t_float);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val a = {.f = x};
    return run(t, li, &a).f;
}

/* a str-producing lambda over one string-like parameter of type pt; result strdup'ed
 * into a ring of buffers so several can be compared in one assertion */
static const char *ev_s(tx *t, const char *src, uint32_t pt, const char *x) {
    static char ring[8][512];
    static int k;
    uint32_t li = lam(t, src, &pt, 1, PLAN_NONE);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val a = fv_str_cstr(t->p, pt, x);
    fl_val r = run(t, li, &a);
    assert_true(ty_is_strlike(t->p, t->p->lambdas[li].ret));
    char *b = ring[k++ % 8];
    snprintf(b, 512, "%s", fv_as_str(r)->data);
    fv_decref(t->p, t->t_str, r);
    fv_decref(t->p, pt, a);
    return b;
}

static bool ev_sb(tx *t, const char *src, const char *x) {
    uint32_t li = lam(t, src, &t->t_str, 1, t->t_bool);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val a = fv_str_cstr(t->p, t->t_str, x);
    fl_val r = run(t, li, &a);
    fv_decref(t->p, t->t_str, a);
    return r.i != 0;
}

static fl_val list_int(tx *t, int n, const int64_t *xs) {
    fl_val v = fv_list_new(t->p, t->t_lint, n);
    for (int i = 0; i < n; i++)
        fv_as_list(v)->items[i].i = xs[i];
    return v;
}

static fl_val list_str(tx *t, int n, const char *const *xs) {
    fl_val v = fv_list_new(t->p, t->t_lstr, n);
    for (int i = 0; i < n; i++)
        fv_as_list(v)->items[i] = fv_str_cstr(t->p, t->t_str, xs[i]);
    return v;
}

static fl_val row(tx *t, const char *file, int64_t n) {
    fl_val r = fv_rec_new(t->p, t->t_row);
    fv_as_rec(r)->fields[0] = fv_str_cstr(t->p, t->t_path, file);
    fv_as_rec(r)->fields[1].i = n;
    return r;
}

/* ---- arithmetic ---- */

static void test_int_arith(void **state) {
    (void)state;
    tx *t = tx_new();
    assert_int_equal(ev_i(t, "x => x * 3 + 1", 5), 16);
    assert_int_equal(ev_i(t, "x => x - 10", 3), -7);
    assert_int_equal(ev_i(t, "x => x / 2", 7), 3);
    assert_int_equal(ev_i(t, "x => x / 2", -7), -3); /* truncates */
    assert_int_equal(ev_i(t, "x => x % 3", -7), -1); /* sign of the dividend */
    assert_int_equal(ev_i(t, "x => x % 3", 7), 1);
    assert_int_equal(ev_i(t, "x => -x", 4), -4);
    assert_int_equal(ev_i(t, "x => -(x + 1) * 2", 4), -10);
    assert_int_equal(ev_i(t, "x => x + 1_000_000 + 0x10", 0), 1000016);
    assert_int_equal(ev_i(t, "x => x * 10000000000", 3), 30000000000);
    assert_int_equal(ev_i(t, "x => (x + 2) * (x - 2)", 5), 21);
    assert_int_equal(ev_i(t, "x => x % -1", INT64_MIN), 0);
    tx_free(t);
}

static void test_float_arith(void **state) {
    (void)state;
    tx *t = tx_new();
    assert_true(ev_f(t, "x => x * 2.5", 2.0) == 5.0);
    assert_true(ev_f(t, "x => x + 1", 0.5) == 1.5);   /* int promoted */
    assert_true(ev_f(t, "x => 1 - x", 0.25) == 0.75); /* left int promoted */
    assert_true(ev_f(t, "x => x / 0.0", 1.0) > 1e308);
    assert_true(ev_f(t, "x => x % 2.0", 5.5) == 1.5);
    assert_true(ev_f(t, "x => -x", 2.0) == -2.0);
    /* an int lambda where a float is wanted is promoted */
    uint32_t li = lam(t, "x => x + 1", &t->t_int, 1, t->t_float);
    fl_val a = {.i = 2};
    assert_true(run(t, li, &a).f == 3.0);
    assert_int_equal(t->p->lambdas[li].ret, t->t_float);
    tx_free(t);
}

/* ---- comparison and logic ---- */

static void test_compare_logic(void **state) {
    (void)state;
    tx *t = tx_new();
    assert_int_equal(ev_i(t, "x => if x % 7 == 0 then 1 else 0", 14), 1);
    assert_int_equal(ev_i(t, "x => if x % 7 == 0 then 1 else 0", 15), 0);
    assert_int_equal(ev_i(t, "x => if x != 3 and x >= 2 then 1 else 0", 2), 1);
    assert_int_equal(ev_i(t, "x => if x < 2 or x > 8 then 1 else 0", 5), 0);
    assert_int_equal(ev_i(t, "x => if not (x <= 5) then 1 else 0", 6), 1);
    assert_int_equal(ev_i(t, "x => if x > 2.5 then 1 else 0", 3), 1); /* int vs float */
    /* short-circuit: the right side would divide by zero */
    assert_int_equal(ev_i(t, "x => if x != 0 and 10 / x > 1 then 1 else 2", 0), 2);
    assert_int_equal(ev_i(t, "x => if x == 0 or 10 / x > 1 then 1 else 2", 0), 1);
    assert_true(ev_sb(t, "s => s < \"b\"", "abc"));
    assert_false(ev_sb(t, "s => s < \"ab\"", "abc"));
    assert_true(ev_sb(t, "s => s >= \"abc\" and s <= \"abc\"", "abc"));
    assert_true(ev_sb(t, "s => s == \"x y\"", "x y"));
    assert_true(ev_sb(t, "s => s != \"x\"", "xx"));
    assert_true(ev_sb(t, "s => \"\" < s", "a"));
    /* dates compare as text (ISO order), durations as milliseconds */
    uint32_t li = lam(t, "d => d < 2026-01-31 and d >= 2025-12-01", &t->t_date, 1, t->t_bool);
    fl_val dv = fv_str_cstr(t->p, t->t_date, "2026-01-05");
    assert_true(run(t, li, &dv).i);
    fv_decref(t->p, t->t_date, dv);
    assert_int_equal(ev_i(t, "x => if 90s > 1m and 500ms != 1s then x else 0", 3), 3);
    li = lam(t, "d => \"day {d}\" + \"/\" + d", &t->t_date, 1, t->t_str);
    dv = fv_str_cstr(t->p, t->t_date, "2026-02-03");
    fl_val ds = run(t, li, &dv);
    assert_string_equal(fv_as_str(ds)->data, "day 2026-02-03/2026-02-03");
    fv_decref(t->p, t->t_str, ds);
    fv_decref(t->p, t->t_date, dv);
    tx_free(t);
}

static void test_if_types(void **state) {
    (void)state;
    tx *t = tx_new();
    /* branches int and float: the int one is converted (both orders) */
    uint32_t li = lam(t, "x => if x > 0 then 1 else 2.5", &t->t_int, 1, PLAN_NONE);
    assert_int_equal(t->p->lambdas[li].ret, t->t_float);
    fl_val a = {.i = 1};
    assert_true(run(t, li, &a).f == 1.0);
    a.i = -1;
    assert_true(run(t, li, &a).f == 2.5);
    li = lam(t, "x => if x > 0 then 0.5 else x", &t->t_int, 1, PLAN_NONE);
    a.i = -4;
    assert_true(run(t, li, &a).f == -4.0);
    assert_int_equal(ev_i(t, "x => if x > 0 then if x > 10 then 2 else 1 else 0", 11), 2);
    tx_free(t);
}

/* ---- strings ---- */

static void test_strings(void **state) {
    (void)state;
    tx *t = tx_new();
    assert_string_equal(ev_s(t, "x => \"s3://bucket/{x}\"", t->t_str, "k"), "s3://bucket/k");
    assert_string_equal(ev_s(t, "x => x + \".bak\"", t->t_path, "a.txt"), "a.txt.bak");
    assert_string_equal(ev_s(t, "x => \"{x}{x}-{len(x)}\"", t->t_str, "ab"), "abab-2");
    assert_string_equal(ev_s(t, "x => \"tab\\there \\{x\\} \\\"q\\\"\"", t->t_str, "z"),
                        "tab\there {x} \"q\"");
    assert_string_equal(ev_s(t, "x => \"\\u{e9}{x}\"", t->t_str, "!"), "\xc3\xa9!");
    assert_string_equal(ev_s(t, "x => \"\"", t->t_str, "!"), "");
    assert_string_equal(ev_s(t, "x => \"{x}\"", t->t_str, "same"), "same");
    assert_string_equal(ev_s(t, "x => upper(x) + lower(\"ABC\")", t->t_str, "aé"), "Aéabc");
    assert_string_equal(ev_s(t, "x => replace(x, \"a\", \"xy\")", t->t_str, "banana"), "bxynxynxy");
    assert_string_equal(ev_s(t, "x => replace(x, \"\", \"-\")", t->t_str, "ab"), "ab");
    assert_string_equal(ev_s(t, "x => replace(x, \"aa\", \"b\")", t->t_str, "aaa"), "ba");
    assert_true(ev_sb(t, "s => contains(s, \"nan\")", "banana"));
    assert_true(ev_sb(t, "s => contains(s, \"\")", ""));
    assert_false(ev_sb(t, "s => contains(s, \"x\")", "banana"));
    assert_true(ev_sb(t, "s => starts_with(s, \"ba\") and ends_with(s, \"na\")", "banana"));
    assert_false(ev_sb(t, "s => starts_with(s, \"banana!\")", "banana"));
    assert_false(ev_sb(t, "s => ends_with(s, \"b\")", "banana"));
    /* interpolating numbers and bools */
    uint32_t pt[] = {t->t_int, t->t_float, t->t_bool};
    uint32_t li = lam(t, "(i, f, b) => \"{i}|{f}|{b}|{str(i)}\"", pt, 3, t->t_str);
    fl_val a[] = {{.i = -42}, {.f = 0.1}, {.i = 1}};
    fl_val r = run(t, li, a);
    assert_string_equal(fv_as_str(r)->data, "-42|0.1|true|-42");
    fv_decref(t->p, t->t_str, r);
    /* a long interpolation is folded in chunks */
    char src[2048] = "x => \"";
    for (int i = 0; i < 80; i++)
        strcat(src, "{x}.");
    strcat(src, "\"");
    const char *s = ev_s(t, src, t->t_str, "ab");
    assert_int_equal(strlen(s), 80 * 3);
    tx_free(t);
}

static void test_float_text(void **state) {
    (void)state;
    tx *t = tx_new();
    static const struct {
        double f;
        const char *s;
    } cases[] = {{0.1, "0.1"},
                 {1.0, "1.0"},
                 {-0.0, "-0.0"},
                 {1e16, "1e+16"},
                 {123.0, "123.0"},
                 {0.3, "0.3"},
                 {1.0 / 3, "0.3333333333333333"},
                 {2.5e-7, "2.5e-07"},
                 {1e300 * 1e300, "inf"},
                 {100.0, "100.0"},
                 {1e15, "1000000000000000.0"},
                 {0.0001, "0.0001"},
                 {1.5e300, "1.5e+300"},
                 {-1234.5678, "-1234.5678"},
                 {5e-324, "5e-324"},
                 {0.1 + 0.2, "0.30000000000000004"}};
    uint32_t li = lam(t, "f => str(f)", &t->t_float, 1, t->t_str);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fl_val a = {.f = cases[i].f};
        fl_val r = run(t, li, &a);
        assert_string_equal(fv_as_str(r)->data, cases[i].s);
        fv_decref(t->p, t->t_str, r);
    }
    tx_free(t);
}

static void test_paths(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t P = t->t_path;
    assert_string_equal(ev_s(t, "f => basename(f)", P, "a/b/c.txt"), "c.txt");
    assert_string_equal(ev_s(t, "f => basename(f)", P, "a/b/"), "b");
    assert_string_equal(ev_s(t, "f => basename(f)", P, "/"), "");
    assert_string_equal(ev_s(t, "f => basename(f)", P, "file"), "file");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, "a/b/c.txt"), "a/b");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, "file"), ".");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, "/file"), "/");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, "/"), "/");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, "a//b/"), "a");
    assert_string_equal(ev_s(t, "f => dirname(f)", P, ""), ".");
    assert_string_equal(ev_s(t, "f => ext(f)", P, "x.tar.gz"), ".gz");
    assert_string_equal(ev_s(t, "f => ext(f)", P, "dir.d/file"), "");
    assert_string_equal(ev_s(t, "f => ext(f)", P, ".bashrc"), "");
    assert_string_equal(ev_s(t, "f => ext(f)", P, "a."), "");
    assert_string_equal(ev_s(t, "f => stem(f)", P, "/d/x.tar.gz"), "x.tar");
    assert_string_equal(ev_s(t, "f => stem(f)", P, ".bashrc"), ".bashrc");
    assert_string_equal(ev_s(t, "f => join(f, \"c\")", P, "a/b/"), "a/b/c");
    assert_string_equal(ev_s(t, "f => join(f, \"/abs\")", P, "a"), "/abs");
    assert_string_equal(ev_s(t, "f => join(f, \"x\")", P, "/"), "/x");
    assert_string_equal(ev_s(t, "f => join(f, \"x\")", P, ""), "x");
    assert_string_equal(ev_s(t, "f => join(f, \"\")", P, "a"), "a");
    uint32_t li = lam(t, "f => join(f, \"x\")", &P, 1, PLAN_NONE);
    assert_int_equal(t->p->lambdas[li].ret, P);
    tx_free(t);
}

static void test_conversions(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t li = lam(t, "s => int(s)", &t->t_str, 1, t->t_int);
    fl_val a = fv_str_cstr(t->p, t->t_str, " -12\n");
    assert_int_equal(run(t, li, &a).i, -12);
    fv_decref(t->p, t->t_str, a);
    a = fv_str_cstr(t->p, t->t_str, "12x");
    run_err(t, li, &a, "t.flow:3:6: int(): '12x' is not an integer");
    fv_decref(t->p, t->t_str, a);
    a = fv_str_cstr(t->p, t->t_str, "99999999999999999999");
    run_err(t, li, &a, "out of range");
    fv_decref(t->p, t->t_str, a);
    a = fv_str_cstr(t->p, t->t_str, "");
    run_err(t, li, &a, "is not an integer");
    fv_decref(t->p, t->t_str, a);

    li = lam(t, "s => float(s) * 2", &t->t_str, 1, t->t_float);
    a = fv_str_cstr(t->p, t->t_str, "1.25");
    assert_true(run(t, li, &a).f == 2.5);
    fv_decref(t->p, t->t_str, a);
    a = fv_str_cstr(t->p, t->t_str, "1.2.3");
    run_err(t, li, &a, "float(): '1.2.3' is not a number");
    fv_decref(t->p, t->t_str, a);

    li = lam(t, "f => int(f)", &t->t_float, 1, t->t_int);
    fl_val f = {.f = -2.9};
    assert_int_equal(run(t, li, &f).i, -2);
    f.f = 1e19;
    run_err(t, li, &f, "int(): 1e+19 is out of range");
    assert_int_equal(ev_i(t, "x => int(float(x) / 2)", 7), 3);
    assert_int_equal(ev_i(t, "x => int(x) + int(true)", 7), 8);
    assert_int_equal(ev_i(t, "x => len(str(x))", -100), 4);
    tx_free(t);
}

/* ---- records and lists ---- */

static void test_records_lists(void **state) {
    (void)state;
    tx *t = tx_new();
    /* field access */
    uint32_t li = lam(t, "r => \"{basename(r.file)}:{r.n * 2}\"", &t->t_row, 1, t->t_str);
    fl_val r = row(t, "/d/a.txt", 21);
    fl_val out = run(t, li, &r);
    assert_string_equal(fv_as_str(out)->data, "a.txt:42");
    fv_decref(t->p, t->t_str, out);
    /* a record literal, built in the wanted type's field order */
    li = lam(t, "r => {b = r.file + \"!\", a = r.n}", &t->t_row, 1, t->t_pair);
    out = run(t, li, &r);
    assert_int_equal(fv_as_rec(out)->fields[0].i, 21);
    assert_string_equal(fv_as_str(fv_as_rec(out)->fields[1])->data, "/d/a.txt!");
    fv_decref(t->p, t->t_pair, out);
    /* an inferred record type, then its field */
    assert_int_equal(ev_i(t, "x => {u = x, v = x + 1}.v", 4), 5);
    /* record equality */
    li = lam(t, "r => r == {file = r.file, n = 21}", &t->t_row, 1, t->t_bool);
    assert_true(run(t, li, &r).i);
    li = lam(t, "r => {a = 1, b = \"x\"} != {a = 1, b = \"y\"}", &t->t_row, 1, t->t_bool);
    assert_true(run(t, li, &r).i);
    fv_decref(t->p, t->t_row, r);

    /* lists: literal, index, len, equality, join */
    assert_int_equal(ev_i(t, "x => [x, x * 2, x * 3][2]", 5), 15);
    assert_int_equal(ev_i(t, "x => len([1, 2, x])", 5), 3);
    assert_int_equal(ev_i(t, "x => if [x, 2] == [1, 2] then 1 else 0", 1), 1);
    assert_int_equal(ev_i(t, "x => if [[x]] != [[1]] then 1 else 0", 1), 0);
    int64_t xs[] = {10, 20, 30};
    fl_val l = list_int(t, 3, xs);
    li = lam(t, "xs => xs[1] + len(xs)", &t->t_lint, 1, t->t_int);
    assert_int_equal(run(t, li, &l).i, 23);
    li = lam(t, "xs => xs[3]", &t->t_lint, 1, t->t_int);
    run_err(t, li, &l, "t.flow:3:7: index 3 out of range for a list of length 3");
    li = lam(t, "xs => xs[0 - 1]", &t->t_lint, 1, t->t_int);
    run_err(t, li, &l, "index -1 out of range");
    fv_decref(t->p, t->t_lint, l);
    const char *ws[] = {"a", "b c", "d"};
    l = list_str(t, 3, ws);
    li = lam(t, "xs => join(xs, \", \") + \"|\" + xs[1]", &t->t_lstr, 1, t->t_str);
    out = run(t, li, &l);
    assert_string_equal(fv_as_str(out)->data, "a, b c, d|b c");
    fv_decref(t->p, t->t_str, out);
    li = lam(t, "xs => [len(xs)] == [3] and xs == [\"a\", \"b c\", \"d\"]", &t->t_lstr, 1,
             t->t_bool);
    assert_true(run(t, li, &l).i);
    fv_decref(t->p, t->t_lstr, l);
    /* floats inside lists compare as IEEE numbers, as they do alone */
    li = lam(t, "f => [f] == [f]", &t->t_float, 1, t->t_bool);
    fl_val fa = {.f = __builtin_nan("")};
    assert_false(run(t, li, &fa).i);
    fa.f = 1.5;
    assert_true(run(t, li, &fa).i);
    li = lam(t, "f => {x = f} == {x = 0.0 - f}", &t->t_float, 1, t->t_bool);
    fa.f = 0.0;
    assert_true(run(t, li, &fa).i);
    /* mixed int/float list literal becomes [float] */
    li = lam(t, "x => [x, 2.5, 3]", &t->t_int, 1, PLAN_NONE);
    assert_int_equal(t->p->types[t->p->lambdas[li].ret].elem, t->t_float);
    fl_val a = {.i = 1};
    out = run(t, li, &a);
    assert_true(fv_as_list(out)->items[0].f == 1.0 && fv_as_list(out)->items[2].f == 3.0);
    fv_decref(t->p, t->p->lambdas[li].ret, out);
    /* [int] literal where [float] is wanted */
    uint32_t t_lf = plan_type_list(t->p, t->t_float);
    li = lam(t, "x => [x, 2]", &t->t_int, 1, t_lf);
    a.i = 7;
    out = run(t, li, &a);
    assert_true(fv_as_list(out)->items[0].f == 7.0 && fv_as_list(out)->items[1].f == 2.0);
    fv_decref(t->p, t_lf, out);
    /* an empty list where the type is known */
    li = lam(t, "x => if x > 0 then [x] else []", &t->t_int, 1, PLAN_NONE);
    a.i = 0;
    out = run(t, li, &a);
    assert_int_equal(fv_as_list(out)->len, 0);
    fv_decref(t->p, t->t_lint, out);
    tx_free(t);
}

/* ---- run-time errors ---- */

static void test_runtime_errors(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t li = lam(t, "x => x * 3 + 1", &t->t_int, 1, t->t_int);
    fl_val a = {.i = INT64_MAX / 2};
    run_err(t, li, &a, "t.flow:3:6: integer overflow in '*'");
    li = lam(t, "x =>   1 + x", &t->t_int, 1, t->t_int);
    a.i = INT64_MAX;
    run_err(t, li, &a, "t.flow:3:8: integer overflow in '+'");
    li = lam(t, "x => x - 1", &t->t_int, 1, t->t_int);
    a.i = INT64_MIN;
    run_err(t, li, &a, "integer overflow in '-'");
    li = lam(t, "x => -x", &t->t_int, 1, t->t_int);
    run_err(t, li, &a, "t.flow:3:6: integer overflow in '-'");
    li = lam(t, "x =>  x / (x + 1)", &t->t_int, 1, t->t_int);
    a.i = -1;
    run_err(t, li, &a, "t.flow:3:7: division by zero in '/'");
    li = lam(t, "x => 100 % x", &t->t_int, 1, t->t_int);
    a.i = 0;
    run_err(t, li, &a, "modulo by zero in '%'");
    li = lam(t, "x => x / -1", &t->t_int, 1, t->t_int);
    a.i = INT64_MIN;
    run_err(t, li, &a, "integer overflow in '/'");
    /* an error with strings on the stack releases them (ASan checks the leak) */
    li = lam(t, "s => s + \"-\" + str(10 / len(s))", &t->t_str, 1, t->t_str);
    fl_val s = fv_str_cstr(t->p, t->t_str, "");
    run_err(t, li, &s, "division by zero");
    fv_decref(t->p, t->t_str, s);
    /* a string past EXPR_RT_MAX_STRING fails (a build with a small limit shows it) */
    li = lam(t, "s => replace(replace(s, \"a\", s), \"a\", s)", &t->t_str, 1, t->t_str);
    char big[65];
    memset(big, 'a', 64);
    big[64] = 0;
    s = fv_str_cstr(t->p, t->t_str, big); /* 64 -> 64*64 -> 64*64*64 bytes */
    if (EXPR_RT_MAX_STRING < 64 * 64 * 64) {
        run_err(t, li, &s, "string longer than");
    } else {
        fl_val r3 = run(t, li, &s);
        assert_int_equal(fv_as_str(r3)->len, 64 * 64 * 64);
        fv_decref(t->p, t->t_str, r3);
    }
    fv_decref(t->p, t->t_str, s);
    li = lam(t, "r => [r, r][len(r.file)]", &t->t_row, 1, t->t_row);
    fl_val r = row(t, "ab", 1);
    run_err(t, li, &r, "index 2 out of range");
    fv_decref(t->p, t->t_row, r);
    tx_free(t);
}

/* ---- compile errors: message and position ---- */

static void test_type_errors(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t I = t->t_int, S = t->t_str;
    bad_lam(t, "x => x + y", &I, 1, PLAN_NONE,
            "t.flow:3:10: error: unknown name 'y': a lambda can use only its parameters and "
            "constants");
    bad_lam(t, "count => conut + 1", &I, 1, PLAN_NONE, "did you mean 'count'?");
    bad_lam(t, "x => x + \"a\"", &I, 1, PLAN_NONE,
            "t.flow:3:6: error: '+' needs two numbers or two strings, not int and str");
    bad_lam(t, "x => x + 1", &S, 1, PLAN_NONE, "hint: turn the other operand into a string");
    bad_lam(t, "x => x * \"a\"", &S, 1, PLAN_NONE, "'*' needs numbers, not str and str");
    bad_lam(t, "x => x == \"a\"", &I, 1, PLAN_NONE, "cannot compare int with str");
    bad_lam(t, "x => x < [1]", &I, 1, PLAN_NONE, "'<' compares two numbers or two strings");
    bad_lam(t, "x => x and true", &I, 1, PLAN_NONE,
            "t.flow:3:6: error: 'and' needs bool operands, not int");
    bad_lam(t, "x => not x", &I, 1, PLAN_NONE, "'not' needs a bool, not int");
    bad_lam(t, "x => -x", &S, 1, PLAN_NONE, "'-' needs a number, not str");
    bad_lam(t, "x => if x then 1 else 2", &I, 1, PLAN_NONE,
            "t.flow:3:9: error: the condition of 'if' must be a bool, not int");
    bad_lam(t, "x => if x > 1 then 1 else \"a\"", &I, 1, PLAN_NONE,
            "t.flow:3:27: error: the branches of 'if' have different types: int and str");
    bad_lam(t, "r => r.nn", &t->t_row, 1, PLAN_NONE, "t.flow:3:8: error: Row has no field 'nn'");
    bad_lam(t, "r => r.nn", &t->t_row, 1, PLAN_NONE, "hint: did you mean 'n'?");
    bad_lam(t, "x => x.f", &I, 1, PLAN_NONE, "a value of type int has no field 'f'");
    bad_lam(t, "x => x[0]", &I, 1, PLAN_NONE, "only lists can be indexed, not int");
    bad_lam(t, "x => [1][x]", &S, 1, PLAN_NONE, "a list index must be an int, not str");
    bad_lam(t, "x => [1, \"a\"]", &I, 1, PLAN_NONE,
            "t.flow:3:10: error: list elements must have one type: str here, int before");
    bad_lam(t, "x => []", &I, 1, PLAN_NONE, "cannot tell the element type of an empty list");
    bad_lam(t, "x => {a = 1, a = 2}", &I, 1, PLAN_NONE, "field 'a' is given twice");
    bad_lam(t, "x => \"{[x]}\"", &I, 1, PLAN_NONE,
            "cannot turn a value of type [int] into a string");
    bad_lam(t, "x => x + 1", &I, 1, S,
            "t.flow:3:6: error: this lambda gives int, but str is needed here");
    bad_lam(t, "x => \"a\\u{0}b\"", &I, 1, PLAN_NONE,
            "a string in an expression cannot hold a NUL character");
    /* a literal zero divisor compiles, with a warning */
    assert_int_not_equal(lam(t, "x => if x > 0 then x / 0 else 1", &I, 1, PLAN_NONE), PLAN_NONE);
    assert_non_null(strstr(t->errs, "t.flow:3:24: warning: division by zero: this fails"));
    tx_free(t);
}

static void test_call_errors(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t I = t->t_int, S = t->t_str;
    bad_lam(t, "x => lenn(x)", &S, 1, PLAN_NONE,
            "t.flow:3:6: error: unknown function 'lenn': a lambda can call only the built-in");
    bad_lam(t, "x => lenn(x)", &S, 1, PLAN_NONE, "did you mean 'len'?");
    bad_lam(t, "x => x(1)", &S, 1, PLAN_NONE, "'x' is a parameter, not a function");
    bad_lam(t, "x => len(x, x)", &S, 1, PLAN_NONE,
            "t.flow:3:6: error: len() takes 1 argument, not 2");
    bad_lam(t, "x => replace(x, \"a\")", &S, 1, PLAN_NONE, "replace() takes 3 arguments, not 2");
    bad_lam(t, "x => len(x)", &I, 1, PLAN_NONE,
            "t.flow:3:10: error: argument 1 of len() must be a string or a list, not int");
    bad_lam(t, "x => upper(x)", &I, 1, PLAN_NONE, "argument 1 of upper() must be a string");
    bad_lam(t, "x => contains(x, 1)", &S, 1, PLAN_NONE,
            "argument 2 of contains() must be a string, not int");
    bad_lam(t, "x => join(x, 1)", &S, 1, PLAN_NONE, "argument 2 of join() must be");
    bad_lam(t, "x => join(x, \",\")", &I, 1, PLAN_NONE, "argument 1 of join() must be");
    bad_lam(t, "x => int([x])", &I, 1, PLAN_NONE, "argument 1 of int() must be");
    bad_lam(t, "x => len", &I, 1, PLAN_NONE, "'len' is a built-in function");
    bad_lam(t, "x => len(s = x)", &S, 1, PLAN_NONE, "len() takes no named arguments");
    bad_lam(t, "x => q.map(x)", &S, 1, PLAN_NONE, "only the built-in functions can be called");
    /* arity of the lambda itself */
    bad_lam(t, "(a, b) => a", &I, 1, PLAN_NONE,
            "t.flow:3:1: error: this lambda takes 2 parameters, but 1 is given here");
    uint32_t two[] = {I, I};
    bad_lam(t, "(a, a) => a", two, 2, PLAN_NONE, "parameter 'a' is declared twice");
    /* labels may take the first k parameters */
    uint32_t three[] = {t->t_path, I, S};
    uint32_t li = lam_ex(t, "(f, n) => \"{basename(f)}#{n}\"", three, 3, S, true);
    assert_int_not_equal(li, PLAN_NONE);
    assert_int_equal(t->p->lambdas[li].nparams, 2);
    li = lam_ex(t, "(a, b, c, d) => a", three, 3, S, true);
    assert_int_equal(li, PLAN_NONE);
    assert_non_null(strstr(t->errs, "but at most 3 can be given here"));
    tx_free(t);
}

static void test_limits(void **state) {
    (void)state;
    tx *t = tx_new();
    /* nesting deeper than EXPR_MAX_DEPTH */
    char src[1024] = "x => ";
    for (int i = 0; i < EXPR_MAX_DEPTH + 5; i++)
        strcat(src, "(");
    strcat(src, "x");
    for (int i = 0; i < EXPR_MAX_DEPTH + 5; i++)
        strcat(src, "+1)");
    uint32_t li = lam(t, src, &t->t_int, 1, PLAN_NONE);
    assert_int_equal(li, PLAN_NONE);
    assert_non_null(strstr(t->errs, "expression nested too deeply (more than 64 levels)"));
    /* a failed lambda leaves nothing behind */
    uint32_t n0 = t->p->n_code, l0 = t->p->n_lambdas;
    assert_int_equal(lam(t, "x => x + \"a\"", &t->t_int, 1, PLAN_NONE), PLAN_NONE);
    assert_int_equal(t->p->n_code, n0);
    assert_int_equal(t->p->n_lambdas, l0);
    tx_free(t);
}

/* ---- sh commands ---- */

static uint32_t sh_cmd(tx *t, const char *decl, const uint32_t *ptypes, bool has_out) {
    fl_diag d;
    FILE *f;
    const fl_node *task = parse_find(t, decl, AST_TASK, &d, &f);
    const char *names[8];
    int n = task->list.len;
    for (int i = 0; i < n; i++)
        names[i] = task->list.items[i]->name;
    expr_ctx cx = {t->p, &d, NULL, 0};
    uint32_t li = expr_lower_sh(&cx, task->b->a, names, ptypes, n, has_out);
    fclose(f);
    if (li != PLAN_NONE) {
        char why[256];
        assert_int_equal(expr_verify(t->p, li, why, sizeof why), 0);
    }
    return li;
}

static void test_sh(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t pt[] = {t->t_str, t->t_int, t->t_path};
    uint32_t li = sh_cmd(t,
                         "task g(a: str, n: int, f: path) -> path = sh \"grep -c {a} {f} "
                         "| head -n {n} > {out}\"\n",
                         pt, true);
    assert_int_not_equal(li, PLAN_NONE);
    assert_int_equal(t->p->lambdas[li].nparams, 4);
    fl_val args[4] = {fv_str_cstr(t->p, t->t_str, "a b; rm -rf /"),
                        {.i = 3},
                        fv_str_cstr(t->p, t->t_path, "it's.txt"),
                        fv_str_cstr(t->p, t->t_str, "/tmp/o")};
    fl_val r = run(t, li, args);
    assert_string_equal(fv_as_str(r)->data,
                        "grep -c 'a b; rm -rf /' 'it'\\''s.txt' | head -n '3' > '/tmp/o'");
    fv_decref(t->p, t->t_str, r);
    for (int i = 0; i < 4; i++)
        fv_decref(t->p, i == 1 ? t->t_int : t->t_str, args[i]);
    /* no `out` for a task returning str */
    li = sh_cmd(t, "task g(a: str) -> str = sh \"echo {a} > {out}\"\n", pt, false);
    assert_int_equal(li, PLAN_NONE);
    assert_non_null(strstr(t->errs, "t.flow:1:41: error: 'out' is not available in this command"));
    li = sh_cmd(t, "task g(name: str) -> str = sh \"echo {nmae}\"\n", pt, false);
    assert_int_equal(li, PLAN_NONE);
    assert_non_null(strstr(t->errs, "unknown name 'nmae': a command can use only the task's "
                                    "parameters"));
    assert_non_null(strstr(t->errs, "did you mean 'name'?"));
    /* a list of paths: one quoted word each; an empty list: nothing */
    uint32_t lp[] = {t->t_lpath};
    li = sh_cmd(t, "task g(parts: [path]) -> path = sh \"cat {parts} > {out}\"\n", lp, true);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val la[2] = {fv_list_new(t->p, t->t_lpath, 2), fv_str_cstr(t->p, t->t_str, "o")};
    fv_as_list(la[0])->items[0] = fv_str_cstr(t->p, t->t_path, "a b");
    fv_as_list(la[0])->items[1] = fv_str_cstr(t->p, t->t_path, "c'd");
    r = run(t, li, la);
    assert_string_equal(fv_as_str(r)->data, "cat 'a b' 'c'\\''d' > 'o'");
    fv_decref(t->p, t->t_str, r);
    fv_decref(t->p, t->t_lpath, la[0]);
    la[0] = fv_list_new(t->p, t->t_lpath, 0);
    r = run(t, li, la);
    assert_string_equal(fv_as_str(r)->data, "cat  > 'o'");
    fv_decref(t->p, t->t_str, r);
    fv_decref(t->p, t->t_lpath, la[0]);
    fv_decref(t->p, t->t_str, la[1]);
    /* a string inside an interpolation is quoted once, as a whole */
    uint32_t one[] = {t->t_str};
    li = sh_cmd(t, "task g(a: str) -> str = sh \"echo {upper(\"x {a}\")}\"\n", one, false);
    assert_int_not_equal(li, PLAN_NONE);
    fl_val qa[2] = {fv_str_cstr(t->p, t->t_str, "y z"), fv_str_cstr(t->p, t->t_str, "")};
    r = run(t, li, qa);
    assert_string_equal(fv_as_str(r)->data, "echo 'X Y Z'");
    fv_decref(t->p, t->t_str, r);
    fv_decref(t->p, t->t_str, qa[0]);
    fv_decref(t->p, t->t_str, qa[1]);
    /* a list of ints cannot be interpolated */
    li = sh_cmd(t, "task g(ns: [int]) -> str = sh \"echo {ns}\"\n", &t->t_lint, false);
    assert_int_equal(li, PLAN_NONE);
    assert_non_null(strstr(t->errs, "cannot turn a value of type [int] into a string"));
    /* a command without interpolation, and literal text kept as written */
    li = sh_cmd(t, "task g() -> str = sh \"echo '$HOME' \\\"x\\\"\"\n", pt, false);
    fl_val out_arg = fv_str_cstr(t->p, t->t_str, "");
    r = run(t, li, &out_arg);
    assert_string_equal(fv_as_str(r)->data, "echo '$HOME' \"x\"");
    fv_decref(t->p, t->t_str, r);
    fv_decref(t->p, t->t_str, out_arg);
    tx_free(t);
}

/* ---- the verifier ---- */

static void test_verify(void **state) {
    (void)state;
    tx *t = tx_new();
    char why[256];
    uint32_t li = lam(t, "x => if x > 1 and x < 5 then x * 2 else 0 - x", &t->t_int, 1, t->t_int);
    const plan_lambda *l = &t->p->lambdas[li];
    plan_instr *code = t->p->code + l->first_code;
    assert_int_equal(expr_verify(t->p, li, why, sizeof why), 0);
    /* break it in several ways; each is caught */
    plan_instr save = code[0];
    code[0].op = EOP_CONST_S; /* a string where an int is needed */
    code[0].a = 0;
    assert_int_equal(expr_verify(t->p, li, why, sizeof why), -1);
    code[0] = save;
    code[0].a = 5; /* no such parameter */
    assert_int_equal(expr_verify(t->p, li, why, sizeof why), -1);
    assert_non_null(strstr(why, "no such parameter"));
    code[0] = save;
    code[0].op = EOP__COUNT;
    assert_int_equal(expr_verify(t->p, li, why, sizeof why), -1);
    code[0] = save;
    save = code[l->ncode - 1];
    code[l->ncode - 1].op = EOP_NEG_I; /* no RET at the end */
    assert_int_equal(expr_verify(t->p, li, why, sizeof why), -1);
    assert_non_null(strstr(why, "does not end in RET"));
    code[l->ncode - 1] = save;
    for (uint32_t i = 0; i < l->ncode; i++)
        if (code[i].op == EOP_JUMP) {
            code[i].a = 0; /* backwards */
            assert_int_equal(expr_verify(t->p, li, why, sizeof why), -1);
            assert_non_null(strstr(why, "jump"));
            break;
        }
    tx_free(t);
}

/* Mutated code: whatever expr_verify accepts must run without harm (ASan/UBSan
 * builds check that), and what it rejects is never run. */
static void test_verify_mutations(void **state) {
    (void)state;
    tx *t = tx_new();
    uint32_t pt[] = {t->t_int, t->t_str, t->t_lint};
    const char *srcs[] = {
        "(i, s, xs) => if i > 2 and len(s) < 9 then \"{s}-{i * 2}\" else upper(s) + str(xs[0])",
        "(i, s, xs) => [len(xs), i % 3, int(\"4\")][1] == 0 or contains(s, \"a\")",
        "(i, s, xs) => {a = i, b = basename(s)}.b + join([s, s], \",\")",
    };
    uint32_t seed = 12345;
    int accepted = 0, rejected = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t li = lam(t, srcs[k], pt, 3, PLAN_NONE);
        assert_int_not_equal(li, PLAN_NONE);
        const plan_lambda *l = &t->p->lambdas[li];
        plan_instr *code = t->p->code + l->first_code;
        for (int round = 0; round < 1500; round++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t at = (seed >> 8) % l->ncode;
            plan_instr save = code[at];
            seed = seed * 1103515245u + 12345u;
            switch ((seed >> 8) % 3) {
                case 0:
                    code[at].op = (uint16_t)((seed >> 12) % (EOP__COUNT + 2));
                    break;
                case 1:
                    code[at].a = (int32_t)((seed >> 12) % 40) - 4;
                    break;
                default:
                    code[at].b = (uint16_t)((seed >> 12) % 6);
                    break;
            }
            char why[256];
            if (expr_verify(t->p, li, why, sizeof why) == 0) {
                accepted++;
                int64_t xs[] = {5};
                fl_val args[3] = {
                    {.i = 3}, fv_str_cstr(t->p, t->t_str, "abc"), list_int(t, 1, xs)};
                fl_val out;
                expr_error e;
                if (expr_eval(t->p, li, args, &out, &e) == 0)
                    fv_decref(t->p, t->p->lambdas[li].ret, out);
                fv_decref(t->p, t->t_str, args[1]);
                fv_decref(t->p, t->t_lint, args[2]);
            } else {
                rejected++;
            }
            code[at] = save;
        }
    }
    printf("# verifier: %d mutants accepted and run, %d rejected\n", accepted, rejected);
    assert_true(rejected > 1000);
    tx_free(t);
}

/* ---- speed (a figure, not an assertion) ---- */

static void test_speed(void **state) {
    (void)state;
    tx *t = tx_new();
    const char *srcs[] = {"x => x * 3 + 1", "x => x % 7 == 0"};
    for (int k = 0; k < 2; k++) {
        uint32_t li = lam(t, srcs[k], &t->t_int, 1, PLAN_NONE);
        const int n = 2000000;
        struct timespec a, b;
        int64_t sum = 0;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        for (int i = 0; i < n; i++) {
            fl_val x = {.i = i}, out;
            expr_error e;
            expr_eval(t->p, li, &x, &out, &e);
            sum += out.i;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
        printf("# interpreter: %-18s %6.1f ns/element (checksum %lld)\n", srcs[k], ns,
               (long long)sum);
        assert_true(sum != 0);
    }
    /* a string-building lambda: allocations dominate */
    uint32_t li = lam(t, "s => \"s3://bucket/{s}\"", &t->t_str, 1, t->t_str);
    fl_val x = fv_str_cstr(t->p, t->t_str, "some/key.csv");
    const int n = 500000;
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (int i = 0; i < n; i++) {
        fl_val out;
        expr_error e;
        expr_eval(t->p, li, &x, &out, &e);
        fv_decref(t->p, t->t_str, out);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
    printf("# interpreter: %-18s %6.1f ns/element\n", "s => \"s3://bucket/{s}\"", ns);
    fv_decref(t->p, t->t_str, x);
    tx_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_arith),     cmocka_unit_test(test_float_arith),
        cmocka_unit_test(test_compare_logic), cmocka_unit_test(test_if_types),
        cmocka_unit_test(test_strings),       cmocka_unit_test(test_float_text),
        cmocka_unit_test(test_paths),         cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_records_lists), cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_type_errors),   cmocka_unit_test(test_call_errors),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_sh),
        cmocka_unit_test(test_verify),        cmocka_unit_test(test_verify_mutations),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
