// SPDX-License-Identifier: MIT
/*
 * Job submission parsing; see jobspec.h. The accepted fields are those of
 * REFERENCE.md's POST /mags-jobs. Fields whose feature this magsd does not
 * run yet are rejected when set to anything but their default, so a request
 * never silently loses what it asked for.
 */
#include "jobspec.h"

#include <jansson.h>
#include <string.h>

#include "xmalloc.h"

/* Fields known to the API whose features land in later work. */
static const char *const later_fields[] = {
	"workspace", "persist", "url", "ssh", "startup_command", "base_image",
	"always_on", "from", "port", "files",
};

static bool is_default(json_t *v)
{
	return json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && json_string_length(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0);
}

int jobspec_parse(const char *body, size_t len, struct jobspec *js, struct err *err)
{
	memset(js, 0, sizeof *js);
	if (len > API_BODY_MAX)
		return err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
	int r = 0;
	if (!json_is_object(root)) {
		r = err_set(err, 400, "request body must be a JSON object");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "script")) {
			if (!json_is_string(v)) {
				r = err_set(err, 400, "\"script\" must be a string");
				goto out;
			}
			size_t n = json_string_length(v);
			if (n == 0) {
				r = err_set(err, 400, "\"script\" must not be empty");
				goto out;
			}
			if (n > JOB_SCRIPT_MAX) {
				r = err_set(err, 400, "\"script\" is %zu bytes, more than the limit of %d", n, JOB_SCRIPT_MAX);
				goto out;
			}
			if (memchr(json_string_value(v), '\0', n)) {
				r = err_set(err, 400, "\"script\" must not contain NUL characters");
				goto out;
			}
			js->script = xstrndup(json_string_value(v), n);
		} else if (!strcmp(key, "type")) {
			const char *t = json_string_value(v);
			if (!t || (strcmp(t, "inline") && strcmp(t, "file"))) {
				r = err_set(err, 400, "\"type\" must be \"inline\" or \"file\"");
				goto out;
			}
			js->file = !strcmp(t, "file");
		} else if (!strcmp(key, "timeout")) {
			if (json_is_null(v))
				continue;
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > JOB_TIMEOUT_MAX) {
				r = err_set(err, 400, "\"timeout\" must be an integer number of seconds from 1 to %d", JOB_TIMEOUT_MAX);
				goto out;
			}
			js->timeout = (int)json_integer_value(v);
		} else if (!strcmp(key, "ephemeral")) {
			if (!json_is_boolean(v)) {
				r = err_set(err, 400, "\"ephemeral\" must be true or false");
				goto out;
			}
			js->ephemeral = json_is_true(v);
		} else {
			bool known = false;
			for (size_t i = 0; i < sizeof later_fields / sizeof *later_fields; i++)
				known |= !strcmp(key, later_fields[i]);
			if (!known) {
				r = err_set(err, 400, "unknown field \"%.64s\"", key);
				goto out;
			}
			if (!is_default(v)) {
				r = err_set(err, 400, "\"%s\" is not supported by this magsd yet", key);
				goto out;
			}
		}
	}
	if (!js->script)
		r = err_set(err, 400, "missing required field \"script\"");
out:
	json_decref(root);
	if (r < 0)
		jobspec_free(js);
	return r;
}

void jobspec_free(struct jobspec *js)
{
	free(js->script);
	memset(js, 0, sizeof *js);
}
