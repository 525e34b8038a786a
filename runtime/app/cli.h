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

/* X(name, arguments, what it does) */
#define FLOWRUN_COMMANDS(X)                                                                        \
    X(run, "PLAN [--flow NAME] [--param k=v]... [--params FILE.yaml] [-j N] "                      \
           "[--executor inline|process] [--env prod] [--state DIR] [--no-cache] "                  \
           "[--no-jit] [--progress auto|plain|none] [--max-map N] [--schedule depth|breadth]",     \
      "run a flow")                                                                                \
    X(resume, "RUN [--state DIR] [-j N] [--executor E] [--max-map N] [--no-cache]",              \
      "finish an interrupted or failed run")                                                      \
    X(runs, "[--json] [--state DIR]",                                                              \
      "run history, newest first (a run whose flowrun died shows as interrupted)")                 \
    X(show, "RUN [--json] [--state DIR]", "every instance of a run")                               \
    X(logs, "RUN INSTANCE [--state DIR]", "one instance's log (INSTANCE: a[3], add#2, g[1]/sq[0])")          \
    X(clear, "RUN INSTANCE [--state DIR]", "mark instances to run again on resume")                \
    X(inspect, "PLAN [--json|--yaml|--dot]", "print a plan")                                       \
    X(verify, "PLAN", "check a plan and its libraries")                                            \
    X(gc, "[--keep-runs N] [--older-than DURATION] [--dry-run] [--state DIR]",                     \
      "forget old runs if asked, drop store objects no run or cache entry needs")                   \
    X(fsck, "[--state DIR]", "check state.db and the store; salvage a damaged state.db")

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

/* The state directory: --state, then $FLOW_STATE, then ./.flow (cli_state.c). */
const char *state_dir_default(const char *given);

#endif
