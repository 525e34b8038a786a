/*
 * exec_process.h — the process executor's one extra entry point.
 *
 * rt_executor_process (exec.h) runs every job with rt_call_task in a pool of
 * forked workers. rt_executor_process_with runs them with another function
 * instead, in the same pool and through the same protocol: unit tests use it
 * to drive the pool with hand-written job runners (crashing, hanging,
 * printing) without building a plan for each case. Nothing else should need it.
 */
#ifndef FLOW_EXEC_PROCESS_H
#define FLOW_EXEC_PROCESS_H

#include "exec.h"

/* Runs one job in a worker; same contract as rt_call_task. */
typedef void (*rt_job_runner)(void *ctx, const rt_job *job, rt_result *res);

/* A process pool over `plan` (argument and result types come from it) whose
 * workers call run(ctx, job, res) for each job. NULL with errno on failure. */
rt_executor *rt_executor_process_with(const flow_plan *plan, int nworkers, rt_job_runner run,
                                      void *ctx);

#endif /* FLOW_EXEC_PROCESS_H */
