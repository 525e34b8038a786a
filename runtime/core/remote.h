/*
 * remote.h — running instances elsewhere: the batch files a driver writes, the
 * result files `flowrun worker` writes back, the generic remote executor, and the
 * engines it drives (Slurm, Kubernetes, podman). Layer: core. Design:
 * docs/distributed.md; the code is in remote.c (codec, driver, worker),
 * remote_slurm.c, remote_kube.c, remote_podman.c.
 *
 * THE CONTRACT (fixed: every engine and the worker are written against it)
 *
 *   Shared state directory. The driver (flowrun) and every worker see the same
 *   state directory at the same path (a shared filesystem; in a container it is
 *   bind-mounted at that same path). Only the driver writes state.db (SQLite's
 *   WAL does not work across hosts). A run's remote files live under
 *       STATE/remote/<run>/
 *           b<N>.batch            batch N: written by the driver (temp + rename),
 *                                 never changed after; holds the jobs of all of
 *                                 its array elements
 *           r<N>/<E>.<S>          result chunk S (0, 1, ...) of element E of batch
 *                                 N: written by the worker running element E
 *                                 (temp file in r<N>/, fsync'd, renamed into
 *                                 place); one or more results each
 *           r<N>/<E>.end          written last by that worker: the element ran to
 *                                 its end (how many results it wrote in all)
 *           log/<N>.<E>           the engine's stdout/stderr of the element
 *   A worker writes only names of its own element (N, E); the driver reads,
 *   records and deletes them. A result is complete only once renamed into place:
 *   the driver never trusts a job's exit code alone.
 *
 *   Job keys. Each job of a batch carries a 128-bit key (rm_job_key: the task,
 *   the map index, the attempt and the encoded arguments), stable across
 *   processes, so that `flowrun resume` after the driver was killed can match
 *   the scheduler's new jobs with the work still running or already written by
 *   the old driver's elements (re-attach: recorded in state.db, below).
 *
 *   Engines. An engine starts elements and reports their state; it knows
 *   nothing of jobs. The generic driver (rm_executor) packs ready jobs into
 *   batches, writes them, asks the engine to start them, polls the engine at
 *   most once per poll interval for the whole run, reads results, fails the jobs
 *   of an element that ended (or vanished for longer than the grace period)
 *   without a result for them, and cancels everything on destroy.
 */
#ifndef FLOW_REMOTE_H
#define FLOW_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "plan.h"

/* ---- the worker command line every engine runs ----
 *
 *   flowrun worker --state DIR --batch FILE [--element E] [-j N]
 *                  [--env NAME] [--config FILE] PLAN
 *
 * E defaults to $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX (Kubernetes
 * Indexed Jobs), else $FLOW_ELEMENT; none of them: exit 2. The worker opens PLAN
 * (libraries found and hash-checked as flowrun does), resolves the environment and
 * the secrets of the tasks it runs from the configuration as flowrun does, runs its
 * element's jobs in a process executor of -j N workers (default 1: one slot), in
 * batch order, and writes each result as it completes (chunks at most every
 * RM_FLUSH_MS, so the driver sees a stream, not one file at the end). Exit 0 when
 * every job has a result written (failed jobs included), 2 usage/plan error, 1 an
 * I/O error writing results. */
int rm_worker_main(int argc, char **argv); /* remote.c; called by flowrun's main */

#define RM_FLUSH_MS 200

/* ---- batch file codec (remote.c) ---- */
typedef struct rm_key {
    uint64_t hi, lo;
} rm_key;

/* The key of a job: its task, map index, attempt and arguments (encoded with
 * fv_encode under the task's parameter types), hashed. */
rm_key rm_job_key(const fl_plan *p, const rt_job *job);

/* ---- engines ---- */
typedef struct rm_engine rm_engine;

/* What the driver asks an engine to start: elements 0..nelem-1 of batch n, each
 * running argv (the worker command, which names the batch file; the engine adds
 * the element through its own index variable or appends "--element E"). */
typedef struct rm_start {
    int64_t run;           /* the run id */
    uint32_t batch;        /* N */
    uint32_t nelem;        /* array elements */
    uint32_t slots;        /* CPUs each element wants (its -j) */
    const char *const *argv; /* the worker command, NULL-terminated */
    const char *log_dir;   /* STATE/remote/<run>/log: where element output goes */
    const char *name;      /* job name: "flow-<run>-<N>" (found again on resume) */
    /* the largest per-instance limits of the batch's tasks (0: none): for the
     * engine's request (sbatch --mem, Kubernetes resources) */
    int64_t memory;
    uint32_t cpus;
    /* the run_as user every task of the batch shares, or NULL (the driver's own
     * identity): Kubernetes' securityContext runAsUser/runAsGroup */
    const char *run_as;
} rm_start;

/* The state of one started batch, per element where the engine knows it. */
enum rm_state {
    RM_PENDING = 0, /* queued */
    RM_RUNNING,     /* started */
    RM_ENDED,       /* ended (whatever its exit code) */
    RM_GONE         /* the engine no longer knows it (vanished, or aged out) */
};

typedef struct rm_engine_ops {
    const char *name; /* "slurm", "kubernetes", "podman" */
    /* Start one batch; write the engine's id for it (Slurm's array job id, the
     * Kubernetes Job's name, ...) into id. 0, or -1 with one line in err. */
    int (*start)(rm_engine *e, const rm_start *s, char *id, size_t idcap, char *err,
                 size_t errlen);
    /* One query for everything this run started (never one per job): call
     * report(ud, id, element, state) for each element the engine knows
     * (element -1: the state of every element of id not reported one by one).
     * 0, or -1 with one line in err (the driver retries at the next poll, and
     * gives up after RM_POLL_FAILS failures in a row). */
    int (*poll)(rm_engine *e, void (*report)(void *ud, const char *id, int64_t element,
                                             enum rm_state st),
                void *ud, char *err, size_t errlen);
    /* Cancel everything this run started (Ctrl-C, SIGTERM, destroy). Best effort. */
    void (*cancel)(rm_engine *e);
    /* Per-element start cost measured or known (seconds), or < 0 unknown: the
     * driver sizes elements from it (Slurm: ~1 s per slot). */
    double (*start_cost)(rm_engine *e);
    /* Limits: most elements in one start (MaxArraySize - 1), most jobs queued at
     * once (MaxJobCount, --slurm-max-jobs); 0: none. */
    int64_t max_array, max_jobs;
    void (*destroy)(rm_engine *e);
} rm_engine_ops;

struct rm_engine {
    const rm_engine_ops *ops;
    uint32_t slots; /* slots the engine can run at once (the driver's capacity) */
};

#define RM_POLL_FAILS 10

/* ---- the driver ---- */
typedef struct rm_options {
    const char *state_dir;   /* absolute */
    const char *plan_path;   /* absolute */
    const char *flowrun;     /* absolute path of the flowrun binary the workers run */
    const char *env;         /* --env of the run, or NULL */
    const char *config;      /* --config of the run, or NULL */
    int64_t run;             /* the run id (history) */
    int poll_ms;             /* engine poll interval (default 1000) */
    int grace_ms;            /* an element GONE/ENDED without results: failed after this
                                (default 30000) */
    int element_jobs;        /* fixed instances per element (0: sized from start_cost) */
    int one_per_instance;    /* bench: every instance its own element and job */
} rm_options;

/* The remote executor on engine e (taken over: destroyed with it). The scheduler
 * sees an ordinary executor (exec.h); its `capacity` asks for enough jobs in
 * flight to fill e->slots with elements of the chosen size. NULL with one line
 * in err. */
rt_executor *rm_executor(const fl_plan *p, rm_engine *e, const rm_options *o, char *err,
                         size_t errlen);

/* Engines (their files). NULL with one line in err when the engine cannot be used
 * here (no sbatch on PATH, no kubectl, no podman, a wrong option). */
typedef struct rm_slurm_options {
    const char *partition, *account, *time_limit; /* NULL: Slurm's defaults */
    int64_t max_jobs;                             /* --slurm-max-jobs (0: MaxJobCount) */
    const char *const *extra;                     /* extra sbatch flags, NULL-terminated */
} rm_slurm_options;
rm_engine *rm_engine_slurm(const rm_slurm_options *o, char *err, size_t errlen);

/* Kubernetes (remote_kube.c): one Indexed Job per batch, written as YAML into
 * manifest_dir and applied with `kubectl apply -f`; one `kubectl get jobs -l
 * flow-run=RUN -o json` per poll; `kubectl delete jobs -l flow-run=RUN` on cancel.
 * rm_engine_kube runs `kubectl version --client -o json` once and refuses a kubectl
 * older than RM_KUBE_MIN_MINOR. Strings are borrowed until destroy. */
#define RM_KUBE_MIN_MINOR 29 /* kubectl 1.29: backoffLimitPerIndex (beta, on by default) */
typedef struct rm_kube_options {
    const char *kubectl;         /* the kubectl command, a path or a name on PATH ("kubectl") */
    const char *ns;              /* namespace, or NULL: kubectl's current one */
    const char *image;           /* the image the pods run (holds flowrun): required */
    const char *pvc;             /* the state directory is this PersistentVolumeClaim, or */
    const char *host_path;       /* this directory of the node (exactly one of the two) */
    const char *service_account; /* NULL: none mounted (automountServiceAccountToken: false) */
    const char *flowrun;         /* flowrun's path in the image (NULL: the worker argv's own) */
    const char *state_dir;       /* absolute: mounted at this same path in every pod */
    const char *manifest_dir;    /* where the Job manifests are written (exists) */
    int64_t run;                 /* the run id: the flow-run label */
    int64_t ttl_seconds;         /* ttlSecondsAfterFinished (0: 3600) */
    uint32_t slots;              /* elements running at once across the cluster (>= 1) */
} rm_kube_options;
rm_engine *rm_engine_kube(const rm_kube_options *o, char *err, size_t errlen);

#endif /* FLOW_REMOTE_H */
