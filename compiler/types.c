/*
 * types.c — type relations for the checker and check_expr.c (see types.h).
 *
 * Plan types are interned, so most questions are an index comparison; ty_same
 * also accepts two record types with the same fields in the same order under
 * different names (records are structural when checking: a declared `type Job`
 * and a record literal of the same shape are one type). An index out of range is
 * never the same as anything, so an error type cannot pass a check by accident.
 */
#include "types.h"

bool ty_is(const fl_plan *p, uint32_t t, plan_type_kind k) {
    return t < p->n_types && p->types[t].kind == (uint32_t)k;
}

bool ty_is_strlike(const fl_plan *p, uint32_t t) {
    return ty_is(p, t, PT_STR) || ty_is(p, t, PT_PATH) || ty_is(p, t, PT_DIR) ||
           ty_is(p, t, PT_DATE) || ty_is(p, t, PT_TIME);
}

bool ty_same(const fl_plan *p, uint32_t a, uint32_t b) {
    if (a == b) return true;
    if (a >= p->n_types || b >= p->n_types) return false;
    const plan_type *x = &p->types[a], *y = &p->types[b];
    if (x->kind != y->kind) return false;
    switch (x->kind) {
    case PT_LIST:
        return ty_same(p, x->elem, y->elem);
    case PT_RECORD:
        if (x->n != y->n) return false;
        for (uint32_t i = 0; i < x->n; i++) {
            const plan_field *f = &p->fields[x->first + i], *g = &p->fields[y->first + i];
            if (f->name != g->name || !ty_same(p, f->type, g->type)) return false;
        }
        return true;
    default:
        return true;
    }
}
