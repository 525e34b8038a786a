/*
 * cli_state.c — flowrun's history and store commands:
 *
 *   flowrun runs [--json]              run history, newest first
 *   flowrun show RUN [--json]          every instance of a run
 *   flowrun logs RUN INSTANCE          one instance's log
 *   flowrun clear RUN INSTANCE         mark instances to run again on resume
 *                                      (INSTANCE: a name as `show` prints it; see below)
 *   flowrun gc [--keep-runs N] [--older-than D] [--dry-run]
 *                                      forget old runs, drop objects nothing refers to
 *
 * Each takes --state DIR (else $FLOW_STATE, else ./.flow) and --env NAME. RUN is a
 * run id or `last` (the newest run). With --env, `runs` lists that environment's
 * runs only, `gc` forgets only its runs (what any other run needs stays), and
 * show, logs and clear refuse a run of another environment (exit 2): from `--env
 * test` nothing of prod's is changed, or shown as if it were test's. Without
 * --env each works on every environment, as before environments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_names.h"
#include "config.h"
#include "state.h"
#include "store.h"
#include "walk.h"
#include "value.h"

/* The state directory: --state, then $FLOW_STATE, then flow.yaml's state, then ./.flow */
const char *state_dir_default(const char *given, const flcfg *cfg) {
    if (given && *given) return given;
    const char *env = getenv("FLOW_STATE");
    if (env && *env) return env;
    return cfg && cfg->state ? cfg->state : ".flow";
}

int cli_state_dir(const char *who, const char *given, const char *config, char *buf, size_t len) {
    flcfg cfg;
    char err[1024];
    if (flcfg_load(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", who, err);
        return -1;
    }
    int n = snprintf(buf, len, "%s", state_dir_default(given, &cfg));
    flcfg_free(&cfg);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "%s: the state directory's name is too long\n", who);
        return -1;
    }
    return 0;
}


enum { O_STATE = 256, O_JSON, O_KEEP_RUNS, O_OLDER_THAN, O_DRY_RUN, O_ENV, O_CONFIG };

/* --json first: the commands without it read from the second entry on */
static const struct option state_options[] = {{"json", no_argument, NULL, O_JSON},
                                              {"state", required_argument, NULL, O_STATE},
                                              {"env", required_argument, NULL, O_ENV},
                                              {"config", required_argument, NULL, O_CONFIG},
                                              {NULL, 0, NULL, 0}};

/* --state DIR, --env NAME, --json where json_ok, and at most maxpos arguments, in
 * any order */
static int parse(int argc, char **argv, cli_args *a, int maxpos, int json_ok) {
    memset(a, 0, sizeof *a);
    char who[64];
    snprintf(who, sizeof who, "flowrun %s", argv[0]);
    cli_line l;
    cli_line_init(&l, argc, argv, who, "", "", json_ok ? state_options : state_options + 1, 0);
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        if (c == CLI_ERROR) return -1;
        if (c == O_STATE) {
            a->state = val;
        } else if (c == O_ENV) {
            if (!*val) {
                fprintf(stderr, "%s: --env needs an environment's name\n", who);
                return -1;
            }
            a->env = val;
        } else if (c == O_CONFIG) {
            a->config = val;
        } else if (c == O_JSON) {
            a->json = 1;
        } else if (a->npos < maxpos) { /* CLI_ARG */
            a->pos[a->npos++] = val;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", who, val);
            return -1;
        }
    }
    if (cli_state_dir(who, a->state, a->config, a->state_buf, sizeof a->state_buf)) return -1;
    a->state = a->state_buf;
    return 0;
}

static fl_state *open_state(const cli_args *a, const char *cmd) {
    char err[1024];
    fl_state *st = state_open(flowrun_ctx(), state_dir_default(a->state, NULL), err, sizeof err);
    if (!st) fprintf(stderr, "flowrun %s: %s\n", cmd, err);
    return st;
}

/* Close the state; a command that met damage or an SQLite error (said once, with
 * what to do, by state.c) never exits 0, even when it printed what it could read. */
static int close_state(fl_state *st, int code) {
    if (state_failed(st) && code == 0) code = 2;
    state_close(st);
    return code;
}

/* The newest run of environment env: its id, or 0 (state_runs_each). */
typedef struct latest_in {
    const char *env;
    int64_t id;
} latest_in;
static int take_latest_in(const state_run *r, void *ctx) {
    latest_in *l = ctx;
    if (strcmp(r->env, l->env)) return 0;
    l->id = r->id;
    return 1;
}
static int64_t state_run_latest_in(fl_state *st, const char *env) {
    latest_in l = {env, 0};
    state_runs_each(st, take_latest_in, &l);
    return l.id;
}

/* Is run r of environment env (NULL: any)? 1, or 0 after saying it is not. */
static int run_in_env(const state_run *r, const char *env, const char *cmd) {
    if (!env || !strcmp(r->env, env)) return 1;
    fprintf(stderr, "flowrun %s: run %lld belongs to environment %s, not %s\n", cmd,
            (long long)r->id, r->env, env);
    return 0;
}

/* RUN: a positive id or `last` (cli_names.h). */
int64_t cli_run_id(fl_state *st, const char *text, const char *cmd, const char *env) {
    int64_t id = 0;
    if (!strcmp(text, "last") || !strcmp(text, "latest")) {
        id = env ? state_run_latest_in(st, env) : state_run_latest(st);
        if (!id && env) fprintf(stderr, "flowrun %s: no runs of environment %s recorded yet\n",
                                cmd, env);
        else if (!id) fprintf(stderr, "flowrun %s: no runs recorded yet\n", cmd);
        return id ? id : -1;
    }
    int64_t v;
    if (cli_count(text, 1, INT64_MAX, &v)) {
        fprintf(stderr, "flowrun %s: '%s' is not a run id (a number, or 'last')\n", cmd, text);
        return -1;
    }
    state_run r;
    if (state_run_get(st, v, &r)) {
        fprintf(stderr, "flowrun %s: no run %lld in this state directory\n", cmd, (long long)v);
        return -1;
    }
    int ok = run_in_env(&r, env, cmd);
    state_run_free(&r);
    return ok ? v : -1;
}

void cli_iso_time(double t, char *buf, size_t len) {
    if (t <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* a string field of a --json line: null when absent (value.h has the rule) */
void cli_json_str(FILE *f, const char *s) {
    if (!s)
        fputs("null", f);
    else
        fv_json_string(f, s, strlen(s));
}

/* ---- runs ---- */
/* A run's state as people read it: a run owned by a flowrun on another host
 * (which cannot be checked from here) says where it runs. */
static const char *state_text(const state_run *r, char *buf, size_t len) {
    if (r->owner != STATE_OWNER_REMOTE) return r->state;
    snprintf(buf, len, "%s (on %s, pid %d)", r->state, r->host, r->pid);
    return buf;
}

typedef struct runs_ctx {
    int json, n;
    const char *env; /* only this environment's runs (NULL: all) */
} runs_ctx;

static int print_run(const state_run *r, void *ctx) {
    runs_ctx *c = ctx;
    if (c->env && strcmp(r->env, c->env)) return 0;
    char started[32], ended[32];
    cli_iso_time(r->started, started, sizeof started);
    cli_iso_time(r->ended, ended, sizeof ended);
    double dur = r->ended > 0 ? r->ended - r->started : -1;
    if (c->json) {
        printf("%s{\"id\":%lld,\"flow\":", c->n ? ",\n" : "\n", (long long)r->id);
        cli_json_str(stdout, r->flow);
        printf(",\"env\":");
        cli_json_str(stdout, r->env);
        printf(",\"state\":");
        cli_json_str(stdout, r->state);
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
        cli_json_str(stdout, r->error);
        printf(",\"plan\":");
        cli_json_str(stdout, r->plan_path);
        printf(",\"options\":");
        cli_json_str(stdout, r->options);
        printf(",\"pid\":%d,\"host\":", r->pid);
        cli_json_str(stdout, r->host);
        printf(",\"logical_date\":"); /* null: not a scheduled run (docs/scheduling.md) */
        cli_json_str(stdout, r->logical);
        putchar('}');
    } else {
        if (!c->n) printf("%-6s %-20s %-6s %-12s %-20s %9s %4s  %s\n", "RUN", "FLOW", "ENV",
                          "STATE", "STARTED", "SECONDS", "EXIT", "LOGICAL");
        char secs[32] = "-", code[16] = "-", st[320];
        if (dur >= 0) snprintf(secs, sizeof secs, "%.2f", dur);
        if (r->exit_code >= 0) snprintf(code, sizeof code, "%d", r->exit_code);
        printf("%-6lld %-20s %-6s %-12s %-20s %9s %4s  %s\n", (long long)r->id, r->flow, r->env,
               state_text(r, st, sizeof st), started, secs, code, r->logical ? r->logical : "-");
    }
    c->n++;
    return 0;
}

int flowrun_cmd_runs(int argc, char **argv) {
    cli_args a;
    if (parse(argc, argv, &a, 0, 1)) return 2;
    fl_state *st = open_state(&a, "runs");
    if (!st) return 2;
    runs_ctx c = {a.json, 0, a.env};
    if (a.json) putchar('[');
    state_runs_each(st, print_run, &c);
    if (a.json) puts(c.n ? "\n]" : "]"); /* one run a line */
    else if (!c.n && a.env)
        fprintf(stderr, "no runs of environment %s recorded in %s\n", a.env,
                a.state);
    else if (!c.n) fprintf(stderr, "no runs recorded in %s\n", a.state);
    return close_state(st, 0);
}

/* ---- show ---- */
static int print_inst(const state_inst *r, void *ctx) {
    runs_ctx *c = ctx;
    char started[32];
    const char *name = r->name;
    cli_iso_time(r->started, started, sizeof started);
    double dur = r->ended > 0 && r->started > 0 ? r->ended - r->started : -1;
    if (c->json) {
        printf("%s{\"name\":", c->n ? "," : "");
        cli_json_str(stdout, r->name);
        printf(",\"task\":");
        cli_json_str(stdout, r->task);
        printf(",\"index\":");
        cli_json_str(stdout, r->idx && *r->idx ? r->idx : NULL);
        printf(",\"label\":");
        cli_json_str(stdout, r->label);
        printf(",\"state\":");
        cli_json_str(stdout, r->state);
        printf(",\"started\":");
        if (r->started > 0) printf("\"%s\"", started);
        else fputs("null", stdout);
        if (dur >= 0) printf(",\"duration\":%.6f", dur);
        else fputs(",\"duration\":null", stdout);
        printf(",\"attempts\":%d,\"cache_hit\":%s,\"worker_pid\":%d,\"peak_rss_kb\":%lld,"
               "\"error\":",
               r->attempts, r->cache_hit ? "true" : "false", r->worker_pid,
               (long long)r->peak_rss_kb);
        cli_json_str(stdout, r->error);
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
        fputs("usage: flowrun show RUN [--json] [--env NAME] [--state DIR]\n", stderr);
        return 2;
    }
    fl_state *st = open_state(&a, "show");
    if (!st) return 2;
    int64_t id = cli_run_id(st, a.pos[0], "show", a.env);
    if (id < 0) {
        state_close(st);
        return 2;
    }
    state_run r;
    if (state_run_get(st, id, &r)) { /* a database error was said; memory is the other */
        if (state_ctx(st)->errcode == FL_ENOMEM) fprintf(stderr, "flowrun: out of memory\n");
        state_close(st);
        return 2;
    }
    runs_ctx c = {a.json, 0, NULL};
    if (a.json) {
        printf("{\"run\":");
        runs_ctx one = {1, 0, NULL};
        print_run(&r, &one);
        printf(",\"instances\":[");
    } else {
        char started[32], st_text[320];
        cli_iso_time(r.started, started, sizeof started);
        printf("run %lld: flow %s (env %s), %s, started %s, params %s\n", (long long)r.id, r.flow,
               r.env, state_text(&r, st_text, sizeof st_text), started, r.params_json);
    }
    int rc = state_insts_each(st, id, print_inst, &c);
    if (a.json) puts("]}");
    state_run_free(&r);
    return close_state(st, rc ? 2 : 0);
}

#define LOGS_ORIGIN_RUNS 1000 /* earlier runs searched for a cached instance's log */

/* The instance of an earlier run that computed a cached instance's result. */
typedef struct log_probe {
    fl_digest key;       /* the cached instance's key */
    int64_t orun;        /* the run found (0: none) */
    char otask[256];     /* its task, index, name template ("" none, else "=" + it), name */
    char oidx[1024];
    char otmpl[1024];
    char oname[2048];
} log_probe;

/* An instance of an earlier run that computed (did not look up) p->key. */
static int probe_origin(const state_inst *r, void *ctx) {
    log_probe *p = ctx;
    if (p->orun || !r->cache_key || r->cache_hit || strcmp(r->state, "succeeded") != 0) return 0;
    if (memcmp(r->cache_key->b, p->key.b, sizeof p->key.b) != 0) return 0;
    p->orun = r->run;
    snprintf(p->otask, sizeof p->otask, "%s", r->task);
    snprintf(p->oidx, sizeof p->oidx, "%s", r->idx);
    if (r->tmpl) snprintf(p->otmpl, sizeof p->otmpl, "=%s", r->tmpl);
    snprintf(p->oname, sizeof p->oname, "%s", r->name);
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

/*
 * Naming an instance on the command line (docs/state.md, "Naming instances"):
 *
 *   NAME                 an instance by its name: a[3], add#2, per_n[2]/square[1];
 *                        or a binding, all its instances: a, per_n[2]/square
 *   BINDING["LABEL"]     the instance of BINDING whose label is LABEL
 *
 * and a task's name wherever a binding's is, when it denotes exactly one binding of
 * the run (count_words[0] for `let counts = count_words.expand(...)`); when it
 * denotes several, the error lists them. Rows of an older flowrun are named
 * task[idx], as that flowrun named them.
 *
 * The run's instances are walked once; for each, its binding (its name without the
 * last index) and its alias (the binding with the last step named by the task) are
 * compared with the argument. Level 0 matches names, level 1 aliases; level 1 is
 * used only when level 0 found nothing.
 */

static void hit_set(hit *h, const state_inst *r, const char *binding) {
    h->node = r->node;
    h->tmpl = r->tmpl ? strdup(r->tmpl) : NULL;
    h->task = strdup(r->task);
    h->idx = strdup(r->idx);
    h->name = strdup(r->name);
    h->binding = strdup(binding);
    snprintf(h->state, sizeof h->state, "%s", r->state);
    h->cached = r->cache_hit || !strcmp(r->state, "cached");
    h->has_key = r->cache_key != NULL;
    if (r->cache_key) h->key = *r->cache_key;
}

static void hit_free(hit *h) {
    free(h->tmpl);
    free(h->task);
    free(h->idx);
    free(h->name);
    free(h->binding);
}

void cli_resolver_free(resolver *R) {
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < R->lv[l].none && i < MAX_HITS; i++) hit_free(&R->lv[l].one[i]);
        for (int i = 0; i < R->lv[l].nwhole; i++) hit_free(&R->lv[l].whole[i]);
    }
}

/* Same binding: node, template and binding text. */
static int same_binding(const hit *h, const state_inst *r, const char *binding) {
    if (h->node != r->node || strcmp(h->binding, binding)) return 0;
    return h->tmpl && r->tmpl ? !strcmp(h->tmpl, r->tmpl) : h->tmpl == r->tmpl;
}

/* Compare r with the argument: name and binding (its real binding, or the alias) as
 * the argument may write them; real: its real binding (remembered). */
static void match_at(resolver *R, level *L, const state_inst *r, const char *binding,
                     const char *name, const char *real) {
    int mapped = r->tmpl ? strlen(r->tmpl) >= 2 && !strcmp(r->tmpl + strlen(r->tmpl) - 2, "[]")
                         : *r->idx != 0;
    int one = !strcmp(name, R->arg) ||
              (R->has_label && r->label && !strcmp(binding, R->path) && !strcmp(r->label, R->label));
    if (one) {
        if (L->none < MAX_HITS) hit_set(&L->one[L->none], r, real);
        L->none++;
        return;
    }
    if (!mapped || strcmp(binding, R->arg) != 0) return;
    for (int i = 0; i < L->nwhole; i++)
        if (same_binding(&L->whole[i], r, real)) {
            L->nwhole_inst[i]++;
            return;
        }
    if (L->nwhole == MAX_HITS) return;
    hit_set(&L->whole[L->nwhole], r, real);
    L->nwhole_inst[L->nwhole++] = 1;
}

static int resolve_inst(const state_inst *r, void *ctx) {
    resolver *R = ctx;
    char binding[2048], alias[2048], aname[2304];
    /* the binding: the name without its last index */
    const char *last = strrchr(r->idx, '/');
    last = last ? last + 1 : r->idx;
    if (r->tmpl) {
        char t[2048];
        snprintf(t, sizeof t, "%s", r->tmpl);
        size_t n = strlen(t);
        if (n >= 2 && !strcmp(t + n - 2, "[]")) t[n - 2] = 0;
        else last = NULL;
        plan_inst_name(t, r->task, r->idx, binding, sizeof binding);
    } else {
        snprintf(binding, sizeof binding, "%s", r->task);
        if (!*r->idx) last = NULL;
    }
    match_at(R, &R->lv[0], r, binding, r->name, binding);
    /* the alias: the last step of the binding named by the task */
    const char *slash = strrchr(binding, '/');
    size_t keep = slash ? (size_t)(slash - binding) + 1 : 0;
    snprintf(alias, sizeof alias, "%.*s%s", (int)keep, binding, r->task);
    if (last) snprintf(aname, sizeof aname, "%s[%s]", alias, last);
    else snprintf(aname, sizeof aname, "%s", alias);
    if (strcmp(alias, binding) != 0) match_at(R, &R->lv[1], r, alias, aname, binding);
    return 0;
}

/* Print the candidates of an ambiguous name; always returns 2. */
static int ambiguous(const char *cmd, const char *arg, int64_t run, const level *L) {
    fprintf(stderr, "flowrun %s: '%s' names more than one binding in run %lld:", cmd, arg,
            (long long)run);
    int n = 0;
    for (int i = 0; i < L->none && i < MAX_HITS && n < 20; i++, n++)
        fprintf(stderr, "%s %s", n ? "," : "", L->one[i].name);
    for (int i = 0; i < L->nwhole && n < 20; i++, n++)
        fprintf(stderr, "%s %s", n ? "," : "", L->whole[i].binding);
    fprintf(stderr, "; name one of them\n");
    return 2;
}

/* The level that matched (NULL: none), after checking that it denotes one binding.
 * *rc is set to 2 after an error message. */
const level *cli_resolved(resolver *R, const char *cmd, int64_t run, int *rc) {
    *rc = 0;
    const level *L = R->lv[0].none || R->lv[0].nwhole ? &R->lv[0]
                     : R->lv[1].none || R->lv[1].nwhole ? &R->lv[1] : NULL;
    if (!L) {
        fprintf(stderr, "flowrun %s: run %lld has no instance %s (flowrun show %lld lists them)\n",
                cmd, (long long)run, R->arg, (long long)run);
        *rc = 2;
        return NULL;
    }
    /* rows of an older flowrun may share a name: they are taken together, as then */
    int old = 1;
    for (int i = 0; i < L->none && i < MAX_HITS; i++) old &= L->one[i].tmpl == NULL;
    for (int i = 0; i < L->nwhole; i++) old &= L->whole[i].tmpl == NULL;
    if (!old && (L->nwhole > 1 || (L->nwhole && L->none) ||
                 (!L->nwhole && L->none > 1))) {
        *rc = ambiguous(cmd, R->arg, run, L);
        return NULL;
    }
    return L;
}

/* The log of one instance, or of what the history says about it. */
static int show_log(const char *dir, fl_state *st, int64_t id, const char *arg, const hit *h) {
    char path[4096];
    if (state_log_path(dir, id, h->tmpl, h->task, h->idx, path, sizeof path) == 0 &&
        print_file(path) == 0)
        return 0;
    /* No log file: say why, and for a cached instance show the log of the run
     * that computed its result. */
    log_probe p;
    memset(&p, 0, sizeof p);
    if (h->cached && h->has_key) {
        p.key = h->key;
        for (int64_t r = id - 1; r >= 1 && r >= id - LOGS_ORIGIN_RUNS && !p.orun; r--)
            state_insts_each(st, r, probe_origin, &p);
    }
    if (h->cached && p.orun) {
        if (state_log_path(dir, p.orun, p.otmpl[0] ? p.otmpl + 1 : NULL, p.otask, p.oidx, path,
                           sizeof path) == 0) {
            FILE *f = fopen(path, "r");
            if (f) {
                fclose(f);
                fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; this log "
                                "is from run %lld, which computed it as %s\n",
                        arg, (long long)id, (long long)p.orun, p.oname);
                return print_file(path) == 0 ? 0 : 2;
            }
        }
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; run %lld computed "
                        "it and it wrote no log\n", arg, (long long)id, (long long)p.orun);
    } else if (h->cached && h->has_key) {
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld; the run that "
                        "computed it is not in the %d runs before it\n", arg, (long long)id,
                LOGS_ORIGIN_RUNS);
    } else if (h->cached) {
        fprintf(stderr, "flowrun logs: %s was served from the cache in run %lld, which recorded "
                        "no cache key to find the run that computed it\n", arg, (long long)id);
    } else {
        fprintf(stderr, "flowrun logs: %s (%s in run %lld) wrote no log\n", h->name, h->state,
                (long long)id);
    }
    return 2;
}

int cli_state_exists(const char *dir, const char *cmd) {
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/state.db", dir);
    if (access(db, F_OK) == 0) return 0;
    fprintf(stderr, "flowrun %s: no state in %s (no run recorded there yet)\n", cmd, dir);
    return -1;
}

fl_state *cli_instance_args(int argc, char **argv, cli_args *a, int64_t *id, resolver *R,
                            int flags) {
    if (parse(argc, argv, a, 2, flags & CLI_INST_JSON)) return NULL;
    if (a->npos != 2) {
        fprintf(stderr, "usage: flowrun %s RUN INSTANCE%s [--env NAME] [--state DIR]\n", argv[0],
                flags & CLI_INST_JSON ? " [--json]" : "");
        return NULL;
    }
    memset(R, 0, sizeof *R);
    R->arg = a->pos[1];
    size_t n = strlen(R->arg);
    const char *lb = NULL; /* BINDING["LABEL"] */
    for (const char *q = strstr(R->arg, "[\""); q; q = strstr(q + 1, "[\"")) lb = q;
    if (!*R->arg || n >= sizeof R->path) {
        fprintf(stderr, "flowrun %s: '%s' is not an instance name\n", argv[0], R->arg);
        return NULL;
    }
    if (lb && n >= 4 && R->arg[n - 1] == ']' && R->arg[n - 2] == '"' && lb + 2 <= R->arg + n - 2) {
        snprintf(R->path, sizeof R->path, "%.*s", (int)(lb - R->arg), R->arg);
        snprintf(R->label, sizeof R->label, "%.*s", (int)(R->arg + n - 2 - (lb + 2)), lb + 2);
        R->has_label = 1;
    }
    if ((flags & CLI_INST_EXISTING) && cli_state_exists(a->state, argv[0]))
        return NULL; /* nothing to explain: said, nothing created */
    fl_state *st = open_state(a, argv[0]);
    if (st) *id = cli_run_id(st, a->pos[0], argv[0], a->env);
    if (st && *id > 0) state_insts_each(st, *id, resolve_inst, R);
    return st;
}

int flowrun_cmd_logs(int argc, char **argv) {
    cli_args a;
    int64_t id = -1;
    resolver *R = calloc(1, sizeof *R);
    fl_state *st = R ? cli_instance_args(argc, argv, &a, &id, R, 0) : NULL;
    int rc = 2;
    if (st && id > 0) {
        const level *L = cli_resolved(R, "logs", id, &rc);
        if (L && L->nwhole) {
            const hit *w = &L->whole[0];
            fprintf(stderr, "flowrun logs: %s is mapped in run %lld (%ld instances): name one, as "
                            "%s[%s]\n", R->arg, (long long)id, L->nwhole_inst[0], w->binding,
                    strrchr(w->idx, '/') ? strrchr(w->idx, '/') + 1 : w->idx);
            rc = 2;
        } else if (L) {
            rc = show_log(state_dir_default(a.state, NULL), st, id, R->arg, &L->one[0]);
        }
    }
    state_close(st);
    if (R) cli_resolver_free(R);
    free(R);
    return rc;
}

int flowrun_cmd_clear(int argc, char **argv) {
    cli_args a;
    int64_t id = -1;
    resolver *R = calloc(1, sizeof *R);
    fl_state *st = R ? cli_instance_args(argc, argv, &a, &id, R, 0) : NULL;
    int rc = 2, n = 0;
    if (st && id > 0) {
        const level *L = cli_resolved(R, "clear", id, &rc);
        for (int i = 0; L && i < L->nwhole && n >= 0; i++) { /* a binding: all of it */
            const hit *w = &L->whole[i];
            char prefix[1024];
            const char *slash = strrchr(w->idx, '/');
            snprintf(prefix, sizeof prefix, "%.*s", slash ? (int)(slash - w->idx) + 1 : 0, w->idx);
            int k = state_inst_clear_at(st, id, w->node, w->tmpl, slash ? prefix : NULL);
            n = k < 0 ? -1 : n + k;
        }
        for (int i = 0; L && i < L->none && i < MAX_HITS && n >= 0; i++) {
            const hit *h = &L->one[i];
            int k = state_inst_clear_at(st, id, h->node, h->tmpl, h->idx);
            n = k < 0 ? -1 : n + k;
        }
        if (L && n >= 0) rc = 0;
    }
    state_close(st);
    if (R) cli_resolver_free(R);
    free(R);
    if (rc) return rc;
    printf("cleared %d instance%s of run %lld; `flowrun resume %lld` runs them again\n", n,
           n == 1 ? "" : "s", (long long)id, (long long)id);
    return 0;
}

/* ---- gc ----
 * Retention first, then collection. A run is forgotten (its rows and logs
 * deleted) only when --keep-runs or --older-than asks and no rule keeps it:
 *   - with --env E, a run of another environment: never forgotten;
 *   - running or interrupted: never forgotten (resume needs it);
 *   - among the newest N runs of its (flow, environment)        (--keep-runs N);
 *   - ended (or, without an end, started) less than DURATION ago (--older-than);
 *   - the newest successful run of its (flow, environment, logical date): backfill
 *     skips the intervals that succeeded, so it needs that record;
 *   - the newest run of its (flow, environment, logical date) when it failed: the
 *     one `flowrun resume` would finish.
 * Then every object is kept that a cache entry (cache_objects) or a remaining
 * run refers to — of every environment, whatever --env chose to forget —: the
 * store paths found in its params, result, and every
 * instance's encoded result (packed rows included), plus the files of each kept
 * directory. gc holds the store's lock exclusively; runs hold it shared, so an
 * object a live run has stored but not yet recorded is never collected. */
typedef struct gc_args {
    const char *state;   /* --state, then the state directory in use (gc_parse) */
    const char *env;     /* --env: forget runs of this environment only; NULL: all */
    const char *config;  /* --config FILE */
    char state_buf[PATH_MAX];
    long long keep_runs; /* -1: not given */
    int64_t older_ms;    /* -1: not given */
    int dry;
} gc_args;

static int gc_parse(int argc, char **argv, gc_args *a) {
    static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
                                          {"keep-runs", required_argument, NULL, O_KEEP_RUNS},
                                          {"older-than", required_argument, NULL, O_OLDER_THAN},
                                          {"dry-run", no_argument, NULL, O_DRY_RUN},
                                          {"env", required_argument, NULL, O_ENV},
                                          {"config", required_argument, NULL, O_CONFIG},
                                          {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->keep_runs = a->older_ms = -1;
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun gc", "", "", opts, 0);
    const char *v;
    for (int c; (c = cli_next(&l, &v)) != CLI_END;) {
        switch (c) {
            case CLI_ERROR:
                return -1;
            case CLI_ARG:
                fprintf(stderr, "flowrun gc: unexpected argument '%s'\n", v);
                return -1;
            case O_STATE:
                a->state = v;
                break;
            case O_CONFIG:
                a->config = v;
                break;
            case O_KEEP_RUNS: {
                int64_t n;
                if (cli_count(v, 0, INT64_MAX, &n)) {
                    fprintf(stderr,
                            "flowrun gc: --keep-runs '%s' is not a count of runs (0, 1, 2, ...)\n",
                            v);
                    return -1;
                }
                a->keep_runs = n;
                break;
            }
            case O_OLDER_THAN: {
                int rc = fv_duration_parse(v, strlen(v), &a->older_ms);
                if (rc) {
                    fprintf(stderr, "flowrun gc: --older-than '%s' is %s\n", v,
                            rc == -2 ? "too long a duration"
                                     : "not a duration (a whole number and a unit: 500ms 30s 5m "
                                       "12h 30d)");
                    return -1;
                }
                break;
            }
            case O_DRY_RUN:
                a->dry = 1;
                break;
            case O_ENV:
                if (!*v) {
                    fputs("flowrun gc: --env needs an environment's name\n", stderr);
                    return -1;
                }
                a->env = v;
                break;
        }
    }
    if (cli_state_dir("flowrun gc", a->state, a->config, a->state_buf, sizeof a->state_buf))
        return -1;
    a->state = a->state_buf;
    return 0;
}

/* One recorded run, as retention sees it. */
typedef struct gc_run {
    int64_t id;
    char *flow, *env, *ldate; /* ldate: the logical date, "" for none */
    char *state;
    double started, ended;
    int keep;                 /* why it is kept (a GC_KEEP_* bit set), 0: forget */
} gc_run;
enum { GC_KEEP_ACTIVE = 1, GC_KEEP_NEWEST = 2, GC_KEEP_YOUNG = 4, GC_KEEP_SUCCESS = 8,
       GC_KEEP_RESUME = 16, GC_KEEP_OTHER_ENV = 32 };

typedef struct gc_ctx {
    gc_run *runs;       /* newest first */
    size_t n, cap;
    int64_t *forget;    /* ids forgotten, sorted ascending */
    size_t nforget;
    fl_digest *live;    /* objects referred to */
    size_t nlive, caplive;
    int dry;
} gc_ctx;

/* Runs carry no logical date yet (backfill will record one): every run has the
 * same, "". When runs get a logical_date, return it here. */
static const char *run_logical_date(const state_run *r) {
    (void)r;
    return "";
}

static char *xstrdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) {
        fputs("flowrun gc: out of memory\n", stderr);
        exit(2);
    }
    return d;
}

static int gc_collect_run(const state_run *r, void *ctx) {
    gc_ctx *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        gc_run *m = realloc(c->runs, c->cap * sizeof *m);
        if (!m) return 1;
        c->runs = m;
    }
    gc_run *g = &c->runs[c->n++];
    memset(g, 0, sizeof *g);
    g->id = r->id;
    g->flow = xstrdup(r->flow);
    g->env = xstrdup(r->env);
    g->ldate = xstrdup(run_logical_date(r));
    g->state = xstrdup(r->state);
    g->started = r->started;
    g->ended = r->ended;
    return 0;
}

static int same_str(const char *a, const char *b) {
    return !strcmp(a, b);
}

/* Orders of runs for retention: by (flow, env), or by (flow, env, logical date);
 * newest first inside each. */
static int cmp_group(const void *x, const void *y, void *with_date) {
    const gc_run *a = *(gc_run *const *)x, *b = *(gc_run *const *)y;
    int d = strcmp(a->flow, b->flow);
    if (!d) d = strcmp(a->env, b->env);
    if (!d && with_date) d = strcmp(a->ldate, b->ldate);
    if (d) return d;
    return a->id > b->id ? -1 : a->id < b->id;
}

/* Mark what each run is kept for: two sorts, then one walk over each group. */
static int gc_retain(gc_ctx *c, const gc_args *a) {
    gc_run **v = malloc((c->n ? c->n : 1) * sizeof *v);
    if (!v) return -1;
    double now_s = (double)time(NULL);
    for (size_t i = 0; i < c->n; i++) {
        gc_run *g = v[i] = &c->runs[i];
        if (same_str(g->state, "running") || same_str(g->state, "interrupted"))
            g->keep |= GC_KEEP_ACTIVE;
        double t = g->ended > 0 ? g->ended : g->started;
        if (a->older_ms >= 0 && (now_s - t) * 1000.0 < (double)a->older_ms)
            g->keep |= GC_KEEP_YOUNG;
        if (a->keep_runs < 0 && a->older_ms < 0) g->keep |= GC_KEEP_NEWEST; /* no retention */
        if (a->env && !same_str(g->env, a->env)) g->keep |= GC_KEEP_OTHER_ENV;
    }
    /* the newest N of each (flow, environment) */
    qsort_r(v, c->n, sizeof *v, cmp_group, NULL);
    long long rank = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (i && (strcmp(v[i - 1]->flow, v[i]->flow) || strcmp(v[i - 1]->env, v[i]->env))) rank = 0;
        if (a->keep_runs >= 0 && rank < a->keep_runs) v[i]->keep |= GC_KEEP_NEWEST;
        rank++;
    }
    /* per (flow, environment, logical date): the newest success, and the newest run
     * when it failed */
    qsort_r(v, c->n, sizeof *v, cmp_group, "");
    int seen_ok = 0;
    for (size_t i = 0; i < c->n; i++) {
        gc_run *g = v[i];
        int first = !i || strcmp(v[i - 1]->flow, g->flow) || strcmp(v[i - 1]->env, g->env) ||
                    strcmp(v[i - 1]->ldate, g->ldate);
        if (first) seen_ok = 0;
        if (first && same_str(g->state, "failed")) g->keep |= GC_KEEP_RESUME;
        if (!seen_ok && same_str(g->state, "succeeded")) {
            g->keep |= GC_KEEP_SUCCESS;
            seen_ok = 1;
        }
    }
    free(v);
    return 0;
}

static int cmp_id(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static void gc_ref(const fl_digest *h, void *ctx) {
    gc_ctx *c = ctx;
    if (c->nlive == c->caplive) {
        c->caplive = c->caplive ? c->caplive * 2 : 1024;
        fl_digest *m = realloc(c->live, c->caplive * sizeof *m);
        if (!m) {
            fputs("flowrun gc: out of memory\n", stderr);
            exit(2);
        }
        c->live = m;
    }
    c->live[c->nlive++] = *h;
}

static void gc_scan(int64_t run, const void *data, size_t len, void *ctx) {
    gc_ctx *c = ctx;
    if (c->nforget && bsearch(&run, c->forget, c->nforget, sizeof run, cmp_id)) return;
    store_refs_scan(data, len, gc_ref, c);
}

static int cmp_obj(const void *a, const void *b) {
    return memcmp(a, b, sizeof(fl_digest));
}

static void gc_list_object(const fl_digest *h, uint64_t bytes, void *ctx) {
    (void)ctx;
    char hex[65];
    hash_hex(h, hex);
    printf("would remove object %s (%llu bytes)\n", hex, (unsigned long long)bytes);
}

static void gc_free(gc_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->runs[i].flow);
        free(c->runs[i].env);
        free(c->runs[i].ldate);
        free(c->runs[i].state);
    }
    free(c->runs);
    free(c->forget);
    free(c->live);
}

int flowrun_cmd_gc(int argc, char **argv) {
    gc_args a;
    if (gc_parse(argc, argv, &a)) return 2;
    cli_args sa = {.state = a.state};
    const char *dir = state_dir_default(a.state, NULL);
    char err[1024];
    fl_state *st = open_state(&sa, "gc");
    if (!st) return 2;
    fl_store *store = store_open(flowrun_ctx(), dir, err, sizeof err);
    if (!store) {
        fprintf(stderr, "flowrun gc: %s\n", err);
        state_close(st);
        return 2;
    }
    gc_ctx c = {.dry = a.dry};
    int rc = 2, lk = store_lock(store, 1, 0);
    if (lk) {
        if (lk > 0)
            fprintf(stderr, "flowrun gc: a flowrun is using %s (a run or resume in progress); "
                            "nothing done: run gc when it has finished\n", dir);
        else
            fprintf(stderr, "flowrun gc: cannot lock %s/store/lock: %s\n", dir, strerror(errno));
        rc = lk > 0 ? 1 : 2;
        goto out;
    }
    if (state_runs_each(st, gc_collect_run, &c)) goto out;
    if (gc_retain(&c, &a)) goto out;
    for (size_t i = 0; i < c.n; i++) {
        gc_run *g = &c.runs[i];
        if (g->keep) continue;
        int64_t *m = realloc(c.forget, (c.nforget + 1) * sizeof *m);
        if (!m) goto out;
        c.forget = m;
        c.forget[c.nforget++] = g->id;
        char started[32];
        cli_iso_time(g->started, started, sizeof started);
        printf("%s run %lld (flow %s, env %s, %s, started %s)\n", a.dry ? "would forget" : "forgot",
               (long long)g->id, g->flow, g->env, g->state, started);
    }
    if (c.nforget > 1) qsort(c.forget, c.nforget, sizeof *c.forget, cmp_id);
    if (!a.dry && c.nforget) {
        if (state_runs_forget(st, c.forget, c.nforget)) goto out;
        for (size_t i = 0; i < c.nforget; i++) {
            char logs[PATH_MAX + 32];
            snprintf(logs, sizeof logs, "%s/logs/%lld", dir, (long long)c.forget[i]);
            walk_remove_path(logs); /* never through a link planted there */
        }
    }
    /* what stays referred to: cache entries, then the remaining runs */
    fl_digest *cached = NULL;
    size_t ncached = 0;
    if (state_live_objects(st, &cached, &ncached)) {
        fl_free(state_ctx(st), cached);
        goto out;
    }
    for (size_t i = 0; i < ncached; i++) gc_ref(&cached[i], &c);
    fl_free(state_ctx(st), cached);
    if (state_history_scan(st, gc_scan, &c)) goto out;
    if (c.nlive > 1) {
        qsort(c.live, c.nlive, sizeof *c.live, cmp_obj);
        size_t u = 1;
        for (size_t i = 1; i < c.nlive; i++)
            if (memcmp(&c.live[i], &c.live[u - 1], sizeof *c.live)) c.live[u++] = c.live[i];
        c.nlive = u;
    }
    uint64_t bytes = 0;
    store_gc_opts o = {a.dry, a.dry ? gc_list_object : NULL, NULL};
    long removed = store_collect(store, c.live, c.nlive, &o, &bytes);
    if (removed < 0) {
        fprintf(stderr, "flowrun gc: out of memory\n");
        goto out;
    }
    size_t kept_runs = c.n - c.nforget;
    printf("%s %ld object%s (%llu bytes, %.1f MiB); kept %zu referenced object%s of %zu run%s "
           "and the cache%s\n",
           a.dry ? "would remove" : "removed", removed, removed == 1 ? "" : "s",
           (unsigned long long)bytes, bytes / 1048576.0, c.nlive, c.nlive == 1 ? "" : "s",
           kept_runs, kept_runs == 1 ? "" : "s", a.dry ? " (dry run: nothing changed)" : "");
    rc = 0;
out:
    gc_free(&c);
    store_close(store);
    state_close(st);
    return rc;
}
