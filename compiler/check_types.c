/*
 * check_types.c — types as written in a .flow file, resolved to plan types:
 * the basic names (int float bool str path dir bytes date time duration), lists,
 * record types, and declared `type` names (language.md §3).
 *
 * Types are plan type indexes, interned by plan_type_* (so two equal types are one
 * index, and comparing them is cheap: types.c). A declared type is resolved on first
 * use and remembered in its chk_decl; its state (unresolved, resolving, done,
 * failed) catches a type defined in terms of itself with one error. A record type
 * declared under a name is interned under that name, so messages can say it.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "types.h"

const char *chk_type_text(chk_ctx *c, uint32_t t, char *buf, size_t len) {
    if (t == c->t_void) snprintf(buf, len, "nothing (void)");
    else plan_type_text(c->plan, t, buf, len);
    return buf;
}

static const char *const basic_names[] = {"int", "float", "bool", "str", "path",
                                          "dir", "bytes", "date", "time", "duration"};
static const plan_type_kind basic_kinds[] = {PT_INT, PT_FLOAT, PT_BOOL, PT_STR, PT_PATH,
                                             PT_DIR, PT_BYTES, PT_DATE, PT_TIME, PT_DURATION};

/* Type names of other languages a newcomer writes, with the flow type they mean:
 * too far from it for "did you mean" (string -> str), so looked up as such. */
static const char *const foreign_names[][2] = {
    {"string", "str"},    {"String", "str"},  {"text", "str"},      {"integer", "int"},
    {"Int", "int"},       {"long", "int"},    {"int64", "int"},     {"int64_t", "int"},
    {"double", "float"},  {"Float", "float"}, {"float64", "float"}, {"Double", "float"},
    {"boolean", "bool"},  {"Bool", "bool"},   {"file", "path"},     {"filename", "path"},
    {"directory", "dir"}, {"folder", "dir"},  {"datetime", "time"}, {"timestamp", "time"},
};

/* The hint for an unknown type name: a foreign name's flow type, else "did you mean". */
static const char *unknown_type_hint(chk_ctx *c, const char *name, char *hb, size_t len) {
    for (size_t i = 0; i < sizeof foreign_names / sizeof *foreign_names; i++)
        if (!strcmp(name, foreign_names[i][0])) {
            snprintf(hb, len, "flow calls this type '%s'", foreign_names[i][1]);
            return hb;
        }
    return chk_hint_closest(c, name, hb, len);
}

uint32_t chk_resolve_type(chk_ctx *c, const fl_node *t) {
    char hb[160];
    switch (t->kind) {
    case AST_TNAME: {
        for (size_t i = 0; i < sizeof basic_names / sizeof *basic_names; i++)
            if (!strcmp(t->name, basic_names[i]))
                return plan_type_basic(c->plan, basic_kinds[i]);
        if (t->sval) { /* m.Name: a type the module imported as m declares */
            if (!chk_import_of_alias(c, t->sval)) {
                diag_error(c->d, t->span, "import its file: import \"%s.flow\"",
                           "unknown module '%s'", t->sval);
                return PLAN_NONE;
            }
            chk_decl *qd = chk_find_qualified(c, t->sval, t->name, t->nspan);
            if (!qd) return PLAN_NONE;
            if (qd->kind == DK_TYPE) {
                uint32_t r = chk_resolve_decl_type(c, qd, t);
                chk_observe_ref(c, t->nspan, qd);
                chk_observe_type(c, t->span, qd->qname, r);
                return r;
            }
            diag_error(c->d, t->span, NULL, "'%s.%s' is a %s, not a type", t->sval, t->name,
                       qd->kind == DK_TASK ? "task" : qd->kind == DK_LIB ? "library" : "group");
            return PLAN_NONE;
        }
        chk_decl *dc = chk_find_decl(c, t->name);
        if (dc && dc->kind == DK_TYPE) {
            uint32_t r = chk_resolve_decl_type(c, dc, t);
            chk_observe_ref(c, t->span, dc);
            chk_observe_type(c, t->span, t->name, r);
            return r;
        }
        chk_cand_reset(c);
        for (size_t i = 0; i < sizeof basic_names / sizeof *basic_names; i++)
            chk_cand_add(c, basic_names[i]);
        for (int i = 0; i < c->ndecls; i++)
            if (c->decls[i].kind == DK_TYPE && c->decls[i].mod == c->mod)
                chk_cand_add(c, c->decls[i].ast->name);
        if (dc)
            diag_error(c->d, t->span, NULL, "'%s' is a %s, not a type", t->name,
                       dc->kind == DK_TASK ? "task" : dc->kind == DK_LIB ? "library"
                       : dc->kind == DK_FLOW ? "flow" : "group");
        else
            diag_error(c->d, t->span, unknown_type_hint(c, t->name, hb, sizeof hb),
                       "unknown type '%s'", t->name);
        return PLAN_NONE;
    }
    case AST_TLIST: {
        uint32_t e = chk_resolve_type(c, t->a);
        return e == PLAN_NONE ? PLAN_NONE : plan_type_list(c->plan, e);
    }
    case AST_TRECORD: {
        int n = t->list.len;
        if (n > CHK_MAX_PARAMS) {
            diag_error(c->d, t->span, NULL, "a record may have at most %d fields",
                       CHK_MAX_PARAMS);
            return PLAN_NONE;
        }
        plan_field fs[CHK_MAX_PARAMS];
        bool ok = true;
        for (int i = 0; i < n; i++) {
            const fl_node *f = t->list.items[i];
            for (int j = 0; j < i; j++)
                if (!strcmp(t->list.items[j]->name, f->name)) {
                    diag_error(c->d, f->nspan, NULL, "field '%s' is declared twice", f->name);
                    diag_note(c->d, t->list.items[j]->nspan, "'%s' was first declared here",
                              f->name);
                    ok = false;
                    break;
                }
            fs[i].name = plan_intern_str(c->plan, f->name);
            fs[i].type = chk_resolve_type(c, f->a);
            if (fs[i].type == PLAN_NONE) ok = false;
            else if (ty_is(c->plan, fs[i].type, PT_DURATION)) {
                diag_error(c->d, f->a->span, NULL, "a duration can only be a task option");
                ok = false;
            }
        }
        return ok ? plan_type_record(c->plan, PLAN_NONE, fs, (uint32_t)n) : PLAN_NONE;
    }
    default:
        diag_error(c->d, t->span, NULL, "expected a type");
        return PLAN_NONE;
    }
}

/* A declared type: records get their declared name; recursion is an error. */
uint32_t chk_resolve_decl_type(chk_ctx *c, chk_decl *dc, const fl_node *use) {
    if (dc->state == 2) return dc->index;
    if (dc->state == 3) return PLAN_NONE;
    if (dc->state == 1) {
        diag_error(c->d, use->span, NULL, "type '%s' is defined in terms of itself", use->name);
        int mod = chk_enter_module(c, dc->mod);
        diag_note(c->d, dc->ast->nspan, "'%s' is declared here", use->name);
        chk_enter_module(c, mod);
        dc->state = 3;
        return PLAN_NONE;
    }
    dc->state = 1;
    int mod = chk_enter_module(c, dc->mod); /* its names are those of its own file */
    uint32_t t = chk_resolve_type(c, dc->ast->a);
    chk_enter_module(c, mod);
    if (dc->state == 3) return PLAN_NONE;
    if (t != PLAN_NONE && c->plan->types[t].kind == PT_RECORD) {
        const plan_type *rt = &c->plan->types[t];
        uint32_t n = rt->n, first = rt->first;
        plan_field fs[CHK_MAX_PARAMS];
        memcpy(fs, &c->plan->fields[first], n * sizeof *fs);
        t = plan_type_record(c->plan, plan_intern_str(c->plan, dc->ast->name), fs, n);
    }
    dc->index = t;
    dc->state = t == PLAN_NONE ? 3 : 2;
    return t;
}
