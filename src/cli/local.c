// SPDX-License-Identifier: MIT
/*
 * Starting a local magsd on demand; see local.h. magsd is looked up next to
 * the mags binary itself (/proc/self/exe), so an unpacked build tree or an
 * install prefix works without PATH. Its state lives in ~/.mags/local; the
 * daemon's early output (before it has its own log) goes to
 * ~/.mags/local/magsd.out so a failed start can be diagnosed.
 */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "xmalloc.h"

/* Path of the magsd next to this executable; the caller frees it. */
static int local_magsd_path(char **out, struct err *err)
{
	*out = NULL;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return err_set(err, errno, "find the mags binary (/proc/self/exe)");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	char *p = xasprintf("%s/magsd", self);
	if (access(p, X_OK) < 0) {
		int r = err_set(err, errno, "local mode needs magsd next to mags, but %s is not there", p);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* Points fd at path (or /dev/null) in a child before exec. */
static void local_redirect(int fd, const char *path, int flags)
{
	int t = open(path, flags | O_CLOEXEC, 0600);
	if (t < 0)
		_exit(127);
	if (dup2(t, fd) < 0)
		_exit(127);
	if (t != fd)
		close(t);
}

/* Runs `magsd --state-dir DIR token create` and returns its stdout (trimmed) in *out. */
static int local_token_create(const char *magsd, const char *state, char **out, struct err *err)
{
	*out = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int r = err_set(err, errno, "fork");
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		local_redirect(0, "/dev/null", O_RDONLY);
		dup2(p[1], 1);
		execl(magsd, magsd, "--state-dir", state, "token", "create", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	struct buf b;
	buf_init(&b);
	int r = 0;
	for (;;) {
		char tmp[512];
		ssize_t n = read(p[0], tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b.len + (size_t)n <= LOCAL_TOKEN_MAX)
			buf_append(&b, tmp, (size_t)n);
	}
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		r = err_set(err, 0, "%s --state-dir %s token create failed (%s %d)", magsd, state,
			    WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		goto out;
	}
	char *s = b.data ? (char *)b.data : NULL;
	size_t len = b.len;
	while (s && len && strchr(" \t\r\n", s[len - 1]))
		len--;
	while (s && len && strchr(" \t\r\n", *s)) {
		s++;
		len--;
	}
	if (!s || !len || memchr(s, '\n', len) || memchr(s, ' ', len)) {
		r = err_set(err, 0, "%s token create printed no usable token", magsd);
		goto out;
	}
	*out = xstrndup(s, len);
out:
	buf_free(&b);
	return r;
}

static long local_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The --listen address for the configured local URL ("http://HOST:PORT"), or
 * CONFIG_LOCAL_LISTEN when it is not of that form. The caller frees it.
 */
static char *local_listen_addr(const char *url)
{
	const char *p = url + (strncmp(url, "http://", 7) ? 0 : 7);
	if (p == url || !*p || strchr(p, '/') || !strchr(p, ':'))
		return xstrdup(CONFIG_LOCAL_LISTEN);
	return xstrdup(p);
}

/* Spawns `magsd --state-dir DIR --listen ADDR --daemon` and waits for /health. */
static int local_start(const char *magsd, const char *state, struct client *c, struct err *err)
{
	char *outlog = xasprintf("%s/magsd.out", state);
	char *listen_addr = local_listen_addr(client_base_url(c));
	int r = 0;
	pid_t pid = fork();
	if (pid < 0) {
		r = err_set(err, errno, "fork");
		goto out;
	}
	if (pid == 0) {
		local_redirect(0, "/dev/null", O_RDONLY);
		local_redirect(1, outlog, O_WRONLY | O_CREAT | O_APPEND);
		dup2(1, 2);
		close_range(3, ~0U, 0);	/* the daemon outlives us: hand it none of our fds */
		setsid();
		execl(magsd, magsd, "--state-dir", state, "--listen", listen_addr, "--daemon", (char *)NULL);
		_exit(127);
	}
	bool reaped = false;
	long deadline = local_now_ms() + LOCAL_START_WAIT_MS;
	for (;;) {
		if (client_health(c, 1000) == CLIENT_OK)
			break;
		int st;
		if (!reaped && waitpid(pid, &st, WNOHANG) == pid) {
			reaped = true;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				r = err_set(err, 0, "local magsd failed to start (%s %d; see %s)",
					    WIFEXITED(st) ? "exit status" : "signal",
					    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), outlog);
				goto out;
			}
		}
		if (local_now_ms() >= deadline) {
			r = err_set(err, 0, "local magsd did not answer on %s within %d s (see %s)",
				    client_base_url(c), LOCAL_START_WAIT_MS / 1000, outlog);
			goto out;
		}
		struct timespec ts = { 0, LOCAL_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	/* --daemon forks and the parent exits at once; reap it if it has not been */
	if (!reaped)
		waitpid(pid, NULL, WNOHANG);
out:
	free(listen_addr);
	free(outlog);
	return r;
}

int local_ensure(struct config *cfg, struct client *c, struct err *err)
{
	if (!cfg->home)
		return err_set(err, 0, "HOME is not set (needed for ~/.mags in local mode; or set MAGS_API_URL)");
	char *state = xasprintf("%s/local", cfg->dir);
	char *magsd = NULL;
	char *token = NULL;
	int r = 0;
	bool up = client_health(c, 2000) == CLIENT_OK;
	if (up && cfg->token)
		goto out;
	if ((r = local_magsd_path(&magsd, err)) < 0)
		goto out;
	if ((r = fs_mkdir_p(state, 0700)) < 0) {
		r = err_set(err, -r, "create %s", state);
		goto out;
	}
	if (!cfg->token) {
		if ((r = local_token_create(magsd, state, &token, err)) < 0)
			goto out;
		config_set(cfg, "api_url", json_string(cfg->api_url));
		config_set(cfg, "token", json_string(token));
		config_set(cfg, "local", json_true());
		if ((r = config_save(cfg, err)) < 0)
			goto out;
		cfg->token = token;
		token = NULL; /* transferred */
		client_set_token(c, cfg->token);
	}
	if (!up)
		r = local_start(magsd, state, c, err);
out:
	free(token);
	free(magsd);
	free(state);
	return r;
}
