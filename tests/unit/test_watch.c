/* test_watch.c — serve's recursive folder watch (runtime/app/watch.c): a new file is a
 * change, nothing is none, a folder created later (with files already inside) is
 * watched and changes below it seen, an overflowing inotify queue is walked again and
 * counts as a change, the root going away says -1, and a missing root is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

static char root[64];

static int setup(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/flow-test-watch-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *rel, const char *text) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_changes_and_new_folders(void **state) {
    (void)state;
    char err[256] = "", p[PATH_MAX];
    fw_watch *w = fw_open(root, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(fw_drain(w, err, sizeof err), 0); /* nothing yet */
    write_file("a.txt", "one");
    assert_true(fw_drain(w, err, sizeof err) > 0);
    assert_int_equal(fw_drain(w, err, sizeof err), 0);
    /* a folder, then a file in it after the watch saw the folder */
    snprintf(p, sizeof p, "%s/sub", root);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_true(fw_drain(w, err, sizeof err) > 0);
    write_file("sub/b.txt", "two");
    assert_true(fw_drain(w, err, sizeof err) > 0);
    /* a folder made with a folder inside before the watch could see it: both watched */
    snprintf(p, sizeof p, "%s/x", root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/x/y", root);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_true(fw_drain(w, err, sizeof err) > 0);
    write_file("x/y/c.txt", "three");
    assert_true(fw_drain(w, err, sizeof err) > 0);
    /* a change to an existing file's content */
    write_file("a.txt", "one more");
    assert_true(fw_drain(w, err, sizeof err) > 0);
    assert_int_equal(fw_overflows(w), 0);
    fw_close(w);
}

static void test_overflow_walks_again(void **state) {
    (void)state;
    char err[256] = "", p[PATH_MAX];
    long max = 16384;
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1) max = 16384;
        fclose(f);
    }
    if (max > 100000) skip();
    fw_watch *w = fw_open(root, err, sizeof err);
    assert_non_null(w);
    /* more events than the queue holds, none read: IN_Q_OVERFLOW */
    for (long i = 0; i < max / 2 + 10; i++) {
        snprintf(p, sizeof p, "%s/f%ld", root, i);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        assert_true(fd >= 0);
        close(fd); /* IN_CREATE and IN_CLOSE_WRITE */
    }
    snprintf(p, sizeof p, "%s/late", root); /* a folder whose event was lost */
    assert_int_equal(mkdir(p, 0755), 0);
    assert_true(fw_drain(w, err, sizeof err) > 0);
    assert_int_equal(fw_overflows(w), 1);
    assert_int_equal(fw_drain(w, err, sizeof err), 0);
    write_file("late/d.txt", "found by the walk");
    assert_true(fw_drain(w, err, sizeof err) > 0);
    fw_close(w);
}

static void test_root_gone_and_missing(void **state) {
    (void)state;
    char err[256] = "", p[PATH_MAX];
    snprintf(p, sizeof p, "%s/r", root);
    assert_int_equal(mkdir(p, 0755), 0);
    fw_watch *w = fw_open(p, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(fw_drain(w, err, sizeof err), -1);
    fw_close(w);
    assert_null(fw_open(p, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    write_file("plain", "x");
    snprintf(p, sizeof p, "%s/plain", root);
    assert_null(fw_open(p, err, sizeof err));
    assert_non_null(strstr(err, "not a folder"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changes_and_new_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_walks_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_gone_and_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
