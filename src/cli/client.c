// SPDX-License-Identifier: MIT
/*
 * REST client over a libcurl easy handle; see client.h. Every request is
 * bounded: connect within CLIENT_CONNECT_S, and abort when fewer than one
 * byte arrives in CLIENT_STALL_S (magsd sends an empty heartbeat line on an
 * idle log or process output stream every 15 s, so a live stream never
 * stalls that long; streams count bytes themselves, see stall_watch).
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "cli.h"
#include "xmalloc.h"

#define CLIENT_CONNECT_S 10
#define CLIENT_STALL_S 60
#define CLIENT_ERROR_BODY_MAX (64u * 1024)	/* we only want its "error" text */

struct client {
	CURL *curl;
	char *base;			/* "http://host:port", no trailing slash; owned */
	char *token;			/* bearer token or NULL; owned */
	volatile sig_atomic_t *intr;	/* abort transfers while set; may be NULL */
	char errbuf[CURL_ERROR_SIZE];	/* libcurl's detail for the last failure */
	/*
	 * Streams: libcurl's low-speed check averages, so one heartbeat byte in
	 * 15 s reads as 0 bytes/s; instead client_progress_cb aborts when the
	 * byte count has not moved for CLIENT_STALL_S.
	 */
	bool stall_watch;		/* this transfer is a stream */
	curl_off_t stall_bytes;		/* bytes received when they last grew */
	double stall_since;		/* and when (CLOCK_MONOTONIC seconds) */
	bool stalled;			/* the transfer was aborted for that */
};

/* One request in flight. */
struct client_xfer {
	struct client *c;
	struct buf body;	/* the answer; for streams, the unfinished line */
	long status;		/* HTTP status, read on the first data callback */
	size_t max;		/* bound on body */
	bool too_big;
	client_line_cb cb;	/* NULL: collect the whole body */
	void *arg;
	struct err *err;
	bool cb_failed;
	/* client_upload: the request body comes from this file */
	bool upload;
	int up_fd;
	const char *up_file;		/* its name, for messages */
	curl_off_t up_size;		/* bytes announced in Content-Length */
	curl_off_t up_sent;
	bool up_failed;			/* read failed or the file shrank: err says why */
	bool up_put;			/* client_put_fd: PUT; up_size < 0 = unknown, sent chunked */
	/* client_download: a 2xx answer's body goes to this fd */
	bool down;
	int down_fd;
	long long down_bytes;
	/* client_post_bytes: the request body is these bytes */
	bool raw;
	const void *raw_data;
	size_t raw_len;
};

struct client *client_new(const char *base_url, const char *token)
{
	static bool global_done;
	if (!global_done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		global_done = true;
	}
	struct client *c = xcalloc(1, sizeof *c);
	c->curl = curl_easy_init();
	if (!c->curl) {
		fprintf(stderr, "mags: cannot initialise libcurl\n");
		abort();
	}
	c->base = xstrdup(base_url);
	c->token = token ? xstrdup(token) : NULL;
	return c;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->token);
	free(c);
}

const char *client_base_url(const struct client *c)
{
	return c->base;
}

void client_set_token(struct client *c, const char *token)
{
	free(c->token);
	c->token = token ? xstrdup(token) : NULL;
}

void client_set_interrupt(struct client *c, volatile sig_atomic_t *flag)
{
	c->intr = flag;
}

bool client_interrupted(const struct client *c)
{
	return c->intr && *c->intr;
}

char *client_escape(struct client *c, const char *s)
{
	char *e = curl_easy_escape(c->curl, s, 0);
	if (!e) {
		fprintf(stderr, "mags: out of memory\n");
		abort();
	}
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}

/* Delivers every complete line in x->body to x->cb; keeps the rest. */
static int client_split_lines(struct client_xfer *x, bool final)
{
	size_t start = 0;
	char *data = (char *)x->body.data;
	for (;;) {
		char *nl = memchr(data + start, '\n', x->body.len - start);
		size_t end;
		if (nl)
			end = (size_t)(nl - data);
		else if (final && start < x->body.len)
			end = x->body.len;
		else
			break;
		size_t len = end - start;
		char *line = data + start;
		char saved = data[end];
		data[end] = '\0';
		while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		int r = 0;
		if (len)	/* empty lines are heartbeats */
			r = x->cb(x->arg, line, len, x->err);
		data[end] = saved;
		start = end + (nl ? 1 : 0);
		if (r < 0) {
			x->cb_failed = true;
			return -1;
		}
	}
	buf_consume(&x->body, start);
	return 0;
}

/* client_download: writes a piece of the answer to x->down_fd; 0 (abort) on failure, with err set. */
static size_t client_write_fd(struct client_xfer *x, const char *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(x->down_fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_set(x->err, errno, "write: %s", strerror(errno));
			x->cb_failed = true;
			return 0;
		}
		done += (size_t)w;
	}
	x->down_bytes += (long long)n;
	return n;
}

static size_t client_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct client_xfer *x = arg;
	size_t n = size * nmemb;
	if (!x->status)
		curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->down && x->status >= 200 && x->status < 300)
		return client_write_fd(x, p, n);
	bool streaming = x->cb && x->status >= 200 && x->status < 300;
	size_t max = streaming ? CLIENT_LINE_MAX : x->status >= 300 ? CLIENT_ERROR_BODY_MAX : x->max;
	if (x->body.len + n > max) {
		if (!streaming && x->status >= 300)
			return n;	/* keep the start of an error body, drop the rest */
		x->too_big = true;
		return 0;
	}
	buf_append(&x->body, p, n);
	if (streaming && memchr(p, '\n', n) && client_split_lines(x, false) < 0)
		return 0;
	return n;
}

/* Feeds the request body of client_upload from x->up_fd, never past up_size. */
/* One read of an upload's source: >= 0, or -1 with the transfer marked failed (err set). */
static ssize_t client_up_read(struct client_xfer *x, char *p, size_t want)
{
	ssize_t n;
	do
		n = read(x->up_fd, p, want);
	while (n < 0 && errno == EINTR && !(x->c->intr && *x->c->intr));
	if (n < 0) {
		err_set(x->err, errno, "read %s", x->up_file);
		x->up_failed = true;
	}
	return n;
}

static size_t client_read_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct client_xfer *x = arg;
	size_t want = size * nmemb;
	if (x->up_size >= 0 && (curl_off_t)want > x->up_size - x->up_sent)
		want = (size_t)(x->up_size - x->up_sent);
	if (x->up_size >= 0 && !want)
		return 0;
	ssize_t n = client_up_read(x, p, want);	/* unknown size (-1): until EOF */
	if (n < 0)
		return CURL_READFUNC_ABORT;
	if (n == 0 && x->up_size >= 0) {
		err_set(x->err, 0, "%s: shrank while it was uploaded (%lld of %lld bytes sent)", x->up_file,
			(long long)x->up_sent, (long long)x->up_size);
		x->up_failed = true;
		return CURL_READFUNC_ABORT;
	}
	x->up_sent += n;
	return (size_t)n;
}

static double client_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int client_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct client *c = arg;
	if (c->intr && *c->intr)
		return 1;
	if (c->stall_watch) {
		double now = client_now();
		if (dlnow != c->stall_bytes) {
			c->stall_bytes = dlnow;
			c->stall_since = now;
		} else if (now - c->stall_since >= CLIENT_STALL_S) {
			c->stalled = true;
			return 1;
		}
	}
	return 0;
}

/* Sets err from an error answer (status >= 300) and returns CLIENT_E_HTTP. */
static int client_http_error(struct client_xfer *x, struct err *err)
{
	long st = x->status;
	if (st == 401) {
		err_set(err, 401, "not authenticated (set MAGS_TOKEN or run mags login)");
		return CLIENT_E_HTTP;
	}
	json_t *j = x->body.len ? json_loadb((const char *)x->body.data, x->body.len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "error"));
	if (msg && *msg) {
		err_set(err, (int)st, "%s", msg);
	} else {
		/* not magsd's error shape: show the status and the first line of what came */
		size_t n = 0;
		const char *b = x->body.data ? (const char *)x->body.data : "";
		while (n < x->body.len && n < 200 && b[n] != '\n' && b[n] != '\r')
			n++;
		if (n)
			err_set(err, (int)st, "HTTP %ld from %s: %.*s", st, x->c->base, (int)n, b);
		else
			err_set(err, (int)st, "HTTP %ld from %s", st, x->c->base);
	}
	json_decref(j);
	return CLIENT_E_HTTP;
}

/*
 * Runs one request. For streams (x->cb set) the lines go to the callback;
 * otherwise the body is left in x->body. Returns a client_result.
 */
static int client_perform(struct client *c, const char *method, const char *path, const char *body,
			  struct client_xfer *x, long timeout_ms, struct err *err)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	char *url = xasprintf("%s/api/v1%s", c->base, path);
	char *auth = c->token ? xasprintf("Authorization: Bearer %s", c->token) : NULL;
	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Accept: application/json, application/x-ndjson");
	hdrs = curl_slist_append(hdrs, "Expect:");	/* no 100-continue round trip */
	if (auth)
		hdrs = curl_slist_append(hdrs, auth);
	if (x->upload || x->raw)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	else if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	c->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mags/" CLI_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CLIENT_CONNECT_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)CLIENT_STALL_S);
	c->stall_watch = x->cb != NULL;
	c->stalled = false;
	c->stall_bytes = 0;
	c->stall_since = client_now();
	if (c->stall_watch)
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 0L);	/* client_progress_cb watches instead */
	if (timeout_ms)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, client_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (x->upload && x->up_put) {
		/* PUT with a body pulled from the fd; chunked when its size is unknown */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, client_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, x->up_size);
		if (x->up_size < 0)
			hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
		/* magsd answers once the guest has the whole file: no bytes flow meanwhile */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 0L);
	} else if (x->upload) {
		/* POST with a body pulled from the file as curl sends it */
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, client_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, x->up_size);
	} else if (x->raw) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->raw_len ? x->raw_data : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->raw_len);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		}
	}
	CURLcode cc = curl_easy_perform(h);
	int r = CLIENT_OK;
	if (!x->status)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	if (cc == CURLE_OK && x->cb && x->status >= 200 && x->status < 300 && x->body.len &&
	    client_split_lines(x, true) < 0)
		cc = CURLE_WRITE_ERROR;
	if (cc != CURLE_OK) {
		const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
		char stall[64];
		if (c->stalled) {
			snprintf(stall, sizeof stall, "nothing arrived for %d s", CLIENT_STALL_S);
			detail = stall;
		}
		if (c->intr && *c->intr) {
			err_set(err, 0, "interrupted");
			r = CLIENT_E_INTR;
		} else if (x->cb_failed || x->up_failed) {
			r = CLIENT_E_CB;	/* err already says why */
		} else if (x->too_big) {
			err_set(err, 0, "answer from magsd at %s is too large", c->base);
			r = CLIENT_E_PROTO;
		} else if (x->upload && x->status >= 300) {
			/* magsd refused an upload early and closed: its answer says why */
			r = client_http_error(x, err);
		} else if (x->status) {
			err_set(err, 0, "lost connection to magsd at %s: %s", c->base, detail);
			r = CLIENT_E_CONN;
		} else {
			err_set(err, 0, "cannot reach magsd at %s: %s", c->base, detail);
			r = CLIENT_E_CONN;
		}
	} else if (x->status < 200 || x->status >= 300) {
		r = client_http_error(x, err);
	}
	curl_slist_free_all(hdrs);
	free(auth);
	free(url);
	return r;
}

/* Parses a 2xx answer's body into *resp (new reference). Returns a client_result. */
static int client_parse_body(struct client *c, struct client_xfer *x, json_t **resp, struct err *err)
{
	json_error_t je;
	json_t *j = json_loadb(x->body.data ? (const char *)x->body.data : "", x->body.len, JSON_ALLOW_NUL, &je);
	if (!j) {
		err_set(err, 0, "invalid JSON from magsd at %s: %s", c->base, je.text);
		return CLIENT_E_PROTO;
	}
	*resp = j;
	return CLIENT_OK;
}

int client_call(struct client *c, const char *method, const char *path, json_t *body, json_t **resp,
		struct err *err)
{
	if (resp)
		*resp = NULL;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct client_xfer x = { .c = c, .max = CLIENT_BODY_MAX, .err = err };
	buf_init(&x.body);
	int r = client_perform(c, method, path, text, &x, 0, err);
	if (r == CLIENT_OK && resp)
		r = client_parse_body(c, &x, resp, err);
	buf_free(&x.body);
	free(text);
	return r;
}

int client_upload(struct client *c, const char *path, const char *file, json_t **resp, long long *sent,
		  struct err *err)
{
	if (resp)
		*resp = NULL;
	if (sent)
		*sent = 0;
	struct client_xfer x = { .c = c, .max = CLIENT_BODY_MAX, .err = err, .upload = true, .up_file = file };
	buf_init(&x.body);
	int r = CLIENT_E_CB;
	struct stat st;
	x.up_fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (x.up_fd < 0) {
		err_set(err, errno, "open %s", file);
		goto out;
	}
	if (fstat(x.up_fd, &st) < 0) {
		err_set(err, errno, "stat %s", file);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, 0, "%s: not a regular file", file);
		goto out;
	}
	x.up_size = st.st_size;
	r = client_perform(c, "POST", path, NULL, &x, 0, err);
	if (r == CLIENT_OK && resp)
		r = client_parse_body(c, &x, resp, err);
	if (r == CLIENT_OK && sent)
		*sent = (long long)x.up_sent;
out:
	if (x.up_fd >= 0)
		close(x.up_fd);
	buf_free(&x.body);
	return r;
}

int client_stream(struct client *c, const char *path, client_line_cb cb, void *arg, struct err *err)
{
	struct client_xfer x = { .c = c, .max = CLIENT_LINE_MAX, .cb = cb, .arg = arg, .err = err };
	buf_init(&x.body);
	int r = client_perform(c, "GET", path, NULL, &x, 0, err);
	buf_free(&x.body);
	return r;
}

int client_post_stream(struct client *c, const char *path, json_t *body, client_line_cb cb, void *arg,
		       struct err *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct client_xfer x = { .c = c, .max = CLIENT_LINE_MAX, .cb = cb, .arg = arg, .err = err };
	buf_init(&x.body);
	int r = client_perform(c, "POST", path, text, &x, 0, err);
	buf_free(&x.body);
	free(text);
	return r;
}

int client_post_bytes(struct client *c, const char *path, const void *data, size_t len, json_t **resp,
		      struct err *err)
{
	if (resp)
		*resp = NULL;
	struct client_xfer x = { .c = c, .max = CLIENT_BODY_MAX, .err = err, .raw = true, .raw_data = data,
				 .raw_len = len };
	buf_init(&x.body);
	int r = client_perform(c, "POST", path, NULL, &x, 0, err);
	if (r == CLIENT_OK && resp)
		r = client_parse_body(c, &x, resp, err);
	buf_free(&x.body);
	return r;
}

struct client *client_dup(const struct client *c)
{
	return client_new(c->base, c->token);
}

int client_health(struct client *c, long timeout_ms)
{
	struct client_xfer x = { .c = c, .max = CLIENT_ERROR_BODY_MAX };
	buf_init(&x.body);
	int r = client_perform(c, "GET", "/health", NULL, &x, timeout_ms, NULL);
	buf_free(&x.body);
	return r;
}

int client_download(struct client *c, const char *path, int fd, long long *got, struct err *err)
{
	*got = 0;
	struct client_xfer x = { .c = c, .max = CLIENT_ERROR_BODY_MAX, .err = err, .down = true, .down_fd = fd };
	buf_init(&x.body);
	int r = client_perform(c, "GET", path, NULL, &x, 0, err);
	*got = x.down_bytes;
	buf_free(&x.body);
	return r;
}

int client_put_fd(struct client *c, const char *path, int fd, const char *what, long long size, json_t **resp,
		  long long *sent, struct err *err)
{
	if (resp)
		*resp = NULL;
	*sent = 0;
	struct client_xfer x = { .c = c, .max = CLIENT_BODY_MAX, .err = err, .upload = true, .up_put = true,
				 .up_fd = fd, .up_file = what, .up_size = size };
	buf_init(&x.body);
	int r = client_perform(c, "PUT", path, NULL, &x, 0, err);
	if (r == CLIENT_OK && resp)
		r = client_parse_body(c, &x, resp, err);
	*sent = (long long)x.up_sent;
	buf_free(&x.body);
	return r;
}
