/* test_remote.c — the files of remote execution (remote.c): batch files, result chunks
 * and end markers survive a round trip field for field (NULL strings, empty
 * arguments, many elements); every truncation, every flipped byte and a forged
 * file whose checksum was made to match (counts too large, ranges out of order, a
 * string without its NUL) are refused with one line, never read out of bounds
 * (run under ASan too); files are written atomically and a missing one says ENOENT;
 * job keys are stable and tell attempts, map indexes and arguments apart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "remote.h"

static const uint8_t args_a[] = {1, 2, 3, 4, 5, 6, 7, 8};

static void sample_batch(rm_batch *b, uint32_t *first, rm_bjob *jobs) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 32; i++)
        b->plan_hash[i] = (uint8_t)(i * 7);
    b->run = 42;
    b->batch = 3;
    b->nelem = 3;
    b->njobs = 5;
    first[0] = 0, first[1] = 2, first[2] = 2, first[3] = 5; /* element 1 is empty */
    for (uint32_t j = 0; j < 5; j++)
        jobs[j] = (rm_bjob){.key = {0x1111111111111111ull * (j + 1), j},
                            .task = j % 2,
                            .map_index = j == 4 ? -1 : (int64_t)j * 1000,
                            .attempt = j,
                            .timeout_ms = j * 300,
                            .out_dir = j == 1 ? NULL : "/s/work/o",
                            .scratch_dir = j == 2 ? "" : "/s/work/t",
                            .args = args_a,
                            .args_len = j == 3 ? 0 : (uint32_t)sizeof args_a};
    b->first = first;
    b->jobs = jobs;
}

static void encode_batch(fv_buf *out) {
    rm_batch b;
    uint32_t first[4];
    rm_bjob jobs[5];
    sample_batch(&b, first, jobs);
    memset(out, 0, sizeof *out);
    rm_batch_encode(&b, out);
    assert_false(out->failed);
}

static void test_batch_round_trip(void **state) {
    (void)state;
    rm_batch want, got;
    uint32_t first[4];
    rm_bjob jobs[5];
    sample_batch(&want, first, jobs);
    fv_buf out = {0};
    rm_batch_encode(&want, &out);
    char err[256] = "";
    assert_int_equal(rm_batch_decode(out.data, out.len, &got, err, sizeof err), 0);
    fl_free(fl_ctx_default(), out.data);
    assert_memory_equal(got.plan_hash, want.plan_hash, 32);
    assert_int_equal(got.run, 42);
    assert_int_equal(got.batch, 3);
    assert_int_equal(got.nelem, 3);
    assert_int_equal(got.njobs, 5);
    for (int e = 0; e <= 3; e++)
        assert_int_equal(got.first[e], first[e]);
    for (int j = 0; j < 5; j++) {
        const rm_bjob *g = &got.jobs[j], *w = &jobs[j];
        assert_true(g->key.hi == w->key.hi && g->key.lo == w->key.lo);
        assert_int_equal(g->task, w->task);
        assert_int_equal(g->map_index, w->map_index);
        assert_int_equal(g->attempt, w->attempt);
        assert_int_equal(g->timeout_ms, w->timeout_ms);
        if (w->out_dir)
            assert_string_equal(g->out_dir, w->out_dir);
        else
            assert_null(g->out_dir);
        assert_string_equal(g->scratch_dir, w->scratch_dir);
        assert_int_equal(g->args_len, w->args_len);
        if (w->args_len) assert_memory_equal(g->args, w->args, w->args_len);
    }
    rm_batch_free(&got);
}

static void sample_chunk(rm_chunk *c, rm_res *res) {
    c->run = 42;
    c->batch = 3;
    c->element = 2;
    c->nres = 3;
    c->res = res;
    res[0] = (rm_res){.job = 2,
                      .key = {5, 6},
                      .ok = 1,
                      .value = args_a,
                      .value_len = 8,
                      .log = "line 1\nline 2\n",
                      .start = 1.5,
                      .end = 2.25,
                      .peak_rss_kb = 1234,
                      .worker_pid = 99,
                      .host = "node-1"};
    res[1] = (rm_res){.job = 3,
                      .key = {7, 8},
                      .ok = 0,
                      .error = "worker killed by signal 11",
                      .start = 3,
                      .end = 4,
                      .term_signal = 11,
                      .worker_pid = -1,
                      .host = NULL};
    res[2] = (rm_res){.job = 4, .key = {9, 10}, .ok = 1, .value_len = 0, .host = ""};
    c->mem = NULL;
}

static void test_chunk_round_trip(void **state) {
    (void)state;
    rm_chunk want, got;
    rm_res res[3];
    sample_chunk(&want, res);
    fv_buf out = {0};
    rm_chunk_encode(&want, &out);
    char err[256];
    assert_int_equal(rm_chunk_decode(out.data, out.len, &got, err, sizeof err), 0);
    fl_free(fl_ctx_default(), out.data);
    assert_int_equal(got.run, 42);
    assert_int_equal(got.batch, 3);
    assert_int_equal(got.element, 2);
    assert_int_equal(got.nres, 3);
    assert_int_equal(got.res[0].job, 2);
    assert_true(got.res[0].ok);
    assert_int_equal(got.res[0].value_len, 8);
    assert_memory_equal(got.res[0].value, args_a, 8);
    assert_string_equal(got.res[0].log, "line 1\nline 2\n");
    assert_null(got.res[0].error);
    assert_true(got.res[0].start == 1.5 && got.res[0].end == 2.25);
    assert_int_equal(got.res[0].peak_rss_kb, 1234);
    assert_int_equal(got.res[0].worker_pid, 99);
    assert_string_equal(got.res[0].host, "node-1");
    assert_false(got.res[1].ok);
    assert_string_equal(got.res[1].error, "worker killed by signal 11");
    assert_int_equal(got.res[1].term_signal, 11);
    assert_int_equal(got.res[1].worker_pid, -1);
    assert_null(got.res[1].host);
    assert_null(got.res[1].log);
    assert_true(got.res[1].key.hi == 7 && got.res[1].key.lo == 8);
    assert_string_equal(got.res[2].host, "");
    rm_chunk_free(&got);
}

static void test_end_round_trip(void **state) {
    (void)state;
    fv_buf out = {0};
    rm_end_encode(-7, 1, 2, 300, &out);
    int64_t run;
    uint32_t b, e, n;
    char err[256];
    assert_int_equal(rm_end_decode(out.data, out.len, &run, &b, &e, &n, err, sizeof err), 0);
    assert_true(run == -7 && b == 1 && e == 2 && n == 300);
    /* a result chunk is not an end marker */
    fv_buf c = {0};
    rm_chunk ch;
    rm_res res[3];
    sample_chunk(&ch, res);
    rm_chunk_encode(&ch, &c);
    assert_int_equal(rm_end_decode(c.data, c.len, &run, &b, &e, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an end marker file"));
    fl_free(fl_ctx_default(), out.data);
    fl_free(fl_ctx_default(), c.data);
}

/* One line, not empty. */
static void one_line(const char *err) {
    assert_true(err[0] != 0);
    assert_null(strchr(err, '\n'));
}

static void test_truncated_and_flipped(void **state) {
    (void)state;
    fv_buf b;
    encode_batch(&b);
    rm_chunk ch;
    rm_res res[3];
    sample_chunk(&ch, res);
    fv_buf c = {0};
    rm_chunk_encode(&ch, &c);
    char err[256];
    for (size_t n = 0; n < b.len; n++) { /* every prefix, in a block of its own size */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.data, n);
        rm_batch got;
        err[0] = 0;
        assert_int_equal(rm_batch_decode(cut, n, &got, err, sizeof err), -1);
        one_line(err);
        free(cut);
    }
    for (size_t n = 0; n < c.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, c.data, n);
        rm_chunk got;
        err[0] = 0;
        assert_int_equal(rm_chunk_decode(cut, n, &got, err, sizeof err), -1);
        one_line(err);
        free(cut);
    }
    for (size_t i = 0; i < b.len; i++) { /* every byte changed */
        b.data[i] ^= 0x20;
        rm_batch got;
        err[0] = 0;
        assert_int_equal(rm_batch_decode(b.data, b.len, &got, err, sizeof err), -1);
        one_line(err);
        b.data[i] ^= 0x20;
    }
    for (size_t i = 0; i < c.len; i++) {
        c.data[i] ^= 0x01;
        rm_chunk got;
        assert_int_equal(rm_chunk_decode(c.data, c.len, &got, err, sizeof err), -1);
        c.data[i] ^= 0x01;
    }
    fl_free(fl_ctx_default(), b.data);
    fl_free(fl_ctx_default(), c.data);
}

/* Change 4 bytes at off to v and make the checksum match again. */
static void forge(uint8_t *d, size_t len, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++)
        d[off + i] = (uint8_t)(v >> (8 * i));
    uint64_t h = fl_hash_bytes(d, len - 8);
    for (int i = 0; i < 8; i++)
        d[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void test_forged(void **state) {
    (void)state;
    /* the batch header: magic 8, version 4, hash 32, run 8, batch 4, nelem 4, njobs 4 */
    const size_t o_nelem = 8 + 4 + 32 + 8 + 4, o_njobs = o_nelem + 4, o_first = o_njobs + 4;
    struct {
        size_t off;
        uint32_t v;
        const char *why;
    } cases[] = {
        {o_njobs, 0xffffffffu, "job count"},
        {o_njobs, 100, "job count"}, /* more jobs than there are bytes for */
        {o_nelem, 0, "element or job count"},
        {o_nelem, 1u << 20, "element or job count"},
        {o_first + 4, 4, "element range"},                               /* first[1] > first[2] */
        {o_first, 1, "element range"},                                   /* first[0] != 0 */
        {o_first + 12, 4, "element range"},                              /* first[nelem] != njobs */
        {o_first + 16 + 16 + 4 + 8 + 4 + 8, 0xfffffff0u, "job out_dir"}, /* a string too long */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fv_buf b;
        encode_batch(&b);
        forge(b.data, b.len, cases[k].off, cases[k].v);
        rm_batch got;
        char err[256] = "";
        assert_int_equal(rm_batch_decode(b.data, b.len, &got, err, sizeof err), -1);
        if (!strstr(err, cases[k].why)) fail_msg("case %zu: '%s' lacks '%s'", k, err, cases[k].why);
        fl_free(fl_ctx_default(), b.data);
    }
    /* a string whose NUL is not there */
    fv_buf b;
    encode_batch(&b);
    size_t at = o_first + 16 + 16 + 4 + 8 + 4 + 8 + 4 + strlen("/s/work/o");
    assert_int_equal(b.data[at], 0);
    b.data[at] = 'x';
    forge(b.data, b.len, 0, 0x574f4c46u); /* "FLOW": the checksum only */
    rm_batch got;
    char err[256];
    assert_int_equal(rm_batch_decode(b.data, b.len, &got, err, sizeof err), -1);
    assert_non_null(strstr(err, "job out_dir"));
    fl_free(fl_ctx_default(), b.data);
    /* a result count the file cannot hold */
    rm_chunk ch;
    rm_res res[3];
    sample_chunk(&ch, res);
    fv_buf c = {0};
    rm_chunk_encode(&ch, &c);
    forge(c.data, c.len, 8 + 4 + 8 + 4 + 4, 1000);
    rm_chunk cg;
    assert_int_equal(rm_chunk_decode(c.data, c.len, &cg, err, sizeof err), -1);
    assert_non_null(strstr(err, "result count"));
    fl_free(fl_ctx_default(), c.data);
    /* another format version: said as such */
    encode_batch(&b);
    forge(b.data, b.len, 8, 99);
    assert_int_equal(rm_batch_decode(b.data, b.len, &got, err, sizeof err), -1);
    assert_non_null(strstr(err, "format version 99"));
    fl_free(fl_ctx_default(), b.data);
}

static void test_files(void **state) {
    (void)state;
    char dir[] = "/tmp/test_remote_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/b0.batch", dir);
    uint8_t *d;
    size_t n;
    assert_int_equal(rm_read_file(path, &d, &n, err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    fv_buf b;
    encode_batch(&b);
    assert_int_equal(rm_write_file(path, b.data, b.len, err, sizeof err), 0);
    rm_batch got;
    assert_int_equal(rm_batch_read(path, &got, err, sizeof err), 0);
    assert_int_equal(got.njobs, 5);
    rm_batch_free(&got);
    /* no temp file left behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) = 1", dir);
    assert_int_equal(system(cmd), 0);
    /* a damaged file read through rm_batch_read names it */
    assert_int_equal(rm_write_file(path, b.data, b.len - 1, err, sizeof err), 0);
    assert_int_equal(rm_batch_read(path, &got, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "damaged batch file"));
    /* a folder is not a batch file */
    assert_int_equal(rm_batch_read(dir, &got, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    rmdir(dir);
    fl_free(fl_ctx_default(), b.data);
}

static void test_job_keys(void **state) {
    (void)state;
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t ti = plan_type_basic(p, PT_INT);
    uint32_t par = PLAN_PUSH(p, params);
    p->params[par].name = plan_intern_str(p, "x");
    p->params[par].type = ti;
    p->params[par].def = PLAN_NONE;
    uint32_t t = PLAN_PUSH(p, tasks);
    p->tasks[t].name = plan_intern_str(p, "inc");
    p->tasks[t].kind = TK_C;
    p->tasks[t].first_param = par;
    p->tasks[t].nparams = 1;
    p->tasks[t].ret = ti;
    fl_val a1 = {.i = 1}, a2 = {.i = 2};
    rt_job j = {.task = t, .map_index = 3, .args = &a1, .attempt = 0};
    rm_key k1 = rm_job_key(p, &j), k1b = rm_job_key(p, &j);
    assert_true(k1.hi == k1b.hi && k1.lo == k1b.lo);
    j.out_dir = "/elsewhere"; /* where it writes is not what it is */
    k1b = rm_job_key(p, &j);
    assert_true(k1.hi == k1b.hi && k1.lo == k1b.lo);
    j.attempt = 1;
    rm_key k2 = rm_job_key(p, &j);
    j.attempt = 0;
    j.map_index = 4;
    rm_key k3 = rm_job_key(p, &j);
    j.map_index = 3;
    j.args = &a2;
    rm_key k4 = rm_job_key(p, &j);
    assert_false(k1.hi == k2.hi && k1.lo == k2.lo);
    assert_false(k1.hi == k3.hi && k1.lo == k3.lo);
    assert_false(k1.hi == k4.hi && k1.lo == k4.lo);
    plan_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_round_trip), cmocka_unit_test(test_chunk_round_trip),
        cmocka_unit_test(test_end_round_trip),   cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_forged),           cmocka_unit_test(test_files),
        cmocka_unit_test(test_job_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
