/*
 * history.h — what a run leaves behind: history, cache, stored outputs, logs.
 *
 * The scheduler calls three hooks around every instance:
 *
 *   hist_lookup    before it runs: on resume, an instance the run already
 *                  finished is served from its recorded result; otherwise, when
 *                  caching applies, an instance whose key is in the cache is
 *                  served from the cache (after checking that every stored
 *                  file the result refers to is intact). 1 = served;
 *                  -1 = a stored file among its arguments is damaged (it has
 *                  been quarantined): the instance fails with ii->error.
 *   hist_finished  after it ran (or was served): outputs inside the instance's
 *                  output directory move into the store and the result is
 *                  rewritten to point at them; the result goes into the cache
 *                  and the instance's row into state.db; its log into logs/.
 *   hist_commit    after each batch of completions, before the scheduler acts
 *                  on them (releases dependants): one transaction per batch.
 *
 * With hist == NULL every hook is a no-op, so the scheduler runs without state.
 */
#ifndef FLOW_HISTORY_H
#define FLOW_HISTORY_H

#include <stdint.h>

#include "exec.h"
#include "plan.h"
#include "state.h"
#include "store.h"
#include "value.h"

typedef struct hist hist;

typedef struct hist_opts {
    fl_ctx *ctx;              /* allocation and log lines; NULL: the plan's (plan->ctx) */
    const flow_plan *plan;    /* the plan being run */
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
} hist_opts;

typedef struct hist_inst {
    uint32_t node;       /* plan node of the call or expansion */
    uint32_t task;       /* plan task */
    const char *idx;     /* "" unmapped, "3", "2/5" below an expanded group */
    const char *tmpl;    /* its name template ("per_n[]/square[]", state_inst_name), or NULL */
    const char *out_dir; /* the instance's output directory, or NULL */
    const char *label;   /* the label lambda's text, or NULL */
    int attempts;        /* executions so far */
    int64_t remaining;   /* elements of its mapping from this one to the end (1 if unmapped) */
    int has_key;         /* key holds the instance's cache key */
    flow_hash key;       /* filled by hist_lookup */
    char *error;         /* hist_lookup returned -1: why (malloc'ed, the caller frees) */
} hist_inst;

/* Open the state directory and start (or reopen) the run. NULL + err on failure. */
hist *hist_open(const hist_opts *o, char *err, size_t errlen);
int64_t hist_run_id(const hist *h);
const char *hist_state_dir(const hist *h);

int hist_lookup(hist *h, hist_inst *ii, const flow_val *args, flow_val *out);
/* res: the executor's result (ok or failed after its retries). On success its value
 * may be replaced (stored outputs). served: 1 when hist_lookup served it. */
void hist_finished(hist *h, hist_inst *ii, const flow_val *args, rt_result *res, int served);
void hist_commit(hist *h);
/* Finish the run: state "succeeded" | "failed" | "interrupted", the result as JSON or NULL.
 * Everything recorded is committed when it returns. 0, or -1 when some of the run's
 * history could not be recorded (the reason was said on stderr). */
int hist_close(hist *h, const char *state, int exit_code, const char *result_json,
               const char *error);

/* Statistics for the summary line. */
typedef struct hist_stats {
    long served_cache, served_resume, stored_outputs, files_hashed, files_known;
} hist_stats;
void hist_get_stats(const hist *h, hist_stats *s);

#endif /* FLOW_HISTORY_H */
