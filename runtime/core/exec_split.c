/*
 * exec_split.c — one executor made of two: jobs go to one or the other by task.
 *
 * DESIGN
 *   Under `--executor process`, the jobs of tasks with `image:` run through
 *   podman, from workers that must keep what podman needs (exec_process.c,
 *   rt_executor_process_containers), and every other job runs in the ordinary
 *   pool. The scheduler sees one executor: rt_executor_split routes each job by
 *   its task (to_b[task] != 0: side b) and merges the two sides' results.
 *
 *   submit is all or nothing (exec.h): the jobs are first copied into a pending
 *   list per side (the only allocation; failing it takes none of them), then
 *   each side's list is handed over. A side that refuses (out of memory) keeps
 *   its list, and every later submit or wait tries again, so no job is lost
 *   and the caller's view stays "all taken".
 *
 *   wait: with jobs outstanding on one side only, that side's wait is the
 *   whole wait. With both busy, side b (containers: slow jobs, 0.1 s and
 *   more) is polled without blocking and side a is waited on in slices of
 *   SPLIT_SLICE_MS, so a result of either side is seen within that slice.
 *
 *   When side b is the pool of sh tasks' containers (rt_executor_with_containers),
 *   destroy also removes the containers its killed podman clients left running
 *   (podman.c, rt_podman_remove_tagged).
 *
 *   Ownership: the split owns both executors (destroyed with it) and to_b (a
 *   copy). Results pass through unchanged: they belong to the caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec_process.h"
#include "exec_split.h"
#include "podman.h"
#include "refuse.h"

#define SPLIT_SLICE_MS 2

typedef struct split_side {
    rt_executor *ex;
    rt_job *pend;      /* jobs taken but not yet handed to ex */
    int npend, cap;
    int64_t out;       /* handed to ex, result not yet returned */
} split_side;

typedef struct split_exec {
    rt_executor base;
    const fl_plan *plan;
    unsigned char *to_b; /* per task: 1 its jobs go to side b */
    uint32_t ntasks;
    split_side s[2];
    char tag[64]; /* side b runs sh tasks' containers labelled with it ("": none) */
} split_exec;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hand a side's pending jobs to its executor (when it takes them). */
static void flush(split_side *s) {
    if (!s->npend || s->ex->ops->submit(s->ex, s->pend, s->npend)) return;
    s->out += s->npend;
    s->npend = 0;
}

static int split_submit(rt_executor *e, const rt_job *jobs, int n) {
    split_exec *x = (split_exec *)e;
    int want[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        if (jobs[i].task >= x->ntasks) return -1;
        want[x->to_b[jobs[i].task] ? 1 : 0]++;
    }
    for (int k = 0; k < 2; k++) { /* room first: all or nothing */
        split_side *s = &x->s[k];
        if (s->npend + want[k] <= s->cap) continue;
        int cap = s->cap ? s->cap : 64;
        while (cap < s->npend + want[k])
            cap *= 2;
        rt_job *q = fl_realloc(x->plan->ctx, s->pend, (size_t)cap * sizeof *q);
        if (!q) return -1;
        s->pend = q;
        s->cap = cap;
    }
    for (int i = 0; i < n; i++) {
        split_side *s = &x->s[x->to_b[jobs[i].task] ? 1 : 0];
        s->pend[s->npend++] = jobs[i];
    }
    flush(&x->s[0]);
    flush(&x->s[1]);
    return 0;
}

static int side_wait(split_side *s, rt_result *out, int max, int timeout_ms) {
    int got = s->ex->ops->wait(s->ex, out, max, timeout_ms);
    if (got > 0) s->out -= got;
    return got;
}

static int split_wait(rt_executor *e, rt_result *out, int max, int timeout_ms) {
    split_exec *x = (split_exec *)e;
    split_side *a = &x->s[0], *b = &x->s[1];
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        flush(a);
        flush(b);
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
        int got;
        if (!b->out && !b->npend) return side_wait(a, out, max, left);
        if (!a->out && !a->npend) return side_wait(b, out, max, left);
        if ((got = side_wait(b, out, max, 0)) > 0) return got;
        int slice = left < 0 || left > SPLIT_SLICE_MS ? SPLIT_SLICE_MS : left;
        if ((got = side_wait(a, out, max, slice)) > 0) return got;
        if (deadline >= 0 && now_ms() >= deadline) return 0;
    }
}

static void split_destroy(rt_executor *e) {
    split_exec *x = (split_exec *)e;
    for (int k = 0; k < 2; k++) {
        x->s[k].ex->ops->destroy(x->s[k].ex);
        fl_free(x->plan->ctx, x->s[k].pend);
    }
    if (x->tag[0]) rt_podman_remove_tagged(x->tag); /* what the killed clients left */
    fl_free(x->plan->ctx, x->to_b);
    fl_free(x->plan->ctx, x);
}

static const rt_executor_ops split_ops = {"split", split_submit, split_wait, split_destroy};

rt_executor *rt_executor_split(const fl_plan *p, rt_executor *a, rt_executor *b,
                               const unsigned char *to_b) {
    split_exec *x = fl_calloc(p->ctx, 1, sizeof *x);
    unsigned char *copy = fl_calloc(p->ctx, p->n_tasks + 1, 1);
    if (!x || !copy) {
        fl_free(p->ctx, x);
        fl_free(p->ctx, copy);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(copy, to_b, p->n_tasks);
    x->base.ops = &split_ops;
    x->base.queued = a->queued > b->queued ? a->queued : b->queued;
    x->plan = p;
    x->to_b = copy;
    x->ntasks = p->n_tasks;
    x->s[0].ex = a;
    x->s[1].ex = b;
    return &x->base;
}

rt_executor *rt_executor_with_containers(rt_runtime *rt, uint32_t graph, rt_executor *ex,
                                         int nworkers, const struct fsec_set *sec) {
    const fl_plan *p = rt_plan(rt);
    unsigned char *units = fl_calloc(p->ctx, p->n_tasks + 1, 1);
    if (!units || rt_reached_units(p, graph, units)) {
        fl_free(p->ctx, units);
        ex->ops->destroy(ex);
        errno = ENOMEM;
        return NULL;
    }
    rt_executor *r = rt_executor_with_containers_for(rt, units, ex, nworkers, sec);
    fl_free(p->ctx, units);
    return r;
}

rt_executor *rt_executor_with_containers_for(rt_runtime *rt, const unsigned char *tasks,
                                             rt_executor *ex, int nworkers,
                                             const struct fsec_set *sec) {
    const fl_plan *p = rt_plan(rt);
    unsigned char *units = fl_calloc(p->ctx, p->n_tasks + 1, 1);
    if (!units) goto nomem;
    memcpy(units, tasks, p->n_tasks);
    int any = 0;
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        units[t] = units[t] && p->tasks[t].image != PLAN_NONE && p->tasks[t].kind == TK_SH;
        any |= units[t];
    }
    if (!any) {
        fl_free(p->ctx, units);
        return ex;
    }
    char tag[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(tag, sizeof tag, "%ld-%lld", (long)getpid(), (long long)ts.tv_sec);
    setenv(RT_PODMAN_TAG_ENV, tag, 1); /* the pool's workers are forked with it */
    rt_executor *pods = rt_executor_process_containers(rt, nworkers, sec);
    if (!pods) {
        int e = errno;
        fl_free(p->ctx, units);
        ex->ops->destroy(ex);
        errno = e;
        return NULL;
    }
    rt_executor *both = rt_executor_split(p, ex, pods, units);
    fl_free(p->ctx, units);
    if (both) {
        snprintf(((split_exec *)both)->tag, sizeof ((split_exec *)both)->tag, "%s", tag);
        return both;
    }
    pods->ops->destroy(pods);
nomem:
    fl_free(p->ctx, units);
    ex->ops->destroy(ex);
    errno = ENOMEM;
    return NULL;
}
