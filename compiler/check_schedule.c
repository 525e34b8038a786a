/*
 * check_schedule.c — a flow's `schedule "..."` clause: a macro (@hourly @daily
 * @weekly @monthly) or a five-field cron line, validated at compile time so that
 * flowrun never meets a schedule it cannot read.
 *
 * The fields are read by runtime/core/cron.c (cron_field: one parser for flowc and
 * flowrun); this file turns its answers into diagnostics that name the field. The schedule is stored as written
 * (plan_graph.schedule); a scheduled flow must take the interval it runs for as its
 * first parameter: a date, or a time (needed when the schedule fires more than once
 * a day: @hourly, or a cron line whose minute or hour field is not one number).
 *
 * The clauses after the schedule are contextual keywords (the grammar takes any
 * `NAME value` there, so v1 programs that use the words as names still compile):
 * `start D` (a date, or a time for a time flow), `tz "Zone"` (a zone of the system's
 * time zone database, $TZDIR or /usr/share/zoneinfo: the file must exist and be a
 * TZif file), `watch P` (a dir parameter of the flow). They are stored in the plan
 * graph (start, tz, watch); flowrun reads schedule, start and tz through cron.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "cron.h"
#include "types.h"

static void chk_cron(chk_ctx *c, const fl_node *fl, plan_graph *g, bool first_time);

/* Why zone is not a zone of the time zone database, or NULL when it is. */
static const char *zone_problem(const char *zone, char *buf, size_t len) {
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir) dir = "/usr/share/zoneinfo";
    if (!*zone || zone[0] == '/' || strstr(zone, "..")) return "not a zone name";
    for (const char *q = zone; *q; q++)
        if (!isalnum((unsigned char)*q) && !strchr("_+-/", *q)) return "not a zone name";
    snprintf(buf, len, "%s/UTC", dir);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        snprintf(buf, len, "no time zone database at %s (install tzdata, or set TZDIR)", dir);
        return buf;
    }
    fclose(f);
    snprintf(buf, len, "%s/%s", dir, zone);
    char magic[4] = {0};
    f = fopen(buf, "rb");
    bool ok = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "TZif", 4);
    if (f) fclose(f);
    return ok ? NULL : "no such zone in the time zone database";
}

/* The clauses start, tz and watch of flow fl (graph g); first_time: the flow's
 * first parameter is a time. */
static void chk_clauses(chk_ctx *c, const fl_node *fl, plan_graph *g, bool first_time) {
    fl_plan *p = c->plan;
    bool seen_watch = false;
    for (int i = 0; fl->c && i < fl->c->list.len; i++) {
        const fl_node *o = fl->c->list.items[i];
        const fl_node *v = o->a;
        bool is_start = !strcmp(o->name, "start"), is_tz = !strcmp(o->name, "tz");
        bool is_watch = !strcmp(o->name, "watch");
        uint32_t *slot = is_start ? &g->start : is_tz ? &g->tz : is_watch ? &g->watch : NULL;
        if (!slot) {
            static const char *const words[] = {"start", "tz", "watch"};
            chk_cand_reset(c);
            for (int k = 0; k < 3; k++) chk_cand_add(c, words[k]);
            char hb[160];
            const char *h = chk_hint_closest(c, o->name, hb, sizeof hb);
            diag_error(c->d, o->nspan,
                       h ? h : "after a flow's signature: schedule \"...\" [start D] [tz \"Zone\"] "
                               "[watch PARAM], then {",
                       "unexpected '%s' before the flow's body", o->name);
            continue;
        }
        if (*slot != PLAN_NONE || (is_watch && seen_watch)) {
            diag_error(c->d, o->nspan, NULL, "'%s' is given twice", o->name);
            continue;
        }
        if (!is_watch && !fl->b) {
            diag_error(c->d, o->nspan, "e.g. schedule \"@daily\" start 2026-01-01 tz \"Europe/Berlin\"",
                       "'%s' belongs to a schedule, and this flow has none", o->name);
            continue;
        }
        if (!is_watch && seen_watch) {
            diag_error(c->d, o->nspan, "write schedule \"...\" start ... tz ... watch PARAM",
                       "'%s' belongs to the schedule: write it before watch", o->name);
            continue;
        }
        if (is_start) {
            if (v->kind == AST_DATE || (v->kind == AST_TIME && first_time))
                *slot = plan_intern_str(p, v->sval);
            else
                diag_error(c->d, v->span,
                           first_time ? "e.g. start 2026-01-01 or start 2026-01-01T00:00:00Z"
                                      : "e.g. start 2026-01-01 (a time start needs a flow whose "
                                        "first parameter is a time)",
                           "a schedule's start must be a %s", first_time ? "date or a time" : "date");
        } else if (is_tz) {
            const char *z = v->kind == AST_STR && chk_is_const(v) ? chk_str_text(c, v, false) : NULL;
            char zb[512];
            const char *why = z ? zone_problem(z, zb, sizeof zb) : NULL;
            if (!z)
                diag_error(c->d, v->span, "e.g. tz \"Europe/Berlin\"",
                           "a schedule's tz must be a constant string naming a time zone");
            else if (why)
                diag_error(c->d, v->span, why, "unknown time zone \"%s\"", z);
            else
                *slot = plan_intern_str(p, z);
        } else {
            seen_watch = true;
            uint32_t k = PLAN_NONE;
            for (int j = 0; v->kind == AST_NAME && j < fl->list.len; j++)
                if (fl->list.items[j]->name && !strcmp(fl->list.items[j]->name, v->name))
                    k = (uint32_t)j;
            if (v->kind != AST_NAME || k == PLAN_NONE || k >= g->nparams) {
                diag_error(c->d, v->span, "e.g. flow ingest(root: dir = \"/data/in\") watch root {...}",
                           "watch names a parameter of the flow");
            } else if (!ty_is(p, p->params[g->first_param + k].type, PT_DIR)) {
                char tb[128];
                diag_error(c->d, v->span, "watch follows the files under a dir parameter",
                           "'%s' has type %s, not dir", v->name,
                           chk_type_text(c, p->params[g->first_param + k].type, tb, sizeof tb));
            } else
                *slot = k;
        }
    }
}

void chk_schedule(chk_ctx *c, const fl_node *fl, uint32_t graph) {
    plan_graph *g = &c->plan->graphs[graph];
    bool first_time =
        g->nparams > 0 && ty_is(c->plan, c->plan->params[g->first_param].type, PT_TIME);
    if (fl->b) chk_cron(c, fl, g, first_time);
    chk_clauses(c, fl, g, first_time);
}

/* The schedule string of flow fl, and its first parameter. */
static void chk_cron(chk_ctx *c, const fl_node *fl, plan_graph *g, bool first_time) {
    const fl_node *e = fl->b;
    const char *s = e->kind == AST_STR ? chk_str_text(c, e, false) : NULL;
    if (!s || !chk_is_const(e)) {
        diag_error(c->d, e->span, NULL, "a schedule must be a constant string");
        return;
    }
    const char *const *macros = cron_macros;
    bool ok = false;
    if (s[0] == '@') {
        for (int i = 0; i < CRON_NMACROS; i++) ok |= !strcmp(s, macros[i]);
        if (!ok) {
            chk_cand_reset(c);
            for (int i = 0; i < CRON_NMACROS; i++) chk_cand_add(c, macros[i]);
            char hb[160];
            const char *h = chk_hint_closest(c, s, hb, sizeof hb);
            diag_error(c->d, e->span, h ? h : "use @hourly, @daily, @weekly, @monthly or a "
                                              "five-field cron line",
                       "unknown schedule \"%s\"", s);
        }
    } else {
        const char *const *fnames = cron_field_names;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", s);
        char *fields[6];
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
            if (n < 6) fields[n++] = tok;
            else n++;
        if (n != 5) {
            diag_error(c->d, e->span, "minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"",
                       "a cron schedule has 5 fields, this one has %d", n);
        } else {
            ok = true;
            for (int i = 0; i < 5 && ok; i++) {
                const char *why = cron_field(fields[i], i, NULL, NULL);
                if (why) {
                    diag_error(c->d, e->span, "minute 0-59, hour 0-23, day 1-31, month 1-12, "
                                              "weekday 0-7",
                               "bad %s field '%s' in the schedule: %s", fnames[i], fields[i], why);
                    ok = false;
                }
            }
        }
    }
    if (ok) g->schedule = plan_intern_str(c->plan, s);
    bool first_date =
        g->nparams > 0 && ty_is(c->plan, c->plan->params[g->first_param].type, PT_DATE);
    if (!first_date && !first_time)
        diag_error(c->d, fl->nspan,
                   "e.g. flow daily(day: date) schedule \"@daily\" {...}, or "
                   "flow hourly(at: time) schedule \"@hourly\" {...}",
                   "a scheduled flow needs a first parameter of type date or time");
    else if (ok && first_date && cron_sub_daily(s))
        diag_error(c->d, e->span,
                   "use `time` for the first parameter: a date names one run a day",
                   "schedule \"%s\" runs more than once a day, but '%s' is a date", s,
                   fl->list.items[0]->name);
}
