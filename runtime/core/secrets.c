/*
 * secrets.c — where secret values live, and how one reaches exactly one task.
 *
 * DESIGN
 *   flowrun never holds a secret value in its own memory, because every worker it
 *   forks would inherit a copy that any task in that worker could read. A file
 *   secret stays in its file until the worker that may see it reads it. An
 *   environment-variable secret is moved at start (fsec_add_env): its value is
 *   copied into a memfd, the original bytes are overwritten (the kernel shows
 *   /proc/PID/environ from the original environment block, so unsetenv alone would
 *   leave the value readable there) and the variable is unset, all before any worker
 *   exists. Pooled workers close the memfd first thing after fork; the fresh worker
 *   of a task with secrets reads only its own entries from it, then closes it.
 *
 *   Reading another process's secrets through /proc (its environ, its root's mounts,
 *   its fds) needs that process to be visible. So every worker of a run with secret
 *   tasks lives in a pid namespace of its own with its own /proc (fsec_enter_pidns:
 *   fork, unshare, fork; the middle process waits and ends as the worker did, and dies
 *   with flowrun, taking the namespace with it): a task sees its own worker's
 *   processes and nothing else, neither flowrun nor another worker. The fresh worker
 *   of a task with secrets also gets a mount namespace in which a private tmpfs on
 *   an empty folder of the state directory holds one 0400 file per declared secret
 *   (fsec_materialize); outside that namespace the folder is empty.
 *
 *   As root the namespaces need nothing more; as another user a user namespace
 *   mapping the user to itself comes first. Where the kernel refuses any of it,
 *   fsec_probe says so before the run starts and the run is refused.
 *
 *   What this does not stop (docs/secrets.md): a task running as root, or as the
 *   owner of the source file, can read the file directly; flowrun's own user can
 *   read flowrun's memfd through /proc from outside the run.
 */
#define _GNU_SOURCE
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FSEC_MAX_BYTES (1 << 20) /* the largest secret value (a key, a token, a cert) */
#define FSEC_TMPFS_OPTS "mode=0700,size=16m"

void fsec_init(fsec_set *s) {
    memset(s, 0, sizeof *s);
    s->memfd = -1;
}

void fsec_free(fsec_set *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->e[i].name);
        free(s->e[i].file);
        free(s->e[i].var);
    }
    free(s->e);
    free(s->mnt);
    if (s->memfd >= 0) close(s->memfd);
    fsec_init(s);
}

const fsec_entry *fsec_get(const fsec_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].name, name)) return &s->e[i];
    return NULL;
}

void fsec_env_name(const char *name, char *buf, size_t len) {
    size_t n = (size_t)snprintf(buf, len, "FLOW_SECRET_%s", name);
    for (size_t i = 12; i < n && i < len; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (char)(buf[i] - 32);
}

static fsec_entry *add(fsec_set *s, const char *name, char *why, size_t len) {
    fsec_entry *e = realloc(s->e, (size_t)(s->n + 1) * sizeof *e);
    if (!e) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    s->e = e;
    e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    s->n++;
    return e;
}

int fsec_add_file(fsec_set *s, const char *name, const char *path, char *why, size_t len) {
    if (fsec_get(s, name)) return 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(why, len, "its file %s %s%s", path, fd < 0 ? "cannot be read: " : "",
                 fd < 0 ? strerror(errno) : "is not a regular file");
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    if (st.st_size > FSEC_MAX_BYTES) {
        snprintf(why, len, "its file %s is larger than 1 MiB", path);
        return -1;
    }
    fsec_entry *e = add(s, name, why, len);
    if (!e) return -1;
    if (!(e->file = strdup(path))) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    return 0;
}

int fsec_add_env(fsec_set *s, const char *name, const char *var, char *why, size_t len) {
    if (fsec_get(s, name)) return 0;
    for (int i = 0; i < s->n; i++) /* another name with the same variable: already moved */
        if (s->e[i].var && !strcmp(s->e[i].var, var)) {
            fsec_entry copy = s->e[i];
            fsec_entry *e = add(s, name, why, len);
            if (!e) return -1;
            e->off = copy.off;
            e->len = copy.len;
            if (!(e->var = strdup(var))) return snprintf(why, len, "out of memory"), -1;
            return 0;
        }
    char *v = getenv(var);
    if (!v) {
        snprintf(why, len, "the environment variable %s is not set", var);
        return -1;
    }
    size_t n = strlen(v);
    if (n > FSEC_MAX_BYTES) {
        snprintf(why, len, "the environment variable %s is longer than 1 MiB", var);
        return -1;
    }
    if (s->memfd < 0 && (s->memfd = memfd_create("flow-secrets", MFD_CLOEXEC)) < 0) {
        snprintf(why, len, "cannot keep it: memfd_create: %s", strerror(errno));
        return -1;
    }
    off_t off = lseek(s->memfd, 0, SEEK_END);
    if (off < 0 || pwrite(s->memfd, v, n, off) != (ssize_t)n) {
        snprintf(why, len, "cannot keep it: %s", strerror(errno));
        return -1;
    }
    fsec_entry *e = add(s, name, why, len);
    if (!e) return -1;
    e->off = off;
    e->len = n;
    if (!(e->var = strdup(var))) return snprintf(why, len, "out of memory"), -1;
    explicit_bzero(v, n); /* the bytes /proc/PID/environ shows */
    unsetenv(var);
    return 0;
}

int fsec_set_mnt(fsec_set *s, const char *dir, char *why, size_t len) {
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(why, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(why, len, "%s is not a folder", dir);
        return -1;
    }
    free(s->mnt);
    if (!(s->mnt = strdup(dir))) return snprintf(why, len, "out of memory"), -1;
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The middle process of fsec_enter_pidns: wait for the worker, end as it did. */
static void __attribute__((noreturn)) relay(pid_t pid) {
    /* the worker's sockets are its own: close ours (one call where the kernel has it) */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
    {
        int maxfd = (int)sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < maxfd && fd < 65536; fd++)
            close(fd);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) _exit(125);
    if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
}

int fsec_enter_pidns(char *why, size_t len) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int flags = CLONE_NEWPID | CLONE_NEWNS | (uid ? CLONE_NEWUSER : 0);
    if (unshare(flags)) {
        snprintf(why, len, "cannot make a pid namespace%s: %s", uid ? " (user namespace)" : "",
                 strerror(errno));
        return -1;
    }
    if (uid) {
        char map[64];
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        int bad = write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        bad = bad || write_file("/proc/self/setgroups", "deny") ||
              write_file("/proc/self/gid_map", map);
        if (bad) {
            snprintf(why, len, "cannot map the user into its namespace: %s", strerror(errno));
            return -1;
        }
    }
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        snprintf(why, len, "cannot fork into the pid namespace: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* flowrun's death ends us, and so the namespace */
        if (getppid() == 1) _exit(125);
        relay(pid);
    }
    (void)parent;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
        snprintf(why, len, "cannot mount a /proc of its own: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Copy one secret's value into fd (the tmpfs file). 0, or -1 with why. */
static int copy_value(const fsec_set *s, const fsec_entry *e, int out, char *why, size_t len) {
    char buf[8192];
    int in = -1, rc = -1;
    off_t at = 0;
    size_t left = e->len;
    if (e->file) {
        in = open(e->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
            snprintf(why, len, "secret '%s': cannot read %s: %s", e->name, e->file,
                     strerror(errno));
            return -1;
        }
        left = FSEC_MAX_BYTES;
    } else {
        in = s->memfd;
        at = e->off;
    }
    while (left > 0) {
        ssize_t k = pread(in, buf, left < sizeof buf ? left : sizeof buf, at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(why, len, "secret '%s': cannot read it: %s", e->name, strerror(errno));
            goto done;
        }
        if (k == 0) break;
        if (write(out, buf, (size_t)k) != k) {
            snprintf(why, len, "secret '%s': cannot write it: %s", e->name, strerror(errno));
            goto done;
        }
        at += k;
        left -= (size_t)k;
    }
    rc = 0;
done:
    explicit_bzero(buf, sizeof buf);
    if (e->file) close(in);
    return rc;
}

int fsec_materialize(const fsec_set *s, const fl_plan *p, uint32_t task, uid_t uid, gid_t gid,
                     char *why, size_t len) {
    int rc = -1;
    why[0] = 0;
    if (!s->mnt) {
        snprintf(why, len, "secrets: no folder to mount them on");
        goto done;
    }
    if (mount("flow-secrets", s->mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              FSEC_TMPFS_OPTS)) {
        snprintf(why, len, "secrets: cannot mount a tmpfs on %s: %s", s->mnt, strerror(errno));
        goto done;
    }
    int own = geteuid() == 0 && (uid != 0 || gid != 0);
    if (own && chown(s->mnt, uid, gid)) {
        snprintf(why, len, "secrets: cannot hand %s over: %s", s->mnt, strerror(errno));
        goto done;
    }
    for (int i = 0; i < s->n; i++) {
        const fsec_entry *e = &s->e[i];
        if (!plan_task_has_secret(p, task, e->name)) continue;
        char path[4096], var[100];
        snprintf(path, sizeof path, "%s/%s", s->mnt, e->name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0) {
            snprintf(why, len, "secret '%s': cannot create %s: %s", e->name, path,
                     strerror(errno));
            goto done;
        }
        int bad = copy_value(s, e, fd, why, len) || (own && fchown(fd, uid, gid));
        if (bad && !why[0]) snprintf(why, len, "secret '%s': %s", e->name, strerror(errno));
        close(fd);
        if (bad) goto done;
        fsec_env_name(e->name, var, sizeof var);
        setenv(var, path, 1);
    }
    rc = 0;
done:
    if (s->memfd >= 0) close(s->memfd); /* read what we may; nothing later may read more */
    return rc;
}

int fsec_probe(const fsec_set *s, char *why, size_t len) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        snprintf(why, len, "cannot probe namespaces: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        snprintf(why, len, "cannot probe namespaces: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        char msg[512] = "";
        close(pfd[0]);
        if (fsec_enter_pidns(msg, sizeof msg) == 0) {
            if (s->mnt && mount("flow-secrets", s->mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                FSEC_TMPFS_OPTS))
                snprintf(msg, sizeof msg, "cannot mount a tmpfs for the secrets: %s",
                         strerror(errno));
        }
        if (msg[0] && write(pfd[1], msg, strlen(msg)) < 0) {
        }
        _exit(msg[0] ? 1 : 0);
    }
    close(pfd[1]);
    ssize_t n = read(pfd[0], why, len - 1);
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (n > 0) {
        why[n] = 0;
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        snprintf(why, len, "cannot make a pid namespace (the probe ended with status %#x)",
                 (unsigned)st);
        return -1;
    }
    return 0;
}
