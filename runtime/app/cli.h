/*
 * cli.h — flowrun's subcommands. One table; runtime/app/main.c dispatches on it.
 * Each subcommand lives in its own file as `int flowrun_cmd_NAME(int argc, char **argv)`
 * (argv[0] is the subcommand name; for `run`, argv[1] is the plan) and returns
 * the exit code (runtime.md §3: 0 ok, 1 task failed, 2 usage/plan/parameter, 3 interrupted).
 * Only commands that exist are listed: a command of the specification not built
 * yet is unknown to flowrun (runtime.md §4 lists them). A listed command whose
 * file is missing from a build falls back to a weak stub that says so (exit 2).
 */
#ifndef FLOW_CLI_H
#define FLOW_CLI_H

#include <getopt.h> /* struct option, for cli_line */
#include <stdint.h>

/* X(name, arguments, what it does) */
#define FLOWRUN_COMMANDS(X)                                                                        \
    X(run, "PLAN [--flow NAME] [--param k=v]... [--params FILE.yaml] [-j N] "                      \
           "[--executor inline|process|kubernetes|slurm] [--kube-image IMAGE] [--kube-namespace NS] [--slurm-partition P] [--slurm-account A] [--slurm-time T] [--slurm-max-jobs N] [--slurm-flag FLAG] [--env NAME] [--config FILE] [--state DIR] [--no-cache] "                  \
           "[--no-jit] [--progress auto|plain|none] [--max-map N] [--schedule depth|breadth] "    \
           "[--unprotected] [--metrics ADDR:PORT] [--events FILE] [--dry-run [--json] [--exact]]",                                                       \
      "run a flow (--dry-run: say what would run and why; run nothing, write nothing)")                                                                                \
    X(resume, "RUN [--config FILE] [--state DIR] [--env NAME] [--unprotected] [-j N] "          \
              "[--executor E] [--max-map N] [--no-cache] [--metrics ADDR:PORT] [--events FILE]",                                        \
      "finish an interrupted or failed run")                                                      \
    X(backfill, "PLAN --from WHEN --to WHEN [--flow NAME] [--order oldest-first|newest-first] "  \
                "[--runs N] [--rerun] [--max-intervals N] [--dry-run [--json]] [and run's options]",                    \
      "run a scheduled flow for each interval from --from to --to (exit 0 all succeeded, "         \
      "1 some failed)")                                                                            \
    X(serve, "PLAN... [--env E] [--config FILE] [--state DIR] [--no-catchup] "                   \
             "[--debounce DURATION] [--param k=v]... [-j N] [--executor inline|process] "         \
             "[--unprotected] [--metrics ADDR:PORT] [--events FILE]",                             \
      "run scheduled and watched flows for as long as it runs")                                    \
    X(runs, "[--json] [--env NAME] [--state DIR] [--config FILE]",                                 \
      "run history, newest first (a run whose flowrun died shows as interrupted)")                 \
    X(show, "RUN [--json] [--env NAME] [--state DIR] [--config FILE]", "every instance of a run")  \
    X(logs, "RUN INSTANCE [--env NAME] [--state DIR] [--config FILE]",                             \
      "one instance's log (INSTANCE: a[3], add#2, g[1]/sq[0])")                                    \
    X(clear, "RUN INSTANCE [--env NAME] [--state DIR] [--config FILE]",                            \
      "mark instances to run again on resume")                                                    \
    X(why, "RUN INSTANCE [--json] [--env NAME] [--state DIR] [--config FILE]",                     \
      "why an instance ran, or which run's result it was served (INSTANCE: a task's name "        \
      "summarises it)")                                                                            \
    X(report, "RUN -o FILE.html [--compare RUN2] [--env NAME] [--state DIR] [--config FILE]",     \
      "a static page about a run: graph, Gantt chart, per-task figures, failures "               \
      "(--compare RUN2: what changed per task)")                                                   \
    X(inspect, "PLAN [--json|--yaml|--dot]", "print a plan")                                       \
    X(verify, "PLAN", "check a plan and its libraries")                                            \
    X(gc, "[--keep-runs N] [--older-than DURATION] [--env NAME] [--dry-run] [--state DIR] "        \
          "[--config FILE]",                                                                       \
      "forget old runs if asked, drop store objects no run or cache entry needs")                   \
    X(fsck, "[--state DIR] [--config FILE]", "check state.db and the store; salvage a damaged state.db") \
    X(worker, "--state DIR --batch FILE [--element E] [-j N] [--env NAME] [--config FILE] "        \
              "[--unprotected] [--linger MS] PLAN",                                                 \
      "run one element of a batch (run by the remote executors, not by hand)")

#define X(name, args, doc) int flowrun_cmd_##name(int argc, char **argv);
FLOWRUN_COMMANDS(X)
#undef X

/* flowrun's one context (cli_ctx.c): C allocator, a log sink writing "flowrun: ..."
 * lines on stderr. Made on first use; main makes it before any command runs. */
struct fl_ctx;
struct fl_ctx *flowrun_ctx(void);
/* The inline executor's crash handlers (cli_ctx.c; see exec_inline.c's CRASHES).
 * Once armed, a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS) or
 * an exit() raised by a task on an inline executor's thread writes `marker` (one
 * line naming the instance; state_open turns it into run `run`'s failed state),
 * says so on stderr and ends flowrun with _exit(1). A crash outside a task keeps
 * its default action. Process-wide; -1 if marker is too long. */
int cli_crash_arm(const char *marker, long long run);
void cli_crash_disarm(void);

/* The flow to run: --flow NAME (want), or the only flow of the plan; -1 after saying
 * why on stderr (cli_run.c). */
struct fl_plan;
int cli_pick_flow(const struct fl_plan *p, const char *want, uint32_t *out);

/* The options of `flowrun run` (cli_run.c), ending with an entry of NULL name; the
 * internal --interval and --rerun among them. flowrun backfill accepts the others
 * and passes them on to each run. */
extern const struct option cli_run_options[];

/* The state directory: --state (given), then $FLOW_STATE, then the configuration's
 * `state` (cfg may be NULL), then ./.flow (cli_state.c). */
struct flcfg;
const char *state_dir_default(const char *given, const struct flcfg *cfg);
/* The same, for a command that does not keep the configuration: flow.yaml is read
 * (config: --config or NULL) and the directory written to buf; -1 after saying
 * why ("WHO: FILE:LINE:COL: ...") on stderr. */
int cli_state_dir(const char *who, const char *given, const char *config, char *buf, size_t len);

/* The secrets the tasks marked in in[] (p->n_tasks + 1 bytes; the halves of a marked
 * combine get marked) declare, from the configuration cfg (may be NULL), into s
 * (secrets.c). 0, or -1 after one line naming the task and the secret on stderr
 * (cli_run.c; flowrun worker uses it too). */
struct fsec_set;
int cli_secrets_for(const struct flcfg *cfg, const struct fl_plan *p, unsigned char *in,
                    struct fsec_set *s);

/* ---- reading a command line (cli_opts.c) ----
 * Every flowrun command line is read with getopt_long through cli_next, so each
 * command accepts the same forms: --name VALUE, --name=VALUE, -j VALUE, -jVALUE,
 * a flag --name (--name=x is refused), `--` ends the options. A long option is
 * known by its full name only (getopt_long's abbreviations are refused). A mistake
 * is one line on stderr, "WHO: unknown option 'X'HINT" (or "option 'X' needs a
 * value", "takes no value"), and the command exits 2.
 *
 *   static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
 *                                        {"json", no_argument, NULL, O_JSON}, {0}};
 *   cli_line l;
 *   cli_line_init(&l, argc, argv, "flowrun runs", "", "", opts, 0);
 *   for (int c; (c = cli_next(&l, &val)) != CLI_END;) switch (c) { ... }
 *
 * Option ids (struct option's val) are short letters or values from 256 up; 1
 * is CLI_ARG. Parsing uses getopt's process-wide state: one line at a time. */

enum { CLI_END = -1, CLI_ERROR = -2, CLI_ARG = 1 };

typedef struct cli_line {
    int argc;
    char **argv;                /* argv[0] names the command; never reordered */
    const char *who, *hint;     /* begin and end each message about an option */
    const struct option *longs; /* ends with an entry of NULL name */
    char optstring[24];         /* ordering, ':', the short options */
    int started, rest;          /* rest: after the options, the next word */
    int stop_at_arg;            /* 1: the options end at the first argument */
} cli_line;

/* shorts: getopt's short options ("j:"); stop_at_arg 0: options and arguments in
 * any order (each argument returned in its place), 1: the options end at the first
 * word that is not one (flowrun's own, before the command), which is then
 * argv[l->rest]. */
void cli_line_init(cli_line *l, int argc, char **argv, const char *who, const char *hint,
                   const char *shorts, const struct option *longs, int stop_at_arg);
/* The next option's id, with *value its value (NULL for a flag); CLI_ARG with
 * *value the argument; CLI_END when nothing is left; CLI_ERROR after saying why. */
int cli_next(cli_line *l, const char **value);

/* The whole of s as a decimal integer from lo to hi (digits only; a leading '-'
 * when lo < 0): 0 with *out set, or -1. Every count an option or argument takes
 * (-j, --runs, --keep-runs, a run id ...) is read with it. */
int cli_count(const char *s, int64_t lo, int64_t hi, int64_t *out);

#endif
