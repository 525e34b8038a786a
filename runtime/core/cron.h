/*
 * cron.h — schedules as bitmasks, their firing instants, and the intervals between
 * them (issue 14). One parser for flowc (which reports its diagnostics from it) and
 * flowrun (backfill, serve, run --interval). Times are seconds since the epoch (UTC);
 * a schedule may carry a zone (`tz "Europe/Berlin"`), in which its fields are read as
 * wall-clock times. Semantics and design: cron.c's header and docs/scheduling.md.
 */
#ifndef FLOW_CRON_H
#define FLOW_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_cron {
    uint64_t minute;      /* bit m: minute m (0-59) */
    uint32_t hour;        /* bit h: hour h (0-23) */
    uint32_t mday;        /* bit d: day of month d (1-31) */
    uint16_t month;       /* bit m: month m (1-12) */
    uint8_t wday;         /* bit w: weekday w (0 = Sunday .. 6; a 7 in the text is Sunday) */
    bool mday_star;       /* the day-of-month field was `*` (or `*\/step`) */
    bool wday_star;       /* the same for day of week; both restricted: either matches */
    char tz[128];         /* zone name, "" = UTC */
} fl_cron;

/* The macros a schedule may be: @hourly @daily @weekly @monthly. */
extern const char *const cron_macros[];
enum { CRON_NMACROS = 4 };
/* Field names, in order: "minute", "hour", "day of month", "month", "day of week". */
extern const char *const cron_field_names[];

/* Parse field f (0 = minute .. 4 = day of week) of a cron line into *bits; NULL when
 * valid, else why not (static text). star: set when the field starts with `*`. */
const char *cron_field(const char *s, int f, uint64_t *bits, bool *star);

/* Parse a schedule (a macro or five fields) in zone tz (NULL or "" = UTC). 0, or -1
 * with why in err. The zone is not checked here (flowc checks it exists). */
int cron_parse(fl_cron *c, const char *sched, const char *tz, char *err, size_t errlen);

/* Does the schedule fire more than once on some day? (a date flow needs it not to) */
bool cron_sub_daily(const char *sched);

/* The first firing strictly after t, or strictly before t; 0, or -1 when there is
 * none within 50 years (only an impossible line, e.g. `0 0 30 2 *`, has none). In a
 * zone: a wall time that does not exist (spring forward) is skipped, one that occurs
 * twice (fall back) fires once, at its first occurrence. */
int cron_next(const fl_cron *c, int64_t t, int64_t *out);
int cron_prev(const fl_cron *c, int64_t t, int64_t *out);

/* The logical date of the interval starting at firing `start`: its calendar day in
 * the schedule's zone (as_time false, "YYYY-MM-DD"), or the instant in UTC (as_time,
 * "YYYY-MM-DDTHH:MM:SSZ"). buf has at least 21 bytes. */
void cron_logical(const fl_cron *c, int64_t start, bool as_time, char *buf);

/* A date ("YYYY-MM-DD": its midnight in the schedule's zone, `end` false; the end of
 * that day, `end` true) or a UTC time string to seconds. 0, or -1 if s is neither. */
int cron_parse_when(const fl_cron *c, const char *s, bool end, int64_t *out);

/* Seconds to "YYYY-MM-DDTHH:MM:SSZ" / days since the epoch to "YYYY-MM-DD". */
void cron_fmt_time(int64_t t, char *buf);
void cron_fmt_day(int64_t days, char *buf);
/* Days since 1970-01-01 of the civil date y-m-d (proleptic Gregorian). */
int64_t cron_days(int64_t y, int m, int d);

#endif
