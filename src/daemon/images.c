// SPDX-License-Identifier: MIT
/* Guest images and their engines; see images.h. */
#include "images.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "xmalloc.h"

#define IMAGE_SUFFIX ".img"
/* the busybox test image keeps its historical file name */
#define BUSYBOX_FILE "test.img"
#define BUSYBOX_NAME "busybox"
#define PREFERRED_DEFAULT "debian"

static struct {
	struct image img[IMAGES_MAX];
	int n;
	int def;		/* index of the default */
	char names[IMAGES_MAX * (IMAGE_NAME_MAX + 2) + 1];
} I;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct image *)a)->name, ((const struct image *)b)->name);
}

/* The image name for a file in the guest dir, or NULL when it is not an image. */
static char *image_name_of(const char *file)
{
	if (!strcmp(file, BUSYBOX_FILE))
		return xstrdup(BUSYBOX_NAME);
	size_t n = strlen(file), sl = strlen(IMAGE_SUFFIX);
	if (n <= sl || strcmp(file + n - sl, IMAGE_SUFFIX) != 0)
		return NULL;
	char *name = xstrndup(file, n - sl);
	if (!image_name_ok(name) || !strcmp(name, BUSYBOX_NAME)) {
		log_warn("guest dir: %s is not used: an image name is 1-%d of [a-z0-9._-] (and not \"%s\", which is %s)",
			 file, IMAGE_NAME_MAX, BUSYBOX_NAME, BUSYBOX_FILE);
		free(name);
		return NULL;
	}
	return name;
}

int images_init(const struct engine *base, const char *guest_dir, const char *want, struct err *err)
{
	DIR *d = opendir(guest_dir);
	if (!d)
		return err_set(err, errno, "guest dir %s", guest_dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *name = image_name_of(de->d_name);
		if (!name)
			continue;
		char *path = xasprintf("%s/%s", guest_dir, de->d_name);
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, R_OK) < 0) {
			log_warn("guest dir: %s is not a readable file; not used", path);
		} else if (I.n == IMAGES_MAX) {
			log_warn("guest dir: more than %d images; %s is not used", IMAGES_MAX, path);
		} else {
			struct image *im = &I.img[I.n++];
			im->name = name;
			name = NULL;
			engine_with_image(&im->eng, base, path);
		}
		free(name);
		free(path);
	}
	closedir(d);
	if (I.n == 0)
		return err_set(err, ENOENT, "no guest images (NAME.img or %s) in %s (run make guest; make debian-image)",
			       BUSYBOX_FILE, guest_dir);
	qsort(I.img, (size_t)I.n, sizeof *I.img, by_name);
	I.names[0] = '\0';
	for (int i = 0; i < I.n; i++) {
		if (i)
			strcat(I.names, ", ");
		strcat(I.names, I.img[i].name);
	}
	const char *pick = want;
	if (!pick)
		pick = images_find(PREFERRED_DEFAULT) ? PREFERRED_DEFAULT
		       : images_find(BUSYBOX_NAME)    ? BUSYBOX_NAME
						      : I.img[0].name;
	const struct image *def = images_find(pick);
	if (!def) {
		int r = err_set(err, ENOENT, "--image %s: no such image in %s (it has: %s)%s", pick, guest_dir, I.names,
				!strcmp(pick, PREFERRED_DEFAULT) ? "; build it with make debian-image" : "");
		images_free();
		return r;
	}
	I.def = (int)(def - I.img);
	if (!want && strcmp(pick, PREFERRED_DEFAULT) != 0)
		log_warn("no %s image in %s: the default image is %s (build the Debian image with make debian-image)",
			 PREFERRED_DEFAULT, guest_dir, pick);
	return 0;
}

void images_fast_start(const struct fast_config *fc)
{
	for (int i = 0; i < I.n; i++) {
		struct fast_config c = *fc;
		c.engine = &I.img[i].eng;
		c.name = I.img[i].name;
		c.lazy = i != I.def;
		if (c.lazy)
			c.pool_size = 0;
		struct err err = { 0 };
		I.img[i].fast = fast_start(&c, &err);
		if (!I.img[i].fast)
			log_warn("fast start disabled for image %s: %s", I.img[i].name, err.msg);
	}
}

void images_free(void)
{
	for (int i = 0; i < I.n; i++) {
		fast_stop(I.img[i].fast);
		engine_free(&I.img[i].eng);
		free(I.img[i].name);
	}
	memset(&I, 0, sizeof I);
}

const struct image *images_find(const char *name)
{
	if (!name)
		return images_default();
	for (int i = 0; i < I.n; i++)
		if (!strcmp(I.img[i].name, name))
			return &I.img[i];
	return NULL;
}

const struct image *images_default(void)
{
	return I.n ? &I.img[I.def] : NULL;
}

int images_check(const char *name, struct err *err)
{
	if (images_find(name))
		return 0;
	return err_set(err, 400, "\"image\": this server has no image \"%.*s\" (it has: %s)", IMAGE_NAME_MAX, name,
		       I.names);
}

const char *images_names(void)
{
	return I.names;
}

void images_health(json_t *o)
{
	json_t *names = json_array(), *fast = json_object();
	for (int i = 0; i < I.n; i++) {
		json_array_append_new(names, json_string(I.img[i].name));
		json_object_set_new(fast, I.img[i].name, fast_status(I.img[i].fast));
	}
	json_object_set_new(o, "images", names);
	json_object_set_new(o, "default_image", I.n ? json_string(I.img[I.def].name) : json_null());
	/* the default image's fast start, as before images; every image's under fast_start_images */
	json_object_set_new(o, "fast_start", fast_status(I.n ? I.img[I.def].fast : NULL));
	json_object_set_new(o, "fast_start_images", fast);
}
