/*
 * report.h — the run report's model: what cli_report.c reads from state.db (and the
 * run's plan) and report_html.c writes as one static page (`flowrun report`,
 * docs/observability.md "Report").
 *
 * A run is summarised per binding (a `let`, named as the instances are: `counts`,
 * `per_n/square`): counts by state, durations, peak RSS, retries, its upstream
 * bindings for the graph. Instances are kept one by one only for the Gantt chart of
 * a small run (at most REP_BARS_MAX instances that ran); a larger run is drawn per
 * binding (a band from first start to last end, and a histogram of durations), so the
 * page stays small whatever the run's size. Failed instances are kept (at most
 * REP_FAILS_MAX, with REP_TAILS_MAX log tails). Everything is owned by the rep_run and
 * freed by rep_free.
 */
#ifndef FLOW_REPORT_H
#define FLOW_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "state.h"

#define REP_BARS_MAX 4000   /* instances drawn one by one in the Gantt chart; more: per binding */
#define REP_FAILS_MAX 200   /* failed instances listed */
#define REP_TAILS_MAX 20    /* of which shown with their log's tail */
#define REP_TAIL_LINES 20   /* lines of a log's tail */
#define REP_TAIL_BYTES 4096 /* ... and at most this many bytes */
#define REP_HIST 12         /* duration buckets: <1 ms, 1-3 ms, 3-10 ms ... >= 100 s */
#define REP_UP_MAX 16       /* upstream bindings drawn per binding */
#define REP_LANES_MAX 512   /* Gantt lanes; instances beyond go to the last one */

typedef struct rep_bind {
    uint32_t node; /* plan node of its call (as recorded) */
    char *tmpl;    /* the instances' name template, or NULL (older rows) */
    char *name;    /* the binding's name: `counts`, `per_n/square` */
    char *task;    /* the task's name */
    char *src;     /* "wordcount.flow:8:18" (the call), or NULL without the plan */
    int mapped;    /* its instances have an index */
    int sh;        /* an `sh` task (the plan says; 0 without it) */
    long n, done, cached, failed, skipped, other; /* instances by state */
    long retries;                                 /* attempts beyond the first, summed */
    double first, last; /* first start and last end of the instances that ran (0: none) */
    double *dur;        /* durations of the instances that ran (seconds) */
    size_t ndur, capdur;
    double total, p50, p95, max; /* over dur (cli_report.c, finish) */
    int64_t rss_kb;              /* largest peak RSS recorded */
    int cpu;                     /* its task's CPU figures were recorded (state_task_cpu): */
    double cpu_s;                /* the task's CPU time, estimated (seconds), */
    long cpu_measured, cpu_ran;  /* from this many of the instances that ran */
    long hist[REP_HIST];         /* durations by bucket */
    int up[REP_UP_MAX];          /* upstream bindings (indexes), from the plan */
    int nup;
    int depth, row; /* graph layout */
} rep_bind;

typedef struct rep_bar { /* one instance that ran, for a small run's Gantt chart */
    int bind;              /* its binding (index in rep_run.b) */
    double s, e;           /* start and end, seconds since the epoch */
    int pid, lane, failed; /* worker pid; lane in the chart; it failed */
    char *name;            /* the instance's name */
} rep_bar;

typedef struct rep_fail {
    char *name, *task, *error, *tail, *src, *log; /* tail: the log's end, or NULL */
    int attempts, exit_status, term_signal; /* as recorded (-1: no exit status, 0: no signal) */
} rep_fail;

typedef struct rep_run {
    state_run r; /* the run's record (strings owned by r.ctx) */
    fl_ctx *ctx;
    rep_bind *b;
    size_t nb, capb;
    rep_bar *bars; /* NULL when the run has more than REP_BARS_MAX that ran */
    size_t nbars, capbars;
    int aggregated; /* the Gantt chart is drawn per binding */
    rep_fail *fails;
    size_t nfails;
    long fails_total;
    long n, ran;   /* instances, of which ran (have a start and an end) */
    double t0, t1; /* the time axis: earliest start, latest end */
    int nlanes;
    int inline_ex;    /* every instance that ran did so in flowrun's own process */
    int pid0;         /* that pid (the first instance's) */
    int plan_ok;      /* the run's plan was read */
    int plan_rebuilt; /* ... and differs from the one the run used */
    char plan_err[256];
    int oom;
} rep_run;

/* Read run id of st (its record, every instance, the plan when it can be read, the
 * logs' tails from state directory dir) into R. 0, or -1 after one line on stderr
 * ("flowrun report: ..."). tails: read the failures' logs (not for --compare's run). */
int rep_load(fl_state *st, const char *dir, int64_t id, int tails, rep_run *R);
void rep_free(rep_run *R);

/* Write the page: R, and with C non-NULL what changed against C. 0, or -1 on a write
 * error (errno set). */
int rep_write_html(FILE *f, const rep_run *R, const rep_run *C);

#endif
