/*
 * exec_cache.c — the cache executor: answers from the recorder what it already
 * knows, and passes the rest to the executor it wraps. Layer: core (an executor;
 * it reaches the history only through the recorder interface, recorder.h).
 *
 * DESIGN
 *   A wrapper around any executor (inline, process, later distributed ones), with
 *   the executor contract of exec.h: every job submitted comes back as exactly one
 *   result of wait. On submit, each first attempt (job->attempt == 0) is described
 *   by its owner (hooks.describe: the instance's node, index path and name, which
 *   only the scheduler knows) and looked up in the recorder:
 *     - a hit (a cached result, or on resume one the run already has) is answered
 *       by the wrapper itself: a result with ok = 1 and the recorded value, kept
 *       in a queue until the next wait;
 *     - a refusal (lookup -1: a stored input is damaged) is answered the same way,
 *       as a failed result with the recorder's message;
 *     - a miss goes on to the inner executor, in one submit per batch.
 *   The owner hears every answer (hooks.looked_up: the key the recorder computed,
 *   and whether it served the job); on a miss it may still prepare the job (its
 *   folders: a served instance never gets one) or refuse it with a message, which
 *   is then answered as a failed result too. Retries (attempt > 0) go straight to
 *   the inner executor: a failed instance is not looked up again. So do the jobs
 *   of a task the recorder said it can do nothing for (hooks.look, from its
 *   lookup_needed: --no-cache, or `cache: false`, with nothing to resume); a
 *   batch made only of such jobs is handed to the inner executor as it is, with
 *   no copy: the hot path of a run with history but no cache costs one scan.
 *
 *   wait returns queued answers first, without blocking, then whatever the inner
 *   executor has finished by then (timeout 0); only with no answer queued does it
 *   block in the inner wait. The scheduler counts no result specially: running
 *   jobs are the jobs submitted here, served or not.
 *
 *   A run with no recorder has no wrapper: the scheduler talks to its executor
 *   directly and pays nothing for any of this.
 *
 *   Out of memory: submit first makes room for an answer to every job, so it
 *   takes a batch whole or refuses it whole (exec.h); misses the inner executor
 *   cannot take are answered here as failed with no error text (out of memory).
 */
#define _GNU_SOURCE
#include "exec_cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SUBMIT_MAX 1024 /* misses handed to the inner executor at once */
#define CACHE_NAME_MAX 1024   /* index path and name template buffers */

/* An answer waiting in the queue: only what a result made here can hold (its
 * other fields are zero), 40 bytes rather than a whole rt_result's 96 — a warm
 * run queues one per instance, and a no-op re-run's thousands are fresh memory. */
typedef struct answer {
    uint64_t id;   /* the job's id */
    fl_val value;  /* ok: the recorded value (a new reference) */
    char *error;   /* !ok: why (exec.h: NULL means out of memory) */
    double t;      /* when it was answered: the result's start and end */
    uint32_t task; /* its task (to release the value if never handed out) */
    int ok;
} answer;

typedef struct cache_ex {
    rt_executor base;         /* ops (must be first) */
    rt_executor *inner;       /* where misses run (not owned) */
    const fl_plan *p;       /* the plan */
    const recorder *rec;      /* asked for every first attempt */
    rt_cache_hooks hooks;     /* the owner's side */
    answer *q;                /* answers not yet handed out: a ring */
    size_t qhead, qn, qcap;   /* first, count, capacity (a power of two) */
    rt_job *fwd;              /* misses of one submit, passed on together */
    int64_t inner_out;        /* jobs with the inner executor */
    int pid;                  /* flowrun's pid: served results ran "here" */
} cache_ex;

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* rt_result times are wall-clock */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Room in the queue for `more` answers: 0, or -1 when it cannot grow (out of
 * memory; the queue is as it was). */
static int q_reserve(cache_ex *c, size_t more) {
    if (c->qn + more <= c->qcap) return 0;
    size_t cap = c->qcap ? c->qcap : 256;
    while (cap < c->qn + more)
        cap *= 2;
    answer *n = fl_reallocarray(c->p->ctx, NULL, cap, sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < c->qn; i++) n[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
    fl_free(c->p->ctx, c->q);
    c->q = n;
    c->qcap = cap;
    c->qhead = 0;
    return 0;
}

/* Queue an answer (cache_submit reserved the room). */
static void q_push(cache_ex *c, uint64_t id, int ok, fl_val value, char *error, double t,
                   uint32_t task) {
    answer *a = &c->q[(c->qhead + c->qn++) & (c->qcap - 1)];
    *a = (answer){.id = id, .value = value, .error = error, .t = t, .task = task, .ok = ok};
}

/* The result an answer stands for. */
static rt_result answer_result(const cache_ex *c, const answer *a) {
    return (rt_result){.id = a->id, .ok = a->ok, .value = a->value, .error = a->error,
                       .start = a->t, .end = a->t, .worker_pid = c->pid};
}

/* Hand the misses to the inner executor. When it cannot take them (out of memory:
 * it takes all or none), each is answered here as failed with no error text, which
 * exec.h reads as out of memory, so every job still comes back once. */
static void pass_on(cache_ex *c, int *nfwd) {
    if (!*nfwd) return;
    if (c->inner->ops->submit(c->inner, c->fwd, *nfwd) == 0) {
        c->inner_out += *nfwd;
    } else {
        double t = wall_now();
        for (int i = 0; i < *nfwd; i++)
            q_push(c, c->fwd[i].id, 0, (fl_val){0}, NULL, t, c->fwd[i].task);
    }
    *nfwd = 0;
}

/* Is job looked up? Not a retry (it ran and failed: the recorder has no answer),
 * nor a job of a task the recorder can do nothing for. */
static int looks_up(const cache_ex *c, const rt_job *j) {
    return j->attempt == 0 && (!c->hooks.look || c->hooks.look[j->task]);
}

/* All or nothing: -1 (out of memory) takes none of the jobs; after the room for an
 * answer to each is made, every job comes back from wait exactly once. */
static int cache_submit(rt_executor *ex, const rt_job *jobs, int n) {
    cache_ex *c = (cache_ex *)ex;
    int nfwd = 0, first = 0;
    if (n > 0 && q_reserve(c, (size_t)n)) return -1;
    while (first < n && !looks_up(c, &jobs[first])) first++;
    if (first == n) { /* nothing to look up: the batch goes on as it is */
        if (n > 0 && c->inner->ops->submit(c->inner, jobs, n) == 0) {
            c->inner_out += n;
            return 0;
        }
        /* the inner executor took none: pass_on below tries once more, then answers
         * each as failed */
    }
    for (int i = 0; i < n; i++) {
        const rt_job *j = &jobs[i];
        if (nfwd == CACHE_SUBMIT_MAX) pass_on(c, &nfwd);
        if (!looks_up(c, j)) {
            c->fwd[nfwd++] = *j;
            continue;
        }
        char idx[CACHE_NAME_MAX], tmpl[CACHE_NAME_MAX], err[600];
        err[0] = 0; /* (one byte: this runs per instance) */
        rec_inst ii;
        memset(&ii, 0, sizeof ii);
        c->hooks.describe(c->hooks.ud, j, &ii, idx, tmpl, sizeof idx);
        fl_val v = {0};
        int hit = c->rec->ops->lookup(c->rec->self, &ii, j->args, &v);
        rt_job *fj = &c->fwd[nfwd];
        *fj = *j;
        int refused = c->hooks.looked_up(c->hooks.ud, fj, &ii, hit, err, sizeof err);
        if (hit == 0 && !refused) {
            nfwd++;
            continue;
        }
        char *error = NULL;
        if (hit < 0) {
            error = ii.error;
        } else if (hit == 0) {
            error = fl_strdup(c->p->ctx, err[0] ? err : "refused before running"); /* exec.h */
        }
        q_push(c, j->id, hit > 0, hit > 0 ? v : (fl_val){0}, error, wall_now(), j->task);
    }
    pass_on(c, &nfwd);
    return 0;
}

static int cache_wait(rt_executor *ex, rt_result *out, int max, int timeout_ms) {
    cache_ex *c = (cache_ex *)ex;
    int n = 0;
    while (n < max && c->qn) {
        out[n++] = answer_result(c, &c->q[c->qhead]);
        c->qhead = (c->qhead + 1) & (c->qcap - 1);
        c->qn--;
    }
    if (n < max && c->inner_out > 0) {
        int got = c->inner->ops->wait(c->inner, out + n, max - n, n ? 0 : timeout_ms);
        c->base.capacity = c->inner->capacity; /* the remote executor's changes (exec.h) */
        if (got > 0) {
            c->inner_out -= got;
            n += got;
        }
    }
    return n;
}

static void cache_destroy(rt_executor *ex) {
    cache_ex *c = (cache_ex *)ex;
    for (; c->qn; c->qn--, c->qhead = (c->qhead + 1) & (c->qcap - 1)) {
        rt_result r = answer_result(c, &c->q[c->qhead]);
        rt_result_clear(c->p, c->q[c->qhead].task, &r);
    }
    fl_free(c->p->ctx, c->q);
    fl_free(c->p->ctx, c->fwd);
    fl_free(c->p->ctx, c);
}

static const rt_executor_ops cache_ops = {
    .name = "cache",
    .submit = cache_submit,
    .wait = cache_wait,
    .destroy = cache_destroy,
};

rt_executor *rt_executor_cache(rt_executor *inner, const fl_plan *p, const recorder *rec,
                               const rt_cache_hooks *hooks) {
    cache_ex *c = fl_calloc(p->ctx, 1, sizeof *c);
    if (!c) return NULL;
    c->fwd = fl_reallocarray(p->ctx, NULL, CACHE_SUBMIT_MAX, sizeof *c->fwd);
    if (!c->fwd) {
        fl_free(p->ctx, c);
        return NULL;
    }
    c->base.ops = &cache_ops;
    c->base.queued = inner->queued;
    c->base.capacity = inner->capacity;
    c->inner = inner;
    c->p = p;
    c->rec = rec;
    c->hooks = *hooks;
    c->pid = (int)getpid();
    return &c->base;
}
