/*
 * std_common.h — helpers shared by the C half of the standard library
 * (libflow-std.so: std_files.c, std_archive.c, std_net.c). The tasks themselves
 * are declared in std.flow; this header is internal to the library.
 *
 * Every task follows docs/runtime-abi.md: results in flow_alloc memory or files
 * under flow_out_path, errors through flow_fail with one message that names the
 * file or URL (the runtime puts the instance's name, and in a combine the half's
 * task name, in front of it).
 */
#ifndef FLOW_STD_COMMON_H
#define FLOW_STD_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <flow.h>

/* std's tasks are the only symbols the library exports (it is built with
 * -fvisibility=hidden like the rest of flow) */
#define STD_TASK __attribute__((visibility("default")))

/* The whole of a regular file, NUL-terminated, in flow_alloc memory (len without
 * the NUL); NULL after flow_fail("cannot read FILE: why"). */
char *std_read_file(const char *path, int64_t *len);

/* Write len bytes to a new file at path (O_EXCL); 0, or -1 after flow_fail. */
int std_write_file(const char *path, const void *data, size_t len);

/* The last component of path ("" for a path ending in '/'). */
const char *std_base(const char *path);

/* A fresh output path (flow_out_path) named name, or fallback when name is empty,
 * ".", ".." or not usable; NULL after flow_fail. */
const char *std_out(const char *name, const char *fallback);

/* A new output file (std_out's path, created exclusively, written in binary) and its
 * path in *path; NULL after flow_fail. */
FILE *std_create(const char *name, const char *fallback, const char **path);

/* Copy the file src to the new file dst; 0, or -1 after flow_fail. */
int std_copy_file(const char *src, const char *dst);

#endif
