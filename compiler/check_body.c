/*
 * check_body.c — flow and group bodies: names, calls, partial/expand/expand_kwargs,
 * map/filter, the built-ins, combine, and their lowering to graph nodes.
 *
 * DESIGN (the whole of it is in check.h)
 * walk() goes through a body's statements in order; eval() checks one expression
 * and, for a run-time value, emits its plan node at once (arguments first, so a
 * graph's nodes come out in dependency order). What an expression evaluates to is
 * a chk_val: a node, or a callable (a task or group with the nodes its .partial
 * has bound), or an error already reported. Names live in a chk_scope: the names
 * bound so far, and the `let` names still to come (so using one too early gets
 * its own message). apply() is the one place calls, .partial, .expand and
 * .expand_kwargs bind arguments to parameters; a group call is inlined by walking
 * the group's body again in a fresh scope, its node names prefixed with the
 * call's binding. Instance names (add, add#2, g/square) are decided here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "types.h"

typedef enum call_mode { M_CALL, M_PARTIAL, M_EXPAND, M_KWARGS } call_mode;

static const char *const mode_text[] = {"call", ".partial", ".expand", ".expand_kwargs"};
static const char *const builtins[] = {"combine", "zip", "range", "files", "flatten", "len"};
static const char *const members[] = {"partial", "expand", "expand_kwargs", "map", "filter"};
#define N_BUILTINS ((int)(sizeof builtins / sizeof *builtins))
#define N_MEMBERS ((int)(sizeof members / sizeof *members))

static chk_val eval(chk_ctx *c, chk_scope *sc, const fl_node *e, uint32_t want);
static chk_val walk(chk_ctx *c, chk_scope *sc, const fl_nodes *stmts, uint32_t ret,
                    const char *what, const fl_node *decl);

static const chk_val ERR = {CV_ERR, 0, 0, 0, NULL, false};

static chk_val node_val(uint32_t node, uint32_t type) {
    chk_val v = ERR;
    v.kind = CV_NODE;
    v.node = node;
    v.type = type;
    return v;
}

/* ---- scopes ------------------------------------------------------------------------------ */
/* Bind name in the scope. Out of memory: the name stays unbound (the context
 * says so and the driver stops). */
static void scope_add(chk_ctx *c, chk_scope *sc, const char *name, fl_span sp, chk_val v) {
    if (sc->n == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 16;
        chk_local *items = fl_reallocarray(c->ctx, sc->items, (size_t)cap, sizeof *items);
        if (!items) return;
        sc->items = items;
        sc->cap = cap;
    }
    sc->items[sc->n] = (chk_local){name, sp, v};
    if (chk_map_put(c->ctx, &sc->map, name, sc->n) == 0) sc->n++;
}

static chk_local *scope_get(chk_scope *sc, const char *name) {
    int i = chk_map_get(&sc->map, name);
    return i < 0 ? NULL : &sc->items[i];
}

static void scope_free(chk_ctx *c, chk_scope *sc) {
    fl_free(c->ctx, sc->items);
    chk_map_free(c->ctx, &sc->map);
    chk_map_free(c->ctx, &sc->later);
    chk_map_free(c->ctx, &sc->calls);
}

/*
 * Instance names (docs/scheduler.md, "Instance names"). A call's binding name is
 * the `let` name when the call is what the let binds directly (`let a = t.expand(...)`),
 * else its task's (or group's) name, numbered when one body calls it unbound more
 * than once: add, add#2, add#3 in source order. (A let named `add` cannot clash:
 * it hides the task `add` from the statements after it, and naming it before its
 * let is an error.) Inside an inlined
 * group call the name is prefixed with the call's own binding: `g/square`.
 * Writes the name (without the prefix) into buf.
 */
/* Texts put together without snprintf's cost (names are made per call, hover texts per
 * value; flowc lsp checks the whole file per edit). put_text: t appended at buf[k]
 * (k < len), cut to fit, NUL-terminated; the new length. join_text: a + b (b may be
 * NULL) into buf of len > 0 bytes. put_clip appends a name as DIAG_CLIP shows it,
 * put_uint a number. */
static size_t put_text(char *buf, size_t k, size_t len, const char *t) {
    size_t n = strlen(t);
    if (n > len - 1 - k) n = len - 1 - k;
    memcpy(buf + k, t, n);
    buf[k + n] = '\0';
    return k + n;
}

static void join_text(char *buf, size_t len, const char *a, const char *b) {
    put_text(buf, put_text(buf, 0, len, a), len, b ? b : "");
}

static size_t put_clip(char *buf, size_t k, size_t len, const char *name) {
    if (strlen(name) <= DIAG_NAME_MAX) return put_text(buf, k, len, name);
    char cut[DIAG_NAME_MAX + 1];
    memcpy(cut, name, DIAG_NAME_MAX - 3);
    memcpy(cut + DIAG_NAME_MAX - 3, "...", 4);
    return put_text(buf, k, len, cut);
}

static size_t put_uint(char *buf, size_t k, size_t len, uint32_t v) {
    char d[12];
    int i = (int)sizeof d - 1;
    d[i] = '\0';
    do d[--i] = (char)('0' + v % 10); while ((v /= 10) != 0);
    return put_text(buf, k, len, d + i);
}

static void binding_name(chk_ctx *c, chk_scope *sc, const fl_node *call, const char *base,
                         char *buf, size_t len) {
    if (call && call == c->bind_expr && c->bind_name) {
        join_text(buf, len, c->bind_name, NULL);
        return;
    }
    int n = chk_map_get(&sc->calls, base);
    if (n < 0) n = 0;
    n++;
    chk_map_put(c->ctx, &sc->calls, ast_strndup(c->ar, base, strlen(base)), n);
    if (n == 1) join_text(buf, len, base, NULL);
    else snprintf(buf, len, "%s#%d", base, n);
}

static void name_node(chk_ctx *c, chk_scope *sc, uint32_t node, const char *name);

/* Name a call node just emitted: its binding name (see binding_name). */
static uint32_t name_call(chk_ctx *c, chk_scope *sc, uint32_t node, const fl_node *call,
                          const char *base) {
    char buf[300];
    binding_name(c, sc, call, base, buf, sizeof buf);
    name_node(c, sc, node, buf);
    return node;
}

/* ---- nodes ------------------------------------------------------------------------------- */
static uint32_t emit(chk_ctx *c, plan_node_kind k, uint32_t type, uint32_t ref, uint32_t aux,
                     const plan_arg *args, int nargs, fl_span sp) {
    fl_plan *p = c->plan;
    uint32_t first = p->n_args;
    for (int i = 0; i < nargs; i++) {
        uint32_t a = PLAN_PUSH(p, args);
        p->args[a] = args[i];
    }
    uint32_t n = PLAN_PUSH(p, nodes);
    p->nodes[n] = (plan_node){(uint32_t)k, type, ref, aux, first, (uint32_t)nargs,
                              p->n_afters, 0, PLAN_NONE, chk_loc(c, sp)};
    return n;
}

/* a CONST node for plan value `value` */
static uint32_t emit_const(chk_ctx *c, uint32_t value, fl_span sp) {
    return emit(c, PN_CONST, c->plan->values[value].type, PLAN_NONE, value, NULL, 0, sp);
}

static plan_arg scalar(uint32_t node) { return (plan_arg){node, PA_SCALAR, 0}; }

/* ---- type checks ------------------------------------------------------------------------- */
static bool is_list(chk_ctx *c, uint32_t t) { return ty_is(c->plan, t, PT_LIST); }
static uint32_t elem_of(chk_ctx *c, uint32_t t) { return c->plan->types[t].elem; }

/* v must be a value (not a task); reports otherwise */
static bool want_node(chk_ctx *c, const chk_val *v, const fl_node *e) {
    if (v->kind == CV_NODE && (v->node == PLAN_NONE || ty_is(c->plan, v->type, PT_VOID))) {
        diag_error(c->d, e->span, "a task or group without -> T runs for its effect only",
                   "this produces no value");
        return false;
    }
    if (v->kind == CV_NODE) return true;
    if (v->kind == CV_ERR) return false;
    diag_error(c->d, e->span, "call it, or use .expand / .partial",
               "expected a value, found a %s", v->kind == CV_GROUP ? "group" : "task");
    return false;
}

/* ---- callables ---------------------------------------------------------------------------- */
typedef struct chk_sig {
    uint32_t first, n; /* parameters in plan->params */
    uint32_t ret;      /* result type */
    const char *name;  /* for messages */
} chk_sig;

/* the parameters and result of a callable, task or group alike */
static chk_sig sig_of(chk_ctx *c, const chk_val *f) {
    fl_plan *p = c->plan;
    chk_sig s;
    if (f->kind == CV_TASK) {
        const plan_task *t = &p->tasks[f->ref];
        s = (chk_sig){t->first_param, t->nparams, t->ret, plan_str(p, t->name)};
    } else {
        const plan_graph *g = &p->graphs[c->decls[f->ref].index];
        s = (chk_sig){g->first_param, g->nparams, g->ret, plan_str(p, g->name)};
    }
    return s;
}

/* the name of parameter i of a signature */
static const char *pname(chk_ctx *c, const chk_sig *s, uint32_t i) {
    return plan_str(c->plan, c->plan->params[s->first + i].name);
}

/* the index of the parameter called name, or -1 */
static int find_param(chk_ctx *c, const chk_sig *s, const char *name) {
    for (uint32_t i = 0; i < s->n; i++)
        if (!strcmp(pname(c, s, i), name)) return (int)i;
    return -1;
}

/* "no parameter 'x'" with a did-you-mean among the signature's parameters */
static void unknown_param(chk_ctx *c, const chk_sig *s, const char *name, fl_span sp) {
    char hb[160];
    chk_cand_reset(c);
    for (uint32_t i = 0; i < s->n; i++) chk_cand_add(c, pname(c, s, i));
    const char *h = chk_hint_closest(c, name, hb, sizeof hb);
    if (!h && s->n) h = diag_name_list(hb, sizeof hb, "its parameters:", c->cand, c->ncand);
    diag_error(c->d, sp, h, "'%s' has no parameter '%s'", s->name, name);
}

/* "'add' takes (a: int, b: int = 2)" for a hint: the parameters that fit, then ", ..."
 * (a long default is cut by plan_value_text, a long type ends in "...") */
static const char *signature_text(chk_ctx *c, const chk_sig *s, char *buf, size_t len) {
    size_t k = put_text(buf, 0, len, "'");
    k = put_clip(buf, k, len, s->name);
    k = put_text(buf, k, len, "' takes (");
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_param *pp = &c->plan->params[s->first + i];
        char tb[128], vb[64] = "", one[300];
        size_t w = put_text(one, 0, sizeof one, i ? ", " : "");
        w = put_clip(one, w, sizeof one, pname(c, s, i));
        w = put_text(one, w, sizeof one, ": ");
        w = put_text(one, w, sizeof one, chk_type_text(c, pp->type, tb, sizeof tb));
        if (pp->def != PLAN_NONE) {
            plan_value_text(c->plan, pp->def, vb, sizeof vb);
            w = put_text(one, w, sizeof one, " = ");
            w = put_text(one, w, sizeof one, vb);
        }
        if (k + w + 6 >= len) {
            k = put_text(buf, k, len, ", ...");
            break;
        }
        memcpy(buf + k, one, w + 1);
        k += w;
    }
    if (k + 2 <= len) memcpy(buf + k, ")", 2);
    return buf;
}

/* "<ctx> expects <want>, found <got>" */
static void type_mismatch(chk_ctx *c, fl_span sp, const char *ctx, uint32_t want, uint32_t got,
                          const char *hint) {
    char a[128], b[128];
    diag_error(c->d, sp, hint, "%s expects %s, found %s", ctx, chk_type_text(c, want, a, sizeof a),
               chk_type_text(c, got, b, sizeof b));
}

/* a record field (expand_kwargs row, stitch result) feeding parameter i of s:
 * it must not be bound already and must have the parameter's type */
static bool field_feeds(chk_ctx *c, const chk_sig *s, bool bound, int i, uint32_t ftype,
                        fl_span at, fl_span tspan) {
    const char *name = pname(c, s, (uint32_t)i);
    if (bound) {
        diag_error(c->d, at, NULL, "parameter '%s' of '%s' is already bound by .partial", name,
                   s->name);
        return false;
    }
    uint32_t want = c->plan->params[s->first + (uint32_t)i].type;
    if (ty_same(c->plan, want, ftype)) return true;
    char ctx[200];
    snprintf(ctx, sizeof ctx, "parameter '%.*s%s' of '%.*s%s'", DIAG_CLIP(name),
             DIAG_CLIP(s->name));
    type_mismatch(c, tspan, ctx, want, ftype, NULL);
    return false;
}

/* inline a plain group call: walk its body with its parameters bound to nodes */
static chk_val inline_group(chk_ctx *c, chk_scope *caller, uint32_t gdecl,
                            const uint32_t *nodes, const fl_node *at) {
    chk_decl *g = &c->decls[gdecl];
    if (g->bad) return ERR;
    if (g->inlining) {
        diag_error(c->d, at->span, "a group cannot call itself, directly or through other groups",
                   "group '%s' is called recursively", g->qname);
        g->bad = true;
        chk_memo_taint(c);
        return ERR;
    }
    if (c->inline_depth >= CHK_MAX_INLINE_DEPTH) {
        diag_error(c->d, at->span, NULL, "groups nested more than %d deep", CHK_MAX_INLINE_DEPTH);
        return ERR;
    }
    fl_plan *p = c->plan;
    if (p->n_nodes + c->nodes_replayed >= c->node_limit) { /* groups calling groups several times multiply */
        if (!c->too_big)
            diag_error(c->diag, at->span, "every call of a group inlines a copy of its body",
                       "the program grows beyond %u nodes here", c->node_limit);
        c->too_big = true;
        chk_memo_taint(c);
        return ERR;
    }
    const plan_graph *pg = &p->graphs[g->index];
    chk_scope sc;
    memset(&sc, 0, sizeof sc);
    /* node names: binding/let, outer/inner/let when nested (the binding: the let
     * that binds this call, else the group's name, numbered as unbound calls are) */
    char bname[300];
    binding_name(c, caller, at, g->qname, bname, sizeof bname);
    size_t pn = (caller->prefix ? strlen(caller->prefix) + 1 : 0) + strlen(bname) + 1;
    char *pre = ast_alloc(c->ar, pn);
    if (!pre) return ERR; /* out of memory */
    snprintf(pre, pn, "%s%s%s", caller->prefix ? caller->prefix : "", caller->prefix ? "/" : "",
             bname);
    sc.prefix = pre;
    for (uint32_t i = 0; i < pg->nparams; i++) {
        const fl_node *pa = g->ast->list.items[i];
        scope_add(c, &sc, pa->name, pa->nspan,
                  node_val(nodes[i], p->params[pg->first_param + i].type));
    }
    fl_diag *saved = c->d;
    if (g->reported) c->d = &c->mute; /* its errors were shown once already */
    int before = c->d->errors;
    g->inlining = true;
    c->inline_depth++;
    int mod = chk_enter_module(c, g->mod); /* its body names what its own file declares */
    chk_val r = walk(c, &sc, &g->ast->list2, pg->ret, "group", g->ast);
    chk_enter_module(c, mod);
    c->inline_depth--;
    g->inlining = false;
    if ((c->d == c->diag && !g->reported) || (c->d->errors != before && !g->bad))
        chk_memo_taint(c); /* what the group's other callers see changed */
    if (c->d == c->diag) g->reported = true;
    if (c->d->errors != before) g->bad = true;
    c->d = saved;
    scope_free(c, &sc);
    if (g->bad) return ERR;
    return r;
}

/*
 * Apply f to a call's arguments: a call, .partial, .expand or .expand_kwargs.
 * Every parameter is bound exactly once (partial, argument, default); then the
 * node is emitted (or, for .partial, a new callable returned).
 */
static chk_val apply(chk_ctx *c, chk_scope *sc, chk_val f, const fl_node *call, call_mode mode) {
    fl_plan *p = c->plan;
    chk_sig s = sig_of(c, &f);
    uint32_t n = s.n;
    const fl_nodes *args = &call->list;
    if (args->len > CHK_MAX_ARGS) {
        diag_error(c->d, call->span, NULL, "more than %d arguments", CHK_MAX_ARGS);
        return ERR;
    }
    plan_arg pa[CHK_MAX_PARAMS];
    const fl_node *by[CHK_MAX_PARAMS]; /* the argument that bound each parameter */
    bool set[CHK_MAX_PARAMS], ok = true;
    uint32_t one_rec = PLAN_NONE; /* read_json of one record: its type (opened below) */
    /* std's typed table tasks: specialised to the binding's or the argument's type */
    chk_typed typed = f.kind == CV_TASK ? chk_typed_kind(c, f.ref) : TYPED_NONE;
    if (typed != TYPED_NONE) {
        if ((mode != M_CALL && mode != M_EXPAND) || f.bound ||
            (mode == M_EXPAND && typed == TYPED_WRITE_JSON)) {
            diag_error(c->d, call->span, "call it directly: let rows: [T] = std.read_csv(f)",
                       "'%s' takes its type from its call; it cannot be used with %s", s.name,
                       f.bound ? ".partial" : mode_text[mode]);
            return ERR;
        }
        if (typed == TYPED_READ_CSV || typed == TYPED_READ_JSON) {
            if (call != c->bind_expr || c->bind_type == PLAN_NONE) {
                char hb[200];
                snprintf(hb, sizeof hb, "write the type on the binding: let %.40s: [T] = %s(...)",
                         call == c->bind_expr && c->bind_name ? c->bind_name : "rows", s.name);
                diag_error(c->d, call->span, hb,
                           "'%s' needs to know the type it reads: call it in a typed `let`",
                           s.name);
                return ERR;
            }
            uint32_t rt = c->bind_type; /* .expand: each instance reads one element */
            if (mode == M_EXPAND && !is_list(c, rt)) {
                char tb[128];
                diag_error(c->d, call->span, "e.g. let tables: [[Hit]] = std.read_csv.expand(f = fs)",
                           ".expand gives a list, but the binding is declared %s",
                           chk_type_text(c, rt, tb, sizeof tb));
                return ERR;
            }
            if (mode == M_EXPAND) rt = elem_of(c, rt);
            uint32_t k = chk_typed_task(c, f.ref, typed, rt, call->span);
            if (k == PLAN_NONE) return ERR;
            if (chk_typed_one(c, k)) one_rec = rt;
            f.ref = k;
            s = sig_of(c, &f);
            n = s.n;
        }
    }
    for (uint32_t i = 0; i < n + (typed >= TYPED_WRITE_CSV) && i < CHK_MAX_PARAMS; i++) {
        set[i] = f.bound && f.bound[i] != PLAN_NONE;
        pa[i] = scalar(set[i] ? f.bound[i] : PLAN_NONE);
        by[i] = NULL;
    }
    uint32_t naxes = 0;
    char ctx[200];
    if (mode == M_KWARGS) {
        if (args->len != 1 || args->items[0]->name) {
            diag_error(c->d, call->span, "e.g. t.expand_kwargs(zip(a = xs, b = ys))",
                       ".expand_kwargs takes one list of records");
            return ERR;
        }
        const fl_node *ae = args->items[0]->a;
        chk_val rows = eval(c, sc, ae, PLAN_NONE);
        if (!want_node(c, &rows, ae)) return ERR;
        uint32_t rt = is_list(c, rows.type) ? elem_of(c, rows.type) : PLAN_NONE;
        if (rt == PLAN_NONE || !ty_is(p, rt, PT_RECORD)) {
            char tb[128];
            diag_error(c->d, ae->span, "its records' fields name the task's parameters",
                       ".expand_kwargs needs a list of records, found %s",
                       chk_type_text(c, rows.type, tb, sizeof tb));
            return ERR;
        }
        const plan_type *rty = &p->types[rt];
        for (uint32_t k = 0; k < rty->n; k++) {
            plan_field fd = p->fields[p->types[rt].first + k];
            const char *fname = plan_str(p, fd.name);
            int i = find_param(c, &s, fname);
            if (i < 0) {
                unknown_param(c, &s, fname, ae->span);
                ok = false;
                continue;
            }
            if (!field_feeds(c, &s, set[i], i, fd.type, ae->span, ae->span)) {
                ok = false;
                continue;
            }
            set[i] = true;
            pa[i] = (plan_arg){rows.node, PA_FIELD, k};
            by[i] = ae;
        }
    } else {
        uint32_t next = 0;
        for (int ai = 0; ai < args->len; ai++) {
            const fl_node *a = args->items[ai];
            int i;
            if (a->name) {
                i = find_param(c, &s, a->name);
                if (i < 0) {
                    unknown_param(c, &s, a->name, a->nspan);
                    ok = false;
                    eval(c, sc, a->a, PLAN_NONE);
                    continue;
                }
            } else {
                if (mode != M_CALL) {
                    diag_error(c->d, a->span, mode == M_PARTIAL ? "e.g. t.partial(width = 200)"
                               : "e.g. t.expand(file = files)",
                               "%s takes named arguments (name = value)", mode_text[mode]);
                    ok = false;
                    continue;
                }
                while (next < n && set[next]) next++;
                if (next >= n) {
                    diag_error(c->d, a->span, NULL, "too many arguments: '%s' takes %u", s.name,
                               n);
                    ok = false;
                    break;
                }
                i = (int)next;
            }
            if (typed != TYPED_NONE && !strcmp(pname(c, &s, (uint32_t)i), "type_")) {
                if (a->name)
                    diag_error(c->d, a->nspan, NULL, "'%s' has no parameter '%s'", s.name, a->name);
                else
                    diag_error(c->d, a->span, NULL, "too many arguments: '%s' takes %u", s.name,
                               s.n - 1);
                ok = false;
                continue;
            }
            if (set[i]) {
                if (by[i]) {
                    diag_error(c->d, a->span, NULL, "parameter '%s' of '%s' is bound twice",
                               pname(c, &s, (uint32_t)i), s.name);
                    diag_note(c->d, by[i]->span, "first bound here");
                } else {
                    diag_error(c->d, a->span, NULL,
                               "parameter '%s' of '%s' is already bound by .partial",
                               pname(c, &s, (uint32_t)i), s.name);
                }
                ok = false;
                continue;
            }
            uint32_t pt = p->params[s.first + (uint32_t)i].type;
            uint32_t want = mode == M_EXPAND ? plan_type_list(p, pt) : pt;
            bool generic = typed >= TYPED_WRITE_CSV && i == 0; /* a typed writer's value */
            if (generic) want = PLAN_NONE;
            set[i] = true;
            by[i] = a;
            chk_val v = eval(c, sc, a->a, want);
            if (!want_node(c, &v, a->a)) {
                ok = false;
                continue;
            }
            if (generic) {
                uint32_t wt = v.type; /* .expand: each instance writes one element */
                if (mode == M_EXPAND && !is_list(c, wt)) {
                    snprintf(ctx, sizeof ctx, "expanding parameter '%.*s%s' of '%.*s%s'",
                             DIAG_CLIP(pname(c, &s, (uint32_t)i)), DIAG_CLIP(s.name));
                    char tb[128];
                    diag_error(c->d, a->a->span, "an expanded argument is a list of the "
                               "parameter's type", "%s expects a list, found %s", ctx,
                               chk_type_text(c, wt, tb, sizeof tb));
                    ok = false;
                    continue;
                }
                if (mode == M_EXPAND) wt = elem_of(c, wt);
                uint32_t k = chk_typed_task(c, f.ref, typed, wt, a->a->span);
                if (k == PLAN_NONE) {
                    ok = false;
                    continue;
                }
                f.ref = k;
                s = sig_of(c, &f);
                if (typed == TYPED_WRITE_JSON) { /* passed as a list of one: one C type */
                    plan_arg one = scalar(v.node);
                    v.type = plan_type_list(p, v.type);
                    v.node = emit(c, PN_LIST, v.type, PLAN_NONE, 0, &one, 1, a->a->span);
                }
                want = v.type;
            }
            if (!ty_same(p, want, v.type)) {
                snprintf(ctx, sizeof ctx, "%s '%.*s%s' of '%.*s%s'",
                         mode == M_EXPAND ? "expanding parameter" : "parameter",
                         DIAG_CLIP(pname(c, &s, (uint32_t)i)), DIAG_CLIP(s.name));
                type_mismatch(c, a->a->span, ctx, want, v.type,
                              mode == M_EXPAND ? "an expanded argument is a list of the "
                                                 "parameter's type" : NULL);
                ok = false;
                continue;
            }
            pa[i] = mode == M_EXPAND ? (plan_arg){v.node, PA_AXIS, naxes++} : scalar(v.node);
        }
    }
    n = s.n; /* a typed writer's copy has one more parameter: type_, by its default */
    if (!ok) return ERR;
    if (mode == M_PARTIAL) {
        chk_val r = f;
        r.fresh = false;
        r.bound = ast_alloc(c->ar, (n ? n : 1) * sizeof *r.bound);
        if (!r.bound) return ERR; /* out of memory */
        for (uint32_t i = 0; i < n; i++) r.bound[i] = set[i] ? pa[i].node : PLAN_NONE;
        return r;
    }
    if (mode == M_EXPAND && naxes == 0) {
        diag_error(c->d, call->span, "e.g. t.expand(file = files)",
                   ".expand needs at least one list argument");
        return ERR;
    }
    /* defaults, then the missing ones */
    char missing[256];
    size_t mo = 0;
    int nmissing = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (set[i]) continue;
        const plan_param *pp = &p->params[s.first + i];
        if (pp->def != PLAN_NONE) {
            pa[i] = scalar(emit_const(c, pp->def, call->span));
            continue;
        }
        const char *pn = plan_str(p, pp->name);
        if (mo + strlen(pn) + 12 < sizeof missing) /* room for it and a last ", ..." */
            mo += (size_t)snprintf(missing + mo, sizeof missing - mo, "%s'%s'",
                                   nmissing ? ", " : "", pn);
        else if (mo + 6 < sizeof missing && !strstr(missing, ", ..."))
            mo += (size_t)snprintf(missing + mo, sizeof missing - mo, ", ...");
        nmissing++;
    }
    if (nmissing) {
        char sig[300];
        diag_error(c->d, call->span,
                   mode == M_CALL ? signature_text(c, &s, sig, sizeof sig)
                                  : "bind every parameter by .partial, the expansion or a default",
                   "%s of '%s' is missing %s %s", mode_text[mode], s.name,
                   nmissing == 1 ? "parameter" : "parameters", missing);
        return ERR;
    }
    /* an expansion yields [R]; of a task without a result, [void] (the plan reader's rule) */
    uint32_t lt = mode == M_CALL ? c->t_void : plan_type_list(p, s.ret);
    if (f.kind == CV_GROUP) {
        uint32_t graph = c->decls[f.ref].index;
        if (mode == M_KWARGS) {
            diag_error(c->d, call->span, "expand it by name: g.expand(a = xs)",
                       ".expand_kwargs applies to tasks, not groups");
            return ERR;
        }
        const char *gname = c->decls[f.ref].qname;
        if (mode == M_EXPAND) {
            if (c->decls[f.ref].bad) return ERR;
            uint32_t g = emit(c, PN_GROUP_EXPAND, lt, graph, naxes, pa, (int)n, call->span);
            return node_val(name_call(c, sc, g, call, gname), lt);
        }
        uint32_t nodes[CHK_MAX_PARAMS];
        for (uint32_t i = 0; i < n; i++) nodes[i] = pa[i].node;
        return inline_group(c, sc, f.ref, nodes, call);
    }
    /* the task's name, copied: interning more strings may move the plan's text */
    char tname[300];
    join_text(tname, sizeof tname, plan_str(p, p->tasks[f.ref].name), NULL);
    if (mode == M_CALL) {
        uint32_t k = emit(c, PN_CALL, s.ret, f.ref, 0, pa, (int)n, call->span);
        name_call(c, sc, k, call, tname);
        if (one_rec != PLAN_NONE) { /* the record, out of its list of one */
            plan_arg a = scalar(k);
            return node_val(emit(c, PN_ELEM, one_rec, PLAN_NONE, 0, &a, 1, call->span), one_rec);
        }
        return node_val(k, s.ret);
    }
    plan_node_kind kind = mode == M_EXPAND ? PN_EXPAND : PN_EXPAND_KWARGS;
    uint32_t k = emit(c, kind, lt, f.ref, mode == M_EXPAND ? naxes : 0, pa, (int)n, call->span);
    name_call(c, sc, k, call, tname);
    if (one_rec != PLAN_NONE) { /* a list of one record per instance: one list of them */
        plan_arg a = scalar(k);
        return node_val(emit(c, PN_FLATTEN, s.ret, PLAN_NONE, 0, &a, 1, call->span), s.ret);
    }
    return node_val(k, lt);
}

/* ---- combine ------------------------------------------------------------------------------ */
/* `let m = combine(a, b)`: the combined task is named m, its stable name in the history,
 * logs and cache (m#2, m#3 when another task of the plan is already called m). */
static void name_combine(chk_ctx *c, uint32_t task, const char *name) {
    fl_plan *p = c->plan;
    char buf[300];
    snprintf(buf, sizeof buf, "%s", name);
    for (int k = 2;; k++) {
        bool taken = chk_find_decl(c, buf) != NULL;
        for (uint32_t t = 0; t < p->n_tasks && !taken; t++)
            taken = t != task && !strcmp(plan_str(p, p->tasks[t].name), buf);
        if (!taken) break;
        snprintf(buf, sizeof buf, "%s#%d", name, k);
    }
    p->tasks[task].name = plan_intern_str(p, buf);
}

int chk_combine_count(chk_ctx *c, const char *name) {
    int same = chk_map_get(&c->combines, name);
    chk_map_put(c->ctx, &c->combines, ast_strndup(c->ar, name, strlen(name)), same + 1);
    chk_memo_combine(c, name);
    return same;
}

/* the field `name` of a stitch lambda's record body (for an error's span), or NULL */
static const fl_node *stitch_field_span(const fl_node *lam, const char *name) {
    const fl_node *b = lam->a;
    if (b && b->kind == AST_RECORD)
        for (int i = 0; i < b->list.len; i++)
            if (!strcmp(b->list.items[i]->name, name)) return b->list.items[i];
    return lam;
}

/* combine(first, second [, stitch = lambda]): a new TK_COMBINE task whose parameters
 * are the unbound parameters of both halves (a clash is an error unless one side is
 * bound: then it is kept under a qualified name), evaluated to a callable. */
static chk_val combine(chk_ctx *c, chk_scope *sc, const fl_node *call) {
    fl_plan *p = c->plan;
    const fl_node *halves[2] = {NULL, NULL}, *stitch = NULL;
    int npos = 0;
    bool ok = true;
    for (int i = 0; i < call->list.len; i++) {
        const fl_node *a = call->list.items[i];
        if (!a->name) {
            if (npos < 2) halves[npos] = a->a;
            npos++;
        } else if (!strcmp(a->name, "stitch")) {
            stitch = a->a;
        } else {
            diag_error(c->d, a->nspan, "combine(first, second) or combine(first, second, stitch = "
                                       "r => {...})",
                       "combine has no argument '%s'", a->name);
            ok = false;
        }
    }
    if (npos != 2) {
        diag_error(c->d, call->span, "combine(first, second)",
                   "combine takes two tasks, found %d", npos);
        return ERR;
    }
    chk_val fv[2];
    for (int h = 0; h < 2; h++) {
        fv[h] = eval(c, sc, halves[h], PLAN_NONE);
        if (fv[h].kind == CV_ERR) ok = false;
        else if (fv[h].kind != CV_TASK) {
            diag_error(c->d, halves[h]->span, NULL, "combine takes tasks, found a %s",
                       fv[h].kind == CV_GROUP ? "group" : "value");
            ok = false;
        } else if (chk_typed_kind(c, fv[h].ref) != TYPED_NONE) {
            /* its type comes from its call (check_typed.c): a half has none */
            diag_error(c->d, halves[h]->span, "call it in a typed let: let rows: [T] = "
                       "std.read_csv(f)",
                       "'%s' takes its type from its call; it cannot be a half of combine",
                       plan_str(p, p->tasks[fv[h].ref].name));
            ok = false;
        }
    }
    if (!ok) return ERR;
    chk_sig fs = sig_of(c, &fv[0]), ss = sig_of(c, &fv[1]);
    if (fs.n + ss.n > CHK_MAX_PARAMS) {
        diag_error(c->d, call->span, NULL, "too many parameters in one combine");
        return ERR;
    }
    if (ty_is(p, fs.ret, PT_VOID)) {
        diag_error(c->d, halves[0]->span, NULL, "'%s' returns nothing to hand to '%s'", fs.name,
                   ss.name);
        return ERR;
    }
    bool sb[CHK_MAX_PARAMS]; /* second's parameter bound by .partial */
    plan_bind binds[CHK_MAX_PARAMS];
    bool filled[CHK_MAX_PARAMS];
    for (uint32_t i = 0; i < ss.n; i++) {
        sb[i] = fv[1].bound && fv[1].bound[i] != PLAN_NONE;
        filled[i] = false;
    }
    uint32_t lam = PLAN_NONE;
    if (!stitch) {
        uint32_t k = 0;
        while (k < ss.n && sb[k]) k++;
        if (k == ss.n) {
            diag_error(c->d, halves[1]->span, NULL, "'%s' has no unbound parameter to take "
                       "'%s''s result", ss.name, fs.name);
            return ERR;
        }
        uint32_t want = p->params[ss.first + k].type;
        if (!ty_same(p, want, fs.ret)) {
            char a[128], b[128];
            diag_error(c->d, call->span,
                       "use stitch = r => {...} to say which parameters the result fills",
                       "'%s' returns %s, but '%s' takes %s as '%s'", fs.name,
                       chk_type_text(c, fs.ret, a, sizeof a), ss.name,
                       chk_type_text(c, want, b, sizeof b), pname(c, &ss, k));
            return ERR;
        }
        filled[k] = true;
        binds[k] = (plan_bind){PB_RESULT, 0};
    } else {
        if (stitch->kind != AST_LAMBDA) {
            diag_error(c->d, stitch->span, "e.g. stitch = r => {data = r, size = 1}",
                       "stitch must be a lambda");
            return ERR;
        }
        uint32_t rt = PLAN_NONE;
        c->ex.diag = c->d;
        lam = expr_lower_lambda(&c->ex, stitch, &fs.ret, 1, PLAN_NONE, &rt);
        if (lam == PLAN_NONE) return ERR;
        if (!ty_is(p, rt, PT_RECORD)) {
            char tb[128];
            diag_error(c->d, stitch->a->span, "its fields name parameters of the second task",
                       "stitch must return a record, found %s", chk_type_text(c, rt, tb, sizeof tb));
            return ERR;
        }
        const plan_type *rty = &p->types[rt];
        for (uint32_t k = 0; k < rty->n; k++) {
            plan_field fd = p->fields[p->types[rt].first + k];
            const char *fname = plan_str(p, fd.name);
            const fl_node *at = stitch_field_span(stitch, fname);
            fl_span sp = at->kind == AST_FIELDINIT ? at->nspan : at->span;
            int i = find_param(c, &ss, fname);
            if (i < 0) {
                unknown_param(c, &ss, fname, sp);
                ok = false;
                continue;
            }
            if (!field_feeds(c, &ss, sb[i], i, fd.type, sp,
                             at->kind == AST_FIELDINIT ? at->a->span : sp)) {
                ok = false;
                continue;
            }
            filled[i] = true;
            binds[i] = (plan_bind){PB_STITCH, k};
        }
        if (!ok) return ERR;
    }
    /* the combined task's parameters: first's, then second's that are not filled */
    plan_param cp[CHK_MAX_PARAMS];
    uint32_t cb[CHK_MAX_PARAMS]; /* partial binding carried over, per combined parameter */
    uint32_t nc = 0;
    for (uint32_t i = 0; i < fs.n; i++) {
        cp[nc] = p->params[fs.first + i];
        cb[nc++] = fv[0].bound ? fv[0].bound[i] : PLAN_NONE;
    }
    for (uint32_t i = 0; i < ss.n; i++) {
        if (filled[i]) continue;
        plan_param q = p->params[ss.first + i];
        for (uint32_t j = 0; j < fs.n; j++) {
            if (cp[j].name != q.name) continue;
            char nb[300], hb[300];
            const char *nm = plan_str(p, q.name);
            if (cb[j] == PLAN_NONE && !sb[i]) {
                snprintf(hb, sizeof hb, "bind one of them first, e.g. combine(%s, %s.partial(%s = "
                         "...))", fs.name, ss.name, nm);
                diag_error(c->d, call->span, hb, "'%s' and '%s' both have a parameter '%s'",
                           fs.name, ss.name, nm);
                ok = false;
            } else if (sb[i]) { /* already bound: keep it apart under a qualified name */
                snprintf(nb, sizeof nb, "%s.%s", ss.name, nm);
                q.name = plan_intern_str(p, nb);
            } else {
                snprintf(nb, sizeof nb, "%s.%s", fs.name, nm);
                cp[j].name = plan_intern_str(p, nb);
            }
        }
        binds[i] = (plan_bind){PB_PARAM, nc};
        cp[nc] = q;
        cb[nc++] = sb[i] ? fv[1].bound[i] : PLAN_NONE;
    }
    if (!ok) return ERR;
    uint32_t first_param = p->n_params;
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        p->params[k] = cp[i];
    }
    uint32_t first_bind = p->n_binds;
    for (uint32_t i = 0; i < ss.n; i++) {
        uint32_t k = PLAN_PUSH(p, binds);
        p->binds[k] = binds[i];
    }
    char name[300];
    size_t o = put_text(name, 0, sizeof name, "combine(");
    o = put_text(name, o, sizeof name, fs.name);
    o = put_text(name, o, sizeof name, ",");
    o = put_text(name, o, sizeof name, ss.name);
    o = put_text(name, o, sizeof name, ")");
    int same = chk_combine_count(c, name);
    if (same >= 0) { /* a second combine of the same halves: keep task names unique */
        o = put_text(name, o, sizeof name, "#");
        put_uint(name, o, sizeof name, (uint32_t)same + 2);
    }
    uint32_t ti = PLAN_PUSH(p, tasks);
    plan_task *t = &p->tasks[ti];
    t->name = plan_intern_str(p, name);
    t = &p->tasks[ti];
    t->kind = TK_COMBINE;
    t->first_param = first_param;
    t->nparams = nc;
    t->ret = ss.ret;
    t->lib = t->symbol = t->cmd = PLAN_NONE;
    t->first = fv[0].ref;
    t->second = fv[1].ref;
    t->stitch = lam;
    t->first_bind = first_bind;
    /* a half that is never cached (std.fetch) makes the unit uncached too, unless
     * the combine's own `with {cache: true}` says otherwise */
    t->cache = p->tasks[t->first].cache && p->tasks[t->second].cache;
    t->trigger = TRIG_ALL_SUCCESS;
    t->version = t->run_as = t->image = t->label = PLAN_NONE;
    t->loc = chk_loc(c, call->span);
    chk_val r = ERR;
    r.kind = CV_TASK;
    r.ref = ti;
    r.fresh = true;
    bool any = false;
    for (uint32_t i = 0; i < nc; i++) any |= cb[i] != PLAN_NONE;
    if (any) {
        r.bound = ast_alloc(c->ar, nc * sizeof *r.bound);
        if (!r.bound) return ERR; /* out of memory */
        memcpy(r.bound, cb, nc * sizeof *r.bound);
    }
    return r;
}

/* ---- built-ins and list methods ------------------------------------------------------------ */
static bool positional(chk_ctx *c, const fl_node *call, const char *fn, int lo, int hi) {
    for (int i = 0; i < call->list.len; i++)
        if (call->list.items[i]->name) {
            diag_error(c->d, call->list.items[i]->nspan, NULL, "%s takes no named arguments", fn);
            return false;
        }
    if (call->list.len < lo || call->list.len > hi) {
        if (lo == hi)
            diag_error(c->d, call->span, NULL, "%s takes %d argument%s, found %d", fn, lo,
                       lo == 1 ? "" : "s", call->list.len);
        else
            diag_error(c->d, call->span, NULL, "%s takes %d to %d arguments, found %d", fn, lo, hi,
                       call->list.len);
        return false;
    }
    return true;
}

/* evaluate argument i as a value of type want (PLAN_NONE: any) */
static bool arg_value(chk_ctx *c, chk_scope *sc, const fl_node *call, int i, uint32_t want,
                      const char *what, chk_val *out) {
    const fl_node *e = call->list.items[i]->a;
    *out = eval(c, sc, e, want);
    if (!want_node(c, out, e)) return false;
    if (want != PLAN_NONE && !ty_same(c->plan, want, out->type)) {
        type_mismatch(c, e->span, what, want, out->type, NULL);
        return false;
    }
    return true;
}

/* a built-in's argument that must be a list node */
static chk_val list_arg(chk_ctx *c, chk_scope *sc, const fl_node *e, const char *fn) {
    chk_val v = eval(c, sc, e, PLAN_NONE);
    if (!want_node(c, &v, e)) return ERR;
    if (!is_list(c, v.type)) {
        char tb[128];
        diag_error(c->d, e->span, NULL, "%s needs a list, found %s", fn,
                   chk_type_text(c, v.type, tb, sizeof tb));
        return ERR;
    }
    return v;
}

/* a call of a built-in (combine zip range files flatten len), lowered to its node */
static chk_val builtin(chk_ctx *c, chk_scope *sc, const char *fn, const fl_node *call) {
    fl_plan *p = c->plan;
    chk_val a, b;
    plan_arg args[CHK_MAX_ARGS];
    if (!strcmp(fn, "combine")) return combine(c, sc, call);
    if (!strcmp(fn, "range")) {
        if (!positional(c, call, "range", 1, 2)) return ERR;
        if (!arg_value(c, sc, call, 0, c->t_int, "range", &a)) return ERR;
        args[0] = scalar(a.node);
        if (call->list.len == 2) {
            if (!arg_value(c, sc, call, 1, c->t_int, "range", &b)) return ERR;
            args[1] = scalar(b.node);
        }
        uint32_t t = plan_type_list(p, c->t_int);
        return node_val(emit(c, PN_RANGE, t, PLAN_NONE, 0, args, call->list.len, call->span), t);
    }
    if (!strcmp(fn, "files")) {
        if (!positional(c, call, "files", 2, 2)) return ERR;
        if (!arg_value(c, sc, call, 0, c->t_dir, "files(dir, glob)", &a)) return ERR;
        if (!arg_value(c, sc, call, 1, c->t_str, "the glob of files(dir, glob)", &b)) return ERR;
        args[0] = scalar(a.node);
        args[1] = scalar(b.node);
        uint32_t t = plan_type_list(p, c->t_path);
        return node_val(emit(c, PN_FILES, t, PLAN_NONE, 0, args, 2, call->span), t);
    }
    if (!strcmp(fn, "flatten") || !strcmp(fn, "len")) {
        if (!positional(c, call, fn, 1, 1)) return ERR;
        a = list_arg(c, sc, call->list.items[0]->a, fn);
        if (a.kind == CV_ERR) return ERR;
        args[0] = scalar(a.node);
        if (fn[0] == 'l')
            return node_val(emit(c, PN_LEN, c->t_int, PLAN_NONE, 0, args, 1, call->span), c->t_int);
        uint32_t inner = elem_of(c, a.type);
        if (!is_list(c, inner)) {
            char tb[128];
            diag_error(c->d, call->list.items[0]->span, NULL,
                       "flatten needs a list of lists, found %s",
                       chk_type_text(c, a.type, tb, sizeof tb));
            return ERR;
        }
        return node_val(emit(c, PN_FLATTEN, inner, PLAN_NONE, 0, args, 1, call->span), inner);
    }
    /* zip(a = xs, b = ys) */
    plan_field fs[CHK_MAX_ARGS];
    int n = call->list.len;
    bool ok = true;
    if (n == 0) {
        diag_error(c->d, call->span, "e.g. zip(a = xs, b = ys)", "zip needs at least one list");
        return ERR;
    }
    for (int i = 0; i < n; i++) {
        const fl_node *ar = call->list.items[i];
        if (!ar->name) {
            diag_error(c->d, ar->span, "e.g. zip(a = xs, b = ys): the names become the fields",
                       "zip takes named lists");
            ok = false;
            continue;
        }
        for (int j = 0; j < i; j++)
            if (call->list.items[j]->name && !strcmp(call->list.items[j]->name, ar->name)) {
                diag_error(c->d, ar->nspan, NULL, "zip field '%s' is given twice", ar->name);
                ok = false;
            }
        a = list_arg(c, sc, ar->a, "zip");
        if (a.kind == CV_ERR) {
            ok = false;
            continue;
        }
        fs[i] = (plan_field){plan_intern_str(p, ar->name), elem_of(c, a.type)};
        args[i] = scalar(a.node);
    }
    if (!ok) return ERR;
    uint32_t t = plan_type_list(p, plan_type_record(p, PLAN_NONE, fs, (uint32_t)n));
    return node_val(emit(c, PN_ZIP, t, PLAN_NONE, 0, args, n, call->span), t);
}

/* xs.map(f) / xs.filter(f) */
static chk_val list_method(chk_ctx *c, chk_scope *sc, const fl_node *call, bool is_map) {
    fl_plan *p = c->plan;
    const char *fn = is_map ? ".map" : ".filter";
    chk_val xs = list_arg(c, sc, call->a->a, fn);
    if (xs.kind == CV_ERR) return ERR;
    if (!positional(c, call, fn, 1, 1)) return ERR;
    const fl_node *f = call->list.items[0]->a;
    uint32_t et = elem_of(c, xs.type);
    plan_arg arg = scalar(xs.node);
    if (f->kind == AST_LAMBDA) {
        uint32_t rt = PLAN_NONE;
        c->ex.diag = c->d;
        uint32_t lam = expr_lower_lambda(&c->ex, f, &et, 1, is_map ? PLAN_NONE : c->t_bool, &rt);
        if (lam == PLAN_NONE) return ERR;
        uint32_t t = is_map ? plan_type_list(p, rt) : xs.type;
        return node_val(emit(c, is_map ? PN_MAP : PN_FILTER, t, lam, 0, &arg, 1, call->span), t);
    }
    if (!is_map) {
        diag_error(c->d, f->span, "e.g. xs.filter(x => len(x) > 0)", ".filter takes a lambda");
        return ERR;
    }
    /* xs.map(task): the task's first unbound parameter takes each element (an expansion) */
    chk_val t = eval(c, sc, f, PLAN_NONE);
    if (t.kind == CV_ERR) return ERR;
    if (t.kind != CV_TASK) {
        diag_error(c->d, f->span, "e.g. xs.map(x => \"{x}.txt\") or xs.map(task)",
                   ".map takes a lambda or a one-parameter task");
        return ERR;
    }
    chk_sig s = sig_of(c, &t);
    plan_arg pa[CHK_MAX_PARAMS];
    int k = -1;
    for (uint32_t i = 0; i < s.n; i++) {
        const plan_param *pp = &p->params[s.first + i];
        if (t.bound && t.bound[i] != PLAN_NONE) pa[i] = scalar(t.bound[i]);
        else if (k < 0) k = (int)i;
        else if (pp->def != PLAN_NONE) pa[i] = scalar(emit_const(c, pp->def, call->span));
        else {
            diag_error(c->d, f->span, "bind the others with .partial",
                       ".map needs a task with one unbound parameter; '%s' also needs '%s'",
                       s.name, plan_str(p, pp->name));
            return ERR;
        }
    }
    if (k < 0) {
        diag_error(c->d, f->span, NULL, "'%s' has no unbound parameter to map over", s.name);
        return ERR;
    }
    uint32_t want = p->params[s.first + (uint32_t)k].type;
    if (!ty_same(p, want, et)) {
        char ctx[200];
        snprintf(ctx, sizeof ctx, "parameter '%.*s%s' of '%.*s%s'",
                 DIAG_CLIP(pname(c, &s, (uint32_t)k)), DIAG_CLIP(s.name));
        type_mismatch(c, call->a->a->span, ctx, want, et, "the list's elements feed it");
        return ERR;
    }
    pa[k] = (plan_arg){xs.node, PA_AXIS, 0};
    uint32_t lt = plan_type_list(p, s.ret);
    return node_val(emit(c, PN_EXPAND, lt, t.ref, 1, pa, (int)s.n, call->span), lt);
}

/* ---- what the checker tells an observer (flowc lsp; compile.h) ------------------------------ */
static bool observing(const chk_ctx *c) {
    return c->opt->obs && c->d == c->diag;
}

/* the C type a flow type travels as (runtime-abi.md §1) */
static const char *c_type(chk_ctx *c, uint32_t t, char *buf, size_t len) {
    const plan_type *ty = &c->plan->types[t];
    switch ((plan_type_kind)ty->kind) {
    case PT_VOID: return "void";
    case PT_INT: case PT_DURATION: return "int64_t";
    case PT_FLOAT: return "double";
    case PT_BOOL: return "bool";
    case PT_BYTES: return "flow_bytes";
    case PT_LIST: return "flow_list";
    case PT_RECORD:
        if (ty->name != PLAN_NONE) snprintf(buf, len, "%s", plan_str(c->plan, ty->name));
        else snprintf(buf, len, "struct {...}");
        return buf;
    default: return "const char *";
    }
}

/* Texts the observer was told, kept by what they describe (a type, an unbound task or
 * group), so the same signature is formatted once per check rather than at every
 * use: a direct-mapped table, a slot overwritten by the next key that maps to it.
 * A combine made by an expression is a new task each time, with a name of its own
 * (`combine(fetch, size_of)` written 1,600 times makes 1,600 tasks, the second named
 * `combine(fetch,size_of)#2`), so it is kept by what else its text shows: its result
 * and parameters (shape_key). A hit is checked against the task that made the text
 * (same_shape: two shapes that hash alike never share a text), whose name in the text
 * is then replaced by this one's. */
#define OBS_MEMO_BITS 12
#define OBS_MEMO (1 << OBS_MEMO_BITS)
struct chk_obs_memo {
    uint32_t key[OBS_MEMO]; /* 0: empty; else 1 + (what << 28 | nbound << 20 | index), or
                               for a combine's shape 1 + (3 << 28 | 28 bits of its hash) */
    char *text[OBS_MEMO];   /* from the context */
    uint32_t rep[OBS_MEMO]; /* a shape key's task (for same_shape) */
    uint32_t repbound[OBS_MEMO];
    uint32_t namelen[OBS_MEMO]; /* the length of its name in the text */
};

#define COMBINE_TEXT "combined task '" /* how callable_text starts a combine's text */

/* the hash of what a combine's hover text shows (nbound: how many .partial bound):
 * its result, its parameters' names, types and defaults (plan_param holds those and
 * its loc, which combines of the same halves share) */
static uint32_t shape_key(const fl_plan *p, uint32_t task, uint32_t nbound) {
    const plan_task *t = &p->tasks[task];
    uint32_t head[3] = {t->ret, t->nparams, nbound};
    uint64_t h = fl_hash_bytes(head, sizeof head);
    h = fl_hash_bytes_from(h, &p->params[t->first_param], t->nparams * sizeof *p->params);
    return 1 + (3u << 28 | ((uint32_t)(h ^ h >> 32) & 0x0FFFFFFFu));
}

static bool same_shape(const fl_plan *p, uint32_t a, uint32_t b) {
    const plan_task *x = &p->tasks[a], *y = &p->tasks[b];
    if (x->kind != y->kind || x->ret != y->ret || x->nparams != y->nparams) return false;
    for (uint32_t i = 0; i < x->nparams; i++) {
        const plan_param *u = &p->params[x->first_param + i], *v = &p->params[y->first_param + i];
        if (u->name != v->name || u->type != v->type || u->def != v->def) return false;
    }
    return true;
}

/* a key's slot: a multiplicative hash, so keys that differ only in their high bits
 * (the same task bound and unbound) do not take each other's slot */
static uint32_t memo_slot(uint32_t key) {
    return (key * 2654435761u) >> (32 - OBS_MEMO_BITS);
}

static const char *memo_get(chk_ctx *c, uint32_t key) {
    struct chk_obs_memo *m = c->obs_memo;
    return m && m->key[memo_slot(key)] == key ? m->text[memo_slot(key)] : NULL;
}

static void memo_put(chk_ctx *c, uint32_t key, const char *text, uint32_t rep, uint32_t nbound,
                     uint32_t namelen) {
    if (!c->obs_memo) c->obs_memo = fl_calloc(c->ctx, 1, sizeof *c->obs_memo);
    struct chk_obs_memo *m = c->obs_memo;
    char *t = m ? fl_strdup(c->ctx, text) : NULL;
    if (!t) return;
    uint32_t i = memo_slot(key);
    fl_free(c->ctx, m->text[i]);
    m->key[i] = key;
    m->text[i] = t;
    m->rep[i] = rep;
    m->repbound[i] = nbound;
    m->namelen[i] = namelen;
}

void chk_observe_free(chk_ctx *c) {
    for (int i = 0; c->obs_memo && i < OBS_MEMO; i++) fl_free(c->ctx, c->obs_memo->text[i]);
    fl_free(c->ctx, c->obs_memo);
    c->obs_memo = NULL;
}

/* a callable's signature for a hover (a C task's with the C function flowrun calls, a
 * partial's with how many parameters it binds) into text */
static void callable_text(chk_ctx *c, const chk_val *v, char *text, size_t len) {
    char tb[512];
    chk_sig s = sig_of(c, v);
    char sig[2048];
    signature_text(c, &s, sig, sizeof sig);
    const char *kind = v->kind == CV_GROUP ? "group" : "task";
    const plan_task *t = v->kind == CV_TASK ? &c->plan->tasks[v->ref] : NULL;
    if (t && t->kind == TK_SH) kind = "sh task";
    if (t && t->kind == TK_COMBINE) kind = "combined task"; /* COMBINE_TEXT */
    char rb[256];
    size_t k = put_text(text, 0, len, kind);
    k = put_text(text, k, len, " ");
    k = put_text(text, k, len, sig);
    k = put_text(text, k, len, " -> ");
    k = put_text(text, k, len, chk_type_text(c, s.ret, rb, sizeof rb));
    uint32_t nbound = 0;
    for (uint32_t i = 0; v->bound && i < s.n; i++) nbound += v->bound[i] != PLAN_NONE;
    if (nbound) {
        k = put_text(text, k, len, "\n(");
        k = put_uint(text, k, len, nbound);
        k = put_text(text, k, len, " of its parameters bound by .partial)");
    }
    if (t && t->kind == TK_C && t->symbol != PLAN_NONE) {
        k = put_text(text, k, len, "\nC: ");
        k = put_text(text, k, len, c_type(c, s.ret, tb, sizeof tb));
        k = put_text(text, k, len, " ");
        k = put_text(text, k, len, plan_str(c->plan, t->symbol));
        k = put_text(text, k, len, "(");
        for (uint32_t i = 0; i < s.n; i++) {
            k = put_text(text, k, len, i ? ", " : "");
            k = put_text(text, k, len, c_type(c, c->plan->params[s.first + i].type, tb, sizeof tb));
            k = put_text(text, k, len, " ");
            k = put_text(text, k, len, pname(c, &s, i));
        }
        k = put_text(text, k, len, s.n ? ")" : "void)");
        if (t->lib != PLAN_NONE) {
            k = put_text(text, k, len, "  in ");
            put_text(text, k, len, plan_str(c->plan, c->plan->libs[t->lib].path));
        }
    }
}

/* what a value is, for a hover: "name: type", or a callable's signature */
static void observe_val(chk_ctx *c, int mod, fl_span at, const char *name, const chk_val *v) {
    if (!observing(c) || v->kind == CV_ERR) return;
    const flowc_observer *o = c->opt->obs;
    if (!o->hover) return;
    char text[4096];
    /* a callable's text depends on how many of its parameters .partial bound, no more */
    uint32_t nbound = 0, index = v->kind == CV_NODE ? v->type : v->ref;
    if (v->kind != CV_NODE && v->bound) {
        chk_sig s = sig_of(c, v);
        for (uint32_t i = 0; i < s.n; i++) nbound += v->bound[i] != PLAN_NONE;
    }
    bool memo = v->kind == CV_NODE || (!v->fresh && nbound < 64 && index < (1u << 20));
    uint32_t key = 1 + ((uint32_t)(v->kind == CV_NODE ? 0 : v->kind == CV_TASK ? 1 : 2) << 28 |
                        nbound << 20 | index);
    const char *tname = v->kind == CV_TASK ? plan_str(c->plan, c->plan->tasks[v->ref].name) : "";
    size_t tnl = strlen(tname), pl = sizeof COMBINE_TEXT - 1;
    bool shape = v->kind == CV_TASK && c->plan->tasks[v->ref].kind == TK_COMBINE &&
                 tnl <= DIAG_NAME_MAX; /* a longer name is clipped in the text */
    if (shape) key = shape_key(c->plan, v->ref, nbound), memo = true;
    const char *known = memo ? memo_get(c, key) : NULL;
    if (known && shape) { /* the text of a combine of the same shape, with this name */
        uint32_t i = memo_slot(key);
        const struct chk_obs_memo *m = c->obs_memo;
        size_t rest = strlen(known);
        if (m->repbound[i] == nbound && same_shape(c->plan, m->rep[i], v->ref) &&
            rest >= pl + m->namelen[i] && pl + tnl + (rest - pl - m->namelen[i]) < sizeof text) {
            rest -= pl + m->namelen[i];
            memcpy(text, known, pl);
            memcpy(text + pl, tname, tnl);
            memcpy(text + pl + tnl, known + pl + m->namelen[i], rest + 1);
            known = text;
        } else {
            known = NULL;
        }
    }
    if (!known) {
        if (v->kind == CV_NODE) chk_type_text(c, v->type, text, sizeof text);
        else callable_text(c, v, text, sizeof text);
        if (shape && strncmp(text, COMBINE_TEXT, pl)) memo = false; /* not the form expected */
        if (memo) memo_put(c, key, text, v->ref, nbound, (uint32_t)tnl);
        known = text;
    }
    if (v->kind == CV_NODE && name) { /* "name: type" (no snprintf: this runs per name) */
        char named[4200];
        size_t nl = strnlen(name, sizeof named / 2), kl = strnlen(known, sizeof named - nl - 3);
        memcpy(named, name, nl);
        memcpy(named + nl, ": ", 2);
        memcpy(named + nl + 2, known, kl);
        named[nl + 2 + kl] = '\0';
        o->hover(o->user, mod, at, named);
        return;
    }
    o->hover(o->user, mod, at, known);
}

/* the name used at `use` is bound at `def` in module def_mod */
static void observe_ref(chk_ctx *c, fl_span use, int def_mod, fl_span def) {
    if (observing(c) && c->opt->obs->ref)
        c->opt->obs->ref(c->opt->obs->user, c->mod, use, def_mod, def);
}

void chk_observe_ref(chk_ctx *c, fl_span use, const chk_decl *dc) {
    observe_ref(c, use, dc->mod, dc->ast->nspan);
}

void chk_observe_type(chk_ctx *c, fl_span at, const char *name, uint32_t t) {
    if (!observing(c) || !c->opt->obs->hover || t == PLAN_NONE) return;
    char tb[256], text[2048];
    const plan_type *ty = &c->plan->types[t];
    size_t k = (size_t)snprintf(text, sizeof text, "type %s = ", name);
    if (ty->kind != PT_RECORD) {
        snprintf(text + k, sizeof text - k, "%s", chk_type_text(c, t, tb, sizeof tb));
    } else { /* its fields (the type's own text is its name) */
        for (uint32_t i = 0; i < ty->n && k < sizeof text; i++) {
            const plan_field *f = &c->plan->fields[ty->first + i];
            k += (size_t)snprintf(text + k, sizeof text - k, "%s%s: %s", i ? ", " : "{",
                                  plan_str(c->plan, f->name),
                                  chk_type_text(c, f->type, tb, sizeof tb));
        }
        if (k < sizeof text) snprintf(text + k, sizeof text - k, "%s}", ty->n ? "" : "{");
    }
    c->opt->obs->hover(c->opt->obs->user, c->mod, at, text);
}

void chk_observe_decl(chk_ctx *c, chk_decl *dc) {
    if (!observing(c) || dc->bad) return;
    chk_val v = ERR;
    if (dc->kind == DK_TASK) v.kind = CV_TASK, v.ref = dc->index;
    else if (dc->kind == DK_GROUP) v.kind = CV_GROUP, v.ref = (uint32_t)(dc - c->decls);
    else if (dc->kind == DK_FLOW) {
        const plan_graph *g = &c->plan->graphs[dc->index];
        chk_sig s = {g->first_param, g->nparams, g->ret, plan_str(c->plan, g->name)};
        char sig[2048], rb[256], text[2400];
        signature_text(c, &s, sig, sizeof sig);
        snprintf(text, sizeof text, "flow %s -> %s", sig, chk_type_text(c, s.ret, rb, sizeof rb));
        if (c->opt->obs->hover)
            c->opt->obs->hover(c->opt->obs->user, dc->mod, dc->ast->nspan, text);
        return;
    }
    observe_val(c, dc->mod, dc->ast->nspan, NULL, &v);
}

/* ---- names -------------------------------------------------------------------------------- */
/* A declaration named at e (NAME or m.NAME) as a value: a task or group callable. */
static chk_val decl_val(chk_ctx *c, chk_decl *dc, const fl_node *e, const char *name) {
    chk_val v = ERR;
    switch (dc->kind) {
    case DK_TASK:
        if (dc->bad) return ERR;
        v.kind = CV_TASK;
        v.ref = dc->index;
        return v;
    case DK_GROUP:
        if (dc->bad) return ERR; /* its errors are shown where they are */
        v.kind = CV_GROUP;
        v.ref = (uint32_t)(dc - c->decls);
        return v;
    case DK_FLOW:
        chk_memo_taint(c); /* (another flow's place is not in the memo's digest) */
        diag_error(c->d, e->span, "to reuse a sub-pipeline, declare it as a group",
                   "'%s' is a flow; flows cannot be called", name);
        return ERR;
    case DK_LIB:
        diag_error(c->d, e->span, "declare a task: task t(...) = %s.symbol",
                   "'%s' is a library, not a task", name);
        return ERR;
    case DK_TYPE:
        diag_error(c->d, e->span, NULL, "'%s' is a type, not a value", name);
        return ERR;
    }
    return ERR;
}

/* e is m.name where m is an import of this module (and no name bound in the body) */
static bool is_qualified(chk_ctx *c, chk_scope *sc, const fl_node *e) {
    return e->kind == AST_MEMBER && e->a && e->a->kind == AST_NAME &&
           !scope_get(sc, e->a->name) && chk_map_get(&sc->later, e->a->name) < 0 &&
           chk_import_of_alias(c, e->a->name);
}

/* m.name: a declaration of the module imported as m (quiet when m failed to load) */
static chk_val lookup_qualified(chk_ctx *c, const fl_node *e) {
    chk_decl *dc = chk_find_qualified(c, e->a->name, e->name, e->nspan);
    if (!dc) return ERR;
    observe_ref(c, e->nspan, dc->mod, dc->ast->nspan);
    char q[300];
    snprintf(q, sizeof q, "%s.%s", e->a->name, e->name);
    return decl_val(c, dc, e, q);
}

static chk_val lookup(chk_ctx *c, chk_scope *sc, const fl_node *e) {
    const char *name = e->name;
    chk_local *l = scope_get(sc, name);
    if (l) {
        observe_ref(c, e->span, c->mod, l->span);
        return l->val;
    }
    int later = chk_map_get(&sc->later, name);
    if (later >= 0) {
        diag_error(c->d, e->span, "statements run in data order, but a name must be bound "
                                  "before it is used",
                   "'%s' is used before it is bound", name);
        diag_note(c->d, sc->stmts->items[later]->nspan, "'%s' is bound here", name);
        return ERR;
    }
    chk_decl *dc = chk_find_decl(c, name);
    if (dc) {
        observe_ref(c, e->span, dc->mod, dc->ast->nspan);
        return decl_val(c, dc, e, name);
    }
    if (chk_import_of_alias(c, name)) {
        char hint[200];
        snprintf(hint, sizeof hint, "name one of its declarations: %s.NAME", name);
        diag_error(c->d, e->span, hint, "'%s' is an imported module, not a value", name);
        return ERR;
    }
    for (int i = 0; i < N_BUILTINS; i++)
        if (!strcmp(name, builtins[i])) {
            diag_error(c->d, e->span, NULL, "'%s' is a built-in function; call it", name);
            return ERR;
        }
    char hb[160];
    chk_cand_reset(c);
    for (int i = 0; i < sc->n; i++) chk_cand_add(c, sc->items[i].name);
    for (int i = 0; i < c->ndecls; i++)
        if ((c->decls[i].kind == DK_TASK || c->decls[i].kind == DK_GROUP) &&
            c->decls[i].mod == c->mod)
            chk_cand_add(c, c->decls[i].ast->name);
    for (int i = 0; i < N_BUILTINS; i++) chk_cand_add(c, builtins[i]);
    diag_error(c->d, e->span, chk_hint_closest(c, name, hb, sizeof hb), "unknown name '%s'", name);
    return ERR;
}

/* name is a built-in here: no binding, later let or declaration hides it */
static bool is_builtin_call(chk_ctx *c, chk_scope *sc, const char *name) {
    if (scope_get(sc, name) || chk_map_get(&sc->later, name) >= 0 || chk_find_decl(c, name) ||
        chk_import_of_alias(c, name))
        return false;
    for (int i = 0; i < N_BUILTINS; i++)
        if (!strcmp(name, builtins[i])) return true;
    return false;
}

/* ---- expressions --------------------------------------------------------------------------- */
static chk_val eval_call(chk_ctx *c, chk_scope *sc, const fl_node *e) {
    const fl_node *callee = e->a;
    if (callee->kind == AST_NAME && is_builtin_call(c, sc, callee->name))
        return builtin(c, sc, callee->name, e);
    if (callee->kind == AST_MEMBER && !is_qualified(c, sc, callee)) {
        const char *m = callee->name;
        if (!strcmp(m, "map") || !strcmp(m, "filter")) return list_method(c, sc, e, m[0] == 'm');
        call_mode mode = !strcmp(m, "partial") ? M_PARTIAL : !strcmp(m, "expand") ? M_EXPAND
                         : !strcmp(m, "expand_kwargs") ? M_KWARGS : M_CALL;
        if (mode == M_CALL) {
            char hb[160];
            chk_cand_reset(c);
            for (int i = 0; i < N_MEMBERS; i++) chk_cand_add(c, members[i]);
            const char *h = chk_hint_closest(c, m, hb, sizeof hb);
            diag_error(c->d, callee->nspan, h ? h : "methods: partial expand expand_kwargs map "
                                                    "filter",
                       "unknown method '%s'", m);
            return ERR;
        }
        chk_val f = eval(c, sc, callee->a, PLAN_NONE);
        if (f.kind == CV_ERR) return ERR;
        if (f.kind == CV_NODE) {
            char tb[128];
            diag_error(c->d, callee->nspan, NULL, ".%s applies to a task or group, found a "
                       "value of type %s", m, chk_type_text(c, f.type, tb, sizeof tb));
            return ERR;
        }
        return apply(c, sc, f, e, mode);
    }
    chk_val f = eval(c, sc, callee, PLAN_NONE);
    if (f.kind == CV_ERR) return ERR;
    if (f.kind == CV_NODE) {
        char tb[128];
        diag_error(c->d, callee->span, NULL, "a value of type %s cannot be called",
                   chk_type_text(c, f.type, tb, sizeof tb));
        return ERR;
    }
    return apply(c, sc, f, e, M_CALL);
}

/* [a, b, ...] of run-time values: a LIST node over them (one element type) */
static chk_val eval_list(chk_ctx *c, chk_scope *sc, const fl_node *e, uint32_t want) {
    fl_plan *p = c->plan;
    uint32_t et = want != PLAN_NONE && is_list(c, want) ? elem_of(c, want) : PLAN_NONE;
    int n = e->list.len;
    plan_arg *args = ast_alloc(c->ar, (size_t)(n ? n : 1) * sizeof *args);
    if (!args) return ERR; /* out of memory */
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const fl_node *x = e->list.items[i];
        chk_val v = eval(c, sc, x, et);
        if (!want_node(c, &v, x)) {
            ok = false;
            continue;
        }
        if (et == PLAN_NONE) et = v.type;
        else if (!ty_same(p, et, v.type)) {
            type_mismatch(c, x->span, "a list element", et, v.type,
                          "all elements of a list have one type");
            ok = false;
        }
        args[i] = scalar(v.node);
    }
    if (!ok) return ERR;
    uint32_t t = plan_type_list(p, et);
    return node_val(emit(c, PN_LIST, t, PLAN_NONE, 0, args, n, e->span), t);
}

/* {f = a, ...} of run-time values: a RECORD node (want: a record type to match) */
static chk_val eval_record(chk_ctx *c, chk_scope *sc, const fl_node *e, uint32_t want) {
    fl_plan *p = c->plan;
    int n = e->list.len;
    if (n > CHK_MAX_PARAMS) {
        diag_error(c->d, e->span, NULL, "a record with more than %d fields", CHK_MAX_PARAMS);
        return ERR;
    }
    const plan_type *wt = want != PLAN_NONE && ty_is(p, want, PT_RECORD) ? &p->types[want] : NULL;
    /* with an expected record type of the same field names, follow its order */
    int order[CHK_MAX_PARAMS];
    bool follow = wt && (int)wt->n == n;
    for (int k = 0; follow && k < n; k++) {
        const char *fname = plan_str(p, p->fields[wt->first + (uint32_t)k].name);
        order[k] = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(e->list.items[i]->name, fname)) order[k] = i;
        if (order[k] < 0) follow = false;
    }
    plan_arg args[CHK_MAX_PARAMS];
    plan_field fs[CHK_MAX_PARAMS];
    bool ok = true;
    for (int k = 0; k < n; k++) {
        int i = follow ? order[k] : k;
        const fl_node *fi = e->list.items[i];
        for (int j = 0; j < i && !follow; j++)
            if (!strcmp(e->list.items[j]->name, fi->name)) {
                diag_error(c->d, fi->nspan, NULL, "field '%s' is given twice", fi->name);
                ok = false;
            }
        uint32_t ft = follow ? p->fields[p->types[want].first + (uint32_t)k].type : PLAN_NONE;
        chk_val v = eval(c, sc, fi->a, ft);
        if (!want_node(c, &v, fi->a)) {
            ok = false;
            continue;
        }
        fs[k] = (plan_field){plan_intern_str(p, fi->name), v.type};
        args[k] = scalar(v.node);
    }
    if (!ok) return ERR;
    uint32_t t = plan_type_record(p, PLAN_NONE, fs, (uint32_t)n);
    if (follow && ty_same(p, t, want)) t = want;
    return node_val(emit(c, PN_RECORD, t, PLAN_NONE, 0, args, n, e->span), t);
}

/* eval() without the depth bound: one case per expression kind; a constant
 * expression becomes one CONST node of the type wanted when it fits */
static chk_val eval_inner(chk_ctx *c, chk_scope *sc, const fl_node *e, uint32_t want) {
    switch (e->kind) {
    case AST_INT: case AST_FLOAT: case AST_BOOL: case AST_STR: case AST_DATE: case AST_TIME:
    case AST_DURATION:
    case AST_UNARY: case AST_LIST: case AST_RECORD:
        if (chk_is_const(e)) {
            if (e->kind == AST_DURATION) {
                diag_error(c->d, e->span, NULL, "durations are only used in task options");
                return ERR;
            }
            uint32_t v = PLAN_NONE;
            if (want != PLAN_NONE) v = chk_const_value(c, e, want, false);
            if (v == PLAN_NONE) v = chk_const_value(c, e, PLAN_NONE, true);
            if (v == PLAN_NONE) return ERR;
            return node_val(emit_const(c, v, e->span), c->plan->values[v].type);
        }
        if (e->kind == AST_LIST) return eval_list(c, sc, e, want);
        if (e->kind == AST_RECORD) return eval_record(c, sc, e, want);
        if (e->kind == AST_STR) return chk_const_value(c, e, PLAN_NONE, true), ERR;
        break;
    case AST_NAME:
        return lookup(c, sc, e);
    case AST_CALL:
        return eval_call(c, sc, e);
    case AST_WITH: {
        chk_val f = eval(c, sc, e->a, PLAN_NONE);
        if (f.kind == CV_ERR) return ERR;
        if (f.kind != CV_TASK || !f.fresh) {
            diag_error(c->d, e->span, "give a task's options in its declaration: task t(...) = "
                                      "... with {...}",
                       "`with {...}` in a flow applies only to combine(...)");
            return ERR;
        }
        chk_task_options(c, f.ref, &e->list);
        f.fresh = false;
        return f;
    }
    case AST_LAMBDA:
        diag_error(c->d, e->span, "lambdas are arguments of map, filter, stitch and label",
                   "a lambda cannot stand here");
        return ERR;
    case AST_MEMBER:
        if (is_qualified(c, sc, e)) return lookup_qualified(c, e);
        diag_error(c->d, e->span, "call a method: .partial(...), .expand(...), .map(...); field "
                                  "access is for lambdas",
                   "'.%s' is not a value here", e->name);
        return ERR;
    default:
        break;
    }
    diag_error(c->d, e->span, "operators are for lambdas: xs.map(x => ...)",
               "this expression is not allowed in a flow body");
    return ERR;
}

/* Check e and emit what it computes; want: the type the context needs, or PLAN_NONE
 * (it guides literals: [] and {} need it). Nesting is bounded (CHK_MAX_EXPR_DEPTH). */
static chk_val eval(chk_ctx *c, chk_scope *sc, const fl_node *e, uint32_t want) {
    if (c->depth >= CHK_MAX_EXPR_DEPTH) {
        diag_error(c->d, e->span, NULL, "expression nested more than %d deep", CHK_MAX_EXPR_DEPTH);
        return ERR;
    }
    c->depth++;
    chk_val v = eval_inner(c, sc, e, want);
    c->depth--;
    if (observing(c))
        observe_val(c, c->mod, e->span, e->kind == AST_NAME ? e->name : NULL, &v);
    return v;
}

/* ---- statements ---------------------------------------------------------------------------- */
static void set_afters(chk_ctx *c, chk_scope *sc, const fl_node *st, uint32_t node, uint32_t fresh) {
    fl_plan *p = c->plan;
    if (!st->list.len) return;
    if (node == PLAN_NONE || node < fresh) {
        diag_error(c->d, st->span, NULL, "`after` needs a statement that runs a task");
        return;
    }
    /* a read of one record: its call waits, not the node that opens its list */
    const plan_node *N = &p->nodes[node];
    if ((N->kind == PN_ELEM || N->kind == PN_FLATTEN) && N->nargs == 1) {
        const plan_node *A = &p->nodes[p->args[N->first_arg].node];
        if ((A->kind == PN_CALL || A->kind == PN_EXPAND) && chk_typed_one(c, A->ref))
            node = p->args[N->first_arg].node;
    }
    uint32_t got[CHK_MAX_ARGS];
    int n = 0;
    for (int i = 0; i < st->list.len && n < CHK_MAX_ARGS; i++) {
        const fl_node *nm = st->list.items[i];
        if (st->kind == AST_LET && !strcmp(nm->name, st->name)) {
            diag_error(c->d, nm->span, NULL, "'%s' cannot run after itself", nm->name);
            continue;
        }
        chk_local *l = scope_get(sc, nm->name);
        if (l) {
            if (l->val.kind == CV_NODE && l->val.node == PLAN_NONE)
                diag_error(c->d, nm->span, "give the group a result, or wait for a step inside it",
                           "'%s' is a group call without a result; nothing to wait for",
                           nm->name);
            else if (l->val.kind == CV_NODE) got[n++] = l->val.node;
            else if (l->val.kind != CV_ERR)
                diag_error(c->d, nm->span, NULL, "'%s' is a task, not a step that runs", nm->name);
            continue;
        }
        int later = chk_map_get(&sc->later, nm->name);
        if (later >= 0) {
            diag_error(c->d, nm->span, "`after` can only name statements above it",
                       "'%s' is bound later, at line %d", nm->name,
                       sc->stmts->items[later]->span.line);
            continue;
        }
        char hb[160];
        chk_cand_reset(c);
        for (int k = 0; k < sc->n; k++) chk_cand_add(c, sc->items[k].name);
        diag_error(c->d, nm->span, chk_hint_closest(c, nm->name, hb, sizeof hb),
                   "unknown name '%s' after `after`", nm->name);
    }
    p->nodes[node].first_after = p->n_afters;
    p->nodes[node].nafter = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        uint32_t k = PLAN_PUSH(p, afters);
        p->afters[k] = got[i];
    }
}

/* give a node its instance name, prefixed by the inlined group's binding path */
static void name_node(chk_ctx *c, chk_scope *sc, uint32_t node, const char *name) {
    if (sc->prefix) {
        char buf[600];
        join_text(buf, sizeof buf, sc->prefix, "/");
        size_t k = strlen(buf);
        join_text(buf + k, sizeof buf - k, name, NULL);
        c->plan->nodes[node].name = plan_intern_str(c->plan, buf);
    } else {
        c->plan->nodes[node].name = plan_intern_str(c->plan, name);
    }
}

/* Walk a body's statements; returns the value of its `return` (a void node value
 * when it has none). ret: the declared result type. */
static chk_val walk(chk_ctx *c, chk_scope *sc, const fl_nodes *stmts, uint32_t ret,
                    const char *what, const fl_node *decl) {
    fl_plan *p = c->plan;
    sc->stmts = stmts;
    for (int i = 0; i < stmts->len; i++) {
        const fl_node *st = stmts->items[i];
        if (st->kind == AST_LET && chk_map_get(&sc->later, st->name) < 0 && !scope_get(sc, st->name))
            chk_map_put(c->ctx, &sc->later, st->name, i);
    }
    chk_val result = ERR;
    const fl_node *returned = NULL;
    bool bad = false;
    for (int i = 0; i < stmts->len && !chk_oom(c); i++) {
        const fl_node *st = stmts->items[i];
        uint32_t fresh = p->n_nodes;
        if (st->kind == AST_LET) {
            chk_local *prev = scope_get(sc, st->name);
            const fl_node *saved_expr = c->bind_expr;
            const char *saved_name = c->bind_name;
            c->bind_expr = st->a;
            c->bind_name = st->name;
            uint32_t ntasks = p->n_tasks;
            /* let x: T = e: e is checked wanting T (a typed reader takes T from it) */
            uint32_t declared = st->b ? chk_resolve_type(c, st->b) : PLAN_NONE;
            uint32_t saved_type = c->bind_type;
            c->bind_type = declared;
            chk_val v = eval(c, sc, st->a, declared);
            c->bind_type = saved_type;
            c->bind_expr = saved_expr;
            c->bind_name = saved_name;
            if (st->b && declared == PLAN_NONE) v = ERR; /* the type's error is reported */
            if (st->b && declared != PLAN_NONE && v.kind != CV_ERR) {
                if (!want_node(c, &v, st->a)) {
                    v = ERR;
                } else if (!ty_same(p, declared, v.type)) {
                    char a[128], b[128];
                    diag_error(c->d, st->a->span, NULL, "'%s' is declared %s, but this is %s",
                               st->name, chk_type_text(c, declared, a, sizeof a),
                               chk_type_text(c, v.type, b, sizeof b));
                    diag_note(c->d, st->b->span, "the type %s is declared here", a);
                    v = ERR;
                }
            }
            if (v.kind == CV_TASK && v.ref >= ntasks && p->tasks[v.ref].kind == TK_COMBINE)
                name_combine(c, v.ref, st->name);
            if (chk_map_get(&sc->later, st->name) == i) chk_map_put(c->ctx, &sc->later, st->name, -1);
            if (prev) {
                diag_error(c->d, st->nspan, "each name is bound once; choose another name",
                           "'%s' is already bound", st->name);
                diag_note(c->d, prev->span, "'%s' was first bound here", st->name);
                continue;
            }
            if (chk_hides_import(c, st->name, st->nspan, "let")) continue;
            bool made = v.kind == CV_NODE && v.node != PLAN_NONE && v.node >= fresh;
            if (made && p->nodes[v.node].name == PLAN_NONE) name_node(c, sc, v.node, st->name);
            if (v.kind != CV_ERR)
                set_afters(c, sc, st, v.kind == CV_NODE ? v.node : PLAN_NONE, fresh);
            observe_val(c, c->mod, st->nspan, st->name, &v);
            scope_add(c, sc, st->name, st->nspan, v);
        } else if (st->kind == AST_EXPRSTMT) {
            const fl_node *e = st->a;
            chk_val v = eval(c, sc, e, PLAN_NONE);
            if (v.kind == CV_TASK || v.kind == CV_GROUP) {
                diag_error(c->d, e->span, "call it, or .expand it, to run it",
                           "this makes a task but does not run it");
            } else if (v.kind == CV_NODE && v.node != PLAN_NONE && v.node < fresh) {
                diag_error(c->d, e->span, "a statement on its own runs a task for its effect",
                           "this statement does nothing");
            } else if (v.kind == CV_NODE) {
                set_afters(c, sc, st, v.node, fresh);
            }
        } else if (st->kind == AST_RETURN) {
            if (returned) {
                diag_error(c->d, st->span, NULL, "a %s returns once", what);
                diag_note(c->d, returned->span, "first return here");
                continue;
            }
            returned = st;
            if (ty_is(p, ret, PT_VOID)) {
                if (st->a) {
                    eval(c, sc, st->a, PLAN_NONE);
                    diag_error(c->d, st->a->span, "declare its result type: (...) -> T",
                               "%s '%s' has no result type but returns a value", what, decl->name);
                    bad = true;
                }
                continue;
            }
            if (!st->a) {
                diag_error(c->d, st->span, NULL, "%s '%s' must return a value", what, decl->name);
                bad = true;
                continue;
            }
            chk_val v = eval(c, sc, st->a, ret);
            if (!want_node(c, &v, st->a)) {
                bad = true;
                continue;
            }
            if (!ty_same(p, ret, v.type)) {
                char a[128], b[128];
                diag_error(c->d, st->a->span, NULL, "%s '%s' returns %s, but this is %s", what,
                           decl->name, chk_type_text(c, ret, a, sizeof a),
                           chk_type_text(c, v.type, b, sizeof b));
                if (decl->a)
                    diag_note(c->d, decl->a->span, "the result type %s is declared here", a);
                bad = true;
                continue;
            }
            result = v;
            if (v.node != PLAN_NONE && v.node >= fresh && p->nodes[v.node].name == PLAN_NONE &&
                !sc->prefix)
                name_node(c, sc, v.node, "return");
        } else {
            diag_error(c->d, st->span, NULL, "expected a statement");
        }
    }
    if (!returned && !ty_is(p, ret, PT_VOID)) {
        char a[128];
        diag_error(c->d, decl->nspan, "end the body with: return EXPR",
                   "%s '%s' declares -> %s but never returns a value", what, decl->name,
                   chk_type_text(c, ret, a, sizeof a));
        bad = true;
    }
    if (ty_is(p, ret, PT_VOID) && !bad) {
        result = ERR;
        result.kind = CV_NODE;
        result.node = PLAN_NONE;
        result.type = c->t_void;
    }
    return result;
}

/* A flow's or group's own graph: PARAM nodes, then its statements. */
void chk_body(chk_ctx *c, chk_decl *dc) {
    fl_plan *p = c->plan;
    fl_diag *saved = c->d;
    bool quiet = dc->kind == DK_GROUP && dc->reported;
    if (quiet) c->d = &c->mute;
    int before = c->d->errors;
    uint32_t gi = dc->index;
    p->graphs[gi].first_node = p->n_nodes;
    chk_scope sc;
    memset(&sc, 0, sizeof sc);
    uint32_t np = p->graphs[gi].nparams, fp = p->graphs[gi].first_param;
    for (uint32_t i = 0; i < np; i++) {
        const fl_node *pa = dc->ast->list.items[i];
        uint32_t t = p->params[fp + i].type;
        uint32_t n = emit(c, PN_PARAM, t, PLAN_NONE, i, NULL, 0, pa->span);
        p->nodes[n].name = p->params[fp + i].name;
        chk_hides_import(c, pa->name, pa->nspan, "parameter");
        if (!scope_get(&sc, pa->name)) {
            chk_val pv = node_val(n, t);
            observe_val(c, c->mod, pa->nspan, pa->name, &pv);
            scope_add(c, &sc, pa->name, pa->nspan, pv);
        }
    }
    if (dc->kind == DK_GROUP) dc->inlining = true;
    chk_val r = walk(c, &sc, &dc->ast->list2, p->graphs[gi].ret,
                     dc->kind == DK_FLOW ? "flow" : "group", dc->ast);
    if (dc->kind == DK_GROUP) {
        dc->inlining = false;
        dc->reported = true;
    }
    p->graphs[gi].nnodes = p->n_nodes - p->graphs[gi].first_node;
    p->graphs[gi].ret_node = r.kind == CV_NODE ? r.node : PLAN_NONE;
    if (c->d->errors != before) dc->bad = true;
    c->d = saved;
    scope_free(c, &sc);
}
