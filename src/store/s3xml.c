// SPDX-License-Identifier: MIT
/* Reading S3's XML replies by element name; see s3xml.h. */
#include "s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

int s3xml_decode(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '&') {
			buf_putc(out, s[i]);
			continue;
		}
		const char *semi = memchr(s + i, ';', n - i);
		if (!semi || semi - (s + i) > 10)
			return S3XML_EBAD;
		size_t m = (size_t)(semi - (s + i)); /* "&name" */
		const char *e = s + i + 1;
		if (m == 4 && !strncmp(e, "amp", 3))
			buf_putc(out, '&');
		else if (m == 3 && !strncmp(e, "lt", 2))
			buf_putc(out, '<');
		else if (m == 3 && !strncmp(e, "gt", 2))
			buf_putc(out, '>');
		else if (m == 5 && !strncmp(e, "quot", 4))
			buf_putc(out, '"');
		else if (m == 5 && !strncmp(e, "apos", 4))
			buf_putc(out, '\'');
		else if (m >= 3 && e[0] == '#') {
			char num[12];
			memcpy(num, e + 1, m - 2);
			num[m - 2] = '\0';
			char *end;
			unsigned long v = num[0] == 'x' || num[0] == 'X' ? strtoul(num + 1, &end, 16) : strtoul(num, &end, 10);
			if (*end || end == num || v == 0 || v > 0x7f)
				return S3XML_EBAD; /* keys are printable ASCII */
			buf_putc(out, (int)v);
		} else {
			return S3XML_EBAD;
		}
		i += m;
	}
	return 0;
}

int s3xml_next(const char *xml, size_t n, size_t *pos, const char *tag, struct buf *out)
{
	char open[S3XML_TAG_MAX + 4], close[S3XML_TAG_MAX + 4];
	size_t ol = (size_t)snprintf(open, sizeof open, "<%s>", tag);
	size_t cl = (size_t)snprintf(close, sizeof close, "</%s>", tag);
	buf_reset(out);
	if (!xml || *pos >= n || ol >= sizeof open || cl >= sizeof close)
		return S3XML_NONE;
	const char *a = memmem(xml + *pos, n - *pos, open, ol);
	if (!a)
		return S3XML_NONE;
	a += ol;
	const char *b = memmem(a, n - (size_t)(a - xml), close, cl);
	if (!b)
		return S3XML_NONE;
	*pos = (size_t)(b - xml) + cl;
	if (s3xml_decode(a, (size_t)(b - a), out) < 0) {
		buf_reset(out);
		return S3XML_EBAD;
	}
	buf_putc(out, '\0'); /* data is non-NULL even for empty text */
	out->len--;
	return 0;
}

int s3xml_get(const char *xml, size_t n, const char *tag, struct buf *out)
{
	size_t pos = 0;
	return s3xml_next(xml, n, &pos, tag, out);
}

int s3xml_is_error(const char *xml, size_t n)
{
	return xml && n && memmem(xml, n, "<Error>", 7) != NULL;
}

void s3xml_error(const char *xml, size_t n, struct buf *code, struct buf *msg)
{
	s3xml_get(xml, n, "Code", code);
	s3xml_get(xml, n, "Message", msg);
}

int s3xml_list_page(const char *xml, size_t n, const char *prefix, char ***keys, size_t *cnt, size_t *cap,
		    struct buf *token)
{
	size_t plen = strlen(prefix), pos = 0;
	struct buf k;
	int r;
	buf_init(&k);
	while ((r = s3xml_next(xml, n, &pos, "Key", &k)) != S3XML_NONE) {
		if (r < 0)
			continue; /* undecodable: not one of ours */
		const char *key = (const char *)k.data;
		if (k.len <= plen || strncmp(key, prefix, plen) || strlen(key) != k.len)
			continue; /* not ours (or has a NUL) */
		if (*cnt == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*keys = xrealloc(*keys, *cap * sizeof **keys);
		}
		(*keys)[(*cnt)++] = xstrdup(key + plen);
	}
	int more = s3xml_get(xml, n, "IsTruncated", &k) == 0 && !strcmp((char *)k.data, "true");
	buf_free(&k);
	if (!more)
		return 0;
	if (s3xml_get(xml, n, "NextContinuationToken", token) < 0 || token->len == 0 ||
	    strlen((char *)token->data) != token->len)
		return S3XML_EBAD;
	return 1;
}
