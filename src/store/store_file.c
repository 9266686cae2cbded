// SPDX-License-Identifier: MIT
/*
 * file:// back end of the object store: each object is a regular file at
 * DIR/KEY. A put writes a temp file next to it (".NAME.tmp.XXXXXX", never a
 * valid key, since key components cannot start with '.'), fsyncs it and
 * renames it over the key, so a reader sees the old object or the new one,
 * never a part. Directories are made on demand and never removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "store_int.h"
#include "xmalloc.h"

#define FILE_LIST_MAX (16u << 20)	/* keys one list may return */

int store_file_open(struct store *s, const char *path, struct err *err)
{
	s->dir = xstrdup(path);
	size_t n = strlen(s->dir);
	while (n > 1 && s->dir[n - 1] == '/')
		s->dir[--n] = '\0';
	int r = fs_mkdir_p(s->dir, 0755);
	if (r < 0)
		return err_set(err, -r, "store: mkdir %s", s->dir);
	struct stat st;
	if (stat(s->dir, &st) < 0)
		return err_set(err, errno, "store: %s", s->dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ENOTDIR, "store: %s", s->dir);
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies all of src into dst from their current offsets. */
static int copy_fd(int src, int dst)
{
	for (;;) {
		ssize_t n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	static const size_t bufsz = 1 << 20;
	char *b = xmalloc(bufsz);
	int r = 0;
	for (;;) {
		ssize_t n = read(src, b, bufsz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((r = write_all(dst, b, (size_t)n)) < 0)
			break;
	}
	free(b);
	return r;
}

/* Writes an object from data (src < 0) or from the open file src, atomically. */
static int put_atomic(struct store *s, const char *key, const void *data, size_t len, int src, struct err *err)
{
	char *path = xasprintf("%s/%s", s->dir, key);
	char *slash = strrchr(path, '/');
	char *tmp = NULL;
	int fd = -1, r;
	*slash = '\0';
	r = fs_mkdir_p(path, 0755);
	*slash = '/';
	if (r < 0) {
		r = err_set(err, -r, "store: PUT %s: mkdir", key);
		goto out;
	}
	*slash = '\0';
	tmp = xasprintf("%s/.%s.tmp.XXXXXX", path, slash + 1);
	*slash = '/';
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = err_set(err, errno, "store: PUT %s: create temp file", key);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	r = src < 0 ? write_all(fd, data, len) : copy_fd(src, fd);
	if (r < 0) {
		r = err_set(err, -r, "store: PUT %s: write", key);
		goto out;
	}
	if (fsync(fd) < 0) {
		r = err_set(err, errno, "store: PUT %s: fsync", key);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		r = err_set(err, errno, "store: PUT %s: rename", key);
		goto out;
	}
	free(tmp);
	tmp = NULL; /* renamed: nothing to clean up */
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(path);
	return r;
}

int store_file_put(struct store *s, const char *key, const void *data, size_t len, struct err *err)
{
	return put_atomic(s, key, data, len, -1, err);
}

int store_file_put_file(struct store *s, const char *key, const char *path, struct err *err)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return err_set(err, errno, "store: PUT %s: open %s", key, path);
	int r = put_atomic(s, key, NULL, 0, src, err);
	close(src);
	return r;
}

int store_file_get(struct store *s, const char *key, size_t max, uint8_t **data, size_t *len, struct err *err)
{
	char *path = xasprintf("%s/%s", s->dir, key);
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	struct buf b;
	buf_init(&b);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
			err_set(err, 404, "store: GET %s: no such object", key);
			r = -ENOENT;
		} else {
			r = err_set(err, errno, "store: GET %s", key);
		}
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = err_set(err, errno, "store: GET %s: fstat", key);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, 404, "store: GET %s: no such object", key);
		r = -ENOENT;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = err_set(err, EFBIG, "store: GET %s: %lld bytes, more than %zu", key, (long long)st.st_size, max);
		goto out;
	}
	buf_reserve(&b, (size_t)st.st_size + 1);
	for (;;) {
		if (b.len == b.cap - 1)
			buf_reserve(&b, 4096);
		ssize_t n = read(fd, b.data + b.len, b.cap - 1 - b.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(err, errno, "store: GET %s: read", key);
			goto out;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > max) {
			r = err_set(err, EFBIG, "store: GET %s: more than %zu bytes", key, max);
			goto out;
		}
	}
	b.data[b.len] = '\0';
	*len = b.len;
	*data = (uint8_t *)buf_steal(&b);
out:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	free(path);
	return r;
}

struct keylist {
	char **keys;
	size_t n, cap;
};

/* Adds the regular files under dir (relative name rel, "" at the top) whose
 * keys start with prefix. Names starting with '.' (temp files) are skipped. */
static int walk(const char *dir, const char *rel, const char *prefix, struct keylist *kl, struct err *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return err_set(err, errno, "store: LIST %s: opendir %s", prefix, dir);
	}
	int r = 0;
	struct dirent *de;
	size_t plen = strlen(prefix);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *key = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		size_t klen = strlen(key);
		/* descend only where the prefix can still match */
		size_t cmp = klen < plen ? klen : plen;
		if (strncmp(key, prefix, cmp) != 0) {
			free(key);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			free(key);
			if (errno == ENOENT)
				continue; /* deleted meanwhile */
			r = err_set(err, errno, "store: LIST %s: stat %s/%s", prefix, dir, de->d_name);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			char *sub = xasprintf("%s/%s", dir, de->d_name);
			r = walk(sub, key, prefix, kl, err);
			free(sub);
			free(key);
			if (r < 0)
				break;
		} else if (S_ISREG(st.st_mode) && klen >= plen && klen <= STORE_KEY_MAX) {
			if (kl->n == FILE_LIST_MAX) {
				free(key);
				r = err_set(err, E2BIG, "store: LIST %s: more than %u keys", prefix, FILE_LIST_MAX);
				break;
			}
			if (kl->n == kl->cap) {
				kl->cap = kl->cap ? 2 * kl->cap : 64;
				kl->keys = xrealloc(kl->keys, kl->cap * sizeof *kl->keys);
			}
			kl->keys[kl->n++] = key;
		} else {
			free(key);
		}
	}
	closedir(d);
	return r;
}

int store_file_list(struct store *s, const char *prefix, char ***keys, size_t *n, struct err *err)
{
	struct keylist kl = { 0 };
	/* start at the deepest directory the prefix names whole */
	const char *slash = strrchr(prefix, '/');
	char *rel = slash ? xstrndup(prefix, (size_t)(slash - prefix)) : xstrdup("");
	char *dir = *rel ? xasprintf("%s/%s", s->dir, rel) : xstrdup(s->dir);
	int r = walk(dir, rel, prefix, &kl, err);
	free(dir);
	free(rel);
	if (r < 0) {
		store_keys_free(kl.keys, kl.n);
		return r;
	}
	*keys = kl.keys;
	*n = kl.n;
	return 0;
}

int store_file_delete(struct store *s, const char *key, struct err *err)
{
	char *path = xasprintf("%s/%s", s->dir, key);
	int r = 0;
	if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR && errno != EISDIR)
		r = err_set(err, errno, "store: DELETE %s", key);
	free(path);
	return r;
}
