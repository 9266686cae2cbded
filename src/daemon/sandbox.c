// SPDX-License-Identifier: MIT
/*
 * Boot a sandbox and talk to its agent; see sandbox.h. All waiting is done
 * with poll() on the agent socket and the job's wake pipe, so a stop request
 * interrupts any phase of the job.
 */
#include "sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "xmalloc.h"

#define SANDBOX_POWEROFF_MS 2000	/* grace for a clean poweroff before SIGKILL */
#define CONSOLE_TAIL 600

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends the tails of QEMU's log and the guest console to err's message. */
static int with_console(struct sandbox *sb, int r, struct err *err)
{
	if (!err)
		return r;
	static const char *const files[][2] = { { "qemu.log", "qemu" }, { "console.log", "guest console" } };
	for (size_t i = 0; i < 2; i++) {
		char *tail = vm_log_tail(sb->vm, files[i][0], CONSOLE_TAIL);
		if (*tail) {
			size_t n = strlen(err->msg);
			snprintf(err->msg + n, sizeof err->msg - n, "; %s: %s", files[i][1], tail);
		}
		free(tail);
	}
	return r;
}

int sandbox_send(struct sandbox *sb, uint16_t type, uint32_t chan, const void *payload, size_t len, struct err *err)
{
	if (len > AGENT_FRAME_MAX)
		return err_set(err, EMSGSIZE, "agent frame of %zu bytes", len);
	/* the header from proto_frame_put, the payload sent from where it is (no copy of big frames) */
	struct buf h;
	buf_init(&h);
	proto_frame_put(&h, type, chan, NULL, 0);
	h.data[0] = (uint8_t)len;
	h.data[1] = (uint8_t)(len >> 8);
	h.data[2] = (uint8_t)(len >> 16);
	h.data[3] = (uint8_t)(len >> 24);
	struct iovec iov[2] = { { h.data, h.len }, { (void *)payload, payload ? len : 0 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	int r = 0;
	while (iov[0].iov_len || iov[1].iov_len) {
		ssize_t n = sendmsg(sb->vm->agent_fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(err, errno, "send to agent");
			break;
		}
		for (int i = 0; i < 2; i++) {
			size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			n -= (ssize_t)k;
		}
		if (!iov[0].iov_len) {
			m.msg_iov = &iov[1];
			m.msg_iovlen = 1;
		}
	}
	buf_free(&h);
	return r;
}

int sandbox_recv(struct sandbox *sb, struct agent_frame *f, int timeout_ms, int wake_fd, struct err *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	for (;;) {
		int r = proto_dec_next(&sb->dec, f);
		if (r == 1)
			return 1;
		if (r < 0)
			return err_set(err, EPROTO, "agent sent an oversized frame");
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ms();
			if (left <= 0)
				return 0;
			wait = (int)left;
		}
		struct pollfd p[2] = {
			{ .fd = sb->vm->agent_fd, .events = POLLIN },
			{ .fd = wake_fd, .events = POLLIN },
		};
		int n = poll(p, wake_fd >= 0 ? 2 : 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, errno, "poll");
		if (n == 0)
			return 0;
		if (wake_fd >= 0 && (p[1].revents & POLLIN))
			return -EINTR;
		uint8_t tmp[65536];
		ssize_t got = recv(sb->vm->agent_fd, tmp, sizeof tmp, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return err_set(err, EPIPE, "agent channel closed (the VM stopped)");
		proto_dec_feed(&sb->dec, tmp, (size_t)got);
	}
}

struct sandbox *sandbox_wrap(struct vm *vm)
{
	struct sandbox *sb = xcalloc(1, sizeof *sb);
	proto_dec_init(&sb->dec);
	sb->vm = vm;
	return sb;
}

/* Waits for a frame of type want on chan (an ERROR there fails); other frames are skipped. */
static int recv_reply(struct sandbox *sb, uint32_t chan, uint16_t want, struct agent_frame *f, int64_t deadline,
		      int wake_fd, struct err *err)
{
	for (;;) {
		int left = (int)(deadline - mono_ms());
		int r = sandbox_recv(sb, f, left > 0 ? left : 0, wake_fd, err);
		if (r == 0)
			return err_set(err, ETIMEDOUT, "no answer from the agent");
		if (r < 0)
			return r;
		if (f->chan != chan)
			continue;
		if (f->type == MSG_ERROR)
			return err_set(err, EPROTO, "agent: %.*s", (int)(f->len > 300 ? 300 : f->len), (const char *)f->payload);
		if (f->type == want)
			return 0;
	}
}

int sandbox_init(struct sandbox *sb, const char *hostname, const struct net_config *net, int timeout_ms, int wake_fd,
		 struct err *err)
{
	struct buf kv;
	buf_init(&kv);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char num[32];
	snprintf(num, sizeof num, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	proto_kv_puts(&kv, "time_ns", num);
	proto_kv_puts(&kv, "hostname", hostname);
	for (int i = 0; net && i < net->ndns; i++)
		proto_kv_puts(&kv, "dns", net->dns[i]);
	uint8_t rnd[32];
	char hex[2 * sizeof rnd + 1];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		buf_free(&kv);
		return err_set(err, errno, "getrandom");
	}
	hex_encode(rnd, sizeof rnd, hex);
	proto_kv_puts(&kv, "entropy", hex);
	int r = sandbox_send(sb, MSG_INIT, 0, kv.data, kv.len, err);
	buf_free(&kv);
	if (r < 0)
		return r;
	struct agent_frame f;
	r = recv_reply(sb, 0, MSG_OK, &f, mono_ms() + timeout_ms, wake_fd, err);
	return r < 0 && r != -EINTR ? with_console(sb, err_wrap(err, "INIT"), err) : r;
}

int sandbox_mount(struct sandbox *sb, int nlayers, int timeout_ms, int wake_fd, struct err *err)
{
	struct buf kv;
	buf_init(&kv);
	proto_kv_puts(&kv, "upper", "mags-ws");
	for (int i = 0; i < nlayers; i++) {
		char serial[24];
		snprintf(serial, sizeof serial, "mags-l%d", i);
		proto_kv_puts(&kv, "lower", serial);
	}
	int r = sandbox_send(sb, MSG_MOUNT, 0, kv.data, kv.len, err);
	buf_free(&kv);
	struct agent_frame f;
	if (r == 0)
		r = recv_reply(sb, 0, MSG_OK, &f, mono_ms() + timeout_ms, wake_fd, err);
	if (r == 0)
		sb->ws_mounted = true;
	return r < 0 && r != -EINTR ? err_wrap(err, "MOUNT") : r;
}

int sandbox_run_quiet(struct sandbox *sb, uint32_t chan, const char *cmd, int timeout_ms, struct err *err)
{
	struct buf kv;
	buf_init(&kv);
	proto_kv_puts(&kv, "cmd", cmd);
	proto_kv_puts(&kv, "cwd", "/");
	int r = sandbox_send(sb, MSG_EXEC, chan, kv.data, kv.len, err);
	buf_free(&kv);
	if (r < 0)
		return r;
	struct agent_frame f;
	r = recv_reply(sb, chan, MSG_EXIT, &f, mono_ms() + timeout_ms, -1, err);
	if (r < 0)
		return with_console(sb, err_wrap(err, "%s", cmd), err);
	struct agent_exit ex;
	if (proto_exit_decode(f.payload, f.len, &ex) < 0)
		return err_set(err, EPROTO, "malformed exit report from the agent");
	return ex.code;
}

int sandbox_boot(const struct engine *eng, const char *rundir, const struct vm_mem *mem, const struct vm_disks *disks,
		 int timeout_ms, int wake_fd,
		 struct sandbox **out, struct err *err)
{
	*out = NULL;
	int64_t t0 = mono_ms();
	struct vm *vm;
	int r = vm_start(eng, rundir, mem, disks, &vm, err);
	if (r < 0)
		return r;
	struct sandbox *sb = sandbox_wrap(vm);
	r = vm_connect_agent(sb->vm, timeout_ms, err);
	if (r < 0) {
		with_console(sb, r, err);
		goto fail;
	}
	for (;;) {
		int left = (int)(t0 + timeout_ms - mono_ms());
		struct agent_frame f;
		r = sandbox_recv(sb, &f, left > 0 ? left : 0, wake_fd, err);
		if (r == -EINTR)
			goto fail;
		if (r == 0) {
			r = with_console(sb, err_set(err, ETIMEDOUT, "no answer from the agent after %d ms", timeout_ms), err);
			goto fail;
		}
		if (r < 0) {
			with_console(sb, r, err);
			goto fail;
		}
		if (f.type == MSG_HELLO && f.chan == 0)
			break;
		/* anything before HELLO is ignored: the agent says nothing else first */
	}
	sb->boot_ms = mono_ms() - t0;
	*out = sb;
	return 0;
fail:
	vm_free(sb->vm);
	proto_dec_free(&sb->dec);
	free(sb);
	return r;
}

int sandbox_sleep(struct sandbox *sb, const char *state_path, long long *bytes, struct err *err)
{
	return vm_sleep(sb->vm, state_path, bytes, err);
}

int sandbox_wake(const struct engine *eng, struct sandbox *sb, const char *state_path, struct err *err)
{
	/* frames cut off by the sleep are gone with the old channel */
	proto_dec_free(&sb->dec);
	proto_dec_init(&sb->dec);
	int r = vm_wake(eng, sb->vm, state_path, err);
	return r < 0 ? with_console(sb, r, err) : 0;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	if (sb->vm->pid > 0 && sandbox_send(sb, MSG_POWEROFF, 0, NULL, 0, NULL) == 0)
		vm_wait_exit(sb->vm, SANDBOX_POWEROFF_MS);
	vm_free(sb->vm);
	proto_dec_free(&sb->dec);
	free(sb);
}
