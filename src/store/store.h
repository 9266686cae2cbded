/* SPDX-License-Identifier: MIT */
/*
 * Object store client: a flat key -> bytes namespace under one URL, used by
 * the workspace sync (wsync.h) and magsd. Two back ends:
 *   file:///abs/dir          objects are files under dir (the embedded default)
 *   s3://bucket[/prefix]     any S3-compatible endpoint: libcurl with AWS SigV4,
 *                            path-style requests, multipart upload for big
 *                            files, retries with backoff on 5xx/429/network
 * Keys are relative to the URL's prefix: 1..STORE_KEY_MAX bytes of printable
 * ASCII, '/'-separated components, none empty and none starting with '.'
 * (so no "..", no leading '/'). See docs/sync-format.md.
 *
 * Threads: every function may be called on one struct store from several
 * threads at once (store_open and store_close excepted).
 *
 * Errors: 0, or a negative code with err set to a message naming the
 * operation and key ("store: PUT chunks/ab/..: HTTP 403 SignatureDoesNotMatch: ..."):
 *   -400     bad URL, key or prefix (err->code 400)
 *   -ENOENT  no such object (store_get only; err->code 404)
 *   -EACCES  the store refused the credentials (HTTP 401/403)
 *   -EFBIG   object larger than the caller's max
 *   -EIO     any other store failure (err->code 502), after retries
 *   -errno   a local system call failed (file:// store, reading a file)
 */
#ifndef MAGS_STORE_H
#define MAGS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_KEY_MAX 1024
#define STORE_MULTIPART_MIN (16u << 20)	/* store_put_file: S3 multipart above this; also the part size */
#define STORE_TRIES 5			/* S3 attempts per request on retryable failures */
#define STORE_BACKOFF_MS 100		/* first retry delay; doubles, with jitter */

struct store;

struct store_opts {
	const char *endpoint;	/* s3 only: "http(s)://host:port" (path-style requests); NULL = https://s3.REGION.amazonaws.com */
	const char *region;	/* NULL = "us-east-1" */
	const char *access_key;	/* NULL = env AWS_ACCESS_KEY_ID */
	const char *secret_key;	/* NULL = env AWS_SECRET_ACCESS_KEY */
};

/* url: "file:///abs/dir" or "s3://bucket" or "s3://bucket/some/prefix". o may be NULL.
 * file://: the directory is created when missing. Nothing is sent to S3 here. */
int store_open(const char *url, const struct store_opts *o, struct store **out, struct err *err);
void store_close(struct store *s);
/* The URL store_open was given (owned by s). */
const char *store_url(const struct store *s);

int store_put(struct store *s, const char *key, const void *data, size_t len, struct err *err);
/* Uploads the file at path. S3: multipart above STORE_MULTIPART_MIN (env
 * MAGS_STORE_MULTIPART_MIN overrides it, for tests), aborted on failure. */
int store_put_file(struct store *s, const char *key, const char *path, struct err *err);
/* Reads an object of at most max bytes into *data (allocated, NUL-terminated
 * after len bytes; the caller frees). -ENOENT when missing. */
int store_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err);
/* All keys starting with prefix ("" = all), sorted bytewise. *keys is an
 * allocated array of *n allocated strings; the caller frees each and the array. */
int store_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err);
/* A missing key is not an error. */
int store_delete(struct store *s, const char *key, struct err *err);

/* 0 when key is a valid object key, else -400 with err set. */
int store_key_check(const char *key, struct err *err);
/* Frees a store_list result. */
void store_keys_free(char **keys, size_t n);

#endif
