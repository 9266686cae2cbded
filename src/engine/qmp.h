/* SPDX-License-Identifier: MIT */
/*
 * A small client for QEMU's machine protocol (QMP): one JSON object per line
 * over a unix socket. Used by the engine to snapshot and restore VMs. One
 * command in flight at a time; asynchronous events are read and dropped.
 */
#ifndef MAGS_QMP_H
#define MAGS_QMP_H

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct qmp {
	int fd;
	struct buf in;
};

/*
 * Connects to the QMP socket at path (retrying while QEMU starts, up to
 * timeout_ms), reads the greeting and enters command mode. Returns 0 or a
 * negative code with err set.
 */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms, struct err *err);
/*
 * Runs one command. args (may be NULL) is consumed. When pass_fd >= 0 it is
 * sent along with the command (SCM_RIGHTS), as "getfd" needs. On success
 * *ret (if not NULL) holds the "return" value (caller decrefs). A QMP error
 * reply is -EIO with its description in err; -ENOTSUP when this QEMU does
 * not know the command.
 */
int qmp_call(struct qmp *q, const char *cmd, json_t *args, int pass_fd, json_t **ret, int timeout_ms, struct err *err);
void qmp_close(struct qmp *q);

#endif
