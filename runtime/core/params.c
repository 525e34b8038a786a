/*
 * params.c — a flow's parameters from defaults, --param k=v and --params FILE.yaml.
 *
 * Every parameter is checked against the flow's declared type before anything
 * runs; the first problem is reported as one line. A parameter given twice (two
 * --param, or a repeated key in the file), a YAML string holding a NUL byte and a
 * float that is not finite (nan, inf, 1e999) are errors that name the parameter.
 * Precedence: --param beats the YAML file, which beats the default; a value the
 * file gives but a --param replaces is not read at all.
 *
 * DESIGN
 *   A --param text is parsed by fv_parse. The YAML file is loaded once with
 *   libyaml (yaml_parser_load: the first document, as a tree of nodes) and each
 *   parameter's node is turned straight into a value of the declared type, by
 *   walking the node and the type together:
 *     - a scalar that is the whole value reads as the text of --param NAME=TEXT
 *       would (fv_parse: so `xs: "[1, 2]"` is a list, `n: " 5 "` is 5);
 *     - a scalar inside a sequence or mapping is one scalar of its type, its
 *       bytes as they stand (fv_parse_scalar): quoted or plain alike, so
 *       `[1, "2"]` is a [int] and `[x, 3, true]` a [str];
 *     - a sequence is a list, a mapping a record (every field once, no other);
 *       a sequence or mapping where a scalar type is declared is an error.
 *   YAML tags are ignored (the declared type decides) and so are documents after
 *   the first. Anchors and aliases are accepted: an alias reads as a copy of
 *   its anchor's node. So that a few lines of aliases cannot ask for a huge
 *   value, at most PARAMS_MAX_NODES nodes are read per file, an alias's copy
 *   counted each time, and nesting stops at PARAMS_MAX_YAML_DEPTH.
 *   An error in the file names it with the line and column (from 1) of the node
 *   at fault: FILE:LINE:COL: parameter 'n' (int): expected an int, got 'x'.
 *   Values are built on the plan's context; out of memory is reported as one
 *   line like any other error, with everything built so far released.
 *
 * ENVIRONMENT PARAMETERS
 *   flow.yaml's `envs: NAME: params:` mapping (docs/configuration.md) is one more
 *   layer, read by the same walk as the --params file, between it and the
 *   defaults: --param > --params FILE > the environment's params > the default.
 *   load_yaml finds the mapping by its path of keys (envs, NAME, params); an
 *   environment parameter the flow does not have is an error naming the file,
 *   line and column. The configuration's own shape was checked when it was read
 *   (runtime/app/config.c).
 *
 * A `dir` parameter (or a list of them) must name an existing directory, checked
 * here with the rest, so a typo is one line and exit 2 rather than a task failing
 * midway. `path` parameters are not checked: a path may name an output a task
 * will create. A resumed run's parameters are taken from its record as they are.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "scheduler.h"

#define PARAMS_MAX_YAML_DEPTH 32
#define PARAMS_MAX_NODES (1u << 22) /* YAML nodes read from one file, aliases' copies counted */

/* The YAML file being read and where its first error goes. */
typedef struct yaml_in {
    const fl_plan *p;
    const char *file;
    yaml_document_t doc;
    char *err;
    size_t errlen;
    const plan_param *P; /* the parameter being read */
    size_t key_line;     /* the line (from 0) of its key */
    uint32_t nodes;      /* nodes read so far */
} yaml_in;

/* One line in err: FILE:LINE:COL: parameter 'NAME' (TYPE): message, at node n. */
static int yerr(yaml_in *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yerr(yaml_in *y, const yaml_node_t *n, const char *fmt, ...) {
    char msg[300], tname[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    plan_type_text(y->p, y->P->type, tname, sizeof tname);
    snprintf(y->err, y->errlen, "%s:%zu:%zu: parameter '%s' (%s): %s", y->file,
             n->start_mark.line + 1, n->start_mark.column + 1, plan_str(y->p, y->P->name), tname,
             msg);
    return -1;
}

/* A scalar node's bytes; -1 (err set, naming the parameter's line as ever) when
 * they hold a NUL, which a C string would silently cut there. */
static int scalar_text(yaml_in *y, const yaml_node_t *n, const char **s, size_t *len) {
    *s = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    if (!memchr(*s, 0, *len)) return 0;
    snprintf(y->err, y->errlen, "%s:%zu: parameter '%s': a string holds a NUL byte", y->file,
             y->key_line + 1, plan_str(y->p, y->P->name));
    return -1;
}

static int too_many(yaml_in *y, const yaml_node_t *n) {
    return yerr(y, n, "the file holds more than %u values (an alias counts once per use)",
                PARAMS_MAX_NODES);
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_SEQUENCE_NODE ? "sequence" : "mapping";
}

static int from_node(yaml_in *y, uint32_t type, yaml_node_t *n, int depth, fl_val *out);

/* A sequence node as a list of type `type` (a PT_LIST). */
static int from_sequence(yaml_in *y, uint32_t type, yaml_node_t *n, int depth, fl_val *out) {
    const fl_plan *p = y->p;
    uint32_t elem = p->types[type].elem;
    yaml_node_item_t *first = n->data.sequence.items.start;
    int64_t len = n->data.sequence.items.top - first;
    if ((uint64_t)len > PARAMS_MAX_NODES - y->nodes) return too_many(y, n); /* before allocating */
    fl_val l = fv_list_new(p, type, len);
    if (!l.o) return yerr(y, n, "out of memory");
    for (int64_t k = 0; k < len; k++)
        if (from_node(y, elem, yaml_document_get_node(&y->doc, first[k]), depth + 1,
                      &fv_as_list(l)->items[k])) {
            fv_decref(p, type, l); /* items not yet read are zero: nothing to release */
            return -1;
        }
    *out = l;
    return 0;
}

/* A mapping node as a record of type `type` (a PT_RECORD): each field once. */
static int from_mapping(yaml_in *y, uint32_t type, yaml_node_t *n, int depth, fl_val *out) {
    const fl_plan *p = y->p;
    const plan_type *t = &p->types[type];
    fl_val r = fv_rec_new(p, type);
    bool *seen = fl_calloc(p->ctx, t->n + 1, 1);
    int rc = 0;
    if (!r.o || !seen) rc = yerr(y, n, "out of memory");
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         rc == 0 && pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
        const char *name;
        size_t len;
        if (!k || k->type != YAML_SCALAR_NODE) {
            rc = k ? yerr(y, k, "a field name must be a plain word, not a YAML %s", node_kind(k))
                   : yerr(y, n, "a field has no name");
            break;
        }
        if ((rc = scalar_text(y, k, &name, &len))) break;
        uint32_t f = 0;
        while (f < t->n && !(strlen(plan_str(p, p->fields[t->first + f].name)) == len &&
                             !memcmp(plan_str(p, p->fields[t->first + f].name), name, len)))
            f++;
        if (f == t->n || seen[f]) {
            char shown[48];
            rc = yerr(y, k, f == t->n ? "no field '%s' in this record" : "field '%s' given twice",
                      fv_snippet(name, name + len, shown, sizeof shown));
            break;
        }
        rc = from_node(y, p->fields[t->first + f].type, yaml_document_get_node(&y->doc, pr->value),
                       depth + 1, &fv_as_rec(r)->fields[f]);
        seen[f] = true;
    }
    for (uint32_t f = 0; rc == 0 && f < t->n; f++)
        if (!seen[f])
            rc = yerr(y, n, "missing field '%s'", plan_str(p, p->fields[t->first + f].name));
    fl_free(p->ctx, seen);
    if (rc) {
        fv_decref(p, type, r); /* fields not yet read are zero: nothing to release */
        return -1;
    }
    *out = r;
    return 0;
}

/* Node n (NULL: a dangling reference, which libyaml does not make) as a value
 * of type `type`. depth 0: n is the parameter's whole value. */
static int from_node(yaml_in *y, uint32_t type, yaml_node_t *n, int depth, fl_val *out) {
    const fl_plan *p = y->p;
    uint32_t kind = p->types[type].kind;
    if (!n) return yerr(y, yaml_document_get_root_node(&y->doc), "a node of the file is missing");
    if (y->nodes >= PARAMS_MAX_NODES) return too_many(y, n);
    y->nodes++;
    if (depth > PARAMS_MAX_YAML_DEPTH) return yerr(y, n, "value nested too deeply");
    char why[300];
    switch (n->type) {
        case YAML_SCALAR_NODE: {
            const char *s;
            size_t len;
            if (scalar_text(y, n, &s, &len)) return -1;
            int r = depth == 0 ? fv_parse(p, type, s, out, why, sizeof why) /* as --param */
                               : fv_parse_scalar(p, type, s, len, out, why, sizeof why);
            return r ? yerr(y, n, "%s", why) : 0;
        }
        case YAML_SEQUENCE_NODE:
            if (kind == PT_LIST) return from_sequence(y, type, n, depth, out);
            break;
        case YAML_MAPPING_NODE:
            if (kind == PT_RECORD) return from_mapping(y, type, n, depth, out);
            break;
        default:
            return yerr(y, n, "not a scalar, sequence or mapping");
    }
    /* a sequence or mapping where the type wants something else */
    if (kind == PT_LIST) return yerr(y, n, "expected '[' for a list");
    if (kind == PT_RECORD) return yerr(y, n, "expected '{' for a record");
    char tname[200];
    plan_type_text(p, type, tname, sizeof tname);
    return yerr(y, n, "expected a value of type %s, got a YAML %s", tname, node_kind(n));
}

static void list_names(const fl_plan *p, const plan_graph *G, char *buf, size_t len) {
    buf[0] = 0;
    size_t n = 0;
    for (uint32_t i = 0; i < G->nparams && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
                              plan_str(p, p->params[G->first_param + i].name));
}

static int find_param(const fl_plan *p, const plan_graph *G, const char *name, size_t len) {
    for (uint32_t i = 0; i < G->nparams; i++) {
        const char *pn = plan_str(p, p->params[G->first_param + i].name);
        if (strlen(pn) == len && !strncmp(pn, name, len)) return (int)i;
    }
    return -1;
}

/* where: "" or "FILE:LINE:COL: " */
static int unknown(const fl_plan *p, const plan_graph *G, const char *where, const char *name,
                   size_t len, char *err, size_t errlen) {
    char names[400];
    list_names(p, G, names, sizeof names);
    if (G->nparams)
        snprintf(err, errlen, "%sunknown parameter '%.*s' for flow %s (its parameters: %s)", where,
                 (int)len, name, plan_str(p, G->name), names);
    else
        snprintf(err, errlen, "%sunknown parameter '%.*s': flow %s takes no parameters", where,
                 (int)len, name, plan_str(p, G->name));
    return -1;
}

/* The value under key in mapping n, or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *n, const char *key) {
    if (!n || n->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, pr->value);
    }
    return NULL;
}

/* Load y->file into y->doc and check the mapping of parameters in it — the
 * top level, or with `path` (NULL-terminated keys) the mapping found by
 * following them from the top, none when one is missing — : known, distinct
 * parameter names. given[i]: the file's key and value of parameter i, or NULL.
 * `what` ("" or "environment 'test': ") begins an unknown parameter's message.
 * 0, or -1 with err set; once loaded (*loaded = 1) the document is to be
 * deleted either way. */
static int load_yaml(yaml_in *y, const plan_graph *G, const char *const *path, const char *what,
                     const yaml_node_pair_t **given, int *loaded) {
    const fl_plan *p = y->p;
    FILE *f = fopen(y->file, "rb");
    if (!f) {
        snprintf(y->err, y->errlen, "cannot read parameters file '%s'", y->file);
        return -1;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &y->doc)) {
        if (parser.error == YAML_MEMORY_ERROR)
            snprintf(y->err, y->errlen, "%s: out of memory", y->file);
        else
            snprintf(y->err, y->errlen, "%s:%zu:%zu: %s", y->file, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    *loaded = 1;
    yaml_node_t *root = yaml_document_get_root_node(&y->doc);
    for (; root && path && *path; path++) root = map_get(&y->doc, root, *path);
    if (!root) return 0; /* an empty file (or only comments): no parameters */
    if (path && root->type == YAML_SCALAR_NODE) return 0; /* `params:` with nothing */
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(y->err, y->errlen, "%s:%zu:%zu: expected a mapping of parameter names to values",
                 y->file, root->start_mark.line + 1, root->start_mark.column + 1);
        return -1;
    }
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            const yaml_node_t *at = k ? k : root;
            snprintf(y->err, y->errlen, "%s:%zu:%zu: a parameter name must be a plain word",
                     y->file, at->start_mark.line + 1, at->start_mark.column + 1);
            return -1;
        }
        const char *name = (const char *)k->data.scalar.value;
        int i = find_param(p, G, name, k->data.scalar.length);
        if (i < 0) {
            char where[300];
            snprintf(where, sizeof where, "%s:%zu:%zu: %s", y->file, k->start_mark.line + 1,
                     k->start_mark.column + 1, what);
            return unknown(p, G, where, name, strlen(name), y->err, y->errlen);
        }
        /* libyaml keeps both of two equal keys; YAML 1.2 says keys are unique */
        if (given[i]) {
            snprintf(y->err, y->errlen, "%s:%zu: parameter '%s' given twice (first on line %zu)",
                     y->file, k->start_mark.line + 1, name,
                     yaml_document_get_node(&y->doc, given[i]->key)->start_mark.line + 1);
            return -1;
        }
        given[i] = pr;
    }
    return 0;
}

/* Parameter P's value from its (key, value) pair in layer y's document. */
static int from_pair(yaml_in *y, const plan_param *P, const yaml_node_pair_t *pr, fl_val *out) {
    y->P = P;
    y->key_line = yaml_document_get_node(&y->doc, pr->key)->start_mark.line;
    return from_node(y, P->type, yaml_document_get_node(&y->doc, pr->value), 0, out);
}

/* Every dir in v (a dir, or a list of them) is an existing directory; else one
 * line in err naming what is missing. */
static int dirs_exist(const fl_plan *p, uint32_t type, fl_val v, char *err, size_t errlen,
                      int depth) {
    const plan_type *T = &p->types[type];
    if (T->kind == PT_LIST && depth < PARAMS_MAX_YAML_DEPTH) {
        const fv_list *l = (const fv_list *)v.o;
        for (int64_t k = 0; k < l->len; k++)
            if (dirs_exist(p, T->elem, l->items[k], err, errlen, depth + 1)) return -1;
        return 0;
    }
    if (T->kind != PT_DIR) return 0;
    const char *path = fv_as_str(v)->data;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", path,
                 errno == ENOENT ? "no such directory" : strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", path);
        return -1;
    }
    return 0;
}

int params_resolve(const fl_plan *p, uint32_t graph, char *const *kv, int nkv,
                   const char *yaml_file, fl_val *out, char *err, size_t errlen) {
    return params_resolve_env(p, graph, kv, nkv, yaml_file, NULL, NULL, out, err, errlen);
}

int params_resolve_env(const fl_plan *p, uint32_t graph, char *const *kv, int nkv,
                       const char *yaml_file, const char *env_file, const char *env, fl_val *out,
                       char *err, size_t errlen) {
    const plan_graph *G = &p->graphs[graph];
    size_t np = G->nparams ? G->nparams : 1;
    /* per parameter: the --param text (borrowed from kv), the file's node or the
     * environment's */
    const char **texts = fl_calloc(p->ctx, np, sizeof *texts);
    const yaml_node_pair_t **given = fl_calloc(p->ctx, np, sizeof *given);
    const yaml_node_pair_t **egiven = fl_calloc(p->ctx, np, sizeof *egiven);
    yaml_in y = {.p = p, .file = yaml_file, .err = err, .errlen = errlen};
    yaml_in ye = {.p = p, .file = env_file, .err = err, .errlen = errlen};
    int rc = 0, loaded = 0, eloaded = 0;
    uint32_t nbuilt = 0;
    if (!texts || !given || !egiven) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0 && yaml_file) rc = load_yaml(&y, G, NULL, "", given, &loaded);
    if (rc == 0 && env_file && env) {
        const char *const path[] = {"envs", env, "params", NULL};
        char what[120];
        snprintf(what, sizeof what, "environment '%.60s': ", env);
        rc = load_yaml(&ye, G, path, what, egiven, &eloaded);
    }
    /* --param beats the file, but one --param must not silently replace another */
    for (int j = 0; j < nkv && rc == 0; j++) {
        const char *eq = strchr(kv[j], '=');
        size_t n = eq ? (size_t)(eq - kv[j]) : strlen(kv[j]);
        for (int k = 0; k < j && rc == 0; k++)
            if (!strncmp(kv[k], kv[j], n) && kv[k][n] == '=' && eq) {
                snprintf(err, errlen, "parameter '%.*s' given twice (--param %s and --param %s)",
                         (int)n, kv[j], kv[k], kv[j]);
                rc = -1;
            }
    }
    for (int j = 0; j < nkv && rc == 0; j++) {
        const char *eq = strchr(kv[j], '=');
        if (!eq || eq == kv[j]) {
            snprintf(err, errlen, "--param expects NAME=VALUE, got '%s'", kv[j]);
            rc = -1;
            break;
        }
        int i = find_param(p, G, kv[j], (size_t)(eq - kv[j]));
        if (i < 0) {
            rc = unknown(p, G, "", kv[j], (size_t)(eq - kv[j]), err, errlen);
            break;
        }
        texts[i] = eq + 1;
    }
    for (uint32_t i = 0; i < G->nparams && rc == 0; i++) {
        const plan_param *P = &p->params[G->first_param + i];
        char tname[200];
        plan_type_text(p, P->type, tname, sizeof tname);
        if (texts[i]) {
            char perr[300];
            if (fv_parse(p, P->type, texts[i], &out[i], perr, sizeof perr) != 0) {
                snprintf(err, errlen, "parameter '%s' (%s): %s", plan_str(p, P->name), tname, perr);
                rc = -1;
            } else {
                nbuilt++;
            }
        } else if (given[i] || egiven[i]) { /* the --params file, else the environment */
            if (given[i] ? from_pair(&y, P, given[i], &out[i])
                         : from_pair(&ye, P, egiven[i], &out[i]))
                rc = -1;
            else
                nbuilt++;
        } else if (P->def != PLAN_NONE) {
            out[i] = fv_from_const(p, P->def);
            if (fv_is_heap(p, P->type) && !out[i].o) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            } else {
                nbuilt++;
            }
        } else {
            snprintf(err, errlen, "missing parameter '%s' (%s) for flow %s: give --param %s=VALUE",
                     plan_str(p, P->name), tname, plan_str(p, G->name), plan_str(p, P->name));
            rc = -1;
        }
    }
    for (uint32_t i = 0; i < G->nparams && rc == 0; i++) {
        const plan_param *P = &p->params[G->first_param + i];
        char why[300];
        if (dirs_exist(p, P->type, out[i], why, sizeof why, 0) == 0) continue;
        char tname[200];
        plan_type_text(p, P->type, tname, sizeof tname);
        snprintf(err, errlen, "parameter '%s' (%s): %s", plan_str(p, P->name), tname, why);
        rc = -1;
    }
    if (rc != 0) /* release what was built */
        for (uint32_t i = 0; i < nbuilt; i++)
            fv_decref(p, p->params[G->first_param + i].type, out[i]);
    if (loaded) yaml_document_delete(&y.doc);
    if (eloaded) yaml_document_delete(&ye.doc);
    fl_free(p->ctx, texts);
    fl_free(p->ctx, given);
    fl_free(p->ctx, egiven);
    return rc;
}
