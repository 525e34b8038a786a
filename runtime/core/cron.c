/*
 * cron.c — a schedule (a macro or a POSIX five-field cron line) read into bitmasks,
 * and the instants it fires at, in UTC or in a time zone (issue 14; the user's view is
 * docs/scheduling.md).
 *
 * Fields: a comma-separated list of `*`, a number or a name (jan..dec, sun..sat), or a
 * range a-b, each with an optional /step (`a/s` means a to the field's end, step s);
 * 7 is Sunday as 0 is. The macros are @hourly (0 * * * *), @daily (0 0 * * *),
 * @weekly (0 0 * * 0) and @monthly (0 0 1 * *). As in Vixie cron and cronie, when both
 * day of month and day of week are restricted (neither starts with `*`), a day matches
 * if EITHER matches; otherwise both must. flowc checks schedules with cron_field and
 * cron_sub_daily, so flowc and flowrun share one parser.
 *
 * Firing instants: the search walks calendar days (in the schedule's zone) from t's
 * day, and in a matching day its hours and minutes in order — at most 50 years of
 * days, which `0 0 29 2 *` (eight years between some leap days) is far from.
 * In a zone, each matching wall time is turned into the UTC instants that show it: none
 * when it does not exist (spring forward: skipped), two when it is repeated (fall back:
 * the first one fires, once). The set of firings is therefore {first instant of each
 * existing matching wall time}; cron_next and cron_prev both walk that set.
 *
 * Time zones come from the C library (TZ + tzset + localtime_r, tm_gmtoff): it reads
 * the system's zone files with their rules, including the POSIX rule for years beyond
 * the file's table, which a reader of our own would have to repeat. TZ is process-wide,
 * so a zone's computation sets TZ under a mutex and restores it afterwards; callers run
 * them on the main thread before workers start (flowrun backfill, run --interval, serve)
 * — a worker thread reading the local time meanwhile would see the zone. UTC schedules
 * never touch TZ: their arithmetic is civil-date math.
 */
#include "cron.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "value.h"

const char *const cron_macros[] = {"@hourly", "@daily", "@weekly", "@monthly"};
static const char *const macro_lines[] = {"0 * * * *", "0 0 * * *", "0 0 * * 0", "0 0 1 * *"};
const char *const cron_field_names[] = {"minute", "hour", "day of month", "month",
                                        "day of week"};

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* one number or name of field f; returns the end, or NULL */
static const char *cron_atom(const char *s, int f, int *out) {
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
        *out = (int)v;
        return s;
    }
    const char *const *names = f == 3 ? months : f == 4 ? wdays : NULL;
    int n = f == 3 ? 12 : 7;
    for (int i = 0; names && i < n; i++)
        if (!strncasecmp(s, names[i], 3) && !isalpha((unsigned char)s[3])) {
            *out = f == 3 ? i + 1 : i;
            return s + 3;
        }
    return NULL;
}

const char *cron_field(const char *s, int f, uint64_t *bits, bool *star) {
    static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    uint64_t b = 0;
    if (star) *star = *s == '*';
    for (;;) {
        int a = lo[f], z = hi[f], step = 1;
        if (*s == '*') {
            s++;
        } else {
            const char *e = cron_atom(s, f, &a);
            if (!e) return "expected a number, a range, a list or *";
            s = e;
            z = a;
            if (*s == '-') {
                e = cron_atom(s + 1, f, &z);
                if (!e) return "expected the end of the range";
                s = e;
                if (z < a) return "a range must run upwards";
            } else if (*s == '/') {
                z = hi[f];
            }
            if (a < lo[f] || z > hi[f]) return "value out of range";
        }
        if (*s == '/') {
            const char *e = s + 1;
            if (!isdigit((unsigned char)*e)) return "expected a step after /";
            e = cron_atom(e, 0, &step);
            if (step <= 0) return "a step must be greater than 0";
            s = e;
        }
        for (int v = a; v <= z; v += step) b |= 1ull << (f == 4 && v == 7 ? 0 : v);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s) return "unexpected character";
        if (bits) *bits = b;
        return NULL;
    }
}

int cron_parse(fl_cron *c, const char *sched, const char *tz, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (tz && strlen(tz) >= sizeof c->tz) {
        snprintf(err, errlen, "time zone name too long");
        return -1;
    }
    snprintf(c->tz, sizeof c->tz, "%s", tz && strcmp(tz, "UTC") ? tz : "");
    const char *line = sched;
    if (sched[0] == '@') {
        line = NULL;
        for (int i = 0; i < CRON_NMACROS; i++)
            if (!strcmp(sched, cron_macros[i])) line = macro_lines[i];
        if (!line) {
            snprintf(err, errlen, "unknown schedule \"%s\"", sched);
            return -1;
        }
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", line);
    char *fields[5], *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
        if (n++ < 5) fields[n - 1] = tok;
    if (n != 5) {
        snprintf(err, errlen, "a cron schedule has 5 fields, \"%s\" has %d", sched, n);
        return -1;
    }
    uint64_t bits[5];
    bool star[5];
    for (int i = 0; i < 5; i++) {
        const char *why = cron_field(fields[i], i, &bits[i], &star[i]);
        if (why) {
            snprintf(err, errlen, "bad %s field '%s': %s", cron_field_names[i], fields[i], why);
            return -1;
        }
    }
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->mday = (uint32_t)bits[2];
    c->month = (uint16_t)bits[3];
    c->wday = (uint8_t)bits[4];
    c->mday_star = star[2];
    c->wday_star = star[4];
    return 0;
}

bool cron_sub_daily(const char *s) {
    if (s[0] == '@') return !strcmp(s, "@hourly");
    for (int f = 0; f < 2; f++) {
        while (*s == ' ' || *s == '\t') s++;
        if (!isdigit((unsigned char)*s)) return true;
        while (isdigit((unsigned char)*s)) s++;
        if (*s != ' ' && *s != '\t') return true;
    }
    return false;
}

/* ---- civil dates (Howard Hinnant's algorithms) ---- */

int64_t cron_days(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floordiv(int64_t a, int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void cron_fmt_day(int64_t days, char *buf) {
    int64_t y;
    int m, d;
    civil(days, &y, &m, &d);
    snprintf(buf, 11, "%04d-%02d-%02d", (int)y, m, d);
}

void cron_fmt_time(int64_t t, char *buf) {
    int64_t days = floordiv(t, 86400), s = t - days * 86400;
    cron_fmt_day(days, buf);
    unsigned h = (unsigned)(s / 3600) % 24u, mi = (unsigned)(s / 60 % 60) % 60u, se = (unsigned)(s % 60) % 60u;
    snprintf(buf + 10, 11, "T%02u:%02u:%02uZ", h, mi, se);
}

/* ---- zones ---- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    const fl_cron *c;
    char *saved; /* TZ before, or NULL (unset) */
    bool had;
} zone_scope;

static void zone_enter(zone_scope *z, const fl_cron *c) {
    z->c = c;
    if (!c->tz[0]) return;
    pthread_mutex_lock(&tz_lock);
    const char *old = getenv("TZ");
    z->had = old != NULL;
    z->saved = old ? strdup(old) : NULL;
    setenv("TZ", c->tz, 1);
    tzset();
}

static void zone_leave(zone_scope *z) {
    if (!z->c->tz[0]) return;
    if (z->had && z->saved) setenv("TZ", z->saved, 1);
    else unsetenv("TZ");
    tzset();
    free(z->saved);
    pthread_mutex_unlock(&tz_lock);
}

/* the zone's offset from UTC at instant t, in seconds (inside zone_enter) */
static int64_t offset_at(const fl_cron *c, int64_t t) {
    if (!c->tz[0]) return 0;
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return 0;
    return tm.tm_gmtoff;
}

/* The first instant whose wall clock shows `wall` (seconds of a naive local time), or
 * -1 when no instant does (a spring-forward gap). */
static int wall_to_utc(const fl_cron *c, int64_t wall, int64_t *out) {
    if (!c->tz[0]) {
        *out = wall;
        return 0;
    }
    int64_t o[2] = {offset_at(c, wall - 86400), offset_at(c, wall + 86400)};
    bool found = false;
    for (int i = 0; i < 2; i++) {
        int64_t u = wall - o[i];
        if (offset_at(c, u) == o[i] && (!found || u < *out)) {
            *out = u;
            found = true;
        }
    }
    return found ? 0 : -1;
}

static bool day_matches(const fl_cron *c, int64_t days) {
    int64_t y;
    int m, d;
    civil(days, &y, &m, &d);
    if (!(c->month >> m & 1)) return false;
    int w = (int)(((days + 4) % 7 + 7) % 7);
    bool dm = c->mday >> d & 1, wm = c->wday >> w & 1;
    return c->mday_star || c->wday_star ? dm && wm : dm || wm;
}

enum { SEARCH_DAYS = 366 * 50 };

/* dir +1: first firing > t; dir -1: last firing < t */
static int cron_find(const fl_cron *c, int64_t t, int dir, int64_t *out) {
    zone_scope z;
    zone_enter(&z, c);
    int64_t tw = t + offset_at(c, t); /* t as a wall time */
    int64_t day = floordiv(tw, 86400);
    int rc = -1;
    for (int i = 0; i < SEARCH_DAYS && rc; i++, day += dir) {
        if (!day_matches(c, day)) continue;
        for (int k = 0; k < 24 * 60 && rc; k++) {
            int hm = dir > 0 ? k : 24 * 60 - 1 - k;
            int h = hm / 60, mi = hm % 60;
            if (!(c->hour >> h & 1) || !(c->minute >> mi & 1)) continue;
            int64_t wall = day * 86400 + h * 3600 + mi * 60, u;
            /* offsets differ by far less than 4 hours: skip walls that cannot qualify */
            if (dir > 0 ? wall < tw - 4 * 3600 : wall > tw + 4 * 3600) continue;
            if (wall_to_utc(c, wall, &u)) continue;
            if (dir > 0 ? u > t : u < t) {
                *out = u;
                rc = 0;
            }
        }
    }
    zone_leave(&z);
    return rc;
}

int cron_next(const fl_cron *c, int64_t t, int64_t *out) {
    return cron_find(c, t, +1, out);
}

int cron_prev(const fl_cron *c, int64_t t, int64_t *out) {
    return cron_find(c, t, -1, out);
}

void cron_logical(const fl_cron *c, int64_t start, bool as_time, char *buf) {
    if (as_time) {
        cron_fmt_time(start, buf);
        return;
    }
    zone_scope z;
    zone_enter(&z, c);
    int64_t wall = start + offset_at(c, start);
    zone_leave(&z);
    cron_fmt_day(floordiv(wall, 86400), buf);
}

int cron_parse_when(const fl_cron *c, const char *s, bool end, int64_t *out) {
    size_t n = strlen(s);
    if (fv_date_valid(s, n)) {
        int64_t days = cron_days(atoi(s), atoi(s + 5), atoi(s + 8)) + (end ? 1 : 0);
        /* local midnight; if midnight does not exist (a gap at 00:00), the day starts
         * at the first instant after the gap */
        zone_scope z;
        zone_enter(&z, c);
        int64_t u = 0;
        int64_t wall = days * 86400;
        while (wall_to_utc(c, wall, &u)) wall += 60;
        zone_leave(&z);
        *out = end ? u - 1 : u;
        return 0;
    }
    if (fv_time_valid(s, n)) {
        int64_t days = cron_days(atoi(s), atoi(s + 5), atoi(s + 8));
        *out = days * 86400 + atoi(s + 11) * 3600 + atoi(s + 14) * 60 + atoi(s + 17);
        return 0;
    }
    return -1;
}
