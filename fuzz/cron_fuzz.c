// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for cron expressions (src/lib/cron.c), which arrive from
 * users through REST /cron-jobs and `mags cron create`. Besides crashes it
 * checks the contract: a rejection has a 400 and a one-line message; an
 * accepted expression has bits only in each field's range, and cron_next
 * answers strictly later, on a minute, at a time the expression matches
 * (calendar from gmtime_r), with no earlier match in a short gap, and asking
 * again from just before the answer gives the same answer.
 * The first two bytes pick the start time; the rest is the expression.
 * fuzz/replay.c supplies a main() that replays files without libFuzzer
 * (make test replays fuzz/corpus/cron/ this way).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool matches(const struct cron_expr *c, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		abort();
	if (!(c->minute >> tm.tm_min & 1) || !(c->hour >> tm.tm_hour & 1) || !(c->month >> (tm.tm_mon + 1) & 1))
		return false;
	bool dom = c->dom >> tm.tm_mday & 1, dow = c->dow >> tm.tm_wday & 1;
	return (c->dom_any || c->dow_any) ? dom && dow : dom || dow;
}

static void check_next(const struct cron_expr *c, int64_t after)
{
	int64_t t = cron_next(c, after);
	if (t == -1)
		return;
	if (t <= after || t % 60 != 0 || !matches(c, t))
		abort();
	if (cron_next(c, t - 1) != t)
		abort();
	if (t - after <= 2 * 86400) /* nothing was skipped */
		for (int64_t u = (after / 60 + 1) * 60; u < t; u += 60)
			if (matches(c, u))
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* start times: 2000-01-01 plus up to ~130 years in 17.3-hour steps, at odd seconds */
	int64_t base = 946684800 + (int64_t)(data[0] << 8 | data[1]) * 62347;
	data += 2;
	size -= 2;
	struct cron_expr c;
	struct err err = { 0 };
	if (cron_parsen((const char *)data, size, &c, &err) != 0) {
		if (err.code != 400 || !err.msg[0] || strchr(err.msg, '\n') || c.minute || c.hour || c.dom || c.month ||
		    c.dow || c.dom_any || c.dow_any)
			abort();
		return 0;
	}
	if (!c.minute || !c.hour || !c.dom || !c.month || !c.dow)
		abort();
	if (c.minute >> 60 || c.hour >> 24 || c.dom & 1 || c.month & 1 || c.month >> 13 || c.dow >> 7)
		abort();
	check_next(&c, base);
	check_next(&c, base - base % 86400 - 1); /* just before midnight */
	check_next(&c, 951782400 - 60);		 /* 2000-02-29 00:00, a leap day, minus a minute */
	return 0;
}
