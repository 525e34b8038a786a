/*
 * scheduler.h — the scheduler (not "sched.h": that name would hide the system <sched.h>): runs one
 * flow of a plan on an executor.
 *
 * The scheduler decides WHAT runs and WHEN (instances created as upstream
 * results arrive, element-wise dependencies, depth-first order, triggers,
 * retries, failure propagation); an executor (exec.h) decides WHERE. The design
 * is described at the top of sched.c and in docs/scheduler.md.
 *
 * Ownership: sched_run borrows the plan, the executor and the parameters; the
 * result it stores in out->result is a new reference the caller releases with
 * fv_decref(plan, graph's ret type, ...).
 */
#ifndef FLOW_SCHED_H
#define FLOW_SCHED_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ctx.h"
#include "exec.h"
#include "plan.h"
#include "value.h"

#define SCHED_DEFAULT_MAX_MAP 100000
#define SCHED_MAX_LIST (1LL << 28) /* largest list a built-in (range, files, ...) builds */
#define SCHED_MAX_NESTING 64       /* groups calling groups: deepest scope chain */
#define SCHED_MAX_FAIL_LINES 50    /* failed instances listed one per line in the summary */

/* ---- what the scheduler reports: its observer ----
 * The scheduler prints nothing. It tells an observer how far the run is (at
 * every round of the loop, and once more at the end with final = 1) and, at the
 * end, what failed; the program decides what to show (flowrun: cli_progress.c;
 * the embedding API collects the summary into the outcome). Everything passed is
 * borrowed for the call. */

typedef struct sched_counts {
    uint64_t done;    /* instances finished (ok, failed or not run) */
    uint64_t total;   /* instances known so far */
    uint64_t failed;  /* instances failed */
    uint64_t cached;  /* instances served by the history (cache or resume) */
    int running;      /* instances with the executor */
    double elapsed;   /* seconds since the run started */
} sched_counts;

typedef struct sched_failure {
    const char *what;  /* the instance's name: "a[3]", "per_n[1]/square[2]" */
    const char *label; /* its label lambda's text, or NULL */
    const char *error; /* the message */
    fl_loc loc;        /* its node's place in the .flow source; file NULL: none */
    uint32_t node;     /* its node (the summary's order: by node, then by idx) */
    const char *idx;   /* its index path, "1/2" ("" for a call) */
} sched_failure;

typedef struct sched_skip {
    const char *name; /* a node's binding name */
    uint64_t n;       /* its instances not run because an upstream failed */
    uint32_t node;    /* the node */
} sched_skip;

typedef struct sched_summary {
    int interrupted;             /* the stop flag ended the run */
    uint64_t done, total;        /* instances finished, known */
    const sched_failure *fails;  /* failed instances, in the summary's order */
    uint32_t nfails;
    const sched_skip *skipped;   /* nodes with instances not run, in plan order */
    uint32_t nskipped;
    uint64_t nskipped_other;     /* built-ins not computed because an upstream failed */
    const char *error;           /* an internal error that ended the run, or NULL */
    fl_ctx *ctx;                 /* the plan's context (sched_summary_lines allocates there) */
} sched_summary;

typedef struct sched_observer {
    /* may be NULL; called once per round of the loop, and with final = 1 at the end */
    void (*on_progress)(void *ud, const sched_counts *c, int final);
    /* may be NULL; called once at the end, before sched_run returns */
    void (*on_summary)(void *ud, const sched_summary *s);
    void *ud;
} sched_observer;

/* The summary as the lines flowrun prints (without their newlines), each given to
 * line(ud, text); nothing when nothing failed, was skipped or interrupted. At most
 * SCHED_MAX_FAIL_LINES failures are listed. (sched_report.c) */
void sched_summary_lines(const sched_summary *s, void (*line)(void *ud, const char *text),
                         void *ud);

/* ---- what the scheduler counts for a metrics endpoint: its meter ----
 * When sched_opts.meter is set the scheduler keeps these counters per task, as the
 * run goes. They are written by the scheduler's thread alone (a relaxed load and a
 * relaxed store: a plain move, no locked instruction) and may be read at any time
 * by another thread with relaxed loads (flowrun's metrics thread, metrics.c). A
 * reader sees each counter whole, not all of them at one instant. The caller
 * allocates the meter with n_tasks entries (the plan's task count), zeroed, and
 * owns it; it may outlive the run. Durations are those of each execution of an
 * instance that ran (retries included; served instances have none), in seconds,
 * counted in the bucket of the first bound >= the duration (the last: above all). */

#define SCHED_METER_NBOUNDS 19
extern const double sched_meter_bounds[SCHED_METER_NBOUNDS]; /* 0.001 s ... 3600 s */

typedef struct sched_task_meter {
    _Atomic uint64_t done;    /* instances that ran and succeeded */
    _Atomic uint64_t cached;  /* instances served (cache, or the record of a resumed run) */
    _Atomic uint64_t failed;  /* instances failed (after their retries, or served failed) */
    _Atomic int64_t running;  /* instances with the executor (a gauge) */
    _Atomic uint64_t missed;  /* instances looked up in the history and not found */
    _Atomic uint64_t known;   /* instances the run has come to (their call or expansion opened) */
    _Atomic uint64_t skipped; /* instances known that will not run: a producer failed */
    _Atomic uint64_t bucket[SCHED_METER_NBOUNDS + 1]; /* executions per duration bucket */
    _Atomic double seconds;   /* sum of the execution durations */
} sched_task_meter;

typedef struct sched_meter {
    uint32_t n_tasks;         /* entries of task (the plan's task count) */
    sched_task_meter *task;   /* by plan task */
    _Atomic uint64_t known;   /* instances known so far (sched_counts.total) */
    _Atomic uint64_t finished;/* instances finished (sched_counts.done) */
    _Atomic int64_t running;  /* instances with the executor */
} sched_meter;

struct recorder; /* recorder.h: history, cache and stored outputs; NULL runs without state */

typedef struct sched_opts {
    int jobs;                      /* instances running at once (-j); <= 0: 1 */
    int64_t max_map;               /* default largest expansion when a task sets none; 0: 100000 */
    int breadth;                   /* 1: breadth-first order (--schedule breadth) */
    const char *work_dir;          /* where instance output/scratch folders go; NULL: none made */
    size_t work_root_len;          /* its first bytes (the state directory) are resolved as usual;
                                      folders after them are made refusing links (fsdir.h) */
    volatile sig_atomic_t *stop;   /* set (by a signal handler) to stop the run; may be NULL */
    const sched_observer *obs;     /* told the progress and the summary; NULL: nobody */
    const struct recorder *rec;    /* record, cache and resume through this; NULL: none */
    sched_meter *meter;            /* counted as the run goes (above); NULL: not counted */
    int dry_run;                   /* --dry-run (dryrun.c): a failed instance stands for one
                                      that would run, its value unknown: no retries, and
                                      whatever reads it (an all_done task, a map or filter
                                      over a partly failed list) settles as upstream failed */
} sched_opts;

typedef struct sched_outcome {
    int code;               /* 0 result produced, 1 a task failed, 2 out of memory,
                               3 interrupted */
    int has_result;         /* 1: result holds the flow's return value */
    fl_val result;        /* new reference (graph's ret type) when has_result */
    uint64_t n_instances;   /* task instances created */
    uint64_t n_ok;          /* instances that succeeded */
    uint64_t n_failed;      /* instances that failed (after their retries) */
    uint64_t n_skipped;     /* instances not run because an upstream failed */
    uint64_t n_attempts;    /* executions, retries included */
    uint64_t n_served;      /* instances served from the cache or a resumed run */
} sched_outcome;

/* Run graph `graph` (a flow) of plan p with the parameter values params[0 ..
 * graph's nparams) (borrowed). Returns out->code; the progress and the summary of
 * failures go to opts->obs. Never exits the process and never prints.
 *
 * The scheduler allocates through the plan's context (p->ctx). When an allocation
 * fails, the context's sink holds FL_ENOMEM and its message; no new work starts,
 * the instances the executor holds are waited for (unless opts->stop is set: then
 * as for an interrupt) and released, everything the run made is freed, and
 * sched_run returns 2 (out->has_result 0; the counts say how far it got). */
int sched_run(const fl_plan *p, rt_executor *ex, uint32_t graph, const fl_val *params,
              const sched_opts *opts, sched_outcome *out);

/* A node's name as the summary gives it (its binding, or its task or group). */
const char *sched_node_stem(const fl_plan *p, uint32_t node);

/* ---- parameters (params.c) ---- */

/* The values of graph `graph`'s parameters: from kv ("name=value" texts, as
 * given to --param; they win), then the YAML mapping in yaml_file (may be
 * NULL), then the declared defaults. Each is parsed and checked against its
 * type. 0 with out[0 .. nparams) filled (new references), or -1 with one line in
 * err and nothing to release. */
int params_resolve(const fl_plan *p, uint32_t graph, char *const *kv, int nkv,
                   const char *yaml_file, fl_val *out, char *err, size_t errlen);
/* The same with one more layer between yaml_file and the defaults: the mapping
 * `envs: ENV: params:` of the configuration file env_file (flow.yaml; either
 * NULL: none). A name there the flow does not have is an error with its
 * FILE:LINE:COL. */
int params_resolve_env(const fl_plan *p, uint32_t graph, char *const *kv, int nkv,
                       const char *yaml_file, const char *env_file, const char *env, fl_val *out,
                       char *err, size_t errlen);

#endif /* FLOW_SCHED_H */
