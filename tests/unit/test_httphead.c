// SPDX-License-Identifier: MIT
/* Unit tests for src/lib/httphead.c: request heads (valid, malformed, limits, partial) and host labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httphead.h"

static int parse(const char *s, struct http_head *h)
{
	return http_head_parse(s, strlen(s), h);
}

static void test_valid(void **state)
{
	struct http_head h;
	const char *s = "GET /a/b?c=d HTTP/1.1\r\nHost: MyApp.LocalHost:8080\r\nAccept: */*\r\n\r\n";
	assert_int_equal(parse(s, &h), (int)strlen(s));
	assert_int_equal(h.method_len, 3);
	assert_memory_equal(h.method, "GET", 3);
	assert_int_equal(h.target_len, 8);
	assert_memory_equal(h.target, "/a/b?c=d", 8);
	assert_int_equal(h.minor, 1);
	assert_string_equal(h.host, "myapp.localhost");
	assert_int_equal(h.port, 8080);
	assert_int_equal(h.nfields, 2);
	assert_null(h.error);
}

static void test_lf_and_body(void **state)
{
	struct http_head h;
	const char *head = "POST / HTTP/1.0\nhost:x\ncontent-length: 5\n\n";
	char s[256];
	snprintf(s, sizeof s, "%shello", head);
	assert_int_equal(parse(s, &h), (int)strlen(head));
	assert_int_equal(h.minor, 0);
	assert_string_equal(h.host, "x");
	assert_int_equal(h.port, 0);
	/* a pipelined second request is not part of the first head */
	const char *two = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n";
	assert_int_equal(parse(two, &h), 27);
	assert_string_equal(h.host, "a");
}

static void test_forms(void **state)
{
	struct http_head h;
	assert_true(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h) > 0);
	assert_true(parse("M-SEARCH / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &h) > 0);
	assert_string_equal(h.host, "[::1]");
	assert_int_equal(h.port, 80);
	assert_true(parse("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nX-Tab:\tv\t \r\nX-Empty:\r\n\r\n", &h) > 0);
	assert_string_equal(h.host, "10.0.0.1");
	assert_true(parse("GET / HTTP/1.1\r\nX-Utf8: \xc3\xa9t\xc3\xa9\r\nhOsT: a_b.c-d.\r\n\r\n", &h) > 0);
	assert_string_equal(h.host, "a_b.c-d.");
	assert_true(parse("GET / HTTP/1.1\r\nHost: a:65535\r\n\r\n", &h) > 0);
	assert_int_equal(h.port, 65535);
}

static void test_partial(void **state)
{
	const char *s = "GET /x HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: t\r\n\r\n";
	size_t n = strlen(s);
	struct http_head h;
	for (size_t i = 0; i < n; i++) {
		if (http_head_parse(s, i, &h) != 0)
			fail_msg("prefix of %zu bytes: %s", i, h.error ? h.error : "complete");
	}
	assert_int_equal(http_head_parse(s, n, &h), (int)n);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",		/* leading empty line */
		"GET / HTTP/1.1\r\n\r\n",				/* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",	/* two */
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",			/* empty */
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a%2e\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: []\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n",			/* space before colon */
		"GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",		/* obs-fold */
		"GET / HTTP/1.1\r\nHost: a\r\n\tx\r\n\r\n",
		"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",		/* empty name */
		"GET / HTTP/1.1\r\nNoColon\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX\x01: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n",	/* bare CR */
		"GET / HTTP/1.1\r\nX: a\x7f\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",			/* two spaces */
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
		" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET / http/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
		"GET /\r\nHost: a\r\n\r\n",				/* HTTP/0.9 */
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",		/* absolute-form */
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\nHost: a\r\n\r\n", /* 33-byte method */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct http_head h;
		if (parse(bad[i], &h) != -1)
			fail_msg("bad[%zu] accepted", i);
		assert_non_null(h.error);
	}
}

static void test_early_errors(void **state)
{
	struct http_head h;
	/* a TLS ClientHello sent to the plain port fails at once, not after the timeout */
	static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	assert_int_equal(http_head_parse(hello, sizeof hello - 1, &h), -1);
	assert_int_equal(http_head_parse("GET / HTTP/1.1\r\nX: \0", 21, &h), -1);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX: a\rb", &h), -1);
	assert_int_equal(parse("GET /x HTTP/3\r\n", &h), -1);
	/* a CR at the end of the bytes so far may be followed by its LF */
	assert_int_equal(parse("GET / HTTP/1.1\r", &h), 0);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(suffix);
	char *s = malloc(a + n + b + 1);
	memcpy(s, prefix, a);
	memset(s + a, c, n);
	memcpy(s + a + n, suffix, b + 1);
	return s;
}

static void test_limits(void **state)
{
	struct http_head h;
	/* a line of exactly HTTP_LINE_MAX bytes passes, one more fails */
	char *s = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", 'v', HTTP_LINE_MAX - 3, "\r\n\r\n");
	assert_true(parse(s, &h) > 0);
	free(s);
	s = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", 'v', HTTP_LINE_MAX - 2, "\r\n\r\n");
	assert_int_equal(parse(s, &h), -1);
	free(s);
	s = repeat("GET /", 'p', HTTP_LINE_MAX, "");
	assert_int_equal(parse(s, &h), -1);
	free(s);

	/* HTTP_FIELDS_MAX fields pass, one more fails */
	char *big = malloc(HTTP_HEAD_MAX * 2);
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
		for (int i = 1; i < HTTP_FIELDS_MAX + extra; i++)
			n += (size_t)sprintf(big + n, "X-%d: %d\r\n", i, i);
		n += (size_t)sprintf(big + n, "\r\n");
		assert_int_equal(http_head_parse(big, n, &h), extra ? -1 : (int)n);
	}

	/* a head of exactly HTTP_HEAD_MAX bytes passes; without its end it fails at that size */
	size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
	while (n + 4000 < HTTP_HEAD_MAX)
		n += (size_t)sprintf(big + n, "X: %03996d\r\n", 0); /* 4001-byte lines */
	size_t last = HTTP_HEAD_MAX - n - 2; /* "Y:" + fill + CRLF, then the empty line */
	memcpy(big + n, "Y:", 2);
	memset(big + n + 2, 'y', last - 4);
	memcpy(big + n + last - 2, "\r\n\r\n", 4);
	n = HTTP_HEAD_MAX;
	assert_int_equal(http_head_parse(big, n, &h), HTTP_HEAD_MAX);
	assert_int_equal(http_head_parse(big, n - 1, &h), 0);
	memcpy(big + n - 2, "zz", 2); /* no empty line within the limit */
	assert_int_equal(http_head_parse(big, n, &h), -1);
	assert_string_equal(h.error, "request head too large");
	memset(big + n, 'z', HTTP_HEAD_MAX); /* more bytes do not help */
	assert_int_equal(http_head_parse(big, 2 * HTTP_HEAD_MAX, &h), -1);
	free(big);

	/* the longest host name fits, one byte more does not */
	s = repeat("GET / HTTP/1.1\r\nHost: ", 'h', HTTP_HOST_MAX, ":1\r\n\r\n");
	assert_true(parse(s, &h) > 0);
	assert_int_equal(strlen(h.host), HTTP_HOST_MAX);
	free(s);
	s = repeat("GET / HTTP/1.1\r\nHost: ", 'h', HTTP_HOST_MAX + 1, "\r\n\r\n");
	assert_int_equal(parse(s, &h), -1);
	free(s);
}

static void test_label(void **state)
{
	char l[HTTP_LABEL_MAX + 1];
	assert_int_equal(http_host_label("myapp.localhost", "localhost", l, sizeof l), 5);
	assert_string_equal(l, "myapp");
	assert_int_equal(http_host_label("My-App2.Example.COM.", "example.com", l, sizeof l), 7);
	assert_string_equal(l, "my-app2");
	assert_int_equal(http_host_label("a.example.com", "example.com.", l, sizeof l), 1);
	assert_string_equal(l, "a");

	static const char *const bad[] = {
		"localhost", ".localhost", "a.b.localhost", "-a.localhost", "a-.localhost",
		"a_b.localhost", "a.localhostx", "a.xlocalhost", "alocalhost", "a..localhost",
		"a.localhost..", "", "[::1]", "a b.localhost",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (http_host_label(bad[i], "localhost", l, sizeof l) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(http_host_label("a.localhost", "", l, sizeof l), -1);

	char host[128];
	memset(host, 'x', 63);
	strcpy(host + 63, ".localhost");
	assert_int_equal(http_host_label(host, "localhost", l, sizeof l), 63);
	assert_int_equal(http_host_label(host, "localhost", l, 63), -1); /* no room for the NUL */
	memset(host, 'x', 64);
	strcpy(host + 64, ".localhost");
	assert_int_equal(http_host_label(host, "localhost", l, sizeof l), -1);
}

/* The answers one node of a cluster reads from another. */
static void test_response(void **state)
{
	(void)state;
	struct http_resp r;
	const char *ok = "HTTP/1.0 201 Created\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
			 "X-Other: y\r\n\r\n{\"id\":\"x\"}\r\n";
	int n = http_resp_parse(ok, strlen(ok), &r);
	assert_int_equal(n, (int)(strstr(ok, "\r\n\r\n") - ok) + 4);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.minor, 0);
	assert_int_equal(r.content_length, 12);
	assert_false(r.chunked);
	assert_int_equal(r.kept_len[0], strlen("application/json"));
	assert_memory_equal(r.kept[0], "application/json", r.kept_len[0]);
	assert_string_equal(http_resp_kept_name(0), "content-type");
	assert_null(r.kept[2]);
	/* no reason phrase, bare LF, no length */
	assert_int_equal(http_resp_parse("HTTP/1.1 200\n\n", 14, &r), 14);
	assert_int_equal(r.content_length, -1);
	/* incomplete until the empty line */
	assert_int_equal(http_resp_parse("HTTP/1.1 200 OK\r\nA: b\r\n", 23, &r), 0);
	assert_null(r.error);
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 99 Low\r\n\r\n",
		"HTTP/1.1 600 High\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA\rB: c\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: c\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(http_resp_parse(bad[i], strlen(bad[i]), &r), -1);
		assert_non_null(r.error);
	}
	/* a NUL is a control character */
	assert_int_equal(http_resp_parse("HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", 25, &r), -1);
	/* a chunked answer is told apart */
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_true(http_resp_parse(ch, strlen(ch), &r) > 0);
	assert_true(r.chunked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_lf_and_body),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_early_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_response),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
