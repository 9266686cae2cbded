// SPDX-License-Identifier: MIT
/*
 * A running sandbox's processes over REST (docs/sandboxes.md, "Processes"):
 *
 *   POST   /mags-jobs/:id/exec                       start; stream its output (or 201 when detached)
 *   GET    /mags-jobs/:id/processes                  list
 *   GET    /mags-jobs/:id/processes/:pid             one
 *   GET    /mags-jobs/:id/processes/:pid/output      its output (?offset=N|end, ?follow=1)
 *   POST   /mags-jobs/:id/processes/:pid/stdin       raw bytes (?eof=1)
 *   POST   /mags-jobs/:id/processes/:pid/signal      {"signal": ...}
 *   POST   /mags-jobs/:id/processes/:pid/resize      {"cols": C, "rows": R}
 *   GET    /mags-jobs/:id/processes/:pid/wait        ?timeout=S
 *   DELETE /mags-jobs/:id/processes/:pid             kill and forget
 *
 * Output streams are NDJSON (application/x-ndjson) written by a blocking
 * content reader (magsd serves a thread per connection). A stream notices
 * its client leaving while it waits (POLLRDHUP on the socket), so a
 * foreground process gets its SIGHUP at once, not at the next output.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "execspec.h"
#include "http.h"
#include "jobs.h"
#include "jobspec.h"
#include "procs.h"
#include "xmalloc.h"

#define STREAM_WAIT_MS 250		/* a stream looks at its client this often while it waits */
#define STREAM_HEARTBEAT_MS 15000	/* an empty line keeps an idle stream alive */
#define QUEUED_WAIT_MS 45000		/* a queued job is waited for this long (clients give up after 60 s without a byte) */
#define WAIT_DEFAULT_S 30
#define WAIT_MAX_S 3600

/* State of one output stream, owned by the MHD response. */
struct pstream {
	struct proc *p;
	int64_t offset;
	bool fg;		/* the process's foreground stream (POST /exec) */
	bool follow;
	bool done;		/* the last line is in pending */
	int fd;			/* the client's socket */
	struct buf pending;
	size_t off;
	int64_t quiet_since;
};

static bool client_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Fills pending with the next lines. False when the client has gone. */
static bool pstream_fill(struct pstream *s)
{
	for (;;) {
		if (proc_events(s->p, &s->offset, s->fg, s->follow ? STREAM_WAIT_MS : 0, &s->pending)) {
			s->done = true;
			return true;
		}
		if (s->pending.len) {
			s->quiet_since = db_now_ms();
			return true;
		}
		if (!s->follow) {
			json_t *o = json_object();
			json_object_set_new(o, "type", json_string("end"));
			json_object_set_new(o, "offset", json_integer(s->offset));
			char *t = json_dumps(o, JSON_COMPACT);
			buf_puts(&s->pending, t);
			buf_putc(&s->pending, '\n');
			free(t);
			json_decref(o);
			s->done = true;
			return true;
		}
		if (client_gone(s->fd))
			return false;
		if (jobs_stopping()) {
			s->done = true; /* magsd is going away; the client sees the stream end without an exit */
			return true;
		}
		if (db_now_ms() - s->quiet_since >= STREAM_HEARTBEAT_MS) {
			buf_putc(&s->pending, '\n');
			s->quiet_since = db_now_ms();
			return true;
		}
	}
}

static ssize_t pstream_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	struct pstream *s = cls;
	if (s->off == s->pending.len) {
		buf_reset(&s->pending);
		s->off = 0;
		if (s->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (!pstream_fill(s))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (!s->pending.len)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	size_t n = s->pending.len - s->off;
	if (n > max)
		n = max;
	memcpy(out, s->pending.data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void pstream_free_cb(void *cls)
{
	struct pstream *s = cls;
	if (s->fg)
		proc_fg_done(s->p); /* SIGHUP when its client left before it ended */
	proc_put(s->p);
	buf_free(&s->pending);
	free(s);
}

/* Streams p's output from offset; takes the reference p. first: a line sent before the output (or NULL). */
static enum MHD_Result reply_stream(struct req *r, struct proc *p, int64_t offset, bool fg, bool follow, json_t *first)
{
	struct pstream *s = xcalloc(1, sizeof *s);
	s->p = p;
	s->offset = offset;
	s->fg = fg;
	s->follow = follow;
	s->quiet_since = db_now_ms();
	buf_init(&s->pending);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	s->fd = ci ? ci->connect_fd : -1;
	if (first) {
		char *t = json_dumps(first, JSON_COMPACT);
		buf_puts(&s->pending, t);
		buf_putc(&s->pending, '\n');
		free(t);
		json_decref(first);
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, pstream_read_cb, s,
									pstream_free_cb);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_err(struct req *r, const struct err *err)
{
	unsigned st = err->code == 409 ? MHD_HTTP_CONFLICT
		    : err->code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE
		    : err->code == 400 ? MHD_HTTP_BAD_REQUEST
		    : err->code == 404 ? MHD_HTTP_NOT_FOUND
				       : MHD_HTTP_INTERNAL_SERVER_ERROR;
	return http_reply_error(r, st, "%s", err->msg);
}

static bool ended(const char *status)
{
	return strcmp(status, "queued") && strcmp(status, "running");
}

/*
 * A sandbox to start a process in: a queued job is waited for. 0, or <0 with
 * err set (409 when it has ended or never started).
 */
static int wait_running(const struct job_row *j, struct err *err)
{
	int64_t until = db_now_ms() + QUEUED_WAIT_MS;
	for (;;) {
		struct job_row now;
		if (db_job_get(j->id, 0, &now) < 0)
			return err_set(err, 404, "job %s not found", j->id);
		bool run = !strcmp(now.status, "running");
		bool over = ended(now.status);
		char st[16];
		snprintf(st, sizeof st, "%s", now.status);
		db_job_row_free(&now);
		if (run)
			return 0;
		if (over)
			return err_set(err, 409, "job %s is %s: exec needs a running sandbox (start one with mags new)", j->id,
				       st);
		if (db_now_ms() >= until)
			return err_set(err, 409, "job %s is still queued", j->id);
		uint64_t seen = jobs_events();
		jobs_wait_event(seen, 1000);
	}
}

static enum MHD_Result exec_start(struct req *r, const struct job_row *j)
{
	struct err err = { 0 };
	struct exec_spec spec;
	if (exec_spec_parse((const char *)r->body.data, r->body.len, &spec, &err) < 0)
		return reply_err(r, &err);
	struct proc *p = NULL;
	int rc = wait_running(j, &err);
	if (rc == 0) {
		rc = procs_start(j->id, &spec, &p, &err);
		if (rc == -ENOENT)
			rc = err_set(&err, 409, "job %s is no longer running: exec needs a running sandbox", j->id);
	}
	bool detach = spec.detach;
	exec_spec_free(&spec);
	if (rc < 0)
		return reply_err(r, &err);
	if (detach) {
		enum MHD_Result ret = http_reply_json(r, MHD_HTTP_CREATED, proc_json(p));
		proc_put(p);
		return ret;
	}
	json_t *start = json_object();
	json_object_set_new(start, "type", json_string("start"));
	json_object_set_new(start, "process", proc_json(p));
	return reply_stream(r, p, 0, true, true, start);
}

/* "1"/"true" or "0"/"false" (absent: def). -1 when it is neither. */
static int query_bool(struct req *r, const char *key, bool def)
{
	const char *v = http_query(r, key);
	if (!v)
		return def;
	if (!strcmp(v, "1") || !strcmp(v, "true"))
		return 1;
	if (!strcmp(v, "0") || !strcmp(v, "false"))
		return 0;
	return -1;
}

/* A decimal in [lo, hi], or -1. */
static long long parse_num(const char *s, long long lo, long long hi)
{
	if (!s || !*s || strlen(s) > 18)
		return -1;
	long long v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
	}
	return v >= lo && v <= hi ? v : -1;
}

static enum MHD_Result output(struct req *r, struct proc *p)
{
	const char *o = http_query(r, "offset");
	int64_t offset = 0;
	if (o && !strcmp(o, "end"))
		offset = PROC_OFFSET_END;
	else if (o && (offset = parse_num(o, 0, INT64_MAX / 2)) < 0) {
		proc_put(p);
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"offset\" must be a byte offset (0 or more) or \"end\"");
	}
	int follow = query_bool(r, "follow", false);
	if (follow < 0) {
		proc_put(p);
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"follow\" must be 1 or 0");
	}
	return reply_stream(r, p, offset, false, follow, NULL);
}

static enum MHD_Result process(struct req *r, const struct job_row *j, long long pid, const char *sub)
{
	const char *m = r->method;
	struct proc *p = procs_find(j->id, pid);
	if (!p)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job %s has no process %lld", j->id, pid);
	struct err err = { 0 };
	int rc = 0;
	if (!*sub && !strcmp(m, "GET")) {
		/* below */
	} else if (!*sub && !strcmp(m, "DELETE")) {
		proc_delete(p);
		proc_put(p);
		return http_reply_json(r, MHD_HTTP_OK, json_object());
	} else if (!strcmp(sub, "output") && !strcmp(m, "GET")) {
		return output(r, p); /* takes p */
	} else if (!strcmp(sub, "stdin") && !strcmp(m, "POST")) {
		int eof = query_bool(r, "eof", false);
		if (eof < 0)
			rc = err_set(&err, 400, "\"eof\" must be 1 or 0");
		else if (r->too_big)
			rc = err_set(&err, 413, "stdin: at most %d bytes per request", API_BODY_MAX);
		else
			rc = proc_stdin(p, r->body.data, r->body.len, eof, &err);
		if (rc == 0) {
			json_t *o = json_object();
			json_object_set_new(o, "bytes", json_integer((json_int_t)r->body.len));
			proc_put(p);
			return http_reply_json(r, MHD_HTTP_OK, o);
		}
	} else if (!strcmp(sub, "signal") && !strcmp(m, "POST")) {
		int sig = exec_signal_parse((const char *)r->body.data, r->body.len, &err);
		rc = sig < 0 ? sig : proc_signal(p, sig, &err);
	} else if (!strcmp(sub, "resize") && !strcmp(m, "POST")) {
		int cols, rows;
		rc = exec_resize_parse((const char *)r->body.data, r->body.len, &cols, &rows, &err);
		if (rc == 0)
			rc = proc_resize(p, cols, rows, &err);
	} else if (!strcmp(sub, "wait") && !strcmp(m, "GET")) {
		const char *t = http_query(r, "timeout");
		long long s = t ? parse_num(t, 0, WAIT_MAX_S) : WAIT_DEFAULT_S;
		if (s < 0)
			rc = err_set(&err, 400, "\"timeout\" must be a number of seconds from 0 to %d", WAIT_MAX_S);
		else
			proc_wait(p, (int)s * 1000);
	} else if (!*sub || !strcmp(sub, "output") || !strcmp(sub, "stdin") || !strcmp(sub, "signal") ||
		   !strcmp(sub, "resize") || !strcmp(sub, "wait")) {
		proc_put(p);
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here", m);
	} else {
		proc_put(p);
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /mags-jobs/:id/processes/:pid/%.64s",
					m, sub);
	}
	enum MHD_Result ret = rc < 0 ? reply_err(r, &err) : http_reply_json(r, MHD_HTTP_OK, proc_json(p));
	proc_put(p);
	return ret;
}

enum MHD_Result api_exec(struct req *r, const struct job_row *j, const char *action)
{
	const char *m = r->method;
	if (!strcmp(action, "exec")) {
		if (strcmp(m, "POST"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /exec (use POST)", m);
		return exec_start(r, j);
	}
	if (!strcmp(action, "processes")) {
		if (strcmp(m, "GET"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
						"%s is not allowed on /processes (use GET; POST /exec starts one)", m);
		return http_reply_json(r, MHD_HTTP_OK, procs_list_json(j->id));
	}
	/* processes/:pid[/sub] */
	const char *rest = action + 10;
	const char *slash = strchr(rest, '/');
	char num[24];
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	long long pid = -1;
	if (n && n < sizeof num) {
		memcpy(num, rest, n);
		num[n] = '\0';
		pid = parse_num(num, 1, INT32_MAX);
	}
	if (pid < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job %s has no process \"%.24s\"", j->id, rest);
	return process(r, j, pid, slash ? slash + 1 : "");
}
