/* SPDX-License-Identifier: MIT */
/* Running helper programs (e2fsprogs, ssh-keygen) from magsd. */
#ifndef MAGS_PROC_H
#define MAGS_PROC_H

/*
 * Runs argv[0] (looked up in PATH, then /usr/sbin and /sbin) with argv, stdin
 * and output on /dev/null, and waits. Returns its exit code (128 + signal
 * when killed), or -errno when it could not be started (-ENOENT: not found).
 */
int proc_run_quiet(const char *const argv[]);

#endif
