/* SPDX-License-Identifier: MIT */
/*
 * UTC times as text for the cron and time-zone unit tests (include after
 * <cmocka.h>): at() reads "YYYY-MM-DD HH:MM[:SS]", show() writes
 * "YYYY-MM-DD HH:MM:SS" (or the number, for -1 and out-of-range values).
 */
#ifndef MAGS_TEST_UTC_TEXT_H
#define MAGS_TEST_UTC_TEXT_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static int64_t at(const char *s)
{
	struct tm tm = { 0 };
	int sec = 0;
	if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &sec) < 5)
		fail_msg("bad time \"%s\" in the test", s);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm);
}

static void show(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t != -1 && gmtime_r(&tt, &tm))
		strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
	else
		snprintf(out, n, "%lld", (long long)t);
}

#endif
