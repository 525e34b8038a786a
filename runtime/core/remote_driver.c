/*
 * remote_driver.c — the generic remote executor (remote.h, rm_executor): an
 * rt_executor that runs the scheduler's jobs as elements of batches an engine
 * (Slurm, Kubernetes, podman, local) starts, each element a `flowrun worker`.
 *
 * DESIGN
 *   submit() only queues: each job is copied (its arguments borrowed, as exec.h
 *   allows), its arguments fv_encode'd once and its key computed (rm_job_key).
 *   wait() is the loop: pump, read, poll, expire, in that order, until a result
 *   is there or the timeout passes.
 *
 *   pump: while jobs are queued and fewer than slots + spare elements are in
 *   flight, take the queue's first jobs (the scheduler's order: depth first) into
 *   one batch of as many elements as there are free places, each of `size` jobs
 *   (element 0 the first ones), write STATE/remote/<run>/b<N>.batch (remote.c:
 *   atomic), ask the engine to start it and record it (rm_options.record_batch:
 *   state.db, through the caller). Not submitting far ahead is what keeps the
 *   order depth first: a job made ready by a result goes into the next batch,
 *   not behind thousands queued at the engine.
 *
 *   Element size. An element pays the engine's start cost c once (start_cost:
 *   Slurm ~1 s per slot) and then runs its jobs back to back; with jobs of mean
 *   time m, an element of s jobs spends s*m/(s*m + c) of its slot's time in
 *   tasks, so s >= 20*c/m gives >= 95 %. Before any task time is known, small
 *   elements (RM_FIRST_SIZE), so the first results come back soon and measure m.
 *   Never more than ceil(queued / places in flight): every free slot gets work, and
 *   one freed early does not take a long run of the queue that makes the tail. The
 *   executor's capacity (exec.h), the scheduler's in-flight limit, is places x
 *   size: one wave of elements. The rest stays with the scheduler, which hands
 *   over the deepest ready work first as results free room; with twice that, a
 *   whole first stage was handed over before the results of its first elements
 *   came back, and it all ran before the second (62-slurm, depth-first: the first
 *   chain of a 3-stage, 480-wide W2 on 24 slots ended after the last `a` started
 *   in one run of two; with one wave it ends at 5-7 s, the last `a` starting at
 *   7-9 s, the whole in 21 s where the first took 19 s).
 *
 *   read: for every element in flight, open r<N>/<E>.<S> for its next chunk
 *   numbers until one is missing (a chunk is whole once renamed: remote.c), then
 *   r<N>/<E>.end. Each result is checked (job index, key, not answered before),
 *   its value decoded under the task's return type, and queued for wait. Reading
 *   happens at most every RM_READ_MS.
 *
 *   poll: one engine->poll for the whole run at most every poll_ms; an element
 *   the poll reports ENDED or GONE, or does not report at all, gets a deadline
 *   grace_ms later (files written on another host may take that long to show on
 *   a shared filesystem); when it passes, every job of the element without a
 *   result fails with one clear line ("element 3 of slurm job 1234 ended without
 *   a result (node failure?)"), and the scheduler's `retries` retry it. An end
 *   marker ends the element at once: its jobs without a result fail then. After
 *   RM_POLL_FAILS failed polls in a row every job out fails with the engine's
 *   error.
 *
 *   Resume (rm_options.resume): the run's recorded batches are read back
 *   (list_batches; their batch files give every job's key), handed to the engine
 *   (adopt) and polled once, and their result files read. A job the scheduler
 *   submits whose key is one of them is answered from its result file if there is
 *   one; attached to its element if that element is still pending or running (no
 *   new start); else queued anew. New batches are numbered after the old ones.
 *
 *   Guests (rm_options.linger_ms > 0: Slurm). A worker done with its element
 *   lingers; before pump starts new elements, offer_guests hands the queue's next
 *   jobs to a lingering worker (within half its linger), or one offer ahead to a
 *   busy one (delem.ahead: it goes on at once when done), as a guest batch: one
 *   element, the host's engine id, b<M>.host naming the host, then
 *   r<N>/<E>.next<K> naming it. The capacity doubles (a guest running and one
 *   ahead per slot). One rename decides an offer: the worker's to
 *   .took<K> (check_guests: claimed, an element like any other), or the driver's to
 *   .back<K> once the host said .bye or ended (withdraw: the jobs go back to the
 *   queue's front). The engine's reports for the host's element apply to its guest
 *   (on_report). A resumed driver follows old guests that were taken and withdraws
 *   the offers nobody took; it offers nothing to old elements.
 *
 *   destroy() cancels everything through the engine. The run's files stay (a
 *   later resume reads them) unless every job was answered, when the batch and
 *   result files go (the logs stay). A guest's files go earlier, RM_CLEAN_S after
 *   its last answer (clean_guests), so the end does not wait for thousands of
 *   unlinks; a resume skips a recorded batch whose file is gone.
 *
 *   Ownership: job slots, encoded arguments and batches are the driver's
 *   (malloc); results queued for wait are rt_results whose error and log come
 *   from the plan's context, as exec.h says; they belong to the caller once
 *   returned.
 */
#define _GNU_SOURCE
#include "digest.h"
#include "fsdir.h"
#include "htab.h"
#include "remote.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RM_READ_MS 50      /* result files are looked for at most this often */
#define RM_FIRST_SIZE 2    /* jobs per element before any task time is known */
#define RM_TARGET_RATIO 20 /* element work >= this x the start cost: >= 95 % in tasks */
#define RM_MAX_SIZE 100000 /* most jobs in one element */
#define RM_GUEST_COST 0.1  /* s a lingering worker waits for its next guest batch */
#define RM_CLEAN_S 1.0     /* a guest batch's files go this long after its last answer */
#define RM_NONE UINT32_MAX

typedef struct djob {
    rt_job job; /* the scheduler's (args borrowed until the result) */
    rm_key key;
    uint8_t *args; /* encoded */
    uint32_t args_len;
    uint32_t batch;     /* index into d->b, RM_NONE while queued */
    uint32_t next_free; /* free list */
    int used;
} djob;

typedef struct delem {
    enum rm_state st; /* last poll */
    int done;         /* every job answered or failed: no longer in flight */
    int end_seen;
    uint32_t next_chunk;
    uint32_t seen_gen; /* poll generation that reported it */
    double deadline;   /* ENDED/GONE without its results: fail them then (0: none) */
    /* an element the engine started (not a guest), when workers linger ("Guests"): */
    double idle_since; /* its worker finished all it was given then (0: busy, or gone) */
    uint32_t guest;    /* the guest batch offered to it or running in it (index into d->b),
                          RM_NONE */
    uint32_t ahead;    /* the guest batch offered while it is busy, taken next, RM_NONE */
    uint32_t offers;   /* offers made to it so far (the next is .next<offers + 1>) */
} delem;

typedef struct dbatch {
    uint32_t n;   /* N */
    char id[128]; /* the engine's id */
    uint32_t nelem, njobs;
    uint32_t *first;   /* nelem + 1 */
    uint32_t *slot;    /* njobs: driver job answering to it, or RM_NONE */
    rm_key *keys;      /* njobs (old batches: for matching) */
    uint8_t *answered; /* njobs */
    delem *el;
    int old;          /* started by an earlier driver (resume) */
    rm_chunk *chunks; /* old batches: result chunks read at attach */
    uint32_t nchunks;
    const rm_res **res; /* old batches: njobs, the result read for each, or NULL */
    /* a guest: one element run by the lingering worker of element host_el of the
     * engine's batch host_n (B->id is that batch's engine id) */
    int guest;
    uint32_t host_b;  /* the host batch (index into d->b; RM_NONE for an old guest) */
    uint32_t host_n, host_el;
    uint32_t offer;   /* its offer's number: r<host_n>/<host_el>.next<offer> */
    int claimed;      /* the worker took it (.took<offer> was there) */
    int64_t memory;   /* the memory its elements were started with (rm_start.memory; a
                         guest: its host's) */
    double over_at;   /* a guest: when it was first seen over (clean_guests), 0 */
    int cleaned;      /* a guest: its files are gone */
} dbatch;

typedef struct rm_exec {
    rt_executor base;
    const fl_plan *p;
    rm_engine *e;
    rm_options o;
    char *state_dir, *plan_path, *flowrun, *env, *config; /* copies */
    char dir[PATH_MAX];                                   /* STATE/remote/<run> */
    char logdir[PATH_MAX];
    uint8_t plan_hash[32];
    djob *jobs;
    uint32_t njobs_cap, free_head;
    uint32_t *queue; /* ring of queued driver jobs */
    uint32_t qcap, qhead, qn;
    dbatch *b;
    uint32_t nb, capb;
    uint32_t next_batch;  /* N of the next batch */
    uint32_t inflight;    /* elements not done */
    uint64_t outstanding; /* jobs submitted and not returned */
    rt_result *ready;     /* results for wait */
    uint32_t *ready_task; /* the task of each (to free one nobody took) */
    uint32_t rcap, rhead, rn;
    double mean; /* mean task time, s; < 0 unknown */
    double last_read, last_poll;
    uint32_t gen; /* poll generation */
    int poll_fails;
    uint32_t size; /* the element size chosen */
    fl_htab keys;  /* old batches' keys -> (batch << 32 | index) */
    unsigned char *plain; /* per task: may run as a guest (no secrets, no image) */
    uint32_t n_started, n_guests, n_withdrawn; /* counts, for FLOW_DEBUG */
    double last_clean; /* clean_guests */
} rm_exec;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t key_hash(rm_key k) {
    return k.hi ^ (k.lo * 0x9E3779B97F4A7C15ull);
}

/* ---- the result queue ---- */

/* Make room for `need` results in all. -1: out of memory. */
static int ready_room(rm_exec *d, uint64_t need) {
    if (need <= d->rcap) return 0;
    uint32_t cap = d->rcap ? d->rcap : 256;
    while (cap < need)
        cap *= 2;
    rt_result *n = malloc(cap * sizeof *n);
    uint32_t *t = malloc(cap * sizeof *t);
    if (!n || !t) {
        free(n);
        free(t);
        return -1;
    }
    for (uint32_t i = 0; i < d->rn; i++) {
        n[i] = d->ready[(d->rhead + i) % d->rcap];
        t[i] = d->ready_task[(d->rhead + i) % d->rcap];
    }
    free(d->ready);
    free(d->ready_task);
    d->ready = n;
    d->ready_task = t;
    d->rcap = cap;
    d->rhead = 0;
    return 0;
}

/* Queue a result for wait; the room was made when its job was submitted
 * (grow_jobs), so this cannot fail. */
static void ready_push(rm_exec *d, const rt_result *r, uint32_t task) {
    uint32_t at = (d->rhead + d->rn) % d->rcap;
    d->ready[at] = *r;
    d->ready_task[at] = task;
    d->rn++;
}

static void job_release(rm_exec *d, uint32_t j) {
    free(d->jobs[j].args);
    d->jobs[j].args = NULL;
    d->jobs[j].used = 0;
    d->jobs[j].next_free = d->free_head;
    d->free_head = j;
}

/* Answer driver job j: ok with the encoded value, or the error; queued for wait. */
static void answer(rm_exec *d, uint32_t j, const rm_res *r, const char *error) {
    djob *J = &d->jobs[j];
    const fl_plan *p = d->p;
    rt_result res = {.id = J->job.id, .worker_pid = 0};
    const plan_task *T = &p->tasks[J->job.task];
    if (r) {
        res.start = r->start;
        res.end = r->end;
        res.peak_rss_kb = r->peak_rss_kb;
        res.term_signal = r->term_signal;
        res.worker_pid = r->worker_pid;
        if (r->log) res.log = fl_strdup(p->ctx, r->log);
        if (r->ok) {
            res.ok = 1;
            if (T->ret < p->n_types && p->types[T->ret].kind != PT_VOID) {
                size_t used = 0;
                if (fv_decode(p, T->ret, r->value, r->value_len, &used, &res.value) != 0 ||
                    used != r->value_len) {
                    res.ok = 0;
                    res.value.i = 0;
                    error = "its result file holds a value that does not fit the task's type";
                }
            }
        } else
            error = r->error ? r->error : "failed (no message)";
        if (r->end > r->start && r->ok) {
            double t = r->end - r->start;
            d->mean = d->mean < 0 ? t : 0.9 * d->mean + 0.1 * t;
        }
    } else {
        res.start = res.end = fl_now_s(p->ctx);
    }
    if (!res.ok)
        res.error = fl_strdup(p->ctx, error ? error : "failed"); /* NULL: out of
                                                           memory, as exec.h says */
    ready_push(d, &res, J->job.task);
    job_release(d, j);
}

/* ---- element sizing ---- */

static uint32_t target_size(rm_exec *d) {
    if (d->o.one_per_instance) return 1;
    if (d->o.element_jobs > 0) return (uint32_t)d->o.element_jobs;
    if (d->mean < 0) return RM_FIRST_SIZE;
    double c = d->e->ops->start_cost ? d->e->ops->start_cost(d->e) : -1;
    if (c < 0) c = 1.0; /* unknown: a batch scheduler's second */
    /* workers that linger take guests: more work costs an offer, not a start */
    if (d->o.linger_ms > 0 && c > RM_GUEST_COST) c = RM_GUEST_COST;
    double m = d->mean > 1e-5 ? d->mean : 1e-5;
    double s = ceil(RM_TARGET_RATIO * c / m);
    if (s < 1) s = 1;
    if (s > RM_MAX_SIZE) s = RM_MAX_SIZE;
    return (uint32_t)s;
}

static uint32_t max_inflight(rm_exec *d) {
    uint32_t slots = d->e->slots ? d->e->slots : 1;
    /* workers that linger take the next work themselves: a spare element would wait
     * for a slot, holding its jobs, until the others leave at the end */
    if (d->o.linger_ms > 0) return slots;
    return slots + 1 + slots / 8; /* one element per slot, and a spare */
}

static void update_capacity(rm_exec *d) {
    d->size = target_size(d);
    uint64_t cap = (uint64_t)max_inflight(d) * d->size; /* one wave: an element a place */
    if (d->o.linger_ms > 0) cap *= 2; /* and a guest offered ahead to each */
    if (d->e->ops->max_jobs > 0 && d->o.one_per_instance && cap > (uint64_t)d->e->ops->max_jobs)
        cap = (uint64_t)d->e->ops->max_jobs;
    if (cap > INT32_MAX / 2) cap = INT32_MAX / 2;
    if (cap < 2) cap = 2;
    d->base.capacity = (int)cap;
}

/* ---- batches ---- */

static dbatch *batch_new(rm_exec *d, uint32_t nelem, uint32_t njobs) {
    if (d->nb == d->capb) {
        uint32_t cap = d->capb ? 2 * d->capb : 16;
        dbatch *n = realloc(d->b, cap * sizeof *n);
        if (!n) return NULL;
        d->b = n;
        d->capb = cap;
    }
    dbatch *B = &d->b[d->nb];
    memset(B, 0, sizeof *B);
    B->nelem = nelem;
    B->njobs = njobs;
    B->first = calloc(nelem + 1, sizeof *B->first);
    B->slot = malloc((njobs ? njobs : 1) * sizeof *B->slot);
    B->keys = malloc((njobs ? njobs : 1) * sizeof *B->keys);
    B->answered = calloc(njobs ? njobs : 1, 1);
    B->el = calloc(nelem ? nelem : 1, sizeof *B->el);
    if (!B->first || !B->slot || !B->keys || !B->answered || !B->el) {
        free(B->first);
        free(B->slot);
        free(B->keys);
        free(B->answered);
        free(B->el);
        return NULL;
    }
    for (uint32_t i = 0; i < njobs; i++)
        B->slot[i] = RM_NONE;
    for (uint32_t e = 0; e < nelem; e++)
        B->el[e].guest = B->el[e].ahead = RM_NONE;
    d->nb++;
    return B;
}

static void batch_free(dbatch *B) {
    free(B->first);
    free(B->slot);
    free(B->keys);
    free(B->answered);
    free(B->el);
    for (uint32_t i = 0; i < B->nchunks; i++)
        rm_chunk_free(&B->chunks[i]);
    free(B->chunks);
    free(B->res);
}

/* The engine's words for an element, for messages: "element 3 of slurm job 1234". */
static void elem_name(rm_exec *d, const dbatch *B, uint32_t el, char *buf, size_t n) {
    if (B->guest)
        snprintf(buf, n, "element %u of %s job %s (batch %u, taken after batch %u)", B->host_el,
                 d->e->ops->name, B->id, B->n, B->host_n);
    else
        snprintf(buf, n, "element %u of %s job %s", el, d->e->ops->name, B->id);
}

/* Element el of B is over: fail its jobs without a result with why. */
static void elem_finish(rm_exec *d, dbatch *B, uint32_t el, const char *why) {
    delem *E = &B->el[el];
    if (E->done) return;
    for (uint32_t i = B->first[el]; i < B->first[el + 1]; i++) {
        if (B->answered[i]) continue;
        B->answered[i] = 1;
        if (B->slot[i] != RM_NONE) {
            d->outstanding--;
            answer(d, B->slot[i], NULL, why);
            B->slot[i] = RM_NONE;
        }
    }
    E->done = 1;
    d->inflight--;
}

static int elem_complete(const dbatch *B, uint32_t el) {
    for (uint32_t i = B->first[el]; i < B->first[el + 1]; i++)
        if (!B->answered[i]) return 0;
    return 1;
}

/* Every job of batch B that is still a driver job fails with why (a start that
 * failed). */
static void batch_fail(rm_exec *d, dbatch *B, const char *why) {
    for (uint32_t el = 0; el < B->nelem; el++)
        elem_finish(d, B, el, why);
}

static int write_batch(rm_exec *d, dbatch *B, char *path, size_t pathcap, char *err,
                       size_t errlen) {
    rm_batch fb = {
        .run = d->o.run, .batch = B->n, .nelem = B->nelem, .njobs = B->njobs, .first = B->first};
    memcpy(fb.plan_hash, d->plan_hash, 32);
    fb.jobs = calloc(B->njobs ? B->njobs : 1, sizeof *fb.jobs);
    if (!fb.jobs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < B->njobs; i++) {
        const djob *J = &d->jobs[B->slot[i]];
        fb.jobs[i] = (rm_bjob){.key = J->key,
                               .task = J->job.task,
                               .map_index = J->job.map_index,
                               .attempt = J->job.attempt,
                               .timeout_ms = J->job.timeout_ms,
                               .out_dir = J->job.out_dir,
                               .scratch_dir = J->job.scratch_dir,
                               .args = J->args,
                               .args_len = J->args_len};
    }
    fv_buf out = {0};
    rm_batch_encode(&fb, &out);
    free(fb.jobs);
    int rc = -1;
    snprintf(path, pathcap, "%s/b%u.batch", d->dir, B->n);
    char rdir[PATH_MAX + 16];
    snprintf(rdir, sizeof rdir, "%s/r%u", d->dir, B->n);
    if (out.failed)
        snprintf(err, errlen, "out of memory");
    else if (mkdir(rdir, 0755) && errno != EEXIST)
        snprintf(err, errlen, "cannot create %.900s: %s", rdir, strerror(errno));
    else
        rc = rm_write_file(path, out.data, out.len, err, errlen);
    fl_free(fl_ctx_default(), out.data);
    return rc;
}

/* The queue's first `take` jobs become B's jobs 0..take. */
static void take_queue(rm_exec *d, dbatch *B, uint32_t take) {
    for (uint32_t i = 0; i < take; i++) {
        uint32_t j = d->queue[d->qhead];
        d->qhead = (d->qhead + 1) % d->qcap;
        d->qn--;
        B->slot[i] = j;
        B->keys[i] = d->jobs[j].key;
        d->jobs[j].batch = (uint32_t)(B - d->b);
    }
}

/* Start one batch from the queue's first jobs. 0, or -1 when nothing could be
 * started (out of memory: nothing taken). */
static int start_batch(rm_exec *d, uint32_t nelem, uint32_t size) {
    uint32_t take = nelem * size;
    if (take > d->qn) take = d->qn;
    nelem = (take + size - 1) / size;
    dbatch *B = batch_new(d, nelem, take);
    if (!B) return -1;
    B->n = d->next_batch++;
    for (uint32_t e = 0; e <= nelem; e++)
        B->first[e] = e * size < take ? e * size : take;
    take_queue(d, B, take);
    for (uint32_t e = 0; e < nelem; e++)
        B->el[e].st = RM_PENDING;
    d->inflight += nelem;
    d->n_started += nelem;
    char path[PATH_MAX + 32], err[1024], name[64];
    snprintf(name, sizeof name, "flow-%lld-%u", (long long)d->o.run, B->n);
    if (write_batch(d, B, path, sizeof path, err, sizeof err)) {
        char why[1200];
        snprintf(why, sizeof why, "cannot write the batch file: %s", err);
        batch_fail(d, B, why);
        return 0;
    }
    /* the worker command */
    const char *argv[16];
    int a = 0;
    argv[a++] = d->flowrun;
    argv[a++] = "worker";
    argv[a++] = "--state";
    argv[a++] = d->state_dir;
    argv[a++] = "--batch";
    argv[a++] = path;
    if (d->env) {
        argv[a++] = "--env";
        argv[a++] = d->env;
    }
    if (d->config) {
        argv[a++] = "--config";
        argv[a++] = d->config;
    }
    if (d->o.unprotected) argv[a++] = "--unprotected";
    char linger[24];
    if (d->o.linger_ms > 0) { /* it waits that long for a guest batch when done */
        snprintf(linger, sizeof linger, "%d", d->o.linger_ms);
        argv[a++] = "--linger";
        argv[a++] = linger;
    }
    argv[a++] = d->plan_path;
    argv[a] = NULL;
    rm_start s = {.run = d->o.run,
                  .batch = B->n,
                  .nelem = nelem,
                  .slots = 1,
                  .argv = argv,
                  .log_dir = d->logdir,
                  .name = name};
    for (uint32_t i = 0; i < take; i++) {
        const plan_task *T = &d->p->tasks[d->jobs[B->slot[i]].job.task];
        if (T->memory > s.memory) s.memory = T->memory;
    }
    B->memory = s.memory;
    if (d->e->ops->start(d->e, &s, B->id, sizeof B->id, err, sizeof err)) {
        char why[1200];
        snprintf(why, sizeof why, "%s could not start batch %u: %s", d->e->ops->name, B->n, err);
        batch_fail(d, B, why);
        return 0;
    }
    if (d->o.record_batch && d->o.record_batch(d->o.rec_ud, d->o.run, B->n, d->e->ops->name, B->id,
                                               name, nelem, path, err, sizeof err)) {
        /* not recorded: a resume could not find it again; it runs anyway (the results
         * come back through its files), and the problem is said once */
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u is not recorded in state.db: %s", B->n, err);
    }
    return 0;
}


/* ---- guests: more work for a lingering worker ---- */

static int grow_jobs(rm_exec *d, uint32_t more);
static void clean_guests(rm_exec *d, double now);

/* STATE/remote/<run>/r<n>/<el>.<what><k> (k 0: none) into buf */
static void host_file(rm_exec *d, uint32_t n, uint32_t el, const char *what, uint32_t k,
                      char *buf, size_t cap) {
    if (k)
        snprintf(buf, cap, "%s/r%u/%u.%s%u", d->dir, n, el, what, k);
    else
        snprintf(buf, cap, "%s/r%u/%u.%s", d->dir, n, el, what);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Element el of B is complete and its worker lingers (B: the engine's element
 * itself, or a guest batch run in one): the worker goes on to the offer made ahead,
 * if there is one, else it is idle and may take a guest. */
static void mark_idle(rm_exec *d, dbatch *B, uint32_t el) {
    if (d->o.linger_ms <= 0 || B->old) return;
    dbatch *H = B->guest ? &d->b[B->host_b] : B;
    uint32_t hel = B->guest ? B->host_el : el;
    if (H->old || hel >= H->nelem) return;
    delem *E = &H->el[hel];
    uint32_t bi = (uint32_t)(B - d->b);
    if (B->guest && E->ahead == bi) { /* (its worker took it: the one before is over) */
        E->ahead = RM_NONE;
    } else if (E->ahead != RM_NONE) {
        E->guest = E->ahead;
        E->ahead = RM_NONE;
        E->idle_since = 0;
        return;
    }
    E->guest = RM_NONE;
    E->idle_since = now_s();
}

/* The guest batch B's jobs without a result go back to the front of the queue (its
 * worker left without taking it); B is over. */
static void withdraw(rm_exec *d, dbatch *B) {
    uint32_t back = 0;
    for (uint32_t i = 0; i < B->njobs; i++)
        back += B->slot[i] != RM_NONE;
    int room = grow_jobs(d, back) == 0;
    for (uint32_t i = B->njobs; i-- > 0;) {
        uint32_t j = B->slot[i];
        B->answered[i] = 1;
        if (j == RM_NONE) continue;
        B->slot[i] = RM_NONE;
        if (!room) { /* out of memory: they fail instead (the scheduler's retries) */
            d->outstanding--;
            answer(d, j, NULL, "out of memory giving it back to the queue");
            continue;
        }
        d->jobs[j].batch = RM_NONE;
        d->qhead = (d->qhead + d->qcap - 1) % d->qcap;
        d->queue[d->qhead] = j;
        d->qn++;
    }
    if (!B->el[0].done) {
        B->el[0].done = 1;
        d->inflight--;
    }
    delem *E = &d->b[B->host_b].el[B->host_el];
    uint32_t bi = (uint32_t)(B - d->b);
    if (E->guest == bi) E->guest = RM_NONE;
    if (E->ahead == bi) E->ahead = RM_NONE;
    E->idle_since = 0;
}

/* Offer the queue's first `size` jobs to the worker of element el of batch hi, idle
 * (lingering) or, `ahead`, busy: a guest batch of one element, recorded like any batch
 * (with the host's engine id and b<M>.host naming the host), then r<N>/<el>.next<K>
 * naming it. */
static void offer(rm_exec *d, uint32_t hi, uint32_t el, uint32_t size, int ahead) {
    uint32_t take = size < d->qn ? size : d->qn;
    dbatch *B = batch_new(d, 1, take);
    if (!B) return; /* out of memory: the pump starts elements instead */
    dbatch *H = &d->b[hi];
    B->n = d->next_batch++;
    B->guest = 1;
    B->host_b = hi;
    B->host_n = H->n;
    B->host_el = el;
    B->offer = ++H->el[el].offers;
    snprintf(B->id, sizeof B->id, "%s", H->id);
    B->memory = H->memory;
    B->first[0] = 0;
    B->first[1] = take;
    take_queue(d, B, take);
    B->el[0].st = H->el[el].st;
    B->el[0].seen_gen = H->el[el].seen_gen;
    d->inflight++;
    d->n_guests++;
    if (ahead)
        H->el[el].ahead = (uint32_t)(B - d->b);
    else
        H->el[el].guest = (uint32_t)(B - d->b);
    H->el[el].idle_since = 0;
    char path[PATH_MAX + 32], err[1024], f[PATH_MAX + 64], name[64];
    char text[64];
    snprintf(name, sizeof name, "flow-%lld-%u", (long long)d->o.run, B->host_n);
    int n = snprintf(text, sizeof text, "%u %u %u\n", B->host_n, el, B->offer);
    snprintf(f, sizeof f, "%s/b%u.host", d->dir, B->n);
    if (write_batch(d, B, path, sizeof path, err, sizeof err) ||
        rm_write_file(f, text, (size_t)n, err, sizeof err)) {
        withdraw(d, B); /* not offered: the jobs go back */
        return;
    }
    if (d->o.record_batch && d->o.record_batch(d->o.rec_ud, d->o.run, B->n, d->e->ops->name, B->id,
                                               name, 1, path, err, sizeof err))
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u is not recorded in state.db: %s", B->n, err);
    n = snprintf(text, sizeof text, "%u\n", B->n);
    host_file(d, B->host_n, el, "next", B->offer, f, sizeof f);
    if (rm_write_file(f, text, (size_t)n, err, sizeof err)) withdraw(d, B);
}

/* Workers that linger get the queue's first jobs before new elements are started:
 * an idle one while it is sure to be waiting still (half its linger), and a busy one
 * (its own element running, or a guest it took) one offer ahead, so that it goes on
 * without waiting for the driver to see it idle (a read, an offer, its next look:
 * ~0.1 s a guest). Only jobs that may run anywhere (d->plain: no secrets, no image)
 * within what the host was started with (memory: a task's `memory:` no more than the
 * host's request); else the queue waits for a new element. */
static void offer_guests(rm_exec *d) {
    if (d->o.linger_ms <= 0 || !d->qn) return;
    double now = now_s();
    uint32_t limit = max_inflight(d);
    for (uint32_t i = 0; i < d->nb && d->qn; i++) {
        if (d->b[i].guest || d->b[i].old) continue;
        for (uint32_t el = 0; el < d->b[i].nelem && d->qn; el++) {
            delem *E = &d->b[i].el[el];
            int ahead = 0;
            if (E->idle_since && E->guest == RM_NONE) {
                char f[PATH_MAX + 64];
                host_file(d, d->b[i].n, el, "bye", 0, f, sizeof f);
                if (now - E->idle_since > d->o.linger_ms / 2000.0 || E->st == RM_ENDED ||
                    E->st == RM_GONE || exists(f)) {
                    E->idle_since = 0; /* it may be leaving: no offer */
                    continue;
                }
            } else if (E->st == RM_RUNNING && E->ahead == RM_NONE &&
                       (E->guest == RM_NONE ? !E->done && E->next_chunk > 0
                                            : d->b[E->guest].claimed)) {
                ahead = 1; /* busy: its element has sent results, or it took a guest */
            } else {
                continue;
            }
            uint32_t size = target_size(d), fair = (d->qn + limit - 1) / limit;
            if (size > fair) size = fair;
            if (size < 1) size = 1;
            if (size > d->qn) size = d->qn;
            for (uint32_t k = 0; k < size; k++) {
                uint32_t t = d->jobs[d->queue[(d->qhead + k) % d->qcap]].job.task;
                if (!d->plain[t]) return;
                if (d->p->tasks[t].memory > d->b[i].memory) goto next; /* another host may do */
            }
            offer(d, i, el, size, ahead);
        next:;
        }
    }
}

/* Guest batches not yet taken: taken now (.took<K>), or withdrawn when their host
 * left without taking them (.bye, or the engine says it ended) — the rename of
 * .next<K> decides which, once: the worker's to .took, or the driver's to .back. */
static void check_guests(rm_exec *d) {
    for (uint32_t i = 0; i < d->nb; i++) {
        dbatch *B = &d->b[i];
        if (!B->guest || B->claimed || B->el[0].done) continue;
        char next[PATH_MAX + 64], f[PATH_MAX + 64];
        host_file(d, B->host_n, B->host_el, "took", B->offer, f, sizeof f);
        if (exists(f)) {
            B->claimed = 1;
            continue;
        }
        const delem *H = &d->b[B->host_b].el[B->host_el];
        host_file(d, B->host_n, B->host_el, "bye", 0, f, sizeof f);
        if (H->st != RM_ENDED && H->st != RM_GONE && !exists(f)) continue;
        host_file(d, B->host_n, B->host_el, "next", B->offer, next, sizeof next);
        host_file(d, B->host_n, B->host_el, "back", B->offer, f, sizeof f);
        if (rename(next, f) == 0) {
            withdraw(d, B);
            d->n_withdrawn++;
        }
        else
            B->claimed = 1; /* taken after all: its results (or its deadline) decide */
    }
}

static void pump(rm_exec *d) {
    offer_guests(d);
    uint32_t limit = max_inflight(d);
    while (d->qn && d->inflight < limit) {
        uint32_t free_places = limit - d->inflight;
        uint32_t size = target_size(d);
        /* an element never takes more than its share of the queue over all places
         * (guided self-scheduling): a place freed early must not take a long run of
         * the queue while the others drain, or it alone makes the run's tail (first
         * elements of RM_FIRST_SIZE end one by one); and every free place gets work */
        uint32_t fair = (d->qn + limit - 1) / limit;
        if (size > fair) size = fair;
        if (size < 1) size = 1;
        uint32_t nelem = (d->qn + size - 1) / size;
        if (nelem > free_places) nelem = free_places;
        if (d->e->ops->max_array > 0 && nelem > (uint64_t)d->e->ops->max_array)
            nelem = (uint32_t)d->e->ops->max_array;
        if (start_batch(d, nelem, size)) break; /* out of memory: try again next round */
    }
}

/* ---- reading results ---- */

/* Take one result r of batch B (element el). */
static void take_result(rm_exec *d, dbatch *B, uint32_t el, const rm_res *r) {
    if (r->job < B->first[el] || r->job >= B->first[el + 1]) return; /* not this element's */
    if (B->keys[r->job].hi != r->key.hi || B->keys[r->job].lo != r->key.lo) return;
    if (B->answered[r->job]) return;
    B->answered[r->job] = 1;
    uint32_t j = B->slot[r->job];
    if (j == RM_NONE) return; /* an old batch's job nobody asked for again */
    B->slot[r->job] = RM_NONE;
    d->outstanding--;
    answer(d, j, r, NULL);
}

/* Read the chunks of element el that are there. -1 when one is damaged (the
 * element is then finished with that error). */
static void read_elem(rm_exec *d, dbatch *B, uint32_t el) {
    char path[PATH_MAX + 64], err[1024];
    for (;;) {
        snprintf(path, sizeof path, "%s/r%u/%u.%u", d->dir, B->n, el, B->el[el].next_chunk);
        uint8_t *data;
        size_t len;
        if (rm_read_file(path, &data, &len, err, sizeof err)) {
            if (errno == ENOENT) break;
            char why[1200];
            snprintf(why, sizeof why, "cannot read the result of it: %s", err);
            elem_finish(d, B, el, why);
            return;
        }
        rm_chunk c;
        int rc = rm_chunk_decode(data, len, &c, err, sizeof err);
        free(data);
        if (rc || c.run != d->o.run || c.batch != B->n || c.element != el) {
            char why[PATH_MAX + 2400], en[200];
            elem_name(d, B, el, en, sizeof en);
            snprintf(why, sizeof why, "%s: %s: %s", en, path,
                     rc ? err : "a result file of another run, batch or element");
            if (!rc) rm_chunk_free(&c);
            elem_finish(d, B, el, why);
            return;
        }
        for (uint32_t i = 0; i < c.nres; i++)
            take_result(d, B, el, &c.res[i]);
        rm_chunk_free(&c);
        B->el[el].next_chunk++;
    }
}

static void check_end(rm_exec *d, dbatch *B, uint32_t el) {
    delem *E = &B->el[el];
    if (E->done) return;
    if (elem_complete(B, el)) {
        E->done = 1;
        d->inflight--;
        mark_idle(d, B, el);
        return;
    }
    char path[PATH_MAX + 64], err[1024], en[200];
    snprintf(path, sizeof path, "%s/r%u/%u.end", d->dir, B->n, el);
    uint8_t *data;
    size_t len;
    if (rm_read_file(path, &data, &len, err, sizeof err)) return; /* not yet */
    int64_t run;
    uint32_t bn, en_, nres;
    int rc = rm_end_decode(data, len, &run, &bn, &en_, &nres, err, sizeof err);
    free(data);
    read_elem(d, B, el); /* what was written before the marker */
    if (E->done) return;
    if (elem_complete(B, el)) {
        E->done = 1;
        d->inflight--;
        mark_idle(d, B, el);
        return;
    }
    elem_name(d, B, el, en, sizeof en);
    char why[PATH_MAX + 2400];
    if (rc)
        snprintf(why, sizeof why, "%s: %s: %s", en, path, err);
    else
        snprintf(why, sizeof why, "%s ended without a result for it (its worker wrote %u)", en,
                 nres);
    elem_finish(d, B, el, why);
}

static void read_all(rm_exec *d) {
    check_guests(d);
    for (uint32_t i = 0; i < d->nb; i++) {
        dbatch *B = &d->b[i];
        for (uint32_t el = 0; el < B->nelem; el++) {
            if (B->el[el].done) continue;
            read_elem(d, B, el);
            check_end(d, B, el);
        }
    }
}

/* ---- polling ---- */

static void on_report(void *ud, const char *id, int64_t element, enum rm_state st) {
    rm_exec *d = ud;
    for (uint32_t i = d->nb; i-- > 0;) { /* (guests share their host's id) */
        dbatch *B = &d->b[i];
        if (strcmp(B->id, id)) continue;
        for (uint32_t el = 0; el < B->nelem; el++) {
            uint32_t at = B->guest ? B->host_el : el; /* the engine's element */
            if (element >= 0 && (uint64_t)element != at) continue;
            if (element < 0 && B->el[el].seen_gen == d->gen) continue; /* said one by one */
            B->el[el].st = st;
            B->el[el].seen_gen = d->gen;
        }
    }
}

static void poll_engine(rm_exec *d, double now) {
    char err[1024];
    d->gen++;
    if (d->e->ops->poll(d->e, on_report, d, err, sizeof err)) {
        if (++d->poll_fails >= RM_POLL_FAILS) {
            char why[1200];
            snprintf(why, sizeof why, "%s: %d polls in a row failed: %s", d->e->ops->name,
                     d->poll_fails, err);
            for (uint32_t i = 0; i < d->nb; i++)
                batch_fail(d, &d->b[i], why);
        }
        return;
    }
    d->poll_fails = 0;
    for (uint32_t i = 0; i < d->nb; i++) {
        dbatch *B = &d->b[i];
        for (uint32_t el = 0; el < B->nelem; el++) {
            delem *E = &B->el[el];
            if (E->done) continue;
            if (E->seen_gen != d->gen) E->st = RM_GONE; /* the engine no longer knows it */
            if ((E->st == RM_ENDED || E->st == RM_GONE) && E->deadline == 0)
                E->deadline = now + d->o.grace_ms / 1000.0;
            else if (E->st == RM_PENDING || E->st == RM_RUNNING)
                E->deadline = 0; /* missed by one poll, back in the next: it lives */
        }
    }
}

static void expire(rm_exec *d, double now) {
    for (uint32_t i = 0; i < d->nb; i++) {
        dbatch *B = &d->b[i];
        for (uint32_t el = 0; el < B->nelem; el++) {
            delem *E = &B->el[el];
            if (E->done || E->deadline == 0 || now < E->deadline) continue;
            if (B->guest && !B->claimed) continue; /* check_guests decides */
            read_elem(d, B, el); /* the last look */
            check_end(d, B, el);
            if (E->done) continue;
            char why[400], en[200];
            elem_name(d, B, el, en, sizeof en);
            snprintf(why, sizeof why, "%s %s without a result (node failure?)", en,
                     E->st == RM_GONE ? "vanished" : "ended");
            elem_finish(d, B, el, why);
        }
    }
}

/* ---- the executor ---- */

static int grow_jobs(rm_exec *d, uint32_t more) {
    uint32_t nfree = 0;
    for (uint32_t j = d->free_head; j != RM_NONE && nfree < more; j = d->jobs[j].next_free)
        nfree++;
    if (nfree < more) {
        uint32_t cap = d->njobs_cap ? d->njobs_cap : 256;
        while (cap - d->njobs_cap < more - nfree || cap == d->njobs_cap)
            cap *= 2;
        djob *n = realloc(d->jobs, cap * sizeof *n);
        if (!n) return -1;
        d->jobs = n;
        for (uint32_t j = cap; j-- > d->njobs_cap;) {
            n[j].used = 0;
            n[j].args = NULL;
            n[j].next_free = d->free_head;
            d->free_head = j;
        }
        d->njobs_cap = cap;
    }
    if (d->qn + more > d->qcap) {
        uint32_t cap = d->qcap ? d->qcap : 256;
        while (cap < d->qn + more)
            cap *= 2;
        uint32_t *q = malloc(cap * sizeof *q);
        if (!q) return -1;
        for (uint32_t i = 0; i < d->qn; i++)
            q[i] = d->queue[(d->qhead + i) % d->qcap];
        free(d->queue);
        d->queue = q;
        d->qcap = cap;
        d->qhead = 0;
    }
    /* every job may come back at once: room for its result */
    return ready_room(d, d->outstanding + more + d->rn);
}

/* An old batch's job with this key: B and index, or NULL. */
static dbatch *old_match(rm_exec *d, rm_key k, uint32_t *idx) {
    if (!d->keys.n) return NULL;
    for (fl_htab_slot *s = fl_htab_find(&d->keys, key_hash(k)); s && s->hash;
         s = fl_htab_next(&d->keys, s, key_hash(k))) {
        dbatch *B = &d->b[s->val >> 32];
        uint32_t i = (uint32_t)s->val;
        if (B->keys[i].hi == k.hi && B->keys[i].lo == k.lo) {
            *idx = i;
            return B;
        }
    }
    return NULL;
}

static uint32_t elem_of(const dbatch *B, uint32_t idx) {
    uint32_t lo = 0, hi = B->nelem;
    while (hi - lo > 1) {
        uint32_t m = (lo + hi) / 2;
        if (B->first[m] <= idx)
            lo = m;
        else
            hi = m;
    }
    return lo;
}

static int rm_submit(rt_executor *ex, const rt_job *jobs, int n) {
    rm_exec *d = (rm_exec *)ex;
    if (n <= 0) return 0;
    if (grow_jobs(d, (uint32_t)n)) return -1;
    const fl_plan *p = d->p;
    for (int i = 0; i < n; i++) {
        uint32_t j = d->free_head;
        djob *J = &d->jobs[j];
        d->free_head = J->next_free;
        memset(J, 0, sizeof *J);
        J->used = 1;
        J->job = jobs[i];
        J->batch = RM_NONE;
        J->key = rm_job_key(p, &jobs[i]);
        d->outstanding++;
        uint32_t idx;
        dbatch *B = old_match(d, J->key, &idx);
        if (B && !B->answered[idx] && B->slot[idx] == RM_NONE) {
            uint32_t el = elem_of(B, idx);
            if (B->res && B->res[idx]) { /* written before the driver died */
                B->answered[idx] = 1;
                d->outstanding--;
                answer(d, j, B->res[idx], NULL);
                continue;
            }
            if (!B->el[el].done && (B->el[el].st == RM_PENDING || B->el[el].st == RM_RUNNING)) {
                B->slot[idx] = j; /* its element is still at work: wait for it */
                J->batch = (uint32_t)(B - d->b);
                continue;
            }
        }
        const plan_task *T = &p->tasks[jobs[i].task];
        fv_buf b = {0};
        for (uint32_t a = 0; a < T->nparams; a++)
            fv_encode(p, p->params[T->first_param + a].type, jobs[i].args[a], &b);
        if (b.failed) {
            fl_free(fl_ctx_default(), b.data);
            d->outstanding--;
            answer(d, j, NULL, "out of memory encoding its arguments");
            continue;
        }
        J->args = malloc(b.len ? b.len : 1);
        if (!J->args) {
            fl_free(fl_ctx_default(), b.data);
            d->outstanding--;
            answer(d, j, NULL, "out of memory encoding its arguments");
            continue;
        }
        if (b.len) memcpy(J->args, b.data, b.len);
        J->args_len = (uint32_t)b.len;
        fl_free(fl_ctx_default(), b.data);
        d->queue[(d->qhead + d->qn) % d->qcap] = j;
        d->qn++;
    }
    return 0;
}

static int rm_wait(rt_executor *ex, rt_result *out, int max, int timeout_ms) {
    rm_exec *d = (rm_exec *)ex;
    double start = now_s();
    for (;;) {
        double now = now_s();
        pump(d);
        if (now - d->last_read >= RM_READ_MS / 1000.0 || d->rn == 0) {
            if (now - d->last_read >= RM_READ_MS / 1000.0) {
                read_all(d);
                d->last_read = now;
            }
        }
        if (now - d->last_poll >= d->o.poll_ms / 1000.0) {
            poll_engine(d, now);
            d->last_poll = now;
        }
        expire(d, now);
        clean_guests(d, now);
        update_capacity(d);
        if (d->rn) {
            int k = 0;
            while (k < max && d->rn) {
                out[k++] = d->ready[d->rhead];
                d->rhead = (d->rhead + 1) % d->rcap;
                d->rn--;
            }
            return k;
        }
        if (d->outstanding == 0) return 0;
        double left = timeout_ms < 0 ? 1e9 : timeout_ms / 1000.0 - (now - start);
        if (left <= 0) return 0;
        double nap = RM_READ_MS / 1000.0;
        if (nap > left) nap = left;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(nap * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* The files of batch B: r<N>/ and what is in it, b<N>.batch and b<N>.host. */
static void remove_batch_files(rm_exec *d, const dbatch *B) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/r%u", d->dir, B->n);
    DIR *dir = opendir(path);
    struct dirent *de;
    while (dir && (de = readdir(dir))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, ".."))) continue;
        char f[PATH_MAX * 2];
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        unlink(f);
    }
    if (dir) closedir(dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/b%u.batch", d->dir, B->n);
    unlink(path);
    snprintf(path, sizeof path, "%s/b%u.host", d->dir, B->n);
    unlink(path);
}

/* Remove the run's batch and result files (every job answered: nothing to resume). */
static void remove_files(rm_exec *d) {
    for (uint32_t i = 0; i < d->nb; i++)
        if (!d->b[i].cleaned) remove_batch_files(d, &d->b[i]);
}

/* Guest batches over for RM_CLEAN_S lose their files during the run, not all at its
 * end (some ten files a guest: ~1 s at the end of a 100,000-instance run on this VM).
 * By then their answers are in the run's record (the recorder commits within ~50 ms,
 * docs/state.md), which is what a resume serves them from; a resume skips a batch
 * whose file is gone. Host batches keep theirs to the end: their folders hold the
 * offers to their lingering workers (an offer's .took or .back goes with its guest).
 * Looked at four times a second. */
static void clean_guests(rm_exec *d, double now) {
    if (d->o.linger_ms <= 0 || now - d->last_clean < 0.25) return;
    d->last_clean = now;
    for (uint32_t i = 0; i < d->nb; i++) {
        dbatch *B = &d->b[i];
        if (!B->guest || B->old || B->cleaned || !B->el[0].done) continue;
        if (!B->over_at) {
            B->over_at = now;
        } else if (now - B->over_at >= RM_CLEAN_S) {
            remove_batch_files(d, B);
            char f[PATH_MAX + 64];
            host_file(d, B->host_n, B->host_el, "took", B->offer, f, sizeof f);
            unlink(f);
            host_file(d, B->host_n, B->host_el, "back", B->offer, f, sizeof f);
            unlink(f);
            B->cleaned = 1;
        }
    }
}

static void rm_destroy(rt_executor *ex) {
    rm_exec *d = (rm_exec *)ex;
    const char *dbg = getenv("FLOW_DEBUG");
    if (dbg && *dbg && (d->n_started || d->n_guests))
        fl_log(d->p->ctx, FL_LOG_INFO, "remote: %u elements started, %u guest batches (%u withdrawn)",
               d->n_started, d->n_guests, d->n_withdrawn);
    d->e->ops->cancel(d->e);
    if (d->outstanding == 0 && d->qn == 0) /* every job answered: nothing to resume */
        remove_files(d);
    while (d->rn) { /* results nobody took */
        rt_result_clear(d->p, d->ready_task[d->rhead], &d->ready[d->rhead]);
        d->rhead = (d->rhead + 1) % d->rcap;
        d->rn--;
    }
    for (uint32_t j = 0; j < d->njobs_cap; j++)
        free(d->jobs[j].args);
    for (uint32_t i = 0; i < d->nb; i++)
        batch_free(&d->b[i]);
    free(d->b);
    free(d->jobs);
    free(d->queue);
    free(d->ready);
    free(d->ready_task);
    fl_htab_free(fl_ctx_default(), &d->keys);
    free(d->plain);
    d->e->ops->destroy(d->e);
    free(d->state_dir);
    free(d->plan_path);
    free(d->flowrun);
    free(d->env);
    free(d->config);
    free(d);
}

static const rt_executor_ops rm_ops = {
    .name = "remote",
    .submit = rm_submit,
    .wait = rm_wait,
    .destroy = rm_destroy,
};

/* ---- resume: the run's recorded batches ---- */

typedef struct relist {
    rm_exec *d;
    char err[1024];
    int failed;
} relist;

static void re_each(void *ud2, uint32_t batch, const char *engine, const char *engine_id,
                    const char *name, uint32_t nelem, const char *batch_file) {
    relist *L = ud2;
    rm_exec *d = L->d;
    (void)name;
    if (batch >= d->next_batch) d->next_batch = batch + 1;
    if (L->failed) return;
    if (strcmp(engine, d->e->ops->name)) {
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u of run %lld ran on %s, not %s: not re-attached", batch,
                (long long)d->o.run, engine, d->e->ops->name);
        return;
    }
    rm_batch fb;
    char err[1200];
    struct stat st;
    if (stat(batch_file, &st) && errno == ENOENT)
        return; /* a guest cleaned once its jobs were answered (clean_guests): in the record */
    if (rm_batch_read(batch_file, &fb, err, sizeof err)) {
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u of run %lld is not re-attached: %s", batch,
                (long long)d->o.run, err);
        return;
    }
    if (fb.nelem != nelem || fb.batch != batch || fb.run != d->o.run ||
        memcmp(fb.plan_hash, d->plan_hash, 32)) {
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u of run %lld is not re-attached: %s", batch,
                (long long)d->o.run,
                memcmp(fb.plan_hash, d->plan_hash, 32) ? "the plan changed since"
                                                       : "its file does not match its record");
        rm_batch_free(&fb);
        return;
    }
    dbatch *B = batch_new(d, fb.nelem, fb.njobs);
    if (!B || fl_htab_reserve(fl_ctx_default(), &d->keys, fb.njobs)) {
        rm_batch_free(&fb);
        L->failed = 1;
        snprintf(L->err, sizeof L->err, "out of memory");
        return;
    }
    B->n = batch;
    B->old = 1;
    snprintf(B->id, sizeof B->id, "%s", engine_id);
    /* a guest (b<M>.host: "N E K"): its element lives in element E of the host's job;
     * an offer nobody took by now is withdrawn (its jobs run anew) */
    char hf[PATH_MAX + 32];
    snprintf(hf, sizeof hf, "%s/b%u.host", d->dir, batch);
    uint8_t *ht;
    size_t hl;
    int untaken = 0;
    if (rm_read_file(hf, &ht, &hl, err, sizeof err) == 0) {
        char t[64];
        snprintf(t, sizeof t, "%.*s", (int)(hl < sizeof t - 1 ? hl : sizeof t - 1), (char *)ht);
        free(ht);
        unsigned hn, he, hk;
        if (sscanf(t, "%u %u %u", &hn, &he, &hk) == 3 && B->nelem == 1) {
            B->guest = 1;
            B->host_n = hn;
            B->host_el = he;
            B->offer = hk;
            B->host_b = RM_NONE; /* (old: never offered to again, never withdrawn) */
            char next[PATH_MAX + 64], back[PATH_MAX + 64];
            host_file(d, hn, he, "next", hk, next, sizeof next);
            host_file(d, hn, he, "back", hk, back, sizeof back);
            B->claimed = 1;
            untaken = rename(next, back) == 0; /* never taken: over, its jobs run anew */
        }
    }
    memcpy(B->first, fb.first, (fb.nelem + 1) * sizeof *B->first);
    uint32_t bi = (uint32_t)(B - d->b);
    for (uint32_t i = 0; i < fb.njobs; i++) {
        B->keys[i] = fb.jobs[i].key;
        uint64_t h = key_hash(fb.jobs[i].key);
        fl_htab_slot *s = fl_htab_find(&d->keys, h);
        while (s && s->hash)
            s = fl_htab_next(&d->keys, s, h);
        if (s) fl_htab_fill(&d->keys, s, h, (uint64_t)bi << 32 | i);
    }
    rm_batch_free(&fb);
    for (uint32_t el = 0; el < B->nelem; el++)
        B->el[el].st = RM_GONE;
    d->inflight += B->nelem;
    if (untaken) {
        B->el[0].done = 1;
        d->inflight--;
    }
    rm_start s = {
        .run = d->o.run, .batch = batch, .nelem = B->nelem, .log_dir = d->logdir, .name = name};
    if (B->guest) {
        /* its host's batch is adopted (the engine knows the job once) */
    } else if (!d->e->ops->adopt || d->e->ops->adopt(d->e, &s, engine_id, err, sizeof err))
        fl_log(d->p->ctx, FL_LOG_WARN, "batch %u of run %lld: %s cannot re-attach to it%s%s", batch,
                (long long)d->o.run, d->e->ops->name, d->e->ops->adopt ? ": " : "",
                d->e->ops->adopt ? err : "");
    /* the results it wrote: read now, kept for the jobs the scheduler asks for again */
    B->res = calloc(B->njobs ? B->njobs : 1, sizeof *B->res);
    for (uint32_t el = 0; B->res && el < B->nelem; el++) {
        for (;;) {
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/r%u/%u.%u", d->dir, batch, el, B->el[el].next_chunk);
            uint8_t *data;
            size_t len;
            if (rm_read_file(path, &data, &len, err, sizeof err)) break;
            rm_chunk c;
            int rc = rm_chunk_decode(data, len, &c, err, sizeof err);
            free(data);
            if (rc) break; /* damaged: those jobs run again */
            rm_chunk *nc = realloc(B->chunks, (B->nchunks + 1) * sizeof *nc);
            if (!nc) {
                rm_chunk_free(&c);
                break;
            }
            B->chunks = nc;
            B->chunks[B->nchunks++] = c;
            for (uint32_t k = 0; k < c.nres; k++) {
                const rm_res *r = &c.res[k];
                if (r->job >= B->first[el] && r->job < B->first[el + 1] &&
                    B->keys[r->job].hi == r->key.hi && B->keys[r->job].lo == r->key.lo)
                    B->res[r->job] = &B->chunks[B->nchunks - 1].res[k];
            }
            B->el[el].next_chunk++;
        }
    }
    /* chunk pointers moved with realloc: point again */
    for (uint32_t i = 0; B->res && i < B->njobs; i++)
        B->res[i] = NULL;
    for (uint32_t c = 0; B->res && c < B->nchunks; c++)
        for (uint32_t k = 0; k < B->chunks[c].nres; k++) {
            const rm_res *r = &B->chunks[c].res[k];
            if (r->job < B->njobs && B->keys[r->job].hi == r->key.hi &&
                B->keys[r->job].lo == r->key.lo)
                B->res[r->job] = r;
        }
}

static int reattach(rm_exec *d, char *err, size_t errlen) {
    relist L = {.d = d};
    if (d->o.list_batches(d->o.rec_ud, d->o.run, re_each, &L, err, errlen)) return -1;
    if (L.failed) {
        snprintf(err, errlen, "%s", L.err);
        return -1;
    }
    if (d->nb) {
        poll_engine(d, now_s());
        d->last_poll = now_s();
        /* elements that are over are over: their jobs without a result run anew */
        for (uint32_t i = 0; i < d->nb; i++)
            for (uint32_t el = 0; el < d->b[i].nelem; el++) {
                delem *E = &d->b[i].el[el];
                if (E->st != RM_PENDING && E->st != RM_RUNNING && !E->done) {
                    E->done = 1;
                    d->inflight--;
                }
            }
    }
    return 0;
}

rt_executor *rm_executor(const fl_plan *p, rm_engine *e, const rm_options *o, char *err,
                         size_t errlen) {
    rm_exec *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        if (e) e->ops->destroy(e);
        return NULL;
    }
    d->base.ops = &rm_ops;
    d->p = p;
    d->e = e;
    e->ctx = p->ctx;
    d->o = *o;
    d->mean = -1;
    d->free_head = RM_NONE;
    if (d->o.poll_ms <= 0) d->o.poll_ms = 1000;
    if (d->o.grace_ms < 0) d->o.grace_ms = 30000;
    d->state_dir = strdup(o->state_dir);
    d->plan_path = strdup(o->plan_path);
    d->flowrun = strdup(o->flowrun);
    d->env = o->env ? strdup(o->env) : NULL;
    d->config = o->config ? strdup(o->config) : NULL;
    d->o.state_dir = d->o.plan_path = d->o.flowrun = d->o.env = d->o.config = NULL;
    if (!d->state_dir || !d->plan_path || !d->flowrun || (o->env && !d->env) ||
        (o->config && !d->config)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->state_dir[0] != '/' || o->plan_path[0] != '/' || o->flowrun[0] != '/') {
        snprintf(err, errlen, "the remote executor needs absolute paths (state, plan, flowrun)");
        goto fail;
    }
    fl_digest h;
    if (hash_file(p->ctx, o->plan_path, &h, err, errlen)) goto fail;
    memcpy(d->plan_hash, h.b, 32);
    if ((size_t)snprintf(d->dir, sizeof d->dir, "%s/remote/%lld", o->state_dir,
                         (long long)o->run) >= sizeof d->dir ||
        (size_t)snprintf(d->logdir, sizeof d->logdir, "%s/log", d->dir) >= sizeof d->logdir) {
        snprintf(err, errlen, "state directory path too long");
        goto fail;
    }
    /* made without following a link planted below the state folder (fsdir.h) */
    int lfd = fsdir_open(d->logdir, strlen(o->state_dir), 1);
    if (lfd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", d->logdir, strerror(errno));
        goto fail;
    }
    close(lfd);
    /* the tasks a lingering worker may take as guests: its executor was set up for its
     * own element's tasks, so none with secrets or an image */
    d->plain = calloc(p->n_tasks + 1, 1);
    if (!d->plain) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t t = 0; t < p->n_tasks; t++)
        d->plain[t] = p->tasks[t].image == PLAN_NONE;
    for (uint32_t i = 0; i < p->n_secrets; i++)
        if (p->secrets[i].task < p->n_tasks) d->plain[p->secrets[i].task] = 0;
    if (d->o.one_per_instance) d->o.linger_ms = 0;
    if (o->resume && o->list_batches && reattach(d, err, errlen)) goto fail;
    update_capacity(d);
    return &d->base;
fail:
    rm_destroy(&d->base);
    return NULL;
}
