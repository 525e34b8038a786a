/*
 * cgroup.c — the memory: and max_procs: task options, enforced with Linux control
 * groups for the process executor.
 *
 * DESIGN
 *   The process executor gives each worker process a cgroup of its own, below the
 *   cgroup flowrun runs in (so whatever limits its parents carry still hold):
 *   with cgroups v1, one directory under the memory controller and one under the
 *   pids controller (/sys/fs/cgroup/{memory,pids}/<own path>/<name>); with v2,
 *   one directory under flowrun's own cgroup with those two controllers enabled.
 *   Before a job, the worker writes its task's limits into its cgroup —
 *   memory.limit_in_bytes (and memory.memsw.limit_in_bytes where swap is
 *   accounted) or memory.max and memory.swap.max; pids.max — and only when they
 *   differ from what is written, so a run of tasks without limits writes
 *   nothing. When the memory limit is reached the kernel's OOM killer kills a
 *   process in the cgroup (the worker, or a child the task started) and counts
 *   it (v1 memory.oom_control, v2 memory.events: oom_kill); the executor reads
 *   that counter to say "exceeded memory limit (64 MiB)" instead of "killed by
 *   signal 9". A full pids cgroup makes fork() fail with EAGAIN in the task.
 *
 *   Why not setrlimit: RLIMIT_NPROC does not apply to root and counts every
 *   process of the user, and RLIMIT_AS counts address space, not memory (it
 *   breaks sanitizer builds, which reserve terabytes). So where no cgroup can be
 *   made, a task that sets a limit is refused before the run starts
 *   (fcg_probe), never run unlimited.
 *
 *   A flowrun killed with SIGKILL cannot remove its workers' cgroups. So the
 *   probe, which every run with limits makes once, also sweeps its siblings:
 *   a directory named flow-<pid>-... or flow-probe-<pid> whose process no
 *   longer exists is removed (rmdir, which only succeeds on an empty cgroup;
 *   one in use by a live run is never touched).
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define FCG_ROOT "/sys/fs/cgroup"

/* This process's cgroup path for a v1 controller ("memory"), or for v2 (ctl NULL). */
static int own_path(const char *ctl, char *out, size_t len) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return -1;
    char line[1024];
    int found = -1;
    while (found && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        const char *ctls = a + 1, *path = b + 1;
        int match = 0;
        if (!ctl) {
            match = !strcmp(line, "0") && !*ctls;
        } else {
            for (const char *c = ctls; *c;) {
                size_t n = strcspn(c, ",");
                if (n == strlen(ctl) && !strncmp(c, ctl, n)) match = 1;
                c += n + (c[n] == ',');
            }
        }
        if (!match) continue;
        size_t n = strcspn(path, "\n");
        if ((size_t)snprintf(out, len, "%.*s", (int)n, path) < len) found = 0;
    }
    fclose(f);
    return found;
}

static int put(const char *dir, const char *file, const char *text) {
    char path[FCG_PATH + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int exists(const char *dir, const char *file) {
    char path[FCG_PATH + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static int mkdir_in(char *out, const char *ctl, const char *own, const char *name, char *why,
                    size_t whylen) {
    int n = snprintf(out, FCG_PATH, FCG_ROOT "%s%s%s/%s", ctl ? "/" : "", ctl ? ctl : "",
                     strcmp(own, "/") ? own : "", name);
    if (n < 0 || n >= FCG_PATH) {
        snprintf(why, whylen, "cgroup path too long");
        return -1;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

int fcg_create(fcg *g, const char *name, char *why, size_t whylen) {
    memset(g, 0, sizeof *g);
    char own[FCG_PATH];
    struct stat st;
    if (stat(FCG_ROOT "/memory", &st) == 0 && stat(FCG_ROOT "/pids", &st) == 0) {
        if (own_path("memory", own, sizeof own)) {
            snprintf(why, whylen, "no memory cgroup in /proc/self/cgroup");
            return -1;
        }
        if (mkdir_in(g->mem, "memory", own, name, why, whylen)) return -1;
        if (own_path("pids", own, sizeof own)) {
            snprintf(why, whylen, "no pids cgroup in /proc/self/cgroup");
            rmdir(g->mem);
            return -1;
        }
        if (mkdir_in(g->pids, "pids", own, name, why, whylen)) {
            rmdir(g->mem);
            return -1;
        }
        g->version = 1;
        return 0;
    }
    if (stat(FCG_ROOT "/cgroup.controllers", &st) == 0) {
        if (own_path(NULL, own, sizeof own)) {
            snprintf(why, whylen, "no cgroup v2 entry in /proc/self/cgroup");
            return -1;
        }
        char parent[FCG_PATH + 32];
        snprintf(parent, sizeof parent, FCG_ROOT "%s", strcmp(own, "/") ? own : "");
        if (put(parent, "cgroup.subtree_control", "+memory +pids")) {
            snprintf(why, whylen, "cannot enable the memory and pids controllers in %s: %s", parent,
                     strerror(errno));
            return -1;
        }
        if (mkdir_in(g->mem, NULL, own, name, why, whylen)) return -1;
        memcpy(g->pids, g->mem, sizeof g->pids);
        g->version = 2;
        return 0;
    }
    snprintf(why, whylen, "no cgroup file system at " FCG_ROOT);
    return -1;
}

int fcg_attach(const fcg *g, pid_t pid) {
    char text[32];
    snprintf(text, sizeof text, "%d", (int)pid);
    if (put(g->mem, "cgroup.procs", text)) return -1;
    return g->version == 1 ? put(g->pids, "cgroup.procs", text) : 0;
}

int fcg_set(fcg *g, int64_t memory, uint32_t max_procs) {
    char v[32];
    int rc = 0;
    if (memory != g->memory) {
        if (memory)
            snprintf(v, sizeof v, "%" PRId64, memory);
        else
            snprintf(v, sizeof v, g->version == 1 ? "-1" : "max");
        if (g->version == 1) {
            /* memsw (memory + swap) must never be below the memory limit */
            int sw = exists(g->mem, "memory.memsw.limit_in_bytes");
            if (sw && (!memory || (g->memory && memory > g->memory)))
                rc |= put(g->mem, "memory.memsw.limit_in_bytes", v);
            rc |= put(g->mem, "memory.limit_in_bytes", v);
            if (sw && memory && !(g->memory && memory > g->memory))
                rc |= put(g->mem, "memory.memsw.limit_in_bytes", v);
        } else {
            rc |= put(g->mem, "memory.max", v);
            if (exists(g->mem, "memory.swap.max"))
                put(g->mem, "memory.swap.max", memory ? "0" : "max");
        }
        if (!rc) g->memory = memory;
    }
    if (max_procs != g->max_procs) {
        if (max_procs)
            snprintf(v, sizeof v, "%" PRIu32, max_procs);
        else
            snprintf(v, sizeof v, "max");
        if (put(g->pids, "pids.max", v))
            rc = -1;
        else
            g->max_procs = max_procs;
    }
    return rc ? -1 : 0;
}

int64_t fcg_oom_kills(const fcg *g) {
    if (!g->version) return -1;
    char path[FCG_PATH + 64], line[128];
    snprintf(path, sizeof path, "%s/%s", g->mem,
             g->version == 1 ? "memory.oom_control" : "memory.events");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "oom_kill %lld", &n) == 1) break;
    fclose(f);
    return n;
}

/* rmdir, waiting a little for killed processes to leave (they do at exit, which a
 * SIGKILL makes happen soon but not at once) */
static void rmdir_soon(const char *dir) {
    for (int i = 0; i < 100 && rmdir(dir) && errno == EBUSY; i++)
        usleep(2000);
}

void fcg_remove(fcg *g) {
    if (!g->version) return;
    rmdir_soon(g->mem);
    if (g->version == 1) rmdir_soon(g->pids);
    g->version = 0;
}

/* Remove the cgroups in dir left by flowrun processes that are gone (see DESIGN). */
static void sweep_dead(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, "flow-", 5)) continue;
        n += 5;
        if (!strncmp(n, "probe-", 6)) n += 6;
        char *end;
        long pid = strtol(n, &end, 10);
        if (end == n || (*end && *end != '-') || pid <= 0) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[FCG_PATH + 256];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
            rmdir(path);
    }
    closedir(d);
}

/* The parent directory of a cgroup directory path, in out. */
static void parent_of(const char *path, char *out, size_t len) {
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = 0;
}

int fcg_probe(char *why, size_t whylen) {
    static int known = 0, answer = -1;
    static char reason[FCG_PATH + 200];
    if (!known) {
        fcg g;
        char name[64];
        snprintf(name, sizeof name, "flow-probe-%d", (int)getpid());
        answer = fcg_create(&g, name, reason, sizeof reason);
        if (answer == 0) {
            if (fcg_set(&g, 64 << 20, 64) || fcg_set(&g, 0, 0)) {
                snprintf(reason, sizeof reason, "cannot write limits into %s: %s", g.mem,
                         strerror(errno));
                answer = -1;
            }
            char parent[FCG_PATH];
            parent_of(g.mem, parent, sizeof parent);
            sweep_dead(parent);
            if (g.version == 1) {
                parent_of(g.pids, parent, sizeof parent);
                sweep_dead(parent);
            }
            fcg_remove(&g);
        }
        known = 1;
    }
    if (answer) snprintf(why, whylen, "%s", reason);
    return answer;
}

void fcg_fmt_size(char *buf, size_t len, int64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    double v = (double)bytes;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (v == (double)(int64_t)v)
        snprintf(buf, len, "%lld %s", (long long)v, units[u]);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}
