/* test_walk.c — the tree walker: links never followed by default, followed (with
 * loops refused) for input trees, and removal that removes links, not targets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

static char *tmpdir(void) {
    char *d = strdup("/tmp/flow-walk-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void sh(const char *fmt, const char *d) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, d, d, d, d, d, d);
    assert_int_equal(system(cmd), 0);
}

typedef struct seen {
    char text[2048]; /* "rel:type " for each entry, in visit order */
} seen;

static int note(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    seen *s = ctx;
    char one[256];
    snprintf(one, sizeof one, "%s:%c%s ", e->rel, "fdlo"[e->type], e -> post ? "+" : "");
    strncat(s->text, one, sizeof s->text - strlen(s->text) - 1);
    return 0;
}

static void test_nofollow_reports_links(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    sh("mkdir -p %s/t/sub %s/outside && echo x > %s/t/sub/a && echo y > %s/outside/b && "
       "ln -s ../outside %s/t/link && mkfifo %s/t/fifo",
       d);
    char t[512];
    snprintf(t, sizeof t, "%s/t", d);
    int fd = walk_open(AT_FDCWD, t, 0);
    assert_true(fd >= 0);
    seen s = {""};
    assert_int_equal(walk_tree(fd, t, WALK_STAT, note, &s, err, sizeof err), 0);
    assert_non_null(strstr(s.text, "link:l ")); /* reported, not entered */
    assert_null(strstr(s.text, "link/b"));
    assert_non_null(strstr(s.text, "fifo:o "));
    assert_non_null(strstr(s.text, "sub/a:f "));
    close(fd);
    /* a folder that is a link is not opened as one */
    char l[512];
    snprintf(l, sizeof l, "%s/t/link", d);
    assert_int_equal(walk_open(AT_FDCWD, l, 0), -1);
    sh("rm -rf %s", d);
    free(d);
}

static void test_follow_and_loops(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    sh("mkdir -p %s/t/sub %s/outside && echo x > %s/t/sub/a && echo y > %s/outside/b && "
       "ln -s ../outside %s/t/link && ln -s nowhere %s/t/dangling",
       d);
    char t[512];
    snprintf(t, sizeof t, "%s/t", d);
    int fd = walk_open(AT_FDCWD, t, 1);
    seen s = {""};
    assert_int_equal(walk_tree(fd, t, WALK_FOLLOW, note, &s, err, sizeof err), 0);
    assert_non_null(strstr(s.text, "link/b:f ")); /* followed */
    assert_null(strstr(s.text, "dangling"));      /* skipped */
    sh("ln -s .. %s/t/sub/up", d);
    seen s2 = {""};
    assert_int_equal(walk_tree(fd, t, WALK_FOLLOW, note, &s2, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbolic link loop"));
    close(fd);
    sh("rm -rf %s", d);
    free(d);
}

static void test_post_order_and_remove(void **state) {
    (void)state;
    char *d = tmpdir(), err[256];
    sh("mkdir -p %s/t/sub/deep %s/keep && echo x > %s/t/sub/deep/a && echo y > %s/keep/b && "
       "ln -s ../keep %s/t/sub/tokeep && chmod 555 %s/t/sub",
       d);
    char t[512];
    snprintf(t, sizeof t, "%s/t", d);
    int fd = walk_open(AT_FDCWD, t, 0);
    seen s = {""};
    assert_int_equal(walk_tree(fd, t, WALK_POST, note, &s, err, sizeof err), 0);
    char *first = strstr(s.text, "sub/deep:d "), *post = strstr(s.text, "sub/deep:d+ ");
    assert_non_null(first);
    assert_non_null(post);
    assert_true(strstr(s.text, "sub/deep/a:f ") > first && strstr(s.text, "sub/deep/a:f ") < post);
    close(fd);
    assert_int_equal(walk_remove_path(t), 0);
    assert_int_equal(access(t, F_OK), -1);
    char b[512];
    snprintf(b, sizeof b, "%s/keep/b", d);
    assert_int_equal(access(b, F_OK), 0); /* the link went, not what it pointed to */
    sh("rm -rf %s", d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nofollow_reports_links),
        cmocka_unit_test(test_follow_and_loops),
        cmocka_unit_test(test_post_order_and_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
