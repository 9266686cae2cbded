/* SPDX-License-Identifier: MIT */
/*
 * Encoder and incremental decoder for agent frames (include/mags/proto.h,
 * docs/agent-protocol.md). Used by both magsd and mags-agent; no I/O here.
 *
 * Key/value payloads are a sequence of records:
 *     u8 klen, key[klen], u32 vlen (LE), value[vlen]
 * Keys are ASCII and may repeat (e.g. "env"); values are arbitrary bytes.
 */
#ifndef MAGS_LIB_PROTO_H
#define MAGS_LIB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mags/proto.h"

struct proto_dec {
	struct buf in;	/* bytes received and not yet consumed */
	size_t off;	/* start of the next frame within in */
};

void proto_dec_init(struct proto_dec *d);
void proto_dec_free(struct proto_dec *d);
/* Appends received bytes. Frames returned earlier stay valid until the next feed. */
void proto_dec_feed(struct proto_dec *d, const void *data, size_t n);
/*
 * Returns 1 and fills *f when a whole frame is buffered (f->payload points into
 * the decoder and stays valid until the next proto_dec_feed), 0 when more bytes
 * are needed, PROTO_ETOOBIG when the peer announced an oversized frame (the
 * stream cannot be resynchronised; drop the connection).
 */
int proto_dec_next(struct proto_dec *d, struct agent_frame *f);

/* Appends one whole frame to out. len must be <= AGENT_FRAME_MAX. */
void proto_frame_put(struct buf *out, uint16_t type, uint32_t chan, const void *payload, size_t len);

void proto_kv_put(struct buf *b, const char *key, const void *val, size_t vlen);
void proto_kv_puts(struct buf *b, const char *key, const char *val);

struct proto_kv_iter {
	const uint8_t *p;
	size_t len;
	size_t off;
};

void proto_kv_iter_init(struct proto_kv_iter *it, const uint8_t *p, size_t len);
/* Returns 1 with the next record, 0 at the end, PROTO_EBADKV when malformed. */
int proto_kv_next(struct proto_kv_iter *it, const char **key, size_t *klen, const uint8_t **val, size_t *vlen);
/*
 * Parses a KV value holding a decimal number (1 to 19 ASCII digits, so it
 * always fits in 64 bits). Returns 0 with *out set, or PROTO_EBADKV.
 */
int proto_kv_u64(const uint8_t *val, size_t vlen, uint64_t *out);
/* True when key (klen bytes) equals the C string name. */
int proto_kv_is(const char *key, size_t klen, const char *name);

/* Writes an EXIT payload; returns its length (12, or 16 with AGENT_EXIT_RESTART). */
size_t proto_exit_encode(uint8_t out[AGENT_EXIT_LEN], const struct agent_exit *e);
/* Returns 0, or PROTO_EBADKV unless len is 16 with AGENT_EXIT_RESTART set, or 12 without. */
int proto_exit_decode(const uint8_t *p, size_t len, struct agent_exit *e);

#endif
