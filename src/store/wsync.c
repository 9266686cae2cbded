// SPDX-License-Identifier: MIT
/*
 * Workspace sync (see wsync.h and docs/sync-format.md, which this follows).
 *
 * push: list the disk's data extents (SEEK_DATA/SEEK_HOLE), then WSYNC_THREADS
 * workers each take the next 1 MiB chunk: read, skip if all zero, SHA-256,
 * skip if the store has it (the previous manifest of this workspace and one
 * LIST of chunks/), else zstd-compress and PUT. Only when every chunk is
 * stored is the manifest PUT (the commit point); then manifests older than
 * the newest WSYNC_KEEP are deleted.
 * pull: the newest manifest; workers GET, decompress, verify and pwrite each
 * chunk into a sparse temp file next to the target, renamed over it at the end.
 * delete: the workspace's manifests, then every chunk that no remaining
 * manifest names, under a process-wide write lock that pushes take for reading.
 */
#include "wsync.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "base64.h"
#include "log.h"
#include "xmalloc.h"

#define HASH_HEX 64
#define CHUNK_KEY_MAX 80	/* "chunks/ab/" + 64 hex + NUL */
#define CHUNK_OBJ_MAX (WSYNC_CHUNK + WSYNC_CHUNK / 64 + 4096)	/* > ZSTD_compressBound(WSYNC_CHUNK) */

/* pushes read-lock, wsync_delete's GC write-locks */
static pthread_rwlock_t gc_lock = PTHREAD_RWLOCK_INITIALIZER;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wsync_ws_check(const char *name, struct err *err)
{
	size_t n = name ? strlen(name) : 0;
	int ok = n >= 1 && n <= WSYNC_WS_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
	}
	if (!ok)
		return err_set(err, 400, "invalid workspace name \"%.80s\"", name ? name : "(null)");
	return 0;
}

static void chunk_key(const uint8_t *sha, char *out)
{
	char hex[HASH_HEX + 1];
	hex_encode(sha, 32, hex);
	snprintf(out, CHUNK_KEY_MAX, "chunks/%.2s/%s", hex, hex);
}

static char *manifest_key(const char *ws, uint64_t version)
{
	return xasprintf("workspaces/%s/%020llu.json", ws, (unsigned long long)version);
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* lowercase only: one spelling per hash */
}

static int hex_decode32(const char *s, size_t n, uint8_t *out)
{
	if (n != HASH_HEX)
		return -1;
	for (size_t i = 0; i < 32; i++) {
		int a = unhex(s[2 * i]), b = unhex(s[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

/* ---- manifest ---------------------------------------------------------- */

void wsync_manifest_free(struct wsync_manifest *m)
{
	if (!m)
		return;
	json_decref(m->meta);
	free(m->chunks);
	memset(m, 0, sizeof *m);
}

static int get_uint(json_t *root, const char *name, uint64_t max, uint64_t *out, struct err *err)
{
	json_t *v = json_object_get(root, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
		return err_set(err, 400, "manifest: \"%s\" must be an integer in 0..%llu", name, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int wsync_manifest_parse(const char *json, size_t len, struct wsync_manifest *m, struct err *err)
{
	memset(m, 0, sizeof *m);
	if (len > WSYNC_MANIFEST_MAX)
		return err_set(err, 413, "manifest: larger than %u bytes", WSYNC_MANIFEST_MAX);
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	struct wsync_manifest p = { 0 };
	uint64_t v;
	int r = 0;
	if (!root) {
		r = err_set(err, 400, "manifest: invalid JSON: %s (line %d)", jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(root)) {
		r = err_set(err, 400, "manifest: not a JSON object");
		goto out;
	}
	if ((r = get_uint(root, "format", UINT32_MAX, &v, err)) < 0)
		goto out;
	if (v != WSYNC_FORMAT) {
		r = err_set(err, 400, "manifest: format %llu is not supported (want %d)", (unsigned long long)v, WSYNC_FORMAT);
		goto out;
	}
	json_t *ws = json_object_get(root, "workspace");
	if (!json_is_string(ws) || wsync_ws_check(json_string_value(ws), NULL) < 0 ||
	    strlen(json_string_value(ws)) != json_string_length(ws)) {
		r = err_set(err, 400, "manifest: \"workspace\" must be a valid workspace name");
		goto out;
	}
	snprintf(p.ws, sizeof p.ws, "%s", json_string_value(ws));
	if ((r = get_uint(root, "version", INT64_MAX, &p.version, err)) < 0)
		goto out;
	if (p.version == 0) {
		r = err_set(err, 400, "manifest: \"version\" must be at least 1");
		goto out;
	}
	if ((r = get_uint(root, "disk_bytes", WSYNC_DISK_MAX, &p.disk_bytes, err)) < 0)
		goto out;
	if ((r = get_uint(root, "chunk_size", UINT32_MAX, &v, err)) < 0)
		goto out;
	if (v != WSYNC_CHUNK) {
		r = err_set(err, 400, "manifest: chunk_size %llu is not supported (want %u)", (unsigned long long)v, WSYNC_CHUNK);
		goto out;
	}
	p.chunk_size = (uint32_t)v;
	json_t *ca = json_object_get(root, "created_at");
	if (ca) {
		if (!json_is_string(ca) || json_string_length(ca) >= sizeof p.created_at ||
		    strlen(json_string_value(ca)) != json_string_length(ca)) {
			r = err_set(err, 400, "manifest: \"created_at\" must be a short string");
			goto out;
		}
		snprintf(p.created_at, sizeof p.created_at, "%s", json_string_value(ca));
	}
	json_t *meta = json_object_get(root, "meta");
	if (meta && !json_is_null(meta)) {
		if (!json_is_object(meta)) {
			r = err_set(err, 400, "manifest: \"meta\" must be an object");
			goto out;
		}
		p.meta = json_incref(meta);
	}
	json_t *chunks = json_object_get(root, "chunks");
	uint64_t nchunks = (p.disk_bytes + WSYNC_CHUNK - 1) / WSYNC_CHUNK;
	if (!json_is_array(chunks)) {
		r = err_set(err, 400, "manifest: \"chunks\" must be an array");
		goto out;
	}
	if (json_array_size(chunks) > nchunks) {
		r = err_set(err, 400, "manifest: %zu chunks for a disk of %llu", json_array_size(chunks),
			    (unsigned long long)nchunks);
		goto out;
	}
	p.n = json_array_size(chunks);
	p.chunks = xcalloc(p.n ? p.n : 1, sizeof *p.chunks);
	for (size_t i = 0; i < p.n; i++) {
		json_t *e = json_array_get(chunks, i);
		json_t *ix = json_array_get(e, 0), *h = json_array_get(e, 1);
		if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_integer(ix) || !json_is_string(h)) {
			r = err_set(err, 400, "manifest: chunks[%zu] must be [index, \"sha256 hex\"]", i);
			goto out;
		}
		json_int_t idx = json_integer_value(ix);
		if (idx < 0 || (uint64_t)idx >= nchunks || (i > 0 && (uint64_t)idx <= p.chunks[i - 1].index)) {
			r = err_set(err, 400, "manifest: chunks[%zu]: index %lld out of order or outside the disk", i,
				    (long long)idx);
			goto out;
		}
		p.chunks[i].index = (uint64_t)idx;
		if (hex_decode32(json_string_value(h), json_string_length(h), p.chunks[i].sha256) < 0) {
			r = err_set(err, 400, "manifest: chunks[%zu]: not a lowercase sha256 hex digest", i);
			goto out;
		}
	}
	*m = p;
	memset(&p, 0, sizeof p); /* transferred */
out:
	wsync_manifest_free(&p);
	json_decref(root);
	return r;
}

char *wsync_manifest_dump(const struct wsync_manifest *m)
{
	json_t *chunks = json_array();
	for (size_t i = 0; i < m->n; i++) {
		char hex[HASH_HEX + 1];
		hex_encode(m->chunks[i].sha256, 32, hex);
		json_array_append_new(chunks, json_pack("[Is]", (json_int_t)m->chunks[i].index, hex));
	}
	json_t *root = json_pack("{sisssIsIsIsssO?so}", "format", WSYNC_FORMAT, "workspace", m->ws,
				 "version", (json_int_t)m->version, "disk_bytes", (json_int_t)m->disk_bytes,
				 "chunk_size", (json_int_t)m->chunk_size, "created_at", m->created_at,
				 "meta", m->meta, "chunks", chunks);
	if (!root)
		abort(); /* only on out of memory: every field is valid */
	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		abort();
	return s;
}

/* ---- worker threads ------------------------------------------------------ */

struct worker {
	uint8_t *raw;		/* WSYNC_CHUNK bytes */
	uint8_t *z;		/* compressed chunk */
	size_t zcap;
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

typedef int (*item_fn)(void *ctx, struct worker *w, size_t i, struct err *err);

struct par {
	item_fn fn;
	void *ctx;
	size_t n;
	atomic_size_t next;
	atomic_int failed;
	pthread_mutex_t lock;	/* guards rc, err */
	int rc;
	struct err err;
};

static void *par_thread(void *arg)
{
	struct par *p = arg;
	struct worker w = { 0 };
	struct err e = { 0 };
	for (;;) {
		if (atomic_load(&p->failed))
			break;
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		int r = p->fn(p->ctx, &w, i, &e);
		if (r < 0) {
			pthread_mutex_lock(&p->lock);
			if (p->rc == 0) {
				p->rc = r;
				p->err = e;
			}
			pthread_mutex_unlock(&p->lock);
			atomic_store(&p->failed, 1);
			break;
		}
	}
	free(w.raw);
	free(w.z);
	ZSTD_freeCCtx(w.cctx);
	ZSTD_freeDCtx(w.dctx);
	return NULL;
}

static unsigned nthreads(void)
{
	const char *e = getenv("MAGS_WSYNC_THREADS");
	if (e && *e) {
		int v = atoi(e);
		if (v >= 1 && v <= 64)
			return (unsigned)v;
	}
	return WSYNC_THREADS;
}

/* Runs fn(ctx, worker, i) for i in [0, n) on up to nthreads() threads; stops at
 * the first failure and returns it (err set from the failing item). */
static int par_run(size_t n, item_fn fn, void *ctx, struct err *err)
{
	if (n == 0)
		return 0;
	struct par p = { .fn = fn, .ctx = ctx, .n = n };
	pthread_mutex_init(&p.lock, NULL);
	unsigned nt = nthreads();
	if (nt > n)
		nt = (unsigned)n;
	pthread_t tid[64];
	unsigned started = 0;
	for (; started < nt; started++)
		if (pthread_create(&tid[started], NULL, par_thread, &p) != 0)
			break;
	if (started == 0)
		par_thread(&p); /* no threads to be had: do it here */
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.rc < 0 && err)
		*err = p.err;
	return p.rc;
}

static void worker_bufs(struct worker *w)
{
	if (!w->raw) {
		w->raw = xmalloc(WSYNC_CHUNK);
		w->zcap = ZSTD_compressBound(WSYNC_CHUNK);
		w->z = xmalloc(w->zcap);
	}
}

/* ---- hash sets ------------------------------------------------------------- */

struct hashset {
	uint8_t (*h)[32];	/* sorted after hashset_seal */
	size_t n, cap;
};

static void hashset_add(struct hashset *hs, const uint8_t *sha)
{
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? 2 * hs->cap : 256;
		hs->h = xrealloc(hs->h, hs->cap * sizeof *hs->h);
	}
	memcpy(hs->h[hs->n++], sha, 32);
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static void hashset_seal(struct hashset *hs)
{
	if (hs->n > 1)
		qsort(hs->h, hs->n, 32, hash_cmp);
}

static int hashset_has(const struct hashset *hs, const uint8_t *sha)
{
	return hs->n && bsearch(sha, hs->h, hs->n, 32, hash_cmp) != NULL;
}

static void hashset_free(struct hashset *hs)
{
	free(hs->h);
	memset(hs, 0, sizeof *hs);
}

/* Parses "chunks/ab/<64 hex>" with ab matching the hash. */
static int chunk_key_parse(const char *key, uint8_t *sha)
{
	if (strncmp(key, "chunks/", 7) || strlen(key) != 7 + 3 + HASH_HEX || key[9] != '/' ||
	    strncmp(key + 7, key + 10, 2))
		return -1;
	return hex_decode32(key + 10, HASH_HEX, sha);
}

/* Adds every chunk in the store to hs (one LIST of chunks/). */
static int list_chunks(struct store *s, struct hashset *hs, char ***keys_out, size_t *n_out, struct err *err)
{
	char **keys;
	size_t n;
	int r = store_list(s, "chunks/", &keys, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint8_t sha[32];
		if (chunk_key_parse(keys[i], sha) == 0)
			hashset_add(hs, sha);
	}
	hashset_seal(hs);
	if (keys_out) {
		*keys_out = keys;
		*n_out = n;
	} else {
		store_keys_free(keys, n);
	}
	return 0;
}

/* The version a manifest's file name ("00000000000000000042.json") names: 1 ... INT64_MAX, else 0. */
static uint64_t manifest_version(const char *name)
{
	if (strlen(name) != 25 || strcmp(name + 20, ".json") || strspn(name, "0123456789") != 20)
		return 0;
	uint64_t x = strtoull(name, NULL, 10);
	return x <= INT64_MAX ? x : 0;
}

/* Versions of ws in the store, ascending (allocated array). */
static int list_versions(struct store *s, const char *ws, uint64_t **vers, size_t *nv, struct err *err)
{
	*vers = NULL;
	*nv = 0;
	char *prefix = xasprintf("workspaces/%s/", ws);
	char **keys;
	size_t n;
	int r = store_list(s, prefix, &keys, &n, err);
	if (r == 0) {
		size_t pl = strlen(prefix);
		uint64_t *v = xcalloc(n ? n : 1, sizeof *v);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = manifest_version(keys[i] + pl);
			if (x)
				v[k++] = x;
		}
		*vers = v; /* keys are sorted and zero-padded: so are the versions */
		*nv = k;
		store_keys_free(keys, n);
	}
	free(prefix);
	return r;
}

/* Reads and parses one manifest, checking it is the one its key names. */
static int manifest_load(struct store *s, const char *ws, uint64_t version, struct wsync_manifest *m, struct err *err)
{
	char *key = manifest_key(ws, version);
	uint8_t *data = NULL;
	size_t len;
	int r = store_get(s, key, WSYNC_MANIFEST_MAX, &data, &len, err);
	if (r == 0) {
		r = wsync_manifest_parse((const char *)data, len, m, err);
		if (r == 0 && (strcmp(m->ws, ws) || m->version != version)) {
			r = err_set(err, 400, "manifest names workspace %s version %llu", m->ws,
				    (unsigned long long)m->version);
			wsync_manifest_free(m);
		}
		if (r < 0)
			err_wrap(err, "manifest %s", key);
	}
	free(data);
	free(key);
	return r;
}

/* ---- push ------------------------------------------------------------------- */

struct push {
	struct store *s;
	const char *ws;
	int fd;
	uint64_t size;
	uint64_t *idx;		/* chunk indices holding data, ascending */
	struct wsync_chunk *res;	/* per idx: the hash */
	uint8_t *nonzero;	/* per idx: 1 if the chunk is not all zero */
	struct hashset known;	/* chunks already in the store */
	pthread_mutex_t lock;	/* guards claimed */
	uint8_t (*claimed)[32];	/* open addressing: chunks uploaded or being uploaded by this push */
	uint8_t *used;		/* per claimed slot */
	size_t cmask;		/* slots - 1 (a power of two, more than twice the chunks) */
	atomic_uint_fast64_t up_chunks, up_bytes;
};

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t m = pread(fd, p, n, (off_t)off);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0)
			return -errno;
		if (m == 0) {
			memset(p, 0, n); /* the file shrank: the rest reads as zeros */
			return 0;
		}
		p += m;
		n -= (size_t)m;
		off += (uint64_t)m;
	}
	return 0;
}

static size_t chunk_len(uint64_t disk_bytes, uint64_t index)
{
	uint64_t off = index * WSYNC_CHUNK;
	return disk_bytes - off < WSYNC_CHUNK ? (size_t)(disk_bytes - off) : WSYNC_CHUNK;
}

/* Claims sha for upload by this push; 0 if another worker already did. */
static int claim(struct push *p, const uint8_t *sha)
{
	uint64_t h;
	memcpy(&h, sha, sizeof h); /* a SHA-256 is as good a hash as any */
	int mine = 1;
	pthread_mutex_lock(&p->lock);
	size_t i = (size_t)h & p->cmask;
	while (p->used[i] && (mine = memcmp(p->claimed[i], sha, 32) != 0))
		i = (i + 1) & p->cmask;
	if (mine) {
		p->used[i] = 1;
		memcpy(p->claimed[i], sha, 32);
	}
	pthread_mutex_unlock(&p->lock);
	return mine;
}

static int push_item(void *ctx, struct worker *w, size_t i, struct err *err)
{
	struct push *p = ctx;
	uint64_t index = p->idx[i];
	size_t n = chunk_len(p->size, index);
	worker_bufs(w);
	int r = pread_full(p->fd, w->raw, n, index * WSYNC_CHUNK);
	if (r < 0)
		return err_set(err, -r, "read chunk %llu", (unsigned long long)index);
	if (all_zero(w->raw, n))
		return 0;
	uint8_t *sha = p->res[i].sha256;
	p->res[i].index = index;
	EVP_Digest(w->raw, n, sha, NULL, EVP_sha256(), NULL);
	p->nonzero[i] = 1;
	if (hashset_has(&p->known, sha) || !claim(p, sha))
		return 0;
	if (!w->cctx)
		w->cctx = ZSTD_createCCtx();
	size_t zn = ZSTD_compressCCtx(w->cctx, w->z, w->zcap, w->raw, n, WSYNC_ZSTD_LEVEL);
	if (ZSTD_isError(zn))
		return err_set(err, EIO, "compress chunk %llu: %s", (unsigned long long)index, ZSTD_getErrorName(zn));
	char key[CHUNK_KEY_MAX];
	chunk_key(sha, key);
	r = store_put(p->s, key, w->z, zn, err);
	if (r < 0)
		return err_wrap(err, "upload chunk %llu", (unsigned long long)index);
	atomic_fetch_add(&p->up_chunks, 1);
	atomic_fetch_add(&p->up_bytes, zn);
	return 0;
}

/* Chunk indices that hold data, from SEEK_DATA/SEEK_HOLE (all of them where unsupported). */
static int data_chunks(int fd, uint64_t size, uint64_t **out, size_t *nout)
{
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t off = 0;
	int seek = 1;
	while (off < size) {
		uint64_t d, h;
		if (seek) {
			off_t x = lseek(fd, (off_t)off, SEEK_DATA);
			if (x < 0 && errno == ENXIO)
				break;
			if (x < 0) {
				seek = 0; /* not supported here: treat everything as data */
				continue;
			}
			off_t y = lseek(fd, x, SEEK_HOLE);
			if (y < 0) {
				seek = 0;
				continue;
			}
			d = (uint64_t)x;
			h = (uint64_t)y < size ? (uint64_t)y : size;
		} else {
			d = off;
			h = size;
		}
		for (uint64_t c = d / WSYNC_CHUNK; c * WSYNC_CHUNK < h; c++) {
			if (n && v[n - 1] >= c)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				v = xrealloc(v, cap * sizeof *v);
			}
			v[n++] = c;
		}
		off = h > d ? h : d + 1;
	}
	*out = v;
	*nout = n;
	return 0;
}

static void now_iso(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct prune {
	struct store *s;
	const char *ws;
	uint64_t *vers;
};

static int prune_item(void *ctx, struct worker *w, size_t i, struct err *err)
{
	struct prune *p = ctx;
	char *key = manifest_key(p->ws, p->vers[i]);
	int r = store_delete(p->s, key, err);
	free(key);
	return r;
}

int wsync_push(struct store *s, const char *ws, const char *disk_path, json_t *meta, struct wsync_stats *st,
	       struct err *err)
{
	int64_t t0 = now_ms();
	struct wsync_stats stats = { 0 };
	struct push p = { .s = s, .ws = ws, .fd = -1 };
	struct wsync_manifest m = { 0 }, prev = { 0 };
	uint64_t *vers = NULL;
	size_t nv = 0, n = 0;
	char *key = NULL, *json = NULL;
	struct err e2 = { 0 };
	int r;
	if (st)
		memset(st, 0, sizeof *st);
	if ((r = wsync_ws_check(ws, err)) < 0)
		return r;
	if (meta && !json_is_object(meta))
		return err_set(err, 400, "workspace %s: meta must be a JSON object", ws);
	pthread_mutex_init(&p.lock, NULL);
	pthread_rwlock_rdlock(&gc_lock);
	p.fd = open(disk_path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (p.fd < 0 || fstat(p.fd, &sb) < 0) {
		r = err_set(err, errno, "workspace %s: open %s", ws, disk_path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > WSYNC_DISK_MAX) {
		r = err_set(err, 400, "workspace %s: %s is not a regular file of at most %llu bytes", ws, disk_path,
			    (unsigned long long)WSYNC_DISK_MAX);
		goto out;
	}
	p.size = (uint64_t)sb.st_size;
	data_chunks(p.fd, p.size, &p.idx, &n);
	if ((r = list_versions(s, ws, &vers, &nv, err)) < 0)
		goto wrap;
	uint64_t version = nv ? vers[nv - 1] + 1 : 1;
	if (nv) {
		/* the previous manifest is only a hint of what the store holds */
		if (manifest_load(s, ws, vers[nv - 1], &prev, &e2) == 0) {
			for (size_t i = 0; i < prev.n; i++)
				hashset_add(&p.known, prev.chunks[i].sha256);
		} else {
			log_warn("workspace %s: previous version unreadable, pushing anyway: %s", ws, e2.msg);
		}
	}
	if ((r = list_chunks(s, &p.known, NULL, NULL, err)) < 0)
		goto wrap;
	p.res = xcalloc(n ? n : 1, sizeof *p.res);
	p.nonzero = xcalloc(n ? n : 1, 1);
	size_t slots = 16;
	while (slots <= 2 * n)
		slots *= 2;
	p.claimed = xcalloc(slots, sizeof *p.claimed);
	p.used = xcalloc(slots, 1);
	p.cmask = slots - 1;
	if ((r = par_run(n, push_item, &p, err)) < 0)
		goto wrap;

	/* every chunk is stored: commit with the manifest */
	snprintf(m.ws, sizeof m.ws, "%s", ws);
	m.version = version;
	m.disk_bytes = p.size;
	m.chunk_size = WSYNC_CHUNK;
	now_iso(m.created_at, sizeof m.created_at);
	m.meta = meta;
	m.chunks = xcalloc(n ? n : 1, sizeof *m.chunks);
	for (size_t i = 0; i < n; i++)
		if (p.nonzero[i])
			m.chunks[m.n++] = p.res[i];
	json = wsync_manifest_dump(&m);
	m.meta = NULL; /* borrowed */
	key = manifest_key(ws, version);
	if ((r = store_put(s, key, json, strlen(json), err)) < 0) {
		err_wrap(err, "write manifest");
		goto wrap;
	}

	/* keep the newest WSYNC_KEEP; older ones go (best effort) */
	free(vers);
	vers = NULL;
	if (list_versions(s, ws, &vers, &nv, &e2) == 0) {
		size_t old = 0;
		while (old < nv && vers[old] + WSYNC_KEEP <= version)
			old++;
		struct prune pr = { .s = s, .ws = ws, .vers = vers };
		if (par_run(old, prune_item, &pr, &e2) < 0)
			log_warn("workspace %s: deleting old manifests: %s", ws, e2.msg);
	}
	stats.version = version;
	stats.data_chunks = m.n;
	stats.uploaded_chunks = atomic_load(&p.up_chunks);
	stats.uploaded_bytes = atomic_load(&p.up_bytes);
	stats.disk_bytes = p.size;
	stats.ms = now_ms() - t0;
	if (st)
		*st = stats;
	goto out;
wrap:
	err_wrap(err, "workspace %s: push", ws);
out:
	pthread_rwlock_unlock(&gc_lock);
	if (p.fd >= 0)
		close(p.fd);
	free(p.idx);
	free(p.res);
	free(p.nonzero);
	hashset_free(&p.known);
	free(p.claimed);
	free(p.used);
	pthread_mutex_destroy(&p.lock);
	wsync_manifest_free(&m);
	wsync_manifest_free(&prev);
	free(vers);
	free(key);
	free(json);
	return r;
}

/* ---- pull ---------------------------------------------------------------------- */

struct pull {
	struct store *s;
	const char *ws;
	const struct wsync_manifest *m;
	int fd;
	atomic_uint_fast64_t down_bytes;
};

static int pull_item(void *ctx, struct worker *w, size_t i, struct err *err)
{
	struct pull *p = ctx;
	const struct wsync_chunk *c = &p->m->chunks[i];
	char key[CHUNK_KEY_MAX], hex[HASH_HEX + 1];
	chunk_key(c->sha256, key);
	hex_encode(c->sha256, 32, hex);
	size_t want = chunk_len(p->m->disk_bytes, c->index);
	uint8_t *data = NULL;
	size_t len;
	int r = store_get(p->s, key, CHUNK_OBJ_MAX, &data, &len, err);
	if (r == -ENOENT)
		return err_set(err, 502, "workspace %s: chunk %llu (sha256 %s) is missing from the store", p->ws,
			       (unsigned long long)c->index, hex);
	if (r == -EFBIG) {
		return err_set(err, 502, "workspace %s: chunk %llu (sha256 %s) is corrupt: object too large", p->ws,
			       (unsigned long long)c->index, hex);
	}
	if (r < 0)
		return err_wrap(err, "workspace %s: chunk %llu", p->ws, (unsigned long long)c->index);
	atomic_fetch_add(&p->down_bytes, len);
	worker_bufs(w);
	if (!w->dctx)
		w->dctx = ZSTD_createDCtx();
	/* a frame that declares its size must declare the chunk's; one that does not
	 * (streamed by another writer) must decompress to it */
	unsigned long long fcs = ZSTD_getFrameContentSize(data, len);
	int size_ok = fcs == want || fcs == ZSTD_CONTENTSIZE_UNKNOWN;
	size_t got = size_ok ? ZSTD_decompressDCtx(w->dctx, w->raw, WSYNC_CHUNK, data, len) : 0;
	free(data);
	if (!size_ok || ZSTD_isError(got) || got != want)
		return err_set(err, 502, "workspace %s: chunk %llu (sha256 %s) is corrupt: cannot decompress", p->ws,
			       (unsigned long long)c->index, hex);
	uint8_t sha[32];
	EVP_Digest(w->raw, want, sha, NULL, EVP_sha256(), NULL);
	if (memcmp(sha, c->sha256, 32))
		return err_set(err, 502, "workspace %s: chunk %llu (sha256 %s) is corrupt: hash mismatch", p->ws,
			       (unsigned long long)c->index, hex);
	uint64_t off = c->index * WSYNC_CHUNK;
	const uint8_t *q = w->raw;
	while (want) {
		ssize_t n = pwrite(p->fd, q, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, errno, "workspace %s: write chunk %llu", p->ws, (unsigned long long)c->index);
		q += n;
		want -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int wsync_pull(struct store *s, const char *ws, const char *disk_path, struct wsync_stats *st, struct err *err)
{
	int64_t t0 = now_ms();
	struct wsync_manifest m = { 0 };
	struct pull p = { .s = s, .ws = ws, .m = &m, .fd = -1 };
	uint64_t *vers = NULL;
	size_t nv = 0;
	char *tmp = NULL;
	int r;
	if (st)
		memset(st, 0, sizeof *st);
	if ((r = wsync_ws_check(ws, err)) < 0)
		return r;
	if ((r = list_versions(s, ws, &vers, &nv, err)) < 0)
		goto wrap;
	if (nv == 0) {
		err_set(err, 404, "workspace %s: no version in the store", ws);
		r = -ENOENT;
		goto out;
	}
	if ((r = manifest_load(s, ws, vers[nv - 1], &m, err)) < 0)
		goto wrap;
	tmp = xasprintf("%s.pull.XXXXXX", disk_path);
	p.fd = mkostemp(tmp, O_CLOEXEC);
	if (p.fd < 0) {
		r = err_set(err, errno, "workspace %s: create %s", ws, tmp);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(p.fd, 0644) < 0 || ftruncate(p.fd, (off_t)m.disk_bytes) < 0) {
		r = err_set(err, errno, "workspace %s: size %s", ws, tmp);
		goto out;
	}
	if ((r = par_run(m.n, pull_item, &p, err)) < 0)
		goto out; /* the item's message names the workspace */
	if (fsync(p.fd) < 0) {
		r = err_set(err, errno, "workspace %s: fsync %s", ws, tmp);
		goto out;
	}
	if (rename(tmp, disk_path) < 0) {
		r = err_set(err, errno, "workspace %s: rename to %s", ws, disk_path);
		goto out;
	}
	free(tmp);
	tmp = NULL; /* renamed */
	fsync_dir_of(disk_path);
	if (st) {
		st->disk_bytes = m.disk_bytes;
		st->data_chunks = m.n;
		st->downloaded_bytes = atomic_load(&p.down_bytes);
		st->version = m.version;
		st->ms = now_ms() - t0;
	}
	goto out;
wrap:
	err_wrap(err, "workspace %s: pull", ws);
out:
	if (p.fd >= 0)
		close(p.fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(vers);
	wsync_manifest_free(&m);
	return r;
}

int wsync_latest(struct store *s, const char *ws, uint64_t *version, json_t **meta, struct err *err)
{
	*version = 0;
	if (meta)
		*meta = NULL;
	int r = wsync_ws_check(ws, err);
	if (r < 0)
		return r;
	uint64_t *vers = NULL;
	size_t nv = 0;
	struct wsync_manifest m = { 0 };
	if ((r = list_versions(s, ws, &vers, &nv, err)) < 0) {
		err_wrap(err, "workspace %s", ws);
		goto out;
	}
	if (nv == 0) {
		err_set(err, 404, "workspace %s: no version in the store", ws);
		r = -ENOENT;
		goto out;
	}
	if ((r = manifest_load(s, ws, vers[nv - 1], &m, err)) < 0) {
		err_wrap(err, "workspace %s", ws);
		goto out;
	}
	*version = m.version;
	if (meta && m.meta)
		*meta = json_incref(m.meta);
out:
	wsync_manifest_free(&m);
	free(vers);
	return r;
}

/* ---- delete and garbage collection ------------------------------------------------ */

struct gc {
	struct store *s;
	char **keys;		/* manifest keys to read, or chunk keys to delete */
	pthread_mutex_t lock;	/* guards live */
	struct hashset live;	/* chunks some remaining manifest names */
	atomic_size_t deleted;
};

static int gc_read_item(void *ctx, struct worker *w, size_t i, struct err *err)
{
	struct gc *g = ctx;
	/* keys[i] is workspaces/<ws>/<version>.json */
	const char *ws = g->keys[i] + strlen("workspaces/");
	const char *slash = strchr(ws, '/');
	char name[WSYNC_WS_MAX + 1];
	snprintf(name, sizeof name, "%.*s", (int)(slash - ws), ws);
	struct wsync_manifest m;
	int r = manifest_load(g->s, name, strtoull(slash + 1, NULL, 10), &m, err);
	if (r == -ENOENT)
		return 0; /* deleted meanwhile: names nothing */
	if (r < 0)
		return r;
	pthread_mutex_lock(&g->lock);
	for (size_t k = 0; k < m.n; k++)
		hashset_add(&g->live, m.chunks[k].sha256);
	pthread_mutex_unlock(&g->lock);
	wsync_manifest_free(&m);
	return 0;
}

static int gc_delete_item(void *ctx, struct worker *w, size_t i, struct err *err)
{
	struct gc *g = ctx;
	if (!g->keys[i])
		return 0;
	int r = store_delete(g->s, g->keys[i], err);
	if (r == 0)
		atomic_fetch_add(&g->deleted, 1);
	return r;
}

/* Is key "workspaces/<valid ws>/<20 digits>.json"? */
static int is_manifest_key(const char *key)
{
	if (strncmp(key, "workspaces/", 11))
		return 0;
	const char *ws = key + 11, *slash = strchr(ws, '/');
	if (!slash || slash - ws > WSYNC_WS_MAX)
		return 0;
	char name[WSYNC_WS_MAX + 1];
	snprintf(name, sizeof name, "%.*s", (int)(slash - ws), ws);
	const char *v = slash + 1;
	return wsync_ws_check(name, NULL) == 0 && manifest_version(v) != 0; /* the versions list_versions sees */
}

int wsync_delete(struct store *s, const char *ws, struct err *err)
{
	int r = wsync_ws_check(ws, err);
	if (r < 0)
		return r;
	uint64_t *vers = NULL;
	size_t nv = 0, nm = 0, nc = 0;
	char **mkeys = NULL, **ckeys = NULL;
	struct gc g = { .s = s };
	pthread_mutex_init(&g.lock, NULL);
	pthread_rwlock_wrlock(&gc_lock);
	if ((r = list_versions(s, ws, &vers, &nv, err)) < 0)
		goto wrap;
	/* oldest first: until the last goes, the newest is still whole */
	for (size_t i = 0; i < nv; i++) {
		char *key = manifest_key(ws, vers[i]);
		r = store_delete(s, key, err);
		free(key);
		if (r < 0)
			goto wrap;
	}
	/* what do the remaining manifests reference? */
	if ((r = store_list(s, "workspaces/", &mkeys, &nm, err)) < 0)
		goto gcfail;
	size_t k = 0;
	for (size_t i = 0; i < nm; i++) {
		if (is_manifest_key(mkeys[i]))
			mkeys[k++] = mkeys[i];
		else
			free(mkeys[i]);
	}
	nm = k;
	g.keys = mkeys;
	if ((r = par_run(nm, gc_read_item, &g, err)) < 0)
		goto gcfail;
	hashset_seal(&g.live);
	struct hashset all = { 0 };
	r = list_chunks(s, &all, &ckeys, &nc, err);
	hashset_free(&all);
	if (r < 0)
		goto gcfail;
	for (size_t i = 0; i < nc; i++) {
		uint8_t sha[32];
		if (chunk_key_parse(ckeys[i], sha) < 0 || hashset_has(&g.live, sha)) {
			free(ckeys[i]);
			ckeys[i] = NULL; /* kept */
		}
	}
	g.keys = ckeys;
	if ((r = par_run(nc, gc_delete_item, &g, err)) < 0)
		goto gcfail;
	log_debug("workspace %s: deleted %zu manifests, %zu chunks", ws, nv, (size_t)atomic_load(&g.deleted));
	goto out;
gcfail:
	err_wrap(err, "collecting unreferenced chunks");
wrap:
	err_wrap(err, "workspace %s: delete", ws);
out:
	pthread_rwlock_unlock(&gc_lock);
	pthread_mutex_destroy(&g.lock);
	hashset_free(&g.live);
	store_keys_free(mkeys, nm);
	store_keys_free(ckeys, nc);
	free(vers);
	return r;
}
