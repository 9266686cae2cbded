/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the mags CLI: exit codes, the per-invocation context, the
 * command entry points that main.c's commands[] table dispatches to, and the
 * helper that turns config + environment into a connected API client.
 */
#ifndef MAGS_CLI_H
#define MAGS_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define CLI_VERSION "0.1.0"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,		/* an error, one "mags: ..." line on stderr */
	CLI_EXIT_USAGE = 2,		/* bad command line */
	CLI_EXIT_INTERRUPTED = 130,	/* SIGINT/SIGTERM during mags run */
};

struct client;

/* One invocation of mags. */
struct cli {
	bool verbose;		/* -v/--verbose or MAGS_VERBOSE: notes on stderr */
};

/* A command: argv[0] is the command name. Returns the process exit code. */
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_workspace(struct cli *cli, int argc, char **argv);

/* "mags: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "mags: <message>" and a hint to see --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the usage of command name on stdout (for its --help). */
void cli_print_usage(const char *name);

/*
 * Resolves the API URL and token (environment, ~/.mags/config.json, local
 * single-user mode which may start magsd) and returns a new client in *out
 * (the caller frees it with client_free). Returns 0 or negative with err set.
 */
int cli_connect(struct cli *cli, struct client **out, struct err *err);

/*
 * Connects and calls METHOD /mags-jobs/ID (or /mags-jobs/ID/ACTION when
 * action is not NULL). On success returns 0 and, when out is not NULL, the
 * reply in *out (new reference). On failure prints the error and returns -1.
 */
int cli_job_call(struct cli *cli, const char *method, const char *id, const char *action, json_t **out);

/* Prints v on stdout as indented JSON (what --json shows). */
void cli_print_json(json_t *v);

/*
 * Calls METHOD path through the connected client c and prints the answer:
 * with json as indented JSON; else by print_cb(v, arg), v being the answer's
 * array field key (when key is not NULL; an answer without it is an error)
 * or the whole answer. arg is the caller's, passed through. Returns
 * CLI_EXIT_OK, or prints the error and returns CLI_EXIT_FAIL.
 */
int cli_call_print(struct client *c, const char *method, const char *path, bool json, const char *key,
		   void (*print_cb)(json_t *v, const char *arg), const char *arg);

/*
 * Parses the arguments of a command taking one job ID and flags from the
 * table: names are "--json", "-f" etc.; flags[i] is set when names[i] occurs
 * (a name may list alternatives separated by '|': "-f|--follow").
 * Returns 0, or prints a usage error and returns CLI_EXIT_USAGE. With -h or
 * --help it prints the command's usage, sets *help and returns 0.
 */
int cli_parse_id_cmd(int argc, char **argv, const char *const *names, bool *flags, size_t nflags, const char **id, bool *help);
/* cli_parse_id_cmd for a command with the one flag name: *set when it occurs. */
int cli_parse_id_flag(int argc, char **argv, const char *name, bool *set, const char **id, bool *help);

#endif
