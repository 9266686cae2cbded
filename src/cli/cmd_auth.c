// SPDX-License-Identifier: MIT
/*
 * mags login: the browser approval flow (REST /cli-logins): asks magsd for a
 * pending login, shows (and, where there is a desktop, opens) the dashboard
 * page that approves it, polls until it is approved, then saves the new
 * token in ~/.mags/config.json (0600).
 * mags whoami: who the CLI's token belongs to (GET /whoami) and where that
 * token comes from. mags logout: forgets the token saved in
 * ~/.mags/config.json (MAGS_TOKEN / MAGS_API_TOKEN, when set, still win).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "config.h"
#include "xmalloc.h"

#define LOGIN_WAIT_S 600	/* as long as magsd keeps a pending login */

const char cmd_login_usage[] =
	"usage: mags login [--api-url URL] [--no-browser]\n"
	"Signs the CLI in through the dashboard: prints (and, on a desktop, opens)\n"
	"the page that approves this login, waits until you approve it there, and\n"
	"saves the new API token in ~/.mags/config.json (mode 0600).\n"
	"  --api-url URL   the magsd to sign in to (default: MAGS_API_URL, the\n"
	"                  config file's api_url, or http://127.0.0.1:7557)\n"
	"  --no-browser    only print the URL\n"
	"MAGS_TOKEN and MAGS_API_TOKEN, when set, override the saved token.\n";

static volatile sig_atomic_t login_interrupted;

static void login_signal_cb(int sig)
{
	(void)sig;
	login_interrupted = 1;
}

/* xdg-open url in the background when there is a desktop to open it on; failures are silent. */
static void open_browser(const char *url)
{
	if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
		return;
	pid_t pid = fork();
	if (pid != 0)
		return;
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setsid();
	execlp("xdg-open", "xdg-open", url, (char *)NULL);
	_exit(127);
}

/* Polls the login until it is decided. Returns 0 with *res (approved), or CLI_EXIT_FAIL after saying why. */
static int login_wait(struct client *c, const char *code, const char *secret, json_t **res)
{
	char *path = xasprintf("/cli-logins/%s/token?secret=%s", code, secret);
	int ret = CLI_EXIT_FAIL;
	for (time_t end = time(NULL) + LOGIN_WAIT_S; time(NULL) < end && !login_interrupted;) {
		struct err err;
		json_t *o = NULL;
		if (client_call(c, "GET", path, NULL, &o, &err) < 0) {
			if (!login_interrupted)
				cli_error("%s", err.code == 404 ? "the login expired before it was approved" : err.msg);
			break;
		}
		const char *st = json_string_value(json_object_get(o, "status"));
		if (st && !strcmp(st, "approved") && json_string_value(json_object_get(o, "token"))) {
			*res = o;
			ret = CLI_EXIT_OK;
			break;
		}
		bool denied = st && !strcmp(st, "denied");
		json_decref(o);
		if (denied) {
			cli_error("the login was denied in the dashboard");
			break;
		}
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
	if (login_interrupted)
		cli_error("interrupted: not logged in");
	free(path);
	return ret;
}

/* Saves api_url and token in the config file; the saved URL makes the CLI leave local mode. */
static int login_save(struct config *cfg, const char *api_url, const char *token)
{
	struct err err;
	config_set(cfg, "api_url", json_string(api_url));
	config_set(cfg, "token", json_string(token));
	if (strcmp(api_url, CONFIG_LOCAL_URL))
		config_set(cfg, "local", json_false());
	if (config_save(cfg, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

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

int cmd_login(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	const char *url_arg = NULL;
	bool browser = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(cmd_login_usage, stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(argv[i], "--no-browser")) {
			browser = false;
		} else if (!strcmp(argv[i], "--api-url") && i + 1 < argc) {
			url_arg = argv[++i];
		} else {
			return cli_usage_error("login", "login: unexpected argument \"%s\"", argv[i]);
		}
	}
	struct err err;
	struct config cfg;
	if (config_load(&cfg, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_EXIT_FAIL;
	}
	char *api_url = config_normalize_url(url_arg ? url_arg : cfg.api_url);
	struct client *c = client_new(api_url, NULL);
	char host[128] = "?", *client_name;
	gethostname(host, sizeof host - 1);
	client_name = xasprintf("mags CLI on %.40s", host);
	json_t *body = json_pack("{s:s}", "client", client_name), *start = NULL, *res = NULL;
	int ret = CLI_EXIT_FAIL;
	if (client_call(c, "POST", "/cli-logins", body, &start, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	const char *code = json_string_value(json_object_get(start, "code"));
	const char *secret = json_string_value(json_object_get(start, "secret"));
	const char *verify = json_string_value(json_object_get(start, "verify_url"));
	if (!code || !secret || !verify) {
		cli_error("magsd answered the login request without a code");
		goto out;
	}
	fprintf(stderr, "To sign in, open this page (signed in to the dashboard) and approve the code %s:\n  %s\n"
		"Waiting for the approval... (Ctrl-C to give up)\n", code, verify);
	if (browser)
		open_browser(verify);
	login_interrupted = 0;
	signal(SIGINT, login_signal_cb);
	signal(SIGTERM, login_signal_cb);
	client_set_interrupt(c, &login_interrupted);
	if ((ret = login_wait(c, code, secret, &res)) == CLI_EXIT_OK &&
	    (ret = login_save(&cfg, api_url, json_string_value(json_object_get(res, "token")))) == CLI_EXIT_OK)
		printf("logged in to %s as %s\n", api_url, json_string_value(json_object_get(res, "user")));
out:
	json_decref(body);
	json_decref(start);
	json_decref(res);
	free(client_name);
	free(api_url);
	client_free(c);
	config_free(&cfg);
	return ret;
}
