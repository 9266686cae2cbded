// SPDX-License-Identifier: MIT
/*
 * mags exec [-i] [-t] [-d] [-e K=V]... [-w DIR] [--timeout S] NAME [CMD...]:
 * a command in a running sandbox (docs/sandboxes.md, "CLI" and "REST").
 * POST /mags-jobs/NAME/exec answers with the process's output as an NDJSON
 * stream that ends with its exit; stdout and stderr events go to our fds 1
 * and 2 as they come and mags exits with the process's code.
 *
 * A session (exec_session_run, also behind mags proc attach in cmd_proc.c)
 * has up to three threads, each with a client (connection) of its own so
 * that none waits for another:
 *   - the caller's reads the output stream;
 *   - the input thread reads stdin and POSTs it to .../stdin (?eof=1 at its
 *     end), batching what is there; it starts once the process has an id;
 *   - the control thread turns signals into requests: SIGWINCH ->
 *     .../resize; SIGINT/SIGTERM -> .../signal, where a second one within
 *     EXEC_SIGNAL_AGAIN_S ends the client (exit 128+N); SIGHUP ends it.
 * Signal handlers only write the signal's number to a pipe. With -t our
 * terminal is raw, so Ctrl-C is a byte for the guest's terminal; it is
 * restored on every way out (also at exit). The session ends a
 * client-side wait by setting the interrupt flag of the clients involved,
 * which libcurl looks at (at least) once a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "cli.h"
#include "client.h"
#include "xmalloc.h"

#define EXEC_STDIN_CHUNK (256u * 1024)	/* bytes of stdin per POST (the API takes up to 1 MiB) */
#define EXEC_SIGNAL_AGAIN_S 2.0		/* a second SIGINT/SIGTERM this soon ends the client */
#define EXEC_ENV_MAX 256		/* -e flags */
/* -it without CMD: a login shell, bash when the image has it (docs/sandboxes.md) */
#define EXEC_SHELL "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi"

const char cmd_exec_usage[] =
	"usage: mags exec [-i] [-t] [-d] [-e K=V]... [-w DIR] [--timeout S] NAME [CMD [ARG...]]\n"
	"\n"
	"Runs CMD in the running sandbox NAME (a workspace name as mags new made it,\n"
	"or a job id): its words are joined with spaces and run by /bin/sh -c. Its\n"
	"stdout and stderr stream to ours and mags exits with its exit code (124\n"
	"when --timeout ended it, 128+N when signal N did). stdin is passed to it\n"
	"when it is not a terminal (a pipe or a file), or with -i. SIGINT/SIGTERM\n"
	"are sent on to the process; a second one within 2 s ends mags (130).\n"
	"Flags go before NAME: every word after NAME belongs to CMD.\n"
	"\n"
	"  -i, --interactive  pass stdin even when it is a terminal\n"
	"  -t, --tty          give CMD a terminal (PTY): ours goes to raw mode, its\n"
	"                     size follows, Ctrl-C reaches the process; stdin must be\n"
	"                     a terminal. -it without CMD: a login shell (bash, else sh)\n"
	"  -d, --detach       start it in the background and print its id (see\n"
	"                     mags proc); with -i its stdin stays open for proc attach\n"
	"  -e, --env K=V      set an environment variable (-e K: our value of K)\n"
	"  -w, --workdir DIR  working directory (default /root)\n"
	"      --timeout S    kill it after S seconds (exit 124; 0 = none)\n"
	"\n"
	"Errors (no such sandbox, a job that has ended) are one mags: line, exit 1.\n";

/* ---- the output stream ---------------------------------------------------- */

void exec_output_free(struct exec_output *o)
{
	json_decref(o->exit);
	o->exit = NULL;
}

/* Writes p[0..n) to fd whole. Returns 0 or -errno. */
static int exec_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int exec_output_cb(void *arg, char *line, size_t len, struct err *err)
{
	struct exec_output *o = arg;
	json_t *ev = json_loadb(line, len, 0, NULL);
	int r = 0;
	if (!json_is_object(ev)) {
		r = err_set(err, 0, "malformed line in the output stream: %.80s", line);
		goto out;
	}
	const char *type = json_string_value(json_object_get(ev, "type"));
	long long offset = (long long)json_integer_value(json_object_get(ev, "offset"));
	if (!type) {
		/* not an event: a newer magsd's addition */
	} else if (!strcmp(type, "start")) {
		json_t *id = json_object_get(json_object_get(ev, "process"), "id");
		if (!json_is_integer(id) || json_integer_value(id) <= 0) {
			r = err_set(err, 0, "the start event names no process id");
			goto out;
		}
		o->pid = (long)json_integer_value(id);
	} else if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
		json_t *dv = json_object_get(ev, "data");
		struct buf b;
		buf_init(&b);
		if (!json_is_string(dv) || base64_decode(json_string_value(dv), json_string_length(dv), &b) < 0) {
			buf_free(&b);
			r = err_set(err, 0, "malformed %s event in the output stream", type);
			goto out;
		}
		int fd = type[3] == 'o' ? STDOUT_FILENO : STDERR_FILENO;
		int w = exec_write_all(fd, b.data, b.len);
		buf_free(&b);
		if (w < 0) {
			o->write_errno = -w;
			r = err_set(err, -w, "write to %s", fd == STDOUT_FILENO ? "stdout" : "stderr");
			goto out;
		}
		o->next = offset + (long long)b.len;
	} else if (!strcmp(type, "lost")) {
		long long n = (long long)json_integer_value(json_object_get(ev, "bytes"));
		cli_error("%lld bytes of output before offset %lld were not kept", n, offset + n);
		o->next = offset + n;
	} else if (!strcmp(type, "end")) {
		o->next = offset;
		o->ended = true;
	} else if (!strcmp(type, "exit")) {
		json_decref(o->exit);
		o->exit = json_incref(ev);
		o->next = offset;
		o->ended = true;
	}
out:
	json_decref(ev);
	return r;
}

int exec_exit_status(json_t *p, long pid)
{
	json_t *ec = json_object_get(p, "exit_code");
	const char *st = json_string_value(json_object_get(p, "status"));
	if (json_is_integer(ec) && json_integer_value(ec) >= 0 && json_integer_value(ec) <= 255) {
		if (json_is_true(json_object_get(p, "timed_out")))
			cli_error("process %ld timed out (exit 124)", pid);
		return (int)json_integer_value(ec);
	}
	if (st && !strcmp(st, "lost"))
		cli_error("process %ld was lost: its sandbox stopped or restarted before it exited", pid);
	else
		cli_error("process %ld ended without an exit code (status %s)", pid, st ? st : "unknown");
	return CLI_EXIT_FAIL;
}

/* ---- the session: terminal, signals, threads -------------------------------- */

static int exec_sig_pipe[2] = { -1, -1 };	/* handlers write the signal number here */
static struct termios exec_tio;			/* our terminal before we changed it */
static volatile sig_atomic_t exec_tio_changed;

static void exec_term_restore(void)
{
	if (exec_tio_changed) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &exec_tio);
		exec_tio_changed = 0;
	}
}

/*
 * Raw mode (raw) or, for the detach key on a cooked terminal, Ctrl-] as an
 * end-of-line character, so read() returns it at once. Returns 0 or -errno.
 */
static int exec_term_set(bool raw, bool detach_key)
{
	static bool atexit_done;
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &exec_tio) < 0)
		return -errno;
	t = exec_tio;
	if (raw)
		cfmakeraw(&t);
	else if (detach_key)
		t.c_cc[VEOL] = EXEC_DETACH_KEY;
	else
		return 0;
	if (!atexit_done) {
		atexit(exec_term_restore);
		atexit_done = true;
	}
	exec_tio_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0) {
		exec_tio_changed = 0;
		return -errno;
	}
	return 0;
}

static void exec_signal_cb(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (write(exec_sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: signals are coming faster than we handle them */
	}
	errno = saved;
}

static const int exec_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
#define EXEC_NSIGNALS (sizeof exec_signals / sizeof exec_signals[0])

/* A running session: exec_session plus what its threads share. */
struct exec_run {
	const struct exec_session *s;
	char *esc_name;			/* s->name escaped for a path; owned */
	long pid;			/* atomic: 0 until known */
	struct client *in_c, *ctl_c;	/* the input and control threads' clients; owned */
	volatile sig_atomic_t stop;	/* set: end the session (the stream's interrupt flag) */
	volatile sig_atomic_t done;	/* set: the session ends (the threads' interrupt flag) */
	int stop_sig;			/* the signal that ended it; 0 */
	volatile sig_atomic_t detached;	/* the detach key ended it */
	int wake[2];			/* a byte here ends both threads */
	pthread_t in_t, ctl_t;
	bool in_started, ctl_started;
	struct exec_output out;
};

static long exec_pid(struct exec_run *x)
{
	return __atomic_load_n(&x->pid, __ATOMIC_ACQUIRE);
}

/* "/mags-jobs/NAME/processes/PID/what" (new string). */
static char *exec_path(struct exec_run *x, const char *what)
{
	return xasprintf("/mags-jobs/%s/processes/%ld/%s", x->esc_name, exec_pid(x), what);
}

/* Our window size into *cols, *rows; false when stdin is no terminal. */
static bool exec_winsize(int *cols, int *rows)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_col || !ws.ws_row)
		return false;
	*cols = ws.ws_col;
	*rows = ws.ws_row;
	return true;
}

/* POST .../resize with our window size (errors ignored: the next resize tries again). */
static void exec_resize(struct exec_run *x)
{
	int cols, rows;
	if (!exec_pid(x) || !exec_winsize(&cols, &rows))
		return;
	char *path = exec_path(x, "resize");
	json_t *body = json_pack("{s:i, s:i}", "cols", cols, "rows", rows);
	struct err err;
	client_call(x->ctl_c, "POST", path, body, NULL, &err);
	json_decref(body);
	free(path);
}

static double exec_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Ends the session because of sig (0: the detach key). */
static void exec_end(struct exec_run *x, int sig)
{
	if (!x->stop) {
		x->stop_sig = sig;
		if (!sig)
			x->detached = 1;
	}
	x->stop = 1;
}

/* Waits until fd has something (or an end) to read; false when the session ends (x->wake). */
static bool exec_wait(struct exec_run *x, int fd)
{
	for (;;) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { x->wake[0], POLLIN, 0 } };
		if (poll(pf, 2, -1) < 0 && errno == EINTR)
			continue;
		return !pf[1].revents && pf[0].revents;
	}
}

/* The control thread: signals to requests. */
static void *exec_control_main(void *arg)
{
	struct exec_run *x = arg;
	double last = -1e9;
	while (exec_wait(x, exec_sig_pipe[0])) {
		unsigned char sigs[16];
		ssize_t n = read(exec_sig_pipe[0], sigs, sizeof sigs);
		for (ssize_t i = 0; i < n; i++) {
			int sig = sigs[i];
			if (sig == SIGWINCH) {
				if (x->s->tty)
					exec_resize(x);
				continue;
			}
			double now = exec_now();
			if (sig == SIGHUP || !x->s->forward_signals || !exec_pid(x) || now - last < EXEC_SIGNAL_AGAIN_S) {
				exec_end(x, sig);
				continue;
			}
			last = now;
			char *path = exec_path(x, "signal");
			json_t *body = json_pack("{s:s}", "signal", sig == SIGINT ? "INT" : "TERM");
			struct err err;
			int r = client_call(x->ctl_c, "POST", path, body, NULL, &err);
			json_decref(body);
			free(path);
			if (r < 0 && !x->done && !(r == CLIENT_E_HTTP && err.code == 409))
				cli_error("could not pass on signal %d: %s", sig, err.msg);
		}
	}
	return NULL;
}

/* Whether fd has something to read right now. */
static bool exec_readable(int fd)
{
	struct pollfd pf = { fd, POLLIN, 0 };
	return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLIN | POLLHUP));
}

/* The input thread: stdin to .../stdin. */
static void *exec_input_main(void *arg)
{
	struct exec_run *x = arg;
	const struct exec_session *s = x->s;
	uint8_t *chunk = xmalloc(EXEC_STDIN_CHUNK);
	char *path = exec_path(x, "stdin");
	char *path_eof = xasprintf("%s?eof=1", path);
	while (exec_wait(x, STDIN_FILENO)) {
		size_t len = 0;
		bool eof = false, detach = false;
		do {
			ssize_t n = read(STDIN_FILENO, chunk + len, EXEC_STDIN_CHUNK - len);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				break;
			if (n <= 0) {
				eof = true;	/* a read error ends stdin as its end does */
				break;
			}
			uint8_t *key = s->detach_key ? memchr(chunk + len, EXEC_DETACH_KEY, (size_t)n) : NULL;
			if (key) {
				n = key - (chunk + len);
				detach = true;
			}
			len += (size_t)n;
		} while (!detach && len < EXEC_STDIN_CHUNK && exec_readable(STDIN_FILENO));
		bool close_it = eof && s->send_eof;
		if (s->forward && (len || close_it)) {
			struct err err;
			int r = client_post_bytes(x->in_c, close_it ? path_eof : path, chunk, len, NULL, &err);
			if (r < 0) {
				/* 409: its stdin is closed or it ended; the output stream tells the rest */
				if (!x->done && r != CLIENT_E_INTR && !(r == CLIENT_E_HTTP && err.code == 409))
					cli_error("stdin: %s", err.msg);
				break;
			}
		}
		if (detach) {
			exec_end(x, 0);
			break;
		}
		if (eof)
			break;
	}
	free(path_eof);
	free(path);
	free(chunk);
	return NULL;
}

/* Starts fn in a thread that does not take the session's signals. */
static bool exec_thread_start(pthread_t *t, void *(*fn)(void *), struct exec_run *x)
{
	sigset_t all, old;
	sigemptyset(&all);
	for (size_t i = 0; i < EXEC_NSIGNALS; i++)
		sigaddset(&all, exec_signals[i]);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int e = pthread_create(t, NULL, fn, x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		cli_error("cannot start a thread: %s", strerror(e));
	return e == 0;
}

/* The stream's line callback: the output, and the input thread once the pid is known. */
static int exec_stream_cb(void *arg, char *line, size_t len, struct err *err)
{
	struct exec_run *x = arg;
	int r = exec_output_cb(&x->out, line, len, err);
	if (r == 0 && x->out.pid && !exec_pid(x)) {
		__atomic_store_n(&x->pid, x->out.pid, __ATOMIC_RELEASE);
		if (x->s->input && !x->in_started)
			x->in_started = exec_thread_start(&x->in_t, exec_input_main, x);
	}
	return r;
}

int exec_session_run(struct client *c, const struct exec_session *s, json_t *exec_body)
{
	struct exec_run x = { .s = s, .pid = s->pid, .wake = { -1, -1 } };
	struct sigaction old[EXEC_NSIGNALS];
	struct sigaction sa, ign, old_pipe;
	struct err err;
	char *path = NULL;
	int ret = CLI_EXIT_FAIL, r;
	x.esc_name = client_escape(c, s->name);
	x.in_c = client_dup(c);
	x.ctl_c = client_dup(c);
	client_set_interrupt(x.in_c, &x.done);
	client_set_interrupt(x.ctl_c, &x.done);
	if (pipe2(exec_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(x.wake, O_CLOEXEC) < 0) {
		cli_error("pipe: %s", strerror(errno));
		goto out_fds;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = exec_signal_cb;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < EXEC_NSIGNALS; i++)
		sigaction(exec_signals[i], &sa, &old[i]);
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old_pipe);	/* a closed stdout is a write error, seen in the stream */
	if ((s->raw || s->detach_key) && (r = exec_term_set(s->raw, s->detach_key)) < 0) {
		cli_error("cannot set up the terminal: %s", strerror(-r));
		goto out;
	}
	client_set_interrupt(c, &x.stop);
	x.ctl_started = exec_thread_start(&x.ctl_t, exec_control_main, &x);
	if (!x.ctl_started)
		goto out;
	if (x.pid) {
		/* attach: the process is known; match its terminal to ours first */
		if (s->tty && s->raw)
			exec_resize(&x);
		if (s->input && !(x.in_started = exec_thread_start(&x.in_t, exec_input_main, &x)))
			goto out;
	}
	x.out.pid = s->pid;
	if (exec_body) {
		path = xasprintf("/mags-jobs/%s/exec", x.esc_name);
		r = client_post_stream(c, path, exec_body, exec_stream_cb, &x, &err);
	} else {
		path = xasprintf("/mags-jobs/%s/processes/%ld/output?offset=end&follow=1", x.esc_name, s->pid);
		r = client_stream(c, path, exec_stream_cb, &x, &err);
	}
	x.done = 1;
	exec_term_restore();	/* before any message of ours */
	if (x.out.exit) {
		ret = exec_exit_status(x.out.exit, exec_pid(&x));	/* whatever came after it */
	} else if (x.stop && x.detached) {
		fprintf(stderr, "mags: detached from process %ld; it goes on\n", exec_pid(&x));
		ret = CLI_EXIT_OK;
	} else if (x.stop) {
		ret = 128 + x.stop_sig;
	} else if (r == CLIENT_E_CB && x.out.write_errno == EPIPE) {
		ret = 128 + SIGPIPE;	/* our reader left: end quietly, as a killed writer would */
	} else if (r < 0) {
		cli_error("%s", err.msg);
	} else {
		cli_error("the output stream of process %ld ended before it exited", exec_pid(&x));
	}
out:
	x.done = 1;
	client_set_interrupt(c, NULL);
	if (x.wake[1] >= 0 && write(x.wake[1], "x", 1) < 0)
		cli_error("wake: %s", strerror(errno));
	if (x.in_started)
		pthread_join(x.in_t, NULL);
	if (x.ctl_started)
		pthread_join(x.ctl_t, NULL);
	exec_term_restore();
	for (size_t i = 0; i < EXEC_NSIGNALS; i++)
		sigaction(exec_signals[i], &old[i], NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
out_fds:
	for (int i = 0; i < 2; i++) {
		if (exec_sig_pipe[i] >= 0)
			close(exec_sig_pipe[i]);
		if (x.wake[i] >= 0)
			close(x.wake[i]);
		exec_sig_pipe[i] = -1;
	}
	exec_output_free(&x.out);
	client_free(x.in_c);
	client_free(x.ctl_c);
	free(x.esc_name);
	free(path);
	return ret;
}

/* ---- mags exec --------------------------------------------------------------- */

struct exec_opts {
	bool interactive, tty, detach, help;
	const char *name;
	const char *cwd;
	long timeout;		/* -1: not given */
	const char *env[EXEC_ENV_MAX];
	int nenv;
	char **cmd;		/* the words of CMD (into argv) */
	int ncmd;
};

/* "--flag V", "--flag=V" or "-fV"/"-f V" at argv[*i]: 1 with *val set, 0 no match, -1 value missing. */
static int exec_value(int argc, char **argv, int *i, const char *s, const char *l, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(l);
	if (!strncmp(a, l, n) && a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (strcmp(a, l) && !(s && !strcmp(a, s)))
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/* Parses argv; 0 or CLI_EXIT_USAGE (message printed). */
static int exec_parse(int argc, char **argv, struct exec_opts *o)
{
	memset(o, 0, sizeof *o);
	o->timeout = -1;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = true;
			return 0;
		}
		if (!strcmp(a, "--interactive")) {
			o->interactive = true;
			continue;
		}
		if (!strcmp(a, "--tty")) {
			o->tty = true;
			continue;
		}
		if (!strcmp(a, "--detach")) {
			o->detach = true;
			continue;
		}
		int m;
		if ((m = exec_value(argc, argv, &i, "-e", "--env", &v)) != 0) {
			if (m < 0)
				return cli_usage_error("exec", "exec: %s needs a value", a);
			if (!*v || *v == '=')
				return cli_usage_error("exec", "exec: -e \"%s\": want NAME=VALUE", v);
			if (o->nenv == EXEC_ENV_MAX)
				return cli_usage_error("exec", "exec: more than %d -e flags", EXEC_ENV_MAX);
			o->env[o->nenv++] = v;
			continue;
		}
		if ((m = exec_value(argc, argv, &i, "-w", "--workdir", &v)) != 0) {
			if (m < 0 || !*v)
				return cli_usage_error("exec", "exec: %s needs a directory", a);
			o->cwd = v;
			continue;
		}
		if ((m = exec_value(argc, argv, &i, NULL, "--timeout", &v)) != 0) {
			char *end;
			errno = 0;
			long t = m > 0 ? strtol(v, &end, 10) : -1;
			if (m < 0 || !*v || *end || t < 0 || errno)
				return cli_usage_error("exec", "exec: --timeout needs a number of seconds (0 = none)");
			o->timeout = t;
			continue;
		}
		if (a[1] == '-')
			return cli_usage_error("exec", "exec: unknown flag %s", a);
		/* short flags, together: -it, -id, -dti */
		for (const char *p = a + 1; *p; p++) {
			if (*p == 'i')
				o->interactive = true;
			else if (*p == 't')
				o->tty = true;
			else if (*p == 'd')
				o->detach = true;
			else
				return cli_usage_error("exec", "exec: unknown flag -%c", *p);
		}
	}
	if (i >= argc)
		return cli_usage_error("exec", "exec: missing NAME (a sandbox: workspace name or job id)");
	o->name = argv[i++];
	if (!*o->name)
		return cli_usage_error("exec", "exec: empty NAME");
	o->cmd = argv + i;
	o->ncmd = argc - i;
	if (!o->ncmd && !o->tty)
		return cli_usage_error("exec", "exec: missing CMD (mags exec -it NAME opens a shell)");
	return 0;
}

/* Whether stdin is /dev/null (or closed): nothing to pass on. */
static bool exec_stdin_empty(void)
{
	struct stat st;
	if (fstat(STDIN_FILENO, &st) < 0)
		return true;
	return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

/* The body of POST /exec (new reference). */
static json_t *exec_body(const struct exec_opts *o, bool stdin_open)
{
	struct buf cmd;
	buf_init(&cmd);
	if (!o->ncmd)
		buf_puts(&cmd, EXEC_SHELL);
	for (int k = 0; k < o->ncmd; k++) {
		if (k)
			buf_putc(&cmd, ' ');
		buf_puts(&cmd, o->cmd[k]);
	}
	json_t *b = json_pack("{s:s, s:b, s:b, s:b}", "command", cmd.data ? (char *)cmd.data : "", "tty", o->tty,
			      "stdin", stdin_open, "detach", o->detach);
	buf_free(&cmd);
	int cols, rows;
	if (o->tty && exec_winsize(&cols, &rows)) {
		json_object_set_new(b, "cols", json_integer(cols));
		json_object_set_new(b, "rows", json_integer(rows));
	}
	if (o->cwd)
		json_object_set_new(b, "cwd", json_string(o->cwd));
	if (o->timeout >= 0)
		json_object_set_new(b, "timeout", json_integer(o->timeout));
	json_t *env = json_object();
	const char *term = getenv("TERM");
	if (o->tty && term && *term)
		json_object_set_new(env, "TERM", json_string(term));	/* as ssh passes it */
	for (int k = 0; k < o->nenv; k++) {
		const char *eq = strchr(o->env[k], '=');
		char *key = eq ? xstrndup(o->env[k], (size_t)(eq - o->env[k])) : xstrdup(o->env[k]);
		const char *val = eq ? eq + 1 : getenv(key);
		if (val)
			json_object_set_new(env, key, json_string(val));
		free(key);
	}
	if (json_object_size(env))
		json_object_set_new(b, "env", env);
	else
		json_decref(env);
	return b;
}

/* -d: start it, print its id. */
static int exec_detached(struct client *c, const struct exec_opts *o, json_t *body)
{
	struct err err;
	json_t *p = NULL;
	char *esc = client_escape(c, o->name);
	char *path = xasprintf("/mags-jobs/%s/exec", esc);
	free(esc);
	int ret = CLI_EXIT_FAIL;
	if (client_call(c, "POST", path, body, &p, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	json_t *id = json_object_get(p, "id");
	if (!json_is_integer(id)) {
		cli_error("magsd started the process but sent no id");
		goto out;
	}
	printf("%lld\n", (long long)json_integer_value(id));
	fflush(stdout);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "mags: process %lld runs in %s; mags proc logs %s %lld -f follows it\n",
			(long long)json_integer_value(id), o->name, o->name, (long long)json_integer_value(id));
	ret = CLI_EXIT_OK;
out:
	json_decref(p);
	free(path);
	return ret;
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	struct exec_opts o;
	int ret = exec_parse(argc, argv, &o);
	if (ret)
		return ret;
	if (o.help) {
		fputs(cmd_exec_usage, stdout);
		return CLI_EXIT_OK;
	}
	if (o.tty && !o.detach && !isatty(STDIN_FILENO)) {
		cli_error("exec: the input is not a terminal (-t needs one; leave -t out to pipe stdin)");
		return CLI_EXIT_FAIL;
	}
	struct exec_session s = {
		.name = o.name,
		.tty = o.tty,
		.raw = o.tty,
		.forward_signals = true,
		.send_eof = true,
	};
	if (o.detach)
		s.input = o.interactive;	/* kept open for proc attach */
	else
		s.input = o.tty || o.interactive || (!isatty(STDIN_FILENO) && !exec_stdin_empty());
	s.forward = s.input;
	json_t *body = exec_body(&o, s.input);
	struct err err;
	struct client *c = NULL;
	ret = CLI_EXIT_FAIL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (o.detach)
		ret = exec_detached(c, &o, body);
	else
		ret = exec_session_run(c, &s, body);
out:
	client_free(c);
	json_decref(body);
	return ret;
}
