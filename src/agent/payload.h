/* SPDX-License-Identifier: MIT */
/*
 * The agent's parsers of request payloads (docs/agent-protocol.md): the
 * key/value records of INIT, EXEC, FILE, MOUNT, SSHD and the file requests
 * (FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH), and RESIZE's 4 bytes, checked
 * and read into plain structs, with no side effects, so that boot.c, exec.c,
 * ops.c, files.c and sshd.c only act on requests that parsed, and fuzz/agentreq_fuzz.c can
 * run them without a guest. Each returns NULL or the text of the ERROR to
 * answer (a static string); pointers in the results go into the payload.
 */
#ifndef MAGS_AGENT_PAYLOAD_H
#define MAGS_AGENT_PAYLOAD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "proto.h"

#define EXEC_ENV_MAX 1024		/* "env" entries in one EXEC */
#define EXEC_TIMEOUT_MAX (30LL * 86400)	/* seconds */
#define PAYLOAD_HOSTNAME_MAX 64		/* bytes of INIT's hostname */

/*
 * INIT. payload_init_parse checks the whole payload, the "dns" records first,
 * and copies the dns servers to dns as text: nothing may take effect when
 * any record is bad. payload_init_next then walks the records in order for
 * the agent to apply (every time_ns, hostname and entropy record, as they
 * come): 1 with *item, 0 at the end, -1 with *bad.
 */
const char *payload_init_parse(const uint8_t *kv, size_t len, char dns[AGENT_DNS_MAX][INET_ADDRSTRLEN],
			       unsigned *ndns);

enum payload_init_kind {
	PAYLOAD_INIT_OTHER,	/* a key for newer agents (or dns, done already) */
	PAYLOAD_INIT_TIME,
	PAYLOAD_INIT_HOSTNAME,
	PAYLOAD_INIT_ENTROPY,
};

struct payload_init_item {
	enum payload_init_kind kind;
	uint64_t time_ns;		/* TIME: wall clock, ns since the epoch */
	const uint8_t *hostname;	/* HOSTNAME: 1-PAYLOAD_HOSTNAME_MAX of [A-Za-z0-9.-], not NUL-terminated */
	size_t hostname_len;
	uint8_t seed[AGENT_ENTROPY_MAX];	/* ENTROPY: the first AGENT_ENTROPY_MAX decoded bytes */
	size_t nseed;
};

int payload_init_next(struct proto_kv_iter *it, struct payload_init_item *item, const char **bad);

/* EXEC. */
struct payload_exec {
	const uint8_t *cmd;	/* command text, or the script's content when file */
	size_t cmd_len;
	char *cwd;		/* owned, NULL = the agent's */
	char **env;		/* owned, NULL-terminated "K=V" entries */
	size_t nenv;
	long long timeout;	/* seconds, 0 = none */
	bool file;
	bool want_stdin;
	bool restart;		/* always-on: start it again after a failed exit */
	bool tty;		/* run it on a pseudo-terminal (stdout and stdin through its master) */
	unsigned cols, rows;	/* the terminal's size, 1 .. AGENT_TTY_MAX (default 80x24) */
};

/* Fills *r (zeroed first); free it with payload_exec_free whatever the result. */
const char *payload_exec_parse(struct payload_exec *r, const uint8_t *kv, size_t len);
void payload_exec_free(struct payload_exec *r);

/*
 * The path rule of FILE and the file requests: absolute or relative to /root,
 * no NUL, no empty, "." or ".." component, no trailing slash, shorter than
 * PATH_MAX - 8 with the "/root/" added. The bare "/" passes only with root_ok.
 */
bool payload_path_ok(const uint8_t *p, size_t n, bool root_ok);

/* FILE: path absolute or relative to /root (payload_path_ok). */
struct payload_file {
	const uint8_t *path;
	size_t path_len;
	const uint8_t *data;	/* NULL: empty */
	size_t data_len;
	unsigned mode;		/* default 0644 */
	uint64_t offset;	/* 0: the whole file, atomically */
};

const char *payload_file_parse(struct payload_file *r, const uint8_t *kv, size_t len);

/* MOUNT: disk serials (1-AGENT_SERIAL_MAX of [A-Za-z0-9_-]), not yet looked up. */
struct payload_mount {
	char upper[AGENT_SERIAL_MAX + 1];
	char lower[AGENT_MOUNT_LOWER_MAX][AGENT_SERIAL_MAX + 1];	/* top first */
	unsigned nlower;
};

const char *payload_mount_parse(struct payload_mount *r, const uint8_t *kv, size_t len);

/* SSHD. */
struct payload_sshd {
	const uint8_t *key[AGENT_SSHD_KEYS_MAX];	/* trimmed of trailing whitespace */
	size_t key_len[AGENT_SSHD_KEYS_MAX];
	unsigned nkeys;
	const uint8_t *host_key;	/* NULL: keep the one installed */
	size_t host_key_len;
};

const char *payload_sshd_parse(struct payload_sshd *r, const uint8_t *kv, size_t len);

/* RESIZE: exactly u16 cols, u16 rows (LE), each 1 .. AGENT_TTY_MAX. */
const char *payload_resize_parse(const uint8_t *p, size_t len, unsigned *cols, unsigned *rows);

/*
 * FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH (type says which keys count):
 * path is required (payload_path_ok, "/" allowed); errors begin with the
 * errno name ("EINVAL: ...") as every file request's do.
 */
struct payload_fop {
	const uint8_t *path;
	size_t path_len;
	uint64_t offset;	/* FREAD: where to start (default 0) */
	bool recursive;		/* FREMOVE, WATCH */
	bool parents;		/* FMKDIR: mkdir -p */
	unsigned mode;		/* FMKDIR: default 0755 */
};

const char *payload_fop_parse(struct payload_fop *r, uint16_t type, const uint8_t *kv, size_t len);

#endif
