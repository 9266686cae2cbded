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

#define JOB_LOG_MAX (64 << 20)		/* bytes of output kept per job */
#define JOB_BOOT_TIMEOUT_MS 60000	/* start -> agent HELLO */
#define JOB_RESTORE_INIT_MS 30000	/* restored -> INIT answered, else cold boot */

struct jobs_config {
	const struct engine *engine;
	const char *run_root;	/* per-sandbox run dirs live here */
	int max_concurrent;
};

/*
 * Start-up recovery, then starts the workers: kills VMs a crashed magsd left
 * behind, fails the jobs they ran ("interrupted"), and queues the jobs still
 * queued. Returns 0 or a negative code with err set.
 */
int jobs_start(const struct jobs_config *cfg, struct err *err);
/* Queues a job already stored as queued. */
void jobs_submit(const char *id);
/* Asks a queued or running job to stop. Returns 0, or -ENOENT when not active. */
int jobs_stop(const char *id);
/*
 * Stops taking jobs, waits up to grace_ms for running ones, stops the rest
 * (they end failed, "interrupted") and joins the workers. Queued jobs stay
 * queued for the next start.
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

/* Event counter bumped on every log entry and state change. */
uint64_t jobs_events(void);
/* Waits until the counter differs from seen, or timeout_ms passes. */
void jobs_wait_event(uint64_t seen, int timeout_ms);
bool jobs_stopping(void);

#endif
