/*
 * test_recorder.c — the recorder (recorder.h) driven the way the scheduler drives
 * it: every test talks to the history (history.c) only through the rec_ops that
 * hist_recorder hands out (lookup, finished, queue_batch, sync), and reads back
 * what reached state.db through a state of its own (state_open), as a later
 * flowrun, or `flowrun show`, would. What recorder.h promises call by call
 * (DURABILITY) is what is checked, with no timing: that queue_batch returns
 * before its batch is written is seen by calling it while another connection
 * holds state.db's write lock, so the writer thread cannot have written it.
 *
 * The plan is made with the plan builder (no compiler): three C tasks, each with a
 * version so that their identity needs no library,
 *     square(a: int) -> int     emit(a: int) -> path     size(a: path) -> int
 * and the test plays the executor: when lookup says "run it", it makes the
 * result itself (a number, a file in the instance's output folder, a failure).
 *
 * The history gets a context of its own whose allocator counts live blocks: what
 * the recorder hands out under exec.h's and recorder.h's malloc contract
 * (rec_inst.error, rt_result.error) is freed here with free(), as the scheduler
 * does, and after hist_close no block of that context may be left live.
 *
 * Two cases run a recorder in a child process: one killed with SIGKILL between
 * batches (state.db must hold a prefix of the queued batches, and resume serves
 * exactly that prefix), one whose writes the file system refuses (RLIMIT_FSIZE 0,
 * which binds root too, unlike file modes): queue_batch / sync then return -1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hash.h"
#include "history.h"
#include "walk.h"

/* ---- the fixture: a plan, a folder, a counted context ---- */

typedef struct fx {
    fl_plan *p;
    uint32_t t_int, t_path;
    uint32_t square, emit, size; /* tasks */
    char root[64];               /* the test's folder */
    char state[128];             /* root/state: the state directory */
    fl_ctx ctx;                  /* the history's context */
    long live;                   /* blocks of ctx allocated and not freed */
    int errors;                  /* FL_LOG_ERROR lines said through ctx */
    fl_state *rd;                /* the reader: a state of our own on the same directory */
} fx;

static void *count_alloc(void *ud, void *p, size_t n) {
    fx *f = ud;
    if (n == 0) {
        free(p);
        if (p) __atomic_sub_fetch(&f->live, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && !p) __atomic_add_fetch(&f->live, 1, __ATOMIC_RELAXED);
    return q;
}

static void count_log(void *ud, fl_log_level level, const char *msg) {
    fx *f = ud;
    (void)msg;
    if (level == FL_LOG_ERROR) __atomic_add_fetch(&f->errors, 1, __ATOMIC_RELAXED);
}

static uint32_t add_task(fl_plan *p, const char *name, uint32_t param, uint32_t ret) {
    uint32_t k = PLAN_PUSH(p, params);
    p->params[k] = (plan_param){.name = plan_intern_str(p, "a"), .type = param,
                                .def = PLAN_NONE, .loc = PLAN_NONE};
    uint32_t t = PLAN_PUSH(p, tasks);
    plan_task *T = &p->tasks[t];
    T->name = plan_intern_str(p, name);
    T->kind = TK_C;
    T->first_param = k;
    T->nparams = 1;
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
    f->square = add_task(f->p, "square", f->t_int, f->t_int);
    f->emit = add_task(f->p, "emit", f->t_int, f->t_path);
    f->size = add_task(f->p, "size", f->t_path, f->t_int);
    strcpy(f->root, "/tmp/flow-rec-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->state, sizeof f->state, "%s/state", f->root);
    fl_ctx_init(&f->ctx);
    f->ctx.alloc = count_alloc;
    f->ctx.alloc_ud = f;
    f->ctx.log = count_log;
    f->ctx.log_ud = f;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    state_close(f->rd);
    walk_remove_path(f->root);
    plan_free(f->p);
    free(f);
    return 0;
}

/* ---- driving the recorder ---- */

static hist *open_hist_env(fx *f, int64_t resume, int no_cache, const char *env) {
    hist_opts o = {.ctx = &f->ctx, .plan = f->p, .state_dir = f->state, .flow = "t",
                   .env = env, .params_json = "{}", .options = "",
                   .no_cache = no_cache, .resume_run = resume};
    char err[512] = "";
    hist *h = hist_open(&o, err, sizeof err);
    if (!h) fail_msg("hist_open: %s", err);
    return h;
}
static hist *open_hist(fx *f, int64_t resume, int no_cache) {
    return open_hist_env(f, resume, no_cache, "prod");
}

/* Close h; nothing of the history's context may be left live afterwards. */
static void close_hist(fx *f, hist *h, const char *end) {
    assert_int_equal(hist_close(h, end, 0, NULL, NULL), 0);
    if (f->live) fail_msg("%ld blocks of the history's context left live", f->live);
}

static rec_inst inst(uint32_t node, uint32_t task, const char *idx, const char *tmpl,
                     const char *out_dir) {
    rec_inst ii = {.node = node, .task = task, .idx = idx, .tmpl = tmpl, .out_dir = out_dir,
                   .attempts = 1, .remaining = 1};
    return ii;
}

/* The executor's part: a result that ran (ok) for an int task. */
static void finish_int(recorder r, rec_inst *ii, const fl_val *args, int64_t v, int served) {
    rt_result res = {.ok = 1, .value = {.i = v}, .start = 1, .end = 2, .worker_pid = getpid()};
    r.ops->finished(r.self, ii, args, &res, served);
    assert_int_equal(res.ok, 1);
    assert_int_equal(res.value.i, v);
    assert_null(res.error);
}

/* square(a) in node, looked up and, when not served, run. Returns lookup's answer. */
static int square(fx *f, recorder r, uint32_t node, const char *idx, int64_t a, fl_digest *key) {
    rec_inst ii = inst(node, f->square, idx, *idx ? "square[]" : "square", NULL);
    fl_val args[1] = {{.i = a}}, out = {0};
    int hit = r.ops->lookup(r.self, &ii, args, &out);
    assert_true(hit == 0 || hit == 1);
    if (hit) assert_int_equal(out.i, a * a);
    finish_int(r, &ii, args, a * a, hit);
    if (key) *key = ii.key;
    return hit;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void read_text(const char *path, char *buf, size_t len) {
    FILE *fp = fopen(path, "r");
    if (!fp) fail_msg("%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = 0;
    fclose(fp);
}

/* emit(a) in node, run: its output file (text) is made in the instance's output
 * folder and returned; the stored path the recorder rewrote it to goes to stored. */
static void emit(fx *f, recorder r, uint32_t node, int64_t a, const char *text, char *stored,
                 size_t len) {
    char dir[256], file[300];
    snprintf(dir, sizeof dir, "%s/work/emit%lld", f->root, (long long)a);
    snprintf(file, sizeof file, "%s/work", f->root);
    mkdir(file, 0755);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/result.txt", dir);
    write_file(file, text);
    rec_inst ii = inst(node, f->emit, "", "emit", dir);
    fl_val args[1] = {{.i = a}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    rt_result res = {.ok = 1, .value = fv_str_cstr(f->p, f->t_path, file), .start = 1, .end = 2};
    r.ops->finished(r.self, &ii, args, &res, 0);
    if (!res.ok) fail_msg("storing the output failed: %s", res.error);
    snprintf(stored, len, "%s", fv_as_str(res.value)->data);
    fv_decref(f->p, f->t_path, res.value);
}

/* ---- reading back what is in state.db ---- */

typedef struct row {
    uint32_t node;
    char idx[16], state[16], error[64];
    int has_key, cache_hit, has_result;
    fl_digest key;
    uint8_t result[512];
    size_t result_len;
} row;

typedef struct rows {
    row v[256];
    int n;
} rows;

static int take_row(const state_inst *r, void *ctx) {
    rows *rs = ctx;
    assert_true(rs->n < 256);
    row *w = &rs->v[rs->n++];
    memset(w, 0, sizeof *w);
    w->node = r->node;
    snprintf(w->idx, sizeof w->idx, "%s", r->idx);
    snprintf(w->state, sizeof w->state, "%s", r->state);
    snprintf(w->error, sizeof w->error, "%s", r->error ? r->error : "");
    w->has_key = r->cache_key != NULL;
    if (r->cache_key) w->key = *r->cache_key;
    w->cache_hit = r->cache_hit;
    w->has_result = r->result != NULL;
    assert_true(r->result_len <= sizeof w->result);
    if (r->result_len) memcpy(w->result, r->result, r->result_len);
    w->result_len = r->result_len;
    return 0;
}

/* The reader, its read transaction ended: what it reads next is a fresh snapshot. */
static fl_state *reader(fx *f) {
    if (!f->rd) {
        char err[512] = "";
        f->rd = state_open(fl_ctx_default(), f->state, err, sizeof err);
        if (!f->rd) fail_msg("state_open: %s", err);
    }
    assert_int_equal(state_commit(f->rd), 0);
    return f->rd;
}

/* The rows of run as committed now. */
static void read_rows(fx *f, int64_t run, rows *rs) {
    rs->n = 0;
    assert_int_equal(state_insts_each(reader(f), run, take_row, rs), 0);
}

static const row *find_row(const rows *rs, uint32_t node, const char *idx) {
    for (int i = 0; i < rs->n; i++)
        if (rs->v[i].node == node && !strcmp(rs->v[i].idx, idx)) return &rs->v[i];
    return NULL;
}

/* Is there a committed cache entry for key? 1 / 0 (and its int value in *v). */
static int cached(fx *f, uint32_t task, const fl_digest *key, int64_t *v) {
    fl_state *st = reader(f);
    uint8_t *val = NULL;
    size_t len = 0, used;
    int got = state_cache_get(st, plan_str(f->p, f->p->tasks[task].name), key, &val, &len);
    assert_true(got == 0 || got == 1);
    if (got && v) {
        fl_val x;
        assert_int_equal(fv_decode(f->p, f->t_int, val, len, &used, &x), 0);
        *v = x.i;
    }
    fl_free(state_ctx(st), val);
    return got;
}

static int64_t row_int(fx *f, const row *w) {
    fl_val x;
    size_t used;
    assert_true(w->has_result);
    assert_int_equal(fv_decode(f->p, f->t_int, w->result, w->result_len, &used, &x), 0);
    return x.i;
}

static int exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Damage a stored file in place: same size, other bytes (store objects are
 * read-only; whoever damages them does not care). */
static void damage(const char *path) {
    assert_int_equal(chmod(path, 0644), 0);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "HELLO", 5), 5);
    close(fd);
}

/* The object's hash in a stored path .../store/named/<hex>/NAME, into hex. */
static void stored_hex(const char *path, char hex[65]) {
    const char *n = strstr(path, "/store/named/");
    assert_non_null(n);
    memcpy(hex, n + 13, 64);
    hex[64] = 0;
}

/* ---- the tests ---- */

/* A fresh run: lookup says run it (and sets the key); then what is on disk after
 * finished, after queue_batch (taken while another connection holds state.db's
 * write lock, so the writer cannot have written yet), and after sync. */
static void test_fresh_run_durability(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    assert_true(run > 0);
    assert_string_equal(r.ops->name, "history");

    rec_inst ii = inst(1, f->square, "", "square", NULL);
    fl_val args[1] = {{.i = 3}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    assert_int_equal(ii.has_key, 1);
    assert_null(ii.error);
    fl_digest key = ii.key;

    rt_result res = {.ok = 1, .value = {.i = 9}, .start = 1, .end = 2};
    res.log = strdup("squaring 3\n");
    r.ops->finished(r.self, &ii, args, &res, 0);
    assert_int_equal(res.ok, 1);
    free(res.log);

    /* finished: the log file is written; the row and cache entry are only buffered */
    char log[4200], text[64];
    assert_int_equal(state_log_path(f->state, run, "square", "square", "", log, sizeof log), 0);
    read_text(log, text, sizeof text);
    assert_string_equal(text, "squaring 3\n");
    rows rs;
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 0);
    assert_int_equal(cached(f, f->square, &key, NULL), 0);

    /* queue_batch hands the batch over and returns before it is written */
    char db[300];
    snprintf(db, sizeof db, "%s/state.db", f->state);
    sqlite3 *lock = NULL;
    assert_int_equal(sqlite3_open(db, &lock), SQLITE_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 0);
    assert_int_equal(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);

    /* sync: the row and the cache entry are committed */
    assert_int_equal(r.ops->sync(r.self), 0);
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 1);
    const row *w = find_row(&rs, 1, "");
    assert_non_null(w);
    assert_string_equal(w->state, "succeeded");
    assert_int_equal(w->cache_hit, 0);
    assert_int_equal(w->has_key, 1);
    assert_memory_equal(w->key.b, key.b, 32);
    assert_int_equal(row_int(f, w), 9);
    int64_t v = 0;
    assert_int_equal(cached(f, f->square, &key, &v), 1);
    assert_int_equal(v, 9);

    hist_stats s;
    hist_get_stats(h, &s);
    assert_int_equal(s.served_cache, 0);
    assert_int_equal(s.served_resume, 0);
    close_hist(f, h, "succeeded");
    state_run got;
    assert_int_equal(state_run_get(reader(f), run, &got), 0);
    assert_string_equal(got.state, "succeeded");
    state_run_free(&got);
}

/* A wide mapping served from the cache: once the task is preloaded, a re-run in
 * the order the entries were produced is answered by the entry after the last hit;
 * in that order with runs of 100 swapped two by two (as two threads hand results
 * over) by the cursors and the read-ahead, with no hash table; in another order
 * (reversed) through the hash table; every one still served. WIDE_FAR: the first
 * 6,000 of N in runs of 3,000 swapped, a jump of 130 KB of the arena, past the near
 * read-ahead: the far one finds them, still with no table. */
enum { WIDE_SAME, WIDE_SWAPPED, WIDE_REVERSED, WIDE_FAR };
static long wide_run_n(fx *f, int order, int N, long *next, long *tables) {
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    long hits = 0;
    for (int j = 0; j < N; j++) {
        int i = order == WIDE_REVERSED ? N - 1 - j
                : order == WIDE_SWAPPED ? (j / 100 % 2 ? j - 100 : j + 100)
                : order == WIDE_FAR && j < 6000 ? (j / 3000 % 2 ? j - 3000 : j + 3000)
                                                : j;
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        rec_inst ii = inst(1, f->square, idx, "square[]", NULL);
        ii.remaining = N - j;
        fl_val args[1] = {{.i = i}}, out = {0};
        int hit = r.ops->lookup(r.self, &ii, args, &out);
        if (hit) assert_int_equal(out.i, (int64_t)i * i);
        hits += hit;
        finish_int(r, &ii, args, (int64_t)i * i, hit);
    }
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    hist_stats s;
    hist_get_stats(h, &s);
    *next = s.served_next;
    *tables = s.tc_tables;
    close_hist(f, h, "succeeded");
    return hits;
}
static long wide_run(fx *f, int order, long *next, long *tables) {
    return wide_run_n(f, order, 1000, next, tables);
}

static void test_cache_follows_last_hit(void **state) {
    fx *f = *state;
    long next, tables;
    assert_int_equal(wide_run(f, WIDE_SAME, &next, &tables), 0); /* cold */
    assert_int_equal(next, 0);
    assert_int_equal(wide_run(f, WIDE_SAME, &next, &tables), 1000); /* the same order */
    assert_true(next >= 1000 - 64 - 1); /* all but the lookups before the preload */
    assert_int_equal(tables, 0);
    assert_int_equal(wide_run(f, WIDE_SWAPPED, &next, &tables), 1000);
    assert_true(next >= 1000 - 64 - 10); /* all but the preload's and a few jumps ahead */
    assert_int_equal(tables, 0);
    assert_int_equal(wide_run(f, WIDE_REVERSED, &next, &tables), 1000); /* the hash table */
    assert_true(next < 10);
    assert_int_equal(tables, 1);
}

static void test_cache_follows_far_jump(void **state) {
    fx *f = *state;
    long next, tables;
    assert_int_equal(wide_run_n(f, WIDE_SAME, 8000, &next, &tables), 0); /* cold */
    assert_int_equal(wide_run_n(f, WIDE_FAR, 8000, &next, &tables), 8000);
    assert_true(next >= 8000 - 64 - 10); /* all but the preload's and the jumps */
    assert_int_equal(tables, 0);
}

/* A cache entry keeps its key's parts: the task identity's first 8 bytes and one
 * hash per argument; a changed argument changes its own input hash, no other. */
static void test_cache_entry_key_parts(void **state) {
    fx *f = *state;
    uint32_t t = add_task(f->p, "add3", f->t_int, f->t_int);
    for (int i = 1; i < 3; i++) { /* two more int parameters, after the first */
        uint32_t k = PLAN_PUSH(f->p, params);
        f->p->params[k] = (plan_param){.name = plan_intern_str(f->p, i == 1 ? "b" : "c"),
                                       .type = f->t_int, .def = PLAN_NONE, .loc = PLAN_NONE};
    }
    f->p->tasks[t].nparams = 3;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    static const int64_t in[2][3] = {{1, 2, 3}, {1, 5, 3}};
    fl_digest keys[2];
    for (int j = 0; j < 2; j++) {
        rec_inst ii = inst(7, t, j ? "1" : "0", "add3[]", NULL);
        fl_val args[3] = {{.i = in[j][0]}, {.i = in[j][1]}, {.i = in[j][2]}}, out = {0};
        assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
        finish_int(r, &ii, args, in[j][0] + in[j][1] + in[j][2], 0);
        keys[j] = ii.key;
    }
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    fl_state *st = reader(f);
    static state_cache_entry e[2];
    for (int j = 0; j < 2; j++) {
        assert_int_equal(state_cache_entry_get(st, "add3", &keys[j], &e[j]), 1);
        assert_int_equal(e[j].ninputs, 3);
        assert_true(e[j].run > 0);
        assert_int_equal(e[j].environment, 0);
        fl_val x;
        size_t used;
        assert_int_equal(fv_decode(f->p, f->t_int, e[j].val, e[j].len, &used, &x), 0);
        assert_int_equal(x.i, in[j][0] + in[j][1] + in[j][2]);
        fl_free(state_ctx(st), e[j].val);
    }
    assert_true(e[0].identity != 0);
    assert_true(e[0].identity == e[1].identity); /* one task */
    assert_true(e[0].inputs[0] == e[1].inputs[0]);
    assert_true(e[0].inputs[1] != e[1].inputs[1]); /* b changed: 2 -> 5 */
    assert_true(e[0].inputs[2] == e[1].inputs[2]);
    /* the hash is of the value: a = 1 and c = 3 differ; it is FNV-1a over the 8
     * bytes the key encodes for an int (cachekey.h) */
    assert_true(e[0].inputs[0] != e[0].inputs[2]);
    const uint8_t one[8] = {1}, five[8] = {5};
    assert_true(e[0].inputs[0] == fl_hash_bytes(one, 8));
    assert_true(e[1].inputs[1] == fl_hash_bytes(five, 8));
    fl_digest none;
    memset(none.b, 0xab, 32);
    assert_int_equal(state_cache_entry_get(st, "add3", &none, &e[0]), 0);
    assert_null(e[0].val);
    assert_int_equal(e[0].ninputs, 0);
}

/* One run of square(a) for each a in as[] in environment env: which were served
 * (bit i for as[i]). */
static unsigned env_run(fx *f, const char *env, const int64_t *as, int n, fl_digest *keys) {
    hist *h = open_hist_env(f, 0, 0, env);
    recorder r = hist_recorder(h);
    unsigned hits = 0;
    for (int i = 0; i < n; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        if (square(f, r, 1, idx, as[i], keys ? &keys[i] : NULL)) hits |= 1u << i;
    }
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    return hits;
}

static int count_entry(const fl_digest *key, const void *val, size_t len, void *ctx) {
    (void)key, (void)val, (void)len;
    ++*(int *)ctx;
    return 0;
}

/* Environments (state.c, "environments"): a prod run is served prod's entries only;
 * a run of E is served E's and prod's, never a third environment's; an entry a run
 * could not use is computed and then is its environment's; a drop removes only the
 * dropping environment's copies; the sequential read (state_cache_each) and the
 * reason engine's lookup (state_cache_entry_other) follow the same rule. */
static void test_cache_per_environment(void **state) {
    fx *f = *state;
    static const int64_t a34[] = {3, 4}, a35[] = {3, 5}, a5[] = {5};
    fl_digest k[2], k5;
    assert_int_equal(env_run(f, "prod", a34, 2, k), 0);          /* computed: prod's */
    assert_int_equal(env_run(f, "test", a35, 2, NULL), 1);       /* 3 served (prod's); 5 test's */
    assert_int_equal(env_run(f, "staging", a35, 2, NULL), 1);    /* 5: test's is not staging's */
    assert_int_equal(env_run(f, "prod", a5, 1, &k5), 0);         /* prod is not served 5 */
    assert_int_equal(env_run(f, "prod", a5, 1, NULL), 1);        /* ... and now it is prod's */
    assert_int_equal(env_run(f, "test", a35, 2, NULL), 3);
    fl_state *st = reader(f); /* prod, as a state is until state_env_use */
    state_cache_entry e;
    assert_int_equal(state_cache_entry_get(st, "square", &k5, &e), 1);
    assert_int_equal(e.environment, 0);
    fl_free(state_ctx(st), e.val);
    assert_int_equal(state_cache_entry_other(st, "square", &k5, &e), 1); /* staging's or test's */
    assert_true(e.environment != 0);
    char name[64];
    assert_int_equal(state_env_name(st, e.environment, name, sizeof name), 0);
    assert_string_equal(name, "staging"); /* the newest other copy */
    fl_free(state_ctx(st), e.val);
    assert_int_equal(state_cache_entry_other(st, "square", &k[0], &e), 0); /* prod's only */
    int n = 0; /* prod sees its own entries of square: 3, 4, 5 */
    assert_int_equal(state_cache_each(st, "square", count_entry, &n), 0);
    assert_int_equal(n, 3);
    /* a drop in test removes test's copies only: prod's 3 is still served */
    char err[512];
    fl_state *t = state_open(fl_ctx_default(), f->state, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(state_env_use(t, "test", 0), 0);
    n = 0; /* test: prod's three and its own 5 */
    assert_int_equal(state_cache_each(t, "square", count_entry, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(state_cache_drop(t, "square", &k[0]), 0);
    assert_int_equal(state_cache_drop(t, "square", &k5), 0);
    assert_int_equal(state_commit(t), 0);
    n = 0;
    assert_int_equal(state_cache_each(t, "square", count_entry, &n), 0);
    assert_int_equal(n, 3); /* its 5 went; prod's 3, 4, 5 stay */
    state_close(t);
    assert_int_equal(env_run(f, "prod", a34, 2, NULL), 3);
    /* a name never recorded (a dry run records none) uses prod's entries only */
    t = state_open(fl_ctx_default(), f->state, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(state_env_use(t, "never", 0), 0);
    n = 0;
    assert_int_equal(state_cache_each(t, "square", count_entry, &n), 0);
    assert_int_equal(n, 3);
    state_close(t);
}

/* A second run serves the first run's result from the cache, with the same key;
 * a changed argument is not served; --no-cache neither reads nor keys. */
static void test_cache_serves_second_run(void **state) {
    fx *f = *state;
    fl_digest k1, k2, k3;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    assert_int_equal(square(f, r, 1, "", 3, &k1), 0);
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");

    h = open_hist(f, 0, 0);
    r = hist_recorder(h);
    int64_t run2 = hist_run_id(h);
    rec_inst ii = inst(1, f->square, "", "square", NULL);
    fl_val args[1] = {{.i = 3}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 1);
    assert_int_equal(out.i, 9);
    assert_int_equal(ii.has_key, 1);
    assert_memory_equal(ii.key.b, k1.b, 32);
    finish_int(r, &ii, args, out.i, 1);
    /* another argument: another key, not served */
    assert_int_equal(square(f, r, 2, "", 4, &k2), 0);
    assert_memory_not_equal(k1.b, k2.b, 32);
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    hist_stats s;
    hist_get_stats(h, &s);
    assert_int_equal(s.served_cache, 1);
    close_hist(f, h, "succeeded");
    rows rs;
    read_rows(f, run2, &rs);
    assert_int_equal(rs.n, 2);
    const row *w = find_row(&rs, 1, "");
    assert_non_null(w);
    assert_string_equal(w->state, "cached");
    assert_int_equal(w->cache_hit, 1);
    assert_int_equal(row_int(f, w), 9);
    w = find_row(&rs, 2, "");
    assert_non_null(w);
    assert_string_equal(w->state, "succeeded");
    assert_int_equal(w->cache_hit, 0);

    /* --no-cache: nothing served, no key */
    h = open_hist(f, 0, 1);
    r = hist_recorder(h);
    ii = inst(1, f->square, "", "square", NULL);
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    assert_int_equal(ii.has_key, 0);
    finish_int(r, &ii, args, 9, 0);
    close_hist(f, h, "succeeded");

    /* and a third, cached run is served the argument the second one added */
    h = open_hist(f, 0, 0);
    r = hist_recorder(h);
    assert_int_equal(square(f, r, 2, "", 4, &k3), 1);
    assert_memory_equal(k2.b, k3.b, 32);
    close_hist(f, h, "succeeded");
}

/* A failed result is recorded as failed and never cached: neither a later run
 * nor the resumed run serves it. */
static void test_failed_result_not_cached(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    rec_inst ii = inst(1, f->square, "", "square", NULL);
    fl_val args[1] = {{.i = 5}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    assert_int_equal(ii.has_key, 1);
    fl_digest key = ii.key;
    rt_result res = {.ok = 0, .error = fl_strdup(f->p->ctx, "boom"), .start = 1, .end = 2};
    r.ops->finished(r.self, &ii, args, &res, 0);
    assert_int_equal(res.ok, 0);
    assert_string_equal(res.error, "boom");
    fl_free(f->p->ctx, res.error);
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    rows rs;
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].state, "failed");
    assert_string_equal(rs.v[0].error, "boom");
    assert_int_equal(rs.v[0].has_result, 0);
    assert_int_equal(cached(f, f->square, &key, NULL), 0);
    close_hist(f, h, "failed");

    h = open_hist(f, 0, 0);
    r = hist_recorder(h);
    ii = inst(1, f->square, "", "square", NULL);
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    close_hist(f, h, "failed");

    h = open_hist(f, run, 0);
    r = hist_recorder(h);
    ii = inst(1, f->square, "", "square", NULL);
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    close_hist(f, h, "failed");
}

/* Resume: an instance the run finished is served from its recorded result (the
 * cache is off in both, so only resume can serve it); others run. */
static void test_resume_serves_finished(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 1);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    assert_int_equal(square(f, r, 1, "", 3, NULL), 0);
    assert_int_equal(square(f, r, 3, "0", 7, NULL), 0);
    rec_inst ii = inst(2, f->square, "", "square", NULL); /* started, never finished */
    fl_val args[1] = {{.i = 4}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "interrupted");

    h = open_hist(f, run, 1);
    r = hist_recorder(h);
    assert_int_equal(hist_run_id(h), run);
    assert_int_equal(square(f, r, 1, "", 3, NULL), 1);
    assert_int_equal(square(f, r, 3, "0", 7, NULL), 1);
    assert_int_equal(square(f, r, 2, "", 4, NULL), 0);
    assert_int_equal(square(f, r, 3, "1", 8, NULL), 0); /* another element of node 3 */
    hist_stats s;
    hist_get_stats(h, &s);
    assert_int_equal(s.served_resume, 2);
    assert_int_equal(s.served_cache, 0);
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    rows rs;
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 4);
    assert_non_null(find_row(&rs, 2, ""));
    assert_int_equal(row_int(f, find_row(&rs, 3, "1")), 64);
}

static int count_key(const fl_digest *key, const void *val, size_t len, void *ctx) {
    (void)val, (void)len;
    void **a = ctx;
    if (!memcmp(key->b, ((const fl_digest *)a[0])->b, 32)) (*(int *)a[1])++;
    return 0;
}

/* Clear, then resume: the cleared instance runs again and its new result replaces
 * its cache entry; the old one is dropped first, so no copy of it is left to serve
 * (a warm run may serve any copy of a key). */
static void test_cleared_drops_old_entry(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    fl_digest key;
    assert_int_equal(square(f, r, 1, "", 3, &key), 0);
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    fl_state *st = reader(f);
    assert_int_equal(state_inst_clear(st, run, "square", NULL), 1);
    assert_int_equal(state_commit(st), 0);

    h = open_hist(f, run, 0);
    r = hist_recorder(h);
    rec_inst ii = inst(1, f->square, "", "square", NULL);
    fl_val args[1] = {{.i = 3}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0); /* cleared: it runs */
    finish_int(r, &ii, args, 10, 0); /* a new result (not 9) */
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    int64_t v;
    assert_int_equal(cached(f, f->square, &key, &v), 1);
    assert_int_equal(v, 10);
    int copies = 0;
    void *a[2] = {&key, &copies};
    assert_int_equal(state_cache_each(reader(f), "square", count_key, a), 0);
    assert_int_equal(copies, 1);
    assert_int_equal(state_cache_count(reader(f), "square"), 1);
}

/* lookup_needed (asked once per task): with --no-cache, a task whose parameters hold
 * no stored file has nothing to look up on a fresh run, and the scheduler then skips
 * lookup for its instances; a task reading paths still has its stored inputs checked;
 * with the cache on, a cached task is looked up and a `cache: false` one is not; on
 * resume every task is (what the run finished is served). */
static void test_lookup_needed(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 1);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    assert_non_null(r.ops->lookup_needed);
    assert_int_equal(r.ops->lookup_needed(r.self, f->square), 0);
    assert_int_equal(r.ops->lookup_needed(r.self, f->emit), 0);
    assert_int_equal(r.ops->lookup_needed(r.self, f->size), 1); /* a path parameter */
    assert_int_equal(square(f, r, 1, "", 3, NULL), 0);
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "interrupted");

    h = open_hist(f, 0, 0); /* the cache on */
    r = hist_recorder(h);
    assert_int_equal(r.ops->lookup_needed(r.self, f->square), 1);
    f->p->tasks[f->square].cache = 0;
    assert_int_equal(r.ops->lookup_needed(r.self, f->square), 0);
    f->p->tasks[f->square].cache = 1;
    close_hist(f, h, "succeeded");

    h = open_hist(f, run, 1); /* resume, --no-cache: square[""] is served */
    r = hist_recorder(h);
    assert_int_equal(r.ops->lookup_needed(r.self, f->square), 1);
    assert_int_equal(square(f, r, 1, "", 3, NULL), 1);
    close_hist(f, h, "succeeded");
}

/* Outputs inside the output folder move into the store and the value points there;
 * a path outside it is a reference and stays as it is. */
static void test_outputs_move_into_store(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    char stored[4200], text[64], src[300], prefix[300];
    emit(f, r, 1, 1, "hello\n", stored, sizeof stored);
    snprintf(prefix, sizeof prefix, "%s/store/named/", f->state);
    assert_int_equal(strncmp(stored, prefix, strlen(prefix)), 0);
    assert_string_equal(strrchr(stored, '/'), "/result.txt"); /* keeps its name */
    read_text(stored, text, sizeof text);
    assert_string_equal(text, "hello\n");
    struct stat sb;
    assert_int_equal(stat(stored, &sb), 0);
    assert_int_equal(sb.st_mode & 0222, 0); /* read-only */
    snprintf(src, sizeof src, "%s/work/emit1/result.txt", f->root);
    assert_false(exists(src)); /* moved, not copied */

    /* a reference: left where it is */
    char ref[300], dir[300];
    snprintf(ref, sizeof ref, "%s/ref.txt", f->root);
    write_file(ref, "a reference\n");
    snprintf(dir, sizeof dir, "%s/work/emit2", f->root);
    assert_int_equal(mkdir(dir, 0755), 0);
    rec_inst ii = inst(2, f->emit, "", "emit", dir);
    fl_val args[1] = {{.i = 2}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    rt_result res = {.ok = 1, .value = fv_str_cstr(f->p, f->t_path, ref)};
    r.ops->finished(r.self, &ii, args, &res, 0);
    assert_int_equal(res.ok, 1);
    assert_string_equal(fv_as_str(res.value)->data, ref);
    fv_decref(f->p, f->t_path, res.value);
    assert_true(exists(ref));
    hist_stats s;
    hist_get_stats(h, &s);
    assert_int_equal(s.stored_outputs, 1);

    /* the recorded result is the stored path */
    assert_int_equal(r.ops->sync(r.self), 0);
    rows rs;
    read_rows(f, run, &rs);
    const row *w = find_row(&rs, 1, "");
    assert_non_null(w);
    fl_val v;
    size_t used;
    assert_int_equal(fv_decode(f->p, f->t_path, w->result, w->result_len, &used, &v), 0);
    assert_string_equal(fv_as_str(v)->data, stored);
    fv_decref(f->p, f->t_path, v);
    close_hist(f, h, "succeeded");
}

/* An output the store refuses (a symbolic link) fails the instance: no value, an
 * error (from the plan's context, as exec.h says), recorded as failed and not cached. */
static void test_output_not_stored_fails(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    int64_t run = hist_run_id(h);
    char dir[300], link[400];
    snprintf(dir, sizeof dir, "%s/work", f->root);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(link, sizeof link, "%s/result.txt", dir);
    assert_int_equal(symlink("/etc/hostname", link), 0);
    rec_inst ii = inst(1, f->emit, "", "emit", dir);
    fl_val args[1] = {{.i = 1}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    rt_result res = {.ok = 1, .value = fv_str_cstr(f->p, f->t_path, link)};
    r.ops->finished(r.self, &ii, args, &res, 0);
    assert_int_equal(res.ok, 0);
    assert_non_null(res.error);
    assert_non_null(strstr(res.error, "storing the output failed"));
    fl_free(f->p->ctx, res.error); /* rt_result.error: the plan's context (exec.h) */
    assert_int_equal(r.ops->sync(r.self), 0);
    rows rs;
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].state, "failed");
    assert_int_equal(cached(f, f->emit, &ii.key, NULL), 0);
    close_hist(f, h, "failed");
}

/* A stored file among the arguments damaged since it was stored: lookup refuses
 * the instance (-1, ii->error) and the file is quarantined. */
static void test_damaged_input_refused(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    char stored[4200], hex[65], q[4400];
    emit(f, r, 1, 1, "hello\n", stored, sizeof stored);
    stored_hex(stored, hex);

    rec_inst ii = inst(2, f->size, "", "size", NULL);
    fl_val args[1] = {fv_str_cstr(f->p, f->t_path, stored)}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0); /* intact: run it */
    assert_null(ii.error);

    damage(stored);
    ii = inst(3, f->size, "", "size", NULL);
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), -1);
    assert_non_null(ii.error);
    assert_non_null(strstr(ii.error, "'a'"));
    assert_non_null(strstr(ii.error, "quarantined"));
    fl_free(f->p->ctx, ii.error); /* recorder.h: the plan's context, the caller frees */
    snprintf(q, sizeof q, "%s/store/quarantine/%s", f->state, hex);
    assert_true(exists(q));
    assert_false(exists(stored));
    fv_decref(f->p, f->t_path, args[0]);
    close_hist(f, h, "failed");
}

/* A cached result whose stored file was damaged is not served; the entry is
 * dropped by a write queued with the next batch (so still there before it). */
static void test_damaged_cached_output_not_served(void **state) {
    fx *f = *state;
    hist *h = open_hist(f, 0, 0);
    recorder r = hist_recorder(h);
    char stored[4200], hex[65], q[4400];
    emit(f, r, 1, 1, "hello\n", stored, sizeof stored);
    stored_hex(stored, hex);
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");

    h = open_hist(f, 0, 0);
    r = hist_recorder(h);
    rec_inst ii = inst(1, f->emit, "", "emit", NULL);
    fl_val args[1] = {{.i = 1}}, out = {0};
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 1); /* intact: served */
    assert_string_equal(fv_as_str(out)->data, stored);
    fv_decref(f->p, f->t_path, out);
    fl_digest key = ii.key;
    assert_int_equal(cached(f, f->emit, &key, NULL), 1);

    damage(stored);
    ii = inst(1, f->emit, "", "emit", NULL);
    assert_int_equal(r.ops->lookup(r.self, &ii, args, &out), 0);
    snprintf(q, sizeof q, "%s/store/quarantine/%s", f->state, hex);
    assert_true(exists(q));
    assert_int_equal(cached(f, f->emit, &key, NULL), 1); /* the drop is not queued yet */
    assert_true(r.ops->queue_batch(r.self) >= 0); /* 1: held for the next call */
    assert_int_equal(r.ops->sync(r.self), 0);
    assert_int_equal(cached(f, f->emit, &key, NULL), 0);
    close_hist(f, h, "succeeded");
}

/* ---- in a child process: no cmocka assertion (it would jump back into the
 * child's copy of the test runner); a check that fails ends the child with its
 * number ---- */

static hist *child_open(fx *f, int no_cache) {
    hist_opts o = {.ctx = &f->ctx, .plan = f->p, .state_dir = f->state, .flow = "t",
                   .env = "prod", .params_json = "{}", .options = "", .no_cache = no_cache};
    char err[512];
    hist *h = hist_open(&o, err, sizeof err);
    if (!h) _exit(90);
    return h;
}

/* square(a) at node idx, run (lookup, then finished); lookup's answer. */
static int child_square(fx *f, recorder r, uint32_t node, const char *idx, int64_t a) {
    rec_inst ii = inst(node, f->square, idx, *idx ? "square[]" : "square", NULL);
    fl_val args[1] = {{.i = a}}, out = {0};
    int hit = r.ops->lookup(r.self, &ii, args, &out);
    rt_result res = {.ok = 1, .value = {.i = a * a}};
    r.ops->finished(r.self, &ii, args, &res, hit == 1);
    if (!res.ok) _exit(91);
    return hit;
}

/* A flowrun killed between batches leaves a prefix of what it queued: no row
 * without the rows queued before it; resume serves exactly that prefix. */
#define KILL_N 200
#define KILL_SYNCED 100
static void test_killed_run_leaves_prefix(void **state) {
    fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        hist *h = child_open(f, 1);
        recorder r = hist_recorder(h);
        char idx[16];
        for (int i = 0; i < KILL_N; i++) {
            snprintf(idx, sizeof idx, "%d", i);
            if (child_square(f, r, 1, idx, i) != 0) _exit(1);
            if (r.ops->queue_batch(r.self) < 0) _exit(2);
            if (i + 1 == KILL_SYNCED && r.ops->sync(r.self)) _exit(3);
        }
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("the child was to die of SIGKILL; status %d", status);

    int64_t run = state_run_latest(reader(f));
    assert_true(run > 0);
    rows rs;
    read_rows(f, run, &rs);
    int seen[KILL_N] = {0};
    for (int i = 0; i < rs.n; i++) {
        int k = atoi(rs.v[i].idx);
        assert_true(k >= 0 && k < KILL_N);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
        assert_int_equal(row_int(f, &rs.v[i]), (int64_t)k * k);
    }
    assert_true(rs.n >= KILL_SYNCED);
    for (int k = 0; k < rs.n; k++)
        if (!seen[k]) fail_msg("%d rows recorded, but not row %d: not a prefix", rs.n, k);
    print_message("killed run: %d of %d queued batches were committed\n", rs.n, KILL_N);

    hist *h = open_hist(f, run, 1);
    recorder r = hist_recorder(h);
    char idx[16];
    for (int i = 0; i < KILL_N; i++) {
        snprintf(idx, sizeof idx, "%d", i);
        assert_int_equal(square(f, r, 1, idx, i, NULL), i < rs.n);
    }
    assert_int_equal(r.ops->sync(r.self), 0);
    close_hist(f, h, "succeeded");
    read_rows(f, run, &rs);
    assert_int_equal(rs.n, KILL_N);
}

/* When the file system refuses state.db's writes (RLIMIT_FSIZE 0: EFBIG, which
 * root cannot bypass as it does file modes), queue_batch or sync returns -1, the
 * failure is said once, later calls keep saying -1, and hist_close returns -1.
 * Run in a child: the limit is the process's. Its exit status names the check
 * that failed. */
static void test_sync_fails_when_unwritable(void **state) {
    fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        hist *h = child_open(f, 0);
        recorder r = hist_recorder(h);
        if (child_square(f, r, 1, "", 3) != 0 || r.ops->sync(r.self)) _exit(10);
        struct rlimit lim = {0, 0};
        getrlimit(RLIMIT_FSIZE, &lim);
        lim.rlim_cur = 0;
        if (setrlimit(RLIMIT_FSIZE, &lim)) _exit(11);
        child_square(f, r, 2, "", 4);
        int q = r.ops->queue_batch(r.self);
        if (r.ops->sync(r.self) != -1) _exit(12);
        child_square(f, r, 3, "", 5);
        if (r.ops->queue_batch(r.self) != -1) _exit(13); /* no longer written */
        if (r.ops->sync(r.self) != -1) _exit(14);
        if (q < -1 || q > 1) _exit(15);
        if (hist_close(h, "failed", 1, NULL, NULL) != -1) _exit(16);
        if (f->errors != 1) _exit(17); /* said once */
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child failed check %d (status %d; see the test)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
    /* what was synced before is still there */
    rows rs;
    read_rows(f, state_run_latest(reader(f)), &rs);
    assert_non_null(find_row(&rs, 1, ""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_run_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_serves_second_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_follows_last_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_follows_far_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_entry_key_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_per_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_result_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_serves_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleared_drops_old_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outputs_move_into_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_not_stored_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_input_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_cached_output_not_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_run_leaves_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_fails_when_unwritable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
