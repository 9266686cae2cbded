/* SPDX-License-Identifier: MIT */
/*
 * Reading the XML an S3 endpoint answers with (store_s3.c). This is not an
 * XML parser: it finds elements by name, <Tag>text</Tag> with no attributes,
 * and decodes their text, which is all the replies we read need:
 *   ListObjectsV2            <Key> (repeated), <IsTruncated>, <NextContinuationToken>
 *   CreateMultipartUpload    <UploadId>
 *   any error                <Error><Code>..</Code><Message>..</Message></Error>
 * Text may hold the five predefined entities (&amp; &lt; &gt; &quot; &apos;)
 * and numeric references to ASCII 1-127 (&#65; &#x41;); anything else makes
 * an element undecodable. Replies come from the object store and are
 * untrusted: every function bounds its reads by the length it is given (the
 * text need not be NUL-terminated, and may contain NUL bytes).
 * Fuzzed by fuzz/s3xml_fuzz.c.
 */
#ifndef MAGS_S3XML_H
#define MAGS_S3XML_H

#include <stddef.h>

#include "buf.h"

#define S3XML_TAG_MAX 60	/* bytes of a tag name the finders take */

enum {
	S3XML_NONE = -1,	/* no such element */
	S3XML_EBAD = -2,	/* the element is there but its text does not decode */
};

/* Appends the decoded text s[0..n) to out. Returns 0, or S3XML_EBAD at a bad entity (out then holds part). */
int s3xml_decode(const char *s, size_t n, struct buf *out);

/*
 * Finds the first <tag>text</tag> whose opening tag starts at or after *pos
 * in xml[0..n) and puts its decoded text in out (reset first; NUL-terminated
 * after out->len). Returns 0, S3XML_NONE when there is none (out empty, *pos
 * unchanged), or S3XML_EBAD when its text does not decode (out empty). On 0
 * and S3XML_EBAD *pos moves past the closing tag, so a loop goes on with the
 * next element. tag is at most S3XML_TAG_MAX bytes.
 */
int s3xml_next(const char *xml, size_t n, size_t *pos, const char *tag, struct buf *out);

/* s3xml_next from the start of xml: the first <tag>. Same returns. */
int s3xml_get(const char *xml, size_t n, const char *tag, struct buf *out);

/* True when xml[0..n) holds an <Error> element (CompleteMultipartUpload may fail with 200). */
int s3xml_is_error(const char *xml, size_t n);

/*
 * An S3 error reply's <Code> and <Message> into code and msg (each empty when
 * absent or undecodable).
 */
void s3xml_error(const char *xml, size_t n, struct buf *code, struct buf *msg);

/*
 * One ListObjectsV2 reply page. Appends to the array *keys (grown with
 * xrealloc; *cnt entries used, *cap allocated; the caller frees them) an
 * allocated copy of each <Key> that starts with prefix and is longer than it,
 * without the prefix; keys that hold a NUL byte or do not decode are skipped
 * (they cannot be ours). When <IsTruncated> is "true", token gets
 * <NextContinuationToken>. Returns 1 when more pages follow (token set, no
 * NUL in it), 0 when this was the last page, S3XML_EBAD when the reply says
 * it is truncated but has no usable token.
 */
int s3xml_list_page(const char *xml, size_t n, const char *prefix, char ***keys, size_t *cnt, size_t *cap,
		    struct buf *token);

#endif
