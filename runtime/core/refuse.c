/*
 * refuse.c — what a plan or a command line declares that this build cannot do
 * is refused before anything runs, never silently ignored.
 *
 * One function, rt_refuse_undone, called by `flowrun run` / `flowrun resume`
 * (cli_run.c) and by the embedding API (embed.c) once the flow is chosen and
 * before any history record, instance or task exists. It walks the tasks the
 * chosen flow can reach (its own nodes, the groups it calls, recursively, and
 * the halves of every combined task) — a task that only another flow calls,
 * or that no flow calls, is not this run's business and is not looked at —
 * and refuses, with one line naming the task and the option:
 *
 *   - `image:` under the inline executor (it runs tasks inside flowrun, never in
 *     a container), on a combined task or its halves, on C tasks of one run that
 *     differ in image, network or run_as (one podman engine runs them all:
 *     remote_podman.c), and
 *     anywhere but under kubernetes (its pods run one configured image: cli_run.c
 *     checks it) when podman cannot be run (the process executor runs image: sh
 *     tasks through podman: podman.c) or does not have the image (podman run
 *     --pull=never: images are built or pulled beforehand, never mid-run).
 *   - `run_as:` on a reached task whose code would not run as that user: when
 *     flowrun is not root (only root can switch), and on a half of a combined
 *     task whose unit runs as someone else (identity is switched per unit, by
 *     the unit's own run_as). A run_as naming the user flowrun already runs as
 *     is what was declared, so it runs. A run_as naming no user of this machine
 *     is refused whoever flowrun runs as. As root both executors switch: the
 *     process executor in its workers, the inline executor by running exactly
 *     those jobs in a process pool of its own (exec_inline.c, RUN_AS).
 *   - `secrets:` on a reached task under the inline executor: a secret reaches its
 *     task only through a fresh worker process (secrets.c), and the inline
 *     executor has none, so every other task of the run could read it.
 *
 * Each rule is a few lines below, so the issue that builds the feature removes
 * its rule and nothing else. Running a scheduled flow by hand is allowed: the
 * schedule only says when a scheduler would start it.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "podman.h"
#include "refuse.h"

/* The name of the user flowrun runs as (its uid as text when it has none). */
static void self_name(char *buf, size_t len) {
    struct passwd *pw = getpwuid(geteuid());
    if (pw)
        snprintf(buf, len, "%s", pw->pw_name);
    else
        snprintf(buf, len, "uid %ld", (long)geteuid());
}

/* Is `user` the user flowrun runs as (by uid, so aliases count)? */
static int is_self(const char *user) {
    struct passwd *pw = getpwnam(user);
    return pw && pw->pw_uid == geteuid();
}

/* run_as "want" on task t, part of unit u (t == u for the unit itself): 0 when
 * the task's code would run as that user, else -1 with why. as: the user the
 * unit runs as when an executor switches to it (flowrun is root and the unit has
 * run_as), or NULL when it runs as flowrun's own user. */
static int refuse_run_as(const fl_plan *p, uint32_t u, uint32_t t, const char *as, char *err,
                         size_t errlen) {
    const char *name = plan_str(p, p->tasks[t].name), *want = plan_str(p, p->tasks[t].run_as);
    const char *unit = plan_str(p, p->tasks[u].name);
    if (!getpwnam(want)) {
        snprintf(err, errlen, "task '%s' declares run_as \"%s\": there is no such user (refused)",
                 name, want);
        return -1;
    }
    if (as ? !strcmp(as, want) : is_self(want)) return 0;
    char self[64];
    self_name(self, sizeof self);
    if (as)
        snprintf(err, errlen,
                 "task '%s' declares run_as \"%s\" but runs inside '%s', which runs as \"%s\" "
                 "(refused)",
                 name, want, unit, as);
    else if (geteuid() == 0) /* a half: its unit has no run_as of its own */
        snprintf(err, errlen,
                 "task '%s' declares run_as \"%s\" but runs inside '%s', which runs as %s "
                 "(refused; give the combined task the run_as option)",
                 name, want, unit, self);
    else
        snprintf(err, errlen,
                 "task '%s' declares run_as \"%s\": flowrun runs as %s, not as root, and cannot "
                 "switch identity (refused)",
                 name, want, self);
    return -1;
}

/* Check task t, part of unit u, and the halves of a combined t (see
 * refuse_run_as for as). A combine's halves are earlier tasks (plan_read
 * checks), so the recursion ends. */
/* Do C tasks a and b (both with image:) run in the same containers: the same image,
 * network and run_as? (One podman engine per run: remote_podman.c.) */
static int same_container(const fl_plan *p, uint32_t a, uint32_t b) {
    const plan_task *A = &p->tasks[a], *B = &p->tasks[b];
    const plan_container *ca = plan_task_container(p, a), *cb = plan_task_container(p, b);
    int na = ca && ca->network, nb = cb && cb->network;
    const char *ra = A->run_as == PLAN_NONE ? "" : plan_str(p, A->run_as);
    const char *rb = B->run_as == PLAN_NONE ? "" : plan_str(p, B->run_as);
    return !strcmp(plan_str(p, A->image), plan_str(p, B->image)) && na == nb && !strcmp(ra, rb);
}

/* podman[0]: podman was found to run; podman[1]: the first C task with image: seen
 * (PLAN_NONE: none yet). kube_ex: under --executor kubernetes every pod runs the
 * configured image, not podman here (cli_run.c checks the tasks' images against it):
 * kube_ex 1; under --executor slurm kube_ex is 2 (C tasks with image: refused). */
static int check_task(const fl_plan *p, uint32_t u, uint32_t t, const char *as, int inline_ex,
                      int kube_ex, uint32_t *podman, char *err, size_t errlen) {
    const plan_task *T = &p->tasks[t];
    if (T->image != PLAN_NONE) {
        const char *name = plan_str(p, T->name), *image = plan_str(p, T->image);
        char why[300], id[160];
        int bad = 1;
        if (inline_ex)
            snprintf(err, errlen,
                     "task '%s' declares image \"%s\": the inline executor runs tasks inside "
                     "flowrun, never in a container (refused; use --executor process)",
                     name, image);
        else if ((T->kind != TK_SH && T->kind != TK_C) || t != u)
            snprintf(err, errlen,
                     "task '%s' declares image \"%s\": a combined task and its halves do not "
                     "run in containers (refused; give image: to sh and C tasks of their own)",
                     name, image);
        else if (kube_ex == 1)
            bad = 0;
        else if (kube_ex == 2 && T->kind == TK_C)
            snprintf(err, errlen,
                     "task '%s' declares image \"%s\": --executor slurm cannot run a C task in "
                     "its image yet, and a node's worker would run it outside (refused; sh "
                     "tasks with image: run under podman on the nodes; or use --executor "
                     "process)",
                     name, image);
        else if (T->kind == TK_C && podman[1] != PLAN_NONE && podman[1] != t &&
                 !same_container(p, podman[1], t))
            snprintf(err, errlen,
                     "task '%s' declares image \"%s\": the C tasks of one run share one "
                     "container setup, and task '%s' differs (image, network: or run_as:; "
                     "refused)",
                     name, image, plan_str(p, p->tasks[podman[1]].name));
        else if (!podman[0] && rt_podman_check(why, sizeof why)) /* once per run */
            snprintf(err, errlen,
                     "task '%s' declares image \"%s\": it runs through podman, and %s "
                     "(refused; install podman, Debian package podman)",
                     name, image, why);
        else if ((podman[0] = 1) && rt_podman_image_id(image, id, sizeof id, why, sizeof why))
            snprintf(err, errlen, "task '%s' declares image \"%s\": %s (refused)", name, image,
                     why);
        else
            bad = 0;
        if (!bad && T->kind == TK_C && podman[1] == PLAN_NONE) podman[1] = t;
        if (bad) return -1;
    }
    if (T->run_as != PLAN_NONE && refuse_run_as(p, u, t, as, err, errlen)) return -1;
    for (uint32_t i = 0; inline_ex && i < p->n_secrets; i++)
        if (p->secrets[i].task == t) {
            snprintf(err, errlen,
                     "task '%s' declares secrets: the inline executor runs every task in one "
                     "process, where any task could read them (refused; use --executor process)",
                     plan_str(p, T->name));
            return -1;
        }
    if (T->kind == TK_COMBINE)
        for (int h = 0; h < 2; h++)
            if (check_task(p, u, h ? T->second : T->first, as, inline_ex, kube_ex, podman,
                           err, errlen)) return -1;
    return 0;
}

int rt_reached_units(const fl_plan *p, uint32_t graph, unsigned char *units) {
    unsigned char *gseen = fl_calloc(p->ctx, p->n_graphs + 1, 1);
    uint32_t *stack = fl_calloc(p->ctx, p->n_graphs + 1, sizeof *stack);
    if (!gseen || !stack) {
        fl_free(p->ctx, gseen);
        fl_free(p->ctx, stack);
        return -1;
    }
    uint32_t depth = 0;
    stack[depth++] = graph;
    gseen[graph] = 1;
    while (depth) {
        const plan_graph *G = &p->graphs[stack[--depth]];
        for (uint32_t i = 0; i < G->nnodes; i++) {
            const plan_node *n = &p->nodes[G->first_node + i];
            if (n->kind == PN_GROUP_CALL || n->kind == PN_GROUP_EXPAND) {
                if (!gseen[n->ref]) {
                    gseen[n->ref] = 1;
                    stack[depth++] = n->ref;
                }
            } else if (n->kind == PN_CALL || n->kind == PN_EXPAND || n->kind == PN_EXPAND_KWARGS) {
                units[n->ref] = 1;
            }
        }
    }
    fl_free(p->ctx, gseen);
    fl_free(p->ctx, stack);
    return 0;
}

int rt_refuse_undone(const fl_plan *p, uint32_t graph, const char *executor, char *err,
                     size_t errlen) {
    int inline_ex = executor && !strcmp(executor, "inline");
    int kube_ex = executor && !strcmp(executor, "kubernetes") ? 1
                  : executor && !strcmp(executor, "slurm")    ? 2
                                                              : 0;
    int switches = geteuid() == 0; /* both executors switch identity as root */
    unsigned char *units = fl_calloc(p->ctx, p->n_tasks + 1, 1);
    if (!units || rt_reached_units(p, graph, units)) {
        fl_free(p->ctx, units);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    uint32_t podman[2] = {0, PLAN_NONE}; /* check_task */
    for (uint32_t u = 0; u < p->n_tasks && !rc; u++) {
        if (!units[u]) continue;
        const plan_task *U = &p->tasks[u];
        const char *as = switches && U->run_as != PLAN_NONE ? plan_str(p, U->run_as) : NULL;
        rc = check_task(p, u, u, as, inline_ex, kube_ex, podman, err, errlen);
    }
    fl_free(p->ctx, units);
    return rc;
}
