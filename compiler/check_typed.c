/*
 * check_typed.c — the standard library's typed table tasks: std.read_csv,
 * std.read_json, std.write_csv and std.write_json.
 *
 * flow has no general generics (issue 18's decision). A typed reader takes its
 * result type from a typed binding, `let rows: [Hit] = std.read_csv(f)`; a typed
 * writer takes its argument's type from the argument. The checker specialises
 * each such call: it adds to the plan a copy of the std task whose signature has
 * the real type (the reader's result, the writer's first parameter) and one more
 * parameter, `type_`, whose default is a compact text of that type — the field
 * names and kinds the C task needs to lay records out (docs/runtime-abi.md,
 * "Record layout") or to read them. So the runtime calls the C task like any
 * other (libffi, the usual conversions of arguments and results) and the cache
 * key holds the type through the hidden argument. One copy per task and type.
 *
 * The type text (decoded by stdlib/std_tables.c):
 *   i int  f float  b bool  s str  p path  d dir  D date  T time  u duration
 *   y bytes  [X] a list of X  {name:X,name:X} a record, fields in order
 *
 * The four tasks are recognised by their C symbol in flow's own library
 * ("flow:libflow-std.so"), so no user task can become one by its name.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"

static const struct {
    const char *symbol;
    chk_typed kind;
} typed_tasks[] = {
    {"std_read_csv", TYPED_READ_CSV},
    {"std_read_json", TYPED_READ_JSON},
    {"std_write_csv", TYPED_WRITE_CSV},
    {"std_write_json", TYPED_WRITE_JSON},
};

chk_typed chk_typed_kind(chk_ctx *c, uint32_t task) {
    const fl_plan *p = c->plan;
    const plan_task *t = &p->tasks[task];
    if (t->kind != TK_C || t->lib == PLAN_NONE) return TYPED_NONE;
    if (strcmp(plan_str(p, p->libs[t->lib].path), "flow:libflow-std.so") != 0) return TYPED_NONE;
    const char *sym = plan_str(p, t->symbol);
    for (size_t i = 0; i < sizeof typed_tasks / sizeof typed_tasks[0]; i++)
        if (!strcmp(sym, typed_tasks[i].symbol)) return typed_tasks[i].kind;
    return TYPED_NONE;
}

bool chk_typed_one(chk_ctx *c, uint32_t task) {
    const fl_plan *p = c->plan;
    const plan_task *t = &p->tasks[task];
    return t->kind == TK_C && t->lib != PLAN_NONE &&
           !strcmp(plan_str(p, p->libs[t->lib].path), "flow:libflow-std.so") &&
           !strcmp(plan_str(p, t->symbol), "std_read_json_one");
}

/* Append the type text of t to buf at *o; false when it does not fit. */
static bool type_code(const fl_plan *p, uint32_t t, char *buf, size_t len, size_t *o) {
    static const char codes[PT__COUNT] = {
        [PT_INT] = 'i', [PT_FLOAT] = 'f', [PT_BOOL] = 'b', [PT_STR] = 's', [PT_PATH] = 'p',
        [PT_DIR] = 'd', [PT_DATE] = 'D', [PT_TIME] = 'T', [PT_DURATION] = 'u', [PT_BYTES] = 'y'};
    const plan_type *ty = &p->types[t];
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (*o + 1 >= len) return false;                                                           \
        buf[(*o)++] = (ch);                                                                        \
    } while (0)
    if (ty->kind == PT_LIST) {
        PUT('[');
        if (!type_code(p, ty->elem, buf, len, o)) return false;
        PUT(']');
    } else if (ty->kind == PT_RECORD) {
        PUT('{');
        for (uint32_t i = 0; i < ty->n; i++) {
            const plan_field *f = &p->fields[ty->first + i];
            if (i) PUT(',');
            for (const char *s = plan_str(p, f->name); *s; s++) PUT(*s);
            PUT(':');
            if (!type_code(p, f->type, buf, len, o)) return false;
        }
        PUT('}');
    } else if (ty->kind < PT__COUNT && codes[ty->kind]) {
        PUT(codes[ty->kind]);
    } else {
        return false;
    }
    buf[*o] = 0;
    return true;
#undef PUT
}

/* Why t cannot be what a task of this kind reads or writes, or NULL when it can.
 * CSV: a list of records whose fields are scalars (the readers: str, int, float,
 * bool; the writer also path, dir, date, time). JSON: any nesting of lists and
 * records over those (the reader leaves out path and dir, whose values name files
 * the run has not made); never bytes or duration. */
static const char *unfit(const fl_plan *p, chk_typed kind, uint32_t t, int depth) {
    const plan_type *ty = &p->types[t];
    bool reader = kind == TYPED_READ_CSV || kind == TYPED_READ_JSON;
    bool csv = kind == TYPED_READ_CSV || kind == TYPED_WRITE_CSV;
    if (csv && depth == 0) {
        if (ty->kind != PT_LIST || p->types[ty->elem].kind != PT_RECORD)
            return "a CSV table is a list of records, [T] with T = {name: type, ...}";
        return unfit(p, kind, ty->elem, 1);
    }
    switch (ty->kind) {
    case PT_INT: case PT_FLOAT: case PT_BOOL: case PT_STR:
        return NULL;
    case PT_DATE: case PT_TIME:
        return csv && reader ? "a CSV column read is str, int, float or bool" : NULL;
    case PT_PATH: case PT_DIR:
        return reader ? (csv ? "a CSV column read is str, int, float or bool"
                             : "a JSON value read is str, int, float, bool, date, time, or a "
                               "list or record of them")
                      : NULL;
    case PT_DURATION:
        return reader ? "a duration is not read from a table; read milliseconds as an int" : NULL;
    case PT_LIST:
        if (csv) return "a CSV column holds one value, not a list";
        return depth > 32 ? "the type is nested too deep" : unfit(p, kind, ty->elem, depth + 1);
    case PT_RECORD:
        if (csv && depth > 1) return "a CSV column holds one value, not a record";
        if (ty->n == 0) return "an empty record {} has no fields to read or write";
        for (uint32_t i = 0; i < ty->n; i++) {
            const char *why = unfit(p, kind, p->fields[ty->first + i].type, depth + 1);
            if (why) return why;
        }
        return NULL;
    default:
        return csv ? "a CSV column is str, int, float, bool, path, dir, date, time or duration"
                   : "JSON holds no bytes";
    }
}

uint32_t chk_typed_task(chk_ctx *c, uint32_t task, chk_typed kind, uint32_t t, fl_span at) {
    fl_plan *p = c->plan;
    char tb[128], code[4096];
    const char *why = unfit(p, kind, t, 0);
    size_t o = 0;
    if (!why && !type_code(p, t, code, sizeof code, &o)) why = "its description is too long";
    if (why) {
        diag_error(c->d, at, why, "%s cannot %s %s", plan_str(p, p->tasks[task].name),
                   kind == TYPED_READ_CSV || kind == TYPED_READ_JSON ? "read" : "write",
                   chk_type_text(c, t, tb, sizeof tb));
        return PLAN_NONE;
    }
    /* read_json returns its value: a C entry point per C type of the result. A record
     * is returned by value in C, at a size no one entry point can have: it comes back in
     * a list of one (std_read_json_one), which the caller's elem node opens */
    uint32_t symbol = p->tasks[task].symbol, ret = t;
    if (kind == TYPED_READ_JSON) {
        static const char *const entry[PT__COUNT] = {
            [PT_LIST] = "std_read_json", [PT_INT] = "std_read_json_int",
            [PT_FLOAT] = "std_read_json_float", [PT_BOOL] = "std_read_json_bool",
            [PT_STR] = "std_read_json_str", [PT_DATE] = "std_read_json_str",
            [PT_TIME] = "std_read_json_str", [PT_RECORD] = "std_read_json_one"};
        uint32_t k = p->types[t].kind;
        if (k >= PT__COUNT || !entry[k]) { /* unfit() refused every other kind */
            diag_error(c->d, at, NULL, "std.read_json cannot read %s",
                       chk_type_text(c, t, tb, sizeof tb));
            return PLAN_NONE;
        }
        symbol = plan_intern_str(p, entry[k]);
        if (k == PT_RECORD) ret = plan_type_list(p, t);
    }
    /* write_json takes its value as a list of one (check_body.c wraps it) */
    uint32_t pt = kind == TYPED_WRITE_JSON ? plan_type_list(p, t) : t;
    o = 0;
    if (kind == TYPED_WRITE_JSON && !type_code(p, pt, code, sizeof code, &o)) {
        diag_error(c->d, at, NULL, "the type %s is too long to describe",
                   chk_type_text(c, t, tb, sizeof tb));
        return PLAN_NONE;
    }
    /* one copy per task and type: the same task and type text is the same copy */
    uint32_t cs = plan_intern_str(p, code);
    const plan_task *orig = &p->tasks[task];
    for (uint32_t i = 0; i < p->n_tasks; i++) {
        const plan_task *k = &p->tasks[i];
        if (i == task || k->kind != TK_C || k->lib != orig->lib || k->symbol != symbol ||
            k->nparams != orig->nparams + 1)
            continue;
        uint32_t d = p->params[k->first_param + k->nparams - 1].def;
        if (d != PLAN_NONE && p->values[d].u.s == cs) return i;
    }
    /* its name: std.read_csv<[Hit]>, unique in the plan */
    char name[400];
    snprintf(name, sizeof name, "%s<%s>", plan_str(p, orig->name), chk_type_text(c, t, tb, sizeof tb));
    for (int n = 2;; n++) {
        bool taken = false;
        for (uint32_t i = 0; i < p->n_tasks && !taken; i++)
            taken = !strcmp(plan_str(p, p->tasks[i].name), name);
        if (!taken) break;
        char *h = strrchr(name, '#');
        size_t cut = h && n > 2 ? (size_t)(h - name) : strlen(name);
        snprintf(name + cut, sizeof name - cut, "#%d", n);
    }
    uint32_t tname = plan_intern_str(p, name);
    uint32_t def = PLAN_PUSH(p, values);
    p->values[def].type = c->t_str;
    p->values[def].u.s = cs;
    uint32_t first = p->n_params, n = p->tasks[task].nparams;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        p->params[k] = p->params[p->tasks[task].first_param + i];
    }
    bool reader = kind == TYPED_READ_CSV || kind == TYPED_READ_JSON;
    if (!reader && n > 0) p->params[first].type = pt;
    uint32_t k = PLAN_PUSH(p, params);
    p->params[k] = (plan_param){plan_intern_str(p, "type_"), c->t_str, def, p->tasks[task].loc};
    uint32_t ti = PLAN_PUSH(p, tasks);
    p->tasks[ti] = p->tasks[task];
    p->tasks[ti].name = tname;
    p->tasks[ti].first_param = first;
    p->tasks[ti].nparams = n + 1;
    p->tasks[ti].symbol = symbol;
    if (reader) p->tasks[ti].ret = ret;
    return ti;
}
