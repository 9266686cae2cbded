// SPDX-License-Identifier: MIT
/*
 * Job queue and workers; see jobs.h. Where a job's timeout fires: the agent
 * kills the script's process group at `timeout` (exit 124); run_job() keeps a
 * host-side deadline a little later in case the guest stops answering.
 */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "buf.h"
#include "cluster.h"
#include "db.h"
#include "db_nodes.h"
#include "deadline.h"
#include "fast.h"
#include "fs.h"
#include "images.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "procs.h"
#include "proxy.h"
#include "sandbox.h"
#include "utf8.h"
#include "workspace.h"
#include "xmalloc.h"

#define HOST_TIMEOUT_SLACK_MS 15000	/* host deadline after the agent's own */
#define JOB_AGENT_CALL_MS 30000		/* MOUNT, FREEZE, THAW, one FILE piece */
#define JOB_FWD_MAX 16		/* guest ports forwarded per sandbox (user networking) */
#define JOB_SSHD_MS 30000		/* SSHD: the agent answers once sshd accepts */
#define JOB_CHAN 1			/* the script */
#define FILE_CHAN 2			/* FILE pieces and their acks */
#define STARTUP_CHAN 3			/* the startup command */
#define STARTUP_MAX_MS (15 * 60 * 1000)	/* a startup command that runs longer fails */
#define RESTART_FIRST_MS 1000		/* always-on: wait before the first VM restart, doubled per restart in a row */
#define RESTART_MAX_MS 30000
#define RESTART_RESET_MS 60000		/* a VM that ran this long resets the backoff */
#define FILE_PIECE (512 * 1024)		/* bytes of file data per FILE frame */
#define FILE_WINDOW 4			/* FILE frames sent ahead of their acks */
#define JOB_CWD "/root"
#define CHAN_FIRST 16			/* channels other threads open (jobs_chan_open) start here */

enum stop_reason {
	STOP_NONE,
	STOP_USER,	/* POST /stop */
	STOP_SHUTDOWN,	/* magsd is shutting down */
};

/* Work another thread hands to a job's worker (it owns the sandbox's channel). */
enum call_kind {
	CALL_SYNC,	/* freeze the workspace, push it, thaw */
	CALL_FILE,	/* deliver an uploaded file */
	CALL_SSH,	/* start sshd in the guest (or add a key to it) */
	CALL_FWD,	/* user networking: forward a host port to a guest port */
	CALL_OPEN,	/* open a channel for another thread (jobs_chan_open) */
	CALL_SEND,	/* send a frame on such a channel */
};

/* A channel another thread opened; frames on it go to its callbacks. */
struct chan {
	uint32_t n;
	const struct jobs_chan_ops *ops;
	void *ctx;
	struct chan *next;
};

struct call {
	enum call_kind kind;
	int seq;			/* CALL_FILE */
	const char *name;
	unsigned mode;
	const char *ssh_key;		/* CALL_SSH, may be NULL */
	int port;			/* CALL_FWD: guest port in, host port out */
	/* CALL_OPEN, CALL_SEND */
	uint16_t type;
	uint32_t chan;			/* CALL_SEND in, CALL_OPEN out */
	const void *payload;
	size_t len;
	const struct jobs_chan_ops *ops;
	void *ctx;
	struct wsync_stats st;		/* CALL_SYNC result */
	int r;
	struct err err;
	bool done;			/* under mu */
	struct call *next;
};

/* A job a worker is running. */
struct active {
	char id[40];
	int wake[2];		/* pipe: written to interrupt the worker */
	enum stop_reason stop;	/* under mu */
	bool serving;		/* under mu: the script runs and calls are taken */
	struct call *calls;	/* under mu: waiting for the worker */
	int netns_fd;		/* under mu: the sandbox's network namespace while serving, else -1 */
	/* SSH, under mu: set by the worker once sshd answers */
	struct fwd *ssh_fwd;
	int ssh_port;
	char *ssh_host_key;	/* public host key line */
	/* user networking, under mu: guest ports forwarded from the host's 127.0.0.1 */
	int nfwd;
	int fwd_guest[JOB_FWD_MAX], fwd_host[JOB_FWD_MAX];
	/* always-on, under mu */
	bool always_on;
	int idle_ms;		/* sleep after this long without traffic; 0 = never */
	bool sleeping;		/* snapshot on disk, no QEMU: the next request wakes it */
	bool wake_asked;	/* a request wrote to the wake pipe */
	int conns;		/* proxied and forwarded connections open now */
	int64_t last_active;	/* CLOCK_MONOTONIC ms of the last traffic, call or connection end */
	/* the host deadline, under mu: CLOCK_MONOTONIC ms, -1 none; timeout_s is what it came from */
	int64_t deadline;
	int timeout_s;
	bool deadline_set;	/* by jobs_set_timeout: the start keeps it */
	/* channels of other threads: the list and their callbacks under cb_mu (taken after mu, never before) */
	pthread_mutex_t cb_mu;
	struct chan *chans;
	uint32_t next_chan;
	struct active *next;
};

struct qitem {
	char *id;
	struct qitem *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work;		/* queue non-empty or stopping */
	pthread_cond_t event;		/* events changed */
	struct qitem *head, *tail;
	struct active *active;
	uint64_t events;
	bool stopping;
	bool draining;			/* no new jobs are taken */
	pthread_t *workers;
	int nworkers;
	int running;
	struct jobs_config cfg;
	uint32_t next_chan;		/* the next channel jobs_chan_open gives out, in any sandbox */
} J = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.event = PTHREAD_COND_INITIALIZER,
};

static void bump_locked(void)
{
	J.events++;
	pthread_cond_broadcast(&J.event);
}

static void bump(void)
{
	pthread_mutex_lock(&J.mu);
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}

uint64_t jobs_events(void)
{
	pthread_mutex_lock(&J.mu);
	uint64_t e = J.events;
	pthread_mutex_unlock(&J.mu);
	return e;
}

/* The CLOCK_REALTIME time timeout_ms from now, for pthread_cond_timedwait. */
void jobs_wait_event(uint64_t seen, int timeout_ms)
{
	struct timespec ts = deadline_in(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&J.mu);
	while (J.events == seen && !J.stopping)
		if (pthread_cond_timedwait(&J.event, &J.mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&J.mu);
}

bool jobs_stopping(void)
{
	pthread_mutex_lock(&J.mu);
	bool s = J.stopping;
	pthread_mutex_unlock(&J.mu);
	return s;
}

static void enqueue_locked(const char *id)
{
	struct qitem *q = xcalloc(1, sizeof *q);
	q->id = xstrdup(id);
	if (J.tail)
		J.tail->next = q;
	else
		J.head = q;
	J.tail = q;
	pthread_cond_signal(&J.work);
}

/*
 * A node of a cluster queues nothing in memory: it records where the job
 * should go (db_job_place) and wakes the workers of every node, which claim
 * from the shared table. A job whose files were uploaded here stays here.
 */
static void submit_cluster(const char *id)
{
	struct job_row j;
	if (db_job_get(id, 0, &j) == 0) {
		size_t nfiles = 0;
		struct file_row *f = db_file_list(id, &nfiles);
		db_file_rows_free(f, nfiles);
		db_job_place(id, j.user_id, j.workspace, j.persist || j.base_image, nfiles ? cluster_node_id() : NULL,
			     cluster_timeout_ms());
		db_job_row_free(&j);
	}
	cluster_notify_jobs();
	bump();
}

void jobs_submit(const char *id)
{
	if (cluster_on()) {
		submit_cluster(id);
		return;
	}
	pthread_mutex_lock(&J.mu);
	enqueue_locked(id);
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}

void jobs_poke(void)
{
	pthread_mutex_lock(&J.mu);
	pthread_cond_broadcast(&J.work);
	pthread_mutex_unlock(&J.mu);
}

int jobs_running(void)
{
	pthread_mutex_lock(&J.mu);
	int n = J.running;
	pthread_mutex_unlock(&J.mu);
	return n;
}

static void sys_log(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sys_log(const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	db_log_append(id, LOG_SYSTEM, msg, strlen(msg));
	free(msg);
	bump();
}

/* The job id a worker is running, or NULL. Under mu. */
static struct active *active_locked(const char *id)
{
	struct active *a = J.active;
	while (a && strcmp(a->id, id))
		a = a->next;
	return a;
}

int jobs_stop(const char *id)
{
	int r = -ENOENT;
	pthread_mutex_lock(&J.mu);
	for (struct qitem **pp = &J.head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id))
			continue;
		struct qitem *q = *pp;
		*pp = q->next;
		if (J.tail == q)
			J.tail = prev;
		free(q->id);
		free(q);
		r = 0;
		break;
	}
	if (r < 0 && cluster_on() && !active_locked(id)) {
		pthread_mutex_unlock(&J.mu);
		if (db_job_stop_queued(id) <= 0)
			return -ENOENT;
		sys_log(id, "stopped before it started\n");
		bump();
		return 0;
	}
	if (r == 0) {
		pthread_mutex_unlock(&J.mu);
		sys_log(id, "stopped before it started\n");
		db_job_finish(id, 0, false, "stopped");
		bump();
		return 0;
	}
	struct active *a = active_locked(id);
	if (a) {
		a->stop = STOP_USER;
		if (write(a->wake[1], "x", 1) < 0) {
			/* the pipe is non-blocking; a full pipe already wakes the worker */
		}
		r = 0;
	}
	pthread_mutex_unlock(&J.mu);
	return r;
}

/* Output of one stream, held back by the bytes of an unfinished UTF-8 character. */
struct outstream {
	uint8_t carry[4];
	size_t ncarry;
};

struct jobrun {
	const char *id;
	struct active *a;
	struct sandbox *sb;
	const struct job_row *j;
	const struct image *img;	/* the guest image it boots */
	struct ws_job ws;
	size_t logged;			/* bytes of output stored */
	bool truncated;
	struct outstream out[2];	/* stdout, stderr */
	bool first_output;
	int64_t t_claim;
	bool cmd_done;			/* always-on: the command exited 0, the sandbox stays */
	int64_t vm_started;		/* mono ms the current VM came up (restart backoff) */
	int crashes;			/* VM restarts in a row */
	/* how the script ended */
	bool ended;
	bool has_exit;
	int exit_code;
	char *error;
};

static void store_output(struct jobrun *jr, int stream, const uint8_t *p, size_t n, bool final)
{
	struct outstream *os = &jr->out[stream == LOG_STDERR];
	struct buf b;
	buf_init(&b);
	buf_append(&b, os->carry, os->ncarry);
	buf_append(&b, p, n);
	size_t keep = final ? 0 : utf8_incomplete_tail(b.data, b.len);
	os->ncarry = keep;
	memcpy(os->carry, b.data + b.len - keep, keep);
	size_t len = b.len - keep;
	if (len && !jr->truncated) {
		if (jr->logged + len > JOB_LOG_MAX) {
			jr->truncated = true;
			sys_log(jr->id, "output beyond %d MiB was dropped\n", JOB_LOG_MAX >> 20);
		} else {
			jr->logged += len;
			db_log_append(jr->id, stream, b.data, len);
			bump();
		}
	}
	buf_free(&b);
}

static int send_exec(struct sandbox *sb, const struct job_row *j, struct err *err)
{
	struct buf kv;
	buf_init(&kv);
	proto_kv_puts(&kv, "cmd", j->script);
	proto_kv_puts(&kv, "cwd", JOB_CWD);
	if (!strcmp(j->type, "file"))
		proto_kv_puts(&kv, "file", "1");
	if (j->always_on)
		proto_kv_puts(&kv, "restart", "1");
	if (j->timeout > 0 && !j->always_on) {
		char t[16];
		snprintf(t, sizeof t, "%d", j->timeout);
		proto_kv_puts(&kv, "timeout", t);
	}
	int r = sandbox_send(sb, MSG_EXEC, JOB_CHAN, kv.data, kv.len, err);
	buf_free(&kv);
	return r;
}

static enum stop_reason stop_reason(struct active *a)
{
	pthread_mutex_lock(&J.mu);
	enum stop_reason s = a->stop;
	pthread_mutex_unlock(&J.mu);
	return s;
}

static const char *stop_text(enum stop_reason s)
{
	return s == STOP_SHUTDOWN ? "interrupted: magsd shut down" : "stopped";
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The script's end, once: the first reason recorded wins. */
static void job_end(struct jobrun *jr, bool has_exit, int code, char *error /* owned */)
{
	if (jr->ended) {
		free(error);
		return;
	}
	jr->ended = true;
	jr->has_exit = has_exit;
	jr->exit_code = code;
	jr->error = error;
}

static bool always_on(struct active *a)
{
	pthread_mutex_lock(&J.mu);
	bool on = a->always_on;
	pthread_mutex_unlock(&J.mu);
	return on;
}

/*
 * An always-on command's exit that does not end the job: a failure the agent
 * restarts (AGENT_EXIT_RESTART), or a clean exit (the sandbox stays up).
 */
static bool always_on_exit(struct jobrun *jr, const struct agent_exit *ex)
{
	if (ex->flags & AGENT_EXIT_RESTART) {
		if (!always_on(jr->a))
			return false; /* always_on was switched off: this failure ends the job */
		if (ex->signal)
			sys_log(jr->id, "the command was killed by signal %d; restarting it in %.1f s\n", ex->signal,
				ex->restart_ms / 1000.0);
		else
			sys_log(jr->id, "the command exited with code %d; restarting it in %.1f s\n", ex->code,
				ex->restart_ms / 1000.0);
		return true;
	}
	if (ex->code == 0 && !(ex->flags & AGENT_EXIT_TIMEOUT) && always_on(jr->a)) {
		sys_log(jr->id, "the command exited 0; the always-on sandbox stays up\n");
		jr->cmd_done = true;
		return true;
	}
	return false;
}

/* A frame on the job's channel: output, or how the script ended. */
static void job_frame(struct jobrun *jr, const struct agent_frame *f)
{
	if (f->type == MSG_STDOUT || f->type == MSG_STDERR) {
		if (jr->first_output) {
			log_debug("job %s: first output %lld ms after the claim", jr->id, (long long)(mono_ms() - jr->t_claim));
			jr->first_output = false;
		}
		store_output(jr, f->type == MSG_STDOUT ? LOG_STDOUT : LOG_STDERR, f->payload, f->len, false);
	} else if (f->type == MSG_EXIT) {
		struct agent_exit ex;
		if (proto_exit_decode(f->payload, f->len, &ex) < 0) {
			job_end(jr, false, 0, xstrdup("sandbox failed: malformed exit report from the agent"));
			return;
		}
		if (always_on_exit(jr, &ex))
			return;
		char *error = NULL;
		if (ex.flags & AGENT_EXIT_TIMEOUT) {
			error = xasprintf("timed out after %ds", jr->j->timeout);
			sys_log(jr->id, "%s\n", error);
		}
		job_end(jr, true, ex.code, error);
	} else if (f->type == MSG_ERROR) {
		char *error = xasprintf("sandbox could not run the script: %.*s", (int)(f->len > 300 ? 300 : f->len),
					(const char *)f->payload);
		sys_log(jr->id, "%s\n", error);
		job_end(jr, false, 0, error);
	}
}

/*
 * A frame on a channel another thread opened (jobs_chan_open): to its
 * callback, and PAUSE back when the callback asks for it. Frames of a
 * channel closed meanwhile are dropped.
 */
static __thread struct active *cb_active;	/* the job whose channel callback this thread runs */
static __thread int cb_closed;			/* channels that callback closed */

static void chan_frame(struct jobrun *jr, const struct agent_frame *f)
{
	struct active *a = jr->a;
	bool pause = false;
	pthread_mutex_lock(&a->cb_mu);
	cb_active = a;
	cb_closed = 0;
	for (struct chan *c = a->chans; c; c = c->next)
		if (c->n == f->chan) {
			pause = c->ops->frame(c->ctx, f);
			break;
		}
	cb_active = NULL;
	pthread_mutex_unlock(&a->cb_mu);
	if (cb_closed) {
		/* closed by its own callback (jobs_chan_close): give its count back now, mu after cb_mu */
		pthread_mutex_lock(&J.mu);
		a->conns = a->conns > cb_closed ? a->conns - cb_closed : 0;
		a->last_active = mono_ms();
		pthread_mutex_unlock(&J.mu);
		pause = false;
	}
	struct err err = { 0 };
	if (pause && sandbox_send(jr->sb, MSG_PAUSE, f->chan, NULL, 0, &err) < 0)
		log_warn("job %s: PAUSE on channel %u: %s", jr->id, f->chan, err.msg);
}

/* Whether a frame belongs to the script or to another thread's channel (not to the caller's request). */
static bool other_frame(struct jobrun *jr, const struct agent_frame *f)
{
	if (f->chan == JOB_CHAN)
		job_frame(jr, f);
	else if (f->chan >= CHAN_FIRST)
		chan_frame(jr, f);
	else
		return false;
	return true;
}

/* The sandbox went away (why): every open channel hears it once and is forgotten. */
static void chans_gone(struct active *a, const char *why)
{
	pthread_mutex_lock(&a->cb_mu);
	struct chan *list = a->chans;
	a->chans = NULL;
	int n = 0;
	cb_active = a; /* a gone callback may call jobs_chan_close like a frame callback (nothing is left to close) */
	for (struct chan *c = list; c; c = c->next, n++)
		c->ops->gone(c->ctx, why);
	cb_active = NULL;
	pthread_mutex_unlock(&a->cb_mu);
	while (list) {
		struct chan *c = list;
		list = c->next;
		free(c);
	}
	if (!n)
		return;
	pthread_mutex_lock(&J.mu);
	a->conns = a->conns > n ? a->conns - n : 0;
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}

/* Takes channel n off the list; true when it was there (its count in conns is then the caller's to give back). */
static bool chan_unlink_locked(struct active *a, uint32_t n)
{
	for (struct chan **pp = &a->chans; *pp; pp = &(*pp)->next)
		if ((*pp)->n == n) {
			struct chan *c = *pp;
			*pp = c->next;
			free(c);
			return true;
		}
	return false;
}

static bool chan_unlink(struct active *a, uint32_t n)
{
	pthread_mutex_lock(&a->cb_mu);
	bool found = chan_unlink_locked(a, n);
	pthread_mutex_unlock(&a->cb_mu);
	return found;
}

/* CALL_OPEN on the worker: a new channel, counted as a connection while open, and its first frame. */
static int chan_open(struct jobrun *jr, struct call *c)
{
	struct active *a = jr->a;
	struct chan *ch = xcalloc(1, sizeof *ch);
	ch->ops = c->ops;
	ch->ctx = c->ctx;
	pthread_mutex_lock(&J.mu);
	a->conns++;
	if (J.next_chan < CHAN_FIRST)
		J.next_chan = CHAN_FIRST;
	ch->n = J.next_chan++;
	pthread_mutex_unlock(&J.mu);
	pthread_mutex_lock(&a->cb_mu);
	ch->next = a->chans;
	a->chans = ch;
	pthread_mutex_unlock(&a->cb_mu);
	c->chan = ch->n;
	int r = sandbox_send(jr->sb, c->type, c->chan, c->payload, c->len, &c->err);
	if (r < 0 && chan_unlink(a, c->chan)) {
		pthread_mutex_lock(&J.mu);
		if (a->conns > 0)
			a->conns--;
		pthread_mutex_unlock(&J.mu);
	}
	return r;
}

/* CALL_SEND on the worker: -ENOENT when the channel is closed or gone. */
static int chan_send(struct jobrun *jr, struct call *c)
{
	bool open = false;
	pthread_mutex_lock(&jr->a->cb_mu);
	for (struct chan *ch = jr->a->chans; ch && !open; ch = ch->next)
		open = ch->n == c->chan;
	pthread_mutex_unlock(&jr->a->cb_mu);
	if (!open)
		return -ENOENT;
	return sandbox_send(jr->sb, c->type, c->chan, c->payload, c->len, &c->err);
}

/*
 * Sends a request on chan and waits for its OK (ERROR fails it), while the
 * job's own frames go on being stored. wake_fd -1: not interruptible.
 */
static int agent_call(struct jobrun *jr, uint16_t type, uint32_t chan, const struct buf *kv, int timeout_ms, int wake_fd,
		      struct err *err)
{
	int r = sandbox_send(jr->sb, type, chan, kv ? kv->data : NULL, kv ? kv->len : 0, err);
	int64_t deadline = mono_ms() + timeout_ms;
	while (r == 0) {
		struct agent_frame f;
		int left = (int)(deadline - mono_ms());
		r = sandbox_recv(jr->sb, &f, left > 0 ? left : 0, wake_fd, err);
		if (r == 0)
			return err_set(err, ETIMEDOUT, "no answer from the agent in %d ms", timeout_ms);
		if (r < 0)
			return r;
		r = 0;
		if (other_frame(jr, &f)) {
			/* the script's output or another thread's channel */
		} else if (f.chan == chan && f.type == MSG_OK) {
			return 0;
		} else if (f.chan == chan && f.type == MSG_ERROR) {
			return err_set(err, EPROTO, "%.*s", (int)(f.len > 300 ? 300 : f.len), (const char *)f.payload);
		}
	}
	return r;
}

/* Sends STATE/uploads/<job>/<seq> as FILE frames of FILE_PIECE bytes, a few in flight. */
static int deliver_file(struct jobrun *jr, int seq, const char *name, unsigned mode, struct err *err)
{
	char *dir = ws_upload_dir(jr->id, false);
	char *path = xasprintf("%s/%d", dir, seq);
	free(dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return err_set(err, errno, "file %s: the upload is missing on the host", name);
	char modestr[8];
	snprintf(modestr, sizeof modestr, "%o", mode);
	uint8_t *piece = xmalloc(FILE_PIECE);
	long long off = 0;
	int inflight = 0, r = 0;
	bool eof = false;
	int64_t deadline = mono_ms() + JOB_AGENT_CALL_MS;
	while ((!eof && r == 0) || inflight > 0) {
		if (!eof && r == 0 && inflight < FILE_WINDOW) {
			ssize_t n = read(fd, piece, FILE_PIECE);
			if (n < 0) {
				r = err_set(err, errno, "read upload %s", name);
				continue;
			}
			eof = n < FILE_PIECE;
			if (n == 0 && off > 0)
				continue;
			struct buf kv;
			buf_init(&kv);
			char offs[24];
			snprintf(offs, sizeof offs, "%lld", off);
			proto_kv_puts(&kv, "path", name);
			proto_kv_puts(&kv, "mode", modestr);
			proto_kv_puts(&kv, "offset", offs);
			proto_kv_put(&kv, "data", piece, (size_t)n);
			r = sandbox_send(jr->sb, MSG_FILE, FILE_CHAN, kv.data, kv.len, err);
			buf_free(&kv);
			if (r == 0)
				inflight++;
			off += n;
			deadline = mono_ms() + JOB_AGENT_CALL_MS;
			continue;
		}
		struct agent_frame f;
		int left = (int)(deadline - mono_ms());
		int g = sandbox_recv(jr->sb, &f, left > 0 ? left : 0, -1, err);
		if (g <= 0) {
			r = g == 0 ? err_set(err, ETIMEDOUT, "file %s: no answer from the agent", name) : g;
			break;
		}
		if (other_frame(jr, &f)) {
			/* the script's output or another thread's channel */
		} else if (f.chan == FILE_CHAN && (f.type == MSG_OK || f.type == MSG_ERROR)) {
			inflight--;
			if (f.type == MSG_ERROR && r == 0)
				r = err_set(err, EPROTO, "file %s: %.*s", name, (int)(f.len > 300 ? 300 : f.len),
					    (const char *)f.payload);
		}
	}
	free(piece);
	close(fd);
	return r;
}

/* Every uploaded file of the job, in order, before its script starts. */
static int deliver_files(struct jobrun *jr, struct err *err)
{
	size_t n;
	struct file_row *rows = db_file_list(jr->id, &n);
	int r = 0;
	long long bytes = 0;
	int64_t t0 = mono_ms();
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!rows[i].uploaded) {
			r = err_set(err, ENOENT, "file %s was declared but never uploaded", rows[i].name);
			break;
		}
		r = deliver_file(jr, rows[i].seq, rows[i].name, rows[i].mode, err);
		bytes += rows[i].size > 0 ? rows[i].size : 0;
	}
	if (n && r == 0)
		log_info("job %s: %zu file(s), %lld bytes, delivered in %lld ms", jr->id, n, bytes, (long long)(mono_ms() - t0));
	db_file_rows_free(rows, n);
	return r;
}

/* CALL_SYNC on the worker: a consistent copy of a running workspace. */
static int sync_running(struct jobrun *jr, struct wsync_stats *st, struct err *err)
{
	if (!jr->ws.name)
		return err_set(err, 409, "job %s has no named workspace to sync", jr->id);
	int r = agent_call(jr, MSG_FREEZE, 0, NULL, JOB_AGENT_CALL_MS, -1, err);
	if (r < 0)
		return err_wrap(err, "freeze the workspace");
	r = ws_push(jr->ws.user_id, jr->ws.name, st, err);
	struct err terr = { 0 };
	if (agent_call(jr, MSG_THAW, 0, NULL, JOB_AGENT_CALL_MS, -1, &terr) < 0)
		log_warn("job %s: thaw the workspace: %s", jr->id, terr.msg);
	return r;
}

/* Where job id's SSH host key lives: beside its run dir, so a restarted VM keeps it. */
static char *ssh_key_path(const char *id)
{
	return xasprintf("%s/%s.ssh_host_ed25519_key", J.cfg.run_root, id);
}

/* The sandbox's SSH host key: made once per job with ssh-keygen. */
static int ssh_host_key(struct jobrun *jr, char **priv, char **pub, struct err *err)
{
	char *path = ssh_key_path(jr->id);
	char *pubpath = xasprintf("%s.pub", path);
	char *comment = xasprintf("mags-%s", jr->id);
	int r = 0;
	if (access(path, R_OK) != 0) {
		const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL };
		int e = proc_run_quiet(argv);
		if (e == -ENOENT)
			r = err_set(err, 500, "ssh-keygen is not installed (apt-get install openssh-client)");
		else if (e < 0)
			r = err_set(err, -e, "run ssh-keygen");
		else if (e > 0)
			r = err_set(err, 500, "ssh-keygen failed (exit %d)", e);
	}
	size_t n;
	if (r == 0 && (r = fs_read_file(path, 1 << 16, priv, &n, err)) == 0 &&
	    (r = fs_read_file(pubpath, 1 << 16, pub, &n, err)) == 0)
		(*pub)[strcspn(*pub, "\n")] = '\0';
	free(path);
	free(pubpath);
	free(comment);
	return r;
}

/* The SSH forwarder's way in: a connection to the guest's sshd. */
static int ssh_connect(void *ctx)
{
	struct err err = { 0 };
	int fd = jobs_connect(ctx, 22, JOB_AGENT_CALL_MS, &err);
	if (fd < 0)
		log_debug("job %s: ssh: %s", (const char *)ctx, err.msg);
	return fd;
}

/*
 * Starts sshd in the guest with the job's host key and root's key (if any),
 * and a forwarder to it on the SSH host. Once is enough; later calls only
 * add keys.
 */
static int ssh_enable(struct jobrun *jr, const char *key, struct err *err)
{
	if (J.cfg.net->mode == NET_NONE)
		return err_set(err, 409, "SSH needs a network (magsd runs with --net none)");
	char *priv = NULL, *pub = NULL;
	int r = ssh_host_key(jr, &priv, &pub, err);
	if (r < 0)
		return err_wrap(err, "make the sandbox's SSH host key");
	struct buf kv;
	buf_init(&kv);
	if (key)
		proto_kv_puts(&kv, "key", key);
	proto_kv_puts(&kv, "host_key", priv);
	r = agent_call(jr, MSG_SSHD, 0, &kv, JOB_SSHD_MS, -1, err);
	buf_free(&kv);
	free(priv);
	if (r < 0) {
		free(pub);
		return err_wrap(err, "start sshd in the sandbox");
	}
	pthread_mutex_lock(&J.mu);
	bool have = jr->a->ssh_fwd != NULL;
	pthread_mutex_unlock(&J.mu);
	if (have) {
		free(pub);
		return 0;
	}
	struct fwd *f = fwd_start(access_ssh_host(), 0, ssh_connect, jobs_disconnect, jr->a->id, err);
	if (!f) {
		free(pub);
		return err_wrap(err, "SSH forwarder");
	}
	pthread_mutex_lock(&J.mu);
	jr->a->ssh_fwd = f;
	jr->a->ssh_port = fwd_port(f);
	jr->a->ssh_host_key = pub;
	bump_locked();
	pthread_mutex_unlock(&J.mu);
	log_info("job %s: ssh on %s:%d", jr->id, access_ssh_host(), fwd_port(f));
	return 0;
}

/* User networking: a host port forwarded to guest port *port (made once per port). */
static int forward_port(struct jobrun *jr, int *port, struct err *err)
{
	struct active *a = jr->a;
	pthread_mutex_lock(&J.mu);
	for (int i = 0; i < a->nfwd; i++)
		if (a->fwd_guest[i] == *port) {
			*port = a->fwd_host[i];
			pthread_mutex_unlock(&J.mu);
			return 0;
		}
	bool full = a->nfwd == JOB_FWD_MAX;
	pthread_mutex_unlock(&J.mu);
	if (full)
		return err_set(err, 502, "no more than %d guest ports can be forwarded per sandbox", JOB_FWD_MAX);
	int hp;
	if (vm_forward_port(jr->sb->vm, *port, &hp, err) < 0)
		return -1;
	pthread_mutex_lock(&J.mu);
	a->fwd_guest[a->nfwd] = *port;
	a->fwd_host[a->nfwd++] = hp;
	pthread_mutex_unlock(&J.mu);
	*port = hp;
	return 0;
}

/* Runs the calls other threads queued for this job. */
static void serve_calls(struct jobrun *jr)
{
	pthread_mutex_lock(&J.mu);
	struct call *list = jr->a->calls;
	jr->a->calls = NULL;
	if (list)
		jr->a->last_active = mono_ms();
	pthread_mutex_unlock(&J.mu);
	while (list) {
		struct call *c = list;
		list = c->next;
		if (c->kind == CALL_SYNC)
			c->r = sync_running(jr, &c->st, &c->err);
		else if (c->kind == CALL_SSH)
			c->r = ssh_enable(jr, c->ssh_key, &c->err);
		else if (c->kind == CALL_FWD)
			c->r = forward_port(jr, &c->port, &c->err);
		else if (c->kind == CALL_OPEN)
			c->r = chan_open(jr, c);
		else if (c->kind == CALL_SEND)
			c->r = chan_send(jr, c);
		else
			c->r = deliver_file(jr, c->seq, c->name, c->mode, &c->err);
		pthread_mutex_lock(&J.mu);
		c->done = true;
		bump_locked();
		pthread_mutex_unlock(&J.mu);
	}
}

/*
 * Active job id once it serves, waiting while it starts: up to timeout_ms,
 * or as long as it takes when timeout_ms < 0. NULL when it is not (or no
 * longer) running, magsd is draining before it served, or time ran out.
 * Under mu.
 */
static bool queued_locked(const char *id)
{
	for (struct qitem *q = J.head; q; q = q->next)
		if (!strcmp(q->id, id))
			return true;
	return false;
}

static struct active *serving_locked(const char *id, int timeout_ms)
{
	struct timespec ts = deadline_in(CLOCK_REALTIME, timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		struct active *a = active_locked(id);
		if (J.draining || (a && a->serving))
			return a && a->serving ? a : NULL;
		if (!a && !queued_locked(id))
			return NULL; /* neither waiting for a worker nor running */
		if (a && a->sleeping && !a->wake_asked) {
			a->wake_asked = true; /* the worker wakes the sandbox; this waits for it to serve */
			if (write(a->wake[1], "w", 1) < 0) {
				/* non-blocking; a full pipe wakes the worker anyway */
			}
		}
		if (timeout_ms < 0)
			pthread_cond_wait(&J.event, &J.mu);
		else if (pthread_cond_timedwait(&J.event, &J.mu, &ts) == ETIMEDOUT)
			return NULL;
	}
}

/* Hands c to job id's worker and waits for it. -ENOENT when the job is not running. */
static int call_job(const char *id, struct call *c)
{
	pthread_mutex_lock(&J.mu);
	struct active *a = serving_locked(id, -1); /* waits while the sandbox starts */
	if (!a || J.draining) {
		pthread_mutex_unlock(&J.mu);
		return -ENOENT;
	}
	c->next = a->calls;
	a->calls = c;
	if (write(a->wake[1], "c", 1) < 0) {
		/* non-blocking; a full pipe wakes the worker anyway */
	}
	while (!c->done)
		pthread_cond_wait(&J.event, &J.mu);
	pthread_mutex_unlock(&J.mu);
	return c->r;
}

int jobs_sync(const char *id, struct wsync_stats *st, struct err *err)
{
	struct call c = { .kind = CALL_SYNC };
	int r = call_job(id, &c);
	*st = c.st;
	if (r < 0 && r != -ENOENT)
		*err = c.err;
	return r;
}

int jobs_ssh(const char *id, const char *key, struct err *err)
{
	struct call c = { .kind = CALL_SSH, .ssh_key = key };
	int r = call_job(id, &c);
	if (r < 0 && r != -ENOENT)
		*err = c.err;
	return r;
}

json_t *jobs_ssh_json(const char *id)
{
	json_t *o = json_null();
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a && a->ssh_fwd) {
		o = json_object();
		json_object_set_new(o, "host", json_string(access_ssh_host()));
		json_object_set_new(o, "port", json_integer(a->ssh_port));
		json_object_set_new(o, "user", json_string("root"));
		json_object_set_new(o, "host_key", json_string(a->ssh_host_key));
	}
	pthread_mutex_unlock(&J.mu);
	return o;
}


/* User networking: the guest's port through a host port forward on 127.0.0.1. */
static int connect_forwarded(const char *id, int port, int timeout_ms, struct err *err)
{
	struct call c = { .kind = CALL_FWD, .port = port };
	int r = call_job(id, &c);
	if (r == -ENOENT)
		return err_set(err, 502, "the sandbox is not running");
	if (r < 0) {
		*err = c.err;
		return -1;
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		r = err_set(err, 502, "connect to the sandbox's port %d: %s", port, strerror(errno));
		if (s >= 0)
			close(s);
		return r;
	}
	return s;
}

/*
 * Makes the worker look at its idle clock and settings again. Only while it
 * serves or sleeps: while the sandbox starts (or restarts) a byte on the wake
 * pipe would interrupt the start as if the job were stopped. Under mu.
 */
static void poke_locked(struct active *a)
{
	if ((a->serving || a->sleeping) && write(a->wake[1], "c", 1) < 0) {
		/* non-blocking: a full pipe wakes the worker anyway */
	}
}

/*
 * A connection that failed to open: gives back the count jobs_connect took
 * for it. Returns fd (< 0).
 */
static int conn_failed(const char *id, int fd)
{
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a && a->conns > 0)
		a->conns--;
	pthread_mutex_unlock(&J.mu);
	return fd;
}

void jobs_disconnect(const char *id)
{
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a) {
		if (a->conns > 0)
			a->conns--;
		a->last_active = mono_ms();
		poke_locked(a);
	}
	pthread_mutex_unlock(&J.mu);
}

int jobs_connect(const char *id, int port, int timeout_ms, struct err *err)
{
	if (J.cfg.net->mode == NET_NONE)
		return err_set(err, 502, "the sandbox has no network (magsd runs with --net none)");
	pthread_mutex_lock(&J.mu);
	struct active *a = serving_locked(id, timeout_ms);
	int fd = a && a->netns_fd >= 0 ? fcntl(a->netns_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (a) {
		/* counted before it connects, so the sandbox cannot fall asleep under it */
		a->conns++;
		a->last_active = mono_ms();
	}
	pthread_mutex_unlock(&J.mu);
	if (!a)
		return err_set(err, 502, "the sandbox is not running");
	int s;
	if (J.cfg.net->mode == NET_USER) {
		s = connect_forwarded(id, port, timeout_ms, err);
	} else if (fd < 0) {
		s = err_set(err, 502, "the sandbox has no network");
	} else {
		s = net_connect(fd, port, timeout_ms, err);
		close(fd);
	}
	return s >= 0 ? s : conn_failed(id, s);
}

int64_t jobs_chan_open(const char *id, const struct jobs_chan_ops *ops, void *ctx, uint16_t type, const void *payload,
		       size_t len, struct err *err)
{
	struct call c = { .kind = CALL_OPEN, .ops = ops, .ctx = ctx, .type = type, .payload = payload, .len = len };
	int r = call_job(id, &c);
	if (r < 0 && r != -ENOENT)
		*err = c.err;
	return r < 0 ? r : (int64_t)c.chan;
}

int jobs_chan_send(const char *id, uint32_t chan, uint16_t type, const void *payload, size_t len, struct err *err)
{
	struct call c = { .kind = CALL_SEND, .chan = chan, .type = type, .payload = payload, .len = len };
	int r = call_job(id, &c);
	if (r < 0 && r != -ENOENT)
		*err = c.err;
	return r;
}

void jobs_chan_close(const char *id, uint32_t chan)
{
	if (cb_active && !strcmp(cb_active->id, id)) {
		/* from the channel's own callback: cb_mu is held here, and mu may not be taken after it */
		if (chan_unlink_locked(cb_active, chan))
			cb_closed++;
		return;
	}
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a && chan_unlink(a, chan)) {
		if (a->conns > 0)
			a->conns--;
		a->last_active = mono_ms();
		poke_locked(a);
	}
	pthread_mutex_unlock(&J.mu);
}

void jobs_set_timeout(const char *id, int timeout)
{
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a) {
		a->timeout_s = timeout;
		a->deadline = timeout > 0 ? mono_ms() + (int64_t)timeout * 1000 : -1;
		a->deadline_set = true;
		poke_locked(a);
	}
	pthread_mutex_unlock(&J.mu);
}

int jobs_deliver_file(const char *id, int seq, const char *name, unsigned mode, struct err *err)
{
	struct call c = { .kind = CALL_FILE, .seq = seq, .name = name, .mode = mode };
	int r = call_job(id, &c);
	if (r < 0 && r != -ENOENT)
		*err = c.err;
	return r;
}

/* Fails the calls still waiting when the job's worker is done with it. */
static void end_calls(struct active *a)
{
	pthread_mutex_lock(&J.mu);
	struct fwd *f = a->ssh_fwd;
	a->ssh_fwd = NULL;
	free(a->ssh_host_key);
	a->ssh_host_key = NULL;
	if (a->netns_fd >= 0)
		close(a->netns_fd);
	a->netns_fd = -1;
	pthread_mutex_unlock(&J.mu);
	if (f)
		fwd_stop(f); /* its relays end too; the guest's sshd goes with the VM */
	pthread_mutex_lock(&J.mu);
	a->serving = false;
	for (struct call *c = a->calls; c; c = c->next) {
		c->r = -ENOENT;
		c->done = true;
	}
	a->calls = NULL;
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}

static void job_hostname(const struct active *a, char host[32])
{
	snprintf(host, 32, "mags-%.8s", a->id);
}

/*
 * A running sandbox whose agent has taken INIT, with the job's disks in its
 * slots (jr->ws; a local workspace gets the sandbox's own blank disk):
 * restored from the template when one is ready, else cold booted. A restore
 * that fails or does not answer drops the template (fast.c rebuilds it) and
 * the job cold boots.
 */
static int start_sandbox(struct jobrun *jr, struct sandbox **out, struct err *err)
{
	struct active *a = jr->a;
	char host[32];
	job_hostname(a, host);
	char *rundir = xasprintf("%s/%s", J.cfg.run_root, a->id);
	struct vm_disks disks;
	bool own = ws_disks(&jr->ws, &disks);
	struct sandbox *sb = NULL;
	char *own_disk = NULL;
	int r = fast_take(jr->img->fast, rundir, own ? &disks : NULL, &sb, &own_disk, err);
	if (own_disk && !jr->ws.ephemeral)
		ws_adopt_disk(&jr->ws, own_disk);
	else if (own_disk) {
		unlink(own_disk); /* ephemeral: the sandbox's disk is scratch */
		free(own_disk);
	}
	if (r == 0) {
		int64_t t_init = mono_ms();
		r = sandbox_init(sb, host, J.cfg.net, JOB_RESTORE_INIT_MS, a->wake[0], err);
		if (r == 0) {
			log_info("job %s: restored from the template in %lld ms, INIT answered %lld ms later", a->id,
				 (long long)sb->boot_ms, (long long)(mono_ms() - t_init));
			goto out;
		}
		if (r != -EINTR) {
			log_warn("job %s: restored sandbox failed (%s); cold booting", a->id, err->msg);
			fast_invalidate(jr->img->fast, sb->snap_gen, err->msg);
		}
		sandbox_free(sb);
		sb = NULL;
		if (r == -EINTR)
			goto out;
	} else if (r != -ENOENT) {
		log_warn("job %s: restore failed (%s); cold booting", a->id, err->msg);
	}
	err_clear(err);
	/* a local workspace whose blank disk went with a failed restore gets a new one */
	if (!jr->ws.ephemeral && jr->ws.disk_local && access(jr->ws.disk ? jr->ws.disk : "", F_OK) != 0 &&
	    (r = ws_local_disk(&jr->ws, err)) < 0)
		goto out;
	own = ws_disks(&jr->ws, &disks);
	r = sandbox_boot(&jr->img->eng, rundir, NULL, own ? &disks : NULL, JOB_BOOT_TIMEOUT_MS, a->wake[0], &sb, err);
	if (r < 0)
		goto out;
	log_info("job %s: cold booted in %lld ms", a->id, (long long)sb->boot_ms);
	r = sandbox_init(sb, host, J.cfg.net, JOB_BOOT_TIMEOUT_MS, a->wake[0], err);
	if (r < 0) {
		sandbox_free(sb);
		sb = NULL;
	}
out:
	free(rundir);
	*out = sb;
	return r;
}

static void say_job(void *arg, const char *line)
{
	struct jobrun *jr = arg;
	db_log_append(jr->id, LOG_SYSTEM, line, strlen(line));
	bump();
}

/* Drains the wake pipe; true when a stop is asked (else there are calls). */
static bool woken_to_stop(struct active *a)
{
	char b[64];
	while (read(a->wake[0], b, sizeof b) > 0)
		;
	return stop_reason(a) != STOP_NONE;
}

/* Marks the sandbox as taking requests (or not); taking them starts the idle clock. */
static void set_serving(struct active *a, bool on)
{
	pthread_mutex_lock(&J.mu);
	a->serving = on;
	a->sleeping = false;
	a->wake_asked = false;
	if (on)
		a->last_active = mono_ms();
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}

/*
 * Runs the startup command to its end (at most STARTUP_MAX_MS), its output
 * stored with the job's. Returns its exit code, -EINTR on a stop, or another
 * negative code with err set.
 */
static int run_startup(struct jobrun *jr, struct err *err)
{
	struct buf kv;
	buf_init(&kv);
	proto_kv_puts(&kv, "cmd", jr->j->startup);
	proto_kv_puts(&kv, "cwd", JOB_CWD);
	int r = sandbox_send(jr->sb, MSG_EXEC, STARTUP_CHAN, kv.data, kv.len, err);
	buf_free(&kv);
	int64_t deadline = mono_ms() + STARTUP_MAX_MS;
	while (r == 0) {
		struct agent_frame f;
		int left = (int)(deadline - mono_ms());
		r = sandbox_recv(jr->sb, &f, left > 0 ? left : 0, jr->a->wake[0], err);
		if (r == 0)
			return err_set(err, ETIMEDOUT, "the startup command ran longer than %d s", STARTUP_MAX_MS / 1000);
		if (r == -EINTR) {
			if (woken_to_stop(jr->a))
				return -EINTR;
			r = 0; /* requests wait until the sandbox serves */
			continue;
		}
		if (r < 0)
			return r;
		r = 0;
		if (other_frame(jr, &f)) {
			/* the script's output or another thread's channel */
		} else if (f.chan == STARTUP_CHAN && (f.type == MSG_STDOUT || f.type == MSG_STDERR)) {
			store_output(jr, f.type == MSG_STDOUT ? LOG_STDOUT : LOG_STDERR, f.payload, f.len, false);
		} else if (f.chan == STARTUP_CHAN && f.type == MSG_EXIT) {
			struct agent_exit ex;
			if (proto_exit_decode(f.payload, f.len, &ex) < 0)
				return err_set(err, EPROTO, "malformed exit report from the agent");
			return ex.code;
		} else if (f.chan == STARTUP_CHAN && f.type == MSG_ERROR) {
			return err_set(err, EPROTO, "%.*s", (int)(f.len > 300 ? 300 : f.len), (const char *)f.payload);
		}
	}
	return r;
}

/*
 * A VM for the job, made ready and running its command: booted or restored,
 * workspace mounted, uploaded files placed (first start only), SSH on (when
 * asked or on before a restart), the startup command run, the command
 * started. On failure the job ends (job_end) and a negative code returns.
 */
static int bring_up(struct jobrun *jr, bool first)
{
	struct active *a = jr->a;
	struct err err = { 0 };
	const char *what = "the sandbox failed to start";
	int r = start_sandbox(jr, &jr->sb, &err);
	if (r == 0) {
		jr->vm_started = mono_ms();
		if (jr->sb->vm->ns.fd >= 0) {
			pthread_mutex_lock(&J.mu);
			if (a->netns_fd >= 0)
				close(a->netns_fd);
			a->netns_fd = fcntl(jr->sb->vm->ns.fd, F_DUPFD_CLOEXEC, 0);
			pthread_mutex_unlock(&J.mu);
		}
		what = "could not mount the workspace";
		if (!jr->ws.ephemeral && !jr->sb->ws_mounted)
			r = sandbox_mount(jr->sb, jr->ws.nlayers, JOB_AGENT_CALL_MS, a->wake[0], &err);
	}
	if (r == 0 && first) {
		what = "could not place the uploaded files";
		r = deliver_files(jr, &err);
	}
	pthread_mutex_lock(&J.mu);
	bool ssh = jr->j->ssh || a->ssh_fwd;
	pthread_mutex_unlock(&J.mu);
	if (r == 0 && ssh) {
		what = "could not enable SSH";
		r = ssh_enable(jr, jr->j->ssh_key, &err);
	}
	if (r == 0 && jr->j->startup) {
		what = "the startup command failed";
		r = run_startup(jr, &err);
		if (r > 0)
			r = err_set(&err, 500, "exit code %d", r);
	}
	if (r == 0) {
		what = "could not start the script";
		r = send_exec(jr->sb, jr->j, &err);
	}
	if (r == 0) {
		set_serving(a, true);
		return 0;
	}
	if (r == -EINTR) {
		job_end(jr, false, 0, xstrdup(stop_text(stop_reason(a))));
		return r;
	}
	char *error = xasprintf("%s: %s", what, err.msg);
	sys_log(jr->id, "%s\n", error);
	log_warn("job %s: %s", jr->id, error);
	job_end(jr, false, 0, error);
	return r;
}

/* Waits up to ms on the wake pipe. Returns -EINTR when a stop was asked, else 0 (time is up). */
static int pause_for_stop(struct active *a, int ms)
{
	int64_t until = mono_ms() + ms;
	for (;;) {
		int left = (int)(until - mono_ms());
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = a->wake[0], .events = POLLIN };
		if (poll(&p, 1, left) > 0 && woken_to_stop(a))
			return -EINTR;
	}
}

/*
 * Always-on: the VM died (or would not wake). Starts a new one on the same
 * workspace after a backoff (RESTART_FIRST_MS doubling to RESTART_MAX_MS;
 * reset after RESTART_RESET_MS of uptime). Returns 0 once it serves, else
 * <0 with the job ended.
 */
static int restart_vm(struct jobrun *jr, const char *why)
{
	struct active *a = jr->a;
	if (mono_ms() - jr->vm_started >= RESTART_RESET_MS)
		jr->crashes = 0;
	int delay = RESTART_FIRST_MS;
	for (int i = 0; i < jr->crashes && delay < RESTART_MAX_MS; i++)
		delay *= 2;
	if (delay > RESTART_MAX_MS)
		delay = RESTART_MAX_MS;
	jr->crashes++;
	sys_log(jr->id, "the sandbox's VM stopped (%s); starting it again in %.1f s\n", why, delay / 1000.0);
	log_warn("job %s: VM stopped (%s); restart in %d ms", jr->id, why, delay);
	db_job_restarted(jr->id);
	set_serving(a, false);
	chans_gone(a, "the sandbox's VM stopped and is starting again");
	pthread_mutex_lock(&J.mu);
	a->nfwd = 0; /* user networking: the forwards went with QEMU */
	pthread_mutex_unlock(&J.mu);
	sandbox_free(jr->sb);
	jr->sb = NULL;
	jr->cmd_done = false;
	if (pause_for_stop(a, delay) == -EINTR) {
		job_end(jr, false, 0, xstrdup(stop_text(stop_reason(a))));
		return -EINTR;
	}
	return bring_up(jr, false);
}

/* Milliseconds until an always-on sandbox may sleep: -1 never (or not now), 0 now. */
static int idle_left(struct active *a)
{
	pthread_mutex_lock(&J.mu);
	int64_t left = -1;
	if (a->always_on && a->idle_ms > 0 && a->conns == 0 && a->serving) {
		left = a->last_active + a->idle_ms - mono_ms();
		if (left < 0)
			left = 0;
	}
	pthread_mutex_unlock(&J.mu);
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/*
 * Puts an idle always-on sandbox to sleep (its whole state to the run dir,
 * QEMU gone), waits for a request, a call or a stop, and wakes it: a new
 * QEMU loads the state, INIT sets the clock, the startup command runs.
 * Returns 0 once it serves again (or when it could not sleep and stays up),
 * -EINTR on a stop (job not ended), or <0 with err set when it would not wake.
 */
static int sleep_and_wake(struct jobrun *jr, struct err *err)
{
	struct active *a = jr->a;
	if (idle_left(a) != 0)
		return 0; /* a connection or a call came meanwhile */
	pthread_mutex_lock(&J.mu);
	/* from here on jobs_connect waits for the wake instead of connecting */
	bool still_idle = a->conns == 0 && !a->calls && a->always_on && a->idle_ms > 0 &&
			  mono_ms() - a->last_active >= a->idle_ms;
	if (still_idle) {
		a->serving = false;
		a->sleeping = true;
		a->wake_asked = false;
		a->nfwd = 0;
		bump_locked();
	}
	int idle_s = a->idle_ms / 1000;
	pthread_mutex_unlock(&J.mu);
	if (!still_idle)
		return 0;
	char *state = xasprintf("%s/sleep.state", jr->sb->vm->rundir);
	int64_t t0 = mono_ms();
	long long bytes = 0;
	int r = sandbox_sleep(jr->sb, state, &bytes, err);
	if (r < 0) {
		sys_log(jr->id, "could not put the sandbox to sleep (%s); it stays up\n", err->msg);
		log_warn("job %s: sleep: %s", jr->id, err->msg);
		err_clear(err);
		free(state);
		set_serving(a, true);
		return 0;
	}
	db_job_set_sleeping(jr->id, true);
	sys_log(jr->id, "asleep after %d s without traffic (%.1f MiB of state saved in %lld ms)\n", idle_s,
		bytes / 1048576.0, (long long)(mono_ms() - t0));
	log_info("job %s: asleep (%lld bytes, %lld ms)", jr->id, bytes, (long long)(mono_ms() - t0));
	for (;;) {
		struct pollfd p = { .fd = a->wake[0], .events = POLLIN };
		if (poll(&p, 1, -1) <= 0)
			continue;
		if (woken_to_stop(a)) {
			free(state);
			return -EINTR;
		}
		pthread_mutex_lock(&J.mu);
		bool go = a->wake_asked || a->calls;
		if (go)
			a->sleeping = false; /* waking: requests now wait for it to serve, and nothing pokes the pipe */
		pthread_mutex_unlock(&J.mu);
		if (go)
			break;
	}
	t0 = mono_ms();
	char host[32];
	job_hostname(a, host);
	r = sandbox_wake(&jr->img->eng, jr->sb, state, err);
	int64_t loaded = mono_ms() - t0;
	if (r == 0)
		r = sandbox_init(jr->sb, host, J.cfg.net, JOB_RESTORE_INIT_MS, a->wake[0], err);
	unlink(state);
	free(state);
	db_job_set_sleeping(jr->id, false);
	if (r < 0)
		return r;
	int64_t woke = mono_ms() - t0;
	if (jr->j->startup) {
		int code = run_startup(jr, err);
		if (code == -EINTR)
			return code;
		if (code != 0)
			sys_log(jr->id, "the startup command failed at wake: %s\n", code < 0 ? err->msg : "non-zero exit");
		err_clear(err);
	}
	sys_log(jr->id, "awake again (restored in %lld ms)\n", (long long)woke);
	log_info("job %s: awake in %lld ms (QEMU up and state loaded in %lld ms)", jr->id, (long long)woke,
		 (long long)loaded);
	set_serving(a, true);
	return 0;
}

/* Sandbox up, workspace mounted, files in place, script started, output stored until it ends. */
static void run_script(struct jobrun *jr)
{
	struct active *a = jr->a;
	struct err err = { 0 };
	if (bring_up(jr, true) < 0) {
		chans_gone(a, "the sandbox did not start");
		end_calls(a);
		return;
	}
	pthread_mutex_lock(&J.mu);
	if (!a->deadline_set) {
		a->timeout_s = jr->j->timeout;
		a->deadline = jr->j->timeout > 0 && !jr->j->always_on
				      ? mono_ms() + (int64_t)jr->j->timeout * 1000 + HOST_TIMEOUT_SLACK_MS : -1;
	}
	pthread_mutex_unlock(&J.mu);
	int r;
	while (!jr->ended) {
		pthread_mutex_lock(&J.mu);
		int64_t deadline = a->always_on ? -1 : a->deadline;
		int timeout_s = a->timeout_s;
		pthread_mutex_unlock(&J.mu);
		if (jr->cmd_done && !always_on(a)) {
			job_end(jr, true, 0, NULL); /* always_on switched off after the command exited 0 */
			break;
		}
		struct agent_frame f;
		int wait = deadline < 0 ? -1 : (int)(deadline - mono_ms());
		if (deadline >= 0 && wait <= 0) {
			char *error = a->deadline_set ? xasprintf("timed out after %ds", timeout_s)
						      : xasprintf("timed out after %ds (the sandbox stopped answering)", timeout_s);
			sys_log(jr->id, "%s\n", error);
			job_end(jr, true, 124, error);
			break;
		}
		int idle = idle_left(a);
		if (idle == 0) {
			r = sleep_and_wake(jr, &err);
			if (r == -EINTR) {
				char *error = xstrdup(stop_text(stop_reason(a)));
				sys_log(jr->id, "%s\n", error);
				job_end(jr, false, 0, error);
				break;
			}
			if (r < 0 && restart_vm(jr, err.msg) < 0)
				break;
			err_clear(&err);
			continue;
		}
		if (idle > 0 && (wait < 0 || idle < wait))
			wait = idle;
		r = sandbox_recv(jr->sb, &f, wait, a->wake[0], &err);
		if (r == 0)
			continue;
		if (r == -EINTR) {
			if (!woken_to_stop(a)) {
				serve_calls(jr);
				continue;
			}
			char *error = xstrdup(stop_text(stop_reason(a)));
			sys_log(jr->id, "%s\n", error);
			job_end(jr, false, 0, error);
			break;
		}
		if (r < 0) {
			if (always_on(a) && stop_reason(a) == STOP_NONE) {
				if (restart_vm(jr, err.msg) < 0)
					break;
				err_clear(&err);
				continue;
			}
			char *error = xasprintf("sandbox failed: %s", err.msg);
			sys_log(jr->id, "%s\n", error);
			job_end(jr, false, 0, error);
			break;
		}
		other_frame(jr, &f); /* any other channel: acks of requests already answered */
	}
	chans_gone(a, jr->error ? jr->error : "the sandbox's job ended");
	end_calls(a);
}

/* An always-on job's idle time in ms: its own idle_timeout (s), or magsd's default when -1. */
static int idle_ms(int idle_timeout)
{
	int s = idle_timeout >= 0 ? idle_timeout : J.cfg.idle_timeout;
	return s > 0 ? s * 1000 : 0;
}

/*
 * Runs one claimed job to its end and records the outcome, in most cases
 * before its VM is torn down (callers waiting on it go on sooner; a named
 * workspace is let go a moment later, see ws_delete). A job that pushes its
 * workspace or freezes it as a base ends only when that is done, so what
 * `mags run -p` wrote is in the store when it returns.
 */
static void run_job(struct active *a)
{
	struct job_row j;
	if (db_job_get(a->id, 0, &j) < 0)
		return;
	struct jobrun jr = { .id = a->id, .a = a, .j = &j, .first_output = true, .t_claim = mono_ms() };
	struct err err = { 0 };
	pthread_mutex_lock(&J.mu);
	a->always_on = j.always_on;
	a->idle_ms = idle_ms(j.idle_timeout);
	pthread_mutex_unlock(&J.mu);
	/* a job from before images has none: the default; one whose image is gone fails */
	jr.img = images_find(j.image);
	int r = jr.img ? ws_prepare(&j, a->wake[0], say_job, &jr, &jr.ws, &err) : 0;
	if (r == 0 && j.workspace)
		db_node_cache_touch(cluster_node_id(), j.user_id, j.workspace); /* placement sends its next jobs here */
	if (!jr.img) {
		job_end(&jr, false, 0, xasprintf("image: this magsd has no image \"%s\" any more (it has: %s)", j.image,
						 images_names()));
		sys_log(a->id, "%s\n", jr.error);
		j.always_on = false; /* not requeued: it would fail again */
	} else if (r == -EINTR)
		job_end(&jr, false, 0, xstrdup(stop_text(stop_reason(a))));
	else if (r < 0) {
		job_end(&jr, false, 0, xasprintf("workspace: %s", err.msg));
		sys_log(a->id, "%s\n", jr.error);
	} else {
		run_script(&jr);
	}
	procs_job_ended(a->id); /* its processes went with the sandbox (their streams have ended) */
	/*
	 * A named workspace outlives its job, and the job shows as ended before its
	 * VM is powered off (which syncs the guest's filesystems): what the script
	 * wrote must be on the host's disk first, or a magsd killed in between (its
	 * VMs die with it) loses a completed job's writes. FREEZE syncs them; the
	 * power-off thaws. Only when the script exited by itself (the agent answers);
	 * a job that pushes its workspace ends after the power-off anyway.
	 */
	if (jr.sb && jr.ws.name && jr.ws.held && !jr.ws.persistent && !jr.ws.base_image && jr.has_exit && !jr.error &&
	    stop_reason(a) == STOP_NONE) {
		err_clear(&err);
		if (agent_call(&jr, MSG_FREEZE, 0, NULL, JOB_AGENT_CALL_MS, -1, &err) < 0)
			log_warn("job %s: sync of workspace %s before the job ends: %s", a->id, jr.ws.name, err.msg);
		err_clear(&err);
	}
	store_output(&jr, LOG_STDOUT, NULL, 0, true);
	store_output(&jr, LOG_STDERR, NULL, 0, true);
	/* an always-on job interrupted by a shutdown starts again with the next magsd */
	bool requeue = j.always_on && stop_reason(a) == STOP_SHUTDOWN;
	/* a push or a freeze at the end is part of the job: it ends when they are done */
	bool after = jr.ws.name && (jr.ws.persistent || jr.ws.base_image);
	if (!after && !requeue) {
		db_job_finish(a->id, jr.exit_code, jr.has_exit, jr.error);
		bump();
	}
	sandbox_free(jr.sb); /* powers the VM off (the agent leaves the workspace clean) and removes its run dir */
	err_clear(&err);
	bool ok = jr.has_exit && jr.exit_code == 0 && !jr.error;
	if (ws_finish(&jr.ws, ok, say_job, &jr, &err) < 0)
		log_warn("job %s: %s", a->id, err.msg);
	ws_job_free(&jr.ws);
	if (requeue) {
		db_job_set_sleeping(a->id, false);
		db_job_requeue(a->id);
		sys_log(a->id, "magsd shut down; the always-on sandbox starts again when magsd does\n");
	} else if (after) {
		db_job_finish(a->id, jr.exit_code, jr.has_exit, jr.error);
		bump();
	}
	char *key = ssh_key_path(a->id);
	char *pub = xasprintf("%s.pub", key);
	unlink(key);
	unlink(pub);
	free(key);
	free(pub);
	char *uploads = ws_upload_dir(a->id, false);
	fs_rm_tree(uploads);
	free(uploads);
	log_info("job %s: %s%s%s", a->id, jr.has_exit ? "exited " : "ended",
		 jr.has_exit ? (jr.exit_code == 0 ? "0" : "non-zero") : "", jr.error ? " (error)" : "");
	free(jr.error);
	db_job_row_free(&j);
}

void jobs_update(const char *id, bool on, int idle_timeout)
{
	pthread_mutex_lock(&J.mu);
	struct active *a = active_locked(id);
	if (a) {
		a->always_on = on;
		a->idle_ms = idle_ms(idle_timeout);
		poke_locked(a);
	}
	pthread_mutex_unlock(&J.mu);
}

/*
 * A node of a cluster: waits until there may be work (a NOTIFY, a local
 * submit, or CLUSTER_POLL_MS), then claims the next job it may run from the
 * shared table. Returns 0 with id set or empty (look again), -1 when
 * draining (id empty).
 */
static int claim_shared(char id[40])
{
	for (;;) {
		pthread_mutex_lock(&J.mu);
		bool draining = J.draining;
		pthread_mutex_unlock(&J.mu);
		if (draining)
			return -1;
		int r = db_job_claim_next(cluster_node_id(), J.cfg.accel, cluster_timeout_ms(), id);
		if (r > 0)
			return 0;
		id[0] = '\0';
		struct timespec ts = deadline_in(CLOCK_REALTIME, CLUSTER_POLL_MS);
		pthread_mutex_lock(&J.mu);
		if (!J.draining)
			pthread_cond_timedwait(&J.work, &J.mu, &ts);
		pthread_mutex_unlock(&J.mu);
	}
}

static void *worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		char claimed[40] = "";
		if (cluster_on() && claim_shared(claimed) < 0)
			return NULL;
		pthread_mutex_lock(&J.mu);
		while (!claimed[0] && !J.draining && !J.head)
			pthread_cond_wait(&J.work, &J.mu);
		if (J.draining && !claimed[0]) {
			pthread_mutex_unlock(&J.mu);
			return NULL;
		}
		struct qitem *q;
		if (claimed[0]) {
			q = xcalloc(1, sizeof *q);
			q->id = xstrdup(claimed);
		} else {
			q = J.head;
			J.head = q->next;
			if (!J.head)
				J.tail = NULL;
		}
		/*
		 * Registered before the claim, so a stop racing with the claim finds it,
		 * and in the same hold of mu as it leaves the queue, so a caller waiting
		 * for it to serve (serving_locked) always finds it in one or the other.
		 */
		struct active *a = xcalloc(1, sizeof *a);
		snprintf(a->id, sizeof a->id, "%s", q->id);
		a->netns_fd = -1;
		a->deadline = -1;
		pthread_mutex_init(&a->cb_mu, NULL);
		free(q->id);
		free(q);
		if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
			pthread_mutex_unlock(&J.mu);
			db_job_finish(a->id, 0, false, "internal error: pipe failed");
			pthread_mutex_destroy(&a->cb_mu);
			free(a);
			continue;
		}
		a->next = J.active;
		J.active = a;
		J.running++;
		pthread_mutex_unlock(&J.mu);

		/* a node of a cluster claimed it already (claim_shared) */
		if (claimed[0] || db_job_claim(a->id, J.cfg.accel, cluster_node_id())) {
			bump();
			run_job(a);
		}

		pthread_mutex_lock(&J.mu);
		for (struct active **pp = &J.active; *pp; pp = &(*pp)->next)
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		J.running--;
		bump_locked();
		pthread_mutex_unlock(&J.mu);
		close(a->wake[0]);
		close(a->wake[1]);
		pthread_mutex_destroy(&a->cb_mu);
		free(a);
	}
}

int jobs_start(const struct jobs_config *cfg, struct err *err)
{
	J.cfg = *cfg;
	int killed = engine_reap_stale(cfg->run_root);
	if (killed)
		log_warn("killed %d VM(s) left running by an earlier magsd", killed);
	size_t n;
	bool shared = cluster_on();
	char **ids = shared ? db_node_jobs(cluster_node_id(), "running", &n) : db_jobs_with_status("running", &n);
	for (size_t i = 0; i < n; i++) {
		struct job_row j;
		bool on = db_job_get(ids[i], 0, &j) == 0 && j.always_on;
		db_job_row_free(&j);
		if (on) {
			/* an always-on sandbox survives magsd: it starts again from its workspace */
			db_job_set_sleeping(ids[i], false);
			db_job_requeue(ids[i]);
			sys_log(ids[i], "magsd restarted; starting the always-on sandbox again\n");
			log_warn("job %s: always-on, queued again", ids[i]);
			free(ids[i]);
			continue;
		}
		db_log_append(ids[i], LOG_SYSTEM, "interrupted: magsd stopped while the job ran\n", 45);
		db_job_finish(ids[i], 0, false, "interrupted: magsd stopped while the job ran");
		log_warn("job %s: marked failed (interrupted)", ids[i]);
		free(ids[i]);
	}
	free(ids);
	/* the uploads of jobs that ended or were interrupted (run_job's cleanup never ran for them) */
	ws_sweep_uploads();
	ws_sweep_partial();
	/* a node of a cluster claims queued jobs from the shared table instead */
	ids = shared ? xcalloc(1, sizeof *ids) : db_jobs_with_status("queued", &n);
	if (shared)
		n = 0;
	pthread_mutex_lock(&J.mu);
	for (size_t i = 0; i < n; i++) {
		struct job_row j;
		/* one still waiting for its files is queued by the last upload */
		if (db_job_get(ids[i], 0, &j) == 0 && j.files_pending == 0)
			enqueue_locked(ids[i]);
		db_job_row_free(&j);
		free(ids[i]);
	}
	pthread_mutex_unlock(&J.mu);
	free(ids);

	J.nworkers = cfg->max_concurrent > 0 ? cfg->max_concurrent : 1;
	J.workers = xcalloc((size_t)J.nworkers, sizeof *J.workers);
	for (int i = 0; i < J.nworkers; i++) {
		int e = pthread_create(&J.workers[i], NULL, worker_main, NULL);
		if (e) {
			J.nworkers = i;
			return err_set(err, e, "start worker thread");
		}
	}
	return 0;
}

void jobs_shutdown(int grace_ms)
{
	pthread_mutex_lock(&J.mu);
	J.draining = true;
	pthread_cond_broadcast(&J.work);
	pthread_mutex_unlock(&J.mu);

	int64_t deadline = mono_ms() + grace_ms;
	for (;;) {
		pthread_mutex_lock(&J.mu);
		int running = J.running;
		bool late = mono_ms() >= deadline;
		/* always-on jobs do not end by themselves: they stop at once and start again with the next magsd */
		for (struct active *a = J.active; a; a = a->next) {
			if (!late && !a->always_on)
				continue;
			if (a->stop == STOP_NONE)
				a->stop = STOP_SHUTDOWN;
			if (write(a->wake[1], "x", 1) < 0) {
				/* non-blocking; already woken */
			}
		}
		pthread_mutex_unlock(&J.mu);
		if (!running)
			break;
		usleep(20000);
	}
	for (int i = 0; i < J.nworkers; i++)
		pthread_join(J.workers[i], NULL);
	free(J.workers);
	J.workers = NULL;
	pthread_mutex_lock(&J.mu);
	while (J.head) {
		struct qitem *q = J.head;
		J.head = q->next;
		free(q->id);
		free(q);
	}
	J.tail = NULL;
	J.stopping = true;
	bump_locked();
	pthread_mutex_unlock(&J.mu);
}
