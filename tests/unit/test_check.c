/* test_check.c — the checker's lowering, checked structurally on plans compiled
 * from source text: node kinds, axes, binds, option values, inlined groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ast.h"
#include "compile.h"
#include "diag.h"
#include "elf.h"
#include "plan.h"

typedef struct compiled {
    ast_arena *ar;    /* the syntax tree's memory */
    fl_plan *plan;  /* NULL when the program had errors */
    int errors;       /* errors reported */
} compiled;

static compiled compile_to(const char *src, const char *plan_path);

static compiled compile_text(const char *src) { return compile_to(src, "build/t.plan"); }

static compiled compile_to(const char *src, const char *plan_path) {
    compiled r = {ast_arena_new(fl_ctx_default()), NULL, 0};
    fl_diag d;
    FILE *sink = fopen("/dev/null", "w");
    diag_init(&d, "tests/unit/t.flow", src, strlen(src), sink);
    fl_node *prog = fl_parse(r.ar, &d, src, strlen(src));
    if (prog && !d.errors) {
        flowc_options opt = {"tests/unit/t.flow", plan_path, src, strlen(src), NULL, NULL, 0, NULL, NULL, NULL};
        r.plan = flowc_compile(prog, &d, &opt);
    }
    r.errors = d.errors;
    fclose(sink);
    return r;
}

static void done(compiled *c) {
    plan_free(c->plan);
    ast_arena_free(c->ar);
}

static uint32_t graph_named(const fl_plan *p, const char *name) {
    for (uint32_t i = 0; i < p->n_graphs; i++)
        if (!strcmp(plan_str(p, p->graphs[i].name), name)) return i;
    fail_msg("no graph %s", name);
    return PLAN_NONE;
}

static const plan_node *node_named(const fl_plan *p, uint32_t g, const char *name) {
    const plan_graph *gr = &p->graphs[g];
    for (uint32_t i = gr->first_node; i < gr->first_node + gr->nnodes; i++)
        if (!strcmp(plan_str(p, p->nodes[i].name), name)) return &p->nodes[i];
    fail_msg("no node %s", name);
    return NULL;
}

static uint32_t task_named(const fl_plan *p, const char *name) {
    for (uint32_t i = 0; i < p->n_tasks; i++)
        if (!strcmp(plan_str(p, p->tasks[i].name), name)) return i;
    fail_msg("no task %s", name);
    return PLAN_NONE;
}

#define LIB "library chk = \"../lib/libchk.so\"\n"

static const char *wordcount =
    LIB "task list_files(root: dir) -> [path] = chk.list_files\n"
        "task count_words(file: path) -> int = chk.count_words\n"
        "task max_of(counts: [int]) -> int = chk.max_of\n"
        "flow wc(root: dir = \"data\") -> int {\n"
        "    let files = list_files(root)\n"
        "    let counts = count_words.expand(file = files)\n"
        "    return max_of(counts)\n"
        "}\n";

static void test_wordcount(void **state) {
    (void)state;
    compiled c = compile_text(wordcount);
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    assert_non_null(p);
    uint32_t g = graph_named(p, "wc");
    assert_int_equal(p->graphs[g].nnodes, 4);
    const plan_node *files = node_named(p, g, "files");
    const plan_node *counts = node_named(p, g, "counts");
    assert_int_equal(files->kind, PN_CALL);
    assert_int_equal(counts->kind, PN_EXPAND);
    assert_int_equal(counts->aux, 1);
    assert_int_equal(p->args[counts->first_arg].mode, PA_AXIS);
    assert_int_equal(p->args[counts->first_arg].node, files - p->nodes);
    assert_int_equal(p->graphs[g].ret_node, p->graphs[g].first_node + 3);
    /* the library was found: hashed, stored relative to the plan's folder */
    assert_string_equal(plan_str(p, p->libs[0].path), "../tests/lib/libchk.so");
    int nonzero = 0;
    for (int i = 0; i < 32; i++) nonzero |= p->libs[0].sha256[i];
    assert_true(nonzero);
    done(&c);
}

/* library paths are stored relative to the plan's folder (or the .flow's with --check) */
static void test_library_paths(void **state) {
    (void)state;
    const char *src = LIB "task add(a: int, b: int) -> int = chk.add\nflow f() {}\n";
    compiled c = compile_to(src, "tests/lib/t.plan");
    assert_string_equal(plan_str(c.plan, c.plan->libs[0].path), "libchk.so");
    done(&c);
    c = compile_to(src, "tests/unit/t.plan");
    assert_string_equal(plan_str(c.plan, c.plan->libs[0].path), "../lib/libchk.so");
    done(&c);
    c = compile_to(src, NULL); /* --check: the .flow file's folder */
    assert_string_equal(plan_str(c.plan, c.plan->libs[0].path), "../lib/libchk.so");
    done(&c);
    c = compile_to(src, "tests/t.plan");
    assert_string_equal(plan_str(c.plan, c.plan->libs[0].path), "lib/libchk.so");
    done(&c);
}

static void test_cartesian_axes_in_order_named(void **state) {
    (void)state;
    compiled c = compile_text(LIB "task train(lr: float, depth: int) -> float = chk.train\n"
                                  "flow sweep() -> [float] {\n"
                                  "    let s = train.expand(depth = [2, 4, 8], lr = [0.1, 0.01])\n"
                                  "    return s\n"
                                  "}\n");
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    const plan_node *s = node_named(p, graph_named(p, "sweep"), "s");
    assert_int_equal(s->kind, PN_EXPAND);
    assert_int_equal(s->aux, 2);
    assert_int_equal(s->nargs, 2);
    /* args follow the parameters (lr, depth); axes follow the order named (depth first) */
    assert_int_equal(p->args[s->first_arg].aux, 1);
    assert_int_equal(p->args[s->first_arg + 1].aux, 0);
    assert_int_equal(p->nodes[p->args[s->first_arg].node].kind, PN_CONST);
    done(&c);
}

static void test_partial_and_default(void **state) {
    (void)state;
    compiled c = compile_text(LIB "task resize(src: path, width: int = 800) -> path = chk.resize_image\n"
                                  "flow f(fs: [path]) -> [path] {\n"
                                  "    let small = resize.partial(width = 200).expand(src = fs)\n"
                                  "    let one = resize(\"a.png\")\n"
                                  "    return small\n"
                                  "}\n");
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    uint32_t g = graph_named(p, "f");
    const plan_node *small = node_named(p, g, "small");
    const plan_arg *w = &p->args[small->first_arg + 1];
    assert_int_equal(w->mode, PA_SCALAR);
    assert_int_equal(p->nodes[w->node].kind, PN_CONST);
    assert_int_equal(p->values[p->nodes[w->node].aux].u.i, 200);
    const plan_node *one = node_named(p, g, "one");
    const plan_node *def = &p->nodes[p->args[one->first_arg + 1].node];
    assert_int_equal(def->kind, PN_CONST);
    assert_int_equal(p->values[def->aux].u.i, 800);
    /* a string literal passed as a path becomes a path constant */
    const plan_node *src = &p->nodes[p->args[one->first_arg].node];
    assert_int_equal(p->types[p->values[src->aux].type].kind, PT_PATH);
    done(&c);
}

static void test_expand_kwargs_zip(void **state) {
    (void)state;
    compiled c = compile_text(LIB "task add(a: int, b: int) -> int = chk.add\n"
                                  "flow f() -> [int] {\n"
                                  "    let rows = zip(b = range(3), a = range(1, 4))\n"
                                  "    let sums = add.expand_kwargs(rows)\n"
                                  "    return sums\n"
                                  "}\n");
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    uint32_t g = graph_named(p, "f");
    const plan_node *rows = node_named(p, g, "rows");
    assert_int_equal(rows->kind, PN_ZIP);
    const plan_type *rt = &p->types[p->types[rows->type].elem];
    assert_int_equal(rt->kind, PT_RECORD);
    assert_string_equal(plan_str(p, p->fields[rt->first].name), "b");
    const plan_node *sums = node_named(p, g, "sums");
    assert_int_equal(sums->kind, PN_EXPAND_KWARGS);
    assert_int_equal(p->args[sums->first_arg].mode, PA_FIELD);
    assert_int_equal(p->args[sums->first_arg].aux, 1);     /* a is field 1 */
    assert_int_equal(p->args[sums->first_arg + 1].aux, 0); /* b is field 0 */
    done(&c);
}

static const char *combine_src =
    LIB "task fetch(url: str) -> bytes = chk.fetch\n"
        "task store(data: bytes, dst: str) = chk.store\n"
        "task size_of(data: bytes) -> int = chk.size_of\n"
        "flow f(urls: [str]) {\n"
        "    let mirror = combine(fetch, store) with {retries: 3}\n"
        "    mirror.partial(dst = \"gs://b/\").expand(url = urls)\n"
        "    let st = combine(fetch, store, stitch = r => {data = r, dst = \"x\"})\n"
        "    st.expand(url = urls)\n"
        "    let n = combine(fetch, size_of).expand(url = urls)\n"
        "}\n";

static void test_combine(void **state) {
    (void)state;
    compiled c = compile_text(combine_src);
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    /* a combine bound by a let is named by it (its stable name in history and logs) */
    uint32_t m = task_named(p, "mirror");
    assert_int_equal(task_named(p, "st"), m + 1);
    const plan_task *t = &p->tasks[m];
    assert_int_equal(t->kind, TK_COMBINE);
    assert_int_equal(t->nparams, 2);
    assert_string_equal(plan_str(p, p->params[t->first_param].name), "url");
    assert_string_equal(plan_str(p, p->params[t->first_param + 1].name), "dst");
    assert_int_equal(p->binds[t->first_bind].kind, PB_RESULT);
    assert_int_equal(p->binds[t->first_bind + 1].kind, PB_PARAM);
    assert_int_equal(p->binds[t->first_bind + 1].index, 1);
    assert_int_equal(t->retries, 3);
    assert_int_equal(t->first, task_named(p, "fetch"));
    /* the stitched one: both of store's parameters come from the stitch record */
    const plan_task *s = &p->tasks[m + 1];
    assert_int_equal(s->kind, TK_COMBINE);
    assert_int_equal(s->nparams, 1);
    assert_int_not_equal(s->stitch, PLAN_NONE);
    assert_int_equal(p->binds[s->first_bind].kind, PB_STITCH);
    assert_int_equal(p->binds[s->first_bind + 1].kind, PB_STITCH);
    assert_int_equal(p->binds[s->first_bind + 1].index, 1);
    uint32_t g = graph_named(p, "f");
    const plan_node *n = node_named(p, g, "n");
    assert_int_equal(n->kind, PN_EXPAND);
    assert_int_equal(p->types[n->type].kind, PT_LIST);
    done(&c);
}

static void test_options(void **state) {
    (void)state;
    compiled c = compile_text(
        LIB "task t(f: path, n: int) -> int = chk.add with {retries: 2, retry_delay: 500ms,\n"
            "    timeout: 30s, cache: false, version: \"2\", max_map: 10, concurrency: 4,\n"
            "    trigger: \"all_done\", run_as: \"bob\", image: \"alpine\", label: f => basename(f)}\n"
            "flow f() {}\n");
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    const plan_task *t = &p->tasks[task_named(p, "t")];
    assert_int_equal(t->retries, 2);
    assert_int_equal(t->retry_delay_ms, 500);
    assert_int_equal(t->timeout_ms, 30000);
    assert_int_equal(t->cache, 0);
    assert_string_equal(plan_str(p, t->version), "2");
    assert_int_equal(t->max_map, 10);
    assert_int_equal(t->concurrency, 4);
    assert_int_equal(t->trigger, TRIG_ALL_DONE);
    assert_string_equal(plan_str(p, t->run_as), "bob");
    assert_string_equal(plan_str(p, t->image), "alpine");
    assert_int_not_equal(t->label, PLAN_NONE);
    assert_int_equal(p->lambdas[t->label].nparams, 1);
    assert_int_equal(t->memory, 0);
    assert_int_equal(t->max_procs, 0);
    done(&c);

    /* memory: takes a size (binary and decimal units, plain bytes), max_procs: an int */
    c = compile_text(LIB "task a(n: int) -> int = chk.add with {memory: 64MiB, max_procs: 8}\n"
                         "task b(n: int) -> int = chk.add with {memory: 2GB}\n"
                         "task d(n: int) -> int = chk.add with {memory: 3_000_000B}\n"
                         "task e(n: int) -> int = chk.add with {memory: 1TiB}\n"
                         "flow f() {}\n");
    assert_int_equal(c.errors, 0);
    p = c.plan;
    assert_int_equal(p->tasks[task_named(p, "a")].memory, 64LL << 20);
    assert_int_equal(p->tasks[task_named(p, "a")].max_procs, 8);
    assert_int_equal(p->tasks[task_named(p, "b")].memory, 2000000000LL);
    assert_int_equal(p->tasks[task_named(p, "d")].memory, 3000000LL);
    assert_int_equal(p->tasks[task_named(p, "e")].memory, 1LL << 40);
    done(&c);
}

static const char *group_src =
    LIB "task strip(f: path) -> path = chk.strip_file\n"
        "task count_words(file: path) -> int = chk.count_words\n"
        "group per_file(f: path) -> int {\n"
        "    let clean = strip(f)\n"
        "    return count_words(clean)\n"
        "}\n"
        "group per_dir(fs: [path]) -> [int] {\n"
        "    return per_file.expand(f = fs)\n"
        "}\n"
        "flow f(a: path, b: path) -> [[int]] {\n"
        "    let x = per_file(a)\n"
        "    let y = per_file(b) after x\n"
        "    let nested = per_dir.expand(fs = [[a], [a, b]])\n"
        "    return nested\n"
        "}\n";

static void test_groups(void **state) {
    (void)state;
    compiled c = compile_text(group_src);
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    uint32_t g = graph_named(p, "f");
    /* each plain call gets fresh copies of the group's nodes, named binding/let */
    assert_int_equal(node_named(p, g, "x/clean")->kind, PN_CALL);
    assert_int_equal(node_named(p, g, "y/clean")->kind, PN_CALL);
    const plan_node *y = node_named(p, g, "y/count_words");
    assert_int_equal(y->kind, PN_CALL);
    assert_int_equal(y->nafter, 1);
    assert_int_equal(p->afters[y->first_after], node_named(p, g, "x/count_words") - p->nodes);
    const plan_node *nested = node_named(p, g, "nested");
    assert_int_equal(nested->kind, PN_GROUP_EXPAND);
    assert_int_equal(nested->ref, graph_named(p, "per_dir"));
    char buf[64];
    plan_type_text(p, nested->type, buf, sizeof buf);
    assert_string_equal(buf, "[[int]]");
    /* every node's arguments come before it */
    const plan_graph *gr = &p->graphs[g];
    for (uint32_t i = gr->first_node; i < gr->first_node + gr->nnodes; i++)
        for (uint32_t k = 0; k < p->nodes[i].nargs; k++) {
            uint32_t a = p->args[p->nodes[i].first_arg + k].node;
            assert_true(a >= gr->first_node && a < i);
        }
    done(&c);
}

static void test_map_filter_builtins(void **state) {
    (void)state;
    compiled c = compile_text(LIB "task count_words(file: path) -> int = chk.count_words\n"
                                  "flow f(d: dir) -> int {\n"
                                  "    let fs = files(d, \"*.csv\")\n"
                                  "    let big = fs.filter(f => ext(f) == \"csv\")\n"
                                  "    let names = big.map(f => basename(f))\n"
                                  "    let counts = fs.map(count_words)\n"
                                  "    let flat = flatten([counts, counts])\n"
                                  "    return len(flat)\n"
                                  "}\n");
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    uint32_t g = graph_named(p, "f");
    assert_int_equal(node_named(p, g, "fs")->kind, PN_FILES);
    assert_int_equal(node_named(p, g, "big")->kind, PN_FILTER);
    assert_int_equal(node_named(p, g, "names")->kind, PN_MAP);
    assert_int_equal(node_named(p, g, "counts")->kind, PN_EXPAND);
    assert_int_equal(node_named(p, g, "flat")->kind, PN_FLATTEN);
    assert_int_equal(node_named(p, g, "return")->kind, PN_LEN);
    done(&c);
}

static void test_schedule(void **state) {
    (void)state;
    compiled c = compile_text("flow often(at: time) schedule \"*/15 0-6 1,15 jan-jun mon-fri\" {}\n");
    assert_int_equal(c.errors, 0);
    assert_string_equal(plan_str(c.plan, c.plan->graphs[0].schedule),
                        "*/15 0-6 1,15 jan-jun mon-fri");
    assert_int_equal(c.plan->graphs[0].start, PLAN_NONE);
    assert_int_equal(c.plan->graphs[0].tz, PLAN_NONE);
    assert_int_equal(c.plan->graphs[0].watch, PLAN_NONE);
    done(&c);
    /* start, tz and watch are stored; a daily cron line suits a date */
    c = compile_text("flow daily(day: date, root: dir = \"in\") schedule \"30 2 * * *\" "
                     "start 2026-01-01 tz \"Europe/Berlin\" watch root {}\n");
    assert_int_equal(c.errors, 0);
    assert_string_equal(plan_str(c.plan, c.plan->graphs[0].start), "2026-01-01");
    assert_string_equal(plan_str(c.plan, c.plan->graphs[0].tz), "Europe/Berlin");
    assert_int_equal(c.plan->graphs[0].watch, 1);
    done(&c);
    /* the same cron line every 15 minutes on a date flow: refused */
    c = compile_text("flow daily(day: date) schedule \"*/15 2 * * *\" {}\n");
    assert_int_equal(c.errors, 1);
    done(&c);
}

static void test_errors_are_all_reported(void **state) {
    (void)state;
    compiled c = compile_text(LIB "task add(a: int, b: int) -> int = chk.add\n"
                                  "flow f() -> int {\n"
                                  "    let x = add(1)\n"
                                  "    let y = ad(1, 2)\n"
                                  "    let x = add(1, 2)\n"
                                  "    return \"s\"\n"
                                  "}\n");
    assert_null(c.plan);
    assert_int_equal(c.errors, 4);
    done(&c);
}

/* the plan reader (which bounds-checks every index and the dependency order)
 * accepts what the checker lowers */
static void test_plans_read_back(void **state) {
    (void)state;
    const char *srcs[] = {wordcount, combine_src, group_src};
    for (size_t i = 0; i < sizeof srcs / sizeof *srcs; i++) {
        compiled c = compile_text(srcs[i]);
        assert_non_null(c.plan);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(plan_write(c.plan, &buf, &len), 0);
        char err[256] = "";
        fl_plan *back = plan_read(fl_ctx_default(), buf, len, err, sizeof err);
        if (!back) fail_msg("program %zu: %s", i, err);
        assert_int_equal(back->n_nodes, c.plan->n_nodes);
        assert_int_equal(back->n_tasks, c.plan->n_tasks);
        plan_free(back);
        free(buf);
        done(&c);
    }
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* the ELF reader finds defined symbols, and survives truncated and damaged files */
/* Instance names (issue 10, point 5): every call node carries its binding's name. */
static const char *names_src =
    LIB "task add(x: int) -> int = chk.max_of\n"
        "task stage(x: int, name: str) -> int = chk.add\n"
        "group pair(x: int) -> int {\n"
        "    add(x)\n"
        "    return add(x)\n"
        "}\n"
        "flow f(xs: [int]) {\n"
        "    let a = stage.partial(name = \"clean\").expand(x = xs)\n"
        "    let b = stage.partial(name = \"feat\").expand(x = a)\n"
        "    add(1)\n"
        "    add(add(2))\n"
        "    let p = pair(3)\n"
        "    pair(4)\n"
        "    let q = pair.expand(x = xs)\n"
        "}\n";

static void test_instance_names(void **state) {
    (void)state;
    compiled c = compile_text(names_src);
    assert_int_equal(c.errors, 0);
    fl_plan *p = c.plan;
    uint32_t f = graph_named(p, "f"), pair = graph_named(p, "pair");
    assert_int_equal(node_named(p, f, "a")->kind, PN_EXPAND);
    assert_int_equal(node_named(p, f, "b")->kind, PN_EXPAND);
    /* unbound calls: by task, numbered in source order (the inner call comes first) */
    assert_int_equal(node_named(p, f, "add")->kind, PN_CALL);
    assert_int_equal(node_named(p, f, "add#2")->kind, PN_CALL);
    assert_int_equal(node_named(p, f, "add#3")->kind, PN_CALL);
    /* an inlined group call: its binding, then the group's own names */
    node_named(p, f, "p/add");
    node_named(p, f, "p/add#2");
    node_named(p, f, "pair/add");
    node_named(p, f, "pair/add#2");
    assert_int_equal(node_named(p, f, "q")->kind, PN_GROUP_EXPAND);
    node_named(p, pair, "add#2");
    done(&c);
}

static void test_elf_symbols(void **state) {
    (void)state;
    size_t len = 0;
    uint8_t *buf = slurp("tests/lib/libchk.so", &len);
    if (!buf) skip();
    elf_symtab t;
    char err[160];
    assert_int_equal(elf_dynsyms(fl_ctx_default(), buf, len, &t, err, sizeof err), 0);
    assert_true(elf_has(&t, "add"));
    assert_true(elf_has(&t, "count_words"));
    assert_false(elf_has(&t, "no_such_symbol"));
    assert_false(elf_has(&t, "printf")); /* undefined here: imported, not defined */
    elf_symtab_free(&t);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
        elf_dynsyms(fl_ctx_default(), buf, cut, &t, err, sizeof err);
        elf_symtab_free(&t);
    }
    uint32_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        uint8_t *bad = malloc(len);
        memcpy(bad, buf, len);
        for (int k = 0; k < 8; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % (len < 4096 ? len : 4096); /* headers live early */
            bad[at] = (uint8_t)(seed >> 3);
        }
        elf_dynsyms(fl_ctx_default(), bad, len, &t, err, sizeof err);
        elf_symtab_free(&t);
        free(bad);
    }
    assert_int_equal(
        elf_dynsyms(fl_ctx_default(), (const uint8_t *)"#!/bin/sh\n", 10, &t, err, sizeof err), -1);
    assert_string_equal(err, "not an ELF file");
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wordcount),
        cmocka_unit_test(test_library_paths),
        cmocka_unit_test(test_cartesian_axes_in_order_named),
        cmocka_unit_test(test_partial_and_default),
        cmocka_unit_test(test_expand_kwargs_zip),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_map_filter_builtins),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_errors_are_all_reported),
        cmocka_unit_test(test_plans_read_back),
        cmocka_unit_test(test_elf_symbols),
        cmocka_unit_test(test_instance_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
