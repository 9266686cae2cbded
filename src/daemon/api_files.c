// SPDX-License-Identifier: MIT
/* PLACEHOLDER while the files API is written (issue 10): replaced before commit. */
#include "http.h"

enum MHD_Result api_files(struct req *r, const struct job_row *j, const char *action)
{
	(void)j;
	return http_reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s /mags-jobs/:id/%.100s", r->method, action);
}
