// SPDX-License-Identifier: MIT
/* Unit tests for src/cli/run_opts.c: `mags run` flags and the submit body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/cli/run_opts.h"

#define TEST_ARGS_MAX 40

/* run_opts_parse on {"run", args..., NULL}: the strings are copied, as argv is not const. */
static int parse_va(struct run_opts *o, struct err *e, const char *first, va_list ap)
{
	char *argv[TEST_ARGS_MAX];
	int argc = 0;
	argv[argc++] = strdup("run");
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < TEST_ARGS_MAX - 1);
		argv[argc++] = strdup(a);
	}
	argv[argc] = NULL;
	int r = run_opts_parse(argc, argv, o, e);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return r;
}

static int parse(struct run_opts *o, struct err *e, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	int r = parse_va(o, e, first, ap);
	va_end(ap);
	return r;
}

/* Expects a usage error whose message contains want. */
static void bad(const char *want, const char *first, ...)
{
	struct run_opts o;
	struct err e;
	va_list ap;
	va_start(ap, first);
	assert_int_equal(parse_va(&o, &e, first, ap), -1);
	va_end(ap);
	if (!strstr(e.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, want);
	run_opts_free(&o);
}

#define PARSE(o, e, ...) parse((o), (e), __VA_ARGS__, (const char *)NULL)
#define BAD(want, ...) bad((want), __VA_ARGS__, (const char *)NULL)

static void test_all_flags(void **state)
{
	struct run_opts o;
	struct err e;
	assert_int_equal(PARSE(&o, &e, "-w", "ws", "-p", "-f", "a.txt", "--file=b.txt", "--file", "c",
			       "--url", "--port", "3000", "--ssh", "--startup", "npm start", "--base-image",
			       "--from", "base", "--ephemeral", "--timeout", "30", "--always-on", "-v",
			       "echo hi"), 0);
	assert_string_equal(o.script, "echo hi");
	assert_string_equal(o.workspace, "ws");
	assert_true(o.persist && o.url && o.ssh && o.base_image && o.ephemeral && o.always_on && o.verbose);
	assert_int_equal(o.nfiles, 3);
	assert_string_equal(o.files[0], "a.txt");
	assert_string_equal(o.files[1], "b.txt");
	assert_string_equal(o.files[2], "c");
	assert_int_equal(o.port, 3000);
	assert_string_equal(o.startup, "npm start");
	assert_string_equal(o.from, "base");
	assert_int_equal(o.timeout, 30);
	assert_false(o.help);
	run_opts_free(&o);
}

static void test_script_forms(void **state)
{
	struct run_opts o;
	struct err e;
	/* SCRIPT may be several words; flags after it belong to it */
	assert_int_equal(PARSE(&o, &e, "-p", "echo", "a", "--timeout"), 0);
	assert_string_equal(o.script, "echo a --timeout");
	assert_int_equal(o.timeout, 0);
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--", "-x", "y"), 0);
	assert_string_equal(o.script, "-x y");
	run_opts_free(&o);
	/* clustered short flags and attached values */
	assert_int_equal(PARSE(&o, &e, "-pvwNAME", "true"), 0);
	assert_true(o.persist && o.verbose);
	assert_string_equal(o.workspace, "NAME");
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--timeout=86400", "--port=65535", "x"), 0);
	assert_int_equal(o.timeout, 86400);
	assert_int_equal(o.port, 65535);
	run_opts_free(&o);
	/* --help needs no SCRIPT */
	assert_int_equal(PARSE(&o, &e, "--help"), 0);
	assert_true(o.help);
	run_opts_free(&o);
}

static void test_bad(void **state)
{
	BAD("missing SCRIPT", "-p");
	bad("missing SCRIPT", (const char *)NULL);
	BAD("unknown flag --nope", "--nope", "x");
	BAD("unknown flag -z", "-z", "x");
	BAD("unknown flag -q", "-pq", "x");
	BAD("-w needs a value", "-w");
	BAD("--from needs a value", "--from");
	BAD("--timeout needs a value", "--timeout");
	BAD("--timeout: \"0\"", "--timeout", "0", "x");
	BAD("--timeout: \"-1\"", "--timeout", "-1", "x");
	BAD("--timeout: \"abc\"", "--timeout", "abc", "x");
	BAD("--timeout: \"10s\"", "--timeout", "10s", "x");
	BAD("--timeout: \"\"", "--timeout=", "x");
	BAD("--timeout: \"86401\"", "--timeout", "86401", "x");
	BAD("--timeout: \"99999999999999999999\"", "--timeout", "99999999999999999999", "x");
	BAD("--port: \"0\"", "--port", "0", "x");
	BAD("--port: \"65536\"", "--port", "65536", "x");
	BAD("--port: \"http\"", "--port", "http", "x");
	BAD("--url takes no value", "--url=yes", "x");
	BAD("workspace name is empty", "-w", "", "x");
	BAD("SCRIPT is empty", "");
}

static char *write_temp(const char *content, size_t len, mode_t mode)
{
	char tmpl[] = "/tmp/test_cli_args.XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	chmod(tmpl, mode);
	return strdup(tmpl);
}

static void test_json_inline(void **state)
{
	struct run_opts o;
	struct err e;
	json_t *j;
	assert_int_equal(PARSE(&o, &e, "-w", "ws", "--timeout", "5", "--ephemeral", "--startup", "s",
			       "--from", "b", "--port", "81", "--url", "--ssh", "--always-on", "--base-image",
			       "-p", "echo hi"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"always_on\":true,\"base_image\":true,\"ephemeral\":true,\"from\":\"b\","
			       "\"persist\":true,\"port\":81,\"script\":\"echo hi\",\"ssh\":true,"
			       "\"startup_command\":\"s\",\"timeout\":5,\"type\":\"inline\",\"url\":true,"
			       "\"workspace\":\"ws\"}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
	/* nothing given: only what is needed */
	assert_int_equal(PARSE(&o, &e, "true"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"script\":\"true\",\"type\":\"inline\"}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
}

static void test_json_files(void **state)
{
	char *script = write_temp("#!/bin/sh\necho x\n", 17, 0755);
	char *data = write_temp("hi\0\xff", 4, 0640);
	struct run_opts o;
	struct err e;
	json_t *j;
	assert_int_equal(PARSE(&o, &e, "-f", data, script), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "file");
	assert_string_equal(json_string_value(json_object_get(j, "script")), "#!/bin/sh\necho x\n");
	json_t *f = json_array_get(json_object_get(j, "files"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "name")), strrchr(data, '/') + 1);
	assert_int_equal(json_integer_value(json_object_get(f, "mode")), 0640);
	assert_string_equal(json_string_value(json_object_get(f, "content_base64")), "aGkA/w==");
	json_decref(j);
	run_opts_free(&o);

	/* a missing -f file is an error naming it */
	assert_int_equal(PARSE(&o, &e, "-f", "/nonexistent/q", "x"), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_null(j);
	assert_non_null(strstr(e.msg, "/nonexistent/q"));
	run_opts_free(&o);

	/* a binary "script file" is refused rather than mangled */
	assert_int_equal(PARSE(&o, &e, data), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_non_null(strstr(e.msg, "NUL"));
	run_opts_free(&o);

	unlink(script);
	unlink(data);
	free(script);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test(test_script_forms),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_json_inline),
		cmocka_unit_test(test_json_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
