/*
 * cli_why.c — `flowrun why RUN INSTANCE [--json]`: why an instance of a recorded run
 * ran, or which run's result it was served (issue 17, deliverable 2;
 * docs/observability.md, "Why did this run").
 *
 * DESIGN
 *   INSTANCE is named as for `logs` and `clear` (cli_names.h: one resolver). An
 *   instance is answered from what the run recorded, nothing is recomputed:
 *     - served (state `cached`): the cache entry of its recorded key names the run
 *       that produced it (state_cache_entry.run);
 *     - ran and succeeded: its own cache entry (by its recorded key) holds the parts
 *       of that key (identity, one hash per argument); the reason engine
 *       (reason.h) finds the entry the same instance (name template and index path)
 *       had in the runs of the flow older than RUN (rsn_before) and says how the two
 *       differ (rsn_compare): no entry ever, the code, input `x`;
 *     - the answers that need no comparison: the run was --no-cache (its recorded
 *       options), the task is `cache: false` (the plan), it failed (a failed
 *       instance writes no entry: its parts are not known), it did not run.
 *   A `path` argument that changed is named by its file: the entry's part for it is
 *   a hash of the file's name and content hash (cachekey.c), so the file-identity
 *   index's records (state_files_each: path -> content hash as last hashed, and as
 *   hashed before its content last changed) are hashed the same way (ck_path_part)
 *   and matched. The match is exact (64 bits of the name and content together), and
 *   it is found as long as the index still holds that content for that path: a file
 *   changed twice since, each time hashed by a later run, is no longer found, and then
 *   the text says its name could not be recovered. The file's old and new content
 *   hash, size and mtime are the index's two records of it (state_file_record), each
 *   said only when it hashes to the entry's part (then) or the instance's (now).
 *   The earlier entry's part is matched too: when it names another file that is
 *   still unchanged, the file at this index changed (a file inserted before it).
 *   The plan is the run's (runs.plan_path), for the tasks' parameter names and
 *   `version`; a plan rebuilt since is said (a note on stderr).
 *
 *   A binding (a task's name that denotes one mapped binding, or the binding's
 *   name) is summarised: its instances are read into memory first (the reason
 *   engine reads other runs' rows through the same statements), each answered as
 *   above, and counted per reason and argument, with the first RSN_SHOW instances
 *   of each reason shown (as the dry run shows 20 per row).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachekey.h"
#include "cli.h"
#include "cli_names.h"
#include "cron.h"
#include "digest.h"
#include "htab.h"
#include "plan.h"
#include "reason.h"
#include "scheduler.h"
#include "state.h"

#define WHY_SHOW 20 /* instances shown per reason in a summary */

/* One answer. kind: rsn_kind_name's names, and why's own: "served", "failed",
 * "did_not_run", "entry_gone". */
typedef struct why_answer {
    const char *kind;
    int param;            /* the argument the answer is about, or -1 */
    int served;           /* served from the cache */
    int ran;              /* it ran (succeeded or failed) */
    int64_t from_run;     /* served: the run that produced it; ran: the run compared */
    double from_started;  /* that run's start */
    char file[1024];      /* a `path` argument that changed: its file, or "" */
    char upstream[512];   /* an argument that changed is these bindings' results, or "" */
    char flow_param[128]; /* an argument that changed is this flow parameter, or "" */
    char was[160], now[160]; /* ... whose values in the two runs were these (JSON) */
    int fknown;                 /* the file's record: 1 as it was known, 2 as it is now */
    char fhash[2][65];          /* [0] was, [1] now: content hash, size, mtime (ns) */
    int64_t fsize[2], fmtime[2];
    char text[1200];
} why_answer;

/* An instance as the run recorded it (a copy: the statements are reused). */
typedef struct why_inst {
    char *name, *task, *tmpl, *idx;
    char state[32];
    uint32_t node;
    int cache_hit, has_key;
    fl_digest key;
} why_inst;

typedef struct file_part {
    uint64_t part;
    char *path;
} file_part;

typedef struct why_ctx {
    fl_ctx *ctx;
    fl_state *st;
    int64_t run;
    state_run r;
    int no_cache;        /* the run was --no-cache */
    fl_plan *plan;       /* the run's plan, or NULL (plan_err says why) */
    char plan_err[512];
    rsn_ctx *rsn;
    ck_ctx cx;           /* for ck_path_part */
    int files_loaded;    /* the index read into files/ftab: 1, -1 failed */
    file_part *files;
    size_t nfiles, capfiles;
    fl_htab ftab;        /* part -> index in files */
    int64_t run_cache[8][2]; /* run id -> started (seconds), a few remembered */
    int nrun_cache;
    state_run prev;      /* the last earlier run whose parameters were read (prev.id 0: none) */
} why_ctx;

static double run_started(why_ctx *w, int64_t id) {
    for (int i = 0; i < w->nrun_cache; i++)
        if (w->run_cache[i][0] == id) return (double)w->run_cache[i][1];
    state_run r;
    double t = 0;
    if (state_run_get(w->st, id, &r) == 0) {
        t = r.started;
        state_run_free(&r);
    }
    int slot = w->nrun_cache < 8 ? w->nrun_cache++ : (int)(id % 8);
    w->run_cache[slot][0] = id;
    w->run_cache[slot][1] = (int64_t)t;
    return t;
}

/* ---- the file-identity index, by part ---- */
static int add_file(const char *path, const fl_digest *h, void *ctx) {
    why_ctx *w = ctx;
    uint64_t part;
    if (ck_path_part(&w->cx, path, h, &part)) return 1;
    if (w->nfiles == w->capfiles) {
        size_t cap = w->capfiles ? w->capfiles * 2 : 256;
        file_part *v = fl_reallocarray(w->ctx, w->files, cap, sizeof *v);
        if (!v) return 1;
        w->files = v;
        w->capfiles = cap;
    }
    char *copy = fl_strdup(w->ctx, path);
    if (!copy || fl_htab_reserve(w->ctx, &w->ftab, 1)) {
        fl_free(w->ctx, copy);
        return 1;
    }
    w->files[w->nfiles] = (file_part){part, copy};
    fl_htab_add(&w->ftab, part, w->nfiles++);
    return 0;
}

/* The file whose name and content as the index last recorded them hash to part. */
static const char *file_of(why_ctx *w, uint64_t part) {
    if (!w->files_loaded) {
        int rc = state_files_each(w->st, add_file, w);
        w->files_loaded = rc || w->cx.oom ? -1 : 1;
    }
    for (fl_htab_slot *s = fl_htab_find(&w->ftab, part); s && s->hash;
         s = fl_htab_next(&w->ftab, s, part))
        if (w->files[s->val].part == part) return w->files[s->val].path;
    return NULL;
}

/* ---- one instance ---- */
static int task_index(const fl_plan *p, const char *name, uint32_t *out) {
    for (uint32_t i = 0; i < p->n_tasks; i++)
        if (!strcmp(plan_str(p, p->tasks[i].name), name)) return (*out = i), 0;
    return -1;
}

static void say(why_answer *a, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(why_answer *a, const char *kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->text, sizeof a->text, fmt, ap);
    va_end(ap);
    a->kind = kind;
}

/* A `path` argument that changed: name its file (see DESIGN). */
static void name_file(why_ctx *w, why_answer *a, uint64_t now, uint64_t then) {
    const char *f = file_of(w, now);
    size_t n = strlen(a->text);
    if (!f) {
        snprintf(a->text + n, sizeof a->text - n,
                 " (its name is no longer in the file-identity index: the file changed again "
                 "since)");
        return;
    }
    snprintf(a->file, sizeof a->file, "%s", f);
    const char *was = file_of(w, then);
    if (was && strcmp(was, f))
        snprintf(a->text + n, sizeof a->text - n, ": another file at this index: %.500s (was %.400s)",
                 f, was);
    else
        snprintf(a->text + n, sizeof a->text - n, ": %.900s", f);
    if (was && strcmp(was, f)) return;
    /* old -> new: the index's record of the file now, and the one before its content
     * last changed (state_file_record), each taken only when it hashes to the part */
    state_file_rec fr;
    uint64_t part;
    if (state_file_record(w->st, f, &fr) != 1) return;
    const fl_digest *h[2] = {fr.has_prev ? &fr.prev_hash : NULL, &fr.hash};
    const int64_t sz[2] = {fr.prev_size, fr.size}, mt[2] = {fr.prev_mtime_ns, fr.mtime_ns};
    const uint64_t want[2] = {then, now};
    for (int c = 0; c < 2; c++) { /* each record, matched to the entry it hashes to */
        if (!h[c] || ck_path_part(&w->cx, f, h[c], &part)) continue;
        for (int i = 0; i < 2; i++) {
            if (part != want[i]) continue;
            a->fknown |= 1 << i;
            hash_hex(h[c], a->fhash[i]);
            a->fsize[i] = sz[c];
            a->fmtime[i] = mt[c];
        }
    }
    char t[2][32];
    for (int i = 0; i < 2; i++)
        cron_fmt_time(a->fmtime[i] / 1000000000, t[i]);
    n = strlen(a->text);
    if (a->fknown == 3)
        snprintf(a->text + n, sizeof a->text - n,
                 ": its content was sha256 %.12s (%lld bytes, modified %s), now %.12s (%lld "
                 "bytes, modified %s)",
                 a->fhash[0], (long long)a->fsize[0], t[0], a->fhash[1], (long long)a->fsize[1],
                 t[1]);
    else if (a->fknown)
        snprintf(a->text + n, sizeof a->text - n,
                 ": its content %s sha256 %.12s (%lld bytes, modified %s); the %s content is no "
                 "longer recorded",
                 a->fknown == 2 ? "became" : "was", a->fhash[a->fknown - 1],
                 (long long)a->fsize[a->fknown - 1], t[a->fknown - 1],
                 a->fknown == 2 ? "earlier" : "new");
}

/* The tasks whose results feed node src (src itself when it is a call or expansion),
 * looking through built-ins (files, map, zip, len, ...): their binding names, ", "-
 * separated, into buf. */
static void upstream_of(const fl_plan *p, uint32_t src, char *buf, size_t len, int depth) {
    const plan_node *N = &p->nodes[src];
    int k = N->kind;
    if (k == PN_CALL || k == PN_EXPAND || k == PN_EXPAND_KWARGS || k == PN_GROUP_CALL ||
        k == PN_GROUP_EXPAND) {
        const char *nm = sched_node_stem(p, src);
        size_t l = strlen(buf);
        if (!strstr(buf, nm) && l + strlen(nm) + 3 < len)
            snprintf(buf + l, len - l, "%s%s", l ? ", " : "", nm);
        return;
    }
    for (uint32_t i = 0; i < N->nargs && depth < 16; i++)
        upstream_of(p, p->args[N->first_arg + i].node, buf, len, depth + 1);
}

/* An argument that changed and is an upstream task's result: name that task, and how
 * to ask about it (one level: `why` on it says why it ran in turn). */
static void upstream_hint(why_ctx *w, const why_inst *in, int param, why_answer *a) {
    const fl_plan *p = w->plan;
    if (in->node >= p->n_nodes) return;
    const plan_node *N = &p->nodes[in->node];
    int k = N->kind;
    if ((k != PN_CALL && k != PN_EXPAND && k != PN_EXPAND_KWARGS) || (uint32_t)param >= N->nargs)
        return; /* one argument per task parameter only in these */
    char ups[512] = "";
    upstream_of(p, p->args[N->first_arg + (uint32_t)param].node, ups, sizeof ups, 0);
    if (!*ups) return;
    size_t n = strlen(a->text);
    const char *comma = strchr(ups, ',');
    snprintf(a->text + n, sizeof a->text - n,
             ": an upstream result changed (%s; ask `flowrun why %lld %.*s`)", ups,
             (long long)w->run, comma ? (int)(comma - ups) : (int)strlen(ups), ups);
    snprintf(a->upstream, sizeof a->upstream, "%s", ups);
}

/* Parameter idx of graph G, decoded from a run's params_blob into *out (fv_decref
 * it), as JSON text into buf. 0, or -1 when the blob does not hold it. */
static int param_json(const fl_plan *p, const plan_graph *G, const state_run *r, uint32_t idx,
                      char *buf, size_t len) {
    const uint8_t *b = r->params_blob;
    size_t off = 0, n = r->params_blob_len;
    for (uint32_t i = 0; b && i < G->nparams; i++) {
        uint32_t t = p->params[G->first_param + i].type;
        size_t used = 0;
        fl_val v;
        if (fv_decode(p, t, b + off, n - off, &used, &v)) return -1;
        off += used;
        if (i != idx) {
            fv_decref(p, t, v);
            continue;
        }
        FILE *f = fmemopen(buf, len, "w");
        if (!f) {
            fv_decref(p, t, v);
            return -1;
        }
        setvbuf(f, NULL, _IONBF, 0);
        fv_print_json(p, t, v, f);
        long at = ftell(f);
        fclose(f);
        fv_decref(p, t, v);
        if (at < 0) return -1;
        if ((size_t)at >= len - 1 && len > 4) memcpy(buf + len - 4, "...", 4); /* cut short */
        else buf[at] = 0;
        return 0;
    }
    return -1;
}

/* An argument that changed and is a parameter of the flow itself: name it, with its
 * value in run `prev` and in this run (both recorded with their runs). 1 when said. */
static int flow_param_hint(why_ctx *w, const why_inst *in, int param, int64_t prev,
                           why_answer *a) {
    const fl_plan *p = w->plan;
    if (in->node >= p->n_nodes) return 0;
    const plan_node *N = &p->nodes[in->node];
    if ((N->kind != PN_CALL && N->kind != PN_EXPAND && N->kind != PN_EXPAND_KWARGS) ||
        (uint32_t)param >= N->nargs)
        return 0;
    const plan_node *A = &p->nodes[p->args[N->first_arg + (uint32_t)param].node];
    if (A->kind != PN_PARAM) return 0;
    const plan_graph *G = NULL; /* the flow's own graph: a group's parameters are not the run's */
    for (uint32_t g = 0; g < p->n_graphs; g++)
        if (p->graphs[g].kind == PG_FLOW && !strcmp(plan_str(p, p->graphs[g].name), w->r.flow))
            G = &p->graphs[g];
    if (!G || in->node < G->first_node || in->node >= G->first_node + G->nnodes ||
        A->aux >= G->nparams)
        return 0;
    if (w->prev.id != prev) {
        if (w->prev.id) state_run_free(&w->prev);
        memset(&w->prev, 0, sizeof w->prev);
        if (state_run_get(w->st, prev, &w->prev) != 0) {
            memset(&w->prev, 0, sizeof w->prev);
            return 0;
        }
    }
    if (param_json(p, G, &w->prev, A->aux, a->was, sizeof a->was) ||
        param_json(p, G, &w->r, A->aux, a->now, sizeof a->now)) {
        *a->was = *a->now = 0;
        return 0;
    }
    snprintf(a->flow_param, sizeof a->flow_param, "%s", plan_str(p, p->params[G->first_param + A->aux].name));
    size_t n = strlen(a->text);
    snprintf(a->text + n, sizeof a->text - n, ": the flow's parameter `%s` was %s, now %s",
             a->flow_param, a->was, a->now);
    return 1;
}

static void explain(why_ctx *w, const why_inst *in, why_answer *a) {
    memset(a, 0, sizeof *a);
    a->param = -1;
    fl_ctx *sctx = state_ctx(w->st);
    state_cache_entry e;
    if (!strcmp(in->state, "cached") || in->cache_hit) {
        a->served = 1;
        int got = in->has_key ? state_cache_entry_get(w->st, in->task, &in->key, &e) : 0;
        if (got == 1) {
            fl_free(sctx, e.val);
            char when[32];
            a->from_run = e.run;
            a->from_started = run_started(w, e.run);
            cli_iso_time(a->from_started, when, sizeof when);
            say(a, "served", "served from the cache: its result was produced by run %lld (%s)",
                (long long)e.run, when);
        } else {
            say(a, "served", "served from the cache; %s",
                got < 0 ? "its entry could not be read"
                        : "its entry is gone since (flowrun gc, or dropped as damaged)");
        }
        return;
    }
    if (strcmp(in->state, "succeeded") && strcmp(in->state, "failed")) {
        say(a, "did_not_run", "it did not run: %s", in->state);
        return;
    }
    a->ran = 1;
    if (w->no_cache) {
        say(a, "no_cache", "--no-cache: run %lld served nothing from the cache",
            (long long)w->run);
        return;
    }
    uint32_t t = 0;
    int have_task = w->plan && task_index(w->plan, in->task, &t) == 0;
    if (have_task && !w->plan->tasks[t].cache) {
        say(a, "not_cached", "`cache: false`: it runs every time");
        return;
    }
    if (!strcmp(in->state, "failed")) {
        say(a, "failed",
            "it ran and failed (flowrun logs %lld %s): a failed instance writes no cache entry, "
            "so what its key was made of is not known",
            (long long)w->run, in->name);
        return;
    }
    if (!in->has_key) {
        say(a, "key_changed", "it ran; the run recorded no cache key for it");
        return;
    }
    int got = state_cache_entry_get(w->st, in->task, &in->key, &e);
    if (got != 1) {
        say(a, "entry_gone", "it ran; %s",
            got < 0 ? "its cache entry could not be read"
                    : "its cache entry is gone since (flowrun gc), so its key's parts are not known");
        return;
    }
    fl_free(sctx, e.val);
    if (!w->rsn) {
        say(a, "key_changed", "it ran; its plan cannot be read to compare its key's parts: %s",
            w->plan_err);
        return;
    }
    static state_cache_entry then; /* 2 KiB: not on the stack, and one call at a time */
    int64_t prev = 0;
    got = have_task ? rsn_before(w->rsn, in->task, in->tmpl, in->idx, w->run, &then, &prev) : 0;
    if (got < 0) {
        say(a, "no_entry", "it ran; the earlier runs could not be read (a damaged state, or out "
                           "of memory)");
        return;
    }
    if (!have_task) {
        say(a, "code_changed", "the code changed: task %s is not in the plan %s any more",
            in->task, w->r.plan_path);
        return;
    }
    if (got == 0) {
        int looked = rsn_runs_looked(w->rsn);
        if (looked == 0)
            say(a, "no_entry", "no entry (no run of %s before run %lld)", w->r.flow,
                (long long)w->run);
        else
            say(a, "no_entry", "no entry (none of the %s%d run%s of %s before run %lld has one)",
                looked == RSN_RUNS ? "last " : "", looked, looked == 1 ? "" : "s", w->r.flow,
                (long long)w->run);
        return;
    }
    fl_free(sctx, then.val);
    a->from_run = prev;
    a->from_started = run_started(w, prev);
    rsn_parts now = {e.identity, e.ninputs, e.inputs}, before = {then.identity, then.ninputs,
                                                                 then.inputs};
    if (!now.identity && !now.ninputs) {
        say(a, "key_changed", "the key changed (its entry keeps no parts to compare)");
        return;
    }
    rsn_reason r;
    memset(&r, 0, sizeof r);
    rsn_compare(w->rsn, t, &now, &before, &r);
    a->param = r.param;
    snprintf(a->text, sizeof a->text, "%s", r.text);
    a->kind = rsn_kind_name(r.kind);
    const plan_task *T = &w->plan->tasks[t];
    if (r.kind == RSN_INPUT && !strstr(r.text, ", and `") &&
        w->plan->types[w->plan->params[T->first_param + (uint32_t)r.param].type].kind == PT_PATH) {
        /* "(the file's content)" gives way to the file's name */
        char *paren = strstr(a->text, " (the file's content)");
        if (paren) *paren = 0;
        name_file(w, a, now.inputs[r.param], before.inputs[r.param]);
    } else if (r.kind == RSN_INPUT && !strstr(r.text, ", and `")) {
        if (!flow_param_hint(w, in, r.param, prev, a)) upstream_hint(w, in, r.param, a);
    }
    size_t n = strlen(a->text);
    snprintf(a->text + n, sizeof a->text - n, " (compared with run %lld)", (long long)prev);
}

/* ---- printing ---- */
static const char *param_of(const why_ctx *w, const why_inst *in, int param) {
    uint32_t t;
    if (param < 0 || !w->plan || task_index(w->plan, in->task, &t)) return NULL;
    return plan_str(w->plan, w->plan->params[w->plan->tasks[t].first_param + (uint32_t)param].name);
}

static void json_answer(const why_ctx *w, const why_inst *in, const why_answer *a) {
    printf("{\"name\":");
    cli_json_str(stdout, in->name);
    printf(",\"task\":");
    cli_json_str(stdout, in->task);
    printf(",\"state\":");
    cli_json_str(stdout, in->state);
    printf(",\"served\":%s,\"reason\":", a->served ? "true" : "false");
    cli_json_str(stdout, a->kind);
    printf(",\"param\":");
    cli_json_str(stdout, param_of(w, in, a->param));
    printf(",\"file\":");
    cli_json_str(stdout, *a->file ? a->file : NULL);
    for (int i = 0; i < 2; i++) { /* the file's record, was and now (name_file) */
        printf(",\"file_%s\":", i ? "now" : "was");
        if (!(a->fknown & (1 << i))) {
            printf("null");
            continue;
        }
        char t[32];
        cron_fmt_time(a->fmtime[i] / 1000000000, t);
        printf("{\"sha256\":\"%s\",\"size\":%lld,\"mtime\":\"%s\"}", a->fhash[i],
               (long long)a->fsize[i], t);
    }
    printf(",\"upstream\":");
    cli_json_str(stdout, *a->upstream ? a->upstream : NULL);
    if (*a->flow_param) { /* the values are JSON already */
        printf(",\"flow_param\":");
        cli_json_str(stdout, a->flow_param);
        const char *v[2] = {a->was, a->now};
        for (int i = 0; i < 2; i++) {
            size_t l = strlen(v[i]);
            printf(",\"%s\":", i ? "now" : "was");
            if (l >= 3 && !strcmp(v[i] + l - 3, "...")) cli_json_str(stdout, v[i]); /* cut */
            else fputs(v[i], stdout);
        }
    }
    printf(",\"%s\":", a->served ? "produced_by" : "compared_with");
    if (a->from_run) printf("%lld", (long long)a->from_run);
    else fputs("null", stdout);
    printf(",\"text\":");
    cli_json_str(stdout, a->text);
    putchar('}');
}

/* 9588 -> "9,588" */
static const char *count_text(long n, char *buf, size_t len) {
    char d[32];
    int k = snprintf(d, sizeof d, "%ld", n), o = 0;
    for (int i = 0; i < k && (size_t)o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = 0;
    return buf;
}

/* ---- a binding: the summary ---- */
typedef struct why_group {
    const char *kind;
    int param;
    long count;
    why_inst *first[WHY_SHOW];
    why_answer *ans[WHY_SHOW];
} why_group;

typedef struct collect {
    const hit *w;     /* the binding */
    const char *prefix; /* the index prefix of its instances ("" at the top) */
    why_inst *v;
    size_t n, cap;
    int oom;
} collect;

static char *dup_or(const char *s) {
    return s ? strdup(s) : NULL;
}

static int take_inst(const state_inst *r, void *ctx) {
    collect *c = ctx;
    if (r->node != c->w->node) return 0;
    if (c->w->tmpl ? !r->tmpl || strcmp(r->tmpl, c->w->tmpl) : r->tmpl != NULL) return 0;
    if (strncmp(r->idx, c->prefix, strlen(c->prefix))) return 0;
    if (strchr(r->idx + strlen(c->prefix), '/')) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        why_inst *v = realloc(c->v, cap * sizeof *v);
        if (!v) return c->oom = 1;
        c->v = v;
        c->cap = cap;
    }
    why_inst *in = &c->v[c->n++];
    *in = (why_inst){dup_or(r->name), dup_or(r->task), dup_or(r->tmpl), dup_or(r->idx), "",
                     r->node, r->cache_hit, r->cache_key != NULL, {{0}}};
    snprintf(in->state, sizeof in->state, "%s", r->state);
    if (r->cache_key) in->key = *r->cache_key;
    if (!in->name || !in->task || !in->idx || (r->tmpl && !in->tmpl)) c->oom = 1;
    return c->oom;
}

static void inst_free(why_inst *in) {
    free(in->name);
    free(in->task);
    free(in->tmpl);
    free(in->idx);
}

/* The words of a reason in the summary line: "input `f` changed", "no earlier entry". */
static void group_words(const why_ctx *w, const why_group *g, const why_inst *in, char *buf,
                        size_t len) {
    const char *k = g->kind, *p = param_of(w, in, g->param);
    if (!strcmp(k, "input_changed") && p) snprintf(buf, len, "input `%s` changed", p);
    else if (!strcmp(k, "input_changed")) snprintf(buf, len, "inputs changed");
    else if (!strcmp(k, "code_changed")) snprintf(buf, len, "code changed");
    else if (!strcmp(k, "no_entry")) snprintf(buf, len, "no earlier entry");
    else if (!strcmp(k, "no_cache")) snprintf(buf, len, "--no-cache");
    else if (!strcmp(k, "not_cached")) snprintf(buf, len, "`cache: false`");
    else if (!strcmp(k, "failed")) snprintf(buf, len, "failed");
    else if (!strcmp(k, "entry_gone")) snprintf(buf, len, "entry gone");
    else if (!strcmp(k, "key_changed")) snprintf(buf, len, "key changed");
    else snprintf(buf, len, "%s", k);
}

static int summarise(why_ctx *w, const cli_args *args, const hit *b, long ninst) {
    char prefix[1024];
    const char *slash = strrchr(b->idx, '/');
    snprintf(prefix, sizeof prefix, "%.*s", slash ? (int)(slash - b->idx) + 1 : 0, b->idx);
    collect c = {b, prefix, NULL, 0, 0, 0};
    int rc = state_insts_each(w->st, w->run, take_inst, &c);
    why_group *g = NULL;
    size_t ng = 0;
    long ran = 0, served = 0, other = 0;
    why_answer a;
    if (rc || c.oom) {
        fprintf(stderr, "flowrun why: the instances of run %lld cannot be read%s\n",
                (long long)w->run, c.oom ? ": out of memory" : "");
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        explain(w, &c.v[i], &a);
        if (a.served) {
            served++;
            continue;
        }
        if (a.ran) ran++;
        else other++;
        size_t k = 0;
        while (k < ng && (strcmp(g[k].kind, a.kind) || g[k].param != a.param)) k++;
        if (k == ng) {
            why_group *m = realloc(g, (ng + 1) * sizeof *m);
            if (!m) {
                fputs("flowrun why: out of memory\n", stderr);
                rc = 2;
                goto out;
            }
            g = m;
            memset(&g[ng], 0, sizeof *g);
            g[ng].kind = a.kind;
            g[ng].param = a.param;
            ng++;
        }
        if (g[k].count < WHY_SHOW) {
            why_answer *keep = malloc(sizeof *keep);
            if (!keep) {
                fputs("flowrun why: out of memory\n", stderr);
                rc = 2;
                goto out;
            }
            *keep = a;
            g[k].first[g[k].count] = &c.v[i];
            g[k].ans[g[k].count] = keep;
        }
        g[k].count++;
    }
    char n1[32], n2[32], words[256];
    if (args->json) {
        printf("{\"run\":%lld,\"flow\":", (long long)w->run);
        cli_json_str(stdout, w->r.flow);
        printf(",\"binding\":");
        cli_json_str(stdout, b->binding);
        printf(",\"task\":");
        cli_json_str(stdout, b->task);
        printf(",\"instances\":%zu,\"ran\":%ld,\"served\":%ld,\"did_not_run\":%ld,\"reasons\":[",
               c.n, ran, served, other);
        for (size_t k = 0; k < ng; k++) {
            group_words(w, &g[k], g[k].first[0], words, sizeof words);
            printf("%s{\"reason\":", k ? "," : "");
            cli_json_str(stdout, g[k].kind);
            printf(",\"param\":");
            cli_json_str(stdout, param_of(w, g[k].first[0], g[k].param));
            printf(",\"words\":");
            cli_json_str(stdout, words);
            printf(",\"count\":%ld,\"instances\":[", g[k].count);
            for (long i = 0; i < g[k].count && i < WHY_SHOW; i++) {
                if (i) putchar(',');
                json_answer(w, g[k].first[i], g[k].ans[i]);
            }
            printf("],\"more\":%ld}", g[k].count > WHY_SHOW ? g[k].count - WHY_SHOW : 0);
        }
        puts("]}");
    } else {
        printf("%s (task %s) in run %lld: %s instance%s\n", b->binding, b->task,
               (long long)w->run, count_text((long)c.n, n1, sizeof n1), c.n == 1 ? "" : "s");
        printf("%s ran", count_text(ran, n1, sizeof n1));
        int first = 1;
        for (size_t k = 0; k < ng; k++) {
            if (!strcmp(g[k].kind, "did_not_run")) continue;
            group_words(w, &g[k], g[k].first[0], words, sizeof words);
            printf("%s %s %s", first ? ":" : ",", count_text(g[k].count, n2, sizeof n2), words);
            first = 0;
        }
        printf("; %s served from the cache", count_text(served, n1, sizeof n1));
        if (other) printf("; %s did not run", count_text(other, n1, sizeof n1));
        putchar('\n');
        for (size_t k = 0; k < ng; k++) {
            group_words(w, &g[k], g[k].first[0], words, sizeof words);
            printf("  %s (%s):\n", words, count_text(g[k].count, n1, sizeof n1));
            for (long i = 0; i < g[k].count && i < WHY_SHOW; i++)
                printf("    %s: %s\n", g[k].first[i]->name, g[k].ans[i]->text);
            if (g[k].count > WHY_SHOW)
                printf("    ... and %s more\n", count_text(g[k].count - WHY_SHOW, n1, sizeof n1));
        }
    }
    (void)ninst;
out:
    for (size_t k = 0; k < ng; k++)
        for (long i = 0; i < g[k].count && i < WHY_SHOW; i++) free(g[k].ans[i]);
    free(g);
    for (size_t i = 0; i < c.n; i++) inst_free(&c.v[i]);
    free(c.v);
    return rc;
}

/* ---- the command ---- */
static void why_close(why_ctx *w) {
    rsn_close(w->rsn);
    ck_free(&w->cx);
    for (size_t i = 0; i < w->nfiles; i++) fl_free(w->ctx, w->files[i].path);
    fl_free(w->ctx, w->files);
    fl_htab_free(w->ctx, &w->ftab);
    if (w->plan) plan_free(w->plan);
    if (w->r.ctx) state_run_free(&w->r);
    if (w->prev.id) state_run_free(&w->prev);
}

/* The run's plan and the engine over it; a plan that cannot be read leaves both NULL
 * (only the answers that compare parts need them). */
static void open_plan(why_ctx *w) {
    if (!w->r.plan_path) {
        snprintf(w->plan_err, sizeof w->plan_err, "the run recorded no plan");
        return;
    }
    w->plan = plan_read_file(w->ctx, w->r.plan_path, w->plan_err, sizeof w->plan_err);
    if (!w->plan) return;
    fl_digest h;
    char err[256];
    if (hash_file(w->ctx, w->r.plan_path, &h, err, sizeof err) == 0 &&
        memcmp(h.b, w->r.plan_hash.b, sizeof h.b))
        fprintf(stderr, "flowrun why: note: %s was rebuilt since run %lld; its tasks' parameter "
                        "names and versions are read as they are now\n",
                w->r.plan_path, (long long)w->run);
    w->cx.plan = w->plan;
    w->rsn = rsn_open(w->ctx, w->plan, w->st, &w->cx, w->r.flow);
}

int flowrun_cmd_why(int argc, char **argv) {
    cli_args args;
    int64_t id = -1;
    resolver *R = calloc(1, sizeof *R);
    why_ctx *w = calloc(1, sizeof *w);
    fl_state *st = R && w ? cli_instance_args(argc, argv, &args, &id, R,
                                              CLI_INST_JSON | CLI_INST_EXISTING)
                          : NULL;
    int rc = 2;
    if (!R || !w) fputs("flowrun why: out of memory\n", stderr);
    const level *L = st && id > 0 ? cli_resolved(R, "why", id, &rc) : NULL;
    if (!L) goto out;
    rc = 2;
    w->ctx = flowrun_ctx();
    w->st = st;
    w->run = id;
    if (state_run_get(st, id, &w->r)) {
        fprintf(stderr, "flowrun why: run %lld cannot be read\n", (long long)id);
        goto out;
    }
    if (state_env_use(st, w->r.env, 0)) goto out; /* the entries that run could use */
    w->no_cache = w->r.options && strstr(w->r.options, "no_cache=1") != NULL;
    open_plan(w);
    if (L->nwhole) {
        rc = summarise(w, &args, &L->whole[0], L->nwhole_inst[0]);
    } else {
        const hit *h = &L->one[0];
        why_inst in = {h->name, h->task, h->tmpl, h->idx, "", h->node, h->cached, h->has_key,
                       h->key};
        snprintf(in.state, sizeof in.state, "%s", h->state);
        why_answer a;
        explain(w, &in, &a);
        if (args.json) {
            printf("{\"run\":%lld,\"flow\":", (long long)id);
            cli_json_str(stdout, w->r.flow);
            printf(",\"instance\":");
            json_answer(w, &in, &a);
            puts("}");
        } else {
            printf("%s (run %lld): %s\n", h->name, (long long)id, a.text);
        }
        rc = 0;
    }
    if (state_failed(st) && rc == 0) rc = 2;
out:
    if (w) why_close(w);
    if (st) state_close(st);
    if (R) cli_resolver_free(R);
    free(R);
    free(w);
    return rc;
}
