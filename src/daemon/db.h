/* SPDX-License-Identifier: MIT */
/*
 * magsd's state in SQLite or PostgreSQL (sql.h): users, API tokens (hashed),
 * jobs and their logs, workspaces, URLs. One connection guarded by a mutex;
 * every function is safe to call from any thread. Times are milliseconds
 * since the Unix epoch.
 */
#ifndef MAGS_DB_H
#define MAGS_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum log_stream {
	LOG_STDOUT = 1,
	LOG_STDERR = 2,
	LOG_SYSTEM = 3,
};

struct job_row {
	char id[40];
	int64_t user_id;
	char status[16];	/* queued | running | completed | failed */
	char *script;		/* owned */
	char type[8];		/* inline | file */
	int timeout;		/* seconds, 0 = none */
	bool has_exit;
	int exit_code;
	char *error;		/* owned, may be NULL */
	char *engine;		/* owned, may be NULL */
	int64_t created_at, started_at, finished_at;	/* 0 = not yet */
	char *workspace;	/* owned; NULL = a local workspace (or none when ephemeral) */
	bool persist, base_image, ephemeral;
	char *from_ws;		/* owned; --from NAME, may be NULL */
	int files_pending;	/* declared files not uploaded yet; the job waits for them */
	bool url;		/* asked for a public URL at submit */
	int port;		/* its guest port, 0 = default */
	bool ssh;		/* SSH asked for at submit */
	char *ssh_key;		/* owned, may be NULL: the public key given with it */
	bool always_on;		/* a server: kept running, restarted, put to sleep when idle */
	char *startup;		/* owned, may be NULL: runs at every start and wake, before the script */
	int idle_timeout;	/* seconds of no traffic before an always-on sandbox sleeps; 0 = never, -1 = magsd's default */
	char cron_id[40];	/* the schedule that submitted it, "" = none */
	bool sleeping;		/* an always-on sandbox asleep (snapshot on disk, no QEMU) */
	int restarts;		/* times magsd restarted its VM (always-on) */
	char *image;		/* owned; the guest image's name, NULL (jobs from before schema 5) = the default */
	char node[64];		/* the magsd node that claimed it (schema 6), "" = none */
};

/* A public URL's label and what it leads to (schema 3, table urls). */
struct url_row {
	char label[64];
	int64_t user_id;
	char workspace[64];	/* "" = none: the URL of one job */
	char job_id[40];	/* "" = none: the URL of a workspace */
	int port;		/* guest port */
	bool alias;
	int64_t created_at;
};

struct log_row {
	int64_t seq;
	int stream;
	int64_t time;
	uint8_t *data;	/* owned */
	size_t len;
};

/*
 * Opens target, a SQLite file path or a postgres:// (postgresql://) URL, and
 * brings its schema up to date (migrations). Refuses a database whose schema
 * is newer than this magsd's. 0 or < 0 with err set.
 */
int db_open(const char *target, struct err *err);
void db_close(void);
int64_t db_now_ms(void);

/*
 * Users and API tokens (db_users.c). A token is "mags_" and 40 hex digits,
 * shown once: only its SHA-256 and its first TOKEN_PREFIX_LEN characters
 * (to tell tokens apart in lists) are stored.
 */
#define TOKEN_PREFIX_LEN 12
#define TOKEN_NAME_MAX 64
#define TOKENS_PER_USER_MAX 100

/* The id of user NAME, created when new (0 with err set on failure). */
int64_t db_user_ensure(const char *name, struct err *err);
/* The name of user id (caller frees), or NULL. */
char *db_user_name(int64_t user_id);
/* Every user: [{"name", "created_at", "tokens"}] (magsd user list). */
json_t *db_user_list(void);
/*
 * A new token named name for user_id: *token is the plaintext (caller frees),
 * *id its id. Returns 0, -409 past TOKENS_PER_USER_MAX, or -500, with err set.
 */
int db_token_new(int64_t user_id, const char *name, char **token, int64_t *id, struct err *err);
/* For the CLI's `magsd token create`: a token for user NAME (created if new). */
int db_token_create(const char *user, char **token, struct err *err);
/* The user that owns token (0: none) and, when token_id is not NULL, the token's id. */
int64_t db_token_auth(const char *token, int64_t *token_id);
int64_t db_token_user(const char *token);
/* A user's tokens, oldest first: [{"id", "name", "prefix", "created_at", "last_used_at"}]. */
json_t *db_token_list(int64_t user_id);
/* Deletes token id of user_id (0 = any user). Returns 0 or -ENOENT. */
int db_token_revoke(int64_t user_id, int64_t id);

int db_job_insert(const struct job_row *j, struct err *err);

/* URLs are SCHEME://LABEL.HOST_SUFFIX (e.g. "http", "localhost:7558"); until set, "url" is null. */
void db_url_base(const char *scheme, const char *host_suffix);
json_t *db_url_json(const char *label);
/* The row of label; 0 or -ENOENT. */
int db_url_get(const char *label, struct url_row *u);
/* The (non-alias) URL of a workspace, or of job_id when workspace is NULL; 0 or -ENOENT. */
int db_url_of(int64_t user_id, const char *workspace, const char *job_id, struct url_row *u);
/* Adds u, or updates the port of the same row; 409 when the label belongs to something else. */
int db_url_put(const struct url_row *u, struct err *err);
/* Deletes a user's label (alias or not); 0 or -ENOENT. */
int db_url_delete(const char *label, int64_t user_id, bool alias);
/* Drops every label of a deleted workspace. */
void db_url_forget_workspace(int64_t user_id, const char *workspace);
json_t *db_url_alias_json(const struct url_row *u);
json_t *db_url_aliases(int64_t user_id);
/* The newest running job of a workspace (caller frees), or NULL. */
char *db_running_job_of(int64_t user_id, const char *workspace);
/* Fills *j (free with db_job_row_free). user_id 0 = any user. Returns 0, -ENOENT. */
int db_job_get(const char *id, int64_t user_id, struct job_row *j);
/* User user_id's running (else queued) job on workspace, the newest. 0 or -ENOENT. */
int db_job_get_running_ws(const char *workspace, int64_t user_id, struct job_row *j);
void db_job_row_free(struct job_row *j);
/* Lists a user's jobs newest first as a JSON array (new reference). */
json_t *db_job_list(int64_t user_id, const char *status, const char *workspace, int limit);
/* Moves a queued job to running. Returns 1 when it was queued, 0 otherwise. */
int db_job_claim(const char *id, const char *engine, const char *node);
/* Final state. exit_code < 0 means none. */
void db_job_finish(const char *id, int exit_code, bool has_exit, const char *error);
/* Ids of jobs in status, oldest first; caller frees each and the array. */
char **db_jobs_with_status(const char *status, size_t *n);

/* Appends one log entry, returning its seq (> 0). */
int64_t db_log_append(const char *job_id, int stream, const void *data, size_t len);
/* Entries with seq > since, at most limit; caller frees with db_log_rows_free. */
struct log_row *db_log_read(const char *job_id, int64_t since, int limit, size_t *n);
void db_log_rows_free(struct log_row *rows, size_t n);

/* A workspace (-w NAME) as the database keeps it. */
struct ws_row {
	int64_t user_id;
	char name[72];
	bool persistent;	/* synced to the object store */
	bool base_image;	/* frozen; others start --from it */
	char *parent;		/* owned; the base it was created --from, or NULL */
	char *in_use_by;	/* owned; the job holding it, or NULL */
	int64_t version;	/* last version synced, 0 = never */
	int64_t synced_at, created_at, updated_at;
};

int db_ws_get(int64_t user_id, const char *name, struct ws_row *w);
void db_ws_row_free(struct ws_row *w);
/*
 * Creates the workspace if new (persistent, parent) and marks it in use by
 * job_id. Fills *w either way (free it). Returns 0, or -EBUSY when another
 * job holds it (w->in_use_by says which).
 */
int db_ws_acquire(int64_t user_id, const char *name, const char *job_id, bool persistent, const char *parent,
		  struct ws_row *w);
void db_ws_release(int64_t user_id, const char *name, const char *job_id);
/* Start-up: no job runs, so no workspace is in use. */
void db_ws_release_all(void);
void db_ws_synced(int64_t user_id, const char *name, int64_t version);
/* Records a workspace found in the object store (no-op when the row exists). */
void db_ws_adopt(int64_t user_id, const char *name, bool persistent, bool base_image, const char *parent,
		 int64_t version);
/* Sets (never clears) the persistent and base-image flags. */
void db_ws_set_flags(int64_t user_id, const char *name, bool persistent, bool base_image);
/* Deletes the row. -ENOENT, -EBUSY (*holder: the job), -EEXIST (*child: a workspace created --from it). */
int db_ws_delete(int64_t user_id, const char *name, char **holder, char **child);
/* A user's workspaces by name; free each with db_ws_row_free, then the array. */
struct ws_row *db_ws_list(int64_t user_id, size_t *n);

/* Files a job declared or uploaded, delivered to its working directory before the script. */
struct file_row {
	int seq;
	char *name;	/* owned; relative path, checked */
	unsigned mode;
	int64_t size;	/* -1 = not known yet */
	bool uploaded;
};
int db_file_add(const char *job_id, int seq, const char *name, unsigned mode, int64_t size, bool uploaded);
/* Records an upload (declared or not); sets *seq. Returns how many declared files are still missing. */
int db_file_uploaded(const char *job_id, const char *name, unsigned mode, int64_t size, int *seq);
struct file_row *db_file_list(const char *job_id, size_t *n);
void db_file_rows_free(struct file_row *rows, size_t n);

/* ISO 8601 UTC string for ms since the epoch, or null for 0 (new reference). */
json_t *db_time_json(int64_t ms);
/* Renders a job as the API's JSON object (new reference). */
json_t *db_job_json(const struct job_row *j);
/* Always-on bookkeeping: asleep or awake; one more VM restart; back to queued (magsd restarts it). */
void db_job_set_sleeping(const char *id, bool sleeping);
void db_job_restarted(const char *id);
void db_job_requeue(const char *id);
/* PATCH /mags-jobs/:id: the settings that can change while a job runs. */
void db_job_update(const char *id, bool always_on, int timeout, int idle_timeout);

#endif
