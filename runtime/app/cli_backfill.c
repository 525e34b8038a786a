/*
 * cli_backfill.c — `flowrun backfill PLAN --from X --to Y` (runtime.md §3; the user's
 * view: docs/scheduling.md "Backfill").
 *
 * The intervals are the schedule's firings whose start lies in [--from, --to] (dates:
 * from the first instant of --from's day to the last of --to's, in the schedule's zone;
 * times: the instants themselves), enumerated with cron.c, in --order. Intervals that
 * already succeeded (a run of the flow, in its env, with that logical date, whatever
 * the plan: state_run.logical) are skipped unless --rerun. Each other interval is run
 * by a child `flowrun run PLAN --interval WHEN` (posix_spawn of /proc/self/exe), at
 * most --runs at once: the child claims the interval in state.db (state_claim) and
 * runs it, so a failed or interrupted interval is resumed under its run id, two
 * backfills (or a backfill and serve) never run one interval twice, and a child that
 * crashes takes no other interval with it. A process per interval costs a plan read
 * and a state.db open (bench/backfill.sh measures it: a few ms).
 *
 * SIGINT/SIGTERM: no new interval starts, the running children are sent SIGINT (they
 * stop as `flowrun run` does: interrupted, resumable) and waited for; exit 3. The next
 * backfill resumes them. Exit 0 when every interval succeeded (now or before), 1 when
 * some failed (listed on stderr with their dates), 2 usage errors (unscheduled flow,
 * --from after --to, more than --max-intervals intervals, unknown flow).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "cron.h"
#include "modpath.h"
#include "plan.h"
#include "state.h"

extern char **environ;

#define BF_MAX_ARGS 4200 /* passed on to each run: run's options (1,024 --param at most) */

static volatile sig_atomic_t bf_stop;

static void bf_on_signal(int sig) {
    (void)sig;
    bf_stop = 1;
}

/* backfill's own options; run's (cli_run_options) are added to them, values apart */
enum { O_FROM = 1000, O_TO, O_ORDER, O_RUNS, O_RERUN, O_MAX_INTERVALS, O_DRY_RUN };
static const struct option bf_own[] = {
    {"from", required_argument, NULL, O_FROM},
    {"to", required_argument, NULL, O_TO},
    {"order", required_argument, NULL, O_ORDER},
    {"runs", required_argument, NULL, O_RUNS},
    {"rerun", no_argument, NULL, O_RERUN},
    {"max-intervals", required_argument, NULL, O_MAX_INTERVALS},
    {"dry-run", no_argument, NULL, O_DRY_RUN},
};
enum { BF_NOWN = sizeof bf_own / sizeof bf_own[0], BF_MAX_OPTS = 64 };

typedef struct bf_args {
    const char *plan, *flow, *from, *to, *env, *state;
    const char *config;            /* --config (passed on to each run too) */
    char state_buf[PATH_MAX];      /* the state directory in use */
    int newest_first, rerun, dry_run, runs;
    const char *dry_only;          /* --json or --exact, given (they need --dry-run) */
    long max_intervals;
    const char *pass[BF_MAX_ARGS]; /* run's options, as given (name, value) */
    int npass;
    const char *params[1024];      /* the --param values, to refuse the first parameter */
    int nparams;
} bf_args;

typedef struct interval {
    int64_t start;
    char logical[24];
    pid_t pid;      /* while its run is running */
    int status;     /* BF_* */
    int code;       /* the run's exit code */
    double t0, secs;
} interval;

enum { BF_TODO, BF_SKIPPED, BF_RUNNING, BF_SUCCEEDED, BF_FAILED, BF_INTERRUPTED, BF_BUSY };

static int bf_usage(const char *fmt, const char *x) {
    fputs("flowrun backfill: ", stderr);
    fprintf(stderr, fmt, x);
    fputs(" (see flowrun backfill --help)\n", stderr);
    return 2;
}

static int parse_args(int argc, char **argv, bf_args *a) {
    static struct option opts[BF_MAX_OPTS];
    static char names[BF_MAX_OPTS][40]; /* "--name" of each of run's options */
    int no = 0;
    for (int i = 0; i < BF_NOWN; i++) opts[no++] = bf_own[i];
    for (const struct option *o = cli_run_options; o->name && no < BF_MAX_OPTS - 1; o++)
        if (strcmp(o->name, "interval") && strcmp(o->name, "rerun") && strcmp(o->name, "dry-run") &&
            strcmp(o->name, "metrics")) /* each run would bind the same port */
            opts[no++] = *o;
    opts[no] = (struct option){0};
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun backfill", " (see flowrun backfill --help)", "j:",
                  opts, 0);
    a->runs = 1;
    a->max_intervals = 10000;
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        int64_t n;
        switch (c) {
            case CLI_ERROR: return 2;
            case CLI_ARG:
                if (a->plan) return bf_usage("unexpected argument '%s'", val);
                a->plan = val;
                break;
            case O_FROM: a->from = val; break;
            case O_TO: a->to = val; break;
            case O_ORDER:
                if (strcmp(val, "oldest-first") && strcmp(val, "newest-first"))
                    return bf_usage("--order expects oldest-first or newest-first, got '%s'", val);
                a->newest_first = !strcmp(val, "newest-first");
                break;
            case O_RUNS:
                if (cli_count(val, 1, 1024, &n))
                    return bf_usage("--runs expects a number from 1 to 1024, got '%s'", val);
                a->runs = (int)n;
                break;
            case O_RERUN: a->rerun = 1; break;
            case O_MAX_INTERVALS:
                if (cli_count(val, 1, 100000000, &n))
                    return bf_usage("--max-intervals expects a positive number, got '%s'", val);
                a->max_intervals = n;
                break;
            case O_DRY_RUN: a->dry_run = 1; break;
            default: { /* one of run's options: passed on as given; run checks its value */
                int k = 0;
                while (opts[k].name && opts[k].val != c) k++;
                const char *name = opts[k].name ? opts[k].name : "";
                if (!strcmp(name, "flow")) { /* backfill gives it to each run itself */
                    a->flow = val;
                    break;
                }
                if (a->npass + 2 > BF_MAX_ARGS || a->nparams >= 1024)
                    return bf_usage("%s", "too many options");
                snprintf(names[k], sizeof names[k], c == 'j' ? "-j" : "--%s", name);
                a->pass[a->npass++] = names[k];
                if (val) a->pass[a->npass++] = val;
                if (!strcmp(name, "param")) a->params[a->nparams++] = val;
                if (!strcmp(name, "env")) a->env = val;
                if (!strcmp(name, "state")) a->state = val;
                if (!strcmp(name, "config")) a->config = val;
                if (!strcmp(name, "json") || !strcmp(name, "exact")) a->dry_only = name;
            }
        }
    }
    if (!a->plan) return bf_usage("%s", "missing the PLAN file");
    if (!a->from || !a->to) return bf_usage("%s", "--from and --to are required");
    if (a->dry_only && !a->dry_run) return bf_usage("--%s needs --dry-run", a->dry_only);
    return 0;
}

/* Each succeeded run of the flow in env with a logical date marks its interval skipped
 * (intervals are sorted by start, so by logical text: canonical dates and times sort
 * as they follow each other). */
typedef struct done_ctx {
    const char *flow, *env;
    interval *iv;
    size_t n;
} done_ctx;

static int cmp_logical(const void *k, const void *e) {
    return strcmp(k, ((const interval *)e)->logical);
}

static int mark_done(const state_run *r, void *ctx) {
    done_ctx *d = ctx;
    if (!r->logical || strcmp(r->state, "succeeded") || strcmp(r->flow, d->flow) ||
        strcmp(r->env, d->env))
        return 0;
    interval *i = bsearch(r->logical, d->iv, d->n, sizeof *d->iv, cmp_logical);
    if (i) i->status = BF_SKIPPED;
    return 0;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Start `flowrun run PLAN --flow F --interval WHEN [--rerun] OPTIONS` for iv; with
 * dry_kv ("FIRST=WHEN"), `flowrun run PLAN --flow F --param FIRST=WHEN OPTIONS
 * --dry-run` instead, its report on backfill's standard output. */
static int spawn_run(const bf_args *a, const char *flow, interval *iv, const char *dry_kv) {
    const char *argv[BF_MAX_ARGS + 16];
    int n = 0;
    argv[n++] = "flowrun";
    argv[n++] = "run";
    argv[n++] = a->plan;
    argv[n++] = "--flow";
    argv[n++] = flow;
    if (dry_kv) {
        argv[n++] = "--param";
        argv[n++] = dry_kv;
        argv[n++] = "--dry-run";
    } else {
        argv[n++] = "--interval";
        argv[n++] = iv->logical;
        if (a->rerun) argv[n++] = "--rerun";
    }
    int has_progress = 0;
    for (int i = 0; i < a->npass; i++) {
        has_progress |= !strcmp(a->pass[i], "--progress");
        argv[n++] = a->pass[i];
    }
    if (!has_progress) { /* the backfill's own lines say what happens */
        argv[n++] = "--progress";
        argv[n++] = "none";
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* the flow's result is not backfill's output */
    if (!dry_kv) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    /* this flowrun's binary, by the path /proc/self/exe names (which valgrind, for
     * one, answers with its client's path when read, not when executed) */
    const char *self = mod_self_exe();
    if (!self) self = "/proc/self/exe";
    int rc = posix_spawn(&iv->pid, self, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "flowrun backfill: cannot start a run: %s\n", strerror(rc));
        return -1;
    }
    iv->status = BF_RUNNING;
    iv->t0 = mono();
    return 0;
}

/* The dry run: for each interval, in the backfill's order, `flowrun run --dry-run`
 * (dryrun.c: the real scheduler and cache lookup, nothing run or written) with the
 * interval's first parameter, one after another. Text: a header line per interval, then
 * its report; --json: one array of {"logical_date", "dry_run": the run's report}.
 * Intervals that already succeeded are listed as such (backfill would skip them unless
 * --rerun). Exit 0, or the first run's refusal (2). */
static int backfill_dry_run(const bf_args *a, const fl_plan *p, uint32_t g, interval *iv,
                            size_t n) {
    const plan_graph *G = &p->graphs[g];
    const char *flow = plan_str(p, G->name);
    const char *first = plan_str(p, p->params[G->first_param].name);
    int json = a->dry_only && !strcmp(a->dry_only, "json");
    for (int i = 0; i < a->npass; i++) json |= !strcmp(a->pass[i], "--json");
    if (json) fputs("[", stdout);
    int code = 0;
    for (size_t k = 0; k < n && !bf_stop; k++) {
        interval *v = &iv[a->newest_first ? n - 1 - k : k];
        if (json) printf("%s{\"logical_date\": \"%s\", \"already_succeeded\": %s, \"dry_run\": ",
                         k ? ",\n" : "\n", v->logical, v->status == BF_SKIPPED ? "true" : "false");
        else printf("%s== %s %s%s\n", k ? "\n" : "", flow, v->logical,
                    v->status == BF_SKIPPED ? " (already succeeded: skipped unless --rerun)" : "");
        fflush(stdout);
        char kv[160];
        snprintf(kv, sizeof kv, "%s=%s", first, v->logical);
        if (spawn_run(a, flow, v, kv)) return 1;
        int st = 0;
        while (waitpid(v->pid, &st, 0) < 0 && errno == EINTR) {}
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
        if (json) fputs("}", stdout);
        if (rc) {
            code = rc;
            break;
        }
    }
    if (json) fputs("\n]\n", stdout);
    if (bf_stop && !code) code = 3;
    return code;
}

/* Enumerate the intervals of c whose start lies in [from, to]; 0, or the exit code. */
static int enumerate(const bf_args *a, const fl_cron *c, int as_time, interval **out,
                     size_t *nout) {
    int64_t from, to;
    size_t lf = strlen(a->from), lt = strlen(a->to);
    int from_day = lf == 10, to_day = lt == 10;
    if ((!as_time && (!from_day || !to_day)) || cron_parse_when(c, a->from, 0, &from)) {
        fprintf(stderr, "flowrun backfill: --from expects a date (YYYY-MM-DD)%s, got '%s'\n",
                as_time ? " or a time (YYYY-MM-DDTHH:MM:SSZ)" : "", a->from);
        return 2;
    }
    if ((!as_time && !to_day) || cron_parse_when(c, a->to, 1, &to)) {
        fprintf(stderr, "flowrun backfill: --to expects a date (YYYY-MM-DD)%s, got '%s'\n",
                as_time ? " or a time (YYYY-MM-DDTHH:MM:SSZ)" : "", a->to);
        return 2;
    }
    if (from > to) {
        fprintf(stderr, "flowrun backfill: --from %s is after --to %s\n", a->from, a->to);
        return 2;
    }
    size_t n = 0, cap = 0;
    interval *iv = NULL;
    int64_t t;
    for (int rc = cron_next(c, from - 1, &t); !rc && t <= to; rc = cron_next(c, t, &t)) {
        if (n == (size_t)a->max_intervals) {
            free(iv);
            fprintf(stderr,
                    "flowrun backfill: more than %ld intervals from %s to %s (--max-intervals "
                    "raises the limit)\n", a->max_intervals, a->from, a->to);
            return 2;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            interval *v = realloc(iv, cap * sizeof *iv);
            if (!v) {
                free(iv);
                fputs("flowrun backfill: out of memory\n", stderr);
                return 2;
            }
            iv = v;
        }
        memset(&iv[n], 0, sizeof iv[n]);
        iv[n].start = t;
        cron_logical(c, t, as_time, iv[n].logical);
        n++;
    }
    *out = iv;
    *nout = n;
    return 0;
}

static const char *status_word(int s) {
    return s == BF_SUCCEEDED ? "succeeded" : s == BF_INTERRUPTED ? "interrupted"
         : s == BF_BUSY      ? "being run by another flowrun" : "failed";
}

/* Run the intervals still to do; returns 1 when a run refused its options or
 * parameters (exit 2: no new interval was started after it), else 0. */
static int run_all(const bf_args *a, const char *flow, interval *iv, size_t n) {
    int refused = 0;
    size_t todo = 0;
    for (size_t i = 0; i < n; i++) todo += iv[i].status == BF_TODO;
    size_t next = 0, running = 0, started = 0;
    int sent_stop = 0;
    while (running || (!bf_stop && !refused && next < n)) {
        while (!bf_stop && !refused && running < (size_t)a->runs && next < n) {
            size_t k = a->newest_first ? n - 1 - next : next;
            next++;
            if (iv[k].status != BF_TODO) continue;
            if (spawn_run(a, flow, &iv[k], NULL)) {
                iv[k].status = BF_FAILED;
                iv[k].code = 2;
                continue;
            }
            running++;
            started++;
            fprintf(stderr, "flowrun backfill: %s: started (%zu of %zu)\n", iv[k].logical,
                    started, todo);
        }
        if (!running) break;
        if (bf_stop && !sent_stop) {
            for (size_t i = 0; i < n; i++)
                if (iv[i].status == BF_RUNNING) kill(iv[i].pid, SIGINT);
            sent_stop = 1;
        }
        int ws;
        pid_t pid = waitpid(-1, &ws, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (iv[i].status != BF_RUNNING || iv[i].pid != pid) continue;
            running--;
            iv[i].secs = mono() - iv[i].t0;
            iv[i].code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            /* a child stopped by the signal before its handler was set: interrupted too
             * (its claim, if made, has a dead owner: the next backfill resumes it) */
            if (bf_stop && WIFSIGNALED(ws) &&
                (WTERMSIG(ws) == SIGINT || WTERMSIG(ws) == SIGTERM))
                iv[i].code = 3;
            iv[i].status = iv[i].code == 0 ? BF_SUCCEEDED : iv[i].code == 3 ? BF_INTERRUPTED
                         : iv[i].code == 4 ? BF_SKIPPED : iv[i].code == 5 ? BF_BUSY : BF_FAILED;
            refused |= iv[i].code == 2; /* the same options fail every interval alike */
            if (iv[i].status == BF_SKIPPED)
                fprintf(stderr, "flowrun backfill: %s: already succeeded\n", iv[i].logical);
            else if (iv[i].code == 2)
                fprintf(stderr, "flowrun backfill: %s: refused (exit 2)\n", iv[i].logical);
            else
                fprintf(stderr, "flowrun backfill: %s: %s (%.2f s%s)\n", iv[i].logical,
                        status_word(iv[i].status), iv[i].secs,
                        iv[i].status == BF_FAILED ? ", see flowrun runs" : "");
        }
    }
    return refused;
}

int flowrun_cmd_backfill(int argc, char **argv) {
    bf_args *a = calloc(1, sizeof *a);
    if (!a) return 2;
    int code = parse_args(argc, argv, a);
    fl_plan *p = NULL;
    interval *iv = NULL;
    size_t n = 0;
    if (code) goto out;
    code = 2;
    char err[1024];
    { /* the configuration: the state directory, and --env must name one of its environments */
        flcfg cfg;
        if (flcfg_load(a->config, &cfg, err, sizeof err)) {
            fprintf(stderr, "flowrun backfill: %s\n", err);
            goto out;
        }
        int bad = flcfg_env_problem(&cfg, a->env ? a->env : "prod", err, sizeof err);
        flcfg_free(&cfg);
        if (bad) {
            fprintf(stderr, "flowrun: %s\n", err);
            goto out;
        }
        if (cli_state_dir("flowrun backfill", a->state, a->config, a->state_buf,
                          sizeof a->state_buf))
            goto out;
        a->state = a->state_buf;
    }
    if (!(p = plan_read_file(flowrun_ctx(), a->plan, err, sizeof err))) {
        fprintf(stderr, "flowrun: %s: %s\n", a->plan, err);
        goto out;
    }
    uint32_t g;
    if (cli_pick_flow(p, a->flow, &g)) goto out;
    const plan_graph *G = &p->graphs[g];
    const char *flow = plan_str(p, G->name);
    if (G->schedule == PLAN_NONE || !G->nparams) {
        fprintf(stderr, "flowrun backfill: flow '%s' has no schedule: backfill runs a scheduled "
                "flow once per interval (flowrun run runs it once)\n", flow);
        goto out;
    }
    const char *first = plan_str(p, p->params[G->first_param].name);
    for (int i = 0; i < a->nparams; i++)
        if (!strncmp(a->params[i], first, strlen(first)) && a->params[i][strlen(first)] == '=') {
            fprintf(stderr, "flowrun backfill: '%s' is set per interval: do not give it with "
                    "--param\n", first);
            goto out;
        }
    fl_cron c;
    if (cron_parse(&c, plan_str(p, G->schedule), G->tz != PLAN_NONE ? plan_str(p, G->tz) : NULL,
                   err, sizeof err)) {
        fprintf(stderr, "flowrun backfill: %s: %s\n", a->plan, err);
        goto out;
    }
    int as_time = p->types[p->params[G->first_param].type].kind == PT_TIME;
    if ((code = enumerate(a, &c, as_time, &iv, &n))) goto out;
    /* what already succeeded (a read; each run claims its interval again) */
    size_t skipped = 0;
    char dbpath[PATH_MAX];
    snprintf(dbpath, sizeof dbpath, "%s/state.db", a->state);
    /* a dry run creates no state directory */
    if (!a->rerun && n && (!a->dry_run || access(dbpath, F_OK) == 0)) {
        fl_state *st = state_open(flowrun_ctx(), a->state, err, sizeof err);
        if (!st) {
            fprintf(stderr, "flowrun backfill: %s\n", err);
            goto out;
        }
        done_ctx d = {flow, a->env ? a->env : "prod", iv, n};
        state_runs_each(st, mark_done, &d);
        state_close(st);
        for (size_t i = 0; i < n; i++) skipped += iv[i].status == BF_SKIPPED;
    }
    if (a->dry_run) {
        code = backfill_dry_run(a, p, g, iv, n);
        goto out;
    }
    fprintf(stderr, "flowrun backfill: %s: %zu interval%s from %s to %s", flow, n,
            n == 1 ? "" : "s", n ? iv[0].logical : a->from, n ? iv[n - 1].logical : a->to);
    if (skipped) fprintf(stderr, ", %zu already succeeded (skipped; --rerun runs them again)", skipped);
    fputc('\n', stderr);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bf_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int refused = run_all(a, flow, iv, n);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    size_t ok = 0, bad = 0, left = 0;
    for (size_t i = 0; i < n; i++) {
        int s = iv[i].status;
        ok += s == BF_SUCCEEDED || s == BF_SKIPPED;
        bad += s == BF_FAILED || s == BF_BUSY;
        left += s == BF_TODO || s == BF_INTERRUPTED;
    }
    if (bad) {
        fprintf(stderr, "flowrun backfill: %zu interval%s did not succeed:\n", bad,
                bad == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++)
            if (iv[i].status == BF_FAILED || iv[i].status == BF_BUSY)
                fprintf(stderr, "  %s %s (exit %d)\n", iv[i].logical, status_word(iv[i].status),
                        iv[i].code);
    }
    if (refused) {
        fputs("flowrun backfill: a run refused its options, parameters or state (exit 2, said "
              "above): no further interval was started\n", stderr);
        code = 2;
    } else if (bf_stop) {
        fprintf(stderr, "flowrun backfill: stopped: %zu of %zu intervals succeeded, %zu left; "
                "the same backfill again goes on where this one stopped\n", ok, n, left);
        code = 3;
    } else {
        fprintf(stderr, "flowrun backfill: %zu of %zu intervals succeeded\n", ok, n);
        code = bad || left ? 1 : 0;
    }
out:
    free(iv);
    if (p) plan_free(p);
    free(a);
    return code;
}
