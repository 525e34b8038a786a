/*
 * secrets.h — the values of `secrets: [...]` reach only their task (docs/secrets.md).
 * secrets.c says how.
 *
 * flowrun (cli_run.c) fills an fsec_set before it forks anything: for each secret a
 * reached task names, where its value is (a file, read only by the one worker that
 * may; or an environment variable of flowrun, moved at once into a memfd and wiped
 * from the environment). The process executor (exec_process.c) then runs every
 * worker of such a run in a pid namespace of its own (fsec_enter_pidns), closes the
 * memfd first thing in pooled workers, and runs each job of a task with secrets in a
 * fresh worker that puts the task's secrets in a private tmpfs (fsec_materialize).
 *
 * Ownership: an fsec_set owns its names, paths and the memfd; fsec_free releases them.
 * It never holds a value in memory.
 */
#ifndef FLOW_SECRETS_H
#define FLOW_SECRETS_H

#include <stddef.h>
#include <sys/types.h>

#include "plan.h"

typedef struct fsec_entry {
    char *name;     /* as tasks ask for it */
    char *file;     /* a file holding the value, or NULL (then the value is in the memfd) */
    char *var;      /* the environment variable it came from, or NULL */
    off_t off;      /* memfd: where the value starts */
    size_t len;     /* memfd: its length */
} fsec_entry;

typedef struct fsec_set {
    fsec_entry *e;  /* one per secret a reached task names */
    int n;
    int memfd;      /* the values of environment-variable secrets, or -1 */
    char *mnt;      /* an empty folder (0700) a fresh worker mounts its tmpfs on */
} fsec_set;

void fsec_init(fsec_set *s);
void fsec_free(fsec_set *s);
const fsec_entry *fsec_get(const fsec_set *s, const char *name);

/* Add a secret whose value is the file `path`: it must be a readable regular file
 * (checked now, read later by the worker). 0, or -1 with why. */
int fsec_add_file(fsec_set *s, const char *name, const char *path, char *why, size_t len);
/* Add a secret whose value is flowrun's environment variable `var`: it must be set.
 * The value is copied into the memfd, its bytes in the environment are overwritten
 * (so /proc/PID/environ, which shows the original bytes, no longer holds it) and the
 * variable is unset. 0, or -1 with why. */
int fsec_add_env(fsec_set *s, const char *name, const char *var, char *why, size_t len);

/* The empty folder (created 0700 when missing) fresh workers mount their tmpfs on.
 * 0, or -1 with why. */
int fsec_set_mnt(fsec_set *s, const char *dir, char *why, size_t len);

/* Can this process give workers a pid namespace with their own /proc and a fresh
 * worker a tmpfs on s->mnt (a user namespace too when not root)? Tried in a child
 * that is thrown away. 0, or -1 with the kernel's refusal in why. */
int fsec_probe(const fsec_set *s, char *why, size_t len);

/* Called in a freshly forked worker: unshare a pid and a mount namespace (and a user
 * namespace mapping the user to itself, when not root), fork, and in the child (pid 1
 * of the new namespace) make the mounts private and mount a /proc of its own. The
 * child returns 0; the parent never returns: it waits for the child and ends as it
 * did (so whoever forked it sees the worker's status), and dies with flowrun
 * (PR_SET_PDEATHSIG), taking the namespace with it. -1 with why when nothing was
 * done (no fork happened). */
int fsec_enter_pidns(char *why, size_t len);

/* In a fresh worker (after fsec_enter_pidns) for one job of `task`: mount a private
 * tmpfs on s->mnt holding one file (0400) per secret the task declares, owned by
 * uid/gid (the task's run_as, or the worker's own), set FLOW_SECRET_<NAME> to each
 * file's path, and close the memfd. 0, or -1 with why. */
int fsec_materialize(const fsec_set *s, const fl_plan *p, uint32_t task, uid_t uid, gid_t gid,
                     char *why, size_t len);

/* FLOW_SECRET_<NAME upper-cased> into buf. */
void fsec_env_name(const char *name, char *buf, size_t len);

#endif
