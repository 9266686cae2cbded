// SPDX-License-Identifier: MIT
/*
 * Object store: URL parsing, key validation and dispatch to the file:// and
 * s3:// back ends (store_file.c, store_s3.c). See store.h for the contract.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "xmalloc.h"

/* Components are non-empty, do not start with '.', bytes are printable ASCII. */
static int key_ok(const char *key, size_t n)
{
	if (n == 0 || n > STORE_KEY_MAX)
		return 0;
	int start = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c < 0x20 || c > 0x7e || c == '\\')
			return 0;
		if (start && (c == '/' || c == '.'))
			return 0;
		start = c == '/';
	}
	return !start; /* no trailing '/' */
}

int store_key_check(const char *key, struct err *err)
{
	if (!key || !key_ok(key, strlen(key)))
		return err_set(err, 400, "store: invalid key \"%.80s\"", key ? key : "(null)");
	return 0;
}

/* A list prefix is "" or a key, optionally ending in '/'. */
static int prefix_check(const char *prefix, struct err *err)
{
	size_t n = strlen(prefix);
	if (n == 0)
		return 0;
	if (prefix[n - 1] == '/')
		n--;
	if (!key_ok(prefix, n))
		return err_set(err, 400, "store: invalid prefix \"%.80s\"", prefix);
	return 0;
}

static size_t multipart_min(void)
{
	const char *e = getenv("MAGS_STORE_MULTIPART_MIN");
	if (e && *e) {
		char *end;
		unsigned long long v = strtoull(e, &end, 10);
		if (*end == '\0' && v >= 1024 && v <= (1ull << 32))
			return (size_t)v;
	}
	return STORE_MULTIPART_MIN;
}

static int bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int store_open(const char *url, const struct store_opts *o, struct store **out, struct err *err)
{
	*out = NULL;
	struct store *s = xcalloc(1, sizeof *s);
	s->url = xstrdup(url ? url : "");
	s->multipart_min = multipart_min();
	int r;
	if (!url) {
		r = err_set(err, 400, "store: no URL");
	} else if (!strncmp(url, "file://", 7)) {
		const char *path = url + 7;
		if (path[0] != '/' || strlen(path) > 4000)
			r = err_set(err, 400, "store: %s: file:// needs an absolute path", url);
		else
			r = store_file_open(s, path, err);
	} else if (!strncmp(url, "s3://", 5)) {
		const char *b = url + 5;
		const char *slash = strchr(b, '/');
		size_t bn = slash ? (size_t)(slash - b) : strlen(b);
		char *bucket = xstrndup(b, bn);
		char *prefix = xstrdup(slash ? slash + 1 : "");
		size_t pn = strlen(prefix);
		while (pn && prefix[pn - 1] == '/')
			prefix[--pn] = '\0';
		if (!bucket_ok(bucket, bn))
			r = err_set(err, 400, "store: %s: invalid bucket name", url);
		else if (pn && !key_ok(prefix, pn))
			r = err_set(err, 400, "store: %s: invalid prefix", url);
		else
			r = store_s3_open(s, bucket, prefix, o, err);
		free(bucket);
		free(prefix);
	} else {
		r = err_set(err, 400, "store: %s: unsupported URL (want file:///dir or s3://bucket[/prefix])", url);
	}
	if (r < 0) {
		store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->s3)
		store_s3_close(s);
	free(s->dir);
	free(s->url);
	free(s);
}

const char *store_url(const struct store *s)
{
	return s->url;
}

int store_put(struct store *s, const char *key, const void *data, size_t len, struct err *err)
{
	int r = store_key_check(key, err);
	if (r < 0)
		return r;
	return s->s3 ? store_s3_put(s, key, data, len, err) : store_file_put(s, key, data, len, err);
}

int store_put_file(struct store *s, const char *key, const char *path, struct err *err)
{
	int r = store_key_check(key, err);
	if (r < 0)
		return r;
	return s->s3 ? store_s3_put_file(s, key, path, err) : store_file_put_file(s, key, path, err);
}

int store_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err)
{
	*data = NULL;
	*len = 0;
	int r = store_key_check(key, err);
	if (r < 0)
		return r;
	return s->s3 ? store_s3_get(s, key, max, data, len, err) : store_file_get(s, key, max, data, len, err);
}

int store_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err)
{
	*keys = NULL;
	*n = 0;
	if (!prefix)
		prefix = "";
	int r = prefix_check(prefix, err);
	if (r < 0)
		return r;
	r = s->s3 ? store_s3_list(s, prefix, keys, n, err) : store_file_list(s, prefix, keys, n, err);
	if (r == 0)
		store_keys_sort(*keys, *n);
	return r;
}

int store_delete(struct store *s, const char *key, struct err *err)
{
	int r = store_key_check(key, err);
	if (r < 0)
		return r;
	return s->s3 ? store_s3_delete(s, key, err) : store_file_delete(s, key, err);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void store_keys_sort(char **keys, size_t n)
{
	if (n > 1)
		qsort(keys, n, sizeof *keys, key_cmp);
}

void store_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}
