/* SPDX-License-Identifier: MIT */
/*
 * magsd as one node of several (docs/operations.md). With PostgreSQL as its
 * database every magsd is a node: it registers itself in the nodes table,
 * heartbeats about once a second, claims queued jobs from the shared table
 * (db_nodes.c), declares lost the nodes that stopped heartbeating, and hands
 * the requests for a sandbox another node holds over to that node. With
 * SQLite there is one node, this magsd: it registers and heartbeats the
 * same way (GET /nodes shows it), and nothing else changes.
 *
 * A node woken for new jobs: PostgreSQL's LISTEN/NOTIFY on channel
 * mags_jobs, on a connection of its own; a poll every CLUSTER_POLL_MS covers
 * a lost notification.
 *
 * Threads: cluster_start once before the HTTP server; everything else from any thread.
 */
#ifndef MAGS_CLUSTER_H
#define MAGS_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>

#include "db.h"
#include "db_nodes.h"
#include "err.h"
#include "http.h"

#define CLUSTER_POLL_MS 500		/* a worker looks for queued jobs at least this often */
#define CLUSTER_TIMEOUT_DEFAULT 10	/* seconds without a heartbeat before a node is lost */
#define CLUSTER_CLAIM_WAIT_MS 30000	/* a sandbox request for a queued job waits this long for a node to claim it */

struct cluster_config {
	const char *node_id;	/* NULL = the host name */
	const char *advertise;	/* http://HOST:PORT of this node's API; NULL = from listen */
	const char *listen;	/* the API's --listen HOST:PORT */
	const char *db_target;	/* what --db gave: a path or a postgres:// URL */
	int timeout_s;		/* --node-timeout */
	const char *state_dir;	/* remembers which registration of the node id was this magsd's */
	int capacity;		/* --max-concurrent */
	const char *ssh_host;	/* --ssh-host: where this node's SSH forwarders listen */
};

/* Checks a --node-id: 1-63 of a-z A-Z 0-9 . _ - */
bool cluster_node_id_ok(const char *id);
/* Registers this node and starts the heartbeat (and, on PostgreSQL, the listener). */
int cluster_start(const struct cluster_config *cfg, struct err *err);
/* The proxy's actual port, once it listens (0 = none): other nodes forward URL requests there. */
void cluster_set_proxy_port(int port);
/* A clean stop: the node's row says stopped; the threads end. */
void cluster_stop(void);

/* Several nodes share the database (PostgreSQL). */
bool cluster_on(void);
const char *cluster_node_id(void);
int64_t cluster_timeout_ms(void);
/* New queued jobs: wakes the workers of every node. */
void cluster_notify_jobs(void);

/* GET /api/v1/nodes */
enum MHD_Result api_nodes(struct req *r);

/*
 * Where a request on job j (action: what follows /mags-jobs/:id/, "" for
 * the job itself) is served: NULL here, or the id of the node to hand it to
 * (caller frees). A queued job's sandbox requests wait for it to be claimed
 * (j is refreshed). A request another node handed over is always served here.
 */
char *cluster_route(struct req *r, struct job_row *j, const char *action);
/* The node that runs job_id when that is another one (caller frees), else NULL; as cluster_route. */
char *cluster_job_elsewhere(struct req *r, const char *job_id);
/*
 * Hands the request over to node and relays its answer, streamed. With
 * unreachable set, a node that cannot be reached (before anything was sent)
 * sets *unreachable and queues no answer: the caller answers itself.
 */
enum MHD_Result cluster_forward(struct req *r, const char *node, bool *unreachable);
/*
 * The URL proxy's side: a connected socket to the URL proxy of the node that
 * holds job_id, or -1 with err set (a job here, or no such node: err code 0).
 */
int cluster_proxy_connect(const char *job_id, struct err *err);

#endif
