// SPDX-License-Identifier: MIT
/*
 * The cron scheduler: one thread that sleeps until the earliest next_run of
 * an enabled schedule (or a kick, or CRON_SCHED_POLL_MS), then fires what is
 * due. A firing first moves next_run on with a compare-and-set
 * (db_cron_advance) and only then submits the job (api_job_create), so no
 * firing is ever submitted twice, even across a crash or restart: a crash
 * between the two steps loses that one firing instead.
 *
 * Missed runs (magsd was down, or the schedule is found more than
 * CRON_LATE_MS late): the missed times are not replayed one by one. The
 * schedule fires once, standing for the newest missed time, when that time
 * is at most CRON_CATCHUP_MS old; otherwise the missed times are skipped.
 * Either way next_run moves to the first time after now.
 * Documented in docs/cli-and-daemon.md, "Cron schedules".
 */
#include "cron_sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "db.h"
#include "db_cron.h"
#include "http.h"
#include "log.h"
#include "tz.h"
#include "xmalloc.h"

#define CRON_SCHED_POLL_MS 30000	/* the longest sleep: a safety net, kicks do the rest */
#define CRON_LATE_MS 60000		/* later than this, a firing counts as missed */
#define CRON_CATCHUP_MS 3600000		/* a missed time newer than this still fires once */

static pthread_mutex_t sched_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sched_cv = PTHREAD_COND_INITIALIZER;	/* CLOCK_MONOTONIC once started */
static pthread_t sched_thread;
static bool sched_running, sched_stopping, sched_kicked;

int cron_sched_plan(const char *expression, const char *timezone, int64_t after_ms, int64_t *next, struct err *err)
{
	*next = 0;
	struct cron_expr c;
	struct tz *z;
	if (cron_parse(expression, &c, err) < 0) {
		err->code = 400;
		return err_wrap(err, "expression");
	}
	if (tz_load(timezone, &z, err) < 0)
		return err_wrap(err, "timezone");
	int64_t t = tz_next(z, &c, after_ms >= 0 ? after_ms / 1000 : -1 - (-1 - after_ms) / 1000);
	tz_free(z);
	*next = t < 0 ? 0 : t * 1000;
	return 0;
}

/* "2024-06-01T12:00:00Z" for ms. */
static void iso_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(out, n, "%lld ms", (long long)ms);
}

/*
 * The time a due schedule c fires for, as of now: its next_run when on
 * time; after a miss the newest missed time when at most CRON_CATCHUP_MS
 * old, else 0 (skip). *next gets the first time after now (0 = never).
 */
static int64_t cron_due_time(const struct cron_row *c, int64_t now, int64_t *next, struct err *err)
{
	if (cron_sched_plan(c->expression, c->timezone, now, next, err) < 0)
		return -1;
	if (now - c->next_run <= CRON_LATE_MS)
		return c->next_run;
	int64_t from = c->next_run > now - CRON_CATCHUP_MS ? c->next_run : now - CRON_CATCHUP_MS;
	int64_t newest = 0, t = from - 1000;
	for (;;) {	/* at most an hour of minutes */
		int64_t n;
		if (cron_sched_plan(c->expression, c->timezone, t, &n, err) < 0)
			return -1;
		if (!n || n > now)
			break;
		newest = t = n;
	}
	return newest;
}

/* Submits the job of schedule c standing for scheduled time `at`, and notes it. */
static void cron_submit(const struct cron_row *c, int64_t at)
{
	struct err err = { 0 };
	json_t *job = NULL;
	char when[40];
	iso_time(at, when, sizeof when);
	if (api_job_create(c->user_id, c->spec, strlen(c->spec), c->id, &job, &err) < 0) {
		log_warn("cron: schedule %s (time %s): job not submitted: %s", c->id, when, err.msg);
		char *why = xasprintf("%s: no job submitted: %s", when, err.msg);
		db_cron_set_last_job(c->id, NULL, why);
		free(why);
		return;
	}
	const char *id = json_string_value(json_object_get(job, "id"));
	if (id) {
		db_cron_set_last_job(c->id, id, NULL);
		char *line = xasprintf("cron: schedule %s%s%s%s fired for %s\n", c->id, c->name ? " (" : "",
				       c->name ? c->name : "", c->name ? ")" : "", when);
		db_log_append(id, LOG_SYSTEM, line, strlen(line));
		free(line);
		log_info("cron: schedule %s fired for %s: job %s", c->id, when, id);
	}
	json_decref(job);
}

/* Handles one due schedule: claim the firing (compare-and-set), then submit. */
static void cron_fire(const struct cron_row *c, int64_t now)
{
	struct err err = { 0 };
	int64_t next = 0;
	int64_t at = cron_due_time(c, now, &next, &err);
	if (at < 0) {
		/* its zone file vanished or the row is damaged: stop it rather than spin */
		log_warn("cron: schedule %s: %s; not scheduled again until it is changed", c->id, err.msg);
		db_cron_advance(c->id, c->next_run, 0, 0);
		return;
	}
	if (!db_cron_advance(c->id, c->next_run, next, at))
		return;	/* changed meanwhile (PATCH, DELETE): nothing to fire */
	if (!at) {
		char when[40];
		iso_time(c->next_run, when, sizeof when);
		log_info("cron: schedule %s: missed times from %s are more than an hour old: skipped", c->id, when);
		return;
	}
	cron_submit(c, at);
}

static void cron_fire_due(void)
{
	int64_t now = db_now_ms();
	size_t n;
	struct cron_row *rows = db_cron_due(now, &n);
	for (size_t i = 0; i < n; i++) {
		cron_fire(&rows[i], now);
		db_cron_row_free(&rows[i]);
	}
	free(rows);
}

/* Waits (sched_mu held) wait_ms, or until a kick or a stop. */
static void cron_wait(int64_t wait_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + (wait_ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	while (!sched_kicked && !sched_stopping)
		if (pthread_cond_timedwait(&sched_cv, &sched_mu, &ts) == ETIMEDOUT)
			break;
}

static void *cron_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&sched_mu);
	while (!sched_stopping) {
		sched_kicked = false;
		pthread_mutex_unlock(&sched_mu);
		cron_fire_due();
		int64_t earliest = db_cron_earliest(), now = db_now_ms();
		int64_t wait = earliest ? earliest - now : CRON_SCHED_POLL_MS;
		wait = wait < 0 ? 0 : wait > CRON_SCHED_POLL_MS ? CRON_SCHED_POLL_MS : wait;
		pthread_mutex_lock(&sched_mu);
		if (wait > 0)
			cron_wait(wait + 5);	/* a few ms late, never early: next_run <= now then */
	}
	pthread_mutex_unlock(&sched_mu);
	return NULL;
}

int cron_sched_start(struct err *err)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sched_cv, &ca);
	pthread_condattr_destroy(&ca);
	sched_stopping = false;
	int r = pthread_create(&sched_thread, NULL, cron_main, NULL);
	if (r)
		return err_set(err, r, "start the cron scheduler thread");
	sched_running = true;
	return 0;
}

void cron_sched_kick(void)
{
	pthread_mutex_lock(&sched_mu);
	sched_kicked = true;
	pthread_cond_signal(&sched_cv);
	pthread_mutex_unlock(&sched_mu);
}

void cron_sched_stop(void)
{
	if (!sched_running)
		return;
	pthread_mutex_lock(&sched_mu);
	sched_stopping = true;
	pthread_cond_signal(&sched_cv);
	pthread_mutex_unlock(&sched_mu);
	pthread_join(sched_thread, NULL);
	sched_running = false;
	/* sched_cv stays: a late request may still kick it (harmlessly) */
}
