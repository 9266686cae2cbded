// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the agent wire format (src/lib/proto.c), the parser
 * both ends run on bytes from the other side: the input is fed to the frame
 * decoder in pieces whose sizes come from the input itself, and every frame's
 * payload goes through the key/value iterator and the exit decoder. Checks
 * the decoder's invariants and re-encodes each frame to compare bytes.
 * fuzz/replay.c supplies a main() that replays files without libFuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_payload(const struct agent_frame *f)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl, seen = 0;
	int r;
	proto_kv_iter_init(&it, f->payload, f->len);
	while ((r = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		/* every record lies inside the payload, after the previous one */
		if (kl == 0 || kl > 255 || (const uint8_t *)k < f->payload + seen)
			abort();
		if (v + vl > f->payload + f->len || (const uint8_t *)k + kl + 4 != v)
			abort();
		seen = (size_t)(v + vl - f->payload);
		(void)proto_kv_is(k, kl, "cmd");
		uint64_t num;
		if (proto_kv_u64(v, vl, &num) == 0 && (vl == 0 || vl > 19))
			abort(); /* only 1..19 digits parse */
	}
	if (r == 0 && seen != f->len)
		abort();
	if (r != 0 && r != PROTO_EBADKV)
		abort();

	struct agent_exit e;
	r = proto_exit_decode(f->payload, f->len, &e);
	if (r == 0 && f->len != 12 && f->len != 16)
		abort();
	if (r == 0) {
		uint8_t back[AGENT_EXIT_LEN];
		if (proto_exit_encode(back, &e) != f->len || memcmp(back, f->payload, f->len) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_dec d;
	struct buf re;
	size_t off = 0;
	/* the first byte picks the feed size, so splits are explored too */
	size_t step = size ? (size_t)data[0] % 64 + 1 : 1;

	proto_dec_init(&d);
	buf_init(&re);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		proto_dec_feed(&d, data + off, n);
		off += n;
		for (;;) {
			struct agent_frame f;
			int r = proto_dec_next(&d, &f);
			if (r == 0)
				break;
			if (r == PROTO_ETOOBIG)
				goto out; /* unrecoverable by contract */
			if (r != 1 || f.len > AGENT_FRAME_MAX)
				abort();
			check_payload(&f);
			/* encoding the frame again gives the same bytes, flags aside */
			buf_reset(&re);
			proto_frame_put(&re, f.type, f.chan, f.payload, f.len);
			if (re.len != AGENT_FRAME_HDR + f.len ||
			    memcmp(re.data + AGENT_FRAME_HDR, f.payload, f.len) != 0 ||
			    memcmp(re.data, f.payload - AGENT_FRAME_HDR, 6) != 0 ||
			    memcmp(re.data + 8, f.payload - AGENT_FRAME_HDR + 8, 4) != 0)
				abort();
		}
	}
out:
	buf_free(&re);
	proto_dec_free(&d);
	return 0;
}
