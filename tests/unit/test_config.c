/*
 * test_config.c — reading flow.yaml (runtime/app/config.c).
 *
 * DESIGN
 *   Each case writes a file into a temporary folder and calls flcfg_load on it,
 *   then compares what was read (good files) or the one-line error, which must
 *   name the file with the line and column of the key or value at fault. Which
 *   file is read (--config, then $FLOW_CONFIG, then ./flow.yaml) is tested by
 *   changing into the folder and setting the variable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka.h needs the three above first */
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

typedef struct fixture {
    char dir[64];       /* the temporary folder */
    char file[96];      /* DIR/c.yaml */
    char old[PATH_MAX]; /* the working directory before */
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/flow-config-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->file, sizeof fx->file, "%s/c.yaml", fx->dir);
    assert_non_null(getcwd(fx->old, sizeof fx->old));
    unsetenv("FLOW_CONFIG");
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    assert_int_equal(chdir(fx->old), 0);
    char p[128];
    unlink(fx->file);
    snprintf(p, sizeof p, "%s/flow.yaml", fx->dir);
    unlink(p);
    rmdir(fx->dir);
    unsetenv("FLOW_CONFIG");
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void load_ok(fixture *fx, const char *yaml, flcfg *c) {
    char err[512];
    write_file(fx->file, yaml);
    if (flcfg_load(fx->file, c, err, sizeof err) != 0) fail_msg("refused: %s", err);
}

/* The error without the leading "DIR/c.yaml". */
static void expect_error(fixture *fx, const char *yaml, const char *want) {
    char err[512];
    flcfg c;
    write_file(fx->file, yaml);
    if (flcfg_load(fx->file, &c, err, sizeof err) == 0) {
        flcfg_free(&c);
        fail_msg("accepted: %s", yaml);
    }
    size_t fl = strlen(fx->file);
    assert_string_equal(strncmp(err, fx->file, fl) ? err : err + fl, want);
}

static void test_every_key(void **state) {
    fixture *fx = *state;
    flcfg c;
    setenv("FLOW_CONFIG", "/nonexistent", 1); /* --config wins over it */
    load_ok(fx,
            "# a project\n"
            "executor: inline\n"
            "jobs: 3\n"
            "state: st/../state/\n"
            "max_map: 5000000000\n"
            "progress: plain\n"
            "envs:\n"
            "  test:\n"
            "    root: ./roots//test/.\n"
            "    owner: nobody\n"
            "    params: {out: /x, xs: [1, 2], r: {a: 1}}\n"
            "  prod:\n"
            "    root: /srv/p\n"
            "  dev:\n"
            "secrets:\n"
            "  s3_key: {file: keys/s3}\n"
            "  tok-en: {env: TOKEN}\n"
            "kubernetes:\n"
            "  kubectl: /opt/k/kubectl\n"
            "  namespace: flow\n"
            "  image: localhost/flow-runtime:1\n"
            "  host_path: st/../nodes\n"
            "  service_account: flow-runner\n"
            "  flowrun: /usr/bin/flowrun\n"
            "  slots: 16\n"
            "  poll_ms: 2500\n"
            "  ttl_seconds: 600\n",
            &c);
    char want[256];
    assert_string_equal(c.kube.kubectl, "/opt/k/kubectl");
    assert_string_equal(c.kube.ns, "flow");
    assert_string_equal(c.kube.image, "localhost/flow-runtime:1");
    snprintf(want, sizeof want, "%s/nodes", fx->dir);
    assert_string_equal(c.kube.host_path, want);
    assert_null(c.kube.pvc);
    assert_string_equal(c.kube.service_account, "flow-runner");
    assert_string_equal(c.kube.flowrun, "/usr/bin/flowrun");
    assert_int_equal(c.kube.slots, 16);
    assert_int_equal(c.kube.poll_ms, 2500);
    assert_int_equal(c.kube.ttl_seconds, 600);
    assert_string_equal(c.path, fx->file);
    assert_string_equal(c.executor, "inline");
    assert_int_equal(c.jobs, 3);
    snprintf(want, sizeof want, "%s/state", fx->dir);
    assert_string_equal(c.state, want);
    assert_true(c.max_map == 5000000000LL);
    assert_string_equal(c.progress, "plain");
    assert_int_equal(c.nenvs, 3);
    const flcfg_env *t = flcfg_env_get(&c, "test");
    assert_non_null(t);
    snprintf(want, sizeof want, "%s/roots/test", fx->dir);
    assert_string_equal(t->root, want);
    assert_string_equal(t->owner, "nobody");
    assert_int_equal(t->line, 8);
    assert_int_equal(t->col, 3);
    assert_int_equal(t->nparams, 3);
    assert_string_equal(t->params[0].name, "out");
    assert_string_equal(t->params[0].text, "/x");
    assert_int_equal(t->params[0].line, 11);
    assert_int_equal(t->params[0].col, 14);
    assert_null(t->params[1].text); /* a sequence: read by params_resolve_env */
    assert_null(t->params[2].text);
    assert_string_equal(flcfg_env_get(&c, "prod")->root, "/srv/p");
    assert_null(flcfg_env_get(&c, "dev")->root);
    assert_null(flcfg_env_get(&c, "nope"));
    assert_int_equal(c.nsecrets, 2);
    snprintf(want, sizeof want, "%s/keys/s3", fx->dir);
    assert_string_equal(flcfg_secret_get(&c, "s3_key")->file, want);
    assert_null(flcfg_secret_get(&c, "s3_key")->env_var);
    assert_string_equal(flcfg_secret_get(&c, "tok-en")->env_var, "TOKEN");
    assert_null(flcfg_secret_get(&c, "other"));
    char err[300];
    assert_int_equal(flcfg_env_problem(&c, "test", err, sizeof err), 0);
    assert_int_equal(flcfg_env_problem(&c, "qa", err, sizeof err), -1);
    snprintf(want, sizeof want, "--env qa: no such environment in %s (has: test, prod, dev)",
             fx->file);
    assert_string_equal(err, want);
    flcfg_free(&c);
}

static void test_no_file(void **state) {
    fixture *fx = *state;
    flcfg c;
    char err[300];
    assert_int_equal(chdir(fx->dir), 0);
    assert_int_equal(flcfg_load(NULL, &c, err, sizeof err), 0);
    assert_null(c.path);
    assert_int_equal(c.nenvs, 1);
    assert_string_equal(c.envs[0].name, "prod");
    assert_null(c.envs[0].root);
    assert_null(c.executor);
    assert_int_equal(c.jobs, 0);
    assert_int_equal(flcfg_env_problem(&c, "test", err, sizeof err), -1);
    assert_string_equal(err, "--env test: no such environment in the default configuration "
                             "(no flow.yaml) (has: prod)");
    flcfg_free(&c);
    /* an empty file: the same */
    load_ok(fx, "# nothing\n", &c);
    assert_int_equal(c.nenvs, 1);
    flcfg_free(&c);
    /* prod is added, first, when the file does not list it */
    load_ok(fx, "envs: {test: {root: /t}}\n", &c);
    assert_int_equal(c.nenvs, 2);
    assert_string_equal(c.envs[0].name, "prod");
    assert_null(c.envs[0].root);
    assert_string_equal(c.envs[1].root, "/t");
    flcfg_free(&c);
}

/* --config, then $FLOW_CONFIG, then ./flow.yaml */
static void test_which_file(void **state) {
    fixture *fx = *state;
    flcfg c;
    char err[300], fy[128];
    assert_int_equal(chdir(fx->dir), 0);
    snprintf(fy, sizeof fy, "%s/flow.yaml", fx->dir);
    write_file(fy, "jobs: 1\n");
    write_file(fx->file, "jobs: 2\n");
    assert_int_equal(flcfg_load(NULL, &c, err, sizeof err), 0);
    assert_string_equal(c.path, "flow.yaml");
    assert_int_equal(c.jobs, 1);
    flcfg_free(&c);
    setenv("FLOW_CONFIG", fx->file, 1);
    assert_int_equal(flcfg_load(NULL, &c, err, sizeof err), 0);
    assert_int_equal(c.jobs, 2);
    flcfg_free(&c);
    assert_int_equal(flcfg_load(fy, &c, err, sizeof err), 0);
    assert_int_equal(c.jobs, 1);
    flcfg_free(&c);
    setenv("FLOW_CONFIG", "nope.yaml", 1);
    assert_int_equal(flcfg_load(NULL, &c, err, sizeof err), -1);
    assert_string_equal(err, "FLOW_CONFIG nope.yaml: No such file or directory");
    assert_int_equal(flcfg_load("gone.yaml", &c, err, sizeof err), -1);
    assert_string_equal(err, "--config gone.yaml: No such file or directory");
    assert_int_equal(flcfg_load(".", &c, err, sizeof err), -1);
    assert_string_equal(err, "--config .: a directory, not a configuration file");
}

static void test_errors(void **state) {
    fixture *fx = *state;
    expect_error(fx, "jobs: 2\nsllurm: {partition: x}\n",
                 ":2:1: unknown key 'sllurm' (known: executor, jobs, state, max_map, progress, "
                 "envs, secrets, kubernetes, slurm)");
    expect_error(fx, "slurm:\n  partition: x\n  nodes: 3\n",
                 ":3:3: slurm: unknown key 'nodes' (known: partition, account, time_limit, "
                 "max_jobs, sbatch_flags, poll_interval)");
    expect_error(fx, "jobs: 2\njobs: 3\n", ":2:1: 'jobs' given twice (first on line 1)");
    expect_error(fx, "jobs: 0\n", ":1:7: 'jobs': expected an integer from 1 to 4096, got '0'");
    expect_error(fx, "jobs: [1]\n", ":1:7: 'jobs': expected an integer >= 1, got a sequence");
    expect_error(fx, "max_map: 1.5\n",
                 ":1:10: 'max_map': expected an integer from 1 to 9223372036854775807, got '1.5'");
    expect_error(fx, "executor: pbs\n",
                 ":1:11: 'executor': expected inline|process|kubernetes|slurm, got 'pbs'");
    expect_error(fx, "kubernetes:\n  image: x\n  nodes: 3\n",
                 ":3:3: kubernetes: unknown key 'nodes' (known: kubectl, namespace, image, pvc, "
                 "host_path, service_account, flowrun, slots, poll_ms, ttl_seconds)");
    expect_error(fx, "kubernetes:\n  pvc: s\n  host_path: /srv\n",
                 ":2:3: kubernetes: pvc and host_path are two places for the state directory: "
                 "give one");
    expect_error(fx, "kubernetes: {slots: 0}\n",
                 ":1:21: 'slots': expected an integer from 1 to 100000, got '0'");
    expect_error(fx, "kubernetes: [a]\n", ":1:13: 'kubernetes': expected a mapping, got a sequence");
    expect_error(fx, "progress:\n", ":1:10: 'progress': expected a string, got nothing");
    /* a folded scalar's newline is not echoed into the one-line message (found by fuzz_config) */
    expect_error(fx, "progress: plain\n\n  more\n",
                 ":1:11: 'progress': expected auto|plain|none, got 'plain?more'");
    expect_error(fx, "state: {a: 1}\n", ":1:8: 'state': expected a string, got a mapping");
    expect_error(fx, "- 1\n", ":1:1: 'the file': expected a mapping, got a sequence");
    expect_error(fx, "envs: [prod]\n",
                 ":1:7: 'envs': expected a mapping of environment names, got a sequence");
    expect_error(fx, "envs:\n  9x: {}\n",
                 ":2:3: environment name '9x': expected letters, digits, '_' and '-', starting "
                 "with a letter or '_'");
    expect_error(fx, "envs:\n  test:\n    root: /a\n    rot: /b\n",
                 ":4:5: unknown key 'rot' in environment 'test' (known: root, params, owner)");
    expect_error(fx, "envs:\n  test:\n    root: /a\n  test: {}\n",
                 ":4:3: 'test' given twice (first on line 2)");
    expect_error(fx, "envs:\n  test:\n    params: [a]\n",
                 ":3:13: 'params': expected a mapping of parameter names to values, got a "
                 "sequence");
    expect_error(fx, "envs:\n  test:\n    params: {a: 1, a: 2}\n",
                 ":3:20: 'a' given twice (first on line 3)");
    expect_error(fx, "envs:\n  test: {root: [x]}\n",
                 ":2:16: 'root': expected a string, got a sequence");
    expect_error(fx, "envs:\n  a: {root: /srv/x}\n  b: {root: /srv/x/y/}\n",
                 ":3:13: environment 'b' root /srv/x/y is inside environment 'a' root /srv/x");
    expect_error(fx, "envs:\n  a: {root: /srv/x}\n  b: {root: /srv/y/../x}\n",
                 ":3:13: environment 'b' root /srv/x is the same as environment 'a' root /srv/x");
    expect_error(fx, "secrets:\n  k: {file: a, env: B}\n",
                 ":2:3: secret 'k': give exactly one of 'file' and 'env'");
    expect_error(fx, "secrets:\n  k: {}\n",
                 ":2:3: secret 'k': give exactly one of 'file' and 'env'");
    expect_error(fx, "secrets:\n  k: {path: a}\n",
                 ":2:7: unknown key 'path' in secret 'k' (known: file, env)");
    expect_error(fx, "secrets:\n  k: {env: 'A B'}\n",
                 ":2:12: 'env': 'A B' is not an environment variable name");
    expect_error(fx, "secrets:\n  'a b': {env: X}\n",
                 ":2:3: secret name 'a b': expected letters, digits, '_' and '-', starting with "
                 "a letter or '_'");
    expect_error(fx, "envs:\n  test: {root: ''}\n",
                 ":2:16: 'root': expected a path, got an empty string");
    expect_error(fx, "jobs: [1\n", ":2:1: did not find expected ',' or ']'");
    expect_error(fx, "{[a]: 1}\n", ":1:2: 'the file': a key must be a plain word, not a sequence");
}

/* a mapping of more keys than CFG_MAX_KEYS is refused before its keys are compared */
static void test_too_many_keys(void **state) {
    fixture *fx = *state;
    size_t cap = 10001 * 16 + 16, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "envs:\n");
    for (int i = 0; i <= 10000; i++) n += (size_t)snprintf(text + n, cap - n, "  e%d:\n", i);
    expect_error(fx, text, ":2:3: 'envs': more than 10000 keys");
    free(text);
}

static void test_state_inside_root(void **state) {
    fixture *fx = *state;
    flcfg c;
    char err[400], want[400];
    load_ok(fx, "envs:\n  prod: {root: /srv/p}\n  test: {root: /srv/t}\n", &c);
    assert_int_equal(flcfg_state_problem(&c, "prod", "/srv/p/.flow", err, sizeof err), 0);
    assert_int_equal(flcfg_state_problem(&c, "prod", "/srv/pp", err, sizeof err), 0);
    assert_int_equal(flcfg_state_problem(&c, "test", "/srv/p/x/../.flow", err, sizeof err), -1);
    snprintf(want, sizeof want,
             "%s:2:16: the state directory /srv/p/.flow is inside environment 'prod' root "
             "/srv/p (a run in 'test' could not write its state)",
             fx->file);
    assert_string_equal(err, want);
    flcfg_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_which_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_inside_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
