/* SPDX-License-Identifier: MIT */
/*
 * The processes of running sandboxes (docs/sandboxes.md, "Processes"): each
 * is an EXEC on a channel of its job's agent connection (jobs_chan_open).
 * magsd keeps, per process, its output as one byte sequence with a running
 * offset (the last PROC_KEEP bytes), how it ended, and who streams it. A
 * process started for a foreground stream slows down while that stream's
 * reader lags (PAUSE/RESUME), and gets SIGHUP when its reader goes away
 * before it ends. Ended processes are kept (PROC_ENDED_KEEP per sandbox)
 * until deleted or their job ends (procs_job_ended).
 */
#ifndef MAGS_PROCS_H
#define MAGS_PROCS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "execspec.h"

#define PROC_KEEP (4 << 20)		/* output bytes kept per process */
#define PROC_FG_HIGH (2 << 20)		/* a foreground reader this far behind pauses the process */
#define PROC_FG_LOW (512 << 10)		/* and this close resumes it */
#define PROC_ENDED_KEEP 64		/* ended processes kept per sandbox */
#define PROC_EVENTS_MAX (256 << 10)	/* output bytes rendered per proc_events call */
#define PROC_OFFSET_END (-1)		/* proc_events: from what comes next */

struct proc;

/*
 * Starts spec's command in running job job_id (waiting while it starts).
 * Returns 0 with *out (a reference: proc_put it), -ENOENT when the job is not
 * running, or <0 with err set.
 */
int procs_start(const char *job_id, const struct exec_spec *spec, struct proc **out, struct err *err);
/* Process pid of job job_id (a reference), or NULL. */
struct proc *procs_find(const char *job_id, long long pid);
void proc_put(struct proc *p);
/* {"processes": [...]} of job job_id, in id order. */
json_t *procs_list_json(const char *job_id);
json_t *proc_json(struct proc *p);
/* The job ended: its processes are forgotten (streams still open end with what they had). */
void procs_job_ended(const char *job_id);

/* Input, signals, window size. 0, or -409 with err set (ended, no stdin, not a tty) or another code. */
int proc_stdin(struct proc *p, const void *data, size_t n, bool eof, struct err *err);
int proc_signal(struct proc *p, int sig, struct err *err);
int proc_resize(struct proc *p, int cols, int rows, struct err *err);
/* Waits up to timeout_ms for the process to end; true when it has. */
bool proc_wait(struct proc *p, int timeout_ms);
/* Kills it (SIGKILL) when it runs and forgets it. */
void proc_delete(struct proc *p);

/*
 * Appends the output events from *offset on (PROC_OFFSET_END: from the
 * current end) to out as NDJSON lines (docs/sandboxes.md), at most
 * PROC_EVENTS_MAX bytes of output, and moves *offset past them. When
 * nothing is there, waits up to wait_ms for more. Returns 1 once the exit
 * event was appended (the stream is complete), else 0. fg: the reader is the
 * process's foreground stream (flow control follows it).
 */
int proc_events(struct proc *p, int64_t *offset, bool fg, int wait_ms, struct buf *out);
/* The foreground stream ended: when its client left before the process ended, SIGHUP. */
void proc_fg_done(struct proc *p);

#endif
