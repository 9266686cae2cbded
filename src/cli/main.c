// SPDX-License-Identifier: MIT
/*
 * mags: the command-line client of magsd. main() reads the global flags and
 * dispatches through commands[] to cmd_<verb>() in cmd_<verb>.c; every
 * command talks to magsd only through the REST API (client.c), reached as
 * config.c and local.c decide.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "config.h"
#include "xmalloc.h"
#include "local.h"
#include "run_opts.h"
#include "text.h"

struct command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *args;	/* for the command list in --help */
	const char *summary;
	const char *usage;	/* `mags help NAME`; NULL: "usage: mags NAME ARGS" */
};

static int main_help(struct cli *cli, int argc, char **argv);
static int main_version(struct cli *cli, int argc, char **argv);

static const char main_sync_usage[] =
	"usage: mags sync [--json] NAME|ID\n"
	"\n"
	"Pushes a workspace to the object store without stopping anything. ID is a\n"
	"job id (8-4-4-4-12 hex digits): the workspace that job uses; anything else\n"
	"is the NAME of a workspace, synced whether or not a job is using it.\n"
	"Prints the version written, or with --json magsd's answer.\n";

static const char main_workspace_usage[] =
	"usage: mags workspace list [--json]\n"
	"       mags workspace delete NAME\n"
	"\n"
	"list: every workspace with its kind (local, persistent or base), the base\n"
	"it was created --from, the job using it, its disk use on the host and its\n"
	"last synced version; --json prints magsd's answer.\n"
	"delete: removes workspace NAME, also from the object store. magsd refuses\n"
	"while a job uses it or while workspaces created --from it exist.\n";

static const char main_new_usage[] =
	"usage: mags new [-p] [--image NAME] NAME\n"
	"\n"
	"Starts a long-lived sandbox on workspace NAME: a job that runs until it is\n"
	"stopped (mags stop ID), to reach with mags ssh NAME or mags url enable NAME.\n"
	"Waits until it runs, then prints \"NAME: running (job ID)\". When NAME\n"
	"already has a running sandbox (a running job), prints that one instead.\n"
	"\n"
	"  -p, --persist   sync the workspace to the object store when it stops\n"
	"      --image IMG guest image to boot (default: the server's)\n";

static const char main_ssh_usage[] =
	"usage: mags ssh NAME|ID [-- CMD [ARGS...]]\n"
	"\n"
	"Opens a shell (or runs CMD) in a running sandbox with the OpenSSH client\n"
	"(ssh), which then owns the terminal; mags exits with ssh's exit code. ID is\n"
	"a job id (8-4-4-4-12 hex digits); NAME is a workspace, whose newest running\n"
	"job is used, or a new sandbox started as by mags new NAME.\n"
	"\n"
	"The key is ~/.mags/id_ed25519 (made with ssh-keygen on first use); the\n"
	"sandbox's host key is pinned in ~/.mags/known_hosts as mags-JOBID.\n"
	"MAGS_SSH names the ssh program to run (default: ssh in PATH).\n";

static const char main_url_usage[] =
	"usage: mags url enable [--json] [--port P] NAME|ID\n"
	"       mags url alias [--json] NAME ALIAS\n"
	"       mags url alias list [--json]\n"
	"       mags url alias remove ALIAS\n"
	"\n"
	"enable: gives a running sandbox a public URL forwarding to its port P\n"
	"(1-65535, default 8080) and prints the URL (--json: the job). ID is a job\n"
	"id; NAME is a workspace, whose newest running job is used (mags new NAME\n"
	"starts one).\n"
	"alias: a stable URL ALIAS.DOMAIN for workspace NAME's sandbox; prints it.\n"
	"ALIAS: " TEXT_ALIAS_RULE ".\n"
	"alias list: ALIAS, WORKSPACE and URL of each alias. alias remove: drops one.\n";

static const struct command commands[] = {
	{ "run", cmd_run, "[flags] SCRIPT", "run a script in a new sandbox, streaming its output", run_opts_usage },
	{ "new", cmd_new, "[-p] [--image IMG] NAME", "start a long-lived sandbox on workspace NAME", main_new_usage },
	{ "ssh", cmd_ssh, "NAME|ID [-- CMD...]", "SSH into a sandbox (starts one for NAME)", main_ssh_usage },
	{ "exec", cmd_exec, "[-itd] NAME [CMD...]", "run a command (or -it a shell) in a running sandbox", cmd_exec_usage },
	{ "proc", cmd_proc, "list|logs|kill|wait|attach|rm ...", "processes of a running sandbox", cmd_proc_usage },
	{ "cp", cmd_cp, "SRC DST", "copy a file into or out of a running sandbox (NAME:PATH)", cmd_cp_usage },
	{ "list", cmd_list, "[--json] [--status S] [--limit N]", "list jobs, newest first", NULL },
	{ "status", cmd_status, "[--json] ID", "show a job", NULL },
	{ "logs", cmd_logs, "[-f] ID", "print a job's output (-f: follow until it ends)", NULL },
	{ "stop", cmd_stop, "NAME|ID", "stop a job, or the sandbox of workspace NAME", NULL },
	{ "sync", cmd_sync, "[--json] NAME|ID", "push a workspace to the object store now", main_sync_usage },
	{ "workspace", cmd_workspace, "list|delete ...", "list or delete workspaces", main_workspace_usage },
	{ "url", cmd_url, "enable|alias ...", "public URLs of sandboxes, and aliases", main_url_usage },
	{ "cron", cmd_cron, "create|list|delete ...", "schedules that run a job at cron times", cmd_cron_usage },
	{ "login", cmd_login, "[--api-url URL] [--no-browser]", "sign in through the dashboard; saves the token", cmd_login_usage },
	{ "whoami", cmd_whoami, "", "the user the API token belongs to", cmd_whoami_usage },
	{ "logout", cmd_logout, "", "forget the token saved in ~/.mags/config.json", cmd_logout_usage },
	{ "setup-claude", cmd_setup_claude, "[--dir DIR]", "install the Claude Code skill for mags", cmd_setup_claude_usage },
	{ "help", main_help, "[COMMAND]", "show help", NULL },
	{ "version", main_version, "", "print the version", NULL },
};

#define COMMANDS_N (sizeof commands / sizeof commands[0])

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("mags: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("mags: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, " (see mags help %s)\n", cmd);
	else
		fputs(" (see mags --help)\n", stderr);
	return CLI_EXIT_USAGE;
}

static const struct command *main_find(const char *name)
{
	for (size_t i = 0; i < COMMANDS_N; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void main_command_usage(const struct command *cmd, FILE *f)
{
	if (cmd->usage)
		fputs(cmd->usage, f);
	else
		fprintf(f, "usage: mags %s %s\n\n%s.\n", cmd->name, cmd->args, cmd->summary);
}

static void main_usage(FILE *f)
{
	fputs("usage: mags [-v] COMMAND [ARGS]\n"
	      "\n"
	      "Runs scripts in microVM sandboxes on a magsd server.\n"
	      "\n"
	      "commands:\n", f);
	for (size_t i = 0; i < COMMANDS_N; i++) {
		char left[64];
		snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  %-42s %s\n", left, commands[i].summary);
	}
	fputs("\n"
	      "global flags:\n"
	      "  -v, --verbose   notes on stderr (the job id of mags run); also MAGS_VERBOSE=1\n"
	      "  -h, --help      this text\n"
	      "      --version   print the version\n"
	      "\n"
	      "environment:\n"
	      "  MAGS_API_URL    magsd's base URL (e.g. http://127.0.0.1:7557); default: the\n"
	      "                  \"api_url\" in ~/.mags/config.json, else a local magsd, started\n"
	      "                  on demand from the directory of this mags binary\n"
	      "  MAGS_TOKEN      API token (alias MAGS_API_TOKEN); default: \"token\" in the config\n", f);
}

static int main_help(struct cli *cli, int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stdout);
		return CLI_EXIT_OK;
	}
	const struct command *cmd = main_find(argv[1]);
	if (!cmd)
		return cli_usage_error(NULL, "unknown command \"%s\"", argv[1]);
	main_command_usage(cmd, stdout);
	return CLI_EXIT_OK;
}

static int main_version(struct cli *cli, int argc, char **argv)
{
	printf("mags %s\n", CLI_VERSION);
	return CLI_EXIT_OK;
}

int cli_connect(struct cli *cli, struct client **out, struct err *err)
{
	*out = NULL;
	struct config cfg;
	int r = config_load(&cfg, err);
	if (r < 0)
		goto out;
	struct client *c = client_new(cfg.api_url, cfg.token);
	if (cfg.local && (r = local_ensure(&cfg, c, err)) < 0) {
		client_free(c);
		goto out;
	}
	*out = c; /* transferred */
out:
	config_free(&cfg);
	return r;
}

int cli_job_call(struct cli *cli, const char *method, const char *id, const char *action, json_t **out)
{
	struct err err;
	struct client *c = NULL;
	char *path = NULL;
	int r = cli_connect(cli, &c, &err);
	if (r == 0) {
		char *esc = client_escape(c, id);
		path = xasprintf("/mags-jobs/%s%s%s", esc, action ? "/" : "", action ? action : "");
		free(esc);
		r = client_call(c, method, path, NULL, out, &err);
	}
	if (r < 0)
		cli_error("%s", err.msg);
	free(path);
	client_free(c);
	return r < 0 ? -1 : 0;
}

void cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	puts(s);
	free(s);
}

int cli_call_print(struct client *c, const char *method, const char *path, json_t *body, bool json, const char *key,
		   void (*print_cb)(json_t *v, const char *arg), const char *arg)
{
	struct err err;
	json_t *resp = NULL;
	int ret = CLI_EXIT_FAIL;
	if (client_call(c, method, path, body, &resp, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (json) {
		cli_print_json(resp);
	} else if (!key) {
		print_cb(resp, arg);
	} else {
		json_t *list = json_object_get(resp, key);
		if (!json_is_array(list)) {
			cli_error("unexpected answer from magsd (no \"%s\" array)", key);
			goto out;
		}
		print_cb(list, arg);
	}
	ret = CLI_EXIT_OK;
out:
	json_decref(resp);
	return ret;
}

/* Whether arg is one of the '|'-separated names in spec. */
static bool main_flag_is(const char *spec, const char *arg)
{
	size_t n = strlen(arg);
	for (const char *p = spec; *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && !strncmp(p, arg, n))
			return true;
		p += len + (bar ? 1 : 0);
	}
	return false;
}

int cli_parse_id_cmd(int argc, char **argv, const char *const *names, bool *flags, size_t nflags, const char **id, bool *help)
{
	*id = NULL;
	*help = false;
	bool only_args = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && !strcmp(a, "--")) {
			only_args = true;
			continue;
		}
		if (!only_args && a[0] == '-' && a[1]) {
			if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
				cli_print_usage(argv[0]);
				*help = true;
				return 0;
			}
			size_t k = 0;
			while (k < nflags && !main_flag_is(names[k], a))
				k++;
			if (k == nflags)
				return cli_usage_error(argv[0], "%s: unknown flag %s", argv[0], a);
			flags[k] = true;
			continue;
		}
		if (*id)
			return cli_usage_error(argv[0], "%s: unexpected argument \"%s\"", argv[0], a);
		if (!*a)
			return cli_usage_error(argv[0], "%s: empty ID", argv[0]);
		*id = a;
	}
	if (!*id)
		return cli_usage_error(argv[0], "%s: missing ID", argv[0]);
	return 0;
}

int cli_parse_id_flag(int argc, char **argv, const char *name, bool *set, const char **id, bool *help)
{
	*set = false;
	return cli_parse_id_cmd(argc, argv, &name, set, 1, id, help);
}

void cli_print_usage(const char *name)
{
	const struct command *cmd = main_find(name);
	if (cmd)
		main_command_usage(cmd, stdout);
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	const char *v = getenv("MAGS_VERBOSE");
	if (v && *v && strcmp(v, "0"))
		cli.verbose = true;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			cli.verbose = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			main_usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			return main_version(&cli, 0, NULL);
		} else {
			return cli_usage_error(NULL, "unknown flag %s", a);
		}
	}
	if (i >= argc) {
		main_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const struct command *cmd = main_find(argv[i]);
	if (!cmd)
		return cli_usage_error(NULL, "unknown command \"%s\"", argv[i]);
	return cmd->fn(&cli, argc - i, argv + i);
}
