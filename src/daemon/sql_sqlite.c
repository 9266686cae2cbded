// SPDX-License-Identifier: MIT
/*
 * The SQLite backend of sql.h: one file, opened with SQLITE_OPEN_FULLMUTEX,
 * in WAL mode so that readers (log followers) keep off the writers' way.
 */
#include <sqlite3.h>
#include <stdlib.h>

#include "log.h"
#include "sql.h"
#include "xmalloc.h"

struct sql_stmt {
	sqlite3_stmt *st;
	int64_t changes;	/* of the connection once the statement is done, -1 before */
};

static sqlite3 *db;

static int lite_open(const char *path, struct err *err)
{
	int r = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (r != SQLITE_OK) {
		int ret = err_set(err, 500, "open database %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
		sqlite3_close(db);
		db = NULL;
		return ret;
	}
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL, NULL,
			 NULL) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		db = NULL;
		return ret;
	}
	return 0;
}

static void lite_close(void)
{
	sqlite3_close(db);
	db = NULL;
}

static struct sql_stmt *lite_prep(const char *sql)
{
	struct sql_stmt *st = xcalloc(1, sizeof *st);
	if (sqlite3_prepare_v2(db, sql, -1, &st->st, NULL) != SQLITE_OK) {
		log_error("sqlite prepare failed: %s: %s", sqlite3_errmsg(db), sql);
		abort(); /* a bug in our SQL, not a runtime condition */
	}
	st->changes = -1;
	return st;
}

static void lite_bind_int(struct sql_stmt *st, int i, int64_t v)
{
	sqlite3_bind_int64(st->st, i, v);
}

static void lite_bind_text(struct sql_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st->st, i, s, -1, SQLITE_TRANSIENT);
}

static void lite_bind_blob(struct sql_stmt *st, int i, const void *p, size_t n)
{
	/* a zero-length blob, not NULL, even when p is NULL */
	sqlite3_bind_blob64(st->st, i, n ? p : "", n, SQLITE_TRANSIENT);
}

static void lite_bind_null(struct sql_stmt *st, int i)
{
	sqlite3_bind_null(st->st, i);
}

static int lite_step(struct sql_stmt *st)
{
	int r = sqlite3_step(st->st);
	if (r == SQLITE_ROW)
		return SQL_ROW;
	if (r == SQLITE_DONE) {
		st->changes = sqlite3_changes(db);
		return SQL_DONE;
	}
	log_warn("sqlite: %s: %s", sqlite3_errmsg(db), sqlite3_sql(st->st));
	return -1;
}

static bool lite_col_null(struct sql_stmt *st, int col)
{
	return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

static int64_t lite_col_int(struct sql_stmt *st, int col)
{
	return sqlite3_column_int64(st->st, col);
}

static const char *lite_col_text(struct sql_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st->st, col);
}

static const void *lite_col_blob(struct sql_stmt *st, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(st->st, col);
	*len = (size_t)sqlite3_column_bytes(st->st, col);
	return p ? p : "";
}

static int64_t lite_changes(struct sql_stmt *st)
{
	return st->changes >= 0 ? st->changes : sqlite3_changes(db);
}

static void lite_done(struct sql_stmt *st)
{
	sqlite3_finalize(st->st);
	free(st);
}

static int lite_exec(const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	log_warn("sqlite: %s: %s", sqlite3_errmsg(db), sql);
	return -1;
}

static int lite_begin(void)
{
	/* takes the write lock now: no upgrade from reader to writer to fail later */
	return lite_exec("BEGIN IMMEDIATE");
}

static int lite_commit(void)
{
	return lite_exec("COMMIT");
}

static void lite_rollback(void)
{
	if (!sqlite3_get_autocommit(db))
		lite_exec("ROLLBACK");
}

static const char *lite_errmsg(void)
{
	return db ? sqlite3_errmsg(db) : "no database open";
}

const struct sql_backend sql_sqlite_backend = {
	.dialect = SQL_SQLITE,
	.name = "sqlite",
	.open = lite_open,
	.close = lite_close,
	.prep = lite_prep,
	.bind_int = lite_bind_int,
	.bind_text = lite_bind_text,
	.bind_blob = lite_bind_blob,
	.bind_null = lite_bind_null,
	.step = lite_step,
	.col_null = lite_col_null,
	.col_int = lite_col_int,
	.col_text = lite_col_text,
	.col_blob = lite_col_blob,
	.changes = lite_changes,
	.done = lite_done,
	.exec = lite_exec,
	.begin = lite_begin,
	.commit = lite_commit,
	.rollback = lite_rollback,
	.errmsg = lite_errmsg,
};
