/* SPDX-License-Identifier: MIT */
/*
 * Time zones for cron schedules, without the process-wide TZ variable (magsd
 * is multi-threaded, and localtime_r/setenv("TZ") race): a zone is read from
 * its TZif file (RFC 8536) under TZ_DIR into an immutable object that any
 * number of threads may use at once.
 *
 * Offsets come from the file's transitions (the 64-bit section of a v2+
 * file, else the v1 one); past the last transition from the footer's POSIX
 * TZ string ("STD offset [DST [offset] [,start[/time],end[/time]]]", rules
 * Jn, n or Mm.w.d); a footer we cannot read falls back to the last
 * transition's offset. Leap-second records ("right/" zones) are ignored.
 *
 * Cron times in a zone (tz_next) are wall-clock times there:
 *   - a wall time that does not exist (the spring-forward gap) fires at the
 *     first instant after the gap (the transition itself);
 *   - a wall time that happens twice (fall back) fires once, at its first
 *     occurrence.
 */
#ifndef MAGS_TZ_H
#define MAGS_TZ_H

#include <stdbool.h>
#include <stdint.h>

#include "cron.h"
#include "err.h"

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 64		/* bytes of a zone name */
#define TZ_FILE_MAX (1 << 20)	/* bytes of a TZif file we read */

struct tz;

/*
 * Whether name is an acceptable zone name: 1 to TZ_NAME_MAX bytes of
 * letters, digits, '_', '-', '+', separated by single '/', no empty, "." or
 * ".." component, not starting with '/' or '-'.
 */
bool tz_name_ok(const char *name);

/*
 * Loads zone name into *out (the caller frees it with tz_free). NULL or
 * "UTC" reads no file and sets *out to NULL, which every function here takes
 * for UTC. Returns 0, or -400 with err saying why (a bad name, no such zone,
 * not a TZif file).
 */
int tz_load(const char *name, struct tz **out, struct err *err);
void tz_free(struct tz *z);
/* The parser tz_load uses: len bytes of TZif data into *out. 0, or -1 when it is not usable TZif. */
int tz_parse(const uint8_t *data, size_t len, struct tz **out);

/* Seconds east of UTC in effect at UTC instant t (z NULL = UTC). */
int32_t tz_offset(const struct tz *z, int64_t t);

/*
 * The first UTC instant strictly after `after` at which c fires when read as
 * wall-clock time in z (NULL = UTC), with the gap and fold rules above; -1
 * when there is none within cron_next's search range.
 */
int64_t tz_next(const struct tz *z, const struct cron_expr *c, int64_t after);

#endif
