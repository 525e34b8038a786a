/*
 * remote.h — running instances elsewhere: the batch files a driver writes, the
 * result files `flowrun worker` writes back, the generic remote executor, and the
 * engines it drives (Slurm, Kubernetes, podman). Layer: core. Design:
 * docs/distributed.md; the code is in remote.c (the files' codec, job keys),
 * remote_driver.c (rm_executor), remote_worker.c (the worker's core; its command
 * line, configuration and secrets are in runtime/app/cli_worker.c, since core does
 * not read flow.yaml), remote_local.c (the local engine), remote_slurm.c,
 * remote_kube.c, remote_podman.c.
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
#include "value.h"

/* ---- the worker command line every engine runs ----
 *
 *   flowrun worker --state DIR --batch FILE [--element E] [-j N]
 *                  [--env NAME] [--config FILE] [--unprotected] [--linger MS] PLAN
 *
 * E defaults to $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX (Kubernetes
 * Indexed Jobs), else $FLOW_ELEMENT; none of them: exit 2. The worker opens PLAN
 * (libraries found and hash-checked as flowrun does), resolves the environment and
 * the secrets of the tasks it runs from the configuration as flowrun does, runs its
 * element's jobs in a process executor of -j N workers (default 1: one slot), in
 * batch order, and writes each result as it completes (chunks at most every
 * RM_FLUSH_MS, so the driver sees a stream, not one file at the end). Exit 0 when
 * every job has a result written (failed jobs included), 2 usage/plan error, 1 an
 * I/O error writing results. With --linger MS it then waits up to MS for guest
 * batches the driver offers it (remote_driver.c, "Guests") before it exits. */
int rm_worker_main(int argc, char **argv); /* cli_worker.c; flowrun's `worker` command */

#define RM_FLUSH_MS 200

/* ---- batch file codec (remote.c) ---- */
typedef struct rm_key {
    uint64_t hi, lo;
} rm_key;

/* The key of a job: its task, map index, attempt and arguments (encoded with
 * fv_encode under the task's parameter types), hashed. */
rm_key rm_job_key(const fl_plan *p, const rt_job *job);

/* ---- the codec (remote.c) ----
 *
 * Every file starts with an 8-byte magic ("FLOWRMB\n", "FLOWRMR\n", "FLOWRME\n":
 * a text-mode mangling shows), a u32 version (RM_FORMAT_VERSION), then fields in
 * little-endian, and ends with a u64 FNV-1a of everything before it. Strings are
 * a u32 length and the bytes; a NULL string has length 0xffffffff. A reader
 * checks every length against what is left, the trailer, and that the counts
 * fit the sizes, before trusting anything: a damaged file is one line in err. */
#define RM_FORMAT_VERSION 1
#define RM_MAX_JOBS (1u << 24)  /* most jobs in one batch file */
#define RM_MAX_FILE (1u << 30)  /* largest batch or result file read */

typedef struct rm_bjob {
    rm_key key;           /* rm_job_key */
    uint32_t task;        /* plan task */
    int64_t map_index;    /* -1 when not mapped */
    uint32_t attempt;     /* 0 the first run */
    int64_t timeout_ms;   /* 0: none */
    const char *out_dir;  /* or NULL */
    const char *scratch_dir; /* or NULL */
    const uint8_t *args;  /* the arguments, fv_encode'd one after the other */
    uint32_t args_len;
} rm_bjob;

typedef struct rm_batch {
    uint8_t plan_hash[32]; /* SHA-256 of the plan file the driver ran */
    int64_t run;           /* the run id */
    uint32_t batch;        /* N */
    uint32_t nelem;        /* elements */
    uint32_t njobs;
    uint32_t *first;       /* nelem + 1: element e runs jobs first[e] .. first[e+1]-1 */
    rm_bjob *jobs;         /* njobs */
    void *mem;             /* decode: owns first, jobs and the bytes they point into */
} rm_batch;

/* Encode b into out (out->failed on no memory). */
void rm_batch_encode(const rm_batch *b, fv_buf *out);
/* Decode len bytes (copied: data may go) into b. 0, or -1 with one line in err. */
int rm_batch_decode(const uint8_t *data, size_t len, rm_batch *b, char *err, size_t errlen);
void rm_batch_free(rm_batch *b);
/* Read and decode a whole file. 0, or -1 with one line in err naming the file. */
int rm_batch_read(const char *path, rm_batch *b, char *err, size_t errlen);

typedef struct rm_res {
    uint32_t job;          /* index of the job in its batch */
    rm_key key;            /* its key (checked against the batch's) */
    int ok;                /* 1: value holds the result */
    const uint8_t *value;  /* fv_encode'd under the task's return type (void: empty) */
    uint32_t value_len;
    const char *error;     /* when !ok, or NULL */
    const char *log;       /* captured log or NULL */
    double start, end;     /* wall clock */
    int64_t peak_rss_kb;
    int32_t term_signal, worker_pid;
    const char *host;      /* host name of the worker */
} rm_res;

typedef struct rm_chunk {
    int64_t run;
    uint32_t batch, element;
    uint32_t nres;
    rm_res *res;
    void *mem;             /* decode: owns res and the bytes they point into */
} rm_chunk;

void rm_chunk_encode(const rm_chunk *c, fv_buf *out);
int rm_chunk_decode(const uint8_t *data, size_t len, rm_chunk *c, char *err, size_t errlen);
void rm_chunk_free(rm_chunk *c);

/* The end marker of element E: how many results it wrote in all. */
void rm_end_encode(int64_t run, uint32_t batch, uint32_t element, uint32_t nresults,
                   fv_buf *out);
int rm_end_decode(const uint8_t *data, size_t len, int64_t *run, uint32_t *batch,
                  uint32_t *element, uint32_t *nresults, char *err, size_t errlen);

/* Read a whole file (at most RM_MAX_FILE bytes) into *data (malloc'd). 0; -1 with
 * errno ENOENT when it is not there (err set too); -1 with err otherwise. */
int rm_read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen);
/* Write a file atomically: a temp file in its folder, fsync'd, renamed to path. 0, or
 * -1 with err. */
int rm_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* The tag that keeps one state directory's containers or Jobs apart from another's
 * where both share a namespace (podman's containers on this machine, a Kubernetes
 * namespace): run ids are numbered per state directory, so two of them may both be
 * at run 1. Eight hex digits in out (9 bytes): the FNV-1a of the state directory's
 * path, continued over `volume` when given (what that path is in the cluster: a
 * PersistentVolumeClaim's name or a node's directory). The same for every later
 * `flowrun resume` of the same state. */
void rm_state_tag(const char *state_dir, const char *volume, char out[9]);

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
     * An element a successful poll does not report at all counts as RM_GONE
     * (remote_driver.c): its jobs fail after the grace period unless results come;
     * so report pending array ranges too (Slurm's "1234_[5-99]": element -1).
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
    /* Optional (NULL: none). flowrun resume: make a batch an earlier driver started
     * (s: run, batch, nelem, log_dir, name; argv NULL) one of this run's, so that
     * poll reports it and cancel cancels it. 0, or -1 with one line in err. */
    int (*adopt)(rm_engine *e, const rm_start *s, const char *id, char *err, size_t errlen);
} rm_engine_ops;

struct rm_engine {
    const rm_engine_ops *ops;
    uint32_t slots; /* slots the engine can run at once (the driver's capacity) */
    fl_ctx *ctx;    /* where an engine's warnings go (fl_log); set by the driver, NULL: dropped */
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
    int linger_ms;           /* > 0: a worker done with its element waits this long for a
                                guest batch before it exits (remote_driver.c, "Guests");
                                0: it exits at once */
    int resume;              /* flowrun resume: re-attach to the run's recorded batches */
    int unprotected;         /* the run's --unprotected: passed on to the workers */
    /* state.db, reached through the caller (core does not call the recorder): record a
     * started batch (0, or -1 with err: the batch is cancelled and its jobs fail);
     * list the run's recorded batches, calling each(ud2, ...) once per batch. NULL:
     * nothing is recorded and nothing re-attached. */
    void *rec_ud;
    int (*record_batch)(void *rec_ud, int64_t run, uint32_t batch, const char *engine,
                        const char *engine_id, const char *name, uint32_t nelem,
                        const char *batch_file, char *err, size_t errlen);
    int (*list_batches)(void *rec_ud, int64_t run,
                        void (*each)(void *ud2, uint32_t batch, const char *engine,
                                     const char *engine_id, const char *name, uint32_t nelem,
                                     const char *batch_file),
                        void *ud2, char *err, size_t errlen);
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
 * older than RM_KUBE_MIN_MINOR. The engine copies the strings it keeps. */
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
/* What rm_engine_kube checks (the options, kubectl's version), without an engine:
 * flowrun calls it before anything of the run is recorded. 0, or -1 with err. */
int rm_kube_check(const rm_kube_options *o, char *err, size_t errlen);

/* ---- the worker's core (remote_worker.c) ----
 * Run element `element` of the batch in ex (a process executor over rt), writing
 * its results under STATE/remote/<run>/r<N>/ as chunks and then its end marker.
 * rm_worker_main (runtime/app/cli_worker.c) reads the command line, the
 * configuration and the secrets, opens the plan and the executor, and calls it.
 * 0 every job has a result written; 1 an I/O error writing them; 2 a bad batch
 * (err says why). */
int rm_worker_run(rt_runtime *rt, rt_executor *ex, const char *state_dir, const rm_batch *b,
                  uint32_t element, char *err, size_t errlen);

/* The local engine (remote_local.c): each element a child process of flowrun (its
 * own process group, output to log/<N>.<E>, FLOW_ELEMENT=E), polled with waitpid;
 * `slots` elements at once. The protocol's test engine (docs/distributed.md):
 * FLOWRUN_REMOTE_ENGINE=local. */
rm_engine *rm_engine_local(uint32_t slots, char *err, size_t errlen);

#endif /* FLOW_REMOTE_H */
