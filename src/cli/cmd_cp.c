// SPDX-License-Identifier: MIT
/*
 * mags cp SRC DST: one file into or out of a running sandbox, through the
 * files API (docs/sandboxes.md, "Files"): GET /mags-jobs/NAME/files?path=P
 * streams it out, PUT /mags-jobs/NAME/files?path=P&mode=M streams it in, and
 * GET .../files/stat tells a directory from a file first. NAME is a
 * workspace with a running sandbox or a job id (magsd takes either). Neither
 * direction holds the file in memory; a download lands in a temporary file
 * next to its destination and is renamed over it only when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "text.h"
#include "xmalloc.h"

const char cmd_cp_usage[] =
	"usage: mags cp SRC DST\n"
	"\n"
	"Copies one file between this machine and a running sandbox. Exactly one of\n"
	"SRC and DST is NAME:PATH: NAME is a workspace with a running sandbox (as\n"
	"mags new NAME makes it) or a job id; PATH is absolute, or relative to /root\n"
	"(NAME: alone is /root). The other is a local path, or - for stdin (SRC) or\n"
	"stdout (DST). A local path with a colon before its first slash is written\n"
	"./PATH.\n"
	"\n"
	"When DST is a directory (a local one, or an existing one in the sandbox, or\n"
	"any DST ending with /) the file keeps its name. A copy into the sandbox\n"
	"keeps the local file's permission bits (0644 from stdin); its parent\n"
	"directories are created. A copy out is written to a temporary file next to\n"
	"DST and renamed when complete, so a failed copy leaves no partial file.\n"
	"Files of any size stream. Exit status 0, 1 on an error, 2 on a bad command\n"
	"line, 130 when interrupted.\n";

/* One side of the copy. */
struct cp_end {
	const char *arg;	/* as given */
	char *name;		/* the sandbox (NAME or job id); NULL: local */
	char *path;		/* in the sandbox: without trailing '/'; "/root" for "NAME:" */
	bool dir;		/* the sandbox path ended with '/': a directory */
};

static volatile sig_atomic_t cp_interrupted;

static void cp_signal_cb(int sig)
{
	cp_interrupted = sig;
}

static void cp_end_free(struct cp_end *e)
{
	free(e->name);
	free(e->path);
}

/* Parses arg as NAME:PATH (e->name set) or a local path (e->name NULL). */
static void cp_parse(const char *arg, struct cp_end *e)
{
	memset(e, 0, sizeof *e);
	e->arg = arg;
	const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');
	if (!colon || (slash && slash < colon) || colon == arg)
		return;
	char *name = xstrndup(arg, (size_t)(colon - arg));
	if (!text_workspace_ok(name) && !text_is_job_id(name)) {
		free(name);
		return;
	}
	e->name = name;
	const char *p = colon + 1;
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/') {
		e->dir = true;
		n--;
	}
	e->path = n ? xstrndup(p, n) : xstrdup("/root");
}

/* The last component of path (a new string), or NULL when it has none ("-", "/"). */
static char *cp_base(const char *path)
{
	if (!strcmp(path, "-"))
		return NULL;
	char *copy = xstrdup(path);
	char *b = basename(copy);
	char *r = strcmp(b, "/") && strcmp(b, ".") && strcmp(b, "..") && *b ? xstrdup(b) : NULL;
	free(copy);
	return r;
}

/* "/mags-jobs/NAME/files[/what]?path=P" plus extra (a query tail, may be ""); a new string. */
static char *cp_url(struct client *c, const char *name, const char *what, const char *path, const char *extra)
{
	char *n = client_escape(c, name), *p = client_escape(c, path);
	char *u = xasprintf("/mags-jobs/%s/files%s%s?path=%s%s", n, what ? "/" : "", what ? what : "", p, extra);
	free(n);
	free(p);
	return u;
}

/*
 * Prints the error of a failed call about `where` (NAME:PATH as the user
 * wrote it): a missing file reads "no such file or directory"; a files-API
 * message "PATH: TEXT" loses its PATH (where says it).
 */
static int cp_error(const char *where, int r, const struct err *err)
{
	if (r == CLIENT_E_INTR) {
		cli_error("cp: interrupted");
		return CLI_EXIT_INTERRUPTED;
	}
	const char *msg = err->msg;
	if (r == CLIENT_E_HTTP && msg[0] == '/') {
		if (err->code == 404) {
			cli_error("cp: %s: no such file or directory", where);
			return CLI_EXIT_FAIL;
		}
		const char *sep = strstr(msg, ": ");
		if (sep)
			msg = sep + 2;
	}
	cli_error("cp: %s: %s", where, msg);
	return CLI_EXIT_FAIL;
}

/*
 * GET .../files/stat of path: 0 with *info (new reference), 1 when it does
 * not exist, or -1 after printing why it failed (*ret the exit status).
 */
static int cp_stat(struct client *c, const struct cp_end *e, const char *path, json_t **info, int *ret)
{
	*info = NULL;
	struct err err;
	err_clear(&err);
	char *url = cp_url(c, e->name, "stat", path, "");
	int r = client_call(c, "GET", url, NULL, info, &err);
	free(url);
	if (r == CLIENT_OK)
		return 0;
	if (r == CLIENT_E_HTTP && err.code == 404 && err.msg[0] == '/')
		return 1;
	*ret = cp_error(e->arg, r, &err);
	return -1;
}

static bool cp_is_dir(json_t *info)
{
	const char *t = json_string_value(json_object_get(info, "type"));
	return t && !strcmp(t, "dir");
}

static void cp_note(struct cli *cli, const char *what, long long bytes, const struct timeval *t0)
{
	if (!cli->verbose)
		return;
	struct timeval t1;
	gettimeofday(&t1, NULL);
	double s = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_usec - t0->tv_usec) / 1e6;
	char human[32];
	text_bytes(bytes > 0 ? (uint64_t)bytes : 0, human, sizeof human);
	fprintf(stderr, "mags: copied %s (%s) in %.1f s\n", what, human, s);
}

/* Local SRC (or stdin) into the sandbox at dst. */
static int cp_in(struct cli *cli, struct client *c, const char *src, const struct cp_end *dst)
{
	int ret = CLI_EXIT_FAIL, fd = 0;
	long long size = -1;
	unsigned mode = 0644;
	char *base = cp_base(src), *path = NULL, *url = NULL;
	json_t *info = NULL;
	if (strcmp(src, "-")) {
		struct stat st;
		fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0) {
			cli_error("cp: %s: %s", src, strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode)) {
			cli_error("cp: %s: is a directory (mags cp copies one file)", src);
			goto out;
		}
		if (S_ISREG(st.st_mode))
			size = (long long)st.st_size;
		mode = st.st_mode & 07777;
	}
	/* a directory in the sandbox receives the file under its own name */
	bool into_dir = dst->dir;
	if (!into_dir) {
		int s = cp_stat(c, dst, dst->path, &info, &ret);
		if (s < 0)
			goto out;
		into_dir = s == 0 && cp_is_dir(info);
	}
	if (into_dir && !base) {
		cli_error("cp: %s: is a directory; name the file to write from %s", dst->arg, src);
		goto out;
	}
	path = into_dir ? xasprintf("%s/%s", strcmp(dst->path, "/") ? dst->path : "", base) : xstrdup(dst->path);
	char extra[32];
	snprintf(extra, sizeof extra, "&mode=%04o", mode);
	url = cp_url(c, dst->name, NULL, path, extra);
	struct timeval t0;
	gettimeofday(&t0, NULL);
	struct err err;
	err_clear(&err);
	long long sent;
	int r = client_put_fd(c, url, fd, strcmp(src, "-") ? src : "stdin", size, NULL, &sent, &err);
	if (r < 0) {
		char *where = xasprintf("%s:%s", dst->name, path);
		ret = r == CLIENT_E_CB ? (cli_error("cp: %s", err.msg), CLI_EXIT_FAIL) : cp_error(where, r, &err);
		free(where);
		goto out;
	}
	char *what = xasprintf("%s to %s:%s", src, dst->name, path);
	cp_note(cli, what, sent, &t0);
	free(what);
	ret = CLI_EXIT_OK;
out:
	if (fd > 0)
		close(fd);
	json_decref(info);
	free(base);
	free(path);
	free(url);
	return ret;
}

/* The sandbox's src out to local DST (or stdout). */
static int cp_out(struct cli *cli, struct client *c, const struct cp_end *src, const char *dst)
{
	int ret = CLI_EXIT_FAIL, fd = -1;
	char *dpath = NULL, *tmp = NULL, *url = NULL;
	json_t *info = NULL;
	bool to_stdout = !strcmp(dst, "-");
	int s = cp_stat(c, src, src->path, &info, &ret);
	if (s < 0)
		return ret;
	if (s == 1) {
		cli_error("cp: %s: no such file or directory", src->arg);
		return CLI_EXIT_FAIL;
	}
	if (cp_is_dir(info)) {
		cli_error("cp: %s: is a directory (mags cp copies one file)", src->arg);
		goto out;
	}
	const char *t = json_string_value(json_object_get(info, "type"));
	unsigned mode = 0644;
	const char *m = json_string_value(json_object_get(info, "mode"));
	if (m && t && !strcmp(t, "file"))
		mode = (unsigned)strtoul(m, NULL, 8) & 0777;
	if (to_stdout) {
		fd = STDOUT_FILENO;
	} else {
		struct stat st;
		size_t n = strlen(dst);
		char *base = cp_base(src->path);
		if ((n && dst[n - 1] == '/') || (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))) {
			if (!base) {
				cli_error("cp: %s: has no file name", src->arg);
				goto out;
			}
			dpath = xasprintf("%s%s%s", dst, dst[n - 1] == '/' ? "" : "/", base);
		} else {
			dpath = xstrdup(dst);
		}
		free(base);
		char *copy = xstrdup(dpath);
		char *dir = dirname(copy), *b = cp_base(dpath);
		tmp = xasprintf("%s/.%s.mags-cp-XXXXXX", dir, b ? b : "file");
		free(b);
		free(copy);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			cli_error("cp: %s: %s", dpath, strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
	}
	url = cp_url(c, src->name, NULL, src->path, "");
	struct timeval t0;
	gettimeofday(&t0, NULL);
	struct err err;
	err_clear(&err);
	long long got;
	int r = client_download(c, url, fd, &got, &err);
	if (r == CLIENT_E_CB) {
		cli_error("cp: %s: %s", to_stdout ? "stdout" : dpath, err.msg);
		goto out;
	}
	if (r < 0) {
		ret = cp_error(src->arg, r, &err);
		goto out;
	}
	if (!to_stdout) {
		mode_t um = umask(0);
		umask(um);
		if (fchmod(fd, mode & ~um) < 0 || close(fd) < 0) {
			fd = -1;
			cli_error("cp: %s: %s", dpath, strerror(errno));
			goto out;
		}
		fd = -1;
		if (rename(tmp, dpath) < 0) {
			cli_error("cp: %s: %s", dpath, strerror(errno));
			goto out;
		}
		free(tmp);
		tmp = NULL; /* it is dpath now */
	}
	char *what = xasprintf("%s to %s", src->arg, to_stdout ? "stdout" : dpath);
	cp_note(cli, what, got, &t0);
	free(what);
	ret = CLI_EXIT_OK;
out:
	if (fd >= 0 && !to_stdout)
		close(fd);
	if (tmp)
		unlink(tmp);
	json_decref(info);
	free(tmp);
	free(dpath);
	free(url);
	return ret;
}

int cmd_cp(struct cli *cli, int argc, char **argv)
{
	const char *args[2];
	int n = 0;
	bool only_args = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && !strcmp(a, "--")) {
			only_args = true;
			continue;
		}
		if (!only_args && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			fputs(cmd_cp_usage, stdout);
			return CLI_EXIT_OK;
		}
		if (!only_args && a[0] == '-' && a[1])
			return cli_usage_error("cp", "cp: unknown flag %s", a);
		if (n == 2)
			return cli_usage_error("cp", "cp: unexpected argument \"%s\" (copy one file: mags cp SRC DST)", a);
		if (!*a)
			return cli_usage_error("cp", "cp: empty path");
		args[n++] = a;
	}
	if (n < 2)
		return cli_usage_error("cp", "cp: missing %s", n ? "DST" : "SRC and DST");
	struct cp_end src, dst;
	cp_parse(args[0], &src);
	cp_parse(args[1], &dst);
	int ret;
	if (src.name && dst.name) {
		ret = cli_usage_error("cp", "cp: both SRC and DST are in a sandbox; one of them must be local");
		goto out;
	}
	if (!src.name && !dst.name) {
		ret = cli_usage_error("cp", "cp: neither SRC nor DST is NAME:PATH (a path in a sandbox)");
		goto out;
	}
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		ret = CLI_EXIT_FAIL;
		goto out;
	}
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = cp_signal_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	client_set_interrupt(c, &cp_interrupted);
	ret = dst.name ? cp_in(cli, c, args[0], &dst) : cp_out(cli, c, &src, args[1]);
	if (cp_interrupted)
		ret = CLI_EXIT_INTERRUPTED;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	client_free(c);
out:
	cp_end_free(&src);
	cp_end_free(&dst);
	return ret;
}
