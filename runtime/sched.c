/*
 * sched.c — the scheduler: runs one flow of a plan on an executor.
 *
 * DESIGN
 *   One visible loop, in the manner of ninja's builder (sched_run, at the end):
 *
 *       while the flow is not finished:
 *           start ready work while there is capacity      (a batch of jobs)
 *           submit the batch to the executor
 *           wait for completions (a batch of results)
 *           record each one: store the value, release what depended on it
 *
 *   Scopes. A graph (the flow, or a group) runs in a scope: one `slot` per
 *   node holding its state, its value and its wait count. A group call makes a
 *   child scope; a group expansion makes one child scope per element, created
 *   only when that element is started. When every node of a scope has settled
 *   the scope hands its return value to the parent node and is freed.
 *
 *   Instances. An expansion is never materialised: its slot holds the length,
 *   the result list (filled in place, item k by instance k) and one state byte
 *   per element. Ready work is a queue entry {scope, node, index range}: an
 *   expansion of a million elements is one entry until its elements are taken
 *   one by one. Only started instances get a record (`inst`: the job, its
 *   arguments), from a pool allocated in chunks that never move (the executor
 *   borrows the argument arrays). Instance k of an expansion with axes of
 *   lengths L0..Ln-1 takes element (k / (L[a+1]*..*L[n-1])) % L[a] of axis a
 *   (mixed radix, the first axis slowest).
 *
 *   Dependencies. A node waits for every producer it reads (its `nwait`
 *   counts them) and for its `after`s. Exception, the element-wise edge: an
 *   expansion with a single axis (or an expand_kwargs) whose list is itself
 *   the result of an expansion only needs that producer's LENGTH to open; its
 *   instance i is released when element i of the producer has settled
 *   (b = f.expand(x = a): b[i] waits for a[i] alone), also through maps
 *   (f.expand(x = a.map(g)): g runs on a[i] when b[i] starts). A failed
 *   element propagates as an upstream failure of the same element downstream.
 *
 *   Order. Ready entries sit in buckets by depth (the longest path from the
 *   graph's inputs, groups counted by their own depth). Depth-first takes the
 *   deepest bucket first, so a chain's next stage runs before more first
 *   stages start and the first results appear early; `breadth` takes the
 *   shallowest first. Within a bucket, entries run in index order.
 *
 *   Capacity. At most `limit` instances are with the executor: jobs × (a
 *   factor adapted to the measured task time, + 1). For slow tasks the factor
 *   is 1: each worker has one instance running and one queued, so it never
 *   waits for the scheduler and the order above is kept within one instance;
 *   for tasks of microseconds it grows to SCHED_MAX_FACTOR, so batches pay for
 *   the hand-over to the worker threads.
 *
 *   Triggers and failures. A node whose producers failed settles as failed
 *   (upstream failed) without running, unless it is an all_done task: that one
 *   runs with the successful elements of partially failed mapped results, in
 *   index order. Retries re-run a failed instance after retry_delay. A map or
 *   filter read as a whole is evaluated by the scheduler when its list is
 *   complete (no instances); over a partially failed list it keeps only the
 *   successful elements so an all_done consumer downstream still sees the
 *   right data.
 */
#include "flow_sched.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec_cache.h"
#include "expr.h"
#include "fsdir.h"
#include "recorder.h"
#include "state.h"
#include "jit.h"
#include "walk.h"

#define SCHED_MAX_FACTOR 256   /* most jobs queued per executor slot for tiny tasks */
#define SCHED_BATCH 1024       /* most jobs handed to the executor at once */
#define SCHED_SERVE_ROUND 8192 /* most instances served by the history in one round */
#define SCHED_CHUNK 256        /* instance records per pool chunk */
#define SCHED_INLINE_ARGS 6    /* arguments stored inside an instance record */
#define SCHED_FAST_TASK 200e-6 /* a task of this duration or longer: factor 1 */
#define SCHED_POLL_MS 100      /* longest wait before looking at the stop flag */

/* ---- allocation: one entry point; out of memory ends the process ---- */

static void *xrealloc(void *q, size_t n) {
    void *r = realloc(q, n ? n : 1);
    if (!r) {
        fputs("flowrun: out of memory\n", stderr);
        exit(2);
    }
    return r;
}

static void *xcalloc(size_t n, size_t size) {
    void *r = calloc(n ? n : 1, size ? size : 1);
    if (!r) {
        fputs("flowrun: out of memory\n", stderr);
        exit(2);
    }
    return r;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *r = xrealloc(NULL, n);
    memcpy(r, s, n);
    return r;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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
    flow_val val;     /* the value (owned); expansions: the list being filled */
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
    flow_val *params;        /* graph parameters (owned) */
    struct scope *next_dead; /* list of finished scopes waiting to be freed */
    slot slots[];            /* one per node of the graph */
} scope;

typedef struct entry {
    scope *sc;     /* scope of the node */
    uint32_t node; /* absolute node index */
    int64_t lo;    /* next element to start */
    int64_t hi;    /* one past the last element */
} entry;

typedef struct deque {
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
    flow_val *args;     /* inl or malloc'ed */
    uint32_t next_free; /* free list link */
    double due;         /* retry: when to run again */
    char *dir;          /* instance folder (out/ and scratch/ below it), or NULL */
    uint8_t served;     /* 1: answered by the recorder (cache or resume), not run;
                           2: refused before running (its folder could not be made) */
    uint8_t has_key;    /* key holds the cache key computed by the recorder's lookup */
    flow_hash key;      /* the instance's cache key */
    flow_val inl[SCHED_INLINE_ARGS]; /* argument storage for small tasks */
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
    int pid;                 /* flowrun's pid */
    uint64_t nserved_total;  /* served instances completed */
    uint64_t nserved_pending; /* answered by the cache executor (exec_cache.c), not yet
                                 completed: they hold no worker, so no capacity */
    const flow_plan *p;      /* the plan */
    rt_executor *ex;         /* where instances run */
    const sched_opts *o;     /* options */
    FILE *err;               /* progress and summary */
    node_info *info;         /* per plan node */
    sc_edge *edges;          /* consumer edges of every node */
    uint32_t *gdepth;        /* per graph: its deepest node's depth + 1 */
    deque *buckets;          /* ready entries by depth */
    uint32_t nbuckets;       /* allocated buckets */
    uint32_t top;            /* every bucket above is empty */
    deque *blocked;          /* per task: entries waiting for its concurrency */
    uint32_t *running_task;  /* per task: instances with the executor */
    inst **chunks;           /* instance pool */
    uint32_t nchunks;        /* chunks allocated */
    uint32_t free_head;      /* first free record + 1 (0: none) */
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
    double t0, last_progress; /* clock */
    int live_drawn;           /* a live progress line is on screen */
    int work_made;            /* opening opts->work_dir was tried */
    int work_fd;              /* opts->work_dir, opened at the first instance folder; -1: failed */
    int work_errno;           /* why it failed */
    struct gone {
        char *dir;            /* an ended instance's folder ("<dir>\0<dir>/out\0...") */
        int clean;            /* a success recorded by the history: empty out/ first */
    } *gone;                  /* instance folders to remove when empty (see rec_free) */
    size_t ngone, capgone;
} sched;

static inline slot *SL(scope *sc, const flow_plan *p, uint32_t node) {
    return &sc->slots[node - p->graphs[sc->graph].first_node];
}

static inline uint32_t elem_type(const flow_plan *p, uint32_t list_type) {
    return p->types[list_type].elem;
}

/* ---- the ready queue ---- */

static void dq_push(deque *d, entry e) {
    if (d->n && d->cap) { /* extend the last entry when contiguous (element-wise releases) */
        entry *last = &d->e[(d->head + d->n - 1) & (d->cap - 1)];
        if (last->sc == e.sc && last->node == e.node && last->hi == e.lo) {
            last->hi = e.hi;
            return;
        }
    }
    if (d->n == d->cap) {
        uint32_t nc = d->cap ? d->cap * 2 : 16;
        entry *ne = xrealloc(NULL, nc * sizeof *ne);
        for (uint32_t i = 0; i < d->n; i++)
            ne[i] = d->e[(d->head + i) & (d->cap - 1)];
        free(d->e);
        d->e = ne;
        d->cap = nc;
        d->head = 0;
    }
    d->e[(d->head + d->n) & (d->cap - 1)] = e;
    d->n++;
}

static entry *dq_front(deque *d) {
    return d->n ? &d->e[d->head] : NULL;
}

static void dq_pop(deque *d) {
    d->head = (d->head + 1) & (d->cap - 1);
    d->n--;
}

static void ready_push(sched *S, scope *sc, uint32_t node, int64_t lo, int64_t hi) {
    uint32_t b = sc->base + S->info[node].depth;
    if (b >= S->nbuckets) {
        uint32_t nb = S->nbuckets ? S->nbuckets : 16;
        while (nb <= b)
            nb *= 2;
        S->buckets = xrealloc(S->buckets, nb * sizeof *S->buckets);
        memset(S->buckets + S->nbuckets, 0, (nb - S->nbuckets) * sizeof *S->buckets);
        S->nbuckets = nb;
    }
    dq_push(&S->buckets[b], (entry){sc, node, lo, hi});
    if (b + 1 > S->top) S->top = b + 1;
}

/* The bucket to take from next, or NULL when nothing is ready. */
static deque *ready_pick(sched *S) {
    if (S->o->breadth) {
        for (uint32_t b = 0; b < S->top; b++)
            if (S->buckets[b].n) return &S->buckets[b];
        return NULL;
    }
    while (S->top > 0 && S->buckets[S->top - 1].n == 0)
        S->top--;
    return S->top ? &S->buckets[S->top - 1] : NULL;
}

/* ---- static analysis ---- */

static uint32_t graph_depth(sched *S, uint32_t g, uint32_t guard);

static void analyse_graph(sched *S, uint32_t g, uint32_t guard) {
    const flow_plan *p = S->p;
    const plan_graph *G = &p->graphs[g];
    uint32_t maxd = 0;
    for (uint32_t n = G->first_node; n < G->first_node + G->nnodes; n++) {
        const plan_node *N = &p->nodes[n];
        node_info *I = &S->info[n];
        uint32_t d = 0;
        for (uint32_t a = 0; a < N->nargs; a++) {
            uint32_t src = p->args[N->first_arg + a].node;
            if (S->info[src].out_depth + 1 > d) d = S->info[src].out_depth + 1;
        }
        for (uint32_t a = 0; a < N->nafter; a++) {
            uint32_t src = p->afters[N->first_after + a];
            if (S->info[src].out_depth + 1 > d) d = S->info[src].out_depth + 1;
        }
        I->depth = d;
        I->out_depth = d;
        if (N->kind == PN_GROUP_CALL || N->kind == PN_GROUP_EXPAND)
            I->out_depth = d + graph_depth(S, N->ref, guard + 1);
        if (I->out_depth + 1 > maxd) maxd = I->out_depth + 1;
    }
    S->gdepth[g] = maxd;
}

static uint32_t graph_depth(sched *S, uint32_t g, uint32_t guard) {
    if (S->gdepth[g] == UINT32_MAX && guard < SCHED_MAX_NESTING) {
        S->gdepth[g] = 1; /* guards against a group that (wrongly) calls itself */
        analyse_graph(S, g, guard);
    }
    return S->gdepth[g] == UINT32_MAX ? 1 : S->gdepth[g];
}

static int is_exp_kind(uint32_t k) {
    return k == PN_EXPAND || k == PN_EXPAND_KWARGS || k == PN_GROUP_EXPAND;
}

/* Edges, stream sources, triggers and absorption for every node of the plan. */
static void analyse(sched *S) {
    const flow_plan *p = S->p;
    uint32_t nn = p->n_nodes;
    S->info = xcalloc(nn, sizeof *S->info);
    S->gdepth = xcalloc(p->n_graphs, sizeof *S->gdepth);
    for (uint32_t g = 0; g < p->n_graphs; g++)
        S->gdepth[g] = UINT32_MAX;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        graph_depth(S, g, 0);

    /* facts per node; count consumers */
    uint32_t *ncons = xcalloc(nn + 1, sizeof *ncons);
    for (uint32_t n = 0; n < nn; n++) {
        const plan_node *N = &p->nodes[n];
        node_info *I = &S->info[n];
        I->stream_src = I->stream_arg = PLAN_NONE;
        I->task = PLAN_NONE;
        I->is_exp = (uint8_t)is_exp_kind(N->kind);
        if (N->kind == PN_CALL || N->kind == PN_EXPAND || N->kind == PN_EXPAND_KWARGS) {
            I->task = N->ref;
            I->all_done = p->tasks[N->ref].trigger == TRIG_ALL_DONE;
            I->ret_void = p->types[p->tasks[N->ref].ret].kind == PT_VOID;
        }
        /* element-wise source: one axis (or the rows) produced by an expansion,
         * directly or through maps (element i of xs.map(f) is f(xs[i])) */
        int one_axis = (N->kind == PN_EXPAND || N->kind == PN_GROUP_EXPAND) && N->aux == 1;
        for (uint32_t a = 0; a < N->nargs && (one_axis || N->kind == PN_EXPAND_KWARGS); a++) {
            const plan_arg *A = &p->args[N->first_arg + a];
            if (A->mode != (one_axis ? PA_AXIS : PA_FIELD)) continue;
            uint32_t src = A->node, guard = 0;
            while (p->nodes[src].kind == PN_MAP && p->nodes[src].nargs == 1 && guard++ < 64)
                src = p->args[p->nodes[src].first_arg].node;
            if (is_exp_kind(p->nodes[src].kind)) {
                I->stream_src = src;
                I->stream_arg = A->node;
            }
        }
        for (uint32_t a = 0; a < N->nargs; a++) {
            const plan_arg *A = &p->args[N->first_arg + a];
            ncons[A->node == I->stream_arg && A->mode != PA_SCALAR ? I->stream_src : A->node]++;
        }
        for (uint32_t a = 0; a < N->nafter; a++)
            ncons[p->afters[N->first_after + a]]++;
    }
    uint32_t total = 0;
    for (uint32_t n = 0; n < nn; n++) {
        S->info[n].first_cons = total;
        total += ncons[n];
    }
    S->edges = xcalloc(total, sizeof *S->edges);
    for (uint32_t n = 0; n < nn; n++) {
        const plan_node *N = &p->nodes[n];
        node_info *I = &S->info[n];
        /* the stream source counts once (for its length), however many args read it */
        int stream_counted = 0;
        for (uint32_t a = 0; a < N->nargs; a++) {
            const plan_arg *A = &p->args[N->first_arg + a];
            node_info *P = &S->info[A->node];
            uint8_t kind = EDGE_WHOLE;
            if (A->node == I->stream_arg && A->mode != PA_SCALAR) {
                if (stream_counted) continue;
                stream_counted = 1;
                kind = EDGE_STREAM;
                P = &S->info[I->stream_src];
            }
            S->edges[P->first_cons + P->ncons++] = (sc_edge){n, kind};
            I->nwait0++;
        }
        for (uint32_t a = 0; a < N->nafter; a++) {
            node_info *P = &S->info[p->afters[N->first_after + a]];
            S->edges[P->first_cons + P->ncons++] = (sc_edge){n, EDGE_AFTER};
            I->nwait0++;
        }
    }
    free(ncons);
    /* absorption, consumers first (nodes are in dependency order within a graph) */
    for (uint32_t n = nn; n-- > 0;) {
        node_info *I = &S->info[n];
        const plan_node *N = &p->nodes[n];
        /* a map read only element-wise is never evaluated as a whole: nothing to fail */
        int abs = I->ncons > 0 || N->kind == PN_MAP || N->kind == PN_FILTER;
        for (uint32_t e = 0; e < I->ncons && abs; e++) {
            const sc_edge *E = &S->edges[I->first_cons + e];
            const plan_node *C = &p->nodes[E->node];
            node_info *CI = &S->info[E->node];
            if (E->kind == EDGE_STREAM)
                abs = CI->absorbs;
            else if (CI->all_done)
                abs = 1;
            else if ((C->kind == PN_MAP || C->kind == PN_FILTER) && CI->absorbs)
                abs = 1;
            else
                abs = 0;
        }
        for (uint32_t g = 0; g < p->n_graphs; g++)
            if (p->graphs[g].ret_node == n) abs = 0, I->is_ret = 1;
        I->absorbs = (uint8_t)abs;
    }
    /* fusion: a range, map or filter whose only use is the list input of a map,
     * filter or len of the same graph (and which no graph returns) */
    for (uint32_t n = 0; n < nn; n++) {
        const plan_node *N = &p->nodes[n];
        node_info *I = &S->info[n];
        if (!(N->kind == PN_RANGE || N->kind == PN_MAP || N->kind == PN_FILTER) || I->ncons != 1)
            continue;
        const sc_edge *E = &S->edges[I->first_cons];
        const plan_node *C = &p->nodes[E->node];
        int ok = E->kind == EDGE_WHOLE && C->nargs >= 1 && p->args[C->first_arg].node == n &&
                 (C->kind == PN_MAP || C->kind == PN_FILTER || C->kind == PN_LEN);
        for (uint32_t g = 0; g < p->n_graphs && ok; g++)
            if (p->graphs[g].ret_node == n) ok = 0;
        for (uint32_t a = 1; a < C->nargs && ok; a++)
            if (p->args[C->first_arg + a].node == n) ok = 0;
        I->fused = (uint8_t)ok;
    }
}

/* ---- instance names, failures and the summary ---- */

/* A node's binding name: its `let` name, or (flowc names every call node) else the
 * name of what it runs, or its kind ("map"). */
static const char *node_stem(const flow_plan *p, uint32_t node) {
    const plan_node *N = &p->nodes[node];
    if (N->name != PLAN_NONE) return plan_str(p, N->name);
    switch (N->kind) {
        case PN_CALL:
        case PN_EXPAND:
        case PN_EXPAND_KWARGS:
            return plan_str(p, p->tasks[N->ref].name);
        case PN_GROUP_CALL:
        case PN_GROUP_EXPAND:
            return plan_str(p, p->graphs[N->ref].name);
        default: {
            static const char *const names[] = {
#define X(k, s) s,
                PLAN_NODE_KINDS(X)
#undef X
            };
            return N->kind < PN__COUNT ? names[N->kind] : "node";
        }
    }
}

/* Append text at buf[n]; returns the new length. */
static size_t put_str(char *buf, size_t n, size_t len, const char *t) {
    while (*t && n + 1 < len) buf[n++] = *t++;
    buf[n] = 0;
    return n;
}

/* The name template of an instance of node in scope sc (k >= 0: mapped): the
 * bindings of the group calls around it, then its own, "[]" where an index goes
 * ("{}" for a plain group call's "c<node>" component): "per_n[]/square[]". The
 * history records it and composes the name with the index path (state_inst_name). */
static size_t inst_tmpl_at(const flow_plan *p, scope *sc, uint32_t node, int mapped, char *buf,
                           size_t len) {
    size_t n = 0;
    buf[0] = 0;
    if (sc && sc->parent) {
        n = inst_tmpl_at(p, sc->parent, sc->pnode, sc->pk >= 0, buf, len);
        if (sc->pk < 0) n = put_str(buf, n, len, "{}");
        n = put_str(buf, n, len, "/");
    }
    n = put_str(buf, n, len, node_stem(p, node));
    if (mapped) n = put_str(buf, n, len, "[]");
    return n;
}

/* The label lambda's text for an instance of task t (malloc'ed), or NULL. */
static char *label_of(sched *S, uint32_t t, const flow_val *args) {
    const flow_plan *p = S->p;
    char *label = NULL;
    if (t != PLAN_NONE && args && p->tasks[t].label != PLAN_NONE) {
        flow_val lv;
        expr_error ee;
        memset(&ee, 0, sizeof ee);
        uint32_t lam = p->tasks[t].label;
        if (expr_run(p, lam, args, &lv, &ee) == 0) {
            uint32_t rt = p->lambdas[lam].ret;
            if (fv_is_heap(p, rt) && p->types[rt].kind != PT_LIST &&
                p->types[rt].kind != PT_RECORD && p->types[rt].kind != PT_BYTES)
                label = xstrdup(fv_as_str(lv)->data);
            fv_decref(p, rt, lv);
        }
    }
    return label;
}

/* Append the decimal digits of v (>= 0) at buf[n]; returns the new length. */
static size_t put_dec(char *buf, size_t n, size_t len, uint64_t v) {
    char tmp[24];
    int k = 0;
    do tmp[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 24);
    while (k && n + 1 < len) buf[n++] = tmp[--k];
    buf[n] = 0;
    return n;
}

/* The instance's index path in the history: the element indices of the expanded
 * groups around it ("c<node>" for a plain group call), then its own; "" when none.
 * (On the hot path: no snprintf.) */
static size_t hist_index_at(scope *sc, int64_t k, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = 0;
    if (sc && sc->parent) {
        n = hist_index_at(sc->parent, -1, buf, len);
        if (n && n + 1 < len) buf[n++] = '/';
        if (sc->pk >= 0) {
            n = put_dec(buf, n, len, (uint64_t)sc->pk);
        } else {
            if (n + 1 < len) buf[n++] = 'c';
            n = put_dec(buf, n, len, sc->pnode);
        }
    }
    if (k >= 0) {
        if (n && n + 1 < len) buf[n++] = '/';
        n = put_dec(buf, n, len, (uint64_t)k);
    }
    buf[n] = 0;
    return n;
}

static void hist_index(sched *S, scope *sc, int64_t k, char *buf, size_t len) {
    (void)S;
    hist_index_at(sc, k, buf, len);
}

/* Fill a history record for instance r: idx and tmpl are buffers of len bytes. */
static void hist_prepare(sched *S, inst *r, rec_inst *ii, char *idx, char *tmpl, size_t len) {
    hist_index(S, r->sc, r->k, idx, len);
    inst_tmpl_at(S->p, r->sc, r->node, r->k >= 0, tmpl, len);
    memset(ii, 0, sizeof *ii);
    ii->node = r->node;
    ii->task = r->task;
    ii->idx = idx;
    ii->tmpl = tmpl;
    ii->out_dir = r->dir ? r->dir + strlen(r->dir) + 1 : NULL;
    ii->attempts = (int)r->attempt + (r->served ? 0 : 1);
    ii->has_key = r->has_key;
    ii->key = r->key;
}

static void record_failure(sched *S, scope *sc, uint32_t node, int64_t k, const flow_val *args,
                           const char *error) {
    const flow_plan *p = S->p;
    char idx[256], tmpl[700], name[1024];
    hist_index(S, sc, k, idx, sizeof idx);
    inst_tmpl_at(p, sc, node, k >= 0, tmpl, sizeof tmpl);
    state_inst_name(tmpl, NULL, idx, name, sizeof name);
    char *label = label_of(S, S->info[node].task, args);
    if (S->nfails == S->capfails) {
        S->capfails = S->capfails ? S->capfails * 2 : 16;
        S->fails = xrealloc(S->fails, S->capfails * sizeof *S->fails);
    }
    S->fails[S->nfails++] = (failure){xstrdup(name), label, xstrdup(error ? error : "failed"),
                                      p->nodes[node].loc, node, xstrdup(idx)};
}

/* Index paths in numeric order, component by component ("2" < "10", "1/9" < "1/10"). */
static int idx_cmp(const char *a, const char *b) {
    while (*a || *b) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la != lb) return la < lb ? -1 : 1;
        int c = memcmp(a, b, la);
        if (c) return c;
        a += la + (a[la] == '/');
        b += lb + (b[lb] == '/');
    }
    return 0;
}

/* The summary's order: by node (the plan's, dependency order), then by index. */
static int fail_cmp(const void *x, const void *y) {
    const failure *a = x, *b = y;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    int c = idx_cmp(a->idx, b->idx);
    return c ? c : strcmp(a->what, b->what);
}

static void print_summary(sched *S, int interrupted) {
    const flow_plan *p = S->p;
    FILE *f = S->err;
    if (S->nfails == 0 && !interrupted) {
        int any = S->nskipped_other > 0;
        for (uint32_t n = 0; n < p->n_nodes && !any; n++)
            any = S->skipped[n] > 0;
        if (!any) return;
    }
    if (interrupted)
        fprintf(f, "flowrun: interrupted: %" PRIu64 " of %" PRIu64 " instances finished\n", S->done,
                S->total);
    if (S->nfails)
        fprintf(f, "flowrun: %u instance%s failed:\n", S->nfails, S->nfails == 1 ? "" : "s");
    if (S->nfails > 1) qsort(S->fails, S->nfails, sizeof *S->fails, fail_cmp);
    for (uint32_t i = 0; i < S->nfails && i < SCHED_MAX_FAIL_LINES; i++) {
        const failure *F = &S->fails[i];
        char where[300] = "";
        if (F->loc < p->n_locs)
            snprintf(where, sizeof where, " (%s:%u:%u)", plan_str(p, p->source),
                     p->locs[F->loc].line, p->locs[F->loc].col);
        if (F->label)
            fprintf(f, "  %s \"%s\": %s%s\n", F->what, F->label, F->error, where);
        else
            fprintf(f, "  %s: %s%s\n", F->what, F->error, where);
    }
    if (S->nfails > SCHED_MAX_FAIL_LINES)
        fprintf(f, "  ... and %u more\n", S->nfails - SCHED_MAX_FAIL_LINES);
    for (uint32_t n = 0; n < p->n_nodes; n++) /* by binding (inside groups: all elements) */
        if (S->skipped[n])
            fprintf(f, "  %s: %" PRIu64 " instance%s not run (upstream failed)\n",
                    node_stem(p, n), S->skipped[n], S->skipped[n] == 1 ? "" : "s");
    if (S->nskipped_other)
        fprintf(f, "  %" PRIu64 " other step%s not run (upstream failed)\n", S->nskipped_other,
                S->nskipped_other == 1 ? "" : "s");
}

static void progress(sched *S, int final) {
    if (S->o->progress == SCHED_PROGRESS_NONE) return;
    double t = now_s();
    double every = S->o->progress == SCHED_PROGRESS_LIVE ? 0.1 : 2.0;
    if (!final && t - S->last_progress < every) return;
    S->last_progress = t;
    if (S->o->progress == SCHED_PROGRESS_LIVE) {
        /* The line must stay on one terminal row, or \r cannot take the cursor back
         * to its start and every redraw scrolls: the first form that fits the
         * width (read at each redraw, so a resized window is followed; one column
         * spare, as writing the last column wraps on some terminals), else the
         * shortest cut to fit. */
        char line[3][160];
        snprintf(line[0], sizeof line[0],
                 "%" PRIu64 "/%" PRIu64 " done, %d running, %" PRIu64 " failed, %" PRIu64
                 " cached, %.1fs",
                 S->done, S->total, S->running, S->failed, S->nserved_total, t - S->t0);
        snprintf(line[1], sizeof line[1], "%" PRIu64 "/%" PRIu64 " %d run %" PRIu64 " fail %.0fs",
                 S->done, S->total, S->running, S->failed, t - S->t0);
        snprintf(line[2], sizeof line[2], "%" PRIu64 "/%" PRIu64, S->done, S->total);
        struct winsize ws;
        size_t room = sizeof line[0] - 1;
        if (ioctl(fileno(S->err), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) room = ws.ws_col - 1u;
        int pick = 0;
        while (pick < 2 && strlen(line[pick]) > room) pick++;
        fprintf(S->err, "\r\033[K%.*s", (int)room, line[pick]);
        S->live_drawn = 1;
        if (final) {
            fputc('\n', S->err);
            S->live_drawn = 0;
        }
    } else if (!final || S->total > 0) {
        fprintf(S->err,
                "flowrun: %" PRIu64 "/%" PRIu64 " done, %d running, %" PRIu64 " failed, %" PRIu64
                " cached, %.1fs\n",
                S->done, S->total, S->running, S->failed, S->nserved_total, t - S->t0);
    }
    fflush(S->err);
}

/* ---- settling nodes and elements ---- */

static void try_open(sched *S, scope *sc, uint32_t node);
static void scope_finished(sched *S, scope *sc);

static int node_failed_for_scope(sched *S, uint32_t node, uint8_t failed) {
    return failed == FS_FAILED || (failed == FS_PARTIAL && !S->info[node].absorbs);
}

/* The node has its final value (or failed): tell its consumers. */
static void node_settle(sched *S, scope *sc, uint32_t node, uint8_t failed) {
    const flow_plan *p = S->p;
    slot *s = SL(sc, p, node);
    s->state = SL_DONE;
    s->failed = failed;
    if (node_failed_for_scope(S, node, failed)) sc->failed = 1;
    const node_info *I = &S->info[node];
    for (uint32_t e = 0; e < I->ncons; e++) {
        const sc_edge *E = &S->edges[I->first_cons + e];
        if (E->kind == EDGE_STREAM && s->opened) continue; /* told at open */
        slot *c = SL(sc, p, E->node);
        if (--c->nwait == 0 && c->state == SL_WAIT) try_open(S, sc, E->node);
    }
    if (--sc->pending == 0) scope_finished(S, sc);
}

static void release_elem(sched *S, scope *sc, uint32_t node, int64_t k, int ok);

/* Element k of an expansion finished: store it, release element-wise consumers. */
static void elem_settle(sched *S, scope *sc, uint32_t node, int64_t k, int ok, flow_val v) {
    const flow_plan *p = S->p;
    slot *s = SL(sc, p, node);
    if (ok) {
        if (s->val.o && !S->info[node].ret_void) fv_as_list(s->val)->items[k] = v;
        s->estate[k] = EL_OK;
    } else {
        s->estate[k] = EL_FAILED;
        s->nfailed++;
    }
    s->nsettled++;
    const node_info *I = &S->info[node];
    for (uint32_t e = 0; e < I->ncons; e++) {
        const sc_edge *E = &S->edges[I->first_cons + e];
        if (E->kind == EDGE_STREAM && SL(sc, p, E->node)->state == SL_OPEN)
            release_elem(S, sc, E->node, k, ok);
    }
    if (s->nsettled == s->len) node_settle(S, sc, node, s->nfailed ? FS_PARTIAL : FS_OK);
}

static void release_elem(sched *S, scope *sc, uint32_t node, int64_t k, int ok) {
    if (ok) {
        ready_push(S, sc, node, k, k + 1);
        return;
    }
    uint32_t t = S->info[node].task;
    if (t != PLAN_NONE) {
        S->skipped[node]++;
        S->done++; /* counted in total when the expansion opened */
    } else {
        S->nskipped_other++;
    }
    elem_settle(S, sc, node, k, 0, (flow_val){0});
}

/* A node that cannot run because a producer failed. */
static void node_upstream_failed(sched *S, scope *sc, uint32_t node) {
    uint32_t t = S->info[node].task;
    if (t != PLAN_NONE) {
        S->skipped[node]++;
        S->total++; /* one line in done/total, however many it would have had */
        S->done++;
    } else {
        S->nskipped_other++;
    }
    node_settle(S, sc, node, FS_FAILED);
}

/* A built-in or expansion that failed by itself (zip lengths, max_map, a lambda). */
static void node_error(sched *S, scope *sc, uint32_t node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Record a failure under node `as` (its name and position) and settle `node` as
 * failed: the same node but for a fused chain (see Fusion). */
static void node_fail_as(sched *S, scope *sc, uint32_t node, uint32_t as, const char *msg) {
    record_failure(S, sc, as, -1, NULL, msg);
    S->failed++;
    node_settle(S, sc, node, FS_FAILED);
}

static void node_error(sched *S, scope *sc, uint32_t node, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    node_fail_as(S, sc, node, node, msg);
}

/* Element k of an expansion could not start (a map's lambda failed on its input). */
static void elem_error(sched *S, scope *sc, uint32_t node, int64_t k, const char *err) {
    record_failure(S, sc, node, k, NULL, err);
    S->failed++;
    S->done++;
    if (S->p->nodes[node].kind == PN_CALL)
        node_settle(S, sc, node, FS_FAILED);
    else
        elem_settle(S, sc, node, k, 0, (flow_val){0});
}

/* ---- scopes ---- */

static scope *scope_new(sched *S, uint32_t graph, scope *parent, uint32_t pnode, int64_t pk,
                        flow_val *params /* consumed */) {
    const flow_plan *p = S->p;
    const plan_graph *G = &p->graphs[graph];
    scope *sc = xcalloc(1, sizeof *sc + G->nnodes * sizeof(slot));
    sc->graph = graph;
    sc->parent = parent;
    sc->pnode = pnode;
    sc->pk = pk;
    sc->level = parent ? parent->level + 1 : 0;
    sc->base = parent ? parent->base + S->info[pnode].depth + 1 : 0;
    sc->pending = G->nnodes;
    sc->params = params;
    for (uint32_t i = 0; i < G->nnodes; i++) {
        sc->slots[i].nwait = S->info[G->first_node + i].nwait0;
        sc->slots[i].len = -1;
    }
    return sc;
}

/* Open every node that waits for nothing (constants, parameters, ...). */
static void scope_start(sched *S, scope *sc) {
    const flow_plan *p = S->p;
    const plan_graph *G = &p->graphs[sc->graph];
    if (G->nnodes == 0) {
        scope_finished(S, sc);
        return;
    }
    for (uint32_t i = 0; i < G->nnodes; i++) {
        slot *s = &sc->slots[i];
        if (s->state == SL_WAIT && s->nwait == 0) try_open(S, sc, G->first_node + i);
    }
}

static void scope_free(sched *S, scope *sc) {
    const flow_plan *p = S->p;
    const plan_graph *G = &p->graphs[sc->graph];
    for (uint32_t i = 0; i < G->nnodes; i++) {
        slot *s = &sc->slots[i];
        fv_decref(p, p->nodes[G->first_node + i].type, s->val);
        free(s->estate);
    }
    for (uint32_t i = 0; i < G->nparams; i++)
        fv_decref(p, p->params[G->first_param + i].type, sc->params[i]);
    free(sc->params);
    free(sc);
}

/* Every node of sc settled: hand the result to the parent node. */
static void scope_finished(sched *S, scope *sc) {
    const flow_plan *p = S->p;
    if (!sc->parent) return; /* the flow: the main loop sees root->pending == 0 */
    const plan_graph *G = &p->graphs[sc->graph];
    int ok = !sc->failed && G->ret_node != PLAN_NONE ? SL(sc, p, G->ret_node)->failed == FS_OK
                                                     : !sc->failed;
    flow_val v = {0};
    if (ok && G->ret_node != PLAN_NONE) {
        v = SL(sc, p, G->ret_node)->val;
        fv_incref(p, p->nodes[G->ret_node].type, v);
    }
    scope *parent = sc->parent;
    uint32_t pnode = sc->pnode;
    int64_t pk = sc->pk;
    sc->next_dead = S->dead;
    S->dead = sc;
    if (pk >= 0) {
        elem_settle(S, parent, pnode, pk, ok, v);
    } else {
        slot *ps = SL(parent, p, pnode);
        ps->val = v;
        node_settle(S, parent, pnode, ok ? FS_OK : FS_FAILED);
    }
}

static void free_dead(sched *S) {
    while (S->dead) {
        scope *sc = S->dead;
        S->dead = sc->next_dead;
        scope_free(S, sc);
    }
}

/* ---- arguments ---- */

/* A producer's value as an argument: for a partially failed list read by an
 * all_done consumer, the successful elements only. New reference. */
static flow_val arg_whole(sched *S, scope *sc, uint32_t src) {
    const flow_plan *p = S->p;
    slot *s = SL(sc, p, src);
    uint32_t type = p->nodes[src].type;
    if (s->failed == FS_PARTIAL && s->estate && p->types[type].kind == PT_LIST) {
        fv_list *l = fv_as_list(s->val);
        uint32_t et = elem_type(p, type);
        int64_t nok = 0;
        for (int64_t i = 0; i < l->len; i++)
            nok += s->estate[i] == EL_OK;
        flow_val out = fv_list_new(p, type, nok);
        fv_list *o = fv_as_list(out);
        int64_t j = 0;
        for (int64_t i = 0; i < l->len; i++)
            if (s->estate[i] == EL_OK) {
                o->items[j++] = l->items[i];
                fv_incref(p, et, l->items[i]);
            }
        return out;
    }
    fv_incref(p, type, s->val);
    return s->val;
}

/* Length of axis `axis` of an EXPAND / GROUP_EXPAND node, and its list. */
static fv_list *axis_list(sched *S, scope *sc, const plan_node *N, uint32_t axis) {
    const flow_plan *p = S->p;
    for (uint32_t a = 0; a < N->nargs; a++) {
        const plan_arg *A = &p->args[N->first_arg + a];
        if (A->mode == PA_AXIS && A->aux == axis) return fv_as_list(SL(sc, p, A->node)->val);
    }
    return NULL;
}

/* Element of axis `axis` used by instance k (mixed radix, the first axis slowest). */
static int64_t axis_index(sched *S, scope *sc, const plan_node *N, uint32_t axis, int64_t k) {
    if (N->aux <= 1) return k;
    int64_t stride = 1;
    for (uint32_t b = N->aux; b-- > axis + 1;) {
        fv_list *l = axis_list(S, sc, N, b);
        stride *= l ? (l->len ? l->len : 1) : 1;
    }
    fv_list *l = axis_list(S, sc, N, axis);
    int64_t len = l && l->len ? l->len : 1;
    return (k / stride) % len;
}

static int lam_call(sched *S, uint32_t lam, const flow_val *args, flow_val *out, char *err,
                    size_t errlen);

/* Element k of node n, where n is the element-wise source src or a map over
 * (a map over ...) it: the maps' lambdas applied in the consumer. New reference. */
static int map_elem(sched *S, scope *sc, uint32_t n, uint32_t src, int64_t k, flow_val *out,
                    char *err, size_t errlen, int depth) {
    const flow_plan *p = S->p;
    if (n == src || depth > 64) {
        *out = fv_as_list(SL(sc, p, src)->val)->items[k];
        fv_incref(p, elem_type(p, p->nodes[src].type), *out);
        return 0;
    }
    const plan_node *M = &p->nodes[n];
    uint32_t inner = p->args[M->first_arg].node;
    flow_val in;
    if (map_elem(S, sc, inner, src, k, &in, err, errlen, depth + 1)) return -1;
    int rc = lam_call(S, M->ref, &in, out, err, errlen);
    fv_decref(p, elem_type(p, p->nodes[inner].type), in);
    return rc;
}

static void release_args(sched *S, uint32_t node, flow_val *args);

/* Fill out[0 .. nargs) for element k (-1: not mapped) of a task or group node.
 * New references. -1 with err when a map's lambda failed (nothing to release). */
static int build_args(sched *S, scope *sc, uint32_t node, int64_t k, flow_val *out, char *err,
                      size_t errlen) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    const node_info *I = &S->info[node];
    for (uint32_t i = 0; i < N->nargs; i++) {
        const plan_arg *A = &p->args[N->first_arg + i];
        slot *src = SL(sc, p, A->node);
        uint32_t st = p->nodes[A->node].type;
        int via_map =
            A->mode != PA_SCALAR && A->node == I->stream_arg && I->stream_arg != I->stream_src;
        switch (A->mode) {
            case PA_AXIS: {
                if (via_map) {
                    if (map_elem(S, sc, A->node, I->stream_src, k, &out[i], err, errlen, 0))
                        goto fail;
                    break;
                }
                fv_list *l = fv_as_list(src->val);
                out[i] = l->items[axis_index(S, sc, N, A->aux, k)];
                fv_incref(p, elem_type(p, st), out[i]);
                break;
            }
            case PA_FIELD: {
                uint32_t rt = elem_type(p, st);
                uint32_t ft = p->fields[p->types[rt].first + A->aux].type;
                if (via_map) {
                    flow_val row;
                    if (map_elem(S, sc, A->node, I->stream_src, k, &row, err, errlen, 0)) goto fail;
                    out[i] = fv_as_rec(row)->fields[A->aux];
                    fv_incref(p, ft, out[i]);
                    fv_decref(p, rt, row);
                    break;
                }
                fv_rec *r = fv_as_rec(fv_as_list(src->val)->items[k]);
                out[i] = r->fields[A->aux];
                fv_incref(p, ft, out[i]);
                break;
            }
            default:
                out[i] = arg_whole(S, sc, A->node);
        }
        continue;
    fail:
        /* release what was built: arguments i .. nargs are zero, harmless to release */
        for (uint32_t j = i; j < N->nargs; j++)
            out[j].i = 0;
        release_args(S, node, out);
        return -1;
    }
    return 0;
}

static void release_args(sched *S, uint32_t node, flow_val *args) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    for (uint32_t i = 0; i < N->nargs; i++) {
        const plan_arg *A = &p->args[N->first_arg + i];
        uint32_t st = p->nodes[A->node].type;
        uint32_t t = st;
        if (A->mode == PA_AXIS)
            t = elem_type(p, st);
        else if (A->mode == PA_FIELD)
            t = p->fields[p->types[elem_type(p, st)].first + A->aux].type;
        fv_decref(p, t, args[i]);
    }
}

/* ---- built-ins computed by the scheduler ---- */

/* The text of a lambda's run-time error: "msg (at line:col)". */
static void lam_error(const flow_plan *p, const expr_error *ee, char *err, size_t errlen) {
    if (ee->loc != PLAN_NONE && ee->loc < p->n_locs)
        snprintf(err, errlen, "%s (at %u:%u)", ee->msg, p->locs[ee->loc].line,
                 p->locs[ee->loc].col);
    else
        snprintf(err, errlen, "%s", ee->msg[0] ? ee->msg : "lambda failed");
}

static int lam_call(sched *S, uint32_t lam, const flow_val *args, flow_val *out, char *err,
                    size_t errlen) {
    expr_error ee;
    ee.loc = PLAN_NONE;
    ee.msg[0] = 0;
    if (expr_run(S->p, lam, args, out, &ee) == 0) return 0;
    lam_error(S->p, &ee, err, errlen);
    return -1;
}

typedef struct pathvec {
    char **v;      /* paths */
    size_t n, cap; /* count, capacity */
} pathvec;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under dir matching glob, through walk.c. The user's input tree:
 * symbolic links are followed (to files and folders; a dangling one is skipped,
 * a loop is an error), and an entry's type comes from readdir where the file
 * system gives it, so only links and unknown types cost a stat. */
typedef struct files_walk {
    const char *root; /* as given */
    const char *glob; /* the pattern */
    int by_path;      /* the glob has a '/': it matches the relative path */
    pathvec *out;     /* what was found */
} files_walk;

static int files_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    files_walk *fw = ctx;
    if (e->type != WALK_REG) return 0;
    if (fnmatch(fw->glob, fw->by_path ? e->rel : e->name, 0) != 0) return 0;
    pathvec *out = fw->out;
    if ((int64_t)out->n >= SCHED_MAX_LIST) {
        snprintf(err, errlen, "more than %lld files under '%s'", SCHED_MAX_LIST, fw->root);
        return -1;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->v = xrealloc(out->v, out->cap * sizeof *out->v);
    }
    size_t rn = strlen(fw->root), n = strlen(e->rel);
    char *full = xrealloc(NULL, rn + n + 2);
    memcpy(full, fw->root, rn);
    full[rn] = '/';
    memcpy(full + rn + 1, e->rel, n + 1);
    out->v[out->n++] = full;
    return 0;
}

static int walk_files(const char *root, const char *glob, pathvec *out, char *err, size_t errlen) {
    int fd = walk_open(AT_FDCWD, root, 1);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read folder '%.400s': %s", root, strerror(errno));
        return -1;
    }
    files_walk fw = {root, glob, strchr(glob, '/') != NULL, out};
    char what[512];
    snprintf(what, sizeof what, "'%.400s'", root);
    int rc = walk_tree(fd, what, WALK_FOLLOW, files_entry, &fw, err, errlen);
    close(fd);
    return rc;
}

/* ---- fusion ----
 * A chain range(n).map(f).filter(g)... consumed by one map, filter or len is run
 * by that consumer in one pass over the chain's source: each element goes through
 * the stages' lambdas in turn, and only the consumer's result is built (nothing at
 * all for len). The fused nodes (node_info.fused, chosen once per plan: the only
 * use of their value is as the list of the next stage) settle with an empty
 * placeholder list that nothing reads. A lambda that fails is reported under its
 * own stage (name and position) as before fusion; the consumer then settles as
 * failed, as it did when its producer failed. */

#define SCHED_MAX_STAGES 64 /* fused stages in one chain; longer chains are split */

static int range_bounds(sched *S, scope *sc, uint32_t node, int64_t *start, int64_t *count,
                        char *err, size_t errlen) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    const plan_arg *A = &p->args[N->first_arg];
    int64_t a = 0, b = SL(sc, p, A[0].node)->val.i;
    if (N->nargs >= 2) {
        a = SL(sc, p, A[0].node)->val.i;
        b = SL(sc, p, A[1].node)->val.i;
    }
    int64_t n = b > a ? b - a : 0;
    if (b > a && (b - a < 0 || n > SCHED_MAX_LIST)) {
        snprintf(err, errlen, "range(%" PRId64 ", %" PRId64 ") is too large (limit %lld)", a, b,
                 SCHED_MAX_LIST);
        return -1;
    }
    *start = a;
    *count = n;
    return 0;
}

/* Evaluate the fused chain ending at consumer `node` (a map, filter or len). 0 with
 * the consumer's value set, or -2: the failure is recorded and the node settled. */
static int fuse_eval(sched *S, scope *sc, uint32_t node) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    uint32_t stage[SCHED_MAX_STAGES]; /* innermost first once reversed */
    int ns = 0;
    if (N->kind != PN_LEN) stage[ns++] = node;
    uint32_t src = p->args[N->first_arg].node;
    while (S->info[src].fused && p->nodes[src].kind != PN_RANGE && ns < SCHED_MAX_STAGES) {
        stage[ns++] = src;
        src = p->args[p->nodes[src].first_arg].node;
    }
    for (int i = 0; i < ns / 2; i++) {
        uint32_t t = stage[i];
        stage[i] = stage[ns - 1 - i];
        stage[ns - 1 - i] = t;
    }
    char err[600];
    int64_t start = 0, n = 0;
    int is_range = S->info[src].fused && p->nodes[src].kind == PN_RANGE;
    flow_val in = {0};
    fv_list *l = NULL;
    if (is_range) {
        if (range_bounds(S, sc, src, &start, &n, err, sizeof err) != 0) { /* checked before */
            SL(sc, p, node)->val.i = 0;
            node_fail_as(S, sc, node, src, err);
            return -2;
        }
    } else {
        in = arg_whole(S, sc, src); /* successful elements only */
        l = fv_as_list(in);
        n = l->len;
    }
    uint32_t src_et = elem_type(p, p->nodes[src].type);
    expr_native native[SCHED_MAX_STAGES]; /* each stage's native code, or NULL */
    uint8_t heap[SCHED_MAX_STAGES + 1];   /* heap[k]: the values entering stage k are */
    heap[0] = (uint8_t)fv_is_heap(p, src_et);
    for (int k = 0; k < ns; k++) {
        const plan_node *G = &p->nodes[stage[k]];
        native[k] = jit_native(p, G->ref);
        heap[k + 1] = G->kind == PN_MAP ? (uint8_t)fv_is_heap(p, elem_type(p, G->type)) : heap[k];
    }
    flow_val outv = {0};
    fv_list *o = NULL;
    if (N->kind != PN_LEN) {
        outv = fv_list_new(p, N->type, n);
        o = fv_as_list(outv);
    }
    int64_t kept = 0;
    int failed_at = -1;
    int kns = 0;
    jit_kernel kern = is_range ? jit_range_kernel(p, node, &kns) : NULL;
    if (kern && kns == ns) { /* the whole chain as one native loop (scalars only) */
        expr_error ee;
        int32_t fs = 0;
        if (kern(start, n, &kept, o ? o->items : NULL, &fs, &ee) != 0) {
            lam_error(p, &ee, err, sizeof err);
            failed_at = fs;
        }
        n = 0; /* done */
    }
    for (int64_t i = 0; i < n && failed_at < 0; i++) {
        flow_val cur = is_range ? (flow_val){.i = start + i} : l->items[i];
        uint32_t ct = src_et;
        int own = 0, keep = 1, k = 0;
        for (; k < ns; k++) {
            const plan_node *G = &p->nodes[stage[k]];
            flow_val r;
            expr_error ee;
            if (native[k] ? native[k](&cur, &r, &ee) != 0
                          : lam_call(S, G->ref, &cur, &r, err, sizeof err) != 0) {
                if (native[k]) lam_error(p, &ee, err, sizeof err);
                failed_at = k;
                keep = 0;
                break;
            }
            if (G->kind == PN_MAP) {
                if (own && heap[k]) fv_decref(p, ct, cur);
                cur = r;
                own = 1;
                ct = elem_type(p, G->type);
            } else if (!r.i) {
                keep = 0;
                break;
            }
        }
        if (keep && o) {
            if (!own && heap[k]) fv_incref(p, ct, cur);
            o->items[kept] = cur;
            own = 0;
        }
        kept += keep;
        if (own && heap[k]) fv_decref(p, ct, cur);
    }
    if (!is_range) fv_decref(p, p->nodes[src].type, in);
    if (failed_at >= 0) {
        if (o) {
            o->len = kept;
            fv_decref(p, N->type, outv);
        }
        SL(sc, p, node)->val.i = 0;
        /* the later stages (and a len consumer) count as not run, as without fusion */
        S->nskipped_other += (uint64_t)(ns - 1 - failed_at) + (N->kind == PN_LEN);
        node_fail_as(S, sc, node, stage[failed_at], err);
        return -2;
    }
    slot *s = SL(sc, p, node);
    if (o) {
        o->len = kept; /* a filter keeps fewer; the rest stays allocated, unused */
        s->val = outv;
    } else {
        s->val.i = kept;
    }
    return 0;
}

/* Compute a built-in node whose producers are all done and fine (or partial, for
 * map/filter). 0 with s->val set, or -1 with err. */
static int compute_builtin(sched *S, scope *sc, uint32_t node, char *err, size_t errlen) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    slot *s = SL(sc, p, node);
    const plan_arg *A = &p->args[N->first_arg];
#define ARGV(i) (SL(sc, p, A[i].node)->val)
    switch (N->kind) {
        case PN_CONST:
            s->val = fv_from_const(p, N->aux);
            return 0;
        case PN_PARAM:
            s->val = sc->params[N->aux];
            fv_incref(p, N->type, s->val);
            return 0;
        case PN_RANGE: {
            int64_t a, n;
            if (range_bounds(S, sc, node, &a, &n, err, errlen) != 0) return -1;
            s->val = fv_list_new(p, N->type, S->info[node].fused ? 0 : n);
            if (S->info[node].fused) return 0; /* its consumer iterates a .. a+n */
            fv_list *l = fv_as_list(s->val);
            for (int64_t i = 0; i < n; i++)
                l->items[i].i = a + i;
            return 0;
        }
        case PN_ZIP: {
            int64_t n = -1;
            for (uint32_t i = 0; i < N->nargs; i++) {
                int64_t li = fv_as_list(ARGV(i))->len;
                if (n >= 0 && li != n) {
                    snprintf(err, errlen,
                             "lists have different lengths (%" PRId64 " and %" PRId64 ")", n, li);
                    return -1;
                }
                n = li;
            }
            if (n < 0) n = 0;
            uint32_t rt = elem_type(p, N->type);
            const plan_type *R = &p->types[rt];
            s->val = fv_list_new(p, N->type, n);
            fv_list *l = fv_as_list(s->val);
            for (int64_t k = 0; k < n; k++) {
                flow_val r = fv_rec_new(p, rt);
                for (uint32_t f = 0; f < N->nargs && f < R->n; f++) {
                    flow_val v = fv_as_list(ARGV(f))->items[k];
                    fv_incref(p, p->fields[R->first + f].type, v);
                    fv_as_rec(r)->fields[f] = v;
                }
                l->items[k] = r;
            }
            return 0;
        }
        case PN_FILES: {
            pathvec pv = {0};
            const char *dir = fv_as_str(ARGV(0))->data;
            const char *glob = N->nargs > 1 ? fv_as_str(ARGV(1))->data : "*";
            if (walk_files(dir, glob, &pv, err, errlen) != 0) {
                for (size_t i = 0; i < pv.n; i++)
                    free(pv.v[i]);
                free(pv.v);
                return -1;
            }
            if (pv.n) qsort(pv.v, pv.n, sizeof *pv.v, cmp_str);
            uint32_t et = elem_type(p, N->type);
            s->val = fv_list_new(p, N->type, (int64_t)pv.n);
            for (size_t i = 0; i < pv.n; i++) {
                fv_as_list(s->val)->items[i] = fv_str_cstr(p, et, pv.v[i]);
                free(pv.v[i]);
            }
            free(pv.v);
            return 0;
        }
        case PN_FLATTEN: {
            fv_list *outer = fv_as_list(ARGV(0));
            uint32_t et = elem_type(p, N->type);
            int64_t n = 0;
            for (int64_t i = 0; i < outer->len; i++)
                n += fv_as_list(outer->items[i])->len;
            s->val = fv_list_new(p, N->type, n);
            int64_t j = 0;
            for (int64_t i = 0; i < outer->len; i++) {
                fv_list *in = fv_as_list(outer->items[i]);
                for (int64_t m = 0; m < in->len; m++) {
                    fv_incref(p, et, in->items[m]);
                    fv_as_list(s->val)->items[j++] = in->items[m];
                }
            }
            return 0;
        }
        case PN_LEN:
            if (S->info[A[0].node].fused) return fuse_eval(S, sc, node);
            s->val.i = fv_as_list(ARGV(0))->len;
            return 0;
        case PN_LIST: {
            uint32_t et = elem_type(p, N->type);
            s->val = fv_list_new(p, N->type, N->nargs);
            for (uint32_t i = 0; i < N->nargs; i++) {
                flow_val v = ARGV(i);
                fv_incref(p, et, v);
                fv_as_list(s->val)->items[i] = v;
            }
            return 0;
        }
        case PN_RECORD: {
            const plan_type *R = &p->types[N->type];
            s->val = fv_rec_new(p, N->type);
            for (uint32_t i = 0; i < N->nargs && i < R->n; i++) {
                flow_val v = ARGV(i);
                fv_incref(p, p->fields[R->first + i].type, v);
                fv_as_rec(s->val)->fields[i] = v;
            }
            return 0;
        }
        case PN_MAP:
        case PN_FILTER: {
            if (S->info[node].fused) {
                s->val = fv_list_new(p, N->type, 0); /* its consumer runs its lambda */
                return 0;
            }
            if (S->info[A[0].node].fused) return fuse_eval(S, sc, node);
            flow_val in = arg_whole(S, sc, A[0].node); /* successful elements only */
            fv_list *l = fv_as_list(in);
            uint32_t it = elem_type(p, p->nodes[A[0].node].type);
            flow_val outv = fv_list_new(p, N->type, l->len);
            fv_list *o = fv_as_list(outv);
            int64_t j = 0;
            int rc = 0;
            for (int64_t i = 0; i < l->len; i++) {
                flow_val r;
                if (lam_call(S, N->ref, &l->items[i], &r, err, errlen) != 0) {
                    rc = -1;
                    break;
                }
                if (N->kind == PN_MAP) {
                    o->items[j++] = r;
                } else if (r.i) {
                    fv_incref(p, it, l->items[i]);
                    o->items[j++] = l->items[i];
                }
            }
            o->len = j; /* a filter keeps fewer; the rest stays allocated, unused */
            fv_decref(p, p->nodes[A[0].node].type, in);
            if (rc) {
                fv_decref(p, N->type, outv);
                return -1;
            }
            s->val = outv;
            return 0;
        }
        default:
            snprintf(err, errlen, "node kind %u is not a built-in", N->kind);
            return -1;
    }
#undef ARGV
}

/* ---- opening a node: all its dependencies have settled ---- */

static int64_t max_map_of(sched *S, uint32_t node) {
    const plan_node *N = &S->p->nodes[node];
    int64_t m = 0;
    if (N->kind == PN_EXPAND || N->kind == PN_EXPAND_KWARGS) m = S->p->tasks[N->ref].max_map;
    if (m <= 0) m = S->o->max_map > 0 ? S->o->max_map : SCHED_DEFAULT_MAX_MAP;
    return m;
}

/* Length known: allocate the result, tell element-wise consumers, release work. */
static void open_expansion(sched *S, scope *sc, uint32_t node, int64_t len) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    const node_info *I = &S->info[node];
    slot *s = SL(sc, p, node);
    int64_t limit = max_map_of(S, node);
    if (len > limit) {
        const char *name = N->kind == PN_GROUP_EXPAND ? plan_str(p, p->graphs[N->ref].name)
                                                      : plan_str(p, p->tasks[N->ref].name);
        node_error(S, sc, node,
                   "'%s' would expand to %" PRId64 " instances, more than max_map %" PRId64, name,
                   len, limit);
        return;
    }
    s->len = len;
    s->estate = xcalloc((size_t)(len ? len : 1), 1);
    if (p->types[N->type].kind == PT_LIST) s->val = fv_list_new(p, N->type, len);
    if (N->kind != PN_GROUP_EXPAND) S->total += (uint64_t)len;
    s->opened = 1;
    /* element-wise consumers may open now */
    for (uint32_t e = 0; e < I->ncons; e++) {
        const sc_edge *E = &S->edges[I->first_cons + e];
        if (E->kind != EDGE_STREAM) continue;
        slot *c = SL(sc, p, E->node);
        if (--c->nwait == 0 && c->state == SL_WAIT) try_open(S, sc, E->node);
    }
    if (len == 0) {
        node_settle(S, sc, node, FS_OK);
        return;
    }
    if (I->stream_src != PLAN_NONE) {
        /* release the elements of the source that are already finished */
        slot *src = SL(sc, p, I->stream_src);
        for (int64_t k = 0; k < len && s->state == SL_OPEN; k++)
            if (src->estate[k] != EL_PENDING) release_elem(S, sc, node, k, src->estate[k] == EL_OK);
    } else {
        ready_push(S, sc, node, 0, len);
    }
}

static void try_open(sched *S, scope *sc, uint32_t node) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    const node_info *I = &S->info[node];
    slot *s = SL(sc, p, node);
    s->state = SL_OPEN;
    /* did a producer fail? */
    int upfail = 0;
    for (uint32_t a = 0; a < N->nargs && !upfail; a++) {
        const plan_arg *A = &p->args[N->first_arg + a];
        slot *ps = SL(sc, p, A->node);
        if (A->node == I->stream_arg && A->mode != PA_SCALAR) {
            ps = SL(sc, p, I->stream_src);
            upfail = ps->state == SL_DONE && ps->failed == FS_FAILED;
        } else if (ps->failed == FS_FAILED) {
            upfail = 1;
        } else if (ps->failed == FS_PARTIAL) {
            upfail = !(I->all_done || N->kind == PN_MAP || N->kind == PN_FILTER);
        }
    }
    for (uint32_t a = 0; a < N->nafter && !upfail; a++) {
        slot *ps = SL(sc, p, p->afters[N->first_after + a]);
        if (ps->failed != FS_OK && !I->all_done) upfail = 1;
    }
    if (upfail) {
        node_upstream_failed(S, sc, node);
        return;
    }
    char err[600];
    switch (N->kind) {
        case PN_CALL:
            S->total++;
            ready_push(S, sc, node, 0, 1);
            return;
        case PN_GROUP_CALL: {
            const plan_graph *G = &p->graphs[N->ref];
            if (sc->level + 1 >= SCHED_MAX_NESTING) {
                node_error(S, sc, node, "groups nested deeper than %d", SCHED_MAX_NESTING);
                return;
            }
            flow_val *params = xcalloc(G->nparams, sizeof *params);
            if (build_args(S, sc, node, -1, params, err, sizeof err) != 0) {
                free(params);
                node_error(S, sc, node, "%s", err);
                return;
            }
            scope *child = scope_new(S, N->ref, sc, node, -1, params);
            scope_start(S, child);
            return;
        }
        case PN_EXPAND:
        case PN_GROUP_EXPAND: {
            if (N->kind == PN_GROUP_EXPAND && sc->level + 1 >= SCHED_MAX_NESTING) {
                node_error(S, sc, node, "groups nested deeper than %d", SCHED_MAX_NESTING);
                return;
            }
            int64_t len = 1;
            if (I->stream_src != PLAN_NONE) {
                len = SL(sc, p, I->stream_src)->len;
            } else {
                for (uint32_t ax = 0; ax < N->aux; ax++) {
                    fv_list *l = axis_list(S, sc, N, ax);
                    int64_t n = l ? l->len : 0;
                    if (n != 0 && len > INT64_MAX / n)
                        len = INT64_MAX;
                    else
                        len *= n;
                }
            }
            open_expansion(S, sc, node, len);
            return;
        }
        case PN_EXPAND_KWARGS: {
            int64_t len = 0;
            for (uint32_t a = 0; a < N->nargs; a++) {
                const plan_arg *A = &p->args[N->first_arg + a];
                if (A->mode == PA_FIELD) {
                    slot *ps = SL(sc, p, A->node);
                    len = A->node == I->stream_arg ? SL(sc, p, I->stream_src)->len
                                                   : fv_as_list(ps->val)->len;
                    break;
                }
            }
            open_expansion(S, sc, node, len);
            return;
        }
        default:
            break;
    }
    int partial_in = 0;
    if (N->kind == PN_MAP || N->kind == PN_FILTER) {
        if (I->ncons == 0 && !I->is_ret) { /* read only element by element, in consumers */
            node_settle(S, sc, node, FS_OK);
            return;
        }
        partial_in = SL(sc, p, p->args[N->first_arg].node)->failed == FS_PARTIAL;
    }
    int rc = compute_builtin(S, sc, node, err, sizeof err);
    if (rc == -2) { /* a fused chain failed: recorded under its stage */
        s->val.i = 0;
        return;
    }
    if (rc != 0) {
        s->val.i = 0;
        node_error(S, sc, node, "%s", err);
        return;
    }
    node_settle(S, sc, node, partial_in ? FS_PARTIAL : FS_OK);
}

/* ---- instances ---- */

static inst *rec_at(sched *S, uint32_t id) {
    return &S->chunks[id / SCHED_CHUNK][id % SCHED_CHUNK];
}

static uint32_t rec_alloc(sched *S) {
    if (!S->free_head) {
        S->chunks = xrealloc(S->chunks, (S->nchunks + 1) * sizeof *S->chunks);
        inst *c = xcalloc(SCHED_CHUNK, sizeof *c);
        S->chunks[S->nchunks] = c;
        uint32_t base = S->nchunks * SCHED_CHUNK;
        for (uint32_t i = 0; i < SCHED_CHUNK; i++)
            c[i].next_free = (i + 1 < SCHED_CHUNK) ? base + i + 2 : 0;
        S->free_head = base + 1;
        S->nchunks++;
    }
    uint32_t id = S->free_head - 1;
    S->free_head = rec_at(S, id)->next_free;
    return id;
}

/* Remove the queued instance folders that are empty now (out/ first), through
 * descriptors (fsdir.h, walk.c): a link a task left there is removed, never followed. */
#define SCHED_GONE_BATCH 1024
static void gone_flush(sched *S) {
    for (size_t i = 0; i < S->ngone; i++) {
        const char *rel = S->gone[i].dir + strlen(S->o->work_dir) + 1;
        int fd = S->work_fd >= 0 ? fsdir_sub(S->work_fd, rel, 0) : -1;
        if (fd >= 0) {
            if (S->gone[i].clean) walk_remove(fd, "out");
            else unlinkat(fd, "out", AT_REMOVEDIR);
            close(fd);
            unlinkat(S->work_fd, rel, AT_REMOVEDIR); /* only when empty */
        }
        free(S->gone[i].dir);
    }
    S->ngone = 0;
}

/* clean: the instance succeeded and the history stored its outputs, so what is
 * left in its out/ was never returned (a combine's intermediate file, say) */
static void rec_free_clean(sched *S, uint32_t id, int clean) {
    inst *r = rec_at(S, id);
    if (r->args != r->inl) free(r->args);
    if (r->dir) {
        /* scratch space goes now; out/ and the folder when empty (the outputs were
         * moved into the store), a batch at a time rather than one by one between
         * the store's fsyncs */
        int fd = S->work_fd >= 0 ? fsdir_sub(S->work_fd, r->dir + strlen(S->o->work_dir) + 1, 0)
                                 : -1;
        if (fd >= 0) {
            walk_remove(fd, "scratch");
            close(fd);
        }
        if (S->ngone == S->capgone) {
            S->capgone = S->capgone ? S->capgone * 2 : 64;
            S->gone = xrealloc(S->gone, S->capgone * sizeof *S->gone);
        }
        S->gone[S->ngone].dir = r->dir;
        S->gone[S->ngone++].clean = clean;
        if (S->ngone >= SCHED_GONE_BATCH) gone_flush(S);
    }
    r->dir = NULL;
    r->args = NULL;
    r->next_free = S->free_head;
    S->free_head = id + 1;
}

static void rec_free(sched *S, uint32_t id) {
    rec_free_clean(S, id, 0);
}

static int type_has_files(const flow_plan *p, uint32_t t, int depth) {
    const plan_type *T = &p->types[t];
    if (depth > 32) return 0;
    switch (T->kind) {
        case PT_PATH:
        case PT_DIR:
            return 1;
        case PT_LIST:
            return type_has_files(p, T->elem, depth + 1);
        case PT_RECORD:
            for (uint32_t i = 0; i < T->n; i++)
                if (type_has_files(p, p->fields[T->first + i].type, depth + 1)) return 1;
            return 0;
        default:
            return 0;
    }
}

/* Tasks that may write files get an instance folder: out/ and scratch/. */
static int task_needs_dir(const flow_plan *p, uint32_t t) {
    const plan_task *T = &p->tasks[t];
    return T->kind != TK_C || T->retries > 0 || type_has_files(p, T->ret, 0);
}

/* r->dir = "<folder>\0<folder>/out\0<folder>/scratch\0", the three made on disk below
 * the work folder through descriptors (fsdir.h), so a link planted there is refused.
 * 0, or -1 with a one-line reason in err. */
static int make_inst_dir(sched *S, inst *r, uint64_t id, char *err, size_t errlen) {
    if (!S->work_made) {
        S->work_fd = fsdir_open(S->o->work_dir, S->o->work_root_len, 1);
        S->work_made = 1;
        if (S->work_fd < 0) S->work_errno = errno;
    }
    char name[256];
    snprintf(name, sizeof name, "%s-%" PRId64 "-%" PRIu64,
             plan_str(S->p, S->p->tasks[r->task].name), r->k, id);
    int fd = -1, e = S->work_errno;
    if (S->work_fd >= 0) {
        fd = fsdir_sub(S->work_fd, name, 1);
        int o = fd < 0 ? -1 : fsdir_sub(fd, "out", 1);
        int sc = o < 0 ? -1 : fsdir_sub(fd, "scratch", 1);
        e = errno;
        if (o >= 0) close(o);
        if (sc >= 0) close(sc);
        if (fd >= 0) close(fd);
        if (sc < 0) fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot make its work folder %s/%s: %s", S->o->work_dir, name,
                 strerror(e));
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", S->o->work_dir, name);
    size_t n = strlen(dir);
    char *b = xrealloc(NULL, 3 * n + 16);
    memcpy(b, dir, n + 1);
    char *o = b + n + 1;
    snprintf(o, n + 5, "%s/out", dir);
    char *sc = o + n + 5;
    snprintf(sc, n + 9, "%s/scratch", dir);
    r->dir = b;
    return 0;
}

static void flush_batch(sched *S) {
    if (S->nbatch == 0) return;
    S->ex->ops->submit(S->ex, S->batch, S->nbatch);
    S->nbatch = 0;
}

static void queue_job(sched *S, uint32_t id) {
    inst *r = rec_at(S, id);
    if (S->nbatch == SCHED_BATCH) flush_batch(S);
    rt_job *j = &S->batch[S->nbatch++];
    j->id = id;
    j->task = r->task;
    j->map_index = r->k;
    j->args = r->args;
    j->out_dir = NULL;
    j->scratch_dir = NULL;
    if (r->dir) {
        j->out_dir = r->dir + strlen(r->dir) + 1;
        j->scratch_dir = j->out_dir + strlen(j->out_dir) + 1;
    }
    j->timeout_ms = S->p->tasks[r->task].timeout_ms;
    j->attempt = r->attempt;
    S->running++;
    S->running_task[r->task]++;
    S->attempts++;
}

/* Start element k of a task node (or make the scope of a group element). */
static void start_one(sched *S, scope *sc, uint32_t node, int64_t k) {
    const flow_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    char err[600];
    if (N->kind == PN_GROUP_EXPAND) {
        const plan_graph *G = &p->graphs[N->ref];
        flow_val *params = xcalloc(G->nparams, sizeof *params);
        if (build_args(S, sc, node, k, params, err, sizeof err) != 0) {
            free(params);
            elem_error(S, sc, node, k, err);
            return;
        }
        scope *child = scope_new(S, N->ref, sc, node, k, params);
        scope_start(S, child);
        return;
    }
    uint32_t id = rec_alloc(S);
    inst *r = rec_at(S, id);
    r->sc = sc;
    r->node = node;
    r->task = N->ref;
    r->k = N->kind == PN_CALL ? -1 : k;
    r->attempt = 0;
    r->nargs = N->nargs;
    r->args = N->nargs <= SCHED_INLINE_ARGS ? r->inl : xcalloc(N->nargs, sizeof(flow_val));
    if (build_args(S, sc, node, k, r->args, err, sizeof err) != 0) {
        rec_free(S, id);
        elem_error(S, sc, node, r->k, err);
        return;
    }
    r->served = 0;
    r->has_key = 0;
    if (S->o->rec) { /* the cache executor asks the recorder first; a miss gets its
                      * folder then (rec_looked_up): a served instance never has one */
        queue_job(S, id);
        return;
    }
    if (S->o->work_dir && task_needs_dir(p, r->task) && make_inst_dir(S, r, id, err, sizeof err)) {
        rec_free(S, id);
        elem_error(S, sc, node, r->k, err);
        return;
    }
    queue_job(S, id);
}

/* The cache executor's questions (exec_cache.h). Describe instance job->id for the
 * recorder's lookup. */
static void rec_describe(void *ud, const rt_job *job, rec_inst *ii, char *idx, char *tmpl,
                         size_t len) {
    sched *S = ud;
    inst *r = rec_at(S, (uint32_t)job->id);
    hist_prepare(S, r, ii, idx, tmpl, len);
    int64_t n = r->k < 0 ? -1 : SL(r->sc, S->p, r->node)->len;
    ii->remaining = n > r->k ? n - r->k : 1; /* lets the history preload a task's cache */
}

/* Its answer: keep the key; an answered instance holds no worker (nor a place in its
 * task's concurrency) until its result is completed; a miss gets its folder now. */
static int rec_looked_up(void *ud, rt_job *job, const rec_inst *ii, int hit, char *err,
                         size_t errlen) {
    sched *S = ud;
    uint32_t id = (uint32_t)job->id;
    inst *r = rec_at(S, id);
    r->has_key = (uint8_t)ii->has_key;
    r->key = ii->key;
    if (!hit && S->o->work_dir && task_needs_dir(S->p, r->task)) {
        if (make_inst_dir(S, r, id, err, errlen) == 0) {
            job->out_dir = r->dir + strlen(r->dir) + 1;
            job->scratch_dir = job->out_dir + strlen(job->out_dir) + 1;
            return 0;
        }
        r->served = 2; /* failed without running, not retried, not recorded */
    } else if (!hit) {
        return 0;
    } else {
        r->served = 1; /* hit < 0 (a damaged stored input) too: failed, not retried */
    }
    S->nserved_pending++;
    S->running_task[r->task]--;
    return r->served == 2 ? -1 : 0;
}

/* Take ready work while there is capacity. Jobs the recorder answers take none:
 * with a recorder, a full batch is handed over (and looked up) before giving up,
 * but no more than SCHED_SERVE_ROUND answers wait to be completed at once. */
static void fill(sched *S) {
    const flow_plan *p = S->p;
    deque *d;
    for (;;) {
        if (S->running - (int64_t)S->nserved_pending >= S->limit ||
            S->nserved_pending >= SCHED_SERVE_ROUND) {
            if (!S->o->rec || !S->nbatch) break;
            flush_batch(S);
            continue;
        }
        if (!(d = ready_pick(S))) break;
        entry *e = dq_front(d);
        uint32_t t = S->info[e->node].task;
        if (t != PLAN_NONE && p->tasks[t].concurrency &&
            S->running_task[t] >= p->tasks[t].concurrency) {
            if (S->o->rec && S->nbatch) { /* answered ones give their place back */
                flush_batch(S);
                continue;
            }
            dq_push(&S->blocked[t], *e); /* back when one of its instances finishes */
            dq_pop(d);
            continue;
        }
        scope *sc = e->sc;
        uint32_t node = e->node;
        int64_t k = e->lo++;
        if (e->lo >= e->hi) dq_pop(d);
        start_one(S, sc, node, k);
    }
}

static void unblock(sched *S, uint32_t t) {
    deque *b = &S->blocked[t];
    while (b->n) {
        entry *e = dq_front(b);
        ready_push(S, e->sc, e->node, e->lo, e->hi);
        dq_pop(b);
    }
}

static void retry_push(sched *S, uint32_t id) {
    if (S->nretries == S->capretries) {
        S->capretries = S->capretries ? S->capretries * 2 : 16;
        S->retries = xrealloc(S->retries, S->capretries * sizeof *S->retries);
    }
    S->retries[S->nretries++] = id;
}

/* Re-queue instances whose retry delay has passed; the earliest pending due time. */
static double retries_due(sched *S, double t) {
    double next = 0;
    for (uint32_t i = 0; i < S->nretries;) {
        inst *r = rec_at(S, S->retries[i]);
        uint32_t conc = S->p->tasks[r->task].concurrency;
        if (r->due <= t && conc && S->running_task[r->task] >= conc) {
            /* due, but its task is at its concurrency: look again soon */
            if (next == 0 || t + 0.01 < next) next = t + 0.01;
            i++;
        } else if (r->due <= t) {
            queue_job(S, S->retries[i]);
            S->retries[i] = S->retries[--S->nretries];
        } else {
            if (next == 0 || r->due < next) next = r->due;
            i++;
        }
    }
    return next;
}

static void complete(sched *S, rt_result *res) {
    const flow_plan *p = S->p;
    uint32_t id = (uint32_t)res->id;
    inst *r = rec_at(S, id);
    const plan_task *T = &p->tasks[r->task];
    S->running--;
    if (r->served) S->nserved_pending--; /* its task's count went down when answered */
    else S->running_task[r->task]--;
    if (S->blocked[r->task].n) unblock(S, r->task);
    double dur = res->end - res->start;
    if (dur >= 0) S->mean_task = S->mean_task < 0 ? dur : 0.9 * S->mean_task + 0.1 * dur;
    if (!res->ok && !r->served && r->attempt < T->retries) {
        r->attempt++;
        r->due = now_s() + (double)T->retry_delay_ms / 1000.0;
        free(res->error);
        free(res->log);
        retry_push(S, id);
        return;
    }
    if (S->o->rec && r->served != 2) {
        char idx[1024], tmpl[1024];
        rec_inst ii;
        hist_prepare(S, r, &ii, idx, tmpl, sizeof idx);
        char *label = label_of(S, r->task, r->args);
        ii.label = label;
        S->o->rec->ops->finished(S->o->rec->self, &ii, r->args, res, r->served);
        free(label);
        if (r->served) S->nserved_total++;
    }
    scope *sc = r->sc;
    uint32_t node = r->node;
    int64_t k = r->k;
    int ok = res->ok;
    flow_val v = ok ? res->value : (flow_val){0};
    S->done++;
    if (!ok) {
        S->failed++;
        record_failure(S, sc, node, k, r->args, res->error);
    }
    free(res->error);
    free(res->log);
    release_args(S, node, r->args);
    rec_free_clean(S, id, ok && S->o->rec); /* a success's outputs are in the store */
    if (p->nodes[node].kind == PN_CALL) {
        if (ok && !S->info[node].ret_void) SL(sc, p, node)->val = v;
        node_settle(S, sc, node, ok ? FS_OK : FS_FAILED);
    } else {
        elem_settle(S, sc, node, k, ok, v);
    }
}

static void adapt_limit(sched *S) {
    int jobs = S->o->jobs > 0 ? S->o->jobs : 1;
    int factor = 1;
    if (S->mean_task >= 0 && S->mean_task < SCHED_FAST_TASK) {
        double f = SCHED_FAST_TASK / (S->mean_task > 1e-7 ? S->mean_task : 1e-7);
        factor = f > SCHED_MAX_FACTOR ? SCHED_MAX_FACTOR : (int)f;
        if (factor < 1) factor = 1;
    }
    S->limit = jobs * (factor + 1); /* + one queued per worker: no idle gap between tasks */
}

static void sched_free(sched *S) {
    if (S->work_made && S->work_fd >= 0) close(S->work_fd);
    free_dead(S);
    for (uint32_t c = 0; c < S->nchunks; c++)
        free(S->chunks[c]);
    free(S->chunks);
    for (uint32_t b = 0; b < S->nbuckets; b++)
        free(S->buckets[b].e);
    free(S->buckets);
    for (uint32_t t = 0; t < S->p->n_tasks; t++)
        free(S->blocked[t].e);
    free(S->blocked);
    free(S->running_task);
    free(S->skipped);
    free(S->retries);
    free(S->batch);
    free(S->results);
    for (uint32_t i = 0; i < S->nfails; i++) {
        free(S->fails[i].what);
        free(S->fails[i].label);
        free(S->fails[i].error);
        free(S->fails[i].idx);
    }
    free(S->fails);
    free(S->info);
    free(S->edges);
    free(S->gdepth);
}

/* Abandoned instances (interrupt): release their records without results. */
static void drop_inflight(sched *S) {
    for (uint32_t c = 0; c < S->nchunks; c++)
        for (uint32_t i = 0; i < SCHED_CHUNK; i++) {
            inst *r = &S->chunks[c][i];
            if (r->args) {
                release_args(S, r->node, r->args);
                if (r->args != r->inl) free(r->args);
                r->args = NULL;
                free(r->dir);
                r->dir = NULL;
            }
        }
}

/* Free the scopes still alive after an interrupt (the flow's and its children). */
static void free_live_scopes(sched *S, scope *root) {
    /* children are reachable only through instances and entries; collect from both */
    scope **list = NULL;
    size_t n = 0, cap = 0;
#define ADD(s)                                                                                     \
    do {                                                                                           \
        scope *s_ = (s);                                                                           \
        while (s_ && s_ != root) {                                                                 \
            size_t i_;                                                                             \
            for (i_ = 0; i_ < n && list[i_] != s_; i_++) {                                         \
            }                                                                                      \
            if (i_ < n) break;                                                                     \
            if (n == cap) list = xrealloc(list, (cap = cap ? cap * 2 : 16) * sizeof *list);        \
            list[n++] = s_;                                                                        \
            s_ = s_->parent;                                                                       \
        }                                                                                          \
    } while (0)
    for (uint32_t b = 0; b < S->nbuckets; b++)
        for (uint32_t i = 0; i < S->buckets[b].n; i++)
            ADD(S->buckets[b].e[(S->buckets[b].head + i) & (S->buckets[b].cap - 1)].sc);
    for (uint32_t t = 0; t < S->p->n_tasks; t++)
        for (uint32_t i = 0; i < S->blocked[t].n; i++)
            ADD(S->blocked[t].e[(S->blocked[t].head + i) & (S->blocked[t].cap - 1)].sc);
    for (uint32_t c = 0; c < S->nchunks; c++)
        for (uint32_t i = 0; i < SCHED_CHUNK; i++)
            if (S->chunks[c][i].args) ADD(S->chunks[c][i].sc);
#undef ADD
    /* deepest first so no parent is freed before its child is looked at */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (list[j]->level > list[i]->level) {
                scope *t = list[i];
                list[i] = list[j];
                list[j] = t;
            }
    drop_inflight(S);
    for (size_t i = 0; i < n; i++)
        scope_free(S, list[i]);
    free(list);
    scope_free(S, root);
}

int sched_run(const flow_plan *p, rt_executor *ex, uint32_t graph, const flow_val *params,
              const sched_opts *opts, sched_outcome *out) {
    sched st, *S = &st;
    memset(S, 0, sizeof *S);
    memset(out, 0, sizeof *out);
    rt_executor *cex = NULL; /* with a recorder: the cache executor around ex */
    if (opts->rec) {
        rt_cache_hooks hooks = {.describe = rec_describe, .looked_up = rec_looked_up, .ud = S};
        if (!(cex = rt_executor_cache(ex, p, opts->rec, &hooks))) {
            out->code = 2; /* out of memory: the context's sink says so */
            return out->code;
        }
        ex = cex;
    }
    S->p = p;
    S->ex = ex;
    S->o = opts;
    S->err = opts->err ? opts->err : stderr;
    S->mean_task = -1;
    S->pid = (int)getpid();
    S->t0 = now_s();
    S->last_progress = S->t0;
    analyse(S);
    S->blocked = xcalloc(p->n_tasks, sizeof *S->blocked);
    S->running_task = xcalloc(p->n_tasks, sizeof *S->running_task);
    S->skipped = xcalloc(p->n_nodes, sizeof *S->skipped);
    S->batch = xcalloc(SCHED_BATCH, sizeof *S->batch);
    S->results = xcalloc(SCHED_BATCH, sizeof *S->results);
    adapt_limit(S);

    const plan_graph *G = &p->graphs[graph];
    flow_val *pv = xcalloc(G->nparams, sizeof *pv);
    for (uint32_t i = 0; i < G->nparams; i++) {
        pv[i] = params[i];
        fv_incref(p, p->params[G->first_param + i].type, pv[i]);
    }
    scope *root = scope_new(S, graph, NULL, PLAN_NONE, -1, pv);
    S->root = root;
    scope_start(S, root);

    int interrupted = 0;
    /* the loop: start work while there is capacity, wait for completions, record them */
    while (root->pending > 0) {
        if (opts->stop && *opts->stop) {
            interrupted = 1;
            break;
        }
        double next_retry = S->nretries ? retries_due(S, now_s()) : 0;
        fill(S);
        flush_batch(S);
        free_dead(S);
        if (root->pending == 0) break;
        if (S->running == 0) {
            if (S->nretries == 0) {
                fprintf(S->err, "flowrun: internal error: nothing ready and %u steps pending\n",
                        root->pending);
                root->failed = 1;
                break;
            }
            double wait = next_retry - now_s();
            if (wait > SCHED_POLL_MS / 1000.0) wait = SCHED_POLL_MS / 1000.0;
            if (wait > 0) {
                struct timespec ts = {0, (long)(wait * 1e9)};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        int timeout = SCHED_POLL_MS;
        if (S->nretries) {
            double ms = (next_retry - now_s()) * 1000.0;
            if (ms < timeout) timeout = ms < 1 ? 1 : (int)ms;
        }
        int n = ex->ops->wait(ex, S->results, SCHED_BATCH, timeout);
        for (int i = 0; i < n; i++)
            complete(S, &S->results[i]);
        if (n && S->o->rec) /* queued before the next round acts on it (recorder.h) */
            S->o->rec->ops->queue_batch(S->o->rec->self);
        if (S->nserved_pending) { /* answers are waiting: complete them first */
            free_dead(S);
            continue;
        }
        adapt_limit(S);
        progress(S, 0);
    }
    progress(S, 1);
    print_summary(S, interrupted);

    out->n_instances = S->total;
    out->n_failed = S->failed;
    out->n_attempts = S->attempts;
    out->n_served = S->nserved_total;
    for (uint32_t n = 0; n < p->n_nodes; n++)
        out->n_skipped += S->skipped[n];
    out->n_ok = S->done - S->failed - out->n_skipped;
    if (interrupted) {
        out->code = 3;
        /* give running instances a moment; what is still running keeps its memory */
        double until = now_s() + 1.0;
        while (S->running > 0 && now_s() < until) {
            int n = ex->ops->wait(ex, S->results, SCHED_BATCH, SCHED_POLL_MS);
            for (int i = 0; i < n; i++) {
                rt_result *res = &S->results[i];
                inst *r = rec_at(S, (uint32_t)res->id);
                S->running--;
                if (res->ok && !S->info[r->node].ret_void)
                    fv_decref(p, p->tasks[r->task].ret, res->value);
                free(res->error);
                free(res->log);
                release_args(S, r->node, r->args);
                rec_free(S, (uint32_t)res->id);
            }
        }
        if (S->running == 0) free_live_scopes(S, root);
    } else {
        out->code = root->failed ? 1 : 0;
        if (!root->failed && G->ret_node != PLAN_NONE &&
            SL(root, p, G->ret_node)->failed == FS_OK) {
            out->has_result = 1;
            out->result = SL(root, p, G->ret_node)->val;
            fv_incref(p, p->nodes[G->ret_node].type, out->result);
        } else if (G->ret_node != PLAN_NONE && !root->failed) {
            out->code = 1;
        }
        free_dead(S);
        scope_free(S, root);
    }
    gone_flush(S);
    free(S->gone);
    if (S->work_made) rmdir(S->o->work_dir); /* the run's work folder, when nothing is left */
    sched_free(S);
    if (cex) cex->ops->destroy(cex); /* not ex's inner executor: the caller's */
    return out->code;
}
