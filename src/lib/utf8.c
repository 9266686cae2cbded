// SPDX-License-Identifier: MIT
/* UTF-8 validation per RFC 3629 (no overlongs, no surrogates, <= U+10FFFF). */
#include "utf8.h"

#include <string.h>

/* Length of the valid sequence at p (1..4), or 0 when invalid or truncated. */
static size_t seq_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t min, cp;
	if ((c & 0xe0) == 0xc0) {
		len = 2, min = 0x80, cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, min = 0x800, cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void utf8_sanitize(const uint8_t *p, size_t n, struct buf *out)
{
	size_t i = 0, run = 0;
	while (i < n) {
		size_t l = seq_len(p + i, n - i);
		if (l) {
			i += l;
			continue;
		}
		buf_append(out, p + run, i - run);
		buf_append(out, "\xef\xbf\xbd", 3);
		i++;
		run = i;
	}
	buf_append(out, p + run, n - run);
}

size_t utf8_incomplete_tail(const uint8_t *p, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		uint8_t c = p[n - back];
		if ((c & 0xc0) == 0x80)
			continue; /* continuation byte: keep looking for the lead */
		size_t want = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
		return want > back ? back : 0;
	}
	return 0;
}

json_t *utf8_json_string(const char *s)
{
	if (!s)
		return json_null();
	struct buf b;
	buf_init(&b);
	utf8_sanitize((const uint8_t *)s, strlen(s), &b);
	json_t *j = json_stringn(b.data ? (const char *)b.data : "", b.len);
	buf_free(&b);
	return j;
}
