/* test_store.c — the content-addressed store and the state database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "plan.h"
#include "state.h"
#include "store.h"

static char *tmpdir(void) {
    char *d = strdup("/tmp/flow-store-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", d, d);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_bytes_roundtrip(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    fl_digest h, h2;
    assert_int_equal(store_put_bytes(st, "hello", 5, &h, err, sizeof err), 0);
    char hex[65];
    hash_hex(&h, hex);
    /* SHA-256("hello") */
    assert_string_equal(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_int_equal(hash_from_hex(hex, &h2), 0);
    assert_memory_equal(h.b, h2.b, 32);
    assert_true(store_has(st, &h));
    uint8_t *data;
    size_t len;
    assert_int_equal(store_read(st, &h, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    free(data);
    /* objects are read-only */
    char p[4096];
    store_object_path(st, &h, p, sizeof p);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0444);
    store_close(st);
    rm_rf(d);
    free(d);
}

static void test_damaged_object_is_never_served(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    fl_digest h;
    assert_int_equal(store_put_bytes(st, "some content", 12, &h, err, sizeof err), 0);
    char p[4096];
    store_object_path(st, &h, p, sizeof p);
    chmod(p, 0644);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "S", 1, 0), 1); /* flip the first byte */
    close(fd);
    uint8_t *data = NULL;
    size_t len;
    assert_int_equal(store_read(st, &h, &data, &len), -1);
    assert_false(store_has(st, &h)); /* removed, to be recomputed */
    assert_int_equal(store_put_bytes(st, "some content", 12, &h, err, sizeof err), 0);
    assert_int_equal(store_verify(st, &h), 0);
    store_close(st);
    rm_rf(d);
    free(d);
}

static void test_move_file_and_dedup(void **state) {
    (void)state;
    char *d = tmpdir(), err[256], a[4200], b[4200];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    snprintf(a, sizeof a, "%s/a.txt", d);
    snprintf(b, sizeof b, "%s/b.txt", d);
    write_file(a, "same bytes\n");
    write_file(b, "same bytes\n");
    fl_digest ha, hb;
    assert_int_equal(store_put_file(st, a, 1, &ha, err, sizeof err), 0);
    assert_int_equal(store_put_file(st, b, 0, &hb, err, sizeof err), 0);
    assert_memory_equal(ha.b, hb.b, 32);
    assert_int_not_equal(access(a, F_OK), 0); /* moved */
    assert_int_equal(access(b, F_OK), 0);     /* copied: the original stays */
    assert_int_equal(store_put_file(st, "/nonexistent/x", 0, &ha, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x"));
    store_close(st);
    rm_rf(d);
    free(d);
}

static void test_dir_manifest_and_tree(void **state) {
    (void)state;
    char *d = tmpdir(), err[256], p[4200];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    snprintf(p, sizeof p, "%s/out", d);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/out/sub", d);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/out/z.txt", d);
    write_file(p, "zz");
    snprintf(p, sizeof p, "%s/out/sub/a.txt", d);
    write_file(p, "aa");
    snprintf(p, sizeof p, "%s/out", d);
    fl_digest m1, m2;
    assert_int_equal(store_put_dir(st, p, 0, &m1, err, sizeof err), 0);
    assert_int_equal(store_put_dir(st, p, 1, &m2, err, sizeof err), 0); /* same content */
    assert_memory_equal(m1.b, m2.b, 32);
    assert_int_not_equal(access(p, F_OK), 0); /* moved away */
    uint8_t *m;
    size_t n;
    assert_int_equal(store_read(st, &m1, &m, &n), 0);
    /* sorted by name: sub/a.txt before z.txt */
    assert_non_null(strstr((char *)m, " 444 sub/a.txt\n"));
    assert_true(strstr((char *)m, "sub/a.txt") < strstr((char *)m, "z.txt"));
    free(m);
    char tree[4096];
    assert_int_equal(store_tree(st, &m1, tree, sizeof tree, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/sub/a.txt", tree);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char buf[8] = {0};
    assert_int_equal(fread(buf, 1, 2, f), 2);
    fclose(f);
    assert_string_equal(buf, "aa");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0222, 0); /* read-only */
    store_close(st);
    rm_rf(d);
    free(d);
}

/* Found by fuzz_store: a stored folder holding "v1..2.txt" could not be materialised
 * (store_tree refused any name containing ".."), an empty folder sorted NULL, and a
 * file name with a newline split its manifest line. A manifest naming "../x" is still
 * refused. */
static void test_tree_names_and_empty_dir(void **state) {
    (void)state;
    char *d = tmpdir(), err[256], p[4200], tree[4096];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    snprintf(p, sizeof p, "%s/out", d);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/out/v1..2.txt", d);
    write_file(p, "dots");
    snprintf(p, sizeof p, "%s/out/..x", d);
    write_file(p, "more");
    snprintf(p, sizeof p, "%s/out", d);
    fl_digest h;
    assert_int_equal(store_put_dir(st, p, 0, &h, err, sizeof err), 0);
    if (store_tree(st, &h, tree, sizeof tree, err, sizeof err)) fail_msg("store_tree: %s", err);
    snprintf(p, sizeof p, "%s/v1..2.txt", tree);
    assert_int_equal(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/empty", d); /* nothing in it: an empty manifest */
    mkdir(p, 0755);
    assert_int_equal(store_put_dir(st, p, 0, &h, err, sizeof err), 0);
    assert_int_equal(store_tree(st, &h, tree, sizeof tree, err, sizeof err), 0);
    snprintf(p, sizeof p, "%s/nl", d); /* a newline would split the manifest's line */
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/nl/a\nb", d);
    write_file(p, "x");
    snprintf(p, sizeof p, "%s/nl", d);
    assert_int_equal(store_put_dir(st, p, 0, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "newline"));
    assert_null(strchr(err, '\n'));
    const char *hostile[] = {"../x", "a/../../x", "/etc/x", "a//b", "./x", "a/"};
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        char line[200], hex[65];
        fl_digest obj, man;
        assert_int_equal(store_put_bytes(st, "x", 1, &obj, err, sizeof err), 0);
        hash_hex(&obj, hex);
        snprintf(line, sizeof line, "%s 444 %s\n", hex, hostile[i]);
        assert_int_equal(store_put_bytes(st, line, strlen(line), &man, err, sizeof err), 0);
        if (store_tree(st, &man, tree, sizeof tree, err, sizeof err) == 0)
            fail_msg("a manifest naming '%s' was materialised", hostile[i]);
    }
    store_close(st);
    rm_rf(d);
    free(d);
}

static void test_gc_keeps_live(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    fl_digest keep, drop;
    store_put_bytes(st, "keep", 4, &keep, err, sizeof err);
    store_put_bytes(st, "drop", 4, &drop, err, sizeof err);
    uint64_t freed = 0;
    assert_int_equal(store_gc(st, &keep, 1, &freed), 1);
    assert_int_equal(freed, 4);
    assert_true(store_has(st, &keep));
    assert_false(store_has(st, &drop));
    store_close(st);
    rm_rf(d);
    free(d);
}

static void count_ref(const fl_digest *h, void *ctx) {
    fl_digest *seen = ctx;
    seen[seen[0].b[0]++ + 1] = *h;
}

/* Store paths are found in any bytes (encoded values, JSON), and nothing else is. */
static void test_refs_scan(void **state) {
    (void)state;
    fl_digest a, b, seen[8];
    hash_bytes("a", 1, &a);
    hash_bytes("b", 1, &b);
    char ha[65], hb[65], text[1024];
    hash_hex(&a, ha);
    hash_hex(&b, hb);
    snprintf(text, sizeof text,
             "\x05[\"/st/store/named/%s/out.csv\",\"/st/store/trees/%s\"] /named/%s0 "
             "/named/%.63s/x /trees/%s",
             ha, hb, ha, ha, hb);
    memset(seen, 0, sizeof seen);
    store_refs_scan(text, strlen(text), count_ref, seen);
    assert_int_equal(seen[0].b[0], 3); /* the 65-digit and the 63-digit ones are not paths */
    assert_memory_equal(seen[1].b, a.b, 32);
    assert_memory_equal(seen[2].b, b.b, 32);
    assert_memory_equal(seen[3].b, b.b, 32);
}

static void note_gone(const fl_digest *h, uint64_t bytes, void *ctx) {
    (void)h;
    *(uint64_t *)ctx += bytes;
}

/* A dry run reports what would go and removes nothing; a kept directory keeps its files. */
static void test_collect_dry_and_trees(void **state) {
    (void)state;
    char *d = tmpdir(), err[256], sub[4096], path[4200];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    snprintf(sub, sizeof sub, "%s/out", d);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/f.txt", sub);
    FILE *f = fopen(path, "w");
    fputs("in a directory", f);
    fclose(f);
    fl_digest man, drop, file;
    assert_int_equal(store_put_dir(st, sub, 0, &man, err, sizeof err), 0);
    assert_int_equal(store_tree(st, &man, path, sizeof path, err, sizeof err), 0);
    hash_bytes("in a directory", 14, &file);
    store_put_bytes(st, "drop me", 7, &drop, err, sizeof err);
    uint64_t listed = 0, freed = 0;
    store_gc_opts o = {1, note_gone, &listed};
    assert_int_equal(store_collect(st, &man, 1, &o, &freed), 1);
    assert_int_equal(listed, 7);
    assert_int_equal(freed, 7);
    assert_true(store_has(st, &drop));
    assert_int_equal(store_gc(st, &man, 1, &freed), 1);
    assert_false(store_has(st, &drop));
    assert_true(store_has(st, &man));
    assert_true(store_has(st, &file)); /* the directory's file, though only its manifest is kept */
    store_close(st);
    rm_rf(d);
    free(d);
}

/* ---- state.db ---- */
static int count_inst(const state_inst *r, void *ctx) {
    (void)r;
    (*(int *)ctx)++;
    return 0;
}

static long long wal_size(const char *d) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/state.db-wal", d);
    return stat(p, &sb) ? -1 : (long long)sb.st_size;
}

/* A small run leaves its write-ahead log for the next run (no checkpoint and no
 * fsync at close, no new log at open); a log past STATE_WAL_KEEP (4 MiB) is
 * checkpointed and emptied at close. What is in a kept log is read back. */
static void test_state_wal_kept_when_small(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run r = {.flow = "small", .params_json = "{}", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    assert_int_equal(state_run_end(st, r.id, "succeeded", 0, "1", NULL), 0);
    state_close(st);
    long long small = wal_size(d);
    assert_true(small > 0); /* kept, not checkpointed */
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run g;
    assert_int_equal(state_run_get(st, r.id, &g), 0); /* read from the kept log */
    assert_string_equal(g.result_json, "1");
    state_run_free(&g);
    /* a run that writes past 4 MiB: the log is checkpointed and emptied at close */
    state_run big = {.flow = "big", .params_json = "{}", .pid = 1};
    assert_int_equal(state_run_begin(st, &big), 0);
    char *blob = malloc(1 << 20);
    assert_non_null(blob);
    memset(blob, 'x', 1 << 20);
    for (int i = 0; i < 6; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        blob[0] = (char)('a' + i);
        state_inst in = {.run = big.id, .node = 1, .idx = idx, .task = "t",
                         .state = "failed", .attempts = 1, .exit_status = 1,
                         .error = blob};
        blob[(1 << 20) - 1] = 0;
        assert_int_equal(state_inst_put(st, &in), 0);
        assert_int_equal(state_commit(st), 0);
    }
    free(blob);
    assert_true(wal_size(d) > (4 << 20));
    state_close(st);
    assert_int_equal(wal_size(d), 0);
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    int n = 0;
    assert_int_equal(state_insts_each(st, big.id, count_inst, &n), 0);
    assert_int_equal(n, 6);
    state_close(st);
    rm_rf(d);
    free(d);
}

static void test_state_runs_instances_cache(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run r = {.flow = "wordcount", .params_json = "{\"root\":\"data\"}", .pid = 42};
    assert_int_equal(state_run_begin(st, &r), 0);
    assert_true(r.id > 0);
    for (int i = 0; i < 1000; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        state_inst in = {.run = r.id, .node = 3, .idx = idx, .task = "count_words",
                         .state = "succeeded", .attempts = 1, .exit_status = -1};
        assert_int_equal(state_inst_put(st, &in), 0);
    }
    assert_int_equal(state_commit(st), 0);
    int n = 0;
    assert_int_equal(state_insts_each(st, r.id, count_inst, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(state_inst_clear(st, r.id, "count_words", "7"), 1);
    assert_int_equal(state_inst_clear(st, r.id, "count_words", NULL), 1000);
    assert_int_equal(state_run_end(st, r.id, "succeeded", 0, "42", NULL), 0);
    state_run g;
    assert_int_equal(state_run_get(st, r.id, &g), 0);
    assert_string_equal(g.state, "succeeded");
    assert_string_equal(g.result_json, "42");
    assert_string_equal(g.env, "prod");
    state_run_free(&g);

    fl_digest key, obj;
    hash_bytes("k", 1, &key);
    hash_bytes("o", 1, &obj);
    uint8_t *v;
    size_t len;
    assert_int_equal(state_cache_get(st, "t", &key, &v, &len), 0);
    state_inst cin = {.run = r.id, .node = 9, .idx = "", .task = "t", .state = "succeeded",
                      .attempts = 1, .exit_status = -1, .cache_key = &key, .result = "abc",
                      .result_len = 3, .cache_store = 1};
    assert_int_equal(state_inst_put(st, &cin), 0);
    assert_int_equal(state_cache_put(st, &key, NULL, 0, r.id, &obj, 1), 0);
    assert_int_equal(state_commit(st), 0);
    assert_int_equal(state_cache_get(st, "t", &key, &v, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "abc", 3);
    free(v);
    fl_digest other = key;
    other.b[31] ^= 1; /* same first 8 bytes, another key: not a hit */
    assert_int_equal(state_cache_get(st, "t", &other, &v, &len), 0);
    fl_digest *live;
    size_t nlive;
    assert_int_equal(state_live_objects(st, &live, &nlive), 0);
    assert_int_equal(nlive, 1);
    assert_memory_equal(live[0].b, obj.b, 32);
    free(live);
    assert_int_equal(state_cache_drop(st, "t", &key), 0);
    assert_int_equal(state_commit(st), 0);
    assert_int_equal(state_cache_get(st, "t", &key, &v, &len), 0);

    state_file_id id = {10, 123456789, 77, 987654321};
    fl_digest fh;
    assert_int_equal(state_file_lookup(st, "/x/a.csv", &id, &fh), 0);
    assert_int_equal(state_file_put(st, "/x/a.csv", &id, &obj), 0);
    assert_int_equal(state_file_lookup(st, "/x/a.csv", &id, &fh), 1);
    id.mtime_ns++;
    assert_int_equal(state_file_lookup(st, "/x/a.csv", &id, &fh), 0);
    /* the record before a content change is kept (why: old -> new), not one before a
     * mere touch */
    state_file_rec fr;
    assert_int_equal(state_file_record(st, "/x/a.csv", &fr), 1);
    assert_int_equal(fr.has_prev, 0);
    fl_digest changed = obj;
    changed.b[0] ^= 1;
    state_file_id id2 = {12, id.mtime_ns, 77, 987654322};
    assert_int_equal(state_file_put(st, "/x/a.csv", &id2, &changed), 0);
    id2.mtime_ns += 5; /* touched, same content */
    assert_int_equal(state_file_put(st, "/x/a.csv", &id2, &changed), 0);
    assert_int_equal(state_file_record(st, "/x/a.csv", &fr), 1);
    assert_int_equal(fr.size, 12);
    assert_int_equal(fr.mtime_ns, id2.mtime_ns);
    assert_memory_equal(fr.hash.b, changed.b, 32);
    assert_int_equal(fr.has_prev, 1);
    assert_int_equal(fr.prev_size, 10);
    assert_int_equal(fr.prev_mtime_ns, 123456789);
    assert_memory_equal(fr.prev_hash.b, obj.b, 32);
    assert_int_equal(state_file_record(st, "/x/none", &fr), 0);
    state_close(st);

    /* reopening keeps everything */
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_run_get(st, r.id, &g), 0);
    state_run_free(&g);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* The file-identity index read a folder at a time: once lookups hit, a folder's
 * rows come from memory, and they say exactly what SQLite would have said: a known
 * identity hits, a changed one misses, a file of a deeper folder or of another
 * folder with the same prefix is not taken for one of this folder, and a row put
 * during the run is seen at once. Checked against a second state that never
 * reaches the threshold (SQLite answers every lookup). */
static void test_state_file_folders(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    char path[64];
    fl_digest h = {{0}}, got;
    for (int i = 0; i < 200; i++) {
        state_file_id id = {i, 1000 + i, 7, 2000 + i};
        h.b[0] = (uint8_t)i;
        snprintf(path, sizeof path, "/t/d%d/f%03d", i % 2, i);
        assert_int_equal(state_file_put(st, path, &id, &h), 0);
    }
    state_file_id deep = {1, 1, 1, 1};
    h.b[0] = 99;
    assert_int_equal(state_file_put(st, "/t/d0/sub/f000", &deep, &h), 0);
    assert_int_equal(state_file_put(st, "/t/d00/f000", &deep, &h), 0);
    assert_int_equal(state_commit(st), 0);
    state_close(st);
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    /* 64 hits in d1 through SQLite turn the folders on; then d0 is read whole */
    for (int i = 1; i < 130; i += 2) {
        state_file_id id = {i, 1000 + i, 7, 2000 + i};
        snprintf(path, sizeof path, "/t/d1/f%03d", i);
        assert_int_equal(state_file_lookup(st, path, &id, &got), 1);
        assert_int_equal(got.b[0], i);
    }
    for (int i = 0; i < 200; i += 2) {
        state_file_id id = {i, 1000 + i, 7, 2000 + i};
        snprintf(path, sizeof path, "/t/d0/f%03d", i);
        assert_int_equal(state_file_lookup(st, path, &id, &got), 1);
        assert_int_equal(got.b[0], i);
        id.ctime_ns++; /* changed: a miss, from memory as from SQLite */
        assert_int_equal(state_file_lookup(st, path, &id, &got), 0);
    }
    state_file_id id0 = {0, 1000, 7, 2000};
    /* a deeper folder's row and a sibling folder's are their own, not d0's */
    assert_int_equal(state_file_lookup(st, "/t/d0/sub/f000", &id0, &got), 0);
    assert_int_equal(state_file_lookup(st, "/t/d0/sub/f000", &deep, &got), 1);
    assert_int_equal(got.b[0], 99);
    assert_int_equal(state_file_lookup(st, "/t/d00/f000", &deep, &got), 1);
    assert_int_equal(state_file_lookup(st, "/t/d0/nothere", &id0, &got), 0);
    /* put during the run: seen at once, and a new identity replaces the old */
    state_file_id nid = {5, 5, 5, 5};
    h.b[0] = 42;
    assert_int_equal(state_file_put(st, "/t/d0/f000", &nid, &h), 0);
    assert_int_equal(state_file_put(st, "/t/d0/new", &nid, &h), 0);
    assert_int_equal(state_file_lookup(st, "/t/d0/f000", &nid, &got), 1);
    assert_int_equal(got.b[0], 42);
    assert_int_equal(state_file_lookup(st, "/t/d0/f000", &id0, &got), 0);
    assert_int_equal(state_file_lookup(st, "/t/d0/new", &nid, &got), 1);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* ---- cache packs (state.c "cache packs") ---- */
static sqlite3 *open_db(const char *dir) {
    char db[600];
    snprintf(db, sizeof db, "%s/state.db", dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    return h;
}

static void put_cached(fl_state *st, int64_t run, uint32_t node, const fl_digest *key,
                       const char *val) {
    state_inst in = {.run = run, .node = node, .idx = "", .task = "t", .state = "succeeded",
                     .attempts = 1, .exit_status = -1, .cache_key = key, .result = val,
                     .result_len = val ? strlen(val) : 0, .cache_store = 1};
    assert_int_equal(state_inst_put(st, &in), 0);
}

typedef struct seen {
    int n;
    fl_digest keys[8];
    char vals[8][16];
} seen;
static int seen_add(const fl_digest *key, const void *val, size_t len, void *ctx) {
    seen *w = ctx;
    if (w->n < 8 && len < 16) {
        w->keys[w->n] = *key;
        memcpy(w->vals[w->n], val, len);
        w->vals[w->n][len] = 0;
    }
    w->n++;
    return 0;
}

/* One pack, every field: the header, the index sorted by key prefix pointing at its
 * entries, and each entry (key, identity, environment, run, inputs, result) in the
 * order produced; state_cache_each gives them back in that order. */
static void test_cache_pack_fields(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    static const char *vals[] = {"zero", "one!", "", "three"};
    fl_digest keys[4];
    for (int i = 0; i < 4; i++) {
        hash_bytes(vals[i], strlen(vals[i]) + 1, &keys[i]);
        put_cached(st, r.id, (uint32_t)i + 1, &keys[i], vals[i]);
    }
    assert_int_equal(state_sync(st), 0);
    seen w = {0};
    assert_int_equal(state_cache_each(st, "t", seen_add, &w), 0);
    assert_int_equal(w.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(w.keys[i].b, keys[i].b, 32);
        assert_string_equal(w.vals[i], vals[i]);
    }
    sqlite3 *db = open_db(d);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT n, body FROM cache_pack", -1, &q, NULL), 0);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 4);
    const uint8_t *b = sqlite3_column_blob(q, 1);
    size_t size = (size_t)sqlite3_column_bytes(q, 1);
    assert_true(size > 8 + 4 * 8);
    assert_int_equal(b[0], 'K');
    assert_int_equal(b[1], 1);
    uint32_t n, prev = 0;
    memcpy(&n, b + 4, 4);
    assert_int_equal(n, 4);
    size_t at = 8 + 8 * 4;
    for (int i = 0; i < 4; i++) { /* entries in production order */
        assert_true(at + 49 < size);
        assert_memory_equal(b + at, keys[i].b, 32);
        static const uint8_t zero[12];
        assert_memory_equal(b + at + 32, zero, 12); /* identity, environment: unknown */
        uint32_t run;
        memcpy(&run, b + at + 44, 4);
        assert_int_equal(run, r.id);
        assert_int_equal(b[at + 48], 0); /* no input hashes */
        assert_int_equal(b[at + 49], strlen(vals[i]) + 1); /* varint: length + 1 */
        assert_memory_equal(b + at + 50, vals[i], strlen(vals[i]));
        int slot = -1; /* the index points here, under the key's prefix */
        for (int j = 0; j < 4; j++) {
            uint32_t sl[2];
            memcpy(sl, b + 8 + 8 * j, 8);
            if (sl[1] == at) slot = j;
            if (sl[1] == at)
                assert_int_equal(sl[0], (uint32_t)keys[i].b[0] << 24 | keys[i].b[1] << 16 |
                                            keys[i].b[2] << 8 | keys[i].b[3]);
        }
        assert_true(slot >= 0);
        at += 50 + strlen(vals[i]);
    }
    assert_int_equal(at, size);
    for (int j = 0; j < 4; j++) { /* sorted by prefix */
        uint32_t p;
        memcpy(&p, b + 8 + 8 * j, 4);
        assert_true(p >= prev);
        prev = p;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* The synchronous state writes each entry at once: each write absorbs the pack
 * before it (cpack_absorb), so one pack holds both copies of a; the newest entry of
 * a key wins; a drop removes every copy and takes them off the count. */
static void test_cache_newest_pack_wins(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    fl_digest a, b;
    hash_bytes("a", 1, &a);
    hash_bytes("b", 1, &b);
    put_cached(st, r.id, 1, &a, "old");
    put_cached(st, r.id, 2, &b, "bee");
    put_cached(st, r.id, 3, &a, "new");
    assert_int_equal(state_commit(st), 0);
    sqlite3 *db = open_db(d);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM cache_pack", -1, &q, NULL), 0);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    sqlite3_close(db);
    uint8_t *v;
    size_t len;
    assert_int_equal(state_cache_get(st, "t", &a, &v, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "new", 3);
    free(v);
    assert_int_equal(state_cache_get(st, "t", &b, &v, &len), 1);
    assert_memory_equal(v, "bee", 3);
    free(v);
    assert_int_equal(state_cache_count(st, "t"), 3);
    assert_int_equal(state_cache_drop(st, "t", &a), 0);
    assert_int_equal(state_commit(st), 0);
    assert_int_equal(state_cache_get(st, "t", &a, &v, &len), 0); /* neither copy */
    assert_int_equal(state_cache_count(st, "t"), 1);
    seen w = {0};
    assert_int_equal(state_cache_each(st, "t", seen_add, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.vals[0], "bee");
    state_close(st);
    rm_rf(d);
    free(d);
}

static int64_t packs_of(const char *dir, int full) {
    sqlite3 *db = open_db(dir);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, full ? "SELECT count(*) FROM cache_pack WHERE n = 4096"
                                                 : "SELECT count(*) FROM cache_pack WHERE n < 4096",
                                        -1, &q, NULL), 0);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* Many small flushes of one task (a run of one instance each, state_sync after each:
 * what sync mode and short runs do) do not leave a pack per flush: the packs that are
 * not full stay at most 12, a lookup searches at most one pack per 4,096 entries
 * plus 12, and the newest copy of a key still wins, across a full pack too. */
static void test_cache_packs_bounded(void **state) {
    (void)state;
    enum { N = 5000 };
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    fl_digest a, k;
    hash_bytes("a", 1, &a);
    long most_small = 0;
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        if (i == 10 || i == N - 3) put_cached(st, r.id, 1, &a, v); /* a, twice */
        hash_bytes(&i, sizeof i, &k);
        put_cached(st, r.id, 2, &k, v);
        assert_int_equal(state_sync(st), 0);
        if (i % 97 == 0) {
            int64_t small = packs_of(d, 0);
            assert_true(small <= 12);
            if (small > most_small) most_small = small;
        }
    }
    assert_true(most_small >= 4); /* (the bound is reached for real) */
    assert_int_equal(packs_of(d, 1), 1);
    assert_true(packs_of(d, 0) <= 12);
    uint8_t *v;
    size_t len;
    char want[16];
    snprintf(want, sizeof want, "%d", N - 3);
    assert_int_equal(state_cache_get(st, "t", &a, &v, &len), 1);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len); /* the newest, not the copy in the full pack */
    free(v);
    fl_digest none;
    hash_bytes("none", 4, &none);
    assert_int_equal(state_cache_get(st, "t", &none, &v, &len), 0);
    long lookups, packs, most;
    state_cache_lookup_stats(st, &lookups, &packs, &most);
    assert_int_equal(lookups, 2);
    assert_true(most >= 2 && most <= 1 + 12); /* the miss searched every pack of t */
    int i = 123;
    hash_bytes(&i, sizeof i, &k);
    assert_int_equal(state_cache_get(st, "t", &k, &v, &len), 1);
    assert_memory_equal(v, "123", 3);
    free(v);
    assert_int_equal(state_cache_count(st, "t"), N + 2); /* both copies of a */
    state_close(st);
    rm_rf(d);
    free(d);
}

/* Every entry of full packs is found by a point lookup asked out of production order
 * (each pack's index sorted by key prefix: a binary search, not the entry after the
 * last hit), with a third of the keys sharing their first four bytes two by two
 * (ties in the index keep the order of the entries; a lookup reads at most 64 slots of
 * one prefix) and two tasks' entries interleaved (the held
 * entries grouped by task, each group in order of arrival). */
static void test_cache_pack_index_lookups(void **state) {
    (void)state;
    enum { N = 9000 };
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    fl_digest k;
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        hash_bytes(&i, sizeof i, &k);
        if (i % 3 == 0) k.b[0] = k.b[1] = 0, k.b[2] = (uint8_t)(i / 12 >> 8), k.b[3] = (uint8_t)(i / 12);
        state_inst in = {.run = r.id, .node = (uint32_t)(1 + i % 2), .idx = "",
                         .task = i % 2 ? "t" : "u", .state = "succeeded", .attempts = 1,
                         .exit_status = -1, .cache_key = &k, .result = v,
                         .result_len = strlen(v), .cache_store = 1};
        assert_int_equal(state_inst_put(st, &in), 0);
    }
    assert_int_equal(state_sync(st), 0);
    for (int j = 0; j < N; j++) {
        int i = (int)(((long)j * 7919) % N);
        hash_bytes(&i, sizeof i, &k);
        if (i % 3 == 0) k.b[0] = k.b[1] = 0, k.b[2] = (uint8_t)(i / 12 >> 8), k.b[3] = (uint8_t)(i / 12);
        uint8_t *v;
        size_t len;
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        assert_int_equal(state_cache_get(st, i % 2 ? "t" : "u", &k, &v, &len), 1);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(v, want, len);
        free(v);
    }
    assert_int_equal(state_cache_count(st, "t"), N / 2);
    assert_int_equal(state_cache_count(st, "u"), N / 2);
    state_close(st);
    rm_rf(d);
    free(d);
}

static int warned;
static void count_warn(void *ud, fl_log_level level, const char *msg) {
    (void)ud;
    if (level == FL_LOG_WARN && strstr(msg, "cache pack") && strstr(msg, "damaged")) warned++;
}

/* A pack cut short or with an index pointing past its end: lookups miss, the
 * sequential read skips it, it is reported once, nothing is read past its end. */
static void test_cache_pack_damaged(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    ctx.log = count_warn;
    ctx.log_max = FL_LOG_WARN;
    warned = 0;
    fl_state *st = state_open(&ctx, d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    enum { N = 100 };
    static fl_digest keys[N];
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        hash_bytes(k, strlen(k), &keys[i]);
        put_cached(st, r.id, (uint32_t)i + 1, &keys[i], "a result");
    }
    assert_int_equal(state_sync(st), 0);
    state_close(st);
    /* each damage, and whether the sequential read (which needs no index) sees it */
    static const struct { const char *sql; int seq; } damage[] = {
        {"UPDATE cache_pack SET body = substr(body, 1, 900)", 1},             /* cut short */
        {"UPDATE cache_pack SET body = substr(body, 1, 12) || x'ffffff7f' ||"
         " substr(body, 17)", 0},                               /* a slot's entry past the end */
        {"UPDATE cache_pack SET body = substr(body, 1, 4) || x'00100000' || substr(body, 9)",
         1},                                                    /* more entries than there are */
        {"UPDATE cache_pack SET body = x'4b01'", 1},                          /* no count */
    };
    for (size_t t = 0; t < sizeof damage / sizeof *damage; t++) {
        char *d2 = tmpdir(), cmd[1300];
        /* the database and the log a small run leaves beside it */
        snprintf(cmd, sizeof cmd, "cp '%s/state.db' '%s/state.db-wal' '%s/'", d, d, d2);
        assert_int_equal(system(cmd), 0);
        sqlite3 *db = open_db(d2);
        assert_int_equal(sqlite3_exec(db, damage[t].sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        warned = 0;
        st = state_open(&ctx, d2, err, sizeof err);
        assert_non_null(st);
        int found = 0;
        for (int i = 0; i < N; i++) {
            uint8_t *v = NULL;
            size_t len;
            int got = state_cache_get(st, "t", &keys[i], &v, &len);
            assert_true(got == 0 || got == 1);
            if (got) assert_memory_equal(v, "a result", len);
            found += got;
            fl_free(&ctx, v);
        }
        /* (an index slot pointing past the end: the entries themselves are whole, and
         * lookups in production order follow them without the index) */
        assert_true(damage[t].seq ? found < N : found <= N);
        seen w = {0};
        assert_int_equal(state_cache_each(st, "t", seen_add, &w), 0);
        assert_true(damage[t].seq ? w.n < N : w.n == N);
        /* reported once; a damaged index slot only when a search reads it */
        assert_true(damage[t].seq ? warned == 1 : warned <= 1);
        assert_false(state_failed(st)); /* a cache may forget: the run is not failed */
        state_close(st);
        rm_rf(d2);
        free(d2);
    }
    rm_rf(d);
    free(d);
}

/* A state.db of schema 4 (the cache table, keyed by ck) opens: its entries are
 * packed by the migration to schema 5 and served. */
static void test_cache_migrated_from_schema4(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_close(st);
    fl_digest a, b;
    hash_bytes("a", 1, &a);
    hash_bytes("b", 1, &b);
    sqlite3 *db = open_db(d);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE cache_pack;"
                                  /* and schema 6's, 7's, 8's and 9's additions */
                                  "DROP TABLE task_cpu;"
                                  "ALTER TABLE files DROP COLUMN prev_size;"
                                  "ALTER TABLE files DROP COLUMN prev_mtime_ns;"
                                  "ALTER TABLE files DROP COLUMN prev_hash;"
                                  "DROP TABLE remote_batches;"
                                  "DROP TABLE envs;"
                                  "DROP TABLE first_seen; DROP INDEX runs_logical;"
                                  "ALTER TABLE runs DROP COLUMN logical;"
                                  "CREATE TABLE cache(ck INTEGER PRIMARY KEY, key BLOB NOT NULL,"
                                  " result BLOB);"
                                  "UPDATE meta SET value = 2 WHERE key = 'oldest_reader';"
                                  "PRAGMA user_version = 4;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO cache VALUES(?, ?, ?)", -1, &q, NULL), 0);
    uint64_t h = fl_hash_str("t"); /* task "t"'s tag, as state.c's task_tag */
    uint64_t tag = (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) & 0xffff;
    for (int i = 0; i < 2; i++) { /* ck: the tag, then the key's first 48 bits */
        const fl_digest *k = i ? &b : &a;
        uint64_t ck = tag << 48;
        for (int j = 0; j < 6; j++) ck |= (uint64_t)k->b[j] << (40 - 8 * j);
        sqlite3_bind_int64(q, 1, (int64_t)ck);
        sqlite3_bind_blob(q, 2, (i ? &b : &a)->b, 32, SQLITE_STATIC);
        sqlite3_bind_blob(q, 3, i ? "vb" : "va", 2, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    uint8_t *v;
    size_t len;
    assert_int_equal(state_cache_get(st, "t", &a, &v, &len), 1);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "va", 2);
    free(v);
    assert_int_equal(state_cache_get(st, "t", &b, &v, &len), 1);
    assert_memory_equal(v, "vb", 2);
    free(v);
    db = open_db(d);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), total(n), "
                                        "(SELECT count(*) FROM sqlite_master WHERE name = 'cache')"
                                        " FROM cache_pack", -1, &q, NULL), 0);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1); /* one task: one pack */
    assert_int_equal(sqlite3_column_int(q, 1), 2);
    assert_int_equal(sqlite3_column_int(q, 2), 0); /* the old table is gone */
    sqlite3_finalize(q);
    sqlite3_close(db);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* Through the writer thread: held cache entries are written as packs at the sync;
 * every one is found, and of two results for one key the later wins. */
static void test_state_cache_through_writer(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    enum { N = 3000 };
    static fl_digest keys[N];
    for (int i = 0; i < N; i++) {
        char k[32], v[32], idx[16];
        snprintf(k, sizeof k, "key %d", i);
        snprintf(v, sizeof v, "value %d", i);
        snprintf(idx, sizeof idx, "%d", i);
        hash_bytes(k, strlen(k), &keys[i]);
        state_inst in = {.run = r.id, .node = 1, .idx = idx, .task = "t", .state = "succeeded",
                         .attempts = 1, .exit_status = -1, .cache_key = &keys[i], .result = v,
                         .result_len = strlen(v), .cache_store = 1};
        assert_int_equal(state_inst_put(st, &in), 0);
        if (i % 500 == 499) assert_int_equal(state_commit(st), 0);
    }
    state_inst again = {.run = r.id, .node = 2, .idx = "", .task = "t", .state = "succeeded",
                        .attempts = 1, .exit_status = -1, .cache_key = &keys[7],
                        .result = "newer", .result_len = 5, .cache_store = 1};
    assert_int_equal(state_inst_put(st, &again), 0);
    assert_int_equal(state_sync(st), 0);
    /* entries stored, the older copy of keys[7] included (packs are appended to) */
    assert_int_equal(state_cache_count(st, "t"), N + 1);
    uint8_t *v7;
    size_t len7;
    assert_int_equal(state_cache_get(st, "t", &keys[7], &v7, &len7), 1); /* a search: */
    assert_int_equal(len7, 5);
    assert_memory_equal(v7, "newer", 5); /* the newest copy */
    free(v7);
    long lookups, packs0, packs1, most;
    state_cache_lookup_stats(st, &lookups, &packs0, &most);
    for (int i = 0; i < N; i++) {
        uint8_t *v;
        size_t len;
        char want[32];
        snprintf(want, sizeof want, "value %d", i);
        assert_int_equal(state_cache_get(st, "t", &keys[i], &v, &len), 1);
        if (i == 7 && len == 5) /* in production order, keys[7] follows keys[6]: the */
            assert_memory_equal(v, "newer", 5); /* older copy may be served too */
        else {
            assert_int_equal(len, strlen(want));
            assert_memory_equal(v, want, len);
        }
        free(v);
    }
    /* in production order, each lookup after the first follows the last hit: the
     * 3,000 lookups search packs only for the first */
    state_cache_lookup_stats(st, &lookups, &packs1, &most);
    assert_true(packs1 - packs0 <= 16);
    int n = 0;
    assert_int_equal(state_insts_each(st, r.id, count_inst, &n), 0);
    assert_int_equal(n, N + 1);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* Packed records, encoded by the caller in their final form (state_inst_put), come
 * back field for field, in both modes (through the writer, and synchronous):
 * records of two nodes and of two templates of one node interleaved, more than a
 * packed row holds, labels, keys, results (an empty one too), cached ones, and a
 * failure (a row of its own) among them; the cached results reach the cache. */
enum { PK_N = 9000 };
typedef struct pk_seen {
    int n, bad;
    char seen[PK_N];
} pk_seen;

static const char *const pk_tmpl[3] = {"a[]", "b[]", "c[]"};

static void pk_make(int i, state_inst *in, fl_digest *key, char *idx, char *label, char *res) {
    snprintf(idx, 16, "%d", i);
    snprintf(label, 32, "item-%d", i);
    snprintf(res, 32, "r%d", i);
    hash_bytes(idx, strlen(idx), key);
    *in = (state_inst){.run = in->run, .node = i % 3 == 2 ? 2 : 1, .idx = idx, .task = "t",
                       .tmpl = pk_tmpl[i % 3], .label = i % 5 == 0 ? label : NULL,
                       .state = i % 7 == 0 ? "cached" : "succeeded", .attempts = 1 + i % 3,
                       .cache_key = i % 2 ? key : NULL, .cache_hit = i % 7 == 0,
                       .started = 1e9 + i / 8.0, .ended = 1e9 + i / 8.0 + 1e-6,
                       .exit_status = i % 11 == 0 ? 3 : -1, .term_signal = i % 13 == 0 ? 9 : 0,
                       .worker_pid = 100 + i % 4, .peak_rss_kb = 1000 + i,
                       .result = i % 17 == 0 ? "" : res,
                       .result_len = i % 17 == 0 ? 0 : strlen(res),
                       .cache_store = i % 2 && i % 7 != 0};
    if (i == 4321) /* a failure: a row of its own, never cached */
        in->state = "failed", in->error = "boom", in->result = NULL, in->result_len = 0,
        in->cache_store = 0;
}

static int pk_check(const state_inst *r, void *ctx) {
    pk_seen *S = ctx;
    int i = atoi(r->idx);
    state_inst w = {.run = r->run};
    fl_digest key;
    char idx[16], label[32], res[32];
    if (i < 0 || i >= PK_N) return S->bad++, 0;
    pk_make(i, &w, &key, idx, label, res);
    S->n++;
    S->seen[i]++;
    int ok = r->node == w.node && !strcmp(r->task, "t") && r->tmpl && !strcmp(r->tmpl, w.tmpl) &&
             !strcmp(r->state, w.state) && r->attempts == w.attempts &&
             r->cache_hit == w.cache_hit && r->started == w.started && r->ended == w.ended &&
             r->exit_status == w.exit_status && r->term_signal == w.term_signal &&
             r->worker_pid == w.worker_pid && r->peak_rss_kb == w.peak_rss_kb &&
             !r->label == !w.label && (!w.label || !strcmp(r->label, w.label)) &&
             !r->cache_key == !w.cache_key &&
             (!w.cache_key || !memcmp(r->cache_key->b, key.b, 32)) &&
             !r->result == !w.result && r->result_len == w.result_len &&
             (!w.result_len || !memcmp(r->result, w.result, w.result_len)) &&
             !r->error == !w.error;
    if (!ok) S->bad++;
    return 0;
}

static void pk_roundtrip(int async) {
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    if (async) assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    for (int i = 0; i < PK_N; i++) {
        state_inst in = {.run = r.id};
        fl_digest key;
        char idx[16], label[32], res[32];
        pk_make(i, &in, &key, idx, label, res);
        assert_int_equal(state_inst_put(st, &in), 0);
        if (i % 1000 == 999) assert_int_equal(state_commit(st), 0);
    }
    assert_int_equal(state_sync(st), 0);
    static pk_seen S;
    memset(&S, 0, sizeof S);
    assert_int_equal(state_insts_each(st, r.id, pk_check, &S), 0);
    assert_int_equal(S.bad, 0);
    assert_int_equal(S.n, PK_N);
    for (int i = 0; i < PK_N; i++) assert_int_equal(S.seen[i], 1);
    for (int i = 1; i < PK_N; i += 2) { /* the stored ones are in the cache */
        state_inst w = {.run = r.id};
        fl_digest key;
        char idx[16], label[32], res[32];
        uint8_t *v;
        size_t len;
        pk_make(i, &w, &key, idx, label, res);
        assert_int_equal(state_cache_get(st, "t", &key, &v, &len), w.cache_store && !w.error);
        if (w.cache_store && !w.error) {
            assert_int_equal(len, w.result_len);
            assert_memory_equal(v, w.result, len);
            free(v);
        }
    }
    state_close(st);
    rm_rf(d);
    free(d);
}

static void test_state_packed_records(void **state) {
    (void)state;
    pk_roundtrip(1);
    pk_roundtrip(0);
}

/* The compact record (FKP2): indexes that are plain integers and ones that are not
 * ("007", paths, 20 digits), the common case (attempts 1, no exit status, the row's
 * pid and RSS) and its exceptions, an RSS that steps (a new row), one that comes
 * and goes, no result, a label: each comes back as it went in. */
typedef struct pk2_case {
    const char *idx, *label;
    int attempts, exit_status, signal, pid;
    long long rss;
    const char *result;
} pk2_case;
static const pk2_case pk2_cases[] = {
    {"0", NULL, 1, -1, 0, 77, 900, "x"},     {"1", NULL, 1, -1, 0, 77, 900, NULL},
    {"127", NULL, 1, -1, 0, 77, 900, ""},    {"128", "lab", 1, -1, 0, 77, 900, "yy"},
    {"007", NULL, 1, -1, 0, 77, 950, "z"},   {"1/2", NULL, 3, -1, 0, 77, 950, "z"},
    {"c12/3", NULL, 1, 0, 0, 77, 950, "z"},  {"12345678901234567890", NULL, 1, -1, 9, 77, 0, "z"},
    {"999999999999999999", NULL, 1, -1, 0, 78, 5000, "z"}, {"-4", NULL, 2, 3, 0, -1, 900, NULL},
};
enum { PK2_N = sizeof pk2_cases / sizeof pk2_cases[0] };

static int pk2_check(const state_inst *r, void *ctx) {
    int *seen_by = ctx;
    for (int i = 0; i < PK2_N; i++) {
        const pk2_case *c = &pk2_cases[i];
        if (strcmp(r->idx, c->idx)) continue;
        double st = 1.7e9 + i * 0.25;
        int ok = !strcmp(r->state, "succeeded") && r->attempts == c->attempts &&
                 r->exit_status == c->exit_status && r->term_signal == c->signal &&
                 r->worker_pid == c->pid && r->peak_rss_kb == c->rss &&
                 fabs(r->started - st) < 1e-6 && fabs(r->ended - (st + 0.003)) < 1e-6 &&
                 !r->label == !c->label && (!c->label || !strcmp(r->label, c->label)) &&
                 !r->cache_key && !r->result == !c->result &&
                 (!c->result || (r->result_len == strlen(c->result) &&
                                 !memcmp(r->result, c->result, r->result_len)));
        seen_by[i] += ok ? 1 : 100;
        return 0;
    }
    seen_by[PK2_N] = 1;
    return 0;
}

/* After a sync, run's instances read back through check, which counts each row in
 * count[0..n) (1 a case met as written, 100 one that differs) or count[n] (a row of no
 * case): every case exactly once, no other row. */
static void each_seen_once(fl_state *st, int64_t run, int (*check)(const state_inst *, void *),
                           int n) {
    int count[32] = {0};
    assert_true(n < 32);
    assert_int_equal(state_sync(st), 0);
    assert_int_equal(state_insts_each(st, run, check, count), 0);
    for (int i = 0; i < n; i++) assert_int_equal(count[i], 1);
    assert_int_equal(count[n], 0);
}

/* An index given as a number (idx NULL, idx_is_k: the scheduler's hot path) is
 * stored as its text, packed or not: a succeeded record (the state as the shared
 * text or as another copy of it), a cached one, a failed one (a row of its own), a
 * number past 18 digits; the same in synchronous mode. */
static const struct {
    uint64_t k;
    int how; /* 0 state_succeeded, 1 "succeeded" copied, 2 state_cached, 3 failed */
    const char *text;
} given[] = {{0, 0, "0"}, {5, 1, "5"}, {12345678901234567890u, 0, "12345678901234567890"},
             {7, 2, "7"}, {9, 3, "9"}};
enum { GIVEN_N = sizeof given / sizeof given[0] };

static int given_check(const state_inst *r, void *ctx) {
    int *got = ctx;
    for (int i = 0; i < GIVEN_N; i++) {
        if (strcmp(r->idx, given[i].text)) continue;
        const char *want = given[i].how == 2 ? "cached" : given[i].how == 3 ? "failed"
                                                                          : "succeeded";
        got[i] += !strcmp(r->state, want) && r->ended == 2.5 &&
                           (given[i].how == 3 ? r->error && !strcmp(r->error, "boom") && !r->result
                                              : r->result_len == 1 && !memcmp(r->result, "v", 1))
                       ? 1
                       : 100;
        return 0;
    }
    got[GIVEN_N] = 1;
    return 0;
}

static void test_state_index_given_as_number(void **state) {
    (void)state;
    for (int async = 0; async < 2; async++) {
        char *d = tmpdir(), err[256], copy[] = "succeeded";
        fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
        assert_non_null(st);
        if (async) assert_int_equal(state_async(st), 0);
        state_run r = {.flow = "f", .pid = 1};
        assert_int_equal(state_run_begin(st, &r), 0);
        for (int i = 0; i < GIVEN_N; i++) {
            int how = given[i].how;
            state_inst in = {.run = r.id, .node = 1, .idx_is_k = 1, .idx_k = given[i].k,
                             .task = "t", .tmpl = "t[]", .attempts = 1, .started = 2,
                             .ended = 2.5, .exit_status = -1, .worker_pid = 3};
            in.state = how == 0 ? state_succeeded : how == 1 ? copy : how == 2 ? state_cached
                                                                                : "failed";
            in.cache_hit = how == 2;
            if (how == 3) in.error = "boom";
            else in.result = "v", in.result_len = 1;
            assert_int_equal(state_inst_put(st, &in), 0);
        }
        each_seen_once(st, r.id, given_check, GIVEN_N);
        state_close(st);
        rm_rf(d);
        free(d);
    }
}

/* A fresh state.db made by the one script (schema_fresh) is the one the schema's
 * steps make one by one: the same tables, columns, indexes and triggers (their SQL,
 * as SQLite keeps it), the same rows, the same version. A step added without its
 * result in the script fails here. */
static void schema_dump(const char *dir, char *out, size_t cap) {
    size_t n = 0;
    char p[4200];
    snprintf(p, sizeof p, "%s/state.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    static const char *const q[] = {
        "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM "
        "sqlite_master ORDER BY type, name",
        "SELECT 'meta ' || key || '=' || value FROM meta ORDER BY key",
        "SELECT 'env ' || id || '=' || name FROM envs ORDER BY id", "PRAGMA user_version"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, q[i], -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW) {
            int m = snprintf(out + n, cap - n, "%s\n", (const char *)sqlite3_column_text(s, 0));
            assert_true(m > 0 && (size_t)m < cap - n);
            n += (size_t)m;
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
}

static void test_state_fresh_schema_is_the_steps(void **state) {
    (void)state;
    static char dump[2][32768];
    for (int steps = 0; steps < 2; steps++) {
        char *d = tmpdir(), err[256];
        state_fresh_by_steps = steps;
        fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
        state_fresh_by_steps = 0;
        assert_non_null(st);
        state_close(st);
        schema_dump(d, dump[steps], sizeof dump[steps]);
        rm_rf(d);
        free(d);
    }
    assert_true(strlen(dump[0]) > 1000);
    assert_string_equal(dump[0], dump[1]);
}

static void test_state_compact_record(void **state) {
    (void)state;
    for (int async = 0; async < 2; async++) {
        char *d = tmpdir(), err[256];
        fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
        assert_non_null(st);
        if (async) assert_int_equal(state_async(st), 0);
        state_run r = {.flow = "f", .pid = 1};
        assert_int_equal(state_run_begin(st, &r), 0);
        for (int i = 0; i < PK2_N; i++) {
            const pk2_case *c = &pk2_cases[i];
            double t = 1.7e9 + i * 0.25;
            state_inst in = {.run = r.id, .node = 1, .idx = c->idx, .task = "t", .tmpl = "t[]",
                             .label = c->label, .state = "succeeded", .attempts = c->attempts,
                             .started = t, .ended = t + 0.003, .exit_status = c->exit_status,
                             .term_signal = c->signal, .worker_pid = c->pid,
                             .peak_rss_kb = c->rss, .result = c->result,
                             .result_len = c->result ? strlen(c->result) : 0};
            assert_int_equal(state_inst_put(st, &in), 0);
        }
        each_seen_once(st, r.id, pk2_check, PK2_N);
        /* the row's bytes: the common records are a few bytes each */
        sqlite3 *db;
        char p[4200];
        snprintf(p, sizeof p, "%s/state.db", d);
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT packed, idx FROM instances WHERE "
                                            "packed IS NOT NULL", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        const uint8_t *b = sqlite3_column_blob(s, 0);
        assert_memory_equal(b, "FKP3", 4);
        assert_string_equal((const char *)sqlite3_column_text(s, 1), "0");
        /* header 28; "0": state, flags (result, integer index), idx, start, duration 2,
         * result 2; "1" a 3-byte start, no result; "127" an empty result; "128" a 2-byte
         * index and a label; "007" its text and its RSS */
        assert_int_equal(b[28 + 1], 8 | 16);
        assert_int_equal(sqlite3_column_bytes(s, 0), 28 + 8 + 8 + 9 + 16 + 15);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW); /* RSS 950 twice: a new row */
        assert_string_equal((const char *)sqlite3_column_text(s, 1), "1/2");
        sqlite3_finalize(s);
        sqlite3_close(db);
        state_close(st);
        rm_rf(d);
        free(d);
    }
}

/* state_inst_plain (the recorder's hot path) writes the very bytes state_inst_put
 * writes for the same instances: two states are given one sequence — two names
 * interleaved, indices and starts of one to five varint bytes, served and cached
 * records, keys, void and int results, a first attempt and a served one (attempts
 * 0), another pid, RSS steps (which state_inst_plain hands back), and results that
 * enter the cache with their key's parts (known or not) — one through
 * state_inst_put alone, the other through state_inst_plain wherever it takes the
 * record; each name's records must be equal byte for byte, under the same row
 * headers (base, pid, RSS), every record must be read back, and the cache entries
 * must be the same. (Where a packed row ends depends on when the writer commits:
 * the rows themselves are not compared.) */
static void plain_rows(const char *dir, char *out, size_t cap) {
    sqlite3 *db;
    char p[4200];
    snprintf(p, sizeof p, "%s/state.db", dir);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT task, name, hex(substr(packed, 9, 20)), "
                                        "hex(substr(packed, 29)) FROM instances "
                                        "ORDER BY node, id", -1, &s, NULL), SQLITE_OK);
    size_t n = 0;
    char last[64] = "";
    out[0] = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *hdr = (const char *)sqlite3_column_text(s, 2);
        int w = 0;
        if (strcmp(hdr, last)) /* a name, or its RSS, begins */
            w = snprintf(out + n, cap - n, "\n%s %s %s ", sqlite3_column_text(s, 0),
                         sqlite3_column_text(s, 1), hdr);
        assert_true(w >= 0 && (size_t)w < cap - n);
        n += (size_t)w;
        snprintf(last, sizeof last, "%s", hdr);
        w = snprintf(out + n, cap - n, "%s", sqlite3_column_text(s, 3));
        assert_true(w >= 0 && (size_t)w < cap - n);
        n += (size_t)w;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static int plain_count(const state_inst *r, void *ctx) {
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static void test_state_plain_same_bytes(void **state) {
    (void)state;
    enum { N = 400 };
    static char rows[2][N * 200], entries[2][N * 120];
    static fl_digest keys[N];
    for (int i = 0; i < N; i++) {
        memset(keys[i].b, 0x5a, sizeof keys[i].b);
        memcpy(keys[i].b, &i, sizeof i);
    }
    const uint64_t inputs[2] = {0x1111222233334444u, 0x5555666677778888u};
    for (int way = 0; way < 2; way++) {
        char *d = tmpdir(), err[256];
        fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
        assert_non_null(st);
        assert_int_equal(state_async(st), 0);
        state_run r = {.flow = "f", .pid = 1};
        assert_int_equal(state_run_begin(st, &r), 0);
        static const char *const tmpl[2] = {"a[]", "b[]"};
        static const char *const task[2] = {"ta", "tb"};
        state_plain pl[2] = {{.run = r.id, .node = 3, .task = "ta", .tmpl = "a[]", .name = -1},
                             {.run = r.id, .node = 4, .task = "tb", .tmpl = "b[]", .name = -1}};
        int took = 0;
        for (int i = 0; i < N; i++) {
            int w = i % 7 == 3; /* the second name now and then */
            static const uint64_t idx[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
                                           268435455, 268435456, (uint64_t)1 << 40};
            static const double off[] = {0, 1e-6, 0.2, 3.5, 300, 9000};
            uint64_t result = (uint64_t)i * 2654435761u;
            double t = 1.7e9 + off[i % 6] + i * 1e-4;
            int served = i % 5 == 2;
            /* RSS: a step at 100-101; at 160-162 another, a common one, the other again
             * (not a step: a common record between) */
            int rss = i < 100 ? 900 : i == 160 || i == 162 ? 10 : 950;
            state_plain *p = &pl[w];
            p->idx = idx[i % 11] + (uint64_t)i;
            p->served = served;
            p->attempts = served ? 0 : 1;
            p->key = i % 3 ? &keys[i] : NULL;
            /* into the cache: the parts known, or not (i % 13 == 1) */
            p->cache_store = p->key && !served && i % 4 != 0;
            p->cache_ident = p->cache_store ? 0xabcdef00u + (uint64_t)i : 0;
            p->cache_inputs = p->cache_store && i % 13 != 1 ? inputs : NULL;
            p->cache_ninputs = p->cache_inputs ? 2 : 0;
            p->started = t;
            p->ended = t + (i % 4) * 0.0015;
            p->worker_pid = i == 78 ? 4242 : 1000;
            p->peak_rss_kb = rss;
            p->result = i % 9 == 4 ? NULL : &result;
            p->result_len = p->result ? 8 : 0;
            int rc = 1;
            if (way == 1) rc = state_inst_plain(st, p);
            assert_true(rc == 0 || rc == 1);
            if (rc == 0) took++;
            else {
            state_inst in = {.run = r.id, .node = p->node, .idx_is_k = 1, .idx_k = p->idx,
                             .task = task[w], .tmpl = tmpl[w],
                             .state = served ? state_cached : state_succeeded,
                             .attempts = p->attempts, .cache_key = p->key, .cache_hit = served,
                             .started = p->started, .ended = p->ended, .exit_status = -1,
                             .worker_pid = p->worker_pid, .peak_rss_kb = rss,
                             .result = p->result, .result_len = p->result_len,
                             .cache_store = p->cache_store, .cache_ident = p->cache_ident,
                             .cache_inputs = p->cache_inputs,
                             .cache_ninputs = p->cache_ninputs};
            assert_int_equal(state_inst_put(st, &in), 0);
            }
            if (i % 50 == 49) assert_true(state_commit_round(st) >= 0);
        }
        if (way == 1) assert_true(took > N / 2 && took < N); /* both paths were taken */
        assert_int_equal(state_sync(st), 0);
        int count = 0;
        assert_int_equal(state_insts_each(st, r.id, plain_count, &count), 0);
        assert_int_equal(count, N);
        size_t at = 0;
        int found = 0;
        for (int i = 0; i < N; i++) {
            state_cache_entry e;
            int rc = state_cache_entry_get(st, task[i % 7 == 3], &keys[i], &e);
            assert_true(rc == 0 || rc == 1);
            int w = rc ? snprintf(entries[way] + at, sizeof entries[way] - at,
                                  "%d %llx %u %llx %zu %llx\n", i,
                                  (unsigned long long)e.identity, e.ninputs,
                                  (unsigned long long)(e.ninputs ? e.inputs[1] : 0), e.len,
                                  e.len == 8 ? (unsigned long long)*(uint64_t *)e.val : 0)
                       : snprintf(entries[way] + at, sizeof entries[way] - at, "%d -\n", i);
            assert_true(w > 0 && (size_t)w < sizeof entries[way] - at);
            at += (size_t)w;
            found += rc;
            if (rc) fl_free(state_ctx(st), e.val);
        }
        assert_true(found > N / 4);
        state_close(st);
        plain_rows(d, rows[way], sizeof rows[way]);
        rm_rf(d);
        free(d);
    }
    assert_true(strlen(rows[0]) > 1000);
    assert_string_equal(rows[0], rows[1]);
    assert_string_equal(entries[0], entries[1]);
}

/* A round's batch is held for the next rounds while it is small and less than 10 ms
 * old, handed over once older; state_sync hands over and writes everything held. */
static void round_put(fl_state *st, int64_t run, uint64_t k) {
    state_inst in = {.run = run, .node = 1, .idx_is_k = 1, .idx_k = k, .task = "t",
                     .tmpl = "t[]", .state = state_succeeded, .attempts = 1,
                     .started = 1.7e9, .ended = 1.7e9 + 0.001, .exit_status = -1};
    assert_int_equal(state_inst_put(st, &in), 0);
}

static void test_state_round_held(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(state_async(st), 0);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    round_put(st, r.id, 0);
    assert_int_equal(state_commit_round(st), 1); /* young and small: held */
    round_put(st, r.id, 1);
    usleep(15000);
    assert_int_equal(state_commit_round(st), 0); /* 10 ms old: handed over */
    assert_int_equal(state_commit_round(st), 0); /* nothing left to hold */
    for (uint64_t k = 2; k < 7; k++) round_put(st, r.id, k);
    assert_true(state_commit_round(st) >= 0);
    assert_int_equal(state_sync(st), 0);
    int count = 0;
    assert_int_equal(state_insts_each(st, r.id, plain_count, &count), 0);
    assert_int_equal(count, 7);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* Rows packed before the compact record ("FKP1") and before varint results ("FKP2")
 * are still read (an FKP2 record claiming a varint result is damage), and a damaged
 * FKP3 blob, cut anywhere or with a varint that never ends, is reported and never
 * read past its end (ASan: the reader copies the blob at its exact length). */
static void pk_put_le(uint8_t *d, uint64_t v, int n) {
    for (int i = 0; i < n; i++) d[i] = (uint8_t)(v >> (8 * i));
}

static int pk_count(const state_inst *r, void *ctx) {
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static int pk1_check(const state_inst *r, void *ctx) {
    int *ok = ctx;
    if (!strcmp(r->idx, "5") && !strcmp(r->state, "succeeded") && r->attempts == 2 &&
        r->started == 1e9 && r->ended == 1e9 + 0.5 && r->exit_status == 0 &&
        r->worker_pid == 42 && r->peak_rss_kb == 900 && r->label && !strcmp(r->label, "L") &&
        r->result_len == 2 && !memcmp(r->result, "ok", 2) && !strcmp(r->name, "t[5]"))
        *ok += 1;
    else if (!strcmp(r->idx, "12") && !strcmp(r->state, "cached") && !r->label && !r->result)
        *ok += 10;
    else
        *ok += 1000;
    return 0;
}

static void test_state_fkp1_and_damaged_fkp2(void **state) {
    (void)state;
    char *d = tmpdir(), err[256], p[4200];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run r = {.flow = "f", .pid = 1};
    assert_int_equal(state_run_begin(st, &r), 0);
    for (int i = 0; i < 3; i++) {
        state_inst in = {.run = r.id, .node = 2, .idx = i == 1 ? "x/1" : "7", .task = "u",
                         .tmpl = "u[]", .state = "succeeded", .attempts = 1,
                         .started = 5.0 + i, .ended = 6.0 + i, .worker_pid = 3,
                         .result = "abc", .result_len = 3};
        if (i == 2) in.idx = "8";
        assert_int_equal(state_inst_put(st, &in), 0);
    }
    assert_int_equal(state_sync(st), 0);
    snprintf(p, sizeof p, "%s/state.db", d);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    /* an FKP1 row: two records, by hand, byte by byte */
    uint8_t b1[256];
    size_t n = 0;
    pk_put_le(b1, 0x31504b46u, 4), pk_put_le(b1 + 4, 2, 4), n = 8;
    uint64_t bits;
    double t0 = 1e9, t1 = 1e9 + 0.5;
    b1[n] = 1, b1[n + 1] = 4 | 8; /* succeeded; label, result */
    pk_put_le(b1 + n + 2, 2, 4);
    memcpy(&bits, &t0, 8), pk_put_le(b1 + n + 6, bits, 8);
    memcpy(&bits, &t1, 8), pk_put_le(b1 + n + 14, bits, 8);
    pk_put_le(b1 + n + 22, 0, 4), pk_put_le(b1 + n + 26, 0, 4), pk_put_le(b1 + n + 30, 42, 4);
    pk_put_le(b1 + n + 34, 900, 8), pk_put_le(b1 + n + 42, 1, 4);
    n += 46;
    b1[n++] = '5';
    pk_put_le(b1 + n, 1, 4), b1[n + 4] = 'L', n += 5;
    pk_put_le(b1 + n, 2, 4), memcpy(b1 + n + 4, "ok", 2), n += 6;
    b1[n] = 2, b1[n + 1] = 0; /* cached, nothing more */
    memset(b1 + n + 2, 0, 40);
    pk_put_le(b1 + n + 42, 2, 4);
    n += 46;
    b1[n++] = '1', b1[n++] = '2';
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO instances(run, node, idx, task, state, "
                                        "attempts, cache_hit, packed, name) VALUES(?, 1, '5', "
                                        "'t', 'packed', 1, 0, ?, 't[]')", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, r.id);
    sqlite3_bind_blob(s, 2, b1, (int)n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    int ok = 0;
    assert_int_equal(state_insts_each(st, r.id, pk1_check, &ok), 0);
    assert_int_equal(ok, 1 + 10 + 3 * 1000); /* (node 2's three are the thousands) */
    /* clear finds records of both forms: an FKP1 index, an FKP3 integer, a path prefix */
    assert_int_equal(state_inst_clear(st, r.id, "t", "12"), 1);
    assert_int_equal(state_inst_clear(st, r.id, "u", "8"), 1);
    assert_int_equal(state_inst_clear(st, r.id, "u", "x/"), 1);
    assert_int_equal(state_inst_clear(st, r.id, "u", "9"), 0);
    /* the FKP3 row of node 2: read as FKP2 too, unless a record says PKF_WORD (128);
     * then cut at every length, then with a runaway varint */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, packed FROM instances WHERE node=2",
                                        -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t id = sqlite3_column_int64(s, 0);
    size_t len = (size_t)sqlite3_column_bytes(s, 1);
    uint8_t *full = malloc(len + 16);
    memcpy(full, sqlite3_column_blob(s, 1), len);
    sqlite3_finalize(s);
    assert_memory_equal(full, "FKP3", 4);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE instances SET packed=? WHERE id=?", -1, &s,
                                        NULL), SQLITE_OK);
    for (int form = 0; form < 2; form++) {
        full[3] = '2';
        if (form) full[28 + 1] |= 128; /* the first record's flags */
        sqlite3_bind_blob(s, 1, full, (int)len, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, id);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
        int count = 0;
        assert_int_equal(state_insts_each(st, r.id, pk_count, &count), form ? -1 : 0);
        if (!form) assert_int_equal(count, 5);
        full[3] = '3';
        full[28 + 1] &= 127;
    }
    for (size_t cut = 1; cut <= len + 1; cut++) {
        uint8_t *b = full;
        size_t bl = cut;
        if (cut == len) /* the last record's result length a varint that never ends */
            memset(full + len - 4, 0xff, 4), bl = len;
        if (cut == len + 1) bl = len, full[len - 4] = 0x7f; /* a length past the end */
        sqlite3_bind_blob(s, 1, b, (int)bl, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, id);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
        int count = 0;
        assert_int_equal(state_insts_each(st, r.id, pk_count, &count), -1);
        assert_true(count >= 2 && count < 5); /* FKP1's two and what could be read */
        assert_true(state_inst_clear(st, r.id, "u", "7") >= 0);
    }
    sqlite3_finalize(s);
    free(full);
    sqlite3_close(db);
    state_close(st);
    rm_rf(d);
    free(d);
}

/* An 8-byte result (an int's encoding) in a record that only goes into its row is
 * stored as the zigzag varint of its value when that is shorter (PKF_WORD), and
 * comes back byte for byte: small, negative, large and extreme values, written
 * through the writer thread and synchronously. */
static const int64_t word_values[] = {0, 1, -1, 127, -3, (int64_t)1 << 40, INT64_MAX,
                                      INT64_MIN, ((int64_t)1 << 55) - 1, (int64_t)1 << 55};
enum { WORD_N = sizeof word_values / sizeof word_values[0] };

static int word_check(const state_inst *r, void *ctx) {
    int *hits = ctx;
    int i = atoi(r->idx);
    uint8_t want[8];
    pk_put_le(want, (uint64_t)word_values[i], 8);
    hits[i] += r->result_len == 8 && !memcmp(r->result, want, 8) ? 1 : 100;
    return 0;
}

static void test_state_word_results(void **state) {
    (void)state;
    for (int async = 0; async < 2; async++) {
        char *d = tmpdir(), err[256], p[4200];
        fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
        assert_non_null(st);
        if (async) assert_int_equal(state_async(st), 0);
        state_run r = {.flow = "f", .pid = 1};
        assert_int_equal(state_run_begin(st, &r), 0);
        for (int i = 0; i < WORD_N; i++) {
            uint8_t w[8];
            pk_put_le(w, (uint64_t)word_values[i], 8);
            state_inst in = {.run = r.id, .node = 1, .idx_is_k = 1, .idx_k = (uint64_t)i,
                             .task = "t", .tmpl = "t[]", .state = state_succeeded,
                             .attempts = 1, .started = 1.7e9, .ended = 1.7e9 + 0.001,
                             .exit_status = -1, .result = w, .result_len = 8};
            assert_int_equal(state_inst_put(st, &in), 0);
        }
        int hits[WORD_N] = {0};
        assert_int_equal(state_sync(st), 0);
        assert_int_equal(state_insts_each(st, r.id, word_check, hits), 0);
        for (int i = 0; i < WORD_N; i++) assert_int_equal(hits[i], 1);
        /* the first record (0): state, flags (result, integer index, word), index,
         * start, duration 2, the value 1 byte; the row is shorter than 9 a result */
        sqlite3 *db;
        snprintf(p, sizeof p, "%s/state.db", d);
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT packed FROM instances WHERE packed "
                                            "IS NOT NULL", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        const uint8_t *b = sqlite3_column_blob(s, 0);
        assert_memory_equal(b, "FKP3", 4);
        assert_int_equal(b[28 + 1], 8 | 16 | 128);
        assert_int_equal(b[28 + 6], 0);
        assert_true(sqlite3_column_bytes(s, 0) < 28 + WORD_N * (7 + 9));
        sqlite3_finalize(s);
        sqlite3_close(db);
        state_close(st);
        rm_rf(d);
        free(d);
    }
}

static void test_state_newer_schema_refused(void **state) {
    (void)state;
    char *d = tmpdir(), err[512], cmd[600];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    state_close(st);
    int v = STATE_SCHEMA_VERSION + 1; /* one this flowrun does not know */
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s/state.db' \"PRAGMA user_version=%d; UPDATE meta SET value=%d WHERE "
             "key='oldest_reader'\" 2>/dev/null || python3 -c \"import sqlite3; "
             "c=sqlite3.connect('%s/state.db'); c.execute('PRAGMA user_version=%d'); "
             "c.execute(\\\"UPDATE meta SET value=%d WHERE key='oldest_reader'\\\"); c.commit()\"",
             d, v, v, d, v, v);
    assert_int_equal(system(cmd), 0);
    st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_null(st);
    char want[80];
    snprintf(want, sizeof want, "schema version %d is newer than this flowrun reads (%d)", v,
             STATE_SCHEMA_VERSION);
    assert_non_null(strstr(err, want));
    rm_rf(d);
    free(d);
}

/* Found by fuzz_state: a negative user_version indexed the migration table below 0. */
static void test_state_negative_version_refused(void **state) {
    (void)state;
    char *d = tmpdir(), err[512], cmd[600];
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s/state.db' 'PRAGMA user_version=-41184' 2>/dev/null || python3 -c "
             "\"import sqlite3; c=sqlite3.connect('%s/state.db'); "
             "c.execute('PRAGMA user_version=-41184'); c.commit()\"",
             d, d);
    assert_int_equal(system(cmd), 0);
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_null(st);
    assert_non_null(strstr(err, "bad schema version -41184"));
    rm_rf(d);
    free(d);
}

static void test_state_not_a_database(void **state) {
    (void)state;
    char *d = tmpdir(), err[512], p[4200];
    snprintf(p, sizeof p, "%s/state.db", d);
    write_file(p, "this is not a database, just text that is long enough to matter......");
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_null(st);
    assert_non_null(strstr(err, "state.db"));
    rm_rf(d);
    free(d);
}

/* Instance names from a template and an index path, and the log file they give. */
static void test_instance_names_and_log_paths(void **state) {
    (void)state;
    char b[256];
    plan_inst_name("per_n[]/square[]", "square", "2/1", b, sizeof b);
    assert_string_equal(b, "per_n[2]/square[1]");
    plan_inst_name("g{}/x/square[]", "square", "c12/3", b, sizeof b);
    assert_string_equal(b, "g/x/square[3]");
    plan_inst_name("add#2", "add", "", b, sizeof b);
    assert_string_equal(b, "add#2");
    plan_inst_name("a[]", "stage", "", b, sizeof b); /* a missing index shows as ? */
    assert_string_equal(b, "a[?]");
    plan_inst_name(NULL, "stage", "3", b, sizeof b); /* a row of an older flowrun */
    assert_string_equal(b, "stage[3]");
    plan_inst_name(NULL, "total", "", b, sizeof b);
    assert_string_equal(b, "total");
    assert_int_equal(plan_inst_name("per_n[]/square[]", "square", "2/1", b, 8), 7);
    assert_string_equal(b, "per_n[2");
    char path[512];
    assert_int_equal(state_log_path(".flow", 4, "per_n[]/square[]", "square", "2/1", path,
                                    sizeof path), 0);
    assert_string_equal(path, ".flow/logs/4/per_n[2]/square[1].log");
    assert_int_equal(state_log_path("st", 4, NULL, "stage", "2/1", path, sizeof path), 0);
    assert_string_equal(path, "st/logs/4/stage/2.1.log");
    assert_int_equal(state_log_path("st", 4, NULL, "total", "", path, sizeof path), 0);
    assert_string_equal(path, "st/logs/4/total/-.log");
    /* a hostile plan's names cannot lead out of the run's folder */
    assert_int_equal(state_log_path("st", 4, "../../x//..", "t", "", path, sizeof path), 0);
    assert_string_equal(path, "st/logs/4/_/_/x/_/_.log");
    assert_int_equal(state_log_path("st", 4, "a[]", "t", "1", path, 16), -1);
}

/* Identity records: a rewritten object (chmod + write, same inode) is found by
 * one lstat, re-hashed and quarantined with its names; a planted object is not
 * trusted; a name that is another file is linked afresh; a link is never stored. */
static void test_identity_and_quarantine(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_store *st = store_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    fl_digest h;
    assert_int_equal(store_put_bytes(st, "content", 7, &h, err, sizeof err), 0);
    char named[4096], obj[4096];
    assert_int_equal(store_named(st, &h, "c.txt", named, sizeof named, err, sizeof err), 0);
    assert_int_equal(store_check_name(st, &h, named), 0);
    /* a name replaced by another file: linked afresh from the object */
    unlink(named);
    write_file(named, "CONTENT");
    assert_int_equal(store_check_name(st, &h, named), 0);
    FILE *f = fopen(named, "r");
    char buf[16] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "content");
    /* the object rewritten in place: quarantined, with its name */
    store_object_path(st, &h, obj, sizeof obj);
    chmod(obj, 0644);
    write_file(obj, "CONTENT");
    assert_int_equal(store_check_name(st, &h, named), -1);
    assert_int_equal(access(obj, F_OK), -1);
    assert_int_equal(access(named, F_OK), -1);
    char q[4096], hex[65];
    hash_hex(&h, hex);
    snprintf(q, sizeof q, "%s/store/quarantine/%s", d, hex);
    assert_int_equal(access(q, F_OK), 0);
    /* planted: the right name, no record, the wrong bytes */
    fl_digest p;
    hash_bytes("planted", 7, &p);
    store_object_path(st, &p, obj, sizeof obj);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", obj);
    *strrchr(dir, '/') = 0;
    mkdir(dir, 0755);
    write_file(obj, "evil");
    assert_false(store_has(st, &p));
    fl_digest p2;
    assert_int_equal(store_put_bytes(st, "planted", 7, &p2, err, sizeof err), 0);
    uint8_t *data;
    size_t len;
    assert_int_equal(store_read(st, &p, &data, &len), 0);
    assert_memory_equal(data, "planted", 7);
    free(data);
    /* a symbolic link is refused, and its target left alone */
    char target[4096], link_path[4096];
    snprintf(target, sizeof target, "%s/target", d);
    snprintf(link_path, sizeof link_path, "%s/link", d);
    write_file(target, "t");
    chmod(target, 0600);
    assert_int_equal(symlink(target, link_path), 0);
    assert_int_equal(store_put_file(st, link_path, 1, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbolic link"));
    struct stat sb;
    assert_int_equal(stat(target, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    store_close(st);
    rm_rf(d);
    free(d);
}

/* Interval claims (state_claim): a new interval is CLAIMED (a running row with its
 * logical date), claimed again while it runs is BUSY, once failed it is RESUMEd under
 * the same id, once succeeded it is ALREADY done, and --rerun claims a new run; other
 * envs and dates are apart. first_seen keeps the first time it was asked. */
static void test_state_claim(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    fl_state *st = state_open(fl_ctx_default(), d, err, sizeof err);
    assert_non_null(st);
    state_run r = {.flow = "daily", .env = "prod", .logical = "2026-01-01"};
    int64_t id = 0, first;
    assert_int_equal(state_claim(st, &r, 0, &id), STATE_CLAIM_CLAIMED);
    int64_t id1 = id;
    state_run got;
    assert_int_equal(state_run_get(st, id1, &got), 0);
    assert_string_equal(got.logical, "2026-01-01");
    assert_string_equal(got.state, "running");
    state_run_free(&got);
    assert_int_equal(state_claim(st, &r, 0, &id), STATE_CLAIM_BUSY);
    assert_int_equal(id, id1);
    assert_int_equal(state_claim(st, &r, 1, &id), STATE_CLAIM_BUSY);
    assert_int_equal(state_run_end(st, id1, "failed", 1, NULL, "x"), 0);
    assert_int_equal(state_claim(st, &r, 0, &id), STATE_CLAIM_RESUME);
    assert_int_equal(id, id1);
    assert_int_equal(state_run_get(st, id1, &got), 0);
    assert_string_equal(got.state, "running");
    state_run_free(&got);
    assert_int_equal(state_run_end(st, id1, "succeeded", 0, NULL, NULL), 0);
    assert_int_equal(state_claim(st, &r, 0, &id), STATE_CLAIM_ALREADY);
    assert_int_equal(id, id1);
    assert_int_equal(state_claim(st, &r, 1, &id), STATE_CLAIM_CLAIMED);
    assert_true(id > id1);
    assert_int_equal(state_run_end(st, id, "failed", 1, NULL, NULL), 0);
    /* a succeeded run counts even when a later rerun failed */
    assert_int_equal(state_claim(st, &r, 0, &id), STATE_CLAIM_ALREADY);
    assert_int_equal(id, id1);
    state_run other = {.flow = "daily", .env = "test", .logical = "2026-01-01"};
    assert_int_equal(state_claim(st, &other, 0, &id), STATE_CLAIM_CLAIMED);
    state_run day2 = {.flow = "daily", .env = "prod", .logical = "2026-01-02"};
    assert_int_equal(state_claim(st, &day2, 0, &id), STATE_CLAIM_CLAIMED);
    state_run none = {.flow = "daily", .env = "prod"};
    assert_int_equal(state_claim(st, &none, 0, &id), -1);
    assert_int_equal(state_first_seen(st, "daily", "prod", 100, &first), 0);
    assert_int_equal(first, 100);
    assert_int_equal(state_first_seen(st, "daily", "prod", 200, &first), 0);
    assert_int_equal(first, 100);
    assert_int_equal(state_first_seen(st, "daily", "test", 300, &first), 0);
    assert_int_equal(first, 300);
    state_close(st);
    rm_rf(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_roundtrip),
        cmocka_unit_test(test_damaged_object_is_never_served),
        cmocka_unit_test(test_move_file_and_dedup),
        cmocka_unit_test(test_dir_manifest_and_tree),
        cmocka_unit_test(test_tree_names_and_empty_dir),
        cmocka_unit_test(test_gc_keeps_live),
        cmocka_unit_test(test_identity_and_quarantine),
        cmocka_unit_test(test_refs_scan),
        cmocka_unit_test(test_collect_dry_and_trees),
        cmocka_unit_test(test_state_runs_instances_cache),
        cmocka_unit_test(test_state_wal_kept_when_small),
        cmocka_unit_test(test_cache_pack_fields),
        cmocka_unit_test(test_cache_newest_pack_wins),
        cmocka_unit_test(test_cache_packs_bounded),
        cmocka_unit_test(test_cache_pack_index_lookups),
        cmocka_unit_test(test_cache_pack_damaged),
        cmocka_unit_test(test_cache_migrated_from_schema4),
        cmocka_unit_test(test_state_cache_through_writer),
        cmocka_unit_test(test_state_packed_records),
        cmocka_unit_test(test_state_index_given_as_number),
        cmocka_unit_test(test_state_fresh_schema_is_the_steps),
        cmocka_unit_test(test_state_compact_record),
        cmocka_unit_test(test_state_plain_same_bytes),
        cmocka_unit_test(test_state_round_held),
        cmocka_unit_test(test_state_fkp1_and_damaged_fkp2),
        cmocka_unit_test(test_state_word_results),
        cmocka_unit_test(test_state_file_folders),
        cmocka_unit_test(test_state_newer_schema_refused),
        cmocka_unit_test(test_state_negative_version_refused),
        cmocka_unit_test(test_state_claim),
        cmocka_unit_test(test_state_not_a_database),
        cmocka_unit_test(test_instance_names_and_log_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
