// SPDX-License-Identifier: MIT
/* Workspace names, job ids and human-readable sizes; see text.h. */
#include "text.h"

#include <stdio.h>
#include <string.h>

static bool text_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool text_is_job_id(const char *s)
{
	static const size_t dashes[] = { 8, 13, 18, 23 };
	if (!s || strlen(s) != 36)
		return false;
	for (size_t i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dashes[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!text_hex(s[i])) {
			return false;
		}
	}
	return true;
}

void text_bytes(uint64_t bytes, char *out, size_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024) {
		snprintf(out, n, "%llu B", (unsigned long long)bytes);
		return;
	}
	double v = (double)bytes / 1024;
	size_t u = 0;
	/* switch units before printf would round up to "1024.0" */
	while (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, "%.1f %s", v, units[u]);
}
