// SPDX-License-Identifier: MIT
/*
 * The PostgreSQL backend of sql.h, over libpq: one connection, each
 * statement one PQexecParams at its first sql_step, its rows read from the
 * PGresult in text format (bytea unescaped with PQunescapeBytea).
 *
 * SQL arrives with SQLite's placeholders: "?N" becomes $N and a bare "?" the
 * next number after the highest so far (SQLite's rule), outside string
 * literals, quoted names and comments. Each parameter is sent with the type
 * of its bind (int8, text, or bytea in binary format), so PostgreSQL need
 * not guess, and a number no placeholder uses costs nothing.
 *
 * Nothing reaches the server before sql_step, so SQL that PostgreSQL cannot
 * parse fails there (SQLite's sql_prep aborts on it): such errors (SQLSTATE
 * class 42) are logged as bugs, with the statement.
 *
 * A broken connection is reset (PQreset) and the statement tried once more
 * (rarely, one the server ran just before the connection broke: its second
 * run then repeats it or fails on a key), unless a transaction was open: then
 * every statement fails until sql_commit (which fails too) or sql_rollback,
 * so that no half of a transaction is committed on its own.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "sql.h"
#include "utf8.h"
#include "xmalloc.h"

/* type OIDs (pg_type.dat) */
#define PG_INT8 20
#define PG_TEXT 25
#define PG_BYTEA 17

struct pg_param {
	char *val;	/* owned; NULL = SQL NULL */
	int len;	/* bytes of val when binary */
	int fmt;	/* 0 text, 1 binary */
	Oid type;	/* 0: PostgreSQL infers it */
	bool used;	/* some placeholder names it */
};

struct sql_stmt {
	char *sql;		/* owned; with $N placeholders */
	int nparams;		/* the highest $N */
	struct pg_param *params;	/* owned; [nparams] */
	PGresult *res;		/* after the first step */
	bool ran;
	int row, nrows;		/* current row (-1 before the first) */
	unsigned char *blob;	/* PQunescapeBytea of the last sql_col_blob */
};

static PGconn *conn;
static bool in_tx;	/* between sql_begin and sql_commit/sql_rollback */
static bool tx_lost;	/* the connection broke inside that transaction */
static char errbuf[512];

/* Keeps msg for sql_errmsg, on one line (libpq's messages have several). */
static void set_err(const char *msg)
{
	snprintf(errbuf, sizeof errbuf, "%s", msg && *msg ? msg : "unknown PostgreSQL error");
	for (char *p = errbuf; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	size_t n = strlen(errbuf);
	while (n && errbuf[n - 1] == ' ')
		errbuf[--n] = 0;
}

/* The error of res (or of the connection): its primary message and detail. */
static void set_res_err(const PGresult *res)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	if (!primary) {
		set_err(res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		return;
	}
	char msg[sizeof errbuf];
	snprintf(msg, sizeof msg, "%s%s%s", primary, detail ? ": " : "", detail ? detail : "");
	set_err(msg);
}

static void notice_cb(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgresql: %s", msg);
}

static int pg_open(const char *url, struct err *err)
{
	conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK) {
		/* not the URL: it may hold a password */
		set_err(PQerrorMessage(conn));
		PQfinish(conn);
		conn = NULL;
		return err_set(err, 500, "connect to PostgreSQL: %s", errbuf);
	}
	PQsetNoticeProcessor(conn, notice_cb, NULL);
	if (PQsetClientEncoding(conn, "UTF8") != 0) {
		set_err(PQerrorMessage(conn));
		PQfinish(conn);
		conn = NULL;
		return err_set(err, 500, "PostgreSQL: client encoding UTF8: %s", errbuf);
	}
	in_tx = tx_lost = false;
	return 0;
}

static void pg_close(void)
{
	PQfinish(conn);
	conn = NULL;
}

/* Marks parameter n used, growing the table. */
static void param_use(struct sql_stmt *st, int n)
{
	if (n > st->nparams) {
		st->params = xrealloc(st->params, (size_t)n * sizeof *st->params);
		memset(st->params + st->nparams, 0, (size_t)(n - st->nparams) * sizeof *st->params);
		st->nparams = n;
	}
	st->params[n - 1].used = true;
}

/* The end of the quoted run that starts at p (quote q, doubled to escape). */
static const char *skip_quoted(const char *p, char q)
{
	for (p++; *p; p++) {
		if (*p == q && p[1] == q)
			p++;
		else if (*p == q)
			return p + 1;
	}
	return p;
}

/* st->sql: sql with ?, ?N turned into $N. */
static void rewrite(struct sql_stmt *st, const char *sql)
{
	struct buf out;
	buf_init(&out);
	const char *p = sql;
	while (*p) {
		const char *q = p;
		if (*p == '\'' || *p == '"') {
			q = skip_quoted(p, *p);
		} else if (p[0] == '-' && p[1] == '-') {
			q = p + strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			q = e ? e + 2 : p + strlen(p);
		} else if (*p == '?') {
			char *end;
			long n = strtol(p + 1, &end, 10);
			if (end == p + 1)
				n = st->nparams + 1;
			if (n < 1 || n > 32766) {
				log_error("postgresql: bad placeholder in SQL: %s", sql);
				abort(); /* a bug in our SQL */
			}
			param_use(st, (int)n);
			buf_printf(&out, "$%ld", n);
			p = end;
			continue;
		} else {
			q = p + 1;
		}
		buf_append(&out, p, (size_t)(q - p));
		p = q;
	}
	st->sql = buf_steal(&out);
}

static struct sql_stmt *pg_prep(const char *sql)
{
	struct sql_stmt *st = xcalloc(1, sizeof *st);
	rewrite(st, sql);
	st->row = -1;
	return st;
}

/* Parameter i (from 1) emptied for a new bind, or NULL when no placeholder has its number. */
static struct pg_param *param(struct sql_stmt *st, int i)
{
	if (i < 1 || i > st->nparams)
		return NULL;
	struct pg_param *p = &st->params[i - 1];
	free(p->val);
	p->val = NULL;
	p->len = p->fmt = 0;
	return p;
}

static void pg_bind_int(struct sql_stmt *st, int i, int64_t v)
{
	struct pg_param *p = param(st, i);
	if (p) {
		p->val = xasprintf("%lld", (long long)v);
		p->type = PG_INT8;
	}
}

static void pg_bind_text(struct sql_stmt *st, int i, const char *s)
{
	struct pg_param *p = param(st, i);
	if (!p)
		return;
	p->type = PG_TEXT;
	if (!s)
		return;	/* NULL, still of type text: "? IS NULL" needs one */
	/* text must be valid UTF-8 here (SQLite keeps any bytes): like the API's JSON, replace what is not */
	struct buf b;
	buf_init(&b);
	utf8_sanitize((const uint8_t *)s, strlen(s), &b);
	p->val = buf_steal(&b);
}

static void pg_bind_blob(struct sql_stmt *st, int i, const void *data, size_t n)
{
	struct pg_param *p = param(st, i);
	if (!p)
		return;
	p->val = xmalloc(n + 1);
	if (n)
		memcpy(p->val, data, n);
	p->len = (int)n;
	p->fmt = 1;
	p->type = PG_BYTEA;
}

static void pg_bind_null(struct sql_stmt *st, int i)
{
	struct pg_param *p = param(st, i);
	if (p)
		p->type = 0;
}

/* Resets a broken connection: true when the statement may be tried again. */
static bool reconnect(void)
{
	if (PQstatus(conn) != CONNECTION_BAD)
		return false;
	log_warn("postgresql: connection lost (%s), reconnecting", errbuf);
	if (in_tx)
		tx_lost = true;
	PQreset(conn);
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("postgresql: reconnect failed: %s", PQerrorMessage(conn));
		return false;
	}
	PQsetClientEncoding(conn, "UTF8");
	return !tx_lost;
}

/*
 * Runs sql (with the parameters of st when not NULL, else as one or more
 * statements without any). Returns the result, or NULL with errbuf set.
 */
static PGresult *run(const char *sql, struct sql_stmt *st)
{
	if (tx_lost) {
		set_err("the connection to PostgreSQL was lost inside this transaction");
		return NULL;
	}
	int n = st ? st->nparams : 0;
	Oid *types = xcalloc((size_t)n + 1, sizeof *types);
	const char **vals = xcalloc((size_t)n + 1, sizeof *vals);
	int *lens = xcalloc((size_t)n + 1, sizeof *lens), *fmts = xcalloc((size_t)n + 1, sizeof *fmts);
	for (int i = 0; i < n; i++) {
		struct pg_param *p = &st->params[i];
		/* a number no placeholder names: any type will do, and PostgreSQL cannot infer one */
		types[i] = p->type || p->used ? p->type : PG_TEXT;
		vals[i] = p->val;
		lens[i] = p->len;
		fmts[i] = p->fmt;
	}
	PGresult *res = NULL;
	for (int attempt = 0;; attempt++) {
		res = st ? PQexecParams(conn, sql, n, types, vals, lens, fmts, 0) : PQexec(conn, sql);
		ExecStatusType s = PQresultStatus(res);
		if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK || s == PGRES_EMPTY_QUERY)
			break;
		set_res_err(res);
		char state[8] = "none";
		const char *f = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (f)
			snprintf(state, sizeof state, "%s", f);
		bool bug = !strncmp(state, "42", 2) && strcmp(state, "42501"); /* not a privilege */
		PQclear(res);
		res = NULL;
		if (attempt == 0 && reconnect())
			continue;
		if (bug)
			log_error("postgresql: BUG in our SQL (SQLSTATE %s): %s: %s", state, errbuf, sql);
		else
			log_warn("postgresql: %s (SQLSTATE %s): %s", errbuf, state, sql);
		break;
	}
	free(types);
	free(vals);
	free(lens);
	free(fmts);
	return res;
}

static void blob_free(struct sql_stmt *st)
{
	if (st->blob)
		PQfreemem(st->blob);
	st->blob = NULL;
}

static int pg_step(struct sql_stmt *st)
{
	blob_free(st);
	if (!st->ran) {
		st->ran = true;
		st->res = run(st->sql, st);
		if (!st->res)
			return -1;
		st->nrows = PQntuples(st->res);
	}
	if (st->row + 1 < st->nrows) {
		st->row++;
		return SQL_ROW;
	}
	st->row = st->nrows;
	return st->res ? SQL_DONE : -1;
}

/* Text of col in the current row, NULL for NULL or no row. */
static const char *value(struct sql_stmt *st, int col)
{
	if (!st->res || st->row < 0 || st->row >= st->nrows || col < 0 || col >= PQnfields(st->res) ||
	    PQgetisnull(st->res, st->row, col))
		return NULL;
	return PQgetvalue(st->res, st->row, col);
}

static bool pg_col_null(struct sql_stmt *st, int col)
{
	return value(st, col) == NULL;
}

static int64_t pg_col_int(struct sql_stmt *st, int col)
{
	const char *v = value(st, col);
	if (!v)
		return 0;
	if (*v == 't' || *v == 'f')	/* a boolean expression */
		return *v == 't';
	return strtoll(v, NULL, 10);
}

static const char *pg_col_text(struct sql_stmt *st, int col)
{
	return value(st, col);
}

static const void *pg_col_blob(struct sql_stmt *st, int col, size_t *len)
{
	blob_free(st);
	*len = 0;
	const char *v = value(st, col);
	if (!v)
		return "";
	st->blob = PQunescapeBytea((const unsigned char *)v, len);
	if (!st->blob) {
		*len = 0;
		return "";
	}
	return st->blob;
}

static int64_t pg_changes(struct sql_stmt *st)
{
	return st->res ? strtoll(PQcmdTuples(st->res), NULL, 10) : 0;
}

static void pg_done(struct sql_stmt *st)
{
	blob_free(st);
	PQclear(st->res);
	for (int i = 0; i < st->nparams; i++)
		free(st->params[i].val);
	free(st->params);
	free(st->sql);
	free(st);
}

static int pg_exec(const char *sql)
{
	PGresult *res = run(sql, NULL);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

static int pg_begin(void)
{
	if (pg_exec("BEGIN") < 0)
		return -1;
	in_tx = true;
	return 0;
}

static int pg_commit(void)
{
	int r = -1;
	PGresult *res = run("COMMIT", NULL);
	/* COMMIT of a transaction that failed earlier answers ROLLBACK */
	if (res && !strcmp(PQcmdStatus(res), "COMMIT"))
		r = 0;
	else if (res)
		set_err("transaction rolled back: a statement in it failed");
	PQclear(res);
	in_tx = tx_lost = false;
	return r;
}

static void pg_rollback(void)
{
	if (in_tx && !tx_lost)
		pg_exec("ROLLBACK");
	in_tx = tx_lost = false;
}

static const char *pg_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}

const struct sql_backend sql_pg_backend = {
	.dialect = SQL_PG,
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.prep = pg_prep,
	.bind_int = pg_bind_int,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_null = pg_col_null,
	.col_int = pg_col_int,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.changes = pg_changes,
	.done = pg_done,
	.exec = pg_exec,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.errmsg = pg_errmsg,
};
