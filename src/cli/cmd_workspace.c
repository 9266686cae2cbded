// SPDX-License-Identifier: MIT
/*
 * mags workspace list [--json] | delete NAME: GET /workspaces as a table
 * (NAME, KIND, FROM, IN USE, SIZE, SYNCED) or as the JSON answer, and
 * DELETE /workspaces/NAME, which also removes the workspace's data in the
 * object store. magsd refuses (409) to delete a workspace in use or a base
 * that other workspaces were created --from; its message is printed as is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "text.h"
#include "xmalloc.h"

#define WS_JOB_COLS 8	/* characters of an in-use job id shown */

/* "base" | "persistent" | "local" */
static const char *ws_kind(json_t *w)
{
	if (json_is_true(json_object_get(w, "base_image")))
		return "base";
	if (json_is_true(json_object_get(w, "persistent")))
		return "persistent";
	return "local";
}

/* The SYNCED cell: "v3 2026-11-29 03:50:00", "v3" or "-". */
static void ws_synced_cell(json_t *w, char *out, size_t n)
{
	json_t *v = json_object_get(w, "version");
	const char *at = json_string_value(json_object_get(w, "synced_at"));
	if (!json_is_integer(v)) {
		snprintf(out, n, "-");
		return;
	}
	if (!at) {
		snprintf(out, n, "v%lld", (long long)json_integer_value(v));
		return;
	}
	snprintf(out, n, "v%lld %.19s", (long long)json_integer_value(v), at);
	char *t = strchr(out, 'T');
	if (t)
		*t = ' ';
}

static const char *ws_str(json_t *w, const char *key)
{
	const char *s = json_string_value(json_object_get(w, key));
	return s && *s ? s : "-";
}

/* Prints the "workspaces" array of GET /workspaces (arg unused). */
static void ws_print_table_cb(json_t *list, const char *arg)
{
	int name_w = 4, from_w = 4;	/* "NAME", "FROM" */
	size_t i;
	json_t *w;
	json_array_foreach(list, i, w) {
		int n = (int)strlen(ws_str(w, "name")), f = (int)strlen(ws_str(w, "from"));
		name_w = n > name_w ? n : name_w;
		from_w = f > from_w ? f : from_w;
	}
	printf("%-*s  %-10s  %-*s  %-8s  %9s  %s\n", name_w, "NAME", "KIND", from_w, "FROM", "IN USE", "SIZE",
	       "SYNCED");
	json_array_foreach(list, i, w) {
		char size[32], synced[64];
		json_t *sz = json_object_get(w, "size_bytes");
		if (json_is_integer(sz) && json_integer_value(sz) >= 0)
			text_bytes((uint64_t)json_integer_value(sz), size, sizeof size);
		else
			snprintf(size, sizeof size, "-");
		ws_synced_cell(w, synced, sizeof synced);
		printf("%-*s  %-10s  %-*s  %-8.*s  %9s  %s\n", name_w, ws_str(w, "name"), ws_kind(w), from_w,
		       ws_str(w, "from"), WS_JOB_COLS, ws_str(w, "in_use_by"), size, synced);
	}
}

static int ws_list(struct cli *cli, int argc, char **argv)
{
	bool json = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			return cli_usage_error("workspace", "workspace list: unexpected argument \"%s\"", argv[i]);
	}
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	int ret = cli_call_print(c, "GET", "/workspaces", NULL, json, "workspaces", ws_print_table_cb, NULL);
	client_free(c);
	return ret;
}

static int ws_delete(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	for (int i = 2; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1])
			return cli_usage_error("workspace", "workspace delete: unknown flag %s", argv[i]);
		if (name)
			return cli_usage_error("workspace", "workspace delete: unexpected argument \"%s\"", argv[i]);
		name = argv[i];
	}
	if (!name)
		return cli_usage_error("workspace", "workspace delete: missing NAME");
	if (!text_workspace_ok(name))
		return cli_usage_error("workspace", "workspace delete: invalid workspace name \"%s\" (%s)", name,
				       TEXT_WORKSPACE_RULE);
	struct err err;
	struct client *c = NULL;
	char *path = NULL;
	int ret = CLI_EXIT_FAIL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	char *esc = client_escape(c, name);
	path = xasprintf("/workspaces/%s", esc);
	free(esc);
	if (client_call(c, "DELETE", path, NULL, NULL, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	printf("deleted workspace %s\n", name);
	ret = CLI_EXIT_OK;
out:
	free(path);
	client_free(c);
	return ret;
}

int cmd_workspace(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("workspace", "workspace: missing subcommand (list or delete)");
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		cli_print_usage("workspace");
		return CLI_EXIT_OK;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cli_print_usage("workspace");
			return CLI_EXIT_OK;
		}
	}
	if (!strcmp(sub, "list"))
		return ws_list(cli, argc, argv);
	if (!strcmp(sub, "delete"))
		return ws_delete(cli, argc, argv);
	return cli_usage_error("workspace", "workspace: unknown subcommand \"%s\" (list or delete)", sub);
}
