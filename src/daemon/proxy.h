/* SPDX-License-Identifier: MIT */
/*
 * The public-URL proxy and the plain TCP forwarder.
 *
 * proxy: a listener (HTTP, or HTTPS when a certificate is configured) for
 * https://<label>.<domain>/. Each connection gets its own thread: it reads
 * the first request head (src/lib/httphead.c), maps its Host to a label,
 * asks route() for a connected socket to the sandbox and from then on relays
 * bytes both ways without looking at them. Routing is per connection, by the
 * first request's Host, so keep-alive, chunked bodies, streaming responses
 * and WebSocket upgrades pass through unchanged, and no request of one
 * client ever reaches another client's upstream (no request smuggling: every
 * upstream connection belongs to one client connection).
 *
 * fwd: the same accept-and-relay machinery without HTTP, for SSH: each
 * accepted connection is relayed to the socket connect_fn returns.
 *
 * Both use blocking threads rather than magsd's event loop: a connection's
 * route() may block (it connects), and a relay is two poll()ed sockets.
 * Connections are bounded (max_conns); idle relays stay open until a side
 * closes or the proxy stops.
 */
#ifndef MAGS_PROXY_H
#define MAGS_PROXY_H

#include "err.h"

#define PROXY_HEAD_TIMEOUT_MS 10000	/* TLS handshake plus first request head */
#define PROXY_CONNS_DEFAULT 1024	/* max_conns when 0 */
#define PROXY_RELAY_BUF 65536		/* bytes buffered per direction of a relay */

#define PROXY_TAG_MAX 40

struct proxy_target {
	int fd;		/* connected stream socket to the sandbox port (ownership passes to the proxy); -1 when none */
	char tag[PROXY_TAG_MAX];	/* with fd: handed to the release callback when the connection ends ("" = none) */
	int status;	/* when fd < 0: 404 (no such sandbox) or 502 (not running / not listening) */
	char why[256];	/* one line for the error page (plain text; it is escaped) */
};

/*
 * Routes a request for label (the sandbox name or alias under the domain).
 * Called on the connection's own thread, possibly many at once; may block
 * (it connects). t arrives with fd -1, status 0 and why "".
 */
typedef void (*proxy_route_fn)(void *ctx, const char *label, struct proxy_target *t);
/* Told when a routed (or forwarded) connection ended, with its tag: for idle tracking. */
typedef void (*proxy_release_fn)(const char *tag);

struct proxy_cfg {
	const char *listen;		/* "HOST:PORT" ("[::1]:PORT" for IPv6; empty HOST = any); port 0 = any */
	const char *domain;		/* e.g. "localhost": sandboxes are <label>.<domain> */
	const char *tls_cert;		/* PEM certificate chain; with tls_key, HTTPS; both NULL = plain HTTP */
	const char *tls_key;		/* PEM private key */
	proxy_route_fn route;
	proxy_release_fn release;	/* NULL = none */
	void *ctx;			/* passed to route */
	unsigned max_conns;		/* concurrent connections; 0 = PROXY_CONNS_DEFAULT; over it: 503 and close */
};

/*
 * Binds, loads the certificate and starts the accept thread. Returns the
 * proxy (free it with proxy_stop), or NULL with e set. cfg's strings are
 * copied. SIGPIPE is blocked in the proxy's threads, never raised in magsd.
 */
struct proxy *proxy_start(const struct proxy_cfg *cfg, struct err *e);
/* The bound port (useful with port 0). */
int proxy_port(const struct proxy *p);
/*
 * Closes the listener, ends every connection (their sockets are shut down),
 * waits for their threads and frees p. A connection inside route() is waited
 * for until route() returns. Not from a proxy thread (route()).
 */
void proxy_stop(struct proxy *p);

/* Returns a connected stream socket (ownership passes to the forwarder) or -1: the client is then closed. */
typedef int (*fwd_connect_fn)(void *ctx);

/*
 * Listens on host:port (host NULL or "" = any; port 0 = any) and relays each
 * accepted connection to the socket fn(ctx) returns, called on the
 * connection's own thread. At most PROXY_CONNS_DEFAULT connections at once.
 * release (may be NULL) gets ctx as a string (the tag) when a connection
 * that fn connected ends. Returns NULL with e set on failure.
 */
struct fwd *fwd_start(const char *host, int port, fwd_connect_fn fn, proxy_release_fn release, void *ctx,
		      struct err *e);
int fwd_port(const struct fwd *f);
/* Like proxy_stop: also closes every relayed connection of this forwarder. */
void fwd_stop(struct fwd *f);

#endif
