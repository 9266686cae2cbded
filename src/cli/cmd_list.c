// SPDX-License-Identifier: MIT
/*
 * mags list [--json] [--status S] [--limit N]: GET /mags-jobs as a table
 * (ID, STATUS, EXIT, CREATED, SCRIPT's first line) or as the JSON answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "xmalloc.h"

#define LIST_SCRIPT_COLS 40	/* characters of the script shown */

/*
 * Appends the first line of s to b, at most LIST_SCRIPT_COLS characters
 * (UTF-8 aware), ending in "..." when cut or when more lines follow.
 */
static void list_script_cell(const char *s, struct buf *b)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	size_t len = strcspn((const char *)p, "\r\n");
	const unsigned char *rest = p + len;
	while (*rest == ' ' || *rest == '\t' || *rest == '\n' || *rest == '\r')
		rest++;
	size_t chars = 0;
	for (size_t i = 0; i < len; i++)
		chars += (p[i] & 0xc0) != 0x80;
	bool cut = chars > LIST_SCRIPT_COLS || *rest;
	size_t keep = cut ? LIST_SCRIPT_COLS - 3 : chars;
	for (size_t i = 0, n = 0; i < len; i++) {
		bool lead = (p[i] & 0xc0) != 0x80;
		if (lead && n++ == keep)
			break;
		buf_putc(b, p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i]);
	}
	if (cut)
		buf_puts(b, "...");
}

/* "2026-11-29T03:50:00.123Z" -> "2026-11-29 03:50:00"; anything else as is. */
static void list_time_cell(const char *t, char *out, size_t n)
{
	if (!t) {
		snprintf(out, n, "-");
		return;
	}
	snprintf(out, n, "%.19s", t);
	if (strlen(out) == 19 && out[10] == 'T')
		out[10] = ' ';
}

/* Prints the "jobs" array of GET /mags-jobs (arg unused). */
static void list_print_table_cb(json_t *jobs, const char *arg)
{
	printf("%-36s  %-9s  %4s  %-19s  %s\n", "ID", "STATUS", "EXIT", "CREATED", "SCRIPT");
	size_t i;
	json_t *j;
	json_array_foreach(jobs, i, j) {
		const char *id = json_string_value(json_object_get(j, "id"));
		const char *st = json_string_value(json_object_get(j, "status"));
		if (json_is_true(json_object_get(j, "sleeping")))
			st = "sleeping"; /* a running always-on sandbox, asleep until a request */
		json_t *ec = json_object_get(j, "exit_code");
		const char *script = json_string_value(json_object_get(j, "script"));
		char exit_s[24], created[32];
		if (json_is_integer(ec))
			snprintf(exit_s, sizeof exit_s, "%lld", (long long)json_integer_value(ec));
		else
			snprintf(exit_s, sizeof exit_s, "-");
		list_time_cell(json_string_value(json_object_get(j, "created_at")), created, sizeof created);
		struct buf cell;
		buf_init(&cell);
		list_script_cell(script ? script : "", &cell);
		printf("%-36s  %-9s  %4s  %-19s  %s\n", id ? id : "?", st ? st : "?", exit_s, created,
		       cell.data ? (const char *)cell.data : "");
		buf_free(&cell);
	}
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
	bool json = false;
	const char *status = NULL, *limit = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_print_usage("list");
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--status") || !strcmp(a, "--limit")) {
			if (i + 1 >= argc)
				return cli_usage_error("list", "list: %s needs a value", a);
			*(a[2] == 's' ? &status : &limit) = argv[++i];
		} else {
			return cli_usage_error("list", "list: unexpected argument \"%s\"", a);
		}
	}
	if (limit) {
		char *end;
		long n = strtol(limit, &end, 10);
		if (!*limit || *end || n < 1)
			return cli_usage_error("list", "list: --limit: \"%s\" is not a positive number", limit);
	}
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	char *st = status ? client_escape(c, status) : NULL;
	char *path = xasprintf("/mags-jobs%s%s%s%s%s", st || limit ? "?" : "", st ? "status=" : "", st ? st : "",
			       st && limit ? "&" : "", limit ? "limit=" : "");
	free(st);
	if (limit) {
		char *p = xasprintf("%s%s", path, limit);
		free(path);
		path = p;
	}
	int ret = cli_call_print(c, "GET", path, NULL, json, "jobs", list_print_table_cb, NULL);
	free(path);
	client_free(c);
	return ret;
}
