/* test_metrics.c — flowrun's Prometheus endpoint (runtime/app/metrics.c): the
 * exposition writer (HELP and TYPE lines, label values escaped, integers, floats and
 * infinities as Prometheus spells them, cumulative histogram buckets), the instance
 * rows of a scheduler meter, serve's tally of the instances of ended runs, the run
 * counters, the state.db and store sizes (read at most every MX_SIZES_EVERY s), the
 * ADDR:PORT forms and their refusals (a port in use
 * among them), and the server over a real socket: 200 for /metrics with the
 * exposition's content type, 404, 405, 431 for a huge request head, a client that says
 * nothing closed after the timeout, and more clients than MX_MAX_CONN. It runs under
 * ASan with the rest of the unit tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* What f wrote, as a string the caller frees. */
static char *text_of(void (*fn)(FILE *f, void *ud), void *ud) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f, ud);
    fclose(f);
    return buf;
}

static void write_family_and_samples(FILE *f, void *ud) {
    (void)ud;
    mx_family(f, "flow_x_total", "counter", "a help with a \\ and a\nnewline");
    const char *l[] = {"task", "a\"b\\c\nd", "state", "done", NULL};
    mx_sample(f, "flow_x_total", l, 3);
    mx_sample(f, "flow_y", NULL, 0.25);
    mx_sample(f, "flow_z", NULL, INFINITY);
    mx_sample(f, "flow_w", NULL, -INFINITY);
    mx_sample(f, "flow_n", NULL, NAN);
    mx_sample(f, "flow_big", NULL, 123456789012.0);
}

static void test_writer(void **state) {
    (void)state;
    char *t = text_of(write_family_and_samples, NULL);
    assert_string_equal(t, "# HELP flow_x_total a help with a \\\\ and a\\nnewline\n"
                           "# TYPE flow_x_total counter\n"
                           "flow_x_total{task=\"a\\\"b\\\\c\\nd\",state=\"done\"} 3\n"
                           "flow_y 0.25\n"
                           "flow_z +Inf\n"
                           "flow_w -Inf\n"
                           "flow_n NaN\n"
                           "flow_big 123456789012\n");
    free(t);
}

static void write_histogram(FILE *f, void *ud) {
    (void)ud;
    const double bounds[] = {0.1, 1};
    const uint64_t counts[] = {2, 0, 5};
    const char *l[] = {"task", "t", NULL};
    mx_histogram(f, "flow_d_seconds", l, bounds, 2, counts, 12.5);
}

static void test_histogram(void **state) {
    (void)state;
    char *t = text_of(write_histogram, NULL);
    assert_string_equal(t, "flow_d_seconds_bucket{task=\"t\",le=\"0.1\"} 2\n"
                           "flow_d_seconds_bucket{task=\"t\",le=\"1\"} 2\n"
                           "flow_d_seconds_bucket{task=\"t\",le=\"+Inf\"} 7\n"
                           "flow_d_seconds_sum{task=\"t\"} 12.5\n"
                           "flow_d_seconds_count{task=\"t\"} 7\n");
    free(t);
}

static const char *names[] = {"alpha", NULL, "gamma"};
static const char *name_of(void *ud, uint32_t t) {
    (void)ud;
    return names[t];
}

static void test_meter_rows(void **state) {
    (void)state;
    sched_task_meter tm[3];
    memset(tm, 0, sizeof tm);
    sched_meter m = {.n_tasks = 3, .task = tm};
    atomic_store(&tm[0].done, 7);
    atomic_store(&tm[0].known, 12); /* 7 done, 1 running, 1 skipped: 3 queued */
    atomic_store(&tm[0].running, 1);
    atomic_store(&tm[0].skipped, 1);
    atomic_store(&tm[2].cached, 2);
    atomic_store(&tm[2].bucket[SCHED_METER_NBOUNDS], 1);
    atomic_store(&m.known, 10);
    atomic_store(&m.finished, 6);
    atomic_store(&m.running, 3);
    mx_inst_row rows[3];
    size_t n = mx_meter_rows(&m, "f", "prod", name_of, NULL, rows);
    assert_int_equal(n, 2); /* the task not reached is left out */
    assert_string_equal(rows[0].task, "alpha");
    assert_int_equal(rows[0].done, 7);
    assert_int_equal(rows[0].queued, 3);
    assert_int_equal(rows[1].queued, 0); /* 2 cached of 0 known (read at other instants) */
    assert_string_equal(rows[1].task, "gamma");
    assert_int_equal(rows[1].cached, 2);
    assert_int_equal(mx_meter_queue(&m), 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mx_write_instances(f, rows, n, mx_meter_queue(&m));
    fclose(f);
    assert_non_null(strstr(buf, "flow_instances_total{flow=\"f\",env=\"prod\",task=\"alpha\","
                                "state=\"done\"} 7\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_bucket{flow=\"f\",env=\"prod\","
                                "task=\"gamma\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(buf, "flow_queue_depth{flow=\"f\",env=\"prod\"} 1\n"));
    assert_non_null(strstr(buf, "# TYPE flow_instances_queued gauge\n"
                                "flow_instances_queued{flow=\"f\",env=\"prod\",task=\"alpha\"} 3\n"));
    assert_non_null(strstr(buf, "# TYPE flow_instance_duration_seconds histogram\n"));
    free(buf);
}

static void write_tally(FILE *f, void *ud) {
    mx_write_tally(f, ud);
}

/* serve's tally of the instances of runs that ended: by (flow, env, task); states as
 * state.db has them (others not counted); a miss only for an instance that ran;
 * durations in their buckets; no queue depth (serve has no scheduler of its own). */
static void test_tally(void **state) {
    (void)state;
    mx_tally t;
    assert_int_equal(mx_tally_init(&t), 0);
    mx_tally_add(&t, "ingest", "prod", "count", "succeeded", 0.001953125, 1);
    mx_tally_add(&t, "ingest", "prod", "count", "succeeded", 7200, 1);
    mx_tally_add(&t, "ingest", "prod", "count", "cached", -1, 0);
    mx_tally_add(&t, "ingest", "prod", "count", "cached", 0.5, 1); /* served: no miss, no time */
    mx_tally_add(&t, "ingest", "prod", "count", "failed", 0.0009765625, 1);
    mx_tally_add(&t, "ingest", "prod", "count", "running", 1, 1); /* not counted */
    mx_tally_add(&t, "ingest", "dev", "count", "succeeded", -1, 0);
    for (int i = 0; i < 40; i++) { /* more rows than its first allocation */
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        mx_tally_add(&t, "other", "prod", name, "succeeded", 1, 0);
    }
    assert_int_equal(t.n, 42);
    char *buf = text_of(write_tally, &t);
    assert_non_null(strstr(buf, "flow_instances_total{flow=\"ingest\",env=\"prod\",task=\"count\","
                                "state=\"done\"} 2\n"));
    assert_non_null(strstr(buf, "flow_instances_total{flow=\"ingest\",env=\"prod\",task=\"count\","
                                "state=\"cached\"} 2\n"));
    assert_non_null(strstr(buf, "flow_instances_total{flow=\"ingest\",env=\"prod\",task=\"count\","
                                "state=\"failed\"} 1\n"));
    assert_non_null(strstr(buf, "flow_instances_total{flow=\"ingest\",env=\"dev\",task=\"count\","
                                "state=\"done\"} 1\n"));
    assert_non_null(strstr(buf, "flow_cache_hits_total{flow=\"ingest\",env=\"prod\",task=\"count\"} 2\n"));
    assert_non_null(strstr(buf, "flow_cache_misses_total{flow=\"ingest\",env=\"prod\",task=\"count\"} 3\n"));
    assert_non_null(strstr(buf, "flow_cache_misses_total{flow=\"ingest\",env=\"dev\",task=\"count\"} 0\n"));
    /* 2^-10 s in the first bucket (le 0.001), 2^-9 s in le 0.0025, 7200 s above 3600 */
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_bucket{flow=\"ingest\",env=\"prod\","
                                "task=\"count\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_bucket{flow=\"ingest\",env=\"prod\","
                                "task=\"count\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_bucket{flow=\"ingest\",env=\"prod\","
                                "task=\"count\",le=\"3600\"} 2\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_bucket{flow=\"ingest\",env=\"prod\","
                                "task=\"count\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_count{flow=\"ingest\",env=\"prod\","
                                "task=\"count\"} 3\n"));
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_sum{flow=\"ingest\",env=\"prod\","
                                "task=\"count\"} 7200.0029296875\n"));
    /* the unknown duration is counted as an instance, not in the histogram */
    assert_non_null(strstr(buf, "flow_instance_duration_seconds_count{flow=\"ingest\",env=\"dev\","
                                "task=\"count\"} 0\n"));
    assert_non_null(strstr(buf, "task=\"t39\",state=\"done\"} 1\n"));
    assert_null(strstr(buf, "flow_queue_depth"));
    assert_null(strstr(buf, "flow_instances_queued"));
    assert_null(strstr(buf, "flow_instances_running"));
    free(buf);
    mx_tally_free(&t);
}

static void write_runs(FILE *f, void *ud) {
    mx_write_runs(f, ud);
}

/* Run counters by (flow, env): each event its counter; running up with a start,
 * down with every end (ENDED: down only). */
static void test_runs(void **state) {
    (void)state;
    mx_runs r;
    assert_int_equal(mx_runs_init(&r), 0);
    mx_runs_count(&r, "a", "prod", MX_RUN_STARTED);
    mx_runs_count(&r, "a", "prod", MX_RUN_SUCCEEDED);
    mx_runs_count(&r, "a", "prod", MX_RUN_STARTED);
    mx_runs_count(&r, "a", "prod", MX_RUN_FAILED);
    mx_runs_count(&r, "a", "prod", MX_RUN_STARTED);
    mx_runs_count(&r, "a", "prod", MX_RUN_INTERRUPTED);
    mx_runs_count(&r, "a", "prod", MX_RUN_STARTED);
    mx_runs_count(&r, "a", "prod", MX_RUN_SKIPPED);
    mx_runs_count(&r, "a", "prod", MX_RUN_STARTED);
    mx_runs_count(&r, "b\"x", "dev", MX_RUN_STARTED);
    mx_runs_count(&r, "b\"x", "dev", MX_RUN_STARTED);
    mx_runs_count(&r, "b\"x", "dev", MX_RUN_ENDED);
    char *buf = text_of(write_runs, &r);
    assert_non_null(strstr(buf, "# TYPE flow_runs_started_total counter\n"
                                "flow_runs_started_total{flow=\"a\",env=\"prod\"} 5\n"
                                "flow_runs_started_total{flow=\"b\\\"x\",env=\"dev\"} 2\n"));
    assert_non_null(strstr(buf, "flow_runs_succeeded_total{flow=\"a\",env=\"prod\"} 1\n"));
    assert_non_null(strstr(buf, "flow_runs_failed_total{flow=\"a\",env=\"prod\"} 1\n"));
    assert_non_null(strstr(buf, "flow_runs_interrupted_total{flow=\"a\",env=\"prod\"} 1\n"));
    assert_non_null(strstr(buf, "flow_runs_skipped_total{flow=\"a\",env=\"prod\"} 1\n"));
    assert_non_null(strstr(buf, "flow_runs_succeeded_total{flow=\"b\\\"x\",env=\"dev\"} 0\n"));
    assert_non_null(strstr(buf, "# TYPE flow_runs_running gauge\n"
                                "flow_runs_running{flow=\"a\",env=\"prod\"} 1\n"
                                "flow_runs_running{flow=\"b\\\"x\",env=\"dev\"} 1\n"));
    free(buf);
    mx_runs_free(&r);
}

static void write_sizes(FILE *f, void *ud) {
    mx_write_sizes(f, ud);
}

static void put_file(const char *path, size_t n) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('x', f);
    fclose(f);
}

/* The sizes of state.db (with its -wal) and the store (walked), read again only
 * after MX_SIZES_EVERY seconds however often scraped. */
static void test_sizes(void **state) {
    (void)state;
    char dir[] = "/tmp/test-metrics-XXXXXX", p[256];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/state.db", dir);
    put_file(p, 1000);
    snprintf(p, sizeof p, "%s/state.db-wal", dir);
    put_file(p, 24);
    snprintf(p, sizeof p, "%s/store", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/store/ab", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/store/ab/cdef", dir);
    put_file(p, 300);
    snprintf(p, sizeof p, "%s/store/top", dir);
    put_file(p, 5);
    mx_sizes z = {.state_dir = dir};
    char *buf = text_of(write_sizes, &z);
    assert_non_null(strstr(buf, "# TYPE flow_state_db_bytes gauge\nflow_state_db_bytes 1024\n"));
    assert_non_null(strstr(buf, "# TYPE flow_store_bytes gauge\nflow_store_bytes 305\n"));
    free(buf);
    snprintf(p, sizeof p, "%s/store/more", dir); /* not seen before MX_SIZES_EVERY */
    put_file(p, 100);
    buf = text_of(write_sizes, &z);
    assert_non_null(strstr(buf, "flow_store_bytes 305\n"));
    free(buf);
    z.at -= MX_SIZES_EVERY; /* as if the time had passed */
    buf = text_of(write_sizes, &z);
    assert_non_null(strstr(buf, "flow_store_bytes 405\n"));
    free(buf);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A free port on 127.0.0.1 (bound, read, closed). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_listen_forms(void **state) {
    (void)state;
    char err[600], v[64];
    static const char *bad[] = {"", "x", "0", "65536", ":", "1.2.3.4:", "::1:80", "[::1]80",
                                "nosuchhost.invalid:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_null(mx_listen(bad[i], err, sizeof err));
        assert_non_null(strstr(err, "--metrics"));
    }
    int port = free_port();
    snprintf(v, sizeof v, "%d", port);
    mx_server *s = mx_listen(v, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mx_port(s), port);
    snprintf(v, sizeof v, "127.0.0.1:%d", port); /* taken */
    assert_null(mx_listen(v, err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    mx_stop(s);
    snprintf(v, sizeof v, ":%d", port); /* free again */
    s = mx_listen(v, err, sizeof err);
    assert_non_null(s);
    mx_stop(s);
    snprintf(v, sizeof v, "192.0.2.1:%d", port); /* TEST-NET: not this machine's */
    assert_null(mx_listen(v, err, sizeof err));
    assert_non_null(strstr(err, "not one of this machine's"));
}

static void render(void *ud, FILE *f) {
    (*(int *)ud)++;
    mx_family(f, "flow_t", "gauge", "test");
    mx_sample(f, "flow_t", NULL, 1);
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Send req (may be NULL), then read the answer until the server closes (at most
 * wait_ms); the answer in buf. */
static void exchange(int fd, const char *req, size_t reqlen, char *buf, size_t len, int wait_ms) {
    if (req) {
        size_t off = 0;
        while (off < reqlen) {
            ssize_t n = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
            if (n <= 0) break; /* the server closed (431) */
            off += (size_t)n;
        }
    }
    size_t got = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0) break;
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_server(void **state) {
    (void)state;
    char err[600], v[32], buf[4096];
    int port = free_port(), renders = 0;
    snprintf(v, sizeof v, "%d", port);
    mx_server *s = mx_listen(v, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(mx_start(s, render, &renders), 0);

    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(dial(port), get, strlen(get), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(buf, "\r\n\r\n# HELP flow_t test\n# TYPE flow_t gauge\nflow_t 1\n"));
    const char *q = "GET /metrics?x=1 HTTP/1.0\n\n";
    exchange(dial(port), q, strlen(q), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "200 OK"));
    const char *other = "GET /other HTTP/1.1\r\n\r\n";
    exchange(dial(port), other, strlen(other), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found"));
    const char *post = "POST /metrics HTTP/1.1\r\n\r\n";
    exchange(dial(port), post, strlen(post), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "405"));
    const char *junk = "\x01\x02garbage\r\n\r\n";
    exchange(dial(port), junk, strlen(junk), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "400 Bad Request"));

    /* a head larger than the limit: 431, closed */
    size_t big = 4 * MX_MAX_REQUEST;
    char *huge = malloc(big);
    memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(huge + 26, 'a', big - 26);
    exchange(dial(port), huge, big, buf, sizeof buf, 2000);
    free(huge);
    assert_non_null(strstr(buf, "431"));

    /* more silent clients than MX_MAX_CONN: a scrape is still answered at once */
    int idle[MX_MAX_CONN + 8];
    for (int i = 0; i < MX_MAX_CONN + 8; i++)
        idle[i] = dial(port);
    double t0 = now();
    exchange(dial(port), get, strlen(get), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "200 OK"));
    assert_true(now() - t0 < 1.0);
    /* a silent client is closed once its time is up (MX_CONN_TIMEOUT_MS) */
    int last = idle[MX_MAX_CONN + 7];
    t0 = now();
    exchange(last, NULL, 0, buf, sizeof buf, MX_CONN_TIMEOUT_MS + 3000);
    double waited = now() - t0;
    assert_true(waited < MX_CONN_TIMEOUT_MS / 1000.0 + 2.0);
    assert_string_equal(buf, "");
    for (int i = 0; i < MX_MAX_CONN + 7; i++)
        close(idle[i]);
    int before = renders;
    exchange(dial(port), get, strlen(get), buf, sizeof buf, 2000);
    assert_non_null(strstr(buf, "flow_t 1"));
    mx_stop(s);
    assert_int_equal(renders, before + 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_meter_rows),
        cmocka_unit_test(test_tally),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
