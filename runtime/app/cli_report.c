/*
 * cli_report.c — `flowrun report RUN -o FILE.html [--compare RUN2] [--env NAME]
 * [--state DIR] [--config FILE]`: one self-contained static page about a recorded
 * run (issue 17, item 1; docs/observability.md, "Report").
 *
 * DESIGN
 *   Nothing is recomputed: the page is what the run recorded. One pass over the run's
 *   instances (state_insts_each, packed rows decoded as show decodes them) folds each
 *   into its binding (report.h: counts by state, durations, RSS, retries) and, while
 *   the run is small (REP_BARS_MAX instances that ran), keeps it as a bar of the Gantt
 *   chart; past that the bars are dropped and the chart is drawn per binding, so the
 *   page's size does not grow with the run (a million instances: docs/observability.md
 *   gives the figures, bench/report.sh measures them). Rows come in (node, index)
 *   order, so the binding of a row is almost always the previous row's: the lookup is
 *   one comparison.
 *
 *   The run's plan (runs.plan_path) gives what the history does not keep: the graph's
 *   edges (a call's arguments, walked through built-ins such as files, map and zip,
 *   and its `after`s), the source position of each call, which tasks are `sh`. A plan
 *   that is gone or rebuilt since is said on the page (and the graph then has no
 *   edges, or today's).
 *
 *   Gantt lanes are the workers: the worker pid of each instance (process executor,
 *   remote jobs). Under the inline executor every instance has flowrun's own pid and
 *   the threads are not recorded, so lanes are rebuilt by packing the instances into
 *   the fewest lanes in which none overlap (as many as the run really had at once).
 *
 *   Failures: each failed instance's error and its call's source position; the tail
 *   of the first REP_TAILS_MAX logs (read from the state directory's logs/).
 *
 *   The page goes to a temporary file beside FILE, renamed over it once complete: an
 *   error never leaves half a page. Exit codes: 0 written; 2 usage, unknown run, no
 *   or unreadable state, an -o that cannot be created; 1 a write that failed midway
 *   (a full disk).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_names.h"
#include "plan.h"
#include "report.h"
#include "scheduler.h"
#include "state.h"

/* ---- reading the run ---- */

typedef struct load_ctx {
    rep_run *R;
    int last; /* the binding of the previous row */
    const fl_plan *plan;
} load_ctx;

static char *dup_or_null(rep_run *R, const char *s) {
    if (!s) return NULL;
    char *d = fl_strdup(R->ctx, s);
    if (!d) R->oom = 1;
    return d;
}

/* The binding's name from its name template: "per_n[]/square[]" -> "per_n/square". */
static char *name_of(rep_run *R, const state_inst *r) {
    if (R->plan_ok && !r->tmpl) return dup_or_null(R, r->task);
    const char *t = r->tmpl ? r->tmpl : r->task;
    char *d = fl_malloc(R->ctx, strlen(t) + 1);
    if (!d) {
        R->oom = 1;
        return NULL;
    }
    size_t k = 0;
    for (const char *p = t; *p; p++) {
        if ((p[0] == '[' && p[1] == ']') || (p[0] == '{' && p[1] == '}')) {
            p++;
            continue;
        }
        d[k++] = *p;
    }
    d[k] = 0;
    return d;
}

/* Room for one more element in *arr (n used, *cap allocated, of size bytes each):
 * 0, or -1 out of memory (*arr untouched). */
static int room(fl_ctx *x, void *arr, size_t n, size_t *cap, size_t size) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *g = fl_reallocarray(x, *(void **)arr, c, size);
    if (!g) return -1;
    *(void **)arr = g;
    *cap = c;
    return 0;
}

static int same_bind(const rep_bind *b, const state_inst *r) {
    if (b->node != r->node) return 0;
    if (!b->tmpl || !r->tmpl) return !b->tmpl && !r->tmpl && !strcmp(b->task, r->task);
    return !strcmp(b->tmpl, r->tmpl);
}

static int bind_of(load_ctx *c, const state_inst *r) {
    rep_run *R = c->R;
    if (c->last >= 0 && same_bind(&R->b[c->last], r)) return c->last;
    for (size_t i = 0; i < R->nb; i++)
        if (same_bind(&R->b[i], r)) return c->last = (int)i;
    if (room(R->ctx, &R->b, R->nb, &R->capb, sizeof *R->b)) return R->oom = 1, -1;
    rep_bind *b = &R->b[R->nb];
    memset(b, 0, sizeof *b);
    b->node = r->node;
    b->tmpl = dup_or_null(R, r->tmpl);
    b->task = dup_or_null(R, r->task);
    b->name = name_of(R, r);
    const fl_plan *p = c->plan;
    if (p && r->node < p->n_nodes) {
        const plan_node *N = &p->nodes[r->node];
        if (N->kind == PN_CALL || N->kind == PN_EXPAND || N->kind == PN_EXPAND_KWARGS) {
            if (N->ref < p->n_tasks) b->sh = p->tasks[N->ref].kind == TK_SH;
            if (N->loc < p->n_locs) {
                char buf[1200];
                snprintf(buf, sizeof buf, "%s:%u:%u", plan_loc_file(p, N->loc), p->locs[N->loc].line,
                         p->locs[N->loc].col);
                b->src = dup_or_null(R, buf);
            }
        }
    }
    if (R->oom || !b->task || !b->name) return -1;
    return c->last = (int)R->nb++;
}

/* Duration buckets: < 1 ms, 1-3 ms, 3-10 ms, 10-30 ms, ... >= 100 s (report.h). */
static int bucket(double d) {
    static const double edge[REP_HIST - 1] = {0.001, 0.003, 0.01, 0.03, 0.1, 0.3,
                                              1,     3,     10,   30,   100};
    int k = 0;
    while (k < REP_HIST - 1 && d >= edge[k])
        k++;
    return k;
}

/* The last REP_TAIL_LINES lines (at most REP_TAIL_BYTES) of the file at path, or NULL. */
static char *log_tail(rep_run *R, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > REP_TAIL_BYTES ? end - REP_TAIL_BYTES : 0;
    char *buf = fl_malloc(R->ctx, REP_TAIL_BYTES + 1);
    ssize_t n = buf && end >= 0 ? pread(fd, buf, REP_TAIL_BYTES, from) : -1;
    close(fd);
    if (n <= 0) {
        fl_free(R->ctx, buf);
        return NULL;
    }
    buf[n] = 0;
    char *p = buf + n;
    if (p > buf && p[-1] == '\n') p--;
    int lines = 0;
    while (p > buf && lines < REP_TAIL_LINES)
        if (*--p == '\n') lines++;
    if (*p == '\n')
        p++;
    else if (from > 0) { /* cut inside a line: start at the next whole one */
        char *nl = strchr(p, '\n');
        if (nl) p = nl + 1;
    }
    memmove(buf, p, strlen(p) + 1);
    return buf;
}

static int add_bar(rep_run *R, int bind, const state_inst *r) {
    if (R->aggregated) return 0;
    if (R->nbars == REP_BARS_MAX) { /* too many to draw one by one */
        for (size_t i = 0; i < R->nbars; i++)
            fl_free(R->ctx, R->bars[i].name);
        fl_free(R->ctx, R->bars);
        R->bars = NULL;
        R->nbars = R->capbars = 0;
        R->aggregated = 1;
        return 0;
    }
    if (room(R->ctx, &R->bars, R->nbars, &R->capbars, sizeof *R->bars)) return -1;
    rep_bar *x = &R->bars[R->nbars];
    *x = (rep_bar){bind,
                   r->started,
                   r->ended,
                   r->worker_pid,
                   0,
                   !strcmp(r->state, "failed"),
                   dup_or_null(R, r->name)};
    if (!x->name) return -1;
    R->nbars++;
    return 0;
}

typedef struct fold_ctx {
    load_ctx l;
    const char *dir;
    int64_t id;
    int tails;
} fold_ctx;

static int add_fail(fold_ctx *c, int bind, const state_inst *r) {
    rep_run *R = c->l.R;
    R->fails_total++;
    if (R->nfails == REP_FAILS_MAX) return 0;
    if (!R->fails && !(R->fails = fl_calloc(R->ctx, REP_FAILS_MAX, sizeof *R->fails))) return -1;
    rep_fail *f = &R->fails[R->nfails++];
    f->name = dup_or_null(R, r->name);
    f->task = dup_or_null(R, r->task);
    f->error = dup_or_null(R, r->error);
    f->src = dup_or_null(R, R->b[bind].src);
    f->attempts = r->attempts;
    f->exit_status = r->exit_status;
    f->term_signal = r->term_signal;
    char path[PATH_MAX];
    if (state_log_path(c->dir, c->id, r->tmpl, r->task, r->idx, path, sizeof path) == 0) {
        f->log = dup_or_null(R, path);
        if (c->tails && R->nfails <= REP_TAILS_MAX) f->tail = log_tail(R, path);
    }
    return R->oom ? -1 : 0;
}

static int fold(const state_inst *r, void *ctx) {
    fold_ctx *c = ctx;
    rep_run *R = c->l.R;
    int k = bind_of(&c->l, r);
    if (k < 0) return R->oom = 1, 1;
    rep_bind *b = &R->b[k];
    b->n++;
    R->n++;
    if (r->idx && *r->idx) b->mapped = 1;
    const char *s = r->state;
    int cached = !strcmp(s, "cached") || r->cache_hit;
    if (cached)
        b->cached++;
    else if (!strcmp(s, "succeeded"))
        b->done++;
    else if (!strcmp(s, "failed"))
        b->failed++;
    else if (!strcmp(s, "upstream_failed") || !strcmp(s, "skipped"))
        b->skipped++;
    else
        b->other++;
    if (r->attempts > 1) b->retries += r->attempts - 1;
    if (!cached && r->started > 0 && r->ended >= r->started) { /* it ran */
        double d = r->ended - r->started;
        if (room(R->ctx, &b->dur, b->ndur, &b->capdur, sizeof *b->dur)) return R->oom = 1, 1;
        b->dur[b->ndur++] = d;
        b->hist[bucket(d)]++;
        if (!b->first || r->started < b->first) b->first = r->started;
        if (r->ended > b->last) b->last = r->ended;
        if (r->peak_rss_kb > b->rss_kb) b->rss_kb = r->peak_rss_kb;
        if (!R->ran++)
            R->pid0 = r->worker_pid;
        else if (r->worker_pid != R->pid0)
            R->inline_ex = 0;
        if (!R->t0 || r->started < R->t0) R->t0 = r->started;
        if (r->ended > R->t1) R->t1 = r->ended;
        if (add_bar(R, k, r)) return R->oom = 1, 1;
    }
    if (!strcmp(s, "failed") && add_fail(c, k, r)) return R->oom = 1, 1;
    return 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int cmp_bar_start(const void *x, const void *y) {
    const rep_bar *a = x, *b = y;
    return (a->s > b->s) - (a->s < b->s);
}

/* Lanes: by worker pid; under the inline executor (one pid), packed (DESIGN). */
static void lanes(rep_run *R) {
    if (!R->bars || !R->nbars) return;
    qsort(R->bars, R->nbars, sizeof *R->bars, cmp_bar_start);
    double end[REP_LANES_MAX];
    int pid[REP_LANES_MAX];
    int n = 0;
    for (size_t i = 0; i < R->nbars; i++) {
        rep_bar *x = &R->bars[i];
        int k = 0;
        if (R->inline_ex)
            while (k < n && end[k] > x->s + 1e-9)
                k++;
        else
            while (k < n && pid[k] != x->pid)
                k++;
        if (k == n && n < REP_LANES_MAX) end[n] = 0, pid[n] = x->pid, n++;
        if (k >= n) k = n - 1;
        if (x->e > end[k]) end[k] = x->e;
        x->lane = k;
    }
    R->nlanes = n;
}

/* The bindings whose results feed node src: calls found through built-ins. */
static void upstream(rep_run *R, const fl_plan *p, rep_bind *b, uint32_t src, int depth) {
    if (src >= p->n_nodes || depth > 32) return;
    const plan_node *N = &p->nodes[src];
    int k = N->kind;
    if (k == PN_CALL || k == PN_EXPAND || k == PN_EXPAND_KWARGS || k == PN_GROUP_CALL ||
        k == PN_GROUP_EXPAND) {
        const char *stem = sched_node_stem(p, src);
        size_t ls = strlen(stem);
        int found = -1;
        for (size_t i = 0; i < R->nb; i++) { /* a group: its last member that ran */
            const char *nm = R->b[i].name;
            if (R->b[i].node == src ||
                (k >= PN_GROUP_CALL && !strncmp(nm, stem, ls) && nm[ls] == '/'))
                found = (int)i;
        }
        for (int i = 0; i < b->nup; i++)
            if (b->up[i] == found) found = -1;
        if (found >= 0 && &R->b[found] != b && b->nup < REP_UP_MAX) b->up[b->nup++] = found;
        return;
    }
    for (uint32_t i = 0; i < N->nargs && N->first_arg + i < p->n_args; i++)
        upstream(R, p, b, p->args[N->first_arg + i].node, depth + 1);
}

static void edges(rep_run *R, const fl_plan *p) {
    for (size_t i = 0; i < R->nb; i++) {
        rep_bind *b = &R->b[i];
        if (b->node >= p->n_nodes) continue;
        const plan_node *N = &p->nodes[b->node];
        for (uint32_t a = 0; a < N->nargs && N->first_arg + a < p->n_args; a++)
            upstream(R, p, b, p->args[N->first_arg + a].node, 0);
        for (uint32_t a = 0; a < N->nafter && N->first_after + a < p->n_afters; a++)
            upstream(R, p, b, p->afters[N->first_after + a], 0);
    }
}

static void finish(rep_run *R) {
    for (size_t i = 0; i < R->nb; i++) {
        rep_bind *b = &R->b[i];
        if (!b->ndur) continue;
        qsort(b->dur, b->ndur, sizeof *b->dur, cmp_double);
        for (size_t k = 0; k < b->ndur; k++)
            b->total += b->dur[k];
        b->p50 = b->dur[(b->ndur - 1) / 2];
        b->p95 = b->dur[(size_t)((double)(b->ndur - 1) * 0.95)];
        b->max = b->dur[b->ndur - 1];
    }
    /* graph layout: a binding's column is one past its deepest upstream's (the rows
     * come in node order, producers first, so one pass settles it) */
    int rows[256] = {0};
    for (size_t i = 0; i < R->nb; i++) {
        rep_bind *b = &R->b[i];
        for (int k = 0; k < b->nup; k++)
            if (b->up[k] < (int)i && R->b[b->up[k]].depth + 1 > b->depth)
                b->depth = R->b[b->up[k]].depth + 1;
        if (b->depth > 255) b->depth = 255;
        b->row = rows[b->depth]++;
    }
    lanes(R);
}

/* The task's CPU figures (state.h, state_task_cpu) onto each of its bindings. */
static int take_cpu(const state_task_cpu *v, void *ctx) {
    rep_run *R = ctx;
    for (size_t i = 0; i < R->nb; i++) {
        rep_bind *b = &R->b[i];
        if (strcmp(b->task, v->task)) continue;
        b->cpu = 1;
        b->cpu_measured = (long)v->measured;
        b->cpu_ran = (long)v->instances;
        b->cpu_s = v->cpu_wall_ns > 0 ? (double)v->cpu_ns * ((double)v->wall_ns / (double)v->cpu_wall_ns) / 1e9
                                      : (double)v->cpu_ns / 1e9;
    }
    return 0;
}

int rep_load(fl_state *st, const char *dir, int64_t id, int tails, rep_run *R) {
    memset(R, 0, sizeof *R);
    R->ctx = flowrun_ctx();
    R->inline_ex = 1;
    if (state_run_get(st, id, &R->r)) {
        fprintf(stderr, "flowrun report: run %lld cannot be read\n", (long long)id);
        return -1;
    }
    fl_plan *p = NULL;
    if (R->r.plan_path) {
        p = plan_read_file(R->ctx, R->r.plan_path, R->plan_err, sizeof R->plan_err);
        fl_digest h;
        char err[256];
        if (p && hash_file(R->ctx, R->r.plan_path, &h, err, sizeof err) == 0 &&
            memcmp(h.b, R->r.plan_hash.b, sizeof h.b))
            R->plan_rebuilt = 1;
    } else {
        snprintf(R->plan_err, sizeof R->plan_err, "the run recorded no plan");
    }
    R->plan_ok = p != NULL;
    fold_ctx c = {{R, -1, p}, dir, id, tails};
    int rc = state_insts_each(st, id, fold, &c);
    if (!R->oom && p) edges(R, p);
    if (p) plan_free(p);
    if (R->oom) {
        fputs("flowrun report: out of memory\n", stderr);
        return -1;
    }
    if (rc || state_failed(st)) {
        fprintf(stderr, "flowrun report: the instances of run %lld cannot be read\n",
                (long long)id);
        return -1;
    }
    if (!R->ran || R->pid0 != R->r.pid) R->inline_ex = 0; /* inline: flowrun's own pid */
    if (state_task_cpu_each(st, id, take_cpu, R)) {
        fprintf(stderr, "flowrun report: the CPU times of run %lld cannot be read\n",
                (long long)id);
        return -1;
    }
    finish(R);
    return 0;
}

void rep_free(rep_run *R) {
    fl_ctx *x = R->ctx;
    if (!x) return;
    for (size_t i = 0; i < R->nb; i++) {
        rep_bind *b = &R->b[i];
        fl_free(x, b->tmpl), fl_free(x, b->name), fl_free(x, b->task), fl_free(x, b->src);
        fl_free(x, b->dur);
    }
    fl_free(x, R->b);
    for (size_t i = 0; i < R->nbars; i++)
        fl_free(x, R->bars[i].name);
    fl_free(x, R->bars);
    for (size_t i = 0; i < R->nfails; i++) {
        rep_fail *f = &R->fails[i];
        fl_free(x, f->name), fl_free(x, f->task), fl_free(x, f->error), fl_free(x, f->tail);
        fl_free(x, f->src), fl_free(x, f->log);
    }
    fl_free(x, R->fails);
    if (R->r.ctx) state_run_free(&R->r);
    memset(R, 0, sizeof *R);
}

/* ---- the command ---- */

enum { O_STATE = 256, O_ENV, O_CONFIG, O_COMPARE };

static const struct option report_options[] = {
    {"output", required_argument, NULL, 'o'},      {"compare", required_argument, NULL, O_COMPARE},
    {"state", required_argument, NULL, O_STATE},   {"env", required_argument, NULL, O_ENV},
    {"config", required_argument, NULL, O_CONFIG}, {NULL, 0, NULL, 0}};

#define USAGE                                                                                      \
    "usage: flowrun report RUN -o FILE.html [--compare RUN2] [--env NAME] "                        \
    "[--state DIR] [--config FILE]\n"

typedef struct report_args {
    cli_args a;
    const char *out, *compare;
} report_args;

static int parse(int argc, char **argv, report_args *ra) {
    memset(ra, 0, sizeof *ra);
    cli_args *a = &ra->a;
    const char *who = "flowrun report";
    cli_line l;
    cli_line_init(&l, argc, argv, who, " (see flowrun --help)", "o:", report_options, 0);
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        if (c == CLI_ERROR) return -1;
        if (c == 'o')
            ra->out = val;
        else if (c == O_COMPARE)
            ra->compare = val;
        else if (c == O_STATE)
            a->state = val;
        else if (c == O_CONFIG)
            a->config = val;
        else if (c == O_ENV && !*val) {
            fprintf(stderr, "%s: --env needs an environment's name\n", who);
            return -1;
        } else if (c == O_ENV)
            a->env = val;
        else if (a->npos < 1)
            a->pos[a->npos++] = val;
        else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", who, val);
            return -1;
        }
    }
    if (a->npos != 1 || !ra->out || !*ra->out) {
        fputs(a->npos != 1 ? USAGE
                           : "flowrun report: -o FILE.html is needed (where the page goes)\n",
              stderr);
        return -1;
    }
    if (ra->compare && !*ra->compare) {
        fputs("flowrun report: --compare needs a run (an id, or last)\n", stderr);
        return -1;
    }
    if (cli_state_dir(who, a->state, a->config, a->state_buf, sizeof a->state_buf)) return -1;
    a->state = a->state_buf;
    return 0;
}

/* A temporary file beside path: its descriptor (and its name in tmp), or -1 said. */
static int open_beside(const char *path, char *tmp, size_t len) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "flowrun report: -o %s: a folder, not a file\n", path);
        return -1;
    }
    int n = snprintf(tmp, len, "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "flowrun report: -o %s: the name is too long\n", path);
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "flowrun report: -o %s: cannot write there: %s\n", path, strerror(errno));
        return -1;
    }
    mode_t mask = umask(0); /* mkostemp's 0600: the page is made as any file is */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    return fd;
}

int flowrun_cmd_report(int argc, char **argv) {
    report_args ra;
    if (parse(argc, argv, &ra)) return 2;
    cli_args *a = &ra.a;
    if (cli_state_exists(a->state, "report")) return 2;
    char err[1024];
    fl_state *st = state_open(flowrun_ctx(), a->state, err, sizeof err);
    if (!st) {
        fprintf(stderr, "flowrun report: %s\n", err);
        return 2;
    }
    int rc = 2;
    rep_run R = {0}, C = {0};
    int64_t id = cli_run_id(st, a->pos[0], "report", a->env);
    int64_t cid = id > 0 && ra.compare ? cli_run_id(st, ra.compare, "report", a->env) : 0;
    if (id < 0 || cid < 0) goto out;
    char tmp[PATH_MAX + 16];
    int fd = open_beside(ra.out, tmp, sizeof tmp); /* before the work: a bad -o is said first */
    if (fd < 0) goto out;
    if (rep_load(st, a->state, id, 1, &R) || (cid && rep_load(st, a->state, cid, 0, &C))) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    FILE *f = fdopen(fd, "w");
    int werr = !f || rep_write_html(f, &R, cid ? &C : NULL) != 0;
    int e = errno;
    if (f && fclose(f) != 0 && !werr) werr = 1, e = errno;
    if (!f) close(fd);
    if (!werr && rename(tmp, ra.out) != 0) werr = 1, e = errno;
    if (werr) {
        unlink(tmp);
        fprintf(stderr, "flowrun report: writing %s: %s\n", ra.out, strerror(e));
        rc = 1;
        goto out;
    }
    rc = 0;
out:
    rep_free(&R);
    rep_free(&C);
    if (state_failed(st) && rc == 0) rc = 2;
    state_close(st);
    return rc;
}
