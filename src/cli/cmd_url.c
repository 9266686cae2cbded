// SPDX-License-Identifier: MIT
/*
 * mags url: public URLs of sandboxes.
 *   url enable [--json] [--port P] NAME|ID   POST /mags-jobs/ID/access {"url": true, "port": P}
 *       on a running job: ID, or the newest running job of workspace NAME;
 *       prints the URL (--json: the job).
 *   url alias [--json] NAME ALIAS            POST /url-aliases: ALIAS.DOMAIN for workspace NAME
 *   url alias list [--json]                  GET /url-aliases as a table
 *   url alias remove ALIAS                   DELETE /url-aliases/ALIAS
 * "list" and "remove" are words of the command, not workspace names, in
 * `url alias`. Names and aliases are checked here first (text.h), so a bad
 * one is a usage error that never reaches magsd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "run_opts.h"
#include "text.h"
#include "xmalloc.h"

#define URL_ARGS_MAX 2	/* positional arguments of a subcommand */

/* A subcommand's command line: argv[from..) holds flags and positional arguments. */
struct url_args {
	const char *pos[URL_ARGS_MAX];
	int npos;
	bool json;
	long port;	/* --port P; 0 when absent */
};

/* Parses argv[from..); --port only where port_ok. Returns 0, 1 after --help, or CLI_EXIT_USAGE. */
static int url_parse(int argc, char **argv, int from, const char *what, bool port_ok, struct url_args *a)
{
	memset(a, 0, sizeof *a);
	bool only_args = false;
	for (int i = from; i < argc; i++) {
		const char *s = argv[i];
		if (!only_args && !strcmp(s, "--")) {
			only_args = true;
			continue;
		}
		if (!only_args && s[0] == '-' && s[1]) {
			if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
				cli_print_usage("url");
				return 1;
			}
			if (!strcmp(s, "--json")) {
				a->json = true;
				continue;
			}
			const char *v = NULL;
			if (port_ok && !strcmp(s, "--port")) {
				if (i + 1 >= argc)
					return cli_usage_error("url", "%s: --port needs a value", what);
				v = argv[++i];
			} else if (port_ok && !strncmp(s, "--port=", 7)) {
				v = s + 7;
			} else {
				return cli_usage_error("url", "%s: unknown flag %s", what, s);
			}
			char *end;
			errno = 0;
			long p = strtol(v, &end, 10);
			if (!*v || *v == '+' || *v == '-' || *v == ' ' || *end || errno || p < 1 || p > 65535)
				return cli_usage_error("url", "%s: --port: \"%s\" is not a port number (1-65535)", what, v);
			a->port = p;
			continue;
		}
		if (a->npos == URL_ARGS_MAX)
			return cli_usage_error("url", "%s: unexpected argument \"%s\"", what, s);
		a->pos[a->npos++] = s;
	}
	return 0;
}

/* The usage error for a bad alias. */
static int url_bad_alias(const char *what, const char *alias)
{
	return cli_usage_error("url", "%s: invalid alias \"%s\" (%s)", what, alias, TEXT_ALIAS_RULE);
}

/* Connects, or prints why not. */
static struct client *url_connect(struct cli *cli)
{
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0)
		cli_error("%s", err.msg);
	return c;
}

static int url_enable(struct cli *cli, int argc, char **argv)
{
	struct url_args a;
	int r = url_parse(argc, argv, 2, "url enable", true, &a);
	if (r)
		return r == 1 ? CLI_EXIT_OK : r;
	if (!a.npos)
		return cli_usage_error("url", "url enable: missing NAME|ID");
	if (a.npos > 1)
		return cli_usage_error("url", "url enable: unexpected argument \"%s\"", a.pos[1]);
	const char *target = a.pos[0];
	bool by_id = text_is_job_id(target);
	if (!by_id && !text_workspace_ok(target))
		return cli_usage_error("url", "url enable: \"%s\" is neither a job id nor a workspace name (%s)", target,
				       TEXT_WORKSPACE_RULE);
	struct err err;
	json_t *sandbox = NULL, *job = NULL, *body = NULL;
	char *path = NULL;
	int ret = CLI_EXIT_FAIL;
	struct client *c = url_connect(cli);
	if (!c)
		goto out;
	const char *id = target;
	if (!by_id) {
		if (new_find(c, target, "running", &sandbox, &err) < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		if (!sandbox) {
			cli_error("no running sandbox for workspace %s (start one with mags new %s)", target, target);
			goto out;
		}
		id = json_string_value(json_object_get(sandbox, "id"));
	}
	body = json_object();
	json_object_set_new(body, "url", json_true());
	json_object_set_new(body, "port", json_integer(a.port ? a.port : RUN_PORT_DEFAULT));
	char *esc = client_escape(c, id);
	path = xasprintf("/mags-jobs/%s/access", esc);
	free(esc);
	if (client_call(c, "POST", path, body, &job, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	const char *url = json_string_value(json_object_get(job, "url"));
	if (a.json) {
		cli_print_json(job);
	} else if (url && *url) {
		printf("%s\n", url);
	} else {
		cli_error("magsd enabled the URL of job %s but did not say what it is (see mags status %s)", id, id);
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	free(path);
	json_decref(body);
	json_decref(job);
	json_decref(sandbox);
	client_free(c);
	return ret;
}

static const char *url_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

/* Prints the "aliases" array of GET /url-aliases (arg unused). */
static void url_alias_table_cb(json_t *list, const char *arg)
{
	int alias_w = 5, ws_w = 9;	/* "ALIAS", "WORKSPACE" */
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o) {
		int n = (int)strlen(url_str(o, "alias")), w = (int)strlen(url_str(o, "workspace"));
		alias_w = n > alias_w ? n : alias_w;
		ws_w = w > ws_w ? w : ws_w;
	}
	printf("%-*s  %-*s  %s\n", alias_w, "ALIAS", ws_w, "WORKSPACE", "URL");
	json_array_foreach(list, i, o)
		printf("%-*s  %-*s  %s\n", alias_w, url_str(o, "alias"), ws_w, url_str(o, "workspace"), url_str(o, "url"));
}

/* Prints the "url" of POST /url-aliases's answer (arg: the alias). */
static void url_alias_created_cb(json_t *resp, const char *arg)
{
	const char *url = json_string_value(json_object_get(resp, "url"));
	if (url && *url)
		printf("%s\n", url);
	else
		printf("alias %s created\n", arg);
}

/* Prints the answer of DELETE /url-aliases/ALIAS (arg: the alias). */
static void url_alias_removed_cb(json_t *resp, const char *arg)
{
	printf("removed alias %s\n", arg);
}

static int url_alias(struct cli *cli, int argc, char **argv)
{
	struct url_args a;
	int r = url_parse(argc, argv, 2, "url alias", false, &a);
	if (r)
		return r == 1 ? CLI_EXIT_OK : r;
	const char *what = a.npos && !strcmp(a.pos[0], "list") ? "list" :
			   a.npos && !strcmp(a.pos[0], "remove") ? "remove" : "create";
	struct client *c = NULL;
	char *path = NULL;
	json_t *body = NULL;
	int ret = CLI_EXIT_FAIL;
	if (!strcmp(what, "list")) {
		if (a.npos != 1)
			return cli_usage_error("url", "url alias list: unexpected argument \"%s\"", a.pos[1]);
		if ((c = url_connect(cli)))
			ret = cli_call_print(c, "GET", "/url-aliases", NULL, a.json, "aliases", url_alias_table_cb, NULL);
	} else if (!strcmp(what, "remove")) {
		if (a.npos != 2)
			return cli_usage_error("url", "url alias remove: missing ALIAS");
		if (!text_alias_ok(a.pos[1]))
			return url_bad_alias("url alias remove", a.pos[1]);
		if ((c = url_connect(cli))) {
			char *esc = client_escape(c, a.pos[1]);
			path = xasprintf("/url-aliases/%s", esc);
			free(esc);
			ret = cli_call_print(c, "DELETE", path, NULL, a.json, NULL, url_alias_removed_cb, a.pos[1]);
		}
	} else {
		if (a.npos != 2)
			return cli_usage_error("url", "url alias: %s (url alias NAME ALIAS, or list, or remove ALIAS)",
					       a.npos ? "missing ALIAS" : "missing NAME and ALIAS");
		if (!text_workspace_ok(a.pos[0]))
			return cli_usage_error("url", "url alias: invalid workspace name \"%s\" (%s)", a.pos[0],
					       TEXT_WORKSPACE_RULE);
		if (!text_alias_ok(a.pos[1]))
			return url_bad_alias("url alias", a.pos[1]);
		if ((c = url_connect(cli))) {
			body = json_object();
			json_object_set_new(body, "alias", json_string(a.pos[1]));
			json_object_set_new(body, "workspace", json_string(a.pos[0]));
			ret = cli_call_print(c, "POST", "/url-aliases", body, a.json, NULL, url_alias_created_cb,
					     a.pos[1]);
		}
	}
	json_decref(body);
	free(path);
	client_free(c);
	return ret;
}

int cmd_url(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("url", "url: missing subcommand (enable or alias)");
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		cli_print_usage("url");
		return CLI_EXIT_OK;
	}
	if (!strcmp(sub, "enable"))
		return url_enable(cli, argc, argv);
	if (!strcmp(sub, "alias"))
		return url_alias(cli, argc, argv);
	return cli_usage_error("url", "url: unknown subcommand \"%s\" (enable or alias)", sub);
}
