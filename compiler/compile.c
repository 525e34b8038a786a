/*
 * compile.c — flowc_compile, the checker's driver: from a parsed program to a plan.
 *
 * DESIGN
 * The program is checked in passes over its top-level declarations, so that a
 * name may be used before the line that declares it: collect() gathers every
 * declaration into a table (a name declared twice is an error here); then
 * libraries (check_library.c), declared types (check_types.c), and the
 * signatures of tasks, flows and groups are lowered to plan records; last, the
 * bodies of flows and groups, in source order (check_body.c), so each graph's
 * nodes are contiguous in the plan. This file holds those passes, a task's
 * declaration (its signature and its binding: a C symbol or an sh command), the
 * parameters shared by tasks, flows and groups, and the small helpers every
 * checker file uses ("did you mean" candidates, source locations, name lookup).
 * Constants are in check_const.c, task options in check_options.c, schedules in
 * check_schedule.c, lambdas in check_expr.c; check.h has the shared context.
 *
 * Errors are reported through the diagnostics (diag.h) and checking goes on, so
 * one compile shows many errors; a declaration with errors is marked `bad` and
 * its users stay quiet. The plan is returned only when no error was reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "digest.h"
#include "elf.h"
#include "types.h"

/* ---- small helpers ---------------------------------------------------------------------- */
void chk_cand_reset(chk_ctx *c) { c->ncand = 0; }

void chk_cand_add(chk_ctx *c, const char *name) {
    if (c->ncand == c->capcand) {
        int cap = c->capcand ? c->capcand * 2 : 64;
        const char **cand = fl_reallocarray(c->ctx, c->cand, (size_t)cap, sizeof *cand);
        if (!cand) return; /* out of memory: one hint fewer, and the driver stops */
        c->cand = cand;
        c->capcand = cap;
    }
    c->cand[c->ncand++] = name;
}

/* "did you mean 'x'?" among the candidates collected, or NULL */
const char *chk_hint_closest(chk_ctx *c, const char *name, char *buf, size_t len) {
    return diag_did_you_mean(name, c->cand, c->ncand, buf, len);
}

uint32_t chk_loc(chk_ctx *c, fl_span sp) {
    return plan_add_loc(c->plan, (uint32_t)sp.line, (uint32_t)sp.col, (uint32_t)sp.end_line,
                        (uint32_t)sp.end_col);
}

chk_decl *chk_find_decl(chk_ctx *c, const char *name) {
    if (!c->mods) {
        int i = chk_map_get(&c->names, name);
        return i < 0 ? NULL : &c->decls[i];
    }
    return chk_find_decl_in(c, c->mod, name);
}


/* ---- parameters ----------------------------------------------------------------------------- */
void chk_params(chk_ctx *c, const fl_nodes *ps, uint32_t *first, uint32_t *n) {
    fl_plan *p = c->plan;
    *first = p->n_params;
    *n = 0;
    if (ps->len > CHK_MAX_PARAMS) {
        diag_error(c->d, ps->items[CHK_MAX_PARAMS]->span, NULL, "more than %d parameters",
                   CHK_MAX_PARAMS);
        return;
    }
    for (int i = 0; i < ps->len; i++) {
        const fl_node *pa = ps->items[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(ps->items[j]->name, pa->name)) {
                diag_error(c->d, pa->nspan, NULL, "parameter '%s' is declared twice", pa->name);
                diag_note(c->d, ps->items[j]->nspan, "'%s' was first declared here", pa->name);
                break;
            }
        uint32_t t = chk_resolve_type(c, pa->a);
        if (t != PLAN_NONE && ty_is(p, t, PT_DURATION)) {
            diag_error(c->d, pa->a->span, "durations are only used in task options (`with {...}`)",
                       "a parameter cannot have type duration");
            t = PLAN_NONE;
        }
        uint32_t def = PLAN_NONE;
        if (pa->b && t != PLAN_NONE) {
            if (!chk_is_const(pa->b))
                diag_error(c->d, pa->b->span, "use a literal: a number, string, date, list or record",
                           "the default of '%s' must be a constant", pa->name);
            else
            {
                char what[200];
                snprintf(what, sizeof what, "the default of '%.*s%s'", DIAG_CLIP(pa->name));
                c->const_what = what;
                def = chk_const_value(c, pa->b, t, true);
                c->const_what = NULL;
            }
        }
        uint32_t k = PLAN_PUSH(p, params);
        p->params[k] = (plan_param){plan_intern_str(p, pa->name), t == PLAN_NONE ? c->t_void : t,
                                    def, chk_loc(c, pa->span)};
        (*n)++;
    }
}

/* ---- tasks ---------------------------------------------------------------------------------- */
static const char *decl_what(chk_decl_kind k) {
    static const char *const w[] = {"library", "task", "type", "flow", "group"};
    return w[k];
}

/* parameters and result type of a task, flow or group; PLAN_NONE when the type is bad */
static uint32_t signature(chk_ctx *c, const fl_node *d, const char *what, uint32_t *first,
                          uint32_t *n) {
    chk_params(c, &d->list, first, n);
    uint32_t ret = d->a ? chk_resolve_type(c, d->a) : c->t_void;
    if (ret != PLAN_NONE && ty_is(c->plan, ret, PT_DURATION)) {
        diag_error(c->d, d->a->span, NULL, "a %s cannot return a duration", what);
        ret = PLAN_NONE;
    }
    return ret;
}

/* A task declaration: its signature, its binding (a C symbol checked against the
 * library's symbols, or an sh command lowered by check_expr.c), its options. */
static void check_task(chk_ctx *c, chk_decl *dc) {
    const fl_node *tk = dc->ast;
    fl_plan *p = c->plan;
    uint32_t ti = PLAN_PUSH(p, tasks);
    dc->index = ti;
    int before = c->d->errors;
    uint32_t first, n;
    uint32_t ret = signature(c, tk, "task", &first, &n);
    plan_task *t = &p->tasks[ti];
    t->name = plan_intern_str(p, dc->qname);
    t->first_param = first;
    t->nparams = n;
    t->ret = ret == PLAN_NONE ? c->t_void : ret;
    t->lib = t->symbol = t->cmd = t->first = t->second = t->stitch = t->first_bind = PLAN_NONE;
    t->cache = 1;
    t->trigger = TRIG_ALL_SUCCESS;
    t->version = t->run_as = t->image = t->label = PLAN_NONE;
    t->loc = chk_loc(c, tk->span);
    const fl_node *b = tk->b;
    char hb[160];
    if (b && b->kind == AST_BIND_SYMBOL) {
        t->kind = TK_C;
        t->symbol = plan_intern_str(p, b->sval);
        chk_decl *ld = chk_find_decl(c, b->name);
        if (!ld || ld->kind != DK_LIB) {
            chk_cand_reset(c);
            for (int i = 0; i < c->ndecls; i++)
                if (c->decls[i].kind == DK_LIB && c->decls[i].mod == c->mod)
                    chk_cand_add(c, c->decls[i].ast->name);
            const char *h = chk_hint_closest(c, b->name, hb, sizeof hb);
            diag_error(c->d, b->nspan, h ? h : "declare it: library NAME = \"libNAME.so\"",
                       "unknown library '%s'", b->name);
        } else {
            chk_observe_ref(c, b->nspan, ld);
            t->lib = ld->index;
            if (ld->syms && !elf_has(ld->syms, b->sval)) {
                diag_error(c->d, b->span,
                           diag_did_you_mean(b->sval, ld->syms->names, ld->syms->n, hb, sizeof hb),
                           "library '%s' (%s) has no symbol '%s'", b->name, ld->ast->sval, b->sval);
            }
        }
    } else if (b && b->kind == AST_BIND_SH) {
        t->kind = TK_SH;
        static const plan_type_kind ok_ret[] = {PT_VOID, PT_STR, PT_INT, PT_FLOAT, PT_PATH, PT_DIR};
        bool ok = false;
        for (size_t i = 0; i < sizeof ok_ret / sizeof *ok_ret; i++) ok |= ty_is(p, t->ret, ok_ret[i]);
        if (!ok && ret != PLAN_NONE) {
            char tb[128];
            diag_error(c->d, tk->a->span, "an sh task returns str, int, float, path, dir or nothing",
                       "an sh task cannot return %s", chk_type_text(c, t->ret, tb, sizeof tb));
        }
        bool has_out = ty_is(p, t->ret, PT_PATH) || ty_is(p, t->ret, PT_DIR);
        const char *names[CHK_MAX_PARAMS];
        uint32_t types[CHK_MAX_PARAMS];
        for (uint32_t i = 0; i < n; i++) {
            names[i] = plan_str(p, p->params[first + i].name);
            types[i] = p->params[first + i].type;
            if (types[i] == c->t_void) types[i] = PLAN_NONE; /* its type was in error */
        }
        const char *secrets[CHK_MAX_SECRETS];
        c->ex.diag = c->d;
        c->ex.secrets = secrets;
        c->ex.nsecrets = chk_task_secret_names(c, &tk->list2, secrets, CHK_MAX_SECRETS);
        uint32_t cmd = expr_lower_sh(&c->ex, b->a, names, types, (int)n, has_out);
        c->ex.secrets = NULL;
        c->ex.nsecrets = 0;
        p->tasks[ti].cmd = cmd;
    } else {
        diag_error(c->d, tk->span, NULL, "task '%s' has no body (= lib.symbol or = sh \"...\")",
                   tk->name);
    }
    chk_task_options(c, ti, &tk->list2);
    if (c->d->errors != before) dc->bad = true;
}

/* ---- the driver -------------------------------------------------------------------------- */
/* The table of top-level declarations of every module, each under its qualified
 * name, and the name map over it (out of memory: the table stays short, and the
 * driver stops). A name declared twice in one module, a name that is also an
 * import of that module, and a flow in an imported file are errors. */
static void collect(chk_ctx *c) {
    int total = 0;
    for (int m = 0; m < c->nmods; m++)
        if (c->mods[m].prog) total += c->mods[m].prog->list.len;
    c->decls = fl_calloc(c->ctx, (size_t)(total ? total : 1), sizeof *c->decls);
    if (!c->decls) return;
    for (int m = 0; m < c->nmods; m++) {
        const fl_node *prog = c->mods[m].prog;
        if (!prog) continue;
        int saved = chk_enter_module(c, m);
        for (int i = 0; i < prog->list.len; i++) {
            const fl_node *d = prog->list.items[i];
            chk_decl_kind k;
            switch (d->kind) {
            case AST_LIBRARY: k = DK_LIB; break;
            case AST_TASK: k = DK_TASK; break;
            case AST_TYPEDECL: k = DK_TYPE; break;
            case AST_FLOW: k = DK_FLOW; break;
            case AST_GROUP: k = DK_GROUP; break;
            default: continue;
            }
            if (k == DK_FLOW && m > 0) {
                diag_error(c->d, d->nspan, "flows are entry points: declare it in the program "
                                           "flowc compiles, or make it a group",
                           "an imported file cannot declare a flow ('%s')", d->name);
                continue;
            }
            chk_decl *prev = chk_find_decl(c, d->name);
            if (prev) {
                diag_error(c->d, d->nspan,
                           "every library, task, type, flow and group needs its own name",
                           "'%s' is already declared (as a %s)", d->name, decl_what(prev->kind));
                diag_note(c->d, prev->ast->nspan, "the first '%s' is here", d->name);
                continue;
            }
            if (chk_hides_import(c, d->name, d->nspan, decl_what(k))) continue;
            const char *qname = m ? fl_sprintf(c->ctx, "%s%s", c->mods[m].prefix, d->name)
                                  : d->name;
            char *q = qname && m ? ast_strndup(c->ar, qname, strlen(qname)) : (char *)qname;
            if (m) fl_free(c->ctx, (char *)qname);
            if (!q) break; /* out of memory */
            chk_decl *dc = &c->decls[c->ndecls];
            dc->kind = k;
            dc->ast = d;
            dc->mod = m;
            dc->qname = q;
            dc->index = PLAN_NONE;
            if (chk_map_put(c->ctx, &c->names, q, c->ndecls) < 0) break;
            c->ndecls++;
        }
        chk_enter_module(c, saved);
    }
}

/* does type t contain bytes anywhere (a list of them, a record field)? */
static bool has_bytes(chk_ctx *c, uint32_t t) {
    const plan_type *ty = &c->plan->types[t];
    if (ty->kind == PT_BYTES) return true;
    if (ty->kind == PT_LIST) return has_bytes(c, ty->elem);
    for (uint32_t k = 0; ty->kind == PT_RECORD && k < ty->n; k++)
        if (has_bytes(c, c->plan->fields[ty->first + k].type)) return true;
    return false;
}

/* A flow's or group's signature as a plan graph (its body comes later, chk_body);
 * a flow's schedule, and no bytes among a flow's parameters. */
static void declare_graph(chk_ctx *c, chk_decl *dc) {
    const fl_node *g = dc->ast;
    fl_plan *p = c->plan;
    uint32_t gi = PLAN_PUSH(p, graphs);
    dc->index = gi;
    int before = c->d->errors;
    uint32_t first, n;
    uint32_t ret = signature(c, g, decl_what(dc->kind), &first, &n);
    plan_graph *pg = &p->graphs[gi];
    pg->name = plan_intern_str(p, dc->qname);
    pg->kind = dc->kind == DK_FLOW ? PG_FLOW : PG_GROUP;
    pg->first_param = first;
    pg->nparams = n;
    pg->ret = ret == PLAN_NONE ? c->t_void : ret;
    pg->ret_node = PLAN_NONE;
    pg->schedule = PLAN_NONE;
    pg->start = pg->tz = pg->watch = PLAN_NONE;
    pg->first_node = p->n_nodes;
    pg->loc = chk_loc(c, g->span);
    if (dc->kind == DK_FLOW && (g->b || g->c)) chk_schedule(c, g, gi);
    /* out of memory: the parameters may not all have been pushed */
    for (uint32_t i = 0; dc->kind == DK_FLOW && i < n && !chk_oom(c); i++) {
        const fl_node *pa = g->list.items[i];
        if (has_bytes(c, p->params[first + i].type))
            diag_error(c->d, pa->a->span, "bytes pass between tasks (see combine); a flow's "
                                          "parameters come from --param or YAML",
                       "flow parameter '%s' cannot hold bytes", pa->name);
    }
    if (c->d->errors != before || ret == PLAN_NONE) dc->bad = true;
}

fl_plan *flowc_compile(const fl_node *prog, fl_diag *diag, const flowc_options *opt) {
    chk_ctx c;
    memset(&c, 0, sizeof c);
    c.ctx = opt->ctx ? opt->ctx : fl_ctx_default();
    fl_error_clear(c.ctx); /* out of memory is told by the context: start clean */
    diag->ctx = c.ctx;
    c.plan = plan_new(c.ctx);
    if (!c.plan) return NULL; /* out of memory: the context says so */
    c.diag = diag;
    c.d = diag;
    c.opt = opt;
    chk_memo_begin(&c, opt); /* (c.opt is then the memo's copy, its observer wrapped) */
    c.bind_type = PLAN_NONE;
    c.ar = ast_arena_new(c.ctx);
    FILE *devnull = fopen("/dev/null", "w");
    diag_init(&c.mute, diag->file, diag->src, diag->len, devnull ? devnull : stderr);
    c.mute.ctx = c.ctx;
    c.ex.plan = c.plan;
    uint64_t limit = CHK_BASE_NODES + (uint64_t)CHK_NODES_PER_BYTE * opt->len;
    c.node_limit = limit > CHK_MAX_NODES ? CHK_MAX_NODES : (uint32_t)limit;
    c.ex.diag = diag;
    fl_plan *p = c.plan;
    c.t_void = plan_type_basic(p, PT_VOID);
    c.t_int = plan_type_basic(p, PT_INT);
    c.t_float = plan_type_basic(p, PT_FLOAT);
    c.t_bool = plan_type_basic(p, PT_BOOL);
    c.t_str = plan_type_basic(p, PT_STR);
    c.t_path = plan_type_basic(p, PT_PATH);
    c.t_dir = plan_type_basic(p, PT_DIR);
    c.t_date = plan_type_basic(p, PT_DATE);
    c.t_dur = plan_type_basic(p, PT_DURATION);
    p->source = plan_intern_str(p, opt->source_path ? opt->source_path : "");
    fl_digest sh = {0};
    if (opt->plan_path) hash_bytes(opt->src ? opt->src : "", opt->src ? opt->len : 0, &sh);
    memcpy(p->source_sha256, sh.b, sizeof sh.b);

    /* Each pass stops as soon as an allocation has failed (chk_oom): what was
     * checked after that would be checked on missing pieces. Every declaration is
     * checked in its own module (its names, its file in diagnostics). */
    if (c.ar) chk_modules_load(&c, prog);
    if (c.ar && !chk_oom(&c)) collect(&c);
    /* declarations: libraries, types, then signatures of tasks, flows and groups */
    for (int i = 0; i < c.ndecls && !chk_oom(&c); i++)
        if (c.decls[i].kind == DK_LIB) {
            chk_enter_module(&c, c.decls[i].mod);
            chk_library(&c, &c.decls[i]);
        }
    for (int i = 0; i < c.ndecls && !chk_oom(&c); i++)
        if (c.decls[i].kind == DK_TYPE) {
            chk_enter_module(&c, c.decls[i].mod);
            chk_resolve_decl_type(&c, &c.decls[i], c.decls[i].ast);
        }
    for (int i = 0; i < c.ndecls && !chk_oom(&c); i++) {
        chk_enter_module(&c, c.decls[i].mod);
        if (c.decls[i].kind == DK_TASK) check_task(&c, &c.decls[i]);
        else if (c.decls[i].kind == DK_FLOW || c.decls[i].kind == DK_GROUP)
            declare_graph(&c, &c.decls[i]);
        chk_observe_decl(&c, &c.decls[i]);
    }
    chk_memo_env(&c);
    /* bodies, in source order: each graph's nodes are contiguous (with a memo, a flow
     * unchanged since the last compile is told again instead) */
    for (int i = 0; i < c.ndecls && !chk_oom(&c); i++)
        if (c.decls[i].kind == DK_FLOW || c.decls[i].kind == DK_GROUP) {
            chk_enter_module(&c, c.decls[i].mod);
            if (chk_memo_flow(&c, &c.decls[i])) continue;
            chk_body(&c, &c.decls[i]);
            chk_memo_flow_end(&c, &c.decls[i]);
        }
    if (!chk_oom(&c)) chk_modules_record(&c);

    bool oom = chk_oom(&c);
    /* a safety net: nothing may fail quietly without an error shown */
    for (int i = 0; i < c.ndecls && !diag->errors && !oom; i++)
        if (c.decls[i].bad) {
            chk_enter_module(&c, c.decls[i].mod);
            diag_error(diag, c.decls[i].ast->nspan, NULL, "%s '%s' has errors",
                       decl_what(c.decls[i].kind), c.decls[i].ast->name);
        }
    chk_enter_module(&c, 0); /* the diagnostics' file is the program's again */
    bool any_flow = false;
    for (int i = 0; i < c.ndecls; i++) any_flow |= c.decls[i].kind == DK_FLOW;
    if (!any_flow && !diag->errors && !oom)
        diag_warning(diag, prog->span, "flowrun runs a flow: declare one with flow NAME() {...}",
                     "this program declares no flow");

    bool memo = c.memo != NULL; /* the plan lacks the bodies told again */
    chk_memo_end(&c);
    for (int i = 0; i < c.ndecls; i++)
        if (c.decls[i].syms) {
            elf_symtab_free(c.decls[i].syms);
            fl_free(c.ctx, c.decls[i].syms);
        }
    fl_free(c.ctx, c.decls);
    chk_observe_free(&c);
    chk_modules_free(&c);
    fl_free(c.ctx, c.cand);
    chk_map_free(c.ctx, &c.names);
    chk_map_free(c.ctx, &c.combines);
    ast_arena_free(c.ar);
    if (devnull) fclose(devnull);
    if (diag->errors || oom || !c.ar || memo) {
        plan_free(p);
        return NULL;
    }
    return p;
}
