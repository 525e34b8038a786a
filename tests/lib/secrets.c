/*
 * secrets.c — task library of tests/suites/57-secrets.sh: tasks that read a secret
 * through flow_secret, and tasks that try to get at another task's secret (through
 * flow_secret, and by scanning /proc for it).
 */
#include <dirent.h>
#include <flow.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FNV-1a of file `path` as 16 hex digits (flow_alloc memory), or NULL. */
static const char *fnv_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint64_t h = 1469598103934665603ull;
    int c;
    while ((c = getc(f)) != EOF) h = (h ^ (uint64_t)(unsigned char)c) * 1099511628211ull;
    fclose(f);
    char buf[32];
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
    return flow_strdup(buf);
}

/* The hash of the secret's file, or "NULL" when flow_secret gives none. */
const char *secret_hash(const char *name) {
    const char *path = flow_secret(name);
    if (!path) return "NULL";
    const char *h = fnv_file(path);
    if (!h) flow_fail("cannot open %s", path);
    return h;
}

/* Does file `path` contain `needle`? */
static int file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    size_t k = strlen(needle);
    for (size_t i = 0; n >= k && i <= n - k; i++)
        if (!memcmp(buf + i, needle, k)) return 1;
    return 0;
}

/* What a task without the secret can find: flow_secret(name), then every
 * /proc/PID/{environ,cmdline} holding the value (read from needle_file, so that it
 * is in no argument, plan or result), and every /proc/PID/root/<dir>/<name> (where
 * the secret's own worker has it) holding it. Returns "nothing" or what it found. */
const char *secret_snoop(const char *name, const char *needle_file, const char *dir) {
    char path[8192];
    if (strlen(dir) + strlen(name) + 2 > sizeof path) return "path too long";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (flow_secret(name)) return "flow_secret gave a path";
    static char value[256];
    FILE *nf = fopen(needle_file, "rb");
    if (!nf) return "no needle file";
    size_t vn = fread(value, 1, sizeof value - 1, nf);
    fclose(nf);
    while (vn && (value[vn - 1] == '\n')) vn--;
    value[vn] = 0;
    if (!vn) return "empty needle";
    DIR *d = opendir("/proc");
    if (!d) return "no /proc";
    struct dirent *e;
    char p[8192 + 300];
    const char *found = "nothing";
    int pids = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pids++;
        snprintf(p, sizeof p, "/proc/%s/environ", e->d_name);
        if (file_has(p, value)) found = "the value in some /proc/PID/environ";
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        if (file_has(p, value)) found = "the value in some /proc/PID/cmdline";
        snprintf(p, sizeof p, "/proc/%s/root%s", e->d_name, path);
        if (file_has(p, value)) found = "the secret file through /proc/PID/root";
    }
    closedir(d);
    if (file_has(path, value)) found = "the secret file at its path";
    flow_log("looked at %d processes", pids);
    return flow_strdup(found);
}

/* Crash and hang, for a run that has secret tasks (its workers are pid 1 of their
 * namespaces). */
int64_t secret_crash(int64_t x) {
    if (x > 0) {
        volatile int *np = NULL;
        return *np;
    }
    return x;
}

int64_t secret_abort(int64_t x) {
    if (x > 0) abort();
    return x;
}

/* Runs until killed (a timeout). */
int64_t secret_hang(int64_t x) {
    for (;;) sleep(1);
    return x;
}

/* FNV-1a of a file named by path, as secret_hash gives it (the expected value). */
const char *secret_file_hash(const char *path) {
    const char *h = fnv_file(path);
    return h ? h : "NULL";
}
