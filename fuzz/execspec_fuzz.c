// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the bodies of a sandbox's process requests
 * (src/daemon/execspec.c): POST /mags-jobs/:id/exec, .../signal and
 * .../resize. Every accepted body must be within the documented limits;
 * every refused one must say why with a 400 or 413. fuzz/replay.c replays
 * fuzz/corpus/execspec/ without libFuzzer (make test).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/daemon/execspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exec_spec s;
	struct err err = { 0 };
	if (exec_spec_parse((const char *)data, size, &s, &err) == 0) {
		if (!s.command || !*s.command || strlen(s.command) > EXEC_CMD_MAX)
			abort();
		if (s.timeout < 0 || s.timeout > EXEC_TIMEOUT_MAX || s.cols < 1 || s.cols > EXEC_TTY_MAX || s.rows < 1 ||
		    s.rows > EXEC_TTY_MAX || s.nenv > EXEC_ENV_MAX || (s.tty && !s.stdin_open))
			abort();
		int n = 0;
		for (size_t off = 0; off < s.env.len; n++) {
			const char *e = (const char *)s.env.data + off;
			size_t l = strnlen(e, s.env.len - off);
			if (l == s.env.len - off || !strchr(e, '=') || l > EXEC_ENV_LEN_MAX)
				abort();
			off += l + 1;
		}
		if (n != s.nenv)
			abort();
		exec_spec_free(&s);
	} else if (!err.msg[0] || (err.code != 400 && err.code != 413)) {
		abort();
	}
	err_clear(&err);
	int sig = exec_signal_parse((const char *)data, size, &err);
	if (sig >= 0 ? sig < 1 || sig > 64 : !err.msg[0] || (err.code != 400 && err.code != 413))
		abort();
	int cols, rows;
	err_clear(&err);
	if (exec_resize_parse((const char *)data, size, &cols, &rows, &err) == 0) {
		if (cols < 1 || cols > EXEC_TTY_MAX || rows < 1 || rows > EXEC_TTY_MAX)
			abort();
	} else if (!err.msg[0] || (err.code != 400 && err.code != 413)) {
		abort();
	}
	return 0;
}
