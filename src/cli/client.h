/* SPDX-License-Identifier: MIT */
/*
 * HTTP client for the magsd REST API (docs/api-contract.md) over libcurl.
 * One client holds one curl handle, so consecutive calls reuse the
 * connection. Calls fill a struct err with the line the user should read:
 * the server's "error" text, or "cannot reach magsd at URL: ...".
 */
#ifndef MAGS_CLI_CLIENT_H
#define MAGS_CLI_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define CLIENT_BODY_MAX (64u * 1024 * 1024)	/* a non-streamed response */
#define CLIENT_LINE_MAX (16u * 1024 * 1024)	/* one NDJSON line of a stream */

enum client_result {
	CLIENT_OK = 0,
	CLIENT_E_HTTP = -1,	/* the server answered with an error; err->code is the HTTP status */
	CLIENT_E_CONN = -2,	/* no answer, or the transfer broke */
	CLIENT_E_INTR = -3,	/* aborted because the interrupt flag was set */
	CLIENT_E_PROTO = -4,	/* the answer was not what the API promises */
	CLIENT_E_CB = -5,	/* the line callback failed (its err) */
};

struct client;

/* A new client for base_url (without /api/v1) and token (may be NULL). */
struct client *client_new(const char *base_url, const char *token);
void client_free(struct client *c);
const char *client_base_url(const struct client *c);
void client_set_token(struct client *c, const char *token);
/* While *flag is non-zero, transfers in progress abort with CLIENT_E_INTR. */
void client_set_interrupt(struct client *c, volatile sig_atomic_t *flag);

/* Whether the interrupt flag is set. */
bool client_interrupted(const struct client *c);

/* Escapes s for use as one path segment; the caller frees the result. */
char *client_escape(struct client *c, const char *s);

/*
 * METHOD /api/v1PATH with body (may be NULL) as JSON. On a 2xx answer stores
 * the parsed JSON in *resp (new reference; resp may be NULL). Returns a
 * client_result.
 */
int client_call(struct client *c, const char *method, const char *path, json_t *body, json_t **resp,
		struct err *err);

/*
 * POST /api/v1PATH (e.g. "/mags-jobs/ID/upload?name=N&mode=0644") with the
 * content of the local regular file `file` as the body
 * (application/octet-stream), streamed from disk with its size announced in
 * Content-Length: memory use does not grow with the file. If the file
 * changes size while it is sent, the transfer fails. On a 2xx answer stores
 * the parsed JSON in *resp (new reference; resp may be NULL) and the number
 * of bytes sent in *sent (may be NULL). Returns a client_result; local
 * errors (open, read) are CLIENT_E_CB with err saying which file.
 */
int client_upload(struct client *c, const char *path, const char *file, json_t **resp, long long *sent,
		  struct err *err);

/*
 * Called for each complete, non-empty line of a streamed answer (without the
 * '\n'; line[len] is NUL). Returns 0 to go on, or negative with err set to
 * abort the transfer (client_stream then returns CLIENT_E_CB).
 */
typedef int (*client_line_cb)(void *arg, char *line, size_t len, struct err *err);

/*
 * GET /api/v1PATH and hands each line of the answer to cb as it arrives,
 * however the data is split across reads. Returns CLIENT_OK when the answer
 * ended normally (a trailing unterminated line is delivered too).
 */
int client_stream(struct client *c, const char *path, client_line_cb cb, void *arg, struct err *err);

/*
 * POST /api/v1PATH with body (may be NULL) as JSON, and hands each line of
 * the answer to cb as it arrives, as client_stream does (POST /exec's NDJSON
 * output). An error answer is CLIENT_E_HTTP with magsd's text in err.
 */
int client_post_stream(struct client *c, const char *path, json_t *body, client_line_cb cb, void *arg,
		       struct err *err);

/*
 * POST /api/v1PATH with data[0..len) as the body (application/octet-stream;
 * len may be 0), e.g. a process's stdin. On a 2xx answer stores the parsed
 * JSON in *resp (new reference; resp may be NULL). Returns a client_result.
 */
int client_post_bytes(struct client *c, const char *path, const void *data, size_t len, json_t **resp,
		      struct err *err);

/*
 * A new client (free with client_free) for the same server and token as c,
 * with a connection of its own: one client is used by one thread at a time,
 * so a second thread (stdin of mags exec) takes a duplicate.
 */
struct client *client_dup(const struct client *c);

/*
 * GET /api/v1PATH and writes a 2xx answer's body to fd as it arrives (a file
 * of any size: memory does not grow with it); *got is the number of bytes
 * written. An error answer is CLIENT_E_HTTP with magsd's text in err; a
 * failed write is CLIENT_E_CB. A transfer that broke is CLIENT_E_CONN: what
 * was written is then incomplete.
 */
int client_download(struct client *c, const char *path, int fd, long long *got, struct err *err);

/*
 * PUT /api/v1PATH with the body read from fd (application/octet-stream):
 * size bytes announced in Content-Length (the transfer fails when fd ends
 * sooner), or with size < 0 chunked until EOF (a pipe). what names fd in
 * messages. The answer may take as long as magsd needs (no stall limit).
 * On a 2xx answer stores the parsed JSON in *resp (new reference; resp may
 * be NULL); *sent is the number of bytes sent. Returns a client_result.
 */
int client_put_fd(struct client *c, const char *path, int fd, const char *what, long long size, json_t **resp,
		  long long *sent, struct err *err);

/* 0 when GET /api/v1/health answers 200 within timeout_ms, else CLIENT_E_*. */
int client_health(struct client *c, long timeout_ms);

#endif
