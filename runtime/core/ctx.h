/*
 * ctx.h — the context of libflow: how it allocates, where its errors and log
 * lines go, and what time it is.
 *
 * DESIGN
 *   Every libflow object that can fail or allocate (a plan, a runtime, a
 *   scheduler, the state, the store, the history) is made with an fl_ctx and
 *   keeps a pointer to it, in the manner of SQLite's connection (sqlite3DbMalloc
 *   takes the db) and Lua's lua_State (lua_Alloc). The context is owned by the
 *   program: flowrun's main makes one, an embedding program gets one per
 *   flow_program. libflow never exits and never prints; it reports.
 *
 *   Allocation. One function, like lua_Alloc: alloc(ud, NULL, n) allocates,
 *   alloc(ud, p, n) resizes, alloc(ud, p, 0) frees. NULL `alloc` is the C
 *   library's (the fast path: fl_malloc is then malloc plus one test). An
 *   allocation that fails records FL_ENOMEM in the error sink, calls the `oom`
 *   callback (if any) and returns NULL; the caller unwinds and reports. Memory
 *   from fl_malloc is given back with fl_free on the same context, never free().
 *
 *   Large blocks (FL_HUGE_MIN bytes and more, from the C library's allocator)
 *   are advised to the kernel as wanting transparent huge pages (fl_huge): a
 *   fresh 4 KiB page costs a page fault, ≈ 11 µs on a virtual machine whose host
 *   backs memory on first touch, so a 10⁶-element list (8 MB) cost 2,000 faults
 *   and ≈ 22 ms before anything was written to it; with 2 MiB pages, a handful
 *   (the kernel uses them for the 2 MiB-aligned ranges inside; fl_huge in ctx.c
 *   says what is advised). A block can hold up to 2 MiB more memory than it has
 *   written to (the huge page its writing has reached); small blocks (nearly all)
 *   are untouched.
 *
 *   Failing the Nth allocation (tests). With fail_at = N > 0, the Nth request
 *   (counting from 1, frees not counted) fails as if memory had run out; every
 *   request is counted in `nalloc` while fail_at != 0 (set fail_at = UINT64_MAX
 *   to count a whole run without failing). Counting is atomic: worker threads
 *   allocate too.
 *
 *   Errors. The sink keeps the first error since fl_error_clear: a code, one
 *   line, and a plan location when there is one (file:line:col of the .flow
 *   source). Internal functions report either through an err/errlen buffer their
 *   caller owns or through the sink (allocation failures always do); the API
 *   boundary (embed.c, the CLI) reads the sink.
 *
 *   Log. Lines meant for the user (warnings, progress, summaries) go to the log
 *   sink with a level; with no sink they are dropped. flowrun's sink writes them
 *   to stderr.
 *
 *   Clock. Wall-clock nanoseconds since the epoch; NULL: clock_gettime
 *   (CLOCK_REALTIME). Tests install a fixed clock.
 */
#ifndef FLOW_CTX_H
#define FLOW_CTX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* One allocator entry point (see above). Returns NULL when it cannot allocate. */
typedef void *(*fl_alloc_fn)(void *ud, void *p, size_t n);

typedef enum fl_log_level { FL_LOG_ERROR, FL_LOG_WARN, FL_LOG_INFO, FL_LOG_DEBUG } fl_log_level;
/* msg is one line without its newline, valid for the call only. */
typedef void (*fl_log_fn)(void *ud, fl_log_level level, const char *msg);

typedef enum fl_errcode {
    FL_OK = 0,
    FL_ERR,       /* an error described by its message */
    FL_ENOMEM,    /* an allocation failed */
    FL_EIO,       /* the file system said no */
    FL_EPLAN,     /* a plan (or a plan's library) is malformed or does not link */
    FL_EINPUT,    /* a parameter or argument given by the user is wrong */
    FL_ESTATE,    /* the state directory is damaged or cannot be written */
    FL_EINTERNAL, /* a libflow invariant failed (a bug) */
} fl_errcode;

/* A place in a .flow source; file NULL: no location. */
typedef struct fl_loc {
    const char *file;
    uint32_t line, col;
} fl_loc;

#define FL_ERRMSG_MAX 1024

typedef struct fl_ctx {
    /* allocation */
    fl_alloc_fn alloc;                /* NULL: malloc/realloc/free */
    void *alloc_ud;
    void (*oom)(void *ud, size_t n);  /* called when an allocation fails; may be NULL */
    void *oom_ud;
    uint64_t fail_at;                 /* tests: this request fails (1-based); 0 never */
    uint64_t nalloc;                  /* requests so far, counted while fail_at != 0 */
    /* error sink: the first error since fl_error_clear */
    fl_errcode errcode;
    fl_loc errloc;                    /* errloc.file points into errfile */
    char errmsg[FL_ERRMSG_MAX];
    char errfile[256];
    /* log sink */
    fl_log_fn log;                    /* NULL: lines are dropped */
    void *log_ud;
    fl_log_level log_max;             /* lines above this level are dropped */
    /* clock */
    int64_t (*clock)(void *ud);       /* wall clock, ns since the epoch; NULL: the system's */
    void *clock_ud;
} fl_ctx;

/* A context with the defaults (C allocator, no sink, system clock, log_max INFO). */
void fl_ctx_init(fl_ctx *c);

/* TRANSITIONAL: the one process-wide context, for callers that have no context
 * of their own yet: the compiler (flowc_compile's plan_new), the unit tests and
 * fuzzers that build plans, and an fv_buf whose ctx is unset. Goes away when
 * every one of them has one. */
fl_ctx *fl_ctx_default(void);

/* ---- allocation ---- */

void *fl_alloc_slow(fl_ctx *c, void *p, size_t n);

#define FL_HUGE_MIN ((size_t)4 << 20)
/* Advise the kernel that the block p of n >= FL_HUGE_MIN bytes wants huge pages
 * (see Large blocks above; what the kernel says is not an error). */
void fl_huge(void *p, size_t n);
/* fl_huge for a block just had from the C library, when it is that large. */
static inline void fl_huge_if_large(void *q, size_t n) {
    if (__builtin_expect(n >= FL_HUGE_MIN && q != NULL, 0)) fl_huge(q, n);
}

static inline void *fl_malloc(fl_ctx *c, size_t n) {
    if (__builtin_expect(!c->alloc && !c->fail_at, 1)) {
        void *q = malloc(n ? n : 1);
        fl_huge_if_large(q, n);
        if (__builtin_expect(q != NULL, 1))
            return q;
    }
    return fl_alloc_slow(c, NULL, n ? n : 1);
}

static inline void *fl_realloc(fl_ctx *c, void *p, size_t n) {
    if (__builtin_expect(!c->alloc && !c->fail_at, 1)) {
        void *q = realloc(p, n ? n : 1);
        fl_huge_if_large(q, n);
        if (__builtin_expect(q != NULL, 1))
            return q;
    }
    return fl_alloc_slow(c, p, n ? n : 1);
}

static inline void fl_free(fl_ctx *c, void *p) {
    if (!p)
        return;
    if (__builtin_expect(!c->alloc, 1))
        free(p);
    else
        c->alloc(c->alloc_ud, p, 0);
}

/* n * size zeroed bytes; NULL (FL_ENOMEM) also when n * size overflows. */
void *fl_calloc(fl_ctx *c, size_t n, size_t size);
/* n * size bytes, p resized; NULL (FL_ENOMEM, p untouched) also on overflow. */
void *fl_reallocarray(fl_ctx *c, void *p, size_t n, size_t size);
char *fl_strdup(fl_ctx *c, const char *s);
char *fl_strndup(fl_ctx *c, const char *s, size_t n);
/* printf into a new string (fl_free it); NULL on failure. */
char *fl_sprintf(fl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- errors ---- */

/* Record an error (the first one since fl_error_clear wins; later ones are
 * dropped). loc may be NULL. Returns -1, so `return fl_error(...)` reads well. */
int fl_error(fl_ctx *c, fl_errcode code, const fl_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int fl_verror(fl_ctx *c, fl_errcode code, const fl_loc *loc, const char *fmt, va_list ap);
static inline int fl_failed(const fl_ctx *c) {
    return c->errcode != FL_OK;
}
static inline const char *fl_errmsg(const fl_ctx *c) {
    return c->errcode != FL_OK ? c->errmsg : "";
}
void fl_error_clear(fl_ctx *c);
/* Copy the recorded message into err (when errlen > 0). */
void fl_error_copy(const fl_ctx *c, char *err, size_t errlen);

/* ---- log ---- */

void fl_log(fl_ctx *c, fl_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fl_vlog(fl_ctx *c, fl_log_level level, const char *fmt, va_list ap);

/* ---- clock ---- */

int64_t fl_now_ns(fl_ctx *c);
static inline double fl_now_s(fl_ctx *c) {
    return (double)fl_now_ns(c) / 1e9;
}

#endif /* FLOW_CTX_H */
