// SPDX-License-Identifier: MIT
/*
 * /api/v1/mags-jobs: submit, list, status, logs (plain and follow), stop.
 * The follow mode streams NDJSON from a libmicrohttpd content callback that
 * blocks on the job event counter; it runs on the connection's own thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "access.h"
#include "apiparse.h"
#include "cluster.h"
#include "db.h"
#include "fs.h"
#include "http.h"
#include "images.h"
#include "jobs.h"
#include "jobspec.h"
#include "names.h"
#include "utf8.h"
#include "workspace.h"
#include "xmalloc.h"

#define LOG_PAGE 256			/* entries per database read */
#define FOLLOW_HEARTBEAT_MS 15000	/* an empty line keeps idle streams alive */
#define FOLLOW_CLUSTER_POLL_MS 100	/* a follower of a job another node runs reads the table this often */
#define JOB_ID_MAX 64

static const char *stream_name(int s)
{
	return s == LOG_STDOUT ? "stdout" : s == LOG_STDERR ? "stderr" : "system";
}

static void new_job_id(char out[37])
{
	uint8_t b[16];
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		abort(); /* the kernel's CSPRNG does not fail after boot */
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static json_t *log_entry_json(const struct log_row *l, bool with_time)
{
	struct buf b;
	buf_init(&b);
	utf8_sanitize(l->data, l->len, &b);
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer(l->seq));
	json_object_set_new(o, "stream", json_string(stream_name(l->stream)));
	json_object_set_new(o, "data", json_stringn(b.data ? (const char *)b.data : "", b.len));
	if (with_time)
		json_object_set_new(o, "time", db_time_json(l->time));
	buf_free(&b);
	return o;
}

/* Records the job's files: inline ones are stored now, declared ones wait for their upload. */
static int store_files(const struct job_row *j, const struct jobspec *js, struct err *err)
{
	char *dir = js->nfiles ? ws_upload_dir(j->id, true) : NULL;
	int r = 0;
	for (size_t i = 0; i < js->nfiles && r == 0; i++) {
		const struct jobspec_file *f = &js->files[i];
		if (f->has_data) {
			char *path = xasprintf("%s/%zu", dir, i + 1);
			r = fs_write_file(path, f->data.data ? f->data.data : (const uint8_t *)"", f->data.len, 0600, err);
			free(path);
		}
		if (r == 0 && db_file_add(j->id, (int)i + 1, f->name, f->mode, f->has_data ? (int64_t)f->data.len : f->size,
					  f->has_data) < 0)
			r = err_set(err, 500, "store file %s", f->name);
	}
	free(dir);
	return r;
}

int api_job_create(int64_t user_id, const char *body, size_t len, const char *cron_id, json_t **out, struct err *err)
{
	*out = NULL;
	struct jobspec js;
	if (jobspec_parse(body, len, &js, err) < 0)
		return err->code == 413 ? -413 : -400;
	if (cron_id && js.nfiles)
		for (size_t i = 0; i < js.nfiles; i++)
			if (!js.files[i].has_data) {
				err_set(err, 400, "\"files\": a scheduled job's files must carry their content (content_base64)");
				jobspec_free(&js);
				return -400;
			}
	char id[37];
	new_job_id(id);
	/* an always-on sandbox keeps its files: without a name it gets a persistent workspace of its own */
	if (js.always_on && !js.workspace) {
		js.workspace = xasprintf("job-%.8s", id);
		js.persist = !js.persist_set;
	}
	if (images_check(js.image, err) < 0) {
		jobspec_free(&js);
		return -400;
	}
	if (ws_check_submit(user_id, &js, err) < 0) {
		jobspec_free(&js);
		return err->code == 404 ? -404 : err->code == 409 ? -409 : -500;
	}
	struct job_row j = { .user_id = user_id, .script = js.script, .timeout = js.timeout,
			     .workspace = js.workspace, .persist = js.persist, .base_image = js.base_image,
			     .from_ws = js.from, .ephemeral = js.ephemeral, .url = js.url, .port = js.port,
			     .ssh = js.ssh, .ssh_key = js.ssh_key, .always_on = js.always_on, .startup = js.startup,
			     .idle_timeout = js.idle_timeout, .image = (char *)images_find(js.image)->name };
	if (cron_id)
		snprintf(j.cron_id, sizeof j.cron_id, "%s", cron_id);
	for (size_t i = 0; i < js.nfiles; i++)
		j.files_pending += !js.files[i].has_data;
	snprintf(j.id, sizeof j.id, "%s", id);
	snprintf(j.status, sizeof j.status, "queued");
	snprintf(j.type, sizeof j.type, "%s", js.file ? "file" : "inline");
	j.created_at = db_now_ms();
	if (store_files(&j, &js, err) < 0 || db_job_insert(&j, err) < 0 ||
	    (js.url && access_url_enable(&j, js.port, err) < 0)) {
		jobspec_free(&js);
		return -500;
	}
	if (!j.files_pending)
		jobs_submit(j.id);
	*out = db_job_json(&j);
	jobspec_free(&js);
	return 0;
}

static enum MHD_Result submit(struct req *r)
{
	struct err err = { 0 };
	json_t *o;
	int rc = api_job_create(r->user_id, r->body.data ? (const char *)r->body.data : "", r->body.len, NULL, &o, &err);
	if (rc < 0)
		return http_reply_error(r, (unsigned)-rc, "%s", err.msg);
	return http_reply_json(r, MHD_HTTP_CREATED, o);
}

static enum MHD_Result list(struct req *r)
{
	const char *status = http_query(r, "status"), *ws = http_query(r, "workspace");
	int limit;
	struct err err = { 0 };
	if (apiparse_jobs_query(status, http_query(r, "limit"), ws, &limit, &err) < 0)
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	json_t *o = json_object();
	json_object_set_new(o, "jobs", db_job_list(r->user_id, status, ws, limit));
	return http_reply_json(r, MHD_HTTP_OK, o);
}

static bool finished(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed");
}

/* State of one follow stream, owned by the MHD response. */
struct follow {
	char id[JOB_ID_MAX];
	int64_t since;
	struct buf pending;	/* rendered, not yet handed to MHD */
	size_t off;
	bool done;		/* the final line is in pending */
};

static void follow_fill(struct follow *f)
{
	int64_t quiet_since = db_now_ms();
	while (!f->done) {
		uint64_t seen = jobs_events();
		struct job_row j;
		if (db_job_get(f->id, 0, &j) < 0) {
			f->done = true;
			return;
		}
		size_t n;
		struct log_row *rows = db_log_read(f->id, f->since, LOG_PAGE, &n);
		for (size_t i = 0; i < n; i++) {
			json_t *o = log_entry_json(&rows[i], false);
			char *s = json_dumps(o, JSON_COMPACT);
			buf_puts(&f->pending, s);
			buf_putc(&f->pending, '\n');
			free(s);
			json_decref(o);
			f->since = rows[i].seq;
		}
		db_log_rows_free(rows, n);
		/* logs are stored before the final state, so a finished job with nothing new is complete */
		if (n == 0 && finished(j.status)) {
			json_t *o = json_object();
			json_object_set_new(o, "status", json_string(j.status));
			json_object_set_new(o, "exit_code", j.has_exit ? json_integer(j.exit_code) : json_null());
			json_object_set_new(o, "error", utf8_json_string(j.error));
			char *s = json_dumps(o, JSON_COMPACT);
			buf_puts(&f->pending, s);
			buf_putc(&f->pending, '\n');
			free(s);
			json_decref(o);
			f->done = true;
		}
		db_job_row_free(&j);
		if (f->pending.len)
			return;
		if (jobs_stopping()) {
			f->done = true; /* magsd is going away; the client reconnects */
			return;
		}
		if (db_now_ms() - quiet_since >= FOLLOW_HEARTBEAT_MS) {
			buf_putc(&f->pending, '\n');
			return;
		}
		/* a job on another node of a cluster makes no event here: look again soon */
		jobs_wait_event(seen, cluster_on() ? FOLLOW_CLUSTER_POLL_MS : 1000);
	}
}

static ssize_t follow_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	struct follow *f = cls;
	if (f->off == f->pending.len) {
		buf_reset(&f->pending);
		f->off = 0;
		if (f->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		follow_fill(f);
		if (!f->pending.len)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	size_t n = f->pending.len - f->off;
	if (n > max)
		n = max;
	memcpy(out, f->pending.data + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static void follow_free_cb(void *cls)
{
	struct follow *f = cls;
	buf_free(&f->pending);
	free(f);
}

static enum MHD_Result logs(struct req *r, const struct job_row *j)
{
	int64_t since;
	bool follow_on;
	struct err err = { 0 };
	const char *fl = http_query(r, "follow");
	if (!fl)
		fl = http_query(r, "stream");
	if (apiparse_logs_query(http_query(r, "since"), fl, &since, &follow_on, &err) < 0)
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	if (follow_on) {
		struct follow *f = xcalloc(1, sizeof *f);
		snprintf(f->id, sizeof f->id, "%s", j->id);
		f->since = since;
		buf_init(&f->pending);
		struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, follow_read_cb, f, follow_free_cb);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	json_t *arr = json_array();
	for (;;) {
		size_t n;
		struct log_row *rows = db_log_read(j->id, since, LOG_PAGE, &n);
		for (size_t i = 0; i < n; i++) {
			json_array_append_new(arr, log_entry_json(&rows[i], true));
			since = rows[i].seq;
		}
		db_log_rows_free(rows, n);
		if (n < LOG_PAGE)
			break;
	}
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "status", json_string(j->status));
	json_object_set_new(o, "exit_code", j->has_exit ? json_integer(j->exit_code) : json_null());
	json_object_set_new(o, "logs", arr);
	return http_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result stop(struct req *r, struct job_row *j)
{
	if (finished(j->status))
		return http_reply_error(r, MHD_HTTP_CONFLICT, "job %s already %s", j->id, j->status);
	if (cluster_on()) {
		/* claimed meanwhile: by another node (hand the stop over), or by this one, about to run it */
		for (int i = 0; i < 50 && jobs_stop(j->id) < 0; i++) {
			struct job_row now;
			if (db_job_get(j->id, 0, &now) < 0)
				break;
			db_job_row_free(j);
			*j = now;
			if (finished(j->status))
				break;
			char *node = cluster_route(r, j, "stop");
			if (node) {
				enum MHD_Result ret = cluster_forward(r, node, NULL);
				free(node);
				return ret;
			}
			jobs_wait_event(jobs_events(), 100);
		}
	} else if (jobs_stop(j->id) < 0) {
		/* between states: neither queued in memory nor running; record the stop */
		db_job_finish(j->id, 0, false, "stopped");
	}
	/* wait briefly for the worker to record the end, so the reply shows it */
	for (int i = 0; i < 100; i++) {
		struct job_row now;
		if (db_job_get(j->id, 0, &now) == 0) {
			bool done = finished(now.status);
			if (done || i == 99) {
				db_job_row_free(j);
				*j = now;
				break;
			}
			db_job_row_free(&now);
		}
		jobs_wait_event(jobs_events(), 100);
	}
	return http_reply_json(r, MHD_HTTP_OK, db_job_json(j));
}

/*
 * PATCH /mags-jobs/:id: always_on, idle_timeout and timeout. A running job
 * takes always_on and idle_timeout at once, and a timeout as a limit from
 * now (a queued one from its start).
 */
static enum MHD_Result patch(struct req *r, struct job_row *j)
{
	struct err err = { 0 };
	struct job_patch p;
	int rc = jobspec_parse_patch(r->body.data ? (const char *)r->body.data : "", r->body.len, &p, &err);
	if (rc < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	bool on = p.has_always_on ? p.always_on : j->always_on;
	int idle = p.has_idle ? p.idle_timeout : j->idle_timeout;
	int timeout = p.has_timeout ? p.timeout : j->timeout;
	if (rc == 0 && finished(j->status))
		rc = err_set(&err, 409, "job %s already %s", j->id, j->status);
	/*
	 * On a running job the new limit counts from now and magsd enforces it; the
	 * agent still ends the script at the limit it started with, so that one
	 * cannot be lifted or passed.
	 */
	bool running = !strcmp(j->status, "running");
	if (rc == 0 && p.has_timeout && running && j->always_on && timeout != j->timeout)
		rc = err_set(&err, 409, "job %s is always-on: its timeout applies to each run of its command and cannot"
				       " change while it runs", j->id);
	if (rc == 0 && p.has_timeout && running && j->timeout > 0 &&
	    (timeout == 0 || db_now_ms() + (int64_t)timeout * 1000 > j->started_at + (int64_t)j->timeout * 1000))
		rc = err_set(&err, 409,
			     "job %s started with a %d s timeout, which still holds: a running job's timeout can only be"
			     " shortened", j->id, j->timeout);
	if (rc == 0 && on && (j->ephemeral || j->base_image))
		rc = err_set(&err, 400, "\"always_on\" cannot be combined with an ephemeral or base-image job");
	if (rc < 0)
		return http_reply_error(r, err.code == 409 ? MHD_HTTP_CONFLICT : MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	db_job_update(j->id, on, timeout, idle);
	jobs_update(j->id, on, idle);
	if (p.has_timeout && running)
		jobs_set_timeout(j->id, timeout);
	struct job_row now;
	if (db_job_get(j->id, 0, &now) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job not found");
	enum MHD_Result ret = http_reply_json(r, MHD_HTTP_OK, api_job_json(&now));
	db_job_row_free(&now);
	return ret;
}

enum MHD_Result api_jobs(struct req *r, const char *rest)
{
	const char *m = r->method;
	if (!*rest || !strcmp(rest, "/")) {
		if (!strcmp(m, "POST"))
			return submit(r);
		if (!strcmp(m, "GET"))
			return list(r);
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /mags-jobs (use GET or POST)", m);
	}
	rest++;
	const char *slash = strchr(rest, '/');
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *action = slash ? slash + 1 : "";
	if (idlen == 0 || idlen >= JOB_ID_MAX)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job not found");
	char id[JOB_ID_MAX];
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	struct job_row j;
	/* a sandbox's processes and files may be named by its workspace: no lookup first */
	bool in_sandbox = !strcmp(action, "exec") || !strncmp(action, "processes", 9) || !strncmp(action, "files", 5);
	if (db_job_get(id, r->user_id, &j) < 0 && (!in_sandbox || db_job_get_running_ws(id, r->user_id, &j) < 0)) {
		struct buf b;
		buf_init(&b);
		utf8_sanitize((const uint8_t *)id, idlen, &b);
		enum MHD_Result ret =
			in_sandbox ? http_reply_error(r, MHD_HTTP_NOT_FOUND,
						      "no job and no running sandbox named \"%s\" (start one with mags new %s)",
						      (const char *)b.data, (const char *)b.data)
				   : http_reply_error(r, MHD_HTTP_NOT_FOUND, "job \"%s\" not found", (const char *)b.data);
		buf_free(&b);
		return ret;
	}
	enum MHD_Result ret;
	/* a node of a cluster: the node that holds the sandbox answers */
	char *node = cluster_route(r, &j, action);
	if (node) {
		/* the job itself, while its node is unreachable (dead, not yet declared lost): what the table says */
		bool unreachable = false;
		bool get = !*action && !strcmp(m, "GET");
		ret = cluster_forward(r, node, get ? &unreachable : NULL);
		free(node);
		if (!unreachable) {
			db_job_row_free(&j);
			return ret;
		}
	}
	if (!*action && !strcmp(m, "GET"))
		ret = http_reply_json(r, MHD_HTTP_OK, api_job_json(&j));
	else if (!strcmp(action, "access") && !strcmp(m, "POST"))
		ret = api_job_access(r, &j);
	else if (!strcmp(action, "logs") && !strcmp(m, "GET"))
		ret = logs(r, &j);
	else if (!strcmp(action, "stop") && !strcmp(m, "POST"))
		ret = stop(r, &j);
	else if (!strcmp(action, "upload") && !strcmp(m, "POST"))
		ret = api_upload_finish(r, &j);
	else if (!strcmp(action, "sync") && !strcmp(m, "POST"))
		ret = j.workspace ? api_ws_sync(r, j.workspace)
				  : http_reply_error(r, MHD_HTTP_CONFLICT, "job %s has no named workspace to sync (run it with -w NAME)", j.id);
	else if (!strcmp(action, "exec") || !strcmp(action, "processes") || !strncmp(action, "processes/", 10))
		ret = api_exec(r, &j, action);
	else if (!strcmp(action, "files") || !strncmp(action, "files/", 6))
		ret = api_files(r, &j, action);
	else if (!*action && !strcmp(m, "PATCH"))
		ret = patch(r, &j);
	else if (!*action || !strcmp(action, "logs") || !strcmp(action, "stop") || !strcmp(action, "upload") ||
		 !strcmp(action, "sync") || !strcmp(action, "access"))
		ret = http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here", m);
	else
		ret = http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /mags-jobs/:id/%.100s", m, action);
	db_job_row_free(&j);
	return ret;
}
