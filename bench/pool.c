/*
 * pool.c — the reference for bench/slow.sh: a plain C pool of threads running N calls
 * of one task function, with nothing recorded. What flowrun's slow-task run is held to
 * (issue 13, "slow tasks cheap": wall within 5 % of this pool).
 *
 * Usage: pool LIB SYMBOL N THREADS US
 *   dlopens LIB, looks up SYMBOL (int64_t f(int64_t x, int64_t us), e.g. libsched.so's
 *   nap) and calls f(i, US) for i in 0..N-1 on THREADS threads, which take the next
 *   index from a shared atomic counter (the cheapest fair hand-out there is). Prints the
 *   sum of the results, so the caller can check that every call was made once.
 *
 * Design: no queue, no lock, no allocation per call; the main thread only starts and
 * joins the workers. Its wall and CPU time are therefore the tasks' own plus a
 * thread start-up: the figure flowrun's own overhead is measured against.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int64_t (*task_fn)(int64_t, int64_t);

static task_fn fn;
static int64_t n_calls, us;
static int64_t next_i;   /* the next call to make, taken atomically */
static int64_t total;    /* the sum of the results, added atomically */

static void *worker(void *arg) {
    (void)arg;
    int64_t s = 0;
    for (;;) {
        int64_t i = __atomic_fetch_add(&next_i, 1, __ATOMIC_RELAXED);
        if (i >= n_calls) break;
        s += fn(i, us);
    }
    __atomic_fetch_add(&total, s, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: pool LIB SYMBOL N THREADS US\n");
        return 2;
    }
    /* lazily: the library's other functions need flowrun's symbols, never called here */
    void *lib = dlopen(argv[1], RTLD_LAZY);
    if (!lib) {
        fprintf(stderr, "pool: %s\n", dlerror());
        return 1;
    }
    fn = (task_fn)dlsym(lib, argv[2]);
    if (!fn) {
        fprintf(stderr, "pool: %s: no symbol %s\n", argv[1], argv[2]);
        return 1;
    }
    n_calls = atoll(argv[3]);
    int threads = atoi(argv[4]);
    us = atoll(argv[5]);
    if (threads < 1 || threads > 256 || n_calls < 0) {
        fprintf(stderr, "pool: bad N or THREADS\n");
        return 2;
    }
    pthread_t t[256];
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&t[started], NULL, worker, NULL)) break;
    if (!started) {
        fprintf(stderr, "pool: cannot start a thread\n");
        return 1;
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    printf("%lld\n", (long long)total);
    return 0;
}
