/*
 * cli_names.h — what flowrun's history commands share (cli_state.c): their common
 * arguments (RUN, INSTANCE, --state, --env, --config, --json), RUN resolved to a run
 * id (`last` included), and INSTANCE resolved by the naming rule of docs/state.md
 * ("Naming instances"): an instance's name, a binding's name (all its instances), a
 * label, or a task's name when it denotes exactly one binding of the run. `logs`,
 * `clear` and `why` (cli_why.c) take INSTANCE through this one resolver; `report`
 * (cli_report.c) takes RUN through cli_run_id.
 */
#ifndef FLOW_CLI_NAMES_H
#define FLOW_CLI_NAMES_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "digest.h"
#include "state.h"

typedef struct cli_args {
    const char *state;  /* --state DIR, then the state directory in use (parse) */
    const char *env;    /* --env NAME, or NULL: every environment */
    const char *config; /* --config FILE */
    char state_buf[PATH_MAX]; /* the state directory in use */
    int json;           /* --json */
    const char *pos[3]; /* positional arguments */
    int npos;
} cli_args;

#define MAX_HITS 64 /* instances and bindings remembered per level */

typedef struct hit {
    uint32_t node;
    char *tmpl, *task, *idx, *name, *binding;
    char state[32];
    int cached, has_key;
    fl_digest key;
} hit;

typedef struct level {
    hit one[MAX_HITS];   /* instances named one by one (a name, a label) */
    int none;            /* how many (may exceed MAX_HITS) */
    hit whole[MAX_HITS]; /* bindings named whole: their first instance */
    long nwhole_inst[MAX_HITS]; /* instances of each */
    int nwhole;
} level;

typedef struct resolver {
    const char *arg;     /* as given */
    char path[1024];     /* with a label selector: the binding part */
    char label[1024];    /* the label, when the argument ends in ["..."] */
    int has_label;
    level lv[2];
} resolver;

enum { CLI_INST_JSON = 1,    /* --json is accepted */
       CLI_INST_EXISTING = 2 /* a state folder without state.db is an error (exit 2), not
                              * created */
};

/* The arguments of `flowrun CMD RUN INSTANCE [options]`: the state opened, the run's
 * id (-1 when there is none, said), and the argument resolved against the run's
 * instances into *R (zeroed first). NULL after a usage error (said). */
fl_state *cli_instance_args(int argc, char **argv, cli_args *a, int64_t *id, resolver *R,
                            int flags);
/* RUN: a positive id or `last` (with env: the newest run of env, and a run of
 * another environment is refused). -1 with a message ("flowrun CMD: no run 9 in this
 * state directory") when there is no such run. */
int64_t cli_run_id(fl_state *st, const char *text, const char *cmd, const char *env);
/* 0 when DIR holds a state.db; else -1 after saying "flowrun CMD: no state in DIR (no
 * run recorded there yet)": a reading command creates nothing. */
int cli_state_exists(const char *dir, const char *cmd);
/* The level of R that matched (NULL: none, or the name denotes more than one binding:
 * said on stderr, *rc 2). */
const level *cli_resolved(resolver *R, const char *cmd, int64_t run, int *rc);
void cli_resolver_free(resolver *R);
/* t (seconds since the epoch) as 2026-01-02T03:04:05Z, "-" when 0. */
void cli_iso_time(double t, char *buf, size_t len);
/* A string field of a --json line: null when absent. */
void cli_json_str(FILE *f, const char *s);

#endif
