// SPDX-License-Identifier: MIT
/*
 * mags new [-p] [--image NAME] NAME: a long-lived sandbox for workspace NAME. It is an
 * ordinary job whose script sleeps until it is stopped (NEW_SCRIPT, no
 * timeout), so everything else (mags ssh, url enable, stop, sync) works on
 * it as on any job. The command is idempotent: when workspace NAME already
 * has a running job, that one is the sandbox. It returns once the job runs.
 * The lookup, start and wait are shared with cmd_ssh.c, cmd_url.c and
 * cmd_run.c (declared in cli.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "names.h"
#include "text.h"
#include "xmalloc.h"

int new_find(struct client *c, const char *name, const char *status, json_t **job, struct err *err)
{
	*job = NULL;
	char *esc = client_escape(c, name);
	char *path = xasprintf("/mags-jobs?workspace=%s&status=%s&limit=1", esc, status);
	free(esc);
	json_t *resp = NULL;
	int r = client_call(c, "GET", path, NULL, &resp, err);
	free(path);
	if (r < 0)
		return r;
	json_t *jobs = json_object_get(resp, "jobs");
	if (!json_is_array(jobs)) {
		err_set(err, 0, "unexpected answer from magsd (no \"jobs\" array)");
		r = CLIENT_E_PROTO;
		goto out;
	}
	/* the first that really matches: an older magsd may not filter by workspace */
	size_t i;
	json_t *j;
	json_array_foreach(jobs, i, j) {
		const char *ws = json_string_value(json_object_get(j, "workspace"));
		const char *st = json_string_value(json_object_get(j, "status"));
		const char *id = json_string_value(json_object_get(j, "id"));
		if (ws && st && id && *id && !strcmp(ws, name) && !strcmp(st, status)) {
			*job = json_incref(j);
			break;
		}
	}
out:
	json_decref(resp);
	return r;
}

static void new_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int new_wait(struct client *c, const char *id, long timeout_s, json_t **job, struct err *err)
{
	*job = NULL;
	char *esc = client_escape(c, id);
	char *path = xasprintf("/mags-jobs/%s", esc);
	free(esc);
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r;
	for (;;) {
		json_t *j = NULL;
		if ((r = client_call(c, "GET", path, NULL, &j, err)) < 0)
			break;
		const char *st = json_string_value(json_object_get(j, "status"));
		if (st && strcmp(st, "queued")) {
			*job = j; /* transferred */
			break;
		}
		json_decref(j);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout_s && now.tv_sec - t0.tv_sec >= timeout_s) {
			err_set(err, 0, "job %s is still queued after %ld s (see mags status %s)", id, timeout_s, id);
			r = CLIENT_E_PROTO;
			break;
		}
		/* short steps, so an interrupt is seen soon */
		for (long t = 0; t < NEW_POLL_MS && !client_interrupted(c); t += 50)
			new_sleep_ms(50);
		if (client_interrupted(c)) {
			err_set(err, 0, "interrupted");
			r = CLIENT_E_INTR;
			break;
		}
	}
	free(path);
	return r;
}

/* {"script": NEW_SCRIPT, "workspace": name, "persist": persist[, "image": image]}: POST /mags-jobs. */
static int new_submit(struct client *c, const char *name, bool persist, const char *image, json_t **job,
		      struct err *err)
{
	json_t *body = json_object();
	json_object_set_new(body, "script", json_string(NEW_SCRIPT));
	json_object_set_new(body, "workspace", json_string(name));
	json_object_set_new(body, "persist", json_boolean(persist));
	if (image)
		json_object_set_new(body, "image", json_string(image));
	int r = client_call(c, "POST", "/mags-jobs", body, job, err);
	json_decref(body);
	if (r == 0 && !json_string_value(json_object_get(*job, "id"))) {
		json_decref(*job);
		*job = NULL;
		r = err_set(err, 0, "magsd accepted the sandbox but sent no job id");
	}
	return r;
}

static bool new_running(json_t *job)
{
	const char *st = json_string_value(json_object_get(job, "status"));
	return st && !strcmp(st, "running");
}

/* job, or what it is once it left "queued", in *out (new reference). */
static int new_started(struct client *c, json_t *job, json_t **out, struct err *err)
{
	if (new_running(job)) {
		*out = json_incref(job);
		return 0;
	}
	return new_wait(c, json_string_value(json_object_get(job, "id")), NEW_WAIT_S, out, err);
}

int new_ensure(struct client *c, const char *name, bool persist, const char *image, json_t **job, bool *created,
	       struct err *err)
{
	*job = NULL;
	*created = false;
	json_t *j = NULL, *other = NULL, *sub = NULL;
	int r = new_find(c, name, "running", &j, err);
	if (r == 0 && !j && (r = new_find(c, name, "queued", &other, err)) == 0 && other) {
		/* one on its way (another mags new?): take it once it runs */
		r = new_started(c, other, &j, err);
		if (r == 0 && !new_running(j)) {
			json_decref(j);
			j = NULL;	/* it ended instead: start our own */
		}
	}
	if (r == 0 && !j && (r = new_submit(c, name, persist, image, &sub, err)) == 0) {
		*created = true;
		r = new_started(c, sub, &j, err);
		if (r == 0 && !new_running(j)) {
			const char *st = json_string_value(json_object_get(j, "status"));
			const char *why = json_string_value(json_object_get(j, "error"));
			r = err_set(err, 0, "sandbox %s did not start: job %s %s%s%s", name,
				    json_string_value(json_object_get(j, "id")), st, why ? ": " : "", why ? why : "");
		}
	}
	if (r == 0) {
		*job = j; /* transferred */
		j = NULL;
	}
	json_decref(j);
	json_decref(other);
	json_decref(sub);
	return r;
}

int cmd_new(struct cli *cli, int argc, char **argv)
{
	bool persist = false, created;
	const char *name = NULL, *image = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_print_usage("new");
			return CLI_EXIT_OK;
		}
		if (!strcmp(a, "-p") || !strcmp(a, "--persist"))
			persist = true;
		else if (!strcmp(a, "--image") || !strncmp(a, "--image=", 8)) {
			image = a[7] == '=' ? a + 8 : i + 1 < argc ? argv[++i] : NULL;
			if (!image_name_ok(image))
				return cli_usage_error("new", "new: --image needs an image name (1-%d of a-z 0-9 . _ -)",
						       IMAGE_NAME_MAX);
		} else if (a[0] == '-' && a[1])
			return cli_usage_error("new", "new: unknown flag %s", a);
		else if (name)
			return cli_usage_error("new", "new: unexpected argument \"%s\"", a);
		else
			name = a;
	}
	if (!name)
		return cli_usage_error("new", "new: missing NAME");
	if (!text_workspace_ok(name))
		return cli_usage_error("new", "new: invalid workspace name \"%s\" (%s)", name, TEXT_WORKSPACE_RULE);
	struct err err;
	struct client *c = NULL;
	json_t *job = NULL;
	int ret = CLI_EXIT_FAIL;
	if (cli_connect(cli, &c, &err) < 0 || new_ensure(c, name, persist, image, &job, &created, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	printf("%s: running (job %s)\n", name, json_string_value(json_object_get(job, "id")));
	ret = CLI_EXIT_OK;
out:
	json_decref(job);
	client_free(c);
	return ret;
}
