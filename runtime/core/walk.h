/*
 * walk.h — the one directory-tree walker of the runtime.
 *
 * Every tree flowrun walks (a task's output folder being stored, the store's
 * own trees and objects for gc and fsck, scratch folders being removed, input
 * trees for files() and for dir cache keys, the state folder's crash markers)
 * is walked here, through directory descriptors: each folder
 * is opened with openat() relative to its parent's descriptor and each entry
 * examined with fstatat() relative to it, so no path is resolved twice and a
 * folder swapped for a symbolic link while we walk cannot send us elsewhere.
 * Path-based walkers (nftw, fts, opendir of a built path) re-resolve every
 * component on every call, which is exactly the race a hostile task exploits.
 *
 * Two policies:
 *   default      symbolic links are never followed: a link is reported as
 *                WALK_LINK (the caller refuses it, or removes the link itself);
 *                a folder is opened with O_NOFOLLOW and checked to be the one
 *                fstatat saw. For trees a task controls.
 *   WALK_FOLLOW  links are followed (to files and to folders), a dangling link
 *                is skipped, and a link back to a folder being walked is an
 *                error. For the user's own input trees (files(), dir keys).
 *
 * Ownership: the walker owns every descriptor it opens and closes them before
 * it returns; an entry's dirfd, name, rel and st are borrowed for the callback.
 */
#ifndef FLOW_WALK_H
#define FLOW_WALK_H

#include <stddef.h>
#include <sys/stat.h>

/* The one depth rule of every tree walk in flowrun: a folder WALK_DEPTH_MAX levels
 * below the root is walked, one deeper is an error ("folders nested deeper than
 * 64"), whatever the tree (outputs being stored, input trees, the store's own
 * folders and the state folder for gc, fsck and crash markers, removal). At most
 * this many descriptors are open at once. Callers that want less depth return
 * WALK_SKIP (the store's objects/ab/ walk stops at depth 1); none goes deeper. */
#define WALK_DEPTH_MAX 64

enum {
    WALK_FOLLOW = 1, /* follow symbolic links (user input trees only) */
    WALK_STAT = 2,   /* always fill st (else only when the type needed it) */
    WALK_POST = 4,   /* visit each folder again after its entries (removal) */
};

enum { WALK_REG, WALK_DIR, WALK_LINK, WALK_OTHER }; /* walk_ent.type */

#define WALK_SKIP 1 /* a callback's answer: do not descend into this folder */

typedef struct walk_ent {
    int dirfd;             /* the folder holding the entry (the walker's descriptor) */
    const char *name;      /* its name in dirfd */
    const char *rel;       /* its path below the root: "a/b.txt" */
    int type;              /* WALK_REG, WALK_DIR, WALK_LINK (never with WALK_FOLLOW), WALK_OTHER */
    int post;              /* WALK_POST: 1 on a folder's second visit, after its entries */
    int depth;             /* 0 for the root's entries */
    const struct stat *st; /* its status (of the target when following), or NULL */
} walk_ent;

/* 0 go on, WALK_SKIP (folders, first visit) do not descend, -1 stop with err set. */
typedef int (*walk_fn)(void *ctx, const walk_ent *e, char *err, size_t errlen);

/* Walk the folder open at rootfd (not closed; its own entry is not visited).
 * what names the root in messages. 0, or -1 with err (the callback's, or the
 * walker's: a folder that cannot be opened, nested too deep, a link loop). */
int walk_tree(int rootfd, const char *what, int flags, walk_fn fn, void *ctx, char *err,
              size_t errlen);

/* Open a folder for walking: O_DIRECTORY, and O_NOFOLLOW unless follow. -1 with errno. */
int walk_open(int dirfd, const char *path, int follow);

/* Remove name (in dirfd) and, when it is a folder, everything below it, never
 * following a link (a link is removed, not its target); folders are made
 * writable first so read-only trees go too. Best effort: 0 when it is gone. */
int walk_remove(int dirfd, const char *name);

/* walk_remove for a path: its folder is resolved (the caller's own), its last
 * name is not followed. */
int walk_remove_path(const char *path);

#endif /* FLOW_WALK_H */
