// SPDX-License-Identifier: MIT
/*
 * Process request bodies; see execspec.h. As with job submissions an unknown
 * field is refused, so a request never silently loses what it asked for.
 */
#include "execspec.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobspec.h"
#include "xmalloc.h"

static json_t *load_object(const char *body, size_t len, struct err *err)
{
	if (len > API_BODY_MAX) {
		err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
		return NULL;
	}
	json_error_t je;
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		err_set(err, 400, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		err_set(err, 400, "request body must be a JSON object");
		return NULL;
	}
	return root;
}

/* A string without NUL bytes, 1-max bytes (min 0 when empty_ok). */
static int get_text(json_t *v, const char *key, size_t max, bool empty_ok, char **out, struct err *err)
{
	if (!json_is_string(v))
		return err_set(err, 400, "\"%s\" must be a string", key);
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (memchr(s, '\0', n))
		return err_set(err, 400, "\"%s\" contains a NUL byte", key);
	if (!n && !empty_ok)
		return err_set(err, 400, "\"%s\" is empty", key);
	if (n > max)
		return err_set(err, 400, "\"%s\" is %zu bytes, more than %zu", key, n, max);
	free(*out);
	*out = xstrndup(s, n);
	return 0;
}

static int get_bool(json_t *v, const char *key, bool *out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return err_set(err, 400, "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int get_int(json_t *v, const char *key, long long lo, long long hi, int *out, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return err_set(err, 400, "\"%s\" must be an integer from %lld to %lld", key, lo, hi);
	*out = (int)json_integer_value(v);
	return 0;
}

static bool env_name_ok(const char *k)
{
	if (!*k || (*k >= '0' && *k <= '9'))
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static int get_env(json_t *v, struct exec_spec *s, struct err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return err_set(err, 400, "\"env\" must be an object of strings ({\"NAME\": \"value\"})");
	if (json_object_size(v) > EXEC_ENV_MAX)
		return err_set(err, 400, "\"env\" has %zu entries, more than %d", json_object_size(v), EXEC_ENV_MAX);
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e) {
		if (!env_name_ok(k) || strlen(k) > 255)
			return err_set(err, 400, "\"env\": \"%.64s\" is not a variable name (letters, digits and _, not"
					      " starting with a digit, at most 255)", k);
		if (!json_is_string(e))
			return err_set(err, 400, "\"env\": the value of %s must be a string", k);
		size_t n = json_string_length(e);
		if (memchr(json_string_value(e), '\0', n))
			return err_set(err, 400, "\"env\": the value of %s contains a NUL byte", k);
		if (strlen(k) + 1 + n > EXEC_ENV_LEN_MAX)
			return err_set(err, 400, "\"env\": %s is longer than %d bytes", k, EXEC_ENV_LEN_MAX);
		buf_puts(&s->env, k);
		buf_putc(&s->env, '=');
		buf_append(&s->env, json_string_value(e), n);
		buf_putc(&s->env, '\0');
		s->nenv++;
	}
	return 0;
}

void exec_spec_free(struct exec_spec *s)
{
	free(s->command);
	free(s->cwd);
	buf_free(&s->env);
	memset(s, 0, sizeof *s);
}

int exec_spec_parse(const char *body, size_t len, struct exec_spec *s, struct err *err)
{
	memset(s, 0, sizeof *s);
	buf_init(&s->env);
	s->cols = 80;
	s->rows = 24;
	json_t *root = load_object(body, len, err);
	if (!root)
		return -err->code;
	int r = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "command"))
			r = get_text(v, key, EXEC_CMD_MAX, false, &s->command, err);
		else if (!strcmp(key, "cwd"))
			r = json_is_null(v) ? 0 : get_text(v, key, EXEC_CWD_MAX, false, &s->cwd, err);
		else if (!strcmp(key, "env"))
			r = get_env(v, s, err);
		else if (!strcmp(key, "timeout"))
			r = get_int(v, key, 0, EXEC_TIMEOUT_MAX, &s->timeout, err);
		else if (!strcmp(key, "cols"))
			r = get_int(v, key, 1, EXEC_TTY_MAX, &s->cols, err);
		else if (!strcmp(key, "rows"))
			r = get_int(v, key, 1, EXEC_TTY_MAX, &s->rows, err);
		else if (!strcmp(key, "tty"))
			r = get_bool(v, key, &s->tty, err);
		else if (!strcmp(key, "stdin"))
			r = get_bool(v, key, &s->stdin_open, err);
		else if (!strcmp(key, "detach"))
			r = get_bool(v, key, &s->detach, err);
		else
			r = err_set(err, 400, "unknown field \"%.64s\" (fields: command, tty, cols, rows, stdin, cwd, env,"
					      " timeout, detach)", key);
		if (r < 0)
			break;
	}
	if (r == 0 && !s->command)
		r = err_set(err, 400, "\"command\" is required");
	if (r == 0 && s->tty)
		s->stdin_open = true; /* a terminal always has an input */
	json_decref(root);
	if (r < 0) {
		exec_spec_free(s);
		return -err->code;
	}
	return 0;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL }, { "TRAP", SIGTRAP },
	{ "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
	{ "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO }, { "PWR", SIGPWR }, { "SYS", SIGSYS },
};

int exec_signal_parse(const char *body, size_t len, struct err *err)
{
	json_t *root = load_object(body, len, err);
	if (!root)
		return -err->code;
	int sig = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "signal")) {
			sig = err_set(err, 400, "unknown field \"%.64s\" (fields: signal)", key);
			break;
		}
		if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 64) {
			sig = (int)json_integer_value(v);
			continue;
		}
		const char *s = json_string_value(v);
		if (s && json_string_length(v) == strlen(s)) {
			if (!strncasecmp(s, "SIG", 3))
				s += 3;
			for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
				if (!strcasecmp(s, signals[i].name))
					sig = signals[i].sig;
		}
		if (sig <= 0) {
			sig = err_set(err, 400, "\"signal\" must be a number from 1 to 64 or a name such as \"INT\" or"
					       " \"SIGTERM\"");
			break;
		}
	}
	if (sig == 0)
		sig = err_set(err, 400, "\"signal\" is required");
	json_decref(root);
	return sig;
}

int exec_resize_parse(const char *body, size_t len, int *cols, int *rows, struct err *err)
{
	json_t *root = load_object(body, len, err);
	if (!root)
		return -err->code;
	*cols = *rows = 0;
	int r = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "cols"))
			r = get_int(v, key, 1, EXEC_TTY_MAX, cols, err);
		else if (!strcmp(key, "rows"))
			r = get_int(v, key, 1, EXEC_TTY_MAX, rows, err);
		else
			r = err_set(err, 400, "unknown field \"%.64s\" (fields: cols, rows)", key);
		if (r < 0)
			break;
	}
	if (r == 0 && (!*cols || !*rows))
		r = err_set(err, 400, "\"cols\" and \"rows\" are both required (integers from 1 to %d)", EXEC_TTY_MAX);
	json_decref(root);
	return r;
}
