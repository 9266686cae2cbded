// SPDX-License-Identifier: MIT
/*
 * mags cron: schedules that run a job at cron times (REST /cron-jobs).
 *   cron create 'EXPR' 'CMD' [run flags] [--name N] [--tz ZONE] [--disabled] [--json]
 *   cron list [--json]
 *   cron delete|enable|disable ID [--json]
 *   cron update ID [--expr E] [--tz ZONE] [--name N] [--json]
 * The run flags are those of `mags run` (run_opts.c), turned into the same
 * job body; -f files are sent inline (content_base64), since no one is there
 * to upload them when the schedule fires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "cli.h"
#include "client.h"
#include "fs.h"
#include "run_opts.h"
#include "xmalloc.h"

#define CRON_FILE_MAX (700 * 1024)	/* bytes of one -f file (base64 must fit the API's 1 MiB body) */

const char cmd_cron_usage[] =
	"usage: mags cron create 'EXPR' 'CMD' [run flags] [--name NAME] [--tz ZONE] [--disabled] [--json]\n"
	"       mags cron list [--json]\n"
	"       mags cron delete|enable|disable ID [--json]\n"
	"       mags cron update ID [--expr EXPR] [--tz ZONE] [--name NAME] [--json]\n"
	"\n"
	"Schedules that run CMD as a new job at the times of a cron expression;\n"
	"each job shows in mags list. EXPR has five fields, minute hour\n"
	"day-of-month month day-of-week, with lists (1,15), ranges (1-5), steps\n"
	"(*/10), names (jan, mon-fri) and @hourly/@daily/@weekly/@monthly/@yearly.\n"
	"Times are UTC unless --tz names an IANA zone (Europe/Berlin).\n"
	"\n"
	"run flags: those of mags run (-w, -p, -f, --url, --port, --startup,\n"
	"--base-image, --from, --ephemeral, --timeout); -f files (up to 700 KiB each)\n"
	"are stored with the schedule. --always-on is refused.\n"
	"\n"
	"  --name NAME   a label for the schedule (1-64 printable characters)\n"
	"  --tz ZONE     time zone of EXPR (default UTC)\n"
	"  --disabled    create it disabled (mags cron enable ID starts it)\n"
	"  --expr EXPR   (update) a new expression\n"
	"  --json        print magsd's JSON answer\n";

/* A subcommand's command line. */
struct cron_args {
	const char **pos;	/* positional arguments, in order */
	int npos;
	const char **run;	/* run flags and their values, in order (create) */
	int nrun;
	bool json, disabled;
	const char *name, *tz, *expr;
};

static void cron_args_free(struct cron_args *a)
{
	free(a->pos);
	free(a->run);
}

/* Takes "--flag V" or "--flag=V" at argv[*i] into *out; 1 when it matched, -1 when the value is missing. */
static int cron_value_flag(int argc, char **argv, int *i, const char *flag, const char **out)
{
	size_t n = strlen(flag);
	if (strncmp(argv[*i], flag, n))
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n])
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

/* One flag at argv[*i] of subcommand what; 0, 1 after --help, or CLI_EXIT_USAGE. */
static int cron_flag(int argc, char **argv, int *i, const char *what, struct cron_args *a)
{
	const char *s = argv[*i];
	bool create = !strcmp(what, "create"), update = !strcmp(what, "update");
	if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
		cli_print_usage("cron");
		return 1;
	}
	if (!strcmp(s, "--json"))
		return a->json = true, 0;
	if (create && !strcmp(s, "--disabled"))
		return a->disabled = true, 0;
	static const char *const names[] = { "--name", "--tz", "--expr" };
	const char **dst[] = { &a->name, &a->tz, &a->expr };
	for (int k = 0; k < 3; k++) {
		if ((k == 2 && !update) || (!create && !update))
			continue;
		int r = cron_value_flag(argc, argv, i, names[k], dst[k]);
		if (r < 0)
			return cli_usage_error("cron", "cron %s: %s needs a value", what, names[k]);
		if (r > 0)
			return 0;
	}
	int arity = create ? run_opts_flag_arity(s) : -1;
	if (arity < 0)
		return cli_usage_error("cron", "cron %s: unknown flag %s", what, s);
	if (arity && *i + 1 >= argc)
		return cli_usage_error("cron", "cron %s: %s needs a value", what, s);
	a->run[a->nrun++] = s;
	if (arity)
		a->run[a->nrun++] = argv[++*i];
	return 0;
}

/* Parses argv[2..) of subcommand what. Returns 0, 1 after --help, or CLI_EXIT_USAGE. */
static int cron_parse_args(int argc, char **argv, const char *what, struct cron_args *a)
{
	memset(a, 0, sizeof *a);
	a->pos = xcalloc((size_t)argc, sizeof *a->pos);
	a->run = xcalloc((size_t)argc, sizeof *a->run);
	bool only_args = false;
	for (int i = 2; i < argc; i++) {
		const char *s = argv[i];
		if (!only_args && !strcmp(s, "--")) {
			only_args = true;
		} else if (!only_args && s[0] == '-' && s[1]) {
			int r = cron_flag(argc, argv, &i, what, a);
			if (r)
				return r;
		} else {
			a->pos[a->npos++] = s;
		}
	}
	return 0;
}

static struct client *cron_connect(struct cli *cli)
{
	struct err err;
	struct client *c = NULL;
	if (cli_connect(cli, &c, &err) < 0)
		cli_error("%s", err.msg);
	return c;
}

static const char *field(json_t *o, const char *key, const char *none)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : none;
}

/* "ID  next run TIME" of a schedule (arg unused). */
static void cron_print_one_cb(json_t *o, const char *arg)
{
	(void)arg;
	if (json_is_true(json_object_get(o, "enabled")))
		printf("%s  next run %s\n", field(o, "id", "?"), field(o, "next_run_at", "never"));
	else
		printf("%s  disabled\n", field(o, "id", "?"));
}

/* Turns the declared files of body (from -f paths) into inline ones. */
static int cron_inline_files(json_t *body, const struct run_opts *o, struct err *err)
{
	json_t *files = json_object_get(body, "files");
	for (size_t i = 0; i < o->nfiles && i < json_array_size(files); i++) {
		char *data = NULL;
		size_t len = 0;
		if (fs_read_file(o->files[i], CRON_FILE_MAX, &data, &len, err) < 0)
			return err_wrap(err, "-f %s (a schedule's files are stored with it, up to 700 KiB each)",
					o->files[i]);
		struct buf b;
		buf_init(&b);
		base64_encode(data, len, &b);
		free(data);
		json_t *f = json_array_get(files, i);
		json_object_del(f, "size");
		json_object_set_new(f, "content_base64", json_stringn(b.data ? (const char *)b.data : "", b.len));
		buf_free(&b);
	}
	return 0;
}

/* The POST /cron-jobs body of `cron create` in *out. Returns 0 or CLI_EXIT_USAGE/FAIL after printing why. */
static int cron_create_body(const struct cron_args *a, json_t **out)
{
	*out = NULL;
	int n = 0;
	char **argv = xcalloc((size_t)(a->nrun + a->npos + 2), sizeof *argv);
	argv[n++] = (char *)"cron create";
	for (int i = 0; i < a->nrun; i++)
		argv[n++] = (char *)a->run[i];
	argv[n++] = (char *)"--";
	for (int i = 1; i < a->npos; i++)
		argv[n++] = (char *)a->pos[i];
	struct run_opts o;
	struct err err = { 0 };
	json_t *body = NULL;
	int ret = CLI_EXIT_USAGE;
	if (run_opts_parse(n, argv, &o, &err) < 0) {
		cli_usage_error("cron", "cron create: %s", err.msg);
		goto out;
	}
	ret = CLI_EXIT_FAIL;
	if (run_opts_to_json(&o, &body, &err) < 0 || cron_inline_files(body, &o, &err) < 0) {
		cli_error("cron create: %s", err.msg);
		goto out;
	}
	json_object_set_new(body, "expression", json_string(a->pos[0]));
	if (a->name)
		json_object_set_new(body, "name", json_string(a->name));
	if (a->tz)
		json_object_set_new(body, "timezone", json_string(a->tz));
	if (a->disabled)
		json_object_set_new(body, "enabled", json_false());
	*out = body;
	body = NULL; /* transferred */
	ret = CLI_EXIT_OK;
out:
	json_decref(body);
	run_opts_free(&o);
	free(argv);
	return ret;
}

static int cron_create(struct cli *cli, const struct cron_args *a)
{
	if (a->npos < 2)
		return cli_usage_error("cron", "cron create: %s", a->npos ? "missing CMD" : "missing 'EXPR' and 'CMD'");
	json_t *body;
	int ret = cron_create_body(a, &body);
	if (ret != CLI_EXIT_OK)
		return ret;
	struct client *c = cron_connect(cli);
	ret = c ? cli_call_print(c, "POST", "/cron-jobs", body, a->json, NULL, cron_print_one_cb, NULL) : CLI_EXIT_FAIL;
	json_decref(body);
	client_free(c);
	return ret;
}

/* Prints the "cron_jobs" array as a table (arg unused). */
static void cron_table_cb(json_t *list, const char *arg)
{
	(void)arg;
	static const char *const head[] = { "ID", "NAME", "EXPRESSION", "TZ", "ENABLED", "NEXT RUN", "LAST JOB" };
	static const char *const keys[] = { "id", "name", "expression", "timezone", NULL, "next_run_at", "last_job_id" };
	int w[7];
	size_t i;
	json_t *o;
	for (int k = 0; k < 7; k++)
		w[k] = (int)strlen(head[k]);
	json_array_foreach(list, i, o)
		for (int k = 0; k < 7; k++) {
			int n = keys[k] ? (int)strlen(field(o, keys[k], k == 3 ? "UTC" : "-")) : 3;
			w[k] = n > w[k] ? n : w[k];
		}
	for (int k = 0; k < 7; k++)
		printf("%-*s%s", k < 6 ? w[k] : 0, head[k], k < 6 ? "  " : "\n");
	json_array_foreach(list, i, o)
		for (int k = 0; k < 7; k++) {
			const char *v = keys[k] ? field(o, keys[k], k == 3 ? "UTC" : "-") :
				       json_is_true(json_object_get(o, "enabled")) ? "yes" : "no";
			printf("%-*s%s", k < 6 ? w[k] : 0, v, k < 6 ? "  " : "\n");
		}
}

static void cron_deleted_cb(json_t *resp, const char *arg)
{
	(void)resp;
	printf("deleted cron job %s\n", arg);
}

/* delete, enable, disable or update of schedule a->pos[0]. */
static int cron_on_id(struct cli *cli, const char *what, const struct cron_args *a)
{
	if (a->npos != 1)
		return cli_usage_error("cron", "cron %s: %s", what, a->npos ? "one ID only" : "missing ID");
	bool del = !strcmp(what, "delete"), update = !strcmp(what, "update");
	json_t *body = NULL;
	if (!del) {
		body = json_object();
		if (!update)
			json_object_set_new(body, "enabled", json_boolean(!strcmp(what, "enable")));
		if (a->expr)
			json_object_set_new(body, "expression", json_string(a->expr));
		if (a->tz)
			json_object_set_new(body, "timezone", json_string(a->tz));
		if (a->name)
			json_object_set_new(body, "name", json_string(a->name));
		if (!json_object_size(body)) {
			json_decref(body);
			return cli_usage_error("cron", "cron update: nothing to change (--expr, --tz or --name)");
		}
	}
	int ret = CLI_EXIT_FAIL;
	struct client *c = cron_connect(cli);
	if (c) {
		char *esc = client_escape(c, a->pos[0]);
		char *path = xasprintf("/cron-jobs/%s", esc);
		free(esc);
		ret = cli_call_print(c, del ? "DELETE" : "PATCH", path, body, a->json, NULL,
				     del ? cron_deleted_cb : cron_print_one_cb, a->pos[0]);
		free(path);
	}
	json_decref(body);
	client_free(c);
	return ret;
}

int cmd_cron(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("cron", "cron: missing subcommand (create, list, delete, enable, disable, update)");
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		cli_print_usage("cron");
		return CLI_EXIT_OK;
	}
	static const char *const subs[] = { "create", "list", "delete", "enable", "disable", "update" };
	bool known = false;
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		known = known || !strcmp(sub, subs[i]);
	if (!known)
		return cli_usage_error("cron", "cron: unknown subcommand \"%s\" (create, list, delete, enable, disable,"
				       " update)", sub);
	struct cron_args a;
	int ret = cron_parse_args(argc, argv, sub, &a);
	if (ret == 1) {
		ret = CLI_EXIT_OK;
	} else if (ret == 0 && !strcmp(sub, "create")) {
		ret = cron_create(cli, &a);
	} else if (ret == 0 && !strcmp(sub, "list")) {
		struct client *c = a.npos ? NULL : cron_connect(cli);
		ret = a.npos ? cli_usage_error("cron", "cron list: unexpected argument \"%s\"", a.pos[0]) :
		      c ? cli_call_print(c, "GET", "/cron-jobs", NULL, a.json, "cron_jobs", cron_table_cb, NULL) :
			  CLI_EXIT_FAIL;
		client_free(c);
	} else if (ret == 0) {
		ret = cron_on_id(cli, sub, &a);
	}
	cron_args_free(&a);
	return ret;
}
