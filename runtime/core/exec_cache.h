/*
 * exec_cache.h — the cache executor: a wrapper around any executor that answers
 * from a recorder (cache hits, and on resume what the run already finished) and
 * passes the misses on. Layer: core. Its design is at the top of exec_cache.c.
 *
 * Ownership: the wrapper borrows inner, the plan, the recorder and the hooks'
 * ud; its destroy frees only itself (and any answer not handed out), never the
 * inner executor, which its owner destroys after it.
 */
#ifndef FLOW_EXEC_CACHE_H
#define FLOW_EXEC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "plan.h"
#include "recorder.h"

/* The owner's side: what only the one submitting the jobs knows. */
typedef struct rt_cache_hooks {
    /* Describe job for the recorder's lookup: fill ii (node, task, idx, tmpl,
     * attempts, remaining); idx and tmpl are buffers of len bytes it may use. */
    void (*describe)(void *ud, const rt_job *job, rec_inst *ii, char *idx, char *tmpl,
                     size_t len);
    /* The lookup's answer for job: hit (1 served, 0 miss, -1 refused) and the key it
     * computed (ii->has_key, ii->key). On a miss, job (the wrapper's copy, passed
     * on) may still be prepared (out_dir, scratch_dir); return 0 to run it, or -1
     * with one line in err: the job is answered as failed instead. */
    int (*looked_up)(void *ud, rt_job *job, const rec_inst *ii, int hit, char *err,
                     size_t errlen);
    /* Per plan task: 1 when its jobs are looked up (the recorder's lookup_needed),
     * 0 when they go straight to the inner executor, neither described nor
     * looked up nor told to looked_up (the owner prepares them itself). NULL:
     * every task's jobs are looked up. Borrowed for the wrapper's life. */
    const uint8_t *look;
    void *ud;
} rt_cache_hooks;

/* The wrapper around inner; NULL when out of memory. */
rt_executor *rt_executor_cache(rt_executor *inner, const fl_plan *p, const recorder *rec,
                               const rt_cache_hooks *hooks);

#endif /* FLOW_EXEC_CACHE_H */
