/* SPDX-License-Identifier: MIT */
/*
 * Where the CLI finds magsd and its token: MAGS_API_URL / MAGS_TOKEN
 * (alias MAGS_API_TOKEN) in the environment, else ~/.mags/config.json
 * ({"api_url", "token", "local"}, file 0600 in a 0700 directory). Without
 * an API URL anywhere (or with "local": true) the CLI is in local
 * single-user mode against a magsd on CONFIG_LOCAL_URL, started on demand
 * (local.c). See docs/api-contract.md, "CLI".
 */
#ifndef MAGS_CLI_CONFIG_H
#define MAGS_CLI_CONFIG_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

#define CONFIG_LOCAL_URL "http://127.0.0.1:7557"
#define CONFIG_LOCAL_LISTEN "127.0.0.1:7557"
#define CONFIG_FILE_MAX (64 * 1024)

struct config {
	char *home;		/* $HOME, NULL when unset; owned (as are all strings here) */
	char *dir;		/* $HOME/.mags */
	char *path;		/* $HOME/.mags/config.json */
	json_t *file;		/* the config file's object ({} when absent); owned reference */
	char *api_url;		/* resolved base URL, without /api/v1 or a trailing '/' */
	char *token;		/* resolved token, NULL when none */
	bool local;		/* local single-user mode */
};

/*
 * $HOME/.mags/NAME, or $HOME/.mags itself when name is NULL: where the CLI
 * keeps its files (config.json, the SSH key, known_hosts). A new string, or
 * NULL when HOME is unset.
 */
char *config_path(const char *name);

/* Fills cfg from the environment and the config file. Free with config_free. */
int config_load(struct config *cfg, struct err *err);
void config_free(struct config *cfg);
/* Stores key = value (a new reference is taken over) in cfg->file. */
void config_set(struct config *cfg, const char *key, json_t *value);
/* Writes cfg->file atomically to cfg->path (directory 0700, file 0600). */
int config_save(struct config *cfg, struct err *err);

/* Drops trailing '/' and a trailing "/api/v1" from a base URL; new string. */
char *config_normalize_url(const char *url);

#endif
