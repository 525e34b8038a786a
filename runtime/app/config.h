/*
 * config.h — the project configuration, flow.yaml (docs/configuration.md).
 *
 * flowrun reads one file: --config FILE, else $FLOW_CONFIG, else ./flow.yaml when
 * it exists; with none, the configuration has one environment, `prod`, with no
 * root, no parameters and no secrets (flow's behaviour before the file existed).
 * The file is read with libyaml. An unknown key, a value of the wrong type, or an
 * inconsistency (overlapping roots, a state directory inside another
 * environment's root) is one line "FILE:LINE:COL: what" and flowrun exits 2.
 *
 * The configuration gives: defaults for flowrun options (a command-line option
 * wins), the environments (each with the root it owns and publishes into and its
 * parameter defaults), and the secrets tasks may ask for by name. Secret VALUES
 * are never read here: only where each one comes from (a file, or an environment
 * variable of flowrun), so that nothing holding a value is copied into workers
 * that must not see it (the executor reads a value when it starts the one worker
 * that may).
 *
 * Ownership: everything a flcfg holds belongs to it; flcfg_free releases it.
 */
#ifndef FLOW_CONFIG_H
#define FLOW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct flcfg_param {
    char *name;         /* the flow parameter */
    char *text;         /* its value as --param NAME=TEXT would give it; NULL for a YAML
                         * sequence or mapping, which params_resolve_env reads from the file */
    int line, col;      /* where in the file (from 1), for messages */
} flcfg_param;

typedef struct flcfg_env {
    char *name;         /* "prod", "test", ... */
    char *root;         /* absolute, normalised; NULL when the environment owns no root */
    flcfg_param *params;
    int nparams;
    int line, col;
    char *owner;        /* the user who owns the root when flowrun creates it, or NULL */
    int root_line, root_col; /* where the root is written, for messages */
} flcfg_env;

typedef struct flcfg_secret {
    char *name;         /* what tasks ask for: secrets: ["s3_key"] */
    char *file;         /* a file holding the value, or NULL */
    char *env_var;      /* an environment variable of flowrun holding it, or NULL */
} flcfg_secret;         /* exactly one of file and env_var */

/* `kubernetes:` (docs/configuration.md, docs/distributed.md "Kubernetes"): the options of
 * --executor kubernetes; NULL / 0 when not set. */
typedef struct flcfg_kube {
    char *kubectl;         /* the kubectl command (default "kubectl") */
    char *ns;              /* namespace: (default: kubectl's current) */
    char *image;           /* the image the pods run */
    char *pvc;             /* the state directory's PersistentVolumeClaim, or */
    char *host_path;       /* the node directory holding it (absolute, normalised) */
    char *service_account; /* service_account: */
    char *flowrun;         /* flowrun's path in the image */
    int64_t slots;         /* elements running at once (default: -j) */
    int64_t poll_ms;       /* poll interval in milliseconds (default 2000) */
    int64_t ttl_seconds;   /* ttlSecondsAfterFinished (default 3600) */
} flcfg_kube;

typedef struct flcfg {
    char *path;         /* the file read; NULL when there was none */
    /* defaults for flowrun's options; NULL / 0 when the file does not set them */
    char *executor;     /* "inline" | "process" | "kubernetes" | "slurm" */
    int jobs;           /* -j */
    char *state;        /* --state (relative to the file's folder when relative) */
    int64_t max_map;    /* --max-map */
    char *progress;     /* --progress */
    flcfg_env *envs;    /* at least one; "prod" always among them */
    int nenvs;
    flcfg_secret *secrets;
    int nsecrets;
    flcfg_kube kube;    /* kubernetes: */
    /* the slurm: section (--executor slurm; docs/distributed.md); NULL / 0 unset */
    struct {
        char *partition, *account, *time_limit; /* sbatch -p, -A, -t */
        int64_t max_jobs;                       /* --slurm-max-jobs */
        char **sbatch_flags;                    /* NULL-terminated, or NULL */
        int64_t poll_interval_ms;               /* squeue at most this often */
    } slurm;
} flcfg;

/* Load the configuration: `given` is --config (or NULL). 0, or -1 with err set to
 * one line (FILE:LINE:COL: ... where there is a position). */
int flcfg_load(const char *given, flcfg *out, char *err, size_t errlen);
void flcfg_free(flcfg *c);

/* The environment called name, or NULL (then: "--env NAME: no such environment
 * in FILE (has: prod, test)", exit 2 — flcfg_env_problem writes that line). */
const flcfg_env *flcfg_env_get(const flcfg *c, const char *name);
int flcfg_env_problem(const flcfg *c, const char *name, char *err, size_t errlen);

/* The secret called name, or NULL. */
const flcfg_secret *flcfg_secret_get(const flcfg *c, const char *name);

/* A run in environment env keeps its state in state_dir (relative: to the working
 * directory): -1 with one line in err when that is inside ANOTHER environment's
 * root (a configuration error, exit 2), else 0. */
int flcfg_state_problem(const flcfg *c, const char *env, const char *state_dir, char *err,
                        size_t errlen);

/* The roots of every environment but env (those that have one), for isolate.c:
 * a NULL-terminated array of n pointers into c (free the array, not the strings),
 * or NULL when out of memory. */
const char **flcfg_other_roots(const flcfg *c, const flcfg_env *env, int *n);

#endif
