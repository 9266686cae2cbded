/* SPDX-License-Identifier: MIT */
/*
 * The cluster's shared state (schema 6): the nodes table (who is alive, how
 * loaded, where to reach it), which node claimed each job, where a job should
 * go (placement) and which workspaces each node has on its disk. Every magsd
 * node runs these against the one database; claims and the handling of a
 * lost node are single transactions, so no job runs on two nodes.
 */
#ifndef MAGS_DB_NODES_H
#define MAGS_DB_NODES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define NODE_ID_MAX 64
#define NODE_PLACE_GRACE_MS 2000	/* a job's preferred node has this long to claim it; then any node may */

struct node_row {
	char id[NODE_ID_MAX];
	char *url;		/* owned: its API, http://HOST:PORT */
	char *proxy;		/* owned, may be NULL: its URL proxy, HOST:PORT */
	char *ssh_host;		/* owned, may be NULL */
	int capacity, running;
	char state[16];		/* alive | lost | stopped */
	int64_t started_at, heartbeat_at;
};
void db_node_row_free(struct node_row *n);

/*
 * Registers node n (or takes its row over again after a restart) as alive,
 * heartbeat now; sets n->started_at and n->heartbeat_at to that time.
 */
int db_node_register(struct node_row *n, struct err *err);
/*
 * The node's heartbeat: time and running count. Returns 1, or 0 when the row
 * is no longer alive (another node declared it lost), or < 0 on a database error.
 */
int db_node_heartbeat(const char *id, int running);
/* A clean stop: state stopped (its jobs were ended or queued again first). */
void db_node_stopped(const char *id);
/* Where node id's URL proxy is reached, HOST:PORT. */
void db_node_set_proxy(const char *id, const char *proxy);
/* Fills *n; 0 or -ENOENT. */
int db_node_get(const char *id, struct node_row *n);
/* Every node, by id: [{"id", "url", "state", "running", "capacity", "heartbeat_at", "started_at", "self"}]. */
json_t *db_nodes_json(const char *self, int64_t timeout_ms);

/*
 * Declares lost every alive node other than self whose heartbeat is older
 * than timeout_ms, in one transaction per node: its always-on jobs go back to
 * the queue, its other running jobs fail ("lost: node ID stopped answering"),
 * the workspaces they held are released. Returns how many nodes it declared lost.
 */
int db_nodes_sweep_lost(const char *self, int64_t timeout_ms);

/*
 * Claims the next queued job this node may run: one with no preferred node,
 * this node, a preferred node that let NODE_PLACE_GRACE_MS pass or is not
 * alive (unless pinned there). The row is locked with SKIP LOCKED, so nodes
 * claiming at once get different jobs. Returns 1 with id filled, 0 when none,
 * < 0 on a database error.
 */
int db_job_claim_next(const char *self, const char *engine, int64_t timeout_ms, char id[40]);
/*
 * Placement of a new queued job: the node that has its workspace on disk
 * (pinned there when the workspace lives only on that disk, i.e. not
 * persistent, or when files were uploaded to pin_node), else the least
 * loaded alive node. Records it as the job's preferred node.
 */
void db_job_place(const char *id, int64_t user_id, const char *workspace, bool ws_in_store, const char *pin_node,
		  int64_t timeout_ms);
/* Job id's preferred node ("" = none) and whether it is pinned there. 0 or -ENOENT. */
int db_job_hint(const char *id, char hint[NODE_ID_MAX], bool *pinned);
/* Stops job id if it is still queued (no node claimed it): 1, else 0. */
int db_job_stop_queued(const char *id);
/* The node that claimed job id ("" = none or not known). */
void db_job_node(const char *id, char node[NODE_ID_MAX]);
/* Node self has workspace (user_id, name) on its disk now. */
void db_node_cache_touch(const char *self, int64_t user_id, const char *workspace);
/* Ids of self's jobs in status, oldest first; caller frees each and the array. */
char **db_node_jobs(const char *self, const char *status, size_t *n);
/* Releases the workspaces held by self's jobs (start-up of a node of a cluster). */
void db_node_ws_release(const char *self);

#endif
