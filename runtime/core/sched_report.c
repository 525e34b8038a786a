/*
 * sched_report.c — the run's summary as text: what failed, what was not run.
 *
 * DESIGN
 *   The scheduler prints nothing (scheduler.h: the observer). At the end of a
 *   run it hands its observer a sched_summary: the failed instances, put in the
 *   summary's order here (by node, the plan's dependency order, then by index
 *   path compared number by number), and the nodes with instances not run. This
 *   file turns a summary into the lines flowrun prints, one callback per line and
 *   no I/O of its own, so flowrun's printer (cli_progress.c) and the embedding
 *   API (embed.c, which keeps the text in the outcome) say the same thing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_int.h"

/* Index paths in numeric order, component by component ("2" < "10", "1/9" < "1/10"). */
static int idx_cmp(const char *a, const char *b) {
    while (*a || *b) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la != lb) return la < lb ? -1 : 1;
        int c = memcmp(a, b, la);
        if (c) return c;
        a += la + (a[la] == '/');
        b += lb + (b[lb] == '/');
    }
    return 0;
}

/* The summary's order: by node (the plan's, dependency order), then by index. */
static int fail_cmp(const void *x, const void *y) {
    const sched_failure *a = x, *b = y;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    int c = idx_cmp(a->idx, b->idx);
    return c ? c : strcmp(a->what, b->what);
}

void sched_failures_order(sched_failure *f, uint32_t n) {
    if (n > 1) qsort(f, n, sizeof *f, fail_cmp);
}

void sched_summary_lines(const sched_summary *s, void (*line)(void *ud, const char *text),
                         void *ud) {
    char buf[2048];
    if (s->error) {
        snprintf(buf, sizeof buf, "flowrun: internal error: %s", s->error);
        line(ud, buf);
    }
    if (s->nfails == 0 && !s->interrupted && s->nskipped == 0 && s->nskipped_other == 0) return;
    if (s->interrupted) {
        snprintf(buf, sizeof buf,
                 "flowrun: interrupted: %" PRIu64 " of %" PRIu64 " instances finished", s->done,
                 s->total);
        line(ud, buf);
    }
    if (s->nfails) {
        snprintf(buf, sizeof buf, "flowrun: %u instance%s failed:", s->nfails,
                 s->nfails == 1 ? "" : "s");
        line(ud, buf);
    }
    for (uint32_t i = 0; i < s->nfails && i < SCHED_MAX_FAIL_LINES; i++) {
        const sched_failure *F = &s->fails[i];
        char where[300] = "";
        if (F->loc.file)
            snprintf(where, sizeof where, " (%s:%u:%u)", F->loc.file, F->loc.line, F->loc.col);
        /* one line however long the message: the callback gets it whole */
        char *big = NULL;
        const char *fmt = F->label ? "  %s \"%s\": %s%s" : "  %s: %s%s%s";
        const char *a2 = F->label ? F->label : F->error;
        const char *a3 = F->label ? F->error : where;
        const char *a4 = F->label ? where : "";
        int n = snprintf(buf, sizeof buf, fmt, F->what, a2, a3, a4);
        if (n >= (int)sizeof buf && (big = fl_malloc(s->ctx, (size_t)n + 1)) != NULL)
            snprintf(big, (size_t)n + 1, fmt, F->what, a2, a3, a4);
        line(ud, big ? big : buf);
        fl_free(s->ctx, big);
    }
    if (s->nfails > SCHED_MAX_FAIL_LINES) {
        snprintf(buf, sizeof buf, "  ... and %u more", s->nfails - SCHED_MAX_FAIL_LINES);
        line(ud, buf);
    }
    for (uint32_t i = 0; i < s->nskipped; i++) { /* by binding (inside groups: all elements) */
        snprintf(buf, sizeof buf, "  %s: %" PRIu64 " instance%s not run (upstream failed)",
                 s->skipped[i].name, s->skipped[i].n, s->skipped[i].n == 1 ? "" : "s");
        line(ud, buf);
    }
    if (s->nskipped_other) {
        snprintf(buf, sizeof buf, "  %" PRIu64 " other step%s not run (upstream failed)",
                 s->nskipped_other, s->nskipped_other == 1 ? "" : "s");
        line(ud, buf);
    }
}
