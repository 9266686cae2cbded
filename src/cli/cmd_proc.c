// SPDX-License-Identifier: MIT
/*
 * mags proc: the processes of a running sandbox (REST
 * /mags-jobs/NAME/processes, docs/sandboxes.md), as mags exec starts them:
 *   proc list NAME [--json]              GET  /processes
 *   proc logs NAME ID [-f] [--offset N]  GET  /processes/ID/output
 *   proc kill NAME ID [-s SIG]           POST /processes/ID/signal
 *   proc wait NAME ID [--timeout S]      GET  /processes/ID/wait, in steps
 *   proc attach NAME ID                  the exec session (cmd_exec.c) on
 *                                        GET /processes/ID/output?offset=end&follow=1
 *   proc rm NAME ID                      DELETE /processes/ID
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "xmalloc.h"

#define PROC_WAIT_STEP_S 30	/* one GET .../wait (under the client's 60 s stall limit) */
#define PROC_COMMAND_COLS 50	/* characters of a command in proc list */

const char cmd_proc_usage[] =
	"usage: mags proc list NAME [--json]\n"
	"       mags proc logs NAME ID [-f] [--offset N]\n"
	"       mags proc kill NAME ID [-s SIG]\n"
	"       mags proc wait NAME ID [--timeout S]\n"
	"       mags proc attach NAME ID\n"
	"       mags proc rm NAME ID\n"
	"\n"
	"The processes of the running sandbox NAME (workspace name or job id), as\n"
	"mags exec started them; ID is a process id (mags exec -d prints it).\n"
	"\n"
	"list    ID, STATUS (running, exited, lost), EXIT, TTY and COMMAND of each,\n"
	"        running and recently ended; --json prints magsd's answer\n"
	"logs    its output (stdout and stderr to ours) from offset N (default: the\n"
	"        oldest byte kept; end: only what comes next); -f follows it until it\n"
	"        exits\n"
	"kill    sends signal SIG: a name (TERM, SIGINT, KILL) or a number; default TERM\n"
	"wait    waits until it has ended and exits with its exit code (124 timeout,\n"
	"        128+N signal); still running after --timeout S: a line on stderr\n"
	"        and exit 75\n"
	"attach  follows its output from now on and passes it our stdin (when it has\n"
	"        stdin); a terminal process gets our terminal in raw mode and its\n"
	"        size. Ctrl-] detaches (the process goes on); exits with its code\n"
	"        when it ends\n"
	"rm      kills it (SIGKILL) when it runs and forgets it\n";

/* A subcommand's command line: NAME, ID and the flags. */
struct proc_args {
	const char *name;
	long id;		/* 0: none given */
	bool json, follow;
	const char *offset, *sig;
	long timeout;		/* -1: none */
};

static bool proc_number(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0)
		return false;
	*out = v;
	return true;
}

/* Parses argv[2..) of subcommand sub; 0, 1 after --help, or CLI_EXIT_USAGE. */
static int proc_parse(int argc, char **argv, const char *sub, bool want_id, struct proc_args *a)
{
	memset(a, 0, sizeof *a);
	a->timeout = -1;
	bool is_logs = !strcmp(sub, "logs"), is_kill = !strcmp(sub, "kill"), is_wait = !strcmp(sub, "wait");
	const char *id = NULL;
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			cli_print_usage("proc");
			return 1;
		}
		const char **val = NULL;
		if (!strcmp(sub, "list") && !strcmp(s, "--json")) {
			a->json = true;
		} else if (is_logs && (!strcmp(s, "-f") || !strcmp(s, "--follow"))) {
			a->follow = true;
		} else if (is_logs && !strcmp(s, "--offset")) {
			val = &a->offset;
		} else if (is_kill && (!strcmp(s, "-s") || !strcmp(s, "--signal"))) {
			val = &a->sig;
		} else if (is_wait && !strcmp(s, "--timeout")) {
			const char *t = i + 1 < argc ? argv[++i] : "";
			if (!proc_number(t, &a->timeout))
				return cli_usage_error("proc", "proc wait: --timeout needs a number of seconds");
		} else if (s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9')) {
			return cli_usage_error("proc", "proc %s: unknown flag %s", sub, s);
		} else if (!a->name) {
			a->name = s;
		} else if (want_id && !id) {
			id = s;
		} else {
			return cli_usage_error("proc", "proc %s: unexpected argument \"%s\"", sub, s);
		}
		if (val) {
			if (i + 1 >= argc)
				return cli_usage_error("proc", "proc %s: %s needs a value", sub, s);
			*val = argv[++i];
		}
	}
	if (!a->name || !*a->name)
		return cli_usage_error("proc", "proc %s: missing NAME (a sandbox: workspace name or job id)", sub);
	if (want_id && !id)
		return cli_usage_error("proc", "proc %s: missing ID (a process id)", sub);
	if (want_id && (!proc_number(id, &a->id) || a->id == 0))
		return cli_usage_error("proc", "proc %s: ID \"%s\" is not a process id (a positive number)", sub, id);
	long off;
	if (a->offset && strcmp(a->offset, "end") && !proc_number(a->offset, &off))
		return cli_usage_error("proc", "proc logs: --offset wants a byte offset or \"end\"");
	if (a->sig && !*a->sig)
		return cli_usage_error("proc", "proc kill: -s needs a signal");
	return 0;
}

/* "/mags-jobs/NAME/processes[/ID][what]" (new string). */
static char *proc_path(struct client *c, const struct proc_args *a, const char *what)
{
	char *esc = client_escape(c, a->name);
	char *p;
	if (a->id)
		p = xasprintf("/mags-jobs/%s/processes/%ld%s", esc, a->id, what ? what : "");
	else
		p = xasprintf("/mags-jobs/%s/processes", esc);
	free(esc);
	return p;
}

/* The first line of a command, control characters as spaces, cut to PROC_COMMAND_COLS characters. */
static void proc_command_cell(const char *s, struct buf *b)
{
	size_t chars = 0;
	const unsigned char *p = (const unsigned char *)s;
	for (; *p && *p != '\n'; p++) {
		if ((*p & 0xc0) != 0x80 && chars++ == PROC_COMMAND_COLS - 3 && strlen((const char *)p) > 3) {
			buf_puts(b, "...");
			return;
		}
		buf_putc(b, *p < 0x20 || *p == 0x7f ? ' ' : *p);
	}
	if (*p)
		buf_puts(b, " ...");
}

static void proc_print_table_cb(json_t *procs, const char *arg)
{
	printf("%5s  %-8s  %4s  %-3s  %s\n", "ID", "STATUS", "EXIT", "TTY", "COMMAND");
	size_t i;
	json_t *p;
	json_array_foreach(procs, i, p) {
		json_t *ec = json_object_get(p, "exit_code");
		const char *st = json_string_value(json_object_get(p, "status"));
		const char *cmd = json_string_value(json_object_get(p, "command"));
		char exit_s[24];
		if (json_is_integer(ec))
			snprintf(exit_s, sizeof exit_s, "%lld", (long long)json_integer_value(ec));
		else
			snprintf(exit_s, sizeof exit_s, "-");
		struct buf cell;
		buf_init(&cell);
		proc_command_cell(cmd ? cmd : "", &cell);
		printf("%5lld  %-8s  %4s  %-3s  %s\n", (long long)json_integer_value(json_object_get(p, "id")),
		       st ? st : "?", exit_s, json_is_true(json_object_get(p, "tty")) ? "yes" : "no",
		       cell.data ? (const char *)cell.data : "");
		buf_free(&cell);
	}
}

static int proc_logs(struct client *c, const struct proc_args *a)
{
	struct exec_output o = { .pid = a->id };
	struct err err;
	char *base = proc_path(c, a, "/output");
	char *path = xasprintf("%s?offset=%s%s", base, a->offset ? a->offset : "0", a->follow ? "&follow=1" : "");
	int r = client_stream(c, path, exec_output_cb, &o, &err);
	int ret = CLI_EXIT_OK;
	if (r == CLIENT_E_CB && o.write_errno == EPIPE) {
		ret = CLI_EXIT_FAIL;
	} else if (r < 0) {
		cli_error("%s", err.msg);
		ret = CLI_EXIT_FAIL;
	} else if (!o.ended) {
		cli_error("the output stream of process %ld ended early (at offset %lld)", a->id, o.next);
		ret = CLI_EXIT_FAIL;
	}
	exec_output_free(&o);
	free(path);
	free(base);
	return ret;
}

static int proc_kill(struct client *c, const struct proc_args *a)
{
	long n;
	json_t *body = a->sig && proc_number(a->sig, &n) ? json_pack("{s:I}", "signal", (json_int_t)n)
							  : json_pack("{s:s}", "signal", a->sig ? a->sig : "TERM");
	char *path = proc_path(c, a, "/signal");
	struct err err;
	int ret = CLI_EXIT_OK;
	if (client_call(c, "POST", path, body, NULL, &err) < 0) {
		cli_error("%s", err.msg);
		ret = CLI_EXIT_FAIL;
	}
	free(path);
	json_decref(body);
	return ret;
}

static double proc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int proc_wait(struct client *c, const struct proc_args *a)
{
	double deadline = a->timeout >= 0 ? proc_now() + (double)a->timeout : 0;
	char *base = proc_path(c, a, "/wait");
	int ret = CLI_EXIT_FAIL;
	json_t *p = NULL;
	for (;;) {
		long step = PROC_WAIT_STEP_S;
		if (a->timeout >= 0) {
			double left = deadline - proc_now();
			step = left <= 0 ? 0 : left < step ? (long)(left + 0.999) : step;
		}
		char *path = xasprintf("%s?timeout=%ld", base, step);
		struct err err;
		json_decref(p);
		int r = client_call(c, "GET", path, NULL, &p, &err);
		free(path);
		if (r < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		const char *st = json_string_value(json_object_get(p, "status"));
		if (!st) {
			cli_error("unexpected answer from magsd (a process without \"status\")");
			goto out;
		}
		if (strcmp(st, "running")) {
			ret = exec_exit_status(p, a->id);
			goto out;
		}
		if (a->timeout >= 0 && proc_now() >= deadline) {
			cli_error("process %ld is still running after %ld s", a->id, a->timeout);
			ret = CLI_EXIT_RUNNING;
			goto out;
		}
	}
out:
	json_decref(p);
	free(base);
	return ret;
}

static int proc_attach(struct client *c, const struct proc_args *a)
{
	json_t *p = NULL;
	struct err err;
	char *path = proc_path(c, a, NULL);
	int ret = CLI_EXIT_FAIL;
	if (client_call(c, "GET", path, NULL, &p, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	const char *st = json_string_value(json_object_get(p, "status"));
	if (!st || strcmp(st, "running")) {
		cli_error("process %ld has ended (%s); mags proc logs %s %ld shows its output", a->id, st ? st : "?",
			  a->name, a->id);
		goto out;
	}
	bool tty = json_is_true(json_object_get(p, "tty"));
	bool has_stdin = tty || json_is_true(json_object_get(p, "stdin"));
	bool term = isatty(STDIN_FILENO);
	struct exec_session s = {
		.name = a->name,
		.pid = a->id,
		.tty = tty,
		.raw = tty && term,
		.input = has_stdin || term,
		.forward = has_stdin,
		.detach_key = term,
	};
	if (term)
		fprintf(stderr, "mags: attached to process %ld (Ctrl-] detaches)\r\n", a->id);
	ret = exec_session_run(c, &s, NULL);
out:
	json_decref(p);
	free(path);
	return ret;
}

static int proc_rm(struct client *c, const struct proc_args *a)
{
	char *path = proc_path(c, a, NULL);
	struct err err;
	int ret = CLI_EXIT_OK;
	if (client_call(c, "DELETE", path, NULL, NULL, &err) < 0) {
		cli_error("%s", err.msg);
		ret = CLI_EXIT_FAIL;
	} else {
		printf("removed process %ld\n", a->id);
	}
	free(path);
	return ret;
}

int cmd_proc(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("proc", "proc: missing subcommand (list, logs, kill, wait, attach or rm)");
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		cli_print_usage("proc");
		return CLI_EXIT_OK;
	}
	static const char *const subs[] = { "list", "logs", "kill", "wait", "attach", "rm" };
	size_t k = 0;
	while (k < sizeof subs / sizeof subs[0] && strcmp(subs[k], sub))
		k++;
	if (k == sizeof subs / sizeof subs[0])
		return cli_usage_error("proc", "proc: unknown subcommand \"%s\"", sub);
	struct proc_args a;
	int r = proc_parse(argc, argv, sub, k != 0, &a);
	if (r)
		return r == 1 ? CLI_EXIT_OK : r;
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	int ret;
	if (k == 0) {
		char *path = proc_path(c, &a, NULL);
		ret = cli_call_print(c, "GET", path, NULL, a.json, "processes", proc_print_table_cb, NULL);
		free(path);
	} else if (k == 1) {
		ret = proc_logs(c, &a);
	} else if (k == 2) {
		ret = proc_kill(c, &a);
	} else if (k == 3) {
		ret = proc_wait(c, &a);
	} else if (k == 4) {
		ret = proc_attach(c, &a);
	} else {
		ret = proc_rm(c, &a);
	}
	client_free(c);
	return ret;
}
