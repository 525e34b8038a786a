/*
 * spawn.c — run one command and read what it prints (see spawn.h).
 *
 * DESIGN
 *   posix_spawn (posix_spawnp for a bare name) with file actions: stdin from
 *   /dev/null, stdout and stderr dup'ed onto pipes (O_CLOEXEC, so no other child
 *   of flowrun inherits them) or /dev/null; attributes: a process group of its own
 *   (a Ctrl-C at the terminal reaches flowrun, which decides; a timeout kills the
 *   command and everything it started), an empty signal mask and the default
 *   actions for the signals flowrun handles. Both pipes are read in one poll()
 *   loop until both close or the deadline passes. Then wait4: with a deadline,
 *   without blocking, 1 ms apart, so a command that closed its outputs but keeps
 *   running is still killed at the deadline. rusage gives the peak RSS and CPU.
 *   Nothing here allocates but the output buffers, whose growth is bounded by
 *   their limits.
 */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void rt_obuf_add(rt_obuf *b, const char *s, size_t n) {
    if (b->len + n > b->limit) {
        b->overflow = 1;
        if (!b->keep_tail) {
            n = b->limit > b->len ? b->limit - b->len : 0;
        } else if (n >= b->limit) {
            s += n - b->limit;
            n = b->limit;
            b->len = 0;
        } else {
            size_t drop = b->len + n - b->limit;
            memmove(b->d, b->d + drop, b->len - drop);
            b->len -= drop;
        }
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->d, cap);
        if (!q) {
            b->nomem = 1;
            return;
        }
        b->d = q;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = 0;
}

void rt_obuf_free(rt_obuf *b) {
    free(b->d);
    b->d = NULL;
    b->len = b->cap = 0;
}

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int rt_cmd_run(char *const *argv, rt_cmd *c, char *why, size_t whylen) {
    int p[2][2] = {{-1, -1}, {-1, -1}}; /* stdout, stderr */
    rt_obuf *bufs[2] = {c->out, c->err};
    c->pid = 0;
    c->status = 0;
    c->timed_out = 0;
    c->rss_kb = 0;
    c->cpu_ns = 0;
    for (int i = 0; i < 2; i++)
        if (bufs[i] && pipe2(p[i], O_CLOEXEC)) {
            snprintf(why, whylen, "cannot make a pipe: %s", strerror(errno));
            if (i) close(p[0][0]), close(p[0][1]);
            return -1;
        }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; i < 2; i++) {
        if (bufs[i]) posix_spawn_file_actions_adddup2(&fa, p[i][1], i + 1);
        else posix_spawn_file_actions_addopen(&fa, i + 1, "/dev/null", O_WRONLY, 0);
    }
    posix_spawnattr_init(&at);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGCHLD);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    int rc = strchr(argv[0], '/') ? posix_spawn(&c->pid, argv[0], &fa, &at, argv, environ)
                                  : posix_spawnp(&c->pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (int i = 0; i < 2; i++)
        if (bufs[i]) close(p[i][1]);
    if (rc) {
        c->pid = 0;
        for (int i = 0; i < 2; i++)
            if (bufs[i]) close(p[i][0]);
        snprintf(why, whylen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    double deadline = c->timeout_ms > 0 ? mono_ms() + (double)c->timeout_ms : 0;
    struct pollfd fds[2] = {{p[0][0], POLLIN, 0}, {p[1][0], POLLIN, 0}};
    int open_fds = 0;
    for (int i = 0; i < 2; i++)
        open_fds += fds[i].fd >= 0;
    char chunk[65536];
    while (open_fds) {
        int wait_ms = -1;
        if (deadline) {
            double left = deadline - mono_ms();
            if (left <= 0) {
                c->timed_out = 1;
                break;
            }
            wait_ms = left < INT_MAX - 1 ? (int)left + 1 : INT_MAX; /* poll takes an int */
        }
        int n = poll(fds, 2, wait_ms);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; n > 0 && i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            ssize_t got = read(fds[i].fd, chunk, sizeof chunk);
            if (got > 0) {
                rt_obuf_add(bufs[i], chunk, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    /* the pipes are closed; the command may still be running */
    for (;;) {
        if (c->timed_out) kill(-c->pid, SIGKILL);
        struct rusage ru;
        pid_t w = wait4(c->pid, &c->status, c->timed_out || !deadline ? 0 : WNOHANG, &ru);
        if (w == c->pid) {
            c->rss_kb = ru.ru_maxrss;
            c->cpu_ns = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
                        ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
            break;
        }
        if (w < 0 && errno != EINTR) {
            snprintf(why, whylen, "wait4: %s", strerror(errno));
            return -1;
        }
        if (w == 0) {
            if (mono_ms() >= deadline)
                c->timed_out = 1;
            else
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
    if (c->timed_out) kill(-c->pid, SIGKILL); /* anything left in the group */
    return 0;
}

const char *rt_last_line(const char *s, char *buf, size_t n) {
    buf[0] = 0;
    if (!s || !n) return buf;
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
        len--;
    size_t b = len;
    while (b && s[b - 1] != '\n')
        b--;
    size_t k = len - b < n - 1 ? len - b : n - 1;
    memcpy(buf, s + b, k);
    buf[k] = 0;
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)buf[i] < 32) buf[i] = ' ';
    return buf;
}
