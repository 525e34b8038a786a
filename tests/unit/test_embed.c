/*
 * test_embed.c — the embedding API of flow.h: a plan made with the builder,
 * written to bytes, opened from the bytes, its tasks bound to functions of
 * this program with flow_program_register, run under both executors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow.h"
#include "plan.h"
#include "rtcore.h"

static int64_t my_triple(int64_t x) {
    return 3 * x;
}
static int64_t my_total(flow_list xs) {
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++)
        s += ((int64_t *)xs.items)[i];
    return s;
}
static int64_t my_picky(int64_t x) {
    if (x == 2) flow_fail("two is not welcome");
    return x;
}
static const char *my_hello(const char *who) {
    char *s = flow_alloc(strlen(who) + 7);
    strcpy(s, "hello ");
    strcat(s, who);
    return s;
}

static uint32_t add_param(fl_plan *p, const char *name, uint32_t type) {
    uint32_t k = PLAN_PUSH(p, params);
    p->params[k].name = plan_intern_str(p, name);
    p->params[k].type = type;
    p->params[k].def = PLAN_NONE;
    p->params[k].loc = PLAN_NONE;
    return k;
}

static uint32_t add_task(fl_plan *p, const char *name, uint32_t lib, uint32_t ptype,
                         uint32_t ret) {
    uint32_t first = p->n_params;
    add_param(p, "x", ptype);
    uint32_t t = PLAN_PUSH(p, tasks);
    plan_task *T = &p->tasks[t];
    T->name = plan_intern_str(p, name);
    T->kind = TK_C;
    T->first_param = first;
    T->nparams = 1;
    T->ret = ret;
    T->lib = lib;
    T->symbol = plan_intern_str(p, name);
    T->cmd = T->first = T->second = T->stitch = PLAN_NONE;
    T->cache = 1;
    T->version = T->run_as = T->image = T->label = PLAN_NONE;
    T->loc = PLAN_NONE;
    return t;
}

static uint32_t add_node(fl_plan *p, uint32_t kind, uint32_t type, uint32_t ref, uint32_t aux,
                         uint32_t arg, uint32_t mode) {
    uint32_t first = p->n_args;
    if (arg != PLAN_NONE) {
        uint32_t a = PLAN_PUSH(p, args);
        p->args[a].node = arg;
        p->args[a].mode = mode;
        p->args[a].aux = 0;
    }
    uint32_t n = PLAN_PUSH(p, nodes);
    plan_node *N = &p->nodes[n];
    N->kind = kind;
    N->type = type;
    N->ref = ref;
    N->aux = aux;
    N->first_arg = first;
    N->nargs = arg != PLAN_NONE;
    N->first_after = p->n_afters;
    N->name = PLAN_NONE;
    N->loc = plan_add_loc(p, 3, 5, 3, 9);
    return n;
}

/* flow sums(n: int) -> int { return total(triple.expand(x = range(n))) }
 * flow picky(n: int) -> [int] { return picky.expand(x = range(n)) }
 * flow greet(who: str) -> str { return hello(who) }
 * tasks bound to "mylib.*", a library that does not exist. hello_as: when not
 * NULL, "image" or "run_as": my_hello declares that option. */
static uint8_t *make_plan_with(size_t *len, const char *hello_as) {
    fl_plan *p = plan_new(fl_ctx_default());
    p->source = plan_intern_str(p, "embed.flow");
    uint32_t ti = plan_type_basic(p, PT_INT), tli = plan_type_list(p, ti);
    uint32_t ts = plan_type_basic(p, PT_STR);
    uint32_t lib = PLAN_PUSH(p, libs);
    p->libs[lib].name = plan_intern_str(p, "mylib");
    p->libs[lib].path = plan_intern_str(p, "libmylib-nowhere.so");
    uint32_t triple = add_task(p, "my_triple", lib, ti, ti);
    uint32_t total = add_task(p, "my_total", lib, tli, ti);
    uint32_t picky = add_task(p, "my_picky", lib, ti, ti);
    uint32_t hello = add_task(p, "my_hello", lib, ts, ts);
    if (hello_as && !strcmp(hello_as, "image"))
        p->tasks[hello].image = plan_intern_str(p, "alpine:3.19");
    else if (hello_as)
        p->tasks[hello].run_as = plan_intern_str(p, "no-such-user-here");
    const char *names[] = {"sums", "picky", "greet"};
    for (int f = 0; f < 3; f++) {
        uint32_t first = p->n_params;
        add_param(p, f == 2 ? "who" : "n", f == 2 ? ts : ti);
        uint32_t g = PLAN_PUSH(p, graphs);
        p->graphs[g].name = plan_intern_str(p, names[f]);
        p->graphs[g].kind = PG_FLOW;
        p->graphs[g].first_param = first;
        p->graphs[g].nparams = 1;
        p->graphs[g].schedule = PLAN_NONE;
        p->graphs[g].start = p->graphs[g].tz = p->graphs[g].watch = PLAN_NONE;
        p->graphs[g].loc = PLAN_NONE;
        p->graphs[g].first_node = p->n_nodes;
        uint32_t par = add_node(p, PN_PARAM, f == 2 ? ts : ti, PLAN_NONE, 0, PLAN_NONE, 0);
        uint32_t ret;
        if (f == 2) {
            ret = add_node(p, PN_CALL, ts, hello, 0, par, PA_SCALAR);
            p->graphs[g].ret = ts;
        } else {
            uint32_t r = add_node(p, PN_RANGE, tli, PLAN_NONE, 0, par, PA_SCALAR);
            uint32_t ex = add_node(p, PN_EXPAND, tli, f == 0 ? triple : picky, 1, r, PA_AXIS);
            ret = f == 0 ? add_node(p, PN_CALL, ti, total, 0, ex, PA_SCALAR) : ex;
            p->graphs[g].ret = f == 0 ? ti : tli;
        }
        p->graphs[g].nnodes = p->n_nodes - p->graphs[g].first_node;
        p->graphs[g].ret_node = ret;
    }
    uint8_t *buf = NULL;
    assert_int_equal(plan_write(p, &buf, len), 0);
    plan_free(p);
    return buf;
}

static uint8_t *make_plan(size_t *len) {
    return make_plan_with(len, NULL);
}

static flow_program *open_registered(void) {
    size_t len;
    uint8_t *bytes = make_plan(&len);
    char err[256];
    flow_program *fp = flow_program_open_bytes(bytes, len, NULL, err, sizeof err);
    free(bytes);
    assert_non_null(fp);
    assert_int_equal(
        flow_program_register(fp, "mylib", "my_triple", (void *)my_triple, err, sizeof err), 0);
    assert_int_equal(
        flow_program_register(fp, "mylib", "my_total", (void *)my_total, err, sizeof err), 0);
    assert_int_equal(
        flow_program_register(fp, "mylib", "my_picky", (void *)my_picky, err, sizeof err), 0);
    assert_int_equal(
        flow_program_register(fp, "mylib", "my_hello", (void *)my_hello, err, sizeof err), 0);
    assert_int_equal(
        flow_program_register(fp, "mylib", "absent", (void *)my_hello, err, sizeof err), -1);
    assert_non_null(strstr(err, "no task of the plan is bound to mylib.absent"));
    return fp;
}

static void test_embed_run(void **state) {
    (void)state;
    const char *executors[] = {"inline", "process"};
    for (int e = 0; e < 2; e++) {
        flow_program *fp = open_registered();
        char err[256];
        flow_run_options o = {0};
        o.executor = executors[e];
        o.jobs = 2;
        o.quiet = 1;
        flow_outcome *out;
        /* several flows: a run without a selection is an error (2) */
        assert_int_equal(flow_program_run(fp, &o, &out), 2);
        flow_outcome_free(out);
        assert_int_equal(flow_program_select(fp, "sums", err, sizeof err), 0);
        assert_int_equal(flow_program_set_int(fp, "n", 5, err, sizeof err), 0);
        assert_int_equal(flow_program_set_param(fp, "n", "five", err, sizeof err), -1);
        assert_non_null(strstr(err, "parameter 'n' (int)"));
        assert_int_equal(flow_program_run(fp, &o, &out), 0);
        assert_string_equal(flow_outcome_json(out), "30");
        int64_t v = 0;
        assert_int_equal(flow_outcome_int(out, &v), 0);
        assert_int_equal(v, 30);
        assert_null(flow_outcome_str(out));
        flow_outcome_free(out);

        /* a failing task: code 1, the summary in the outcome */
        assert_int_equal(flow_program_select(fp, "picky", err, sizeof err), 0);
        assert_int_equal(flow_program_set_int(fp, "n", 4, err, sizeof err), 0);
        assert_int_equal(flow_program_run(fp, &o, &out), 1);
        assert_non_null(
            strstr(flow_outcome_error(out), "my_picky[2]: two is not welcome (embed.flow:3:5)"));
        assert_string_equal(flow_outcome_json(out), "");
        flow_outcome_free(out);

        /* a missing parameter: code 2 */
        assert_int_equal(flow_program_select(fp, "greet", err, sizeof err), 0);
        assert_int_equal(flow_program_run(fp, &o, &out), 2);
        assert_non_null(strstr(flow_outcome_error(out), "missing parameter 'who'"));
        flow_outcome_free(out);
        assert_int_equal(flow_program_set_str(fp, "who", "embedder", err, sizeof err), 0);
        assert_int_equal(flow_program_run(fp, &o, &out), 0);
        assert_string_equal(flow_outcome_str(out), "hello embedder");
        assert_string_equal(flow_outcome_json(out), "\"hello embedder\"");
        flow_outcome_free(out);
        flow_program_close(fp);
    }
}

static void test_embed_errors(void **state) {
    (void)state;
    char err[256];
    assert_null(flow_program_open("/nonexistent/x.plan", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.plan"));
    uint8_t junk[64] = {1, 2, 3};
    assert_null(flow_program_open_bytes(junk, sizeof junk, NULL, err, sizeof err));
    /* no registration: the library cannot be found, a clear error (2) */
    size_t len;
    uint8_t *bytes = make_plan(&len);
    flow_program *fp = flow_program_open_bytes(bytes, len, NULL, err, sizeof err);
    free(bytes);
    assert_non_null(fp);
    assert_int_equal(flow_program_select(fp, "sums", err, sizeof err), 0);
    flow_run_options o = {0};
    o.quiet = 1;
    flow_outcome *out;
    assert_int_equal(flow_program_run(fp, &o, &out), 2);
    assert_non_null(strstr(flow_outcome_error(out), "mylib"));
    flow_outcome_free(out);
    flow_program_close(fp);
}

/* The typed setters check the declared type at once (docs/runtime-abi.md):
 * a wrong type or an unknown name is -1 and one line, and changes nothing. */
static void test_embed_typed_setters(void **state) {
    (void)state;
    flow_program *fp = open_registered();
    char err[256];
    assert_int_equal(flow_program_select(fp, "greet", err, sizeof err), 0);
    err[0] = 0;
    assert_int_equal(flow_program_set_int(fp, "who", 3, err, sizeof err), -1);
    assert_string_equal(err, "parameter 'who' of flow greet is a str, not an int "
                             "(flow_program_set_int)");
    assert_int_equal(flow_program_set_float(fp, "who", 1.5, err, sizeof err), -1);
    assert_non_null(strstr(err, "'who' of flow greet is a str, not a float"));
    assert_int_equal(flow_program_set_bool(fp, "who", true, err, sizeof err), -1);
    assert_non_null(strstr(err, "'who' of flow greet is a str, not a bool"));
    assert_int_equal(flow_program_set_str(fp, "nobody", "x", err, sizeof err), -1);
    assert_string_equal(err, "unknown parameter 'nobody' for flow greet");
    assert_int_equal(flow_program_set_int(fp, "nobody", 1, err, sizeof err), -1);
    assert_string_equal(err, "unknown parameter 'nobody' for flow greet");
    assert_int_equal(flow_program_set_str(fp, "who", NULL, err, sizeof err), -1);
    /* nothing was set by the refused calls: still missing */
    flow_run_options o = {0};
    o.quiet = 1;
    flow_outcome *out;
    assert_int_equal(flow_program_run(fp, &o, &out), 2);
    assert_non_null(strstr(flow_outcome_error(out), "missing parameter 'who'"));
    flow_outcome_free(out);
    assert_int_equal(flow_program_select(fp, "sums", err, sizeof err), 0);
    assert_int_equal(flow_program_set_str(fp, "n", "4", err, sizeof err), -1);
    assert_string_equal(err, "parameter 'n' of flow sums is an int, not a str "
                             "(flow_program_set_str)");
    assert_int_equal(flow_program_set_float(fp, "n", 4.0, err, sizeof err), -1);
    assert_int_equal(flow_program_set_int(fp, "n", 4, err, sizeof err), 0);
    assert_int_equal(flow_program_set_param(fp, "n", "4", err, sizeof err), 0); /* text: parsed */
    assert_int_equal(flow_program_run(fp, &o, &out), 0);
    assert_string_equal(flow_outcome_json(out), "18");
    flow_outcome_free(out);
    flow_program_close(fp);
}

/* A run reaching a task whose image or run_as cannot be honoured is refused
 * (code 2, one line naming the task and the option) before any task runs. */
static void test_embed_refuses(void **state) {
    (void)state;
    const char *opts[] = {"image", "run_as"};
    for (int k = 0; k < 2; k++) {
        size_t len;
        uint8_t *bytes = make_plan_with(&len, opts[k]);
        char err[256];
        flow_program *fp = flow_program_open_bytes(bytes, len, NULL, err, sizeof err);
        free(bytes);
        assert_non_null(fp);
        assert_int_equal(
            flow_program_register(fp, "mylib", "my_hello", (void *)my_hello, err, sizeof err), 0);
        assert_int_equal(flow_program_select(fp, "greet", err, sizeof err), 0);
        assert_int_equal(flow_program_set_str(fp, "who", "x", err, sizeof err), 0);
        flow_run_options o = {0};
        o.quiet = 1;
        o.executor = "inline";
        flow_outcome *out;
        assert_int_equal(flow_program_run(fp, &o, &out), 2);
        char want[64];
        snprintf(want, sizeof want, "task 'my_hello' declares %s", opts[k]);
        assert_non_null(strstr(flow_outcome_error(out), want));
        assert_string_equal(flow_outcome_json(out), "");
        flow_outcome_free(out);
        flow_program_close(fp);
    }
}

/* The log callback: collects the lines it is given. */
static void collect_line(void *ud, const char *line) {
    char *buf = ud;
    size_t n = strlen(buf);
    snprintf(buf + n, 1024 - n, "%s\n", line);
}

/* An allocation that fails inside a run comes back as code 2 and "out of memory";
 * the program and the process go on (the same program runs again, another opens
 * and runs). A run that is not quiet sends its failure summary to the log
 * callback, a quiet one does not. */
static void test_embed_oom(void **state) {
    (void)state;
    if (getenv("SANITIZED")) skip(); /* ASan's allocator: no fail-the-Nth there */
    flow_program *fp = open_registered();
    char err[256];
    flow_run_options o = {0};
    o.jobs = 1;
    o.quiet = 1;
    assert_int_equal(flow_program_select(fp, "sums", err, sizeof err), 0);
    assert_int_equal(flow_program_set_int(fp, "n", 5, err, sizeof err), 0);
    fl_ctx *c = embed_ctx(fp);
    c->nalloc = 0;
    c->fail_at = 1; /* the run's first allocation */
    flow_outcome *out;
    assert_int_equal(flow_program_run(fp, &o, &out), 2);
    assert_non_null(out);
    assert_non_null(strstr(flow_outcome_error(out), "out of memory"));
    flow_outcome_free(out);
    c->fail_at = 0;
    assert_int_equal(flow_program_run(fp, &o, &out), 0);
    assert_string_equal(flow_outcome_json(out), "30");
    flow_outcome_free(out);

    /* a parameter that cannot be stored: -1 and the reason, nothing set */
    c->nalloc = 0;
    c->fail_at = 1;
    assert_int_equal(flow_program_set_param(fp, "n", "6", err, sizeof err), -1);
    assert_non_null(strstr(err, "out of memory"));
    c->fail_at = 0;

    /* the log: the failure summary of a run that is not quiet, and only then */
    char lines[1024] = "";
    flow_program_set_log(fp, collect_line, lines);
    assert_int_equal(flow_program_select(fp, "picky", err, sizeof err), 0);
    assert_int_equal(flow_program_set_int(fp, "n", 4, err, sizeof err), 0);
    assert_int_equal(flow_program_run(fp, &o, &out), 1);
    flow_outcome_free(out);
    assert_string_equal(lines, "");
    o.quiet = 0;
    assert_int_equal(flow_program_run(fp, &o, &out), 1);
    flow_outcome_free(out);
    assert_non_null(strstr(lines, "two is not welcome"));
    flow_program_close(fp);

    flow_program *again = open_registered();
    assert_int_equal(flow_program_select(again, "sums", err, sizeof err), 0);
    assert_int_equal(flow_program_set_int(again, "n", 3, err, sizeof err), 0);
    o.quiet = 1;
    assert_int_equal(flow_program_run(again, &o, &out), 0);
    assert_string_equal(flow_outcome_json(out), "9");
    flow_outcome_free(out);
    flow_program_close(again);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_typed_setters),
        cmocka_unit_test(test_embed_refuses),
        cmocka_unit_test(test_embed_run),
        cmocka_unit_test(test_embed_errors),
        cmocka_unit_test(test_embed_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
