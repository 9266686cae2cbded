/* SPDX-License-Identifier: MIT */
/*
 * The small request parsers of the REST API that have no module of their
 * own: JSON bodies of POST /tokens, /cli-logins, /mags-jobs/:id/access and
 * /url-aliases, and the query parameters of GET /mags-jobs, GET
 * /mags-jobs/:id/logs and POST /mags-jobs/:id/upload; the paths, queries and
 * mkdir body of /mags-jobs/:id/files. Everything here is
 * client input: each function takes bytes and lengths (no microhttpd, no
 * database), answers 0 or a negative code with err set (code 400, or 413
 * for an oversized body) whose message the handler sends as it is, and is
 * fuzzed by fuzz/apiparse_fuzz.c. The bigger bodies have their own parsers:
 * jobspec.c (jobs), cronspec.c (cron jobs).
 */
#ifndef MAGS_APIPARSE_H
#define MAGS_APIPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/*
 * A body that is empty or a JSON object holding at most the string field
 * `field` of 1-max printable ASCII characters: its value is copied to out
 * (max + 1 bytes), which keeps what the caller put there when the field is
 * absent. what names the request in messages ("POST /tokens").
 */
int apiparse_text_field(const char *body, size_t len, const char *what, const char *field, size_t max, char *out,
			struct err *err);

/* A body that must be a JSON object ("{}" when empty). Returns a new reference, or NULL with err set. */
json_t *apiparse_object(const char *body, size_t len, struct err *err);

/* POST /mags-jobs/:id/access: {"url": true, "port": P} and/or {"ssh": true, "ssh_public_key": K}. */
struct apiparse_access {
	bool url, ssh;
	int port;	/* 0: the default */
	char *key;	/* owned, NULL = none */
};

/* Fills *a (zeroed first). a->key is the caller's to free, on failure too. */
int apiparse_access(const char *body, size_t len, struct apiparse_access *a, struct err *err);

/* POST /url-aliases: {"alias": A, "workspace": NAME} or {"alias": A, "job_id": ID}. */
struct apiparse_alias {
	char *alias;		/* owned: a DNS label (url_label_ok) */
	char *workspace;	/* owned, NULL or a workspace name (ws_name_ok) */
	char *job_id;		/* owned, NULL or any string (looked up, so only found or not) */
};

/* Fills *a (zeroed first; freed again on failure). */
int apiparse_alias(const char *body, size_t len, struct apiparse_alias *a, struct err *err);
void apiparse_alias_free(struct apiparse_alias *a);

/*
 * POST /mags-jobs/:id/upload?name=NAME[&mode=OCTAL]. name is the decoded
 * value (NULL when absent) and name_len its full length: microhttpd cuts a
 * value at a decoded NUL, so a longer name_len means the name had one. mode
 * NULL: 0644 into *mode_out.
 */
int apiparse_upload_query(const char *name, size_t name_len, const char *mode, unsigned *mode_out, struct err *err);

/*
 * A sandbox path of the files API (docs/sandboxes.md, "Files"): len is its
 * full length (a longer len than strlen means a NUL). Absolute, or relative
 * to /root; 1 to APIPARSE_PATH_MAX bytes, no NUL, no empty, "." or ".."
 * component (so no trailing slash); "/" alone is the root.
 */
#define APIPARSE_PATH_MAX 4096
int apiparse_file_path(const char *path, size_t len, struct err *err);

/*
 * The query of /mags-jobs/:id/files[/...]: path (NULL when absent; path_len
 * its full length), mode (octal permission bits, NULL: 0644 into *mode_out)
 * and recursive ("1"/"true" or "0"/"false"; NULL: false).
 */
int apiparse_files_query(const char *path, size_t path_len, const char *mode, const char *recursive,
			 unsigned *mode_out, bool *recursive_out, struct err *err);

/*
 * POST /mags-jobs/:id/files/mkdir: {"path": P, "parents": bool, "mode": "0755"}
 * (parents default false, mode an octal string, default 0755). *path is the
 * caller's to free (NULL on failure).
 */
int apiparse_mkdir(const char *body, size_t len, char **path, bool *parents, unsigned *mode, struct err *err);

/* GET /mags-jobs?status=S&limit=N&workspace=W (each NULL when absent): *limit_out 100 unless given. */
int apiparse_jobs_query(const char *status, const char *limit, const char *workspace, int *limit_out,
			struct err *err);

/* GET /mags-jobs/:id/logs?since=SEQ&follow=true|1 (each NULL when absent). */
int apiparse_logs_query(const char *since, const char *follow, int64_t *since_out, bool *follow_out, struct err *err);

/* DELETE /tokens/:id: the id, or 0 when it is not a positive decimal number. */
long long apiparse_token_id(const char *s);

#endif
