// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the REST API's small request parsers
 * (src/daemon/apiparse.c): the JSON bodies of POST /tokens and /cli-logins
 * (one text field), POST /mags-jobs/:id/access and POST /url-aliases, and
 * the query parameters of GET /mags-jobs, GET /mags-jobs/:id/logs, POST
 * /mags-jobs/:id/upload and /mags-jobs/:id/files (kind 6: path, mode,
 * recursive), the body of POST /mags-jobs/:id/files/mkdir and the id of
 * DELETE /tokens/:id (both kind 7, on the same bytes). The first byte
 * picks the parser (low 3 bits) and, for query parameters, which of them are
 * absent (the other bits); the rest is the body, or the parameters' values
 * separated by NUL bytes. Besides crashes it checks what each accepts against
 * its contract, and that every refusal has a 400/413 message.
 * fuzz/replay.c supplies main() for make fuzz-replay.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/daemon/apiparse.h"
#include "../src/daemon/jobspec.h"
#include "names.h"

#define APIPARSE_FUZZ_FIELDS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int r, const struct err *err)
{
	if (r >= 0)
		abort();
	if (!err->msg[0] || (err->code != 400 && err->code != 413))
		abort();
}

static void check_text_field(const char *body, size_t len)
{
	char out[64 + 1] = "default";
	struct err err = { 0 };
	int r = apiparse_text_field(body, len, "POST /fuzz", "name", 64, out, &err);
	if (r < 0) {
		check_err(r, &err);
		return;
	}
	if (strcmp(out, "default") && !text_line_ok(out, strlen(out), 64))
		abort();
}

static void check_access(const char *body, size_t len)
{
	struct apiparse_access a;
	struct err err = { 0 };
	int r = apiparse_access(body, len, &a, &err);
	if (r < 0) {
		check_err(r, &err);
	} else {
		if (!a.url && !a.ssh)
			abort();
		if (a.port < 0 || a.port > 65535 || (a.port && !a.url))
			abort();
		if (a.key && (!a.ssh || !ssh_pubkey_ok(a.key, strlen(a.key))))
			abort();
	}
	free(a.key);
}

static void check_alias(const char *body, size_t len)
{
	struct apiparse_alias a;
	struct err err = { 0 };
	int r = apiparse_alias(body, len, &a, &err);
	if (r < 0) {
		check_err(r, &err);
		if (a.alias || a.workspace || a.job_id)
			abort(); /* freed on failure */
		return;
	}
	if (!url_label_ok(a.alias) || !a.workspace == !a.job_id || (a.workspace && !ws_name_ok(a.workspace)))
		abort();
	apiparse_alias_free(&a);
}

/* What apiparse_file_path promises of a path it accepts. */
static void check_path_ok(const char *p, size_t n)
{
	if (n == 0 || n > APIPARSE_PATH_MAX || memchr(p, '\0', n))
		abort();
	if (n == 1 && p[0] == '/')
		return;
	if (p[n - 1] == '/' || strstr(p, "//"))
		abort();
	/* no "." or ".." component anywhere */
	for (size_t i = 0; i < n; i++) {
		if (i && p[i - 1] != '/')
			continue;
		size_t k = i;
		while (k < n && p[k] != '/')
			k++;
		if ((k - i == 1 && p[i] == '.') || (k - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			abort();
	}
}

static void check_mkdir(const char *body, size_t len)
{
	char *path = (char *)"unset";
	bool parents = true;
	unsigned mode = 1u << 31;
	struct err err = { 0 };
	int r = apiparse_mkdir(body, len, &path, &parents, &mode, &err);
	if (r < 0) {
		check_err(r, &err);
		if (path)
			abort(); /* NULL on failure */
		return;
	}
	if (!path || mode > 07777)
		abort();
	check_path_ok(path, strlen(path));
	free(path);
}

/* Splits p[0..n) at NUL bytes into up to APIPARSE_FUZZ_FIELDS strings; bit i of absent drops field i. */
static void split(const uint8_t *p, size_t n, unsigned absent, char *buf, const char *f[APIPARSE_FUZZ_FIELDS],
		  size_t flen[APIPARSE_FUZZ_FIELDS])
{
	memcpy(buf, p, n);
	buf[n] = '\0';
	size_t off = 0;
	for (int i = 0; i < APIPARSE_FUZZ_FIELDS; i++) {
		f[i] = off <= n ? buf + off : "";
		/* the last field keeps any further NULs: the upload's name length check sees them */
		flen[i] = off <= n ? (i == APIPARSE_FUZZ_FIELDS - 1 ? n - off : strlen(buf + off)) : 0;
		off += strlen(f[i]) + 1;
		if (absent & (1u << i))
			f[i] = NULL;
	}
}

static void check_queries(unsigned kind, unsigned absent, const uint8_t *p, size_t n)
{
	char *buf = malloc(n + 1);
	const char *f[APIPARSE_FUZZ_FIELDS];
	size_t flen[APIPARSE_FUZZ_FIELDS];
	struct err err = { 0 };
	int r;
	split(p, n, absent, buf, f, flen);
	if (kind == 3) {
		/* upload: name (its full length as microhttpd reports it), mode */
		unsigned mode = 1u << 31;
		const char *name = f[2] ? f[2] : NULL, *m = f[0];
		size_t name_len = f[2] ? flen[2] : 0;
		r = apiparse_upload_query(name, name_len, m, &mode, &err);
		if (r < 0)
			check_err(r, &err);
		else if (mode > 07777 || !name || jobspec_path_check(name, strlen(name), NULL) < 0)
			abort();
	} else if (kind == 4) {
		int limit = -1;
		r = apiparse_jobs_query(f[0], f[1], f[2], &limit, &err);
		if (r < 0)
			check_err(r, &err);
		else if (limit < 1 || limit > 1000)
			abort();
	} else if (kind == 6) {
		/* files: path (its full length, NULs included), mode, recursive */
		unsigned mode = 1u << 31;
		bool rec;
		r = apiparse_files_query(f[2], f[2] ? flen[2] : 0, f[0], f[1], &mode, &rec, &err);
		if (r < 0)
			check_err(r, &err);
		else if (mode > 07777 || (rec && strcmp(f[1], "1") && strcmp(f[1], "true")))
			abort();
		else
			check_path_ok(f[2], flen[2]);
	} else if (kind == 5) {
		int64_t since = -1;
		bool follow;
		r = apiparse_logs_query(f[0], f[1], &since, &follow, &err);
		if (r < 0)
			check_err(r, &err);
		else if (since < 0 || (follow && strcmp(f[1], "true") && strcmp(f[1], "1")))
			abort();
	} else {
		long long id = apiparse_token_id(buf);
		if (id < 0 || (id > 0 && strtoll(buf, NULL, 10) != id))
			abort();
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > API_BODY_MAX + 2)
		return 0;
	unsigned kind = data[0] & 7, absent = data[0] >> 3;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	switch (kind) {
	case 0:
		check_text_field(body, len);
		break;
	case 1:
		check_access(body, len);
		break;
	case 2:
		check_alias(body, len);
		break;
	case 7:
		check_mkdir(body, len);
		check_queries(kind, absent, data + 1, len);
		break;
	default:
		check_queries(kind, absent, data + 1, len);
		break;
	}
	return 0;
}
