/*
 * flow_sched.h — the scheduler (not "sched.h": that name would hide the system <sched.h>): runs one
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
#include <stdint.h>
#include <stdio.h>

#include "exec.h"
#include "plan.h"
#include "value.h"

#define SCHED_DEFAULT_MAX_MAP 100000
#define SCHED_MAX_LIST (1LL << 28) /* largest list a built-in (range, files, ...) builds */
#define SCHED_MAX_NESTING 64       /* groups calling groups: deepest scope chain */
#define SCHED_MAX_FAIL_LINES 50    /* failed instances listed one per line in the summary */

typedef enum sched_progress {
    SCHED_PROGRESS_NONE,
    SCHED_PROGRESS_PLAIN,
    SCHED_PROGRESS_LIVE
} sched_progress;

struct recorder; /* recorder.h: history, cache and stored outputs; NULL runs without state */

typedef struct sched_opts {
    int jobs;                      /* instances running at once (-j); <= 0: 1 */
    int64_t max_map;               /* default largest expansion when a task sets none; 0: 100000 */
    int breadth;                   /* 1: breadth-first order (--schedule breadth) */
    sched_progress progress;       /* progress lines on err */
    const char *work_dir;          /* where instance output/scratch folders go; NULL: none made */
    size_t work_root_len;          /* its first bytes (the state directory) are resolved as usual;
                                      folders after them are made refusing links (fsdir.h) */
    volatile sig_atomic_t *stop;   /* set (by a signal handler) to stop the run; may be NULL */
    FILE *err;                     /* progress and summary; NULL: stderr */
    const struct recorder *rec;    /* record, cache and resume through this; NULL: none */
} sched_opts;

typedef struct sched_outcome {
    int code;               /* 0 result produced, 1 a task failed, 3 interrupted */
    int has_result;         /* 1: result holds the flow's return value */
    flow_val result;        /* new reference (graph's ret type) when has_result */
    uint64_t n_instances;   /* task instances created */
    uint64_t n_ok;          /* instances that succeeded */
    uint64_t n_failed;      /* instances that failed (after their retries) */
    uint64_t n_skipped;     /* instances not run because an upstream failed */
    uint64_t n_attempts;    /* executions, retries included */
    uint64_t n_served;      /* instances served from the cache or a resumed run */
} sched_outcome;

/* Run graph `graph` (a flow) of plan p with the parameter values params[0 ..
 * graph's nparams) (borrowed). Returns out->code; the summary of failures goes to
 * opts->err. Never exits the process. */
int sched_run(const flow_plan *p, rt_executor *ex, uint32_t graph, const flow_val *params,
              const sched_opts *opts, sched_outcome *out);

/* ---- parameters (params.c) ---- */

/* The values of graph `graph`'s parameters: from kv ("name=value" texts, as
 * given to --param; they win), then the YAML mapping in yaml_file (may be
 * NULL), then the declared defaults. Each is parsed and checked against its
 * type. 0 with out[0 .. nparams) filled (new references), or -1 with one line in
 * err and nothing to release. */
int params_resolve(const flow_plan *p, uint32_t graph, char *const *kv, int nkv,
                   const char *yaml_file, flow_val *out, char *err, size_t errlen);

#endif /* FLOW_SCHED_H */
