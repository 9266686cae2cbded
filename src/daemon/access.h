/* SPDX-License-Identifier: MIT */
/*
 * Ways into a sandbox from outside: public URLs and SSH.
 *
 * URLs: the proxy (proxy.c) takes HTTP(S) for LABEL.DOMAIN and asks
 * access_route where LABEL leads: a urls row (db.h) names a workspace (its
 * newest running job) or one job, and the guest port. The connection is
 * opened inside the sandbox's network namespace (jobs_connect), so nothing
 * is published on the host but the proxy's one port.
 *
 * SSH: a running job with SSH on has a TCP forwarder on the SSH host and a
 * port of its own, relaying to the guest's sshd (jobs.c starts it with the
 * sandbox's own host key; see jobs_ssh).
 */
#ifndef MAGS_ACCESS_H
#define MAGS_ACCESS_H

#include <jansson.h>
#include <stdbool.h>

#include "db.h"
#include "err.h"

struct access_config {
	const char *url_listen;		/* HOST:PORT of the URL proxy; "off" = none */
	bool url_listen_default;	/* not asked for: a port in use turns URLs off instead of failing */
	const char *domain;		/* URLs are NAME.DOMAIN */
	const char *tls_cert, *tls_key;	/* PEM files: HTTPS; NULL = HTTP */
	const char *ssh_host;		/* address SSH forwarders bind and report */
};

/* Starts the URL proxy. Returns 0 or <0 with err set. */
int access_start(const struct access_config *cfg, struct err *err);
void access_stop(void);
/* For GET /health: {"url_base", "url_port", "ssh_host"}. */
json_t *access_status_json(void);
/* The URL proxy's port, 0 when off. */
int access_url_port(void);
/* The address SSH forwarders listen on ("127.0.0.1"). */
const char *access_ssh_host(void);

/*
 * Gives job j's target (its named workspace, else the job) a URL leading to
 * guest port (0 = JOB_URL_PORT_DEFAULT): the workspace's name as the label
 * when it is a DNS label nobody else holds, else a unique variant. A target
 * that already has a URL keeps its label and gets the new port. 0 or <0 with
 * err set.
 */
int access_url_enable(const struct job_row *j, int port, struct err *err);

#endif
