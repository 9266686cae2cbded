// SPDX-License-Identifier: MIT
/* Base64 encoding and decoding; see base64.h. */
#include "base64.h"

#include <stdbool.h>
#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const void *p, size_t n, struct buf *out)
{
	const uint8_t *s = p;
	buf_reserve(out, BASE64_ENCODED_LEN(n));
	char *d = (char *)out->data + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*d++ = base64_alphabet[v >> 18 & 63];
		*d++ = base64_alphabet[v >> 12 & 63];
		*d++ = base64_alphabet[v >> 6 & 63];
		*d++ = base64_alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		*d++ = base64_alphabet[v >> 18 & 63];
		*d++ = base64_alphabet[v >> 12 & 63];
		*d++ = i + 1 < n ? base64_alphabet[v >> 6 & 63] : '=';
		*d++ = '=';
	}
	out->len = (size_t)(d - (char *)out->data);
	out->data[out->len] = 0;
}

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *s, size_t n, struct buf *out)
{
	if (n % 4)
		return -1;
	buf_reserve(out, n / 4 * 3);
	for (size_t i = 0; i < n; i += 4) {
		int a = base64_value(s[i]), b = base64_value(s[i + 1]);
		int c = base64_value(s[i + 2]), d = base64_value(s[i + 3]);
		bool last = i + 4 == n;
		if (a < 0 || b < 0)
			return -1;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12;
		if (c < 0) {
			/* "xx==": one byte, only in the last quantum, unused bits zero */
			if (!last || s[i + 2] != '=' || s[i + 3] != '=' || (b & 15))
				return -1;
			buf_putc(out, (int)(v >> 16));
			break;
		}
		v |= (uint32_t)c << 6;
		if (d < 0) {
			if (!last || s[i + 3] != '=' || (c & 3))
				return -1;
			buf_putc(out, (int)(v >> 16));
			buf_putc(out, (int)(v >> 8 & 255));
			break;
		}
		v |= (uint32_t)d;
		buf_putc(out, (int)(v >> 16));
		buf_putc(out, (int)(v >> 8 & 255));
		buf_putc(out, (int)(v & 255));
	}
	return 0;
}

void hex_encode(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}
