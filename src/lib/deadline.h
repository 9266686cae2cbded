/* SPDX-License-Identifier: MIT */
/* Absolute times for timed waits (pthread_cond_timedwait and the like). */
#ifndef MAGS_DEADLINE_H
#define MAGS_DEADLINE_H

#include <time.h>

/* The time on clock clk ms milliseconds from now. */
struct timespec deadline_in(clockid_t clk, int ms);

#endif
