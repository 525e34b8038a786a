/*
 * check_schedule.c — a flow's `schedule "..."` clause: a macro (@hourly @daily
 * @weekly @monthly) or a five-field cron line, validated at compile time so that
 * flowrun never meets a schedule it cannot read.
 *
 * A cron field is a comma-separated list of `*`, a number or a name (jan..dec,
 * sun..sat), or a range a-b, each with an optional /step; cron_field returns why a
 * field is wrong, and the error names the field. The schedule is stored as written
 * (plan_graph.schedule); a scheduled flow must take the day it runs for as its
 * first parameter, a date.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "types.h"

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* one number or name of a cron field; returns the end, or NULL */
static const char *cron_atom(const char *s, int field, int *out) {
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
        *out = (int)v;
        return s;
    }
    const char *const *names = field == 3 ? months : field == 4 ? wdays : NULL;
    int n = field == 3 ? 12 : 7;
    for (int i = 0; names && i < n; i++)
        if (!strncasecmp(s, names[i], 3) && !isalpha((unsigned char)s[3])) {
            *out = field == 3 ? i + 1 : i;
            return s + 3;
        }
    return NULL;
}

/* NULL when the field is valid, else why not */
static const char *cron_field(const char *s, int field) {
    static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    for (;;) {
        int a = lo[field], b = hi[field];
        if (*s == '*') {
            s++;
        } else {
            const char *e = cron_atom(s, field, &a);
            if (!e) return "expected a number, a range, a list or *";
            s = e;
            b = a;
            if (*s == '-') {
                e = cron_atom(s + 1, field, &b);
                if (!e) return "expected the end of the range";
                s = e;
                if (b < a) return "a range must run upwards";
            }
            if (a < lo[field] || b > hi[field]) return "value out of range";
        }
        if (*s == '/') {
            int step;
            const char *e = s + 1;
            if (!isdigit((unsigned char)*e)) return "expected a step after /";
            e = cron_atom(e, 0, &step);
            if (step <= 0) return "a step must be greater than 0";
            s = e;
        }
        if (*s == ',') {
            s++;
            continue;
        }
        return *s ? "unexpected character" : NULL;
    }
}

void chk_schedule(chk_ctx *c, const fl_node *fl, uint32_t graph) {
    const fl_node *e = fl->b;
    const char *s = e->kind == AST_STR ? chk_str_text(c, e, false) : NULL;
    if (!s || !chk_is_const(e)) {
        diag_error(c->d, e->span, NULL, "a schedule must be a constant string");
        return;
    }
    static const char *const macros[] = {"@hourly", "@daily", "@weekly", "@monthly"};
    bool ok = false;
    if (s[0] == '@') {
        for (int i = 0; i < 4; i++) ok |= !strcmp(s, macros[i]);
        if (!ok) {
            chk_cand_reset(c);
            for (int i = 0; i < 4; i++) chk_cand_add(c, macros[i]);
            char hb[160];
            const char *h = chk_hint_closest(c, s, hb, sizeof hb);
            diag_error(c->d, e->span, h ? h : "use @hourly, @daily, @weekly, @monthly or a "
                                              "five-field cron line",
                       "unknown schedule \"%s\"", s);
        }
    } else {
        static const char *const fnames[] = {"minute", "hour", "day of month", "month",
                                             "day of week"};
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
                const char *why = cron_field(fields[i], i);
                if (why) {
                    diag_error(c->d, e->span, "minute 0-59, hour 0-23, day 1-31, month 1-12, "
                                              "weekday 0-7",
                               "bad %s field '%s' in the schedule: %s", fnames[i], fields[i], why);
                    ok = false;
                }
            }
        }
    }
    plan_graph *g = &c->plan->graphs[graph];
    if (ok) g->schedule = plan_intern_str(c->plan, s);
    if (g->nparams == 0 || !ty_is(c->plan, c->plan->params[g->first_param].type, PT_DATE))
        diag_error(c->d, fl->nspan, "e.g. flow daily(day: date) schedule \"@daily\" {...}",
                   "a scheduled flow needs a first parameter of type date");
}
