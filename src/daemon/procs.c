// SPDX-License-Identifier: MIT
/*
 * Processes of running sandboxes; see procs.h. One mutex guards every
 * table and process, one condition variable announces any change. Lock
 * order: the channel callbacks run with the job's channel lock held and take
 * P.mu; so nothing here calls into jobs.c while holding P.mu (except
 * jobs_chan_close from inside a callback, which takes no lock).
 */
#include "procs.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "db.h"
#include "deadline.h"
#include "jobs.h"
#include "log.h"
#include "proto.h"
#include "utf8.h"
#include "xmalloc.h"

#define STDIN_PIECE (64 * 1024)	/* bytes per STDIN frame */

enum proc_status { PROC_RUNNING, PROC_EXITED, PROC_LOST };

/* A piece of output as it came (one STDOUT or STDERR frame). */
struct chunk {
	int64_t off;
	uint32_t len;
	bool err;
	struct chunk *next;
	uint8_t data[];
};

struct proc {
	int refs;			/* the table's and each holder's */
	char job[40];
	long long id;
	uint32_t chan;			/* 0 until the channel is open */
	bool chan_done;			/* it ended, or the sandbox went: nothing more to send on it */
	char *command, *cwd;
	bool tty, has_stdin, detached;
	int cols, rows;
	enum proc_status status;
	bool stdin_closed;
	bool has_exit;
	int exit_code, signal;
	bool timed_out;
	char *error;
	int64_t started_ms, ended_ms;	/* wall clock */
	uint64_t ended_seq;		/* order of the ends (the ended window keeps the last) */
	/* output: chunks from base to end */
	struct chunk *head, *tail;
	int64_t base, end;
	size_t kept;
	/* the foreground stream */
	bool fg;
	int64_t fg_off;
	bool paused;
	bool listed;			/* in its job's table */
	bool starting;			/* procs_start has not yet opened its channel (or failed to) */
	struct proc *next;
};

struct jobprocs {
	char job[40];
	long long next_id;
	struct proc *procs;		/* id order */
	struct jobprocs *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobprocs *jobs;
	uint64_t ended_seq;		/* the last proc.ended_seq given out */
} P = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static struct jobprocs *table_locked(const char *job, bool create)
{
	for (struct jobprocs *t = P.jobs; t; t = t->next)
		if (!strcmp(t->job, job))
			return t;
	if (!create)
		return NULL;
	struct jobprocs *t = xcalloc(1, sizeof *t);
	snprintf(t->job, sizeof t->job, "%s", job);
	t->next_id = 1;
	t->next = P.jobs;
	P.jobs = t;
	return t;
}

static void proc_free(struct proc *p)
{
	while (p->head) {
		struct chunk *c = p->head;
		p->head = c->next;
		free(c);
	}
	free(p->command);
	free(p->cwd);
	free(p->error);
	free(p);
}

static void put_locked(struct proc *p)
{
	if (--p->refs == 0)
		proc_free(p);
}

void proc_put(struct proc *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&P.mu);
	put_locked(p);
	pthread_mutex_unlock(&P.mu);
}

/* Takes p out of its table (the table's reference goes). Under mu. */
static void unlist_locked(struct jobprocs *t, struct proc *p)
{
	for (struct proc **pp = &t->procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			p->listed = false;
			put_locked(p);
			return;
		}
}

/* Keeps at most PROC_ENDED_KEEP ended processes in t, dropping those that ended first. Under mu. */
static void trim_ended_locked(struct jobprocs *t)
{
	int ended = 0;
	for (struct proc *p = t->procs; p; p = p->next)
		ended += p->status != PROC_RUNNING;
	for (; ended > PROC_ENDED_KEEP; ended--) {
		struct proc *first = NULL;
		for (struct proc *p = t->procs; p; p = p->next)
			if (p->status != PROC_RUNNING && (!first || p->ended_seq < first->ended_seq))
				first = p;
		unlist_locked(t, first);
	}
}

static void ended_locked(struct proc *p)
{
	p->chan_done = true;
	p->ended_ms = db_now_ms();
	p->ended_seq = ++P.ended_seq;
	struct jobprocs *t = p->listed ? table_locked(p->job, false) : NULL;
	if (t)
		trim_ended_locked(t);
	pthread_cond_broadcast(&P.cv);
}

static void add_output_locked(struct proc *p, bool err, const uint8_t *d, size_t n)
{
	struct chunk *c = xmalloc(sizeof *c + n);
	c->off = p->end;
	c->len = (uint32_t)n;
	c->err = err;
	c->next = NULL;
	memcpy(c->data, d, n);
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->end += (int64_t)n;
	p->kept += n;
	while (p->kept > PROC_KEEP && p->head && p->head != p->tail) {
		struct chunk *o = p->head;
		p->head = o->next;
		p->kept -= o->len;
		p->base = p->head->off;
		free(o);
	}
}

/* Frames of the process's channel, in the job's worker thread. */
static bool proc_frame(void *ctx, const struct agent_frame *f)
{
	struct proc *p = ctx;
	bool pause = false;
	pthread_mutex_lock(&P.mu);
	if (f->type == MSG_STDOUT || f->type == MSG_STDERR) {
		if (f->len)
			add_output_locked(p, f->type == MSG_STDERR, f->payload, f->len);
		if (p->fg && !p->paused && p->end - p->fg_off > PROC_FG_HIGH)
			pause = p->paused = true;
		pthread_cond_broadcast(&P.cv);
	} else if (f->type == MSG_ERROR && p->end > 0) {
		/*
		 * The command runs (it printed): this ERROR answers a control frame
		 * (PAUSE or RESUME from an agent that predates them, a bad SIGNAL),
		 * not the EXEC. The process goes on; its EXIT still comes.
		 */
		log_warn("job %s: process %lld: the agent refused a request: %.*s", p->job, p->id,
			 (int)(f->len > 300 ? 300 : f->len), (const char *)f->payload);
	} else if (f->type == MSG_EXIT || f->type == MSG_ERROR) {
		struct agent_exit ex;
		if (f->type == MSG_EXIT && proto_exit_decode(f->payload, f->len, &ex) == 0) {
			p->has_exit = true;
			p->exit_code = ex.code;
			p->signal = ex.signal;
			p->timed_out = ex.flags & AGENT_EXIT_TIMEOUT;
		} else {
			/* the command never started (the agent said why), or a malformed exit report */
			free(p->error);
			p->error = f->type == MSG_ERROR
					   ? xasprintf("the sandbox could not run it: %.*s", (int)(f->len > 300 ? 300 : f->len),
						       (const char *)f->payload)
					   : xstrdup("malformed exit report from the agent");
		}
		p->status = PROC_EXITED;
		ended_locked(p);
		jobs_chan_close(p->job, f->chan); /* allowed from the channel's own callback */
		pthread_mutex_unlock(&P.mu);
		proc_put(p); /* the channel's reference */
		return false;
	}
	pthread_mutex_unlock(&P.mu);
	return pause;
}

static void proc_gone(void *ctx, const char *why)
{
	struct proc *p = ctx;
	pthread_mutex_lock(&P.mu);
	if (p->status == PROC_RUNNING) {
		p->status = PROC_LOST;
		free(p->error);
		p->error = xstrdup(why);
		ended_locked(p);
	}
	p->chan_done = true;
	put_locked(p); /* the channel's reference */
	pthread_mutex_unlock(&P.mu);
}

/*
 * The channel holds a reference to the process, given back by proc_gone, or
 * by whoever closes the channel (the exit, proc_delete, procs_job_ended).
 */
static const struct jobs_chan_ops proc_ops = { .frame = proc_frame, .gone = proc_gone };

int procs_start(const char *job_id, const struct exec_spec *s, struct proc **out, struct err *err)
{
	*out = NULL;
	struct buf kv;
	buf_init(&kv);
	proto_kv_puts(&kv, "cmd", s->command);
	proto_kv_puts(&kv, "cwd", s->cwd ? s->cwd : "/root");
	for (size_t off = 0; off < s->env.len;) {
		const char *e = (const char *)s->env.data + off;
		proto_kv_puts(&kv, "env", e);
		off += strlen(e) + 1;
	}
	char num[24];
	if (s->timeout) {
		snprintf(num, sizeof num, "%d", s->timeout);
		proto_kv_puts(&kv, "timeout", num);
	}
	if (s->stdin_open)
		proto_kv_puts(&kv, "stdin", "1");
	if (s->tty) {
		proto_kv_puts(&kv, "tty", "1");
		snprintf(num, sizeof num, "%d", s->cols);
		proto_kv_puts(&kv, "cols", num);
		snprintf(num, sizeof num, "%d", s->rows);
		proto_kv_puts(&kv, "rows", num);
	}
	if (kv.len > AGENT_FRAME_MAX) {
		size_t n = kv.len;
		buf_free(&kv);
		return err_set(err, 413, "the command with its environment and options is %zu bytes, more than the %d"
					 " a request to the sandbox may carry", n, AGENT_FRAME_MAX);
	}
	struct proc *p = xcalloc(1, sizeof *p);
	snprintf(p->job, sizeof p->job, "%s", job_id);
	p->command = xstrdup(s->command);
	p->cwd = xstrdup(s->cwd ? s->cwd : "/root");
	p->tty = s->tty;
	p->has_stdin = s->stdin_open;
	p->detached = s->detach;
	p->cols = s->cols;
	p->rows = s->rows;
	p->fg = !s->detach;
	p->started_ms = db_now_ms();
	p->starting = true;
	p->refs = 3; /* the table, the channel, the caller */
	pthread_mutex_lock(&P.mu);
	struct jobprocs *t = table_locked(job_id, true);
	p->id = t->next_id++;
	struct proc **pp = &t->procs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	p->listed = true;
	pthread_mutex_unlock(&P.mu);
	int64_t chan = jobs_chan_open(job_id, &proc_ops, p, MSG_EXEC, kv.data, kv.len, err);
	buf_free(&kv);
	pthread_mutex_lock(&P.mu);
	p->starting = false;
	if (chan < 0) {
		t = table_locked(job_id, false);
		if (t && p->listed)
			unlist_locked(t, p);
		if (t && !t->procs && chan == -ENOENT) {
			/* the job is not running (it may have ended, and procs_job_ended gone by): no table */
			struct jobprocs **tp = &P.jobs;
			while (*tp != t)
				tp = &(*tp)->next;
			*tp = t->next;
			free(t);
		}
		/* it never ran: whoever holds it (a follower found it in the list) sees it end */
		p->status = PROC_LOST;
		p->chan_done = true;
		p->ended_ms = db_now_ms();
		free(p->error);
		p->error = xstrdup(chan == -ENOENT ? "the sandbox is not running" : err->msg);
		pthread_cond_broadcast(&P.cv); /* and proc_delete may wait for the start */
		p->refs -= 2; /* the channel's (never opened) and the caller's */
		if (p->refs == 0)
			proc_free(p);
		pthread_mutex_unlock(&P.mu);
		return (int)chan;
	}
	p->chan = (uint32_t)chan;
	pthread_cond_broadcast(&P.cv);
	pthread_mutex_unlock(&P.mu);
	*out = p;
	return 0;
}

struct proc *procs_find(const char *job_id, long long pid)
{
	struct proc *found = NULL;
	pthread_mutex_lock(&P.mu);
	struct jobprocs *t = table_locked(job_id, false);
	for (struct proc *p = t ? t->procs : NULL; p; p = p->next)
		if (p->id == pid) {
			found = p;
			p->refs++;
			break;
		}
	pthread_mutex_unlock(&P.mu);
	return found;
}

static const char *status_name(enum proc_status s)
{
	return s == PROC_RUNNING ? "running" : s == PROC_EXITED ? "exited" : "lost";
}

static json_t *json_locked(struct proc *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(p->id));
	json_object_set_new(o, "command", utf8_json_string(p->command));
	json_object_set_new(o, "tty", json_boolean(p->tty));
	json_object_set_new(o, "stdin", json_boolean(p->has_stdin));
	json_object_set_new(o, "detached", json_boolean(p->detached));
	json_object_set_new(o, "cwd", utf8_json_string(p->cwd));
	json_object_set_new(o, "status", json_string(status_name(p->status)));
	json_object_set_new(o, "exit_code", p->has_exit ? json_integer(p->exit_code) : json_null());
	json_object_set_new(o, "signal", p->has_exit && p->signal ? json_integer(p->signal) : json_null());
	json_object_set_new(o, "timed_out", json_boolean(p->timed_out));
	json_object_set_new(o, "error", utf8_json_string(p->error));
	json_object_set_new(o, "started_at", db_time_json(p->started_ms));
	json_object_set_new(o, "ended_at", db_time_json(p->ended_ms));
	json_object_set_new(o, "output_bytes", json_integer(p->end));
	json_object_set_new(o, "cols", json_integer(p->cols));
	json_object_set_new(o, "rows", json_integer(p->rows));
	return o;
}

json_t *proc_json(struct proc *p)
{
	pthread_mutex_lock(&P.mu);
	json_t *o = json_locked(p);
	pthread_mutex_unlock(&P.mu);
	return o;
}

json_t *procs_list_json(const char *job_id)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&P.mu);
	struct jobprocs *t = table_locked(job_id, false);
	for (struct proc *p = t ? t->procs : NULL; p; p = p->next)
		json_array_append_new(arr, json_locked(p));
	pthread_mutex_unlock(&P.mu);
	json_t *o = json_object();
	json_object_set_new(o, "processes", arr);
	return o;
}

void procs_job_ended(const char *job_id)
{
	pthread_mutex_lock(&P.mu);
	struct jobprocs **tp = &P.jobs;
	while (*tp && strcmp((*tp)->job, job_id))
		tp = &(*tp)->next;
	struct jobprocs *t = *tp;
	if (t) {
		*tp = t->next;
		while (t->procs)
			unlist_locked(t, t->procs);
		free(t);
	}
	pthread_cond_broadcast(&P.cv);
	pthread_mutex_unlock(&P.mu);
}

/* The channel of a running process, or 0 with err set (409) saying why not. Under mu. */
static uint32_t live_chan_locked(struct proc *p, struct err *err)
{
	if (p->status != PROC_RUNNING || p->chan_done) {
		err_set(err, 409, "process %lld has %s", p->id, p->status == PROC_LOST ? "been lost" : "ended");
		return 0;
	}
	if (!p->chan)
		err_set(err, 409, "process %lld is still starting", p->id);
	return p->chan;
}

static int proc_send(struct proc *p, uint32_t chan, uint16_t type, const void *d, size_t n, struct err *err)
{
	int r = jobs_chan_send(p->job, chan, type, d, n, err);
	if (r == -ENOENT)
		return err_set(err, 409, "process %lld has ended", p->id);
	return r;
}

int proc_stdin(struct proc *p, const void *data, size_t n, bool eof, struct err *err)
{
	pthread_mutex_lock(&P.mu);
	uint32_t chan = live_chan_locked(p, err);
	if (chan && !p->has_stdin) {
		chan = 0;
		err_set(err, 409, "process %lld has no stdin (start it with \"stdin\": true or \"tty\": true)", p->id);
	} else if (chan && p->stdin_closed) {
		chan = 0;
		err_set(err, 409, "the stdin of process %lld is closed", p->id);
	} else if (chan && eof) {
		p->stdin_closed = true;
	}
	pthread_mutex_unlock(&P.mu);
	if (!chan)
		return -409;
	int r = 0;
	const uint8_t *d = data;
	for (size_t off = 0; off < n && r == 0; off += STDIN_PIECE)
		r = proc_send(p, chan, MSG_STDIN, d + off, n - off > STDIN_PIECE ? STDIN_PIECE : n - off, err);
	if (r == 0 && eof)
		r = proc_send(p, chan, MSG_STDIN, NULL, 0, err);
	return r;
}

int proc_signal(struct proc *p, int sig, struct err *err)
{
	pthread_mutex_lock(&P.mu);
	uint32_t chan = live_chan_locked(p, err);
	pthread_mutex_unlock(&P.mu);
	if (!chan)
		return -409;
	uint8_t b[4] = { (uint8_t)sig, (uint8_t)(sig >> 8), (uint8_t)(sig >> 16), (uint8_t)(sig >> 24) };
	return proc_send(p, chan, MSG_SIGNAL, b, sizeof b, err);
}

int proc_resize(struct proc *p, int cols, int rows, struct err *err)
{
	pthread_mutex_lock(&P.mu);
	uint32_t chan = live_chan_locked(p, err);
	if (chan && !p->tty) {
		chan = 0;
		err_set(err, 409, "process %lld has no terminal (start it with \"tty\": true)", p->id);
	}
	if (chan) {
		p->cols = cols;
		p->rows = rows;
	}
	pthread_mutex_unlock(&P.mu);
	if (!chan)
		return -409;
	uint8_t b[4] = { (uint8_t)cols, (uint8_t)(cols >> 8), (uint8_t)rows, (uint8_t)(rows >> 8) };
	return proc_send(p, chan, MSG_RESIZE, b, sizeof b, err);
}

bool proc_wait(struct proc *p, int timeout_ms)
{
	struct timespec ts = deadline_in(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&P.mu);
	while (p->status == PROC_RUNNING && p->listed)
		if (pthread_cond_timedwait(&P.cv, &P.mu, &ts) == ETIMEDOUT)
			break;
	bool ended = p->status != PROC_RUNNING;
	pthread_mutex_unlock(&P.mu);
	return ended;
}

void proc_delete(struct proc *p)
{
	struct err err = { 0 };
	pthread_mutex_lock(&P.mu);
	while (p->starting) /* its channel is being opened: kill it once it can be */
		pthread_cond_wait(&P.cv, &P.mu);
	uint32_t chan = p->status == PROC_RUNNING && !p->chan_done ? p->chan : 0;
	/* a paused channel holds its EXIT (and its slot in the agent) until RESUME */
	bool resume = chan && p->paused;
	p->fg = false; /* no PAUSE from here on */
	p->paused = false;
	pthread_mutex_unlock(&P.mu);
	if (chan) {
		proc_signal(p, SIGKILL, &err);
		if (resume)
			jobs_chan_send(p->job, chan, MSG_RESUME, NULL, 0, &err);
		jobs_chan_close(p->job, chan);
	}
	pthread_mutex_lock(&P.mu);
	if (chan && !p->chan_done) {
		/* closed before its exit came: the channel's reference is ours to give back */
		p->chan_done = true;
		p->status = PROC_EXITED;
		free(p->error);
		p->error = xstrdup("killed and deleted");
		p->ended_ms = db_now_ms();
		put_locked(p);
	}
	struct jobprocs *t = table_locked(p->job, false);
	if (t && p->listed)
		unlist_locked(t, p);
	pthread_cond_broadcast(&P.cv);
	pthread_mutex_unlock(&P.mu);
}

static void event_line(struct buf *out, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	buf_puts(out, s);
	buf_putc(out, '\n');
	free(s);
	json_decref(o);
}

static void exit_event_locked(struct proc *p, struct buf *out)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("exit"));
	json_object_set_new(o, "offset", json_integer(p->end));
	json_object_set_new(o, "exit_code", p->has_exit ? json_integer(p->exit_code) : json_null());
	json_object_set_new(o, "signal", p->has_exit && p->signal ? json_integer(p->signal) : json_null());
	json_object_set_new(o, "timed_out", json_boolean(p->timed_out));
	json_object_set_new(o, "status", json_string(status_name(p->status)));
	json_object_set_new(o, "error", utf8_json_string(p->error));
	event_line(out, o);
}

/* Renders the output from *offset on; returns the bytes of output rendered. Under mu. */
static size_t render_locked(struct proc *p, int64_t *offset, struct buf *out)
{
	size_t done = 0;
	if (*offset < p->base) {
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("lost"));
		json_object_set_new(o, "offset", json_integer(*offset));
		json_object_set_new(o, "bytes", json_integer(p->base - *offset));
		event_line(out, o);
		*offset = p->base;
	}
	struct buf b64;
	buf_init(&b64);
	for (struct chunk *c = p->head; c && done < PROC_EVENTS_MAX; c = c->next) {
		if (c->off + c->len <= *offset)
			continue;
		size_t skip = (size_t)(*offset - c->off);
		size_t n = c->len - skip;
		buf_reset(&b64);
		base64_encode(c->data + skip, n, &b64);
		buf_putc(&b64, '\0');
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(c->err ? "stderr" : "stdout"));
		json_object_set_new(o, "offset", json_integer(*offset));
		json_object_set_new(o, "data", json_string((const char *)b64.data));
		event_line(out, o);
		*offset += (int64_t)n;
		done += n;
	}
	buf_free(&b64);
	return done;
}

int proc_events(struct proc *p, int64_t *offset, bool fg, int wait_ms, struct buf *out)
{
	struct timespec ts = deadline_in(CLOCK_REALTIME, wait_ms > 0 ? wait_ms : 0);
	int done = 0;
	bool resume = false;
	uint32_t chan = 0;
	pthread_mutex_lock(&P.mu);
	if (*offset < 0)
		*offset = p->end;
	for (;;) {
		size_t n = render_locked(p, offset, out);
		if (fg) {
			p->fg_off = *offset;
			if (p->paused && p->end - p->fg_off <= PROC_FG_LOW) {
				p->paused = false;
				resume = !p->chan_done;
				chan = p->chan;
			}
		}
		if (p->status != PROC_RUNNING && *offset >= p->end) {
			exit_event_locked(p, out);
			done = 1;
			break;
		}
		if (n || wait_ms <= 0)
			break;
		if (pthread_cond_timedwait(&P.cv, &P.mu, &ts) == ETIMEDOUT) {
			n = render_locked(p, offset, out);
			if (fg)
				p->fg_off = *offset;
			break;
		}
	}
	pthread_mutex_unlock(&P.mu);
	struct err err = { 0 };
	if (resume && chan)
		jobs_chan_send(p->job, chan, MSG_RESUME, NULL, 0, &err);
	return done;
}

void proc_fg_done(struct proc *p)
{
	pthread_mutex_lock(&P.mu);
	bool hangup = p->fg && p->status == PROC_RUNNING && !p->chan_done && p->chan;
	bool resume = hangup && p->paused;
	uint32_t chan = p->chan;
	p->fg = false;
	p->paused = false;
	pthread_mutex_unlock(&P.mu);
	struct err err = { 0 };
	if (hangup)
		proc_signal(p, SIGHUP, &err);
	if (resume)
		jobs_chan_send(p->job, chan, MSG_RESUME, NULL, 0, &err);
}
