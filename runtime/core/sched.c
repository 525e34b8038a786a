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
 *   waits for the scheduler and the order above is kept within one instance
 *   (tasks under SCHED_DEEP_TASK: as many queued as the executor asks, three
 *   for the process executor, which answers those in pairs);
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
 *
 *   Files. This file is the loop, the analysis of the plan, arguments and
 *   instance records; what the loop calls into lives next to it: scopes, slots
 *   and settling in sched_scope.c, the built-ins in sched_builtin.c, instance
 *   folders in sched_dirs.c, the structures they share in sched_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec_cache.h"
#include "expr.h"
#include "recorder.h"
#include "jit.h"
#include "sched_int.h"

#define SCHED_MAX_FACTOR 256   /* most jobs queued per executor slot for tiny tasks */
#define SCHED_BATCH 1024       /* most jobs handed to the executor at once */
#define SCHED_SERVE_ROUND 8192 /* most instances served by the history in one round */
#define SCHED_FAST_TASK 200e-6 /* a task of this duration or longer: factor 1 */
#define SCHED_DEEP_TASK 5e-3   /* under this, the executor's own queue depth (rt_executor) */
#define SCHED_POLL_MS 100      /* longest wait before looking at the stop flag */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the meter (scheduler.h): one writer, this thread; plain moves ---- */

const double sched_meter_bounds[SCHED_METER_NBOUNDS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
    2.5,   5,      10,    30,   60,    300,  600, 1800, 3600};

#define M_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)
#define M_SET(c, v) atomic_store_explicit(&(c), (v), memory_order_relaxed)
#define M_ADD(c, d) M_SET(c, M_GET(c) + (d))

/* Instance of task t went to the executor (d = 1) or left it (d = -1). On the
 * path of every instance: S->mtask is checked once (it is set only when the meter
 * has a counter for each of the plan's tasks). */
static inline void meter_running(sched *S, uint32_t t, int d) {
    if (S->mtask) M_ADD(S->mtask[t].running, d);
}

/* Instances of task t that do not pass through complete() (t: PLAN_NONE, not a
 * task: nothing): known more became known; skipped of those known will not run (a
 * producer failed); failed could not start (elem_error). */
void sched_meter_count(sched *S, uint32_t t, uint64_t known, uint64_t skipped, uint64_t failed) {
    if (!S->mtask || t >= S->p->n_tasks) return;
    sched_task_meter *tm = &S->mtask[t];
    if (known) M_ADD(tm->known, known);
    if (skipped) M_ADD(tm->skipped, skipped);
    if (failed) M_ADD(tm->failed, failed);
}

/* An execution of an instance of tm's task took dur seconds. */
static inline void meter_duration(sched_task_meter *tm, double dur) {
    if (dur < 0) return;
    int b = 0;
    while (b < SCHED_METER_NBOUNDS && dur > sched_meter_bounds[b]) b++;
    M_ADD(tm->bucket[b], 1);
    M_SET(tm->seconds, M_GET(tm->seconds) + dur);
}

/* ---- static analysis ---- */

static uint32_t graph_depth(sched *S, uint32_t g, uint32_t guard);

static void analyse_graph(sched *S, uint32_t g, uint32_t guard) {
    const fl_plan *p = S->p;
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

/* Edges, stream sources, triggers and absorption for every node of the plan.
 * 0, or -1 when memory ran out (what was made is freed by sched_free). */
static int analyse(sched *S) {
    const fl_plan *p = S->p;
    uint32_t nn = p->n_nodes;
    S->info = sc_calloc(S, nn, sizeof *S->info);
    S->gdepth = sc_calloc(S, p->n_graphs, sizeof *S->gdepth);
    S->top_tmpl = sc_calloc(S, 2 * (size_t)nn, sizeof *S->top_tmpl);
    if (!S->info || !S->gdepth || !S->top_tmpl) return -1;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        S->gdepth[g] = UINT32_MAX;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        graph_depth(S, g, 0);

    /* facts per node; count consumers */
    uint32_t *ncons = sc_calloc(S, nn + 1, sizeof *ncons);
    if (!ncons) return -1;
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
    S->edges = sc_calloc(S, total, sizeof *S->edges);
    if (!S->edges) {
        sc_free(S, ncons);
        return -1;
    }
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
    sc_free(S, ncons);
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
    return 0;
}

/* ---- instance names, failures and the summary ---- */

/* A node's binding name: its `let` name, or (flowc names every call node) else the
 * name of what it runs, or its kind ("map"). */
const char *sched_node_stem(const fl_plan *p, uint32_t node) {
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
 * history records it and composes the name with the index path (plan_inst_name). */
static size_t inst_tmpl_at(const fl_plan *p, scope *sc, uint32_t node, int mapped, char *buf,
                           size_t len) {
    size_t n = 0;
    buf[0] = 0;
    if (sc && sc->parent) {
        n = inst_tmpl_at(p, sc->parent, sc->pnode, sc->pk >= 0, buf, len);
        if (sc->pk < 0) n = put_str(buf, n, len, "{}");
        n = put_str(buf, n, len, "/");
    }
    n = put_str(buf, n, len, sched_node_stem(p, node));
    if (mapped) n = put_str(buf, n, len, "[]");
    return n;
}

/* The label lambda's text for an instance of task t (sc_free it), or NULL. */
static char *label_of(sched *S, uint32_t t, const fl_val *args) {
    const fl_plan *p = S->p;
    char *label = NULL;
    if (t != PLAN_NONE && args && p->tasks[t].label != PLAN_NONE) {
        fl_val lv;
        expr_error ee;
        memset(&ee, 0, sizeof ee);
        uint32_t lam = p->tasks[t].label;
        if (expr_run(p, lam, args, &lv, &ee) == 0) {
            uint32_t rt = p->lambdas[lam].ret;
            if (fv_is_heap(p, rt) && p->types[rt].kind != PT_LIST &&
                p->types[rt].kind != PT_RECORD && p->types[rt].kind != PT_BYTES)
                label = sc_strdup(S, fv_as_str(lv)->data); /* NULL: no label */
            fv_decref(p, rt, lv);
        }
    }
    return label;
}

/* Append the decimal digits of v (>= 0) at buf[n]; returns the new length. */
static size_t put_dec(char *buf, size_t n, size_t len, uint64_t v) {
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[20];
    size_t k = sizeof tmp;
    while (v >= 100) { /* two digits a division: this runs for every instance, twice */
        memcpy(tmp + (k -= 2), pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) memcpy(tmp + (k -= 2), pairs + 2 * v, 2);
    else tmp[--k] = (char)('0' + v);
    size_t m = sizeof tmp - k;
    if (n + m >= len) m = n + 1 < len ? len - n - 1 : 0;
    memcpy(buf + n, tmp + k, m);
    n += m;
    buf[n] = 0;
    return n;
}

const char *rec_inst_idx(const rec_inst *ii, char *buf, size_t len) {
    if (ii->idx || !len) return ii->idx ? ii->idx : "";
    put_dec(buf, 0, len, ii->idx_k);
    return buf;
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

/* The name template of r: made in tmpl (len bytes), or, outside any group, made once
 * per node and kept (the same for all its instances). */
static const char *inst_tmpl(sched *S, const inst *r, char *tmpl, size_t len) {
    if (r->sc && r->sc->parent) {
        inst_tmpl_at(S->p, r->sc, r->node, r->k >= 0, tmpl, len);
        return tmpl;
    }
    size_t at = 2 * (size_t)r->node + (r->k >= 0);
    if (S->top_tmpl[at]) return S->top_tmpl[at];
    inst_tmpl_at(S->p, NULL, r->node, r->k >= 0, tmpl, len);
    S->top_tmpl[at] = sc_strdup(S, tmpl); /* NULL: the run ends (sched_oom) */
    return S->top_tmpl[at] ? S->top_tmpl[at] : tmpl;
}

/* Fill a history record for instance r: idx and tmpl are buffers of len bytes.
 * lazy: a plain map index is left as a number (idx NULL: the lookup and `finished`
 * calls, whose hot paths use the number; what needs the text, rec_inst_idx). */
static void hist_prepare(sched *S, inst *r, rec_inst *ii, char *idx, char *tmpl, size_t len,
                         int lazy) {
    /* every field set, none zeroed first: this runs for every instance */
    ii->label = NULL;
    ii->remaining = 0;
    ii->error = NULL;
    ii->idx = idx;
    ii->idx_is_k = 0;
    if (r->sc && r->sc->parent) hist_index(S, r->sc, r->k, idx, len);
    else if (r->k >= 0) {
        ii->idx_is_k = 1;
        ii->idx_k = (uint64_t)r->k;
        if (lazy) ii->idx = NULL;
        else put_dec(idx, 0, len, (uint64_t)r->k);
    } else idx[0] = 0;
    ii->node = r->node;
    ii->task = r->task;
    ii->tmpl = inst_tmpl(S, r, tmpl, len);
    ii->out_dir = r->dir ? r->dir + strlen(r->dir) + 1 : NULL;
    ii->attempts = (int)r->attempt + (r->served ? 0 : 1);
    ii->has_key = r->has_key;
    if (r->has_key) ii->key = r->key; /* (not read without has_key) */
}

void record_failure(sched *S, scope *sc, uint32_t node, int64_t k, const fl_val *args,
                    const char *error) {
    const fl_plan *p = S->p;
    char idx[256], tmpl[700], name[1024];
    hist_index(S, sc, k, idx, sizeof idx);
    inst_tmpl_at(p, sc, node, k >= 0, tmpl, sizeof tmpl);
    plan_inst_name(tmpl, NULL, idx, name, sizeof name);
    if (S->nfails == S->capfails) {
        uint32_t cap = S->capfails ? S->capfails * 2 : 16;
        failure *f = sc_reallocarray(S, S->fails, cap, sizeof *S->fails);
        if (!f) return; /* the run ends with code 2 (sched_oom) */
        S->fails = f;
        S->capfails = cap;
    }
    failure F = {sc_strdup(S, name), label_of(S, S->info[node].task, args),
                 sc_strdup(S, error ? error : "failed"), p->nodes[node].loc, node,
                 sc_strdup(S, idx)};
    if (!F.what || !F.error || !F.idx) {
        sc_free(S, F.what);
        sc_free(S, F.label);
        sc_free(S, F.error);
        sc_free(S, F.idx);
        return;
    }
    S->fails[S->nfails++] = F;
}

/* Tell the observer how far the run is (scheduler.h). */
static void report_progress(sched *S, int final) {
    sched_meter *m = S->o->meter;
    if (m) {
        M_SET(m->known, S->total);
        M_SET(m->finished, S->done);
        M_SET(m->running, S->running);
    }
    const sched_observer *obs = S->o->obs;
    if (!obs || !obs->on_progress) return;
    sched_counts c = {S->done, S->total, S->failed, S->nserved_total, S->running,
                      now_s() - S->t0};
    obs->on_progress(obs->ud, &c, final);
}

/* Tell the observer what failed and what was not run (scheduler.h); error: an
 * internal error that ended the run, or NULL. */
static void report_summary(sched *S, int interrupted, const char *error) {
    const sched_observer *obs = S->o->obs;
    if (!obs || !obs->on_summary) return;
    const fl_plan *p = S->p;
    uint32_t nskip = 0;
    for (uint32_t n = 0; n < p->n_nodes; n++)
        nskip += S->skipped[n] > 0;
    sched_failure *fl = sc_calloc(S, S->nfails, sizeof *fl);
    sched_skip *sk = sc_calloc(S, nskip, sizeof *sk);
    if (!fl || !sk) { /* memory ran out: the counts without the lists */
        sc_free(S, fl);
        sc_free(S, sk);
        sched_summary sum = {interrupted, S->done, S->total, NULL, 0, NULL, 0,
                             S->nskipped_other, error, p->ctx};
        obs->on_summary(obs->ud, &sum);
        return;
    }
    for (uint32_t i = 0; i < S->nfails; i++) {
        const failure *F = &S->fails[i];
        fl[i] = (sched_failure){F->what, F->label, F->error, {NULL, 0, 0}, F->node, F->idx};
        if (F->loc < p->n_locs)
            fl[i].loc = (fl_loc){plan_loc_file(p, F->loc), p->locs[F->loc].line,
                                 p->locs[F->loc].col};
    }
    sched_failures_order(fl, S->nfails);
    nskip = 0;
    for (uint32_t n = 0; n < p->n_nodes; n++) /* by binding (inside groups: all elements) */
        if (S->skipped[n]) sk[nskip++] = (sched_skip){sched_node_stem(p, n), S->skipped[n], n};
    sched_summary sum = {interrupted, S->done, S->total, fl, S->nfails, sk, nskip,
                         S->nskipped_other, error, p->ctx};
    obs->on_summary(obs->ud, &sum);
    sc_free(S, fl);
    sc_free(S, sk);
}

/* ---- arguments ---- */

/* A producer's value as an argument: for a partially failed list read by an
 * all_done consumer, the successful elements only. New reference; o == NULL when
 * memory ran out (sched_oom called). */
fl_val arg_whole(sched *S, scope *sc, uint32_t src) {
    const fl_plan *p = S->p;
    slot *s = SL(sc, p, src);
    uint32_t type = p->nodes[src].type;
    if (s->failed == FS_PARTIAL && s->estate && p->types[type].kind == PT_LIST) {
        fv_list *l = fv_as_list(s->val);
        uint32_t et = elem_type(p, type);
        int64_t nok = 0;
        for (int64_t i = 0; i < l->len; i++)
            nok += s->estate[i] == EL_OK;
        fl_val out = fv_list_new(p, type, nok);
        if (!out.o) {
            sched_oom(S); /* the run ends; callers see o == NULL (builtin_oom) */
            return out;
        }
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
    const fl_plan *p = S->p;
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

/* Element k of node n, where n is the element-wise source src or a map over
 * (a map over ...) it: the maps' lambdas applied in the consumer. New reference. */
static int map_elem(sched *S, scope *sc, uint32_t n, uint32_t src, int64_t k, fl_val *out,
                    char *err, size_t errlen, int depth) {
    const fl_plan *p = S->p;
    if (n == src || depth > 64) {
        *out = fv_as_list(SL(sc, p, src)->val)->items[k];
        fv_incref(p, elem_type(p, p->nodes[src].type), *out);
        return 0;
    }
    const plan_node *M = &p->nodes[n];
    uint32_t inner = p->args[M->first_arg].node;
    fl_val in;
    if (map_elem(S, sc, inner, src, k, &in, err, errlen, depth + 1)) return -1;
    int rc = lam_call(S, M->ref, &in, out, err, errlen);
    fv_decref(p, elem_type(p, p->nodes[inner].type), in);
    return rc;
}

static void release_args(sched *S, uint32_t node, fl_val *args);

/* Fill out[0 .. nargs) for element k (-1: not mapped) of a task or group node.
 * New references. -1 with err when a map's lambda failed (nothing to release). */
static int build_args(sched *S, scope *sc, uint32_t node, int64_t k, fl_val *out, char *err,
                      size_t errlen) {
    const fl_plan *p = S->p;
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
                    fl_val row;
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
                if (!out[i].o && fv_is_heap(p, st)) {
                    builtin_oom(S, err, errlen);
                    goto fail;
                }
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

static void release_args(sched *S, uint32_t node, fl_val *args) {
    const fl_plan *p = S->p;
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
    const fl_plan *p = S->p;
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
    s->estate = sc_calloc(S, (size_t)(len ? len : 1), 1);
    if (!s->estate) return; /* the run ends (sched_oom); the node stays open */
    if (p->types[N->type].kind == PT_LIST && !(s->val = fv_list_new(p, N->type, len)).o) {
        sched_oom(S); /* the run ends; the node stays open (scope_free frees estate) */
        return;
    }
    if (N->kind != PN_GROUP_EXPAND) {
        S->total += (uint64_t)len;
        sched_meter_count(S, S->info[node].task, (uint64_t)len, 0, 0);
    }
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

void try_open(sched *S, scope *sc, uint32_t node) {
    const fl_plan *p = S->p;
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
            upfail = S->o->dry_run || !(I->all_done || N->kind == PN_MAP || N->kind == PN_FILTER);
        }
    }
    for (uint32_t a = 0; a < N->nafter && !upfail; a++) {
        slot *ps = SL(sc, p, p->afters[N->first_after + a]);
        if (ps->failed != FS_OK && (!I->all_done || S->o->dry_run)) upfail = 1;
    }
    if (upfail) {
        node_upstream_failed(S, sc, node);
        return;
    }
    char err[600];
    switch (N->kind) {
        case PN_CALL:
            S->total++;
            sched_meter_count(S, S->info[node].task, 1, 0, 0);
            ready_push(S, sc, node, 0, 1);
            return;
        case PN_GROUP_CALL: {
            const plan_graph *G = &p->graphs[N->ref];
            if (sc->level + 1 >= SCHED_MAX_NESTING) {
                node_error(S, sc, node, "groups nested deeper than %d", SCHED_MAX_NESTING);
                return;
            }
            fl_val *params = sc_calloc(S, G->nparams, sizeof *params);
            if (!params) return; /* the run ends (sched_oom); the node stays open */
            if (build_args(S, sc, node, -1, params, err, sizeof err) != 0) {
                sc_free(S, params);
                if (!S->oom) node_error(S, sc, node, "%s", err); /* else it stays open */
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
        if (S->oom) return; /* the run ends (builtin_oom); the node stays open */
        node_error(S, sc, node, "%s", err);
        return;
    }
    node_settle(S, sc, node, partial_in ? FS_PARTIAL : FS_OK);
}

/* ---- instances ---- */

static inst *rec_at(sched *S, uint32_t id) {
    return &S->chunks[id / SCHED_CHUNK][id % SCHED_CHUNK];
}

/* One more chunk of records, not cleared: a record is cleared when it is first
 * handed out (rec_alloc), so the pages of a chunk a small run never reaches are
 * never touched (a page fault each, ≈ 11 µs here). 0, or -1 when memory ran out
 * (sched_oom). */
static int rec_grow(sched *S) {
    inst **cs = sc_reallocarray(S, S->chunks, S->nchunks + 1, sizeof *S->chunks);
    if (!cs) return -1;
    S->chunks = cs;
    inst *c = sc_reallocarray(S, NULL, SCHED_CHUNK, sizeof *c);
    if (!c) return -1;
    S->chunks[S->nchunks++] = c;
    S->fresh = 0;
    return 0;
}

/* A record: a freed one, else the next never used one of the last chunk. Never
 * fails: one is kept in reserve (the pool grows when the last chunk's last record
 * is taken; when it cannot, limit is 0 and no start follows). */
static uint32_t rec_alloc(sched *S) {
    uint32_t id;
    if (S->free_head) {
        id = S->free_head - 1;
        S->free_head = rec_at(S, id)->next_free;
        return id;
    }
    id = (S->nchunks - 1) * SCHED_CHUNK + S->fresh++;
    memset(rec_at(S, id), 0, sizeof(inst));
    if (S->fresh == SCHED_CHUNK) rec_grow(S);
    return id;
}

/* clean: the instance succeeded and the history stored its outputs, so what is
 * left in its out/ was never returned (a combine's intermediate file, say) */
static void rec_free_clean(sched *S, uint32_t id, int clean) {
    inst *r = rec_at(S, id);
    if (r->args != r->inl) args_release(S, r->args);
    if (r->dir) inst_dir_release(S, r, clean); /* sched_dirs.c */
    r->args = NULL;
    r->next_free = S->free_head;
    S->free_head = id + 1;
}

static void rec_free(sched *S, uint32_t id) {
    rec_free_clean(S, id, 0);
}


/* Hand the batch to the executor. When it cannot take it (out of memory: the
 * context says so; an executor takes all of a batch or none), the run ends
 * (sched_oom) and the batch's jobs count as never submitted: their records keep
 * their arguments, released by drop_inflight. */
static void flush_batch(sched *S) {
    if (S->nbatch == 0) return;
    int n = S->nbatch;
    S->nbatch = 0;
    if (S->ex->ops->submit(S->ex, S->batch, n) == 0) return;
    sched_oom(S);
    for (int i = 0; i < n; i++) {
        S->running--;
        S->running_task[S->batch[i].task]--;
        meter_running(S, S->batch[i].task, -1);
        S->attempts--;
    }
}

/* Durable before an effect (recorder.h): an instance of a task that is not cached
 * (`cache: false`: it acts on the world) starts only once every result recorded so
 * far is committed, those of the producers it reads among them; a flowrun killed
 * while it runs, or after, cannot lose them and run them again on resume against an
 * effect already done. Other instances start at once: their producers' rows are
 * queued in order, and the writer commits them grouped by time.
 * When the sync fails (a full disk, an I/O error: the recorder says so, once) the
 * effect does not start and the run ends with code 1 (S->rec_failed): the instance
 * keeps its record, whose arguments drop_inflight releases; what was committed
 * before stays, and the run can be resumed. -1 then, else 0. */
static int sync_before_effect(sched *S, uint32_t task) {
    if (!S->rec_unsynced || S->p->tasks[task].cache) return 0;
    if (S->o->rec->ops->sync(S->o->rec->self)) {
        S->rec_failed = 1;
        S->limit = 0;
        return -1;
    }
    S->rec_unsynced = 0;
    return 0;
}

static void queue_job(sched *S, uint32_t id) {
    inst *r = rec_at(S, id);
    if (S->nbatch == SCHED_BATCH) flush_batch(S);
    if (sync_before_effect(S, r->task)) return;
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
    meter_running(S, r->task, 1);
    S->attempts++;
}

/* Start element k of a task node (or make the scope of a group element). */
static void start_one(sched *S, scope *sc, uint32_t node, int64_t k) {
    const fl_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    char err[600];
    if (N->kind == PN_GROUP_EXPAND) {
        const plan_graph *G = &p->graphs[N->ref];
        fl_val *params = args_alloc(S, G->nparams);
        if (build_args(S, sc, node, k, params, err, sizeof err) != 0) {
            args_release(S, params);
            if (!S->oom) elem_error(S, sc, node, k, err); /* else the run ends, k unsettled */
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
    r->args = N->nargs <= SCHED_INLINE_ARGS ? r->inl : args_alloc(S, N->nargs);
    if (build_args(S, sc, node, k, r->args, err, sizeof err) != 0) {
        rec_free(S, id);
        if (!S->oom) elem_error(S, sc, node, r->k, err); /* else the run ends, k unsettled */
        return;
    }
    r->served = 0;
    r->has_key = 0;
    if (S->o->rec && S->look[r->task]) { /* the cache executor asks the recorder first;
                      * a miss gets its folder then (rec_looked_up): a served instance
                      * never has one */
        queue_job(S, id);
        return;
    }
    if (S->o->work_dir && S->needs_dir[r->task] && make_inst_dir(S, r, id, err, sizeof err)) {
        release_args(S, node, r->args);
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
    hist_prepare(S, r, ii, idx, tmpl, len, 1);
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
    if (!hit && S->mtask) M_ADD(S->mtask[r->task].missed, 1);
    if (!hit && S->o->work_dir && S->needs_dir[r->task]) {
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
    meter_running(S, r->task, -1);
    return r->served == 2 ? -1 : 0;
}

/* Take ready work while there is capacity. Jobs the recorder answers take none:
 * with a recorder, a full batch is handed over (and looked up) before giving up,
 * but no more than SCHED_SERVE_ROUND answers wait to be completed at once. */
static void fill(sched *S) {
    const fl_plan *p = S->p;
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

/* Put instance id on the list of those waiting for their retry_delay. When the
 * list cannot grow the run ends (sched_oom): the instance keeps its record, whose
 * arguments drop_inflight releases at the end. */
static void retry_push(sched *S, uint32_t id) {
    if (S->nretries == S->capretries) {
        uint32_t cap = S->capretries ? S->capretries * 2 : 16;
        uint32_t *r = sc_reallocarray(S, S->retries, cap, sizeof *S->retries);
        if (!r) return;
        S->retries = r;
        S->capretries = cap;
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
    const fl_plan *p = S->p;
    uint32_t id = (uint32_t)res->id;
    inst *r = rec_at(S, id);
    const plan_task *T = &p->tasks[r->task];
    S->running--;
    if (r->served) S->nserved_pending--; /* its task's count went down when answered */
    else S->running_task[r->task]--;
    sched_task_meter *tm = S->mtask ? &S->mtask[r->task] : NULL;
    if (tm && !r->served) {
        M_ADD(tm->running, -1);
        meter_duration(tm, res->end - res->start);
    }
    if (!res->ok && !res->error) sched_oom(S); /* not even its message could be made (exec.h) */
    if (S->blocked[r->task].n) unblock(S, r->task);
    double dur = res->end - res->start;
    if (dur >= 0) S->mean_task = S->mean_task < 0 ? dur : 0.9 * S->mean_task + 0.1 * dur;
    if (!res->ok && !r->served && r->attempt < T->retries && !S->o->dry_run) {
        r->attempt++;
        r->due = now_s() + (double)T->retry_delay_ms / 1000.0;
        sc_free(S, res->error);
        sc_free(S, res->log);
        retry_push(S, id);
        return;
    }
    if (S->o->rec && r->served != 2) {
        char idx[1024], tmpl[1024];
        rec_inst ii;
        hist_prepare(S, r, &ii, idx, tmpl, sizeof idx, 1);
        char *label = label_of(S, r->task, r->args);
        ii.label = label;
        S->o->rec->ops->finished(S->o->rec->self, &ii, r->args, res, r->served);
        S->rec_unsynced = 1;
        sc_free(S, label);
        if (r->served) S->nserved_total++;
    }
    scope *sc = r->sc;
    uint32_t node = r->node;
    int64_t k = r->k;
    int ok = res->ok;
    fl_val v = ok ? res->value : (fl_val){0};
    S->done++;
    if (tm) {
        if (!ok) M_ADD(tm->failed, 1);
        else if (r->served) M_ADD(tm->cached, 1);
        else M_ADD(tm->done, 1);
    }
    if (!ok) {
        S->failed++;
        record_failure(S, sc, node, k, r->args, res->error);
    }
    sc_free(S, res->error);
    sc_free(S, res->log);
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
    if (S->ex->capacity > 0) { /* the executor knows (the remote one: remote_driver.c) */
        S->limit = S->ex->capacity;
        return;
    }
    int jobs = S->o->jobs > 0 ? S->o->jobs : 1;
    int factor = 1;
    if (S->mean_task >= 0 && S->mean_task < SCHED_FAST_TASK) {
        double f = SCHED_FAST_TASK / (S->mean_task > 1e-7 ? S->mean_task : 1e-7);
        factor = f > SCHED_MAX_FACTOR ? SCHED_MAX_FACTOR : (int)f;
        if (factor < 1) factor = 1;
    }
    /* + one queued per worker (or what the executor asks for, when tasks are under
     * SCHED_DEEP_TASK): no idle gap between tasks */
    int behind = 1;
    if (S->mean_task >= 0 && S->mean_task < SCHED_DEEP_TASK && S->ex->queued > 1)
        behind = S->ex->queued;
    S->limit = jobs * (factor + behind);
}

static void sched_free(sched *S) {
    free_dead(S);
    for (uint32_t c = 0; c < S->nchunks; c++)
        sc_free(S, S->chunks[c]);
    sc_free(S, S->chunks);
    for (uint32_t b = 0; b < S->nbuckets; b++)
        sc_free(S, S->buckets[b].e);
    sc_free(S, S->buckets);
    for (uint32_t t = 0; S->blocked && t < S->p->n_tasks; t++)
        sc_free(S, S->blocked[t].e);
    sc_free(S, S->blocked);
    sc_free(S, S->running_task);
    sc_free(S, S->skipped);
    sc_free(S, S->retries);
    sc_free(S, S->batch);
    sc_free(S, S->results);
    for (uint32_t i = 0; i < S->nfails; i++) {
        sc_free(S, S->fails[i].what);
        sc_free(S, S->fails[i].label);
        sc_free(S, S->fails[i].error);
        sc_free(S, S->fails[i].idx);
    }
    sc_free(S, S->fails);
    for (size_t i = 0; S->top_tmpl && i < 2 * (size_t)S->p->n_nodes; i++)
        sc_free(S, S->top_tmpl[i]);
    sc_free(S, S->top_tmpl);
    sc_free(S, S->info);
    sc_free(S, S->edges);
    sc_free(S, S->gdepth);
    sc_free(S, S->spare);
    sc_free(S, S->look);
    sc_free(S, S->needs_dir);
}

/* Abandoned instances (interrupt, memory): release their records without results. */
void drop_inflight(sched *S) {
    for (uint32_t c = 0; c < S->nchunks; c++)
        for (uint32_t i = 0, n = c + 1 < S->nchunks ? SCHED_CHUNK : S->fresh; i < n; i++) {
            inst *r = &S->chunks[c][i]; /* every record ever handed out (rec_alloc) */
            if (r->args) {
                release_args(S, r->node, r->args);
                if (r->args != r->inl) args_release(S, r->args);
                r->args = NULL;
                sc_free(S, r->dir);
                r->dir = NULL;
            }
        }
}

int sched_run(const fl_plan *p, rt_executor *ex, uint32_t graph, const fl_val *params,
              const sched_opts *opts, sched_outcome *out) {
    sched st, *S = &st;
    memset(S, 0, sizeof *S);
    memset(out, 0, sizeof *out);
    S->p = p;
    S->ctx = p->ctx;
    if (opts->meter && opts->meter->n_tasks >= p->n_tasks) S->mtask = opts->meter->task;
    rt_executor *cex = NULL; /* with a recorder: the cache executor around ex */
    if (opts->rec) {
        /* which tasks' instances the recorder may answer: asked once per task, so
         * the others pay nothing per instance for the lookup (recorder.h) */
        const rec_ops *ro = opts->rec->ops;
        if (!(S->look = sc_calloc(S, p->n_tasks ? p->n_tasks : 1, 1))) {
            out->code = 2;
            return out->code;
        }
        for (uint32_t t = 0; t < p->n_tasks; t++)
            S->look[t] = !ro->lookup_needed || ro->lookup_needed(opts->rec->self, t);
        rt_cache_hooks hooks = {.describe = rec_describe, .looked_up = rec_looked_up,
                                .look = S->look, .ud = S};
        if (!(cex = rt_executor_cache(ex, p, opts->rec, &hooks))) {
            sc_free(S, S->look);
            out->code = 2; /* out of memory: the context's sink says so */
            return out->code;
        }
        ex = cex;
    }
    S->ex = ex;
    S->o = opts;
    S->mean_task = -1;
    S->pid = (int)getpid();
    S->t0 = now_s();
    S->nspare = 1;
    for (uint32_t n = 0; n < p->n_nodes; n++)
        if (p->nodes[n].nargs > S->nspare) S->nspare = p->nodes[n].nargs;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        if (p->graphs[g].nparams > S->nspare) S->nspare = p->graphs[g].nparams;
    const plan_graph *G = &p->graphs[graph];
    scope *root = NULL;
    fl_val *pv = NULL;
    if (analyse(S) == 0 && (S->blocked = sc_calloc(S, p->n_tasks, sizeof *S->blocked)) &&
        (S->running_task = sc_calloc(S, p->n_tasks, sizeof *S->running_task)) &&
        (S->needs_dir = sc_calloc(S, p->n_tasks, 1)) &&
        (S->skipped = sc_calloc(S, p->n_nodes, sizeof *S->skipped)) &&
        /* not cleared: each entry is written before it is read, and pages never
         * touched are never faulted in (160 KiB: a small run uses a few entries) */
        (S->batch = sc_reallocarray(S, NULL, SCHED_BATCH, sizeof *S->batch)) &&
        (S->results = sc_reallocarray(S, NULL, SCHED_BATCH, sizeof *S->results)) &&
        (S->spare = sc_calloc(S, S->nspare, sizeof *S->spare)) && rec_grow(S) == 0 &&
        (pv = sc_calloc(S, G->nparams, sizeof *pv))) {
        for (uint32_t i = 0; i < G->nparams; i++) {
            pv[i] = params[i];
            fv_incref(p, p->params[G->first_param + i].type, pv[i]);
        }
        root = scope_new(S, graph, NULL, PLAN_NONE, -1, pv); /* consumes pv */
    }
    if (!root) { /* memory ran out before the run started (the sink says so) */
        sched_free(S);
        out->code = 2;
        return out->code;
    }
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        S->blocked[t].owner = S;
        S->needs_dir[t] = (uint8_t)task_needs_dir(p, t); /* asked once, not per instance */
    }
    adapt_limit(S);
    S->root = root;
    scope_start(S, root);

    int interrupted = 0;
    char ierr[128] = ""; /* an internal error that ended the run */
    /* the loop: start work while there is capacity, wait for completions, record them */
    while (root->pending > 0) {
        if (opts->stop && *opts->stop) {
            interrupted = 1;
            break;
        }
        if (S->oom || S->rec_failed) break;
        double next_retry = S->nretries ? retries_due(S, now_s()) : 0;
        fill(S);
        flush_batch(S);
        free_dead(S);
        if (root->pending == 0 || S->oom || S->rec_failed) break;
        if (S->running == 0) {
            if (S->nretries == 0) {
                snprintf(ierr, sizeof ierr, "nothing ready and %u steps pending", root->pending);
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
        if (S->rec_held) timeout = REC_HOLD_MS; /* the recorder holds a batch (recorder.h) */
        if (S->nretries) {
            double ms = (next_retry - now_s()) * 1000.0;
            if (ms < timeout) timeout = ms < 1 ? 1 : (int)ms;
        }
        int n = ex->ops->wait(ex, S->results, SCHED_BATCH, timeout);
        for (int i = 0; i < n; i++)
            complete(S, &S->results[i]);
        /* queued before the next round acts on it (recorder.h); after a wait that
         * ended with nothing too, so that a batch the recorder held goes */
        if (S->o->rec) S->rec_held = S->o->rec->ops->queue_batch(S->o->rec->self) > 0;
        if (S->nserved_pending) { /* answers are waiting: complete them first */
            free_dead(S);
            continue;
        }
        adapt_limit(S);
        report_progress(S, 0);
    }
    report_progress(S, 1);
    report_summary(S, interrupted, ierr[0] ? ierr : NULL);

    out->n_instances = S->total;
    out->n_failed = S->failed;
    out->n_attempts = S->attempts;
    out->n_served = S->nserved_total;
    for (uint32_t n = 0; n < p->n_nodes; n++)
        out->n_skipped += S->skipped[n];
    out->n_ok = S->done - S->failed - out->n_skipped;
    if (interrupted || S->oom || S->rec_failed) {
        out->code = S->oom ? 2 : interrupted ? 3 : 1;
        /* interrupted: give running instances a moment; what is still running keeps
         * its memory. Out of memory or a failed sync before an effect: wait for every
         * one (unless stopped), so that everything is freed and the program can go on. */
        double until = now_s() + 1.0;
        while (S->running > 0 &&
               (((S->oom || S->rec_failed) && !(opts->stop && *opts->stop)) || now_s() < until)) {
            int n = ex->ops->wait(ex, S->results, SCHED_BATCH, SCHED_POLL_MS);
            for (int i = 0; i < n; i++) {
                rt_result *res = &S->results[i];
                inst *r = rec_at(S, (uint32_t)res->id);
                S->running--;
                if (res->ok && !S->info[r->node].ret_void)
                    fv_decref(p, p->tasks[r->task].ret, res->value);
                sc_free(S, res->error);
                sc_free(S, res->log);
                release_args(S, r->node, r->args);
                rec_free(S, (uint32_t)res->id);
            }
        }
        if (S->running == 0) free_live_scopes(S);
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
    inst_dirs_end(S); /* the last instance folders, the run's work folder when empty */
    sched_free(S);
    if (cex) cex->ops->destroy(cex); /* not ex's inner executor: the caller's */
    return out->code;
}
