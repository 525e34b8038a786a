/*
 * state.c — the state database (see state.h for what it holds and why it
 * commits in batches).
 */
#define _GNU_SOURCE
#include "state.h"
#include "ctx.h"
#include "hash.h"
#include "htab.h"
#include "value.h"
#include "walk.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>

#define STATE_BUSY_MS 30000     /* how long a writer waits for another flowrun's lock */
#define STATE_WAL_KEEP (4 << 20) /* a write-ahead log up to this size is left for the next run */
#define STATE_AUTOCOMMIT 100000 /* buffered writes before a commit is forced */
#define STATE_MAX_QUEUE (8u << 20) /* records waiting for the writer before the caller waits
                                      (small: the memory a caller ahead of the writer fills
                                      is fresh pages, each a fault) */
/* New cache entries the writer holds back and then writes as packs, in one go: a
 * write per batch would write a pack per batch. An entry held when flowrun dies is
 * lost, which a cache may do: the instance's own row (what resume uses) is committed
 * with its batch as always. A group is 16 full packs: groups of a million entries
 * (before) held 100 MiB and more, and touching that much fresh memory (page faults)
 * cost a cold W1 10^6 more than the writes it saved (docs/bench-state.md, "cold
 * cache: bounded memory"). */
#define STATE_CACHE_HOLD 65536               /* entries */
#define STATE_CACHE_HOLD_BYTES (8u << 20)   /* bytes of their results */
/* ... and never for longer than this: a flowrun killed mid-run loses at most the
 * cache entries of its last few seconds (its instance rows are safe either way) */
#define STATE_CACHE_HOLD_SECONDS 5.0
/* Commits grouped by time: the writer starts a transaction at most this often, taking
 * every batch queued meanwhile into it, unless a caller waits in state_sync (a result
 * must be durable before an effect reads it: recorder.h) or the queue grows past
 * STATE_GROUP_BYTES. With slow tasks a scheduler round holds about one instance, and a
 * transaction per round (its WAL frames, its locks) cost more than the instance. */
#define STATE_GROUP_SECONDS 0.05
#define STATE_SPARE 16        /* written batches kept for reuse (fl_state.spare) */
/* A round's batch is not queued on its own: the next rounds add to it until it is
 * this large or this old (the writer groups its transactions by 50 ms anyway). A
 * wide run's round holds a few hundred instances; a batch each cost more in
 * allocation than their records. (Not "while the writer is busy": whether it is
 * depends on the threads' timing, which a callgrind measurement does not share.) */
#define STATE_HOLD_BYTES (32u << 10)
#define STATE_HOLD_SECONDS 0.01
#define STATE_GROUP_BYTES (STATE_MAX_QUEUE / 2) /* write now: the caller must not wait */
/* The caller's reads (cache and file lookups) share one read transaction, kept across
 * scheduler rounds for at most this long: a BEGIN and a COMMIT are two lock system
 * calls and a snapshot, and with slow tasks a round holds about one instance. A
 * snapshot this old misses only entries committed in its last moments, which a cache
 * may (the writer holds new entries for seconds anyway); a write on the caller's
 * connection (begin) ends it first. */
#define STATE_READ_SECONDS 0.05

/* Every prepared statement, listed once: X(name, sql) */
#define STATE_STMTS(X)                                                                             \
    X(read_begin, "BEGIN")       /* a round's read transaction (read_begin): prepared once */      \
    X(read_commit, "COMMIT")                                                                       \
    X(run_insert, "INSERT INTO runs(flow, env, params, plan_path, plan_hash, state, started, "     \
                  "exit_code, pid, params_blob, options, host, pid_start, boot_id, logical) "      \
                  "VALUES(?,?,?,?,?,'running',?,-1,?,?,?,?,?,?,?)")                                \
    X(run_end, "UPDATE runs SET state=?, exit_code=?, result=?, error=?, ended=? WHERE id=?")      \
    X(task_cpu_add, "INSERT INTO task_cpu VALUES(?,?,?,?,?,?,?) ON CONFLICT(run, task) DO UPDATE"  \
                    " SET cpu_ns=cpu_ns+excluded.cpu_ns, cpu_wall_ns=cpu_wall_ns+excluded.cpu_wall_ns," \
                    " wall_ns=wall_ns+excluded.wall_ns, measured=measured+excluded.measured,"     \
                    " instances=instances+excluded.instances")                                    \
    X(task_cpu_get, "SELECT task, cpu_ns, cpu_wall_ns, wall_ns, measured, instances FROM task_cpu" \
                    " WHERE run=? ORDER BY task")                                                  \
    X(run_reopen, "UPDATE runs SET state='running', pid=?, ended=NULL, exit_code=-1, error=NULL, " \
                  "host=?, pid_start=?, boot_id=? WHERE id=?")                                     \
    X(run_get, "SELECT id, flow, env, params, plan_path, plan_hash, state, started, "              \
               "coalesce(ended,0), exit_code, result, error, pid, params_blob, options, "          \
               "host, pid_start, boot_id, logical FROM runs WHERE id=?")                           \
    X(run_list, "SELECT id, flow, env, params, plan_path, plan_hash, state, started, "             \
                "coalesce(ended,0), exit_code, result, error, pid, params_blob, options, "         \
                "host, pid_start, boot_id, logical FROM runs ORDER BY id DESC")                    \
    X(run_of_logical, "SELECT id, state FROM runs WHERE flow=?1 AND env=?2 AND logical=?3 "        \
                      "ORDER BY (state='succeeded') DESC, (state='running') DESC, id DESC")       \
    X(seen_put, "INSERT OR IGNORE INTO first_seen(flow, env, at) VALUES(?,?,?)")                 \
    X(seen_get, "SELECT at FROM first_seen WHERE flow=? AND env=?")                              \
    X(batch_put, "INSERT OR REPLACE INTO remote_batches(run, batch, engine, engine_id, name, "    \
                 "nelem, batch_file, started) VALUES(?,?,?,?,?,?,?,?)")                           \
    X(batch_list, "SELECT batch, engine, engine_id, name, nelem, batch_file FROM remote_batches " \
                  "WHERE run=? ORDER BY batch")                                                   \
    X(run_running, "SELECT id, pid, host, pid_start, boot_id FROM runs WHERE state='running'")     \
    X(run_gone, "UPDATE runs SET state='interrupted', error=? WHERE id=? AND state='running'")     \
    X(inst_put, "INSERT INTO instances(run, node, idx, task, label, state, attempts, "             \
                "cache_key, cache_hit, started, ended, exit_status, signal, error, worker_pid, "   \
                "peak_rss_kb, result, name) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")          \
    X(event_put, "INSERT INTO events(run, node, idx, at, state) VALUES(?,?,?,?,?)")                \
    X(inst_list, "SELECT node, idx, task, label, state, attempts, cache_key, cache_hit, started, " \
                 "ended, exit_status, signal, error, worker_pid, peak_rss_kb, result, id, packed, "\
                 "name FROM instances WHERE run=?1")                                               \
    X(inst_clear_one, "UPDATE instances SET state='cleared' WHERE run=? AND task=? AND idx=? "    \
                      "AND packed IS NULL")                                                        \
    X(inst_clear_all, "UPDATE instances SET state='cleared' WHERE run=? AND task=? "              \
                      "AND packed IS NULL")                                                        \
    X(pack_put, "INSERT INTO instances(run, node, idx, task, state, attempts, cache_hit, packed, " \
                "name) VALUES(?,?,?,?,'packed',0,0,?,?)")                                          \
    X(pack_list, "SELECT id, packed FROM instances WHERE run=? AND task=? AND packed IS NOT NULL") \
    X(inst_clear_at, "UPDATE instances SET state='cleared' WHERE run=?1 AND node=?2 AND name IS ?3 " \
                     "AND (?4 IS NULL OR idx=?4 OR (substr(?4,-1)='/' AND "                        \
                     "substr(idx,1,length(?4))=?4)) AND packed IS NULL")                           \
    X(pack_list_at, "SELECT id, packed FROM instances WHERE run=? AND node=? AND name IS ? "       \
                    "AND packed IS NOT NULL")                                                      \
    X(pack_set, "UPDATE instances SET packed=? WHERE id=?")                                        \
    X(cache_packs, "SELECT id FROM cache_pack WHERE tag=? ORDER BY id DESC")                       \
    X(cache_tail, "SELECT id, n, body FROM cache_pack WHERE tag=? ORDER BY id DESC LIMIT 16")      \
    X(cache_unpack, "DELETE FROM cache_pack WHERE id=?")                                           \
    X(cache_after, "SELECT id FROM cache_pack WHERE tag=? AND id>? ORDER BY id LIMIT 1")           \
    X(cache_uncount, "UPDATE cache_pack SET n=max(n-?,0) WHERE id=?")                              \
    X(cache_set, "INSERT INTO cache_pack(tag, n, body) VALUES(?,?,?)")                             \
    X(cache_obj, "INSERT OR IGNORE INTO cache_objects(key, object) VALUES(?,?)")                   \
    X(cache_count, "SELECT total(n) FROM cache_pack WHERE tag=?")                                  \
    X(cache_range, "SELECT id, body FROM cache_pack WHERE tag=? ORDER BY id")                      \
    X(cache_drop_objs, "DELETE FROM cache_objects WHERE key=?")                                    \
    X(live_objects, "SELECT DISTINCT object FROM cache_objects")                                   \
    X(env_add, "INSERT OR IGNORE INTO envs(name) VALUES(?)")                                      \
    X(env_id, "SELECT id FROM envs WHERE name=?")                                                  \
    X(env_name, "SELECT name FROM envs WHERE id=?")                                                \
    X(file_get, "SELECT size, mtime_ns, inode, ctime_ns, hash FROM files WHERE path=?")            \
    X(file_put, "INSERT INTO files(path, size, mtime_ns, inode, ctime_ns, hash) VALUES(?,?,?,?,?,?)" \
                " ON CONFLICT(path) DO UPDATE SET"                                                 \
                " prev_size=iif(hash IS excluded.hash, prev_size, size),"                         \
                " prev_mtime_ns=iif(hash IS excluded.hash, prev_mtime_ns, mtime_ns),"             \
                " prev_hash=iif(hash IS excluded.hash, prev_hash, hash),"                         \
                " size=excluded.size, mtime_ns=excluded.mtime_ns, inode=excluded.inode,"          \
                " ctime_ns=excluded.ctime_ns, hash=excluded.hash")                                 \
    X(file_rec, "SELECT size, mtime_ns, hash, prev_size, prev_mtime_ns, prev_hash FROM files "    \
                "WHERE path=?")                                                                    \
    X(file_range, "SELECT path, size, mtime_ns, inode, ctime_ns, hash FROM files "                 \
                  "WHERE path >= ?1 AND path < ?2")                                            \
    X(file_all, "SELECT path, hash, prev_hash FROM files")

enum {
#define X(name, sql) ST_##name,
    STATE_STMTS(X)
#undef X
        ST__COUNT
};

static const char *const stmt_sql[] = {
#define X(name, sql) sql,
    STATE_STMTS(X)
#undef X
};

/* A cache entry waiting to be written into a pack ("cache packs" below). */
typedef struct pend_entry {
    int64_t ck;           /* the task's tag (task_tag) */
    int64_t run;          /* the run that produced it */
    uint64_t ident;       /* its key's parts (state_inst.cache_ident, cache_inputs) */
    uint32_t nin;         /* input hashes, at in_off in pend_data */
    uint32_t env;         /* the environment of the run that produced it (envs.id) */
    size_t in_off;
    fl_digest key;
    size_t off;           /* the result in pend_data, or SIZE_MAX for none */
    size_t len;
} pend_entry;
typedef struct pend_ord {
    int64_t ck;
    size_t i;             /* entry; also the order of arrival */
} pend_ord;

/* The (run, node, task, name template) of packed records, interned: a record names
 * it by its number (see "packed rows"), so no record carries or compares strings. */
typedef struct pk_name {
    int64_t run;
    uint32_t node;
    char *task;          /* the task's name */
    const char *task_from; /* the caller's pointer it was copied from (the plan's
                            * string, the same for every instance: compared before
                            * the text; never read through) */
    char *tmpl;          /* the records' name template (NULL: none given) */
    double base;         /* its first record's start: records' starts are deltas */
    int32_t pid;         /* its first record's worker pid: the common case's */
    int64_t rss;         /* the common case's peak RSS (pk_rss_step) */
    int64_t last_rss;    /* the caller's: the last record's peak RSS */
    uint16_t tag;        /* the writer's: task_tag(task), for its cache entries */
} pk_name;
typedef struct pk_names {
    pk_name *v;
    size_t n, cap;
    size_t last;         /* the one found last: a run's records come node by node */
    fl_htab by_node;     /* the caller's table: hash of the node -> number (htab.h) */
} pk_names;

/* Finished instances of one mapped node, packed into one row (see "packed rows"). */
typedef struct pack {
    int64_t run;
    uint32_t node;
    uint32_t n;          /* records in data */
    uint32_t name;       /* the records' name (conn.names): task and template */
    fv_buf blob;         /* the row's packed blob: header, then the records */
} pack;

/* One SQLite connection and its statements; used by one thread at a time. */
typedef struct conn {
    sqlite3 *db;                 /* the connection */
    sqlite3_stmt *st[ST__COUNT]; /* prepared once, on first use */
    int in_tx;                   /* a batch transaction is open */
    int in_read;                 /* a read transaction is open (reads batched per round) */
    double read_since;           /* when it began (now()): state_commit ends it when old */
    long pending;                /* writes in the open transaction */
    const char *path;            /* state.db path, for messages */
    fl_ctx *ctx;                 /* the state's context: allocation, log lines */
    int *said;                   /* the state's "an error was reported" latch */
    struct pack *packs;          /* instance records being packed, one per (run, node) */
    size_t npacks, packs_cap;
    pk_names names;              /* the packs' names, by number (the writer: as the
                                  * caller numbered them, REC_NAME) */
    fv_buf scratch;              /* a record being encoded (synchronous mode) */
    int defer_cache;             /* hold cache entries until the commit (the writer) */
    pend_entry *pend;            /* those entries */
    size_t npend, pend_cap;
    fv_buf pend_data;            /* their results, one after another */
    pend_ord *pend_ord;          /* the order to write them in */
    double pend_since;           /* when the oldest held entry arrived */
    fv_buf cpack;                /* a cache pack being encoded */
    fv_buf absorb;               /* the bodies of the small packs a flush absorbs */
    struct cpack_raw *raw;       /* their live entries, oldest first */
    size_t nraw, raw_cap;
    int64_t absorbed[16];        /* their ids (cpack_absorb) */
    int nabsorbed;
    struct {                     /* the key parts of the next cache entry (REC_KEYPARTS) */
        int set;
        fl_digest key;
        uint64_t ident;
        uint32_t n;
        uint64_t in[255];
    } parts;
    int cpack_said;              /* a damaged cache pack was reported (once) */
    struct {                     /* the entry after the last point lookup's hit */
        int set;
        int64_t tag, pack;
        uint32_t next;           /* its offset; 0: the pack's first entry */
    } follow;
    long gets, gets_packs, gets_most; /* point lookups, the packs they searched, the most
                                       * one searched (state_cache_lookup_stats) */
    uint32_t env;                /* the environment this state serves and writes as
                                  * (state_env_use; envs.id, 0 prod): see "environments" */
    int env_other;               /* a lookup that takes only the entries this
                                  * environment may not use (state_cache_entry_other) */
} conn;

static void read_end(conn *c);
static void sql_flow_ck(sqlite3_context *cx, int argc, sqlite3_value **argv);
static void sql_pack_step(sqlite3_context *cx, int argc, sqlite3_value **argv);
static void sql_pack_final(sqlite3_context *cx);

/* The file-identity rows of whole folders, in memory (see "the file-identity index"). */
typedef struct fid_cache {
    long looked, hits; /* lookups through SQLite, and hits among them */
    int on;            /* they hit: load a file's folder at its first lookup */
    int off;           /* memory ran out or a folder was too big: SQLite only from now on */
    fl_htab files;     /* hash of a path -> its entry's offset in arena */
    fl_htab dirs;      /* hash of a folder ("a/b/") -> its offset in arena */
    fv_buf arena;      /* file: state_file_id, 32-byte hash, u32 length, path;
                        * folder: u32 length, path */
} fid_cache;

/* A batch of buffered writes, replayed in order by the writer thread. */
typedef struct wbatch {
    struct wbatch *next;
    fv_buf rec;      /* records, one after another (see wb_* / replay) */
} wbatch;
static void wb_free(struct fl_state *st, wbatch *b);

struct fl_state {
    fl_ctx *ctx;                /* allocation and log lines (the caller's, kept) */
    conn main;                  /* the caller's connection: reads, runs */
    conn w;                     /* the writer thread's connection (async mode) */
    int async;                  /* instance/cache/file writes go through the writer */
    wbatch *cur;                /* the batch being filled by the caller */
    double cur_since;           /* when it was begun (STATE_HOLD_SECONDS) */
    pthread_t writer;           /* the writer thread */
    pthread_mutex_t mu;         /* guards the queue below */
    pthread_cond_t cv;          /* the writer waits for work; state_sync waits for idle */
    wbatch *qhead, *qtail;      /* batches handed over, oldest first */
    wbatch *spare;              /* batches the writer has written, kept for the caller's
                                 * next ones (at most STATE_SPARE): their buffers' pages
                                 * are in memory already (wb_put) */
    int nspare;
    size_t qbytes;              /* bytes of records in them */
    int busy;                   /* the writer is replaying a batch */
    int stop;                   /* the writer should finish and exit */
    int failed;                 /* the writer hit an error (reported once) */
    int syncing;                /* callers waiting in state_sync: write everything now */
    int held;                   /* the writer holds cache entries not yet written */
    double last_tx;             /* when the writer last began a transaction (now()) */
    int grouping;               /* the writer waits for STATE_GROUP_SECONDS to pass */
    int said;                   /* an SQLite error was reported (once: see sql_fail) */
    int wb_oom;                 /* a batch could not be allocated: its records are lost */
    pk_names names;             /* async: the names the caller has numbered (REC_NAME) */
    wbatch *run_in;             /* the batch holding the last REC_PACKS run, */
    size_t run_at, run_end;     /* its header's offset there, and where the run ends */
    char dir[4096];             /* the state directory, for messages */
    char path[4096];            /* state.db path, for messages */
    fid_cache fid;              /* file identities read a folder at a time (caller's thread) */
};

/* Migrations: schema[v-1] takes a database from version v-1 to v. */
static const char *const schema[] = {
    /* 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, flow TEXT NOT NULL, env TEXT NOT NULL,"
    " params TEXT NOT NULL, plan_path TEXT, plan_hash BLOB, state TEXT NOT NULL,"
    " started REAL NOT NULL, ended REAL, exit_code INTEGER, result TEXT, error TEXT,"
    " pid INTEGER, params_blob BLOB);"
    "CREATE TABLE instances(id INTEGER PRIMARY KEY, run INTEGER NOT NULL,"
    " node INTEGER NOT NULL, idx TEXT NOT NULL, task TEXT NOT NULL, label TEXT,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL, cache_key BLOB,"
    " cache_hit INTEGER NOT NULL, started REAL, ended REAL, exit_status INTEGER,"
    " signal INTEGER, error TEXT, worker_pid INTEGER, peak_rss_kb INTEGER, result BLOB,"
    " ck INTEGER);"
    "CREATE INDEX instances_run ON instances(run);"
    "CREATE INDEX instances_ck ON instances(ck) WHERE ck IS NOT NULL;"
    "CREATE TABLE events(run INTEGER NOT NULL, node INTEGER NOT NULL, idx TEXT NOT NULL,"
    " at REAL NOT NULL, state TEXT NOT NULL);"
    "CREATE INDEX events_run ON events(run);"
    "CREATE TABLE cache_objects(key BLOB NOT NULL, object BLOB NOT NULL,"
    " PRIMARY KEY(key, object)) WITHOUT ROWID;"
    "CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
    " inode INTEGER, ctime_ns INTEGER, hash BLOB) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('oldest_reader', 1);",
    /* 2: the cache moves out of instances into its own table keyed by ck (an
     * INTEGER PRIMARY KEY: one B-tree, no secondary index to keep in step; ck
     * as cache_k below, so a task's entries lie together), and
     * finished instances of a mapped task may be packed many to a row */
    "CREATE TABLE cache(ck INTEGER PRIMARY KEY, key BLOB NOT NULL, result BLOB);"
    "ALTER TABLE instances ADD COLUMN packed BLOB;"
    "ALTER TABLE runs ADD COLUMN options TEXT;"
    "INSERT OR REPLACE INTO cache(ck, key, result) SELECT flow_ck(task, cache_key), cache_key,"
    " result FROM instances WHERE ck IS NOT NULL AND length(cache_key) = 32 ORDER BY id;"
    "DROP INDEX instances_ck;"
    "UPDATE instances SET ck = NULL WHERE ck IS NOT NULL;",
    /* 3: a run's owner is its flowrun process: pid (already there), host, the
     * process's start time and the host's boot id, so a run whose flowrun died
     * shows as interrupted (see "run owners") */
    "ALTER TABLE runs ADD COLUMN host TEXT;"
    "ALTER TABLE runs ADD COLUMN pid_start INTEGER;"
    "ALTER TABLE runs ADD COLUMN boot_id TEXT;"
    /* a flowrun of schema 2 resuming a run sets a new pid only: forget the old
     * owner's start time, so the new one is judged by its pid alone */
    "CREATE TRIGGER runs_owner_reset AFTER UPDATE OF pid ON runs"
    " WHEN NEW.pid IS NOT OLD.pid AND NEW.pid_start IS OLD.pid_start BEGIN"
    " UPDATE runs SET host=NULL, pid_start=NULL, boot_id=NULL WHERE id=NEW.id; END;",
    /* 4: each instance row names its binding: the name template (plan_inst_name),
     * NULL in the rows written before, which keep their task[idx] names */
    "ALTER TABLE instances ADD COLUMN name TEXT;",
    /* 5: the cache is kept in packs, a task's entries in the order they were
     * produced (see "cache packs"); the cache table's entries are packed, 4,096 to
     * a pack, in ck order, their run, identity and inputs unknown (zeros) */
    "CREATE TABLE cache_pack(id INTEGER PRIMARY KEY, tag INTEGER NOT NULL, n INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE INDEX cache_pack_tag ON cache_pack(tag, id);"
    "INSERT INTO cache_pack(tag, n, body) SELECT tag, count(*), flow_pack(key, result) FROM"
    " (SELECT (ck >> 48) & 65535 AS tag, (row_number() OVER (PARTITION BY (ck >> 48) & 65535"
    " ORDER BY ck) - 1) / 4096 AS g, key, result FROM cache WHERE length(key) = 32)"
    " GROUP BY tag, g ORDER BY tag, g;"
    "DROP TABLE cache;",
    /* 6: scheduled runs carry their interval's logical date or time (canonical text,
     * NULL for unscheduled runs), found by (flow, env, logical) when an interval is
     * claimed (state_claim); first_seen: when `flowrun serve` first saw a flow, where
     * its catch-up starts when the schedule has no start (state_first_seen) */
    "ALTER TABLE runs ADD COLUMN logical TEXT;"
    "CREATE INDEX runs_logical ON runs(flow, env, logical) WHERE logical IS NOT NULL;"
    "CREATE TABLE first_seen(flow TEXT NOT NULL, env TEXT NOT NULL, at INTEGER NOT NULL,"
    " PRIMARY KEY(flow, env)) WITHOUT ROWID;",
    /* 7: environments by number (see "environments"): a cache entry names the
     * environment of the run that wrote it by its id here; prod is 0, which every
     * entry written before already says, so the existing cache is prod's */
    "CREATE TABLE envs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO envs(id, name) VALUES(0, 'prod');",
    /* 8: the batches a run's remote executor started (remote_driver.c), found again by
     * `flowrun resume` to re-attach to elements still running (state_batch_add). A
     * table no older reader looks at: the oldest reader stays 7 */
    "CREATE TABLE remote_batches(run INTEGER NOT NULL, batch INTEGER NOT NULL,"
    " engine TEXT NOT NULL, engine_id TEXT NOT NULL, name TEXT NOT NULL,"
    " nelem INTEGER NOT NULL, batch_file TEXT NOT NULL, started REAL NOT NULL,"
    " PRIMARY KEY(run, batch)) WITHOUT ROWID;",
    /* 9: the file-identity index keeps, beside a file's identity and content hash, the
     * ones it had before its content last changed (file_put), so that `flowrun why`
     * can say old -> new content hash, size and mtime (state_file_record). An older
     * flowrun's INSERT OR REPLACE leaves them NULL, which reads as "not known": the
     * oldest reader stays 7 */
    "ALTER TABLE files ADD COLUMN prev_size INTEGER;"
    "ALTER TABLE files ADD COLUMN prev_mtime_ns INTEGER;"
    "ALTER TABLE files ADD COLUMN prev_hash BLOB;"
    /* and the CPU time of each task of a run (state_task_cpu_add): what the report
     * shows per task where no peak RSS of its own is measured (the inline executor) */
    "CREATE TABLE task_cpu(run INTEGER NOT NULL, task TEXT NOT NULL, cpu_ns INTEGER NOT NULL,"
    " cpu_wall_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, measured INTEGER NOT NULL,"
    " instances INTEGER NOT NULL, PRIMARY KEY(run, task)) WITHOUT ROWID;",
};
/* A fresh database gets the schema the steps above end with, in one script: the
 * steps' table rebuilds and ALTERs (each of which makes SQLite read the whole schema
 * again) cost a fresh state 8.9 M instructions of a one-task run's 15 M; this costs
 * a fraction of that. tests/unit/test_store.c (test_state_fresh_schema_is_the_steps)
 * holds the two to the same tables, columns, indexes, triggers and rows: a new step
 * above is added here too, as its result. */
static const char schema_fresh[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, flow TEXT NOT NULL, env TEXT NOT NULL,"
    " params TEXT NOT NULL, plan_path TEXT, plan_hash BLOB, state TEXT NOT NULL,"
    " started REAL NOT NULL, ended REAL, exit_code INTEGER, result TEXT, error TEXT,"
    " pid INTEGER, params_blob BLOB, options TEXT, host TEXT, pid_start INTEGER,"
    " boot_id TEXT, logical TEXT);"
    "CREATE TABLE instances(id INTEGER PRIMARY KEY, run INTEGER NOT NULL,"
    " node INTEGER NOT NULL, idx TEXT NOT NULL, task TEXT NOT NULL, label TEXT,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL, cache_key BLOB,"
    " cache_hit INTEGER NOT NULL, started REAL, ended REAL, exit_status INTEGER,"
    " signal INTEGER, error TEXT, worker_pid INTEGER, peak_rss_kb INTEGER, result BLOB,"
    " ck INTEGER, packed BLOB, name TEXT);"
    "CREATE INDEX instances_run ON instances(run);"
    "CREATE TABLE events(run INTEGER NOT NULL, node INTEGER NOT NULL, idx TEXT NOT NULL,"
    " at REAL NOT NULL, state TEXT NOT NULL);"
    "CREATE INDEX events_run ON events(run);"
    "CREATE TABLE cache_objects(key BLOB NOT NULL, object BLOB NOT NULL,"
    " PRIMARY KEY(key, object)) WITHOUT ROWID;"
    "CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
    " inode INTEGER, ctime_ns INTEGER, hash BLOB, prev_size INTEGER, prev_mtime_ns INTEGER,"
    " prev_hash BLOB) WITHOUT ROWID;"
    "CREATE TRIGGER runs_owner_reset AFTER UPDATE OF pid ON runs"
    " WHEN NEW.pid IS NOT OLD.pid AND NEW.pid_start IS OLD.pid_start BEGIN"
    " UPDATE runs SET host=NULL, pid_start=NULL, boot_id=NULL WHERE id=NEW.id; END;"
    "CREATE TABLE cache_pack(id INTEGER PRIMARY KEY, tag INTEGER NOT NULL, n INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE INDEX cache_pack_tag ON cache_pack(tag, id);"
    "CREATE INDEX runs_logical ON runs(flow, env, logical) WHERE logical IS NOT NULL;"
    "CREATE TABLE first_seen(flow TEXT NOT NULL, env TEXT NOT NULL, at INTEGER NOT NULL,"
    " PRIMARY KEY(flow, env)) WITHOUT ROWID;"
    "CREATE TABLE envs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE remote_batches(run INTEGER NOT NULL, batch INTEGER NOT NULL,"
    " engine TEXT NOT NULL, engine_id TEXT NOT NULL, name TEXT NOT NULL,"
    " nelem INTEGER NOT NULL, batch_file TEXT NOT NULL, started REAL NOT NULL,"
    " PRIMARY KEY(run, batch)) WITHOUT ROWID;"
    "CREATE TABLE task_cpu(run INTEGER NOT NULL, task TEXT NOT NULL, cpu_ns INTEGER NOT NULL,"
    " cpu_wall_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, measured INTEGER NOT NULL,"
    " instances INTEGER NOT NULL, PRIMARY KEY(run, task)) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('oldest_reader', 1);"
    "INSERT INTO envs(id, name) VALUES(0, 'prod');";

int state_fresh_by_steps;

/* The oldest schema version a reader of ours understands: 7, since a flowrun of
 * schema 6 would write a test run's cache entries as prod's (environment 0). */
#define STATE_OLDEST_READER 7

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every SQLite error of a statement ends here. It is said once per open state,
 * whatever the number of statements that fail after it (a full disk fails them
 * all), and the state remembers it (state_failed), so that a run whose history
 * could not be recorded never ends with exit 0. A damaged file says what to do. */
static int sql_fail(conn *c) {
    int code = sqlite3_errcode(c->db) & 0xff;
    if (c->said && __atomic_exchange_n(c->said, 1, __ATOMIC_RELAXED)) return -1;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        fl_log(c->ctx, FL_LOG_ERROR, "%s is damaged (%s); `flowrun fsck` salvages what can be "
               "read into a new database and keeps the damaged one",
               c->path, sqlite3_errmsg(c->db));
    else if (code == SQLITE_FULL)
        fl_log(c->ctx, FL_LOG_ERROR, "%s: the disk is full; what was recorded before is kept, "
               "and the run can be resumed once there is space", c->path);
    else
        fl_log(c->ctx, FL_LOG_ERROR, "%s: %s", c->path, sqlite3_errmsg(c->db));
    return -1;
}

static sqlite3_stmt *stmt(conn *c, int which) {
    if (!c->st[which] &&
        sqlite3_prepare_v2(c->db, stmt_sql[which], -1, &c->st[which], NULL) != SQLITE_OK) {
        sql_fail(c);
        return NULL;
    }
    sqlite3_reset(c->st[which]);
    sqlite3_clear_bindings(c->st[which]);
    return c->st[which];
}

static int exec(conn *st, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        const char *why = msg ? msg : sqlite3_errmsg(st->db);
        snprintf(err, errlen, "%.*s: %s", (int)(errlen / 2), st->path, why);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int meta_int(conn *st, const char *key, int *out) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key=?", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_ROW ? (*out = sqlite3_column_int(s, 0), 0) : -1;
    sqlite3_finalize(s);
    return rc;
}

/* Bring the schema to STATE_SCHEMA_VERSION, or refuse a newer one we cannot read. */
static int migrate(conn *st, char *err, size_t errlen) {
    if (exec(st, "BEGIN IMMEDIATE", err, errlen)) return -1;
    int version = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    if (version < 0) { /* no flowrun writes one: a damaged or foreign file */
        exec(st, "ROLLBACK", err, errlen);
        snprintf(err, errlen, "%s: bad schema version %d (not a flowrun state database?)",
                 st->path, version);
        return -1;
    }
    if (version > STATE_SCHEMA_VERSION) {
        int oldest = version;
        meta_int(st, "oldest_reader", &oldest);
        exec(st, "ROLLBACK", err, errlen);
        if (oldest > STATE_SCHEMA_VERSION) {
            snprintf(err, errlen,
                     "%s: schema version %d is newer than this flowrun reads (%d); use a newer "
                     "flowrun or another --state directory",
                     st->path, version, STATE_SCHEMA_VERSION);
            return -1;
        }
        return 0; /* newer but still readable by us */
    }
    int fresh = version == 0 && !state_fresh_by_steps; /* the steps' result at once */
    if (fresh && exec(st, schema_fresh, err, errlen)) {
        char e2[64];
        exec(st, "ROLLBACK", e2, sizeof e2);
        return -1;
    }
    for (int v = fresh ? STATE_SCHEMA_VERSION : version; v < STATE_SCHEMA_VERSION; v++)
        if (exec(st, schema[v], err, errlen)) {
            char e2[64];
            exec(st, "ROLLBACK", e2, sizeof e2);
            return -1;
        }
    if (version < STATE_SCHEMA_VERSION) {
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d; UPDATE meta SET value=%d WHERE key="
                 "'oldest_reader'", STATE_SCHEMA_VERSION, STATE_OLDEST_READER);
        if (exec(st, sql, err, errlen)) return -1;
    }
    return exec(st, "COMMIT", err, errlen);
}

/* SQLite's memory statistics take a global mutex on every allocation, which two
 * threads using SQLite at once (the scheduler reading, the writer writing) turn
 * into futex traffic; we never read them. Set once, before SQLite starts. The page
 * caches keep SQLite's default 20-page bulk block (SQLITE_CONFIG_PAGECACHE): without
 * it a small run makes 45 fewer page faults, but a run of slow tasks, whose read
 * snapshots end every round, frees and allocates its page buffers again and again
 * (2,000 tasks of 1 ms: 634 -> 1,531 page faults, ≈ 11 µs each here). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static void sqlite_setup(void) {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* whole: a database being made whole under another name (create_whole): no journal
 * and no syncing while its schema is written, since no other process opens it. */
static int conn_open(conn *c, const char *path, int whole, char *err, size_t errlen) {
    pthread_once(&sqlite_once, sqlite_setup);
    c->path = path;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(c->db, STATE_BUSY_MS);
    sqlite3_create_function(c->db, "flow_ck", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            sql_flow_ck, NULL, NULL);
    sqlite3_create_function(c->db, "flow_pack", 2, SQLITE_UTF8, NULL, NULL, sql_pack_step,
                            sql_pack_final);
    if (whole)
        return exec(c, "PRAGMA page_size=16384; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;",
                    err, errlen);
    /* The write-ahead log outlives the connection, and closing does not checkpoint
     * it: state_close checkpoints only a log past STATE_WAL_KEEP. A small run (a no-op
     * re-run) then appends to the log the last run left, which needs no fsync with
     * synchronous=NORMAL, instead of starting a new log (a sync of its header and of
     * the folder) and checkpointing it at close (two more). */
    int keep = 1;
    sqlite3_file_control(c->db, "main", SQLITE_FCNTL_PERSIST_WAL, &keep);
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    /* pages read through a memory map and a 64 MiB cache: lookups make no system calls */
    return exec(c, "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                   "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536;", err, errlen);
}

static void names_free(fl_ctx *ctx, pk_names *t) {
    for (size_t i = 0; i < t->n; i++) {
        fl_free(ctx, t->v[i].task);
        fl_free(ctx, t->v[i].tmpl);
    }
    fl_free(ctx, t->v);
    fl_htab_free(ctx, &t->by_node);
    *t = (pk_names){0};
}

static void conn_close(conn *c) {
    if (!c->db) return;
    for (size_t i = 0; i < c->npacks; i++)
        free(c->packs[i].blob.data); /* fv_buf: value.c's allocation */
    names_free(c->ctx, &c->names);
    free(c->scratch.data); /* fv_buf: value.c's allocation */
    c->scratch = (fv_buf){0};
    fl_free(c->ctx, c->packs);
    c->packs = NULL;
    c->npacks = c->packs_cap = 0;
    fl_free(c->ctx, c->pend);
    free(c->pend_data.data); /* fv_buf: value.c's allocation */
    free(c->cpack.data);
    c->cpack = (fv_buf){0};
    free(c->absorb.data);
    c->absorb = (fv_buf){0};
    fl_free(c->ctx, c->raw);
    c->raw = NULL;
    c->nraw = c->raw_cap = 0;
    fl_free(c->ctx, c->pend_ord);
    c->pend = NULL;
    c->pend_data = (fv_buf){0};
    c->pend_ord = NULL;
    c->npend = c->pend_cap = 0;
    for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    c->db = NULL;
}

/* ---- opening: the file-level check, and creating a database whole ----
 * Before SQLite sees the file, its 100-byte header and its size are checked
 * against what SQLite and this flowrun write (docs/state.md, "Damage"): one
 * open, one read, one fstat, whatever the database's size. What a later
 * statement finds damaged surfaces through sql_fail. */
static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* 1: path does not exist (a new database); 0: looks sound; -1: damaged (err says how). */
static int check_file(const char *path, const char *dir, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 1;
    const char *why = NULL;
    char buf[160];
    uint8_t h[100];
    struct stat sb;
    if (fd < 0) {
        snprintf(buf, sizeof buf, "cannot be opened: %s", strerror(errno));
        why = buf;
    } else if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        why = "is not a regular file";
    } else if (sb.st_size == 0) {
        why = "is empty (0 bytes), though a database is never left empty";
    } else if (sb.st_size < 100 || pread(fd, h, 100, 0) != 100) {
        why = "is truncated (shorter than its header)";
    } else if (memcmp(h, "SQLite format 3", 16)) {
        why = "is not an SQLite database (bad header)";
    } else {
        uint32_t page = (uint32_t)h[16] << 8 | h[17];
        if (page == 1) page = 65536;
        uint32_t pages = be32(h + 28);
        if (page < 512 || page > 65536 || (page & (page - 1)))
            why = "has a damaged header (page size)";
        else if (h[18] < 1 || h[18] > 2 || h[19] < 1 || h[19] > 2 || h[20] != 0 || h[21] != 64 ||
                 h[22] != 32 || h[23] != 32)
            why = "has a damaged header";
        /* the size is checked only when no write-ahead log is pending: a checkpoint
         * cut short leaves the file mid-update, and SQLite finishes it from the log */
        char wal[4200];
        struct stat wb;
        snprintf(wal, sizeof wal, "%s-wal", path);
        int logged = !stat(wal, &wb) && wb.st_size > 0;
        if (why || logged)
            ;
        else if (sb.st_size % page)
            why = "is damaged (its size is not a whole number of pages)";
        else if (be32(h + 92) == be32(h + 24) && pages && (uint64_t)sb.st_size < (uint64_t)pages * page)
            why = "is truncated (shorter than the page count in its header)";
    }
    if (fd >= 0) close(fd);
    if (!why) return 0;
    snprintf(err, errlen, "%s %s; `flowrun fsck --state %s` salvages what can be read into a new "
             "database and keeps this one", path, why, dir);
    return -1;
}

/* A new state.db is made whole under another name and linked into place, so a
 * state.db that exists always holds a schema: an empty or headless one is damage,
 * never "new". Two flowruns creating one at once: the second link fails, and the
 * loser opens the winner's. */
static int create_whole(fl_state *st, char *err, size_t errlen) {
    char tmp[sizeof st->path + 32];
    snprintf(tmp, sizeof tmp, "%s.new-%ld", st->path, (long)getpid());
    unlink(tmp);
    conn c = {.ctx = st->ctx};
    /* written without a journal or a sync (nobody else opens this name), switched
     * to WAL, then synced once before it is linked into place: a fresh state costs
     * one fdatasync instead of a journal's create, syncs and delete, and the state.db
     * that appears is as whole on disk as before */
    int rc = conn_open(&c, tmp, 1, err, errlen) || migrate(&c, err, errlen) ||
             exec(&c, "PRAGMA journal_mode=WAL", err, errlen) ? -1 : 0;
    conn_close(&c);
    int fd = rc ? -1 : open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (rc == 0 && (fd < 0 || fdatasync(fd))) {
        snprintf(err, errlen, "cannot create %s: %s", st->path, strerror(errno));
        rc = -1;
    }
    if (fd >= 0) close(fd);
    if (rc == 0 && link(tmp, st->path) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", st->path, strerror(errno));
        rc = -1;
    }
    unlink(tmp);
    return rc;
}

typedef struct marker_walk {
    fl_state *st;
    int oom;
} marker_walk;

static int crash_marker(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    marker_walk *m = ctx;
    fl_state *st = m->st;
    (void)err, (void)errlen;
    if (e->type == WALK_DIR) return WALK_SKIP; /* markers lie in the state folder itself */
    const size_t plen = strlen(STATE_CRASH_MARKER);
    char *end;
    if (e->type != WALK_REG || strncmp(e->name, STATE_CRASH_MARKER, plen)) return 0;
    long long run = strtoll(e->name + plen, &end, 10);
    if (*end || run <= 0) return 0;
    char why[1024] = "";
    int fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, why, sizeof why - 1);
    close(fd);
    why[n > 0 ? n : 0] = 0;
    why[strcspn(why, "\n")] = 0;
    state_run r;
    int got = state_run_get(st, run, &r);
    if (got == -2 && st->ctx->errcode == FL_ENOMEM) {
        m->oom = 1;
        return -1;
    }
    /* still running as recorded, or read as interrupted because its owner (the
     * flowrun the task killed) is gone: the marker says what really happened */
    int running = got == 0 && r.state && (!strcmp(r.state, "running") || !strcmp(r.state, "interrupted"));
    if (got == 0) state_run_free(&r);
    if (!running || state_run_end(st, run, "failed", 1, NULL,
                                  why[0] ? why : "a task crashed flowrun") == 0)
        unlinkat(e->dirfd, e->name, 0);
    return 0;
}

/* Crash markers (STATE_CRASH_MARKER) left by a flowrun that a task killed under the
 * inline executor: the run, still `running` in the database, becomes failed (exit 1)
 * with the marker's line as its error. The state folder's own entries only (walk.c,
 * not descending). 0, or -1 when memory ran out (a marker left is applied next time). */
static int apply_crash_markers(fl_state *st, const char *dir) {
    int fd = walk_open(AT_FDCWD, dir, 1);
    if (fd < 0) return 0;
    marker_walk m = {st, 0};
    char err[256];
    walk_tree(fd, dir, 0, crash_marker, &m, err, sizeof err);
    close(fd);
    return m.oom ? -1 : 0;
}

fl_state *state_open(fl_ctx *ctx, const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    fl_state *st = fl_calloc(ctx, 1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->ctx = st->main.ctx = st->w.ctx = st->fid.arena.ctx = ctx;
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    snprintf(st->path, sizeof st->path, "%s/state.db", dir);
    int fresh = check_file(st->path, dir, err, errlen);
    if (fresh < 0 || (fresh == 1 && create_whole(st, err, errlen))) {
        fl_free(ctx, st);
        return NULL;
    }
    st->main.said = st->w.said = &st->said;
    if (conn_open(&st->main, st->path, 0, err, errlen) || migrate(&st->main, err, errlen)) {
        /* SQLite's message may quote the damaged file's own text: keep it one line */
        for (char *c = err; errlen && *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
        state_close(st);
        return NULL;
    }
    if (apply_crash_markers(st, dir)) {
        snprintf(err, errlen, "%s", fl_failed(ctx) ? fl_errmsg(ctx) : "out of memory");
        state_close(st);
        return NULL;
    }
    return st;
}

fl_ctx *state_ctx(const fl_state *st) {
    return st->ctx;
}

int state_failed(const fl_state *st) {
    return st && (st->failed || __atomic_load_n(&st->said, __ATOMIC_RELAXED));
}

void state_close(fl_state *st) {
    if (!st) return;
    if (st->async) {
        state_sync(st);
        pthread_mutex_lock(&st->mu);
        st->stop = 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->writer, NULL);
        conn_close(&st->w);
        st->async = 0;
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        if (st->cur) wb_free(st, st->cur);
        st->cur = NULL;
        while (st->spare) {
            wbatch *b = st->spare;
            st->spare = b->next;
            wb_free(st, b);
        }
        st->nspare = 0;
    }
    names_free(st->ctx, &st->names);
    if (st->main.db) state_commit(st);
    read_end(&st->main);
    struct stat wb;
    char wal[sizeof st->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", st->path);
    if (st->main.db && !stat(wal, &wb) && wb.st_size > STATE_WAL_KEEP)
        sqlite3_exec(st->main.db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    conn_close(&st->main);
    fl_htab_free(st->ctx, &st->fid.files);
    fl_htab_free(st->ctx, &st->fid.dirs);
    fl_free(st->ctx, st->fid.arena.data);
    fl_free(st->ctx, st);
}

static void read_end(conn *c) {
    if (!c->in_read) return;
    c->in_read = 0;
    sqlite3_stmt *s = stmt(c, ST_read_commit);
    if (s) {
        sqlite3_step(s);
        sqlite3_reset(s);
    }
}

/* Reads share one read transaction, ended by state_commit (and begin, state_close),
 * and by state_commit_round (a scheduler round's) once STATE_READ_SECONDS old: one
 * set of locks and one snapshot per 50 ms of rounds instead of one per lookup. BEGIN and
 * COMMIT are prepared statements: with slow tasks a round holds about one
 * instance, and parsing the two per round cost more than the lookup itself. */
static void read_begin(conn *c) {
    if (c->in_read || c->in_tx) return;
    sqlite3_stmt *s = stmt(c, ST_read_begin);
    if (s && sqlite3_step(s) == SQLITE_DONE) {
        c->in_read = 1;
        c->read_since = now();
    }
    if (s) sqlite3_reset(s);
}

static int begin(conn *st) {
    read_end(st);
    if (st->in_tx) return 0;
    char err[4700];
    if (exec(st, "BEGIN IMMEDIATE", err, sizeof err)) return sql_fail(st);
    st->in_tx = 1;
    st->pending = 0;
    return 0;
}

/* Sort o by ck, as signed numbers, keeping the order of arrival among equal ck: an
 * LSD radix sort, a byte per pass, skipping the bytes all keys share (the task's
 * tag, usually). tmp has room for n entries. Returns the sorted array (o or tmp).
 * pend_flush's ck is the tag above the order of arrival (bits 0-31), and o comes in
 * that order: the sort is stable, so the low four bytes need no pass (they were
 * three passes over a million entries, 5 % of a cold W1). */
static pend_ord *pend_sort(pend_ord *o, pend_ord *tmp, size_t n) {
    size_t up = 1;
    while (up < n && o[up].ck >= o[up - 1].ck) up++;
    if (up >= n) return o; /* in order already: one task's entries, or tasks one after another */
    for (int b = 4; b < 8; b++) {
        size_t count[257] = {0};
        int shift = 8 * b;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = (uint64_t)o[i].ck ^ (1ull << 63);
            count[((k >> shift) & 0xff) + 1]++;
        }
        int one = 0;
        for (int d = 1; d <= 256; d++) one |= count[d] == n;
        if (one) continue; /* every key has the same byte here */
        for (int d = 1; d <= 256; d++) count[d] += count[d - 1];
        for (size_t i = 0; i < n; i++) {
            uint64_t k = (uint64_t)o[i].ck ^ (1ull << 63);
            tmp[count[(k >> shift) & 0xff]++] = o[i];
        }
        pend_ord *t = o;
        o = tmp;
        tmp = t;
    }
    return o;
}

/* ---- cache packs ----
 * A task's new cache entries go, in the order they were produced, into packs of
 * up to CPACK_MAX: one row of cache_pack(id, tag, n, body) each (docs/state.md,
 * "The cache entry record"). The body, little-endian:
 *   u8 'K', u8 version 1, u16 0, u32 n;
 *   n index slots {u32 the key's first 4 bytes read big-endian, u32 the entry's
 *   offset in the body}, sorted by key prefix (then offset), so one key is found by
 *   a binary search that reads a few slots of the blob, not the whole pack;
 *   n entries in production order: key[32], identity[8], environment u32, run u32,
 *   u8 k, k input hashes of 8 bytes, varint (result length + 1, 0: no result),
 *   the result's bytes.
 * Identity and input hashes come from the key's computation (cachekey.h,
 * ck_key_parts, handed over as state_inst.cache_ident/cache_inputs): zero and none
 * when unknown (migrated entries). The environment is that of the run that wrote the
 * entry (envs.id: 0 prod, which entries of a flowrun before schema 7 say; see
 * "environments"). A dropped entry (a damaged stored
 * file) has its key overwritten with zeros in place: no key is all zeros. */
#define CPACK_MAX 4096
#define CPACK_HEAD 8
#define CPACK_FIXED 49 /* key, identity, environment, run, k */

typedef struct cpack_slot {
    uint32_t prefix, off;
} cpack_slot;

static uint32_t key_prefix(const uint8_t *k) {
    return (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
}
static int slot_cmp(const void *x, const void *y) {
    const cpack_slot *a = x, *b = y;
    if (a->prefix != b->prefix) return a->prefix < b->prefix ? -1 : 1;
    return a->off < b->off ? -1 : a->off > b->off;
}
static inline size_t put_varint(uint8_t *d, uint64_t v) {
    /* (unrolled up to four bytes: a record's numbers — an index, a start in µs — are
     * that long, and this runs a few times per instance) */
    if (v < 1u << 7) {
        d[0] = (uint8_t)v;
        return 1;
    }
    d[0] = (uint8_t)(v | 0x80);
    if (v < 1u << 14) {
        d[1] = (uint8_t)(v >> 7);
        return 2;
    }
    d[1] = (uint8_t)(v >> 7 | 0x80);
    if (v < 1u << 21) {
        d[2] = (uint8_t)(v >> 14);
        return 3;
    }
    d[2] = (uint8_t)(v >> 14 | 0x80);
    if (v < 1u << 28) {
        d[3] = (uint8_t)(v >> 21);
        return 4;
    }
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) d[n++] = (uint8_t)(v | 0x80);
    d[n++] = (uint8_t)v;
    return n;
}
/* A varint of at most 10 bytes from p[0..n): its length, or 0 when it runs past n. */
static size_t get_varint(const uint8_t *p, size_t n, uint64_t *v) {
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

/* Encode one entry at d (room for CPACK_FIXED + 8 * nin + 10 + len bytes): its
 * size. in: nin input hashes; val NULL: no result. */
static size_t cpack_entry(uint8_t *d, const fl_digest *key, uint64_t ident, const void *in,
                          uint32_t nin, uint32_t env, int64_t run, const void *val, size_t len) {
    memcpy(d, key->b, 32);
    memcpy(d + 32, &ident, 8);
    memcpy(d + 40, &env, 4);
    uint32_t r = (uint32_t)run;
    memcpy(d + 44, &r, 4);
    d[48] = (uint8_t)nin;
    if (nin) memcpy(d + CPACK_FIXED, in, 8 * (size_t)nin);
    size_t at = CPACK_FIXED + 8 * (size_t)nin;
    at += put_varint(d + at, val ? (uint64_t)len + 1 : 0);
    if (val && len) memcpy(d + at, val, len);
    return at + (val ? len : 0);
}

/* Sort a pack's index ix[0..n) (n <= CPACK_MAX) by slot_cmp. Its slots come with
 * their offsets ascending (entries are laid out in the order of their slots), so a
 * stable sort by prefix alone gives slot_cmp's order: an LSD radix sort, a byte per
 * pass, skipping a byte all prefixes share; qsort if the offsets do not ascend. (It
 * was qsort always: ~12 calls of slot_cmp per entry, 7 % of a cold W1.) */
static void slot_sort(cpack_slot *ix, size_t n) {
    int ascending = n <= CPACK_MAX;
    for (size_t i = 1; i < n && ascending; i++) ascending = ix[i].off > ix[i - 1].off;
    if (!ascending) {
        qsort(ix, n, sizeof *ix, slot_cmp);
        return;
    }
    cpack_slot tmp[CPACK_MAX], *a = ix, *b = tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((a[i].prefix >> shift) & 0xff) + 1]++;
        if (count[((a[0].prefix >> shift) & 0xff) + 1] == n) continue;
        for (int d = 1; d <= 256; d++) count[d] += count[d - 1];
        for (size_t i = 0; i < n; i++) b[count[(a[i].prefix >> shift) & 0xff]++] = a[i];
        cpack_slot *t = a;
        a = b;
        b = t;
    }
    if (a != ix) memcpy(ix, a, n * sizeof *ix);
}

/* Finish a body of n entries: its header, and its index ix (at d + CPACK_HEAD,
 * offsets already set) sorted. */
static void cpack_finish(uint8_t *d, cpack_slot *ix, size_t n) {
    if (n) slot_sort(ix, n);
    d[0] = 'K';
    d[1] = 1;
    d[2] = d[3] = 0;
    uint32_t nn = (uint32_t)n;
    memcpy(d + 4, &nn, 4);
}

/* Is the entry at e live (not dropped: its key overwritten with zeros)? */
static int cpack_live(const uint8_t *e) {
    static const uint8_t zero[32];
    return memcmp(e, zero, 32) != 0;
}

/* Walk pack body p[0..size): fn(entry, its size, its result, the result's length,
 * ctx) for each entry in production order, dropped ones included. 0, 1 when fn
 * stopped, or -1 when the body is damaged (the entries before the damage were
 * given); nothing is read past p + size. */
typedef int (*cpack_fn)(const uint8_t *e, size_t elen, const uint8_t *val, size_t len,
                        void *ctx);
static int cpack_walk(const uint8_t *p, size_t size, cpack_fn fn, void *ctx) {
    uint32_t n;
    if (!p || size < CPACK_HEAD || p[0] != 'K' || p[1] != 1) return -1;
    memcpy(&n, p + 4, 4);
    if (n == 0 || n > CPACK_MAX || CPACK_HEAD + 8 * (size_t)n > size) return -1;
    size_t at = CPACK_HEAD + 8 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        if (size - at < CPACK_FIXED || size - at - CPACK_FIXED < 8 * (size_t)p[at + 48])
            return -1;
        const uint8_t *e = p + at;
        at += CPACK_FIXED + 8 * (size_t)e[48];
        uint64_t l;
        size_t used = get_varint(p + at, size - at, &l);
        if (!used || (l && l - 1 > size - at - used)) return -1;
        at += used;
        size_t len = l ? (size_t)l - 1 : 0;
        if (fn(e, (size_t)(p + at + len - e), p + at, len, ctx)) return 1;
        at += len;
    }
    return 0;
}

/* An entry of an absorbed pack, as it is encoded: at off in conn.absorb. */
typedef struct cpack_raw {
    size_t off, len;
} cpack_raw;

/* Entries first..first+n of one tag's flush as one pack: the absorbed packs' live
 * entries (c->raw) come first, then the held entries o[] in order of arrival. */
static int cpack_write(conn *c, int64_t tag, const pend_ord *o, size_t first, size_t n) {
    size_t size = CPACK_HEAD + 8 * n;
    for (size_t i = first; i < first + n; i++) {
        const pend_entry *e = i < c->nraw ? NULL : &c->pend[o[i - c->nraw].i];
        size += e ? CPACK_FIXED + 8 * (size_t)e->nin + 10 + e->len : c->raw[i].len;
    }
    c->cpack.len = 0;
    if (size > INT32_MAX || !fv_buf_grow(&c->cpack, size)) return -1;
    uint8_t *d = c->cpack.data;
    cpack_slot *ix = (cpack_slot *)(d + CPACK_HEAD);
    size_t at = CPACK_HEAD + 8 * n;
    for (size_t i = first; i < first + n; i++) {
        if (i < c->nraw) { /* as it was encoded */
            const uint8_t *r = c->absorb.data + c->raw[i].off;
            ix[i - first] = (cpack_slot){key_prefix(r), (uint32_t)at};
            memcpy(d + at, r, c->raw[i].len);
            at += c->raw[i].len;
            continue;
        }
        const pend_entry *e = &c->pend[o[i - c->nraw].i];
        ix[i - first] = (cpack_slot){key_prefix(e->key.b), (uint32_t)at};
        at += cpack_entry(d + at, &e->key, e->ident,
                          e->nin ? c->pend_data.data + e->in_off : NULL, e->nin, e->env, e->run,
                          e->off == SIZE_MAX ? NULL : c->pend_data.data + e->off, e->len);
    }
    cpack_finish(d, ix, n);
    sqlite3_stmt *s = stmt(c, ST_cache_set);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, tag);
    sqlite3_bind_int64(s, 2, (int64_t)n);
    sqlite3_bind_blob(s, 3, d, (int)at, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sql_fail(c);
    sqlite3_reset(s);
    return rc;
}

static void cpack_bad(conn *c, int64_t id);
static int cpack_none(const uint8_t *e, size_t elen, const uint8_t *val, size_t len, void *ctx) {
    (void)e, (void)elen, (void)val, (void)len, (void)ctx;
    return 0;
}
static int cpack_raw_add(const uint8_t *e, size_t elen, const uint8_t *val, size_t len,
                         void *ctx) {
    (void)val, (void)len;
    conn *c = ctx;
    if (!cpack_live(e)) return 0; /* dropped: it goes */
    if (c->nraw == c->raw_cap) {
        size_t cap = c->raw_cap ? 2 * c->raw_cap : 256;
        cpack_raw *v = fl_reallocarray(c->ctx, c->raw, cap, sizeof *v);
        if (!v) return 1;
        c->raw = v;
        c->raw_cap = cap;
    }
    c->raw[c->nraw++] = (cpack_raw){(size_t)(e - c->absorb.data), elen};
    return 0;
}

/* A flush of m new entries of tag absorbs the tag's newest packs while each is not
 * full and holds at most twice the entries gathered so far (the new ones and those
 * of the packs absorbed before it): their live entries are written again, before
 * the new ones, and the packs deleted (cpack_unpack). So the packs that are not
 * full, oldest to newest, each hold more than twice the next: at most 12 of them
 * (log2 CPACK_MAX) per tag, however many small flushes (state_sync, short runs)
 * wrote them, and an entry is written again about as often as a binary counter's
 * bit flips. They are the tag's newest packs, so their entries stay newer than
 * every other pack's, and newest-first lookups stay right. A damaged pack is not
 * absorbed (it stays, skipped by readers). 0, or -1. */
static int cpack_absorb(conn *c, int64_t tag, size_t m) {
    c->nraw = 0;
    c->absorb.len = 0;
    c->nabsorbed = 0;
    sqlite3_stmt *s = stmt(c, ST_cache_tail);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, tag);
    size_t seg[16][2], g = m;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && c->nabsorbed < 16) {
        int64_t id = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 1);
        if (n >= CPACK_MAX || (n > 0 && (uint64_t)n > 2 * (uint64_t)g)) break;
        const uint8_t *p = sqlite3_column_blob(s, 2);
        size_t size = (size_t)sqlite3_column_bytes(s, 2);
        if (cpack_walk(p, size, cpack_none, NULL)) {
            cpack_bad(c, id);
            break;
        }
        seg[c->nabsorbed][0] = c->absorb.len;
        fv_buf_put(&c->absorb, p, size);
        if (c->absorb.len != seg[c->nabsorbed][0] + size) {
            sqlite3_reset(s);
            return -1;
        }
        seg[c->nabsorbed][1] = size;
        c->absorbed[c->nabsorbed++] = id;
        g += (size_t)n;
    }
    int err = rc != SQLITE_ROW && rc != SQLITE_DONE;
    sqlite3_reset(s);
    if (err) return sql_fail(c);
    for (int k = c->nabsorbed - 1; k >= 0; k--) /* oldest first */
        if (cpack_walk(c->absorb.data + seg[k][0], seg[k][1], cpack_raw_add, c)) return -1;
    return 0;
}

/* Delete the packs cpack_absorb absorbed (their entries are written again). */
static int cpack_unpack(conn *c) {
    sqlite3_stmt *s = c->nabsorbed ? stmt(c, ST_cache_unpack) : NULL;
    if (c->nabsorbed && !s) return -1;
    for (int k = 0; k < c->nabsorbed; k++) {
        sqlite3_bind_int64(s, 1, c->absorbed[k]);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return sql_fail(c);
    }
    c->nabsorbed = 0;
    return 0;
}

/* flow_pack(key, result) in SQL, an aggregate: the migration to schema 5 packs the
 * cache table's entries with it (run unknown: 0). */
typedef struct cpack_agg {
    fv_buf ent;        /* the entries, encoded */
    fv_buf slots;      /* their cpack_slot, offsets into ent */
    int failed;
} cpack_agg;
static void sql_pack_step(sqlite3_context *cx, int argc, sqlite3_value **argv) {
    (void)argc;
    cpack_agg *g = sqlite3_aggregate_context(cx, sizeof *g);
    if (!g || g->failed || sqlite3_value_bytes(argv[0]) != 32) return;
    fl_digest key;
    memcpy(key.b, sqlite3_value_blob(argv[0]), 32);
    size_t len = (size_t)sqlite3_value_bytes(argv[1]);
    const void *val = sqlite3_value_type(argv[1]) == SQLITE_NULL ? NULL
                      : len ? sqlite3_value_blob(argv[1]) : "";
    if (!fv_buf_grow(&g->ent, g->ent.len + CPACK_FIXED + 10 + len) ||
        !fv_buf_grow(&g->slots, g->slots.len + sizeof(cpack_slot))) {
        g->failed = 1;
        return;
    }
    cpack_slot sl = {key_prefix(key.b), (uint32_t)g->ent.len};
    fv_buf_put(&g->slots, &sl, sizeof sl);
    g->ent.len += cpack_entry(g->ent.data + g->ent.len, &key, 0, NULL, 0, 0, 0, val, len);
}
static void sql_pack_final(sqlite3_context *cx) {
    cpack_agg *g = sqlite3_aggregate_context(cx, 0);
    size_t n = g ? g->slots.len / sizeof(cpack_slot) : 0;
    size_t head = CPACK_HEAD + 8 * n, size = head + (g ? g->ent.len : 0);
    uint8_t *d = n && !g->failed && size <= INT32_MAX ? sqlite3_malloc64(size) : NULL;
    if (d) {
        cpack_slot *ix = (cpack_slot *)(d + CPACK_HEAD);
        memcpy(ix, g->slots.data, 8 * n);
        for (size_t i = 0; i < n; i++) ix[i].off += (uint32_t)head;
        memcpy(d + head, g->ent.data, g->ent.len);
        cpack_finish(d, ix, n);
        sqlite3_result_blob64(cx, d, size, sqlite3_free);
    } else if (n) {
        sqlite3_result_error_nomem(cx);
    } else {
        sqlite3_result_null(cx);
    }
    if (g) {
        free(g->ent.data); /* fv_buf: value.c's allocation */
        free(g->slots.data);
    }
}

/* Write the held cache entries (inside the open transaction): grouped by task
 * tag, each group in order of arrival, CPACK_MAX to a pack. */
static int pend_flush(conn *c) {
    int rc = 0;
    if (!c->npend) return 0;
    pend_ord *o = fl_reallocarray(c->ctx, c->pend_ord, 2 * c->npend, sizeof *o);
    if (!o) return -1;
    c->pend_ord = o;
    for (size_t i = 0; i < c->npend; i++) o[i] = (pend_ord){c->pend[i].ck << 32 | (int64_t)i, i};
    o = pend_sort(o, o + c->npend, c->npend); /* by tag, then arrival */
    for (size_t i = 0, j; i < c->npend && rc == 0; i = j) {
        int64_t tag = c->pend[o[i].i].ck;
        for (j = i; j < c->npend && c->pend[o[j].i].ck == tag; j++) {}
        rc = cpack_absorb(c, tag, j - i);
        size_t total = c->nraw + (j - i);
        for (size_t k = 0; k < total && rc == 0; k += CPACK_MAX)
            rc = cpack_write(c, tag, o + i, k, total - k < CPACK_MAX ? total - k : CPACK_MAX);
        if (rc == 0) rc = cpack_unpack(c);
    }
    c->npend = 0;
    c->pend_data.len = 0;
    c->pend_since = 0;
    return rc;
}

static int packs_flush(conn *c);

static int conn_commit(conn *st) {
    if (!st->in_tx) return 0;
    char err[4700];
    if (packs_flush(st)) { /* the packed rows belong to this transaction */
        st->in_tx = 0;
        exec(st, "ROLLBACK", err, sizeof err);
        return -1;
    }
    st->in_tx = 0;
    if (exec(st, "COMMIT", err, sizeof err)) {
        sql_fail(st);
        exec(st, "ROLLBACK", err, sizeof err);
        return -1;
    }
    return 0;
}

/* A write inside the batch transaction. */
static int step_write(conn *st, sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sql_fail(st);
    if (++st->pending >= STATE_AUTOCOMMIT) {
        if (conn_commit(st)) return -1;
        return begin(st);
    }
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t) {
    if (t) sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static void bind_hash(sqlite3_stmt *s, int i, const fl_digest *h) {
    if (h) sqlite3_bind_blob(s, i, h->b, 32, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

/* ---- the writer thread ----------------------------------------------------------
 * In async mode the caller's writes of instances, cache entries and file
 * identities are appended as records to st->cur; state_commit hands that batch to
 * the writer, which replays batches in order, each in a transaction on its own
 * connection. Records: a kind byte, then the fields (u64 little-endian numbers,
 * f64, and strings/blobs as a u64 length + bytes, length UINT64_MAX for NULL).
 * Two kinds carry the packed instance records (see "packed rows") that make up
 * nearly all of a wide run's history: REC_PACK is one record already encoded by the
 * caller in its final form (u32 name, u8 cache_store, u32 length, u32 offsets of
 * its key and of its result's bytes in it (PK_NONE when absent), u32 the result's
 * length, the record's bytes), which the writer appends to its pack as it is and
 * enters in the cache without decoding it; REC_NAME numbers a name
 * (u32 number, u64 run, u32 node, task, template), sent once before the first
 * record that uses it. REC_PACKS is a run of such records of one name that go
 * only into their pack, not into the cache (u32 name, u32 count, u32 length, the
 * records' bytes one after another): the caller extends the run while the records
 * it encodes follow one another in the batch, and the writer appends the run to its
 * pack in one copy, paying nothing per record. REC_KEYPARTS (32-byte key, u64
 * identity, u32 n, n u64 input hashes) goes right before a record that enters the
 * cache: its key's parts, for that cache entry (conn.parts). */
enum { REC_INST = 1, REC_CACHE_PUT, REC_CACHE_DROP, REC_FILE, REC_NAME, REC_PACK, REC_PACKS,
       REC_KEYPARTS };
#define PK_ONE_HEAD 22      /* REC_PACK's bytes before its record */
#define PK_NONE UINT32_MAX  /* REC_PACK: no key, no result */

static void wb_put(fl_state *st, const void *p, size_t n) {
    if (st->wb_oom) return;
    if (!st->cur) {
        /* a batch the writer is done with, when there is one: a new one's buffer
         * is fresh memory, each of its pages a fault (≈ 11 µs here), and a wide
         * run starts a batch every round (a warm W1 10^6: 40 MB of them) */
        if (st->async) {
            pthread_mutex_lock(&st->mu);
            if ((st->cur = st->spare)) {
                st->spare = st->cur->next;
                st->nspare--;
                st->cur->next = NULL;
                st->cur->rec.len = 0;
            }
            pthread_mutex_unlock(&st->mu);
        }
        if (!st->cur) st->cur = fl_calloc(st->ctx, 1, sizeof *st->cur);
        st->run_in = NULL;
        st->cur_since = now();
        if (!st->cur) { /* the batch is lost: state_commit says so */
            st->wb_oom = 1;
            return;
        }
        fv_buf_grow(&st->cur->rec, 1 << 16); /* a round's records: skip the small sizes */
    }
    fv_buf_put(&st->cur->rec, p, n);
}

static void wb_free(fl_state *st, wbatch *b) {
    free(b->rec.data); /* fv_buf: value.c's allocation */
    fl_free(st->ctx, b);
}
static void wb_u64(fl_state *st, uint64_t v) { wb_put(st, &v, 8); }
static void wb_f64(fl_state *st, double v) { wb_put(st, &v, 8); }
static void wb_blob(fl_state *st, const void *p, size_t n, int present) {
    wb_u64(st, present ? n : UINT64_MAX);
    if (present && n) wb_put(st, p, n);
}
static void wb_str(fl_state *st, const char *s) { wb_blob(st, s, s ? strlen(s) + 1 : 0, s != NULL); }

typedef struct rd {
    const uint8_t *p, *end;
} rd;
static uint64_t rd_u64(rd *r) {
    uint64_t v = 0;
    if (r->end - r->p >= 8) memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}
static double rd_f64(rd *r) {
    double v = 0;
    if (r->end - r->p >= 8) memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}
static const void *rd_blob(rd *r, size_t *n) {
    uint64_t len = rd_u64(r);
    if (len == UINT64_MAX) {
        *n = 0;
        return NULL;
    }
    const void *p = r->p;
    r->p += len;
    *n = (size_t)len;
    return p;
}
static const char *rd_str(rd *r) {
    size_t n;
    return rd_blob(r, &n);
}

static int apply_inst(conn *c, const state_inst *r);
static int apply_packed(conn *c, uint32_t name, const uint8_t *rec, size_t len, int cache_store,
                        const fl_digest *key, const uint8_t *result, size_t result_len);
static int pack_write(conn *c, pack *k);
static pack *pack_of(conn *c, int64_t run, uint32_t node, int create);
static int apply_packed_run(conn *c, uint32_t name, const uint8_t *recs, size_t len,
                            uint32_t count);
static int names_set(fl_ctx *ctx, pk_names *t, uint32_t id, int64_t run, uint32_t node,
                     const char *task, const char *tmpl, double base, int32_t pid,
                     int64_t rss);
static int apply_cache_put(conn *c, const fl_digest *key, const void *val, size_t len, int64_t run,
                           const fl_digest *objs, size_t nobjs);
static int apply_cache_drop(conn *c, const char *task, const fl_digest *key);
int state_files_each(fl_state *st, int (*fn)(const char *path, const fl_digest *h, void *ctx),
                     void *ctx) {
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_file_all);
    if (!s) return -1;
    int rc = SQLITE_DONE, stop = 0;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(s, 0);
        if (!path || sqlite3_column_bytes(s, 1) != 32) continue; /* not a whole row */
        fl_digest h;
        memcpy(h.b, sqlite3_column_blob(s, 1), 32);
        stop = fn(path, &h, ctx);
        if (!stop && sqlite3_column_bytes(s, 2) == 32) { /* as before its last change */
            memcpy(h.b, sqlite3_column_blob(s, 2), 32);
            stop = fn(path, &h, ctx);
        }
    }
    if (!stop && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    return stop || rc == SQLITE_DONE ? 0 : -1;
}

static int apply_file(conn *c, const char *path, const state_file_id *id, const fl_digest *h);

static int replay(conn *c, const wbatch *b) {
    rd r = {b->rec.data, b->rec.data + b->rec.len};
    int rc = 0;
    while (r.p < r.end && rc == 0) {
        uint8_t kind = *r.p++;
        size_t n;
        if (kind == REC_PACK) { /* a record appended as it is, and entered in the cache */
            uint32_t name, len, at[3];
            if (r.end - r.p < PK_ONE_HEAD - 1) return -1;
            memcpy(&name, r.p, 4);
            uint8_t cache_store = r.p[4];
            memcpy(&len, r.p + 5, 4);
            memcpy(at, r.p + 9, 12); /* its key's and result's offsets, the result's length */
            r.p += PK_ONE_HEAD - 1;
            if ((size_t)(r.end - r.p) < len || (at[0] != PK_NONE && (uint64_t)at[0] + 32 > len) ||
                (at[1] != PK_NONE && (uint64_t)at[1] + at[2] > len))
                return -1;
            rc = apply_packed(c, name, r.p, len, cache_store,
                              at[0] == PK_NONE ? NULL : (const fl_digest *)(r.p + at[0]),
                              at[1] == PK_NONE ? NULL : r.p + at[1], at[2]);
            r.p += len;
        } else if (kind == REC_PACKS) {
            uint32_t name, count, len;
            if (r.end - r.p < 12) return -1;
            memcpy(&name, r.p, 4);
            memcpy(&count, r.p + 4, 4);
            memcpy(&len, r.p + 8, 4);
            r.p += 12;
            if ((size_t)(r.end - r.p) < len) return -1;
            rc = apply_packed_run(c, name, r.p, len, count);
            r.p += len;
        } else if (kind == REC_KEYPARTS) {
            uint32_t nin;
            if (r.end - r.p < 44) return -1;
            memcpy(&nin, r.p + 40, 4);
            if (nin > 255 || (size_t)(r.end - r.p) < 44 + 8 * (size_t)nin) return -1;
            memcpy(c->parts.key.b, r.p, 32);
            memcpy(&c->parts.ident, r.p + 32, 8);
            c->parts.n = nin;
            if (nin) memcpy(c->parts.in, r.p + 44, 8 * (size_t)nin);
            c->parts.set = 1;
            r.p += 44 + 8 * (size_t)nin;
        } else if (kind == REC_NAME) {
            uint32_t id = (uint32_t)rd_u64(&r);
            int64_t run = (int64_t)rd_u64(&r);
            uint32_t node = (uint32_t)rd_u64(&r);
            const char *task = rd_str(&r);
            const char *tmpl = rd_str(&r);
            uint64_t bits = rd_u64(&r);
            int32_t pid = (int32_t)rd_u64(&r);
            int64_t rss = (int64_t)rd_u64(&r);
            double base;
            memcpy(&base, &bits, 8);
            if (r.p > r.end || !task) return -1;
            pack *k = pack_of(c, run, node, 0); /* renumbered: its open row is closed */
            if (k && k->n && k->name == id && pack_write(c, k)) return -1;
            rc = names_set(c->ctx, &c->names, id, run, node, task, tmpl, base, pid, rss);
        } else if (kind == REC_INST) {
            state_inst x = {0};
            fl_digest key;
            x.run = (int64_t)rd_u64(&r);
            x.node = (uint32_t)rd_u64(&r);
            x.idx = rd_str(&r);
            x.task = rd_str(&r);
            x.tmpl = rd_str(&r);
            x.label = rd_str(&r);
            x.state = rd_str(&r);
            x.attempts = (int)rd_u64(&r);
            const void *k = rd_blob(&r, &n);
            if (k && n == 32) {
                memcpy(key.b, k, 32);
                x.cache_key = &key;
            }
            x.cache_hit = (int)rd_u64(&r);
            x.started = rd_f64(&r);
            x.ended = rd_f64(&r);
            x.exit_status = (int)(int64_t)rd_u64(&r);
            x.term_signal = (int)rd_u64(&r);
            x.error = rd_str(&r);
            x.worker_pid = (int)rd_u64(&r);
            x.peak_rss_kb = (int64_t)rd_u64(&r);
            x.result = rd_blob(&r, &x.result_len);
            x.cache_store = (int)rd_u64(&r);
            rc = apply_inst(c, &x);
        } else if (kind == REC_CACHE_PUT) {
            fl_digest key;
            const void *k = rd_blob(&r, &n);
            if (n == 32) memcpy(key.b, k, 32);
            size_t vlen;
            const void *val = rd_blob(&r, &vlen);
            int64_t run = (int64_t)rd_u64(&r);
            size_t olen;
            const void *objs = rd_blob(&r, &olen);
            rc = apply_cache_put(c, &key, val, vlen, run, objs, olen / sizeof(fl_digest));
        } else if (kind == REC_CACHE_DROP) {
            fl_digest key;
            const char *task = rd_str(&r);
            const void *k = rd_blob(&r, &n);
            if (n == 32) memcpy(key.b, k, 32);
            rc = apply_cache_drop(c, task, &key);
        } else if (kind == REC_FILE) {
            const char *path = rd_str(&r);
            state_file_id id;
            id.size = (int64_t)rd_u64(&r);
            id.mtime_ns = (int64_t)rd_u64(&r);
            id.inode = (int64_t)rd_u64(&r);
            id.ctime_ns = (int64_t)rd_u64(&r);
            fl_digest h;
            const void *hb = rd_blob(&r, &n);
            if (n == 32) memcpy(h.b, hb, 32);
            rc = apply_file(c, path, &id, &h);
        } else {
            rc = -1;
        }
    }
    return rc;
}

static void *writer_main(void *arg) {
    fl_state *st = arg;
    pthread_setname_np(pthread_self(), "flow-state");
    pthread_mutex_lock(&st->mu);
    for (;;) {
        int due = 0;
        for (;;) { /* wait until there is something to write, and it is time */
            int urgent = st->stop || st->syncing || st->qbytes >= STATE_GROUP_BYTES;
            double at;
            if (st->qhead) {
                /* batches are queued: group them with what comes within
                 * STATE_GROUP_SECONDS of the last transaction, unless asked now */
                at = st->last_tx + STATE_GROUP_SECONDS;
                if (urgent || now() >= at) break;
            } else if (st->held) {
                /* cache entries are held: write them when they are
                 * STATE_CACHE_HOLD_SECONDS old, even if no more work comes */
                if (urgent) break;
                at = st->w.pend_since + STATE_CACHE_HOLD_SECONDS;
            } else {
                if (st->stop) break;
                pthread_cond_wait(&st->cv, &st->mu);
                continue;
            }
            struct timespec ts = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
            st->grouping = st->qhead != NULL;
            int rc = pthread_cond_timedwait(&st->cv, &st->mu, &ts);
            st->grouping = 0;
            if (rc == ETIMEDOUT && !st->qhead) {
                due = 1;
                break;
            }
        }
        if (!st->qhead && !st->held && st->stop) break;
        int flush = st->stop || st->syncing || due;
        wbatch *list = st->qhead; /* take everything queued: one transaction */
        st->qhead = st->qtail = NULL;
        st->qbytes = 0;
        st->busy = 1;
        st->last_tx = now();
        pthread_mutex_unlock(&st->mu);
        int rc = begin(&st->w);
        wbatch *done = NULL;
        int ndone = 0;
        for (wbatch *b = list, *next; b; b = next) {
            next = b->next;
            if (rc == 0) rc = replay(&st->w, b);
            if (ndone < STATE_SPARE && !b->rec.failed && b->rec.cap <= STATE_GROUP_BYTES) {
                b->next = done; /* kept for the caller (wb_put) */
                done = b;
                ndone++;
            } else {
                wb_free(st, b);
            }
        }
        if (rc == 0 && (flush || st->w.npend >= STATE_CACHE_HOLD ||
                        st->w.pend_data.len >= STATE_CACHE_HOLD_BYTES ||
                        (st->w.npend && now() - st->w.pend_since >= STATE_CACHE_HOLD_SECONDS)))
            rc = pend_flush(&st->w);
        if (rc == 0) rc = conn_commit(&st->w);
        else conn_commit(&st->w);
        pthread_mutex_lock(&st->mu);
        while (done) {
            wbatch *b = done;
            done = b->next;
            if (st->nspare < STATE_SPARE) {
                b->next = st->spare;
                st->spare = b;
                st->nspare++;
            } else {
                wb_free(st, b);
            }
        }
        st->held = st->w.npend > 0;
        if (rc && !st->failed) {
            st->failed = 1;
            if (!__atomic_exchange_n(&st->said, 1, __ATOMIC_RELAXED))
                fl_log(st->ctx, FL_LOG_ERROR, "%s: recording history failed", st->path);
        }
        st->busy = 0;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int state_async(fl_state *st) {
    if (st->async) return 0;
    char err[4700];
    if (conn_open(&st->w, st->path, 0, err, sizeof err) ||
        /* the writer checkpoints (SQLite's automatic one: passive, it waits for
         * nobody) each time the log passes 16 MiB, so a wide run copies its log into
         * the database on the writer's thread while the scheduler works, not all
         * at state_close (a cold W1 10^6: a tenth of its time, serially, at the end);
         * state_close still checkpoints what is left past STATE_WAL_KEEP. An 8 MiB
         * page cache: the writer appends (packs, rows), and the pages it wrote are not
         * read again; a larger cache filled with fresh pages, each a page fault,
         * which cost a cold W1 10^6 a sixth of its time */
        exec(&st->w, "PRAGMA wal_autocheckpoint=1024; PRAGMA cache_size=-8192", err,
             sizeof err)) {
        fl_log(st->ctx, FL_LOG_ERROR, "%s", err);
        conn_close(&st->w);
        return -1;
    }
    st->w.defer_cache = 1;
    st->w.env = st->main.env; /* the entries it writes are this environment's */
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->writer, NULL, writer_main, st)) {
        conn_close(&st->w);
        return -1;
    }
    st->async = 1;
    return 0;
}

static int commit_queue(fl_state *st, int round);

int state_commit(fl_state *st) {
    read_end(&st->main); /* the next reads see a fresh snapshot */
    return commit_queue(st, 0);
}

int state_commit_round(fl_state *st) {
    /* a later round reads a fresh snapshot once this one is STATE_READ_SECONDS old */
    if (st->main.in_read && now() - st->main.read_since >= STATE_READ_SECONDS) read_end(&st->main);
    return commit_queue(st, 1);
}

/* Queue the batch being filled; round: at the end of a scheduler round, when a
 * small young batch is held instead (STATE_HOLD_*): 1 then. */
static int commit_queue(fl_state *st, int round) {
    if (st->wb_oom) return -1; /* records were lost: the history is incomplete */
    if (st->async) {
        if (st->cur && st->cur->rec.len) {
            pthread_mutex_lock(&st->mu);
            if (round && !st->failed && st->cur->rec.len < STATE_HOLD_BYTES &&
                now() - st->cur_since < STATE_HOLD_SECONDS) {
                pthread_mutex_unlock(&st->mu);
                return 1;
            }
            if (st->qtail) st->qtail->next = st->cur;
            else st->qhead = st->cur;
            st->qtail = st->cur;
            st->qbytes += st->cur->rec.len;
            /* wake the writer unless it is busy or grouping (then it looks at the
             * queue when it is done, or when its time comes): a wake-up per round
             * would cost as much as the round with slow tasks */
            if (!(st->busy || st->grouping) || st->qbytes >= STATE_GROUP_BYTES)
                pthread_cond_broadcast(&st->cv);
            /* back-pressure: a caller far ahead of the writer waits, so memory stays bounded */
            while (st->qbytes > STATE_MAX_QUEUE && !st->failed) pthread_cond_wait(&st->cv, &st->mu);
            pthread_mutex_unlock(&st->mu);
            st->cur = NULL;
            st->run_in = NULL; /* the next record starts a run of its own */
        }
        return st->failed ? -1 : 0;
    }
    return conn_commit(&st->main);
}

int state_sync(fl_state *st) {
    int rc = state_commit(st);
    if (st->async) {
        pthread_mutex_lock(&st->mu);
        st->syncing++; /* the writer writes the cache entries it holds, too */
        pthread_cond_broadcast(&st->cv);
        while ((st->qhead || st->busy || st->held) && !st->failed)
            pthread_cond_wait(&st->cv, &st->mu);
        st->syncing--;
        rc = st->failed ? -1 : 0;
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

/* ---- run owners ------------------------------------------------------------------
 * A run stored as `running` belongs to the flowrun process that started (or
 * resumed) it: its pid, host name, start time (field 22 of /proc/PID/stat, clock
 * ticks since boot) and the host's boot id. On the owner's host we can tell when
 * it is gone: no process with that pid, a zombie, or one that started at another
 * time or in another boot (the pid was reused). Such a run is read as
 * `interrupted` (state_run_get, state_runs_each), and a writer that starts or
 * resumes a run stores that state (sweep_gone). An owner on another host cannot
 * be checked from here: the run stays `running`, and the reader shows where.
 * Rows written before schema 3 (or by a flowrun of schema 2) have only the pid;
 * such an owner is gone when no process has that pid. */
typedef struct owner {
    int pid;
    char host[256];
    int64_t start;  /* clock ticks since boot; 0 unknown */
    char boot[64];  /* boot id; "" unknown */
} owner;

static void read_line(const char *path, char *buf, size_t len) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(buf, (int)len, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

/* A process's start time and whether it is a zombie, from /proc/PID/stat; -1 when
 * there is no such process (or no /proc). */
static int proc_start(int pid, int64_t *start, int *zombie) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
    if (!p) return -1;
    p++;
    *zombie = 0;
    *start = 0;
    /* fields after the name: 3 state, ..., 22 starttime */
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ') p++;
        if (!*p) return -1;
        if (field == 3) *zombie = *p == 'Z' || *p == 'X';
        if (field == 22) *start = strtoll(p, NULL, 10);
        while (*p && *p != ' ') p++;
    }
    return 0;
}

static void owner_self(owner *o) {
    memset(o, 0, sizeof *o);
    o->pid = (int)getpid();
    if (gethostname(o->host, sizeof o->host - 1)) snprintf(o->host, sizeof o->host, "localhost");
    int zombie;
    if (proc_start(o->pid, &o->start, &zombie)) o->start = 0;
    read_line("/proc/sys/kernel/random/boot_id", o->boot, sizeof o->boot);
}

/* Is the stored owner alive, gone, or on another host? */
static int owner_status(int pid, const char *host, int64_t start, const char *boot) {
    owner me;
    owner_self(&me);
    if (host && *host && strcmp(host, me.host)) return STATE_OWNER_REMOTE;
    if (pid <= 0) return STATE_OWNER_GONE;
    if (boot && *boot && *me.boot && strcmp(boot, me.boot)) return STATE_OWNER_GONE; /* rebooted */
    int64_t t;
    int zombie;
    if (proc_start(pid, &t, &zombie) == 0) {
        if (zombie) return STATE_OWNER_GONE;
        return start && t != start ? STATE_OWNER_GONE : STATE_OWNER_ALIVE;
    }
    /* no /proc entry to read (no /proc, or hidden): ask the kernel; EPERM means the
     * process exists. Its start time cannot be checked then. */
    return kill(pid, 0) == 0 || errno == EPERM ? STATE_OWNER_ALIVE : STATE_OWNER_GONE;
}

static void owner_gone_error(char *buf, size_t len, int pid, const char *host) {
    snprintf(buf, len, "its flowrun (pid %d%s%.64s) stopped before the run ended", pid,
             host && *host ? " on " : "", host && *host ? host : "");
}

/* Store `interrupted` for every running run whose owner is gone (inside the
 * caller's write transaction). */
static int sweep_gone(conn *c) {
    sqlite3_stmt *s = stmt(c, ST_run_running);
    if (!s) return -1;
    int64_t gone[64];
    int ngone = 0, pids[64];
    char hosts[64][64];
    while (ngone < 64 && sqlite3_step(s) == SQLITE_ROW) {
        const char *host = (const char *)sqlite3_column_text(s, 2);
        if (owner_status(sqlite3_column_int(s, 1), host, sqlite3_column_int64(s, 3),
                         (const char *)sqlite3_column_text(s, 4)) != STATE_OWNER_GONE)
            continue;
        gone[ngone] = sqlite3_column_int64(s, 0);
        pids[ngone] = sqlite3_column_int(s, 1);
        snprintf(hosts[ngone], sizeof hosts[ngone], "%s", host ? host : "");
        ngone++;
    }
    sqlite3_reset(s);
    for (int i = 0; i < ngone; i++) {
        sqlite3_stmt *u = stmt(c, ST_run_gone);
        if (!u) return -1;
        char why[160];
        owner_gone_error(why, sizeof why, pids[i], hosts[i]);
        bind_text(u, 1, why);
        sqlite3_bind_int64(u, 2, gone[i]);
        if (step_write(c, u)) return -1;
    }
    return 0;
}

/* ---- runs (always synchronous, on the caller's connection) ---- */
/* Insert r as a running run owned by this process (inside a transaction). */
static int run_insert(conn *c, state_run *r) {
    sqlite3_stmt *s = stmt(c, ST_run_insert);
    if (!s) return -1;
    owner me;
    owner_self(&me);
    bind_text(s, 1, r->flow);
    bind_text(s, 2, r->env ? r->env : "prod");
    bind_text(s, 3, r->params_json ? r->params_json : "{}");
    bind_text(s, 4, r->plan_path);
    bind_hash(s, 5, &r->plan_hash);
    sqlite3_bind_double(s, 6, r->started ? r->started : now());
    sqlite3_bind_int(s, 7, me.pid);
    if (r->params_blob)
        sqlite3_bind_blob(s, 8, r->params_blob, (int)r->params_blob_len, SQLITE_TRANSIENT);
    bind_text(s, 9, r->options);
    bind_text(s, 10, me.host);
    if (me.start) sqlite3_bind_int64(s, 11, me.start);
    if (*me.boot) bind_text(s, 12, me.boot);
    bind_text(s, 13, r->logical);
    if (step_write(c, s)) return -1;
    r->id = sqlite3_last_insert_rowid(c->db);
    r->pid = me.pid;
    return 0;
}

int state_run_begin(fl_state *st, state_run *r) {
    conn *c = &st->main;
    if (state_sync(st) || conn_commit(c) || begin(c) || sweep_gone(c) || run_insert(c, r))
        return -1;
    return conn_commit(c);
}

int state_run_end(fl_state *st, int64_t run, const char *state, int exit_code,
                  const char *result_json, const char *error) {
    conn *c = &st->main;
    if (state_sync(st) || begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_run_end);
    if (!s) return -1;
    bind_text(s, 1, state);
    sqlite3_bind_int(s, 2, exit_code);
    bind_text(s, 3, result_json);
    bind_text(s, 4, error);
    sqlite3_bind_double(s, 5, now());
    sqlite3_bind_int64(s, 6, run);
    if (step_write(c, s)) return -1;
    return conn_commit(c);
}

int state_task_cpu_add(fl_state *st, int64_t run, const state_task_cpu *v, size_t n) {
    conn *c = &st->main;
    if (!n) return 0;
    if (state_sync(st) || begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_task_cpu_add);
    if (!s) return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, run);
        bind_text(s, 2, v[i].task);
        sqlite3_bind_int64(s, 3, v[i].cpu_ns);
        sqlite3_bind_int64(s, 4, v[i].cpu_wall_ns);
        sqlite3_bind_int64(s, 5, v[i].wall_ns);
        sqlite3_bind_int64(s, 6, v[i].measured);
        sqlite3_bind_int64(s, 7, v[i].instances);
        if (step_write(c, s)) return -1;
    }
    return conn_commit(c);
}

int state_task_cpu_each(fl_state *st, int64_t run,
                        int (*fn)(const state_task_cpu *v, void *ctx), void *ctx) {
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_task_cpu_get);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        state_task_cpu v = {(const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1),
                            sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                            sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)};
        if (v.task) stop = fn(&v, ctx);
    }
    if (!stop && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    return stop || rc == SQLITE_DONE ? 0 : -1;
}

/* Mark run as running, owned by this process (inside a transaction). */
static int run_take(conn *c, int64_t run) {
    sqlite3_stmt *s = stmt(c, ST_run_reopen);
    if (!s) return -1;
    owner me;
    owner_self(&me);
    sqlite3_bind_int(s, 1, me.pid);
    bind_text(s, 2, me.host);
    if (me.start) sqlite3_bind_int64(s, 3, me.start);
    if (*me.boot) bind_text(s, 4, me.boot);
    sqlite3_bind_int64(s, 5, run);
    return step_write(c, s);
}

int state_run_reopen(fl_state *st, int64_t run, int *busy_pid) {
    conn *c = &st->main;
    if (busy_pid) *busy_pid = 0;
    if (state_sync(st) || conn_commit(c) || begin(c) || sweep_gone(c)) return -1;
    /* the claim and the check are one transaction: two resumes cannot both win */
    state_run cur;
    if (state_run_get(st, run, &cur)) {
        conn_commit(c);
        return -1;
    }
    int alive = cur.owner == STATE_OWNER_ALIVE && cur.pid != (int)getpid();
    if (alive && busy_pid) *busy_pid = cur.pid;
    state_run_free(&cur);
    if (alive) {
        conn_commit(c);
        return STATE_RUN_BUSY;
    }
    if (run_take(c, run)) return -1;
    return conn_commit(c);
}

/* ---- interval claims ----
 * One BEGIN IMMEDIATE transaction decides, for (flow, env, logical), whether this
 * process runs the interval: two claimers are serialized by SQLite's write lock, and
 * the winner's row says `running` with a live owner before the lock is let go, so the
 * loser sees BUSY (or, once it finished, ALREADY). Runs whose owner died are swept to
 * `interrupted` first (sweep_gone), so a dead claimer's run is RESUMEd, never doubled. */
int state_claim(fl_state *st, state_run *r, int rerun, int64_t *id) {
    conn *c = &st->main;
    *id = 0;
    if (!r->logical) return -1;
    if (state_sync(st) || conn_commit(c) || begin(c) || sweep_gone(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_run_of_logical);
    if (!s) return -1;
    bind_text(s, 1, r->flow);
    bind_text(s, 2, r->env ? r->env : "prod");
    bind_text(s, 3, r->logical);
    /* ordered: a succeeded run first, then a running one, then the newest */
    int outcome = STATE_CLAIM_CLAIMED, rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 1);
        int64_t found = sqlite3_column_int64(s, 0);
        if (state && !strcmp(state, "succeeded") && !rerun) {
            outcome = STATE_CLAIM_ALREADY, *id = found;
        } else {
            /* past a succeeded one (rerun): is one running? else the newest */
            int running = state && !strcmp(state, "running");
            while (!running && state && !strcmp(state, "succeeded") &&
                   (rc = sqlite3_step(s)) == SQLITE_ROW) {
                state = (const char *)sqlite3_column_text(s, 1);
                found = sqlite3_column_int64(s, 0);
                running = state && !strcmp(state, "running");
            }
            if (running) outcome = STATE_CLAIM_BUSY, *id = found;
            else if (!rerun && rc == SQLITE_ROW) outcome = STATE_CLAIM_RESUME, *id = found;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(s);
        sql_fail(c);
        conn_commit(c);
        return -1;
    }
    sqlite3_reset(s);
    if (outcome == STATE_CLAIM_RESUME && run_take(c, *id)) return -1;
    if (outcome == STATE_CLAIM_CLAIMED) {
        if (run_insert(c, r)) return -1;
        *id = r->id;
    }
    return conn_commit(c) ? -1 : outcome;
}

int state_first_seen(fl_state *st, const char *flow, const char *env, int64_t now_s,
                     int64_t *first) {
    conn *c = &st->main;
    if (state_sync(st) || conn_commit(c) || begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_seen_put);
    if (!s) return -1;
    bind_text(s, 1, flow);
    bind_text(s, 2, env ? env : "prod");
    sqlite3_bind_int64(s, 3, now_s);
    if (step_write(c, s)) return -1;
    if (!(s = stmt(c, ST_seen_get))) return -1;
    bind_text(s, 1, flow);
    bind_text(s, 2, env ? env : "prod");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *first = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) {
        sql_fail(c);
        conn_commit(c);
        return -1;
    }
    return conn_commit(c);
}

int state_batch_add(fl_state *st, int64_t run, uint32_t batch, const char *engine,
                    const char *engine_id, const char *name, uint32_t nelem,
                    const char *batch_file) {
    conn *c = &st->main;
    if (begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_batch_put);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_int64(s, 2, batch);
    bind_text(s, 3, engine);
    bind_text(s, 4, engine_id);
    bind_text(s, 5, name);
    sqlite3_bind_int64(s, 6, nelem);
    bind_text(s, 7, batch_file);
    sqlite3_bind_double(s, 8, now());
    if (step_write(c, s)) return -1;
    return conn_commit(c);
}

int state_batch_list(fl_state *st, int64_t run,
                     void (*each)(void *ud, uint32_t batch, const char *engine,
                                  const char *engine_id, const char *name, uint32_t nelem,
                                  const char *batch_file),
                     void *ud) {
    conn *c = &st->main;
    sqlite3_stmt *s = stmt(c, ST_batch_list);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *engine = (const char *)sqlite3_column_text(s, 1);
        const char *id = (const char *)sqlite3_column_text(s, 2);
        const char *name = (const char *)sqlite3_column_text(s, 3);
        const char *file = (const char *)sqlite3_column_text(s, 5);
        int64_t b = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 4);
        if (!engine || !id || !name || !file || b < 0 || b > UINT32_MAX || n < 1 ||
            n > UINT32_MAX)
            continue; /* not a row this flowrun wrote */
        each(ud, (uint32_t)b, engine, id, name, (uint32_t)n, file);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sql_fail(c);
    return 0;
}

/* The text of column i, copied (NULL for SQL NULL); *oom set when the copy fails. */
static char *col_dup(fl_ctx *c, sqlite3_stmt *s, int i, int *oom) {
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t) return NULL;
    char *d = fl_strdup(c, (const char *)t);
    if (!d) *oom = 1;
    return d;
}

/* 0, or -1 when a copy could not be allocated (r is then freed). */
static int read_run(fl_ctx *c, sqlite3_stmt *s, state_run *r) {
    memset(r, 0, sizeof *r);
    int oom = 0;
    r->ctx = c;
    r->id = sqlite3_column_int64(s, 0);
    r->flow = col_dup(c, s, 1, &oom);
    r->env = col_dup(c, s, 2, &oom);
    r->params_json = col_dup(c, s, 3, &oom);
    r->plan_path = col_dup(c, s, 4, &oom);
    if (sqlite3_column_bytes(s, 5) == 32) memcpy(r->plan_hash.b, sqlite3_column_blob(s, 5), 32);
    r->state = col_dup(c, s, 6, &oom);
    r->started = sqlite3_column_double(s, 7);
    r->ended = sqlite3_column_double(s, 8);
    r->exit_code = sqlite3_column_int(s, 9);
    r->result_json = col_dup(c, s, 10, &oom);
    r->error = col_dup(c, s, 11, &oom);
    r->pid = sqlite3_column_int(s, 12);
    r->params_blob_len = (size_t)sqlite3_column_bytes(s, 13);
    if (r->params_blob_len) {
        void *b = fl_malloc(c, r->params_blob_len);
        if (b) memcpy(b, sqlite3_column_blob(s, 13), r->params_blob_len);
        else oom = 1;
        r->params_blob = b;
    }
    r->options = col_dup(c, s, 14, &oom);
    r->host = col_dup(c, s, 15, &oom);
    r->pid_start = sqlite3_column_int64(s, 16);
    r->boot_id = col_dup(c, s, 17, &oom);
    r->logical = col_dup(c, s, 18, &oom);
    r->owner = STATE_OWNER_NONE;
    if (r->state && !strcmp(r->state, "running")) {
        r->owner = owner_status(r->pid, r->host, r->pid_start, r->boot_id);
        if (r->owner == STATE_OWNER_GONE) { /* read as what it is (see "run owners") */
            fl_free(c, (char *)r->state);
            if (!(r->state = fl_strdup(c, "interrupted"))) oom = 1;
            if (!r->error) {
                char why[160];
                owner_gone_error(why, sizeof why, r->pid, r->host);
                if (!(r->error = fl_strdup(c, why))) oom = 1;
            }
        }
    }
    if (oom) {
        state_run_free(r);
        return -1;
    }
    return 0;
}

void state_run_free(state_run *r) {
    fl_ctx *c = r->ctx;
    if (!c) { /* nothing was read into it */
        memset(r, 0, sizeof *r);
        return;
    }
    fl_free(c, (char *)r->flow);
    fl_free(c, (char *)r->env);
    fl_free(c, (char *)r->params_json);
    fl_free(c, (char *)r->plan_path);
    fl_free(c, (char *)r->state);
    fl_free(c, (char *)r->result_json);
    fl_free(c, (char *)r->error);
    fl_free(c, (char *)r->logical);
    fl_free(c, (void *)r->params_blob);
    fl_free(c, (char *)r->options);
    fl_free(c, (char *)r->host);
    fl_free(c, (char *)r->boot_id);
    memset(r, 0, sizeof *r);
}

int state_run_get(fl_state *st, int64_t run, state_run *r) {
    sqlite3_stmt *s = stmt(&st->main, ST_run_get);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    int rc = -1, step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        rc = read_run(st->ctx, s, r) ? -2 : 0;
    } else if (step != SQLITE_DONE) {
        sql_fail(&st->main);
        rc = -2;
    }
    sqlite3_reset(s);
    return rc;
}

static int take_first(const state_run *r, void *ctx) {
    *(int64_t *)ctx = r->id;
    return 1;
}

int64_t state_run_latest(fl_state *st) {
    int64_t id = 0;
    state_runs_each(st, take_first, &id);
    return id;
}

int state_runs_each(fl_state *st, int (*fn)(const state_run *r, void *ctx), void *ctx) {
    sqlite3_stmt *s = stmt(&st->main, ST_run_list);
    if (!s) return -1;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        state_run r;
        if (read_run(st->ctx, s, &r)) {
            sqlite3_reset(s);
            return -1;
        }
        int stop = fn(&r, ctx);
        state_run_free(&r);
        if (stop) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    return rc != SQLITE_ROW && rc != SQLITE_DONE ? -1 : 0;
}

/* ---- instances ---- */
/* ck, the cache table's key: 16 bits from the task's name (its last part), then the first 48
 * bits of the instance key. The entries of one task lie in one range of ck (what
 * state_cache_each reads); the whole key is stored and compared, so tasks or keys
 * sharing a ck are never confused: the newer entry simply replaces the older. */
static uint64_t task_tag(const char *task) {
    /* the name without its module ("common.clean" -> "clean"): a task moved into an
     * imported file keeps its key (docs/language.md "Modules") and so its entries */
    const char *dot = task ? strrchr(task, '.') : NULL;
    uint64_t h = fl_hash_str(dot ? dot + 1 : task ? task : "");
    return (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) & 0xffff;
}
static int64_t cache_k(const char *task, const fl_digest *key) {
    uint64_t k = task_tag(task) << 48;
    for (int i = 0; i < 6; i++) k |= (uint64_t)key->b[i] << (40 - 8 * i);
    return (int64_t)k;
}

/* flow_ck(task, key) in SQL: the migration to schema 2 computes ck with it. */
static void sql_flow_ck(sqlite3_context *cx, int argc, sqlite3_value **argv) {
    (void)argc;
    fl_digest key = {{0}};
    if (sqlite3_value_bytes(argv[1]) == 32) memcpy(key.b, sqlite3_value_blob(argv[1]), 32);
    sqlite3_result_int64(cx, cache_k((const char *)sqlite3_value_text(argv[0]), &key));
}

/* Enter key -> result in the cache: held by the writer for its next pack
 * (pend_flush), written at once otherwise. */
static int cache_set(conn *c, uint16_t tag, const fl_digest *key, const void *val, size_t len,
                     int64_t run) {
    if (c->npend == c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap * 2 : 1024;
        pend_entry *n = fl_reallocarray(c->ctx, c->pend, cap, sizeof *n);
        if (!n) return -1;
        c->pend = n;
        c->pend_cap = cap;
    }
    pend_entry *e = &c->pend[c->npend];
    if (!c->npend) c->pend_since = now();
    e->ck = (int64_t)tag;
    e->run = run;
    e->key = *key;
    e->len = len;
    e->off = SIZE_MAX;
    e->ident = 0;
    e->nin = 0;
    e->env = c->env;
    e->in_off = 0;
    if (c->parts.set && !memcmp(c->parts.key.b, key->b, 32)) { /* its key's parts */
        e->ident = c->parts.ident;
        e->nin = c->parts.n;
        e->in_off = c->pend_data.len;
        fv_buf_put(&c->pend_data, c->parts.in, 8 * (size_t)e->nin);
    }
    c->parts.set = 0;
    if (val) {
        e->off = c->pend_data.len;
        fv_buf_put(&c->pend_data, val, len);
    }
    c->npend++;
    return c->defer_cache ? 0 : pend_flush(c);
}

/* ---- packed rows ----
 * A million one-row inserts cost the writer more than everything else a run
 * records, so the plain finished instances of a mapped task ("succeeded" or
 * "cached", no error) are packed, PACK_MAX of them (and up to one REC_PACKS run
 * more: the writer closes a row once it holds PACK_MAX), into one row per
 * (run, node, name template) and transaction: state 'packed', idx the first
 * record's index, name the template its records share (so names cost no bytes
 * per record), and the records in the `packed` blob. Every other state change (a failure, a
 * skip, ...) keeps a row of its own. The blob (docs/state.md "Packed rows"), fixed
 * numbers little-endian, "varint" LEB128 (put_varint), "zigzag" a signed varint:
 *   "FKP3", u32 count, f64 base (the name's first start), i32 pid (its first
 *   worker pid), i64 rss (the name's common peak RSS, pk_rss_step), then per record
 *   u8 state (0 cleared, 1 succeeded, 2 cached), u8 flags (1 key, 2 cache hit,
 *   4 label, 8 result, 16 integer index, 32 odd, 64 RSS, 128 word), the index: a varint
 *   (flag 16: a plain decimal integer, its text "%llu") or varint length + text,
 *   zigzag (started - base) in microseconds, zigzag (ended - started) in
 *   microseconds, [odd: varint attempts, zigzag exit status, zigzag signal,
 *   zigzag worker pid; without it: 1, -1, 0, the row's pid], [RSS: zigzag peak
 *   RSS KiB; without it the row's], [varint length + label], [32-byte key],
 *   [varint length + result; with flag 128 instead: an 8-byte result as the
 *   zigzag of its little-endian value (pk_put_tail)].
 * "FKP2" rows (still read) are the same without flag 128. Rows written before them
 * ("FKP1", still read): u32 count, then per record u8
 * state, u8 flags (1..8 as above), u32 attempts, f64 started, f64 ended, i32
 * exit status, i32 signal, i32 worker pid, i64 peak RSS KiB, u32 length + index,
 * [u32 length + label], [32-byte key], [u32 length + result].
 * Readers expand the rows (state_insts_each): a packed row is its records, in
 * order, and a later row of the same instance replaces an earlier one.
 * A record is encoded once, by the caller (state_inst_put, on the scheduler's
 * thread), straight into this form (pack_rec_put: one reservation in the batch, the
 * fixed part stored field by field, no per-field checks); the writer appends its
 * bytes to the pack without reading them (apply_packed; it reads only the key and
 * result of a record that also goes into the cache). The pack's task and template
 * are numbered once per (run, node, template) (pk_names): no record carries or
 * compares them past the caller's one comparison of the template. */
#define PACK_MAX 4096
#define PACK_MAGIC1 0x31504b46u /* "FKP1" */
#define PACK_MAGIC2 0x32504b46u /* "FKP2": as FKP3 without PKF_WORD (still read) */
#define PACK_MAGIC 0x33504b46u  /* "FKP3" */
#define PACK_HEAD 28            /* FKP2, FKP3: magic, count, base, pid, rss */
enum { PK_CLEARED, PK_SUCCEEDED, PK_CACHED };
enum {
    PKF_KEY = 1, PKF_HIT = 2, PKF_LABEL = 4, PKF_RESULT = 8, PKF_INT = 16, PKF_ODD = 32,
    PKF_RSS = 64, PKF_WORD = 128
};
#define PACK_FIXED 46 /* FKP1: bytes of a record up to and including its index's length */

static uint64_t le_get(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}
/* Can r go into a packed row? Its record's state byte (PK_SUCCEEDED, PK_CACHED) when
 * it can, else -1. */
const char state_succeeded[] = "succeeded", state_cached[] = "cached";

static int packable(const state_inst *r) {
    if (r->error || (!r->idx_is_k && (!r->idx || !*r->idx))) return -1;
    if (r->state == state_succeeded) return PK_SUCCEEDED; /* (the writer's own texts) */
    if (r->state == state_cached) return PK_CACHED;
    /* the first letter tells the two states apart from every other (state.h) before
     * one comparison: this runs for every instance */
    if (r->state[0] == 's') return strcmp(r->state, "succeeded") ? -1 : PK_SUCCEEDED;
    return r->state[0] != 'c' || strcmp(r->state, "cached") ? -1 : PK_CACHED;
}

static int tmpl_same(const char *a, const char *b) {
    return a && b ? !strcmp(a, b) : a == b;
}

/* Number id is (run, node, task, tmpl) in t (the writer's table: as the caller
 * numbered it). 0, or -1 when out of memory. */
static int names_set(fl_ctx *ctx, pk_names *t, uint32_t id, int64_t run, uint32_t node,
                     const char *task, const char *tmpl, double base, int32_t pid,
                     int64_t rss) {
    if (id >= t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        while (cap <= id) cap *= 2;
        pk_name *v = fl_reallocarray(ctx, t->v, cap, sizeof *v);
        if (!v) return -1;
        memset(v + t->cap, 0, (cap - t->cap) * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    pk_name *e = &t->v[id];
    fl_free(ctx, e->task);
    fl_free(ctx, e->tmpl);
    e->run = run;
    e->node = node;
    e->task = fl_strdup(ctx, task);
    e->tag = (uint16_t)task_tag(task);
    e->task_from = NULL; /* set by names_find, for the caller's table only */
    e->tmpl = tmpl ? fl_strdup(ctx, tmpl) : NULL;
    e->base = base;
    e->pid = pid;
    e->rss = e->last_rss = rss;
    if (id >= t->n) t->n = id + 1;
    return e->task && (!tmpl || e->tmpl) ? 0 : -1;
}

/* The number of r's (run, node, task, tmpl) in t, numbering it when new (*fresh = 1);
 * -1 when out of memory. The last one found is tried first: per instance, this is
 * one comparison of the template, no copy. */
static inline int name_is(const pk_name *e, const state_inst *r) {
    return e->node == r->node && e->run == r->run &&
           (e->task_from == r->task || !strcmp(e->task, r->task)) && tmpl_same(e->tmpl, r->tmpl);
}

static uint64_t node_hash(int64_t run, uint32_t node) {
    return ((uint64_t)run << 32 ^ node) * FL_HTAB_MIX;
}

/* The caller's side of a name's common peak RSS: a record of another RSS than the
 * name's carries its own (PKF_RSS); when two records in a row have the same new
 * one (the inline executor reads flowrun's peak now and then: a step), it becomes
 * the name's (1: the caller sends the name again, and its open row is closed, so
 * a row's header holds the RSS its records were encoded against). */
static int pk_rss_step(pk_name *e, const state_inst *r) {
    int step = r->peak_rss_kb != e->rss && r->peak_rss_kb == e->last_rss;
    e->last_rss = r->peak_rss_kb;
    if (step) e->rss = r->peak_rss_kb;
    return step;
}

static long names_find(fl_ctx *ctx, pk_names *t, const state_inst *r, int *fresh) {
    *fresh = 0;
    if (t->n && name_is(&t->v[t->last], r)) return (long)t->last;
    uint64_t h = node_hash(r->run, r->node);
    for (fl_htab_slot *s = fl_htab_find(&t->by_node, h); s && s->hash;
         s = fl_htab_next(&t->by_node, s, h))
        if (name_is(&t->v[s->val], r)) return (long)(t->last = s->val);
    if (t->n >= UINT32_MAX || fl_htab_reserve(ctx, &t->by_node, 1) ||
        names_set(ctx, t, (uint32_t)t->n, r->run, r->node, r->task, r->tmpl, r->started,
                  (int32_t)r->worker_pid, r->peak_rss_kb))
        return -1;
    fl_htab_add(&t->by_node, h, t->n - 1);
    t->v[t->n - 1].task_from = r->task;
    *fresh = 1;
    t->last = t->n - 1;
    return (long)t->last;
}

/* v's n low bytes at d, little-endian (one store on a little-endian machine). */
static inline void le_put(uint8_t *d, uint64_t v, int n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(d, &v, (size_t)n);
#else
    for (int i = 0; i < n; i++) d[i] = (uint8_t)(v >> (8 * i));
#endif
}

/* A text inside a packed record. */
typedef struct pk_text {
    const char *p; /* in the blob or in num, not NUL-terminated; NULL when absent */
    size_t n;
    uint64_t v;    /* an integer index (FKP2 flag 16): its value, p NULL until pk_fmt */
    int isint;
    char num[24];  /* an integer index's text (pk_fmt) */
} pk_text;

/* An index's text: an integer one is formatted here, not when decoded (the writer
 * decodes a record that enters the cache for its key and result alone). */
static void pk_fmt(pk_text *t) {
    if (t->isint && !t->p) {
        t->n = (size_t)snprintf(t->num, sizeof t->num, "%llu", (unsigned long long)t->v);
        t->p = t->num;
    }
}
/* A packed blob's header: its version (1 "FKP1", 2 "FKP2", 3 "FKP3") and, from 2 on,
 * its base, pid and RSS. */
typedef struct pk_hdr {
    int ver;
    double base;
    int32_t pid;
    int64_t rss;
} pk_hdr;
static long pack_next(const pk_hdr *h, const uint8_t *b, size_t len, size_t *off, state_inst *r,
                      fl_digest *key, uint8_t *word, pk_text *idx, pk_text *label);

/* The header of the packed blob b (len bytes) in *h: its size (the offset of its
 * first record), or 0 when it is not one. */
static size_t pack_head(const uint8_t *b, size_t len, pk_hdr *h) {
    if (!b || len < 8 || len > UINT32_MAX) return 0;
    uint32_t m = (uint32_t)le_get(b, 4);
    if (m == PACK_MAGIC1) {
        *h = (pk_hdr){1, 0, 0, 0};
        return 8;
    }
    if ((m != PACK_MAGIC && m != PACK_MAGIC2) || len < PACK_HEAD) return 0;
    uint64_t bits = le_get(b + 8, 8);
    h->ver = m == PACK_MAGIC ? 3 : 2;
    memcpy(&h->base, &bits, 8);
    h->pid = (int32_t)le_get(b + 16, 4);
    h->rss = (int64_t)le_get(b + 20, 8);
    return PACK_HEAD;
}

/* An upper bound of the bytes of r's packed record (r packable; idx_len and
 * label_len its strings'): 2 + index 10 + times 20 + odd 50, and the rest. */
static size_t pack_rec_len(const state_inst *r, size_t idx_len, size_t label_len) {
    return 82 + idx_len + (r->label ? 10 + label_len : 0) + (r->cache_key ? 32 : 0) +
           (r->result ? 10 + r->result_len : 0);
}

static uint64_t zig(int64_t v) { return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1; }
static int64_t unzig(uint64_t v) { return v & 1 ? (int64_t)~(v >> 1) : (int64_t)(v >> 1); }

/* Seconds as whole microseconds (0 for what is not a finite time; clamped). */
static int64_t usec(double s) {
    double u = s * 1e6;
    if (!(fabs(u) < 4e18)) return 0; /* (one comparison: NaN fails it too) */
    return (int64_t)(u < 0 ? u - 0.5 : u + 0.5);
}

/* Is idx[0..n) a plain decimal integer that "%llu" gives back (no sign, no leading
 * zero, at most 18 digits)? Its value in *v when it is. */
static int idx_int(const char *idx, size_t n, uint64_t *v) {
    if (!n || n > 18 || (idx[0] == '0' && n > 1)) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)idx[i] - '0';
        if (d > 9) return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

/* A record's start (from its name's base) and duration, at d + o: the new offset. */
static inline size_t pk_put_times(uint8_t *d, size_t o, double started, double ended,
                                  double base) {
    o += put_varint(d + o, zig(usec(started - base)));
    return o + put_varint(d + o, zig(usec(ended - started)));
}
/* A record's odd fields (PKF_ODD), at d + o: the new offset. */
static inline size_t pk_put_odd(uint8_t *d, size_t o, int attempts, int exit_status,
                                int term_signal, int worker_pid) {
    o += put_varint(d + o, (uint32_t)attempts);
    o += put_varint(d + o, zig(exit_status));
    o += put_varint(d + o, zig(term_signal));
    return o + put_varint(d + o, zig(worker_pid));
}
/* Where a record's key and result bytes lie in it (PK_NONE: absent), for REC_PACK. */
typedef struct pk_at {
    uint32_t key, result;
} pk_at;
/* A record's last fields, its cache key and its result (either may be NULL), at
 * d + o (d the record's start): the new offset; where they went in *at (d's
 * offsets) unless at is NULL. Without at (a record the writer only appends), a
 * result of 8 bytes — an int's — whose value is small is written as its zigzag
 * varint (PKF_WORD: 1–8 bytes instead of 9). */
static inline size_t pk_put_tail(uint8_t *d, size_t o, const fl_digest *key, const void *result,
                                 size_t result_len, pk_at *at) {
    if (at) *at = (pk_at){key ? (uint32_t)o : PK_NONE, PK_NONE};
    if (key) {
        memcpy(d + o, key->b, 32);
        o += 32;
    }
    if (result && result_len == 8 && !at) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v; /* (one load) */
        memcpy(&v, result, 8);
#else
        uint64_t v = le_get(result, 8);
#endif
        uint64_t z = zig((int64_t)v);
        if (z < (uint64_t)1 << 56) {
            d[1] |= PKF_WORD;
            return o + put_varint(d + o, z);
        }
    }
    if (result) {
        o += put_varint(d + o, result_len);
        if (at) at->result = (uint32_t)o;
        if (result_len == 8) memcpy(d + o, result, 8); /* an int: one move */
        else if (result_len) memcpy(d + o, result, result_len);
        o += result_len;
    }
    return o;
}

/* Encode r's packed record, in its final form, at d (room for pack_rec_len bytes):
 * its size. state is what packable said; nm the name it goes under (its base and
 * pid); at, unless NULL: where its key and result went (pk_put_tail). */
static size_t pack_rec_put(uint8_t *d, const state_inst *r, int state, size_t idx_len,
                           size_t label_len, const pk_name *nm, pk_at *at) {
    uint64_t iv = r->idx_k;
    /* (the caller's number when it gave one: the text is not read) */
    int isint = r->idx_is_k ? 1 : idx_int(r->idx, idx_len, &iv);
    int odd = r->attempts != 1 || r->exit_status != -1 || r->term_signal != 0 ||
              r->worker_pid != nm->pid;
    int rss = r->peak_rss_kb != nm->rss;
    d[0] = (uint8_t)state;
    d[1] = (uint8_t)((r->cache_key ? PKF_KEY : 0) | (r->cache_hit ? PKF_HIT : 0) |
                     (r->label ? PKF_LABEL : 0) | (r->result ? PKF_RESULT : 0) |
                     (isint ? PKF_INT : 0) | (odd ? PKF_ODD : 0) | (rss ? PKF_RSS : 0));
    size_t o = 2;
    if (isint) {
        o += put_varint(d + o, iv);
    } else {
        o += put_varint(d + o, idx_len);
        memcpy(d + o, r->idx, idx_len);
        o += idx_len;
    }
    o = pk_put_times(d, o, r->started, r->ended, nm->base);
    if (odd) o = pk_put_odd(d, o, r->attempts, r->exit_status, r->term_signal, r->worker_pid);
    if (rss) o += put_varint(d + o, zig(r->peak_rss_kb));
    if (r->label) {
        o += put_varint(d + o, label_len);
        memcpy(d + o, r->label, label_len);
        o += label_len;
    }
    return pk_put_tail(d, o, r->cache_key, r->result, r->result_len, at);
}

static int pack_write(conn *c, pack *k) {
    if (!k->n) return 0;
    for (int i = 0; i < 4; i++) k->blob.data[4 + i] = (uint8_t)(k->n >> (8 * i)); /* the count */
    sqlite3_stmt *s = stmt(c, ST_pack_put);
    const pk_name *nm = &c->names.v[k->name];
    int rc = -1;
    if (s) {
        /* the row's idx: its first record's */
        pk_hdr h = {3, nm->base, nm->pid, nm->rss};
        size_t off = PACK_HEAD;
        state_inst r;
        fl_digest key;
        uint8_t word[8];
        pk_text idx, label;
        if (pack_next(&h, k->blob.data, k->blob.len, &off, &r, &key, word, &idx, &label) < 0)
            idx = (pk_text){"", 0, 0, 0, {0}};
        pk_fmt(&idx);
        sqlite3_bind_int64(s, 1, k->run);
        sqlite3_bind_int(s, 2, (int)k->node);
        sqlite3_bind_text(s, 3, idx.p, (int)idx.n, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, nm->task, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 5, k->blob.data, (int)k->blob.len, SQLITE_STATIC);
        if (nm->tmpl) sqlite3_bind_text(s, 6, nm->tmpl, -1, SQLITE_STATIC);
        else sqlite3_bind_null(s, 6);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sql_fail(c);
        sqlite3_reset(s);
    }
    k->n = 0;
    k->blob.len = 0;
    return rc;
}

static int packs_flush(conn *c) {
    int rc = 0;
    for (size_t i = 0; i < c->npacks; i++)
        if (pack_write(c, &c->packs[i])) rc = -1;
    return rc;
}

static pack *pack_of(conn *c, int64_t run, uint32_t node, int create) {
    for (size_t i = 0; i < c->npacks; i++)
        if (c->packs[i].run == run && c->packs[i].node == node) return &c->packs[i];
    if (!create) return NULL;
    if (c->npacks == c->packs_cap) {
        size_t cap = c->packs_cap ? c->packs_cap * 2 : 8;
        pack *v = fl_reallocarray(c->ctx, c->packs, cap, sizeof *v);
        if (!v) return NULL;
        c->packs = v;
        c->packs_cap = cap;
    }
    pack *k = &c->packs[c->npacks++];
    memset(k, 0, sizeof *k);
    k->run = run;
    k->node = node;
    return k;
}


/* Append one encoded record (pack_rec_put) of name number `name` to its pack;
 * cache_store: its key and result (pointing into it, as its encoder said where:
 * nothing is decoded here) also go into the cache. */
static int apply_packed(conn *c, uint32_t name, const uint8_t *rec, size_t len, int cache_store,
                        const fl_digest *key, const uint8_t *result, size_t result_len) {
    if (name >= c->names.n || !c->names.v[name].task) return -1;
    if (cache_store && key) {
        const pk_name *nm = &c->names.v[name];
        if (begin(c) || cache_set(c, nm->tag, key, result, result_len, nm->run)) return -1;
    }
    return apply_packed_run(c, name, rec, len, 1);
}

/* Append a run of count encoded records of name number `name` (none going into
 * the cache) to its pack in one copy. The pack is written once it holds PACK_MAX
 * records or more: a row may hold up to one run (one batch) more than PACK_MAX. */
static int apply_packed_run(conn *c, uint32_t name, const uint8_t *recs, size_t len,
                            uint32_t count) {
    if (name >= c->names.n || !c->names.v[name].task || !count) return -1;
    if (begin(c)) return -1;
    const pk_name *nm = &c->names.v[name];
    pack *k = pack_of(c, nm->run, nm->node, 1);
    if (!k) return -1;
    if (k->n && k->name != name && pack_write(c, k)) return -1;
    if (!k->n) {
        k->name = name;
        k->blob.len = 0;
        uint64_t bits;
        memcpy(&bits, &nm->base, 8);
        fv_buf_put_le(&k->blob, PACK_MAGIC, 4);
        fv_buf_put_le(&k->blob, 0, 4); /* the count, set when written */
        fv_buf_put_le(&k->blob, bits, 8);
        fv_buf_put_le(&k->blob, (uint32_t)nm->pid, 4);
        fv_buf_put_le(&k->blob, (uint64_t)nm->rss, 8);
    }
    size_t at = k->blob.len;
    fv_buf_put(&k->blob, recs, len);
    if (k->blob.len != at + len) return -1; /* out of memory */
    k->n += count;
    if (k->n >= PACK_MAX && pack_write(c, k)) return -1;
    if ((c->pending += count) >= STATE_AUTOCOMMIT) {
        if (conn_commit(c)) return -1;
        return begin(c);
    }
    return 0;
}

/* A varint at b[*o..len) in *v, *o past it; -1 when it runs past len. */
static int pk_varint(const uint8_t *b, size_t len, size_t *o, uint64_t *v) {
    size_t n = get_varint(b + *o, len - *o, v);
    *o += n;
    return n ? 0 : -1;
}

/* A varint length and that many bytes at b[*o..len): the text in *t. */
static int pk_vtext(const uint8_t *b, size_t len, size_t *o, pk_text *t) {
    uint64_t n;
    if (pk_varint(b, len, o, &n) || n > len - *o) return -1;
    t->p = (const char *)b + *o;
    t->n = (size_t)n;
    *o += (size_t)n;
    return 0;
}

/* An FKP1 record (pack_next). */
static long pack_next1(const uint8_t *b, size_t len, size_t *off, state_inst *r, fl_digest *key,
                       pk_text *idx, pk_text *label) {
    size_t o = *off;
    if (o > len || len - o < PACK_FIXED) return -1;
    long at = (long)o;
    uint8_t st = b[o], fl = b[o + 1];
    r->state = st == PK_CACHED ? "cached" : st == PK_SUCCEEDED ? "succeeded" : "cleared";
    r->attempts = (int)le_get(b + o + 2, 4);
    uint64_t v = le_get(b + o + 6, 8);
    memcpy(&r->started, &v, 8);
    v = le_get(b + o + 14, 8);
    memcpy(&r->ended, &v, 8);
    r->exit_status = (int)(int32_t)le_get(b + o + 22, 4);
    r->term_signal = (int)(int32_t)le_get(b + o + 26, 4);
    r->worker_pid = (int)(int32_t)le_get(b + o + 30, 4);
    r->peak_rss_kb = (int64_t)le_get(b + o + 34, 8);
    size_t n = (size_t)le_get(b + o + 42, 4);
    o += PACK_FIXED;
    if (n > len - o) return -1;
    idx->p = (const char *)b + o;
    idx->n = n;
    o += n;
    if (fl & PKF_LABEL) {
        if (len - o < 4) return -1;
        n = (size_t)le_get(b + o, 4);
        o += 4;
        if (n > len - o) return -1;
        label->p = (const char *)b + o;
        label->n = n;
        o += n;
    }
    r->cache_key = NULL;
    if (fl & PKF_KEY) {
        if (len - o < 32) return -1;
        memcpy(key->b, b + o, 32);
        r->cache_key = key;
        o += 32;
    }
    r->cache_hit = (fl & PKF_HIT) != 0;
    r->result = NULL;
    r->result_len = 0;
    if (fl & PKF_RESULT) {
        if (len - o < 4) return -1;
        n = (size_t)le_get(b + o, 4);
        o += 4;
        if (n > len - o) return -1;
        r->result = b + o;
        r->result_len = n;
        o += n;
    }
    *off = o;
    return at;
}

/* One record of a packed blob (header h, pack_head) at *off: fills r (result
 * pointing into the blob), *idx and *label (in the blob, or idx in its own num) and
 * returns the offset of its state byte, *off past it; -1 when the blob is damaged
 * (nothing past b[len) is read). */
static long pack_next(const pk_hdr *h, const uint8_t *b, size_t len, size_t *off, state_inst *r,
                      fl_digest *key, uint8_t *word, pk_text *idx, pk_text *label) {
    idx->p = label->p = NULL;
    idx->n = label->n = 0;
    idx->isint = 0;
    if (h->ver == 1) return pack_next1(b, len, off, r, key, idx, label);
    size_t o = *off;
    if (o > len || len - o < 2) return -1;
    long at = (long)o;
    uint8_t st = b[o], fl = b[o + 1];
    o += 2;
    r->state = st == PK_CACHED ? "cached" : st == PK_SUCCEEDED ? "succeeded" : "cleared";
    uint64_t v, w;
    if (fl & PKF_INT) {
        if (pk_varint(b, len, &o, &v)) return -1;
        idx->isint = 1;
        idx->v = v;
    } else if (pk_vtext(b, len, &o, idx)) {
        return -1;
    }
    if (pk_varint(b, len, &o, &v) || pk_varint(b, len, &o, &w)) return -1;
    r->started = h->base + (double)unzig(v) / 1e6;
    r->ended = r->started + (double)unzig(w) / 1e6;
    r->attempts = 1;
    r->exit_status = -1;
    r->term_signal = 0;
    r->worker_pid = h->pid;
    r->peak_rss_kb = h->rss;
    if (fl & PKF_ODD) {
        uint64_t a, e, sg, p;
        if (pk_varint(b, len, &o, &a) || pk_varint(b, len, &o, &e) ||
            pk_varint(b, len, &o, &sg) || pk_varint(b, len, &o, &p))
            return -1;
        r->attempts = (int)a;
        r->exit_status = (int)unzig(e);
        r->term_signal = (int)unzig(sg);
        r->worker_pid = (int)unzig(p);
    }
    if (fl & PKF_RSS) {
        if (pk_varint(b, len, &o, &v)) return -1;
        r->peak_rss_kb = unzig(v);
    }
    if ((fl & PKF_LABEL) && pk_vtext(b, len, &o, label)) return -1;
    r->cache_key = NULL;
    if (fl & PKF_KEY) {
        if (len - o < 32) return -1;
        memcpy(key->b, b + o, 32);
        r->cache_key = key;
        o += 32;
    }
    r->cache_hit = (fl & PKF_HIT) != 0;
    r->result = NULL;
    r->result_len = 0;
    if ((fl & PKF_WORD) && (h->ver < 3 || !(fl & PKF_RESULT))) return -1;
    if (fl & PKF_WORD) { /* 8 bytes, as the zigzag varint of their value: back in word */
        if (pk_varint(b, len, &o, &v)) return -1;
        fv_le64(word, (uint64_t)unzig(v));
        r->result = word;
        r->result_len = 8;
    } else if (fl & PKF_RESULT) {
        pk_text t;
        if (pk_vtext(b, len, &o, &t)) return -1;
        r->result = (const uint8_t *)t.p;
        r->result_len = t.n;
    }
    *off = o;
    return at;
}

static int apply_inst(conn *c, const state_inst *r) {
    int pk = packable(r);
    if (pk >= 0) { /* synchronous mode: encoded here, numbered in c's own table */
        int fresh;
        long name = names_find(c->ctx, &c->names, r, &fresh);
        if (name >= 0 && !fresh && pk_rss_step(&c->names.v[name], r)) {
            pack *k = pack_of(c, r->run, r->node, 0); /* its open row keeps the old RSS */
            if (k && k->n && k->name == (uint32_t)name && pack_write(c, k)) return -1;
        }
        size_t il = r->idx_is_k ? 0 : strlen(r->idx), ll = r->label ? strlen(r->label) : 0;
        size_t n = pack_rec_len(r, il, ll);
        if (name < 0 || !fv_buf_grow(&c->scratch, n)) return -1;
        n = pack_rec_put(c->scratch.data, r, pk, il, ll, &c->names.v[name], NULL);
        return apply_packed(c, (uint32_t)name, c->scratch.data, n, r->cache_store, r->cache_key,
                            r->result, r->result_len);
    }
    if (begin(c)) return -1;
    pack *k = pack_of(c, r->run, r->node, 0);
    if (k && pack_write(c, k)) return -1; /* records keep their order */
    sqlite3_stmt *s = stmt(c, ST_inst_put);
    if (!s) return -1;
    const char *idx = r->idx ? r->idx : "";
    sqlite3_bind_int64(s, 1, r->run);
    sqlite3_bind_int(s, 2, (int)r->node);
    sqlite3_bind_text(s, 3, idx, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->task, -1, SQLITE_STATIC);
    if (r->label) sqlite3_bind_text(s, 5, r->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, r->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 7, r->attempts);
    if (r->cache_key) sqlite3_bind_blob(s, 8, r->cache_key->b, 32, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, r->cache_hit);
    if (r->started) sqlite3_bind_double(s, 10, r->started);
    if (r->ended) sqlite3_bind_double(s, 11, r->ended);
    if (r->exit_status >= 0) sqlite3_bind_int(s, 12, r->exit_status);
    if (r->term_signal) sqlite3_bind_int(s, 13, r->term_signal);
    if (r->error) sqlite3_bind_text(s, 14, r->error, -1, SQLITE_STATIC);
    if (r->worker_pid) sqlite3_bind_int(s, 15, r->worker_pid);
    if (r->peak_rss_kb) sqlite3_bind_int64(s, 16, r->peak_rss_kb);
    if (r->result) sqlite3_bind_blob(s, 17, r->result, (int)r->result_len, SQLITE_STATIC);
    if (r->tmpl) sqlite3_bind_text(s, 18, r->tmpl, -1, SQLITE_STATIC);
    if (step_write(c, s)) return -1;
    if (r->cache_store && r->cache_key &&
        cache_set(c, (uint16_t)task_tag(r->task), r->cache_key, r->result, r->result_len, r->run))
        return -1;
    /* the row holds the final state and its times; other transitions (a failure,
     * a clear) are also kept as events */
    if (!strcmp(r->state, "succeeded") || !strcmp(r->state, "cached")) return 0;
    s = stmt(c, ST_event_put);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, r->run);
    sqlite3_bind_int(s, 2, (int)r->node);
    sqlite3_bind_text(s, 3, idx, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 4, r->ended ? r->ended : r->started ? r->started : now());
    sqlite3_bind_text(s, 5, r->state, -1, SQLITE_STATIC);
    return step_write(c, s);
}

/* r as a REC_INST record: every field, for the writer's apply_inst. */
static int apply_inst_rec(fl_state *st, const state_inst *r) {
    uint8_t kind = REC_INST;
    wb_put(st, &kind, 1);
    wb_u64(st, (uint64_t)r->run);
    wb_u64(st, r->node);
    wb_str(st, r->idx ? r->idx : "");
    wb_str(st, r->task);
    wb_str(st, r->tmpl);
    wb_str(st, r->label);
    wb_str(st, r->state);
    wb_u64(st, (uint64_t)r->attempts);
    wb_blob(st, r->cache_key ? r->cache_key->b : NULL, 32, r->cache_key != NULL);
    wb_u64(st, (uint64_t)r->cache_hit);
    wb_f64(st, r->started);
    wb_f64(st, r->ended);
    wb_u64(st, (uint64_t)(int64_t)r->exit_status);
    wb_u64(st, (uint64_t)r->term_signal);
    wb_str(st, r->error);
    wb_u64(st, (uint64_t)r->worker_pid);
    wb_u64(st, (uint64_t)r->peak_rss_kb);
    wb_blob(st, r->result, r->result_len, r->result != NULL);
    wb_u64(st, (uint64_t)r->cache_store);
    return 0;
}

/* Room for n more bytes in the batch being filled: where they go, or NULL (out of
 * memory: the batch is lost, and state_commit says so). */
static uint8_t *wb_reserve_grow(fl_state *st, size_t n) {
    if (st->wb_oom) return NULL;
    wb_put(st, NULL, 0); /* the batch, when there is none */
    if (st->wb_oom || !fv_buf_grow(&st->cur->rec, st->cur->rec.len + n)) {
        st->wb_oom = 1;
        return NULL;
    }
    uint8_t *d = st->cur->rec.data + st->cur->rec.len;
    st->cur->rec.len += n;
    return d;
}
/* (inline: the room is there for all but a few records of a batch) */
static inline uint8_t *wb_reserve(fl_state *st, size_t n) {
    if (!st->cur || st->wb_oom || st->cur->rec.len + n > st->cur->rec.cap)
        return wb_reserve_grow(st, n);
    uint8_t *d = st->cur->rec.data + st->cur->rec.len;
    st->cur->rec.len += n;
    return d;
}

/* The parts of a cache key for its cache entry (REC_KEYPARTS; state_inst's
 * cache_ident, cache_inputs and cache_ninputs): for the writer (async), or for the
 * entry apply_inst makes next. */
static void keyparts_put(fl_state *st, const fl_digest *key, uint64_t ident,
                         const uint64_t *inputs, uint32_t ninputs) {
    uint32_t n = inputs && ninputs <= 255 ? ninputs : 0;
    if (!st->async) {
        conn *c = &st->main;
        c->parts.key = *key;
        c->parts.ident = ident;
        c->parts.n = n;
        if (n) memcpy(c->parts.in, inputs, 8 * (size_t)n);
        c->parts.set = 1;
        return;
    }
    uint8_t *d = wb_reserve(st, 45 + 8 * (size_t)n);
    if (!d) return;
    d[0] = REC_KEYPARTS;
    memcpy(d + 1, key->b, 32);
    memcpy(d + 33, &ident, 8);
    memcpy(d + 41, &n, 4);
    if (n) memcpy(d + 45, inputs, 8 * (size_t)n);
}

/* Room for a record of at most n bytes that also enters the cache (REC_PACK): where
 * its bytes go, or NULL (out of memory); pk_one_took then gives its name number,
 * how many bytes it took and where its key and result lie. */
static inline uint8_t *pk_one_reserve(fl_state *st, size_t n) {
    uint8_t *d = wb_reserve(st, PK_ONE_HEAD + n);
    return d ? d + PK_ONE_HEAD : NULL;
}
static inline void pk_one_took(fl_state *st, uint8_t *rec, uint32_t id, size_t n, size_t m,
                               const pk_at *at, size_t result_len) {
    st->cur->rec.len -= n - m; /* the bound reserved, less what it took */
    uint8_t *d = rec - PK_ONE_HEAD;
    uint32_t len = (uint32_t)m, rlen = (uint32_t)result_len;
    d[0] = REC_PACK;
    memcpy(d + 1, &id, 4);
    d[5] = 1;
    memcpy(d + 6, &len, 4);
    memcpy(d + 10, &at->key, 4);
    memcpy(d + 14, &at->result, 4);
    memcpy(d + 18, &rlen, 4);
}

/* The number of r's name (names_find), sent to the writer (REC_NAME) before its
 * first use or when its peak RSS steps (pk_rss_step); -1 out of memory. */
static long name_send(fl_state *st, const state_inst *r) {
    int fresh;
    long name = names_find(st->ctx, &st->names, r, &fresh);
    if (name < 0) {
        st->wb_oom = 1;
        return -1;
    }
    if (fresh || pk_rss_step(&st->names.v[name], r)) {
        uint8_t kind = REC_NAME;
        wb_put(st, &kind, 1);
        wb_u64(st, (uint64_t)name);
        wb_u64(st, (uint64_t)r->run);
        wb_u64(st, r->node);
        wb_str(st, r->task);
        wb_str(st, r->tmpl);
        const pk_name *nm = &st->names.v[name];
        uint64_t bits;
        memcpy(&bits, &nm->base, 8);
        wb_u64(st, bits);
        wb_u64(st, (uint64_t)(uint32_t)nm->pid);
        wb_u64(st, (uint64_t)nm->rss);
    }
    return name;
}

/* Room for a packed record of at most n bytes (n <= UINT32_MAX) of name number id
 * at the end of the batch: right after the last record of a run of that name, which
 * it joins, else after a new run's header (REC_PACKS). Where its bytes go, or NULL
 * (out of memory); pk_run_took then says how many it took. */
static inline uint8_t *pk_run_reserve(fl_state *st, uint32_t id, size_t n) {
    int joins = 0;
    if (st->cur && st->run_in == st->cur && st->run_end == st->cur->rec.len) {
        const uint8_t *h = st->cur->rec.data + st->run_at;
        uint32_t hid, hlen;
        memcpy(&hid, h + 1, 4);
        memcpy(&hlen, h + 9, 4);
        joins = hid == id && (uint64_t)hlen + n <= UINT32_MAX;
    }
    uint8_t *d = wb_reserve(st, (joins ? 0 : 13) + n);
    if (!d || joins) return d;
    st->run_in = st->cur;
    st->run_at = (size_t)(d - st->cur->rec.data);
    d[0] = REC_PACKS;
    memcpy(d + 1, &id, 4);
    memset(d + 5, 0, 8); /* its count and length: pk_run_took */
    return d + 13;
}
/* The record just placed by pk_run_reserve took m of its n bytes. */
static inline void pk_run_took(fl_state *st, size_t n, size_t m) {
    st->cur->rec.len -= n - m;
    uint8_t *h = st->cur->rec.data + st->run_at;
    uint32_t hcount, hlen;
    memcpy(&hcount, h + 5, 4);
    memcpy(&hlen, h + 9, 4);
    hcount++;
    hlen += (uint32_t)m;
    memcpy(h + 5, &hcount, 4);
    memcpy(h + 9, &hlen, 4);
    st->run_end = st->cur->rec.len;
}

int state_inst_put(fl_state *st, const state_inst *r) {
    if (r->cache_store && r->cache_key)
        keyparts_put(st, r->cache_key, r->cache_ident, r->cache_inputs, r->cache_ninputs);
    int pk = packable(r);
    state_inst t;
    char ib[24];
    if ((pk < 0 || !st->async) && !r->idx) { /* a record with its index given as a number */
        t = *r;
        t.idx = "";
        if (r->idx_is_k) {
            snprintf(ib, sizeof ib, "%llu", (unsigned long long)r->idx_k);
            t.idx = ib;
        }
        r = &t;
    }
    if (!st->async) return apply_inst(&st->main, r);
    if (pk >= 0) {
        /* the record is encoded once, here, in the form it has in its packed row;
         * the writer appends it as it is (REC_PACK, REC_PACKS) */
        long name = name_send(st, r);
        if (name < 0) return -1;
        size_t il = r->idx_is_k ? 0 : strlen(r->idx), ll = r->label ? strlen(r->label) : 0;
        size_t n = pack_rec_len(r, il, ll);
        uint32_t id = (uint32_t)name;
        /* (a record longer than 4 GiB could not be a row anyway: SQLite's limit is 1 GB) */
        if (n > UINT32_MAX) {
            st->wb_oom = 1;
            return -1;
        }
        if (r->cache_store) { /* the writer reads its key and result: a record of its own */
            uint8_t *d = pk_one_reserve(st, n);
            if (!d) return -1;
            pk_at at;
            size_t m = pack_rec_put(d, r, pk, il, ll, &st->names.v[name], &at);
            pk_one_took(st, d, id, n, m, &at, r->result_len);
            return 0;
        }
        uint8_t *d = pk_run_reserve(st, id, n);
        if (!d) return -1;
        pk_run_took(st, n, pack_rec_put(d, r, pk, il, ll, &st->names.v[name], NULL));
        return 0;
    }
    return apply_inst_rec(st, r);
}

int state_inst_plain(fl_state *st, state_plain *pl) {
    if (!st->async) return 1;
    if (pl->name < 0) {
        state_inst r = {0};
        r.run = pl->run;
        r.node = pl->node;
        r.task = pl->task;
        r.tmpl = pl->tmpl;
        r.started = pl->started;
        r.worker_pid = pl->worker_pid;
        r.peak_rss_kb = pl->peak_rss_kb;
        if ((pl->name = name_send(st, &r)) < 0) return -1;
    }
    pk_name *nm = &st->names.v[pl->name];
    /* another RSS than the name's: for state_inst_put (pk_rss_step) */
    if (pl->peak_rss_kb != nm->rss) return 1;
    nm->last_rss = pl->peak_rss_kb; /* as pk_rss_step keeps it */
    /* pack_rec_len's bound for such a record (any of them) */
    size_t n = 124 + pl->result_len;
    if (n > UINT32_MAX) return 1;
    if (pl->cache_store && pl->key)
        keyparts_put(st, pl->key, pl->cache_ident, pl->cache_inputs, pl->cache_ninputs);
    uint8_t *d = pl->cache_store ? pk_one_reserve(st, n) : pk_run_reserve(st, (uint32_t)pl->name, n);
    if (!d) return -1;
    /* pack_rec_put's bytes for it */
    /* (flags without branches: this runs per instance) */
    int served = pl->served != 0, odd = (pl->attempts != 1) | (pl->worker_pid != nm->pid);
    d[0] = (uint8_t)(served ? PK_CACHED : PK_SUCCEEDED);
    d[1] = (uint8_t)(PKF_INT | (pl->key != NULL) * PKF_KEY | served * PKF_HIT |
                     (pl->result != NULL) * PKF_RESULT | odd * PKF_ODD);
    size_t o = 2 + put_varint(d + 2, pl->idx);
    o = pk_put_times(d, o, pl->started, pl->ended, nm->base);
    if (odd) o = pk_put_odd(d, o, pl->attempts, -1, 0, pl->worker_pid);
    pk_at at;
    size_t m = pk_put_tail(d, o, pl->key, pl->result, pl->result_len,
                           pl->cache_store ? &at : NULL);
    if (pl->cache_store) pk_one_took(st, d, (uint32_t)pl->name, n, m, &at, pl->result_len);
    else pk_run_took(st, n, m);
    return 0;
}

/* Reading a run's instances back. A packed row is kept as a copy of its blob and
 * each of its records as a 24-byte reference into it, decoded only when handed to
 * the caller; a row of its own is copied whole. (A million instances: about
 * 125 MB, most of it the blobs.) */
typedef struct irow {
    char *task;
    char *tmpl;    /* the row's name template, or NULL */
    uint8_t *blob; /* a packed row: its records */
    size_t len;
    pk_hdr h;      /* its header */
    state_inst r;  /* a row of its own, with copies of its strings */
    fl_digest key;
    char *idx, *label, *state, *error;
    uint8_t *result;
} irow;

typedef struct irec {
    int64_t id;    /* the row's id: later rows replace earlier records */
    uint32_t node;
    uint32_t sub;  /* the record's place in its row */
    uint32_t row;  /* index of its irow */
    uint32_t off;  /* a packed record: its offset in the blob */
} irec;

typedef struct ireader {
    irow *rows;
    size_t nrows, caprows;
    fl_ctx *ctx;         /* the state's: every copy below is made on it */
    int oom;             /* a copy could not be made */
} ireader;

/* A record's index as an integer (*v) when it is stored as one (an FKP2 record of
 * flag PKF_INT): 1, else 0. (The record was checked whole when read.) */
static int irec_int(const ireader *R, const irec *e, uint64_t *v) {
    const irow *w = &R->rows[e->row];
    if (!w->blob || w->h.ver == 1 || !(w->blob[e->off + 1] & PKF_INT)) return 0;
    size_t o = e->off + 2;
    return pk_varint(w->blob, w->len, &o, v) == 0;
}

/* A record's index text in *t (in the row, or t->num). */
static void irec_idx(const ireader *R, const irec *e, pk_text *t) {
    const irow *w = &R->rows[e->row];
    uint64_t v;
    if (!w->blob) {
        t->p = w->idx;
        t->n = strlen(w->idx);
    } else if (w->h.ver == 1) {
        t->n = (size_t)le_get(w->blob + e->off + PACK_FIXED - 4, 4);
        t->p = (const char *)w->blob + e->off + PACK_FIXED;
    } else if (irec_int(R, e, &v)) {
        t->n = (size_t)snprintf(t->num, sizeof t->num, "%llu", (unsigned long long)v);
        t->p = t->num;
    } else {
        size_t o = e->off + 2;
        if (pk_vtext(w->blob, w->len, &o, t)) *t = (pk_text){"", 0, 0, 0, {0}};
    }
}

/* Two records' indexes: by length, then bytes (numeric order of plain integers);
 * two integer indexes by value, the same order without their texts. */
static int idx_cmp(const ireader *R, const irec *x, const irec *y) {
    uint64_t a, b;
    if (irec_int(R, x, &a) && irec_int(R, y, &b)) return a < b ? -1 : a > b;
    pk_text tx, ty;
    irec_idx(R, x, &tx);
    irec_idx(R, y, &ty);
    if (tx.n != ty.n) return tx.n < ty.n ? -1 : 1;
    return memcmp(tx.p, ty.p, tx.n);
}

/* Two rows' name templates: NULL first, then by text. */
static int tmpl_cmp(const ireader *R, const irec *x, const irec *y) {
    const char *a = R->rows[x->row].tmpl, *b = R->rows[y->row].tmpl;
    if (!a || !b) return !!a - !!b;
    return a == b ? 0 : strcmp(a, b);
}

/* (node, name template, index path in numeric order, then the order recorded) */
static int irec_cmp(const void *a, const void *b, void *ctx) {
    const ireader *R = ctx;
    const irec *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    int t = tmpl_cmp(R, x, y);
    if (t) return t;
    int c = idx_cmp(R, x, y);
    if (c) return c;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->sub < y->sub ? -1 : x->sub > y->sub;
}

static int same_instance(const ireader *R, const irec *x, const irec *y) {
    return x->node == y->node && !idx_cmp(R, x, y) && !tmpl_cmp(R, x, y);
}

/* Copy the current row of ST_inst_list (one not packed) into w. */
static void irow_own(ireader *R, sqlite3_stmt *s, irow *w) {
    fl_ctx *c = R->ctx;
    w->idx = col_dup(c, s, 1, &R->oom);
    w->label = col_dup(c, s, 3, &R->oom);
    w->state = col_dup(c, s, 4, &R->oom);
    w->r.attempts = sqlite3_column_int(s, 5);
    if (sqlite3_column_bytes(s, 6) == 32) {
        memcpy(w->key.b, sqlite3_column_blob(s, 6), 32);
        w->r.cache_key = &w->key;
    }
    w->r.cache_hit = sqlite3_column_int(s, 7);
    w->r.started = sqlite3_column_double(s, 8);
    w->r.ended = sqlite3_column_double(s, 9);
    w->r.exit_status = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 10);
    w->r.term_signal = sqlite3_column_int(s, 11);
    w->error = col_dup(c, s, 12, &R->oom);
    w->r.worker_pid = sqlite3_column_int(s, 13);
    w->r.peak_rss_kb = sqlite3_column_int64(s, 14);
    w->r.result_len = (size_t)sqlite3_column_bytes(s, 15);
    if (sqlite3_column_type(s, 15) != SQLITE_NULL) {
        w->result = fl_malloc(c, w->r.result_len);
        if (!w->result) R->oom = 1;
        else if (w->r.result_len) memcpy(w->result, sqlite3_column_blob(s, 15), w->r.result_len);
    }
    if (!w->idx && !(w->idx = fl_strdup(c, ""))) R->oom = 1;
    if (!w->state && !(w->state = fl_strdup(c, ""))) R->oom = 1;
}

static void ireader_free(ireader *R) {
    fl_ctx *c = R->ctx;
    for (size_t i = 0; i < R->nrows; i++) {
        irow *w = &R->rows[i];
        fl_free(c, w->task);
        fl_free(c, w->tmpl);
        fl_free(c, w->blob);
        fl_free(c, w->idx);
        fl_free(c, w->label);
        fl_free(c, w->state);
        fl_free(c, w->error);
        fl_free(c, w->result);
    }
    fl_free(c, R->rows);
}

int state_insts_each(fl_state *st, int64_t run, int (*fn)(const state_inst *r, void *ctx),
                     void *ctx) {
    if (state_sync(st) || conn_commit(&st->main)) return -1;
    sqlite3_stmt *s = stmt(&st->main, ST_inst_list);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    ireader R = {.ctx = st->ctx};
    fv_buf scratch = {0}; /* a packed record's index and label as C strings */
    char *name = NULL;    /* the record's composed name */
    size_t name_cap = 0;
    irec *v = NULL;
    size_t n = 0, cap = 0;
    int rc, bad = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const uint8_t *pk = sqlite3_column_blob(s, 17);
        size_t pklen = (size_t)sqlite3_column_bytes(s, 17);
        pk_hdr hd = {0, 0, 0, 0};
        size_t head = pk ? pack_head(pk, pklen, &hd) : 0;
        if (pk && !head) {
            bad = 1;
            continue;
        }
        if (R.nrows == R.caprows) {
            size_t rcap = R.caprows ? R.caprows * 2 : 64;
            irow *rows = fl_reallocarray(R.ctx, R.rows, rcap, sizeof *rows);
            if (!rows) {
                R.oom = 1;
                break;
            }
            R.rows = rows;
            R.caprows = rcap;
        }
        irow *w = &R.rows[R.nrows];
        memset(w, 0, sizeof *w);
        uint32_t row = (uint32_t)R.nrows++; /* counted now: ireader_free frees it */
        w->task = col_dup(R.ctx, s, 2, &R.oom);
        if (!w->task && !(w->task = fl_strdup(R.ctx, ""))) R.oom = 1;
        w->tmpl = col_dup(R.ctx, s, 18, &R.oom);
        if (pk) {
            if ((w->blob = fl_malloc(R.ctx, pklen))) memcpy(w->blob, pk, pklen);
            else R.oom = 1;
            w->len = pklen;
            w->h = hd;
        } else {
            irow_own(&R, s, w);
        }
        if (R.oom) break;
        int64_t id = sqlite3_column_int64(s, 16);
        uint32_t node = (uint32_t)sqlite3_column_int(s, 0);
        size_t off = head;
        uint32_t sub = 0;
        for (; !pk || off < pklen; sub++) {
            size_t at = off;
            if (pk) { /* check the record whole now, so reading it later cannot fail */
                state_inst r;
                fl_digest key;
                uint8_t word[8];
                pk_text ridx, label;
                if (pack_next(&hd, w->blob, pklen, &off, &r, &key, word, &ridx, &label) < 0) {
                    bad = 1;
                    break;
                }
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                irec *nv = fl_reallocarray(R.ctx, v, ncap, sizeof *nv);
                if (!nv) {
                    R.oom = 1;
                    break;
                }
                v = nv;
                cap = ncap;
            }
            v[n++] = (irec){id, node, sub, row, (uint32_t)at};
            if (!pk) break;
        }
        if (R.oom) break;
        if (pk && off >= pklen && sub != (uint32_t)le_get(w->blob + 4, 4))
            bad = 1; /* cut at a record's end: fewer records than its count */
    }
    int failed = R.oom || rc != SQLITE_DONE;
    if (!R.oom && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    if (bad)
        fl_log(st->ctx, FL_LOG_WARN, "%s: a packed instance row of run %lld is damaged; its "
               "unreadable instances are left out (`flowrun fsck` salvages what can be read "
               "into a new database)", st->path, (long long)run);
    if (n > 1) qsort_r(v, n, sizeof *v, irec_cmp, &R);
    for (size_t i = 0; i < n && !failed; i++) {
        irec *e = &v[i];
        if (i + 1 < n && same_instance(&R, &v[i + 1], e))
            continue; /* a later record of the same instance replaces this one */
        irow *w = &R.rows[e->row];
        state_inst r;
        fl_digest key;
        uint8_t word[8]; /* (its result, when stored as a varint: read below, in fn) */
        if (w->blob) { /* its index and label, NUL-terminated, in the scratch buffer */
            memset(&r, 0, sizeof r);
            size_t off = e->off;
            pk_text ridx, label;
            pack_next(&w->h, w->blob, w->len, &off, &r, &key, word, &ridx, &label);
            scratch.len = 0;
            pk_fmt(&ridx);
            fv_buf_put(&scratch, ridx.p, ridx.n);
            fv_buf_put(&scratch, "", 1);
            size_t at = scratch.len;
            if (label.p) {
                fv_buf_put(&scratch, label.p, label.n);
                fv_buf_put(&scratch, "", 1);
            }
            r.idx = (const char *)scratch.data;
            r.label = label.p ? (const char *)scratch.data + at : NULL;
        } else {
            r = w->r;
            r.idx = w->idx;
            r.label = w->label;
            r.state = w->state;
            r.error = w->error;
            r.result = w->result;
            if (r.cache_key) r.cache_key = &w->key;
        }
        r.run = run;
        r.node = e->node;
        r.task = w->task;
        r.tmpl = w->tmpl;
        size_t need = strlen(r.idx) + (r.tmpl ? strlen(r.tmpl) : strlen(r.task)) + 8;
        if (name_cap < need) {
            char *nn = fl_realloc(R.ctx, name, need * 2);
            if (!nn) {
                failed = 1;
                break;
            }
            name = nn;
            name_cap = need * 2;
        }
        plan_inst_name(r.tmpl, r.task, r.idx, name, name_cap);
        r.name = name;
        if (fn(&r, ctx)) break;
    }
    free(scratch.data); /* fv_buf: value.c's allocation */
    fl_free(R.ctx, name);
    fl_free(R.ctx, v);
    ireader_free(&R);
    return failed || bad ? -1 : 0;
}

/* Does a record's index match idx: NULL (all), the same text, or, when idx ends
 * in '/', one that starts with it? */
static int idx_match(const char *ridx, size_t n, const char *idx) {
    if (!idx) return 1;
    size_t k = strlen(idx);
    if (k && idx[k - 1] == '/') return n >= k && !memcmp(ridx, idx, k);
    return n == k && !memcmp(ridx, idx, n);
}

/* Mark records of the packed rows s (bound, selecting id and packed) lists cleared:
 * those whose index matches idx (idx_match). Returns how many. */
static int clear_packed(conn *c, sqlite3_stmt *s, const char *idx) {
    typedef struct {
        int64_t id;
        uint8_t *b;
        size_t len;
    } changed;
    changed *ch = NULL;
    size_t nch = 0;
    int cleared = 0, oom = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        const uint8_t *pk = sqlite3_column_blob(s, 1);
        pk_hdr hd;
        size_t off = pack_head(pk, len, &hd);
        if (!off) continue;
        uint8_t *b = fl_malloc(c->ctx, len);
        if (!b) {
            oom = 1;
            break;
        }
        memcpy(b, pk, len);
        int any = 0;
        while (off < len) {
            state_inst r;
            fl_digest key;
            uint8_t word[8];
            pk_text ridx, label;
            long at = pack_next(&hd, b, len, &off, &r, &key, word, &ridx, &label);
            if (at < 0) break;
            pk_fmt(&ridx);
            if (idx_match(ridx.p, ridx.n, idx)) {
                b[at] = PK_CLEARED;
                cleared++;
                any = 1;
            }
        }
        changed *nc = any ? fl_reallocarray(c->ctx, ch, nch + 1, sizeof *ch) : NULL;
        if (nc) {
            ch = nc;
            ch[nch++] = (changed){sqlite3_column_int64(s, 0), b, len};
        } else {
            fl_free(c->ctx, b);
            if (any) {
                oom = 1;
                break;
            }
        }
    }
    sqlite3_reset(s);
    int rc = oom ? -1 : 0;
    for (size_t i = 0; i < nch; i++) {
        sqlite3_stmt *u = rc ? NULL : stmt(c, ST_pack_set);
        if (u) {
            sqlite3_bind_blob(u, 1, ch[i].b, (int)ch[i].len, SQLITE_STATIC);
            sqlite3_bind_int64(u, 2, ch[i].id);
            if (step_write(c, u)) rc = -1;
        }
        fl_free(c->ctx, ch[i].b);
    }
    fl_free(c->ctx, ch);
    return rc ? -1 : cleared;
}

int state_inst_clear(fl_state *st, int64_t run, const char *task, const char *idx) {
    conn *c = &st->main;
    if (state_sync(st) || begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, idx ? ST_inst_clear_one : ST_inst_clear_all);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    bind_text(s, 2, task);
    if (idx) bind_text(s, 3, idx);
    if (step_write(c, s)) return -1;
    int n = sqlite3_changes(c->db);
    s = stmt(c, ST_pack_list);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    bind_text(s, 2, task);
    int np = clear_packed(c, s, idx);
    if (np < 0) return -1;
    return conn_commit(c) ? -1 : n + np;
}

int state_inst_clear_at(fl_state *st, int64_t run, uint32_t node, const char *tmpl,
                        const char *idx) {
    conn *c = &st->main;
    if (state_sync(st) || begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_inst_clear_at);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_int64(s, 2, node);
    bind_text(s, 3, tmpl);
    bind_text(s, 4, idx);
    if (step_write(c, s)) return -1;
    int n = sqlite3_changes(c->db);
    s = stmt(c, ST_pack_list_at);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_int64(s, 2, node);
    bind_text(s, 3, tmpl);
    int np = clear_packed(c, s, idx);
    if (np < 0) return -1;
    return conn_commit(c) ? -1 : n + np;
}

int state_log_path(const char *dir, int64_t run, const char *tmpl, const char *task,
                   const char *idx, char *buf, size_t len) {
    char name[2048];
    int n = snprintf(buf, len, "%s/logs/%lld/", dir, (long long)run);
    if (n < 0 || (size_t)n >= len) return -1;
    size_t at = (size_t)n;
    if (!tmpl) { /* the layout of schema 2 */
        const char *i = idx && *idx ? idx : "-";
        if (snprintf(name, sizeof name, "%s/%s", task ? task : "", i) >= (int)sizeof name) return -1;
        for (char *q = name + strlen(task ? task : "") + 1; *q; q++)
            if (*q == '/') *q = '.';
    } else if (plan_inst_name(tmpl, task, idx, name, sizeof name) + 1 >= sizeof name) {
        return -1;
    }
    /* each component: not empty, not "." or ".." */
    for (const char *q = name;;) {
        size_t k = strcspn(q, "/");
        if (at + k + 8 >= len) return -1;
        if (k == 0 || (k == 1 && q[0] == '.') || (k == 2 && q[0] == '.' && q[1] == '.')) {
            buf[at++] = '_';
        } else {
            memcpy(buf + at, q, k);
            at += k;
        }
        q += k;
        if (!*q) break;
        buf[at++] = '/';
        q++;
    }
    memcpy(buf + at, ".log", 5);
    return 0;
}

/* ---- environments ----
 * One state directory holds every environment's runs and cache (runtime.md §3,
 * docs/state.md "Environments in the state directory"). A run's environment is its
 * runs.env text; a cache entry names the environment of the run that wrote it by a
 * number, envs.id, in the 4 bytes the entry record keeps for it: prod is 0 (what
 * every entry of an older flowrun says), another environment gets the next number
 * the first time a run of it writes (state_env_use). The rule, decided per entry
 * in the lookup itself (env_usable): a prod run is served prod's entries only; a
 * run of environment E is served E's and prod's, never a third environment's. An
 * entry it may not use is skipped like a key that differs, and the search goes on
 * to older copies, so a miss costs what a miss costs, and a hit one more compare
 * of 4 bytes already read. Entries are written with the state's environment, and
 * a drop (a cleared instance, a damaged stored file) removes the copies of the
 * state's own environment only: no run changes another environment's cache. */
static int env_usable(const conn *c, uint32_t env) {
    int mine = env == 0 || env == c->env;
    return c->env_other ? !mine : mine;
}

int state_env_use(fl_state *st, const char *name, int create) {
    conn *c = &st->main;
    if (st->async) return -1; /* the writer took the environment at state_async */
    if (!name || !strcmp(name, "prod")) {
        c->env = 0;
        return 0;
    }
    if (create) {
        sqlite3_stmt *s = stmt(c, ST_env_add);
        if (!s || begin(c)) return -1;
        bind_text(s, 1, name);
        if (step_write(c, s) || conn_commit(c)) return -1;
    }
    sqlite3_stmt *s = stmt(c, ST_env_id);
    if (!s) return -1;
    bind_text(s, 1, name);
    int rc = sqlite3_step(s);
    /* not recorded (a dry run creates nothing): a number no entry has, so only
     * prod's entries are usable, as they would be for a new environment */
    c->env = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(s, 0) : UINT32_MAX;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(c);
    return 0;
}

int state_env_name(fl_state *st, uint32_t id, char *buf, size_t len) {
    sqlite3_stmt *s = stmt(&st->main, ST_env_name);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (int64_t)id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
    else snprintf(buf, len, "#%u", id); /* (a salvaged database may have lost the name) */
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_fail(&st->main);
}

/* ---- cache ----
 * A lookup searches the task's packs newest first (cache_pack_tag), each by a
 * binary search of its index read through sqlite3_blob_read, so a point lookup
 * reads a few slots and one entry of a pack, never a whole body. A pack that is
 * not what it should be (damaged) is reported once, as a warning, and skipped:
 * never read past its end. Its entries are misses (computed again), which a cache
 * may have, so the run is not failed for it; `flowrun fsck` salvages the file. */
static void cpack_bad(conn *c, int64_t id) {
    if (c->cpack_said++) return;
    fl_log(c->ctx, FL_LOG_WARN, "%s: cache pack %lld is damaged and is skipped (its entries "
           "are computed again); `flowrun fsck` checks the whole file", c->path, (long long)id);
}

static int blob_at(sqlite3_blob *b, void *d, int n, int64_t off) {
    return off < 0 || off + n > sqlite3_blob_bytes(b) ||
           sqlite3_blob_read(b, d, n, (int)off) != SQLITE_OK;
}

/* Find key in the open pack blob b: calls fn for each entry of that key, newest
 * first, with its offset, until fn returns nonzero. 1 found, 0 not, -1 damaged. */
static int cpack_find(sqlite3_blob *b, const fl_digest *key,
                      int (*fn)(sqlite3_blob *b, uint32_t off, void *ctx), void *ctx) {
    uint8_t h[CPACK_HEAD];
    if (blob_at(b, h, CPACK_HEAD, 0) || h[0] != 'K' || h[1] != 1) return -1;
    uint32_t n;
    memcpy(&n, h + 4, 4);
    int64_t size = sqlite3_blob_bytes(b);
    if (n == 0 || n > CPACK_MAX || CPACK_HEAD + 8 * (int64_t)n > size) return -1;
    uint32_t want = key_prefix(key->b), lo = 0, hi = n;
    cpack_slot sl;
    while (lo < hi) { /* the first slot whose prefix >= want */
        uint32_t mid = lo + (hi - lo) / 2;
        if (blob_at(b, &sl, 8, CPACK_HEAD + 8 * (int64_t)mid)) return -1;
        if (sl.prefix < want) lo = mid + 1;
        else hi = mid;
    }
    uint32_t offs[64];
    int m = 0;
    for (uint32_t i = lo; i < n && m < 64; i++) { /* slots of this prefix, by offset */
        if (blob_at(b, &sl, 8, CPACK_HEAD + 8 * (int64_t)i)) return -1;
        if (sl.prefix != want) break;
        offs[m++] = sl.off;
    }
    int found = 0;
    for (int i = m - 1; i >= 0; i--) { /* newest first */
        uint8_t k[32];
        if (offs[i] < CPACK_HEAD + 8 * n || blob_at(b, k, 32, offs[i])) return -1;
        if (memcmp(k, key->b, 32)) continue;
        found = 1;
        if (fn(b, offs[i], ctx)) break;
    }
    return found;
}

/* Call fn for the packs of task's tag, newest first, until it returns nonzero. */
static int cpack_each(conn *c, const char *task, int writable,
                      int (*fn)(conn *c, sqlite3_blob *b, int64_t id, void *ctx), void *ctx) {
    sqlite3_stmt *s = stmt(c, ST_cache_packs);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (int64_t)task_tag(task));
    int rc, r = 0;
    sqlite3_blob *b = NULL;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        int orc = b ? sqlite3_blob_reopen(b, id)
                    : sqlite3_blob_open(c->db, "main", "cache_pack", "body", id, writable, &b);
        if (orc != SQLITE_OK) {
            if (b) sqlite3_blob_close(b);
            b = NULL;
            if ((sqlite3_errcode(c->db) & 0xff) == SQLITE_CORRUPT) {
                cpack_bad(c, id);
                continue;
            }
            r = sql_fail(c);
            break;
        }
        r = fn(c, b, id, ctx);
    }
    if (b) sqlite3_blob_close(b);
    if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) r = sql_fail(c);
    sqlite3_reset(s);
    return r < 0 ? -1 : 0;
}

typedef struct cget {
    const fl_digest *key;
    fl_state *st;
    state_cache_entry *e; /* the entry's parts are wanted too, or NULL */
    long packs;           /* packs searched */
    int64_t pack;         /* the pack being searched */
    uint32_t end;         /* where the entry found ends */
    uint8_t *val;
    size_t len;
    int found; /* 1; -1 out of memory; -2 the entry is damaged */
} cget;

static int cget_entry(sqlite3_blob *b, uint32_t off, void *ctx) {
    cget *g = ctx;
    uint8_t f[CPACK_FIXED];
    int64_t size = sqlite3_blob_bytes(b);
    if (blob_at(b, f, CPACK_FIXED, off)) return g->found = -2;
    uint32_t env;
    memcpy(&env, f + 40, 4);
    if (!env_usable(&g->st->main, env)) return 0; /* another environment's: an older copy */
    int64_t at = off + CPACK_FIXED + 8 * (int64_t)f[48];
    if (g->e) {
        uint32_t run;
        memcpy(&g->e->identity, f + 32, 8);
        memcpy(&g->e->environment, f + 40, 4);
        memcpy(&run, f + 44, 4);
        g->e->run = run;
        g->e->ninputs = f[48];
        if (f[48] && blob_at(b, g->e->inputs, 8 * f[48], off + CPACK_FIXED))
            return g->found = -2;
    }
    uint8_t v[10];
    int vn = (int)(size - at < 10 ? size - at : 10);
    uint64_t l;
    size_t used;
    if (vn <= 0 || blob_at(b, v, vn, at) || !(used = get_varint(v, (size_t)vn, &l)) ||
        l > (uint64_t)(size - at - (int64_t)used) + 1)
        return g->found = -2;
    g->len = l ? (size_t)l - 1 : 0;
    g->end = (uint32_t)(at + (int64_t)used + (int64_t)g->len);
    g->val = fl_malloc(state_ctx(g->st), g->len ? g->len : 1);
    if (!g->val) return g->found = -1;
    if (g->len && blob_at(b, g->val, (int)g->len, at + (int64_t)used)) {
        fl_free(state_ctx(g->st), g->val);
        g->val = NULL;
        return g->found = -2;
    }
    return g->found = 1;
}

static int cget_pack(conn *c, sqlite3_blob *b, int64_t id, void *ctx) {
    cget *g = ctx;
    g->packs++;
    g->pack = id;
    int r = cpack_find(b, g->key, cget_entry, g);
    if (g->found == -1) return -1;
    if (r < 0 || g->found == -2) {
        cpack_bad(c, id);
        g->found = 0;
        return 0;
    }
    return g->found != 0;
}

/* A point lookup first tries the entry after the last hit of the same tag (in its
 * pack, or the first of the tag's next pack): a re-run of a mapping asks in the
 * order the entries were produced, so a task that is not read into memory (more
 * than 8 million entries, or its first 64 lookups) is answered with a read or two
 * of one blob instead of a search of its packs. It may find an older copy of a key
 * than the search would: either may be served (docs/state.md, "Copies of a key").
 * 1 answered (g filled), 0 not (search), -1 out of memory. */
static int cget_follow(conn *c, int64_t tag, cget *g) {
    if (!c->follow.set || c->follow.tag != tag) return 0;
    for (int step = 0; step < 2; step++) {
        sqlite3_blob *b;
        if (sqlite3_blob_open(c->db, "main", "cache_pack", "body", c->follow.pack, 0, &b) !=
            SQLITE_OK)
            return c->follow.set = 0;
        int64_t size = sqlite3_blob_bytes(b);
        uint8_t h[CPACK_HEAD], k[32];
        uint32_t n;
        if (c->follow.next == 0) { /* the pack's first entry: after its index */
            if (blob_at(b, h, CPACK_HEAD, 0) || h[0] != 'K' || h[1] != 1) {
                sqlite3_blob_close(b);
                return c->follow.set = 0;
            }
            memcpy(&n, h + 4, 4);
            c->follow.next = n <= CPACK_MAX ? CPACK_HEAD + 8 * n : UINT32_MAX;
        }
        if (c->follow.next < size) {
            int r = 0;
            if (!blob_at(b, k, 32, c->follow.next) && !memcmp(k, g->key->b, 32)) {
                cget_entry(b, c->follow.next, g);
                if (g->found == 1) c->follow.next = g->end;
                r = g->found == -1 ? -1 : g->found == 1;
                if (g->found != 1) g->found = 0;
            }
            sqlite3_blob_close(b);
            return r;
        }
        sqlite3_blob_close(b);
        sqlite3_stmt *s = step ? NULL : stmt(c, ST_cache_after); /* the tag's next pack */
        if (!s) return 0;
        sqlite3_bind_int64(s, 1, tag);
        sqlite3_bind_int64(s, 2, c->follow.pack);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            c->follow.pack = sqlite3_column_int64(s, 0);
            c->follow.next = 0;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW) return 0;
    }
    return 0;
}

static int cache_get(fl_state *st, const char *task, const fl_digest *key,
                     state_cache_entry *e, uint8_t **val, size_t *len) {
    read_begin(&st->main);
    cget g = {key, st, e, 0, 0, 0, NULL, 0, 0};
    conn *c = &st->main;
    int64_t tag = (int64_t)task_tag(task);
    int rc = cget_follow(c, tag, &g);
    if (rc == 1) {
        c->gets++;
        *val = g.val;
        *len = g.len;
        return 1;
    }
    if (rc < 0) return -1;
    rc = cpack_each(c, task, 0, cget_pack, &g);
    if (rc == 0 && g.found == 1) c->follow.set = 1, c->follow.tag = tag,
                                 c->follow.pack = g.pack, c->follow.next = g.end;
    c->gets++;
    c->gets_packs += g.packs;
    if (g.packs > c->gets_most) c->gets_most = g.packs;
    if (rc || g.found < 0) return -1;
    if (g.found == 1) {
        *val = g.val;
        *len = g.len;
    }
    return g.found == 1;
}

int state_cache_get(fl_state *st, const char *task, const fl_digest *key, uint8_t **val,
                    size_t *len) {
    return cache_get(st, task, key, NULL, val, len);
}

void state_cache_lookup_stats(const fl_state *st, long *lookups, long *packs, long *most) {
    *lookups = st->main.gets;
    *packs = st->main.gets_packs;
    *most = st->main.gets_most;
}

int state_cache_entry_get(fl_state *st, const char *task, const fl_digest *key,
                          state_cache_entry *e) {
    memset(e, 0, sizeof *e);
    int got = cache_get(st, task, key, e, &e->val, &e->len);
    if (got != 1) memset(e, 0, sizeof *e); /* (a result is handed over only when found) */
    return got;
}

int state_cache_entry_other(fl_state *st, const char *task, const fl_digest *key,
                            state_cache_entry *e) {
    st->main.env_other = 1;
    st->main.follow.set = 0; /* (the follow path is for this environment's lookups) */
    int got = state_cache_entry_get(st, task, key, e);
    st->main.env_other = 0;
    st->main.follow.set = 0;
    return got;
}

int64_t state_cache_count(fl_state *st, const char *task) {
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_cache_count);
    if (!s) return -1;
    int64_t n = -1;
    sqlite3_bind_int64(s, 1, (int64_t)task_tag(task));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) n = (int64_t)sqlite3_column_double(s, 0);
    else sql_fail(&st->main);
    sqlite3_reset(s);
    return n;
}

/* Decode pack body p[0..size), calling fn on each live entry in production order:
 * 0, 1 when fn stopped, or -1 when the body is damaged (the entries before the
 * damage were given). */
typedef struct cdecode {
    int (*fn)(const fl_digest *key, const void *val, size_t len, void *ctx);
    void *ctx;
    const conn *c;  /* whose environment's entries are given (env_usable) */
} cdecode;
static int cdecode_entry(const uint8_t *e, size_t elen, const uint8_t *val, size_t len,
                         void *ctx) {
    (void)elen;
    cdecode *d = ctx;
    fl_digest key;
    uint32_t env;
    memcpy(key.b, e, 32);
    memcpy(&env, e + 40, 4);
    return cpack_live(e) && env_usable(d->c, env) && d->fn(&key, val, len, d->ctx);
}
static int cpack_decode(const conn *c, const uint8_t *p, size_t size,
                        int (*fn)(const fl_digest *key, const void *val, size_t len, void *ctx),
                        void *ctx) {
    cdecode d = {fn, ctx, c};
    return cpack_walk(p, size, cdecode_entry, &d);
}

int state_cache_each(fl_state *st, const char *task,
                     int (*fn)(const fl_digest *key, const void *val, size_t len, void *ctx),
                     void *ctx) {
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_cache_range);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, (int64_t)task_tag(task));
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int r = cpack_decode(&st->main, sqlite3_column_blob(s, 1),
                             (size_t)sqlite3_column_bytes(s, 1), fn, ctx);
        if (r < 0) cpack_bad(&st->main, sqlite3_column_int64(s, 0));
        if (r > 0) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    return rc != SQLITE_ROW && rc != SQLITE_DONE ? -1 : 0;
}

static int apply_cache_put(conn *c, const fl_digest *key, const void *val, size_t len, int64_t run,
                           const fl_digest *objs, size_t nobjs) {
    (void)val;
    (void)len;
    (void)run;
    if (begin(c)) return -1;
    for (size_t i = 0; i < nobjs; i++) {
        sqlite3_stmt *s = stmt(c, ST_cache_obj);
        if (!s) return -1;
        sqlite3_bind_blob(s, 1, key->b, 32, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, objs[i].b, 32, SQLITE_STATIC);
        if (step_write(c, s)) return -1;
    }
    return 0;
}

int state_cache_put(fl_state *st, const fl_digest *key, const void *val, size_t len,
                    int64_t run, const fl_digest *objs, size_t nobjs) {
    if (!st->async) return apply_cache_put(&st->main, key, val, len, run, objs, nobjs);
    uint8_t kind = REC_CACHE_PUT;
    wb_put(st, &kind, 1);
    wb_blob(st, key->b, 32, 1);
    wb_blob(st, val, len, 1);
    wb_u64(st, (uint64_t)run);
    wb_blob(st, objs, nobjs * sizeof *objs, 1);
    return 0;
}

/* Dropping an entry overwrites its key, in every pack that holds it, with zeros,
 * and takes it off the pack's count n (state_cache_count counts live entries). */
typedef struct cdrop {
    const fl_digest *key;
    uint32_t env;          /* the copies of this environment are dropped */
    int kept;              /* copies of another environment were left */
    int err;
    int npacks;            /* packs that held a copy (the first 16) */
    int64_t id[16], n[16]; /* and how many copies each */
} cdrop;
static int cdrop_entry(sqlite3_blob *b, uint32_t off, void *ctx) {
    static const uint8_t zero[32];
    cdrop *d = ctx;
    uint32_t env;
    if (blob_at(b, &env, 4, (int64_t)off + 40)) return d->err = -1;
    if (env != d->env) {
        d->kept = 1;
        return 0;
    }
    if (sqlite3_blob_write(b, zero, 32, (int)off) != SQLITE_OK) d->err = -1;
    else if (d->npacks <= 16 && d->npacks > 0) d->n[d->npacks - 1]++;
    return 0; /* every copy */
}
static int cdrop_pack(conn *c, sqlite3_blob *b, int64_t id, void *ctx) {
    cdrop *d = ctx;
    if (d->npacks < 16) {
        d->id[d->npacks] = id;
        d->n[d->npacks] = 0;
    }
    d->npacks++;
    if (cpack_find(b, d->key, cdrop_entry, d) < 0) cpack_bad(c, id);
    return d->err ? sql_fail(c) : 0;
}

static int apply_cache_drop(conn *c, const char *task, const fl_digest *key) {
    if (begin(c) || pend_flush(c)) return -1; /* entries held before the drop come first */
    cdrop d = {.key = key, .env = c->env};
    if (cpack_each(c, task, 1, cdrop_pack, &d)) return -1;
    sqlite3_stmt *s = stmt(c, ST_cache_uncount);
    for (int i = 0; i < d.npacks && i < 16; i++) {
        if (!d.n[i]) continue;
        if (!s) return -1;
        sqlite3_bind_int64(s, 1, d.n[i]);
        sqlite3_bind_int64(s, 2, d.id[i]);
        if (step_write(c, s)) return -1;
    }
    if (d.kept) return 0; /* the objects stay: another environment's copy refers to them */
    s = stmt(c, ST_cache_drop_objs);
    if (!s) return -1;
    sqlite3_bind_blob(s, 1, key->b, 32, SQLITE_STATIC);
    return step_write(c, s);
}

int state_cache_drop(fl_state *st, const char *task, const fl_digest *key) {
    if (!st->async) return apply_cache_drop(&st->main, task, key);
    uint8_t kind = REC_CACHE_DROP;
    wb_put(st, &kind, 1);
    wb_str(st, task);
    wb_blob(st, key->b, 32, 1);
    return 0;
}

int state_cache_any(fl_state *st) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->main.db, "SELECT 1 FROM cache_pack LIMIT 1", -1,
                           &s, NULL) != SQLITE_OK)
        return 1;
    int any = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return any;
}

int state_live_objects(fl_state *st, fl_digest **out, size_t *n) {
    if (state_sync(st) || conn_commit(&st->main)) return -1;
    sqlite3_stmt *s = stmt(&st->main, ST_live_objects);
    if (!s) return -1;
    size_t cap = 64, len = 0;
    fl_digest *v = fl_reallocarray(st->ctx, NULL, cap, sizeof *v);
    int rc = v ? SQLITE_ROW : SQLITE_NOMEM, oom = !v;
    while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != 32) continue;
        if (len == cap) {
            fl_digest *nv = fl_reallocarray(st->ctx, v, cap * 2, sizeof *v);
            if (!nv) {
                oom = 1;
                break;
            }
            v = nv;
            cap *= 2;
        }
        memcpy(v[len++].b, sqlite3_column_blob(s, 0), 32);
    }
    if (!oom && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    if (oom || rc != SQLITE_DONE) { /* nothing half-read is handed out */
        fl_free(st->ctx, v);
        *out = NULL;
        *n = 0;
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
}

/* ---- the file-identity index ----
 * A re-run over a folder of inputs asks the index once per file, and each question
 * through SQLite is a B-tree search costing about as much as the rest of the
 * instance's lookup. So once the lookups are seen to hit (90% of the first 64),
 * the first lookup of a file in a folder reads the rows of the whole folder in one
 * range scan (path >= "DIR/" and < "DIR0"; rows deeper down are passed over) into a
 * hash table, and the folder's later lookups are answered from memory. What this
 * run puts (state_file_put) into a folder read so is added there too; a row another
 * flowrun writes meanwhile is not seen: a miss, and the file is hashed again, which
 * the index may do. Identities are compared as always, so a row read early can
 * make a file be hashed again, never make a changed file pass for unchanged. A
 * folder of more than FID_FOLDER_MAX rows, or memory running out, turns the
 * folders off for the rest of the run (SQLite answers, as before). */
#define FID_MIN_LOOKUPS 64
#define FID_FOLDER_MAX 262144 /* rows scanned for one folder before the run gives up on
                               * memory (a lookup of one file in a huge folder stays cheap) */

/* The entry of path (length n) in table t, whose entries hold their u32 length and
 * path head bytes into the entry: its arena offset, or -1. */
static long fid_find(const fid_cache *f, const fl_htab *t, uint64_t hv, const char *path,
                     size_t n, size_t head) {
    for (fl_htab_slot *s = fl_htab_find(t, hv); s && s->hash; s = fl_htab_next(t, s, hv)) {
        uint32_t len;
        memcpy(&len, f->arena.data + s->val + head, 4);
        if (len == n && !memcmp(f->arena.data + s->val + head + 4, path, n)) return (long)s->val;
    }
    return -1;
}

/* Enter (or update) one file's row in memory. 0, or -1 when memory ran out. */
static int fid_add(fid_cache *f, fl_ctx *ctx, const char *path, size_t n,
                   const state_file_id *id, const uint8_t *h) {
    uint64_t hv = fl_hash_bytes(path, n);
    long at = fid_find(f, &f->files, hv, path, n, sizeof *id + 32);
    if (at >= 0) {
        memcpy(f->arena.data + at, id, sizeof *id);
        memcpy(f->arena.data + at + sizeof *id, h, 32);
        return 0;
    }
    if (n > UINT32_MAX || fl_htab_reserve(ctx, &f->files, 1)) return -1;
    size_t off = f->arena.len;
    uint32_t len = (uint32_t)n;
    fv_buf_put(&f->arena, id, sizeof *id);
    fv_buf_put(&f->arena, h, 32);
    fv_buf_put(&f->arena, &len, 4);
    fv_buf_put(&f->arena, path, n);
    if (f->arena.failed) return -1;
    fl_htab_add(&f->files, hv, off);
    return 0;
}

/* Make sure the rows of path's folder (its first dlen bytes, ending in '/') are in
 * memory. 1 they are; 0 they cannot be (SQLite answers). */
static int fid_folder(fl_state *st, const char *path, size_t dlen) {
    fid_cache *f = &st->fid;
    uint64_t hv = fl_hash_bytes(path, dlen);
    if (fid_find(f, &f->dirs, hv, path, dlen, 0) >= 0) return 1;
    if (dlen > 4000 || fl_htab_reserve(st->ctx, &f->dirs, 1)) return (f->off = 1), 0;
    char lo[4096], hi[4096];
    memcpy(lo, path, dlen);
    memcpy(hi, path, dlen);
    hi[dlen - 1] = '/' + 1;
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_file_range);
    if (!s) return (f->off = 1), 0;
    sqlite3_bind_text(s, 1, lo, (int)dlen, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hi, (int)dlen, SQLITE_STATIC);
    int rc = SQLITE_DONE, oom = 0;
    long rows = 0;
    while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (++rows > FID_FOLDER_MAX) {
            oom = 1; /* not memory, but as good as: give up */
            break;
        }
        const char *p = (const char *)sqlite3_column_text(s, 0);
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        if (!p || n <= dlen || memchr(p + dlen, '/', n - dlen) || sqlite3_column_bytes(s, 5) != 32)
            continue; /* deeper down, or not a whole row */
        state_file_id id = {sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                            sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4)};
        oom = fid_add(f, st->ctx, p, n, &id, sqlite3_column_blob(s, 5));
    }
    if (!oom && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    if (oom || rc != SQLITE_DONE) return (f->off = 1), 0; /* what was added is never read */
    size_t off = f->arena.len;
    uint32_t len = (uint32_t)dlen;
    fv_buf_put(&f->arena, &len, 4);
    fv_buf_put(&f->arena, path, dlen);
    if (f->arena.failed) return (f->off = 1), 0;
    fl_htab_add(&f->dirs, hv, off);
    return 1;
}

/* The length of path's folder with its '/', or 0 when the folder cannot be read
 * from memory (no folder in the path, or the folders are off). */
static size_t fid_dir_len(const fl_state *st, const char *path) {
    const char *slash = strrchr(path, '/');
    return st->fid.off || !slash ? 0 : (size_t)(slash - path) + 1;
}

int state_file_lookup(fl_state *st, const char *path, const state_file_id *id, fl_digest *h) {
    fid_cache *f = &st->fid;
    size_t dlen = fid_dir_len(st, path);
    if (dlen && f->on && fid_folder(st, path, dlen)) {
        size_t n = strlen(path);
        long at = fid_find(f, &f->files, fl_hash_bytes(path, n), path, n, sizeof *id + 32);
        if (at < 0 || memcmp(f->arena.data + at, id, sizeof *id)) return 0;
        memcpy(h->b, f->arena.data + at + sizeof *id, 32);
        return 1;
    }
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_file_get);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    int found = 0, rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail(&st->main);
    if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == id->size &&
        sqlite3_column_int64(s, 1) == id->mtime_ns && sqlite3_column_int64(s, 2) == id->inode &&
        sqlite3_column_int64(s, 3) == id->ctime_ns && sqlite3_column_bytes(s, 4) == 32) {
        memcpy(h->b, sqlite3_column_blob(s, 4), 32);
        found = 1;
    }
    sqlite3_reset(s);
    f->looked++;
    f->hits += found;
    if (f->looked >= FID_MIN_LOOKUPS && f->hits * 10 >= f->looked * 9) f->on = 1;
    return found;
}

int state_file_known(fl_state *st, const char *path) {
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_file_get);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail(&st->main);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int state_file_record(fl_state *st, const char *path, state_file_rec *out) {
    memset(out, 0, sizeof *out);
    read_begin(&st->main);
    sqlite3_stmt *s = stmt(&st->main, ST_file_rec);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), found = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) sql_fail(&st->main);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 2) == 32) {
        out->size = sqlite3_column_int64(s, 0);
        out->mtime_ns = sqlite3_column_int64(s, 1);
        memcpy(out->hash.b, sqlite3_column_blob(s, 2), 32);
        if (sqlite3_column_bytes(s, 5) == 32) {
            out->has_prev = 1;
            out->prev_size = sqlite3_column_int64(s, 3);
            out->prev_mtime_ns = sqlite3_column_int64(s, 4);
            memcpy(out->prev_hash.b, sqlite3_column_blob(s, 5), 32);
        }
        found = 1;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

static int apply_file(conn *c, const char *path, const state_file_id *id, const fl_digest *h) {
    if (begin(c)) return -1;
    sqlite3_stmt *s = stmt(c, ST_file_put);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, id->size);
    sqlite3_bind_int64(s, 3, id->mtime_ns);
    sqlite3_bind_int64(s, 4, id->inode);
    sqlite3_bind_int64(s, 5, id->ctime_ns);
    sqlite3_bind_blob(s, 6, h->b, 32, SQLITE_STATIC);
    return step_write(c, s);
}

int state_file_put(fl_state *st, const char *path, const state_file_id *id, const fl_digest *h) {
    size_t dlen = fid_dir_len(st, path);
    if (dlen && st->fid.dirs.n &&
        fid_find(&st->fid, &st->fid.dirs, fl_hash_bytes(path, dlen), path, dlen, 0) >= 0 &&
        fid_add(&st->fid, st->ctx, path, strlen(path), id, h->b))
        st->fid.off = 1; /* memory ran out: the folder is no longer whole there */
    if (!st->async) return apply_file(&st->main, path, id, h);
    uint8_t kind = REC_FILE;
    wb_put(st, &kind, 1);
    wb_str(st, path);
    wb_u64(st, (uint64_t)id->size);
    wb_u64(st, (uint64_t)id->mtime_ns);
    wb_u64(st, (uint64_t)id->inode);
    wb_u64(st, (uint64_t)id->ctime_ns);
    wb_blob(st, h->b, 32, 1);
    return 0;
}

/* ---- gc: what the history refers to, and forgetting runs ----
 * Kept apart from the statements above (prepared here, used once per gc). */

int state_history_scan(fl_state *st,
                       void (*fn)(int64_t run, const void *data, size_t len, void *ctx),
                       void *ctx) {
    if (state_sync(st) || conn_commit(&st->main)) return -1;
    read_end(&st->main);
    static const char *const sql[] = {
        "SELECT id, result, params, params_blob FROM runs",
        /* a packed row's blob holds its records' results (see "packed rows") */
        "SELECT run, result, packed FROM instances WHERE result IS NOT NULL OR packed IS NOT NULL",
    };
    int rc = 0;
    for (size_t q = 0; q < sizeof sql / sizeof *sql && rc == 0; q++) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(st->main.db, sql[q], -1, &s, NULL) != SQLITE_OK) {
            fl_log(st->ctx, FL_LOG_ERROR, "%s: %s", st->path, sqlite3_errmsg(st->main.db));
            return -1;
        }
        int step;
        while ((step = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t run = sqlite3_column_int64(s, 0);
            for (int i = 1; i < sqlite3_column_count(s); i++) {
                const void *b = sqlite3_column_blob(s, i);
                int n = sqlite3_column_bytes(s, i);
                if (b && n > 0) fn(run, b, (size_t)n, ctx);
            }
        }
        if (step != SQLITE_DONE) {
            fl_log(st->ctx, FL_LOG_ERROR, "%s: %s", st->path, sqlite3_errmsg(st->main.db));
            rc = -1;
        }
        sqlite3_finalize(s);
    }
    return rc;
}

int state_runs_forget(fl_state *st, const int64_t *runs, size_t n) {
    conn *c = &st->main;
    if (!n) return 0;
    if (state_sync(st) || begin(c)) return -1;
    static const char *const sql[] = {"DELETE FROM events WHERE run=?",
                                      "DELETE FROM task_cpu WHERE run=?",
                                      "DELETE FROM instances WHERE run=?",
                                      "DELETE FROM runs WHERE id=?"};
    int rc = 0;
    for (size_t q = 0; q < sizeof sql / sizeof *sql && rc == 0; q++) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(c->db, sql[q], -1, &s, NULL) != SQLITE_OK) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, runs[i]);
            if (sqlite3_step(s) != SQLITE_DONE) rc = -1;
        }
        sqlite3_finalize(s);
    }
    if (rc) {
        fl_log(st->ctx, FL_LOG_ERROR, "%s: %s", st->path, sqlite3_errmsg(c->db));
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        c->in_tx = 0;
        c->pending = 0;
        return -1;
    }
    return conn_commit(c);
}
