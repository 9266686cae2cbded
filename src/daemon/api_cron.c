// SPDX-License-Identifier: MIT
/*
 * REST /cron-jobs: schedules that submit a job at cron times (the scheduler
 * is cron_sched.c, the table db_cron.c, the body parser cronspec.c).
 *   POST   /cron-jobs       create        201 schedule
 *   GET    /cron-jobs       list          200 {"cron_jobs": [...]}
 *   GET    /cron-jobs/:id   one           200 schedule
 *   PATCH  /cron-jobs/:id   change        200 schedule
 *   DELETE /cron-jobs/:id   delete        200 {"deleted": true, "id": ID}
 * Another user's schedule is 404, like a missing one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cron_sched.h"
#include "cronspec.h"
#include "db_cron.h"
#include "http.h"
#include "images.h"
#include "jobspec.h"
#include "xmalloc.h"

#define CRON_ID_PREFIX "cron-"
#define CRON_ID_RANDOM 10	/* random bytes of an id, hex-encoded */

/* "cron-" and 20 hex digits. */
static void new_cron_id(char out[CRON_ID_MAX])
{
	uint8_t b[CRON_ID_RANDOM];
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		abort(); /* the kernel's CSPRNG does not fail after boot */
	int n = snprintf(out, CRON_ID_MAX, CRON_ID_PREFIX);
	for (size_t i = 0; i < sizeof b; i++)
		n += snprintf(out + n, (size_t)(CRON_ID_MAX - n), "%02x", b[i]);
}

/* Whether id could be a schedule id (anything else is simply not found). */
static bool cron_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= CRON_ID_MAX)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* The API's JSON of a schedule (new reference). */
static json_t *cron_json(const struct cron_row *c)
{
	char *script = NULL;
	json_t *options = NULL;
	if (cronspec_split(c->spec, &script, &options) < 0) {
		script = xstrdup("");
		options = json_object();
	}
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "name", str_or_null(c->name));
	json_object_set_new(o, "expression", json_string(c->expression));
	json_object_set_new(o, "timezone", str_or_null(c->timezone));
	json_object_set_new(o, "script", json_string(script));
	json_object_set_new(o, "enabled", json_boolean(c->enabled));
	json_object_set_new(o, "next_run_at", db_time_json(c->next_run));
	json_object_set_new(o, "last_run_at", db_time_json(c->last_run));
	json_object_set_new(o, "last_job_id", str_or_null(c->last_job_id));
	json_object_set_new(o, "last_error", str_or_null(c->last_error));
	json_object_set_new(o, "created_at", db_time_json(c->created_at));
	json_object_set_new(o, "updated_at", db_time_json(c->updated_at));
	json_object_set_new(o, "options", options);
	free(script);
	return o;
}

static unsigned status_of(int rc)
{
	return rc == -413 ? MHD_HTTP_CONTENT_TOO_LARGE : rc == -404 ? MHD_HTTP_NOT_FOUND :
	       rc == -500 ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST;
}

/* Sets c->next_run from its expression, zone and enabled flag, as of now. 0 or -400. */
static int cron_plan(struct cron_row *c, int64_t now, struct err *err)
{
	int64_t next;
	if (cron_sched_plan(c->expression, c->timezone, now, &next, err) < 0)
		return -400;
	if (!next)
		return err_set(err, 400, "expression: \"%s\" never fires (no such date within %d years)", c->expression,
			       CRON_SEARCH_YEARS);
	c->next_run = c->enabled ? next : 0;
	return 0;
}

/* Replies with schedule id as stored now. */
static enum MHD_Result reply_cron(struct req *r, const char *id, unsigned status)
{
	struct cron_row c;
	if (db_cron_get(id, r->user_id, &c) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "cron job %s not found", id);
	json_t *o = cron_json(&c);
	db_cron_row_free(&c);
	return http_reply_json(r, status, o);
}

static const char *body_text(struct req *r)
{
	return r->body.data ? (const char *)r->body.data : "";
}

/* The stored job body of a schedule (cronspec_job_body), refused when it names an image this magsd lacks. */
static int cron_job_body(const char *script, json_t *options, char **spec, struct err *err)
{
	int rc = cronspec_job_body(script, options, spec, err);
	if (rc == 0)
		rc = images_check(json_string_value(json_object_get(options, "image")), err);
	return rc;
}

static enum MHD_Result cron_create(struct req *r)
{
	struct err err = { 0 };
	struct cronspec cs;
	struct cron_row c = { .user_id = r->user_id };
	int rc = r->too_big ? err_set(&err, 413, "request body larger than %d bytes", API_BODY_MAX) :
			      cronspec_parse(body_text(r), r->body.len, false, &cs, &err);
	if (r->too_big)
		memset(&cs, 0, sizeof cs);
	if (rc == 0)
		rc = cron_job_body(cs.script, cs.options, &c.spec, &err);
	if (rc < 0)
		goto out;
	new_cron_id(c.id);
	c.expression = xstrdup(cs.expression);
	c.name = cs.name ? xstrdup(cs.name) : NULL;
	c.timezone = cs.timezone ? xstrdup(cs.timezone) : NULL;
	c.enabled = cs.enabled != 0;
	c.created_at = c.updated_at = db_now_ms();
	if ((rc = cron_plan(&c, c.created_at, &err)) < 0 || (rc = db_cron_insert(&c, &err)) < 0)
		goto out;
	cron_sched_kick();
out:
	cronspec_free(&cs);
	enum MHD_Result ret = rc < 0 ? http_reply_error(r, status_of(rc), "%s", err.msg) : reply_cron(r, c.id, MHD_HTTP_CREATED);
	db_cron_row_free(&c);
	return ret;
}

/* Applies a PATCH's run flags to options: a null removes one. */
static void merge_options(json_t *options, json_t *patch)
{
	const char *key;
	json_t *v;
	json_object_foreach(patch, key, v) {
		if (json_is_null(v))
			json_object_del(options, key);
		else
			json_object_set(options, key, v);
	}
}

/* Applies cs to c (the stored schedule); *replan when next_run must be recomputed. */
static int cron_apply(struct cron_row *c, const struct cronspec *cs, bool *replan, struct err *err)
{
	char *script = NULL;
	json_t *options = NULL;
	if (cronspec_split(c->spec, &script, &options) < 0)
		return err_set(err, 500, "cron job %s: stored job body is not a JSON object", c->id);
	if (cs->script) {
		free(script);
		script = xstrdup(cs->script);
	}
	merge_options(options, cs->options);
	char *spec = NULL;
	int rc = cron_job_body(script, options, &spec, err);
	free(script);
	json_decref(options);
	if (rc < 0) {
		free(spec); /* set when only the image check failed */
		return rc;
	}
	free(c->spec);
	c->spec = spec;
	if (cs->expression) {
		free(c->expression);
		c->expression = xstrdup(cs->expression);
	}
	if (cs->has_name) {
		free(c->name);
		c->name = cs->name ? xstrdup(cs->name) : NULL;
	}
	if (cs->has_timezone) {
		free(c->timezone);
		c->timezone = cs->timezone ? xstrdup(cs->timezone) : NULL;
	}
	if (cs->enabled >= 0)
		c->enabled = cs->enabled;
	*replan = cs->expression || cs->has_timezone || cs->enabled >= 0;
	return 0;
}

static enum MHD_Result cron_patch(struct req *r, struct cron_row *c)
{
	struct err err = { 0 };
	struct cronspec cs;
	bool replan = false;
	int rc = r->too_big ? err_set(&err, 413, "request body larger than %d bytes", API_BODY_MAX) :
			      cronspec_parse(body_text(r), r->body.len, true, &cs, &err);
	if (r->too_big)
		memset(&cs, 0, sizeof cs);
	if (rc == 0)
		rc = cron_apply(c, &cs, &replan, &err);
	cronspec_free(&cs);
	c->updated_at = db_now_ms();
	if (rc == 0 && replan)
		rc = cron_plan(c, c->updated_at, &err);
	if (rc == 0 && db_cron_update(c, replan) < 0)
		rc = err_set(&err, 404, "cron job %s not found", c->id);
	if (rc < 0)
		return http_reply_error(r, status_of(rc), "%s", err.msg);
	cron_sched_kick();
	return reply_cron(r, c->id, MHD_HTTP_OK);
}

static enum MHD_Result cron_list(struct req *r)
{
	size_t n;
	struct cron_row *rows = db_cron_list(r->user_id, &n);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(arr, cron_json(&rows[i]));
		db_cron_row_free(&rows[i]);
	}
	free(rows);
	json_t *o = json_object();
	json_object_set_new(o, "cron_jobs", arr);
	return http_reply_json(r, MHD_HTTP_OK, o);
}

/* GET, PATCH or DELETE /cron-jobs/:id. */
static enum MHD_Result cron_one(struct req *r, const char *id)
{
	const char *m = r->method;
	struct cron_row c;
	if (!cron_id_ok(id) || db_cron_get(id, r->user_id, &c) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "cron job %.64s not found", id);
	enum MHD_Result ret;
	if (!strcmp(m, "GET")) {
		ret = http_reply_json(r, MHD_HTTP_OK, cron_json(&c));
	} else if (!strcmp(m, "PATCH")) {
		ret = cron_patch(r, &c);
	} else if (!strcmp(m, "DELETE")) {
		if (db_cron_delete(c.id, r->user_id) < 0) {
			ret = http_reply_error(r, MHD_HTTP_NOT_FOUND, "cron job %s not found", c.id);
		} else {
			json_t *o = json_object();
			json_object_set_new(o, "deleted", json_true());
			json_object_set_new(o, "id", json_string(c.id));
			ret = http_reply_json(r, MHD_HTTP_OK, o);
			cron_sched_kick();
		}
	} else {
		ret = http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /cron-jobs/ID (use GET,"
				       " PATCH or DELETE)", m);
	}
	db_cron_row_free(&c);
	return ret;
}

enum MHD_Result api_cron(struct req *r, const char *rest)
{
	if (!*rest || !strcmp(rest, "/")) {
		if (!strcmp(r->method, "POST"))
			return cron_create(r);
		if (!strcmp(r->method, "GET"))
			return cron_list(r);
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /cron-jobs (use GET or POST)",
					r->method);
	}
	return cron_one(r, rest + 1);
}
