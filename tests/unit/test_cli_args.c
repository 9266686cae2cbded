// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/cli/run_opts.c (`mags run` flags, their checks and the
 * submit body with its declared -f files) and src/cli/text.c (workspace
 * names, URL aliases, job ids, sizes, shell words, SSH key lines and
 * known_hosts edits).
 */
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
#include "../../src/cli/text.h"

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
			       "--from", "base", "--timeout", "30", "--always-on", "--idle-timeout", "0", "-v",
			       "echo hi"), 0);
	assert_string_equal(o.script, "echo hi");
	assert_string_equal(o.workspace, "ws");
	assert_true(o.persist && o.url && o.ssh && o.base_image && !o.ephemeral && o.always_on && o.verbose);
	assert_int_equal(o.nfiles, 3);
	assert_string_equal(o.files[0], "a.txt");
	assert_string_equal(o.files[1], "b.txt");
	assert_string_equal(o.files[2], "c");
	assert_int_equal(o.port, 3000);
	assert_string_equal(o.startup, "npm start");
	assert_string_equal(o.from, "base");
	assert_int_equal(o.timeout, 30);
	assert_int_equal(o.idle_timeout, 0);
	assert_false(o.help);
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "true"), 0);
	assert_int_equal(o.idle_timeout, -1); /* absent: magsd's default */
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--idle-timeout", "-1", "true"), -1);
	assert_int_equal(PARSE(&o, &e, "--idle-timeout", "604801", "true"), -1);
	/* --ephemeral goes with -f and the rest, only not with a workspace */
	assert_int_equal(PARSE(&o, &e, "--ephemeral", "-f", "x/a", "-f", "b/", "--url", "true"), 0);
	assert_true(o.ephemeral);
	assert_int_equal(o.nfiles, 2);
	run_opts_free(&o);
}

static void test_script_forms(void **state)
{
	struct run_opts o;
	struct err e;
	/* SCRIPT may be several words; flags after it belong to it */
	assert_int_equal(PARSE(&o, &e, "-p", "-w", "ws", "echo", "a", "--timeout"), 0);
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
	assert_int_equal(PARSE(&o, &e, "--timeout=86400", "--url", "--port=65535", "x"), 0);
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
	BAD("--port needs --url", "--port", "3000", "x");
	BAD("--port needs --url", "--ssh", "--port=22", "x");
	BAD("workspace name is empty", "-w", "", "x");
	BAD("SCRIPT is empty", "");
}

static void test_combinations(void **state)
{
	const char *eph = "--ephemeral cannot be combined with -w/-p/--base-image/--from";
	BAD(eph, "--ephemeral", "-w", "ws", "x");
	BAD(eph, "-p", "--ephemeral", "-w", "ws", "x");
	BAD(eph, "--ephemeral", "--from", "base", "x");
	BAD(eph, "--ephemeral", "--base-image", "x");
	BAD(eph, "--ephemeral", "-p", "x");
	BAD("--base-image needs -w NAME", "--base-image", "x");
	BAD("--base-image needs -w NAME", "--base-image", "--from", "b", "x");
	BAD("-p needs -w NAME: a persistent workspace has a name", "-p", "x");
	BAD("-p needs -w NAME", "--persist", "--from", "b", "x");
	/* SCRIPT is checked first: "mags run -p" says what is missing */
	BAD("missing SCRIPT", "-p");
	/* the server's name rule: [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
	BAD("-w: invalid workspace name \"-x\" (1-48 characters", "-w", "-x", "x");
	BAD("-w: invalid workspace name \".hidden\"", "-w", ".hidden", "x");
	BAD("-w: invalid workspace name \"a/b\"", "-w", "a/b", "x");
	BAD("-w: invalid workspace name \"a b\"", "-w", "a b", "x");
	BAD("-w: invalid workspace name \"caf\xc3\xa9\"", "-w", "caf\xc3\xa9", "x");
	BAD("--from: invalid workspace name \"..\"", "--from", "..", "x");
	char long_name[66];
	memset(long_name, 'a', 65);
	long_name[WS_NAME_MAX + 1] = '\0';
	BAD("-w: invalid workspace name", "-w", long_name, "x");
	struct run_opts o;
	struct err e;
	long_name[WS_NAME_MAX] = '\0';
	assert_int_equal(PARSE(&o, &e, "-w", long_name, "--from", "Base_1.2-x", "x"), 0);
	run_opts_free(&o);
	/* -f: every file needs a name of its own in the sandbox */
	BAD("-f a/x and -f b/x: both would be \"x\" in the sandbox", "-f", "a/x", "-f", "b/x", "s");
	BAD("-f x and -f ./x/:", "-f", "x", "-f", "./x/", "s");
	BAD("-f /: no file name", "-f", "/", "s");
	BAD("-f ..: no file name", "-f", "..", "s");
	BAD("-f a/.: no file name", "-f", "a/.", "s");
	BAD("-f: file path is empty", "-f", "", "s");
	assert_int_equal(PARSE(&o, &e, "-f", "a/x", "-f", "a/x.txt", "-f", "X", "s"), 0);
	run_opts_free(&o);
	/* --help wins over everything else */
	assert_int_equal(PARSE(&o, &e, "--ephemeral", "-w", "ws", "--help"), 0);
	assert_true(o.help);
	run_opts_free(&o);
}

static void test_text(void **state)
{
	assert_true(text_workspace_ok("a"));
	assert_true(text_workspace_ok("9"));
	assert_true(text_workspace_ok("My.work_space-1"));
	assert_false(text_workspace_ok(""));
	assert_false(text_workspace_ok(NULL));
	assert_false(text_workspace_ok("_a"));
	assert_false(text_workspace_ok("a:b"));
	assert_false(text_workspace_ok("a\nb"));
	char n[70];
	memset(n, 'z', sizeof n);
	n[WS_NAME_MAX] = '\0';
	assert_true(text_workspace_ok(n));
	n[WS_NAME_MAX] = 'z';
	n[WS_NAME_MAX + 1] = '\0';
	assert_false(text_workspace_ok(n));

	assert_true(text_is_job_id("0b7e1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"));
	assert_true(text_is_job_id("0B7E1A52-3C4D-4E5F-8A9B-0C1D2E3F4A5B"));
	assert_false(text_is_job_id("0b7e1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5"));
	assert_false(text_is_job_id("0b7e1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5bb"));
	assert_false(text_is_job_id("0b7e1a52x3c4d-4e5f-8a9b-0c1d2e3f4a5b"));
	assert_false(text_is_job_id("0b7e1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5g"));
	assert_false(text_is_job_id("0b7e1a523c4d4e5f8a9b0c1d2e3f4a5b----"));
	assert_false(text_is_job_id("myworkspace"));
	assert_false(text_is_job_id(NULL));

	char b[32];
	text_bytes(0, b, sizeof b);
	assert_string_equal(b, "0 B");
	text_bytes(1023, b, sizeof b);
	assert_string_equal(b, "1023 B");
	text_bytes(1024, b, sizeof b);
	assert_string_equal(b, "1.0 KiB");
	text_bytes(1153434, b, sizeof b);
	assert_string_equal(b, "1.1 MiB");
	text_bytes(100ull << 20, b, sizeof b);
	assert_string_equal(b, "100.0 MiB");
	text_bytes((1ull << 20) - 1, b, sizeof b);
	assert_string_equal(b, "1.0 MiB");
	text_bytes(1ull << 30, b, sizeof b);
	assert_string_equal(b, "1.0 GiB");
	text_bytes(UINT64_MAX, b, sizeof b);
	assert_string_equal(b, "16.0 EiB");
}

static void test_alias(void **state)
{
	assert_true(text_alias_ok("a"));
	assert_true(text_alias_ok("my-app"));
	assert_true(text_alias_ok("0"));
	assert_true(text_alias_ok("a--b9"));
	assert_false(text_alias_ok(NULL));
	assert_false(text_alias_ok(""));
	assert_false(text_alias_ok("-a"));
	assert_false(text_alias_ok("a-"));
	assert_false(text_alias_ok("-"));
	assert_false(text_alias_ok("My-App"));
	assert_false(text_alias_ok("my_app"));
	assert_false(text_alias_ok("a.b"));
	assert_false(text_alias_ok("a b"));
	assert_false(text_alias_ok("caf\xc3\xa9"));
	char n[TEXT_ALIAS_MAX + 2];
	memset(n, 'x', sizeof n);
	n[TEXT_ALIAS_MAX] = '\0';
	assert_true(text_alias_ok(n));
	n[TEXT_ALIAS_MAX] = 'x';
	n[TEXT_ALIAS_MAX + 1] = '\0';
	assert_false(text_alias_ok(n));
}

static void shell_word(const char *in, const char *want)
{
	struct buf b;
	buf_init(&b);
	text_shell_word(&b, in);
	assert_string_equal((char *)b.data, want);
	buf_free(&b);
}

static void test_shell_word(void **state)
{
	shell_word("ssh", "ssh");
	shell_word("/home/u/.mags/id_ed25519", "/home/u/.mags/id_ed25519");
	shell_word("HostKeyAlias=mags-0b7e1a52", "HostKeyAlias=mags-0b7e1a52");
	shell_word("root@127.0.0.1", "root@127.0.0.1");
	shell_word("", "''");
	shell_word("a b", "'a b'");
	shell_word("it's", "'it'\\''s'");
	shell_word("$HOME", "'$HOME'");
	shell_word("a;b", "'a;b'");
	shell_word("*", "'*'");
}

static void key_ok(const char *line, const char *type, const char *data)
{
	char *t, *d;
	assert_int_equal(text_ssh_key_split(line, &t, &d), 0);
	assert_string_equal(t, type);
	assert_string_equal(d, data);
	free(t);
	free(d);
}

static void key_bad(const char *line)
{
	char *t = (char *)1, *d = (char *)1;
	assert_int_equal(text_ssh_key_split(line, &t, &d), -1);
	assert_null(t);
	assert_null(d);
}

static void test_ssh_key(void **state)
{
	key_ok("ssh-ed25519 AAAAC3Nza+/=", "ssh-ed25519", "AAAAC3Nza+/=");
	key_ok("ssh-ed25519 AAAA mags\n", "ssh-ed25519", "AAAA");
	key_ok("  ecdsa-sha2-nistp256\tAAAA  root@host with spaces\r\n", "ecdsa-sha2-nistp256", "AAAA");
	key_ok("sk-ssh-ed25519@openssh.com AAAA", "sk-ssh-ed25519@openssh.com", "AAAA");
	key_bad(NULL);
	key_bad("");
	key_bad("ssh-ed25519");
	key_bad("ssh-ed25519 ");
	key_bad("ssh-ed25519 AA$A");
	key_bad("ssh-ed25519 AAAA\nmags-x ssh-rsa BBBB");	/* one line only */
	key_bad("ssh-ed25519\nAAAA");
	char big[TEXT_HOST_KEY_MAX + 16];
	memcpy(big, "ssh-ed25519 ", 12);
	memset(big + 12, 'A', sizeof big - 13);
	big[sizeof big - 1] = '\0';
	key_bad(big);
}

static void test_known_hosts(void **state)
{
	char *t = text_known_hosts_set(NULL, 0, "mags-1", "ssh-ed25519", "AAAA");
	assert_string_equal(t, "mags-1 ssh-ed25519 AAAA\n");
	free(t);
	/* the old line for the alias goes, others stay as they were (even without a final newline) */
	const char *old = "other ssh-rsa BBBB\nmags-1 ssh-ed25519 OLD\n# mags-1 note\n  mags-1\tssh-rsa OLD2\nmags-10 x Y";
	t = text_known_hosts_set(old, strlen(old), "mags-1", "ssh-ed25519", "NEW");
	assert_string_equal(t, "other ssh-rsa BBBB\n# mags-1 note\nmags-10 x Y\nmags-1 ssh-ed25519 NEW\n");
	free(t);
	t = text_known_hosts_set("", 0, "h", "k", "d");
	assert_string_equal(t, "h k d\n");
	free(t);
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
	assert_int_equal(PARSE(&o, &e, "-w", "ws", "--timeout", "5", "--startup", "s",
			       "--from", "b", "--port", "81", "--url", "--ssh", "--always-on", "--base-image",
			       "-p", "echo hi"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"always_on\":true,\"base_image\":true,\"from\":\"b\","
			       "\"persist\":true,\"port\":81,\"script\":\"echo hi\",\"ssh\":true,"
			       "\"startup_command\":\"s\",\"timeout\":5,\"type\":\"inline\",\"url\":true,"
			       "\"workspace\":\"ws\"}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--ephemeral", "echo hi"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"ephemeral\":true,\"script\":\"echo hi\",\"type\":\"inline\"}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
	/* --url alone: the default port is sent, not left to the server */
	assert_int_equal(PARSE(&o, &e, "--url", "--ssh", "true"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"port\":8080,\"script\":\"true\",\"ssh\":true,\"type\":\"inline\",\"url\":true}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
	/* --image goes as "image" */
	assert_int_equal(PARSE(&o, &e, "--image", "busybox", "true"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"image\":\"busybox\",\"script\":\"true\",\"type\":\"inline\"}");
	free(s);
	json_decref(j);
	run_opts_free(&o);
	assert_int_equal(PARSE(&o, &e, "--image=debian", "true"), 0);
	assert_string_equal(o.image, "debian");
	run_opts_free(&o);
	BAD("not an image name", "--image", "Debian", "true");
	BAD("not an image name", "--image", "", "true");
	BAD("not an image name", "--image=../x", "true");
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
	char *data = write_temp("hi\0\xff", 4, 04640);
	char *empty = write_temp("", 0, 0600);
	struct run_opts o;
	struct err e;
	json_t *j;
	assert_int_equal(PARSE(&o, &e, "-f", data, "--file", empty, script), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "file");
	assert_string_equal(json_string_value(json_object_get(j, "script")), "#!/bin/sh\necho x\n");
	/* declared only: {"name", "mode" (permission bits), "size"}, no content */
	json_t *files = json_object_get(j, "files");
	assert_int_equal(json_array_size(files), 2);
	json_t *f = json_array_get(files, 0);
	assert_int_equal(json_object_size(f), 3);
	assert_string_equal(json_string_value(json_object_get(f, "name")), strrchr(data, '/') + 1);
	assert_int_equal(json_integer_value(json_object_get(f, "mode")), 0640);
	assert_int_equal(json_integer_value(json_object_get(f, "size")), 4);
	assert_null(json_object_get(f, "content_base64"));
	f = json_array_get(files, 1);
	assert_int_equal(json_object_size(f), 3);
	assert_string_equal(json_string_value(json_object_get(f, "name")), strrchr(empty, '/') + 1);
	assert_int_equal(json_integer_value(json_object_get(f, "mode")), 0600);
	assert_int_equal(json_integer_value(json_object_get(f, "size")), 0);
	assert_string_equal(run_opts_file_name(data), strrchr(data, '/') + 1);
	json_decref(j);
	run_opts_free(&o);

	/* a missing -f file is an error naming it */
	assert_int_equal(PARSE(&o, &e, "-f", "/nonexistent/q", "x"), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_null(j);
	assert_non_null(strstr(e.msg, "/nonexistent/q"));
	assert_non_null(strstr(e.msg, "No such file"));
	run_opts_free(&o);

	/* a directory is not a file */
	assert_int_equal(PARSE(&o, &e, "-f", "/tmp", "x"), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_string_equal(e.msg, "-f /tmp: not a regular file");
	run_opts_free(&o);

	/* over 1 GiB (sparse, so the test costs no disk) is refused before submitting */
	char *big = write_temp("", 0, 0644);
	assert_int_equal(truncate(big, RUN_FILE_MAX + 1), 0);
	assert_int_equal(PARSE(&o, &e, "-f", big, "x"), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_null(j);
	assert_non_null(strstr(e.msg, "1073741825 bytes, more than the 1 GiB limit"));
	run_opts_free(&o);
	assert_int_equal(truncate(big, RUN_FILE_MAX), 0);
	assert_int_equal(PARSE(&o, &e, "-f", big, "x"), 0);
	assert_int_equal(run_opts_to_json(&o, &j, &e), 0);
	f = json_array_get(json_object_get(j, "files"), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "size")), RUN_FILE_MAX);
	json_decref(j);
	run_opts_free(&o);

	/* unreadable (root reads everything: then there is nothing to check) */
	if (geteuid() != 0) {
		chmod(big, 0);
		assert_int_equal(PARSE(&o, &e, "-f", big, "x"), 0);
		assert_true(run_opts_to_json(&o, &j, &e) < 0);
		assert_non_null(strstr(e.msg, "Permission denied"));
		run_opts_free(&o);
	}

	/* a binary "script file" is refused rather than mangled */
	assert_int_equal(PARSE(&o, &e, data), 0);
	assert_true(run_opts_to_json(&o, &j, &e) < 0);
	assert_non_null(strstr(e.msg, "NUL"));
	run_opts_free(&o);

	unlink(script);
	unlink(data);
	unlink(empty);
	unlink(big);
	free(script);
	free(data);
	free(empty);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test(test_script_forms),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_combinations),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_alias),
		cmocka_unit_test(test_shell_word),
		cmocka_unit_test(test_ssh_key),
		cmocka_unit_test(test_known_hosts),
		cmocka_unit_test(test_json_inline),
		cmocka_unit_test(test_json_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
