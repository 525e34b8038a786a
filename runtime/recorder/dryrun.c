/*
 * dryrun.c — the dry run: the real scheduler, the real cache lookup, nothing run
 * and nothing written (see dryrun.h; the report's forms in docs/dryrun.md).
 *
 * DESIGN
 *   The run is sched_run itself, with the cache executor (exec_cache.c) over the
 *   history's lookup (history.c hist_lookup, opened with hist_opts.dry_run: no run
 *   begun, no write, and no file hashed that the file-identity index does not know
 *   unless --exact). Between the two sits the dry recorder below, which passes
 *   every lookup on and turns each miss into a refusal carrying its reason:
 *     - a hit is served exactly as in a run: the instance is "cached" and its value
 *       flows on, so downstream instances are keyed and looked up in turn;
 *     - a miss is asked why (reason.c, the reason engine), and answered -1 with the
 *       reason as its error: to the scheduler, a failed instance that is not retried
 *       (sched_opts.dry_run also disables retries of anything else);
 *     - what reads a failed instance settles as upstream failed, as in a run; with
 *       sched_opts.dry_run an all_done task, and a map or filter over a partly
 *       failed list, do too (their inputs are unknown, not "the others"). The
 *       scheduler's summary counts these per binding: "depends on X", X being the
 *       producers (through built-ins such as map, files, len) that would run.
 *   The recorder's finished sees every instance that ended: served ok is cached,
 *   a refusal is a row "runs" with its reason. queue_batch and sync do nothing.
 *   A failure the scheduler meets with no instance (an expansion over max_map, a
 *   zip of unequal lengths) comes with the summary: a row's "would fail".
 *   `cache: false` tasks and --no-cache are answered without the history's lookup
 *   (it would compute nothing for them). Without a state.db there is no history:
 *   every instance is "no entry" and nothing is created.
 *
 *   The inner executor is never given a job by the cache wrapper (every task is
 *   looked up); it answers any job as failed, so that nothing can run.
 */
#define _GNU_SOURCE
#include "dryrun.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exec_cache.h"
#include "history.h"
#include "scheduler.h"

#define DRY_MARK '\x1f' /* first byte of a refusal made here: "\x1fKIND PARAM TEXT" */

typedef struct dry_rec {
    const fl_plan *p;
    hist *h;               /* the history (dry), or NULL: no state */
    recorder inner;        /* h's recorder */
    rsn_ctx *rsn;          /* the reason engine over h */
    dry_report *rep;
    int no_cache;
    int oom;
} dry_rec;

/* ---- the report ---- */

static dry_row *row_of(dry_rec *d, uint32_t node) {
    dry_report *r = d->rep;
    if (node >= r->nnodes) return NULL;
    if (!r->rows[node]) {
        dry_row *w = fl_calloc(r->ctx, 1, sizeof *w);
        if (!w) return NULL;
        const plan_node *N = &d->p->nodes[node];
        w->node = node;
        w->name = sched_node_stem(d->p, node);
        w->task = (N->kind == PN_CALL || N->kind == PN_EXPAND || N->kind == PN_EXPAND_KWARGS)
                      ? plan_str(d->p, d->p->tasks[N->ref].name)
                      : NULL;
        r->rows[node] = w;
    }
    return r->rows[node];
}

static void row_run(dry_rec *d, dry_row *w, const rec_inst *ii, rsn_kind kind, int param,
                    const char *text) {
    fl_ctx *c = d->rep->ctx;
    w->runs++;
    d->rep->runs++;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        dry_inst *v = fl_reallocarray(c, w->v, cap, sizeof *v);
        if (!v) {
            d->oom = 1;
            return;
        }
        w->v = v;
        w->cap = cap;
    }
    char name[1024], ib[24];
    plan_inst_name(ii->tmpl, plan_str(d->p, d->p->tasks[ii->task].name),
                   rec_inst_idx(ii, ib, sizeof ib), name, sizeof name);
    dry_inst *x = &w->v[w->n];
    *x = (dry_inst){fl_strdup(c, name), kind, param, fl_strdup(c, text)};
    if (!x->name || !x->text) {
        fl_free(c, x->name);
        fl_free(c, x->text);
        d->oom = 1;
        return;
    }
    w->n++;
}

void dry_report_free(dry_report *r) {
    if (!r || !r->rows) return;
    for (uint32_t n = 0; n < r->nnodes; n++) {
        dry_row *w = r->rows[n];
        if (!w) continue;
        for (size_t i = 0; i < w->n; i++) {
            fl_free(r->ctx, w->v[i].name);
            fl_free(r->ctx, w->v[i].text);
        }
        fl_free(r->ctx, w->v);
        fl_free(r->ctx, w->depends_on);
        fl_free(r->ctx, w->error);
        fl_free(r->ctx, w);
    }
    fl_free(r->ctx, r->rows);
    r->rows = NULL;
}

/* ---- the dry recorder (recorder.h) ---- */

static int dry_lookup_needed(void *self, uint32_t task) {
    (void)self;
    (void)task;
    return 1; /* every instance is looked up here: each needs an answer */
}

static int dry_lookup(void *self, rec_inst *ii, const fl_val *args, fl_val *out) {
    dry_rec *d = self;
    const plan_task *T = &d->p->tasks[ii->task];
    rsn_reason why = {.param = -1};
    if (!T->cache) {
        why.kind = RSN_NOT_CACHED;
        snprintf(why.text, sizeof why.text, "`cache: false`: it runs every time");
    } else if (d->no_cache) {
        why.kind = RSN_NO_CACHE;
        snprintf(why.text, sizeof why.text, "--no-cache");
    } else if (!d->h) {
        why.kind = RSN_NO_ENTRY;
        snprintf(why.text, sizeof why.text, "no entry (no state yet)");
    } else {
        int hit = d->inner.ops->lookup(d->inner.self, ii, args, out);
        if (hit) return hit; /* served (1) or refused by the history itself (-1) */
        rsn_explain(d->rsn, ii, args, &why);
    }
    ii->error = fl_sprintf(d->p->ctx, "%c%d %d %s", DRY_MARK, (int)why.kind, why.param, why.text);
    return -1;
}

static void dry_finished(void *self, rec_inst *ii, const fl_val *args, rt_result *res,
                         int served) {
    dry_rec *d = self;
    (void)args;
    dry_row *w = row_of(d, ii->node);
    if (!w) {
        d->oom = 1;
        return;
    }
    if (served && res->ok) {
        w->cached++;
        d->rep->cached++;
        return;
    }
    int kind = RSN_REFUSED, param = -1, used = 0;
    const char *e = res->error ? res->error : "out of memory";
    if (e[0] == DRY_MARK && sscanf(e + 1, "%d %d %n", &kind, &param, &used) == 2 && used)
        e += 1 + used;
    row_run(d, w, ii, (rsn_kind)kind, param, e);
}

static int dry_nothing(void *self) {
    (void)self;
    return 0;
}

static const rec_ops dry_ops = {
    .name = "dry-run",
    .lookup_needed = dry_lookup_needed,
    .lookup = dry_lookup,
    .finished = dry_finished,
    .queue_batch = dry_nothing,
    .sync = dry_nothing,
};

/* ---- the executor that runs nothing ---- */

typedef struct none_ex {
    rt_executor base;
    const fl_plan *p;
    rt_result *q;
    size_t n, cap;
} none_ex;

static int none_submit(rt_executor *ex, const rt_job *jobs, int n) {
    none_ex *x = (none_ex *)ex;
    if (x->n + (size_t)n > x->cap) {
        size_t cap = (x->n + (size_t)n) * 2;
        rt_result *q = fl_reallocarray(x->p->ctx, x->q, cap, sizeof *q);
        if (!q) return -1;
        x->q = q;
        x->cap = cap;
    }
    for (int i = 0; i < n; i++)
        x->q[x->n++] = (rt_result){.id = jobs[i].id,
                                   .error = fl_sprintf(x->p->ctx, "%c%d -1 would run", DRY_MARK,
                                                       (int)RSN_NO_ENTRY)};
    return 0;
}

static int none_wait(rt_executor *ex, rt_result *out, int max, int timeout_ms) {
    none_ex *x = (none_ex *)ex;
    (void)timeout_ms;
    int k = 0;
    while (k < max && x->n) out[k++] = x->q[--x->n];
    return k;
}

static void none_destroy(rt_executor *ex) {
    none_ex *x = (none_ex *)ex;
    for (size_t i = 0; i < x->n; i++) fl_free(x->p->ctx, x->q[i].error);
    fl_free(x->p->ctx, x->q);
}

static const rt_executor_ops none_ops = {"dry-run", none_submit, none_wait, none_destroy};

/* ---- "depends on X" ---- */

/* Would node n run, or wait on what would? A group: some node of its graph would. */
static int would_run(const fl_plan *p, const dry_report *r, uint32_t n, int depth) {
    const plan_node *N = &p->nodes[n];
    if ((N->kind == PN_GROUP_CALL || N->kind == PN_GROUP_EXPAND) && depth < 16) {
        const plan_graph *G = &p->graphs[N->ref];
        for (uint32_t k = G->first_node; k < G->first_node + G->nnodes; k++)
            if (would_run(p, r, k, depth + 1)) return 1;
        return 0;
    }
    return r->rows[n] && (r->rows[n]->runs || r->rows[n]->depends || r->rows[n]->fails);
}

/* Append to buf the producers of node that would run (or wait on one), looking through
 * the built-ins between them (map, files, len, ...). */
static void producers(const fl_plan *p, const dry_report *r, uint32_t node, char *buf, size_t len,
                      int depth) {
    const plan_node *N = &p->nodes[node];
    for (uint32_t a = 0; a < N->nargs + N->nafter && depth < 16; a++) {
        uint32_t src = a < N->nargs ? p->args[N->first_arg + a].node
                                    : p->afters[N->first_after + (a - N->nargs)];
        int k = p->nodes[src].kind;
        if (k == PN_CALL || k == PN_EXPAND || k == PN_EXPAND_KWARGS || k == PN_GROUP_CALL ||
            k == PN_GROUP_EXPAND) {
            if (!would_run(p, r, src, 0)) continue;
            const char *nm = sched_node_stem(p, src);
            size_t l = strlen(buf), nl = strlen(nm);
            int seen = 0; /* each name once */
            for (const char *q = buf; (q = strstr(q, nm)); q += nl)
                if ((q == buf || q[-1] == ' ') && (q[nl] == ',' || !q[nl])) seen = 1;
            if (!seen && l + nl + 3 < len) snprintf(buf + l, len - l, "%s%s", l ? ", " : "", nm);
        } else {
            producers(p, r, src, buf, len, depth + 1);
        }
    }
}

static void on_summary(void *ud, const sched_summary *s) {
    dry_rec *d = ud;
    for (uint32_t i = 0; i < s->nfails; i++) { /* what the run itself would fail */
        const char *e = s->fails[i].error;
        if (!e || e[0] == DRY_MARK) continue; /* an instance that would run */
        dry_row *w = row_of(d, s->fails[i].node);
        if (!w) {
            d->oom = 1;
            return;
        }
        if (w->runs && w->n && !w->fails) { /* counted by finished as a refusal: not one */
            int same = 0;
            for (size_t k = 0; k < w->n && !same; k++) same = !strcmp(w->v[k].text, e);
            if (same) continue;
        }
        w->fails++;
        d->rep->fails++;
        if (!w->error && !(w->error = fl_strdup(d->rep->ctx, e))) d->oom = 1;
    }
    for (uint32_t i = 0; i < s->nskipped; i++) {
        dry_row *w = row_of(d, s->skipped[i].node);
        if (!w) {
            d->oom = 1;
            return;
        }
        w->depends += s->skipped[i].n;
        d->rep->depends += s->skipped[i].n;
    }
    /* names once every count is known (a producer may be listed after its consumer) */
    for (uint32_t i = 0; i < s->nskipped; i++) {
        dry_row *w = d->rep->rows[s->skipped[i].node];
        char buf[512] = "";
        producers(d->p, d->rep, w->node, buf, sizeof buf, 0);
        fl_free(d->rep->ctx, w->depends_on);
        w->depends_on = fl_strdup(d->rep->ctx, buf[0] ? buf : "an upstream that would run");
        if (!w->depends_on) d->oom = 1;
    }
}

/* ---- the entry point ---- */

int dry_run(const fl_plan *p, uint32_t graph, const fl_val *params, const dry_opts *o,
            dry_report *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->ctx = p->ctx;
    out->flow = plan_str(p, p->graphs[graph].name);
    out->exact = o->exact;
    out->nnodes = p->n_nodes;
    out->rows = fl_calloc(p->ctx, p->n_nodes ? p->n_nodes : 1, sizeof *out->rows);
    if (!out->rows) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *dir = o->state_dir ? o->state_dir : ".flow";
    char db[4200];
    struct stat sb;
    snprintf(db, sizeof db, "%s/state.db", dir);
    out->has_state = stat(db, &sb) == 0; /* no state: nothing is created */
    dry_rec d = {.p = p, .rep = out, .no_cache = o->no_cache};
    if (out->has_state) {
        hist_opts ho = {.plan = p, .rt = o->rt, .state_dir = dir, .flow = out->flow,
                        .env = o->env, .no_cache = o->no_cache, .dry_run = o->exact ? 2 : 1};
        if (!(d.h = hist_open(&ho, err, errlen))) {
            dry_report_free(out);
            return -1;
        }
        d.inner = hist_recorder(d.h);
        if (!(d.rsn = rsn_open(p->ctx, p, hist_state(d.h), hist_ck(d.h), out->flow))) {
            hist_close(d.h, NULL, 0, NULL, NULL);
            dry_report_free(out);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    recorder rec = {&dry_ops, &d};
    none_ex ex = {.base = {.ops = &none_ops}, .p = p};
    sched_observer obs = {.on_summary = on_summary, .ud = &d};
    sched_opts so = {.jobs = 64, .max_map = o->max_map, .obs = &obs, .rec = &rec, .dry_run = 1};
    sched_outcome res;
    int code = sched_run(p, &ex.base, graph, params, &so, &res);
    if (res.has_result) fv_decref(p, p->graphs[graph].ret, res.result);
    none_destroy(&ex.base);
    rsn_close(d.rsn);
    if (d.h) hist_close(d.h, NULL, 0, NULL, NULL);
    if (code == 2 || d.oom) {
        snprintf(err, errlen, "out of memory");
        dry_report_free(out);
        return -1;
    }
    return 0;
}

/* ---- printing ---- */

static void json_str(FILE *f, const char *s) {
    fv_json_string(f, s ? s : "", s ? strlen(s) : 0);
}

void dry_report_print(const fl_plan *p, const dry_report *r, FILE *f, int json, size_t cap) {
    if (json) {
        fprintf(f, "{\"flow\":");
        json_str(f, r->flow);
        fprintf(f, ",\"has_state\":%s,\"exact\":%s,\"runs\":%llu,\"cached\":%llu,\"depends\":%llu,"
                   "\"fails\":%llu,\"tasks\":[",
                r->has_state ? "true" : "false", r->exact ? "true" : "false",
                (unsigned long long)r->runs, (unsigned long long)r->cached,
                (unsigned long long)r->depends, (unsigned long long)r->fails);
        int first = 1;
        for (uint32_t n = 0; n < r->nnodes; n++) {
            const dry_row *w = r->rows[n];
            if (!w) continue;
            fprintf(f, "%s{\"name\":", first ? "" : ",");
            first = 0;
            json_str(f, w->name);
            fprintf(f, ",\"task\":");
            if (w->task) json_str(f, w->task);
            else fprintf(f, "null");
            fprintf(f, ",\"runs\":%llu,\"cached\":%llu,\"depends\":%llu,\"depends_on\":",
                    (unsigned long long)w->runs, (unsigned long long)w->cached,
                    (unsigned long long)w->depends);
            if (w->depends_on) json_str(f, w->depends_on);
            else fprintf(f, "null");
            fprintf(f, ",\"fails\":%llu,\"error\":", (unsigned long long)w->fails);
            if (w->error) json_str(f, w->error);
            else fprintf(f, "null");
            fprintf(f, ",\"instances\":[");
            for (size_t i = 0; i < w->n; i++) {
                const dry_inst *x = &w->v[i];
                fprintf(f, "%s{\"name\":", i ? "," : "");
                json_str(f, x->name);
                fprintf(f, ",\"reason\":\"%s\",\"param\":", rsn_kind_name(x->kind));
                const plan_task *T = w->task ? &p->tasks[p->nodes[w->node].ref] : NULL;
                if (T && x->param >= 0 && (uint32_t)x->param < T->nparams)
                    json_str(f, plan_str(p, p->params[T->first_param + (uint32_t)x->param].name));
                else fprintf(f, "null");
                fprintf(f, ",\"text\":");
                json_str(f, x->text);
                fprintf(f, "}");
            }
            fprintf(f, "]}");
        }
        fprintf(f, "]}\n");
        return;
    }
    fprintf(f, "dry run of %s%s: %llu would run, %llu cached, %llu depend on what would run",
            r->flow, r->has_state ? "" : " (no state yet)", (unsigned long long)r->runs,
            (unsigned long long)r->cached, (unsigned long long)r->depends);
    if (r->fails) fprintf(f, ", %llu would fail", (unsigned long long)r->fails);
    fprintf(f, "%s\n", r->exact ? " (--exact)" : "");
    for (uint32_t n = 0; n < r->nnodes; n++) {
        const dry_row *w = r->rows[n];
        if (!w) continue;
        fprintf(f, "  %s: %llu run, %llu cached", w->name, (unsigned long long)w->runs,
                (unsigned long long)w->cached);
        if (w->depends)
            fprintf(f, ", %llu depend on %s", (unsigned long long)w->depends, w->depends_on);
        if (w->fails) fprintf(f, ", %llu would fail: %s", (unsigned long long)w->fails, w->error);
        fputc('\n', f);
        for (size_t i = 0; i < w->n && (!cap || i < cap); i++)
            fprintf(f, "    %s: runs: %s\n", w->v[i].name, w->v[i].text);
        if (cap && w->n > cap) fprintf(f, "    ... and %zu more\n", w->n - cap);
    }
}
