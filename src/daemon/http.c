// SPDX-License-Identifier: MIT
/* HTTP server plumbing over libmicrohttpd; see http.h. */
#include "http.h"
#include "static.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiparse.h"
#include "jobspec.h"
#include "log.h"
#include "utf8.h"
#include "xmalloc.h"

static struct MHD_Daemon *mhd;

enum MHD_Result http_reply_json(struct req *r, unsigned status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	size_t n = strlen(s);
	s = xrealloc(s, n + 2);
	s[n] = '\n';
	s[n + 1] = '\0';
	struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result http_reply_raw_json(struct req *r, const char *json, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result http_reply_error(struct req *r, unsigned status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	json_t *o = json_object();
	/* messages may quote user input: keep them valid UTF-8 for JSON */
	json_object_set_new(o, "error", utf8_json_string(msg));
	json_object_set_new(o, "code", json_integer(status));
	free(msg);
	return http_reply_json(r, status, o);
}

int http_body_text_field(struct req *r, const char *what, const char *field, size_t max, char *out, struct err *err)
{
	if (r->too_big)
		return err_set(err, 413, "request body larger than %d bytes", API_BODY_MAX);
	return apiparse_text_field((const char *)r->body.data, r->body.len, what, field, max, out, err);
}

const char *http_query(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_n {
	const char *key;
	const char *value;
	size_t len;
};

static enum MHD_Result query_n_cb(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				  const char *value, size_t value_size)
{
	struct query_n *q = cls;
	if (value && !q->value && key_size == strlen(q->key) && !memcmp(key, q->key, key_size)) {
		q->value = value;
		q->len = value_size;
	}
	return MHD_YES;
}

const char *http_query_n(struct req *r, const char *key, size_t *len)
{
	struct query_n q = { .key = key };
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, query_n_cb, &q);
	*len = q.len;
	return q.value;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->conn = conn;
		r->method = method;
		buf_init(&r->body);
		*con_cls = r;
		if (!strcmp(method, "POST") || !strcmp(method, "PUT"))
			api_upload_begin(r, url);
		return MHD_YES;
	}
	if (*upload_size && r->up) {
		bool go_on = api_upload_data(r, upload, *upload_size);
		*upload_size = 0;
		return go_on ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		r->body_seen += (long long)*upload_size;
		if (r->body_seen > API_BODY_DISCARD_MAX)
			return MHD_NO; /* drop the connection: nobody sends this much */
		if (!r->too_big && r->body.len + *upload_size > API_BODY_MAX) {
			r->too_big = true;
			buf_free(&r->body);
		}
		if (!r->too_big)
			buf_append(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %d bytes", API_BODY_MAX);
	if (strncmp(url, "/api/v1/", 8) != 0 && strcmp(url, "/api/v1") != 0) {
		bool handled;
		enum MHD_Result ret = static_serve(conn, method, url, &handled);
		if (handled)
			return ret;
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %.200s (the API lives under /api/v1)", url);
	}
	r->path = url + 7;
	return api_route(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	if (!r)
		return;
	api_upload_abort(r);
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* a client that hangs up on a log stream it no longer wants is routine */
	if (strstr(msg, "socket is no longer available"))
		log_debug("http: %s", msg);
	else
		log_warn("http: %s", msg);
}

int http_start(const char *listen, struct err *err)
{
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return err_set(err, 400, "--listen: expected HOST:PORT, not \"%s\"", listen);
	char host[64];
	size_t hl = (size_t)(colon - listen);
	if (hl >= sizeof host)
		return err_set(err, 400, "--listen: host too long");
	memcpy(host, listen, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return err_set(err, 400, "--listen: bad port in \"%s\"", listen);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1)
		return err_set(err, 400, "--listen: \"%s\" is not an IPv4 address", host);
	mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
			       0, NULL, NULL, on_request, NULL,
			       MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			       MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			       MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
			       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
			       MHD_OPTION_END);
	if (!mhd)
		return err_set(err, EADDRINUSE, "listen on %s", listen);
	return 0;
}

void http_stop(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
	mhd = NULL;
}
