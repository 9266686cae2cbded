// SPDX-License-Identifier: MIT
/*
 * Unit tests for time zones (src/lib/tz.c): UT offsets against glibc's
 * localtime_r (TZ set with setenv: fine here, this test is single-threaded)
 * at many instants in several zones; next firing times across daylight-saving
 * changes (the gap and fold rules of tz.h); zone names refused.
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

#include "tz.h"
#include "utc_text.h"

static const char *const zones[] = {
	"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
	"America/Sao_Paulo", "Pacific/Chatham", "Africa/Casablanca", "Etc/GMT+5",
};

/* glibc's offset for t in zone name. */
static long libc_offset(const char *name, int64_t t)
{
	setenv("TZ", name, 1);
	tzset();
	time_t tt = (time_t)t;
	struct tm tm;
	assert_non_null(localtime_r(&tt, &tm));
	return tm.tm_gmtoff;
}

static void check_offsets(const char *name, int64_t from, int64_t to, int64_t step)
{
	struct tz *z;
	struct err err = { 0 };
	assert_int_equal(tz_load(name, &z, &err), 0);
	for (int64_t t = from; t < to; t += step) {
		long want = libc_offset(name, t);
		int32_t got = tz_offset(z, t);
		if (got != want) {
			char s[64];
			show(t, s, sizeof s);
			fail_msg("%s at %s (%lld): offset %d, glibc says %ld", name, s, (long long)t, got, want);
		}
	}
	tz_free(z);
}

/* 1900-2200 every ~3 days, and every 17 minutes through 2023-2026 (the DST changes). */
static void test_offsets_vs_glibc(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		check_offsets(zones[i], at("1900-01-01 00:00"), at("2200-01-01 00:00"), 3 * 86400 + 3607);
		check_offsets(zones[i], at("2023-01-01 00:00"), at("2027-01-01 00:00"), 17 * 60 + 1);
	}
}

/* Every second around a few transitions (each side of the instant). */
static void test_offsets_at_transitions(void **state)
{
	(void)state;
	static const struct { const char *zone, *t; } cases[] = {
		{ "Europe/Berlin", "2024-03-31 01:00" }, { "Europe/Berlin", "2024-10-27 01:00" },
		{ "America/New_York", "2024-03-10 07:00" }, { "America/New_York", "2024-11-03 06:00" },
		{ "Australia/Lord_Howe", "2024-10-05 15:30" }, { "Australia/Lord_Howe", "2024-04-06 15:00" },
		{ "Europe/Berlin", "2100-03-28 01:00" }, { "America/New_York", "2150-11-06 06:00" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t t = at(cases[i].t);
		check_offsets(cases[i].zone, t - 120, t + 120, 1);
	}
}

struct next_case {
	const char *zone, *expr, *after, *want;
};

static const struct next_case next_cases[] = {
	/* Berlin spring forward 2024-03-31 02:00 CET -> 03:00 CEST (01:00Z): 02:30 falls in the gap */
	{ "Europe/Berlin", "30 2 * * *", "2024-03-30 12:00", "2024-03-31 01:00" },
	{ "Europe/Berlin", "30 2 * * *", "2024-03-31 01:00", "2024-04-01 00:30" },
	{ "Europe/Berlin", "*/15 * * * *", "2024-03-31 00:50", "2024-03-31 01:00" },
	{ "Europe/Berlin", "*/15 * * * *", "2024-03-31 01:00", "2024-03-31 01:15" },
	{ "Europe/Berlin", "0 3 * * *", "2024-03-30 12:00", "2024-03-31 01:00" },
	/* Berlin fall back 2024-10-27 03:00 CEST -> 02:00 CET (01:00Z): 02:30 happens twice, fires once */
	{ "Europe/Berlin", "30 2 * * *", "2024-10-26 12:00", "2024-10-27 00:30" },
	{ "Europe/Berlin", "30 2 * * *", "2024-10-27 00:30", "2024-10-28 01:30" },
	{ "Europe/Berlin", "0 * * * *", "2024-10-27 00:00", "2024-10-27 02:00" },
	{ "Europe/Berlin", "45 2 * * *", "2024-10-27 01:10", "2024-10-28 01:45" },
	{ "Europe/Berlin", "0 12 * * *", "2024-07-01 00:00", "2024-07-01 10:00" },
	{ "Europe/Berlin", "0 12 * * *", "2024-12-01 00:00", "2024-12-01 11:00" },
	/* far future: the footer rule (last Sunday of March 2100 is the 28th) */
	{ "Europe/Berlin", "30 2 * * *", "2100-03-27 12:00", "2100-03-28 01:00" },
	/* New York: spring 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z); fall 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z) */
	{ "America/New_York", "30 2 * * *", "2024-03-09 12:00", "2024-03-10 07:00" },
	{ "America/New_York", "30 1 * * *", "2024-11-03 00:00", "2024-11-03 05:30" },
	{ "America/New_York", "30 1 * * *", "2024-11-03 05:30", "2024-11-04 06:30" },
	{ "America/New_York", "0 9 * * 1-5", "2024-11-01 14:00", "2024-11-04 14:00" },
	/* Lord Howe: half-hour DST, 2024-10-06 02:00 +1030 -> 02:30 +11 (2024-10-05 15:30Z) */
	{ "Australia/Lord_Howe", "15 2 * * *", "2024-10-05 00:00", "2024-10-05 15:30" },
	{ "Australia/Lord_Howe", "45 2 * * *", "2024-10-05 00:00", "2024-10-05 15:45" },
	/* ...and back, 2024-04-07 02:00 +11 -> 01:30 +1030 (2024-04-06 15:00Z): 01:45 twice */
	{ "Australia/Lord_Howe", "45 1 * * *", "2024-04-06 12:00", "2024-04-06 14:45" },
	{ "Australia/Lord_Howe", "45 1 * * *", "2024-04-06 14:45", "2024-04-07 15:15" },
	/* no DST */
	{ "Asia/Kolkata", "0 9 * * *", "2024-01-01 00:00", "2024-01-01 03:30" },
	{ "Asia/Kolkata", "0 0 1 1 *", "2024-06-01 00:00", "2024-12-31 18:30" },
	{ "UTC", "0 0 1 1 *", "2024-06-01 00:00", "2025-01-01 00:00" },
	{ NULL, "*/5 * * * *", "2024-06-01 00:02:30", "2024-06-01 00:05" },
	{ "Etc/GMT+5", "0 0 * * *", "2024-06-01 00:00", "2024-06-01 05:00" },
};

static void test_next_across_dst(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
		const struct next_case *k = &next_cases[i];
		struct tz *z;
		struct cron_expr c;
		struct err err = { 0 };
		assert_int_equal(tz_load(k->zone, &z, &err), 0);
		assert_int_equal(cron_parse(k->expr, &c, &err), 0);
		int64_t got = tz_next(z, &c, at(k->after));
		tz_free(z);
		if (got != at(k->want)) {
			char s[64];
			show(got, s, sizeof s);
			fail_msg("%s \"%s\" after %s: got %s, want %s", k->zone ? k->zone : "(null)", k->expr, k->after, s,
				 k->want);
		}
	}
}

/* Every hourly firing in Berlin over 2024 is strictly later than the one before, once per hour of wall time. */
static void test_next_monotonic(void **state)
{
	(void)state;
	struct tz *z;
	struct cron_expr c;
	struct err err = { 0 };
	assert_int_equal(tz_load("Europe/Berlin", &z, &err), 0);
	assert_int_equal(cron_parse("7 * * * *", &c, &err), 0);
	int64_t t = at("2024-01-01 00:00"), end = at("2025-01-01 00:00");
	int n = 0;
	while ((t = tz_next(z, &c, t)) < end) {
		assert_true(t > 0);
		n++;
	}
	tz_free(z);
	/* 366 days of 24 wall hours; the spring gap's 02:07 fires at 03:00, the fall fold's 02:07 once */
	assert_int_equal(n, 366 * 24);
}

static void test_bad_names(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "/etc/passwd", "../etc/passwd", "Europe/../../etc/passwd", "Europe//Berlin", "Europe/Berlin/",
		"./UTC", "Europe/.", "a b", "Europe\\Berlin", "-UTC", "zone.tab", "Europe/Berlin\n",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_false(tz_name_ok(bad[i]));
		struct tz *z = (struct tz *)1;
		struct err err = { 0 };
		assert_int_equal(tz_load(bad[i], &z, &err), -400);
		assert_null(z);
		assert_non_null(strstr(err.msg, "time zone"));
	}
	static const char *const unknown[] = { "Nowhere/City", "America", "Europe" };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		assert_true(tz_name_ok(unknown[i]));
		struct tz *z;
		struct err err = { 0 };
		assert_int_equal(tz_load(unknown[i], &z, &err), -400);
		assert_null(z);
		assert_non_null(strstr(err.msg, "unknown time zone"));
	}
	assert_true(tz_name_ok("America/Argentina/Buenos_Aires"));
	assert_true(tz_name_ok("Etc/GMT-14"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets_vs_glibc),
		cmocka_unit_test(test_offsets_at_transitions),
		cmocka_unit_test(test_next_across_dst),
		cmocka_unit_test(test_next_monotonic),
		cmocka_unit_test(test_bad_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
