/* SPDX-License-Identifier: MIT */
/*
 * Parsing of a job submission (POST /api/v1/mags-jobs) from untrusted JSON.
 * Every rejection names the field and what was wrong with it. Fuzzed by
 * fuzz/jobspec_fuzz.c.
 */
#ifndef MAGS_JOBSPEC_H
#define MAGS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define API_BODY_MAX (1024 * 1024)	/* bytes of a request body */
#define JOB_SCRIPT_MAX (256 * 1024)	/* bytes of a script */
#define JOB_TIMEOUT_MAX 86400		/* seconds */

struct jobspec {
	char *script;	/* owned, NUL-free */
	bool file;	/* type "file": script is a script file's content */
	int timeout;	/* seconds, 0 = none */
	bool ephemeral;
};

/* Parses body into *js (zeroed first; free with jobspec_free). Returns 0 or -400 with err set. */
int jobspec_parse(const char *body, size_t len, struct jobspec *js, struct err *err);
void jobspec_free(struct jobspec *js);

#endif
