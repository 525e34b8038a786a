/*
 * cli_progress.c — flowrun's scheduler observer (app layer): the progress line
 * and the failure summary, printed on standard error.
 *
 * DESIGN
 *   The scheduler prints nothing; at every round of its loop it hands its
 *   observer the counts (scheduler.h), and at the end the summary. This file
 *   decides how often to draw (plain: a line every 2 s; live: one line redrawn in
 *   place every 0.1 s, cut to the terminal's width) and prints the summary lines
 *   sched_summary_lines formats (sched_report.c, shared with the embedding API).
 */
#include "cli_progress.h"

#include <inttypes.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void on_progress(void *ud, const sched_counts *c, int final) {
    cli_progress *cp = ud;
    if (cp->mode == SCHED_PROGRESS_NONE) return;
    double t = c->elapsed;
    double every = cp->mode == SCHED_PROGRESS_LIVE ? 0.1 : 2.0;
    if (!final && t - cp->last < every) return;
    cp->last = t;
    FILE *f = cp->f;
    if (cp->mode == SCHED_PROGRESS_LIVE) {
        /* The line must stay on one terminal row, or \r cannot take the cursor back
         * to its start and every redraw scrolls: the first form that fits the
         * width (read at each redraw, so a resized window is followed; one column
         * spare, as writing the last column wraps on some terminals), else the
         * shortest cut to fit. */
        char line[3][160];
        snprintf(line[0], sizeof line[0],
                 "%" PRIu64 "/%" PRIu64 " done, %d running, %" PRIu64 " failed, %" PRIu64
                 " cached, %.1fs",
                 c->done, c->total, c->running, c->failed, c->cached, t);
        snprintf(line[1], sizeof line[1], "%" PRIu64 "/%" PRIu64 " %d run %" PRIu64 " fail %.0fs",
                 c->done, c->total, c->running, c->failed, t);
        snprintf(line[2], sizeof line[2], "%" PRIu64 "/%" PRIu64, c->done, c->total);
        struct winsize ws;
        size_t room = sizeof line[0] - 1;
        if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) room = ws.ws_col - 1u;
        int pick = 0;
        while (pick < 2 && strlen(line[pick]) > room) pick++;
        fprintf(f, "\r\033[K%.*s", (int)room, line[pick]);
        if (final) fputc('\n', f);
    } else if (!final || c->total > 0) {
        fprintf(f,
                "flowrun: %" PRIu64 "/%" PRIu64 " done, %d running, %" PRIu64 " failed, %" PRIu64
                " cached, %.1fs\n",
                c->done, c->total, c->running, c->failed, c->cached, t);
    }
    fflush(f);
}

static void put_line(void *ud, const char *text) {
    FILE *f = ud;
    fputs(text, f);
    fputc('\n', f);
}

static void on_summary(void *ud, const sched_summary *s) {
    cli_progress *cp = ud;
    sched_summary_lines(s, put_line, cp->f);
}

void cli_progress_init(cli_progress *cp, FILE *f, sched_progress mode) {
    memset(cp, 0, sizeof *cp);
    cp->f = f;
    cp->mode = mode;
    cp->obs.on_progress = mode == SCHED_PROGRESS_NONE ? NULL : on_progress;
    cp->obs.on_summary = on_summary;
    cp->obs.ud = cp;
}
