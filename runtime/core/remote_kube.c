/*
 * remote_kube.c — the Kubernetes engine of the remote executor (remote.h):
 * each batch is one Indexed Job, applied and watched with kubectl.
 *
 * DESIGN
 *   TAG     rm_state_tag of the state directory's path and its volume (the
 *           PVC's name or the node's directory): run ids are numbered per state
 *           directory, so two pipelines sharing a namespace may both be at run 12;
 *           the tag keeps their Jobs' names, polls and cancels apart.
 *   start   writes MANIFEST_DIR/flow-TAG-RUN-N.yaml with libyaml's emitter — a
 *           batch/v1 Job named flow-TAG-RUN-N, labelled flow-state=TAG,
 *           flow-run=RUN and flow-batch=N, completions = the batch's elements,
 *           completionMode Indexed (Kubernetes sets JOB_COMPLETION_INDEX in each pod, which the
 *           worker reads as its element), backoffLimitPerIndex 0 (flow retries
 *           by itself: a failed index stays failed), a podFailurePolicy that
 *           ignores disruptions (an evicted or preempted pod is started again
 *           without counting as a failure) and fails the index on the worker's
 *           own exit codes, ttlSecondsAfterFinished; one container running the
 *           worker command, the state directory (a PVC or a hostPath) mounted at
 *           its own path, an emptyDir on /tmp, securityContext from run_as
 *           (numeric ids: getpwnam here, on the driver) with a read-only root
 *           filesystem and no privilege escalation, resources from the batch's
 *           memory:/cpus: times the element's slots — then `kubectl apply -f`.
 *   poll    ONE `kubectl get jobs -l flow-state=TAG,flow-run=RUN -o json` for the
 *           whole run. The output is read with libyaml (kubectl's JSON is
 *           YAML-compatible: it quotes every key and string, indents with spaces,
 *           and \uXXXX escapes are YAML's too). Per Job: status.completedIndexes and failedIndexes
 *           ("0-3,7") are ENDED one by one; the other elements are ENDED too when
 *           a Complete, Failed or FailureTarget condition is true (no pod will run
 *           again), RUNNING while status.active > 0, else PENDING. A Job this
 *           engine started that the list lacks is GONE (deleted, or aged out by
 *           its TTL): the driver reads what results exist and fails the rest after
 *           its grace period.
 *   cancel  `kubectl delete jobs -l flow-state=TAG,flow-run=RUN --wait=false` (the
 *           pods go with their Job; another state directory's run RUN is not
 *           touched).
 *   kubectl runs through rt_cmd_run (spawn.h), stdout read whole (at most
 *   KUBE_MAX_OUT) and the tail of stderr kept for the one-line error; a call that
 *   takes longer than KUBE_CALL_MS is killed and counts as failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "remote.h"
#include "spawn.h"


#define KUBE_MAX_OUT (256u << 20) /* most bytes of one kubectl's stdout */
#define KUBE_ERR_TAIL 400         /* bytes of stderr kept for the error line */
#define KUBE_CALL_MS 120000       /* one kubectl call: killed after this */
#define KUBE_MAX_ARGS 24          /* kubectl's own arguments */
#define KUBE_MAX_COMPLETIONS 100000 /* the API's limit for Indexed Jobs */
#define KUBE_START_COST 3.0       /* seconds to start a pod (an estimate: no cluster here) */

typedef struct kube_job {
    char name[64];  /* flow-TAG-RUN-N */
    uint32_t nelem; /* its completions */
} kube_job;

typedef struct kube_engine {
    rm_engine base;
    rm_kube_options o; /* its strings point into strs (copied) */
    char *strs;
    kube_job *jobs; /* the Jobs this engine started */
    size_t njobs, capjobs;
    char tag[9];    /* rm_state_tag of the state directory and its volume */
    char label[80]; /* the run's Jobs: flow-state=TAG,flow-run=RUN */
} kube_engine;

/* ---- running kubectl ---- */

/* Run kubectl with args (NULL-terminated, after the command and the namespace),
 * stdout into out (when not NULL). 0 on exit 0, else -1 with one line in err. */
static int kubectl(const kube_engine *k, const char *const *args, rt_obuf *out, char *err,
                   size_t errlen) {
    const char *argv[KUBE_MAX_ARGS + 4];
    int n = 0;
    argv[n++] = k->o.kubectl;
    if (k->o.ns) {
        argv[n++] = "-n";
        argv[n++] = k->o.ns;
    }
    for (int i = 0; args[i] && n < KUBE_MAX_ARGS + 2; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *what = args[0]; /* "apply", "get", "delete", "version" */
    rt_obuf etail = {.limit = KUBE_ERR_TAIL, .keep_tail = 1};
    rt_cmd c = {.timeout_ms = KUBE_CALL_MS, .out = out, .err = &etail};
    char line[KUBE_ERR_TAIL + 1];
    int rc = rt_cmd_run((char *const *)argv, &c, err, errlen);
    const char *l = rt_last_line(etail.d, line, sizeof line);
    rt_obuf_free(&etail);
    if (rc) return -1;
    if (c.timed_out) {
        snprintf(err, errlen, "kubectl %s took longer than %d s (killed)", what,
                 KUBE_CALL_MS / 1000);
        return -1;
    }
    if (out && (out->overflow || out->nomem)) {
        snprintf(err, errlen, "kubectl %s wrote more than %u MiB (or memory ran out)", what,
                 KUBE_MAX_OUT >> 20);
        return -1;
    }
    if (WIFSIGNALED(c.status)) {
        snprintf(err, errlen, "kubectl %s was killed by signal %d", what, WTERMSIG(c.status));
        return -1;
    }
    if (WEXITSTATUS(c.status)) {
        snprintf(err, errlen, "kubectl %s exited %d%s%s", what, WEXITSTATUS(c.status),
                 *l ? ": " : "", l);
        return -1;
    }
    return 0;
}

/* ---- reading kubectl's JSON (through libyaml) ---- */

static yaml_node_t *node_get(yaml_document_t *d, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(d, p->key);
        if (kn && kn->type == YAML_SCALAR_NODE && kn->data.scalar.length == strlen(key) &&
            !memcmp(kn->data.scalar.value, key, kn->data.scalar.length))
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* a scalar's text (NUL-terminated by libyaml), or NULL */
static const char *node_str(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int64_t node_int(yaml_node_t *n) {
    const char *s = node_str(n);
    if (!s) return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    return *end || end == s ? 0 : (int64_t)v;
}

/* Parse kubectl's JSON into doc. 0, or -1 with one line in err. */
static int parse_json(const char *text, size_t len, yaml_document_t *doc, char *err,
                      size_t errlen) {
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "out of memory reading kubectl's output");
        return -1;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&ps, doc);
    if (!ok) {
        snprintf(err, errlen, "kubectl's output is not JSON (line %zu: %s)",
                 ps.problem_mark.line + 1, ps.problem ? ps.problem : "unreadable");
        yaml_parser_delete(&ps);
        return -1;
    }
    yaml_parser_delete(&ps);
    if (!yaml_document_get_root_node(doc)) {
        yaml_document_delete(doc);
        snprintf(err, errlen, "kubectl printed nothing");
        return -1;
    }
    return 0;
}

/* Mark the elements an index list names ("0-3,7,9-10") in mark[0..n). -1 when the
 * list is malformed or names an element >= n. */
static int mark_indexes(const char *s, uint8_t *mark, uint32_t n) {
    if (!s || !*s) return 0;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long a = strtoul(s, &end, 10), b = a;
        if (end == s || errno) return -1;
        s = end;
        if (*s == '-') {
            b = strtoul(++s, &end, 10);
            if (end == s || errno || b < a) return -1;
            s = end;
        }
        if (b >= n) return -1;
        for (unsigned long i = a; i <= b; i++)
            mark[i] = 1;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return 0;
}

/* ---- writing a Job (libyaml's emitter) ---- */

typedef struct ywr {
    yaml_emitter_t em;
    int failed;
} ywr;

static void y_ev(ywr *w, yaml_event_t *ev, int ok) {
    if (!ok || !yaml_emitter_emit(&w->em, ev)) w->failed = 1;
}
static void y_map(ywr *w) {
    yaml_event_t ev;
    y_ev(w, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}
static void y_seq(ywr *w) {
    yaml_event_t ev;
    y_ev(w, &ev,
         yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}
static void y_end_map(ywr *w) {
    yaml_event_t ev;
    y_ev(w, &ev, yaml_mapping_end_event_initialize(&ev));
}
static void y_end_seq(ywr *w) {
    yaml_event_t ev;
    y_ev(w, &ev, yaml_sequence_end_event_initialize(&ev));
}
/* plain: a key, a number or a boolean; else a string, always quoted (so that "12"
 * or "true" stay strings) */
static void y_scalar(ywr *w, const char *s, int plain) {
    yaml_event_t ev;
    y_ev(w, &ev,
         yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain,
                                      !plain,
                                      plain ? YAML_PLAIN_SCALAR_STYLE
                                            : YAML_DOUBLE_QUOTED_SCALAR_STYLE));
}
static void y_key(ywr *w, const char *k) {
    y_scalar(w, k, 1);
}
static void y_kstr(ywr *w, const char *k, const char *v) {
    y_key(w, k);
    y_scalar(w, v, 0);
}
static void y_kint(ywr *w, const char *k, int64_t v) {
    char b[24];
    snprintf(b, sizeof b, "%" PRId64, v);
    y_key(w, k);
    y_scalar(w, b, 1);
}
static void y_kbool(ywr *w, const char *k, int v) {
    y_key(w, k);
    y_scalar(w, v ? "true" : "false", 1);
}

/* labels: {flow-state: TAG, flow-run: RUN, flow-batch: N}, on the Job and its pods */
static void y_labels(ywr *w, const char *tag, const char *run, const char *batch) {
    y_key(w, "labels");
    y_map(w);
    y_kstr(w, "flow-state", tag);
    y_kstr(w, "flow-run", run);
    y_kstr(w, "flow-batch", batch);
    y_end_map(w);
}

static int emit_job(kube_engine *k, const rm_start *s, const char *name, uid_t uid, gid_t gid,
                    FILE *f) {
    ywr w = {0};
    if (!yaml_emitter_initialize(&w.em)) return -1;
    yaml_emitter_set_output_file(&w.em, f);
    yaml_emitter_set_unicode(&w.em, 1);
    yaml_emitter_set_width(&w.em, -1);
    yaml_event_t ev;
    char run[24], batch[16], num[32];
    snprintf(run, sizeof run, "%" PRId64, k->o.run);
    snprintf(batch, sizeof batch, "%" PRIu32, s->batch);
    y_ev(&w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    y_ev(&w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    y_map(&w);
    y_kstr(&w, "apiVersion", "batch/v1");
    y_kstr(&w, "kind", "Job");
    y_key(&w, "metadata");
    y_map(&w);
    y_kstr(&w, "name", name);
    if (k->o.ns) y_kstr(&w, "namespace", k->o.ns);
    y_labels(&w, k->tag, run, batch);
    y_end_map(&w);

    y_key(&w, "spec");
    y_map(&w);
    uint32_t par = k->o.slots < s->nelem ? k->o.slots : s->nelem;
    y_kint(&w, "completions", s->nelem);
    y_kint(&w, "parallelism", par ? par : 1);
    y_kstr(&w, "completionMode", "Indexed");
    y_kint(&w, "backoffLimitPerIndex", 0);
    y_kint(&w, "ttlSecondsAfterFinished", k->o.ttl_seconds > 0 ? k->o.ttl_seconds : 3600);
    y_key(&w, "podFailurePolicy");
    y_map(&w);
    y_key(&w, "rules");
    y_seq(&w);
    /* an evicted or preempted pod: started again, not a failure of the index */
    y_map(&w);
    y_kstr(&w, "action", "Ignore");
    y_key(&w, "onPodConditions");
    y_seq(&w);
    y_map(&w);
    y_kstr(&w, "type", "DisruptionTarget");
    y_end_map(&w);
    y_end_seq(&w);
    y_end_map(&w);
    /* the worker's own failures (2 usage or plan, 1 writing results): the index fails
     * at once; flow retries the jobs that got no result */
    y_map(&w);
    y_kstr(&w, "action", "FailIndex");
    y_key(&w, "onExitCodes");
    y_map(&w);
    y_kstr(&w, "containerName", "worker");
    y_kstr(&w, "operator", "In");
    y_key(&w, "values");
    y_seq(&w);
    y_scalar(&w, "1", 1);
    y_scalar(&w, "2", 1);
    y_end_seq(&w);
    y_end_map(&w);
    y_end_map(&w);
    y_end_seq(&w);
    y_end_map(&w);

    y_key(&w, "template");
    y_map(&w);
    y_key(&w, "metadata");
    y_map(&w);
    y_labels(&w, k->tag, run, batch);
    y_end_map(&w);
    y_key(&w, "spec");
    y_map(&w);
    y_kstr(&w, "restartPolicy", "Never");
    if (k->o.service_account) y_kstr(&w, "serviceAccountName", k->o.service_account);
    else y_kbool(&w, "automountServiceAccountToken", 0);
    y_key(&w, "containers");
    y_seq(&w);
    y_map(&w);
    y_kstr(&w, "name", "worker");
    y_kstr(&w, "image", k->o.image);
    y_key(&w, "command");
    y_seq(&w);
    for (size_t i = 0; s->argv[i]; i++)
        y_scalar(&w, i == 0 && k->o.flowrun ? k->o.flowrun : s->argv[i], 0);
    y_end_seq(&w);
    /* the worker runs sh tasks in the pod itself, not through podman (cli_worker.c) */
    y_key(&w, "env");
    y_seq(&w);
    y_map(&w);
    y_kstr(&w, "name", "FLOW_IN_CONTAINER");
    y_kstr(&w, "value", "1");
    y_end_map(&w);
    y_end_seq(&w);
    y_key(&w, "securityContext");
    y_map(&w);
    y_kint(&w, "runAsUser", uid);
    y_kint(&w, "runAsGroup", gid);
    y_kbool(&w, "readOnlyRootFilesystem", 1);
    y_kbool(&w, "allowPrivilegeEscalation", 0);
    y_end_map(&w);
    if (s->memory > 0 || s->cpus > 0) {
        /* an element runs `slots` instances at once */
        uint32_t sl = s->slots ? s->slots : 1;
        y_key(&w, "resources");
        y_map(&w);
        for (int lim = 0; lim < 2; lim++) {
            y_key(&w, lim ? "limits" : "requests");
            y_map(&w);
            if (s->memory > 0) {
                int64_t m = s->memory > INT64_MAX / sl ? INT64_MAX : s->memory * sl;
                snprintf(num, sizeof num, "%" PRId64, m);
                y_kstr(&w, "memory", num);
            }
            if (s->cpus > 0) {
                snprintf(num, sizeof num, "%" PRIu64, (uint64_t)s->cpus * sl);
                y_kstr(&w, "cpu", num);
            }
            y_end_map(&w);
        }
        y_end_map(&w);
    }
    y_key(&w, "volumeMounts");
    y_seq(&w);
    y_map(&w);
    y_kstr(&w, "name", "flow-state");
    y_kstr(&w, "mountPath", k->o.state_dir);
    y_end_map(&w);
    y_map(&w);
    y_kstr(&w, "name", "tmp");
    y_kstr(&w, "mountPath", "/tmp");
    y_end_map(&w);
    y_end_seq(&w);
    y_end_map(&w);
    y_end_seq(&w); /* containers */
    y_key(&w, "volumes");
    y_seq(&w);
    y_map(&w);
    y_kstr(&w, "name", "flow-state");
    if (k->o.pvc) {
        y_key(&w, "persistentVolumeClaim");
        y_map(&w);
        y_kstr(&w, "claimName", k->o.pvc);
    } else {
        y_key(&w, "hostPath");
        y_map(&w);
        y_kstr(&w, "path", k->o.host_path);
        y_kstr(&w, "type", "Directory");
    }
    y_end_map(&w);
    y_end_map(&w);
    y_map(&w);
    y_kstr(&w, "name", "tmp");
    y_key(&w, "emptyDir");
    y_map(&w);
    y_end_map(&w);
    y_end_map(&w);
    y_end_seq(&w); /* volumes */
    y_end_map(&w); /* pod spec */
    y_end_map(&w); /* template */
    y_end_map(&w); /* spec */
    y_end_map(&w);
    y_ev(&w, &ev, yaml_document_end_event_initialize(&ev, 1));
    y_ev(&w, &ev, yaml_stream_end_event_initialize(&ev));
    int failed = w.failed || !yaml_emitter_flush(&w.em);
    yaml_emitter_delete(&w.em);
    return failed ? -1 : 0;
}

/* ---- the engine ---- */

/* room for one more Job in k->jobs; 0, or -1 with err */
static int reserve_job(kube_engine *k, char *err, size_t errlen) {
    if (k->njobs < k->capjobs) return 0;
    size_t cap = k->capjobs ? 2 * k->capjobs : 16;
    kube_job *q = realloc(k->jobs, cap * sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    k->jobs = q;
    k->capjobs = cap;
    return 0;
}

static int kube_start(rm_engine *e, const rm_start *s, char *id, size_t idcap, char *err,
                      size_t errlen) {
    kube_engine *k = (kube_engine *)e;
    if (s->nelem == 0 || s->nelem > KUBE_MAX_COMPLETIONS) {
        snprintf(err, errlen, "a Kubernetes Indexed Job has 1 to %d completions, not %" PRIu32,
                 KUBE_MAX_COMPLETIONS, s->nelem);
        return -1;
    }
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (s->run_as) {
        struct passwd *pw = getpwnam(s->run_as);
        if (!pw) {
            snprintf(err, errlen, "run_as user '%s' does not exist on this machine (its uid and "
                     "gid go into the pods' securityContext)", s->run_as);
            return -1;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    char name[64], path[4096], tmp[4160];
    snprintf(name, sizeof name, "flow-%s-%" PRId64 "-%" PRIu32, k->tag, k->o.run, s->batch);
    if (snprintf(path, sizeof path, "%s/%s.yaml", k->o.manifest_dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "manifest path too long");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (reserve_job(k, err, errlen)) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = emit_job(k, s, name, uid, gid, f);
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        snprintf(err, errlen, "cannot write the Job manifest %s", path);
        unlink(tmp);
        return -1;
    }
    const char *args[] = {"apply", "-f", path, NULL};
    if (kubectl(k, args, NULL, err, errlen)) return -1;
    kube_job *j = &k->jobs[k->njobs++];
    snprintf(j->name, sizeof j->name, "%s", name);
    j->nelem = s->nelem;
    snprintf(id, idcap, "%s", name);
    return 0;
}

/* The states of one Job of the list; 0, or -1 when its status is malformed. */
static int report_job(kube_engine *k, yaml_document_t *d, yaml_node_t *job,
                      void (*report)(void *, const char *, int64_t, enum rm_state), void *ud,
                      char *err, size_t errlen) {
    const char *name = node_str(node_get(d, node_get(d, job, "metadata"), "name"));
    yaml_node_t *spec = node_get(d, job, "spec");
    yaml_node_t *st = node_get(d, job, "status");
    if (!name) {
        snprintf(err, errlen, "kubectl get jobs: a Job without metadata.name");
        return -1;
    }
    int64_t n = node_int(node_get(d, spec, "completions"));
    if (n <= 0 || n > KUBE_MAX_COMPLETIONS) {
        snprintf(err, errlen, "kubectl get jobs: Job %.60s has no valid spec.completions", name);
        return -1;
    }
    uint8_t *ended = calloc((size_t)n, 1);
    if (!ended) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mark_indexes(node_str(node_get(d, st, "completedIndexes")), ended, (uint32_t)n) ||
        mark_indexes(node_str(node_get(d, st, "failedIndexes")), ended, (uint32_t)n)) {
        free(ended);
        snprintf(err, errlen, "kubectl get jobs: Job %.60s has a malformed index list", name);
        return -1;
    }
    int finished = 0;
    yaml_node_t *conds = node_get(d, st, "conditions");
    if (conds && conds->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = conds->data.sequence.items.start;
             it < conds->data.sequence.items.top; it++) {
            yaml_node_t *c = yaml_document_get_node(d, *it);
            const char *type = node_str(node_get(d, c, "type"));
            const char *status = node_str(node_get(d, c, "status"));
            if (type && status && !strcmp(status, "True") &&
                (!strcmp(type, "Complete") || !strcmp(type, "Failed") ||
                 !strcmp(type, "FailureTarget")))
                finished = 1;
        }
    for (int64_t i = 0; i < n; i++)
        if (ended[i]) report(ud, name, i, RM_ENDED);
    free(ended);
    enum rm_state rest = finished                                       ? RM_ENDED
                         : node_int(node_get(d, st, "active")) > 0 ? RM_RUNNING
                                                                        : RM_PENDING;
    report(ud, name, -1, rest);
    (void)k;
    return 0;
}

static int kube_poll(rm_engine *e,
                     void (*report)(void *ud, const char *id, int64_t element, enum rm_state st),
                     void *ud, char *err, size_t errlen) {
    kube_engine *k = (kube_engine *)e;
    rt_obuf out = {.limit = KUBE_MAX_OUT};
    const char *args[] = {"get", "jobs", "-l", k->label, "-o", "json", NULL};
    if (kubectl(k, args, &out, err, errlen)) {
        free(out.d);
        return -1;
    }
    yaml_document_t doc;
    if (parse_json(out.d ? out.d : "", out.len, &doc, err, errlen)) {
        free(out.d);
        return -1;
    }
    free(out.d);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *items = node_get(&doc, root, "items");
    if (!items || items->type != YAML_SEQUENCE_NODE) {
        yaml_document_delete(&doc);
        snprintf(err, errlen, "kubectl get jobs: no 'items' list in its output");
        return -1;
    }
    uint8_t *seen = calloc(k->njobs ? k->njobs : 1, 1);
    if (!seen) {
        yaml_document_delete(&doc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (yaml_node_item_t *it = items->data.sequence.items.start;
         it < items->data.sequence.items.top && !rc; it++) {
        yaml_node_t *job = yaml_document_get_node(&doc, *it);
        const char *name = node_str(node_get(&doc, node_get(&doc, job, "metadata"), "name"));
        for (size_t i = 0; name && i < k->njobs; i++)
            if (!strcmp(k->jobs[i].name, name)) seen[i] = 1;
        rc = report_job(k, &doc, job, report, ud, err, errlen);
    }
    for (size_t i = 0; !rc && i < k->njobs; i++)
        if (!seen[i]) report(ud, k->jobs[i].name, -1, RM_GONE);
    free(seen);
    yaml_document_delete(&doc);
    return rc;
}

/* flowrun resume: a Job an earlier driver of this run applied (found again by its
 * name, which poll reports it under; GONE if the cluster no longer has it) */
static int kube_adopt(rm_engine *e, const rm_start *s, const char *id, char *err,
                      size_t errlen) {
    kube_engine *k = (kube_engine *)e;
    if (strlen(id) >= sizeof k->jobs[0].name) {
        snprintf(err, errlen, "a recorded Kubernetes Job name that is too long: %.60s...", id);
        return -1;
    }
    if (reserve_job(k, err, errlen)) return -1;
    kube_job *j = &k->jobs[k->njobs++];
    snprintf(j->name, sizeof j->name, "%s", id);
    j->nelem = s->nelem;
    return 0;
}

static void kube_cancel(rm_engine *e) {
    kube_engine *k = (kube_engine *)e;
    char err[512];
    const char *args[] = {"delete", "jobs", "-l", k->label, "--wait=false", NULL};
    if (kubectl(k, args, NULL, err, sizeof err) && e->ctx)
        fl_log(e->ctx, FL_LOG_WARN, "cancelling the run's Kubernetes Jobs: %s", err);
}

static double kube_start_cost(rm_engine *e) {
    (void)e;
    return KUBE_START_COST;
}

static void kube_destroy(rm_engine *e) {
    kube_engine *k = (kube_engine *)e;
    free(k->jobs);
    free(k->strs);
    free(k);
}

static const rm_engine_ops kube_ops = {
    .name = "kubernetes",
    .start = kube_start,
    .poll = kube_poll,
    .cancel = kube_cancel,
    .start_cost = kube_start_cost,
    .max_array = KUBE_MAX_COMPLETIONS,
    .max_jobs = 0,
    .destroy = kube_destroy,
    .adopt = kube_adopt,
};

/* kubectl's client version "1.N" from `kubectl version --client -o json`: 0, or -1
 * with one line in err. */
static int check_version(kube_engine *k, char *err, size_t errlen) {
    rt_obuf out = {.limit = KUBE_MAX_OUT};
    const char *args[] = {"version", "--client", "-o", "json", NULL};
    char why[400];
    if (kubectl(k, args, &out, why, sizeof why)) {
        free(out.d);
        snprintf(err, errlen, "--executor kubernetes needs kubectl 1.%d or newer: %s",
                 RM_KUBE_MIN_MINOR, why);
        return -1;
    }
    yaml_document_t doc;
    if (parse_json(out.d ? out.d : "", out.len, &doc, why, sizeof why)) {
        free(out.d);
        snprintf(err, errlen, "--executor kubernetes: kubectl version: %s", why);
        return -1;
    }
    free(out.d);
    yaml_node_t *cv = node_get(&doc, yaml_document_get_root_node(&doc), "clientVersion");
    const char *major = node_str(node_get(&doc, cv, "major"));
    const char *minor = node_str(node_get(&doc, cv, "minor"));
    const char *git = node_str(node_get(&doc, cv, "gitVersion"));
    long ma = major ? strtol(major, NULL, 10) : 0, mi = minor ? strtol(minor, NULL, 10) : 0;
    int ok = ma > 1 || (ma == 1 && mi >= RM_KUBE_MIN_MINOR);
    if (!ok)
        snprintf(err, errlen,
                 "--executor kubernetes needs kubectl 1.%d or newer (Indexed Jobs with "
                 "backoffLimitPerIndex, and a cluster of 1.%d or newer); %s is %s",
                 RM_KUBE_MIN_MINOR, RM_KUBE_MIN_MINOR, k->o.kubectl,
                 git ? git : major && minor ? "older" : "of an unknown version");
    yaml_document_delete(&doc);
    return ok ? 0 : -1;
}

/* The options alone (no kubectl call): 0, or -1 with one line in err. */
static int check_options(const rm_kube_options *o, char *err, size_t errlen) {
    if (!o->image || !*o->image) {
        snprintf(err, errlen, "--executor kubernetes needs an image (kubernetes: image: in "
                              "flow.yaml, or --kube-image)");
        return -1;
    }
    if (!!o->pvc == !!o->host_path) {
        snprintf(err, errlen, "--executor kubernetes needs the state directory's volume: "
                              "kubernetes: pvc: NAME or host_path: DIR (one of the two)");
        return -1;
    }
    if (o->host_path && o->host_path[0] != '/') {
        snprintf(err, errlen, "kubernetes: host_path must be absolute, not '%s'", o->host_path);
        return -1;
    }
    if (!o->state_dir || o->state_dir[0] != '/' || !o->manifest_dir) {
        snprintf(err, errlen, "the Kubernetes engine needs an absolute state directory");
        return -1;
    }
    return 0;
}

static void engine_init(kube_engine *k, const rm_kube_options *o) {
    k->base.ops = &kube_ops;
    k->o = *o;
    if (!k->o.kubectl || !*k->o.kubectl) k->o.kubectl = "kubectl";
    if (!k->o.slots) k->o.slots = 1;
    k->base.slots = k->o.slots;
    char vol[PATH_MAX + 8]; /* "pvc:NAME" or "host:PATH": the two never name one volume */
    snprintf(vol, sizeof vol, "%s:%s", o->pvc ? "pvc" : "host",
             o->pvc ? o->pvc : o->host_path ? o->host_path : "");
    rm_state_tag(o->state_dir ? o->state_dir : "", vol, k->tag);
    snprintf(k->label, sizeof k->label, "flow-state=%s,flow-run=%" PRId64, k->tag, o->run);
}

int rm_kube_check(const rm_kube_options *o, char *err, size_t errlen) {
    if (check_options(o, err, errlen)) return -1;
    kube_engine k = {0};
    engine_init(&k, o);
    return check_version(&k, err, errlen);
}

rm_engine *rm_engine_kube(const rm_kube_options *o, char *err, size_t errlen) {
    if (check_options(o, err, errlen)) return NULL;
    kube_engine *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    engine_init(k, o);
    /* the strings, copied: the caller's may go once the engine is made */
    const char **f[] = {&k->o.kubectl, &k->o.ns, &k->o.image, &k->o.pvc, &k->o.host_path,
                        &k->o.service_account, &k->o.flowrun, &k->o.state_dir,
                        &k->o.manifest_dir};
    size_t nf = sizeof f / sizeof f[0], total = 0;
    for (size_t i = 0; i < nf; i++)
        if (*f[i]) total += strlen(*f[i]) + 1;
    char *p = k->strs = malloc(total ? total : 1);
    if (!p) {
        free(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nf; i++)
        if (*f[i]) {
            size_t n = strlen(*f[i]) + 1;
            memcpy(p, *f[i], n);
            *f[i] = p;
            p += n;
        }
    if (check_version(k, err, errlen)) {
        free(k->strs);
        free(k);
        return NULL;
    }
    return &k->base;
}
