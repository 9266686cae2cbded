/* SPDX-License-Identifier: MIT */
/*
 * A strict, bounded parser for the head of an HTTP/1.x request: the request
 * line and the header fields up to the empty line (RFC 9112 sections 2-5).
 * The public-URL proxy (src/daemon/proxy.c) parses only the first request
 * head of a connection, to route it by its Host; everything after it is
 * relayed as bytes. Anything unusual is rejected rather than repaired: a head
 * two parsers could read differently is not one we forward.
 * No I/O and no allocation; safe to call from any thread.
 */
#ifndef MAGS_HTTPHEAD_H
#define MAGS_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_HEAD_MAX 16384	/* bytes of a request head, its empty line included */
#define HTTP_LINE_MAX 8192	/* bytes of one line, without its line end */
#define HTTP_FIELDS_MAX 100	/* header fields of one head */
#define HTTP_METHOD_MAX 32	/* bytes of the method token */
#define HTTP_HOST_MAX 253	/* bytes of the Host without its port (RFC 1035 2.3.4) */
#define HTTP_LABEL_MAX 63	/* bytes of one DNS label (RFC 1035 2.3.4) */

struct http_head {
	const char *method;		/* into the parsed buffer, not NUL-terminated */
	size_t method_len;
	const char *target;		/* request target, into the parsed buffer */
	size_t target_len;
	int minor;			/* HTTP/1.<minor>: 0 or 1 */
	unsigned nfields;		/* header fields seen */
	char host[HTTP_HOST_MAX + 1];	/* the Host header, lowercased, without its port */
	int port;			/* the Host header's port; 0 when it has none */
	const char *error;		/* static text saying why, after a -1 */
};

/*
 * Parses the request head at the start of buf[0..len). Returns the head's
 * length in bytes (> 0; the bytes after it belong to the body or the next
 * request) once it is complete and valid, 0 when more bytes are needed (only
 * while len < HTTP_HEAD_MAX), or -1 when it is malformed or too large, with
 * h->error set. Rejected: a line over HTTP_LINE_MAX, more than
 * HTTP_FIELDS_MAX fields, control characters (NUL included) anywhere, a bare
 * CR, obsolete line folding, whitespace before a field's colon, a method
 * that is not a token, a target that is not origin-form ("OPTIONS *" aside),
 * a version other than HTTP/1.0 and HTTP/1.1, and a Host header that is
 * missing, repeated, empty or has a bad name or port. Lines may end in CRLF
 * or a bare LF. Errors show up as soon as the bytes that cause them arrive.
 * h is cleared on entry; its pointers point into buf.
 */
int http_head_parse(const char *buf, size_t len, struct http_head *h);

/*
 * The sandbox label of a public host name: for host "myapp.localhost" under
 * domain "localhost" writes "myapp" and a NUL to label (cap bytes) and returns
 * its length. The label must be exactly one DNS label of [a-z0-9-] (compared
 * case-insensitively, written lowercased), 1..HTTP_LABEL_MAX bytes, not
 * starting or ending with '-'. One trailing dot on host or domain (the
 * fully-qualified spelling) is ignored. Returns -1 for anything else: a host
 * not under the domain, the bare domain, nested labels, bad characters, or a
 * label that does not fit in cap.
 */
int http_host_label(const char *host, const char *domain, char *label, size_t cap);

/*
 * The head of an HTTP/1.x response, as one magsd node reads the answer of
 * another it handed a request to (src/daemon/cluster.c). The same rules as
 * for a request head (line and field limits, no control characters, no bare
 * CR, no line folding); the status line is "HTTP/1.0" or "HTTP/1.1", a space,
 * three digits 100-599 and an optional reason. Content-Length must be
 * digits and appear at most once. The few fields a relay passes on are kept
 * (pointers into buf): Content-Type, Content-Disposition, Location,
 * Retry-After, Cache-Control, each at most once.
 */
#define HTTP_RESP_KEPT 5
struct http_resp {
	int status;
	int minor;
	long long content_length;	/* -1 = none */
	bool chunked;			/* a Transfer-Encoding was given */
	unsigned nfields;
	const char *kept[HTTP_RESP_KEPT];	/* values (not NUL-terminated) or NULL */
	size_t kept_len[HTTP_RESP_KEPT];
	const char *error;
};
/* As http_head_parse: the head's length, 0 for more bytes, or -1 with r->error set. */
int http_resp_parse(const char *buf, size_t len, struct http_resp *r);
/* The field name of kept[k], as written in a head ("Content-Type" spelled lowercase). */
const char *http_resp_kept_name(int k);

#endif
