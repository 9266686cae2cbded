// SPDX-License-Identifier: MIT
/* QMP client; see qmp.h. */
#include "qmp.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define QMP_LINE_MAX (1 << 20)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the next whole message into *out (caller decrefs). */
static int qmp_read(struct qmp *q, json_t **out, long long deadline, struct err *err)
{
	for (;;) {
		char *nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - (char *)q->in.data) + 1;
			json_error_t je;
			json_t *m = json_loadb((const char *)q->in.data, n, 0, &je);
			buf_consume(&q->in, n);
			if (!m || !json_is_object(m)) {
				json_decref(m);
				return err_set(err, EPROTO, "QMP: malformed message: %s", je.text);
			}
			*out = m;
			return 0;
		}
		if (q->in.len > QMP_LINE_MAX)
			return err_set(err, EPROTO, "QMP: message over %d bytes", QMP_LINE_MAX);
		long long left = deadline - now_ms();
		if (left <= 0)
			return err_set(err, ETIMEDOUT, "QMP: no answer from QEMU");
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, errno, "QMP: poll");
		if (r == 0)
			continue;
		char tmp[4096];
		ssize_t got = recv(q->fd, tmp, sizeof tmp, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return err_set(err, errno, "QMP: read");
		if (got == 0)
			return err_set(err, EPIPE, "QMP: QEMU closed the connection (it exited)");
		buf_append(&q->in, tmp, (size_t)got);
	}
}

static int qmp_send(struct qmp *q, const char *text, int pass_fd, struct err *err)
{
	size_t len = strlen(text), off = 0;
	while (off < len) {
		struct iovec iov = { .iov_base = (char *)text + off, .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		if (pass_fd >= 0 && off == 0) {
			memset(&ctl, 0, sizeof ctl);
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof ctl.buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, errno, "QMP: send");
		off += (size_t)n;
	}
	return 0;
}

int qmp_call(struct qmp *q, const char *cmd, json_t *args, int pass_fd, json_t **ret, int timeout_ms, struct err *err)
{
	if (ret)
		*ret = NULL;
	json_t *req = json_pack("{s:s}", "execute", cmd);
	if (args)
		json_object_set_new(req, "arguments", args);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int r = qmp_send(q, text, pass_fd, err);
	free(text);
	if (r < 0)
		return r;
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		json_t *m;
		r = qmp_read(q, &m, deadline, err);
		if (r < 0)
			return err_wrap(err, "%s", cmd);
		json_t *v = json_object_get(m, "return");
		if (v) {
			if (ret)
				*ret = json_incref(v);
			json_decref(m);
			return 0;
		}
		json_t *e = json_object_get(m, "error");
		if (e) {
			const char *cls = json_string_value(json_object_get(e, "class"));
			r = err_set(err, cls && !strcmp(cls, "CommandNotFound") ? ENOTSUP : EIO, "QMP %s: %s", cmd,
				    json_string_value(json_object_get(e, "desc")) ?: "error");
			json_decref(m);
			return r;
		}
		json_decref(m); /* an event */
	}
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms, struct err *err)
{
	q->fd = -1;
	buf_init(&q->in);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return err_set(err, ENAMETOOLONG, "QMP socket path %s", path);
	strcpy(sa.sun_path, path);
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return err_set(err, errno, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			q->fd = fd;
			break;
		}
		int e = errno;
		close(fd);
		if (e != ENOENT && e != ECONNREFUSED)
			return err_set(err, e, "connect %s", path);
		if (now_ms() >= deadline)
			return err_set(err, ETIMEDOUT, "connect %s", path);
		usleep(1000);
	}
	json_t *greeting;
	int r = qmp_read(q, &greeting, deadline, err);
	if (r < 0) {
		qmp_close(q);
		return err_wrap(err, "QMP greeting");
	}
	bool ok = json_object_get(greeting, "QMP") != NULL;
	json_decref(greeting);
	if (!ok) {
		qmp_close(q);
		return err_set(err, EPROTO, "QMP: unexpected greeting");
	}
	r = qmp_call(q, "qmp_capabilities", NULL, -1, NULL, (int)(deadline - now_ms()) + 1, err);
	if (r < 0)
		qmp_close(q);
	return r;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	buf_free(&q->in);
}
