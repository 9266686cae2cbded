// SPDX-License-Identifier: MIT
/* mags status [--json] ID: GET /mags-jobs/ID as "key: value" lines or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "xmalloc.h"

/* Shown first, in this order; other fields follow as magsd sent them. */
static const char *const status_keys[] = {
	"id", "status", "exit_code", "error", "script", "type", "timeout", "engine", "image",
	"created_at", "started_at", "finished_at", "url", "workspace",
};

#define STATUS_KEYS_N (sizeof status_keys / sizeof status_keys[0])
#define STATUS_SCRIPT_MAX 200	/* bytes of a long script shown */

static void status_print_value(const char *key, json_t *v)
{
	printf("%s: ", key);
	if (!v || json_is_null(v)) {
		puts("-");
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strcmp(key, "script")) {
			/* the first line only: scripts may be whole files */
			size_t n = strcspn(s, "\n");
			bool cut = s[n] != '\0' || n > STATUS_SCRIPT_MAX;
			if (n > STATUS_SCRIPT_MAX)
				n = STATUS_SCRIPT_MAX;
			printf("%.*s%s\n", (int)n, s, cut ? " ..." : "");
		} else {
			puts(s);
		}
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		puts(s ? s : "?");
		free(s);
	}
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	bool json, help;
	const char *id;
	int r = cli_parse_id_flag(argc, argv, "--json", &json, &id, &help);
	if (r || help)
		return r; /* a usage error, or --help was printed */
	json_t *job = NULL;
	if (cli_job_call(cli, "GET", id, NULL, &job) < 0)
		return CLI_EXIT_FAIL;
	if (json) {
		cli_print_json(job);
	} else {
		for (size_t i = 0; i < STATUS_KEYS_N; i++)
			if (json_object_get(job, status_keys[i]))
				status_print_value(status_keys[i], json_object_get(job, status_keys[i]));
		const char *key;
		json_t *v;
		json_object_foreach(job, key, v) {
			size_t i = 0;
			while (i < STATUS_KEYS_N && strcmp(status_keys[i], key))
				i++;
			if (i == STATUS_KEYS_N)
				status_print_value(key, v);
		}
	}
	json_decref(job);
	return CLI_EXIT_OK;
}
