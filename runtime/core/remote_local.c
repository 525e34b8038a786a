/*
 * remote_local.c — the local engine (remote.h, rm_engine_local): every element of
 * a batch is a child process of flowrun running `flowrun worker`.
 *
 * DESIGN
 *   It is the engine the protocol's tests run on (tests/suites/61-remote.sh, under
 *   ASan too), reached only through FLOWRUN_REMOTE_ENGINE=local, and a base other
 *   engines may wrap. start() spawns each element with posix_spawn in a process
 *   group of its own (so cancel can kill it and whatever its tasks started), with
 *   FLOW_ELEMENT=E in its environment, stdin from /dev/null and stdout and stderr
 *   to log/<N>.<E>; it also writes log/<N>.<E>.pid ("PID STARTTIME", the start
 *   time from /proc/PID/stat) so that a later driver (flowrun resume) can find the
 *   element again: adopt() reads those files, and poll() then checks such a
 *   process by its pid and start time (it is not our child: no waitpid), where
 *   an element of our own is reaped with waitpid(WNOHANG). One poll looks at
 *   every element the engine knows; cancel kills every group still running.
 *
 *   No element limit of its own: the driver keeps at most about `slots` elements
 *   in flight (remote_driver.c), which is what a real engine's queue would do.
 */
#define _GNU_SOURCE
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct lel {
    pid_t pid;                /* 0: never started */
    unsigned long long start; /* /proc start time (adopted elements) */
    int own;                  /* our child: reaped with waitpid */
    enum rm_state st;
} lel;

typedef struct lbatch {
    char id[32]; /* "local-<N>" */
    uint32_t nelem;
    lel *el;
} lbatch;

typedef struct local_engine {
    rm_engine base;
    lbatch *b;
    uint32_t nb, capb;
} local_engine;

/* The start time of pid (field 22 of /proc/PID/stat), and whether it is a zombie;
 * 0 when there is no such process. */
static unsigned long long proc_start(pid_t pid, int *zombie) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *q = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!q || q[1] != ' ') return 0;
    *zombie = q[2] == 'Z' || q[2] == 'X';
    q += 2; /* field 3: state */
    for (int f = 3; f < 22 && q; f++) {
        q = strchr(q, ' ');
        if (q) q++;
    }
    return q ? strtoull(q, NULL, 10) : 0;
}

static lbatch *add_batch(local_engine *L, uint32_t nelem) {
    if (L->nb == L->capb) {
        uint32_t cap = L->capb ? 2 * L->capb : 16;
        lbatch *n = realloc(L->b, cap * sizeof *n);
        if (!n) return NULL;
        L->b = n;
        L->capb = cap;
    }
    lbatch *b = &L->b[L->nb];
    memset(b, 0, sizeof *b);
    b->el = calloc(nelem ? nelem : 1, sizeof *b->el);
    if (!b->el) return NULL;
    b->nelem = nelem;
    L->nb++;
    return b;
}

static int local_start(rm_engine *e, const rm_start *s, char *id, size_t idcap, char *err,
                       size_t errlen) {
    local_engine *L = (local_engine *)e;
    lbatch *b = add_batch(L, s->nelem);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(b->id, sizeof b->id, "local-%u", s->batch);
    snprintf(id, idcap, "%s", b->id);
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 2, sizeof *envp);
    if (!envp) {
        snprintf(err, errlen, "out of memory");
        L->nb--;
        free(b->el);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "FLOW_ELEMENT=", 13)) envp[k++] = environ[i];
    char elem_var[40];
    envp[k++] = elem_var;
    int rc = 0;
    for (uint32_t el = 0; el < s->nelem && !rc; el++) {
        char log[PATH_MAX];
        snprintf(elem_var, sizeof elem_var, "FLOW_ELEMENT=%u", el);
        snprintf(log, sizeof log, "%s/%u.%u", s->log_dir, s->batch, el);
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        posix_spawnattr_setpgroup(&at, 0);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&at, &none);
        sigset_t def;
        sigemptyset(&def);
        sigaddset(&def, SIGINT);
        sigaddset(&def, SIGTERM);
        sigaddset(&def, SIGPIPE);
        posix_spawnattr_setsigdefault(&at, &def);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF);
        pid_t pid;
        int e2 = posix_spawn(&pid, s->argv[0], &fa, &at, (char *const *)s->argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (e2) {
            snprintf(err, errlen, "cannot start %s: %s", s->argv[0], strerror(e2));
            rc = -1;
            break;
        }
        b->el[el] = (lel){.pid = pid, .own = 1, .st = RM_RUNNING};
        int z = 0;
        b->el[el].start = proc_start(pid, &z);
        /* for a later driver (adopt): which process this element is */
        char pidf[PATH_MAX + 8], line[64];
        snprintf(pidf, sizeof pidf, "%s.pid", log);
        int n = snprintf(line, sizeof line, "%d %llu\n", (int)pid, b->el[el].start);
        char why[256];
        rm_write_file(pidf, line, (size_t)n, why, sizeof why); /* best effort */
    }
    free(envp);
    if (rc) { /* what started of it is cancelled: the batch did not start */
        for (uint32_t el = 0; el < s->nelem; el++)
            if (b->el[el].pid > 0) {
                kill(-b->el[el].pid, SIGKILL);
                waitpid(b->el[el].pid, NULL, 0);
            }
        free(b->el);
        L->nb--;
    }
    return rc;
}

static int local_adopt(rm_engine *e, const rm_start *s, const char *id, char *err, size_t errlen) {
    local_engine *L = (local_engine *)e;
    lbatch *b = add_batch(L, s->nelem);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(b->id, sizeof b->id, "%s", id);
    for (uint32_t el = 0; el < s->nelem; el++) {
        char pidf[PATH_MAX], line[64];
        snprintf(pidf, sizeof pidf, "%s/%u.%u.pid", s->log_dir, s->batch, el);
        b->el[el] = (lel){.st = RM_GONE};
        FILE *f = fopen(pidf, "re");
        if (!f) continue;
        int pid = 0;
        unsigned long long st = 0;
        if (fgets(line, sizeof line, f) && sscanf(line, "%d %llu", &pid, &st) == 2 && pid > 0)
            b->el[el] = (lel){.pid = pid, .start = st, .own = 0, .st = RM_RUNNING};
        fclose(f);
    }
    return 0;
}

static int local_poll(rm_engine *e,
                      void (*report)(void *ud, const char *id, int64_t element, enum rm_state st),
                      void *ud, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    local_engine *L = (local_engine *)e;
    for (uint32_t i = 0; i < L->nb; i++) {
        lbatch *b = &L->b[i];
        for (uint32_t el = 0; el < b->nelem; el++) {
            lel *x = &b->el[el];
            if (x->st == RM_RUNNING) {
                if (x->own) {
                    int status;
                    pid_t r = waitpid(x->pid, &status, WNOHANG);
                    if (r == x->pid || (r < 0 && errno == ECHILD)) x->st = RM_ENDED;
                } else {
                    int z = 0;
                    unsigned long long st = proc_start(x->pid, &z);
                    if (!st || st != x->start || z) x->st = RM_ENDED;
                }
            }
            report(ud, b->id, el, x->st);
        }
    }
    return 0;
}

static void local_cancel(rm_engine *e) {
    local_engine *L = (local_engine *)e;
    for (uint32_t i = 0; i < L->nb; i++)
        for (uint32_t el = 0; el < L->b[i].nelem; el++) {
            lel *x = &L->b[i].el[el];
            if (x->st != RM_RUNNING || x->pid <= 0) continue;
            int z = 0;
            if (!x->own && proc_start(x->pid, &z) != x->start) continue; /* not ours now */
            kill(-x->pid, SIGKILL);
            kill(x->pid, SIGKILL);
            if (x->own) waitpid(x->pid, NULL, 0);
            x->st = RM_ENDED;
        }
}

static double local_start_cost(rm_engine *e) {
    (void)e;
    return 0.02; /* a fork, an exec and the plan opened: about 20 ms here */
}

static void local_destroy(rm_engine *e) {
    local_engine *L = (local_engine *)e;
    for (uint32_t i = 0; i < L->nb; i++)
        free(L->b[i].el);
    free(L->b);
    free(L);
}

static const rm_engine_ops local_ops = {
    .name = "local",
    .start = local_start,
    .poll = local_poll,
    .cancel = local_cancel,
    .start_cost = local_start_cost,
    .max_array = 0,
    .max_jobs = 0,
    .destroy = local_destroy,
    .adopt = local_adopt,
};

rm_engine *rm_engine_local(uint32_t slots, char *err, size_t errlen) {
    local_engine *L = calloc(1, sizeof *L);
    if (!L) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    L->base.ops = &local_ops;
    L->base.slots = slots ? slots : 1;
    return &L->base;
}
