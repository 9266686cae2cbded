// SPDX-License-Identifier: MIT
/*
 * SSHD: the guest's OpenSSH server, run and supervised by the agent. The host
 * sends the sandbox's host key and the public keys allowed to log in as root;
 * the agent installs them (in /run/mags/ssh/, and in /root/.ssh/ when /root
 * is writable), writes an sshd_config of its own and starts the image's
 * /usr/sbin/sshd in the foreground as a child. The answer waits until sshd
 * listens on port 22, checked from the event loop's timer (sshd_timers), so
 * other channels keep streaming meanwhile. exec_reap() hands sshd's exit to sshd_reaped(), never
 * to an exec channel. Protocol: docs/agent-protocol.md, "SSHD in detail".
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payload.h"
#include "xmalloc.h"

#define SSHD_BIN "/usr/sbin/sshd"
#define SSHD_DIR AGENT_RUN_DIR "/ssh"
#define SSHD_CONFIG SSHD_DIR "/sshd_config"
#define SSHD_HOST_KEY SSHD_DIR "/ssh_host_key"
#define SSHD_KEYS SSHD_DIR "/authorized_keys"
#define SSHD_LOG SSHD_DIR "/sshd.log"
#define SSHD_PID SSHD_DIR "/sshd.pid"
#define SSHD_PRIVSEP "/run/sshd"		/* Debian's compiled-in privilege separation dir */
#define SSHD_ROOT_DIR "/root/.ssh"
#define SSHD_ROOT_KEYS SSHD_ROOT_DIR "/authorized_keys"
#define SSHD_PORT 22
#define SSHD_POLL_MS 50				/* listening check interval while requests wait */
#define SSHD_FILE_MAX (1024 * 1024)		/* an authorized_keys file we merge into */
#define SSHD_LOG_TAIL 360			/* bytes of sshd.log quoted in an ERROR */

static const char sshd_config[] =
	"# written by mags-agent (SSHD); see docs/agent-protocol.md\n"
	"Port 22\n"
	"ListenAddress 0.0.0.0\n"
	"HostKey " SSHD_HOST_KEY "\n"
	"PidFile " SSHD_PID "\n"
	"PermitRootLogin prohibit-password\n"
	"PasswordAuthentication no\n"
	"KbdInteractiveAuthentication no\n"
	"UsePAM no\n"
	"UseDNS no\n"
	"PrintMotd no\n"
	"PrintLastLog no\n"
	"AuthorizedKeysFile .ssh/authorized_keys " SSHD_KEYS "\n"
	"Subsystem sftp internal-sftp\n";

/*
 * Reads all of a small file into b (appending). Returns 0, -ENOENT when it
 * does not exist, -EFBIG above SSHD_FILE_MAX, or -errno.
 */
static int read_small(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	uint8_t tmp[4096];
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		if (b->len + (size_t)n > SSHD_FILE_MAX) {
			r = -EFBIG;
			break;
		}
		buf_append(b, tmp, (size_t)n);
	}
	close(fd);
	return r;
}

/* Whether the text in b has the line p/n (a trailing '\r' on a line ignored). */
static bool has_line(const struct buf *b, const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < b->len) {
		const uint8_t *nl = memchr(b->data + i, '\n', b->len - i);
		size_t end = nl ? (size_t)(nl - b->data) : b->len, l = end - i;
		if (l > 0 && b->data[i + l - 1] == '\r')
			l--;
		if (l == n && memcmp(b->data + i, p, n) == 0)
			return true;
		i = end + 1;
	}
	return false;
}

/* Appends the request's keys missing from path (created 0600). Returns 0 or -errno. */
static int keys_merge(const char *path, const struct payload_sshd *r)
{
	struct buf b;
	buf_init(&b);
	int e = read_small(path, &b);
	bool exists = e == 0;
	if (e == -ENOENT)
		e = 0;
	size_t old = b.len;
	if (e == 0 && old > 0 && b.data[old - 1] != '\n')
		buf_putc(&b, '\n');
	for (unsigned i = 0; e == 0 && i < r->nkeys; i++) {
		if (has_line(&b, r->key[i], r->key_len[i]))
			continue;
		buf_append(&b, r->key[i], r->key_len[i]);
		buf_putc(&b, '\n');
	}
	if (e == 0 && (!exists || b.len != old))
		e = ops_write_file(path, b.data ? b.data : (const uint8_t *)"", b.len, 0600);
	buf_free(&b);
	return e;
}

/* mkdir with mode, or chmod to it when it exists (a directory). Returns 0 or -errno. */
static int dir_ensure(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return (st.st_mode & 07777) != mode && chmod(path, mode) < 0 ? -errno : 0;
}

/*
 * Writes the host key when it differs from the installed one. Returns 1 when
 * it changed, 0 when not, or -errno.
 */
static int host_key_install(const struct payload_sshd *r)
{
	if (!r->host_key)
		return 0;
	struct buf want, have;
	buf_init(&want);
	buf_init(&have);
	buf_append(&want, r->host_key, r->host_key_len);
	if (r->host_key[r->host_key_len - 1] != '\n')
		buf_putc(&want, '\n'); /* OpenSSH's PEM parser wants the final newline */
	int e = read_small(SSHD_HOST_KEY, &have);
	if (e == 0 && have.len == want.len && memcmp(have.data, want.data, want.len) == 0)
		e = 0;
	else if ((e = ops_write_file(SSHD_HOST_KEY, want.data, want.len, 0600)) == 0)
		e = 1;
	buf_free(&want);
	buf_free(&have);
	return e;
}

/* The last SSHD_LOG_TAIL bytes of sshd.log, whitespace-trimmed, into out. */
static void log_tail(char *out, size_t outlen)
{
	out[0] = 0;
	int fd = open(SSHD_LOG, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > SSHD_LOG_TAIL ? end - SSHD_LOG_TAIL : 0;
	size_t want = outlen - 1 < (size_t)SSHD_LOG_TAIL ? outlen - 1 : SSHD_LOG_TAIL;
	ssize_t n = pread(fd, out, want, from);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	out[n] = 0;
}

/* Answers every waiting request: OK, or ERROR with why and the log's tail. */
static void answer_waiters(struct agent *a, const char *why)
{
	char tail[SSHD_LOG_TAIL + 1] = "";
	if (why)
		log_tail(tail, sizeof tail);
	for (unsigned i = 0; i < a->nsshd_wait; i++) {
		if (!why)
			agent_send(a, MSG_OK, a->sshd_wait[i], NULL, 0);
		else
			agent_send_error(a, a->sshd_wait[i], "SSHD: %s%s%s", why, tail[0] ? "; sshd.log: " : "", tail);
	}
	a->nsshd_wait = 0;
}

/* Starts sshd in the current root, output to sshd.log. Returns 0 or -errno. */
static int sshd_spawn(struct agent *a)
{
	static char *const argv[] = { (char *)SSHD_BIN, (char *)"-D", (char *)"-e", (char *)"-f",
				      (char *)SSHD_CONFIG, NULL };
	extern char **environ;
	int log = open(SSHD_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (log < 0)
		return -errno;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid = exec_spawn("/", argv, environ, null >= 0 ? null : log, log, log);
	close(log);
	if (null >= 0)
		close(null);
	if (pid < 0)
		return pid;
	a->sshd_pid = pid;
	agent_log("sshd started (pid %d)", (int)pid);
	return 0;
}

/* Waits for sshd to listen, answering on chan then. */
static void sshd_wait(struct agent *a, uint32_t chan)
{
	if (a->nsshd_wait == 0)
		a->sshd_deadline = agent_now_ms() + AGENT_SSHD_READY_MS;
	a->sshd_wait[a->nsshd_wait++] = chan;
}

void sshd_request(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len)
{
	struct payload_sshd r;
	const char *bad;
	int e;

	if (chan && exec_busy(a, chan)) {
		agent_send_error(a, chan, "channel %u is busy", chan);
		return;
	}
	if ((bad = payload_sshd_parse(&r, kv, len)) != NULL) {
		agent_send_error(a, chan, "%s", bad);
		return;
	}
	if (!a->pid1) {
		agent_send_error(a, chan, "SSHD: only the guest's PID 1 runs sshd");
		return;
	}
	if (access(SSHD_BIN, X_OK) < 0) {
		agent_send_error(a, chan, "SSHD: this image has no sshd (%s)", SSHD_BIN);
		return;
	}
	if (!r.host_key && access(SSHD_HOST_KEY, F_OK) < 0) {
		agent_send_error(a, chan, "SSHD: host_key is required (no host key installed yet)");
		return;
	}
	if (a->nsshd_wait == AGENT_SSHD_WAITERS) {
		agent_send_error(a, chan, "SSHD: %d requests wait for sshd already", AGENT_SSHD_WAITERS);
		return;
	}

	const char *what = SSHD_DIR;
	e = dir_ensure(AGENT_RUN_DIR, 0755);
	if (e == 0)
		e = dir_ensure(SSHD_DIR, 0700);
	if (e == 0) {
		what = SSHD_PRIVSEP;
		e = dir_ensure(SSHD_PRIVSEP, 0755);
	}
	if (e == 0) {
		what = SSHD_KEYS;
		e = keys_merge(SSHD_KEYS, &r);
	}
	if (e == 0) {
		what = SSHD_CONFIG;
		e = ops_write_file(SSHD_CONFIG, sshd_config, sizeof sshd_config - 1, 0644);
	}
	int changed = 0;
	if (e == 0) {
		what = SSHD_HOST_KEY;
		e = changed = host_key_install(&r);
	}
	if (e < 0) {
		agent_send_error(a, chan, "SSHD: %s: %s", what, strerror(-e));
		return;
	}
	/*
	 * Also root's own file, where users look and which a workspace keeps;
	 * best effort: the root may be read-only, and a frozen workspace would
	 * block the agent. sshd reads both files.
	 */
	if (a->ws_frozen)
		agent_log("SSHD: workspace frozen, %s not updated", SSHD_ROOT_KEYS);
	else if ((e = dir_ensure(SSHD_ROOT_DIR, 0700)) < 0 || (e = keys_merge(SSHD_ROOT_KEYS, &r)) < 0)
		agent_log("SSHD: %s: %s (keys are in %s)", SSHD_ROOT_KEYS, strerror(-e), SSHD_KEYS);

	if (a->sshd_pid) {
		if (changed) {
			/* sshd re-executes itself on SIGHUP, reading the new host key */
			kill(a->sshd_pid, SIGHUP);
		} else if (a->nsshd_wait == 0) {
			agent_send(a, MSG_OK, chan, NULL, 0);
			return;
		}
	} else if ((e = sshd_spawn(a)) < 0) {
		agent_send_error(a, chan, "SSHD: start %s: %s", SSHD_BIN, strerror(-e));
		return;
	}
	sshd_wait(a, chan);
}

/*
 * Whether a TCP socket listens on 127.0.0.1:22 (or 0.0.0.0:22), from
 * /proc/net/tcp: the kernel completes connections to a listening socket, so
 * this is "accepts connections", and unlike a probe connect(2) it neither
 * blocks nor makes sshd fork a session that a slow guest pays for.
 */
static bool sshd_listening(void)
{
	FILE *f = fopen("/proc/net/tcp", "re");
	if (!f)
		return false;
	char line[256];
	bool yes = false;
	while (!yes && fgets(line, sizeof line, f)) {
		unsigned addr, port, st;
		/* "  0: 0100007F:0016 00000000:0000 0A ...": address in network byte order as hex */
		if (sscanf(line, " %*u: %8x:%4x %*8x:%*4x %2x", &addr, &port, &st) == 3)
			yes = port == SSHD_PORT && st == 0x0a && (addr == 0 || addr == htonl(INADDR_LOOPBACK));
	}
	fclose(f);
	return yes;
}

int sshd_timers(struct agent *a)
{
	if (a->nsshd_wait == 0)
		return -1;
	int64_t now = agent_now_ms();
	if (now < a->sshd_check)
		return (int)(a->sshd_check - now);
	if (sshd_listening()) {
		answer_waiters(a, NULL);
		return -1;
	}
	if (now >= a->sshd_deadline) {
		answer_waiters(a, "sshd is not listening on port 22 after 30 s");
		sshd_stop(a);
		return -1;
	}
	a->sshd_check = now + SSHD_POLL_MS;
	return SSHD_POLL_MS;
}

bool sshd_reaped(struct agent *a, pid_t pid, int status)
{
	if (a->sshd_pid == 0 || pid != a->sshd_pid)
		return false;
	a->sshd_pid = 0;
	char why[64];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof why, "sshd was killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof why, "sshd exited with status %d", WEXITSTATUS(status));
	agent_log("%s", why);
	if (a->nsshd_wait)
		answer_waiters(a, why);
	return true;
}

void sshd_stop(struct agent *a)
{
	if (a->sshd_pid == 0)
		return;
	/* SIGKILL and wait: port 22 is free when this returns */
	kill(a->sshd_pid, SIGKILL);
	int st;
	while (waitpid(a->sshd_pid, &st, 0) < 0 && errno == EINTR)
		;
	a->sshd_pid = 0;
}

void sshd_root_changed(struct agent *a)
{
	if (a->sshd_pid == 0)
		return;
	sshd_stop(a);
	int e = sshd_spawn(a);
	if (e < 0) {
		agent_log("sshd restart after MOUNT: %s", strerror(-e));
		if (a->nsshd_wait)
			answer_waiters(a, "sshd could not be restarted after MOUNT");
	}
}
