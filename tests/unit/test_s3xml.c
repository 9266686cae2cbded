// SPDX-License-Identifier: MIT
/* Unit tests for src/store/s3xml.c: entities, the element walk, ListObjectsV2 pages, error replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/store/s3xml.h"

static int get(const char *xml, const char *tag, struct buf *out)
{
	return s3xml_get(xml, strlen(xml), tag, out);
}

static void test_entities(void **state)
{
	struct buf b;
	buf_init(&b);
	assert_int_equal(get("<K>a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;</K>", "K", &b), 0);
	assert_string_equal((char *)b.data, "a&b<>\"'AB");
	assert_int_equal(get("<K></K>", "K", &b), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	/* a bad entity leaves nothing half-decoded */
	static const char *const bad[] = { "<K>ab&#0;</K>", "<K>ab&#200;</K>", "<K>ab&nbsp;</K>", "<K>ab&amp</K>",
					   "<K>ab&#;</K>", "<K>ab&#x;</K>", "<K>ab&#12345678901;</K>" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(get(bad[i], "K", &b), S3XML_EBAD);
		assert_int_equal(b.len, 0);
	}
	assert_int_equal(get("<K>x", "K", &b), S3XML_NONE);
	assert_int_equal(get("", "K", &b), S3XML_NONE);
	assert_int_equal(s3xml_get(NULL, 0, "K", &b), S3XML_NONE);
	buf_free(&b);
}

static void test_walk(void **state)
{
	const char *xml = "<Key>a</Key><Key>b&bad;</Key><Key>c</Key>";
	size_t n = strlen(xml), pos = 0;
	struct buf b;
	buf_init(&b);
	assert_int_equal(s3xml_next(xml, n, &pos, "Key", &b), 0);
	assert_string_equal((char *)b.data, "a");
	assert_int_equal(s3xml_next(xml, n, &pos, "Key", &b), S3XML_EBAD);
	assert_int_equal(s3xml_next(xml, n, &pos, "Key", &b), 0);
	assert_string_equal((char *)b.data, "c");
	assert_int_equal(pos, n);
	assert_int_equal(s3xml_next(xml, n, &pos, "Key", &b), S3XML_NONE);
	assert_int_equal(pos, n);
	buf_free(&b);
}

static void list(const char *xml, const char *prefix, int want, size_t nkeys, const char *const *keys,
		 const char *token)
{
	char **out = NULL;
	size_t cnt = 0, cap = 0;
	struct buf t;
	buf_init(&t);
	assert_int_equal(s3xml_list_page(xml, strlen(xml), prefix, &out, &cnt, &cap, &t), want);
	assert_int_equal(cnt, nkeys);
	for (size_t i = 0; i < cnt; i++) {
		assert_string_equal(out[i], keys[i]);
		free(out[i]);
	}
	free(out);
	if (token)
		assert_string_equal((char *)t.data, token);
	buf_free(&t);
}

static void test_list(void **state)
{
	static const char *const k1[] = { "chunks/0a/x", "a&b" };
	list("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t+1/=</NextContinuationToken>"
	     "<Contents><Key>p/chunks/0a/x</Key></Contents><Contents><Key>p/</Key></Contents>"
	     "<Contents><Key>other/y</Key></Contents><Contents><Key>p/bad&#0;</Key></Contents>"
	     "<Contents><Key>p/a&amp;b</Key></Contents></ListBucketResult>",
	     "p/", 1, 2, k1, "t+1/=");
	/* an undecodable key is skipped, not the end of the page */
	static const char *const k2[] = { "a", "c" };
	list("<IsTruncated>false</IsTruncated><Key>a</Key><Key>&zz;</Key><Key>c</Key>", "", 0, 2, k2, NULL);
	/* a NUL inside a key: not ours */
	static const char nul[] = "<Key>a\0b</Key><IsTruncated>false</IsTruncated>";
	char **out = NULL;
	size_t cnt = 0, cap = 0;
	struct buf t;
	buf_init(&t);
	assert_int_equal(s3xml_list_page(nul, sizeof nul - 1, "", &out, &cnt, &cap, &t), 0);
	assert_int_equal(cnt, 0);
	/* truncated without a usable token */
	list("<IsTruncated>true</IsTruncated>", "", S3XML_EBAD, 0, NULL, NULL);
	list("<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken>", "", S3XML_EBAD, 0, NULL,
	     NULL);
	static const char tnul[] = "<IsTruncated>true</IsTruncated><NextContinuationToken>a\0b</NextContinuationToken>";
	assert_int_equal(s3xml_list_page(tnul, sizeof tnul - 1, "", &out, &cnt, &cap, &t), S3XML_EBAD);
	list("", "", 0, 0, NULL, NULL);
	buf_free(&t);
	free(out);
}

static void test_error(void **state)
{
	const char *xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>a &amp; b</Message></Error>";
	struct buf code, msg;
	buf_init(&code);
	buf_init(&msg);
	assert_true(s3xml_is_error(xml, strlen(xml)));
	s3xml_error(xml, strlen(xml), &code, &msg);
	assert_string_equal((char *)code.data, "NoSuchKey");
	assert_string_equal((char *)msg.data, "a & b");
	const char *bad = "<Error><Code>Bad&x;</Code></Error>";
	s3xml_error(bad, strlen(bad), &code, &msg);
	assert_int_equal(code.len, 0);
	assert_int_equal(msg.len, 0);
	assert_false(s3xml_is_error("<Ok/>", 5));
	assert_false(s3xml_is_error(NULL, 0));
	buf_free(&code);
	buf_free(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
