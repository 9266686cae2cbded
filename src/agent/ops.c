// SPDX-License-Identifier: MIT
/*
 * One-shot requests of mags-agent, answered with MSG_OK or MSG_ERROR on the
 * request's channel: INIT (what differs between sandboxes and so comes after
 * boot or snapshot restore: wall clock, hostname, entropy, DNS servers) and
 * FILE (write a file atomically, or a big one in pieces at offsets). Payloads
 * are described in docs/agent-protocol.md. Outside PID 1 (tests on the host)
 * INIT checks its input but changes nothing.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xmalloc.h"

#define OPS_HOSTNAME_MAX 64

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

/* Mixes seed bytes into the kernel pool, credits them (the host's getrandom) and reseeds the CRNG. */
static int add_entropy(const uint8_t *seed, size_t n, bool credit)
{
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (credit) {
		struct rand_pool_info *req = xmalloc(sizeof *req + n);
		req->entropy_count = (int)(n * 8);
		req->buf_size = (int)n;
		memcpy(req->buf, seed, n);
		if (ioctl(fd, RNDADDENTROPY, req) < 0)
			r = -errno;
		free(req);
		/*
		 * A restored snapshot resumes with the template's CRNG state, so
		 * every sandbox from one snapshot would draw the same numbers until
		 * the kernel's next scheduled reseed. Reseed now, from a pool that
		 * holds this sandbox's own seed.
		 */
		if (r == 0 && ioctl(fd, RNDRESEEDCRNG) < 0)
			r = -errno;
	} else if (write(fd, seed, n) < 0) {
		r = -errno;
	}
	close(fd);
	return r;
}

static bool hostname_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > OPS_HOSTNAME_MAX)
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

/* resolv.conf with a "nameserver" line per server (empty without one). Returns 0 or -errno. */
static int write_resolv(char dns[][INET_ADDRSTRLEN], unsigned n)
{
	struct buf b;
	buf_init(&b);
	for (unsigned i = 0; i < n; i++)
		buf_printf(&b, "nameserver %s\n", dns[i]);
	int r = ops_write_file(AGENT_RESOLV_CONF, b.data ? b.data : (const uint8_t *)"", b.len, 0644);
	buf_free(&b);
	return r;
}

void ops_init(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v;
	size_t kl, vl;
	int rc;
	char dns[AGENT_DNS_MAX][INET_ADDRSTRLEN];
	unsigned ndns = 0;

	/* dns is checked before anything changes: it is written after the loop */
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (!proto_kv_is(k, kl, "dns"))
			continue;
		if (ndns == AGENT_DNS_MAX) {
			agent_send_error(a, chan, "INIT: more than %d dns servers", AGENT_DNS_MAX);
			return;
		}
		if (!ipv4_ok(v, vl, dns[ndns])) {
			agent_send_error(a, chan, "INIT: bad dns (want an IPv4 address)");
			return;
		}
		ndns++;
	}

	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "time_ns")) {
			uint64_t ns;
			if (proto_kv_u64(v, vl, &ns) < 0) {
				agent_send_error(a, chan, "INIT: bad time_ns");
				return;
			}
			struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };
			if (a->pid1 && clock_settime(CLOCK_REALTIME, &ts) < 0) {
				agent_send_error(a, chan, "INIT: set clock: %s", strerror(errno));
				return;
			}
		} else if (proto_kv_is(k, kl, "hostname")) {
			if (!hostname_ok(v, vl)) {
				agent_send_error(a, chan, "INIT: bad hostname");
				return;
			}
			if (a->pid1 && sethostname((const char *)v, vl) < 0) {
				agent_send_error(a, chan, "INIT: sethostname: %s", strerror(errno));
				return;
			}
		} else if (proto_kv_is(k, kl, "entropy")) {
			uint8_t seed[AGENT_ENTROPY_MAX];
			size_t n = 0;
			if (vl % 2) {
				agent_send_error(a, chan, "INIT: bad entropy (odd hex length)");
				return;
			}
			for (size_t i = 0; i + 1 < vl && n < sizeof seed; i += 2) {
				int hi = hexval(v[i]), lo = hexval(v[i + 1]);
				if (hi < 0 || lo < 0) {
					agent_send_error(a, chan, "INIT: bad entropy (not hex)");
					return;
				}
				seed[n++] = (uint8_t)(hi << 4 | lo);
			}
			int r = n ? add_entropy(seed, n, a->pid1) : 0;
			if (r < 0)
				agent_log("entropy: %s", strerror(-r));
		}
		/* other keys are for newer agents */
	}
	if (rc < 0) {
		agent_send_error(a, chan, "INIT: malformed key/value payload");
		return;
	}
	int r = a->pid1 ? write_resolv(dns, ndns) : 0;
	if (r < 0) {
		agent_send_error(a, chan, "INIT: %s: %s", AGENT_RESOLV_CONF, strerror(-r));
		return;
	}
	agent_send(a, MSG_OK, chan, NULL, 0);
}

/* mkdir -p of path's parent directories. Returns 0 or -errno. */
static int make_parents(const char *path)
{
	char *p = xstrdup(path);
	int r = 0;
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s = '/';
	}
	free(p);
	return r;
}

int ops_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int r = make_parents(path);
	if (r < 0)
		return r;
	char *tmp = xasprintf("%s.mags-tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	const uint8_t *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

/* Absolute or relative (to /root), no "." or ".." components, no empty components, bounded. */
static bool path_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n >= PATH_MAX - 8 || p[n - 1] == '/' || memchr(p, 0, n) || (n == 1 && p[0] == '/'))
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

/* Writes data at off > 0 into the existing file path, which must be at least off long. */
static int write_at(const char *path, const uint8_t *data, size_t len, uint64_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((uint64_t)st.st_size < off)
		r = -ESPIPE; /* a piece is missing before this one */
	size_t done = 0;
	while (r == 0 && done < len) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			done += (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

void ops_file(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len)
{
	struct proto_kv_iter it;
	const char *k;
	const uint8_t *v, *path = NULL, *data = NULL;
	size_t kl, vl, path_len = 0, data_len = 0;
	unsigned mode = 0644;
	uint64_t offset = 0;
	int rc;

	if (chan && exec_busy(a, chan)) {
		agent_send_error(a, chan, "channel %u is busy", chan);
		return;
	}
	proto_kv_iter_init(&it, kv, len);
	while ((rc = proto_kv_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (proto_kv_is(k, kl, "path")) {
			path = v;
			path_len = vl;
		} else if (proto_kv_is(k, kl, "data")) {
			data = v;
			data_len = vl;
		} else if (proto_kv_is(k, kl, "offset")) {
			if (proto_kv_u64(v, vl, &offset) < 0 || offset > (uint64_t)INT64_MAX / 2) {
				agent_send_error(a, chan, "FILE: bad offset");
				return;
			}
		} else if (proto_kv_is(k, kl, "mode")) {
			if (vl == 0 || vl > 4)
				goto bad_mode;
			mode = 0;
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '7')
					goto bad_mode;
				mode = mode * 8 + (v[i] - '0');
			}
		}
	}
	if (rc < 0) {
		agent_send_error(a, chan, "FILE: malformed key/value payload");
		return;
	}
	if (!path || !path_ok(path, path_len)) {
		agent_send_error(a, chan, "FILE: path must be absolute or relative to /root, without . or .. components");
		return;
	}
	if (a->ws_frozen) {
		/* a write would block PID 1 until THAW, which it could then never read */
		agent_send_error(a, chan, "FILE: the workspace is frozen");
		return;
	}
	char *p = path[0] == '/' ? xstrndup((const char *)path, path_len)
				 : xasprintf("/root/%.*s", (int)path_len, (const char *)path);
	const uint8_t *d = data ? data : (const uint8_t *)"";
	int r = offset ? write_at(p, d, data_len, offset) : ops_write_file(p, d, data_len, (mode_t)mode);
	if (r == -ESPIPE)
		agent_send_error(a, chan, "FILE %s: shorter than offset %llu", p, (unsigned long long)offset);
	else if (r < 0)
		agent_send_error(a, chan, "FILE %s: %s", p, strerror(-r));
	else
		agent_send(a, MSG_OK, chan, NULL, 0);
	free(p);
	return;
bad_mode:
	agent_send_error(a, chan, "FILE: bad mode (want octal, e.g. 644)");
}
