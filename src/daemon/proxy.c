// SPDX-License-Identifier: MIT
/*
 * The public-URL proxy and the TCP forwarder; see proxy.h.
 *
 * Shared machinery (struct srv): a listening socket, an accept thread and
 * one detached thread per connection, counted so stop can wait for them all.
 * Every live connection is on a list with its sockets, so stop can shut them
 * down and wake whatever its thread is blocked in. A connection thread owns
 * its sockets; it leaves the list before it closes them, so stop never
 * touches a descriptor number that was already reused.
 *
 * A connection has two phases. Until it is routed it uses blocking I/O with
 * SO_RCVTIMEO/SO_SNDTIMEO as the deadline (TLS handshake, request head,
 * error page). Then both sockets go non-blocking and relay() moves bytes
 * with one poll() loop: one buffer per direction, a read only when that
 * buffer is empty, a half-close of the other side when a side reaches EOF.
 * One thread per connection keeps TLS simple (an SSL object must not be used
 * from two threads at once) and the cost is a few hundred connections'
 * worth of small stacks.
 */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "httphead.h"
#include "log.h"
#include "xmalloc.h"

#define PROXY_THREAD_STACK (512 << 10)	/* per connection thread; route() runs on it too */
#define PROXY_PAGE_TIMEOUT_MS 10000	/* to write an error page */
#define PROXY_LINGER_MS 2000		/* to drain a request body after an error page */
#define PROXY_LINGER_MAX (1 << 20)	/* bytes drained at most */
#define PROXY_FLOW_ROUNDS 16		/* reads in a row before the other direction's turn */

_Static_assert(PROXY_RELAY_BUF >= HTTP_HEAD_MAX, "the request head is read into the relay buffer");

struct srv;

struct conn {
	struct conn *prev, *next;	/* on srv->conns, under srv->mu */
	struct srv *srv;
	int cfd;			/* the client's socket */
	int tfd;			/* the target's socket, -1 until routed; set under srv->mu */
	SSL *ssl;			/* the client's TLS session; NULL for plain */
	uint8_t *up;			/* PROXY_RELAY_BUF bytes client -> target (the request head first) */
	uint8_t *down;			/* PROXY_RELAY_BUF bytes target -> client */
	proxy_release_fn release;	/* called with tag when the connection ends, or NULL */
	char tag[PROXY_TAG_MAX];
};

struct srv {				/* what the proxy and the forwarder share */
	int lfd;			/* listening socket */
	int wake[2];			/* stop writes a byte to end the accept thread's poll */
	pthread_t acceptor;
	pthread_attr_t attr;		/* connection threads: detached, small stack */
	pthread_mutex_t mu;		/* guards the fields below */
	pthread_cond_t idle;		/* signalled when nconns drops to 0 */
	struct conn *conns;		/* live connections */
	unsigned nconns, max;
	bool stopping;
	bool refuse_http;		/* over max: answer 503 (plain HTTP proxy) rather than just close */
	const char *name;		/* "proxy" or "fwd", for log lines */
	void (*serve)(struct conn *c);	/* runs on the connection's thread */
	void *owner;			/* the struct proxy or struct fwd */
};

struct proxy {
	struct srv srv;
	char *domain;
	SSL_CTX *tls;			/* NULL for plain HTTP */
	proxy_route_fn route;
	proxy_release_fn release;
	void *ctx;
};

struct fwd {
	struct srv srv;
	fwd_connect_fn fn;
	proxy_release_fn release;
	void *ctx;
};

/* ---- small socket helpers --------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bounds each blocking read and write on fd to ms (SO_RCVTIMEO/SO_SNDTIMEO; a timeout shows as EAGAIN). */
static void set_timeouts(int fd, long long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	if (ms <= 0)
		tv.tv_usec = 1000; /* 0 would mean forever */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/*
 * No Nagle delay: small writes (a WebSocket frame, a keystroke over SSH) go
 * out at once. Keepalive probes: a relay has no idle timeout, so a peer that
 * vanished without a FIN (a laptop put to sleep) must still end it, after
 * about two minutes, rather than hold a connection slot forever. Both fail
 * harmlessly on sockets that are not TCP.
 */
static void tune_socket(int fd)
{
	int one = 1, idle = 60, intvl = 15, cnt = 4;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into host (empty = any) and port. Returns 0 or -1. */
static int split_listen(const char *s, char *host, size_t cap, char *port, size_t pcap)
{
	const char *colon = strrchr(s, ':');
	if (!colon || !colon[1] || strlen(colon + 1) >= pcap || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	const char *h = s;
	size_t n = (size_t)(colon - s);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= cap)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* A listening socket on host:port (host "" = every address). Returns it, or -1 with e set. */
static int listen_on(const char *host, const char *port, struct err *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	int r = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (r != 0)
		return err_set(e, 400, "listen on \"%s\": %s", host, gai_strerror(r)), -1;
	int fd = -1, saved = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		err_set(e, saved, "listen on \"%s\" port %s", host, port);
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- one side of a connection: plain or TLS ---------------------------------- */

enum { IO_ERR = -1, IO_AGAIN = -2 };

struct end {
	int fd;
	SSL *ssl;	/* NULL for plain */
};

/* The poll events a TLS call that did not complete waits for; IO_ERR for real errors. */
static int tls_again(SSL *ssl, int r, short *wait)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*wait = POLLIN;
		return IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*wait = POLLOUT;
		return IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain EOF */
	default:
		return IO_ERR;
	}
}

/*
 * Reads up to n bytes: > 0 bytes read, 0 at EOF, IO_ERR, or IO_AGAIN with
 * *wait set to the poll events to wait for (0: just retry). On a blocking
 * socket IO_AGAIN with *wait set means its SO_RCVTIMEO ran out.
 */
static ssize_t end_read(const struct end *e, void *p, size_t n, short *wait)
{
	*wait = 0;
	if (!e->ssl) {
		ssize_t r = recv(e->fd, p, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			return IO_AGAIN;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			*wait = POLLIN;
			return IO_AGAIN;
		}
		return IO_ERR;
	}
	ERR_clear_error();
	int r = SSL_read(e->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
	return r > 0 ? r : tls_again(e->ssl, r, wait);
}

/* Writes up to n > 0 bytes: > 0 bytes written, IO_ERR, or IO_AGAIN as for end_read. */
static ssize_t end_write(const struct end *e, const void *p, size_t n, short *wait)
{
	*wait = 0;
	if (!e->ssl) {
		ssize_t r = send(e->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			return IO_AGAIN;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			*wait = POLLOUT;
			return IO_AGAIN;
		}
		return IO_ERR;
	}
	ERR_clear_error();
	int r = SSL_write(e->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0)
		return r;
	r = tls_again(e->ssl, r, wait);
	return r == 0 ? IO_ERR : r;
}

/* Ends the writing side: a FIN, or for TLS a close_notify (the peer may go on sending). */
static void end_shut_wr(const struct end *e)
{
	if (e->ssl) {
		ERR_clear_error();
		SSL_shutdown(e->ssl);
	} else {
		shutdown(e->fd, SHUT_WR);
	}
}

/* Writes all n bytes on a blocking end within ms. Returns 0 or -1. */
static int end_write_all(const struct end *e, const void *p, size_t n, long long ms)
{
	long long deadline = now_ms() + ms;
	while (n > 0) {
		set_timeouts(e->fd, deadline - now_ms());
		short wait;
		ssize_t r = end_write(e, p, n, &wait);
		if (r == IO_ERR || (r == IO_AGAIN && wait))
			return -1;
		if (r > 0) {
			p = (const uint8_t *)p + r;
			n -= (size_t)r;
		}
	}
	return 0;
}

/* ---- the relay ------------------------------------------------------------------ */

struct flow {			/* one direction of a relay: src -> buf -> dst */
	const struct end *src, *dst;
	uint8_t *buf;		/* PROXY_RELAY_BUF bytes */
	size_t off, len;	/* bytes read and not yet written: buf[off..off+len) */
	bool eof;		/* src reached EOF */
	bool done;		/* eof, all written, dst's write side shut */
	short rwait;		/* poll events the read from src waits for; 0 = try now */
	short wwait;		/* poll events the write to dst waits for; 0 = try now */
};

/* Moves bytes until the flow blocks or finishes, or has had its turn. Returns 0, or -1 when a side failed. */
static int flow_run(struct flow *f)
{
	int rounds = 0;
	while (rounds < PROXY_FLOW_ROUNDS) {
		if (f->len > 0) {
			if (f->wwait)
				return 0;
			ssize_t n = end_write(f->dst, f->buf + f->off, f->len, &f->wwait);
			if (n == IO_ERR)
				return -1;
			if (n > 0) {
				f->off += (size_t)n;
				f->len -= (size_t)n;
			}
			continue;
		}
		if (f->eof) {
			if (!f->done)
				end_shut_wr(f->dst);
			f->done = true;
			return 0;
		}
		if (f->rwait)
			return 0;
		ssize_t n = end_read(f->src, f->buf, PROXY_RELAY_BUF, &f->rwait);
		if (n == IO_ERR)
			return -1;
		if (n == 0)
			f->eof = true;
		if (n > 0) {
			f->off = 0;
			f->len = (size_t)n;
			rounds++;
			/* a short plain read emptied the socket: poll before the next, saving an EAGAIN */
			if (!f->src->ssl && (size_t)n < PROXY_RELAY_BUF)
				f->rwait = POLLIN;
		}
	}
	return 0;
}

/* Adds the events f waits for on its src and dst; sets *now when it can go on at once. */
static void flow_events(const struct flow *f, short *src_ev, short *dst_ev, bool *now)
{
	if (f->done)
		return;
	if (f->len > 0) {
		*dst_ev |= f->wwait;
		*now |= !f->wwait;
	} else {
		*src_ev |= f->rwait;
		*now |= !f->rwait;
	}
}

/* After poll: a wait ends when its event, an error or a hang-up arrived (the retried call then tells which). */
static void flow_wake(struct flow *f, short src_rev, short dst_rev)
{
	if (f->rwait && (src_rev & (f->rwait | POLLERR | POLLHUP)))
		f->rwait = 0;
	if (f->wwait && (dst_rev & (f->wwait | POLLERR | POLLHUP)))
		f->wwait = 0;
}

/*
 * Relays between two non-blocking ends until both directions are done or
 * either side fails. up starts with up_len bytes already read from client.
 * No timeout: an idle relay waits until a side closes or stop shuts it down.
 */
static int relay(const struct end *client, const struct end *target, uint8_t *up_buf, size_t up_len, uint8_t *down_buf)
{
	struct flow up = { .src = client, .dst = target, .buf = up_buf, .len = up_len };
	struct flow down = { .src = target, .dst = client, .buf = down_buf };
	for (;;) {
		if (flow_run(&up) < 0 || flow_run(&down) < 0)
			return -1;
		if (up.done && down.done)
			return 0;
		short cev = 0, tev = 0;
		bool now = false;
		flow_events(&up, &cev, &tev, &now);
		flow_events(&down, &tev, &cev, &now);
		/* an fd nobody waits on is left out: its hang-up would only spin the loop */
		struct pollfd pf[2] = { { cev ? client->fd : -1, cev, 0 }, { tev ? target->fd : -1, tev, 0 } };
		if (poll(pf, 2, now ? 0 : -1) < 0 && errno != EINTR)
			return -1;
		flow_wake(&up, pf[0].revents, pf[1].revents);
		flow_wake(&down, pf[1].revents, pf[0].revents);
	}
}

/* ---- connections --------------------------------------------------------------- */

/* Takes the connection off its server's list, then closes and frees it. On its own thread. */
static void conn_end(struct conn *c)
{
	struct srv *s = c->srv;
	pthread_mutex_lock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (--s->nconns == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	/* s may be freed from here on: stop returns once nconns is 0 */
	SSL_free(c->ssl);
	close(c->cfd);
	if (c->tfd >= 0)
		close(c->tfd);
	if (c->release)
		c->release(c->tag);
	free(c);
}

/* Hands the target socket to c, where stop can reach it. Returns 0, or -1 (fd closed) when stopping. */
static int conn_set_target(struct conn *c, int fd)
{
	struct srv *s = c->srv;
	pthread_mutex_lock(&s->mu);
	bool stopping = s->stopping;
	if (!stopping)
		c->tfd = fd;
	pthread_mutex_unlock(&s->mu);
	if (stopping)
		close(fd);
	return stopping ? -1 : 0;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	c->srv->serve(c);
	conn_end(c);
	return NULL;
}

static const char busy_page[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
				"Content-Length: 25\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
				"too many connections now\n";

/* Starts a thread for a new connection, or turns it away when full or stopping. On the accept thread. */
static void srv_admit(struct srv *s, int fd)
{
	struct conn *c = xmalloc(sizeof *c + 2 * PROXY_RELAY_BUF);
	*c = (struct conn){ .srv = s, .cfd = fd, .tfd = -1 };
	c->up = (uint8_t *)(c + 1);
	c->down = c->up + PROXY_RELAY_BUF;
	pthread_mutex_lock(&s->mu);
	bool admit = !s->stopping && s->nconns < s->max;
	if (admit) {
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
	pthread_mutex_unlock(&s->mu);
	if (!admit) {
		log_debug("%s: %u connections, turning one away", s->name, s->max);
		if (s->refuse_http) /* best effort: the socket is new, its buffer has room */
			send(fd, busy_page, sizeof busy_page - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
		free(c);
		return;
	}
	pthread_t t;
	int r = pthread_create(&t, &s->attr, conn_main, c);
	if (r != 0) {
		log_debug("%s: no thread for a connection: %s", s->name, strerror(r));
		conn_end(c);
	}
}

static void *accept_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd pf[2] = { { s->lfd, POLLIN, 0 }, { s->wake[0], POLLIN, 0 } };
	for (;;) {
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			return NULL;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			srv_admit(s, fd);
		} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_debug("%s: accept: %s", s->name, strerror(errno));
			poll(&pf[1], 1, 100); /* out of descriptors: back off rather than spin */
		}
	}
}

/* Starts the accept thread on lfd (taken over, also on failure). Returns 0 or -1 with e set. */
static int srv_start(struct srv *s, int lfd, unsigned max, struct err *e)
{
	s->lfd = lfd;
	s->max = max ? max : PROXY_CONNS_DEFAULT;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->idle, NULL);
	pthread_attr_init(&s->attr);
	pthread_attr_setdetachstate(&s->attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&s->attr, PROXY_THREAD_STACK);
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		s->wake[0] = s->wake[1] = -1;
		return err_set(e, errno, "%s: pipe", s->name);
	}
	/* the threads inherit a mask with SIGPIPE blocked: a write to a closed TLS peer must not kill magsd */
	sigset_t pipe, old;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	int r = pthread_create(&s->acceptor, NULL, accept_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return err_set(e, r, "%s: accept thread", s->name);
	return 0;
}

/* Ends the accept thread and every connection, waits for their threads and frees s's resources. */
static void srv_stop(struct srv *s, bool started)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (struct conn *c = s->conns; c; c = c->next) {
		shutdown(c->cfd, SHUT_RDWR);
		if (c->tfd >= 0)
			shutdown(c->tfd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->mu);
	if (started) {
		if (write(s->wake[1], "x", 1) < 0)
			log_error("%s: cannot wake the accept thread: %s", s->name, strerror(errno));
		pthread_join(s->acceptor, NULL);
	}
	pthread_mutex_lock(&s->mu);
	while (s->nconns > 0)
		pthread_cond_wait(&s->idle, &s->mu);
	pthread_mutex_unlock(&s->mu);
	close(s->lfd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_attr_destroy(&s->attr);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->mu);
}

/* ---- the HTTP proxy ------------------------------------------------------------------ */

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* HTML-escapes s into out (cap bytes), control characters as spaces, so why stays one plain line. */
static void html_escape(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	for (; *s; s++) {
		char one[2] = { *s, 0 };
		const char *rep = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : one;
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			rep = " ";
		size_t k = strlen(rep);
		if (n + k >= cap)
			break;
		memcpy(out + n, rep, k);
		n += k;
	}
	out[n] = '\0';
}

/*
 * Answers with an error page, then closes gently: shut our side, and read
 * and drop what the client still sends (a request body) for a moment, so
 * that closing with unread data does not reset the connection before the
 * client has read the page (RFC 9112 section 9.6).
 */
static void send_page(struct conn *c, const struct end *client, int status, const char *why, bool head_only)
{
	char msg[6 * sizeof ((struct proxy_target *)0)->why];
	html_escape(why, msg, sizeof msg);
	const char *text = status_text(status);
	char body[sizeof msg + 512];
	int bn = snprintf(body, sizeof body,
			  "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n"
			  "<body><h1>%d %s</h1>\n<p>%s</p>\n</body></html>\n",
			  status, text, status, text, msg);
	char page[sizeof body + 256];
	int n = snprintf(page, sizeof page,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
			 "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
			 status, text, bn, head_only ? "" : body);
	if (end_write_all(client, page, (size_t)n, PROXY_PAGE_TIMEOUT_MS) < 0)
		return;
	end_shut_wr(client);
	long long deadline = now_ms() + PROXY_LINGER_MS;
	for (size_t drained = 0; drained < PROXY_LINGER_MAX && now_ms() < deadline;) {
		set_timeouts(client->fd, deadline - now_ms());
		short wait;
		ssize_t r = end_read(client, c->down, PROXY_RELAY_BUF, &wait);
		if (r == 0 || r == IO_ERR || (r == IO_AGAIN && wait))
			break;
		if (r > 0)
			drained += (size_t)r;
	}
}

enum { HEAD_DONE, HEAD_BAD, HEAD_GONE, HEAD_SLOW };

/* Reads into c->up until the first request head is complete (HEAD_DONE, *len bytes read) or not. */
static int read_head(struct conn *c, const struct end *client, long long deadline, struct http_head *h, size_t *len)
{
	*len = 0;
	for (;;) {
		if (now_ms() >= deadline)
			return HEAD_SLOW;
		set_timeouts(client->fd, deadline - now_ms());
		short wait;
		ssize_t n = end_read(client, c->up + *len, PROXY_RELAY_BUF - *len, &wait);
		if (n == IO_AGAIN && wait)
			return HEAD_SLOW;
		if (n == 0 || n == IO_ERR)
			return HEAD_GONE;
		if (n < 0)
			continue;
		*len += (size_t)n;
		int r = http_head_parse((const char *)c->up, *len, h);
		if (r != 0)
			return r > 0 ? HEAD_DONE : HEAD_BAD;
	}
}

static int tls_handshake(struct conn *c, SSL_CTX *ctx, struct end *client, long long deadline)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->cfd))
		return -1;
	set_timeouts(c->cfd, deadline - now_ms());
	ERR_clear_error();
	if (SSL_accept(c->ssl) != 1) {
		unsigned long code = ERR_peek_error();
		log_debug("proxy: TLS handshake: %s", code ? ERR_reason_error_string(code) : "connection closed");
		return -1;
	}
	client->ssl = c->ssl;
	return 0;
}

/* Asks route() for the target of host; on failure answers with the error page. Returns the fd or -1. */
static int route_request(struct proxy *p, struct conn *c, const struct end *client, const struct http_head *h)
{
	bool head_only = h->method_len == 4 && !memcmp(h->method, "HEAD", 4);
	char label[HTTP_LABEL_MAX + 1], why[sizeof ((struct proxy_target *)0)->why + HTTP_HOST_MAX];
	if (http_host_label(h->host, p->domain, label, sizeof label) < 0) {
		snprintf(why, sizeof why, "%s is not the address of a sandbox under %s", h->host, p->domain);
		log_debug("proxy: %s", why);
		send_page(c, client, 404, why, head_only);
		return -1;
	}
	struct proxy_target t = { .fd = -1 };
	p->route(p->ctx, label, &t);
	if (t.fd >= 0) {
		t.tag[sizeof t.tag - 1] = '\0';
		if (t.tag[0] && p->release) {
			memcpy(c->tag, t.tag, sizeof c->tag);
			c->release = p->release;
		}
		return t.fd;
	}
	int status = t.status >= 400 && t.status <= 599 ? t.status : 502;
	t.why[sizeof t.why - 1] = '\0';
	if (t.why[0])
		snprintf(why, sizeof why, "%s", t.why);
	else if (status == 404)
		snprintf(why, sizeof why, "no sandbox named \"%s\"", label);
	else
		snprintf(why, sizeof why, "sandbox \"%s\" is not reachable", label);
	log_debug("proxy: %s: %d %s", label, status, why);
	send_page(c, client, status, why, head_only);
	return -1;
}

static void proxy_serve(struct conn *c)
{
	struct proxy *p = c->srv->owner;
	struct end client = { .fd = c->cfd };
	long long deadline = now_ms() + PROXY_HEAD_TIMEOUT_MS;
	tune_socket(c->cfd);
	if (p->tls && tls_handshake(c, p->tls, &client, deadline) < 0)
		return;
	struct http_head h;
	size_t len;
	switch (read_head(c, &client, deadline, &h, &len)) {
	case HEAD_GONE:
		return;
	case HEAD_SLOW:
		log_debug("proxy: no request head within %d ms", PROXY_HEAD_TIMEOUT_MS);
		if (len > 0)
			send_page(c, &client, 408, "the request head did not arrive in time", false);
		return;
	case HEAD_BAD:
		log_debug("proxy: bad request head: %s", h.error);
		send_page(c, &client, 400, h.error, false);
		return;
	}
	int fd = route_request(p, c, &client, &h);
	if (fd < 0 || conn_set_target(c, fd) < 0)
		return;
	struct end target = { .fd = fd };
	tune_socket(fd);
	set_nonblock(fd);
	set_nonblock(c->cfd);
	if (relay(&client, &target, c->up, len, c->down) < 0)
		log_debug("proxy: %s: relay ended: %s", h.host, errno ? strerror(errno) : "TLS error");
}

/* A TLS 1.2+ server context with the certificate chain and key. Returns it or NULL with e set. */
static SSL_CTX *tls_ctx_new(const char *cert, const char *key, struct err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		err_set(e, 500, "TLS: no context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	long opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF; /* browsers often close without close_notify: that is EOF, not an error */
#endif
	SSL_CTX_set_options(ctx, opts);
	/* partial writes: relay() advances through its buffer; release buffers: idle relays hold little memory */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* no ALPN callback: clients fall back to HTTP/1.1, the only protocol the head parser reads */
	const char *what = cert;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) == 1) {
		what = key;
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1)
			return ctx;
	}
	char msg[256];
	ERR_error_string_n(ERR_get_error(), msg, sizeof msg);
	ERR_clear_error();
	err_set(e, 400, "TLS: %s: %s", what, msg);
	SSL_CTX_free(ctx);
	return NULL;
}

struct proxy *proxy_start(const struct proxy_cfg *cfg, struct err *e)
{
	char host[256], port[8];
	if (!cfg->listen || split_listen(cfg->listen, host, sizeof host, port, sizeof port) < 0) {
		err_set(e, 400, "proxy: listen address \"%s\": expected HOST:PORT", cfg->listen ? cfg->listen : "");
		return NULL;
	}
	if (!cfg->domain || !*cfg->domain || !cfg->route || !cfg->tls_cert != !cfg->tls_key) {
		err_set(e, 400, "proxy: needs a domain, a route function and both or neither of certificate and key");
		return NULL;
	}
	struct proxy *p = xcalloc(1, sizeof *p);
	p->srv = (struct srv){ .name = "proxy", .serve = proxy_serve, .owner = p, .lfd = -1, .wake = { -1, -1 } };
	p->domain = xstrdup(cfg->domain);
	p->route = cfg->route;
	p->release = cfg->release;
	p->ctx = cfg->ctx;
	p->srv.refuse_http = !cfg->tls_cert;
	if (cfg->tls_cert && !(p->tls = tls_ctx_new(cfg->tls_cert, cfg->tls_key, e)))
		goto fail;
	int lfd = listen_on(host, port, e);
	if (lfd < 0)
		goto fail;
	if (srv_start(&p->srv, lfd, cfg->max_conns, e) < 0) {
		srv_stop(&p->srv, false);
		goto fail_srv;
	}
	return p;
fail:
	err_wrap(e, "proxy");
fail_srv:
	SSL_CTX_free(p->tls);
	free(p->domain);
	free(p);
	return NULL;
}

int proxy_port(const struct proxy *p)
{
	return bound_port(p->srv.lfd);
}

void proxy_stop(struct proxy *p)
{
	if (!p)
		return;
	srv_stop(&p->srv, true);
	SSL_CTX_free(p->tls);
	free(p->domain);
	free(p);
}

/* ---- the TCP forwarder ---------------------------------------------------------------- */

static void fwd_serve(struct conn *c)
{
	struct fwd *f = c->srv->owner;
	int fd = f->fn(f->ctx);
	if (fd < 0) {
		log_debug("fwd: no target for a connection");
		return;
	}
	if (f->release) {
		snprintf(c->tag, sizeof c->tag, "%s", (const char *)f->ctx);
		c->release = f->release;
	}
	if (conn_set_target(c, fd) < 0)
		return;
	struct end client = { .fd = c->cfd }, target = { .fd = fd };
	tune_socket(c->cfd);
	tune_socket(fd);
	set_nonblock(c->cfd);
	set_nonblock(fd);
	if (relay(&client, &target, c->up, 0, c->down) < 0)
		log_debug("fwd: relay ended: %s", strerror(errno));
}

struct fwd *fwd_start(const char *host, int port, fwd_connect_fn fn, proxy_release_fn release, void *ctx,
		      struct err *e)
{
	if (port < 0 || port > 65535 || !fn) {
		err_set(e, 400, "forwarder: bad port %d", port);
		return NULL;
	}
	char ps[8];
	snprintf(ps, sizeof ps, "%d", port);
	int lfd = listen_on(host ? host : "", ps, e);
	if (lfd < 0) {
		err_wrap(e, "forwarder");
		return NULL;
	}
	struct fwd *f = xcalloc(1, sizeof *f);
	f->srv = (struct srv){ .name = "fwd", .serve = fwd_serve, .owner = f, .wake = { -1, -1 } };
	f->fn = fn;
	f->release = release;
	f->ctx = ctx;
	if (srv_start(&f->srv, lfd, 0, e) < 0) {
		srv_stop(&f->srv, false);
		free(f);
		return NULL;
	}
	return f;
}

int fwd_port(const struct fwd *f)
{
	return bound_port(f->srv.lfd);
}

void fwd_stop(struct fwd *f)
{
	if (!f)
		return;
	srv_stop(&f->srv, true);
	free(f);
}
