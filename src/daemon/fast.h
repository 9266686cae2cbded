/* SPDX-License-Identifier: MIT */
/*
 * Fast start: sandboxes restored from a template snapshot instead of booted.
 *
 * The template is one VM per (QEMU, kernel, image, memory, CPU, command line,
 * device layout) -- engine_snapshot_key() -- booted once, warmed up (one
 * shell run, so the image's shell is in the guest's page cache) and saved
 * right after, before anything that differs between sandboxes. It lives in
 * TEMPLATE_ROOT/<key>/ as mem (the guest RAM file), state (device state)
 * and meta (digests of both); magsd checks the digests before trusting it,
 * and builds a new one in the background when it is missing, corrupt or its
 * inputs changed. Until one is ready, and whenever a restore fails, jobs cold
 * boot: a bad template costs time, never a job.
 *
 * A pool of QEMU processes already started and waiting on -incoming defer
 * takes the process start off the job's path; a background thread keeps it
 * at pool_size. Each pooled VM has its own blank workspace disk. With
 * pool_warm the pool goes one step further: its VMs are restored, have run
 * the warm-up command once and have mounted that disk as their root's upper
 * layer, so a take for a job with a local workspace costs only INIT and the
 * job's own exec -- at the price of a running, idle guest (host RAM and timer
 * ticks) per pool slot. A job with its own disks (a named workspace, a base)
 * needs a VM that has mounted nothing: one started for it.
 */
#ifndef MAGS_FAST_H
#define MAGS_FAST_H

#include <jansson.h>

#include "../engine/engine.h"
#include "err.h"
#include "sandbox.h"

struct fast_config {
	const struct engine *engine;	/* one image's engine: an instance serves one image */
	const char *name;		/* the image's name, for the log */
	const char *template_root;	/* templates live here, one dir per key (shared by instances) */
	const char *run_root;		/* run dirs of template and pool VMs */
	int pool_size;			/* waiting QEMUs; 0 = start one per job */
	bool pool_warm;			/* pool holds restored, warmed-up VMs */
	/*
	 * lazy: no template is built until a job asks for one (fast_take), so
	 * an image nobody uses costs nothing; one already on disk is used.
	 */
	bool lazy;
	/* makes a blank workspace disk for a pooled VM; returns its path (caller frees) */
	char *(*new_disk)(struct err *err);
};

/* One image's templates and pool. */
struct fast;

/*
 * Starts the background thread (template check/build, pool) of a new
 * instance. Instances share template_root: each keeps the others' templates.
 * Returns NULL with err set.
 */
struct fast *fast_start(const struct fast_config *cfg, struct err *err);
/* Stops the thread, kills the pool and frees f (NULL: nothing). */
void fast_stop(struct fast *f);
/*
 * A sandbox restored from the template and running (INIT not sent yet), its
 * run dir moved to rundir.
 *
 * disks NULL: the job takes the VM's own blank workspace disk, whose path
 * comes back in *own_disk (the caller removes it when done); in the warm pool
 * it is mounted already (sb->ws_mounted). disks given: a VM that has not
 * mounted anything gets them swapped in (vm_set_disks), or one is started
 * with them; *own_disk is NULL.
 *
 * Returns 0, -ENOENT when no template is ready (cold boot instead; a lazy
 * instance starts building one), or another negative code with err set
 * when the restore failed; the template is then dropped and rebuilt, and
 * the caller cold boots. f NULL: -ENOENT.
 */
int fast_take(struct fast *f, const char *rundir, const struct vm_disks *disks, struct sandbox **out,
	      char **own_disk, struct err *err);
/* A sandbox from template generation gen misbehaved: drop that template. */
void fast_invalidate(struct fast *f, unsigned gen, const char *why);
/* For GET /health: {"template": state, "pool": ready, "pool_size": n, "pool_mode": m}; f NULL: "off". */
json_t *fast_status(struct fast *f);

#endif
