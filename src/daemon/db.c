// SPDX-License-Identifier: MIT
/*
 * magsd's state; see db.h. Written once against sql.h, so the same code
 * keeps it in SQLite or PostgreSQL. The schema is a numbered list of
 * migrations (schema_migrations says which ran), each applied in its own
 * transaction when magsd starts.
 */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sql.h"
#include "utf8.h"
#include "xmalloc.h"

/*
 * Migration 1 on SQLite: the tables of the first magsd. "IF NOT EXISTS": a
 * database from before versions were counted has them already.
 */
static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS users("
	"  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS tokens("
	"  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
	"  hash TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS jobs("
	"  id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
	"  status TEXT NOT NULL, script TEXT NOT NULL, type TEXT NOT NULL,"
	"  timeout INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, error TEXT, engine TEXT,"
	"  created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER);"
	"CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs(user_id, created_at);"
	"CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created_at);"
	"CREATE TABLE IF NOT EXISTS logs("
	"  job_id TEXT NOT NULL, seq INTEGER NOT NULL, stream INTEGER NOT NULL,"
	"  time INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(job_id, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS workspaces("
	"  user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL,"
	"  persistent INTEGER NOT NULL DEFAULT 0, base_image INTEGER NOT NULL DEFAULT 0, parent TEXT,"
	"  in_use_by TEXT, version INTEGER, synced_at INTEGER,"
	"  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY(user_id, name));"
	"CREATE TABLE IF NOT EXISTS job_files("
	"  job_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, mode INTEGER NOT NULL,"
	"  size INTEGER, uploaded INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(job_id, seq));";

/* Migration 2 (workspaces, uploads): columns of jobs. */
static const char schema_v2_jobs[] =
	"ALTER TABLE jobs ADD COLUMN workspace TEXT;"
	"ALTER TABLE jobs ADD COLUMN persist INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN base_image INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN from_ws TEXT;"
	"ALTER TABLE jobs ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN files_pending INTEGER NOT NULL DEFAULT 0;";

/*
 * Migration 3 (public URLs, SSH). A urls row gives a label (NAME in
 * NAME.DOMAIN) to a user's workspace, or to one job when it has no named
 * workspace; aliases are extra labels for the same target. port is the
 * guest port the workspace's URL leads to (on its non-alias row).
 */
static const char schema_v3[] =
	"ALTER TABLE jobs ADD COLUMN url INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN port INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN ssh INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN ssh_key TEXT;"
	"CREATE TABLE IF NOT EXISTS urls("
	"  label TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
	"  workspace TEXT, job_id TEXT, port INTEGER NOT NULL, alias INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS urls_by_target ON urls(user_id, workspace, job_id);";

/*
 * Migration 4 (always-on servers, startup commands, cron). A cron_jobs
 * row is a schedule: its run flags are kept as the JSON body of the job it
 * submits at each firing; next_run is when it fires next (ms, NULL while
 * disabled), advanced before the job is submitted so a firing never repeats.
 */
static const char schema_v4[] =
	"ALTER TABLE jobs ADD COLUMN always_on INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN startup TEXT;"
	"ALTER TABLE jobs ADD COLUMN idle_timeout INTEGER NOT NULL DEFAULT -1;"
	"ALTER TABLE jobs ADD COLUMN cron_id TEXT;"
	"ALTER TABLE jobs ADD COLUMN sleeping INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE IF NOT EXISTS cron_jobs("
	"  id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), name TEXT,"
	"  expression TEXT NOT NULL, timezone TEXT, spec TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,"
	"  next_run INTEGER, last_run INTEGER, last_job_id TEXT, last_error TEXT,"
	"  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS cron_by_user ON cron_jobs(user_id, created_at);"
	"ALTER TABLE tokens ADD COLUMN name TEXT;"
	"ALTER TABLE tokens ADD COLUMN prefix TEXT;"
	"ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;";

/* Migration 5 (guest images): the image a job boots; NULL (older jobs) = the default. */
static const char schema_v5[] = "ALTER TABLE jobs ADD COLUMN image TEXT;";

/*
 * Migration 1 on PostgreSQL: the tables as SQLite's migrations 1 to 5 leave
 * them (no PostgreSQL database is older than migration 6, so 2 to 5 have
 * nothing to do there). Ids and times are BIGINT; ids come from identity
 * columns (RETURNING gives them back); so is jobs.seq (see migration 6).
 * Names that lists are sorted by compare bytewise (COLLATE "C"), as in
 * SQLite, whatever the database's locale.
 */
static const char pg_schema_v1[] =
	"CREATE TABLE users("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT COLLATE \"C\" UNIQUE NOT NULL,"
	"  created_at BIGINT NOT NULL);"
	"CREATE TABLE tokens("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id),"
	"  hash TEXT UNIQUE NOT NULL, created_at BIGINT NOT NULL, name TEXT, prefix TEXT, last_used_at BIGINT);"
	"CREATE TABLE jobs("
	"  id TEXT COLLATE \"C\" PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY,"
	"  user_id BIGINT NOT NULL REFERENCES users(id),"
	"  status TEXT NOT NULL, script TEXT NOT NULL, type TEXT NOT NULL,"
	"  timeout INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, error TEXT, engine TEXT,"
	"  created_at BIGINT NOT NULL, started_at BIGINT, finished_at BIGINT,"
	"  workspace TEXT, persist INTEGER NOT NULL DEFAULT 0, base_image INTEGER NOT NULL DEFAULT 0, from_ws TEXT,"
	"  ephemeral INTEGER NOT NULL DEFAULT 0, files_pending INTEGER NOT NULL DEFAULT 0,"
	"  url INTEGER NOT NULL DEFAULT 0, port INTEGER NOT NULL DEFAULT 0, ssh INTEGER NOT NULL DEFAULT 0, ssh_key TEXT,"
	"  always_on INTEGER NOT NULL DEFAULT 0, startup TEXT, idle_timeout INTEGER NOT NULL DEFAULT -1, cron_id TEXT,"
	"  sleeping INTEGER NOT NULL DEFAULT 0, restarts INTEGER NOT NULL DEFAULT 0, image TEXT);"
	"CREATE INDEX jobs_by_user ON jobs(user_id, created_at);"
	"CREATE INDEX jobs_by_status ON jobs(status, created_at);"
	"CREATE TABLE logs("
	"  job_id TEXT NOT NULL, seq BIGINT NOT NULL, stream INTEGER NOT NULL,"
	"  time BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY(job_id, seq));"
	"CREATE TABLE workspaces("
	"  user_id BIGINT NOT NULL REFERENCES users(id), name TEXT COLLATE \"C\" NOT NULL,"
	"  persistent INTEGER NOT NULL DEFAULT 0, base_image INTEGER NOT NULL DEFAULT 0, parent TEXT,"
	"  in_use_by TEXT, version BIGINT, synced_at BIGINT,"
	"  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY(user_id, name));"
	"CREATE TABLE job_files("
	"  job_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, mode INTEGER NOT NULL,"
	"  size BIGINT, uploaded INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(job_id, seq));"
	"CREATE TABLE urls("
	"  label TEXT COLLATE \"C\" PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id),"
	"  workspace TEXT, job_id TEXT, port INTEGER NOT NULL, alias INTEGER NOT NULL DEFAULT 0,"
	"  created_at BIGINT NOT NULL);"
	"CREATE INDEX urls_by_target ON urls(user_id, workspace, job_id);"
	"CREATE TABLE cron_jobs("
	"  id TEXT COLLATE \"C\" PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id), name TEXT,"
	"  expression TEXT NOT NULL, timezone TEXT, spec TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,"
	"  next_run BIGINT, last_run BIGINT, last_job_id TEXT, last_error TEXT,"
	"  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
	"CREATE INDEX cron_by_user ON cron_jobs(user_id, created_at);";

/*
 * Migration 6 (several magsd nodes on one database). A nodes row is a magsd
 * that heartbeats; jobs.node is the node that claimed a job, node_hint where
 * it should run (node_pin: only there); node_cache says which node has a
 * workspace's disk at hand. jobs.seq orders jobs created in the same
 * millisecond by insertion: PostgreSQL's is an identity column from
 * migration 1, SQLite's is copied from the rowid (by a trigger for new rows).
 */
#define SCHEMA_V6                                                                                              \
	"CREATE TABLE nodes("                                                                                  \
	"  id TEXT PRIMARY KEY, url TEXT NOT NULL, proxy TEXT, ssh_host TEXT, capacity INTEGER NOT NULL,"      \
	"  running INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'alive',"                           \
	"  started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL);"                                         \
	"ALTER TABLE jobs ADD COLUMN node TEXT;"                                                               \
	"ALTER TABLE jobs ADD COLUMN node_hint TEXT;"                                                          \
	"ALTER TABLE jobs ADD COLUMN node_pin INTEGER NOT NULL DEFAULT 0;"                                     \
	"CREATE INDEX jobs_by_placement ON jobs(status, node_hint, created_at);"                               \
	"CREATE INDEX jobs_by_node ON jobs(node, status);"                                                     \
	"CREATE TABLE node_cache("                                                                             \
	"  node_id TEXT NOT NULL, user_id BIGINT NOT NULL, workspace TEXT NOT NULL, used_at BIGINT NOT NULL,"  \
	"  PRIMARY KEY(node_id, user_id, workspace));"
static const char schema_v6_sqlite[] =
	SCHEMA_V6
	"ALTER TABLE jobs ADD COLUMN seq INTEGER;"
	"UPDATE jobs SET seq = rowid;"
	"CREATE TRIGGER jobs_seq AFTER INSERT ON jobs BEGIN UPDATE jobs SET seq = NEW.rowid WHERE rowid = NEW.rowid; END;";
static const char schema_v6_pg[] = SCHEMA_V6;

struct migration {
	const char *what;
	const char *sql[2];	/* by enum sql_dialect; NULL: nothing to do there */
};

/* Migration N is migrations[N - 1]. Append only: a number once released never changes. */
static const struct migration migrations[] = {
	{ "tables", { schema_v1, pg_schema_v1 } },
	{ "workspaces, uploads", { schema_v2_jobs, NULL } },
	{ "public URLs, SSH", { schema_v3, NULL } },
	{ "always-on, cron, named tokens", { schema_v4, NULL } },
	{ "guest images", { schema_v5, NULL } },
	{ "cluster", { schema_v6_sqlite, schema_v6_pg } },
};
#define DB_SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* pg_advisory_xact_lock's key while migrating: "mags" */
#define DB_MIGRATE_LOCK 0x6d616773

int64_t db_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first column of the one row st gives (ended here), or dflt. Hold db_lock. */
static int64_t one_int(struct sql_stmt *st, int64_t dflt)
{
	int64_t v = sql_step(st) == SQL_ROW ? sql_col_int(st, 0) : dflt;
	sql_done(st);
	return v;
}

/* Records migration version as applied (and, on SQLite, user_version, which magsd before migration 6 checks). */
static int mark_applied(int version)
{
	struct sql_stmt *st = sql_prep("INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)");
	sql_bind_int(st, 1, version);
	sql_bind_int(st, 2, db_now_ms());
	int r = sql_step(st) == SQL_DONE ? 0 : -1;
	sql_done(st);
	if (r == 0 && sql_dialect() == SQL_SQLITE) {
		char pragma[48];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
		r = sql_exec(pragma);
	}
	return r;
}

/*
 * The schema version in the open transaction. A SQLite database from before
 * schema_migrations counted with PRAGMA user_version only: its N is taken as
 * migrations 1 to N applied (and recorded so). Returns the version or < 0.
 */
static int schema_version(void)
{
	if (sql_exec("CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)") < 0)
		return -1;
	int v = (int)one_int(sql_prep("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"), 0);
	if (sql_dialect() != SQL_SQLITE)
		return v;
	int uv = (int)one_int(sql_prep("PRAGMA user_version"), 0);
	if (v == 0 && uv > 0 && uv <= DB_SCHEMA_VERSION) {
		for (int i = 1; i <= uv; i++)
			if (mark_applied(i) < 0)
				return -1;
		v = uv;
	}
	return v > uv ? v : uv;
}

/*
 * Applies the next migration, if any, in a transaction of its own (on
 * PostgreSQL under an advisory lock, so that nodes starting together take
 * turns). Returns 1 when it applied one, 0 when up to date, < 0 with err set.
 */
static int migrate_one(const char *where, struct err *err)
{
	if (sql_begin() < 0)
		return err_set(err, 500, "database %s: begin: %s", where, sql_errmsg());
	int r = 0, v = -1;
	if (sql_dialect() == SQL_PG) {
		char lock[64];
		snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", DB_MIGRATE_LOCK);
		if (sql_exec(lock) < 0) {
			r = err_set(err, 500, "database %s: lock for migrations: %s", where, sql_errmsg());
			goto out;
		}
	}
	if ((v = schema_version()) < 0) {
		r = err_set(err, 500, "database %s: schema version: %s", where, sql_errmsg());
		goto out;
	}
	if (v > DB_SCHEMA_VERSION) {
		r = err_set(err, 500, "database %s has schema version %d, newer than this magsd (%d)", where, v,
			    DB_SCHEMA_VERSION);
		goto out;
	}
	if (v == DB_SCHEMA_VERSION)
		goto out;
	const struct migration *m = &migrations[v];
	const char *sql = m->sql[sql_dialect()];
	if ((sql && sql_exec(sql) < 0) || mark_applied(v + 1) < 0) {
		r = err_set(err, 500, "database %s: migration %d (%s): %s", where, v + 1, m->what, sql_errmsg());
		goto out;
	}
	r = 1;
out:
	if (r < 0) {
		sql_rollback();
		return r;
	}
	if (sql_commit() < 0)
		return err_set(err, 500, "database %s: commit migration %d: %s", where, v + 1, sql_errmsg());
	if (r == 1)
		log_info("database %s: applied migration %d (%s)", where, v + 1, migrations[v].what);
	return r;
}

int db_open(const char *target, struct err *err)
{
	db_lock();
	int r = sql_open(target, err);
	/* never the URL in messages: it may hold a password */
	const char *where = sql_dialect() == SQL_PG ? "PostgreSQL" : target;
	if (r == 0)
		while ((r = migrate_one(where, err)) > 0)
			;
	if (r < 0)
		sql_close();
	db_unlock();
	return r < 0 ? r : 0;
}

void db_close(void)
{
	db_lock();
	sql_close();
	db_unlock();
}

int db_job_insert(const struct job_row *j, struct err *err)
{
	int r = 0;
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO jobs(id, user_id, status, script, type, timeout, created_at,"
				       " workspace, persist, base_image, from_ws, ephemeral, files_pending, url, port, ssh, ssh_key,"
				       " always_on, startup, idle_timeout, cron_id, image)"
				       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sql_bind_text(st, 1, j->id);
	sql_bind_int(st, 2, j->user_id);
	sql_bind_text(st, 3, j->status);
	sql_bind_text(st, 4, j->script);
	sql_bind_text(st, 5, j->type);
	sql_bind_int(st, 6, j->timeout);
	sql_bind_int(st, 7, j->created_at);
	sql_bind_text(st, 8, j->workspace);
	sql_bind_int(st, 9, j->persist);
	sql_bind_int(st, 10, j->base_image);
	sql_bind_text(st, 11, j->from_ws);
	sql_bind_int(st, 12, j->ephemeral);
	sql_bind_int(st, 13, j->files_pending);
	sql_bind_int(st, 14, j->url);
	sql_bind_int(st, 15, j->port);
	sql_bind_int(st, 16, j->ssh);
	sql_bind_text(st, 17, j->ssh_key);
	sql_bind_int(st, 18, j->always_on);
	sql_bind_text(st, 19, j->startup);
	sql_bind_int(st, 20, j->idle_timeout);
	sql_bind_text(st, 21, j->cron_id[0] ? j->cron_id : NULL);
	sql_bind_text(st, 22, j->image);
	if (sql_step(st) != SQL_DONE)
		r = err_set(err, 500, "store job: %s", sql_errmsg());
	sql_done(st);
	db_unlock();
	return r;
}

#define JOB_COLS "id, user_id, status, script, type, timeout, exit_code, error, engine, created_at, started_at, finished_at," \
		 " workspace, persist, base_image, from_ws, ephemeral, files_pending, url, port, ssh, ssh_key," \
		 " always_on, startup, idle_timeout, cron_id, sleeping, restarts, image, node"

/* A row selected with JOB_COLS into item (a struct job_row). */
static void read_job_cb(struct sql_stmt *st, void *item)
{
	struct job_row *j = item;
	memset(j, 0, sizeof *j);
	sql_col_copy(st, 0, j->id, sizeof j->id);
	j->user_id = sql_col_int(st, 1);
	sql_col_copy(st, 2, j->status, sizeof j->status);
	j->script = sql_col_dup(st, 3);
	sql_col_copy(st, 4, j->type, sizeof j->type);
	j->timeout = (int)sql_col_int(st, 5);
	j->has_exit = !sql_col_null(st, 6);
	j->exit_code = (int)sql_col_int(st, 6);
	j->error = sql_col_dup(st, 7);
	j->engine = sql_col_dup(st, 8);
	j->created_at = sql_col_int(st, 9);
	j->started_at = sql_col_int(st, 10);
	j->finished_at = sql_col_int(st, 11);
	j->workspace = sql_col_dup(st, 12);
	j->persist = sql_col_int(st, 13) != 0;
	j->base_image = sql_col_int(st, 14) != 0;
	j->from_ws = sql_col_dup(st, 15);
	j->ephemeral = sql_col_int(st, 16) != 0;
	j->files_pending = (int)sql_col_int(st, 17);
	j->url = sql_col_int(st, 18) != 0;
	j->port = (int)sql_col_int(st, 19);
	j->ssh = sql_col_int(st, 20) != 0;
	j->ssh_key = sql_col_dup(st, 21);
	j->always_on = sql_col_int(st, 22) != 0;
	j->startup = sql_col_dup(st, 23);
	j->idle_timeout = (int)sql_col_int(st, 24);
	sql_col_copy(st, 25, j->cron_id, sizeof j->cron_id);
	j->sleeping = sql_col_int(st, 26) != 0;
	j->restarts = (int)sql_col_int(st, 27);
	j->image = sql_col_dup(st, 28);
	sql_col_copy(st, 29, j->node, sizeof j->node);
}

int db_job_get(const char *id, int64_t user_id, struct job_row *j)
{
	memset(j, 0, sizeof *j);
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " JOB_COLS " FROM jobs WHERE id = ? AND (?2 = 0 OR user_id = ?2)");
	sql_bind_text(st, 1, id);
	sql_bind_int(st, 2, user_id);
	int r = sql_one(st, read_job_cb, j);
	db_unlock();
	return r;
}

int db_job_get_running_ws(const char *workspace, int64_t user_id, struct job_row *j)
{
	memset(j, 0, sizeof *j);
	db_lock();
	/* the newest: a queued one takes over from one that is ending */
	struct sql_stmt *st = sql_prep("SELECT " JOB_COLS " FROM jobs WHERE workspace = ? AND user_id = ?"
				       " AND status IN ('running', 'queued')"
				       " ORDER BY CASE WHEN status = 'running' THEN 0 ELSE 1 END, created_at DESC, seq DESC LIMIT 1");
	sql_bind_text(st, 1, workspace);
	sql_bind_int(st, 2, user_id);
	int r = sql_one(st, read_job_cb, j);
	db_unlock();
	return r;
}

void db_job_row_free(struct job_row *j)
{
	free(j->script);
	free(j->error);
	free(j->engine);
	free(j->workspace);
	free(j->from_ws);
	free(j->ssh_key);
	free(j->startup);
	free(j->image);
	memset(j, 0, sizeof *j);
}

json_t *db_time_json(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[40];
	size_t n = strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(s + n, sizeof s - n, ".%03dZ", (int)(ms % 1000));
	return json_string(s);
}


/* ---- public URLs ---------------------------------------------------------- */

static char *url_prefix, *url_suffix;	/* "http://" and ".localhost:7558" */

void db_url_base(const char *scheme, const char *host_suffix)
{
	free(url_prefix);
	free(url_suffix);
	url_prefix = xasprintf("%s://", scheme);
	url_suffix = xasprintf(".%s", host_suffix);
}

json_t *db_url_json(const char *label)
{
	if (!url_prefix)
		return json_null();
	char *u = xasprintf("%s%s%s", url_prefix, label, url_suffix);
	json_t *v = json_string(u);
	free(u);
	return v;
}

#define URL_COLS "label, user_id, workspace, job_id, port, alias, created_at"

/* A row selected with URL_COLS into item (a struct url_row). */
static void read_url_cb(struct sql_stmt *st, void *item)
{
	struct url_row *u = item;
	memset(u, 0, sizeof *u);
	sql_col_copy(st, 0, u->label, sizeof u->label);
	u->user_id = sql_col_int(st, 1);
	sql_col_copy(st, 2, u->workspace, sizeof u->workspace);
	sql_col_copy(st, 3, u->job_id, sizeof u->job_id);
	u->port = (int)sql_col_int(st, 4);
	u->alias = sql_col_int(st, 5) != 0;
	u->created_at = sql_col_int(st, 6);
}

int db_url_get(const char *label, struct url_row *u)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " URL_COLS " FROM urls WHERE label = ?");
	sql_bind_text(st, 1, label);
	int r = sql_one(st, read_url_cb, u);
	db_unlock();
	return r;
}

int db_url_of(int64_t user_id, const char *workspace, const char *job_id, struct url_row *u)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " URL_COLS " FROM urls WHERE user_id = ? AND alias = 0 AND"
				       " (workspace = ?2 OR (workspace IS NULL AND ?2 IS NULL AND job_id = ?3))");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, workspace);
	sql_bind_text(st, 3, job_id);
	int r = sql_one(st, read_url_cb, u);
	db_unlock();
	return r;
}

int db_url_put(const struct url_row *u, struct err *err)
{
	db_lock();
	struct url_row old;
	int r = 0;
	if (db_url_get(u->label, &old) == 0) {
		bool same = old.user_id == u->user_id && old.alias == u->alias && !strcmp(old.workspace, u->workspace) &&
			    !strcmp(old.job_id, u->job_id);
		if (!same) {
			r = err_set(err, 409, "the name \"%s\" is taken", u->label);
			goto out;
		}
	}
	struct sql_stmt *st = sql_prep("INSERT INTO urls(" URL_COLS ") VALUES(?,?,?,?,?,?,?)"
				       " ON CONFLICT(label) DO UPDATE SET port = excluded.port");
	sql_bind_text(st, 1, u->label);
	sql_bind_int(st, 2, u->user_id);
	sql_bind_text(st, 3, *u->workspace ? u->workspace : NULL);
	sql_bind_text(st, 4, *u->job_id ? u->job_id : NULL);
	sql_bind_int(st, 5, u->port);
	sql_bind_int(st, 6, u->alias);
	sql_bind_int(st, 7, u->created_at ? u->created_at : db_now_ms());
	if (sql_step(st) != SQL_DONE)
		r = err_set(err, 500, "store URL %s: %s", u->label, sql_errmsg());
	sql_done(st);
out:
	db_unlock();
	return r;
}

/* Runs st (bound; ended here): the rows it changed, 0 on an error. Hold db_lock. */
static int64_t run_changes(struct sql_stmt *st)
{
	int64_t n = sql_step(st) >= 0 ? sql_changes(st) : 0;
	sql_done(st);
	return n;
}

int db_url_delete(const char *label, int64_t user_id, bool alias)
{
	db_lock();
	struct sql_stmt *st = sql_prep("DELETE FROM urls WHERE label = ? AND user_id = ? AND alias = ?");
	sql_bind_text(st, 1, label);
	sql_bind_int(st, 2, user_id);
	sql_bind_int(st, 3, alias);
	int64_t n = run_changes(st);
	db_unlock();
	return n > 0 ? 0 : -ENOENT;
}

void db_url_forget_workspace(int64_t user_id, const char *workspace)
{
	db_lock();
	struct sql_stmt *st = sql_prep("DELETE FROM urls WHERE user_id = ? AND workspace = ?");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, workspace);
	run_changes(st);
	db_unlock();
}

json_t *db_url_alias_json(const struct url_row *u)
{
	json_t *o = json_object();
	json_object_set_new(o, "alias", json_string(u->label));
	json_object_set_new(o, "workspace", *u->workspace ? json_string(u->workspace) : json_null());
	json_object_set_new(o, "job_id", *u->job_id ? json_string(u->job_id) : json_null());
	json_object_set_new(o, "url", db_url_json(u->label));
	json_object_set_new(o, "created_at", db_time_json(u->created_at));
	return o;
}

json_t *db_url_aliases(int64_t user_id)
{
	json_t *arr = json_array();
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " URL_COLS " FROM urls WHERE user_id = ? AND alias = 1 ORDER BY label");
	sql_bind_int(st, 1, user_id);
	while (sql_step(st) == SQL_ROW) {
		struct url_row u;
		read_url_cb(st, &u);
		json_array_append_new(arr, db_url_alias_json(&u));
	}
	sql_done(st);
	db_unlock();
	return arr;
}

char *db_running_job_of(int64_t user_id, const char *workspace)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT id FROM jobs WHERE user_id = ? AND workspace = ? AND status = 'running'"
				       " ORDER BY started_at DESC, seq DESC LIMIT 1");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, workspace);
	char *id = sql_step(st) == SQL_ROW ? sql_col_dup(st, 0) : NULL;
	sql_done(st);
	db_unlock();
	return id;
}

json_t *db_job_json(const struct job_row *j)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "status", json_string(j->status));
	json_object_set_new(o, "script", utf8_json_string(j->script ? j->script : ""));
	json_object_set_new(o, "type", json_string(j->type));
	json_object_set_new(o, "timeout", j->timeout ? json_integer(j->timeout) : json_null());
	json_object_set_new(o, "exit_code", j->has_exit ? json_integer(j->exit_code) : json_null());
	json_object_set_new(o, "error", utf8_json_string(j->error));
	json_object_set_new(o, "engine", utf8_json_string(j->engine));
	json_object_set_new(o, "image", utf8_json_string(j->image));
	json_object_set_new(o, "created_at", db_time_json(j->created_at));
	json_object_set_new(o, "started_at", db_time_json(j->started_at));
	json_object_set_new(o, "finished_at", db_time_json(j->finished_at));
	struct url_row u;
	if (db_url_of(j->user_id, j->workspace, j->id, &u) == 0) {
		json_object_set_new(o, "url", db_url_json(u.label));
		json_object_set_new(o, "url_port", json_integer(u.port));
	} else {
		json_object_set_new(o, "url", json_null());
		json_object_set_new(o, "url_port", json_null());
	}
	json_object_set_new(o, "workspace", utf8_json_string(j->workspace));
	json_object_set_new(o, "persist", json_boolean(j->persist));
	json_object_set_new(o, "base_image", json_boolean(j->base_image));
	json_object_set_new(o, "from", utf8_json_string(j->from_ws));
	json_object_set_new(o, "ephemeral", json_boolean(j->ephemeral));
	if (j->files_pending)
		json_object_set_new(o, "files_pending", json_integer(j->files_pending));
	json_object_set_new(o, "always_on", json_boolean(j->always_on));
	json_object_set_new(o, "startup_command", utf8_json_string(j->startup));
	if (j->always_on) {
		json_object_set_new(o, "idle_timeout", j->idle_timeout >= 0 ? json_integer(j->idle_timeout) : json_null());
		json_object_set_new(o, "sleeping", json_boolean(j->sleeping && !strcmp(j->status, "running")));
		json_object_set_new(o, "restarts", json_integer(j->restarts));
	}
	if (j->cron_id[0])
		json_object_set_new(o, "cron_id", json_string(j->cron_id));
	json_object_set_new(o, "node", j->node[0] ? json_string(j->node) : json_null());
	return o;
}

/* Runs sql with the job id as ?1 and a as ?2. */
static void job_exec(const char *sql, const char *id, int64_t a)
{
	db_lock();
	struct sql_stmt *st = sql_prep(sql);
	sql_bind_text(st, 1, id);
	sql_bind_int(st, 2, a);
	run_changes(st);
	db_unlock();
}

void db_job_set_sleeping(const char *id, bool sleeping)
{
	job_exec("UPDATE jobs SET sleeping = ?2 WHERE id = ?1", id, sleeping);
}

void db_job_restarted(const char *id)
{
	job_exec("UPDATE jobs SET restarts = restarts + 1 WHERE id = ?1", id, 0);
}

void db_job_requeue(const char *id)
{
	job_exec("UPDATE jobs SET status = 'queued', sleeping = 0 WHERE id = ?1 AND status = 'running'", id, 0);
}

void db_job_update(const char *id, bool always_on, int timeout, int idle_timeout)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE jobs SET always_on = ?, timeout = ?, idle_timeout = ? WHERE id = ?");
	sql_bind_int(st, 1, always_on);
	sql_bind_int(st, 2, timeout);
	sql_bind_int(st, 3, idle_timeout);
	sql_bind_text(st, 4, id);
	run_changes(st);
	db_unlock();
}

json_t *db_job_list(int64_t user_id, const char *status, const char *workspace, int limit)
{
	json_t *arr = json_array();
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " JOB_COLS " FROM jobs WHERE user_id = ? AND (?2 IS NULL OR status = ?2)"
				       " AND (?3 IS NULL OR workspace = ?3) ORDER BY created_at DESC, seq DESC LIMIT ?4");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, status);
	sql_bind_text(st, 3, workspace);
	sql_bind_int(st, 4, limit);
	while (sql_step(st) == SQL_ROW) {
		struct job_row j;
		read_job_cb(st, &j);
		json_array_append_new(arr, db_job_json(&j));
		db_job_row_free(&j);
	}
	sql_done(st);
	db_unlock();
	return arr;
}

int db_job_claim(const char *id, const char *engine, const char *node)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE jobs SET status = 'running', started_at = ?, engine = ?, node = ?"
				       " WHERE id = ? AND status = 'queued'");
	sql_bind_int(st, 1, db_now_ms());
	sql_bind_text(st, 2, engine);
	sql_bind_text(st, 3, node);
	sql_bind_text(st, 4, id);
	int64_t changed = run_changes(st);
	db_unlock();
	return changed > 0;
}

void db_job_finish(const char *id, int exit_code, bool has_exit, const char *error)
{
	const char *status = has_exit && exit_code == 0 && !error ? "completed" : "failed";
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE jobs SET status = ?, exit_code = ?, error = ?, finished_at = ? "
				       "WHERE id = ? AND status IN ('queued', 'running')");
	sql_bind_text(st, 1, status);
	if (has_exit)
		sql_bind_int(st, 2, exit_code);
	else
		sql_bind_null(st, 2);
	sql_bind_text(st, 3, error);
	sql_bind_int(st, 4, db_now_ms());
	sql_bind_text(st, 5, id);
	run_changes(st);
	db_unlock();
}

char **db_jobs_with_status(const char *status, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT id FROM jobs WHERE status = ? ORDER BY created_at, seq");
	sql_bind_text(st, 1, status);
	char **ids = sql_all(st, sizeof *ids, sql_read_text_cb, n);
	db_unlock();
	return ids;
}

int64_t db_log_append(const char *job_id, int stream, const void *data, size_t len)
{
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO logs(job_id, seq, stream, time, data) "
				       "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 FROM logs WHERE job_id = ?1 RETURNING seq");
	sql_bind_text(st, 1, job_id);
	sql_bind_int(st, 2, stream);
	sql_bind_int(st, 3, db_now_ms());
	sql_bind_blob(st, 4, data, len);
	int64_t seq = sql_step(st) == SQL_ROW ? sql_col_int(st, 0) : 0;
	sql_done(st);
	db_unlock();
	return seq;
}

/* A row of seq, stream, time, data into item (a struct log_row; data owned, NUL-terminated). */
static void read_log_cb(struct sql_stmt *st, void *item)
{
	struct log_row *r = item;
	r->seq = sql_col_int(st, 0);
	r->stream = (int)sql_col_int(st, 1);
	r->time = sql_col_int(st, 2);
	const void *p = sql_col_blob(st, 3, &r->len);
	r->data = xmalloc(r->len + 1);
	if (r->len)
		memcpy(r->data, p, r->len);
	r->data[r->len] = 0;
}

struct log_row *db_log_read(const char *job_id, int64_t since, int limit, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT seq, stream, time, data FROM logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?");
	sql_bind_text(st, 1, job_id);
	sql_bind_int(st, 2, since);
	sql_bind_int(st, 3, limit);
	struct log_row *rows = sql_all(st, sizeof *rows, read_log_cb, n);
	db_unlock();
	return rows;
}

void db_log_rows_free(struct log_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].data);
	free(rows);
}

/* ---- workspaces ------------------------------------------------------------ */

#define WS_COLS "user_id, name, persistent, base_image, parent, in_use_by, version, synced_at, created_at, updated_at"

/* A row selected with WS_COLS into item (a struct ws_row). */
static void read_ws_cb(struct sql_stmt *st, void *item)
{
	struct ws_row *w = item;
	memset(w, 0, sizeof *w);
	w->user_id = sql_col_int(st, 0);
	sql_col_copy(st, 1, w->name, sizeof w->name);
	w->persistent = sql_col_int(st, 2) != 0;
	w->base_image = sql_col_int(st, 3) != 0;
	w->parent = sql_col_dup(st, 4);
	w->in_use_by = sql_col_dup(st, 5);
	w->version = sql_col_int(st, 6);
	w->synced_at = sql_col_int(st, 7);
	w->created_at = sql_col_int(st, 8);
	w->updated_at = sql_col_int(st, 9);
}

void db_ws_row_free(struct ws_row *w)
{
	free(w->parent);
	free(w->in_use_by);
	memset(w, 0, sizeof *w);
}

/* Statement: the workspace (user_id, name) with WS_COLS. Hold db_lock. */
static struct sql_stmt *ws_select(int64_t user_id, const char *name)
{
	struct sql_stmt *st = sql_prep("SELECT " WS_COLS " FROM workspaces WHERE user_id = ? AND name = ?");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, name);
	return st;
}

int db_ws_get(int64_t user_id, const char *name, struct ws_row *w)
{
	memset(w, 0, sizeof *w);
	db_lock();
	int r = sql_one(ws_select(user_id, name), read_ws_cb, w);
	db_unlock();
	return r;
}

/* Adds workspace (user_id, name) unless it exists; synced: found in the store at version. Hold db_lock. */
static void ws_insert(int64_t user_id, const char *name, bool persistent, bool base_image, const char *parent,
		      bool synced, int64_t version)
{
	struct sql_stmt *st = sql_prep("INSERT INTO workspaces(user_id, name, persistent, base_image, parent, version, synced_at,"
				       " created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
				       " ON CONFLICT(user_id, name) DO NOTHING");
	int64_t now = db_now_ms();
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, name);
	sql_bind_int(st, 3, persistent);
	sql_bind_int(st, 4, base_image);
	sql_bind_text(st, 5, parent);
	if (synced) {
		sql_bind_int(st, 6, version);
		sql_bind_int(st, 7, now);
	} else {
		sql_bind_null(st, 6);
		sql_bind_null(st, 7);
	}
	sql_bind_int(st, 8, now);
	run_changes(st);
}

int db_ws_acquire(int64_t user_id, const char *name, const char *job_id, bool persistent, const char *parent,
		  struct ws_row *w)
{
	int64_t now = db_now_ms();
	db_lock();
	sql_begin();
	ws_insert(user_id, name, persistent, false, parent, false, 0);
	struct sql_stmt *st = sql_prep("UPDATE workspaces SET in_use_by = ?1, updated_at = ?2,"
				       " persistent = CASE WHEN ?3 <> 0 THEN 1 ELSE persistent END"
				       " WHERE user_id = ?4 AND name = ?5 AND (in_use_by IS NULL OR in_use_by = ?1)");
	sql_bind_text(st, 1, job_id);
	sql_bind_int(st, 2, now);
	sql_bind_int(st, 3, persistent);
	sql_bind_int(st, 4, user_id);
	sql_bind_text(st, 5, name);
	int64_t got = run_changes(st);
	memset(w, 0, sizeof *w);
	sql_one(ws_select(user_id, name), read_ws_cb, w);
	if (sql_commit() < 0)
		got = 0;
	db_unlock();
	return got ? 0 : -EBUSY;
}

/* Runs sql with ?1 user_id, ?2 name, ?3 text, ?4 a, ?5 b, ?6 now. */
static void ws_exec(const char *sql, int64_t user_id, const char *name, const char *text, int64_t a, int64_t b)
{
	db_lock();
	struct sql_stmt *st = sql_prep(sql);
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, name);
	sql_bind_text(st, 3, text);
	sql_bind_int(st, 4, a);
	sql_bind_int(st, 5, b);
	sql_bind_int(st, 6, db_now_ms());
	run_changes(st);
	db_unlock();
}

void db_ws_release(int64_t user_id, const char *name, const char *job_id)
{
	ws_exec("UPDATE workspaces SET in_use_by = NULL, updated_at = ?6 WHERE user_id = ?1 AND name = ?2 AND in_use_by = ?3",
		user_id, name, job_id, 0, 0);
}

void db_ws_synced(int64_t user_id, const char *name, int64_t version)
{
	ws_exec("UPDATE workspaces SET version = ?4, synced_at = ?6, updated_at = ?6 WHERE user_id = ?1 AND name = ?2",
		user_id, name, NULL, version, 0);
}

void db_ws_set_flags(int64_t user_id, const char *name, bool persistent, bool base_image)
{
	ws_exec("UPDATE workspaces SET persistent = CASE WHEN ?4 <> 0 THEN 1 ELSE persistent END,"
		" base_image = CASE WHEN ?5 <> 0 THEN 1 ELSE base_image END, updated_at = ?6"
		" WHERE user_id = ?1 AND name = ?2", user_id, name, NULL, persistent, base_image);
}

void db_ws_release_all(void)
{
	db_lock();
	sql_exec("UPDATE workspaces SET in_use_by = NULL WHERE in_use_by IS NOT NULL");
	db_unlock();
}

int db_ws_delete(int64_t user_id, const char *name, char **holder, char **child)
{
	*holder = *child = NULL;
	db_lock();
	sql_begin();
	int r = 0;
	struct sql_stmt *st = sql_prep("SELECT in_use_by FROM workspaces WHERE user_id = ? AND name = ?");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, name);
	if (sql_step(st) != SQL_ROW)
		r = -ENOENT;
	else if ((*holder = sql_col_dup(st, 0)) != NULL)
		r = -EBUSY;
	sql_done(st);
	if (r == 0) {
		st = sql_prep("SELECT name FROM workspaces WHERE user_id = ? AND parent = ? ORDER BY name LIMIT 1");
		sql_bind_int(st, 1, user_id);
		sql_bind_text(st, 2, name);
		if (sql_one(st, sql_read_text_cb, child) == 0)
			r = -EEXIST;
	}
	if (r == 0) {
		st = sql_prep("DELETE FROM workspaces WHERE user_id = ? AND name = ?");
		sql_bind_int(st, 1, user_id);
		sql_bind_text(st, 2, name);
		run_changes(st);
	}
	if (r == 0 && sql_commit() < 0)
		r = -EIO;
	else if (r != 0)
		sql_rollback();
	db_unlock();
	return r;
}

struct ws_row *db_ws_list(int64_t user_id, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " WS_COLS " FROM workspaces WHERE user_id = ? ORDER BY name");
	sql_bind_int(st, 1, user_id);
	struct ws_row *rows = sql_all(st, sizeof *rows, read_ws_cb, n);
	db_unlock();
	return rows;
}

void db_ws_adopt(int64_t user_id, const char *name, bool persistent, bool base_image, const char *parent,
		 int64_t version)
{
	db_lock();
	ws_insert(user_id, name, persistent, base_image, parent, true, version);
	db_unlock();
}

/* ---- files of a job -------------------------------------------------------- */

int db_file_add(const char *job_id, int seq, const char *name, unsigned mode, int64_t size, bool uploaded)
{
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO job_files(job_id, seq, name, mode, size, uploaded) VALUES(?,?,?,?,?,?)");
	sql_bind_text(st, 1, job_id);
	sql_bind_int(st, 2, seq);
	sql_bind_text(st, 3, name);
	sql_bind_int(st, 4, mode);
	if (size >= 0)
		sql_bind_int(st, 5, size);
	else
		sql_bind_null(st, 5);
	sql_bind_int(st, 6, uploaded);
	int r = sql_step(st) == SQL_DONE ? 0 : -EIO;
	sql_done(st);
	db_unlock();
	return r;
}

int db_file_uploaded(const char *job_id, const char *name, unsigned mode, int64_t size, int *seq)
{
	db_lock();
	sql_begin();
	struct sql_stmt *st = sql_prep("SELECT seq FROM job_files WHERE job_id = ? AND name = ?");
	sql_bind_text(st, 1, job_id);
	sql_bind_text(st, 2, name);
	int s = (int)one_int(st, -1);
	if (s < 0) {
		st = sql_prep("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_files WHERE job_id = ?");
		sql_bind_text(st, 1, job_id);
		s = (int)one_int(st, 1);
		st = sql_prep("INSERT INTO job_files(job_id, seq, name, mode, size, uploaded) VALUES(?,?,?,?,?,1)");
	} else {
		st = sql_prep("UPDATE job_files SET mode = ?4, size = ?5, uploaded = 1 WHERE job_id = ?1 AND seq = ?2 AND name = ?3");
	}
	sql_bind_text(st, 1, job_id);
	sql_bind_int(st, 2, s);
	sql_bind_text(st, 3, name);
	sql_bind_int(st, 4, mode);
	sql_bind_int(st, 5, size);
	run_changes(st);
	st = sql_prep("UPDATE jobs SET files_pending = (SELECT COUNT(*) FROM job_files WHERE job_id = ?1 AND uploaded = 0)"
		      " WHERE id = ?1 RETURNING files_pending");
	sql_bind_text(st, 1, job_id);
	int pending = (int)one_int(st, 0);
	sql_commit();
	db_unlock();
	*seq = s;
	return pending;
}

/* A row of seq, name, mode, size, uploaded into item (a struct file_row). */
static void read_file_cb(struct sql_stmt *st, void *item)
{
	struct file_row *f = item;
	f->seq = (int)sql_col_int(st, 0);
	f->name = sql_col_dup(st, 1);
	f->mode = (unsigned)sql_col_int(st, 2);
	f->size = sql_col_null(st, 3) ? -1 : sql_col_int(st, 3);
	f->uploaded = sql_col_int(st, 4) != 0;
}

struct file_row *db_file_list(const char *job_id, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT seq, name, mode, size, uploaded FROM job_files WHERE job_id = ? ORDER BY seq");
	sql_bind_text(st, 1, job_id);
	struct file_row *rows = sql_all(st, sizeof *rows, read_file_cb, n);
	db_unlock();
	return rows;
}

void db_file_rows_free(struct file_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}
