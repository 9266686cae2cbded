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
	CLI_EXIT_RUNNING = 75,		/* mags proc wait: still running when --timeout ran out (EX_TEMPFAIL) */
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
int cmd_new(struct cli *cli, int argc, char **argv);
int cmd_ssh(struct cli *cli, int argc, char **argv);
int cmd_url(struct cli *cli, int argc, char **argv);
int cmd_cron(struct cli *cli, int argc, char **argv);
int cmd_whoami(struct cli *cli, int argc, char **argv);
int cmd_login(struct cli *cli, int argc, char **argv);
int cmd_setup_claude(struct cli *cli, int argc, char **argv);
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_proc(struct cli *cli, int argc, char **argv);
extern const char cmd_exec_usage[], cmd_proc_usage[];
extern const char cmd_setup_claude_usage[];
extern const char cmd_login_usage[];
int cmd_logout(struct cli *cli, int argc, char **argv);
int cmd_cp(struct cli *cli, int argc, char **argv);
extern const char cmd_cp_usage[];
extern const char cmd_whoami_usage[], cmd_logout_usage[];
extern const char cmd_cron_usage[];

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
 * Calls METHOD path (with the JSON body, when not NULL) through the
 * connected client c and prints the answer:
 * with json as indented JSON; else by print_cb(v, arg), v being the answer's
 * array field key (when key is not NULL; an answer without it is an error)
 * or the whole answer. arg is the caller's, passed through. Returns
 * CLI_EXIT_OK, or prints the error and returns CLI_EXIT_FAIL.
 */
int cli_call_print(struct client *c, const char *method, const char *path, json_t *body, bool json, const char *key,
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

/*
 * Long-lived sandboxes (cmd_new.c), shared by mags new, ssh, url and run: a
 * workspace's sandbox is its newest running job; `mags new NAME` starts one
 * that runs NEW_SCRIPT until stopped.
 */
#define NEW_SCRIPT "exec sleep 2147483647"
#define NEW_WAIT_S 600		/* how long a sandbox may stay queued before we give up */
#define NEW_POLL_MS 100		/* between two looks at a queued job */

/*
 * The newest job of workspace name with status status ("running",
 * "queued"): GET /mags-jobs?workspace=NAME&status=S&limit=1. *job is that
 * job (new reference) or NULL when there is none. Returns 0 or a negative
 * client_result with err set.
 */
int new_find(struct client *c, const char *name, const char *status, json_t **job, struct err *err);

/*
 * Polls GET /mags-jobs/ID until the job has left "queued" (running, or
 * ended) and stores it in *job (new reference; NULL on failure). timeout_s 0
 * waits as long as it takes; the client's interrupt flag ends the wait
 * (CLIENT_E_INTR). Returns 0 or a negative client_result with err set.
 */
int new_wait(struct client *c, const char *id, long timeout_s, json_t **job, struct err *err);

/*
 * The running sandbox of workspace name, as `mags new NAME` leaves it: the
 * newest running job, else the newest queued one once it runs, else a new
 * job ({"script": NEW_SCRIPT, "workspace": NAME, "persist": persist}) once
 * it runs. *job is the running job (new reference), *created whether it was
 * submitted here. Returns 0, or negative with err saying what went wrong
 * (also when the job ended before it ran).
 */
int new_ensure(struct client *c, const char *name, bool persist, const char *image, json_t **job, bool *created,
	       struct err *err);

/* The files of SSH access (cmd_ssh.c), all under config_path(NULL). */
struct ssh_files {
	char *dir;		/* ~/.mags; owned, as are the others */
	char *key;		/* ~/.mags/id_ed25519, the private key (0600) */
	char *pub;		/* ~/.mags/id_ed25519.pub */
	char *known_hosts;	/* ~/.mags/known_hosts: "mags-JOBID TYPE DATA" lines */
};

/* Fills f (free with ssh_files_free). Returns 0, or negative when HOME is unset. */
int ssh_files_init(struct ssh_files *f, struct err *err);
void ssh_files_free(struct ssh_files *f);

/*
 * Makes sure the key pair exists, creating it with `ssh-keygen -q -t ed25519
 * -N "" -C mags` (directory 0700) when the private key is missing, and
 * rebuilding the .pub from it (ssh-keygen -y) when only that is missing.
 * Returns 0 with the public key line in *pub (new string, no newline), or
 * negative with err set (e.g. when ssh-keygen is not installed).
 */
int ssh_key_ensure(const struct ssh_files *f, char **pub, struct err *err);

/*
 * From job, a job object with "ssh": {"host", "port", "user", "host_key"}:
 * records the host key in f->known_hosts as "mags-JOBID TYPE DATA"
 * (replacing an older line for that alias) and builds in *argv (free with
 * ssh_argv_free) the OpenSSH command line: prog, the key, that known_hosts,
 * IdentitiesOnly, HostKeyAlias=mags-JOBID, StrictHostKeyChecking=yes,
 * LogLevel=ERROR, -p PORT, -t when tty, then USER@HOST, or "--" USER@HOST and
 * the ncmd words of cmd when there are any (so a command starting with '-'
 * is not taken for an ssh option). Returns 0 or negative with err set.
 */
int ssh_command(const struct ssh_files *f, const char *prog, json_t *job, bool tty, char **cmd, int ncmd,
		char ***argv, struct err *err);
void ssh_argv_free(char **argv);

/*
 * A process's output stream (cmd_exec.c; docs/sandboxes.md "the output
 * stream"), for mags exec, proc logs and proc attach: exec_output_cb is a
 * client_line_cb taking a struct exec_output; it writes stdout and stderr
 * events to our fds 1 and 2 as they come.
 */
struct exec_output {
	long pid;		/* from the start event (POST /exec), else as set by the caller */
	long long next;		/* offset of the next byte of output */
	json_t *exit;		/* the exit event once it came (owned), else NULL */
	bool ended;		/* an exit or end event came */
	int write_errno;	/* writing our output failed (EPIPE: the reader left) */
};

int exec_output_cb(void *arg, char *line, size_t len, struct err *err);
void exec_output_free(struct exec_output *o);

/*
 * The exit status mags gives for a process that ended: p is an exit event
 * or a Process. Its exit code (124 timeout, 128+N signal), or
 * CLI_EXIT_FAIL with a line on stderr when it has none (lost with its VM).
 */
int exec_exit_status(json_t *p, long pid);

/*
 * An interactive session with a process (cmd_exec.c): stdin forwarded, a
 * terminal in raw mode following its window size, signals handled, output
 * written as it comes. Used by mags exec (exec_body: POST /exec's body, the
 * process is new) and by mags proc attach (exec_body NULL: pid's output from
 * its current end). Returns the exit status for mags.
 */
struct exec_session {
	const char *name;	/* the sandbox, NAME or job id as given */
	long pid;		/* attach: the process; exec: 0 (the start event names it) */
	bool tty;		/* the process has a PTY: resize it with our window */
	bool raw;		/* put our terminal (stdin) in raw mode */
	bool input;		/* read stdin (to forward it, or for the detach key) */
	bool forward;		/* send what stdin has to the process */
	bool send_eof;		/* at the end of stdin close the process's stdin (?eof=1) */
	bool detach_key;	/* EXEC_DETACH_KEY (Ctrl-]) in stdin ends the session */
	bool forward_signals;	/* SIGINT/SIGTERM go to the process; else they end the session */
};
#define EXEC_DETACH_KEY 0x1d	/* Ctrl-] */

int exec_session_run(struct client *c, const struct exec_session *s, json_t *exec_body);

#endif
