/* value_json.h — for unit tests: a run-time value as its JSON text (malloc'ed). */
#ifndef FLOW_TEST_VALUE_JSON_H
#define FLOW_TEST_VALUE_JSON_H

#include <stdio.h>

#include "value.h"

static inline char *json(const fl_plan *p, uint32_t type, fl_val v) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    fv_print_json(p, type, v, f);
    fclose(f);
    return buf;
}

#endif
