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
#include "sql.h"
#include "xmalloc.h"

#define TOKEN_RANDOM 20			/* bytes of randomness in a token */
#define TOKEN_TOUCH_MS 60000		/* last_used_at granularity */

static void hash_token(const char *token, char out[65])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), h);
	hex_encode(h, sizeof h, out);
}

static json_t *time_or_null(struct sql_stmt *st, int i)
{
	return sql_col_null(st, i) ? json_null() : db_time_json(sql_col_int(st, i));
}

int64_t db_user_ensure(const char *name, struct err *err)
{
	db_lock();
	struct sql_stmt *st = sql_prep("INSERT INTO users(name, created_at) VALUES(?, ?) ON CONFLICT(name) DO NOTHING");
	sql_bind_text(st, 1, name);
	sql_bind_int(st, 2, db_now_ms());
	sql_step(st);
	sql_done(st);
	st = sql_prep("SELECT id FROM users WHERE name = ?");
	sql_bind_text(st, 1, name);
	int64_t id = sql_step(st) == SQL_ROW ? sql_col_int(st, 0) : 0;
	sql_done(st);
	if (!id)
		err_set(err, 500, "store user %s: %s", name, sql_errmsg());
	db_unlock();
	return id;
}

char *db_user_name(int64_t user_id)
{
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT name FROM users WHERE id = ?");
	sql_bind_int(st, 1, user_id);
	char *name = sql_step(st) == SQL_ROW ? sql_col_dup(st, 0) : NULL;
	sql_done(st);
	db_unlock();
	return name;
}

json_t *db_user_list(void)
{
	json_t *arr = json_array();
	db_lock();
	struct sql_stmt *st = sql_prep("SELECT name, created_at, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)"
				       " FROM users u ORDER BY name");
	while (sql_step(st) == SQL_ROW) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(sql_col_text(st, 0)));
		json_object_set_new(o, "created_at", db_time_json(sql_col_int(st, 1)));
		json_object_set_new(o, "tokens", json_integer(sql_col_int(st, 2)));
		json_array_append_new(arr, o);
	}
	sql_done(st);
	db_unlock();
	return arr;
}

static int64_t token_count(int64_t user_id)
{
	struct sql_stmt *st = sql_prep("SELECT COUNT(*) FROM tokens WHERE user_id = ?");
	sql_bind_int(st, 1, user_id);
	int64_t n = sql_step(st) == SQL_ROW ? sql_col_int(st, 0) : 0;
	sql_done(st);
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
	memcpy(prefix, tok, TOKEN_PREFIX_LEN);
	prefix[TOKEN_PREFIX_LEN] = '\0';
	int r = 0;
	db_lock();
	if (token_count(user_id) >= TOKENS_PER_USER_MAX) {
		db_unlock();
		return err_set(err, 409, "this user already has %d tokens: revoke some first", TOKENS_PER_USER_MAX);
	}
	struct sql_stmt *st = sql_prep("INSERT INTO tokens(user_id, hash, created_at, name, prefix) VALUES(?, ?, ?, ?, ?)"
				       " RETURNING id");
	sql_bind_int(st, 1, user_id);
	sql_bind_text(st, 2, hash);
	sql_bind_int(st, 3, db_now_ms());
	sql_bind_text(st, 4, name);
	sql_bind_text(st, 5, prefix);
	*id = 0;
	if (sql_step(st) == SQL_ROW)
		*id = sql_col_int(st, 0);
	else
		r = err_set(err, 500, "store token: %s", sql_errmsg());
	sql_done(st);
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
	struct sql_stmt *st = sql_prep("SELECT user_id, id, COALESCE(last_used_at, 0) FROM tokens WHERE hash = ?");
	sql_bind_text(st, 1, hash);
	int64_t uid = 0, id = 0, used = 0;
	if (sql_step(st) == SQL_ROW) {
		uid = sql_col_int(st, 0);
		id = sql_col_int(st, 1);
		used = sql_col_int(st, 2);
	}
	sql_done(st);
	int64_t now = db_now_ms();
	if (uid && now - used >= TOKEN_TOUCH_MS) {
		st = sql_prep("UPDATE tokens SET last_used_at = ? WHERE id = ?");
		sql_bind_int(st, 1, now);
		sql_bind_int(st, 2, id);
		sql_step(st);
		sql_done(st);
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
	struct sql_stmt *st = sql_prep("SELECT id, name, prefix, created_at, last_used_at FROM tokens WHERE user_id = ?"
				       " ORDER BY id");
	sql_bind_int(st, 1, user_id);
	while (sql_step(st) == SQL_ROW) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(sql_col_int(st, 0)));
		const char *name = sql_col_text(st, 1), *prefix = sql_col_text(st, 2);
		json_object_set_new(o, "name", name ? json_string(name) : json_null());
		json_object_set_new(o, "prefix", prefix ? json_string(prefix) : json_null());
		json_object_set_new(o, "created_at", db_time_json(sql_col_int(st, 3)));
		json_object_set_new(o, "last_used_at", time_or_null(st, 4));
		json_array_append_new(arr, o);
	}
	sql_done(st);
	db_unlock();
	return arr;
}

int db_token_revoke(int64_t user_id, int64_t id)
{
	db_lock();
	struct sql_stmt *st = sql_prep("DELETE FROM tokens WHERE id = ? AND (?2 = 0 OR user_id = ?2)");
	sql_bind_int(st, 1, id);
	sql_bind_int(st, 2, user_id);
	int64_t n = sql_step(st) == SQL_DONE ? sql_changes(st) : 0;
	sql_done(st);
	db_unlock();
	return n > 0 ? 0 : -ENOENT;
}
