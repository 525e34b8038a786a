/*
 * cli_run.c — `flowrun run PLAN [options]` (runtime.md §3).
 *
 * Reads and checks the plan, picks the flow, refuses what the run declares but
 * this build cannot do (refuse.c), checks the parameters, links the
 * libraries, starts the executor and hands everything to the scheduler; prints
 * the flow's result as one line of JSON. Exit codes: 0 ok, 1 a task failed,
 * 2 usage / plan / parameter error, 3 interrupted.
 *
 * A run of a scheduled flow records its first parameter (a date or a time) as its
 * logical date (state_run.logical). `--interval WHEN [--rerun]` (used by flowrun
 * backfill and serve; docs/scheduling.md) sets that parameter and claims the interval
 * first (state_claim), in this process, which then runs it: exit 4 when it had already
 * succeeded, 5 when another flowrun is running it; a failed or interrupted run of it
 * is resumed under its id, with the parameters it was first run with.
 *
 * The configuration (flow.yaml, config.c) is read first: it gives the option
 * defaults a command line does not set, the environments (--env must name one;
 * exit 2 before anything runs), the environment's parameter defaults (below
 * --params) and its root, which is created if missing before the run. Tasks see
 * the environment as FLOW_ENV / FLOW_ENV_ROOT (sh) and flow_env_root() (C).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pwd.h>

#include "cgroup.h"
#include "cli.h"
#include "config.h"
#include "cli_progress.h"
#include "cron.h"
#include "exec.h"
#include "expr.h"
#include "scheduler.h"
#include "dryrun.h"
#include "history.h"
#include "refuse.h"
#include "isolate.h"
#include "modpath.h"
#include "secrets.h"
#include "exec_process.h"
#include "exec_split.h"
#include "state.h"
#include "jit.h"
#include "metrics.h"
#include "remote.h"
#include "remote_podman.h"

#define RUN_MAX_JOBS 4096
#define RUN_MAX_PARAMS 1024 /* --param options on one command line */

/* The one piece of process-wide state: a signal handler can only reach a
 * static. The scheduler polls it through sched_opts.stop. */
static volatile sig_atomic_t run_stop_flag;

static void run_on_signal(int sig) {
    (void)sig;
    run_stop_flag = 1;
}

#define RUN_MAX_SLURM_FLAGS 64

typedef struct run_args {
    const char *plan;             /* plan file */
    const char *flow;             /* --flow */
    char *params[RUN_MAX_PARAMS]; /* --param texts */
    int nparams;
    const char *params_file;      /* --params */
    int jobs;                     /* -j */
    const char *executor;         /* --executor */
    const char *env;              /* --env */
    int unprotected;              /* --unprotected: a non-prod run without isolation */
    int isolated;                 /* 1: kept off the other roots (isolate.c); workers then
                                   * get pid namespaces of their own (exec_process.c) */
    const char *state;            /* --state */
    int no_cache, no_jit, strict; /* --no-cache, --no-jit, --strict */
    const char *progress;   /* --progress */
    int64_t max_map;        /* --max-map */
    int breadth;            /* --schedule breadth */
    int64_t resume;         /* flowrun resume: the run to finish; 0 for a new run */
    int dry_run, json, exact; /* --dry-run [--json] [--exact] (dryrun.h) */
    const char *interval;   /* --interval: the logical date or time to claim and run */
    int rerun;              /* --rerun: claim it even if it succeeded */
    char interval_kv[128];  /* "FIRST=WHEN", appended to params */
    const char *config;     /* --config FILE */
    const char *kube_image; /* --kube-image (over kubernetes: image:) */
    const char *kube_ns;    /* --kube-namespace (over kubernetes: namespace:) */
    const char *events;     /* --events FILE: OpenLineage run events (events.h) */
    const char *metrics;    /* --metrics ADDR:PORT */
    mx_server *msrv;        /* its socket, bound by run_main before the run (metrics.c) */
    const flcfg *cfg;       /* the configuration read (borrowed) */
    /* set by run_body once the environment is known: what the run may write, and what
     * its tasks must see read-only (isolate.c) */
    const char *env_root;   /* the run's environment's root, or NULL */
    const char **ro_roots;  /* every other environment's root (owned by run_body) */
    int n_ro;
    /* --executor slurm (docs/distributed.md): the command line's, else flow.yaml's */
    const char *slurm_partition, *slurm_account, *slurm_time; /* --slurm-partition ... */
    int64_t slurm_max_jobs;                                   /* --slurm-max-jobs */
    const char *slurm_flags[RUN_MAX_SLURM_FLAGS + 1];         /* --slurm-flag, repeated */
    int nslurm_flags;
} run_args;


static int usage_error(const char *fmt, const char *a) {
    fputs("flowrun run: ", stderr);
    fprintf(stderr, fmt, a);
    fputs(" (see flowrun --help)\n", stderr);
    return 2;
}

enum { O_FLOW = 256, O_PARAM, O_PARAMS, O_EXECUTOR, O_ENV, O_STATE, O_PROGRESS, O_MAX_MAP,
       O_SCHEDULE, O_NO_CACHE, O_NO_JIT, O_STRICT, O_DRY_RUN, O_JSON, O_EXACT, O_INTERVAL,
       O_RERUN, O_UNPROTECTED, O_CONFIG, O_KUBE_IMAGE, O_KUBE_NS, O_SLURM_PARTITION,
       O_SLURM_ACCOUNT, O_SLURM_TIME, O_SLURM_MAX_JOBS, O_SLURM_FLAG, O_EVENTS, O_METRICS };

/* run's options; backfill takes them too, all but interval and rerun (cli.h) */
const struct option cli_run_options[] = {
    {"flow", required_argument, NULL, O_FLOW},
    {"param", required_argument, NULL, O_PARAM},
    {"params", required_argument, NULL, O_PARAMS},
    {"jobs", required_argument, NULL, 'j'},
    {"executor", required_argument, NULL, O_EXECUTOR},
    {"env", required_argument, NULL, O_ENV},
    {"state", required_argument, NULL, O_STATE},
    {"progress", required_argument, NULL, O_PROGRESS},
    {"max-map", required_argument, NULL, O_MAX_MAP},
    {"schedule", required_argument, NULL, O_SCHEDULE},
    {"no-cache", no_argument, NULL, O_NO_CACHE},
    {"no-jit", no_argument, NULL, O_NO_JIT},
    {"strict", no_argument, NULL, O_STRICT},
    {"dry-run", no_argument, NULL, O_DRY_RUN},
    {"json", no_argument, NULL, O_JSON},
    {"exact", no_argument, NULL, O_EXACT},
    {"interval", required_argument, NULL, O_INTERVAL},
    {"rerun", no_argument, NULL, O_RERUN},
    {"unprotected", no_argument, NULL, O_UNPROTECTED},
    {"config", required_argument, NULL, O_CONFIG},
    {"kube-image", required_argument, NULL, O_KUBE_IMAGE},
    {"kube-namespace", required_argument, NULL, O_KUBE_NS},
    {"slurm-partition", required_argument, NULL, O_SLURM_PARTITION},
    {"slurm-account", required_argument, NULL, O_SLURM_ACCOUNT},
    {"slurm-time", required_argument, NULL, O_SLURM_TIME},
    {"slurm-max-jobs", required_argument, NULL, O_SLURM_MAX_JOBS},
    {"slurm-flag", required_argument, NULL, O_SLURM_FLAG},
    {"events", required_argument, NULL, O_EVENTS},
    {"metrics", required_argument, NULL, O_METRICS},
    {NULL, 0, NULL, 0}};

/* The options of run and resume (cli_next: --flow NAME, --flow=NAME, -j4 ...), in
 * any order around the one PLAN (for resume, the RUN). */
static int parse_args(int argc, char **argv, run_args *a) {
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun run", " (see flowrun --help)", "j:", cli_run_options, 0);
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        int64_t n;
        switch (c) {
            case CLI_ERROR:
                return 2;
            case CLI_ARG:
                if (a->plan) return usage_error("unexpected argument '%s'", val);
                a->plan = val;
                break;
            case O_FLOW:
                a->flow = val;
                break;
            case O_PARAM:
                if (a->nparams >= RUN_MAX_PARAMS)
                    return usage_error("more than %s --param options", "1024");
                a->params[a->nparams++] = (char *)val;
                break;
            case O_PARAMS:
                a->params_file = val;
                break;
            case 'j':
                if (cli_count(val, 1, RUN_MAX_JOBS, &n))
                    return usage_error("-j expects a number from 1 to 4096, got '%s'", val);
                a->jobs = (int)n;
                break;
            case O_EXECUTOR:
                if (strcmp(val, "inline") && strcmp(val, "process") && strcmp(val, "kubernetes") &&
                    strcmp(val, "slurm"))
                    return usage_error(
                        "--executor expects inline, process, kubernetes or slurm, got '%s'", val);
                a->executor = val;
                break;
            case O_ENV:
                a->env = val;
                break;
            case O_STATE:
                a->state = val;
                break;
            case O_PROGRESS:
                if (strcmp(val, "auto") && strcmp(val, "plain") && strcmp(val, "none"))
                    return usage_error("--progress expects auto, plain or none, got '%s'", val);
                a->progress = val;
                break;
            case O_MAX_MAP:
                if (cli_count(val, 1, INT64_MAX, &n))
                    return usage_error("--max-map expects a positive number, got '%s'", val);
                a->max_map = n;
                break;
            case O_SCHEDULE:
                if (strcmp(val, "depth") && strcmp(val, "breadth"))
                    return usage_error("--schedule expects depth or breadth, got '%s'", val);
                a->breadth = !strcmp(val, "breadth");
                break;
            case O_NO_CACHE:
                a->no_cache = 1;
                break;
            case O_NO_JIT:
                a->no_jit = 1;
                break;
            case O_STRICT:
                a->strict = 1;
                break;
            case O_DRY_RUN:
                a->dry_run = 1;
                break;
            case O_JSON:
                a->json = 1;
                break;
            case O_EXACT:
                a->exact = 1;
                break;
            case O_INTERVAL:
                a->interval = val;
                break;
            case O_RERUN:
                a->rerun = 1;
                break;
            case O_UNPROTECTED:
                a->unprotected = 1;
                break;
            case O_CONFIG:
                a->config = val;
                break;
            case O_KUBE_IMAGE:
                a->kube_image = val;
                break;
            case O_KUBE_NS:
                a->kube_ns = val;
                break;
            case O_SLURM_PARTITION:
                a->slurm_partition = val;
                break;
            case O_SLURM_ACCOUNT:
                a->slurm_account = val;
                break;
            case O_SLURM_TIME:
                a->slurm_time = val;
                break;
            case O_SLURM_MAX_JOBS:
                if (cli_count(val, 1, INT32_MAX, &n))
                    return usage_error("--slurm-max-jobs expects a positive number, got '%s'",
                                       val);
                a->slurm_max_jobs = n;
                break;
            case O_SLURM_FLAG:
                if (a->nslurm_flags >= RUN_MAX_SLURM_FLAGS)
                    return usage_error("more than %s --slurm-flag options", "64");
                if (*val != '-')
                    return usage_error("--slurm-flag expects an sbatch flag (starting with '-'), "
                                       "got '%s'", val);
                a->slurm_flags[a->nslurm_flags++] = val;
                break;
            case O_EVENTS:
                if (!*val) return usage_error("%s", "--events expects a FILE");
                a->events = val;
                break;
            case O_METRICS:
                a->metrics = val;
                break;
        }
    }
    if (!a->plan) return usage_error("%s", "missing the PLAN file");
    if ((a->json || a->exact) && !a->dry_run)
        return usage_error("%s needs --dry-run", a->json ? "--json" : "--exact");
    if (a->rerun && !a->interval) return usage_error("%s", "--rerun goes with --interval");
    if (a->events && a->dry_run)
        return usage_error("%s", "--events records what a run does; a --dry-run runs nothing");
    if (a->metrics && a->dry_run) return usage_error("%s", "--metrics: a dry run runs nothing");
    return 0;
}

/* The flow to run: --flow NAME, or the only flow of the plan. */
int cli_pick_flow(const fl_plan *p, const char *want, uint32_t *out) {
    char names[600] = "";
    size_t n = 0;
    uint32_t nflows = 0, found = PLAN_NONE;
    for (uint32_t g = 0; g < p->n_graphs; g++) {
        if (p->graphs[g].kind != PG_FLOW) continue;
        const char *name = plan_str(p, p->graphs[g].name);
        if (n < sizeof names)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", nflows ? ", " : "", name);
        nflows++;
        if (want ? !strcmp(want, name) : 1) found = g;
    }
    if (nflows == 0) {
        fputs("flowrun: the plan has no flow to run\n", stderr);
        return -1;
    }
    if (want && found == PLAN_NONE) {
        fprintf(stderr, "flowrun: no flow named '%s' in the plan (flows: %s)\n", want, names);
        return -1;
    }
    if (!want && nflows > 1) {
        fprintf(stderr, "flowrun: the plan has several flows (%s): choose one with --flow NAME\n",
                names);
        return -1;
    }
    *out = found;
    return 0;
}

static int ncpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > RUN_MAX_JOBS ? RUN_MAX_JOBS : (int)n;
}

/* The parameters as a JSON object (for the history) and encoded (for resume). */
static void params_record(const fl_plan *p, const plan_graph *G, const fl_val *params,
                          char **json, fv_buf *blob) {
    size_t len = 0;
    FILE *f = open_memstream(json, &len);
    fputc('{', f);
    for (uint32_t i = 0; i < G->nparams; i++) {
        const plan_param *P = &p->params[G->first_param + i];
        fprintf(f, "%s\"%s\":", i ? "," : "", plan_str(p, P->name));
        fv_print_json(p, P->type, params[i], f);
        fv_encode(p, P->type, params[i], blob);
    }
    fputc('}', f);
    fclose(f);
}

/* A resumed run's parameters, decoded from its record. */
static int params_from_blob(const fl_plan *p, const plan_graph *G, const uint8_t *b, size_t n,
                            fl_val *out) {
    size_t off = 0;
    for (uint32_t i = 0; i < G->nparams; i++) {
        size_t used = 0;
        if (fv_decode(p, p->params[G->first_param + i].type, b + off, n - off, &used, &out[i]))
            return -1;
        off += used;
    }
    return 0;
}

static int run_main(run_args *a, const uint8_t *resume_params, size_t resume_len);

/* After an interrupt: the command that finishes the run, ready to paste (with
 * --state unless the state directory is the default, quoted for the shell when
 * it needs to be). */
static void print_resume_hint(int64_t run, const char *state) {
    fprintf(stderr, "flowrun: resume with: flowrun resume %lld", (long long)run);
    if (strcmp(state, ".flow") != 0) {
        int plain = *state != 0;
        for (const char *q = state; *q; q++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+,:@%",
                        *q))
                plain = 0;
        fputs(" --state ", stderr);
        if (plain) {
            fputs(state, stderr);
        } else {
            fputc('\'', stderr);
            for (const char *q = state; *q; q++)
                if (*q == '\'') fputs("'\\''", stderr);
                else fputc(*q, stderr);
            fputc('\'', stderr);
        }
    }
    fputc('\n', stderr);
}

/* Read the configuration into cfg (a->cfg) and check that the run's environment
 * is one of it; 0, or 2 after saying why. */
static int load_config(run_args *a, flcfg *cfg, const char *who) {
    char err[1024];
    if (flcfg_load(a->config, cfg, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", who, err);
        return 2;
    }
    a->cfg = cfg;
    if (flcfg_env_problem(cfg, a->env ? a->env : "prod", err, sizeof err)) {
        fprintf(stderr, "flowrun: %s\n", err);
        flcfg_free(cfg);
        return 2;
    }
    return 0;
}

/* The configuration's option defaults, for what the command line left unset. */
static void config_defaults(run_args *a) {
    const flcfg *c = a->cfg;
    if (!a->executor) a->executor = c->executor;
    if (!a->jobs) a->jobs = c->jobs;
    if (!a->max_map) a->max_map = c->max_map;
    if (!a->progress) a->progress = c->progress;
    a->state = state_dir_default(a->state, c);
}

int flowrun_cmd_run(int argc, char **argv) {
    run_args a;
    memset(&a, 0, sizeof a);
    if (parse_args(argc, argv, &a)) return 2;
    flcfg cfg;
    if (load_config(&a, &cfg, "flowrun run")) return 2;
    config_defaults(&a);
    int code = run_main(&a, NULL, 0);
    flcfg_free(&cfg);
    return code;
}

/* flowrun resume RUN [options]: the same run again, in the same run record; what it
 * finished is served from its record, the rest runs (history.c). */
int flowrun_cmd_resume(int argc, char **argv) {
    run_args a;
    memset(&a, 0, sizeof a);
    if (parse_args(argc, argv, &a)) return 2;
    if (a.nparams || a.params_file || a.flow || a.interval)
        return usage_error("%s", "resume takes the parameters and flow of the run it resumes");
    if (a.dry_run) return usage_error("%s", "--dry-run is an option of run, not of resume");
    char err[1024];
    flcfg cfg;
    if (load_config(&a, &cfg, "flowrun resume")) return 2;
    const char *dir = state_dir_default(a.state, &cfg);
    fl_state *st = state_open(flowrun_ctx(), dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "flowrun resume: %s\n", err);
        flcfg_free(&cfg);
        return 2;
    }
    int64_t id;
    state_run r;
    if (!strcmp(a.plan, "last") || !strcmp(a.plan, "latest"))
        id = state_run_latest(st);
    else if (cli_count(a.plan, 1, INT64_MAX, &id))
        id = -1;
    if (id <= 0 || state_run_get(st, id, &r)) {
        fprintf(stderr, "flowrun resume: no run '%s' in %s\n", a.plan, dir);
        state_close(st);
        flcfg_free(&cfg);
        return 2;
    }
    state_close(st);
    /* a run resumes in its own environment; --env names it, or is refused: from
     * --env test, a prod run is neither resumed nor changed */
    if (a.env && strcmp(a.env, r.env)) {
        fprintf(stderr, "flowrun resume: run %lld belongs to environment %s, not %s\n", (long long)id, r.env,
                a.env);
        state_run_free(&r);
        flcfg_free(&cfg);
        return 2;
    }
    if (r.owner == STATE_OWNER_ALIVE) { /* checked again, atomically, when the run is claimed */
        fprintf(stderr, "flowrun resume: run %lld is still running (pid %d)\n", (long long)id, r.pid);
        state_run_free(&r);
        flcfg_free(&cfg);
        return 2;
    }
    /* the run keeps its environment, which must still be one of the configuration */
    if (flcfg_env_problem(&cfg, r.env ? r.env : "prod", err, sizeof err)) {
        fprintf(stderr, "flowrun resume: run %lld: %s\n", (long long)id, err);
        state_run_free(&r);
        flcfg_free(&cfg);
        return 2;
    }
    if (r.owner == STATE_OWNER_REMOTE)
        fprintf(stderr, "flowrun resume: run %lld was running on %s (pid %d), which cannot be "
                "checked from here; it is resumed here\n", (long long)id, r.host, r.pid);
    a.plan = r.plan_path;
    a.flow = r.flow;
    a.env = r.env;
    a.state = dir;
    a.resume = id;
    /* the options that changed the run's outcome, unless given again here */
    long long mm = 0;
    int nc = 0, strict = 0;
    if (r.options && sscanf(r.options, "max_map=%lld no_cache=%d strict=%d", &mm, &nc, &strict) == 3) {
        if (!a.max_map) a.max_map = mm;
        a.no_cache |= nc;
        a.strict |= strict;
    }
    config_defaults(&a);
    int code = run_main(&a, r.params_blob, r.params_blob_len);
    state_run_free(&r);
    flcfg_free(&cfg);
    return code;
}

/* memory: and max_procs: are enforced or the run does not start (cgroup.c): the inline
 * executor cannot limit one task inside flowrun, and without cgroups nothing can. */
static int limits_refused(const fl_plan *p, const char *exname) {
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        const plan_task *T = &p->tasks[t];
        if (!T->memory && !T->max_procs) continue;
        if (T->image != PLAN_NONE && strcmp(exname, "inline")) continue; /* podman's limits */
        const char *opt = T->memory ? "memory" : "max_procs";
        char why[700];
        if (!strcmp(exname, "inline")) {
            fprintf(stderr,
                    "flowrun: task %s sets %s:, which the inline executor cannot enforce "
                    "(use --executor process)\n",
                    plan_str(p, T->name), opt);
            return 1;
        }
        if (!strcmp(exname, "kubernetes")) { /* memory: the pods' resources */
            if (!T->max_procs) continue;
            fprintf(stderr,
                    "flowrun: task %s sets max_procs:, which Kubernetes cannot enforce for "
                    "one container (refused under --executor kubernetes)\n",
                    plan_str(p, T->name));
            return 1;
        }
        if (fcg_probe(why, sizeof why)) {
            fprintf(stderr,
                    "flowrun: task %s sets %s:, but this machine gives flowrun no cgroup to "
                    "enforce it (%s); it is not run without its limit\n",
                    plan_str(p, T->name), opt, why);
            return 1;
        }
    }
    return 0;
}

static int run_body(run_args *a_, const uint8_t *resume_params, size_t resume_len);

/* Before a run in environment e: its root exists (mkdir -p, mode 0755; a created
 * root is given to e->owner when flowrun is root). 0, or -1 with why in err. */
static int make_root(const flcfg_env *e, char *err, size_t len) {
    struct stat sb;
    if (!e->root) return 0;
    if (stat(e->root, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return 0;
        snprintf(err, len, "environment '%s' root %s: not a directory", e->name, e->root);
        return -1;
    }
    struct passwd *pw = NULL;
    if (e->owner) {
        errno = 0;
        if (!(pw = getpwnam(e->owner))) {
            snprintf(err, len, "environment '%s' root %s: owner '%s': %s", e->name, e->root,
                     e->owner, errno ? strerror(errno) : "no such user");
            return -1;
        }
        if (geteuid() != 0 && pw->pw_uid != geteuid()) {
            snprintf(err, len, "environment '%s' root %s: cannot create it owned by '%s' "
                     "(flowrun is not root); create it first", e->name, e->root, e->owner);
            return -1;
        }
    }
    if (store_mkdir_p(e->root, 0755)) {
        snprintf(err, len, "environment '%s' root %s: cannot create it: %s", e->name, e->root,
                 strerror(errno));
        return -1;
    }
    if (pw && geteuid() == 0 && chown(e->root, pw->pw_uid, pw->pw_gid)) {
        snprintf(err, len, "environment '%s' root %s: cannot give it to '%s': %s", e->name,
                 e->root, e->owner, strerror(errno));
        return -1;
    }
    return 0;
}

/* Is `when` the logical date of an interval of G's schedule (cron.c)? 0, or -1 with why
 * in err: not a date (or time), or no interval starts then. */
static int interval_problem(const fl_plan *p, const plan_graph *G, const char *when, char *err,
                            size_t len) {
    fl_cron c;
    if (cron_parse(&c, plan_str(p, G->schedule), G->tz != PLAN_NONE ? plan_str(p, G->tz) : NULL,
                   err, len))
        return -1;
    int as_time = p->types[p->params[G->first_param].type].kind == PT_TIME;
    int64_t from, to, t;
    if ((as_time ? !fv_time_valid(when, strlen(when)) : !fv_date_valid(when, strlen(when))) ||
        cron_parse_when(&c, when, 0, &from) || cron_parse_when(&c, when, 1, &to)) {
        snprintf(err, len, "expected a %s", as_time ? "time (YYYY-MM-DDTHH:MM:SSZ)"
                                                    : "date (YYYY-MM-DD)");
        return -1;
    }
    if (as_time) to = from; /* a time names one instant */
    char got[24] = "";
    if (!cron_next(&c, from - 1, &t) && t <= to) {
        cron_logical(&c, t, as_time, got);
        if (!strcmp(got, when)) return 0;
    }
    if (!cron_next(&c, from - 1, &t)) {
        cron_logical(&c, t, as_time, got);
        snprintf(err, len, "no interval of schedule \"%s\" starts then (the next starts %s)",
                 plan_str(p, G->schedule), got);
    } else {
        snprintf(err, len, "schedule \"%s\" never fires", plan_str(p, G->schedule));
    }
    return -1;
}

/* --interval: claim the interval ho->logical (state_claim) for this process. 0 with
 * ho->resume_run set to the run to go on with (new or resumed; a resumed one gets its
 * first parameters back into params), or the exit code: 4 it already succeeded, 5
 * another flowrun runs it, 2 an error (said). */
static int claim_interval(const run_args *a, const fl_plan *p, const plan_graph *G,
                          hist_opts *ho, fl_val *params) {
    char err[1024];
    fl_state *st = state_open(flowrun_ctx(), ho->state_dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "flowrun: %s\n", err);
        return 2;
    }
    state_run r = {.flow = ho->flow, .env = ho->env, .params_json = ho->params_json,
                   .params_blob = ho->params_blob, .params_blob_len = ho->params_blob_len,
                   .options = ho->options, .plan_path = ho->plan_path, .logical = ho->logical};
    hash_file(flowrun_ctx(), ho->plan_path, &r.plan_hash, err, sizeof err);
    int64_t id = 0;
    int oc = state_claim(st, &r, a->rerun, &id), code = 0;
    const char *flow = ho->flow;
    char when[64]; /* ho->logical lives in params[0], replaced on resume */
    snprintf(when, sizeof when, "%s", ho->logical);
    if (oc < 0) {
        fprintf(stderr, "flowrun: cannot claim %s %s in %s/state.db\n", flow, when, ho->state_dir);
        code = 2;
    } else if (oc == STATE_CLAIM_ALREADY) {
        fprintf(stderr, "flowrun: %s %s already succeeded (run %lld); --rerun runs it again\n",
                flow, when, (long long)id);
        code = 4;
    } else if (oc == STATE_CLAIM_BUSY) {
        fprintf(stderr, "flowrun: %s %s is being run by another flowrun (run %lld)\n", flow,
                when, (long long)id);
        code = 5;
    } else if (oc == STATE_CLAIM_RESUME) {
        /* the run goes on with the parameters it started with (as flowrun resume) */
        state_run old;
        fl_val *was = calloc(G->nparams ? G->nparams : 1, sizeof *was);
        if (!was || state_run_get(st, id, &old)) {
            code = 2;
        } else {
            if (params_from_blob(p, G, old.params_blob, old.params_blob_len, was)) {
                fprintf(stderr, "flowrun: run %lld (%s %s): its parameters no longer fit the "
                        "plan; --rerun runs the interval anew\n", (long long)id, flow, when);
                code = 2;
                state_run_end(st, id, "failed", 2, NULL, "its parameters no longer fit the plan");
            } else {
                for (uint32_t i = 0; i < G->nparams; i++) {
                    fv_decref(p, p->params[G->first_param + i].type, params[i]);
                    params[i] = was[i];
                }
                ho->logical = fv_as_str(params[0])->data;
            }
            state_run_free(&old);
        }
        free(was);
        if (code == 0)
            fprintf(stderr, "flowrun: %s %s: resuming run %lld\n", flow, when, (long long)id);
    }
    state_close(st);
    ho->resume_run = id;
    return code;
}

/* Ctrl-C and SIGTERM are caught from the start, before the plan, its libraries and
 * the JIT are loaded: a stop asked for while it starts up is a stop (exit 3), never
 * lost (a shell starts background jobs with SIGINT ignored). */
static int run_main(run_args *a, const uint8_t *resume_params, size_t resume_len) {
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = run_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (a->metrics) { /* bound now: a mistake is said before anything runs */
        char err[600];
        if (!(a->msrv = mx_listen(a->metrics, err, sizeof err))) {
            fprintf(stderr, "flowrun run: %s\n", err);
            sigaction(SIGINT, &old_int, NULL);
            sigaction(SIGTERM, &old_term, NULL);
            return 2;
        }
    }
    int code = run_body(a, resume_params, resume_len);
    mx_stop(a->msrv);
    a->msrv = NULL;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return code;
}

/* The secrets the tasks a run of flow g reaches declare (units and their halves), from
 * flow.yaml's `secrets:` (secrets.c: an environment-variable value leaves flowrun's
 * environment now, before any worker exists). 0 (s->n == 0: no such task), or -1 after
 * one line naming the task and the secret on stderr (exit 2). */
static int run_secrets(const run_args *a, const fl_plan *p, uint32_t g, fsec_set *s) {
    if (!p->n_secrets) return 0;
    unsigned char *in = calloc(p->n_tasks + 1, 1);
    if (!in || rt_reached_units(p, g, in)) {
        fprintf(stderr, "flowrun: out of memory\n");
        free(in);
        return -1;
    }
    int rc = cli_secrets_for(a->cfg, p, in, s);
    free(in);
    return rc;
}

/* The secrets of the tasks marked in in[] (and of the halves of marked combines: in
 * is changed), from the configuration, into s (cli.h). */
int cli_secrets_for(const flcfg *cfg, const fl_plan *p, unsigned char *in, fsec_set *s) {
    for (uint32_t t = p->n_tasks; t-- > 0;) /* halves are earlier tasks than their combine */
        if (in[t] && p->tasks[t].kind == TK_COMBINE) in[p->tasks[t].first] = in[p->tasks[t].second] = 1;
    int rc = 0;
    for (uint32_t i = 0; i < p->n_secrets && !rc; i++) {
        const plan_secret *ps = &p->secrets[i];
        if (!in[ps->task]) continue;
        const char *name = plan_str(p, ps->name), *task = plan_str(p, p->tasks[ps->task].name);
        const flcfg_secret *c = cfg ? flcfg_secret_get(cfg, name) : NULL;
        char why[1024];
        if (!c) {
            fprintf(stderr,
                    "flowrun: task '%s' declares secret '%s', which %s%s does not define (add "
                    "it under secrets: with a file or an env)\n",
                    task, name, cfg && cfg->path ? "" : "no configuration (no flow.yaml)",
                    cfg && cfg->path ? cfg->path : "");
            rc = -1;
        } else if (c->file ? fsec_add_file(s, name, c->file, why, sizeof why)
                           : fsec_add_env(s, name, c->env_var, why, sizeof why)) {
            fprintf(stderr, "flowrun: task '%s', secret '%s': %s\n", task, name, why);
            rc = -1;
        }
    }
    return rc;
}

/* FLOWRUN_REMOTE_ENGINE: unset or empty, 0 (*remote 0); "local" with the process
 * executor, 0 (*remote 1); anything else is refused: -1 after one line. */
static int cli_remote_engine(const char *exname, int *remote) {
    const char *v = getenv("FLOWRUN_REMOTE_ENGINE");
    *remote = 0;
    if (!v || !*v) return 0;
    if (strcmp(v, "local")) {
        fprintf(stderr, "flowrun: FLOWRUN_REMOTE_ENGINE=%s: the only engine it can name is "
                        "'local' (a test path: docs/distributed.md)\n", v);
        return -1;
    }
    if (strcmp(exname, "process")) {
        fprintf(stderr, "flowrun: FLOWRUN_REMOTE_ENGINE=local runs the process executor's jobs "
                        "through flowrun worker; it does not go with --executor %s\n", exname);
        return -1;
    }
    *remote = 1;
    return 0;
}

/* A positive number of milliseconds from environment variable name (unset: def); -1
 * after one line when it is not one. */
static int env_ms(const char *name, int def, int *out) {
    const char *v = getenv(name);
    int64_t n;
    *out = def;
    if (!v || !*v) return 0;
    if (cli_count(v, 1, 86400000, &n)) {
        fprintf(stderr, "flowrun: %s=%s: expected milliseconds, from 1 to 86400000\n", name, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* The driver's record in state.db (remote.h: only the driver writes it), through the
 * run's history. */
static int remote_record(void *ud, int64_t run, uint32_t batch, const char *engine,
                         const char *engine_id, const char *name, uint32_t nelem,
                         const char *batch_file, char *err, size_t errlen) {
    if (state_batch_add(hist_state(ud), run, batch, engine, engine_id, name, nelem, batch_file)) {
        snprintf(err, errlen, "a database error (said above)");
        return -1;
    }
    return 0;
}

static int remote_list(void *ud, int64_t run,
                       void (*each)(void *ud2, uint32_t batch, const char *engine,
                                    const char *engine_id, const char *name, uint32_t nelem,
                                    const char *batch_file),
                       void *ud2, char *err, size_t errlen) {
    if (state_batch_list(hist_state(ud), run, each, ud2)) {
        snprintf(err, errlen, "cannot read the run's remote batches from state.db");
        return -1;
    }
    return 0;
}

/* A Slurm worker done with its element waits this long for a guest batch (Slurm
 * starts an element in ~1 s; an offer comes within ~0.1 s of its last result) */
#define REMOTE_LINGER_SLURM_MS 1500

/* The driver's options for run `run` of a (cli.h): absolute state folder and plan,
 * flowrun from /proc/self/exe, the run's environment and configuration file; the
 * poll interval and grace period from FLOWRUN_REMOTE_POLL_MS and
 * FLOWRUN_REMOTE_GRACE_MS (defaults 1000 and 30000); batches recorded in, and on
 * resume read from, the run's state.db. The strings live in buf. The other engines'
 * executors (--executor slurm, ...) are made from it too. 0, or -1 with err. */
static int cli_remote_options(const run_args *a, const char *plan_abs, hist *h, rm_options *o,
                              char *buf, size_t cap, char *err, size_t errlen) {
    int64_t run = hist_run_id(h);
    memset(o, 0, sizeof *o);
    if (cap < 3 * PATH_MAX) {
        snprintf(err, errlen, "buffer too small");
        return -1;
    }
    char *state = buf, *exe = buf + PATH_MAX, *config = buf + 2 * PATH_MAX;
    if (!realpath(a->state, state)) {
        snprintf(err, errlen, "%s: %s", a->state, strerror(errno));
        return -1;
    }
    const char *self = mod_self_exe();
    if (!self) {
        snprintf(err, errlen, "cannot find flowrun's own program (/proc/self/exe): %s",
                 strerror(errno));
        return -1;
    }
    snprintf(exe, PATH_MAX, "%s", self);
    o->config = NULL;
    if (a->cfg && a->cfg->path) {
        if (!realpath(a->cfg->path, config)) {
            snprintf(err, errlen, "%s: %s", a->cfg->path, strerror(errno));
            return -1;
        }
        o->config = config;
    }
    o->state_dir = state;
    o->plan_path = plan_abs;
    o->flowrun = exe;
    o->env = a->env ? a->env : "prod";
    o->run = run;
    o->resume = a->resume > 0;
    o->unprotected = a->unprotected;
    o->rec_ud = h;
    o->record_batch = remote_record;
    o->list_batches = remote_list;
    if (env_ms("FLOWRUN_REMOTE_POLL_MS", 1000, &o->poll_ms) ||
        env_ms("FLOWRUN_REMOTE_GRACE_MS", 30000, &o->grace_ms)) {
        snprintf(err, errlen, "a bad setting (said above)");
        return -1;
    }
    /* how long a worker done with its element waits for more (0: it does not; the
     * engine's default otherwise: Slurm's is REMOTE_LINGER_SLURM_MS) */
    const char *lv = getenv("FLOWRUN_REMOTE_LINGER_MS");
    int64_t ln = -1;
    if (lv && *lv && cli_count(lv, 0, 600000, &ln)) {
        fprintf(stderr, "flowrun: FLOWRUN_REMOTE_LINGER_MS=%s: expected milliseconds, from 0 to "
                        "600000\n", lv);
        snprintf(err, errlen, "a bad setting (said above)");
        return -1;
    }
    o->linger_ms = (int)ln; /* -1: the engine's default, set by the caller */
    return 0;
}

/* C tasks with image: (docs/distributed.md, "Containers"): when run a_ of flow g
 * reaches some, *ex becomes the split of *ex and the remote executor on a podman
 * engine (remote_podman.c) for their jobs: one container per element, running
 * `flowrun worker` in the image, the state folder at its own path with the store
 * read-only, the plan's and the configuration's folders read-only. refuse.c has
 * made sure they share image, network and run_as. 0, or -1 after one line. */
static int with_podman_c(const run_args *a, const fl_plan *p, uint32_t g, const char *plan_abs,
                         hist *h, int jobs, rt_executor **ex) {
    unsigned char *units = calloc(p->n_tasks + 1, 1);
    if (!units || rt_reached_units(p, g, units)) {
        free(units);
        fprintf(stderr, "flowrun: out of memory\n");
        return -1;
    }
    uint32_t first = PLAN_NONE, cpus = 0, procs = 0;
    for (uint32_t t = 0; t < p->n_tasks; t++) {
        const plan_task *T = &p->tasks[t];
        units[t] = units[t] && T->image != PLAN_NONE && T->kind == TK_C;
        if (!units[t]) continue;
        if (first == PLAN_NONE) first = t;
        const plan_container *co = plan_task_container(p, t);
        if (co && co->cpus > cpus) cpus = co->cpus;
        if (T->max_procs > procs) procs = T->max_procs;
    }
    if (first == PLAN_NONE) {
        free(units);
        return 0;
    }
    rm_options ro;
    char rbuf[3 * PATH_MAX], err[1024], store[PATH_MAX + 8], pdir[PATH_MAX], cdir[PATH_MAX];
    rm_engine *eng = NULL;
    rt_executor *rex = NULL;
    if (cli_remote_options(a, plan_abs, h, &ro, rbuf, sizeof rbuf, err, sizeof err) == 0) {
        /* the containers are on this machine: an ended one's files are there at once,
         * and a poll (one podman ps) is cheap */
        if (!getenv("FLOWRUN_REMOTE_GRACE_MS")) ro.grace_ms = 1000;
        if (!getenv("FLOWRUN_REMOTE_POLL_MS")) ro.poll_ms = 250;
        if (ro.linger_ms > 0) { /* its tasks have an image: never guests */
            fprintf(stderr, "flowrun: FLOWRUN_REMOTE_LINGER_MS: workers linger only under Slurm "
                            "and the local engine, not in the podman containers of C tasks "
                            "with image:\n");
            free(units);
            return -1;
        }
        ro.linger_ms = 0;
        /* bench/podman.sh: every instance a container of its own, for comparison */
        const char *one = getenv("FLOWRUN_REMOTE_ONE_PER_INSTANCE");
        ro.one_per_instance = one && !strcmp(one, "1");
        snprintf(store, sizeof store, "%s/store", ro.state_dir);
        snprintf(pdir, sizeof pdir, "%s", plan_abs);
        char *slash = strrchr(pdir, '/');
        if (slash) *slash = 0;
        const char *dirs[3] = {pdir, NULL, NULL};
        if (ro.config) {
            snprintf(cdir, sizeof cdir, "%s", ro.config);
            if ((slash = strrchr(cdir, '/'))) *slash = 0;
            dirs[1] = cdir;
        }
        const plan_container *co = plan_task_container(p, first);
        rm_podman_options po = {.image = plan_str(p, p->tasks[first].image),
                                .state_dir = ro.state_dir, .store_dir = store, .ro = dirs,
                                .network = co && co->network, .cpus = cpus, .max_procs = procs,
                                .slots = (uint32_t)jobs};
        eng = rm_engine_podman(&po, err, sizeof err);
    }
    if (eng) rex = rm_executor(p, eng, &ro, err, sizeof err);
    rt_executor *both = rex ? rt_executor_split(p, *ex, rex, units) : NULL;
    free(units);
    if (!both) {
        if (rex) rex->ops->destroy(rex);
        fprintf(stderr, "flowrun: cannot run the C tasks with image: under podman: %s\n",
                rex ? "out of memory" : err);
        return -1;
    }
    *ex = both;
    return 0;
}

/* The Kubernetes engine's options for this run (flow.yaml kubernetes:, the --kube-*
 * flags over it): state is the absolute state folder, run the run id (0 for the
 * check before the run is recorded), mdir (PATH_MAX) where its manifests go. */
static void cli_kube_options(const run_args *a, const char *state, int64_t run, int jobs,
                             char *mdir, rm_kube_options *k) {
    const flcfg_kube *K = &a->cfg->kube;
    snprintf(mdir, PATH_MAX, "%s/remote/%lld", state, (long long)run);
    *k = (rm_kube_options){.kubectl = K->kubectl,
                           .ns = a->kube_ns ? a->kube_ns : K->ns,
                           .image = a->kube_image ? a->kube_image : K->image,
                           .pvc = K->pvc,
                           .host_path = K->host_path,
                           .service_account = K->service_account,
                           .flowrun = K->flowrun,
                           .state_dir = state,
                           .manifest_dir = mdir,
                           .run = run,
                           .ttl_seconds = K->ttl_seconds,
                           .slots = (uint32_t)(K->slots ? K->slots : jobs)};
}

/* --slurm-* options without --executor slurm (flow.yaml's slurm: section is only
 * read by it): refused with one line (1), else 0. */
static int slurm_options_refused(const run_args *a, const char *exname) {
    if (!strcmp(exname, "slurm")) return 0;
    const char *given = a->slurm_partition ? "--slurm-partition"
                        : a->slurm_account ? "--slurm-account"
                        : a->slurm_time    ? "--slurm-time"
                        : a->slurm_max_jobs ? "--slurm-max-jobs"
                        : a->nslurm_flags  ? "--slurm-flag"
                                           : NULL;
    if (!given) return 0;
    fprintf(stderr, "flowrun: %s goes with --executor slurm, and this run's executor is %s\n",
            given, exname);
    return 1;
}

/* The extra sbatch flags, NULL-terminated into out: the command line's --slurm-flag
 * when given, else flow.yaml's slurm: sbatch_flags (at most RUN_MAX_SLURM_FLAGS). */
static void slurm_flags(const run_args *a, const char **out) {
    int n = 0;
    if (a->nslurm_flags)
        for (int i = 0; i < a->nslurm_flags; i++) out[n++] = a->slurm_flags[i];
    else
        for (char **f = a->cfg->slurm.sbatch_flags; f && *f && n < RUN_MAX_SLURM_FLAGS; f++)
            out[n++] = *f;
    out[n] = NULL;
}

/* What --metrics shows of a run (metrics.h): rendered by the endpoint's thread. */
typedef struct run_metrics {
    sched_meter meter;  /* the scheduler's counters (its task array calloc'd) */
    const fl_plan *p;
    const char *flow, *env;
    unsigned char *reached; /* by task: 1 if the flow reaches it (rt_reached_units) */
    mx_inst_row *rows;  /* the render's snapshot of the meter, n_tasks of them */
    mx_runs runs;       /* this run: started, then how it ended */
    mx_sizes sizes;
} run_metrics;

static const char *run_task_name(void *ud, uint32_t t) {
    const run_metrics *m = ud;
    return m->reached[t] ? plan_str(m->p, m->p->tasks[t].name) : NULL;
}

static void run_render(void *ud, FILE *f) {
    run_metrics *m = ud;
    mx_write_build(f);
    mx_write_runs(f, &m->runs);
    size_t n = mx_meter_rows(&m->meter, m->flow, m->env, run_task_name, m, m->rows);
    mx_write_instances(f, m->rows, n, mx_meter_queue(&m->meter));
    mx_write_sizes(f, &m->sizes);
}

static int run_body(run_args *a_, const uint8_t *resume_params, size_t resume_len) {
    run_args a = *a_;
    run_metrics rmx;
    memset(&rmx, 0, sizeof rmx);
    char err[1024];
    const char *envname = a.env ? a.env : "prod";
    const flcfg_env *env = flcfg_env_get(a.cfg, envname); /* load_config checked it is there */
    if (!env || flcfg_state_problem(a.cfg, envname, a.state, err, sizeof err)) {
        fprintf(stderr, "flowrun: %s\n", env ? err : "no environment");
        return 2;
    }
    fl_plan *p = plan_read_file(flowrun_ctx(), a.plan, err, sizeof err);
    if (!p) {
        fprintf(stderr, "flowrun: %s: %s\n", a.plan, err);
        return 2;
    }
    for (uint32_t l = 0; l < p->n_lambdas; l++)
        if (expr_verify(p, l, err, sizeof err) != 0) {
            fprintf(stderr, "flowrun: %s: damaged plan: %s\n", a.plan, err);
            plan_free(p);
            return 2;
        }
    uint32_t g;
    if (cli_pick_flow(p, a.flow, &g)) {
        plan_free(p);
        return 2;
    }
    /* what this run declares but this build cannot do: refused before anything runs */
    if (rt_refuse_undone(p, g, a.executor, err, sizeof err)) {
        fprintf(stderr, "flowrun: %s\n", err);
        plan_free(p);
        return 2;
    }
    const plan_graph *G = &p->graphs[g];
    /* a scheduled flow's first parameter names its interval */
    int scheduled = G->schedule != PLAN_NONE && G->nparams > 0;
    if (a.interval && !resume_params) {
        const char *first = scheduled ? plan_str(p, p->params[G->first_param].name) : "";
        size_t fl = strlen(first);
        for (int i = 0; i < a.nparams && scheduled; i++)
            if (!strncmp(a.params[i], first, fl) && a.params[i][fl] == '=') scheduled = -1;
        if (scheduled != 1 || a.nparams >= RUN_MAX_PARAMS ||
            (size_t)snprintf(a.interval_kv, sizeof a.interval_kv, "%s=%s", first, a.interval) >=
                sizeof a.interval_kv) {
            fprintf(stderr, "flowrun run: %s\n",
                    !scheduled ? "--interval needs a scheduled flow"
                    : scheduled < 0 ? "--interval sets the flow's first parameter: do not give "
                                      "it with --param too"
                                    : "--interval: too long");
            plan_free(p);
            return 2;
        }
        if (interval_problem(p, G, a.interval, err, sizeof err)) {
            fprintf(stderr, "flowrun run: --interval %s: %s\n", a.interval, err);
            plan_free(p);
            return 2;
        }
        a.params[a.nparams++] = a.interval_kv;
    }
    fl_val *params = calloc(G->nparams ? G->nparams : 1, sizeof *params);
    if (!params || (resume_params ? params_from_blob(p, G, resume_params, resume_len, params)
                                  : params_resolve_env(p, g, a.params, a.nparams, a.params_file,
                                                       a.cfg->path, envname, params, err,
                                                       sizeof err))) {
        if (resume_params) snprintf(err, sizeof err, "run %lld: its parameters no longer fit the plan",
                                    (long long)a.resume);
        fprintf(stderr, "flowrun: %s\n", params ? err : "out of memory");
        free(params);
        plan_free(p);
        return 2;
    }
    /* every other environment's root read-only to this run's tasks (isolate.c): now,
     * while flowrun is one thread (the JIT, the inline pool and the recorder start
     * theirs later); a dry run runs nothing */
    a.env_root = env->root;
    a.ro_roots = flcfg_other_roots(a.cfg, env, &a.n_ro);
    int refused = !a.ro_roots;
    if (refused) snprintf(err, sizeof err, "out of memory");
    /* every root exists first: this run's to be written, the others' to be protected */
    for (int i = 0; !refused && !a.dry_run && i < a.cfg->nenvs; i++)
        refused = make_root(&a.cfg->envs[i], err, sizeof err) != 0;
    if (!refused && !a.dry_run) {
        a.isolated = iso_protect_run(a.env, (const char *const *)a.ro_roots, a.n_ro,
                                     a.unprotected, 0, stderr, err, sizeof err);
        refused = a.isolated < 0;
    }
    if (refused) {
        fprintf(stderr, "flowrun: %s\n", err);
        free(a.ro_roots);
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, params[i]);
        free(params);
        plan_free(p);
        return 2;
    }
    if (!a.no_jit && jit_available() && jit_attach(p, err, sizeof err) != 0)
        fprintf(stderr, "flowrun: %s; lambdas are interpreted\n", err);
    if (getenv("FLOW_JIT_STATS")) {
        jit_stats js = jit_stats_of(p);
        fprintf(stderr,
                "flowrun: jit: %u lambdas compiled (%u helper instructions), %u fused loops, %u "
                "task thunks; create %.2f ms, "
                "IR %.2f ms, optimise %.2f ms, codegen %.2f ms, total %.2f ms\n",
                js.compiled, js.helper_ops, js.kernels, js.thunks, js.create_ms, js.build_ms, js.opt_ms, js.codegen_ms,
                js.create_ms + js.build_ms + js.opt_ms + js.codegen_ms);
    }
    int code = 2;
    hist *h = NULL;
    rt_runtime *rt = NULL;
    rt_executor *ex = NULL;
    const char *exname = a.executor ? a.executor : "process";
    int remote = 0; /* FLOWRUN_REMOTE_ENGINE=local: the process executor's jobs through the
                     * remote driver on the local engine (a test path: docs/distributed.md) */
    int kube = !strcmp(exname, "kubernetes"); /* the remote driver on Kubernetes */
    rm_engine *slurm_eng = NULL; /* --executor slurm (remote 2): until the driver takes it */
    fsec_set sec;
    fsec_init(&sec);
    if (!a.dry_run && cli_remote_engine(exname, &remote)) goto out;
    if (slurm_options_refused(&a, exname)) goto out;
    if (!a.dry_run && !strcmp(exname, "slurm")) remote = 2; /* on the Slurm engine */
    if (!a.dry_run && run_secrets(&a, p, g, &sec)) goto out;
    for (int i = 0; remote && i < sec.n; i++)
        if (sec.e[i].var) { /* it left flowrun's environment; no worker elsewhere has it */
            fprintf(stderr,
                    "flowrun: secret '%s' comes from the environment variable %s, which does "
                    "not reach the remote executor's workers; give it as a file: in the "
                    "configuration (refused)\n",
                    sec.e[i].name, sec.e[i].var);
            goto out;
        }
    rt = rt_open(p, a.plan, a.strict, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "flowrun: %s\n", err);
        goto out;
    }
    /* the environment: its root for this run's tasks, the others' roots to protect */
    if (rt_set_env_root(rt, env->root)) {
        fprintf(stderr, "flowrun: out of memory\n");
        goto out;
    }
    /* sh tasks inherit flowrun's environment variables (both executors) */
    setenv("FLOW_ENV", envname, 1);
    if (env->root) setenv("FLOW_ENV_ROOT", env->root, 1);
    else unsetenv("FLOW_ENV_ROOT");
    if (a.dry_run) { /* nothing runs and nothing is written (dryrun.c) */
        dry_opts d = {.state_dir = a.state, .rt = rt, .no_cache = a.no_cache,
                      .exact = a.exact, .max_map = a.max_map, .env = envname};
        dry_report rep;
        code = dry_run(p, g, params, &d, &rep, err, sizeof err) ? 1 : 0;
        if (code) fprintf(stderr, "flowrun: dry run: %s\n", err);
        else dry_report_print(p, &rep, stdout, a.json, 20);
        dry_report_free(&rep);
        goto out;
    }
    if (limits_refused(p, exname)) goto out;
    int jobs = a.jobs ? a.jobs : ncpus();
    if (remote == 2) { /* the cluster's limits and slots, before anything of the run is recorded */
        const flcfg *c = a.cfg;
        const char *flags[RUN_MAX_SLURM_FLAGS + 1];
        slurm_flags(&a, flags);
        rm_slurm_options so = {
            .partition = a.slurm_partition ? a.slurm_partition : c->slurm.partition,
            .account = a.slurm_account ? a.slurm_account : c->slurm.account,
            .time_limit = a.slurm_time ? a.slurm_time : c->slurm.time_limit,
            .max_jobs = a.slurm_max_jobs ? a.slurm_max_jobs : c->slurm.max_jobs,
            .extra = flags};
        slurm_eng = rm_engine_slurm(&so, err, sizeof err);
        if (!slurm_eng) {
            fprintf(stderr, "flowrun: --executor slurm: %s\n", err);
            goto out;
        }
    }
    if (kube) { /* its options and kubectl, before anything of the run is recorded */
        char st[PATH_MAX], mdir[PATH_MAX];
        rm_kube_options ko;
        if (!realpath(a.state, st)) snprintf(st, sizeof st, "%s", a.state);
        cli_kube_options(&a, st, 0, jobs, mdir, &ko);
        if (rm_kube_check(&ko, err, sizeof err)) {
            fprintf(stderr, "flowrun: %s\n", err);
            goto out;
        }
        /* every pod runs the kubernetes: image; a task asking for another is refused,
         * not run in the wrong one (docs/distributed.md, "Kubernetes") */
        unsigned char *units = calloc(p->n_tasks + 1, 1);
        if (!units || rt_reached_units(p, g, units)) {
            free(units);
            fprintf(stderr, "flowrun: out of memory\n");
            goto out;
        }
        for (uint32_t t = 0; t < p->n_tasks; t++) {
            const plan_task *T = &p->tasks[t];
            if (!units[t] || T->image == PLAN_NONE || !strcmp(plan_str(p, T->image), ko.image))
                continue;
            fprintf(stderr,
                    "flowrun: task %s sets image: \"%s\", but under --executor kubernetes "
                    "every pod runs the kubernetes: image \"%s\" (refused)\n",
                    plan_str(p, T->name), plan_str(p, T->image), ko.image);
            free(units);
            goto out;
        }
        free(units);
    }
    { /* workers see the store read-only (as root: exec_process.c; under inline, those
       * of run_as tasks: exec_inline.c); it must exist */
        fl_store *sto = store_open(flowrun_ctx(), a.state, err, sizeof err);
        const char *ro = sto ? store_root(sto) : NULL;
        if (sec.n) { /* the folder fresh workers mount their secrets on; namespaces work? */
            char mnt[PATH_MAX], why[600];
            snprintf(mnt, sizeof mnt, "%s/secret-mount", a.state);
            if (fsec_set_mnt(&sec, mnt, why, sizeof why) || fsec_probe(&sec, why, sizeof why)) {
                fprintf(stderr,
                        "flowrun: this run has tasks with secrets, and they cannot be kept "
                        "from its other tasks here: %s (refused)\n",
                        why);
                store_close(sto);
                goto out;
            }
        }
        if (!remote && !kube)
            ex = !strcmp(exname, "inline")
                     ? rt_executor_inline_ro(rt, jobs, ro)
                     : rt_executor_process_sec(rt, jobs, ro, sec.n ? &sec : NULL, a.isolated > 0);
        if (ex && strcmp(exname, "inline")) /* image: tasks' jobs to a podman pool */
            ex = rt_executor_with_containers(rt, g, ex, jobs, sec.n ? &sec : NULL);
        store_close(sto);
    }
    if (!ex && !remote && !kube) {
        fprintf(stderr, "flowrun: cannot start the %s executor: %s\n", exname, strerror(errno));
        goto out;
    }

    /* where instances write their files: STATE/work/<time>-<pid> */
    const char *state = a.state; /* resolved with the configuration (config_defaults) */

    /* the history: this run's record, the cache, the store */
    char *pjson = NULL;
    fv_buf pblob = {0};
    params_record(p, G, params, &pjson, &pblob);
    char plan_abs[PATH_MAX];
    if (!realpath(a.plan, plan_abs)) snprintf(plan_abs, sizeof plan_abs, "%s", a.plan);
    char options[96];
    snprintf(options, sizeof options, "max_map=%lld no_cache=%d strict=%d", (long long)a.max_map,
             a.no_cache, a.strict);
    const char *logical = scheduled ? fv_as_str(params[0])->data : NULL;
    hist_opts ho = {.plan = p, .rt = rt, .state_dir = state, .plan_path = plan_abs,
                    .flow = plan_str(p, G->name), .env = a.env ? a.env : "prod",
                    .params_json = pjson, .params_blob = pblob.data, .params_blob_len = pblob.len,
                    .options = options, .no_cache = a.no_cache, .resume_run = a.resume,
                    .logical = logical, .events = a.events};
    if (a.events) { /* said now, before a run is recorded (events.h appends to it) */
        FILE *ef = fopen(a.events, "ae");
        if (!ef) {
            fprintf(stderr, "flowrun: cannot open the events file %s: %s\n", a.events,
                    strerror(errno));
            free(pjson);
            free(pblob.data);
            code = 2;
            goto out;
        }
        fclose(ef);
    }
    if (a.interval) {
        int claimed = claim_interval(&a, p, G, &ho, params);
        if (claimed != 0) {
            free(pjson);
            free(pblob.data);
            code = claimed;
            goto out;
        }
        a_->resume = a.resume = ho.resume_run;
    }
    h = hist_open(&ho, err, sizeof err);
    free(pjson);
    free(pblob.data);
    if (!h) {
        fprintf(stderr, "flowrun: %s\n", err);
        code = 2;
        goto out;
    }
    if (remote || kube) { /* the remote executor needs the run's id: made now */
        rm_options ro;
        char rbuf[3 * PATH_MAX], mdir[PATH_MAX];
        rm_engine *eng = NULL;
        if (cli_remote_options(&a, plan_abs, h, &ro, rbuf, sizeof rbuf, err,
                               sizeof err) == 0) {
            if (kube && ro.linger_ms > 0) {
                snprintf(err, sizeof err, "FLOWRUN_REMOTE_LINGER_MS: workers linger only under "
                                          "Slurm and the local engine, not on Kubernetes");
            } else if (kube) {
                rm_kube_options ko;
                cli_kube_options(&a, ro.state_dir, ro.run, jobs, mdir, &ko);
                if (a.cfg->kube.poll_ms && !getenv("FLOWRUN_REMOTE_POLL_MS"))
                    ro.poll_ms = (int)a.cfg->kube.poll_ms;
                eng = rm_engine_kube(&ko, err, sizeof err);
            } else if (slurm_eng) { /* made (and checked) before the run was recorded */
                if (a.cfg->slurm.poll_interval_ms > 0 && !getenv("FLOWRUN_REMOTE_POLL_MS"))
                    ro.poll_ms = (int)a.cfg->slurm.poll_interval_ms;
                const char *one = getenv("FLOWRUN_REMOTE_ONE_PER_INSTANCE");
                ro.one_per_instance = one && !strcmp(one, "1"); /* bench/slurm.sh */
                /* (one per instance measures a tool without arrays: no lingering) */
                if (ro.linger_ms < 0)
                    ro.linger_ms = ro.one_per_instance ? 0 : REMOTE_LINGER_SLURM_MS;
                eng = slurm_eng;
                slurm_eng = NULL;
            } else {
                eng = rm_engine_local((uint32_t)jobs, err, sizeof err);
            }
        }
        if (ro.linger_ms < 0) ro.linger_ms = 0; /* the other engines start fast */
        if (eng) ex = rm_executor(p, eng, &ro, err, sizeof err);
        if (!ex) {
            fprintf(stderr, "flowrun: cannot start the remote executor: %s\n", err);
            code = 2;
            goto out;
        }
    }
    if (!remote && !kube && strcmp(exname, "inline") && with_podman_c(&a, p, g, plan_abs, h, jobs, &ex)) {
        code = 2;
        goto out;
    }
    char work[PATH_MAX];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(work, sizeof work, "%s/work/%04d%02d%02d-%02d%02d%02d-%ld", state, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)getpid());

    sched_opts o;
    memset(&o, 0, sizeof o);
    o.jobs = jobs;
    o.max_map = a.max_map;
    o.breadth = a.breadth;
    const char *prog = a.progress ? a.progress : "auto";
    sched_progress progress = !strcmp(prog, "none")    ? SCHED_PROGRESS_NONE
                              : !strcmp(prog, "plain") ? SCHED_PROGRESS_PLAIN
                              : isatty(2)              ? SCHED_PROGRESS_LIVE
                                                       : SCHED_PROGRESS_PLAIN;
    cli_progress printer; /* progress lines and the summary on stderr */
    cli_progress_init(&printer, stderr, progress);
    o.work_dir = work;
    o.work_root_len = strlen(state); /* work/<stamp>/... below it refuse links */
    o.stop = &run_stop_flag;
    o.obs = &printer.obs;
    recorder rec = h ? hist_recorder(h) : (recorder){0};
    o.rec = h ? &rec : NULL;

    /* a task that crashes flowrun itself still fails the run (exec_inline.c) */
    int armed = 0;
    if (!strcmp(exname, "inline")) {
        char marker[PATH_MAX];
        snprintf(marker, sizeof marker, "%s/" STATE_CRASH_MARKER "%lld", state,
                 (long long)hist_run_id(h));
        armed = cli_crash_arm(marker, (long long)hist_run_id(h)) == 0;
    }

    if (a.msrv) { /* the endpoint's thread starts now, after the isolation set up above */
        rmx.p = p;
        rmx.flow = plan_str(p, G->name);
        rmx.env = envname;
        rmx.sizes.state_dir = state;
        rmx.meter.n_tasks = p->n_tasks;
        rmx.meter.task = calloc(p->n_tasks ? p->n_tasks : 1, sizeof *rmx.meter.task);
        rmx.rows = calloc(p->n_tasks ? p->n_tasks : 1, sizeof *rmx.rows);
        rmx.reached = calloc(p->n_tasks + 1, 1);
        if (!rmx.meter.task || !rmx.rows || !rmx.reached || rt_reached_units(p, g, rmx.reached) ||
            mx_runs_init(&rmx.runs) || mx_start(a.msrv, run_render, &rmx)) {
            fprintf(stderr, "flowrun: --metrics: cannot start its thread: %s\n", strerror(errno));
            code = 2;
            goto out;
        }
        mx_runs_count(&rmx.runs, rmx.flow, envname, MX_RUN_STARTED);
        o.meter = &rmx.meter;
    }
    sched_outcome res;
    code = sched_run(p, ex, g, params, &o, &res);
    if (code == 2) fprintf(stderr, "flowrun: %s\n", fl_errmsg(p->ctx)); /* out of memory */
    if (armed) cli_crash_disarm();

    char *rjson = NULL;
    if (code == 0 && res.has_result) {
        size_t rlen = 0;
        FILE *rf = open_memstream(&rjson, &rlen);
        fv_print_json(p, G->ret, res.result, rf);
        fclose(rf);
    }
    if (progress != SCHED_PROGRESS_NONE && res.n_served)
        fprintf(stderr, "flowrun: run %lld: %llu of %llu instances served from the %s\n",
                (long long)hist_run_id(h), (unsigned long long)res.n_served,
                (unsigned long long)res.n_instances, a.resume ? "run's record or cache" : "cache");
    /* the run's record is complete (its instances, cache entries and end state
     * committed) before its result is printed: a flowrun killed after printing never
     * leaves the run `running`; history that could not be recorded is never exit 0 */
    int64_t run_id = hist_run_id(h);
    int recorded = hist_close(h, code == 0 ? "succeeded" : code == 3 ? "interrupted" : "failed",
                              code, rjson, code == 1 ? "a task failed" : NULL);
    if (code == 3) print_resume_hint(run_id, state);
    if (a.msrv)
        mx_runs_count(&rmx.runs, rmx.flow, envname,
                      code == 0 && !recorded ? MX_RUN_SUCCEEDED
                      : code == 3            ? MX_RUN_INTERRUPTED
                                             : MX_RUN_FAILED);
    h = NULL;
    if (rjson) {
        puts(rjson);
        fflush(stdout);
    }
    if (recorded && code == 0) code = 1; /* why was said once, where it happened */
    free(rjson);
    if (res.has_result) fv_decref(p, G->ret, res.result);
    if (code == 3) {
        /* Interrupted: instances may still be running. Process workers are stopped;
         * inline tasks (threads of this process) cannot be, so leave without
         * waiting for them or freeing what they may still read. */
        if (strcmp(exname, "inline")) ex->ops->destroy(ex);
        fflush(stdout);
        fflush(stderr);
        _exit(3);
    }

out:
    if (slurm_eng) slurm_eng->ops->destroy(slurm_eng);
    if (a.msrv) { /* the thread reads rmx: stopped first */
        mx_stop(a.msrv);
        a_->msrv = NULL;
    }
    free(rmx.meter.task);
    free(rmx.rows);
    free(rmx.reached);
    mx_runs_free(&rmx.runs);
    free(a.ro_roots);
    if (h) hist_close(h, "failed", code, NULL, "the run could not start");
    if (ex) ex->ops->destroy(ex);
    fsec_free(&sec);
    if (rt) rt_close(rt);
    for (uint32_t i = 0; i < G->nparams; i++)
        fv_decref(p, p->params[G->first_param + i].type, params[i]);
    free(params);
    jit_detach(p);
    plan_free(p);
    return code;
}
