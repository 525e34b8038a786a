/*
 * cli_state.c — flowrun's history and store commands:
 *
 *   flowrun runs [--json]              run history, newest first
 *   flowrun show RUN [--json]          every instance of a run
 *   flowrun logs RUN TASK[INDEX]       one instance's log
 *   flowrun clear RUN TASK[INDEX]      mark instances to run again on resume
 *   flowrun gc                         drop store objects nothing refers to
 *
 * Each takes --state DIR (else $FLOW_STATE, else ./.flow). RUN is a run id or
 * `last` (the newest run).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "state.h"
#include "store.h"

const char *state_dir_default(const char *given);

/* The state directory: --state, then $FLOW_STATE, then ./.flow */
const char *state_dir_default(const char *given) {
    if (given && *given) return given;
    const char *env = getenv("FLOW_STATE");
    return env && *env ? env : ".flow";
}

typedef struct cli_args {
    const char *state;  /* --state DIR */
    int json;           /* --json */
    const char *pos[3]; /* positional arguments */
    int npos;
} cli_args;

static int parse(int argc, char **argv, cli_args *a, int maxpos, int json_ok) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc) {
            a->state = argv[++i];
        } else if (!strncmp(argv[i], "--state=", 8)) {
            a->state = argv[i] + 8;
        } else if (json_ok && !strcmp(argv[i], "--json")) {
            a->json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "flowrun %s: unknown option '%s'\n", argv[0], argv[i]);
            return -1;
        } else if (a->npos < maxpos) {
            a->pos[a->npos++] = argv[i];
        } else {
            fprintf(stderr, "flowrun %s: unexpected argument '%s'\n", argv[0], argv[i]);
            return -1;
        }
    }
    return 0;
}

static flow_state *open_state(const cli_args *a, const char *cmd) {
    char err[1024];
    flow_state *st = state_open(state_dir_default(a->state), err, sizeof err);
    if (!st) fprintf(stderr, "flowrun %s: %s\n", cmd, err);
    return st;
}

/* RUN: a positive id or `last`. -1 with a message when there is no such run. */
static int64_t run_id(flow_state *st, const char *text, const char *cmd) {
    int64_t id = 0;
    if (!strcmp(text, "last") || !strcmp(text, "latest")) {
        id = state_run_latest(st);
        if (!id) fprintf(stderr, "flowrun %s: no runs recorded yet\n", cmd);
        return id ? id : -1;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0) {
        fprintf(stderr, "flowrun %s: '%s' is not a run id (a number, or 'last')\n", cmd, text);
        return -1;
    }
    state_run r;
    if (state_run_get(st, v, &r)) {
        fprintf(stderr, "flowrun %s: no run %lld in this state directory\n", cmd, v);
        return -1;
    }
    state_run_free(&r);
    return v;
}

static void iso_time(double t, char *buf, size_t len) {
    if (t <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* ---- runs ---- */
typedef struct runs_ctx {
    int json, n;
} runs_ctx;

static int print_run(const state_run *r, void *ctx) {
    runs_ctx *c = ctx;
    char started[32], ended[32];
    iso_time(r->started, started, sizeof started);
    iso_time(r->ended, ended, sizeof ended);
    double dur = r->ended > 0 ? r->ended - r->started : -1;
    if (c->json) {
        printf("%s{\"id\":%lld,\"flow\":", c->n ? ",\n" : "\n", (long long)r->id);
        json_str(stdout, r->flow);
        printf(",\"env\":");
        json_str(stdout, r->env);
        printf(",\"state\":");
        json_str(stdout, r->state);
        printf(",\"started\":\"%s\",\"ended\":", started);
        if (r->ended > 0) printf("\"%s\"", ended);
        else fputs("null", stdout);
        if (dur >= 0) printf(",\"duration\":%.3f", dur);
        else fputs(",\"duration\":null", stdout);
        printf(",\"exit_code\":");
        if (r->exit_code >= 0) printf("%d", r->exit_code);
        else fputs("null", stdout);
        printf(",\"params\":%s,\"result\":%s,\"error\":", r->params_json ? r->params_json : "{}",
               r->result_json ? r->result_json : "null");
        json_str(stdout, r->error);
        printf(",\"plan\":");
        json_str(stdout, r->plan_path);
        printf(",\"options\":");
        json_str(stdout, r->options);
        putchar('}');
    } else {
        if (!c->n) printf("%-6s %-20s %-6s %-12s %-20s %9s %4s\n", "RUN", "FLOW", "ENV", "STATE",
                          "STARTED", "SECONDS", "EXIT");
        char secs[32] = "-", code[16] = "-";
        if (dur >= 0) snprintf(secs, sizeof secs, "%.2f", dur);
        if (r->exit_code >= 0) snprintf(code, sizeof code, "%d", r->exit_code);
        printf("%-6lld %-20s %-6s %-12s %-20s %9s %4s\n", (long long)r->id, r->flow, r->env,
               r->state, started, secs, code);
    }
    c->n++;
    return 0;
}

int flowrun_cmd_runs(int argc, char **argv) {
    cli_args a;
    if (parse(argc, argv, &a, 0, 1)) return 2;
    flow_state *st = open_state(&a, "runs");
    if (!st) return 2;
    runs_ctx c = {a.json, 0};
    if (a.json) putchar('[');
    state_runs_each(st, print_run, &c);
    if (a.json) puts(c.n ? "\n]" : "]"); /* one run a line */
    else if (!c.n) fprintf(stderr, "no runs recorded in %s\n", state_dir_default(a.state));
    state_close(st);
    return 0;
}

/* ---- show ---- */
static int print_inst(const state_inst *r, void *ctx) {
    runs_ctx *c = ctx;
    char started[32], name[512];
    iso_time(r->started, started, sizeof started);
    double dur = r->ended > 0 && r->started > 0 ? r->ended - r->started : -1;
    if (r->idx && *r->idx) snprintf(name, sizeof name, "%s[%s]", r->task, r->idx);
    else snprintf(name, sizeof name, "%s", r->task);
    if (c->json) {
        printf("%s{\"task\":", c->n ? "," : "");
        json_str(stdout, r->task);
        printf(",\"index\":");
        json_str(stdout, r->idx && *r->idx ? r->idx : NULL);
        printf(",\"label\":");
        json_str(stdout, r->label);
        printf(",\"state\":");
        json_str(stdout, r->state);
        printf(",\"started\":");
        if (r->started > 0) printf("\"%s\"", started);
        else fputs("null", stdout);
        if (dur >= 0) printf(",\"duration\":%.6f", dur);
        else fputs(",\"duration\":null", stdout);
        printf(",\"attempts\":%d,\"cache_hit\":%s,\"worker_pid\":%d,\"peak_rss_kb\":%lld,"
               "\"error\":",
               r->attempts, r->cache_hit ? "true" : "false", r->worker_pid,
               (long long)r->peak_rss_kb);
        json_str(stdout, r->error);
        putchar('}');
    } else {
        if (!c->n) printf("%-32s %-16s %-15s %-20s %9s %4s %5s  %s\n", "INSTANCE", "LABEL", "STATE",
                          "STARTED", "SECONDS", "TRY", "CACHE", "ERROR");
        char secs[32] = "-";
        if (dur >= 0) snprintf(secs, sizeof secs, "%.3f", dur);
        printf("%-32s %-16s %-15s %-20s %9s %4d %5s  %s\n", name, r->label ? r->label : "-",
               r->state, started, secs, r->attempts, r->cache_hit ? "hit" : "-",
               r->error ? r->error : "");
    }
    c->n++;
    return 0;
}

int flowrun_cmd_show(int argc, char **argv) {
    cli_args a;
    if (parse(argc, argv, &a, 1, 1)) return 2;
    if (a.npos != 1) {
        fputs("usage: flowrun show RUN [--json] [--state DIR]\n", stderr);
        return 2;
    }
    flow_state *st = open_state(&a, "show");
    if (!st) return 2;
    int64_t id = run_id(st, a.pos[0], "show");
    if (id < 0) {
        state_close(st);
        return 2;
    }
    state_run r;
    state_run_get(st, id, &r);
    runs_ctx c = {a.json, 0};
    if (a.json) {
        printf("{\"run\":");
        runs_ctx one = {1, 0};
        print_run(&r, &one);
        printf(",\"instances\":[");
    } else {
        char started[32];
        iso_time(r.started, started, sizeof started);
        printf("run %lld: flow %s (env %s), %s, started %s, params %s\n", (long long)r.id, r.flow,
               r.env, r.state, started, r.params_json);
    }
    state_insts_each(st, id, print_inst, &c);
    if (a.json) puts("]}");
    state_run_free(&r);
    state_close(st);
    return 0;
}

/* TASK or TASK[INDEX] -> task name and index text (NULL when absent). */
static int split_instance(const char *arg, char *task, size_t tlen, char *idx, size_t ilen,
                          int *has_idx) {
    const char *br = strchr(arg, '[');
    *has_idx = 0;
    if (!br) {
        snprintf(task, tlen, "%s", arg);
        return *task ? 0 : -1;
    }
    size_t n = strlen(arg);
    if (arg[n - 1] != ']' || br == arg) return -1;
    snprintf(task, tlen, "%.*s", (int)(br - arg), arg);
    snprintf(idx, ilen, "%.*s", (int)(n - (size_t)(br - arg) - 2), br + 1);
    *has_idx = 1;
    return 0;
}

/* The log of one instance: <state>/logs/<run>/<task>/<index or "-">.log */
static void log_path(const char *state, int64_t run, const char *task, const char *idx, char *buf,
                     size_t len) {
    int n = snprintf(buf, len, "%s/logs/%lld/%s/", state, (long long)run, task);
    if (n < 0 || (size_t)n >= len) return;
    snprintf(buf + n, len - (size_t)n, "%s.log", idx && *idx ? idx : "-");
    for (char *q = buf + n; *q; q++)
        if (*q == '/') *q = '.'; /* "2/5" is written as 2.5.log (history.c) */
}

#define LOGS_ORIGIN_RUNS 1000 /* earlier runs searched for a cached instance's log */

/* What the history says about one instance, when its log file is missing. */
typedef struct log_probe {
    const char *task; /* task name looked for */
    const char *idx;  /* index looked for ("" when unmapped) */
    int found;        /* 1: the run holds this instance */
    int mapped;       /* 1: the run holds instances of this task with an index */
    char state[32];   /* the instance's state */
    int cached;       /* 1: its result came from the cache */
    int has_key;      /* 1: key is set */
    flow_hash key;    /* its cache key */
    char otask[256];  /* the computing instance found in an earlier run: task */
    char oidx[64];    /* ... its index */
    int64_t orun;     /* ... its run (0: none found) */
} log_probe;

static int probe_instance(const state_inst *r, void *ctx) {
    log_probe *p = ctx;
    if (strcmp(r->task, p->task) != 0) return 0;
    if (*r->idx) p->mapped = 1;
    if (strcmp(r->idx, p->idx) != 0) return 0;
    p->found = 1;
    snprintf(p->state, sizeof p->state, "%s", r->state);
    p->cached = r->cache_hit || !strcmp(r->state, "cached");
    if (r->cache_key) {
        p->key = *r->cache_key;
        p->has_key = 1;
    }
    return 0;
}

/* An instance of an earlier run that computed (did not look up) p->key. */
static int probe_origin(const state_inst *r, void *ctx) {
    log_probe *p = ctx;
    if (p->orun || !r->cache_key || r->cache_hit || strcmp(r->state, "succeeded") != 0) return 0;
    if (memcmp(r->cache_key->b, p->key.b, sizeof p->key.b) != 0) return 0;
    p->orun = r->run;
    snprintf(p->otask, sizeof p->otask, "%s", r->task);
    snprintf(p->oidx, sizeof p->oidx, "%s", r->idx);
    return 0;
}

/* A log is shown only if it is a file flowrun wrote: a link in its place is refused. */
static int print_file(const char *path) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
    if (!f) {
        if (fd >= 0) close(fd);
        return -1;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

/* The arguments of `flowrun CMD RUN TASK[INDEX]`: the state opened, the run's id
 * (-1 when there is none), the task and index. NULL after a usage error. */
static flow_state *instance_args(int argc, char **argv, cli_args *a, char *task, size_t tlen,
                                 char *idx, size_t ilen, int *has_idx, int64_t *id) {
    if (parse(argc, argv, a, 2, 0)) return NULL;
    if (a->npos != 2) {
        fprintf(stderr, "usage: flowrun %s RUN TASK[INDEX] [--state DIR]\n", argv[0]);
        return NULL;
    }
    /* a task is a name; an index is digits, '/' between levels and 'c' for group calls:
     * nothing that could lead a log path out of the log folder */
    if (split_instance(a->pos[1], task, tlen, idx, ilen, has_idx) || strchr(task, '/') ||
        !strcmp(task, "..") || !strcmp(task, ".") || strspn(idx, "0123456789/c") != strlen(idx)) {
        fprintf(stderr, "flowrun %s: '%s' is not TASK or TASK[INDEX]\n", argv[0], a->pos[1]);
        return NULL;
    }
    flow_state *st = open_state(a, argv[0]);
    if (st) *id = run_id(st, a->pos[0], argv[0]);
    return st;
}

int flowrun_cmd_logs(int argc, char **argv) {
    cli_args a;
    char task[256], idx[64] = "";
    int has_idx;
    int64_t id = -1;
    flow_state *st = instance_args(argc, argv, &a, task, sizeof task, idx, sizeof idx, &has_idx, &id);
    if (!st) return 2;
    if (id < 0) {
        state_close(st);
        return 2;
    }
    char path[4096];
    log_path(state_dir_default(a.state), id, task, idx, path, sizeof path);
    if (print_file(path) == 0) {
        state_close(st);
        return 0;
    }
    /* No log file: say why, and for a cached instance show the log of the run
     * that computed its result. */
    log_probe p;
    memset(&p, 0, sizeof p);
    p.task = task;
    p.idx = idx;
    state_insts_each(st, id, probe_instance, &p);
    if (p.found && p.cached && p.has_key) {
        for (int64_t r = id - 1; r >= 1 && r >= id - LOGS_ORIGIN_RUNS && !p.orun; r--)
            state_insts_each(st, r, probe_origin, &p);
    }
    state_close(st);
    if (!p.found) {
        if (p.mapped && !has_idx)
            fprintf(stderr, "flowrun logs: %s is mapped in run %lld: name one instance, as %s[0]\n",
                    task, (long long)id, task);
        else
            fprintf(stderr,
                    "flowrun logs: run %lld has no instance %s (flowrun show %lld lists them)\n",
                    (long long)id, a.pos[1], (long long)id);
        return 2;
    }
    if (p.cached && p.orun) {
        log_path(state_dir_default(a.state), p.orun, p.otask, p.oidx, path, sizeof path);
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; this log is "
                            "from run %lld, which computed it as %s%s%s%s\n",
                    a.pos[1], (long long)id, (long long)p.orun, p.otask, *p.oidx ? "[" : "",
                    p.oidx, *p.oidx ? "]" : "");
            return print_file(path) == 0 ? 0 : 2;
        }
    }
    if (p.cached && p.orun)
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; run %lld computed "
                        "it and it wrote no log\n", a.pos[1], (long long)id, (long long)p.orun);
    else if (p.cached && p.has_key)
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; the run that "
                        "computed it is not in the %d runs before it\n", a.pos[1], (long long)id,
                LOGS_ORIGIN_RUNS);
    else if (p.cached)
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld, which recorded "
                        "no cache key to find the run that computed it\n", a.pos[1],
                (long long)id);
    else
        fprintf(stderr, "flowrun logs: %s (%s in run %lld) wrote no log\n", a.pos[1], p.state,
                (long long)id);
    return 2;
}

int flowrun_cmd_clear(int argc, char **argv) {
    cli_args a;
    char task[256], idx[64] = "";
    int has_idx;
    int64_t id = -1;
    flow_state *st = instance_args(argc, argv, &a, task, sizeof task, idx, sizeof idx, &has_idx, &id);
    if (!st) return 2;
    int n = id < 0 ? -1 : state_inst_clear(st, id, task, has_idx ? idx : NULL);
    state_close(st);
    if (id < 0 || n < 0) return 2;
    if (n == 0) {
        fprintf(stderr, "flowrun clear: run %lld has no instance %s\n", (long long)id, a.pos[1]);
        return 2;
    }
    printf("cleared %d instance%s of run %lld; `flowrun resume %lld` runs them again\n", n,
           n == 1 ? "" : "s", (long long)id, (long long)id);
    return 0;
}

int flowrun_cmd_gc(int argc, char **argv) {
    cli_args a;
    if (parse(argc, argv, &a, 0, 0)) return 2;
    const char *dir = state_dir_default(a.state);
    char err[1024];
    flow_state *st = open_state(&a, "gc");
    if (!st) return 2;
    flow_store *store = store_open(dir, err, sizeof err);
    if (!store) {
        fprintf(stderr, "flowrun gc: %s\n", err);
        state_close(st);
        return 2;
    }
    flow_hash *live = NULL;
    size_t n = 0;
    int rc = 2;
    if (state_live_objects(st, &live, &n) == 0) {
        uint64_t freed = 0;
        long removed = store_gc(store, live, n, &freed);
        if (removed >= 0) {
            printf("removed %ld object%s (%.1f MiB); %zu referenced object%s kept\n", removed,
                   removed == 1 ? "" : "s", freed / 1048576.0, n, n == 1 ? "" : "s");
            rc = 0;
        }
    }
    free(live);
    store_close(store);
    state_close(st);
    return rc;
}
