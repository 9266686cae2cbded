/* SPDX-License-Identifier: MIT */
/*
 * The job queue and its workers. A submitted job waits in a FIFO until one of
 * max_concurrent worker threads claims it, boots a sandbox, runs the script,
 * stores its output as it arrives and records how it ended. Log followers
 * (the API's follow mode) wait on jobs_wait_event for anything new.
 */
#ifndef MAGS_JOBS_H
#define MAGS_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "../store/wsync.h"
#include "err.h"
#include "proto.h"
#include <jansson.h>

#define JOB_LOG_MAX (64 << 20)		/* bytes of output kept per job */
#define JOB_BOOT_TIMEOUT_MS 60000	/* start -> agent HELLO */
#define JOB_RESTORE_INIT_MS 30000	/* restored -> INIT answered, else cold boot */

struct jobs_config {
	const struct net_config *net;	/* the network every image's engine shares */
	const char *accel;		/* "kvm" or "tcg", recorded per job */
	const char *run_root;	/* per-sandbox run dirs live here */
	int max_concurrent;
	int idle_timeout;	/* seconds before an idle always-on sandbox sleeps (job default); 0 = never */
};

/*
 * Start-up recovery, then starts the workers: kills VMs a crashed magsd left
 * behind, fails the jobs they ran ("interrupted"), and queues the jobs still
 * queued. Returns 0 or a negative code with err set.
 */
int jobs_start(const struct jobs_config *cfg, struct err *err);
/* Queues a job already stored as queued. */
void jobs_submit(const char *id);
/* Wakes the idle workers (a node of a cluster: new jobs may be in the shared table). */
void jobs_poke(void);
/* Jobs this magsd is running (or starting) now. */
int jobs_running(void);
/* Asks a queued or running job to stop. Returns 0, or -ENOENT when not active. */
int jobs_stop(const char *id);
/*
 * Stops taking jobs, waits up to grace_ms for running ones, stops the rest
 * (they end failed, "interrupted") and joins the workers. Queued jobs stay
 * queued for the next start. Always-on jobs are stopped at once and queued
 * again (they never end by themselves).
 */
void jobs_shutdown(int grace_ms);

/*
 * Pushes the workspace of running job id while it runs (the guest's
 * filesystem frozen meanwhile). Waits while the sandbox is starting.
 * Returns 0, -ENOENT when the job is not running, or <0 with err set.
 */
int jobs_sync(const char *id, struct wsync_stats *st, struct err *err);
/* Writes upload seq of running job id to NAME in its working directory. Same returns. */
int jobs_deliver_file(const char *id, int seq, const char *name, unsigned mode, struct err *err);

/*
 * SSH for running job id: sshd in the guest (with key added to root's
 * authorized keys when given) and a forwarder to it. Same returns; 409 when
 * the network mode has no way in.
 */
int jobs_ssh(const char *id, const char *key, struct err *err);
/* {"host", "port", "user", "host_key"} while job id has SSH on, else JSON null. */
json_t *jobs_ssh_json(const char *id);
/*
 * A TCP connection to port in running job id's guest, waiting up to
 * timeout_ms while it starts. Returns the fd, or -1 with err set (502: not
 * running, nothing listening, no network).
 */
int jobs_connect(const char *id, int port, int timeout_ms, struct err *err);
/*
 * A connection jobs_connect gave out has ended (the proxy's and the SSH
 * forwarder's release hook). While any is open an always-on sandbox does not
 * sleep; a request to a sleeping one wakes it (jobs_connect waits meanwhile).
 */
void jobs_disconnect(const char *id);
/*
 * PATCH /mags-jobs/:id on a running job: always_on and the idle time
 * (seconds, 0 = never sleep, -1 = magsd's default) take effect now.
 */
void jobs_update(const char *id, bool always_on, int idle_timeout);

/*
 * Channels of a running job's agent connection for other threads: exec
 * sessions, file requests, watches (docs/agent-protocol.md, "Channels").
 * The callbacks run in the job's worker thread with the job's channel lock
 * held: they must not block nor call jobs_* functions; they only record what
 * came and signal their owner.
 */
struct jobs_chan_ops {
	/* A frame on the channel. Returns true to have the worker send PAUSE on it (flow control). */
	bool (*frame)(void *ctx, const struct agent_frame *f);
	/*
	 * The channel is gone: the job ended, or its VM restarted or failed; why
	 * says which. Nothing follows. Not called after jobs_chan_close returned.
	 */
	void (*gone)(void *ctx, const char *why);
};
/*
 * Opens a new channel (a number never used before in this sandbox) on
 * running job id and sends type with payload on it. Waits while the job is
 * queued or starting and wakes a sleeping one. While open the channel keeps
 * an always-on sandbox awake, like a connection. Returns the channel (> 0),
 * -ENOENT when the job is neither queued in this magsd nor running (or it
 * ended before it served), or < 0 with err set.
 */
int64_t jobs_chan_open(const char *id, const struct jobs_chan_ops *ops, void *ctx, uint16_t type, const void *payload,
		       size_t len, struct err *err);
/* Sends one more frame on an open channel. 0, -ENOENT when it is gone, or < 0 with err set. */
int jobs_chan_send(const char *id, uint32_t chan, uint16_t type, const void *payload, size_t len, struct err *err);
/*
 * Forgets the channel: no callback of it runs once this returns. May be
 * called from the channel's own frame callback (e.g. at its last frame).
 */
void jobs_chan_close(const char *id, uint32_t chan);
/*
 * PATCH timeout on a running job: the host deadline becomes timeout seconds
 * from now (0: none). The script's own agent-side timeout is not changed, so
 * a shorter limit is enforced by the host (exit 124).
 */
void jobs_set_timeout(const char *id, int timeout);

/* Event counter bumped on every log entry and state change. */
uint64_t jobs_events(void);
/* Waits until the counter differs from seen, or timeout_ms passes. */
void jobs_wait_event(uint64_t seen, int timeout_ms);
bool jobs_stopping(void);

#endif
