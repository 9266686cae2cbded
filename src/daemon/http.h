/* SPDX-License-Identifier: MIT */
/*
 * magsd's HTTP front: libmicrohttpd with a thread per connection (so a log
 * follower may block), bounded request bodies, Bearer-token auth and JSON
 * replies. Routes live in api.c and api_<resource>.c.
 */
#ifndef MAGS_HTTP_H
#define MAGS_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"

#define API_BODY_DISCARD_MAX (512LL << 20)	/* beyond this an upload is cut off */

struct req {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;	/* after /api/v1, e.g. "/mags-jobs/ID" */
	struct buf body;
	long long body_seen;	/* bytes received, kept or not */
	bool too_big;
	int64_t user_id;	/* authenticated user, 0 before auth */
	int64_t token_id;	/* the token it authenticated with */
	struct upload *up;	/* POST /mags-jobs/:id/upload: the body streams to a file */
};

/* Starts serving on "HOST:PORT". Returns 0 or a negative code with err set. */
int http_start(const char *listen, struct err *err);
void http_stop(void);

/* Queue a reply. Both take ownership of nothing the caller keeps except r. */
enum MHD_Result http_reply_json(struct req *r, unsigned status, json_t *body /* reference stolen */);
/* 200 with static JSON text (not copied: it must live as long as magsd). */
enum MHD_Result http_reply_raw_json(struct req *r, const char *json, size_t len);
enum MHD_Result http_reply_error(struct req *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * A request body that is empty or a JSON object holding at most the string
 * field `field` of 1-max printable ASCII characters: its value is copied to
 * out (max + 1 bytes), which keeps what the caller put there when the field
 * is absent. what names the request in messages ("POST /tokens"). Returns 0,
 * or -400/-413 with err set (code 400 or 413).
 */
int http_body_text_field(struct req *r, const char *what, const char *field, size_t max, char *out, struct err *err);
/* Query-string argument or NULL. */
const char *http_query(struct req *r, const char *key);
/*
 * The same, with *len its full decoded length: microhttpd cuts a value at a
 * decoded NUL ("a%00b" reads as "a"), so *len > strlen means it had one.
 */
const char *http_query_n(struct req *r, const char *key, size_t *len);

/* Routing entry points (api.c). */
enum MHD_Result api_route(struct req *r);
enum MHD_Result api_jobs(struct req *r, const char *rest);
enum MHD_Result api_workspaces(struct req *r, const char *rest);
/* api_access.c: POST /mags-jobs/:id/access, /url-aliases, and a job's JSON with its SSH state */
enum MHD_Result api_job_access(struct req *r, const struct job_row *j);
enum MHD_Result api_url_aliases(struct req *r, const char *rest);
json_t *api_job_json(const struct job_row *j);
/* POST .../sync of one of the user's workspaces (api_workspaces.c). */
enum MHD_Result api_ws_sync(struct req *r, const char *name);
/*
 * Creates and queues a job from a POST /mags-jobs body for user_id (also used
 * by cron firings, with cron_id set: declared-but-not-uploaded files are then
 * refused). Returns 0 with *out the job's JSON, or -HTTP status with err set.
 */
int api_job_create(int64_t user_id, const char *body, size_t len, const char *cron_id, json_t **out, struct err *err);
/* /cli-logins: the `mags login` approval flow (api_login.c); authenticates where needed itself. */
enum MHD_Result api_cli_login(struct req *r, const char *rest);
/* /tokens and /whoami (api_tokens.c). */
enum MHD_Result api_tokens(struct req *r, const char *rest);
enum MHD_Result api_whoami(struct req *r);
/* /cron-jobs (api_cron.c). */
enum MHD_Result api_cron(struct req *r, const char *rest);
/*
 * A running sandbox's processes (api_exec.c): POST /mags-jobs/:id/exec and
 * /mags-jobs/:id/processes[/...]; action is what follows "/:id/".
 */
enum MHD_Result api_exec(struct req *r, const struct job_row *j, const char *action);
/* Its files (api_files.c): /mags-jobs/:id/files[/...]. */
enum MHD_Result api_files(struct req *r, const struct job_row *j, const char *action);
/* The user a request's Bearer token belongs to, or 0. */
int64_t api_authenticate(struct req *r);

/*
 * File uploads (api_upload.c). begin decides, on a request's first call,
 * whether its body streams to a file instead of memory; data takes each piece;
 * finish answers once the body is complete; abort cleans up after any request.
 */
bool api_upload_begin(struct req *r, const char *url);
/* False: drop the connection (a refused body that goes on too long). */
bool api_upload_data(struct req *r, const char *data, size_t n);
enum MHD_Result api_upload_finish(struct req *r, const struct job_row *j);
void api_upload_abort(struct req *r);
/*
 * PUT /mags-jobs/:id/files (api_files.c): the body begin streamed to a
 * temporary file, now complete. Returns 0 with the file's path in *tmp (the
 * upload's still: api_upload_abort removes it when the request ends) and its
 * size in *size, or -status with err set (the refusal begin decided).
 */
#define API_FILES_PUT_MAX (16LL << 30)	/* bytes of one PUT /files body */
int api_upload_body(struct req *r, const char **tmp, long long *size, struct err *err);

#endif
