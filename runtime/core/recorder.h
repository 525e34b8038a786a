/*
 * recorder.h — the recorder interface: what the scheduler (and any executor that
 * serves results without running them) asks of whatever keeps a run's history.
 * Layer: recorder (the interface); history.c is its one implementation today
 * (state.db + store + cache), opened with hist_open and closed with hist_close.
 *
 * DESIGN
 *   A recorder is an instance pointer and a table of five functions, in the
 *   manner of rt_executor (exec.h). The scheduler holds one (NULL: the run keeps
 *   no history, and nothing below is called: no per-instance cost). When the run
 *   begins the scheduler asks lookup_needed once per task; the cache wrapper
 *   (exec_cache.c) calls lookup for each job of a task that needs it; the scheduler
 *   calls finished for each instance that ends, queue_batch after each batch of
 *   completions, sync before an effect (see DURABILITY), and the owner calls sync
 *   (or the implementation's close) at the end. All four are called from one
 *   thread, the scheduler's.
 *
 * DURABILITY — what is on disk when each call returns (history.c over state.c):
 *   lookup       nothing new in state.db. It reads; what it learns is buffered
 *                and queued with the next batch (a damaged cache entry it found is
 *                dropped, an input file it hashed has its identity noted), and a
 *                damaged stored file is quarantined in the store at once (a rename).
 *   finished     the instance's outputs are in the store, each object fsynced and
 *                renamed into place before it returns; its log file is written (not
 *                fsynced). Its row and cache entry are only buffered in memory:
 *                NOT on disk, and not yet queued.
 *   queue_batch  the rows buffered since the last call are handed, as one batch,
 *                to state.c's writer thread; it returns before they are written
 *                (it waits only when more than 64 MiB are queued). A batch
 *                under 32 KiB and less than 10 ms old is instead held for the
 *                next calls to add to (answer 1: the scheduler then calls again
 *                within REC_HOLD_MS), so a batch waits at most about 20 ms more
 *                (the writer groups by 50 ms anyway). What it
 *                guarantees is ORDER: the writer applies batches in the order they
 *                were queued, inside committed transactions, so state.db always
 *                holds a prefix of the queued batches. Commits are GROUPED BY TIME:
 *                the writer begins a transaction at most every 50 ms (unless a
 *                sync waits, or 32 MiB are queued) and takes every batch queued
 *                meanwhile into it, so a batch may stay unwritten for about 50 ms
 *                plus one transaction (70 ms with a hold). The scheduler queues a batch before it
 *                releases the dependants of its instances, so a flowrun killed at
 *                any moment leaves no instance recorded without the producers it
 *                read; what was queued but not written is done again on resume
 *                (at most the last ~70 ms of finished instances, and only those
 *                no effect has read: see sync). New cache entries may be held by
 *                the writer for up to 5 seconds (written sorted); one lost to a
 *                kill is a miss.
 *   sync         queues what finished buffered since the last batch (as
 *                queue_batch does), then waits: everything queued, held cache
 *                entries included, is committed to state.db (its write-ahead
 *                log): it survives flowrun being killed. state.db runs with
 *                synchronous=NORMAL, so a power loss may still undo the last
 *                transactions until a checkpoint (hist_close checkpoints).
 *                DURABLE BEFORE AN EFFECT: the scheduler calls sync before it
 *                starts an instance of a task that is not cached (`cache: false`:
 *                an effect on the world) whenever it has told finished of
 *                instances since its last sync, so the results an effect reads
 *                are committed before it starts: a kill can never make them run
 *                again against an effect already done. (A task run outside this
 *                machine would be held to the same rule; no executor does that
 *                today.) When sync fails (-1, said by the recorder once) the
 *                effect does not start and the run ends with code 1.
 *                The owner also calls sync at the end of a run.
 *   Where these say "on disk" they mean "in the file system": survives the
 *   process, not necessarily the machine, except where fsync is named.
 *
 * Ownership: rec_inst strings are borrowed for the call; lookup's *out is a new
 * reference the caller owns; finished may replace res->value and res->error (the
 * result stays owned by the caller; an error it writes comes from the plan's
 * context, as exec.h says of rt_result, and so does lookup's ii->error).
 */
#ifndef FLOW_RECORDER_H
#define FLOW_RECORDER_H

#include <stdint.h>

#include "exec.h"
#include "plan.h"
#include "digest.h"
#include "value.h"

/* One instance as the recorder sees it. */
typedef struct rec_inst {
    uint32_t node;       /* plan node of the call or expansion */
    uint32_t task;       /* plan task */
    const char *idx;     /* "" unmapped, "3", "2/5" below an expanded group; in
                            `finished`, NULL when idx_is_k (rec_inst_idx writes it) */
    int idx_is_k;        /* the index is the number idx_k (a mapped instance outside any
                            group): a recorder can store the number, not the text */
    uint64_t idx_k;
    const char *tmpl;    /* its name template ("per_n[]/square[]", plan_inst_name), or NULL */
    const char *out_dir; /* the instance's output directory, or NULL */
    const char *label;   /* the label lambda's text, or NULL */
    int attempts;        /* executions so far */
    int64_t remaining;   /* elements of its mapping from this one to the end (1 if unmapped) */
    int has_key;         /* key holds the instance's cache key */
    fl_digest key;       /* filled by lookup */
    char *error;         /* lookup returned -1: why (the plan's context, as a result's error) */
} rec_inst;

/* ii's index as text: ii->idx, or idx_k written in buf (len bytes, 21 are enough). */
const char *rec_inst_idx(const rec_inst *ii, char *buf, size_t len);

typedef struct rec_ops {
    const char *name;
    /* Asked once per plan task when the run begins: can lookup do anything for
     * this task's instances in this run (serve one, compute a key, refuse one)?
     * 0: lookup would answer 0 with no key for every instance of it, and is not
     * called for them (a `cache: false` task, or --no-cache, with nothing to
     * resume and no stored file among its parameters: the hot path then pays
     * nothing for the lookup). 1: lookup is called for each first attempt. */
    int (*lookup_needed)(void *self, uint32_t task);
    /* Before an instance runs: serve it from what was recorded. On resume, an
     * instance the run already finished is served from its recorded result;
     * otherwise, when caching applies, from the cache (every stored file the result
     * refers to checked intact first). Sets ii->has_key/key when a key applies.
     * 1 served (*out holds the value); 0 run it; -1 a stored file among its
     * arguments is damaged (quarantined): the instance fails with ii->error. */
    int (*lookup)(void *self, rec_inst *ii, const fl_val *args, fl_val *out);
    /* After it ran (ok, or failed after its retries) or was served (served = 1):
     * outputs inside ii->out_dir move into the store and res->value is rewritten to
     * point at them (a failure to store fails res); the row and cache entry are
     * buffered; the log goes to the log file. */
    void (*finished)(void *self, rec_inst *ii, const fl_val *args, rt_result *res,
                     int served);
    /* End of a batch of completions: queue what finished buffered (see above).
     * 0; 1 when it holds them for a later call (the caller calls again within
     * REC_HOLD_MS, even when nothing more finishes); -1 when the history can no
     * longer be written (said once). */
    int (*queue_batch)(void *self);
    /* Queue what finished buffered (as queue_batch), then wait until everything
     * queued is committed. 0, or -1 as queue_batch. */
    int (*sync)(void *self);
} rec_ops;
#define REC_HOLD_MS 10 /* queue_batch: the longest a caller waits before calling again
                        * when it answered 1 */

typedef struct recorder {
    const rec_ops *ops;
    void *self; /* the implementation's instance (history.c: a hist) */
} recorder;

#endif /* FLOW_RECORDER_H */
