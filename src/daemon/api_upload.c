// SPDX-License-Identifier: MIT
/*
 * POST /api/v1/mags-jobs/:id/upload?name=NAME[&mode=OCTAL]: the raw body is
 * a file for the job's working directory. The body streams to a temporary
 * file (never into memory) and is hashed on the way; the request is checked
 * (token, job, name) on its first call, so a refused upload only costs
 * reading what the client insists on sending. Once complete the file becomes
 * STATE/uploads/<job>/<seq>: a queued job gets it before its script runs (and
 * starts when the last file it declared has arrived); a running job gets it
 * at once, through its worker.
 *
 * PUT /api/v1/mags-jobs/:id/files?path=P[&mode=OCTAL] (api_files.c) streams
 * its body the same way: to a temporary file next to the job's uploads,
 * which api_files sends on to the sandbox once it is complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apiparse.h"
#include "base64.h"
#include "http.h"
#include "jobs.h"
#include "jobspec.h"
#include "log.h"
#include "utf8.h"
#include "workspace.h"
#include "xmalloc.h"

struct upload {
	unsigned status;	/* an error to answer once the body is read, or 0 */
	char *error;
	bool files;		/* PUT .../files: for api_upload_body, not api_upload_finish */
	long long max;		/* bytes of body kept */
	long long discard_max;	/* refused: bytes read on before the connection is dropped */
	char job[64];
	char *name;
	unsigned mode;
	int fd;
	char *tmp;
	long long size;
	EVP_MD_CTX *sha;
};

static void refuse(struct upload *u, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(struct upload *u, unsigned status, const char *fmt, ...)
{
	if (u->status)
		return;
	va_list ap;
	va_start(ap, fmt);
	u->error = xvasprintf(fmt, ap);
	va_end(ap);
	u->status = status;
	u->discard_max = (u->files ? u->size : JOB_UPLOAD_MAX) + API_BODY_DISCARD_MAX;
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
		unlink(u->tmp);
	}
}

/* "/api/v1/mags-jobs/ID/<action>" -> ID in out (an id, or for files a workspace name). */
static bool upload_path(const char *url, const char *action, char out[64])
{
	static const char pre[] = "/api/v1/mags-jobs/";
	if (strncmp(url, pre, sizeof pre - 1) != 0)
		return false;
	const char *id = url + sizeof pre - 1;
	const char *slash = strchr(id, '/');
	if (!slash || strcmp(slash + 1, action) != 0 || slash == id || slash - id >= 64)
		return false;
	memcpy(out, id, (size_t)(slash - id));
	out[slash - id] = '\0';
	return true;
}

/*
 * PUT .../files on its first call: the job (by id, or the workspace's
 * running one), its state and the query are checked now; the body then
 * streams to a temporary file. Refusals are answered by api_upload_body.
 */
static void files_begin(struct req *r, struct upload *u)
{
	u->files = true;
	u->max = API_FILES_PUT_MAX;
	r->user_id = api_authenticate(r);
	if (!r->user_id) {
		refuse(u, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token (send Authorization: Bearer TOKEN)");
		return;
	}
	struct job_row j;
	if (db_job_get(u->job, r->user_id, &j) < 0 && db_job_get_running_ws(u->job, r->user_id, &j) < 0) {
		refuse(u, MHD_HTTP_NOT_FOUND, "job \"%s\" not found", u->job);
		return;
	}
	bool done = !strcmp(j.status, "completed") || !strcmp(j.status, "failed");
	if (done)
		refuse(u, MHD_HTTP_CONFLICT, "job %s is %s; the files API needs a running sandbox", j.id, j.status);
	char *dir = done ? NULL : ws_upload_dir(j.id, true);
	db_job_row_free(&j);
	if (done)
		return;
	size_t plen = 0;
	const char *path = http_query_n(r, "path", &plen);
	unsigned mode;
	bool recursive;
	struct err err = { 0 };
	if (apiparse_files_query(path, plen, http_query(r, "mode"), http_query(r, "recursive"), &mode, &recursive,
				 &err) < 0) {
		free(dir);
		refuse(u, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
		return;
	}
	u->tmp = xasprintf("%s/.files-XXXXXX", dir);
	free(dir);
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0)
		refuse(u, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload: %s", strerror(errno));
}

bool api_upload_begin(struct req *r, const char *url)
{
	char id[64];
	bool files = !strcmp(r->method, "PUT");
	if (!upload_path(url, files ? "files" : "upload", id))
		return false;
	struct upload *u = xcalloc(1, sizeof *u);
	u->fd = -1;
	u->max = JOB_UPLOAD_MAX;
	snprintf(u->job, sizeof u->job, "%s", id);
	r->up = u;
	if (files) {
		files_begin(r, u);
		return true;
	}
	if (strlen(id) >= 40) {
		refuse(u, MHD_HTTP_NOT_FOUND, "job \"%s\" not found", id);
		return true;
	}
	r->user_id = api_authenticate(r);
	if (!r->user_id) {
		refuse(u, MHD_HTTP_UNAUTHORIZED, "missing or invalid API token (send Authorization: Bearer TOKEN)");
		return true;
	}
	struct job_row j;
	if (db_job_get(id, r->user_id, &j) < 0) {
		refuse(u, MHD_HTTP_NOT_FOUND, "job \"%s\" not found", id);
		return true;
	}
	bool done = !strcmp(j.status, "completed") || !strcmp(j.status, "failed");
	db_job_row_free(&j);
	if (done) {
		refuse(u, MHD_HTTP_CONFLICT, "job %s has already ended; files go to queued or running jobs", id);
		return true;
	}
	/* MHD cuts a decoded value at a NUL ("a%00b" reads as "a"): the full length tells */
	size_t full = 0;
	const char *name = http_query_n(r, "name", &full);
	struct err err = { 0 };
	if (apiparse_upload_query(name, full, http_query(r, "mode"), &u->mode, &err) < 0) {
		refuse(u, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
		return true;
	}
	u->name = xstrdup(name);
	char *dir = ws_upload_dir(id, true);
	u->tmp = xasprintf("%s/.upload-XXXXXX", dir);
	free(dir);
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0) {
		refuse(u, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload: %s", strerror(errno));
		return true;
	}
	u->sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL);
	return true;
}

bool api_upload_data(struct req *r, const char *data, size_t n)
{
	struct upload *u = r->up;
	u->size += (long long)n;
	if (u->status) /* refused: read on, so the client sees the answer, but not forever */
		return u->size <= u->discard_max;
	if (u->size > u->max) {
		refuse(u, MHD_HTTP_CONTENT_TOO_LARGE, "file larger than %lld bytes", u->max);
		return true;
	}
	if (u->sha)
		EVP_DigestUpdate(u->sha, data, n);
	while (n) {
		ssize_t w = write(u->fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			refuse(u, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload: %s", strerror(w < 0 ? errno : EIO));
			return true;
		}
		data += w;
		n -= (size_t)w;
	}
	return true;
}

int api_upload_body(struct req *r, const char **tmp, long long *size, struct err *err)
{
	struct upload *u = r->up;
	*tmp = NULL;
	*size = 0;
	if (!u)
		return err_set(err, MHD_HTTP_BAD_REQUEST, "send the file as the body of PUT /mags-jobs/:id/files?path=P");
	if (u->status)
		return err_set(err, (int)u->status, "%s", u->error);
	if (u->fd >= 0 && close(u->fd) < 0) {
		u->fd = -1;
		return err_set(err, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload: %s", strerror(errno));
	}
	u->fd = -1;
	*tmp = u->tmp;
	*size = u->size;
	return 0;
}

enum MHD_Result api_upload_finish(struct req *r, const struct job_row *j)
{
	struct upload *u = r->up;
	if (u && u->files)
		u = NULL;
	if (!u)
		return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "upload: send the file as the body of POST /mags-jobs/:id/upload?name=NAME");
	if (u->status)
		return http_reply_error(r, u->status, "%s", u->error);
	close(u->fd);
	u->fd = -1;
	unsigned char h[32];
	char hex[65];
	EVP_DigestFinal_ex(u->sha, h, NULL);
	hex_encode(h, sizeof h, hex);
	int seq = 0;
	int pending = db_file_uploaded(j->id, u->name, u->mode, u->size, &seq);
	char *dir = ws_upload_dir(j->id, false);
	char *dst = xasprintf("%s/%d", dir, seq);
	free(dir);
	int rr = rename(u->tmp, dst);
	free(dst);
	if (rr < 0)
		return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload: %s", strerror(errno));
	struct job_row now;
	if (db_job_get(j->id, 0, &now) < 0)
		return http_reply_error(r, MHD_HTTP_NOT_FOUND, "job \"%s\" not found", j->id);
	unsigned status = MHD_HTTP_CREATED;
	struct err err = { 0 };
	if (!strcmp(now.status, "running")) {
		int c = jobs_deliver_file(now.id, seq, u->name, u->mode, &err);
		if (c == -ENOENT)
			status = MHD_HTTP_CONFLICT, snprintf(err.msg, sizeof err.msg, "job %s ended before the file arrived", now.id);
		else if (c < 0)
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	} else if (!strcmp(now.status, "queued") && pending == 0 && j->files_pending > 0) {
		log_info("job %s: every declared file has arrived; queued", now.id);
		jobs_submit(now.id);
	} else if (strcmp(now.status, "queued") != 0) {
		status = MHD_HTTP_CONFLICT;
		snprintf(err.msg, sizeof err.msg, "job %s ended before the file arrived", now.id);
	}
	db_job_row_free(&now);
	if (status != MHD_HTTP_CREATED)
		return http_reply_error(r, status, "%s", err.msg);
	json_t *o = json_object();
	json_object_set_new(o, "name", utf8_json_string(u->name));
	json_object_set_new(o, "size", json_integer(u->size));
	json_object_set_new(o, "sha256", json_string(hex));
	json_object_set_new(o, "files_pending", json_integer(pending));
	return http_reply_json(r, MHD_HTTP_CREATED, o);
}

void api_upload_abort(struct req *r)
{
	struct upload *u = r->up;
	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp)
		unlink(u->tmp); /* gone already when the upload was kept */
	if (u->sha)
		EVP_MD_CTX_free(u->sha);
	free(u->tmp);
	free(u->name);
	free(u->error);
	free(u);
	r->up = NULL;
}
