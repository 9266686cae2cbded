/* SPDX-License-Identifier: MIT */
/*
 * The wire format between magsd and mags-agent (guest PID 1), carried over the
 * virtio-serial port named "mags.agent". Specified in docs/agent-protocol.md;
 * change both together and bump MAGS_PROTO_VERSION on incompatible changes.
 *
 * Every message is one frame: a 12-byte little-endian header then `len` bytes
 * of payload. `chan` multiplexes sessions (a job or exec session is one
 * channel, chosen by magsd, nonzero); channel 0 is control.
 */
#ifndef MAGS_PROTO_H
#define MAGS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MAGS_PROTO_VERSION 1
#define MAGS_AGENT_PORT_NAME "mags.agent"
#define AGENT_FRAME_HDR 12
#define AGENT_FRAME_MAX (1024 * 1024)	/* payload bound, both directions */
#define AGENT_OUTPUT_CHUNK 16384	/* agent sends output in pieces at most this big */

enum agent_msg {
	/* agent -> host */
	MSG_HELLO = 1,		/* chan 0; payload KV: version, agent, boot_ms; agent is ready */
	MSG_STDOUT = 2,		/* chan N; raw bytes */
	MSG_STDERR = 3,		/* chan N; raw bytes */
	MSG_EXIT = 4,		/* chan N; payload struct agent_exit (12 bytes, 16 with AGENT_EXIT_RESTART) */
	MSG_ERROR = 5,		/* chan N or 0; UTF-8 text; the request on chan failed */
	MSG_OK = 6,		/* chan N or 0; acknowledges INIT, FILE, POWEROFF, MOUNT, FREEZE, THAW, SSHD, the file requests */
	MSG_PONG = 7,		/* chan 0; echoes PING's payload */
	MSG_DATA = 8,		/* chan N; raw bytes of a file FREAD reads (<= AGENT_DATA_CHUNK) */
	MSG_INFO = 9,		/* chan N; KV: name, path, type, size, mode, mtime_ns, target: one FSTAT/FLIST entry */
	MSG_EVENT = 10,		/* chan N; KV: kind, path, dir: one WATCH event */
	/* host -> agent */
	MSG_INIT = 32,		/* chan 0; KV: time_ns, hostname, entropy (hex), dns (repeatable IPv4) */
	MSG_EXEC = 33,		/* chan N; KV: cmd (required), cwd, env (repeatable "K=V"), timeout (s), restart (1), tty (1), cols, rows */
	MSG_STDIN = 34,		/* chan N; raw bytes; empty payload = EOF */
	MSG_SIGNAL = 35,	/* chan N; payload int32 signal number, sent to the process group */
	MSG_POWEROFF = 36,	/* chan 0; sync disks and power off */
	MSG_PING = 37,		/* chan 0; any payload, answered by PONG */
	MSG_FILE = 38,		/* chan N; KV: path, mode, offset, data (raw, last); writes (part of) a file */
	MSG_MOUNT = 39,		/* chan 0; KV: upper (disk serial), lower (repeatable, top first); workspace root */
	MSG_FREEZE = 40,	/* chan 0; sync + FIFREEZE the workspace fs (the host copies its disk) */
	MSG_THAW = 41,		/* chan 0; FITHAW the workspace fs; OK when it was not frozen */
	MSG_SSHD = 42,		/* chan 0 (or N); KV: key (repeatable), host_key; OK once sshd listens */
	MSG_RESIZE = 43,	/* chan N; u16 cols, u16 rows: a tty EXEC's window size */
	MSG_PAUSE = 44,		/* chan N; empty: stop reading the channel's output (flow control) */
	MSG_RESUME = 45,	/* chan N; empty: read it again */
	MSG_FREAD = 46,		/* chan N; KV: path, offset: DATA frames, then OK */
	MSG_FSTAT = 47,		/* chan N; KV: path: one INFO (lstat), then OK */
	MSG_FLIST = 48,		/* chan N; KV: path: one INFO per entry, then OK */
	MSG_FREMOVE = 49,	/* chan N; KV: path, recursive (1): OK */
	MSG_FMKDIR = 50,	/* chan N; KV: path, parents (1), mode: OK */
	MSG_WATCH = 51,		/* chan N; KV: path, recursive (1): OK once watching, then EVENT frames */
	MSG_CANCEL = 52,	/* chan N; empty: end an FREAD, FLIST or WATCH early; no answer */
};
#define AGENT_DATA_CHUNK (256 * 1024)	/* largest DATA payload */
#define AGENT_TTY_MAX 4096		/* cols and rows of a tty EXEC: 1 ... this */
#define AGENT_WATCH_MAX 8192		/* directories one recursive WATCH follows */
#define AGENT_LIST_MAX 100000		/* entries FLIST sends before it stops with ERROR */
#define AGENT_MOUNT_LOWER_MAX 4	/* lower disks per MOUNT */
#define AGENT_FILE_CHUNK (512 * 1024)	/* data per FILE frame a host sends for big files */
#define AGENT_DNS_MAX 3			/* dns servers per INIT (resolv.conf's MAXNS) */
#define AGENT_SSHD_KEYS_MAX 64		/* key entries per SSHD */
#define AGENT_SSHD_KEY_MAX 8192		/* bytes of one authorized key line */
#define AGENT_SSHD_HOST_KEY_MAX 16384	/* bytes of the host key (OpenSSH PEM) */
#define AGENT_SSHD_READY_MS 30000	/* SSHD fails when sshd does not listen by then */

/*
 * Every guest's network identity (docs/agent-protocol.md, "Network"): one
 * virtio-net device, eth0, on a /24 with the host's tap as the gateway. All
 * sandboxes share it (each has its own tap), so a snapshot fits any of them.
 */
#define AGENT_NET_GUEST "172.16.0.2"
#define AGENT_NET_GATEWAY "172.16.0.1"
#define AGENT_NET_PREFIX 24
#define AGENT_NET_GUEST_MAC "02:6d:61:67:73:02"	/* QEMU's virtio-net-device mac= */
#define AGENT_NET_GATEWAY_MAC "02:6d:61:67:73:01"	/* the host's tap */
#define AGENT_NET_IFNAME "eth0"

/* Payload of MSG_EXIT, little-endian. */
struct agent_exit {
	int32_t code;		/* exit status; 128+signal when killed; 124 after timeout */
	int32_t signal;		/* terminating signal or 0 */
	uint32_t flags;		/* AGENT_EXIT_* */
	uint32_t restart_ms;	/* AGENT_EXIT_RESTART: the agent starts it again after this long */
};
#define AGENT_EXIT_TIMEOUT 0x1	/* the agent killed it because `timeout` passed */
/* EXEC restart=1: it failed and will run again on the same channel (no channel end) */
#define AGENT_EXIT_RESTART 0x2
#define AGENT_EXIT_LEN 16	/* bytes of the longest exit payload */

struct agent_frame {
	uint16_t type;
	uint16_t flags;		/* 0; receivers ignore unknown bits */
	uint32_t chan;
	uint32_t len;
	const uint8_t *payload;	/* points into the decoder's buffer */
};

/* Errors from the decoder. */
enum {
	PROTO_ETOOBIG = -1,	/* len > AGENT_FRAME_MAX */
	PROTO_EBADKV = -2,	/* malformed key/value payload */
};

#endif
