// SPDX-License-Identifier: MIT
/*
 * Job queue and workers; see jobs.h. Where a job's timeout fires: the agent
 * kills the script's process group at `timeout` (exit 124); run_job() keeps a
 * host-side deadline a little later in case the guest stops answering.
 */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "fast.h"
#include "log.h"
#include "proto.h"
#include "sandbox.h"
#include "utf8.h"
#include "xmalloc.h"

#define HOST_TIMEOUT_SLACK_MS 15000	/* host deadline after the agent's own */
#define JOB_CHAN 1

enum stop_reason {
	STOP_NONE,
	STOP_USER,	/* POST /stop */
	STOP_SHUTDOWN,	/* magsd is shutting down */
};

/* A job a worker is running. */
struct active {
	char id[40];
	int wake[2];		/* pipe: written to interrupt the worker */
	enum stop_reason stop;	/* under mu */
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

void jobs_wait_event(uint64_t seen, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
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

void jobs_submit(const char *id)
{
	pthread_mutex_lock(&J.mu);
	enqueue_locked(id);
	bump_locked();
	pthread_mutex_unlock(&J.mu);
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
	if (r == 0) {
		pthread_mutex_unlock(&J.mu);
		sys_log(id, "stopped before it started\n");
		db_job_finish(id, 0, false, "stopped");
		bump();
		return 0;
	}
	for (struct active *a = J.active; a; a = a->next) {
		if (strcmp(a->id, id))
			continue;
		a->stop = STOP_USER;
		if (write(a->wake[1], "x", 1) < 0) {
			/* the pipe is non-blocking; a full pipe already wakes the worker */
		}
		r = 0;
		break;
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
	size_t logged;			/* bytes of output stored */
	bool truncated;
	struct outstream out[2];	/* stdout, stderr */
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
	proto_kv_puts(&kv, "cwd", "/root");
	if (!strcmp(j->type, "file"))
		proto_kv_puts(&kv, "file", "1");
	if (j->timeout > 0) {
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

/*
 * A running sandbox whose agent has taken INIT: restored from the template
 * when one is ready, else cold booted. A restore that fails or does not
 * answer drops the template (fast.c rebuilds it) and the job cold boots.
 */
static int start_sandbox(struct active *a, struct sandbox **out, struct err *err)
{
	char host[32];
	snprintf(host, sizeof host, "mags-%.8s", a->id);
	char *rundir = xasprintf("%s/%s", J.cfg.run_root, a->id);
	struct sandbox *sb = NULL;
	int r = fast_take(rundir, &sb, err);
	if (r == 0) {
		int64_t t_init = mono_ms();
		r = sandbox_init(sb, host, JOB_RESTORE_INIT_MS, a->wake[0], err);
		if (r == 0) {
			log_info("job %s: restored from the template in %lld ms, INIT answered %lld ms later", a->id,
				 (long long)sb->boot_ms, (long long)(mono_ms() - t_init));
			goto out;
		}
		if (r != -EINTR) {
			log_warn("job %s: restored sandbox failed (%s); cold booting", a->id, err->msg);
			fast_invalidate(sb->snap_gen, err->msg);
		}
		sandbox_free(sb);
		sb = NULL;
		if (r == -EINTR)
			goto out;
	} else if (r != -ENOENT) {
		log_warn("job %s: restore failed (%s); cold booting", a->id, err->msg);
	}
	err_clear(err);
	r = sandbox_boot(J.cfg.engine, rundir, NULL, JOB_BOOT_TIMEOUT_MS, a->wake[0], &sb, err);
	if (r < 0)
		goto out;
	log_info("job %s: cold booted in %lld ms", a->id, (long long)sb->boot_ms);
	r = sandbox_init(sb, host, JOB_BOOT_TIMEOUT_MS, a->wake[0], err);
	if (r < 0) {
		sandbox_free(sb);
		sb = NULL;
	}
out:
	free(rundir);
	*out = sb;
	return r;
}

/* Runs one claimed job to its end and records the outcome. */
static void run_job(struct active *a)
{
	struct job_row j;
	if (db_job_get(a->id, 0, &j) < 0)
		return;
	struct jobrun jr = { .id = a->id };
	struct err err = { 0 };
	struct sandbox *sb = NULL;
	bool has_exit = false;
	int exit_code = 0;
	char *error = NULL;

	int64_t t_claim = mono_ms();
	bool first_output = true;
	int r = start_sandbox(a, &sb, &err);
	if (r == -EINTR) {
		error = xstrdup(stop_text(stop_reason(a)));
		goto out;
	}
	if (r < 0) {
		error = xasprintf("sandbox failed to start: %s", err.msg);
		sys_log(a->id, "%s\n", error);
		log_warn("job %s: %s", a->id, error);
		goto out;
	}
	if (send_exec(sb, &j, &err) < 0) {
		error = xasprintf("could not start the script: %s", err.msg);
		goto out;
	}
	int64_t deadline = j.timeout > 0 ? mono_ms() + (int64_t)j.timeout * 1000 + HOST_TIMEOUT_SLACK_MS : -1;
	for (;;) {
		struct agent_frame f;
		int wait = deadline < 0 ? -1 : (int)(deadline - mono_ms());
		if (deadline >= 0 && wait <= 0) {
			has_exit = true;
			exit_code = 124;
			error = xasprintf("timed out after %ds (the sandbox stopped answering)", j.timeout);
			sys_log(a->id, "%s\n", error);
			break;
		}
		r = sandbox_recv(sb, &f, wait, a->wake[0], &err);
		if (r == 0)
			continue;
		if (r == -EINTR) {
			error = xstrdup(stop_text(stop_reason(a)));
			sys_log(a->id, "%s\n", error);
			break;
		}
		if (r < 0) {
			error = xasprintf("sandbox failed: %s", err.msg);
			sys_log(a->id, "%s\n", error);
			break;
		}
		if (f.chan != JOB_CHAN)
			continue; /* control-channel acks (INIT) */
		if (f.type == MSG_STDOUT || f.type == MSG_STDERR) {
			if (first_output) {
				log_debug("job %s: first output %lld ms after the claim", a->id, (long long)(mono_ms() - t_claim));
				first_output = false;
			}
			store_output(&jr, f.type == MSG_STDOUT ? LOG_STDOUT : LOG_STDERR, f.payload, f.len, false);
		} else if (f.type == MSG_EXIT) {
			struct agent_exit ex;
			if (proto_exit_decode(f.payload, f.len, &ex) < 0) {
				error = xstrdup("sandbox failed: malformed exit report from the agent");
				break;
			}
			has_exit = true;
			exit_code = ex.code;
			if (ex.flags & AGENT_EXIT_TIMEOUT) {
				error = xasprintf("timed out after %ds", j.timeout);
				sys_log(a->id, "%s\n", error);
			}
			break;
		} else if (f.type == MSG_ERROR) {
			error = xasprintf("sandbox could not run the script: %.*s", (int)(f.len > 300 ? 300 : f.len), (const char *)f.payload);
			sys_log(a->id, "%s\n", error);
			break;
		}
	}
out:
	store_output(&jr, LOG_STDOUT, NULL, 0, true);
	store_output(&jr, LOG_STDERR, NULL, 0, true);
	/* the outcome is known: tell waiters now, tear the VM down after */
	db_job_finish(a->id, exit_code, has_exit, error);
	bump();
	sandbox_free(sb); /* powers the VM off and removes its run dir */
	log_info("job %s: %s%s%s", a->id, has_exit ? "exited " : "ended",
		 has_exit ? (exit_code == 0 ? "0" : "non-zero") : "", error ? " (error)" : "");
	free(error);
	db_job_row_free(&j);
}

static void *worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&J.mu);
		while (!J.draining && !J.head)
			pthread_cond_wait(&J.work, &J.mu);
		if (J.draining) {
			pthread_mutex_unlock(&J.mu);
			return NULL;
		}
		struct qitem *q = J.head;
		J.head = q->next;
		if (!J.head)
			J.tail = NULL;
		pthread_mutex_unlock(&J.mu);

		/* registered before the claim, so a stop racing with the claim finds it */
		struct active *a = xcalloc(1, sizeof *a);
		snprintf(a->id, sizeof a->id, "%s", q->id);
		free(q->id);
		free(q);
		if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
			db_job_finish(a->id, 0, false, "internal error: pipe failed");
			free(a);
			continue;
		}
		pthread_mutex_lock(&J.mu);
		a->next = J.active;
		J.active = a;
		J.running++;
		pthread_mutex_unlock(&J.mu);

		if (db_job_claim(a->id, engine_accel_name(J.cfg.engine))) {
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
	char **ids = db_jobs_with_status("running", &n);
	for (size_t i = 0; i < n; i++) {
		db_log_append(ids[i], LOG_SYSTEM, "interrupted: magsd stopped while the job ran\n", 45);
		db_job_finish(ids[i], 0, false, "interrupted: magsd stopped while the job ran");
		log_warn("job %s: marked failed (interrupted)", ids[i]);
		free(ids[i]);
	}
	free(ids);
	ids = db_jobs_with_status("queued", &n);
	pthread_mutex_lock(&J.mu);
	for (size_t i = 0; i < n; i++) {
		enqueue_locked(ids[i]);
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
		if (running && mono_ms() >= deadline) {
			for (struct active *a = J.active; a; a = a->next) {
				if (a->stop == STOP_NONE)
					a->stop = STOP_SHUTDOWN;
				if (write(a->wake[1], "x", 1) < 0) {
					/* non-blocking; already woken */
				}
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
