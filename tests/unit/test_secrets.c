/* test_secrets.c — secrets.c: an environment-variable secret leaves the environment
 * (unset, and its bytes overwritten) and lives in the memfd; a second name on the same
 * variable shares it; an unset variable, a missing file and a folder are refused with
 * one line; FLOW_SECRET_ names are upper-cased; in a forked child, fsec_enter_pidns +
 * fsec_materialize give a tmpfs file (0400) with exactly the value, FLOW_SECRET_<NAME>
 * pointing at it, only for the names the task declares, and the child is pid 1 of a
 * namespace whose /proc shows it alone (or the test says the kernel refused). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plan.h"
#include "secrets.h"

static void test_env_moves(void **state) {
    (void)state;
    fsec_set s;
    fsec_init(&s);
    char why[256];
    setenv("T_SECRET_A", "value-of-a", 1);
    char *orig = getenv("T_SECRET_A");
    assert_int_equal(fsec_add_env(&s, "a", "T_SECRET_A", why, sizeof why), 0);
    assert_null(getenv("T_SECRET_A"));
    assert_int_equal(orig[0], 0); /* the bytes are gone, not just the variable */
    assert_int_equal(fsec_add_env(&s, "a2", "T_SECRET_A", why, sizeof why), 0); /* shared */
    assert_int_equal(s.n, 2);
    const fsec_entry *a = fsec_get(&s, "a"), *a2 = fsec_get(&s, "a2");
    assert_non_null(a);
    assert_int_equal(a->len, 10);
    assert_int_equal(a2->off, a->off);
    char buf[32] = "";
    assert_int_equal(pread(s.memfd, buf, a->len, a->off), 10);
    assert_string_equal(buf, "value-of-a");
    assert_int_equal(fsec_add_env(&s, "b", "T_SECRET_UNSET", why, sizeof why), -1);
    assert_string_equal(why, "the environment variable T_SECRET_UNSET is not set");
    assert_int_equal(fsec_add_file(&s, "c", "/nonexistent/key", why, sizeof why), -1);
    assert_string_equal(why, "its file /nonexistent/key cannot be read: No such file or directory");
    assert_int_equal(fsec_add_file(&s, "d", "/tmp", why, sizeof why), -1);
    assert_string_equal(why, "its file /tmp is not a regular file");
    char var[64];
    fsec_env_name("s3_Key", var, sizeof var);
    assert_string_equal(var, "FLOW_SECRET_S3_KEY");
    fsec_free(&s);
    assert_int_equal(s.memfd, -1);
}

/* A plan with one task declaring "k" (not "other"). */
static fl_plan *one_task(void) {
    fl_plan *p = plan_new(fl_ctx_default());
    uint32_t t = PLAN_PUSH(p, tasks);
    p->tasks[t].name = plan_intern_str(p, "t");
    uint32_t i = PLAN_PUSH(p, secrets);
    p->secrets[i] = (plan_secret){t, plan_intern_str(p, "k"), PLAN_NONE};
    return p;
}

static void test_materialize(void **state) {
    (void)state;
    char top[] = "/tmp/flow-sec-XXXXXX";
    assert_non_null(mkdtemp(top));
    char key[128], mnt[128], why[512];
    snprintf(key, sizeof key, "%s/key", top);
    snprintf(mnt, sizeof mnt, "%s/mnt", top);
    FILE *f = fopen(key, "w");
    assert_non_null(f);
    fputs("the-key\n", f);
    fclose(f);
    fsec_set s;
    fsec_init(&s);
    assert_int_equal(fsec_add_file(&s, "k", key, why, sizeof why), 0);
    setenv("T_SECRET_O", "other-value", 1);
    assert_int_equal(fsec_add_env(&s, "other", "T_SECRET_O", why, sizeof why), 0);
    assert_int_equal(fsec_set_mnt(&s, mnt, why, sizeof why), 0);
    if (fsec_probe(&s, why, sizeof why)) {
        print_message("skipped: the kernel refuses: %s\n", why);
        fsec_free(&s);
        return;
    }
    fl_plan *p = one_task();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char msg[600] = "ok";
        close(pfd[0]);
        if (fsec_enter_pidns(msg, sizeof msg) == 0) {
            if (fsec_materialize(&s, p, 0, geteuid(), getegid(), msg, sizeof msg) == 0) {
                const char *path = getenv("FLOW_SECRET_K");
                char buf[64] = "";
                struct stat st;
                int fd = path ? open(path, O_RDONLY) : -1;
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
                snprintf(msg, sizeof msg, "pid %d, %s, mode %o, other %s, procs %s",
                         (int)getpid(), n > 0 ? buf : "(unread)",
                         path && !stat(path, &st) ? (unsigned)(st.st_mode & 0777) : 0u,
                         getenv("FLOW_SECRET_OTHER") ? "set" : "unset",
                         access("/proc/2", F_OK) ? "alone" : "not alone");
            }
        }
        if (write(pfd[1], msg, strlen(msg)) < 0) {
        }
        _exit(0);
    }
    close(pfd[1]);
    char got[600] = "";
    ssize_t n = read(pfd[0], got, sizeof got - 1);
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    assert_true(n > 0);
    assert_string_equal(got, "pid 1, the-key\n, mode 400, other unset, procs alone");
    struct stat st;
    assert_int_equal(stat(mnt, &st), 0); /* outside: the folder, empty */
    char inside[160];
    snprintf(inside, sizeof inside, "%s/k", mnt);
    assert_int_equal(access(inside, F_OK), -1);
    plan_free(p);
    fsec_free(&s);
    unlink(key);
    rmdir(mnt);
    rmdir(top);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_moves),
        cmocka_unit_test(test_materialize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
