/* tasks.c — a task library for bench/state.sh (built into build/bench/).
 *
 *   write_big(mib) -> path   writes mib MiB of pseudo-random bytes through
 *                            flow_out_path and appends its own write time in
 *                            seconds to $BENCH_WRITE_LOG, so the bench can tell
 *                            the task's time from the store's. */
#include <flow.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHUNK (1 << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *write_big(int64_t mib) {
    double t0 = now_s();
    const char *path = flow_out_path("big.bin");
    FILE *f = path ? fopen(path, "wb") : NULL;
    uint64_t *buf = malloc(CHUNK);
    if (!f || !buf) {
        if (f) fclose(f);
        free(buf);
        flow_fail("cannot write big.bin");
        return "";
    }
    uint64_t x = 0x9e3779b97f4a7c15u ^ (uint64_t)time(NULL);
    for (int64_t m = 0; m < mib; m++) {
        for (size_t i = 0; i < CHUNK / sizeof *buf; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        if (fwrite(buf, 1, CHUNK, f) != CHUNK) {
            fclose(f);
            free(buf);
            flow_fail("short write");
            return "";
        }
    }
    free(buf);
    if (fclose(f)) {
        flow_fail("cannot close big.bin");
        return "";
    }
    const char *log = getenv("BENCH_WRITE_LOG");
    FILE *l = log ? fopen(log, "a") : NULL;
    if (l) {
        fprintf(l, "%.4f\n", now_s() - t0);
        fclose(l);
    }
    return path;
}
