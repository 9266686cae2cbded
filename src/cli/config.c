// SPDX-License-Identifier: MIT
/* CLI configuration: environment first, then ~/.mags/config.json; see config.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "xmalloc.h"

static const char *config_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

char *config_normalize_url(const char *url)
{
	size_t n = strlen(url);
	for (;;) {
		while (n && url[n - 1] == '/')
			n--;
		if (n >= 7 && !strncmp(url + n - 7, "/api/v1", 7))
			n -= 7;
		else
			break;
	}
	return xstrndup(url, n);
}

/* Reads the config file into cfg->file; a missing file is an empty config. */
static int config_read_file(struct config *cfg, struct err *err)
{
	char *text = NULL;
	size_t len = 0;
	struct err e;
	if (fs_read_file(cfg->path, CONFIG_FILE_MAX, &text, &len, &e) < 0) {
		if (e.code == ENOENT || e.code == ENOTDIR) {
			cfg->file = json_object();
			return 0;
		}
		*err = e;
		return err_wrap(err, "config");
	}
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	free(text);
	if (!j)
		return err_set(err, 0, "%s: invalid JSON (line %d: %s)", cfg->path, je.line, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(err, 0, "%s: not a JSON object", cfg->path);
	}
	cfg->file = j;
	return 0;
}

char *config_path(const char *name)
{
	const char *home = config_env("HOME");
	if (!home)
		return NULL;
	return name ? xasprintf("%s/.mags/%s", home, name) : xasprintf("%s/.mags", home);
}

int config_load(struct config *cfg, struct err *err)
{
	memset(cfg, 0, sizeof *cfg);
	const char *home = config_env("HOME");
	if (home) {
		cfg->home = xstrdup(home);
		cfg->dir = config_path(NULL);
		cfg->path = config_path("config.json");
		int r = config_read_file(cfg, err);
		if (r < 0)
			return r;
	} else {
		cfg->file = json_object();
	}
	const char *file_url = json_string_value(json_object_get(cfg->file, "api_url"));
	const char *file_token = json_string_value(json_object_get(cfg->file, "token"));
	bool file_local = json_is_true(json_object_get(cfg->file, "local"));
	const char *env_url = config_env("MAGS_API_URL");
	if (env_url) {
		cfg->api_url = config_normalize_url(env_url);
	} else if (file_url && *file_url && !file_local) {
		cfg->api_url = config_normalize_url(file_url);
	} else {
		cfg->local = true;
		cfg->api_url = config_normalize_url(file_url && *file_url ? file_url : CONFIG_LOCAL_URL);
	}
	const char *token = config_env("MAGS_TOKEN");
	if (!token)
		token = config_env("MAGS_API_TOKEN");
	if (!token && file_token && *file_token)
		token = file_token;
	cfg->token = token ? xstrdup(token) : NULL;
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->home);
	free(cfg->dir);
	free(cfg->path);
	json_decref(cfg->file);
	free(cfg->api_url);
	free(cfg->token);
	memset(cfg, 0, sizeof *cfg);
}

void config_set(struct config *cfg, const char *key, json_t *value)
{
	json_object_set_new(cfg->file, key, value);
}

int config_save(struct config *cfg, struct err *err)
{
	if (!cfg->path)
		return err_set(err, 0, "HOME is not set: nowhere to keep ~/.mags/config.json");
	int r = fs_mkdir_p(cfg->dir, 0700);
	if (r < 0)
		return err_set(err, -r, "create %s", cfg->dir);
	/* an existing directory may be wider than we want: it holds a token */
	if (chmod(cfg->dir, 0700) < 0)
		return err_set(err, errno, "chmod %s", cfg->dir);
	char *text = json_dumps(cfg->file, JSON_INDENT(2));
	size_t n = strlen(text);
	char *withnl = xasprintf("%s\n", text);
	free(text);
	r = fs_write_file(cfg->path, withnl, n + 1, 0600, err);
	free(withnl);
	return r;
}
