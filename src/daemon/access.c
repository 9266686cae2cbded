// SPDX-License-Identifier: MIT
/* Public URLs and SSH into sandboxes; see access.h. */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "jobs.h"
#include "jobspec.h"
#include "log.h"
#include "names.h"
#include "proxy.h"
#include "xmalloc.h"

#define ROUTE_CONNECT_MS 30000	/* a sandbox that is starting (or waking) gets this long to be reachable */

static struct {
	struct proxy *proxy;
	char *ssh_host;
	char *url_base;		/* "http://NAME.localhost:7558" */
	int url_port;
} A;

json_t *access_status_json(void)
{
	json_t *o = json_object();
	json_object_set_new(o, "url_base", A.url_base ? json_string(A.url_base) : json_null());
	json_object_set_new(o, "url_port", A.proxy ? json_integer(A.url_port) : json_null());
	json_object_set_new(o, "ssh_host", json_string(access_ssh_host()));
	return o;
}

int access_url_port(void)
{
	return A.proxy ? A.url_port : 0;
}

const char *access_ssh_host(void)
{
	return A.ssh_host ? A.ssh_host : "127.0.0.1";
}

/* Where label leads: the job to connect to and its port. */
static void route(void *ctx, const char *label, struct proxy_target *t)
{
	(void)ctx;
	struct url_row u;
	if (db_url_get(label, &u) < 0) {
		t->status = 404;
		snprintf(t->why, sizeof t->why, "There is no sandbox called \"%s\" here.", label);
		return;
	}
	int port = u.port;
	if (u.alias) {
		struct url_row main;
		port = db_url_of(u.user_id, *u.workspace ? u.workspace : NULL, u.job_id, &main) == 0 ? main.port
											 : JOB_URL_PORT_DEFAULT;
	}
	char *job = *u.workspace ? db_running_job_of(u.user_id, u.workspace) : xstrdup(u.job_id);
	if (!job) {
		t->status = 502;
		snprintf(t->why, sizeof t->why, "No sandbox is running for workspace \"%s\" (start one with mags new %s).",
			 u.workspace, u.workspace);
		return;
	}
	struct err err = { 0 };
	/* a node of a cluster: the proxy of the node that holds it routes it again there */
	t->fd = cluster_proxy_connect(job, &err);
	if (t->fd < 0 && err.code == 0)
		t->fd = jobs_connect(job, port, ROUTE_CONNECT_MS, &err);
	if (t->fd >= 0)
		snprintf(t->tag, sizeof t->tag, "%s", job);
	if (t->fd < 0) {
		t->status = err.code == 404 ? 404 : 502;
		snprintf(t->why, sizeof t->why, "Sandbox \"%s\": %.200s.", label, err.msg);
	}
	free(job);
}

int access_start(const struct access_config *cfg, struct err *err)
{
	free(A.ssh_host);
	A.ssh_host = xstrdup(cfg->ssh_host && *cfg->ssh_host ? cfg->ssh_host : "127.0.0.1");
	if (!cfg->url_listen || !strcmp(cfg->url_listen, "off"))
		return 0;
	struct proxy_cfg pc = { .listen = cfg->url_listen, .domain = cfg->domain, .tls_cert = cfg->tls_cert,
				.tls_key = cfg->tls_key, .route = route, .release = jobs_disconnect };
	A.proxy = proxy_start(&pc, err);
	if (!A.proxy && cfg->url_listen_default) {
		log_warn("public URLs are off: the proxy could not listen on %s (%s); choose with --url-listen",
			 cfg->url_listen, err->msg);
		err_clear(err);
		return 0;
	}
	if (!A.proxy)
		return err_wrap(err, "URL proxy on %s", cfg->url_listen);
	int port = proxy_port(A.proxy);
	bool tls = cfg->tls_cert != NULL;
	char *suffix = (port == 443 && tls) || (port == 80 && !tls) ? xstrdup(cfg->domain)
								    : xasprintf("%s:%d", cfg->domain, port);
	db_url_base(tls ? "https" : "http", suffix);
	A.url_port = port;
	A.url_base = xasprintf("%s://NAME.%s", tls ? "https" : "http", suffix);
	log_info("public URLs: %s://NAME.%s (proxy on port %d)", tls ? "https" : "http", suffix, port);
	free(suffix);
	return 0;
}

void access_stop(void)
{
	if (A.proxy)
		proxy_stop(A.proxy);
	A.proxy = NULL;
	free(A.ssh_host);
	free(A.url_base);
	A.ssh_host = A.url_base = NULL;
}

/* A workspace name as a DNS label: lower case, '.' and '_' become '-', no '-' at either end. */
static void label_from(const char *name, char out[URL_LABEL_MAX + 1])
{
	size_t n = 0;
	for (const char *p = name; *p && n < URL_LABEL_MAX; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (c == '.' || c == '_')
			c = '-';
		out[n++] = c;
	}
	while (n && out[n - 1] == '-')
		n--;
	out[n] = '\0';
}

int access_url_enable(const struct job_row *j, int port, struct err *err)
{
	struct url_row u;
	if (port <= 0)
		port = JOB_URL_PORT_DEFAULT;
	if (db_url_of(j->user_id, j->workspace, j->id, &u) == 0) {
		u.port = port;
		return db_url_put(&u, err);
	}
	memset(&u, 0, sizeof u);
	u.user_id = j->user_id;
	u.port = port;
	if (j->workspace)
		snprintf(u.workspace, sizeof u.workspace, "%s", j->workspace);
	else
		snprintf(u.job_id, sizeof u.job_id, "%s", j->id);
	char base[URL_LABEL_MAX + 1];
	if (j->workspace)
		label_from(j->workspace, base);
	else
		snprintf(base, sizeof base, "%.13s", j->id); /* "0a1b2c3d-4e5f": the id's first groups */
	/* the preferred label, else it with the job id's first group (unique) */
	snprintf(u.label, sizeof u.label, "%s", base);
	struct err e1 = { 0 };
	if (url_label_ok(u.label) && db_url_put(&u, &e1) == 0)
		return 0;
	if (e1.code && e1.code != 409) {
		*err = e1;
		return -1;
	}
	snprintf(u.label, sizeof u.label, "%.40s-%.8s", base, j->id);
	return db_url_put(&u, err);
}
