/* SPDX-License-Identifier: MIT */
/* Growable byte buffer. Always NUL-terminated after data[len] for convenience. */
#ifndef MAGS_BUF_H
#define MAGS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;	/* owned; NULL until the first append */
	size_t len;	/* bytes in use */
	size_t cap;	/* bytes allocated */
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_putc(struct buf *b, int c);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the data over to the caller (who frees it) and resets b. */
char *buf_steal(struct buf *b);

#endif
