/* SPDX-License-Identifier: MIT */
/*
 * One interface over the two databases magsd keeps its state in: SQLite
 * (a file; one magsd) and PostgreSQL (libpq; any number of magsd nodes).
 * db.c, db_users.c, db_cron.c and db_nodes.c are written once against it.
 *
 * SQL text is written with SQLite's placeholders, "?" (numbered in order)
 * and "?N"; the PostgreSQL side rewrites them to $N, and gives each
 * parameter the type of its bind (int8, text, bytea), so a parameter a
 * statement does not use is harmless. Where the dialects differ, callers
 * pick the text with sql_dialect() (SQL_PICK).
 *
 * Threads: one connection, guarded by db_lock() (recursive). Every call
 * below needs it held, from sql_prep until sql_done.
 */
#ifndef MAGS_SQL_H
#define MAGS_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum sql_dialect {
	SQL_SQLITE,
	SQL_PG,
};

/* target: a file path (SQLite) or a postgres:// or postgresql:// URL. */
int sql_open(const char *target, struct err *err);
void sql_close(void);
bool sql_is_open(void);
enum sql_dialect sql_dialect(void);
#define SQL_PICK(sqlite, pg) (sql_dialect() == SQL_PG ? (pg) : (sqlite))
/* "sqlite" or "postgresql" */
const char *sql_dialect_name(void);

void db_lock(void);
void db_unlock(void);

struct sql_stmt;

/*
 * Prepares sql (one statement). SQL that does not compile is a bug: SQLite
 * aborts here; PostgreSQL, which sees it only at sql_step, fails there and
 * logs it as a bug.
 */
struct sql_stmt *sql_prep(const char *sql);
/* Parameters count from 1. Text NULL binds NULL. */
void sql_bind_int(struct sql_stmt *st, int i, int64_t v);
void sql_bind_text(struct sql_stmt *st, int i, const char *s);
void sql_bind_blob(struct sql_stmt *st, int i, const void *p, size_t n);
void sql_bind_null(struct sql_stmt *st, int i);

#define SQL_ROW 1
#define SQL_DONE 0
/* Runs the statement (first call) and moves to the next row: SQL_ROW, SQL_DONE, or < 0 (sql_errmsg says why). */
int sql_step(struct sql_stmt *st);
/* Columns of the current row, counted from 0. NULL reads as 0, NULL text, an empty blob. */
bool sql_col_null(struct sql_stmt *st, int col);
int64_t sql_col_int(struct sql_stmt *st, int col);
const char *sql_col_text(struct sql_stmt *st, int col);	/* valid until the next step or sql_done */
char *sql_col_dup(struct sql_stmt *st, int col);	/* malloc'd copy, NULL for NULL */
/* Copies text into out (size bytes, truncated, NUL-terminated); NULL reads as "". */
void sql_col_copy(struct sql_stmt *st, int col, char *out, size_t size);
const void *sql_col_blob(struct sql_stmt *st, int col, size_t *len);
/*
 * Row helpers over a prepared and bound statement; both end it (sql_done).
 * read_cb fills one item (a caller's row struct) from the current row.
 * sql_one: the first row into item, 0; or -ENOENT when there is none.
 * sql_all: every row into a new array of size-byte items (the caller frees
 * it; never NULL), *n of them.
 */
int sql_one(struct sql_stmt *st, void (*read_cb)(struct sql_stmt *st, void *item), void *item);
void *sql_all(struct sql_stmt *st, size_t size, void (*read_cb)(struct sql_stmt *st, void *item), size_t *n);
/* A read_cb for both: the first column into item, a char * (sql_col_dup: the caller frees it). */
void sql_read_text_cb(struct sql_stmt *st, void *item);
/* Rows the statement inserted, updated or deleted (after its last step). */
int64_t sql_changes(struct sql_stmt *st);
void sql_done(struct sql_stmt *st);

/* Statements without parameters (may be several, separated by ';'). 0 or < 0. */
int sql_exec(const char *sql);
/* A transaction that writes: BEGIN IMMEDIATE (SQLite) or BEGIN (PostgreSQL). */
int sql_begin(void);
int sql_commit(void);
void sql_rollback(void);
/* The last error of the connection (under db_lock). */
const char *sql_errmsg(void);

/*
 * For the backends only (sql_sqlite.c, sql_pg.c): what sql.c dispatches to.
 * Each backend defines struct sql_stmt for itself; one backend is open at a
 * time, so sql.c only hands its statements back to the one that made them.
 */
struct sql_backend {
	enum sql_dialect dialect;
	const char *name;
	int (*open)(const char *target, struct err *err);
	void (*close)(void);
	struct sql_stmt *(*prep)(const char *sql);
	void (*bind_int)(struct sql_stmt *st, int i, int64_t v);
	void (*bind_text)(struct sql_stmt *st, int i, const char *s);
	void (*bind_blob)(struct sql_stmt *st, int i, const void *p, size_t n);
	void (*bind_null)(struct sql_stmt *st, int i);
	int (*step)(struct sql_stmt *st);
	bool (*col_null)(struct sql_stmt *st, int col);
	int64_t (*col_int)(struct sql_stmt *st, int col);
	const char *(*col_text)(struct sql_stmt *st, int col);
	const void *(*col_blob)(struct sql_stmt *st, int col, size_t *len);
	int64_t (*changes)(struct sql_stmt *st);
	void (*done)(struct sql_stmt *st);
	int (*exec)(const char *sql);
	int (*begin)(void);
	int (*commit)(void);
	void (*rollback)(void);
	const char *(*errmsg)(void);
};
extern const struct sql_backend sql_sqlite_backend, sql_pg_backend;

#endif
