/*
 * modpath.c — finding flow's own modules in lib/flow/ (modpath.h): the JIT module
 * (jit_load.c) and the libraries a plan names "flow:NAME" (the standard library's
 * libflow-std.so: link.c at run time, check_library.c at compile time, flowrun
 * verify), all by one rule, from where the running libflow is rather than from
 * where the plan is. A plan therefore runs with the std library of the flowrun that
 * runs it, and its content hash (checked by link.c, part of every cache key) says
 * when that is not the one flowc compiled against.
 *
 * Layer: core.
 */
#define _GNU_SOURCE
#include "modpath.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FLOW_MODULE_DIR
#define FLOW_MODULE_DIR "/usr/local/lib/flow"
#endif

static char self_exe[PATH_MAX];
static int self_errno;

static void read_self_exe(void) {
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n > 0) self_exe[n] = '\0';
    else self_errno = n < 0 ? errno : ENOENT;
}

const char *mod_self_exe(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_self_exe);
    if (!self_exe[0]) errno = self_errno;
    return self_exe[0] ? self_exe : NULL;
}

int mod_libflow_dir(char *dir, size_t len) {
    Dl_info info;
    char path[PATH_MAX];
    if (!dladdr((void *)mod_libflow_dir, &info) || !info.dli_fname) return -1;
    /* in the main program dladdr gives argv[0], which may be a bare name or
     * relative to a folder the program has left: ask the kernel instead */
    if (!info.dli_fname[0] || !strchr(info.dli_fname, '/') ||
        !strcmp(info.dli_fname, program_invocation_name)) {
        const char *self = mod_self_exe();
        if (!self || (size_t)snprintf(path, sizeof path, "%s", self) >= sizeof path) return -1;
    } else if (!realpath(info.dli_fname, path)) {
        return -1;
    }
    char *slash = strrchr(path, '/');
    if (!slash) return -1;
    *slash = '\0';
    if ((size_t)snprintf(dir, len, "%s", path[0] ? path : "/") >= len) return -1;
    return 0;
}

int mod_find(const char *name, char *out, size_t len) {
    char dir[PATH_MAX];
    if (mod_libflow_dir(dir, sizeof dir) == 0) {
        if ((size_t)snprintf(out, len, "%s/flow/%s", dir, name) < len && access(out, F_OK) == 0)
            return 0;
        if ((size_t)snprintf(out, len, "%s/../lib/flow/%s", dir, name) < len &&
            access(out, F_OK) == 0)
            return 0;
    }
    if ((size_t)snprintf(out, len, "%s/%s", FLOW_MODULE_DIR, name) < len && access(out, F_OK) == 0)
        return 0;
    return -1;
}

const char *mod_configured_dir(void) {
    return FLOW_MODULE_DIR;
}

const char *mod_lib_name(const char *lib_path) {
    if (!lib_path || strncmp(lib_path, "flow:", 5) != 0) return NULL;
    const char *name = lib_path + 5;
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) return NULL;
    return name;
}
