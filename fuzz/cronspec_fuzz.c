// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the bodies of POST and PATCH /api/v1/cron-jobs
 * (cronspec_parse, which also runs the job body through jobspec_parse and
 * the expression through cron_parse). The first byte picks POST or PATCH.
 * fuzz/replay.c supplies a main() that replays files without libFuzzer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/daemon/cronspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool patch = size && (data[0] & 1);
	struct cronspec cs;
	struct err err = { 0 };
	int r = cronspec_parse((const char *)data, size, patch, &cs, &err);
	if (r == 0) {
		if (!patch && (!cs.expression || !cs.script))
			abort();
		if (cs.name && (!*cs.name || strlen(cs.name) > CRON_NAME_MAX))
			abort();
		char *body = NULL;
		if (cs.script && cronspec_job_body(cs.script, cs.options, &body, &err) == 0) {
			char *script = NULL;
			json_t *options = NULL;
			if (cronspec_split(body, &script, &options) < 0 || strcmp(script, cs.script))
				abort(); /* what is stored must read back */
			free(script);
			json_decref(options);
		}
		free(body);
	} else if (!err.msg[0] || (err.code != 400 && err.code != 413)) {
		abort();
	}
	cronspec_free(&cs);
	return 0;
}
