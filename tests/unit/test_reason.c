/*
 * test_reason.c — the reason engine (reason.h) over a real history: a first run
 * records instances through the recorder (history.c), exactly as the scheduler
 * would; then a dry history (hist_opts.dry_run) looks the changed instances up,
 * misses, and the engine says why: no entry, input `b` changed (and no other), the
 * code changed (`version`), file metadata changed (a file not hashed under
 * --dry-run) versus input changed (hashed under --exact), and rsn_compare on its
 * own (equal parts, an entry with no parts).
 *
 * The plan is made with the plan builder (no compiler): C tasks with a version, so
 * that their identity needs no library, add3(a, b, c: int) -> int and
 * size(a: path) -> int.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"
#include "reason.h"
#include "walk.h"

typedef struct fx {
    fl_plan *p;
    uint32_t t_int, t_path, add3, size;
    char root[64], state[128], file[128];
} fx;

static uint32_t add_task(fl_plan *p, const char *name, uint32_t param, int nparams, uint32_t ret) {
    uint32_t first = PLAN_NONE;
    for (int i = 0; i < nparams; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        if (!i) first = k;
        const char *nm[] = {"a", "b", "c"};
        p->params[k] = (plan_param){.name = plan_intern_str(p, nm[i]), .type = param,
                                    .def = PLAN_NONE, .loc = PLAN_NONE};
    }
    uint32_t t = PLAN_PUSH(p, tasks);
    plan_task *T = &p->tasks[t];
    T->name = plan_intern_str(p, name);
    T->kind = TK_C;
    T->first_param = first;
    T->nparams = (uint32_t)nparams;
    T->ret = ret;
    T->lib = PLAN_NONE;
    T->symbol = plan_intern_str(p, name);
    T->version = plan_intern_str(p, "1");
    T->cmd = T->first = T->second = T->stitch = PLAN_NONE;
    T->run_as = T->image = T->label = T->loc = PLAN_NONE;
    T->cache = 1;
    return t;
}

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->p = plan_new(fl_ctx_default());
    f->p->source = plan_intern_str(f->p, "t.flow");
    f->t_int = plan_type_basic(f->p, PT_INT);
    f->t_path = plan_type_basic(f->p, PT_PATH);
    f->add3 = add_task(f->p, "add3", f->t_int, 3, f->t_int);
    f->size = add_task(f->p, "size", f->t_path, 1, f->t_int);
    strcpy(f->root, "/tmp/flow-reason-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->state, sizeof f->state, "%s/state", f->root);
    snprintf(f->file, sizeof f->file, "%s/in.txt", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    walk_remove_path(f->root);
    plan_free(f->p);
    free(f);
    return 0;
}

static hist *open_hist(fx *f, int dry) {
    hist_opts o = {.plan = f->p, .state_dir = f->state, .flow = "t", .env = "prod",
                   .params_json = "{}", .options = "", .dry_run = dry};
    char err[512] = "";
    hist *h = hist_open(&o, err, sizeof err);
    if (!h) fail_msg("hist_open: %s", err);
    return h;
}

static rec_inst inst(uint32_t task, const char *idx, const char *tmpl) {
    return (rec_inst){.node = task, .task = task, .idx = idx, .tmpl = tmpl, .attempts = 1,
                      .remaining = 1};
}

/* A run of the flow that runs instance (task, idx) on args: looked up, a miss, done. */
static void record(fx *f, uint32_t task, const char *idx, const char *tmpl, const fl_val *args) {
    hist *h = open_hist(f, 0);
    recorder r = hist_recorder(h);
    rec_inst ii = inst(task, idx, tmpl);
    fl_val out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    rt_result res = {.ok = 1, .value = {.i = 7}, .start = 1, .end = 2, .worker_pid = getpid()};
    r.ops->finished(r.self, &ii, args, &res, 0);
    assert_int_equal(r.ops->sync(r.self), 0);
    assert_int_equal(hist_close(h, "succeeded", 0, NULL, NULL), 0);
}

/* Under a dry history: the lookup misses and the engine says why. */
static void explain(fx *f, int dry, uint32_t task, const char *idx, const char *tmpl,
                    const fl_val *args, rsn_reason *why) {
    hist *h = open_hist(f, dry);
    recorder r = hist_recorder(h);
    rec_inst ii = inst(task, idx, tmpl);
    fl_val out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    rsn_ctx *e = rsn_open(f->p->ctx, f->p, hist_state(h), hist_ck(h), "t");
    assert_non_null(e);
    rsn_explain(e, &ii, args, why);
    rsn_close(e);
    assert_int_equal(hist_close(h, NULL, 0, NULL, NULL), 0);
}

static void test_no_entry_then_input_changed(void **state) {
    fx *f = *state;
    fl_val a1[3] = {{.i = 1}, {.i = 2}, {.i = 3}}, a2[3] = {{.i = 1}, {.i = 5}, {.i = 3}};
    rsn_reason why;
    explain(f, 1, f->add3, "0", "add3[]", a1, &why); /* nothing recorded yet */
    assert_int_equal(why.kind, RSN_NO_ENTRY);
    assert_int_equal(why.prev_run, 0);
    record(f, f->add3, "0", "add3[]", a1);
    explain(f, 1, f->add3, "0", "add3[]", a2, &why);
    assert_int_equal(why.kind, RSN_INPUT);
    assert_int_equal(why.param, 1); /* b, and not a or c */
    assert_true(why.prev_run > 0);
    assert_non_null(strstr(why.text, "input `b` changed"));
    /* two arguments changed: the first is the answer, the other named with it */
    fl_val a3[3] = {{.i = 1}, {.i = 5}, {.i = 4}};
    explain(f, 1, f->add3, "0", "add3[]", a3, &why);
    assert_int_equal(why.kind, RSN_INPUT);
    assert_int_equal(why.param, 1);
    assert_string_equal(why.text, "input `b` changed, and `c`");
    /* another instance (index 1) has no earlier record */
    explain(f, 1, f->add3, "1", "add3[]", a2, &why);
    assert_int_equal(why.kind, RSN_NO_ENTRY);
}

static void test_code_changed(void **state) {
    fx *f = *state;
    fl_val a[3] = {{.i = 1}, {.i = 2}, {.i = 3}};
    record(f, f->add3, "", "add3", a);
    f->p->tasks[f->add3].version = plan_intern_str(f->p, "2");
    rsn_reason why;
    explain(f, 1, f->add3, "", "add3", a, &why);
    assert_int_equal(why.kind, RSN_CODE);
    assert_non_null(strstr(why.text, "`version` (now \"2\")"));
}

static void test_file_metadata_versus_exact(void **state) {
    fx *f = *state;
    FILE *fp = fopen(f->file, "w");
    assert_non_null(fp);
    fputs("one\n", fp);
    fclose(fp);
    fl_val a[1] = {fv_str_cstr(f->p, f->t_path, f->file)};
    record(f, f->size, "", "size", a);
    fp = fopen(f->file, "a"); /* its size changes */
    fputs("two\n", fp);
    fclose(fp);
    rsn_reason why;
    explain(f, 1, f->size, "", "size", a, &why); /* --dry-run: not hashed */
    assert_int_equal(why.kind, RSN_FILE_META);
    assert_int_equal(why.param, 0);
    assert_non_null(strstr(why.text, f->file));
    explain(f, 2, f->size, "", "size", a, &why); /* --exact: hashed, compared */
    assert_int_equal(why.kind, RSN_INPUT);
    assert_non_null(strstr(why.text, f->file));
    /* --exact noted nothing in the file index: a second dry run still cannot tell */
    explain(f, 1, f->size, "", "size", a, &why);
    assert_int_equal(why.kind, RSN_FILE_META);
    fv_decref(f->p, f->t_path, a[0]);
    /* a file never hashed, at the same instance: a new file, not "changed" */
    char other[160];
    snprintf(other, sizeof other, "%s/other.txt", f->root);
    fp = fopen(other, "w");
    fputs("x\n", fp);
    fclose(fp);
    a[0] = fv_str_cstr(f->p, f->t_path, other);
    explain(f, 2, f->size, "", "size", a, &why);
    assert_int_equal(why.kind, RSN_NEW_FILE);
    assert_non_null(strstr(why.text, "other.txt"));
    fv_decref(f->p, f->t_path, a[0]);
}

/* The `why` path: the entry an instance of run 2 wrote, compared with the one it had
 * in an older run (rsn_before with `before`). */
static void test_before_a_run(void **state) {
    fx *f = *state;
    fl_val a1[3] = {{.i = 1}, {.i = 2}, {.i = 3}}, a2[3] = {{.i = 1}, {.i = 2}, {.i = 9}};
    record(f, f->add3, "4", "add3[]", a1);
    record(f, f->add3, "4", "add3[]", a2);
    hist *h = open_hist(f, 1);
    rsn_ctx *e = rsn_open(f->p->ctx, f->p, hist_state(h), hist_ck(h), "t");
    state_cache_entry now, then;
    int64_t run_now = 0, run_then = 0;
    assert_int_equal(rsn_before(e, "add3", "add3[]", "4", 0, &now, &run_now), 1);
    assert_int_equal(rsn_before(e, "add3", "add3[]", "4", run_now, &then, &run_then), 1);
    assert_true(run_then < run_now);
    fl_free(state_ctx(hist_state(h)), then.val);
    int64_t oldest = run_then;
    assert_int_equal(rsn_before(e, "add3", "add3[]", "4", oldest, &then, &run_then), 0);
    assert_int_equal(rsn_before(e, "add3", "add3[]", "4", run_now, &then, &run_then), 1);
    rsn_parts pn = {now.identity, now.ninputs, now.inputs}, pt = {then.identity, then.ninputs,
                                                                  then.inputs};
    rsn_reason why;
    rsn_compare(e, f->add3, &pn, &pt, &why);
    assert_int_equal(why.kind, RSN_INPUT);
    assert_int_equal(why.param, 2); /* c: 3 -> 9 */
    fl_free(state_ctx(hist_state(h)), now.val);
    fl_free(state_ctx(hist_state(h)), then.val);
    rsn_close(e);
    assert_int_equal(hist_close(h, NULL, 0, NULL, NULL), 0);
}

static void test_compare(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 1);
    rsn_ctx *e = rsn_open(f->p->ctx, f->p, hist_state(h), hist_ck(h), "t");
    uint64_t x[3] = {1, 2, 3}, y[3] = {1, 2, 4};
    rsn_parts now = {9, 3, x}, same = {9, 3, x}, other = {9, 3, y}, none = {0, 0, NULL};
    rsn_reason why;
    rsn_compare(e, f->add3, &now, &same, &why);
    assert_int_equal(why.kind, RSN_NO_ENTRY);
    rsn_compare(e, f->add3, &now, &other, &why);
    assert_int_equal(why.kind, RSN_INPUT);
    assert_int_equal(why.param, 2);
    rsn_compare(e, f->add3, &now, &none, &why);
    assert_int_equal(why.kind, RSN_UNKNOWN);
    assert_string_equal(rsn_kind_name(RSN_FILE_META), "file_metadata_changed");
    rsn_close(e);
    assert_int_equal(hist_close(h, NULL, 0, NULL, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_entry_then_input_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_metadata_versus_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_a_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
