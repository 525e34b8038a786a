/*
 * exec_split.h — an executor that sends each job to one of two executors by its
 * task (exec_split.c): under --executor process, the jobs of `image:` tasks go to
 * a pool that runs them through podman and the others to the ordinary pool.
 */
#ifndef FLOW_EXEC_SPLIT_H
#define FLOW_EXEC_SPLIT_H

#include "exec.h"

/* Jobs of task t go to b when to_b[t] (p->n_tasks entries, copied), else to a. The
 * split owns a and b from here on (destroyed with it). NULL with errno (ENOMEM);
 * then a and b are still the caller's. */
rt_executor *rt_executor_split(const fl_plan *p, rt_executor *a, rt_executor *b,
                               const unsigned char *to_b);

/* ex (the process executor of a run of flow `graph`), or, when the run reaches an sh
 * task with image:, the split of ex and a pool for those tasks' jobs
 * (rt_executor_process_containers, nworkers workers, secrets sec). Takes ex over:
 * on failure (NULL, errno) ex is destroyed. */
struct fsec_set;
rt_executor *rt_executor_with_containers(rt_runtime *rt, uint32_t graph, rt_executor *ex,
                                         int nworkers, const struct fsec_set *sec);
/* The same for the tasks marked in tasks (p->n_tasks entries) instead of those a
 * flow reaches: flowrun worker's element (cli_worker.c). */
rt_executor *rt_executor_with_containers_for(rt_runtime *rt, const unsigned char *tasks,
                                             rt_executor *ex, int nworkers,
                                             const struct fsec_set *sec);

#endif /* FLOW_EXEC_SPLIT_H */
