/*
 * modpath.h — where flow's own modules live: the folder lib/flow/ beside libflow
 * (the JIT module libflow-jit.so, the standard library's libflow-std.so).
 *
 * One rule serves the build tree (build/bin, build/lib, build/lib/flow) and an
 * install (BINDIR, LIBDIR, LIBDIR/flow): starting from the folder of the object
 * that holds libflow (found with dladdr: libflow.so itself, or flowrun / flowc /
 * a test binary that links libflow.a), look in <dir>/flow/, then <dir>/../lib/flow/,
 * then FLOW_MODULE_DIR, the LIBDIR/flow the build was configured with.
 *
 * Layer: core.
 */
#ifndef FLOW_MODPATH_H
#define FLOW_MODPATH_H

#include <stddef.h>

/* The folder of the object (executable or shared library) that holds libflow, into
 * dir; 0, or -1 when it cannot be told. */
int mod_libflow_dir(char *dir, size_t len);

/* The first existing file named `name` in flow's module folders (above), into out;
 * 0, or -1 when there is none (out then holds the last place tried). */
int mod_find(const char *name, char *out, size_t len);

/* The path of the running program, as /proc/self/exe names it, read once and kept:
 * flowrun takes it in main, before isolate.c gives it a mount namespace of its own,
 * after which (in a chroot) the kernel names the program by its path outside the
 * chroot. Returns the path, or NULL when it cannot be read (errno). */
const char *mod_self_exe(void);

/* The configured module folder (LIBDIR/flow), for messages. */
const char *mod_configured_dir(void);

/* A plan library path naming one of flow's own modules: "flow:NAME" (NAME without
 * a slash). Returns NAME, or NULL for any other path. */
const char *mod_lib_name(const char *lib_path);

#endif
