/* SPDX-License-Identifier: MIT */
/*
 * The bodies of POST and PATCH /api/v1/cron-jobs, parsed from untrusted JSON
 * without touching the database (fuzzed by fuzz/cronspec_fuzz.c). A
 * schedule is an expression, a script and the run flags of POST /mags-jobs
 * (top level, same names); each firing submits script + run flags as a job
 * body, which is checked here with jobspec_parse. Every rejection names the
 * field: `expression: minute field: 61 is out of range 0-59`.
 */
#ifndef MAGS_CRONSPEC_H
#define MAGS_CRONSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cron.h"
#include "err.h"

#define CRON_NAME_MAX 64	/* bytes of a schedule's name (printable ASCII) */

struct cronspec {
	char *expression;	/* owned; NULL = not given */
	struct cron_expr cron;	/* the parsed expression, when given */
	char *script;		/* owned; NULL = not given */
	bool has_name;
	char *name;		/* owned; NULL with has_name: none (PATCH: clear it) */
	bool has_timezone;
	char *timezone;		/* owned; NULL with has_timezone: UTC; a name checked by tz_name_ok */
	int enabled;		/* -1 = not given, else 0 or 1 */
	json_t *options;	/* run flags given (an object, owned); in a PATCH a null value removes the flag */
};

/*
 * Parses body (len bytes) into *cs (cleared first; free with cronspec_free
 * in every case). For POST (patch false) "expression" and "script" are
 * required and script + run flags must make a valid job; for a PATCH every
 * field is optional and the caller checks the merged result with
 * cronspec_job_body. Returns 0, or -400/-413 with err set.
 */
int cronspec_parse(const char *body, size_t len, bool patch, struct cronspec *cs, struct err *err);
void cronspec_free(struct cronspec *cs);

/*
 * The job body a firing submits: options (null values left out) plus
 * "script", checked with jobspec_parse; files must carry content_base64 and
 * always_on is refused. Returns 0 with *out a new string, or -400/-413.
 */
int cronspec_job_body(const char *script, json_t *options, char **out, struct err *err);

/*
 * Splits a stored job body into its script (*script, new string, "" when
 * missing) and the rest (*options, new object). Returns 0 or -1 when spec
 * is not a JSON object.
 */
int cronspec_split(const char *spec, char **script, json_t **options);

#endif
