/*
 * cli_worker.c — `flowrun worker` (remote.h, rm_worker_main): the one program every
 * remote engine runs, for one element of one batch. Run by executors, not by hand.
 *
 * It does what `flowrun run` does before its scheduler starts, and nothing of
 * what comes after: reads the configuration (--config, the environment --env: its
 * root, FLOW_ENV / FLOW_ENV_ROOT for sh tasks), keeps the tasks off the other
 * environments' roots (iso_protect_run, --unprotected as for run), opens the plan (libraries found
 * and hash-checked by rt_open) and checks it is the plan the driver ran (the batch file holds its
 * SHA-256), gathers the secrets of the tasks of its element (cli_secrets_for, as run does for the
 * tasks a flow reaches), and starts a process executor exactly as run does
 * (rt_executor_process_sec: the store read-only to tasks as root, a fresh worker per job of a task
 * with secrets). Then the core (remote_worker.c) runs the element and writes its results. It never
 * opens state.db: only the driver writes it.
 *
 * The element: --element, else $SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX,
 * $FLOW_ELEMENT, in that order; none: exit 2. Exit 0 all results written, 1 an I/O
 * error writing them, 2 a usage, plan or batch error (one line on stderr, which
 * the engine keeps in log/<N>.<E>).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "digest.h"
#include "exec.h"
#include "exec_split.h"
#include "exec_process.h"
#include "isolate.h"
#include "remote.h"
#include "secrets.h"
#include "store.h"

#define WORKER_MAX_JOBS 4096

enum { O_STATE = 256, O_BATCH, O_ELEMENT, O_ENV, O_CONFIG, O_UNPROTECTED, O_LINGER };

#define WORKER_MAX_LINGER_MS 600000
#define WORKER_LOOK_MS 20 /* how often a lingering worker looks for an offer */

static int worker_usage(const char *fmt, const char *a) {
    fputs("flowrun worker: ", stderr);
    fprintf(stderr, fmt, a);
    fputs(" (see flowrun worker --help)\n", stderr);
    return 2;
}

/* The element from the engines' index variables. -1: none set; -2: one is not a
 * number (named in *which). */
static int64_t element_from_env(const char **which) {
    static const char *vars[] = {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "FLOW_ELEMENT"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v) continue;
        int64_t n;
        *which = vars[i];
        if (cli_count(v, 0, UINT32_MAX - 1, &n)) return -2;
        return n;
    }
    return -1;
}

/* --linger: done with its element, the worker waits up to `linger` ms for the driver
 * to offer it a guest batch (remote_driver.c, "Guests"): the file r<N>/<E>.next<K>
 * naming batch M, taken by renaming it to .took<K> (the driver withdraws an offer by
 * renaming it to .back<K>: one rename wins). It runs element 0 of b<M>.batch in the
 * same executor, then waits again for .next<K+1>. When the wait ends without an offer,
 * r<N>/<E>.bye says it left. Guest batches hold only tasks without secrets or an image
 * (the driver sees to it), which this executor runs as it is. 0, or the code of a
 * guest batch that failed (as for its own element). */
static int take_guests(rt_runtime *rt, rt_executor *ex, const char *state, const char *batch,
                       const rm_batch *own, uint32_t element, int64_t linger,
                       const uint8_t plan_hash[32]) {
    char dir[PATH_MAX], err[1024];
    snprintf(dir, sizeof dir, "%s", batch);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int code = 0;
    /* tests (61-remote "withdrawn"): linger, take nothing, then say bye */
    const char *decline = getenv("FLOWRUN_WORKER_DECLINE");
    if (decline && !strcmp(decline, "1")) {
        struct timespec ts = {linger / 1000, (linger % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        linger = -1;
    }
    for (uint32_t k = 1; !code && linger >= 0; k++) {
        char next[PATH_MAX + 64], took[PATH_MAX + 64];
        snprintf(next, sizeof next, "%s/r%u/%u.next%u", dir, own->batch, element, k);
        snprintf(took, sizeof took, "%s/r%u/%u.took%u", dir, own->batch, element, k);
        int taken = 0;
        for (int64_t waited = 0; !(taken = rename(next, took) == 0) && waited < linger;
             waited += WORKER_LOOK_MS) {
            struct timespec ts = {0, WORKER_LOOK_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (!taken) break;
        uint8_t *text;
        size_t len;
        unsigned m = 0;
        if (rm_read_file(took, &text, &len, err, sizeof err)) {
            fprintf(stderr, "flowrun worker: %s\n", err);
            return 1;
        }
        char t[32];
        snprintf(t, sizeof t, "%.*s", (int)(len < sizeof t - 1 ? len : sizeof t - 1), (char *)text);
        free(text);
        char gpath[PATH_MAX + 64];
        rm_batch g;
        if (sscanf(t, "%u", &m) != 1) {
            fprintf(stderr, "flowrun worker: %s does not name a batch\n", took);
            return 2;
        }
        snprintf(gpath, sizeof gpath, "%s/b%u.batch", dir, m);
        if (rm_batch_read(gpath, &g, err, sizeof err)) {
            fprintf(stderr, "flowrun worker: %s\n", err);
            return 2;
        }
        if (g.run != own->run || g.nelem != 1 || memcmp(g.plan_hash, plan_hash, 32)) {
            fprintf(stderr, "flowrun worker: %s is not a guest batch of this run and plan\n",
                    gpath);
            rm_batch_free(&g);
            return 2;
        }
        code = rm_worker_run(rt, ex, state, &g, 0, err, sizeof err);
        if (code) fprintf(stderr, "flowrun worker: batch %u: %s\n", m, err);
        rm_batch_free(&g);
    }
    if (!code) {
        char bye[PATH_MAX + 64];
        snprintf(bye, sizeof bye, "%s/r%u/%u.bye", dir, own->batch, element);
        if (rm_write_file(bye, "", 0, err, sizeof err)) {
            fprintf(stderr, "flowrun worker: %s\n", err);
            code = 1;
        }
    }
    return code;
}

int rm_worker_main(int argc, char **argv) {
    static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
                                         {"batch", required_argument, NULL, O_BATCH},
                                         {"element", required_argument, NULL, O_ELEMENT},
                                         {"jobs", required_argument, NULL, 'j'},
                                         {"env", required_argument, NULL, O_ENV},
                                         {"config", required_argument, NULL, O_CONFIG},
                                         {"unprotected", no_argument, NULL, O_UNPROTECTED},
                                         {"linger", required_argument, NULL, O_LINGER},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL, *batch = NULL, *env = NULL, *config = NULL, *plan = NULL;
    int64_t element = -1, jobs = 1, linger = 0;
    int unprotected = 0;
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun worker", " (see flowrun worker --help)", "j:", opts, 0);
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        switch (c) {
            case CLI_ERROR:
                return 2;
            case CLI_ARG:
                if (plan) return worker_usage("unexpected argument '%s'", val);
                plan = val;
                break;
            case O_STATE:
                state = val;
                break;
            case O_BATCH:
                batch = val;
                break;
            case O_ELEMENT:
                if (cli_count(val, 0, UINT32_MAX - 1, &element))
                    return worker_usage("--element expects a number from 0, got '%s'", val);
                break;
            case 'j':
                if (cli_count(val, 1, WORKER_MAX_JOBS, &jobs))
                    return worker_usage("-j expects a number from 1 to 4096, got '%s'", val);
                break;
            case O_ENV:
                env = val;
                break;
            case O_CONFIG:
                config = val;
                break;
            case O_UNPROTECTED:
                unprotected = 1;
                break;
            case O_LINGER:
                if (cli_count(val, 0, WORKER_MAX_LINGER_MS, &linger))
                    return worker_usage("--linger expects milliseconds from 0 to 600000, got '%s'",
                                        val);
                break;
        }
    }
    if (!plan) return worker_usage("%s", "missing the PLAN file");
    if (!state) return worker_usage("%s", "missing --state DIR");
    if (!batch) return worker_usage("%s", "missing --batch FILE");
    if (element < 0) {
        const char *which = NULL;
        element = element_from_env(&which);
        if (element == -2) return worker_usage("$%s is not an element number", which);
        if (element < 0)
            return worker_usage("%s", "no element: give --element E, or run under an engine "
                                      "that sets SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or "
                                      "FLOW_ELEMENT");
    }
    char err[1024];
    flcfg cfg;
    if (flcfg_load(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "flowrun worker: %s\n", err);
        return 2;
    }
    const char *envname = env ? env : "prod";
    int code = 2;
    fl_plan *p = NULL;
    rt_runtime *rt = NULL;
    rt_executor *ex = NULL;
    rm_batch b = {0};
    fsec_set sec;
    fsec_init(&sec);
    unsigned char *in = NULL;
    const flcfg_env *E = flcfg_env_get(&cfg, envname);
    if (!E) {
        flcfg_env_problem(&cfg, envname, err, sizeof err);
        fprintf(stderr, "flowrun worker: %s\n", err);
        goto out;
    }
    /* the other environments' roots read-only to the tasks, as for the run (isolate.c):
     * now, while the worker is one thread */
    int n_ro = 0, isolated;
    const char **ro = flcfg_other_roots(&cfg, E, &n_ro);
    if (!ro) {
        fprintf(stderr, "flowrun worker: out of memory\n");
        goto out;
    }
    isolated = iso_protect_run(env, ro, n_ro, unprotected, 0, stderr, err, sizeof err);
    free(ro);
    if (isolated < 0) {
        fprintf(stderr, "flowrun worker: %s\n", err);
        goto out;
    }
    if (rm_batch_read(batch, &b, err, sizeof err)) {
        fprintf(stderr, "flowrun worker: %s\n", err);
        goto out;
    }
    if ((uint64_t)element >= b.nelem) {
        fprintf(stderr, "flowrun worker: element %lld is not in batch %u (it has %u)\n",
                (long long)element, b.batch, b.nelem);
        goto out;
    }
    fl_digest h;
    if (hash_file(flowrun_ctx(), plan, &h, err, sizeof err)) {
        fprintf(stderr, "flowrun worker: %s\n", err);
        goto out;
    }
    if (memcmp(h.b, b.plan_hash, 32)) {
        fprintf(stderr,
                "flowrun worker: %s is not the plan batch %u was made for (it changed "
                "since the run started)\n",
                plan, b.batch);
        goto out;
    }
    p = plan_read_file(flowrun_ctx(), plan, err, sizeof err);
    if (!p) {
        fprintf(stderr, "flowrun worker: %s: %s\n", plan, err);
        goto out;
    }
    /* the secrets of the element's tasks, before any worker exists */
    in = calloc(p->n_tasks + 1, 1);
    if (!in) {
        fprintf(stderr, "flowrun worker: out of memory\n");
        goto out;
    }
    for (uint32_t j = b.first[element]; j < b.first[element + 1]; j++)
        if (b.jobs[j].task < p->n_tasks) in[b.jobs[j].task] = 1;
    if (p->n_secrets && cli_secrets_for(&cfg, p, in, &sec)) goto out;
    rt = rt_open(p, plan, 0, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "flowrun worker: %s\n", err);
        goto out;
    }
    if (rt_set_env_root(rt, E->root)) {
        fprintf(stderr, "flowrun worker: out of memory\n");
        goto out;
    }
    setenv("FLOW_ENV", envname, 1);
    if (E->root)
        setenv("FLOW_ENV_ROOT", E->root, 1);
    else
        unsetenv("FLOW_ENV_ROOT");
    {
        fl_store *sto = store_open(flowrun_ctx(), state, err, sizeof err);
        if (!sto) {
            fprintf(stderr, "flowrun worker: %s\n", err);
            goto out;
        }
        if (sec.n) {
            char mnt[PATH_MAX], why[600];
            snprintf(mnt, sizeof mnt, "%s/secret-mount", state);
            if (fsec_set_mnt(&sec, mnt, why, sizeof why) || fsec_probe(&sec, why, sizeof why)) {
                fprintf(stderr,
                        "flowrun worker: tasks with secrets cannot be kept from the "
                        "other tasks here: %s (refused)\n",
                        why);
                store_close(sto);
                goto out;
            }
        }
        ex = rt_executor_process_sec(rt, (int)jobs, store_root(sto), sec.n ? &sec : NULL,
                                     isolated > 0);
        store_close(sto);
        /* sh tasks with image: run under podman on this host, as `flowrun run` runs
         * them — unless this worker is itself in the container (the podman engine,
         * a Kubernetes pod: FLOW_IN_CONTAINER), where they run as they are */
        const char *inc = getenv("FLOW_IN_CONTAINER");
        if (ex && !(inc && !strcmp(inc, "1"))) {
            for (uint32_t t = 0; t < p->n_tasks; t++)
                in[t] = in[t] && p->tasks[t].image != PLAN_NONE && p->tasks[t].kind == TK_SH;
            ex = rt_executor_with_containers_for(rt, in, ex, (int)jobs, sec.n ? &sec : NULL);
        }
    }
    if (!ex) {
        fprintf(stderr, "flowrun worker: cannot start the process executor: %s\n", strerror(errno));
        goto out;
    }
    code = rm_worker_run(rt, ex, state, &b, (uint32_t)element, err, sizeof err);
    if (code) fprintf(stderr, "flowrun worker: %s\n", err);
    if (!code && linger > 0) code = take_guests(rt, ex, state, batch, &b, (uint32_t)element,
                                                linger, h.b);
out:
    if (ex) ex->ops->destroy(ex);
    if (rt) rt_close(rt);
    fsec_free(&sec);
    free(in);
    if (p) plan_free(p);
    rm_batch_free(&b);
    flcfg_free(&cfg);
    return code;
}

int flowrun_cmd_worker(int argc, char **argv) {
    return rm_worker_main(argc, argv);
}
