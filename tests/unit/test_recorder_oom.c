/*
 * test_recorder_oom.c — the recorder (state, store) under allocation failure.
 *
 * Each case is a small scenario run on a context with a test allocator that
 * keeps every live block in a table. The scenario is first run with fail_at =
 * UINT64_MAX to count its allocation requests; then, for every N up to that
 * count, it is run again with request N failing. Each time the scenario must
 * come back with a clean error (-1, and the context's error sink saying
 * FL_ENOMEM) and no block of the context may be left live afterwards: whatever
 * was made before the failure was unwound. SQLite's own allocations do not go
 * through the context and are out of scope; so are value.c's fv_buf buffers
 * (brief ctxcore routes those).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "state.h"
#include "store.h"
#include "walk.h"

/* ---- the test allocator: every live block in a table ---- */

#define LIVE_MAX 4096
typedef struct tracker {
    void *live[LIVE_MAX];
    size_t size[LIVE_MAX];
    size_t n;
} tracker;

static void forget(tracker *t, void *p) {
    for (size_t i = 0; i < t->n; i++)
        if (t->live[i] == p) {
            t->n--;
            t->live[i] = t->live[t->n];
            t->size[i] = t->size[t->n];
            return;
        }
    fail_msg("a block the context did not allocate was freed: %p", p);
}

static void *track_alloc(void *ud, void *p, size_t n) {
    tracker *t = ud;
    if (n == 0) {
        forget(t, p);
        free(p);
        return NULL;
    }
    if (!p && t->n == LIVE_MAX) return NULL;
    if (p) forget(t, p); /* back in below, under its new address */
    void *q = realloc(p, n);
    if (!q) {
        if (p) { /* p is still live */
            t->live[t->n] = p;
            t->size[t->n++] = 0;
        }
        return NULL;
    }
    t->live[t->n] = q;
    t->size[t->n++] = n;
    return q;
}

static void quiet(void *ud, fl_log_level level, const char *msg) {
    (void)ud, (void)level, (void)msg;
}

static void ctx_for(fl_ctx *c, tracker *t, uint64_t fail_at) {
    fl_ctx_init(c);
    t->n = 0;
    c->alloc = track_alloc;
    c->alloc_ud = t;
    c->fail_at = fail_at;
    c->log = quiet;
}

static char *tmpdir(void) {
    char *d = strdup("/tmp/flow-recoom-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

/* ---- scenarios: 0 when everything worked, -1 on a reported failure ---- */

static int count_inst(const state_inst *r, void *ctx) {
    (void)r;
    ++*(int *)ctx;
    return 0;
}

/* Open a new state, begin a run, record a finished instance through the writer
 * thread, read it back, close. */
static int record_finished(fl_ctx *c, const char *dir) {
    char err[512] = "";
    fl_state *st = state_open(c, dir, err, sizeof err);
    if (!st) {
        assert_true(err[0] != 0); /* a failed open says why */
        return -1;
    }
    state_run r = {.flow = "f", .env = "prod", .params_json = "{}", .options = "",
                   .plan_path = "/nonexistent/f.plan"};
    int rc = state_run_begin(st, &r);
    if (rc == 0) rc = state_async(st);
    fl_digest key;
    memset(key.b, 7, sizeof key.b);
    state_inst in = {.run = r.id, .node = 1, .idx = "", .task = "t", .tmpl = "t",
                     .state = "succeeded", .attempts = 1, .cache_key = &key,
                     .exit_status = -1, .result = "x", .result_len = 1, .cache_store = 1};
    if (rc == 0) rc = state_inst_put(st, &in);
    if (rc == 0) rc = state_commit(st);
    if (rc == 0) rc = state_sync(st);
    int n = 0;
    if (rc == 0) rc = state_insts_each(st, r.id, count_inst, &n);
    if (rc == 0) assert_int_equal(n, 1);
    uint8_t *val = NULL;
    size_t len = 0;
    if (rc == 0) rc = state_cache_get(st, "t", &key, &val, &len) == 1 ? 0 : -1;
    fl_free(state_ctx(st), val);
    state_run got;
    if (rc == 0) rc = state_run_get(st, r.id, &got) == 0 ? 0 : -1;
    if (rc == 0) state_run_free(&got);
    if (rc == 0 && state_run_end(st, r.id, "succeeded", 0, NULL, NULL)) rc = -1;
    state_close(st);
    return rc ? -1 : 0;
}

/* Open a store, store a small folder and some bytes, read them back, collect. */
static int store_round(fl_ctx *c, const char *dir) {
    char err[512] = "", sub[4200], file[4300];
    fl_store *st = store_open(c, dir, err, sizeof err);
    if (!st) {
        assert_true(err[0] != 0);
        return -1;
    }
    snprintf(sub, sizeof sub, "%s/out", dir);
    mkdir(sub, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(file, sizeof file, "%s/f%d", sub, i);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fprintf(f, "file %d\n", i);
        fclose(f);
    }
    fl_digest h, m;
    uint8_t *data = NULL;
    size_t len;
    int rc = store_put_bytes(st, "hello", 5, &h, err, sizeof err);
    if (rc == 0) rc = store_put_dir(st, sub, 0, &m, err, sizeof err);
    if (rc == 0) rc = store_read(st, &h, &data, &len);
    fl_free(store_ctx(st), data);
    if (rc == 0 && store_collect(st, &m, 1, NULL, NULL) < 0) rc = -1;
    store_close(st);
    return rc ? -1 : 0;
}

/* Run scenario on a fresh folder for every failing request N (see the file's
 * opening comment). With absorbed, a failure may also be absorbed (the scenario
 * succeeds: the store's identity table is a cache, and a record it cannot keep
 * only costs a re-hash later); some failures must still come back as errors. */
static void every_failure(int (*scenario)(fl_ctx *c, const char *dir), int absorbed) {
    tracker *t = calloc(1, sizeof *t);
    assert_non_null(t);
    fl_ctx c;
    char *d = tmpdir();
    ctx_for(&c, t, UINT64_MAX);
    assert_int_equal(scenario(&c, d), 0);
    for (size_t i = 0; i < t->n; i++) print_error("live: %zu bytes\n", t->size[i]);
    assert_int_equal(t->n, 0);
    uint64_t total = c.nalloc;
    assert_true(total > 0);
    walk_remove_path(d);
    uint64_t errors = 0;
    for (uint64_t n = 1; n <= total; n++) {
        assert_int_equal(mkdir(d, 0700), 0);
        ctx_for(&c, t, n);
        int rc = scenario(&c, d);
        errors += rc == -1;
        if (c.errcode != FL_ENOMEM || !(rc == -1 || (absorbed && rc == 0)))
            fail_msg("allocation %llu of %llu failed: the scenario returned %d, error code %d",
                     (unsigned long long)n, (unsigned long long)total, rc, (int)c.errcode);
        if (t->n)
            fail_msg("allocation %llu of %llu failed: %zu blocks left live",
                     (unsigned long long)n, (unsigned long long)total, t->n);
        walk_remove_path(d);
    }
    assert_true(errors > 0);
    free(d);
    free(t);
}

static void test_state_open_and_record_fail_cleanly(void **state) {
    (void)state;
    every_failure(record_finished, 0);
}

static void test_store_fails_cleanly(void **state) {
    (void)state;
    every_failure(store_round, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_open_and_record_fail_cleanly),
        cmocka_unit_test(test_store_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
