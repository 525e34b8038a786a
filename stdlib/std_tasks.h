/*
 * std_tasks.h — the C signatures of the standard library's tasks, one per task
 * declared in std.flow (docs/runtime-abi.md gives the type mapping). The library's
 * sources include it so that each definition is checked against it; flowrun finds
 * the symbols with dlsym.
 */
#ifndef FLOW_STD_TASKS_H
#define FLOW_STD_TASKS_H

#include "std_common.h"

/* files (std_files.c) */
STD_TASK flow_list std_glob(const char *dir, const char *pattern);
STD_TASK const char *std_read_text(const char *f);
STD_TASK const char *std_write_text(const char *text, const char *name);
STD_TASK const char *std_copy(const char *src);
STD_TASK const char *std_concat(flow_list files, const char *name);
STD_TASK flow_list std_lines(const char *f);
STD_TASK const char *std_checksum(const char *f);
STD_TASK int64_t std_size(const char *f);

/* archives (std_archive.c) */
STD_TASK const char *std_gunzip(const char *f);
STD_TASK const char *std_untar(const char *f);

/* moving data (std_net.c) */
STD_TASK flow_bytes std_fetch(const char *url, int64_t max_bytes);
STD_TASK const char *std_fetch_to(const char *url, int64_t max_bytes);
STD_TASK const char *std_publish_file(const char *src, const char *dst);
STD_TASK const char *std_publish_dir(const char *src, const char *dst);
STD_TASK const char *std_publish_bytes(flow_bytes data, const char *dst);

/* tables (std_tables.c): the last argument is the type text flowc passes */
STD_TASK flow_list std_read_csv(const char *f, const char *type);
STD_TASK const char *std_write_csv(flow_list rows, const char *name, const char *type);
STD_TASK flow_list std_read_json(const char *f, const char *type);
STD_TASK int64_t std_read_json_int(const char *f, const char *type);
STD_TASK double std_read_json_float(const char *f, const char *type);
STD_TASK bool std_read_json_bool(const char *f, const char *type);
STD_TASK const char *std_read_json_str(const char *f, const char *type);
STD_TASK flow_list std_read_json_one(const char *f, const char *type);
STD_TASK const char *std_write_json(flow_list x, const char *name, const char *type);

#endif
