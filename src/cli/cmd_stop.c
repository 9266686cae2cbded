// SPDX-License-Identifier: MIT
/*
 * mags stop NAME|ID: POST /mags-jobs/ID/stop. A workspace NAME stops its
 * sandbox: the newest running job of that workspace, else the newest queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "text.h"
#include "xmalloc.h"

/* The job id of workspace name's sandbox (caller frees), or NULL with the error printed. */
static char *sandbox_of(struct cli *cli, const char *name)
{
	struct err err;
	struct client *c = NULL;
	json_t *job = NULL;
	int r = cli_connect(cli, &c, &err);
	if (r == 0)
		r = new_find(c, name, "running", &job, &err);
	if (r == 0 && !job)
		r = new_find(c, name, "queued", &job, &err);
	client_free(c);
	if (r < 0) {
		cli_error("%s", err.msg);
		return NULL;
	}
	if (!job) {
		cli_error("no running sandbox for workspace %s", name);
		return NULL;
	}
	const char *id = json_string_value(json_object_get(job, "id"));
	char *out = id ? xstrdup(id) : NULL;
	json_decref(job);
	if (!out)
		cli_error("the API answered a job without an id");
	return out;
}

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	bool help;
	const char *arg;
	int r = cli_parse_id_cmd(argc, argv, NULL, NULL, 0, &arg, &help);
	if (r || help)
		return r; /* a usage error, or --help was printed */
	bool job = text_is_job_id(arg);
	if (!job && !text_workspace_ok(arg))
		return cli_usage_error("stop", "stop: \"%s\" is neither a job id nor a workspace name (%s)", arg,
				       TEXT_WORKSPACE_RULE);
	char *id = job ? xstrdup(arg) : sandbox_of(cli, arg);
	if (!id)
		return CLI_EXIT_FAIL;
	r = cli_job_call(cli, "POST", id, "stop", NULL) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	if (r == CLI_EXIT_OK)
		printf("stopped %s\n", id);
	free(id);
	return r;
}
