// SPDX-License-Identifier: MIT
/* Parsers of the agent's request payloads; see payload.h. */
#include "payload.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define PAYLOAD_STR(x) #x
#define PAYLOAD_XSTR(x) PAYLOAD_STR(x)

static bool has_nul(const uint8_t *p, size_t n)
{
	return memchr(p, 0, n) != NULL;
}

static bool has_prefix(const uint8_t *p, size_t n, const char *pre)
{
	size_t l = strlen(pre);
	return n >= l && memcmp(p, pre, l) == 0;
}

/* ---- INIT ---------------------------------------------------------------------- */

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hostname_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > PAYLOAD_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* A dotted-quad IPv4 address (inet_pton's form); its text into out. */
static bool ipv4_ok(const uint8_t *p, size_t n, char out[INET_ADDRSTRLEN])
{
	struct in_addr in;
	if (n == 0 || n >= INET_ADDRSTRLEN)
		return false;
	memcpy(out, p, n);
	out[n] = 0;
	return inet_pton(AF_INET, out, &in) == 1;
}

const char *payload_init_parse(const uint8_t *kv, size_t len, char dns[AGENT_DNS_MAX][INET_ADDRSTRLEN],
			       unsigned *ndns)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;

	*ndns = 0;
	proto_kv_iter_init(&it, kv, len);
	while (proto_kv_next(&it, &k, &kl, &v, &vl) == 1) {
		if (!proto_kv_is(k, kl, "dns"))
			continue;
		if (*ndns == AGENT_DNS_MAX)
			return "INIT: more than " PAYLOAD_XSTR(AGENT_DNS_MAX) " dns servers";
		if (!ipv4_ok(v, vl, dns[*ndns]))
			return "INIT: bad dns (want an IPv4 address)";
		(*ndns)++;
	}
	/* then every other record, in order */
	struct payload_init_item item;
	const char *bad;
	proto_kv_iter_init(&it, kv, len);
	while (payload_init_next(&it, &item, &bad) == 1)
		;
	return bad;
}

int payload_init_next(struct proto_kv_iter *it, struct payload_init_item *item, const char **bad)
{
	const char *k;
	const uint8_t *v;
	size_t kl, vl;

	*bad = NULL;
	item->kind = PAYLOAD_INIT_OTHER;
	int rc = proto_kv_next(it, &k, &kl, &v, &vl);
	if (rc < 0) {
		*bad = "INIT: malformed key/value payload";
		return -1;
	}
	if (rc == 0)
		return 0;
	if (proto_kv_is(k, kl, "time_ns")) {
		if (proto_kv_u64(v, vl, &item->time_ns) < 0) {
			*bad = "INIT: bad time_ns";
			return -1;
		}
		item->kind = PAYLOAD_INIT_TIME;
	} else if (proto_kv_is(k, kl, "hostname")) {
		if (!hostname_ok(v, vl)) {
			*bad = "INIT: bad hostname";
			return -1;
		}
		item->kind = PAYLOAD_INIT_HOSTNAME;
		item->hostname = v;
		item->hostname_len = vl;
	} else if (proto_kv_is(k, kl, "entropy")) {
		if (vl % 2) {
			*bad = "INIT: bad entropy (odd hex length)";
			return -1;
		}
		item->nseed = 0;
		for (size_t i = 0; i + 1 < vl && item->nseed < sizeof item->seed; i += 2) {
			int hi = hexval(v[i]), lo = hexval(v[i + 1]);
			if (hi < 0 || lo < 0) {
				*bad = "INIT: bad entropy (not hex)";
				return -1;
			}
			item->seed[item->nseed++] = (uint8_t)(hi << 4 | lo);
		}
		item->kind = PAYLOAD_INIT_ENTROPY;
	}
	/* other keys are for newer agents */
	return 1;
}

/* ---- EXEC ---------------------------------------------------------------------- */

void payload_exec_free(struct payload_exec *r)
{
	free(r->cwd);
	for (size_t i = 0; i < r->nenv; i++)
		free(r->env[i]);
	free(r->env);
	r->cwd = NULL;
	r->env = NULL;
	r->nenv = 0;
}

const char *payload_exec_parse(struct payload_exec *r, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;

	memset(r, 0, sizeof *r);
	r->cols = 80;
	r->rows = 24;
	r->env = xcalloc(1, sizeof *r->env);
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "cmd")) {
			r->cmd = v;
			r->cmd_len = vl;
		} else if (proto_kv_is(k, kl, "cwd")) {
			if (vl == 0 || vl >= PATH_MAX || has_nul(v, vl))
				return "bad cwd";
			free(r->cwd);
			r->cwd = xstrndup((const char *)v, vl);
		} else if (proto_kv_is(k, kl, "env")) {
			const uint8_t *eq = memchr(v, '=', vl);
			if (!eq || eq == v || has_nul(v, vl))
				return "bad env entry (want K=V)";
			if (r->nenv >= EXEC_ENV_MAX)
				return "too many env entries";
			r->env = xrealloc(r->env, (r->nenv + 2) * sizeof *r->env);
			r->env[r->nenv++] = xstrndup((const char *)v, vl);
			r->env[r->nenv] = NULL;
		} else if (proto_kv_is(k, kl, "timeout")) {
			uint64_t t;
			if (proto_kv_u64(v, vl, &t) < 0 || t > EXEC_TIMEOUT_MAX)
				return "bad timeout";
			r->timeout = (long long)t;
		} else if (proto_kv_is(k, kl, "file")) {
			r->file = vl == 1 && v[0] == '1';
		} else if (proto_kv_is(k, kl, "stdin")) {
			r->want_stdin = vl == 1 && v[0] == '1';
		} else if (proto_kv_is(k, kl, "restart")) {
			r->restart = vl == 1 && v[0] == '1';
		} else if (proto_kv_is(k, kl, "tty")) {
			r->tty = vl == 1 && v[0] == '1';
		} else if (proto_kv_is(k, kl, "cols") || proto_kv_is(k, kl, "rows")) {
			uint64_t x;
			if (proto_kv_u64(v, vl, &x) < 0 || x < 1 || x > AGENT_TTY_MAX)
				return "bad cols or rows (1-" PAYLOAD_XSTR(AGENT_TTY_MAX) ")";
			*(k[0] == 'c' ? &r->cols : &r->rows) = (unsigned)x;
		}
		/* unknown keys are ignored: newer hosts may send more */
	}
	if (rc < 0)
		return "malformed key/value payload";
	if (!r->cmd)
		return "missing cmd";
	if (!r->file && (r->cmd_len == 0 || has_nul(r->cmd, r->cmd_len)))
		return "bad cmd";
	return NULL;
}

/* ---- FILE ---------------------------------------------------------------------- */

bool payload_path_ok(const uint8_t *p, size_t n, bool root_ok)
{
	if (n == 1 && p[0] == '/')
		return root_ok;
	if (n == 0 || n >= PATH_MAX - 8 || p[n - 1] == '/' || memchr(p, 0, n))
		return false;
	size_t i = p[0] == '/' ? 1 : 0;
	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t cl = j - i;
		if (cl == 0 || (cl == 1 && p[i] == '.') || (cl == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

/* Octal text of 1-4 digits. */
static bool mode_ok(const uint8_t *v, size_t vl, unsigned *mode)
{
	if (vl == 0 || vl > 4)
		return false;
	*mode = 0;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '7')
			return false;
		*mode = *mode * 8 + (v[i] - '0');
	}
	return true;
}

const char *payload_file_parse(struct payload_file *r, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;

	memset(r, 0, sizeof *r);
	r->mode = 0644;
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "path")) {
			r->path = v;
			r->path_len = vl;
		} else if (proto_kv_is(k, kl, "data")) {
			r->data = v;
			r->data_len = vl;
		} else if (proto_kv_is(k, kl, "offset")) {
			if (proto_kv_u64(v, vl, &r->offset) < 0 || r->offset > (uint64_t)INT64_MAX / 2)
				return "EINVAL: FILE: bad offset";
		} else if (proto_kv_is(k, kl, "mode")) {
			if (!mode_ok(v, vl, &r->mode))
				return "EINVAL: FILE: bad mode (want octal, e.g. 644)";
		}
	}
	if (rc < 0)
		return "EINVAL: FILE: malformed key/value payload";
	if (!r->path || !payload_path_ok(r->path, r->path_len, false))
		return "EINVAL: FILE: path must be absolute or relative to /root, without . or .. components";
	return NULL;
}

/* ---- MOUNT --------------------------------------------------------------------- */

/* Serial: 1 .. AGENT_SERIAL_MAX of [A-Za-z0-9_-]. */
static bool serial_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > AGENT_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

const char *payload_mount_parse(struct payload_mount *r, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;
	bool have_upper = false;

	memset(r, 0, sizeof *r);
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		bool up = proto_kv_is(k, kl, "upper"), low = proto_kv_is(k, kl, "lower");
		if (!up && !low)
			continue;
		if (!serial_ok(v, vl))
			return "MOUNT: bad disk serial (1-20 of [A-Za-z0-9_-])";
		char *dst;
		if (up) {
			if (have_upper)
				return "MOUNT: more than one upper";
			have_upper = true;
			dst = r->upper;
		} else {
			if (r->nlower == AGENT_MOUNT_LOWER_MAX)
				return "MOUNT: more than " PAYLOAD_XSTR(AGENT_MOUNT_LOWER_MAX) " lower disks";
			dst = r->lower[r->nlower++];
		}
		memcpy(dst, v, vl);
		dst[vl] = 0;
	}
	if (rc < 0)
		return "MOUNT: malformed key/value payload";
	if (!have_upper)
		return "MOUNT: upper is required";
	return NULL;
}

/* ---- SSHD ---------------------------------------------------------------------- */

/* One authorized_keys line of a key type, without options: printable, no line breaks. */
static bool key_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > AGENT_SSHD_KEY_MAX)
		return false;
	if (!has_prefix(p, n, "ssh-") && !has_prefix(p, n, "ecdsa-") && !has_prefix(p, n, "sk-"))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

const char *payload_sshd_parse(struct payload_sshd *r, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;

	memset(r, 0, sizeof *r);
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "key")) {
			while (vl > 0 && (v[vl - 1] == '\n' || v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (!key_ok(v, vl))
				return "SSHD: bad key (want one line \"ssh-...\", \"ecdsa-...\" or \"sk-...\", "
				       "printable, at most 8192 bytes)";
			if (r->nkeys == AGENT_SSHD_KEYS_MAX)
				return "SSHD: more than 64 keys";
			r->key[r->nkeys] = v;
			r->key_len[r->nkeys++] = vl;
		} else if (proto_kv_is(k, kl, "host_key")) {
			if (vl == 0 || vl > AGENT_SSHD_HOST_KEY_MAX || has_nul(v, vl) || !has_prefix(v, vl, "-----BEGIN "))
				return "SSHD: bad host_key (want a PEM private key, \"-----BEGIN ...\", "
				       "at most 16384 bytes)";
			if (r->host_key)
				return "SSHD: more than one host_key";
			r->host_key = v;
			r->host_key_len = vl;
		}
	}
	if (rc < 0)
		return "SSHD: malformed key/value payload";
	return NULL;
}

/* ---- RESIZE and the file requests ----------------------------------------------- */

const char *payload_resize_parse(const uint8_t *p, size_t len, unsigned *cols, unsigned *rows)
{
	*cols = *rows = 0;
	if (len != 4)
		return "RESIZE: payload must be 4 bytes (u16 cols, u16 rows)";
	unsigned c = (unsigned)p[0] | (unsigned)p[1] << 8, r = (unsigned)p[2] | (unsigned)p[3] << 8;
	if (c < 1 || c > AGENT_TTY_MAX || r < 1 || r > AGENT_TTY_MAX)
		return "RESIZE: cols and rows must be 1-" PAYLOAD_XSTR(AGENT_TTY_MAX);
	*cols = c;
	*rows = r;
	return NULL;
}

static bool is_one(const uint8_t *v, size_t vl)
{
	return vl == 1 && v[0] == '1';
}

const char *payload_fop_parse(struct payload_fop *r, uint16_t type, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;

	memset(r, 0, sizeof *r);
	r->mode = 0755;
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "path")) {
			r->path = v;
			r->path_len = vl;
		} else if (type == MSG_FREAD && proto_kv_is(k, kl, "offset")) {
			if (proto_kv_u64(v, vl, &r->offset) < 0 || r->offset > (uint64_t)INT64_MAX)
				return "EINVAL: bad offset";
		} else if ((type == MSG_FREMOVE || type == MSG_WATCH) && proto_kv_is(k, kl, "recursive")) {
			r->recursive = is_one(v, vl);
		} else if (type == MSG_FMKDIR && proto_kv_is(k, kl, "parents")) {
			r->parents = is_one(v, vl);
		} else if (type == MSG_FMKDIR && proto_kv_is(k, kl, "mode")) {
			if (!mode_ok(v, vl, &r->mode))
				return "EINVAL: bad mode (want octal, e.g. 755)";
		}
	}
	if (rc < 0)
		return "EINVAL: malformed key/value payload";
	if (!r->path)
		return "EINVAL: path is required";
	if (!payload_path_ok(r->path, r->path_len, true))
		return "EINVAL: bad path (absolute or relative to /root; no empty, . or .. component, "
		       "no trailing slash, no NUL)";
	return NULL;
}
