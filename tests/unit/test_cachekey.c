/* test_cachekey.c — instance cache keys: what changes them and what does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
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

/* ck_file_hash keeps the folder of the files it is asked about open (fstatat by
 * name): same names in two folders, a file changed in the folder kept open, a file
 * gone from it, and a relative path without a folder, all as with stat(). */
static void test_files_in_a_kept_folder(void **state) {
    fixture *f = *state;
    char a[128], b[128], ax[160], ay[160], bx[160];
    snprintf(a, sizeof a, "%s/a", f->dir);
    snprintf(b, sizeof b, "%s/b", f->dir);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    snprintf(ax, sizeof ax, "%s/x", a);
    snprintf(ay, sizeof ay, "%s/y", a);
    snprintf(bx, sizeof bx, "%s/x", b);
    write_file(ax, "in a\n");
    write_file(ay, "also in a\n");
    write_file(bx, "in b\n");
    ck_ctx cx = {.plan = f->p, .state = f->st};
    fl_digest kax = key(f, &cx, ax, 1), kay = key(f, &cx, ay, 1); /* a/ is kept open */
    fl_digest kbx = key(f, &cx, bx, 1);
    assert_memory_not_equal(kax.b, kbx.b, 32); /* x of b/, not x of a/ */
    assert_memory_not_equal(kax.b, kay.b, 32);
    fl_digest kbx2 = key(f, &cx, bx, 1); /* b/ kept now */
    assert_memory_equal(kbx.b, kbx2.b, 32);
    fl_digest kax2 = key(f, &cx, ax, 1), kay2 = key(f, &cx, ay, 1);
    assert_memory_equal(kax.b, kax2.b, 32);
    assert_memory_equal(kay.b, kay2.b, 32);
    assert_int_equal(cx.files_hashed, 3); /* each identity seen through the kept folder */
    assert_int_equal(cx.files_known, 3);  /* is the file's own: recognised, not read */
    usleep(20000);
    write_file(ay, "changed\n"); /* while a/ is open */
    fl_digest kay3 = key(f, &cx, ay, 1);
    assert_memory_not_equal(kay.b, kay3.b, 32);
    assert_int_equal(unlink(ax), 0);
    fl_val args[2] = {fv_str_cstr(f->p, f->t_path, ax), {.i = 1}};
    fl_digest h;
    char err[256];
    assert_int_equal(ck_instance_key(&cx, f->task, args, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, ax));
    fv_decref(f->p, f->t_path, args[0]);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(b), 0);
    fl_digest krel = key(f, &cx, "x", 1); /* no folder in the path: stat() */
    write_file("x", "changed in b\n");
    ck_ctx cx2 = {.plan = f->p};
    fl_digest krel2 = key(f, &cx2, "x", 1), krel3 = key(f, &cx, "x", 1);
    assert_int_equal(chdir(cwd), 0);
    assert_memory_not_equal(krel.b, krel2.b, 32);
    assert_memory_equal(krel2.b, krel3.b, 32);
    ck_free(&cx2);
    ck_free(&cx);
    assert_int_equal(cx.dir_open, 0);
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

/* ---- key stability: the bytes of a key are a format ----
 * Caches written by earlier flowruns are found only if every key comes out bit
 * for bit the same. Two checks, independent of each other: keys of fixed inputs
 * against digests recorded from the first implementation (one EVP update per
 * field), and a key against SHA-256 over the bytes cachekey.h documents, laid out
 * here by hand. */

/* A task mix(n: int, s: str, xs: [float], flag: bool) -> int in f's plan. */
static uint32_t add_mix(fixture *f) {
    fl_plan *p = f->p;
    uint32_t t_str = plan_type_basic(p, PT_STR), t_bool = plan_type_basic(p, PT_BOOL);
    uint32_t t_fl = plan_type_list(p, plan_type_basic(p, PT_FLOAT));
    uint32_t first = p->n_params;
    const char *names[] = {"n", "s", "xs", "flag"};
    uint32_t types[] = {f->t_int, t_str, t_fl, t_bool};
    for (int i = 0; i < 4; i++) {
        uint32_t k = PLAN_PUSH(p, params);
        p->params[k] = (plan_param){plan_intern_str(p, names[i]), types[i], PLAN_NONE, 0};
    }
    uint32_t task = PLAN_PUSH(p, tasks);
    plan_task *t = &p->tasks[task];
    *t = p->tasks[f->task];
    t->name = plan_intern_str(p, "mix");
    t->symbol = plan_intern_str(p, "mix");
    t->first_param = first;
    t->nparams = 4;
    return task;
}

static void mix_key(fixture *f, ck_ctx *cx, uint32_t task, int64_t n, const char *s,
                    const double *xs, int nx, int flag, char hex[65]) {
    fl_plan *p = f->p;
    const plan_task *t = &p->tasks[task];
    fl_val args[4];
    args[0].i = n;
    args[1] = fv_str_cstr(p, p->params[t->first_param + 1].type, s);
    uint32_t t_fl = p->params[t->first_param + 2].type;
    args[2] = fv_list_new(p, t_fl, nx);
    for (int i = 0; i < nx; i++) fv_as_list(args[2])->items[i].f = xs[i];
    args[3].i = flag;
    fl_digest h;
    char err[256];
    assert_int_equal(ck_instance_key(cx, task, args, &h, err, sizeof err), 0);
    hash_hex(&h, hex);
    fv_decref(p, p->params[t->first_param + 1].type, args[1]);
    fv_decref(p, t_fl, args[2]);
}

static void test_key_bytes_are_stable(void **state) {
    fixture *f = *state;
    uint32_t task = add_mix(f);
    ck_ctx cx = {.plan = f->p};
    char hex[65];
    const double xs[] = {0.5, -2.25, 1e300};
    mix_key(f, &cx, task, 0, "", NULL, 0, 0, hex);
    assert_string_equal(hex, "eb7bae7866a771829976025b6e97c11e2ba55cb197e3c80537f43a4b8680d82b");
    mix_key(f, &cx, task, -5, "hello, world", xs, 3, 1, hex);
    assert_string_equal(hex, "80cdb9f1568d404042b7a9755d24745d072406e4b8817d028b69bcae8b6ac63c");
    mix_key(f, &cx, task, INT64_MAX, "\xc3\xa9t\xc3\xa9", xs, 1, 1, hex);
    assert_string_equal(hex, "debb6a54861ec0b5fbdaaec1102257d4f32a1b4aafb604bc24890ef97f2db0e8");
    ck_free(&cx);
}

/* A time enters the key by its text, as a date does: the same instant gives the
 * same key, another instant another key. */
static void test_key_of_time(void **state) {
    fixture *f = *state;
    uint32_t task = add_mix(f);
    fl_plan *p = f->p;
    p->params[p->tasks[task].first_param + 1].type = plan_type_basic(p, PT_TIME);
    ck_ctx cx = {.plan = p};
    char a[65], b[65], c[65];
    mix_key(f, &cx, task, 1, "2026-01-31T13:00:00Z", NULL, 0, 0, a);
    mix_key(f, &cx, task, 1, "2026-01-31T13:00:00Z", NULL, 0, 0, b);
    mix_key(f, &cx, task, 1, "2026-01-31T13:00:01Z", NULL, 0, 0, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    ck_free(&cx);
}

/* the documented layout, byte by byte (cachekey.h) */
typedef struct kb {
    uint8_t b[1024];
    size_t n;
} kb;
static void kb_put(kb *k, const void *p, size_t n) {
    assert_true(k->n + n <= sizeof k->b);
    memcpy(k->b + k->n, p, n);
    k->n += n;
}
static void kb_u64(kb *k, uint64_t v) {
    for (int i = 0; i < 8; i++) k->b[k->n++] = (uint8_t)(v >> (8 * i));
}
static void kb_str(kb *k, const char *s) {
    kb_u64(k, strlen(s));
    kb_put(k, s, strlen(s));
}

/* The identity of a C task of the fixture's library (its hash: 32 bytes of 7), by
 * the documented layout: the tag, the kind, the type texts (parameters, then the
 * result), the symbol, the library hash. */
static void c_ident(const char *const *sig, int n, const char *symbol, fl_digest *out) {
    kb id = {0};
    kb_str(&id, "flow-instance-key-1");
    kb_u64(&id, TK_C);
    for (int i = 0; i < n; i++) kb_str(&id, sig[i]);
    kb_str(&id, symbol);
    uint8_t lib[32];
    memset(lib, 7, 32);
    kb_put(&id, lib, 32);
    hash_bytes(id.b, id.n, out);
}

static void test_key_is_documented_bytes(void **state) {
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/c.txt", f->dir);
    write_file(path, "some content\n");
    ck_ctx cx = {.plan = f->p};
    fl_digest got = key(f, &cx, path, 42);
    /* the task's identity: tag, kind, signature, symbol, library hash */
    const char *sig[] = {"path", "int", "int"};
    fl_digest ident;
    c_ident(sig, 3, "count_words", &ident);
    /* the instance: identity, then the path's name and content hash, then n */
    kb k = {0};
    kb_put(&k, ident.b, 32);
    kb_str(&k, path);
    fl_digest content;
    hash_bytes("some content\n", 13, &content);
    kb_put(&k, content.b, 32);
    kb_u64(&k, 42);
    fl_digest want;
    hash_bytes(k.b, k.n, &want);
    assert_memory_equal(got.b, want.b, 32);
    ck_free(&cx);
}

/* ck_path_part gives a `path` argument the part ck_arg_part gives it, from the name and
 * the content hash alone; and the file-identity index hands back (state_files_each)
 * the path and hash it noted, so `flowrun why` finds the file of a part. */
static int take_file(const char *path, const fl_digest *h, void *ctx) {
    void **out = ctx;
    if (strcmp(path, out[0])) return 0;
    *(fl_digest *)out[1] = *h;
    return 1;
}

static void test_path_part_from_the_index(void **state) {
    fixture *f = *state;
    char path[128], other[128];
    snprintf(path, sizeof path, "%s/a.txt", f->dir);
    snprintf(other, sizeof other, "%s/b.txt", f->dir);
    write_file(path, "one two three\n");
    write_file(other, "something else\n");
    ck_ctx cx = {.plan = f->p, .state = f->st};
    char err[256];
    uint64_t part, part_b, from_hash, from_index = 0;
    fl_val v = fv_str_cstr(f->p, f->t_path, path);
    assert_int_equal(ck_arg_part(&cx, f->t_path, v, &part, err, sizeof err), 0);
    fv_decref(f->p, f->t_path, v);
    v = fv_str_cstr(f->p, f->t_path, other);
    assert_int_equal(ck_arg_part(&cx, f->t_path, v, &part_b, err, sizeof err), 0);
    fv_decref(f->p, f->t_path, v);
    fl_digest h, noted = {{0}};
    assert_int_equal(hash_file(fl_ctx_default(), path, &h, err, sizeof err), 0);
    assert_int_equal(ck_path_part(&cx, path, &h, &from_hash), 0);
    assert_true(from_hash == part);
    assert_int_equal(state_commit(f->st), 0);
    void *find[2] = {path, &noted};
    assert_int_equal(state_files_each(f->st, take_file, find), 0);
    assert_memory_equal(noted.b, h.b, 32);
    assert_int_equal(ck_path_part(&cx, path, &noted, &from_index), 0);
    assert_true(from_index == part);
    /* another file's name or another content: another part */
    uint64_t x;
    assert_int_equal(ck_path_part(&cx, other, &h, &x), 0);
    assert_true(x != part && x != part_b);
    h.b[0] ^= 1;
    assert_int_equal(ck_path_part(&cx, path, &h, &x), 0);
    assert_true(x != part);
    ck_free(&cx);
}

/* A task of scalar parameters only takes ck_instance_key's fixed-size path (no
 * encoding buffer): its key is still SHA-256 over the documented bytes, the
 * identity's 32 bytes then each argument's u64 (a float by its bits). */
static void test_key_of_scalars_is_documented_bytes(void **state) {
    fixture *f = *state;
    uint32_t task = add_mix(f);
    fl_plan *p = f->p;
    const plan_task *t = &p->tasks[task];
    p->params[t->first_param + 1].type = plan_type_basic(p, PT_FLOAT);
    p->params[t->first_param + 2].type = plan_type_basic(p, PT_BOOL);
    p->params[t->first_param + 3].type = f->t_int;
    ck_ctx cx = {.plan = p};
    fl_val args[4];
    args[0].i = -7;
    args[1].f = -2.25;
    args[2].i = 1;
    args[3].i = INT64_MAX;
    fl_digest got;
    char err[256];
    assert_int_equal(ck_instance_key(&cx, task, args, &got, err, sizeof err), 0);
    const char *sig[] = {"int", "float", "bool", "int", "int"};
    fl_digest ident;
    c_ident(sig, 5, "mix", &ident);
    kb k = {0};
    kb_put(&k, ident.b, 32);
    kb_u64(&k, (uint64_t)-7);
    double x = -2.25;
    uint64_t bits;
    memcpy(&bits, &x, 8);
    kb_u64(&k, bits);
    kb_u64(&k, 1);
    kb_u64(&k, (uint64_t)INT64_MAX);
    fl_digest want;
    hash_bytes(k.b, k.n, &want);
    assert_memory_equal(got.b, want.b, 32);
    ck_free(&cx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_follows_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_follows_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_input_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_in_a_kept_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_manifest_matches_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_bytes_are_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_of_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_is_documented_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_part_from_the_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_of_scalars_is_documented_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
