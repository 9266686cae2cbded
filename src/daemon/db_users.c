// SPDX-License-Identifier: MIT
/*
 * Users and API tokens; see db.h. Tokens are stored as the hex SHA-256 of
 * the plaintext (a token is 160 random bits, so a plain hash is enough: no
 * salt or slow hash is needed against guessing), plus a short prefix for
 * lists. last_used_at is written at most once a minute per token.
 */
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base64.h"
#include "db.h"
#include "db_internal.h"
#include "xmalloc.h"

#define TOKEN_RANDOM 20			/* bytes of randomness in a token */
#define TOKEN_TOUCH_MS 60000		/* last_used_at granularity */

static void hash_token(const char *token, char out[65])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), h);
	hex_encode(h, sizeof h, out);
}

static json_t *time_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : db_time_json(sqlite3_column_int64(st, i));
}

int64_t db_user_ensure(const char *name, struct err *err)
{
	db_lock();
	sqlite3_stmt *st = db_prep("INSERT INTO users(name, created_at) VALUES(?, ?) ON CONFLICT(name) DO NOTHING");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, db_now_ms());
	sqlite3_step(st);
	sqlite3_finalize(st);
	st = db_prep("SELECT id FROM users WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	db_unlock();
	if (!id)
		err_set(err, 500, "store user %s: %s", name, sqlite3_errmsg(db_sqlite()));
	return id;
}

char *db_user_name(int64_t user_id)
{
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT name FROM users WHERE id = ?");
	sqlite3_bind_int64(st, 1, user_id);
	char *name = sqlite3_step(st) == SQLITE_ROW ? xstrdup((const char *)sqlite3_column_text(st, 0)) : NULL;
	sqlite3_finalize(st);
	db_unlock();
	return name;
}

json_t *db_user_list(void)
{
	json_t *arr = json_array();
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT name, created_at, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)"
				   " FROM users u ORDER BY name");
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string((const char *)sqlite3_column_text(st, 0)));
		json_object_set_new(o, "created_at", db_time_json(sqlite3_column_int64(st, 1)));
		json_object_set_new(o, "tokens", json_integer(sqlite3_column_int64(st, 2)));
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(st);
	db_unlock();
	return arr;
}

static int64_t token_count(int64_t user_id)
{
	sqlite3_stmt *st = db_prep("SELECT COUNT(*) FROM tokens WHERE user_id = ?");
	sqlite3_bind_int64(st, 1, user_id);
	int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return n;
}

int db_token_new(int64_t user_id, const char *name, char **token, int64_t *id, struct err *err)
{
	*token = NULL;
	unsigned char rnd[TOKEN_RANDOM];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return err_set(err, 500, "getrandom: %s", strerror(errno));
	char tok[8 + 2 * TOKEN_RANDOM] = "mags_";
	hex_encode(rnd, sizeof rnd, tok + 5);
	char hash[65], prefix[TOKEN_PREFIX_LEN + 1];
	hash_token(tok, hash);
	snprintf(prefix, sizeof prefix, "%s", tok);
	int r = 0;
	db_lock();
	if (token_count(user_id) >= TOKENS_PER_USER_MAX) {
		db_unlock();
		return err_set(err, 409, "this user already has %d tokens: revoke some first", TOKENS_PER_USER_MAX);
	}
	sqlite3_stmt *st = db_prep("INSERT INTO tokens(user_id, hash, created_at, name, prefix) VALUES(?, ?, ?, ?, ?)");
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, db_now_ms());
	sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, prefix, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		r = err_set(err, 500, "store token: %s", sqlite3_errmsg(db_sqlite()));
	*id = sqlite3_last_insert_rowid(db_sqlite());
	sqlite3_finalize(st);
	db_unlock();
	if (r == 0)
		*token = xstrdup(tok);
	return r;
}

int db_token_create(const char *user, char **token, struct err *err)
{
	int64_t uid = db_user_ensure(user, err), id;
	return uid ? db_token_new(uid, "magsd token create", token, &id, err) : -500;
}

int64_t db_token_auth(const char *token, int64_t *token_id)
{
	char hash[65];
	hash_token(token, hash);
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT user_id, id, COALESCE(last_used_at, 0) FROM tokens WHERE hash = ?");
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	int64_t uid = 0, id = 0, used = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		uid = sqlite3_column_int64(st, 0);
		id = sqlite3_column_int64(st, 1);
		used = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	int64_t now = db_now_ms();
	if (uid && now - used >= TOKEN_TOUCH_MS) {
		st = db_prep("UPDATE tokens SET last_used_at = ? WHERE id = ?");
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2, id);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	db_unlock();
	if (token_id)
		*token_id = id;
	return uid;
}

int64_t db_token_user(const char *token)
{
	return db_token_auth(token, NULL);
}

json_t *db_token_list(int64_t user_id)
{
	json_t *arr = json_array();
	db_lock();
	sqlite3_stmt *st = db_prep("SELECT id, name, prefix, created_at, last_used_at FROM tokens WHERE user_id = ?"
				   " ORDER BY id");
	sqlite3_bind_int64(st, 1, user_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
		const unsigned char *name = sqlite3_column_text(st, 1), *prefix = sqlite3_column_text(st, 2);
		json_object_set_new(o, "name", name ? json_string((const char *)name) : json_null());
		json_object_set_new(o, "prefix", prefix ? json_string((const char *)prefix) : json_null());
		json_object_set_new(o, "created_at", db_time_json(sqlite3_column_int64(st, 3)));
		json_object_set_new(o, "last_used_at", time_or_null(st, 4));
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(st);
	db_unlock();
	return arr;
}

int db_token_revoke(int64_t user_id, int64_t id)
{
	db_lock();
	sqlite3_stmt *st = db_prep("DELETE FROM tokens WHERE id = ? AND (?2 = 0 OR user_id = ?2)");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_step(st);
	int n = sqlite3_changes(db_sqlite());
	sqlite3_finalize(st);
	db_unlock();
	return n > 0 ? 0 : -ENOENT;
}
