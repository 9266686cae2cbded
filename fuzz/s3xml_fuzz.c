// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the S3 reply reader (src/store/s3xml.c), which reads
 * whatever an object store answers: the input is one reply body, read as a
 * ListObjectsV2 page (with an empty store prefix and with "mags/"), as an
 * error reply (Code, Message), as a CreateMultipartUpload reply (UploadId)
 * and element by element. Besides crashes it checks the contract: listed
 * keys carry the prefix's remainder, are non-empty and NUL-free; a "more"
 * answer has a usable token; decoding never grows the text; the element walk
 * always moves forward. fuzz/replay.c supplies main() for make fuzz-replay.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/store/s3xml.h"
#include "buf.h"

#define S3XML_FUZZ_MAX (1u << 20)	/* inputs above this are not replies we keep */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const struct buf *b, int r)
{
	if (r == 0 && (!b->data || b->data[b->len] != '\0'))
		abort(); /* found: NUL-terminated text, even when empty */
	if (r < 0 && b->len != 0)
		abort(); /* not found or undecodable: nothing half-decoded */
	if (r != 0 && r != S3XML_NONE && r != S3XML_EBAD)
		abort();
}

static void check_list(const char *xml, size_t n, const char *prefix)
{
	char **keys = NULL;
	size_t cnt = 0, cap = 0;
	struct buf token;
	buf_init(&token);
	int r = s3xml_list_page(xml, n, prefix, &keys, &cnt, &cap, &token);
	if (r != 0 && r != 1 && r != S3XML_EBAD)
		abort();
	if (r == 1 && (token.len == 0 || strlen((char *)token.data) != token.len))
		abort();
	if (cnt > cap || (cnt && !keys))
		abort();
	for (size_t i = 0; i < cnt; i++)
		if (!keys[i][0] || strlen(keys[i]) + strlen(prefix) > n)
			abort();
	for (size_t i = 0; i < cnt; i++)
		free(keys[i]);
	free(keys);
	buf_free(&token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > S3XML_FUZZ_MAX)
		return 0;
	const char *xml = (const char *)data;
	struct buf a, b;
	buf_init(&a);
	buf_init(&b);

	check_list(xml, size, "");
	check_list(xml, size, "mags/");

	s3xml_error(xml, size, &a, &b);
	if ((a.len && a.data[a.len]) || (b.len && b.data[b.len]))
		abort();
	check_text(&a, s3xml_get(xml, size, "UploadId", &a));
	(void)s3xml_is_error(xml, size);

	/* the walk over <Key> elements only moves forward, and stays inside */
	size_t pos = 0, last = 0;
	int r;
	while ((r = s3xml_next(xml, size, &pos, "Key", &a)) != S3XML_NONE) {
		check_text(&a, r);
		if (pos <= last || pos > size)
			abort();
		last = pos;
		if (r == 0 && a.len > size)
			abort();
	}
	if (pos != last)
		abort(); /* S3XML_NONE leaves pos alone */

	/* the whole input as element text: decoding never makes it longer */
	buf_reset(&a);
	r = s3xml_decode(xml, size, &a);
	if ((r != 0 && r != S3XML_EBAD) || a.len > size)
		abort();

	buf_free(&a);
	buf_free(&b);
	return 0;
}
