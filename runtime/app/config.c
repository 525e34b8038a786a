/*
 * config.c — reading flow.yaml, the project configuration (config.h,
 * docs/configuration.md).
 *
 * DESIGN
 *   The file is loaded whole with libyaml (yaml_parser_load: the first document
 *   as a tree of nodes) and its top-level mapping is walked once against one
 *   table of keys (TOP_KEYS below), each with the function that reads its value.
 *   Every mapping of the file — the top level, `envs`, one environment, `params`,
 *   `secrets`, one secret — is walked by the same loop (walk_map), which refuses
 *   a key that is not a plain scalar and a key given twice (libyaml keeps both of
 *   two equal keys), and hands each pair to the caller's reader. The first
 *   problem is one line, "FILE:LINE:COL: what", LINE and COL from 1, naming the
 *   key at fault; nothing more is read after it.
 *
 *   Environment parameters are checked here only for their shape (a name, and a
 *   scalar, sequence or mapping); a scalar keeps its text, which a run reads as
 *   --param NAME=TEXT would. Their types are the flow's business: a run hands the
 *   file and the environment's name to params_resolve_env (runtime/core/params.c),
 *   which reads `envs: NAME: params:` with the same walk as a --params file.
 *
 *   Roots are made absolute (a relative root is taken from the file's folder)
 *   and normalised by text alone — no `.` or `..` component, no repeated or
 *   trailing slash — without asking the filesystem, since a root may not exist
 *   yet. Two roots equal, or one inside the other, are an error naming both.
 *   `prod` always exists: when the file does not list it, it is added first,
 *   with no root.
 *
 *   What the file holds is copied out of the YAML document into plain strings
 *   (malloc), so the document is deleted before flcfg_load returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"

#define CFG_MAX_KEYS 10000 /* keys in one mapping of the file */

/* The file being read and where its first error goes. */
typedef struct cfg_in {
    const char *file; /* as given, for messages */
    char *dir;        /* the file's folder, absolute and normalised (owned) */
    yaml_document_t doc;
    flcfg *c; /* what is being filled */
    char *err;
    size_t errlen;
} cfg_in;

/* One line in err: FILE:LINE:COL: message, at node n. What the file holds is
 * quoted in messages (a key, a value), so a control character in it — a folded
 * scalar's newline — is shown as '?': the line stays one line. */
static int cerr(cfg_in *in, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cerr(cfg_in *in, const yaml_node_t *n, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(in->err, in->errlen, "%s:%zu:%zu: %s", in->file, n->start_mark.line + 1,
             n->start_mark.column + 1, msg);
    for (char *c = in->err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return -1;
}

static int oom(cfg_in *in, const yaml_node_t *n) {
    return cerr(in, n, "out of memory");
}

static const char *kind_name(const yaml_node_t *n) {
    switch (n->type) {
        case YAML_SEQUENCE_NODE:
            return "a sequence";
        case YAML_MAPPING_NODE:
            return "a mapping";
        default:
            return "a scalar";
    }
}

/* A plain scalar that YAML reads as null: `key:`, `key: ~`, `key: null`. */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* A scalar's text, refusing a NUL byte inside (a C string would cut it there). */
static int scalar(cfg_in *in, const yaml_node_t *n, const char *key, const char **out) {
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return cerr(in, n, "'%s': expected a string, got %s", key,
                    n->type == YAML_SCALAR_NODE ? "nothing" : kind_name(n));
    if (memchr(n->data.scalar.value, 0, n->data.scalar.length))
        return cerr(in, n, "'%s': the string holds a NUL byte", key);
    *out = (const char *)n->data.scalar.value;
    return 0;
}

static int str_value(cfg_in *in, const yaml_node_t *n, const char *key, char **out) {
    const char *s;
    if (scalar(in, n, key, &s)) return -1;
    free(*out);
    if (!(*out = strdup(s))) return oom(in, n);
    return 0;
}

/* An integer from 1 to max, written in decimal. */
static int int_value(cfg_in *in, const yaml_node_t *n, const char *key, int64_t max, int64_t *out) {
    const char *s;
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return cerr(in, n, "'%s': expected an integer >= 1, got %s", key,
                    n->type == YAML_SCALAR_NODE ? "nothing" : kind_name(n));
    if (scalar(in, n, key, &s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > max) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s", s);
        return cerr(in, n, "'%s': expected an integer from 1 to %lld, got '%s'", key,
                    (long long)max, shown);
    }
    *out = v;
    return 0;
}

/* One of the words in `choices` (NULL-terminated). */
static int word_value(cfg_in *in, const yaml_node_t *n, const char *key, const char *const *choices,
                      char **out) {
    const char *s;
    if (scalar(in, n, key, &s)) return -1;
    for (const char *const *w = choices; *w; w++)
        if (!strcmp(s, *w)) return str_value(in, n, key, out);
    char list[100] = "";
    size_t len = 0;
    for (const char *const *w = choices; *w && len < sizeof list; w++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", w == choices ? "" : "|", *w);
    char shown[40];
    snprintf(shown, sizeof shown, "%s", s);
    return cerr(in, n, "'%s': expected %s, got '%s'", key, list, shown);
}

/* Env and secret names: [A-Za-z_][A-Za-z0-9_-]*. */
static int good_name(const char *s) {
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* path made absolute against base (an absolute, normalised folder) and normalised
 * by text: no empty, `.` or `..` component (`..` at / stays at /). malloc'd. */
static char *normalise(const char *base, const char *path) {
    size_t cap = strlen(base) + strlen(path) + 3;
    char *joined = malloc(cap), *out = malloc(cap);
    if (!joined || !out) {
        free(joined);
        free(out);
        return NULL;
    }
    snprintf(joined, cap, "%s/%s", path[0] == '/' ? "" : base, path);
    size_t n = 0; /* out[0 .. n): "/a/b" components so far, no trailing slash */
    for (char *p = joined; *p;) {
        while (*p == '/')
            p++;
        char *e = p;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0) n--; /* the slash before it */
        } else {
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p = e;
    }
    if (n == 0) out[n++] = '/';
    out[n] = 0;
    free(joined);
    return out;
}

/* a is b, or inside it (both normalised). */
static int inside(const char *a, const char *b) {
    size_t lb = strlen(b);
    if (!strcmp(b, "/")) return 1;
    return !strncmp(a, b, lb) && (a[lb] == 0 || a[lb] == '/');
}

/* A path, made absolute from the file's folder and normalised (an empty one is
 * refused rather than read as the folder itself). */
static int path_value(cfg_in *in, const yaml_node_t *n, const char *key, char **out) {
    const char *s;
    if (scalar(in, n, key, &s)) return -1;
    if (!*s) return cerr(in, n, "'%s': expected a path, got an empty string", key);
    free(*out);
    if (!(*out = normalise(in->dir, s))) return oom(in, n);
    return 0;
}

/* ---- walking mappings ---- */

typedef int (*pair_fn)(cfg_in *in, yaml_node_t *key, const char *name, yaml_node_t *value,
                       void *arg);

/* Each pair of mapping n (`what` names it in messages) to fn, once each name;
 * the key must be a scalar. */
static int walk_map(cfg_in *in, yaml_node_t *n, const char *what, pair_fn fn, void *arg) {
    if (n->type != YAML_MAPPING_NODE)
        return cerr(in, n, "'%s': expected a mapping, got %s", what, kind_name(n));
    /* each key is compared with those before it: bounded, so that cannot take long */
    if (n->data.mapping.pairs.top - n->data.mapping.pairs.start > CFG_MAX_KEYS)
        return cerr(in, n, "'%s': more than %d keys", what, CFG_MAX_KEYS);
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&in->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&in->doc, pr->value);
        if (!k || !v) return cerr(in, n, "'%s': a node of the file is missing", what);
        if (k->type != YAML_SCALAR_NODE)
            return cerr(in, k, "'%s': a key must be a plain word, not %s", what, kind_name(k));
        const char *name = (const char *)k->data.scalar.value;
        if (memchr(name, 0, k->data.scalar.length))
            return cerr(in, k, "'%s': a key holds a NUL byte", what);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr; q++) {
            yaml_node_t *k2 = yaml_document_get_node(&in->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp((const char *)k2->data.scalar.value, name))
                return cerr(in, k, "'%s' given twice (first on line %zu)", name,
                            k2->start_mark.line + 1);
        }
        if (fn(in, k, name, v, arg)) return -1;
    }
    return 0;
}

/* ---- envs ---- */

static int env_param(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    flcfg_env *e = arg;
    flcfg_param *P = &e->params[e->nparams];
    P->line = (int)k->start_mark.line + 1;
    P->col = (int)k->start_mark.column + 1;
    if (!(P->name = strdup(name))) return oom(in, k);
    e->nparams++; /* owned from here, released with e */
    if (v->type == YAML_SCALAR_NODE) {
        if (memchr(v->data.scalar.value, 0, v->data.scalar.length))
            return cerr(in, v, "parameter '%s': the string holds a NUL byte", name);
        if (!(P->text = strdup((const char *)v->data.scalar.value))) return oom(in, v);
    } else if (v->type != YAML_SEQUENCE_NODE && v->type != YAML_MAPPING_NODE) {
        return cerr(in, v, "parameter '%s': not a scalar, sequence or mapping", name);
    }
    return 0;
}

static int env_key(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    flcfg_env *e = arg;
    if (!strcmp(name, "root")) {
        if (path_value(in, v, "root", &e->root)) return -1;
        e->root_line = (int)v->start_mark.line + 1;
        e->root_col = (int)v->start_mark.column + 1;
        return 0;
    }
    if (!strcmp(name, "owner")) return str_value(in, v, "owner", &e->owner);
    if (!strcmp(name, "params")) {
        if (is_null(v)) return 0;
        if (v->type != YAML_MAPPING_NODE)
            return cerr(in, v, "'params': expected a mapping of parameter names to values, got %s",
                        kind_name(v));
        size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (!(e->params = calloc(n ? n : 1, sizeof *e->params))) return oom(in, v);
        return walk_map(in, v, "params", env_param, e);
    }
    return cerr(in, k, "unknown key '%s' in environment '%s' (known: root, params, owner)", name,
                e->name);
}

static int env_entry(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    (void)arg;
    flcfg *c = in->c;
    if (!good_name(name))
        return cerr(in, k,
                    "environment name '%.60s': expected letters, digits, '_' and '-', "
                    "starting with a letter or '_'",
                    name);
    flcfg_env *e = &c->envs[c->nenvs];
    e->line = (int)k->start_mark.line + 1;
    e->col = (int)k->start_mark.column + 1;
    if (!(e->name = strdup(name))) return oom(in, k);
    c->nenvs++;
    if (is_null(v)) return 0; /* `test:` — an environment with nothing set */
    return walk_map(in, v, name, env_key, e);
}

static int read_envs(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    flcfg *c = in->c;
    (void)k;
    if (is_null(v)) return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cerr(in, v, "'envs': expected a mapping of environment names, got %s", kind_name(v));
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    /* the file's environments replace the default prod (a name, nothing else);
     * one more slot for prod when the file does not list it (flcfg_load) */
    for (int i = 0; i < c->nenvs; i++) free(c->envs[i].name);
    free(c->envs);
    c->nenvs = 0;
    if (!(c->envs = calloc(n + 1, sizeof *c->envs))) return oom(in, v);
    return walk_map(in, v, "envs", env_entry, NULL);
}

/* ---- secrets ---- */

static int secret_key(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    flcfg_secret *s = arg;
    if (!strcmp(name, "file")) {
        return path_value(in, v, "file", &s->file);
    }
    if (!strcmp(name, "env")) {
        if (str_value(in, v, "env", &s->env_var)) return -1;
        if (!good_name(s->env_var) || strchr(s->env_var, '-'))
            return cerr(in, v, "'env': '%.60s' is not an environment variable name", s->env_var);
        return 0;
    }
    return cerr(in, k, "unknown key '%s' in secret '%s' (known: file, env)", name, s->name);
}

static int secret_entry(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    (void)arg;
    flcfg *c = in->c;
    if (!good_name(name))
        return cerr(in, k,
                    "secret name '%.60s': expected letters, digits, '_' and '-', "
                    "starting with a letter or '_'",
                    name);
    flcfg_secret *s = &c->secrets[c->nsecrets];
    if (!(s->name = strdup(name))) return oom(in, k);
    c->nsecrets++;
    if (walk_map(in, v, name, secret_key, s)) return -1;
    if (!s->file == !s->env_var)
        return cerr(in, k, "secret '%s': give exactly one of 'file' and 'env'", name);
    return 0;
}

static int read_secrets(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    if (is_null(v)) return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cerr(in, v, "'secrets': expected a mapping of secret names, got %s", kind_name(v));
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (!(in->c->secrets = calloc(n ? n : 1, sizeof *in->c->secrets))) return oom(in, v);
    return walk_map(in, v, "secrets", secret_entry, NULL);
}

/* ---- the top level ---- */

static int read_executor(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    static const char *const w[] = {"inline", "process", "kubernetes", "slurm", NULL};
    return word_value(in, v, "executor", w, &in->c->executor);
}

/* ---- kubernetes: ---- */

static int kube_key(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    (void)arg;
    flcfg_kube *K = &in->c->kube;
    if (!strcmp(name, "kubectl")) return str_value(in, v, "kubectl", &K->kubectl);
    if (!strcmp(name, "namespace")) return str_value(in, v, "namespace", &K->ns);
    if (!strcmp(name, "image")) return str_value(in, v, "image", &K->image);
    if (!strcmp(name, "pvc")) return str_value(in, v, "pvc", &K->pvc);
    if (!strcmp(name, "host_path")) return path_value(in, v, "host_path", &K->host_path);
    if (!strcmp(name, "service_account"))
        return str_value(in, v, "service_account", &K->service_account);
    if (!strcmp(name, "flowrun")) return str_value(in, v, "flowrun", &K->flowrun);
    if (!strcmp(name, "slots")) return int_value(in, v, "slots", 100000, &K->slots);
    if (!strcmp(name, "poll_ms")) return int_value(in, v, "poll_ms", 3600000, &K->poll_ms);
    if (!strcmp(name, "ttl_seconds"))
        return int_value(in, v, "ttl_seconds", INT32_MAX, &K->ttl_seconds);
    return cerr(in, k,
                "kubernetes: unknown key '%.60s' (known: kubectl, namespace, image, pvc, "
                "host_path, service_account, flowrun, slots, poll_ms, ttl_seconds)",
                name);
}

static int read_kube(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    if (is_null(v)) return 0;
    if (walk_map(in, v, "kubernetes", kube_key, NULL)) return -1;
    flcfg_kube *K = &in->c->kube;
    if (K->pvc && K->host_path)
        return cerr(in, v, "kubernetes: pvc and host_path are two places for the state "
                           "directory: give one");
    return 0;
}

static int read_progress(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    static const char *const w[] = {"auto", "plain", "none", NULL};
    return word_value(in, v, "progress", w, &in->c->progress);
}

static int read_jobs(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    int64_t j;
    if (int_value(in, v, "jobs", 4096, &j)) return -1;
    in->c->jobs = (int)j;
    return 0;
}

static int read_max_map(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    return int_value(in, v, "max_map", INT64_MAX, &in->c->max_map);
}

static int read_state(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    return path_value(in, v, "state", &in->c->state);
}

/* ---- slurm: (the slurm executor's settings) ---- */

static int slurm_key(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    (void)arg;
    flcfg *c = in->c;
    if (!strcmp(name, "partition")) return str_value(in, v, "partition", &c->slurm.partition);
    if (!strcmp(name, "account")) return str_value(in, v, "account", &c->slurm.account);
    if (!strcmp(name, "time_limit")) return str_value(in, v, "time_limit", &c->slurm.time_limit);
    if (!strcmp(name, "max_jobs")) return int_value(in, v, "max_jobs", INT32_MAX, &c->slurm.max_jobs);
    if (!strcmp(name, "poll_interval")) /* milliseconds */
        return int_value(in, v, "poll_interval", 3600000, &c->slurm.poll_interval_ms);
    if (!strcmp(name, "sbatch_flags")) {
        if (v->type != YAML_SEQUENCE_NODE)
            return cerr(in, v, "'sbatch_flags': expected a list of sbatch flags, got %s",
                        kind_name(v));
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n > 64) /* RUN_MAX_SLURM_FLAGS (cli_run.c), as for --slurm-flag */
            return cerr(in, v, "'sbatch_flags': more than 64 flags");
        if (!(c->slurm.sbatch_flags = calloc(n + 1, sizeof *c->slurm.sbatch_flags)))
            return oom(in, v);
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *it = yaml_document_get_node(&in->doc, v->data.sequence.items.start[i]);
            if (!it) return cerr(in, v, "'sbatch_flags': a node of the file is missing");
            if (str_value(in, it, "sbatch_flags", &c->slurm.sbatch_flags[i])) return -1;
            if (c->slurm.sbatch_flags[i][0] != '-')
                return cerr(in, it, "'sbatch_flags': expected an sbatch flag (starting with '-'), "
                                    "got '%.60s'", c->slurm.sbatch_flags[i]);
        }
        return 0;
    }
    return cerr(in, k,
                "slurm: unknown key '%.60s' (known: partition, account, time_limit, max_jobs, "
                "sbatch_flags, poll_interval)",
                name);
}

static int read_slurm(cfg_in *in, yaml_node_t *k, yaml_node_t *v) {
    (void)k;
    if (is_null(v)) return 0;
    return walk_map(in, v, "slurm", slurm_key, NULL);
}

/* X(key, reader) — the top-level keys, in the order docs/configuration.md gives them */
#define TOP_KEYS(X)                                                                                \
    X(executor, read_executor)                                                                     \
    X(jobs, read_jobs)                                                                             \
    X(state, read_state)                                                                           \
    X(max_map, read_max_map)                                                                       \
    X(progress, read_progress)                                                                     \
    X(envs, read_envs)                                                                             \
    X(secrets, read_secrets)                                                                       \
    X(kubernetes, read_kube)                                                                       \
    X(slurm, read_slurm)

static int top_key(cfg_in *in, yaml_node_t *k, const char *name, yaml_node_t *v, void *arg) {
    (void)arg;
#define X(key, fn)                                                                                 \
    if (!strcmp(name, #key)) return fn(in, k, v);
    TOP_KEYS(X)
#undef X
#define X(key, fn) ", " #key
    return cerr(in, k, "unknown key '%.60s' (known: %s)", name, &(TOP_KEYS(X))[2]);
#undef X
}

/* Which file: given, else $FLOW_CONFIG, else ./flow.yaml when it exists; NULL
 * for none. -1 when a named file does not exist. */
static int pick_file(const char *given, const char **out, char *err, size_t errlen) {
    const char *from = "--config";
    const char *f = given;
    if (!f || !*f) {
        f = getenv("FLOW_CONFIG");
        from = "FLOW_CONFIG";
    }
    if (f && *f) {
        struct stat sb;
        if (stat(f, &sb) != 0) {
            snprintf(err, errlen, "%s %s: %s", from, f, strerror(errno));
            return -1;
        }
        if (S_ISDIR(sb.st_mode)) {
            snprintf(err, errlen, "%s %s: a directory, not a configuration file", from, f);
            return -1;
        }
        *out = f;
        return 0;
    }
    *out = access("flow.yaml", F_OK) == 0 ? "flow.yaml" : NULL;
    return 0;
}

/* The folder of file, absolute and normalised (malloc'd). */
static char *file_dir(const char *file) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    char *d = strdup(file);
    if (!d) return NULL;
    char *slash = strrchr(d, '/');
    if (slash)
        slash[1] = 0;
    else
        d[0] = 0;
    char *base = normalise("/", cwd);
    char *r = base ? normalise(base, d) : NULL;
    free(base);
    free(d);
    return r;
}

static int parse_file(cfg_in *in) {
    FILE *f = fopen(in->file, "rb");
    if (!f) {
        snprintf(in->err, in->errlen, "%s: %s", in->file, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &in->doc);
    if (!ok) {
        if (parser.error == YAML_MEMORY_ERROR)
            snprintf(in->err, in->errlen, "%s: out of memory", in->file);
        else
            snprintf(in->err, in->errlen, "%s:%zu:%zu: %s", in->file, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return ok ? 0 : -1;
}

/* Roots pairwise apart: none equal to or inside another. */
static int roots_apart(const flcfg *c, char *err, size_t errlen) {
    for (int i = 0; i < c->nenvs; i++)
        for (int j = 0; j < c->nenvs; j++) {
            const flcfg_env *a = &c->envs[i], *b = &c->envs[j];
            if (i == j || !a->root || !b->root || !inside(a->root, b->root)) continue;
            if (!strcmp(a->root, b->root) && i < j) continue; /* said once, at the second */
            snprintf(err, errlen, "%s:%d:%d: environment '%s' root %s %s environment '%s' root %s",
                     c->path, a->root_line, a->root_col, a->name, a->root,
                     strcmp(a->root, b->root) ? "is inside" : "is the same as", b->name, b->root);
            return -1;
        }
    return 0;
}

/* Give c its one `prod`, with no root, as when there is no file. */
static int default_prod(flcfg *c) {
    if (!(c->envs = calloc(1, sizeof *c->envs))) return -1;
    if (!(c->envs[0].name = strdup("prod"))) return -1;
    c->nenvs = 1;
    return 0;
}

int flcfg_load(const char *given, flcfg *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *file;
    if (pick_file(given, &file, err, errlen)) return -1;
    if (default_prod(out)) {
        snprintf(err, errlen, "out of memory");
        flcfg_free(out);
        return -1;
    }
    if (!file) return 0;
    cfg_in in = {.file = file, .c = out, .err = err, .errlen = errlen};
    int rc = 0;
    if (!(out->path = strdup(file)) || !(in.dir = file_dir(file))) {
        snprintf(err, errlen, "%s: cannot find its folder: %s", file, strerror(errno));
        flcfg_free(out);
        free(in.dir);
        return -1;
    }
    if (parse_file(&in)) {
        free(in.dir);
        flcfg_free(out);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&in.doc);
    if (root && !is_null(root)) /* an empty file (or only comments) sets nothing */
        rc = walk_map(&in, root, "the file", top_key, NULL);
    if (rc == 0 && !flcfg_env_get(out, "prod")) {
        /* the file lists environments but not prod: prod comes first, with no root */
        memmove(&out->envs[1], &out->envs[0], (size_t)out->nenvs * sizeof *out->envs);
        memset(&out->envs[0], 0, sizeof out->envs[0]);
        if (!(out->envs[0].name = strdup("prod"))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        out->nenvs++;
    }
    if (rc == 0) rc = roots_apart(out, err, errlen);
    yaml_document_delete(&in.doc);
    free(in.dir);
    if (rc) flcfg_free(out);
    return rc;
}

void flcfg_free(flcfg *c) {
    free(c->kube.kubectl);
    free(c->kube.ns);
    free(c->kube.image);
    free(c->kube.pvc);
    free(c->kube.host_path);
    free(c->kube.service_account);
    free(c->kube.flowrun);
    for (int i = 0; i < c->nenvs; i++) {
        flcfg_env *e = &c->envs[i];
        for (int j = 0; j < e->nparams; j++) {
            free(e->params[j].name);
            free(e->params[j].text);
        }
        free(e->params);
        free(e->name);
        free(e->root);
        free(e->owner);
    }
    free(c->envs);
    for (int i = 0; i < c->nsecrets; i++) {
        free(c->secrets[i].name);
        free(c->secrets[i].file);
        free(c->secrets[i].env_var);
    }
    free(c->secrets);
    free(c->path);
    free(c->executor);
    free(c->state);
    free(c->progress);
    free(c->slurm.partition);
    free(c->slurm.account);
    free(c->slurm.time_limit);
    for (char **f = c->slurm.sbatch_flags; f && *f; f++) free(*f);
    free(c->slurm.sbatch_flags);
    memset(c, 0, sizeof *c);
}

const flcfg_env *flcfg_env_get(const flcfg *c, const char *name) {
    for (int i = 0; i < c->nenvs; i++)
        if (c->envs[i].name && !strcmp(c->envs[i].name, name)) return &c->envs[i];
    return NULL;
}

int flcfg_env_problem(const flcfg *c, const char *name, char *err, size_t errlen) {
    if (flcfg_env_get(c, name)) return 0;
    char has[300] = "";
    size_t n = 0;
    for (int i = 0; i < c->nenvs && n < sizeof has; i++)
        n += (size_t)snprintf(has + n, sizeof has - n, "%s%s", i ? ", " : "", c->envs[i].name);
    snprintf(err, errlen, "--env %.60s: no such environment in %s (has: %s)", name,
             c->path ? c->path : "the default configuration (no flow.yaml)", has);
    return -1;
}

const flcfg_secret *flcfg_secret_get(const flcfg *c, const char *name) {
    for (int i = 0; i < c->nsecrets; i++)
        if (!strcmp(c->secrets[i].name, name)) return &c->secrets[i];
    return NULL;
}

int flcfg_state_problem(const flcfg *c, const char *env, const char *state_dir, char *err,
                        size_t errlen) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    char *base = normalise("/", cwd);
    char *st = base ? normalise(base, state_dir) : NULL;
    free(base);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < c->nenvs; i++) {
        const flcfg_env *e = &c->envs[i];
        if (!e->root || !strcmp(e->name, env) || !inside(st, e->root)) continue;
        snprintf(err, errlen,
                 "%s:%d:%d: the state directory %s is inside environment '%s' root %s "
                 "(a run in '%s' could not write its state)",
                 c->path ? c->path : "?", e->root_line, e->root_col, st, e->name, e->root, env);
        free(st);
        return -1;
    }
    free(st);
    return 0;
}

const char **flcfg_other_roots(const flcfg *c, const flcfg_env *env, int *n) {
    const char **r = calloc((size_t)c->nenvs + 1, sizeof *r);
    *n = 0;
    for (int i = 0; r && i < c->nenvs; i++)
        if (&c->envs[i] != env && c->envs[i].root) r[(*n)++] = c->envs[i].root;
    return r;
}
