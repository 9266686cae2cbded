/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers. Running out of memory is not an error any caller can
 * handle sensibly, so every wrapper aborts with a message instead of
 * returning NULL; callers never check.
 */
#ifndef MAGS_XMALLOC_H
#define MAGS_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
