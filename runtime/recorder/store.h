/*
 * store.h — the content-addressed store: .flow/store/
 *
 *   objects/ab/cdef…   one file per distinct content, named by its SHA-256,
 *                      read-only (0444), never modified after it is renamed in
 *   named/<hash>/NAME  a stored file under the name it was produced with (a hard
 *                      link to its object), so downstream tasks see its name
 *   trees/<hash>/      a stored directory materialised as a read-only tree of
 *                      hard links to its objects (built on first use)
 *   tmp/               where objects are written before fsync + rename
 *   identity           each object's identity record (size, inode, mtime, ctime)
 *   quarantine/<hash>  objects found damaged, set aside (gc removes them)
 *
 * A directory is stored as its files' objects plus a manifest object: one line
 * per regular file, sorted by relative name: "<sha256-hex> <mode-octal> <name>\n".
 * The manifest's hash is the directory's content hash.
 *
 * Every object is written to tmp/, fsynced, made read-only and renamed into
 * place, so a crash at any moment leaves either no object or a whole one.
 * Before an object is served or handed to a task it is checked against its
 * identity record (one lstat); on any difference it is re-hashed, and a damaged
 * one is quarantined with every name linked to it and reported as missing,
 * never served (store_check, store_check_name, store_check_tree).
 *
 * Task output is taken in through descriptors (store_put_at, store_put_dir_fd):
 * nothing the task controls is resolved by path, links are never followed, and
 * only regular files and folders are stored.
 */
#ifndef FLOW_STORE_H
#define FLOW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctx.h"
#include "digest.h"

typedef struct fl_store fl_store;

/* Open (creating as needed) the store under state_dir/store. NULL + err on failure
 * (also "out of memory"). The store keeps ctx (which must outlive it) and takes its
 * memory from it; what it hands out (store_read) is fl_free'd on store_ctx(st). */
fl_store *store_open(fl_ctx *ctx, const char *state_dir, char *err, size_t errlen);
fl_ctx *store_ctx(const fl_store *st);
void store_close(fl_store *st);
const char *store_root(const fl_store *st);

/* snprintf for paths: 0, or -1 when the result does not fit (then treat it as an error). */
int store_pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* mkdir -p: path and every missing folder above it, with mode; 0, or -1 with errno. */
int store_mkdir_p(const char *path, mode_t mode);

/* Store bytes. 0 ok (object exists afterwards); -1 with err. */
int store_put_bytes(fl_store *st, const void *data, size_t len, fl_digest *out, char *err,
                    size_t errlen);
/* Store the file name in the folder open at dirfd (what names it in messages).
 * It must be a regular file (a symbolic link, FIFO, device or socket is refused,
 * and nothing is followed). With move, it is renamed into the store when it is
 * flowrun's own (or can be made so: root) with no other name, on the same file
 * system; otherwise its bytes are copied from the descriptor opened here; the
 * name is removed either way. Identical content is kept once. 0, or -1 with err. */
int store_put_at(fl_store *st, int dirfd, const char *name, const char *what, int move,
                 fl_digest *out, char *err, size_t errlen);
/* The same for a path the caller trusts (its folders are followed, its last name is not). */
int store_put_file(fl_store *st, const char *path, int move, fl_digest *out, char *err,
                   size_t errlen);
/* Store every regular file below the folder open at dirfd (recursively, through
 * walk.c, never following a link) and the manifest; *out is the manifest's hash.
 * Any entry that is not a regular file or folder fails it. With move, the files
 * are moved in and the folders below dirfd removed (dirfd's own folder stays). */
int store_put_dir_fd(fl_store *st, int dirfd, const char *what, int move, fl_digest *out,
                     char *err, size_t errlen);
/* The same for a path the caller trusts; with move, dir itself is removed too. */
int store_put_dir(fl_store *st, const char *dir, int move, fl_digest *out, char *err,
                  size_t errlen);

/* Path of an object (whether or not it exists). */
void store_object_path(const fl_store *st, const fl_digest *h, char *buf, size_t len);
/* Is object h there and intact? Its identity record decides (one lstat); without
 * a record, or on any difference, it is re-hashed: a match is recorded, a damaged
 * object is quarantined with its names. 0 intact; -1 missing or quarantined. */
int store_check(fl_store *st, const fl_digest *h);
int store_has(fl_store *st, const fl_digest *h); /* store_check(st, h) == 0 */
/* Is path (named/<h>/NAME, a name of object h) intact and that object? One lstat
 * in the common case; a stale name of an intact object is linked afresh. 0 / -1. */
int store_check_name(fl_store *st, const fl_digest *h, const char *path);
/* The same for a stored tree at path (trees/<manifest>): every file is checked; a
 * tree with a stale file is rebuilt; -1 when an object is damaged (quarantined). */
int store_check_tree(fl_store *st, const fl_digest *manifest, const char *path);
/* Re-hash an object, whatever its record says. 0 when intact; -1 when missing or
 * damaged (a damaged one is quarantined). */
int store_verify(fl_store *st, const fl_digest *h);
/* Read a whole object (from the store's context: fl_free(store_ctx(st), *data)),
 * verifying its hash. -1 when missing, damaged, or out of memory. */
int store_read(fl_store *st, const fl_digest *h, uint8_t **data, size_t *len);
/* A read-only directory tree for a stored manifest; path written to buf. -1 with err. */
int store_tree(fl_store *st, const fl_digest *manifest, char *buf, size_t len, char *err,
               size_t errlen);

/* A read-only path with the given base name whose content is object h:
 * <store>/named/<hash>/<name>, a hard link to the object (made on first use).
 * Outputs keep their file names this way (downstream tasks may look at them). */
int store_named(fl_store *st, const fl_digest *h, const char *name, char *buf, size_t len,
                char *err, size_t errlen);

/* A path of some store's shape — ...store/named/<64 hex>/NAME or ...store/trees/<64
 * hex>[/...] — gives its part after "store/" (the same in every state directory the
 * store could be moved to); any other path gives NULL. */
const char *store_path_tail(const char *path);

/* Remove every object (and tree, name, record) whose hash is not in keep[0..nkeep)
 * (sorted or not), leftovers in tmp/ older than an hour, and quarantined objects.
 * A kept directory manifest (one with a tree in trees/) keeps the files it lists.
 * Returns the number of objects removed, -1 on error. */
long store_gc(fl_store *st, const fl_digest *keep, size_t nkeep, uint64_t *bytes_freed);
typedef struct store_gc_opts {
    int dry;                                                      /* remove nothing */
    void (*each)(const fl_digest *h, uint64_t bytes, void *ctx); /* each object that goes */
    void *ctx;                                                    /* for each */
} store_gc_opts;
/* store_gc, with a report of each object that goes, and a dry run (o may be NULL). */
long store_collect(fl_store *st, const fl_digest *keep, size_t nkeep, const store_gc_opts *o,
                   uint64_t *bytes_freed);
/* Every object file in objects/ (walked with walk.c, links not followed, nothing
 * changed on the way): fn(h, dirfd, name) with the object's hash and its place (the
 * file name in the folder open at dirfd; fn may remove it). fn returns 0 to go on,
 * -1 to stop. 0, or -1 (stopped, or a folder unreadable). */
int store_objects_each(fl_store *st, int (*fn)(const fl_digest *h, int dirfd,
                                                 const char *name, void *ctx),
                       void *ctx);

/* The objects that text or an encoded value refers to through store paths
 * (.../named/<hash>/NAME, .../trees/<hash>): fn once per occurrence. A string that
 * merely looks like a store path counts too, which can only keep more. */
void store_refs_scan(const void *data, size_t len, void (*fn)(const fl_digest *h, void *ctx),
                     void *ctx);

/* Hold the store's lock (flock on store/lock): shared by runs, exclusive by gc, so
 * gc never collects what a live run has stored but not recorded yet. With wait 0
 * it returns 1 at once when another holds it in a conflicting way. 0 held, -1
 * error (errno). Released by store_close (and when the process ends). */
int store_lock(fl_store *st, int exclusive, int wait);

#endif /* FLOW_STORE_H */
