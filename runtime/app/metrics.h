/*
 * metrics.h — flowrun's Prometheus endpoint (`--metrics ADDR:PORT` on run, resume and
 * serve; docs/observability.md). App layer; metrics.c.
 *
 * Three parts, used in this order:
 *   mx_listen   parses ADDR:PORT and binds the socket, in the caller's thread, before
 *               anything runs: a bad value, a port in use, an address not on this
 *               machine are one line in err (the command exits 2).
 *   mx_start    starts the endpoint's thread: GET /metrics answers what render writes,
 *               in the text exposition format 0.0.4; other paths 404. The scheduler
 *               never waits for it: render reads counters others update (scheduler.h's
 *               sched_meter, relaxed atomics; serve's run counters, under their lock).
 *   mx_stop     stops the thread and closes the socket (NULL: nothing).
 * The exposition writer (mx_family, mx_sample, ...) writes to a FILE; it is public
 * so the unit tests check it (tests/unit/test_metrics.c).
 */
#ifndef FLOW_METRICS_H
#define FLOW_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scheduler.h"

/* Limits against hostile clients (metrics.c's DESIGN). */
#define MX_MAX_CONN 32          /* connections at once; a new one beyond closes the oldest */
#define MX_MAX_REQUEST 8192     /* bytes of a request's head; more: 431 and closed */
#define MX_CONN_TIMEOUT_MS 5000 /* a connection's whole life (read the request, write) */

typedef struct mx_server mx_server;

/* value: "PORT", ":PORT" (127.0.0.1), "ADDR:PORT", "[V6ADDR]:PORT". NULL with one
 * line in err ("--metrics X: why"). */
mx_server *mx_listen(const char *value, char *err, size_t errlen);
/* The port bound (for messages). */
int mx_port(const mx_server *s);
/* Serve render(ud, f) for each GET /metrics, from a thread of its own. 0, or -1 with
 * errno when the thread could not start. */
int mx_start(mx_server *s, void (*render)(void *ud, FILE *f), void *ud);
void mx_stop(mx_server *s);

/* ---- the exposition writer (text format 0.0.4) ---- */

/* "# HELP name help" (help escaped) and "# TYPE name type". */
void mx_family(FILE *f, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",...} value. labels: NULL, or pairs k, v ending with a NULL k;
 * values escaped (\\, \", \n). An integral value is written as an integer; +Inf, -Inf,
 * NaN as Prometheus spells them. */
void mx_sample(FILE *f, const char *name, const char *const *labels, double value);
/* A label value escaped into f. */
void mx_escape(FILE *f, const char *s);
/* One histogram's samples (_bucket with le, _sum, _count) from per-bucket counts
 * (counts[nbounds] above the last bound), with labels before le. */
void mx_histogram(FILE *f, const char *name, const char *const *labels, const double *bounds,
                  int nbounds, const uint64_t *counts, double sum);

/* ---- what flowrun exposes ---- */

/* Sizes of state.db (its -wal included) and of the store, read at most every
 * MX_SIZES_EVERY seconds (a walk of the store), by the thread that renders. */
#define MX_SIZES_EVERY 10.0
typedef struct mx_sizes {
    const char *state_dir;
    double at;              /* monotonic time of the last reading; 0: never */
    double db_bytes, store_bytes;
} mx_sizes;
void mx_write_sizes(FILE *f, mx_sizes *z);
/* flow_build_info{version} 1 */
void mx_write_build(FILE *f);
/* The instance metrics, one row per (flow, env, task): flow_instances_total,
 * flow_instances_running and flow_instances_queued (when rows[0].queued >= 0: a live
 * run's meter), flow_cache_{hits,misses}_total, flow_instance_duration_seconds; and
 * flow_queue_depth{flow,env} when queue >= 0 (rows[0]'s flow and env). */
typedef struct mx_inst_row {
    const char *flow, *env, *task;
    uint64_t done, cached, failed, missed;
    int64_t running;
    int64_t queued; /* < 0: not known (serve) */
    uint64_t bucket[SCHED_METER_NBOUNDS + 1];
    double seconds;
} mx_inst_row;
void mx_write_instances(FILE *f, const mx_inst_row *rows, size_t n, int64_t queue);
/* A run's meter as rows (into rows[0 .. m->n_tasks)): the tasks task_name(ud, t) names
 * (NULL: a task the flow does not reach, left out). The number of rows. */
size_t mx_meter_rows(const sched_meter *m, const char *flow, const char *env,
                     const char *(*task_name)(void *ud, uint32_t t), void *ud, mx_inst_row *rows);
/* The queue depth of a meter: instances known, neither finished nor with the executor. */
int64_t mx_meter_queue(const sched_meter *m);

/* serve: the instances of the runs that ended, by (flow, env, task), under a lock */
typedef struct mx_tally {
    mx_inst_row *rows; /* flow, env, task strdup'd */
    size_t n, cap;
    void *lock;
} mx_tally;
int mx_tally_init(mx_tally *t);
void mx_tally_free(mx_tally *t);
/* One instance of a run that ended: state as state.db has it (succeeded, cached,
 * failed; others are not counted), dur its duration (< 0: unknown); missed: it ran
 * with a cache key (it was looked up and not found). */
void mx_tally_add(mx_tally *t, const char *flow, const char *env, const char *task,
                  const char *state, double dur, int missed);
void mx_write_tally(FILE *f, mx_tally *t);

/* Run counters by (flow, env), for serve and run (under their lock). */
typedef struct mx_runs {
    struct mx_run_row *rows;
    size_t n, cap;
    void *lock; /* pthread_mutex_t, made by mx_runs_init */
} mx_runs;
typedef enum { MX_RUN_STARTED, MX_RUN_SUCCEEDED, MX_RUN_FAILED, MX_RUN_INTERRUPTED,
               MX_RUN_SKIPPED, MX_RUN_ENDED /* running - 1 only */ } mx_run_event;
int mx_runs_init(mx_runs *r);
void mx_runs_free(mx_runs *r);
/* Count one event of a run of flow in env (running goes up with STARTED and down with
 * every other event). Out of memory: not counted. */
void mx_runs_count(mx_runs *r, const char *flow, const char *env, mx_run_event ev);
void mx_write_runs(FILE *f, mx_runs *r);

#endif
