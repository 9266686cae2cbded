// SPDX-License-Identifier: MIT
/*
 * The browser approval flow behind `mags login` (REST /cli-logins):
 *   POST /cli-logins                  (no token) a pending login: code, secret, verify_url
 *   GET  /cli-logins/:code/token?secret=S  (no token) the CLI polls: pending, denied, or
 *                                     approved with a new token (handed out once)
 *   GET  /cli-logins/:code            (token) what the approval page shows
 *   POST /cli-logins/:code/approve    (token) makes a token for the approving user
 *   POST /cli-logins/:code/deny       (token)
 * Pending logins live in memory for LOGIN_TTL_MS; the secret (known only to
 * the CLI) is what entitles a poll to the token, the short code is what the
 * user compares in the browser. Unknown, expired or wrong-secret: 404.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base64.h"
#include "db.h"
#include "http.h"
#include "jobspec.h"
#include "xmalloc.h"

#define LOGIN_TTL_MS (10 * 60 * 1000)
#define LOGINS_MAX 64			/* pending at once */
#define LOGIN_CLIENT_MAX 64		/* bytes of the client's description */

enum login_state { LOGIN_PENDING, LOGIN_APPROVED, LOGIN_DENIED };

struct login {
	bool used;
	char code[10];		/* "ABCD-EFGH" */
	char secret[41];	/* 40 hex digits */
	char client[LOGIN_CLIENT_MAX + 1];
	enum login_state state;
	char *token;		/* APPROVED: handed to the first poll with the secret */
	char user[65];
	int64_t created, expires;
};

static struct {
	pthread_mutex_t mu;
	struct login l[LOGINS_MAX];
} L = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *const state_name[] = { "pending", "approved", "denied" };

static void login_clear(struct login *l)
{
	free(l->token);
	memset(l, 0, sizeof *l);
}

/* Drops expired logins. Under L.mu. */
static void expire_locked(int64_t now)
{
	for (int i = 0; i < LOGINS_MAX; i++)
		if (L.l[i].used && now >= L.l[i].expires)
			login_clear(&L.l[i]);
}

/* The login with code (case-insensitive), or NULL. Under L.mu. */
static struct login *find_locked(const char *code)
{
	for (int i = 0; i < LOGINS_MAX; i++)
		if (L.l[i].used && !strcasecmp(L.l[i].code, code))
			return &L.l[i];
	return NULL;
}

static void new_code(char out[10])
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no 0/O, 1/I */
	uint8_t b[8];
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		abort();
	for (int i = 0, k = 0; i < 9; i++)
		out[i] = i == 4 ? '-' : alphabet[b[k++] % 32];
	out[9] = '\0';
}

static enum MHD_Result login_start(struct req *r)
{
	struct err err = { 0 };
	char client[LOGIN_CLIENT_MAX + 1] = "mags CLI";
	if (http_body_text_field(r, "POST /cli-logins", "client", LOGIN_CLIENT_MAX, client, &err) < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	uint8_t rnd[20];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "getrandom failed");
	int64_t now = db_now_ms();
	pthread_mutex_lock(&L.mu);
	expire_locked(now);
	struct login *l = NULL;
	for (int i = 0; i < LOGINS_MAX && !l; i++)
		if (!L.l[i].used)
			l = &L.l[i];
	if (l) {
		l->used = true;
		do
			new_code(l->code);
		while (find_locked(l->code) != l);
		hex_encode(rnd, sizeof rnd, l->secret);
		snprintf(l->client, sizeof l->client, "%s", client);
		l->created = now;
		l->expires = now + LOGIN_TTL_MS;
	}
	json_t *o = l ? json_pack("{s:s,s:s,s:o,s:i}", "code", l->code, "secret", l->secret, "expires_at",
				  db_time_json(l->expires), "interval", 1) : NULL;
	pthread_mutex_unlock(&L.mu);
	if (!o)
		return http_reply_error(r, MHD_HTTP_CONFLICT, "too many logins waiting for approval; try again in a few minutes");
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char *url = xasprintf("http://%s/dashboard/#/approve/%s", host && *host && !strpbrk(host, "/\\\"<> ") ? host
				     : "127.0.0.1:7557", json_string_value(json_object_get(o, "code")));
	json_object_set_new(o, "verify_url", json_string(url));
	free(url);
	return http_reply_json(r, MHD_HTTP_CREATED, o);
}

/* GET /cli-logins/:code/token?secret=S: no token needed, the secret is the proof. */
static enum MHD_Result login_poll(struct req *r, const char *code)
{
	const char *secret = http_query(r, "secret");
	pthread_mutex_lock(&L.mu);
	expire_locked(db_now_ms());
	struct login *l = find_locked(code);
	if (!l || !secret || strcmp(secret, l->secret)) {
		pthread_mutex_unlock(&L.mu);
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no login %.20s waiting (unknown, expired or already used)", code);
	}
	json_t *o = json_pack("{s:s}", "status", state_name[l->state]);
	if (l->state == LOGIN_APPROVED) {
		json_object_set_new(o, "token", json_string(l->token));
		json_object_set_new(o, "user", json_string(l->user));
	}
	if (l->state != LOGIN_PENDING)
		login_clear(l); /* the token is handed out once */
	pthread_mutex_unlock(&L.mu);
	return http_reply_json(r, MHD_HTTP_OK, o);
}

/* GET, approve or deny, by a signed-in user. */
static enum MHD_Result login_decide(struct req *r, const char *code, const char *action)
{
	pthread_mutex_lock(&L.mu);
	expire_locked(db_now_ms());
	struct login *l = find_locked(code);
	if (!l) {
		pthread_mutex_unlock(&L.mu);
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no login %.20s waiting (unknown or expired)", code);
	}
	if (*action && l->state != LOGIN_PENDING) {
		pthread_mutex_unlock(&L.mu);
		return http_reply_error(r, MHD_HTTP_CONFLICT, "login %s was already %s", l->code, state_name[l->state]);
	}
	struct err err = { 0 };
	if (!strcmp(action, "approve")) {
		char *name = xasprintf("mags login: %s", l->client);
		int64_t id;
		char *user = db_user_name(r->user_id);
		if (db_token_new(r->user_id, name, &l->token, &id, &err) == 0) {
			l->state = LOGIN_APPROVED;
			snprintf(l->user, sizeof l->user, "%s", user ? user : "?");
		}
		free(user);
		free(name);
	} else if (!strcmp(action, "deny")) {
		l->state = LOGIN_DENIED;
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o}", "code", l->code, "client", l->client, "status",
			      state_name[l->state], "created_at", db_time_json(l->created), "expires_at",
			      db_time_json(l->expires));
	pthread_mutex_unlock(&L.mu);
	if (err.msg[0]) {
		json_decref(o);
		return http_reply_error(r, err.code == 409 ? MHD_HTTP_CONFLICT : MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
	}
	return http_reply_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result api_cli_login(struct req *r, const char *rest)
{
	const char *m = r->method;
	if (!*rest || !strcmp(rest, "/")) {
		if (strcmp(m, "POST"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /cli-logins (use POST)", m);
		return login_start(r);
	}
	char code[16];
	const char *slash = strchr(rest + 1, '/');
	size_t n = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
	if (n == 0 || n >= sizeof code)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such login");
	memcpy(code, rest + 1, n);
	code[n] = '\0';
	const char *action = slash ? slash + 1 : "";
	if (!strcmp(action, "token")) {
		if (strcmp(m, "GET"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here (use GET)", m);
		return login_poll(r, code);
	}
	if (strcmp(action, "") && strcmp(action, "approve") && strcmp(action, "deny"))
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /api/v1/cli-logins/CODE/%.40s", m, action);
	if (strcmp(m, *action ? "POST" : "GET"))
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here (use %s)", m,
					*action ? "POST" : "GET");
	if (!r->user_id)
		r->user_id = api_authenticate(r);
	if (!r->user_id)
		return http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token (send Authorization: Bearer TOKEN)");
	return login_decide(r, code, action);
}
