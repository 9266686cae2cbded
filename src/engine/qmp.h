/* SPDX-License-Identifier: MIT */
/*
 * A minimal synchronous QMP (QEMU Machine Protocol) client: connect to a
 * QEMU's -qmp unix socket, negotiate capabilities, run commands one at a
 * time. Asynchronous events that arrive in between are skipped.
 */
#ifndef MAGS_QMP_H
#define MAGS_QMP_H

#include <jansson.h>

#include "err.h"

#define QMP_REPLY_MAX (1 << 20)	/* bytes of one reply line */

struct qmp {
	int fd;
	char *rbuf;	/* received, unparsed bytes */
	size_t rlen;
};

/* Connects (retrying until timeout_ms while QEMU starts) and negotiates. */
int qmp_open(struct qmp *q, const char *path, int timeout_ms, struct err *err);
void qmp_close(struct qmp *q);
/*
 * Runs command with args (may be NULL; reference stolen). On success *ret
 * (if not NULL) gets the "return" value (new reference). A QMP error reply
 * becomes a negative code with err holding QEMU's description.
 */
int qmp_cmd(struct qmp *q, const char *command, json_t *args, json_t **ret, int timeout_ms, struct err *err);
/* Waits for an event named name (e.g. "MIGRATION" with status), returns its data. */
int qmp_wait_event(struct qmp *q, const char *name, json_t **data, int timeout_ms, struct err *err);

#endif
