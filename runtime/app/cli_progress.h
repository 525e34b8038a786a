/*
 * cli_progress.h — flowrun's scheduler observer: progress lines and the failure
 * summary printed on a stream (app layer; cli_progress.c).
 */
#ifndef FLOW_CLI_PROGRESS_H
#define FLOW_CLI_PROGRESS_H

#include <stdio.h>

#include "scheduler.h"

typedef enum sched_progress {
    SCHED_PROGRESS_NONE,  /* no progress lines (the summary is still printed) */
    SCHED_PROGRESS_PLAIN, /* a line every 2 s and one at the end */
    SCHED_PROGRESS_LIVE   /* one line redrawn in place (a terminal) */
} sched_progress;

typedef struct cli_progress {
    FILE *f;             /* where the lines go */
    sched_progress mode; /* what progress to print */
    double last;         /* elapsed time of the last line drawn */
    sched_observer obs;  /* give &obs to sched_opts.obs */
} cli_progress;

/* Set up cp to print on f; then sched_opts.obs = &cp->obs. Nothing to free. */
void cli_progress_init(cli_progress *cp, FILE *f, sched_progress mode);

#endif /* FLOW_CLI_PROGRESS_H */
