// SPDX-License-Identifier: MIT
/*
 * mags sync [--json] NAME|ID: push a workspace to the object store without
 * stopping anything. An ID (a job id, UUID-shaped) syncs that job's
 * workspace (POST /mags-jobs/ID/sync); anything else is a workspace name
 * (POST /workspaces/NAME/sync), synced whether or not a job is using it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "client.h"
#include "text.h"
#include "xmalloc.h"

/* "synced workspace NAME: version 3, 2 chunks (1.1 MiB) uploaded in 240 ms" */
static void sync_print_cb(json_t *resp, const char *arg)
{
	const char *ws = json_string_value(json_object_get(resp, "workspace"));
	long long version = (long long)json_integer_value(json_object_get(resp, "version"));
	long long chunks = (long long)json_integer_value(json_object_get(resp, "chunks"));
	long long bytes = (long long)json_integer_value(json_object_get(resp, "uploaded_bytes"));
	long long ms = (long long)json_integer_value(json_object_get(resp, "ms"));
	char human[32];
	text_bytes(bytes > 0 ? (uint64_t)bytes : 0, human, sizeof human);
	printf("synced workspace %s: version %lld, %lld chunk%s (%s) uploaded in %lld ms\n", ws ? ws : arg, version,
	       chunks, chunks == 1 ? "" : "s", human, ms);
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	bool json, help;
	const char *arg;
	int r = cli_parse_id_flag(argc, argv, "--json", &json, &arg, &help);
	if (r || help)
		return r; /* a usage error, or --help was printed */
	bool job = text_is_job_id(arg);
	if (!job && !text_workspace_ok(arg))
		return cli_usage_error("sync", "sync: \"%s\" is neither a job id nor a workspace name (%s)", arg,
				       TEXT_WORKSPACE_RULE);
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	char *esc = client_escape(c, arg);
	char *path = xasprintf(job ? "/mags-jobs/%s/sync" : "/workspaces/%s/sync", esc);
	free(esc);
	int ret = cli_call_print(c, "POST", path, NULL, json, NULL, sync_print_cb, arg);
	free(path);
	client_free(c);
	return ret;
}
