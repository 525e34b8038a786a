/*
 * exec_process.c — the process executor: a prefork pool of worker processes.
 *
 * DESIGN
 *   Workers are forked from flowrun after rt_open, so every library is already
 *   loaded and every libffi call interface prepared: a worker needs no exec and
 *   starts in well under a millisecond. Each worker is joined to the parent by
 *   a socketpair (stream, close-on-exec; MSG_NOSIGNAL on every send, so neither
 *   side can be killed by SIGPIPE and no process-wide signal setting is
 *   needed), one shared page (px_ctl) and a capture file (memfd) that is the
 *   worker's fd 1 and fd 2.
 *
 *   Jobs. submit() encodes each job at once into a frame (header, out/scratch
 *   dirs, the arguments fv_encode'd with the task's parameter types) held in a
 *   slot, and queues the slot on `pending`. dispatch() hands pending slots to
 *   workers in batches: a worker holds at most `limit` jobs, where limit is the
 *   smaller of a fair share of all outstanding work and about PX_BATCH_NS of
 *   work at the recent mean job duration, and is refilled when it falls to half
 *   of that, so it never runs dry while the refill is in the pipe. A refill is
 *   one send of many frames. Each worker's jobs are remembered in a FIFO in the
 *   order sent; the worker runs them in that order and answers in that order.
 *
 *   Results. The worker runs a job, reads what the job printed from the capture
 *   file (the tail, at most PX_LOG_MAX bytes) and truncates it, and appends a
 *   result frame to an output buffer. It sends the buffer before blocking for
 *   more jobs, when it is large, when PX_FLUSH_NS has passed since the last
 *   send, and before a job that may be slow (one with a timeout, or of a task
 *   whose mean duration in this worker is unknown or PX_HOLD_NS or more): many
 *   results per system call when jobs are short, and no result held back by a
 *   long job after it. Jobs between PX_FLUSH_NS/2 and PX_HOLD_NS go in pairs
 *   (px_child_should_flush): a worker holds PX_DEPTH of them and answers two
 *   at a time, so flowrun wakes and refills once per two jobs. The parent reads results in large chunks, matches each
 *   with the head of that worker's FIFO and queues a finished rt_result for
 *   wait().
 *
 *   Failure. Before each job the worker stores the job's slot and start time
 *   in px_ctl; after it, it clears them. So when a worker dies the parent
 *   knows which job was running: that job fails, with a message built from the
 *   wait status ("worker killed by signal 11 (Segmentation fault)", "task
 *   called exit(3)") and, as its log, what it printed before dying. Jobs
 *   queued behind it go back to the front of `pending` and run elsewhere. A
 *   fatal signal handler and an exit handler in the worker send buffered
 *   results before it dies, so finished jobs are not lost; only a SIGKILL from
 *   outside can lose some, and those run again. Deaths are seen through a
 *   pidfd per worker, reaped with waitpid on that pid only, and the worker is
 *   replaced by a fresh fork. Timeouts: wait() compares the running job's
 *   start in px_ctl with its timeout and, when it passes, kills the worker
 *   with whatever it started (its process group and its children's groups,
 *   since sh commands run in groups of their own).
 *
 *   If flowrun itself is killed, each worker gets PX_ORPHAN_SIG from the kernel
 *   (PR_SET_PDEATHSIG) and kills its children's process groups and its own.
 *
 *   run_as (when flowrun is root): the worker forks a child per such job that
 *   switches identity, runs the job and sends the result itself; if the child
 *   dies first, the worker sends the failure for it, so the worker survives.
 *
 *   Read-only store (when flowrun is root): each worker starts in a mount
 *   namespace of its own in which the store is a read-only bind mount, so no
 *   task it runs (nor a command they start) can write a stored object through
 *   any path, even as root (EROFS); flowrun itself, outside, stores as before.
 *   After that setup a root worker drops CAP_SYS_ADMIN for good (isolate.c), so
 *   a root task cannot remount the store, nor the other environments' roots
 *   that flowrun made read-only before forking it (docs/environments.md).
 *
 *   Pid namespaces (a run in which some task declares `secrets:`, secrets.c, and
 *   a run kept off other environments' roots, isolate.c): every worker lives in a
 *   pid namespace of its own with its own /proc (the worker is the namespace's pid
 *   1; the process between it and flowrun waits and ends as it did, so pidfds,
 *   deaths and timeouts work as above), so no task can reach another process's
 *   view of the files through /proc/PID/root: not flowrun's, not the shell's that
 *   started it, whose mount namespace has the other roots writable.
 *
 *   Secrets: pooled workers close
 *   the memfd of secret values first thing. A job of a task with secrets never
 *   goes to a pooled worker: it waits on its own queue (`sec_*`, linked through
 *   the slots) for one of the nworkers extra worker places (w[nworkers ..
 *   2*nworkers)), where a FRESH worker is forked from flowrun for it alone, puts
 *   the task's secrets in a private tmpfs before anything of the task runs, runs
 *   the one job and exits. Its death after answering is its normal end; a death
 *   before fails the job (it is never run elsewhere).
 *
 *   Ownership: the parent owns slots, frames and the results it has not yet
 *   returned; a result returned by wait() belongs to the caller. In a worker
 *   the only process-wide state is px_child, the pointer the fatal-signal and
 *   exit handlers need (a signal handler has no other way in); it is set
 *   only in worker processes.
 *
 *   Memory comes from the plan's context (in a worker, its copy). Running out
 *   never ends flowrun: submit reserves what every job will need in the queues
 *   (all of a batch or none of it), and a job whose frame cannot be made, sent or
 *   read fails with "out of memory" (px_nomem, below).
 */
#define _GNU_SOURCE
#include "exec_process.h"
#include "cgroup.h"
#include "secrets.h"
#include "isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PX_MAX_WORKERS 256           /* -j above this is clamped */
#define PX_BATCH_MAX 1024            /* most jobs in flight on one worker */
#define PX_BATCH_START 16            /* in flight per worker before durations are known */
#define PX_BATCH_NS 2000000          /* aim for about this much queued work per worker */
#define PX_FLUSH_NS 100000           /* a worker sends results at least this often */
#define PX_FLUSH_BYTES (64 * 1024)   /* ... and whenever this many are buffered */
#define PX_HOLD_NS 5000000           /* jobs shorter than this (and not fast) go in pairs: */
#define PX_DEPTH 4                   /* ... a worker holds this many, answers two at a time */
#define PX_LOG_MAX (64 * 1024)       /* captured output kept per instance: the tail */
#define PX_FRAME_MAX (1u << 30)      /* largest frame either side accepts */
#define PX_ERROR_MAX 4096            /* bytes of an error message sent back */
#define PX_READ_CHUNK (256 * 1024)   /* bytes read per recv */
#define PX_DEATHS_MAX 5              /* deaths in a row with no job to blame: give up on it */
#define PX_ALTSTACK (64 * 1024)      /* signal stack of a worker (stack overflows) */
#define PX_SH_GRACE_MS 500           /* extra time before the pool kills a running sh task */
#define PX_ORPHAN_SIG (SIGRTMIN + 3) /* parent-death signal of the workers */
#define PX_RSS_NS 2000000            /* jobs shorter than this reuse the last peak RSS read, */
#define PX_RSS_EVERY_NS 100000000    /* ... unless it is older than this */
#define PX_CPU_EVERY 16              /* one job in this many has its CPU time read */
#define PX_REAP_NS 100000000         /* children left behind are reaped at least this often */

/* ---- the wire ---- */

/* parent -> worker, followed by out_dir, scratch_dir and the arguments */
typedef struct px_jobhdr {
    uint32_t len;       /* bytes after this field */
    uint32_t slot;      /* parent's slot, echoed */
    uint64_t id;        /* rt_job.id */
    uint32_t task;      /* plan task */
    uint32_t nout;      /* bytes of out_dir; UINT32_MAX for NULL */
    uint32_t nscratch;  /* bytes of scratch_dir; UINT32_MAX for NULL */
    uint32_t nargs;     /* bytes of encoded arguments */
    int64_t map_index;  /* rt_job.map_index */
    int64_t timeout_ms; /* rt_job.timeout_ms */
} px_jobhdr;

/* worker -> parent, followed by the encoded value, the error and the log */
typedef struct px_reshdr {
    uint32_t len;        /* bytes after this field */
    uint32_t slot;       /* the job's slot */
    uint64_t id;         /* the job's id */
    int32_t ok;          /* rt_result.ok */
    int32_t term_signal; /* rt_result.term_signal (a run_as child's death) */
    uint32_t nvalue;     /* bytes of the encoded value */
    uint32_t nerror;     /* bytes of the error text */
    uint32_t nlog;       /* bytes of the log */
    double start, end;   /* rt_result.start, .end */
    int64_t peak_rss_kb; /* rt_result.peak_rss_kb */
    int64_t cpu_ns;      /* rt_result.cpu_ns (an sh command's, from wait4) */
    int32_t cpu_known;   /* rt_result.cpu_known */
    int32_t pad;
} px_reshdr;

/* One page shared by a worker (writer) and the parent (reader). */
typedef struct px_ctl {
    _Atomic uint32_t running;   /* slot + 1 of the job being run; 0 between jobs */
    _Atomic int64_t start_mono; /* its start, CLOCK_MONOTONIC ns (set before running) */
    _Atomic int64_t start_wall; /* its start, CLOCK_REALTIME ns */
    _Atomic int answered;       /* a run_as child has sent its job's result */
    _Atomic int nomem;          /* the worker ran out of memory and ended (px_child_nomem) */
    _Atomic int fatal;          /* the fatal signal of a worker that is pid 1 of its
                                   namespace (it cannot re-raise it; it dies otherwise) */
} px_ctl;

typedef struct px_bytes {
    uint8_t *d;      /* from the plan's context */
    size_t len, cap; /* used, allocated */
    size_t off;      /* consumed from the front (sent or parsed) */
} px_bytes;

/* ---- the parent's records ---- */

typedef struct px_slot {
    uint64_t id;        /* the job's id */
    uint32_t task;      /* its task */
    int64_t timeout_ms; /* its timeout (0: none) */
    uint8_t *frame;     /* its encoded job frame (sent again after a worker death) */
    size_t nframe;      /* bytes of frame */
    uint32_t next_free; /* free list link */
} px_slot;

typedef struct px_worker {
    pid_t pid;                   /* 0: not running */
    int sock;                    /* parent end of the socketpair (non-blocking) */
    int pidfd;                   /* readable when the worker has exited */
    int capfd;                   /* the worker's fd 1/2 (read after a death) */
    px_ctl *ctl;                 /* shared page */
    uint32_t fifo[PX_BATCH_MAX]; /* slots sent, oldest first (a ring) */
    uint32_t fhead;              /* index of the oldest in fifo */
    uint32_t fcount;             /* slots in fifo */
    px_bytes out;                /* frames not yet sent */
    px_bytes in;                 /* bytes received, not yet parsed */
    int eof;                     /* the socket reported end of file */
    uint32_t killed;             /* slot + 1 killed for its timeout, or 0 */
    int bad_frame;               /* it was killed for what it sent: 1 malformed, 2 (PX_NOMEM)
                                    there was no memory to read it */
    int deaths;                  /* deaths in a row with no job to blame */
    fcg cg;                      /* its cgroup (memory:, max_procs:), version 0 when none */
    int oneshot;                 /* a fresh worker for one job of a task with secrets */
    uint32_t oneshot_task;       /* ... that task (set before px_spawn) */
} px_worker;

typedef struct px_exec {
    rt_executor base;                          /* ops; must be first */
    const fl_plan *plan;                     /* types of arguments and results */
    rt_job_runner run;                         /* how a worker runs one job */
    void *run_ctx;                             /* its first argument */
    int nworkers;                              /* size of w */
    px_worker *w;                              /* the pool */
    px_slot *slots;                            /* every job held, by slot */
    uint32_t nslots, cap_slots;                /* used, allocated */
    uint32_t free_slot;                        /* head of the free list, UINT32_MAX when empty */
    uint32_t *pend;                            /* ring of slots waiting for a worker */
    uint32_t pend_head, pend_count, pend_cap;  /* oldest, count, size (a power of two) */
    rt_result *ready;                          /* finished results not yet returned */
    uint32_t *ready_task;                      /* the task of each ready result (to free them) */
    size_t ready_head, ready_count, ready_cap; /* a ring */
    uint64_t inflight;                         /* slots sitting in some worker's fifo */
    uint64_t timed;                            /* slots held whose job has a timeout */
    int64_t avg_ns;      /* moving mean of job durations; 0 until one is known */
    fv_buf enc;          /* scratch for encoding arguments */
    struct pollfd *pfd;  /* scratch for poll: 2 per worker */
    uint32_t max_params; /* most parameters of any task (workers size their arrays) */
    char spawn_err[600]; /* why the last fork failed */
    int limits;          /* some task sets memory: or max_procs: (workers get cgroups) */
    uint32_t cg_gen;     /* numbers the workers' cgroups */
    char *ro_dir;        /* shown read-only to tasks (the store), or NULL */
    const fsec_set *sec; /* the run's secrets (borrowed), or NULL: no task has any */
    int pidns;           /* every worker in a pid namespace of its own (secrets, isolation) */
    int containers;      /* a pool for image: tasks (rt_executor_process_containers): its
                            workers keep CAP_SYS_ADMIN for podman, get no cgroup and do
                            not switch identity (podman does: --user, --memory) */
    int ntotal;          /* size of w: nworkers, plus nworkers fresh-worker places */
    unsigned char *sec_task;            /* per task: it declares secrets */
    uint32_t sec_head, sec_tail, sec_count; /* jobs waiting for a fresh worker (slots, linked
                                               through next_free) */
} px_exec;

/* ---- small helpers ---- */

static int64_t px_now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Out of memory. In the parent every allocation is checked: the slots, queues and
 * result ring are reserved for every job when it is submitted (px_hold), so the
 * poll loop only allocates byte buffers; when one cannot grow, the job that needed
 * it fails with "out of memory" (the context's sink says so too) and the pool goes
 * on. A worker that cannot allocate marks its shared page and ends
 * (px_child_nomem): the parent fails its running job with "out of memory". */
#define PX_NOMEM 2 /* px_worker.bad_frame: the parent could not read what it sent */
#define PX_NOMEM_MSG "out of memory (process executor)"

static int px_nomem(const px_exec *ex) {
    return fl_error(ex->plan->ctx, FL_ENOMEM, NULL, PX_NOMEM_MSG);
}

/* Room for n more bytes after len (the buffer at least doubles when it grows).
 * 0, or -1 when it cannot grow (the buffer is as it was). */
static int px_reserve(fl_ctx *ctx, px_bytes *b, size_t n) {
    if (b->len + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *d = fl_realloc(ctx, b->d, cap);
    if (!d) return -1;
    b->d = d;
    b->cap = cap;
    return 0;
}

/* Append n bytes; 0, or -1 when there is no room (nothing appended). */
static int px_put(fl_ctx *ctx, px_bytes *b, const void *d, size_t n) {
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (px_reserve(ctx, b, n)) return -1;
    if (n) memcpy(b->d + b->len, d, n);
    b->len += n;
    return 0;
}

/* Drop consumed bytes from the front once they are half the buffer. */
static void px_compact(px_bytes *b) {
    if (b->off == b->len) {
        b->off = b->len = 0;
    } else if (b->off > b->cap / 2) {
        memmove(b->d, b->d + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
}

static void px_bytes_free(fl_ctx *ctx, px_bytes *b) {
    fl_free(ctx, b->d);
    memset(b, 0, sizeof *b);
}

/* Send everything, blocking (worker side). -1 when the parent is gone. */
static int px_send_all(int fd, const uint8_t *d, size_t n) {
    while (n) {
        ssize_t k = send(fd, d, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        d += k;
        n -= (size_t)k;
    }
    return 0;
}

static const char *px_signame(int sig) {
    switch (sig) {
        case SIGSEGV:
            return "Segmentation fault";
        case SIGABRT:
            return "Aborted";
        case SIGBUS:
            return "Bus error";
        case SIGFPE:
            return "Floating point exception";
        case SIGILL:
            return "Illegal instruction";
        case SIGKILL:
            return "Killed";
        case SIGTERM:
            return "Terminated";
        case SIGINT:
            return "Interrupt";
        case SIGPIPE:
            return "Broken pipe";
        case SIGSYS:
            return "Bad system call";
        case SIGTRAP:
            return "Trace/breakpoint trap";
        case SIGXCPU:
            return "CPU time limit exceeded";
        case SIGXFSZ:
            return "File size limit exceeded";
        default:
            return "signal";
    }
}

static void px_fmt_duration(char *buf, size_t len, int64_t ms) {
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else if (ms < 1000)
        snprintf(buf, len, "%lldms", (long long)ms);
    else
        snprintf(buf, len, "%.3gs", (double)ms / 1000.0);
}

/* Why a process ended, as an instance's error ("worker killed by signal 11
 * (Segmentation fault)", "task called exit(3)"); *sig gets the signal or 0. */
static void px_status_text(int status, char *buf, size_t len, int *sig) {
    *sig = 0;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        snprintf(buf, len, "worker killed by signal %d (%s)", *sig, px_signame(*sig));
    } else if (WIFEXITED(status)) {
        snprintf(buf, len, "task called exit(%d)", WEXITSTATUS(status));
    } else {
        snprintf(buf, len, "worker ended with status %#x", (unsigned)status);
    }
}

/* The last at most PX_LOG_MAX bytes of fd's first `size` bytes, as a string of
 * ctx (a result's log, exec.h; NULL when empty, or when memory ran out: the log is
 * lost, not the result), saying how much was dropped before the tail. */
static char *px_read_tail(fl_ctx *ctx, int fd, off_t size) {
    if (size <= 0) return NULL;
    size_t keep = size > PX_LOG_MAX ? PX_LOG_MAX : (size_t)size;
    char note[80] = "";
    if ((off_t)keep < size)
        snprintf(note, sizeof note, "[... %lld bytes of output dropped; the last %zu follow]\n",
                 (long long)(size - (off_t)keep), keep);
    size_t nn = strlen(note);
    char *s = fl_malloc(ctx, nn + keep + 1);
    if (!s) return NULL;
    memcpy(s, note, nn);
    ssize_t got = pread(fd, s + nn, keep, size - (off_t)keep);
    if (got <= 0 && !nn) {
        fl_free(ctx, s);
        return NULL;
    }
    s[nn + (got > 0 ? (size_t)got : 0)] = 0;
    return s;
}

/* ---- the worker ---- */

typedef struct px_child_state {
    px_exec *ex;         /* the executor as it was at fork */
    int sock;            /* worker end of the socketpair (blocking) */
    int capfd;           /* capture file (also fd 1 and 2) */
    px_ctl *ctl;         /* shared page */
    px_bytes in;         /* job bytes received */
    px_bytes out;        /* result frames not yet sent */
    size_t whole;        /* bytes of out that are complete frames (the handlers send these) */
    pid_t pid;           /* this worker (a task's fork that returns is told apart by this) */
    pid_t parent;        /* flowrun */
    int root;            /* running as root: run_as switches identity */
    fv_buf enc;          /* scratch for the result value */
    fl_val *args;      /* decoded arguments, max_params of them */
    int64_t *task_ns;    /* per task: moving mean of its durations here; 0 = not seen yet */
    int64_t rss;         /* peak RSS last read, KiB */
    int64_t rss_at;      /* CLOCK_MONOTONIC when it was read */
    uint64_t jobs;       /* jobs run (CPU samples: px_child_job) */
    int64_t reaped_at;   /* CLOCK_MONOTONIC of the last look for children to reap */
    dev_t cap_dev;       /* the capture file's identity, taken once (px_child_tidy) */
    ino_t cap_ino;
    volatile int spawned; /* a task forked (pthread_atfork): reap at the next tidy */
    int64_t wall_offset; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns, read once per batch */
    int64_t job_end;     /* CLOCK_MONOTONIC at the end of the last job */
    volatile int forked; /* set in the child of a fork made by a task (pthread_atfork) */
    fcg *cg;             /* this worker's cgroup, or NULL (cgroup.c) */
    int nheld;           /* results in out not yet sent */
    int oneshot;         /* a fresh worker: runs one job, then exits */
    uint32_t oneshot_task; /* ... of this task (any other job fails) */
    char setup_fail[600]; /* why its secrets could not be set up (the job fails with it) */
    int held_effect;     /* one of them is of a cache: false task: send before the next job */
} px_child_state;

/* Set only in a worker process: the handlers below reach its state through it. */
static px_child_state *px_child;

/* The worker cannot allocate what it needs to go on (a buffer for jobs or results):
 * it sends the results it has finished, says why on its shared page and in its
 * capture file (the log of the job it was running; never flowrun's stderr), and
 * ends; the parent fails that job with "out of memory" and starts a fresh worker. */
static void __attribute__((noreturn)) px_child_nomem(px_child_state *cs) {
    static const char line[] = "flow: " PX_NOMEM_MSG "\n";
    if (cs->whole > cs->out.off)
        (void)px_send_all(cs->sock, cs->out.d + cs->out.off, cs->whole - cs->out.off);
    atomic_store(&cs->ctl->nomem, 1);
    if (write(cs->capfd, line, sizeof line - 1) < 0) {
    }
    _exit(125);
}

static void px_child_flush(px_child_state *cs) {
    if (cs->whole > cs->out.off) {
        if (px_send_all(cs->sock, cs->out.d + cs->out.off, cs->whole - cs->out.off)) _exit(0);
    }
    cs->out.off = cs->out.len = cs->whole = 0;
    cs->nheld = cs->held_effect = 0;
}

/* Fatal signal in a task: send the finished results, then die of the signal. */
static void px_child_fatal(int sig) {
    px_child_state *cs = px_child;
    if (cs && cs->whole > cs->out.off)
        (void)px_send_all(cs->sock, cs->out.d + cs->out.off, cs->whole - cs->out.off);
    int none = 0; /* pid 1 of a namespace ignores its own raise: the fault recurs and kills
                     it, maybe with another signal (abort ends in one); the first one counts */
    if (cs && getpid() == 1) atomic_compare_exchange_strong(&cs->ctl->fatal, &none, sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* exit() in a task: send the finished results and end with the task's status
 * at once, so that the parent's inherited exit handlers (and a leak checker's)
 * never run in the worker and the parent sees exactly the task's exit code. */
static void px_child_onexit(int status, void *arg) {
    px_child_state *cs = px_child;
    (void)arg;
    if (!cs || cs->pid != getpid()) return;
    fflush(NULL); /* what the task printed before exiting goes to its log */
    px_child_flush(cs);
    _exit(status);
}

/* In the child of any fork() made while a task runs in this worker. */
static void px_child_atfork(void) {
    if (px_child) px_child->forked = 1;
}

/* In the worker, before any fork() a task makes: it may leave a child to reap. */
static void px_child_prefork(void) {
    if (px_child) px_child->spawned = 1;
}

/* Between batches: reap children a task started and left behind, unblock signals
 * a task blocked, and point fds 1 and 2 back at the capture file if a task
 * closed or redirected them. With slow tasks a batch is one job, so this runs per
 * job: the capture file's identity is taken once, and children are looked for
 * only after a fork seen by pthread_atfork, an sh task, or PX_REAP_NS (a child
 * made without the atfork handlers, by posix_spawn or a raw clone, stays a zombie
 * at most that long). Three system calls, not seven. */
static void px_child_tidy(px_child_state *cs, int sh) {
    int64_t now = cs->job_end;
    if (cs->spawned || sh || now - cs->reaped_at >= PX_REAP_NS) {
        cs->spawned = 0;
        cs->reaped_at = now;
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct stat st;
    for (int fd = 1; fd <= 2; fd++)
        if (fstat(fd, &st) || st.st_ino != cs->cap_ino || st.st_dev != cs->cap_dev)
            dup2(cs->capfd, fd);
}

/* Kill the children of `pid` (its main thread's) and the process groups they lead
 * (sh commands run in groups of their own); with depth 1, their children's first
 * (a run_as child runs its job's sh commands: px_child_job_as). Async-signal-safe:
 * open, read, kill only. */
static void px_kill_children(pid_t pid, int depth) {
    char num[16], path[64];
    size_t k = 0, n = 0;
    for (unsigned v = (unsigned)pid; k == 0 || v; v /= 10)
        num[k++] = (char)('0' + v % 10);
    const char *parts[] = {"/proc/", NULL, "/task/", NULL, "/children"};
    for (int p = 0; p < 5; p++)
        if (parts[p])
            for (const char *c = parts[p]; *c; c++)
                path[n++] = *c;
        else
            for (size_t i = k; i > 0; i--)
                path[n++] = num[i - 1];
    path[n] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    pid_t c = 0;
    for (ssize_t i = 0; i <= got; i++) {
        if (i < got && buf[i] >= '0' && buf[i] <= '9') {
            c = c * 10 + (buf[i] - '0');
        } else if (c > 0) {
            if (depth > 0) px_kill_children(c, depth - 1);
            kill(-c, SIGKILL); /* its group, if it leads one */
            kill(c, SIGKILL);
            c = 0;
        }
    }
}

/* flowrun has died (PR_SET_PDEATHSIG): kill what our children started, then our
 * own group, ourselves included. Async-signal-safe. */
static void px_child_orphaned(int sig) {
    (void)sig;
    px_kill_children(getpid(), 1);
    kill(0, SIGKILL);
    _exit(1);
}

/* As root: see ro_dir read-only from here on (this worker and all it starts).
 * Where mount namespaces are not allowed (a container without CAP_SYS_ADMIN),
 * the worker goes on without; the store's identity checks still catch writes. */
static void px_readonly_view(const char *dir) {
    if (!dir || geteuid() != 0 || unshare(CLONE_NEWNS)) return;
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
        mount(dir, dir, NULL, MS_BIND | MS_REC, NULL))
        return;
    mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

static void px_child_setup(px_child_state *cs) {
    setpgid(0, 0);
    px_readonly_view(cs->ex->ro_dir);
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore); /* a crashing task leaves no core files behind */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        if (null > 2) close(null);
    }
    dup2(cs->capfd, 1);
    dup2(cs->capfd, 2);
    struct stat cap;
    if (fstat(cs->capfd, &cap) == 0) {
        cs->cap_dev = cap.st_dev;
        cs->cap_ino = cap.st_ino;
    }
    stack_t ss = {.ss_sp = malloc(PX_ALTSTACK), .ss_size = PX_ALTSTACK, .ss_flags = 0};
    if (ss.ss_sp) sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = px_child_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    /* the task gets a plain process: default dispositions for what flowrun may have
     * caught or ignored (ignored ones would even survive exec), nothing blocked */
    const int plain[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        signal(plain[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* die with flowrun, taking along what the task started (see docs/executors.md
     * for the thread this ties us to) */
    struct sigaction orphan;
    memset(&orphan, 0, sizeof orphan);
    orphan.sa_handler = px_child_orphaned;
    sigemptyset(&orphan.sa_mask);
    sigaction(PX_ORPHAN_SIG, &orphan, NULL);
    prctl(PR_SET_PDEATHSIG, PX_ORPHAN_SIG);
    if (getppid() != cs->parent) _exit(0);
    px_child = cs;
    on_exit(px_child_onexit, NULL);
    pthread_atfork(px_child_prefork, NULL, px_child_atfork);
    /* last: nothing this worker runs may remount what it was given read-only (where
     * flowrun itself lacks CAP_SETPCAP, a task that execs gets it back: see
     * docs/environments.md; nothing here could say so but the task's log) */
    if (geteuid() == 0 && !cs->ex->containers) iso_drop_sys_admin();
}

/* Run one job frame (or, when fail is given, only report that it failed with that
 * message and signal) and append its result frame to cs->out. */
static void px_child_job(px_child_state *cs, const px_jobhdr *h, const uint8_t *body,
                         const char *fail, int fail_signal) {
    const fl_plan *p = cs->ex->plan;
    const plan_task *t = &p->tasks[h->task];
    const uint8_t *q = body;
    size_t nout = h->nout == UINT32_MAX ? 0 : h->nout;
    size_t nscr = h->nscratch == UINT32_MAX ? 0 : h->nscratch;
    char *out_dir = h->nout == UINT32_MAX ? NULL : strndup((const char *)q, nout);
    q += nout;
    char *scratch = h->nscratch == UINT32_MAX ? NULL : strndup((const char *)q, nscr);
    q += nscr;

    rt_result res;
    memset(&res, 0, sizeof res);
    res.id = h->id;
    uint32_t decoded = 0;
    size_t pos = 0;
    int bad = 0;
    for (; decoded < t->nparams; decoded++) {
        size_t used = 0;
        uint32_t ty = p->params[t->first_param + decoded].type;
        if (fv_decode(p, ty, q + pos, h->nargs - pos, &used, &cs->args[decoded])) {
            bad = 1;
            break;
        }
        pos += used;
    }
    rt_job job = {h->id, h->task, h->map_index, cs->args, out_dir, scratch, h->timeout_ms, 0};

    /* two clock reads per job (they are not cheap on every machine): monotonic,
     * turned into wall time with the offset taken once per batch */
    int64_t mono0 = px_now(CLOCK_MONOTONIC), wall0 = mono0 + cs->wall_offset;
    atomic_store_explicit(&cs->ctl->start_wall, wall0, memory_order_relaxed);
    atomic_store_explicit(&cs->ctl->start_mono, mono0, memory_order_relaxed);
    atomic_store_explicit(&cs->ctl->running, h->slot + 1, memory_order_release);
    double start = (double)wall0 / 1e9;
    if (fail || bad) {
        res.ok = 0;
        res.error =
            fl_strdup(p->ctx, fail ? fail : "process executor: arguments could not be decoded");
        res.term_signal = fail_signal;
    } else if (cs->cg && fcg_set(cs->cg, t->memory, t->max_procs)) {
        char m[200];
        snprintf(m, sizeof m, "cannot set the task's memory/max_procs limit in its cgroup: %s",
                 strerror(errno));
        res.ok = 0;
        res.error = fl_strdup(p->ctx, m);
    } else {
        int64_t oom0 = cs->cg && t->memory ? fcg_oom_kills(cs->cg) : -1;
        /* CPU time: the worker's CPU clock (a system call) around one job in
         * PX_CPU_EVERY, a task's first job here, and every job of a task whose jobs
         * take PX_RSS_NS or more here; an sh command's comes from wait4 (sh.c). The recorder scales
         * the sample to the task (history.c, "Task CPU") */
        int64_t cpu0 = (cs->jobs++ % PX_CPU_EVERY == 0 || cs->task_ns[h->task] == 0 ||
                        cs->task_ns[h->task] >= PX_RSS_NS)
                           ? px_now(CLOCK_PROCESS_CPUTIME_ID)
                           : -1;
        cs->ex->run(cs->ex->run_ctx, &job, &res);
        if (cpu0 >= 0 && !res.cpu_known) {
            res.cpu_ns = px_now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
            res.cpu_known = 1;
        }
        if (oom0 >= 0 && !res.ok && fcg_oom_kills(cs->cg) > oom0) {
            /* the OOM killer took a process the task started (an sh command's) */
            char size[32], m[PX_ERROR_MAX];
            fcg_fmt_size(size, sizeof size, t->memory);
            snprintf(m, sizeof m, "exceeded memory limit (%s): %s", size,
                     res.error ? res.error : "killed");
            fl_free(p->ctx, res.error);
            res.error = fl_strdup(p->ctx, m);
        }
    }
    int64_t mono1 = px_now(CLOCK_MONOTONIC), wall1 = mono1 + cs->wall_offset;
    double end = (double)wall1 / 1e9;
    cs->job_end = mono1;
    atomic_store_explicit(&cs->ctl->running, 0, memory_order_release);
    if (cs->forked) _exit(0); /* a task forked and its child came back here */

    /* what the job printed */
    fflush(NULL);
    off_t size = lseek(cs->capfd, 0, SEEK_END);
    char *captured = NULL;
    if (size > 0) {
        captured = px_read_tail(p->ctx, cs->capfd, size);
        if (ftruncate(cs->capfd, 0)) { /* keeps growing; the tail is still right */
        }
    }
    /* peak RSS only grows, and a job shorter than PX_RSS_NS cannot grow it by more
     * than a few MiB (page faults are not faster): ask again only after a longer
     * job, or when the last figure is PX_RSS_EVERY_NS old (as the inline executor
     * does); a 1 ms task costs no getrusage of its own. sh commands' own peaks come
     * from wait4 (sh.c). */
    struct rusage ru;
    if (!cs->rss || wall1 - wall0 >= PX_RSS_NS || mono1 - cs->rss_at >= PX_RSS_EVERY_NS ||
        t->kind == TK_SH) {
        cs->rss_at = mono1;
        if (!getrusage(RUSAGE_SELF, &ru) && ru.ru_maxrss > cs->rss) cs->rss = ru.ru_maxrss;
        if (t->kind == TK_SH && !getrusage(RUSAGE_CHILDREN, &ru) && ru.ru_maxrss > cs->rss)
            cs->rss = ru.ru_maxrss;
    }
    int64_t rss = cs->rss;

    cs->enc.len = 0;
    cs->enc.failed = false;
    if (res.ok && t->ret != PLAN_NONE && p->types[t->ret].kind != PT_VOID)
        fv_encode(p, t->ret, res.value, &cs->enc);
    const char *err = res.ok ? NULL : res.error ? res.error : PX_NOMEM_MSG; /* exec.h */
    size_t nerr = err ? strnlen(err, PX_ERROR_MAX) : 0;
    /* the log: the runtime's lines (flow_log), then what was printed; tails only */
    const char *log1 = res.log ? res.log : "";
    size_t nlog1 = strlen(log1), nlog2 = captured ? strlen(captured) : 0;
    char note[96] = "";
    if (nlog1 > PX_LOG_MAX) {
        snprintf(note, sizeof note, "[... %zu bytes of log dropped; the last %d follow]\n",
                 nlog1 - PX_LOG_MAX, PX_LOG_MAX);
        log1 += nlog1 - PX_LOG_MAX;
        nlog1 = PX_LOG_MAX;
    }
    size_t nnote = strlen(note);
    int sep = nlog1 && nlog2 && log1[nlog1 - 1] != '\n';
    if (cs->enc.len > PX_FRAME_MAX - PX_LOG_MAX * 3 - PX_ERROR_MAX - sizeof(px_reshdr)) {
        cs->enc.len = 0;
        res.ok = 0;
        err = "the result is too large for the process executor (over 1 GiB encoded)";
        nerr = strlen(err);
    }
    px_reshdr rh = {0};
    rh.slot = h->slot;
    rh.id = h->id;
    rh.ok = res.ok;
    rh.term_signal = res.term_signal;
    rh.nvalue = (uint32_t)cs->enc.len;
    rh.nerror = (uint32_t)nerr;
    rh.nlog = (uint32_t)(nnote + nlog1 + (size_t)sep + nlog2);
    rh.start = start;
    rh.end = end;
    rh.peak_rss_kb = rss;
    rh.cpu_ns = res.cpu_ns;
    rh.cpu_known = res.cpu_known;
    rh.len = (uint32_t)(sizeof rh - sizeof rh.len + rh.nvalue + rh.nerror + rh.nlog);
    size_t frame = sizeof rh + rh.nvalue + rh.nerror + rh.nlog;
    if (cs->enc.failed || px_reserve(p->ctx, &cs->out, frame)) {
        atomic_store_explicit(&cs->ctl->running, h->slot + 1, memory_order_release);
        px_child_nomem(cs); /* running again: this job is the one failed */
    }
    px_put(p->ctx, &cs->out, &rh, sizeof rh); /* room is there: none of these fails */
    px_put(p->ctx, &cs->out, cs->enc.data, cs->enc.len);
    px_put(p->ctx, &cs->out, err, nerr);
    px_put(p->ctx, &cs->out, note, nnote);
    px_put(p->ctx, &cs->out, log1, nlog1);
    px_put(p->ctx, &cs->out, "\n", (size_t)sep);
    px_put(p->ctx, &cs->out, captured, nlog2);
    cs->whole = cs->out.len;

    fl_free(p->ctx, captured);
    if (!res.ok) res.value.i = 0; /* rt_result_clear ignores value then */
    rt_result_clear(p, h->task, &res);
    for (uint32_t i = 0; i < decoded; i++)
        fv_decref(p, p->params[t->first_param + i].type, cs->args[i]);
    free(out_dir);
    free(scratch);
}

/* In a run_as child (as root): take the identity of `user` for the job, giving it
 * the job's directories. 0, or -1 with why. */
static int px_become(const char *user, const px_jobhdr *h, const uint8_t *body, char *why,
                     size_t len) {
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(why, len, "run_as: no such user '%s'", user);
        return -1;
    }
    char dir[PATH_MAX];
    const uint8_t *q = body;
    for (int k = 0; k < 2; k++) {
        uint32_t n = k ? h->nscratch : h->nout;
        if (n == UINT32_MAX) continue;
        if (n < sizeof dir) {
            memcpy(dir, q, n);
            dir[n] = 0;
            if (chown(dir, pw->pw_uid, pw->pw_gid)) {
                snprintf(why, len, "run_as %s: cannot hand over %.200s: %s", user, dir,
                         strerror(errno));
                return -1;
            }
        }
        q += n;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
        snprintf(why, len, "run_as %s: cannot switch identity: %s", user, strerror(errno));
        return -1;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a change of identity clears it */
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", pw->pw_name, 1);
    setenv("LOGNAME", pw->pw_name, 1);
    return 0;
}

/* A job of a task with run_as, when flowrun runs as root: run it in a child of the
 * worker that has switched identity. The child sends its own result; if it dies
 * first, the worker answers for it, so the worker itself survives the crash. */
static void px_child_job_as(px_child_state *cs, const px_jobhdr *h, const uint8_t *body,
                            const char *user) {
    px_child_flush(cs); /* the child starts with an empty buffer */
    atomic_store(&cs->ctl->answered, 0);
    pid_t worker = cs->pid, pid = fork();
    if (pid == 0) {
        char why[256] = "";
        cs->pid = getpid();
        cs->forked = 0; /* this fork is ours */
        int bad = px_become(user, h, body, why, sizeof why);
        px_child_job(cs, h, body, bad ? why : NULL, 0);
        px_child_flush(cs);
        atomic_store(&cs->ctl->answered, 1);
        _exit(0);
    }
    if (pid < 0) {
        char why[160];
        snprintf(why, sizeof why, "run_as %s: cannot fork: %s", user, strerror(errno));
        px_child_job(cs, h, body, why, 0);
        return;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    cs->pid = worker;
    cs->job_end = px_now(CLOCK_MONOTONIC); /* the child's clock reads stayed in the child */
    if (atomic_load(&cs->ctl->answered)) return;
    char msg[200];
    int sig;
    px_status_text(status, msg, sizeof msg, &sig);
    px_child_job(cs, h, body, msg, sig);
}

/* Receive job bytes (flags: 0 blocks, MSG_DONTWAIT does not). 1: got some; 0:
 * none ready; ends the worker when the parent has closed the pool. */
static int px_child_recv(px_child_state *cs, int flags) {
    px_compact(&cs->in);
    if (px_reserve(cs->ex->plan->ctx, &cs->in, PX_READ_CHUNK)) px_child_nomem(cs);
    ssize_t k = recv(cs->sock, cs->in.d + cs->in.len, cs->in.cap - cs->in.len, flags);
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (k <= 0) _exit(0); /* the parent closed the pool */
    cs->in.len += (size_t)k;
    return 1;
}

/* Whole job frames in hand from in.off, counting up to max. */
static int px_child_ahead(const px_child_state *cs, int max) {
    size_t off = cs->in.off;
    int n = 0;
    while (n < max && cs->in.len - off >= sizeof(px_jobhdr)) {
        px_jobhdr h;
        memcpy(&h, cs->in.d + off, sizeof h);
        size_t whole = sizeof h.len + (size_t)h.len;
        if (h.len > PX_FRAME_MAX || cs->in.len - off < whole) break;
        off += whole;
        n++;
    }
    return n;
}

/* Send what is done before job h starts? Fast jobs (mean under PX_FLUSH_NS/2)
 * send every PX_FLUSH_NS or PX_FLUSH_BYTES. Jobs of up to PX_HOLD_NS send in
 * pairs: a result waits for at most one such job, and only while the worker has
 * a further job in hand (looked for without blocking), so it never runs dry
 * waiting for a refill the parent could not yet send. A job that is slow, of
 * unknown duration or with a timeout, and any result of a cache: false task,
 * is sent at once: nothing is held behind a long job, and a SIGKILLed worker
 * never takes a finished effect's result with it. */
static int px_child_should_flush(px_child_state *cs, const px_jobhdr *h, int64_t last_flush) {
    if (!cs->whole) return 0;
    int64_t now = cs->job_end, avg = cs->task_ns[h->task];
    if (avg == 0 || avg >= PX_HOLD_NS || h->timeout_ms > 0 || cs->held_effect) return 1;
    if (now - last_flush >= (avg < PX_FLUSH_NS / 2 ? PX_FLUSH_NS : PX_HOLD_NS) ||
        cs->whole >= PX_FLUSH_BYTES)
        return 1;
    if (avg < PX_FLUSH_NS / 2) return 0;
    if (cs->nheld >= 2) return 1;
    if (px_child_ahead(cs, 2) < 2 && (!px_child_recv(cs, MSG_DONTWAIT) || px_child_ahead(cs, 2) < 2))
        return 1;
    return 0;
}

/* The worker's loop: read job frames, run them in order, send results. */
static void __attribute__((noreturn)) px_child_main(px_child_state *cs) {
    px_child_setup(cs);
    int64_t last_flush = px_now(CLOCK_MONOTONIC);
    cs->wall_offset = px_now(CLOCK_REALTIME) - last_flush;
    cs->job_end = last_flush;
    cs->reaped_at = last_flush;
    int sh = 0; /* an sh task ran since the last tidy */
    for (;;) {
        /* run every whole frame we have */
        while (cs->in.len - cs->in.off >= sizeof(px_jobhdr)) {
            px_jobhdr h;
            memcpy(&h, cs->in.d + cs->in.off, sizeof h);
            size_t whole = sizeof h.len + (size_t)h.len;
            size_t body = (size_t)(h.nout == UINT32_MAX ? 0 : h.nout) +
                          (h.nscratch == UINT32_MAX ? 0 : h.nscratch) + h.nargs;
            if (h.len > PX_FRAME_MAX || whole != sizeof h + body || h.task >= cs->ex->plan->n_tasks)
                _exit(125); /* the parent sent garbage: it will notice the exit */
            if (cs->in.len - cs->in.off < whole) break;
            int64_t now = cs->job_end, *avg = &cs->task_ns[h.task];
            if (px_child_should_flush(cs, &h, last_flush)) {
                px_child_flush(cs);
                last_flush = now;
                px_child_tidy(cs, sh); /* a worker kept busy still tidies */
                sh = 0;
            }
            const plan_task *t = &cs->ex->plan->tasks[h.task];
            const uint8_t *jb = cs->in.d + cs->in.off + sizeof h; /* px_child_recv may move in */
            sh |= t->kind == TK_SH;
            if (cs->oneshot && (cs->setup_fail[0] || h.task != cs->oneshot_task))
                px_child_job(cs, &h, jb, cs->setup_fail[0] ? cs->setup_fail : "no secrets", 0);
            else if (t->run_as != PLAN_NONE && cs->root && !cs->ex->containers)
                px_child_job_as(cs, &h, jb, plan_str(cs->ex->plan, t->run_as));
            else
                px_child_job(cs, &h, jb, NULL, 0);
            if (cs->oneshot) { /* its one job: answer and end */
                px_child_flush(cs);
                _exit(0);
            }
            cs->nheld++;
            if (!t->cache) cs->held_effect = 1;
            int64_t took = cs->job_end - now;
            *avg = *avg ? *avg + (took - *avg) / 4 : (took > 0 ? took : 1);
            if (*avg <= 0) *avg = 1;
            cs->in.off += whole;
        }
        px_child_flush(cs);
        px_child_tidy(cs, sh);
        sh = 0;
        /* then wait for more */
        if (!px_child_recv(cs, 0)) continue;
        last_flush = cs->job_end = px_now(CLOCK_MONOTONIC);
        cs->wall_offset = px_now(CLOCK_REALTIME) - cs->job_end;
    }
}

/* ---- the parent: workers ---- */

static void px_worker_close(px_worker *w) {
    if (w->sock >= 0) close(w->sock);
    if (w->pidfd >= 0) close(w->pidfd);
    if (w->capfd >= 0) close(w->capfd);
    if (w->ctl) munmap(w->ctl, sizeof *w->ctl);
    w->sock = w->pidfd = w->capfd = -1;
    w->ctl = NULL;
    w->pid = 0;
    fcg_remove(&w->cg); /* its processes are gone (reaped, or never started) */
    w->eof = 0;
    w->killed = 0;
    w->bad_frame = 0;
    w->out.off = w->out.len = 0;
    w->in.off = w->in.len = 0;
}

/* Kill a live worker with everything it started: its process group, and the
 * groups of its children (sh commands run in process groups of their own). It
 * is stopped first, so it cannot start another child meanwhile. */
static void px_kill_tree(pid_t pid) {
    kill(-pid, SIGSTOP);
    px_kill_children(pid, 1);
    kill(-pid, SIGKILL);
}

/* In a just-forked worker of a run with secrets (secrets.c) or kept off other
 * environments' roots (isolate.c): a pid namespace of its own, and then, with
 * secrets, either the memfd of secret values closed (a pooled worker) or, in a
 * fresh worker, its task's secrets in a private tmpfs (a failure there fails its job
 * with the reason: cs->setup_fail). A worker that cannot get its namespace says why
 * in its log and ends (fsec_probe, or entering isolation, found before the run that
 * the kernel allows it). *parent becomes the worker's parent as it sees it. */
static void px_child_pidns(px_exec *ex, px_worker *w, px_child_state *cs, pid_t *parent) {
    char why[512];
    if (!w->oneshot && ex->sec && ex->sec->memfd >= 0) close(ex->sec->memfd);
    /* into the cgroup before the worker is forked below (the parent attaches only this
     * process, perhaps too late for its child) */
    if (w->cg.version && fcg_attach(&w->cg, getpid())) {
        dprintf(w->capfd, "flow: cannot move the worker into its cgroup\n");
        _exit(126);
    }
    if (fsec_enter_pidns(why, sizeof why)) {
        dprintf(w->capfd, "flow: %s\n", why);
        _exit(126);
    }
    *parent = getppid();
    if (!w->oneshot) return;
    cs->oneshot = 1;
    cs->oneshot_task = w->oneshot_task;
    const plan_task *t = &ex->plan->tasks[w->oneshot_task];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (t->run_as != PLAN_NONE && uid == 0) {
        struct passwd *pw = getpwnam(plan_str(ex->plan, t->run_as));
        if (pw) uid = pw->pw_uid, gid = pw->pw_gid; /* else px_become fails the job */
    }
    if (fsec_materialize(ex->sec, ex->plan, w->oneshot_task, uid, gid, why, sizeof why))
        snprintf(cs->setup_fail, sizeof cs->setup_fail, "%s", why);
}

/* Fork worker i. 0 on success; -1 with ex->spawn_err set. */
static int px_spawn(px_exec *ex, int i) {
    px_worker *w = &ex->w[i];
    int sv[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) goto fail;
    w->capfd = memfd_create("flow-capture", MFD_CLOEXEC);
    if (w->capfd < 0) goto fail;
    fcntl(w->capfd, F_SETFL, O_APPEND);
    w->ctl = mmap(NULL, sizeof *w->ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w->ctl == MAP_FAILED) {
        w->ctl = NULL;
        goto fail;
    }
    if (ex->limits) {
        char name[64], why[400];
        snprintf(name, sizeof name, "flow-%d-w%d-%u", (int)getpid(), i, ex->cg_gen++);
        if (fcg_create(&w->cg, name, why, sizeof why)) {
            snprintf(ex->spawn_err, sizeof ex->spawn_err,
                     "cannot start a worker process: no cgroup for memory:/max_procs: (%s)", why);
            errno = EPERM;
            goto fail_set;
        }
    }
    fflush(NULL); /* or the child would print the parent's buffered output again */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) goto fail;
    if (pid == 0) {
        close(sv[0]);
        for (int j = 0; j < ex->ntotal; j++) {
            if (j == i) continue;
            px_worker *o = &ex->w[j];
            if (o->sock >= 0) close(o->sock);
            if (o->pidfd >= 0) close(o->pidfd);
            if (o->capfd >= 0) close(o->capfd);
        }
        px_child_state cs;
        memset(&cs, 0, sizeof cs);
        if (ex->pidns) px_child_pidns(ex, w, &cs, &parent);
        cs.ex = ex;
        cs.sock = sv[1];
        cs.capfd = w->capfd;
        cs.ctl = w->ctl;
        cs.pid = getpid();
        cs.parent = parent;
        cs.root = geteuid() == 0;
        cs.cg = w->cg.version ? &w->cg : NULL;
        cs.enc.ctx = ex->plan->ctx;
        cs.args = malloc(sizeof(fl_val) * (ex->max_params + 1));
        cs.task_ns = calloc(ex->plan->n_tasks + 1, sizeof *cs.task_ns);
        if (!cs.args || !cs.task_ns) px_child_nomem(&cs);
        px_child_main(&cs);
    }
    setpgid(pid, pid); /* also done by the child; whichever runs first */
    close(sv[1]);
    if (w->cg.version && fcg_attach(&w->cg, pid)) {
        /* it would run its tasks without their limits: not at all, then */
        int e = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        close(sv[0]);
        sv[0] = -1;
        errno = e;
        snprintf(ex->spawn_err, sizeof ex->spawn_err,
                 "cannot start a worker process: cannot move it into its cgroup: %s",
                 strerror(errno));
        goto fail_set;
    }
    w->pid = pid;
    w->sock = sv[0];
    fcntl(w->sock, F_SETFL, O_NONBLOCK);
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return 0;
fail:
    snprintf(ex->spawn_err, sizeof ex->spawn_err, "cannot start a worker process: %s",
             strerror(errno));
fail_set:
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    w->sock = -1;
    px_worker_close(w);
    return -1;
}

/* ---- the parent: slots, queues, results ---- */

/* Room for n more jobs: a slot each, and room in the pending ring and the result
 * ring for every job held (any of them may go back to pending when its worker dies,
 * and each ends as one result). After it, nothing below allocates for a job. 0, or
 * -1 when memory ran out (what grew stays, nothing else changed). */
static int px_hold(px_exec *ex, uint32_t n) {
    fl_ctx *ctx = ex->plan->ctx;
    uint64_t held = (uint64_t)ex->pend_count + ex->inflight + n;
    if ((uint64_t)ex->nslots + n > ex->cap_slots) {
        uint64_t cap = ex->cap_slots ? ex->cap_slots : 256;
        while (cap < (uint64_t)ex->nslots + n)
            cap *= 2;
        if (cap > UINT32_MAX / 2) return -1;
        px_slot *ns = fl_reallocarray(ctx, ex->slots, cap, sizeof *ns);
        if (!ns) return -1;
        ex->slots = ns;
        ex->cap_slots = (uint32_t)cap;
    }
    if (held > ex->pend_cap) {
        uint64_t cap = ex->pend_cap ? ex->pend_cap : 1024;
        while (cap < held)
            cap *= 2;
        if (cap > UINT32_MAX / 2) return -1;
        uint32_t *np = fl_reallocarray(ctx, NULL, cap, sizeof *np);
        if (!np) return -1;
        for (uint32_t i = 0; i < ex->pend_count; i++)
            np[i] = ex->pend[(ex->pend_head + i) & (ex->pend_cap - 1)];
        fl_free(ctx, ex->pend);
        ex->pend = np;
        ex->pend_cap = (uint32_t)cap;
        ex->pend_head = 0;
    }
    if (ex->ready_count + held > ex->ready_cap) {
        size_t cap = ex->ready_cap ? ex->ready_cap : 256;
        while (cap < ex->ready_count + held)
            cap *= 2;
        rt_result *nr = fl_reallocarray(ctx, NULL, cap, sizeof *nr);
        uint32_t *nt = nr ? fl_reallocarray(ctx, NULL, cap, sizeof *nt) : NULL;
        if (!nt) {
            fl_free(ctx, nr);
            return -1;
        }
        for (size_t i = 0; i < ex->ready_count; i++) {
            size_t k = (ex->ready_head + i) % ex->ready_cap;
            nr[i] = ex->ready[k];
            nt[i] = ex->ready_task[k];
        }
        fl_free(ctx, ex->ready);
        fl_free(ctx, ex->ready_task);
        ex->ready = nr;
        ex->ready_task = nt;
        ex->ready_cap = cap;
        ex->ready_head = 0;
    }
    return 0;
}

/* A free slot (px_hold made room). */
static uint32_t px_slot_new(px_exec *ex) {
    if (ex->free_slot != UINT32_MAX) {
        uint32_t s = ex->free_slot;
        ex->free_slot = ex->slots[s].next_free;
        return s;
    }
    return ex->nslots++;
}

static void px_slot_free(px_exec *ex, uint32_t s) {
    if (ex->slots[s].timeout_ms > 0) ex->timed--;
    fl_free(ex->plan->ctx, ex->slots[s].frame);
    ex->slots[s].frame = NULL;
    ex->slots[s].next_free = ex->free_slot;
    ex->free_slot = s;
}

/* The pending ring has room for every job held (px_hold). */
static void px_pend_push_back(px_exec *ex, uint32_t s) {
    ex->pend[(ex->pend_head + ex->pend_count++) & (ex->pend_cap - 1)] = s;
}

static void px_pend_push_front(px_exec *ex, uint32_t s) {
    ex->pend_head = (ex->pend_head - 1) & (ex->pend_cap - 1);
    ex->pend[ex->pend_head] = s;
    ex->pend_count++;
}

static uint32_t px_pend_pop(px_exec *ex) {
    uint32_t s = ex->pend[ex->pend_head];
    ex->pend_head = (ex->pend_head + 1) & (ex->pend_cap - 1);
    ex->pend_count--;
    return s;
}

/* Queue a finished result for wait() (the ring has room: px_hold); frees the slot. */
static void px_ready(px_exec *ex, uint32_t slot, rt_result *r) {
    size_t k = (ex->ready_head + ex->ready_count++) % ex->ready_cap;
    r->id = ex->slots[slot].id;
    ex->ready[k] = *r;
    ex->ready_task[k] = ex->slots[slot].task;
    px_slot_free(ex, slot);
}

static void px_fail(px_exec *ex, uint32_t slot, const char *msg, char *log, int sig, pid_t pid,
                    double start) {
    rt_result r;
    memset(&r, 0, sizeof r);
    r.ok = 0;
    r.error = fl_strdup(ex->plan->ctx, msg); /* NULL: out of memory (exec.h) */
    r.log = log;
    r.term_signal = sig;
    r.worker_pid = (int)pid;
    r.end = (double)px_now(CLOCK_REALTIME) / 1e9;
    r.start = start > 0 ? start : r.end;
    px_ready(ex, slot, &r);
}

static uint32_t px_fifo_pop(px_worker *w) {
    uint32_t s = w->fifo[w->fhead];
    w->fhead = (w->fhead + 1) % PX_BATCH_MAX;
    w->fcount--;
    return s;
}

/* Parse the result frames in w->in. -1 when one is malformed. */
static int px_parse(px_exec *ex, px_worker *w) {
    const fl_plan *p = ex->plan;
    while (w->in.len - w->in.off >= sizeof(px_reshdr)) {
        px_reshdr h;
        memcpy(&h, w->in.d + w->in.off, sizeof h);
        size_t whole = sizeof h.len + (size_t)h.len;
        if (h.len > PX_FRAME_MAX || whole != sizeof h + (size_t)h.nvalue + h.nerror + h.nlog ||
            !w->fcount || w->fifo[w->fhead] != h.slot)
            return -1;
        if (w->in.len - w->in.off < whole) break;
        const uint8_t *b = w->in.d + w->in.off + sizeof h;
        px_slot *sl = &ex->slots[h.slot];
        const plan_task *t = &p->tasks[sl->task];
        rt_result r;
        memset(&r, 0, sizeof r);
        r.ok = h.ok;
        if (h.ok && t->ret != PLAN_NONE && p->types[t->ret].kind != PT_VOID) {
            size_t used = 0;
            if (fv_decode(p, t->ret, b, h.nvalue, &used, &r.value) || used != h.nvalue) {
                if (used != h.nvalue && used) fv_decref(p, t->ret, r.value);
                r.ok = 0;
                r.value.i = 0;
                r.error =
                    fl_strdup(p->ctx, "process executor: the result could not be decoded");
            }
        }
        if (!h.ok) r.error = fl_strndup(p->ctx, (const char *)b + h.nvalue, h.nerror);
        if (h.nlog) r.log = fl_strndup(p->ctx, (const char *)b + h.nvalue + h.nerror, h.nlog);
        r.worker_pid = (int)w->pid;
        r.term_signal = h.term_signal;
        r.start = h.start;
        r.end = h.end;
        r.peak_rss_kb = h.peak_rss_kb;
        r.cpu_ns = h.cpu_ns;
        r.cpu_known = h.cpu_known;
        int64_t dur = (int64_t)((h.end - h.start) * 1e9);
        ex->avg_ns = ex->avg_ns ? ex->avg_ns + (dur - ex->avg_ns) / 8 : (dur > 0 ? dur : 1);
        if (ex->avg_ns <= 0) ex->avg_ns = 1;
        px_fifo_pop(w);
        ex->inflight--;
        w->deaths = 0;
        px_ready(ex, h.slot, &r);
        w->in.off += whole;
    }
    px_compact(&w->in);
    return 0;
}

/* Read what the worker sent. Sets w->eof at end of file. */
static void px_read(px_exec *ex, px_worker *w) {
    for (;;) {
        if (px_reserve(ex->plan->ctx, &w->in, PX_READ_CHUNK)) { /* as a malformed frame */
            px_nomem(ex);
            if (!w->bad_frame) px_kill_tree(w->pid);
            w->bad_frame = PX_NOMEM;
            w->in.off = w->in.len = 0;
            break;
        }
        ssize_t k = recv(w->sock, w->in.d + w->in.len, w->in.cap - w->in.len, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            w->eof = 1;
            break;
        }
        if (k < 0) break;
        w->in.len += (size_t)k;
        if (px_parse(ex, w)) {
            if (!w->bad_frame) px_kill_tree(w->pid);
            w->bad_frame = 1;
            w->in.off = w->in.len = 0;
            break;
        }
        if ((size_t)k < PX_READ_CHUNK) break;
    }
}

/* Send queued frames without blocking. */
static void px_write(px_worker *w) {
    while (w->out.off < w->out.len) {
        ssize_t k = send(w->sock, w->out.d + w->out.off, w->out.len - w->out.off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR) continue;
            break; /* EAGAIN: later; EPIPE: the death is handled through the pidfd */
        }
        w->out.off += (size_t)k;
    }
    px_compact(&w->out);
}

static int px_alive(const px_exec *ex) {
    int n = 0;
    for (int i = 0; i < ex->nworkers; i++)
        n += ex->w[i].pid > 0;
    return n;
}

/* Give pending jobs to workers that are running low. */
static void px_dispatch(px_exec *ex) {
    if (!ex->pend_count) return;
    int alive = px_alive(ex);
    if (!alive) return;
    uint64_t total = ex->pend_count + ex->inflight;
    uint64_t limit = (total + (uint64_t)alive - 1) / (uint64_t)alive;
    uint64_t by_time = ex->avg_ns ? (uint64_t)(PX_BATCH_NS / ex->avg_ns) : PX_BATCH_START;
    if (by_time < 2) by_time = 2;
    if (by_time < PX_DEPTH && ex->avg_ns && ex->avg_ns < PX_HOLD_NS) by_time = PX_DEPTH;
    if (limit > by_time) limit = by_time;
    if (limit > PX_BATCH_MAX) limit = PX_BATCH_MAX;
    if (limit < 1) limit = 1;
    for (int i = 0; i < ex->nworkers && ex->pend_count; i++) {
        px_worker *w = &ex->w[i];
        if (w->pid <= 0 || w->eof || w->fcount > limit / 2) continue;
        while (w->fcount < limit && ex->pend_count) {
            uint32_t s = px_pend_pop(ex);
            if (px_put(ex->plan->ctx, &w->out, ex->slots[s].frame, ex->slots[s].nframe)) {
                px_nomem(ex);
                if (w->fcount || w->out.len > w->out.off) {
                    px_pend_push_front(ex, s); /* later, when the buffer has drained */
                } else {
                    px_fail(ex, s, PX_NOMEM_MSG, NULL, 0, 0, 0); /* it would never go */
                }
                break;
            }
            w->fifo[(w->fhead + w->fcount++) % PX_BATCH_MAX] = s;
            ex->inflight++;
        }
        px_write(w);
    }
}

/* A worker has died (or is dying): account for its jobs, reap it, replace it. */
static void px_reap(px_exec *ex, int i, int respawn) {
    px_worker *w = &ex->w[i];
    if (!w->eof && !w->bad_frame) px_read(ex, w); /* results it sent before dying */
    kill(-w->pid, SIGKILL); /* it may still run (socket closed by a task), and its
                               group may hold what its task started */
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
    uint32_t running = atomic_load_explicit(&w->ctl->running, memory_order_acquire);
    double start = (double)atomic_load_explicit(&w->ctl->start_wall, memory_order_relaxed) / 1e9;
    if (w->killed && w->killed != running) running = 0; /* it finished as we killed it */

    char msg[200];
    int sig = 0;
    if (w->bad_frame == PX_NOMEM || atomic_load(&w->ctl->nomem)) {
        snprintf(msg, sizeof msg, "%s", PX_NOMEM_MSG);
    } else if (w->bad_frame) {
        snprintf(msg, sizeof msg, "process executor: worker %d sent a malformed result",
                 (int)w->pid);
    } else if (w->killed && running) {
        char d[32];
        px_fmt_duration(d, sizeof d, ex->slots[running - 1].timeout_ms);
        snprintf(msg, sizeof msg, "timed out after %s", d);
        sig = SIGKILL;
    } else {
        px_status_text(status, msg, sizeof msg, &sig);
        const plan_task *t = running ? &ex->plan->tasks[ex->slots[running - 1].task] : NULL;
        if (t && t->memory && sig == SIGKILL && fcg_oom_kills(&w->cg) > 0) {
            char size[32];
            fcg_fmt_size(size, sizeof size, t->memory);
            snprintf(msg, sizeof msg, "exceeded memory limit (%s): the worker was killed", size);
        }
    }
    if (w->oneshot && !running && w->fcount) running = w->fifo[w->fhead] + 1; /* never elsewhere */
    if (!w->bad_frame && !(w->killed && running) && WIFSIGNALED(status)) {
        int f = atomic_load(&w->ctl->fatal); /* a pid-1 worker's own signal */
        if (f > 0 && f < 65) {
            sig = f;
            snprintf(msg, sizeof msg, "worker killed by signal %d (%s)", f, px_signame(f));
        }
    }
    if (!running && w->fcount && !w->bad_frame && ++w->deaths >= PX_DEATHS_MAX)
        running = w->fifo[w->fhead] + 1; /* it keeps dying on this one: stop retrying it */
    if (w->bad_frame && !running && w->fcount) running = w->fifo[w->fhead] + 1;

    /* back to the front of the queue in their original order, except the one to blame */
    uint32_t back[PX_BATCH_MAX], nback = 0;
    while (w->fcount) {
        uint32_t s = px_fifo_pop(w);
        ex->inflight--;
        if (s + 1 == running) {
            off_t size = lseek(w->capfd, 0, SEEK_END);
            char *log = px_read_tail(ex->plan->ctx, w->capfd, size);
            px_fail(ex, s, msg, log, sig, w->pid, start);
            w->deaths = 0;
        } else {
            back[nback++] = s;
        }
    }
    while (nback)
        px_pend_push_front(ex, back[--nback]);
    px_worker_close(w);
    if (respawn) px_spawn(ex, i);
}

/* Kill the workers whose running job has passed its deadline. Returns the ms until
 * the next deadline that could pass (INT64_MAX: none). */
static int64_t px_deadlines(px_exec *ex) {
    int64_t now = px_now(CLOCK_MONOTONIC), next = INT64_MAX;
    if (!ex->timed) return next;
    for (int i = 0; i < ex->ntotal; i++) {
        px_worker *w = &ex->w[i];
        if (w->pid <= 0 || w->killed || !w->fcount) continue;
        uint32_t running = atomic_load_explicit(&w->ctl->running, memory_order_acquire);
        int64_t start = atomic_load_explicit(&w->ctl->start_mono, memory_order_relaxed);
        if (running > ex->nslots) running = 0; /* the page is writable by the task */
        if (running) {
            const px_slot *sl = &ex->slots[running - 1];
            int64_t to = sl->timeout_ms;
            if (to > 0) {
                /* sh commands (also inside a combine) are timed by rt_call_task itself,
                 * which keeps the worker; this is the backstop */
                if (ex->plan->tasks[sl->task].kind != TK_C) to += PX_SH_GRACE_MS;
                int64_t left = start + to * 1000000 - now;
                if (left <= 0) {
                    w->killed = running;
                    px_kill_tree(w->pid);
                    continue;
                }
                if (left / 1000000 + 1 < next) next = left / 1000000 + 1;
            }
        }
        /* a job still queued cannot time out sooner than its own timeout from now */
        for (uint32_t k = 0; k < w->fcount; k++) {
            int64_t to = ex->slots[w->fifo[(w->fhead + k) % PX_BATCH_MAX]].timeout_ms;
            if (to > 0 && to < next) next = to;
        }
    }
    return next;
}

/* Workers that could not be started: try again; with none at all, fail what waits. */
static void px_keep_pool(px_exec *ex) {
    for (int i = 0; i < ex->nworkers; i++)
        if (ex->w[i].pid <= 0) px_spawn(ex, i);
    if (px_alive(ex)) return;
    while (ex->pend_count)
        px_fail(ex, px_pend_pop(ex), ex->spawn_err, NULL, 0, 0, 0);
}

/* Start a fresh worker for each job of a task with secrets, while there are places. */
static void px_start_secret(px_exec *ex) {
    for (int i = ex->nworkers; i < ex->ntotal && ex->sec_count; i++) {
        px_worker *w = &ex->w[i];
        if (w->pid > 0) continue;
        uint32_t s = ex->sec_head;
        ex->sec_head = ex->slots[s].next_free;
        ex->sec_count--;
        w->oneshot_task = ex->slots[s].task;
        if (px_spawn(ex, i)) {
            px_fail(ex, s, ex->spawn_err, NULL, 0, 0, 0);
            continue;
        }
        if (px_put(ex->plan->ctx, &w->out, ex->slots[s].frame, ex->slots[s].nframe)) {
            px_nomem(ex);
            px_fail(ex, s, PX_NOMEM_MSG, NULL, 0, 0, 0);
            px_kill_tree(w->pid); /* it would wait for a job forever; reaped as usual */
            continue;
        }
        w->fifo[(w->fhead + w->fcount++) % PX_BATCH_MAX] = s;
        ex->inflight++;
        px_write(w);
    }
}

/* ---- the executor interface ---- */

/* All or nothing: -1 (out of memory, or a job of no task) takes none of the jobs. */
static int px_submit(rt_executor *base, const rt_job *jobs, int n) {
    px_exec *ex = (px_exec *)base;
    const fl_plan *p = ex->plan;
    for (int j = 0; j < n; j++)
        if (jobs[j].task >= p->n_tasks) return -1;
    if (n > 0 && px_hold(ex, (uint32_t)n)) return px_nomem(ex);
    for (int j = 0; j < n; j++) {
        const rt_job *job = &jobs[j];
        const plan_task *t = &p->tasks[job->task];
        ex->enc.len = 0;
        ex->enc.failed = false;
        for (uint32_t k = 0; k < t->nparams; k++)
            fv_encode(p, p->params[t->first_param + k].type, job->args[k], &ex->enc);
        px_jobhdr h = {0};
        size_t nout = job->out_dir ? strlen(job->out_dir) : 0;
        size_t nscr = job->scratch_dir ? strlen(job->scratch_dir) : 0;
        uint32_t s = px_slot_new(ex);
        h.slot = s;
        h.id = job->id;
        h.task = job->task;
        h.nout = job->out_dir ? (uint32_t)nout : UINT32_MAX;
        h.nscratch = job->scratch_dir ? (uint32_t)nscr : UINT32_MAX;
        h.nargs = (uint32_t)ex->enc.len;
        h.map_index = job->map_index;
        h.timeout_ms = job->timeout_ms;
        size_t total = sizeof h + nout + nscr + ex->enc.len;
        px_slot *sl = &ex->slots[s];
        sl->id = job->id;
        sl->task = job->task;
        sl->timeout_ms = job->timeout_ms;
        sl->frame = NULL;
        if (job->timeout_ms > 0) ex->timed++;
        if (total > PX_FRAME_MAX) {
            px_fail(ex, s,
                    "the arguments are too large for the process executor (over 1 GiB "
                    "encoded)",
                    NULL, 0, 0, 0);
            continue;
        }
        h.len = (uint32_t)(total - sizeof h.len);
        uint8_t *f = ex->enc.failed ? NULL : fl_malloc(p->ctx, total);
        if (!f) { /* this job fails; the others go on */
            px_nomem(ex);
            px_fail(ex, s, PX_NOMEM_MSG, NULL, 0, 0, 0);
            continue;
        }
        memcpy(f, &h, sizeof h);
        if (nout) memcpy(f + sizeof h, job->out_dir, nout);
        if (nscr) memcpy(f + sizeof h + nout, job->scratch_dir, nscr);
        if (ex->enc.len) memcpy(f + sizeof h + nout + nscr, ex->enc.data, ex->enc.len);
        sl = &ex->slots[s];
        sl->frame = f;
        sl->nframe = total;
        if (!ex->sec_task[job->task]) {
            px_pend_push_back(ex, s);
        } else if (!ex->sec) {
            px_fail(ex, s,
                    "the task declares secrets, and this run has none to give it (flowrun "
                    "reads them from flow.yaml)",
                    NULL, 0, 0, 0);
        } else { /* a fresh worker of its own (px_start_secret) */
            sl->next_free = UINT32_MAX;
            if (ex->sec_count++) ex->slots[ex->sec_tail].next_free = s;
            else ex->sec_head = s;
            ex->sec_tail = s;
        }
    }
    px_start_secret(ex);
    /* start idle workers now; busy ones are refilled in bulk by wait() */
    for (int i = 0; i < ex->nworkers; i++)
        if (ex->w[i].pid > 0 && !ex->w[i].fcount) {
            px_dispatch(ex);
            break;
        }
    return 0;
}

static int px_take(px_exec *ex, rt_result *out, int max) {
    int n = 0;
    while (n < max && ex->ready_count) {
        out[n++] = ex->ready[ex->ready_head];
        ex->ready_head = (ex->ready_head + 1) % ex->ready_cap;
        ex->ready_count--;
    }
    return n;
}

static int px_wait(rt_executor *base, rt_result *out, int max, int timeout_ms) {
    px_exec *ex = (px_exec *)base;
    if (max <= 0) return 0;
    int64_t until = timeout_ms < 0 ? INT64_MAX : px_now(CLOCK_MONOTONIC) + timeout_ms * 1000000LL;
    for (;;) {
        if (ex->ready_count) return px_take(ex, out, max);
        if (!ex->pend_count && !ex->inflight && !ex->sec_count) return 0;
        if (px_alive(ex) < ex->nworkers) px_keep_pool(ex);
        px_dispatch(ex);
        px_start_secret(ex);
        if (ex->ready_count) continue;

        int64_t next = px_deadlines(ex);
        int64_t now = px_now(CLOCK_MONOTONIC);
        int64_t wait_ms = until == INT64_MAX ? -1 : (until - now + 999999) / 1000000;
        if (wait_ms < -1) wait_ms = 0;
        if (next != INT64_MAX && (wait_ms < 0 || next < wait_ms)) wait_ms = next;
        if (wait_ms > INT32_MAX) wait_ms = INT32_MAX;

        int nfd = 0;
        for (int i = 0; i < ex->ntotal; i++) {
            px_worker *w = &ex->w[i];
            struct pollfd *a = &ex->pfd[2 * i], *b = &ex->pfd[2 * i + 1];
            a->fd = w->pid > 0 && !w->eof ? w->sock : -1;
            a->events = POLLIN | (w->out.off < w->out.len ? POLLOUT : 0);
            a->revents = 0;
            b->fd = w->pid > 0 ? w->pidfd : -1;
            b->events = POLLIN;
            b->revents = 0;
            nfd += 2;
        }
        int r = poll(ex->pfd, (nfds_t)nfd, (int)wait_ms);
        if (r < 0 && errno != EINTR) return 0;
        for (int i = 0; r > 0 && i < ex->ntotal; i++) {
            px_worker *w = &ex->w[i];
            short ra = ex->pfd[2 * i].revents, rb = ex->pfd[2 * i + 1].revents;
            if (w->pid <= 0) continue;
            if (ra & (POLLIN | POLLHUP | POLLERR)) px_read(ex, w);
            if ((ra & POLLOUT) && w->pid > 0) px_write(w);
            if ((rb & POLLIN) || (w->eof && w->pidfd < 0)) px_reap(ex, i, !w->oneshot);
        }
        px_deadlines(ex);
        if (!ex->ready_count && px_now(CLOCK_MONOTONIC) >= until) return 0;
    }
}

static void px_destroy(rt_executor *base) {
    px_exec *ex = (px_exec *)base;
    if (!ex) return;
    fl_ctx *c = ex->plan->ctx;
    for (int i = 0; i < ex->ntotal; i++)
        if (ex->w[i].pid > 0) px_kill_tree(ex->w[i].pid);
    for (int i = 0; i < ex->ntotal; i++) {
        px_worker *w = &ex->w[i];
        if (w->pid > 0)
            while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR) {
            }
        w->fcount = 0;
        px_worker_close(w);
        px_bytes_free(c, &w->in);
        px_bytes_free(c, &w->out);
    }
    while (ex->ready_count) {
        size_t k = ex->ready_head;
        rt_result_clear(ex->plan, ex->ready_task[k], &ex->ready[k]);
        ex->ready_head = (ex->ready_head + 1) % ex->ready_cap;
        ex->ready_count--;
    }
    for (uint32_t s = 0; s < ex->nslots; s++)
        fl_free(c, ex->slots[s].frame);
    fl_free(c, ex->slots);
    fl_free(c, ex->pend);
    fl_free(c, ex->ready);
    fl_free(c, ex->ready_task);
    fl_free(c, ex->enc.data);
    fl_free(c, ex->pfd);
    fl_free(c, ex->w);
    fl_free(c, ex->ro_dir);
    fl_free(c, ex->sec_task);
    fl_free(c, ex);
}

static const rt_executor_ops px_ops = {"process", px_submit, px_wait, px_destroy};

static void px_run_call_task(void *ctx, const rt_job *job, rt_result *res) {
    rt_call_task((rt_runtime *)ctx, job, res);
}

static rt_executor *px_create(const fl_plan *plan, int nworkers, rt_job_runner run, void *ctx,
                              const char *ro_dir, const fsec_set *sec, int pidns,
                              int containers) {
    if (!plan || !run) {
        errno = EINVAL;
        return NULL;
    }
    if (nworkers < 1) nworkers = 1;
    if (nworkers > PX_MAX_WORKERS) nworkers = PX_MAX_WORKERS;
    fl_ctx *c = plan->ctx;
    px_exec *ex = fl_calloc(c, 1, sizeof *ex);
    if (!ex) return NULL;
    ex->plan = plan;
    ex->run = run;
    ex->run_ctx = ctx;
    ex->nworkers = nworkers;
    ex->free_slot = UINT32_MAX;
    ex->enc.ctx = c;
    ex->ro_dir = ro_dir ? fl_strdup(c, ro_dir) : NULL;
    ex->sec = sec;
    ex->pidns = sec || pidns;
    ex->containers = containers;
    ex->ntotal = sec ? 2 * nworkers : nworkers;
    ex->w = fl_calloc(c, (size_t)ex->ntotal, sizeof *ex->w);
    ex->pfd = fl_calloc(c, 2 * (size_t)ex->ntotal, sizeof *ex->pfd);
    ex->sec_task = fl_calloc(c, plan->n_tasks + 1, 1);
    if ((ro_dir && !ex->ro_dir) || !ex->w || !ex->pfd || !ex->sec_task) {
        fl_free(c, ex->ro_dir);
        fl_free(c, ex->w);
        fl_free(c, ex->pfd);
        fl_free(c, ex->sec_task);
        fl_free(c, ex);
        errno = ENOMEM;
        return NULL;
    }
    ex->base.ops = &px_ops;
    ex->base.queued = PX_DEPTH - 1;
    for (uint32_t t = 0; t < plan->n_tasks; t++) {
        if (plan->tasks[t].nparams > ex->max_params) ex->max_params = plan->tasks[t].nparams;
        if ((plan->tasks[t].memory || plan->tasks[t].max_procs) && !containers) ex->limits = 1;
        ex->sec_task[t] = plan_task_has_secret(plan, t, NULL);
    }
    for (int i = 0; i < ex->ntotal; i++) {
        px_worker *w = &ex->w[i];
        w->sock = w->pidfd = w->capfd = -1;
        w->oneshot = i >= nworkers;
    }
    for (int i = 0; i < nworkers; i++)
        px_spawn(ex, i);
    if (!px_alive(ex)) {
        int e = errno;
        px_destroy(&ex->base);
        errno = e;
        return NULL;
    }
    return &ex->base;
}

rt_executor *rt_executor_process_with(const fl_plan *plan, int nworkers, rt_job_runner run,
                                      void *ctx) {
    return px_create(plan, nworkers, run, ctx, NULL, NULL, 0, 0);
}

rt_executor *rt_executor_process_sec(rt_runtime *rt, int nworkers, const char *ro_dir,
                                     const fsec_set *sec, int pidns) {
    if (!rt) {
        errno = EINVAL;
        return NULL;
    }
    return px_create(rt_plan(rt), nworkers, px_run_call_task, rt, ro_dir, sec, pidns, 0);
}

rt_executor *rt_executor_process_containers(rt_runtime *rt, int nworkers,
                                            const fsec_set *sec) {
    if (!rt) {
        errno = EINVAL;
        return NULL;
    }
    return px_create(rt_plan(rt), nworkers, px_run_call_task, rt, NULL, sec, 0, 1);
}

rt_executor *rt_executor_process_ro(rt_runtime *rt, int nworkers, const char *ro_dir) {
    return rt_executor_process_sec(rt, nworkers, ro_dir, NULL, 0);
}

rt_executor *rt_executor_process(rt_runtime *rt, int nworkers) {
    return rt_executor_process_ro(rt, nworkers, NULL);
}
