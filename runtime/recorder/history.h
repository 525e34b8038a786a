/*
 * history.h — what a run leaves behind: history, cache, stored outputs, logs.
 * Layer: recorder. The one implementation of the recorder interface
 * (recorder.h, which says what each call does and what is on disk when it
 * returns): hist_open makes a hist, hist_recorder hands out its interface,
 * hist_close ends the run and frees it.
 *
 *   lookup       (hist_lookup) on resume, an instance the run already finished is
 *                served from its recorded result; otherwise, when caching
 *                applies, from the cache.
 *   finished     outputs move into the store; the result goes into the cache and
 *                the instance's row into state.db (buffered); its log into logs/.
 *   queue_batch  hands the buffered rows to state.c's writer thread, in order.
 *   sync         waits until they are committed.
 */
#ifndef FLOW_HISTORY_H
#define FLOW_HISTORY_H

#include <stdint.h>

#include "exec.h"
#include "plan.h"
#include "recorder.h"
#include "cachekey.h"
#include "state.h"
#include "store.h"
#include "value.h"

typedef struct hist hist;

typedef struct hist_opts {
    fl_ctx *ctx;              /* allocation and log lines; NULL: the plan's (plan->ctx) */
    const fl_plan *plan;    /* the plan being run */
    rt_runtime *rt;           /* for the loaded libraries' hashes (may be NULL) */
    const char *state_dir;    /* .flow by default */
    const char *plan_path;    /* as given to flowrun */
    const char *flow;         /* the flow's name */
    const char *env;          /* "prod" by default */
    const char *params_json;  /* the run's parameters, as JSON */
    const void *params_blob;  /* and encoded (fv_encode, one after another) */
    size_t params_blob_len;
    const char *options;      /* recorded with the run (state_run.options) */
    int no_cache;             /* --no-cache: neither read nor write the cache */
    int64_t resume_run;       /* > 0: resume this run instead of starting one */
    int dry_run;              /* 1: --dry-run (dryrun.c): no run is begun and nothing is
                               * written (no file index note, no cache entry dropped, no
                               * store lock); lookup hashes no file the index does not
                               * know (a miss); 2: --dry-run --exact: it hashes them */
    const char *logical;      /* a scheduled flow's logical date or time (state_run.logical) */
    const char *events;       /* --events FILE: OpenLineage run events appended (events.h) */
} hist_opts;

/* Open the state directory and start (or reopen) the run. NULL + err on failure. */
hist *hist_open(const hist_opts *o, char *err, size_t errlen);
int64_t hist_run_id(const hist *h);
const char *hist_state_dir(const hist *h);

/* What the reason engine (reason.h) reads: h's state and its cache-key context. */
fl_state *hist_state(hist *h);
ck_ctx *hist_ck(hist *h);
/* The recorder interface of h (recorder.h); valid until hist_close. */
recorder hist_recorder(hist *h);
/* Finish the run: state "succeeded" | "failed" | "interrupted", the result as JSON or NULL.
 * Everything queued is committed when it returns, the run's end state with it, and
 * state.db is checkpointed. 0, or -1 when some of the run's history could not be
 * recorded (the reason was said on stderr). */
int hist_close(hist *h, const char *state, int exit_code, const char *result_json,
               const char *error);

/* Statistics for the summary line. */
typedef struct hist_stats {
    long served_cache, served_resume, stored_outputs, files_hashed, files_known;
    long served_next; /* of served_cache, found as the entry after a recent hit (a cursor) */
    long tc_tables;   /* hash tables built over a task's preloaded cache (tc_index) */
    long cache_gets, cache_packs_most; /* point lookups in the cache, the most packs one
                                        * searched (state_cache_lookup_stats) */
} hist_stats;
void hist_get_stats(const hist *h, hist_stats *s);

#endif /* FLOW_HISTORY_H */
