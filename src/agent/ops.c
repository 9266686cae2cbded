// SPDX-License-Identifier: MIT
/*
 * One-shot requests of mags-agent, answered with MSG_OK or MSG_ERROR on the
 * request's channel: INIT (what differs between sandboxes and so comes after
 * boot or snapshot restore: wall clock, hostname, entropy, DNS servers) and
 * FILE (write a file atomically, or a big one in pieces at offsets; resolved
 * in the guest's root by files.c like the other file requests). Payloads
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

#include "payload.h"
#include "xmalloc.h"

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
	struct payload_init_item item;
	const char *bad;
	int rc;
	char dns[AGENT_DNS_MAX][INET_ADDRSTRLEN];
	unsigned ndns = 0;

	/* the whole payload is checked before anything changes (dns is written after the loop) */
	if ((bad = payload_init_parse(kv, len, dns, &ndns)) != NULL) {
		agent_send_error(a, chan, "%s", bad);
		return;
	}

	proto_kv_iter_init(&it, kv, len);
	while ((rc = payload_init_next(&it, &item, &bad)) == 1) {
		if (item.kind == PAYLOAD_INIT_TIME) {
			uint64_t ns = item.time_ns;
			struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };
			if (a->pid1 && clock_settime(CLOCK_REALTIME, &ts) < 0) {
				agent_send_error(a, chan, "INIT: set clock: %s", strerror(errno));
				return;
			}
		} else if (item.kind == PAYLOAD_INIT_HOSTNAME) {
			if (a->pid1 && sethostname((const char *)item.hostname, item.hostname_len) < 0) {
				agent_send_error(a, chan, "INIT: sethostname: %s", strerror(errno));
				return;
			}
		} else if (item.kind == PAYLOAD_INIT_ENTROPY) {
			int r = item.nseed ? add_entropy(item.seed, item.nseed, a->pid1) : 0;
			if (r < 0)
				agent_log("entropy: %s", strerror(-r));
		}
	}
	if (rc < 0) {
		agent_send_error(a, chan, "%s", bad);
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

void ops_file(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len)
{
	struct payload_file f;
	const char *bad;

	if (chan && agent_chan_busy(a, chan)) {
		agent_send_error(a, chan, "EBUSY: channel %u is busy", chan);
		return;
	}
	if ((bad = payload_file_parse(&f, kv, len)) != NULL) {
		agent_send_error(a, chan, "%s", bad);
		return;
	}
	if (a->ws_frozen) {
		/* a write would block PID 1 until THAW, which it could then never read */
		agent_send_error(a, chan, "EBUSY: FILE: the workspace is frozen");
		return;
	}
	char *p = files_abspath(f.path, f.path_len);
	const uint8_t *d = f.data ? f.data : (const uint8_t *)"";
	int r = files_put(p, d, f.data_len, (mode_t)f.mode, f.offset);
	if (r == -ESPIPE)
		agent_send_error(a, chan, "ESPIPE: FILE %s: shorter than offset %llu", p, (unsigned long long)f.offset);
	else if (r == -EXDEV)
		agent_send_error(a, chan, "EXDEV: path escapes the sandbox: %s", p);
	else if (r < 0)
		agent_send_error(a, chan, "%s: FILE %s: %s", files_errname(-r), p, strerror(-r));
	else
		agent_send(a, MSG_OK, chan, NULL, 0);
	free(p);
}
