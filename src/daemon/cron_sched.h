/* SPDX-License-Identifier: MIT */
/*
 * The cron scheduler: one thread that fires the enabled schedules of the
 * cron_jobs table at their times, each firing submitting a job with the
 * schedule's run flags (api_job_create). See docs/cli-and-daemon.md
 * ("Cron schedules") for the missed-run policy.
 */
#ifndef MAGS_CRON_SCHED_H
#define MAGS_CRON_SCHED_H

#include <stdint.h>

#include "err.h"

/* Starts the scheduler thread (after jobs_start). Returns 0 or <0 with err set. */
int cron_sched_start(struct err *err);
/* Wakes the scheduler to look again now (a schedule was created or changed). */
void cron_sched_kick(void);
/* Stops and joins it (before jobs_shutdown). */
void cron_sched_stop(void);

/*
 * The first firing of expression (in zone timezone, NULL = UTC) strictly
 * after after_ms: *next in ms, 0 when it never fires again. Returns 0, or
 * -400 with err naming the field ("expression: ...", "timezone: ...").
 */
int cron_sched_plan(const char *expression, const char *timezone, int64_t after_ms, int64_t *next, struct err *err);

#endif
