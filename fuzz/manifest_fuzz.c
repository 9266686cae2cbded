// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for workspace manifests (src/store/wsync.c), which come
 * from the object store and are untrusted: wsync_manifest_parse must reject
 * bad input with a 400/413 message, and what it accepts must satisfy the
 * documented bounds (docs/sync-format.md) and survive a dump/parse round
 * trip unchanged. fuzz/replay.c supplies main() for make fuzz-replay.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/store/wsync.h"

#define MANIFEST_FUZZ_MAX (1u << 20)	/* inputs above this only test the size check */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MANIFEST_FUZZ_MAX)
		return 0;
	struct wsync_manifest m, m2;
	struct err err = { 0 };
	if (wsync_manifest_parse((const char *)data, size, &m, &err) != 0) {
		if (!err.msg[0] || (err.code != 400 && err.code != 413) || m.chunks || m.meta)
			abort();
		return 0;
	}
	if (m.version < 1 || m.disk_bytes > WSYNC_DISK_MAX || m.chunk_size != WSYNC_CHUNK ||
	    wsync_ws_check(m.ws, NULL) != 0 || (m.meta && !json_is_object(m.meta)))
		abort();
	uint64_t nchunks = (m.disk_bytes + WSYNC_CHUNK - 1) / WSYNC_CHUNK;
	for (size_t i = 0; i < m.n; i++)
		if (m.chunks[i].index >= nchunks || (i && m.chunks[i].index <= m.chunks[i - 1].index))
			abort();
	char *s = wsync_manifest_dump(&m);
	if (wsync_manifest_parse(s, strlen(s), &m2, &err) != 0)
		abort();
	if (m2.n != m.n || m2.version != m.version || m2.disk_bytes != m.disk_bytes || strcmp(m2.ws, m.ws) ||
	    strcmp(m2.created_at, m.created_at) || (m.n && memcmp(m2.chunks, m.chunks, m.n * sizeof *m.chunks)) ||
	    !json_equal(m.meta ? m.meta : json_null(), m2.meta ? m2.meta : json_null()))
		abort();
	free(s);
	wsync_manifest_free(&m);
	wsync_manifest_free(&m2);
	return 0;
}
