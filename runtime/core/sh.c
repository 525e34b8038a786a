/*
 * sh.c — command tasks (`task t(...) -> T = sh "..."`).
 *
 * DESIGN
 *   The command text is the task's `cmd` lambda evaluated on the arguments
 *   plus `{out}` (the compiler has already shell-quoted every interpolation).
 *   `{out}` is a fresh path in the instance's output directory for -> path, a
 *   fresh empty directory there for -> dir, and a fresh path in the scratch
 *   directory otherwise. The command runs as `/bin/sh -c TEXT` in a process
 *   group of its own (posix_spawn), stdin from /dev/null, stdout and stderr on
 *   two pipes read together with poll() so neither can fill up and stall the
 *   child. A timeout kills the whole group. stderr always goes to the instance
 *   log (and stdout too, unless it is the result); a non-zero exit fails the
 *   instance with the status and the tail of stderr.
 *
 *   A task with `image:` runs the same command text through `podman run ...
 *   IMAGE /bin/sh -c TEXT` instead (podman.c builds that command and says what
 *   the container sees); on a timeout its container is removed by name too.
 */
#define _GNU_SOURCE
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "expr.h"
#include "jit.h"
#include "podman.h"
#include "rtcore.h"

extern char **environ;

/* Most stdout kept for a result (more fails the instance). */
#define SH_MAX_STDOUT (64u << 20)
/* Most stderr kept (the oldest part is dropped beyond this). */
#define SH_MAX_STDERR (1u << 20)
/* The stderr tail quoted in an error: at most this many lines and bytes. */
#define SH_TAIL_LINES 20
#define SH_TAIL_BYTES 2048

typedef struct sh_buf {
    char *d;       /* bytes (malloc'ed), NUL-terminated when len < cap */
    size_t len;    /* bytes kept */
    size_t cap;    /* bytes allocated */
    size_t limit;  /* most bytes kept */
    int keep_tail; /* over the limit: 1 drop the oldest bytes, 0 drop the newest */
    int overflow;  /* bytes were dropped */
    int nomem;     /* bytes were dropped for want of memory (the instance fails) */
} sh_buf;

static void buf_add(sh_buf *b, const char *s, size_t n) {
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

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* The last SH_TAIL_LINES lines / SH_TAIL_BYTES bytes of s (without the final newline). */
static const char *tail_of(const char *s, size_t *n) {
    size_t len = *n;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    size_t start = len > SH_TAIL_BYTES ? len - SH_TAIL_BYTES : 0;
    int lines = 0;
    for (size_t i = len; i > start; i--)
        if (s[i - 1] == '\n' && ++lines == SH_TAIL_LINES) {
            start = i;
            break;
        }
    *n = len - start;
    return s + start;
}

typedef struct sh_run {
    pid_t pid;     /* the shell (also its process group) */
    int status;    /* waitpid status */
    long rss_kb;   /* the command's peak resident memory (wait4), or 0 */
    int64_t cpu_ns; /* its CPU time, user + system (wait4) */
    int timed_out; /* killed for the timeout */
    sh_buf out;    /* stdout */
    sh_buf err;    /* stderr (the tail) */
} sh_run;

/* Spawn argv (argv[0] looked up on PATH) and wait, reading both pipes; 0, or -1 with
 * errno-ish text in why. */
static int run_command(char *const *argv, int64_t timeout_ms, sh_run *r, char *why,
                       size_t whylen) {
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC)) goto syserr0;
    if (pipe2(pe, O_CLOEXEC)) {
        close(po[0]);
        close(po[1]);
        goto syserr0;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
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
    int rc = argv[0][0] == '/' ? posix_spawn(&r->pid, argv[0], &fa, &at, argv, environ)
                               : posix_spawnp(&r->pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    if (rc) {
        close(po[0]);
        close(pe[0]);
        snprintf(why, whylen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    double deadline = timeout_ms > 0 ? mono_ms() + (double)timeout_ms : 0;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    sh_buf *bufs[2] = {&r->out, &r->err};
    int open_fds = 2;
    char chunk[65536];
    while (open_fds) {
        int wait_ms = -1;
        if (deadline) {
            double left = deadline - mono_ms();
            if (left <= 0) {
                r->timed_out = 1;
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
                buf_add(bufs[i], chunk, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    /* the pipes are closed; the shell may still be running */
    for (;;) {
        if (r->timed_out) kill(-r->pid, SIGKILL);
        struct rusage ru;
        pid_t w = wait4(r->pid, &r->status, r->timed_out || !deadline ? 0 : WNOHANG, &ru);
        if (w == r->pid) {
            r->rss_kb = ru.ru_maxrss;
            r->cpu_ns = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
                        ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
            break;
        }
        if (w < 0 && errno != EINTR) {
            snprintf(why, whylen, "wait4: %s", strerror(errno));
            return -1;
        }
        if (w == 0) {
            if (mono_ms() >= deadline)
                r->timed_out = 1;
            else
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
    if (r->timed_out) kill(-r->pid, SIGKILL); /* anything left in the group */
    return 0;
syserr0:
    snprintf(why, whylen, "cannot make a pipe: %s", strerror(errno));
    return -1;
}

static int parse_number(rt_ictx *c, uint32_t kind, const char *text, fl_val *out) {
    char *end;
    errno = 0;
    if (kind == PT_INT)
        out->i = strtoll(text, &end, 10);
    else
        out->f = strtod(text, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (end == text || *end || errno) {
        char shown[64];
        snprintf(shown, sizeof shown, "%s", text);
        size_t n = strlen(shown);
        while (n && (shown[n - 1] == '\n' || shown[n - 1] == '\r' || shown[n - 1] == ' '))
            shown[--n] = 0;
        rt_ictx_fail(c, "command output is not %s: '%s'", kind == PT_INT ? "an int" : "a float",
                     shown);
        return -1;
    }
    return 0;
}

int rt_sh_run(rt_ictx *c, uint32_t ti, const fl_val *args, fl_val *out) {
    const fl_plan *p = c->rt->plan;
    const plan_task *t = &p->tasks[ti];
    uint32_t rkind = p->types[t->ret].kind;
    out->i = 0;
    /* {out} */
    const char *outp;
    if (rkind == PT_PATH || rkind == PT_DIR) {
        outp = rt_ictx_out_path(c, "out");
    } else {
        const char *scratch = flow_scratch_dir();
        if (!scratch) return -1;
        size_t n = strlen(scratch) + 32;
        char *q = rt_arena_alloc(c, n);
        if (!q) return -1;
        snprintf(q, n, "%s/out-%u", scratch, ++c->out_seq);
        outp = q;
    }
    if (!outp) return -1;
    if (rkind == PT_DIR && mkdir(outp, 0777) != 0) {
        rt_ictx_fail(c, "cannot create output directory %s: %s", outp, strerror(errno));
        return -1;
    }
    /* the command text */
    fl_val largs[RT_MAX_PARAMS + 1];
    if (t->nparams) memcpy(largs, args, t->nparams * sizeof *largs);
    uint32_t str_t = p->typelist[p->lambdas[t->cmd].first_ptype + t->nparams];
    largs[t->nparams] = fv_str_cstr(p, str_t, outp);
    if (!largs[t->nparams].o) {
        rt_ictx_fail(c, "out of memory");
        return -1;
    }
    fl_val cmdv;
    expr_error ee;
    int rc = expr_run(p, t->cmd, largs, &cmdv, &ee);
    fv_decref(p, str_t, largs[t->nparams]);
    if (rc) {
        char buf[300];
        rt_ictx_fail(c, "command: %s", expr_error_format(p, &ee, buf, sizeof buf));
        return -1;
    }
    sh_run r = {0};
    r.out.limit = SH_MAX_STDOUT;
    r.err.limit = SH_MAX_STDERR;
    r.err.keep_tail = 1;
    char why[256];
    int64_t timeout = c->job && c->job->timeout_ms > 0 ? c->job->timeout_ms : t->timeout_ms;
    const char *text = fv_as_str(cmdv)->data;
    if (t->image == PLAN_NONE) {
        char *argv[] = {"/bin/sh", "-c", (char *)text, NULL};
        rc = run_command(argv, timeout, &r, why, sizeof why);
    } else { /* in a container: only the inputs and the folder of {out} are seen */
        char name[96], *rw = strdup(outp), *slash = rw ? strrchr(rw, '/') : NULL;
        if (slash && slash != rw) *slash = 0;
        rt_podman_name(name, sizeof name);
        const char *mine[2] = {rw, rkind == PT_DIR ? outp : NULL};
        char **argv = NULL;
        if (!rw) snprintf(why, sizeof why, "out of memory");
        else if (!rt_podman_hand_over(p, ti, mine, 2, why, sizeof why))
            argv = rt_podman_argv(p, ti, args, text, rw, name, why, sizeof why);
        rc = argv ? run_command(argv, timeout, &r, why, sizeof why) : -1;
        if (argv && (r.timed_out || rc)) rt_podman_remove(name);
        rt_podman_argv_free(argv);
        free(rw);
    }
    fv_decref(p, p->lambdas[t->cmd].ret, cmdv);
    if (r.rss_kb > c->peak_rss_kb) c->peak_rss_kb = r.rss_kb;
    if (r.pid > 0) c->cmd_cpu_ns += r.cpu_ns, c->cmd_ran = 1;
    int result_is_stdout = rkind == PT_STR || rkind == PT_INT || rkind == PT_FLOAT;
    if (!result_is_stdout && r.out.len) rt_ictx_log(c, r.out.d, r.out.len);
    if (r.err.len) rt_ictx_log(c, r.err.d, r.err.len);
    size_t tn = r.err.len;
    const char *tail = r.err.len ? tail_of(r.err.d, &tn) : "";
    const char *sep = tn ? ": " : "";
    if (rc) {
        rt_ictx_fail(c, "%s", why);
    } else if (r.timed_out) {
        rt_ictx_fail(c, "command timed out after %lld ms%s%.*s", (long long)timeout, sep, (int)tn,
                     tail);
    } else if (WIFSIGNALED(r.status)) {
        rt_ictx_fail(c, "command killed by signal %d (%s)%s%.*s", WTERMSIG(r.status),
                     strsignal(WTERMSIG(r.status)), sep, (int)tn, tail);
    } else if (WEXITSTATUS(r.status) != 0) {
        rt_ictx_fail(c, "command exited with status %d%s%.*s", WEXITSTATUS(r.status), sep, (int)tn,
                     tail);
    } else if (r.out.nomem || r.err.nomem) {
        rt_ictx_fail(c, "out of memory");
    } else if (r.out.overflow && result_is_stdout) {
        rt_ictx_fail(c, "command output is larger than %u bytes", SH_MAX_STDOUT);
    } else {
        text = r.out.d ? r.out.d : "";
        size_t n = r.out.len;
        struct stat st;
        switch (rkind) {
            case PT_STR:
                if (n && text[n - 1] == '\n') n--;
                *out = fv_str_new(p, t->ret, text, (int64_t)n);
                if (!out->o) {
                    rt_ictx_fail(c, "out of memory");
                    rc = -1;
                }
                break;
            case PT_INT:
            case PT_FLOAT:
                if (parse_number(c, rkind, text, out)) rc = -1;
                break;
            case PT_PATH:
            case PT_DIR:
                if (stat(outp, &st) != 0) {
                    rt_ictx_fail(c, "command did not create its output %s", outp);
                    rc = -1;
                } else if (rkind == PT_DIR ? !S_ISDIR(st.st_mode) : S_ISDIR(st.st_mode)) {
                    rt_ictx_fail(c, "command output %s is %s", outp,
                                 rkind == PT_DIR ? "not a directory" : "a directory");
                    rc = -1;
                } else if (!(*out = fv_str_cstr(p, t->ret, outp)).o) {
                    rt_ictx_fail(c, "out of memory");
                    rc = -1;
                }
                break;
            default:
                break;
        }
    }
    free(r.out.d);
    free(r.err.d);
    return c->failed ? -1 : rc;
}
