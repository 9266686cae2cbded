/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's files (dashboard/), compiled into magsd by
 * scripts/embed-files.py (build/gen/dashboard_files.c) and served at
 * /dashboard/ on the API's address (static.c). No build step at run time.
 */
#ifndef MAGS_STATIC_H
#define MAGS_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

struct static_file {
	const char *path;		/* relative to dashboard/, e.g. "index.html" */
	const char *type;		/* Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct static_file dashboard_files[];
extern const size_t dashboard_nfiles;

/*
 * Serves GET/HEAD of url when it is "/" (a redirect to /dashboard/) or under
 * /dashboard/; returns MHD_NO with *handled false for anything else.
 */
enum MHD_Result static_serve(struct MHD_Connection *conn, const char *method, const char *url, bool *handled);

#endif
