/*
 * libsched.so — C tasks for the scheduler's golden programs (tests/run/).
 * Each task is tiny and deterministic; the ones that observe scheduling
 * (order, attempts, concurrency) write small files.
 */
#include <fcntl.h>
#include <flow.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t inc(int64_t x) { return x + 1; }
int64_t add(int64_t a, int64_t b) { return a + b; }
int64_t pair(int64_t a, int64_t b) { return a * 10 + b; }
int64_t square(int64_t x) { return x * x; }
int64_t ident(int64_t x) { return x; }

int64_t sum(flow_list xs) {
    const int64_t *v = xs.items;
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++) s += v[i];
    return s;
}

int64_t count(flow_list xs) { return xs.len; }

/* Fails for odd inputs. */
int64_t fail_odd(int64_t x) {
    if (x % 2) flow_fail("odd input %lld", (long long)x);
    return x;
}

/* Fails always, with a message. */
int64_t boom(int64_t x) {
    flow_fail("boom on %lld", (long long)x);
    return 0;
}

/* Fails on its first attempt: attempts are counted in a file beside the
 * instance's scratch folder (that folder is kept across retries). */
int64_t flaky(int64_t x) {
    const char *scratch = flow_scratch_dir();
    if (!scratch) {
        flow_fail("no scratch folder");
        return 0;
    }
    char buf[4096], path[4200];
    snprintf(buf, sizeof buf, "%s", scratch);
    snprintf(path, sizeof path, "%s/attempts", dirname(buf));
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", n + 1);
        fclose(f);
    }
    if (n == 0) flow_fail("first attempt of %lld fails", (long long)x);
    return x * 100 + n + 1; /* 100x + the attempt that succeeded */
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A pipeline stage: appends "stage x" to the log file, sleeps ms, returns x. */
int64_t stage(int64_t x, const char *name, const char *log, int64_t ms) {
    sleep_ms((int)ms);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        char line[128];
        int n = snprintf(line, sizeof line, "%s %lld\n", name, (long long)x);
        if (write(fd, line, (size_t)n) < 0) flow_fail("cannot write the log");
        close(fd);
    }
    return x;
}

/* Concurrency probe: counts instances inside at once (a counter file under
 * flock); returns 1 when more than `limit` were inside together. */
static int bump(const char *path, int delta, int *now) {
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return -1;
    flock(fd, LOCK_EX);
    char buf[32] = {0};
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    int v = r > 0 ? atoi(buf) : 0;
    v += delta;
    int n = snprintf(buf, sizeof buf, "%d\n", v);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) < 0) v = -1;
    flock(fd, LOCK_UN);
    close(fd);
    *now = v;
    return 0;
}

int64_t probe(int64_t x, const char *counter, int64_t limit) {
    int inside = 0, after = 0;
    (void)x;
    if (bump(counter, 1, &inside) != 0) flow_fail("cannot open %s", counter);
    sleep_ms(15);
    bump(counter, -1, &after);
    return inside > limit ? 1 : 0;
}

/* A void task: writes a marker file named after x. */
void touch(int64_t x) {
    char path[64];
    snprintf(path, sizeof path, "touched-%lld", (long long)x);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

/* Reads what touch wrote: 1 when the marker for x exists. */
int64_t touched(int64_t x) {
    char path[64];
    snprintf(path, sizeof path, "touched-%lld", (long long)x);
    struct stat st;
    int64_t r = stat(path, &st) == 0;
    unlink(path);
    return r;
}

/* Strings, paths, records, bytes. */
const char *greet(const char *name) {
    size_t n = strlen(name) + 8;
    char *s = flow_alloc(n);
    snprintf(s, n, "hello %s", name);
    return s;
}

int64_t file_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) flow_fail("cannot stat %s", path);
    return (int64_t)st.st_size;
}

const char *join_strs(flow_list xs) {
    const char *const *v = xs.items;
    size_t n = 1;
    for (int64_t i = 0; i < xs.len; i++) n += strlen(v[i]) + 1;
    char *s = flow_alloc(n);
    s[0] = 0;
    for (int64_t i = 0; i < xs.len; i++) {
        if (i) strcat(s, ",");
        strcat(s, v[i]);
    }
    return s;
}

typedef struct word {
    const char *text; /* the word */
    int64_t n;        /* its length */
} word;

word measure(const char *text) {
    word w = {flow_strdup(text), (int64_t)strlen(text)};
    return w;
}

flow_bytes to_bytes(const char *s) {
    size_t n = strlen(s);
    uint8_t *d = flow_alloc(n ? n : 1);
    memcpy(d, s, n);
    flow_bytes b = {d, (int64_t)n};
    return b;
}

int64_t bytes_len(flow_bytes b) { return b.len; }

/* Writes text to a fresh output file and returns its path. */
const char *write_text(const char *name, const char *text) {
    const char *path = flow_out_path(name);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        flow_fail("cannot create output %s", name);
        return "";
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* A list of n ints 0..n-1 made by a task (a run-time length). */
flow_list upto(int64_t n) {
    flow_list l = flow_list_new(n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) ((int64_t *)l.items)[i] = i;
    return l;
}
