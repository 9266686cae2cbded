// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the TZif reader (src/lib/tz.c, tz_parse): zone files
 * come from the host's /usr/share/zoneinfo, not from users, but a damaged
 * or hostile file there must not crash magsd's scheduler. Besides crashes it
 * checks that an accepted zone gives offsets within +-26 hours, and that
 * tz_next for an hourly schedule answers strictly later (or -1).
 * fuzz/replay.c supplies a main() that replays files without libFuzzer
 * (make test replays fuzz/corpus/tzif/, real zone files among them).
 */
#include <stdint.h>
#include <stdlib.h>

#include "cron.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tz *z;
	if (tz_parse(data, size, &z) < 0)
		return 0;
	static const int64_t at[] = { -2208988800LL, 0, 1700000000LL, 1711846800LL, 4102444800LL, 253402300000LL };
	for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
		int32_t off = tz_offset(z, at[i]);
		if (off < -26 * 3600 || off > 26 * 3600)
			abort();
	}
	struct cron_expr c;
	struct err err = { 0 };
	if (cron_parse("0 * * * *", &c, &err) < 0)
		abort();
	int64_t after = 1700000000LL + (size ? (int64_t)data[size - 1] * 86400 * 30 : 0);
	int64_t next = tz_next(z, &c, after);
	if (next != -1 && next <= after)
		abort();
	tz_free(z);
	return 0;
}
