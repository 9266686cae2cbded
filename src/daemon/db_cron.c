// SPDX-License-Identifier: MIT
/*
 * The cron_jobs table: see db_cron.h. Uses the shared connection and lock of
 * db.c (db_internal.h).
 */
#include "db_cron.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_internal.h"
#include "xmalloc.h"

#define CRON_COLS "id, user_id, name, expression, timezone, spec, enabled, next_run, last_run, last_job_id," \
		  " created_at, updated_at, last_error"

/* Text of column i (new string) or NULL. */
static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t n)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(out, n, "%s", t ? (const char *)t : "");
}

/* Fills c from a row selected with CRON_COLS. */
static void cron_read(sqlite3_stmt *st, struct cron_row *c)
{
	memset(c, 0, sizeof *c);
	col_copy(st, 0, c->id, sizeof c->id);
	c->user_id = sqlite3_column_int64(st, 1);
	c->name = col_dup(st, 2);
	c->expression = col_dup(st, 3);
	c->timezone = col_dup(st, 4);
	c->spec = col_dup(st, 5);
	c->enabled = sqlite3_column_int(st, 6) != 0;
	c->next_run = sqlite3_column_int64(st, 7);
	c->last_run = sqlite3_column_int64(st, 8);
	col_copy(st, 9, c->last_job_id, sizeof c->last_job_id);
	c->created_at = sqlite3_column_int64(st, 10);
	c->updated_at = sqlite3_column_int64(st, 11);
	c->last_error = col_dup(st, 12);
	if (!c->expression)
		c->expression = xstrdup("");
	if (!c->spec)
		c->spec = xstrdup("{}");
}

void db_cron_row_free(struct cron_row *c)
{
	free(c->name);
	free(c->expression);
	free(c->timezone);
	free(c->spec);
	free(c->last_error);
	memset(c, 0, sizeof *c);
}

/* Binds text or NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Binds ms or NULL for 0. */
static void bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
	if (ms)
		sqlite3_bind_int64(st, i, ms);
	else
		sqlite3_bind_null(st, i);
}

int db_cron_insert(const struct cron_row *c, struct err *err)
{
	db_lock();
	sqlite3_stmt *st = db_prep("INSERT INTO cron_jobs(" CRON_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, c->user_id);
	bind_text(st, 3, c->name);
	bind_text(st, 4, c->expression);
	bind_text(st, 5, c->timezone);
	bind_text(st, 6, c->spec);
	sqlite3_bind_int(st, 7, c->enabled);
	bind_time(st, 8, c->next_run);
	bind_time(st, 9, c->last_run);
	bind_text(st, 10, c->last_job_id[0] ? c->last_job_id : NULL);
	sqlite3_bind_int64(st, 11, c->created_at);
	sqlite3_bind_int64(st, 12, c->updated_at);
	bind_text(st, 13, c->last_error);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : err_set(err, 500, "store schedule: %s", sqlite3_errmsg(db_sqlite()));
	sqlite3_finalize(st);
	db_unlock();
	return r;
}

int db_cron_get(const char *id, int64_t user_id, struct cron_row *c)
{
	memset(c, 0, sizeof *c);
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE id = ? AND (?2 = 0 OR user_id = ?2)");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, user_id);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		cron_read(st, c);
		r = 0;
	}
	sqlite3_finalize(st);
	db_unlock();
	return r;
}

/* Runs a prepared SELECT of CRON_COLS (finalizing it) into a new array. Hold db_lock. */
static struct cron_row *cron_rows(sqlite3_stmt *st, size_t *n)
{
	struct cron_row *rows = NULL;
	size_t len = 0, cap = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			rows = xrealloc(rows, cap * sizeof *rows);
		}
		cron_read(st, &rows[len++]);
	}
	sqlite3_finalize(st);
	*n = len;
	return rows;
}

struct cron_row *db_cron_list(int64_t user_id, size_t *n)
{
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE user_id = ? ORDER BY created_at, id");
	sqlite3_bind_int64(st, 1, user_id);
	struct cron_row *rows = cron_rows(st, n);
	db_unlock();
	return rows;
}

int db_cron_update(const struct cron_row *c, bool set_next)
{
	db_lock();
	sqlite3_stmt *st = db_prep(set_next ?
		"UPDATE cron_jobs SET name = ?, expression = ?, timezone = ?, spec = ?, enabled = ?, updated_at = ?,"
		" next_run = ? WHERE id = ? AND user_id = ?" :
		"UPDATE cron_jobs SET name = ?, expression = ?, timezone = ?, spec = ?, enabled = ?, updated_at = ?"
		" WHERE id = ?8 AND user_id = ?9");
	bind_text(st, 1, c->name);
	bind_text(st, 2, c->expression);
	bind_text(st, 3, c->timezone);
	bind_text(st, 4, c->spec);
	sqlite3_bind_int(st, 5, c->enabled);
	sqlite3_bind_int64(st, 6, c->updated_at);
	if (set_next)
		bind_time(st, 7, c->next_run);
	sqlite3_bind_text(st, 8, c->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 9, c->user_id);
	int r = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_sqlite()) == 1 ? 0 : -ENOENT;
	sqlite3_finalize(st);
	db_unlock();
	return r;
}

int db_cron_delete(const char *id, int64_t user_id)
{
	db_lock();
	sqlite3_stmt *st = db_prep("DELETE FROM cron_jobs WHERE id = ? AND user_id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, user_id);
	int r = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_sqlite()) == 1 ? 0 : -ENOENT;
	sqlite3_finalize(st);
	db_unlock();
	return r;
}

struct cron_row *db_cron_due(int64_t now, size_t *n)
{
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE enabled AND next_run IS NOT NULL"
				   " AND next_run <= ? ORDER BY next_run, id");
	sqlite3_bind_int64(st, 1, now);
	struct cron_row *rows = cron_rows(st, n);
	db_unlock();
	return rows;
}

int64_t db_cron_earliest(void)
{
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT MIN(next_run) FROM cron_jobs WHERE enabled AND next_run IS NOT NULL");
	int64_t t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	db_unlock();
	return t;
}

bool db_cron_advance(const char *id, int64_t old, int64_t next, int64_t fired)
{
	db_lock();
	sqlite3_stmt *st = db_prep("UPDATE cron_jobs SET next_run = ?, last_run = COALESCE(?, last_run)"
				   " WHERE id = ? AND enabled AND next_run = ?");
	bind_time(st, 1, next);
	bind_time(st, 2, fired);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, old);
	bool won = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_sqlite()) == 1;
	sqlite3_finalize(st);
	db_unlock();
	return won;
}

void db_cron_set_last_job(const char *id, const char *job_id, const char *error)
{
	db_lock();
	sqlite3_stmt *st = db_prep("UPDATE cron_jobs SET last_job_id = COALESCE(?, last_job_id), last_error = ? WHERE id = ?");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_finalize(st);
	db_unlock();
}
