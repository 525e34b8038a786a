/*
 * history.c — history, cache, stored outputs and logs of a run (see history.h).
 *
 * DESIGN. Everything here runs in the scheduler's thread, between the executor
 * and the scheduler's bookkeeping. An instance's row is encoded once into the
 * batch being filled (state_inst_put: a plain finished instance of a mapped task as
 * its packed record, in its final form) and the batches go to state.c's writer
 * thread (queue_batch, recorder.h), which appends the records to packed rows and
 * commits them: a million instances cost a few hundred row inserts and commits.
 * The commonest instance — mapped, an int result, nothing to keep but its times
 * and perhaps its cache entry — takes a shorter path (hist_finished's first lines,
 * plain_put, state_inst_plain): its record's bytes straight from the instance, with
 * none of the checks for files, logs, labels and large values.
 *
 * Served instances. On resume the run's finished instances are loaded once
 * into a hash table keyed by (node, index path); each is served from its
 * recorded result without running. Otherwise, for a task with caching on, the
 * instance's key (cachekey.c) is looked up in the cache. A cached result that
 * refers to stored files is served only after those files are re-hashed and
 * found intact; a damaged one drops the entry and the instance runs again.
 *
 * Outputs. A path or dir in a result that lies inside the instance's output
 * directory moves into the store (store.c) and the value is rewritten to a
 * read-only store path that keeps the file's name. Identical outputs are
 * stored once, so a re-run producing the same bytes gives the same path and
 * every downstream key stays the same (early cutoff). Taking an output in
 * resolves nothing the task controls (take_in, store.c): a returned path that
 * is a symbolic link, a FIFO or device, or that leaves the folder through
 * "..", fails the instance instead.
 *
 * Handing out. Before an instance runs, every stored file among its arguments
 * is checked against its identity record (one lstat each, store_check_name):
 * a file changed since it was stored is re-hashed, and when damaged it is
 * quarantined and the instance fails rather than read it.
 *
 * Task CPU. Each instance that ran adds its wall time to its task's figures, and
 * its CPU time where the executor knew it (rt_result.cpu_known: an sh command's,
 * or a sampled inline run's share); hist_close writes them (state_task_cpu_add),
 * one row per task, so the report can show CPU per task where no peak RSS of the
 * task's own is measured. Lost with a flowrun killed mid-run (a resume adds its own).
 */
#define _GNU_SOURCE
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachekey.h"
#include "events.h"
#include "fsdir.h"
#include "hash.h"
#include "htab.h"
#include "podman.h"
#include "rtcore.h"
#include "walk.h"

#define HIST_PATH_MAX 4096
enum { WORD_NO_CACHE = 1, WORD_CACHE }; /* hist.word_ret */

typedef struct done_entry {
    uint32_t node;   /* plan node */
    char *idx;       /* index path */
    char *tmpl;      /* name template (two call sites of one group share node and idx) */
    uint8_t *result; /* encoded result */
    size_t len;
    int cleared;     /* `flowrun clear` marked it: run it again, bypassing the cache */
    int has_key;     /* the record kept the instance's cache key */
    fl_digest key;
} done_entry;

/* A task's cache entries, read into memory in one sequential pass once the task
 * is seen being served from the cache (see preload). */
typedef struct task_cache {
    long looked, hits;  /* lookups through SQLite in this run, and hits among them */
    int state;          /* TC_SQL, TC_MEMORY, TC_NEVER */
    int64_t count;      /* the task's entries in the cache, -1 not yet counted */
    fl_htab tab;        /* a key's first 8 bytes -> its entry's offset in arena (htab.h),
                         * built at the first lookup the entry after the last hit misses */
    int full;           /* preload: more entries than counted (it then gives up) */
    int indexed;        /* tab is built */
    int64_t n;          /* entries in arena */
    size_t cur[4];      /* cursors: the entries after the last hits of the streams the
                         * lookups follow, most recent first (tc_find) */
    int took;           /* the cursor tc_find answered from, or -1 */
    int far;            /* far read-aheads made (tc_find: at most TC_FAR_TRIES) */
    fv_buf arena;       /* entries in the order produced: 32-byte key, u32 length, result */
} task_cache;
#define TC_SCAN (64u << 10) /* bytes of the arena a missed lookup reads ahead (tc_find) */
#define TC_FAR (1u << 20)   /* and then, while no hash table is built, up to this far */
#define TC_FAR_TRIES 64     /* that many times in all, before the table is built */
enum { TC_SQL, TC_MEMORY, TC_NEVER };
#define HIST_PRELOAD_MIN 256        /* instances left in the mapping before a preload pays: a
                                     * range scan costs about a third of a B-tree search a row */
#define HIST_PRELOAD_MAX 8000000    /* most entries preloaded for one task */
/* Large values (issue 18's decision). An encoded result of HIST_BIG_VALUE bytes or
 * more is a store object (store_put_bytes), and the history and the cache hold a
 * reference to it instead: BIG_MARK then "/named/<64 hex>" — a store path's shape,
 * so gc and fsck, which scan encoded results for store paths (store_refs_scan), keep
 * and check the object as they do a file's; the cache entry lists it too. SQLite
 * caps a value at 1e9 bytes and state.c binds lengths as int: without this a result
 * that large failed the run at its end. A result whose encoding happens to begin
 * with the mark goes to the store whatever its size, so every value that begins
 * with it is a reference. */
#define HIST_BIG_VALUE (4u << 20)
static const char BIG_MARK[] = "\xfe\xf1" "flow-value:/named/";
#define BIG_MARK_LEN (sizeof BIG_MARK - 1)
#define BIG_REF_LEN (BIG_MARK_LEN + 64)

typedef struct objvec {
    fl_digest *v;
    size_t n, cap;
} objvec;

struct hist {
    fl_ctx *ctx;              /* allocation and log lines (hist_opts.ctx, or the plan's) */
    const fl_plan *p;       /* the plan */
    fl_state *st;           /* state.db */
    fl_store *store;        /* store/ */
    ck_ctx ck;                /* cache-key context */
    fl_digest *lib_hash;      /* per plan library, as loaded */
    char **image_id;          /* per task with image:, its image's id (podman), else NULL */
    int64_t run;              /* this run's id */
    int no_cache;             /* --no-cache */
    int dry;                  /* --dry-run: nothing written (hist_opts.dry_run) */
    char dir[HIST_PATH_MAX];  /* the state directory */
    size_t store_root_len;    /* strlen(store_root(store)) */
    done_entry *done;         /* resume: finished instances, 0 of them when not resuming */
    size_t ndone, done_cap;   /* entries in done, and room */
    fl_htab done_tab;         /* key_hash(node, idx) -> index in done (htab.h) */
    objvec objs;              /* objects referred to by the result being recorded */
    const fv_obj *big_served; /* the value last served from a large value's object ... */
    fl_digest big_digest;     /* ... and that object: hist_finished records the same
                               * reference instead of encoding and hashing it again */
    fv_buf enc;               /* encoding buffer, reused */
    uint64_t *inputs;         /* a cache entry's input hashes (ck_key_parts), reused */
    uint32_t inputs_cap;
    hist_stats stats;         /* counts for the summary */
    task_cache *tc;           /* per plan task */
    int cache_empty;          /* the cache held nothing when the run began */
    uint8_t *file_args;       /* per plan task: 1 when a parameter's type holds files */
    int logs_fd;              /* logs/<run>, opened at the first log (fsdir.h); -1 before */
    int oom;                  /* resume: the finished instances could not all be loaded */
    ev_sink *ev;              /* --events: the run events file (events.h), or NULL */
    state_task_cpu *cpu;      /* per plan task: CPU and wall time of what ran (Task CPU) */
    state_plain plain;        /* the hot path's record (state_inst_plain) and its name */
    uint8_t *word_ret;        /* per plan task, for hist_finished's hot path: when its
                               * result is an int or a duration (an 8-byte encoding) and
                               * there are no --events, WORD_NO_CACHE or WORD_CACHE (its
                               * results enter the cache); else 0 */
};

static int tmpl_eq(const char *a, const char *b) {
    return a && b ? !strcmp(a, b) : a == b;
}

static uint64_t key_hash(uint32_t node, const char *idx) {
    return fl_hash_str_from(FL_HASH_BASIS ^ node, idx);
}

/* The finished instance (node, idx, tmpl) whose key_hash is k, or NULL. */
static done_entry *done_find(const hist *h, uint64_t k, uint32_t node, const char *idx,
                             const char *tmpl) {
    for (fl_htab_slot *s = fl_htab_find(&h->done_tab, k); s && s->hash;
         s = fl_htab_next(&h->done_tab, s, k)) {
        done_entry *e = &h->done[s->val];
        if (e->node == node && !strcmp(e->idx, idx) && tmpl_eq(e->tmpl, tmpl)) return e;
    }
    return NULL;
}

static int load_done(const state_inst *r, void *ctx) {
    hist *h = ctx;
    int cleared = !strcmp(r->state, "cleared");
    if (strcmp(r->state, "succeeded") && strcmp(r->state, "cached") && !cleared) return 0;
    /* out of memory: resume is refused (hist_open) */
    if (h->ndone == h->done_cap) {
        size_t cap = h->done_cap ? h->done_cap * 2 : 256;
        done_entry *v = fl_reallocarray(h->ctx, h->done, cap, sizeof *v);
        if (!v) return h->oom = 1;
        h->done = v;
        h->done_cap = cap;
    }
    if (fl_htab_reserve(h->ctx, &h->done_tab, 1)) return h->oom = 1;
    char *idx = fl_strdup(h->ctx, r->idx);
    char *tmpl = r->tmpl ? fl_strdup(h->ctx, r->tmpl) : NULL;
    uint8_t *result = fl_malloc(h->ctx, r->result_len);
    if (!idx || (r->tmpl && !tmpl) || !result) {
        fl_free(h->ctx, idx);
        fl_free(h->ctx, tmpl);
        fl_free(h->ctx, result);
        return h->oom = 1;
    }
    uint64_t k = key_hash(r->node, r->idx);
    done_entry *e = done_find(h, k, r->node, r->idx, r->tmpl);
    if (e) { /* a later record of the same instance replaces it */
        fl_free(h->ctx, e->idx);
        fl_free(h->ctx, e->tmpl);
        fl_free(h->ctx, e->result);
    } else {
        fl_htab_add(&h->done_tab, k, h->ndone);
        e = &h->done[h->ndone++];
    }
    e->idx = idx;
    e->tmpl = tmpl;
    e->result = result;
    e->cleared = cleared;
    e->has_key = r->cache_key != NULL;
    if (r->cache_key) e->key = *r->cache_key;
    e->node = r->node;
    e->len = r->result_len;
    if (r->result_len) memcpy(e->result, r->result, r->result_len);
    return 0;
}

static int type_has_files(const fl_plan *p, uint32_t t, int depth);

/* The id of every image: a task names, resolved once per image per run (one `podman
 * image inspect` each): part of those tasks' cache keys. An image podman cannot
 * find leaves NULL (the key then holds its name; running the task will say why).
 * -1 when out of memory. */
static int image_ids(hist *h) {
    const fl_plan *p = h->p;
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        if (p->tasks[t].image == PLAN_NONE) continue;
        if (!h->image_id && !(h->image_id = fl_calloc(h->ctx, p->n_tasks, sizeof *h->image_id)))
            return -1;
        const char *img = plan_str(p, p->tasks[t].image);
        uint32_t same = 0;
        while (same < t && (p->tasks[same].image == PLAN_NONE ||
                            strcmp(plan_str(p, p->tasks[same].image), img)))
            same++;
        char id[160], why[300];
        if (same < t) {
            if (!h->image_id[same]) continue;
            snprintf(id, sizeof id, "%s", h->image_id[same]);
        } else if (rt_podman_image_id(img, id, sizeof id, why, sizeof why)) {
            continue;
        }
        if (!(h->image_id[t] = fl_strdup(h->ctx, id))) return -1;
    }
    return 0;
}

hist *hist_open(const hist_opts *o, char *err, size_t errlen) {
    fl_ctx *ctx = o->ctx ? o->ctx : o->plan->ctx;
    hist *h = fl_calloc(ctx, 1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->ctx = ctx;
    h->p = o->plan;
    h->plain.name = -1; /* (state_inst_plain: no name asked yet) */
    h->no_cache = o->no_cache;
    h->dry = o->dry_run != 0;
    h->logs_fd = -1;
    snprintf(h->dir, sizeof h->dir, "%s", o->state_dir ? o->state_dir : ".flow");
    if (!(h->st = state_open(ctx, h->dir, err, errlen)) ||
        !(h->store = store_open(ctx, h->dir, err, errlen))) {
        hist_close(h, NULL, 0, NULL, NULL);
        return NULL;
    }
    /* the cache this run may be served and writes into: its environment's (state.c,
     * "environments"); a resume is given the run's own environment */
    if (state_env_use(h->st, o->env, !h->dry)) {
        snprintf(err, errlen, "cannot record environment '%s' in %s/state.db",
                 o->env ? o->env : "prod", h->dir);
        hist_close(h, NULL, 0, NULL, NULL);
        return NULL;
    }
    h->store_root_len = strlen(store_root(h->store));
    /* held shared for the whole run: gc (exclusive) cannot collect an object this
     * run has stored but not recorded yet */
    if (!h->dry && store_lock(h->store, 0, 0) == 1) {
        fl_log(ctx, FL_LOG_WARN, "waiting for a flowrun gc to finish with %s", h->dir);
        store_lock(h->store, 0, 1);
    }
    /* instances, cache entries and file identities are written by a writer thread;
     * an empty cache needs no lookups at all */
    if (!h->dry) state_async(h->st);
    h->cache_empty = !state_cache_any(h->st);
    /* the libraries as loaded: their content is part of every C task's identity */
    h->lib_hash = fl_calloc(ctx, h->p->n_libs ? h->p->n_libs : 1, sizeof *h->lib_hash);
    h->tc = fl_calloc(ctx, h->p->n_tasks ? h->p->n_tasks : 1, sizeof *h->tc);
    h->file_args = fl_calloc(ctx, h->p->n_tasks ? h->p->n_tasks : 1, 1);
    h->word_ret = fl_calloc(ctx, h->p->n_tasks ? h->p->n_tasks : 1, 1);
    if (!h->lib_hash || !h->tc || !h->file_args || !h->word_ret) {
        snprintf(err, errlen, "out of memory");
        hist_close(h, NULL, 0, NULL, NULL);
        return NULL;
    }
    for (uint32_t i = 0; i < h->p->n_libs; i++) {
        memcpy(h->lib_hash[i].b, h->p->libs[i].sha256, 32);
        char e2[256];
        if (o->rt && o->rt->libs[i].path) hash_file(ctx, o->rt->libs[i].path, &h->lib_hash[i], e2, sizeof e2);
    }
    if (image_ids(h)) {
        snprintf(err, errlen, "out of memory");
        hist_close(h, NULL, 0, NULL, NULL);
        return NULL;
    }
    h->ck = (ck_ctx){.plan = h->p, .state = h->st, .lib_hash = h->lib_hash,
                     .image_id = h->image_id, .no_read = o->dry_run == 1, .no_write = h->dry};
    for (uint32_t t = 0; t < h->p->n_tasks; t++)
        for (uint32_t i = 0; i < h->p->tasks[t].nparams; i++)
            if (type_has_files(h->p, h->p->params[h->p->tasks[t].first_param + i].type, 0))
                h->file_args[t] = 1;
    for (uint32_t t = 0; t < h->p->n_tasks; t++) h->tc[t].count = -1;
    if (h->dry) return h; /* no run: nothing is recorded */
    if (o->resume_run > 0) {
        /* claim the run first: a run whose flowrun is still alive is refused */
        int busy = 0, rc = state_run_reopen(h->st, o->resume_run, &busy);
        if (rc) {
            if (rc == STATE_RUN_BUSY)
                snprintf(err, errlen, "run %lld is still running (pid %d)",
                         (long long)o->resume_run, busy);
            else
                snprintf(err, errlen, "cannot record the run in %s/state.db", h->dir);
            hist_close(h, NULL, 0, NULL, NULL);
            return NULL;
        }
        h->run = o->resume_run;
        if (state_insts_each(h->st, h->run, load_done, h) || h->oom) {
            snprintf(err, errlen, "out of memory");
            hist_close(h, NULL, 0, NULL, NULL);
            return NULL;
        }
    } else {
        state_run r = {0};
        r.flow = o->flow;
        r.env = o->env;
        r.params_json = o->params_json;
        r.params_blob = o->params_blob;
        r.params_blob_len = o->params_blob_len;
        r.options = o->options;
        r.plan_path = o->plan_path;
        r.logical = o->logical;
        char e2[256];
        if (o->plan_path) hash_file(ctx, o->plan_path, &r.plan_hash, e2, sizeof e2);
        if (state_run_begin(h->st, &r)) {
            snprintf(err, errlen, "cannot record the run in %s/state.db", h->dir);
            hist_close(h, NULL, 0, NULL, NULL);
            return NULL;
        }
        h->run = r.id;
    }
    if (o->events) {
        state_run r;
        if (state_run_get(h->st, h->run, &r)) {
            snprintf(err, errlen, "cannot read run %lld back from %s/state.db", (long long)h->run,
                     h->dir);
            hist_close(h, "failed", 2, NULL, err);
            return NULL;
        }
        h->ev = ev_open(ctx, o->events, h->dir, r.flow, r.env, h->run, r.started,
                        o->resume_run > 0, err, errlen);
        state_run_free(&r);
        if (!h->ev) {
            char why[600];
            snprintf(why, sizeof why, "%s", err);
            hist_close(h, "failed", 2, NULL, why);
            return NULL;
        }
    }
    for (uint32_t t = 0; t < h->p->n_tasks && !h->ev; t++) { /* hist_finished's hot path */
        uint32_t k = h->p->types[h->p->tasks[t].ret].kind;
        if (k == PT_INT || k == PT_DURATION)
            h->word_ret[t] = h->no_cache || !h->p->tasks[t].cache ? WORD_NO_CACHE : WORD_CACHE;
    }
    return h;
}

int64_t hist_run_id(const hist *h) {
    return h ? h->run : 0;
}

fl_state *hist_state(hist *h) {
    return h->st;
}

ck_ctx *hist_ck(hist *h) {
    return &h->ck;
}

const char *hist_state_dir(const hist *h) {
    return h ? h->dir : NULL;
}

void hist_get_stats(const hist *h, hist_stats *s) {
    memset(s, 0, sizeof *s);
    if (!h) return;
    *s = h->stats;
    s->files_hashed = h->ck.files_hashed;
    s->files_known = h->ck.files_known;
    for (uint32_t t = 0; h->tc && t < h->p->n_tasks; t++) s->tc_tables += h->tc[t].indexed;
    long packs;
    state_cache_lookup_stats(h->st, &s->cache_gets, &packs, &s->cache_packs_most);
}

/* ---- values that refer to stored files ---- */
static int type_has_files(const fl_plan *p, uint32_t t, int depth) {
    const plan_type *T = &p->types[t];
    if (depth > 32) return 0;
    if (T->kind == PT_PATH || T->kind == PT_DIR) return 1;
    if (T->kind == PT_LIST) return type_has_files(p, T->elem, depth + 1);
    if (T->kind == PT_RECORD)
        for (uint32_t i = 0; i < T->n; i++)
            if (type_has_files(p, p->fields[T->first + i].type, depth + 1)) return 1;
    return 0;
}

/* Add x to the objects the result refers to. -1 when out of memory: the caller fails
 * (an object left off the list could be collected by gc while still used). */
static int obj_push(hist *h, const fl_digest *x) {
    objvec *o = &h->objs;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        fl_digest *v = fl_reallocarray(h->ctx, o->v, cap, sizeof *v);
        if (!v) return -1;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = *x;
    return 0;
}

/* A recorded result (a history record's or a cache entry's) at *b, *len: the encoded
 * value itself, or a reference to a large value, which is read back from the store
 * (verified) into *big — fl_free(store_ctx(h->store), *big) — and *b, *len then give
 * it, *d its object. 0, or -1 when the object is missing or damaged: the instance runs
 * again. */
static int big_read(hist *h, const uint8_t **b, size_t *len, uint8_t **big, fl_digest *d) {
    *big = NULL;
    if (*len != BIG_REF_LEN || memcmp(*b, BIG_MARK, BIG_MARK_LEN)) return 0;
    char hex[65];
    memcpy(hex, *b + BIG_MARK_LEN, 64);
    hex[64] = '\0';
    if (hash_from_hex(hex, d) || store_read(h->store, d, big, len)) return -1;
    *b = *big;
    return 0;
}

/* A large value was read back and is served as v: remember it (see hist.big_served). */
static void big_served(hist *h, fl_val v, const uint8_t *big, const fl_digest *d) {
    if (!big) return;
    h->big_served = v.o; /* a value of megabytes is a list, record, str or bytes: an object */
    h->big_digest = *d;
}

/* The reference to object d, into ref. */
static void big_ref(const fl_digest *d, char ref[BIG_REF_LEN]) {
    char hex[65];
    hash_hex(d, hex);
    memcpy(ref, BIG_MARK, BIG_MARK_LEN);
    memcpy(ref + BIG_MARK_LEN, hex, 64);
}

/* The encoded result in h->enc as a store object, its reference into ref and the
 * object onto h->objs (the cache entry keeps it from gc). 0, or -1 with err. */
static int big_write(hist *h, char ref[BIG_REF_LEN], char *err, size_t errlen) {
    fl_digest d;
    if (store_put_bytes(h->store, h->enc.data, h->enc.len, &d, err, errlen)) return -1;
    if (obj_push(h, &d)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    big_ref(&d, ref);
    return 0;
}

/* The object behind a store path (named/<hash>/name or trees/<hash>), or -1. */
static int store_hash_of(hist *h, const char *path, fl_digest *out, int *is_tree) {
    const char *root = store_root(h->store);
    if (strncmp(path, root, h->store_root_len) || path[h->store_root_len] != '/') return -1;
    const char *rest = path + h->store_root_len + 1;
    if (!strncmp(rest, "named/", 6)) *is_tree = 0, rest += 6;
    else if (!strncmp(rest, "trees/", 6)) *is_tree = 1, rest += 6;
    else return -1;
    if (strlen(rest) < 64 || (rest[64] && rest[64] != '/')) return -1;
    /* a file or folder below a stored tree (files(d, ...) or std.glob over a dir
     * output) is a reference into it, not the tree: checking it as the tree would
     * "repair" it into the tree's place */
    if (*is_tree && rest[64]) return -1;
    return hash_from_hex(rest, out);
}

/* A stored path recorded under another name of the state directory (it was moved,
 * or given as another path) is re-rooted at this store. Stored paths are known by
 * their shape (store_path_tail). A freshly decoded value is ours alone, so it is
 * changed in place. */
static void reroot(hist *h, uint32_t type, fl_val *v, int depth) {
    const fl_plan *p = h->p;
    const plan_type *T = &p->types[type];
    if (depth > 32) return;
    if (T->kind == PT_PATH || T->kind == PT_DIR) {
        const char *s = fv_as_str(*v)->data, *tail = store_path_tail(s);
        if (!tail) return;
        const char *root = store_root(h->store);
        char fixed[HIST_PATH_MAX];
        if ((size_t)(tail - s) == h->store_root_len + 1 && !strncmp(s, root, h->store_root_len))
            return; /* already this store's */
        if (store_pathf(fixed, sizeof fixed, "%s/%s", root, tail)) return;
        fl_val n = fv_str_cstr(p, type, fixed);
        if (!n.o) return; /* out of memory: the recorded path stays, check_stored judges it */
        fv_decref(p, type, *v);
        *v = n;
        return;
    }
    if (T->kind == PT_LIST)
        for (int64_t i = 0; i < fv_as_list(*v)->len; i++)
            reroot(h, T->elem, &fv_as_list(*v)->items[i], depth + 1);
    if (T->kind == PT_RECORD)
        for (uint32_t i = 0; i < T->n; i++)
            reroot(h, p->fields[T->first + i].type, &fv_as_rec(*v)->fields[i], depth + 1);
}

/* Every stored file a value refers to is intact, and listed in h->objs. Each is
 * checked against its identity record (store.c: one lstat per file; a re-hash
 * only when something differs); a damaged one is quarantined and the check fails. */
static int check_stored(hist *h, uint32_t type, fl_val v, int depth) {
    const fl_plan *p = h->p;
    const plan_type *T = &p->types[type];
    if (depth > 32) return 0;
    if (T->kind == PT_PATH || T->kind == PT_DIR) {
        fl_digest x;
        int tree;
        const char *path = fv_as_str(v)->data;
        if (store_hash_of(h, path, &x, &tree)) return 0; /* a reference */
        if (obj_push(h, &x)) return -1;
        if (!tree) return store_check_name(h->store, &x, path);
        if (store_check_tree(h->store, &x, path)) return -1;
        uint8_t *m; /* every file of the directory, for gc */
        size_t n;
        if (store_read(h->store, &x, &m, &n)) return -1;
        for (char *l = (char *)m, *end = (char *)m + n; l + 64 <= end;) {
            fl_digest f;
            if (hash_from_hex(l, &f) == 0 && obj_push(h, &f)) {
                fl_free(store_ctx(h->store), m);
                return -1;
            }
            char *nl = memchr(l, '\n', (size_t)(end - l));
            l = nl ? nl + 1 : end;
        }
        fl_free(store_ctx(h->store), m);
        return 0;
    }
    if (T->kind == PT_LIST)
        for (int64_t i = 0; i < fv_as_list(v)->len; i++)
            if (check_stored(h, T->elem, fv_as_list(v)->items[i], depth + 1)) return -1;
    if (T->kind == PT_RECORD)
        for (uint32_t i = 0; i < T->n; i++)
            if (check_stored(h, p->fields[T->first + i].type, fv_as_rec(v)->fields[i], depth + 1))
                return -1;
    return 0;
}

/* Take one output into the store: s, a path below out_dir (olen bytes; s[olen] is
 * '/' or the end). Nothing is resolved by path on the task's side: the output
 * folder is opened once with O_NOFOLLOW, every component below it is opened
 * relative to its parent with O_NOFOLLOW, "." and ".." are refused, and store.c
 * stores only regular files and folders it opened itself. The stored path goes
 * to dst. 0, or -1 with err. */
static int take_in(hist *h, int is_dir, const char *s, const char *out_dir, size_t olen,
                   fl_digest *x, char *dst, size_t dlen, char *err, size_t errlen) {
    int fd = walk_open(AT_FDCWD, out_dir, 0);
    if (fd < 0) {
        snprintf(err, errlen, "the output folder %s %s", out_dir,
                 errno == ELOOP || errno == ENOTDIR ? "was replaced by a symbolic link or a file"
                                                    : strerror(errno));
        return -1;
    }
    const char *p = s + olen;
    char comp[256] = "";
    int rc = 0;
    for (;;) {
        while (*p == '/') p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!n) break;
        if (n >= sizeof comp) {
            snprintf(err, errlen, "output %s: a name in it is too long", s);
            rc = -1;
            break;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        p += n;
        if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
            snprintf(err, errlen, "output %s leaves (or goes around) the output folder %s", s,
                     out_dir);
            rc = -1;
            break;
        }
        while (*p == '/') p++;
        if (!*p) break; /* comp is the last name */
        int sub = walk_open(fd, comp, 0);
        if (sub < 0) {
            snprintf(err, errlen, "output %s: %s %s", s, comp,
                     errno == ELOOP ? "is a symbolic link" : strerror(errno));
            rc = -1;
            break;
        }
        close(fd);
        fd = sub;
    }
    if (rc == 0 && !comp[0] && !is_dir) {
        snprintf(err, errlen, "output %s is the output folder itself, not a file", s);
        rc = -1;
    }
    if (rc == 0 && !is_dir) {
        rc = store_put_at(h->store, fd, comp, s, 1, x, err, errlen);
        if (rc == 0) rc = store_named(h->store, x, comp, dst, dlen, err, errlen);
    } else if (rc == 0) {
        int dfd = comp[0] ? walk_open(fd, comp, 0) : fd;
        if (dfd < 0) {
            struct stat sb;
            snprintf(err, errlen, "output %s is %s", s,
                     fstatat(fd, comp, &sb, AT_SYMLINK_NOFOLLOW) ? strerror(errno)
                     : S_ISLNK(sb.st_mode) ? "a symbolic link; only regular files and folders are stored"
                                           : "not a folder");
            rc = -1;
        } else {
            rc = store_put_dir_fd(h->store, dfd, s, 1, x, err, errlen);
            if (dfd != fd) {
                close(dfd);
                if (rc == 0) unlinkat(fd, comp, AT_REMOVEDIR);
            }
            if (rc == 0) rc = store_tree(h->store, x, dst, dlen, err, errlen);
            /* an existing tree may hold names of objects since quarantined */
            if (rc == 0 && store_check_tree(h->store, x, dst)) {
                snprintf(err, errlen, "output %s: a stored file of it is damaged", s);
                rc = -1;
            }
        }
    }
    close(fd);
    return rc;
}

/* Move outputs inside out_dir into the store; returns the value to keep (a new
 * reference; v itself, increfed, when nothing changed). */
static fl_val ingest(hist *h, uint32_t type, fl_val v, const char *out_dir, int depth,
                       int *failed, char *err, size_t errlen) {
    const fl_plan *p = h->p;
    const plan_type *T = &p->types[type];
    size_t olen = strlen(out_dir);
    if (depth > 32 || *failed) {
        fv_incref(p, type, v);
        return v;
    }
    if (T->kind == PT_PATH || T->kind == PT_DIR) {
        const char *s = fv_as_str(v)->data;
        if (strncmp(s, out_dir, olen) || (s[olen] != '/' && s[olen] != 0)) {
            fv_incref(p, type, v); /* a reference: left where it is */
            return v;
        }
        fl_digest x;
        char dst[HIST_PATH_MAX];
        int rc = take_in(h, T->kind == PT_DIR, s, out_dir, olen, &x, dst, sizeof dst, err, errlen);
        if (rc) {
            *failed = 1;
            fv_incref(p, type, v);
            return v;
        }
        if (obj_push(h, &x)) {
            snprintf(err, errlen, "out of memory");
            *failed = 1;
            fv_incref(p, type, v);
            return v;
        }
        h->stats.stored_outputs++;
        fl_val n = fv_str_cstr(p, type, dst);
        if (n.o) return n;
        snprintf(err, errlen, "out of memory");
        *failed = 1;
        fv_incref(p, type, v);
        return v;
    }
    if (T->kind == PT_LIST && type_has_files(p, T->elem, 0)) {
        const fv_list *l = fv_as_list(v);
        fl_val n = fv_list_new(p, type, l->len);
        if (!n.o) {
            snprintf(err, errlen, "out of memory");
            *failed = 1;
            fv_incref(p, type, v);
            return v;
        }
        for (int64_t i = 0; i < l->len; i++)
            fv_as_list(n)->items[i] = ingest(h, T->elem, l->items[i], out_dir, depth + 1, failed,
                                             err, errlen);
        return n;
    }
    if (T->kind == PT_RECORD && type_has_files(p, type, 0)) {
        fl_val n = fv_rec_new(p, type);
        if (!n.o) {
            snprintf(err, errlen, "out of memory");
            *failed = 1;
            fv_incref(p, type, v);
            return v;
        }
        for (uint32_t i = 0; i < T->n; i++)
            fv_as_rec(n)->fields[i] = ingest(h, p->fields[T->first + i].type,
                                             fv_as_rec(v)->fields[i], out_dir, depth + 1, failed,
                                             err, errlen);
        return n;
    }
    fv_incref(p, type, v);
    return v;
}

/* ---- the cache of a task, in memory ----
 * A warm run of a wide mapping asks the cache once per element, and a million
 * lookups at random places cost more than the rest of the run. So once a task is
 * seen being served (90% of at least 64 lookups hit) with many elements still to
 * go, and its part of the cache is not much larger than what is left, that part is
 * read in one sequential pass (state_cache_each: the order the entries were
 * produced) into an arena, and the task's later lookups are answered from memory.
 * A re-run of a mapping asks in nearly the order the earlier run produced: in
 * order, but with runs of a few hundred entries swapped (the two threads of the
 * inline executor hand their results over a batch at a time). So a lookup first
 * compares the entry after the last hit, then after the hits before it where the
 * order jumped (c->cur: a few cursors, one 32-byte compare each), then reads ahead
 * of the last hit (TC_SCAN bytes, the swapped run the order jumps over), and, at
 * most TC_FAR_TRIES times, on to TC_FAR bytes (a cold run's threads sometimes
 * produce a few thousand entries out of turn: W1 10^6 once jumped 200 KiB); only when
 * all that misses is a hash table over the arena built (once) and searched — for a
 * million entries 32 MB of fresh memory, 8,000 page faults. A W1 10^6 warm run builds
 * no table. An entry another flowrun adds meanwhile is not
 * seen: a miss, which a cache may have. */
static uint64_t tc_hash(const fl_digest *k) {
    uint64_t v;
    memcpy(&v, k->b, 8);
    return v;
}

static int tc_add(const fl_digest *key, const void *val, size_t len, void *ctx) {
    task_cache *c = ctx;
    if (len > UINT32_MAX) return 0;
    if (c->n >= HIST_PRELOAD_MAX) return c->full = 1; /* more than may be loaded: stop */
    uint32_t l = (uint32_t)len;
    fv_buf_put(&c->arena, key->b, 32);
    fv_buf_put(&c->arena, &l, 4);
    fv_buf_put(&c->arena, val, len);
    c->n++;
    return 0;
}

/* The hash table over a preloaded arena: 0, or -1 out of memory. */
static int tc_index(fl_ctx *ctx, task_cache *c) {
    if (c->indexed) return 0;
    if (fl_htab_reserve(ctx, &c->tab, c->n < 512 ? 512 : (size_t)c->n)) return -1;
    c->indexed = 1;
    for (size_t off = 0; off + 36 <= c->arena.len;) {
        uint32_t l;
        memcpy(&l, c->arena.data + off + 32, 4);
        fl_htab_add(&c->tab, tc_hash((const fl_digest *)(c->arena.data + off)), off);
        off += 36 + (size_t)l;
    }
    return 0;
}

/* Is the entry at arena offset off (a cursor: maybe the arena's end) key's? */
static int tc_at(const task_cache *c, size_t off, const fl_digest *key) {
    return off + 36 <= c->arena.len && !memcmp(c->arena.data + off, key->b, 32);
}

/* The entry of key in a preloaded task cache: its arena offset, or -1 (not there,
 * or no memory for the hash table); *next set when a cursor had it. tc_took then
 * moves the cursors past it. */
static long tc_find(fl_ctx *ctx, task_cache *c, const fl_digest *key, int *next) {
    *next = 1;
    for (int i = 0; i < 4; i++)
        if (tc_at(c, c->cur[i], key)) return (long)c->cur[(c->took = i)];
    *next = 0;
    c->took = -1;
    size_t off = c->cur[0];
    for (int pass = 0; pass < 2; pass++) {
        size_t span = pass ? TC_FAR : TC_SCAN;
        if (pass && (c->indexed || c->far >= TC_FAR_TRIES || off + 36 > c->arena.len)) break;
        c->far += pass;
        size_t end = c->cur[0] + span < c->arena.len ? c->cur[0] + span : c->arena.len;
        while (off + 36 <= end) { /* entries were checked when loaded */
            if (!memcmp(c->arena.data + off, key->b, 32)) return (long)off;
            uint32_t l;
            memcpy(&l, c->arena.data + off + 32, 4);
            off += 36 + (size_t)l;
        }
    }
    if (tc_index(ctx, c)) return -1;
    uint64_t k = tc_hash(key);
    for (fl_htab_slot *s = fl_htab_find(&c->tab, k); s && s->hash; s = fl_htab_next(&c->tab, s, k))
        if (!memcmp(c->arena.data + s->val, key->b, 32)) return (long)s->val;
    return -1;
}

/* The entry tc_find found ends at `after`: the cursor it came from (or the oldest,
 * for an entry found otherwise) moves there and becomes the most recent. */
static void tc_took(task_cache *c, size_t after) {
    int i = c->took >= 0 ? c->took : 3;
    memmove(c->cur + 1, c->cur, (size_t)i * sizeof c->cur[0]);
    c->cur[0] = after;
}

static void preload(hist *h, uint32_t task, int64_t remaining) {
    task_cache *c = &h->tc[task];
    const char *name = plan_str(h->p, h->p->tasks[task].name);
    if (c->count < 0) c->count = state_cache_count(h->st, name);
    if (c->count < 0 || c->count > HIST_PRELOAD_MAX) {
        c->state = TC_NEVER;
        return;
    }
    if (c->count > 4 * remaining) return; /* not yet worth it */
    if (state_cache_each(h->st, name, tc_add, c) == 0 && c->arena.len && !c->full) {
        c->state = TC_MEMORY;
        return;
    }
    free(c->arena.data); /* fv_buf: value.c's allocation */
    c->arena = (fv_buf){0};
    c->state = TC_NEVER;
}

/* Decode a finished instance's result into *out: 1, or 0 when it cannot be
 * served (unreadable, or its stored files changed) and must run again. */
static int serve_done(hist *h, const plan_task *T, const done_entry *e, fl_val *out) {
    const fl_plan *p = h->p;
    size_t used;
    if (T->ret == PLAN_NONE || p->types[T->ret].kind == PT_VOID) {
        out->i = 0;
        return 1;
    }
    const uint8_t *b = e->result;
    size_t len = e->len;
    uint8_t *big;
    fl_digest d;
    if (big_read(h, &b, &len, &big, &d)) return 0;
    int bad = fv_decode(p, T->ret, b, len, &used, out);
    fl_free(store_ctx(h->store), big);
    if (bad) return 0;
    h->objs.n = 0;
    if (type_has_files(p, T->ret, 0)) reroot(h, T->ret, out, 0);
    if (type_has_files(p, T->ret, 0) && check_stored(h, T->ret, *out, 0)) {
        fv_decref(p, T->ret, *out);
        return 0;
    }
    big_served(h, *out, big, &d);
    return 1;
}

/* ---- the recorder interface (recorder.h) ---- */

/* What hist_lookup can do for task's instances: serve them on resume, check their
 * stored inputs, compute their keys (and serve from the cache). None of it: 0. */
static int hist_lookup_needed(void *self, uint32_t task) {
    hist *h = self;
    if (task >= h->p->n_tasks) return 1;
    return h->ndone || h->file_args[task] || (!h->no_cache && h->p->tasks[task].cache);
}

static int hist_lookup(void *self, rec_inst *ii, const fl_val *args, fl_val *out) {
    hist *h = self;
    const fl_plan *p = h->p;
    const plan_task *T = &p->tasks[ii->task];
    ii->has_key = 0;
    h->big_served = NULL; /* only the latest lookup's: its value is alive until finished */
    int cleared = 0;
    /* resume: what this run already finished, unless cleared, unreadable or damaged */
    done_entry *e = NULL;
    if (h->ndone) {
        char ib[24];
        const char *idx = rec_inst_idx(ii, ib, sizeof ib);
        e = done_find(h, key_hash(ii->node, idx), ii->node, idx, ii->tmpl);
    }
    if (e && e->cleared) cleared = 1;
    if (e && !e->cleared && serve_done(h, T, e, out)) {
        h->stats.served_resume++;
        /* its cache entry is written again (hist_finished): a flowrun killed
         * before its held entries reached the cache loses nothing for good */
        ii->has_key = e->has_key;
        ii->key = e->key;
        return 1;
    }
    if (h->file_args[ii->task]) { /* stored inputs must be intact before the task reads them */
        h->objs.n = 0;
        for (uint32_t i = 0; i < T->nparams; i++) {
            uint32_t ty = p->params[T->first_param + i].type;
            if (type_has_files(p, ty, 0) && check_stored(h, ty, args[i], 0)) {
                /* a result's error: the plan's context (exec.h) */
                ii->error = fl_sprintf(p->ctx,
                                       "input '%s' was changed or damaged in the store after it "
                                       "was stored; it has been quarantined (run again to "
                                       "recompute it)",
                                       plan_str(p, p->params[T->first_param + i].name));
                return -1;
            }
        }
    }
    if (h->no_cache || !T->cache) return 0;
    char err[512];
    if (ck_instance_key(&h->ck, ii->task, args, &ii->key, err, sizeof err))
        return 0; /* an unreadable input: let the task meet it and fail clearly */
    ii->has_key = 1;
    if (h->cache_empty) return 0;
    if (cleared) { /* its new result replaces the cached one: the old is dropped first, so
                    * no older copy of the key is left to be served (state.h) */
        if (!h->dry) state_cache_drop(h->st, plan_str(p, T->name), &ii->key);
        return 0;
    }
    uint8_t *val = NULL;
    const uint8_t *cval;
    size_t len, used;
    task_cache *c = &h->tc[ii->task];
    long at = -1;
    if (c->state == TC_MEMORY) {
        int next;
        if ((at = tc_find(h->ctx, c, &ii->key, &next)) < 0) return 0;
        h->stats.served_next += next;
        uint32_t l;
        memcpy(&l, c->arena.data + at + 32, 4);
        len = l;
        cval = c->arena.data + at + 36;
        tc_took(c, (size_t)at + 36 + len);
    } else {
        int got = state_cache_get(h->st, plan_str(p, T->name), &ii->key, &val, &len);
        c->looked++;
        c->hits += got == 1;
        if (c->state == TC_SQL && ii->remaining >= HIST_PRELOAD_MIN && c->looked >= 64 &&
            !(c->looked & (c->looked - 1)) && c->hits * 10 >= c->looked * 9)
            preload(h, ii->task, ii->remaining);
        if (got != 1) return 0;
        cval = val;
    }
    int ok = 1;
    uint8_t *big = NULL;
    fl_digest d;
    if (p->types[T->ret].kind == PT_VOID) {
        out->i = 0;
    } else if (big_read(h, &cval, &len, &big, &d) ||
               fv_decode(p, T->ret, cval, len, &used, out)) {
        ok = 0;
    } else {
        h->objs.n = 0;
        if (type_has_files(p, T->ret, 0)) reroot(h, T->ret, out, 0);
        if (type_has_files(p, T->ret, 0) && check_stored(h, T->ret, *out, 0)) {
            fv_decref(p, T->ret, *out); /* a stored file is damaged: recompute it */
            ok = 0;
        } else {
            big_served(h, *out, big, &d);
        }
    }
    fl_free(state_ctx(h->st), val);
    fl_free(store_ctx(h->store), big);
    if (!ok) {
        if (at >= 0) memset(c->arena.data + at, 0, 32); /* no key is all zeros: gone */
        if (!h->dry) state_cache_drop(h->st, plan_str(p, T->name), &ii->key);
        return 0;
    }
    h->stats.served_cache++;
    return 1;
}

/* An instance's log: logs/RUN/NAME.log by its instance name (state_log_path), e.g.
 * logs/4/a[3].log, logs/4/per_n[2]/square[1].log, written through descriptors
 * (fsdir.h): a link planted anywhere below the state directory is refused, never
 * written through. 0, or -1 with a one-line reason in err. */
static int write_log(hist *h, const rec_inst *ii, const char *task, const char *log, char *err,
                     size_t errlen) {
    char path[HIST_PATH_MAX], top[HIST_PATH_MAX], ib[24];
    int tlen = snprintf(top, sizeof top, "%s/logs/%lld", h->dir, (long long)h->run);
    if (tlen < 0 || (size_t)tlen >= sizeof top ||
        state_log_path(h->dir, h->run, ii->tmpl, task, rec_inst_idx(ii, ib, sizeof ib), path,
                       sizeof path))
        return snprintf(err, errlen, "state directory path too long"), -1;
    if (h->logs_fd < 0) h->logs_fd = fsdir_open(top, strlen(h->dir), 1);
    char *rel = path + tlen + 1, *slash = strrchr(rel, '/'), *name = slash ? slash + 1 : rel;
    int dfd = h->logs_fd;
    if (slash && dfd >= 0) { /* a name through groups: per_n[2]/square[1].log */
        *slash = 0;
        dfd = fsdir_walk(h->logs_fd, rel, 1);
    }
    int fd = dfd < 0 ? -1 : fsdir_file(dfd, name, 0);
    int e = errno;
    if (slash) *slash = '/';
    size_t n = strlen(log), done = 0;
    while (fd >= 0 && done < n) {
        ssize_t w = write(fd, log + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0 && done == n) e = errno, done = 0;
    if (slash && dfd >= 0) close(dfd);
    if (fd >= 0 && done == n) return 0;
    snprintf(err, errlen, "cannot write its log logs/%lld/%.300s in the state directory: %s",
             (long long)h->run, rel, strerror(e));
    return -1;
}

/* The parts of a cache entry's key (ck_key_parts) into h->inputs and *ident: 1, or
 * 0 when they cannot be had (the entry then says "unknown"). */
static int key_parts(hist *h, uint32_t task, const fl_val *args, uint64_t *ident) {
    uint32_t n = h->p->tasks[task].nparams;
    if (n > h->inputs_cap) {
        uint64_t *v = fl_reallocarray(h->ctx, h->inputs, n, sizeof *v);
        if (!v) return 0;
        h->inputs = v;
        h->inputs_cap = n;
    }
    char err[256];
    return ck_key_parts(&h->ck, task, args, ident, h->inputs, err, sizeof err) == 0;
}

/* Task CPU: what ii's run took, added to its task's figures. */
static inline void task_cpu(hist *h, const rec_inst *ii, const rt_result *res) {
    if (!h->cpu) h->cpu = fl_calloc(h->ctx, h->p->n_tasks, sizeof *h->cpu);
    if (!h->cpu) return;
    state_task_cpu *c = &h->cpu[ii->task];
    int64_t wall = (int64_t)((res->end - res->start) * 1e9);
    c->wall_ns += wall;
    c->instances++;
    if (res->cpu_known) {
        c->cpu_ns += res->cpu_ns;
        c->cpu_wall_ns += wall;
        c->measured++;
    }
}

/* The record of a plain instance (state.h: mapped, outside any group, with nothing
 * but its times and result to keep), written without a state_inst
 * (state_inst_plain); val NULL for none; cacheable: its result enters the cache
 * (with its key's parts, from args). 0 when written (or out of memory, which the
 * state reports), 1 when it is not plain after all: the caller writes it in full. */
static inline int plain_put(hist *h, const rec_inst *ii, const fl_val *args, const rt_result *res,
                            int served, int cacheable, const void *val, size_t vlen) {
    state_plain *pl = &h->plain;
    /* (the node names the task: a node's template, kept by the scheduler for the
     * run, is compared by address) */
    if (pl->node != ii->node || pl->tmpl != ii->tmpl || pl->run != h->run) {
        pl->run = h->run;
        pl->node = ii->node;
        pl->task = plan_str(h->p, h->p->tasks[ii->task].name);
        pl->tmpl = ii->tmpl;
        pl->name = -1;
    }
    pl->idx = ii->idx_k;
    pl->served = served;
    pl->attempts = ii->attempts;
    pl->key = ii->has_key ? &ii->key : NULL;
    pl->started = res->start;
    pl->ended = res->end;
    pl->worker_pid = res->worker_pid;
    pl->peak_rss_kb = res->peak_rss_kb;
    pl->result = val;
    pl->result_len = val ? vlen : 0;
    pl->cache_store = cacheable;
    if (cacheable) { /* (as finished_full: the parts are written when they could be had) */
        pl->cache_ident = 0;
        int parts = key_parts(h, ii->task, args, &pl->cache_ident);
        pl->cache_inputs = parts ? h->inputs : NULL;
        pl->cache_ninputs = parts ? h->p->tasks[ii->task].nparams : 0;
    }
    return state_inst_plain(h->st, pl) > 0;
}

/* `finished` in full: outputs, logs, large values, the cache entry, events. (Kept
 * out of hist_finished, whose hot path then costs no more than it does.) */
__attribute__((noinline)) static void finished_full(hist *h, rec_inst *ii, const fl_val *args,
                                                    rt_result *res, int served) {
    const fl_plan *p = h->p;
    const plan_task *T = &p->tasks[ii->task];
    const char *task = plan_str(p, T->name);
    int is_void = p->types[T->ret].kind == PT_VOID;
    h->objs.n = 0;
    char err[512];
    err[0] = 0; /* (one byte: this runs per instance) */
    if (res->ok && !served && !is_void && ii->out_dir && type_has_files(p, T->ret, 0)) {
        int failed = 0;
        fl_val nv = ingest(h, T->ret, res->value, ii->out_dir, 0, &failed, err, sizeof err);
        fv_decref(p, T->ret, res->value);
        res->value = nv;
        if (failed) {
            fv_decref(p, T->ret, res->value); /* the instance fails: no value */
            res->value = (fl_val){0};
            res->ok = 0;
            fl_free(p->ctx, res->error); /* the result's strings: the plan's context */
            res->error = fl_sprintf(p->ctx, "storing the output failed: %s", err);
        }
    } else if (res->ok && served && !is_void && type_has_files(p, T->ret, 0)) {
        check_stored(h, T->ret, res->value, 0); /* lists the objects it refers to */
    }
    if (res->log && *res->log && write_log(h, ii, task, res->log, err, sizeof err) && res->ok) {
        if (!is_void) fv_decref(p, T->ret, res->value); /* the instance fails: no value */
        res->value = (fl_val){0};
        res->ok = 0;
        fl_free(p->ctx, res->error);
        res->error = fl_strdup(p->ctx, err);
    }
    h->enc.len = 0;
    /* a large value served as read back from its object: the same reference again */
    bool same_big = served && res->ok && !is_void && h->big_served &&
                    res->value.o == h->big_served;
    h->big_served = NULL;
    if (res->ok && !is_void && !same_big) fv_encode(p, T->ret, res->value, &h->enc);
    /* on resume, what is served is entered in the cache again (see hist_lookup) */
    int cacheable = res->ok && (!served || h->ndone) && ii->has_key && !h->no_cache && T->cache;
    /* a large result (or one that looks like a reference) is a store object */
    size_t nobjs = h->objs.n; /* the result's own files, for --events */
    const uint8_t *val = (const uint8_t *)h->enc.data;
    size_t vlen = h->enc.len;
    char ref[BIG_REF_LEN];
    bool unkept = false;
    if (same_big) {
        big_ref(&h->big_digest, ref);
        val = (const uint8_t *)ref;
        vlen = BIG_REF_LEN;
        if (obj_push(h, &h->big_digest)) { /* not listed: gc could take it from the cache */
            fl_log(h->ctx, FL_LOG_WARN, "%s: out of memory: its result is not cached again",
                   task);
            cacheable = 0;
        }
    } else if (res->ok && !is_void && !h->dry &&
        (vlen >= HIST_BIG_VALUE || (vlen >= BIG_MARK_LEN && !memcmp(val, BIG_MARK, BIG_MARK_LEN)))) {
        if (big_write(h, ref, err, sizeof err) == 0) {
            val = (const uint8_t *)ref;
            vlen = BIG_REF_LEN;
        } else {
            fl_log(h->ctx, FL_LOG_WARN,
                   "%s: its result (%zu MB encoded) could not be stored: %s; not cached, not "
                   "kept in the history (a resume runs it again)",
                   task, vlen / 1000000, err);
            cacheable = 0;
            unkept = true;
        }
    }
    if (h->objs.n && ii->has_key) /* the stored files this result refers to, for gc */
        state_cache_put(h->st, &ii->key, NULL, 0, h->run, h->objs.v, h->objs.n);
    /* a plain record (state.h), written without a state_inst */
    int done = res->ok && ii->idx_is_k && !ii->label && !res->term_signal && !cacheable &&
               !unkept && !h->ev &&
               !plain_put(h, ii, args, res, served, 0, is_void ? NULL : val, vlen);
    if (!done) {
        state_inst r = {0};
        r.run = h->run;
        r.node = ii->node;
        r.idx = ii->idx;
        r.idx_is_k = ii->idx_is_k;
        r.idx_k = ii->idx_k;
        r.task = task;
        r.tmpl = ii->tmpl;
        r.label = ii->label;
        r.state = res->ok ? (served ? state_cached : state_succeeded) : "failed";
        r.attempts = ii->attempts;
        r.cache_key = ii->has_key ? &ii->key : NULL;
        r.cache_hit = served;
        r.started = res->start;
        r.ended = res->end;
        r.exit_status = -1;
        r.term_signal = res->term_signal;
        r.error = res->ok ? NULL : res->error;
        r.worker_pid = res->worker_pid;
        r.peak_rss_kb = res->peak_rss_kb;
        r.result = res->ok && !is_void && !unkept ? val : NULL;
        r.result_len = res->ok && !is_void && !unkept ? vlen : 0;
        r.cache_store = cacheable;
        if (cacheable && is_void) r.result = "", r.result_len = 0; /* found, with no value */
        if (cacheable && key_parts(h, ii->task, args, &r.cache_ident)) {
            r.cache_inputs = h->inputs;
            r.cache_ninputs = T->nparams;
        }
        state_inst_put(h->st, &r);
        if (h->ev) { /* --events: the argument hashes of a served instance too */
            char ib[24];
            r.idx = rec_inst_idx(ii, ib, sizeof ib);
            if (!r.cache_inputs && ii->has_key && key_parts(h, ii->task, args, &r.cache_ident)) {
                r.cache_inputs = h->inputs;
                r.cache_ninputs = T->nparams;
            }
            ev_instance(h->ev, p, ii->task, &r, args, res->ok ? res->value : (fl_val){0},
                        h->objs.v, nobjs);
        }
    }
    if (!served) task_cpu(h, ii, res);
}

static void hist_finished(void *self, rec_inst *ii, const fl_val *args, rt_result *res,
                          int served) {
    hist *h = self;
    /* the hot path: an int of a mapped instance with nothing else to keep but its
     * cache entry (no files, log, label or events), run or served (not on resume,
     * when what is served enters the cache again), goes straight to its record */
    uint8_t word = h->word_ret[ii->task];
    if (word && res->ok && (!served || !h->ndone) && ii->idx_is_k && !ii->label &&
        !(res->log && *res->log) && !res->term_signal) {
        uint8_t w[8];
        fv_le64(w, (uint64_t)res->value.i);
        h->big_served = NULL;
        if (!plain_put(h, ii, args, res, served, !served && word == WORD_CACHE && ii->has_key, w,
                       8)) {
            if (!served) task_cpu(h, ii, res);
            return;
        }
    }
    finished_full(h, ii, args, res, served);
}

/* state_commit_round: in async mode (always, after hist_open) it only queues the
 * batch, and the lookups' read snapshot lasts several rounds (state.h). */
static int hist_queue_batch(void *self) {
    hist *h = self;
    return state_commit_round(h->st);
}

static int hist_sync(void *self) {
    hist *h = self;
    return state_sync(h->st);
}

static const rec_ops hist_ops = {
    .name = "history",
    .lookup_needed = hist_lookup_needed,
    .lookup = hist_lookup,
    .finished = hist_finished,
    .queue_batch = hist_queue_batch,
    .sync = hist_sync,
};

recorder hist_recorder(hist *h) {
    return (recorder){.ops = &hist_ops, .self = h};
}

int hist_close(hist *h, const char *state, int exit_code, const char *result_json,
               const char *error) {
    if (!h) return 0;
    int rc = 0;
    if (h->st && h->run && h->cpu) { /* Task CPU: the tasks that ran, before the run ends */
        size_t n = 0;
        for (uint32_t t = 0; t < h->p->n_tasks; t++)
            if (h->cpu[t].instances) {
                h->cpu[t].task = plan_str(h->p, h->p->tasks[t].name);
                h->cpu[n++] = h->cpu[t];
            }
        if (state_task_cpu_add(h->st, h->run, h->cpu, n)) rc = -1;
    }
    fl_free(h->ctx, h->cpu);
    if (h->st && state && h->run && state_run_end(h->st, h->run, state, exit_code, result_json,
                                                  error))
        rc = -1;
    char everr[300];
    if (h->ev && ev_close(h->ev, state, error, everr, sizeof everr)) {
        fl_log(h->ctx, FL_LOG_ERROR, "%s", everr);
        rc = -1;
    }
    if (h->st && state_failed(h->st)) rc = -1;
    ck_free(&h->ck);
    state_close(h->st);
    store_close(h->store);
    fl_ctx *c = h->ctx;
    for (size_t i = 0; i < h->ndone; i++) {
        fl_free(c, h->done[i].idx);
        fl_free(c, h->done[i].tmpl);
        fl_free(c, h->done[i].result);
    }
    fl_free(c, h->done);
    fl_htab_free(c, &h->done_tab);
    fl_free(c, h->lib_hash);
    for (uint32_t t = 0; h->image_id && t < h->p->n_tasks; t++)
        fl_free(c, h->image_id[t]);
    fl_free(c, h->image_id);
    for (uint32_t t = 0; h->tc && t < h->p->n_tasks; t++) {
        fl_htab_free(c, &h->tc[t].tab);
        free(h->tc[t].arena.data); /* fv_buf: value.c's allocation */
    }
    fl_free(c, h->tc);
    fl_free(c, h->file_args);
    fl_free(c, h->word_ret);
    fl_free(c, h->objs.v);
    free(h->enc.data); /* fv_buf: value.c's allocation */
    fl_free(h->ctx, h->inputs);
    if (h->logs_fd >= 0) close(h->logs_fd);
    fl_free(c, h);
    return rc ? -1 : 0;
}
