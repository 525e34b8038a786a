/* test_memo.c — flowc lsp's memo of flow bodies (compiler/check_memo.c): a compile that
 * tells unchanged flows again from the memo must tell exactly what a compile from
 * nothing tells (every diagnostic, hover and reference, in order, at the same places),
 * through a series of edits: written ones (a number changed, lines added above a flow,
 * a combine added before others, an error made and mended, a declaration changed, a
 * flow renamed or removed, an imported file changed on disk) and a few hundred random
 * ones. And it must actually tell
 * flows again: the number replayed is checked where it is known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ast.h"
#include "compile.h"
#include "diag.h"
#include "plan.h"

/* what one compile told, as text: one line per diagnostic, hover or reference */
typedef struct told {
    char *s;
    size_t n, cap;
} told;

static void add(told *t, const char *fmt, ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    size_t n = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->n, line, n + 1);
    t->n += n;
}

static void on_diag(void *user, const char *what, const char *file, fl_span sp, const char *msg,
                    const char *hint) {
    add(user, "D %s %s %d:%d-%d:%d %s | %s\n", what, file ? file : "-", sp.line, sp.col,
        sp.end_line, sp.end_col, msg, hint ? hint : "-");
}

static void on_hover(void *user, int mod, fl_span at, const char *text) {
    add(user, "H %d %d:%d-%d:%d %s\n", mod, at.line, at.col, at.end_line, at.end_col, text);
}

static void on_ref(void *user, int mod, fl_span use, int def_mod, fl_span def) {
    add(user, "R %d %d:%d-%d:%d -> %d %d:%d-%d:%d\n", mod, use.line, use.col, use.end_line,
        use.end_col, def_mod, def.line, def.col, def.end_line, def.end_col);
}

static const char *include_dir; /* -I for the import test, or NULL */

/* compile src as flowc lsp does (a sink, an observer), with memo or without; what was
 * told in *out (freed by the caller); false when src does not parse */
static bool compile(const char *src, flowc_memo *memo, told *out) {
    memset(out, 0, sizeof *out);
    add(out, "%s", "");
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    ast_arena *ar = ast_arena_new(&ctx);
    fl_diag d;
    diag_init(&d, "memo.flow", src, strlen(src), NULL);
    d.sink = on_diag;
    d.sink_user = out;
    fl_node *prog = fl_parse(ar, &d, src, strlen(src));
    bool parsed = prog && !d.errors;
    if (parsed) {
        flowc_observer obs = {out, NULL, on_hover, on_ref, NULL};
        const char *inc[1] = {include_dir};
        flowc_options opt = {"memo.flow", NULL, src, strlen(src), &ctx, inc, include_dir ? 1 : 0,
                             NULL, &obs, memo};
        fl_plan *plan = flowc_compile(prog, &d, &opt);
        if (memo) assert_null(plan); /* the plan lacks what was told again */
        plan_free(plan);
        add(out, "errors %d warnings %d\n", d.errors, d.warnings);
    }
    ast_arena_free(ar);
    return parsed;
}

/* src compiled with the memo tells what it tells compiled from nothing; the number of
 * flows the memo told again (-1 when src does not parse) */
static int same_as_fresh(flowc_memo *memo, const char *src) {
    told a, b;
    bool pa = compile(src, memo, &a), pb = compile(src, NULL, &b);
    assert_int_equal(pa, pb);
    if (strcmp(a.s, b.s)) {
        size_t i = 0;
        while (a.s[i] && a.s[i] == b.s[i]) i++;
        size_t from = i > 200 ? i - 200 : 0;
        fail_msg("the memo told otherwise, at byte %zu:\n--- memo:\n%.400s\n--- fresh:\n%.400s\n"
                 "--- program:\n%s",
                 i, a.s + from, b.s + from, src);
    }
    free(a.s);
    free(b.s);
    return pa ? flowc_memo_replayed(memo) : -1;
}

static const char *const base =
    "library b = \"tests/lib/libchk.so\"\n"
    "type Row = {x: int, s: str}\n"
    "task fetch(url: str) -> bytes = b.fetch\n"
    "task size_of(data: bytes) -> int = b.size_of\n"
    "task add(x: int, y: int = 0) -> int = b.add with {retries: 1}\n"
    "task show(x: int, s: str = \"v\") -> str = sh \"echo {s} {x}\"\n"
    "task words(s: str) -> int = b.count_words\n"
    "task top(xs: [int]) -> int = b.max_of\n"
    "group g(x: int) -> int {\n"
    "    let a = add(x)\n"
    "    return add(a, y = 2)\n"
    "}\n"
    "flow f0(n: int = 3, tag: str = \"f0\") -> int {\n"
    "    let xs = range(n)\n"
    "    let a = add.partial(y = 1).expand(x = xs)\n"
    "    let b = a.map(v => v * 2 + 1)\n"
    "    let c = show.expand(x = b, s = [\"a\", tag])\n"
    "    let d = words.expand(s = c)\n"
    "    let e = top(d) after a\n"
    "    let j = combine(fetch, size_of).expand(url = c)\n"
    "    return g(e)\n"
    "}\n"
    "flow f1(n: int = 4) -> int {\n"
    "    let xs = range(n)\n"
    "    let m = combine(fetch, size_of)\n"
    "    let k = m.expand(url = show.expand(x = xs))\n"
    "    let f = b.filter(v => v > 2)\n"
    "    return top(k)\n"
    "}\n"
    "flow f2(n: int = 5) -> int {\n"
    "    let xs = range(n)\n"
    "    let h1 = h(n)\n"
    "    let c2 = combine(fetch, size_of).expand(url = show.expand(x = xs))\n"
    "    return top(c2)\n"
    "}\n"
    "group h(x: int) -> int {\n"
    "    return add(x, y = 3)\n"
    "}\n"
    "flow f3(n: int = 6) -> int {\n"
    "    let xs = range(n)\n"
    "    let w = combine(fetch, size_of).expand(url = show.expand(x = xs))\n"
    "    let q = f0\n"
    "    let wm = combine(add, show)\n"
    "    return top(w)\n"
    "}\n"
    "flow f4(n: int = 7) -> int {\n"
    "    let xs = range(n)\n"
    "    let u = add.expand(x = xs, y = xs)\n"
    "    let m = combine(fetch, size_of)\n"
    "    let c4 = combine(fetch, size_of).expand(url = show.expand(x = xs))\n"
    "    return top(u)\n"
    "}\n";

/* src with the first `from` replaced by `to` (a copy the caller frees) */
static char *edit(const char *src, const char *from, const char *to) {
    const char *at = strstr(src, from);
    assert_non_null(at);
    size_t a = (size_t)(at - src), fl = strlen(from), tl = strlen(to), n = strlen(src);
    char *r = malloc(n - fl + tl + 1);
    assert_non_null(r);
    memcpy(r, src, a);
    memcpy(r + a, to, tl);
    memcpy(r + a + tl, at + fl, n - a - fl + 1);
    return r;
}

static void written_edits(void **state) {
    (void)state;
    flowc_memo *memo = flowc_memo_new();
    assert_non_null(memo);
    /* f2 reports group h's errors first and f3 names a flow: these two are checked
     * every time; f0, f1 (its error included) and f4 are kept */
    assert_int_equal(same_as_fresh(memo, base), 0);
    assert_int_equal(same_as_fresh(memo, base), 3);
    /* a number in f0: f1 and f4 are told again, f0 checked */
    char *s1 = edit(base, "v * 2 + 1", "v * 2 + 7");
    assert_int_equal(same_as_fresh(memo, s1), 2);
    assert_int_equal(same_as_fresh(memo, s1), 3);
    /* lines added inside f3: f4 moves and is told again at its new lines */
    char *s2 = edit(s1, "    let q = f0\n", "\n\n    let q2 = 1\n    let q = f0\n");
    assert_int_equal(same_as_fresh(memo, s2), 3);
    assert_int_equal(same_as_fresh(memo, s2), 3);
    /* lines added inside f0 move group h, a declaration: every flow is checked */
    char *s2b = edit(s2, "    let d = words", "\n    let d = words");
    assert_int_equal(same_as_fresh(memo, s2b), 0);
    assert_int_equal(same_as_fresh(memo, s2b), 3);
    /* f0's combine replaced: the combines after it are numbered anew */
    char *s3 = edit(s2b, "let j = combine(fetch, size_of).expand(url = c)", "let j = words.expand(s = c)");
    assert_int_equal(same_as_fresh(memo, s3), 0);
    assert_int_equal(same_as_fresh(memo, s3), 3);
    /* the halves of f3's combine changed: its task keeps its name (wm), but f4's
     * unbound combine(fetch,size_of) is numbered anew */
    char *s3b = edit(s3, "let wm = combine(add, show)", "let wm = combine(fetch, size_of)");
    assert_int_equal(same_as_fresh(memo, s3b), 2);
    assert_int_equal(same_as_fresh(memo, s3), 2);
    assert_int_equal(same_as_fresh(memo, s3), 3);
    /* an error in f4, then mended */
    char *s4 = edit(s3, "return top(u)", "return top(uu)");
    assert_int_equal(same_as_fresh(memo, s4), 2);
    assert_int_equal(same_as_fresh(memo, s3), 2);
    /* a declaration changed: every flow is checked */
    char *s5 = edit(s3, "with {retries: 1}", "with {retries: 2}");
    assert_int_equal(same_as_fresh(memo, s5), 0);
    /* a task's parameter renamed: f0 and f4's calls now fail */
    char *s6 = edit(s5, "task add(x: int, y: int = 0)", "task add(x: int, z: int = 0)");
    same_as_fresh(memo, s6);
    assert_int_equal(same_as_fresh(memo, s5), 0);
    /* a flow renamed (the flows' names are part of every flow's environment), then
     * another one added */
    assert_int_equal(same_as_fresh(memo, s5), 3);
    char *s7 = edit(s5, "flow f4(", "flow f5(");
    assert_int_equal(same_as_fresh(memo, s7), 0);
    char *s8 = edit(s7, "flow f0(n: int = 3, tag: str = \"f0\") -> int {", "flow zz() {}\nflow f0x(n: int = 3, tag: str = \"f0\") -> int {");
    same_as_fresh(memo, s8);
    same_as_fresh(memo, s5);
    /* a syntax error leaves the memo as it was */
    char *s9 = edit(s5, "let xs = range(n)", "let xs = range(n");
    assert_int_equal(same_as_fresh(memo, s9), -1);
    assert_int_equal(same_as_fresh(memo, s5), 3);
    free(s1), free(s2), free(s2b), free(s3), free(s3b), free(s4), free(s5), free(s6), free(s7), free(s8), free(s9);
    flowc_memo_free(memo);
}

/* random edits of whole lines: a line copied, dropped, moved, or a digit changed */
static void random_edits(void **state) {
    (void)state;
    flowc_memo *memo = flowc_memo_new();
    assert_non_null(memo);
    unsigned seed = 12345;
    char *src = strdup(base);
    int replayed = 0, parsed = 0;
    for (int step = 0; step < 400; step++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = strlen(src);
        /* the line starts */
        size_t starts[512];
        int nl = 0;
        for (size_t i = 0; i < n && nl < 512; i++)
            if (i == 0 || src[i - 1] == '\n') starts[nl++] = i;
        int l = (int)((seed >> 8) % (unsigned)nl);
        size_t a = starts[l], b = l + 1 < nl ? starts[l + 1] : n;
        char *r = malloc(n * 2 + 64);
        assert_non_null(r);
        switch ((seed >> 20) % 5) {
        case 0: /* copy line l after itself */
            memcpy(r, src, b);
            memcpy(r + b, src + a, b - a);
            memcpy(r + b + (b - a), src + b, n - b + 1);
            break;
        case 1: /* drop line l (not the last few) */
            if (nl < 20) goto same;
            memcpy(r, src, a);
            memcpy(r + a, src + b, n - b + 1);
            break;
        case 2: /* a blank line before line l */
            memcpy(r, src, a);
            r[a] = '\n';
            memcpy(r + a + 1, src + a, n - a + 1);
            break;
        case 3: { /* a digit of line l changed, if it has one */
            memcpy(r, src, n + 1);
            char *dgt = NULL;
            for (size_t i = a; i < b; i++)
                if (r[i] >= '0' && r[i] <= '9') dgt = r + i;
            if (dgt) *dgt = (char)('0' + (*dgt - '0' + 1 + (int)(seed % 8)) % 10);
            break;
        }
        default:
        same:
            memcpy(r, src, n + 1);
            break;
        }
        free(src);
        src = r;
        int k = same_as_fresh(memo, src);
        if (k >= 0) parsed++, replayed += k;
        if ((seed >> 4) % 8 == 0) { /* now and then, back to the start */
            free(src);
            src = strdup(base);
        }
    }
    print_message("random edits: %d parsed, %d flows told again\n", parsed, replayed);
    assert_true(parsed > 80);
    assert_true(replayed > 80);
    free(src);
    flowc_memo_free(memo);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* an imported file changed on disk: the flows that use it are checked again */
static void imported_file(void **state) {
    (void)state;
    char dir[] = "/tmp/flow-memo-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/common.flow", dir);
    include_dir = dir;
    write_file(path, "task tw(x: int) -> str = sh \"echo {x}\"\n");
    const char *prog = "import \"common.flow\"\n"
                       "flow a(n: int = 2) -> [str] {\n"
                       "    let xs = range(n)\n"
                       "    return common.tw.expand(x = xs)\n"
                       "}\n"
                       "flow b(n: int = 3) -> [str] {\n"
                       "    return common.tw.expand(x = range(n))\n"
                       "}\n";
    flowc_memo *memo = flowc_memo_new();
    assert_non_null(memo);
    assert_int_equal(same_as_fresh(memo, prog), 0);
    assert_int_equal(same_as_fresh(memo, prog), 2);
    /* a parameter added: the hovers of both flows change */
    write_file(path, "task tw(x: int, y: int = 1) -> str = sh \"echo {x} {y}\"\n");
    assert_int_equal(same_as_fresh(memo, prog), 0);
    assert_int_equal(same_as_fresh(memo, prog), 2);
    /* the task gone: both flows fail */
    write_file(path, "task other(x: int) -> str = sh \"echo {x}\"\n");
    assert_int_equal(same_as_fresh(memo, prog), 0);
    assert_int_equal(same_as_fresh(memo, prog), 2);
    flowc_memo_free(memo);
    include_dir = NULL;
    remove(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written_edits),
        cmocka_unit_test(imported_file),
        cmocka_unit_test(random_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
