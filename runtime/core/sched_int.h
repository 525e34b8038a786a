/*
 * sched_int.h — the scheduler's private header: the structures its files share.
 *
 * DESIGN
 *   The scheduler is one loop (sched.c) and three concerns it calls into, each in
 *   its own file: scopes, slots and settling (sched_scope.c), the built-ins it
 *   computes itself (sched_builtin.c) and instance folders (sched_dirs.c). They
 *   share the run's state (`sched`), the per-node facts computed once per run
 *   (`node_info`, `sc_edge`), scopes and their slots, the ready queue and the
 *   instance records, all declared here. Nothing here is part of libflow's
 *   surface: only sched*.c include this header.
 *
 *   The functions on the hot path of every instance (slot lookup, the ready queue)
 *   are static inline here, so splitting the files costs no calls; the others
 *   are ordinary hidden functions declared at the end, grouped by the file that
 *   defines them.
 */
#ifndef FLOW_SCHED_INT_H
#define FLOW_SCHED_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "recorder.h"

#define SCHED_CHUNK 256        /* instance records per pool chunk */
#define SCHED_INLINE_ARGS 6    /* arguments stored inside an instance record */

/* ---- static facts about the plan's nodes ---- */

enum { EDGE_WHOLE, EDGE_STREAM, EDGE_AFTER };

typedef struct sc_edge {
    uint32_t node; /* consumer node (absolute) */
    uint8_t kind;  /* EDGE_WHOLE: needs the whole value; EDGE_STREAM: element-wise;
                      EDGE_AFTER: an `after` (order only) */
} sc_edge;

typedef struct node_info {
    uint32_t depth;      /* bucket offset inside its graph (longest path from the inputs) */
    uint32_t out_depth;  /* depth its consumers see (a group node: + the group's depth) */
    uint32_t first_cons; /* consumer edges: edges[first_cons .. +ncons) */
    uint32_t ncons;
    uint32_t nwait0;     /* dependencies to wait for when its scope starts */
    uint32_t stream_src; /* producer read element-wise, or PLAN_NONE */
    uint32_t stream_arg; /* the argument node that reads it: stream_src, or the top of a
                            chain of maps over it (applied per element) */
    uint32_t task;       /* task run by CALL/EXPAND/EXPAND_KWARGS, else PLAN_NONE */
    uint8_t is_exp;      /* its value is built element by element */
    uint8_t all_done;    /* a task node with trigger all_done */
    uint8_t absorbs;     /* a partial failure here is absorbed by all_done consumers */
    uint8_t ret_void;    /* a task node whose task returns nothing */
    uint8_t is_ret;      /* the return node of its graph */
    uint8_t fused;       /* a range/map/filter evaluated by its only consumer (see Fusion) */
} node_info;

/* ---- run-time state ---- */

enum { SL_WAIT, SL_OPEN, SL_DONE };
enum { EL_PENDING, EL_OK, EL_FAILED };
enum { FS_OK, FS_FAILED, FS_PARTIAL };

typedef struct slot {
    uint8_t state;    /* SL_WAIT, SL_OPEN, SL_DONE */
    uint8_t failed;   /* FS_OK; FS_FAILED: no value; FS_PARTIAL: some elements failed */
    uint8_t opened;   /* length known and element-wise consumers told */
    uint32_t nwait;   /* dependencies not yet settled (length, for an element-wise source) */
    int64_t len;      /* expansions: number of elements once opened, else -1 */
    int64_t nsettled; /* expansions: elements finished, ok or failed */
    int64_t nfailed;  /* expansions: elements failed */
    uint8_t *estate;  /* expansions: EL_* per element; NULL for a filtered partial value */
    fl_val val;     /* the value (owned); expansions: the list being filled */
} slot;

typedef struct scope {
    uint32_t graph;          /* plan graph */
    struct scope *parent;    /* NULL for the flow */
    uint32_t pnode;          /* parent's node that made this scope */
    int64_t pk;              /* element of pnode (group expansion), or -1 */
    uint32_t base;           /* bucket of the graph's depth 0 */
    uint32_t level;          /* nesting depth (the flow: 0) */
    uint32_t pending;        /* nodes not settled */
    uint8_t failed;          /* a node failed and was not absorbed */
    fl_val *params;        /* graph parameters (owned) */
    struct scope *next_dead; /* list of finished scopes waiting to be freed */
    struct scope *live_prev, *live_next; /* every scope not freed yet (sched.live) */
    slot slots[];            /* one per node of the graph */
} scope;

typedef struct entry {
    scope *sc;     /* scope of the node */
    uint32_t node; /* absolute node index */
    int64_t lo;    /* next element to start */
    int64_t hi;    /* one past the last element */
} entry;

typedef struct deque {
    struct sched *owner; /* the run (allocations go through its context) */
    entry *e;      /* ring buffer */
    uint32_t head; /* index of the first entry */
    uint32_t n;    /* entries held */
    uint32_t cap;  /* power of two or 0 */
} deque;

typedef struct inst {
    scope *sc;          /* scope of the node */
    uint32_t node;      /* node (absolute) */
    uint32_t task;      /* task */
    int64_t k;          /* element index, -1 for a call */
    uint32_t attempt;   /* 0 for the first run */
    uint32_t nargs;     /* arguments */
    fl_val *args;     /* inl or malloc'ed */
    uint32_t next_free; /* free list link */
    double due;         /* retry: when to run again */
    char *dir;          /* instance folder (out/ and scratch/ below it), or NULL */
    uint8_t served;     /* 1: answered by the recorder (cache or resume), not run;
                           2: refused before running (its folder could not be made) */
    uint8_t has_key;    /* key holds the cache key computed by hist_lookup */
    fl_digest key;      /* the instance's cache key */
    fl_val inl[SCHED_INLINE_ARGS]; /* argument storage for small tasks */
} inst;

typedef struct failure {
    char *what;   /* the instance's name: "a[3]", "per_n[1]/square[2]" */
    char *label;  /* label lambda's text, or NULL */
    char *error;  /* message */
    uint32_t loc; /* loc of the node */
    uint32_t node;/* its node, and index path ("1/2"): the summary's order */
    char *idx;
} failure;

typedef struct sched {
    fl_ctx *ctx;             /* the plan's context: allocations, errors */
    int oom;                 /* an allocation failed: the run ends with code 2 */
    scope *live;             /* every scope not freed yet (freed at the end of any run) */
    fl_val *spare;         /* argument space for the one start after an allocation failed */
    uint32_t nspare;         /* its size: the most arguments or parameters of any node */
    int spare_used;          /* spare holds an instance's or a group element's arguments */
    int pid;                 /* flowrun's pid (served instances ran "here") */
    uint64_t nserved_total;  /* served instances completed */
    int rec_unsynced;        /* the recorder was told of instances not yet synced */
    int rec_failed;          /* a sync before an effect failed: the run ends, code 1 */
    int rec_held;            /* queue_batch held a batch: wait at most REC_HOLD_MS */
    uint8_t *look;           /* per task, with a recorder: its instances are looked up
                                (rec_ops.lookup_needed, asked once; exec_cache.h) */
    uint8_t *needs_dir;      /* per task: task_needs_dir, asked once */
    uint64_t nserved_pending; /* served, not yet completed */
    const fl_plan *p;      /* the plan */
    rt_executor *ex;         /* where instances run */
    const sched_opts *o;     /* options */
    node_info *info;         /* per plan node */
    char **top_tmpl;         /* per plan node and mapped (2 n + k >= 0): the name template
                                of its instances outside any group, made once (hist_prepare) */
    sc_edge *edges;          /* consumer edges of every node */
    uint32_t *gdepth;        /* per graph: its deepest node's depth + 1 */
    deque *buckets;          /* ready entries by depth */
    uint32_t nbuckets;       /* allocated buckets */
    uint32_t top;            /* every bucket above is empty */
    deque *blocked;          /* per task: entries waiting for its concurrency */
    uint32_t *running_task;  /* per task: instances with the executor */
    sched_task_meter *mtask; /* o->meter's tasks when it covers the plan's, else NULL */
    inst **chunks;           /* instance pool */
    uint32_t nchunks;        /* chunks allocated */
    uint32_t free_head;      /* first free record + 1 (0: none) */
    uint32_t fresh;          /* records of the last chunk handed out at least once */
    uint32_t *retries;       /* records waiting for their retry_delay */
    uint32_t nretries, capretries;
    rt_job *batch; /* jobs to submit */
    int nbatch;
    rt_result *results; /* wait buffer */
    int running;        /* jobs with the executor */
    int limit;          /* most jobs with the executor */
    double mean_task;   /* moving average of task duration (s), <0 unknown */
    scope *root;        /* the flow's scope */
    scope *dead;        /* finished child scopes to free */
    failure *fails;     /* failed instances */
    uint32_t nfails, capfails;
    uint64_t *skipped;       /* per node: instances not run (upstream failed) */
    uint64_t nskipped_other; /* built-ins not computed because an upstream failed */
    uint64_t total, done, failed, attempts;
    uint64_t ninst_dirs;      /* instance folders made */
    double t0;                /* when the run started (monotonic clock) */
    int work_made;            /* opening opts->work_dir was tried */
    int work_fd;              /* opts->work_dir, opened at the first instance folder; -1: failed */
    int work_errno;           /* why it failed */
    struct gone {
        char *dir;            /* an ended instance's folder ("<dir>\0<dir>/out\0...") */
        int clean;            /* a success recorded by the history: empty out/ first */
    } *gone;                  /* instance folders to remove when empty (see rec_free) */
    size_t ngone, capgone;
} sched;

static inline slot *SL(scope *sc, const fl_plan *p, uint32_t node) {
    return &sc->slots[node - p->graphs[sc->graph].first_node];
}

static inline uint32_t elem_type(const fl_plan *p, uint32_t list_type) {
    return p->types[list_type].elem;
}

/* ---- allocation: through the plan's context ----
 * An allocation that fails (the context's sink already says "out of memory")
 * marks the run and stops new work: limit 0 keeps fill() from starting more, the
 * loop ends the run at its next round with code 2, drains what the executor holds
 * and frees everything. Code that could not allocate leaves the structures as
 * they were (a node left open, an entry not queued): nothing waits for them. */

static inline void sched_oom(sched *S) {
    S->oom = 1;
    S->limit = 0;
}

/* A value could not be made (a constructor gave o == NULL, an allocation or a
 * lambda ran out of memory): the run ends as above. -1 with "out of memory" in
 * err, for the built-ins' and arguments' error paths: what meets it with S->oom
 * set leaves its node or element as it is (nothing recorded as a failure). */
static inline int builtin_oom(sched *S, char *err, size_t errlen) {
    sched_oom(S);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static inline void *sc_calloc(sched *S, size_t n, size_t size) {
    void *q = fl_calloc(S->ctx, n ? n : 1, size ? size : 1);
    if (!q) sched_oom(S);
    return q;
}

static inline void *sc_reallocarray(sched *S, void *q, size_t n, size_t size) {
    void *r = fl_reallocarray(S->ctx, q, n ? n : 1, size ? size : 1);
    if (!r) sched_oom(S);
    return r;
}

static inline char *sc_strdup(sched *S, const char *s) {
    char *r = fl_strdup(S->ctx, s);
    if (!r) sched_oom(S);
    return r;
}

static inline void sc_free(sched *S, void *q) {
    fl_free(S->ctx, q);
}

/* Argument (or group parameter) space for n values, zeroed. When memory has run
 * out: the run's spare space, so the start in progress completes without a NULL
 * (it is the last one: limit is 0). Given back with args_release. */
static inline fl_val *args_alloc(sched *S, uint32_t n) {
    fl_val *a = fl_calloc(S->ctx, n ? n : 1, sizeof *a);
    if (a) return a;
    sched_oom(S);
    S->spare_used = 1;
    memset(S->spare, 0, S->nspare * sizeof *S->spare);
    return S->spare;
}

static inline void args_release(sched *S, fl_val *a) {
    if (a == S->spare)
        S->spare_used = 0;
    else
        sc_free(S, a);
}

/* ---- the ready queue ---- */

static inline void dq_push(deque *d, entry e) {
    if (d->n && d->cap) { /* extend the last entry when contiguous (element-wise releases) */
        entry *last = &d->e[(d->head + d->n - 1) & (d->cap - 1)];
        if (last->sc == e.sc && last->node == e.node && last->hi == e.lo) {
            last->hi = e.hi;
            return;
        }
    }
    if (d->n == d->cap) {
        uint32_t nc = d->cap ? d->cap * 2 : 16;
        entry *ne = sc_reallocarray(d->owner, NULL, nc, sizeof *ne);
        if (!ne) return; /* the run ends (sched_oom); the entry is dropped */
        for (uint32_t i = 0; i < d->n; i++)
            ne[i] = d->e[(d->head + i) & (d->cap - 1)];
        sc_free(d->owner, d->e);
        d->e = ne;
        d->cap = nc;
        d->head = 0;
    }
    d->e[(d->head + d->n) & (d->cap - 1)] = e;
    d->n++;
}

static inline entry *dq_front(deque *d) {
    return d->n ? &d->e[d->head] : NULL;
}

static inline void dq_pop(deque *d) {
    d->head = (d->head + 1) & (d->cap - 1);
    d->n--;
}

static inline void ready_push(sched *S, scope *sc, uint32_t node, int64_t lo, int64_t hi) {
    uint32_t b = sc->base + S->info[node].depth;
    if (b >= S->nbuckets) {
        uint32_t nb = S->nbuckets ? S->nbuckets : 16;
        while (nb <= b)
            nb *= 2;
        deque *bk = sc_reallocarray(S, S->buckets, nb, sizeof *S->buckets);
        if (!bk) return; /* the run ends (sched_oom); the entry is dropped */
        S->buckets = bk;
        memset(S->buckets + S->nbuckets, 0, (nb - S->nbuckets) * sizeof *S->buckets);
        for (uint32_t i = S->nbuckets; i < nb; i++)
            S->buckets[i].owner = S;
        S->nbuckets = nb;
    }
    dq_push(&S->buckets[b], (entry){sc, node, lo, hi});
    if (b + 1 > S->top) S->top = b + 1;
}

/* The bucket to take from next, or NULL when nothing is ready. */
static inline deque *ready_pick(sched *S) {
    if (S->o->breadth) {
        for (uint32_t b = 0; b < S->top; b++)
            if (S->buckets[b].n) return &S->buckets[b];
        return NULL;
    }
    while (S->top > 0 && S->buckets[S->top - 1].n == 0)
        S->top--;
    return S->top ? &S->buckets[S->top - 1] : NULL;
}


/* ---- sched.c: the loop, arguments, instances ---- */

void try_open(sched *S, scope *sc, uint32_t node);
void record_failure(sched *S, scope *sc, uint32_t node, int64_t k, const fl_val *args,
                    const char *error);
fl_val arg_whole(sched *S, scope *sc, uint32_t src);
void drop_inflight(sched *S);

/* ---- sched_report.c: the summary ---- */

/* Put failures in the summary's order: by node, then by index path. */
void sched_failures_order(sched_failure *f, uint32_t n);

/* ---- sched_scope.c: scopes, slots and settling ---- */

void node_settle(sched *S, scope *sc, uint32_t node, uint8_t failed);
void elem_settle(sched *S, scope *sc, uint32_t node, int64_t k, int ok, fl_val v);
void release_elem(sched *S, scope *sc, uint32_t node, int64_t k, int ok);
/* --metrics (scheduler.h, sched_meter): instances of task t counted outside complete() */
void sched_meter_count(sched *S, uint32_t t, uint64_t known, uint64_t skipped, uint64_t failed);
void node_upstream_failed(sched *S, scope *sc, uint32_t node);
void node_error(sched *S, scope *sc, uint32_t node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void node_fail_as(sched *S, scope *sc, uint32_t node, uint32_t as, const char *msg);
void elem_error(sched *S, scope *sc, uint32_t node, int64_t k, const char *err);
scope *scope_new(sched *S, uint32_t graph, scope *parent, uint32_t pnode, int64_t pk,
                 fl_val *params /* consumed */);
void scope_start(sched *S, scope *sc);
void scope_free(sched *S, scope *sc);
void scope_finished(sched *S, scope *sc);
void free_dead(sched *S);
void free_live_scopes(sched *S);

/* ---- sched_builtin.c: built-ins computed by the scheduler ---- */

int lam_call(sched *S, uint32_t lam, const fl_val *args, fl_val *out, char *err,
             size_t errlen);
int compute_builtin(sched *S, scope *sc, uint32_t node, char *err, size_t errlen);

/* ---- sched_dirs.c: instance folders ---- */

int task_needs_dir(const fl_plan *p, uint32_t t);
int make_inst_dir(sched *S, inst *r, uint64_t id, char *err, size_t errlen);
void inst_dir_release(sched *S, inst *r, int clean);
void inst_dirs_end(sched *S);

#endif /* FLOW_SCHED_INT_H */
