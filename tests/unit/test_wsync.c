// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/store/: manifest parsing (accepted and rejected input),
 * key and workspace-name validation, and the file:// store end to end: a
 * push/pull round trip of a small sparse disk, incremental pushes, dedup
 * across workspaces, corrupt-chunk detection and garbage collection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "../../src/store/store.h"
#include "../../src/store/wsync.h"
#include "fs.h"
#include "xmalloc.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char good[] =
	"{\"format\":1,\"workspace\":\"ws-1\",\"version\":3,\"disk_bytes\":3145729,\"chunk_size\":1048576,"
	"\"created_at\":\"2024-01-01T00:00:00Z\",\"meta\":{\"k\":\"v\"},"
	"\"chunks\":[[0,\"" H64 "\"],[3,\"" H64 "\"]]}";

static void test_manifest_ok(void **state)
{
	struct wsync_manifest m, m2;
	struct err err = { 0 };
	assert_int_equal(wsync_manifest_parse(good, strlen(good), &m, &err), 0);
	assert_string_equal(m.ws, "ws-1");
	assert_int_equal(m.version, 3);
	assert_int_equal(m.disk_bytes, 3145729);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.chunks[1].index, 3);
	assert_int_equal(m.chunks[0].sha256[0], 0x01);
	assert_string_equal(json_string_value(json_object_get(m.meta, "k")), "v");
	char *s = wsync_manifest_dump(&m);
	assert_int_equal(wsync_manifest_parse(s, strlen(s), &m2, &err), 0);
	assert_int_equal(m2.n, m.n);
	assert_memory_equal(m2.chunks, m.chunks, m.n * sizeof *m.chunks);
	assert_string_equal(m2.created_at, m.created_at);
	free(s);
	wsync_manifest_free(&m);
	wsync_manifest_free(&m2);
	const char *minimal = "{\"format\":1,\"workspace\":\"a\",\"version\":1,\"disk_bytes\":0,\"chunk_size\":1048576,\"chunks\":[]}";
	assert_int_equal(wsync_manifest_parse(minimal, strlen(minimal), &m, &err), 0);
	assert_null(m.meta);
	wsync_manifest_free(&m);
}

static void test_manifest_reject(void **state)
{
#define HEAD "{\"format\":1,\"workspace\":\"w\",\"version\":1,\"chunk_size\":1048576,"
	static const char *const bad[] = {
		"", "[]", "null", "{", "{\"format\":1}",
		"{\"format\":2,\"workspace\":\"w\",\"version\":1,\"disk_bytes\":0,\"chunk_size\":1048576,\"chunks\":[]}",
		"{\"format\":1,\"workspace\":\"../x\",\"version\":1,\"disk_bytes\":0,\"chunk_size\":1048576,\"chunks\":[]}",
		"{\"format\":1,\"workspace\":\"w\",\"version\":0,\"disk_bytes\":0,\"chunk_size\":1048576,\"chunks\":[]}",
		"{\"format\":1,\"workspace\":\"w\",\"version\":1,\"disk_bytes\":0,\"chunk_size\":4096,\"chunks\":[]}",
		HEAD "\"disk_bytes\":-1,\"chunks\":[]}",
		HEAD "\"disk_bytes\":1.5,\"chunks\":[]}",
		HEAD "\"disk_bytes\":99999999999999999,\"chunks\":[]}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":{}}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[1,\"" H64 "\"]]}",		/* index outside the disk */
		HEAD "\"disk_bytes\":3145728,\"chunks\":[[1,\"" H64 "\"],[1,\"" H64 "\"]]}",	/* duplicate */
		HEAD "\"disk_bytes\":3145728,\"chunks\":[[2,\"" H64 "\"],[1,\"" H64 "\"]]}",	/* order */
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[0,\"0123\"]]}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[0,\"" H64 "\",1]]}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[-1,\"" H64 "\"]]}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[0,\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"]]}",
		HEAD "\"disk_bytes\":1048576,\"chunks\":[[0,\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]]}",
		HEAD "\"disk_bytes\":1048576,\"meta\":[1],\"chunks\":[]}",
		HEAD "\"disk_bytes\":1048576,\"created_at\":7,\"chunks\":[]}",
		HEAD "\"disk_bytes\":1048576,\"disk_bytes\":1,\"chunks\":[]}",	/* duplicate key */
		"{\"format\":1,\"workspace\":\"w\\u0000x\",\"version\":1,\"disk_bytes\":0,\"chunk_size\":1048576,\"chunks\":[]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wsync_manifest m;
		struct err err = { 0 };
		int r = wsync_manifest_parse(bad[i], strlen(bad[i]), &m, &err);
		if (r != -400)
			fail_msg("accepted bad manifest %zu: %s", i, bad[i]);
		assert_true(strncmp(err.msg, "manifest", 8) == 0);
		assert_null(m.chunks);
	}
	struct wsync_manifest m;
	assert_int_equal(wsync_manifest_parse("{}", WSYNC_MANIFEST_MAX + 1, &m, NULL), -413);
}

static void test_names(void **state)
{
	static const char *const ok_keys[] = { "a", "chunks/ab/cd", "x y/z", "a.b/c~d" };
	static const char *const bad_keys[] = { "", "/a", "a/", "a//b", "../a", "a/../b", "a/.x", ".", "a\x01", "a\\b",
						"caf\xc3\xa9" };
	for (size_t i = 0; i < sizeof ok_keys / sizeof ok_keys[0]; i++)
		assert_int_equal(store_key_check(ok_keys[i], NULL), 0);
	for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
		assert_int_equal(store_key_check(bad_keys[i], NULL), -400);
	char longkey[STORE_KEY_MAX + 2];
	memset(longkey, 'a', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	assert_int_equal(store_key_check(longkey, NULL), -400);
	assert_int_equal(wsync_ws_check("a", NULL), 0);
	assert_int_equal(wsync_ws_check("A9._-z", NULL), 0);
	static const char *const bad_ws[] = { "", "-a", ".a", "_a", "a/b", "a b", "a\n" };
	for (size_t i = 0; i < sizeof bad_ws / sizeof bad_ws[0]; i++)
		assert_int_equal(wsync_ws_check(bad_ws[i], NULL), -400);
	char ws[WSYNC_WS_MAX + 2];
	memset(ws, 'w', sizeof ws - 1);
	ws[sizeof ws - 1] = '\0';
	assert_int_equal(wsync_ws_check(ws, NULL), -400);
	ws[WSYNC_WS_MAX] = '\0';
	assert_int_equal(wsync_ws_check(ws, NULL), 0);
	struct store *s;
	struct err err = { 0 };
	assert_int_equal(store_open("file://relative", NULL, &s, &err), -400);
	assert_int_equal(store_open("ftp://x", NULL, &s, &err), -400);
	assert_int_equal(store_open("s3://B", NULL, &s, &err), -400);
	assert_int_equal(store_open("s3://bucket/../x", NULL, &s, &err), -400);
}

/* ---- file:// store end to end ---- */

struct fx {
	char dir[64];
	char *url, *disk, *out;
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/test_wsync.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->url = xasprintf("file://%s/store", f->dir);
	f->disk = xasprintf("%s/disk.img", f->dir);
	f->out = xasprintf("%s/out.img", f->dir);
	struct err err = { 0 };
	if (store_open(f->url, NULL, &f->s, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	fs_rm_tree(f->dir);
	free(f->url);
	free(f->disk);
	free(f->out);
	free(f);
	return 0;
}

#define DISK_BYTES ((64ull << 20) + 4096 + 17)	/* the last chunk is short */

static void fill(const char *path, uint64_t off, size_t n, unsigned seed)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	uint8_t *b = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
	free(b);
}

static void make_disk(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)DISK_BYTES), 0);
	close(fd);
	fill(path, 0, 4096, 1);
	fill(path, (5u << 20) + 100, 3u << 20, 2);	/* spans 4 chunks */
	fill(path, DISK_BYTES - 10, 10, 3);		/* the short last chunk */
	/* a chunk of explicit zeros is data to SEEK_DATA but is skipped */
	fd = open(path, O_WRONLY);
	uint8_t *z = xcalloc(1, 1 << 20);
	assert_int_equal(pwrite(fd, z, 1 << 20, 30 << 20), 1 << 20);
	close(fd);
	free(z);
}

static void assert_same_file(const char *a, const char *b)
{
	char *x, *y;
	size_t nx, ny;
	assert_int_equal(fs_read_file(a, 1u << 30, &x, &nx, NULL), 0);
	assert_int_equal(fs_read_file(b, 1u << 30, &y, &ny, NULL), 0);
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	free(x);
	free(y);
}

static size_t count_keys(struct store *s, const char *prefix)
{
	char **keys;
	size_t n;
	assert_int_equal(store_list(s, prefix, &keys, &n, NULL), 0);
	store_keys_free(keys, n);
	return n;
}

static void test_store_basic(void **state)
{
	struct fx *f = *state;
	struct err err = { 0 };
	uint8_t *d;
	size_t n;
	assert_int_equal(store_put(f->s, "b/2", "two", 3, &err), 0);
	assert_int_equal(store_put(f->s, "a", "one", 3, &err), 0);
	assert_int_equal(store_put(f->s, "b/1", "", 0, &err), 0);
	assert_int_equal(store_get(f->s, "a", 100, &d, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(d, "one", 3);
	free(d);
	assert_int_equal(store_get(f->s, "a", 2, &d, &n, &err), -EFBIG);
	assert_int_equal(store_get(f->s, "nope", 2, &d, &n, &err), -ENOENT);
	assert_int_equal(store_get(f->s, "b", 2, &d, &n, &err), -ENOENT); /* a directory is no object */
	char **keys;
	assert_int_equal(store_list(f->s, "", &keys, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(keys[0], "a");
	assert_string_equal(keys[1], "b/1");
	assert_string_equal(keys[2], "b/2");
	store_keys_free(keys, n);
	assert_int_equal(count_keys(f->s, "b/"), 2);
	assert_int_equal(count_keys(f->s, "b/2"), 1);
	assert_int_equal(count_keys(f->s, "c"), 0);
	assert_int_equal(store_delete(f->s, "b/2", &err), 0);
	assert_int_equal(store_delete(f->s, "b/2", &err), 0);
	assert_int_equal(count_keys(f->s, "b"), 1);
	assert_int_equal(store_put(f->s, "../x", "", 0, &err), -400);
	assert_non_null(strstr(err.msg, "invalid key"));
}

static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct err err = { 0 };
	struct wsync_stats st;
	make_disk(f->disk);
	json_t *meta = json_pack("{si}", "n", 7);
	assert_int_equal(wsync_push(f->s, "ws1", f->disk, meta, &st, &err), 0);
	json_decref(meta);
	assert_int_equal(st.version, 1);
	assert_int_equal(st.disk_bytes, DISK_BYTES);
	assert_int_equal(st.data_chunks, 6);
	assert_int_equal(st.uploaded_chunks, 6);
	assert_int_equal(count_keys(f->s, "chunks/"), 6);
	assert_int_equal(wsync_pull(f->s, "ws1", f->out, &st, &err), 0);
	assert_int_equal(st.version, 1);
	assert_same_file(f->disk, f->out);
	struct stat sb;
	assert_int_equal(stat(f->out, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 < (8u << 20)); /* sparse */
	uint64_t v;
	json_t *m;
	assert_int_equal(wsync_latest(f->s, "ws1", &v, &m, &err), 0);
	assert_int_equal(v, 1);
	assert_int_equal(json_integer_value(json_object_get(m, "n")), 7);
	json_decref(m);
	assert_int_equal(wsync_latest(f->s, "nows", &v, NULL, &err), -ENOENT);
	assert_int_equal(wsync_pull(f->s, "nows", f->out, &st, &err), -ENOENT);
	assert_int_equal(wsync_push(f->s, "bad/name", f->disk, NULL, &st, &err), -400);

	/* incremental: one chunk changed, one more version, only newest 2 kept */
	fill(f->disk, 20u << 20, 1000, 9);
	assert_int_equal(wsync_push(f->s, "ws1", f->disk, NULL, &st, &err), 0);
	assert_int_equal(st.version, 2);
	assert_int_equal(st.uploaded_chunks, 1);
	assert_int_equal(st.data_chunks, 7);
	assert_int_equal(wsync_push(f->s, "ws1", f->disk, NULL, &st, &err), 0);
	assert_int_equal(st.version, 3);
	assert_int_equal(st.uploaded_chunks, 0);
	assert_int_equal(count_keys(f->s, "workspaces/ws1/"), 2);
	assert_int_equal(wsync_pull(f->s, "ws1", f->out, &st, &err), 0);
	assert_same_file(f->disk, f->out);

	/* dedup across workspaces */
	assert_int_equal(wsync_push(f->s, "ws2", f->disk, NULL, &st, &err), 0);
	assert_int_equal(st.uploaded_chunks, 0);
	assert_int_equal(st.version, 1);

	/* delete ws1 keeps what ws2 uses; deleting ws2 frees the rest */
	size_t before = count_keys(f->s, "chunks/");
	assert_int_equal(before, 7);
	fill(f->disk, 40u << 20, 1000, 10);
	assert_int_equal(wsync_push(f->s, "ws1", f->disk, NULL, &st, &err), 0);
	assert_int_equal(count_keys(f->s, "chunks/"), 8);
	assert_int_equal(wsync_delete(f->s, "ws1", &err), 0);
	assert_int_equal(count_keys(f->s, "workspaces/ws1/"), 0);
	assert_int_equal(count_keys(f->s, "chunks/"), 7); /* the v5-only chunk and the v1-only chunk went */
	assert_int_equal(wsync_pull(f->s, "ws2", f->out, &st, &err), 0);
	assert_int_equal(wsync_delete(f->s, "ws2", &err), 0);
	assert_int_equal(count_keys(f->s, "chunks/"), 0);
	assert_int_equal(wsync_delete(f->s, "ws2", &err), 0);
}

static void test_corrupt(void **state)
{
	struct fx *f = *state;
	struct err err = { 0 };
	struct wsync_stats st;
	make_disk(f->disk);
	assert_int_equal(wsync_push(f->s, "c", f->disk, NULL, &st, &err), 0);
	char **keys;
	size_t n;
	assert_int_equal(store_list(f->s, "chunks/", &keys, &n, NULL), 0);
	assert_true(n > 0);
	/* valid zstd of other data: a hash mismatch */
	uint8_t junk[100] = { 1, 2, 3 }, z[512];
	size_t zn = ZSTD_compress(z, sizeof z, junk, sizeof junk, 1);
	assert_false(ZSTD_isError(zn));
	assert_int_equal(store_put(f->s, keys[0], z, zn, &err), 0);
	unlink(f->out);
	err_clear(&err);
	assert_true(wsync_pull(f->s, "c", f->out, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "workspace c: chunk "));
	assert_non_null(strstr(err.msg, keys[0] + 10)); /* the hash */
	assert_non_null(strstr(err.msg, "is corrupt"));
	assert_int_equal(access(f->out, F_OK), -1);
	/* not zstd at all */
	assert_int_equal(store_put(f->s, keys[0], "garbage", 7, &err), 0);
	err_clear(&err);
	assert_true(wsync_pull(f->s, "c", f->out, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "is corrupt: cannot decompress"));
	/* missing */
	assert_int_equal(store_delete(f->s, keys[0], &err), 0);
	assert_true(wsync_pull(f->s, "c", f->out, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "missing"));
	assert_int_equal(access(f->out, F_OK), -1);
	/* no leftover temp files next to the target */
	DIR *d = opendir(f->dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		assert_null(strstr(de->d_name, ".pull."));
	closedir(d);
	/* an unparsable manifest is an error naming its key */
	assert_int_equal(store_put(f->s, "workspaces/c/00000000000000000001.json", "{", 1, &err), 0);
	assert_true(wsync_pull(f->s, "c", f->out, &st, &err) < 0);
	assert_non_null(strstr(err.msg, "workspaces/c/00000000000000000001.json"));
	store_keys_free(keys, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_ok),
		cmocka_unit_test(test_manifest_reject),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_store_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
