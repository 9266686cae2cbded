/* SPDX-License-Identifier: MIT */
/*
 * Parsing of a job submission (POST /api/v1/mags-jobs) from untrusted JSON.
 * Every rejection names the field and what was wrong with it. Fuzzed by
 * fuzz/jobspec_fuzz.c.
 */
#ifndef MAGS_JOBSPEC_H
#define MAGS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "names.h"

#define API_BODY_MAX (1024 * 1024)	/* bytes of a request body */
#define JOB_SCRIPT_MAX (256 * 1024)	/* bytes of a script */
#define JOB_TIMEOUT_MAX 86400		/* seconds */
#define JOB_IDLE_MAX (7 * 86400)	/* seconds of idle_timeout */
#define JOB_UPLOAD_MAX (1LL << 30)	/* bytes of one uploaded file */

#define JOB_FILES_MAX 64			/* entries of "files" */
#define JOB_FILE_NAME_MAX 255		/* bytes of a file's relative path */

/* One entry of "files": inline content, or declared and uploaded later. */
struct jobspec_file {
	char *name;		/* owned; relative path, checked by jobspec_path_check */
	unsigned mode;		/* permission bits, default 0644 */
	bool has_data;		/* content_base64 given */
	struct buf data;	/* decoded content when has_data */
	long long size;		/* declared size, -1 = not given */
};

#define JOB_URL_PORT_DEFAULT 8080

struct jobspec {
	char *script;	/* owned, NUL-free */
	bool file;	/* type "file": script is a script file's content */
	int timeout;	/* seconds, 0 = none */
	bool ephemeral;
	char *workspace;	/* owned, NULL = local */
	bool persist;
	bool persist_set;	/* "persist" was given (true or false) */
	bool base_image;
	char *from;		/* owned, NULL = none */
	bool url;		/* a public URL to port */
	int port;		/* 1-65535; 0 = JOB_URL_PORT_DEFAULT */
	bool ssh;
	char *ssh_key;		/* owned, NULL = none: a public key for root's authorized_keys */
	struct jobspec_file *files;
	size_t nfiles;
	bool always_on;		/* a server: restarted on crash, asleep when idle */
	char *startup;		/* owned, NULL = none: startup_command */
	int idle_timeout;	/* seconds, 0 = never sleep, -1 = not given (magsd's default) */
	char *image;		/* owned, NULL = magsd's default: a guest image's name (image_name_ok) */
};

/*
 * Checks a file name from a client: a relative path of at most
 * JOB_FILE_NAME_MAX bytes, no NUL, no empty, "." or ".." component, no
 * leading "/". Returns 0 or -400 with err saying what is wrong.
 */
int jobspec_path_check(const char *name, size_t len, struct err *err);

/* Parses body into *js (zeroed first; free with jobspec_free). Returns 0 or -400 with err set. */
/* The "port" and "ssh_public_key" fields, shared with POST /mags-jobs/:id/access. */
int jobspec_parse_port(json_t *v, int *out, struct err *err);
int jobspec_parse_ssh_key(json_t *v, char **out, struct err *err);

/* "idle_timeout", shared with PATCH /mags-jobs/:id. */
int jobspec_parse_idle(json_t *v, int *out, struct err *err);

/* PATCH /mags-jobs/:id: which settings a body changes, and to what. */
struct job_patch {
	bool has_always_on, has_idle, has_timeout;
	bool always_on;
	int idle_timeout;	/* seconds, 0 = never sleep, -1 = magsd's default (null) */
	int timeout;		/* seconds, 0 = none (null) */
};

/* Parses a PATCH body into *p (zeroed first). Returns 0 or -400/-413 with err set (code 400/413). */
int jobspec_parse_patch(const char *body, size_t len, struct job_patch *p, struct err *err);

int jobspec_parse(const char *body, size_t len, struct jobspec *js, struct err *err);
void jobspec_free(struct jobspec *js);

#endif
