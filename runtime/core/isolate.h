/*
 * isolate.h — keep a run's tasks off every other environment's root
 * (docs/environments.md). isolate.c says how.
 *
 * flowrun calls iso_protect_run once per run, early, while it is still one
 * thread; everything the run starts afterwards (inline task threads, process
 * workers forked from flowrun, the programs of sh tasks) inherits the view.
 */
#ifndef FLOW_ISOLATE_H
#define FLOW_ISOLATE_H

#include <stddef.h>
#include <stdio.h>

/* Enter a private mount namespace in which each of roots[0..n) (absolute
 * paths of folders that exist) and every mount below it is read-only.
 * As root: a mount namespace. Not root: a user namespace mapping the user to
 * itself, then the mounts, then every capability dropped and no new privileges,
 * so nothing in the process can undo it. n == 0: nothing at all is done.
 * 0, or -1 with why in err (the kernel's refusal, or flowrun already has threads).
 * After a failure the process may be in a namespace with part of the roots
 * read-only; it remains usable. */
int iso_enter(const char *const *roots, int n, char *err, size_t errlen);

/* The policy of one run in environment env (NULL: prod) whose other
 * environments own roots[0..n): isolate (iso_enter); --unprotected
 * (unprotected != 0) skips isolation with one warning line on warn; where the
 * kernel refuses, a prod run goes on with one warning line, any other run is
 * refused: -1 with the line in err (exit 2). 1: go on, isolated; 0: go on
 * without (no other roots, --unprotected, or prod where the kernel refused).
 * check != 0: only find
 * out, in a forked child, whether runs started later would be isolated (flowrun
 * serve, before it starts any), this process unchanged. */
int iso_protect_run(const char *env, const char *const *roots, int n, int unprotected, int check,
                    FILE *warn, char *err, size_t errlen);

/* Drop CAP_SYS_ADMIN from this process for good (bounding, effective, permitted,
 * inheritable and ambient sets), keeping every other capability (run_as needs
 * SETUID, SETGID, CHOWN, FOWNER, DAC_*): a root worker calls it after its
 * mounts, so a task cannot remount what it sees read-only. 0, or -1 (errno) when
 * any part failed: without CAP_SETPCAP the bounding set keeps it, and a root task
 * that execs a program gets it back; the other sets are dropped anyway. */
int iso_drop_sys_admin(void);

#endif
