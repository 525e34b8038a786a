/* test_cachekey.c — instance cache keys: what changes them and what does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cachekey.h"

typedef struct fixture {
    fl_plan *p;
    uint32_t task, t_path, t_int;
    char dir[64];
    fl_state *st;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->p = plan_new(fl_ctx_default());
    fl_plan *p = f->p;
    f->t_path = plan_type_basic(p, PT_PATH);
    f->t_int = plan_type_basic(p, PT_INT);
    uint32_t lib = PLAN_PUSH(p, libs);
    p->libs[lib].name = plan_intern_str(p, "wc");
    p->libs[lib].path = plan_intern_str(p, "libwc.so");
    memset(p->libs[lib].sha256, 7, 32);
    uint32_t first = p->n_params;
    const char *names[] = {"file", "n"};
    uint32_t types[] = {f->t_path, f->t_int};
    for (int i = 0; i < 2; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        p->params[k] = (plan_param){plan_intern_str(p, names[i]), types[i], PLAN_NONE, 0};
    }
    f->task = PLAN_PUSH(p, tasks);
    plan_task *t = &p->tasks[f->task];
    t->name = plan_intern_str(p, "count");
    t->kind = TK_C;
    t->first_param = first;
    t->nparams = 2;
    t->ret = f->t_int;
    t->lib = lib;
    t->symbol = plan_intern_str(p, "count_words");
    t->version = t->run_as = t->image = t->label = t->cmd = t->stitch = PLAN_NONE;
    t->cache = 1;
    strcpy(f->dir, "/tmp/flow-ck-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    f->st = state_open(fl_ctx_default(), f->dir, err, sizeof err);
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    state_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd)) return -1;
    plan_free(f->p);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static fl_digest key(fixture *f, ck_ctx *cx, const char *path, int64_t n) {
    fl_val args[2];
    args[0] = fv_str_cstr(f->p, f->t_path, path);
    args[1].i = n;
    fl_digest h;
    char err[256];
    assert_int_equal(ck_instance_key(cx, f->task, args, &h, err, sizeof err), 0);
    fv_decref(f->p, f->t_path, args[0]);
    return h;
}

static void test_key_follows_content(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/a.txt", f->dir);
    write_file(path, "one two three\n");
    ck_ctx cx = {.plan = f->p, .state = f->st};
    fl_digest k1 = key(f, &cx, path, 5);
    fl_digest k2 = key(f, &cx, path, 5);
    assert_memory_equal(k1.b, k2.b, 32);
    assert_int_equal(cx.files_hashed, 1); /* second time: recognised by the index */
    assert_int_equal(cx.files_known, 1);
    fl_digest k3 = key(f, &cx, path, 6); /* another value */
    assert_memory_not_equal(k1.b, k3.b, 32);
    usleep(20000);
    write_file(path, "one two four\n"); /* another content */
    fl_digest k4 = key(f, &cx, path, 5);
    assert_memory_not_equal(k1.b, k4.b, 32);
    assert_int_equal(cx.files_hashed, 2);
    usleep(20000);
    write_file(path, "one two three\n"); /* back to the first content, new mtime */
    fl_digest k5 = key(f, &cx, path, 5);
    assert_memory_equal(k1.b, k5.b, 32);
    ck_free(&cx);
}

static void test_key_follows_identity(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/b.txt", f->dir);
    write_file(path, "x");
    ck_ctx cx = {.plan = f->p};
    fl_digest k1 = key(f, &cx, path, 1);
    fl_digest libs[1];
    memset(libs[0].b, 9, 32); /* a rebuilt library */
    ck_ctx cx2 = {.plan = f->p, .lib_hash = libs};
    fl_digest k2 = key(f, &cx2, path, 1);
    assert_memory_not_equal(k1.b, k2.b, 32);
    /* with a version, the library's hash no longer matters (a task's identity is
     * computed once per context, so new contexts see the changed plan) */
    f->p->tasks[f->task].version = plan_intern_str(f->p, "2");
    ck_ctx cx3 = {.plan = f->p}, cx4 = {.plan = f->p, .lib_hash = libs};
    fl_digest k3 = key(f, &cx3, path, 1);
    fl_digest k4 = key(f, &cx4, path, 1);
    assert_memory_equal(k3.b, k4.b, 32);
    assert_memory_not_equal(k1.b, k3.b, 32);
    f->p->tasks[f->task].version = PLAN_NONE;
    ck_free(&cx);
    ck_free(&cx2);
    ck_free(&cx3);
    ck_free(&cx4);
}

static void test_missing_input_file(void **state) {
    fixture *f = *state;
    ck_ctx cx = {.plan = f->p, .state = f->st};
    fl_val args[2] = {fv_str_cstr(f->p, f->t_path, "/nonexistent/file"), {.i = 1}};
    fl_digest h;
    char err[256];
    assert_int_equal(ck_instance_key(&cx, f->task, args, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/file"));
    fv_decref(f->p, f->t_path, args[0]);
    ck_free(&cx);
}

static void test_dir_manifest_matches_store(void **state) {
    fixture *f = *state;
    char d[128], p1[160], err[256];
    snprintf(d, sizeof d, "%s/tree", f->dir);
    mkdir(d, 0755);
    snprintf(p1, sizeof p1, "%s/x.csv", d);
    write_file(p1, "a,b\n");
    ck_ctx cx = {.plan = f->p, .state = f->st};
    fl_digest h1, h2;
    assert_int_equal(ck_dir_hash(&cx, d, &h1, err, sizeof err), 0);
    fl_store *store = store_open(fl_ctx_default(), f->dir, err, sizeof err);
    assert_int_equal(store_put_dir(store, d, 0, &h2, err, sizeof err), 0);
    assert_memory_equal(h1.b, h2.b, 32); /* a stored dir and a referenced one agree */
    store_close(store);
    ck_free(&cx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_follows_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_follows_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_input_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_manifest_matches_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
