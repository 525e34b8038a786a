/*
 * state.h — the state database: .flow/state.db (SQLite, WAL).
 *
 * What it holds: runs (one row per flowrun run), instances (one row per task
 * instance of a run: state, attempts, timings, cache key and hit, error, worker
 * pid, peak RSS, label), events (every state change with its time), the cache
 * (instance key -> encoded result), the objects each cached result refers to
 * (for gc), and the file-identity index (path, size, mtime_ns, inode, ctime_ns
 * -> content hash) that lets unchanged files go unread.
 *
 * Writes are buffered and committed in batches (state_commit), so recording a
 * million instances costs one prepared-statement step each, not one commit
 * each. In async mode state_commit only QUEUES the batch for the writer thread:
 * when it returns, nothing new need be on disk. What is promised is order: the
 * writer commits the queued batches in the order queued, every batch queued since
 * its last transaction in one (it begins one at most every 50 ms unless state_sync
 * waits: commits are grouped by time), so state.db always holds a prefix of them,
 * and a flowrun killed at any moment
 * leaves a consistent database: whatever was not committed is simply not done,
 * and is done again on resume. state_sync waits until everything queued is
 * committed. recorder.h says what each recorder call leaves on disk.
 *
 * The schema carries a version and the oldest version whose readers can still
 * use it; opening a database from a newer flowrun that we cannot read gives a
 * clear error, an older one is migrated in place.
 */
#ifndef FLOW_STATE_H
#define FLOW_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "store.h"

#define STATE_SCHEMA_VERSION 9 /* what this flowrun writes */
/* For tests: nonzero makes a fresh state.db by the schema's steps, one by one (as an
 * older one is brought up to date), instead of by the one script of their result. */
extern int state_fresh_by_steps;

typedef struct fl_state fl_state;

/* Open or create dir/state.db (creating dir). NULL + one line in err on failure
 * (including "state.db schema version 7 is newer than this flowrun reads (1)", and
 * "out of memory"). The state keeps ctx (it must outlive the state): its memory comes
 * from ctx, and what goes wrong later (a damaged file, a full disk) is said through
 * ctx's log sink (fl_log), once, at FL_LOG_ERROR; libflow itself never prints. */
fl_state *state_open(fl_ctx *ctx, const char *dir, char *err, size_t errlen);
/* The context the state was opened with (for fl_free of what it hands out). */
fl_ctx *state_ctx(const fl_state *st);
/* DIR/inline-crash.<run>: written by a crash handler (exec_inline.c) as one line naming
 * the instance that crashed flowrun; state_open marks that run failed and removes it. */
#define STATE_CRASH_MARKER "inline-crash."
void state_close(fl_state *st); /* commits what is pending */
/* Commit buffered writes now (in async mode: hand them to the writer thread, which
 * commits them in order). 0 ok, -1 with the error said once through the log sink
 * (or, when a batch could not be allocated, in the context's error sink). */
int state_commit(fl_state *st);
/* The same, for a scheduler round: the caller's read snapshot (its cache and file
 * lookups) is kept for the next rounds until it is 50 ms old, instead of ended now;
 * and in async mode a batch still under 32 KiB and less than 10 ms old is held for
 * the next rounds to add to (1: held; the caller calls again within about 10 ms,
 * or state_commit hands it over). */
int state_commit_round(fl_state *st);
/* Switch instance, cache and file-index writes to a writer thread with its own
 * connection: the caller only appends records, the writer replays them in order,
 * the batches of up to 50 ms per transaction. Reads on the caller's side see what
 * was committed. */
int state_async(fl_state *st);
/* Wait until every write handed over so far is committed. */
int state_sync(fl_state *st);
/* Did any statement on this state fail (damage, a full disk, ...)? Each such
 * error is said once through the log sink when it happens, with what to do about it. */
int state_failed(const fl_state *st);
/* Is the cache empty? 0 when it holds no entry at all (lookups can be skipped). */
int state_cache_any(fl_state *st);

/* ---- runs ---- */
typedef struct state_run {
    int64_t id;
    const char *flow;
    const char *env;         /* "prod" by default */
    const char *params_json; /* the parameters as a JSON object (for people) */
    const void *params_blob; /* the parameter values, fv_encode'd one after another (resume) */
    size_t params_blob_len;
    const char *options;     /* run options that change the outcome, kept for resume:
                              * "max_map=N no_cache=0|1 strict=0|1" */
    const char *plan_path;   /* absolute path of the plan */
    fl_digest plan_hash;     /* SHA-256 of the plan's bytes */
    const char *state;       /* running | succeeded | failed | interrupted */
    double started, ended;   /* seconds since the epoch; ended 0 while running */
    int exit_code;           /* -1 while running */
    const char *result_json; /* the flow's result, or NULL */
    const char *error;       /* why it failed, or NULL */
    int pid;                 /* the owner: the pid of the flowrun running it (or last ran it) */
    const char *host;        /* the owner's host name; NULL if recorded before schema 3 */
    int64_t pid_start;       /* the owner's start time (clock ticks since boot); 0 unknown */
    const char *boot_id;     /* the owner's host's boot id; NULL unknown */
    const char *logical;     /* a scheduled flow's interval: its logical date or time (the
                              * first parameter, canonical text), NULL for other runs */
    int owner;               /* on read, for a run stored as running: STATE_OWNER_* */
    fl_ctx *ctx;             /* on read: the context its strings came from (state_run_free) */
} state_run;

/* A run stored as `running` is read with its owner judged (state.c, "run owners"):
 * ALIVE, REMOTE (on another host, cannot be checked here: still `running`), or
 * GONE (read as state `interrupted`, with an error saying so). NONE: not running. */
enum { STATE_OWNER_NONE, STATE_OWNER_ALIVE, STATE_OWNER_REMOTE, STATE_OWNER_GONE };
#define STATE_RUN_BUSY (-2) /* state_run_reopen: the run's owner is alive */

/* Start a run: fills r->id and r->pid; the owner (this process, host, start time,
 * boot id) is recorded. Committed at once. Runs whose owner is gone are stored as
 * `interrupted` on the way (see "run owners" in state.c). */
int state_run_begin(fl_state *st, state_run *r);
/* Finish (or re-finish, after resume) a run. Committed at once. */
int state_run_end(fl_state *st, int64_t run, const char *state, int exit_code,
                  const char *result_json, const char *error);
/* Mark a run as running again (resume), owned by this process. STATE_RUN_BUSY (and
 * *busy_pid) when its owner on this host is still alive; -1 on error. */
int state_run_reopen(fl_state *st, int64_t run, int *busy_pid);
/* Claim the interval r->logical of flow r->flow in env r->env, in one transaction
 * (exactly once: docs/scheduling.md "Claims"). Returns
 *   STATE_CLAIM_ALREADY  a run of it succeeded (*id); nothing to do (not with rerun)
 *   STATE_CLAIM_BUSY     a run of it is running with a live (or unverifiable remote)
 *                        owner (*id); this process must not run it
 *   STATE_CLAIM_RESUME   its newest run failed or was interrupted (*id): it is now
 *                        running, owned by this process, which resumes it (not with rerun)
 *   STATE_CLAIM_CLAIMED  a new run row (r as state_run_begin; *id = r->id), running,
 *                        owned by this process
 * or -1 on a database error. The owner is the calling process: the process that
 * claims is the one that runs (flowrun run --interval). */
enum { STATE_CLAIM_CLAIMED, STATE_CLAIM_RESUME, STATE_CLAIM_ALREADY, STATE_CLAIM_BUSY };
int state_claim(fl_state *st, state_run *r, int rerun, int64_t *id);
/* When flow was first seen in env (seconds since the epoch): the recorded time, or
 * now_s, recorded, when there is none. 0, or -1 on a database error. */
int state_first_seen(fl_state *st, const char *flow, const char *env, int64_t now_s,
                     int64_t *first);
/* The remote executor's batches (remote.h; only the driver writes them): record that
 * batch `batch` of run `run` was started on `engine` as engine_id (job name `name`,
 * nelem elements, its batch file), committed before it returns; list a run's, in
 * batch order (the strings are valid during the call). 0, or -1 on a database
 * error (said through the state's context). */
int state_batch_add(fl_state *st, int64_t run, uint32_t batch, const char *engine,
                    const char *engine_id, const char *name, uint32_t nelem,
                    const char *batch_file);
int state_batch_list(fl_state *st, int64_t run,
                     void (*each)(void *ud, uint32_t batch, const char *engine,
                                  const char *engine_id, const char *name, uint32_t nelem,
                                  const char *batch_file),
                     void *ud);
/* Load one run; strings are allocated on the state's context into *r (free with
 * state_run_free). -1 if none, -2 on a database error or out of memory. */
int state_run_get(fl_state *st, int64_t run, state_run *r);
void state_run_free(state_run *r);
/* The newest run's id, or 0 when there is none. */
int64_t state_run_latest(fl_state *st);
/* Runs newest first; calls fn for each; stops when fn returns nonzero. */
int state_runs_each(fl_state *st, int (*fn)(const state_run *r, void *ctx), void *ctx);

/* ---- instances ---- */
typedef struct state_inst {
    int64_t run;
    uint32_t node;        /* plan node of the call */
    const char *idx;      /* map index path: "" unmapped, "3", "2/5" inside an expanded group */
    int idx_is_k;         /* written only: the index is the number idx_k (idx is then its
                             text, or NULL: written from the number when needed) */
    uint64_t idx_k;
    const char *task;     /* task name */
    const char *tmpl;     /* the instance's name template (plan_inst_name), e.g.
                             "per_n[]/square[]"; NULL in rows of an older flowrun */
    const char *name;     /* read only (state_insts_each): the composed instance name,
                             "per_n[2]/square[1]" (older rows: "task[idx]") */
    const char *label;    /* label lambda's value, or NULL */
    const char *state;    /* pending running succeeded failed upstream_failed cached skipped
                             (a writer passing state_succeeded or state_cached spares
                             state_inst_put comparing the text) */
    int attempts;
    const fl_digest *cache_key; /* or NULL */
    int cache_hit;
    double started, ended;
    int exit_status;      /* -1 when not applicable */
    int term_signal;      /* 0 when none */
    const char *error;    /* or NULL */
    int worker_pid;
    int64_t peak_rss_kb;
    const void *result;   /* encoded result value (fv_encode), or NULL */
    size_t result_len;
    int cache_store;      /* 1: this computed result serves later lookups of cache_key */
    /* with cache_store, the key's parts kept in the cache entry (cachekey.h,
     * ck_key_parts): the task identity's first 8 bytes, one hash per argument
     * (cache_inputs NULL, or more than 255: unknown, written as none) */
    uint64_t cache_ident;
    const uint64_t *cache_inputs;
    uint32_t cache_ninputs;
} state_inst;

/* Insert or replace an instance's row (buffered) and record the state change in
 * events. Strings are copied by SQLite at once: nothing is borrowed past the call. */
int state_inst_put(fl_state *st, const state_inst *r);
/* The recorder's hot path: a plain finished instance — of a mapped task outside any
 * group (its index the number idx), succeeded or served from the cache, with no
 * label, error, signal or exit status, at its name's peak RSS, its result perhaps
 * entering the cache — is written by state_inst_plain straight into the batch in
 * its packed form, without a state_inst in between: the same bytes as
 * state_inst_put writes for it. The caller keeps a state_plain per name, sets the
 * name's four fields and name = -1 when any of them changes (tmpl is then compared
 * by address: the caller keeps the string while name >= 0), and the instance's
 * fields before each call. 0 written; 1 not plain for this name (another RSS, or a
 * synchronous state): the caller writes it with state_inst_put; -1 out of
 * memory (as state_inst_put). */
typedef struct state_plain {
    int64_t run;            /* the name: (run, node, task, tmpl) */
    uint32_t node;
    const char *task, *tmpl;
    long name;              /* its number in state.c, -1 not yet asked */
    uint64_t idx;           /* the instance: its index, */
    int served;             /* 1 served from the cache (state "cached"), */
    int attempts;
    const fl_digest *key;   /* its cache key or NULL, */
    double started, ended;
    int worker_pid;
    int64_t peak_rss_kb;
    const void *result;     /* its encoded result, NULL for none (void) */
    size_t result_len;
    int cache_store;        /* its result also enters the cache under key, with the */
    uint64_t cache_ident;   /* key's parts (as state_inst's) */
    const uint64_t *cache_inputs;
    uint32_t cache_ninputs;
} state_plain;
int state_inst_plain(fl_state *st, state_plain *pl);
extern const char state_succeeded[], state_cached[]; /* "succeeded", "cached" */
/* Instances of a run in (node, idx) order. Fields point to SQLite memory valid during fn. */
int state_insts_each(fl_state *st, int64_t run, int (*fn)(const state_inst *r, void *ctx),
                     void *ctx);
/* Mark instances to run again on resume: one (idx non-NULL) or every instance of the
 * task (idx NULL). Returns the number cleared. */
int state_inst_clear(fl_state *st, int64_t run, const char *task, const char *idx);
/* The same for one binding: the instances of node with name template tmpl (NULL: rows
 * of an older flowrun), all of them (idx NULL), the one at idx, or, when idx ends in
 * '/', those whose index starts with it. */
int state_inst_clear_at(fl_state *st, int64_t run, uint32_t node, const char *tmpl,
                        const char *idx);
/* Where an instance's log is: DIR/logs/RUN/NAME.log, NAME its instance name with any
 * empty, "." or ".." component shown as "_" (a log never leaves its run's folder).
 * With tmpl NULL (a row of an older flowrun): DIR/logs/RUN/TASK/IDX.log as that flowrun
 * wrote it ("2.5" for the index "2/5", "-" unmapped). 0, or -1 when it does not fit. */
int state_log_path(const char *dir, int64_t run, const char *tmpl, const char *task,
                   const char *idx, char *buf, size_t len);

/* ---- environments ---- */
/* The environment this state's cache lookups serve and its new entries are written
 * as (state.c, "environments"): name NULL or "prod" is prod (the default). create:
 * record the name if new (a run); otherwise a name never recorded uses prod's
 * entries only (a dry run writes nothing). Call it before state_async. 0, or -1 on a
 * database error (or after state_async). Lookups then serve, for prod, prod's
 * entries only; for another environment E, E's and prod's; drops remove E's own. */
int state_env_use(fl_state *st, const char *name, int create);
/* The name of environment id into buf ("#N" when the name was lost). 0, or -1. */
int state_env_name(fl_state *st, uint32_t id, char *buf, size_t len);

/* ---- cache ---- */
/* The encoded result stored under key; *val from the state's context (fl_free it on
 * state_ctx(st)). 1 found, 0 not, -1 error (database, or out of memory).
 * (Entries are written with the instance rows that carry state_inst.cache_store.) */
int state_cache_get(fl_state *st, const char *task, const fl_digest *key, uint8_t **val,
                    size_t *len);
/* A cache entry with the parts of its key (what `flowrun why` and --dry-run read:
 * "input x changed"); zeros where unknown (entries of an older flowrun). */
typedef struct state_cache_entry {
    uint64_t identity;     /* the first 8 bytes of the task's identity hash */
    uint32_t environment;  /* the environment that wrote it: envs.id, 0 prod (state_env_name) */
    int64_t run;           /* runs.id of the run that produced it */
    uint32_t ninputs;      /* one hash per argument, in parameter order */
    uint64_t inputs[255];
    uint8_t *val;          /* the encoded result, from state_ctx(st) (fl_free it) */
    size_t len;
} state_cache_entry;
/* The newest entry of key this state's environment may use: 1 found (*e filled),
 * 0 not, -1 error. */
int state_cache_entry_get(fl_state *st, const char *task, const fl_digest *key,
                          state_cache_entry *e);
/* The newest entry of key that this state's environment may NOT use (the reason
 * engine: "an entry exists, but another environment wrote it"). As above. */
int state_cache_entry_other(fl_state *st, const char *task, const fl_digest *key,
                            state_cache_entry *e);
/* Point lookups (state_cache_get, state_cache_entry_get) on this state so far, the
 * cache packs they searched in all, and the most one lookup searched: a lookup
 * first tries the entry after the task's last hit (no search), then searches the
 * task's packs newest first, at most one per 4,096 of its entries plus 12
 * (docs/state.md, "The cache entry record"). */
void state_cache_lookup_stats(const fl_state *st, long *lookups, long *packs, long *most);
/* How many entries the task's part of the cache holds (tasks of the same name share
 * it, whatever their plan): the entries stored and not dropped, a key stored twice
 * counted twice (a resume enters what it served again; two flowruns may compute the
 * same instance; such copies hold results of the same computation), so an upper
 * bound of the keys it holds (every environment's). And each live entry this state's
 * environment may use, in the order they were produced, oldest pack first (fn
 * returns nonzero to stop). These let a task served from the
 * cache read its entries in one sequential pass. */
int64_t state_cache_count(fl_state *st, const char *task);
int state_cache_each(fl_state *st, const char *task,
                     int (*fn)(const fl_digest *key, const void *val, size_t len, void *ctx),
                     void *ctx);
/* Record the store objects the result under key refers to (kept alive by gc);
 * val, len and run are unused. Buffered. */
int state_cache_put(fl_state *st, const fl_digest *key, const void *val, size_t len,
                    int64_t run, const fl_digest *objs, size_t nobjs);
/* Drop key's entries of this state's environment (another environment's copies, and
 * the objects recorded for the key while one is left, stay). Buffered. */
int state_cache_drop(fl_state *st, const char *task, const fl_digest *key);
/* Every object some cache entry or run refers to (for gc); *out from the state's
 * context (fl_free it on state_ctx(st)). -1 on a database error or out of memory. */
int state_live_objects(fl_state *st, fl_digest **out, size_t *n);

/* ---- gc ---- */
/* Every stored text or blob of the history, for finding the store paths it holds:
 * each run's params, params_blob and result, each instance row's result and packed
 * records. fn(run, bytes) once per non-empty column. -1 on a database error. */
int state_history_scan(fl_state *st,
                       void (*fn)(int64_t run, const void *data, size_t len, void *ctx),
                       void *ctx);
/* Forget runs: delete their runs, instances and events rows, in one transaction. */
int state_runs_forget(fl_state *st, const int64_t *runs, size_t n);

/* ---- CPU time per task of a run (schema 9) ----
 * What the instances of a task that ran (not served) took: cpu_ns over the `measured`
 * of them whose CPU is known (an sh command's from wait4, a sampled inline run's
 * share: exec_inline.c), whose wall time is cpu_wall_ns; wall_ns over all
 * `instances`. The estimate for the task is cpu_ns * wall_ns / cpu_wall_ns. */
typedef struct state_task_cpu {
    const char *task;
    int64_t cpu_ns, cpu_wall_ns, wall_ns, measured, instances;
} state_task_cpu;
/* Add to run's figures (a resumed run adds to what it had). 0, or -1 said. */
int state_task_cpu_add(fl_state *st, int64_t run, const state_task_cpu *v, size_t n);
/* fn for each task with figures in run, by name; fn returns nonzero to stop. 0 or -1. */
int state_task_cpu_each(fl_state *st, int64_t run,
                        int (*fn)(const state_task_cpu *v, void *ctx), void *ctx);

/* ---- the file-identity index ---- */
typedef struct state_file_id {
    int64_t size, mtime_ns, inode, ctime_ns;
} state_file_id;
/* The content hash of path when its identity is unchanged since it was hashed:
 * 1 (hash in *h), 0 unknown or changed, -1 error. */
int state_file_lookup(fl_state *st, const char *path, const state_file_id *id, fl_digest *h);
int state_file_put(fl_state *st, const char *path, const state_file_id *id, const fl_digest *h);
/* What the index holds for path: its size, mtime and content hash as last hashed
 * and, when its content changed since an earlier hashing (has_prev), the ones it had
 * before that change. 1 found, 0 no record, -1 error. (`flowrun why`: old -> new.) */
typedef struct state_file_rec {
    int64_t size, mtime_ns;
    fl_digest hash;
    int has_prev;
    int64_t prev_size, prev_mtime_ns;
    fl_digest prev_hash;
} state_file_rec;
int state_file_record(fl_state *st, const char *path, state_file_rec *out);
/* Has path ever been hashed (a record, whatever its identity)? 1, 0, -1 error. (The
 * reason engine: a file never seen is "a new file", not "changed".) */
int state_file_known(fl_state *st, const char *path);
/* Every record of the index: fn(path, its content hash as last hashed) for each, and
 * fn(path, the hash before its content last changed) where that is kept, in no set
 * order; fn returns nonzero to stop. (`flowrun why` names the file of a `path`
 * argument from it: cachekey.h ck_path_part.) 0, or -1 on a database error. */
int state_files_each(fl_state *st, int (*fn)(const char *path, const fl_digest *h, void *ctx),
                     void *ctx);

#endif /* FLOW_STATE_H */
