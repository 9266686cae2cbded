/* SPDX-License-Identifier: MIT */
/* UTF-8 helpers for turning raw program output into JSON strings. */
#ifndef MAGS_UTF8_H
#define MAGS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* Appends p to out with every invalid byte sequence replaced by U+FFFD. */
void utf8_sanitize(const uint8_t *p, size_t n, struct buf *out);
/*
 * Number of bytes at the end of p (0..3) that begin a multi-byte sequence not
 * yet complete: hold them back until more output arrives, so a character
 * split across two reads is not mangled.
 */
size_t utf8_incomplete_tail(const uint8_t *p, size_t n);

/* A JSON string of s (NULL gives JSON null) with invalid UTF-8 replaced; new reference. */
json_t *utf8_json_string(const char *s);

#endif
