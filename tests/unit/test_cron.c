/* test_cron.c — schedules (cron.c): firing instants in UTC and in zones. Month ends
 * (a 31st only in 31-day months), Feb 29 only in leap years, steps, ranges, names,
 * the day-of-month/day-of-week OR rule, 7 = Sunday, Berlin's spring-forward gap (02:30
 * skipped) and fall-back repeat (02:30 once), New York, @daily in a zone, previous
 * firings, logical dates, and enumerating the intervals between two dates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cron.h"

/* the zone tests need the system's time zone database (tzdata) */
static void need_zones(void) {
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/Europe/Berlin", dir && *dir ? dir : "/usr/share/zoneinfo");
    if (access(path, R_OK)) skip();
}

static fl_cron mk(const char *s, const char *tz) {
    fl_cron c;
    char err[200];
    int rc = cron_parse(&c, s, tz, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", s, err);
    assert_int_equal(rc, 0);
    return c;
}

static int64_t at(const char *s) {
    fl_cron utc = mk("@daily", NULL);
    int64_t t;
    assert_int_equal(cron_parse_when(&utc, s, false, &t), 0);
    return t;
}

/* the next firing after time string `from`, as a UTC time string */
static const char *nxt(const fl_cron *c, const char *from) {
    static char buf[32];
    int64_t t;
    assert_int_equal(cron_next(c, at(from), &t), 0);
    cron_fmt_time(t, buf);
    return buf;
}

/* the firings of c strictly after `from`, n of them, comma separated */
static const char *seq(const fl_cron *c, const char *from, int n) {
    static char buf[4096];
    buf[0] = 0;
    int64_t t = at(from);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cron_next(c, t, &t), 0);
        char s[32];
        cron_fmt_time(t, s);
        if (i) strcat(buf, ",");
        strcat(buf, s);
    }
    return buf;
}

static void test_parse_errors(void **st) {
    (void)st;
    fl_cron c;
    char err[200];
    assert_int_equal(cron_parse(&c, "@yearly", NULL, err, sizeof err), -1);
    assert_int_equal(cron_parse(&c, "0 0 * *", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "5 fields"));
    assert_int_equal(cron_parse(&c, "60 0 * * *", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "minute"));
    assert_int_equal(cron_parse(&c, "0 0 * * 8", NULL, err, sizeof err), -1);
    assert_int_equal(cron_parse(&c, "*/0 0 * * *", NULL, err, sizeof err), -1);
    assert_int_equal(cron_parse(&c, "5-1 0 * * *", NULL, err, sizeof err), -1);
    assert_true(cron_sub_daily("@hourly"));
    assert_true(cron_sub_daily("*/15 * * * *"));
    assert_true(cron_sub_daily("0 1,2 * * *"));
    assert_false(cron_sub_daily("30 3 * * *"));
    assert_false(cron_sub_daily("@daily"));
}

static void test_macros(void **st) {
    (void)st;
    fl_cron h = mk("@hourly", NULL), d = mk("@daily", NULL), w = mk("@weekly", NULL),
            m = mk("@monthly", NULL);
    assert_string_equal(nxt(&h, "2026-01-31T13:00:00Z"), "2026-01-31T14:00:00Z");
    assert_string_equal(nxt(&h, "2026-01-31T13:59:59Z"), "2026-01-31T14:00:00Z");
    assert_string_equal(nxt(&d, "2026-12-31T00:00:00Z"), "2027-01-01T00:00:00Z");
    /* 2026-01-01 is a Thursday: the next Sunday is the 4th */
    assert_string_equal(nxt(&w, "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00Z");
    assert_string_equal(nxt(&m, "2026-01-01T00:00:00Z"), "2026-02-01T00:00:00Z");
}

static void test_month_ends(void **st) {
    (void)st;
    fl_cron c = mk("0 12 31 * *", NULL);
    assert_string_equal(seq(&c, "2026-01-01T00:00:00Z", 7),
                        "2026-01-31T12:00:00Z,2026-03-31T12:00:00Z,2026-05-31T12:00:00Z,"
                        "2026-07-31T12:00:00Z,2026-08-31T12:00:00Z,2026-10-31T12:00:00Z,"
                        "2026-12-31T12:00:00Z");
    fl_cron c30 = mk("0 0 30 * *", NULL);
    assert_string_equal(seq(&c30, "2026-01-31T00:00:00Z", 2),
                        "2026-03-30T00:00:00Z,2026-04-30T00:00:00Z");
}

static void test_leap_days(void **st) {
    (void)st;
    fl_cron c = mk("0 0 29 2 *", NULL);
    /* over 8 years from 2024: 2024, 2028, and 2100 is not a leap year */
    assert_string_equal(seq(&c, "2023-06-01T00:00:00Z", 3),
                        "2024-02-29T00:00:00Z,2028-02-29T00:00:00Z,2032-02-29T00:00:00Z");
    assert_string_equal(nxt(&c, "2096-03-01T00:00:00Z"), "2104-02-29T00:00:00Z");
    fl_cron never = mk("0 0 30 2 *", NULL);
    int64_t t;
    assert_int_equal(cron_next(&never, 0, &t), -1);
    assert_int_equal(cron_prev(&never, 0, &t), -1);
}

static void test_steps_ranges_names(void **st) {
    (void)st;
    fl_cron q = mk("*/15 * * * *", NULL);
    assert_string_equal(seq(&q, "2026-01-31T23:40:00Z", 3),
                        "2026-01-31T23:45:00Z,2026-02-01T00:00:00Z,2026-02-01T00:15:00Z");
    fl_cron r = mk("10-20/5 8-9 * * *", NULL);
    assert_string_equal(seq(&r, "2026-01-01T00:00:00Z", 4),
                        "2026-01-01T08:10:00Z,2026-01-01T08:15:00Z,2026-01-01T08:20:00Z,"
                        "2026-01-01T09:10:00Z");
    /* names, case-insensitive: weekdays of March only */
    fl_cron n = mk("0 6 * MAR mon-fri", NULL);
    assert_string_equal(seq(&n, "2026-02-27T00:00:00Z", 3),
                        "2026-03-02T06:00:00Z,2026-03-03T06:00:00Z,2026-03-04T06:00:00Z");
    /* a/s: from a to the end of the field */
    fl_cron a = mk("50/5 0 * * *", NULL);
    assert_string_equal(seq(&a, "2026-01-01T00:00:00Z", 3),
                        "2026-01-01T00:50:00Z,2026-01-01T00:55:00Z,2026-01-02T00:50:00Z");
    /* 7 is Sunday */
    fl_cron s7 = mk("0 0 * * 7", NULL);
    assert_string_equal(nxt(&s7, "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00Z");
}

static void test_dom_dow_or(void **st) {
    (void)st;
    /* both restricted: the 13th OR a Friday (cron's rule) */
    fl_cron c = mk("0 0 13 * fri", NULL);
    /* Feb 2026: Fri 6th, Fri 13th, Fri 20th; the 13th once */
    assert_string_equal(seq(&c, "2026-02-01T00:00:00Z", 4),
                        "2026-02-06T00:00:00Z,2026-02-13T00:00:00Z,2026-02-20T00:00:00Z,"
                        "2026-02-27T00:00:00Z");
    assert_string_equal(nxt(&c, "2026-02-27T00:00:00Z"), "2026-03-06T00:00:00Z");
    assert_string_equal(nxt(&c, "2026-03-06T00:00:00Z"), "2026-03-13T00:00:00Z");
    /* day of week `*`: only the 13th */
    fl_cron d = mk("0 0 13 * *", NULL);
    assert_string_equal(nxt(&d, "2026-02-01T00:00:00Z"), "2026-02-13T00:00:00Z");
    /* day of month `*`: only Fridays (AND with a star) */
    fl_cron e = mk("0 0 * * 5", NULL);
    assert_string_equal(nxt(&e, "2026-02-07T00:00:00Z"), "2026-02-13T00:00:00Z");
}

static void test_berlin_spring_forward(void **st) {
    (void)st;
    need_zones();
    /* 2026-03-29: 02:00 CET becomes 03:00 CEST, 02:30 does not exist */
    fl_cron c = mk("30 2 * * *", "Europe/Berlin");
    assert_string_equal(seq(&c, "2026-03-27T12:00:00Z", 3),
                        "2026-03-28T01:30:00Z,2026-03-30T00:30:00Z,2026-03-31T00:30:00Z");
    fl_cron h = mk("*/30 * * * *", "Europe/Berlin");
    /* 01:30 CET = 00:30Z, then 03:00 CEST = 01:00Z */
    assert_string_equal(seq(&h, "2026-03-29T00:00:00Z", 3),
                        "2026-03-29T00:30:00Z,2026-03-29T01:00:00Z,2026-03-29T01:30:00Z");
}

static void test_berlin_fall_back(void **st) {
    (void)st;
    need_zones();
    /* 2026-10-25: 03:00 CEST becomes 02:00 CET, 02:30 happens twice: fires once */
    fl_cron c = mk("30 2 * * *", "Europe/Berlin");
    assert_string_equal(seq(&c, "2026-10-24T12:00:00Z", 3),
                        "2026-10-25T00:30:00Z,2026-10-26T01:30:00Z,2026-10-27T01:30:00Z");
    /* asked from inside the repeat: the second 02:30 does not fire */
    assert_string_equal(nxt(&c, "2026-10-25T00:45:00Z"), "2026-10-26T01:30:00Z");
    /* hourly through the repeat: 02:00 once, 03:00 once (the hour between is 02:xx again) */
    fl_cron h = mk("0 * * * *", "Europe/Berlin");
    assert_string_equal(seq(&h, "2026-10-24T23:30:00Z", 4),
                        "2026-10-25T00:00:00Z,2026-10-25T02:00:00Z,2026-10-25T03:00:00Z,"
                        "2026-10-25T04:00:00Z");
    /* previous firings walk the same set */
    int64_t t;
    assert_int_equal(cron_prev(&h, at("2026-10-25T02:00:00Z"), &t), 0);
    char b[32];
    cron_fmt_time(t, b);
    assert_string_equal(b, "2026-10-25T00:00:00Z");
}

static void test_new_york(void **st) {
    (void)st;
    need_zones();
    fl_cron c = mk("0 9 * * *", "America/New_York");
    /* EST (-5) before 2026-03-08, EDT (-4) after */
    assert_string_equal(seq(&c, "2026-03-06T20:00:00Z", 3),
                        "2026-03-07T14:00:00Z,2026-03-08T13:00:00Z,2026-03-09T13:00:00Z");
    /* TZ is restored: the process's zone is untouched */
    fl_cron d = mk("@daily", "America/New_York");
    assert_string_equal(nxt(&d, "2026-07-01T00:00:00Z"), "2026-07-01T04:00:00Z");
    char buf[32];
    cron_logical(&d, at("2026-07-01T04:00:00Z"), false, buf);
    assert_string_equal(buf, "2026-07-01");
    cron_logical(&d, at("2026-07-01T04:00:00Z"), true, buf);
    assert_string_equal(buf, "2026-07-01T04:00:00Z");
}

static void test_daily_in_zone(void **st) {
    (void)st;
    need_zones();
    fl_cron d = mk("@daily", "Europe/Berlin");
    assert_string_equal(seq(&d, "2026-03-27T12:00:00Z", 3),
                        "2026-03-27T23:00:00Z,2026-03-28T23:00:00Z,2026-03-29T22:00:00Z");
    char buf[32];
    cron_logical(&d, at("2026-03-28T23:00:00Z"), false, buf);
    assert_string_equal(buf, "2026-03-29");
    /* a date's start in the zone */
    int64_t t;
    assert_int_equal(cron_parse_when(&d, "2026-03-29", false, &t), 0);
    cron_fmt_time(t, buf);
    assert_string_equal(buf, "2026-03-28T23:00:00Z");
    assert_int_equal(cron_parse_when(&d, "2026-03-29", true, &t), 0);
    cron_fmt_time(t, buf);
    assert_string_equal(buf, "2026-03-29T21:59:59Z");
    assert_int_equal(cron_parse_when(&d, "2026-02-30", false, &t), -1);
    assert_int_equal(cron_parse_when(&d, "yesterday", false, &t), -1);
}

/* the intervals whose start lies in [from, to], as `flowrun backfill` enumerates them */
static int count_intervals(const fl_cron *c, const char *from, const char *to, bool as_time,
                           char *first, char *last) {
    int64_t a, b, t;
    assert_int_equal(cron_parse_when(c, from, false, &a), 0);
    assert_int_equal(cron_parse_when(c, to, true, &b), 0);
    int n = 0;
    for (int rc = cron_next(c, a - 1, &t); !rc && t <= b; rc = cron_next(c, t, &t)) {
        cron_logical(c, t, as_time, n ? last : first);
        n++;
    }
    return n;
}

static void test_enumerate(void **st) {
    (void)st;
    need_zones();
    char first[32] = "", last[32] = "";
    fl_cron d = mk("@daily", NULL);
    assert_int_equal(count_intervals(&d, "2025-01-01", "2025-12-31", false, first, last), 365);
    assert_string_equal(first, "2025-01-01");
    assert_string_equal(last, "2025-12-31");
    assert_int_equal(count_intervals(&d, "2024-01-01", "2024-12-31", false, first, last), 366);
    fl_cron db = mk("@daily", "Europe/Berlin");
    assert_int_equal(count_intervals(&db, "2026-03-01", "2026-03-31", false, first, last), 31);
    assert_string_equal(last, "2026-03-31");
    fl_cron h = mk("@hourly", NULL);
    assert_int_equal(count_intervals(&h, "2026-01-01", "2026-01-02", true, first, last), 48);
    assert_string_equal(first, "2026-01-01T00:00:00Z");
    assert_string_equal(last, "2026-01-02T23:00:00Z");
    assert_int_equal(
        count_intervals(&h, "2026-01-01T05:00:00Z", "2026-01-01T07:00:00Z", true, first, last), 3);
    /* Berlin's spring-forward day has 23 hours, fall-back 25 wall hours but 24 firings */
    fl_cron hb = mk("@hourly", "Europe/Berlin");
    assert_int_equal(count_intervals(&hb, "2026-03-29", "2026-03-29", true, first, last), 23);
    assert_int_equal(count_intervals(&hb, "2026-10-25", "2026-10-25", true, first, last), 24);
    fl_cron w = mk("@weekly", NULL);
    assert_int_equal(count_intervals(&w, "2026-01-01", "2026-01-31", false, first, last), 4);
    assert_string_equal(first, "2026-01-04");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),       cmocka_unit_test(test_macros),
        cmocka_unit_test(test_month_ends),         cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_steps_ranges_names), cmocka_unit_test(test_dom_dow_or),
        cmocka_unit_test(test_berlin_spring_forward), cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_new_york),           cmocka_unit_test(test_daily_in_zone),
        cmocka_unit_test(test_enumerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
