/*
 * isolate.c — every other environment's root read-only to a run's tasks.
 *
 * DESIGN. A run in environment E may write E's root and its state directory;
 * the roots of the other environments (flow.yaml, config.h) must be read-only
 * to every task of the run, whichever executor runs it. Tasks run as threads of
 * flowrun (inline) or in processes forked from it (process workers, and the
 * programs of sh tasks), so flowrun changes its own view of the filesystem once,
 * before it starts anything, and everything inherits it:
 *
 *   1. A private mount namespace (unshare CLONE_NEWNS) whose "/" is made a
 *      slave of the host's, so nothing done inside propagates out while the
 *      host's later mounts still come in.
 *   2. Each other root is bind-mounted onto itself (recursively) and every
 *      mount at or below it — read from /proc/self/mountinfo — is remounted
 *      read-only, nosuid, nodev, keeping the flags it already had (a user
 *      namespace may not clear them).
 *
 * As root, that is all flowrun does to itself: it keeps its capabilities, which
 * the process executor needs (the store's read-only view, run_as); each worker
 * drops CAP_SYS_ADMIN after its own setup (iso_drop_sys_admin), so a task in a
 * worker cannot remount. An inline task running as root could: documented.
 *
 * Not root, flowrun first enters a user namespace of its own that maps its user
 * and group to themselves (setgroups denied), which gives it the capabilities
 * the mounts need inside; once they are made it drops every capability, sets
 * no-new-privileges, and so can never get them back: a task that makes a nested
 * user namespace finds the mounts locked read-only there. The kernel refuses a
 * user namespace to a process that has threads, hence "once, early"; iso_enter
 * checks it rather than trusting it.
 *
 * Cost: one unshare and a few mounts per run, nothing per task or instance, and
 * nothing at all when there is no other root (no flow.yaml).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolate.h"

#define ISO_PATH_MAX 4096 /* a mount point read from /proc/self/mountinfo */

/* The number of threads of this process (from /proc/self/task), or -1. */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Write text to the file path (a /proc/self/ map); 0 or -1 (errno). */
static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t len = (ssize_t)strlen(text), w = write(fd, text, (size_t)len);
    int e = errno;
    close(fd);
    errno = e;
    return w == len ? 0 : -1;
}

/* Decode mountinfo's octal escapes (\040 for a space ...) in place. */
static void unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* Remount the mount at path read-only, nosuid, nodev, keeping its other flags. */
static int remount_ro(const char *path) {
    struct statvfs sv;
    if (statvfs(path, &sv)) return -1;
    unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) fl |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) fl |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) fl |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) fl |= MS_RELATIME;
    return mount(NULL, path, NULL, fl, NULL);
}

/* Bind root onto itself and make it and every mount below it read-only. 0, or -1
 * with why in err. */
static int protect_root(const char *root, char *err, size_t errlen) {
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) {
        snprintf(err, errlen, "bind-mount %s: %s", root, strerror(errno));
        return -1;
    }
    if (remount_ro(root)) {
        snprintf(err, errlen, "remount %s read-only: %s", root, strerror(errno));
        return -1;
    }
    /* the mounts below it (the recursive bind brought copies of them) */
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        snprintf(err, errlen, "/proc/self/mountinfo: %s", strerror(errno));
        return -1;
    }
    size_t rl = strlen(root);
    char line[2 * ISO_PATH_MAX], mp[ISO_PATH_MAX];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ..." */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
        unescape(mp);
        if (strncmp(mp, root, rl) || mp[rl] != '/') continue; /* not strictly below */
        if (remount_ro(mp) && errno != ENOENT && errno != EACCES) {
            snprintf(err, errlen, "remount %s read-only: %s", mp, strerror(errno));
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* capset(2) of the given sets (two 32-bit words each) on this process. */
static int set_caps(const uint32_t eff[2], const uint32_t prm[2], const uint32_t inh[2]) {
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    for (int i = 0; i < 2; i++) {
        d[i].effective = eff[i];
        d[i].permitted = prm[i];
        d[i].inheritable = inh[i];
    }
    return (int)syscall(SYS_capset, &h, d);
}

/* Drop every capability for good: bounding set, ambient, then the rest, and no
 * new privileges. */
static int drop_all_caps(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
    for (int c = 0; c <= 63; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno == EINVAL) break; /* past the last */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    const uint32_t none[2] = {0, 0};
    return set_caps(none, none, none);
}

int iso_drop_sys_admin(void) {
    /* the bounding set, or a root task gets it back by exec (needs CAP_SETPCAP) */
    int bad = prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0;
    int e = errno;
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_SYS_ADMIN, 0, 0);
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return -1;
    uint32_t eff[2], prm[2], inh[2], bit = 1u << (CAP_SYS_ADMIN % 32);
    int w = CAP_SYS_ADMIN / 32;
    for (int i = 0; i < 2; i++) {
        eff[i] = d[i].effective;
        prm[i] = d[i].permitted;
        inh[i] = d[i].inheritable;
    }
    eff[w] &= ~bit;
    prm[w] &= ~bit;
    inh[w] &= ~bit;
    if (set_caps(eff, prm, inh)) return -1;
    errno = e;
    return bad ? -1 : 0;
}

int iso_enter(const char *const *roots, int n, char *err, size_t errlen) {
    if (n <= 0) return 0;
    int threads = thread_count();
    if (threads != 1) {
        snprintf(err, errlen, "%s", threads < 0 ? "cannot read /proc/self/task"
                                                : "flowrun already runs threads");
        return -1;
    }
    for (int i = 0; i < n; i++) { /* what does not exist cannot be bound */
        struct stat st;
        const char *why = roots[i][0] != '/'      ? "not an absolute path"
                          : stat(roots[i], &st)   ? strerror(errno)
                          : !S_ISDIR(st.st_mode) ? "not a directory"
                                                  : NULL;
        if (why) {
            snprintf(err, errlen, "%s: %s", roots[i], why);
            return -1;
        }
    }
    int root = geteuid() == 0;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(root ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS)) {
        snprintf(err, errlen, "%s namespace refused: %s", root ? "a mount" : "a user",
                 strerror(errno));
        return -1;
    }
    if (!root) {
        /* a process that changed its ids is not dumpable, and then its /proc/self
         * files are root's: writable again while the maps are written */
        int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
        if (dumpable != 1) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        char map[64];
        snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)uid, (unsigned long)uid);
        int bad = (write_file("/proc/self/setgroups", "deny") && errno != ENOENT) ||
                  write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)gid, (unsigned long)gid);
        bad = bad || write_file("/proc/self/gid_map", map);
        int e = errno;
        if (dumpable == 0) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (bad) {
            snprintf(err, errlen, "map the user into its namespace: %s", strerror(e));
            return -1;
        }
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) {
        snprintf(err, errlen, "make / a slave mount: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (protect_root(roots[i], err, errlen)) return -1;
    if (!root && drop_all_caps()) {
        snprintf(err, errlen, "drop capabilities: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* iso_enter in a forked child, which then ends: the same answer, this process
 * unchanged (it may have threads: the child of a fork has one). */
static int iso_try(const char *const *roots, int n, char *err, size_t errlen) {
    int fd[2];
    if (pipe2(fd, O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char why[1024] = "";
        int rc = iso_enter(roots, n, why, sizeof why);
        if (rc && write(fd[1], why, strlen(why)) < 0) rc = 2;
        _exit(rc ? 1 : 0);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    char why[1024];
    ssize_t k = read(fd[0], why, sizeof why - 1);
    close(fd[0]);
    why[k > 0 ? k : 0] = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    snprintf(err, errlen, "%s", why[0] ? why : "the check ended abnormally");
    return -1;
}

int iso_protect_run(const char *env, const char *const *roots, int n, int unprotected, int check,
                    FILE *warn, char *err, size_t errlen) {
    int prod = !env || !strcmp(env, "prod");
    if (n <= 0) return 0;
    if (unprotected) {
        fprintf(warn, "flowrun: --unprotected: %s tasks can write the other environments' "
                      "roots\n", check ? "the runs'" : "this run's");
        return 0;
    }
    char why[1024];
    if ((check ? iso_try : iso_enter)(roots, n, why, sizeof why) == 0) return 1;
    if (prod) {
        fprintf(warn, "flowrun: the other environments' roots are not protected from %s: %s\n",
                check ? "these runs" : "this run", why);
        return 0;
    }
    snprintf(err, errlen, "cannot keep %s off %s: %s; give --unprotected to run %s anyway",
             check ? "these runs" : "this run", n == 1 ? roots[0] : "the other environments' roots",
             why, check ? "them" : "it");
    return -1;
}
