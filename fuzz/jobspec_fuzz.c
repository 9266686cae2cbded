// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the job submission path: the untrusted JSON body of
 * POST /api/v1/mags-jobs (jobspec_parse) and of PATCH /mags-jobs/:id
 * (jobspec_parse_patch), plus the UTF-8 sanitiser every
 * piece of program output and error text goes through on its way into JSON.
 * fuzz/replay.c supplies a main() that replays files without libFuzzer
 * (make test replays fuzz/corpus/jobspec/ this way).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/daemon/jobspec.h"
#include "buf.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jobspec js;
	struct err err = { 0 };
	if (jobspec_parse((const char *)data, size, &js, &err) == 0) {
		if (!js.script || !*js.script || strlen(js.script) > JOB_SCRIPT_MAX)
			abort();
		if (js.timeout < 0 || js.timeout > JOB_TIMEOUT_MAX)
			abort();
		jobspec_free(&js);
	} else if (!err.msg[0] || (err.code != 400 && err.code != 413)) {
		abort();
	}
	struct job_patch p;
	err_clear(&err);
	if (jobspec_parse_patch((const char *)data, size, &p, &err) == 0) {
		if (p.idle_timeout < -1 || p.idle_timeout > JOB_IDLE_MAX || p.timeout < 0 || p.timeout > JOB_TIMEOUT_MAX)
			abort();
	} else if (!err.msg[0] || (err.code != 400 && err.code != 413)) {
		abort();
	}
	struct buf b;
	buf_init(&b);
	utf8_sanitize(data, size, &b);
	size_t tail = utf8_incomplete_tail(data, size);
	if (tail > 3 || tail > size)
		abort();
	json_t *s = json_stringn(b.data ? (const char *)b.data : "", b.len);
	if (!s)
		abort(); /* the sanitiser must always produce valid UTF-8 */
	json_decref(s);
	buf_free(&b);
	return 0;
}
