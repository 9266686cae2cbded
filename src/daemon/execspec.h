/* SPDX-License-Identifier: MIT */
/*
 * Request bodies of a sandbox's processes (docs/sandboxes.md): POST
 * /mags-jobs/:id/exec, .../processes/:pid/signal and .../resize. Untrusted
 * input: fuzzed by fuzz/execspec_fuzz.c.
 */
#ifndef MAGS_EXECSPEC_H
#define MAGS_EXECSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define EXEC_CMD_MAX (256 * 1024)	/* bytes of a command */
#define EXEC_CWD_MAX 4096
#define EXEC_ENV_MAX 1024		/* env entries */
#define EXEC_ENV_LEN_MAX 32768		/* bytes of one NAME=value */
#define EXEC_TIMEOUT_MAX 2592000	/* 30 days, the agent's limit */
#define EXEC_TTY_MAX 4096

struct exec_spec {
	char *command;
	char *cwd;		/* NULL: /root */
	struct buf env;		/* "NAME=value\0" entries back to back */
	int nenv;
	int timeout;		/* seconds, 0 = none */
	int cols, rows;		/* tty window, 80x24 by default */
	bool tty, stdin_open, detach;
};

/*
 * Parses a POST /exec body. Returns 0 with *s filled (free with
 * exec_spec_free), or -400/-413 with err set (code 400 or 413) naming the
 * field.
 */
int exec_spec_parse(const char *body, size_t len, struct exec_spec *s, struct err *err);
void exec_spec_free(struct exec_spec *s);
/* {"signal": 2 | "INT" | "SIGINT"}: the number (1-64) or -400 with err set. */
int exec_signal_parse(const char *body, size_t len, struct err *err);
/* {"cols": C, "rows": R}: 0 or -400 with err set. */
int exec_resize_parse(const char *body, size_t len, int *cols, int *rows, struct err *err);

#endif
