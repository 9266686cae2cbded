// SPDX-License-Identifier: MIT
/* mags stop ID: POST /mags-jobs/ID/stop. */
#include <stdio.h>

#include "cli.h"

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	bool help;
	const char *id;
	int r = cli_parse_id_cmd(argc, argv, NULL, NULL, 0, &id, &help);
	if (r || help)
		return r; /* a usage error, or --help was printed */
	if (cli_job_call(cli, "POST", id, "stop", NULL) < 0)
		return CLI_EXIT_FAIL;
	printf("stopped %s\n", id);
	return CLI_EXIT_OK;
}
