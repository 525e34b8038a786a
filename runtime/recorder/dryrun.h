/*
 * dryrun.h — `flowrun run --dry-run` (and, per interval, `flowrun backfill
 * --dry-run`): what a run would do, computed by the code that decides at run time,
 * with nothing run and nothing written. Layer: recorder. Design at the top of
 * dryrun.c; the report's text and JSON forms in docs/dryrun.md.
 *
 * Entry point: dry_run(plan, flow, parameter values, options) fills a dry_report
 * (one row per binding of a task: how many instances would run, how many are
 * served from the cache, how many depend on an upstream that would run, and each
 * instance that would run with its reason); dry_report_print writes it as text or
 * JSON to a stream the caller gives; dry_report_free releases it. One call per
 * interval for a backfill.
 */
#ifndef FLOW_DRYRUN_H
#define FLOW_DRYRUN_H

#include <stdint.h>
#include <stdio.h>

#include "plan.h"
#include "reason.h"
#include "exec.h"
#include "value.h"

typedef struct dry_inst {
    char *name;     /* "count[3]", "per_n[2]/square[1]" */
    rsn_kind kind;  /* why it runs */
    int param;      /* the parameter, for input and file-metadata reasons; else -1 */
    char *text;     /* the reason for people */
} dry_inst;

typedef struct dry_row {
    uint32_t node;       /* the binding's plan node */
    const char *name;    /* its name (the plan's string) */
    const char *task;    /* its task's name (the plan's string) */
    uint64_t runs;       /* instances that would run */
    uint64_t cached;     /* instances served from the cache */
    uint64_t depends;    /* instances (as far as known) waiting on an upstream that would run */
    char *depends_on;    /* those upstreams' names, ", "-separated, or NULL */
    uint64_t fails;      /* failures the run would meet before running anything here (an
                          * expansion over max_map, a zip of unequal lengths, ...) */
    char *error;         /* the first of them, or NULL */
    dry_inst *v;         /* the instances that would run, in the order met */
    size_t n, cap;
} dry_row;

typedef struct dry_report {
    fl_ctx *ctx;          /* where everything below was allocated (the plan's) */
    const char *flow;     /* the flow's name (the plan's string) */
    int has_state;        /* the state directory had a state.db */
    int exact;            /* --exact: changed files were hashed */
    dry_row **rows;       /* by plan node; NULL where the node has no row */
    uint32_t nnodes;
    uint64_t runs, cached, depends, fails; /* totals */
} dry_report;

typedef struct dry_opts {
    const char *state_dir; /* .flow by default */
    rt_runtime *rt;        /* the linked libraries (their hashes), or NULL */
    int no_cache;          /* --no-cache: every cached task runs */
    int exact;             /* --exact: hash a file whose size or times changed */
    int64_t max_map;       /* --max-map (0: the default) */
    const char *env;       /* --env: the entries it may be served are this environment's
                            * and prod's (NULL: prod; state.c, "environments") */
} dry_opts;

/* The dry run of flow `graph` of p on params (borrowed). 0 (*out filled), or -1 with
 * one line in err (the state cannot be read, out of memory). */
int dry_run(const fl_plan *p, uint32_t graph, const fl_val *params, const dry_opts *o,
            dry_report *out, char *err, size_t errlen);
/* The report as text (at most `cap` instance lines per row, then "... and N more";
 * 0: all) or as one JSON object (every instance). */
void dry_report_print(const fl_plan *p, const dry_report *r, FILE *f, int json, size_t cap);
void dry_report_free(dry_report *r);

#endif
