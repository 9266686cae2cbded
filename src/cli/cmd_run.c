// SPDX-License-Identifier: MIT
/*
 * mags run [flags] SCRIPT: submit a job (POST /mags-jobs), stream its output
 * live (joblog_follow) and exit with the script's exit code. Nothing but the
 * script's own stdout reaches stdout. SIGINT/SIGTERM stop the job and exit
 * 130; a second signal kills mags at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "joblog.h"
#include "run_opts.h"
#include "xmalloc.h"

static volatile sig_atomic_t run_interrupted;

static void run_signal_cb(int sig)
{
	if (run_interrupted) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	run_interrupted = sig;
}

static void run_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = run_signal_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Asks magsd to stop the job after an interrupt; prints what happened. */
static void run_stop(struct client *c, const char *id)
{
	struct err err;
	err_clear(&err);
	client_set_interrupt(c, NULL);
	char *esc = client_escape(c, id);
	char *path = xasprintf("/mags-jobs/%s/stop", esc);
	free(esc);
	int r = client_call(c, "POST", path, NULL, NULL, &err);
	free(path);
	if (r == CLIENT_OK || (r == CLIENT_E_HTTP && err.code == 409))
		cli_error("interrupted: stopped job %s", id);
	else
		cli_error("interrupted, but could not stop job %s: %s", id, err.msg);
}

/* Maps a job's exit code to ours (a process exit status is 0..255). */
static int run_exit_status(int code)
{
	return code >= 0 && code <= 255 ? code : CLI_EXIT_FAIL;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	struct run_opts o;
	struct err err;
	struct client *c = NULL;
	json_t *body = NULL, *job = NULL;
	struct joblog_end end = { 0 };
	char *id = NULL;
	int ret = CLI_EXIT_FAIL;
	if (run_opts_parse(argc, argv, &o, &err) < 0) {
		ret = cli_usage_error("run", "run: %s", err.msg);
		goto out;
	}
	if (o.help) {
		fputs(run_opts_usage, stdout);
		ret = CLI_EXIT_OK;
		goto out;
	}
	if (run_opts_to_json(&o, &body, &err) < 0) {
		cli_error("run: %s", err.msg);
		goto out;
	}
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	run_interrupted = 0;
	run_install_signals();
	/* the submit is not interruptible: a job we cannot name could not be stopped */
	if (client_call(c, "POST", "/mags-jobs", body, &job, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	const char *idv = json_string_value(json_object_get(job, "id"));
	if (!idv || !*idv) {
		cli_error("magsd accepted the job but sent no id");
		goto out;
	}
	id = xstrdup(idv);
	if (cli->verbose || o.verbose)
		cli_error("job %s", id);
	if (run_interrupted) {
		run_stop(c, id);
		ret = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	client_set_interrupt(c, &run_interrupted);
	int r = joblog_follow(c, id, &end, &err);
	if (r == CLIENT_E_INTR || run_interrupted) {
		run_stop(c, id);
		ret = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		cli_error("job %s: %s", id, err.msg);
		goto out;
	}
	if (end.has_exit) {
		ret = run_exit_status(end.exit_code);
	} else {
		cli_error("job %s failed: %s", id, end.error ? end.error : end.status);
		ret = CLI_EXIT_FAIL;
	}
out:
	joblog_end_free(&end);
	free(id);
	json_decref(job);
	json_decref(body);
	client_free(c);
	run_opts_free(&o);
	return ret;
}
