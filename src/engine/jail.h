/* SPDX-License-Identifier: MIT */
/*
 * The QEMU jail: what stands between a guest that took over its QEMU and the
 * host. Each QEMU starts (clone) in new pid, mount, IPC and UTS namespaces
 * (and the sandbox's network namespace), in a cgroup of its own (memory,
 * pids, CPU), under rlimits, as an unprivileged uid of its own with
 * no_new_privs, and runs with QEMU's seccomp filter (-sandbox on). Its
 * mount namespace has a fresh root with only: /usr, /lib*, /etc and the
 * guest dir read-only, a few device nodes, /proc of its pid namespace, its
 * own run dir and, for a snapshot VM, its RAM file. Disks and the tap device
 * are not paths it can open: magsd opens them and hands over the file
 * descriptors (-add-fd, QMP add-fd, tap fd=). See docs/security.md.
 *
 * Threads: jail_init once; slots are claimed and released from any thread;
 * jail_child runs in the child between clone and exec (no locks, no malloc).
 */
#ifndef MAGS_JAIL_H
#define MAGS_JAIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

#define JAIL_SLOTS 1024			/* VM uids: uid_base + slot */
#define JAIL_MEM_OVERHEAD_MIB 512	/* QEMU's own memory over the guest's (TCG's code cache) */
#define JAIL_PIDS_MAX 256		/* threads of one QEMU (its I/O pool is up to 64) */
#define JAIL_NOFILE 1024
#define JAIL_BINDS_MAX 16
#define JAIL_FD_BASE 100		/* -add-fd numbers in the child */

enum jail_cg {
	JAIL_CG_NONE,	/* no usable cgroup hierarchy: limits are rlimits only */
	JAIL_CG_V2,
	JAIL_CG_V1,	/* legacy hierarchies memory, pids, cpu */
};

struct jail {
	bool on;
	uid_t uid_base;		/* VM slot i runs as uid_base + i, gid gid */
	gid_t gid;
	gid_t kvm_gid;		/* group of /dev/kvm, (gid_t)-1 = none */
	enum jail_cg cg;
	char cg_root[3][96];	/* v2: [0] = .../mags; v1: memory, pids, cpu .../mags */
	char root_dir[256];	/* empty dir the child mounts its new root on */
	char why[160];		/* for the log: why on/off, which cgroups */
};

/*
 * on: "auto" (on when root), "on" or "off". state_dir: where the new-root
 * mount point lives. Returns 0 or <0 with err set ("on" without root).
 */
int jail_init(struct jail *j, const char *on, uid_t uid_base, const char *state_dir, struct err *err);

/* A free slot (uid), or -1 when all JAIL_SLOTS are taken. */
int jail_slot_claim(void);
void jail_slot_release(int slot);

/* The cgroup of one VM: created with the limits (guest RAM + overhead, pids, vcpus of CPU), removed. */
int jail_cgroup_create(const struct jail *j, int slot, unsigned mem_mib, unsigned vcpus, struct err *err);
void jail_cgroup_remove(const struct jail *j, int slot);

/* What the child needs, prepared by the parent (no allocation after clone). */
struct jail_child {
	const struct jail *jail;
	int slot;
	const char *rundir;		/* bound read-write */
	const char *binds_ro[JAIL_BINDS_MAX];	/* dirs or files, NULL-terminated */
	const char *binds_rw[JAIL_BINDS_MAX];
	int pass_fds[8];		/* dup2'd to JAIL_FD_BASE + i; -1 ends */
	bool tap;			/* open tap0 (in the net ns) as fd JAIL_FD_BASE + 8 */
};
#define JAIL_TAP_FD (JAIL_FD_BASE + 8)

/*
 * In the child after clone(CLONE_NEWPID | CLONE_NEWNS | ...) and setns into
 * the network namespace: joins the cgroup, builds and enters the new root,
 * opens the tap, sets rlimits, drops to the slot's uid. Returns 0, or an
 * errno-ish code; the caller _exits.
 */
int jail_child(const struct jail_child *c);

/*
 * Sets the calling thread's uid and gid (real, effective, saved) and its
 * supplementary groups to group alone, or to none when group is (gid_t)-1.
 * For the child of a clone() of a threaded process: raw system calls, no
 * glibc lock (glibc's setresuid waits on every thread it believes exists).
 * Returns 0 or an errno.
 */
int jail_set_ids(uid_t uid, gid_t gid, gid_t group);

#endif
