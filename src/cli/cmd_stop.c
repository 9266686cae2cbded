// SPDX-License-Identifier: MIT
/* mags stop ID: POST /mags-jobs/ID/stop. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "client.h"
#include "xmalloc.h"

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	bool help;
	const char *id;
	int r = cli_parse_id_cmd(argc, argv, NULL, NULL, 0, &id, &help);
	if (r)
		return r;
	if (help) {
		cli_print_usage("stop");
		return CLI_EXIT_OK;
	}
	struct err err;
	struct client *c = NULL;
	char *path = NULL;
	int ret = CLI_EXIT_FAIL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	char *esc = client_escape(c, id);
	path = xasprintf("/mags-jobs/%s/stop", esc);
	free(esc);
	if (client_call(c, "POST", path, NULL, NULL, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	printf("stopped %s\n", id);
	ret = CLI_EXIT_OK;
out:
	free(path);
	client_free(c);
	return ret;
}
