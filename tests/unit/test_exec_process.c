/*
 * test_exec_process.c — the process executor: crash isolation, timeouts,
 * output capture, re-dispatch after a death, values across the process
 * boundary, clean shutdown, and a throughput figure.
 *
 * The pool is driven with a job runner that calls the tasks of
 * tests/lib/libcrash.so by symbol (rt_executor_process_with), so these tests
 * exercise the pool itself; the tests at the end go through rt_open,
 * rt_call_task and the inline executor as flowrun does.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_process.h"

#define LIBCRASH "tests/lib/libcrash.so"

typedef struct fixture {
    fl_plan *plan;       /* one task per crash_* function */
    void *lib;             /* libcrash.so */
    uint32_t t_int, t_str; /* types */
} fixture;

/* tasks of the fixture plan, in this order */
enum {
    T_OK,
    T_SEGV,
    T_ABORT,
    T_EXIT,
    T_HANG,
    T_PRINT,
    T_FLOOD,
    T_ALLOC,
    T_FPE,
    T_RECURSE,
    T_UID_AS,
    T_SEGV_AS,
    T_FORK,
    T_SPAWN,
    T_LOGGED,
    T_REDIRECT,
    T_GREET,
    T__N /* T_*_AS: with run_as "nobody" */
};
static const char *const task_sym[T__N] = {
    "crash_ok",       "crash_segv",  "crash_abort", "crash_exit",       "crash_hang",
    "crash_print",    "crash_flood", "crash_alloc", "crash_fpe",        "crash_recurse",
    "crash_uid",      "crash_segv",  "crash_fork",  "crash_spawn_hang", "crash_logged",
    "crash_redirect", "crash_greet"};

static fl_plan *build_plan(uint32_t *t_int, uint32_t *t_str) {
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t ti = plan_type_basic(p, PT_INT), ts = plan_type_basic(p, PT_STR);
    uint32_t lib = PLAN_PUSH(p, libs);
    p->libs[lib].name = plan_intern_str(p, "crash");
    p->libs[lib].path = plan_intern_str(p, "libcrash.so");
    for (int k = 0; k < T__N; k++) {
        uint32_t ty = k == T_GREET ? ts : ti;
        uint32_t par = PLAN_PUSH(p, params);
        p->params[par].name = plan_intern_str(p, "x");
        p->params[par].type = ty;
        p->params[par].def = PLAN_NONE;
        uint32_t t = PLAN_PUSH(p, tasks);
        plan_task *task = &p->tasks[t];
        char name[64];
        snprintf(name, sizeof name, "%s%s", task_sym[k] + 6,
                 k == T_UID_AS || k == T_SEGV_AS ? "_as" : "");
        task->name = plan_intern_str(p, name);
        task->kind = TK_C;
        task->first_param = par;
        task->nparams = 1;
        task->ret = ty;
        task->lib = lib;
        task->symbol = plan_intern_str(p, task_sym[k]);
        task->cache = 1;
        task->stitch = task->label = task->version = task->run_as = task->image = PLAN_NONE;
        task->cmd = task->first = task->second = PLAN_NONE;
        if (k == T_UID_AS || k == T_SEGV_AS) task->run_as = plan_intern_str(p, "nobody");
    }
    *t_int = ti;
    *t_str = ts;
    return p;
}

/* The job runner used in the workers: call the task's symbol in libcrash. */
static void run_direct(void *ctx, const rt_job *job, rt_result *res) {
    fixture *f = ctx;
    const char *sym = plan_str(f->plan, f->plan->tasks[job->task].symbol);
    void *fn = dlsym(f->lib, sym);
    res->id = job->id;
    if (!fn) {
        res->ok = 0;
        res->error = fl_strdup(f->plan->ctx, "no such symbol"); /* exec.h */
        return;
    }
    if (job->task == T_GREET) {
        const char *(*g)(const char *) = (const char *(*)(const char *))fn;
        const char *s = g(fv_as_str(job->args[0])->data);
        res->value = fv_str_cstr(f->plan, f->t_str, s);
    } else {
        int64_t (*g)(int64_t) = (int64_t(*)(int64_t))fn;
        res->value.i = g(job->args[0].i);
    }
    res->ok = 1;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->plan = build_plan(&f->t_int, &f->t_str);
    f->lib = dlopen("./" LIBCRASH, RTLD_NOW | RTLD_LOCAL);
    if (!f->lib) {
        fprintf(stderr, "cannot open %s: %s\n", LIBCRASH, dlerror());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    dlclose(f->lib);
    plan_free(f->plan);
    free(f);
    return 0;
}

/* ---- helpers ---- */

typedef struct collected {
    rt_result *r; /* indexed by job id */
    int n;        /* results received */
} collected;

/* Submit n jobs (task[i], arg x[i], timeout 0 unless given) and wait for all of them. */
static void run_jobs(rt_executor *ex, const fl_plan *p, int n, const uint32_t *task,
                     const fl_val *args, const int64_t *timeout, collected *c) {
    rt_job *jobs = calloc((size_t)n, sizeof *jobs);
    for (int i = 0; i < n; i++) {
        jobs[i].id = (uint64_t)i;
        jobs[i].task = task[i];
        jobs[i].map_index = i;
        jobs[i].args = &args[i];
        jobs[i].timeout_ms = timeout ? timeout[i] : 0;
    }
    assert_int_equal(ex->ops->submit(ex, jobs, n), 0);
    c->r = calloc((size_t)n, sizeof *c->r);
    c->n = 0;
    rt_result buf[64];
    while (c->n < n) {
        int k = ex->ops->wait(ex, buf, 64, 20000);
        assert_true(k > 0); /* never 20 s without a result */
        for (int i = 0; i < k; i++) {
            assert_true(buf[i].id < (uint64_t)n);
            assert_int_equal(c->r[buf[i].id].worker_pid, 0); /* each exactly once */
            c->r[buf[i].id] = buf[i];
        }
        c->n += k;
    }
    (void)p;
    free(jobs);
}

/* Jobs i = 0..n-1 of task T_OK with argument i and no timeout (timeout may be NULL). */
static void fill_ok(int n, uint32_t *task, fl_val *args, int64_t *timeout) {
    for (int i = 0; i < n; i++) {
        task[i] = T_OK;
        args[i].i = i;
        if (timeout) timeout[i] = 0;
    }
}

static void free_collected(const fl_plan *p, const uint32_t *task, collected *c) {
    for (int i = 0; i < c->n; i++)
        rt_result_clear(p, task[i], &c->r[i]);
    free(c->r);
}

/* The pids still alive among those given (0 when all are gone and reaped). */
static int count_alive(const int *pids, int n) {
    int alive = 0;
    for (int i = 0; i < n; i++)
        if (pids[i] > 0 && kill(pids[i], 0) == 0) alive++;
    return alive;
}

/* ---- tests ---- */

static void many_trivial_jobs(void **state) {
    fixture *f = *state;
    enum { N = 10000 };
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_direct, f);
    assert_non_null(ex);
    uint32_t *task = malloc(sizeof *task * N);
    fl_val *args = malloc(sizeof *args * N);
    fill_ok(N, task, args, NULL);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("# process executor: %d trivial jobs, 2 workers: %.3f s (%.2f us/job)\n", N, s,
           s * 1e6 / N);
    for (int i = 0; i < N; i++) {
        assert_true(c.r[i].ok);
        assert_int_equal(c.r[i].value.i, 2 * i + 1);
        assert_null(c.r[i].log);
        assert_true(c.r[i].worker_pid > 0);
        assert_true(c.r[i].end >= c.r[i].start);
    }
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
    free(task);
    free(args);
}

/* segv, abort, exit, SIGFPE in the same batch as good jobs: only they fail */
static void crashes_fail_only_their_instance(void **state) {
    fixture *f = *state;
    enum { N = 60 };
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    uint32_t task[N];
    fl_val args[N];
    fill_ok(N, task, args, NULL);
    task[10] = T_SEGV;
    task[20] = T_ABORT;
    task[30] = T_EXIT;
    task[40] = T_FPE;
    task[41] = T_SEGV;    /* two deaths in a row */
    task[50] = T_RECURSE; /* a stack overflow */
    task[55] = T_FORK;    /* its child returns into the worker, and must end there */
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    for (int i = 0; i < N; i++) {
        if (task[i] == T_OK || task[i] == T_FORK) {
            assert_true(c.r[i].ok);
            assert_int_equal(c.r[i].value.i, task[i] == T_FORK ? i : 2 * i + 1);
            continue;
        }
        assert_false(c.r[i].ok);
        assert_non_null(c.r[i].error);
    }
    assert_string_equal(c.r[10].error, "worker killed by signal 11 (Segmentation fault)");
    assert_int_equal(c.r[10].term_signal, SIGSEGV);
    assert_string_equal(c.r[20].error, "worker killed by signal 6 (Aborted)");
    assert_string_equal(c.r[30].error, "task called exit(3)");
    assert_non_null(c.r[30].log); /* what it printed before exiting */
    assert_non_null(strstr(c.r[30].log, "about to exit (30)"));
    assert_string_equal(c.r[40].error, "worker killed by signal 8 (Floating point exception)");
    assert_string_equal(c.r[41].error, "worker killed by signal 11 (Segmentation fault)");
    assert_string_equal(c.r[50].error, "worker killed by signal 11 (Segmentation fault)");
    /* the worker was replaced each time */
    assert_int_not_equal(c.r[0].worker_pid, c.r[N - 1].worker_pid);
    assert_int_not_equal(c.r[11].worker_pid, c.r[9].worker_pid);
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
}

/* a hanging job is killed at its timeout; the rest run */
static void timeout_kills_only_the_hung_instance(void **state) {
    fixture *f = *state;
    enum { N = 8 };
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_direct, f);
    assert_non_null(ex);
    uint32_t task[N];
    fl_val args[N];
    int64_t timeout[N];
    fill_ok(N, task, args, timeout);
    task[1] = T_HANG;
    args[1].i = 60000;
    timeout[1] = 250;
    task[2] = T_HANG; /* finishes well within its timeout */
    args[2].i = 10;
    timeout[2] = 5000;
    collected c;
    run_jobs(ex, f->plan, N, task, args, timeout, &c);
    assert_false(c.r[1].ok);
    assert_string_equal(c.r[1].error, "timed out after 250ms");
    assert_true(c.r[1].end - c.r[1].start >= 0.2); /* a lower bound: load cannot break it */
    /* killed, not waited for: the worker that ran it is gone (reaped) while its task
     * still had a minute to sleep (no wall-clock bound here: those fail under load) */
    assert_true(c.r[1].worker_pid > 0);
    assert_int_equal(kill(c.r[1].worker_pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_true(c.r[2].ok);
    assert_int_equal(c.r[2].value.i, 10);
    for (int i = 3; i < N; i++)
        assert_true(c.r[i].ok);
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
}

/* stdout, stderr, raw writes and a child's output land in each instance's own log */
static void output_is_captured_per_instance(void **state) {
    fixture *f = *state;
    enum { N = 6 };
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_direct, f);
    assert_non_null(ex);
    uint32_t task[N];
    fl_val args[N];
    for (int i = 0; i < N; i++) {
        task[i] = i % 2 ? T_PRINT : T_OK;
        args[i].i = i;
    }
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    for (int i = 0; i < N; i++) {
        assert_true(c.r[i].ok);
        if (task[i] == T_OK) {
            assert_null(c.r[i].log);
            continue;
        }
        char want[64];
        assert_non_null(c.r[i].log);
        snprintf(want, sizeof want, "out %d\n", i);
        assert_non_null(strstr(c.r[i].log, want));
        snprintf(want, sizeof want, "err %d\n", i);
        assert_non_null(strstr(c.r[i].log, want));
        snprintf(want, sizeof want, "raw %d\n", i);
        assert_non_null(strstr(c.r[i].log, want));
        assert_non_null(strstr(c.r[i].log, "child\n"));
        for (int j = 1; j < N; j += 2) { /* nobody else's output */
            if (j == i) continue;
            snprintf(want, sizeof want, "out %d\n", j);
            assert_null(strstr(c.r[i].log, want));
        }
    }
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
}

/* a task that redirects fds 1 and 2 does not blind the worker for later batches */
static void redirected_output_is_restored(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    fl_val x = {.i = 5};
    rt_job j = {.id = 1, .task = T_REDIRECT, .map_index = -1, .args = &x};
    rt_result r;
    assert_int_equal(ex->ops->submit(ex, &j, 1), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
    assert_true(r.ok);
    j = (rt_job){.id = 2, .task = T_PRINT, .map_index = -1, .args = &x};
    assert_int_equal(ex->ops->submit(ex, &j, 1), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
    assert_true(r.ok);
    assert_non_null(r.log);
    assert_non_null(strstr(r.log, "out 5\n"));
    assert_non_null(strstr(r.log, "err 5\n"));
    rt_result_clear(f->plan, T_PRINT, &r);
    ex->ops->destroy(ex);
}

/* a flood of output keeps only the tail, and says so */
static void capture_keeps_the_tail(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    uint32_t task[2] = {T_FLOOD, T_PRINT};
    fl_val args[2] = {{.i = 1 << 20}, {.i = 7}};
    collected c;
    run_jobs(ex, f->plan, 2, task, args, NULL, &c);
    assert_true(c.r[0].ok);
    assert_non_null(c.r[0].log);
    assert_true(strlen(c.r[0].log) <= 64 * 1024 + 100);
    assert_non_null(strstr(c.r[0].log, "bytes of output dropped"));
    assert_non_null(strstr(c.r[0].log, "\nEND\n"));
    assert_non_null(strstr(c.r[1].log, "out 7\n")); /* the file was emptied between jobs */
    assert_null(strstr(c.r[1].log, "xxxx"));
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
}

/* strings cross the process boundary both ways; peak RSS is reported */
static void values_cross_the_boundary(void **state) {
    fixture *f = *state;
    enum { N = 50 };
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_direct, f);
    assert_non_null(ex);
    uint32_t task[N];
    fl_val args[N];
    char name[32];
    for (int i = 0; i < N; i++) {
        task[i] = i == N - 1 ? T_ALLOC : T_GREET;
        snprintf(name, sizeof name, "n%d", i);
        args[i] = i == N - 1 ? (fl_val){.i = 64} : fv_str_cstr(f->plan, f->t_str, name);
    }
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    for (int i = 0; i < N - 1; i++) {
        assert_true(c.r[i].ok);
        snprintf(name, sizeof name, "hello, n%d", i);
        assert_string_equal(fv_as_str(c.r[i].value)->data, name);
        fv_decref(f->plan, f->t_str, args[i]);
    }
    assert_true(c.r[N - 1].ok);
    assert_int_equal(c.r[N - 1].value.i, 64);
    assert_true(c.r[N - 1].peak_rss_kb >= 64 * 1024);
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
}

/* A runner that answers with the job's fields, as a string (task T_GREET). */
static void run_echo_job(void *ctx, const rt_job *job, rt_result *res) {
    fixture *f = ctx;
    char buf[512];
    snprintf(buf, sizeof buf, "id=%llu map=%lld out=%s scratch=%s timeout=%lld arg=%s",
             (unsigned long long)job->id, (long long)job->map_index,
             job->out_dir ? job->out_dir : "(none)", job->scratch_dir ? job->scratch_dir : "(none)",
             (long long)job->timeout_ms, fv_as_str(job->args[0])->data);
    res->ok = 1;
    res->value = fv_str_cstr(f->plan, f->t_str, buf);
}

/* every field of a job reaches the worker */
static void job_fields_reach_the_worker(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_echo_job, f);
    assert_non_null(ex);
    fl_val a = fv_str_cstr(f->plan, f->t_str, "arg \"quoted\" é");
    fl_val e = fv_str_cstr(f->plan, f->t_str, "");
    rt_job jobs[2] = {
        {.id = 1ull << 40,
         .task = T_GREET,
         .map_index = 12345,
         .args = &a,
         .out_dir = "/tmp/x/out",
         .scratch_dir = "/tmp/x/scratch",
         .timeout_ms = 60000},
        {.id = 3, .task = T_GREET, .map_index = -1, .args = &e},
    };
    assert_int_equal(ex->ops->submit(ex, jobs, 2), 0);
    int got = 0;
    while (got < 2) {
        rt_result r;
        assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
        assert_true(r.ok);
        if (r.id == 3)
            assert_string_equal(fv_as_str(r.value)->data,
                                "id=3 map=-1 out=(none) scratch=(none) timeout=0 arg=");
        else
            assert_string_equal(fv_as_str(r.value)->data,
                                "id=1099511627776 map=12345 out=/tmp/x/out "
                                "scratch=/tmp/x/scratch timeout=60000 arg=arg \"quoted\" é");
        rt_result_clear(f->plan, T_GREET, &r);
        got++;
    }
    fv_decref(f->plan, f->t_str, a);
    fv_decref(f->plan, f->t_str, e);
    ex->ops->destroy(ex);
}

/* A runner that answers a string job with the string twice over. */
static void run_twice(void *ctx, const rt_job *job, rt_result *res) {
    fixture *f = ctx;
    const fv_str *a = fv_as_str(job->args[0]);
    char *s = malloc((size_t)a->len * 2 + 1);
    memcpy(s, a->data, (size_t)a->len);
    memcpy(s + a->len, a->data, (size_t)a->len);
    res->ok = 1;
    res->value = fv_str_new(f->plan, f->t_str, s, a->len * 2);
    free(s);
}

/* megabytes each way: frames larger than any socket buffer or read chunk */
static void large_values_cross(void **state) {
    fixture *f = *state;
    enum { LEN = 6 << 20 };
    char *big = malloc(LEN);
    for (int i = 0; i < LEN; i++)
        big[i] = (char)('a' + i % 26);
    fl_val a = fv_str_new(f->plan, f->t_str, big, LEN);
    rt_executor *ex = rt_executor_process_with(f->plan, 2, run_twice, f);
    assert_non_null(ex);
    rt_job jobs[3];
    for (int i = 0; i < 3; i++)
        jobs[i] = (rt_job){.id = (uint64_t)i, .task = T_GREET, .map_index = -1, .args = &a};
    assert_int_equal(ex->ops->submit(ex, jobs, 3), 0);
    for (int got = 0; got < 3; got++) {
        rt_result r;
        assert_int_equal(ex->ops->wait(ex, &r, 1, 20000), 1);
        assert_true(r.ok);
        assert_int_equal(fv_as_str(r.value)->len, 2 * LEN);
        assert_memory_equal(fv_as_str(r.value)->data, big, LEN);
        assert_memory_equal(fv_as_str(r.value)->data + LEN, big, LEN);
        rt_result_clear(f->plan, T_GREET, &r);
    }
    ex->ops->destroy(ex);
    fv_decref(f->plan, f->t_str, a);
    free(big);
}

/* Open file descriptors of this process. */
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* destroy with jobs still running: every worker is killed and reaped */
static void destroy_leaves_no_processes(void **state) {
    fixture *f = *state;
    int fds = count_fds();
    rt_executor *ex = rt_executor_process_with(f->plan, 3, run_direct, f);
    assert_non_null(ex);
    /* learn the worker pids from quick jobs, then leave long ones running */
    uint32_t task[6] = {T_OK, T_OK, T_OK, T_OK, T_OK, T_OK};
    fl_val args[6] = {{.i = 0}, {.i = 1}, {.i = 2}, {.i = 3}, {.i = 4}, {.i = 5}};
    collected c;
    run_jobs(ex, f->plan, 6, task, args, NULL, &c);
    int pids[6];
    for (int i = 0; i < 6; i++)
        pids[i] = c.r[i].worker_pid;
    free_collected(f->plan, task, &c);
    rt_job hang[3];
    fl_val ms = {.i = 60000};
    for (int i = 0; i < 3; i++)
        hang[i] = (rt_job){.id = 100 + (uint64_t)i, .task = T_HANG, .map_index = -1, .args = &ms};
    assert_int_equal(ex->ops->submit(ex, hang, 3), 0);
    rt_result r;
    assert_int_equal(ex->ops->wait(ex, &r, 1, 100), 0); /* they are running */
    ex->ops->destroy(ex);
    assert_int_equal(count_alive(pids, 6), 0);
    /* and nothing is left to reap: no zombies */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(count_fds(), fds); /* and no descriptor left open */
}

/* a worker killed from outside: its running job fails, the queued ones run elsewhere */
static void external_kill_requeues_the_rest(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    fl_val ms = {.i = 30000}, x[20];
    rt_job jobs[21];
    jobs[0] = (rt_job){.id = 0, .task = T_HANG, .map_index = -1, .args = &ms};
    for (int i = 1; i < 21; i++) {
        x[i - 1].i = i;
        jobs[i] = (rt_job){.id = (uint64_t)i, .task = T_OK, .map_index = -1, .args = &x[i - 1]};
    }
    /* one quick job first, to learn the worker's pid */
    rt_result r;
    assert_int_equal(ex->ops->submit(ex, &jobs[1], 1), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
    int pid = r.worker_pid;
    assert_int_equal(ex->ops->submit(ex, jobs, 21), 0); /* the hang, then 20 quick ones */
    assert_int_equal(ex->ops->wait(ex, &r, 1, 100), 0);
    kill(pid, SIGKILL);
    int seen = 0, failed = 0;
    while (seen < 21) {
        rt_result buf[32];
        int k = ex->ops->wait(ex, buf, 32, 10000);
        assert_true(k > 0);
        for (int i = 0; i < k; i++) {
            if (buf[i].id == 0) {
                assert_false(buf[i].ok);
                assert_string_equal(buf[i].error, "worker killed by signal 9 (Killed)");
                failed++;
            } else {
                assert_true(buf[i].ok);
                assert_int_equal(buf[i].value.i, 2 * (int64_t)buf[i].id + 1);
                assert_int_not_equal(buf[i].worker_pid, pid);
            }
            rt_result_clear(f->plan, buf[i].id ? T_OK : T_HANG, &buf[i]);
        }
        seen += k;
    }
    assert_int_equal(failed, 1);
    ex->ops->destroy(ex);
}

/* run_as, when running as root: the task runs as that user in a child of the
 * worker, gets its directories, and its crash leaves the worker alive */
static void run_as_switches_identity(void **state) {
    fixture *f = *state;
    if (geteuid() != 0 || !getpwnam("nobody")) {
        skip();
        return;
    }
    uid_t nobody = getpwnam("nobody")->pw_uid;
    char dir[] = "/tmp/flow-px-XXXXXX", out[64], scr[64];
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(scr, sizeof scr, "%s/scratch", dir);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(mkdir(scr, 0755), 0);
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    enum { N = 4 };
    uint32_t task[N] = {T_UID_AS, T_SEGV_AS, T_UID_AS, T_OK};
    fl_val args[N] = {{.i = 0}, {.i = 1}, {.i = 2}, {.i = 3}};
    rt_job jobs[N];
    for (int i = 0; i < N; i++)
        jobs[i] = (rt_job){.id = (uint64_t)i,
                           .task = task[i],
                           .map_index = -1,
                           .args = &args[i],
                           .out_dir = i ? NULL : out,
                           .scratch_dir = i ? NULL : scr};
    assert_int_equal(ex->ops->submit(ex, jobs, N), 0);
    rt_result r[N];
    int got = 0;
    while (got < N) {
        rt_result b;
        assert_int_equal(ex->ops->wait(ex, &b, 1, 10000), 1);
        r[b.id] = b;
        got++;
    }
    assert_true(r[0].ok);
    assert_int_equal(r[0].value.i, (int64_t)nobody);
    assert_false(r[1].ok);
    assert_string_equal(r[1].error, "worker killed by signal 11 (Segmentation fault)");
    assert_int_equal(r[1].term_signal, SIGSEGV);
    assert_true(r[2].ok);
    assert_int_equal(r[2].value.i, (int64_t)nobody);
    assert_true(r[3].ok); /* without run_as: as root, in the same worker, which survived */
    assert_int_equal(r[3].worker_pid, r[0].worker_pid);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_uid, nobody);
    for (int i = 0; i < N; i++)
        rt_result_clear(f->plan, task[i], &r[i]);
    ex->ops->destroy(ex);
    rmdir(out);
    rmdir(scr);
    rmdir(dir);
}

/* a quick job's result is not held back by a slow job queued after it */
static void results_are_not_held_back(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    fl_val x = {.i = 5}, ms = {.i = 1500};
    for (int round = 0; round < 2; round++) { /* first with the slow task unknown, then known */
        rt_job jobs[2] = {{.id = 1, .task = T_OK, .map_index = -1, .args = &x},
                          {.id = 2, .task = T_HANG, .map_index = -1, .args = &ms}};
        assert_int_equal(ex->ops->submit(ex, jobs, 2), 0);
        rt_result r;
        assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
        assert_int_equal(r.id, 1);
        /* Not held back: the quick result came while the slow job still runs, so nothing
         * more is ready now. Held back, both would come in one send after the slow job.
         * (An order, not a duration: no wall-clock bound, which fails under load.) */
        assert_int_equal(ex->ops->wait(ex, &r, 1, 0), 0);
        assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
        assert_int_equal(r.id, 2);
    }
    ex->ops->destroy(ex);
}

/* Is pid gone (or a zombie nobody reaps, which is as good as gone)? */
static int gone(int pid) {
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = 0;
    const char *p = strrchr(st, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

static int read_pid(const char *file) {
    int pid = 0;
    FILE *f = fopen(file, "r");
    if (f) {
        if (fscanf(f, "%d", &pid) != 1) pid = 0;
        fclose(f);
    }
    return pid;
}

/* many crashes of every kind scattered among many jobs on 3 workers: every job is
 * answered exactly once (run_jobs checks), with the right outcome */
static void crash_storm(void **state) {
    fixture *f = *state;
    enum { N = 3000 };
    uint32_t *task = malloc(sizeof *task * N);
    fl_val *args = malloc(sizeof *args * N);
    fill_ok(N, task, args, NULL);
    const uint32_t bad[] = {T_SEGV, T_ABORT, T_EXIT, T_FPE};
    uint64_t seed = 42;
    for (int k = 0; k < 60; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        task[(seed >> 33) % N] = bad[k % 4];
    }
    rt_executor *ex = rt_executor_process_with(f->plan, 3, run_direct, f);
    assert_non_null(ex);
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    for (int i = 0; i < N; i++) {
        if (task[i] == T_OK) {
            assert_true(c.r[i].ok);
            assert_int_equal(c.r[i].value.i, 2 * i + 1);
        } else {
            assert_false(c.r[i].ok);
            assert_non_null(strstr(c.r[i].error, task[i] == T_EXIT ? "exit(3)" : "signal"));
        }
    }
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
    free(task);
    free(args);
}

/* a timeout, and destroy, also end what the task started in a group of its own */
static void kills_reach_the_task_s_children(void **state) {
    fixture *f = *state;
    char pidfile[] = "/tmp/flow-px-pid-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    setenv("CRASH_PIDFILE", pidfile, 1);
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex); /* (workers forked later, after a kill, need it too) */
    fl_val ms = {.i = 60000};
    rt_job j = {.id = 1, .task = T_SPAWN, .map_index = -1, .args = &ms, .timeout_ms = 300};
    rt_result r;
    assert_int_equal(ex->ops->submit(ex, &j, 1), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, 10000), 1);
    assert_string_equal(r.error, "timed out after 300ms");
    rt_result_clear(f->plan, T_SPAWN, &r);
    int pid = read_pid(pidfile);
    assert_true(pid > 0);
    usleep(100000);
    assert_true(gone(pid));

    assert_int_equal(truncate(pidfile, 0), 0);
    j.timeout_ms = 0;
    assert_int_equal(ex->ops->submit(ex, &j, 1), 0);
    for (int i = 0; i < 100 && !read_pid(pidfile); i++)
        usleep(20000);
    pid = read_pid(pidfile);
    assert_true(pid > 0);
    ex->ops->destroy(ex);
    usleep(100000);
    assert_true(gone(pid));
    unlink(pidfile);
    unsetenv("CRASH_PIDFILE");
}

/* wait with nothing outstanding returns at once; a timeout returns 0 */
static void wait_edges(void **state) {
    fixture *f = *state;
    rt_executor *ex = rt_executor_process_with(f->plan, 1, run_direct, f);
    assert_non_null(ex);
    rt_result r;
    assert_int_equal(ex->ops->wait(ex, &r, 1, -1), 0);
    fl_val ms = {.i = 300};
    rt_job j = {.id = 7, .task = T_HANG, .map_index = -1, .args = &ms};
    assert_int_equal(ex->ops->submit(ex, &j, 1), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, 10), 0);
    assert_int_equal(ex->ops->wait(ex, &r, 1, -1), 1);
    assert_int_equal(r.id, 7);
    assert_true(r.ok);
    ex->ops->destroy(ex);
}

/* ---- through rt_open and rt_call_task, as flowrun runs them ---- */

static rt_runtime *open_runtime(fixture *f) {
    char path[4096], err[512];
    if (!getcwd(path, sizeof path - 64)) return NULL;
    strcat(path, "/tests/lib/crash.plan"); /* libcrash.so is found next to it */
    rt_runtime *rt = rt_open(f->plan, path, 0, err, sizeof err);
    if (!rt) fprintf(stderr, "rt_open: %s\n", err);
    return rt;
}

/* the real path: the same crashes, isolated, with flow_* working in the worker */
static void real_tasks_crash_in_isolation(void **state) {
    fixture *f = *state;
    rt_runtime *rt = open_runtime(f);
    assert_non_null(rt);
    rt_executor *ex = rt_executor_process(rt, 2);
    assert_non_null(ex);
    assert_string_equal(ex->ops->name, "process");
    enum { N = 40 };
    uint32_t task[N];
    fl_val args[N];
    int64_t timeout[N];
    fill_ok(N, task, args, timeout);
    task[3] = T_SEGV;
    task[5] = T_EXIT;
    task[6] = T_ABORT;
    task[9] = T_HANG;
    args[9].i = 60000;
    timeout[9] = 1000;
    task[12] = T_PRINT;
    task[15] = T_LOGGED;
    task[20] = T_GREET;
    args[20] = fv_str_cstr(f->plan, f->t_str, "world");
    collected c;
    run_jobs(ex, f->plan, N, task, args, timeout, &c);
    for (int i = 0; i < N; i++)
        if (task[i] == T_OK) {
            assert_true(c.r[i].ok);
            assert_int_equal(c.r[i].value.i, 2 * i + 1);
        }
    assert_string_equal(c.r[3].error, "worker killed by signal 11 (Segmentation fault)");
    assert_string_equal(c.r[5].error, "task called exit(3)");
    assert_string_equal(c.r[6].error, "worker killed by signal 6 (Aborted)");
    assert_string_equal(c.r[9].error, "timed out after 1s");
    assert_true(c.r[12].ok);
    assert_non_null(c.r[12].log);
    assert_non_null(strstr(c.r[12].log, "out 12\n"));
    assert_non_null(strstr(c.r[12].log, "child\n"));
    assert_true(c.r[15].ok); /* flow_* works in the worker; its log comes first */
    assert_int_equal(c.r[15].value.i, 15);
    assert_non_null(c.r[15].log);
    const char *lg = strstr(c.r[15].log, "logged 15"), *pr = strstr(c.r[15].log, "printed 15\n");
    assert_non_null(lg);
    assert_non_null(pr);
    assert_true(lg < pr);
    assert_true(c.r[20].ok);
    assert_string_equal(fv_as_str(c.r[20].value)->data, "hello, world");
    fv_decref(f->plan, f->t_str, args[20]);
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
    rt_close(rt);
}

/* many jobs: the process executor gives what the inline executor gives */
static void results_match_inline(void **state) {
    fixture *f = *state;
    rt_runtime *rt = open_runtime(f);
    assert_non_null(rt);
    enum { N = 5000 };
    uint32_t *task = malloc(sizeof *task * N);
    fl_val *args = malloc(sizeof *args * N);
    for (int i = 0; i < N; i++) {
        task[i] = T_OK;
        args[i].i = (int64_t)i * 7919 - 1000000;
    }
    rt_executor *in = rt_executor_inline(rt, 2), *px = rt_executor_process(rt, 2);
    assert_non_null(in);
    assert_non_null(px);
    collected a, b;
    run_jobs(in, f->plan, N, task, args, NULL, &a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_jobs(px, f->plan, N, task, args, NULL, &b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("# process executor through rt_call_task: %d jobs, 2 workers: %.3f s (%.2f us/job)\n", N,
           s, s * 1e6 / N);
    for (int i = 0; i < N; i++) {
        assert_true(a.r[i].ok);
        assert_true(b.r[i].ok);
        assert_int_equal(a.r[i].value.i, b.r[i].value.i);
        assert_int_not_equal(b.r[i].worker_pid, (int)getpid());
    }
    free_collected(f->plan, task, &a);
    free_collected(f->plan, task, &b);
    in->ops->destroy(in);
    px->ops->destroy(px);
    rt_close(rt);
    free(task);
    free(args);
}

/* the inline executor, as root: run_as jobs go to its process pool (as nobody, in
 * another process, a crash failing only its job); the others run in flowrun */
static void inline_runs_run_as_in_a_pool(void **state) {
    fixture *f = *state;
    if (geteuid() != 0 || !getpwnam("nobody")) {
        skip();
        return;
    }
    uid_t nobody = getpwnam("nobody")->pw_uid;
    rt_runtime *rt = open_runtime(f);
    assert_non_null(rt);
    rt_executor *ex = rt_executor_inline(rt, 2);
    assert_non_null(ex);
    enum { N = 600 };
    uint32_t task[N];
    fl_val args[N];
    for (int i = 0; i < N; i++) {
        task[i] = i % 7 == 3 ? T_UID_AS : T_OK;
        args[i].i = i;
    }
    task[10] = T_SEGV_AS;
    collected c;
    run_jobs(ex, f->plan, N, task, args, NULL, &c);
    for (int i = 0; i < N; i++) {
        if (task[i] == T_OK) {
            assert_true(c.r[i].ok);
            assert_int_equal(c.r[i].value.i, 2 * i + 1);
            assert_int_equal(c.r[i].worker_pid, (int)getpid());
        } else if (task[i] == T_UID_AS) {
            assert_true(c.r[i].ok);
            assert_int_equal(c.r[i].value.i, (int64_t)nobody);
            assert_int_not_equal(c.r[i].worker_pid, (int)getpid());
        }
    }
    assert_false(c.r[10].ok);
    assert_string_equal(c.r[10].error, "worker killed by signal 11 (Segmentation fault)");
    rt_result r;
    assert_int_equal(ex->ops->wait(ex, &r, 1, -1), 0); /* nothing is out */
    free_collected(f->plan, task, &c);
    ex->ops->destroy(ex);
    rt_close(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_trivial_jobs),
        cmocka_unit_test(crashes_fail_only_their_instance),
        cmocka_unit_test(timeout_kills_only_the_hung_instance),
        cmocka_unit_test(output_is_captured_per_instance),
        cmocka_unit_test(capture_keeps_the_tail),
        cmocka_unit_test(redirected_output_is_restored),
        cmocka_unit_test(values_cross_the_boundary),
        cmocka_unit_test(job_fields_reach_the_worker),
        cmocka_unit_test(large_values_cross),
        cmocka_unit_test(destroy_leaves_no_processes),
        cmocka_unit_test(external_kill_requeues_the_rest),
        cmocka_unit_test(results_are_not_held_back),
        cmocka_unit_test(run_as_switches_identity),
        cmocka_unit_test(kills_reach_the_task_s_children),
        cmocka_unit_test(crash_storm),
        cmocka_unit_test(wait_edges),
        cmocka_unit_test(real_tasks_crash_in_isolation),
        cmocka_unit_test(results_match_inline),
        cmocka_unit_test(inline_runs_run_as_in_a_pool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
