// SPDX-License-Identifier: MIT
/* Unit tests for src/lib/proto.c: the agent frame format (docs/agent-protocol.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static void put_hdr(uint8_t h[AGENT_FRAME_HDR], uint32_t len, uint16_t type, uint16_t flags, uint32_t chan)
{
	h[0] = (uint8_t)len;
	h[1] = (uint8_t)(len >> 8);
	h[2] = (uint8_t)(len >> 16);
	h[3] = (uint8_t)(len >> 24);
	h[4] = (uint8_t)type;
	h[5] = (uint8_t)(type >> 8);
	h[6] = (uint8_t)flags;
	h[7] = (uint8_t)(flags >> 8);
	h[8] = (uint8_t)chan;
	h[9] = (uint8_t)(chan >> 8);
	h[10] = (uint8_t)(chan >> 16);
	h[11] = (uint8_t)(chan >> 24);
}

/* The encoder's bytes are exactly the documented layout. */
static void test_frame_layout(void **state)
{
	struct buf b;
	buf_init(&b);
	proto_frame_put(&b, MSG_STDOUT, 0x01020304, "hi", 2);
	uint8_t want[AGENT_FRAME_HDR + 2];
	put_hdr(want, 2, MSG_STDOUT, 0, 0x01020304);
	memcpy(want + AGENT_FRAME_HDR, "hi", 2);
	assert_int_equal(b.len, sizeof want);
	assert_memory_equal(b.data, want, sizeof want);
	buf_free(&b);
}

static void test_round_trip(void **state)
{
	struct buf b;
	struct proto_dec d;
	struct agent_frame f;
	buf_init(&b);
	proto_frame_put(&b, MSG_HELLO, 0, "abc", 3);
	proto_frame_put(&b, MSG_STDERR, 7, NULL, 0);
	proto_frame_put(&b, MSG_EXEC, 0xffffffffu, "x", 1);
	proto_dec_init(&d);
	proto_dec_feed(&d, b.data, b.len);

	assert_int_equal(proto_dec_next(&d, &f), 1);
	assert_int_equal(f.type, MSG_HELLO);
	assert_int_equal(f.chan, 0);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.payload, "abc", 3);

	assert_int_equal(proto_dec_next(&d, &f), 1);
	assert_int_equal(f.type, MSG_STDERR);
	assert_int_equal(f.chan, 7);
	assert_int_equal(f.len, 0);

	assert_int_equal(proto_dec_next(&d, &f), 1);
	assert_int_equal(f.type, MSG_EXEC);
	assert_int_equal(f.chan, 0xffffffffu);
	assert_int_equal(f.len, 1);

	assert_int_equal(proto_dec_next(&d, &f), 0);
	assert_int_equal(proto_dec_next(&d, &f), 0);
	proto_dec_free(&d);
	buf_free(&b);
}

/* Frames split at every possible byte boundary decode the same. */
static void test_byte_by_byte(void **state)
{
	struct buf b;
	struct proto_dec d;
	struct agent_frame f;
	uint8_t big[3000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	buf_init(&b);
	proto_frame_put(&b, MSG_STDOUT, 1, big, sizeof big);
	proto_frame_put(&b, MSG_PING, 0, "p", 1);
	proto_frame_put(&b, MSG_EXIT, 2, "0123456789ab", 12);
	proto_dec_init(&d);
	int got = 0;
	for (size_t i = 0; i < b.len; i++) {
		proto_dec_feed(&d, b.data + i, 1);
		int r;
		while ((r = proto_dec_next(&d, &f)) == 1) {
			got++;
			if (got == 1) {
				assert_int_equal(i, AGENT_FRAME_HDR + sizeof big - 1);
				assert_int_equal(f.len, sizeof big);
				assert_memory_equal(f.payload, big, sizeof big);
			} else if (got == 2) {
				assert_int_equal(f.type, MSG_PING);
				assert_memory_equal(f.payload, "p", 1);
			} else {
				assert_int_equal(f.type, MSG_EXIT);
				assert_int_equal(f.chan, 2);
				assert_int_equal(i, b.len - 1);
			}
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, 3);
	proto_dec_free(&d);
	buf_free(&b);
}

/* A frame stays valid after proto_dec_next() returns the next one (until the next feed). */
static void test_payload_stability(void **state)
{
	struct buf b;
	struct proto_dec d;
	struct agent_frame f1, f2;
	buf_init(&b);
	proto_frame_put(&b, MSG_STDOUT, 1, "first", 5);
	proto_frame_put(&b, MSG_STDOUT, 1, "second", 6);
	proto_dec_init(&d);
	proto_dec_feed(&d, b.data, b.len);
	assert_int_equal(proto_dec_next(&d, &f1), 1);
	assert_int_equal(proto_dec_next(&d, &f2), 1);
	assert_memory_equal(f1.payload, "first", 5);
	assert_memory_equal(f2.payload, "second", 6);
	proto_dec_free(&d);
	buf_free(&b);
}

static void test_flags_ignored(void **state)
{
	uint8_t fr[AGENT_FRAME_HDR + 1];
	struct proto_dec d;
	struct agent_frame f;
	put_hdr(fr, 1, MSG_PING, 0xbeef, 0);
	fr[AGENT_FRAME_HDR] = 'z';
	proto_dec_init(&d);
	proto_dec_feed(&d, fr, sizeof fr);
	assert_int_equal(proto_dec_next(&d, &f), 1);
	assert_int_equal(f.flags, 0xbeef);
	assert_int_equal(f.type, MSG_PING);
	proto_dec_free(&d);
}

static void test_oversize(void **state)
{
	uint8_t h[AGENT_FRAME_HDR];
	struct proto_dec d;
	struct agent_frame f;

	/* exactly the limit is fine (needs the bytes) ... */
	put_hdr(h, AGENT_FRAME_MAX, MSG_STDIN, 0, 1);
	proto_dec_init(&d);
	proto_dec_feed(&d, h, sizeof h);
	assert_int_equal(proto_dec_next(&d, &f), 0);
	uint8_t *body = calloc(1, AGENT_FRAME_MAX);
	assert_non_null(body);
	proto_dec_feed(&d, body, AGENT_FRAME_MAX);
	assert_int_equal(proto_dec_next(&d, &f), 1);
	assert_int_equal(f.len, AGENT_FRAME_MAX);
	free(body);
	proto_dec_free(&d);

	/* ... one more byte is not, as soon as the header is complete */
	put_hdr(h, AGENT_FRAME_MAX + 1, MSG_STDIN, 0, 1);
	proto_dec_init(&d);
	proto_dec_feed(&d, h, sizeof h - 1);
	assert_int_equal(proto_dec_next(&d, &f), 0);
	proto_dec_feed(&d, h + sizeof h - 1, 1);
	assert_int_equal(proto_dec_next(&d, &f), PROTO_ETOOBIG);
	assert_int_equal(proto_dec_next(&d, &f), PROTO_ETOOBIG);
	proto_dec_free(&d);

	put_hdr(h, 0xffffffffu, MSG_STDIN, 0, 1);
	proto_dec_init(&d);
	proto_dec_feed(&d, h, sizeof h);
	assert_int_equal(proto_dec_next(&d, &f), PROTO_ETOOBIG);
	proto_dec_free(&d);
}

/* Collects every record; returns the iterator's final result. */
static int kv_count(const uint8_t *p, size_t n, int *records)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int r;
	*records = 0;
	proto_kv_iter_init(&it, p, n);
	while ((r = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1)
		(*records)++;
	if (r != 1) {
		assert_null(k);
		assert_null(v);
		assert_int_equal(kl, 0);
		assert_int_equal(vl, 0);
	}
	return r;
}

static void test_kv_round_trip(void **state)
{
	struct buf b;
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	buf_init(&b);
	proto_kv_puts(&b, "cmd", "echo hi");
	proto_kv_puts(&b, "env", "A=1");
	proto_kv_puts(&b, "env", "B=2");
	proto_kv_put(&b, "data", "\0\1\2", 3);
	proto_kv_puts(&b, "empty", "");

	proto_kv_iter_init(&it, b.data, b.len);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_true(proto_kv_is(k, kl, "cmd"));
	assert_int_equal(vl, 7);
	assert_memory_equal(v, "echo hi", 7);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_true(proto_kv_is(k, kl, "env"));
	assert_memory_equal(v, "A=1", 3);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_true(proto_kv_is(k, kl, "env"));
	assert_memory_equal(v, "B=2", 3);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_true(proto_kv_is(k, kl, "data"));
	assert_false(proto_kv_is(k, kl, "dat"));
	assert_false(proto_kv_is(k, kl, "datax"));
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "\0\1\2", 3);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_true(proto_kv_is(k, kl, "empty"));
	assert_int_equal(vl, 0);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 0);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 0);

	/* the documented bytes of one record */
	static const uint8_t rec[] = { 3, 'c', 'm', 'd', 2, 0, 0, 0, 'h', 'i' };
	assert_memory_equal(b.data, rec, 4);
	int n;
	assert_int_equal(kv_count(rec, sizeof rec, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kv_count(rec, 0, &n), 0);
	assert_int_equal(n, 0);
	buf_free(&b);
}

static void test_kv_malformed(void **state)
{
	int n;
	/* zero-length key */
	static const uint8_t zk[] = { 0, 0, 0, 0, 0 };
	assert_int_equal(kv_count(zk, sizeof zk, &n), PROTO_EBADKV);
	/* key runs past the end */
	static const uint8_t tk[] = { 5, 'a', 'b' };
	assert_int_equal(kv_count(tk, sizeof tk, &n), PROTO_EBADKV);
	/* vlen field truncated */
	static const uint8_t tl[] = { 1, 'a', 1, 0 };
	assert_int_equal(kv_count(tl, sizeof tl, &n), PROTO_EBADKV);
	/* value shorter than vlen */
	static const uint8_t tv[] = { 1, 'a', 3, 0, 0, 0, 'x', 'y' };
	assert_int_equal(kv_count(tv, sizeof tv, &n), PROTO_EBADKV);
	/* vlen that would overflow an addition */
	static const uint8_t ov[] = { 1, 'a', 0xff, 0xff, 0xff, 0xff, 'x' };
	assert_int_equal(kv_count(ov, sizeof ov, &n), PROTO_EBADKV);
	static const uint8_t ov2[] = { 1, 'a', 0xfc, 0xff, 0xff, 0xff, 'x' };
	assert_int_equal(kv_count(ov2, sizeof ov2, &n), PROTO_EBADKV);
	/* a good record followed by garbage: the good one is returned first */
	static const uint8_t gg[] = { 1, 'a', 1, 0, 0, 0, 'x', 1 };
	assert_int_equal(kv_count(gg, sizeof gg, &n), PROTO_EBADKV);
	assert_int_equal(n, 1);
	/* a lone byte */
	static const uint8_t lone[] = { 1 };
	assert_int_equal(kv_count(lone, sizeof lone, &n), PROTO_EBADKV);
}

/* Keys longer than 255 bytes are cut to 255 by the encoder, never wrapped. */
static void test_kv_long_key(void **state)
{
	char key[300];
	memset(key, 'k', sizeof key - 1);
	key[sizeof key - 1] = 0;
	struct buf b;
	buf_init(&b);
	proto_kv_puts(&b, key, "v");
	assert_int_equal(b.data[0], 255);
	assert_int_equal(b.len, 1 + 255 + 4 + 1);
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	proto_kv_iter_init(&it, b.data, b.len);
	assert_int_equal(proto_kv_next(&it, &k, &kl, &v, &vl), 1);
	assert_int_equal(kl, 255);
	assert_int_equal(vl, 1);
	buf_free(&b);
}

static void test_kv_u64(void **state)
{
	uint64_t v = 1;
	assert_int_equal(proto_kv_u64((const uint8_t *)"0", 1, &v), 0);
	assert_true(v == 0);
	assert_int_equal(proto_kv_u64((const uint8_t *)"1764400000123456789", 19, &v), 0);
	assert_true(v == 1764400000123456789ULL);
	assert_int_equal(proto_kv_u64((const uint8_t *)"9999999999999999999", 19, &v), 0);
	assert_true(v == 9999999999999999999ULL);
	assert_int_equal(proto_kv_u64((const uint8_t *)"10000000000000000000", 20, &v), PROTO_EBADKV);
	assert_int_equal(proto_kv_u64((const uint8_t *)"", 0, &v), PROTO_EBADKV);
	assert_int_equal(proto_kv_u64((const uint8_t *)"-1", 2, &v), PROTO_EBADKV);
	assert_int_equal(proto_kv_u64((const uint8_t *)"12a", 3, &v), PROTO_EBADKV);
	assert_int_equal(proto_kv_u64((const uint8_t *)" 1", 2, &v), PROTO_EBADKV);
	assert_true(v == 0);
}

static void test_exit_restart(void **state)
{
	struct agent_exit in = { .code = 1, .flags = AGENT_EXIT_RESTART, .restart_ms = 4000 }, out;
	uint8_t p[AGENT_EXIT_LEN];
	assert_int_equal(proto_exit_encode(p, &in), 16);
	assert_int_equal(proto_exit_decode(p, 16, &out), 0);
	assert_int_equal(out.code, 1);
	assert_int_equal(out.flags, AGENT_EXIT_RESTART);
	assert_int_equal(out.restart_ms, 4000);
	assert_int_equal(proto_exit_decode(p, 12, &out), PROTO_EBADKV); /* the flag without its delay */
	assert_int_equal(proto_exit_decode(p, 13, &out), PROTO_EBADKV);
	assert_int_equal(proto_exit_decode(p, 12, &out), PROTO_EBADKV); /* the flag without its delay */
}

static void test_exit(void **state)
{
	struct agent_exit in = { .code = 124, .signal = 9, .flags = AGENT_EXIT_TIMEOUT }, out;
	uint8_t p[AGENT_EXIT_LEN];
	assert_int_equal(proto_exit_encode(p, &in), 12);
	static const uint8_t want[12] = { 124, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0 };
	assert_memory_equal(p, want, 12);
	assert_int_equal(proto_exit_decode(p, 12, &out), 0);
	assert_int_equal(out.code, 124);
	assert_int_equal(out.signal, 9);
	assert_int_equal(out.flags, AGENT_EXIT_TIMEOUT);

	in.code = -1;
	in.signal = 0;
	in.flags = 0xffffffffu & ~AGENT_EXIT_RESTART;
	proto_exit_encode(p, &in);
	assert_int_equal(proto_exit_decode(p, 12, &out), 0);
	assert_int_equal(out.code, -1);
	assert_int_equal(out.flags, 0xffffffffu & ~AGENT_EXIT_RESTART);

	memset(&out, 0x55, sizeof out);
	assert_int_equal(proto_exit_decode(p, 11, &out), PROTO_EBADKV);
	assert_int_equal(out.code, 0);
	assert_int_equal(out.signal, 0);
	assert_int_equal(out.flags, 0);
	assert_int_equal(proto_exit_decode(p, 13, &out), PROTO_EBADKV);
	assert_int_equal(proto_exit_decode(p, 0, &out), PROTO_EBADKV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_layout),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_payload_stability),
		cmocka_unit_test(test_flags_ignored),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_kv_round_trip),
		cmocka_unit_test(test_kv_malformed),
		cmocka_unit_test(test_kv_long_key),
		cmocka_unit_test(test_kv_u64),
		cmocka_unit_test(test_exit),
		cmocka_unit_test(test_exit_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
