/*
 * ctx.c — the context of libflow (ctx.h): the slow path of allocation (a custom
 * allocator, the fail-the-Nth hook, out of memory), the error sink, the log
 * sink and the clock.
 *
 * Everything here is small and has no state of its own: all of it lives in the
 * fl_ctx the program owns. The fast path of allocation is inline in ctx.h.
 */
#include "ctx.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void fl_ctx_init(fl_ctx *c) {
    memset(c, 0, sizeof *c);
    c->log_max = FL_LOG_INFO;
}

fl_ctx *fl_ctx_default(void) {
    static fl_ctx the = {.log_max = FL_LOG_INFO};
    return &the;
}

static void *oom(fl_ctx *c, size_t n) {
    fl_error(c, FL_ENOMEM, NULL, "out of memory (%zu bytes)", n);
    if (c->oom)
        c->oom(c->oom_ud, n);
    return NULL;
}

void *fl_alloc_slow(fl_ctx *c, void *p, size_t n) {
    if (c->fail_at) {
        uint64_t k = __atomic_add_fetch(&c->nalloc, 1, __ATOMIC_RELAXED);
        if (k == c->fail_at)
            return oom(c, n);
    }
    void *q = c->alloc ? c->alloc(c->alloc_ud, p, n) : realloc(p, n);
    return q ? q : oom(c, n);
}

/* The C library's large blocks are mappings of their own, grown by mremap, which
 * moves only a range that is one mapping: the advice must cover the whole of one
 * (an advice inside it splits it, and every realloc then copies into 4 KiB pages).
 * glibc puts the block 16 bytes into its mapping and ends it with the mapping: a
 * block that starts and ends so is advised whole; any other (inside the heap, or
 * another allocator's) on its 2 MiB-aligned inside. */
void fl_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20, page = 4096; /* x86-64's, arm64's (4 KiB) */
    uintptr_t lo = (uintptr_t)p - 2 * sizeof(size_t), hi = (uintptr_t)p + malloc_usable_size(p);
    if ((lo & (page - 1)) || (hi & (page - 1))) { /* (usable size >= n) */
        lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        hi = ((uintptr_t)p + n) & ~(huge - 1);
    }
    if (lo < hi)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* no THP here: nothing changes */
#else
    (void)p, (void)n;
#endif
}

void *fl_calloc(fl_ctx *c, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        return oom(c, SIZE_MAX);
    size_t bytes = n * size;
    if (!bytes)
        bytes = 1;
    /* the C library's calloc does not clear pages fresh from the system (a large
     * table), so it is the fast path, as malloc is for fl_malloc */
    if (__builtin_expect(!c->alloc && !c->fail_at, 1)) {
        void *q = calloc(1, bytes);
        fl_huge_if_large(q, bytes);
        if (__builtin_expect(q != NULL, 1))
            return q;
    }
    void *q = fl_alloc_slow(c, NULL, bytes);
    if (q)
        memset(q, 0, bytes);
    return q;
}

void *fl_reallocarray(fl_ctx *c, void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        return oom(c, SIZE_MAX);
    return fl_realloc(c, p, n * size);
}

char *fl_strndup(fl_ctx *c, const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *q = fl_malloc(c, len + 1);
    if (q) {
        memcpy(q, s, len);
        q[len] = '\0';
    }
    return q;
}

char *fl_strdup(fl_ctx *c, const char *s) {
    return fl_strndup(c, s, SIZE_MAX);
}

char *fl_sprintf(fl_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *q = fl_malloc(c, (size_t)n + 1);
    if (!q)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(q, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return q;
}

int fl_verror(fl_ctx *c, fl_errcode code, const fl_loc *loc, const char *fmt, va_list ap) {
    if (c->errcode != FL_OK)
        return -1;
    c->errcode = code == FL_OK ? FL_ERR : code;
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    c->errloc = (fl_loc){0};
    if (loc && loc->file) {
        snprintf(c->errfile, sizeof c->errfile, "%s", loc->file);
        c->errloc = (fl_loc){c->errfile, loc->line, loc->col};
    }
    return -1;
}

int fl_error(fl_ctx *c, fl_errcode code, const fl_loc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fl_verror(c, code, loc, fmt, ap);
    va_end(ap);
    return -1;
}

void fl_error_clear(fl_ctx *c) {
    c->errcode = FL_OK;
    c->errmsg[0] = '\0';
    c->errloc = (fl_loc){0};
}

void fl_error_copy(const fl_ctx *c, char *err, size_t errlen) {
    if (errlen)
        snprintf(err, errlen, "%s", fl_errmsg(c));
}

void fl_vlog(fl_ctx *c, fl_log_level level, const char *fmt, va_list ap) {
    if (!c->log || level > c->log_max)
        return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    c->log(c->log_ud, level, line);
}

void fl_log(fl_ctx *c, fl_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fl_vlog(c, level, fmt, ap);
    va_end(ap);
}

int64_t fl_now_ns(fl_ctx *c) {
    if (c->clock)
        return c->clock(c->clock_ud);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
