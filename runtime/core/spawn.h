/*
 * spawn.h — run one command and read what it prints: the one way libflow starts a
 * program and waits for it (sh tasks, podman, kubectl, sbatch/squeue/scancel).
 *
 * The command (argv[0] a path, or looked up on PATH) runs in a process group of its
 * own, stdin from /dev/null, signals unblocked and SIGPIPE/SIGINT/SIGTERM/SIGCHLD at
 * their defaults; stdout and stderr go to two pipes read together with poll(), so
 * neither can fill and stall it, into rt_obufs (or /dev/null). Past the timeout the
 * whole group is killed. Its status, peak RSS and CPU time come from wait4.
 */
#ifndef FLOW_SPAWN_H
#define FLOW_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a command printed on one stream: at most `limit` bytes kept — the first
 * ones, or with keep_tail the last ones (the oldest are dropped). d is malloc'ed and
 * NUL-terminated once anything came (NULL before); free it with rt_obuf_free. */
typedef struct rt_obuf {
    char *d;
    size_t len, cap;
    size_t limit;  /* set before the run */
    int keep_tail; /* set before the run */
    int overflow;  /* bytes were dropped for the limit */
    int nomem;     /* bytes were dropped for want of memory */
} rt_obuf;

void rt_obuf_add(rt_obuf *b, const char *s, size_t n);
void rt_obuf_free(rt_obuf *b);

typedef struct rt_cmd {
    int64_t timeout_ms; /* in: 0 for none */
    rt_obuf *out, *err; /* in: where stdout and stderr go; NULL: /dev/null */
    pid_t pid;          /* out: the command (and its process group) */
    int status;         /* out: its wait status */
    int timed_out;      /* out: killed for the timeout */
    long rss_kb;        /* out: its peak resident memory (wait4) */
    int64_t cpu_ns;     /* out: its CPU time, user + system (wait4) */
} rt_cmd;

/* Run argv and wait for it. 0: it ran and ended (status and timed_out say how);
 * -1: it could not be started or waited for, with one line in why ("cannot run X:
 * No such file or directory"). */
int rt_cmd_run(char *const *argv, rt_cmd *c, char *why, size_t whylen);

/* The last line of s (trailing newlines and spaces dropped), control bytes as
 * spaces, at most n - 1 bytes, into buf: for one-line errors. "" for NULL. */
const char *rt_last_line(const char *s, char *buf, size_t n);

#endif /* FLOW_SPAWN_H */
