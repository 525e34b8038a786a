/*
 * refuse.h — refuse, before anything runs, what a run declares but this build
 * cannot do (refuse.c says which options and why). Shared by flowrun and the
 * embedding API so both refuse the same things with the same line.
 */
#ifndef FLOW_REFUSE_H
#define FLOW_REFUSE_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"

/* 0 when a run of flow `graph` under `executor` ("inline" or "process"; NULL:
 * process) would do what the plan and the options declare; else -1 with one
 * line in err naming the task and the option. (Environments are enforced by
 * isolate.c, not refused.) */
int rt_refuse_undone(const fl_plan *p, uint32_t graph, const char *executor, char *err,
                     size_t errlen);

/* Mark units[t] = 1 for every task a run of flow `graph` calls as a unit (its own
 * nodes and those of the groups it calls, recursively; a combine's halves are not
 * marked: they run inside their unit). units has n_tasks entries. 0, or -1 when
 * out of memory. */
int rt_reached_units(const fl_plan *p, uint32_t graph, unsigned char *units);

#endif
