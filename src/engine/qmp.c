// SPDX-License-Identifier: MIT
/* Synchronous QMP client; see qmp.h. Messages are one JSON object per line. */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one JSON line; returns 0 with *msg (new reference) or a negative code. */
static int read_msg(struct qmp *q, json_t **msg, long long deadline, struct err *err)
{
	*msg = NULL;
	for (;;) {
		char *nl = q->rlen ? memchr(q->rbuf, '\n', q->rlen) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - q->rbuf) + 1;
			json_error_t je;
			json_t *m = json_loadb(q->rbuf, n, 0, &je);
			memmove(q->rbuf, q->rbuf + n, q->rlen - n);
			q->rlen -= n;
			if (!m || !json_is_object(m)) {
				json_decref(m);
				return err_set(err, EPROTO, "QMP: malformed message: %s", je.text);
			}
			*msg = m;
			return 0;
		}
		if (q->rlen >= QMP_REPLY_MAX)
			return err_set(err, EPROTO, "QMP: message longer than %d bytes", QMP_REPLY_MAX);
		int left = (int)(deadline - now_ms());
		if (left <= 0)
			return err_set(err, ETIMEDOUT, "QMP: no reply");
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, errno, "QMP: poll");
		if (r == 0)
			continue;
		q->rbuf = xrealloc(q->rbuf, QMP_REPLY_MAX);
		ssize_t got = recv(q->fd, q->rbuf + q->rlen, QMP_REPLY_MAX - q->rlen, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return err_set(err, EPIPE, "QMP: QEMU closed the connection");
		q->rlen += (size_t)got;
	}
}

static int send_all(struct qmp *q, const char *s, struct err *err)
{
	size_t len = strlen(s), off = 0;
	while (off < len) {
		ssize_t n = send(q->fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, errno, "QMP: send");
		off += (size_t)n;
	}
	return 0;
}

int qmp_cmd(struct qmp *q, const char *command, json_t *args, json_t **ret, int timeout_ms, struct err *err)
{
	if (ret)
		*ret = NULL;
	json_t *req = json_object();
	json_object_set_new(req, "execute", json_string(command));
	if (args)
		json_object_set_new(req, "arguments", args);
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int r = send_all(q, s, err);
	free(s);
	if (r == 0)
		r = send_all(q, "\n", err);
	long long deadline = now_ms() + timeout_ms;
	while (r == 0) {
		json_t *m;
		r = read_msg(q, &m, deadline, err);
		if (r < 0)
			break;
		json_t *v = json_object_get(m, "return");
		json_t *e = json_object_get(m, "error");
		if (v) {
			if (ret)
				*ret = json_incref(v);
			json_decref(m);
			return 0;
		}
		if (e) {
			const char *desc = json_string_value(json_object_get(e, "desc"));
			r = err_set(err, EIO, "QMP %s: %s", command, desc ? desc : "error");
		}
		json_decref(m); /* an event: skip */
	}
	return r;
}

int qmp_wait_event(struct qmp *q, const char *name, json_t **data, int timeout_ms, struct err *err)
{
	*data = NULL;
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		json_t *m;
		int r = read_msg(q, &m, deadline, err);
		if (r < 0)
			return r;
		const char *ev = json_string_value(json_object_get(m, "event"));
		if (ev && !strcmp(ev, name)) {
			json_t *d = json_object_get(m, "data");
			*data = d ? json_incref(d) : json_object();
			json_decref(m);
			return 0;
		}
		json_decref(m);
	}
}

int qmp_open(struct qmp *q, const char *path, int timeout_ms, struct err *err)
{
	memset(q, 0, sizeof *q);
	q->fd = -1;
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
		if ((e != ENOENT && e != ECONNREFUSED) || now_ms() >= deadline)
			return err_set(err, e, "connect %s", path);
		usleep(1000);
	}
	json_t *greeting;
	int r = read_msg(q, &greeting, deadline + 5000, err);
	if (r == 0) {
		if (!json_object_get(greeting, "QMP"))
			r = err_set(err, EPROTO, "QMP: unexpected greeting");
		json_decref(greeting);
	}
	if (r == 0)
		r = qmp_cmd(q, "qmp_capabilities", NULL, NULL, 5000, err);
	if (r < 0)
		qmp_close(q);
	return r;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	free(q->rbuf);
	memset(q, 0, sizeof *q);
	q->fd = -1;
}
