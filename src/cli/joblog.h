/* SPDX-License-Identifier: MIT */
/*
 * A job's output on the terminal: stored log entries (GET .../logs) and the
 * live NDJSON follow stream (GET .../logs?follow=true), shared by `mags run`
 * and `mags logs [-f]`. stdout entries go to stdout, stderr entries to
 * stderr, magsd's own "system" notes to stderr prefixed "mags: "; each is
 * flushed as it arrives.
 */
#ifndef MAGS_CLI_JOBLOG_H
#define MAGS_CLI_JOBLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "err.h"

#define JOBLOG_RETRIES 5	/* reconnects in a row without progress before falling back */

/* How a job ended, from the follow stream's final line or the job object. */
struct joblog_end {
	char *status;		/* "completed" | "failed" | ...; owned */
	bool has_exit;		/* exit_code was not null */
	int exit_code;
	char *error;		/* owned; NULL when null */
};

void joblog_end_free(struct joblog_end *end);

/*
 * Prints the entries stored for job id after sequence number since (0: all)
 * and stores the last printed seq in *last (may be NULL). Returns a
 * client_result with err set.
 */
int joblog_dump(struct client *c, const char *id, int64_t since, int64_t *last, struct err *err);

/*
 * Follows job id's output until it ends and fills *end (free it with
 * joblog_end_free, also on failure). A broken stream is resumed from the last
 * seen entry (JOBLOG_RETRIES tries in a row); after that the rest of the
 * stored output is printed and the job's status read instead. Returns a
 * client_result (CLIENT_E_INTR when the client's interrupt flag was set).
 */
int joblog_follow(struct client *c, const char *id, struct joblog_end *end, struct err *err);

#endif
