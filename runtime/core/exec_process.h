/*
 * exec_process.h — the process executor's one extra entry point.
 *
 * rt_executor_process (exec.h) runs every job with rt_call_task in a pool of
 * forked workers. rt_executor_process_with runs them with another function
 * instead, in the same pool and through the same protocol: unit tests use it
 * to drive the pool with hand-written job runners (crashing, hanging,
 * printing) without building a plan for each case. Nothing else should need it.
 * rt_executor_process_ro is what flowrun uses: the same pool, with the store
 * shown read-only to the workers.
 */
#ifndef FLOW_EXEC_PROCESS_H
#define FLOW_EXEC_PROCESS_H

#include "exec.h"

/* Runs one job in a worker; same contract as rt_call_task. */
typedef void (*rt_job_runner)(void *ctx, const rt_job *job, rt_result *res);

/* A process pool over `plan` (argument and result types come from it) whose
 * workers call run(ctx, job, res) for each job. NULL with errno on failure. */
rt_executor *rt_executor_process_with(const fl_plan *plan, int nworkers, rt_job_runner run,
                                      void *ctx);

/* rt_executor_process whose workers, when flowrun runs as root, see ro_dir (the
 * store) through a read-only bind mount in a mount namespace of their own, so no
 * task can write into it. ro_dir must exist. NULL with errno on failure. */
rt_executor *rt_executor_process_ro(rt_runtime *rt, int nworkers, const char *ro_dir);

/* rt_executor_process_ro for a run in which some task declares secrets, or that is
 * kept off other environments' roots: sec (borrowed; it outlives the executor), when
 * not NULL, holds the secrets, and each job of a task with secrets gets a fresh
 * worker (secrets.c, docs/secrets.md). With sec or pidns, every worker gets a pid
 * namespace of its own. */
struct fsec_set;
rt_executor *rt_executor_process_sec(rt_runtime *rt, int nworkers, const char *ro_dir,
                                     const struct fsec_set *sec, int pidns);

/* The pool for the jobs of image: tasks (exec_split.c routes them here): the same
 * workers, except that they keep CAP_SYS_ADMIN (podman, which they run, needs it:
 * the task itself runs in the container), see the store as flowrun does (the
 * container does not see it at all: sh.c mounts only a job's inputs and outputs),
 * get no cgroup and do not switch identity for run_as (podman's --memory,
 * --pids-limit and --user do). sec as for rt_executor_process_sec. */
rt_executor *rt_executor_process_containers(rt_runtime *rt, int nworkers,
                                            const struct fsec_set *sec);

#endif /* FLOW_EXEC_PROCESS_H */
