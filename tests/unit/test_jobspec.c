// SPDX-License-Identifier: MIT
/* Unit tests for job submission parsing (src/daemon/jobspec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/daemon/jobspec.h"
#include "xmalloc.h"

static int parse(const char *body, struct jobspec *js, struct err *err)
{
	return jobspec_parse(body, strlen(body), js, err);
}

static void expect_reject(const char *body, const char *needle)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse(body, &js, &err), -400);
	assert_int_equal(err.code, 400);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	assert_null(js.script);
}

static void test_minimal(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\": \"echo hi\"}", &js, &err), 0);
	assert_string_equal(js.script, "echo hi");
	assert_false(js.file);
	assert_int_equal(js.timeout, 0);
	jobspec_free(&js);
}

static void test_all_supported(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\":\"#!/bin/sh\\necho\",\"type\":\"file\",\"timeout\":30,\"ephemeral\":true,"
			       "\"workspace\":null,\"persist\":false,\"files\":[]}", &js, &err), 0);
	assert_true(js.file);
	assert_int_equal(js.timeout, 30);
	assert_true(js.ephemeral);
	jobspec_free(&js);
}

static void test_rejects(void **state)
{
	expect_reject("", "malformed JSON");
	expect_reject("{\"script\":", "malformed JSON");
	expect_reject("[]", "JSON object");
	expect_reject("{}", "\"script\"");
	expect_reject("{\"script\": 5}", "\"script\" must be a string");
	expect_reject("{\"script\": \"\"}", "empty");
	expect_reject("{\"script\": \"a\\u0000b\"}", "NUL");
	expect_reject("{\"script\": \"x\", \"timeout\": \"x\"}", "\"timeout\"");
	expect_reject("{\"script\": \"x\", \"timeout\": -1}", "\"timeout\"");
	expect_reject("{\"script\": \"x\", \"timeout\": 1.5}", "\"timeout\"");
	expect_reject("{\"script\": \"x\", \"timeout\": 86401}", "\"timeout\"");
	expect_reject("{\"script\": \"x\", \"type\": \"binary\"}", "\"type\"");
	expect_reject("{\"script\": \"x\", \"ephemeral\": 1}", "\"ephemeral\"");
	expect_reject("{\"script\": \"x\", \"colour\": 1}", "unknown field \"colour\"");
	expect_reject("{\"script\": \"x\", \"script\": \"y\"}", "malformed JSON");
	expect_reject("{\"script\": \"x\", \"workspace\": \"w\"}", "\"workspace\" is not supported");
}

static void test_script_limit(void **state)
{
	size_t n = JOB_SCRIPT_MAX + 1;
	char *body = xmalloc(n + 32);
	memcpy(body, "{\"script\":\"", 11);
	memset(body + 11, 'a', n);
	memcpy(body + 11 + n, "\"}", 3);
	expect_reject(body, "limit");
	free(body);
}

static void test_too_big(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(jobspec_parse("{}", API_BODY_MAX + 1, &js, &err), -413);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_all_supported),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_script_limit),
		cmocka_unit_test(test_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
