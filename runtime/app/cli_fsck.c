/*
 * cli_fsck.c — `flowrun fsck`: check the state directory, and salvage a damaged
 * state.db into a new one.
 *
 * Checking: state.db must pass the file-level check state_open makes (header,
 * size) and SQLite's `PRAGMA integrity_check`; every object in the store is
 * re-hashed against its name (store_verify removes one that does not match, so
 * it is recomputed when next needed). A sound state directory is left as it is.
 *
 * Salvaging a damaged state.db. The damaged file (with its write-ahead log) is
 * kept, renamed state.db.damaged-TIME; nothing is ever written to it. A copy of
 * it is made, its header's constant fields are put back (a damaged header
 * otherwise makes SQLite refuse the whole file), and every table is copied row
 * by row into a new database created by state_open (so it has this flowrun's
 * schema; columns are matched by name, so an older schema salvages too). A read
 * that meets a damaged page skips ahead by rowid, doubling the step, until it
 * reads again: one damaged page costs the rows on it, not the rest of the table.
 * Tables without rowids (the file-identity index, the cache's object lists) are
 * read in key order until the first damage; what they lose is re-derived (a
 * file is hashed again; gc keeps what a result refers to). Runs recorded as
 * `running` are marked `interrupted`: their flowrun is gone, and resume finishes
 * them. Exit 0 when the state was sound or has been salvaged, 2 when it could not
 * be (the message says why; nothing was changed then).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rtcore.h"
#include "state.h"
#include "store.h"

#define FSCK_PATH 4200

/* Copy a file (and nothing if it does not exist: 1). 0 ok, -1 error. */
static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) return errno == ENOENT ? 1 : -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    if (n < 0 || fsync(out)) rc = -1;
    close(in);
    close(out);
    return rc;
}

/* Put back the header fields SQLite and flowrun always write the same way. */
static void mend_header(const char *path) {
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    uint8_t h[100];
    if (pread(fd, h, 100, 0) == 100) {
        memcpy(h, "SQLite format 3", 16);
        if (h[18] < 1 || h[18] > 2) h[18] = 2;
        if (h[19] < 1 || h[19] > 2) h[19] = 2;
        h[20] = 0, h[21] = 64, h[22] = 32, h[23] = 32;
        uint32_t page = (uint32_t)h[16] << 8 | h[17];
        if (page != 1 && (page < 512 || (page & (page - 1)))) h[16] = 0x40, h[17] = 0; /* 16 KiB */
        page = (uint32_t)h[16] << 8 | h[17];
        if (page == 1) page = 65536;
        /* whole pages only, and the page count the file really has */
        struct stat sb;
        if (!fstat(fd, &sb)) {
            uint64_t pages = (uint64_t)sb.st_size / page;
            if (ftruncate(fd, (off_t)(pages * page))) { /* salvage reads what it can */
            }
            h[28] = (uint8_t)(pages >> 24), h[29] = (uint8_t)(pages >> 16);
            h[30] = (uint8_t)(pages >> 8), h[31] = (uint8_t)pages;
            memcpy(h + 92, h + 24, 4); /* the count is valid for this change counter */
        }
        if (pwrite(fd, h, 100, 0) != 100) { /* salvage goes on with what SQLite makes of it */
        }
    }
    close(fd);
}

typedef struct salvage {
    sqlite3 *db;        /* the new database */
    sqlite3 *old;       /* the damaged copy, read-only */
    long rows, lost;    /* rows copied; read errors met (each may have cost rows) */
} salvage;

/* Does table t of db have column c? */
static int has_column(sqlite3 *db, const char *t, const char *c) {
    sqlite3_stmt *s;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", -1, &s,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c, -1, SQLITE_STATIC);
    found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

/* The columns both databases' table t has, comma-separated (new order). */
static int common_columns(salvage *S, const char *t, char *out, size_t len) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(S->db, "SELECT name FROM pragma_table_info(?)", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    size_t n = 0;
    out[0] = 0;
    while (sqlite3_step(s) == SQLITE_ROW && n + 80 < len) {
        const char *c = (const char *)sqlite3_column_text(s, 0);
        if (has_column(S->old, t, c)) n += (size_t)snprintf(out + n, len - n, "%s\"%s\"", n ? "," : "", c);
    }
    sqlite3_finalize(s);
    return n ? 0 : -1;
}

/* Copy table t row by row; with rowid, skip damaged stretches by rowid. */
static void copy_table(salvage *S, const char *t, int rowid) {
    char cols[2048], sql[4600];
    if (common_columns(S, t, cols, sizeof cols)) return; /* not in the old schema */
    int ncols = 1;
    for (const char *c = cols; *c; c++) ncols += *c == ',';
    char marks[1024] = "";
    for (int i = 0; i < ncols && 3 * i + 4 < (int)sizeof marks; i++) strcat(marks, i ? ",?" : "?");
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO main.\"%s\"(%s) VALUES(%s)", t, cols, marks);
    sqlite3_stmt *ins, *sel;
    if (sqlite3_prepare_v2(S->db, sql, -1, &ins, NULL) != SQLITE_OK) return;
    if (rowid)
        snprintf(sql, sizeof sql, "SELECT %s, rowid FROM \"%s\" WHERE rowid >= ? ORDER BY rowid",
                 cols, t);
    else
        snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\"", cols, t);
    if (sqlite3_prepare_v2(S->old, sql, -1, &sel, NULL) != SQLITE_OK) {
        sqlite3_finalize(ins);
        S->lost++;
        return;
    }
    int64_t from = INT64_MIN, step = 1;
    for (int tries = 0; tries < 200; tries++) {
        sqlite3_reset(sel);
        if (rowid) sqlite3_bind_int64(sel, 1, from);
        int rc;
        while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
            sqlite3_reset(ins);
            for (int i = 0; i < ncols; i++) sqlite3_bind_value(ins, i + 1, sqlite3_column_value(sel, i));
            if (sqlite3_step(ins) == SQLITE_DONE) S->rows++;
            if (rowid) from = sqlite3_column_int64(sel, ncols) + 1, step = 1;
        }
        if (rc == SQLITE_DONE || !rowid) {
            if (rc != SQLITE_DONE) S->lost++;
            break;
        }
        /* a damaged page: try further on, farther each time */
        S->lost++;
        if (from == INT64_MIN) from = 0;
        if (from > INT64_MAX - step) break;
        from += step;
        if (step < (INT64_C(1) << 40)) step *= 2;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
}

/* 0 sound; 1 damaged (why in buf). */
static int db_damaged(const char *path, char *why, size_t len) {
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(why, len, "%s", db ? sqlite3_errmsg(db) : "cannot be opened");
        sqlite3_close(db);
        return 1;
    }
    sqlite3_stmt *s;
    int bad = 1;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(10)", -1, &s, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(s, 0), "ok")) bad = 0;
        else snprintf(why, len, "%s", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0)
                                                       : sqlite3_errmsg(db));
        sqlite3_finalize(s);
    } else {
        snprintf(why, len, "%s", sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return bad;
}

/* Re-hash every object; store_verify removes the damaged ones. */
typedef struct fsck_count {
    fl_store *st;
    long *objects, *damaged;
} fsck_count;

static int check_object(const fl_digest *h, int dirfd, const char *name, void *ctx) {
    fsck_count *c = ctx;
    (void)dirfd, (void)name;
    (*c->objects)++;
    if (store_verify(c->st, h)) (*c->damaged)++;
    return 0;
}

static void check_store(const char *dir, long *objects, long *damaged) {
    char err[512];
    fl_store *st = store_open(flowrun_ctx(), dir, err, sizeof err);
    if (!st) return;
    fsck_count c = {st, objects, damaged};
    store_objects_each(st, check_object, &c);
    store_close(st);
}

static int salvage_db(const char *dir, const char *db) {
    char tmpdir[FSCK_PATH], copy[FSCK_PATH], kept[FSCK_PATH], w1[FSCK_PATH], w2[FSCK_PATH];
    char err[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    /* every path is built before anything is touched: one too long stops here */
    if (store_pathf(tmpdir, sizeof tmpdir, "%s/fsck-%ld", dir, (long)getpid()) ||
        store_pathf(copy, sizeof copy, "%s/damaged.db", tmpdir) ||
        store_pathf(kept, sizeof kept, "%s.damaged-%04d%02d%02d-%02d%02d%02d", db,
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec) ||
        store_pathf(w1, sizeof w1, "%s-wal", db) || store_pathf(w2, sizeof w2, "%s-wal", copy)) {
        fprintf(stderr, "flowrun fsck: the path of %s is too long\n", db);
        return 2;
    }
    if (mkdir(tmpdir, 0700)) {
        fprintf(stderr, "flowrun fsck: cannot create %s: %s\n", tmpdir, strerror(errno));
        return 2;
    }
    if (copy_file(db, copy) || copy_file(w1, w2) < 0) {
        fprintf(stderr, "flowrun fsck: cannot copy %s into %s: %s\n", db, tmpdir, strerror(errno));
        return 2;
    }
    mend_header(copy);
    fl_state *fresh = state_open(flowrun_ctx(), tmpdir, err, sizeof err); /* tmpdir/state.db, the schema */
    if (!fresh) {
        fprintf(stderr, "flowrun fsck: %s\n", err);
        return 2;
    }
    state_close(fresh);
    char newdb[FSCK_PATH];
    store_pathf(newdb, sizeof newdb, "%s/state.db", tmpdir); /* shorter than copy */
    salvage S = {0};
    if (sqlite3_open(newdb, &S.db) != SQLITE_OK) {
        fprintf(stderr, "flowrun fsck: %s: %s\n", newdb, sqlite3_errmsg(S.db));
        sqlite3_close(S.db);
        return 2;
    }
    if (sqlite3_open_v2(copy, &S.old, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        /* even its schema cannot be read: the new database starts empty */
        sqlite3_close(S.old);
        S.old = NULL;
        S.lost++;
    }
    sqlite3_exec(S.db, "BEGIN", NULL, NULL, NULL);
    static const struct { const char *t; int rowid; } tables[] = {
        {"runs", 1}, {"instances", 1}, {"events", 1}, {"cache_pack", 1},
        {"cache_objects", 0}, {"files", 0}, {"envs", 1}, /* envs: the cache's environment ids */
        {"remote_batches", 0}, /* a run's remote batches: what its resume re-attaches to */
    };
    for (size_t i = 0; S.old && i < sizeof tables / sizeof tables[0]; i++)
        copy_table(&S, tables[i].t, tables[i].rowid);
    sqlite3_close(S.old);
    sqlite3_exec(S.db, "UPDATE runs SET state='interrupted' WHERE state='running'", NULL, NULL, NULL);
    int ok = sqlite3_exec(S.db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    snprintf(err, sizeof err, "%s", sqlite3_errmsg(S.db));
    sqlite3_close(S.db);
    if (!ok) {
        fprintf(stderr, "flowrun fsck: writing the salvaged database failed (%s); %s is unchanged\n",
                err, db);
        return 2;
    }
    /* the damaged file and its log step aside, kept; the salvaged one takes its place */
    char kw[FSCK_PATH + 8], ks[FSCK_PATH + 8], shm[FSCK_PATH];
    snprintf(kw, sizeof kw, "%s-wal", kept);
    snprintf(ks, sizeof ks, "%s-shm", kept);
    store_pathf(shm, sizeof shm, "%s-shm", db); /* as long as w1, which fitted */
    if (rename(db, kept)) {
        fprintf(stderr, "flowrun fsck: cannot rename %s: %s\n", db, strerror(errno));
        return 2;
    }
    rename(w1, kw);
    rename(shm, ks);
    if (rename(newdb, db)) {
        fprintf(stderr, "flowrun fsck: cannot put the salvaged database in place: %s\n",
                strerror(errno));
        return 2;
    }
    char dirs[][FSCK_PATH + 16] = {"", "", ""};
    snprintf(dirs[0], sizeof dirs[0], "%s-wal", newdb);
    snprintf(dirs[1], sizeof dirs[1], "%s-shm", newdb);
    unlink(dirs[0]);
    unlink(dirs[1]);
    unlink(w2);
    snprintf(dirs[2], sizeof dirs[2], "%s-shm", copy);
    unlink(dirs[2]);
    unlink(copy);
    rmdir(tmpdir);
    printf("%s: salvaged %ld rows into a new database (%ld damaged stretch%s skipped); "
           "the damaged file is kept as %s\n",
           db, S.rows, S.lost, S.lost == 1 ? "" : "es", kept);
    return 0;
}

int flowrun_cmd_fsck(int argc, char **argv) {
    enum { O_STATE = 256, O_CONFIG };
    static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
                                         {"config", required_argument, NULL, O_CONFIG},
                                         {NULL, 0, NULL, 0}};
    const char *state = NULL, *config = NULL, *val;
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun fsck",
                  " (usage: flowrun fsck [--state DIR] [--config FILE])", "", opts, 0);
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        if (c == CLI_ERROR) return 2;
        if (c == CLI_ARG) {
            fprintf(stderr, "flowrun fsck: unexpected argument '%s' (usage: flowrun fsck "
                            "[--state DIR] [--config FILE])\n", val);
            return 2;
        }
        if (c == O_CONFIG) config = val;
        else state = val; /* --state */
    }
    char dir[FSCK_PATH - 32]; /* room for /state.db after it */
    if (cli_state_dir("flowrun fsck", state, config, dir, sizeof dir)) return 2;
    char db[FSCK_PATH], why[512] = "";
    snprintf(db, sizeof db, "%s/state.db", dir);
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "flowrun fsck: %s is not a state directory\n", dir);
        return 2;
    }
    int code = 0;
    char err[1024];
    fl_state *st = state_open(flowrun_ctx(), dir, err, sizeof err);
    int damaged = !st;
    if (st) {
        state_close(st);
        damaged = db_damaged(db, why, sizeof why);
    } else {
        snprintf(why, sizeof why, "%.*s", (int)sizeof why - 1, err);
    }
    for (char *c = why; *c; c++)
        if (*c == '\n') *c = ' ';
    if (damaged) {
        printf("%s: damaged: %s\n", db, why);
        fflush(stdout);
        code = salvage_db(dir, db);
    } else {
        printf("%s: ok\n", db);
    }
    long objects = 0, bad = 0;
    check_store(dir, &objects, &bad);
    printf("%s/store: %ld object%s checked, %ld damaged%s\n", dir, objects, objects == 1 ? "" : "s",
           bad, bad ? " (removed: each is recomputed when next needed)" : "");
    return code;
}
