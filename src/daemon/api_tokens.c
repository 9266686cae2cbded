// SPDX-License-Identifier: MIT
/*
 * REST /tokens and /whoami: a user's API tokens.
 *   GET    /tokens       the caller's tokens (never the secrets)   200 {"tokens": [...]}
 *   POST   /tokens       {"name": N} a new token, shown once        201 {..., "token": T}
 *   DELETE /tokens/:id   revoke one (the caller's own may go too)  200 {"deleted": true, "id": ID}
 *   GET    /whoami       the user and token of this request        200
 * Another user's token id is 404, like a missing one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiparse.h"
#include "db.h"
#include "http.h"
#include "jobspec.h"
#include "xmalloc.h"

static enum MHD_Result token_create(struct req *r)
{
	struct err err = { 0 };
	char name[TOKEN_NAME_MAX + 1] = "api";
	char *tok = NULL;
	int64_t id = 0;
	int rc = http_body_text_field(r, "POST /tokens", "name", TOKEN_NAME_MAX, name, &err);
	if (rc == 0)
		rc = db_token_new(r->user_id, name, &tok, &id, &err);
	if (rc < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : err.code == 409 ? MHD_HTTP_CONFLICT :
				       err.code == 400 ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
	json_t *list = db_token_list(r->user_id), *o = NULL;
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t)
		if (json_integer_value(json_object_get(t, "id")) == id)
			o = json_incref(t);
	json_decref(list);
	if (!o)
		o = json_pack("{s:I}", "id", (json_int_t)id);
	json_object_set_new(o, "token", json_string(tok));
	free(tok);
	return http_reply_json(r, MHD_HTTP_CREATED, o);
}

static enum MHD_Result token_list(struct req *r)
{
	json_t *list = db_token_list(r->user_id);
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t)
		json_object_set_new(t, "current", json_boolean(json_integer_value(json_object_get(t, "id")) == r->token_id));
	return http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "tokens", list));
}

static enum MHD_Result token_revoke(struct req *r, const char *ids)
{
	long long id = apiparse_token_id(ids);
	if (id <= 0 || db_token_revoke(r->user_id, id) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "token %.40s not found", ids);
	return http_reply_json(r, MHD_HTTP_OK, json_pack("{s:b,s:I}", "deleted", 1, "id", (json_int_t)id));
}

enum MHD_Result api_tokens(struct req *r, const char *rest)
{
	const char *m = r->method;
	if (!*rest || !strcmp(rest, "/")) {
		if (!strcmp(m, "GET"))
			return token_list(r);
		if (!strcmp(m, "POST"))
			return token_create(r);
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /tokens (use GET or POST)", m);
	}
	if (!strcmp(m, "DELETE"))
		return token_revoke(r, rest + 1);
	return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /tokens/ID (use DELETE)", m);
}

enum MHD_Result api_whoami(struct req *r)
{
	if (strcmp(r->method, "GET"))
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /whoami (use GET)", r->method);
	char *name = db_user_name(r->user_id);
	json_t *o = json_pack("{s:s,s:I}", "user", name ? name : "?", "token_id", (json_int_t)r->token_id);
	free(name);
	return http_reply_json(r, MHD_HTTP_OK, o);
}
