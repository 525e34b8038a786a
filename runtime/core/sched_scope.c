/*
 * sched_scope.c — scopes, slots and settling: how a node's result (or failure)
 * reaches what depends on it.
 *
 * DESIGN
 *   A graph (the flow, or a group) runs in a scope: one slot per node with its
 *   state (waiting, open, done), its value and the number of dependencies it still
 *   waits for. When a node settles, each consumer's wait count goes down and a
 *   consumer at zero is opened (try_open, in sched.c); an element of an expansion
 *   settles on its own and releases the same element of its element-wise
 *   consumers. A failure settles the same way, marked: a consumer whose producer
 *   failed settles as "upstream failed" without running. When every node of a
 *   scope has settled, the scope hands its return value to the parent node (one
 *   element of a group expansion, or a group call's value) and goes onto a list
 *   of dead scopes freed by the loop between rounds (a scope may finish deep
 *   inside a settle chain that still reads it). After an interrupt the scopes
 *   still alive are found through the ready entries and the instance records and
 *   freed deepest first.
 */
#include <stdarg.h>

#include "sched_int.h"

/* ---- settling nodes and elements ---- */


static int node_failed_for_scope(sched *S, uint32_t node, uint8_t failed) {
    return failed == FS_FAILED || (failed == FS_PARTIAL && !S->info[node].absorbs);
}

/* The node has its final value (or failed): tell its consumers. */
void node_settle(sched *S, scope *sc, uint32_t node, uint8_t failed) {
    const fl_plan *p = S->p;
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


/* Element k of an expansion finished: store it, release element-wise consumers. */
void elem_settle(sched *S, scope *sc, uint32_t node, int64_t k, int ok, fl_val v) {
    const fl_plan *p = S->p;
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

void release_elem(sched *S, scope *sc, uint32_t node, int64_t k, int ok) {
    if (ok) {
        ready_push(S, sc, node, k, k + 1);
        return;
    }
    uint32_t t = S->info[node].task;
    if (t != PLAN_NONE) {
        S->skipped[node]++;
        S->done++; /* counted in total when the expansion opened */
        sched_meter_count(S, t, 0, 1, 0);
    } else {
        S->nskipped_other++;
    }
    elem_settle(S, sc, node, k, 0, (fl_val){0});
}

/* A node that cannot run because a producer failed. */
void node_upstream_failed(sched *S, scope *sc, uint32_t node) {
    uint32_t t = S->info[node].task;
    if (t != PLAN_NONE) {
        S->skipped[node]++;
        S->total++; /* one line in done/total, however many it would have had */
        S->done++;
        sched_meter_count(S, t, 1, 1, 0);
    } else {
        S->nskipped_other++;
    }
    node_settle(S, sc, node, FS_FAILED);
}

/* Record a failure under node `as` (its name and position) and settle `node` as
 * failed: the same node but for a fused chain (see Fusion). */
void node_fail_as(sched *S, scope *sc, uint32_t node, uint32_t as, const char *msg) {
    record_failure(S, sc, as, -1, NULL, msg);
    S->failed++;
    node_settle(S, sc, node, FS_FAILED);
}

/* A built-in or expansion that failed by itself (zip lengths, max_map, a lambda). */
void node_error(sched *S, scope *sc, uint32_t node, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    node_fail_as(S, sc, node, node, msg);
}

/* Element k of an expansion could not start (a map's lambda failed on its input). */
void elem_error(sched *S, scope *sc, uint32_t node, int64_t k, const char *err) {
    record_failure(S, sc, node, k, NULL, err);
    S->failed++;
    S->done++;
    sched_meter_count(S, S->info[node].task, 0, 0, 1);
    if (S->p->nodes[node].kind == PN_CALL)
        node_settle(S, sc, node, FS_FAILED);
    else
        elem_settle(S, sc, node, k, 0, (fl_val){0});
}

/* ---- scopes ---- */

scope *scope_new(sched *S, uint32_t graph, scope *parent, uint32_t pnode, int64_t pk,
                 fl_val *params /* consumed */) {
    const fl_plan *p = S->p;
    const plan_graph *G = &p->graphs[graph];
    scope *sc = fl_malloc(S->ctx, sizeof *sc + G->nnodes * sizeof(slot));
    if (!sc) { /* the run ends (sched_oom); the parameters are released */
        sched_oom(S);
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, params[i]);
        args_release(S, params);
        return NULL;
    }
    memset(sc, 0, sizeof *sc + G->nnodes * sizeof(slot));
    sc->live_next = S->live;
    if (S->live) S->live->live_prev = sc;
    S->live = sc;
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

/* Open every node that waits for nothing (constants, parameters, ...). sc NULL
 * (scope_new ran out of memory): nothing. */
void scope_start(sched *S, scope *sc) {
    if (!sc) return;
    const fl_plan *p = S->p;
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

void scope_free(sched *S, scope *sc) {
    const fl_plan *p = S->p;
    const plan_graph *G = &p->graphs[sc->graph];
    for (uint32_t i = 0; i < G->nnodes; i++) {
        slot *s = &sc->slots[i];
        fv_decref(p, p->nodes[G->first_node + i].type, s->val);
        sc_free(S, s->estate);
    }
    for (uint32_t i = 0; i < G->nparams; i++)
        fv_decref(p, p->params[G->first_param + i].type, sc->params[i]);
    args_release(S, sc->params);
    if (sc->live_prev) sc->live_prev->live_next = sc->live_next;
    else S->live = sc->live_next;
    if (sc->live_next) sc->live_next->live_prev = sc->live_prev;
    sc_free(S, sc);
}

/* Every node of sc settled: hand the result to the parent node. */
void scope_finished(sched *S, scope *sc) {
    const fl_plan *p = S->p;
    if (!sc->parent) return; /* the flow: the main loop sees root->pending == 0 */
    const plan_graph *G = &p->graphs[sc->graph];
    int ok = !sc->failed && G->ret_node != PLAN_NONE ? SL(sc, p, G->ret_node)->failed == FS_OK
                                                     : !sc->failed;
    fl_val v = {0};
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

void free_dead(sched *S) {
    while (S->dead) {
        scope *sc = S->dead;
        S->dead = sc->next_dead;
        scope_free(S, sc);
    }
}


/* Free the scopes still alive after an interrupt or a failed allocation (the
 * flow's and its children, from the list of live scopes: a scope frees nothing of
 * its parent, so the order does not matter), after the instance records. */
void free_live_scopes(sched *S) {
    drop_inflight(S);
    free_dead(S);
    while (S->live)
        scope_free(S, S->live);
    S->root = NULL;
}
