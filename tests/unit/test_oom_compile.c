/*
 * test_oom_compile.c — the compiler under memory failure: a small program is
 * parsed and checked in-process with every allocation request made to fail in
 * turn, and each time the compile must give up cleanly.
 *
 * The compiler allocates through a context (runtime/core/ctx.h). Here the context gets
 * a tracking allocator: each block carries a header with a magic word, so the test
 * knows how many blocks are live and notices a block freed twice or freed with
 * the wrong allocator. A first run counts the requests (fail_at = UINT64_MAX);
 * then request N fails, for every N when there are at most OOM_ALL of them, else
 * the first OOM_FIRST and OOM_SPREAD more spread evenly. It is done twice: with
 * the parse arena as flowc makes it (64 KiB chunks: few requests), and with an
 * arena that asks the context for every node, so that a failure lands inside each
 * kind of parser action and scanner rule. "Cleanly" means: no
 * crash, no plan, FL_ENOMEM in the context, not one diagnostic printed (the
 * program is valid: whatever the checker says after a failure is noise), and no
 * live block once the caller has freed what it owns.
 *
 * Only what goes through the context is counted: the plan builder (runtime/core/plan.c)
 * still uses malloc until its constructors take a context, and bison's stacks
 * stay on malloc (grammar/flow.y says why). Under ASan the test is skipped: ASan's
 * allocator is in the way of counting, and a failure path is run there anyway by
 * the plain build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ast.h"
#include "compile.h"
#include "ctx.h"
#include "diag.h"
#include "plan.h"

#define OOM_ALL 400    /* up to this many requests: fail each one */
#define OOM_FIRST 200  /* else the first ones... */
#define OOM_SPREAD 200 /* ...and this many more, spread evenly over the rest */

/* A valid program touching most of the checker: a library (found, hashed, its
 * symbols read), a record type, task options with a label lambda, an sh command
 * with interpolation, defaults of every shape, a schedule, a group inlined by
 * .expand, filter with a lambda, an imported file (read, parsed, its task called and
 * its type used qualified). Its path is relative to the repository root. */
static const char *program =
    "import \"../errors/modules/tasks.flow\" as t\n"
    "library chk = \"../lib/libchk.so\"\n"
    "type Job = {name: str, size: int}\n"
    "task list_files(root: dir) -> [path] = chk.list_files\n"
    "task count_words(file: path) -> int = chk.count_words with {retries: 2, timeout: 30s, "
    "label: f => basename(f)}\n"
    "task max_of(counts: [int]) -> int = chk.max_of\n"
    "task shout(word: str, n: int = 3) -> str = sh \"echo {upper(word)} {n + 1}\"\n"
    "group per_file(f: path) -> int {\n"
    "    return count_words(f)\n"
    "}\n"
    "flow wc(day: date, root: dir = \"data\", jobs: [Job] = [{name = \"a\", size = 1}], "
    "h: t.Hit = {file = \"a\", n = 1}) -> int "
    "schedule \"0 3 * * mon-fri\" {\n"
    "    let files = list_files(root)\n"
    "    let counts = per_file.expand(f = files)\n"
    "    let big = counts.filter(n => n > 10 and n < 1000)\n"
    "    let loud = shout.expand(word = [\"x\", \"y\"])\n"
    "    let two = t.twice.expand(x = [1, 2])\n"
    "    return max_of(big)\n"
    "}\n";

/* ---- the tracking allocator ---- */

#define LIVE_MAGIC 0x6c697665626c6b21ull /* "liveblk!" */
#define DEAD_MAGIC 0x64656164626c6b21ull /* "deadblk!" */

typedef struct tracker {
    long live;     /* blocks allocated and not freed */
    long bad_free; /* frees of something that was not a live block */
} tracker;

typedef struct block_head {
    uint64_t magic;
    uint64_t size;
} block_head; /* 16 bytes: what follows stays 16-aligned */

static void *track_alloc(void *ud, void *p, size_t n) {
    tracker *t = ud;
    block_head *h = p ? (block_head *)p - 1 : NULL;
    if (h && h->magic != LIVE_MAGIC) {
        t->bad_free++;
        return NULL;
    }
    if (n == 0) { /* free */
        h->magic = DEAD_MAGIC;
        free(h);
        t->live--;
        return NULL;
    }
    block_head *q = realloc(h, sizeof *q + n);
    if (!q) return NULL;
    if (!h) t->live++;
    q->magic = LIVE_MAGIC;
    q->size = n;
    return q + 1;
}

/* ---- one compile ---- */

typedef struct outcome {
    int parsed;      /* fl_parse returned a program */
    int planned;     /* flowc_compile returned a plan */
    int enomem;      /* the context says out of memory */
    long printed;    /* bytes of diagnostics printed */
    long live;       /* blocks live after cleanup */
    long bad_free;   /* bad frees seen */
    uint64_t nalloc; /* requests counted */
} outcome;

/* chunk: the parse arena's chunk size (0: one request per node, so that failing
 * request N lands inside every kind of parser action and scanner rule). */
static outcome compile_failing(uint64_t fail_at, size_t chunk) {
    outcome o = {0};
    tracker t = {0};
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    ctx.alloc = track_alloc;
    ctx.alloc_ud = &t;
    ctx.fail_at = fail_at;
    FILE *sink = tmpfile();
    assert_non_null(sink);
    fl_diag d;
    diag_init(&d, "tests/unit/oom.flow", program, strlen(program), sink);
    ast_arena *ar = chunk ? ast_arena_new(&ctx) : ast_arena_new_chunked(&ctx, 0);
    fl_node *prog = ar ? fl_parse(ar, &d, program, strlen(program)) : NULL;
    fl_plan *plan = NULL;
    o.parsed = prog != NULL;
    if (prog && !d.errors) {
        flowc_options opt = {"tests/unit/oom.flow", "build/oom.plan", program, strlen(program),
                             &ctx, NULL, 0, NULL, NULL, NULL};
        plan = flowc_compile(prog, &d, &opt);
    }
    o.planned = plan != NULL;
    o.enomem = ctx.errcode == FL_ENOMEM;
    plan_free(plan);
    ast_arena_free(ar);
    o.printed = ftell(sink);
    fclose(sink);
    o.live = t.live;
    o.bad_free = t.bad_free;
    o.nalloc = ctx.nalloc;
    return o;
}

static void counting_run_compiles(size_t chunk) {
    outcome o = compile_failing(UINT64_MAX, chunk);
    assert_true(o.planned);
    assert_false(o.enomem);
    assert_int_equal(o.printed, 0); /* the program is clean (the library was found) */
    assert_int_equal(o.live, 0);
    assert_int_equal(o.bad_free, 0);
    assert_true(o.nalloc >= 20); /* the arena, the scanner, maps, scopes, the library */
}

static void check_failure(uint64_t n, size_t chunk) {
    outcome o = compile_failing(n, chunk);
    if (o.planned || !o.enomem || o.printed || o.live || o.bad_free)
        fail_msg("request %llu failing (chunk %zu): plan %d, out of memory %d, "
                 "%ld bytes of diagnostics, %ld live blocks, %ld bad frees",
                 (unsigned long long)n, chunk, o.planned, o.enomem, o.printed, o.live, o.bad_free);
}

static void every_request_fails_cleanly(size_t chunk) {
    uint64_t total = compile_failing(UINT64_MAX, chunk).nalloc;
    assert_true(total > 0);
    print_message("%llu allocation requests (parse arena chunk %zu)\n", (unsigned long long)total,
                  chunk);
    if (total <= OOM_ALL) {
        for (uint64_t n = 1; n <= total; n++) check_failure(n, chunk);
        return;
    }
    for (uint64_t n = 1; n <= OOM_FIRST; n++) check_failure(n, chunk);
    uint64_t rest = total - OOM_FIRST;
    for (uint64_t k = 1; k <= OOM_SPREAD; k++)
        check_failure(OOM_FIRST + k * rest / OOM_SPREAD, chunk);
}

/* Past the last request nothing fails: the compile succeeds as in the counting run. */
static void fail_past_the_end_succeeds(size_t chunk) {
    uint64_t total = compile_failing(UINT64_MAX, chunk).nalloc;
    outcome o = compile_failing(total + 1, chunk);
    assert_true(o.planned);
    assert_false(o.enomem);
    assert_int_equal(o.live, 0);
}

#define ASAN_SKIP()                                                                                \
    do {                                                                                           \
        print_message("skipped: under ASan (its allocator is in the way of counting)\n");        \
        skip();                                                                                    \
    } while (0)

static void test_counting_run_compiles(void **state) {
    (void)state;
    counting_run_compiles(64 * 1024);
    counting_run_compiles(0);
}

/* the arenas as flowc makes them: few, large chunks */
static void test_every_request_fails_cleanly(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    ASAN_SKIP();
#endif
    every_request_fails_cleanly(64 * 1024);
}

/* one request per node of the parse */
static void test_every_node_fails_cleanly(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    ASAN_SKIP();
#endif
    every_request_fails_cleanly(0);
}

static void test_fail_past_the_end_succeeds(void **state) {
    (void)state;
    fail_past_the_end_succeeds(64 * 1024);
    fail_past_the_end_succeeds(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting_run_compiles),
        cmocka_unit_test(test_every_request_fails_cleanly),
        cmocka_unit_test(test_every_node_fails_cleanly),
        cmocka_unit_test(test_fail_past_the_end_succeeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
