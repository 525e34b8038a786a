/*
 * cli_serve.c — `flowrun serve PLAN... [options]`: a long-running scheduler for the
 * scheduled and watched flows of one or more plans (issue 14; docs/serve.md).
 *
 * Design. One process, one loop, no threads: poll() on a self-pipe (signals) and
 * one inotify descriptor per watched folder, with a timeout that is the nearest of
 * the next interval's end (on the serve clock), the end of a debounce, and a
 * reap tick. Every run is a child `flowrun run` process (so a crash in a run never
 * takes serve down), started with --interval for a scheduled flow: the child claims
 * the interval in state.db before running anything (exactly one successful run per
 * (flow, env, logical date): a crashed claim is resumed in its run record, a
 * finished one is not run again, one held by a live process is busy), so two serve
 * processes on one state folder, or a serve SIGKILLed and restarted, never give an
 * interval two successful runs. Children die with serve (PR_SET_PDEATHSIG SIGTERM:
 * the run stops as on Ctrl-C and is recorded interrupted; the next serve resumes
 * it) and run in their own process group, so a terminal's Ctrl-C reaches serve
 * only, which then decides.
 *
 * Scheduled flows: the interval [t_k, t_k+1) runs at t_k+1 (as Airflow). Intervals
 * start at the schedule's `start`, else at the first time serve saw the flow
 * (state_first_seen); after downtime each missed interval runs, oldest first, one
 * at a time per flow (--no-catchup: only the latest). A failed interval is logged
 * and not retried while serve runs (as Airflow, beyond task retries); the next
 * serve's catch-up or `flowrun backfill` retries it. Watched flows: any change under
 * the folder marks the flow dirty; once nothing has changed for the debounce (2 s)
 * and no run of it is going, one run starts; changes during a run make one pending
 * run. The run itself finds what changed (incremental directories and the cache).
 *
 * The clock is the system's, or, for tests only, a fake one: FLOW_FAKE_NOW (a UTC
 * time), FLOW_FAKE_SPEED (fake seconds per real second), FLOW_FAKE_SINCE (the real
 * epoch second at which the fake clock read FLOW_FAKE_NOW; default: serve's start,
 * so that restarted serves share one clock) and FLOW_FAKE_UNTIL (serve exits 0 once
 * every interval ending by then has been handled).
 *
 * Signals: SIGTERM/SIGINT stop starting runs and wait for the running ones; a second
 * one stops them (SIGTERM to each run, recorded interrupted). Exit 0, or 3 if a run
 * was interrupted. SIGHUP reads the plans again (one that no longer reads is kept
 * as it was, said on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"
#include "config.h"
#include "cron.h"
#include "plan.h"
#include "refuse.h"
#include "scheduler.h"
#include "isolate.h"
#include "modpath.h"
#include "state.h"
#include "value.h"
#include "watch.h"

#define SERVE_MAX_PLANS 64
#define SERVE_MAX_FLOWS 256
#define SERVE_MAX_PARAMS 256

/* `flowrun run --interval`'s exit codes beyond runtime.md's (cli_run.c): the interval
 * had already succeeded / another flowrun is running it. */
#define FLOWRUN_EXIT_ALREADY 4
#define FLOWRUN_EXIT_BUSY 5

/* ---- signals: flags and a self-pipe that wakes poll() ---- */
static volatile sig_atomic_t sig_stop, sig_hup;
static int wake_pipe[2] = {-1, -1};

static void serve_on_signal(int sig) {
    int e = errno;
    if (sig == SIGHUP) sig_hup = 1;
    else sig_stop++;
    if (wake_pipe[1] >= 0) (void)!write(wake_pipe[1], "x", 1);
    errno = e;
}

/* ---- the clock ---- */
typedef struct serve_clock {
    int fake;
    double base, since, speed; /* fake now = base + (real now - since) * speed */
    int64_t until;             /* FLOW_FAKE_UNTIL, or 0 */
} serve_clock;

static double real_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "now" on serve's clock, in seconds since the epoch */
static double clock_now(const serve_clock *c) {
    return c->fake ? c->base + (real_now() - c->since) * c->speed : real_now();
}

/* Real seconds until serve's clock reads t (never negative). */
static double clock_wait(const serve_clock *c, double t) {
    double d = t - clock_now(c);
    if (c->fake) d /= c->speed;
    return d < 0 ? 0 : d;
}

static int parse_utc(const char *s, int64_t *out) {
    static fl_cron utc; /* any schedule in UTC: only its zone matters */
    static int ready;
    char err[128];
    if (!ready && cron_parse(&utc, "@daily", NULL, err, sizeof err) == 0) ready = 1;
    return ready ? cron_parse_when(&utc, s, false, out) : -1;
}

static int clock_init(serve_clock *c) {
    memset(c, 0, sizeof *c);
    const char *now = getenv("FLOW_FAKE_NOW");
    if (!now || !*now) return 0;
    int64_t t;
    if (parse_utc(now, &t)) {
        fprintf(stderr, "flowrun serve: FLOW_FAKE_NOW '%s' is not a time (2026-01-01T00:00:00Z)\n",
                now);
        return -1;
    }
    c->fake = 1;
    c->base = (double)t;
    c->speed = 1;
    c->since = real_now();
    const char *sp = getenv("FLOW_FAKE_SPEED"), *si = getenv("FLOW_FAKE_SINCE"),
               *un = getenv("FLOW_FAKE_UNTIL");
    char *end;
    if (sp && *sp) {
        c->speed = strtod(sp, &end);
        if (*end || !(c->speed > 0) || !isfinite(c->speed)) {
            fprintf(stderr, "flowrun serve: FLOW_FAKE_SPEED '%s' is not a positive number\n", sp);
            return -1;
        }
    }
    if (si && *si) {
        c->since = strtod(si, &end);
        if (*end || !isfinite(c->since)) {
            fprintf(stderr, "flowrun serve: FLOW_FAKE_SINCE '%s' is not a number of seconds\n", si);
            return -1;
        }
    }
    if (un && *un && parse_utc(un, &c->until)) {
        fprintf(stderr, "flowrun serve: FLOW_FAKE_UNTIL '%s' is not a time\n", un);
        return -1;
    }
    char buf[32];
    cron_fmt_time(t, buf);
    fprintf(stderr, "flowrun serve: fake clock (for tests): %s at real %.3f, speed %g\n", buf,
            c->since, c->speed);
    return 0;
}

/* ---- the flows served ---- */
typedef struct serve_flow {
    char *plan;       /* the plan file, as given */
    char *name;       /* the flow */
    int plan_index;   /* which PLAN argument */
    int gone;         /* no longer in its plan (reload): dropped once its run ends */
    /* scheduled */
    char *schedule, *tz, *start_text, *first_param;
    int sched;        /* 1: scheduled */
    int as_time;      /* the first parameter is a time (else a date) */
    fl_cron cron;
    int64_t next_start; /* the next interval to run starts here (a firing) */
    int64_t next_end;   /* ... and ends here: it runs when the clock reaches it */
    double retry_at;    /* busy interval: real monotonic time to try again */
    char (*done)[24];   /* logical dates that succeeded when serve looked (sorted) */
    size_t ndone;
    /* watched */
    char *watch_dir;
    unsigned char *takes; /* takes[i]: --param number i names a parameter of this flow
                             (not a scheduled flow's first: the interval's) */
    fw_watch *w;
    int dirty;          /* a change not yet given to a run */
    double last_event;  /* monotonic time of the last change */
    double reopen_at;   /* the folder is missing: look again then */
    /* the run going, if any */
    pid_t child;
    char logical[32];   /* its logical date, "" for a watched run */
    double started;     /* monotonic */
} serve_flow;

typedef struct serve_opts {
    const char *plans[SERVE_MAX_PLANS];
    int nplans;
    const char *env, *state, *executor, *jobs;
    const char *config;        /* --config FILE, passed on to each run */
    char state_buf[PATH_MAX];  /* the state directory in use */
    char *params[SERVE_MAX_PARAMS];
    int nparams;
    int no_catchup;
    int unprotected; /* --unprotected, given to each run */
    double debounce; /* seconds */
    const char *metrics; /* --metrics ADDR:PORT */
    const char *events;  /* --events FILE, passed on to each run (absolute) */
    char events_buf[PATH_MAX];
} serve_opts;

typedef struct serve {
    serve_opts o;
    serve_clock clock;
    serve_flow flows[SERVE_MAX_FLOWS];
    int nflows;
    char self[PATH_MAX]; /* this flowrun, for the children */
    fl_state *st;
    int interrupted;     /* a run ended interrupted */
    int stopping;        /* SIGTERM/SIGINT seen: no new runs */
    int killed;          /* a second one: runs were told to stop */
    /* --metrics (metrics.c): the endpoint, and what it shows, rendered by its thread */
    mx_server *msrv;
    mx_runs runs;        /* runs by flow and environment */
    mx_tally insts;      /* the instances of the runs that ended */
    mx_sizes sizes;
} serve;

static void flow_free(serve_flow *f) {
    free(f->plan);
    free(f->name);
    free(f->schedule);
    free(f->tz);
    free(f->start_text);
    free(f->first_param);
    free(f->watch_dir);
    free(f->done);
    free(f->takes);
    fw_close(f->w);
    memset(f, 0, sizeof *f);
}

static void log_line(serve *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(serve *s, const char *fmt, ...) {
    char when[32];
    double now = clock_now(&s->clock);
    int64_t secs = (int64_t)floor(now);
    cron_fmt_time(secs, when); /* ...SSZ, with the milliseconds put before the Z */
    fprintf(stderr, "flowrun serve: %.*s.%03dZ%s ", (int)strlen(when) - 1, when,
            (int)((now - (double)secs) * 1000), s->clock.fake ? " (fake)" : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The folder graph g's parameter `idx` names: the last --param for it, else its
 * default (the folder need not exist yet: serve looks for it until it does); NULL
 * with why in err. */
static char *param_text(const fl_plan *p, uint32_t g, uint32_t idx, serve_opts *o, char *err,
                        size_t errlen) {
    const plan_param *P = &p->params[p->graphs[g].first_param + idx];
    const char *name = plan_str(p, P->name), *text = NULL;
    size_t len = strlen(name);
    for (int i = 0; i < o->nparams; i++)
        if (!strncmp(o->params[i], name, len) && o->params[i][len] == '=') text = o->params[i] + len + 1;
    if (!text && P->def != PLAN_NONE) text = plan_str(p, p->values[P->def].u.s);
    if (!text || !*text) {
        snprintf(err, errlen, "the watched folder '%s' has no default: give --param %s=DIR", name,
                 name);
        return NULL;
    }
    return strdup(text);
}

/* The scheduled and watched flows of plan number pi, appended to out (at most max).
 * -1 with the reason on stderr when the plan does not read. */
static int read_plan(serve *s, int pi, serve_flow *out, int max, int *n) {
    char err[1024];
    const char *path = s->o.plans[pi];
    fl_plan *p = plan_read_file(flowrun_ctx(), path, err, sizeof err);
    if (!p) {
        fprintf(stderr, "flowrun serve: %s: %s\n", path, err);
        return -1;
    }
    int rc = 0;
    for (uint32_t g = 0; g < p->n_graphs && !rc; g++) {
        const plan_graph *G = &p->graphs[g];
        if (G->kind != PG_FLOW || (G->schedule == PLAN_NONE && G->watch == PLAN_NONE)) continue;
        if (*n >= max) {
            fprintf(stderr, "flowrun serve: more than %d flows to serve\n", max);
            rc = -1;
            break;
        }
        /* what its runs would refuse (refuse.c) is refused now, not at each interval */
        if (rt_refuse_undone(p, g, s->o.executor, err, sizeof err)) {
            fprintf(stderr, "flowrun serve: %s: flow %s: %s\n", path, plan_str(p, G->name), err);
            rc = -1;
            break;
        }
        serve_flow *f = &out[(*n)++];
        memset(f, 0, sizeof *f);
        f->plan = strdup(path);
        f->name = strdup(plan_str(p, G->name));
        f->plan_index = pi;
        f->takes = calloc((size_t)s->o.nparams + 1, 1);
        for (int i = 0; f->takes && i < s->o.nparams; i++)
            for (uint32_t k = G->schedule != PLAN_NONE ? 1 : 0; k < G->nparams; k++) {
                const char *pn = plan_str(p, p->params[G->first_param + k].name);
                size_t len = strlen(pn);
                if (!strncmp(s->o.params[i], pn, len) && s->o.params[i][len] == '=')
                    f->takes[i] = 1;
            }
        if (G->schedule != PLAN_NONE) {
            f->sched = 1;
            f->schedule = strdup(plan_str(p, G->schedule));
            if (G->tz != PLAN_NONE) f->tz = strdup(plan_str(p, G->tz));
            if (G->start != PLAN_NONE) f->start_text = strdup(plan_str(p, G->start));
            if (G->nparams) {
                const plan_param *P = &p->params[G->first_param];
                f->first_param = strdup(plan_str(p, P->name));
                f->as_time = p->types[P->type].kind == PT_TIME;
            }
            if (cron_parse(&f->cron, f->schedule, f->tz, err, sizeof err)) {
                fprintf(stderr, "flowrun serve: %s: flow %s: schedule '%s': %s\n", path, f->name,
                        f->schedule, err);
                rc = -1;
            }
        }
        if (G->watch != PLAN_NONE) {
            f->watch_dir = param_text(p, g, G->watch, &s->o, err, sizeof err);
            if (!f->watch_dir) {
                fprintf(stderr, "flowrun serve: %s: flow %s: %s\n", path, f->name, err);
                rc = -1;
            }
        }
    }
    plan_free(p);
    if (rc)
        while (*n > 0 && out[*n - 1].plan_index == pi) flow_free(&out[--*n]);
    return rc;
}

/* The logical dates of (flow, env) that have a successful run, read once when the
 * flow starts being served: catch-up passes over them without starting a process.
 * (The claim in the child is what makes an interval run once; this only saves the
 * child for intervals known to be done.) */
typedef struct done_scan {
    serve_flow *f;
    const char *env;
    size_t cap;
} done_scan;

static int run_logical(const state_run *r, const serve_flow *f, char *out) {
    (void)f;
    if (!r->logical || !*r->logical || strlen(r->logical) >= 24) return -1;
    snprintf(out, 24, "%s", r->logical);
    return 0;
}

static int done_fn(const state_run *r, void *ctx) {
    done_scan *d = ctx;
    serve_flow *f = d->f;
    if (strcmp(r->state, "succeeded") || strcmp(r->flow, f->name) || strcmp(r->env, d->env))
        return 0;
    char lg[24];
    if (run_logical(r, f, lg)) return 0;
    if (f->ndone == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        char(*nd)[24] = realloc(f->done, cap * sizeof *nd);
        if (!nd) return 1;
        f->done = nd;
        d->cap = cap;
    }
    memcpy(f->done[f->ndone++], lg, 24);
    return 0;
}

static int cmp_logical(const void *a, const void *b) { return strcmp(a, b); }

static void done_load(serve *s, serve_flow *f) {
    free(f->done);
    f->done = NULL;
    f->ndone = 0;
    done_scan d = {f, s->o.env, 0};
    state_runs_each(s->st, done_fn, &d);
    if (f->ndone) qsort(f->done, f->ndone, sizeof *f->done, cmp_logical);
}

static int is_done(const serve_flow *f, const char *logical) {
    return f->ndone && bsearch(logical, f->done, f->ndone, sizeof *f->done, cmp_logical);
}

/* ---- scheduled flows: where the intervals start ---- */

/* The first interval at or after `origin`: next_start is the first firing >= origin. */
static int sched_from(serve_flow *f, int64_t origin) {
    int64_t a, b;
    if (cron_next(&f->cron, origin - 1, &a) || cron_next(&f->cron, a, &b)) return -1;
    f->next_start = a;
    f->next_end = b;
    return 0;
}

/* Where a scheduled flow's intervals begin: its `start`, else the first time serve
 * saw it; with --no-catchup, the latest interval that has ended (if after that). */
static int sched_init(serve *s, serve_flow *f) {
    int64_t now = (int64_t)clock_now(&s->clock), origin = now;
    if (f->start_text) {
        if (cron_parse_when(&f->cron, f->start_text, false, &origin)) {
            fprintf(stderr, "flowrun serve: flow %s: start '%s' is not a date or time\n", f->name,
                    f->start_text);
            return -1;
        }
    } else {
        if (state_first_seen(s->st, f->name, s->o.env, now, &origin)) {
            fprintf(stderr, "flowrun serve: flow %s: cannot read or record when serve first saw "
                    "it in %s/state.db\n", f->name, s->o.state);
            return -1;
        }
    }
    if (sched_from(f, origin)) {
        fprintf(stderr, "flowrun serve: flow %s: schedule '%s' never fires\n", f->name, f->schedule);
        return -1;
    }
    done_load(s, f);
    if (s->o.no_catchup && f->next_end <= now) { /* only the latest interval that ended */
        int64_t end, start;
        if (cron_prev(&f->cron, now + 1, &end) == 0 && cron_prev(&f->cron, end, &start) == 0 &&
            start >= f->next_start) {
            f->next_start = start;
            f->next_end = end;
        }
    }
    return 0;
}

static int sched_advance(serve_flow *f) {
    f->next_start = f->next_end;
    return cron_next(&f->cron, f->next_end, &f->next_end);
}

/* ---- runs: child flowrun processes ---- */

static pid_t spawn_run(serve *s, serve_flow *f, const char *logical) {
    char *argv[32 + SERVE_MAX_PARAMS * 2];
    int n = 0;
    argv[n++] = "flowrun";
    argv[n++] = "run";
    argv[n++] = f->plan;
    argv[n++] = "--flow";
    argv[n++] = f->name;
    argv[n++] = "--progress";
    argv[n++] = "none";
    if (s->o.env) argv[n++] = "--env", argv[n++] = (char *)s->o.env;
    if (s->o.config) argv[n++] = "--config", argv[n++] = (char *)s->o.config;
    if (s->o.state) argv[n++] = "--state", argv[n++] = (char *)s->o.state;
    if (s->o.executor) argv[n++] = "--executor", argv[n++] = (char *)s->o.executor;
    if (s->o.jobs) argv[n++] = "-j", argv[n++] = (char *)s->o.jobs;
    if (s->o.unprotected) argv[n++] = "--unprotected";
    if (s->o.events) argv[n++] = "--events", argv[n++] = (char *)s->o.events;
    if (logical) { /* sets the first parameter and claims the interval (cli_run.c) */
        argv[n++] = "--interval";
        argv[n++] = (char *)logical;
    }
    for (int i = 0; i < s->o.nparams; i++) /* those naming a parameter of this flow */
        if (f->takes && f->takes[i]) {
            argv[n++] = "--param";
            argv[n++] = s->o.params[i];
        }
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        log_line(s, "%s: cannot start a run: %s", f->name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* die with serve (the run stops as on SIGTERM and is recorded interrupted), in
         * a process group of its own: a terminal's Ctrl-C is serve's to decide */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(3);
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1); /* the flow's result: in the run's record (flowrun runs) */
            if (devnull > 2) close(devnull);
        }
        execv(s->self, argv);
        fprintf(stderr, "flowrun serve: cannot run %s: %s\n", s->self, strerror(errno));
        _exit(2);
    }
    setpgid(pid, pid); /* also here: no race with a signal sent to its group */
    if (s->msrv) mx_runs_count(&s->runs, f->name, s->o.env, MX_RUN_STARTED);
    f->child = pid;
    f->started = mono_now();
    snprintf(f->logical, sizeof f->logical, "%s", logical ? logical : "");
    if (logical) log_line(s, "%s %s: started (pid %d)", f->name, logical, (int)pid);
    else log_line(s, "%s: started for a change under %s (pid %d)", f->name, f->watch_dir, (int)pid);
    return pid;
}

/* The run a child recorded: the newest run of the flow owned by pid. */
typedef struct find_run {
    const char *flow;
    int pid;
    int64_t id;
} find_run;

static int find_run_fn(const state_run *r, void *ctx) {
    find_run *fr = ctx;
    if (r->pid == fr->pid && !strcmp(r->flow, fr->flow)) {
        fr->id = r->id;
        return 1; /* newest first: the first is it */
    }
    return 0;
}

static int64_t run_of_child(serve *s, const serve_flow *f, pid_t pid) {
    find_run fr = {f->name, (int)pid, 0};
    if (s->st) state_runs_each(s->st, find_run_fn, &fr);
    return fr.id;
}

/* --metrics: the instances of a run that ended, counted from state.db */
typedef struct tally_ctx {
    serve *s;
    const char *flow;
} tally_ctx;

static int tally_fn(const state_inst *r, void *ud) {
    tally_ctx *t = ud;
    double dur = r->started > 0 && r->ended >= r->started ? r->ended - r->started : -1;
    mx_tally_add(&t->s->insts, t->flow, t->s->o.env, r->task, r->state, dur,
                 r->cache_key && !r->cache_hit);
    return 0;
}

static void serve_render(void *ud, FILE *f) {
    serve *s = ud;
    mx_write_build(f);
    mx_write_runs(f, &s->runs);
    mx_write_tally(f, &s->insts);
    mx_write_sizes(f, &s->sizes);
}

/* A child ended: log it, and move the flow on. */
static void child_done(serve *s, serve_flow *f, int status) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double secs = mono_now() - f->started;
    int64_t id = run_of_child(s, f, f->child);
    char run[48] = "";
    if (id) snprintf(run, sizeof run, "run %lld ", (long long)id);
    const char *what = code == 0                  ? "succeeded"
                       : code == 1                ? "failed"
                       : code == 3                ? "interrupted"
                       : code == FLOWRUN_EXIT_ALREADY ? "already succeeded (skipped)"
                       : code == FLOWRUN_EXIT_BUSY    ? "busy in another process (tried again later)"
                                                      : "could not start";
    if (f->logical[0])
        log_line(s, "%s %s: %s%s (exit %d, %.2f s)", f->name, f->logical, run, what, code, secs);
    else
        log_line(s, "%s: %s%s (exit %d, %.2f s)", f->name, run, what, code, secs);
    if (code == 3) s->interrupted = 1;
    if (s->msrv) {
        mx_runs_count(&s->runs, f->name, s->o.env,
                      code == 0   ? MX_RUN_SUCCEEDED
                      : code == 3 ? MX_RUN_INTERRUPTED
                      : code == FLOWRUN_EXIT_ALREADY || code == FLOWRUN_EXIT_BUSY ? MX_RUN_SKIPPED
                                                                                  : MX_RUN_FAILED);
        tally_ctx tc = {s, f->name};
        if (id && (code == 0 || code == 1 || code == 3)) state_insts_each(s->st, id, tally_fn, &tc);
    }
    if (f->sched && f->logical[0]) {
        if (code == FLOWRUN_EXIT_BUSY || code == 3) {
            f->retry_at = mono_now() + 0.2; /* the same interval again, soon */
        } else {
            if (code == 1) log_line(s, "%s %s: not retried by serve (flowrun backfill retries it)",
                                    f->name, f->logical);
            sched_advance(f);
        }
    }
    f->child = 0;
    f->logical[0] = 0;
}

static void reap(serve *s) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (int i = 0; i < s->nflows; i++)
            if (s->flows[i].child == pid) child_done(s, &s->flows[i], status);
    }
}

static int running(const serve *s) {
    int n = 0;
    for (int i = 0; i < s->nflows; i++) n += s->flows[i].child != 0;
    return n;
}

/* ---- watches ---- */
static void watch_open(serve *s, serve_flow *f) {
    char err[512] = "";
    f->w = fw_open(f->watch_dir, err, sizeof err);
    if (!f->w) {
        if (!f->reopen_at) log_line(s, "%s: cannot watch yet: %s (looked at again every second)",
                                    f->name, err);
        f->reopen_at = mono_now() + 1;
        return;
    }
    if (*err) log_line(s, "%s: %s", f->name, err);
    if (f->reopen_at) { /* it appeared: a change */
        f->dirty = 1;
        f->last_event = mono_now();
    }
    f->reopen_at = 0;
}

static void watch_drain(serve *s, serve_flow *f) {
    char err[512] = "";
    long over = fw_overflows(f->w);
    int n = fw_drain(f->w, err, sizeof err);
    if (*err) log_line(s, "%s: %s", f->name, err);
    if (n >= 0 && fw_overflows(f->w) != over)
        log_line(s, "%s: the inotify queue overflowed; %s walked again", f->name, f->watch_dir);
    if (n != 0) {
        f->dirty = 1;
        f->last_event = mono_now();
    }
    if (n < 0) {
        log_line(s, "%s: %s went away; watching for it again", f->name, f->watch_dir);
        fw_close(f->w);
        f->w = NULL;
        f->reopen_at = mono_now() + 1;
    }
}

/* ---- SIGHUP: the plans again ---- */
static void reload(serve *s) {
    log_line(s, "SIGHUP: reading the plans again");
    for (int pi = 0; pi < s->o.nplans; pi++) {
        serve_flow fresh[SERVE_MAX_FLOWS];
        int n = 0;
        if (read_plan(s, pi, fresh, SERVE_MAX_FLOWS, &n)) {
            log_line(s, "%s: kept as it was", s->o.plans[pi]);
            continue;
        }
        /* flows that left the plan: dropped (after their run) */
        for (int i = 0; i < s->nflows; i++) {
            serve_flow *f = &s->flows[i];
            if (f->plan_index != pi) continue;
            int found = 0;
            for (int k = 0; k < n; k++) found |= !strcmp(fresh[k].name, f->name);
            if (!found && !f->gone) {
                f->gone = 1;
                log_line(s, "%s: no longer scheduled or watched in %s", f->name, f->plan);
            }
        }
        for (int k = 0; k < n; k++) {
            serve_flow *nf = &fresh[k], *old = NULL;
            for (int i = 0; i < s->nflows; i++)
                if (s->flows[i].plan_index == pi && !strcmp(s->flows[i].name, nf->name))
                    old = &s->flows[i];
            if (old) { /* keep the run going and the place in the schedule if it is the same */
                int same_sched = old->sched == nf->sched &&
                                 (!nf->sched || (!strcmp(old->schedule, nf->schedule) &&
                                                 !strcmp(old->tz ? old->tz : "", nf->tz ? nf->tz : "")));
                int same_watch = !strcmp(old->watch_dir ? old->watch_dir : "",
                                         nf->watch_dir ? nf->watch_dir : "");
                if (same_sched) {
                    nf->next_start = old->next_start;
                    nf->next_end = old->next_end;
                    nf->retry_at = old->retry_at;
                } else if (nf->sched && sched_init(s, nf)) {
                    nf->sched = 0;
                }
                if (same_watch) {
                    nf->w = old->w;
                    old->w = NULL;
                    nf->dirty = old->dirty;
                    nf->last_event = old->last_event;
                    nf->reopen_at = old->reopen_at;
                }
                nf->child = old->child;
                nf->started = old->started;
                memcpy(nf->logical, old->logical, sizeof nf->logical);
                old->child = 0;
                flow_free(old);
                *old = *nf;
                if (!same_sched || !same_watch) log_line(s, "%s: changed in %s", old->name, old->plan);
                if (old->watch_dir && !old->w) watch_open(s, old);
            } else if (s->nflows < SERVE_MAX_FLOWS) {
                serve_flow *f = &s->flows[s->nflows++];
                *f = *nf;
                if (f->sched && sched_init(s, f)) f->sched = 0;
                if (f->watch_dir) watch_open(s, f);
                log_line(s, "%s: new in %s", f->name, f->plan);
            } else {
                flow_free(nf);
            }
        }
    }
}

/* ---- the loop ---- */

/* Start what is due; the real seconds until something may be due next. */
static double start_due(serve *s) {
    double wait = 1.0, mnow = mono_now();
    double now = clock_now(&s->clock);
    for (int i = 0; i < s->nflows; i++) {
        serve_flow *f = &s->flows[i];
        if (f->child || f->gone || s->stopping) continue;
        if (f->sched && f->next_end) {
            if (s->clock.until && f->next_end > s->clock.until) {
                /* the fake clock's end: nothing more for this flow */
            } else if ((double)f->next_end <= now && f->retry_at <= mnow) {
                if (s->o.no_catchup) { /* behind: skip to the latest interval that ended */
                    int64_t end, start;
                    if (cron_prev(&f->cron, (int64_t)now + 1, &end) == 0 &&
                        cron_prev(&f->cron, end, &start) == 0 && start > f->next_start) {
                        f->next_start = start;
                        f->next_end = end;
                    }
                }
                char logical[32];
                cron_logical(&f->cron, f->next_start, f->as_time, logical);
                f->retry_at = 0;
                if (is_done(f, logical)) { /* known to have succeeded: next one */
                    sched_advance(f);
                    i--;
                    continue;
                }
                if (spawn_run(s, f, logical) > 0) continue;
                f->retry_at = mnow + 1;
            } else {
                double d = f->retry_at > mnow ? f->retry_at - mnow
                                               : clock_wait(&s->clock, (double)f->next_end);
                if (d < wait) wait = d;
            }
        }
        if (f->watch_dir && !f->child) {
            if (!f->w && f->reopen_at && f->reopen_at <= mnow) watch_open(s, f);
            if (f->dirty) {
                double due = f->last_event + s->o.debounce;
                if (due <= mnow) {
                    f->dirty = 0;
                    if (spawn_run(s, f, NULL) <= 0) f->dirty = 1;
                } else if (due - mnow < wait) {
                    wait = due - mnow;
                }
            }
        }
    }
    return wait;
}

/* FLOW_FAKE_UNTIL: every interval ending by then handled, nothing running */
static int fake_done(const serve *s) {
    if (!s->clock.until || clock_now(&s->clock) < (double)s->clock.until || running(s)) return 0;
    for (int i = 0; i < s->nflows; i++)
        if (s->flows[i].sched && s->flows[i].next_end && s->flows[i].next_end <= s->clock.until)
            return 0;
    return 1;
}

static int serve_loop(serve *s) {
    for (;;) {
        if (sig_stop && !s->stopping) {
            s->stopping = 1;
            log_line(s, "stopping: no new runs; waiting for %d running (signal again to stop them)",
                     running(s));
        }
        if (sig_stop > 1 && !s->killed) {
            s->killed = 1;
            for (int i = 0; i < s->nflows; i++)
                if (s->flows[i].child) kill(-s->flows[i].child, SIGTERM);
            log_line(s, "stopping the running runs");
        }
        if (sig_hup && !s->stopping) {
            sig_hup = 0;
            reload(s);
        }
        reap(s);
        for (int i = 0; i < s->nflows; i++) /* flows dropped by a reload, once idle */
            if (s->flows[i].gone && !s->flows[i].child) {
                flow_free(&s->flows[i]);
                s->flows[i--] = s->flows[--s->nflows];
            }
        if (s->stopping && !running(s)) break;
        if (fake_done(s)) {
            log_line(s, "the fake clock reached FLOW_FAKE_UNTIL");
            break;
        }
        double wait = start_due(s);
        if (running(s) && wait > 0.05) wait = 0.05; /* reap soon */
        struct pollfd pf[SERVE_MAX_FLOWS + 1];
        serve_flow *of[SERVE_MAX_FLOWS + 1];
        int n = 0;
        pf[n].fd = wake_pipe[0];
        pf[n].events = POLLIN;
        of[n++] = NULL;
        for (int i = 0; i < s->nflows; i++)
            if (s->flows[i].w) {
                pf[n].fd = fw_fd(s->flows[i].w);
                pf[n].events = POLLIN;
                of[n++] = &s->flows[i];
            }
        int ms = (int)ceil(wait * 1000);
        if (ms > 1000) ms = 1000;
        int r = poll(pf, (nfds_t)n, ms);
        if (r <= 0) continue;
        if (pf[0].revents) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0) {}
        }
        for (int i = 1; i < n; i++)
            if (pf[i].revents && of[i]->w) watch_drain(s, of[i]);
    }
    return s->interrupted ? 3 : 0;
}

enum { O_ENV = 256, O_STATE, O_NO_CATCHUP, O_DEBOUNCE, O_EXECUTOR, O_PARAM, O_CONFIG,
       O_UNPROTECTED, O_METRICS, O_EVENTS };

static const struct option serve_options[] = {
    {"env", required_argument, NULL, O_ENV},
    {"state", required_argument, NULL, O_STATE},
    {"no-catchup", no_argument, NULL, O_NO_CATCHUP},
    {"debounce", required_argument, NULL, O_DEBOUNCE},
    {"jobs", required_argument, NULL, 'j'},
    {"executor", required_argument, NULL, O_EXECUTOR},
    {"param", required_argument, NULL, O_PARAM},
    {"unprotected", no_argument, NULL, O_UNPROTECTED},
    {"config", required_argument, NULL, O_CONFIG},
    {"metrics", required_argument, NULL, O_METRICS},
    {"events", required_argument, NULL, O_EVENTS},
    {NULL, 0, NULL, 0}};

static int serve_usage(const char *fmt, const char *a) {
    fputs("flowrun serve: ", stderr);
    fprintf(stderr, fmt, a);
    fputs(" (see flowrun serve --help)\n", stderr);
    return 2;
}

static int parse_serve(int argc, char **argv, serve_opts *o) {
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun serve", " (see flowrun serve --help)", "j:",
                  serve_options, 0);
    o->debounce = 2.0;
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        switch (c) {
            case CLI_ERROR:
                return 2;
            case CLI_ARG:
                if (o->nplans >= SERVE_MAX_PLANS) return serve_usage("more than %s plans", "64");
                o->plans[o->nplans++] = val;
                break;
            case O_ENV:
                o->env = val;
                break;
            case O_STATE:
                o->state = val;
                break;
            case O_CONFIG:
                o->config = val;
                break;
            case O_METRICS:
                o->metrics = val;
                break;
            case O_EVENTS:
                if (!*val) return serve_usage("%s", "--events expects a FILE");
                o->events = val;
                break;
            case O_NO_CATCHUP:
                o->no_catchup = 1;
                break;
            case O_UNPROTECTED:
                o->unprotected = 1;
                break;
            case O_DEBOUNCE: {
                int64_t ms;
                if (fv_duration_parse(val, strlen(val), &ms) || ms > 86400000LL)
                    return serve_usage("--debounce expects a duration (500ms, 2s, 1m), got '%s'",
                                       val);
                o->debounce = (double)ms / 1000;
                break;
            }
            case 'j': {
                int64_t v;
                if (cli_count(val, 1, 4096, &v))
                    return serve_usage("-j expects a number from 1 to 4096, got '%s'", val);
                o->jobs = val;
                break;
            }
            case O_EXECUTOR:
                if (strcmp(val, "inline") && strcmp(val, "process"))
                    return serve_usage("--executor expects inline or process, got '%s'", val);
                o->executor = val;
                break;
            case O_PARAM:
                if (!strchr(val, '='))
                    return serve_usage("--param expects NAME=VALUE, got '%s'", val);
                if (o->nparams >= SERVE_MAX_PARAMS)
                    return serve_usage("more than %s --param options", "256");
                o->params[o->nparams++] = (char *)val;
                break;
        }
    }
    if (!o->nplans) return serve_usage("%s", "missing the PLAN file(s)");
    return 0;
}

/* Would the runs of environment o->env (it is one of cfg's) be kept off the other
 * environments' roots, as each run will be (cli_run.c, isolate.c)? Found out once,
 * at start, in a child process. 0, or -1 said. */
static int serve_env_check(const serve_opts *o, const flcfg *cfg) {
    char err[1024];
    int n = 0, rc = -1;
    const char **others = flcfg_other_roots(cfg, flcfg_env_get(cfg, o->env), &n);
    if (!others)
        snprintf(err, sizeof err, "out of memory");
    else
        rc = iso_protect_run(o->env, others, n, o->unprotected, 1, stderr, err, sizeof err) < 0
                 ? -1
                 : 0;
    if (rc) fprintf(stderr, "flowrun serve: %s\n", err);
    free(others);
    return rc;
}

int flowrun_cmd_serve(int argc, char **argv) {
    static serve s; /* large (the flows); one per process */
    memset(&s, 0, sizeof s);
    if (parse_serve(argc, argv, &s.o)) return 2;
    if (!s.o.env) s.o.env = "prod";
    { /* the configuration: the state directory, and --env must name one of its environments */
        flcfg cfg;
        char cerr[1024];
        if (flcfg_load(s.o.config, &cfg, cerr, sizeof cerr)) {
            fprintf(stderr, "flowrun serve: %s\n", cerr);
            return 2;
        }
        int bad = flcfg_env_problem(&cfg, s.o.env, cerr, sizeof cerr);
        if (bad) fprintf(stderr, "flowrun: %s\n", cerr);
        else bad = serve_env_check(&s.o, &cfg);
        flcfg_free(&cfg);
        if (bad) return 2;
        if (cli_state_dir("flowrun serve", s.o.state, s.o.config, s.o.state_buf,
                          sizeof s.o.state_buf))
            return 2;
        s.o.state = s.o.state_buf;
    }
    if (s.o.events) { /* every run appends to it (whole lines, O_APPEND: events.c); a
                       * file that cannot be written is said now, not at each run */
        int fd = open(s.o.events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 || !realpath(s.o.events, s.o.events_buf)) {
            fprintf(stderr, "flowrun serve: cannot open the events file %s: %s\n", s.o.events,
                    strerror(errno));
            if (fd >= 0) close(fd);
            return 2;
        }
        close(fd);
        s.o.events = s.o.events_buf;
    }
    if (s.o.metrics) { /* bound now: a mistake is said before anything runs */
        char merr[600];
        if (!(s.msrv = mx_listen(s.o.metrics, merr, sizeof merr))) {
            fprintf(stderr, "flowrun serve: %s\n", merr);
            return 2;
        }
    }
    if (clock_init(&s.clock)) goto fail;
    const char *self = mod_self_exe();
    if (!self) {
        fprintf(stderr, "flowrun serve: cannot find its own program: %s\n", strerror(errno));
        return 2;
    }
    snprintf(s.self, sizeof s.self, "%s", self);
    for (int pi = 0; pi < s.o.nplans; pi++)
        if (read_plan(&s, pi, s.flows, SERVE_MAX_FLOWS, &s.nflows)) goto fail;
    if (!s.nflows) {
        fputs("flowrun serve: no flow of the plans has a schedule or a watch: nothing to serve\n",
              stderr);
        goto fail;
    }
    char err[1024];
    const char *dir = s.o.state;
    s.st = state_open(flowrun_ctx(), dir, err, sizeof err);
    if (!s.st) {
        fprintf(stderr, "flowrun serve: %s\n", err);
        goto fail;
    }
    s.o.state = dir;
    for (int i = 0; i < s.nflows; i++) {
        serve_flow *f = &s.flows[i];
        if (f->sched && sched_init(&s, f)) goto fail;
        if (f->watch_dir) {
            watch_open(&s, f);
            /* changes made while serve was down: one run at start (the cache makes it
             * cheap when there were none); --no-catchup: only what changes from now */
            if (!s.o.no_catchup && f->w) { /* a missing folder: its appearance is the change */
                f->dirty = 1;
                f->last_event = mono_now() - s.o.debounce;
            }
        }
    }
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK)) {
        fprintf(stderr, "flowrun serve: %s\n", strerror(errno));
        goto fail;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = serve_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    for (int i = 0; i < s.nflows; i++) {
        serve_flow *f = &s.flows[i];
        if (f->sched) {
            char a[32], b[32];
            cron_fmt_time(f->next_start, a);
            cron_fmt_time(f->next_end, b);
            log_line(&s, "%s: schedule '%s'%s%s; next interval %s .. %s", f->name, f->schedule,
                     f->tz ? " tz " : "", f->tz ? f->tz : "", a, b);
        }
        if (f->watch_dir)
            log_line(&s, "%s: watching %s (debounce %g s)", f->name, f->watch_dir, s.o.debounce);
    }
    if (s.msrv) { /* its thread, once serve is set up (no fork after: runs exec at once) */
        s.sizes.state_dir = s.o.state;
        if (mx_runs_init(&s.runs) || mx_tally_init(&s.insts) || mx_start(s.msrv, serve_render, &s)) {
            fprintf(stderr, "flowrun serve: --metrics: cannot start its thread: %s\n",
                    strerror(errno));
            goto fail;
        }
        log_line(&s, "metrics on port %d (GET /metrics)", mx_port(s.msrv));
    }
    int code = serve_loop(&s);
    log_line(&s, "exiting (%d)", code);
    mx_stop(s.msrv);
    mx_runs_free(&s.runs);
    mx_tally_free(&s.insts);
    for (int i = 0; i < s.nflows; i++) flow_free(&s.flows[i]);
    state_close(s.st);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
    return code;
fail:
    mx_stop(s.msrv);
    mx_runs_free(&s.runs);
    mx_tally_free(&s.insts);
    for (int i = 0; i < s.nflows; i++) flow_free(&s.flows[i]);
    if (s.st) state_close(s.st);
    return 2;
}
