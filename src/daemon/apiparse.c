// SPDX-License-Identifier: MIT
/* Small request parsers of the REST API; see apiparse.h. */
#include "apiparse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"
#include "names.h"
#include "xmalloc.h"

int apiparse_text_field(const char *body, size_t len, const char *what, const char *field, size_t max, char *out,
			struct err *err)
{
	if (len > API_BODY_MAX)
		return err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
	if (len == 0)
		return 0;
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
	int rc = json_is_object(root) ? 0 : err_set(err, 400, "request body must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (rc < 0)
			break;
		if (strcmp(key, field))
			rc = err_set(err, 400, "unknown field \"%.64s\" (%s takes %s)", key, what, field);
		else if (!text_line_ok(json_string_value(v), json_string_length(v), max))
			rc = err_set(err, 400, "\"%s\" must be 1-%zu printable ASCII characters", field, max);
		else
			snprintf(out, max + 1, "%s", json_string_value(v));
	}
	json_decref(root);
	return rc;
}

json_t *apiparse_object(const char *body, size_t len, struct err *err)
{
	json_error_t je;
	if (len > API_BODY_MAX) {
		err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
		return NULL;
	}
	if (!body || !len) {
		body = "{}";
		len = 2;
	}
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		err_set(err, 400, "request body must be a JSON object");
		return NULL;
	}
	return o;
}

static int access_fields(json_t *o, struct apiparse_access *a, struct err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		int r = 0;
		if (!strcmp(k, "url") || !strcmp(k, "ssh")) {
			if (!json_is_boolean(v) && !json_is_null(v))
				return err_set(err, 400, "\"%s\" must be true or false", k);
			*(!strcmp(k, "url") ? &a->url : &a->ssh) = json_is_true(v);
		} else if (!strcmp(k, "port")) {
			r = jobspec_parse_port(v, &a->port, err);
		} else if (!strcmp(k, "ssh_public_key")) {
			r = jobspec_parse_ssh_key(v, &a->key, err);
		} else {
			return err_set(err, 400, "unknown field \"%.64s\" (expected url, port, ssh, ssh_public_key)", k);
		}
		if (r < 0)
			return r;
	}
	if (!a->url && !a->ssh)
		return err_set(err, 400, "nothing to enable: send \"url\": true and/or \"ssh\": true");
	if (a->port && !a->url)
		return err_set(err, 400, "\"port\" is the URL's port: it needs \"url\": true");
	if (a->key && !a->ssh)
		return err_set(err, 400, "\"ssh_public_key\" needs \"ssh\": true");
	return 0;
}

int apiparse_access(const char *body, size_t len, struct apiparse_access *a, struct err *err)
{
	memset(a, 0, sizeof *a);
	json_t *o = apiparse_object(body, len, err);
	if (!o)
		return err && err->code == 413 ? -413 : -400;
	int r = access_fields(o, a, err);
	json_decref(o);
	return r;
}

void apiparse_alias_free(struct apiparse_alias *a)
{
	free(a->alias);
	free(a->workspace);
	free(a->job_id);
	memset(a, 0, sizeof *a);
}

static int alias_fields(json_t *o, struct apiparse_alias *a, struct err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		char **dst = !strcmp(k, "alias") ? &a->alias : !strcmp(k, "workspace") ? &a->workspace
			   : !strcmp(k, "job_id") ? &a->job_id : NULL;
		if (!dst)
			return err_set(err, 400, "unknown field \"%.64s\" (expected alias, workspace, job_id)", k);
		if (!json_is_string(v))
			return err_set(err, 400, "\"%s\" must be a string", k);
		/* JSON_REJECT_DUPLICATES: each is set once; a NUL inside ends it, as a C string always did */
		*dst = xstrdup(json_string_value(v));
	}
	if (!a->alias || !url_label_ok(a->alias))
		return err_set(err, 400, "\"alias\" must be a DNS label: 1 to %d of a-z, 0-9 and '-',"
			       " not starting or ending with '-'", URL_LABEL_MAX);
	if (!a->workspace == !a->job_id)
		return err_set(err, 400, "give exactly one of \"workspace\" and \"job_id\"");
	if (a->workspace && !ws_name_ok(a->workspace))
		return err_set(err, 400, "\"workspace\" is not a valid workspace name");
	return 0;
}

int apiparse_alias(const char *body, size_t len, struct apiparse_alias *a, struct err *err)
{
	memset(a, 0, sizeof *a);
	json_t *o = apiparse_object(body, len, err);
	if (!o)
		return err && err->code == 413 ? -413 : -400;
	int r = alias_fields(o, a, err);
	json_decref(o);
	if (r < 0)
		apiparse_alias_free(a);
	return r;
}

/* Octal permission bits, 0 to 07777, into *out. */
static int parse_mode(const char *mode, unsigned *out, struct err *err)
{
	char *end;
	long v = strtol(mode, &end, 8);
	if (!*mode || *end || v < 0 || v > 07777)
		return err_set(err, 400, "\"mode\" must be octal permission bits from 0 to 7777");
	*out = (unsigned)v;
	return 0;
}

int apiparse_upload_query(const char *name, size_t name_len, const char *mode, unsigned *mode_out, struct err *err)
{
	*mode_out = 0644;
	if (!name)
		return err_set(err, 400, "missing query parameter \"name\" (the file's path in the working directory)");
	size_t n = strlen(name);
	if (name_len != n)
		return err_set(err, 400, "\"name\": file name contains a NUL byte");
	json_t *js = json_string(name); /* NULL when not valid UTF-8 */
	json_decref(js);
	struct err e = { 0 };
	if (jobspec_path_check(name, n, &e) < 0 || !js)
		return err_set(err, 400, "\"name\": %s", e.msg[0] ? e.msg : "not valid UTF-8");
	return mode ? parse_mode(mode, mode_out, err) : 0;
}

int apiparse_file_path(const char *path, size_t len, struct err *err)
{
	if (!path)
		return err_set(err, 400, "missing query parameter \"path\" (a path in the sandbox)");
	if (!len)
		return err_set(err, 400, "\"path\" is empty");
	if (len > APIPARSE_PATH_MAX)
		return err_set(err, 400, "\"path\" is longer than %d bytes", APIPARSE_PATH_MAX);
	if (memchr(path, '\0', len))
		return err_set(err, 400, "\"path\" contains a NUL byte");
	if (len == 1 && path[0] == '/')
		return 0;
	const char *p = path + (path[0] == '/'), *end = path + len;
	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		if (n == 0)
			return err_set(err, 400, "\"path\" has an empty component (\"//\" or a trailing \"/\")");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return err_set(err, 400, "\"path\" has a \"%.*s\" component: give it without . and ..", (int)n, p);
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

int apiparse_files_query(const char *path, size_t path_len, const char *mode, const char *recursive,
			 unsigned *mode_out, bool *recursive_out, struct err *err)
{
	*mode_out = 0644;
	*recursive_out = false;
	int r = apiparse_file_path(path, path_len, err);
	if (r < 0)
		return r;
	if (mode && (r = parse_mode(mode, mode_out, err)) < 0)
		return r;
	if (recursive) {
		if (!strcmp(recursive, "1") || !strcmp(recursive, "true"))
			*recursive_out = true;
		else if (strcmp(recursive, "0") && strcmp(recursive, "false"))
			return err_set(err, 400, "\"recursive\" must be 1 or 0");
	}
	return 0;
}

static int mkdir_fields(json_t *o, char **path, bool *parents, unsigned *mode, struct err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		int r = 0;
		if (!strcmp(k, "path")) {
			if (!json_is_string(v))
				return err_set(err, 400, "\"path\" must be a string");
			r = apiparse_file_path(json_string_value(v), json_string_length(v), err);
			if (r == 0)
				*path = xstrdup(json_string_value(v));
		} else if (!strcmp(k, "parents")) {
			if (!json_is_boolean(v))
				return err_set(err, 400, "\"parents\" must be true or false");
			*parents = json_is_true(v);
		} else if (!strcmp(k, "mode")) {
			if (!json_is_string(v))
				return err_set(err, 400, "\"mode\" must be a string of octal digits, e.g. \"0755\"");
			r = parse_mode(json_string_value(v), mode, err);
		} else {
			return err_set(err, 400, "unknown field \"%.64s\" (expected path, parents, mode)", k);
		}
		if (r < 0)
			return r;
	}
	if (!*path)
		return err_set(err, 400, "missing field \"path\" (the directory to make)");
	return 0;
}

int apiparse_mkdir(const char *body, size_t len, char **path, bool *parents, unsigned *mode, struct err *err)
{
	*path = NULL;
	*parents = false;
	*mode = 0755;
	json_t *o = apiparse_object(body, len, err);
	if (!o)
		return err && err->code == 413 ? -413 : -400;
	int r = mkdir_fields(o, path, parents, mode, err);
	json_decref(o);
	if (r < 0) {
		free(*path);
		*path = NULL;
	}
	return r;
}

int apiparse_jobs_query(const char *status, const char *limit, const char *workspace, int *limit_out,
			struct err *err)
{
	*limit_out = 100;
	if (status && strcmp(status, "queued") && strcmp(status, "running") && strcmp(status, "completed") &&
	    strcmp(status, "failed"))
		return err_set(err, 400, "\"status\" must be queued, running, completed or failed");
	if (limit) {
		char *end;
		long v = strtol(limit, &end, 10);
		if (!*limit || *end || v < 1 || v > 1000)
			return err_set(err, 400, "\"limit\" must be an integer from 1 to 1000");
		*limit_out = (int)v;
	}
	if (workspace && !ws_name_ok(workspace))
		return err_set(err, 400, "\"workspace\" is not a valid workspace name");
	return 0;
}

int apiparse_logs_query(const char *since, const char *follow, int64_t *since_out, bool *follow_out, struct err *err)
{
	*since_out = 0;
	*follow_out = follow && (!strcmp(follow, "true") || !strcmp(follow, "1"));
	if (since) {
		char *end;
		long long v = strtoll(since, &end, 10);
		if (!*since || *end || v < 0)
			return err_set(err, 400, "\"since\" must be a non-negative integer");
		*since_out = v;
	}
	return 0;
}

long long apiparse_token_id(const char *s)
{
	char *end;
	errno = 0;
	long long id = strtoll(s, &end, 10);
	return !*s || *end || errno || id <= 0 ? 0 : id;
}
