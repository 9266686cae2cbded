// SPDX-License-Identifier: MIT
/* Unit tests for src/lib/utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void check(const char *in, size_t n, const char *want)
{
	struct buf b;
	buf_init(&b);
	utf8_sanitize((const uint8_t *)in, n, &b);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data ? (const char *)b.data : "", want, b.len);
	buf_free(&b);
}

static void test_sanitize(void **state)
{
	check("hello", 5, "hello");
	check("h\xc3\xa9llo", 6, "h\xc3\xa9llo");
	check("\xff", 1, "\xef\xbf\xbd");
	check("a\xc3", 2, "a\xef\xbf\xbd");
	check("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd");		/* overlong '/' */
	check("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");	/* surrogate */
	check("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
	check("", 0, "");
}

static void test_incomplete_tail(void **state)
{
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"abc", 3), 0);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"a\xc3", 2), 1);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"a\xe2\x82", 3), 2);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"a\xe2\x82\xac", 4), 0);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"\xf0\x9f\x98", 3), 3);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"\x80\x80\x80", 3), 0);
	assert_int_equal(utf8_incomplete_tail((const uint8_t *)"", 0), 0);
}

static void test_json_string(void **state)
{
	json_t *j = utf8_json_string("bad \xff byte");
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "bad \xef\xbf\xbd byte");
	json_decref(j);
	j = utf8_json_string(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_incomplete_tail),
		cmocka_unit_test(test_json_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
