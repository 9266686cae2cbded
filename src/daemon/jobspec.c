// SPDX-License-Identifier: MIT
/*
 * Job submission parsing; see jobspec.h. The accepted fields are those of
 * REFERENCE.md's POST /mags-jobs (plus idle_timeout and ssh_public_key);
 * an unknown field is refused, so a request never silently loses what it
 * asked for.
 */
#include "jobspec.h"

#include <jansson.h>
#include <string.h>

#include "base64.h"
#include "names.h"
#include "xmalloc.h"

int jobspec_path_check(const char *name, size_t len, struct err *err)
{
	if (len == 0)
		return err_set(err, 400, "file name is empty");
	if (len > JOB_FILE_NAME_MAX)
		return err_set(err, 400, "file name is %zu bytes, more than %d", len, JOB_FILE_NAME_MAX);
	if (memchr(name, '\0', len))
		return err_set(err, 400, "file name contains a NUL byte");
	if (name[0] == '/')
		return err_set(err, 400, "file name \"%.*s\" is absolute; names are relative to the working directory",
			       (int)len, name);
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && name[j] != '/')
			j++;
		size_t c = j - i;
		if (c == 0 || (c == 1 && name[i] == '.') || (c == 2 && name[i] == '.' && name[i + 1] == '.'))
			return err_set(err, 400, "file name \"%.*s\" has an empty, \".\" or \"..\" component", (int)len, name);
		i = j + 1;
		if (j + 1 == len)
			return err_set(err, 400, "file name \"%.*s\" ends with \"/\"", (int)len, name);
	}
	return 0;
}

static int parse_bool(json_t *v, const char *key, bool *out, struct err *err)
{
	if (json_is_null(v)) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return err_set(err, 400, "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int jobspec_parse_port(json_t *v, int *out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		return err_set(err, 400, "\"port\" must be an integer from 1 to 65535");
	*out = (int)json_integer_value(v);
	return 0;
}

int jobspec_parse_ssh_key(json_t *v, char **out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return err_set(err, 400, "\"ssh_public_key\" must be a string");
	/* a trailing newline, as in a .pub file, is not part of the key */
	size_t n = json_string_length(v);
	const char *k = json_string_value(v);
	while (n && (k[n - 1] == '\n' || k[n - 1] == '\r'))
		n--;
	if (!ssh_pubkey_ok(k, n))
		return err_set(err, 400, "\"ssh_public_key\" must be one OpenSSH public key line"
			       " (\"ssh-ed25519 AAAA... comment\"), at most %d bytes", SSH_KEY_MAX);
	free(*out);
	*out = xstrndup(k, n);
	return 0;
}

static int parse_ws_name(json_t *v, const char *key, char **out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v) || !ws_name_ok(s))
		return err_set(err, 400, "\"%s\" must be a workspace name: 1-%d letters, digits, \".\", \"_\" or \"-\","
			       " starting with a letter or digit", key, WS_NAME_MAX);
	*out = xstrdup(s);
	return 0;
}

static int parse_file(json_t *v, size_t idx, struct jobspec_file *f, struct err *err)
{
	f->size = -1;
	f->mode = 0644;
	buf_init(&f->data);
	if (!json_is_object(v))
		return err_set(err, 400, "files[%zu] must be an object with \"name\" (and \"content_base64\" or \"size\")", idx);
	const char *key;
	json_t *x;
	json_object_foreach(v, key, x) {
		if (!strcmp(key, "name")) {
			if (!json_is_string(x))
				return err_set(err, 400, "files[%zu].name must be a string", idx);
			if (jobspec_path_check(json_string_value(x), json_string_length(x), err) < 0)
				return err_wrap(err, "files[%zu]", idx);
			f->name = xstrndup(json_string_value(x), json_string_length(x));
		} else if (!strcmp(key, "mode")) {
			if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 07777)
				return err_set(err, 400, "files[%zu].mode must be an integer from 0 to 4095 (07777)", idx);
			f->mode = (unsigned)json_integer_value(x);
		} else if (!strcmp(key, "content_base64")) {
			if (!json_is_string(x))
				return err_set(err, 400, "files[%zu].content_base64 must be a string", idx);
			if (base64_decode(json_string_value(x), json_string_length(x), &f->data) < 0)
				return err_set(err, 400, "files[%zu].content_base64 is not valid base64", idx);
			f->has_data = true;
		} else if (!strcmp(key, "size")) {
			if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > JOB_UPLOAD_MAX)
				return err_set(err, 400, "files[%zu].size must be an integer from 0 to %lld", idx, JOB_UPLOAD_MAX);
			f->size = json_integer_value(x);
		} else {
			return err_set(err, 400, "files[%zu]: unknown field \"%.64s\"", idx, key);
		}
	}
	if (!f->name)
		return err_set(err, 400, "files[%zu] has no \"name\"", idx);
	return 0;
}

static int parse_files(json_t *v, struct jobspec *js, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return err_set(err, 400, "\"files\" must be an array");
	if (json_array_size(v) > JOB_FILES_MAX)
		return err_set(err, 400, "\"files\" has %zu entries, more than %d", json_array_size(v), JOB_FILES_MAX);
	js->files = xcalloc(json_array_size(v) + 1, sizeof *js->files);
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x) {
		js->nfiles = i + 1;
		int r = parse_file(x, i, &js->files[i], err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(js->files[k].name, js->files[i].name))
				return err_set(err, 400, "files: \"%s\" is listed twice", js->files[i].name);
	}
	return 0;
}

/* Rules between fields (each one alone is well-formed). */
static int check_combination(const struct jobspec *js, struct err *err)
{
	if (js->ephemeral && (js->workspace || js->persist || js->base_image || js->from))
		return err_set(err, 400, "\"ephemeral\" means no workspace: it cannot be combined with"
			       " \"workspace\", \"persist\", \"base_image\" or \"from\"");
	if (js->persist && !js->workspace)
		return err_set(err, 400, "\"persist\" needs a \"workspace\" name: a persistent workspace is found again by its name");
	if (js->base_image && !js->workspace)
		return err_set(err, 400, "\"base_image\" needs a \"workspace\" name: the base image is that workspace");
	if (js->ssh_key && !js->ssh)
		return err_set(err, 400, "\"ssh_public_key\" needs \"ssh\": true");
	if (js->from && js->workspace && !strcmp(js->from, js->workspace))
		return err_set(err, 400, "\"from\" names the workspace itself");
	if (js->always_on && (js->ephemeral || js->base_image))
		return err_set(err, 400, "\"always_on\" keeps a workspace running: it cannot be combined with"
			       " \"ephemeral\" or \"base_image\"");
	if (js->idle_timeout >= 0 && !js->always_on)
		return err_set(err, 400, "\"idle_timeout\" needs \"always_on\": true (only always-on sandboxes sleep)");
	return 0;
}

int jobspec_parse_idle(json_t *v, int *out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > JOB_IDLE_MAX)
		return err_set(err, 400, "\"idle_timeout\" must be an integer number of seconds from 0 (never sleep) to %d",
			       JOB_IDLE_MAX);
	*out = (int)json_integer_value(v);
	return 0;
}

/* A command given as a string: script or startup_command. */
static int parse_command(json_t *v, const char *key, size_t max, char **out, struct err *err)
{
	if (!json_is_string(v))
		return err_set(err, 400, "\"%s\" must be a string", key);
	size_t n = json_string_length(v);
	if (n == 0)
		return err_set(err, 400, "\"%s\" must not be empty", key);
	if (n > max)
		return err_set(err, 400, "\"%s\" is %zu bytes, more than the limit of %zu", key, n, max);
	if (memchr(json_string_value(v), '\0', n))
		return err_set(err, 400, "\"%s\" must not contain NUL characters", key);
	free(*out);
	*out = xstrndup(json_string_value(v), n);
	return 0;
}

int jobspec_parse(const char *body, size_t len, struct jobspec *js, struct err *err)
{
	memset(js, 0, sizeof *js);
	js->idle_timeout = -1;
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
			if ((r = parse_command(v, key, JOB_SCRIPT_MAX, &js->script, err)) < 0)
				goto out;
		} else if (!strcmp(key, "startup_command")) {
			if (!json_is_null(v) && (r = parse_command(v, key, JOB_SCRIPT_MAX, &js->startup, err)) < 0)
				goto out;
		} else if (!strcmp(key, "image")) {
			if (json_is_null(v))
				continue;
			const char *name = json_string_value(v);
			if (!name || json_string_length(v) != strlen(name) || !image_name_ok(name)) {
				r = err_set(err, 400, "\"image\" must be an image name: 1-%d of a-z 0-9 . _ -, starting with a"
						      " letter or digit", IMAGE_NAME_MAX);
				goto out;
			}
			free(js->image);
			js->image = xstrdup(name);
		} else if (!strcmp(key, "always_on")) {
			if ((r = parse_bool(v, key, &js->always_on, err)) < 0)
				goto out;
		} else if (!strcmp(key, "idle_timeout")) {
			if ((r = jobspec_parse_idle(v, &js->idle_timeout, err)) < 0)
				goto out;
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
			if ((r = parse_bool(v, key, &js->ephemeral, err)) < 0)
				goto out;
		} else if (!strcmp(key, "persist")) {
			if ((r = parse_bool(v, key, &js->persist, err)) < 0)
				goto out;
			js->persist_set = !json_is_null(v);
		} else if (!strcmp(key, "base_image")) {
			if ((r = parse_bool(v, key, &js->base_image, err)) < 0)
				goto out;
		} else if (!strcmp(key, "workspace")) {
			if ((r = parse_ws_name(v, key, &js->workspace, err)) < 0)
				goto out;
		} else if (!strcmp(key, "from")) {
			if ((r = parse_ws_name(v, key, &js->from, err)) < 0)
				goto out;
		} else if (!strcmp(key, "url")) {
			if ((r = parse_bool(v, key, &js->url, err)) < 0)
				goto out;
		} else if (!strcmp(key, "ssh")) {
			if ((r = parse_bool(v, key, &js->ssh, err)) < 0)
				goto out;
		} else if (!strcmp(key, "port")) {
			if ((r = jobspec_parse_port(v, &js->port, err)) < 0)
				goto out;
		} else if (!strcmp(key, "ssh_public_key")) {
			if ((r = jobspec_parse_ssh_key(v, &js->ssh_key, err)) < 0)
				goto out;
		} else if (!strcmp(key, "files")) {
			if ((r = parse_files(v, js, err)) < 0)
				goto out;
		} else {
			r = err_set(err, 400, "unknown field \"%.64s\"", key);
			goto out;
		}
	}
	/* an always-on sandbox keeps a named workspace in the store unless told not to */
	if (js->always_on && js->workspace && !js->persist_set)
		js->persist = true;
	if (!js->script)
		r = err_set(err, 400, "missing required field \"script\"");
	else
		r = check_combination(js, err);
out:
	json_decref(root);
	if (r < 0)
		jobspec_free(js);
	return r;
}

void jobspec_free(struct jobspec *js)
{
	for (size_t i = 0; i < js->nfiles; i++) {
		free(js->files[i].name);
		buf_free(&js->files[i].data);
	}
	free(js->files);
	free(js->workspace);
	free(js->from);
	free(js->ssh_key);
	free(js->script);
	free(js->startup);
	free(js->image);
	memset(js, 0, sizeof *js);
	js->idle_timeout = -1;
}

/* One PATCH field into p. */
static int patch_field(const char *key, json_t *v, struct job_patch *p, struct err *err)
{
	if (!strcmp(key, "always_on")) {
		if (!json_is_boolean(v))
			return err_set(err, 400, "\"always_on\" must be true or false");
		p->has_always_on = true;
		p->always_on = json_is_true(v);
		return 0;
	}
	if (!strcmp(key, "idle_timeout")) {
		p->has_idle = true;
		p->idle_timeout = -1;
		return jobspec_parse_idle(v, &p->idle_timeout, err);
	}
	if (!strcmp(key, "timeout")) {
		p->has_timeout = true;
		if (json_is_null(v))
			return 0;
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > JOB_TIMEOUT_MAX)
			return err_set(err, 400, "\"timeout\" must be an integer number of seconds from 1 to %d", JOB_TIMEOUT_MAX);
		p->timeout = (int)json_integer_value(v);
		return 0;
	}
	return err_set(err, 400, "unknown field \"%.64s\" (PATCH takes always_on, idle_timeout and timeout)", key);
}

int jobspec_parse_patch(const char *body, size_t len, struct job_patch *p, struct err *err)
{
	memset(p, 0, sizeof *p);
	if (len > API_BODY_MAX)
		return err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
	int r = json_is_object(root) ? 0 : err_set(err, 400, "request body must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (r < 0 || (r = patch_field(key, v, p, err)) < 0)
			break;
	}
	json_decref(root);
	return r;
}
