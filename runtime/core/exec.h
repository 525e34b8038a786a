/*
 * exec.h — running one task instance, and the executors that run many.
 *
 * The scheduler (sched.c) decides WHAT runs; an executor decides WHERE: in a
 * thread of flowrun (inline) or in a pool of worker processes (process). Both
 * end in rt_call_task, which runs one unit in the calling thread: a C task
 * through libffi, an sh task as a child process, a combine as its two halves
 * with the hand-over in memory.
 *
 * Work goes to an executor in batches and comes back in batches, so the
 * per-instance cost is a few stores, not a thread wake-up (see FLOOR.md).
 */
#ifndef FLOW_EXEC_H
#define FLOW_EXEC_H

#include <stdint.h>

#include "plan.h"
#include "value.h"

typedef struct rt_runtime rt_runtime; /* a loaded plan with its libraries linked (link.c) */

/* Load-time: open the libraries of the plan (next to plan_path, then
 * FLOW_LIBRARY_PATH), compare content hashes (a warning; strict: an error),
 * resolve every symbol and prepare every libffi call interface. NULL with one
 * line in err (naming task, library and symbol) on failure. */
rt_runtime *rt_open(const fl_plan *plan, const char *plan_path, int strict, char *err,
                    size_t errlen);
void rt_close(rt_runtime *rt);
/* The root of the run's environment that flow_env_root() gives tasks (NULL: none);
 * set before the executor starts (process workers are forked with it). -1 when
 * out of memory. */
int rt_set_env_root(rt_runtime *rt, const char *root);
const fl_plan *rt_plan(const rt_runtime *rt);

typedef struct rt_job {
    uint64_t id;             /* the scheduler's instance id, echoed in the result */
    uint32_t task;           /* plan task */
    int64_t map_index;       /* -1 when not mapped (flow_map_index()) */
    const fl_val *args;    /* the task's nparams arguments (borrowed until the result) */
    const char *out_dir;     /* this instance's output directory (exists), or NULL */
    const char *scratch_dir; /* this instance's scratch directory (exists), or NULL */
    int64_t timeout_ms;      /* 0: none (the process executor enforces it) */
    uint32_t attempt;        /* 0 the first run, n the nth retry (exec_cache.c looks up only 0) */
} rt_job;

typedef struct rt_result {
    uint64_t id;       /* the job's id */
    int ok;            /* 1: value holds the result; 0: error holds why */
    fl_val value;    /* new reference, of the task's return type (ignored for void) */
    char *error;       /* one-line message when !ok; NULL when even that could not be
                          allocated (out of memory: the scheduler ends the run) */
    char *log;         /* captured log (flow_log lines, stdout, stderr) or NULL */
    int term_signal;   /* signal that ended the worker, or 0 */
    int worker_pid;    /* process that ran it (flowrun itself when inline) */
    double start, end; /* wall clock, seconds since the epoch */
    int64_t peak_rss_kb; /* of the worker, where known; else 0 */
    int64_t cpu_ns;    /* CPU time (user + system) it took, where cpu_known: an sh */
    int cpu_known;     /* command's from wait4; else the inline executor's estimate */
} rt_result;

/* error and log are allocated through the plan's context (p->ctx): whoever ends up
 * owning a result gives them back there, as rt_result_clear does. */
void rt_result_clear(const fl_plan *p, uint32_t task, rt_result *r);

/* Run one unit in the calling thread. Fills res (res->id = job->id). Never longjmps
 * out; a flow_fail() in the task gives res->ok = 0 with its message. */
void rt_call_task(rt_runtime *rt, const rt_job *job, rt_result *res);

/* ---- executors ---- */
typedef struct rt_executor rt_executor;
typedef struct rt_executor_ops {
    const char *name;
    /* Queue n jobs; never blocks for long. The executor copies what it keeps of
     * each job struct; the args arrays stay valid until the job's result is
     * returned by wait. 0, or -1 (out of memory) when it took none of them: all
     * or nothing, so the caller knows which jobs will come back. */
    int (*submit)(rt_executor *ex, const rt_job *jobs, int n);
    /* Wait up to timeout_ms (-1: until one completes) for finished jobs; store up
     * to max of them in out and return how many (0 on timeout). */
    int (*wait)(rt_executor *ex, rt_result *out, int max, int timeout_ms);
    /* Stop workers; jobs still running are abandoned. */
    void (*destroy)(rt_executor *ex);
} rt_executor_ops;

struct rt_executor {
    const rt_executor_ops *ops;
    /* Instances per worker it wants queued behind the running one when tasks
     * take under about 5 ms (0 counts as 1): the process executor answers those
     * in pairs, so it needs more in hand (exec_process.c, px_child_should_flush). */
    int queued;
    /* Jobs it wants in flight in all (0: unused; the scheduler then sizes it from -j
     * and task times): the remote executor sets it to fill its slots with elements
     * of the size it chose (remote.h), and keeps it updated. */
    int capacity;
};

rt_executor *rt_executor_inline(rt_runtime *rt, int nthreads);
/* The inline executor, with this for run_as: when flowrun is root, jobs of tasks
 * whose run_as names another user run in a small process pool it owns
 * (exec_inline.c, RUN_AS), whose workers see ro_dir (the store; NULL: none)
 * read-only. rt_executor_inline is this with ro_dir NULL. NULL with errno when
 * the threads or that pool cannot be started. */
rt_executor *rt_executor_inline_ro(rt_runtime *rt, int nthreads, const char *ro_dir);
/* Crash reporting for inline tasks (exec_inline.c), for the program's own signal
 * and atexit handlers (flowrun's: cli_ctx.c). Async-signal-safe. When the calling
 * thread is running a task of an inline executor, writes into marker the marker
 * file's line naming the instance ("task sq[3] crashed flowrun (signal 11,
 * Segmentation fault) under the inline executor\n"; sig 0: "called exit()") and
 * into line the one stderr line for run `run`, and returns 0; else -1. */
int rt_inline_crash_describe(int sig, int64_t run, char *marker, size_t mcap, char *line,
                             size_t lcap);
rt_executor *rt_executor_process(rt_runtime *rt, int nworkers);

#endif /* FLOW_EXEC_H */
