// SPDX-License-Identifier: MIT
/*
 * Parsing of POST/PATCH /cron-jobs bodies; see cronspec.h. The run flags are
 * not interpreted here: they are the fields of POST /mags-jobs, and
 * cronspec_job_body hands them to jobspec_parse, the one parser of a job.
 */
#include "cronspec.h"

#include <string.h>

#include "jobspec.h"
#include "tz.h"
#include "xmalloc.h"

/* The POST /mags-jobs fields a schedule may carry (always_on is refused). */
static const char *const run_flags[] = {
	"workspace", "persist", "url", "port", "ssh", "ssh_public_key", "startup_command", "base_image",
	"ephemeral", "timeout", "from", "files", "type", "image",
};

static bool is_run_flag(const char *key)
{
	for (size_t i = 0; i < sizeof run_flags / sizeof run_flags[0]; i++)
		if (!strcmp(key, run_flags[i]))
			return true;
	return false;
}

/* A string field without NUL; *out a new string. */
static int get_string(json_t *v, const char *key, char **out, struct err *err)
{
	if (!json_is_string(v))
		return err_set(err, 400, "\"%s\" must be a string", key);
	size_t n = json_string_length(v);
	if (memchr(json_string_value(v), '\0', n))
		return err_set(err, 400, "\"%s\" must not contain NUL characters", key);
	free(*out);
	*out = xstrndup(json_string_value(v), n);
	return 0;
}

static int parse_expression(json_t *v, struct cronspec *cs, struct err *err)
{
	if (!json_is_string(v))
		return err_set(err, 400, "\"expression\" must be a string like \"*/5 * * * *\"");
	if (cron_parsen(json_string_value(v), json_string_length(v), &cs->cron, err) < 0) {
		err->code = 400;
		return err_wrap(err, "expression");
	}
	free(cs->expression);
	cs->expression = xstrndup(json_string_value(v), json_string_length(v));
	return 0;
}

static int parse_name(json_t *v, struct cronspec *cs, struct err *err)
{
	cs->has_name = true;
	if (json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;
	if (!text_line_ok(s, n, CRON_NAME_MAX))
		return err_set(err, 400, "\"name\" must be 1 to %d printable ASCII characters (or null)", CRON_NAME_MAX);
	cs->name = xstrndup(s, n);
	return 0;
}

static int parse_timezone(json_t *v, struct cronspec *cs, struct err *err)
{
	cs->has_timezone = true;
	if (json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v) || !tz_name_ok(s))
		return err_set(err, 400, "\"timezone\" must be an IANA time zone name like \"Europe/Berlin\" (or null for"
				    " UTC): letters, digits, '_', '-', '+' and '/', at most %d bytes", TZ_NAME_MAX);
	cs->timezone = xstrdup(s);
	return 0;
}

/* One field of the body. */
static int parse_field(const char *key, json_t *v, struct cronspec *cs, struct err *err)
{
	if (!strcmp(key, "expression"))
		return parse_expression(v, cs, err);
	if (!strcmp(key, "script")) {
		if (get_string(v, key, &cs->script, err) < 0)
			return -400;
		return *cs->script ? 0 : err_set(err, 400, "\"script\" must not be empty");
	}
	if (!strcmp(key, "name"))
		return parse_name(v, cs, err);
	if (!strcmp(key, "timezone"))
		return parse_timezone(v, cs, err);
	if (!strcmp(key, "enabled")) {
		if (!json_is_boolean(v))
			return err_set(err, 400, "\"enabled\" must be true or false");
		cs->enabled = json_is_true(v);
		return 0;
	}
	if (!strcmp(key, "always_on")) {
		if (json_is_true(v))
			return err_set(err, 400, "\"always_on\": a schedule runs jobs that end; it cannot start"
					    " always-on sandboxes");
		return json_is_boolean(v) || json_is_null(v) ? 0 : err_set(err, 400, "\"always_on\" must be true or false");
	}
	if (is_run_flag(key)) {
		json_object_set(cs->options, key, v);
		return 0;
	}
	return err_set(err, 400, "unknown field \"%.64s\" (expected expression, script, name, timezone, enabled, or a"
			    " run flag of POST /mags-jobs: workspace, persist, url, port, ssh, ssh_public_key,"
			    " startup_command, base_image, ephemeral, timeout, from, files, type, image)", key);
}

int cronspec_parse(const char *body, size_t len, bool patch, struct cronspec *cs, struct err *err)
{
	memset(cs, 0, sizeof *cs);
	cs->enabled = -1;
	cs->options = json_object();
	if (len > API_BODY_MAX)
		return err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
	json_error_t je;
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
	int r = 0;
	const char *key;
	json_t *v;
	if (!json_is_object(root)) {
		r = err_set(err, 400, "request body must be a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v)
		if ((r = parse_field(key, v, cs, err)) < 0)
			goto out;
	if (!patch && !cs->expression) {
		r = err_set(err, 400, "missing required field \"expression\" (a cron expression like \"*/5 * * * *\")");
	} else if (!patch && !cs->script) {
		r = err_set(err, 400, "missing required field \"script\" (the command each firing runs)");
	} else if (!patch) {
		char *job = NULL;
		r = cronspec_job_body(cs->script, cs->options, &job, err);
		free(job);
	}
out:
	json_decref(root);
	return r;
}

void cronspec_free(struct cronspec *cs)
{
	free(cs->expression);
	free(cs->script);
	free(cs->name);
	free(cs->timezone);
	json_decref(cs->options);
	memset(cs, 0, sizeof *cs);
}

/* Refuses declared files: a firing has nobody to upload them. */
static int check_job(const struct jobspec *js, struct err *err)
{
	if (js->always_on)
		return err_set(err, 400, "\"always_on\": a schedule cannot start always-on sandboxes");
	for (size_t i = 0; i < js->nfiles; i++)
		if (!js->files[i].has_data)
			return err_set(err, 400, "\"files\": a schedule's files must carry their content"
					    " (content_base64); %s has none", js->files[i].name);
	return 0;
}

int cronspec_job_body(const char *script, json_t *options, char **out, struct err *err)
{
	*out = NULL;
	json_t *body = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(options, key, v)
		if (!json_is_null(v))
			json_object_set(body, key, v);
	json_object_set_new(body, "script", json_string(script));
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	if (!text)
		return err_set(err, 400, "\"script\" must be valid UTF-8");
	struct jobspec js;
	int r = jobspec_parse(text, strlen(text), &js, err);
	if (r == 0) {
		r = check_job(&js, err);
		jobspec_free(&js);
	}
	if (r < 0) {
		free(text);
		return err->code == 413 ? -413 : -400;
	}
	*out = text;
	return 0;
}

int cronspec_split(const char *spec, char **script, json_t **options)
{
	*script = NULL;
	*options = NULL;
	json_t *o = json_loads(spec, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	const char *s = json_string_value(json_object_get(o, "script"));
	*script = xstrdup(s ? s : "");
	json_object_del(o, "script");
	*options = o;
	return 0;
}
