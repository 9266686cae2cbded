/* SPDX-License-Identifier: MIT */
/*
 * Guest images: the read-only root filesystems a sandbox can boot. Each is a
 * file NAME.img in the guest dir (test.img is the image named "busybox"),
 * found once at start-up. One is the default (magsd --image, else "debian",
 * else "busybox"); a job names another with its "image" field. Every image
 * has its own engine (the shared one with that root disk) and its own fast
 * start instance: the default's builds its template at once and keeps the
 * pool, the others build theirs when a job first asks and have no pool.
 *
 * Threads: images_init and images_free from main only; the rest is read-only
 * after images_init and safe from any thread.
 */
#ifndef MAGS_IMAGES_H
#define MAGS_IMAGES_H

#include <stdbool.h>

#include <jansson.h>

#include "../engine/engine.h"
#include "err.h"
#include "fast.h"

#define IMAGES_MAX 16

struct image {
	char *name;
	struct engine eng;	/* the shared engine with this root image */
	struct fast *fast;	/* NULL: cold boots only (--no-snapshot, or it failed to start) */
};

/*
 * Finds the images in guest_dir and sets up an engine for each from base
 * (after engine_disks_init and net_init). want: the default image's name,
 * NULL = "debian" when present, else "busybox", else the only one there.
 * An image named by want that is missing is an error; so is a guest dir
 * without images. Returns 0 or -errno with err set.
 */
int images_init(const struct engine *base, const char *guest_dir, const char *want, struct err *err);
/*
 * Starts fast start for every image: fc is the template for each instance
 * (its engine, pool_size and lazy are set per image: the default gets fc's
 * pool, the others none). A failure only logs: those jobs cold boot.
 */
void images_fast_start(const struct fast_config *fc);
/* Stops fast start and frees the engines. */
void images_free(void);

/* The image named name, the default when name is NULL; NULL when there is none by that name. */
const struct image *images_find(const char *name);
const struct image *images_default(void);
/*
 * A job's "image" field (NULL = the default): 0 when this magsd has it,
 * else -400 with err naming the images it has.
 */
int images_check(const char *name, struct err *err);
/* "busybox, debian": the names, for error messages (static storage). */
const char *images_names(void);
/* For GET /health: "images" (names), "default_image", and "fast_start" per image. */
void images_health(json_t *o);

#endif
