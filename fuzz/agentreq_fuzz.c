// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for mags-agent's request payload parsers
 * (src/agent/payload.c): the input is one key/value payload, read as INIT
 * (the whole-payload check, then record by record), EXEC, FILE, MOUNT,
 * SSHD, RESIZE (the raw 4 bytes) and the file requests FREAD, FSTAT, FLIST,
 * FREMOVE, FMKDIR and WATCH. The frame layer under them is fuzz/proto_fuzz.c's. Besides crashes
 * it checks what each accepts: results lie inside the payload and within the
 * limits of docs/agent-protocol.md, and an INIT that passed the check walks
 * to its end without an error.
 * fuzz/replay.c supplies main() for make fuzz-replay.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/agent/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	if (p && (p < data || p + n > data + size))
		abort();
}

static void check_init(const uint8_t *data, size_t size)
{
	char dns[AGENT_DNS_MAX][INET_ADDRSTRLEN];
	unsigned ndns = 99;
	const char *checked = payload_init_parse(data, size, dns, &ndns);
	if (ndns > AGENT_DNS_MAX)
		abort();
	for (unsigned i = 0; !checked && i < ndns; i++) {
		struct in_addr in;
		if (inet_pton(AF_INET, dns[i], &in) != 1)
			abort();
	}
	struct proto_kv_iter it;
	struct payload_init_item item;
	const char *bad;
	int r;
	proto_kv_iter_init(&it, data, size);
	while ((r = payload_init_next(&it, &item, &bad)) == 1) {
		if (bad)
			abort();
		if (item.kind == PAYLOAD_INIT_HOSTNAME &&
		    (item.hostname_len < 1 || item.hostname_len > PAYLOAD_HOSTNAME_MAX))
			abort();
		if (item.kind == PAYLOAD_INIT_HOSTNAME)
			inside(item.hostname, item.hostname_len, data, size);
		if (item.kind == PAYLOAD_INIT_ENTROPY && item.nseed > sizeof item.seed)
			abort();
	}
	if ((r < 0) != (bad != NULL) || (r != 0 && r != -1))
		abort();
	if (!checked && r != 0)
		abort(); /* a payload that passed the check applies without an error half-way */
}

static void check_exec(const uint8_t *data, size_t size)
{
	struct payload_exec r;
	const char *bad = payload_exec_parse(&r, data, size);
	if (!bad) {
		if (!r.cmd || r.timeout < 0 || r.timeout > EXEC_TIMEOUT_MAX || r.nenv > EXEC_ENV_MAX)
			abort();
		if (!r.file && (r.cmd_len == 0 || memchr(r.cmd, 0, r.cmd_len)))
			abort();
		inside(r.cmd, r.cmd_len, data, size);
		if (r.cwd && !r.cwd[0])
			abort();
		for (size_t i = 0; i < r.nenv; i++) {
			const char *eq = strchr(r.env[i], '=');
			if (!eq || eq == r.env[i])
				abort();
		}
		if (r.env[r.nenv])
			abort();
		if (r.cols < 1 || r.cols > AGENT_TTY_MAX || r.rows < 1 || r.rows > AGENT_TTY_MAX)
			abort();
	}
	payload_exec_free(&r);
}

/* The path rule (payload_path_ok) checked a second way: split on '/'. */
static void check_path(const uint8_t *p, size_t n, bool root_ok)
{
	if (!p || n == 0 || memchr(p, 0, n) || n >= PATH_MAX - 8)
		abort();
	if (n == 1 && p[0] == '/') {
		if (!root_ok)
			abort();
		return;
	}
	if (p[n - 1] == '/')
		abort();
	for (size_t i = p[0] == '/' ? 1 : 0, j; i <= n; i = j + 1) {
		for (j = i; j < n && p[j] != '/'; j++)
			;
		size_t cl = j - i;
		if (cl == 0 || (cl == 1 && p[i] == '.') || (cl == 2 && p[i] == '.' && p[i + 1] == '.'))
			abort();
	}
}

static void check_file(const uint8_t *data, size_t size)
{
	struct payload_file f;
	if (payload_file_parse(&f, data, size))
		return;
	if (!f.path || !f.path_len || memchr(f.path, 0, f.path_len) || f.path[f.path_len - 1] == '/')
		abort();
	inside(f.path, f.path_len, data, size);
	inside(f.data, f.data_len, data, size);
	if (f.mode > 07777 || f.offset > (uint64_t)INT64_MAX / 2)
		abort();
	check_path(f.path, f.path_len, false);
	/* no "." or ".." component */
	for (size_t i = 0; i < f.path_len; i++)
		if (f.path[i] == '.' && (i == 0 || f.path[i - 1] == '/') &&
		    (i + 1 == f.path_len || f.path[i + 1] == '/' ||
		     (f.path[i + 1] == '.' && (i + 2 == f.path_len || f.path[i + 2] == '/'))))
			abort();
}

static void check_serial(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > AGENT_SERIAL_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
		abort();
}

static void check_mount(const uint8_t *data, size_t size)
{
	struct payload_mount m;
	if (payload_mount_parse(&m, data, size))
		return;
	if (m.nlower > AGENT_MOUNT_LOWER_MAX)
		abort();
	check_serial(m.upper);
	for (unsigned i = 0; i < m.nlower; i++)
		check_serial(m.lower[i]);
}

static void check_sshd(const uint8_t *data, size_t size)
{
	struct payload_sshd r;
	if (payload_sshd_parse(&r, data, size))
		return;
	if (r.nkeys > AGENT_SSHD_KEYS_MAX)
		abort();
	for (unsigned i = 0; i < r.nkeys; i++) {
		inside(r.key[i], r.key_len[i], data, size);
		if (!r.key_len[i] || r.key_len[i] > AGENT_SSHD_KEY_MAX || memchr(r.key[i], '\n', r.key_len[i]))
			abort();
	}
	if (r.host_key) {
		inside(r.host_key, r.host_key_len, data, size);
		if (r.host_key_len < 11 || r.host_key_len > AGENT_SSHD_HOST_KEY_MAX || memcmp(r.host_key, "-----BEGIN ", 11))
			abort();
	}
}

static void check_fops(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { MSG_FREAD, MSG_FSTAT, MSG_FLIST, MSG_FREMOVE, MSG_FMKDIR, MSG_WATCH };
	for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
		struct payload_fop r;
		const char *bad = payload_fop_parse(&r, types[t], data, size);
		if (bad) {
			if (strncmp(bad, "EINVAL: ", 8))
				abort(); /* the host maps the errno name */
			continue;
		}
		inside(r.path, r.path_len, data, size);
		check_path(r.path, r.path_len, true);
		if (r.mode > 07777 || r.offset > (uint64_t)INT64_MAX)
			abort();
		if ((r.offset && types[t] != MSG_FREAD) || (r.parents && types[t] != MSG_FMKDIR) ||
		    (r.recursive && types[t] != MSG_FREMOVE && types[t] != MSG_WATCH) ||
		    (r.mode != 0755 && types[t] != MSG_FMKDIR))
			abort();
	}
}

static void check_resize(const uint8_t *data, size_t size)
{
	unsigned c, r;
	if (payload_resize_parse(data, size, &c, &r))
		return;
	if (size != 4 || c < 1 || c > AGENT_TTY_MAX || r < 1 || r > AGENT_TTY_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > AGENT_FRAME_MAX)
		return 0; /* the frame decoder never hands over more */
	check_init(data, size);
	check_exec(data, size);
	check_file(data, size);
	check_mount(data, size);
	check_sshd(data, size);
	check_fops(data, size);
	check_resize(data, size);
	return 0;
}
