/*
 * reason.c — the reason engine (see reason.h for what it answers and where "the
 * entry this instance had before" comes from).
 *
 * DESIGN
 *   Nothing here decides a hit: the caller (dryrun.c's recorder, over history.c's
 *   lookup, the path every run takes) has already missed, and asks why. The engine
 *   then (1) computes the instance's parts now, argument by argument (cachekey.c
 *   ck_arg_part through the caller's ck_ctx: under --dry-run a file the
 *   file-identity index does not know is not read, and that argument's answer is
 *   "file metadata changed" with the files' names); (2) finds the instance's record
 *   in the newest runs of the flow (each run read once, when first needed, into an
 *   fl_htab by name template and index path; state_insts_each is one pass over the
 *   run's packed rows); (3) reads that record's cache entry and compares: identity
 *   first (the code), then each argument in parameter order. The first difference
 *   is the answer. Before (2), a `path` argument whose file the file-identity index
 *   has never seen is "a new file" (a file added to a folder takes the index of
 *   another). For a `dir` that changed, the files whose identity differs from the
 *   index are named (walked without hashing). The cost is paid only for instances
 *   that miss.
 *
 *   The identity is one 8-byte hash, so which part of it changed is told from the
 *   task as it is now: a versioned task's `version`, an unversioned C task's library
 *   (its content hash), an sh task's command. An entry written before schema 5 has
 *   no parts (zeros): its instances are "the key changed" (RSN_UNKNOWN).
 */
#define _GNU_SOURCE
#include "reason.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "htab.h"

typedef struct prev_inst {
    char *name;  /* tmpl "\x1f" idx */
    fl_digest key;
} prev_inst;

typedef struct prev_run {
    int64_t id;
    int loaded;        /* 1 read, -1 could not be read */
    prev_inst *v;
    size_t n, cap;
    fl_htab tab;       /* fl_hash_str(name) -> index in v */
} prev_run;

struct rsn_ctx {
    fl_ctx *ctx;
    const fl_plan *p;
    fl_state *st;
    ck_ctx *cx;
    const char *flow;
    prev_run runs[RSN_RUNS]; /* newest first */
    int nruns, listed;       /* runs found, and whether they were listed yet */
    int64_t before;          /* listed: the runs older than this one (0: all) */
    int oom;
    uint64_t *now;           /* the instance's argument parts, reused */
    uint32_t now_cap;
};

static const char *const kind_names[] = {"no_entry",   "code_changed", "input_changed",
                                         "file_metadata_changed", "input_unreadable",
                                         "not_cached", "no_cache", "refused", "key_changed",
                                         "new_file"};

const char *rsn_kind_name(rsn_kind k) {
    return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "unknown";
}

rsn_ctx *rsn_open(fl_ctx *ctx, const fl_plan *p, fl_state *st, ck_ctx *cx, const char *flow) {
    rsn_ctx *r = fl_calloc(ctx, 1, sizeof *r);
    if (!r) return NULL;
    *r = (rsn_ctx){.ctx = ctx, .p = p, .st = st, .cx = cx, .flow = flow};
    return r;
}

static void run_free(rsn_ctx *r, prev_run *pr) {
    for (size_t i = 0; i < pr->n; i++) fl_free(r->ctx, pr->v[i].name);
    fl_free(r->ctx, pr->v);
    fl_htab_free(r->ctx, &pr->tab);
}

void rsn_close(rsn_ctx *r) {
    if (!r) return;
    for (int i = 0; i < r->nruns; i++) run_free(r, &r->runs[i]);
    fl_free(r->ctx, r->now);
    fl_free(r->ctx, r);
}

/* ---- the earlier runs ---- */

typedef struct list_ctx {
    rsn_ctx *r;
    int64_t before;
} list_ctx;

static int list_run(const state_run *run, void *ctx) {
    list_ctx *l = ctx;
    rsn_ctx *r = l->r;
    if ((l->before && run->id >= l->before) || !run->flow || strcmp(run->flow, r->flow)) return 0;
    r->runs[r->nruns++] = (prev_run){.id = run->id};
    return r->nruns == RSN_RUNS;
}

static char *inst_name(fl_ctx *ctx, const char *tmpl, const char *idx) {
    return fl_sprintf(ctx, "%s\x1f%s", tmpl ? tmpl : "", idx ? idx : "");
}

static int load_row(const state_inst *row, void *ctx) {
    rsn_ctx *r = ((void **)ctx)[0];
    prev_run *pr = ((void **)ctx)[1];
    if (!row->cache_key || !row->tmpl) return 0; /* nothing to compare, or an old row */
    if (pr->n == pr->cap) {
        size_t cap = pr->cap ? pr->cap * 2 : 256;
        prev_inst *v = fl_reallocarray(r->ctx, pr->v, cap, sizeof *v);
        if (!v) return r->oom = 1;
        pr->v = v;
        pr->cap = cap;
    }
    char *name = inst_name(r->ctx, row->tmpl, row->idx);
    if (!name || fl_htab_reserve(r->ctx, &pr->tab, 1)) {
        fl_free(r->ctx, name);
        return r->oom = 1;
    }
    pr->v[pr->n] = (prev_inst){name, *row->cache_key};
    fl_htab_add(&pr->tab, fl_hash_str(name), pr->n);
    pr->n++;
    return 0;
}

static const prev_inst *run_find(rsn_ctx *r, prev_run *pr, const char *name) {
    if (!pr->loaded) {
        void *c[2] = {r, pr};
        pr->loaded = state_insts_each(r->st, pr->id, load_row, c) || r->oom ? -1 : 1;
    }
    if (pr->loaded < 0) return NULL;
    uint64_t h = fl_hash_str(name);
    for (fl_htab_slot *s = fl_htab_find(&pr->tab, h); s && s->hash; s = fl_htab_next(&pr->tab, s, h))
        if (!strcmp(pr->v[s->val].name, name)) return &pr->v[s->val];
    return NULL;
}

int rsn_before(rsn_ctx *r, const char *task, const char *tmpl, const char *idx, int64_t before,
               state_cache_entry *e, int64_t *run) {
    if (!r->listed || r->before != before) { /* listed once per `before` (why: older runs) */
        for (int i = 0; i < r->nruns; i++) run_free(r, &r->runs[i]);
        r->nruns = 0;
        r->listed = 0;
        list_ctx l = {r, before};
        if (state_runs_each(r->st, list_run, &l)) return -1;
        r->listed = 1;
        r->before = before;
    }
    char *name = inst_name(r->ctx, tmpl, idx);
    if (!name) return -1;
    int rc = 0;
    for (int i = 0; i < r->nruns && rc == 0; i++) {
        const prev_inst *pi = run_find(r, &r->runs[i], name);
        if (!pi) continue;
        rc = state_cache_entry_get(r->st, task, &pi->key, e);
        if (rc == 1) *run = r->runs[i].id;
    }
    fl_free(r->ctx, name);
    return rc;
}

int rsn_runs_looked(const rsn_ctx *r) { return r->nruns; }

/* ---- comparing ---- */

/* What of task's identity is told apart from the task as it is now. */
static void code_text(const fl_plan *p, uint32_t task, char *buf, size_t len) {
    const plan_task *T = &p->tasks[task];
    if (T->version != PLAN_NONE)
        snprintf(buf, len, "the code changed: `version` (now \"%s\")", plan_str(p, T->version));
    else if (T->kind == TK_C)
        snprintf(buf, len, "the code changed: library %s (its content) or the task's signature",
                 plan_str(p, p->libs[T->lib].path));
    else if (T->kind == TK_SH)
        snprintf(buf, len, "the code changed: the command");
    else
        snprintf(buf, len, "the code changed");
}

static const char *param_name(const fl_plan *p, uint32_t task, int i) {
    return plan_str(p, p->params[p->tasks[task].first_param + (uint32_t)i].name);
}

void rsn_compare(rsn_ctx *r, uint32_t task, const rsn_parts *now, const rsn_parts *then,
                 rsn_reason *out) {
    const fl_plan *p = r->p;
    out->param = -1;
    if (!then->identity && !then->ninputs) {
        out->kind = RSN_UNKNOWN;
        snprintf(out->text, sizeof out->text,
                 "the key changed (its earlier entry keeps no parts to compare)");
        return;
    }
    if (now->identity != then->identity) {
        out->kind = RSN_CODE;
        code_text(p, task, out->text, sizeof out->text);
        return;
    }
    size_t len = 0;
    for (uint32_t i = 0; i < now->ninputs && i < then->ninputs; i++) {
        if (now->inputs[i] == then->inputs[i]) continue;
        int k = p->types[p->params[p->tasks[task].first_param + i].type].kind;
        const char *what = k == PT_PATH ? " (the file's content)" : k == PT_DIR ? " (its files)" : "";
        if (out->param < 0) { /* the first: the answer; any other is named after it */
            out->kind = RSN_INPUT;
            out->param = (int)i;
            len = (size_t)snprintf(out->text, sizeof out->text, "input `%s` changed%s",
                                   param_name(p, task, (int)i), what);
        } else if (len + 64 < sizeof out->text) {
            len += (size_t)snprintf(out->text + len, sizeof out->text - len, ", and `%s`%s",
                                    param_name(p, task, (int)i), what);
        }
    }
    if (out->param >= 0) return;
    if (now->ninputs != then->ninputs) {
        out->kind = RSN_CODE;
        snprintf(out->text, sizeof out->text, "the code changed: the task's parameters");
        return;
    }
    out->kind = RSN_NO_ENTRY;
    snprintf(out->text, sizeof out->text, "no entry (its earlier entry could not be served)");
}

void rsn_explain(rsn_ctx *r, const rec_inst *ii, const fl_val *args, rsn_reason *out) {
    const fl_plan *p = r->p;
    const plan_task *T = &p->tasks[ii->task];
    memset(out, 0, sizeof *out);
    out->param = -1;
    char err[512];
    if (T->nparams > r->now_cap) {
        uint64_t *v = fl_reallocarray(r->ctx, r->now, T->nparams, sizeof *v);
        if (!v) goto nomem;
        r->now = v;
        r->now_cap = T->nparams;
    }
    /* (1) the parts now; an argument that cannot be had is the answer, and so is a
     * file never hashed before (the instance at this index had another file) */
    rsn_parts now = {0, T->nparams, r->now};
    if (ck_ident8(r->cx, ii->task, &now.identity, err, sizeof err)) goto nomem;
    for (uint32_t i = 0; i < T->nparams; i++) {
        if (p->types[p->params[T->first_param + i].type].kind != PT_PATH) continue;
        const char *path = fv_as_str(args[i])->data;
        if (state_file_known(r->st, path) != 0) continue;
        out->kind = RSN_NEW_FILE;
        out->param = (int)i;
        snprintf(out->text, sizeof out->text, "input `%s`: a new file: %.500s",
                 param_name(p, ii->task, (int)i), path);
        return;
    }
    for (uint32_t i = 0; i < T->nparams; i++) {
        r->cx->unread = 0;
        r->cx->unread_names[0] = 0;
        if (ck_arg_part(r->cx, p->params[T->first_param + i].type, args[i], &r->now[i], err,
                        sizeof err) == 0)
            continue;
        out->param = (int)i;
        if (r->cx->unread) {
            out->kind = RSN_FILE_META;
            snprintf(out->text, sizeof out->text, "input `%s`: file metadata changed: %.400s",
                     param_name(p, ii->task, (int)i), r->cx->unread_names);
            if (r->cx->unread > 1) /* how many, when more than one */
                snprintf(out->text + strlen(out->text), sizeof out->text - strlen(out->text),
                         " (%ld files)", r->cx->unread);
        } else {
            out->kind = RSN_UNREADABLE;
            snprintf(out->text, sizeof out->text, "input `%s`: %.500s",
                     param_name(p, ii->task, (int)i), err);
        }
        return;
    }
    /* (2) the earlier entry: first an entry of this very key that another environment
     * wrote, which this run's may not use (state.c, "environments") */
    state_cache_entry e;
    int64_t run = 0;
    if (ii->has_key) {
        int other = state_cache_entry_other(r->st, plan_str(p, T->name), &ii->key, &e);
        if (other < 0) goto nomem;
        if (other == 1) {
            char env[128];
            fl_free(state_ctx(r->st), e.val);
            state_env_name(r->st, e.environment, env, sizeof env);
            out->kind = RSN_NO_ENTRY;
            out->prev_run = e.run;
            snprintf(out->text, sizeof out->text,
                     "no entry this environment may use (environment %s has one, from run %lld)",
                     env, (long long)e.run);
            return;
        }
    }
    char ib[24];
    int got = rsn_before(r, plan_str(p, T->name), ii->tmpl, rec_inst_idx(ii, ib, sizeof ib), 0,
                         &e, &run);
    if (got < 0) goto nomem;
    if (got == 0) {
        out->kind = RSN_NO_ENTRY;
        snprintf(out->text, sizeof out->text, "no entry (no earlier run of the flow has one)");
        return;
    }
    fl_free(state_ctx(r->st), e.val);
    out->prev_run = run;
    /* (3) compare */
    rsn_parts then = {e.identity, e.ninputs, e.inputs};
    rsn_compare(r, ii->task, &now, &then, out);
    int k = -1; /* the kind of the one argument that changed */
    if (out->kind == RSN_INPUT && !strstr(out->text, ", and `"))
        k = (int)p->types[p->params[T->first_param + (uint32_t)out->param].type].kind;
    size_t n = strlen(out->text);
    if (k == PT_PATH) { /* which file */
        snprintf(out->text + n, sizeof out->text - n, ": %.400s",
                 fv_as_str(args[out->param])->data);
    } else if (k == PT_DIR) {
        /* which files: those whose identity differs from the index's record (under
         * --exact nothing was noted, so the record is still the one hashed before);
         * walked without hashing. A removed file is not seen (no manifest is kept). */
        int no_read = r->cx->no_read;
        uint64_t part;
        r->cx->no_read = 1;
        r->cx->unread = 0;
        r->cx->unread_names[0] = 0;
        ck_arg_part(r->cx, p->params[T->first_param + (uint32_t)out->param].type,
                    args[out->param], &part, err, sizeof err);
        r->cx->no_read = no_read;
        if (r->cx->unread)
            snprintf(out->text + n, sizeof out->text - n, ": %.400s", r->cx->unread_names);
    }
    return;
nomem:
    out->kind = RSN_NO_ENTRY;
    snprintf(out->text, sizeof out->text, "no entry (the reason could not be computed: %s)",
             "out of memory or a damaged state");
}
