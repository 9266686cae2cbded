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

static void test_always_on(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\":\"srv\",\"always_on\":true,\"workspace\":\"api\",\"startup_command\":\"echo up\"}",
			       &js, &err), 0);
	assert_true(js.always_on);
	assert_true(js.persist); /* persistent by default */
	assert_string_equal(js.startup, "echo up");
	assert_int_equal(js.idle_timeout, -1);
	jobspec_free(&js);
	assert_int_equal(parse("{\"script\":\"srv\",\"always_on\":true,\"workspace\":\"api\",\"persist\":false,"
			       "\"idle_timeout\":0}", &js, &err), 0);
	assert_false(js.persist);
	assert_int_equal(js.idle_timeout, 0);
	jobspec_free(&js);
	assert_int_equal(parse("{\"script\":\"srv\",\"always_on\":true}", &js, &err), 0);
	assert_false(js.persist);
	jobspec_free(&js);
}

static void test_patch(void **state)
{
	struct job_patch p;
	struct err err = { 0 };
	const char *ok = "{\"always_on\": false, \"idle_timeout\": null, \"timeout\": 30}";
	assert_int_equal(jobspec_parse_patch(ok, strlen(ok), &p, &err), 0);
	assert_true(p.has_always_on && !p.always_on && p.has_idle && p.idle_timeout == -1 && p.has_timeout && p.timeout == 30);
	assert_int_equal(jobspec_parse_patch("{}", 2, &p, &err), 0);
	assert_false(p.has_always_on || p.has_idle || p.has_timeout);
	static const struct { const char *body, *want; } bad[] = {
		{ "[]", "JSON object" },
		{ "{\"always_on\": 1}", "\"always_on\" must be" },
		{ "{\"idle_timeout\": -2}", "\"idle_timeout\" must be" },
		{ "{\"idle_timeout\": \"5\"}", "\"idle_timeout\" must be" },
		{ "{\"timeout\": 0}", "\"timeout\" must be" },
		{ "{\"script\": \"x\"}", "unknown field \"script\"" },
		{ "{\"timeout\": 1, \"timeout\": 2}", "malformed JSON" },
		{ "{", "malformed JSON" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err_clear(&err);
		assert_int_equal(jobspec_parse_patch(bad[i].body, strlen(bad[i].body), &p, &err), -400);
		if (!strstr(err.msg, bad[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].body, err.msg, bad[i].want);
	}
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
	/* always-on, startup */
	expect_reject("{\"script\": \"x\", \"always_on\": 1}", "\"always_on\" must be true or false");
	expect_reject("{\"script\": \"x\", \"always_on\": true, \"ephemeral\": true}", "cannot be combined");
	expect_reject("{\"script\": \"x\", \"always_on\": true, \"workspace\": \"w\", \"base_image\": true}",
		      "cannot be combined");
	expect_reject("{\"script\": \"x\", \"idle_timeout\": 60}", "needs \"always_on\"");
	expect_reject("{\"script\": \"x\", \"always_on\": true, \"idle_timeout\": -1}", "\"idle_timeout\" must be");
	expect_reject("{\"script\": \"x\", \"always_on\": true, \"idle_timeout\": 604801}", "\"idle_timeout\" must be");
	expect_reject("{\"script\": \"x\", \"startup_command\": 5}", "\"startup_command\" must be a string");
	expect_reject("{\"script\": \"x\", \"startup_command\": \"\"}", "\"startup_command\" must not be empty");
	expect_reject("{\"script\": \"x\", \"startup_command\": \"a\\u0000\"}", "NUL");
	/* URLs and SSH */
	expect_reject("{\"script\": \"x\", \"url\": 1}", "\"url\" must be true or false");
	expect_reject("{\"script\": \"x\", \"port\": 0}", "\"port\"");
	expect_reject("{\"script\": \"x\", \"port\": 65536}", "\"port\"");
	expect_reject("{\"script\": \"x\", \"port\": \"80\"}", "\"port\"");
	expect_reject("{\"script\": \"x\", \"ssh\": \"yes\"}", "\"ssh\" must be");
	expect_reject("{\"script\": \"x\", \"ssh_public_key\": \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo\"}",
		      "needs \"ssh\"");
	expect_reject("{\"script\": \"x\", \"ssh\": true, \"ssh_public_key\": \"hello\"}", "OpenSSH public key");
	expect_reject("{\"script\": \"x\", \"ssh\": true, \"ssh_public_key\": \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo\\nssh-rsa AAAAB3NzaC1yc2EAAAA\"}",
		      "OpenSSH public key");
	expect_reject("{\"script\": \"x\", \"ssh\": true, \"ssh_public_key\": \"command=\\\"x\\\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo\"}",
		      "OpenSSH public key");
	expect_reject("{\"script\": \"x\", \"ssh\": true, \"ssh_public_key\": \"ssh-ed25519 AAAA\\u0001AAAAAAAAAAAAAAAAAAAAAA\"}",
		      "OpenSSH public key");
	/* workspaces */
	expect_reject("{\"script\": \"x\", \"workspace\": \"\"}", "workspace name");
	expect_reject("{\"script\": \"x\", \"workspace\": \"-a\"}", "workspace name");
	expect_reject("{\"script\": \"x\", \"workspace\": \"a/b\"}", "workspace name");
	expect_reject("{\"script\": \"x\", \"workspace\": \"a\\u0000b\"}", "NUL");
	expect_reject("{\"script\": \"x\", \"workspace\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "workspace name");
	expect_reject("{\"script\": \"x\", \"workspace\": 5}", "workspace name");
	expect_reject("{\"script\": \"x\", \"from\": \"..\"}", "\"from\" must be");
	expect_reject("{\"script\": \"x\", \"persist\": true}", "\"persist\" needs");
	expect_reject("{\"script\": \"x\", \"base_image\": true}", "\"base_image\" needs");
	expect_reject("{\"script\": \"x\", \"persist\": \"yes\", \"workspace\": \"w\"}", "true or false");
	expect_reject("{\"script\": \"x\", \"ephemeral\": true, \"workspace\": \"w\"}", "cannot be combined");
	expect_reject("{\"script\": \"x\", \"ephemeral\": true, \"from\": \"b\"}", "cannot be combined");
	expect_reject("{\"script\": \"x\", \"workspace\": \"w\", \"from\": \"w\"}", "itself");
	/* files */
	expect_reject("{\"script\": \"x\", \"files\": {}}", "must be an array");
	expect_reject("{\"script\": \"x\", \"files\": [\"a\"]}", "files[0] must be an object");
	expect_reject("{\"script\": \"x\", \"files\": [{}]}", "no \"name\"");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"/etc/passwd\"}]}", "absolute");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"../x\"}]}", "\"..\" component");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a/../../x\"}]}", "\"..\" component");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a//b\"}]}", "empty");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a/\"}]}", "ends with");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"\"}]}", "empty");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\\u0000b\"}]}", "NUL");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\", \"mode\": 4096}]}", "mode");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\", \"size\": -1}]}", "size");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\", \"content_base64\": \"!!\"}]}", "base64");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\", \"colour\": 1}]}", "unknown field");
	expect_reject("{\"script\": \"x\", \"files\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "twice");
}

static void test_url_ssh_fields(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\": \"x\", \"url\": true, \"port\": 3000, \"ssh\": true,"
			       " \"ssh_public_key\": \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo me@host\\n\"}", &js, &err), 0);
	assert_true(js.url);
	assert_int_equal(js.port, 3000);
	assert_true(js.ssh);
	assert_string_equal(js.ssh_key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo me@host"); /* newline trimmed */
	jobspec_free(&js);
	assert_int_equal(parse("{\"script\": \"x\", \"url\": true}", &js, &err), 0);
	assert_int_equal(js.port, 0); /* the default, JOB_URL_PORT_DEFAULT, is applied by the URL */
	assert_null(js.ssh_key);
	jobspec_free(&js);
	/* the names a URL may have */
	assert_true(url_label_ok("a"));
	assert_true(url_label_ok("my-app-2"));
	assert_false(url_label_ok(""));
	assert_false(url_label_ok("-a"));
	assert_false(url_label_ok("a-"));
	assert_false(url_label_ok("A"));
	assert_false(url_label_ok("a.b"));
	assert_false(url_label_ok("a_b"));
	char long_label[66];
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_false(url_label_ok(long_label));
	long_label[63] = '\0';
	assert_true(url_label_ok(long_label));
}

static void test_workspace_fields(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\":\"x\",\"workspace\":\"my-app_1.0\",\"persist\":true,\"base_image\":true,"
			       "\"from\":\"base\",\"files\":[{\"name\":\"d/a.txt\",\"mode\":493,\"content_base64\":\"aGk=\"},"
			       "{\"name\":\"big.bin\",\"size\":104857600}]}", &js, &err), 0);
	assert_string_equal(js.workspace, "my-app_1.0");
	assert_true(js.persist);
	assert_true(js.base_image);
	assert_string_equal(js.from, "base");
	assert_int_equal(js.nfiles, 2);
	assert_string_equal(js.files[0].name, "d/a.txt");
	assert_int_equal(js.files[0].mode, 0755);
	assert_true(js.files[0].has_data);
	assert_int_equal(js.files[0].data.len, 2);
	assert_memory_equal(js.files[0].data.data, "hi", 2);
	assert_false(js.files[1].has_data);
	assert_int_equal(js.files[1].size, 104857600);
	assert_int_equal(js.files[1].mode, 0644);
	jobspec_free(&js);
	assert_true(ws_name_ok("a"));
	assert_false(ws_name_ok(".a"));
	assert_false(ws_name_ok("a b"));
}

static void test_image(void **state)
{
	struct jobspec js;
	struct err err = { 0 };
	assert_int_equal(parse("{\"script\":\"x\",\"image\":\"debian\"}", &js, &err), 0);
	assert_string_equal(js.image, "debian");
	jobspec_free(&js);
	assert_int_equal(parse("{\"script\":\"x\",\"image\":null}", &js, &err), 0);
	assert_null(js.image); /* the server's default */
	jobspec_free(&js);
	assert_int_equal(parse("{\"script\":\"x\",\"image\":\"my-img_2.0\"}", &js, &err), 0);
	assert_string_equal(js.image, "my-img_2.0");
	jobspec_free(&js);
	expect_reject("{\"script\": \"x\", \"image\": 5}", "\"image\" must be an image name");
	expect_reject("{\"script\": \"x\", \"image\": \"\"}", "\"image\" must be an image name");
	expect_reject("{\"script\": \"x\", \"image\": \"Debian\"}", "\"image\" must be an image name");
	expect_reject("{\"script\": \"x\", \"image\": \"../etc\"}", "\"image\" must be an image name");
	expect_reject("{\"script\": \"x\", \"image\": \"a/b\"}", "\"image\" must be an image name");
	expect_reject("{\"script\": \"x\", \"image\": \"a\\u0000b\"}", "malformed JSON"); /* jansson refuses NUL */
	expect_reject("{\"script\": \"x\", \"image\": \"abcdefghijabcdefghijabcdefghijabc\"}",
		      "\"image\" must be an image name");
	assert_true(image_name_ok("busybox"));
	assert_true(image_name_ok("0"));
	assert_false(image_name_ok("-x"));
	assert_false(image_name_ok(".x"));
	assert_false(image_name_ok("x y"));
	assert_false(image_name_ok(NULL));
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
		cmocka_unit_test(test_always_on),
		cmocka_unit_test(test_patch),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_workspace_fields),
		cmocka_unit_test(test_url_ssh_fields),
		cmocka_unit_test(test_script_limit),
		cmocka_unit_test(test_image),
		cmocka_unit_test(test_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
