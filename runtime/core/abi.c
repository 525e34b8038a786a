/*
 * abi.c — the functions a task calls from inside (flow.h), and the
 * per-instance context they work through.
 *
 * DESIGN
 *   rt_call_task makes an rt_ictx the calling thread's current instance (one
 *   thread-local pointer: the C ABI has no other way to reach it) for the
 *   duration of the call. flow_fail only records its message and returns; the
 *   task returns normally and the runtime, seeing `failed`, ignores the return
 *   value — nothing ever longjmps through user frames. flow_alloc memory comes
 *   from a chunked bump arena that rt_ictx_leave frees after the result has
 *   been copied into run-time values, so a task that allocates nothing costs
 *   nothing here.
 *
 *   Called outside a task, every function sends one clear line to the log of
 *   the context the program registered with rt_abi_stray_ctx (none: dropped)
 *   and returns something safe (heap memory the caller may keep, -1, NULL paths).
 *
 *   Out of memory never ends the process: arena memory comes from the plan's
 *   context, and a failed allocation fails the instance ("out of memory") and
 *   returns NULL (flow_alloc's documented failure). A log line that cannot be
 *   kept is dropped; a failure message that cannot be kept leaves the result with
 *   no error text, which exec.h reads as out of memory (the run ends). The
 *   result's strings come from the plan's context too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rtcore.h"
#include "secrets.h"
#include "walk.h"

/* Default size of an arena chunk; larger requests get a chunk of their own. */
#define RT_CHUNK_BYTES 4096
/* Largest instance log kept; later lines are dropped with a note. */
#define RT_MAX_LOG (4u << 20)
/* Longest single flow_fail / flow_log message kept. */
#define RT_MAX_MSG 4096

struct rt_given {
    rt_given *next;   /* handed out before this one */
    const char *path; /* the path (arena memory) */
};

struct rt_chunk {
    rt_chunk *next;     /* older chunk */
    size_t used;        /* bytes handed out */
    size_t cap;         /* bytes in data */
    max_align_t data[]; /* the memory */
};

static __thread rt_ictx *cur_ictx; /* the instance this thread is running, or NULL */

/* getpid() is a system call; results carry the pid of every instance, so it is
 * cached, and refreshed in a forked child (process identity is per process). */
static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_refresh(void) {
    cached_pid = getpid();
}
static void pid_init(void) {
    pid_refresh();
    pthread_atfork(NULL, NULL, pid_refresh);
}
int rt_pid(void) {
    pthread_once(&pid_once, pid_init);
    return cached_pid;
}

/* Where the lines of calls made outside a task go (rt_abi_stray_ctx). */
static fl_ctx *_Atomic stray_ctx;

void rt_abi_stray_ctx(fl_ctx *c) {
    stray_ctx = c;
}

static void stray(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void stray(const char *fmt, ...) {
    fl_ctx *c = stray_ctx;
    if (!c) return;
    va_list ap;
    va_start(ap, fmt);
    fl_vlog(c, FL_LOG_ERROR, fmt, ap);
    va_end(ap);
}

static fl_ctx *ictx_ctx(const rt_ictx *c) {
    return c->rt->plan->ctx;
}

double rt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rt_ictx_enter(rt_ictx *c, rt_runtime *rt, const rt_job *job) {
    memset(c, 0, sizeof *c);
    c->rt = rt;
    c->job = job;
    c->prev = cur_ictx;
    cur_ictx = c;
}

void rt_ictx_leave(rt_ictx *c) {
    for (rt_chunk *k = c->arena, *next; k; k = next) {
        next = k->next;
        fl_free(ictx_ctx(c), k);
    }
    c->arena = NULL;
    c->given = NULL; /* it lived in the arena */
    if (c->own_scratch_dir) {
        walk_remove_path(c->own_scratch_dir);
        free(c->own_scratch_dir);
        c->own_scratch_dir = NULL;
    }
    free(c->own_out_dir); /* the directory stays: results may live in it */
    c->own_out_dir = NULL;
    cur_ictx = c->prev;
}

rt_ictx *rt_ictx_current(void) {
    return cur_ictx;
}

void *rt_arena_alloc(rt_ictx *c, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    rt_chunk *k = c->arena;
    if (!k || k->cap - k->used < n) {
        size_t cap = n > RT_CHUNK_BYTES / 2 ? n : RT_CHUNK_BYTES;
        rt_chunk *nk = fl_malloc(ictx_ctx(c), sizeof *nk + cap);
        if (!nk) {
            rt_ictx_fail(c, "out of memory");
            return NULL;
        }
        nk->used = 0;
        nk->cap = cap;
        if (k && cap == n && k->cap - k->used >= 16) {
            /* a big one-off: keep filling the current chunk afterwards */
            nk->next = k->next;
            k->next = nk;
            nk->used = n;
            return nk->data;
        }
        nk->next = k;
        c->arena = k = nk;
    }
    void *q = (char *)k->data + k->used;
    k->used += n;
    return q;
}

static void fail_v(rt_ictx *c, const char *fmt, va_list ap) {
    if (c->failed) return; /* the first failure is the cause */
    c->failed = 1;
    char *m = fl_malloc(ictx_ctx(c), RT_MAX_MSG); /* the result's (exec.h) */
    if (!m) return; /* failed without a message: out of memory (exec.h) */
    vsnprintf(m, RT_MAX_MSG, fmt ? fmt : "(no message)", ap);
    c->fail_msg = m;
}

void rt_ictx_fail(rt_ictx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, fmt, ap);
    va_end(ap);
}

void rt_ictx_log(rt_ictx *c, const char *text, size_t n) {
    static const char dropped[] = "[flow: log truncated]\n";
    if (c->log_len >= RT_MAX_LOG) return;
    bool nl = n && text[n - 1] == '\n';
    size_t need = c->log_len + n + 1 + sizeof dropped + 1;
    if (need > c->log_cap) {
        size_t cap = c->log_cap ? c->log_cap : 256;
        while (cap < need)
            cap *= 2;
        char *q = fl_realloc(ictx_ctx(c), c->log, cap); /* the result's (exec.h) */
        if (!q) return; /* the line is lost, not the run */
        c->log = q;
        c->log_cap = cap;
    }
    memcpy(c->log + c->log_len, text, n);
    c->log_len += n;
    if (!nl) c->log[c->log_len++] = '\n';
    if (c->log_len >= RT_MAX_LOG) {
        memcpy(c->log + c->log_len, dropped, sizeof dropped - 1);
        c->log_len += sizeof dropped - 1;
    }
    c->log[c->log_len] = 0;
}

/* A new temporary directory (malloc'ed path) or NULL. */
static char *make_tmp_dir(const char *what) {
    const char *tmp = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/flow-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what) < 0) return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

/* A path handed out before in this instance (even if not created yet), or existing. */
static bool path_taken(const rt_ictx *c, const char *path) {
    struct stat st;
    for (const rt_given *g = c->given; g; g = g->next)
        if (!strcmp(g->path, path)) return true;
    return lstat(path, &st) == 0;
}

const char *rt_ictx_out_path(rt_ictx *c, const char *name) {
    const char *dir = c->job ? c->job->out_dir : NULL;
    if (!dir) {
        if (!c->own_out_dir && !(c->own_out_dir = make_tmp_dir("out"))) {
            rt_ictx_fail(c, "cannot create an output directory: %s", strerror(errno));
            return NULL;
        }
        dir = c->own_out_dir;
    }
    if (!name || !*name) name = "out";
    const char *base = strrchr(name, '/'); /* stay inside the output directory */
    if (base) name = base[1] ? base + 1 : "out";
    if (!strcmp(name, ".") || !strcmp(name, "..")) name = "out";
    size_t n = strlen(dir) + strlen(name) + 24;
    char *path = rt_arena_alloc(c, n);
    if (!path) return NULL;
    snprintf(path, n, "%s/%s", dir, name);
    while (path_taken(c, path))
        snprintf(path, n, "%s/%u-%s", dir, ++c->out_seq, name);
    rt_given *g = rt_arena_alloc(c, sizeof *g);
    if (!g) return NULL;
    g->path = path;
    g->next = c->given;
    c->given = g;
    return path;
}

/* ---- flow.h ---- */

static rt_ictx *need_ctx(const char *fn) {
    rt_ictx *c = cur_ictx;
    if (!c) stray("%s() called outside a running task", fn);
    return c;
}

void flow_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rt_ictx *c = need_ctx("flow_fail");
    if (c) {
        fail_v(c, fmt, ap);
    } else {
        char m[RT_MAX_MSG];
        vsnprintf(m, sizeof m, fmt ? fmt : "(no message)", ap);
        stray("failure: %s", m);
    }
    va_end(ap);
}

void flow_log(const char *fmt, ...) {
    char buf[RT_MAX_MSG];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt ? vsnprintf(buf, sizeof buf, fmt, ap) : 0;
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    rt_ictx *c = cur_ictx;
    if (c) {
        rt_ictx_log(c, buf, (size_t)n);
    } else {
        stray("log (outside a task): %s", buf);
    }
}

void *flow_alloc(size_t n) {
    rt_ictx *c = need_ctx("flow_alloc");
    if (!c) {
        return calloc(1, n ? n : 1); /* the caller's (no instance to free it with); NULL: none */
    }
    return rt_arena_alloc(c, n);
}

char *flow_strdup(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *q = flow_alloc(n);
    if (q) memcpy(q, s, n);
    return q;
}

flow_list flow_list_new(int64_t len, size_t item_size) {
    flow_list l = {0, NULL};
    if (len <= 0) return l;
    if (item_size && (uint64_t)len > SIZE_MAX / 2 / item_size) {
        flow_fail("flow_list_new: %lld items of %zu bytes is too large", (long long)len, item_size);
        return l;
    }
    size_t n = (size_t)len * item_size;
    l.items = flow_alloc(n);
    if (!l.items) return l;
    memset(l.items, 0, n);
    l.len = len;
    return l;
}

const char *flow_out_path(const char *name) {
    rt_ictx *c = need_ctx("flow_out_path");
    return c ? rt_ictx_out_path(c, name) : NULL;
}

const char *flow_scratch_dir(void) {
    rt_ictx *c = need_ctx("flow_scratch_dir");
    if (!c) return NULL;
    if (c->job && c->job->scratch_dir) return c->job->scratch_dir;
    if (!c->own_scratch_dir && !(c->own_scratch_dir = make_tmp_dir("scratch"))) {
        rt_ictx_fail(c, "cannot create a scratch directory: %s", strerror(errno));
        return NULL;
    }
    return c->own_scratch_dir;
}

/* The secret's file exists only in the fresh worker the process executor starts for a
 * job of a task that declares it (secrets.c), which also sets FLOW_SECRET_<NAME>; so a
 * name the task does not declare, or a task running anywhere else, gets NULL. */
const char *flow_secret(const char *name) {
    rt_ictx *c = need_ctx("flow_secret");
    if (!c || !c->job || !name || plan_secret_name_bad(name) ||
        !plan_task_has_secret(c->rt->plan, c->job->task, name))
        return NULL;
    char var[100];
    fsec_env_name(name, var, sizeof var);
    return getenv(var);
}

int64_t flow_map_index(void) {
    rt_ictx *c = cur_ictx;
    return c && c->job ? c->job->map_index : -1;
}

const char *flow_env_root(void) {
    rt_ictx *c = cur_ictx;
    return c && c->rt ? c->rt->env_root : NULL;
}
