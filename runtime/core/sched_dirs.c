/*
 * sched_dirs.c — instance folders: where a task that may write files writes them.
 *
 * DESIGN
 *   A task that may write files (not a plain C task, or one with retries, or one
 *   returning paths or folders) gets a folder of its own below the run's work
 *   folder (sched_opts.work_dir): "<task>-<index>-<record>" with out/ and
 *   scratch/ in it. The work folder is opened once, at the first instance folder,
 *   and everything below it is made and removed through descriptors (fsdir.h,
 *   walk.c), so a link planted there is refused, never followed.
 *
 *   When an instance ends its scratch/ goes at once; out/ and the folder go when
 *   empty (the history moved the outputs into the store), a batch at a time
 *   rather than one by one between the store's fsyncs. At the end of the run the
 *   last batch goes, and the run's work folder when nothing is left in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include "fsdir.h"
#include "sched_int.h"
#include "walk.h"

/* Remove the queued instance folders that are empty now (out/ first), through
 * descriptors (fsdir.h, walk.c): a link a task left there is removed, never followed. */
#define SCHED_GONE_BATCH 1024
static void gone_flush(sched *S) {
    for (size_t i = 0; i < S->ngone; i++) {
        const char *rel = S->gone[i].dir + strlen(S->o->work_dir) + 1;
        int fd = S->work_fd >= 0 ? fsdir_sub(S->work_fd, rel, 0) : -1;
        if (fd >= 0) {
            if (S->gone[i].clean) walk_remove(fd, "out");
            else unlinkat(fd, "out", AT_REMOVEDIR);
            close(fd);
            unlinkat(S->work_fd, rel, AT_REMOVEDIR); /* only when empty */
        }
        sc_free(S, S->gone[i].dir);
    }
    S->ngone = 0;
}

static int type_has_files(const fl_plan *p, uint32_t t, int depth) {
    const plan_type *T = &p->types[t];
    if (depth > 32) return 0;
    switch (T->kind) {
        case PT_PATH:
        case PT_DIR:
            return 1;
        case PT_LIST:
            return type_has_files(p, T->elem, depth + 1);
        case PT_RECORD:
            for (uint32_t i = 0; i < T->n; i++)
                if (type_has_files(p, p->fields[T->first + i].type, depth + 1)) return 1;
            return 0;
        default:
            return 0;
    }
}

/* Tasks that may write files get an instance folder: out/ and scratch/. */
int task_needs_dir(const fl_plan *p, uint32_t t) {
    const plan_task *T = &p->tasks[t];
    return T->kind != TK_C || T->retries > 0 || type_has_files(p, T->ret, 0);
}

/* r->dir = "<folder>\0<folder>/out\0<folder>/scratch\0", the three made on disk below
 * the work folder through descriptors (fsdir.h), so a link planted there is refused.
 * 0, or -1 with a one-line reason in err. */
int make_inst_dir(sched *S, inst *r, uint64_t id, char *err, size_t errlen) {
    if (!S->work_made) {
        S->work_fd = fsdir_open(S->o->work_dir, S->o->work_root_len, 1);
        S->work_made = 1;
        if (S->work_fd < 0) S->work_errno = errno;
    }
    char name[256];
    snprintf(name, sizeof name, "%s-%" PRId64 "-%" PRIu64,
             plan_str(S->p, S->p->tasks[r->task].name), r->k, id);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", S->o->work_dir, name);
    size_t n = strlen(dir);
    char *b = sc_reallocarray(S, NULL, 3 * n + 16, 1); /* before anything is made on disk */
    if (!b) {
        snprintf(err, errlen, "out of memory"); /* the run ends with code 2 (sched_oom) */
        return -1;
    }
    int fd = -1, e = S->work_errno;
    if (S->work_fd >= 0) {
        fd = fsdir_sub(S->work_fd, name, 1);
        int o = fd < 0 ? -1 : fsdir_sub(fd, "out", 1);
        int sc = o < 0 ? -1 : fsdir_sub(fd, "scratch", 1);
        e = errno;
        if (o >= 0) close(o);
        if (sc >= 0) close(sc);
        if (fd >= 0) close(fd);
        if (sc < 0) fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot make its work folder %s/%s: %s", S->o->work_dir, name,
                 strerror(e));
        sc_free(S, b);
        return -1;
    }
    memcpy(b, dir, n + 1);
    char *o = b + n + 1;
    snprintf(o, n + 5, "%s/out", dir);
    char *sc = o + n + 5;
    snprintf(sc, n + 9, "%s/scratch", dir);
    r->dir = b;
    return 0;
}

/* Instance r ended: its scratch space goes now, out/ and the folder later (see
 * above). clean: the instance succeeded and the history stored its outputs, so
 * what is left in its out/ was never returned (a combine's intermediate file). */
void inst_dir_release(sched *S, inst *r, int clean) {
    int fd = S->work_fd >= 0 ? fsdir_sub(S->work_fd, r->dir + strlen(S->o->work_dir) + 1, 0) : -1;
    if (fd >= 0) {
        walk_remove(fd, "scratch");
        close(fd);
    }
    if (S->ngone == S->capgone) {
        size_t cap = S->capgone ? S->capgone * 2 : 64;
        struct gone *g = sc_reallocarray(S, S->gone, cap, sizeof *S->gone);
        if (g) {
            S->gone = g;
            S->capgone = cap;
        } else {
            gone_flush(S); /* the run ends (sched_oom); room again, if there was any */
        }
    }
    if (S->ngone < S->capgone) {
        S->gone[S->ngone].dir = r->dir;
        S->gone[S->ngone++].clean = clean;
        if (S->ngone >= SCHED_GONE_BATCH) gone_flush(S);
    } else { /* no room at all: this folder goes now */
        struct gone one = {r->dir, clean}, *keep = S->gone;
        S->gone = &one;
        S->ngone = 1;
        gone_flush(S);
        S->gone = keep;
    }
    r->dir = NULL;
}

/* The run ended: the last folders, then the run's work folder when it is empty. */
void inst_dirs_end(sched *S) {
    gone_flush(S);
    sc_free(S, S->gone);
    S->gone = NULL;
    if (S->work_made) rmdir(S->o->work_dir);
    if (S->work_made && S->work_fd >= 0) close(S->work_fd);
}
