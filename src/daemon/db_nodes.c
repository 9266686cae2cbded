// SPDX-License-Identifier: MIT
/*
 * The cluster's shared state; see db_nodes.h. Written once for SQLite and
 * PostgreSQL (sql.h); only the row locks of a claim differ: PostgreSQL's
 * FOR UPDATE SKIP LOCKED lets nodes claiming at once pass each other's
 * candidate, SQLite (one magsd) has its write lock from BEGIN IMMEDIATE.
 */
#include "db_nodes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "sql.h"
#include "xmalloc.h"

#define NODE_COLS "id, url, proxy, ssh_host, capacity, running, state, started_at, heartbeat_at"

static void read_node_cb(struct sql_stmt *st, void *item)
{
	struct node_row *n = item;
	memset(n, 0, sizeof *n);
	sql_col_copy(st, 0, n->id, sizeof n->id);
	n->url = sql_col_dup(st, 1);
	n->proxy = sql_col_dup(st, 2);
	n->ssh_host = sql_col_dup(st, 3);
	n->capacity = (int)sql_col_int(st, 4);
	n->running = (int)sql_col_int(st, 5);
	sql_col_copy(st, 6, n->state, sizeof n->state);
	n->started_at = sql_col_int(st, 7);
	n->heartbeat_at = sql_col_int(st, 8);
}

void db_node_row_free(struct node_row *n)
{
	free(n->url);
	free(n->proxy);
	free(n->ssh_host);
	memset(n, 0, sizeof *n);
}

int db_node_register(struct node_row *n, struct err *err)
{
	int64_t now = db_now_ms();
	n->started_at = n->heartbeat_at = now;
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO nodes(" NODE_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, 'alive', ?6, ?6)"
				       " ON CONFLICT(id) DO UPDATE SET url = excluded.url, proxy = excluded.proxy,"
				       " ssh_host = excluded.ssh_host, capacity = excluded.capacity, running = 0,"
				       " state = 'alive', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at");
	sql_bind_text(st, 1, n->id);
	sql_bind_text(st, 2, n->url);
	sql_bind_text(st, 3, n->proxy);
	sql_bind_text(st, 4, n->ssh_host);
	sql_bind_int(st, 5, n->capacity);
	sql_bind_int(st, 6, now);
	int r = sql_step(st) < 0 ? err_set(err, 500, "register node %s: %s", n->id, sql_errmsg()) : 0;
	sql_done(st);
	db_unlock();
	return r;
}

int db_node_heartbeat(const char *id, int running)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE nodes SET heartbeat_at = ?, running = ? WHERE id = ? AND state = 'alive'");
	sql_bind_int(st, 1, db_now_ms());
	sql_bind_int(st, 2, running);
	sql_bind_text(st, 3, id);
	int r = sql_step(st);
	if (r >= 0)
		r = sql_changes(st) > 0;
	sql_done(st);
	db_unlock();
	return r;
}

void db_node_stopped(const char *id)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE nodes SET state = 'stopped', running = 0 WHERE id = ? AND state = 'alive'");
	sql_bind_text(st, 1, id);
	sql_step(st);
	sql_done(st);
	db_unlock();
}

int db_node_get(const char *id, struct node_row *n)
{
	memset(n, 0, sizeof *n);
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT " NODE_COLS " FROM nodes WHERE id = ?");
	sql_bind_text(st, 1, id);
	int r = sql_one(st, read_node_cb, n);
	db_unlock();
	return r;
}

json_t *db_nodes_json(const char *self, int64_t timeout_ms)
{
	json_t *arr = json_array();
	int64_t now = db_now_ms();
	db_lock();
	size_t count;
	struct node_row *rows = sql_all(sql_prep("SELECT " NODE_COLS " FROM nodes ORDER BY id"), sizeof *rows,
					read_node_cb, &count);
	db_unlock();
	for (size_t i = 0; i < count; i++) {
		struct node_row n = rows[i];
		/* one that stopped answering shows so before a sweep declares it */
		const char *state = !strcmp(n.state, "alive") && now - n.heartbeat_at > timeout_ms ? "lost" : n.state;
		json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:o,s:o,s:b}", "id", n.id, "url", n.url ? n.url : "", "state",
				      state, "running", n.running, "capacity", n.capacity, "heartbeat_at",
				      db_time_json(n.heartbeat_at), "started_at", db_time_json(n.started_at), "self",
				      !strcmp(n.id, self));
		json_array_append_new(arr, o);
		db_node_row_free(&n);
	}
	free(rows);
	return arr;
}

/* The ids st selects (one text column); ends st. */
static char **ids_of(struct sql_stmt *st, size_t *n)
{
	return sql_all(st, sizeof(char *), sql_read_text_cb, n);
}

static void free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* The system log line and the end of the jobs a lost node ran (under the transaction). */
static void lost_node_jobs(const char *node, char ***requeued, size_t *nrq, char ***failed, size_t *nf)
{
	struct sql_stmt *st = sql_prep("SELECT id FROM jobs WHERE node = ? AND status = 'running' AND always_on <> 0"
				       " ORDER BY created_at");
	sql_bind_text(st, 1, node);
	*requeued = ids_of(st, nrq);
	st = sql_prep("SELECT id FROM jobs WHERE node = ? AND status = 'running' AND always_on = 0 ORDER BY created_at");
	sql_bind_text(st, 1, node);
	*failed = ids_of(st, nf);
	/* the workspaces its jobs held (before its jobs leave it) */
	st = sql_prep("UPDATE workspaces SET in_use_by = NULL WHERE in_use_by IN (SELECT id FROM jobs WHERE node = ?)");
	sql_bind_text(st, 1, node);
	sql_step(st);
	sql_done(st);
	char *why = xasprintf("lost: node %s stopped answering", node);
	st = sql_prep("UPDATE jobs SET status = 'failed', error = ?1, finished_at = ?2"
		      " WHERE node = ?3 AND status = 'running' AND always_on = 0");
	sql_bind_text(st, 1, why);
	sql_bind_int(st, 2, db_now_ms());
	sql_bind_text(st, 3, node);
	sql_step(st);
	sql_done(st);
	/* queued jobs pinned to it (their workspace or files were on its disk) cannot run anywhere else */
	st = sql_prep("UPDATE jobs SET status = 'failed', error = ?1, finished_at = ?2"
		      " WHERE node_hint = ?3 AND node_pin <> 0 AND status = 'queued'");
	sql_bind_text(st, 1, why);
	sql_bind_int(st, 2, db_now_ms());
	sql_bind_text(st, 3, node);
	sql_step(st);
	sql_done(st);
	free(why);
	/* an always-on job starts again on another node, from its workspace's last synced version */
	st = sql_prep("UPDATE jobs SET status = 'queued', sleeping = 0, node = NULL, node_hint = NULL, node_pin = 0"
		      " WHERE node = ? AND status = 'running' AND always_on <> 0");
	sql_bind_text(st, 1, node);
	sql_step(st);
	sql_done(st);
	st = sql_prep("DELETE FROM node_cache WHERE node_id = ?");
	sql_bind_text(st, 1, node);
	sql_step(st);
	sql_done(st);
}

int db_nodes_sweep_lost(const char *self, int64_t timeout_ms)
{
	int declared = 0;
	for (;;) {
		db_lock();
		if (sql_begin() < 0) {
			db_unlock();
			return declared;
		}
		struct sql_stmt *st = sql_prep(SQL_PICK("SELECT id FROM nodes WHERE state = 'alive' AND heartbeat_at < ? AND id <> ?"
							" ORDER BY id LIMIT 1",
							"SELECT id FROM nodes WHERE state = 'alive' AND heartbeat_at < ? AND id <> ?"
							" ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"));
		sql_bind_int(st, 1, db_now_ms() - timeout_ms);
		sql_bind_text(st, 2, self);
		char *node = sql_step(st) == SQL_ROW ? sql_col_dup(st, 0) : NULL;
		sql_done(st);
		if (!node) {
			sql_rollback();
			db_unlock();
			return declared;
		}
		st = sql_prep("UPDATE nodes SET state = 'lost', running = 0 WHERE id = ?");
		sql_bind_text(st, 1, node);
		sql_step(st);
		sql_done(st);
		char **rq, **fl;
		size_t nrq, nf;
		lost_node_jobs(node, &rq, &nrq, &fl, &nf);
		int c = sql_commit();
		db_unlock();
		if (c < 0) {
			log_warn("cluster: declaring node %s lost: %s", node, sql_errmsg());
		} else {
			declared++;
			log_warn("cluster: node %s stopped answering: %zu always-on job(s) queued again, %zu job(s) failed",
				 node, nrq, nf);
			char *line = xasprintf("node %s stopped answering; the always-on sandbox starts again on another node\n",
					       node);
			for (size_t i = 0; i < nrq; i++)
				db_log_append(rq[i], LOG_SYSTEM, line, strlen(line));
			free(line);
			line = xasprintf("lost: node %s stopped answering\n", node);
			for (size_t i = 0; i < nf; i++)
				db_log_append(fl[i], LOG_SYSTEM, line, strlen(line));
			free(line);
		}
		free_ids(rq, nrq);
		free_ids(fl, nf);
		free(node);
		if (c < 0)
			return declared;
	}
}

int db_job_claim_next(const char *self, const char *engine, int64_t timeout_ms, char id[40])
{
	int64_t now = db_now_ms();
	db_lock();
	if (sql_begin() < 0) {
		db_unlock();
		return -EIO;
	}
	/*
	 * Oldest first among those this node may take: no preference, this node,
	 * or (unless pinned) a preference that let its grace pass or is not alive.
	 */
#define CLAIM_SQL                                                                                              \
	"SELECT id FROM jobs WHERE status = 'queued' AND files_pending = 0 AND (node_hint IS NULL OR node_hint = ?1" \
	" OR (node_pin = 0 AND (created_at < ?2 OR node_hint NOT IN"                                          \
	" (SELECT id FROM nodes WHERE state = 'alive' AND heartbeat_at >= ?3))))"                             \
	" ORDER BY created_at, seq LIMIT 1"
	struct sql_stmt *st = sql_prep(SQL_PICK(CLAIM_SQL, CLAIM_SQL " FOR UPDATE SKIP LOCKED"));
#undef CLAIM_SQL
	sql_bind_text(st, 1, self);
	sql_bind_int(st, 2, now - NODE_PLACE_GRACE_MS);
	sql_bind_int(st, 3, now - timeout_ms);
	int r = sql_step(st);
	if (r == SQL_ROW)
		snprintf(id, 40, "%s", sql_col_text(st, 0));
	sql_done(st);
	if (r == SQL_ROW) {
		st = sql_prep("UPDATE jobs SET status = 'running', started_at = ?, engine = ?, node = ? WHERE id = ? AND status = 'queued'");
		sql_bind_int(st, 1, now);
		sql_bind_text(st, 2, engine);
		sql_bind_text(st, 3, self);
		sql_bind_text(st, 4, id);
		if (sql_step(st) < 0 || sql_changes(st) != 1)
			r = -EIO;
		sql_done(st);
	}
	if (r == SQL_ROW && sql_commit() == 0) {
		db_unlock();
		return 1;
	}
	if (r < 0)
		log_warn("cluster: claim: %s", sql_errmsg());
	sql_rollback();
	db_unlock();
	return r < 0 ? r : 0;
}

void db_job_place(const char *id, int64_t user_id, const char *workspace, bool ws_in_store, const char *pin_node,
		  int64_t timeout_ms)
{
	int64_t alive_since = db_now_ms() - timeout_ms;
	char *node = pin_node ? xstrdup(pin_node) : NULL;
	bool pin = pin_node != NULL;
	db_lock();
	if (!node && workspace) {
		/* its disk is on a node: pinned there when the store has no copy of it */
		struct sql_stmt *st = sql_prep("SELECT c.node_id FROM node_cache c JOIN nodes n ON n.id = c.node_id"
					       " WHERE c.user_id = ? AND c.workspace = ? AND n.state = 'alive'"
					       " AND n.heartbeat_at >= ? ORDER BY c.used_at DESC LIMIT 1");
		sql_bind_int(st, 1, user_id);
		sql_bind_text(st, 2, workspace);
		sql_bind_int(st, 3, alive_since);
		if (sql_step(st) == SQL_ROW) {
			node = sql_col_dup(st, 0);
			pin = !ws_in_store;
		}
		sql_done(st);
	}
	if (!node) {
		/* the least loaded: its running and preferred jobs over its capacity */
		struct sql_stmt *st = sql_prep(
			"SELECT n.id FROM nodes n WHERE n.state = 'alive' AND n.heartbeat_at >= ? ORDER BY"
			" (SELECT COUNT(*) FROM jobs j WHERE (j.status = 'running' AND j.node = n.id)"
			" OR (j.status = 'queued' AND j.node_hint = n.id)) * 1000 / (CASE WHEN n.capacity > 0 THEN n.capacity ELSE 1 END),"
			" n.id LIMIT 1");
		sql_bind_int(st, 1, alive_since);
		if (sql_step(st) == SQL_ROW)
			node = sql_col_dup(st, 0);
		sql_done(st);
	}
	if (node) {
		struct sql_stmt *st = sql_prep("UPDATE jobs SET node_hint = ?, node_pin = ? WHERE id = ? AND status = 'queued'");
		sql_bind_text(st, 1, node);
		sql_bind_int(st, 2, pin);
		sql_bind_text(st, 3, id);
		sql_step(st);
		sql_done(st);
	}
	db_unlock();
	free(node);
}

void db_job_node(const char *id, char node[NODE_ID_MAX])
{
	node[0] = '\0';
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT node FROM jobs WHERE id = ?");
	sql_bind_text(st, 1, id);
	if (sql_step(st) == SQL_ROW && sql_col_text(st, 0))
		snprintf(node, NODE_ID_MAX, "%s", sql_col_text(st, 0));
	sql_done(st);
	db_unlock();
}

int db_job_hint(const char *id, char hint[NODE_ID_MAX], bool *pinned)
{
	hint[0] = '\0';
	*pinned = false;
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT node_hint, node_pin FROM jobs WHERE id = ?");
	sql_bind_text(st, 1, id);
	int r = -ENOENT;
	if (sql_step(st) == SQL_ROW) {
		snprintf(hint, NODE_ID_MAX, "%s", sql_col_text(st, 0) ? sql_col_text(st, 0) : "");
		*pinned = sql_col_int(st, 1) != 0;
		r = 0;
	}
	sql_done(st);
	db_unlock();
	return r;
}

int db_job_stop_queued(const char *id)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE jobs SET status = 'failed', error = 'stopped', finished_at = ?"
				       " WHERE id = ? AND status = 'queued'");
	sql_bind_int(st, 1, db_now_ms());
	sql_bind_text(st, 2, id);
	int r = sql_step(st) >= 0 && sql_changes(st) > 0;
	sql_done(st);
	db_unlock();
	return r;
}

void db_node_set_proxy(const char *id, const char *proxy)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE nodes SET proxy = ? WHERE id = ?");
	sql_bind_text(st, 1, proxy);
	sql_bind_text(st, 2, id);
	sql_step(st);
	sql_done(st);
	db_unlock();
}

void db_node_cache_touch(const char *self, int64_t user_id, const char *workspace)
{
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO node_cache(node_id, user_id, workspace, used_at) VALUES(?, ?, ?, ?)"
				       " ON CONFLICT(node_id, user_id, workspace) DO UPDATE SET used_at = excluded.used_at");
	sql_bind_text(st, 1, self);
	sql_bind_int(st, 2, user_id);
	sql_bind_text(st, 3, workspace);
	sql_bind_int(st, 4, db_now_ms());
	sql_step(st);
	sql_done(st);
	db_unlock();
}

char **db_node_jobs(const char *self, const char *status, size_t *n)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT id FROM jobs WHERE node = ? AND status = ? ORDER BY created_at, seq");
	sql_bind_text(st, 1, self);
	sql_bind_text(st, 2, status);
	char **ids = ids_of(st, n);
	db_unlock();
	return ids;
}

void db_node_ws_release(const char *self)
{
	db_lock();
	struct sql_stmt *st = sql_prep("UPDATE workspaces SET in_use_by = NULL WHERE in_use_by IN"
				       " (SELECT id FROM jobs WHERE node = ?)");
	sql_bind_text(st, 1, self);
	sql_step(st);
	sql_done(st);
	db_unlock();
}
