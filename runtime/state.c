/*
 * state.c — the state database (see state.h for what it holds and why it
 * commits in batches).
 */
#define _GNU_SOURCE
#include "state.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define STATE_BUSY_MS 30000     /* how long a writer waits for another flowrun's lock */
#define STATE_AUTOCOMMIT 100000 /* buffered writes before a commit is forced */

/* Every prepared statement, listed once: X(name, sql) */
#define STATE_STMTS(X)                                                                             \
    X(run_insert, "INSERT INTO runs(flow, env, params, plan_path, plan_hash, state, started, "     \
                  "exit_code, pid, params_blob) VALUES(?,?,?,?,?,'running',?,-1,?,?)")             \
    X(run_end, "UPDATE runs SET state=?, exit_code=?, result=?, error=?, ended=? WHERE id=?")      \
    X(run_reopen, "UPDATE runs SET state='running', pid=?, ended=NULL, exit_code=-1 WHERE id=?")   \
    X(run_get, "SELECT id, flow, env, params, plan_path, plan_hash, state, started, "              \
               "coalesce(ended,0), exit_code, result, error, pid, params_blob FROM runs WHERE id=?")            \
    X(run_list, "SELECT id, flow, env, params, plan_path, plan_hash, state, started, "             \
                "coalesce(ended,0), exit_code, result, error, pid, params_blob FROM runs ORDER BY id DESC")     \
    X(inst_put, "INSERT OR REPLACE INTO instances(run, node, idx, task, label, state, attempts, "  \
                "cache_key, cache_hit, started, ended, exit_status, signal, error, worker_pid, "   \
                "peak_rss_kb, result) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")                  \
    X(event_put, "INSERT INTO events(run, node, idx, at, state) VALUES(?,?,?,?,?)")                \
    X(inst_list, "SELECT node, idx, task, label, state, attempts, cache_key, cache_hit, started, " \
                 "ended, exit_status, signal, error, worker_pid, peak_rss_kb, result "             \
                 "FROM instances WHERE run=? ORDER BY node, length(idx), idx")                     \
    X(inst_clear_one, "UPDATE instances SET state='cleared' WHERE run=? AND task=? AND idx=?")     \
    X(inst_clear_all, "UPDATE instances SET state='cleared' WHERE run=? AND task=?")               \
    X(cache_get, "SELECT value FROM cache WHERE key=?")                                            \
    X(cache_put, "INSERT OR REPLACE INTO cache(key, value, run, created) VALUES(?,?,?,?)")         \
    X(cache_obj, "INSERT OR IGNORE INTO cache_objects(key, object) VALUES(?,?)")                   \
    X(cache_drop, "DELETE FROM cache WHERE key=?")                                                 \
    X(cache_drop_objs, "DELETE FROM cache_objects WHERE key=?")                                    \
    X(live_objects, "SELECT DISTINCT object FROM cache_objects")                                   \
    X(file_get, "SELECT size, mtime_ns, inode, ctime_ns, hash FROM files WHERE path=?")            \
    X(file_put, "INSERT OR REPLACE INTO files(path, size, mtime_ns, inode, ctime_ns, hash) "       \
                "VALUES(?,?,?,?,?,?)")

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

struct flow_state {
    sqlite3 *db;                /* the connection (used by one thread) */
    sqlite3_stmt *st[ST__COUNT]; /* prepared once, on first use */
    int in_tx;                  /* a batch transaction is open */
    long pending;               /* writes in the open transaction */
    char path[4096];            /* state.db path, for messages */
};

/* Migrations: schema[v-1] takes a database from version v-1 to v. */
static const char *const schema[] = {
    /* 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, flow TEXT NOT NULL, env TEXT NOT NULL,"
    " params TEXT NOT NULL, plan_path TEXT, plan_hash BLOB, state TEXT NOT NULL,"
    " started REAL NOT NULL, ended REAL, exit_code INTEGER, result TEXT, error TEXT,"
    " pid INTEGER, params_blob BLOB);"
    "CREATE TABLE instances(run INTEGER NOT NULL, node INTEGER NOT NULL, idx TEXT NOT NULL,"
    " task TEXT NOT NULL, label TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " cache_key BLOB, cache_hit INTEGER NOT NULL, started REAL, ended REAL,"
    " exit_status INTEGER, signal INTEGER, error TEXT, worker_pid INTEGER,"
    " peak_rss_kb INTEGER, result BLOB, PRIMARY KEY(run, node, idx)) WITHOUT ROWID;"
    "CREATE TABLE events(run INTEGER NOT NULL, node INTEGER NOT NULL, idx TEXT NOT NULL,"
    " at REAL NOT NULL, state TEXT NOT NULL);"
    "CREATE INDEX events_run ON events(run);"
    "CREATE TABLE cache(key BLOB PRIMARY KEY, value BLOB NOT NULL, run INTEGER,"
    " created REAL) WITHOUT ROWID;"
    "CREATE TABLE cache_objects(key BLOB NOT NULL, object BLOB NOT NULL,"
    " PRIMARY KEY(key, object)) WITHOUT ROWID;"
    "CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
    " inode INTEGER, ctime_ns INTEGER, hash BLOB) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('oldest_reader', 1);",
};
#define STATE_OLDEST_READER 1 /* the oldest schema version a reader of ours understands */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static sqlite3_stmt *stmt(flow_state *st, int which) {
    if (!st->st[which] &&
        sqlite3_prepare_v2(st->db, stmt_sql[which], -1, &st->st[which], NULL) != SQLITE_OK) {
        fprintf(stderr, "flowrun: %s: %s\n", st->path, sqlite3_errmsg(st->db));
        return NULL;
    }
    sqlite3_reset(st->st[which]);
    sqlite3_clear_bindings(st->st[which]);
    return st->st[which];
}

static int exec(flow_state *st, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        const char *why = msg ? msg : sqlite3_errmsg(st->db);
        snprintf(err, errlen, "%.*s: %s", (int)(errlen / 2), st->path, why);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int meta_int(flow_state *st, const char *key, int *out) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key=?", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_ROW ? (*out = sqlite3_column_int(s, 0), 0) : -1;
    sqlite3_finalize(s);
    return rc;
}

/* Bring the schema to STATE_SCHEMA_VERSION, or refuse a newer one we cannot read. */
static int migrate(flow_state *st, char *err, size_t errlen) {
    if (exec(st, "BEGIN IMMEDIATE", err, errlen)) return -1;
    int version = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
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
    for (int v = version; v < STATE_SCHEMA_VERSION; v++)
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

flow_state *state_open(const char *dir, char *err, size_t errlen) {
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    flow_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(st->path, sizeof st->path, "%s/state.db", dir);
    if (sqlite3_open_v2(st->path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", st->path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        state_close(st);
        return NULL;
    }
    sqlite3_busy_timeout(st->db, STATE_BUSY_MS);
    if (exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err, errlen) ||
        migrate(st, err, errlen)) {
        state_close(st);
        return NULL;
    }
    return st;
}

void state_close(flow_state *st) {
    if (!st) return;
    if (st->db) {
        state_commit(st);
        for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(st->st[i]);
        sqlite3_close(st->db);
    }
    free(st);
}

static int begin(flow_state *st) {
    if (st->in_tx) return 0;
    char err[4700];
    if (exec(st, "BEGIN IMMEDIATE", err, sizeof err)) {
        fprintf(stderr, "flowrun: %s\n", err);
        return -1;
    }
    st->in_tx = 1;
    st->pending = 0;
    return 0;
}

int state_commit(flow_state *st) {
    if (!st->in_tx) return 0;
    char err[4700];
    st->in_tx = 0;
    if (exec(st, "COMMIT", err, sizeof err)) {
        fprintf(stderr, "flowrun: %s\n", err);
        exec(st, "ROLLBACK", err, sizeof err);
        return -1;
    }
    return 0;
}

/* A write inside the batch transaction. */
static int step_write(flow_state *st, sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "flowrun: %s: %s\n", st->path, sqlite3_errmsg(st->db));
        return -1;
    }
    if (++st->pending >= STATE_AUTOCOMMIT) {
        if (state_commit(st)) return -1;
        return begin(st);
    }
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t) {
    if (t) sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static void bind_hash(sqlite3_stmt *s, int i, const flow_hash *h) {
    if (h) sqlite3_bind_blob(s, i, h->b, 32, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

int state_run_begin(flow_state *st, state_run *r) {
    if (state_commit(st) || begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_run_insert);
    if (!s) return -1;
    bind_text(s, 1, r->flow);
    bind_text(s, 2, r->env ? r->env : "prod");
    bind_text(s, 3, r->params_json ? r->params_json : "{}");
    bind_text(s, 4, r->plan_path);
    bind_hash(s, 5, &r->plan_hash);
    sqlite3_bind_double(s, 6, r->started ? r->started : now());
    sqlite3_bind_int(s, 7, r->pid);
    if (r->params_blob) sqlite3_bind_blob(s, 8, r->params_blob, (int)r->params_blob_len, SQLITE_TRANSIENT);
    if (step_write(st, s)) return -1;
    r->id = sqlite3_last_insert_rowid(st->db);
    return state_commit(st);
}

int state_run_end(flow_state *st, int64_t run, const char *state, int exit_code,
                  const char *result_json, const char *error) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_run_end);
    if (!s) return -1;
    bind_text(s, 1, state);
    sqlite3_bind_int(s, 2, exit_code);
    bind_text(s, 3, result_json);
    bind_text(s, 4, error);
    sqlite3_bind_double(s, 5, now());
    sqlite3_bind_int64(s, 6, run);
    if (step_write(st, s)) return -1;
    return state_commit(st);
}

int state_run_reopen(flow_state *st, int64_t run, int pid) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_run_reopen);
    if (!s) return -1;
    sqlite3_bind_int(s, 1, pid);
    sqlite3_bind_int64(s, 2, run);
    if (step_write(st, s)) return -1;
    return state_commit(st);
}

static char *col_dup(sqlite3_stmt *s, int i) {
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static void read_run(sqlite3_stmt *s, state_run *r) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->flow = col_dup(s, 1);
    r->env = col_dup(s, 2);
    r->params_json = col_dup(s, 3);
    r->plan_path = col_dup(s, 4);
    if (sqlite3_column_bytes(s, 5) == 32) memcpy(r->plan_hash.b, sqlite3_column_blob(s, 5), 32);
    r->state = col_dup(s, 6);
    r->started = sqlite3_column_double(s, 7);
    r->ended = sqlite3_column_double(s, 8);
    r->exit_code = sqlite3_column_int(s, 9);
    r->result_json = col_dup(s, 10);
    r->error = col_dup(s, 11);
    r->pid = sqlite3_column_int(s, 12);
    r->params_blob_len = (size_t)sqlite3_column_bytes(s, 13);
    if (r->params_blob_len) {
        void *b = malloc(r->params_blob_len);
        memcpy(b, sqlite3_column_blob(s, 13), r->params_blob_len);
        r->params_blob = b;
    }
}

void state_run_free(state_run *r) {
    free((char *)r->flow);
    free((char *)r->env);
    free((char *)r->params_json);
    free((char *)r->plan_path);
    free((char *)r->state);
    free((char *)r->result_json);
    free((char *)r->error);
    free((void *)r->params_blob);
    memset(r, 0, sizeof *r);
}

int state_run_get(flow_state *st, int64_t run, state_run *r) {
    sqlite3_stmt *s = stmt(st, ST_run_get);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    int rc = -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
        read_run(s, r);
        rc = 0;
    }
    sqlite3_reset(s);
    return rc;
}

static int take_first(const state_run *r, void *ctx) {
    *(int64_t *)ctx = r->id;
    return 1;
}

int64_t state_run_latest(flow_state *st) {
    int64_t id = 0;
    state_runs_each(st, take_first, &id);
    return id;
}

int state_runs_each(flow_state *st, int (*fn)(const state_run *r, void *ctx), void *ctx) {
    sqlite3_stmt *s = stmt(st, ST_run_list);
    if (!s) return -1;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        state_run r;
        read_run(s, &r);
        int stop = fn(&r, ctx);
        state_run_free(&r);
        if (stop) break;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ERROR ? -1 : 0;
}

int state_inst_put(flow_state *st, const state_inst *r) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_inst_put);
    if (!s) return -1;
    const char *idx = r->idx ? r->idx : "";
    sqlite3_bind_int64(s, 1, r->run);
    sqlite3_bind_int(s, 2, (int)r->node);
    sqlite3_bind_text(s, 3, idx, -1, SQLITE_TRANSIENT);
    bind_text(s, 4, r->task);
    bind_text(s, 5, r->label);
    bind_text(s, 6, r->state);
    sqlite3_bind_int(s, 7, r->attempts);
    bind_hash(s, 8, r->cache_key);
    sqlite3_bind_int(s, 9, r->cache_hit);
    if (r->started) sqlite3_bind_double(s, 10, r->started);
    if (r->ended) sqlite3_bind_double(s, 11, r->ended);
    if (r->exit_status >= 0) sqlite3_bind_int(s, 12, r->exit_status);
    if (r->term_signal) sqlite3_bind_int(s, 13, r->term_signal);
    bind_text(s, 14, r->error);
    if (r->worker_pid) sqlite3_bind_int(s, 15, r->worker_pid);
    if (r->peak_rss_kb) sqlite3_bind_int64(s, 16, r->peak_rss_kb);
    if (r->result) sqlite3_bind_blob(s, 17, r->result, (int)r->result_len, SQLITE_TRANSIENT);
    if (step_write(st, s)) return -1;
    s = stmt(st, ST_event_put);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, r->run);
    sqlite3_bind_int(s, 2, (int)r->node);
    sqlite3_bind_text(s, 3, idx, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 4, r->ended ? r->ended : r->started ? r->started : now());
    bind_text(s, 5, r->state);
    return step_write(st, s);
}

int state_insts_each(flow_state *st, int64_t run, int (*fn)(const state_inst *r, void *ctx),
                     void *ctx) {
    if (state_commit(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_inst_list);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        state_inst r = {0};
        flow_hash key;
        r.run = run;
        r.node = (uint32_t)sqlite3_column_int(s, 0);
        r.idx = (const char *)sqlite3_column_text(s, 1);
        r.task = (const char *)sqlite3_column_text(s, 2);
        r.label = (const char *)sqlite3_column_text(s, 3);
        r.state = (const char *)sqlite3_column_text(s, 4);
        r.attempts = sqlite3_column_int(s, 5);
        if (sqlite3_column_bytes(s, 6) == 32) {
            memcpy(key.b, sqlite3_column_blob(s, 6), 32);
            r.cache_key = &key;
        }
        r.cache_hit = sqlite3_column_int(s, 7);
        r.started = sqlite3_column_double(s, 8);
        r.ended = sqlite3_column_double(s, 9);
        r.exit_status = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 10);
        r.term_signal = sqlite3_column_int(s, 11);
        r.error = (const char *)sqlite3_column_text(s, 12);
        r.worker_pid = sqlite3_column_int(s, 13);
        r.peak_rss_kb = sqlite3_column_int64(s, 14);
        r.result = sqlite3_column_blob(s, 15);
        r.result_len = (size_t)sqlite3_column_bytes(s, 15);
        if (fn(&r, ctx)) break;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ERROR ? -1 : 0;
}

int state_inst_clear(flow_state *st, int64_t run, const char *task, const char *idx) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, idx ? ST_inst_clear_one : ST_inst_clear_all);
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, run);
    bind_text(s, 2, task);
    if (idx) bind_text(s, 3, idx);
    if (step_write(st, s)) return -1;
    int n = sqlite3_changes(st->db);
    return state_commit(st) ? -1 : n;
}

int state_cache_get(flow_state *st, const flow_hash *key, uint8_t **val, size_t *len) {
    sqlite3_stmt *s = stmt(st, ST_cache_get);
    if (!s) return -1;
    bind_hash(s, 1, key);
    int rc = sqlite3_step(s);
    int found = 0;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        *val = malloc(n ? n : 1);
        if (n) memcpy(*val, sqlite3_column_blob(s, 0), n);
        *len = n;
        found = 1;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

int state_cache_put(flow_state *st, const flow_hash *key, const void *val, size_t len,
                    int64_t run, const flow_hash *objs, size_t nobjs) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_cache_put);
    if (!s) return -1;
    bind_hash(s, 1, key);
    sqlite3_bind_blob(s, 2, len ? val : "", (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, run);
    sqlite3_bind_double(s, 4, now());
    if (step_write(st, s)) return -1;
    for (size_t i = 0; i < nobjs; i++) {
        s = stmt(st, ST_cache_obj);
        if (!s) return -1;
        bind_hash(s, 1, key);
        bind_hash(s, 2, &objs[i]);
        if (step_write(st, s)) return -1;
    }
    return 0;
}

int state_cache_drop(flow_state *st, const flow_hash *key) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_cache_drop);
    if (!s) return -1;
    bind_hash(s, 1, key);
    if (step_write(st, s)) return -1;
    s = stmt(st, ST_cache_drop_objs);
    if (!s) return -1;
    bind_hash(s, 1, key);
    return step_write(st, s);
}

int state_live_objects(flow_state *st, flow_hash **out, size_t *n) {
    if (state_commit(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_live_objects);
    if (!s) return -1;
    size_t cap = 64, len = 0;
    flow_hash *v = malloc(cap * sizeof *v);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != 32) continue;
        if (len == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        memcpy(v[len++].b, sqlite3_column_blob(s, 0), 32);
    }
    sqlite3_reset(s);
    *out = v;
    *n = len;
    return rc == SQLITE_DONE ? 0 : -1;
}

int state_file_lookup(flow_state *st, const char *path, const state_file_id *id, flow_hash *h) {
    sqlite3_stmt *s = stmt(st, ST_file_get);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    int found = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) == id->size &&
        sqlite3_column_int64(s, 1) == id->mtime_ns && sqlite3_column_int64(s, 2) == id->inode &&
        sqlite3_column_int64(s, 3) == id->ctime_ns && sqlite3_column_bytes(s, 4) == 32) {
        memcpy(h->b, sqlite3_column_blob(s, 4), 32);
        found = 1;
    }
    sqlite3_reset(s);
    return found;
}

int state_file_put(flow_state *st, const char *path, const state_file_id *id, const flow_hash *h) {
    if (begin(st)) return -1;
    sqlite3_stmt *s = stmt(st, ST_file_put);
    if (!s) return -1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, id->size);
    sqlite3_bind_int64(s, 3, id->mtime_ns);
    sqlite3_bind_int64(s, 4, id->inode);
    sqlite3_bind_int64(s, 5, id->ctime_ns);
    bind_hash(s, 6, h);
    return step_write(st, s);
}
