// SPDX-License-Identifier: MIT
/*
 * Exec channels of mags-agent. MSG_EXEC on channel N starts `/bin/sh -c cmd`
 * (or a script file) in a session of its own; its stdout and stderr come back
 * as MSG_STDOUT/MSG_STDERR frames on N, and MSG_EXIT ends the channel once
 * the process has exited and both pipes reached EOF, or AGENT_EXIT_GRACE_MS
 * after the exit when a background child still holds a pipe. A job's
 * timeout fires here: exec_timers() kills the whole process group and the
 * exit report says 124 with AGENT_EXIT_TIMEOUT. With restart=1 (always-on)
 * a failed exit (non-zero, or killed) is reported with AGENT_EXIT_RESTART and
 * the channel stays: the same command starts again after a backoff (1 s,
 * doubling to 30 s, back to 1 s after a run of 30 s). With tty=1 the process
 * runs on a pseudo-terminal: its master is both the output (STDOUT frames; EIO
 * once every slave is closed counts as EOF) and the input (STDIN frames; an
 * empty one types the VEOF character), and RESIZE sets its window size. PAUSE
 * and RESUME stop and start reading one channel's output (the host's flow
 * control); a paused channel's EXIT waits until it is resumed and drained.
 * See docs/agent-protocol.md.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "payload.h"
#include "xmalloc.h"

#define EXEC_DRAIN_MAX (1024 * 1024)	/* bytes read from a pipe at the exit grace */

struct chan {
	struct chan *next;
	uint32_t id;
	pid_t pid;		/* process group leader; stays set after it is reaped */
	bool exited;		/* reaped; status is valid */
	int status;		/* from waitpid */
	bool timed_out;		/* we killed it at the deadline */
	int fd_out, fd_err;	/* read ends of stdout/stderr (tty: the master, fd_err -1), -1 after EOF */
	bool out_polled, err_polled;	/* fd_out / fd_err are in epoll (not paused) */
	int fd_in;		/* write end of stdin (tty: a dup of the master), -1 when none or closed */
	bool in_polled;		/* fd_in is in epoll (waiting for EPOLLOUT) */
	bool in_eof;		/* close fd_in once in is written */
	struct buf in;		/* stdin bytes not yet taken by the child */
	size_t in_off;
	int64_t deadline;	/* CLOCK_MONOTONIC ms of the timeout, or -1 */
	int64_t grace;		/* ms after which open pipes are abandoned, or -1 */
	char *script;		/* temporary script file to remove, or NULL */
	/* what it runs, kept to run it again (restart=1) */
	char *argv[4];		/* argv[0..2] owned (NULL-terminated) */
	char **envp;		/* owned, strings too */
	char *cwd;		/* owned, may be NULL */
	bool restart;		/* always-on: a failed exit starts it again */
	int crashes;		/* failed exits in a row (backoff) */
	int64_t started;	/* CLOCK_MONOTONIC ms of the last start */
	int64_t restart_at;	/* ms of the next start after a failure, or -1 */
	bool tty;		/* runs on a pseudo-terminal */
	unsigned short cols, rows;	/* its window size (kept for a restart) */
	bool held;		/* PAUSE: its output is not read until RESUME */
};

#define RESTART_FIRST_MS 1000	/* backoff after the first failure, doubled per failure */
#define RESTART_MAX_MS 30000	/* cap of the backoff */
#define RESTART_RESET_MS 30000	/* a run this long resets the backoff */

static struct chan *chan_find(struct agent *a, uint32_t id)
{
	for (struct chan *c = a->chans; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

bool exec_busy(struct agent *a, uint32_t chan)
{
	return chan_find(a, chan) != NULL;
}

static void close_fd(struct agent *a, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/*
 * Puts output fds in epoll or takes them out: read while neither the port's
 * backlog (a->paused) nor the host (PAUSE) holds the channel. Out of epoll
 * rather than with no events, as a hung-up pipe reports EPOLLHUP regardless.
 */
static void chan_poll(struct agent *a, struct chan *c)
{
	bool want = !a->paused && !c->held;
	int *fds[2] = { &c->fd_out, &c->fd_err };
	bool *polled[2] = { &c->out_polled, &c->err_polled };
	enum agent_ev kinds[2] = { AGENT_EV_STDOUT, AGENT_EV_STDERR };
	for (int i = 0; i < 2; i++) {
		if (*fds[i] < 0) {
			*polled[i] = false;
			continue;
		}
		if (want == *polled[i])
			continue;
		if (want)
			agent_epoll_add(a, *fds[i], EPOLLIN, AGENT_EV(kinds[i], c->id));
		else
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, *fds[i], NULL);
		*polled[i] = want;
	}
}

static void chan_free(struct agent *a, struct chan *c)
{
	for (struct chan **pp = &a->chans; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	a->nchans--;
	close_fd(a, &c->fd_out);
	close_fd(a, &c->fd_err);
	close_fd(a, &c->fd_in);
	if (c->script) {
		unlink(c->script);
		free(c->script);
	}
	for (int i = 0; c->argv[i]; i++)
		free(c->argv[i]);
	if (c->envp)
		for (int i = 0; c->envp[i]; i++)
			free(c->envp[i]);
	free(c->envp);
	free(c->cwd);
	buf_free(&c->in);
	free(c);
}

static int chan_spawn(struct agent *a, struct chan *c, bool want_stdin);

/* How long to wait before starting a failed always-on process again. */
static int64_t restart_delay(struct chan *c, int64_t now)
{
	if (now - c->started >= RESTART_RESET_MS)
		c->crashes = 0;
	int64_t d = RESTART_FIRST_MS;
	for (int i = 0; i < c->crashes && d < RESTART_MAX_MS; i++)
		d *= 2;
	c->crashes++;
	return d < RESTART_MAX_MS ? d : RESTART_MAX_MS;
}

/* Sends EXIT and frees the channel once the process is gone and its pipes are done. */
static void chan_maybe_finish(struct agent *a, struct chan *c)
{
	if (!c->exited || c->fd_out >= 0 || c->fd_err >= 0)
		return;
	struct agent_exit ex = { 0 };
	if (WIFSIGNALED(c->status)) {
		ex.signal = WTERMSIG(c->status);
		ex.code = 128 + ex.signal;
	} else {
		ex.code = WEXITSTATUS(c->status);
	}
	if (c->timed_out) {
		ex.code = 124;
		ex.flags |= AGENT_EXIT_TIMEOUT;
	}
	int64_t delay = -1;
	if (c->restart && ex.code != 0) {
		int64_t now = agent_now_ms();
		delay = restart_delay(c, now);
		ex.flags |= AGENT_EXIT_RESTART;
		ex.restart_ms = (uint32_t)delay;
		c->restart_at = now + delay;
		c->grace = -1;
	}
	uint8_t p[AGENT_EXIT_LEN];
	size_t n = proto_exit_encode(p, &ex);
	agent_send(a, MSG_EXIT, c->id, p, n);
	if (delay < 0)
		chan_free(a, c);
}

/*
 * Reads up to max bytes from one output pipe and sends them. Returns false
 * when the pipe reached EOF (or failed) and was closed.
 */
static bool pipe_pump(struct agent *a, struct chan *c, int *fd, uint16_t type, size_t max)
{
	static uint8_t chunk[AGENT_OUTPUT_CHUNK];
	size_t done = 0;
	while (*fd >= 0 && done < max) {
		ssize_t n = read(*fd, chunk, sizeof chunk);
		if (n > 0) {
			agent_send(a, type, c->id, chunk, (size_t)n);
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		close_fd(a, fd);
		return false;
	}
	return *fd >= 0;
}

static void stdin_pump(struct agent *a, struct chan *c)
{
	while (c->fd_in >= 0 && c->in_off < c->in.len) {
		ssize_t n = write(c->fd_in, c->in.data + c->in_off, c->in.len - c->in_off);
		if (n > 0) {
			c->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		/* EPIPE: the child closed its stdin; what is left has no reader */
		close_fd(a, &c->fd_in);
		c->in_polled = false;
	}
	if (c->in_off == c->in.len) {
		buf_reset(&c->in);
		c->in_off = 0;
		if (c->in_eof)
			close_fd(a, &c->fd_in);
	}
	if (c->fd_in < 0) {
		c->in_polled = false;
		return;
	}
	bool want = c->in_off < c->in.len;
	if (want && !c->in_polled)
		agent_epoll_add(a, c->fd_in, EPOLLOUT, AGENT_EV(AGENT_EV_STDIN, c->id));
	else if (!want && c->in_polled)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd_in, NULL);
	c->in_polled = want;
}

void exec_event(struct agent *a, enum agent_ev kind, uint32_t id, uint32_t events)
{
	struct chan *c = chan_find(a, id);
	if (!c)
		return;
	switch (kind) {
	case AGENT_EV_STDOUT:
		if (!c->held) /* an event of this turn from before a PAUSE */
			pipe_pump(a, c, &c->fd_out, MSG_STDOUT, 4 * AGENT_OUTPUT_CHUNK);
		break;
	case AGENT_EV_STDERR:
		if (!c->held)
			pipe_pump(a, c, &c->fd_err, MSG_STDERR, 4 * AGENT_OUTPUT_CHUNK);
		break;
	case AGENT_EV_STDIN:
		if (events & EPOLLERR) {
			close_fd(a, &c->fd_in);
			c->in_polled = false;
		}
		stdin_pump(a, c);
		break;
	default:
		break;
	}
	chan_maybe_finish(a, c);
}

void exec_pause(struct agent *a, bool pause)
{
	a->paused = pause;
	for (struct chan *c = a->chans; c; c = c->next)
		chan_poll(a, c);
}

bool exec_hold(struct agent *a, uint32_t id, bool hold)
{
	struct chan *c = chan_find(a, id);
	if (!c)
		return false;
	if (c->held == hold)
		return true;
	c->held = hold;
	/* the exit grace counts only while the host reads: it starts again at RESUME */
	if (!hold && c->exited && c->grace >= 0)
		c->grace = agent_now_ms() + AGENT_EXIT_GRACE_MS;
	chan_poll(a, c);
	return true;
}

void exec_resize(struct agent *a, uint32_t id, const uint8_t *p, size_t len)
{
	unsigned cols, rows;
	const char *bad = payload_resize_parse(p, len, &cols, &rows);
	if (bad) {
		agent_send_error(a, id, "%s", bad);
		return;
	}
	struct chan *c = chan_find(a, id);
	if (!c || !c->tty)
		return; /* not a terminal, or raced with the exit */
	c->cols = (unsigned short)cols;
	c->rows = (unsigned short)rows;
	int fd = c->fd_out >= 0 ? c->fd_out : c->fd_in;
	struct winsize ws = { .ws_row = c->rows, .ws_col = c->cols };
	if (fd >= 0 && ioctl(fd, TIOCSWINSZ, &ws) < 0)
		agent_log("channel %u: TIOCSWINSZ: %s", id, strerror(errno));
}

void exec_reap(struct agent *a)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		if (sshd_reaped(a, pid, st))
			continue;
		for (struct chan *c = a->chans; c; c = c->next) {
			if (c->pid == pid && !c->exited) {
				c->exited = true;
				c->status = st;
				c->deadline = -1;
				c->grace = agent_now_ms() + AGENT_EXIT_GRACE_MS;
				close_fd(a, &c->fd_in);
				c->in_polled = false;
				chan_maybe_finish(a, c);
				break;
			}
		}
	}
}

int exec_timers(struct agent *a)
{
	int64_t now = agent_now_ms(), next = -1;
	struct chan *c = a->chans, *nc;
	for (; c; c = nc) {
		nc = c->next;
		if (c->restart_at >= 0 && now >= c->restart_at) {
			int e = chan_spawn(a, c, false);
			if (e < 0) {
				agent_send_error(a, c->id, "restart: %s", strerror(-e));
				chan_free(a, c);
				continue;
			}
		}
		if (c->deadline >= 0 && now >= c->deadline) {
			c->timed_out = true;
			c->deadline = -1;
			if (kill(-c->pid, SIGKILL) < 0)
				kill(c->pid, SIGKILL);
		}
		if (c->exited && c->grace >= 0 && !c->held && now >= c->grace) {
			/* a background child keeps a pipe open: take what was written, then stop */
			pipe_pump(a, c, &c->fd_out, MSG_STDOUT, EXEC_DRAIN_MAX);
			pipe_pump(a, c, &c->fd_err, MSG_STDERR, EXEC_DRAIN_MAX);
			close_fd(a, &c->fd_out);
			close_fd(a, &c->fd_err);
			chan_maybe_finish(a, c);
			continue;
		}
		int64_t t = -1; /* the next deadline; a paused channel's grace waits for RESUME */
		if (c->restart_at >= 0)
			t = c->restart_at;
		else if (c->deadline >= 0)
			t = c->deadline;
		else if (c->exited && !c->held)
			t = c->grace;
		if (t >= 0 && (next < 0 || t < next))
			next = t;
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now > INT_MAX ? INT_MAX : next - now);
}

/* Sets "K=V" kv in e (n entries, room for one more), replacing K's entry. */
static void env_set(char **e, size_t *n, const char *kv)
{
	size_t kl = (size_t)(strchr(kv, '=') - kv) + 1; /* with the '=' */
	size_t j = 0;
	while (j < *n && strncmp(e[j], kv, kl) != 0)
		j++;
	if (j < *n)
		free(e[j]);
	e[j] = xstrdup(kv);
	if (j == *n)
		(*n)++;
}

/*
 * The child's environment: the agent's, with TERM for a tty and the request's
 * K=V entries replacing or adding. Built before vfork, so the child only
 * makes syscalls. Owned, strings too: a restarted process gets it again.
 */
static char **build_envp(const struct payload_exec *r)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **e = xmalloc((n + r->nenv + 2) * sizeof *e);
	for (size_t i = 0; i < n; i++)
		e[i] = xstrdup(environ[i]);
	if (r->tty) /* a terminal's type; the request's env may name another */
		env_set(e, &n, "TERM=xterm-256color");
	for (size_t i = 0; i < r->nenv; i++)
		env_set(e, &n, r->env[i]);
	e[n] = NULL;
	return e;
}

/* "mags-agent: <what><arg>: <strerror>" on the child's stderr, with writes only. */
static void child_say(const char *what, const char *arg, int e)
{
	const char *parts[] = { "mags-agent: ", what, arg, ": ", strerror(e), "\n" };
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
		if (write(2, parts[i], strlen(parts[i])) < 0)
			return;
}

/*
 * In the child of vfork: it shares the agent's memory until execve, so only
 * system calls here, no allocation and nothing that changes shared state.
 */
static void __attribute__((noreturn)) child_run(const char *cwd, char *const argv[], char *const envp[], int in,
						 int out, int err, bool ctty)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL); /* the child's own copy of the handlers */
	setsid();
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	/* a pty slave on 0-2 becomes the new session's controlling terminal (^C, SIGWINCH) */
	if (ctty && ioctl(0, TIOCSCTTY, 0) < 0)
		_exit(127);
	if (cwd && chdir(cwd) < 0) {
		int e = errno;
		child_say("cd ", cwd, e);
		_exit(126);
	}
	execve(argv[0], argv, envp);
	int e = errno;
	child_say("exec ", argv[0], e);
	_exit(e == ENOENT ? 127 : 126);
}

/*
 * vfork + child_run, in a frame of its own so no caller's locals live across
 * the vfork. vfork rather than fork: no copy of the agent's page tables and
 * no copy-on-write faults after, which is most of a fork's cost under TCG.
 */
static pid_t __attribute__((noinline)) spawn(const char *cwd, char *const argv[], char *const envp[], int in, int out,
					     int err, bool ctty)
{
	pid_t pid = vfork();
	if (pid == 0)
		child_run(cwd, argv, envp, in, out, err, ctty);
	return pid < 0 ? -errno : pid;
}

pid_t exec_spawn(const char *cwd, char *const argv[], char *const envp[], int in, int out, int err)
{
	return spawn(cwd, argv, envp, in, out, err, false);
}

/*
 * A pseudo-terminal pair of size cols x rows: *master (O_NONBLOCK) and *slave,
 * both O_CLOEXEC. Returns 0 or -errno.
 */
static int pty_open(unsigned short cols, unsigned short rows, int *master, int *slave)
{
	int e, s = -1;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (unlockpt(m) < 0)
		goto fail;
	/* the slave through the master (no path lookup, works in any mount namespace) */
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		char name[64];
		if (ptsname_r(m, name, sizeof name) != 0 || (s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
			goto fail;
	}
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	if (ioctl(m, TIOCSWINSZ, &ws) < 0)
		goto fail;
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	*master = m;
	*slave = s;
	return 0;
fail:
	e = -errno;
	close(m);
	if (s >= 0)
		close(s);
	return e;
}

/* A tty channel's process, on a fresh pty: its master becomes fd_out and (a dup) fd_in. */
static int chan_spawn_tty(struct agent *a, struct chan *c)
{
	int m = -1, s = -1, e = pty_open(c->cols, c->rows, &m, &s);
	if (e < 0)
		return e;
	int in = fcntl(m, F_DUPFD_CLOEXEC, 0);
	if (in < 0) {
		e = -errno;
		close(m);
		close(s);
		return e;
	}
	pid_t pid = spawn(c->cwd, c->argv, c->envp, s, s, s, true);
	close(s);
	if (pid < 0) {
		close(m);
		close(in);
		return pid;
	}
	c->pid = pid;
	c->fd_out = m;
	c->fd_err = -1;
	c->fd_in = in;
	return 0;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/*
 * Starts (or starts again) what channel c runs, with fresh output pipes and
 * stdin from a pipe (want_stdin) or /dev/null. Returns 0 or -errno.
 */
static int chan_spawn(struct agent *a, struct chan *c, bool want_stdin)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pi[2] = { -1, -1 };
	int devnull = -1, e = 0;
	if (c->tty) {
		if ((e = chan_spawn_tty(a, c)) < 0)
			return e;
		goto started;
	}
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 ||
	    (want_stdin ? pipe2(pi, O_CLOEXEC) : (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0) {
		e = -errno;
		goto fail;
	}
	pid_t pid = exec_spawn(c->cwd, c->argv, c->envp, want_stdin ? pi[0] : devnull, po[1], pe[1]);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		e = pid;
		goto fail;
	}
	close(po[1]);
	close(pe[1]);
	if (pi[0] >= 0)
		close(pi[0]);
	c->pid = pid;
	c->fd_out = po[0];
	c->fd_err = pe[0];
	c->fd_in = pi[1];
	set_nonblock(c->fd_out);
	set_nonblock(c->fd_err);
	if (c->fd_in >= 0)
		set_nonblock(c->fd_in);
started:
	c->exited = false;
	c->timed_out = false;
	c->grace = -1;
	c->restart_at = -1;
	c->started = agent_now_ms();
	c->out_polled = c->err_polled = false;
	c->in_eof = false;
	chan_poll(a, c);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
		if (pi[i] >= 0)
			close(pi[i]);
	}
	return e;
}

/* Fills c's argv (sh -c CMD, or the script file written for type "file"); NULL or an error for MSG_ERROR. */
static const char *chan_argv(struct chan *c, const struct payload_exec *r, char *errbuf, size_t n)
{
	if (!r->file) {
		c->argv[0] = xstrdup("/bin/sh");
		c->argv[1] = xstrdup("-c");
		c->argv[2] = xstrndup((const char *)r->cmd, r->cmd_len); /* the payload is not NUL-terminated */
		return NULL;
	}
	c->script = xasprintf("/tmp/.mags-script-%u", c->id);
	int e = ops_write_file(c->script, r->cmd, r->cmd_len, 0755);
	if (e < 0) {
		snprintf(errbuf, n, "write %s: %s", c->script, strerror(-e));
		free(c->script);
		c->script = NULL;
		return errbuf;
	}
	bool shebang = r->cmd_len >= 2 && r->cmd[0] == '#' && r->cmd[1] == '!';
	c->argv[0] = xstrdup(shebang ? c->script : "/bin/sh");
	if (!shebang)
		c->argv[1] = xstrdup(c->script);
	return NULL;
}

void exec_start(struct agent *a, uint32_t id, const uint8_t *kv, size_t len)
{
	struct payload_exec r;
	const char *bad;
	char errbuf[PATH_MAX + 64];

	if (id == 0) {
		agent_send_error(a, 0, "EXEC needs a nonzero channel");
		return;
	}
	if (agent_chan_busy(a, id)) {
		agent_send_error(a, id, "channel %u is busy", id);
		return;
	}
	if (a->nchans + a->nfchans >= AGENT_CHAN_MAX) {
		agent_send_error(a, id, "too many channels (max %d)", AGENT_CHAN_MAX);
		return;
	}
	if ((bad = payload_exec_parse(&r, kv, len)) != NULL) {
		agent_send_error(a, id, "EXEC: %s", bad);
		payload_exec_free(&r);
		return;
	}
	struct chan *c = xcalloc(1, sizeof *c);
	c->id = id;
	c->fd_out = c->fd_err = c->fd_in = -1;
	c->restart = r.restart;
	c->tty = r.tty;
	c->cols = (unsigned short)r.cols;
	c->rows = (unsigned short)r.rows;
	c->cwd = r.cwd;
	r.cwd = NULL;
	c->envp = build_envp(&r);
	buf_init(&c->in);
	c->next = a->chans;
	a->chans = c;
	a->nchans++;
	int e = 0;
	if ((bad = chan_argv(c, &r, errbuf, sizeof errbuf)) != NULL) {
		agent_send_error(a, id, "%s", bad);
	} else if ((e = chan_spawn(a, c, r.want_stdin && !r.restart)) < 0) {
		agent_send_error(a, id, "start: %s", strerror(-e));
		bad = "";
	}
	if (bad)
		chan_free(a, c);
	else
		c->deadline = r.timeout > 0 ? agent_now_ms() + r.timeout * 1000 : -1;
	payload_exec_free(&r);
}

void exec_stdin(struct agent *a, uint32_t id, const uint8_t *p, size_t len)
{
	struct chan *c = chan_find(a, id);
	/* a channel that just ended, or one without a stdin pipe: nothing reads it */
	if (!c || c->fd_in < 0 || c->in_eof)
		return;
	if (len == 0 && c->tty) {
		/* a terminal has no EOF of its own: type its VEOF character (^D by default) */
		struct termios t;
		uint8_t eof = 4;
		if (tcgetattr(c->fd_in, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE)
			eof = t.c_cc[VEOF];
		if (c->in.len - c->in_off < AGENT_STDIN_MAX)
			buf_append(&c->in, &eof, 1);
	} else if (len == 0) {
		c->in_eof = true;
	} else if (c->in.len - c->in_off + len > AGENT_STDIN_MAX) {
		agent_log("channel %u: more than %d bytes of stdin queued; closing its stdin", id, AGENT_STDIN_MAX);
		buf_reset(&c->in);
		c->in_off = 0;
		c->in_eof = true;
	} else {
		buf_append(&c->in, p, len);
	}
	stdin_pump(a, c);
}

void exec_signal(struct agent *a, uint32_t id, const uint8_t *p, size_t len)
{
	struct chan *c = chan_find(a, id);
	if (len != 4) {
		agent_send_error(a, id, "SIGNAL: payload must be 4 bytes");
		return;
	}
	int32_t sig = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	if (sig < 1 || sig > 64) {
		agent_send_error(a, id, "SIGNAL: bad signal %d", sig);
		return;
	}
	if (!c)
		return; /* raced with the exit: the host already has or will get EXIT */
	if (kill(-c->pid, sig) < 0 && !c->exited)
		kill(c->pid, sig);
}
