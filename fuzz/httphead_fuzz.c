// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the public-URL proxy's only parser of untrusted
 * bytes: the first request head of a connection (http_head_parse) and the
 * host-to-label mapping it feeds (http_host_label), and the response head a
 * node of a cluster reads from another (http_resp_parse). Besides crashes it checks
 * the contract: a complete head's length is within the input and the limit,
 * ends in an empty line, and parses the same on its own; a shorter prefix
 * never reads as complete; results are lowercase and bounded.
 * fuzz/replay.c supplies a main() that replays files without libFuzzer
 * (make test replays fuzz/corpus/httphead/ this way).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_label(const char *host, const char *domain)
{
	char label[HTTP_LABEL_MAX + 1];
	int n = http_host_label(host, domain, label, sizeof label);
	if (n < 0)
		return;
	if (n < 1 || n > HTTP_LABEL_MAX || strlen(label) != (size_t)n || label[0] == '-' || label[n - 1] == '-')
		abort();
	for (int i = 0; i < n; i++)
		if (!((label[i] >= 'a' && label[i] <= 'z') || (label[i] >= '0' && label[i] <= '9') || label[i] == '-'))
			abort();
}

static void check_head(const char *buf, size_t size, int r, const struct http_head *h)
{
	if (r < 0 || (size_t)r > size || r > HTTP_HEAD_MAX || buf[r - 1] != '\n')
		abort();
	if (!h->method_len || h->method_len > HTTP_METHOD_MAX || h->method != buf)
		abort();
	if (!h->target_len || h->target < buf || h->target + h->target_len > buf + r)
		abort();
	if ((h->minor != 0 && h->minor != 1) || h->port < 0 || h->port > 65535 || h->nfields > HTTP_FIELDS_MAX)
		abort();
	size_t hl = strlen(h->host);
	if (hl == 0 || hl > HTTP_HOST_MAX)
		abort();
	for (size_t i = 0; i < hl; i++)
		if (h->host[i] >= 'A' && h->host[i] <= 'Z')
			abort();
	struct http_head again;
	if (http_head_parse(buf, (size_t)r, &again) != r || strcmp(again.host, h->host) != 0)
		abort();
	if (http_head_parse(buf, (size_t)r - 1, &again) != 0)
		abort(); /* one byte short is incomplete, never complete or wrong */
	check_label(h->host, "localhost");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * HTTP_HEAD_MAX)
		return 0;
	const char *buf = (const char *)data;
	struct http_head h;
	int r = http_head_parse(buf, size, &h);
	if (r > 0)
		check_head(buf, size, r, &h);
	else if (r == 0 && (size >= HTTP_HEAD_MAX || h.error))
		abort();
	else if (r < 0 && (r != -1 || !h.error))
		abort();

	struct http_resp hr;
	int rr = http_resp_parse(buf, size, &hr);
	if (rr > 0) {
		if ((size_t)rr > size || rr > HTTP_HEAD_MAX || buf[rr - 1] != '\n' || hr.status < 100 || hr.status > 599 ||
		    hr.content_length < -1 || hr.nfields > HTTP_FIELDS_MAX)
			abort();
		for (int k = 0; k < HTTP_RESP_KEPT; k++)
			if (hr.kept[k] && (hr.kept[k] < buf || hr.kept[k] + hr.kept_len[k] > buf + rr ||
					   memchr(hr.kept[k], '\n', hr.kept_len[k])))
				abort();
		struct http_resp again;
		if (http_resp_parse(buf, (size_t)rr, &again) != rr || again.status != hr.status ||
		    http_resp_parse(buf, (size_t)rr - 1, &again) != 0)
			abort();
	} else if ((rr == 0 && (size >= HTTP_HEAD_MAX || hr.error)) || (rr < 0 && (rr != -1 || !hr.error))) {
		abort();
	}

	/* the raw input as a host name, split into host and domain at its first NUL */
	char s[512];
	size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	const char *nul = memchr(data, '\0', n);
	check_label(s, nul ? s + (nul - buf) + 1 : "localhost");
	return 0;
}
