/* SPDX-License-Identifier: MIT */
/*
 * Cron schedules in the database (table cron_jobs, schema 4). A schedule's
 * `spec` is the POST /mags-jobs body each firing submits (script and run
 * flags); next_run is NULL while disabled (or when it never fires again).
 * Times are milliseconds since the epoch, 0 meaning none. The scheduler
 * (cron_sched.c) moves next_run with db_cron_advance, a compare-and-set, so a
 * firing is claimed by exactly one caller.
 */
#ifndef MAGS_DB_CRON_H
#define MAGS_DB_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRON_ID_MAX 40	/* bytes of an id, NUL included */

struct cron_row {
	char id[CRON_ID_MAX];
	int64_t user_id;
	char *name;		/* owned, NULL = none */
	char *expression;	/* owned */
	char *timezone;		/* owned, NULL = UTC */
	char *spec;		/* owned; the job body (JSON text) */
	bool enabled;
	int64_t next_run;	/* 0 = none (disabled, or never fires again) */
	int64_t last_run;	/* the scheduled time of the last firing, 0 = none */
	char last_job_id[CRON_ID_MAX];	/* "" = none */
	int64_t created_at, updated_at;
	char *last_error;	/* owned, NULL = none: why the last firing submitted no job */
};

void db_cron_row_free(struct cron_row *c);
/* Adds c (created_at/updated_at set by the caller). Returns 0 or -500 with err set. */
int db_cron_insert(const struct cron_row *c, struct err *err);
/* Fills *c (free it) with schedule id of user_id (0 = any user). Returns 0 or -ENOENT. */
int db_cron_get(const char *id, int64_t user_id, struct cron_row *c);
/* A user's schedules, oldest first; free each with db_cron_row_free, then the array. */
struct cron_row *db_cron_list(int64_t user_id, size_t *n);
/*
 * Writes c's name, expression, timezone, spec, enabled and updated_at, and
 * next_run too when set_next (else the scheduler's value stays). Returns 0
 * or -ENOENT.
 */
int db_cron_update(const struct cron_row *c, bool set_next);
/* Returns 0 or -ENOENT. */
int db_cron_delete(const char *id, int64_t user_id);
/* Enabled schedules with next_run <= now, earliest first (free like db_cron_list). */
struct cron_row *db_cron_due(int64_t now, size_t *n);
/* The earliest next_run of an enabled schedule, or 0 when none. */
int64_t db_cron_earliest(void);
/*
 * Compare-and-set: when id's next_run is still old, sets it to next (0 =
 * NULL) and, when fired is not 0, last_run to fired. Returns true when this
 * call made the change (it owns that firing).
 */
bool db_cron_advance(const char *id, int64_t old, int64_t next, int64_t fired);
/* Records a firing's outcome: the job it submitted (NULL: keep the last one) and why it submitted none (NULL = ok). */
void db_cron_set_last_job(const char *id, const char *job_id, const char *error);

#endif
