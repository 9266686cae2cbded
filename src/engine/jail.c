// SPDX-License-Identifier: MIT
/* The QEMU jail; see jail.h. */
#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "fs.h"

/*
 * Slots are host-wide: every magsd on the host draws from the same uids and
 * cgroup names, so a slot is held with a lock on JAIL_LOCK_DIR/N (released by
 * the kernel when the holder dies).
 */
#define JAIL_LOCK_DIR "/run/mags/jail"

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static int slot_fd[JAIL_SLOTS];	/* the lock's fd + 1; 0 = not ours */

int jail_slot_claim(void)
{
	int s = -1;
	pthread_mutex_lock(&slot_mu);
	mkdir("/run/mags", 0755);
	mkdir(JAIL_LOCK_DIR, 0700);
	for (int i = 0; i < JAIL_SLOTS && s < 0; i++) {
		if (slot_fd[i])
			continue;
		char p[64];
		snprintf(p, sizeof p, JAIL_LOCK_DIR "/%d", i);
		int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			break;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd); /* another magsd's */
			continue;
		}
		slot_fd[i] = fd + 1;
		s = i;
	}
	pthread_mutex_unlock(&slot_mu);
	return s;
}

void jail_slot_release(int slot)
{
	if (slot < 0 || slot >= JAIL_SLOTS)
		return;
	pthread_mutex_lock(&slot_mu);
	if (slot_fd[slot])
		close(slot_fd[slot] - 1);
	slot_fd[slot] = 0;
	pthread_mutex_unlock(&slot_mu);
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

/* Makes dir (and a "mags" child in it, where VM groups go); 0 or -errno. */
static int cg_parent(const char *hier, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/mags", hier);
	if (mkdir(out, 0755) < 0 && errno != EEXIST)
		return -errno;
	return access(out, W_OK) == 0 ? 0 : -errno;
}

static void cg_detect(struct jail *j)
{
	j->cg = JAIL_CG_NONE;
	char ctl[256] = "";
	int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, ctl, sizeof ctl - 1);
		ctl[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (strstr(ctl, "memory") && strstr(ctl, "pids") && strstr(ctl, "cpu")) {
		/* v2: the controllers must be enabled for the children of the root and of mags */
		if (write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids +cpu") == 0 &&
		    cg_parent("/sys/fs/cgroup", j->cg_root[0], sizeof j->cg_root[0]) == 0) {
			char p[160];
			snprintf(p, sizeof p, "%s/cgroup.subtree_control", j->cg_root[0]);
			if (write_text(p, "+memory +pids +cpu") == 0) {
				j->cg = JAIL_CG_V2;
				return;
			}
		}
	}
	static const char *const v1[3] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu" };
	for (int i = 0; i < 3; i++)
		if (cg_parent(v1[i], j->cg_root[i], sizeof j->cg_root[i]) < 0)
			return;
	j->cg = JAIL_CG_V1;
}

/*
 * Removes the vm-N cgroups a killed magsd left (empty: its QEMUs died with
 * it) for every slot no running magsd holds. A slot in use is skipped: its
 * lock cannot be taken.
 */
static void cg_sweep(const struct jail *j)
{
	if (j->cg == JAIL_CG_NONE || !j->cg_root[0][0])
		return;
	DIR *d = opendir(j->cg_root[0]);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		int slot;
		char end;
		if (sscanf(de->d_name, "vm-%d%c", &slot, &end) != 1 || slot < 0 || slot >= JAIL_SLOTS)
			continue;
		char p[64];
		snprintf(p, sizeof p, JAIL_LOCK_DIR "/%d", slot);
		int fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd); /* a running magsd's */
			continue;
		}
		jail_cgroup_remove(j, slot);
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
}

int jail_init(struct jail *j, const char *on, uid_t uid_base, const char *state_dir, struct err *err)
{
	memset(j, 0, sizeof *j);
	j->kvm_gid = (gid_t)-1;
	bool root = geteuid() == 0;
	if (!on || !strcmp(on, "auto")) {
		j->on = root;
	} else if (!strcmp(on, "on")) {
		if (!root)
			return err_set(err, EPERM, "--jail on needs root (it starts QEMU as other uids, in namespaces)");
		j->on = true;
	} else if (strcmp(on, "off") != 0) {
		return err_set(err, 400, "--jail: expected auto, on or off, not \"%s\"", on);
	}
	if (!j->on) {
		snprintf(j->why, sizeof j->why, "off (%s)", root ? "--jail off" : "magsd is not root");
		return 0;
	}
	j->uid_base = uid_base;
	j->gid = (gid_t)uid_base;
	struct stat st;
	if (stat("/dev/kvm", &st) == 0)
		j->kvm_gid = st.st_gid;
	if (strlen(state_dir) + sizeof "/jail-root" > sizeof j->root_dir)
		return err_set(err, ENAMETOOLONG, "state dir %s: too long a path for the jail's root", state_dir);
	snprintf(j->root_dir, sizeof j->root_dir, "%s/jail-root", state_dir);
	if (mkdir(j->root_dir, 0755) < 0 && errno != EEXIST)
		return err_set(err, errno, "create %s", j->root_dir);
	cg_detect(j);
	cg_sweep(j);
	snprintf(j->why, sizeof j->why, "on: uids %u-%u, cgroups %s", (unsigned)uid_base,
		 (unsigned)uid_base + JAIL_SLOTS - 1,
		 j->cg == JAIL_CG_V2 ? "v2" : j->cg == JAIL_CG_V1 ? "v1 (memory, pids, cpu)" : "none (not writable)");
	return 0;
}

int jail_cgroup_create(const struct jail *j, int slot, unsigned mem_mib, unsigned vcpus, struct err *err)
{
	if (!j->on || j->cg == JAIL_CG_NONE)
		return 0;
	char dir[160], p[200], v[64];
	unsigned long long mem = ((unsigned long long)mem_mib + JAIL_MEM_OVERHEAD_MIB) << 20;
	int n = j->cg == JAIL_CG_V2 ? 1 : 3;
	for (int i = 0; i < n; i++) {
		snprintf(dir, sizeof dir, "%s/vm-%d", j->cg_root[i], slot);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return err_set(err, errno, "create cgroup %s", dir);
	}
	int r = 0;
	if (j->cg == JAIL_CG_V2) {
		snprintf(dir, sizeof dir, "%s/vm-%d", j->cg_root[0], slot);
		snprintf(p, sizeof p, "%s/memory.max", dir);
		snprintf(v, sizeof v, "%llu", mem);
		r = r ? r : write_text(p, v);
		snprintf(p, sizeof p, "%s/memory.swap.max", dir);
		write_text(p, "0"); /* absent without swap accounting */
		snprintf(p, sizeof p, "%s/pids.max", dir);
		snprintf(v, sizeof v, "%d", JAIL_PIDS_MAX);
		r = r ? r : write_text(p, v);
		snprintf(p, sizeof p, "%s/cpu.max", dir);
		snprintf(v, sizeof v, "%u 100000", 100000 * (vcpus ? vcpus : 1));
		r = r ? r : write_text(p, v);
	} else {
		snprintf(p, sizeof p, "%s/vm-%d/memory.limit_in_bytes", j->cg_root[0], slot);
		snprintf(v, sizeof v, "%llu", mem);
		r = r ? r : write_text(p, v);
		snprintf(p, sizeof p, "%s/vm-%d/pids.max", j->cg_root[1], slot);
		snprintf(v, sizeof v, "%d", JAIL_PIDS_MAX);
		r = r ? r : write_text(p, v);
		snprintf(p, sizeof p, "%s/vm-%d/cpu.cfs_period_us", j->cg_root[2], slot);
		r = r ? r : write_text(p, "100000");
		snprintf(p, sizeof p, "%s/vm-%d/cpu.cfs_quota_us", j->cg_root[2], slot);
		snprintf(v, sizeof v, "%u", 100000 * (vcpus ? vcpus : 1));
		r = r ? r : write_text(p, v);
	}
	if (r < 0) {
		jail_cgroup_remove(j, slot);
		return err_set(err, -r, "cgroup limits for VM slot %d", slot);
	}
	return 0;
}

void jail_cgroup_remove(const struct jail *j, int slot)
{
	if (!j->on || j->cg == JAIL_CG_NONE)
		return;
	int n = j->cg == JAIL_CG_V2 ? 1 : 3;
	for (int i = 0; i < n; i++) {
		char dir[160];
		snprintf(dir, sizeof dir, "%s/vm-%d", j->cg_root[i], slot);
		rmdir(dir); /* EBUSY while a process is still in it: the kernel keeps it until then */
	}
}

/* ---- in the child: no malloc, no locks ------------------------------------ */

/* mkdir -p of path under root (path absolute); the last component a dir or, with file, an empty file. */
static int mkpath(const char *root, const char *path, bool file)
{
	char p[PATH_MAX];
	int n = snprintf(p, sizeof p, "%s%s", root, path);
	if (n < 0 || (size_t)n >= sizeof p)
		return ENAMETOOLONG;
	size_t rl = strlen(root);
	for (char *s = p + rl + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return errno;
		*s = '/';
	}
	if (file) {
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return errno;
		close(fd);
	} else if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		return errno;
	}
	return 0;
}

/* Binds src at the same path under root; read-only unless rw. A missing src is skipped. */
static int bind_path(const char *root, const char *src, bool rw)
{
	struct stat st;
	if (lstat(src, &st) < 0)
		return 0;
	char dst[PATH_MAX];
	snprintf(dst, sizeof dst, "%s%s", root, src);
	if (S_ISLNK(st.st_mode)) { /* merged /usr: /bin -> usr/bin, kept as a link */
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			return errno;
		target[n] = '\0';
		int e = mkpath(root, src, false);
		if (e)
			return e;
		rmdir(dst);
		return symlink(target, dst) < 0 && errno != EEXIST ? errno : 0;
	}
	int e = mkpath(root, src, !S_ISDIR(st.st_mode));
	if (e)
		return e;
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno;
	unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID | (rw ? 0 : MS_RDONLY);
	if (!S_ISCHR(st.st_mode))
		fl |= MS_NODEV;
	if (mount(NULL, dst, NULL, fl, NULL) < 0)
		return errno;
	return 0;
}

static int cg_join(const struct jail *j, int slot)
{
	if (j->cg == JAIL_CG_NONE)
		return 0;
	int n = j->cg == JAIL_CG_V2 ? 1 : 3;
	for (int i = 0; i < n; i++) {
		char p[200];
		snprintf(p, sizeof p, "%s/vm-%d/cgroup.procs", j->cg_root[i], slot);
		int e = write_text(p, "0");
		if (e < 0)
			return -e;
	}
	return 0;
}

static int open_tap(void)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	strcpy(ifr.ifr_name, "tap0");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/*
 * Raw system calls, not glibc's wrappers: a child of clone() has a copy of
 * magsd's thread list, and the wrappers take glibc's stack-list lock (held
 * by whichever thread was starting or ending at the clone) and wait for
 * every "thread" in that list to follow. It hung now and then before QEMU
 * started (795 of 2000 clones beside 3 threads starting threads in a loop).
 */
int jail_set_ids(uid_t uid, gid_t gid, gid_t group)
{
	gid_t groups[1] = { group };
	if (syscall(SYS_setgroups, group != (gid_t)-1 ? 1 : 0, groups) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
	    syscall(SYS_setresuid, uid, uid, uid) < 0)
		return errno;
	return 0;
}

int jail_child(const struct jail_child *c)
{
	const struct jail *j = c->jail;
	int e = cg_join(j, c->slot);
	if (e)
		return e;
	int tap = -1;
	if (c->tap && (tap = open_tap()) < 0)
		return -tap;
	/* the new root: a tmpfs over root_dir, in this mount namespace only */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return errno;
	const char *root = j->root_dir;
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return errno;
	static const char *const sys_ro[] = { "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc" };
	for (size_t i = 0; i < sizeof sys_ro / sizeof *sys_ro; i++)
		if ((e = bind_path(root, sys_ro[i], false)))
			return e;
	static const char *const devs[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
					     "/dev/kvm" };
	for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
		if ((e = bind_path(root, devs[i], true)))
			return e;
	for (int i = 0; i < JAIL_BINDS_MAX && c->binds_ro[i]; i++)
		if ((e = bind_path(root, c->binds_ro[i], false)))
			return e;
	for (int i = 0; i < JAIL_BINDS_MAX && c->binds_rw[i]; i++)
		if ((e = bind_path(root, c->binds_rw[i], true)))
			return e;
	if ((e = bind_path(root, c->rundir, true)))
		return e;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/proc", root);
	if ((mkdir(p, 0555) < 0 && errno != EEXIST) || mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return errno;
	/* (a run dir under /tmp made it already) */
	snprintf(p, sizeof p, "%s/tmp", root);
	if (mkdir(p, 01777) < 0 && errno != EEXIST)
		return errno;
	snprintf(p, sizeof p, "%s/.old", root);
	if (mkdir(p, 0700) < 0 || syscall(SYS_pivot_root, root, p) < 0 || chdir("/") < 0 ||
	    umount2("/.old", MNT_DETACH) < 0 || rmdir("/.old") < 0)
		return errno;
	/* the tmpfs root itself read-only from here on */
	if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return errno;
	/* descriptors it gets instead of paths */
	for (int i = 0; i < 8 && c->pass_fds[i] >= 0; i++)
		if (dup2(c->pass_fds[i], JAIL_FD_BASE + i) < 0)
			return errno;
	if (tap >= 0 && dup2(tap, JAIL_TAP_FD) < 0)
		return errno;
	struct rlimit rl = { JAIL_NOFILE, JAIL_NOFILE };
	setrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	rl.rlim_cur = rl.rlim_max = JAIL_PIDS_MAX;
	setrlimit(RLIMIT_NPROC, &rl);
	/* no file it writes grows past a disk's size (console log, disks, state) */
	rl.rlim_cur = rl.rlim_max = ENGINE_DISK_BYTES;
	setrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = rl.rlim_max = 64ULL << 20;
	setrlimit(RLIMIT_MEMLOCK, &rl);
	uid_t uid = j->uid_base + (uid_t)c->slot;
	if ((e = jail_set_ids(uid, j->gid, j->kvm_gid)))
		return e;
	/* the uid change cleared the parent-death signal: QEMU dies with magsd still */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return errno;
	return 0;
}
