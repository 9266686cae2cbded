// SPDX-License-Identifier: MIT
/*
 * Unit tests for magsd's database layer (src/daemon/db*.c over sql.h): the
 * same cases run against SQLite (a temporary file) and PostgreSQL (a server
 * this test starts in a temporary directory, listening on a Unix socket
 * there only): users and tokens, jobs, logs, workspaces, job files, URLs,
 * cron rows, the cluster's tables (placement, claims, lost nodes; on
 * PostgreSQL also four processes claiming at once) and the schema
 * migrations (an old SQLite file that counted its
 * schema with user_version is adopted with its rows; a newer schema is
 * refused).
 *
 * The PostgreSQL binaries must be installed (MAGS_PG_BINDIR, default
 * /usr/lib/postgresql/15/bin): without them the test fails. PostgreSQL
 * refuses to run as root, so as root it runs as the user postgres. The
 * tests run in a child process; the parent stops the server and removes the
 * directory however the child ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/daemon/db.h"
#include "../../src/daemon/db_cron.h"
#include "../../src/daemon/db_nodes.h"
#include "../../src/daemon/sql.h"
#include "xmalloc.h"

#define PG_PORT 55432	/* names the socket file only: the directory is private */
#define TEST_TIMEOUT_S 100

static char *tmp;	/* this run's directory */
static char *pg_url;
static int db_seq;	/* numbers the SQLite files */

/* ---- the PostgreSQL server ----------------------------------------------- */

static const char *pg_bindir(void)
{
	const char *d = getenv("MAGS_PG_BINDIR");
	return d && *d ? d : "/usr/lib/postgresql/15/bin";
}

/* Runs a PostgreSQL program as the user postgres when root; output to tmp/pg.log. */
static int pg_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int pg_run(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	char *line = xasprintf("%s%s/%s >>%s/pg.log 2>&1", geteuid() == 0 ? "runuser -u postgres -- " : "", pg_bindir(),
			       cmd, tmp);
	int r = system(line);
	free(line);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static void pg_log_dump(void)
{
	char *cmd = xasprintf("tail -n 30 %s/pg.log >&2", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
	free(cmd);
}

static int pg_start(void)
{
	char *initdb = xasprintf("%s/initdb", pg_bindir());
	if (access(initdb, X_OK) != 0) {
		fprintf(stderr, "test_db: %s not found: install PostgreSQL (postgresql-15) or set MAGS_PG_BINDIR\n", initdb);
		free(initdb);
		return -1;
	}
	free(initdb);
	char *dir = xasprintf("%s/pg", tmp);
	if (mkdir(dir, 0700) < 0) {
		free(dir);
		return -1;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");
		if (!pw || chown(dir, pw->pw_uid, pw->pw_gid) < 0 || chown(tmp, 0, pw->pw_gid) < 0 ||
		    chmod(tmp, 0750) < 0) {
			fprintf(stderr, "test_db: no user postgres to run PostgreSQL as\n");
			free(dir);
			return -1;
		}
	}
	int r = pg_run("initdb -D %s/data -A trust -U postgres --no-locale -E UTF8", dir);
	if (r == 0)
		r = pg_run("pg_ctl -D %s/data -l %s/server.log -w -t 30 -o \"-k %s -c listen_addresses='' -p %d -c fsync=off\" start",
			   dir, dir, dir, PG_PORT);
	if (r == 0)
		r = pg_run("createdb -h %s -p %d -U postgres mags", dir, PG_PORT);
	if (r < 0) {
		fprintf(stderr, "test_db: starting PostgreSQL failed:\n");
		pg_log_dump();
	}
	pg_url = xasprintf("postgresql:///mags?host=%s&port=%d&user=postgres", dir, PG_PORT);
	free(dir);
	return r;
}

static void pg_stop(void)
{
	char *data = xasprintf("%s/pg/data/postmaster.pid", tmp);
	if (access(data, F_OK) == 0)
		pg_run("pg_ctl -D %s/pg/data stop -m immediate", tmp);
	free(data);
}

/* ---- fixtures -------------------------------------------------------------- */

struct target {
	const char *name;
	bool pg;
};
static struct target lite = { "sqlite", false }, pg = { "postgresql", true };
static char *cur;	/* the open target */

/* An empty database of t: a new SQLite file, or PostgreSQL's schema dropped. */
static char *fresh(const struct target *t)
{
	if (!t->pg)
		return xasprintf("%s/db-%d.sqlite", tmp, ++db_seq);
	PGconn *c = PQconnectdb(pg_url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *res = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("reset schema: %s", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return xstrdup(pg_url);
}

static int open_cb(void **state)
{
	const struct target *t = *state;
	cur = fresh(t);
	struct err err = { 0 };
	if (db_open(cur, &err) < 0)
		fail_msg("db_open %s: %s", t->name, err.msg);
	return 0;
}

static int close_cb(void **state)
{
	(void)state;
	db_close();
	free(cur);
	cur = NULL;
	return 0;
}

static int lite_group_cb(void **state)
{
	*state = &lite;
	return 0;
}

static int pg_group_cb(void **state)
{
	*state = &pg;
	return 0;
}

static int64_t user(const char *name)
{
	struct err err = { 0 };
	int64_t id = db_user_ensure(name, &err);
	assert_true(id > 0);
	return id;
}

/* A queued inline job of uid created at ms. */
static void job_add(const char *id, int64_t uid, int64_t ms, const char *workspace)
{
	struct job_row j = { .user_id = uid, .created_at = ms, .idle_timeout = -1 };
	snprintf(j.id, sizeof j.id, "%s", id);
	snprintf(j.status, sizeof j.status, "queued");
	snprintf(j.type, sizeof j.type, "inline");
	j.script = (char *)"echo hi";
	j.workspace = (char *)workspace;
	struct err err = { 0 };
	assert_int_equal(db_job_insert(&j, &err), 0);
}

/* The ids of a JSON array of jobs, joined with ','. */
static char *ids_of(json_t *arr)
{
	char *s = xstrdup("");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char *n = xasprintf("%s%s%s", s, i ? "," : "", json_string_value(json_object_get(v, "id")));
		free(s);
		s = n;
	}
	json_decref(arr);
	return s;
}

/* ---- the cases --------------------------------------------------------------- */

static void test_users_tokens(void **state)
{
	(void)state;
	int64_t alice = user("alice"), bob = user("bob");
	assert_int_equal(user("alice"), alice);
	assert_true(bob != alice);
	char *name = db_user_name(alice);
	assert_string_equal(name, "alice");
	free(name);
	assert_null(db_user_name(alice + bob + 100));

	char *tok = NULL;
	int64_t tid = 0;
	struct err err = { 0 };
	assert_int_equal(db_token_new(alice, "laptop", &tok, &tid, &err), 0);
	assert_true(tid > 0);
	assert_int_equal(strncmp(tok, "mags_", 5), 0);
	int64_t got = 0;
	assert_int_equal(db_token_auth(tok, &got), alice);
	assert_int_equal(got, tid);
	assert_int_equal(db_token_user("mags_0000"), 0);

	json_t *l = db_token_list(alice);
	assert_int_equal(json_array_size(l), 1);
	json_t *t0 = json_array_get(l, 0);
	assert_int_equal(json_integer_value(json_object_get(t0, "id")), tid);
	assert_string_equal(json_string_value(json_object_get(t0, "name")), "laptop");
	assert_int_equal(strlen(json_string_value(json_object_get(t0, "prefix"))), TOKEN_PREFIX_LEN);
	assert_true(json_is_string(json_object_get(t0, "last_used_at")));
	json_decref(l);

	json_t *users = db_user_list();
	assert_int_equal(json_array_size(users), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(users, 0), "name")), "alice");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(users, 0), "tokens")), 1);
	json_decref(users);

	assert_int_equal(db_token_revoke(bob, tid), -ENOENT);
	assert_int_equal(db_token_revoke(alice, tid), 0);
	assert_int_equal(db_token_revoke(0, tid), -ENOENT);
	assert_int_equal(db_token_user(tok), 0);
	free(tok);

	/* CLI path: a new user with a token; the per-user limit */
	assert_int_equal(db_token_create("carol", &tok, &err), 0);
	assert_true(db_token_user(tok) > 0);
	free(tok);
	int64_t ids[TOKENS_PER_USER_MAX];
	for (int i = 0; i < TOKENS_PER_USER_MAX; i++) {
		assert_int_equal(db_token_new(bob, "t", &tok, &ids[i], &err), 0);
		assert_true(i == 0 || ids[i] > ids[i - 1]);
		free(tok);
	}
	assert_int_equal(db_token_new(bob, "t", &tok, &tid, &err), -409);
	assert_null(tok);
}

static void test_jobs(void **state)
{
	(void)state;
	int64_t uid = user("u"), other = user("v");
	/* the same millisecond: insertion order breaks the tie, not the ids */
	job_add("job-c", uid, 1000, NULL);
	job_add("job-a", uid, 1000, "ws");
	job_add("job-b", uid, 1000, NULL);
	job_add("job-0", uid, 999, NULL);
	job_add("job-x", other, 2000, NULL);

	char *s = ids_of(db_job_list(uid, NULL, NULL, 10));
	assert_string_equal(s, "job-b,job-a,job-c,job-0");
	free(s);
	s = ids_of(db_job_list(uid, NULL, NULL, 2));
	assert_string_equal(s, "job-b,job-a");
	free(s);
	s = ids_of(db_job_list(uid, "queued", "ws", 10));
	assert_string_equal(s, "job-a");
	free(s);
	size_t n;
	char **q = db_jobs_with_status("queued", &n);
	assert_int_equal(n, 5);
	const char *order[] = { "job-0", "job-c", "job-a", "job-b", "job-x" };
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(q[i], order[i]);
		free(q[i]);
	}
	free(q);

	struct job_row j;
	assert_int_equal(db_job_get("job-a", other, &j), -ENOENT);
	assert_int_equal(db_job_get("nope", 0, &j), -ENOENT);
	assert_int_equal(db_job_get("job-a", 0, &j), 0);
	assert_string_equal(j.status, "queued");
	assert_string_equal(j.workspace, "ws");
	assert_string_equal(j.script, "echo hi");
	assert_false(j.has_exit);
	assert_int_equal(j.idle_timeout, -1);
	assert_string_equal(j.node, "");
	assert_null(j.image);
	json_t *o = db_job_json(&j);
	assert_true(json_is_null(json_object_get(o, "node")));
	assert_true(json_is_null(json_object_get(o, "exit_code")));
	json_decref(o);
	db_job_row_free(&j);

	/* claimed once */
	assert_int_equal(db_job_claim("job-a", "tcg", "n1"), 1);
	assert_int_equal(db_job_claim("job-a", "tcg", "n1"), 0);
	assert_int_equal(db_job_get_running_ws("ws", uid, &j), 0);
	assert_string_equal(j.id, "job-a");
	assert_string_equal(j.engine, "tcg");
	assert_true(j.started_at > 0);
	db_job_row_free(&j);
	char *r = db_running_job_of(uid, "ws");
	assert_string_equal(r, "job-a");
	free(r);

	/* always-on bookkeeping, requeue, update */
	db_job_update("job-a", true, 30, 600);
	db_job_set_sleeping("job-a", true);
	db_job_restarted("job-a");
	db_job_restarted("job-a");
	assert_int_equal(db_job_get("job-a", uid, &j), 0);
	assert_true(j.always_on && j.sleeping);
	assert_int_equal(j.timeout, 30);
	assert_int_equal(j.idle_timeout, 600);
	assert_int_equal(j.restarts, 2);
	db_job_row_free(&j);
	db_job_requeue("job-a");
	assert_int_equal(db_job_get("job-a", uid, &j), 0);
	assert_string_equal(j.status, "queued");
	assert_false(j.sleeping);
	db_job_row_free(&j);
	db_job_requeue("job-a"); /* only a running one */

	/* finish: completed, failed with a code, failed without one; final */
	assert_int_equal(db_job_claim("job-a", "kvm", "n1"), 1);
	db_job_finish("job-a", 0, true, NULL);
	db_job_finish("job-b", 3, true, NULL);
	db_job_finish("job-c", -1, false, "timed out");
	db_job_finish("job-a", 9, true, "late");
	assert_int_equal(db_job_get("job-a", uid, &j), 0);
	assert_string_equal(j.status, "completed");
	assert_true(j.has_exit);
	assert_int_equal(j.exit_code, 0);
	assert_null(j.error);
	assert_true(j.finished_at > 0);
	db_job_row_free(&j);
	assert_int_equal(db_job_get("job-b", uid, &j), 0);
	assert_string_equal(j.status, "failed");
	assert_int_equal(j.exit_code, 3);
	db_job_row_free(&j);
	assert_int_equal(db_job_get("job-c", uid, &j), 0);
	assert_string_equal(j.status, "failed");
	assert_false(j.has_exit);
	assert_string_equal(j.error, "timed out");
	db_job_row_free(&j);
	assert_int_equal(db_job_get_running_ws("ws", uid, &j), -ENOENT);

	/* text that is not UTF-8 (a guest's bytes in an error) is stored, not refused */
	job_add("job-u", uid, 3000, NULL);
	db_job_finish("job-u", -1, false, "bad \xff byte");
	assert_int_equal(db_job_get("job-u", uid, &j), 0);
	assert_string_equal(j.status, "failed");
	assert_string_equal(j.error, sql_dialect() == SQL_PG ? "bad \xef\xbf\xbd byte" : "bad \xff byte");
	db_job_row_free(&j);

	/* every field that db_job_insert writes comes back */
	struct job_row full = { .user_id = uid, .created_at = 5000, .timeout = 7, .persist = true, .base_image = true,
				.ephemeral = true, .files_pending = 2, .url = true, .port = 8080, .ssh = true,
				.always_on = true, .idle_timeout = 0 };
	snprintf(full.id, sizeof full.id, "job-full");
	snprintf(full.status, sizeof full.status, "queued");
	snprintf(full.type, sizeof full.type, "file");
	snprintf(full.cron_id, sizeof full.cron_id, "cron-1");
	full.script = (char *)"caf\xc3\xa9 'quoted' ? $1";
	full.workspace = (char *)"w2";
	full.from_ws = (char *)"base";
	full.ssh_key = (char *)"ssh-ed25519 AAAA";
	full.startup = (char *)"serve";
	full.image = (char *)"debian";
	struct err err = { 0 };
	assert_int_equal(db_job_insert(&full, &err), 0);
	assert_int_equal(db_job_get("job-full", uid, &j), 0);
	assert_string_equal(j.script, full.script);
	assert_string_equal(j.type, "file");
	assert_int_equal(j.timeout, 7);
	assert_true(j.persist && j.base_image && j.ephemeral && j.url && j.ssh && j.always_on);
	assert_int_equal(j.files_pending, 2);
	assert_int_equal(j.port, 8080);
	assert_int_equal(j.idle_timeout, 0);
	assert_string_equal(j.from_ws, "base");
	assert_string_equal(j.ssh_key, "ssh-ed25519 AAAA");
	assert_string_equal(j.startup, "serve");
	assert_string_equal(j.cron_id, "cron-1");
	assert_string_equal(j.image, "debian");
	assert_int_equal(j.created_at, 5000);
	db_job_row_free(&j);
	/* the same id again: an error with a message, nothing lost */
	assert_int_equal(db_job_insert(&full, &err), -500);
	assert_non_null(strstr(err.msg, "store job"));
	assert_int_equal(db_job_get("job-full", uid, &j), 0);
	db_job_row_free(&j);
}

static void test_logs(void **state)
{
	(void)state;
	int64_t uid = user("u");
	job_add("j1", uid, 1, NULL);
	job_add("j2", uid, 2, NULL);
	static const unsigned char bin[] = { 'a', 0, 0xff, 0x00, 0x80, '\\', 'x', 0 };
	assert_int_equal(db_log_append("j1", LOG_STDOUT, "hello\n", 6), 1);
	assert_int_equal(db_log_append("j1", LOG_STDERR, bin, sizeof bin), 2);
	assert_int_equal(db_log_append("j2", LOG_SYSTEM, "other", 5), 1);
	assert_int_equal(db_log_append("j1", LOG_STDOUT, "", 0), 3);

	size_t n;
	struct log_row *rows = db_log_read("j1", 0, 100, &n);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].seq, 1);
	assert_int_equal(rows[0].stream, LOG_STDOUT);
	assert_int_equal(rows[0].len, 6);
	assert_memory_equal(rows[0].data, "hello\n", 6);
	assert_true(rows[0].time > 0);
	assert_int_equal(rows[1].stream, LOG_STDERR);
	assert_int_equal(rows[1].len, sizeof bin);
	assert_memory_equal(rows[1].data, bin, sizeof bin);
	assert_int_equal(rows[2].len, 0);
	assert_int_equal(rows[2].data[0], 0);
	db_log_rows_free(rows, n);

	rows = db_log_read("j1", 1, 1, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].seq, 2);
	db_log_rows_free(rows, n);
	rows = db_log_read("j1", 3, 10, &n);
	assert_int_equal(n, 0);
	db_log_rows_free(rows, n);
	rows = db_log_read("none", 0, 10, &n);
	assert_int_equal(n, 0);
	db_log_rows_free(rows, n);
}

static void test_workspaces(void **state)
{
	(void)state;
	int64_t uid = user("u"), other = user("v");
	struct ws_row w;
	assert_int_equal(db_ws_acquire(uid, "base", "j1", false, NULL, &w), 0);
	assert_string_equal(w.in_use_by, "j1");
	assert_false(w.persistent);
	assert_true(w.created_at > 0);
	db_ws_row_free(&w);
	assert_int_equal(db_ws_acquire(uid, "base", "j2", true, NULL, &w), -EBUSY);
	assert_string_equal(w.in_use_by, "j1");
	assert_false(w.persistent); /* not taken: nothing changed */
	db_ws_row_free(&w);
	assert_int_equal(db_ws_acquire(uid, "base", "j1", true, NULL, &w), 0);
	assert_true(w.persistent);
	db_ws_row_free(&w);

	char *holder, *child;
	assert_int_equal(db_ws_delete(uid, "base", &holder, &child), -EBUSY);
	assert_string_equal(holder, "j1");
	assert_null(child);
	free(holder);
	db_ws_release(uid, "base", "j2"); /* not the holder */
	assert_int_equal(db_ws_get(uid, "base", &w), 0);
	assert_string_equal(w.in_use_by, "j1");
	db_ws_row_free(&w);
	db_ws_release(uid, "base", "j1");
	assert_int_equal(db_ws_get(uid, "base", &w), 0);
	assert_null(w.in_use_by);
	db_ws_row_free(&w);

	/* a child created --from it keeps it */
	assert_int_equal(db_ws_acquire(uid, "kid", "j3", false, "base", &w), 0);
	assert_string_equal(w.parent, "base");
	db_ws_row_free(&w);
	db_ws_release_all();
	assert_int_equal(db_ws_delete(uid, "base", &holder, &child), -EEXIST);
	assert_null(holder);
	assert_string_equal(child, "kid");
	free(child);
	assert_int_equal(db_ws_delete(uid, "kid", &holder, &child), 0);
	assert_int_equal(db_ws_delete(uid, "base", &holder, &child), 0);
	assert_int_equal(db_ws_delete(uid, "base", &holder, &child), -ENOENT);
	assert_int_equal(db_ws_get(uid, "base", &w), -ENOENT);

	/* adopt: found in the store; a no-op when the row exists */
	db_ws_adopt(uid, "zeta", true, false, NULL, 4);
	db_ws_adopt(uid, "Alpha", false, true, "zeta", 1);
	db_ws_adopt(uid, "zeta", false, true, NULL, 9);
	db_ws_adopt(other, "zeta", false, false, NULL, 0);
	assert_int_equal(db_ws_get(uid, "zeta", &w), 0);
	assert_true(w.persistent);
	assert_false(w.base_image);
	assert_int_equal(w.version, 4);
	assert_true(w.synced_at > 0);
	db_ws_row_free(&w);

	/* flags are set, never cleared; a sync records the version */
	db_ws_set_flags(uid, "zeta", false, true);
	db_ws_set_flags(uid, "zeta", false, false);
	db_ws_synced(uid, "zeta", 5);
	assert_int_equal(db_ws_get(uid, "zeta", &w), 0);
	assert_true(w.persistent && w.base_image);
	assert_int_equal(w.version, 5);
	db_ws_row_free(&w);

	size_t n;
	struct ws_row *rows = db_ws_list(uid, &n);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].name, "Alpha"); /* bytewise: upper case first */
	assert_string_equal(rows[0].parent, "zeta");
	assert_string_equal(rows[1].name, "zeta");
	for (size_t i = 0; i < n; i++)
		db_ws_row_free(&rows[i]);
	free(rows);
}

static void test_files(void **state)
{
	(void)state;
	int64_t uid = user("u");
	struct job_row j = { .user_id = uid, .created_at = 1, .files_pending = 2 };
	snprintf(j.id, sizeof j.id, "jf");
	snprintf(j.status, sizeof j.status, "queued");
	snprintf(j.type, sizeof j.type, "inline");
	j.script = (char *)"true";
	struct err err = { 0 };
	assert_int_equal(db_job_insert(&j, &err), 0);
	assert_int_equal(db_file_add("jf", 1, "a.txt", 0644, -1, false), 0);
	assert_int_equal(db_file_add("jf", 2, "bin/run", 0755, 10, false), 0);
	assert_int_equal(db_file_add("jf", 2, "dup", 0644, 1, false), -EIO);

	int seq = 0;
	assert_int_equal(db_file_uploaded("jf", "bin/run", 0700, 12, &seq), 1);
	assert_int_equal(seq, 2);
	assert_int_equal(db_file_uploaded("jf", "extra", 0600, 3, &seq), 1);
	assert_int_equal(seq, 3);
	assert_int_equal(db_file_uploaded("jf", "a.txt", 0644, 5000000000LL, &seq), 0);
	assert_int_equal(seq, 1);
	struct job_row g;
	assert_int_equal(db_job_get("jf", uid, &g), 0);
	assert_int_equal(g.files_pending, 0);
	db_job_row_free(&g);

	size_t n;
	struct file_row *f = db_file_list("jf", &n);
	assert_int_equal(n, 3);
	assert_string_equal(f[0].name, "a.txt");
	assert_int_equal(f[0].size, 5000000000LL);
	assert_true(f[0].uploaded);
	assert_string_equal(f[1].name, "bin/run");
	assert_int_equal(f[1].mode, 0700);
	assert_int_equal(f[1].size, 12);
	assert_string_equal(f[2].name, "extra");
	db_file_rows_free(f, n);

	assert_int_equal(db_file_add("jf", 4, "later", 0644, -1, false), 0);
	f = db_file_list("jf", &n);
	assert_int_equal(n, 4);
	assert_int_equal(f[3].size, -1);
	assert_false(f[3].uploaded);
	db_file_rows_free(f, n);
}

static void test_urls(void **state)
{
	(void)state;
	int64_t uid = user("u"), other = user("v");
	job_add("jw", uid, 1, "site");
	job_add("jj", uid, 2, NULL);
	db_url_base("http", "localhost:7558");
	struct err err = { 0 };
	struct url_row u = { .user_id = uid, .port = 80 };
	snprintf(u.label, sizeof u.label, "site");
	snprintf(u.workspace, sizeof u.workspace, "site");
	assert_int_equal(db_url_put(&u, &err), 0);
	u.port = 8080; /* the same row: the port changes */
	assert_int_equal(db_url_put(&u, &err), 0);
	struct url_row v = { .user_id = other, .port = 1 };
	snprintf(v.label, sizeof v.label, "site");
	snprintf(v.job_id, sizeof v.job_id, "jx");
	assert_int_equal(db_url_put(&v, &err), -409);
	assert_non_null(strstr(err.msg, "taken"));

	struct url_row got;
	assert_int_equal(db_url_get("site", &got), 0);
	assert_int_equal(got.port, 8080);
	assert_string_equal(got.workspace, "site");
	assert_string_equal(got.job_id, "");
	assert_false(got.alias);
	assert_true(got.created_at > 0);
	assert_int_equal(db_url_get("none", &got), -ENOENT);
	assert_int_equal(db_url_of(uid, "site", NULL, &got), 0);
	assert_string_equal(got.label, "site");

	/* a job's own URL (no workspace) */
	struct url_row ju = { .user_id = uid, .port = 3000, .created_at = 42 };
	snprintf(ju.label, sizeof ju.label, "jj-url");
	snprintf(ju.job_id, sizeof ju.job_id, "jj");
	assert_int_equal(db_url_put(&ju, &err), 0);
	assert_int_equal(db_url_of(uid, NULL, "jj", &got), 0);
	assert_string_equal(got.label, "jj-url");
	assert_int_equal(got.created_at, 42);
	assert_int_equal(db_url_of(uid, NULL, "jw", &got), -ENOENT);

	struct job_row j;
	assert_int_equal(db_job_get("jw", uid, &j), 0);
	json_t *o = db_job_json(&j);
	assert_string_equal(json_string_value(json_object_get(o, "url")), "http://site.localhost:7558");
	assert_int_equal(json_integer_value(json_object_get(o, "url_port")), 8080);
	json_decref(o);
	db_job_row_free(&j);

	/* aliases */
	struct url_row a = { .user_id = uid, .port = 8080, .alias = true };
	snprintf(a.label, sizeof a.label, "www");
	snprintf(a.workspace, sizeof a.workspace, "site");
	assert_int_equal(db_url_put(&a, &err), 0);
	snprintf(a.label, sizeof a.label, "blog");
	assert_int_equal(db_url_put(&a, &err), 0);
	json_t *al = db_url_aliases(uid);
	assert_int_equal(json_array_size(al), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(al, 0), "alias")), "blog");
	assert_string_equal(json_string_value(json_object_get(json_array_get(al, 1), "url")), "http://www.localhost:7558");
	json_decref(al);
	assert_int_equal(db_url_delete("www", uid, false), -ENOENT);
	assert_int_equal(db_url_delete("www", other, true), -ENOENT);
	assert_int_equal(db_url_delete("www", uid, true), 0);
	db_url_forget_workspace(uid, "site");
	assert_int_equal(db_url_get("site", &got), -ENOENT);
	assert_int_equal(db_url_get("blog", &got), -ENOENT);
	assert_int_equal(db_url_get("jj-url", &got), 0);
}

static void cron_fill(struct cron_row *c, const char *id, int64_t uid, int64_t next)
{
	memset(c, 0, sizeof *c);
	snprintf(c->id, sizeof c->id, "%s", id);
	c->user_id = uid;
	c->expression = (char *)"*/5 * * * *";
	c->spec = (char *)"{\"script\":\"date\"}";
	c->enabled = true;
	c->next_run = next;
	c->created_at = c->updated_at = next;
}

static void test_cron(void **state)
{
	(void)state;
	int64_t uid = user("u"), other = user("v");
	struct err err = { 0 };
	struct cron_row c;
	cron_fill(&c, "c2", uid, 2000);
	c.name = (char *)"nightly";
	c.timezone = (char *)"Europe/Paris";
	assert_int_equal(db_cron_insert(&c, &err), 0);
	cron_fill(&c, "c1", uid, 3000);
	assert_int_equal(db_cron_insert(&c, &err), 0);
	cron_fill(&c, "c3", other, 1000);
	c.enabled = false;
	c.next_run = 0;
	assert_int_equal(db_cron_insert(&c, &err), 0);
	assert_int_equal(db_cron_insert(&c, &err), -500);

	struct cron_row g;
	assert_int_equal(db_cron_get("c2", other, &g), -ENOENT);
	assert_int_equal(db_cron_get("c2", 0, &g), 0);
	assert_string_equal(g.name, "nightly");
	assert_string_equal(g.timezone, "Europe/Paris");
	assert_string_equal(g.spec, "{\"script\":\"date\"}");
	assert_true(g.enabled);
	assert_int_equal(g.next_run, 2000);
	assert_int_equal(g.last_run, 0);
	assert_string_equal(g.last_job_id, "");
	assert_null(g.last_error);
	db_cron_row_free(&g);

	size_t n;
	struct cron_row *rows = db_cron_list(uid, &n);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "c2");
	assert_string_equal(rows[1].id, "c1");
	for (size_t i = 0; i < n; i++)
		db_cron_row_free(&rows[i]);
	free(rows);

	rows = db_cron_due(2500, &n);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].id, "c2");
	db_cron_row_free(&rows[0]);
	free(rows);
	assert_int_equal(db_cron_earliest(), 2000);

	/* compare-and-set: one caller owns a firing */
	assert_true(db_cron_advance("c2", 2000, 4000, 2000));
	assert_false(db_cron_advance("c2", 2000, 4000, 2000));
	assert_true(db_cron_advance("c1", 3000, 0, 0)); /* never again; last_run kept */
	assert_int_equal(db_cron_get("c1", uid, &g), 0);
	assert_int_equal(g.next_run, 0);
	assert_int_equal(g.last_run, 0);
	db_cron_row_free(&g);
	assert_int_equal(db_cron_earliest(), 4000);

	db_cron_set_last_job("c2", "job-1", NULL);
	db_cron_set_last_job("c2", NULL, "quota");
	assert_int_equal(db_cron_get("c2", uid, &g), 0);
	assert_string_equal(g.last_job_id, "job-1");
	assert_string_equal(g.last_error, "quota");
	assert_int_equal(g.last_run, 2000);
	db_cron_row_free(&g);

	/* update: next_run stays unless asked */
	cron_fill(&c, "c2", uid, 9999);
	c.expression = (char *)"0 * * * *";
	c.updated_at = 5000;
	assert_int_equal(db_cron_update(&c, false), 0);
	assert_int_equal(db_cron_get("c2", uid, &g), 0);
	assert_string_equal(g.expression, "0 * * * *");
	assert_null(g.name);
	assert_int_equal(g.next_run, 4000);
	assert_int_equal(g.updated_at, 5000);
	db_cron_row_free(&g);
	c.enabled = false;
	c.next_run = 0;
	assert_int_equal(db_cron_update(&c, true), 0);
	assert_int_equal(db_cron_earliest(), 0);
	c.user_id = other;
	assert_int_equal(db_cron_update(&c, true), -ENOENT);

	assert_int_equal(db_cron_delete("c2", other), -ENOENT);
	assert_int_equal(db_cron_delete("c2", uid), 0);
	assert_int_equal(db_cron_delete("c2", uid), -ENOENT);
}

/* The schema version recorded in schema_migrations. */
static int64_t recorded_version(void)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT COUNT(*), MAX(version) FROM schema_migrations");
	assert_int_equal(sql_step(st), SQL_ROW);
	int64_t count = sql_col_int(st, 0), max = sql_col_int(st, 1);
	sql_done(st);
	db_unlock();
	assert_int_equal(count, max); /* 1..max, none missing */
	return max;
}

static void test_sql_layer(void **state)
{
	const struct target *t = *state;
	assert_string_equal(sql_dialect_name(), t->name);
	assert_int_equal(sql_dialect(), t->pg ? SQL_PG : SQL_SQLITE);
	db_lock();
	/* placeholders inside literals stay; ?N and bare ? number like SQLite's */
	struct sql_stmt *st = sql_prep("SELECT 'it''s ?', ?2, ?1, ?, \"x\" FROM (SELECT 1 AS \"x\") q -- ?");
	sql_bind_int(st, 1, 11);
	sql_bind_text(st, 2, "two");
	sql_bind_int(st, 3, -3);
	assert_int_equal(sql_step(st), SQL_ROW);
	assert_string_equal(sql_col_text(st, 0), "it's ?");
	assert_string_equal(sql_col_text(st, 1), "two");
	assert_int_equal(sql_col_int(st, 2), 11);
	assert_int_equal(sql_col_int(st, 3), -3);
	assert_int_equal(sql_col_int(st, 4), 1);
	char buf[3];
	sql_col_copy(st, 1, buf, sizeof buf);
	assert_string_equal(buf, "tw");
	assert_int_equal(sql_step(st), SQL_DONE);
	sql_done(st);

	/* NULL reads as 0, NULL text, an empty blob */
	st = sql_prep("SELECT NULL, NULL, NULL");
	assert_int_equal(sql_step(st), SQL_ROW);
	assert_true(sql_col_null(st, 0));
	assert_int_equal(sql_col_int(st, 0), 0);
	assert_null(sql_col_text(st, 1));
	assert_null(sql_col_dup(st, 1));
	size_t len = 9;
	assert_non_null(sql_col_blob(st, 2, &len));
	assert_int_equal(len, 0);
	sql_done(st);

	/* an error at step: < 0 and a message; the connection goes on */
	st = sql_prep("INSERT INTO users(id, name, created_at) VALUES(?, NULL, 0)");
	sql_bind_int(st, 1, 1);
	assert_true(sql_step(st) < 0);
	assert_non_null(strstr(sql_errmsg(), "name"));
	sql_done(st);

	/* a transaction rolled back leaves nothing; changes counts rows */
	assert_int_equal(sql_begin(), 0);
	assert_int_equal(sql_exec("INSERT INTO users(name, created_at) VALUES('tx', 1)"), 0);
	sql_rollback();
	assert_int_equal(sql_begin(), 0);
	st = sql_prep("INSERT INTO users(name, created_at) VALUES('a', 1), ('b', 1)");
	assert_int_equal(sql_step(st), SQL_DONE);
	assert_int_equal(sql_changes(st), 2);
	sql_done(st);
	assert_int_equal(sql_commit(), 0);
	st = sql_prep("SELECT COUNT(*) FROM users WHERE name IN ('a', 'b', 'tx')");
	assert_int_equal(sql_step(st), SQL_ROW);
	assert_int_equal(sql_col_int(st, 0), 2);
	sql_done(st);
	db_unlock();
}

static void test_migrations_fresh(void **state)
{
	(void)state;
	assert_int_equal(recorded_version(), 6);
	/* opening again applies nothing */
	db_close();
	struct err err = { 0 };
	assert_int_equal(db_open(cur, &err), 0);
	assert_int_equal(recorded_version(), 6);
}

static void test_migrations_newer(void **state)
{
	(void)state;
	db_lock();
	assert_int_equal(sql_exec("INSERT INTO schema_migrations(version, applied_at) VALUES(7, 0)"), 0);
	db_unlock();
	db_close();
	struct err err = { 0 };
	assert_true(db_open(cur, &err) < 0);
	assert_non_null(strstr(err.msg, "newer than this magsd"));
	assert_false(sql_is_open());
}

/* The schema of magsd before migrations were counted in a table (PRAGMA user_version 5), as it wrote it. */
static const char *const old_schema[] = {
	"CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS tokens(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), "
	"hash TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), "
	"status TEXT NOT NULL, script TEXT NOT NULL, type TEXT NOT NULL, timeout INTEGER NOT NULL DEFAULT 0, "
	"exit_code INTEGER, error TEXT, engine TEXT, created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER)",
	"CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs(user_id, created_at)",
	"CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created_at)",
	"CREATE TABLE IF NOT EXISTS logs(job_id TEXT NOT NULL, seq INTEGER NOT NULL, stream INTEGER NOT NULL, "
	"time INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(job_id, seq)) WITHOUT ROWID",
	"CREATE TABLE IF NOT EXISTS workspaces(user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL, "
	"persistent INTEGER NOT NULL DEFAULT 0, base_image INTEGER NOT NULL DEFAULT 0, parent TEXT, in_use_by TEXT, "
	"version INTEGER, synced_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
	"PRIMARY KEY(user_id, name))",
	"CREATE TABLE IF NOT EXISTS job_files(job_id TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, "
	"mode INTEGER NOT NULL, size INTEGER, uploaded INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(job_id, seq))",
	/* 2 */
	"ALTER TABLE jobs ADD COLUMN workspace TEXT", "ALTER TABLE jobs ADD COLUMN persist INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE jobs ADD COLUMN base_image INTEGER NOT NULL DEFAULT 0", "ALTER TABLE jobs ADD COLUMN from_ws TEXT",
	"ALTER TABLE jobs ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE jobs ADD COLUMN files_pending INTEGER NOT NULL DEFAULT 0",
	/* 3 */
	"ALTER TABLE jobs ADD COLUMN url INTEGER NOT NULL DEFAULT 0", "ALTER TABLE jobs ADD COLUMN port INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE jobs ADD COLUMN ssh INTEGER NOT NULL DEFAULT 0", "ALTER TABLE jobs ADD COLUMN ssh_key TEXT",
	"CREATE TABLE IF NOT EXISTS urls(label TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), "
	"workspace TEXT, job_id TEXT, port INTEGER NOT NULL, alias INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)",
	"CREATE INDEX IF NOT EXISTS urls_by_target ON urls(user_id, workspace, job_id)",
	/* 4 */
	"ALTER TABLE jobs ADD COLUMN always_on INTEGER NOT NULL DEFAULT 0", "ALTER TABLE jobs ADD COLUMN startup TEXT",
	"ALTER TABLE jobs ADD COLUMN idle_timeout INTEGER NOT NULL DEFAULT -1", "ALTER TABLE jobs ADD COLUMN cron_id TEXT",
	"ALTER TABLE jobs ADD COLUMN sleeping INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE jobs ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0",
	"CREATE TABLE IF NOT EXISTS cron_jobs(id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), name TEXT, "
	"expression TEXT NOT NULL, timezone TEXT, spec TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, next_run INTEGER, "
	"last_run INTEGER, last_job_id TEXT, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
	"CREATE INDEX IF NOT EXISTS cron_by_user ON cron_jobs(user_id, created_at)",
	"ALTER TABLE tokens ADD COLUMN name TEXT", "ALTER TABLE tokens ADD COLUMN prefix TEXT",
	"ALTER TABLE tokens ADD COLUMN last_used_at INTEGER",
	/* 5 */
	"ALTER TABLE jobs ADD COLUMN image TEXT",
	/* rows */
	"INSERT INTO users(id, name, created_at) VALUES(7, 'old', 1)",
	"INSERT INTO tokens(user_id, hash, created_at, name, prefix) VALUES(7, 'h', 1, 'cli', 'mags_1234567')",
	"INSERT INTO jobs(id, user_id, status, script, type, created_at, image) VALUES('old-2', 7, 'completed', 'ls', 'inline', 50, 'busybox')",
	"INSERT INTO jobs(id, user_id, status, script, type, created_at) VALUES('old-1', 7, 'queued', 'ls', 'inline', 50)",
	"INSERT INTO logs VALUES('old-2', 1, 1, 51, X'6f6b0a')",
	"INSERT INTO workspaces(user_id, name, created_at, updated_at) VALUES(7, 'w', 1, 1)",
	"PRAGMA user_version = 5",
};

static void write_old_db(const char *path, int user_version)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof old_schema / sizeof *old_schema; i++)
		if (sqlite3_exec(db, old_schema[i], NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("%s: %s", old_schema[i], sqlite3_errmsg(db));
	char *v = xasprintf("PRAGMA user_version = %d", user_version);
	assert_int_equal(sqlite3_exec(db, v, NULL, NULL, NULL), SQLITE_OK);
	free(v);
	sqlite3_close(db);
}

static void test_migrations_adopt(void **state)
{
	(void)state;
	db_close();
	free(cur);
	cur = fresh(&lite);
	write_old_db(cur, 5);
	struct err err = { 0 };
	assert_int_equal(db_open(cur, &err), 0);
	assert_int_equal(recorded_version(), 6);
	db_lock();
	struct sql_stmt *st = sql_prep("PRAGMA user_version");
	assert_int_equal(sql_step(st), SQL_ROW);
	assert_int_equal(sql_col_int(st, 0), 6);
	sql_done(st);
	db_unlock();

	/* the rows are all there, and new ones sort after them */
	char *name = db_user_name(7);
	assert_string_equal(name, "old");
	free(name);
	assert_int_equal(db_token_user("nope"), 0);
	json_t *tl = db_token_list(7);
	assert_int_equal(json_array_size(tl), 1);
	json_decref(tl);
	struct job_row j;
	assert_int_equal(db_job_get("old-2", 7, &j), 0);
	assert_string_equal(j.status, "completed");
	assert_string_equal(j.image, "busybox");
	assert_string_equal(j.node, "");
	db_job_row_free(&j);
	job_add("new-0", 7, 50, NULL);
	char *s = ids_of(db_job_list(7, NULL, NULL, 10));
	assert_string_equal(s, "new-0,old-1,old-2");
	free(s);
	size_t n;
	struct log_row *rows = db_log_read("old-2", 0, 10, &n);
	assert_int_equal(n, 1);
	assert_memory_equal(rows[0].data, "ok\n", 3);
	db_log_rows_free(rows, n);
	assert_int_equal(db_log_append("old-2", LOG_STDOUT, "x", 1), 2);
	struct ws_row w;
	assert_int_equal(db_ws_get(7, "w", &w), 0);
	db_ws_row_free(&w);
	/* tokens: ids go on after the old ones */
	char *tok;
	int64_t id;
	assert_int_equal(db_token_new(7, "n", &tok, &id, &err), 0);
	assert_int_equal(id, 2);
	free(tok);
}

static void test_migrations_old_newer(void **state)
{
	(void)state;
	db_close();
	free(cur);
	cur = fresh(&lite);
	write_old_db(cur, 99);
	struct err err = { 0 };
	assert_true(db_open(cur, &err) < 0);
	assert_non_null(strstr(err.msg, "schema version 99"));
	/* nothing was written */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(cur, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT * FROM schema_migrations", NULL, NULL, NULL), SQLITE_ERROR);
	sqlite3_close(db);
}

/* Two magsd nodes starting at once on a new database: one migrates, both open. */
static void test_pg_concurrent_open(void **state)
{
	(void)state;
	db_close();
	free(cur);
	cur = fresh(&pg);
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct err err = { 0 };
			int r = db_open(cur, &err);
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", i, err.msg);
			db_close();
			_exit(r == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct err err = { 0 };
	assert_int_equal(db_open(cur, &err), 0);
	assert_int_equal(recorded_version(), 6);
}

/* The server ends magsd's connection: the next call reconnects. */
static void test_pg_reconnect(void **state)
{
	(void)state;
	int64_t uid = user("before");
	PGconn *c = PQconnectdb(pg_url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *res = PQexec(c, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
				  " WHERE datname = 'mags' AND pid <> pg_backend_pid()");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), 1);
	PQclear(res);
	assert_int_equal(user("before"), uid);

	/* lost inside a transaction: the transaction fails as a whole */
	db_lock();
	assert_int_equal(sql_begin(), 0);
	assert_int_equal(sql_exec("INSERT INTO users(name, created_at) VALUES('in-tx', 1)"), 0);
	res = PQexec(c, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
			" WHERE datname = 'mags' AND pid <> pg_backend_pid()");
	PQclear(res);
	assert_true(sql_exec("INSERT INTO users(name, created_at) VALUES('in-tx-2', 1)") < 0);
	assert_true(sql_exec("INSERT INTO users(name, created_at) VALUES('in-tx-3', 1)") < 0);
	assert_true(sql_commit() < 0);
	db_unlock();
	PQfinish(c);
	char *n = db_user_name(uid);
	assert_string_equal(n, "before");
	free(n);
	json_t *l = db_user_list();
	assert_int_equal(json_array_size(l), 1);
	json_decref(l);
}

/* ---- the cluster's tables (db_nodes.c) ---------------------------------------- */

static void node_add(const char *id, int capacity)
{
	char url[64];
	snprintf(url, sizeof url, "http://10.0.0.%d:7557", id[1] - '0');
	struct node_row n = { .url = url, .capacity = capacity };
	snprintf(n.id, sizeof n.id, "%s", id);
	struct err err = { 0 };
	assert_int_equal(db_node_register(&n, &err), 0);
}

static void job_expect(const char *id, const char *status, const char *node)
{
	struct job_row j;
	assert_int_equal(db_job_get(id, 0, &j), 0);
	assert_string_equal(j.status, status);
	assert_string_equal(j.node, node);
	db_job_row_free(&j);
}

static void hint_expect(const char *id, const char *node, bool pin)
{
	char hint[NODE_ID_MAX];
	bool pinned;
	assert_int_equal(db_job_hint(id, hint, &pinned), 0);
	assert_string_equal(hint, node);
	assert_int_equal(pinned, pin);
}

static void sql_run(const char *stmt)
{
	db_lock();
	assert_int_equal(sql_exec(stmt), 0);
	db_unlock();
}

static void test_nodes(void **state)
{
	(void)state;
	const int64_t T = 10000; /* node timeout, ms */
	node_add("n1", 2);
	node_add("n2", 2);
	int64_t uid = user("u"), now = db_now_ms();
	char id[40];

	/* placement: the least loaded (ties by id), counting what is already placed */
	job_add("j1", uid, now, NULL);
	db_job_place("j1", uid, NULL, false, NULL, T);
	hint_expect("j1", "n1", false);
	job_add("j2", uid, now, NULL);
	db_job_place("j2", uid, NULL, false, NULL, T);
	hint_expect("j2", "n2", false);
	/* within its grace a job is the preferred node's: n2 takes its own, not j1 */
	assert_int_equal(db_job_claim_next("n2", "tcg", T, id), 1);
	assert_string_equal(id, "j2");
	assert_int_equal(db_job_claim_next("n2", "tcg", T, id), 0);
	assert_int_equal(db_job_claim_next("n1", "tcg", T, id), 1);
	assert_string_equal(id, "j1");
	assert_int_equal(db_job_claim_next("n1", "tcg", T, id), 0);
	job_expect("j1", "running", "n1");
	job_expect("j2", "running", "n2");

	/* a workspace only on n2's disk pins its job there, even past the grace */
	db_node_cache_touch("n2", uid, "ws");
	job_add("j3", uid, 1000, "ws");
	db_job_place("j3", uid, "ws", false, NULL, T);
	hint_expect("j3", "n2", true);
	assert_int_equal(db_job_claim_next("n1", "tcg", T, id), 0);
	/* one the store has too only prefers it; past the grace anyone takes it */
	db_node_cache_touch("n2", uid, "pws");
	job_add("j4", uid, 1000, "pws");
	db_job_place("j4", uid, "pws", true, NULL, T);
	hint_expect("j4", "n2", false);
	assert_int_equal(db_job_claim_next("n1", "tcg", T, id), 1);
	assert_string_equal(id, "j4");
	assert_int_equal(db_job_claim_next("n2", "tcg", T, id), 1);
	assert_string_equal(id, "j3");
	/* uploaded files pin a job to the node that has them */
	job_add("j5", uid, 1000, NULL);
	db_job_place("j5", uid, NULL, false, "n1", T);
	hint_expect("j5", "n1", true);
	assert_int_equal(db_job_claim_next("n2", "tcg", T, id), 0);

	/* n2 stops heartbeating: its always-on job is queued again, its others fail, its pinned queued jobs too */
	db_node_cache_touch("n2", uid, "ws");
	job_add("j6", uid, now, "ws");
	db_job_place("j6", uid, "ws", false, NULL, T);
	hint_expect("j6", "n2", true);
	sql_run("UPDATE jobs SET always_on = 1 WHERE id = 'j2'");
	sql_run("UPDATE workspaces SET in_use_by = 'j3'");
	struct ws_row w;
	assert_int_equal(db_ws_acquire(uid, "ws", "j3", false, NULL, &w), 0);
	db_ws_row_free(&w);
	assert_int_equal(db_node_heartbeat("n1", 1), 1);
	assert_int_equal(db_nodes_sweep_lost("n1", T), 0); /* both heartbeat */
	sql_run("UPDATE nodes SET heartbeat_at = 0 WHERE id = 'n2'");
	json_t *nodes = db_nodes_json("n1", T);
	assert_int_equal(json_array_size(nodes), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 1), "state")), "lost");
	assert_true(json_is_true(json_object_get(json_array_get(nodes, 0), "self")));
	json_decref(nodes);
	assert_int_equal(db_nodes_sweep_lost("n2", T), 0); /* a node never declares itself */
	assert_int_equal(db_nodes_sweep_lost("n1", T), 1);
	assert_int_equal(db_nodes_sweep_lost("n1", T), 0);
	job_expect("j2", "queued", "");
	job_expect("j3", "failed", "n2");
	job_expect("j6", "failed", "");
	job_expect("j1", "running", "n1");
	struct job_row j;
	assert_int_equal(db_job_get("j3", 0, &j), 0);
	assert_string_equal(j.error, "lost: node n2 stopped answering");
	db_job_row_free(&j);
	assert_int_equal(db_ws_get(uid, "ws", &w), 0);
	assert_null(w.in_use_by);
	db_ws_row_free(&w);
	size_t n;
	struct log_row *logs = db_log_read("j2", 0, 10, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr((const char *)logs[0].data, "node n2 stopped answering"));
	db_log_rows_free(logs, n);
	/* the lost node learns it at its next heartbeat */
	assert_int_equal(db_node_heartbeat("n2", 0), 0);
	struct node_row nr;
	assert_int_equal(db_node_get("n2", &nr), 0);
	assert_string_equal(nr.state, "lost");
	db_node_row_free(&nr);
	/* the requeued always-on job goes to the live node */
	assert_int_equal(db_job_claim_next("n1", "tcg", T, id), 1);
	assert_true(!strcmp(id, "j2") || !strcmp(id, "j5"));
	char **mine = db_node_jobs("n1", "running", &n);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		free(mine[i]);
	free(mine);
	/* a queued job stops only while no node has it */
	job_add("j7", uid, now, NULL);
	assert_int_equal(db_job_stop_queued("j7"), 1);
	assert_int_equal(db_job_stop_queued("j7"), 0);
	assert_int_equal(db_job_stop_queued("j1"), 0);
	/* a restart of n2 makes it alive again */
	node_add("n2", 4);
	assert_int_equal(db_node_heartbeat("n2", 0), 1);
	db_node_stopped("n2");
	assert_int_equal(db_node_get("n2", &nr), 0);
	assert_string_equal(nr.state, "stopped");
	assert_int_equal(nr.capacity, 4);
	db_node_row_free(&nr);
}

#define CLAIM_JOBS 60
#define CLAIMERS 4

/* Four processes claim at once (FOR UPDATE SKIP LOCKED): every job exactly once. */
static void test_pg_claims_at_once(void **state)
{
	(void)state;
	int64_t uid = user("u");
	for (int i = 0; i < CLAIM_JOBS; i++) {
		char id[16];
		snprintf(id, sizeof id, "c%02d", i);
		job_add(id, uid, 1000 + i, NULL);
	}
	int fds[CLAIMERS][2];
	pid_t kids[CLAIMERS];
	for (int k = 0; k < CLAIMERS; k++) {
		assert_int_equal(pipe(fds[k]), 0);
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			/* its own connection (the inherited one is the parent's) */
			struct err err = { 0 };
			if (sql_open(cur, &err) < 0)
				_exit(2);
			char node[16], id[40];
			snprintf(node, sizeof node, "k%d", k);
			int got = 0, r;
			while ((r = db_job_claim_next(node, "tcg", 10000, id)) == 1) {
				if (write(fds[k][1], id, 40) != 40)
					_exit(3);
				got++;
			}
			_exit(r == 0 ? 0 : 4);
		}
		close(fds[k][1]);
	}
	int seen[CLAIM_JOBS] = { 0 }, total = 0;
	for (int k = 0; k < CLAIMERS; k++) {
		char id[40];
		while (read(fds[k][0], id, 40) == 40) {
			int i = atoi(id + 1);
			assert_true(i >= 0 && i < CLAIM_JOBS);
			seen[i]++;
			total++;
		}
		close(fds[k][0]);
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(total, CLAIM_JOBS);
	for (int i = 0; i < CLAIM_JOBS; i++)
		assert_int_equal(seen[i], 1);
	json_t *l = db_job_list(uid, "running", NULL, 100);
	assert_int_equal(json_array_size(l), CLAIM_JOBS);
	json_decref(l);
}

/* ---- main ---------------------------------------------------------------------- */

#define BOTH_CASES                                                                   \
	cmocka_unit_test_setup_teardown(test_sql_layer, open_cb, close_cb),              \
	cmocka_unit_test_setup_teardown(test_users_tokens, open_cb, close_cb),           \
	cmocka_unit_test_setup_teardown(test_jobs, open_cb, close_cb),                   \
	cmocka_unit_test_setup_teardown(test_logs, open_cb, close_cb),                   \
	cmocka_unit_test_setup_teardown(test_workspaces, open_cb, close_cb),             \
	cmocka_unit_test_setup_teardown(test_files, open_cb, close_cb),                  \
	cmocka_unit_test_setup_teardown(test_urls, open_cb, close_cb),                   \
	cmocka_unit_test_setup_teardown(test_cron, open_cb, close_cb),                   \
	cmocka_unit_test_setup_teardown(test_nodes, open_cb, close_cb),                  \
	cmocka_unit_test_setup_teardown(test_migrations_fresh, open_cb, close_cb),       \
	cmocka_unit_test_setup_teardown(test_migrations_newer, open_cb, close_cb)

static int all_tests(void)
{
	const struct CMUnitTest sqlite_tests[] = {
		BOTH_CASES,
		cmocka_unit_test_setup_teardown(test_migrations_adopt, open_cb, close_cb),
		cmocka_unit_test_setup_teardown(test_migrations_old_newer, open_cb, close_cb),
	};
	const struct CMUnitTest pg_tests[] = {
		BOTH_CASES,
		cmocka_unit_test_setup_teardown(test_pg_concurrent_open, open_cb, close_cb),
		cmocka_unit_test_setup_teardown(test_pg_reconnect, open_cb, close_cb),
		cmocka_unit_test_setup_teardown(test_pg_claims_at_once, open_cb, close_cb),
	};
	int failed = cmocka_run_group_tests_name("sqlite", sqlite_tests, lite_group_cb, NULL);
	failed += cmocka_run_group_tests_name("postgresql", pg_tests, pg_group_cb, NULL);
	return failed;
}

static volatile sig_atomic_t stop_sig;

static void stop_cb(int sig)
{
	stop_sig = sig;
}

int main(void)
{
	char templ[] = "/tmp/mags-test-db-XXXXXX";
	if (!mkdtemp(templ)) {
		perror("mkdtemp");
		return 1;
	}
	tmp = templ;
	int rc = 1;
	signal(SIGINT, stop_cb);
	signal(SIGTERM, stop_cb);
	signal(SIGALRM, stop_cb);
	if (pg_start() == 0) {
		pid_t kid = fork();
		if (kid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			int failed = all_tests();
			free(pg_url);
			_exit(failed ? 1 : 0);
		}
		alarm(TEST_TIMEOUT_S);
		int st = 0;
		while (kid > 0 && waitpid(kid, &st, 0) < 0) {
			if (errno != EINTR || stop_sig) {
				fprintf(stderr, "test_db: %s: stopping the tests\n", stop_sig == SIGALRM ? "timed out" : "interrupted");
				kill(kid, SIGKILL);
				waitpid(kid, &st, 0);
				st = 1 << 8;
				break;
			}
		}
		alarm(0);
		rc = kid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
		if (kid > 0 && WIFSIGNALED(st))
			fprintf(stderr, "test_db: the tests died of signal %d\n", WTERMSIG(st));
	}
	pg_stop();
	char *rm = xasprintf("rm -rf %s", tmp);
	if (system(rm) != 0)
		fprintf(stderr, "test_db: could not remove %s\n", tmp);
	free(rm);
	free(pg_url);
	return rc;
}
