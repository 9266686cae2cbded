// SPDX-License-Identifier: MIT
/*
 * HTTP/1.x request head parser and public host names; see httphead.h.
 * The grammar follows RFC 9112 (message syntax) and RFC 9110 section 5.6.2
 * (tokens); where the RFCs allow leniency (bare LF line ends aside) this
 * parser refuses, because the proxy forwards the bytes unchanged and the
 * sandbox's own server must not read them differently from us.
 */
#include "httphead.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* tchar (RFC 9110 5.6.2): the characters of methods and field names */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* bytes never allowed in a head: controls other than HTAB (CR and LF are handled by the line splitter) */
static bool is_bad_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int fail(struct http_head *h, const char *why)
{
	h->error = why;
	return -1;
}

/* Checks the bytes of one line (without its line end): NULL, or why not. */
static const char *line_error(const char *p, size_t n, bool request)
{
	if (n > HTTP_LINE_MAX)
		return request ? "request head line too long" : "response head line too long";
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			return request ? "bare CR in request head" : "bare CR in response head";
		if (is_bad_byte((unsigned char)p[i]))
			return request ? "control character in request head" : "control character in response head";
	}
	return NULL;
}

static int check_line(struct http_head *h, const char *p, size_t n)
{
	const char *why = line_error(p, n, true);
	return why ? fail(h, why) : 0;
}

/* "METHOD SP origin-form SP HTTP/1.x", exactly one space between the parts */
static int parse_request_line(struct http_head *h, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i > HTTP_METHOD_MAX || i == n || p[i] != ' ')
		return fail(h, "bad request method");
	h->method = p;
	h->method_len = i;
	size_t t = ++i;
	while (i < n && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ')
		return fail(h, "bad request target");
	h->target = p + t;
	h->target_len = i - t;
	bool asterisk = h->target_len == 1 && p[t] == '*' && h->method_len == 7 && !memcmp(p, "OPTIONS", 7);
	if (p[t] != '/' && !asterisk)
		return fail(h, "request target must be a path");
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || (p[i + 7] != '0' && p[i + 7] != '1'))
		return fail(h, "unsupported HTTP version");
	h->minor = p[i + 7] - '0';
	return 0;
}

/* The port after a Host's ':' : 1 to 5 digits, 1..65535. */
static int parse_port(struct http_head *h, const char *p, size_t n)
{
	if (n == 0 || n > 5)
		return fail(h, "bad port in Host");
	int port = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return fail(h, "bad port in Host");
		port = port * 10 + (p[i] - '0');
	}
	if (port < 1 || port > 65535)
		return fail(h, "bad port in Host");
	h->port = port;
	return 0;
}

/*
 * Host = uri-host [ ":" port ] (RFC 9110 7.2). uri-host is a bracketed IPv6
 * literal or a name of letters, digits, '-', '.' and '_'; percent-encoding
 * and the other sub-delims RFC 3986 allows are refused (no DNS name has them).
 */
static int parse_host(struct http_head *h, const char *p, size_t n)
{
	size_t i = 0;
	if (n > 0 && p[0] == '[') {
		while (++i < n && p[i] != ']')
			if (!strchr("0123456789abcdefABCDEF:.", p[i]))
				return fail(h, "bad IPv6 address in Host");
		if (i == n || i == 1)
			return fail(h, "bad IPv6 address in Host");
		i++;
	} else {
		while (i < n && p[i] != ':') {
			char c = p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '-' || c == '.' || c == '_'))
				return fail(h, "bad character in Host");
			i++;
		}
	}
	if (i == 0)
		return fail(h, "empty Host");
	if (i > HTTP_HOST_MAX)
		return fail(h, "Host too long");
	for (size_t k = 0; k < i; k++)
		h->host[k] = (p[k] >= 'A' && p[k] <= 'Z') ? (char)(p[k] - 'A' + 'a') : p[k];
	h->host[i] = '\0';
	if (i == n)
		return 0;
	if (p[i] != ':')
		return fail(h, "bad Host");
	return parse_port(h, p + i + 1, n - i - 1);
}

/*
 * field-line = field-name ":" OWS field-value OWS (RFC 9112 5): the name's
 * length in *name_len, the value without its surrounding whitespace in
 * (v, vn); counts the field in *nfields. NULL, or why not.
 */
static const char *split_field(const char *p, size_t n, bool request, unsigned *nfields, size_t *name_len,
			       const char **v, size_t *vn)
{
	if (p[0] == ' ' || p[0] == '\t')
		return request ? "obsolete line folding in request head" : "obsolete line folding in response head";
	if (++*nfields > HTTP_FIELDS_MAX)
		return "too many header fields";
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return "bad header field name";
	const char *b = p + i + 1, *end = p + n;
	while (b < end && (*b == ' ' || *b == '\t'))
		b++;
	while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*name_len = i;
	*v = b;
	*vn = (size_t)(end - b);
	return NULL;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 5) */
static int parse_field(struct http_head *h, const char *p, size_t n, unsigned *hosts)
{
	size_t i, vn;
	const char *v;
	const char *why = split_field(p, n, true, &h->nfields, &i, &v, &vn);
	if (why)
		return fail(h, why);
	if (i != 4 || strncasecmp(p, "host", 4) != 0)
		return 0;
	if (++*hosts > 1)
		return fail(h, "more than one Host header");
	return parse_host(h, v, vn);
}

int http_head_parse(const char *buf, size_t len, struct http_head *h)
{
	memset(h, 0, sizeof *h);
	size_t lim = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	size_t off = 0;
	unsigned hosts = 0;
	for (;;) {
		const char *p = buf + off;
		const char *nl = memchr(p, '\n', lim - off);
		if (!nl) {
			/* an incomplete line: report bad bytes now, not after a timeout */
			size_t n = lim - off;
			if (n > 0 && p[n - 1] == '\r')
				n--; /* its LF may be next */
			if (check_line(h, p, n) < 0)
				return -1;
			return len >= HTTP_HEAD_MAX ? fail(h, "request head too large") : 0;
		}
		size_t n = (size_t)(nl - p);
		off += n + 1;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (check_line(h, p, n) < 0)
			return -1;
		if (!h->method) {
			if (parse_request_line(h, p, n) < 0)
				return -1;
		} else if (n == 0) {
			break;
		} else if (parse_field(h, p, n, &hosts) < 0) {
			return -1;
		}
	}
	if (hosts == 0)
		return fail(h, "missing Host header");
	return (int)off;
}

int http_host_label(const char *host, const char *domain, char *label, size_t cap)
{
	size_t hn = strlen(host), dn = strlen(domain);
	if (hn > 0 && host[hn - 1] == '.')
		hn--;
	if (dn > 0 && domain[dn - 1] == '.')
		dn--;
	if (dn == 0 || hn < dn + 2)
		return -1;
	size_t ln = hn - dn - 1;
	if (host[ln] != '.' || strncasecmp(host + ln + 1, domain, dn) != 0)
		return -1;
	if (ln > HTTP_LABEL_MAX || ln + 1 > cap || host[0] == '-' || host[ln - 1] == '-')
		return -1;
	for (size_t i = 0; i < ln; i++) {
		char c = host[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return -1;
		label[i] = c;
	}
	label[ln] = '\0';
	return (int)ln;
}

/* ---- response heads ---------------------------------------------------------- */

static int resp_fail(struct http_resp *r, const char *why)
{
	r->error = why;
	return -1;
}

/* "HTTP/1.x SP 3DIGIT SP reason" (the reason may be empty; its space too) */
static int parse_status_line(struct http_resp *r, const char *p, size_t n)
{
	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return resp_fail(r, "bad status line");
	for (int i = 9; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return resp_fail(r, "bad status code");
	if (n > 12 && p[12] != ' ')
		return resp_fail(r, "bad status line");
	r->minor = p[7] - '0';
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (r->status < 100 || r->status > 599)
		return resp_fail(r, "bad status code");
	return 0;
}

static const char *const resp_kept[HTTP_RESP_KEPT] = { "content-type", "content-disposition", "location",
							"retry-after", "cache-control" };

static int parse_resp_field(struct http_resp *r, const char *p, size_t n)
{
	size_t i, vn;
	const char *v;
	const char *why = split_field(p, n, false, &r->nfields, &i, &v, &vn);
	if (why)
		return resp_fail(r, why);
	if (i == 14 && !strncasecmp(p, "content-length", 14)) {
		if (r->content_length >= 0)
			return resp_fail(r, "more than one Content-Length");
		if (vn == 0 || vn > 18)
			return resp_fail(r, "bad Content-Length");
		long long cl = 0;
		for (size_t k = 0; k < vn; k++) {
			if (v[k] < '0' || v[k] > '9')
				return resp_fail(r, "bad Content-Length");
			cl = cl * 10 + (v[k] - '0');
		}
		r->content_length = cl;
		return 0;
	}
	if (i == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
		r->chunked = true; /* whatever it says: the caller reads to the end instead */
		return 0;
	}
	for (int k = 0; k < HTTP_RESP_KEPT; k++) {
		if (strlen(resp_kept[k]) != i || strncasecmp(p, resp_kept[k], i) != 0)
			continue;
		if (r->kept[k])
			return resp_fail(r, "repeated header field");
		r->kept[k] = v;
		r->kept_len[k] = vn;
	}
	return 0;
}

int http_resp_parse(const char *buf, size_t len, struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	r->content_length = -1;
	size_t lim = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	size_t off = 0;
	bool first = true;
	for (;;) {
		const char *p = buf + off;
		const char *nl = memchr(p, '\n', lim - off);
		if (!nl) {
			size_t n = lim - off;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			const char *why = line_error(p, n, false);
			if (why)
				return resp_fail(r, why);
			return len >= HTTP_HEAD_MAX ? resp_fail(r, "response head too large") : 0;
		}
		size_t n = (size_t)(nl - p);
		off += n + 1;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		const char *why = line_error(p, n, false);
		if (why)
			return resp_fail(r, why);
		if (first) {
			if (parse_status_line(r, p, n) < 0)
				return -1;
			first = false;
		} else if (n == 0) {
			return (int)off;
		} else if (parse_resp_field(r, p, n) < 0) {
			return -1;
		}
	}
}

const char *http_resp_kept_name(int k)
{
	return k >= 0 && k < HTTP_RESP_KEPT ? resp_kept[k] : NULL;
}
