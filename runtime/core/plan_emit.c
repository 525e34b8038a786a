/*
 * plan_emit.c — the plan for people and tools: JSON, YAML, DOT and C (`flowc --emit=...`,
 * `flowrun inspect`).
 *
 * DESIGN. JSON and YAML show the same document, so the document is written once
 * (emit_doc) against a tiny tree-writer interface (maps, sequences, scalars); the JSON
 * writer prints it pretty with a 2-space indent, the YAML writer feeds libyaml's
 * emitter events. Every index is shown resolved (types as text, tasks and groups by
 * name, lambdas by number with their code disassembled), and the output depends only
 * on the plan, so golden files can compare it byte for byte. DOT draws one cluster per
 * graph; C wraps plan_write's bytes in an array.
 *
 * The emitters never trust an index blindly: a builder plan from flowc has not been
 * through plan_read's validator, so every lookup is guarded and shows "?" when out of
 * range rather than reading past an array.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "expr_ops.h"
#include "plan.h"
#include "value.h"

#define EMIT_MAX_DEPTH 64   /* nesting of the JSON/YAML document (constants are cut below) */
#define EMIT_VALUE_DEPTH 24 /* nesting shown for a constant value */
/* constants shown in one document: every constant and item several times over */
#define EMIT_VALUE_BUDGET(p) (100000 + 8 * ((uint64_t)(p)->n_values + (p)->n_items))

static const char *const task_kind_names[] = {
#define X(k, s) s,
    PLAN_TASK_KINDS(X)
#undef X
};
static const char *const trigger_names[] = {
#define X(k, s) s,
    PLAN_TRIGGERS(X)
#undef X
};
static const char *const bind_names[] = {
#define X(k, s) s,
    PLAN_BIND_KINDS(X)
#undef X
};
static const char *const graph_kind_names[] = {
#define X(k, s) s,
    PLAN_GRAPH_KINDS(X)
#undef X
};
static const char *const node_kind_names[] = {
#define X(k, s) s,
    PLAN_NODE_KINDS(X)
#undef X
};
static const char *const arg_mode_names[] = {
#define X(k, s) s,
    PLAN_ARG_MODES(X)
#undef X
};
static const char *const op_names[] = {
#define X(name, po, pu, doc) #name,
    FLOW_EXPR_OPS(X)
#undef X
};

#define NAME_OF(table, i) ((i) < sizeof table / sizeof table[0] ? table[i] : "?")

/* ---- the tree writer ---------------------------------------------------------------- */
typedef struct emit_tree {
    FILE *f;                    /* output */
    bool yaml;                  /* libyaml events instead of JSON text */
    int depth;                  /* open containers */
    bool empty[EMIT_MAX_DEPTH]; /* JSON: container at this depth has no item yet */
    bool after_key;             /* JSON: a key was just written */
    yaml_emitter_t em;          /* YAML emitter */
    int failed;                 /* a write or an emitter call failed */
} emit_tree;

static void y_emit(emit_tree *t, yaml_event_t *ev, int ok) {
    if (!ok || !yaml_emitter_emit(&t->em, ev)) t->failed = 1;
}

/* JSON: what goes before an item (comma, newline, indent) */
static void j_item(emit_tree *t) {
    if (t->after_key) {
        t->after_key = false;
        return;
    }
    if (t->depth == 0) return;
    fputs(t->empty[t->depth - 1] ? "\n" : ",\n", t->f);
    t->empty[t->depth - 1] = false;
    for (int i = 0; i < t->depth; i++)
        fputs("  ", t->f);
}

static void j_string(FILE *f, const char *s) {
    fv_json_string(f, s, strlen(s));
}

static void t_open(emit_tree *t, bool map) {
    if (t->yaml) {
        yaml_event_t ev;
        if (map)
            y_emit(
                t, &ev,
                yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
        else
            y_emit(t, &ev,
                   yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                        YAML_BLOCK_SEQUENCE_STYLE));
    } else {
        j_item(t);
        fputc(map ? '{' : '[', t->f);
    }
    if (t->depth < EMIT_MAX_DEPTH) t->empty[t->depth] = true;
    t->depth++;
}

static void t_close(emit_tree *t, bool map) {
    t->depth--;
    if (t->yaml) {
        yaml_event_t ev;
        if (map)
            y_emit(t, &ev, yaml_mapping_end_event_initialize(&ev));
        else
            y_emit(t, &ev, yaml_sequence_end_event_initialize(&ev));
        return;
    }
    if (!t->empty[t->depth]) {
        fputc('\n', t->f);
        for (int i = 0; i < t->depth; i++)
            fputs("  ", t->f);
    }
    fputc(map ? '}' : ']', t->f);
}
#define t_map(t) t_open(t, true)
#define t_end_map(t) t_close(t, true)
#define t_seq(t) t_open(t, false)
#define t_end_seq(t) t_close(t, false)

/* a string that YAML would read back as something else must be quoted */
static bool yaml_needs_quotes(const char *s) {
    static const char *const words[] = {"true", "false", "null", "yes", "no",
                                        "on",   "off",   "~",    "y",   "n"};
    if (!*s) return true;
    if (strchr("0123456789-+.", *s)) return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcasecmp(s, words[i])) return true;
    return false;
}

static void y_scalar(emit_tree *t, const char *s, bool is_string) {
    yaml_event_t ev;
    bool quote = is_string && yaml_needs_quotes(s);
    y_emit(t, &ev,
           yaml_scalar_event_initialize(
               &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), !quote, is_string,
               quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE));
}

static void t_key(emit_tree *t, const char *k) {
    if (t->yaml) {
        y_scalar(t, k, true);
        return;
    }
    j_item(t);
    j_string(t->f, k);
    fputs(": ", t->f);
    t->after_key = true;
}

static void t_str(emit_tree *t, const char *s) {
    if (t->yaml) {
        y_scalar(t, s, true);
        return;
    }
    j_item(t);
    j_string(t->f, s);
}

/* a bare scalar (number, true/false/null), the same text in JSON and YAML */
static void t_raw(emit_tree *t, const char *s) {
    if (t->yaml) {
        y_scalar(t, s, false);
        return;
    }
    j_item(t);
    fputs(s, t->f);
}

static void t_int(emit_tree *t, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    t_raw(t, b);
}
static void t_bool(emit_tree *t, bool v) {
    t_raw(t, v ? "true" : "false");
}
static void t_null(emit_tree *t) {
    t_raw(t, "null");
}
static void t_float(emit_tree *t, double v) {
    char b[40];
    if (!isfinite(v)) {
        t_str(t, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    snprintf(b, sizeof b, "%.17g", v);
    /* shortest text that reads back the same */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    t_raw(t, b);
}

/* key + value shorthands */
static void kv_str(emit_tree *t, const char *k, const char *v) {
    t_key(t, k), t_str(t, v);
}
static void kv_int(emit_tree *t, const char *k, int64_t v) {
    t_key(t, k), t_int(t, v);
}

/* ---- plan lookups that never read past an array -------------------------------------- */
typedef struct emit_ctx {
    const fl_plan *p;   /* the plan shown */
    emit_tree *t;         /* where the document goes */
    char buf[512];        /* scratch for type text */
    uint64_t values_left; /* constants still to show: a hostile plan could share one list
                             many times over and make the document explode */
} emit_ctx;

static const char *type_str(emit_ctx *c, uint32_t ty) {
    plan_type_text(c->p, ty, c->buf, sizeof c->buf);
    return c->buf;
}
static const char *str_of(const fl_plan *p, uint32_t s) {
    return s < p->n_stroff ? plan_str(p, s) : "?";
}
static const char *task_name(const fl_plan *p, uint32_t i) {
    return i < p->n_tasks ? str_of(p, p->tasks[i].name) : "?";
}
static const char *graph_name(const fl_plan *p, uint32_t i) {
    return i < p->n_graphs ? str_of(p, p->graphs[i].name) : "?";
}

static void kv_loc(emit_ctx *c, const char *k, uint32_t loc) {
    t_key(c->t, k);
    if (loc >= c->p->n_locs) {
        t_null(c->t);
        return;
    }
    /* "line:col" in the program; "file:line:col" in an imported file (plan format 6) */
    char b[1100];
    uint32_t src = loc < c->p->n_locsrc ? c->p->locsrc[loc] : 0;
    if (src)
        snprintf(b, sizeof b, "%.1024s:%u:%u", plan_str(c->p, c->p->sources[src - 1].path),
                 c->p->locs[loc].line, c->p->locs[loc].col);
    else
        snprintf(b, sizeof b, "%u:%u", c->p->locs[loc].line, c->p->locs[loc].col);
    t_str(c->t, b);
}

static void kv_optstr(emit_ctx *c, const char *k, uint32_t s) {
    t_key(c->t, k);
    if (s == PLAN_NONE)
        t_null(c->t);
    else
        t_str(c->t, str_of(c->p, s));
}
static void kv_optidx(emit_ctx *c, const char *k, uint32_t i) {
    t_key(c->t, k);
    if (i == PLAN_NONE)
        t_null(c->t);
    else
        t_int(c->t, i);
}

static void hex(const uint8_t *h, char out[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* a constant as a native JSON/YAML value (list: sequence; record: map) */
static void value_tree(emit_ctx *c, uint32_t vi, int depth) {
    const fl_plan *p = c->p;
    emit_tree *t = c->t;
    if (vi >= p->n_values || p->values[vi].type >= p->n_types || depth > EMIT_VALUE_DEPTH) {
        t_str(t, "?");
        return;
    }
    if (c->values_left == 0) {
        t_str(t, "...");
        return;
    }
    c->values_left--;
    const plan_value *v = &p->values[vi];
    const plan_type *ty = &p->types[v->type];
    switch (ty->kind) {
        case PT_INT:
        case PT_DURATION:
            t_int(t, v->u.i);
            return;
        case PT_BOOL:
            t_bool(t, v->u.i != 0);
            return;
        case PT_FLOAT:
            t_float(t, v->u.f);
            return;
        case PT_LIST:
        case PT_RECORD: {
            bool rec = ty->kind == PT_RECORD;
            t_open(t, rec);
            for (uint32_t j = 0; j < v->n; j++) {
                if ((uint64_t)v->u.first + j >= p->n_items) break;
                if (rec) {
                    uint32_t f = ty->first + j;
                    t_key(t, j < ty->n && f < p->n_fields ? str_of(p, p->fields[f].name) : "?");
                }
                value_tree(c, p->items[v->u.first + j], depth + 1);
            }
            t_close(t, rec);
            return;
        }
        default:
            if (ty->kind == PT_STR || ty->kind == PT_PATH || ty->kind == PT_DIR ||
                ty->kind == PT_DATE || ty->kind == PT_TIME)
                t_str(t, str_of(p, v->u.s));
            else
                t_null(t);
    }
}

/* a constant as one line of text, for disassembly comments and DOT labels */
static void value_line(const fl_plan *p, uint32_t vi, char *out, size_t len, int depth) {
    out[0] = '\0';
    if (vi >= p->n_values || p->values[vi].type >= p->n_types || depth > 3) {
        snprintf(out, len, "...");
        return;
    }
    const plan_value *v = &p->values[vi];
    const plan_type *ty = &p->types[v->type];
    switch (ty->kind) {
        case PT_INT:
            snprintf(out, len, "%" PRId64, v->u.i);
            break;
        case PT_DURATION:
            snprintf(out, len, "%" PRId64 "ms", v->u.i);
            break;
        case PT_BOOL:
            snprintf(out, len, "%s", v->u.i ? "true" : "false");
            break;
        case PT_FLOAT:
            snprintf(out, len, "%g", v->u.f);
            break;
        case PT_LIST:
        case PT_RECORD: {
            size_t n = (size_t)snprintf(out, len, "%c", ty->kind == PT_LIST ? '[' : '{');
            for (uint32_t j = 0; j < v->n && n + 8 < len; j++) {
                char item[128];
                if ((uint64_t)v->u.first + j >= p->n_items) break;
                value_line(p, p->items[v->u.first + j], item, sizeof item, depth + 1);
                const char *fname = "";
                if (ty->kind == PT_RECORD && j < ty->n && (uint64_t)ty->first + j < p->n_fields)
                    fname = str_of(p, p->fields[ty->first + j].name);
                n += (size_t)snprintf(out + n, len - n, "%s%s%s%s", j ? ", " : "", fname,
                                      fname[0] ? ": " : "", item);
            }
            if (n + 2 < len) snprintf(out + n, len - n, "%c", ty->kind == PT_LIST ? ']' : '}');
            break;
        }
        default:
            snprintf(out, len, "\"%.60s\"", str_of(p, v->u.s));
            break;
    }
}

void plan_value_text(const fl_plan *p, uint32_t value, char *buf, size_t len) {
    if (len) value_line(p, value, buf, len, 0);
}

/* one instruction as text: "3 CONST 2  # 1.5 @4:7" */
static void instr_line(const fl_plan *p, uint32_t pc, const plan_instr *in, char *out,
                       size_t len) {
    char note[160] = "";
    bool show_b = false;
    switch ((fl_expr_op)in->op) {
        case EOP_CONST_I:
        case EOP_CONST_F:
        case EOP_CONST_S:
        case EOP_CONST_V:
            value_line(p, (uint32_t)in->a, note, sizeof note, 0);
            break;
        case EOP_MAKE_LIST:
        case EOP_FIELD:
        case EOP_INTERP: /* b: element count / field number / part count */
            show_b = true;
            /* fall through */
        case EOP_MAKE_RECORD:
        case EOP_INDEX:
        case EOP_LEN_L:
        case EOP_JOIN_L:
        case EOP_EQ_V:
        case EOP_NE_V:
            if (in->op != EOP_INTERP) plan_type_text(p, (uint32_t)in->a, note, sizeof note);
            break;
        default:
            break;
    }
    int n = snprintf(out, len, "%u %s %d", pc, NAME_OF(op_names, in->op), in->a);
    if (show_b && n > 0 && (size_t)n < len) n += snprintf(out + n, len - (size_t)n, " %u", in->b);
    if (note[0] && n > 0 && (size_t)n < len)
        n += snprintf(out + n, len - (size_t)n, "  # %s", note);
    if (in->loc < p->n_locs && n > 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, " @%u:%u", p->locs[in->loc].line, p->locs[in->loc].col);
}

/* ---- the document --------------------------------------------------------------------- */
static void emit_params(emit_ctx *c, uint32_t first, uint32_t n) {
    const fl_plan *p = c->p;
    t_seq(c->t);
    for (uint32_t j = 0; j < n && (uint64_t)first + j < p->n_params; j++) {
        const plan_param *a = &p->params[first + j];
        t_map(c->t);
        kv_str(c->t, "name", str_of(p, a->name));
        kv_str(c->t, "type", type_str(c, a->type));
        if (a->def != PLAN_NONE) {
            t_key(c->t, "default");
            value_tree(c, a->def, 0);
        }
        kv_loc(c, "loc", a->loc);
        t_end_map(c->t);
    }
    t_end_seq(c->t);
}

static void emit_task(emit_ctx *c, uint32_t i) {
    const fl_plan *p = c->p;
    const plan_task *k = &p->tasks[i];
    emit_tree *t = c->t;
    t_map(t);
    kv_int(t, "id", i);
    kv_str(t, "name", str_of(p, k->name));
    kv_str(t, "kind", NAME_OF(task_kind_names, k->kind));
    t_key(t, "params");
    emit_params(c, k->first_param, k->nparams);
    kv_str(t, "returns", type_str(c, k->ret));
    if (k->kind == TK_C) {
        kv_str(t, "library", k->lib < p->n_libs ? str_of(p, p->libs[k->lib].name) : "?");
        kv_str(t, "symbol", str_of(p, k->symbol));
    } else if (k->kind == TK_SH) {
        kv_int(t, "cmd", k->cmd);
    } else if (k->kind == TK_COMBINE) {
        kv_str(t, "first", task_name(p, k->first));
        kv_str(t, "second", task_name(p, k->second));
        kv_optidx(c, "stitch", k->stitch);
        t_key(t, "binds");
        t_seq(t);
        if (k->second < p->n_tasks) {
            const plan_task *b = &p->tasks[k->second];
            uint32_t rec = PLAN_NONE;
            if (k->stitch < p->n_lambdas) rec = p->lambdas[k->stitch].ret;
            for (uint32_t j = 0; j < b->nparams && (uint64_t)k->first_bind + j < p->n_binds; j++) {
                const plan_bind *bd = &p->binds[k->first_bind + j];
                char from[300];
                const char *pn = (uint64_t)b->first_param + j < p->n_params
                                     ? str_of(p, p->params[b->first_param + j].name)
                                     : "?";
                if (bd->kind == PB_RESULT) {
                    snprintf(from, sizeof from, "result");
                } else if (bd->kind == PB_STITCH) {
                    const char *fname = "?";
                    if (rec < p->n_types && bd->index < p->types[rec].n &&
                        (uint64_t)p->types[rec].first + bd->index < p->n_fields)
                        fname = str_of(p, p->fields[p->types[rec].first + bd->index].name);
                    snprintf(from, sizeof from, "stitch.%s", fname);
                } else {
                    const char *q =
                        bd->index < k->nparams && (uint64_t)k->first_param + bd->index < p->n_params
                            ? str_of(p, p->params[k->first_param + bd->index].name)
                            : "?";
                    snprintf(from, sizeof from, "param %s", q);
                }
                t_map(t);
                kv_str(t, "param", pn);
                kv_str(t, "from", from);
                (void)bind_names;
                t_end_map(t);
            }
        }
        t_end_seq(t);
    }
    t_key(t, "options");
    t_map(t);
    kv_int(t, "retries", k->retries);
    kv_int(t, "retry_delay_ms", k->retry_delay_ms);
    kv_int(t, "timeout_ms", k->timeout_ms);
    kv_int(t, "concurrency", k->concurrency);
    kv_int(t, "max_map", k->max_map);
    t_key(t, "cache");
    t_bool(t, k->cache != 0);
    kv_str(t, "trigger", NAME_OF(trigger_names, k->trigger));
    kv_optstr(c, "version", k->version);
    kv_optstr(c, "run_as", k->run_as);
    kv_optstr(c, "image", k->image);
    kv_optidx(c, "label", k->label);
    if (k->memory) kv_int(t, "memory", k->memory); /* only when set: older dumps stay valid */
    if (k->max_procs) kv_int(t, "max_procs", k->max_procs);
    const plan_container *co = plan_task_container(p, i);
    if (co && co->cpus) kv_int(t, "cpus", co->cpus);
    if (co) {
        t_key(t, "network");
        t_bool(t, co->network != 0);
    }
    uint32_t nsec = 0;
    for (uint32_t j = 0; j < p->n_secrets; j++) /* names only: a plan never holds a value */
        if (p->secrets[j].task == i) {
            if (!nsec++) {
                t_key(t, "secrets");
                t_seq(t);
            }
            t_str(t, str_of(p, p->secrets[j].name));
        }
    if (nsec) t_end_seq(t);
    t_end_map(t);
    kv_loc(c, "loc", k->loc);
    t_end_map(t);
}

/* the row field an ARG_FIELD argument takes */
static const char *arg_field_name(const fl_plan *p, const plan_arg *a) {
    if (a->node >= p->n_nodes || p->nodes[a->node].type >= p->n_types) return "?";
    uint32_t rt = p->types[p->nodes[a->node].type].elem;
    if (rt >= p->n_types || a->aux >= p->types[rt].n ||
        (uint64_t)p->types[rt].first + a->aux >= p->n_fields)
        return "?";
    return str_of(p, p->fields[p->types[rt].first + a->aux].name);
}

static void emit_node(emit_ctx *c, const plan_graph *g, uint32_t i) {
    const fl_plan *p = c->p;
    const plan_node *n = &p->nodes[i];
    emit_tree *t = c->t;
    t_map(t);
    kv_int(t, "id", i);
    kv_str(t, "kind", NAME_OF(node_kind_names, n->kind));
    kv_optstr(c, "name", n->name);
    kv_str(t, "type", type_str(c, n->type));
    uint32_t pfirst = 0, pn = 0;
    switch ((plan_node_kind)n->kind) {
        case PN_CONST:
            t_key(t, "value");
            value_tree(c, n->aux, 0);
            break;
        case PN_PARAM:
            kv_str(t, "param",
                   n->aux < g->nparams && (uint64_t)g->first_param + n->aux < p->n_params
                       ? str_of(p, p->params[g->first_param + n->aux].name)
                       : "?");
            break;
        case PN_CALL:
        case PN_EXPAND:
        case PN_EXPAND_KWARGS:
            kv_str(t, "task", task_name(p, n->ref));
            if (n->ref < p->n_tasks)
                pfirst = p->tasks[n->ref].first_param, pn = p->tasks[n->ref].nparams;
            if (n->kind == PN_EXPAND) kv_int(t, "axes", n->aux);
            break;
        case PN_GROUP_CALL:
        case PN_GROUP_EXPAND:
            kv_str(t, "group", graph_name(p, n->ref));
            if (n->ref < p->n_graphs)
                pfirst = p->graphs[n->ref].first_param, pn = p->graphs[n->ref].nparams;
            if (n->kind == PN_GROUP_EXPAND) kv_int(t, "axes", n->aux);
            break;
        case PN_MAP:
        case PN_FILTER:
            kv_int(t, "lambda", n->ref);
            break;
        default:
            break;
    }
    t_key(t, "args");
    t_seq(t);
    for (uint32_t j = 0; j < n->nargs && (uint64_t)n->first_arg + j < p->n_args; j++) {
        const plan_arg *a = &p->args[n->first_arg + j];
        t_map(t);
        if (j < pn && (uint64_t)pfirst + j < p->n_params)
            kv_str(t, "param", str_of(p, p->params[pfirst + j].name));
        kv_int(t, "node", a->node);
        kv_str(t, "mode", NAME_OF(arg_mode_names, a->mode));
        if (a->mode == PA_AXIS) kv_int(t, "axis", a->aux);
        if (a->mode == PA_FIELD) kv_str(t, "field", arg_field_name(p, a));
        t_end_map(t);
    }
    t_end_seq(t);
    t_key(t, "after");
    t_seq(t);
    for (uint32_t j = 0; j < n->nafter && (uint64_t)n->first_after + j < p->n_afters; j++)
        t_int(t, p->afters[n->first_after + j]);
    t_end_seq(t);
    kv_loc(c, "loc", n->loc);
    t_end_map(t);
}

static void emit_doc(emit_ctx *c) {
    const fl_plan *p = c->p;
    emit_tree *t = c->t;
    char h[65];
    t_map(t);
    kv_str(t, "format", "flow-plan");
    kv_int(t, "version", PLAN_VERSION);
    kv_str(t, "source", str_of(p, p->source));
    hex(p->source_sha256, h);
    kv_str(t, "source_sha256", h);
    t_key(t, "imports");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_sources; i++) {
        t_map(t);
        kv_str(t, "path", str_of(p, p->sources[i].path));
        hex(p->sources[i].sha256, h);
        kv_str(t, "sha256", h);
        t_end_map(t);
    }
    t_end_seq(t);

    t_key(t, "types");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_types; i++) {
        char full[512];
        plan_type_text_full(p, i, full, sizeof full);
        const char *name = p->types[i].kind == PT_RECORD && p->types[i].name != PLAN_NONE
                               ? str_of(p, p->types[i].name)
                               : NULL;
        if (name) {
            char both[600];
            snprintf(both, sizeof both, "%s = %s", name, full);
            t_str(t, both);
        } else {
            t_str(t, full);
        }
    }
    t_end_seq(t);

    t_key(t, "libraries");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_libs; i++) {
        t_map(t);
        kv_str(t, "name", str_of(p, p->libs[i].name));
        kv_str(t, "path", str_of(p, p->libs[i].path));
        hex(p->libs[i].sha256, h);
        kv_str(t, "sha256", h);
        t_end_map(t);
    }
    t_end_seq(t);

    t_key(t, "tasks");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_tasks; i++)
        emit_task(c, i);
    t_end_seq(t);

    t_key(t, "graphs");
    t_seq(t);
    for (uint32_t g = 0; g < p->n_graphs; g++) {
        const plan_graph *gr = &p->graphs[g];
        t_map(t);
        kv_int(t, "id", g);
        kv_str(t, "name", str_of(p, gr->name));
        kv_str(t, "kind", NAME_OF(graph_kind_names, gr->kind));
        t_key(t, "params");
        emit_params(c, gr->first_param, gr->nparams);
        kv_str(t, "returns", type_str(c, gr->ret));
        kv_optidx(c, "result", gr->ret_node);
        kv_optstr(c, "schedule", gr->schedule);
        kv_optstr(c, "start", gr->start);
        kv_optstr(c, "tz", gr->tz);
        if (gr->watch != PLAN_NONE && gr->first_param + gr->watch < p->n_params)
            kv_str(t, "watch", str_of(p, p->params[gr->first_param + gr->watch].name));
        kv_loc(c, "loc", gr->loc);
        t_key(t, "nodes");
        t_seq(t);
        for (uint32_t j = 0; j < gr->nnodes && (uint64_t)gr->first_node + j < p->n_nodes; j++)
            emit_node(c, gr, gr->first_node + j);
        t_end_seq(t);
        t_end_map(t);
    }
    t_end_seq(t);

    t_key(t, "lambdas");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_lambdas; i++) {
        const plan_lambda *l = &p->lambdas[i];
        t_map(t);
        kv_int(t, "id", i);
        t_key(t, "params");
        t_seq(t);
        for (uint32_t j = 0; j < l->nparams && (uint64_t)l->first_ptype + j < p->n_typelist; j++)
            t_str(t, type_str(c, p->typelist[l->first_ptype + j]));
        t_end_seq(t);
        kv_str(t, "returns", type_str(c, l->ret));
        kv_int(t, "locals", l->nlocals);
        kv_loc(c, "loc", l->loc);
        t_key(t, "code");
        t_seq(t);
        for (uint32_t j = 0; j < l->ncode && (uint64_t)l->first_code + j < p->n_code; j++) {
            char line[256];
            instr_line(p, j, &p->code[l->first_code + j], line, sizeof line);
            t_str(t, line);
        }
        t_end_seq(t);
        t_end_map(t);
    }
    t_end_seq(t);

    t_key(t, "constants");
    t_seq(t);
    for (uint32_t i = 0; i < p->n_values; i++) {
        t_map(t);
        kv_int(t, "id", i);
        kv_str(t, "type", p->values[i].type < p->n_types ? type_str(c, p->values[i].type) : "?");
        t_key(t, "value");
        value_tree(c, i, 0);
        t_end_map(t);
    }
    t_end_seq(t);
    t_end_map(t);
}

static int emit_json(const fl_plan *p, FILE *f) {
    emit_tree t = {.f = f};
    emit_ctx c = {.p = p, .t = &t, .values_left = EMIT_VALUE_BUDGET(p)};
    emit_doc(&c);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

static int emit_yaml(const fl_plan *p, FILE *f) {
    emit_tree t = {.f = f, .yaml = true};
    emit_ctx c = {.p = p, .t = &t, .values_left = EMIT_VALUE_BUDGET(p)};
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&t.em)) return -1;
    yaml_emitter_set_output_file(&t.em, f);
    yaml_emitter_set_unicode(&t.em, 1);
    yaml_emitter_set_width(&t.em, 100);
    y_emit(&t, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    y_emit(&t, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0));
    emit_doc(&c);
    y_emit(&t, &ev, yaml_document_end_event_initialize(&ev, 1));
    y_emit(&t, &ev, yaml_stream_end_event_initialize(&ev));
    if (!yaml_emitter_flush(&t.em)) t.failed = 1;
    yaml_emitter_delete(&t.em);
    return t.failed || ferror(f) ? -1 : 0;
}

/* ---- DOT ------------------------------------------------------------------------------- */
static void dot_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
}

static void dot_node(const fl_plan *p, const plan_graph *g, uint32_t i, FILE *f) {
    const plan_node *n = &p->nodes[i];
    char what[200] = "", val[120];
    const char *shape = "box", *fill = "#e8f0fe", *extra = "";
    switch ((plan_node_kind)n->kind) {
        case PN_CONST:
            value_line(p, n->aux, val, sizeof val, 0);
            snprintf(what, sizeof what, "%s", val);
            shape = "note", fill = "#fafafa";
            break;
        case PN_PARAM:
            snprintf(what, sizeof what, "param %s",
                     n->aux < g->nparams && (uint64_t)g->first_param + n->aux < p->n_params
                         ? str_of(p, p->params[g->first_param + n->aux].name)
                         : "?");
            shape = "invhouse", fill = "#fff7e0";
            break;
        case PN_CALL:
            snprintf(what, sizeof what, "%s()", task_name(p, n->ref));
            break;
        case PN_EXPAND:
        case PN_EXPAND_KWARGS:
            snprintf(what, sizeof what, "%s() x%s", task_name(p, n->ref),
                     n->kind == PN_EXPAND ? " expand" : " expand_kwargs");
            shape = "box3d";
            break;
        case PN_GROUP_CALL:
            snprintf(what, sizeof what, "group %s", graph_name(p, n->ref));
            shape = "component", fill = "#e6f4ea";
            break;
        case PN_GROUP_EXPAND:
            snprintf(what, sizeof what, "group %s x expand", graph_name(p, n->ref));
            shape = "box3d", fill = "#e6f4ea";
            break;
        default:
            snprintf(what, sizeof what, "%s", NAME_OF(node_kind_names, n->kind));
            if (n->kind == PN_MAP || n->kind == PN_FILTER)
                snprintf(what, sizeof what, "%s (lambda %u)", NAME_OF(node_kind_names, n->kind),
                         n->ref);
            shape = "ellipse", fill = "#f3e8fd";
            break;
    }
    if (i == g->ret_node) extra = ", peripheries=2";
    fprintf(f, "    n%u [label=\"", i);
    bool same = n->kind == PN_PARAM && n->name != PLAN_NONE && n->aux < g->nparams &&
                (uint64_t)g->first_param + n->aux < p->n_params &&
                p->params[g->first_param + n->aux].name == n->name;
    if (n->name != PLAN_NONE && !same) {
        dot_escape(f, str_of(p, n->name));
        fputs("\\n", f);
    }
    dot_escape(f, what);
    fprintf(f, "\", shape=%s, fillcolor=\"%s\"%s];\n", shape, fill, extra);
}

static int emit_dot(const fl_plan *p, FILE *f) {
    char ty[256];
    fputs("digraph plan {\n", f);
    fputs("  graph [fontname=\"Helvetica\", fontsize=12, rankdir=TB, labelloc=t, label=\"", f);
    dot_escape(f, str_of(p, p->source));
    fputs("\"];\n", f);
    fputs("  node [fontname=\"Helvetica\", fontsize=11, style=\"filled\", color=\"#5f6368\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#5f6368\"];\n",
          f);
    for (uint32_t g = 0; g < p->n_graphs; g++) {
        const plan_graph *gr = &p->graphs[g];
        fprintf(f, "  subgraph cluster_%u {\n    label=\"%s ", g,
                NAME_OF(graph_kind_names, gr->kind));
        dot_escape(f, str_of(p, gr->name));
        fputs("(", f);
        for (uint32_t j = 0; j < gr->nparams && (uint64_t)gr->first_param + j < p->n_params; j++) {
            const plan_param *a = &p->params[gr->first_param + j];
            plan_type_text(p, a->type, ty, sizeof ty);
            fprintf(f, "%s", j ? ", " : "");
            dot_escape(f, str_of(p, a->name));
            fputs(": ", f);
            dot_escape(f, ty);
        }
        plan_type_text(p, gr->ret, ty, sizeof ty);
        fputs(") -> ", f);
        dot_escape(f, ty);
        if (gr->schedule != PLAN_NONE) {
            fputs("  [", f);
            dot_escape(f, str_of(p, gr->schedule));
            fputs("]", f);
        }
        fprintf(f, "\";\n    style=\"rounded%s\"; color=\"#9aa0a6\"; fillcolor=\"#fcfcfc\";\n",
                gr->kind == PG_GROUP ? ",dashed" : "");
        for (uint32_t j = 0; j < gr->nnodes && (uint64_t)gr->first_node + j < p->n_nodes; j++)
            dot_node(p, gr, gr->first_node + j, f);
        fputs("  }\n", f);
    }
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        const plan_node *n = &p->nodes[i];
        for (uint32_t j = 0; j < n->nargs && (uint64_t)n->first_arg + j < p->n_args; j++) {
            const plan_arg *a = &p->args[n->first_arg + j];
            fprintf(f, "  n%u -> n%u", a->node, i);
            if (a->mode == PA_AXIS)
                fprintf(f, " [label=\"axis %u\", penwidth=2]", a->aux);
            else if (a->mode == PA_FIELD) {
                fputs(" [label=\"", f);
                dot_escape(f, arg_field_name(p, a));
                fputs("\", penwidth=2]", f);
            }
            fputs(";\n", f);
        }
        for (uint32_t j = 0; j < n->nafter && (uint64_t)n->first_after + j < p->n_afters; j++)
            fprintf(f, "  n%u -> n%u [style=dashed, label=\"after\"];\n",
                    p->afters[n->first_after + j], i);
    }
    fputs("}\n", f);
    return ferror(f) ? -1 : 0;
}

/* ---- C ---------------------------------------------------------------------------------- */
static int emit_c(const fl_plan *p, FILE *f) {
    uint8_t *bytes;
    size_t len;
    if (plan_write(p, &bytes, &len)) return -1;
    fputs("/* A flow plan compiled from ", f);
    for (const char *s = str_of(p, p->source); *s; s++) /* never close the comment early */
        fputc(*s == '*' && s[1] == '/' ? '_' : ((unsigned char)*s < 0x20 ? '?' : *s), f);
    fprintf(f,
            " (plan format %d, %zu bytes).\n"
            " * Generated by flowc --emit=c; link with libflow and load it with the runtime's\n"
            " * plan reader (plan_read(ctx, flow_plan_data, flow_plan_size, ...)). */\n"
            "#include <stddef.h>\n\n"
            "extern const unsigned char flow_plan_data[];\n"
            "extern const size_t flow_plan_size;\n\n"
            "const unsigned char flow_plan_data[] = {",
            PLAN_VERSION, len);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%s0x%02x,", i % 12 ? " " : "\n    ", bytes[i]);
    fprintf(f, "\n};\nconst size_t flow_plan_size = %zu;\n", len);
    fl_free(p->ctx, bytes);
    return ferror(f) ? -1 : 0;
}

int plan_emit(const fl_plan *p, plan_emit_format fmt, void *file) {
    FILE *f = file;
    switch (fmt) {
        case PLAN_EMIT_JSON:
            return emit_json(p, f);
        case PLAN_EMIT_YAML:
            return emit_yaml(p, f);
        case PLAN_EMIT_DOT:
            return emit_dot(p, f);
        case PLAN_EMIT_C:
            return emit_c(p, f);
    }
    return -1;
}
