/*
 * flow.h — the C task ABI of flow, and the API for embedding the runtime.
 *
 * A task is an ordinary C function whose parameter and return types follow
 * the table in docs/language.md (int -> int64_t, float -> double, bool -> bool,
 * str/path/dir/date/time -> const char *, bytes -> flow_bytes, [T] -> flow_list,
 * records -> C structs with the fields in declaration order).
 *
 * Ownership: arguments are borrowed for the duration of the call and must not
 * be modified. Results that point to memory must point to memory from
 * flow_alloc / flow_strdup / flow_list_new, or to static data; the runtime
 * copies what it keeps and never calls free() on a user pointer.
 */
#ifndef FLOW_H
#define FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flow_bytes {
    const uint8_t *data; /* the bytes (borrowed or flow_alloc'ed) */
    int64_t len;         /* number of bytes */
} flow_bytes;

typedef struct flow_list {
    int64_t len; /* number of items */
    void *items; /* items laid out as a C array of the element type */
} flow_list;

/* The version of flow this header belongs to: the one place it is defined. The
 * Makefile reads it from here for libflow's file name and soname, flow.pc and the
 * installed man pages; flowc and flowrun print it for --version. */
#define FLOW_VERSION "0.1.0"

#if defined(__GNUC__)
#define FLOW_PRINTF(a, b) __attribute__((format(printf, a, b)))
/* Marks the public API: libflow is built with -fvisibility=hidden, so only the
 * functions declared FLOW_API here are visible outside it (docs/runtime-abi.md). */
#define FLOW_API __attribute__((visibility("default")))
#else
#define FLOW_PRINTF(a, b)
#define FLOW_API
#endif

/* ---- inside a task --------------------------------------------------------- */

/* This instance failed; its return value is ignored. */
FLOW_API void flow_fail(const char *fmt, ...) FLOW_PRINTF(1, 2);
/* A line in this instance's log. */
FLOW_API void flow_log(const char *fmt, ...) FLOW_PRINTF(1, 2);
/* Memory that lives until the runtime has stored the instance's result. NULL when
 * memory ran out (the instance has then failed with "out of memory"); the same
 * for flow_strdup, and flow_list_new gives {0, NULL}. */
FLOW_API void *flow_alloc(size_t n);
FLOW_API char *flow_strdup(const char *s);
/* A list of len items of item_size bytes each, zero-filled, in flow_alloc memory. */
FLOW_API flow_list flow_list_new(int64_t len, size_t item_size);
/* A fresh path in this instance's output directory (the file is not created). */
FLOW_API const char *flow_out_path(const char *name);
/* Scratch space for this instance, shared by the halves of a combined task. */
FLOW_API const char *flow_scratch_dir(void);
/* This instance's map index; -1 when the instance is not mapped. */
FLOW_API int64_t flow_map_index(void);
/* The root the run's environment owns (flow.yaml, `envs: NAME: root:`), an absolute
 * path; NULL when the environment has none (docs/configuration.md). */
FLOW_API const char *flow_env_root(void);
/* The path of a file (mode 0400) holding the value of secret `name`, when the task
 * declares it (`secrets: ["name"]`) and runs under the process executor; NULL
 * otherwise. The file lives in a private tmpfs seen only by this instance's worker
 * (docs/secrets.md). */
FLOW_API const char *flow_secret(const char *name);


/* ==== embedding the runtime (libflow) ========================================
 * A C program that links libflow can run plans itself (this example is
 * compiled, linked and run by tests/suites/16-doc-examples.sh):
 *
 *     #include <flow.h>
 *     #include <stdio.h>
 *
 *     static int64_t my_count_words(const char *file) { (void)file; return 0; }
 *
 *     int main(void) {
 *         char err[256];
 *         flow_program *fp = flow_program_open("wc.plan", err, sizeof err);
 *         if (!fp) { fprintf(stderr, "%s\n", err); return 2; }
 *         flow_program_register(fp, "wc", "count_words", (void *)my_count_words,
 *                               err, sizeof err);
 *         flow_program_set_param(fp, "root", "/srv/corpus", err, sizeof err);
 *         flow_outcome *out;
 *         int code = flow_program_run(fp, NULL, &out);   // 0, 1, 2 or 3 as flowrun
 *         if (code == 0) puts(flow_outcome_json(out));
 *         flow_outcome_free(out);
 *         flow_program_close(fp);
 *         return code;
 *     }
 *
 * Handles are opaque. A flow_program owns its plan, parameters, registered
 * symbols and linked libraries; flow_program_close frees all of it. A
 * flow_outcome is independent of its program (it may outlive it) and is freed
 * with flow_outcome_free. Strings returned by these functions belong to the
 * handle they came from and live until it is freed. Functions returning int
 * return 0 on success and -1 with one line in err (when err is not NULL).
 *
 * libflow never exits and never prints. Running out of memory is an error like
 * any other ("out of memory" in err, or code 2 and that line in the outcome);
 * the program, and the process, can go on (close it, open another). What a run
 * has to say to a person (the failure summary) goes to the program's log
 * function, if it set one (flow_program_set_log); otherwise it is dropped (it
 * is in the outcome anyway). */

typedef struct flow_program flow_program; /* a plan opened for running */
typedef struct flow_outcome flow_outcome; /* the result of one run */

/* Open a plan file; libraries are found beside it, then on FLOW_LIBRARY_PATH. */
FLOW_API flow_program *flow_program_open(const char *plan_path, char *err, size_t errlen);
/* Open a plan from bytes (the array `flowc --emit=c` writes; copied).
 * lib_dir: the folder relative library paths are taken from (NULL: the
 * working directory). */
FLOW_API flow_program *flow_program_open_bytes(const void *bytes, size_t len, const char *lib_dir,
                                      char *err, size_t errlen);
/* Run `library.symbol` with fn instead of loading it (the library need not
 * exist). fn must have the C signature the task declares. Before the first run. */
FLOW_API int flow_program_register(flow_program *fp, const char *library, const char *symbol, void *fn,
                          char *err, size_t errlen);
/* Native code for the plan's lambdas (enabled: 1, the default) or the
 * interpreter (0); the results are the same. Before the first run. With the JIT
 * on, the first run of a plan that has lambdas loads the JIT module
 * (libflow-jit.so, in LIBDIR/flow/ or $FLOW_JIT_MODULE), and with it libLLVM;
 * a plan without lambdas, or a program that set 0, never loads them. A module
 * that cannot be loaded: one warning, the lambdas are interpreted. */
FLOW_API int flow_program_set_jit(flow_program *fp, int enabled, char *err, size_t errlen);
/* Where the program's lines for a person go: fn(ud, line) once per line (no
 * newline; valid for the call only), e.g. the failure summary of a run that is
 * not quiet. NULL: dropped (the default). */
typedef void (*flow_log_fn)(void *ud, const char *line);
FLOW_API void flow_program_set_log(flow_program *fp, flow_log_fn fn, void *ud);
/* Choose the flow (required when the plan has several). */
FLOW_API int flow_program_select(flow_program *fp, const char *flow, char *err, size_t errlen);
/* Set a parameter of the selected flow from text, as `--param name=text`. */
FLOW_API int flow_program_set_param(flow_program *fp, const char *name, const char *text, char *err,
                           size_t errlen);
/* Typed setters: each checks the parameter's declared type at once, and a
 * parameter of another type (or an unknown name) is -1 with one line naming the
 * parameter, its type and the type given; nothing is set then. set_int: int,
 * or duration in milliseconds; set_float: float; set_bool: bool; set_str: str,
 * path, dir, date or time (the text is then checked as set_param does). Other types
 * (lists, records, bytes) are set from text with flow_program_set_param. */
FLOW_API int flow_program_set_int(flow_program *fp, const char *name, int64_t v, char *err, size_t errlen);
FLOW_API int flow_program_set_float(flow_program *fp, const char *name, double v, char *err,
                           size_t errlen);
FLOW_API int flow_program_set_bool(flow_program *fp, const char *name, bool v, char *err, size_t errlen);
FLOW_API int flow_program_set_str(flow_program *fp, const char *name, const char *v, char *err,
                         size_t errlen);

typedef struct flow_run_options {
    const char *executor; /* "inline" (default here) or "process" */
    int jobs;             /* parallel instances; 0: the number of CPUs */
    int64_t max_map;      /* largest expansion for tasks that set none; 0: 100000 */
    int breadth_first;    /* 1: breadth-first order instead of depth-first */
    const char *work_dir; /* where instance output folders go; NULL: ".flow/work/embed" */
    int quiet;            /* 1: the failure summary is not sent to the program's log
                             (flow_program_set_log); it is in the outcome anyway */
} flow_run_options;

/* Run the selected flow (options may be NULL). Returns the exit code flowrun
 * would give: 0 result produced, 1 a task failed, 2 plan/parameter/library
 * error (and out of memory), 3 interrupted. *out is set whenever it is not NULL
 * (free it); it is NULL only when there was no memory even for the outcome. */
FLOW_API int flow_program_run(flow_program *fp, const flow_run_options *opts, flow_outcome **out);

FLOW_API int flow_outcome_code(const flow_outcome *o);
/* The flow's result as one line of JSON, "" when there is none. */
FLOW_API const char *flow_outcome_json(const flow_outcome *o);
/* What went wrong: the failure summary or the error line ("" when none). */
FLOW_API const char *flow_outcome_error(const flow_outcome *o);
/* Typed reads of a scalar result: 0, or -1 when the result has another type. */
FLOW_API int flow_outcome_int(const flow_outcome *o, int64_t *v);
FLOW_API int flow_outcome_float(const flow_outcome *o, double *v);
FLOW_API int flow_outcome_bool(const flow_outcome *o, bool *v);
/* str, path, dir, date and time results; NULL for other types. */
FLOW_API const char *flow_outcome_str(const flow_outcome *o);
FLOW_API void flow_outcome_free(flow_outcome *o);
FLOW_API void flow_program_close(flow_program *fp);

#ifdef __cplusplus
}
#endif
#endif /* FLOW_H */
