// SPDX-License-Identifier: MIT
/*
 * Unit tests for cron expressions (src/lib/cron.c): hand-checked next firing
 * times, error messages for invalid expressions, and a cross-check of
 * cron_next against a brute-force, minute-by-minute reference (calendar from
 * libc's gmtime_r) on a few hundred random expressions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"
#include "utc_text.h"

#define YEAR_S (366 * 86400LL)

/* Does c fire at minute t? Calendar fields from gmtime_r, the Vixie day rule written out. */
static bool ref_match(const struct cron_expr *c, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	assert_non_null(gmtime_r(&tt, &tm));
	if (!(c->minute >> tm.tm_min & 1) || !(c->hour >> tm.tm_hour & 1) || !(c->month >> (tm.tm_mon + 1) & 1))
		return false;
	bool dom = c->dom >> tm.tm_mday & 1, dow = c->dow >> tm.tm_wday & 1;
	return (c->dom_any || c->dow_any) ? dom && dow : dom || dow;
}

/*
 * Up to max firing times after `after` and at or before `limit`, found by
 * trying every minute (the day's verdict is cached per day: a day that
 * matches nothing is still walked minute by minute, just cheaply).
 */
static int ref_fires(const struct cron_expr *c, int64_t after, int64_t limit, int64_t *out, int max)
{
	int n = 0;
	int64_t t = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
	int64_t day = INT64_MIN;
	bool day_ok = false;
	for (; t <= limit && n < max; t += 60) {
		int64_t d = t >= 0 ? t / 86400 : (t - 86399) / 86400;
		if (d != day) {
			day = d;
			/* midnight, with the minute and hour checks neutralised */
			struct cron_expr dayonly = *c;
			dayonly.minute = ~0ull;
			dayonly.hour = ~0u;
			day_ok = ref_match(&dayonly, d * 86400);
		}
		if (day_ok && ref_match(c, t))
			out[n++] = t;
	}
	return n;
}

static struct cron_expr parse_ok(const char *text)
{
	struct cron_expr c;
	struct err err = { 0 };
	if (cron_parse(text, &c, &err) != 0)
		fail_msg("\"%s\" rejected: %s", text, err.msg);
	return c;
}

/* ---- hand-checked cases ---- */

static const struct {
	const char *expr;
	const char *start;
	const char *next[3];	/* NULL: cron_next returns -1 */
} cases[] = {
	{ "*/15 * * * *", "2023-12-31 23:50", { "2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:30" } },
	{ "*/15 * * * *", "2024-01-01 00:14:59", { "2024-01-01 00:15", "2024-01-01 00:30", "2024-01-01 00:45" } },
	{ "0 0 29 2 *", "2024-03-01 00:00", { "2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00" } },
	{ "0 0 29 2 *", "2096-02-29 00:00", { "2104-02-29 00:00", "2108-02-29 00:00", "2112-02-29 00:00" } },
	{ "0 12 * * mon-fri", "2024-05-31 13:00", { "2024-06-03 12:00", "2024-06-04 12:00", "2024-06-05 12:00" } },
	/* Vixie: both day fields restricted, so the 1st, the 15th, or any Friday */
	{ "0 0 1,15 * 5", "2024-02-10 00:00", { "2024-02-15 00:00", "2024-02-16 00:00", "2024-02-23 00:00" } },
	{ "0 0 1,15 * 5", "2024-02-23 00:00", { "2024-03-01 00:00", "2024-03-08 00:00", "2024-03-15 00:00" } },
	{ "30 4 1 jan,jul *", "2024-01-01 04:30", { "2024-07-01 04:30", "2025-01-01 04:30", "2025-07-01 04:30" } },
	{ "@weekly", "2024-02-28 12:00", { "2024-03-03 00:00", "2024-03-10 00:00", "2024-03-17 00:00" } },
	{ "5-55/10 8-18/2 * * *", "2024-01-01 18:50", { "2024-01-01 18:55", "2024-01-02 08:05", "2024-01-02 08:15" } },
	{ "0 0 31 * *", "2024-01-31 00:00", { "2024-03-31 00:00", "2024-05-31 00:00", "2024-07-31 00:00" } },
	{ "0 0 30 2 *", "2024-01-01 00:00", { NULL, NULL, NULL } },
	{ "0 0 31 4,6,9,11 *", "2024-01-01 00:00", { NULL, NULL, NULL } },
	{ "@yearly", "2023-06-01 00:00", { "2024-01-01 00:00", "2025-01-01 00:00", "2026-01-01 00:00" } },
	{ "@annually", "2024-12-31 23:59:59", { "2025-01-01 00:00", "2026-01-01 00:00", "2027-01-01 00:00" } },
	{ "59 23 31 12 *", "2024-12-31 23:59", { "2025-12-31 23:59", "2026-12-31 23:59", "2027-12-31 23:59" } },
	{ "@monthly", "2024-01-31 12:00", { "2024-02-01 00:00", "2024-03-01 00:00", "2024-04-01 00:00" } },
	{ "@daily", "2024-02-28 00:00", { "2024-02-29 00:00", "2024-03-01 00:00", "2024-03-02 00:00" } },
	{ "@hourly", "2024-02-29 23:30", { "2024-03-01 00:00", "2024-03-01 01:00", "2024-03-01 02:00" } },
	{ "0 0 * * 7", "2023-12-30 12:00", { "2023-12-31 00:00", "2024-01-07 00:00", "2024-01-14 00:00" } },
	/* day-of-month starts with '*': a day must match both, so odd-numbered Sundays */
	{ "0 0 */2 * sun", "2024-03-01 00:00", { "2024-03-03 00:00", "2024-03-17 00:00", "2024-03-31 00:00" } },
	/* N/S runs to the end of the field: Friday, Saturday, Sunday (7) */
	{ "0 9 * feb 5/1", "2024-02-01 00:00", { "2024-02-02 09:00", "2024-02-03 09:00", "2024-02-04 09:00" } },
	{ "10/20 * * * *", "2024-01-01 00:00", { "2024-01-01 00:10", "2024-01-01 00:30", "2024-01-01 00:50" } },
	{ "0 0 29 feb MON", "2024-02-26 00:00", { "2024-02-29 00:00", "2025-02-03 00:00", "2025-02-10 00:00" } },
	{ "0 0 1 1 *", "1969-06-01 00:00", { "1970-01-01 00:00", "1971-01-01 00:00", "1972-01-01 00:00" } },
	{ "0 0 * * sun", "1969-12-24 00:00", { "1969-12-28 00:00", "1970-01-04 00:00", "1970-01-11 00:00" } },
	{ "\t 0  0\t1  jan-mar,DEC  */1 ", "2024-02-01 00:00", { "2024-03-01 00:00", "2024-12-01 00:00", "2025-01-01 00:00" } },
	{ "0,30 0 1 3 *", "2023-02-28 23:59", { "2023-03-01 00:00", "2023-03-01 00:30", "2024-03-01 00:00" } },
};

static void test_known_times(void **state)
{
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct cron_expr c = parse_ok(cases[i].expr);
		int64_t t = at(cases[i].start), want[3], ref[3];
		int nwant = 0;
		for (int k = 0; k < 3; k++)
			if (cases[i].next[k])
				want[nwant++] = at(cases[i].next[k]);
		/* the brute-force reference agrees with the hand-written table */
		int nref = 0;
		for (int64_t r = t; nref < 3 && ref_fires(&c, r, r + 9 * YEAR_S, &ref[nref], 1) == 1; r = ref[nref++])
			;
		if (nref != nwant)
			fail_msg("\"%s\": the reference finds %d times, the table has %d", cases[i].expr, nref, nwant);
		for (int k = 0; k < nwant; k++)
			assert_int_equal(ref[k], want[k]);
		for (int k = 0; k < 3; k++) {
			int64_t got = cron_next(&c, t);
			int64_t exp = k < nwant ? want[k] : -1;
			if (got != exp) {
				char g[64], w[64], s[64];
				show(got, g, sizeof g), show(exp, w, sizeof w), show(t, s, sizeof s);
				fail_msg("\"%s\" after %s: got %s, want %s", cases[i].expr, s, g, w);
			}
			if (got < 0)
				break;
			t = got;
		}
	}
}

static void test_bits(void **state)
{
	struct cron_expr c = parse_ok("5-55/10 8-18/2 * * *");
	assert_int_equal(c.minute, 1ull << 5 | 1ull << 15 | 1ull << 25 | 1ull << 35 | 1ull << 45 | 1ull << 55);
	assert_int_equal(c.hour, 1u << 8 | 1u << 10 | 1u << 12 | 1u << 14 | 1u << 16 | 1u << 18);
	assert_true(c.dom_any && c.dow_any);
	assert_int_equal(c.dom, 0xfffffffeu);
	assert_int_equal(c.month, 0x1ffe);
	assert_int_equal(c.dow, 0x7f);

	c = parse_ok("* * * * 7");
	assert_int_equal(c.dow, 1);
	c = parse_ok("* * * * 0-7/2");
	assert_int_equal(c.dow, 1 | 4 | 16 | 64);
	c = parse_ok("* * * * sat,Sun,MON-wed");
	assert_int_equal(c.dow, 1 | 2 | 4 | 8 | 64);
	assert_false(c.dow_any);
	c = parse_ok("* * * * fri-sun");
	assert_int_equal(c.dow, 1 | 32 | 64);
	c = parse_ok("* * * * sun-sun");
	assert_int_equal(c.dow, 1);
	c = parse_ok("* * * * mon-sun/2");
	assert_int_equal(c.dow, 2 | 8 | 32 | 1);
	c = parse_ok("* * * Jan-MAR/2,dec *");
	assert_int_equal(c.month, 1 << 1 | 1 << 3 | 1 << 12);
	c = parse_ok("59 23 31 12 6");
	assert_int_equal(c.minute, 1ull << 59);
	assert_int_equal(c.hour, 1u << 23);
	assert_int_equal(c.dom, 1u << 31);
	assert_false(c.dom_any || c.dow_any);
	c = parse_ok("*/60 */24 */31 */12 */7");
	assert_int_equal(c.minute, 1);
	assert_int_equal(c.hour, 1);
	assert_int_equal(c.dom, 2);
	assert_int_equal(c.month, 2);
	assert_int_equal(c.dow, 1);
	assert_true(c.dom_any && c.dow_any);
	c = parse_ok("*,5 * 1 * *"); /* starts with '*': Vixie's DOM_STAR/DOW_STAR test */
	assert_int_equal(c.minute, (1ull << 60) - 1);
	c = parse_ok("@weekly");
	assert_true(c.dom_any);
	assert_false(c.dow_any);
	assert_int_equal(c.dow, 1);
	c = parse_ok("@MIDNIGHT");
	assert_int_equal(c.minute, 1);
	assert_int_equal(c.hour, 1);
	/* exactly CRON_EXPR_MAX bytes is fine */
	char buf[CRON_EXPR_MAX + 1];
	memset(buf, ' ', CRON_EXPR_MAX);
	memcpy(buf, "* * * * *", 9);
	buf[CRON_EXPR_MAX] = 0;
	c = parse_ok(buf);
	assert_int_equal(c.hour, 0xffffff);
}

/* ---- invalid expressions ---- */

static const struct {
	const char *expr;
	const char *msg;	/* the whole error line */
} bad[] = {
	{ "", "cron expression is empty" },
	{ " \t ", "cron expression is empty" },
	{ "* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4" },
	{ "* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6" },
	{ "*", "expected 5 fields (minute hour day-of-month month day-of-week), got 1" },
	{ "61 * * * *", "minute field: 61 is out of range 0-59" },
	{ "60 * * * *", "minute field: 60 is out of range 0-59" },
	{ "* 24 * * *", "hour field: 24 is out of range 0-23" },
	{ "* * 0 * *", "day-of-month field: 0 is out of range 1-31" },
	{ "* * 32 * *", "day-of-month field: 32 is out of range 1-31" },
	{ "* * * 0 *", "month field: 0 is out of range 1-12" },
	{ "* * * 13 *", "month field: 13 is out of range 1-12" },
	{ "* * * * 8", "day-of-week field: 8 is out of range 0-7" },
	{ "99999999999999999999 * * * *", "minute field: 99999999999999999999 is out of range 0-59" },
	{ "* * * * fri2", "day-of-week field: unknown name \"fri2\"" },
	{ "* * * * friday", "day-of-week field: unknown name \"friday\"" },
	{ "* * * foo *", "month field: unknown name \"foo\"" },
	{ "* * * * jan", "day-of-week field: unknown name \"jan\"" },
	{ "jan * * * *", "minute field: \"jan\" is not a number" },
	{ "* * mon * *", "day-of-month field: \"mon\" is not a number" },
	{ "5-3 * * * *", "minute field: range \"5-3\" is reversed (write the smaller value first)" },
	{ "* * * * fri-mon", "day-of-week field: range \"fri-mon\" is reversed (write the smaller value first)" },
	{ "*/0 * * * *", "minute field: step 0 is out of range 1-60" },
	{ "*/61 * * * *", "minute field: step 61 is out of range 1-60" },
	{ "* * * * */8", "day-of-week field: step 8 is out of range 1-7" },
	{ "* 1-5/25 * * *", "hour field: step 25 is out of range 1-24" },
	{ "*/ * * * *", "minute field: missing step after '/' in \"*/\"" },
	{ "*/x * * * *", "minute field: step in \"*/x\" is not a number" },
	{ "*/5x * * * *", "minute field: unexpected 'x' in \"*/5x\"" },
	{ "1,,2 * * * *", "minute field: empty item in \"1,,2\"" },
	{ "1, * * * *", "minute field: empty item in \"1,\"" },
	{ ",1 * * * *", "minute field: empty item in \",1\"" },
	{ "1- * * * *", "minute field: missing value at the end of \"1-\"" },
	{ "1-2-3 * * * *", "minute field: unexpected '-' in \"1-2-3\"" },
	{ "-5 * * * *", "minute field: unexpected '-' in \"-5\"" },
	{ "*5 * * * *", "minute field: unexpected '5' in \"*5\"" },
	{ "** * * * *", "minute field: unexpected '*' in \"**\"" },
	{ "1-* * * * *", "minute field: unexpected '*' in \"1-*\"" },
	{ "5x * * * *", "minute field: unexpected 'x' in \"5x\"" },
	{ "? * * * *", "minute field: unexpected '?' in \"?\"" },
	{ "* * * * 5L", "day-of-week field: unexpected 'L' in \"5L\"" },
	{ "@reboot", "@reboot is not supported: a schedule needs times to fire at" },
	{ "@every 5m", "unknown macro \"@every\" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)" },
	{ "@", "unknown macro \"@\" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)" },
	{ "@daily echo", "@daily takes no fields, got \"echo\" after it" },
	{ "* * * * *\n", "cron expression has a control character (0x0a) at byte 9" },
	{ "*\r* * * *", "cron expression has a control character (0x0d) at byte 1" },
	{ "* * * * \x7f", "cron expression has a control character (0x7f) at byte 8" },
	{ "* * * * m\xc3\xa5n", "cron expression has a non-ASCII byte (0xc3) at byte 9" },
};

static void expect_bad(const char *text, size_t len, const char *msg)
{
	struct cron_expr c;
	memset(&c, 0xa5, sizeof c);
	struct err err = { 0 };
	assert_int_equal(cron_parsen(text, len, &c, &err), -400);
	assert_int_equal(err.code, 400);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("\"%.*s\": error \"%s\", want \"%s\"", (int)len, text, err.msg, msg);
	/* cleared on failure */
	assert_int_equal(c.minute, 0);
	assert_int_equal(c.dow, 0);
	assert_false(c.dom_any);
	/* err may be NULL */
	assert_int_equal(cron_parsen(text, len, &c, NULL), -400);
}

static void test_invalid(void **state)
{
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		expect_bad(bad[i].expr, strlen(bad[i].expr), bad[i].msg);
	expect_bad("* * *\0* *", 9, "cron expression has a control character (0x00) at byte 5");
	char buf[CRON_EXPR_MAX + 2];
	memset(buf, ' ', sizeof buf);
	memcpy(buf, "* * * * *", 9);
	buf[CRON_EXPR_MAX + 1] = 0;
	expect_bad(buf, strlen(buf), "cron expression is longer than 256 bytes");
	struct cron_expr c;
	assert_int_equal(cron_parse(buf, &c, NULL), -400);
}

static void test_limits(void **state)
{
	struct cron_expr c = parse_ok("* * * * *");
	assert_int_equal(cron_next(&c, INT64_MAX), -1);
	assert_int_equal(cron_next(&c, INT64_MIN), -1);
	assert_int_equal(cron_next(&c, CRON_TIME_MIN - 1), -1);
	assert_int_equal(cron_next(&c, CRON_TIME_MIN), CRON_TIME_MIN + 60);
	assert_int_equal(cron_next(&c, CRON_TIME_MAX + 1), -1);
	assert_int_equal(cron_next(&c, CRON_TIME_MAX), CRON_TIME_MAX + 1);	/* year 10000 */
	assert_int_equal(cron_next(&c, -1), 0);
	assert_int_equal(cron_next(&c, -61), -60);
	assert_int_equal(cron_next(&c, 0), 60);
	/* a zeroed (never parsed) expression never fires */
	struct cron_expr none = { 0 };
	assert_int_equal(cron_next(&none, 0), -1);
	/* the search is bounded by days, not minutes: many impossible searches stay cheap */
	c = parse_ok("0 0 30 2 *");
	clock_t t0 = clock();
	for (int i = 0; i < 2000; i++)
		assert_int_equal(cron_next(&c, i * 86400LL * 3), -1);
	double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
	if (s > 5)
		fail_msg("2000 impossible searches took %.1f s", s);
	/* the latest possible gap: 2096-02-29 to 2104-02-29 is found */
	c = parse_ok("59 23 29 2 *");
	assert_int_equal(cron_next(&c, at("2096-02-29 23:59")), at("2104-02-29 23:59"));
}

/* ---- random expressions against the reference ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static int rnd_between(int lo, int hi)
{
	return lo + (int)rnd((unsigned)(hi - lo + 1));
}

static void put_value(char **p, int field, int v)
{
	static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
					      "jul", "aug", "sep", "oct", "nov", "dec" };
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", "SUN" };
	if (field == 3 && rnd(3) == 0)
		*p += sprintf(*p, "%s", months[v - 1]);
	else if (field == 4 && rnd(3) == 0)
		*p += sprintf(*p, "%s", days[v]);
	else
		*p += sprintf(*p, "%d", v);
}

/* A random valid field: mostly sparse lists, sometimes '*' forms. */
static void gen_field(char **p, int field)
{
	static const int lo[] = { 0, 0, 1, 1, 0 }, hi[] = { 59, 23, 31, 12, 7 }, span[] = { 60, 24, 31, 12, 7 };
	unsigned k = rnd(10);
	if (k < 3 + (field >= 2) * 2) {
		*p += sprintf(*p, "*");
		if (rnd(4) == 0)
			*p += sprintf(*p, "/%d", rnd_between(1, span[field]));
		return;
	}
	int items = rnd_between(1, 3);
	for (int i = 0; i < items; i++) {
		if (i)
			*p += sprintf(*p, ",");
		int a = rnd_between(lo[field], hi[field]);
		switch (rnd(4)) {
		case 0:
		case 1:
			put_value(p, field, a);
			break;
		case 2: {
			int b = rnd_between(a, hi[field]);
			put_value(p, field, a);
			*p += sprintf(*p, "-");
			put_value(p, field, b);
			if (rnd(2))
				*p += sprintf(*p, "/%d", rnd_between(1, span[field]));
			break;
		}
		default:
			put_value(p, field, a);
			*p += sprintf(*p, "/%d", rnd_between(1, span[field]));
		}
	}
}

static void test_random_against_reference(void **state)
{
	enum { EXPRS = 400, FIRES = 6 };
	static const char *const macro[] = { "@yearly", "@monthly", "@weekly", "@daily", "@hourly" };
	int64_t lo = at("1970-01-01 00:00"), hi = at("2110-01-01 00:00"), leap = at("2096-01-01 00:00");
	int total = 0, never = 0;
	for (int i = 0; i < EXPRS; i++) {
		char text[CRON_EXPR_MAX + 64], *p = text;
		if (rnd(20) == 0) {
			sprintf(p, "%s", macro[rnd(5)]);
		} else {
			for (int f = 0; f < 5; f++) {
				if (f)
					p += sprintf(p, rnd(5) ? " " : " \t ");
				gen_field(&p, f);
			}
		}
		struct cron_expr c = parse_ok(text);
		int64_t start = rnd(4) == 0 ? leap + (int64_t)rnd(8 * 366) * 86400 : lo + (int64_t)(rng % (uint64_t)(hi - lo));
		start += rnd(3) == 0 ? 0 : rnd(86400);
		int64_t limit = start + 2 * YEAR_S, ref[FIRES];
		int n = ref_fires(&c, start, limit, ref, FIRES);
		int64_t t = start;
		for (int k = 0; k <= n && k < FIRES; k++) {
			int64_t got = cron_next(&c, t);
			if (k == n) {
				/* the reference saw no more in its window */
				if (got != -1 && got <= limit)
					fail_msg("\"%s\" after %lld: got %lld, the reference found none", text, (long long)t,
						 (long long)got);
				if (got == -1)
					never++;
				else
					assert_true(ref_match(&c, got));
				break;
			}
			if (got != ref[k]) {
				char g[64], w[64], s[64];
				show(got, g, sizeof g), show(ref[k], w, sizeof w), show(t, s, sizeof s);
				fail_msg("\"%s\" after %s: got %s, the reference says %s", text, s, g, w);
			}
			/* anywhere between two firings asks for the later one */
			if (k > 0 && ref[k] - ref[k - 1] > 60)
				assert_int_equal(cron_next(&c, ref[k - 1] + 1 + (int64_t)rnd((unsigned)(ref[k] - ref[k - 1] - 1))),
						 ref[k]);
			t = got;
			total++;
		}
	}
	print_message("%d expressions, %d firing times checked, %d never fire\n", EXPRS, total, never);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_times),
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_random_against_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
