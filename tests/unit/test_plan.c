/*
 * test_plan.c — the plan's bytes and views: a hand-built plan covering every table and
 * kind goes through write -> read -> write (identical bytes, equal tables) and every
 * emitter; then damaged inputs of every kind must be refused with one line (or, when a
 * re-sealed flip still makes a valid plan, accepted and usable), never a crash.
 *
 * Also a small tool: `test_plan --write-seeds DIR` writes valid plans (fuzzer seeds),
 * `test_plan --write-plan FILE` writes the rich plan (tests/suites/30-plan.sh uses it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <yaml.h>

#include "expr_ops.h"
#include "plan.h"

/* ---- building the rich plan ---- */
typedef struct rich_ids {
    uint32_t t_int, t_float, t_bool, t_str, t_path, t_dir, t_date, t_dur, t_void;   /* types */
    uint32_t t_lstr, t_lpath, t_lint, t_llint, t_row, t_lrow, t_dst, t_zip, t_anon; /* more */
    uint32_t v_int, v_float, v_true, v_str, v_path, v_dir, v_glob, v_date, v_dur, v_list, v_row,
        v_rows, v_zero; /* constants */
} rich_ids;

static uint32_t loc(fl_plan *p, uint32_t line, uint32_t col) {
    return plan_add_loc(p, line, col, line, col + 5);
}

static uint32_t param(fl_plan *p, const char *name, uint32_t type, uint32_t def) {
    uint32_t i = PLAN_PUSH(p, params);
    p->params[i] = (plan_param){plan_intern_str(p, name), type, def, loc(p, 2, i + 1)};
    return i;
}

static uint32_t value(fl_plan *p, uint32_t type) {
    uint32_t i = PLAN_PUSH(p, values);
    p->values[i].type = type;
    return i;
}

static uint32_t vstr(fl_plan *p, uint32_t type, const char *s) {
    uint32_t v = value(p, type);
    p->values[v].u.s = plan_intern_str(p, s);
    return v;
}

static uint32_t vint(fl_plan *p, uint32_t type, int64_t i) {
    uint32_t v = value(p, type);
    p->values[v].u.i = i;
    return v;
}

/* a container constant over already-built item values */
static uint32_t vagg(fl_plan *p, uint32_t type, const uint32_t *items, uint32_t n) {
    uint32_t first = p->n_items;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t k = PLAN_PUSH(p, items);
        p->items[k] = items[j];
    }
    uint32_t v = value(p, type);
    p->values[v].n = n;
    p->values[v].u.first = first;
    return v;
}

static void op(fl_plan *p, fl_expr_op o, int32_t a, uint16_t b) {
    uint32_t i = PLAN_PUSH(p, code);
    p->code[i] = (plan_instr){(uint16_t)o, b, a, loc(p, 9, i)};
}

static uint32_t lambda(fl_plan *p, const uint32_t *ptypes, uint32_t n, uint32_t ret,
                       uint32_t nlocals, uint32_t first_code) {
    uint32_t first = p->n_typelist;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t k = PLAN_PUSH(p, typelist);
        p->typelist[k] = ptypes[j];
    }
    uint32_t l = PLAN_PUSH(p, lambdas);
    p->lambdas[l] =
        (plan_lambda){first, n, ret, first_code, p->n_code - first_code, nlocals, loc(p, 7, l)};
    return l;
}

static uint32_t task(fl_plan *p, const char *name, plan_task_kind kind, uint32_t first_param,
                     uint32_t nparams, uint32_t ret) {
    uint32_t t = PLAN_PUSH(p, tasks);
    plan_task *k = &p->tasks[t];
    k->name = plan_intern_str(p, name);
    k->kind = kind;
    k->first_param = first_param;
    k->nparams = nparams;
    k->ret = ret;
    k->lib = k->symbol = k->cmd = k->first = k->second = k->stitch = k->first_bind = PLAN_NONE;
    k->cache = 1;
    k->trigger = TRIG_ALL_SUCCESS;
    k->version = k->run_as = k->image = k->label = PLAN_NONE;
    k->loc = loc(p, 3, t);
    return t;
}

static uint32_t node(fl_plan *p, plan_node_kind kind, uint32_t type, uint32_t ref, uint32_t aux,
                     const char *name) {
    uint32_t n = PLAN_PUSH(p, nodes);
    p->nodes[n] = (plan_node){kind,        type,      ref,
                              aux,         p->n_args, 0,
                              p->n_afters, 0,         name ? plan_intern_str(p, name) : PLAN_NONE,
                              loc(p, 5, n)};
    return n;
}

static void arg(fl_plan *p, uint32_t n, uint32_t from, plan_arg_mode mode, uint32_t aux) {
    uint32_t a = PLAN_PUSH(p, args);
    p->args[a] = (plan_arg){from, mode, aux};
    p->nodes[n].nargs++;
}

static void after(fl_plan *p, uint32_t n, uint32_t before) {
    uint32_t a = PLAN_PUSH(p, afters);
    p->afters[a] = before;
    p->nodes[n].nafter++;
}

static uint32_t graph(fl_plan *p, const char *name, plan_graph_kind kind, uint32_t first_param,
                      uint32_t nparams, uint32_t ret) {
    uint32_t g = PLAN_PUSH(p, graphs);
    p->graphs[g] = (plan_graph){plan_intern_str(p, name),
                                kind,
                                first_param,
                                nparams,
                                ret,
                                PLAN_NONE,
                                PLAN_NONE,
                                PLAN_NONE,
                                PLAN_NONE,
                                PLAN_NONE,
                                p->n_nodes,
                                0,
                                loc(p, 4, g)};
    return g;
}
static void graph_end(fl_plan *p, uint32_t g, uint32_t ret_node) {
    p->graphs[g].nnodes = p->n_nodes - p->graphs[g].first_node;
    p->graphs[g].ret_node = ret_node;
}

static fl_plan *rich_plan(rich_ids *id) {
    fl_plan *p = plan_new(fl_ctx_default());
    rich_ids x;
    p->source = plan_intern_str(p, "tests/rich.flow");
    for (int i = 0; i < 32; i++)
        p->source_sha256[i] = (uint8_t)(i * 7 + 1);
    x.t_void = plan_type_basic(p, PT_VOID);
    x.t_int = plan_type_basic(p, PT_INT);
    x.t_float = plan_type_basic(p, PT_FLOAT);
    x.t_bool = plan_type_basic(p, PT_BOOL);
    x.t_str = plan_type_basic(p, PT_STR);
    x.t_path = plan_type_basic(p, PT_PATH);
    x.t_dir = plan_type_basic(p, PT_DIR);
    x.t_date = plan_type_basic(p, PT_DATE);
    x.t_dur = plan_type_basic(p, PT_DURATION);
    plan_type_basic(p, PT_BYTES);
    x.t_lstr = plan_type_list(p, x.t_str);
    x.t_lpath = plan_type_list(p, x.t_path);
    x.t_lint = plan_type_list(p, x.t_int);
    x.t_llint = plan_type_list(p, x.t_lint);
    plan_field rowf[] = {{plan_intern_str(p, "file"), x.t_path},
                         {plan_intern_str(p, "n"), x.t_int}};
    x.t_row = plan_type_record(p, plan_intern_str(p, "Row"), rowf, 2);
    x.t_lrow = plan_type_list(p, x.t_row);
    plan_field dstf[] = {{plan_intern_str(p, "dst"), x.t_str}};
    x.t_dst = plan_type_record(p, PLAN_NONE, dstf, 1);
    plan_field zipf[] = {{plan_intern_str(p, "file"), x.t_path},
                         {plan_intern_str(p, "count"), x.t_int}};
    x.t_anon = plan_type_record(p, PLAN_NONE, zipf, 2);
    x.t_zip = plan_type_list(p, x.t_anon);

    /* constants of each kind */
    x.v_int = vint(p, x.t_int, 42);
    x.v_zero = vint(p, x.t_int, 0);
    x.v_float = value(p, x.t_float);
    p->values[x.v_float].u.f = 2.5;
    x.v_true = vint(p, x.t_bool, 1);
    x.v_str = vstr(p, x.t_str, "hello \"world\"\n");
    x.v_path = vstr(p, x.t_path, "data/in.txt");
    x.v_dir = vstr(p, x.t_dir, "data");
    x.v_glob = vstr(p, x.t_str, "*.txt");
    x.v_date = vstr(p, x.t_date, "2024-01-31");
    x.v_dur = vint(p, x.t_dur, 1500);
    uint32_t three[] = {x.v_int, x.v_zero, x.v_int};
    x.v_list = vagg(p, x.t_lint, three, 3);
    uint32_t rowv[] = {x.v_path, x.v_int};
    x.v_row = vagg(p, x.t_row, rowv, 2);
    uint32_t rowsv[] = {x.v_row, x.v_row};
    x.v_rows = vagg(p, x.t_lrow, rowsv, 2);
    uint32_t v_curl = vstr(p, x.t_str, "curl -o ");
    uint32_t v_space = vstr(p, x.t_str, " ");
    uint32_t v_bak = vstr(p, x.t_str, ".bak");

    uint32_t lib = PLAN_PUSH(p, libs);
    p->libs[lib].name = plan_intern_str(p, "wc");
    p->libs[lib].path = plan_intern_str(p, "libwc.so");
    memset(p->libs[lib].sha256, 0xab, 32);

    /* lambdas (typed opcodes: runtime/core/expr_ops.h) */
    uint32_t c0 = p->n_code;
    op(p, EOP_CONST_S, (int32_t)v_curl, 0);
    op(p, EOP_PARAM_REF, 1, 0);
    op(p, EOP_SHQUOTE, (int32_t)x.t_str, 0);
    op(p, EOP_CONST_S, (int32_t)v_space, 0);
    op(p, EOP_PARAM_REF, 0, 0);
    op(p, EOP_SHQUOTE, (int32_t)x.t_str, 0);
    op(p, EOP_INTERP, (int32_t)x.t_str, 4);
    op(p, EOP_RET, 0, 0);
    uint32_t sh_params[] = {x.t_str, x.t_str};
    uint32_t l_cmd = lambda(p, sh_params, 2, x.t_str, 0, c0);

    c0 = p->n_code;
    op(p, EOP_PARAM_REF, 0, 0);
    op(p, EOP_BASENAME, (int32_t)x.t_str, 0);
    op(p, EOP_RET, 0, 0);
    uint32_t l_label = lambda(p, &x.t_path, 1, x.t_str, 0, c0);

    c0 = p->n_code;
    op(p, EOP_PARAM_REF, 0, 0);
    op(p, EOP_CONST_S, (int32_t)v_bak, 0);
    op(p, EOP_CONCAT, (int32_t)x.t_str, 0);
    op(p, EOP_MAKE_RECORD, (int32_t)x.t_dst, 0);
    op(p, EOP_RET, 0, 0);
    uint32_t l_stitch = lambda(p, &x.t_path, 1, x.t_dst, 0, c0);

    c0 = p->n_code; /* x -> if x + 0 < 42 then -x else x + 42 */
    op(p, EOP_PARAM, 0, 0);
    op(p, EOP_IMM, 0, 0);
    op(p, EOP_ADD_I, 0, 0);
    op(p, EOP_CONST_I, (int32_t)x.v_int, 0);
    op(p, EOP_LT_I, 0, 0);
    op(p, EOP_JUMP_IF_FALSE, 9, 0);
    op(p, EOP_PARAM, 0, 0);
    op(p, EOP_NEG_I, 0, 0);
    op(p, EOP_RET, 0, 0);
    op(p, EOP_PARAM, 0, 0);
    op(p, EOP_CONST_I, (int32_t)x.v_int, 0);
    op(p, EOP_ADD_I, 0, 0);
    op(p, EOP_RET, 0, 0);
    uint32_t l_map = lambda(p, &x.t_int, 1, x.t_int, 0, c0);

    c0 = p->n_code;
    op(p, EOP_PARAM, 0, 0);
    op(p, EOP_CONST_I, (int32_t)x.v_int, 0);
    op(p, EOP_EQ_I, 0, 0);
    op(p, EOP_NOT, 0, 0);
    op(p, EOP_JUMP, 5, 0);
    op(p, EOP_RET, 0, 0);
    uint32_t l_filter = lambda(p, &x.t_int, 1, x.t_bool, 0, c0);

    c0 = p->n_code; /* a row -> [n, n][0] */
    op(p, EOP_PARAM_REF, 0, 0);
    op(p, EOP_FIELD, (int32_t)x.t_row, 1);
    op(p, EOP_PARAM_REF, 0, 0);
    op(p, EOP_FIELD, (int32_t)x.t_row, 1);
    op(p, EOP_MAKE_LIST, (int32_t)x.t_lint, 2);
    op(p, EOP_CONST_I, (int32_t)x.v_zero, 0);
    op(p, EOP_INDEX, (int32_t)x.t_lint, 0);
    op(p, EOP_RET, 0, 0);
    lambda(p, &x.t_row, 1, x.t_int, 0, c0);

    /* tasks */
    uint32_t p0 = param(p, "file", x.t_path, PLAN_NONE);
    param(p, "n", x.t_int, x.v_int);
    uint32_t t_count = task(p, "count", TK_C, p0, 2, x.t_int);
    plan_task *k = &p->tasks[t_count];
    k->lib = lib;
    k->symbol = plan_intern_str(p, "wc_count");
    k->retries = 2;
    k->retry_delay_ms = 500;
    k->timeout_ms = 10000;
    k->concurrency = 4;
    k->max_map = 1000;
    k->cache = 0;
    k->trigger = TRIG_ALL_DONE;
    k->version = plan_intern_str(p, "v2");
    k->run_as = plan_intern_str(p, "nobody");
    k->image = plan_intern_str(p, "alpine:3");
    k->label = l_label;

    p0 = param(p, "url", x.t_str, PLAN_NONE);
    uint32_t t_fetch = task(p, "fetch", TK_SH, p0, 1, x.t_path);
    p->tasks[t_fetch].cmd = l_cmd;

    p0 = param(p, "src", x.t_path, PLAN_NONE);
    param(p, "dst", x.t_str, PLAN_NONE);
    param(p, "tag", x.t_str, x.v_glob);
    uint32_t t_store = task(p, "store", TK_C, p0, 3, x.t_int);
    p->tasks[t_store].lib = lib;
    p->tasks[t_store].symbol = plan_intern_str(p, "store");

    p0 = param(p, "url", x.t_str, PLAN_NONE);
    param(p, "tag", x.t_str, PLAN_NONE);
    uint32_t t_comb = task(p, "combine(fetch,store)", TK_COMBINE, p0, 2, x.t_int);
    k = &p->tasks[t_comb];
    k->first = t_fetch;
    k->second = t_store;
    k->stitch = l_stitch;
    k->first_bind = p->n_binds;
    k->retries = 1;
    plan_bind binds[] = {{PB_RESULT, 0}, {PB_STITCH, 0}, {PB_PARAM, 1}};
    for (int j = 0; j < 3; j++) {
        uint32_t bi = PLAN_PUSH(p, binds);
        p->binds[bi] = binds[j];
    }

    p0 = param(p, "xs", x.t_lint, PLAN_NONE);
    uint32_t t_sum = task(p, "sum", TK_C, p0, 1, x.t_int);
    p->tasks[t_sum].lib = lib;
    p->tasks[t_sum].symbol = plan_intern_str(p, "sum");

    /* group prep(file: path) -> int */
    p0 = param(p, "file", x.t_path, PLAN_NONE);
    uint32_t g_prep = graph(p, "prep", PG_GROUP, p0, 1, x.t_int);
    uint32_t n_file = node(p, PN_PARAM, x.t_path, PLAN_NONE, 0, NULL);
    uint32_t n_c = node(p, PN_CONST, x.t_int, PLAN_NONE, x.v_int, NULL);
    uint32_t n_call = node(p, PN_CALL, x.t_int, t_count, 0, "c");
    arg(p, n_call, n_file, PA_SCALAR, 0);
    arg(p, n_call, n_c, PA_SCALAR, 0);
    graph_end(p, g_prep, n_call);

    /* flow main(url, files, rows, n = 42, rate = 2.5) -> int @daily */
    p0 = param(p, "url", x.t_str, PLAN_NONE);
    param(p, "files", x.t_lpath, PLAN_NONE);
    param(p, "rows", x.t_lrow, x.v_rows);
    param(p, "n", x.t_int, x.v_int);
    param(p, "rate", x.t_float, x.v_float);
    uint32_t g_main = graph(p, "main", PG_FLOW, p0, 5, x.t_int);
    p->graphs[g_main].schedule = plan_intern_str(p, "@daily");
    uint32_t n_url = node(p, PN_PARAM, x.t_str, PLAN_NONE, 0, "url");
    uint32_t n_files = node(p, PN_PARAM, x.t_lpath, PLAN_NONE, 1, "files");
    uint32_t n_rows = node(p, PN_PARAM, x.t_lrow, PLAN_NONE, 2, "rows");
    uint32_t n_n = node(p, PN_PARAM, x.t_int, PLAN_NONE, 3, "n");
    uint32_t n_hello = node(p, PN_CONST, x.t_str, PLAN_NONE, x.v_str, NULL);
    uint32_t n_stored = node(p, PN_CALL, x.t_int, t_comb, 0, "stored");
    arg(p, n_stored, n_url, PA_SCALAR, 0);
    arg(p, n_stored, n_hello, PA_SCALAR, 0);
    uint32_t n_counts = node(p, PN_EXPAND, x.t_lint, t_count, 1, "counts");
    arg(p, n_counts, n_files, PA_AXIS, 0);
    arg(p, n_counts, n_n, PA_SCALAR, 0);
    after(p, n_counts, n_stored);
    uint32_t n_kw = node(p, PN_EXPAND_KWARGS, x.t_lint, t_count, 0, "by_row");
    arg(p, n_kw, n_rows, PA_FIELD, 0);
    arg(p, n_kw, n_rows, PA_FIELD, 1);
    uint32_t n_path = node(p, PN_CONST, x.t_path, PLAN_NONE, x.v_path, NULL);
    uint32_t n_gc = node(p, PN_GROUP_CALL, x.t_int, g_prep, 0, "one");
    arg(p, n_gc, n_path, PA_SCALAR, 0);
    uint32_t n_ge = node(p, PN_GROUP_EXPAND, x.t_lint, g_prep, 1, "each");
    arg(p, n_ge, n_files, PA_AXIS, 0);
    uint32_t n_map = node(p, PN_MAP, x.t_lint, l_map, 0, "shifted");
    arg(p, n_map, n_counts, PA_SCALAR, 0);
    uint32_t n_filter = node(p, PN_FILTER, x.t_lint, l_filter, 0, "kept");
    arg(p, n_filter, n_map, PA_SCALAR, 0);
    uint32_t n_r1 = node(p, PN_RANGE, x.t_lint, PLAN_NONE, 0, NULL);
    arg(p, n_r1, n_n, PA_SCALAR, 0);
    uint32_t n_r2 = node(p, PN_RANGE, x.t_lint, PLAN_NONE, 0, NULL);
    arg(p, n_r2, n_n, PA_SCALAR, 0);
    arg(p, n_r2, n_n, PA_SCALAR, 0);
    uint32_t n_zip = node(p, PN_ZIP, x.t_zip, PLAN_NONE, 0, "pairs");
    arg(p, n_zip, n_files, PA_SCALAR, 0);
    arg(p, n_zip, n_counts, PA_SCALAR, 0);
    uint32_t n_dir = node(p, PN_CONST, x.t_dir, PLAN_NONE, x.v_dir, NULL);
    uint32_t n_glob = node(p, PN_CONST, x.t_str, PLAN_NONE, x.v_glob, NULL);
    uint32_t n_found = node(p, PN_FILES, x.t_lpath, PLAN_NONE, 0, "found");
    arg(p, n_found, n_dir, PA_SCALAR, 0);
    arg(p, n_found, n_glob, PA_SCALAR, 0);
    uint32_t n_ll = node(p, PN_LIST, x.t_llint, PLAN_NONE, 0, NULL);
    arg(p, n_ll, n_counts, PA_SCALAR, 0);
    arg(p, n_ll, n_kw, PA_SCALAR, 0);
    uint32_t n_flat = node(p, PN_FLATTEN, x.t_lint, PLAN_NONE, 0, "all");
    arg(p, n_flat, n_ll, PA_SCALAR, 0);
    uint32_t n_len = node(p, PN_LEN, x.t_int, PLAN_NONE, 0, "total");
    arg(p, n_len, n_flat, PA_SCALAR, 0);
    uint32_t n_first = node(p, PN_ELEM, x.t_int, PLAN_NONE, 0, "first");
    arg(p, n_first, n_flat, PA_SCALAR, 0);
    uint32_t n_rec = node(p, PN_RECORD, x.t_row, PLAN_NONE, 0, "row");
    arg(p, n_rec, n_path, PA_SCALAR, 0);
    arg(p, n_rec, n_len, PA_SCALAR, 0);
    node(p, PN_CONST, x.t_lint, PLAN_NONE, x.v_list, NULL);
    node(p, PN_CONST, x.t_row, PLAN_NONE, x.v_row, NULL);
    uint32_t n_sum = node(p, PN_CALL, x.t_int, t_sum, 0, "result");
    arg(p, n_sum, n_flat, PA_SCALAR, 0);
    after(p, n_sum, n_gc);
    after(p, n_sum, n_found);
    after(p, n_sum, n_filter);
    (void)n_ge, (void)n_r1, (void)n_r2, (void)n_zip, (void)n_rec, (void)n_first;
    graph_end(p, g_main, n_sum);

    /* a second flow with no parameters and no result */
    uint32_t g_empty = graph(p, "noop", PG_FLOW, 0, 0, x.t_void);
    graph_end(p, g_empty, PLAN_NONE);
    if (id) *id = x;
    return p;
}

/* ---- helpers ---- */
static uint8_t *bytes_of(const fl_plan *p, size_t *len) {
    uint8_t *b;
    assert_int_equal(plan_write(p, &b, len), 0);
    return b;
}

static char err[512];

static fl_plan *read_bytes(const uint8_t *b, size_t len) {
    err[0] = '\0';
    fl_plan *p = plan_read(fl_ctx_default(), b, len, err, sizeof err);
    if (!p) {
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
    return p;
}

static void use_plan(const fl_plan *p) {
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(plan_emit(p, PLAN_EMIT_JSON, f), 0);
    assert_int_equal(plan_emit(p, PLAN_EMIT_DOT, f), 0);
    fclose(f);
    uint8_t *b;
    size_t n;
    assert_int_equal(plan_write(p, &b, &n), 0);
    free(b);
}

#define TABLE_EQ(a, b, arr)                                                                        \
    do {                                                                                           \
        assert_int_equal((a)->n_##arr, (b)->n_##arr);                                              \
        if ((a)->n_##arr)                                                                          \
            assert_memory_equal((a)->arr, (b)->arr, (size_t)(a)->n_##arr * sizeof *(a)->arr);      \
    } while (0)

/* ---- tests ---- */
static void test_roundtrip(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n1, n2;
    uint8_t *b1 = bytes_of(p, &n1);
    fl_plan *q = read_bytes(b1, n1);
    if (!q) fail_msg("rich plan refused: %s", err);
    assert_null(q->intern);
    uint8_t *b2 = bytes_of(q, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_int_equal(p->source, q->source);
    assert_memory_equal(p->source_sha256, q->source_sha256, 32);
    TABLE_EQ(p, q, strtext);
    TABLE_EQ(p, q, stroff);
    TABLE_EQ(p, q, types);
    TABLE_EQ(p, q, fields);
    TABLE_EQ(p, q, values);
    TABLE_EQ(p, q, items);
    TABLE_EQ(p, q, libs);
    TABLE_EQ(p, q, params);
    TABLE_EQ(p, q, binds);
    TABLE_EQ(p, q, tasks);
    TABLE_EQ(p, q, graphs);
    TABLE_EQ(p, q, nodes);
    TABLE_EQ(p, q, args);
    TABLE_EQ(p, q, afters);
    TABLE_EQ(p, q, typelist);
    TABLE_EQ(p, q, lambdas);
    TABLE_EQ(p, q, code);
    TABLE_EQ(p, q, locs);
    /* a second write of the builder plan is the same bytes too (deterministic) */
    size_t n3;
    uint8_t *b3 = bytes_of(p, &n3);
    assert_int_equal(n1, n3);
    assert_memory_equal(b1, b3, n1);
    free(b1), free(b2), free(b3);
    plan_free(p), plan_free(q);
}

static void test_type_text(void **state) {
    (void)state;
    rich_ids x;
    fl_plan *p = rich_plan(&x);
    char b[128];
    plan_type_text(p, x.t_zip, b, sizeof b);
    assert_string_equal(b, "[{file: path, count: int}]");
    plan_type_text(p, x.t_lrow, b, sizeof b);
    assert_string_equal(b, "[Row]");
    plan_type_text_full(p, x.t_row, b, sizeof b);
    assert_string_equal(b, "{file: path, n: int}");
    plan_type_text(p, x.t_llint, b, sizeof b);
    assert_string_equal(b, "[[int]]");
    plan_type_text(p, PLAN_NONE, b, sizeof b);
    assert_string_equal(b, "?");
    char tiny[6];
    plan_type_text(p, x.t_zip, tiny, sizeof tiny);
    assert_string_equal(tiny, "[{fil");
    plan_free(p);
}

static char *emit_to_string(const fl_plan *p, plan_emit_format fmt, size_t *len) {
    char *s = NULL;
    FILE *f = open_memstream(&s, len);
    assert_non_null(f);
    assert_int_equal(plan_emit(p, fmt, f), 0);
    fclose(f);
    return s;
}

static void test_emit(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    fl_plan *q = read_bytes(b, n);
    assert_non_null(q);
    size_t l1, l2;
    char *j1 = emit_to_string(p, PLAN_EMIT_JSON, &l1);
    char *j2 = emit_to_string(q, PLAN_EMIT_JSON, &l2);
    assert_string_equal(j1, j2); /* the builder plan and the read plan look the same */
    assert_non_null(strstr(j1, "\"name\": \"main\""));
    assert_non_null(strstr(j1, "\"type\": \"[{file: path, count: int}]\""));
    assert_non_null(strstr(j1, "\"Row = {file: path, n: int}\""));
    assert_non_null(strstr(j1, "\"hello \\\"world\\\"\\n\""));
    assert_non_null(strstr(j1, "JUMP_IF_FALSE 9"));
    assert_non_null(strstr(j1, "\"from\": \"stitch.dst\""));
    assert_non_null(strstr(j1, "\"rate\""));
    assert_non_null(strstr(j1, "2.5"));
    free(j1), free(j2);

    /* YAML parses back with libyaml */
    char *y = emit_to_string(q, PLAN_EMIT_YAML, &l1);
    assert_non_null(strstr(y, "name: main"));
    yaml_parser_t yp;
    yaml_parser_initialize(&yp);
    yaml_parser_set_input_string(&yp, (const unsigned char *)y, l1);
    yaml_event_t ev;
    int events = 0, done = 0;
    while (!done) {
        if (!yaml_parser_parse(&yp, &ev)) fail_msg("emitted YAML does not parse: %s", yp.problem);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        events++;
    }
    yaml_parser_delete(&yp);
    assert_true(events > 100);
    free(y);

    char *d = emit_to_string(q, PLAN_EMIT_DOT, &l1);
    assert_non_null(strstr(d, "subgraph cluster_1"));
    assert_non_null(strstr(d, "box3d"));
    assert_non_null(strstr(d, "style=dashed"));
    free(d);
    char *c = emit_to_string(q, PLAN_EMIT_C, &l1);
    assert_non_null(strstr(c, "const unsigned char flow_plan_data[]"));
    assert_non_null(strstr(c, "tests/rich.flow"));
    free(c);
    free(b);
    plan_free(p), plan_free(q);
}

static void test_empty_and_truncated(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    assert_null(read_bytes(b, 0));
    assert_non_null(strstr(err, "empty"));
    for (size_t len = 1; len < n; len++) {
        uint8_t *c = malloc(len); /* exact size, so ASan sees any over-read */
        memcpy(c, b, len);
        assert_null(read_bytes(c, len));
        if (len >= 8) assert_non_null(strstr(err, "truncated"));
        free(c);
    }
    free(b);
    plan_free(p);
}

/* Flip every byte of the rich plan with each mask; returns how many were accepted. With
 * reseal the checksum is recomputed, so the validator must refuse the damage or the plan
 * must still be usable (written, emitted), never crash. */
static size_t flip_all(const uint8_t *masks, size_t nmasks, bool reseal) {
    fl_plan *p = rich_plan(NULL);
    size_t n, accepted = 0;
    uint8_t *b = bytes_of(p, &n);
    uint8_t *c = malloc(n);
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < nmasks; m++) {
            memcpy(c, b, n);
            c[i] ^= masks[m];
            if (reseal) plan_reseal(c, n);
            fl_plan *q = read_bytes(c, n);
            if (q) {
                use_plan(q);
                plan_free(q);
                accepted++;
            }
        }
    free(c), free(b);
    plan_free(p);
    return accepted;
}

static void test_flips(void **state) {
    (void)state;
    static const uint8_t masks[] = {0x01, 0x80};
    assert_int_equal(flip_all(masks, sizeof masks, false), 0); /* the checksum catches all */
}

static void test_resealed_flips(void **state) {
    (void)state;
    static const uint8_t masks[] = {0x01, 0x10, 0xff};
    size_t n;
    fl_plan *p = rich_plan(NULL);
    free(bytes_of(p, &n));
    plan_free(p);
    /* most damage is caught; some (a constant's value, a location) is harmless */
    assert_true(flip_all(masks, sizeof masks, true) < n * sizeof masks / 2);
}

static void put32(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* The names that may become a folder (plan_name_bad): what flowc makes passes,
 * anything that could leave a folder or confuse a shell does not. */
static void test_names(void **state) {
    (void)state;
    const char *good[] = {"a", "add", "g.x", "combine(a,b)", "combine(a,b)#2", "\xc3\xa9t\xc3\xa9",
                          "_", ".hidden", "a..b", "x-1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_null(plan_name_bad(good[i]));
    const char *bad[] = {"", ".", "..", "../x", "a/b", "/", "-rf", "a\nb", "tab\there", "del\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_non_null(plan_name_bad(bad[i]));
    char longest[PLAN_NAME_MAX + 2];
    memset(longest, 'n', PLAN_NAME_MAX);
    longest[PLAN_NAME_MAX] = 0;
    assert_null(plan_name_bad(longest));
    longest[PLAN_NAME_MAX] = 'n';
    longest[PLAN_NAME_MAX + 1] = 0;
    assert_non_null(plan_name_bad(longest));
}

/* plan_read holds the names of tasks, graphs, nodes and libraries to plan_name_bad. */
static void test_hostile_names(void **state) {
    (void)state;
    for (int which = 0; which < 4; which++) {
        fl_plan *p = rich_plan(NULL);
        /* a node's name is a binding path (x/clean): a part of it may not be ".." */
        uint32_t s = plan_intern_str(p, which == 1 ? "-x" : which == 2 ? "a/../b" : "..");
        const char *what = which == 0 ? "task" : which == 1 ? "graph" : which == 2 ? "node" : "library";
        if (which == 0) p->tasks[0].name = s;
        if (which == 1) p->graphs[0].name = s;
        if (which == 2) p->nodes[p->n_nodes - 1].name = s;
        if (which == 3) p->libs[0].name = s;
        size_t n;
        uint8_t *b = bytes_of(p, &n);
        fl_plan *q = read_bytes(b, n);
        if (q) fail_msg("a %s named by string %u was accepted", what, s);
        assert_non_null(strstr(err, what));
        assert_non_null(strstr(err, " name '"));
        free(b);
        plan_free(p);
    }
}

static void test_huge_counts(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    uint8_t *c = malloc(n);
    static const uint32_t counts[] = {0xffffffffu, 0x80000000u, 0x7fffffffu, 0x10000000u};
    static const uint64_t offs[] = {UINT64_MAX, 1ull << 63, 0xffffffffull, 96};
    for (uint32_t s = 0; s < 18; s++) {
        for (size_t k = 0; k < 4; k++) {
            memcpy(c, b, n);
            put32(c + 96 + 24 * s + 8, counts[k]);
            plan_reseal(c, n);
            assert_null(read_bytes(c, n));
            memcpy(c, b, n);
            put64(c + 96 + 24 * s + 16, offs[k]);
            plan_reseal(c, n);
            assert_null(read_bytes(c, n));
        }
    }
    memcpy(c, b, n); /* total length */
    put64(c + 16, UINT64_MAX);
    plan_reseal(c, n);
    assert_null(read_bytes(c, n));
    assert_non_null(strstr(err, "truncated"));
    memcpy(c, b, n); /* section count */
    put32(c + 92, 0xffffffffu);
    plan_reseal(c, n);
    assert_null(read_bytes(c, n));
    free(c), free(b);
    plan_free(p);
}

static void test_foreign(void **state) {
    (void)state;
    err[0] = '\0';
    assert_null(plan_read_file(fl_ctx_default(), "/proc/self/exe", err, sizeof err));
    assert_string_equal(err, "not a flow plan (bad magic)");
    const char *text = "flow main() {\n  return 1\n}\n";
    assert_null(read_bytes((const uint8_t *)text, strlen(text)));
    assert_string_equal(err, "not a flow plan (bad magic)");
    assert_null(plan_read_file(fl_ctx_default(), "/nonexistent/x.plan", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(plan_read_file(fl_ctx_default(), "/tmp", err, sizeof err));
    assert_non_null(strstr(err, "directory"));
}

static void test_newer_version(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    put32(b + 8, PLAN_VERSION + 1);
    plan_reseal(b, n);
    assert_null(read_bytes(b, n));
    char want[128];
    snprintf(want, sizeof want, "plan format version %d is newer than this flowrun supports (%d)",
             PLAN_VERSION + 1, PLAN_VERSION);
    assert_string_equal(err, want);
    /* even without a valid checksum or a full header, the version is reported first */
    assert_null(read_bytes(b, 40));
    assert_string_equal(err, want);
    free(b);
    plan_free(p);
}

/* A plan of format 1 (call nodes without instance names) is refused in one line
 * that says what to do. */
static void test_older_version(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    put32(b + 8, 1);
    plan_reseal(b, n);
    assert_null(read_bytes(b, n));
    char want[128];
    snprintf(want, sizeof want, "plan format version 1 is older than this flowrun reads (%d): "
             "recompile it with flowc", PLAN_VERSION);
    assert_string_equal(err, want);
    assert_null(strchr(err, '\n'));
    free(b);
    plan_free(p);
}

/* The plan bytes b (n long, the current format) as format `version`, which has only
 * the first nsec sections: the later ones (empty) are dropped from the section table
 * and every offset moves back. The new bytes (malloc'ed), *n_out long. */
static uint8_t *older_format(const uint8_t *b, size_t n, uint32_t version, uint32_t nsec,
                             size_t *n_out) {
    uint32_t all = (uint32_t)b[92] | (uint32_t)b[93] << 8;
    size_t drop = 24 * (size_t)(all - nsec), m = n - drop;
    uint8_t *c = malloc(m);
    assert_non_null(c);
    memcpy(c, b, 96);
    put32(c + 8, version);
    put64(c + 16, m);
    put32(c + 92, nsec);
    for (uint32_t s = 0; s < nsec; s++) {
        memcpy(c + 96 + 24 * s, b + 96 + 24 * s, 24);
        uint64_t off = 0;
        for (int k = 7; k >= 0; k--) off = off << 8 | b[96 + 24 * s + 16 + k];
        put64(c + 96 + 24 * s + 16, off - drop);
    }
    memcpy(c + 96 + 24 * nsec, b + 96 + 24 * all, n - (96 + 24 * all));
    plan_reseal(c, m);
    *n_out = m;
    return c;
}

/* Containers (format 5): cpus/network round-trip for a task with image:; a format-4
 * plan (no containers section) is read as one with none; bad records are refused. */
static void test_containers_section(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n, n4;
    uint8_t *b = bytes_of(p, &n);
    uint8_t *c = older_format(b, n, 4, 19, &n4);
    fl_plan *q = read_bytes(c, n4);
    assert_non_null(q);
    assert_int_equal(q->n_containers, 0);
    assert_null(plan_task_container(q, 0));
    plan_free(q);
    free(c);
    free(b);

    p->tasks[0].image = plan_intern_str(p, "localhost/x:1");
    uint32_t i = PLAN_PUSH(p, containers);
    p->containers[i] = (plan_container){0, 2, 1};
    b = bytes_of(p, &n);
    q = read_bytes(b, n);
    assert_non_null(q);
    const plan_container *co = plan_task_container(q, 0);
    assert_non_null(co);
    assert_int_equal(co->cpus, 2);
    assert_int_equal(co->network, 1);
    assert_null(plan_task_container(q, 1));
    plan_free(q);
    free(b);
    p->containers[i].network = 2;
    b = bytes_of(p, &n);
    assert_null(read_bytes(b, n));
    assert_non_null(strstr(err, "out of range"));
    free(b);
    p->containers[i].network = 1;
    p->tasks[0].image = PLAN_NONE;
    b = bytes_of(p, &n);
    assert_null(read_bytes(b, n));
    assert_non_null(strstr(err, "has container options but no image"));
    free(b);
    plan_free(p);
}

/* Secrets (format 4): names round-trip; a format-3 plan (no secrets section) is still
 * read, as a plan whose tasks declare none; a bad record is refused in one line. */
static void test_secrets_section(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    /* the same plan as format 3: no secrets nor containers sections (both empty) */
    size_t n3;
    uint8_t *c = older_format(b, n, 3, 18, &n3);
    fl_plan *q = read_bytes(c, n3);
    assert_non_null(q);
    assert_int_equal(q->n_secrets, 0);
    assert_int_equal(q->n_tasks, p->n_tasks);
    assert_false(plan_task_has_secret(q, 0, NULL));
    plan_free(q);
    free(c);
    free(b);

    uint32_t i = PLAN_PUSH(p, secrets);
    p->secrets[i] = (plan_secret){0, plan_intern_str(p, "s3_key"), PLAN_NONE};
    b = bytes_of(p, &n);
    q = read_bytes(b, n);
    assert_non_null(q);
    assert_int_equal(q->n_secrets, 1);
    assert_true(plan_task_has_secret(q, 0, "s3_key"));
    assert_true(plan_task_has_secret(q, 0, NULL));
    assert_false(plan_task_has_secret(q, 0, "other"));
    assert_false(plan_task_has_secret(q, 1, NULL));
    plan_free(q);
    free(b);
    p->secrets[i].name = plan_intern_str(p, "no-dash");
    b = bytes_of(p, &n);
    assert_null(read_bytes(b, n));
    assert_non_null(strstr(err, "secret 0: the name may hold only"));
    free(b);
    p->secrets[i] = (plan_secret){p->n_tasks, plan_intern_str(p, "k"), PLAN_NONE};
    b = bytes_of(p, &n);
    assert_null(read_bytes(b, n));
    assert_non_null(strstr(err, "secret 0 refers to task"));
    free(b);
    plan_free(p);
}

static void test_text_mode(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    size_t n, m = 0;
    uint8_t *b = bytes_of(p, &n);
    uint8_t *c = malloc(2 * n);
    for (size_t i = 0; i < n; i++) { /* LF -> CRLF */
        if (b[i] == '\n') c[m++] = '\r';
        c[m++] = b[i];
    }
    assert_null(read_bytes(c, m));
    assert_string_equal(err, "damaged by a text-mode transfer (line endings converted)");
    m = 0;
    for (size_t i = 0; i < n; i++) /* CRLF -> LF */
        if (!(b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')) c[m++] = b[i];
    assert_null(read_bytes(c, m));
    assert_string_equal(err, "damaged by a text-mode transfer (line endings converted)");
    memcpy(c, b, n);
    c[0] &= 0x7f;
    assert_null(read_bytes(c, n));
    assert_non_null(strstr(err, "high bit"));
    free(c), free(b);
    plan_free(p);
}

/* A plan built wrong is refused with a message that says where. */
static void expect_bad(fl_plan *p, const char *want) {
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    fl_plan *q = read_bytes(b, n);
    if (q) fail_msg("accepted a bad plan (wanted: %s)", want);
    if (!strstr(err, want)) fail_msg("message '%s' lacks '%s'", err, want);
    free(b);
    plan_free(p);
}

static uint32_t node_named(const fl_plan *p, const char *name) {
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].name != PLAN_NONE && !strcmp(plan_str(p, p->nodes[i].name), name)) return i;
    fail_msg("no node %s", name);
    return 0;
}

static void test_validator_messages(void **state) {
    (void)state;
    rich_ids x;
    fl_plan *p = rich_plan(&x);
    p->args[p->nodes[node_named(p, "stored")].first_arg].node = 0; /* a node of group prep */
    expect_bad(p, "argument refers to node 0 of another graph");

    p = rich_plan(&x);
    uint32_t s = node_named(p, "stored");
    p->args[p->nodes[s].first_arg].node = s + 1; /* a later node */
    expect_bad(p, "must be earlier");

    p = rich_plan(&x);
    p->types[x.t_lint].elem = x.t_lint;
    expect_bad(p, "must come before it");

    p = rich_plan(&x);
    p->nodes[node_named(p, "counts")].kind = PN__COUNT;
    expect_bad(p, "unknown kind");

    p = rich_plan(&x);
    p->code[p->lambdas[0].first_code].a = (int32_t)p->n_values;
    expect_bad(p, "bad operand");

    p = rich_plan(&x);
    p->code[p->lambdas[3].first_code + 5].a = 100; /* jump out of the lambda */
    expect_bad(p, "bad operand");

    p = rich_plan(&x);
    p->code[p->lambdas[3].first_code + 4].op = EOP_RET; /* returns with 1 left over */
    expect_bad(p, "lambda 3");

    p = rich_plan(&x);
    p->tasks[3].second = 3; /* a combine of itself */
    expect_bad(p, "must come before it");

    p = rich_plan(&x);
    p->binds[1].index = 5;
    expect_bad(p, "out of range");

    p = rich_plan(&x);
    p->graphs[1].ret_node = 0;
    expect_bad(p, "outside the graph");

    p = rich_plan(&x);
    p->tasks[0].trigger = 7;
    expect_bad(p, "unknown trigger");

    /* a duration past the limit flowc enforces: consumers compute ns deadlines and poll
     * timeouts from it (issue 11: 200000d overflowed into "timed out after ...s") */
    p = rich_plan(&x);
    p->tasks[0].timeout_ms = 200000LL * 86400 * 1000;
    expect_bad(p, "longer than 365d");
    p = rich_plan(&x);
    p->tasks[0].retry_delay_ms = PLAN_MAX_DURATION_MS + 1;
    expect_bad(p, "longer than 365d");

    p = rich_plan(&x);
    p->values[x.v_list].n = 1000;
    expect_bad(p, "items");

    p = rich_plan(&x);
    p->strtext[p->n_strtext - 1] = 'x';
    expect_bad(p, "NUL");

    p = rich_plan(&x);
    p->graphs[0].nnodes++; /* group prep takes main's first node */
    expect_bad(p, "share node");

    p = rich_plan(&x);
    p->nodes[node_named(p, "counts")].aux = 0;
    expect_bad(p, "no axis");

    p = rich_plan(&x); /* an element of [int] that is not an int */
    p->nodes[node_named(p, "first")].type = x.t_lint;
    expect_bad(p, "elem takes one list and gives one of its elements");

    p = rich_plan(&x);
    uint32_t c = node_named(p, "c"); /* group prep's call becomes a call of prep itself */
    p->nodes[c].kind = PN_GROUP_CALL;
    p->nodes[c].ref = 0;
    p->nodes[c].nargs = 1;
    expect_bad(p, "calls itself");

    p = rich_plan(&x);
    node(p, PN_CONST, x.t_int, PLAN_NONE, x.v_int, NULL);
    expect_bad(p, "belongs to no graph");

    p = rich_plan(&x);
    p->items[p->values[x.v_list].u.first] = x.v_str; /* a str in an [int] */
    expect_bad(p, "item 0 has type");

    p = rich_plan(&x);
    p->params[1].def = x.v_str; /* count's n: int = "hello" */
    expect_bad(p, "default has type");

    p = rich_plan(&x);
    p->tasks[1].nparams = 0; /* the command lambda takes (url, out) */
    expect_bad(p, "does not take (params..., out: str)");

    p = rich_plan(&x);
    p->args[p->nodes[node_named(p, "by_row")].first_arg].aux = 2; /* Row has 2 fields */
    expect_bad(p, "bad mode or axis/field");

    p = rich_plan(&x);
    p->nodes[node_named(p, "pairs")].nargs = 1; /* zip's record has 2 fields */
    expect_bad(p, "one field per argument");

    p = rich_plan(&x);
    p->source = p->n_stroff;
    expect_bad(p, "source name");

    p = rich_plan(&x); /* count(file, n = "hello"): a str where an int goes */
    p->args[p->nodes[node_named(p, "counts")].first_arg + 1].node = node_named(p, "url");
    expect_bad(p, "parameter n wants");

    p = rich_plan(&x); /* the same, with a parameter name that would break the line */
    p->params[1].name = plan_intern_str(p, "n\nx");
    p->args[p->nodes[node_named(p, "counts")].first_arg + 1].node = node_named(p, "url");
    expect_bad(p, "parameter n?x wants"); /* read_bytes also checks: no newline */

    p = rich_plan(&x); /* both arguments claim axis 0 */
    uint32_t cn = node_named(p, "counts");
    p->args[p->nodes[cn].first_arg + 1] = (plan_arg){node_named(p, "files"), PA_AXIS, 0};
    expect_bad(p, "parameter n wants");

    p = rich_plan(&x); /* two axes, one named */
    p->nodes[node_named(p, "counts")].aux = 2;
    expect_bad(p, "axis 1 is named by 0 arguments");

    p = rich_plan(&x); /* flatten([[int]]) claims to give [[int]] */
    p->nodes[node_named(p, "all")].type = x.t_llint;
    expect_bad(p, "flatten");

    p = rich_plan(&x); /* a list node [[int]] with an int element */
    p->args[p->nodes[node_named(p, "all")].first_arg - 1].node = node_named(p, "n");
    expect_bad(p, "list element 1");

    static const char *const not_utf8[] = {
        "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof not_utf8 / sizeof not_utf8[0]; i++) {
        p = rich_plan(&x);
        plan_intern_str(p, not_utf8[i]);
        expect_bad(p, "not UTF-8");
    }
    p = rich_plan(&x); /* well-formed multi-byte text is fine */
    plan_intern_str(p, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    size_t len;
    uint8_t *b = bytes_of(p, &len);
    fl_plan *q = read_bytes(b, len);
    if (!q) fail_msg("refused UTF-8 text: %s", err);
    plan_free(q);
    free(b);
    plan_free(p);
}

/* Records are structural: a constant of the anonymous {file: path, n: int} may stand
 * where a Row goes, but a record with other field names may not. */
static void test_structural_records(void **state) {
    (void)state;
    for (int rename = 0; rename < 2; rename++) {
        rich_ids x;
        fl_plan *p = rich_plan(&x);
        plan_field f[] = {{plan_intern_str(p, rename ? "path" : "file"), x.t_path},
                          {plan_intern_str(p, "n"), x.t_int}};
        uint32_t anon = plan_type_record(p, PLAN_NONE, f, 2);
        assert_int_not_equal(anon, x.t_row);
        p->values[x.v_row].type = anon; /* an item of [Row], and a Row node's constant */
        size_t len;
        uint8_t *b = bytes_of(p, &len);
        fl_plan *q = read_bytes(b, len);
        if (rename) {
            assert_null(q);
        } else {
            if (!q) fail_msg("refused: %s", err);
            plan_free(q);
        }
        free(b);
        plan_free(p);
    }
}

/* group a(x) { b(x) }, group b(x) { a(x) }: every node is fine, the calls are a cycle */
static void test_group_cycle(void **state) {
    (void)state;
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t t_int = plan_type_basic(p, PT_INT);
    for (uint32_t g = 0; g < 2; g++) {
        uint32_t pa = param(p, "x", t_int, PLAN_NONE);
        graph(p, g ? "b" : "a", PG_GROUP, pa, 1, t_int);
        uint32_t x = node(p, PN_PARAM, t_int, PLAN_NONE, 0, NULL);
        uint32_t c = node(p, PN_GROUP_CALL, t_int, 1 - g, 0, NULL);
        arg(p, c, x, PA_SCALAR, 0);
        graph_end(p, g, c);
    }
    expect_bad(p, "groups call each other in a cycle");
}

/* Shared structure must not make the views explode: a list of 100 copies of a list of
 * 100 copies of ... (100^12 leaves), and records of 50 fields of records of 50 fields. */
static void test_explosive_views(void **state) {
    (void)state;
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t t = plan_type_basic(p, PT_INT);
    uint32_t v = vint(p, t, 7);
    uint32_t same[100];
    for (int level = 0; level < 12; level++) {
        t = plan_type_list(p, t);
        for (int j = 0; j < 100; j++) same[j] = v;
        v = vagg(p, t, same, 100);
    }
    uint32_t r = plan_type_basic(p, PT_STR);
    for (int level = 0; level < 30; level++) {
        plan_field f[50];
        for (int j = 0; j < 50; j++) {
            char name[16];
            snprintf(name, sizeof name, "f%d", j);
            f[j] = (plan_field){plan_intern_str(p, name), r};
        }
        r = plan_type_record(p, PLAN_NONE, f, 50);
    }
    size_t n;
    uint8_t *b = bytes_of(p, &n);
    fl_plan *q = read_bytes(b, n);
    if (!q) fail_msg("refused: %s", err);
    size_t len;
    char *j = emit_to_string(q, PLAN_EMIT_JSON, &len);
    assert_true(len < 64u << 20); /* bounded, not 100^12 */
    free(j);
    char text[200];
    plan_type_text(q, r, text, sizeof text);
    assert_int_equal(strlen(text), sizeof text - 1);
    free(b);
    plan_free(q);
    plan_free(p);
}

/* An expansion of a task with no result may be typed void (as flowc does) or [void]. */
static void test_void_expand(void **state) {
    (void)state;
    for (int as_list = 0; as_list < 2; as_list++) {
        rich_ids x;
        fl_plan *p = rich_plan(&x);
        uint32_t t = task(p, "touch", TK_C, 0, 2, x.t_void);
        p->tasks[t].lib = 0;
        p->tasks[t].symbol = plan_intern_str(p, "touch");
        uint32_t ty = as_list ? plan_type_list(p, x.t_void) : x.t_void;
        uint32_t n = node(p, PN_EXPAND, ty, t, 1, "touched");
        arg(p, n, node_named(p, "files"), PA_AXIS, 0);
        arg(p, n, node_named(p, "n"), PA_SCALAR, 0);
        p->graphs[1].nnodes++; /* main's nodes end where this one was added */
        size_t len;
        uint8_t *b = bytes_of(p, &len);
        fl_plan *q = read_bytes(b, len);
        if (!q) fail_msg("refused: %s", err);
        plan_free(q);
        free(b);
        plan_free(p);
    }
}

static void test_files(void **state) {
    (void)state;
    fl_plan *p = rich_plan(NULL);
    char dir[] = "/tmp/test_planXXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.plan", dir);
    assert_int_equal(plan_write_file(p, path, err, sizeof err), 0);
    fl_plan *q = plan_read_file(fl_ctx_default(), path, err, sizeof err);
    if (!q) fail_msg("%s", err);
    plan_free(q);
    unlink(path);
    rmdir(dir);
    snprintf(path, sizeof path, "/nonexistent-dir/a.plan");
    assert_int_not_equal(plan_write_file(p, path, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot write"));
    plan_free(p);
}

/* ---- tools for the suite and the fuzzer ---- */
static int write_plan(fl_plan *p, const char *path) {
    char e[256];
    int rc = plan_write_file(p, path, e, sizeof e);
    if (rc) fprintf(stderr, "test_plan: %s\n", e);
    plan_free(p);
    return rc ? 1 : 0;
}

static fl_plan *small_plan(void) {
    fl_plan *p = plan_new(fl_ctx_default());
    p->source = plan_intern_str(p, "small.flow");
    uint32_t t_int = plan_type_basic(p, PT_INT);
    uint32_t v = PLAN_PUSH(p, values);
    p->values[v] = (plan_value){t_int, 0, {.i = 7}};
    uint32_t g = PLAN_PUSH(p, graphs);
    p->graphs[g] = (plan_graph){
        plan_intern_str(p, "main"), PG_FLOW, 0, 0, t_int, 0, PLAN_NONE, PLAN_NONE, PLAN_NONE,
        PLAN_NONE, 0, 1, PLAN_NONE};
    uint32_t n = PLAN_PUSH(p, nodes);
    p->nodes[n] = (plan_node){PN_CONST, t_int, PLAN_NONE, v, 0, 0, 0, 0, PLAN_NONE, PLAN_NONE};
    return p;
}

static int write_bytes(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "test_plan: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* Damaged plans for tests/suites/30-plan.sh, each refused for its own reason. */
static int write_damaged(const char *dir) {
    fl_plan *p = rich_plan(NULL);
    size_t n, m = 0;
    uint8_t *b;
    int rc = 0;
    if (plan_write(p, &b, &n)) return 1;
    uint8_t *c = malloc(2 * n + 16);
    rc |= write_bytes(dir, "empty.plan", b, 0);
    rc |= write_bytes(dir, "short.plan", b, 5);
    rc |= write_bytes(dir, "truncated.plan", b, n / 2);
    memcpy(c, b, n);
    c[n / 3] ^= 0x20;
    rc |= write_bytes(dir, "flipped.plan", c, n);
    memcpy(c, b, n);
    memcpy(c + n, "garbage", 7);
    rc |= write_bytes(dir, "trailing.plan", c, n + 7);
    memcpy(c, b, n);
    put32(c + 8, PLAN_VERSION + 1);
    plan_reseal(c, n);
    rc |= write_bytes(dir, "newer.plan", c, n);
    memcpy(c, b, n);
    put32(c + 8, 1);
    plan_reseal(c, n);
    rc |= write_bytes(dir, "older.plan", c, n);
    memcpy(c, b, n);
    put32(c + 8, 2); /* version 2: graph records without start, tz, watch */
    plan_reseal(c, n);
    rc |= write_bytes(dir, "older2.plan", c, n);
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n') c[m++] = '\r';
        c[m++] = b[i];
    }
    rc |= write_bytes(dir, "crlf.plan", c, m);
    const char *text = "flow main() -> int {\n  return 1\n}\n";
    rc |= write_bytes(dir, "text.plan", (const uint8_t *)text, strlen(text));
    free(b);
    p->args[p->nodes[node_named(p, "stored")].first_arg].node = 0;
    if (plan_write(p, &b, &n)) return 1;
    rc |= write_bytes(dir, "badref.plan", b, n);
    free(b);
    plan_free(p);
    p = rich_plan(NULL); /* valid, but its library cannot be found, and its path is odd (a
                          * name with a newline is refused: plan_name_bad) */
    p->libs[0].name = plan_intern_str(p, "wc");
    p->libs[0].path = plan_intern_str(p, "no\nsuch.so");
    if (plan_write(p, &b, &n)) return 1;
    rc |= write_bytes(dir, "nolib.plan-valid", b, n);
    free(b);
    free(c);
    plan_free(p);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-damaged")) return write_damaged(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--write-plan")) return write_plan(rich_plan(NULL), argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rich.plan", argv[2]);
        if (write_plan(rich_plan(NULL), path)) return 1;
        snprintf(path, sizeof path, "%s/small.plan", argv[2]);
        if (write_plan(small_plan(), path)) return 1;
        snprintf(path, sizeof path, "%s/empty-plan.plan", argv[2]);
        fl_plan *e = plan_new(fl_ctx_default());
        return write_plan(e, path);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_type_text),
        cmocka_unit_test(test_emit),
        cmocka_unit_test(test_empty_and_truncated),
        cmocka_unit_test(test_flips),
        cmocka_unit_test(test_resealed_flips),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_older_version),
        cmocka_unit_test(test_containers_section),
        cmocka_unit_test(test_text_mode),
        cmocka_unit_test(test_validator_messages),
        cmocka_unit_test(test_void_expand),
        cmocka_unit_test(test_group_cycle),
        cmocka_unit_test(test_explosive_views),
        cmocka_unit_test(test_structural_records),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_secrets_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
