/* SPDX-License-Identifier: MIT */
/*
 * The flags of `mags run` (REFERENCE.md, "mags run flags"), parsed into a
 * struct and turned into the JSON body of POST /api/v1/mags-jobs
 * (docs/api-contract.md). Kept apart from cmd_run.c so it is unit-tested
 * (tests/unit/test_cli_args.c).
 */
#ifndef MAGS_RUN_OPTS_H
#define MAGS_RUN_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define RUN_TIMEOUT_MAX 86400		/* seconds; the API's limit */
#define RUN_IDLE_MAX (7 * 86400)	/* seconds of --idle-timeout; the API's limit */
#define RUN_PORT_DEFAULT 8080		/* --url without --port (sent explicitly) */
#define RUN_SCRIPT_MAX (256 * 1024)	/* the API's limit on "script" */
#define RUN_FILE_MAX (1024LL * 1024 * 1024)	/* one -f file, uploaded after the submit (the API's limit) */

struct run_opts {
	char *script;		/* the SCRIPT argument(s), joined by spaces; owned */
	char *workspace;	/* -w NAME; owned, NULL when absent */
	bool persist;		/* -p */
	char **files;		/* -f PATH, in order; owned array of owned strings */
	size_t nfiles;
	bool url;		/* --url */
	int port;		/* --port P, 0 when absent */
	bool ssh;		/* --ssh */
	char *startup;		/* --startup CMD; owned */
	bool base_image;	/* --base-image */
	char *from;		/* --from NAME; owned */
	bool ephemeral;		/* --ephemeral */
	long timeout;		/* --timeout SECONDS, 0 when absent */
	long idle_timeout;	/* --idle-timeout SECONDS, -1 when absent */
	bool always_on;		/* --always-on */
	char *image;		/* --image NAME; owned, NULL = the server's default */
	bool verbose;		/* -v/--verbose */
	bool help;		/* -h/--help: print usage, nothing else is checked */
};

/*
 * Parses argv[1..argc) (argv[0] is the command name). Options come first; the
 * first other argument (or everything after "--") starts SCRIPT, and the
 * remaining arguments are joined to it with spaces. Also checks what needs no
 * file system or server: workspace names (text.h), flags that do not go
 * together (--ephemeral with -w/-p/--base-image/--from; -p or --base-image
 * without -w; --port without --url), -f paths without a file name or with the same file name.
 * Returns 0, or -1 with a one-line message in err (the caller prints it and
 * exits 2). o is cleared on entry and must be freed with run_opts_free in
 * both cases.
 */
int run_opts_parse(int argc, char **argv, struct run_opts *o, struct err *err);
void run_opts_free(struct run_opts *o);

/*
 * Builds the submit body in *out (new reference). When SCRIPT names an
 * existing regular file its content is sent with "type": "file". -f files
 * are only declared, {"name", "mode", "size"} without content: magsd keeps
 * the job queued until each is uploaded (POST /mags-jobs/ID/upload, see
 * cmd_run.c). Each must be a readable regular file of at most RUN_FILE_MAX
 * bytes. With --url, "port" is always sent (RUN_PORT_DEFAULT when --port
 * was not given). With --ssh the caller adds "ssh_public_key" (cmd_run.c):
 * finding or making the key is not this function's business. Returns 0 or
 * negative with err set.
 */
int run_opts_to_json(const struct run_opts *o, json_t **out, struct err *err);

/*
 * For commands that take run flags among arguments of their own (mags cron
 * create): whether arg is a `mags run` flag, and whether it consumes the
 * next argument as its value. Returns -1 (not a run flag), 0 (complete:
 * no value, or the value attached) or 1 (the next argument is its value).
 */
int run_opts_flag_arity(const char *arg);

/* The name a -f PATH gets in the sandbox: its last component (a pointer into path). */
const char *run_opts_file_name(const char *path);

extern const char run_opts_usage[];

#endif
