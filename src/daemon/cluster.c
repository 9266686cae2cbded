// SPDX-License-Identifier: MIT
/*
 * magsd as a node of a cluster; see cluster.h.
 *
 * Handing a request over (cluster_forward) happens once its body is
 * complete: a JSON body is in memory, an upload already spooled to a file
 * (api_upload.c). The request goes to the holding node as HTTP/1.0 with a
 * Content-Length, so that node's answer ends where its connection does and
 * needs no chunked decoding; the answer is relayed as it arrives, so exec
 * streams, log follows and downloads stay streams. The header
 * X-Mags-Forwarded marks a handed-over request: it is served where it lands,
 * never handed on again.
 */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "deadline.h"
#include "fs.h"
#include "httphead.h"
#include "jobs.h"
#include "log.h"
#include "sql.h"
#include "xmalloc.h"

#define FWD_HEADER "X-Mags-Forwarded"
#define FWD_CONNECT_MS 5000
#define FWD_BUF 65536

static struct {
	bool on;		/* PostgreSQL: several nodes */
	bool started;
	char node[NODE_ID_MAX];
	char *url;		/* advertised API */
	char *host;		/* its host part, for the proxy's address */
	char *db_target;
	int64_t timeout_ms;
	int capacity;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	pthread_t heartbeat, listener;
	bool listening;
	int stop_pipe[2];
} C = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.stop_pipe = { -1, -1 },
};

bool cluster_on(void)
{
	return C.on;
}

const char *cluster_node_id(void)
{
	return C.node;
}

int64_t cluster_timeout_ms(void)
{
	return C.timeout_ms;
}

bool cluster_node_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* "http://HOST:PORT[/]" -> host and port; false when it is not that. */
static bool split_url(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
	static const char pre[] = "http://";
	if (strncmp(url, pre, sizeof pre - 1) != 0)
		return false;
	const char *h = url + sizeof pre - 1;
	const char *end = h + strcspn(h, "/");
	const char *colon = memrchr(h, ':', (size_t)(end - h));
	if (!colon || colon == h || (size_t)(colon - h) >= hcap || (size_t)(end - colon - 1) >= pcap || end == colon + 1)
		return false;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	memcpy(port, colon + 1, (size_t)(end - colon - 1));
	port[end - colon - 1] = '\0';
	return strspn(port, "0123456789") == strlen(port);
}

/* ---- heartbeat and lost nodes ---------------------------------------------- */

static void *heartbeat_main(void *arg)
{
	(void)arg;
	int64_t every = C.timeout_ms / 4 < 1000 ? C.timeout_ms / 4 : 1000;
	if (every < 100)
		every = 100;
	pthread_mutex_lock(&C.mu);
	while (!C.stopping) {
		pthread_mutex_unlock(&C.mu);
		int r = db_node_heartbeat(C.node, jobs_running());
		if (r == 0) {
			/*
			 * Another node declared this one lost (it did not heartbeat for
			 * the timeout: stalled or cut off): its jobs were failed or queued
			 * again, and may be running elsewhere now. Its sandboxes must not
			 * go on, so it stops at once; its VMs die with it (PDEATHSIG), and
			 * its supervisor starts it again as a fresh node.
			 */
			log_error("cluster: node %s was declared lost by the others; stopping now (its jobs run elsewhere)",
				  C.node);
			_exit(3);
		}
		if (r < 0)
			log_warn("cluster: heartbeat: %s", sql_errmsg());
		if (C.on && db_nodes_sweep_lost(C.node, C.timeout_ms) > 0)
			cluster_notify_jobs(); /* their always-on jobs are queued again */
		pthread_mutex_lock(&C.mu);
		if (C.stopping)
			break;
		struct timespec ts = deadline_in(CLOCK_REALTIME, (int)every);
		pthread_cond_timedwait(&C.cv, &C.mu, &ts);
	}
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

/* LISTEN mags_jobs on a connection of its own: a NOTIFY from any node wakes this node's workers. */
static void *listener_main(void *arg)
{
	(void)arg;
	PGconn *pg = NULL;
	for (;;) {
		pthread_mutex_lock(&C.mu);
		bool stop = C.stopping;
		pthread_mutex_unlock(&C.mu);
		if (stop)
			break;
		if (!pg || PQstatus(pg) != CONNECTION_OK) {
			if (pg)
				PQfinish(pg);
			pg = PQconnectdb(C.db_target);
			PGresult *res = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, "LISTEN mags_jobs") : NULL;
			bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
			PQclear(res);
			if (!ok) {
				log_warn("cluster: LISTEN: %s", PQerrorMessage(pg));
				PQfinish(pg);
				pg = NULL;
				struct pollfd p = { .fd = C.stop_pipe[0], .events = POLLIN };
				poll(&p, 1, 1000);
				continue;
			}
			jobs_poke(); /* what was submitted while it was not listening */
		}
		struct pollfd p[2] = { { .fd = PQsocket(pg), .events = POLLIN }, { .fd = C.stop_pipe[0], .events = POLLIN } };
		if (poll(p, 2, CLUSTER_POLL_MS) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			PQconsumeInput(pg);
			bool any = false;
			PGnotify *n;
			while ((n = PQnotifies(pg)) != NULL) {
				PQfreemem(n);
				any = true;
			}
			if (any)
				jobs_poke();
		}
	}
	if (pg)
		PQfinish(pg);
	return NULL;
}

void cluster_notify_jobs(void)
{
	if (C.on) {
		db_lock();
		if (sql_exec("NOTIFY mags_jobs") < 0)
			log_warn("cluster: NOTIFY: %s", sql_errmsg());
		db_unlock();
	}
	jobs_poke();
}

int cluster_start(const struct cluster_config *cfg, struct err *err)
{
	C.on = sql_dialect() == SQL_PG;
	C.timeout_ms = (int64_t)(cfg->timeout_s > 0 ? cfg->timeout_s : CLUSTER_TIMEOUT_DEFAULT) * 1000;
	C.capacity = cfg->capacity > 0 ? cfg->capacity : 1;
	C.db_target = xstrdup(cfg->db_target ? cfg->db_target : "");
	if (cfg->node_id) {
		snprintf(C.node, sizeof C.node, "%s", cfg->node_id);
	} else if (gethostname(C.node, sizeof C.node) < 0 || !cluster_node_id_ok(C.node)) {
		snprintf(C.node, sizeof C.node, "node");
	}
	const char *colon = strrchr(cfg->listen, ':');
	if (cfg->advertise) {
		C.url = xstrdup(cfg->advertise);
	} else {
		/* from --listen; an any-address listener is reached by the host name */
		size_t hl = colon ? (size_t)(colon - cfg->listen) : 0;
		bool any = hl == 0 || (hl == 7 && !strncmp(cfg->listen, "0.0.0.0", 7));
		C.url = any ? xasprintf("http://%s:%s", C.node, colon ? colon + 1 : "7557")
			    : xasprintf("http://%.*s:%s", (int)hl, cfg->listen, colon ? colon + 1 : "7557");
	}
	char host[256], port[16];
	if (!split_url(C.url, host, sizeof host, port, sizeof port))
		return err_set(err, 400, "--advertise: expected http://HOST:PORT, not \"%s\"", C.url);
	C.host = xstrdup(host);
	struct node_row n = { .url = C.url, .ssh_host = (char *)cfg->ssh_host, .capacity = C.capacity };
	snprintf(n.id, sizeof n.id, "%s", C.node);
	/*
	 * STATE/node remembers this magsd's last registration (id and start
	 * time): a row that is still alive, at another address, and not that
	 * registration is another magsd using the same id (two would claim as
	 * one). This magsd's own row, left by a crash, it takes over at once.
	 */
	char *mine = xasprintf("%s/node", cfg->state_dir ? cfg->state_dir : ".");
	char *text = NULL;
	size_t tlen = 0;
	long long last = -1;
	char last_id[NODE_ID_MAX] = "";
	if (fs_read_file(mine, 4096, &text, &tlen, NULL) == 0 && sscanf(text, "%63s %lld", last_id, &last) != 2)
		last = -1;
	free(text);
	struct node_row old;
	if (C.on && db_node_get(C.node, &old) == 0) {
		bool ours = !strcmp(last_id, C.node) && last == (long long)old.started_at;
		bool live = !strcmp(old.state, "alive") && db_now_ms() - old.heartbeat_at < C.timeout_ms &&
			    old.url && strcmp(old.url, C.url) != 0 && !ours;
		db_node_row_free(&old);
		if (live) {
			free(mine);
			return err_set(err, 409, "node %s is alive at another address: give each magsd its own --node-id",
				       C.node);
		}
	}
	if (db_node_register(&n, err) < 0) {
		free(mine);
		return -1;
	}
	text = xasprintf("%s %lld\n", C.node, (long long)n.started_at);
	if (fs_write_file(mine, text, strlen(text), 0600, err) < 0)
		log_warn("cluster: %s: %s", mine, err->msg);
	err_clear(err);
	free(text);
	free(mine);
	if (pipe2(C.stop_pipe, O_CLOEXEC) < 0)
		return err_set(err, errno, "pipe");
	int e = pthread_create(&C.heartbeat, NULL, heartbeat_main, NULL);
	if (e)
		return err_set(err, e, "start the heartbeat");
	C.started = true;
	if (C.on) {
		if ((e = pthread_create(&C.listener, NULL, listener_main, NULL)) != 0)
			return err_set(err, e, "start the job listener");
		C.listening = true;
	}
	log_info("cluster: node %s (%s), %s, node timeout %lld s", C.node, C.url,
		 C.on ? "PostgreSQL: one of several nodes" : "SQLite: the only node", (long long)(C.timeout_ms / 1000));
	return 0;
}

void cluster_set_proxy_port(int port)
{
	if (port <= 0)
		return;
	char *addr = xasprintf("%s:%d", C.host ? C.host : "127.0.0.1", port);
	db_node_set_proxy(C.node, addr);
	free(addr);
}

void cluster_stop(void)
{
	if (!C.started)
		return;
	pthread_mutex_lock(&C.mu);
	C.stopping = true;
	pthread_cond_broadcast(&C.cv);
	pthread_mutex_unlock(&C.mu);
	if (write(C.stop_pipe[1], "x", 1) < 0) {
		/* the listener also sees C.stopping within CLUSTER_POLL_MS */
	}
	pthread_join(C.heartbeat, NULL);
	if (C.listening)
		pthread_join(C.listener, NULL);
	db_node_stopped(C.node);
	close(C.stop_pipe[0]);
	close(C.stop_pipe[1]);
	C.started = false;
	free(C.url);
	free(C.host);
	free(C.db_target);
	C.url = C.host = C.db_target = NULL;
}

enum MHD_Result api_nodes(struct req *r)
{
	if (strcmp(r->method, "GET") != 0)
		return http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on /nodes (use GET)", r->method);
	json_t *o = json_object();
	json_object_set_new(o, "nodes", db_nodes_json(C.node, C.timeout_ms));
	return http_reply_json(r, MHD_HTTP_OK, o);
}

/* ---- handing requests over -------------------------------------------------- */

static bool sandbox_action(const char *action)
{
	return !strcmp(action, "exec") || !strncmp(action, "processes", 9) || !strncmp(action, "files", 5);
}

/* One node, or a request another node handed over: it is served here. */
static bool served_here(struct req *r)
{
	return !C.on || MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, FWD_HEADER) != NULL;
}

char *cluster_route(struct req *r, struct job_row *j, const char *action)
{
	if (served_here(r))
		return NULL;
	if (!strcmp(action, "logs"))
		return NULL; /* the logs are in the database: any node serves them */
	if (!strcmp(j->status, "queued")) {
		char hint[NODE_ID_MAX];
		bool pinned;
		if (!strcmp(action, "upload") && db_job_hint(j->id, hint, &pinned) == 0 && pinned && strcmp(hint, C.node))
			return xstrdup(hint); /* its other files are on that node's disk */
		if (!sandbox_action(action))
			return NULL;
		/* a sandbox request waits for a node to claim the job, then goes there */
		int64_t until = db_now_ms() + CLUSTER_CLAIM_WAIT_MS;
		while (!strcmp(j->status, "queued") && db_now_ms() < until) {
			usleep(50 * 1000);
			struct job_row now;
			if (db_job_get(j->id, 0, &now) < 0)
				break;
			db_job_row_free(j);
			*j = now;
		}
	}
	if (!strcmp(j->status, "running") && j->node[0] && strcmp(j->node, C.node) != 0)
		return xstrdup(j->node);
	return NULL;
}

char *cluster_job_elsewhere(struct req *r, const char *job_id)
{
	if (served_here(r))
		return NULL;
	char node[NODE_ID_MAX];
	db_job_node(job_id, node);
	return node[0] && strcmp(node, C.node) != 0 ? xstrdup(node) : NULL;
}

static int connect_to(const char *host, const char *port, int timeout_ms, struct err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g)
		return err_set(err, 502, "%s:%s: %s", host, port, gai_strerror(g));
	int fd = -1, e = 0;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			e = errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int so = 0;
		socklen_t sl = sizeof so;
		if (poll(&p, 1, timeout_ms) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0 || so) {
			e = so ? so : ETIMEDOUT;
			close(fd);
			fd = -1;
			continue;
		}
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return err_set(err, 502, "connect to %s:%s: %s", host, port, strerror(e ? e : ECONNREFUSED));
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Appends %XX-encoded s to b (RFC 3986 unreserved characters as they are). */
static void url_encode(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			buf_append(b, &s[i], 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			buf_append(b, e, 3);
		}
	}
}

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				const char *value, size_t value_size)
{
	(void)kind;
	struct buf *b = cls;
	buf_append(b, b->len && memchr(b->data, '?', b->len) ? "&" : "?", 1);
	url_encode(b, key, key_size);
	if (value) {
		buf_append(b, "=", 1);
		url_encode(b, value, value_size);
	}
	return MHD_YES;
}

/* The answer of the holding node, relayed as it arrives. */
struct relay {
	int fd;
	char *pending;		/* body bytes read with the head */
	size_t npending, off;
};

static ssize_t relay_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct relay *rl = cls;
	if (rl->off < rl->npending) {
		size_t n = rl->npending - rl->off < max ? rl->npending - rl->off : max;
		memcpy(out, rl->pending + rl->off, n);
		rl->off += n;
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t n = recv(rl->fd, out, max, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			return n;
		return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

static void relay_free_cb(void *cls)
{
	struct relay *rl = cls;
	close(rl->fd);
	free(rl->pending);
	free(rl);
}

/* Sends the request's body: the spooled upload, else what is in memory. */
static int send_body(struct req *r, int fd, const char *spool, long long size)
{
	if (!spool)
		return r->body.len ? send_all(fd, r->body.data, r->body.len) : 0;
	int in = open(spool, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	char *b = xmalloc(FWD_BUF);
	long long left = size;
	int rc = 0;
	while (left > 0 && rc == 0) {
		ssize_t n = read(in, b, FWD_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || send_all(fd, b, (size_t)n) < 0)
			rc = -1;
		else
			left -= n;
	}
	free(b);
	close(in);
	return rc;
}

enum MHD_Result cluster_forward(struct req *r, const char *node, bool *unreachable)
{
	struct node_row n;
	if (db_node_get(node, &n) < 0 || strcmp(n.state, "alive") != 0 || !n.url) {
		db_node_row_free(&n);
		if (unreachable) {
			*unreachable = true;
			return MHD_NO;
		}
		return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the sandbox is on node %s, which is not answering",
					node);
	}
	char host[256], port[16];
	bool ok = split_url(n.url, host, sizeof host, port, sizeof port);
	db_node_row_free(&n);
	if (!ok)
		return http_reply_error(r, MHD_HTTP_BAD_GATEWAY, "node %s has no usable address", node);
	const char *spool = NULL;
	long long size = (long long)r->body.len;
	struct err err = { 0 };
	if (r->up && api_upload_body(r, &spool, &size, &err) < 0)
		return http_reply_error(r, (unsigned)err.code, "%s", err.msg);
	int fd = connect_to(host, port, FWD_CONNECT_MS, &err);
	if (fd < 0 && unreachable) {
		*unreachable = true;
		return MHD_NO;
	}
	if (fd < 0)
		return http_reply_error(r, MHD_HTTP_BAD_GATEWAY, "the sandbox is on node %s: %s", node, err.msg);
	struct buf h;
	buf_init(&h);
	buf_printf(&h, "%s /api/v1", r->method);
	buf_append(&h, r->path, strlen(r->path));
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, query_cb, &h);
	buf_printf(&h, " HTTP/1.0\r\nHost: %s:%s\r\n" FWD_HEADER ": %s\r\nContent-Length: %lld\r\n", host, port, C.node,
		   size);
	static const char *const pass[] = { "Authorization", "Content-Type", "Accept" };
	for (size_t i = 0; i < sizeof pass / sizeof *pass; i++) {
		const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, pass[i]);
		if (v && !strpbrk(v, "\r\n"))
			buf_printf(&h, "%s: %s\r\n", pass[i], v);
	}
	buf_append(&h, "\r\n", 2);
	int sent = send_all(fd, h.data, h.len);
	buf_free(&h);
	if (sent < 0 || send_body(r, fd, spool, size) < 0) {
		close(fd);
		return http_reply_error(r, MHD_HTTP_BAD_GATEWAY, "the sandbox is on node %s: sending the request failed", node);
	}
	/* the answer's head, checked as strictly as a client's (src/lib/httphead.c) */
	char *head = xmalloc(HTTP_HEAD_MAX + 1);
	size_t len = 0;
	struct http_resp hr;
	int hl = 0;
	while (hl == 0 && len < HTTP_HEAD_MAX) {
		ssize_t k = recv(fd, head + len, HTTP_HEAD_MAX - len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		hl = http_resp_parse(head, len, &hr);
	}
	if (hl <= 0) {
		log_warn("cluster: node %s answered badly: %s", node, hl < 0 ? hr.error : "connection closed");
		free(head);
		close(fd);
		return http_reply_error(r, MHD_HTTP_BAD_GATEWAY, "the sandbox is on node %s: no valid answer", node);
	}
	struct relay *rl = xcalloc(1, sizeof *rl);
	rl->fd = fd;
	rl->npending = len - (size_t)hl;
	rl->pending = xmalloc(rl->npending + 1);
	memcpy(rl->pending, head + hl, rl->npending);
	/* an HTTP/1.0 request gets its answer unchunked; the body ends with the connection */
	uint64_t total = hr.content_length >= 0 && !hr.chunked ? (uint64_t)hr.content_length : MHD_SIZE_UNKNOWN;
	struct MHD_Response *resp = MHD_create_response_from_callback(total, FWD_BUF, relay_read_cb, rl, relay_free_cb);
	for (int k = 0; k < HTTP_RESP_KEPT; k++) {
		if (!hr.kept[k])
			continue;
		char *v = xstrndup(hr.kept[k], hr.kept_len[k]);
		MHD_add_response_header(resp, http_resp_kept_name(k), v);
		free(v);
	}
	int status = hr.status;
	free(head);
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int cluster_proxy_connect(const char *job_id, struct err *err)
{
	if (!C.on)
		return err_set(err, 0, "here");
	char node[NODE_ID_MAX];
	db_job_node(job_id, node);
	if (!node[0] || !strcmp(node, C.node))
		return err_set(err, 0, "here");
	struct node_row n;
	if (db_node_get(node, &n) < 0 || strcmp(n.state, "alive") != 0 || !n.proxy) {
		db_node_row_free(&n);
		return err_set(err, 502, "its node %s is not answering", node);
	}
	char *colon = strrchr(n.proxy, ':');
	int fd = -1;
	if (colon) {
		*colon = '\0';
		fd = connect_to(n.proxy, colon + 1, FWD_CONNECT_MS, err);
	} else {
		err_set(err, 502, "node %s: no proxy address", node);
	}
	db_node_row_free(&n);
	return fd;
}
