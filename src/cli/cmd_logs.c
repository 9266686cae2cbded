// SPDX-License-Identifier: MIT
/*
 * mags logs [-f] ID: print a job's stored output to the matching streams;
 * with -f keep following it until the job ends (the same code as mags run).
 * Interrupting `logs -f` leaves the job running.
 */
#include <stdio.h>

#include "cli.h"
#include "client.h"
#include "joblog.h"

int cmd_logs(struct cli *cli, int argc, char **argv)
{
	bool follow, help;
	const char *id;
	int r = cli_parse_id_flag(argc, argv, "-f|--follow", &follow, &id, &help);
	if (r || help)
		return r; /* a usage error, or --help was printed */
	struct err err;
	struct client *c = NULL;
	struct joblog_end end = { 0 };
	int ret = CLI_EXIT_FAIL;
	if (cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (follow)
		r = joblog_follow(c, id, &end, &err);
	else
		r = joblog_dump(c, id, 0, NULL, &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	joblog_end_free(&end);
	client_free(c);
	return ret;
}
