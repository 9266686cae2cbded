// SPDX-License-Identifier: MIT
/* The dashboard's files; see static.h. */
#include <stdbool.h>
#include <string.h>

#include "static.h"

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, const void *data,
			     size_t len, const char *location)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	enum MHD_Result ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result static_serve(struct MHD_Connection *conn, const char *method, const char *url, bool *handled)
{
	static const char moved[] = "see /dashboard/\n", missing[] = "no such file in the dashboard\n";
	*handled = false;
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!strcmp(url, "/") || !strcmp(url, "/dashboard")) {
		*handled = true;
		return reply(conn, get ? MHD_HTTP_FOUND : MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", moved,
			     sizeof moved - 1, "/dashboard/");
	}
	if (strncmp(url, "/dashboard/", 11))
		return MHD_NO;
	*handled = true;
	const char *rel = url[11] ? url + 11 : "index.html";
	for (size_t i = 0; get && i < dashboard_nfiles; i++)
		if (!strcmp(dashboard_files[i].path, rel))
			return reply(conn, MHD_HTTP_OK, dashboard_files[i].type, dashboard_files[i].data,
				     dashboard_files[i].len, NULL);
	return reply(conn, get ? MHD_HTTP_NOT_FOUND : MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
		     missing, sizeof missing - 1, NULL);
}
