/*
 * cgroup.h — resource limits for task instances (the memory: and max_procs:
 * options), through Linux control groups. See cgroup.c for the design.
 *
 * Ownership: an fcg is a plain value (two paths and a version); fcg_create
 * makes the directories, fcg_remove removes them. Nothing here prints.
 */
#ifndef FLOW_CGROUP_H
#define FLOW_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FCG_PATH 512

typedef struct fcg {
    int version;         /* 1 or 2; 0: none (not created) */
    char mem[FCG_PATH];  /* v1: the memory controller's directory; v2: the one directory */
    char pids[FCG_PATH]; /* v1: the pids controller's directory; v2: same as mem */
    int64_t memory;      /* the memory limit now written (0: none) */
    uint32_t max_procs;  /* the pids limit now written (0: none) */
} fcg;

/* Can this process make cgroups with the memory and pids controllers? 0 yes; -1 no,
 * with the reason in why. The answer is remembered after the first call. */
int fcg_probe(char *why, size_t whylen);
/* Make a cgroup named `name` (a single path component) below this process's own. */
int fcg_create(fcg *g, const char *name, char *why, size_t whylen);
/* Move process pid (and, v1, its threads) into the cgroup. */
int fcg_attach(const fcg *g, pid_t pid);
/* Set the limits (0: none). Writes only what changed. -1 if a file cannot be written. */
int fcg_set(fcg *g, int64_t memory, uint32_t max_procs);
/* How many times the kernel's OOM killer has killed in this cgroup (-1: unknown). */
int64_t fcg_oom_kills(const fcg *g);
/* Remove the cgroup (its processes must have ended). */
void fcg_remove(fcg *g);
/* "64 MiB", "2 GiB", "1.5 GiB", "3000000 B": a size in bytes for messages. */
void fcg_fmt_size(char *buf, size_t len, int64_t bytes);

#endif
