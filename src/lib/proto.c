// SPDX-License-Identifier: MIT
/* Agent frame encoding and decoding; see proto.h and docs/agent-protocol.md. */
#include "proto.h"

#include <string.h>

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void proto_dec_init(struct proto_dec *d)
{
	buf_init(&d->in);
	d->off = 0;
}

void proto_dec_free(struct proto_dec *d)
{
	buf_free(&d->in);
	d->off = 0;
}

void proto_dec_feed(struct proto_dec *d, const void *data, size_t n)
{
	if (d->off) {
		buf_consume(&d->in, d->off);
		d->off = 0;
	}
	buf_append(&d->in, data, n);
}

int proto_dec_next(struct proto_dec *d, struct agent_frame *f)
{
	size_t avail = d->in.len - d->off;
	const uint8_t *h = d->in.data + d->off;

	memset(f, 0, sizeof *f);
	if (avail < AGENT_FRAME_HDR)
		return 0;
	uint32_t len = get_le32(h);
	if (len > AGENT_FRAME_MAX)
		return PROTO_ETOOBIG;
	if (avail - AGENT_FRAME_HDR < len)
		return 0;
	f->len = len;
	f->type = get_le16(h + 4);
	f->flags = get_le16(h + 6);
	f->chan = get_le32(h + 8);
	f->payload = h + AGENT_FRAME_HDR;
	d->off += AGENT_FRAME_HDR + len;
	return 1;
}

void proto_frame_put(struct buf *out, uint16_t type, uint32_t chan, const void *payload, size_t len)
{
	uint8_t h[AGENT_FRAME_HDR];
	put_le32(h, (uint32_t)len);
	put_le16(h + 4, type);
	put_le16(h + 6, 0);
	put_le32(h + 8, chan);
	buf_append(out, h, sizeof h);
	buf_append(out, payload, len);
}

void proto_kv_put(struct buf *b, const char *key, const void *val, size_t vlen)
{
	size_t klen = strlen(key);
	uint8_t k = (uint8_t)(klen > 255 ? 255 : klen);
	uint8_t l[4];
	buf_append(b, &k, 1);
	buf_append(b, key, k);
	put_le32(l, (uint32_t)vlen);
	buf_append(b, l, 4);
	buf_append(b, val, vlen);
}

void proto_kv_puts(struct buf *b, const char *key, const char *val)
{
	proto_kv_put(b, key, val, strlen(val));
}

void proto_kv_iter_init(struct proto_kv_iter *it, const uint8_t *p, size_t len)
{
	it->p = p;
	it->len = len;
	it->off = 0;
}

int proto_kv_next(struct proto_kv_iter *it, const char **key, size_t *klen, const uint8_t **val, size_t *vlen)
{
	*key = NULL;
	*val = NULL;
	*klen = *vlen = 0;
	if (it->off == it->len)
		return 0;
	size_t rest = it->len - it->off;
	const uint8_t *p = it->p + it->off;
	size_t kl = p[0];
	if (kl == 0 || rest < 1 + kl + 4)
		return PROTO_EBADKV;
	uint32_t vl = get_le32(p + 1 + kl);
	if (vl > rest - 1 - kl - 4)
		return PROTO_EBADKV;
	*key = (const char *)p + 1;
	*klen = kl;
	*val = p + 1 + kl + 4;
	*vlen = vl;
	it->off += 1 + kl + 4 + vl;
	return 1;
}

int proto_kv_u64(const uint8_t *val, size_t vlen, uint64_t *out)
{
	uint64_t v = 0;
	*out = 0;
	if (vlen == 0 || vlen > 19)
		return PROTO_EBADKV;
	for (size_t i = 0; i < vlen; i++) {
		if (val[i] < '0' || val[i] > '9')
			return PROTO_EBADKV;
		v = v * 10 + (uint64_t)(val[i] - '0');
	}
	*out = v;
	return 0;
}

int proto_kv_is(const char *key, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(key, name, klen) == 0;
}

size_t proto_exit_encode(uint8_t out[AGENT_EXIT_LEN], const struct agent_exit *e)
{
	put_le32(out, (uint32_t)e->code);
	put_le32(out + 4, (uint32_t)e->signal);
	put_le32(out + 8, e->flags);
	if (!(e->flags & AGENT_EXIT_RESTART))
		return 12;
	put_le32(out + 12, e->restart_ms);
	return 16;
}

int proto_exit_decode(const uint8_t *p, size_t len, struct agent_exit *e)
{
	memset(e, 0, sizeof *e);
	if (len != 12 && len != 16)
		return PROTO_EBADKV;
	e->code = (int32_t)get_le32(p);
	e->signal = (int32_t)get_le32(p + 4);
	e->flags = get_le32(p + 8);
	/* the restart delay comes exactly when the flag says so */
	if ((len == 16) != !!(e->flags & AGENT_EXIT_RESTART)) {
		memset(e, 0, sizeof *e);
		return PROTO_EBADKV;
	}
	if (len == 16)
		e->restart_ms = get_le32(p + 12);
	return 0;
}
