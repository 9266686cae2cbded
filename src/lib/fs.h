/* SPDX-License-Identifier: MIT */
/* Small file-system helpers shared by magsd and the CLI. All return 0 or -errno. */
#ifndef MAGS_FS_H
#define MAGS_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Removes a directory tree without following symlinks. Missing path is not an error. */
int fs_rm_tree(const char *path);
/* mkdir -p with mode for each created component. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer the caller frees. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len, struct err *err);
/* Writes a file atomically (temp file in the same dir, fsync, rename) with mode. */
int fs_write_file(const char *path, const void *data, size_t len, mode_t mode, struct err *err);

#endif
