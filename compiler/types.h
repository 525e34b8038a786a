/*
 * types.h — type relations for the checker and the expression module
 * (check_expr.c). Types are plan type indexes (plan_type_* interns them). Records
 * are structural for checking: names are ignored, field names and types compared.
 */
#ifndef FLOW_TYPES_H
#define FLOW_TYPES_H

#include <stdbool.h>

#include "plan.h"

bool ty_same(const fl_plan *p, uint32_t a, uint32_t b);
bool ty_is(const fl_plan *p, uint32_t t, plan_type_kind k);
/* str-like: str, path, dir, date (all const char * in C) */
bool ty_is_strlike(const fl_plan *p, uint32_t t);
#endif
