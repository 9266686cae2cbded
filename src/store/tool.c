// SPDX-License-Identifier: MIT
/*
 * mags-store: the object store and workspace sync from the command line, for
 * tests, benchmarks and operators (see docs/sync-format.md).
 *   mags-store put URL KEY FILE        get URL KEY FILE|-     ls URL [PREFIX]
 *   mags-store rm URL KEY              push URL WS DISK [META_JSON]
 *   mags-store pull URL WS DISK        latest URL WS          delete URL WS
 * S3 settings from the environment: MAGS_S3_ENDPOINT, AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. push and pull print their stats as
 * one JSON line. Exit status: 0 done, 1 failed, 2 usage, 3 no such object or
 * workspace version.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "store.h"
#include "wsync.h"
#include "xmalloc.h"

#define TOOL_GET_MAX ((size_t)8 << 30)

static int usage(void)
{
	fprintf(stderr, "usage: mags-store put URL KEY FILE | get URL KEY FILE|- | ls URL [PREFIX] | rm URL KEY\n"
			"       mags-store push URL WS DISK [META_JSON] | pull URL WS DISK | latest URL WS | delete URL WS\n"
			"URL: file:///dir or s3://bucket[/prefix]; env MAGS_S3_ENDPOINT, AWS_REGION,\n"
			"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\n");
	return 2;
}

static void print_stats(const char *op, const char *ws, const struct wsync_stats *st)
{
	printf("{\"op\":\"%s\",\"workspace\":\"%s\",\"version\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
	       ",\"data_chunks\":%" PRIu64 ",\"uploaded_chunks\":%" PRIu64 ",\"uploaded_bytes\":%" PRIu64
	       ",\"downloaded_bytes\":%" PRIu64 ",\"ms\":%" PRId64 "}\n",
	       op, ws, st->version, st->disk_bytes, st->data_chunks, st->uploaded_chunks, st->uploaded_bytes,
	       st->downloaded_bytes, st->ms);
}

static int write_out(const char *path, const uint8_t *data, size_t len, struct err *err)
{
	if (strcmp(path, "-"))
		return fs_write_file(path, data, len, 0644, err);
	while (len) {
		ssize_t n = write(1, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, errno, "write stdout");
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int run(int argc, char **argv, struct store *s, struct err *err)
{
	const char *cmd = argv[1];
	int r;
	if (!strcmp(cmd, "put") && argc == 5)
		return store_put_file(s, argv[3], argv[4], err);
	if (!strcmp(cmd, "get") && argc == 5) {
		uint8_t *data;
		size_t len;
		if ((r = store_get(s, argv[3], TOOL_GET_MAX, &data, &len, err)) < 0)
			return r;
		r = write_out(argv[4], data, len, err);
		free(data);
		return r;
	}
	if (!strcmp(cmd, "ls") && (argc == 3 || argc == 4)) {
		char **keys;
		size_t n;
		if ((r = store_list(s, argc == 4 ? argv[3] : "", &keys, &n, err)) < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			printf("%s\n", keys[i]);
		store_keys_free(keys, n);
		return 0;
	}
	if (!strcmp(cmd, "rm") && argc == 4)
		return store_delete(s, argv[3], err);
	if (!strcmp(cmd, "push") && (argc == 5 || argc == 6)) {
		json_t *meta = NULL;
		if (argc == 6) {
			json_error_t je;
			meta = json_loads(argv[5], 0, &je);
			if (!json_is_object(meta)) {
				json_decref(meta);
				return err_set(err, 400, "META_JSON must be a JSON object");
			}
		}
		struct wsync_stats st;
		r = wsync_push(s, argv[3], argv[4], meta, &st, err);
		json_decref(meta);
		if (r == 0)
			print_stats("push", argv[3], &st);
		return r;
	}
	if (!strcmp(cmd, "pull") && argc == 5) {
		struct wsync_stats st;
		if ((r = wsync_pull(s, argv[3], argv[4], &st, err)) == 0)
			print_stats("pull", argv[3], &st);
		return r;
	}
	if (!strcmp(cmd, "latest") && argc == 4) {
		uint64_t v;
		json_t *meta;
		if ((r = wsync_latest(s, argv[3], &v, &meta, err)) < 0)
			return r;
		char *m = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
		printf("{\"workspace\":\"%s\",\"version\":%" PRIu64 ",\"meta\":%s}\n", argv[3], v, m ? m : "null");
		free(m);
		json_decref(meta);
		return 0;
	}
	if (!strcmp(cmd, "delete") && argc == 4)
		return wsync_delete(s, argv[3], err);
	return 1000; /* usage */
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	struct store_opts o = {
		.endpoint = getenv("MAGS_S3_ENDPOINT"),
		.region = getenv("AWS_REGION"),
	};
	if (o.endpoint && !*o.endpoint)
		o.endpoint = NULL;
	if (o.region && !*o.region)
		o.region = NULL;
	struct err err = { 0 };
	struct store *s;
	int r = store_open(argv[2], &o, &s, &err);
	if (r == 0) {
		r = run(argc, argv, s, &err);
		store_close(s);
		if (r == 1000)
			return usage();
	}
	if (r < 0) {
		fprintf(stderr, "mags-store: %s\n", err.msg[0] ? err.msg : strerror(-r));
		return r == -ENOENT ? 3 : 1;
	}
	return 0;
}
