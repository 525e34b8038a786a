/*
 * plan.c — building a plan in memory (flowc) and the plan's bytes.
 * Owned by the plan module. The byte format: docs/plan-format.md.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    return q;
}

uint32_t plan_grow_(void **arr, uint32_t *n, uint32_t *cap, size_t size) {
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 16;
        *arr = xrealloc(*arr, (size_t)c * size);
        *cap = c;
    }
    memset((char *)*arr + (size_t)*n * size, 0, size);
    return (*n)++;
}

/* Builder-only interning: a simple open-addressing table of string ids and a
 * linear scan for types (plans hold few types). */
typedef struct plan_intern {
    uint32_t *slots; /* string id + 1, 0 = empty */
    uint32_t cap;
} plan_intern;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint32_t add_str(flow_plan *p, const char *s) {
    size_t n = strlen(s) + 1;
    while (p->n_strtext + n > p->cap_strtext) {
        p->cap_strtext = p->cap_strtext ? p->cap_strtext * 2 : 1024;
        p->strtext = xrealloc(p->strtext, p->cap_strtext);
    }
    uint32_t id = PLAN_PUSH(p, stroff);
    p->stroff[id] = p->n_strtext;
    memcpy(p->strtext + p->n_strtext, s, n);
    p->n_strtext += (uint32_t)n;
    return id;
}

flow_plan *plan_new(void) {
    flow_plan *p = calloc(1, sizeof *p);
    if (!p) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    p->intern = calloc(1, sizeof(plan_intern));
    add_str(p, "");
    p->source = 0;
    return p;
}

void plan_free(flow_plan *p) {
    if (!p) return;
    if (p->intern) free(((plan_intern *)p->intern)->slots);
    free(p->intern);
    free(p->strtext);
    free(p->stroff);
    free(p->types);
    free(p->fields);
    free(p->values);
    free(p->items);
    free(p->libs);
    free(p->params);
    free(p->binds);
    free(p->tasks);
    free(p->graphs);
    free(p->nodes);
    free(p->args);
    free(p->afters);
    free(p->typelist);
    free(p->lambdas);
    free(p->code);
    free(p->locs);
    free(p);
}

const char *plan_str(const flow_plan *p, uint32_t s) {
    if (s == PLAN_NONE || s >= p->n_stroff) return "";
    return p->strtext + p->stroff[s];
}

uint32_t plan_intern_str(flow_plan *p, const char *s) {
    plan_intern *in = p->intern;
    if (!in) return add_str(p, s); /* a read plan: no table, just append */
    if (p->n_stroff * 2 >= in->cap) {
        uint32_t cap = in->cap ? in->cap * 2 : 256;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) {
            fputs("flow: out of memory\n", stderr);
            exit(2);
        }
        for (uint32_t i = 0; i < in->cap; i++)
            if (in->slots[i]) {
                uint32_t j = (uint32_t)hash_str(plan_str(p, in->slots[i] - 1)) & (cap - 1);
                while (slots[j]) j = (j + 1) & (cap - 1);
                slots[j] = in->slots[i];
            }
        free(in->slots);
        in->slots = slots;
        in->cap = cap;
    }
    uint32_t j = (uint32_t)hash_str(s) & (in->cap - 1);
    while (in->slots[j]) {
        if (!strcmp(plan_str(p, in->slots[j] - 1), s)) return in->slots[j] - 1;
        j = (j + 1) & (in->cap - 1);
    }
    uint32_t id = s[0] ? add_str(p, s) : 0;
    in->slots[j] = id + 1;
    return id;
}

static uint32_t find_type(flow_plan *p, const plan_type *t, const plan_field *f) {
    for (uint32_t i = 0; i < p->n_types; i++) {
        const plan_type *u = &p->types[i];
        if (u->kind != t->kind || u->elem != t->elem || u->n != t->n || u->name != t->name)
            continue;
        if (t->kind == PT_RECORD &&
            memcmp(&p->fields[u->first], f, (size_t)t->n * sizeof *f) != 0)
            continue;
        return i;
    }
    return PLAN_NONE;
}

uint32_t plan_type_basic(flow_plan *p, plan_type_kind k) {
    plan_type t = {(uint32_t)k, PLAN_NONE, 0, 0, PLAN_NONE};
    uint32_t i = find_type(p, &t, NULL);
    if (i != PLAN_NONE) return i;
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_type_list(flow_plan *p, uint32_t elem) {
    plan_type t = {PT_LIST, elem, 0, 0, PLAN_NONE};
    uint32_t i = find_type(p, &t, NULL);
    if (i != PLAN_NONE) return i;
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_type_record(flow_plan *p, uint32_t name, const plan_field *fields, uint32_t n) {
    plan_type t = {PT_RECORD, PLAN_NONE, 0, n, name};
    uint32_t i = find_type(p, &t, fields);
    if (i != PLAN_NONE) return i;
    t.first = p->n_fields;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t f = PLAN_PUSH(p, fields);
        p->fields[f] = fields[k];
    }
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_add_loc(flow_plan *p, uint32_t line, uint32_t col, uint32_t end_line,
                      uint32_t end_col) {
    uint32_t i = PLAN_PUSH(p, locs);
    p->locs[i] = (plan_loc){line, col, end_line, end_col};
    return i;
}

/* ---- PLACEHOLDERS until the plan module's writer and reader land ---- */
int plan_write(const flow_plan *p, uint8_t **out, size_t *len) {
    (void)p; *out = NULL; *len = 0;
    return -1;
}
flow_plan *plan_read(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    (void)buf; (void)len;
    snprintf(err, errlen, "plan reader not built yet");
    return NULL;
}
flow_plan *plan_read_file(const char *path, char *err, size_t errlen) {
    (void)path;
    snprintf(err, errlen, "plan reader not built yet");
    return NULL;
}
int plan_write_file(const flow_plan *p, const char *path, char *err, size_t errlen) {
    (void)p; (void)path;
    snprintf(err, errlen, "plan writer not built yet");
    return -1;
}
int plan_emit(const flow_plan *p, plan_emit_format fmt, void *file) {
    (void)p; (void)fmt; (void)file;
    return -1;
}
void plan_type_text(const flow_plan *p, uint32_t type, char *buf, size_t len) {
    (void)p; (void)type;
    snprintf(buf, len, "?");
}
