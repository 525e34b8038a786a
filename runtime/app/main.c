/*
 * flowrun — run plans, and look after their history and store.
 * The subcommands are listed once, in cli.h; this file reads flowrun's own options
 * (-h, --help, --version: through cli_next, which stops at the command) and
 * dispatches to the command, which reads the rest.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "modpath.h"
#include <flow.h> /* FLOW_VERSION */

#define X(name, args, doc)                                                                         \
    __attribute__((weak)) int flowrun_cmd_##name(int argc, char **argv) {                         \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        fputs("flowrun: '" #name "' is not available in this build yet\n", stderr);                \
        return 2;                                                                                  \
    }
FLOWRUN_COMMANDS(X)
#undef X

static const struct {
    const char *name, *args, *doc;
    int (*fn)(int, char **);
} commands[] = {
#define X(name, args, doc) {#name, args, doc, flowrun_cmd_##name},
    FLOWRUN_COMMANDS(X)
#undef X
};

/* What choosing an executor means for trust (docs/security.md), said with --help. */
static const char executors_note[] =
    "executors: process (the default) runs tasks in a pool of child processes: a\n"
    "  crash fails only that instance, and tasks are untrusted toward the store and\n"
    "  the state folder; inline runs tasks as threads inside flowrun: fastest, but\n"
    "  it guards against accidents, not against a hostile task (docs/security.md)\n";

static void usage(FILE *f) {
    fputs("usage: flowrun PLAN [options]     run a flow (the same as: flowrun run PLAN ...)\n"
          "       flowrun COMMAND [args]\n"
          "       flowrun -h | --help | --version\n\ncommands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].doc);
        if (*commands[i].args) fprintf(f, "  %-9s   %s %s\n", "", commands[i].name, commands[i].args);
    }
    fprintf(f, "\n%s", executors_note);
    fputs("\nexit status: 0 ok, 1 a task failed, 2 usage/plan/parameter error, 3 interrupted\n"
          "see flowrun(1): man -l docs/man/flowrun.1, or man flowrun once installed\n",
          f);
}

/* `flowrun CMD --help`: the command's purpose and its arguments, wrapped at 80 columns. */
static int command_help(size_t i) {
    printf("%s\n\nusage: flowrun %s", commands[i].doc, commands[i].name);
    int col = 14 + (int)strlen(commands[i].name);
    const char *a = commands[i].args;
    while (*a) {
        const char *sp = strchr(a, ' ');
        int n = sp ? (int)(sp - a) : (int)strlen(a);
        /* keep "[--opt VALUE]" together: break only before a '[' */
        if (col + n + 1 > 76 && *a == '[') {
            fputs("\n           ", stdout);
            col = 11;
        }
        printf(" %.*s", n, a);
        col += n + 1;
        a += n;
        while (*a == ' ') a++;
    }
    putchar('\n');
    if (!strcmp(commands[i].name, "run") || !strcmp(commands[i].name, "resume"))
        printf("\n%s", executors_note);
    if (!strcmp(commands[i].name, "worker")) /* its exit codes are the driver's (remote.h) */
        puts("\nexit status: 0 every result written (failed instances included), 1 results "
             "could not be\nwritten, 2 usage/plan/batch error\n"
             "more: flowrun(1), docs/distributed.md");
    else
        puts("\nexit status: 0 ok, 1 a task failed, 2 usage/plan/parameter error, 3 interrupted\n"
             "more: flowrun(1) (man -l docs/man/flowrun.1, or man flowrun once installed)");
    return 0;
}

/* -h or --help anywhere among a command's words, before any `--`: the command's
 * help, whatever else is there (a mistake elsewhere on the line included). */
static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

enum { O_VERSION = 256 };

int main(int argc, char **argv) {
    flowrun_ctx(); /* the one context (cli_ctx.c): every command takes it from there */
    /* flowrun's own path, before a run's isolation (isolate.c) would name it from
     * outside a chroot (modpath.h) */
    mod_self_exe();
    /* flowrun's own options, before the command (or the plan): -h, --help, --version */
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, O_VERSION},
                                         {NULL, 0, NULL, 0}};
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun", " (see flowrun --help)", "h", opts, 1);
    const char *val;
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        if (c == CLI_ERROR) return 2;
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        puts("flowrun " FLOW_VERSION); /* O_VERSION */
        return 0;
    }
    if (l.rest >= argc) {
        usage(stderr);
        return 2;
    }
    /* what follows the options: COMMAND ARGS..., or PLAN ARGS... */
    argc -= l.rest - 1;
    argv += l.rest - 1;
    if (!strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return wants_help(argc - 1, argv + 1) ? command_help(i)
                                                  : commands[i].fn(argc - 1, argv + 1);
    /* a bare word that names no file is a mistyped (or not built) command, not a plan */
    if (!strchr(argv[1], '/') && !strchr(argv[1], '.') && access(argv[1], F_OK) != 0) {
        fprintf(stderr, "flowrun: unknown command '%s' (see flowrun --help)\n", argv[1]);
        return 2;
    }
    /* flowrun PLAN ... is flowrun run PLAN ...; argv[0] becomes "run" */
    if (wants_help(argc, argv)) return command_help(0);
    argv[0] = "run";
    return flowrun_cmd_run(argc, argv);
}
