/* SPDX-License-Identifier: MIT */
/*
 * Workspaces: the disks a sandbox's root overlay is made of, and their life
 * on the host and in the object store.
 *
 *   upper   a sparse ext4 image of ENGINE_DISK_BYTES: the job's own, deleted
 *           when it ends (local), or STATE/workspaces/u<uid>/<name>.img
 *           (named, -w), kept for the next job with that name
 *   lower   the base images it was created --from, top first (read-only)
 *
 * Persistent workspaces (-p) and base images are pushed to the object store
 * (store/wsync.h) when their job ends and on request (sync); a workspace
 * whose disk is missing on this host is pulled from there first, so an empty
 * host data directory loses nothing that was synced. A workspace is held by
 * at most one job at a time; a job that wants a held one waits for it.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef MAGS_WORKSPACE_H
#define MAGS_WORKSPACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../store/wsync.h"
#include "db.h"
#include "err.h"
#include "jobspec.h"

struct ws_config {
	const char *state_dir;
	const char *store_url;		/* NULL = file://STATE/store */
	const char *s3_endpoint;	/* NULL = env MAGS_S3_ENDPOINT (s3:// stores) */
};

int ws_init(const struct ws_config *cfg, struct err *err);
void ws_shutdown(void);
const char *ws_store_url(void);

/* What one job mounts; filled by ws_prepare, undone by ws_finish. */
struct ws_job {
	int64_t user_id;
	char job_id[40];
	char *name;		/* owned; named workspace, NULL = local or none */
	bool ephemeral;		/* no workspace: the guest keeps its tmpfs root */
	bool persistent;	/* pushed to the store when the job ends */
	bool base_image;	/* frozen when the job ends */
	bool held;		/* in use by this job in the database */
	char *disk;		/* owned; the upper disk */
	bool disk_local;	/* the job's own disk, removed by ws_finish */
	char *layers[ENGINE_LAYER_SLOTS];	/* owned; base disks, top first */
	int nlayers;
};

/* Where the job's messages for its own log go ("pulled workspace ..."). */
typedef void (*ws_say_fn)(void *arg, const char *line);

/*
 * Checks a submission against the workspaces that exist: -404 (a --from
 * base that does not exist), -409 (writing to a base image, --from a
 * workspace that is not a base, a chain too deep, an existing workspace
 * created from another base), with err set; 0 when it can run.
 */
int ws_check_submit(int64_t user_id, const struct jobspec *js, struct err *err);
/*
 * Gets the job's disks ready: holds its named workspace (waiting while
 * another job has it), pulls what is missing from the store, creates new
 * disks. Returns 0, -EINTR when wake_fd became readable, or <0 with err set.
 * wj must be released with ws_finish (also on failure).
 */
int ws_prepare(const struct job_row *j, int wake_fd, ws_say_fn say, void *say_arg, struct ws_job *wj,
	       struct err *err);
/*
 * The engine's view of wj (paths borrowed from wj). False when the job takes
 * whatever blank disk its sandbox comes with (a local workspace without
 * bases, or ephemeral): see ws_adopt_disk.
 */
bool ws_disks(const struct ws_job *wj, struct vm_disks *d);
/* Gives a local workspace the sandbox's own blank disk (path owned by wj now, removed by ws_finish). */
void ws_adopt_disk(struct ws_job *wj, char *path);
/* Makes a blank disk for a local workspace now (a cold boot). */
int ws_local_disk(struct ws_job *wj, struct err *err);
/* A blank workspace disk for a pooled VM (caller frees the path; NULL with err set on failure). */
char *ws_new_pool_disk(struct err *err);
/*
 * Once the VM is gone: freezes a base image (when the job succeeded), pushes
 * persistent workspaces and bases, lets go of the workspace and removes a
 * local disk. Says what it did through say. Returns 0 or <0 with err set
 * (a failed push: the disk stays on this host and the next sync retries).
 */
int ws_finish(struct ws_job *wj, bool job_ok, ws_say_fn say, void *say_arg, struct err *err);

void ws_job_free(struct ws_job *wj);

/* Pushes a named workspace's disk (consistent: its VM is gone or frozen). Marks it persistent. */
int ws_push(int64_t user_id, const char *name, struct wsync_stats *st, struct err *err);
/* The host path of a named workspace's disk (caller frees). */
char *ws_disk_path(int64_t user_id, const char *name);
/* Deletes a workspace here and in the store: -404, -409 (in use, or has children). */
int ws_delete(int64_t user_id, const char *name, struct err *err);
/* The API's JSON for a workspace (new reference). */
json_t *ws_json(const struct ws_row *w);
/* JSON for a push's figures (new reference). */
json_t *ws_stats_json(const char *name, const struct wsync_stats *st);

/* Directory for the files uploaded to a job (caller frees); create: make it if missing. */
char *ws_upload_dir(const char *job_id, bool create);
/*
 * At start-up, after interrupted jobs were marked: removes the uploads of
 * jobs that are no longer queued or running (a killed magsd never reached
 * their cleanup) and half-received uploads (.upload-*) of the others.
 */
void ws_sweep_uploads(void);
/* At start-up: removes disks a killed magsd left half copied or half pulled (NAME.img.tmp, NAME.img.pull.*). */
void ws_sweep_partial(void);

#endif
