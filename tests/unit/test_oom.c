/*
 * test_oom.c — fail the Nth allocation (issue 12): libflow must come back from
 * every allocation failure with a clean error, no crash and nothing leaked.
 *
 * DESIGN
 *   A test allocator (fl_alloc_fn) keeps every live block in a small open table
 *   of pointers, so "nothing leaked" is "the table is empty" after the cleanup,
 *   and a block freed that it never gave out fails the test at once. The
 *   context's fail_at hook fails request N. Each case first runs with fail_at =
 *   UINT64_MAX to count the requests, then once for every N (or, above
 *   OOM_ALL_UPTO requests, the first 200 and 200 more spread evenly), each on a
 *   fresh context: the step must report FL_ENOMEM ("out of memory") and free
 *   everything.
 *
 *   (a) load and link: a small plan, compiled in-process (the compiler's own
 *       allocations are not under test: it runs on a plain context), written to
 *       bytes, then plan_read + expr_verify + rt_open + rt_close + plan_free on
 *       the test context.
 *   (b) a three-task run through sched_run (no history, inline executor): the
 *       run ends with a code other than 0 and "out of memory" in the sink (or,
 *       when the request that failed had a fallback, as without the failure).
 *   (c) the same with values on the heap: strings, lists and records made by
 *       tasks, lambdas and the scheduler's built-ins.
 *   (d) (b) on the process executor, one worker: the worker is a fork of this
 *       process, so it fails a request too when its own count reaches N; its
 *       failures show as failed instances whose message says "out of memory".
 *   (e) parameters: plan_read, then params_resolve with a --param and a YAML
 *       file of nested lists, records and an alias (params.c builds the values
 *       on the plan's context; libyaml's own memory is its business).
 *
 *   (f) large blocks (ctx.h, fl_huge): a block of FL_HUGE_MIN bytes or more from
 *       fl_malloc, fl_calloc and fl_realloc lies in one mapping that covers it
 *       whole and is advised for huge pages (/proc/self/smaps: VmFlags "hg"), so
 *       realloc still grows it by mremap; its bytes survive the growth.
 *
 *   Without ASan only: ASan's allocator is in the way (SANITIZED=1 skips).
 *   Also here: the log sink gets libflow's warnings (it prints nothing itself).
 */
#include <inttypes.h>
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
#include "exec.h"
#include "expr.h"
#include "scheduler.h"
#include "plan.h"
#include "rtcore.h"

/* ---- the tracking allocator ---- */

#define TRACK_SLOTS (1u << 16) /* live blocks at most (a power of two) */
#define OOM_ALL_UPTO 400       /* up to this many requests, every one is failed in turn */

typedef struct track {
    void **slot;   /* live blocks, open addressing; NULL empty, TOMB removed */
    size_t live;   /* blocks live now */
    int bad_free;  /* a pointer it never gave out came back */
} track;

static char tomb_;
#define TOMB ((void *)&tomb_)

static size_t slot_of(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 40) & (TRACK_SLOTS - 1);
}

static void track_add(track *t, void *p) {
    size_t i = slot_of(p);
    while (t->slot[i] && t->slot[i] != TOMB)
        i = (i + 1) & (TRACK_SLOTS - 1);
    t->slot[i] = p;
    t->live++;
}

static int track_del(track *t, void *p) {
    for (size_t i = slot_of(p), k = 0; t->slot[i] && k < TRACK_SLOTS; i = (i + 1) & (TRACK_SLOTS - 1), k++)
        if (t->slot[i] == p) {
            t->slot[i] = TOMB;
            t->live--;
            return 0;
        }
    t->bad_free = 1;
    return -1;
}

static void *track_alloc(void *ud, void *p, size_t n) {
    track *t = ud;
    if (n == 0) {
        if (p && track_del(t, p) == 0) free(p);
        return NULL;
    }
    if (!p) {
        if (t->live + 1 >= TRACK_SLOTS / 2) return NULL; /* the table is full: "out of memory" */
        void *q = malloc(n);
        if (q) track_add(t, q);
        return q;
    }
    if (track_del(t, p) != 0) return NULL;
    void *q = realloc(p, n);
    track_add(t, q ? q : p);
    return q;
}

static void track_init(track *t, fl_ctx *c, uint64_t fail_at) {
    t->slot = calloc(TRACK_SLOTS, sizeof *t->slot);
    assert_non_null(t->slot);
    t->live = 0;
    t->bad_free = 0;
    fl_ctx_init(c);
    c->alloc = track_alloc;
    c->alloc_ud = t;
    c->fail_at = fail_at;
}

static void track_done(track *t) {
    free(t->slot);
    t->slot = NULL;
}

/* The Nth requests to fail, given `total` requests: all of them, or the first 200
 * and 200 more spread evenly over the rest. */
static uint64_t pick_n(uint64_t total, uint64_t k) {
    if (total <= OOM_ALL_UPTO || k < 200) return k + 1;
    return 201 + (k - 200) * (total - 200) / 200;
}
static uint64_t n_picks(uint64_t total) {
    return total <= OOM_ALL_UPTO ? total : 400;
}

/* ---- a plan, compiled in-process ---- */

static const char oom_src[] = "library s = \"libsched.so\"\n"
                              "task square(x: int) -> int = s.square\n"
                              "task inc(x: int) -> int = s.inc\n"
                              "task sum(xs: [int]) -> int = s.sum\n"
                              "flow main(n: int) -> int {\n"
                              "    let ys = square.expand(x = range(n))\n"
                              "    return inc(sum(ys.map((y) => y + 1)))\n"
                              "}\n";

#define OOM_PLAN_PATH "tests/lib/oom.plan" /* libraries are found beside it */

static uint8_t *compile_src(const char *src, size_t *len) {
    ast_arena *ar = ast_arena_new(fl_ctx_default());
    fl_diag d;
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    diag_init(&d, "tests/unit/oom.flow", src, strlen(src), sink);
    fl_node *prog = fl_parse(ar, &d, src, strlen(src));
    assert_non_null(prog);
    assert_int_equal(d.errors, 0);
    flowc_options opt = {"tests/unit/oom.flow", OOM_PLAN_PATH, src, strlen(src), NULL, NULL, 0, NULL, NULL, NULL};
    fl_plan *p = flowc_compile(prog, &d, &opt);
    assert_non_null(p);
    uint8_t *bytes = NULL;
    assert_int_equal(plan_write(p, &bytes, len), 0);
    plan_free(p);
    ast_arena_free(ar);
    fclose(sink);
    return bytes;
}

static uint8_t *compile_bytes(size_t *len) {
    return compile_src(oom_src, len);
}

/* ---- (a) load and link ---- */

/* 0 loaded and linked, -1 failed (err says why); everything freed either way. */
static int load_and_link(fl_ctx *c, const uint8_t *bytes, size_t len, char *err, size_t errlen) {
    fl_plan *p = plan_read(c, bytes, len, err, errlen);
    if (!p) return -1;
    int rc = 0;
    for (uint32_t l = 0; l < p->n_lambdas && !rc; l++)
        rc = expr_verify(p, l, err, errlen);
    rt_runtime *rt = rc ? NULL : rt_open(p, OOM_PLAN_PATH, 1, err, errlen);
    if (!rc && !rt) rc = -1;
    rt_close(rt);
    plan_free(p);
    return rc;
}

static void test_load_link(void **state) {
    (void)state;
    if (getenv("SANITIZED")) skip(); /* ASan's allocator is in the way */
    size_t len;
    uint8_t *bytes = compile_bytes(&len);
    char err[512];

    track t;
    fl_ctx c;
    track_init(&t, &c, UINT64_MAX);
    assert_int_equal(load_and_link(&c, bytes, len, err, sizeof err), 0);
    assert_false(fl_failed(&c));
    assert_int_equal(t.live, 0);
    assert_false(t.bad_free);
    uint64_t total = c.nalloc;
    track_done(&t);
    assert_true(total > 10); /* the plan's arrays alone are more */
    if (getenv("OOM_VERBOSE")) fprintf(stderr, "load and link: %llu requests\n", (unsigned long long)total);

    for (uint64_t k = 0; k < n_picks(total); k++) {
        uint64_t n = pick_n(total, k);
        track_init(&t, &c, n);
        err[0] = 0;
        int rc = load_and_link(&c, bytes, len, err, sizeof err);
        if (rc == 0 || !fl_failed(&c) || c.errcode != FL_ENOMEM || !strstr(err, "out of memory") ||
            t.live != 0 || t.bad_free)
            fail_msg("request %llu of %llu: rc %d, error '%s' (%s), %zu blocks live%s",
                     (unsigned long long)n, (unsigned long long)total, rc, err, fl_errmsg(&c),
                     t.live, t.bad_free ? ", a foreign free" : "");
        track_done(&t);
    }
    free(bytes);
}

/* ---- (b) and (c): runs ---- */

/* The failed instances' messages say "out of memory" (set by the observer). */
static void note_oom(void *ud, const sched_summary *s) {
    int *said = ud;
    for (uint32_t i = 0; i < s->nfails; i++)
        if (s->fails[i].error && strstr(s->fails[i].error, "out of memory")) *said = 1;
}

/* Load, link and run graph 0 with n = 3, on the inline executor or (process) on
 * one worker process. The code (0 ran), or -1 when the plan did not load or link;
 * the flow's value as JSON in json (when it has one); *inst_oom: a failed
 * instance's message says "out of memory" (a worker's request failed: the worker
 * is a copy of this process, its context too). All freed. */
static int load_and_run(fl_ctx *c, const uint8_t *bytes, size_t len, int process, char *json,
                        size_t jsonlen, int *inst_oom, char *err, size_t errlen) {
    json[0] = 0;
    *inst_oom = 0;
    fl_plan *p = plan_read(c, bytes, len, err, errlen);
    if (!p) return -1;
    rt_runtime *rt = rt_open(p, OOM_PLAN_PATH, 1, err, errlen);
    rt_executor *ex = !rt ? NULL : process ? rt_executor_process(rt, 1) : rt_executor_inline(rt, 1);
    int code = -1;
    if (ex) {
        fl_val n = {.i = 3};
        sched_observer obs = {NULL, note_oom, inst_oom};
        sched_opts so;
        memset(&so, 0, sizeof so);
        so.jobs = 1;
        so.obs = &obs;
        sched_outcome res;
        code = sched_run(p, ex, 0, &n, &so, &res);
        if (res.has_result) {
            FILE *f = fmemopen(json, jsonlen, "w");
            assert_non_null(f);
            fv_print_json(p, p->graphs[0].ret, res.result, f);
            fclose(f);
            fv_decref(p, p->graphs[0].ret, res.result);
        }
        ex->ops->destroy(ex);
    }
    rt_close(rt);
    plan_free(p);
    return code;
}

/* Run src once counting its requests (it must give `want`), then once for every
 * request picked (pick_n) with that request failing: each run ends with a code
 * other than 0 and "out of memory" in the sink (or, with worker processes, in a
 * failed instance's message), or, when what failed had a fallback, as the
 * counting run did; nothing is left allocated either way. */
static void run_each(const char *src, int process, const char *want) {
    if (getenv("SANITIZED")) {
        print_message("skipped: under ASan (its allocator is in the way of counting)\n");
        skip();
    }
    size_t len;
    uint8_t *bytes = compile_src(src, &len);
    char err[512], json[1024];
    track t;
    fl_ctx c;
    track_init(&t, &c, UINT64_MAX);
    int inst_oom;
    assert_int_equal(
        load_and_run(&c, bytes, len, process, json, sizeof json, &inst_oom, err, sizeof err), 0);
    assert_string_equal(json, want);
    assert_int_equal(t.live, 0);
    uint64_t total = c.nalloc;
    track_done(&t);
    uint64_t same = 0; /* runs that came through a failed request unharmed */
    for (uint64_t k = 0; k < n_picks(total); k++) {
        uint64_t n = pick_n(total, k);
        track_init(&t, &c, n);
        int rc = load_and_run(&c, bytes, len, process, json, sizeof json, &inst_oom, err,
                              sizeof err);
        int clean = rc == 0 ? !strcmp(json, want)
                            : (c.errcode == FL_ENOMEM && strstr(fl_errmsg(&c), "out of memory")) ||
                                  (process && inst_oom);
        if (!clean || t.live != 0 || t.bad_free)
            fail_msg("request %llu of %llu: code %d (%s), %s, %zu blocks live%s",
                     (unsigned long long)n, (unsigned long long)total, rc, fl_errmsg(&c), json,
                     t.live, t.bad_free ? ", a foreign free" : "");
        same += rc == 0;
        track_done(&t);
    }
    print_message("# a run of %llu requests: %llu of them failed in turn, each ended cleanly "
                  "(%llu with the run's own result)\n",
                  (unsigned long long)total, (unsigned long long)n_picks(total),
                  (unsigned long long)same);
    free(bytes);
}

/* (b) three tasks over ints: the scheduler, the built-ins, a scalar lambda */
static void test_run(void **state) {
    (void)state;
    run_each(oom_src, 0, "9"); /* 0²+1²+2² + one per item, + 1 */
}

/* (d) the same run on a worker process: the process executor's queues and buffers,
 * and the worker's own requests (it fails the request of the same number, counted
 * from the fork) */
static void test_run_process(void **state) {
    (void)state;
    run_each(oom_src, 1, "9");
}

/* (c) values on the heap: strings and records made by tasks (the C results), by
 * lambdas (interpolation, a field) and by built-ins (a list constant, a record
 * literal, a map read whole), a mapped string streamed into an expansion */
static const char oom_values_src[] =
    "library s = \"libsched.so\"\n"
    "type Word = {text: str, n: int}\n"
    "task square(x: int) -> int = s.square\n"
    "task greet(name: str) -> str = s.greet\n"
    "task measure(text: str) -> Word = s.measure\n"
    "task join_strs(xs: [str]) -> str = s.join_strs\n"
    "type Out = {names: str, words: [Word], lens: [int]}\n"
    "flow main(n: int) -> Out {\n"
    "    let sq = square.expand(x = range(n))\n"
    "    let hi = greet.expand(name = sq.map(x => \"n{x}\"))\n"
    "    let ws = measure.expand(text = [\"ab\", \"cde\"])\n"
    "    return {names = join_strs(hi), words = ws, lens = ws.map(w => w.n)}\n"
    "}\n";

static void test_run_values(void **state) {
    (void)state;
    run_each(oom_values_src, 0, "{\"names\":\"hello n0,hello n1,hello n4\",\"words\":[{\"text\":"
                             "\"ab\",\"n\":2},{\"text\":\"cde\",\"n\":3}],\"lens\":[2,3]}");
}

/* ---- (e) parameters ---- */

static const char params_src[] = "type R = {a: int, b: [str]}\n"
                                 "flow main(n: int, rs: [R], s: str = \"x\") -> int {\n"
                                 "    return n\n"
                                 "}\n";

/* 0 resolved (values checked and released), -1 failed; everything freed. */
static int load_and_resolve(fl_ctx *c, const uint8_t *bytes, size_t len, const char *yaml,
                            char *err, size_t errlen) {
    fl_plan *p = plan_read(c, bytes, len, err, errlen);
    if (!p) return -1;
    char *kv[] = {"s=from the command line"};
    fl_val out[3];
    int rc = params_resolve(p, 0, kv, 1, yaml, out, err, errlen);
    if (rc == 0) {
        const plan_graph *G = &p->graphs[0];
        assert_int_equal(G->nparams, 3);
        assert_int_equal(out[0].i, 3);
        assert_int_equal(fv_as_list(out[1])->len, 3);
        assert_string_equal(fv_as_str(out[2])->data, "from the command line");
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, out[i]);
    }
    plan_free(p);
    return rc;
}

static void test_params(void **state) {
    (void)state;
    if (getenv("SANITIZED")) skip();
    size_t len;
    uint8_t *bytes = compile_src(params_src, &len);
    char yaml[] = "/tmp/flow-oom-params-XXXXXX";
    int fd = mkstemp(yaml);
    assert_true(fd >= 0);
    static const char text[] = "n: 3\ns: file\nrs:\n  - {a: 1, b: [x, y]}\n"
                               "  - &two {a: 2, b: [z]}\n  - *two\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char err[512];
    track t;
    fl_ctx c;
    track_init(&t, &c, UINT64_MAX);
    if (load_and_resolve(&c, bytes, len, yaml, err, sizeof err) != 0) fail_msg("refused: %s", err);
    assert_int_equal(t.live, 0);
    uint64_t total = c.nalloc;
    track_done(&t);
    for (uint64_t k = 0; k < n_picks(total); k++) {
        uint64_t n = pick_n(total, k);
        track_init(&t, &c, n);
        err[0] = 0;
        int rc = load_and_resolve(&c, bytes, len, yaml, err, sizeof err);
        if (rc == 0 || !fl_failed(&c) || c.errcode != FL_ENOMEM || !strstr(err, "out of memory") ||
            t.live != 0 || t.bad_free)
            fail_msg("request %llu of %llu: rc %d, error '%s' (%s), %zu blocks live%s",
                     (unsigned long long)n, (unsigned long long)total, rc, err, fl_errmsg(&c),
                     t.live, t.bad_free ? ", a foreign free" : "");
        track_done(&t);
    }
    unlink(yaml);
    free(bytes);
}

/* libflow prints nothing: rt_open's warning about a library no task uses goes to
 * the context's log sink, as a warning, and nowhere else. */
static void collect(void *ud, fl_log_level level, const char *msg) {
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 1024 - n, "%d %s\n", (int)level, msg);
}

static void test_log_sink(void **state) {
    (void)state;
    char src[1024];
    snprintf(src, sizeof src, "%slibrary nope = \"libnope-unused.so\"\n", oom_src);
    size_t len;
    uint8_t *bytes = compile_src(src, &len);
    char err[512], lines[1024] = "";
    fl_ctx c;
    fl_ctx_init(&c);
    c.log = collect;
    c.log_ud = lines;
    fl_plan *p = plan_read(&c, bytes, len, err, sizeof err);
    assert_non_null(p);
    rt_runtime *rt = rt_open(p, OOM_PLAN_PATH, 0, err, sizeof err);
    assert_non_null(rt);
    assert_non_null(strstr(lines, "1 library nope (libnope-unused.so): not found"));
    rt_close(rt);
    plan_free(p);
    free(bytes);
}

/* The allocator itself: a failed request is counted, reported and leaves nothing. */
static void test_allocator(void **state) {
    (void)state;
    track t;
    fl_ctx c;
    track_init(&t, &c, 2);
    void *a = fl_malloc(&c, 10);
    assert_non_null(a);
    assert_null(fl_malloc(&c, 10));
    assert_true(fl_failed(&c));
    assert_int_equal(c.errcode, FL_ENOMEM);
    assert_non_null(strstr(fl_errmsg(&c), "out of memory"));
    void *b = fl_strdup(&c, "x");
    assert_non_null(b);
    assert_int_equal(t.live, 2);
    fl_free(&c, a);
    fl_free(&c, b);
    assert_int_equal(t.live, 0);
    assert_int_equal(c.nalloc, 3);
    track_done(&t);
}

/* The mapping of /proc/self/smaps that holds address a: 1 when it covers
 * [a, a + n) and is advised for huge pages ("hg" in its VmFlags), else 0. */
static int one_huge_mapping(const void *a, size_t n) {
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    int in = 0, ok = 0;
    uintptr_t lo, hi, x = (uintptr_t)a;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2) /* a mapping's first line */
            in = lo <= x && x < hi && x + n <= hi;
        else if (in && !strncmp(line, "VmFlags:", 8))
            ok = strstr(line, " hg") != NULL;
    }
    fclose(f);
    return ok;
}

static void test_huge_blocks(void **state) {
    (void)state;
    if (getenv("SANITIZED")) {
        printf("skipped: huge blocks: ASan's allocator lays out its own mappings\n");
        skip();
    }
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(mode, sizeof mode, f)) mode[0] = 0;
        fclose(f);
    }
    if (!strstr(mode, "[always]") && !strstr(mode, "[madvise]")) {
        printf("skipped: huge blocks: this kernel has no transparent huge pages\n");
        skip();
    }
    if (access("/proc/self/smaps", R_OK)) {
        printf("skipped: huge blocks: no /proc/self/smaps to check them in\n");
        skip();
    }
    fl_ctx c;
    fl_ctx_init(&c);
    size_t n = FL_HUGE_MIN * 2;
    uint8_t *p = fl_malloc(&c, n);
    assert_non_null(p);
    assert_true(one_huge_mapping(p, n));
    for (size_t i = 0; i < n; i += 4096) p[i] = (uint8_t)(i >> 12);
    p = fl_realloc(&c, p, n * 4); /* grown: still one advised mapping, bytes kept */
    assert_non_null(p);
    assert_true(one_huge_mapping(p, n * 4));
    for (size_t i = 0; i < n; i += 4096) assert_int_equal(p[i], (uint8_t)(i >> 12));
    uint8_t *z = fl_calloc(&c, FL_HUGE_MIN, 3);
    assert_non_null(z);
    assert_true(one_huge_mapping(z, FL_HUGE_MIN * 3));
    for (size_t i = 0; i < FL_HUGE_MIN * 3; i += 4096) assert_int_equal(z[i], 0);
    fl_free(&c, z);
    fl_free(&c, p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_blocks),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_log_sink),
        cmocka_unit_test(test_load_link),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_run_values),
        cmocka_unit_test(test_run_process),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
