/* SPDX-License-Identifier: MIT */
/*
 * Cron expressions for magsd's schedules (REST /cron-jobs, `mags cron create
 * 'EXPR' CMD`): parse the standard 5-field syntax into bit sets, and find the
 * next time an expression fires.
 *
 * Syntax (Vixie/cronie cron, crontab(5)):
 *     minute hour day-of-month month day-of-week
 * Fields are separated by runs of spaces or tabs. Each field is a comma list
 * of items; an item is `*`, `N` or `N-M`, optionally followed by `/S` (every
 * S-th value of the range); `N/S` means N-max/S (day-of-week's max is 7, so
 * "1/2" includes Sunday, as in cronie). Months may be written jan-dec and
 * days sun-sat (any case) as values and range ends; "sun" ending a range is
 * 7, so "fri-sun" works. Ranges: minute 0-59, hour 0-23, day-of-month 1-31,
 * month 1-12, day-of-week 0-7 (0 and 7 are Sunday). Steps run from 1 to the
 * field's number of values (60, 24, 31, 12, 7). Macros: @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight), @hourly; @reboot is rejected.
 *
 * Day rule (Vixie): when both day fields are restricted, a day matches when
 * EITHER matches ("0 0 1,15 * 5" fires on the 1st, the 15th and Fridays).
 * A day field whose text starts with `*` (even with a step) does not restrict
 * in this sense: then a day must match both fields.
 *
 * All times are UTC: seconds since the Unix epoch. Time zones (and their
 * daylight-saving gaps) are the caller's job.
 */
#ifndef MAGS_CRON_H
#define MAGS_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRON_EXPR_MAX 256	/* bytes of one expression */
#define CRON_SEARCH_YEARS 8	/* cron_next looks this far ahead (Feb 29 can be 8 years apart) */
/* cron_next answers for `after` in the years 0001-9999 */
#define CRON_TIME_MIN (-62135596800LL)	/* 0001-01-01T00:00:00Z */
#define CRON_TIME_MAX 253402300799LL	/* 9999-12-31T23:59:59Z */

/* A parsed expression: bit v of a field set when value v is allowed. */
struct cron_expr {
	uint64_t minute;	/* bits 0-59 */
	uint32_t hour;		/* bits 0-23 */
	uint32_t dom;		/* bits 1-31 */
	uint16_t month;		/* bits 1-12 */
	uint8_t dow;		/* bits 0-6, Sunday 0 (a written 7 sets bit 0) */
	bool dom_any;		/* day-of-month text started with '*': see the day rule above */
	bool dow_any;		/* day-of-week text started with '*' */
};

/*
 * Parses a NUL-terminated expression into *c (cleared first). Returns 0, or
 * -400 with err naming the field and the problem in one line, e.g.
 * `minute field: 61 is out of range 0-59`.
 */
int cron_parse(const char *text, struct cron_expr *c, struct err *err);
/* The same for len bytes that need not be NUL-terminated (a NUL is rejected). */
int cron_parsen(const char *text, size_t len, struct cron_expr *c, struct err *err);

/*
 * The first time strictly after `after` when c fires: a multiple of 60,
 * UTC. -1 when it does not fire within CRON_SEARCH_YEARS calendar years after
 * `after`'s year (e.g. "0 0 30 2 *"), or when `after` lies outside
 * CRON_TIME_MIN..CRON_TIME_MAX. Work is bounded by days, not minutes.
 */
int64_t cron_next(const struct cron_expr *c, int64_t after);

#endif
