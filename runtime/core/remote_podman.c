/*
 * remote_podman.c — the podman engine (remote.h, rm_engine_podman): each element
 * of a batch is one container of the image running `flowrun worker`.
 *
 * DESIGN
 *   The C tasks of an `image:` task run inside the image through the generic
 *   driver (remote_driver.c): it packs their jobs into batches and asks this
 *   engine to start the elements. start() runs, per element E of batch N,
 *
 *     podman run -d --pull=never --name flow-TAG-RUN-N-E --label flow-run=RUN
 *         --label flow-state=TAG --label flow-dir=STATE
 *         --env FLOW_ELEMENT=E [--network=none] [--user U:G] [limits]
 *         --log-driver=k8s-file --log-opt=path=LOGDIR/N.E
 *         -v STATE:STATE:rw -v STORE:STORE:ro -v DIR:DIR:ro ...
 *         IMAGE flowrun worker ...
 *
 *   The state directory is bind-mounted at the same path (workers write their
 *   result files there, remote.h), the store read-only on top of it (a task
 *   cannot write a stored object), and the plan's folder, the configuration's
 *   and the working directory read-only (the plan, its libraries, input paths
 *   under it; podman orders mounts by depth, so the state directory inside it
 *   stays writable and the store inside that read-only). The worker command's argv[0] becomes its base name: flowrun
 *   is on the image's PATH (make image puts it in /usr/bin).
 *
 *   TAG is a hash of the state directory's path: run ids are numbered per state
 *   directory, so two flowruns on one machine may both run a run 1; the tag keeps
 *   their containers (names, polls, cancels) apart, and stays the same for a
 *   later `flowrun resume` of the same state.
 *
 *   poll() is ONE `podman ps -a --filter label=flow-run=RUN --filter
 *   label=flow-state=TAG` for the whole run,
 *   whatever the number of elements: each line gives a container's name (so
 *   its batch and element), whether it exited (ended) and when it started (not
 *   yet: pending; else running). (The template's fields, not its `.State`,
 *   which podman 4.3 prints as prose: "Up 2 seconds ago".) An element this engine started that the listing lacks is
 *   GONE (removed behind our back); the driver fails its jobs after its grace
 *   period. cancel() is `podman rm -f` of every container of the run (the same
 *   two filters), also what destroy() does: finished
 *   containers are kept until then so that poll sees them ended.
 *
 *   start_cost is measured: the mean wall time of this engine's `podman run -d`
 *   calls (before the first, 0.3 s, what one costs here).
 *
 *   Ownership: the engine owns copies of its options' strings and of the list
 *   of elements it started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "podman.h"
#include "remote.h"
#include "remote_podman.h"

extern char **environ;

#define PM_MAX_ARGS 256

typedef struct pm_batch {
    uint32_t batch;   /* N */
    uint32_t nelem;   /* elements started */
    uint8_t *seen;    /* per element: in the last listing */
} pm_batch;

typedef struct pm_engine {
    rm_engine base;
    char *image, *state, *store, *user;
    char tag[9];      /* rm_state_tag: this state directory's containers */
    char **ro;        /* NULL-terminated */
    int network;
    int64_t memory;
    uint32_t cpus, max_procs;
    int64_t run;      /* the run whose containers this engine started (-1: none yet) */
    pm_batch *b;
    uint32_t nb, capb;
    double start_sum; /* seconds spent in `podman run -d` */
    uint32_t nstarted;
} pm_engine;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pm_cancel(rm_engine *e) {
    pm_engine *pe = (pm_engine *)e;
    if (pe->run < 0) return;
    char filt[64], filt2[64], err[300];
    snprintf(filt, sizeof filt, "label=flow-run=%lld", (long long)pe->run);
    snprintf(filt2, sizeof filt2, "label=flow-state=%s", pe->tag);
    char *argv[] = {"podman", "rm", "-f", "-t", "0", "--filter", filt, "--filter", filt2, NULL};
    rt_podman_run(argv, NULL, err, sizeof err);
}

static int pm_start(rm_engine *e, const rm_start *s, char *id, size_t idcap, char *err,
                    size_t errlen) {
    pm_engine *pe = (pm_engine *)e;
    if (pe->run >= 0 && pe->run != s->run) {
        snprintf(err, errlen, "podman engine: one run per engine (%lld, then %lld)",
                 (long long)pe->run, (long long)s->run);
        return -1;
    }
    pe->run = s->run;
    if (pe->nb == pe->capb) {
        uint32_t cap = pe->capb ? 2 * pe->capb : 16;
        pm_batch *q = realloc(pe->b, cap * sizeof *q);
        if (!q) goto nomem;
        pe->b = q;
        pe->capb = cap;
    }
    pm_batch *b = &pe->b[pe->nb];
    *b = (pm_batch){s->batch, 0, calloc(s->nelem ? s->nelem : 1, 1)};
    if (!b->seen) goto nomem;
    pe->nb++;
    snprintf(id, idcap, "flow-%s-%lld-%u", pe->tag, (long long)s->run, s->batch);

    /* the fixed part of every element's command */
    char *a[PM_MAX_ARGS];
    char sbuf[PM_MAX_ARGS][600];
    int n = 0, si = 0;
#define ARG(...)                                                                                   \
    do {                                                                                           \
        if (n >= PM_MAX_ARGS - 2 || si >= PM_MAX_ARGS) goto toolong;                               \
        if ((size_t)snprintf(sbuf[si], sizeof sbuf[si], __VA_ARGS__) >= sizeof sbuf[si])          \
            goto toolong;                                                                          \
        a[n++] = sbuf[si++];                                                                       \
    } while (0)
    ARG("podman");
    ARG("run");
    ARG("-d");
    ARG("--pull=never");
    int name_at = n;
    ARG("--name=");
    ARG("--label=flow-run=%lld", (long long)s->run);
    ARG("--label=flow-state=%s", pe->tag);
    ARG("--label=flow-dir=%s", pe->state); /* for people: which state directory's */
    int elem_at = n;
    ARG("--env=FLOW_ELEMENT=");
    ARG("--env=FLOW_IN_CONTAINER=1"); /* the worker runs its sh tasks in here (cli_worker.c) */
    ARG("--log-driver=k8s-file");
    int log_at = n;
    ARG("--log-opt=path=");
    if (!pe->network) ARG("--network=none");
    if (pe->user) ARG("--user=%s", pe->user);
    int64_t mem = s->memory > pe->memory ? s->memory : pe->memory;
    uint32_t cpus = s->cpus > pe->cpus ? s->cpus : pe->cpus;
    if (mem) ARG("--memory=%lld", (long long)mem);
    if (cpus) ARG("--cpus=%u", cpus);
    if (pe->max_procs) ARG("--pids-limit=%u", pe->max_procs);
    ARG("-v");
    ARG("%s:%s:rw", pe->state, pe->state);
    if (pe->store) {
        ARG("-v");
        ARG("%s:%s:ro", pe->store, pe->store);
    }
    for (char **r = pe->ro; r && *r; r++) {
        ARG("-v");
        ARG("%s:%s:ro", *r, *r);
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") && !strpbrk(cwd, ":,")) {
        ARG("-v"); /* relative input paths mean what they do on the host */
        ARG("%s:%s:ro", cwd, cwd);
        ARG("--workdir=%s", cwd);
    }
    ARG("%s", pe->image);
    const char *prog = strrchr(s->argv[0], '/');
    ARG("%s", prog ? prog + 1 : s->argv[0]);
    for (int k = 1; s->argv[k]; k++) {
        if (n >= PM_MAX_ARGS - 1) goto toolong;
        a[n++] = (char *)s->argv[k]; /* borrowed: no copy needed */
    }
    a[n] = NULL;
#undef ARG
    for (uint32_t el = 0; el < s->nelem; el++) {
        char name[128], env[64], log[4200];
        snprintf(name, sizeof name, "--name=%s-%u", id, el);
        snprintf(env, sizeof env, "--env=FLOW_ELEMENT=%u", el);
        snprintf(log, sizeof log, "--log-opt=path=%s/%u.%u", s->log_dir, s->batch, el);
        a[name_at] = name;
        a[elem_at] = env;
        a[log_at] = log;
        double t0 = now_s();
        int rc = rt_podman_run(a, NULL, err, errlen);
        pe->start_sum += now_s() - t0;
        pe->nstarted++;
        if (rc != 0) return -1; /* the elements started so far are reported by poll */
        b->nelem = el + 1;
    }
    return 0;
toolong:
    snprintf(err, errlen, "podman engine: the container's command is too long");
    return -1;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static pm_batch *find_batch(pm_engine *pe, uint32_t n) {
    for (uint32_t i = 0; i < pe->nb; i++)
        if (pe->b[i].batch == n) return &pe->b[i];
    return NULL;
}

static int pm_poll(rm_engine *e,
                   void (*report)(void *ud, const char *id, int64_t element, enum rm_state st),
                   void *ud, char *err, size_t errlen) {
    pm_engine *pe = (pm_engine *)e;
    if (pe->run < 0 || !pe->nb) return 0;
    char filt[64], filt2[64];
    snprintf(filt, sizeof filt, "label=flow-run=%lld", (long long)pe->run);
    snprintf(filt2, sizeof filt2, "label=flow-state=%s", pe->tag);
    char *argv[] = {"podman", "ps", "-a", "--filter", filt, "--filter", filt2, "--format",
                    "{{.Names}} {{.Exited}} {{.StartedAt}}", NULL};
    char *out = NULL;
    if (rt_podman_run(argv, &out, err, errlen) != 0) {
        free(out);
        return -1;
    }
    for (uint32_t i = 0; i < pe->nb; i++)
        memset(pe->b[i].seen, 0, pe->b[i].nelem ? pe->b[i].nelem : 1);
    char prefix[64];
    int plen = snprintf(prefix, sizeof prefix, "flow-%s-%lld-", pe->tag, (long long)pe->run);
    for (char *line = out, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char name[200], exited[16];
        long long started;
        unsigned bn, el;
        if (sscanf(line, "%199s %15s %lld", name, exited, &started) != 3 ||
            strncmp(name, prefix, (size_t)plen) || sscanf(name + plen, "%u-%u", &bn, &el) != 2)
            continue;
        pm_batch *b = find_batch(pe, bn);
        if (!b || el >= b->nelem) continue;
        b->seen[el] = 1;
        enum rm_state st = !strcmp(exited, "true") ? RM_ENDED
                           : started > 0          ? RM_RUNNING
                                                  : RM_PENDING; /* created, not started */
        char id[64];
        snprintf(id, sizeof id, "flow-%s-%lld-%u", pe->tag, (long long)pe->run, bn);
        report(ud, id, el, st);
    }
    free(out);
    for (uint32_t i = 0; i < pe->nb; i++)
        for (uint32_t el = 0; el < pe->b[i].nelem; el++)
            if (!pe->b[i].seen[el]) {
                char id[64];
                snprintf(id, sizeof id, "flow-%s-%lld-%u", pe->tag, (long long)pe->run,
                         pe->b[i].batch);
                report(ud, id, el, RM_GONE);
            }
    return 0;
}

static double pm_start_cost(rm_engine *e) {
    pm_engine *pe = (pm_engine *)e;
    return pe->nstarted ? pe->start_sum / pe->nstarted : 0.3;
}

static void pm_destroy(rm_engine *e) {
    pm_engine *pe = (pm_engine *)e;
    pm_cancel(e);
    for (uint32_t i = 0; i < pe->nb; i++)
        free(pe->b[i].seen);
    free(pe->b);
    for (char **r = pe->ro; r && *r; r++)
        free(*r);
    free(pe->ro);
    free(pe->image);
    free(pe->state);
    free(pe->store);
    free(pe->user);
    free(pe);
}

static const rm_engine_ops pm_ops = {
    .name = "podman",
    .start = pm_start,
    .poll = pm_poll,
    .cancel = pm_cancel,
    .start_cost = pm_start_cost,
    .max_array = 0,
    .max_jobs = 0,
    .destroy = pm_destroy,
};

static char *dup_or_null(const char *s, int *bad) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *bad = 1;
    return d;
}

rm_engine *rm_engine_podman(const rm_podman_options *o, char *err, size_t errlen) {
    if (!o->image || !o->state_dir || o->state_dir[0] != '/') {
        snprintf(err, errlen, "podman engine: an image and an absolute state directory are needed");
        return NULL;
    }
    const char *paths[3] = {o->state_dir, o->store_dir, NULL};
    for (int i = 0; i < 2; i++)
        if (paths[i] && strpbrk(paths[i], ":,")) {
            snprintf(err, errlen, "podman engine: cannot mount %s (it holds ':' or ',')",
                     paths[i]);
            return NULL;
        }
    char *vargv[] = {"podman", "version", "--format", "{{.Client.Version}}", NULL};
    char *ver = NULL;
    if (rt_podman_run(vargv, &ver, err, errlen) != 0) {
        free(ver);
        return NULL;
    }
    free(ver);
    pm_engine *pe = calloc(1, sizeof *pe);
    if (!pe) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int bad = 0, nro = 0;
    while (o->ro && o->ro[nro])
        nro++;
    pe->ro = calloc((size_t)nro + 1, sizeof *pe->ro);
    bad |= !pe->ro;
    for (int i = 0, k = 0; pe->ro && i < nro; i++)
        if (!strpbrk(o->ro[i], ":,")) /* else not mountable: left out */
            pe->ro[k++] = dup_or_null(o->ro[i], &bad);
    pe->image = dup_or_null(o->image, &bad);
    pe->state = dup_or_null(o->state_dir, &bad);
    pe->store = dup_or_null(o->store_dir, &bad);
    pe->user = dup_or_null(o->user, &bad);
    pe->network = o->network;
    pe->memory = o->memory;
    pe->cpus = o->cpus;
    pe->max_procs = o->max_procs;
    pe->run = -1;
    rm_state_tag(o->state_dir, NULL, pe->tag);
    pe->base.ops = &pm_ops;
    pe->base.slots = o->slots ? o->slots : 1;
    if (bad) {
        pm_destroy(&pe->base);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return &pe->base;
}
