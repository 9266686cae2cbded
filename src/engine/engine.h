/* SPDX-License-Identifier: MIT */
/*
 * The VM engine: boots microVMs and hands back the agent channel. Today it
 * drives QEMU -M microvm (qemu.c); the rest of magsd only sees this interface,
 * so another monitor can replace QEMU without touching jobs or the API.
 *
 * Threads: engine_init once at start-up; the vm_* calls for one VM come from
 * one thread (the job's worker). Each VM lives in its own run directory which
 * vm_free removes, whatever way the VM ended.
 */
#ifndef MAGS_ENGINE_H
#define MAGS_ENGINE_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "jail.h"
#include "net.h"
#include "qmp.h"

enum engine_accel {
	ENGINE_TCG,
	ENGINE_KVM,
};

struct engine {
	char *qemu;		/* path of qemu-system-x86_64 */
	char *kernel;		/* guest kernel (vmlinux with PVH note, or bzImage) */
	char *image;		/* read-only root filesystem image; NULL until engine_with_image */
	enum engine_accel accel;
	char accel_why[160];	/* why this accelerator was chosen, for the log */
	unsigned mem_mib;	/* guest RAM, default 512 */
	unsigned vcpus;		/* default 1 */
	char *empty_disk;	/* backs unused layer slots; engine_disks_init, NULL before */
	struct net_config net;	/* net_init; zero = no network device */
	const struct jail *jail;	/* NULL or off: QEMU runs as magsd's user, in magsd's namespaces */
};

/*
 * Disks. Every VM has the same block devices in the same order (so a template
 * snapshot fits every VM): the read-only image, one read-write workspace slot
 * and ENGINE_LAYER_SLOTS read-only layer slots, each a virtio-blk device the
 * guest finds by its serial ("mags-ws", "mags-l0" ... "mags-l3"). Every file
 * behind a slot has the apparent size ENGINE_DISK_BYTES (sparse on the host).
 */
#define ENGINE_LAYER_SLOTS 4
#define ENGINE_TCG_TB_MIB_STR "128"	/* MiB of TCG translation cache per QEMU (its default is 1 GiB) */
#define ENGINE_DISK_BYTES (16ULL << 30)	/* apparent size of every workspace and layer disk */

struct vm_disks {
	/* read-write upper disk; NULL: the engine creates RUNDIR/scratch.img, sparse, ENGINE_DISK_BYTES, unformatted */
	const char *workspace;
	/* read-only lower disks, top first; NULL: eng->empty_disk */
	const char *layers[ENGINE_LAYER_SLOTS];
};

/*
 * Guest RAM backed by a file, for snapshots (NULL to vm_start = plain RAM, a
 * cold boot). A template VM maps mem_path shared, so the file holds its RAM
 * and a snapshot is the file plus a small device-state stream. A restore VM
 * (incoming) maps the same file private: it starts from the template's pages
 * and copies only those it writes. The file must never change once restored
 * VMs map it; a new template is a new file.
 */
struct vm_mem {
	const char *mem_path;
	bool incoming;		/* restore target: -incoming defer, share=off */
};

struct vm {
	pid_t pid;		/* QEMU, or 0 once reaped */
	int status;		/* wait status once reaped */
	char *rundir;		/* owned; removed by vm_free */
	char *agent_path;	/* unix socket QEMU serves the agent port on */
	char *console_path;	/* guest serial console log */
	int agent_fd;		/* connected agent channel, -1 until vm_connect_agent */
	struct qmp qmp;		/* connected for vm_mem VMs (fd -1 otherwise) */
	char *empty_disk;	/* owned copy of eng->empty_disk; NULL: RUNDIR/empty-layer.img */
	unsigned disk_gen;	/* bumped per vm_set_disks: names the new file nodes */
	struct net_ns ns;	/* tap mode: the VM's network namespace (idx -1 otherwise) */
	unsigned slot_gen[1 + ENGINE_LAYER_SLOTS];	/* generation of each slot's current file node */
	char *slot_path[1 + ENGINE_LAYER_SLOTS];	/* owned: the file behind each slot now */
	bool mem_backend;	/* guest RAM is the backend "mem" (restored or template VMs), not -m's default */
	char *mem_path;		/* owned: its RAM file (a template's or a restore's), NULL = none */
	bool mem_template;	/* it writes mem_path (a template VM) */
	const struct jail *jail;	/* the engine's, when on */
	int jail_slot;		/* its uid slot and cgroup, -1 = not jailed */
	unsigned jail_mem_mib, jail_vcpus;	/* for the cgroup, again at a wake */
	int fdset_next;		/* jailed: the next fd set id for a disk added over QMP */
};

/*
 * Finds QEMU and the kernel under guest_dir and picks the accelerator:
 * accel is "auto", "kvm" or "tcg". The result has no image: it is the base
 * that engine_with_image copies for each root image. Returns 0 or -errno
 * with err set.
 */
int engine_init(struct engine *eng, const char *guest_dir, const char *accel, struct err *err);
/* dst = a copy of base (free it with engine_free) that boots the root image at path image. */
void engine_with_image(struct engine *dst, const struct engine *base, const char *image);
void engine_free(struct engine *eng);
const char *engine_accel_name(const struct engine *eng);

/*
 * Creates dir/empty-layer.img (sparse, ENGINE_DISK_BYTES, mode 0444) if it is
 * missing and points eng->empty_disk at it (owned by eng). Without it a VM
 * gets an empty file of its own in its run dir for each unused layer slot.
 * Returns 0 or -errno with err set.
 */
int engine_disks_init(struct engine *eng, const char *dir, struct err *err);

/*
 * Identifies everything a snapshot depends on: QEMU, kernel and image (path,
 * inode, size, mtime), memory, vCPUs, accelerator, CPU model, kernel command
 * line and the device layout. Writes a hex SHA-256 of that to key.
 */
void engine_snapshot_key(const struct engine *eng, char key[65]);

/*
 * Creates rundir (must not exist), starts QEMU in it and returns the VM in
 * *out (caller frees with vm_free). mem NULL: the guest boots in the
 * background. With mem, QMP is connected before this returns; an incoming
 * VM then waits for vm_restore. disks NULL: every slot gets its default
 * (struct vm_disks). A given disk file must be ENGINE_DISK_BYTES long.
 */
int vm_start(const struct engine *eng, const char *rundir, const struct vm_mem *mem, const struct vm_disks *disks,
	     struct vm **out, struct err *err);
/*
 * Swaps the files behind the disk slots of a started VM with QMP (a VM with
 * mem, before or after restore, before the guest mounted them): all slots at
 * once, NULL entries back to their defaults. Returns 0, or -ENOTSUP when this
 * QEMU cannot (or the VM has no QMP), or another negative code with err set;
 * on failure the slots keep their old files.
 */
int vm_set_disks(struct vm *vm, const struct vm_disks *disks, struct err *err);
/*
 * User networking: forwards a free port on the host's 127.0.0.1 to the
 * guest's guest_port (QMP hostfwd_add) and returns it in *host_port.
 * Returns 0, -ENOTSUP without QMP, or <0 with err set.
 */
int vm_forward_port(struct vm *vm, int guest_port, int *host_port, struct err *err);
/*
 * Template VM: pauses the guest and writes its device state to state_path
 * (RAM stays in the shared mem file). The VM stays paused; free it after.
 */
int vm_snapshot(struct vm *vm, const char *state_path, struct err *err);
/*
 * Incoming VM, in two steps so the first can run before a job needs the VM:
 * prepare opens state_path and hands it to QEMU; restore loads it and
 * resumes the guest.
 */
int vm_restore_prepare(struct vm *vm, const char *state_path, struct err *err);
int vm_restore(struct vm *vm, struct err *err);
/*
 * Sleep: pauses the guest, writes its whole state (RAM and devices) to
 * state_path (*bytes: its size) and ends QEMU; the run dir, the disks and the
 * network namespace stay. On failure the guest runs on. The agent channel is
 * closed; the VM's pid is 0 until vm_wake.
 */
int vm_sleep(struct vm *vm, const char *state_path, long long *bytes, struct err *err);
/*
 * Wake: a new QEMU with the same devices and disks, in the same run dir and
 * namespace, loads state_path and resumes; the agent channel is connected
 * again. On failure no QEMU is left.
 */
int vm_wake(const struct engine *eng, struct vm *vm, const char *state_path, struct err *err);
/*
 * Moves the VM's run dir (a pooled VM becomes a job's). QEMU keeps working:
 * its sockets are connected and its files open. STATE/run/<dir>/qemu.pid
 * still finds it (it records the dir QEMU was started in).
 */
int vm_rename(struct vm *vm, const char *rundir, struct err *err);
/* Connects vm->agent_fd, waiting up to timeout_ms for QEMU to listen. */
int vm_connect_agent(struct vm *vm, int timeout_ms, struct err *err);
/* Reaps QEMU if it has exited; waits up to timeout_ms (0 = just check). True when gone. */
bool vm_wait_exit(struct vm *vm, int timeout_ms);
/* SIGKILLs QEMU (if still running) and reaps it. */
void vm_kill(struct vm *vm);
/* Last max bytes of a file in the run dir ("console.log": the guest's serial
 * console; "qemu.log": QEMU's own messages), for error messages. Caller frees. */
char *vm_log_tail(const struct vm *vm, const char *name, size_t max);
/* Kills and reaps QEMU if needed, closes the channel, removes the run dir, frees. */
void vm_free(struct vm *vm);

/*
 * Start-up recovery: kills any QEMU left running from run directories under
 * run_root (after a crash of magsd) and removes those directories. Returns how
 * many VMs it killed.
 */
int engine_reap_stale(const char *run_root);

#endif
