/*
 * params.c — a flow's parameters from defaults, --param k=v and --params FILE.yaml.
 *
 * Every parameter is checked against the flow's declared type before anything
 * runs; the first problem is reported as one line. A parameter given twice (two
 * --param, or a repeated key in the file), a YAML string holding a NUL byte and a
 * float that is not finite (nan, inf, 1e999) are errors that name the parameter. Precedence: --param beats
 * the YAML file, which beats the default. A YAML value that is a sequence or a
 * mapping is rewritten as JSON-like text and parsed by fv_parse like a --param.
 *
 * A `dir` parameter (or a list of them) must name an existing directory, checked
 * here with the rest, so a typo is one line and exit 2 rather than a task failing
 * midway. `path` parameters are not checked: a path may name an output a task
 * will create. A resumed run's parameters are taken from its record as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "scheduler.h"

#define PARAMS_MAX_YAML_DEPTH 32
#define PARAMS_MAX_TEXT (16u << 20) /* longest value text built from YAML */

typedef struct ptext {
    char *s;       /* text (malloc'ed) */
    size_t n, cap; /* length, capacity */
    int overflow;  /* the text grew past PARAMS_MAX_TEXT (1) or memory ran out (2) */
} ptext;

static void pt_put(ptext *t, const char *s, size_t n) {
    if (t->overflow) return;
    if (t->n + n + 1 > PARAMS_MAX_TEXT) {
        t->overflow = 1;
        return;
    }
    if (t->n + n + 1 > t->cap) {
        size_t c = t->cap ? t->cap : 128;
        while (c < t->n + n + 1)
            c *= 2;
        char *q = realloc(t->s, c);
        if (!q) {
            t->overflow = 2;
            return;
        }
        t->s = q;
        t->cap = c;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = 0;
}

static int looks_plain_json(const char *v) {
    if (!strcmp(v, "true") || !strcmp(v, "false")) return 1;
    char *end;
    strtod(v, &end);
    return *v && *end == 0;
}

static void pt_json_string(ptext *t, const char *v) {
    pt_put(t, "\"", 1);
    for (; *v; v++) {
        char esc[8];
        pt_put(t, esc, fv_json_escape((unsigned char)*v, esc));
    }
    pt_put(t, "\"", 1);
}

/* A YAML node as the JSON-like text fv_parse reads. top: the node is the whole value.
 * Returns 0, -1 (not a scalar, list or mapping; too deep) or -2 (a string holds a NUL). */
static int yaml_to_text(yaml_document_t *doc, yaml_node_t *n, ptext *t, int depth, int top) {
    if (!n || depth > PARAMS_MAX_YAML_DEPTH) return -1;
    switch (n->type) {
        case YAML_SCALAR_NODE: {
            const char *v = (const char *)n->data.scalar.value;
            /* "a\0b" in YAML holds a NUL: C strings would silently cut the value there */
            if (memchr(v, 0, n->data.scalar.length)) return -2;
            if (top || (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && looks_plain_json(v)))
                pt_put(t, v, n->data.scalar.length);
            else
                pt_json_string(t, v);
            return 0;
        }
        case YAML_SEQUENCE_NODE: {
            pt_put(t, "[", 1);
            int first = 1;
            for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
                 i++) {
                if (!first) pt_put(t, ", ", 2);
                first = 0;
                int r = yaml_to_text(doc, yaml_document_get_node(doc, *i), t, depth + 1, 0);
                if (r) return r;
            }
            pt_put(t, "]", 1);
            return 0;
        }
        case YAML_MAPPING_NODE: {
            pt_put(t, "{", 1);
            int first = 1;
            for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
                 pr++) {
                yaml_node_t *k = yaml_document_get_node(doc, pr->key);
                if (!k || k->type != YAML_SCALAR_NODE) return -1;
                if (memchr(k->data.scalar.value, 0, k->data.scalar.length)) return -2;
                if (!first) pt_put(t, ", ", 2);
                first = 0;
                pt_json_string(t, (const char *)k->data.scalar.value);
                pt_put(t, ": ", 2);
                int r = yaml_to_text(doc, yaml_document_get_node(doc, pr->value), t, depth + 1, 0);
                if (r) return r;
            }
            pt_put(t, "}", 1);
            return 0;
        }
        default:
            return -1;
    }
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

static int unknown(const fl_plan *p, const plan_graph *G, const char *name, size_t len, char *err,
                   size_t errlen) {
    char names[400];
    list_names(p, G, names, sizeof names);
    if (G->nparams)
        snprintf(err, errlen, "unknown parameter '%.*s' for flow %s (its parameters: %s)", (int)len,
                 name, plan_str(p, G->name), names);
    else
        snprintf(err, errlen, "unknown parameter '%.*s': flow %s takes no parameters", (int)len,
                 name, plan_str(p, G->name));
    return -1;
}

/* texts[i]: the text given for parameter i (borrowed or owned per owned[i]), or NULL. */
static int load_yaml(const fl_plan *p, const plan_graph *G, const char *file, char **texts,
                     char *err, size_t errlen) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read parameters file '%s'", file);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s", file, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s: expected a mapping of parameter names to values", file);
        rc = -1;
    }
    for (yaml_node_pair_t *pr = root && rc == 0 ? root->data.mapping.pairs.start : NULL;
         pr && pr < root->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "%s: a parameter name must be a plain word", file);
            rc = -1;
            break;
        }
        const char *name = (const char *)k->data.scalar.value;
        int i = find_param(p, G, name, k->data.scalar.length);
        if (i < 0) {
            rc = unknown(p, G, name, strlen(name), err, errlen);
            break;
        }
        /* libyaml keeps both of two equal keys; YAML 1.2 says keys are unique */
        for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < pr && rc == 0; q++) {
            yaml_node_t *qk = yaml_document_get_node(&doc, q->key);
            if (qk && qk->type == YAML_SCALAR_NODE && qk->data.scalar.length == k->data.scalar.length &&
                !memcmp(qk->data.scalar.value, name, k->data.scalar.length)) {
                snprintf(err, errlen, "%s:%zu: parameter '%s' given twice (first on line %zu)",
                         file, k->start_mark.line + 1, name, qk->start_mark.line + 1);
                rc = -1;
            }
        }
        if (rc) break;
        ptext t = {0};
        int tr = yaml_to_text(&doc, yaml_document_get_node(&doc, pr->value), &t, 0, 1);
        if (tr != 0 || t.overflow) {
            if (tr == -2)
                snprintf(err, errlen, "%s:%zu: parameter '%s': a string holds a NUL byte", file,
                         k->start_mark.line + 1, name);
            else if (t.overflow == 2)
                snprintf(err, errlen, "out of memory");
            else
                snprintf(err, errlen,
                         "%s: parameter '%s': value is not a scalar, list or mapping (or too large)",
                         file, name);
            free(t.s);
            rc = -1;
            break;
        }
        free(texts[i]);
        texts[i] = t.s ? t.s : calloc(1, 1);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
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
        snprintf(err, errlen, "%s: %s", path, errno == ENOENT ? "no such directory" : strerror(errno));
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
    const plan_graph *G = &p->graphs[graph];
    char **texts = calloc(G->nparams ? G->nparams : 1, sizeof *texts);
    int rc = 0;
    uint32_t nbuilt = 0;
    if (!texts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (yaml_file) rc = load_yaml(p, G, yaml_file, texts, err, errlen);
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
            rc = unknown(p, G, kv[j], (size_t)(eq - kv[j]), err, errlen);
            break;
        }
        free(texts[i]);
        size_t n = strlen(eq + 1) + 1;
        texts[i] = malloc(n);
        if (!texts[i]) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        memcpy(texts[i], eq + 1, n);
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
        } else if (P->def != PLAN_NONE) {
            out[i] = fv_from_const(p, P->def);
            nbuilt++;
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
    for (uint32_t i = 0; i < G->nparams; i++)
        free(texts[i]);
    free(texts);
    return rc;
}
