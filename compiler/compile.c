/*
 * compile.c — flowc_compile: declarations, types, constants, libraries, task
 * options, schedules; bodies are in check_body.c. Design: check.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "elf.h"
#include "hash.h"
#include "types.h"

/* ---- string -> int map -------------------------------------------------------------- */
static void map_grow(chk_map *m) {
    chk_map old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->keys = calloc((size_t)m->cap, sizeof *m->keys);
    m->vals = calloc((size_t)m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        fputs("flowc: out of memory\n", stderr);
        exit(2);
    }
    m->n = 0;
    for (int i = 0; i < old.cap; i++)
        if (old.keys[i]) chk_map_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

void chk_map_put(chk_map *m, const char *key, int val) {
    if ((m->n + 1) * 2 > m->cap) map_grow(m);
    int i = (int)(fl_hash_str(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
}

int chk_map_get(const chk_map *m, const char *key) {
    if (!m->cap || !key) return -1;
    int i = (int)(fl_hash_str(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void chk_map_free(chk_map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- small helpers ---------------------------------------------------------------------- */
void chk_cand_reset(chk_ctx *c) { c->ncand = 0; }

void chk_cand_add(chk_ctx *c, const char *name) {
    if (c->ncand == c->capcand) {
        c->capcand = c->capcand ? c->capcand * 2 : 64;
        c->cand = realloc(c->cand, (size_t)c->capcand * sizeof *c->cand);
        if (!c->cand) {
            fputs("flowc: out of memory\n", stderr);
            exit(2);
        }
    }
    c->cand[c->ncand++] = name;
}

/* "did you mean 'x'?" among the candidates collected, or NULL */
const char *chk_hint_closest(chk_ctx *c, const char *name, char *buf, size_t len) {
    const char *best = diag_closest(name, c->cand, c->ncand);
    if (!best) return NULL;
    snprintf(buf, len, "did you mean '%s'?", best);
    return buf;
}

const char *chk_type_text(chk_ctx *c, uint32_t t, char *buf, size_t len) {
    if (t == c->t_void) snprintf(buf, len, "nothing (void)");
    else plan_type_text(c->plan, t, buf, len);
    return buf;
}

uint32_t chk_loc(chk_ctx *c, flow_span sp) {
    return plan_add_loc(c->plan, (uint32_t)sp.line, (uint32_t)sp.col, (uint32_t)sp.end_line,
                        (uint32_t)sp.end_col);
}

chk_decl *chk_find_decl(chk_ctx *c, const char *name) {
    int i = chk_map_get(&c->names, name);
    return i < 0 ? NULL : &c->decls[i];
}

static const char *const basic_names[] = {"int", "float", "bool", "str", "path",
                                          "dir", "bytes", "date", "duration"};
static const plan_type_kind basic_kinds[] = {PT_INT, PT_FLOAT, PT_BOOL, PT_STR, PT_PATH,
                                             PT_DIR, PT_BYTES, PT_DATE, PT_DURATION};

/* ---- types -------------------------------------------------------------------------------- */
static uint32_t resolve_decl_type(chk_ctx *c, chk_decl *dc, const flow_node *use);

uint32_t chk_resolve_type(chk_ctx *c, const flow_node *t) {
    char hb[160];
    switch (t->kind) {
    case AST_TNAME: {
        for (size_t i = 0; i < sizeof basic_names / sizeof *basic_names; i++)
            if (!strcmp(t->name, basic_names[i]))
                return plan_type_basic(c->plan, basic_kinds[i]);
        chk_decl *dc = chk_find_decl(c, t->name);
        if (dc && dc->kind == DK_TYPE) return resolve_decl_type(c, dc, t);
        chk_cand_reset(c);
        for (size_t i = 0; i < sizeof basic_names / sizeof *basic_names; i++)
            chk_cand_add(c, basic_names[i]);
        for (int i = 0; i < c->ndecls; i++)
            if (c->decls[i].kind == DK_TYPE) chk_cand_add(c, c->decls[i].ast->name);
        if (dc)
            diag_error(c->d, t->span, NULL, "'%s' is a %s, not a type", t->name,
                       dc->kind == DK_TASK ? "task" : dc->kind == DK_LIB ? "library"
                       : dc->kind == DK_FLOW ? "flow" : "group");
        else
            diag_error(c->d, t->span, chk_hint_closest(c, t->name, hb, sizeof hb),
                       "unknown type '%s'", t->name);
        return PLAN_NONE;
    }
    case AST_TLIST: {
        uint32_t e = chk_resolve_type(c, t->a);
        return e == PLAN_NONE ? PLAN_NONE : plan_type_list(c->plan, e);
    }
    case AST_TRECORD: {
        int n = t->list.len;
        if (n > CHK_MAX_PARAMS) {
            diag_error(c->d, t->span, NULL, "a record may have at most %d fields",
                       CHK_MAX_PARAMS);
            return PLAN_NONE;
        }
        plan_field fs[CHK_MAX_PARAMS];
        bool ok = true;
        for (int i = 0; i < n; i++) {
            const flow_node *f = t->list.items[i];
            for (int j = 0; j < i; j++)
                if (!strcmp(t->list.items[j]->name, f->name)) {
                    diag_error(c->d, f->nspan, NULL, "field '%s' is declared twice", f->name);
                    diag_note(c->d, t->list.items[j]->nspan, "'%s' was first declared here",
                              f->name);
                    ok = false;
                    break;
                }
            fs[i].name = plan_intern_str(c->plan, f->name);
            fs[i].type = chk_resolve_type(c, f->a);
            if (fs[i].type == PLAN_NONE) ok = false;
            else if (ty_is(c->plan, fs[i].type, PT_DURATION)) {
                diag_error(c->d, f->a->span, NULL, "a duration can only be a task option");
                ok = false;
            }
        }
        return ok ? plan_type_record(c->plan, PLAN_NONE, fs, (uint32_t)n) : PLAN_NONE;
    }
    default:
        diag_error(c->d, t->span, NULL, "expected a type");
        return PLAN_NONE;
    }
}

/* A declared type: records get their declared name; recursion is an error. */
static uint32_t resolve_decl_type(chk_ctx *c, chk_decl *dc, const flow_node *use) {
    if (dc->state == 2) return dc->index;
    if (dc->state == 3) return PLAN_NONE;
    if (dc->state == 1) {
        diag_error(c->d, use->span, NULL, "type '%s' is defined in terms of itself", use->name);
        diag_note(c->d, dc->ast->nspan, "'%s' is declared here", use->name);
        dc->state = 3;
        return PLAN_NONE;
    }
    dc->state = 1;
    uint32_t t = chk_resolve_type(c, dc->ast->a);
    if (dc->state == 3) return PLAN_NONE;
    if (t != PLAN_NONE && c->plan->types[t].kind == PT_RECORD) {
        const plan_type *rt = &c->plan->types[t];
        uint32_t n = rt->n, first = rt->first;
        plan_field fs[CHK_MAX_PARAMS];
        memcpy(fs, &c->plan->fields[first], n * sizeof *fs);
        t = plan_type_record(c->plan, plan_intern_str(c->plan, dc->ast->name), fs, n);
    }
    dc->index = t;
    dc->state = t == PLAN_NONE ? 3 : 2;
    return t;
}

/* ---- constants ---------------------------------------------------------------------------- */
bool chk_is_const(const flow_node *e) {
    switch (e->kind) {
    case AST_INT: case AST_FLOAT: case AST_BOOL: case AST_DATE: case AST_DURATION:
        return true;
    case AST_STR:
        for (int i = 0; i < e->list.len; i++)
            if (e->list.items[i]->kind != AST_STRPART) return false;
        return true;
    case AST_UNARY:
        return e->op == OP_NEG && (e->a->kind == AST_INT || e->a->kind == AST_FLOAT);
    case AST_LIST:
        for (int i = 0; i < e->list.len; i++)
            if (!chk_is_const(e->list.items[i])) return false;
        return true;
    case AST_RECORD:
        for (int i = 0; i < e->list.len; i++)
            if (!chk_is_const(e->list.items[i]->a)) return false;
        return true;
    default:
        return false;
    }
}

static uint32_t add_value(chk_ctx *c, uint32_t type) {
    uint32_t v = PLAN_PUSH(c->plan, values);
    c->plan->values[v].type = type;
    return v;
}

/* the text of a STR without interpolation (NUL bytes are refused) */
static const char *str_text(chk_ctx *c, const flow_node *e, bool report) {
    size_t n = 0;
    for (int i = 0; i < e->list.len; i++) n += (size_t)e->list.items[i]->ival;
    char *s = ast_alloc(c->ar, n + 1), *p = s;
    for (int i = 0; i < e->list.len; i++) {
        const flow_node *part = e->list.items[i];
        memcpy(p, part->sval, (size_t)part->ival);
        p += part->ival;
    }
    *p = 0;
    if (strlen(s) != n) {
        if (report) diag_error(c->d, e->span, NULL, "a string constant may not hold a NUL byte");
        return NULL;
    }
    return s;
}

static bool valid_date(const char *s) {
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) return false;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

static const char *literal_what(const flow_node *e) {
    static const char *const found[] = {[AST_INT] = "an int",      [AST_FLOAT] = "a float",
                                        [AST_BOOL] = "a bool",     [AST_STR] = "a string",
                                        [AST_DURATION] = "a duration", [AST_DATE] = "a date",
                                        [AST_LIST] = "a list",     [AST_RECORD] = "a record",
                                        [AST_UNARY] = "a number"};
    return (size_t)e->kind < sizeof found / sizeof *found && found[e->kind] ? found[e->kind]
                                                                           : "another value";
}

/* c->const_what names what the constant is for ("the default of 'x'"), when known */
static void const_mismatch(chk_ctx *c, const flow_node *e, uint32_t want) {
    char tb[128];
    const char *hint = e->kind == AST_STR && ty_is(c->plan, want, PT_DURATION)
                           ? "a duration is written without quotes: 500ms 30s 5m 2h 1d" : NULL;
    if (c->const_what)
        diag_error(c->d, e->span, hint, "%s must be of type %s, found %s", c->const_what,
                   chk_type_text(c, want, tb, sizeof tb), literal_what(e));
    else
        diag_error(c->d, e->span, hint, "expected a constant of type %s, found %s",
                   chk_type_text(c, want, tb, sizeof tb), literal_what(e));
}

/*
 * A constant (defaults, literals in flows) as a plan value of type `want`, or of
 * its own type when want is PLAN_NONE. Conversions a literal allows: a string to
 * path/dir, a "YYYY-MM-DD" string to date, an int to float.
 */
uint32_t chk_const_value(chk_ctx *c, const flow_node *e, uint32_t want, bool report) {
    flow_plan *p = c->plan;
    plan_type_kind wk = want == PLAN_NONE ? PT__COUNT : (plan_type_kind)p->types[want].kind;
    uint32_t v;
    switch (e->kind) {
    case AST_INT:
        if (wk == PT_FLOAT) {
            v = add_value(c, want);
            p->values[v].u.f = (double)e->ival;
            return v;
        }
        if (wk != PT__COUNT && wk != PT_INT) break;
        v = add_value(c, c->t_int);
        p->values[v].u.i = e->ival;
        return v;
    case AST_FLOAT:
        if (wk != PT__COUNT && wk != PT_FLOAT) break;
        v = add_value(c, c->t_float);
        p->values[v].u.f = e->fval;
        return v;
    case AST_UNARY: {
        if (e->op != OP_NEG || (e->a->kind != AST_INT && e->a->kind != AST_FLOAT)) break;
        uint32_t inner = chk_const_value(c, e->a, want, report);
        if (inner == PLAN_NONE) return PLAN_NONE;
        if (p->values[inner].type == c->t_int) {
            if (p->values[inner].u.i == INT64_MIN) break;
            p->values[inner].u.i = -p->values[inner].u.i;
        } else {
            p->values[inner].u.f = -p->values[inner].u.f;
        }
        return inner;
    }
    case AST_BOOL:
        if (wk != PT__COUNT && wk != PT_BOOL) break;
        v = add_value(c, c->t_bool);
        p->values[v].u.i = e->ival != 0;
        return v;
    case AST_DURATION:
        if (wk != PT__COUNT && wk != PT_DURATION) break;
        v = add_value(c, c->t_dur);
        p->values[v].u.i = e->ival;
        return v;
    case AST_DATE:
        if (wk != PT__COUNT && wk != PT_DATE) break;
        v = add_value(c, c->t_date);
        p->values[v].u.s = plan_intern_str(p, e->sval);
        return v;
    case AST_STR: {
        if (wk != PT__COUNT && wk != PT_STR && wk != PT_PATH && wk != PT_DIR && wk != PT_DATE)
            break;
        for (int i = 0; i < e->list.len; i++)
            if (e->list.items[i]->kind != AST_STRPART) {
                if (report)
                    diag_error(c->d, e->list.items[i]->span,
                               "interpolation is allowed inside lambdas and sh commands",
                               "a constant string cannot interpolate a value");
                return PLAN_NONE;
            }
        const char *s = str_text(c, e, report);
        if (!s) return PLAN_NONE;
        if (wk == PT_DATE && !valid_date(s)) {
            if (report)
                diag_error(c->d, e->span, "write a calendar day as YYYY-MM-DD, e.g. 2026-01-31",
                           "\"%s\" is not a valid date", s);
            return PLAN_NONE;
        }
        v = add_value(c, wk == PT__COUNT ? c->t_str : want);
        p->values[v].u.s = plan_intern_str(p, s);
        return v;
    }
    case AST_LIST: {
        uint32_t et = wk == PT_LIST ? p->types[want].elem : PLAN_NONE;
        if (wk != PT__COUNT && wk != PT_LIST) break;
        int n = e->list.len;
        if (n == 0 && et == PLAN_NONE) {
            if (report)
                diag_error(c->d, e->span, "give it a type through a typed parameter",
                           "cannot tell the element type of an empty list");
            return PLAN_NONE;
        }
        uint32_t *vs = ast_alloc(c->ar, (size_t)(n ? n : 1) * sizeof *vs);
        bool inferred = et == PLAN_NONE; /* the first element gives the type */
        for (int i = 0; i < n; i++) {
            const flow_node *x = e->list.items[i];
            vs[i] = chk_const_value(c, x, et, report && !(inferred && i > 0));
            if (vs[i] == PLAN_NONE && report && inferred && i > 0) {
                char tb[128];
                if (chk_const_value(c, x, PLAN_NONE, false) != PLAN_NONE)
                    diag_error(c->d, x->span, "all elements of a list have one type",
                               "list elements must have one type: %s before, %s here",
                               chk_type_text(c, et, tb, sizeof tb), literal_what(x));
                else
                    chk_const_value(c, x, et, true);
            }
            if (vs[i] == PLAN_NONE) return PLAN_NONE;
            if (et == PLAN_NONE) et = p->values[vs[i]].type;
            else if (!ty_same(p, et, p->values[vs[i]].type)) {
                char tb[128];
                if (report)
                    diag_error(c->d, e->list.items[i]->span, NULL,
                               "list elements must have one type: expected %s",
                               chk_type_text(c, et, tb, sizeof tb));
                return PLAN_NONE;
            }
        }
        v = add_value(c, want != PLAN_NONE ? want : plan_type_list(p, et));
        p->values[v].n = (uint32_t)n;
        p->values[v].u.first = p->n_items;
        for (int i = 0; i < n; i++) {
            uint32_t k = PLAN_PUSH(p, items);
            p->items[k] = vs[i];
        }
        return v;
    }
    case AST_RECORD: {
        if (wk != PT__COUNT && wk != PT_RECORD) break;
        int n = e->list.len;
        if (n > CHK_MAX_PARAMS) break;
        uint32_t vs[CHK_MAX_PARAMS];
        plan_field fs[CHK_MAX_PARAMS];
        if (wk == PT_RECORD) {
            const plan_type *rt = &p->types[want];
            if ((int)rt->n != n) break;
            for (uint32_t k = 0; k < rt->n; k++) {
                const plan_field *f = &p->fields[rt->first + k];
                const char *fname = plan_str(p, f->name);
                int at = -1;
                for (int i = 0; i < n; i++)
                    if (!strcmp(e->list.items[i]->name, fname)) at = i;
                if (at < 0) {
                    if (report) diag_error(c->d, e->span, NULL, "missing field '%s'", fname);
                    return PLAN_NONE;
                }
                uint32_t ftype = f->type;
                vs[k] = chk_const_value(c, e->list.items[at]->a, ftype, report);
                if (vs[k] == PLAN_NONE) return PLAN_NONE;
            }
        } else {
            for (int i = 0; i < n; i++) {
                vs[i] = chk_const_value(c, e->list.items[i]->a, PLAN_NONE, report);
                if (vs[i] == PLAN_NONE) return PLAN_NONE;
                fs[i].name = plan_intern_str(p, e->list.items[i]->name);
                fs[i].type = p->values[vs[i]].type;
            }
            want = plan_type_record(p, PLAN_NONE, fs, (uint32_t)n);
        }
        v = add_value(c, want);
        p->values[v].n = (uint32_t)n;
        p->values[v].u.first = p->n_items;
        for (int i = 0; i < n; i++) {
            uint32_t k = PLAN_PUSH(p, items);
            p->items[k] = vs[i];
        }
        return v;
    }
    default:
        if (report) diag_error(c->d, e->span, NULL, "expected a constant");
        return PLAN_NONE;
    }
    if (report) const_mismatch(c, e, want);
    return PLAN_NONE;
}

/* ---- parameters ----------------------------------------------------------------------------- */
void chk_params(chk_ctx *c, const flow_nodes *ps, uint32_t *first, uint32_t *n) {
    flow_plan *p = c->plan;
    *first = p->n_params;
    *n = 0;
    if (ps->len > CHK_MAX_PARAMS) {
        diag_error(c->d, ps->items[CHK_MAX_PARAMS]->span, NULL, "more than %d parameters",
                   CHK_MAX_PARAMS);
        return;
    }
    for (int i = 0; i < ps->len; i++) {
        const flow_node *pa = ps->items[i];
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
                snprintf(what, sizeof what, "the default of '%s'", pa->name);
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

/* ---- task options --------------------------------------------------------------------------- */
#define TASK_OPTIONS(X)                                                                            \
    X(retries) X(retry_delay) X(timeout) X(cache) X(version) X(max_map) X(concurrency)          \
        X(trigger) X(run_as) X(image) X(label) X(memory) X(max_procs)

static const char *const option_names[] = {
#define X(o) #o,
    TASK_OPTIONS(X)
#undef X
};

static bool opt_const(chk_ctx *c, const flow_node *o, uint32_t want, plan_value *out) {
    if (!chk_is_const(o->a)) {
        char tb[64];
        diag_error(c->d, o->a->span, NULL, "option '%s' must be a constant %s", o->name,
                   chk_type_text(c, want, tb, sizeof tb));
        return false;
    }
    char what[200];
    snprintf(what, sizeof what, "option '%s'", o->name);
    c->const_what = what;
    uint32_t v = chk_const_value(c, o->a, want, true);
    c->const_what = NULL;
    if (v == PLAN_NONE) return false;
    *out = c->plan->values[v];
    c->plan->n_values--; /* options live in the task record, not as plan values */
    return true;
}

void chk_task_options(chk_ctx *c, uint32_t task, const flow_nodes *opts) {
    flow_plan *p = c->plan;
    char hb[160];
    for (int i = 0; i < opts->len; i++) {
        const flow_node *o = opts->items[i];
        int which = -1;
        for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
            if (!strcmp(o->name, option_names[k])) which = (int)k;
        if (which < 0) {
            chk_cand_reset(c);
            for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
                chk_cand_add(c, option_names[k]);
            const char *h = chk_hint_closest(c, o->name, hb, sizeof hb);
            diag_error(c->d, o->nspan,
                       h ? h : "options: retries retry_delay timeout cache version max_map "
                               "concurrency trigger run_as image label memory max_procs",
                       "unknown task option '%s'", o->name);
            continue;
        }
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            if (!strcmp(opts->items[j]->name, o->name)) {
                diag_error(c->d, o->nspan, NULL, "option '%s' is given twice", o->name);
                diag_note(c->d, opts->items[j]->nspan, "first given here");
                dup = true;
            }
        if (dup) continue;
        plan_task *t = &p->tasks[task];
        plan_value v;
        const char *name = o->name;
        if (!strcmp(name, "retries") || !strcmp(name, "max_map") || !strcmp(name, "concurrency")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            t = &p->tasks[task];
            int64_t lo = name[0] == 'r' ? 0 : 1;
            if (v.u.i < lo || v.u.i > (name[0] == 'm' ? INT64_MAX : (int64_t)UINT32_MAX)) {
                diag_error(c->d, o->a->span, NULL, "option '%s' must be %s", name,
                           lo ? "greater than 0" : "0 or more");
                continue;
            }
            if (name[0] == 'r') t->retries = (uint32_t)v.u.i;
            else if (name[0] == 'm') t->max_map = v.u.i;
            else t->concurrency = (uint32_t)v.u.i;
        } else if (!strcmp(name, "memory")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            if (v.u.i < (1 << 20)) {
                diag_error(c->d, o->a->span, "write a size: memory: 512MiB, memory: 2GiB",
                           "option 'memory' must be at least 1MiB");
                continue;
            }
            p->tasks[task].memory = v.u.i;
        } else if (!strcmp(name, "max_procs")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            if (v.u.i < 1 || v.u.i > PLAN_MAX_PROCS) {
                diag_error(c->d, o->a->span, NULL, "option 'max_procs' must be from 1 to %d",
                           PLAN_MAX_PROCS);
                continue;
            }
            p->tasks[task].max_procs = (uint32_t)v.u.i;
        } else if (!strcmp(name, "retry_delay") || !strcmp(name, "timeout")) {
            if (!opt_const(c, o, c->t_dur, &v)) continue;
            t = &p->tasks[task];
            if (v.u.i > PLAN_MAX_DURATION_MS) {
                diag_error(c->d, o->a->span, "the longest is 365d (8760h)",
                           "option '%s' is longer than 365 days", name);
                continue;
            }
            if (name[1] == 'e') t->retry_delay_ms = v.u.i;
            else t->timeout_ms = v.u.i;
        } else if (!strcmp(name, "cache")) {
            if (!opt_const(c, o, c->t_bool, &v)) continue;
            p->tasks[task].cache = (uint32_t)v.u.i;
        } else if (!strcmp(name, "label")) {
            if (o->a->kind != AST_LAMBDA) {
                diag_error(c->d, o->a->span, "e.g. label: f => basename(f)",
                           "option 'label' must be a lambda");
                continue;
            }
            uint32_t np = t->nparams, first = t->first_param;
            if (np == 0) {
                diag_error(c->d, o->a->span, NULL, "a task without parameters cannot have a label");
                continue;
            }
            uint32_t pt[CHK_MAX_PARAMS];
            for (uint32_t k = 0; k < np && k < CHK_MAX_PARAMS; k++) pt[k] = p->params[first + k].type;
            c->ex.diag = c->d;
            uint32_t lam = expr_lower_lambda_prefix(&c->ex, o->a, pt, (int)np, c->t_str, NULL);
            p->tasks[task].label = lam;
        } else { /* string options */
            if (!opt_const(c, o, c->t_str, &v)) continue;
            t = &p->tasks[task];
            if (!strcmp(name, "trigger")) {
                const char *s = plan_str(p, v.u.s);
                if (!strcmp(s, "all_success")) t->trigger = TRIG_ALL_SUCCESS;
                else if (!strcmp(s, "all_done")) t->trigger = TRIG_ALL_DONE;
                else diag_error(c->d, o->a->span, "trigger is \"all_success\" or \"all_done\"",
                                "unknown trigger \"%s\"", s);
            } else if (!strcmp(name, "version")) t->version = v.u.s;
            else if (!strcmp(name, "run_as")) t->run_as = v.u.s;
            else t->image = v.u.s;
        }
    }
}

/* ---- schedules -------------------------------------------------------------------------- */
static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* one number or name of a cron field; returns the end, or NULL */
static const char *cron_atom(const char *s, int field, int *out) {
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
        *out = (int)v;
        return s;
    }
    const char *const *names = field == 3 ? months : field == 4 ? wdays : NULL;
    int n = field == 3 ? 12 : 7;
    for (int i = 0; names && i < n; i++)
        if (!strncasecmp(s, names[i], 3) && !isalpha((unsigned char)s[3])) {
            *out = field == 3 ? i + 1 : i;
            return s + 3;
        }
    return NULL;
}

/* NULL when the field is valid, else why not */
static const char *cron_field(const char *s, int field) {
    static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    for (;;) {
        int a = lo[field], b = hi[field];
        if (*s == '*') {
            s++;
        } else {
            const char *e = cron_atom(s, field, &a);
            if (!e) return "expected a number, a range, a list or *";
            s = e;
            b = a;
            if (*s == '-') {
                e = cron_atom(s + 1, field, &b);
                if (!e) return "expected the end of the range";
                s = e;
                if (b < a) return "a range must run upwards";
            }
            if (a < lo[field] || b > hi[field]) return "value out of range";
        }
        if (*s == '/') {
            int step;
            const char *e = s + 1;
            if (!isdigit((unsigned char)*e)) return "expected a step after /";
            e = cron_atom(e, 0, &step);
            if (step <= 0) return "a step must be greater than 0";
            s = e;
        }
        if (*s == ',') {
            s++;
            continue;
        }
        return *s ? "unexpected character" : NULL;
    }
}

static void check_schedule(chk_ctx *c, const flow_node *fl, uint32_t graph) {
    const flow_node *e = fl->b;
    const char *s = e->kind == AST_STR ? str_text(c, e, false) : NULL;
    if (!s || !chk_is_const(e)) {
        diag_error(c->d, e->span, NULL, "a schedule must be a constant string");
        return;
    }
    static const char *const macros[] = {"@hourly", "@daily", "@weekly", "@monthly"};
    bool ok = false;
    if (s[0] == '@') {
        for (int i = 0; i < 4; i++) ok |= !strcmp(s, macros[i]);
        if (!ok) {
            chk_cand_reset(c);
            for (int i = 0; i < 4; i++) chk_cand_add(c, macros[i]);
            char hb[160];
            const char *h = chk_hint_closest(c, s, hb, sizeof hb);
            diag_error(c->d, e->span, h ? h : "use @hourly, @daily, @weekly, @monthly or a "
                                              "five-field cron line",
                       "unknown schedule \"%s\"", s);
        }
    } else {
        static const char *const fnames[] = {"minute", "hour", "day of month", "month",
                                             "day of week"};
        char buf[256];
        snprintf(buf, sizeof buf, "%s", s);
        char *fields[6];
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
            if (n < 6) fields[n++] = tok;
            else n++;
        if (n != 5) {
            diag_error(c->d, e->span, "minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"",
                       "a cron schedule has 5 fields, this one has %d", n);
        } else {
            ok = true;
            for (int i = 0; i < 5 && ok; i++) {
                const char *why = cron_field(fields[i], i);
                if (why) {
                    diag_error(c->d, e->span, "minute 0-59, hour 0-23, day 1-31, month 1-12, "
                                              "weekday 0-7",
                               "bad %s field '%s' in the schedule: %s", fnames[i], fields[i], why);
                    ok = false;
                }
            }
        }
    }
    plan_graph *g = &c->plan->graphs[graph];
    if (ok) g->schedule = plan_intern_str(c->plan, s);
    if (g->nparams == 0 || !ty_is(c->plan, c->plan->params[g->first_param].type, PT_DATE))
        diag_error(c->d, fl->nspan, "e.g. flow daily(day: date) schedule \"@daily\" {...}",
                   "a scheduled flow needs a first parameter of type date");
}

/* ---- libraries ----------------------------------------------------------------------------- */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* path of `target` relative to directory `base` (both absolute and canonical) */
static char *relative_to(const char *base, const char *target) {
    /* longest common prefix that ends at a component boundary of both */
    size_t common = 0;
    for (size_t i = 0;; i++) {
        bool bend = base[i] == '/' || base[i] == 0, tend = target[i] == '/' || target[i] == 0;
        if (bend && tend) common = i;
        if (!base[i] || !target[i] || base[i] != target[i]) break;
    }
    int ups = 0;
    for (const char *q = base + common; *q; q++)
        if (*q == '/' && q[1] && q[1] != '/') ups++;
    const char *rest = target + common;
    while (*rest == '/') rest++;
    char *out = malloc((size_t)ups * 3 + strlen(rest) + 2);
    if (!out) return NULL;
    out[0] = 0;
    for (int k = 0; k < ups; k++) strcat(out, "../");
    strcat(out, rest[0] ? rest : ".");
    return out;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > CHK_MAX_LIB_BYTES) {
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)st.st_size) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void check_library(chk_ctx *c, chk_decl *dc) {
    const flow_node *lib = dc->ast;
    flow_plan *p = c->plan;
    uint32_t li = PLAN_PUSH(p, libs);
    dc->index = li;
    p->libs[li].name = plan_intern_str(p, lib->name);
    const char *as_written = lib->sval ? lib->sval : "";
    p->libs[li].path = plan_intern_str(p, as_written);
    if (!as_written[0]) {
        diag_error(c->d, lib->span, NULL, "library '%s' has an empty path", lib->name);
        return;
    }
    char *srcdir = dir_of(c->opt->source_path ? c->opt->source_path : "x");
    char *full;
    if (as_written[0] == '/') full = strdup(as_written);
    else {
        full = malloc(strlen(srcdir) + strlen(as_written) + 2);
        sprintf(full, "%s/%s", srcdir, as_written);
    }
    size_t len = 0;
    uint8_t *buf = read_file(full, &len);
    bool via_env = false;
    if (!buf && as_written[0] != '/' && !strchr(as_written, '/')) {
        const char *env = getenv("FLOW_LIBRARY_PATH");
        char try[PATH_MAX];
        for (const char *q = env; q && *q && !buf;) {
            const char *e = strchr(q, ':');
            size_t n = e ? (size_t)(e - q) : strlen(q);
            if (n && (int)n < PATH_MAX - 2 &&
                snprintf(try, sizeof try, "%.*s/%s", (int)n, q, as_written) < (int)sizeof try)
                buf = read_file(try, &len);
            q = e ? e + 1 : q + n;
        }
        via_env = buf != NULL;
    }
    if (!buf) {
        diag_warning(c->d, lib->span, "flowrun looks for it next to the plan, then on "
                                      "FLOW_LIBRARY_PATH; its symbols are checked then",
                     "library file '%s' not found; symbols are not checked", as_written);
        free(srcdir);
        free(full);
        return;
    }
    unsigned int hl = 0;
    EVP_Digest(buf, len, p->libs[li].sha256, &hl, EVP_sha256(), NULL);
    char err[160];
    dc->syms = calloc(1, sizeof *dc->syms);
    if (!dc->syms || elf_dynsyms(buf, len, dc->syms, err, sizeof err)) {
        diag_error(c->d, lib->span, NULL, "cannot read library '%s': %s", as_written, err);
        if (dc->syms) elf_symtab_free(dc->syms);
        free(dc->syms);
        dc->syms = NULL;
        dc->bad = true;
    }
    if (!via_env && as_written[0] != '/') {
        /* store the path relative to the plan file's folder */
        char *plandir = dir_of(c->opt->plan_path ? c->opt->plan_path
                                                 : (c->opt->source_path ? c->opt->source_path : "x"));
        char rfull[PATH_MAX], rbase[PATH_MAX];
        if (realpath(full, rfull) && realpath(plandir, rbase)) {
            char *rel = relative_to(rbase, rfull);
            if (rel) p->libs[li].path = plan_intern_str(p, rel);
            free(rel);
        }
        free(plandir);
    }
    free(buf);
    free(srcdir);
    free(full);
}

/* ---- tasks ---------------------------------------------------------------------------------- */
static const char *decl_what(chk_decl_kind k) {
    static const char *const w[] = {"library", "task", "type", "flow", "group"};
    return w[k];
}

/* parameters and result type of a task, flow or group; PLAN_NONE when the type is bad */
static uint32_t signature(chk_ctx *c, const flow_node *d, const char *what, uint32_t *first,
                          uint32_t *n) {
    chk_params(c, &d->list, first, n);
    uint32_t ret = d->a ? chk_resolve_type(c, d->a) : c->t_void;
    if (ret != PLAN_NONE && ty_is(c->plan, ret, PT_DURATION)) {
        diag_error(c->d, d->a->span, NULL, "a %s cannot return a duration", what);
        ret = PLAN_NONE;
    }
    return ret;
}

static void check_task(chk_ctx *c, chk_decl *dc) {
    const flow_node *tk = dc->ast;
    flow_plan *p = c->plan;
    uint32_t ti = PLAN_PUSH(p, tasks);
    dc->index = ti;
    int before = c->d->errors;
    uint32_t first, n;
    uint32_t ret = signature(c, tk, "task", &first, &n);
    plan_task *t = &p->tasks[ti];
    t->name = plan_intern_str(p, tk->name);
    t->first_param = first;
    t->nparams = n;
    t->ret = ret == PLAN_NONE ? c->t_void : ret;
    t->lib = t->symbol = t->cmd = t->first = t->second = t->stitch = t->first_bind = PLAN_NONE;
    t->cache = 1;
    t->trigger = TRIG_ALL_SUCCESS;
    t->version = t->run_as = t->image = t->label = PLAN_NONE;
    t->loc = chk_loc(c, tk->span);
    const flow_node *b = tk->b;
    char hb[160];
    if (b && b->kind == AST_BIND_SYMBOL) {
        t->kind = TK_C;
        t->symbol = plan_intern_str(p, b->sval);
        chk_decl *ld = chk_find_decl(c, b->name);
        if (!ld || ld->kind != DK_LIB) {
            chk_cand_reset(c);
            for (int i = 0; i < c->ndecls; i++)
                if (c->decls[i].kind == DK_LIB) chk_cand_add(c, c->decls[i].ast->name);
            const char *h = chk_hint_closest(c, b->name, hb, sizeof hb);
            diag_error(c->d, b->nspan, h ? h : "declare it: library NAME = \"libNAME.so\"",
                       "unknown library '%s'", b->name);
        } else {
            t->lib = ld->index;
            if (ld->syms && !elf_has(ld->syms, b->sval)) {
                const char *best = diag_closest(b->sval, ld->syms->names, ld->syms->n);
                if (best) snprintf(hb, sizeof hb, "did you mean '%s'?", best);
                diag_error(c->d, b->span, best ? hb : NULL,
                           "library '%s' (%s) has no symbol '%s'", b->name,
                           ld->ast->sval, b->sval);
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
        }
        c->ex.diag = c->d;
        uint32_t cmd = expr_lower_sh(&c->ex, b->a, names, types, (int)n, has_out);
        p->tasks[ti].cmd = cmd;
    } else {
        diag_error(c->d, tk->span, NULL, "task '%s' has no body (= lib.symbol or = sh \"...\")",
                   tk->name);
    }
    chk_task_options(c, ti, &tk->list2);
    if (c->d->errors != before) dc->bad = true;
}

/* ---- the driver -------------------------------------------------------------------------- */
static void collect(chk_ctx *c, const flow_node *prog) {
    c->decls = calloc((size_t)(prog->list.len ? prog->list.len : 1), sizeof *c->decls);
    if (!c->decls) {
        fputs("flowc: out of memory\n", stderr);
        exit(2);
    }
    for (int i = 0; i < prog->list.len; i++) {
        const flow_node *d = prog->list.items[i];
        chk_decl_kind k;
        switch (d->kind) {
        case AST_LIBRARY: k = DK_LIB; break;
        case AST_TASK: k = DK_TASK; break;
        case AST_TYPEDECL: k = DK_TYPE; break;
        case AST_FLOW: k = DK_FLOW; break;
        case AST_GROUP: k = DK_GROUP; break;
        default: continue;
        }
        chk_decl *prev = chk_find_decl(c, d->name);
        if (prev) {
            diag_error(c->d, d->nspan, "every library, task, type, flow and group needs its own name",
                       "'%s' is already declared (as a %s)", d->name, decl_what(prev->kind));
            diag_note(c->d, prev->ast->nspan, "the first '%s' is here", d->name);
            continue;
        }
        chk_decl *dc = &c->decls[c->ndecls];
        dc->kind = k;
        dc->ast = d;
        dc->index = PLAN_NONE;
        chk_map_put(&c->names, d->name, c->ndecls++);
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

static void declare_graph(chk_ctx *c, chk_decl *dc) {
    const flow_node *g = dc->ast;
    flow_plan *p = c->plan;
    uint32_t gi = PLAN_PUSH(p, graphs);
    dc->index = gi;
    int before = c->d->errors;
    uint32_t first, n;
    uint32_t ret = signature(c, g, decl_what(dc->kind), &first, &n);
    plan_graph *pg = &p->graphs[gi];
    pg->name = plan_intern_str(p, g->name);
    pg->kind = dc->kind == DK_FLOW ? PG_FLOW : PG_GROUP;
    pg->first_param = first;
    pg->nparams = n;
    pg->ret = ret == PLAN_NONE ? c->t_void : ret;
    pg->ret_node = PLAN_NONE;
    pg->schedule = PLAN_NONE;
    pg->first_node = p->n_nodes;
    pg->loc = chk_loc(c, g->span);
    if (dc->kind == DK_FLOW && g->b) check_schedule(c, g, gi);
    for (uint32_t i = 0; dc->kind == DK_FLOW && i < n; i++) {
        const flow_node *pa = g->list.items[i];
        if (has_bytes(c, p->params[first + i].type))
            diag_error(c->d, pa->a->span, "bytes pass between tasks (see combine); a flow's "
                                          "parameters come from --param or YAML",
                       "flow parameter '%s' cannot hold bytes", pa->name);
    }
    if (c->d->errors != before || ret == PLAN_NONE) dc->bad = true;
}

flow_plan *flowc_compile(const flow_node *prog, flow_diag *diag, const flowc_options *opt) {
    chk_ctx c;
    memset(&c, 0, sizeof c);
    c.plan = plan_new();
    c.diag = diag;
    c.d = diag;
    c.opt = opt;
    c.ar = ast_arena_new();
    FILE *devnull = fopen("/dev/null", "w");
    diag_init(&c.mute, diag->file, diag->src, diag->len, devnull ? devnull : stderr);
    c.ex.plan = c.plan;
    uint64_t limit = CHK_BASE_NODES + (uint64_t)CHK_NODES_PER_BYTE * opt->len;
    c.node_limit = limit > CHK_MAX_NODES ? CHK_MAX_NODES : (uint32_t)limit;
    c.ex.diag = diag;
    flow_plan *p = c.plan;
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
    unsigned int hl = 0;
    EVP_Digest(opt->src ? opt->src : "", opt->src ? opt->len : 0, p->source_sha256, &hl,
               EVP_sha256(), NULL);

    collect(&c, prog);
    /* declarations: libraries, types, then signatures of tasks, flows and groups */
    for (int i = 0; i < c.ndecls; i++)
        if (c.decls[i].kind == DK_LIB) check_library(&c, &c.decls[i]);
    for (int i = 0; i < c.ndecls; i++)
        if (c.decls[i].kind == DK_TYPE) resolve_decl_type(&c, &c.decls[i], c.decls[i].ast);
    for (int i = 0; i < c.ndecls; i++) {
        if (c.decls[i].kind == DK_TASK) check_task(&c, &c.decls[i]);
        else if (c.decls[i].kind == DK_FLOW || c.decls[i].kind == DK_GROUP)
            declare_graph(&c, &c.decls[i]);
    }
    /* bodies, in source order: each graph's nodes are contiguous */
    for (int i = 0; i < c.ndecls; i++)
        if (c.decls[i].kind == DK_FLOW || c.decls[i].kind == DK_GROUP) chk_body(&c, &c.decls[i]);

    /* a safety net: nothing may fail quietly without an error shown */
    for (int i = 0; i < c.ndecls && !diag->errors; i++)
        if (c.decls[i].bad)
            diag_error(diag, c.decls[i].ast->nspan, NULL, "%s '%s' has errors",
                       decl_what(c.decls[i].kind), c.decls[i].ast->name);
    bool any_flow = false;
    for (int i = 0; i < c.ndecls; i++) any_flow |= c.decls[i].kind == DK_FLOW;
    if (!any_flow && !diag->errors)
        diag_warning(diag, prog->span, "flowrun runs a flow: declare one with flow NAME() {...}",
                     "this program declares no flow");

    for (int i = 0; i < c.ndecls; i++)
        if (c.decls[i].syms) {
            elf_symtab_free(c.decls[i].syms);
            free(c.decls[i].syms);
        }
    free(c.decls);
    free(c.cand);
    chk_map_free(&c.names);
    chk_map_free(&c.combines);
    ast_arena_free(c.ar);
    if (devnull) fclose(devnull);
    if (diag->errors) {
        plan_free(p);
        return NULL;
    }
    return p;
}
