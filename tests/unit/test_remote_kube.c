/* test_remote_kube.c — the Kubernetes engine (remote_kube.c) against a STAND-IN for
 * kubectl (tests/kube/kubectl-standin: no API server runs here). It checks flowrun's
 * side: the version refusal, the Job manifest written and applied, one `get` per
 * poll read into element states from replayed Job status JSON
 * (tests/kube/replay-status.json, written in the batch/v1 JobStatus shape, not
 * recorded from a live server), a vanished Job, malformed answers, and the delete
 * on cancel. The manifests are checked against the Kubernetes OpenAPI models and
 * run under podman by tests/suites/66-kube.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote.h"

typedef struct fixture {
    char dir[64];       /* the stand-in's directory, and the manifests' */
    char kubectl[4096]; /* absolute path of the stand-in */
    rm_kube_options o;
} fixture;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    for (const char *s = text; s && *s;) {
        if (!strncmp(s, prefix, strlen(prefix))) n++;
        const char *nl = strchr(s, '\n');
        s = nl ? nl + 1 : NULL;
    }
    return n;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/flow-kube-unit-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    snprintf(f->kubectl, sizeof f->kubectl, "%s/tests/kube/kubectl-standin", cwd);
    setenv("KUBE_STANDIN_DIR", f->dir, 1);
    unsetenv("KUBE_STANDIN_VERSION");
    unsetenv("KUBE_STANDIN_PODMAN");
    unsetenv("KUBE_STANDIN_GET_FAIL");
    char replay[4096];
    snprintf(replay, sizeof replay, "%s/tests/kube/replay-status.json", cwd);
    setenv("KUBE_STANDIN_REPLAY", replay, 1);
    f->o = (rm_kube_options){.kubectl = f->kubectl,
                             .image = "localhost/flow-runtime:test",
                             .host_path = "/srv/flow-state",
                             .state_dir = "/srv/flow-state",
                             .manifest_dir = f->dir,
                             .run = 7,
                             .slots = 2};
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    /* KUBE_UNIT_KEEP=DIR: the manifests written are copied there (66-kube.sh
     * validates them against the Kubernetes OpenAPI models) */
    char cmd[4352];
    const char *keep = getenv("KUBE_UNIT_KEEP");
    if (keep && strlen(keep) < 4096)
        snprintf(cmd, sizeof cmd, "cp %s/flow-*.yaml '%s' 2>/dev/null; rm -rf %s", f->dir, keep,
                 f->dir);
    else
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) == -1) return -1;
    free(f);
    return 0;
}

static const char *calls(fixture *f) {
    char p[128];
    snprintf(p, sizeof p, "%s/calls.log", f->dir);
    return slurp(p);
}

static void kubectl_too_old_is_refused(void **state) {
    fixture *f = *state;
    setenv("KUBE_STANDIN_VERSION", "1.20", 1); /* Debian's kubernetes-client */
    char err[512] = "";
    rm_engine *e = rm_engine_kube(&f->o, err, sizeof err);
    assert_null(e);
    assert_non_null(strstr(err, "needs kubectl 1.29 or newer"));
    assert_non_null(strstr(err, "v1.20"));
    assert_null(strchr(err, '\n'));
    setenv("KUBE_STANDIN_VERSION", "1.29", 1);
    e = rm_engine_kube(&f->o, err, sizeof err);
    assert_non_null(e);
    e->ops->destroy(e);
}

static void missing_kubectl_is_refused(void **state) {
    fixture *f = *state;
    f->o.kubectl = "/nonexistent/kubectl";
    char err[512] = "";
    assert_null(rm_engine_kube(&f->o, err, sizeof err));
    assert_non_null(strstr(err, "cannot run /nonexistent/kubectl"));
}

static void options_are_checked(void **state) {
    fixture *f = *state;
    char err[512];
    rm_kube_options o = f->o;
    o.image = NULL;
    assert_null(rm_engine_kube(&o, err, sizeof err));
    assert_non_null(strstr(err, "needs an image"));
    o = f->o;
    o.pvc = "flow-state";
    assert_null(rm_engine_kube(&o, err, sizeof err));
    assert_non_null(strstr(err, "one of the two"));
    o = f->o;
    o.host_path = NULL;
    assert_null(rm_engine_kube(&o, err, sizeof err));
    assert_non_null(strstr(err, "one of the two"));
    o = f->o;
    o.host_path = "relative/dir";
    assert_null(rm_engine_kube(&o, err, sizeof err));
    assert_non_null(strstr(err, "must be absolute"));
    /* nothing was asked of kubectl for options refused before it */
    assert_null(calls(f));
}

typedef struct seen {
    char text[4096]; /* "id:element:state " for each report */
} seen;

static void on_report(void *ud, const char *id, int64_t element, enum rm_state st) {
    seen *s = ud;
    static const char *const names[] = {"P", "R", "E", "G"};
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s:%" PRId64 ":%s ", id, element, names[st]);
}

static rm_engine *engine_with_two_jobs(fixture *f) {
    char err[512] = "", id[64];
    rm_engine *e = rm_engine_kube(&f->o, err, sizeof err);
    assert_non_null(e);
    const char *argv[] = {"/opt/flow/bin/flowrun", "worker", "--state", "/srv/flow-state",
                          "--batch", "/srv/flow-state/remote/7/b0.batch", "/srv/p.plan", NULL};
    rm_start s = {.run = 7, .batch = 0, .nelem = 5, .slots = 3, .argv = argv,
                  .name = "flow-86e561c2-7-0", .memory = 1 << 30, .cpus = 2};
    assert_int_equal(e->ops->start(e, &s, id, sizeof id, err, sizeof err), 0);
    assert_string_equal(id, "flow-86e561c2-7-0");
    s.batch = 1;
    s.nelem = 3;
    s.memory = 0;
    s.cpus = 0;
    s.name = "flow-86e561c2-7-1";
    assert_int_equal(e->ops->start(e, &s, id, sizeof id, err, sizeof err), 0);
    assert_string_equal(id, "flow-86e561c2-7-1");
    return e;
}

static void start_writes_and_applies_the_job(void **state) {
    fixture *f = *state;
    f->o.flowrun = "/usr/bin/flowrun";
    rm_engine *e = engine_with_two_jobs(f);
    char path[128], want[256];
    snprintf(path, sizeof path, "%s/flow-86e561c2-7-0.yaml", f->dir);
    const char *m = slurp(path);
    assert_non_null(m);
    assert_non_null(strstr(m, "kind: \"Job\""));
    assert_non_null(strstr(m, "name: \"flow-86e561c2-7-0\""));
    assert_non_null(strstr(m, "flow-run: \"7\""));
    assert_non_null(strstr(m, "flow-state: \"86e561c2\"")); /* on the Job and its pods */
    assert_non_null(
        strstr(strstr(m, "flow-state: \"86e561c2\"") + 1, "flow-state: \"86e561c2\""));
    assert_non_null(strstr(m, "flow-batch: \"0\""));
    assert_non_null(strstr(m, "completions: 5\n"));
    assert_non_null(strstr(m, "parallelism: 2\n")); /* the engine's slots, not more */
    assert_non_null(strstr(m, "completionMode: \"Indexed\""));
    assert_non_null(strstr(m, "backoffLimitPerIndex: 0\n"));
    assert_non_null(strstr(m, "type: \"DisruptionTarget\""));
    assert_non_null(strstr(m, "restartPolicy: \"Never\""));
    assert_non_null(strstr(m, "- \"/usr/bin/flowrun\"\n")); /* the image's flowrun */
    assert_null(strstr(m, "/opt/flow/bin/flowrun"));
    snprintf(want, sizeof want, "runAsUser: %u\n", (unsigned)getuid());
    assert_non_null(strstr(m, want));
    assert_non_null(strstr(m, "readOnlyRootFilesystem: true"));
    /* 3 slots of 1 GiB and 2 cpus each */
    assert_non_null(strstr(m, "memory: \"3221225472\""));
    assert_non_null(strstr(m, "cpu: \"6\""));
    assert_non_null(strstr(m, "mountPath: \"/srv/flow-state\""));
    assert_non_null(strstr(m, "path: \"/srv/flow-state\""));
    snprintf(path, sizeof path, "%s/flow-86e561c2-7-1.yaml", f->dir);
    m = slurp(path);
    assert_non_null(m);
    assert_null(strstr(m, "resources:")); /* no memory:, no cpus: */
    const char *c = calls(f);
    snprintf(want, sizeof want, "apply -f %s/flow-86e561c2-7-0.yaml\n", f->dir);
    assert_non_null(strstr(c, want));
    assert_int_equal(count_lines(c, "apply"), 2);
    e->ops->destroy(e);
}

static void run_as_is_resolved_on_the_driver(void **state) {
    fixture *f = *state;
    char err[512] = "", id[64], path[128];
    rm_engine *e = rm_engine_kube(&f->o, err, sizeof err);
    assert_non_null(e);
    const char *argv[] = {"flowrun", "worker", NULL};
    rm_start s = {.run = 7, .batch = 4, .nelem = 1, .slots = 1, .argv = argv,
                  .run_as = "nobody"};
    assert_int_equal(e->ops->start(e, &s, id, sizeof id, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/flow-86e561c2-7-4.yaml", f->dir);
    const char *m = slurp(path);
    assert_non_null(strstr(m, "runAsUser: 65534\n"));
    s.run_as = "no-such-user-here";
    s.batch = 5;
    assert_int_equal(e->ops->start(e, &s, id, sizeof id, err, sizeof err), -1);
    assert_non_null(strstr(err, "'no-such-user-here' does not exist"));
    e->ops->destroy(e);
}

static void poll_reads_job_status(void **state) {
    fixture *f = *state;
    rm_engine *e = engine_with_two_jobs(f);
    char err[512] = "";
    seen s;
    /* 1: no status yet: pending */
    memset(&s, 0, sizeof s);
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "flow-86e561c2-7-0:-1:P flow-86e561c2-7-1:-1:G ");
    /* 2: indexes 0, 2, 3 completed and 1 failed: ended; the rest running; batch 1 pending */
    memset(&s, 0, sizeof s);
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "flow-86e561c2-7-0:0:E flow-86e561c2-7-0:1:E "
                                "flow-86e561c2-7-0:2:E flow-86e561c2-7-0:3:E "
                                "flow-86e561c2-7-0:-1:R flow-86e561c2-7-1:-1:P ");
    /* 3: Failed and Complete: every element ended */
    memset(&s, 0, sizeof s);
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "flow-86e561c2-7-0:0:E flow-86e561c2-7-0:1:E "
                                "flow-86e561c2-7-0:2:E flow-86e561c2-7-0:3:E "
                                "flow-86e561c2-7-0:4:E flow-86e561c2-7-0:-1:E "
                                "flow-86e561c2-7-1:0:E flow-86e561c2-7-1:1:E "
                                "flow-86e561c2-7-1:2:E flow-86e561c2-7-1:-1:E ");
    /* 4: the list is empty: both Jobs are gone */
    memset(&s, 0, sizeof s);
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "flow-86e561c2-7-0:-1:G flow-86e561c2-7-1:-1:G ");
    /* 5: an index beyond completions: an error, not a crash or a wrong state */
    memset(&s, 0, sizeof s);
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "malformed index list"));
    /* one get per poll, each for the whole run by its label */
    const char *c = calls(f);
    assert_int_equal(count_lines(c, "get jobs -l flow-state=86e561c2,flow-run=7 -o json"), 5);
    assert_int_equal(count_lines(c, "get"), 5);
    e->ops->destroy(e);
}

static void poll_failure_is_one_line(void **state) {
    fixture *f = *state;
    setenv("KUBE_STANDIN_GET_FAIL", "1", 1);
    rm_engine *e = engine_with_two_jobs(f);
    char err[512] = "";
    seen s = {{0}};
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "kubectl get exited 1: error: the server is currently unable"));
    assert_null(strchr(err, '\n'));
    assert_string_equal(s.text, "");
    /* the next poll works again */
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), 0);
    e->ops->destroy(e);
}

static void poll_refuses_what_is_not_json(void **state) {
    fixture *f = *state;
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/fake-kubectl", f->dir);
    FILE *k = fopen(path, "w");
    fputs("#!/bin/sh\ncase $1 in version) echo '{\"clientVersion\": {\"major\": \"1\", "
          "\"minor\": \"31\"}}';;\nget) echo 'items: [ {\"unclosed\": ';;\nesac\n",
          k);
    fclose(k);
    chmod(path, 0755);
    f->o.kubectl = path;
    rm_engine *e = rm_engine_kube(&f->o, err, sizeof err);
    assert_non_null(e);
    seen s = {{0}};
    assert_int_equal(e->ops->poll(e, on_report, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "kubectl's output is not JSON"));
    e->ops->destroy(e);
}

/* flowrun resume: Jobs an earlier driver applied are polled (and cancelled) by name */
static void adopted_jobs_are_watched(void **state) {
    fixture *f = *state;
    char err[512] = "";
    rm_engine *e = rm_engine_kube(&f->o, err, sizeof err);
    assert_non_null(e);
    assert_non_null(e->ops->adopt);
    rm_start s = {.run = 7, .batch = 0, .nelem = 5};
    assert_int_equal(e->ops->adopt(e, &s, "flow-86e561c2-7-0", err, sizeof err), 0);
    s.batch = 1;
    s.nelem = 3;
    assert_int_equal(e->ops->adopt(e, &s, "flow-86e561c2-7-1", err, sizeof err), 0);
    seen r;
    memset(&r, 0, sizeof r);
    assert_int_equal(e->ops->poll(e, on_report, &r, err, sizeof err), 0);
    assert_string_equal(r.text, "flow-86e561c2-7-0:-1:P flow-86e561c2-7-1:-1:G ");
    /* no apply: nothing was started again */
    assert_int_equal(count_lines(calls(f), "apply"), 0);
    e->ops->destroy(e);
}

static void cancel_deletes_by_label(void **state) {
    fixture *f = *state;
    f->o.ns = "flow";
    rm_engine *e = engine_with_two_jobs(f);
    e->ops->cancel(e);
    const char *c = calls(f);
    assert_non_null(
        strstr(c, "-n flow delete jobs -l flow-state=86e561c2,flow-run=7 --wait=false\n"));
    assert_non_null(strstr(c, "-n flow apply -f"));
    e->ops->destroy(e);
}

/* Two pipelines (two state directories) in one namespace, both at run 7: their Jobs
 * have names of their own, and one's poll and cancel leave the other's alone. The
 * tag (86e561c2 for /srv/flow-state on that node directory) must not change from one
 * flowrun to the next: a resume finds its Jobs by it. */
static void two_state_directories_share_a_namespace(void **state) {
    fixture *f = *state;
    unsetenv("KUBE_STANDIN_REPLAY"); /* the list is made from what was applied */
    char err[512] = "", id[64];
    rm_engine *a = rm_engine_kube(&f->o, err, sizeof err);
    rm_kube_options ob = f->o;
    ob.host_path = NULL;
    ob.pvc = "other-pvc"; /* the same path, on another volume: another state */
    rm_engine *b = rm_engine_kube(&ob, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    const char *argv[] = {"flowrun", "worker", NULL};
    rm_start s = {.run = 7, .batch = 0, .nelem = 1, .slots = 1, .argv = argv};
    assert_int_equal(a->ops->start(a, &s, id, sizeof id, err, sizeof err), 0);
    assert_string_equal(id, "flow-86e561c2-7-0");
    assert_int_equal(b->ops->start(b, &s, id, sizeof id, err, sizeof err), 0);
    assert_string_equal(id, "flow-0e33ad29-7-0");
    seen r;
    memset(&r, 0, sizeof r);
    assert_int_equal(a->ops->poll(a, on_report, &r, err, sizeof err), 0);
    assert_null(strstr(r.text, "0e33ad29")); /* b's Job is not in a's list */
    assert_non_null(strstr(r.text, "flow-86e561c2-7-0:"));
    b->ops->cancel(b);
    memset(&r, 0, sizeof r);
    assert_int_equal(a->ops->poll(a, on_report, &r, err, sizeof err), 0);
    assert_null(strstr(r.text, ":G")); /* a's Job is still there */
    memset(&r, 0, sizeof r);
    assert_int_equal(b->ops->poll(b, on_report, &r, err, sizeof err), 0);
    assert_string_equal(r.text, "flow-0e33ad29-7-0:-1:G "); /* b's is gone */
    a->ops->destroy(a);
    b->ops->destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kubectl_too_old_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_kubectl_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(options_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(start_writes_and_applies_the_job, setup, teardown),
        cmocka_unit_test_setup_teardown(run_as_is_resolved_on_the_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(poll_reads_job_status, setup, teardown),
        cmocka_unit_test_setup_teardown(poll_failure_is_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(poll_refuses_what_is_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(adopted_jobs_are_watched, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_deletes_by_label, setup, teardown),
        cmocka_unit_test_setup_teardown(two_state_directories_share_a_namespace, setup, teardown),
    };
    return cmocka_run_group_tests_name("remote_kube", tests, NULL, NULL);
}
