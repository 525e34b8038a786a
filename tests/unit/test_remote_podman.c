/*
 * test_remote_podman.c — the podman engine (remote_podman.c) on real containers:
 * start() runs one container per element with FLOW_ELEMENT set, the state
 * directory writable at its own path and the store read-only on top; one poll
 * reports pending/running/ended per element; a container removed behind the
 * engine's back is GONE; cancel removes every container of the run.
 *
 * It needs root, podman and an image with /bin/sh: FLOW_TEST_IMAGE names it
 * (tests/suites/64-podman.sh runs this binary with the image `make image`
 * built). Without it every test is skipped, saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "remote_podman.h"

typedef struct fx {
    char dir[64];   /* the state directory */
    char store[96]; /* its store */
    char logs[96];
    rm_engine *e;
} fx;

static int setup(void **state) {
    const char *img = getenv("FLOW_TEST_IMAGE");
    if (!img || !*img || geteuid() != 0) {
        *state = NULL;
        return 0;
    }
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/flow-rmpod-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    snprintf(f->logs, sizeof f->logs, "%s/log", f->dir);
    mkdir(f->store, 0755);
    mkdir(f->logs, 0755);
    rm_podman_options o = {.image = img, .state_dir = f->dir, .store_dir = f->store, .slots = 4};
    char err[400];
    f->e = rm_engine_podman(&o, err, sizeof err);
    if (!f->e) {
        fprintf(stderr, "rm_engine_podman: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    if (!f) return 0;
    f->e->ops->destroy(f->e);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd)) return -1;
    free(f);
    return 0;
}

typedef struct seen {
    enum rm_state st[8];
    int reports;
    char id[64];
} seen;

static void report(void *ud, const char *id, int64_t element, enum rm_state st) {
    seen *s = ud;
    snprintf(s->id, sizeof s->id, "%s", id);
    if (element >= 0 && element < 8) s->st[element] = st;
    s->reports++;
}

static int poll_until(fx *f, seen *s, int n, enum rm_state want, double secs) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[400];
    for (;;) {
        memset(s, 0, sizeof *s);
        assert_int_equal(f->e->ops->poll(f->e, report, s, err, sizeof err), 0);
        int all = 1;
        for (int i = 0; i < n; i++) all &= s->st[i] == want;
        if (all) return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 > secs)
            return 0;
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
}

static void start(fx *f, uint32_t batch, uint32_t nelem, const char *script, char *id) {
    const char *argv[] = {"/usr/bin/sh", "-c", script, NULL};
    char name[64];
    snprintf(name, sizeof name, "flow-77-%u", batch);
    rm_start s = {.run = 77, .batch = batch, .nelem = nelem, .slots = 1, .argv = argv,
                  .log_dir = f->logs, .name = name};
    char err[400];
    int rc = f->e->ops->start(f->e, &s, id, 64, err, sizeof err);
    if (rc) fprintf(stderr, "start: %s\n", err);
    assert_int_equal(rc, 0);
}

static void elements_run_and_end(void **state) {
    fx *f = *state;
    if (!f) skip();
    char id[64], script[400];
    snprintf(script, sizeof script,
             "echo el$FLOW_ELEMENT > %s/out.$FLOW_ELEMENT; "
             "if echo x > %s/planted; then echo store-writable; fi; echo logged",
             f->dir, f->store);
    start(f, 0, 3, script, id);
    assert_int_equal(strncmp(id, "flow-", 5), 0);
    assert_non_null(strstr(id, "-77-0"));
    seen s;
    assert_true(poll_until(f, &s, 3, RM_ENDED, 30));
    assert_string_equal(s.id, id);
    for (int i = 0; i < 3; i++) {
        char p[128], buf[16] = "";
        snprintf(p, sizeof p, "%s/out.%d", f->dir, i);
        FILE *fp = fopen(p, "r");
        assert_non_null(fp);
        assert_non_null(fgets(buf, sizeof buf, fp));
        fclose(fp);
        char want[16];
        snprintf(want, sizeof want, "el%d\n", i);
        assert_string_equal(buf, want);
        snprintf(p, sizeof p, "%s/0.%d", f->logs, i);
        struct stat st;
        assert_int_equal(stat(p, &st), 0); /* the element's log */
    }
    char p[128];
    snprintf(p, sizeof p, "%s/planted", f->store);
    assert_int_not_equal(access(p, F_OK), 0); /* the store is read-only */
    assert_true(f->e->ops->start_cost(f->e) > 0);
}

static void removed_is_gone_and_cancel_removes_all(void **state) {
    fx *f = *state;
    if (!f) skip();
    char id[64];
    start(f, 1, 2, "sleep 60", id);
    seen s;
    assert_true(poll_until(f, &s, 2, RM_RUNNING, 30));
    char cmd[200];
    snprintf(cmd, sizeof cmd, "podman rm -f -t 0 %s-1 > /dev/null 2>&1", id);
    if (system(cmd)) fail_msg("podman rm failed");
    memset(&s, 0, sizeof s);
    char err[400];
    assert_int_equal(f->e->ops->poll(f->e, report, &s, err, sizeof err), 0);
    assert_int_equal(s.st[1], RM_GONE);
    assert_int_equal(s.st[0], RM_RUNNING);
    f->e->ops->cancel(f->e);
    memset(&s, 0, sizeof s);
    assert_int_equal(f->e->ops->poll(f->e, report, &s, err, sizeof err), 0);
    assert_int_equal(s.st[0], RM_GONE);
    FILE *ps = popen("podman ps -aq --filter label=flow-run=77", "r");
    char line[100];
    assert_null(fgets(line, sizeof line, ps));
    pclose(ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(elements_run_and_end),
        cmocka_unit_test(removed_is_gone_and_cancel_removes_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
