/* SPDX-License-Identifier: MIT */
/* Internal interface between store.c (dispatch, key checks) and its back ends. */
#ifndef MAGS_STORE_INT_H
#define MAGS_STORE_INT_H

#include "store.h"

struct store_s3;

struct store {
	char *url;			/* as given to store_open */
	char *dir;			/* file://: the root directory, no trailing '/' */
	struct store_s3 *s3;		/* s3://: the client, else NULL */
	size_t multipart_min;		/* store_put_file: multipart above this */
};

/* file:// back end (store_file.c); keys are already checked */
int store_file_open(struct store *s, const char *path, struct err *err);
int store_file_put(struct store *s, const char *key, const void *data, size_t len, struct err *err);
int store_file_put_file(struct store *s, const char *key, const char *path, struct err *err);
int store_file_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err);
int store_file_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err);
int store_file_delete(struct store *s, const char *key, struct err *err);

/* s3:// back end (store_s3.c) */
int store_s3_open(struct store *s, const char *bucket, const char *prefix, const struct store_opts *o, struct err *err);
void store_s3_close(struct store *s);
int store_s3_put(struct store *s, const char *key, const void *data, size_t len, struct err *err);
int store_s3_put_file(struct store *s, const char *key, const char *path, struct err *err);
int store_s3_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err);
int store_s3_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err);
int store_s3_delete(struct store *s, const char *key, struct err *err);

/* Sorts keys bytewise (store.c). */
void store_keys_sort(char **keys, size_t n);

#endif
