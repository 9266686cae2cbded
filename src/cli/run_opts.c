// SPDX-License-Identifier: MIT
/*
 * `mags run` flag parsing and the submit body; see run_opts.h. The parser is
 * table-driven and has no global state (unlike getopt), so tests can call it
 * repeatedly. Short flags may be clustered (-pv) and take values attached or
 * as the next argument (-wNAME, -w NAME); long flags take --flag=VALUE or
 * --flag VALUE.
 */
#include "run_opts.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "names.h"
#include "text.h"
#include "xmalloc.h"

const char run_opts_usage[] =
	"usage: mags run [flags] SCRIPT\n"
	"\n"
	"Runs SCRIPT in a new sandbox and streams its output; exits with its exit\n"
	"code (124 when it timed out). SCRIPT is an inline shell command, or the path\n"
	"of a local script file, which is uploaded and run.\n"
	"\n"
	"flags:\n"
	"  -w, --workspace NAME  named workspace, to reconnect to later (NAME: 1-64 of\n"
	"                        A-Z a-z 0-9 . _ -, starting with a letter or digit)\n"
	"  -p, --persist         sync the workspace to the object store (needs -w)\n"
	"  -f, --file PATH       upload PATH (a regular file, up to 1 GiB) into the\n"
	"                        working directory under its own name (repeatable)\n"
	"      --url             enable a public URL (see --port); printed on stderr\n"
	"                        as \"url: URL\" once the job runs\n"
	"      --port P          port the public URL forwards to (1-65535, default\n"
	"                        8080; needs --url)\n"
	"      --ssh             enable SSH access with the key ~/.mags/id_ed25519\n"
	"                        (made with ssh-keygen on first use); the ssh command\n"
	"                        to paste is printed on stderr as \"ssh: ...\"\n"
	"      --startup CMD     command run to its end before SCRIPT, at every start\n"
	"                        (and, with --always-on, every restart and wake)\n"
	"      --base-image      make the workspace a read-only base image (needs -w)\n"
	"      --from NAME       start from base image workspace NAME\n"
	"      --ephemeral       no workspace at all (fastest); not with -w, -p,\n"
	"                        --base-image or --from\n"
	"      --timeout SECONDS stop the script after SECONDS (exit code 124)\n"
	"      --always-on       keep the sandbox running as a server: a failing SCRIPT\n"
	"                        is restarted, an idle sandbox sleeps and the next\n"
	"                        request wakes it; with -w the workspace persists;\n"
	"                        mags run returns once the sandbox runs\n"
	"      --idle-timeout S  always-on: sleep after S seconds without traffic\n"
	"                        (0 = never; default magsd's --idle-timeout)\n"
	"      --image NAME      guest image to boot (e.g. debian, busybox; default:\n"
	"                        the server's, see magsd --image)\n"
	"  -v, --verbose         print the job id and each upload on stderr\n"
	"  -h, --help            this text\n";

enum run_flag {
	RF_WORKSPACE, RF_PERSIST, RF_FILE, RF_URL, RF_PORT, RF_SSH, RF_STARTUP,
	RF_BASE_IMAGE, RF_FROM, RF_EPHEMERAL, RF_TIMEOUT, RF_ALWAYS_ON, RF_IDLE, RF_IMAGE, RF_VERBOSE, RF_HELP,
};

struct run_flag_def {
	char short_name;	/* 0 when none */
	const char *long_name;
	bool has_value;
	enum run_flag id;
};

static const struct run_flag_def run_flags[] = {
	{ 'w', "workspace", true, RF_WORKSPACE },
	{ 'p', "persist", false, RF_PERSIST },
	{ 'f', "file", true, RF_FILE },
	{ 0, "url", false, RF_URL },
	{ 0, "port", true, RF_PORT },
	{ 0, "ssh", false, RF_SSH },
	{ 0, "startup", true, RF_STARTUP },
	{ 0, "base-image", false, RF_BASE_IMAGE },
	{ 0, "from", true, RF_FROM },
	{ 0, "ephemeral", false, RF_EPHEMERAL },
	{ 0, "timeout", true, RF_TIMEOUT },
	{ 0, "always-on", false, RF_ALWAYS_ON },
	{ 0, "idle-timeout", true, RF_IDLE },
	{ 0, "image", true, RF_IMAGE },
	{ 'v', "verbose", false, RF_VERBOSE },
	{ 'h', "help", false, RF_HELP },
};

#define RUN_FLAGS_N (sizeof run_flags / sizeof run_flags[0])

static const struct run_flag_def *run_flag_long(const char *name, size_t len)
{
	for (size_t i = 0; i < RUN_FLAGS_N; i++)
		if (strlen(run_flags[i].long_name) == len && !strncmp(run_flags[i].long_name, name, len))
			return &run_flags[i];
	return NULL;
}

static const struct run_flag_def *run_flag_short(char c)
{
	for (size_t i = 0; i < RUN_FLAGS_N; i++)
		if (run_flags[i].short_name && run_flags[i].short_name == c)
			return &run_flags[i];
	return NULL;
}

/* Parses a whole decimal number in [min, max]. */
static int run_parse_long(const char *s, long min, long max, long *out)
{
	if (!*s || *s == '+' || *s == '-' || *s == ' ')
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void run_set_str(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

/* Applies one flag; name is how the user spelled it, for messages. */
static int run_apply(struct run_opts *o, const struct run_flag_def *f, const char *name, const char *v,
		     struct err *err)
{
	long n;
	switch (f->id) {
	case RF_WORKSPACE:
		if (!*v)
			return err_set(err, 0, "%s: workspace name is empty", name);
		run_set_str(&o->workspace, v);
		break;
	case RF_PERSIST: o->persist = true; break;
	case RF_FILE:
		if (!*v)
			return err_set(err, 0, "%s: file path is empty", name);
		o->files = xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
		o->files[o->nfiles++] = xstrdup(v);
		break;
	case RF_URL: o->url = true; break;
	case RF_PORT:
		if (run_parse_long(v, 1, 65535, &n) < 0)
			return err_set(err, 0, "%s: \"%s\" is not a port number (1-65535)", name, v);
		o->port = (int)n;
		break;
	case RF_SSH: o->ssh = true; break;
	case RF_STARTUP:
		if (!*v)
			return err_set(err, 0, "%s: command is empty", name);
		run_set_str(&o->startup, v);
		break;
	case RF_BASE_IMAGE: o->base_image = true; break;
	case RF_FROM:
		if (!*v)
			return err_set(err, 0, "%s: workspace name is empty", name);
		run_set_str(&o->from, v);
		break;
	case RF_EPHEMERAL: o->ephemeral = true; break;
	case RF_TIMEOUT:
		if (run_parse_long(v, 1, RUN_TIMEOUT_MAX, &n) < 0)
			return err_set(err, 0, "%s: \"%s\" is not a whole number of seconds from 1 to %d",
				       name, v, RUN_TIMEOUT_MAX);
		o->timeout = n;
		break;
	case RF_ALWAYS_ON: o->always_on = true; break;
	case RF_IDLE:
		if (run_parse_long(v, 0, RUN_IDLE_MAX, &n) < 0)
			return err_set(err, 0, "%s: \"%s\" is not a whole number of seconds from 0 to %d", name, v, RUN_IDLE_MAX);
		o->idle_timeout = n;
		break;
	case RF_IMAGE:
		if (!image_name_ok(v))
			return err_set(err, 0, "%s: \"%s\" is not an image name (1-%d of a-z 0-9 . _ -, starting with a"
				       " letter or digit)", name, v, IMAGE_NAME_MAX);
		run_set_str(&o->image, v);
		break;
	case RF_VERBOSE: o->verbose = true; break;
	case RF_HELP: o->help = true; break;
	}
	return 0;
}

int run_opts_flag_arity(const char *arg)
{
	if (arg[0] != '-' || !arg[1] || !strcmp(arg, "--"))
		return -1;
	if (arg[1] == '-') {
		const char *eq = strchr(arg + 2, '=');
		const struct run_flag_def *f = run_flag_long(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
		return !f ? -1 : f->has_value && !eq;
	}
	for (size_t k = 1; arg[k]; k++) {
		const struct run_flag_def *f = run_flag_short(arg[k]);
		if (!f)
			return -1;
		if (f->has_value)
			return !arg[k + 1];
	}
	return 0;
}

/* Parses argv[*i], a "--name[=value]" option; may consume the next argument. */
static int run_parse_long_opt(struct run_opts *o, int argc, char **argv, int *i, struct err *err)
{
	const char *arg = argv[*i] + 2;
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct run_flag_def *f = run_flag_long(arg, len);
	if (!f)
		return err_set(err, 0, "unknown flag --%.*s", (int)len, arg);
	char name[64];
	snprintf(name, sizeof name, "--%s", f->long_name);
	if (!f->has_value) {
		if (eq)
			return err_set(err, 0, "%s takes no value", name);
		return run_apply(o, f, name, NULL, err);
	}
	const char *v;
	if (eq) {
		v = eq + 1;
	} else {
		if (*i + 1 >= argc)
			return err_set(err, 0, "%s needs a value", name);
		v = argv[++*i];
	}
	return run_apply(o, f, name, v, err);
}

/* Parses argv[*i], a cluster of short options ("-pv", "-wNAME", "-w NAME"). */
static int run_parse_short_opts(struct run_opts *o, int argc, char **argv, int *i, struct err *err)
{
	const char *arg = argv[*i];
	for (size_t k = 1; arg[k]; k++) {
		const struct run_flag_def *f = run_flag_short(arg[k]);
		if (!f)
			return err_set(err, 0, "unknown flag -%c", arg[k]);
		char name[3] = { '-', arg[k], 0 };
		if (!f->has_value) {
			int r = run_apply(o, f, name, NULL, err);
			if (r < 0)
				return r;
			continue;
		}
		const char *v;
		if (arg[k + 1]) {
			v = arg + k + 1;
		} else {
			if (*i + 1 >= argc)
				return err_set(err, 0, "%s needs a value", name);
			v = argv[++*i];
		}
		return run_apply(o, f, name, v, err);
	}
	return 0;
}

const char *run_opts_file_name(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	const char *s = path + n;
	while (s > path && s[-1] != '/')
		s--;
	return s;
}

/* Length of run_opts_file_name(path) (a name may be followed by '/'s in path). */
static size_t run_file_name_len(const char *path)
{
	const char *s = run_opts_file_name(path);
	return strcspn(s, "/");
}

/* The checks of a parsed command line that need neither files nor magsd. */
static int run_check(const struct run_opts *o, struct err *err)
{
	if (o->ephemeral && (o->workspace || o->persist || o->base_image || o->from))
		return err_set(err, 0, "--ephemeral cannot be combined with -w/-p/--base-image/--from");
	if (o->base_image && !o->workspace)
		return err_set(err, 0, "--base-image needs -w NAME");
	if (o->port && !o->url)
		return err_set(err, 0, "--port needs --url: it is the port the public URL forwards to");
	if (o->persist && !o->workspace)
		return err_set(err, 0, "-p needs -w NAME: a persistent workspace has a name");
	if (o->workspace && !text_workspace_ok(o->workspace))
		return err_set(err, 0, "-w: invalid workspace name \"%s\" (" TEXT_WORKSPACE_RULE ")", o->workspace);
	if (o->from && !text_workspace_ok(o->from))
		return err_set(err, 0, "--from: invalid workspace name \"%s\" (" TEXT_WORKSPACE_RULE ")", o->from);
	for (size_t i = 0; i < o->nfiles; i++) {
		const char *name = run_opts_file_name(o->files[i]);
		size_t len = run_file_name_len(o->files[i]);
		if (!len || (len == 1 && name[0] == '.') || (len == 2 && !strncmp(name, "..", 2)))
			return err_set(err, 0, "-f %s: no file name", o->files[i]);
		for (size_t k = 0; k < i; k++) {
			if (run_file_name_len(o->files[k]) == len && !strncmp(run_opts_file_name(o->files[k]), name, len))
				return err_set(err, 0, "-f %s and -f %s: both would be \"%.*s\" in the sandbox",
					       o->files[k], o->files[i], (int)len, name);
		}
	}
	return 0;
}

int run_opts_parse(int argc, char **argv, struct run_opts *o, struct err *err)
{
	memset(o, 0, sizeof *o);
	o->idle_timeout = -1;
	err_clear(err);
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		int r = 0;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;	/* SCRIPT starts here ("-" alone is a script, odd as it is) */
		if (a[1] == '-')
			r = run_parse_long_opt(o, argc, argv, &i, err);
		else
			r = run_parse_short_opts(o, argc, argv, &i, err);
		if (r < 0)
			return -1;
	}
	if (o->help)
		return 0;
	if (i >= argc)
		return err_set(err, 0, "missing SCRIPT (an inline command or a script file)");
	struct buf b;
	buf_init(&b);
	for (int k = i; k < argc; k++) {
		if (k > i)
			buf_putc(&b, ' ');
		buf_puts(&b, argv[k]);
	}
	o->script = buf_steal(&b);
	if (!*o->script)
		return err_set(err, 0, "SCRIPT is empty");
	return run_check(o, err);
}

void run_opts_free(struct run_opts *o)
{
	free(o->script);
	free(o->workspace);
	for (size_t i = 0; i < o->nfiles; i++)
		free(o->files[i]);
	free(o->files);
	free(o->startup);
	free(o->image);
	free(o->from);
	memset(o, 0, sizeof *o);
}

/*
 * {"name": file name, "mode": permission bits, "size": bytes}, declaring a
 * file that is uploaded once the job exists; new reference in *out.
 */
static int run_file_json(const char *path, json_t **out, struct err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return err_set(err, errno, "-f %s", path);
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = err_set(err, errno, "-f %s", path);
	else if (!S_ISREG(st.st_mode))
		r = err_set(err, 0, "-f %s: not a regular file", path);
	else if (st.st_size > RUN_FILE_MAX)
		r = err_set(err, 0, "-f %s: %lld bytes, more than the 1 GiB limit on a file",
			    path, (long long)st.st_size);
	close(fd);
	if (r < 0)
		return r;
	size_t len = run_file_name_len(path);
	json_t *name = json_stringn(run_opts_file_name(path), len);
	if (!name)
		return err_set(err, 0, "-f %s: the file name is not valid UTF-8", path);
	json_t *f = json_object();
	json_object_set_new(f, "name", name);
	json_object_set_new(f, "mode", json_integer(st.st_mode & 0777));
	json_object_set_new(f, "size", json_integer((json_int_t)st.st_size));
	*out = f;
	return 0;
}

int run_opts_to_json(const struct run_opts *o, json_t **out, struct err *err)
{
	*out = NULL;
	json_t *body = json_object();
	int r = 0;
	struct stat st;
	if (stat(o->script, &st) == 0 && S_ISREG(st.st_mode)) {
		char *content = NULL;
		size_t len = 0;
		if ((r = fs_read_file(o->script, RUN_SCRIPT_MAX, &content, &len, err)) < 0) {
			err_wrap(err, "script file");
			goto out;
		}
		if (memchr(content, '\0', len)) {
			free(content);
			r = err_set(err, 0, "script file %s: contains NUL bytes (not a script?)", o->script);
			goto out;
		}
		json_t *s = json_stringn(content, len);
		free(content);
		if (!s) {
			r = err_set(err, 0, "script file %s: not valid UTF-8 text", o->script);
			goto out;
		}
		json_object_set_new(body, "script", s);
		json_object_set_new(body, "type", json_string("file"));
	} else {
		json_t *s = json_string(o->script);
		if (!s) {
			r = err_set(err, 0, "SCRIPT is not valid UTF-8");
			goto out;
		}
		json_object_set_new(body, "script", s);
		json_object_set_new(body, "type", json_string("inline"));
	}
	if (o->workspace)
		json_object_set_new(body, "workspace", json_string(o->workspace));
	if (o->persist)
		json_object_set_new(body, "persist", json_true());
	if (o->url) {
		json_object_set_new(body, "url", json_true());
		json_object_set_new(body, "port", json_integer(o->port ? o->port : RUN_PORT_DEFAULT));
	}
	if (o->ssh)
		json_object_set_new(body, "ssh", json_true());
	if (o->startup)
		json_object_set_new(body, "startup_command", json_string(o->startup));
	if (o->base_image)
		json_object_set_new(body, "base_image", json_true());
	if (o->from)
		json_object_set_new(body, "from", json_string(o->from));
	if (o->ephemeral)
		json_object_set_new(body, "ephemeral", json_true());
	if (o->timeout)
		json_object_set_new(body, "timeout", json_integer(o->timeout));
	if (o->always_on)
		json_object_set_new(body, "always_on", json_true());
	if (o->idle_timeout >= 0)
		json_object_set_new(body, "idle_timeout", json_integer(o->idle_timeout));
	if (o->image)
		json_object_set_new(body, "image", json_string(o->image));
	if (o->nfiles) {
		json_t *arr = json_array();
		json_object_set_new(body, "files", arr);
		for (size_t i = 0; i < o->nfiles; i++) {
			json_t *f;
			if ((r = run_file_json(o->files[i], &f, err)) < 0)
				goto out;
			json_array_append_new(arr, f);
		}
	}
	/* strings from argv may be invalid UTF-8: jansson then returns NULL and set_new drops them */
	if ((o->workspace && !json_object_get(body, "workspace")) || (o->startup && !json_object_get(body, "startup_command")) ||
	    (o->from && !json_object_get(body, "from"))) {
		r = err_set(err, 0, "flag values must be valid UTF-8");
		goto out;
	}
	*out = body;
	body = NULL; /* transferred */
out:
	json_decref(body);
	return r;
}
