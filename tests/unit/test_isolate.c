/* test_isolate.c — iso_enter (isolate.c): in a forked child that entered, a root
 * given read-only refuses writes with EROFS (also in a mount below it, and for a
 * program the child starts), a directory beside it stays writable, the parent's
 * view is unchanged; as an unprivileged user (root's child drops to nobody), the
 * same through a user namespace, and a nested user namespace cannot remount it;
 * no roots: no namespace at all; a missing, relative or file root is refused; a
 * process with threads is refused; a worker without CAP_SYS_ADMIN cannot remount. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolate.h"

typedef struct dirs {
    char top[64];   /* the temporary folder */
    char ro[128];   /* top/prod: given read-only */
    char rw[128];   /* top/test: left alone */
} dirs;

static void make(dirs *d) {
    snprintf(d->top, sizeof d->top, "/tmp/flow-iso-XXXXXX");
    assert_non_null(mkdtemp(d->top));
    chmod(d->top, 0755);
    snprintf(d->ro, sizeof d->ro, "%s/prod", d->top);
    snprintf(d->rw, sizeof d->rw, "%s/test", d->top);
    assert_int_equal(mkdir(d->ro, 0777), 0);
    assert_int_equal(mkdir(d->rw, 0777), 0);
    chmod(d->ro, 0777); /* writable by nobody too, so a refusal can only be EROFS */
    chmod(d->rw, 0777);
}

static void clean(dirs *d) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->top);
    assert_int_equal(system(cmd), 0);
}

/* errno of creating dir/name (0 when it could) */
static int try_write(const char *dir, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

/* Run body in a forked child; its exit status (0 = all its checks held). In the
 * child, a failed check exits with the line number. */
#define CHILD_CHECK(c)                                                                           \
    do {                                                                                         \
        if (!(c)) {                                                                              \
            fprintf(stderr, "child: line %d: %s (errno %s)\n", __LINE__, #c, strerror(errno));   \
            _exit(__LINE__ % 250 + 1);                                                           \
        }                                                                                        \
    } while (0)

static int in_child(void (*body)(const dirs *), const dirs *d) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        body(d);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* Can a mount namespace be set up here at all? Not in a chroot, whose "/" is not a
 * mount ("make / a slave mount: Invalid argument"): iso_enter refuses there, and
 * these tests skip (57-isolate checks the refusal). */
static int can_isolate(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0)
        _exit(unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0
                  ? 0
                  : 1);
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void body_enter(const dirs *d) {
    const char *roots[] = {d->ro};
    char err[512] = "";
    if (iso_enter(roots, 1, err, sizeof err)) {
        fprintf(stderr, "child: iso_enter: %s\n", err);
        _exit(200);
    }
    CHILD_CHECK(try_write(d->ro, "x") == EROFS);
    CHILD_CHECK(try_write(d->rw, "y") == 0);
    char below[160]; /* a folder below the root: read-only too */
    snprintf(below, sizeof below, "%s/sub", d->ro);
    CHILD_CHECK(mkdir(below, 0755) == -1 && errno == EROFS);
    /* a program started from here inherits it */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "touch '%s/z' 2>/dev/null", d->ro);
    CHILD_CHECK(system(cmd) != 0);
}

static void enter_makes_root_read_only(void **state) {
    (void)state;
    if (geteuid() == 0 && !can_isolate()) skip(); /* a chroot */
    dirs d;
    make(&d);
    int rc = in_child(body_enter, &d);
    if (rc == 200 && geteuid() != 0) { /* not root, and the kernel refuses a user namespace */
        clean(&d);
        skip();
    }
    assert_int_equal(rc, 0);
    /* the parent's view is its own: still writable */
    assert_int_equal(try_write(d.ro, "parent"), 0);
    clean(&d);
}

/* a mount below the root (made before entering) is read-only too */
static void body_submount(const dirs *d) {
    char sub[160];
    snprintf(sub, sizeof sub, "%s/mnt", d->ro);
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    CHILD_CHECK(mount("tmpfs", sub, "tmpfs", 0, "size=1m") == 0);
    CHILD_CHECK(try_write(sub, "before") == 0);
    body_enter(d);
    CHILD_CHECK(try_write(sub, "after") == EROFS);
}

static void enter_covers_mounts_below(void **state) {
    (void)state;
    if (geteuid() == 0 && !can_isolate()) skip(); /* a chroot */
    if (geteuid() != 0) skip();
    dirs d;
    make(&d);
    char sub[160];
    snprintf(sub, sizeof sub, "%s/mnt", d.ro);
    assert_int_equal(mkdir(sub, 0777), 0);
    assert_int_equal(in_child(body_submount, &d), 0);
    clean(&d);
}

/* as nobody: through a user namespace, and a nested one cannot undo it */
static void body_unprivileged(const dirs *d) {
    CHILD_CHECK(setgroups(0, NULL) == 0);
    CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
    CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
    const char *roots[] = {d->ro};
    char err[512] = "";
    if (iso_enter(roots, 1, err, sizeof err)) {
        fprintf(stderr, "child: unprivileged iso_enter refused here: %s\n", err);
        _exit(201); /* the kernel refuses: the caller skips */
    }
    CHILD_CHECK(try_write(d->ro, "x") == EROFS);
    CHILD_CHECK(try_write(d->rw, "y") == 0);
    CHILD_CHECK(mount(NULL, d->ro, NULL, MS_REMOUNT | MS_BIND, NULL) == -1); /* no capability */
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) { /* full capabilities in a nested one */
        CHILD_CHECK(mount(NULL, d->ro, NULL, MS_REMOUNT | MS_BIND, NULL) == -1);
        CHILD_CHECK(umount2(d->ro, MNT_DETACH) == -1);
        CHILD_CHECK(try_write(d->ro, "x") != 0);
    }
}

static void enter_unprivileged(void **state) {
    (void)state;
    if (geteuid() != 0) skip(); /* needs root to drop to nobody */
    dirs d;
    make(&d);
    int rc = in_child(body_unprivileged, &d);
    clean(&d);
    if (rc == 201) skip();
    assert_int_equal(rc, 0);
}

/* no roots: no namespace is entered */
static void body_none(const dirs *d) {
    (void)d;
    struct stat before, after;
    CHILD_CHECK(stat("/proc/self/ns/mnt", &before) == 0);
    char err[64];
    CHILD_CHECK(iso_enter(NULL, 0, err, sizeof err) == 0);
    CHILD_CHECK(stat("/proc/self/ns/mnt", &after) == 0);
    CHILD_CHECK(before.st_ino == after.st_ino);
}

static void no_roots_no_namespace(void **state) {
    (void)state;
    assert_int_equal(in_child(body_none, NULL), 0);
}

/* a root that is missing, relative or a file: refused before any namespace */
static void bad_roots_refused(void **state) {
    (void)state;
    const char *missing[] = {"/nonexistent/flow-iso-root"}, *relative[] = {"roots/prod"},
               *file[] = {"/etc/hostname"};
    char err[512];
    assert_int_equal(iso_enter(missing, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(iso_enter(relative, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an absolute path"));
    struct stat st;
    if (stat(file[0], &st) == 0) {
        assert_int_equal(iso_enter(file, 1, err, sizeof err), -1);
        assert_non_null(strstr(err, "not a directory"));
    }
}

static void *sleeper(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

/* a process with threads is refused: the namespace would not be everyone's */
static void body_threads(const dirs *d) {
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, NULL, sleeper, NULL) == 0);
    const char *roots[] = {d->ro};
    char err[512] = "";
    CHILD_CHECK(iso_enter(roots, 1, err, sizeof err) == -1);
    CHILD_CHECK(strstr(err, "threads") != NULL);
    CHILD_CHECK(try_write(d->ro, "x") == 0);
}

static void threads_refused(void **state) {
    (void)state;
    dirs d;
    make(&d);
    assert_int_equal(in_child(body_threads, &d), 0);
    clean(&d);
}

/* a root worker after iso_drop_sys_admin: cannot remount, still can chown */
static void body_drop(const dirs *d) {
    const char *roots[] = {d->ro};
    char err[512] = "";
    CHILD_CHECK(iso_enter(roots, 1, err, sizeof err) == 0);
    CHILD_CHECK(iso_drop_sys_admin() == 0);
    CHILD_CHECK(mount(NULL, d->ro, NULL, MS_REMOUNT | MS_BIND, NULL) == -1 && errno == EPERM);
    CHILD_CHECK(unshare(CLONE_NEWNS) == -1);
    CHILD_CHECK(try_write(d->ro, "x") == EROFS);
    char f[160];
    snprintf(f, sizeof f, "%s/y", d->rw);
    CHILD_CHECK(try_write(d->rw, "y") == 0 && chown(f, 65534, 65534) == 0);
}

static void drop_sys_admin(void **state) {
    (void)state;
    if (geteuid() == 0 && !can_isolate()) skip(); /* a chroot */
    if (geteuid() != 0) skip();
    dirs d;
    make(&d);
    assert_int_equal(in_child(body_drop, &d), 0);
    clean(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(enter_makes_root_read_only),
        cmocka_unit_test(enter_covers_mounts_below),
        cmocka_unit_test(enter_unprivileged),
        cmocka_unit_test(no_roots_no_namespace),
        cmocka_unit_test(bad_roots_refused),
        cmocka_unit_test(threads_refused),
        cmocka_unit_test(drop_sys_admin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
