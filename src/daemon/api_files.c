// SPDX-License-Identifier: MIT
/*
 * /api/v1/mags-jobs/:id/files[/...]: a running sandbox's files, as
 * docs/sandboxes.md ("Files") describes them. Every request is one agent
 * channel (docs/agent-protocol.md): FREAD, FSTAT, FLIST, FREMOVE, FMKDIR,
 * WATCH or FILE frames go out on it through jobs_chan_*; DATA, INFO, EVENT,
 * OK and ERROR come back to fop_frame_cb in the job's worker thread, which
 * only copies them into the request's struct fop under its mutex and
 * signals. The connection's own thread (libmicrohttpd runs one per
 * connection) waits there and answers.
 *
 * Downloads (GET /files) and watches (GET /files/watch) stream from a
 * content callback. Flow control: while more than FOP_HIGH bytes wait unread
 * the frame callback asks the worker to PAUSE the channel; the reader sends
 * RESUME once they are below FOP_LOW. A client that leaves is noticed by
 * libmicrohttpd when it next writes, and, while the reader waits for the
 * guest, at once: the reader waits in poll(2) on the socket's hang-up
 * (POLLRDHUP) together with an eventfd the frame callback bumps. Then the
 * channel gets CANCEL and is closed. A watch has no inactivity timeout (an
 * idle watch is normal; libmicrohttpd would otherwise drop a stream whose
 * content callback blocked longer than its connection timeout) and sends no
 * heartbeat lines (NDJSON consumers need not skip blank lines): the hang-up
 * poll, plus TCP keep-alive for a peer that vanished without closing, end it.
 *
 * Uploads (PUT /files): api_upload.c streams the body to a temporary file
 * first (any size, never held in memory); then it goes to the guest as FILE
 * frames of AGENT_FILE_CHUNK, FOP_FILE_WINDOW of them unanswered at a time,
 * and the answer is an FSTAT of the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "apiparse.h"
#include "db.h"
#include "deadline.h"
#include "http.h"
#include "jobs.h"
#include "jobspec.h"
#include "log.h"
#include "proto.h"
#include "utf8.h"
#include "xmalloc.h"

#define FOP_HIGH (4u << 20)		/* unread bytes above which the channel is paused */
#define FOP_LOW (1u << 20)		/* ... and below which it is resumed */
#define FOP_POLL_MS 1000		/* a waiter looks at magsd's shutdown and the stall clock this often */
#define FOP_STALL_MS 120000		/* a guest that sends nothing this long has failed the request */
#define FOP_LIST_BYTES (32u << 20)	/* INFO payloads one FLIST may send */
#define FOP_ERROR_MAX 511		/* bytes of a guest's ERROR text kept */
#define FOP_FILE_WINDOW 4		/* FILE pieces sent and not yet answered */
#define FOP_STREAM_BLOCK (256 * 1024)	/* bytes per libmicrohttpd content callback */

/* One request's channel, shared by the connection's thread and the job's worker. */
struct fop {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char job[40];
	uint32_t chan;		/* 0 until opened; then ours until fop_free */
	uint16_t type;		/* the request: MSG_FREAD keeps DATA, MSG_FSTAT/FLIST INFO, MSG_WATCH EVENT */
	int sock;		/* the client's socket, polled for a hang-up; -1: not watched */
	int efd;		/* with sock: an eventfd the frame callback bumps, polled with it */
	/* under mu, written by fop_frame_cb */
	struct buf in;		/* DATA bytes, or INFO/EVENT payloads each after a u32 length */
	size_t held;		/* bytes the reader took from in and has not handed on yet */
	unsigned oks;		/* OK frames */
	uint64_t frames;	/* every frame, to see a stalled guest */
	char *error;		/* the ERROR text, or why the channel is gone; owned */
	bool ended;		/* ERROR came or the channel is gone: nothing more comes */
	bool gone;		/* the channel is gone (no CANCEL needed) */
	bool paused;		/* we asked for PAUSE and sent no RESUME since */
	bool ever_paused;	/* we asked for PAUSE at least once */
	bool over;		/* FLIST sent more than FOP_LIST_BYTES */
};

/* Wakes f's waiter (f->mu held). Never blocks: the eventfd is non-blocking. */
static void fop_wake(struct fop *f)
{
	pthread_cond_broadcast(&f->cv);
	if (f->efd >= 0) {
		uint64_t one = 1;
		if (write(f->efd, &one, sizeof one) < 0) {
			/* EAGAIN: the counter is full, so the waiter is awake anyway */
		}
	}
}

static bool fop_frame_cb(void *ctx, const struct agent_frame *fr)
{
	struct fop *f = ctx;
	pthread_mutex_lock(&f->mu);
	f->frames++;
	if (fr->type == MSG_OK) {
		f->oks++;
	} else if (fr->type == MSG_ERROR) {
		if (!f->error)
			f->error = xstrndup((const char *)fr->payload, fr->len < FOP_ERROR_MAX ? fr->len : FOP_ERROR_MAX);
		f->ended = true;
	} else if (fr->type == MSG_DATA && f->type == MSG_FREAD) {
		buf_append(&f->in, fr->payload, fr->len);
	} else if ((fr->type == MSG_INFO && (f->type == MSG_FSTAT || f->type == MSG_FLIST)) ||
		   (fr->type == MSG_EVENT && f->type == MSG_WATCH)) {
		if (f->type == MSG_FLIST && f->in.len + fr->len > FOP_LIST_BYTES)
			f->over = true;
		if (!f->over) {
			uint32_t n = fr->len;
			buf_append(&f->in, &n, sizeof n);
			buf_append(&f->in, fr->payload, fr->len);
		}
	}
	bool pause = (f->type == MSG_FREAD || f->type == MSG_WATCH) && f->in.len + f->held > FOP_HIGH;
	if (pause)
		f->paused = f->ever_paused = true;
	fop_wake(f);
	pthread_mutex_unlock(&f->mu);
	return pause;
}

static void fop_gone_cb(void *ctx, const char *why)
{
	struct fop *f = ctx;
	pthread_mutex_lock(&f->mu);
	if (!f->error)
		f->error = xasprintf("the sandbox went away: %s", why ? why : "its job ended");
	f->ended = f->gone = true;
	fop_wake(f);
	pthread_mutex_unlock(&f->mu);
}

static const struct jobs_chan_ops fop_ops = { .frame = fop_frame_cb, .gone = fop_gone_cb };

/* A new fop for request type on job id (freed by fop_free). */
static struct fop *fop_new(const char *job, uint16_t type)
{
	struct fop *f = xcalloc(1, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(f->job, sizeof f->job, "%s", job);
	f->type = type;
	f->sock = f->efd = -1;
	buf_init(&f->in);
	return f;
}

/* Watches the client's socket sock while f waits (a streamed answer): its hang-up ends the wait at once. */
static void fop_watch_client(struct fop *f, int sock)
{
	f->sock = sock;
	if (sock >= 0)
		f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* Closes the channel (CANCEL first when it may still be sending), then frees f. */
static void fop_free(struct fop *f)
{
	if (f->chan) {
		pthread_mutex_lock(&f->mu);
		bool cancel = !f->ended && (f->type == MSG_WATCH || (f->type == MSG_FREAD && !f->oks));
		pthread_mutex_unlock(&f->mu);
		struct err err = { 0 };
		if (cancel)
			jobs_chan_send(f->job, f->chan, MSG_CANCEL, NULL, 0, &err);
		jobs_chan_close(f->job, f->chan);
	}
	if (f->efd >= 0)
		close(f->efd);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	buf_free(&f->in);
	free(f->error);
	free(f);
}

/* Waits on f->cv for up to ms (f->mu held). */
static void fop_wait_ms(struct fop *f, int ms)
{
	struct timespec ts = deadline_in(CLOCK_MONOTONIC, ms);
	pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

/* Whether the client of a streamed answer has hung up. */
static bool client_left(int sock)
{
	if (sock < 0)
		return false;
	struct pollfd p = { .fd = sock, .events = POLLRDHUP };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/*
 * Waits for up to FOP_POLL_MS for a frame (f->mu held, released meanwhile):
 * on the condition variable, or, with a client socket, in poll(2) on the
 * socket's hang-up and the eventfd together, so a client that leaves ends
 * the wait at once. A frame that came before the wait began has left the
 * eventfd readable: no wake-up is lost.
 */
static void fop_sleep(struct fop *f)
{
	if (f->efd < 0) {
		fop_wait_ms(f, FOP_POLL_MS);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	struct pollfd p[2] = { { .fd = f->sock, .events = POLLRDHUP }, { .fd = f->efd, .events = POLLIN } };
	if (poll(p, 2, FOP_POLL_MS) > 0 && (p[1].revents & POLLIN)) {
		uint64_t n;
		if (read(f->efd, &n, sizeof n) < 0) {
			/* EAGAIN: another read took it */
		}
	}
	pthread_mutex_lock(&f->mu);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Why a wait ended (fop_wait): the condition holds, the client left, magsd is
 * stopping, or the guest sent nothing for FOP_STALL_MS.
 */
enum fop_wait { FOP_READY, FOP_CLIENT_LEFT, FOP_STOPPING, FOP_STALLED };

/*
 * Waits (f->mu held) until done(f), looking at the client's socket and at
 * magsd's shutdown every FOP_POLL_MS. stall: give up after FOP_STALL_MS
 * without a frame (false for a watch, which may be quiet for ever). While a
 * download waits with nothing buffered after having been paused it sends
 * RESUME again each time (a PAUSE the worker sent may have passed our RESUME;
 * a RESUME too many is harmless).
 */
static enum fop_wait fop_wait(struct fop *f, bool (*done)(const struct fop *), bool stall)
{
	uint64_t frames = f->frames;
	int64_t last = mono_ms();
	while (!done(f)) {
		if (client_left(f->sock))
			return FOP_CLIENT_LEFT;
		if (jobs_stopping())
			return FOP_STOPPING;
		fop_sleep(f);
		if (f->frames != frames) {
			frames = f->frames;
			last = mono_ms();
			continue;
		}
		if (done(f))
			break;
		if (stall && mono_ms() - last >= FOP_STALL_MS)
			return FOP_STALLED;
		if (f->type == MSG_FREAD && f->ever_paused && !f->in.len && f->chan) {
			f->paused = false;
			pthread_mutex_unlock(&f->mu);
			struct err err = { 0 };
			jobs_chan_send(f->job, f->chan, MSG_RESUME, NULL, 0, &err);
			pthread_mutex_lock(&f->mu);
		}
	}
	return FOP_READY;
}

/* Predicates for fop_wait. */
static bool fop_answered(const struct fop *f)
{
	return f->ended || f->oks > 0;
}

static bool fop_has_data(const struct fop *f)
{
	return f->ended || f->oks > 0 || f->in.len > 0;
}

/* A watch's OK came first: after it only events or the end count. */
static bool fop_has_events(const struct fop *f)
{
	return f->ended || f->in.len > 0;
}

/* ---- errors ---------------------------------------------------------------- */

/*
 * The HTTP status of a guest's ERROR text, which begins with an errno name
 * and a colon (docs/sandboxes.md: not found 404, is/not a directory 400,
 * exists or not empty 409, escape 400, anything else 500).
 */
static unsigned guest_status(const char *text)
{
	static const struct {
		const char *name;
		unsigned status;
	} map[] = {
		{ "ENOENT", MHD_HTTP_NOT_FOUND }, { "ENOTDIR", MHD_HTTP_BAD_REQUEST },
		{ "EISDIR", MHD_HTTP_BAD_REQUEST }, { "EINVAL", MHD_HTTP_BAD_REQUEST },
		{ "EXDEV", MHD_HTTP_BAD_REQUEST }, { "EEXIST", MHD_HTTP_CONFLICT },
		{ "ENOTEMPTY", MHD_HTTP_CONFLICT }, { "EBUSY", MHD_HTTP_CONFLICT },
		{ "E2BIG", MHD_HTTP_CONTENT_TOO_LARGE },
	};
	const char *colon = strchr(text, ':');
	size_t n = colon ? (size_t)(colon - text) : 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (n == strlen(map[i].name) && !strncmp(text, map[i].name, n))
			return map[i].status;
	return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/*
 * The answer to a request the guest refused, about path: the guest's text
 * without its errno name ("ENOENT: /root/x: No such file or directory" reads
 * "/root/x: No such file or directory"), always naming a path first.
 */
static enum MHD_Result reply_guest_error(struct req *r, const char *path, const char *text)
{
	if (!strncmp(text, "EXDEV:", 6))
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s: path escapes the sandbox", path);
	const char *colon = strchr(text, ':'), *rest = text;
	if (colon && colon > text && colon[1] == ' ' && strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == (size_t)(colon - text))
		rest = colon + 2;
	if (rest[0] == '/')
		return http_reply_error(r, guest_status(text), "%s", rest);
	return http_reply_error(r, guest_status(text), "%s: %s", path, rest);
}

/* Whether job id has ended by now; its status in status. */
static bool job_ended(const char *id, char status[16])
{
	struct job_row now;
	snprintf(status, 16, "ended");
	if (db_job_get(id, 0, &now) < 0)
		return true;
	bool ended = strcmp(now.status, "queued") && strcmp(now.status, "running");
	if (ended)
		snprintf(status, 16, "%s", now.status);
	db_job_row_free(&now);
	return ended;
}

static enum MHD_Result reply_not_running(struct req *r, const char *id, const char *status)
{
	return http_reply_error(r, MHD_HTTP_CONFLICT, "job %s is %s; the files API needs a running sandbox", id, status);
}

/* The answer when a job's channel could not be opened (rc from jobs_chan_open). */
static enum MHD_Result reply_open_error(struct req *r, const struct job_row *j, int64_t rc, const struct err *err)
{
	if (rc != -ENOENT) {
		unsigned st = err->code >= 400 && err->code <= 599 ? (unsigned)err->code : MHD_HTTP_INTERNAL_SERVER_ERROR;
		return http_reply_error(r, st, "job %s: %s", j->id, err->msg[0] ? err->msg : "cannot reach the sandbox");
	}
	char status[16];
	if (job_ended(j->id, status))
		return reply_not_running(r, j->id, status);
	if (jobs_stopping())
		return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "magsd is shutting down");
	return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "job %s: its sandbox is not serving now", j->id);
}

/*
 * The answer to a request that failed in the sandbox (f->error set): the
 * guest's ERROR, or its channel gone with the job (409) or with its VM (503).
 */
static enum MHD_Result reply_fop_error(struct req *r, const struct job_row *j, const struct fop *f, const char *path)
{
	char status[16];
	if (f->gone && job_ended(j->id, status))
		return reply_not_running(r, j->id, status);
	if (f->gone)
		return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "job %s: %s", j->id, f->error);
	return reply_guest_error(r, path, f->error);
}

/* The answer when a wait ended without an answer. */
static enum MHD_Result reply_wait_error(struct req *r, const struct job_row *j, enum fop_wait w)
{
	if (w == FOP_CLIENT_LEFT)
		return MHD_NO; /* nobody to answer: drop the connection */
	if (w == FOP_STOPPING)
		return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "magsd is shutting down");
	return http_reply_error(r, MHD_HTTP_GATEWAY_TIMEOUT, "job %s: the sandbox did not answer within %d s", j->id,
				FOP_STALL_MS / 1000);
}

/* ---- requests ------------------------------------------------------------- */

/*
 * jobs_chan_open on job id for f, waiting while the job is still queued
 * (jobs_chan_open waits for a job a worker has taken; one still in the queue
 * is -ENOENT to it), as long as the client stays and magsd runs.
 */
static int64_t chan_open(struct fop *f, const char *id, const void *payload, size_t len, struct err *err)
{
	for (;;) {
		uint64_t seen = jobs_events();
		int64_t c = jobs_chan_open(id, &fop_ops, f, f->type, payload, len, err);
		if (c != -ENOENT)
			return c;
		struct job_row now;
		bool queued = false;
		if (db_job_get(id, 0, &now) == 0) {
			queued = !strcmp(now.status, "queued");
			db_job_row_free(&now);
		}
		if (!queued || jobs_stopping() || client_left(f->sock))
			return -ENOENT;
		jobs_wait_event(seen, FOP_POLL_MS);
	}
}

/* "/root/" + path for a relative path; a new string. */
static char *abs_path(const char *path)
{
	return path[0] == '/' ? xstrdup(path) : xasprintf("/root/%s", path);
}

/*
 * Opens f's channel on job j with one request frame and waits for its answer
 * (OK, ERROR or gone; or, when until_data, the first DATA). Returns 0 when
 * it came (f->error says whether it failed), or -1 after answering the
 * client itself (*ret). A request that is not a stream (FREAD, WATCH) has
 * its channel closed then: f is the caller's alone, to read without f->mu.
 */
static int fop_start(struct req *r, const struct job_row *j, struct fop *f, const struct buf *payload, bool until_data,
		     enum MHD_Result *ret)
{
	struct err err = { 0 };
	int64_t c = chan_open(f, j->id, payload->data, payload->len, &err);
	if (c < 0) {
		*ret = reply_open_error(r, j, c, &err);
		return -1;
	}
	pthread_mutex_lock(&f->mu);
	f->chan = (uint32_t)c;
	enum fop_wait w = fop_wait(f, until_data ? fop_has_data : fop_answered, true);
	pthread_mutex_unlock(&f->mu);
	if (w != FOP_READY) {
		*ret = reply_wait_error(r, j, w);
		return -1;
	}
	if (f->type != MSG_FREAD && f->type != MSG_WATCH) {
		jobs_chan_close(f->job, f->chan);
		f->chan = 0;
	}
	return 0;
}

/* The request's path query, checked: 0, or -1 after answering 400. */
static int files_query(struct req *r, const char **path, unsigned *mode, bool *recursive, enum MHD_Result *ret)
{
	size_t len = 0;
	struct err err = { 0 };
	*path = http_query_n(r, "path", &len);
	if (apiparse_files_query(*path, len, http_query(r, "mode"), http_query(r, "recursive"), mode, recursive,
				 &err) < 0) {
		*ret = http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
		return -1;
	}
	return 0;
}

/* A JSON string of n raw bytes (invalid UTF-8 replaced); new reference. */
static json_t *bytes_json(const uint8_t *p, size_t n)
{
	struct buf b;
	buf_init(&b);
	utf8_sanitize(p, n, &b);
	json_t *s = json_stringn(b.data ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return s;
}

/* RFC 3339 with milliseconds of a time in ns since the epoch. */
static json_t *mtime_json(uint64_t ns)
{
	int64_t ms = (int64_t)(ns / 1000000u);
	return ms > 0 ? db_time_json(ms) : json_string("1970-01-01T00:00:00.000Z");
}

/*
 * FileInfo (docs/sandboxes.md) of one INFO payload: dir is the listed
 * directory (FLIST) or NULL (FSTAT of fallback_path). The guest's values
 * are checked: a field it got wrong is left out, never passed on raw.
 */
static json_t *info_json(const uint8_t *p, size_t len, const char *dir, const char *fallback_path)
{
	json_t *o = json_object();
	struct proto_kv_iter it;
	const char *k;
	size_t kl, vl;
	const uint8_t *v;
	char *name = NULL;
	bool has_path = false, symlink = false;
	json_t *target = NULL;
	proto_kv_iter_init(&it, p, len);
	while (proto_kv_next(&it, &k, &kl, &v, &vl) == 1) {
		uint64_t u;
		if (proto_kv_is(k, kl, "name")) {
			free(name);
			name = xstrndup((const char *)v, vl);
			json_object_set_new(o, "name", bytes_json(v, vl));
		} else if (proto_kv_is(k, kl, "path") && vl) {
			has_path = true;
			json_object_set_new(o, "path", bytes_json(v, vl));
		} else if (proto_kv_is(k, kl, "type")) {
			static const char *const types[] = { "file", "dir", "symlink", "other" };
			const char *t = "other";
			for (size_t i = 0; i < 4; i++)
				if (strlen(types[i]) == vl && !memcmp(types[i], v, vl))
					t = types[i];
			symlink = !strcmp(t, "symlink");
			json_object_set_new(o, "type", json_string(t));
		} else if (proto_kv_is(k, kl, "size") && proto_kv_u64(v, vl, &u) == 0 && u <= (uint64_t)INT64_MAX) {
			json_object_set_new(o, "size", json_integer((json_int_t)u));
		} else if (proto_kv_is(k, kl, "mode")) {
			unsigned m = 0;
			bool ok = vl >= 1 && vl <= 7;
			for (size_t i = 0; ok && i < vl; i++) {
				ok = v[i] >= '0' && v[i] <= '7';
				m = m * 8 + (unsigned)(v[i] - '0');
			}
			if (ok) {
				char s[16];
				snprintf(s, sizeof s, "%04o", m & 07777);
				json_object_set_new(o, "mode", json_string(s));
			}
		} else if (proto_kv_is(k, kl, "mtime_ns") && proto_kv_u64(v, vl, &u) == 0) {
			json_object_set_new(o, "mtime", mtime_json(u));
		} else if (proto_kv_is(k, kl, "target")) {
			json_decref(target);
			target = bytes_json(v, vl);
		}
	}
	if (!has_path) {
		char *path = dir && name ? xasprintf("%s/%s", strcmp(dir, "/") ? dir : "", name) : xstrdup(fallback_path);
		json_object_set_new(o, "path", utf8_json_string(path));
		free(path);
	}
	if (!json_object_get(o, "name")) {
		const char *slash = strrchr(fallback_path, '/');
		json_object_set_new(o, "name", utf8_json_string(slash && slash[1] ? slash + 1 : fallback_path));
	}
	/* every FileInfo has these (a time before 1970 reads as 1970) */
	if (!json_object_get(o, "type"))
		json_object_set_new(o, "type", json_string("other"));
	if (!json_object_get(o, "size"))
		json_object_set_new(o, "size", json_integer(0));
	if (!json_object_get(o, "mode"))
		json_object_set_new(o, "mode", json_string("0000"));
	if (!json_object_get(o, "mtime"))
		json_object_set_new(o, "mtime", mtime_json(0));
	if (symlink && target)
		json_object_set_new(o, "target", target);
	else
		json_decref(target);
	free(name);
	return o;
}

/* The next INFO/EVENT record of in at *off, or false at the end. */
static bool next_record(const struct buf *in, size_t *off, const uint8_t **p, size_t *len)
{
	uint32_t n;
	if (*off + sizeof n > in->len)
		return false;
	memcpy(&n, in->data + *off, sizeof n);
	if (*off + sizeof n + n > in->len)
		return false;
	*p = in->data + *off + sizeof n;
	*len = n;
	*off += sizeof n + n;
	return true;
}

/*
 * FSTAT of path on job j into *info (new reference; NULL when it failed:
 * then *ret is the answer sent). Returns 0 or -1.
 */
static int stat_info(struct req *r, const struct job_row *j, const char *path, json_t **info, enum MHD_Result *ret)
{
	*info = NULL;
	struct fop *f = fop_new(j->id, MSG_FSTAT);
	struct buf pl;
	buf_init(&pl);
	proto_kv_puts(&pl, "path", path);
	int rc = fop_start(r, j, f, &pl, false, ret);
	char *abs = abs_path(path);
	const uint8_t *p;
	size_t len, off = 0;
	if (rc == 0 && f->error) {
		*ret = reply_fop_error(r, j, f, abs);
		rc = -1;
	} else if (rc == 0 && !next_record(&f->in, &off, &p, &len)) {
		*ret = http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s: the sandbox sent no file information", abs);
		rc = -1;
	} else if (rc == 0) {
		*info = info_json(p, len, NULL, abs);
	}
	free(abs);
	buf_free(&pl);
	fop_free(f);
	return rc;
}

static enum MHD_Result files_stat(struct req *r, const struct job_row *j)
{
	const char *path;
	unsigned mode;
	bool recursive;
	enum MHD_Result ret;
	json_t *info;
	if (files_query(r, &path, &mode, &recursive, &ret) < 0 || stat_info(r, j, path, &info, &ret) < 0)
		return ret;
	return http_reply_json(r, MHD_HTTP_OK, info);
}

static enum MHD_Result files_list(struct req *r, const struct job_row *j)
{
	const char *path;
	unsigned mode;
	bool recursive;
	enum MHD_Result ret;
	if (files_query(r, &path, &mode, &recursive, &ret) < 0)
		return ret;
	struct fop *f = fop_new(j->id, MSG_FLIST);
	struct buf pl;
	buf_init(&pl);
	proto_kv_puts(&pl, "path", path);
	char *abs = abs_path(path);
	if (fop_start(r, j, f, &pl, false, &ret) == 0) {
		if (f->error) {
			ret = reply_fop_error(r, j, f, abs);
		} else if (f->over) {
			ret = http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "%s: the listing is larger than %u MiB", abs,
					       FOP_LIST_BYTES >> 20);
		} else {
			json_t *arr = json_array();
			const uint8_t *p;
			size_t len, off = 0;
			while (next_record(&f->in, &off, &p, &len))
				json_array_append_new(arr, info_json(p, len, abs, abs));
			json_t *o = json_object();
			json_object_set_new(o, "path", utf8_json_string(abs));
			json_object_set_new(o, "entries", arr);
			ret = http_reply_json(r, MHD_HTTP_OK, o);
		}
	}
	free(abs);
	buf_free(&pl);
	fop_free(f);
	return ret;
}

/*
 * One request answered by OK alone (FREMOVE, FMKDIR) with payload pl.
 * Returns 0, or -1 after answering the client (*ret).
 */
static int simple_op(struct req *r, const struct job_row *j, uint16_t type, const struct buf *pl, const char *path,
		     enum MHD_Result *ret)
{
	struct fop *f = fop_new(j->id, type);
	int rc = fop_start(r, j, f, pl, false, ret);
	if (rc == 0 && f->error) {
		char *abs = abs_path(path);
		*ret = reply_fop_error(r, j, f, abs);
		free(abs);
		rc = -1;
	}
	fop_free(f);
	return rc;
}

static enum MHD_Result files_remove(struct req *r, const struct job_row *j)
{
	const char *path;
	unsigned mode;
	bool recursive;
	enum MHD_Result ret;
	if (files_query(r, &path, &mode, &recursive, &ret) < 0)
		return ret;
	if (!strcmp(path, "/"))
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"path\": the sandbox's root cannot be removed");
	struct buf pl;
	buf_init(&pl);
	proto_kv_puts(&pl, "path", path);
	if (recursive)
		proto_kv_puts(&pl, "recursive", "1");
	if (simple_op(r, j, MSG_FREMOVE, &pl, path, &ret) == 0)
		ret = http_reply_json(r, MHD_HTTP_OK, json_object());
	buf_free(&pl);
	return ret;
}

/* POST /files/mkdir: 201 with the new directory; with parents an existing directory is 200. */
static enum MHD_Result files_mkdir(struct req *r, const struct job_row *j)
{
	char *path;
	bool parents;
	unsigned mode;
	struct err err = { 0 };
	if (r->too_big)
		return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %d bytes", API_BODY_MAX);
	if (apiparse_mkdir(r->body.data ? (const char *)r->body.data : "", r->body.len, &path, &parents, &mode, &err) < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	enum MHD_Result ret;
	json_t *info = NULL;
	struct buf pl;
	buf_init(&pl);
	char *abs = abs_path(path);
	/* what is there now decides between 201, 200 and 409 */
	struct fop *f = fop_new(j->id, MSG_FSTAT);
	proto_kv_puts(&pl, "path", path);
	int rc = fop_start(r, j, f, &pl, false, &ret);
	const uint8_t *p;
	size_t len, off = 0;
	if (rc == 0 && !f->error && next_record(&f->in, &off, &p, &len)) {
		info = info_json(p, len, NULL, abs);
		const char *type = json_string_value(json_object_get(info, "type"));
		if (parents && type && !strcmp(type, "dir"))
			ret = http_reply_json(r, MHD_HTTP_OK, json_incref(info));
		else
			ret = http_reply_error(r, MHD_HTTP_CONFLICT, "%s: %s", abs,
					       type && !strcmp(type, "dir") ? "the directory exists" : "exists and is not a directory");
		rc = -1;
	} else if (rc == 0 && f->error && (f->gone || guest_status(f->error) != MHD_HTTP_NOT_FOUND)) {
		ret = reply_fop_error(r, j, f, abs);
		rc = -1;
	}
	fop_free(f);
	if (rc == 0) {
		buf_reset(&pl);
		char m[16];
		snprintf(m, sizeof m, "%o", mode);
		proto_kv_puts(&pl, "path", path);
		proto_kv_puts(&pl, "mode", m);
		if (parents)
			proto_kv_puts(&pl, "parents", "1");
		rc = simple_op(r, j, MSG_FMKDIR, &pl, path, &ret);
	}
	json_decref(info);
	if (rc == 0 && stat_info(r, j, path, &info, &ret) == 0)
		ret = http_reply_json(r, MHD_HTTP_CREATED, info);
	free(abs);
	buf_free(&pl);
	free(path);
	return ret;
}

/* ---- PUT: the uploaded body goes to the guest in FILE pieces --------------- */

/* Reads piece off of the uploaded body (fd, size bytes) into a FILE payload in pl. */
static int put_piece(int fd, const char *path, unsigned mode, long long off, long long size, uint8_t *chunk,
		     struct buf *pl, struct err *err)
{
	size_t want = size - off < AGENT_FILE_CHUNK ? (size_t)(size - off) : AGENT_FILE_CHUNK;
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(fd, chunk + got, want - got, off + (long long)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(err, MHD_HTTP_INTERNAL_SERVER_ERROR, "read the uploaded body: %s",
				       n < 0 ? strerror(errno) : "it is shorter than it was");
		got += (size_t)n;
	}
	char m[16], o[24];
	snprintf(m, sizeof m, "%o", mode);
	snprintf(o, sizeof o, "%lld", off);
	buf_reset(pl);
	proto_kv_puts(pl, "path", path);
	proto_kv_puts(pl, "mode", m);
	proto_kv_puts(pl, "offset", o);
	proto_kv_put(pl, "data", chunk, want);
	return 0;
}

static enum MHD_Result files_put(struct req *r, const struct job_row *j)
{
	const char *path, *tmp;
	unsigned mode;
	bool recursive;
	long long size;
	enum MHD_Result ret;
	struct err err = { 0 };
	if (api_upload_body(r, &tmp, &size, &err) < 0)
		return http_reply_error(r, (unsigned)err.code, "%s", err.msg);
	if (files_query(r, &path, &mode, &recursive, &ret) < 0)
		return ret;
	if (!strcmp(path, "/"))
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "\"path\": the sandbox's root is a directory");
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the upload: %s", strerror(errno));
	long long pieces = size ? (size + AGENT_FILE_CHUNK - 1) / AGENT_FILE_CHUNK : 1;
	uint8_t *chunk = xmalloc(AGENT_FILE_CHUNK);
	struct buf pl;
	buf_init(&pl);
	struct fop *f = fop_new(j->id, MSG_FILE);
	char *abs = abs_path(path);
	int rc = put_piece(fd, path, mode, 0, size, chunk, &pl, &err);
	int64_t c = rc < 0 ? 0 : chan_open(f, j->id, pl.data, pl.len, &err);
	if (rc < 0) {
		ret = http_reply_error(r, (unsigned)err.code, "%s", err.msg);
		goto out;
	}
	if (c < 0) {
		ret = reply_open_error(r, j, c, &err);
		goto out;
	}
	f->chan = (uint32_t)c;
	for (long long sent = 1; rc == 0; sent++) {
		/* wait until fewer than FOP_FILE_WINDOW pieces are unanswered (or all are answered) */
		long long want = sent < pieces ? sent - FOP_FILE_WINDOW + 1 : pieces;
		pthread_mutex_lock(&f->mu);
		uint64_t frames = f->frames;
		int64_t last = mono_ms();
		while (!f->ended && (long long)f->oks < want && !jobs_stopping() && mono_ms() - last < FOP_STALL_MS) {
			fop_wait_ms(f, FOP_POLL_MS);
			if (f->frames != frames)
				frames = f->frames, last = mono_ms();
		}
		long long oks = f->oks;
		bool failed = f->ended;
		pthread_mutex_unlock(&f->mu);
		if (oks >= pieces) {
			break;
		} else if (failed) {
			ret = reply_fop_error(r, j, f, abs); /* f->error is set once ended: no more writes */
			rc = -1;
		} else if (oks < want) {
			ret = reply_wait_error(r, j, jobs_stopping() ? FOP_STOPPING : FOP_STALLED);
			rc = -1;
		} else {
			rc = put_piece(fd, path, mode, sent * AGENT_FILE_CHUNK, size, chunk, &pl, &err);
			if (rc == 0)
				rc = jobs_chan_send(j->id, f->chan, MSG_FILE, pl.data, pl.len, &err);
			if (rc == -ENOENT) {
				ret = reply_open_error(r, j, -ENOENT, &err);
			} else if (rc < 0) {
				ret = http_reply_error(r, err.code >= 400 && err.code <= 599 ? (unsigned)err.code : 500, "%s",
						       err.msg);
			}
		}
	}
	if (rc == 0) {
		fop_free(f);
		f = NULL;
		json_t *info;
		if (stat_info(r, j, path, &info, &ret) == 0)
			ret = http_reply_json(r, MHD_HTTP_OK, info);
	}
out:
	if (f)
		fop_free(f);
	free(abs);
	free(chunk);
	buf_free(&pl);
	close(fd);
	return ret;
}

/* ---- streamed answers: GET /files and GET /files/watch -------------------- */

/* A download or watch being streamed; owned by its libmicrohttpd response. */
struct stream {
	struct fop *f;
	struct buf out;		/* bytes being handed to libmicrohttpd */
	size_t off;		/* ... of which this many are handed */
	bool ready_sent;	/* watch: the {"type":"ready"} line is out */
	bool final;		/* out holds the last bytes of the answer */
};

/*
 * The reader handed bytes on: f->held is what it still holds; RESUME the
 * channel when it was paused and what waits is below FOP_LOW.
 */
static void stream_consumed(struct stream *s)
{
	struct fop *f = s->f;
	pthread_mutex_lock(&f->mu);
	f->held = s->out.len - s->off;
	bool resume = f->paused && f->held + f->in.len < FOP_LOW;
	if (resume)
		f->paused = false;
	pthread_mutex_unlock(&f->mu);
	if (resume) {
		struct err err = { 0 };
		jobs_chan_send(f->job, f->chan, MSG_RESUME, NULL, 0, &err);
	}
}

/* Copies what is left of s->out to out (at most max); 0 when nothing is. */
static size_t stream_copy(struct stream *s, char *out, size_t max)
{
	size_t n = s->out.len - s->off;
	if (n > max)
		n = max;
	memcpy(out, s->out.data + s->off, n);
	s->off += n;
	if (n)
		stream_consumed(s);
	return n;
}

/* Takes everything f->in holds into s->out (which the reader has emptied). Under f->mu. */
static void stream_take(struct stream *s)
{
	struct buf t = s->f->in;
	buf_reset(&s->out);
	s->f->in = s->out;
	s->out = t;
	s->off = 0;
	s->f->held = s->out.len;
}

static ssize_t download_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream *s = cls;
	struct fop *f = s->f;
	if (s->off == s->out.len) {
		pthread_mutex_lock(&f->mu);
		f->held = 0;
		enum fop_wait w = fop_wait(f, fop_has_data, true);
		stream_take(s);
		bool ok = f->oks > 0;
		pthread_mutex_unlock(&f->mu);
		if (!s->out.len) {
			if (w == FOP_READY && ok)
				return MHD_CONTENT_READER_END_OF_STREAM;
			/* cut off: the client sees a broken transfer, never a short file */
			if (w != FOP_CLIENT_LEFT)
				log_warn("job %s: download on channel %u: %s", f->job, f->chan,
					 w == FOP_STOPPING ? "magsd is stopping"
					 : w == FOP_STALLED ? "the sandbox stopped sending" : f->error);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	return (ssize_t)stream_copy(s, out, max);
}

/* One NDJSON line of o (reference stolen) onto b. */
static void put_line(struct buf *b, json_t *o)
{
	char *t = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	buf_puts(b, t);
	buf_putc(b, '\n');
	free(t);
}

/* {"type":kind,"path":P,"dir":bool} of one EVENT payload, or NULL when it is not one. */
static json_t *event_json(const uint8_t *p, size_t len)
{
	static const char *const kinds[] = { "create", "modify", "delete", "move_from", "move_to" };
	struct proto_kv_iter it;
	const char *k, *kind = NULL;
	size_t kl, vl;
	const uint8_t *v;
	json_t *path = NULL;
	bool dir = false;
	proto_kv_iter_init(&it, p, len);
	while (proto_kv_next(&it, &k, &kl, &v, &vl) == 1) {
		if (proto_kv_is(k, kl, "kind")) {
			for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
				if (strlen(kinds[i]) == vl && !memcmp(kinds[i], v, vl))
					kind = kinds[i];
		} else if (proto_kv_is(k, kl, "path")) {
			json_decref(path);
			path = bytes_json(v, vl);
		} else if (proto_kv_is(k, kl, "dir")) {
			dir = vl == 1 && v[0] == '1';
		}
	}
	if (!kind || !path) {
		json_decref(path);
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(kind));
	json_object_set_new(o, "path", path);
	json_object_set_new(o, "dir", json_boolean(dir));
	return o;
}

static ssize_t watch_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream *s = cls;
	struct fop *f = s->f;
	if (!s->ready_sent) {
		s->ready_sent = true;
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("ready"));
		put_line(&s->out, o);
	}
	while (s->off == s->out.len) {
		if (s->final)
			return MHD_CONTENT_READER_END_OF_STREAM;
		struct buf raw;
		buf_init(&raw);
		pthread_mutex_lock(&f->mu);
		f->held = 0;
		enum fop_wait w = fop_wait(f, fop_has_events, false);
		/* the records move to raw; out is then refilled with their lines */
		stream_take(s);
		raw = s->out;
		buf_init(&s->out);
		bool ended = f->ended;
		char *error = ended ? xstrdup(f->error) : NULL;
		pthread_mutex_unlock(&f->mu);
		if (w == FOP_CLIENT_LEFT) {
			buf_free(&raw);
			free(error);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		const uint8_t *p;
		size_t len, off = 0;
		while (next_record(&raw, &off, &p, &len)) {
			json_t *o = event_json(p, len);
			if (o)
				put_line(&s->out, o);
		}
		buf_free(&raw);
		if (ended || w != FOP_READY) {
			json_t *o = json_object();
			json_object_set_new(o, "type", json_string("error"));
			json_object_set_new(o, "error", utf8_json_string(w == FOP_STOPPING ? "magsd is shutting down" : error));
			put_line(&s->out, o);
			s->final = true;
		}
		free(error);
		s->off = 0;
	}
	return (ssize_t)stream_copy(s, out, max);
}

static void stream_free_cb(void *cls)
{
	struct stream *s = cls;
	fop_free(s->f);
	buf_free(&s->out);
	free(s);
}

/* The client's socket of r (for fop->sock), or -1. */
static int client_socket(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

/* Answers 200 with f's stream (taking f). */
static enum MHD_Result stream_reply(struct req *r, struct fop *f, bool watch)
{
	struct stream *s = xcalloc(1, sizeof *s);
	s->f = f;
	buf_init(&s->out);
	if (watch && f->sock >= 0) {
		/* quiet is normal for a watch: no idle timeout; keep-alive finds a peer that vanished */
		MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
		int on = 1, idle = 60, intvl = 15, cnt = 4;
		setsockopt(f->sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
		setsockopt(f->sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
		setsockopt(f->sock, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
		setsockopt(f->sock, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, FOP_STREAM_BLOCK,
								      watch ? watch_read_cb : download_read_cb, s,
								      stream_free_cb);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				watch ? "application/x-ndjson" : "application/octet-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (watch) /* the connection lost its idle timeout: it serves nothing after this */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* GET /files and GET /files/watch: the request, its first answer, then the stream. */
static enum MHD_Result files_stream(struct req *r, const struct job_row *j, bool watch)
{
	const char *path;
	unsigned mode;
	bool recursive;
	enum MHD_Result ret;
	if (files_query(r, &path, &mode, &recursive, &ret) < 0)
		return ret;
	struct fop *f = fop_new(j->id, watch ? MSG_WATCH : MSG_FREAD);
	fop_watch_client(f, client_socket(r));
	struct buf pl;
	buf_init(&pl);
	proto_kv_puts(&pl, "path", path);
	if (watch && recursive)
		proto_kv_puts(&pl, "recursive", "1");
	if (!watch)
		proto_kv_puts(&pl, "offset", "0");
	int rc = fop_start(r, j, f, &pl, !watch, &ret);
	buf_free(&pl);
	/* a download's first DATA, or its OK for an empty file, starts the answer; an ERROR before is the answer */
	bool refused = false;
	if (rc == 0) {
		pthread_mutex_lock(&f->mu);
		refused = f->error && !f->in.len; /* ended: f->error stays as it is */
		pthread_mutex_unlock(&f->mu);
	}
	if (refused) {
		char *abs = abs_path(path);
		ret = reply_fop_error(r, j, f, abs);
		free(abs);
		rc = -1;
	}
	if (rc < 0) {
		fop_free(f);
		return ret;
	}
	return stream_reply(r, f, watch);
}

enum MHD_Result api_files(struct req *r, const struct job_row *j, const char *action)
{
	const char *m = r->method, *sub = action + 5; /* after "files" */
	if (*sub == '/')
		sub++;
	enum { DL, PUT, RM, STAT, LIST, MKDIR, WATCH, NONE } op = NONE;
	const char *allowed;
	if (!*sub) {
		op = !strcmp(m, "GET") ? DL : !strcmp(m, "PUT") ? PUT : !strcmp(m, "DELETE") ? RM : NONE;
		allowed = "GET, PUT or DELETE";
	} else if (!strcmp(sub, "stat") || !strcmp(sub, "list") || !strcmp(sub, "watch")) {
		if (!strcmp(m, "GET"))
			op = sub[0] == 's' ? STAT : sub[0] == 'l' ? LIST : WATCH;
		allowed = "GET";
	} else if (!strcmp(sub, "mkdir")) {
		if (!strcmp(m, "POST"))
			op = MKDIR;
		allowed = "POST";
	} else {
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /mags-jobs/:id/%.100s", m, action);
	}
	if (op == NONE)
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /mags-jobs/:id/%s (use %s)", m,
					action, allowed);
	if (strcmp(j->status, "queued") && strcmp(j->status, "running"))
		return reply_not_running(r, j->id, j->status);
	switch (op) {
	case DL:
		return files_stream(r, j, false);
	case WATCH:
		return files_stream(r, j, true);
	case PUT:
		return files_put(r, j);
	case RM:
		return files_remove(r, j);
	case STAT:
		return files_stat(r, j);
	case LIST:
		return files_list(r, j);
	case MKDIR:
		return files_mkdir(r, j);
	default:
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint");
	}
}
