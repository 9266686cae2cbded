// SPDX-License-Identifier: MIT
/* Names, job ids, sizes, shell words and known_hosts lines; see text.h. */
#include "text.h"

#include <stdio.h>
#include <string.h>

#include "xmalloc.h"

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

bool text_alias_ok(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n < 1 || n > TEXT_ALIAS_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

void text_shell_word(struct buf *b, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-";
	if (*s && strspn(s, safe) == strlen(s)) {
		buf_puts(b, s);
		return;
	}
	/* '...' quotes everything but ' itself, which becomes '\'' */
	buf_putc(b, '\'');
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			buf_puts(b, "'\\''");
		else
			buf_putc(b, *p);
	}
	buf_putc(b, '\'');
}

int text_ssh_key_split(const char *line, char **type, char **data)
{
	*type = NULL;
	*data = NULL;
	if (!line || strlen(line) > TEXT_HOST_KEY_MAX)
		return -1;
	const char *p = line + strspn(line, " \t");
	size_t tn = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-");
	if (!tn || tn > 64 || (p[tn] != ' ' && p[tn] != '\t'))
		return -1;
	const char *d = p + tn + strspn(p + tn, " \t");
	size_t dn = strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=");
	if (!dn || (d[dn] && d[dn] != ' ' && d[dn] != '\t' && d[dn] != '\n' && d[dn] != '\r'))
		return -1;
	/* whatever follows is a comment, but on the same line */
	const char *nl = strpbrk(d + dn, "\n\r");
	if (nl && nl[strspn(nl, " \t\r\n")])
		return -1;
	*type = xstrndup(p, tn);
	*data = xstrndup(d, dn);
	return 0;
}

char *text_known_hosts_set(const char *old, size_t len, const char *host, const char *type, const char *data)
{
	struct buf b;
	buf_init(&b);
	size_t hn = strlen(host);
	for (size_t at = 0; old && at < len;) {
		const char *line = old + at;
		const char *nl = memchr(line, '\n', len - at);
		size_t n = nl ? (size_t)(nl - line) + 1 : len - at;
		at += n;
		const char *f = line;
		while (f < line + n && (*f == ' ' || *f == '\t'))
			f++;
		size_t left = (size_t)(line + n - f);
		if (left > hn && !strncmp(f, host, hn) && (f[hn] == ' ' || f[hn] == '\t'))
			continue;	/* the line this call replaces */
		buf_append(&b, line, n);
		if (!nl)
			buf_putc(&b, '\n');
	}
	buf_printf(&b, "%s %s %s\n", host, type, data);
	return buf_steal(&b);
}
