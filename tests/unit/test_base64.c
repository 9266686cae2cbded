// SPDX-License-Identifier: MIT
/* Unit tests for src/lib/base64.c (RFC 4648 section 10 vectors and malformed input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

static const char *const vectors[][2] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_vectors(void **state)
{
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		struct buf b;
		buf_init(&b);
		base64_encode(vectors[i][0], strlen(vectors[i][0]), &b);
		assert_int_equal(b.len, strlen(vectors[i][1]));
		assert_int_equal(b.len, BASE64_ENCODED_LEN(strlen(vectors[i][0])));
		assert_memory_equal(b.data ? (char *)b.data : "", vectors[i][1], b.len);
		buf_reset(&b);
		assert_int_equal(base64_decode(vectors[i][1], strlen(vectors[i][1]), &b), 0);
		assert_int_equal(b.len, strlen(vectors[i][0]));
		assert_memory_equal(b.data ? (char *)b.data : "", vectors[i][0], b.len);
		buf_free(&b);
	}
}

static void test_all_bytes(void **state)
{
	uint8_t in[256];
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	for (size_t n = 0; n <= sizeof in; n += 37) {
		struct buf e, d;
		buf_init(&e);
		buf_init(&d);
		base64_encode(in, n, &e);
		assert_int_equal(base64_decode((char *)e.data, e.len, &d), 0);
		assert_int_equal(d.len, n);
		assert_memory_equal(d.data ? d.data : in, in, n);
		buf_free(&e);
		buf_free(&d);
	}
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm8=Zm8=", "Zm 9", "Zm9v\n", "=Zm9", "Zm=v",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct buf b;
		buf_init(&b);
		if (base64_decode(bad[i], strlen(bad[i]), &b) != -1)
			fail_msg("\"%s\" decoded", bad[i]);
		buf_free(&b);
	}
}

static void test_hex(void **state)
{
	static const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof in + 1];
	memset(out, 'x', sizeof out);
	hex_encode(in, sizeof in, out);
	assert_string_equal(out, "00017f80abff");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_all_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
