/* SPDX-License-Identifier: MIT */
/*
 * mags-agent internals, shared by its files:
 *   main.c  start-up, the event loop, the port (frames in and out), dispatch
 *   boot.c  PID 1 duties: mounts, the writable overlay root, the workspace root
 *           (MOUNT, FREEZE, THAW), hostname, lo, power off
 *   exec.c  exec channels: spawn, pipes, output, timeouts, exit reports
 *   ops.c   one-shot requests: INIT, FILE
 *   files.c the files API: FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH, CANCEL,
 *           and the path rule and in-root resolution FILE uses too
 *   sshd.c  SSHD: authorized keys, host key, a supervised sshd
 *   payload.c  the requests' key/value payloads, parsed before anything acts (payload.h)
 * The wire format is include/mags/proto.h, described in docs/agent-protocol.md.
 */
#ifndef MAGS_AGENT_H
#define MAGS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "proto.h"

#define AGENT_NAME "mags-agent 0.1"
#define AGENT_CHAN_MAX 256			/* exec and streaming file channels alive at once */
#define AGENT_WATCH_CHANS 16			/* WATCH channels (inotify instances) at once */
#define AGENT_OUT_HIGH (1024 * 1024)		/* stop reading child output above this backlog */
#define AGENT_OUT_LOW (256 * 1024)		/* ... and resume below this */
#define AGENT_OUT_MAX (16 * 1024 * 1024)	/* stop reading requests above this backlog */
#define AGENT_STDIN_MAX (4 * 1024 * 1024)	/* stdin bytes queued for one child */
#define AGENT_EXIT_GRACE_MS 200			/* wait for pipe EOF after the process exited */
#define AGENT_ENTROPY_MAX 512			/* bytes of INIT entropy used */
#define AGENT_RECONNECT_POLL_MS 10		/* re-check a disconnected port this often */
#define AGENT_SERIAL_MAX 20			/* virtio-blk serial (VIRTIO_BLK_ID_BYTES) */
#define AGENT_RUN_DIR "/run/mags"		/* the agent's files in the /run tmpfs */
#define AGENT_RESOLV_CONF AGENT_RUN_DIR "/resolv.conf"	/* INIT's dns; the image's /etc/resolv.conf links here */
#define AGENT_SSHD_WAITERS 8			/* SSHD requests waiting for sshd at once */

/* epoll_data.u64 tags: kind in the high 32 bits, channel id in the low 32. */
enum agent_ev {
	AGENT_EV_PORT = 1,
	AGENT_EV_SIGNAL,
	AGENT_EV_STDOUT,
	AGENT_EV_STDERR,
	AGENT_EV_STDIN,
	AGENT_EV_WATCH,		/* a WATCH channel's inotify fd */
};
#define AGENT_EV(kind, chan) ((uint64_t)(kind) << 32 | (uint32_t)(chan))

struct chan;
struct fchan;

struct agent {
	int epfd;
	int port_fd;
	int sig_fd;		/* signalfd for SIGCHLD */
	bool pid1;		/* we are the guest's init (mounts, power off, clock) */
	bool port_virtio;	/* EOF on the port means "host not connected yet", not "gone" */
	bool connected;		/* host side of the port is open */
	int64_t disconnected_ms;	/* when it was last seen closed */
	bool port_in_epoll;
	uint32_t port_events;	/* epoll events currently requested for the port */
	bool paused;		/* child output reading paused (out backlog high) */
	struct buf out;		/* frames not yet written to the port */
	size_t out_off;		/* bytes of out already written */
	struct proto_dec dec;
	uint64_t skip;		/* bytes of an oversized frame still to discard */
	struct chan *chans;	/* live exec channels */
	unsigned nchans;
	struct fchan *fchans;	/* streaming file channels: FREAD, FLIST, WATCH (files.c) */
	unsigned nfchans;
	int ws_fd;		/* root of the mounted workspace fs (MOUNT), -1 without one */
	bool ws_mounted;	/* MOUNT switched the root (allowed once per boot or restore) */
	bool ws_frozen;		/* FREEZE without THAW yet: writes to the workspace would block */
	pid_t sshd_pid;		/* the sshd we started, 0 when none is alive */
	uint32_t sshd_wait[AGENT_SSHD_WAITERS];	/* chans of SSHD requests waiting for it to listen */
	unsigned nsshd_wait;
	int64_t sshd_deadline;	/* when the waiting requests fail */
	int64_t sshd_check;	/* when to look for sshd's listening socket next */
};

/* main.c */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t agent_now_ms(void);
/* Reads the first line of a small file (sysfs) into buf, without its newline. 0 or -1. */
int agent_read_line(const char *path, char *buf, size_t len);
void agent_send(struct agent *a, uint16_t type, uint32_t chan, const void *payload, size_t len);
void agent_send_error(struct agent *a, uint32_t chan, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes out as much buffered output as the port takes, blocking up to timeout_ms. */
void agent_flush(struct agent *a, int timeout_ms);
void agent_epoll_add(struct agent *a, int fd, uint32_t events, uint64_t tag);
void agent_epoll_mod(struct agent *a, int fd, uint32_t events, uint64_t tag);
/* Bytes of frames queued for the port. */
size_t agent_out_pending(const struct agent *a);
/* True while chan is an exec channel or a streaming file channel. */
bool agent_chan_busy(struct agent *a, uint32_t chan);

/* boot.c */
void boot_pid1(void);
void boot_env(void);
/*
 * Kills every other process, syncs, remounts the workspace read-only and powers
 * off; returns only when not PID 1.
 */
void boot_poweroff(struct agent *a);
/* MOUNT: workspace disk as the overlay root's upper layer. Answers OK or ERROR on chan. */
void boot_ws_mount(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len);
/* FREEZE (freeze true) and THAW of the workspace fs. Answers OK or ERROR on chan. */
void boot_ws_freeze(struct agent *a, uint32_t chan, bool freeze);
/* ms since kernel boot (from /proc/uptime), or 0. */
long long boot_uptime_ms(void);

/* exec.c */
void exec_start(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len);
void exec_stdin(struct agent *a, uint32_t chan, const uint8_t *p, size_t len);
void exec_signal(struct agent *a, uint32_t chan, const uint8_t *p, size_t len);
void exec_event(struct agent *a, enum agent_ev kind, uint32_t chan, uint32_t events);
/*
 * vfork + execve of argv in a new session, with in/out/err as 0-2 and cwd
 * (NULL: the agent's). Returns the pid or -errno.
 */
pid_t exec_spawn(const char *cwd, char *const argv[], char *const envp[], int in, int out, int err);
/* Reaps every exited child (PID 1 adopts orphans too). */
void exec_reap(struct agent *a);
/* Fires timeouts and exit graces; returns ms until the next deadline or -1. */
int exec_timers(struct agent *a);
/* Pauses or resumes reading child output (back-pressure from the port). */
void exec_pause(struct agent *a, bool pause);
bool exec_busy(struct agent *a, uint32_t chan);
/* PAUSE (hold) / RESUME of one exec channel's output; false when chan is no exec channel. */
bool exec_hold(struct agent *a, uint32_t chan, bool hold);
/* RESIZE: the window size of a tty channel; ERROR when malformed. */
void exec_resize(struct agent *a, uint32_t chan, const uint8_t *p, size_t len);

/* ops.c */
void ops_init(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len);
void ops_file(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len);
/* Writes all of p to path through a temporary file and rename(2). Returns 0 or -errno. */
int ops_write_file(const char *path, const void *p, size_t len, mode_t mode);

/* files.c */
/* FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH on chan (type says which). */
void files_request(struct agent *a, uint16_t type, uint32_t chan, const uint8_t *kv, size_t len);
/* CANCEL: ends a streaming file channel without an answer. */
void files_cancel(struct agent *a, uint32_t chan);
/* PAUSE/RESUME of a streaming file channel; false when chan is none. */
bool files_hold(struct agent *a, uint32_t chan, bool hold);
bool files_busy(struct agent *a, uint32_t chan);
/* A WATCH channel's inotify fd is readable. */
void files_event(struct agent *a, uint32_t chan, uint32_t events);
/* Streams FREAD and FLIST data, sends coalesced WATCH events; ms until it wants to run again, or -1. */
int files_timers(struct agent *a);
/* The port's backlog went above AGENT_OUT_HIGH (pause) or below AGENT_OUT_LOW. */
void files_pause(struct agent *a, bool pause);
/*
 * FILE's write, resolved in the guest's root like the file requests: data at
 * offset off (0: the whole file, atomically through a temporary name, parents
 * created). Returns 0, -errno, or -ESPIPE when the file is shorter than off.
 */
int files_put(const char *path, const uint8_t *data, size_t len, mode_t mode, uint64_t off);
/* "/root/" + p for a relative path, else a copy (allocated). */
char *files_abspath(const uint8_t *p, size_t n);
/* The errno's name ("ENOENT"), for ERROR texts the host maps. */
const char *files_errname(int e);

/* sshd.c */
void sshd_request(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len);
/* A child exited: true when it was our sshd (then it is handled here). */
bool sshd_reaped(struct agent *a, pid_t pid, int status);
/* Checks whether sshd listens for waiting requests; returns ms until the next check or -1. */
int sshd_timers(struct agent *a);
/* Kills our sshd and reaps it: port 22 is free on return. */
void sshd_stop(struct agent *a);
/* MOUNT switched the root: a running sshd is restarted so logins see the new one. */
void sshd_root_changed(struct agent *a);

#endif
