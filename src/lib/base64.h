/* SPDX-License-Identifier: MIT */
/*
 * Text encodings of bytes. Standard base64 (RFC 4648 section 4, with '='
 * padding), used for file contents in JSON bodies (the "content_base64"
 * field of job files); lowercase hex, used for digests, keys and tokens.
 */
#ifndef MAGS_BASE64_H
#define MAGS_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Bytes base64_encode appends for n input bytes (without a NUL). */
#define BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Appends the encoding of p[0..n) to out. */
void base64_encode(const void *p, size_t n, struct buf *out);
/*
 * Appends the decoding of s[0..n) to out. Padding is required; whitespace is
 * not accepted. Returns 0, or -1 on malformed input (out then holds a prefix).
 */
int base64_decode(const char *s, size_t n, struct buf *out);
/* Writes the lowercase hex of p[0..n) and a NUL to out (2n + 1 bytes). */
void hex_encode(const void *p, size_t n, char *out);

#endif
