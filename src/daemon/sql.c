// SPDX-License-Identifier: MIT
/*
 * The one database connection of magsd and its lock; see sql.h. sql_open
 * picks the backend by the target's form (a postgres:// URL or a file path)
 * and every other call is handed to it.
 */
#include "sql.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "xmalloc.h"

/* recursive: db_job_json looks up a job's URL from inside list queries */
static pthread_mutex_t db_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static const struct sql_backend *be;	/* the open backend, NULL when closed */

void db_lock(void)
{
	pthread_mutex_lock(&db_mu);
}

void db_unlock(void)
{
	pthread_mutex_unlock(&db_mu);
}

static bool is_pg_url(const char *target)
{
	return !strncmp(target, "postgres://", 11) || !strncmp(target, "postgresql://", 13);
}

int sql_open(const char *target, struct err *err)
{
	const struct sql_backend *b = is_pg_url(target) ? &sql_pg_backend : &sql_sqlite_backend;
	sql_close();
	int r = b->open(target, err);
	if (r == 0)
		be = b;
	return r;
}

void sql_close(void)
{
	if (be)
		be->close();
	be = NULL;
}

bool sql_is_open(void)
{
	return be != NULL;
}

enum sql_dialect sql_dialect(void)
{
	return be ? be->dialect : SQL_SQLITE;
}

const char *sql_dialect_name(void)
{
	return be ? be->name : sql_sqlite_backend.name;
}

struct sql_stmt *sql_prep(const char *sql)
{
	return be->prep(sql);
}

void sql_bind_int(struct sql_stmt *st, int i, int64_t v)
{
	be->bind_int(st, i, v);
}

void sql_bind_text(struct sql_stmt *st, int i, const char *s)
{
	be->bind_text(st, i, s);	/* NULL: a NULL of type text */
}

void sql_bind_blob(struct sql_stmt *st, int i, const void *p, size_t n)
{
	be->bind_blob(st, i, p, n);
}

void sql_bind_null(struct sql_stmt *st, int i)
{
	be->bind_null(st, i);
}

int sql_step(struct sql_stmt *st)
{
	return be->step(st);
}

bool sql_col_null(struct sql_stmt *st, int col)
{
	return be->col_null(st, col);
}

int64_t sql_col_int(struct sql_stmt *st, int col)
{
	return be->col_int(st, col);
}

const char *sql_col_text(struct sql_stmt *st, int col)
{
	return be->col_text(st, col);
}

char *sql_col_dup(struct sql_stmt *st, int col)
{
	const char *t = be->col_text(st, col);
	return t ? xstrdup(t) : NULL;
}

void sql_col_copy(struct sql_stmt *st, int col, char *out, size_t size)
{
	const char *t = be->col_text(st, col);
	snprintf(out, size, "%s", t ? t : "");
}

const void *sql_col_blob(struct sql_stmt *st, int col, size_t *len)
{
	return be->col_blob(st, col, len);
}

int sql_one(struct sql_stmt *st, void (*read_cb)(struct sql_stmt *st, void *item), void *item)
{
	int r = -ENOENT;
	if (sql_step(st) == SQL_ROW) {
		read_cb(st, item);
		r = 0;
	}
	sql_done(st);
	return r;
}

void *sql_all(struct sql_stmt *st, size_t size, void (*read_cb)(struct sql_stmt *st, void *item), size_t *n)
{
	size_t cap = 8, cnt = 0;
	char *rows = xmalloc(cap * size);
	while (sql_step(st) == SQL_ROW) {
		if (cnt == cap)
			rows = xrealloc(rows, (cap *= 2) * size);
		read_cb(st, rows + cnt++ * size);
	}
	sql_done(st);
	*n = cnt;
	return rows;
}

void sql_read_text_cb(struct sql_stmt *st, void *item)
{
	*(char **)item = sql_col_dup(st, 0);
}

int64_t sql_changes(struct sql_stmt *st)
{
	return be->changes(st);
}

void sql_done(struct sql_stmt *st)
{
	if (st)
		be->done(st);
}

int sql_exec(const char *sql)
{
	return be->exec(sql);
}

int sql_begin(void)
{
	return be->begin();
}

int sql_commit(void)
{
	return be->commit();
}

void sql_rollback(void)
{
	be->rollback();
}

const char *sql_errmsg(void)
{
	return be ? be->errmsg() : "no database open";
}
