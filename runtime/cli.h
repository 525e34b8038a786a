/*
 * cli.h — flowrun's subcommands. One table; runtime/main.c dispatches on it.
 * Each subcommand lives in its own file as `int flowrun_cmd_NAME(int argc, char **argv)`
 * (argv[0] is the subcommand name; for `run`, argv[1] is the plan) and returns
 * the exit code (runtime.md §3: 0 ok, 1 task failed, 2 usage/plan/parameter, 3 interrupted).
 * A subcommand not built yet falls back to a weak stub that says so (exit 2).
 */
#ifndef FLOW_CLI_H
#define FLOW_CLI_H

/* X(name, arguments, what it does) */
#define FLOWRUN_COMMANDS(X)                                                                        \
    X(run, "PLAN [--flow NAME] [--param k=v]... [--params FILE.yaml] [-j N] "                      \
           "[--executor inline|process|kubernetes] [--env NAME] [--state DIR] [--no-cache] "       \
           "[--no-jit] [--progress auto|plain|none] [--max-map N] [--schedule depth|breadth]",     \
      "run a flow")                                                                                \
    X(resume, "RUN [--state DIR] [-j N] [--executor E] [--max-map N] [--no-cache]",              \
      "finish an interrupted or failed run")                                                      \
    X(backfill, "PLAN --flow F --from DATE --to DATE [--order oldest-first|newest-first] "         \
                "[--runs N] [--rerun]",                                                            \
      "run a scheduled flow once per interval (not available yet)")                                \
    X(runs, "[--json] [--state DIR]", "run history, newest first")                                 \
    X(show, "RUN [--json] [--state DIR]", "every instance of a run")                               \
    X(logs, "RUN TASK[INDEX] [--state DIR]", "one instance's log")                                 \
    X(clear, "RUN TASK[INDEX] [--state DIR]", "mark instances to run again on resume")             \
    X(report, "RUN -o FILE.html", "a page with the graph and a Gantt chart (not available yet)")   \
    X(inspect, "PLAN [--json|--yaml|--dot]", "print a plan")                                       \
    X(verify, "PLAN", "check a plan and its libraries")                                            \
    X(gc, "[--keep-runs N] [--older-than DURATION] [--dry-run] [--state DIR]",                     \
      "forget old runs if asked, drop store objects no run or cache entry needs")                   \
    X(worker, "", "(internal) serve a container (not available yet)")

#define X(name, args, doc) int flowrun_cmd_##name(int argc, char **argv);
FLOWRUN_COMMANDS(X)
#undef X

#endif
