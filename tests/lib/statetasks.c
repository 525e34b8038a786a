/* statetasks.c — tasks for the state, cache and resume tests. Each execution
 * appends one line to the file named by $FLOW_TEST_LOG ("task arg"), so a test
 * can count what really ran. */
#include <flow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void note(const char *task, const char *arg) {
    const char *log = getenv("FLOW_TEST_LOG");
    if (!log) return;
    FILE *f = fopen(log, "a");
    if (!f) return;
    fprintf(f, "%s %s\n", task, arg);
    fclose(f);
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* x + 1, slowly ($FLOW_TEST_NAP_MS, default 0) */
int64_t slow_inc(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    const char *nap = getenv("FLOW_TEST_NAP_MS");
    if (nap) nap_ms(atol(nap));
    note("slow_inc", buf);
    return x + 1;
}

int64_t parity(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    note("parity", buf);
    return x % 2;
}

int64_t times_ten(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    note("times_ten", buf);
    return x * 10;
}

int64_t sum(flow_list xs) {
    int64_t s = 0;
    for (int64_t i = 0; i < xs.len; i++) s += ((const int64_t *)xs.items)[i];
    note("sum", "");
    return s;
}

int64_t count_lines(const char *path) {
    note("count_lines", path);
    FILE *f = fopen(path, "r");
    if (!f) {
        flow_fail("cannot open %s", path);
        return 0;
    }
    int64_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n') n++;
    fclose(f);
    return n;
}

/* An output file holding the first line of `path`, upper-cased. */
const char *first_line(const char *path) {
    note("first_line", path);
    FILE *in = fopen(path, "r");
    if (!in) {
        flow_fail("cannot open %s", path);
        return NULL;
    }
    char buf[256] = "";
    if (!fgets(buf, sizeof buf, in)) buf[0] = 0;
    fclose(in);
    for (char *p = buf; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    const char *out = flow_out_path("first.txt");
    FILE *o = fopen(out, "w");
    if (!o) {
        flow_fail("cannot write %s", out);
        return NULL;
    }
    fputs(buf, o);
    fclose(o);
    return out;
}

int64_t length_of(const char *path) {
    note("length_of", path);
    FILE *f = fopen(path, "r");
    if (!f) {
        flow_fail("cannot open %s", path);
        return 0;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

int64_t side_effect(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    note("side_effect", buf);
    return x;
}

/* An effect that is caught in the act: notes its run, creates the file named by
 * $FLOW_TEST_MARK (the test's cue to kill flowrun), then waits up to 10 s to be
 * killed. For the "durable before an effect" test (tests/suites/50-state.sh). */
int64_t effect_wait(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    note("effect_wait", buf);
    const char *mark = getenv("FLOW_TEST_MARK");
    FILE *f = mark ? fopen(mark, "w") : NULL;
    if (f) fclose(f);
    for (int i = 0; mark && i < 1000; i++)
        nap_ms(10);
    return x;
}

/* The length of s (for the large-value tests: a result of megabytes, read back). */
int64_t text_len(const char *s) {
    note("text_len", "s");
    return (int64_t)strlen(s);
}

/* A record whose encoding (three little-endian 64-bit integers) begins with the mark
 * that starts a large value's reference in the history (history.c, BIG_MARK): it is
 * stored as a store object all the same, so no value is ever taken for a reference. */
typedef struct mark_rec {
    int64_t a, b, c;
} mark_rec;
mark_rec marked(int64_t x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    note("marked", buf);
    mark_rec m = {8515593790871237118LL, 7020600796973984865LL, 795108717LL};
    return m;
}
