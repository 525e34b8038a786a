/*
 * check_options.c — a task's `with {...}` options (language.md §5): retries,
 * retry_delay, timeout, cache, version, max_map, concurrency, trigger, run_as,
 * image, label, memory, max_procs, secrets, cpus, network.
 *
 * The option names are one X-macro list (TASK_OPTIONS), which also gives the
 * "did you mean" candidates. Each option is a constant of a fixed type, checked
 * through check_const.c and then stored in the plan_task record itself (not as a
 * plan value: opt_const takes the value back off plan->values); `label` is the one
 * lambda, lowered by check_expr.c over the task's parameters. Range checks give
 * the limit in the message. `secrets` is the one list: string literals naming
 * entries of flow.yaml's `secrets:` (docs/secrets.md), stored as plan_secret records
 * (names only); check_task reads the same names first (chk_task_secret_names) so that an
 * sh command can use `{secret.NAME}`.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "types.h"

#define TASK_OPTIONS(X)                                                                            \
    X(retries) X(retry_delay) X(timeout) X(cache) X(version) X(max_map) X(concurrency)          \
        X(trigger) X(run_as) X(image) X(label) X(memory) X(max_procs) X(secrets)     \
            X(cpus) X(network)

static const char *const option_names[] = {
#define X(o) #o,
    TASK_OPTIONS(X)
#undef X
};

const char *const *chk_option_names(int *n) {
    *n = (int)(sizeof option_names / sizeof *option_names);
    return option_names;
}

static bool opt_const(chk_ctx *c, const fl_node *o, uint32_t want, plan_value *out) {
    if (!chk_is_const(o->a)) {
        char tb[64];
        diag_error(c->d, o->a->span, NULL, "option '%s' must be a constant %s", o->name,
                   chk_type_text(c, want, tb, sizeof tb));
        return false;
    }
    char what[200];
    snprintf(what, sizeof what, "option '%.*s%s'", DIAG_CLIP(o->name));
    c->const_what = what;
    uint32_t v = chk_const_value(c, o->a, want, true);
    c->const_what = NULL;
    if (v == PLAN_NONE) return false;
    *out = c->plan->values[v];
    c->plan->n_values--; /* options live in the task record, not as plan values */
    return true;
}

/* The text of a string literal without interpolation, or NULL (no diagnostic). */
static const char *secret_literal(chk_ctx *c, const fl_node *e) {
    if (!e || e->kind != AST_STR) return NULL;
    for (int i = 0; i < e->list.len; i++)
        if (e->list.items[i]->kind != AST_STRPART) return NULL;
    return chk_str_text(c, e, false);
}

int chk_task_secret_names(chk_ctx *c, const fl_nodes *opts, const char **names, int max) {
    for (int i = 0; i < opts->len; i++) {
        const fl_node *o = opts->items[i];
        if (strcmp(o->name, "secrets")) continue;
        int n = 0;
        for (int k = 0; o->a && o->a->kind == AST_LIST && k < o->a->list.len && n < max; k++) {
            const char *s = secret_literal(c, o->a->list.items[k]);
            if (s && !plan_secret_name_bad(s)) names[n++] = s;
        }
        return n; /* the first `secrets` option (a second one is an error) */
    }
    return 0;
}

/* `secrets: ["a", "b"]`: plan_secret records for the task, in the order written. */
static void opt_secrets(chk_ctx *c, uint32_t task, const fl_node *o) {
    fl_plan *p = c->plan;
    if (!o->a || o->a->kind != AST_LIST) {
        diag_error(c->d, o->a ? o->a->span : o->nspan, "e.g. secrets: [\"s3_key\"]",
                   "option 'secrets' must be a list of secret names");
        return;
    }
    const fl_nodes *l = &o->a->list;
    if (l->len > CHK_MAX_SECRETS) {
        diag_error(c->d, o->a->span, NULL, "a task can declare at most %d secrets",
                   CHK_MAX_SECRETS);
        return;
    }
    for (int k = 0; k < l->len; k++) {
        const fl_node *e = l->items[k];
        const char *name = secret_literal(c, e);
        if (!name) {
            diag_error(c->d, e->span, "write the name itself, as in \"s3_key\"",
                       "a secret name must be a string literal");
            continue;
        }
        const char *why = plan_secret_name_bad(name);
        if (why) {
            diag_error(c->d, e->span, "letters, digits and '_', not starting with a digit",
                       "secret name \"%s\" %s", name, why);
            continue;
        }
        int dup = -1;
        for (int j = 0; j < k && dup < 0; j++) {
            const char *other = secret_literal(c, l->items[j]);
            if (other && !strcasecmp(other, name)) dup = j;
        }
        if (dup >= 0) {
            diag_error(c->d, e->span, NULL,
                       "secret \"%s\" is listed twice (names that differ only in case are "
                       "the same secret: FLOW_SECRET_ upper-cases them)",
                       name);
            diag_note(c->d, l->items[dup]->span, "first listed here");
            continue;
        }
        uint32_t si = PLAN_PUSH(p, secrets);
        if (p->oom) return;
        plan_secret rec = {task, plan_intern_str(p, name), chk_loc(c, e->span)};
        /* keep the records in task order (a combine's options come after later tasks') */
        while (si > 0 && p->secrets[si - 1].task > task) {
            p->secrets[si] = p->secrets[si - 1];
            si--;
        }
        p->secrets[si] = rec;
    }
}

/* The container options cpus: and network: of task `task` (a plan_container record, in
 * task order); they apply only to a task with image:. */
static void opt_container(chk_ctx *c, uint32_t task, const fl_node *cpus, uint32_t ncpus,
                          const fl_node *net, uint32_t network, bool has_image) {
    fl_plan *p = c->plan;
    if (!has_image) {
        const fl_node *o = cpus ? cpus : net;
        diag_error(c->d, o->nspan, "add image: \"...\" to run the task in a container",
                   "%s: applies to containers (image:)", o->name);
        return;
    }
    uint32_t ci = PLAN_PUSH(p, containers);
    if (p->oom) return;
    plan_container rec = {task, ncpus, network};
    while (ci > 0 && p->containers[ci - 1].task > task) { /* a combine's come late */
        p->containers[ci] = p->containers[ci - 1];
        ci--;
    }
    p->containers[ci] = rec;
}

void chk_task_options(chk_ctx *c, uint32_t task, const fl_nodes *opts) {
    fl_plan *p = c->plan;
    char hb[160];
    const fl_node *cpus_opt = NULL, *net_opt = NULL;
    uint32_t ncpus = 0, network = 0;
    bool has_image = false;
    for (int i = 0; i < opts->len; i++) {
        const fl_node *o = opts->items[i];
        int which = -1;
        for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
            if (!strcmp(o->name, option_names[k])) which = (int)k;
        if (which < 0) {
            chk_cand_reset(c);
            for (size_t k = 0; k < sizeof option_names / sizeof *option_names; k++)
                chk_cand_add(c, option_names[k]);
            const char *h = chk_hint_closest(c, o->name, hb, sizeof hb);
            diag_error(c->d, o->nspan,
                       h ? h : "options: retries retry_delay timeout cache version max_map "
                               "concurrency trigger run_as image label memory max_procs secrets "
                               "cpus network",
                       "unknown task option '%s'", o->name);
            continue;
        }
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            if (!strcmp(opts->items[j]->name, o->name)) {
                diag_error(c->d, o->nspan, NULL, "option '%s' is given twice", o->name);
                diag_note(c->d, opts->items[j]->nspan, "first given here");
                dup = true;
            }
        if (dup) continue;
        plan_task *t = &p->tasks[task];
        plan_value v;
        const char *name = o->name;
        if (!strcmp(name, "retries") || !strcmp(name, "max_map") || !strcmp(name, "concurrency")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            t = &p->tasks[task];
            int64_t lo = name[0] == 'r' ? 0 : 1;
            if (v.u.i < lo || v.u.i > (name[0] == 'm' ? INT64_MAX : (int64_t)UINT32_MAX)) {
                diag_error(c->d, o->a->span, NULL, "option '%s' must be %s", name,
                           lo ? "greater than 0" : "0 or more");
                continue;
            }
            if (name[0] == 'r') t->retries = (uint32_t)v.u.i;
            else if (name[0] == 'm') t->max_map = v.u.i;
            else t->concurrency = (uint32_t)v.u.i;
        } else if (!strcmp(name, "memory")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            if (v.u.i < (1 << 20)) {
                diag_error(c->d, o->a->span, "write a size: memory: 512MiB, memory: 2GiB",
                           "option 'memory' must be at least 1MiB");
                continue;
            }
            p->tasks[task].memory = v.u.i;
        } else if (!strcmp(name, "cpus")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            if (v.u.i < 1 || v.u.i > PLAN_MAX_CPUS) {
                diag_error(c->d, o->a->span, NULL, "option 'cpus' must be from 1 to %d",
                           PLAN_MAX_CPUS);
                continue;
            }
            cpus_opt = o;
            ncpus = (uint32_t)v.u.i;
        } else if (!strcmp(name, "network")) {
            if (!opt_const(c, o, c->t_bool, &v)) continue;
            net_opt = o;
            network = (uint32_t)v.u.i;
        } else if (!strcmp(name, "max_procs")) {
            if (!opt_const(c, o, c->t_int, &v)) continue;
            if (v.u.i < 1 || v.u.i > PLAN_MAX_PROCS) {
                diag_error(c->d, o->a->span, NULL, "option 'max_procs' must be from 1 to %d",
                           PLAN_MAX_PROCS);
                continue;
            }
            p->tasks[task].max_procs = (uint32_t)v.u.i;
        } else if (!strcmp(name, "retry_delay") || !strcmp(name, "timeout")) {
            if (!opt_const(c, o, c->t_dur, &v)) continue;
            t = &p->tasks[task];
            if (v.u.i > PLAN_MAX_DURATION_MS) {
                diag_error(c->d, o->a->span, "the longest is 365d (8760h)",
                           "option '%s' is longer than 365 days", name);
                continue;
            }
            if (name[1] == 'e') t->retry_delay_ms = v.u.i;
            else t->timeout_ms = v.u.i;
        } else if (!strcmp(name, "cache")) {
            if (!opt_const(c, o, c->t_bool, &v)) continue;
            p->tasks[task].cache = (uint32_t)v.u.i;
        } else if (!strcmp(name, "secrets")) {
            opt_secrets(c, task, o);
        } else if (!strcmp(name, "label")) {
            if (o->a->kind != AST_LAMBDA) {
                diag_error(c->d, o->a->span, "e.g. label: f => basename(f)",
                           "option 'label' must be a lambda");
                continue;
            }
            uint32_t np = t->nparams, first = t->first_param;
            if (np == 0) {
                diag_error(c->d, o->a->span, NULL, "a task without parameters cannot have a label");
                continue;
            }
            uint32_t pt[CHK_MAX_PARAMS];
            for (uint32_t k = 0; k < np && k < CHK_MAX_PARAMS; k++) pt[k] = p->params[first + k].type;
            c->ex.diag = c->d;
            uint32_t lam = expr_lower_lambda_prefix(&c->ex, o->a, pt, (int)np, c->t_str, NULL);
            p->tasks[task].label = lam;
        } else { /* string options */
            if (!opt_const(c, o, c->t_str, &v)) continue;
            t = &p->tasks[task];
            if (!strcmp(name, "trigger")) {
                const char *s = plan_str(p, v.u.s);
                if (!strcmp(s, "all_success")) t->trigger = TRIG_ALL_SUCCESS;
                else if (!strcmp(s, "all_done")) t->trigger = TRIG_ALL_DONE;
                else diag_error(c->d, o->a->span, "trigger is \"all_success\" or \"all_done\"",
                                "unknown trigger \"%s\"", s);
            } else if (!strcmp(name, "version")) t->version = v.u.s;
            else if (!strcmp(name, "run_as")) t->run_as = v.u.s;
            else {
                const char *img = plan_str(p, v.u.s);
                if (!img[0] || img[0] == '-')
                    diag_error(c->d, o->a->span, "e.g. image: \"localhost/flow-runtime:0.1.0\"",
                               "option 'image' must name an image");
                t->image = v.u.s;
                has_image = true;
            }
        }
    }
    if (cpus_opt || net_opt) opt_container(c, task, cpus_opt, ncpus, net_opt, network, has_image);
}
