// SPDX-License-Identifier: MIT
/*
 * The cron_jobs table: see db_cron.h. Written against sql.h (SQLite or
 * PostgreSQL), on the connection and lock db.c opens.
 */
#include "db_cron.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sql.h"
#include "xmalloc.h"

#define CRON_COLS "id, user_id, name, expression, timezone, spec, enabled, next_run, last_run, last_job_id," \
		  " created_at, updated_at, last_error"

/* A row selected with CRON_COLS into item (a struct cron_row). */
static void read_cron_cb(struct sql_stmt *st, void *item)
{
	struct cron_row *c = item;
	memset(c, 0, sizeof *c);
	sql_col_copy(st, 0, c->id, sizeof c->id);
	c->user_id = sql_col_int(st, 1);
	c->name = sql_col_dup(st, 2);
	c->expression = sql_col_dup(st, 3);
	c->timezone = sql_col_dup(st, 4);
	c->spec = sql_col_dup(st, 5);
	c->enabled = sql_col_int(st, 6) != 0;
	c->next_run = sql_col_int(st, 7);
	c->last_run = sql_col_int(st, 8);
	sql_col_copy(st, 9, c->last_job_id, sizeof c->last_job_id);
	c->created_at = sql_col_int(st, 10);
	c->updated_at = sql_col_int(st, 11);
	c->last_error = sql_col_dup(st, 12);
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

/* Binds ms or NULL for 0. */
static void bind_time(struct sql_stmt *st, int i, int64_t ms)
{
	if (ms)
		sql_bind_int(st, i, ms);
	else
		sql_bind_null(st, i);
}

/* Runs st (bound; ended here): true when it changed exactly one row. */
static bool changed_one(struct sql_stmt *st)
{
	bool one = sql_step(st) == SQL_DONE && sql_changes(st) == 1;
	sql_done(st);
	return one;
}

int db_cron_insert(const struct cron_row *c, struct err *err)
{
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO cron_jobs(" CRON_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sql_bind_text(st, 1, c->id);
	sql_bind_int(st, 2, c->user_id);
	sql_bind_text(st, 3, c->name);
	sql_bind_text(st, 4, c->expression);
	sql_bind_text(st, 5, c->timezone);
	sql_bind_text(st, 6, c->spec);
	sql_bind_int(st, 7, c->enabled);
	bind_time(st, 8, c->next_run);
	bind_time(st, 9, c->last_run);
	sql_bind_text(st, 10, c->last_job_id[0] ? c->last_job_id : NULL);
	sql_bind_int(st, 11, c->created_at);
	sql_bind_int(st, 12, c->updated_at);
	sql_bind_text(st, 13, c->last_error);
	int r = sql_step(st) == SQL_DONE ? 0 : err_set(err, 500, "store schedule: %s", sql_errmsg());
	sql_done(st);
	db_unlock();
	return r;
}

int db_cron_get(const char *id, int64_t user_id, struct cron_row *c)
{
	memset(c, 0, sizeof *c);
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE id = ? AND (?2 = 0 OR user_id = ?2)");
	sql_bind_text(st, 1, id);
	sql_bind_int(st, 2, user_id);
	int r = sql_one(st, read_cron_cb, c);
	db_unlock();
	return r;
}

struct cron_row *db_cron_list(int64_t user_id, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE user_id = ? ORDER BY created_at, id");
	sql_bind_int(st, 1, user_id);
	struct cron_row *rows = sql_all(st, sizeof *rows, read_cron_cb, n);
	db_unlock();
	return rows;
}

int db_cron_update(const struct cron_row *c, bool set_next)
{
	db_lock();
	struct sql_stmt *st = sql_prep(set_next ?
		"UPDATE cron_jobs SET name = ?, expression = ?, timezone = ?, spec = ?, enabled = ?, updated_at = ?,"
		" next_run = ? WHERE id = ? AND user_id = ?" :
		"UPDATE cron_jobs SET name = ?, expression = ?, timezone = ?, spec = ?, enabled = ?, updated_at = ?"
		" WHERE id = ?8 AND user_id = ?9");
	sql_bind_text(st, 1, c->name);
	sql_bind_text(st, 2, c->expression);
	sql_bind_text(st, 3, c->timezone);
	sql_bind_text(st, 4, c->spec);
	sql_bind_int(st, 5, c->enabled);
	sql_bind_int(st, 6, c->updated_at);
	if (set_next)
		bind_time(st, 7, c->next_run);
	sql_bind_text(st, 8, c->id);
	sql_bind_int(st, 9, c->user_id);
	int r = changed_one(st) ? 0 : -ENOENT;
	db_unlock();
	return r;
}

int db_cron_delete(const char *id, int64_t user_id)
{
	db_lock();
	struct sql_stmt *st = sql_prep("DELETE FROM cron_jobs WHERE id = ? AND user_id = ?");
	sql_bind_text(st, 1, id);
	sql_bind_int(st, 2, user_id);
	int r = changed_one(st) ? 0 : -ENOENT;
	db_unlock();
	return r;
}

struct cron_row *db_cron_due(int64_t now, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " CRON_COLS " FROM cron_jobs WHERE enabled <> 0 AND next_run IS NOT NULL"
				       " AND next_run <= ? ORDER BY next_run, id");
	sql_bind_int(st, 1, now);
	struct cron_row *rows = sql_all(st, sizeof *rows, read_cron_cb, n);
	db_unlock();
	return rows;
}

int64_t db_cron_earliest(void)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT MIN(next_run) FROM cron_jobs WHERE enabled <> 0 AND next_run IS NOT NULL");
	int64_t t = sql_step(st) == SQL_ROW ? sql_col_int(st, 0) : 0;
	sql_done(st);
	db_unlock();
	return t;
}

bool db_cron_advance(const char *id, int64_t old, int64_t next, int64_t fired)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE cron_jobs SET next_run = ?, last_run = COALESCE(?, last_run)"
				       " WHERE id = ? AND enabled <> 0 AND next_run = ?");
	bind_time(st, 1, next);
	bind_time(st, 2, fired);
	sql_bind_text(st, 3, id);
	sql_bind_int(st, 4, old);
	bool won = changed_one(st);
	db_unlock();
	return won;
}

void db_cron_set_last_job(const char *id, const char *job_id, const char *error)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE cron_jobs SET last_job_id = COALESCE(?, last_job_id), last_error = ? WHERE id = ?");
	sql_bind_text(st, 1, job_id);
	sql_bind_text(st, 2, error);
	sql_bind_text(st, 3, id);
	sql_step(st);
	sql_done(st);
	db_unlock();
}
