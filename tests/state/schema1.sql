-- state.db as schema version 1 made it (flowrun before the cache got its own
-- table): the 50-state suite builds such a database to test the migration.
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE runs(id INTEGER PRIMARY KEY, flow TEXT NOT NULL, env TEXT NOT NULL,
 params TEXT NOT NULL, plan_path TEXT, plan_hash BLOB, state TEXT NOT NULL,
 started REAL NOT NULL, ended REAL, exit_code INTEGER, result TEXT, error TEXT,
 pid INTEGER, params_blob BLOB);
CREATE TABLE instances(id INTEGER PRIMARY KEY, run INTEGER NOT NULL,
 node INTEGER NOT NULL, idx TEXT NOT NULL, task TEXT NOT NULL, label TEXT,
 state TEXT NOT NULL, attempts INTEGER NOT NULL, cache_key BLOB,
 cache_hit INTEGER NOT NULL, started REAL, ended REAL, exit_status INTEGER,
 signal INTEGER, error TEXT, worker_pid INTEGER, peak_rss_kb INTEGER, result BLOB,
 ck INTEGER);
CREATE INDEX instances_run ON instances(run);
CREATE INDEX instances_ck ON instances(ck) WHERE ck IS NOT NULL;
CREATE TABLE events(run INTEGER NOT NULL, node INTEGER NOT NULL, idx TEXT NOT NULL,
 at REAL NOT NULL, state TEXT NOT NULL);
CREATE INDEX events_run ON events(run);
CREATE TABLE cache_objects(key BLOB NOT NULL, object BLOB NOT NULL,
 PRIMARY KEY(key, object)) WITHOUT ROWID;
CREATE TABLE files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
 inode INTEGER, ctime_ns INTEGER, hash BLOB) WITHOUT ROWID;
INSERT INTO meta VALUES('oldest_reader', 1);
PRAGMA user_version=1;
