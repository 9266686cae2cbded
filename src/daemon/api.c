// SPDX-License-Identifier: MIT
/*
 * Top-level routing of /api/v1 and authentication. Every resource handler
 * receives an authenticated request (r->user_id set) and answers 404 for
 * another user's resources.
 */
#include <string.h>

#include "access.h"
#include "db.h"
#include "images.h"
#include "cluster.h"
#include "http.h"
#include "openapi.h"

#define MAGS_VERSION "0.1.0"

const char *api_engine_name; /* set by main: "kvm" or "tcg" */

int64_t api_authenticate(struct req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	if (!*h || strlen(h) > 256)
		return 0;
	return db_token_auth(h, &r->token_id);
}

enum MHD_Result api_route(struct req *r)
{
	if (!strcmp(r->path, "/health")) {
		if (strcmp(r->method, "GET"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /health (use GET)", r->method);
		json_t *o = json_object();
		json_object_set_new(o, "status", json_string("ok"));
		json_object_set_new(o, "version", json_string(MAGS_VERSION));
		json_object_set_new(o, "engine", json_string(api_engine_name ? api_engine_name : "none"));
		images_health(o);
		json_object_set_new(o, "access", access_status_json());
		return http_reply_json(r, MHD_HTTP_OK, o);
	}
	if (!strcmp(r->path, "/openapi.json") && !strcmp(r->method, "GET"))
		return http_reply_raw_json(r, api_openapi_json, api_openapi_json_len);
	if (!strncmp(r->path, "/cli-logins", 11) && (r->path[11] == '\0' || r->path[11] == '/'))
		return api_cli_login(r, r->path + 11);
	if (!r->user_id)
		r->user_id = api_authenticate(r);
	if (!r->user_id)
		return http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token (send Authorization: Bearer TOKEN)");
	if (!strncmp(r->path, "/mags-jobs", 10) && (r->path[10] == '\0' || r->path[10] == '/'))
		return api_jobs(r, r->path + 10);
	if (!strncmp(r->path, "/workspaces", 11) && (r->path[11] == '\0' || r->path[11] == '/'))
		return api_workspaces(r, r->path + 11);
	if (!strncmp(r->path, "/url-aliases", 12) && (r->path[12] == '\0' || r->path[12] == '/'))
		return api_url_aliases(r, r->path + 12);
	if (!strncmp(r->path, "/cron-jobs", 10) && (r->path[10] == '\0' || r->path[10] == '/'))
		return api_cron(r, r->path + 10);
	if (!strncmp(r->path, "/tokens", 7) && (r->path[7] == '\0' || r->path[7] == '/'))
		return api_tokens(r, r->path + 7);
	if (!strcmp(r->path, "/nodes"))
		return api_nodes(r);
	if (!strcmp(r->path, "/whoami"))
		return api_whoami(r);
	return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /api/v1%.200s", r->method, r->path);
}
