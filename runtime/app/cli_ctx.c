/*
 * cli_ctx.c — flowrun's side of libflow's context and crash reporting (app layer).
 *
 * DESIGN
 *   libflow never prints and never exits: it reports through a context (ctx.h).
 *   flowrun makes exactly one, here, the first time main asks for it: the C
 *   library's allocator, and a log sink that writes each line on stderr the
 *   way flowrun's messages have always looked ("flowrun: MSG" for an error,
 *   "flowrun: warning: MSG" for a warning, the bare line for information).
 *   Every command takes it from flowrun_ctx() and hands it to the objects it
 *   opens (plan_read_file, and through the plan everything made from it).
 *
 *   The crash handlers of the inline executor live here too (issue 12: signal
 *   and atexit handlers belong to the program). Armed around a run, they ask
 *   libflow's rt_inline_crash_describe whether the crashing thread is inside an
 *   inline task; if so they write the marker file and the one stderr line it
 *   formatted and end flowrun with _exit(1), all async-signal-safe. A crash
 *   outside a task, or in a task's forked child (another pid), keeps its
 *   default action. exec_inline.c's CRASHES note says what is caught.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "exec.h"
#include "rtcore.h"

static void log_stderr(void *ud, fl_log_level level, const char *msg) {
    (void)ud;
    if (level == FL_LOG_ERROR)
        fprintf(stderr, "flowrun: %s\n", msg);
    else if (level == FL_LOG_WARN)
        fprintf(stderr, "flowrun: warning: %s\n", msg);
    else
        fprintf(stderr, "%s\n", msg);
}

fl_ctx *flowrun_ctx(void) {
    static fl_ctx the;
    static int made;
    if (!made) {
        fl_ctx_init(&the);
        the.log = log_stderr;
        rt_abi_stray_ctx(&the);
        made = 1;
    }
    return &the;
}

/* ---- inline crashes ---- */
#define CRASH_ALTSTACK (64 * 1024)
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS};
#define N_CRASH_SIGNALS (int)(sizeof crash_signals / sizeof *crash_signals)

static char crash_marker[4096];        /* the marker file's path */
static int64_t crash_run;              /* the run it names */
static pid_t crash_pid;                /* flowrun's pid (a task's forked child is not us) */
static volatile sig_atomic_t crash_on; /* armed */
static struct sigaction crash_old[N_CRASH_SIGNALS];
static int crash_atexit_set;
static char crash_main_stack[CRASH_ALTSTACK]; /* for the thread that arms (the scheduler's) */
static int crash_main_stack_set;

/* Inside an inline task: the marker, the line, _exit(1). Otherwise return. */
static void crash_report(int sig) {
    if (!crash_on || getpid() != crash_pid) return;
    char m[1024], line[1200];
    if (rt_inline_crash_describe(sig, crash_run, m, sizeof m, line, sizeof line) != 0) return;
    int fd = open(crash_marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, m, strlen(m)) < 0) {
        }
        close(fd);
    }
    if (write(2, line, strlen(line)) < 0) {
    }
    _exit(1);
}

static void crash_on_signal(int sig) {
    crash_report(sig);
    /* not a task of ours: the default action, as if we had never been here */
    signal(sig, SIG_DFL);
    if (sig == SIGABRT) raise(sig); /* abort() raised it: it would not come again */
}

static void crash_on_exit(void) {
    crash_report(0);
}

int cli_crash_arm(const char *marker, long long run) {
    if (strlen(marker) >= sizeof crash_marker) return -1;
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
        stack_t ss = {.ss_sp = crash_main_stack, .ss_size = sizeof crash_main_stack};
        crash_main_stack_set = sigaltstack(&ss, NULL) == 0;
    }
    memcpy(crash_marker, marker, strlen(marker) + 1);
    crash_run = run;
    crash_pid = getpid();
    if (!crash_atexit_set && atexit(crash_on_exit) == 0) crash_atexit_set = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crash_on_signal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_CRASH_SIGNALS; i++)
        sigaction(crash_signals[i], &sa, &crash_old[i]);
    crash_on = 1;
    return 0;
}

void cli_crash_disarm(void) {
    if (!crash_on) return;
    crash_on = 0;
    for (int i = 0; i < N_CRASH_SIGNALS; i++)
        sigaction(crash_signals[i], &crash_old[i], NULL);
    if (crash_main_stack_set) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        crash_main_stack_set = 0;
    }
}
