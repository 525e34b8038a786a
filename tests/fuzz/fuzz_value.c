/*
 * fuzz_value.c — libFuzzer target for the value decoder and the text parser
 * (runtime/core/value.c).
 *
 * The first input byte picks one of a fixed set of types (lists, records,
 * nested ones); the rest is, in turn, an encoding to decode and a text to
 * parse. Properties checked:
 *   - decoding never crashes; an accepted value encodes to bytes that decode
 *     to an equal value and encode to the same bytes again (determinism);
 *   - parsing never crashes; an error is one line; an accepted value printed
 *     as JSON parses back to an equal value (JSON output is valid input),
 *     unless it holds a NaN or infinity (printed as null).
 *
 * Built and run by tests/fuzz/run.sh (make fuzz).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTYPES 8

typedef struct fuzz_types {
    fl_plan *p;       /* holds the types */
    uint32_t t[NTYPES]; /* the types inputs choose from */
} fuzz_types;

static fuzz_types *types(void) {
    static fuzz_types ft; /* built once; read-only afterwards */
    if (ft.p) return &ft;
    fl_plan *p = ft.p = plan_new(fl_ctx_default());
    uint32_t ti = plan_type_basic(p, PT_INT), tf = plan_type_basic(p, PT_FLOAT);
    uint32_t tb = plan_type_basic(p, PT_BOOL), ts = plan_type_basic(p, PT_STR);
    uint32_t tp = plan_type_basic(p, PT_PATH), td = plan_type_basic(p, PT_DATE);
    uint32_t ty = plan_type_basic(p, PT_BYTES), tu = plan_type_basic(p, PT_DURATION);
    uint32_t tt = plan_type_basic(p, PT_TIME);
    plan_field hf[] = {{plan_intern_str(p, "file"), tp}, {plan_intern_str(p, "n"), ti}};
    uint32_t hit = plan_type_record(p, plan_intern_str(p, "Hit"), hf, 2);
    uint32_t lhit = plan_type_list(p, hit);
    plan_field mf[] = {{plan_intern_str(p, "b"), tb},      {plan_intern_str(p, "w"), tf},
                       {plan_intern_str(p, "d"), td},      {plan_intern_str(p, "raw"), ty},
                       {plan_intern_str(p, "hits"), lhit}, {plan_intern_str(p, "t"), tu},
                       {plan_intern_str(p, "at"), tt}};
    uint32_t mixed = plan_type_record(p, PLAN_NONE, mf, 7);
    ft.t[0] = plan_type_list(p, ti);
    ft.t[1] = plan_type_list(p, tf);
    ft.t[2] = plan_type_list(p, ts);
    ft.t[3] = plan_type_list(p, plan_type_list(p, ti));
    ft.t[4] = lhit;
    ft.t[5] = mixed;
    ft.t[6] = plan_type_list(p, mixed);
    ft.t[7] = plan_type_list(p, ty);
    return &ft;
}

/* Does v hold a float that JSON cannot carry? */
static int has_nonfinite(const fl_plan *p, uint32_t type, fl_val v) {
    const plan_type *t = &p->types[type];
    if (t->kind == PT_FLOAT) return !isfinite(v.f);
    if (t->kind == PT_LIST) {
        for (int64_t i = 0; i < fv_as_list(v)->len; i++)
            if (has_nonfinite(p, t->elem, fv_as_list(v)->items[i])) return 1;
    } else if (t->kind == PT_RECORD) {
        for (uint32_t i = 0; i < t->n; i++)
            if (has_nonfinite(p, p->fields[t->first + i].type, fv_as_rec(v)->fields[i])) return 1;
    }
    return 0;
}

static void check_decode(const fl_plan *p, uint32_t type, const uint8_t *d, size_t n) {
    fl_val v;
    size_t used;
    if (fv_decode(p, type, d, n, &used, &v) != 0) return;
    if (used > n) abort();
    fv_buf a = {0}, b = {0};
    fv_encode(p, type, v, &a);
    fl_val w;
    if (fv_decode(p, type, a.data, a.len, &used, &w) != 0 || used != a.len) abort();
    if (!fv_equal(p, type, v, w) || fv_hash(p, type, v) != fv_hash(p, type, w)) abort();
    fv_encode(p, type, w, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    fv_decref(p, type, v);
    fv_decref(p, type, w);
    free(a.data);
    free(b.data);
}

static void check_parse(const fl_plan *p, uint32_t type, const uint8_t *d, size_t n) {
    char *text = malloc(n + 1);
    if (!text) return;
    for (size_t i = 0; i < n; i++)
        text[i] = d[i] ? (char)d[i] : ' ';
    text[n] = 0;
    fl_val v;
    char err[200] = "";
    if (fv_parse(p, type, text, &v, err, sizeof err) != 0) {
        if (!err[0] || strchr(err, '\n')) abort(); /* one line, always */
        free(text);
        return;
    }
    free(text);
    if (has_nonfinite(p, type, v)) {
        fv_decref(p, type, v);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    if (!f) abort();
    fv_print_json(p, type, v, f);
    fclose(f);
    fl_val w;
    if (fv_parse(p, type, json, &w, err, sizeof err) != 0) abort(); /* output is valid input */
    if (!fv_equal(p, type, v, w)) abort();
    fv_decref(p, type, v);
    fv_decref(p, type, w);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fuzz_types *ft = types();
    uint32_t type = ft->t[data[0] % NTYPES];
    check_decode(ft->p, type, data + 1, size - 1);
    check_parse(ft->p, type, data + 1, size - 1);
    return 0;
}
