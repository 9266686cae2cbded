// SPDX-License-Identifier: MIT
/*
 * /api/v1/workspaces: list, show, delete (here and in the object store), and
 * sync (push to the object store now). A workspace in use is synced through
 * its job's worker, which freezes the guest's filesystem for the copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "http.h"
#include "jobs.h"
#include "jobspec.h"
#include "workspace.h"

static enum MHD_Result reply_err(struct req *r, const struct err *err)
{
	unsigned status = err->code == 404 ? MHD_HTTP_NOT_FOUND
			  : err->code == 409 ? MHD_HTTP_CONFLICT
			  : err->code == 400 ? MHD_HTTP_BAD_REQUEST
			  : MHD_HTTP_INTERNAL_SERVER_ERROR;
	return http_reply_error(r, status, "%s", err->msg);
}

enum MHD_Result api_ws_sync(struct req *r, const char *name)
{
	struct ws_row w;
	if (db_ws_get(r->user_id, name, &w) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no workspace named \"%s\"", name);
	struct wsync_stats st;
	struct err err = { 0 };
	int rc = -ENOENT;
	/* a node of a cluster: the node whose job holds it syncs it */
	char *node = w.in_use_by ? cluster_job_elsewhere(r, w.in_use_by) : NULL;
	if (node) {
		db_ws_row_free(&w);
		enum MHD_Result ret = cluster_forward(r, node, NULL);
		free(node);
		return ret;
	}
	if (w.in_use_by)
		rc = jobs_sync(w.in_use_by, &st, &err);
	if (rc == -ENOENT) { /* not in use, or its job ended meanwhile: the disk is quiet */
		err_clear(&err);
		rc = ws_push(r->user_id, name, &st, &err);
	}
	db_ws_row_free(&w);
	if (rc < 0)
		return reply_err(r, &err);
	return http_reply_json(r, MHD_HTTP_OK, ws_stats_json(name, &st));
}

enum MHD_Result api_workspaces(struct req *r, const char *rest)
{
	const char *m = r->method;
	if (!*rest || !strcmp(rest, "/")) {
		if (strcmp(m, "GET"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /workspaces (use GET)", m);
		size_t n;
		struct ws_row *rows = db_ws_list(r->user_id, &n);
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			json_array_append_new(arr, ws_json(&rows[i]));
			db_ws_row_free(&rows[i]);
		}
		free(rows);
		json_t *o = json_object();
		json_object_set_new(o, "workspaces", arr);
		return http_reply_json(r, MHD_HTTP_OK, o);
	}
	char name[WS_NAME_MAX + 1];
	const char *slash = strchr(rest + 1, '/');
	size_t len = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
	const char *action = slash ? slash + 1 : "";
	if (len == 0 || len > WS_NAME_MAX)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such workspace");
	memcpy(name, rest + 1, len);
	name[len] = '\0';
	if (!ws_name_ok(name))
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such workspace");
	if (!strcmp(action, "sync")) {
		if (strcmp(m, "POST"))
			return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here (use POST)", m);
		return api_ws_sync(r, name);
	}
	if (*action)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /workspaces/:name/%.100s", m, action);
	struct err err = { 0 };
	if (!strcmp(m, "GET")) {
		struct ws_row w;
		if (db_ws_get(r->user_id, name, &w) < 0)
			return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no workspace named \"%s\"", name);
		json_t *o = ws_json(&w);
		db_ws_row_free(&w);
		return http_reply_json(r, MHD_HTTP_OK, o);
	}
	if (!strcmp(m, "DELETE")) {
		if (ws_delete(r->user_id, name, &err) < 0)
			return reply_err(r, &err);
		db_url_forget_workspace(r->user_id, name); /* its URL and aliases go with it */
		json_t *o = json_object();
		json_object_set_new(o, "deleted", json_string(name));
		return http_reply_json(r, MHD_HTTP_OK, o);
	}
	return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here (use GET or DELETE)", m);
}
