/*
 * exec_inline.c — the inline executor: task instances run in threads of
 * flowrun itself.
 *
 * DESIGN
 *   One queue of submitted jobs and one list of finished results, under one
 *   mutex. A runner (a worker thread, or the scheduler's own thread while it is
 *   inside wait) takes a RUN of jobs per lock — as many as fit in a time budget
 *   given the average job duration seen so far (RUN_BUDGET_NS), at most
 *   RUN_MAX, and no more than its share of what is queued — runs them without
 *   the lock, and hands all their results back under one lock. So trivial jobs
 *   cost one lock per few hundred, and slow jobs (sh commands) are spread one
 *   at a time across runners.
 *
 *   Nobody is woken per job: submit signals the work condvar only when a
 *   worker sleeps on it, and a finished run signals the done condvar only when
 *   the scheduler sleeps on it. nthreads - 1 worker threads are started; the
 *   scheduler's thread is the nth runner whenever it waits, so with
 *   nthreads == 1 there are no threads at all and every job runs in wait()
 *   with no hand-over between threads.
 *
 *   A wait with nothing queued, nothing running and nothing finished returns 0
 *   at once (nothing could ever complete).
 *
 * RUN_AS
 *   One process has one identity, so when flowrun is root a job of a task with
 *   run_as naming another user (a combined task's own run_as included) does not
 *   run in a thread: it goes to a small process pool this executor owns
 *   (rt_executor_process_ro, at most INLINE_AS_WORKERS workers), which switches
 *   identity per job as the process executor does, hands the job's folders to
 *   that user, shows the store read-only and enforces the job's timeout. Every
 *   other job runs inline as before. The pool is started with the executor,
 *   before any runner thread exists (a fork while runners are inside task code
 *   could copy a lock a task holds into the workers), and only when the plan
 *   has such a task: a plan without one starts no process. (A worker the pool
 *   replaces later, after a timeout killed one, is forked while runners may be
 *   inside task code: a task library's lock held at that moment stays held in
 *   that worker, and a run_as task that takes it waits for its timeout. Rare,
 *   and bounded; not solved here.) The pool's workers run beside the -j
 *   runners, so a mixed run may have up to -j + INLINE_AS_WORKERS jobs
 *   running. Only the scheduler's thread touches the pool (submit and wait),
 *   and wait collects from both sides: it blocks on the pool when no inline
 *   job is queued or running, and else looks at the pool every
 *   INLINE_AS_POLL_MS while it sleeps on done_cv.
 *   When flowrun is not root nothing is routed: refuse.c has already refused a
 *   run_as naming another user, and one naming flowrun's user runs inline.
 *
 * CRASHES
 *   A task runs inside flowrun here, so its segfault or exit() would end
 *   flowrun with the run left `running` (and exit(3) would read as
 *   "interrupted"). Each runner thread notes the job it is running in a
 *   thread-local and has an alternate signal stack. The handlers themselves
 *   belong to the program (flowrun's are in cli_crash.c: libflow installs no
 *   handler and never exits): once armed, fatal-signal handlers and an atexit
 *   hook ask rt_inline_crash_describe whether the thread is inside a task and
 *   get the marker line and the stderr line, formatted here. Inside a task they
 *   do only async-signal-safe work: write the marker file (one line naming the
 *   instance), write one line to stderr, _exit(1). The next state_open turns
 *   the marker into the run's failed state. Caught: SIGSEGV SIGBUS SIGFPE SIGILL
 *   SIGABRT SIGSYS (a stack overflow too: runners have an alternate signal
 *   stack) and exit() with any code (it runs the atexit hooks). Not caught:
 *   _exit(), quick_exit(), SIGKILL (the kernel's OOM killer). A forked child
 *   of a task (another pid) is left alone. docs/executors.md says the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "exec_process.h"
#include "rtcore.h"

/* Most jobs one runner takes per lock. */
#define RUN_MAX 512
/* A run is sized to take about this long, from the average job duration. */
#define RUN_BUDGET_NS 200000.0
/* Most threads an inline executor starts. */
#define INLINE_MAX_THREADS 256
/* The tasks run inside flowrun: an instance's peak RSS is flowrun's, which no
 * instance can be told apart in. It is read (getrusage) at most this often, not per
 * instance: with slow tasks a run holds one job, and the read cost more than the
 * scheduler's share of it. Peak RSS only grows, so the figure is at most this late. */
#define INLINE_RSS_SECONDS 0.1
/* CPU time: the tasks run on flowrun's threads, so a job's CPU is its thread's CPU
 * clock over the job. Reading that clock is a system call (0.6-1.4 us), more than a
 * trivial job, so it is read around a sample of runs, not around each job: one run in
 * INLINE_CPU_EVERY of each runner (its first among them), the first run of each
 * task's jobs, and a run expected to take INLINE_CPU_NS or more when its runner
 * measured none in the last INLINE_CPU_GAP seconds (a slow run's two reads, ≈ 2.7 us
 * on a virtual machine, were a sixth of flowrun's own CPU for a job of 1 ms; a job of
 * 10 ms or more is still measured every time). A measured run's CPU is shared among
 * its jobs by their wall time (an sh job's CPU is its command's, from wait4, and is not
 * shared); the recorder scales each task's measured CPU by its instances' total wall
 * time over their measured wall time (history.c, "task CPU"). */
#define INLINE_CPU_EVERY 16
#define INLINE_CPU_NS 1e6
#define INLINE_CPU_GAP 0.01
/* Most workers of the pool that runs run_as jobs (see RUN_AS above). */
#define INLINE_AS_WORKERS 4
/* While inline jobs run and pool jobs are out, the pool is looked at this often. */
#define INLINE_AS_POLL_MS 1

typedef struct done_item {
    rt_result r;   /* the result */
    uint32_t task; /* its job's task (to release the value on destroy) */
} done_item;

typedef struct inline_ex {
    rt_executor base;       /* ops (must be first) */
    rt_runtime *rt;         /* runs the jobs */
    int nthreads;           /* runners, the waiting scheduler included */
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t work_cv; /* workers sleep here when the queue is empty */
    pthread_cond_t done_cv; /* the scheduler sleeps here in wait */
    rt_job *q;              /* queued jobs: q[qhead .. qtail) */
    size_t qhead, qtail;    /* queue bounds */
    size_t qcap;            /* allocated slots in q */
    done_item *done;        /* finished, not yet returned: done[dhead .. ndone) */
    size_t dhead;           /* first result not yet returned */
    size_t ndone, capdone;  /* end of the results / slots allocated */
    size_t running;         /* jobs taken by runners, not yet finished */
    int sleeping;           /* workers waiting on work_cv */
    int waiting;            /* 1 while the scheduler waits on done_cv */
    int stop;               /* destroy was called */
    double avg_ns;          /* running average of one job's duration */
    int64_t rss_kb;         /* flowrun's peak RSS as last read, KiB */
    double rss_at;          /* when it was read (rt_now), 0: never */
    pthread_t *threads;     /* nthreads - 1 workers */
    int nstarted;           /* how many were started */
    rt_executor *as_ex;     /* the pool for run_as jobs (see RUN_AS), or NULL */
    unsigned char *as_task; /* per plan task: 1 when its jobs go to as_ex */
    unsigned char *cpu_seen; /* per plan task: a run of its jobs had its CPU read */
    size_t as_out;          /* jobs given to as_ex, results not yet returned */
} inline_ex;

/* ---- crash reporting (see CRASHES above) ---------------------------------------- */
#define CRASH_ALTSTACK (64 * 1024)
static __thread const rt_job *tl_job;        /* the job this thread is running, or NULL */
static __thread const fl_plan *tl_plan;    /* its plan */
static __thread unsigned tl_runs;          /* runs this thread has run (CPU samples) */
static __thread double tl_cpu_at;          /* when it last measured a slow run (rt_now) */

/* async-signal-safe text building */
static size_t cs_put(char *b, size_t n, size_t cap, const char *s) {
    while (*s && n + 1 < cap)
        b[n++] = *s++;
    b[n] = 0;
    return n;
}

static size_t cs_int(char *b, size_t n, size_t cap, int64_t v) {
    char d[24];
    int k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        d[k++] = (char)('0' + u % 10);
    while ((u /= 10) && k < 22);
    if (v < 0) d[k++] = '-';
    while (k && n + 1 < cap)
        b[n++] = d[--k];
    b[n] = 0;
    return n;
}

static const char *crash_sig_name(int sig) {
    switch (sig) {
        case SIGSEGV: return "signal 11, Segmentation fault";
        case SIGBUS: return "signal 7, Bus error";
        case SIGFPE: return "signal 8, Floating point exception";
        case SIGILL: return "signal 4, Illegal instruction";
        case SIGABRT: return "signal 6, Aborted";
        default: return "signal 31, Bad system call";
    }
}

int rt_inline_crash_describe(int sig, int64_t run, char *marker, size_t mcap, char *line,
                             size_t lcap) {
    const rt_job *job = tl_job;
    if (!job || !tl_plan || mcap < 2 || !lcap) return -1;
    char *m = marker;
    size_t n = cs_put(m, 0, mcap, "task ");
    n = cs_put(m, n, mcap, plan_str(tl_plan, tl_plan->tasks[job->task].name));
    if (job->map_index >= 0) {
        n = cs_put(m, n, mcap, "[");
        n = cs_int(m, n, mcap, job->map_index);
        n = cs_put(m, n, mcap, "]");
    }
    if (sig) {
        n = cs_put(m, n, mcap, " crashed flowrun (");
        n = cs_put(m, n, mcap, crash_sig_name(sig));
        n = cs_put(m, n, mcap, ") under the inline executor");
    } else {
        n = cs_put(m, n, mcap, " called exit() under the inline executor");
    }
    size_t k = cs_put(line, 0, lcap, "flowrun: run ");
    k = cs_int(line, k, lcap, run);
    k = cs_put(line, k, lcap, ": ");
    k = cs_put(line, k, lcap, m);
    k = cs_put(line, k, lcap, "; the run is failed (--executor process contains crashes)\n");
    (void)k;
    cs_put(m, n, mcap, "\n");
    return 0;
}

/* An alternate signal stack for this runner thread, so a task's stack overflow
 * still reaches the handler. Returns what to free when the thread ends. */
static void *crash_altstack(void) {
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return NULL;
    void *mem = malloc(CRASH_ALTSTACK);
    if (!mem) return NULL;
    stack_t ss = {.ss_sp = mem, .ss_size = CRASH_ALTSTACK, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        free(mem);
        return NULL;
    }
    return mem;
}

static void crash_altstack_free(void *mem) {
    if (!mem) return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(mem);
}

/* How many jobs a runner takes now (mu held, queue not empty). */
static size_t run_size(const inline_ex *ex) {
    size_t avail = ex->qtail - ex->qhead;
    double by_time = ex->avg_ns > 0 ? RUN_BUDGET_NS / ex->avg_ns : 64;
    size_t k = by_time < 1 ? 1 : by_time > RUN_MAX ? RUN_MAX : (size_t)by_time;
    size_t share = (avail + (size_t)ex->nthreads - 1) / (size_t)ex->nthreads;
    if (k > share) k = share;
    if (k > avail) k = avail;
    return k ? k : 1;
}

/* Take a run (mu held), run it (mu released meanwhile), store the results
 * (mu held again). */
static void take_and_run(inline_ex *ex) {
    rt_job jobs[RUN_MAX];
    done_item res[RUN_MAX];
    size_t k = run_size(ex);
    memcpy(jobs, ex->q + ex->qhead, k * sizeof *jobs);
    ex->qhead += k;
    ex->running += k;
    int first = k && !ex->cpu_seen[jobs[0].task]; /* a task's first run is measured */
    if (first) ex->cpu_seen[jobs[0].task] = 1;
    pthread_mutex_unlock(&ex->mu);

    double t0 = rt_now(), at = t0;
    size_t ran = 0;
    tl_plan = rt_plan(ex->rt);
    struct timespec c0, c1;
    int slow = (double)k * ex->avg_ns >= INLINE_CPU_NS && t0 - tl_cpu_at >= INLINE_CPU_GAP;
    int cpu = (first || (tl_runs++ % INLINE_CPU_EVERY) == 0 || slow) &&
              clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0) == 0;
    if (cpu) tl_cpu_at = t0;
    for (; ran < k; ran++) {
        if (ran && __atomic_load_n(&ex->stop, __ATOMIC_RELAXED)) break;
        tl_job = &jobs[ran];
        rt_call_task_from(ex->rt, &jobs[ran], &res[ran].r, at);
        tl_job = NULL;
        res[ran].task = jobs[ran].task;
        at = res[ran].r.end;
    }
    double per = ran ? (at - t0) * 1e9 / (double)ran : 0;
    if (cpu && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1) == 0) {
        double ns = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
        double wall = 0;
        for (size_t i = 0; i < ran; i++)
            if (!res[i].r.cpu_known) wall += res[i].r.end - res[i].r.start;
        for (size_t i = 0; i < ran; i++) {
            if (res[i].r.cpu_known) continue;
            double share = wall > 0 ? (res[i].r.end - res[i].r.start) / wall : 1.0 / (double)ran;
            res[i].r.cpu_ns = (int64_t)(ns * share);
            res[i].r.cpu_known = 1;
        }
    }

    pthread_mutex_lock(&ex->mu);
    struct rusage ru; /* the worker is flowrun itself: its peak, read now and then */
    if ((ex->rss_at == 0 || at - ex->rss_at >= INLINE_RSS_SECONDS) && ran &&
        getrusage(RUSAGE_SELF, &ru) == 0) {
        ex->rss_kb = ru.ru_maxrss;
        ex->rss_at = at;
    }
    for (size_t i = 0; i < ran; i++) /* an sh command's own peak (rtcore.h) stays */
        if (!res[i].r.peak_rss_kb) res[i].r.peak_rss_kb = ex->rss_kb;
    ex->avg_ns = ex->avg_ns > 0 ? ex->avg_ns * 0.75 + per * 0.25 : per;
    if (ex->dhead == ex->ndone) ex->dhead = ex->ndone = 0;
    if (ex->ndone + ran > ex->capdone && ex->dhead) { /* slide down before growing */
        memmove(ex->done, ex->done + ex->dhead, (ex->ndone - ex->dhead) * sizeof *ex->done);
        ex->ndone -= ex->dhead;
        ex->dhead = 0;
    }
    /* room is there: inline_submit reserved a slot for every job it queued */
    memcpy(ex->done + ex->ndone, res, ran * sizeof *res);
    ex->ndone += ran;
    ex->running -= k;
    if (ex->waiting) pthread_cond_signal(&ex->done_cv);
}

static void *worker_main(void *arg) {
    inline_ex *ex = arg;
    void *alt = crash_altstack();
    pthread_mutex_lock(&ex->mu);
    while (!ex->stop) {
        if (ex->qhead == ex->qtail) {
            ex->sleeping++;
            pthread_cond_wait(&ex->work_cv, &ex->mu);
            ex->sleeping--;
            continue;
        }
        take_and_run(ex);
    }
    pthread_mutex_unlock(&ex->mu);
    crash_altstack_free(alt);
    return NULL;
}

/* Room in ex->done for `more` results beyond every one that can still come
 * (finished, running, queued), so a runner never allocates; mu held. 0, or -1
 * when out of memory (the context says so). */
static int reserve_done(inline_ex *ex, size_t more) {
    size_t need = (ex->ndone - ex->dhead) + ex->running + (ex->qtail - ex->qhead) + more;
    if (ex->dhead && ex->ndone + ex->running + (ex->qtail - ex->qhead) + more > ex->capdone) {
        memmove(ex->done, ex->done + ex->dhead, (ex->ndone - ex->dhead) * sizeof *ex->done);
        ex->ndone -= ex->dhead;
        ex->dhead = 0;
    }
    if (need <= ex->capdone) return 0;
    size_t cap = ex->capdone ? ex->capdone : 1024;
    while (cap < need)
        cap *= 2;
    done_item *d = fl_reallocarray(rt_plan(ex->rt)->ctx, ex->done, cap, sizeof *d);
    if (!d) return -1;
    ex->done = d;
    ex->capdone = cap;
    return 0;
}

/* Does this job go to the pool? */
static int to_pool(const inline_ex *ex, const fl_plan *p, const rt_job *job) {
    return ex->as_ex && job->task < p->n_tasks && ex->as_task[job->task];
}

/* Queue the jobs that run inline and hand the others (to_pool) to the pool:
 * all or nothing. */
static int inline_submit(rt_executor *base, const rt_job *jobs, int n) {
    inline_ex *ex = (inline_ex *)base;
    if (n <= 0) return 0;
    const fl_plan *p = rt_plan(ex->rt);
    size_t nas = 0;
    if (ex->as_ex)
        for (int i = 0; i < n; i++)
            nas += (size_t)to_pool(ex, p, &jobs[i]);
    size_t nin = (size_t)n - nas;
    rt_job *as_jobs = NULL;
    if (nas && !(as_jobs = fl_reallocarray(p->ctx, NULL, nas, sizeof *as_jobs))) return -1;
    pthread_mutex_lock(&ex->mu);
    if (reserve_done(ex, nin)) {
        pthread_mutex_unlock(&ex->mu);
        fl_free(p->ctx, as_jobs);
        return -1;
    }
    if (ex->qhead == ex->qtail) ex->qhead = ex->qtail = 0;
    if (ex->qtail + nin > ex->qcap) {
        if (ex->qhead) { /* slide the queue down before growing it */
            memmove(ex->q, ex->q + ex->qhead, (ex->qtail - ex->qhead) * sizeof *ex->q);
            ex->qtail -= ex->qhead;
            ex->qhead = 0;
        }
        if (ex->qtail + nin > ex->qcap) {
            size_t cap = ex->qcap ? ex->qcap : 1024;
            while (cap < ex->qtail + nin)
                cap *= 2;
            rt_job *q = fl_reallocarray(p->ctx, ex->q, cap, sizeof *q);
            if (!q) {
                pthread_mutex_unlock(&ex->mu);
                fl_free(p->ctx, as_jobs);
                return -1;
            }
            ex->q = q;
            ex->qcap = cap;
        }
    }
    if (!nas) {
        memcpy(ex->q + ex->qtail, jobs, nin * sizeof *jobs);
    } else { /* the pool takes its share first: if it cannot, nothing was queued */
        size_t k = 0, a = 0;
        for (int i = 0; i < n; i++)
            if (to_pool(ex, p, &jobs[i])) as_jobs[a++] = jobs[i];
        if (ex->as_ex->ops->submit(ex->as_ex, as_jobs, (int)nas)) {
            pthread_mutex_unlock(&ex->mu);
            fl_free(p->ctx, as_jobs);
            return -1;
        }
        ex->as_out += nas;
        for (int i = 0; i < n; i++)
            if (!to_pool(ex, p, &jobs[i])) ex->q[ex->qtail + k++] = jobs[i];
        fl_free(p->ctx, as_jobs);
    }
    ex->qtail += nin;
    if (ex->sleeping && nin) {
        if (nin > 1)
            pthread_cond_broadcast(&ex->work_cv);
        else
            pthread_cond_signal(&ex->work_cv);
    }
    pthread_mutex_unlock(&ex->mu);
    return 0;
}

/* Wait for jobs that run inline (inline_wait without the pool). */
static int wait_threads(inline_ex *ex, rt_result *out, int max, int timeout_ms) {
    struct timespec until = {0, 0};
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    int got = 0;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        if (ex->dhead < ex->ndone) {
            size_t k = ex->ndone - ex->dhead;
            if (k > (size_t)max) k = (size_t)max;
            for (size_t i = 0; i < k; i++)
                out[i] = ex->done[ex->dhead + i].r;
            ex->dhead += k;
            got = (int)k;
            break;
        }
        if (ex->qhead < ex->qtail) { /* be a runner while waiting */
            take_and_run(ex);
            continue;
        }
        if (!ex->running || timeout_ms == 0) break;
        ex->waiting = 1;
        int rc = timeout_ms > 0 ? pthread_cond_timedwait(&ex->done_cv, &ex->mu, &until)
                                : pthread_cond_wait(&ex->done_cv, &ex->mu);
        ex->waiting = 0;
        if (rc == ETIMEDOUT && ex->dhead == ex->ndone) break;
    }
    pthread_mutex_unlock(&ex->mu);
    return got;
}

/* Results of the pool's jobs that are in (timeout_ms as for wait). */
static int wait_pool(inline_ex *ex, rt_result *out, int max, int timeout_ms) {
    int got = ex->as_ex->ops->wait(ex->as_ex, out, max, timeout_ms);
    ex->as_out -= (size_t)got;
    return got;
}

static int inline_wait(rt_executor *base, rt_result *out, int max, int timeout_ms) {
    inline_ex *ex = (inline_ex *)base;
    if (max <= 0) return 0;
    if (!ex->as_out) return wait_threads(ex, out, max, timeout_ms);
    double until = timeout_ms < 0 ? -1 : rt_now() + timeout_ms / 1000.0;
    for (;;) {
        int got = wait_pool(ex, out, max, 0);
        if (got < max) got += wait_threads(ex, out + got, max - got, 0); /* runs queued jobs */
        if (got) return got;
        int left = until < 0 ? -1 : (int)((until - rt_now()) * 1000.0 + 0.999);
        if (until >= 0 && left <= 0) return 0;
        if (!ex->as_out) return wait_threads(ex, out, max, left);
        pthread_mutex_lock(&ex->mu); /* only this thread submits: idle stays idle */
        int idle = ex->qhead == ex->qtail && !ex->running && ex->dhead == ex->ndone;
        pthread_mutex_unlock(&ex->mu);
        if (idle) return wait_pool(ex, out, max, left);
        got = wait_threads(ex, out, max,
                           left >= 0 && left < INLINE_AS_POLL_MS ? left : INLINE_AS_POLL_MS);
        if (got) return got;
    }
}

static void inline_destroy(rt_executor *base) {
    inline_ex *ex = (inline_ex *)base;
    if (!ex) return;
    if (ex->as_ex) ex->as_ex->ops->destroy(ex->as_ex); /* its results go with it */
    pthread_mutex_lock(&ex->mu);
    __atomic_store_n(&ex->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 0; i < ex->nstarted; i++)
        pthread_join(ex->threads[i], NULL);
    const fl_plan *p = rt_plan(ex->rt);
    for (size_t i = ex->dhead; i < ex->ndone; i++)
        rt_result_clear(p, ex->done[i].task, &ex->done[i].r);
    fl_ctx *c = p->ctx;
    fl_free(c, ex->done);
    fl_free(c, ex->q);
    fl_free(c, ex->threads);
    fl_free(c, ex->as_task);
    fl_free(c, ex->cpu_seen);
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->work_cv);
    pthread_cond_destroy(&ex->done_cv);
    fl_free(c, ex);
}

static const rt_executor_ops inline_ops = {"inline", inline_submit, inline_wait, inline_destroy};

/* Which tasks' jobs go to the pool (see RUN_AS): with run_as naming a user other
 * than flowrun's, when flowrun is root. Sets *any when there is one. NULL when out
 * of memory. */
static unsigned char *as_tasks(const fl_plan *p, int *any) {
    unsigned char *as = fl_calloc(p->ctx, p->n_tasks + 1, 1);
    *any = 0;
    if (!as || geteuid() != 0) return as;
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        if (p->tasks[t].run_as == PLAN_NONE) continue;
        struct passwd *pw = getpwnam(plan_str(p, p->tasks[t].run_as));
        as[t] = !pw || pw->pw_uid != geteuid(); /* no such user: the pool says so */
        *any |= as[t];
    }
    return as;
}

rt_executor *rt_executor_inline(rt_runtime *rt, int nthreads) {
    return rt_executor_inline_ro(rt, nthreads, NULL);
}

rt_executor *rt_executor_inline_ro(rt_runtime *rt, int nthreads, const char *ro_dir) {
    if (nthreads < 1) nthreads = 1;
    if (nthreads > INLINE_MAX_THREADS) nthreads = INLINE_MAX_THREADS;
    fl_ctx *c = rt_plan(rt)->ctx;
    inline_ex *ex = fl_calloc(c, 1, sizeof *ex);
    if (!ex) return NULL;
    ex->threads = fl_calloc(c, (size_t)nthreads, sizeof *ex->threads);
    if (!ex->threads) {
        fl_free(c, ex);
        return NULL;
    }
    int any = 0;
    ex->as_task = as_tasks(rt_plan(rt), &any);
    ex->cpu_seen = fl_calloc(c, rt_plan(rt)->n_tasks + 1, 1);
    if (ex->as_task && any) /* before any runner thread exists (see RUN_AS) */
        ex->as_ex = rt_executor_process_ro(
            rt, nthreads < INLINE_AS_WORKERS ? nthreads : INLINE_AS_WORKERS, ro_dir);
    if (!ex->as_task || !ex->cpu_seen || (any && !ex->as_ex)) {
        int e = ex->as_task && ex->cpu_seen ? errno : ENOMEM;
        if (ex->as_ex) ex->as_ex->ops->destroy(ex->as_ex);
        fl_free(c, ex->as_task);
        fl_free(c, ex->cpu_seen);
        fl_free(c, ex->threads);
        fl_free(c, ex);
        errno = e;
        return NULL;
    }
    ex->base.ops = &inline_ops;
    ex->rt = rt;
    ex->nthreads = nthreads;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->work_cv, NULL);
    pthread_cond_init(&ex->done_cv, NULL);
    for (int i = 0; i < nthreads - 1; i++) {
        if (pthread_create(&ex->threads[i], NULL, worker_main, ex) != 0) break;
        ex->nstarted++;
    }
    return &ex->base;
}
