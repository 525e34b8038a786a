/*
 * sh.c — command tasks (`task t(...) -> T = sh "..."`).
 *
 * DESIGN
 *   The command text is the task's `cmd` lambda evaluated on the arguments
 *   plus `{out}` (the compiler has already shell-quoted every interpolation).
 *   `{out}` is a fresh path in the instance's output directory for -> path, a
 *   fresh empty directory there for -> dir, and a fresh path in the scratch
 *   directory otherwise. The command runs as `/bin/sh -c TEXT` through
 *   rt_cmd_run (spawn.h: a process group of its own, stdin from /dev/null,
 *   stdout and stderr read together so neither can fill up and stall the child).
 *   A timeout kills the whole group. stderr always goes to the instance
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "expr.h"
#include "jit.h"
#include "podman.h"
#include "rtcore.h"
#include "spawn.h"


/* Most stdout kept for a result (more fails the instance). */
#define SH_MAX_STDOUT (64u << 20)
/* Most stderr kept (the oldest part is dropped beyond this). */
#define SH_MAX_STDERR (1u << 20)
/* The stderr tail quoted in an error: at most this many lines and bytes. */
#define SH_TAIL_LINES 20
#define SH_TAIL_BYTES 2048

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
    rt_obuf rout = {.limit = SH_MAX_STDOUT}, rerr = {.limit = SH_MAX_STDERR, .keep_tail = 1};
    char why[256];
    int64_t timeout = c->job && c->job->timeout_ms > 0 ? c->job->timeout_ms : t->timeout_ms;
    rt_cmd r = {.timeout_ms = timeout, .out = &rout, .err = &rerr};
    const char *text = fv_as_str(cmdv)->data;
    if (t->image == PLAN_NONE) {
        char *argv[] = {"/bin/sh", "-c", (char *)text, NULL};
        rc = rt_cmd_run(argv, &r, why, sizeof why);
    } else { /* in a container: only the inputs and the folder of {out} are seen */
        char name[96], *rw = strdup(outp), *slash = rw ? strrchr(rw, '/') : NULL;
        if (slash && slash != rw) *slash = 0;
        rt_podman_name(name, sizeof name);
        const char *mine[2] = {rw, rkind == PT_DIR ? outp : NULL};
        char **argv = NULL;
        if (!rw) snprintf(why, sizeof why, "out of memory");
        else if (!rt_podman_hand_over(p, ti, mine, 2, why, sizeof why))
            argv = rt_podman_argv(p, ti, args, text, rw, name, why, sizeof why);
        rc = argv ? rt_cmd_run(argv, &r, why, sizeof why) : -1;
        if (argv && (r.timed_out || rc)) rt_podman_remove(name);
        rt_podman_argv_free(argv);
        free(rw);
    }
    fv_decref(p, p->lambdas[t->cmd].ret, cmdv);
    if (r.rss_kb > c->peak_rss_kb) c->peak_rss_kb = r.rss_kb;
    if (r.pid > 0) c->cmd_cpu_ns += r.cpu_ns, c->cmd_ran = 1;
    int result_is_stdout = rkind == PT_STR || rkind == PT_INT || rkind == PT_FLOAT;
    if (!result_is_stdout && rout.len) rt_ictx_log(c, rout.d, rout.len);
    if (rerr.len) rt_ictx_log(c, rerr.d, rerr.len);
    size_t tn = rerr.len;
    const char *tail = rerr.len ? tail_of(rerr.d, &tn) : "";
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
    } else if (rout.nomem || rerr.nomem) {
        rt_ictx_fail(c, "out of memory");
    } else if (rout.overflow && result_is_stdout) {
        rt_ictx_fail(c, "command output is larger than %u bytes", SH_MAX_STDOUT);
    } else {
        text = rout.d ? rout.d : "";
        size_t n = rout.len;
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
    rt_obuf_free(&rout);
    rt_obuf_free(&rerr);
    return c->failed ? -1 : rc;
}
