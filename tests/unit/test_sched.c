/*
 * test_sched.c — the scheduler on plans built with the plan builder API, run
 * by a fake executor that computes a handful of tasks in the calling thread and
 * records the order in which it ran them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli_progress.h"
#include "scheduler.h"

/* ---- plan building helpers ---- */

typedef struct pb {
    fl_plan *p;   /* plan being built */
    uint32_t t_int; /* int */
    uint32_t t_li;  /* [int] */
    uint32_t t_lli; /* [[int]] */
    uint32_t t_str; /* str */
    uint32_t t_void;
} pb;

static void pb_init(pb *b) {
    b->p = plan_new(fl_ctx_default());
    b->p->source = plan_intern_str(b->p, "t.flow");
    b->t_int = plan_type_basic(b->p, PT_INT);
    b->t_li = plan_type_list(b->p, b->t_int);
    b->t_lli = plan_type_list(b->p, b->t_li);
    b->t_str = plan_type_basic(b->p, PT_STR);
    b->t_void = plan_type_basic(b->p, PT_VOID);
}

/* task NAME(types...) -> ret, parameters named a, b, c... */
static uint32_t pb_task(pb *b, const char *name, uint32_t ret, int n, ...) {
    fl_plan *p = b->p;
    va_list ap;
    va_start(ap, n);
    uint32_t first = p->n_params;
    for (int i = 0; i < n; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        char pn[2] = {(char)('a' + i), 0};
        p->params[k].name = plan_intern_str(p, pn);
        p->params[k].type = va_arg(ap, uint32_t);
        p->params[k].def = PLAN_NONE;
        p->params[k].loc = PLAN_NONE;
    }
    va_end(ap);
    uint32_t t = PLAN_PUSH(p, tasks);
    plan_task *T = &p->tasks[t];
    T->name = plan_intern_str(p, name);
    T->kind = TK_C;
    T->first_param = first;
    T->nparams = (uint32_t)n;
    T->ret = ret;
    T->lib = PLAN_NONE;
    T->symbol = plan_intern_str(p, name);
    T->cmd = T->first = T->second = T->stitch = PLAN_NONE;
    T->cache = 1;
    T->version = T->run_as = T->image = T->label = PLAN_NONE;
    T->loc = PLAN_NONE;
    return t;
}

static uint32_t pb_graph(pb *b, const char *name, uint32_t kind, uint32_t ret, int nparams) {
    fl_plan *p = b->p;
    uint32_t first = p->n_params;
    for (int i = 0; i < nparams; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        char pn[3] = {'p', (char)('0' + i), 0};
        p->params[k].name = plan_intern_str(p, pn);
        p->params[k].type = b->t_int;
        p->params[k].def = PLAN_NONE;
        p->params[k].loc = PLAN_NONE;
    }
    uint32_t g = PLAN_PUSH(p, graphs);
    plan_graph *G = &p->graphs[g];
    G->name = plan_intern_str(p, name);
    G->kind = kind;
    G->first_param = first;
    G->nparams = (uint32_t)nparams;
    G->ret = ret;
    G->ret_node = PLAN_NONE;
    G->schedule = PLAN_NONE;
    G->first_node = p->n_nodes;
    G->loc = PLAN_NONE;
    return g;
}

static void pb_end(pb *b, uint32_t g, uint32_t ret_node) {
    b->p->graphs[g].nnodes = b->p->n_nodes - b->p->graphs[g].first_node;
    b->p->graphs[g].ret_node = ret_node;
}

/* node(kind, type, ref, aux, nargs, then (node, mode, aux) triples) */
static uint32_t pb_node(pb *b, uint32_t kind, uint32_t type, uint32_t ref, uint32_t aux, int nargs,
                        ...) {
    fl_plan *p = b->p;
    va_list ap;
    va_start(ap, nargs);
    uint32_t first = p->n_args;
    for (int i = 0; i < nargs; i++) {
        uint32_t a = PLAN_PUSH(p, args);
        p->args[a].node = va_arg(ap, uint32_t);
        p->args[a].mode = va_arg(ap, uint32_t);
        p->args[a].aux = va_arg(ap, uint32_t);
    }
    va_end(ap);
    uint32_t n = PLAN_PUSH(p, nodes);
    plan_node *N = &p->nodes[n];
    N->kind = kind;
    N->type = type;
    N->ref = ref;
    N->aux = aux;
    N->first_arg = first;
    N->nargs = (uint32_t)nargs;
    N->first_after = p->n_afters;
    N->name = PLAN_NONE;
    N->loc = plan_add_loc(p, 10 + n, 5, 10 + n, 9);
    return n;
}

static uint32_t pb_int(pb *b, int64_t v) {
    uint32_t k = PLAN_PUSH(b->p, values);
    b->p->values[k].type = b->t_int;
    b->p->values[k].u.i = v;
    return pb_node(b, PN_CONST, b->t_int, PLAN_NONE, k, 0);
}

static uint32_t pb_range(pb *b, int64_t n) {
    uint32_t c = pb_int(b, n);
    return pb_node(b, PN_RANGE, b->t_li, PLAN_NONE, 0, 1, c, PA_SCALAR, 0);
}

static uint32_t pb_list(pb *b, int n, const int64_t *v) {
    uint32_t c[8];
    for (int i = 0; i < n; i++)
        c[i] = pb_int(b, v[i]);
    fl_plan *p = b->p;
    uint32_t first = p->n_args;
    for (int i = 0; i < n; i++) {
        uint32_t a = PLAN_PUSH(p, args);
        p->args[a].node = c[i];
        p->args[a].mode = PA_SCALAR;
    }
    uint32_t nd = pb_node(b, PN_LIST, b->t_li, PLAN_NONE, 0, 0);
    p->nodes[nd].first_arg = first;
    p->nodes[nd].nargs = (uint32_t)n;
    return nd;
}

/* ---- the fake executor ---- */

#define MAXLOG 4096
typedef struct fake {
    rt_executor ex;       /* the interface */
    const fl_plan *p;   /* plan */
    rt_job *q;            /* queued jobs */
    int head, n, cap;     /* queue */
    double dur;           /* duration reported per task */
    int per_wait;         /* most results returned per wait */
    int running[16];      /* per task: submitted, not returned */
    int maxrun[16];       /* per task: most at once */
    int attempts[16][64]; /* per task and map index: runs */
    char log[MAXLOG][24]; /* "task[k]" in run order */
    int nlog;
    int64_t runs;                /* executions */
    int64_t stop_after;          /* set *stop after this many executions (0: never) */
    volatile sig_atomic_t *stop; /* the run's stop flag */
} fake;

static int fake_submit(rt_executor *ex, const rt_job *jobs, int n) {
    fake *f = (fake *)ex;
    for (int i = 0; i < n; i++) {
        if (f->n == f->cap) {
            rt_job *nq = malloc(sizeof *nq * (size_t)(f->cap ? f->cap * 2 : 64));
            for (int j = 0; j < f->n; j++)
                nq[j] = f->q[(f->head + j) % f->cap];
            free(f->q);
            f->q = nq;
            f->head = 0;
            f->cap = f->cap ? f->cap * 2 : 64;
        }
        f->q[(f->head + f->n++) % f->cap] = jobs[i];
        uint32_t t = jobs[i].task;
        if (t < 16 && ++f->running[t] > f->maxrun[t]) f->maxrun[t] = f->running[t];
    }
    return 0;
}

/* A result's error: allocated through the plan's context (exec.h); NULL when even
 * that fails (the scheduler then says "failed"). */
static char *msg(fl_ctx *c, const char *s) {
    return fl_strdup(c, s);
}

static void fake_run(fake *f, const rt_job *j, rt_result *r) {
    const fl_plan *p = f->p;
    const char *name = plan_str(p, p->tasks[j->task].name);
    memset(r, 0, sizeof *r);
    r->id = j->id;
    r->ok = 1;
    r->start = 0;
    r->end = f->dur;
    f->runs++;
    if (f->stop && f->stop_after && f->runs >= f->stop_after) *f->stop = 1;
    if (f->nlog < MAXLOG)
        snprintf(f->log[f->nlog++], 24, "%s[%lld]", name, (long long)j->map_index);
    int64_t k = j->map_index < 0 ? 0 : j->map_index;
    if (j->task < 16 && k < 64) f->attempts[j->task][k]++;
    if (!strcmp(name, "inc")) {
        r->value.i = j->args[0].i + 1;
    } else if (!strcmp(name, "mul")) {
        r->value.i = j->args[0].i * 10 + j->args[1].i;
    } else if (!strcmp(name, "sum") || !strcmp(name, "sum_done")) {
        fv_list *l = fv_as_list(j->args[0]);
        int64_t s = 0;
        for (int64_t i = 0; i < l->len; i++)
            s += l->items[i].i;
        r->value.i = s;
    } else if (!strcmp(name, "fail_odd")) {
        if (j->args[0].i % 2) {
            r->ok = 0;
            r->error = msg(p->ctx, "odd input");
        } else {
            r->value.i = j->args[0].i;
        }
    } else if (!strcmp(name, "flaky")) {
        if (f->attempts[j->task][k] == 1) {
            r->ok = 0;
            r->error = msg(p->ctx, "first attempt fails");
        } else {
            r->value.i = j->args[0].i;
        }
    } else if (!strcmp(name, "effect")) {
        /* void */
    } else {
        r->ok = 0;
        r->error = msg(p->ctx, "unknown task");
    }
}

static int fake_wait(rt_executor *ex, rt_result *out, int max, int timeout_ms) {
    (void)timeout_ms;
    fake *f = (fake *)ex;
    int n = 0;
    if (f->per_wait && max > f->per_wait) max = f->per_wait;
    while (n < max && f->n) {
        rt_job j = f->q[f->head];
        f->head = (f->head + 1) % f->cap;
        f->n--;
        if (j.task < 16) f->running[j.task]--;
        fake_run(f, &j, &out[n++]);
    }
    return n;
}

static void fake_destroy(rt_executor *ex) {
    fake *f = (fake *)ex;
    free(f->q);
    free(f);
}

static const rt_executor_ops fake_ops = {"fake", fake_submit, fake_wait, fake_destroy};

static fake *fake_new(const fl_plan *p, double dur) {
    fake *f = calloc(1, sizeof *f);
    f->ex.ops = &fake_ops;
    f->p = p;
    f->dur = dur;
    return f;
}

/* Run graph g with jobs; result as JSON text in json (or "" when none). */
typedef struct run_out {
    sched_outcome o; /* outcome */
    char json[512];  /* result */
    char err[4096];  /* summary text */
} run_out;

static int run_plan(pb *b, fake *f, uint32_t g, int jobs, int breadth, const fl_val *params,
                    run_out *ro) {
    sched_opts opts = {0};
    volatile sig_atomic_t stop = 0;
    f->stop = &stop;
    opts.stop = &stop;
    opts.jobs = jobs;
    opts.breadth = breadth;
    char *ebuf = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&ebuf, &elen);
    cli_progress printer; /* flowrun's summary printer (no progress lines) */
    cli_progress_init(&printer, ef, SCHED_PROGRESS_NONE);
    opts.obs = &printer.obs;
    int code = sched_run(b->p, &f->ex, g, params, &opts, &ro->o);
    fclose(ef);
    snprintf(ro->err, sizeof ro->err, "%s", ebuf ? ebuf : "");
    free(ebuf);
    ro->json[0] = 0;
    if (ro->o.has_result) {
        char *jb = NULL;
        size_t jl = 0;
        FILE *jf = open_memstream(&jb, &jl);
        fv_print_json(b->p, b->p->graphs[g].ret, ro->o.result, jf);
        fclose(jf);
        snprintf(ro->json, sizeof ro->json, "%s", jb);
        free(jb);
        fv_decref(b->p, b->p->graphs[g].ret, ro->o.result);
    }
    return code;
}

/* flow main() -> [R] or R: task.expand(x = range(n)), then reduce(...) when reduce
 * is not NULL. *task_out: the mapped task. */
static uint32_t map_plan(pb *b, const char *task, int64_t n, const char *reduce,
                         uint32_t *task_out) {
    uint32_t t = pb_task(b, task, b->t_int, 1, b->t_int);
    uint32_t r = reduce ? pb_task(b, reduce, b->t_int, 1, b->t_li) : PLAN_NONE;
    uint32_t g = pb_graph(b, "main", PG_FLOW, reduce ? b->t_int : b->t_li, 0);
    uint32_t xs = pb_range(b, n);
    uint32_t ys = pb_node(b, PN_EXPAND, b->t_li, t, 1, 1, xs, PA_AXIS, 0);
    uint32_t ret = reduce ? pb_node(b, PN_CALL, b->t_int, r, 0, 1, ys, PA_SCALAR, 0) : ys;
    pb_end(b, g, ret);
    if (task_out) *task_out = t;
    return g;
}

static void finish(pb *b, fake *f) {
    fake_destroy(&f->ex);
    plan_free(b->p);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* ---- tests ---- */

static void test_expand_then_reduce(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = map_plan(&b, "inc", 5, "sum", NULL);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "15");
    assert_int_equal(ro.o.n_instances, 6);
    finish(&b, f);
}

static void test_cartesian_order(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t mul = pb_task(&b, "mul", b.t_int, 2, b.t_int, b.t_int);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_li, 0);
    int64_t xv[] = {1, 2}, yv[] = {1, 2, 3};
    uint32_t xs = pb_list(&b, 2, xv);
    uint32_t ys = pb_list(&b, 3, yv);
    uint32_t m = pb_node(&b, PN_EXPAND, b.t_li, mul, 2, 2, xs, PA_AXIS, 0, ys, PA_AXIS, 1);
    pb_end(&b, g, m);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "[11,12,13,21,22,23]");
    finish(&b, f);
}

/* a = inc.expand(range(n)); b = inc.expand(a); c = inc.expand(b); sum(c) */
static uint32_t chain_plan(pb *b, int64_t n, uint32_t *inc_out) {
    uint32_t inc = pb_task(b, "inc", b->t_int, 1, b->t_int);
    uint32_t sum = pb_task(b, "sum", b->t_int, 1, b->t_li);
    uint32_t g = pb_graph(b, "main", PG_FLOW, b->t_int, 0);
    uint32_t xs = pb_range(b, n);
    uint32_t a = pb_node(b, PN_EXPAND, b->t_li, inc, 1, 1, xs, PA_AXIS, 0);
    uint32_t bb = pb_node(b, PN_EXPAND, b->t_li, inc, 1, 1, a, PA_AXIS, 0);
    uint32_t c = pb_node(b, PN_EXPAND, b->t_li, inc, 1, 1, bb, PA_AXIS, 0);
    uint32_t s = pb_node(b, PN_CALL, b->t_int, sum, 0, 1, c, PA_SCALAR, 0);
    pb_end(b, g, s);
    if (inc_out) *inc_out = inc;
    return g;
}

static int log_pos(fake *f, const char *entry, int nth) {
    for (int i = 0; i < f->nlog; i++)
        if (!strcmp(f->log[i], entry) && nth-- == 0) return i;
    return -1;
}

static void test_depth_first(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = chain_plan(&b, 20, NULL);
    fake *f = fake_new(b.p, 0.001); /* "1 ms" tasks: no queueing ahead */
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    /* sum of (i + 3) for i < 20 */
    assert_string_equal(ro.json, "250");
    /* the third stage of element 0 ran before the first stage of element 19 */
    int c0 = log_pos(f, "inc[0]", 2), a19 = log_pos(f, "inc[19]", 0);
    assert_true(c0 >= 0 && a19 >= 0);
    assert_true(c0 < a19);
    assert_true(c0 <= 12); /* after at most two rounds of first and second stages */
    fake_destroy(&f->ex);

    /* breadth-first: every first stage before any third stage */
    f = fake_new(b.p, 0.001);
    assert_int_equal(run_plan(&b, f, g, 2, 1, NULL, &ro), 0);
    assert_string_equal(ro.json, "250");
    c0 = log_pos(f, "inc[0]", 2);
    a19 = log_pos(f, "inc[19]", 0);
    assert_true(c0 > a19);
    finish(&b, f);
}

static uint32_t fail_plan(pb *b, int all_done) {
    uint32_t fo = pb_task(b, "fail_odd", b->t_int, 1, b->t_int);
    uint32_t inc = pb_task(b, "inc", b->t_int, 1, b->t_int);
    uint32_t sum = pb_task(b, all_done ? "sum_done" : "sum", b->t_int, 1, b->t_li);
    if (all_done) b->p->tasks[sum].trigger = TRIG_ALL_DONE;
    uint32_t g = pb_graph(b, "main", PG_FLOW, b->t_int, 0);
    uint32_t xs = pb_range(b, 6);
    uint32_t a = pb_node(b, PN_EXPAND, b->t_li, fo, 1, 1, xs, PA_AXIS, 0);
    uint32_t c = pb_node(b, PN_EXPAND, b->t_li, inc, 1, 1, a, PA_AXIS, 0);
    uint32_t s = pb_node(b, PN_CALL, b->t_int, sum, 0, 1, c, PA_SCALAR, 0);
    pb_end(b, g, s);
    return g;
}

static void test_failure_propagates(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = fail_plan(&b, 0);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 1);
    assert_int_equal(ro.o.n_failed, 3);
    assert_int_equal(ro.o.n_skipped, 4); /* inc[1], inc[3], inc[5] and the sum */
    assert_int_equal(ro.o.n_ok, 6);
    assert_non_null(strstr(ro.err, "fail_odd[1]: odd input (t.flow:"));
    assert_non_null(strstr(ro.err, "fail_odd[5]"));
    assert_non_null(strstr(ro.err, "inc: 3 instances not run (upstream failed)"));
    assert_non_null(strstr(ro.err, "sum: 1 instance not run"));
    assert_null(strstr(ro.err, "inc[1]"));
    assert_int_equal(log_pos(f, "sum[-1]", 0), -1);
    finish(&b, f);
}

static void test_all_done_trigger(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = fail_plan(&b, 1);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    /* the reduce runs with the successful elements (0, 2, 4) + 1 each */
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "9");
    assert_non_null(strstr(ro.err, "fail_odd[3]"));
    finish(&b, f);
}

static void test_max_map(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc;
    uint32_t g = map_plan(&b, "inc", 5, "sum", &inc);
    b.p->tasks[inc].max_map = 3;
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 1);
    assert_non_null(strstr(ro.err, "'inc' would expand to 5 instances, more than max_map 3"));
    assert_int_equal(f->runs, 0);
    finish(&b, f);
}

static void test_empty_expansion(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = chain_plan(&b, 0, NULL);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "0");
    assert_int_equal(f->runs, 1); /* only the reduce */
    finish(&b, f);
}

static void test_retries(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t fl;
    uint32_t g = map_plan(&b, "flaky", 3, NULL, &fl);
    b.p->tasks[fl].retries = 2;
    b.p->tasks[fl].retry_delay_ms = 20;
    fake *f = fake_new(b.p, 0);
    run_out ro;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    double el = seconds_since(&t0);
    assert_string_equal(ro.json, "[0,1,2]");
    assert_int_equal(ro.o.n_attempts, 6);
    assert_true(el >= 0.019);
    fake_destroy(&f->ex);

    /* retries respect the task's concurrency */
    b.p->tasks[fl].concurrency = 1;
    b.p->tasks[fl].retry_delay_ms = 0;
    f = fake_new(b.p, 0);
    assert_int_equal(run_plan(&b, f, g, 4, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "[0,1,2]");
    assert_int_equal(f->maxrun[fl], 1);
    finish(&b, f);
}

static void test_concurrency(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc;
    uint32_t g = map_plan(&b, "inc", 50, NULL, &inc);
    b.p->tasks[inc].concurrency = 2;
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 8, 0, NULL, &ro), 0);
    assert_int_equal(f->maxrun[inc], 2);
    finish(&b, f);
}

static void test_zip_kwargs(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    fl_plan *p = b.p;
    uint32_t mul = pb_task(&b, "mul", b.t_int, 2, b.t_int, b.t_int);
    plan_field fl[2] = {{plan_intern_str(p, "a"), b.t_int}, {plan_intern_str(p, "b"), b.t_int}};
    uint32_t rt = plan_type_record(p, PLAN_NONE, fl, 2);
    uint32_t lrt = plan_type_list(p, rt);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_li, 0);
    int64_t xv[] = {1, 2, 3}, yv[] = {4, 5, 6};
    uint32_t xs = pb_list(&b, 3, xv);
    uint32_t ys = pb_list(&b, 3, yv);
    uint32_t z = pb_node(&b, PN_ZIP, lrt, PLAN_NONE, 0, 2, xs, PA_SCALAR, 0, ys, PA_SCALAR, 0);
    uint32_t m = pb_node(&b, PN_EXPAND_KWARGS, b.t_li, mul, 0, 2, z, PA_FIELD, 0, z, PA_FIELD, 1);
    pb_end(&b, g, m);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "[14,25,36]");
    fake_destroy(&f->ex);

    /* different lengths: an error naming both */
    uint32_t g2 = pb_graph(&b, "bad", PG_FLOW, b.t_li, 0);
    uint32_t x2 = pb_list(&b, 3, xv);
    uint32_t y2 = pb_list(&b, 2, yv);
    uint32_t z2 = pb_node(&b, PN_ZIP, lrt, PLAN_NONE, 0, 2, x2, PA_SCALAR, 0, y2, PA_SCALAR, 0);
    uint32_t m2 =
        pb_node(&b, PN_EXPAND_KWARGS, b.t_li, mul, 0, 2, z2, PA_FIELD, 0, z2, PA_FIELD, 1);
    pb_end(&b, g2, m2);
    f = fake_new(b.p, 0);
    assert_int_equal(run_plan(&b, f, g2, 2, 0, NULL, &ro), 1);
    assert_non_null(strstr(ro.err, "zip: lists have different lengths (3 and 2)"));
    finish(&b, f);
}

/* elem: element 2 of inc.expand(range(4)) is 3; element 4 of range(2) is a run-time
 * error under the node's name */
static void test_elem(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc = pb_task(&b, "inc", b.t_int, 1, b.t_int);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_int, 0);
    uint32_t xs = pb_range(&b, 4);
    uint32_t ex = pb_node(&b, PN_EXPAND, b.t_li, inc, 1, 1, xs, PA_AXIS, 0);
    uint32_t el = pb_node(&b, PN_ELEM, b.t_int, PLAN_NONE, 2, 1, ex, PA_SCALAR, 0);
    pb_end(&b, g, el);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "3");
    fake_destroy(&f->ex);

    uint32_t g2 = pb_graph(&b, "short", PG_FLOW, b.t_int, 0);
    uint32_t two = pb_range(&b, 2);
    uint32_t e2 = pb_node(&b, PN_ELEM, b.t_int, PLAN_NONE, 4, 1, two, PA_SCALAR, 0);
    pb_end(&b, g2, e2);
    f = fake_new(b.p, 0);
    assert_int_equal(run_plan(&b, f, g2, 2, 0, NULL, &ro), 1);
    assert_non_null(strstr(ro.err, "elem: the list has 2 elements, so no element 4"));
    finish(&b, f);
}

/* groups two(x) = inc(inc(x)) and upto(n) = inc.expand(range(n)); the flow returns
 * [two.expand(range(3)), flatten(upto.expand([1, 2]))] */
static uint32_t groups_plan(pb *b) {
    uint32_t inc = pb_task(b, "inc", b->t_int, 1, b->t_int);
    /* group two(x) { return inc(inc(x)) } */
    uint32_t two = pb_graph(b, "two", PG_GROUP, b->t_int, 1);
    uint32_t px = pb_node(b, PN_PARAM, b->t_int, PLAN_NONE, 0, 0);
    uint32_t i1 = pb_node(b, PN_CALL, b->t_int, inc, 0, 1, px, PA_SCALAR, 0);
    uint32_t i2 = pb_node(b, PN_CALL, b->t_int, inc, 0, 1, i1, PA_SCALAR, 0);
    pb_end(b, two, i2);
    /* group upto(n) { return inc.expand(range(n)) } */
    uint32_t upto = pb_graph(b, "upto", PG_GROUP, b->t_li, 1);
    uint32_t pn = pb_node(b, PN_PARAM, b->t_int, PLAN_NONE, 0, 0);
    uint32_t rg = pb_node(b, PN_RANGE, b->t_li, PLAN_NONE, 0, 1, pn, PA_SCALAR, 0);
    uint32_t ex = pb_node(b, PN_EXPAND, b->t_li, inc, 1, 1, rg, PA_AXIS, 0);
    pb_end(b, upto, ex);
    /* flow: [two.expand(range(3)), flatten(upto.expand([1, 2]))] as a record-free list pair */
    uint32_t g = pb_graph(b, "main", PG_FLOW, b->t_li, 0);
    uint32_t xs = pb_range(b, 3);
    uint32_t ge = pb_node(b, PN_GROUP_EXPAND, b->t_li, two, 1, 1, xs, PA_AXIS, 0);
    int64_t nv[] = {1, 2};
    uint32_t ns = pb_list(b, 2, nv);
    uint32_t nested = pb_node(b, PN_GROUP_EXPAND, b->t_lli, upto, 1, 1, ns, PA_AXIS, 0);
    uint32_t fl = pb_node(b, PN_FLATTEN, b->t_li, PLAN_NONE, 0, 1, nested, PA_SCALAR, 0);
    uint32_t both =
        pb_node(b, PN_LIST, b->t_lli, PLAN_NONE, 0, 2, ge, PA_SCALAR, 0, fl, PA_SCALAR, 0);
    pb_end(b, g, both);
    b->p->graphs[g].ret = b->t_lli;
    return g;
}

static void test_groups(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = groups_plan(&b);
    fake *f = fake_new(b.p, 0.001);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "[[2,3,4],[1,1,2]]");
    finish(&b, f);
}

static void test_after_and_params(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    fl_plan *p = b.p;
    uint32_t eff = pb_task(&b, "effect", b.t_void, 1, b.t_int);
    uint32_t inc = pb_task(&b, "inc", b.t_int, 1, b.t_int);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_int, 1);
    uint32_t px = pb_node(&b, PN_PARAM, b.t_int, PLAN_NONE, 0, 0);
    uint32_t e = pb_node(&b, PN_CALL, b.t_void, eff, 0, 1, px, PA_SCALAR, 0);
    uint32_t r = pb_node(&b, PN_CALL, b.t_int, inc, 0, 1, px, PA_SCALAR, 0);
    uint32_t a = PLAN_PUSH(p, afters);
    p->afters[a] = e;
    p->nodes[r].first_after = a;
    p->nodes[r].nafter = 1;
    pb_end(&b, g, r);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    fl_val pv = {.i = 41};
    assert_int_equal(run_plan(&b, f, g, 4, 0, &pv, &ro), 0);
    assert_string_equal(ro.json, "42");
    assert_true(log_pos(f, "effect[-1]", 0) < log_pos(f, "inc[-1]", 0));
    finish(&b, f);
}

/* Element-wise edges into a group expansion and into expand_kwargs:
 * g = two.expand(x = fail_odd.expand(range(5))) runs the group for the even
 * elements only; with an all_done reduce the run succeeds. */
static void test_stream_into_group(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc = pb_task(&b, "inc", b.t_int, 1, b.t_int);
    uint32_t fo = pb_task(&b, "fail_odd", b.t_int, 1, b.t_int);
    uint32_t sum = pb_task(&b, "sum_done", b.t_int, 1, b.t_li);
    b.p->tasks[sum].trigger = TRIG_ALL_DONE;
    uint32_t two = pb_graph(&b, "two", PG_GROUP, b.t_int, 1);
    uint32_t px = pb_node(&b, PN_PARAM, b.t_int, PLAN_NONE, 0, 0);
    uint32_t i1 = pb_node(&b, PN_CALL, b.t_int, inc, 0, 1, px, PA_SCALAR, 0);
    uint32_t i2 = pb_node(&b, PN_CALL, b.t_int, inc, 0, 1, i1, PA_SCALAR, 0);
    pb_end(&b, two, i2);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_int, 0);
    uint32_t xs = pb_range(&b, 5);
    uint32_t a = pb_node(&b, PN_EXPAND, b.t_li, fo, 1, 1, xs, PA_AXIS, 0);
    uint32_t ge = pb_node(&b, PN_GROUP_EXPAND, b.t_li, two, 1, 1, a, PA_AXIS, 0);
    uint32_t s = pb_node(&b, PN_CALL, b.t_int, sum, 0, 1, ge, PA_SCALAR, 0);
    pb_end(&b, g, s);
    fake *f = fake_new(b.p, 0.001);
    run_out ro;
    /* even inputs 0, 2, 4 -> 2, 4, 6 */
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "12");
    assert_non_null(strstr(ro.err, "fail_odd[3]: odd input"));
    /* the group's chain for element 0 finished before the last fail_odd started */
    assert_true(log_pos(f, "inc[-1]", 1) < log_pos(f, "fail_odd[4]", 0));
    finish(&b, f);
}

static void test_stream_kwargs(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    fl_plan *p = b.p;
    uint32_t mul = pb_task(&b, "mul", b.t_int, 2, b.t_int, b.t_int);
    plan_field fl[2] = {{plan_intern_str(p, "a"), b.t_int}, {plan_intern_str(p, "b"), b.t_int}};
    uint32_t rt = plan_type_record(p, PLAN_NONE, fl, 2);
    uint32_t lrt = plan_type_list(p, rt);
    /* group row(x) -> {a = x, b = 1}: an expansion producing records */
    uint32_t row = pb_graph(&b, "row", PG_GROUP, rt, 1);
    uint32_t px = pb_node(&b, PN_PARAM, b.t_int, PLAN_NONE, 0, 0);
    uint32_t one = pb_int(&b, 1);
    uint32_t rec = pb_node(&b, PN_RECORD, rt, PLAN_NONE, 0, 2, px, PA_SCALAR, 0, one, PA_SCALAR, 0);
    pb_end(&b, row, rec);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_li, 0);
    uint32_t xs = pb_range(&b, 4);
    uint32_t rows = pb_node(&b, PN_GROUP_EXPAND, lrt, row, 1, 1, xs, PA_AXIS, 0);
    uint32_t m =
        pb_node(&b, PN_EXPAND_KWARGS, b.t_li, mul, 0, 2, rows, PA_FIELD, 0, rows, PA_FIELD, 1);
    pb_end(&b, g, m);
    fake *f = fake_new(b.p, 0);
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    assert_string_equal(ro.json, "[1,11,21,31]");
    finish(&b, f);
}

/* An interrupt (the stop flag) ends the run with 3, inside group scopes too,
 * and frees everything (checked under ASan). */
static void test_interrupt(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc = pb_task(&b, "inc", b.t_int, 1, b.t_int);
    uint32_t two = pb_graph(&b, "two", PG_GROUP, b.t_int, 1);
    uint32_t px = pb_node(&b, PN_PARAM, b.t_int, PLAN_NONE, 0, 0);
    uint32_t i1 = pb_node(&b, PN_CALL, b.t_int, inc, 0, 1, px, PA_SCALAR, 0);
    uint32_t i2 = pb_node(&b, PN_CALL, b.t_int, inc, 0, 1, i1, PA_SCALAR, 0);
    pb_end(&b, two, i2);
    uint32_t g = pb_graph(&b, "main", PG_FLOW, b.t_li, 0);
    uint32_t xs = pb_range(&b, 30);
    uint32_t a = pb_node(&b, PN_EXPAND, b.t_li, inc, 1, 1, xs, PA_AXIS, 0);
    uint32_t ge = pb_node(&b, PN_GROUP_EXPAND, b.t_li, two, 1, 1, a, PA_AXIS, 0);
    pb_end(&b, g, ge);
    fake *f = fake_new(b.p, 0.001);
    f->stop_after = 17;
    run_out ro;
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 3);
    assert_non_null(strstr(ro.err, "interrupted"));
    assert_false(ro.o.has_result);
    assert_true(f->runs < 30);
    finish(&b, f);
}

/* Scheduler overhead: a million instances through the fake executor. */
/* ---- out of memory: fail each allocation of the scheduler in turn ---- */

typedef struct counting {
    long live; /* blocks allocated and not freed */
} counting;

static void *count_alloc(void *ud, void *p, size_t n) {
    counting *c = ud;
    if (n == 0) {
        if (p) c->live--;
        free(p);
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && !p) c->live++;
    return q;
}

/* Run graph g of b with the scheduler's Nth allocation failing, for every N until
 * a run makes fewer: each such run returns 2 with "out of memory" in the sink and
 * gives every block back; the last one returns `code` as usual. */
static void oom_each(pb *b, uint32_t g, int jobs, int code, const char *json) {
    fl_ctx *saved = b->p->ctx;
    fl_ctx c;
    counting cnt = {0};
    fl_ctx_init(&c);
    c.alloc = count_alloc;
    c.alloc_ud = &cnt;
    b->p->ctx = &c;
    int failures = 0;
    for (uint64_t n = 1; n < 100000; n++) {
        c.fail_at = n;
        c.nalloc = 0;
        fl_error_clear(&c);
        fake *f = fake_new(b->p, 0.001);
        run_out ro;
        int rc = run_plan(b, f, g, jobs, 0, NULL, &ro);
        fake_destroy(&f->ex);
        assert_int_equal(cnt.live, 0);
        if (c.nalloc < n) { /* nothing failed: the run as without the hook */
            assert_int_equal(rc, code);
            if (json) assert_string_equal(ro.json, json);
            break;
        }
        if (rc != 2) fprintf(stderr, "allocation %llu failed, run returned %d\n",
                             (unsigned long long)n, rc);
        assert_int_equal(rc, 2);
        assert_int_equal(c.errcode, FL_ENOMEM);
        assert_false(ro.o.has_result);
        failures++;
    }
    print_message("# %d allocations failed in turn, each run ended cleanly\n", failures);
    assert_true(failures > 3);
    b->p->ctx = saved;
}

static void test_out_of_memory(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t g = chain_plan(&b, 300, NULL); /* more than one chunk of records */
    oom_each(&b, g, 2, 0, "45750");
    plan_free(b.p);

    pb_init(&b);
    g = fail_plan(&b, 0); /* failures recorded, the summary */
    oom_each(&b, g, 2, 1, NULL);
    plan_free(b.p);

    pb_init(&b);
    g = groups_plan(&b); /* scopes of group calls and group elements */
    oom_each(&b, g, 2, 0, "[[2,3,4],[1,1,2]]");
    plan_free(b.p);
}

static void test_million(void **state) {
    (void)state;
    pb b;
    pb_init(&b);
    uint32_t inc;
    uint32_t g = map_plan(&b, "inc", 1000000, "sum", &inc);
    b.p->tasks[inc].max_map = 2000000;
    fake *f = fake_new(b.p, 0);
    run_out ro;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(run_plan(&b, f, g, 2, 0, NULL, &ro), 0);
    fprintf(stderr, "# 1M instances through the fake executor: %.3f s\n", seconds_since(&t0));
    assert_string_equal(ro.json, "500000500000");
    finish(&b, f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_then_reduce),
        cmocka_unit_test(test_cartesian_order),
        cmocka_unit_test(test_depth_first),
        cmocka_unit_test(test_failure_propagates),
        cmocka_unit_test(test_all_done_trigger),
        cmocka_unit_test(test_max_map),
        cmocka_unit_test(test_empty_expansion),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_zip_kwargs),
        cmocka_unit_test(test_elem),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_after_and_params),
        cmocka_unit_test(test_stream_into_group),
        cmocka_unit_test(test_stream_kwargs),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
