// SPDX-License-Identifier: MIT
/*
 * mags run [flags] SCRIPT: submit a job (POST /mags-jobs), upload its -f
 * files (declared in the submit; magsd keeps the job queued until each has
 * arrived through POST /mags-jobs/ID/upload), stream its output live
 * (joblog_follow) and exit with the script's exit code. Nothing but the
 * script's own stdout reaches stdout. A failed upload stops the job.
 * SIGINT/SIGTERM stop the job and exit 130; a second signal kills mags at
 * once. With --url / --ssh, the URL and the ssh command to paste go to
 * stderr once the job runs (the SSH key and known_hosts are cmd_ssh.c's).
 * With --always-on it returns 0 once the sandbox runs (it does not end).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "joblog.h"
#include "run_opts.h"
#include "text.h"
#include "xmalloc.h"

#define RUN_ACCESS_WAIT_MS 5000	/* how long a running job's url/ssh may lag its status */

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

/*
 * Asks magsd to stop job id and prints the one line that says both why
 * (what: an upload's error; NULL: an interrupt) and what became of the job.
 */
static void run_stop(struct client *c, const char *id, const char *what)
{
	struct err err;
	err_clear(&err);
	client_set_interrupt(c, NULL);
	char *esc = client_escape(c, id);
	char *path = xasprintf("/mags-jobs/%s/stop", esc);
	free(esc);
	int r = client_call(c, "POST", path, NULL, NULL, &err);
	free(path);
	const char *why = what ? what : "interrupted";
	if (r == CLIENT_OK || (r == CLIENT_E_HTTP && err.code == 409))
		cli_error("%s%s stopped job %s", why, what ? ";" : ":", id);
	else
		cli_error("%s%s could not stop job %s: %s", why, what ? ";" : ", but", id, err.msg);
}

static double run_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Uploads the -f files declared in body's "files" to job id, in order.
 * Returns 0, or CLIENT_E_INTR when interrupted, or another negative
 * client_result with err saying which file failed and why.
 */
static int run_upload_files(struct cli *cli, const struct run_opts *o, struct client *c, const char *id,
			    json_t *body, struct err *err)
{
	json_t *files = json_object_get(body, "files");
	char *esc_id = client_escape(c, id);
	int r = 0;
	for (size_t i = 0; i < o->nfiles && r == 0; i++) {
		json_t *decl = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(decl, "name"));
		long long size = (long long)json_integer_value(json_object_get(decl, "size"));
		long long mode = (long long)json_integer_value(json_object_get(decl, "mode"));
		char *esc_name = client_escape(c, name);
		char *path = xasprintf("/mags-jobs/%s/upload?name=%s&mode=%04llo", esc_id, esc_name, mode);
		free(esc_name);
		json_t *resp = NULL;
		long long sent = 0;
		double t0 = run_now();
		struct stat st;
		if (stat(o->files[i], &st) == 0 && st.st_size != size) {
			/* do not send a whole file magsd will refuse */
			err_set(err, 0, "it changed size since the job was submitted (%lld bytes, now %lld)", size,
				(long long)st.st_size);
			r = CLIENT_E_CB;
		} else {
			r = client_upload(c, path, o->files[i], &resp, &sent, err);
		}
		free(path);
		if (r == 0 && sent != size) {
			err_set(err, 0, "it changed size since the job was submitted (%lld bytes, now %lld)", size,
				sent);
			r = CLIENT_E_CB;
		}
		json_t *got = json_object_get(resp, "size");
		if (r == 0 && json_is_integer(got) && json_integer_value(got) != sent) {
			err_set(err, 0, "magsd stored %lld bytes of the %lld sent", (long long)json_integer_value(got), sent);
			r = CLIENT_E_PROTO;
		}
		if (r == 0 && (cli->verbose || o->verbose)) {
			char human[32];
			text_bytes((uint64_t)sent, human, sizeof human);
			const char *sha = json_string_value(json_object_get(resp, "sha256"));
			cli_error("uploaded %s (%s in %.1f s, sha256 %.12s)", name, human, run_now() - t0, sha ? sha : "?");
		}
		if (r < 0 && r != CLIENT_E_INTR)
			err_wrap(err, "upload of %s failed", o->files[i]);
		json_decref(resp);
	}
	free(esc_id);
	return r;
}

static bool run_access_missing(const struct run_opts *o, json_t *job)
{
	const char *st = json_string_value(json_object_get(job, "status"));
	if (!st || strcmp(st, "running"))
		return false;	/* ended: following it says how */
	return (o->url && !json_string_value(json_object_get(job, "url"))) ||
	       (o->ssh && !json_is_object(json_object_get(job, "ssh")));
}

/* "ssh: ssh -i ... root@HOST" on stderr; the host key goes to known_hosts first. */
static void run_print_ssh(const struct ssh_files *f, json_t *job)
{
	struct err err;
	char **argv = NULL;
	if (ssh_command(f, "ssh", job, false, NULL, 0, &argv, &err) < 0) {
		cli_error("ssh: %s", err.msg);
		return;
	}
	struct buf b;
	buf_init(&b);
	for (char **p = argv; *p; p++) {
		if (p != argv)
			buf_putc(&b, ' ');
		text_shell_word(&b, *p);
	}
	fprintf(stderr, "ssh: %s\n", (char *)b.data);
	buf_free(&b);
	ssh_argv_free(argv);
}

/*
 * --url / --ssh: waits until job id has left "queued" and, when it runs,
 * prints "url: URL" and "ssh: COMMAND" on stderr. The job's output is not
 * followed meanwhile; it is stored, so none is lost. Returns 0, or
 * CLIENT_E_INTR when interrupted (other failures are only noted: following
 * the job tells the rest).
 */
static int run_show_access(struct client *c, const struct run_opts *o, const struct ssh_files *f, const char *id)
{
	struct err err;
	json_t *job = NULL;
	int r = new_wait(c, id, 0, &job, &err);
	for (long t = 0; r == 0 && run_access_missing(o, job) && t < RUN_ACCESS_WAIT_MS; t += NEW_POLL_MS) {
		json_decref(job);
		struct timespec ts = { 0, NEW_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
		r = new_wait(c, id, 0, &job, &err);
	}
	if (r == CLIENT_E_INTR || client_interrupted(c)) {
		json_decref(job);
		return CLIENT_E_INTR;
	}
	const char *st = json_string_value(json_object_get(job, "status"));
	if (r < 0) {
		cli_error("job %s: %s", id, err.msg);
	} else if (st && !strcmp(st, "running")) {
		const char *url = json_string_value(json_object_get(job, "url"));
		fflush(stdout);
		if (o->url && url)
			fprintf(stderr, "url: %s\n", url);
		else if (o->url)
			cli_error("job %s runs, but magsd reported no URL (see mags status %s)", id, id);
		if (o->ssh)
			run_print_ssh(f, job);
		fflush(stderr);
	}
	json_decref(job);
	return 0;
}

/*
 * --always-on: the job does not end, so mags run returns once it runs and
 * says how to follow and stop it. Returns 0 then, CLIENT_E_INTR when
 * interrupted, or 1 when the job already ended (its output and exit code
 * are then followed as for any job).
 */
static int run_detach(struct client *c, const struct run_opts *o, const char *id)
{
	struct err err;
	json_t *job = NULL;
	int r = new_wait(c, id, 0, &job, &err);
	const char *st = job ? json_string_value(json_object_get(job, "status")) : NULL;
	if (r == 0 && st && !strcmp(st, "running")) {
		fflush(stdout);
		fprintf(stderr, "always-on sandbox %s is running; `mags logs -f %s` follows its output, `mags stop %s` stops it\n",
			id, id, o->workspace ? o->workspace : id);
		r = 0;
	} else if (r != CLIENT_E_INTR) {
		r = 1;
	}
	json_decref(job);
	return r;
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
	struct ssh_files files = { 0 };
	char *id = NULL, *pub = NULL;
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
	if (o.ssh) {
		if (ssh_files_init(&files, &err) < 0 || ssh_key_ensure(&files, &pub, &err) < 0) {
			cli_error("run --ssh: %s", err.msg);
			goto out;
		}
		json_object_set_new(body, "ssh_public_key", json_string(pub));
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
		run_stop(c, id, NULL);
		ret = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	client_set_interrupt(c, &run_interrupted);
	int r = run_upload_files(cli, &o, c, id, body, &err);
	if (r == CLIENT_E_INTR || run_interrupted) {
		run_stop(c, id, NULL);
		ret = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		run_stop(c, id, err.msg);
		goto out;
	}
	if ((o.url || o.ssh) && run_show_access(c, &o, &files, id) == CLIENT_E_INTR) {
		run_stop(c, id, NULL);
		ret = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (o.always_on && (r = run_detach(c, &o, id)) != 1) {
		if (r == CLIENT_E_INTR || run_interrupted) {
			run_stop(c, id, NULL);
			ret = CLI_EXIT_INTERRUPTED;
		} else {
			ret = CLI_EXIT_OK;
		}
		goto out;
	}
	r = joblog_follow(c, id, &end, &err);
	if (r == CLIENT_E_INTR || run_interrupted) {
		run_stop(c, id, NULL);
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
	ssh_files_free(&files);
	free(pub);
	free(id);
	json_decref(job);
	json_decref(body);
	client_free(c);
	run_opts_free(&o);
	return ret;
}
