// SPDX-License-Identifier: MIT
/*
 * mags-agent: PID 1 of every Mags guest. Sets the guest up (boot.c), opens the
 * virtio-serial port named "mags.agent", says HELLO and then serves frames
 * from magsd in one epoll loop: exec channels (exec.c), INIT and FILE (ops.c),
 * the files API (files.c), SSHD (sshd.c), PING, SIGNAL, STDIN, RESIZE, PAUSE,
 * RESUME, POWEROFF. Protocol: docs/agent-protocol.md.
 *
 * Not PID 1 (tests on the host): no mounts and no system changes; the port is
 * argv[1] or $MAGS_AGENT_PORT: a unix socket path, a character device or
 * "fd:N" for an inherited descriptor (a socketpair). EOF there ends the agent.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

#define PORT_WAIT_MS 60000	/* how long PID 1 waits for the port to appear */
#define READ_CHUNK 65536

static int log_fd = 2;

void agent_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	char msg[sizeof line + 16];
	int m = snprintf(msg, sizeof msg, "mags-agent: %.*s", n, line);
	if (m > 0 && write(log_fd, msg, (size_t)m) < 0)
		return;
}

int agent_read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void agent_epoll_add(struct agent *a, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		agent_log("epoll add fd %d: %s", fd, strerror(errno));
}

void agent_epoll_mod(struct agent *a, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		agent_log("epoll mod fd %d: %s", fd, strerror(errno));
}

static size_t out_pending(const struct agent *a)
{
	return a->out.len - a->out_off;
}

size_t agent_out_pending(const struct agent *a)
{
	return out_pending(a);
}

bool agent_chan_busy(struct agent *a, uint32_t chan)
{
	return exec_busy(a, chan) || files_busy(a, chan);
}

/*
 * Sets the port's epoll interest from the state: EPOLLOUT only while output
 * waits, and no EPOLLIN while a host that does not read has AGENT_OUT_MAX
 * queued (its requests would only queue more answers).
 */
static void port_update(struct agent *a)
{
	if (!a->port_in_epoll)
		return;
	size_t pend = out_pending(a);
	uint32_t ev = (pend < AGENT_OUT_MAX ? EPOLLIN : 0) | (pend ? EPOLLOUT : 0);
	if (ev == a->port_events)
		return;
	a->port_events = ev;
	agent_epoll_mod(a, a->port_fd, ev, AGENT_EV(AGENT_EV_PORT, 0));
}

void agent_send(struct agent *a, uint16_t type, uint32_t chan, const void *payload, size_t len)
{
	if (len > AGENT_FRAME_MAX)
		len = AGENT_FRAME_MAX; /* never happens: every sender bounds its payload */
	proto_frame_put(&a->out, type, chan, payload, len);
	port_update(a);
}

void agent_send_error(struct agent *a, uint32_t chan, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	agent_send(a, MSG_ERROR, chan, msg, (size_t)n);
}

static void port_disconnected(struct agent *a);

/* Writes buffered frames until the port would block. */
static void port_write(struct agent *a)
{
	while (a->connected && out_pending(a) > 0) {
		ssize_t n = write(a->port_fd, a->out.data + a->out_off, out_pending(a));
		if (n > 0) {
			a->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && a->port_virtio && (errno == EPIPE || errno == ENOTCONN || errno == ENODEV)) {
			port_disconnected(a);
			break;
		}
		agent_log("write port: %s", n < 0 ? strerror(errno) : "short write");
		if (!a->port_virtio)
			exit(1);
		break;
	}
	if (a->out_off == a->out.len) {
		buf_reset(&a->out);
		a->out_off = 0;
	} else if (a->out_off > AGENT_OUT_LOW) {
		buf_consume(&a->out, a->out_off);
		a->out_off = 0;
	}
	port_update(a);
}

void agent_flush(struct agent *a, int timeout_ms)
{
	int64_t end = agent_now_ms() + timeout_ms;
	while (a->connected && out_pending(a) > 0) {
		int left = (int)(end - agent_now_ms());
		if (left <= 0)
			break;
		struct pollfd p = { .fd = a->port_fd, .events = POLLOUT };
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			break;
		port_write(a);
	}
}

static void send_hello(struct agent *a, struct buf *to)
{
	struct buf kv;
	char num[32];
	buf_init(&kv);
	snprintf(num, sizeof num, "%d", MAGS_PROTO_VERSION);
	proto_kv_puts(&kv, "version", num);
	proto_kv_puts(&kv, "agent", AGENT_NAME);
	snprintf(num, sizeof num, "%lld", boot_uptime_ms());
	proto_kv_puts(&kv, "boot_ms", num);
	proto_frame_put(to, MSG_HELLO, 0, kv.data, kv.len);
	buf_free(&kv);
}

/*
 * The host opened its side of the port: HELLO goes first on every new
 * connection, ahead of frames queued while nobody listened.
 */
static void port_connected(struct agent *a)
{
	struct buf nb;
	buf_init(&nb);
	send_hello(a, &nb);
	buf_append(&nb, a->out.data + a->out_off, out_pending(a));
	buf_free(&a->out);
	a->out = nb;
	a->out_off = 0;
	a->connected = true;
	a->port_in_epoll = true;
	a->port_events = EPOLLIN | EPOLLOUT;
	agent_epoll_add(a, a->port_fd, a->port_events, AGENT_EV(AGENT_EV_PORT, 0));
	port_write(a);
}

/*
 * The host closed its side (or never opened it). A virtio port then polls as
 * readable+hangup forever, so it leaves epoll and main() re-checks it every
 * AGENT_RECONNECT_POLL_MS. A partly written frame is dropped with the rest of
 * what was written: the next connection starts clean with HELLO.
 */
static void port_disconnected(struct agent *a)
{
	if (!a->port_virtio) {
		if (a->pid1)
			agent_log("port closed");
		exit(0);
	}
	if (a->port_in_epoll)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->port_fd, NULL);
	a->port_in_epoll = false;
	a->port_events = 0;
	a->connected = false;
	a->disconnected_ms = agent_now_ms();
	/* frames not begun stay queued; a half-written one is unrecoverable */
	if (a->out_off > 0) {
		buf_reset(&a->out);
		a->out_off = 0;
	}
	proto_dec_free(&a->dec);
	proto_dec_init(&a->dec);
	a->skip = 0;
}

static void port_check_connected(struct agent *a)
{
	struct pollfd p = { .fd = a->port_fd, .events = POLLIN | POLLOUT };
	if (poll(&p, 1, 0) < 0)
		return;
	if (!(p.revents & POLLHUP))
		port_connected(a);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dispatch(struct agent *a, const struct agent_frame *f)
{
	switch (f->type) {
	case MSG_INIT:
		ops_init(a, f->chan, f->payload, f->len);
		break;
	case MSG_EXEC:
		exec_start(a, f->chan, f->payload, f->len);
		break;
	case MSG_STDIN:
		exec_stdin(a, f->chan, f->payload, f->len);
		break;
	case MSG_SIGNAL:
		exec_signal(a, f->chan, f->payload, f->len);
		break;
	case MSG_FILE:
		ops_file(a, f->chan, f->payload, f->len);
		break;
	case MSG_PING:
		agent_send(a, MSG_PONG, f->chan, f->payload, f->len);
		break;
	case MSG_POWEROFF:
		boot_poweroff(a);
		break;
	case MSG_MOUNT:
		boot_ws_mount(a, f->chan, f->payload, f->len);
		break;
	case MSG_FREEZE:
	case MSG_THAW:
		boot_ws_freeze(a, f->chan, f->type == MSG_FREEZE);
		break;
	case MSG_SSHD:
		sshd_request(a, f->chan, f->payload, f->len);
		break;
	case MSG_RESIZE:
		exec_resize(a, f->chan, f->payload, f->len);
		break;
	case MSG_PAUSE:
	case MSG_RESUME:
		/* unknown channel: ignored (it raced with the end); no payload is looked at */
		if (!exec_hold(a, f->chan, f->type == MSG_PAUSE))
			files_hold(a, f->chan, f->type == MSG_PAUSE);
		break;
	case MSG_FREAD:
	case MSG_FSTAT:
	case MSG_FLIST:
	case MSG_FREMOVE:
	case MSG_FMKDIR:
	case MSG_WATCH:
		files_request(a, f->type, f->chan, f->payload, f->len);
		break;
	case MSG_CANCEL:
		files_cancel(a, f->chan);
		break;
	default:
		agent_send_error(a, f->chan, "unknown message type %u", f->type);
		break;
	}
}

/* Feeds bytes from the host to the decoder and handles every whole frame. */
static void port_input(struct agent *a, const uint8_t *p, size_t n)
{
	if (a->skip) {
		size_t k = a->skip < n ? (size_t)a->skip : n;
		a->skip -= k;
		p += k;
		n -= k;
		if (!n)
			return;
	}
	proto_dec_feed(&a->dec, p, n);
	for (;;) {
		struct agent_frame f;
		int r = proto_dec_next(&a->dec, &f);
		if (r == 0)
			break;
		if (r == 1) {
			dispatch(a, &f);
			continue;
		}
		/*
		 * Oversized frame: say so, then skip its announced length so the
		 * stream stays in step if the header itself was sane. The
		 * header's layout is the one in docs/agent-protocol.md.
		 */
		const uint8_t *h = a->dec.in.data + a->dec.off;
		uint32_t len = le32(h), chan = le32(h + 8);
		size_t have = a->dec.in.len - a->dec.off;
		agent_log("frame of %u bytes exceeds the limit; skipped", len);
		agent_send_error(a, chan, "frame of %u bytes exceeds the %u byte limit", len, (unsigned)AGENT_FRAME_MAX);
		uint64_t total = (uint64_t)AGENT_FRAME_HDR + len;
		uint8_t *rest = NULL;
		size_t nrest = 0;
		if (have > total) { /* bytes past the skipped frame: decode them again */
			nrest = have - (size_t)total;
			rest = xmalloc(nrest);
			memcpy(rest, h + total, nrest);
		}
		a->skip = total > have ? total - have : 0;
		proto_dec_free(&a->dec);
		proto_dec_init(&a->dec);
		if (rest)
			port_input(a, rest, nrest);
		free(rest);
		break;
	}
}

static void port_read(struct agent *a)
{
	static uint8_t in[READ_CHUNK];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(a->port_fd, in, sizeof in);
		if (n > 0) {
			port_input(a, in, (size_t)n);
			if (!a->connected)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			agent_log("read port: %s", strerror(errno));
		port_disconnected(a);
		return;
	}
}

static int open_virtio_port(void)
{
	int64_t end = agent_now_ms() + PORT_WAIT_MS;
	for (;;) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || strlen(e->d_name) > 64)
				continue;
			char path[128], name[64] = "";
			snprintf(path, sizeof path, "/sys/class/virtio-ports/%.64s/name", e->d_name);
			if (agent_read_line(path, name, sizeof name) < 0 || strcmp(name, MAGS_AGENT_PORT_NAME) != 0)
				continue;
			snprintf(path, sizeof path, "/dev/%.64s", e->d_name);
			int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd < 0 && errno == ENOENT) {
				/* devtmpfs not there yet: make the node from sysfs's dev */
				char devp[128], dev[32] = "";
				unsigned maj, min;
				snprintf(devp, sizeof devp, "/sys/class/virtio-ports/%.64s/dev", e->d_name);
				int dfd = open(devp, O_RDONLY | O_CLOEXEC);
				if (dfd >= 0) {
					ssize_t k = read(dfd, dev, sizeof dev - 1);
					close(dfd);
					if (k > 0 && sscanf(dev, "%u:%u", &maj, &min) == 2 &&
					    mknod(path, S_IFCHR | 0600, makedev(maj, min)) == 0)
						fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
				}
			}
			if (fd < 0)
				agent_log("open %s: %s", path, strerror(errno));
			closedir(d);
			return fd;
		}
		if (d)
			closedir(d);
		if (agent_now_ms() > end) {
			agent_log("no virtio port named %s", MAGS_AGENT_PORT_NAME);
			return -1;
		}
		usleep(2000);
	}
}

/* Test mode: "fd:N", a unix socket path or any openable file (a pty, a fifo). */
static int open_test_port(const char *spec)
{
	int fd;
	if (!strncmp(spec, "fd:", 3)) {
		fd = atoi(spec + 3);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			return -1;
	} else {
		struct stat st;
		if (stat(spec, &st) == 0 && S_ISSOCK(st.st_mode)) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			if (strlen(spec) >= sizeof sa.sun_path)
				return -1;
			strcpy(sa.sun_path, spec);
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
				return -1;
		} else {
			fd = open(spec, O_RDWR | O_CLOEXEC | O_NOCTTY);
		}
	}
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void on_event(struct agent *a, const struct epoll_event *ev)
{
	enum agent_ev kind = (enum agent_ev)(ev->data.u64 >> 32);
	uint32_t chan = (uint32_t)ev->data.u64;
	switch (kind) {
	case AGENT_EV_PORT:
		if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			port_read(a);
		if (a->connected && (ev->events & EPOLLOUT))
			port_write(a);
		break;
	case AGENT_EV_SIGNAL: {
		struct signalfd_siginfo si;
		while (read(a->sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
			;
		exec_reap(a);
		break;
	}
	case AGENT_EV_WATCH:
		files_event(a, chan, ev->events);
		break;
	default:
		exec_event(a, kind, chan, ev->events);
		break;
	}
}

int main(int argc, char **argv)
{
	struct agent a = { .port_fd = -1, .ws_fd = -1 };
	const char *spec = argc > 1 ? argv[1] : getenv("MAGS_AGENT_PORT");

	/* children get pipes dup2'ed onto 0-2: keep those numbers taken */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			break;
	a.pid1 = getpid() == 1;
	if (a.pid1) {
		boot_pid1();
		int c = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
		if (c >= 0)
			log_fd = c;
		boot_env();
	}
	signal(SIGPIPE, SIG_IGN); /* children get SIG_DFL back in exec.c */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	a.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a.sig_fd < 0 || a.epfd < 0) {
		agent_log("signalfd/epoll: %s", strerror(errno));
		return 1;
	}
	agent_epoll_add(&a, a.sig_fd, EPOLLIN, AGENT_EV(AGENT_EV_SIGNAL, 0));
	buf_init(&a.out);
	proto_dec_init(&a.dec);

	if (a.pid1 || !spec) {
		a.port_virtio = true;
		a.port_fd = open_virtio_port();
	} else {
		a.port_fd = open_test_port(spec);
		if (a.port_fd < 0)
			agent_log("open port %s: %s", spec, strerror(errno));
	}
	if (a.port_fd < 0) {
		if (a.pid1) {
			agent_log("cannot serve without a port; powering off");
			boot_poweroff(&a);
		}
		return 1;
	}
	a.disconnected_ms = agent_now_ms();
	if (a.port_virtio)
		port_check_connected(&a);
	else
		port_connected(&a);

	for (;;) {
		int timeout = exec_timers(&a), st = sshd_timers(&a), ft = files_timers(&a);
		if (st >= 0 && (timeout < 0 || st < timeout))
			timeout = st;
		if (ft >= 0 && (timeout < 0 || ft < timeout))
			timeout = ft;
		if (!a.connected) {
			/* poll briskly for a host that is about to connect, lazily for one that is gone */
			int poll_ms = agent_now_ms() - a.disconnected_ms < 2000 ? AGENT_RECONNECT_POLL_MS : 100;
			if (timeout < 0 || timeout > poll_ms)
				timeout = poll_ms;
		}
		struct epoll_event evs[32];
		int n = epoll_wait(a.epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			agent_log("epoll_wait: %s", strerror(errno));
			sleep(1);
			continue;
		}
		for (int i = 0; i < n; i++)
			on_event(&a, &evs[i]);
		if (!a.connected)
			port_check_connected(&a);
		size_t pend = out_pending(&a);
		if (!a.paused && pend > AGENT_OUT_HIGH) {
			exec_pause(&a, true);
			files_pause(&a, true);
		} else if (a.paused && pend < AGENT_OUT_LOW) {
			exec_pause(&a, false);
			files_pause(&a, false);
		}
	}
}
