/*
 * podman.c — running an `sh` task with `image:` in a container (docs/distributed.md,
 * "Containers: `image:` under podman").
 *
 * DESIGN
 *   flowrun talks to podman only through its command line (rt_cmd_run of
 *   `podman`, found on PATH; no socket, no service): podman as root with the
 *   runtime its containers.conf names (runc where cgroups are v1). Per job,
 *   sh.c runs, instead of `/bin/sh -c CMD`,
 *
 *     podman run --rm --pull=never --name flow-PID-N --label flow-sh=RUNTAG
 *                [--network=none] --user UID:GID [--memory B] [--cpus N]
 *                [--pids-limit N] -v IN:IN:ro ... -v OUT:OUT:rw
 *                [-v SECRET:SECRET:ro --env FLOW_SECRET_X=SECRET ...]
 *                IMAGE /bin/sh -c CMD
 *
 *   so the command sees the same paths it would on the host (the same working
 *   directory too, --workdir, when anything mounted is under it: relative paths
 *   mean the same), but only these:
 *   every path/dir argument (also inside lists) read-only, the folder its
 *   `{out}` is in read-write, and its secrets' files read-only (the fresh
 *   worker of a task with secrets has them in a private tmpfs and FLOW_SECRET_*
 *   naming them, secrets.c). The store is not mounted at all. The network is
 *   none unless the task says `network: true` (podman's default network then).
 *   The user is the task's run_as, else flowrun's own; the folders it writes are
 *   handed over to it first (rt_podman_hand_over), as the process executor does
 *   for a run_as job on the host. memory:, cpus: and
 *   max_procs: become podman's limits.
 *
 *   A timeout kills the podman client's process group (sh.c) and then removes
 *   the container by its name (`podman rm -f -t 0`): the container's processes
 *   are not children of the client, so killing it alone would leave them. For
 *   the same reason, when the pool that runs these clients ends (the end of the
 *   run, Ctrl-C: its workers are killed), every container labelled with the
 *   run's tag (RT_PODMAN_TAG_ENV, set by exec_split.c before the pool's workers
 *   are forked) is removed: rt_podman_remove_tagged.
 *
 *   Ownership: argv arrays are malloc'ed (rt_podman_argv_free).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "podman.h"
#include "spawn.h"

extern char **environ;

typedef struct argv_b {
    char **v;
    int n, cap;
    int nomem;
} argv_b;

static void add(argv_b *a, const char *s) {
    if (a->nomem) return;
    if (a->n + 2 > a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        char **q = realloc(a->v, (size_t)cap * sizeof *q);
        if (!q) {
            a->nomem = 1;
            return;
        }
        a->v = q;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) {
        a->nomem = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

static void addf(argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(argv_b *a, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        a->nomem = 1; /* a path longer than that cannot be mounted anyway */
        return;
    }
    add(a, buf);
}

void rt_podman_argv_free(char **argv) {
    for (int i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* A bind mount of `path` at the same place (a relative one under the working
 * directory, which the container shares: --workdir), or nothing when it names
 * nothing that exists (a path argument may name a file yet to be made by the
 * command: then there is nothing to show). A path with ',' or ':' cannot be
 * written in -v: refused. mode: "ro" or "rw". */
static int mount_at(argv_b *a, const char *path, const char *mode, char *why, size_t whylen) {
    struct stat st;
    char cwd[4096];
    if (stat(path, &st) != 0) return 0;
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) {
        snprintf(why, whylen, "cannot mount %s into the container: getcwd: %s", path,
                 strerror(errno));
        return -1;
    }
    if (strpbrk(path, ":,") || (path[0] != '/' && strpbrk(cwd, ":,"))) {
        snprintf(why, whylen, "cannot mount %s into the container: it holds ':' or ','", path);
        return -1;
    }
    add(a, "-v");
    if (path[0] == '/') addf(a, "%s:%s:%s", path, path, mode);
    else addf(a, "%s/%s:%s/%s:%s", cwd, path, cwd, path, mode);
    return 0;
}

static int mount_ro(argv_b *a, const char *path, char *why, size_t whylen) {
    return mount_at(a, path, "ro", why, whylen);
}

/* Mount every path/dir in value v of type ty (lists and records walked). */
static int mount_inputs(const fl_plan *p, uint32_t ty, fl_val v, argv_b *a, int depth, char *why,
                        size_t whylen) {
    const plan_type *T = &p->types[ty];
    if (depth > 32) return 0;
    switch (T->kind) {
        case PT_PATH:
        case PT_DIR:
            return mount_ro(a, fv_as_str(v)->data, why, whylen);
        case PT_LIST: {
            const fv_list *l = fv_as_list(v);
            for (int64_t i = 0; i < l->len; i++)
                if (mount_inputs(p, T->elem, l->items[i], a, depth + 1, why, whylen)) return -1;
            return 0;
        }
        case PT_RECORD: {
            const fv_rec *r = fv_as_rec(v);
            for (uint32_t i = 0; i < T->n; i++)
                if (mount_inputs(p, p->fields[T->first + i].type, r->fields[i], a, depth + 1, why,
                                 whylen))
                    return -1;
            return 0;
        }
        default:
            return 0;
    }
}

char **rt_podman_argv(const fl_plan *p, uint32_t ti, const fl_val *args, const char *cmd,
                      const char *rw_dir, const char *name, char *why, size_t whylen) {
    const plan_task *t = &p->tasks[ti];
    const plan_container *co = plan_task_container(p, ti);
    argv_b a = {0};
    add(&a, "podman");
    add(&a, "run");
    add(&a, "--rm");
    add(&a, "--pull=never"); /* refuse.c checked it is there: never a pull mid-run */
    addf(&a, "--name=%s", name);
    const char *tag = getenv(RT_PODMAN_TAG_ENV);
    addf(&a, "--label=flow-sh=%s", tag && *tag ? tag : "none");
    if (!co || !co->network) add(&a, "--network=none");
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (t->run_as != PLAN_NONE) {
        struct passwd *pw = getpwnam(plan_str(p, t->run_as));
        if (!pw) {
            snprintf(why, whylen, "run_as: no such user '%s'", plan_str(p, t->run_as));
            rt_podman_argv_free(a.v);
            return NULL;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    addf(&a, "--user=%ld:%ld", (long)uid, (long)gid);
    if (t->memory) addf(&a, "--memory=%lld", (long long)t->memory);
    if (co && co->cpus) addf(&a, "--cpus=%u", co->cpus);
    if (t->max_procs) addf(&a, "--pids-limit=%u", t->max_procs);
    for (uint32_t i = 0; i < t->nparams; i++)
        if (mount_inputs(p, p->params[t->first_param + i].type, args[i], &a, 0, why, whylen)) {
            rt_podman_argv_free(a.v);
            return NULL;
        }
    if (mount_at(&a, rw_dir, "rw", why, whylen)) {
        rt_podman_argv_free(a.v);
        return NULL;
    }
    /* the same working directory, when something mounted lies under it (runc makes
     * the folders on the way; podman refuses a --workdir that does not exist) */
    char cwd[4096];
    size_t cl = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
    for (int i = 0; cl > 1 && i < a.n; i++)
        if (!strncmp(a.v[i], cwd, cl) && a.v[i][cl] == '/') {
            addf(&a, "--workdir=%s", cwd);
            break;
        }
    /* secrets: the fresh worker of such a task has them as files named by FLOW_SECRET_* */
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "FLOW_SECRET_", 12)) continue;
        const char *eq = strchr(*e, '=');
        if (!eq || mount_ro(&a, eq + 1, why, whylen)) continue;
        addf(&a, "--env=%s", *e);
    }
    add(&a, plan_str(p, t->image));
    add(&a, "/bin/sh");
    add(&a, "-c");
    add(&a, cmd);
    if (a.nomem) {
        snprintf(why, whylen, "out of memory (or a path too long) building the podman command");
        rt_podman_argv_free(a.v);
        return NULL;
    }
    return a.v;
}

#define PODMAN_OUT_MAX (64u << 20) /* most bytes of a podman command's output read */

int rt_podman_run(char *const *argv, char **out, char *err, size_t errlen) {
    rt_obuf o = {.limit = PODMAN_OUT_MAX}, e = {.limit = 1023};
    rt_cmd c = {.out = out ? &o : NULL, .err = &e};
    if (rt_cmd_run(argv, &c, err, errlen)) {
        rt_obuf_free(&o);
        rt_obuf_free(&e);
        return -1;
    }
    char *nl = e.d ? strchr(e.d, '\n') : NULL; /* the first line says what was wrong */
    if (nl) *nl = 0;
    int code = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1;
    if (code != 0) snprintf(err, errlen, "%s: %s", argv[0], e.d && *e.d ? e.d : "failed");
    rt_obuf_free(&e);
    if (out) {
        if (!o.d) rt_obuf_add(&o, "", 0);
        if (!o.d) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *out = o.d;
    }
    return code;
}

int rt_podman_hand_over(const fl_plan *p, uint32_t ti, const char *const *dirs, int n, char *why,
                        size_t whylen) {
    const plan_task *t = &p->tasks[ti];
    if (t->run_as == PLAN_NONE || geteuid() != 0) return 0;
    struct passwd *pw = getpwnam(plan_str(p, t->run_as));
    if (!pw) {
        snprintf(why, whylen, "run_as: no such user '%s'", plan_str(p, t->run_as));
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (dirs[i] && chown(dirs[i], pw->pw_uid, pw->pw_gid)) {
            snprintf(why, whylen, "run_as %s: cannot hand over %.200s: %s", pw->pw_name, dirs[i],
                     strerror(errno));
            return -1;
        }
    return 0;
}

void rt_podman_remove_tagged(const char *tag) {
    char filt[128], err[300];
    snprintf(filt, sizeof filt, "label=flow-sh=%s", tag);
    char *argv[] = {"podman", "rm", "-f", "-t", "0", "--filter", filt, NULL};
    rt_podman_run(argv, NULL, err, sizeof err);
}

void rt_podman_remove(const char *name) {
    char *argv[] = {"podman", "rm", "-f", "-t", "0", (char *)name, NULL}, err[300];
    rt_podman_run(argv, NULL, err, sizeof err);
}

int rt_podman_check(char *why, size_t whylen) {
    char *argv[] = {"podman", "version", "--format", "{{.Client.Version}}", NULL}, *ver = NULL;
    char err[300];
    int rc = rt_podman_run(argv, &ver, err, sizeof err);
    free(ver);
    if (rc < 0) snprintf(why, whylen, "podman is not on PATH");
    else if (rc != 0) snprintf(why, whylen, "`podman version` failed (%s)", err);
    return rc ? -1 : 0;
}

int rt_podman_image_id(const char *image, char *id, size_t idcap, char *why, size_t whylen) {
    if (!image[0] || image[0] == '-') { /* it would be read as an option of podman's */
        snprintf(why, whylen, "\"%s\" is not an image name", image);
        return -1;
    }
    char *argv[] = {"podman", "image", "inspect", "--format", "{{.Id}}", (char *)image, NULL};
    char *out = NULL, err[300];
    int rc = rt_podman_run(argv, &out, err, sizeof err);
    size_t n = out ? strcspn(out, "\n") : 0;
    snprintf(id, idcap, "%.*s", (int)n, out ? out : "");
    free(out);
    if (rc != 0 || !id[0]) {
        snprintf(why, whylen,
                 rc < 0 ? "podman is not on PATH"
                        : "image \"%s\" is not in podman's local storage (podman image inspect "
                          "failed; build or pull it first)",
                 image);
        return -1;
    }
    return 0;
}

void rt_podman_name(char *buf, size_t cap) {
    static unsigned seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, cap, "flow-%ld-%lld%09ld-%u", (long)getpid(), (long long)ts.tv_sec,
             (long)ts.tv_nsec, ++seq);
}
