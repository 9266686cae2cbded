/* SPDX-License-Identifier: MIT */
/*
 * One sandbox as a job sees it: a VM from the engine plus the conversation
 * with its agent (docs/agent-protocol.md). Used by a single worker thread.
 */
#ifndef MAGS_SANDBOX_H
#define MAGS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "buf.h"
#include "err.h"
#include "proto.h"

struct sandbox {
	struct vm *vm;
	struct proto_dec dec;
	int64_t boot_ms;	/* host-measured start -> HELLO (cold) or -> resumed (restored) */
	unsigned snap_gen;	/* template generation it was restored from; 0 = cold boot */
	bool ws_mounted;	/* MOUNT done: the root is the overlay on the workspace slot */
};

/*
 * Starts a VM in rundir and waits (up to timeout_ms) for the agent's HELLO.
 * Returns 0, -EINTR when wake_fd became readable (a stop), or another
 * negative code with err set (the console's tail included when it helps).
 */
int sandbox_boot(const struct engine *eng, const char *rundir, const struct vm_mem *mem, const struct vm_disks *disks,
		 int timeout_ms, int wake_fd,
		 struct sandbox **out, struct err *err);
/* Wraps a VM whose agent channel is connected (a restore). Takes vm. */
struct sandbox *sandbox_wrap(struct vm *vm);
/*
 * Gives the agent what differs between sandboxes (wall clock, fresh entropy,
 * hostname, name servers) and waits up to timeout_ms for its OK. Returns 0, -EINTR (wake_fd),
 * or a negative code with err set (no answer, an ERROR, a dead VM).
 */
int sandbox_init(struct sandbox *sb, const char *hostname, const struct net_config *net, int timeout_ms, int wake_fd,
		 struct err *err);
/*
 * Runs cmd on channel chan and discards its output; waits up to timeout_ms for
 * it to exit. Returns its exit code (>= 0) or a negative code with err set.
 */
/*
 * MOUNT: the workspace slot ("mags-ws") becomes the root's upper layer over
 * nlayers base slots ("mags-l0" ...). Waits up to timeout_ms for the OK.
 * Returns 0, -EINTR (wake_fd) or <0 with err set.
 */
int sandbox_mount(struct sandbox *sb, int nlayers, int timeout_ms, int wake_fd, struct err *err);
int sandbox_run_quiet(struct sandbox *sb, uint32_t chan, const char *cmd, int timeout_ms, struct err *err);
int sandbox_send(struct sandbox *sb, uint16_t type, uint32_t chan, const void *payload, size_t len, struct err *err);
/*
 * Waits up to timeout_ms (-1 = forever) for a frame. Returns 1 with *f (valid
 * until the next call), 0 on timeout, -EINTR when wake_fd is readable, or a
 * negative code with err set when the channel broke (the VM died).
 */
int sandbox_recv(struct sandbox *sb, struct agent_frame *f, int timeout_ms, int wake_fd, struct err *err);
/* Sleep and wake of the sandbox's VM (vm_sleep, vm_wake); wake starts a fresh channel. */
int sandbox_sleep(struct sandbox *sb, const char *state_path, long long *bytes, struct err *err);
int sandbox_wake(const struct engine *eng, struct sandbox *sb, const char *state_path, struct err *err);
/* Asks the agent to power off, waits briefly, then kills what is left and frees. */
void sandbox_free(struct sandbox *sb);

#endif
