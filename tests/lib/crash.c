/*
 * crash.c — test tasks that misbehave, for the process executor's tests
 * (tests/unit/test_exec_process.c, tests/suites/40-process.sh) and for the inline
 * executor's crash handling and the memory:/max_procs: limits (tests/suites/55-crash.sh).
 * Only libc is used, and flow.h (crash_logged calls flow_log and flow_map_index,
 * which the host resolves: flowrun and the unit tests are linked -rdynamic).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flow.h"

/* returns normally: 2x + 1 */
int64_t crash_ok(int64_t x) {
    return 2 * x + 1;
}

/* dereferences a null pointer */
int64_t crash_segv(int64_t x) {
    volatile int64_t *p = (volatile int64_t *)(uintptr_t)(x * 0);
    return *p;
}

/* abort() */
int64_t crash_abort(int64_t x) {
    if (x >= 0) abort();
    return x;
}

/* exit(3), with something printed first */
int64_t crash_exit(int64_t x) {
    printf("about to exit (%lld)\n", (long long)x);
    exit(3);
}

/* sleeps ms milliseconds, then returns ms */
int64_t crash_hang(int64_t ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts)) {
    }
    return ms;
}

/* prints to stdout (stdio and write), stderr, and from a child process */
int64_t crash_print(int64_t x) {
    printf("out %lld\n", (long long)x);
    fprintf(stderr, "err %lld\n", (long long)x);
    char line[64];
    int n = snprintf(line, sizeof line, "raw %lld\n", (long long)x);
    if (write(1, line, (size_t)n) < 0) return -1;
    fflush(stdout);
    if (system("echo child") != 0) return -1;
    return x;
}

/* prints n bytes of 'x' and a final marker line */
int64_t crash_flood(int64_t n) {
    for (int64_t i = 0; i < n; i++)
        putchar('x');
    printf("\nEND\n");
    return n;
}

/* allocates and touches mb MiB, returns mb */
int64_t crash_alloc(int64_t mb) {
    size_t n = (size_t)mb << 20;
    char *p = malloc(n);
    if (!p) return -1;
    memset(p, 1, n);
    int64_t s = 0;
    for (size_t i = 0; i < n; i += 4096)
        s += p[i];
    free(p);
    return s ? mb : -1;
}

/* raises SIGFPE */
int64_t crash_fpe(int64_t x) {
    raise(SIGFPE);
    return x;
}

/* a string task: "hello, NAME" in static storage */
const char *crash_greet(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "hello, %s", name);
    return buf;
}

/* unbounded recursion: overflows the stack */
int64_t crash_recurse(int64_t x) {
    volatile char pad[1024];
    pad[0] = (char)x;
    if (x < 0) return 0; /* never, from a non-negative start */
    return crash_recurse(x + 1) + pad[0];
}

/* for mapped runs: 3 segfaults, 5 calls exit(3), 6 aborts, 9 hangs; others give 2x + 1 */
int64_t crash_pick(int64_t x) {
    if (x == 3) return crash_segv(x);
    if (x == 5) return crash_exit(x);
    if (x == 6) return crash_abort(x);
    if (x == 9) return crash_hang(600000);
    return crash_ok(x);
}

/* the sum of a list of ints */
int64_t crash_total(flow_list xs) {
    const int64_t *v = xs.items;
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++)
        s += v[i];
    return s;
}

/* the real user id the task runs as (run_as tests); x is ignored */
int64_t crash_uid(int64_t x) {
    (void)x;
    return (int64_t)getuid();
}

/* writes "<uid> <x>" into uid.txt in its output folder, as the user it runs as, and
 * returns that file (run_as tests: the folder must be writable by that user) */
const char *crash_out_uid(int64_t x) {
    const char *p = flow_out_path("uid.txt");
    FILE *f = p ? fopen(p, "w") : NULL;
    if (!f) {
        flow_fail("cannot write into the output folder as uid %ld", (long)getuid());
        return NULL;
    }
    fprintf(f, "%ld %lld\n", (long)getuid(), (long long)x);
    fclose(f);
    return p;
}

/* forks; the child returns from the task too (it must not carry on as a worker) */
int64_t crash_fork(int64_t x) {
    pid_t p = fork();
    if (p == 0) return -x;
    int st = 0;
    if (p > 0) waitpid(p, &st, 0);
    return x;
}

/* starts `sleep 60` in a process group of its own (as sh tasks run), writes its
 * pid to $CRASH_PIDFILE, then sleeps ms milliseconds */
int64_t crash_spawn_hang(int64_t ms) {
    pid_t p = fork();
    if (p == 0) {
        setpgid(0, 0);
        execlp("sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    const char *file = getenv("CRASH_PIDFILE");
    FILE *f = file ? fopen(file, "w") : NULL;
    if (f) {
        fprintf(f, "%d\n", (int)p);
        fclose(f);
    }
    return crash_hang(ms);
}

/* a flow_log line and a printed one; returns the instance's map index */
int64_t crash_logged(int64_t x) {
    flow_log("logged %lld", (long long)x);
    printf("printed %lld\n", (long long)x);
    return flow_map_index();
}

/* points stdout and stderr at /dev/null for good, then returns x */
int64_t crash_redirect(int64_t x) {
    FILE *f = fopen("/dev/null", "w");
    if (!f) return -1;
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    fclose(f);
    return x;
}

/* tries n forks whose children live 300 ms; returns how many fork() calls failed
 * (tests/suites/55-crash.sh: max_procs:). Bounded: at most n attempts. */
int64_t crash_forks(int64_t n) {
    int64_t failed = 0;
    for (int64_t i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            failed++;
        } else if (pid == 0) {
            struct timespec ts = {0, 300000000};
            nanosleep(&ts, NULL);
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {
    }
    return failed;
}
