/*
 * check_memo.c — what checking each flow body told, kept from one compile to the
 * next (flowc lsp): an edit checks again only the flows it touched.
 *
 * DESIGN
 * flowc lsp checks the whole program after every edit; most of that time goes into
 * flow bodies (check_body.c), and an edit is nearly always inside one of them. A
 * flow's body can depend on the rest of the program only through what it names: the
 * declarations (tasks, types, libraries, groups, imports, and the names of the other
 * flows), what the declaration pass made of them (which are `bad`, which libraries
 * were read), and the names earlier bodies gave the tasks they made (combine(a,b)#2
 * is numbered across the program). So a flow body whose own text is unchanged,
 * checked after the same declarations and the same earlier names, reports exactly
 * what it reported last time, at the same places relative to its first line.
 *
 * The memo keeps, per flow of the program (by name), its text, the digest of what
 * came before it, and what its check told in order: diagnostics (through the
 * diagnostics' sink), hovers and references (through the observer), the combine
 * names it counted, the tasks it made (their names) and how many plan nodes. The
 * digest starts from the environment (the text and place of every top-level item
 * but the flows, the flows' names, the imported files' text, the declarations'
 * bad flags) and is continued with
 * every combine name counted and every task made, in order. A flow whose text and
 * digest match is replayed: its records are told again, lines moved by as much as
 * the flow moved; the tasks it made are pushed as name-only placeholders and its
 * combine names counted again, so the bodies after it see the same names. Else it
 * is checked and recorded. (The node limit grows with the source's length: a body is
 * replayed only when the plan stays under it with the body's nodes, so no check of
 * the limit inside the body could have failed.) A recording is not kept when the check changed what
 * other bodies see beyond that (it reported a group's errors first, used another
 * flow's name, made a task other than a combine, hit the node limit, ran out of
 * memory): such a flow is simply checked every time.
 *
 * The plan of a compile with a memo lacks the replayed bodies; flowc_compile frees it
 * and returns NULL (flowc lsp wants only what was told). A memo is used only when the
 * diagnostics have a sink (as flowc lsp's have). The records of flows no longer in
 * the program are dropped at the end of each compile.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash.h"

enum { EV_DIAG, EV_HOVER, EV_REF, EV_COMBINE, EV_TASK };
enum { W_ERROR, W_WARNING, W_NOTE };
#define NOSTR UINT32_MAX

/* one thing a flow's check told or did, in order */
typedef struct memo_ev {
    uint8_t kind;        /* EV_* */
    uint8_t what;        /* DIAG: W_*; TASK: its plan_task_kind */
    uint8_t rel_a, rel_b;/* a (b) is in the flow: its lines move with it */
    int mod_a, mod_b;    /* HOVER: mod_a; REF: use in mod_a, definition in mod_b */
    fl_span a, b;        /* DIAG, HOVER: a; REF: a the use, b the definition */
    uint32_t s[3];       /* strings (offsets into strs) or NOSTR: DIAG file, message,
                            hint; HOVER text; COMBINE the name counted; TASK its name */
} memo_ev;

typedef struct memo_flow {
    char *name;          /* the flow's name (the key) */
    char *text;          /* its source text when recorded */
    size_t len;
    bool ok;             /* the records may be replayed */
    uint64_t before;     /* the digest of what came before it */
    int line;            /* its first line when recorded */
    uint32_t nodes;      /* plan nodes its check made (the node limit counts them) */
    bool bad;            /* its body had errors */
    unsigned gen;        /* the compile that last saw it */
    memo_ev *ev;
    size_t nev, capev;
    char *strs;
    size_t nstrs, capstrs;
} memo_flow;

struct flowc_memo {
    memo_flow **flows;
    int n, cap;
    chk_map byname;      /* name -> index in flows (keys are the flows' own names) */
    fl_ctx ctx;          /* the map's allocations */
    unsigned gen;        /* compiles so far */
    int replayed;        /* flows told again in the last compile */
    /* during a compile */
    chk_ctx *c;
    fl_diag *diag;                   /* the real diagnostics, whose sink is wrapped */
    fl_diag_sink inner_sink;
    void *inner_user;
    const flowc_observer *inner_obs; /* the caller's observer, wrapped by wrap */
    flowc_observer wrap;
    flowc_options opt;               /* the caller's options with wrap as the observer */
    uint64_t digest;                 /* what came so far (see DESIGN) */
    uint32_t tasks_seen;             /* plan tasks folded into the digest */
    size_t *ls;                      /* the program's line starts (ls[k]: line k + 1) */
    int nls;
    /* the flow being recorded, or NULL */
    memo_flow *rec;
    int lo, hi;                      /* its lines */
    uint32_t tasks0, nodes0;         /* plan tasks and nodes before it */
    bool taint;                      /* it changed what others see (not kept) */
};

flowc_memo *flowc_memo_new(void) {
    flowc_memo *m = calloc(1, sizeof *m);
    if (m) fl_ctx_init(&m->ctx);
    return m;
}

static void flow_free(memo_flow *f) {
    if (!f) return;
    free(f->name);
    free(f->text);
    free(f->ev);
    free(f->strs);
    free(f);
}

int flowc_memo_replayed(const flowc_memo *m) { return m ? m->replayed : 0; }

void flowc_memo_free(flowc_memo *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) flow_free(m->flows[i]);
    free(m->flows);
    chk_map_free(&m->ctx, &m->byname);
    free(m);
}

/* ---- recording --------------------------------------------------------------------------- */
static uint32_t put_str(memo_flow *f, const char *s) {
    if (!s) return NOSTR;
    size_t n = strlen(s) + 1;
    if (f->nstrs + n > f->capstrs) {
        size_t cap = f->capstrs ? f->capstrs * 2 : 4096;
        while (cap < f->nstrs + n) cap *= 2;
        char *p = cap < NOSTR ? realloc(f->strs, cap) : NULL;
        if (!p) {
            f->ok = false;
            return NOSTR;
        }
        f->strs = p;
        f->capstrs = cap;
    }
    memcpy(f->strs + f->nstrs, s, n);
    f->nstrs += n;
    return (uint32_t)(f->nstrs - n);
}

static memo_ev *add_ev(memo_flow *f, int kind) {
    if (f->nev == f->capev) {
        size_t cap = f->capev ? f->capev * 2 : 256;
        memo_ev *e = realloc(f->ev, cap * sizeof *e);
        if (!e) {
            f->ok = false;
            return NULL;
        }
        f->ev = e;
        f->capev = cap;
    }
    memo_ev *e = &f->ev[f->nev++];
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind;
    e->s[0] = e->s[1] = e->s[2] = NOSTR;
    return e;
}

/* is span sp of module mod inside the flow being recorded? */
static bool inside(const flowc_memo *m, int mod, fl_span sp) {
    return mod == 0 && sp.line >= m->lo && sp.end_line <= m->hi;
}

static void sink_wrap(void *user, const char *what, const char *file, fl_span sp,
                      const char *msg, const char *hint) {
    flowc_memo *m = user;
    if (m->rec) {
        memo_ev *e = add_ev(m->rec, EV_DIAG);
        if (e) {
            e->what = !strcmp(what, "error") ? W_ERROR : !strcmp(what, "warning") ? W_WARNING
                                                                                   : W_NOTE;
            e->a = sp;
            e->rel_a = file && !strcmp(file, m->c->mods[0].path) && inside(m, 0, sp);
            e->s[0] = put_str(m->rec, file);
            e->s[1] = put_str(m->rec, msg);
            e->s[2] = put_str(m->rec, hint);
        }
    }
    m->inner_sink(m->inner_user, what, file, sp, msg, hint);
}

static void hover_wrap(void *user, int mod, fl_span at, const char *text) {
    flowc_memo *m = user;
    if (m->rec) {
        memo_ev *e = add_ev(m->rec, EV_HOVER);
        if (e) {
            e->mod_a = mod;
            e->a = at;
            e->rel_a = inside(m, mod, at);
            e->s[0] = put_str(m->rec, text);
        }
    }
    if (m->inner_obs->hover) m->inner_obs->hover(m->inner_obs->user, mod, at, text);
}

static void ref_wrap(void *user, int mod, fl_span use, int def_mod, fl_span def) {
    flowc_memo *m = user;
    if (m->rec) {
        memo_ev *e = add_ev(m->rec, EV_REF);
        if (e) {
            e->mod_a = mod, e->mod_b = def_mod;
            e->a = use, e->b = def;
            e->rel_a = inside(m, mod, use);
            e->rel_b = inside(m, def_mod, def);
        }
    }
    if (m->inner_obs->ref) m->inner_obs->ref(m->inner_obs->user, mod, use, def_mod, def);
}

static void module_wrap(void *user, int mod, const char *file, const char *real, int from,
                        fl_span at) {
    flowc_memo *m = user;
    if (m->inner_obs->module) m->inner_obs->module(m->inner_obs->user, mod, file, real, from, at);
}

static const char *source_wrap(void *user, const char *real, size_t *len) {
    flowc_memo *m = user;
    return m->inner_obs->source ? m->inner_obs->source(m->inner_obs->user, real, len) : NULL;
}

/* ---- the digest ---------------------------------------------------------------------------- */
static uint64_t fold(uint64_t h, const void *p, size_t n) {
    return fl_hash_bytes_from(fl_hash_bytes_from(h, &n, sizeof n), p, n);
}

static uint64_t fold_str(uint64_t h, const char *s) {
    return s ? fold(h, s, strlen(s)) : fold(h, "", 0);
}

/* the names of the plan tasks made since the last fold */
static void fold_tasks(flowc_memo *m) {
    const fl_plan *p = m->c->plan;
    for (; m->tasks_seen < p->n_tasks; m->tasks_seen++)
        m->digest = fold_str(m->digest, plan_str(p, p->tasks[m->tasks_seen].name));
}

/* the program's text of span sp (columns count bytes, the end is inclusive), or NULL */
static const char *span_text(const flowc_memo *m, fl_span sp, size_t *n) {
    const chk_module *md = &m->c->mods[0];
    if (sp.line < 1 || sp.end_line < sp.line || sp.end_line > m->nls || sp.col < 1 ||
        sp.end_col < 0)
        return NULL;
    size_t a = m->ls[sp.line - 1] + (size_t)(sp.col - 1);
    size_t b = m->ls[sp.end_line - 1] + (size_t)sp.end_col;
    if (a > b || b > md->len) return NULL;
    *n = b - a;
    return md->src + a;
}

void chk_memo_begin(chk_ctx *c, const flowc_options *opt) {
    flowc_memo *m = opt->memo;
    if (!m || !c->diag->sink) return;
    m->gen++;
    m->replayed = 0;
    m->c = c;
    m->diag = c->diag;
    m->inner_sink = c->diag->sink;
    m->inner_user = c->diag->sink_user;
    c->diag->sink = sink_wrap;
    c->diag->sink_user = m;
    m->opt = *opt;
    if (opt->obs) {
        m->inner_obs = opt->obs;
        m->wrap = (flowc_observer){m, module_wrap, hover_wrap, ref_wrap, source_wrap};
        m->opt.obs = &m->wrap;
    }
    c->opt = &m->opt;
    c->memo = m;
}

void chk_memo_env(chk_ctx *c) {
    flowc_memo *m = c->memo;
    if (!m || chk_oom(c)) return;
    const chk_module *md = &c->mods[0];
    /* the program's line starts */
    int nls = 1;
    for (const char *p = md->src, *e = md->src + md->len; (p = memchr(p, '\n', (size_t)(e - p)));
         p++)
        nls++;
    m->ls = malloc((size_t)nls * sizeof *m->ls);
    if (!m->ls) return; /* no line starts: no flow is replayed or recorded this time */
    m->ls[0] = 0;
    m->nls = 1;
    for (const char *p = md->src, *e = md->src + md->len; (p = memchr(p, '\n', (size_t)(e - p)));
         p++)
        m->ls[m->nls++] = (size_t)(p - md->src) + 1;
    uint64_t h = fold_str(FL_HASH_BASIS, md->path);
    for (int i = 1; i < c->nmods; i++) {
        h = fold_str(fold_str(h, c->mods[i].path), c->mods[i].real);
        h = fold(h, c->mods[i].src ? c->mods[i].src : "", c->mods[i].src ? c->mods[i].len : 0);
    }
    for (int i = 0; md->prog && i < md->prog->list.len; i++) {
        const fl_node *d = md->prog->list.items[i];
        if (d->kind == AST_FLOW) { /* its name only: its body is its own record's */
            h = fold_str(fold(h, "F", 1), d->name);
            continue;
        }
        size_t n = 0;
        const char *t = span_text(m, d->span, &n);
        int where[5] = {(int)d->kind, d->span.line, d->span.col, d->span.end_line, d->span.end_col};
        h = fold(fold(h, where, sizeof where), t ? t : "", t ? n : 0);
    }
    for (int i = 0; i < c->ndecls; i++) {
        const chk_decl *dc = &c->decls[i];
        int what[4] = {(int)dc->kind, dc->mod, dc->bad, dc->syms != NULL};
        h = fold(h, what, sizeof what);
    }
    m->digest = h;
    m->tasks_seen = c->plan->n_tasks;
}

/* ---- replaying ------------------------------------------------------------------------------ */
static fl_span moved(fl_span sp, bool rel, int by) {
    if (rel) sp.line += by, sp.end_line += by;
    return sp;
}

static const char *str_at(const memo_flow *f, uint32_t s) {
    return s == NOSTR ? NULL : f->strs + s;
}

static void replay(chk_ctx *c, flowc_memo *m, memo_flow *f, chk_decl *dc) {
    fl_plan *p = c->plan;
    int by = dc->ast->span.line - f->line;
    for (size_t i = 0; i < f->nev; i++) {
        const memo_ev *e = &f->ev[i];
        switch (e->kind) {
        case EV_DIAG: {
            static const char *const whats[] = {"error", "warning", "note"};
            if (e->what == W_ERROR) m->diag->errors++;
            if (e->what == W_WARNING) m->diag->warnings++;
            m->inner_sink(m->inner_user, whats[e->what], str_at(f, e->s[0]),
                          moved(e->a, e->rel_a, by), str_at(f, e->s[1]), str_at(f, e->s[2]));
            break;
        }
        case EV_HOVER:
            if (m->inner_obs && m->inner_obs->hover)
                m->inner_obs->hover(m->inner_obs->user, e->mod_a, moved(e->a, e->rel_a, by),
                                    str_at(f, e->s[0]));
            break;
        case EV_REF:
            if (m->inner_obs && m->inner_obs->ref)
                m->inner_obs->ref(m->inner_obs->user, e->mod_a, moved(e->a, e->rel_a, by),
                                  e->mod_b, moved(e->b, e->rel_b, by));
            break;
        case EV_COMBINE:
            chk_combine_count(c, str_at(f, e->s[0]));
            break;
        case EV_TASK: {
            uint32_t t = PLAN_PUSH(p, tasks);
            if (p->oom) return; /* out of memory: the driver stops */
            plan_task *k = &p->tasks[t];
            k->name = plan_intern_str(p, str_at(f, e->s[0]));
            k->kind = e->what;
            k->ret = c->t_void;
            k->lib = k->symbol = k->cmd = k->first = k->second = k->stitch = PLAN_NONE;
            k->version = k->run_as = k->image = k->label = k->loc = PLAN_NONE;
            k->first_bind = PLAN_NONE;
            k->cache = 1;
            break;
        }
        }
    }
    c->nodes_replayed += f->nodes;
    plan_graph *g = &p->graphs[dc->index];
    g->first_node = p->n_nodes;
    g->nnodes = 0;
    g->ret_node = PLAN_NONE;
    dc->bad = f->bad;
}

/* ---- a flow's body ---------------------------------------------------------------------- */
bool chk_memo_flow(chk_ctx *c, chk_decl *dc) {
    flowc_memo *m = c->memo;
    if (!m || dc->kind != DK_FLOW || dc->mod != 0 || c->too_big || chk_oom(c)) return false;
    fold_tasks(m);
    size_t n = 0;
    const char *text = span_text(m, dc->ast->span, &n);
    if (!text) return false;
    int i = chk_map_get(&m->byname, dc->qname);
    memo_flow *f = i >= 0 ? m->flows[i] : NULL;
    if (f && f->gen == m->gen) return false; /* a second flow of that name (an error) */
    /* (the node limit grows with the source: a body that stays under it now as it did
     * then meets no limit check that could fail) */
    uint64_t nodes = (uint64_t)c->plan->n_nodes + c->nodes_replayed + (f ? f->nodes : 0);
    if (f && f->ok && f->before == m->digest && f->len == n && !memcmp(f->text, text, n) &&
        nodes < c->node_limit) {
        f->gen = m->gen;
        replay(c, m, f, dc);
        m->replayed++;
        return true;
    }
    if (!f) { /* a new flow: a new record */
        if (m->n == m->cap) {
            int cap = m->cap ? m->cap * 2 : 64;
            memo_flow **v = realloc(m->flows, (size_t)cap * sizeof *v);
            if (!v) return false;
            m->flows = v;
            m->cap = cap;
        }
        f = calloc(1, sizeof *f);
        char *name = f ? strdup(dc->qname) : NULL;
        if (!name || chk_map_put(&m->ctx, &m->byname, name, m->n)) {
            free(name);
            free(f);
            return false;
        }
        f->name = name;
        m->flows[m->n++] = f;
    }
    f->gen = m->gen;
    f->ok = false;
    f->nev = f->nstrs = 0;
    char *copy = realloc(f->text, n ? n : 1);
    if (!copy) return false;
    memcpy(copy, text, n);
    f->text = copy;
    f->len = n;
    f->ok = true;
    f->before = m->digest;
    f->line = dc->ast->span.line;
    m->rec = f;
    m->lo = dc->ast->span.line;
    m->hi = dc->ast->span.end_line;
    m->tasks0 = c->plan->n_tasks;
    m->nodes0 = c->plan->n_nodes;
    m->taint = false;
    return false;
}

void chk_memo_flow_end(chk_ctx *c, chk_decl *dc) {
    flowc_memo *m = c->memo;
    if (!m || !m->rec) return;
    memo_flow *f = m->rec;
    m->rec = NULL;
    const fl_plan *p = c->plan;
    bool ok = f->ok && !m->taint && !c->too_big && !chk_oom(c);
    for (uint32_t t = m->tasks0; ok && t < p->n_tasks; t++) {
        memo_ev *e = p->tasks[t].kind == TK_COMBINE ? add_ev(f, EV_TASK) : NULL;
        if (!e) {
            ok = false;
            break;
        }
        e->what = (uint8_t)p->tasks[t].kind;
        e->s[0] = put_str(f, plan_str(p, p->tasks[t].name));
    }
    f->ok = ok && f->ok;
    f->nodes = p->n_nodes - m->nodes0;
    f->bad = dc->bad;
}

void chk_memo_taint(chk_ctx *c) {
    if (c->memo) c->memo->taint = true;
}

void chk_memo_combine(chk_ctx *c, const char *name) {
    flowc_memo *m = c->memo;
    if (!m) return;
    m->digest = fold_str(m->digest, name);
    if (m->rec) {
        memo_ev *e = add_ev(m->rec, EV_COMBINE);
        if (e) e->s[0] = put_str(m->rec, name);
    }
}

void chk_memo_end(chk_ctx *c) {
    flowc_memo *m = c->memo;
    if (!m) return;
    m->diag->sink = m->inner_sink;
    m->diag->sink_user = m->inner_user;
    m->rec = NULL;
    free(m->ls);
    m->ls = NULL;
    m->nls = 0;
    /* the flows this compile did not see are gone from the program */
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (m->flows[i]->gen == m->gen) m->flows[k++] = m->flows[i];
        else flow_free(m->flows[i]);
    }
    if (k != m->n) {
        m->n = k;
        chk_map_free(&m->ctx, &m->byname);
        for (int i = 0; i < m->n; i++)
            if (chk_map_put(&m->ctx, &m->byname, m->flows[i]->name, i)) {
                for (int j = i; j < m->n; j++) flow_free(m->flows[j]); /* out of memory */
                m->n = i;
                break;
            }
    }
    m->c = NULL;
    c->memo = NULL;
}
