// SPDX-License-Identifier: MIT
/*
 * mags whoami: who the CLI's token belongs to (GET /whoami) and where that
 * token comes from. mags logout: forgets the token saved in
 * ~/.mags/config.json (MAGS_TOKEN / MAGS_API_TOKEN, when set, still win).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "config.h"

const char cmd_whoami_usage[] =
	"usage: mags whoami\n"
	"The user the CLI's API token belongs to, the API it talks to and where the\n"
	"token comes from (MAGS_TOKEN, MAGS_API_TOKEN or ~/.mags/config.json).\n";

const char cmd_logout_usage[] =
	"usage: mags logout\n"
	"Removes the API token saved in ~/.mags/config.json. A token in MAGS_TOKEN or\n"
	"MAGS_API_TOKEN is not affected (unset it yourself).\n";

/* Where the resolved token came from, for the user. */
static const char *token_source(void)
{
	if (getenv("MAGS_TOKEN") && *getenv("MAGS_TOKEN"))
		return "MAGS_TOKEN";
	if (getenv("MAGS_API_TOKEN") && *getenv("MAGS_API_TOKEN"))
		return "MAGS_API_TOKEN";
	return "~/.mags/config.json";
}

/* True when argv holds only -h/--help (printed) or nothing; false with a usage error otherwise. */
static int no_args(const char *cmd, int argc, char **argv, const char *usage, bool *help)
{
	*help = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			*help = true;
			return CLI_EXIT_OK;
		}
		return cli_usage_error(cmd, "%s: unexpected argument \"%s\"", cmd, argv[i]);
	}
	return CLI_EXIT_OK;
}

int cmd_whoami(struct cli *cli, int argc, char **argv)
{
	bool help;
	int r = no_args("whoami", argc, argv, cmd_whoami_usage, &help);
	if (r || help)
		return r;
	struct err err;
	struct client *c = NULL;
	json_t *me = NULL;
	struct config cfg;
	if (config_load(&cfg, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	r = cli_connect(cli, &c, &err);
	if (r == 0)
		r = client_call(c, "GET", "/whoami", NULL, &me, &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		r = CLI_EXIT_FAIL;
	} else {
		printf("%s\n", json_string_value(json_object_get(me, "user")));
		fprintf(stderr, "api %s, token %lld from %s%s\n", cfg.api_url,
			(long long)json_integer_value(json_object_get(me, "token_id")), token_source(),
			cfg.local ? " (local magsd)" : "");
		r = CLI_EXIT_OK;
	}
	json_decref(me);
	client_free(c);
	config_free(&cfg);
	return r;
}

int cmd_logout(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	bool help;
	int r = no_args("logout", argc, argv, cmd_logout_usage, &help);
	if (r || help)
		return r;
	struct err err;
	struct config cfg;
	if (config_load(&cfg, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	bool had = json_object_get(cfg.file, "token") != NULL;
	if (had) {
		json_object_del(cfg.file, "token");
		if (config_save(&cfg, &err) < 0) {
			cli_error("%s", err.msg);
			config_free(&cfg);
			return CLI_EXIT_FAIL;
		}
	}
	printf("%s\n", had ? "logged out: the token is removed from ~/.mags/config.json" : "not logged in");
	if (strcmp(token_source(), "~/.mags/config.json"))
		fprintf(stderr, "note: %s is still set and is used by mags\n", token_source());
	config_free(&cfg);
	return CLI_EXIT_OK;
}
