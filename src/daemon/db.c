// SPDX-License-Identifier: MIT
/*
 * SQLite state for magsd; see db.h. The schema is versioned with
 * PRAGMA user_version; WAL keeps readers (log followers) off the writers' way.
 */
#include "db.h"

#include <errno.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base64.h"
#include "db_internal.h"
#include "utf8.h"
#include "xmalloc.h"

#define DB_SCHEMA_VERSION 5

static sqlite3 *db;
/* recursive: db_job_json looks up a job's URL from inside list queries */
static pthread_mutex_t db_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static const char schema[] =
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

/* Columns added to jobs by schema version 2 (workspaces, uploads). */
static const char schema_v2_jobs[] =
	"ALTER TABLE jobs ADD COLUMN workspace TEXT;"
	"ALTER TABLE jobs ADD COLUMN persist INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN base_image INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN from_ws TEXT;"
	"ALTER TABLE jobs ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN files_pending INTEGER NOT NULL DEFAULT 0;";

/*
 * Schema version 3 (public URLs, SSH). A urls row gives a label (NAME in
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
 * Schema version 4 (always-on servers, startup commands, cron). A cron_jobs
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

/* Schema version 5 (guest images): the image a job boots; NULL (older jobs) = the default. */
static const char schema_v5[] = "ALTER TABLE jobs ADD COLUMN image TEXT;";

int64_t db_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sqlite3_stmt *prep(const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "magsd: sqlite prepare failed: %s: %s\n", sqlite3_errmsg(db), sql);
		abort(); /* a bug in our SQL, not a runtime condition */
	}
	return st;
}

int db_open(const char *path, struct err *err)
{
	int r = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (r != SQLITE_OK) {
		int ret = err_set(err, 500, "open database %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
		sqlite3_close(db);
		db = NULL;
		return ret;
	}
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		db_close();
		return ret;
	}
	sqlite3_stmt *st = prep("PRAGMA user_version");
	int ver = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (ver > DB_SCHEMA_VERSION) {
		db_close();
		return err_set(err, 500, "database %s has schema version %d, newer than this magsd (%d)", path, ver, DB_SCHEMA_VERSION);
	}
	if (ver < 2 && sqlite3_exec(db, schema_v2_jobs, NULL, NULL, &msg) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: upgrade to schema 2: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		db_close();
		return ret;
	}
	if (ver < 3 && sqlite3_exec(db, schema_v3, NULL, NULL, &msg) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: upgrade to schema 3: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		db_close();
		return ret;
	}
	if (ver < 4 && sqlite3_exec(db, schema_v4, NULL, NULL, &msg) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: upgrade to schema 4: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		db_close();
		return ret;
	}
	if (ver < 5 && sqlite3_exec(db, schema_v5, NULL, NULL, &msg) != SQLITE_OK) {
		int ret = err_set(err, 500, "database %s: upgrade to schema 5: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		db_close();
		return ret;
	}
	sqlite3_exec(db, "PRAGMA user_version=5", NULL, NULL, NULL);
	return 0;
}

void db_close(void)
{
	if (db)
		sqlite3_close(db);
	db = NULL;
}

int db_job_insert(const struct job_row *j, struct err *err)
{
	int r = 0;
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("INSERT INTO jobs(id, user_id, status, script, type, timeout, created_at,"
				" workspace, persist, base_image, from_ws, ephemeral, files_pending, url, port, ssh, ssh_key,"
				" always_on, startup, idle_timeout, cron_id, image)"
				" VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, j->user_id);
	sqlite3_bind_text(st, 3, j->status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, j->script, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, j->type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 6, j->timeout);
	sqlite3_bind_int64(st, 7, j->created_at);
	sqlite3_bind_text(st, 8, j->workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 9, j->persist);
	sqlite3_bind_int(st, 10, j->base_image);
	sqlite3_bind_text(st, 11, j->from_ws, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 12, j->ephemeral);
	sqlite3_bind_int(st, 13, j->files_pending);
	sqlite3_bind_int(st, 14, j->url);
	sqlite3_bind_int(st, 15, j->port);
	sqlite3_bind_int(st, 16, j->ssh);
	sqlite3_bind_text(st, 17, j->ssh_key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 18, j->always_on);
	sqlite3_bind_text(st, 19, j->startup, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 20, j->idle_timeout);
	sqlite3_bind_text(st, 21, j->cron_id[0] ? j->cron_id : NULL, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 22, j->image, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		r = err_set(err, 500, "store job: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return r;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

#define JOB_COLS "id, user_id, status, script, type, timeout, exit_code, error, engine, created_at, started_at, finished_at," \
		 " workspace, persist, base_image, from_ws, ephemeral, files_pending, url, port, ssh, ssh_key," \
		 " always_on, startup, idle_timeout, cron_id, sleeping, restarts, image"

static void row_to_job(sqlite3_stmt *st, struct job_row *j)
{
	memset(j, 0, sizeof *j);
	snprintf(j->id, sizeof j->id, "%s", (const char *)sqlite3_column_text(st, 0));
	j->user_id = sqlite3_column_int64(st, 1);
	snprintf(j->status, sizeof j->status, "%s", (const char *)sqlite3_column_text(st, 2));
	j->script = col_dup(st, 3);
	snprintf(j->type, sizeof j->type, "%s", (const char *)sqlite3_column_text(st, 4));
	j->timeout = sqlite3_column_int(st, 5);
	j->has_exit = sqlite3_column_type(st, 6) != SQLITE_NULL;
	j->exit_code = sqlite3_column_int(st, 6);
	j->error = col_dup(st, 7);
	j->engine = col_dup(st, 8);
	j->created_at = sqlite3_column_int64(st, 9);
	j->started_at = sqlite3_column_int64(st, 10);
	j->finished_at = sqlite3_column_int64(st, 11);
	j->workspace = col_dup(st, 12);
	j->persist = sqlite3_column_int(st, 13) != 0;
	j->base_image = sqlite3_column_int(st, 14) != 0;
	j->from_ws = col_dup(st, 15);
	j->ephemeral = sqlite3_column_int(st, 16) != 0;
	j->files_pending = sqlite3_column_int(st, 17);
	j->url = sqlite3_column_int(st, 18) != 0;
	j->port = sqlite3_column_int(st, 19);
	j->ssh = sqlite3_column_int(st, 20) != 0;
	j->ssh_key = col_dup(st, 21);
	j->always_on = sqlite3_column_int(st, 22) != 0;
	j->startup = col_dup(st, 23);
	j->idle_timeout = sqlite3_column_int(st, 24);
	snprintf(j->cron_id, sizeof j->cron_id, "%s", sqlite3_column_text(st, 25) ? (const char *)sqlite3_column_text(st, 25) : "");
	j->sleeping = sqlite3_column_int(st, 26) != 0;
	j->restarts = sqlite3_column_int(st, 27);
	j->image = col_dup(st, 28);
}

/* The first row of st (prepared and bound, under db_mu) into j: 0, or -ENOENT. Finalizes st. */
static int job_from_locked(sqlite3_stmt *st, struct job_row *j)
{
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_to_job(st, j);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int db_job_get(const char *id, int64_t user_id, struct job_row *j)
{
	memset(j, 0, sizeof *j);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " JOB_COLS " FROM jobs WHERE id = ? AND (? = 0 OR user_id = ?)");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_int64(st, 3, user_id);
	int r = job_from_locked(st, j);
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_job_get_running_ws(const char *workspace, int64_t user_id, struct job_row *j)
{
	memset(j, 0, sizeof *j);
	pthread_mutex_lock(&db_mu);
	/* the newest: a queued one takes over from one that is ending */
	sqlite3_stmt *st = prep("SELECT " JOB_COLS " FROM jobs WHERE workspace = ? AND user_id = ?"
				" AND status IN ('running', 'queued') ORDER BY status = 'running' DESC, created_at DESC LIMIT 1");
	sqlite3_bind_text(st, 1, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, user_id);
	int r = job_from_locked(st, j);
	pthread_mutex_unlock(&db_mu);
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

static void row_to_url(sqlite3_stmt *st, struct url_row *u)
{
	memset(u, 0, sizeof *u);
	snprintf(u->label, sizeof u->label, "%s", (const char *)sqlite3_column_text(st, 0));
	u->user_id = sqlite3_column_int64(st, 1);
	const unsigned char *t = sqlite3_column_text(st, 2);
	snprintf(u->workspace, sizeof u->workspace, "%s", t ? (const char *)t : "");
	t = sqlite3_column_text(st, 3);
	snprintf(u->job_id, sizeof u->job_id, "%s", t ? (const char *)t : "");
	u->port = sqlite3_column_int(st, 4);
	u->alias = sqlite3_column_int(st, 5) != 0;
	u->created_at = sqlite3_column_int64(st, 6);
}

#define URL_COLS "label, user_id, workspace, job_id, port, alias, created_at"

/* The one row st selects into *u; finalizes st. 0 or -ENOENT. */
static int url_row_final(sqlite3_stmt *st, struct url_row *u)
{
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_to_url(st, u);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int db_url_get(const char *label, struct url_row *u)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " URL_COLS " FROM urls WHERE label = ?");
	sqlite3_bind_text(st, 1, label, -1, SQLITE_TRANSIENT);
	int r = url_row_final(st, u);
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_url_of(int64_t user_id, const char *workspace, const char *job_id, struct url_row *u)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " URL_COLS " FROM urls WHERE user_id = ? AND alias = 0 AND"
				" (workspace = ? OR (workspace IS NULL AND ? IS NULL AND job_id = ?))");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, job_id, -1, SQLITE_TRANSIENT);
	int r = url_row_final(st, u);
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_url_put(const struct url_row *u, struct err *err)
{
	pthread_mutex_lock(&db_mu);
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
	sqlite3_stmt *st = prep("INSERT INTO urls(" URL_COLS ") VALUES(?,?,?,?,?,?,?)"
				" ON CONFLICT(label) DO UPDATE SET port = excluded.port");
	sqlite3_bind_text(st, 1, u->label, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, u->user_id);
	sqlite3_bind_text(st, 3, *u->workspace ? u->workspace : NULL, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, *u->job_id ? u->job_id : NULL, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, u->port);
	sqlite3_bind_int(st, 6, u->alias);
	sqlite3_bind_int64(st, 7, u->created_at ? u->created_at : db_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		r = err_set(err, 500, "store URL %s: %s", u->label, sqlite3_errmsg(db));
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_url_delete(const char *label, int64_t user_id, bool alias)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("DELETE FROM urls WHERE label = ? AND user_id = ? AND alias = ?");
	sqlite3_bind_text(st, 1, label, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_int(st, 3, alias);
	sqlite3_step(st);
	int n = sqlite3_changes(db);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return n > 0 ? 0 : -ENOENT;
}

void db_url_forget_workspace(int64_t user_id, const char *workspace)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("DELETE FROM urls WHERE user_id = ? AND workspace = ?");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
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
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " URL_COLS " FROM urls WHERE user_id = ? AND alias = 1 ORDER BY label");
	sqlite3_bind_int64(st, 1, user_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct url_row u;
		row_to_url(st, &u);
		json_array_append_new(arr, db_url_alias_json(&u));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return arr;
}

char *db_running_job_of(int64_t user_id, const char *workspace)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT id FROM jobs WHERE user_id = ? AND workspace = ? AND status = 'running'"
				" ORDER BY started_at DESC, rowid DESC LIMIT 1");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, workspace, -1, SQLITE_TRANSIENT);
	char *id = sqlite3_step(st) == SQLITE_ROW ? col_dup(st, 0) : NULL;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
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
	return o;
}

static void job_exec(const char *sql, const char *id, int64_t a, int64_t b)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep(sql);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, a);
	sqlite3_bind_int64(st, 3, b);
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
}

void db_job_set_sleeping(const char *id, bool sleeping)
{
	job_exec("UPDATE jobs SET sleeping = ?2 WHERE id = ?1 AND ?3 = 0", id, sleeping, 0);
}

void db_job_restarted(const char *id)
{
	job_exec("UPDATE jobs SET restarts = restarts + 1 WHERE id = ?1 AND ?2 = ?3", id, 0, 0);
}

void db_job_requeue(const char *id)
{
	job_exec("UPDATE jobs SET status = 'queued', sleeping = 0 WHERE id = ?1 AND status = 'running' AND ?2 = ?3", id, 0, 0);
}

void db_job_update(const char *id, bool always_on, int timeout, int idle_timeout)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("UPDATE jobs SET always_on = ?, timeout = ?, idle_timeout = ? WHERE id = ?");
	sqlite3_bind_int(st, 1, always_on);
	sqlite3_bind_int(st, 2, timeout);
	sqlite3_bind_int(st, 3, idle_timeout);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
}

/* ---- for db_cron.c (db_internal.h) ---- */

sqlite3 *db_sqlite(void)
{
	return db;
}

void db_lock(void)
{
	pthread_mutex_lock(&db_mu);
}

void db_unlock(void)
{
	pthread_mutex_unlock(&db_mu);
}

sqlite3_stmt *db_prep(const char *sql)
{
	return prep(sql);
}

json_t *db_job_list(int64_t user_id, const char *status, const char *workspace, int limit)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " JOB_COLS " FROM jobs WHERE user_id = ? AND (? IS NULL OR status = ?)"
				" AND (? IS NULL OR workspace = ?) ORDER BY created_at DESC, rowid DESC LIMIT ?");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, workspace, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 6, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct job_row j;
		row_to_job(st, &j);
		json_array_append_new(arr, db_job_json(&j));
		db_job_row_free(&j);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return arr;
}

int db_job_claim(const char *id, const char *engine)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("UPDATE jobs SET status = 'running', started_at = ?, engine = ? WHERE id = ? AND status = 'queued'");
	sqlite3_bind_int64(st, 1, db_now_ms());
	sqlite3_bind_text(st, 2, engine, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	int changed = sqlite3_changes(db);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return changed > 0;
}

void db_job_finish(const char *id, int exit_code, bool has_exit, const char *error)
{
	const char *status = has_exit && exit_code == 0 && !error ? "completed" : "failed";
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("UPDATE jobs SET status = ?, exit_code = ?, error = ?, finished_at = ? "
				"WHERE id = ? AND status IN ('queued', 'running')");
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	if (has_exit)
		sqlite3_bind_int(st, 2, exit_code);
	else
		sqlite3_bind_null(st, 2);
	if (error)
		sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, db_now_ms());
	sqlite3_bind_text(st, 5, id, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
}

char **db_jobs_with_status(const char *status, size_t *n)
{
	size_t cap = 16, cnt = 0;
	char **ids = xmalloc(cap * sizeof *ids);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT id FROM jobs WHERE status = ? ORDER BY created_at, rowid");
	sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap)
			ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
		ids[cnt++] = col_dup(st, 0);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	*n = cnt;
	return ids;
}

int64_t db_log_append(const char *job_id, int stream, const void *data, size_t len)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("INSERT INTO logs(job_id, seq, stream, time, data) "
				"SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 FROM logs WHERE job_id = ?1 RETURNING seq");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, stream);
	sqlite3_bind_int64(st, 3, db_now_ms());
	sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_TRANSIENT);
	int64_t seq = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return seq;
}

struct log_row *db_log_read(const char *job_id, int64_t since, int limit, size_t *n)
{
	size_t cap = 16, cnt = 0;
	struct log_row *rows = xmalloc(cap * sizeof *rows);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT seq, stream, time, data FROM logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, since);
	sqlite3_bind_int(st, 3, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		struct log_row *r = &rows[cnt++];
		r->seq = sqlite3_column_int64(st, 0);
		r->stream = sqlite3_column_int(st, 1);
		r->time = sqlite3_column_int64(st, 2);
		r->len = (size_t)sqlite3_column_bytes(st, 3);
		r->data = xmalloc(r->len + 1);
		if (r->len)
			memcpy(r->data, sqlite3_column_blob(st, 3), r->len);
		r->data[r->len] = 0;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	*n = cnt;
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

static void row_to_ws(sqlite3_stmt *st, struct ws_row *w)
{
	memset(w, 0, sizeof *w);
	w->user_id = sqlite3_column_int64(st, 0);
	snprintf(w->name, sizeof w->name, "%s", (const char *)sqlite3_column_text(st, 1));
	w->persistent = sqlite3_column_int(st, 2) != 0;
	w->base_image = sqlite3_column_int(st, 3) != 0;
	w->parent = col_dup(st, 4);
	w->in_use_by = col_dup(st, 5);
	w->version = sqlite3_column_int64(st, 6);
	w->synced_at = sqlite3_column_int64(st, 7);
	w->created_at = sqlite3_column_int64(st, 8);
	w->updated_at = sqlite3_column_int64(st, 9);
}

void db_ws_row_free(struct ws_row *w)
{
	free(w->parent);
	free(w->in_use_by);
	memset(w, 0, sizeof *w);
}

int db_ws_get(int64_t user_id, const char *name, struct ws_row *w)
{
	memset(w, 0, sizeof *w);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " WS_COLS " FROM workspaces WHERE user_id = ? AND name = ?");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	int r = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_to_ws(st, w);
		r = 0;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_ws_acquire(int64_t user_id, const char *name, const char *job_id, bool persistent, const char *parent,
		  struct ws_row *w)
{
	int64_t now = db_now_ms();
	pthread_mutex_lock(&db_mu);
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	sqlite3_stmt *st = prep("INSERT INTO workspaces(user_id, name, persistent, parent, created_at, updated_at)"
				" VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, name) DO NOTHING");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, persistent);
	sqlite3_bind_text(st, 4, parent, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_step(st);
	sqlite3_finalize(st);
	st = prep("UPDATE workspaces SET in_use_by = ?1, updated_at = ?2, persistent = persistent OR ?3"
		  " WHERE user_id = ?4 AND name = ?5 AND (in_use_by IS NULL OR in_use_by = ?1)");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 3, persistent);
	sqlite3_bind_int64(st, 4, user_id);
	sqlite3_bind_text(st, 5, name, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	int got = sqlite3_changes(db);
	sqlite3_finalize(st);
	st = prep("SELECT " WS_COLS " FROM workspaces WHERE user_id = ? AND name = ?");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	memset(w, 0, sizeof *w);
	if (sqlite3_step(st) == SQLITE_ROW)
		row_to_ws(st, w);
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&db_mu);
	return got ? 0 : -EBUSY;
}

static void ws_exec(const char *sql, int64_t user_id, const char *name, const char *text, int64_t a, int64_t b)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep(sql);
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, a);
	sqlite3_bind_int64(st, 5, b);
	sqlite3_bind_int64(st, 6, db_now_ms());
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
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
	ws_exec("UPDATE workspaces SET persistent = persistent OR ?4, base_image = base_image OR ?5, updated_at = ?6"
		" WHERE user_id = ?1 AND name = ?2", user_id, name, NULL, persistent, base_image);
}

void db_ws_release_all(void)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_exec(db, "UPDATE workspaces SET in_use_by = NULL WHERE in_use_by IS NOT NULL", NULL, NULL, NULL);
	pthread_mutex_unlock(&db_mu);
}

int db_ws_delete(int64_t user_id, const char *name, char **holder, char **child)
{
	*holder = *child = NULL;
	pthread_mutex_lock(&db_mu);
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	int r = 0;
	sqlite3_stmt *st = prep("SELECT in_use_by FROM workspaces WHERE user_id = ? AND name = ?");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		r = -ENOENT;
	else if ((*holder = col_dup(st, 0)) != NULL)
		r = -EBUSY;
	sqlite3_finalize(st);
	if (r == 0) {
		st = prep("SELECT name FROM workspaces WHERE user_id = ? AND parent = ? ORDER BY name LIMIT 1");
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*child = col_dup(st, 0);
			r = -EEXIST;
		}
		sqlite3_finalize(st);
	}
	if (r == 0) {
		st = prep("DELETE FROM workspaces WHERE user_id = ? AND name = ?");
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	sqlite3_exec(db, r == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&db_mu);
	return r;
}

struct ws_row *db_ws_list(int64_t user_id, size_t *n)
{
	size_t cap = 8, cnt = 0;
	struct ws_row *rows = xmalloc(cap * sizeof *rows);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT " WS_COLS " FROM workspaces WHERE user_id = ? ORDER BY name");
	sqlite3_bind_int64(st, 1, user_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		row_to_ws(st, &rows[cnt++]);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	*n = cnt;
	return rows;
}

/* ---- files of a job -------------------------------------------------------- */

int db_file_add(const char *job_id, int seq, const char *name, unsigned mode, int64_t size, bool uploaded)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("INSERT INTO job_files(job_id, seq, name, mode, size, uploaded) VALUES(?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, seq);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, (int)mode);
	if (size >= 0)
		sqlite3_bind_int64(st, 5, size);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int(st, 6, uploaded);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	return r;
}

int db_file_uploaded(const char *job_id, const char *name, unsigned mode, int64_t size, int *seq)
{
	pthread_mutex_lock(&db_mu);
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	sqlite3_stmt *st = prep("SELECT seq FROM job_files WHERE job_id = ? AND name = ?");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	int s = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		s = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (s < 0) {
		st = prep("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_files WHERE job_id = ?");
		sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
		s = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
		sqlite3_finalize(st);
		st = prep("INSERT INTO job_files(job_id, seq, name, mode, size, uploaded) VALUES(?,?,?,?,?,1)");
	} else {
		st = prep("UPDATE job_files SET mode = ?4, size = ?5, uploaded = 1 WHERE job_id = ?1 AND seq = ?2 AND name = ?3");
	}
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, s);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, (int)mode);
	sqlite3_bind_int64(st, 5, size);
	sqlite3_step(st);
	sqlite3_finalize(st);
	st = prep("UPDATE jobs SET files_pending = (SELECT COUNT(*) FROM job_files WHERE job_id = ?1 AND uploaded = 0)"
		  " WHERE id = ?1 RETURNING files_pending");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	int pending = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&db_mu);
	*seq = s;
	return pending;
}

struct file_row *db_file_list(const char *job_id, size_t *n)
{
	size_t cap = 8, cnt = 0;
	struct file_row *rows = xmalloc(cap * sizeof *rows);
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("SELECT seq, name, mode, size, uploaded FROM job_files WHERE job_id = ? ORDER BY seq");
	sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cnt == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		struct file_row *f = &rows[cnt++];
		f->seq = sqlite3_column_int(st, 0);
		f->name = col_dup(st, 1);
		f->mode = (unsigned)sqlite3_column_int(st, 2);
		f->size = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
		f->uploaded = sqlite3_column_int(st, 4) != 0;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
	*n = cnt;
	return rows;
}

void db_file_rows_free(struct file_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}

void db_ws_adopt(int64_t user_id, const char *name, bool persistent, bool base_image, const char *parent,
		 int64_t version)
{
	int64_t now = db_now_ms();
	pthread_mutex_lock(&db_mu);
	sqlite3_stmt *st = prep("INSERT INTO workspaces(user_id, name, persistent, base_image, parent, version, synced_at,"
				" created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(user_id, name) DO NOTHING");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, persistent);
	sqlite3_bind_int(st, 4, base_image);
	sqlite3_bind_text(st, 5, parent, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, version);
	sqlite3_bind_int64(st, 7, now);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_int64(st, 9, now);
	sqlite3_step(st);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&db_mu);
}
