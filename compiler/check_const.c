/*
 * check_const.c — constants: parameter defaults, task options, the literals a
 * flow passes to a call, evaluated at compile time into plan values.
 *
 * chk_is_const says whether an expression is a constant at all (literals, lists
 * and records of literals, a negated number); chk_const_value checks it against
 * the type wanted and appends it to plan->values (lists and records append their
 * elements first, then point at them through plan->items). The conversions a
 * literal allows are the ones a user expects from the text: a string to path, dir
 * or a calendar date, an int to float. With report false nothing is printed (used
 * to find out what a literal is before saying why it does not fit).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "types.h"
#include "value.h"

bool chk_is_const(const fl_node *e) {
    switch (e->kind) {
    case AST_INT: case AST_FLOAT: case AST_BOOL: case AST_DATE: case AST_TIME:
    case AST_DURATION:
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

/* a new plan value of this type (its payload is the caller's to set) */
static uint32_t add_value(chk_ctx *c, uint32_t type) {
    uint32_t v = PLAN_PUSH(c->plan, values);
    c->plan->values[v].type = type;
    return v;
}

/* the text of a STR without interpolation (NUL bytes are refused) */
const char *chk_str_text(chk_ctx *c, const fl_node *e, bool report) {
    size_t n = 0;
    for (int i = 0; i < e->list.len; i++) n += (size_t)e->list.items[i]->ival;
    char *s = ast_alloc(c->ar, n + 1), *p = s;
    if (!s) return NULL; /* out of memory */
    for (int i = 0; i < e->list.len; i++) {
        const fl_node *part = e->list.items[i];
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

/* "YYYY-MM-DD" naming a real calendar day (leap years included) */
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

/* what a literal is, for "found a string" in a mismatch message */
static const char *literal_what(const fl_node *e) {
    static const char *const found[] = {[AST_INT] = "an int",      [AST_FLOAT] = "a float",
                                        [AST_BOOL] = "a bool",     [AST_STR] = "a string",
                                        [AST_DURATION] = "a duration", [AST_DATE] = "a date", [AST_TIME] = "a time",
                                        [AST_LIST] = "a list",     [AST_RECORD] = "a record",
                                        [AST_UNARY] = "a number"};
    return (size_t)e->kind < sizeof found / sizeof *found && found[e->kind] ? found[e->kind]
                                                                           : "another value";
}

/* c->const_what names what the constant is for ("the default of 'x'"), when known;
 * a duration given as a string or a bare number gets a hint with the unit */
static void const_mismatch(chk_ctx *c, const fl_node *e, uint32_t want) {
    char tb[128], hb[160];
    const char *hint = NULL;
    if (e->kind == AST_STR && ty_is(c->plan, want, PT_DURATION)) {
        hint = "a duration is written without quotes: 500ms 30s 5m 2h 1d";
    } else if (e->kind == AST_INT && ty_is(c->plan, want, PT_DURATION)) {
        snprintf(hb, sizeof hb, "a duration has a unit: %llds for seconds (or ms, m, h, d)",
                 (long long)e->ival);
        hint = hb;
    }
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
uint32_t chk_const_value(chk_ctx *c, const fl_node *e, uint32_t want, bool report) {
    fl_plan *p = c->plan;
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
    case AST_TIME:
        if (wk != PT__COUNT && wk != PT_TIME) break;
        v = add_value(c, plan_type_basic(p, PT_TIME)); /* added on first use */
        p->values[v].u.s = plan_intern_str(p, e->sval);
        return v;
    case AST_STR: {
        if (wk != PT__COUNT && wk != PT_STR && wk != PT_PATH && wk != PT_DIR && wk != PT_DATE &&
            wk != PT_TIME)
            break;
        for (int i = 0; i < e->list.len; i++)
            if (e->list.items[i]->kind != AST_STRPART) {
                if (report)
                    diag_error(c->d, e->list.items[i]->span,
                               "interpolation is allowed inside lambdas and sh commands",
                               "a constant string cannot interpolate a value");
                return PLAN_NONE;
            }
        const char *s = chk_str_text(c, e, report);
        if (!s) return PLAN_NONE;
        if (wk == PT_DATE && !valid_date(s)) {
            if (report)
                diag_error(c->d, e->span, "write a calendar day as YYYY-MM-DD, e.g. 2026-01-31",
                           "\"%s\" is not a valid date", s);
            return PLAN_NONE;
        }
        const char *why = wk == PT_TIME ? fv_time_problem(s, strlen(s)) : NULL;
        if (why) {
            if (report) diag_error(c->d, e->span, why, "\"%s\" is not a valid time", s);
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
        if (!vs) return PLAN_NONE; /* out of memory */
        bool inferred = et == PLAN_NONE; /* the first element gives the type */
        for (int i = 0; i < n; i++) {
            const fl_node *x = e->list.items[i];
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
