/* ingest.c — times the store's ingest of one file already on disk (bench/state.sh).
 *
 *   ingest STATE_DIR FILE   prints "hash_s put_s": SHA-256 of FILE alone (second pass), then
 *                           store_put_file(move) — hash, fsync, rename into
 *                           STATE_DIR/store — as the runtime does for a task output.
 * Links against build/lib/libflow.a (runtime/recorder/store.h). */
#include "store.h"
#include <stdio.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ingest STATE_DIR FILE\n");
        return 2;
    }
    char err[512];
    fl_store *st = store_open(argv[1], err, sizeof err);
    if (!st) {
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    fl_digest h1, h2;
    if (hash_file(argv[2], &h1, err, sizeof err)) { /* a first pass warms the library */
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    double t0 = now_s();
    if (hash_file(argv[2], &h1, err, sizeof err)) {
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    double t1 = now_s();
    if (store_put_file(st, argv[2], 1, &h2, err, sizeof err)) {
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    double t2 = now_s();
    store_close(st);
    printf("%.4f %.4f\n", t1 - t0, t2 - t1);
    return 0;
}
