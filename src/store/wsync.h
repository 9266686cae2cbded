/* SPDX-License-Identifier: MIT */
/*
 * Workspace sync: pushes a sparse disk image to an object store as
 * content-addressed, zstd-compressed 1 MiB chunks plus one manifest per
 * version, and pulls it back. The format is docs/sync-format.md:
 *   chunks/<first 2 hex>/<sha256 hex of the uncompressed chunk>
 *   workspaces/<ws>/<version, 20 digits>.json
 * The manifest is written last, so a crash mid-push leaves the previous
 * version whole. Pushes are incremental (chunks already in the store are not
 * uploaded again) and deduplicated across workspaces.
 *
 * Threads: every function may run concurrently with the others on the same
 * store; a process-wide lock keeps wsync_delete's garbage collection apart
 * from pushes in this process (not in other processes: see the doc).
 * Each call runs WSYNC_THREADS worker threads of its own (env MAGS_WSYNC_THREADS).
 */
#ifndef MAGS_WSYNC_H
#define MAGS_WSYNC_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define WSYNC_CHUNK (1u << 20)		/* 1 MiB */
#define WSYNC_FORMAT 1			/* manifest "format" */
#define WSYNC_WS_MAX 64			/* bytes of a workspace name */
#define WSYNC_DISK_MAX (1ull << 40)	/* largest disk a manifest may describe (1 TiB) */
#define WSYNC_MANIFEST_MAX (96u << 20)	/* bytes of a manifest */
#define WSYNC_KEEP 2			/* manifests kept per workspace */
#define WSYNC_THREADS 8			/* parallel chunk transfers per call */
#define WSYNC_ZSTD_LEVEL 1

struct wsync_stats {
	uint64_t disk_bytes;	/* apparent size */
	uint64_t data_chunks;	/* non-zero chunks in this version */
	uint64_t uploaded_chunks, uploaded_bytes;	/* moved by this push (compressed bytes) */
	uint64_t downloaded_bytes;
	uint64_t version;
	int64_t ms;
};

struct wsync_chunk {
	uint64_t index;		/* offset / chunk_size */
	uint8_t sha256[32];	/* of the uncompressed chunk */
};

/* A parsed manifest (docs/sync-format.md). */
struct wsync_manifest {
	char ws[WSYNC_WS_MAX + 1];
	uint64_t version;		/* >= 1 */
	uint64_t disk_bytes;		/* <= WSYNC_DISK_MAX */
	uint32_t chunk_size;		/* == WSYNC_CHUNK */
	char created_at[40];		/* as written, may be "" */
	json_t *meta;			/* owned; an object or NULL */
	size_t n;			/* chunks, strictly increasing index, each < disk chunks */
	struct wsync_chunk *chunks;	/* owned */
};

/* Pushes disk_path as the next version of workspace ws. meta: extra JSON object stored in the manifest (may be NULL; borrowed). */
int wsync_push(struct store *s, const char *ws, const char *disk_path, json_t *meta, struct wsync_stats *st, struct err *err);
/* Writes the latest version of ws to disk_path (created or truncated; sparse; written via a temp file + rename so a failed pull leaves no partial file). -ENOENT when ws has no version. */
int wsync_pull(struct store *s, const char *ws, const char *disk_path, struct wsync_stats *st, struct err *err);
/* Latest version number and its meta object (new reference, may be NULL arg). -ENOENT when none. */
int wsync_latest(struct store *s, const char *ws, uint64_t *version, json_t **meta, struct err *err);
/* Deletes every manifest of ws, then the chunks no other workspace's manifest
 * references. 0 also when ws had no manifest (the chunk GC still runs). A
 * manifest of another workspace that cannot be read stops the GC (error):
 * chunks are deleted only when provably unreferenced. */
int wsync_delete(struct store *s, const char *ws, struct err *err);

/* Parses an untrusted manifest of len bytes into m (cleared first; on error m
 * holds nothing to free). -400 with err set on any malformed or out-of-bounds
 * field, -413 when len > WSYNC_MANIFEST_MAX. */
int wsync_manifest_parse(const char *json, size_t len, struct wsync_manifest *m, struct err *err);
void wsync_manifest_free(struct wsync_manifest *m);
/* The manifest as compact JSON (allocated; the caller frees). */
char *wsync_manifest_dump(const struct wsync_manifest *m);
/* 0 when name is a valid workspace name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}), else -400. */
int wsync_ws_check(const char *name, struct err *err);

#endif
