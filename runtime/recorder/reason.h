/*
 * reason.h — the reason engine: why an instance whose key has no cache entry runs
 * (issue 14, deliverable 3; `flowrun why` of issue 17 reuses it). Layer: recorder.
 *
 * An answer is one of: no entry (the instance never ran, or its earlier entry is
 * gone); the code changed (the task's identity differs from its earlier entry's:
 * `version`, library, command); input `x` changed (the hash of that argument
 * differs; for a file or folder, the files); a new file (a `path` never hashed
 * before); file metadata changed (a file's size or
 * times differ from the file-identity index and --dry-run did not hash it); and the
 * answers that need no comparison: `cache: false`, --no-cache.
 *
 * "The entry this instance had before" is found through the history: the newest
 * runs of the same flow (at most RSN_RUNS, newest first) are read once each, when
 * first needed, into a table by the instance's name (its name template and index
 * path, so a plan edited since still finds its instances); the first of them whose
 * record of the instance has a cache key gives the key, and the key its cache entry
 * (state_cache_entry_get), whose parts (cachekey.h ck_key_parts: the identity's first
 * 8 bytes, one hash per argument) are compared with the instance's parts now.
 *
 * For `why` (issue 17): rsn_before finds the earlier entry of an instance in runs
 * older than a given one, and rsn_compare says how two sets of parts differ; the
 * parts of an instance that ran are those of its own cache entry.
 */
#ifndef FLOW_REASON_H
#define FLOW_REASON_H

#include <stdint.h>

#include "cachekey.h"
#include "recorder.h"
#include "state.h"

#define RSN_RUNS 4 /* earlier runs of the flow searched for an instance's earlier record */

typedef enum rsn_kind {
    RSN_NO_ENTRY,     /* nothing to compare: never ran, or its earlier entry is gone */
    RSN_CODE,         /* the task's identity changed */
    RSN_INPUT,        /* argument `param` changed */
    RSN_FILE_META,    /* a file of argument `param` changed size or times (not hashed) */
    RSN_UNREADABLE,   /* an input could not be read (the task will meet it) */
    RSN_NOT_CACHED,   /* `cache: false` */
    RSN_NO_CACHE,     /* --no-cache */
    RSN_REFUSED,      /* the recorder refused it (a damaged stored input) */
    RSN_UNKNOWN,      /* the key differs but the entry has no parts (older flowrun) */
    RSN_NEW_FILE      /* a `path` argument names a file never hashed before */
} rsn_kind;

/* The names of the kinds as --json writes them ("no_entry", "code_changed", ...). */
const char *rsn_kind_name(rsn_kind k);

typedef struct rsn_reason {
    rsn_kind kind;
    int param;         /* RSN_INPUT, RSN_FILE_META: the parameter's index, else -1 */
    int64_t prev_run;  /* the run whose record was compared, or 0 */
    char text[640];    /* for people: "input `n` changed", "the code changed: version \"2\"" */
} rsn_reason;

/* The key's parts of one entry or instance (ck_key_parts). */
typedef struct rsn_parts {
    uint64_t identity;
    uint32_t ninputs;   /* 0: unknown */
    const uint64_t *inputs;
} rsn_parts;

typedef struct rsn_ctx rsn_ctx;

/* An engine over state st for runs of `flow`, computing parts through cx (its
 * no_read flag decides whether a changed file is hashed). NULL when out of memory. */
rsn_ctx *rsn_open(fl_ctx *ctx, const fl_plan *p, fl_state *st, ck_ctx *cx, const char *flow);
void rsn_close(rsn_ctx *r);

/* Why instance ii (its task, tmpl, idx) on args has no entry: *out filled. */
void rsn_explain(rsn_ctx *r, const rec_inst *ii, const fl_val *args, rsn_reason *out);

/* How many runs rsn_before looked in (at most RSN_RUNS), after a call. */
int rsn_runs_looked(const rsn_ctx *r);
/* The earlier entry of the instance named by (tmpl, idx) in the newest runs of the
 * flow older than `before` (0: any): 1 found (*e filled, *run its run; fl_free
 * e->val on state_ctx), 0 none, -1 error. */
int rsn_before(rsn_ctx *r, const char *task, const char *tmpl, const char *idx, int64_t before,
               state_cache_entry *e, int64_t *run);

/* How `now` differs from `then` for task (the first difference, as rsn_explain says
 * it); RSN_NO_ENTRY when they do not differ. */
void rsn_compare(rsn_ctx *r, uint32_t task, const rsn_parts *now, const rsn_parts *then,
                 rsn_reason *out);

#endif
