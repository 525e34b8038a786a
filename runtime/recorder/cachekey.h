/*
 * cachekey.h — the cache key of a task instance (language.md §9).
 *
 * key = SHA-256 over
 *   the task's identity: for a C task its `version` option if set, else the
 *     content hash of the library actually loaded, and the symbol and signature;
 *     for an sh task its version or its command (the command's expression code);
 *     for a combine both halves' identities, the stitch code and the hand-over;
 *   and every argument's value, by type: scalars and strings by their bytes;
 *     a `path` by its name and its file's content hash; a `dir` by its name and
 *     the hash of its manifest (the same manifest the store writes for a stored
 *     directory); lists and records element by element.
 *
 * Encoding, all integers as 8 bytes little-endian (u64), a string as its length
 * (u64) then its bytes (str):
 *   identity = SHA-256( str "flow-instance-key-1", u64 kind,
 *                       [str "version", str VERSION],
 *                       str TYPE-TEXT of each parameter, str TYPE-TEXT of the result,
 *                       C: str SYMBOL, [32-byte library hash unless versioned];
 *                       sh: [its command's code unless versioned];
 *                       combine: both identities' fields, the stitch code, the
 *                       hand-over (u64 kind, u64 index per parameter) )
 *   key      = SHA-256( 32-byte identity, then each argument:
 *                       int, bool, duration: u64; float: u64 of its bits;
 *                       str, date, bytes: str; path: str NAME (a stored file's
 *                       tail below the store), 32-byte content hash; dir: str
 *                       NAME, 32-byte manifest hash; list: u64 length, then its
 *                       items; record: its fields in order )
 * The bytes are a format: a key that changed would miss every cache entry
 * written before (tests/unit/test_cachekey.c pins them).
 *
 * File content hashes go through the file-identity index of state.db: a file
 * whose (size, mtime_ns, inode, ctime_ns) is unchanged since it was hashed is
 * not read again.
 */
#ifndef FLOW_CACHEKEY_H
#define FLOW_CACHEKEY_H

#include "plan.h"
#include "state.h"
#include "store.h"
#include "value.h"

typedef struct ck_ctx {
    const fl_plan *plan;     /* the plan */
    fl_state *state;         /* file-identity index, or NULL (then files are always read) */
    const fl_digest *lib_hash; /* per plan library: hash of the library loaded, or NULL (plan's) */
    char *const *image_id;     /* per task: the id of its image: as podman has it (a rebuilt
                                  image re-runs the task), or NULL (then its name) */
    long files_hashed;         /* statistics: files read to hash them */
    long files_known;          /* statistics: files recognised by the index */
    /* caches, filled on first use and freed by ck_free */
    fl_digest *ident;          /* per task: its identity hash */
    uint8_t *ident_done;       /* per task: ident computed */
    char *dir;                 /* the folder of the last input file (no '/'), or NULL */
    size_t dirlen, dircap;     /* its length, its room */
    int dirfd, dir_open;       /* dir_open: dirfd is dir, opened O_PATH (ck_file_hash) */
    uint8_t *buf;              /* the key being encoded (the plan's context; reused) */
    size_t len, cap;           /* its bytes, its room */
    int oom;                   /* growing buf failed: the key cannot be finished */
    /* --dry-run (reason.c, dryrun.c): no_write keeps the file-identity index as it is
     * (nothing is noted); no_read hashes no file the index does not know: such a file
     * counts in `unread` (its first names in unread_names, "; "-separated) and hashes
     * as zeros, and the key or part being computed fails with "file metadata changed" */
    int no_read, no_write;
    long unread;               /* files not read since the last reset (the caller's) */
    char unread_names[512];    /* the first of them */
} ck_ctx;

void ck_free(ck_ctx *cx);

/* The key of task `task` on args (its parameter types). 0, or -1 with err (an
 * unreadable input file). */
int ck_instance_key(ck_ctx *cx, uint32_t task, const fl_val *args, fl_digest *out, char *err,
                    size_t errlen);
/* The parts of that key `flowrun why` and --dry-run compare: the first 8 bytes of
 * the task's identity hash at *ident, and one 64-bit hash (hash.h's fl_hash_bytes)
 * per argument, over the bytes the key encodes for it, at inputs[0..nparams). They
 * never decide a hit (the key does). 0, or -1 with err. */
int ck_key_parts(ck_ctx *cx, uint32_t task, const fl_val *args, uint64_t *ident,
                 uint64_t *inputs, char *err, size_t errlen);
/* The first 8 bytes of task's identity hash (ck_key_parts' *ident): 0, or -1 with err. */
int ck_ident8(ck_ctx *cx, uint32_t task, uint64_t *ident, char *err, size_t errlen);
/* The part of one argument of type `type` (one of ck_key_parts' inputs): 0, or -1
 * with err (with no_read, cx->unread > 0 says a file was not read). */
int ck_arg_part(ck_ctx *cx, uint32_t type, fl_val v, uint64_t *out, char *err, size_t errlen);
/* The part ck_arg_part gives a `path` argument naming `path` whose file's content hash
 * is *h, without reading the file (`flowrun why` matches an entry's part against the
 * file-identity index's records with it). 0, or -1 out of memory. */
int ck_path_part(ck_ctx *cx, const char *path, const fl_digest *h, uint64_t *out);
/* Content hash of one file, through the index. */
int ck_file_hash(ck_ctx *cx, const char *path, fl_digest *out, char *err, size_t errlen);
/* Manifest hash of a directory, through the index for its files. */
int ck_dir_hash(ck_ctx *cx, const char *dir, fl_digest *out, char *err, size_t errlen);

#endif
