/*
 * rtcore.h — private to the runtime core (link.c, call.c, abi.c, sh.c,
 * exec_inline.c): the linked runtime, the C layout of plan types, and the
 * per-instance context the C task ABI (flow.h) works through.
 *
 * Nothing here is part of exec.h's contract; other modules use exec.h.
 */
#ifndef FLOW_RTCORE_H
#define FLOW_RTCORE_H

#include <ffi.h>
#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "flow.h"

/* Most parameters a task may have (checked by rt_open). */
#define RT_MAX_PARAMS 64
/* Deepest chain of combined tasks (combine(combine(...))) rt_call_task follows. */
#define RT_MAX_COMBINE_DEPTH 32

/* How a plan type is laid out in C (flow.h, docs/runtime-abi.md). */
typedef struct rt_ctype {
    ffi_type *ft;    /* libffi's description (NULL: not built yet) */
    size_t size;     /* sizeof in C, tail padding included */
    size_t align;    /* alignof in C */
    size_t *offsets; /* RECORD: offset of each field; else NULL */
} rt_ctype;

typedef struct rt_lib {
    void *handle; /* dlopen handle, or NULL when not opened */
    char *path;   /* where it was found (malloc'ed) */
} rt_lib;

typedef struct rt_ctask {
    void *fn;          /* C: the resolved symbol; else NULL */
    ffi_cif cif;       /* C: prepared once by rt_open */
    ffi_type **atypes; /* C: argument types for the cif (malloc'ed) */
} rt_ctask;

struct rt_runtime {
    const fl_plan *plan; /* borrowed; outlives the runtime */
    int strict;            /* hash mismatch is an error, not a warning */
    rt_lib *libs;          /* one per plan library */
    rt_ctask *tasks;       /* one per plan task */
    rt_ctype *ctypes;      /* one per plan type, built on demand by rt_open */
    ffi_type list_ft;      /* flow_list {int64_t len; void *items} */
    ffi_type bytes_ft;     /* flow_bytes {const uint8_t *data; int64_t len} */
    ffi_type *list_el[3];  /* its elements */
    ffi_type *bytes_el[3]; /* its elements */
    char *env_root;        /* flow_env_root(): the run's environment's root, or NULL */
};

/* C layout of a plan type (built by rt_open for every type a C task uses). */
static inline const rt_ctype *rt_ctype_of(const rt_runtime *rt, uint32_t type) {
    return &rt->ctypes[type];
}

/* ---- the per-instance context (abi.c) ---- */

typedef struct rt_chunk rt_chunk; /* arena chunk */
typedef struct rt_given rt_given; /* an output path handed out */

typedef struct rt_ictx {
    rt_runtime *rt;        /* the runtime running the instance */
    const rt_job *job;     /* the job (map index, out and scratch dirs) */
    rt_chunk *arena;       /* flow_alloc memory, freed by rt_ictx_leave */
    int failed;            /* flow_fail was called */
    char *fail_msg;        /* its message (the plan's context), the first one wins */
    char *log;             /* flow_log lines (the plan's context) or NULL */
    size_t log_len;        /* bytes used in log */
    size_t log_cap;        /* bytes allocated for log */
    char *own_out_dir;     /* temporary out dir made for a job without one */
    char *own_scratch_dir; /* temporary scratch dir made for a job without one (removed) */
    uint32_t out_seq;      /* counter for fresh output names */
    rt_given *given;       /* output paths handed out so far (arena memory) */
    long peak_rss_kb;      /* largest peak memory of a command it ran (sh), or 0 */
    int64_t cmd_cpu_ns;    /* CPU time (user + system) of the commands it ran (sh), */
    int cmd_ran;           /* ... known when one ran (wait4) */
    struct rt_ictx *prev;  /* the context this one interrupted (nested calls) */
} rt_ictx;

/* Make c the calling thread's current instance / restore the previous one.
 * leave frees the arena and scratch; the caller takes fail_msg and log first. */
void rt_ictx_enter(rt_ictx *c, rt_runtime *rt, const rt_job *job);
void rt_ictx_leave(rt_ictx *c);
rt_ictx *rt_ictx_current(void);
/* Arena memory (16-byte aligned, not zeroed) that lives until rt_ictx_leave, from
 * the plan's context; NULL when out of memory (the instance has then failed). */
void *rt_arena_alloc(rt_ictx *c, size_t n);
/* The context whose log gets the lines of flow_* calls made outside any task
 * (flowrun's, or an embedding program's); NULL: they are dropped. */
void rt_abi_stray_ctx(fl_ctx *c);
/* The context a flow_program owns (embed.c): tests reach the allocator through it. */
fl_ctx *embed_ctx(flow_program *fp);
/* Record a failure (the first message is kept). */
void rt_ictx_fail(rt_ictx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append text (a newline is added when missing) to the instance log. */
void rt_ictx_log(rt_ictx *c, const char *text, size_t n);
/* A fresh path in the instance's output directory (arena memory), or NULL with
 * the failure recorded. */
const char *rt_ictx_out_path(rt_ictx *c, const char *name);

/* ---- sh tasks (sh.c) ---- */
/* Run sh task `task` on args; on success 0 and a new reference in *out, else -1
 * with the failure recorded in c. */
int rt_sh_run(rt_ictx *c, uint32_t task, const fl_val *args, fl_val *out);

/* rt_call_task with the start time given (a runner running jobs back to back
 * takes one clock reading per job: each job starts when the previous ended). */
void rt_call_task_from(rt_runtime *rt, const rt_job *job, rt_result *res, double start);

/* This process's id (cached; refreshed after fork). */
int rt_pid(void);

/* Wall clock, seconds since the epoch. */
double rt_now(void);

#endif /* FLOW_RTCORE_H */
