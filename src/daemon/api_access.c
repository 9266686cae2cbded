// SPDX-License-Identifier: MIT
/*
 * POST /mags-jobs/:id/access (URL and SSH on a running job) and
 * /url-aliases. See access.h for what a URL and an SSH forwarder are.
 */
#include <errno.h>
#include <string.h>

#include "access.h"
#include "apiparse.h"
#include "db.h"
#include "http.h"
#include "jobs.h"
#include "jobspec.h"
#include "names.h"
#include "xmalloc.h"

static unsigned http_code(int code)
{
	switch (code) {
	case 400: return MHD_HTTP_BAD_REQUEST;
	case 404: return MHD_HTTP_NOT_FOUND;
	case 409: return MHD_HTTP_CONFLICT;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

json_t *api_job_json(const struct job_row *j)
{
	json_t *o = db_job_json(j);
	json_object_set_new(o, "ssh", jobs_ssh_json(j->id));
	return o;
}

enum MHD_Result api_job_access(struct req *r, const struct job_row *j)
{
	if (strcmp(j->status, "running"))
		return http_reply_error(r, MHD_HTTP_CONFLICT, "job %s is %s: access is for running sandboxes", j->id, j->status);
	struct err err = { 0 };
	struct apiparse_access a;
	int rc = apiparse_access((const char *)r->body.data, r->body.len, &a, &err);
	if (rc == 0 && a.url)
		rc = access_url_enable(j, a.port, &err);
	if (rc == 0 && a.ssh) {
		rc = jobs_ssh(j->id, a.key, &err);
		if (rc == -ENOENT)
			rc = err_set(&err, 409, "job %s is not running", j->id);
	}
	free(a.key);
	if (rc < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : http_code(err.code), "%s", err.msg);
	struct job_row now;
	if (db_job_get(j->id, r->user_id, &now) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job %s not found", j->id);
	enum MHD_Result ret = http_reply_json(r, MHD_HTTP_OK, api_job_json(&now));
	db_job_row_free(&now);
	return ret;
}

/* POST /url-aliases {"alias": A, "workspace": NAME} (or "job_id": ID). */
static enum MHD_Result alias_create(struct req *r)
{
	struct err err = { 0 };
	struct apiparse_alias a;
	if (apiparse_alias((const char *)r->body.data, r->body.len, &a, &err) < 0)
		return http_reply_error(r, err.code == 413 ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	const char *alias = a.alias, *ws = a.workspace, *job = a.job_id;
	enum MHD_Result ret;
	bool known;
	if (job) {
		struct job_row j;
		known = db_job_get(job, r->user_id, &j) == 0;
		if (known)
			db_job_row_free(&j);
	} else {
		struct ws_row w;
		known = db_ws_get(r->user_id, ws, &w) == 0;
		if (known)
			db_ws_row_free(&w);
	}
	if (!known) {
		ret = http_reply_error(r, MHD_HTTP_NOT_FOUND, "%s \"%s\" not found", job ? "job" : "workspace", job ? job : ws);
		goto out;
	}
	struct url_row u = { .user_id = r->user_id, .alias = true, .port = 0 };
	snprintf(u.label, sizeof u.label, "%s", alias);
	snprintf(u.workspace, sizeof u.workspace, "%s", ws ? ws : "");
	snprintf(u.job_id, sizeof u.job_id, "%s", job ? job : "");
	struct url_row same;
	if (db_url_get(alias, &same) == 0) {
		ret = http_reply_error(r, MHD_HTTP_CONFLICT, "the alias \"%s\" is taken", alias);
		goto out;
	}
	if (db_url_put(&u, &err) < 0) {
		ret = http_reply_error(r, http_code(err.code), "%s", err.msg);
		goto out;
	}
	db_url_get(alias, &u);
	ret = http_reply_json(r, MHD_HTTP_CREATED, db_url_alias_json(&u));
out:
	apiparse_alias_free(&a);
	return ret;
}

enum MHD_Result api_url_aliases(struct req *r, const char *rest)
{
	const char *m = r->method;
	if (!*rest || !strcmp(rest, "/")) {
		if (!strcmp(m, "POST"))
			return alias_create(r);
		if (!strcmp(m, "GET")) {
			json_t *o = json_object();
			json_object_set_new(o, "aliases", db_url_aliases(r->user_id));
			return http_reply_json(r, MHD_HTTP_OK, o);
		}
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /url-aliases (use GET or POST)", m);
	}
	const char *alias = rest + 1;
	struct url_row u;
	bool mine = url_label_ok(alias) && db_url_get(alias, &u) == 0 && u.alias && u.user_id == r->user_id;
	if (!mine)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "alias not found");
	if (!strcmp(m, "GET"))
		return http_reply_json(r, MHD_HTTP_OK, db_url_alias_json(&u));
	if (!strcmp(m, "DELETE")) {
		db_url_delete(alias, r->user_id, true);
		json_t *o = json_object();
		json_object_set_new(o, "deleted", json_string(alias));
		return http_reply_json(r, MHD_HTTP_OK, o);
	}
	return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed here (use GET or DELETE)", m);
}
