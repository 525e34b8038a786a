/*
 * events.h — run events for lineage tools (`flowrun run --events FILE`, issue 17):
 * one JSON line per state change of the run and of each task instance, in the shape
 * of an OpenLineage RunEvent. Layer: recorder. docs/observability.md says what each
 * line holds; tests/suites/67-events.sh checks them against a JSON Schema written from
 * the OpenLineage specification (tests/events/openlineage-runevent.schema.json).
 *
 * DESIGN
 *   The history (history.c) owns one ev_sink when the run asks for events, and calls
 *   it where it already learns each change: the run's start when it begins or reopens
 *   the run, each instance's end in its `finished` (a START line dated when the
 *   instance started, then COMPLETE or FAIL dated when it ended: the recorder is told
 *   of an instance once, when it is over), and the run's end in hist_close. A run
 *   without --events holds a NULL sink and pays one test per instance.
 *
 *   Identities: OpenLineage wants a UUID per run. The flow run's is made from the
 *   SHA-256 of the state folder's absolute path, the run's id and its start time (so
 *   a resume reports under the same runId, and another state folder never collides);
 *   an instance's from the run's UUID and the instance's name. The jobs are
 *   `<flow>` and `<flow>.<instance name>` in the namespace `flow:<environment>`;
 *   an instance's run carries the standard `parent` facet naming the flow's run.
 *
 *   Datasets: a `path` or `dir` argument is an input dataset (namespace `file`, its
 *   absolute path as the name) with a `flow_content` facet holding the argument's
 *   cache-key part (a 64-bit hash that changes when the file's content does); a
 *   result of type path, or list of paths, gives output datasets, and those the
 *   instance wrote into the store carry the SHA-256 of their content (a path it
 *   returned from elsewhere carries none: flowrun did not read it). Lines are
 *   appended in whole-line writes at the run's start and end and at most a second
 *   apart in between (events.c): a reader tailing the file never sees half a line.
 */
#ifndef FLOW_EVENTS_H
#define FLOW_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "plan.h"
#include "state.h"
#include "value.h"

typedef struct ev_sink ev_sink;

/* Open (append to) path for the run `run` of `flow` in environment env, kept in
 * state_dir, begun at `started` (s since the epoch). Writes the run's START line
 * (RUNNING when resumed). NULL + err when the file cannot be opened. */
ev_sink *ev_open(fl_ctx *ctx, const char *path, const char *state_dir, const char *flow,
                 const char *env, int64_t run, double started, int resumed, char *err,
                 size_t errlen);

/* The end of one instance (r as history.c records it; args its arguments; result its
 * value when r->state is succeeded or cached; objs the stored objects the result
 * refers to, in the order the value holds them). */
void ev_instance(ev_sink *e, const fl_plan *p, uint32_t task, const state_inst *r,
                 const fl_val *args, fl_val result, const fl_digest *objs, size_t nobjs);

/* The run's end (state: succeeded, failed, interrupted) and close. 0, or -1 when a
 * line could not be written (a full disk), said in err. */
int ev_close(ev_sink *e, const char *state, const char *error, char *err, size_t errlen);

#endif
