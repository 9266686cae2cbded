/* SPDX-License-Identifier: MIT */
/*
 * Error objects for messages that must reach a person (an HTTP error body, a
 * CLI line). A failing function fills one with context and returns a negative
 * code; callers add their own context in front with err_wrap():
 *     return err_set(err, errno, "open %s", path);      ->  -errno
 *     err_wrap(err, "workspace \"%s\"", name);          ->  'workspace "x": open ...'
 * err may be NULL when the caller does not want the message.
 */
#ifndef MAGS_ERR_H
#define MAGS_ERR_H

#define ERR_MSG_MAX 512

struct err {
	int code;		/* positive errno-style or HTTP-style code, 0 = none */
	char msg[ERR_MSG_MAX];	/* human-readable, NUL-terminated */
};

/* Sets err (if not NULL) and returns -abs(code) (or -1 when code is 0). */
int err_set(struct err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes err->msg with "<context>: ". Returns -abs(err->code) or -1. */
int err_wrap(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *err);

#endif
