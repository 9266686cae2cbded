// SPDX-License-Identifier: MIT
/* Error objects with context; see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int neg(int code)
{
	if (code == 0)
		return -1;
	return code < 0 ? code : -code;
}

int err_set(struct err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code < 0 ? -code : code;
		if (code != 0 && code < 200) {
			/* errno values get their text appended */
			size_t n = strlen(err->msg);
			snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(err->code));
		}
	}
	return neg(code);
}

int err_wrap(struct err *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char pre[ERR_MSG_MAX], old[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t n = strlen(pre);
	if (n > sizeof err->msg - 3)
		n = sizeof err->msg - 3;
	memcpy(err->msg, pre, n);
	memcpy(err->msg + n, ": ", 2);
	size_t m = strlen(old);
	if (m > sizeof err->msg - n - 3)
		m = sizeof err->msg - n - 3;
	memcpy(err->msg + n + 2, old, m);
	err->msg[n + 2 + m] = '\0';
	return neg(err->code);
}

void err_clear(struct err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
