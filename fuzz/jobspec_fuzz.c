// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the job submission path: the untrusted JSON body of
 * POST /api/v1/mags-jobs (jobspec_parse), plus the UTF-8 sanitiser every
 * piece of program output and error text goes through on its way into JSON.
 * Built with -DFUZZ_REPLAY_MAIN it replays files given as arguments instead
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

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		static uint8_t buf[2 << 20];
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("jobspec_fuzz: replayed %d input(s)\n", argc - 1);
	return 0;
}
#endif
