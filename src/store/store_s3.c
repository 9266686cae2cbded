// SPDX-License-Identifier: MIT
/*
 * s3:// back end of the object store: libcurl with its AWS SigV4 signer
 * (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3"), path-style URLs
 * ENDPOINT/BUCKET/PREFIX/KEY. Requests used (S3 API reference):
 *   PutObject, GetObject, DeleteObject
 *   ListObjectsV2               GET /BUCKET?continuation-token=&list-type=2&prefix=
 *   CreateMultipartUpload       POST KEY?uploads=
 *   UploadPart                  PUT KEY?partNumber=N&uploadId=ID
 *   CompleteMultipartUpload     POST KEY?uploadId=ID (XML body; may fail with 200!)
 *   AbortMultipartUpload        DELETE KEY?uploadId=ID
 * Query parameters are written sorted and fully URI-encoded, which is their
 * SigV4 canonical form, so the signature holds whatever curl does with them.
 *
 * Every request is retried STORE_TRIES times with exponential backoff
 * (STORE_BACKOFF_MS doubling, +-50% jitter) on connection errors, timeouts,
 * HTTP 5xx and 429; never on other 4xx.
 *
 * Threads: each call takes an easy handle from a small locked pool (kept
 * connections are reused across calls) and puts it back after.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "s3xml.h"
#include "store_int.h"
#include "xmalloc.h"

#define S3_POOL_MAX 16			/* idle easy handles kept */
#define S3_LIST_PAGE_MAX (16u << 20)	/* bytes of one ListObjectsV2 reply */
#define S3_SMALL_REPLY_MAX (1u << 20)	/* bytes of any other reply we read */
#define S3_PARTS_MAX 10000		/* S3's limit on parts per upload */

struct store_s3 {
	char *endpoint;		/* "http(s)://host[:port]", no trailing '/' */
	char *bucket;
	char *prefix;		/* "" or "some/prefix/" */
	char *userpwd;		/* "ACCESS:SECRET" for CURLOPT_USERPWD */
	char *sigv4;		/* "aws:amz:REGION:s3" */
	pthread_mutex_t lock;	/* guards pool */
	CURL *pool[S3_POOL_MAX];
	int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int store_s3_open(struct store *s, const char *bucket, const char *prefix, const struct store_opts *o, struct err *err)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc < 0)
		return err_set(err, EIO, "store: curl_global_init failed");
	const char *region = o && o->region ? o->region : "us-east-1";
	const char *ak = o && o->access_key ? o->access_key : getenv("AWS_ACCESS_KEY_ID");
	const char *sk = o && o->secret_key ? o->secret_key : getenv("AWS_SECRET_ACCESS_KEY");
	for (const char *p = region; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return err_set(err, 400, "store: invalid region \"%.40s\"", region);
	if (!ak || !*ak || !sk || !*sk)
		return err_set(err, 400, "store: %s: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", s->url);
	if (strchr(ak, ':'))
		return err_set(err, 400, "store: invalid access key");
	struct store_s3 *c = xcalloc(1, sizeof *c);
	s->s3 = c;
	pthread_mutex_init(&c->lock, NULL);
	if (o && o->endpoint) {
		if (strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8))
			return err_set(err, 400, "store: endpoint %s: want http(s)://host[:port]", o->endpoint);
		c->endpoint = xstrdup(o->endpoint);
		size_t n = strlen(c->endpoint);
		while (n && c->endpoint[n - 1] == '/')
			c->endpoint[--n] = '\0';
	} else {
		c->endpoint = xasprintf("https://s3.%s.amazonaws.com", region);
	}
	c->bucket = xstrdup(bucket);
	c->prefix = *prefix ? xasprintf("%s/", prefix) : xstrdup("");
	c->userpwd = xasprintf("%s:%s", ak, sk);
	c->sigv4 = xasprintf("aws:amz:%s:s3", region);
	return 0;
}

void store_s3_close(struct store *s)
{
	struct store_s3 *c = s->s3;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->endpoint);
	free(c->bucket);
	free(c->prefix);
	if (c->userpwd) {
		memset(c->userpwd, 0, strlen(c->userpwd));
		free(c->userpwd);
	}
	free(c->sigv4);
	free(c);
	s->s3 = NULL;
}

static CURL *handle_get(struct store_s3 *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	if (!h)
		h = curl_easy_init();
	if (!h)
		abort(); /* out of memory */
	return h;
}

static void handle_put(struct store_s3 *c, CURL *h)
{
	curl_easy_reset(h); /* keeps its live connections */
	pthread_mutex_lock(&c->lock);
	if (c->npool < S3_POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* Appends s URI-encoded as SigV4 wants it: unreserved bytes as they are,
 * '/' kept when keep_slash, everything else %XX (uppercase). */
static void uri_encode(struct buf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
			buf_putc(b, ch);
		} else {
			buf_putc(b, '%');
			buf_putc(b, hex[ch >> 4]);
			buf_putc(b, hex[ch & 15]);
		}
	}
}

/* ENDPOINT/BUCKET[/PREFIX KEY] (allocated). key NULL: the bucket itself. */
static char *object_url(struct store_s3 *c, const char *key)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/%s", c->endpoint, c->bucket);
	if (key) {
		buf_putc(&b, '/');
		uri_encode(&b, c->prefix, 1);
		uri_encode(&b, key, 1);
	}
	return buf_steal(&b);
}

struct req {
	/* in */
	const char *op;		/* for messages: "PUT", "GET", "LIST", "UploadPart", ... */
	const char *key;	/* for messages */
	const char *method;	/* "GET", "PUT", "POST", "DELETE" */
	char *url;		/* full URL with query (owned by the caller) */
	const uint8_t *body;	/* PUT/POST body */
	size_t body_len;
	size_t max;		/* reply body bytes accepted */
	/* per attempt */
	size_t body_off;	/* read position in body */
	int too_big;		/* reply exceeded max */
	/* out */
	long status;		/* HTTP status of the last attempt */
	struct buf reply;	/* reply body of the last attempt */
	char etag[256];		/* ETag header, if any */
};

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *q = arg;
	size_t n = size * nmemb;
	if (q->reply.len + n > q->max) {
		q->too_big = 1;
		return 0;
	}
	buf_append(&q->reply, p, n);
	return n;
}

static size_t read_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *q = arg;
	size_t n = size * nmemb, left = q->body_len - q->body_off;
	if (n > left)
		n = left;
	if (n)
		memcpy(p, q->body + q->body_off, n);
	q->body_off += n;
	return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *q = arg;
	size_t n = size * nmemb;
	if (n > 5 && !strncasecmp(p, "etag:", 5)) {
		size_t i = 5, j = n;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
			j--;
		if (j - i < sizeof q->etag) {
			memcpy(q->etag, p + i, j - i);
			q->etag[j - i] = '\0';
		}
	}
	return n;
}

/* Fills err from a failed request: status, S3 error code and message. */
static int req_fail(struct req *q, CURLcode cc, const char *cerr, int tries, struct err *err)
{
	char again[32] = "";
	if (tries > 1)
		snprintf(again, sizeof again, " after %d tries", tries);
	if (cc != CURLE_OK) {
		if (q->too_big)
			return err_set(err, EFBIG, "store: %s %s: reply larger than %zu bytes", q->op, q->key, q->max);
		err_set(err, 502, "store: %s %s: %s%s%s%s", q->op, q->key, curl_easy_strerror(cc),
			*cerr ? " (" : "", cerr, *cerr ? ")" : "");
		size_t n = strlen(err ? err->msg : "");
		if (err)
			snprintf(err->msg + n, sizeof err->msg - n, "%s", again);
		return -EIO;
	}
	struct buf code, msg;
	buf_init(&code);
	buf_init(&msg);
	s3xml_error((const char *)q->reply.data, q->reply.len, &code, &msg);
	int r;
	if (q->status == 401 || q->status == 403)
		r = -EACCES;
	else if (q->status == 404)
		r = -ENOENT;
	else
		r = -EIO;
	err_set(err, q->status == 404 ? 404 : q->status == 403 || q->status == 401 ? 403 : 502,
		"store: %s %s: HTTP %ld%s%s%s%.200s%s", q->op, q->key, q->status,
		code.len ? " " : "", code.len ? (char *)code.data : "", msg.len ? ": " : "",
		msg.len ? (char *)msg.data : "", again);
	buf_free(&code);
	buf_free(&msg);
	return r;
}

static int retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_WRITE_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_LOGIN_DENIED:
		return 0;
	default:
		return 1;
	}
}

static void backoff_sleep(int attempt)
{
	static __thread unsigned seed;
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	long ms = (long)STORE_BACKOFF_MS << (attempt - 1);
	ms = ms / 2 + rand_r(&seed) % ms; /* +-50% */
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Runs q with retries. 0 when the reply is 2xx, else a negative code with err set. */
static int req_run(struct store_s3 *c, struct req *q, struct err *err)
{
	CURL *h = handle_get(c);
	char cerr[CURL_ERROR_SIZE];
	CURLcode cc = CURLE_OK;
	int attempt, r = 0;
	buf_init(&q->reply);
	for (attempt = 1; attempt <= STORE_TRIES; attempt++) {
		if (attempt > 1) {
			backoff_sleep(attempt - 1);
			curl_easy_reset(h);
		}
		buf_reset(&q->reply);
		q->body_off = 0;
		q->too_big = 0;
		q->status = 0;
		q->etag[0] = '\0';
		cerr[0] = '\0';
		/* curl before 8.x does not send it; S3 wants it and signs with it */
		struct curl_slist *hdrs = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
		curl_easy_setopt(h, CURLOPT_URL, q->url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
		curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* a stalled transfer is a timeout */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
		if (!strcmp(q->method, "PUT")) {
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
			curl_easy_setopt(h, CURLOPT_READDATA, q);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
			hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
		} else if (!strcmp(q->method, "POST")) {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? (const char *)q->body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
			hdrs = curl_slist_append(hdrs, "Content-Type: application/xml");
		} else if (!strcmp(q->method, "DELETE")) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		cc = curl_easy_perform(h);
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
		curl_slist_free_all(hdrs);
		if (cc != CURLE_OK) {
			if (!retryable_curl(cc))
				break;
			continue;
		}
		/* CompleteMultipartUpload may fail with 200 and an <Error> body */
		if (q->status / 100 == 2 && !strcmp(q->method, "POST") &&
		    s3xml_is_error((const char *)q->reply.data, q->reply.len))
			q->status = 500;
		if (q->status / 100 == 2 || (q->status / 100 != 5 && q->status != 429))
			break;
	}
	if (attempt > STORE_TRIES)
		attempt = STORE_TRIES;
	if (cc != CURLE_OK || q->status / 100 != 2)
		r = req_fail(q, cc, cerr, attempt, err);
	curl_easy_reset(h);
	handle_put(c, h);
	return r;
}

static int put_mem(struct store_s3 *c, const char *op, const char *key, char *url, const void *data, size_t len,
		   char *etag, size_t etag_size, struct err *err)
{
	struct req q = { .op = op, .key = key, .method = "PUT", .url = url, .body = data,
			 .body_len = len, .max = S3_SMALL_REPLY_MAX };
	int r = req_run(c, &q, err);
	if (r == 0 && etag)
		snprintf(etag, etag_size, "%s", q.etag);
	buf_free(&q.reply);
	return r;
}

int store_s3_put(struct store *s, const char *key, const void *data, size_t len, struct err *err)
{
	char *url = object_url(s->s3, key);
	int r = put_mem(s->s3, "PUT", key, url, data, len, NULL, 0, err);
	free(url);
	return r;
}

static char *query_url(struct store_s3 *c, const char *key, const char *fmt_name1, const char *v1,
		       const char *name2, const char *v2)
{
	char *base = object_url(c, key);
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s?%s=", base, fmt_name1);
	uri_encode(&b, v1, 0);
	if (name2) {
		buf_printf(&b, "&%s=", name2);
		uri_encode(&b, v2, 0);
	}
	free(base);
	return buf_steal(&b);
}

static int pread_all(int fd, uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t m = pread(fd, p, n, off);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0)
			return -errno;
		if (m == 0)
			return -EIO; /* file shrank */
		p += m;
		n -= (size_t)m;
		off += m;
	}
	return 0;
}

static int multipart(struct store *s, const char *key, const char *path, int fd, uint64_t size, struct err *err)
{
	struct store_s3 *c = s->s3;
	size_t part = s->multipart_min;
	uint64_t nparts = (size + part - 1) / part;
	char *url = NULL, *upload_id = NULL;
	uint8_t *data = NULL;
	struct buf done, id;
	buf_init(&done);
	buf_init(&id);
	int r;
	if (nparts > S3_PARTS_MAX)
		return err_set(err, EFBIG, "store: PUT %s: %s: more than %d parts of %zu bytes", key, path,
			       S3_PARTS_MAX, part);
	/* CreateMultipartUpload */
	url = query_url(c, key, "uploads", "", NULL, NULL);
	struct req q = { .op = "CreateMultipartUpload", .key = key, .method = "POST", .url = url,
			 .max = S3_SMALL_REPLY_MAX };
	r = req_run(c, &q, err);
	if (r == 0 && (s3xml_get((const char *)q.reply.data, q.reply.len, "UploadId", &id) < 0 || id.len == 0 ||
		       strlen((char *)id.data) != id.len))
		r = err_set(err, 502, "store: CreateMultipartUpload %s: no UploadId in the reply", key);
	buf_free(&q.reply);
	free(url);
	url = NULL;
	if (r < 0)
		goto out;
	upload_id = xstrdup((char *)id.data);
	buf_printf(&done, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	data = xmalloc(part);
	for (uint64_t i = 0; i < nparts; i++) {
		size_t n = (size_t)(size - i * part < part ? size - i * part : part);
		if ((r = pread_all(fd, data, n, (off_t)(i * part))) < 0) {
			r = err_set(err, -r, "store: PUT %s: read %s", key, path);
			goto out;
		}
		char num[24], etag[256];
		snprintf(num, sizeof num, "%llu", (unsigned long long)i + 1);
		url = query_url(c, key, "partNumber", num, "uploadId", upload_id);
		r = put_mem(c, "UploadPart", key, url, data, n, etag, sizeof etag, err);
		free(url);
		url = NULL;
		if (r < 0)
			goto out;
		if (!etag[0]) {
			r = err_set(err, 502, "store: UploadPart %s: part %s: no ETag in the reply", key, num);
			goto out;
		}
		buf_printf(&done, "<Part><PartNumber>%s</PartNumber><ETag>", num);
		for (const char *e = etag; *e; e++) {
			if (*e == '"')
				buf_puts(&done, "&quot;");
			else if (*e == '&')
				buf_puts(&done, "&amp;");
			else if (*e == '<')
				buf_puts(&done, "&lt;");
			else
				buf_putc(&done, *e);
		}
		buf_puts(&done, "</ETag></Part>");
	}
	buf_puts(&done, "</CompleteMultipartUpload>");
	url = query_url(c, key, "uploadId", upload_id, NULL, NULL);
	struct req cq = { .op = "CompleteMultipartUpload", .key = key, .method = "POST", .url = url,
			  .body = done.data, .body_len = done.len, .max = S3_SMALL_REPLY_MAX };
	r = req_run(c, &cq, err);
	buf_free(&cq.reply);
out:
	if (r < 0 && upload_id) {
		/* AbortMultipartUpload, best effort: the parts would cost storage */
		free(url);
		url = query_url(c, key, "uploadId", upload_id, NULL, NULL);
		struct req aq = { .op = "AbortMultipartUpload", .key = key, .method = "DELETE", .url = url,
				  .max = S3_SMALL_REPLY_MAX };
		req_run(c, &aq, NULL);
		buf_free(&aq.reply);
	}
	free(url);
	free(upload_id);
	free(data);
	buf_free(&done);
	buf_free(&id);
	return r;
}

int store_s3_put_file(struct store *s, const char *key, const char *path, struct err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errno, "store: PUT %s: open %s", key, path);
	struct stat st;
	int r;
	if (fstat(fd, &st) < 0) {
		r = err_set(err, errno, "store: PUT %s: stat %s", key, path);
	} else if (!S_ISREG(st.st_mode)) {
		r = err_set(err, EINVAL, "store: PUT %s: %s is not a regular file", key, path);
	} else if ((uint64_t)st.st_size > s->multipart_min) {
		r = multipart(s, key, path, fd, (uint64_t)st.st_size, err);
	} else {
		size_t n = (size_t)st.st_size;
		uint8_t *data = xmalloc(n ? n : 1);
		r = pread_all(fd, data, n, 0);
		if (r < 0)
			r = err_set(err, -r, "store: PUT %s: read %s", key, path);
		else
			r = store_s3_put(s, key, data, n, err);
		free(data);
	}
	close(fd);
	return r;
}

int store_s3_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err)
{
	char *url = object_url(s->s3, key);
	struct req q = { .op = "GET", .key = key, .method = "GET", .url = url, .max = max };
	int r = req_run(s->s3, &q, err);
	free(url);
	if (r < 0) {
		buf_free(&q.reply);
		if (r == -ENOENT)
			err_set(err, 404, "store: GET %s: no such object", key);
		return r;
	}
	buf_putc(&q.reply, '\0');
	*len = q.reply.len - 1;
	*data = (uint8_t *)buf_steal(&q.reply);
	return 0;
}

int store_s3_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err)
{
	struct store_s3 *c = s->s3;
	char **out = NULL;
	size_t cnt = 0, cap = 0;
	char *full = xasprintf("%s%s", c->prefix, prefix);
	struct buf token, prev, url;
	buf_init(&token);
	buf_init(&prev);
	buf_init(&url);
	int r = 0;
	for (;;) {
		/* parameters in SigV4 canonical order */
		buf_reset(&url);
		buf_printf(&url, "%s/%s?", c->endpoint, c->bucket);
		if (token.len) {
			buf_puts(&url, "continuation-token=");
			uri_encode(&url, (char *)token.data, 0);
			buf_putc(&url, '&');
		}
		buf_puts(&url, "list-type=2&prefix=");
		uri_encode(&url, full, 0);
		struct req q = { .op = "LIST", .key = *prefix ? prefix : "(all)", .method = "GET",
				 .url = (char *)url.data, .max = S3_LIST_PAGE_MAX };
		r = req_run(c, &q, err);
		if (r < 0) {
			buf_free(&q.reply);
			break;
		}
		buf_reset(&prev);
		buf_append(&prev, token.data, token.len);
		int more = s3xml_list_page((const char *)q.reply.data, q.reply.len, c->prefix, &out, &cnt, &cap, &token);
		if (more < 0) {
			r = err_set(err, 502, "store: LIST %s: truncated reply without NextContinuationToken", prefix);
			more = 0;
		} else if (more && token.len == prev.len && !memcmp(token.data, prev.data, token.len)) {
			/* a store that hands back the same token would have us list forever */
			r = err_set(err, 502, "store: LIST %s: the store repeated a continuation token", prefix);
			more = 0;
		}
		buf_free(&q.reply);
		if (!more || r < 0)
			break;
	}
	free(full);
	buf_free(&token);
	buf_free(&prev);
	buf_free(&url);
	if (r < 0) {
		store_keys_free(out, cnt);
		return r;
	}
	*keys = out;
	*n = cnt;
	return 0;
}

int store_s3_delete(struct store *s, const char *key, struct err *err)
{
	char *url = object_url(s->s3, key);
	struct req q = { .op = "DELETE", .key = key, .method = "DELETE", .url = url, .max = S3_SMALL_REPLY_MAX };
	int r = req_run(s->s3, &q, err);
	if (r == -ENOENT) { /* S3 answers 204 for a missing key; some servers 404 */
		err_clear(err);
		r = 0;
	}
	buf_free(&q.reply);
	free(url);
	return r;
}
