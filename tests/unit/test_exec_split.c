/*
 * test_exec_split.c — the split executor (exec_split.c): jobs reach the side their
 * task is routed to, every result comes back once, a slow side does not hold back
 * the other's results, and waits time out when nothing finishes.
 *
 * Both sides are real process pools (rt_executor_process_with) whose job runners
 * mark the result with the side that ran it (x + 1000 on side a, x + 2000 on side
 * b) and sleep for the argument's hundreds (x >= 100: x/100 * 100 ms).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_process.h"
#include "exec_split.h"

static fl_plan *build_plan(void) {
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t ti = plan_type_basic(p, PT_INT);
    for (int k = 0; k < 2; k++) {
        uint32_t par = PLAN_PUSH(p, params);
        p->params[par].name = plan_intern_str(p, "x");
        p->params[par].type = ti;
        p->params[par].def = PLAN_NONE;
        uint32_t t = PLAN_PUSH(p, tasks);
        plan_task *task = &p->tasks[t];
        task->name = plan_intern_str(p, k ? "boxed" : "plain");
        task->kind = TK_C;
        task->first_param = par;
        task->nparams = 1;
        task->ret = ti;
        task->cache = 1;
        task->lib = task->symbol = task->stitch = task->label = task->version = PLAN_NONE;
        task->run_as = task->image = task->cmd = task->first = task->second = PLAN_NONE;
    }
    return p;
}

static void run_side(const rt_job *job, rt_result *res, int64_t mark) {
    int64_t x = job->args[0].i;
    if (x >= 100) nanosleep(&(struct timespec){0, (long)(x / 100) * 100000000L}, NULL);
    res->id = job->id;
    res->ok = 1;
    res->value.i = x + mark;
}
static void run_a(void *ctx, const rt_job *job, rt_result *res) {
    (void)ctx;
    run_side(job, res, 1000);
}
static void run_b(void *ctx, const rt_job *job, rt_result *res) {
    (void)ctx;
    run_side(job, res, 2000);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static rt_executor *make_split(fl_plan *p) {
    rt_executor *a = rt_executor_process_with(p, 2, run_a, NULL);
    rt_executor *b = rt_executor_process_with(p, 2, run_b, NULL);
    assert_non_null(a);
    assert_non_null(b);
    const unsigned char to_b[2] = {0, 1};
    rt_executor *s = rt_executor_split(p, a, b, to_b);
    assert_non_null(s);
    return s;
}

static void jobs_reach_their_side(void **state) {
    (void)state;
    fl_plan *p = build_plan();
    rt_executor *ex = make_split(p);
    enum { N = 200 };
    static fl_val args[N];
    static rt_job jobs[N];
    for (int i = 0; i < N; i++) {
        args[i].i = i % 100;
        jobs[i] = (rt_job){.id = (uint64_t)i, .task = (uint32_t)(i % 3 == 0), .map_index = -1,
                           .args = &args[i]};
    }
    assert_int_equal(ex->ops->submit(ex, jobs, N / 2), 0);
    assert_int_equal(ex->ops->submit(ex, jobs + N / 2, N - N / 2), 0);
    int seen[N] = {0}, got = 0;
    rt_result out[64];
    while (got < N) {
        int k = ex->ops->wait(ex, out, 64, 5000);
        assert_true(k > 0);
        for (int j = 0; j < k; j++) {
            uint64_t id = out[j].id;
            assert_true(id < N);
            assert_int_equal(seen[id]++, 0);
            assert_true(out[j].ok);
            int64_t want = (int64_t)(id % 100) + (id % 3 == 0 ? 2000 : 1000);
            assert_int_equal(out[j].value.i, want);
        }
        got += k;
    }
    assert_int_equal(ex->ops->wait(ex, out, 64, 50), 0); /* nothing left: a timeout */
    ex->ops->destroy(ex);
    plan_free(p);
}

static void a_slow_side_does_not_hold_back_the_other(void **state) {
    (void)state;
    fl_plan *p = build_plan();
    rt_executor *ex = make_split(p);
    fl_val slow = {.i = 800}, quick[8];
    rt_job jobs[9];
    jobs[0] = (rt_job){.id = 100, .task = 1, .map_index = -1, .args = &slow};
    for (int i = 0; i < 8; i++) {
        quick[i].i = i;
        jobs[i + 1] = (rt_job){.id = (uint64_t)i, .task = 0, .map_index = -1, .args = &quick[i]};
    }
    double t0 = now_s();
    assert_int_equal(ex->ops->submit(ex, jobs, 9), 0);
    int got = 0;
    rt_result out[16];
    while (got < 8) {
        int k = ex->ops->wait(ex, out, 16, 5000);
        assert_true(k > 0);
        for (int j = 0; j < k; j++) assert_true(out[j].id < 8); /* the slow one is still out */
        got += k;
    }
    assert_true(now_s() - t0 < 0.6); /* well before the slow job's 0.8 s */
    assert_int_equal(ex->ops->wait(ex, out, 16, 5000), 1);
    assert_int_equal(out[0].id, 100);
    assert_int_equal(out[0].value.i, 2800);
    assert_true(now_s() - t0 >= 0.75);
    ex->ops->destroy(ex);
    plan_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_reach_their_side),
        cmocka_unit_test(a_slow_side_does_not_hold_back_the_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
