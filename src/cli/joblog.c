// SPDX-License-Identifier: MIT
/*
 * Printing and following job output; see joblog.h. The follow stream is
 * NDJSON (docs/api.yaml, logs?follow=true): {"seq":N,"stream":S,"data":D} entries, empty
 * heartbeat lines (dropped by the client), and a final
 * {"status":..,"exit_code":..,"error":..}. Entries carry increasing seq
 * numbers, so a resumed stream (since=LAST) never prints anything twice.
 */
#include "joblog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"

/* Follow-stream state handed to the line callback. */
struct joblog_follow_state {
	int64_t since;		/* last seq printed */
	bool progress;		/* something arrived on this connection */
	bool final;		/* the final line arrived */
	struct joblog_end *end;
};

void joblog_end_free(struct joblog_end *end)
{
	free(end->status);
	free(end->error);
	memset(end, 0, sizeof *end);
}

/* Writes p[0..n) to f with "mags: " in front of every line, and ends with a newline. */
static void joblog_write_prefixed(FILE *f, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n;
		fputs("mags: ", f);
		fwrite(p, 1, len, f);
		fputc('\n', f);
		len += nl ? 1 : 0;
		p += len;
		n -= len;
	}
}

/* Prints one log entry object; entries up to *since are skipped. */
static void joblog_print_entry(json_t *e, int64_t *since)
{
	json_t *seqv = json_object_get(e, "seq");
	if (json_is_integer(seqv)) {
		int64_t seq = json_integer_value(seqv);
		if (since && seq <= *since)
			return;	/* already shown before a reconnect */
		if (since)
			*since = seq;
	}
	const char *stream = json_string_value(json_object_get(e, "stream"));
	json_t *dv = json_object_get(e, "data");
	const char *data = json_string_value(dv);
	if (!data)
		return;
	size_t n = json_string_length(dv);
	if (stream && !strcmp(stream, "stdout")) {
		fwrite(data, 1, n, stdout);
		fflush(stdout);
	} else if (stream && !strcmp(stream, "system")) {
		fflush(stdout);
		joblog_write_prefixed(stderr, data, n);
		fflush(stderr);
	} else {
		fflush(stdout);
		fwrite(data, 1, n, stderr);
		fflush(stderr);
	}
}

/* Fills end from an object with status, exit_code and error (a final line or a job). */
static void joblog_end_from(struct joblog_end *end, json_t *o)
{
	joblog_end_free(end);
	const char *st = json_string_value(json_object_get(o, "status"));
	const char *er = json_string_value(json_object_get(o, "error"));
	json_t *ec = json_object_get(o, "exit_code");
	end->status = xstrdup(st ? st : "unknown");
	end->error = er ? xstrdup(er) : NULL;
	if (json_is_integer(ec)) {
		end->has_exit = true;
		end->exit_code = (int)json_integer_value(ec);
	}
}

static int joblog_line_cb(void *arg, char *line, size_t len, struct err *err)
{
	struct joblog_follow_state *s = arg;
	json_error_t je;
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return err_set(err, 0, "malformed line in the log stream: %.80s", line);
	}
	s->progress = true;
	if (json_object_get(o, "seq")) {
		joblog_print_entry(o, &s->since);
	} else if (json_object_get(o, "status")) {
		joblog_end_from(s->end, o);
		s->final = true;
	}
	/* anything else: a newer magsd's addition; ignore it */
	json_decref(o);
	return 0;
}

static char *joblog_path(struct client *c, const char *id, const char *query)
{
	char *esc = client_escape(c, id);
	char *p = xasprintf("/mags-jobs/%s%s", esc, query ? query : "");
	free(esc);
	return p;
}

int joblog_dump(struct client *c, const char *id, int64_t since, int64_t *last, struct err *err)
{
	char *q = xasprintf("/logs?since=%lld", (long long)since);
	char *path = joblog_path(c, id, q);
	free(q);
	json_t *resp = NULL;
	int r = client_call(c, "GET", path, NULL, &resp, err);
	free(path);
	if (r < 0)
		return r;
	json_t *logs = json_object_get(resp, "logs");
	if (!json_is_array(logs)) {
		json_decref(resp);
		err_set(err, 0, "job %s: answer without \"logs\"", id);
		return CLIENT_E_PROTO;
	}
	size_t i;
	json_t *e;
	json_array_foreach(logs, i, e)
		joblog_print_entry(e, &since);
	if (last)
		*last = since;
	json_decref(resp);
	return CLIENT_OK;
}

/* Sleeps ms milliseconds in short steps; returns false when interrupted. */
static bool joblog_sleep(struct client *c, long ms)
{
	for (long t = 0; t < ms; t += 50) {
		if (client_interrupted(c))
			return false;
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return !client_interrupted(c);
}

/* After the stream could not be resumed: print what is stored, then read the job. */
static int joblog_fallback(struct client *c, const char *id, int64_t since, struct joblog_end *end,
			   struct err *err)
{
	int r = joblog_dump(c, id, since, NULL, err);
	if (r < 0)
		return r;
	char *path = joblog_path(c, id, NULL);
	json_t *job = NULL;
	r = client_call(c, "GET", path, NULL, &job, err);
	free(path);
	if (r < 0)
		return r;
	const char *st = json_string_value(json_object_get(job, "status"));
	if (!st || (strcmp(st, "completed") && strcmp(st, "failed"))) {
		err_set(err, 0, "lost the log stream (the job is still %s; see mags logs -f %s)",
			st ? st : "unknown", id);
		json_decref(job);
		return CLIENT_E_CONN;
	}
	joblog_end_from(end, job);
	json_decref(job);
	return CLIENT_OK;
}

int joblog_follow(struct client *c, const char *id, struct joblog_end *end, struct err *err)
{
	memset(end, 0, sizeof *end);
	struct joblog_follow_state s = { .since = 0, .end = end };
	int tries = 0;
	int r;
	for (;;) {
		char *q = xasprintf("/logs?follow=true&since=%lld", (long long)s.since);
		char *path = joblog_path(c, id, q);
		free(q);
		s.progress = false;
		r = client_stream(c, path, joblog_line_cb, &s, err);
		free(path);
		if (s.final)
			return CLIENT_OK;	/* whatever happened after the final line does not matter */
		if (r == CLIENT_E_INTR || r == CLIENT_E_CB || r == CLIENT_E_PROTO)
			return r;
		if (r == CLIENT_E_HTTP && err && (err->code < 500 || err->code == 501))
			return r;	/* the job is gone, or we may not see it: retrying will not help */
		/* CLIENT_OK without a final line (magsd going away), a broken transfer, a 5xx */
		if (s.progress)
			tries = 0;
		if (++tries > JOBLOG_RETRIES)
			break;
		if (!joblog_sleep(c, 200L << (tries - 1))) {
			err_set(err, 0, "interrupted");
			return CLIENT_E_INTR;
		}
	}
	return joblog_fallback(c, id, s.since, end, err);
}
