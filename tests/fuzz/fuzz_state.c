/*
 * fuzz_state.c — libFuzzer target for reading a damaged or hostile state.db.
 *
 * The state directory is shared between runs, tools and sometimes people; its
 * database can be truncated by a full disk, written by a newer flowrun or edited by
 * hand. Each input is written as <tmp>/state.db and opened the way every command opens
 * it (state_open: schema check and migration), then read the way `flowrun runs`,
 * `show`, `logs` and a run's cache lookups read it: the newest run, every run, one
 * run in full, its instances, the cache entries of each task they name, and the
 * objects gc would keep. Every string handed back is walked (ASan sees a bad pointer)
 * and every error must be one line. Nothing may crash, hang or leak.
 *
 * Seeds: tests/fuzz/seeds-state/ (tests/fuzz/make-seeds.sh: real runs' databases
 * vacuumed to 512-byte pages, so a mutation reaches the b-tree pages and the rows).
 * fuzz-max-len: 32768
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];   /* this process's scratch folder */
static char db[96];    /* dir/state.db */
static size_t touched; /* keeps the string walks from being optimised away */

static void walk(const char *s) {
    if (s) touched += strlen(s);
}

typedef struct seen {
    char tasks[8][64]; /* task names met in the instances */
    int ntasks;
    int64_t runs;
} seen;

static int on_run(const state_run *r, void *ctx) {
    seen *z = ctx;
    walk(r->flow), walk(r->env), walk(r->params_json), walk(r->options), walk(r->plan_path);
    walk(r->state), walk(r->result_json), walk(r->error);
    const uint8_t *b = r->params_blob;
    for (size_t i = 0; b && i < r->params_blob_len; i++) touched += b[i];
    return ++z->runs >= 64;
}

static int on_inst(const state_inst *r, void *ctx) {
    seen *z = ctx;
    walk(r->idx), walk(r->task), walk(r->label), walk(r->state), walk(r->error);
    const uint8_t *b = r->result;
    for (size_t i = 0; b && i < r->result_len; i++) touched += b[i];
    if (r->cache_key) touched += r->cache_key->b[31];
    if (r->task && z->ntasks < 8) {
        for (int i = 0; i < z->ntasks; i++)
            if (!strcmp(z->tasks[i], r->task)) return 0;
        snprintf(z->tasks[z->ntasks++], sizeof z->tasks[0], "%s", r->task);
    }
    return 0;
}

static int on_cache(const fl_digest *key, const void *val, size_t len, void *ctx) {
    (void)ctx;
    touched += key->b[0];
    for (size_t i = 0; val && i < len; i++) touched += ((const uint8_t *)val)[i];
    return 0;
}

static void clean(void) {
    static const char *files[] = {"", "-wal", "-shm", "-journal"};
    char side[128];
    for (int i = 0; i < 4; i++) {
        snprintf(side, sizeof side, "%s%s", db, files[i]);
        unlink(side);
    }
}

static void clean_all(void) {
    clean();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/fuzz-state-%ld", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm",
                 (long)getpid()); /* tmpfs when there is one: fsync costs nothing */
        snprintf(db, sizeof db, "%s/state.db", dir);
        mkdir(dir, 0700);
        atexit(clean_all);
    }
    clean(); /* nothing of an earlier input: no journal replayed into this one */
    FILE *f = fopen(db, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    char err[512] = "";
    fl_state *st = state_open(fl_ctx_default(), dir, err, sizeof err);
    if (!st) {
        if (!err[0] || strchr(err, '\n')) abort(); /* one line saying why */
        return 0;
    }
    seen z = {0};
    int64_t latest = state_run_latest(st);
    state_runs_each(st, on_run, &z);
    state_run r;
    if (latest > 0 && state_run_get(st, latest, &r) == 0) {
        on_run(&r, &z);
        state_run_free(&r);
    }
    state_insts_each(st, latest > 0 ? latest : 1, on_inst, &z);
    for (int i = 0; i < z.ntasks; i++) {
        if (state_cache_count(st, z.tasks[i]) > 0) state_cache_each(st, z.tasks[i], on_cache, NULL);
        fl_digest key = {{0}};
        uint8_t *val = NULL;
        size_t len = 0;
        if (state_cache_get(st, z.tasks[i], &key, &val, &len) == 1) free(val);
    }
    state_cache_any(st);
    fl_digest *live = NULL;
    size_t nlive = 0;
    if (state_live_objects(st, &live, &nlive) == 0) free(live);
    state_close(st);
    return 0;
}
