// SPDX-License-Identifier: MIT
/*
 * QEMU backend of the VM engine (engine.h): -M microvm, virtio-mmio devices,
 * direct kernel boot, no firmware beyond QEMU's own. One QEMU process per
 * sandbox, started in a fresh session with PR_SET_PDEATHSIG so a crash of
 * magsd cannot leave it running; engine_reap_stale covers what slips through.
 *
 * Device layout (kept fixed so a snapshot of one VM fits every other):
 *   virtio-blk  vda  serial mags-root  read-only root image (root=/dev/vda)
 *   virtio-blk  vdb  serial mags-ws    read-write workspace slot
 *   virtio-blk  vdc  serial mags-l0    read-only layer slot 0 (top lower layer)
 *   virtio-blk  vdd  serial mags-l1    ... vdf mags-l3
 *   virtio-serial    port "mags.agent" -> unix socket RUNDIR/agent.sock
 *   isa-serial       guest console -> RUNDIR/console.log
 * The guest probes microvm's virtio-mmio transports in -device order, so the
 * names above hold; the agent still finds the slots by serial. Each disk is a
 * -blockdev pair: a "file" node (node-name SLOT-fN) under a "raw" node (node-name
 * SLOT) that the device uses. vm_set_disks swaps the file under a raw node
 * with blockdev-add + blockdev-reopen + blockdev-del, so a VM started (or
 * restored) before its workspace was known gets it later. Every slot's file
 * is ENGINE_DISK_BYTES long; unused layer slots share one empty sparse file.
 * Caching is QEMU's default (page cache, guest flushes become fdatasync), so
 * the host sees what the guest wrote without O_DIRECT.
 * VMs used for snapshots also get RAM from a file and QMP on RUNDIR/qmp.sock.
 */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base64.h"
#include "fs.h"
#include "proto.h"
#include "xmalloc.h"

#define QEMU_ARGV_MAX 128
#define QMP_START_MS 10000	/* QEMU start -> QMP greeting */
#define QMP_CALL_MS 10000	/* one QMP command */
#define QMP_MIGRATE_MS 30000	/* a whole snapshot save or load */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char *copy = xstrdup(path), *save = NULL, *found = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", dir, name);
		if (access(p, X_OK) == 0) {
			found = p;
			break;
		}
		free(p);
	}
	free(copy);
	return found;
}

/* KVM is used only when the CPU advertises vmx/svm and /dev/kvm opens. */
static enum engine_accel pick_accel(char *why, size_t whylen)
{
	char *cpuinfo = NULL;
	bool hw = false;
	if (fs_read_file("/proc/cpuinfo", 16 << 20, &cpuinfo, NULL, NULL) == 0) {
		for (char *l = cpuinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			if (strncmp(l, "flags", 5) != 0)
				continue;
			char *end = strchr(l, '\n');
			if (end)
				*end = '\0';
			hw = strstr(l, " vmx") || strstr(l, " svm");
			break;
		}
		free(cpuinfo);
	}
	if (!hw) {
		snprintf(why, whylen, "no vmx/svm in /proc/cpuinfo (no usable hardware virtualization)");
		return ENGINE_TCG;
	}
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "/dev/kvm: %s", strerror(errno));
		return ENGINE_TCG;
	}
	close(fd);
	snprintf(why, whylen, "vmx/svm present and /dev/kvm usable");
	return ENGINE_KVM;
}

int engine_init(struct engine *eng, const char *guest_dir, const char *accel, struct err *err)
{
	memset(eng, 0, sizeof *eng);
	eng->mem_mib = 512;
	eng->vcpus = 1;
	const char *q = getenv("MAGS_QEMU");
	eng->qemu = q ? xstrdup(q) : find_in_path("qemu-system-x86_64");
	if (!eng->qemu)
		return err_set(err, ENOENT, "qemu-system-x86_64 not found in PATH (apt-get install qemu-system-x86)");
	const char *kernels[] = { "vmlinux", "bzImage" };
	for (size_t i = 0; i < 2 && !eng->kernel; i++) {
		char *k = xasprintf("%s/%s", guest_dir, kernels[i]);
		/* the file itself, links resolved: a jailed QEMU sees only its dir */
		if (access(k, R_OK) == 0)
			eng->kernel = realpath(k, NULL);
		free(k);
	}
	if (!eng->kernel) {
		engine_free(eng);
		return err_set(err, ENOENT, "no guest kernel (vmlinux or bzImage) in %s (run make guest)", guest_dir);
	}
	if (!accel || !strcmp(accel, "auto")) {
		eng->accel = pick_accel(eng->accel_why, sizeof eng->accel_why);
	} else if (!strcmp(accel, "kvm")) {
		eng->accel = ENGINE_KVM;
		snprintf(eng->accel_why, sizeof eng->accel_why, "requested with --accel kvm");
	} else if (!strcmp(accel, "tcg")) {
		eng->accel = ENGINE_TCG;
		snprintf(eng->accel_why, sizeof eng->accel_why, "requested with --accel tcg");
	} else {
		engine_free(eng);
		return err_set(err, 400, "--accel: expected auto, kvm or tcg, not \"%s\"", accel);
	}
	return 0;
}

void engine_with_image(struct engine *dst, const struct engine *base, const char *image)
{
	*dst = *base;
	dst->qemu = xstrdup(base->qemu);
	dst->kernel = xstrdup(base->kernel);
	dst->image = realpath(image, NULL); /* links resolved, as for the kernel */
	if (!dst->image)
		dst->image = xstrdup(image);
	dst->empty_disk = base->empty_disk ? xstrdup(base->empty_disk) : NULL;
}

void engine_free(struct engine *eng)
{
	free(eng->qemu);
	free(eng->kernel);
	free(eng->image);
	free(eng->empty_disk);
	memset(eng, 0, sizeof *eng);
}

const char *engine_accel_name(const struct engine *eng)
{
	return eng->accel == ENGINE_KVM ? "kvm" : "tcg";
}

/* A QEMU command line under construction; owned strings are freed with it. */
struct qargv {
	const char *v[QEMU_ARGV_MAX];
	int n;
	char *owned[48];
	int nowned;
};

static void qa(struct qargv *a, const char *s)
{
	if (a->n < QEMU_ARGV_MAX - 1)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void qa2(struct qargv *a, const char *opt, char *owned)
{
	qa(a, opt);
	if (a->nowned < (int)(sizeof a->owned / sizeof *a->owned))
		a->owned[a->nowned++] = owned;
	qa(a, owned);
}

static void qargv_free(struct qargv *a)
{
	for (int i = 0; i < a->nowned; i++)
		free(a->owned[i]);
}

/* Slot 0 is the workspace, 1 + i layer i. */
#define DISK_SLOTS (1 + ENGINE_LAYER_SLOTS)

static const char *const slot_node[DISK_SLOTS] = { "ws", "l0", "l1", "l2", "l3" };

static bool slot_ro(int slot)
{
	return slot > 0;
}

/* Creates path as a sparse file of ENGINE_DISK_BYTES (through a temporary and rename). */
static int disk_create(const char *path, mode_t mode, struct err *err)
{
	char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
	int r = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = err_set(err, errno, "create %s", tmp);
		goto out;
	}
	if (ftruncate(fd, (off_t)ENGINE_DISK_BYTES) < 0 || fchmod(fd, mode) < 0)
		r = err_set(err, errno, "size %s", tmp);
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = err_set(err, errno, "rename %s", tmp);
	if (r < 0)
		unlink(tmp);
out:
	free(tmp);
	return r;
}

/* A disk must exist and be exactly ENGINE_DISK_BYTES: the guest saw that size before restore. */
static int disk_check(const char *path, struct err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return err_set(err, errno, "disk %s", path);
	if (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size != ENGINE_DISK_BYTES)
		return err_set(err, EINVAL, "disk %s: %lld bytes; every disk must be a file of %llu bytes", path,
			       (long long)st.st_size, (unsigned long long)ENGINE_DISK_BYTES);
	return 0;
}

int engine_disks_init(struct engine *eng, const char *dir, struct err *err)
{
	char *path = xasprintf("%s/empty-layer.img", dir);
	int r = 0;
	if (access(path, F_OK) < 0)
		r = disk_create(path, 0444, err);
	if (r == 0)
		r = disk_check(path, err);
	if (r < 0) {
		free(path);
		return r;
	}
	free(eng->empty_disk);
	eng->empty_disk = path;
	return 0;
}

/*
 * The file for each slot of vm in rundir, given disks (may be NULL), creating
 * the per-VM defaults that are missing. paths[] are owned by the caller.
 */
static int disks_resolve(const char *rundir, const char *empty_disk, const struct vm_disks *disks,
			 char *paths[DISK_SLOTS], struct err *err)
{
	memset(paths, 0, DISK_SLOTS * sizeof *paths);
	int r = 0;
	for (int i = 0; i < DISK_SLOTS && r == 0; i++) {
		const char *given = !disks ? NULL : i == 0 ? disks->workspace : disks->layers[i - 1];
		if (given) {
			paths[i] = xstrdup(given);
		} else if (i > 0 && empty_disk) {
			paths[i] = xstrdup(empty_disk);
		} else {
			paths[i] = xasprintf("%s/%s", rundir, i == 0 ? "scratch.img" : "empty-layer.img");
			if (access(paths[i], F_OK) < 0)
				r = disk_create(paths[i], i == 0 ? 0600 : 0444, err);
		}
		if (r == 0)
			r = disk_check(paths[i], err);
	}
	if (r < 0)
		for (int i = 0; i < DISK_SLOTS; i++) {
			free(paths[i]);
			paths[i] = NULL;
		}
	return r;
}

/* A disk file opened for a jailed QEMU: read-only for the layer slots. */
static int open_disk(const char *path, int slot)
{
	return open(path, (slot_ro(slot) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
}

/* -blockdev file + raw pair and the virtio-blk device for one disk. */
static void qa_disk(struct qargv *a, const char *node, const char *path, bool ro, const char *serial)
{
	const char *rw = ro ? "on" : "off";
	qa2(a, "-blockdev", xasprintf("driver=file,node-name=%s-f0,filename=%s,read-only=%s", node, path, rw));
	qa2(a, "-blockdev", xasprintf("driver=raw,node-name=%s,file=%s-f0,read-only=%s", node, node, rw));
	qa2(a, "-device", xasprintf("virtio-blk-device,drive=%s,serial=%s", node, serial));
}

/*
 * no_timer_check: the kernel's check that the IO-APIC timer ticks is timing
 * based; under TCG on a loaded host it fails and the kernel panics ("IO-APIC +
 * timer doesn't work!"), seen with 8 cold boots at once on 2 cores.
 */
#define KERNEL_APPEND "console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/mags-agent " \
		      "quiet panic=-1 reboot=t i8042.noaux i8042.nomux i8042.nopnp nomodule no_timer_check"

/*
 * The QEMU command line for a VM in rundir. Every VM gets the same devices in
 * the same order, so a snapshot of one fits all; only file paths differ.
 * With mem, RAM is the file-backed object "mem" and QMP listens on
 * rundir/qmp.sock.
 */
/*
 * QEMU's command line. wake: the VM comes back from a sleep snapshot
 * (-incoming, console appended to); its RAM is then a plain backend named
 * like the one it slept with (mem_backend), since the stream carries every page.
 */
static void build_argv(const struct engine *eng, const char *rundir, const struct vm_mem *mem, bool wake,
		       bool mem_backend, const char *const disks[DISK_SLOTS], struct qargv *a)
{
	memset(a, 0, sizeof *a);
	qa(a, eng->qemu);
	qa2(a, "-M", xstrdup(mem || mem_backend ? "microvm,acpi=off,memory-backend=mem" : "microvm,acpi=off"));
	qa(a, "-accel");
	/*
	 * TCG's translation cache defaults to 1 GiB, filled as the guest runs new
	 * code: a long-lived sandbox's QEMU grew past the jail's memory limit
	 * (guest + 512 MiB). A bounded cache is flushed and refilled instead.
	 */
	qa(a, eng->accel == ENGINE_KVM ? "kvm" : "tcg,tb-size=" ENGINE_TCG_TB_MIB_STR);
	qa(a, "-cpu");
	qa(a, eng->accel == ENGINE_KVM ? "host" : "max");
	qa2(a, "-m", xasprintf("%u", eng->mem_mib));
	qa2(a, "-smp", xasprintf("%u", eng->vcpus));
	if (mem) {
		qa2(a, "-object", xasprintf("memory-backend-file,id=mem,size=%uM,mem-path=%s,share=%s", eng->mem_mib,
					    mem->mem_path, mem->incoming ? "off" : "on"));
		if (mem->incoming) {
			qa(a, "-incoming");
			qa(a, "defer");
		}
	} else if (wake && mem_backend) {
		qa2(a, "-object", xasprintf("memory-backend-ram,id=mem,size=%uM", eng->mem_mib));
	}
	if (wake) {
		qa(a, "-incoming");
		qa(a, "defer");
	}
	/* QMP: snapshots, sleep and wake, disk swaps; with user networking also port forwards (vm_forward_port) */
	qa2(a, "-qmp", xasprintf("unix:%s/qmp.sock,server=on,wait=off", rundir));
	qa(a, "-nodefaults");
	qa(a, "-no-user-config");
	qa(a, "-nographic");
	qa(a, "-no-reboot");
	qa(a, "-kernel");
	qa(a, eng->kernel);
	qa(a, "-append");
	qa(a, KERNEL_APPEND);
	bool jailed = eng->jail && eng->jail->on;
	if (jailed) {
		/* QEMU's seccomp filter; its disks and tap come as descriptors (jail.h) */
		qa(a, "-sandbox");
		qa(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
		for (int i = 0; i < DISK_SLOTS; i++)
			qa2(a, "-add-fd", xasprintf("fd=%d,set=%d", JAIL_FD_BASE + i, 1 + i));
	}
	/* -device order is the guest's probe order: the image must stay vda */
	qa_disk(a, "root", eng->image, true, "mags-root");
	for (int i = 0; i < DISK_SLOTS; i++) {
		char serial[16], fdset[32];
		snprintf(serial, sizeof serial, "mags-%s", slot_node[i]);
		snprintf(fdset, sizeof fdset, "/dev/fdset/%d", 1 + i);
		qa_disk(a, slot_node[i], jailed ? fdset : disks[i], slot_ro(i), serial);
	}
	qa(a, "-device");
	qa(a, "virtio-serial-device");
	qa2(a, "-chardev", xasprintf("socket,id=ag,path=%s/agent.sock,server=on,wait=off", rundir));
	qa(a, "-device");
	qa(a, "virtserialport,chardev=ag,name=mags.agent");
	if (jailed && eng->net.mode == NET_TAP) {
		qa2(a, "-netdev", xasprintf("tap,id=n0,fd=%d", JAIL_TAP_FD));
		qa(a, "-device");
		qa(a, net_device());
	} else if (net_netdev(eng->net.mode)) {
		qa(a, "-netdev");
		qa(a, net_netdev(eng->net.mode));
		qa(a, "-device");
		qa(a, net_device());
	}
	qa2(a, "-chardev", xasprintf("file,id=con,path=%s/console.log%s", rundir, wake ? ",append=on" : ""));
	qa(a, "-serial");
	qa(a, "chardev:con");
}

static void key_add_file(EVP_MD_CTX *c, const char *what, const char *path)
{
	struct stat st;
	char line[PATH_MAX + 160];
	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof st);
	int n = snprintf(line, sizeof line, "%s %s dev=%llu ino=%llu size=%lld mtime=%lld.%09ld\n", what, path,
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	EVP_DigestUpdate(c, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
}

void engine_snapshot_key(const struct engine *eng, char key[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	/* bump when the agent/engine handshake around a snapshot changes */
	EVP_DigestUpdate(c, "mags-snapshot-v1\n", 17);
	key_add_file(c, "qemu", eng->qemu);
	key_add_file(c, "kernel", eng->kernel);
	key_add_file(c, "image", eng->image);
	struct vm_mem mem = { .mem_path = "MEM", .incoming = false };
	/* per-VM files are masked: a snapshot fits every VM whatever its disks */
	const char *const disks[DISK_SLOTS] = { "WORKSPACE", "LAYER", "LAYER", "LAYER", "LAYER" };
	struct qargv a;
	build_argv(eng, "RUNDIR", &mem, false, false, disks, &a);
	for (int i = 0; i < a.n; i++)
		EVP_DigestUpdate(c, a.v[i], strlen(a.v[i]) + 1);
	qargv_free(&a);
	unsigned char h[32];
	EVP_DigestFinal_ex(c, h, NULL);
	EVP_MD_CTX_free(c);
	hex_encode(h, sizeof h, key);
}

/* Points vm at rundir: the dir and the paths of the files QEMU keeps there. */
static void vm_set_rundir(struct vm *vm, const char *rundir)
{
	free(vm->rundir);
	free(vm->agent_path);
	free(vm->console_path);
	vm->rundir = xstrdup(rundir);
	vm->agent_path = xasprintf("%s/agent.sock", rundir);
	vm->console_path = xasprintf("%s/console.log", rundir);
}

/* What the child of vm_spawn needs (prepared before clone: the child allocates nothing). */
struct spawn_args {
	const struct vm *vm;
	const struct qargv *a;
	int logfd, nullfd;
	struct jail_child jc;
};

static int spawn_child(void *arg)
{
	/* child: only async-signal-safe calls from here on */
	struct spawn_args *sa = arg;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setsid();
	if (sa->vm->ns.fd >= 0 && setns(sa->vm->ns.fd, CLONE_NEWNET) < 0)
		_exit(126);
	if (sa->vm->jail_slot >= 0) {
		int e = jail_child(&sa->jc);
		if (e) {
			char msg[96];
			int n = snprintf(msg, sizeof msg, "magsd: jail setup failed: %s\n", strerrordesc_np(e)); /* no locale, no malloc */
			if (n > 0 && write(sa->logfd, msg, (size_t)n) < 0) {
				/* nothing left to tell it to */
			}
			_exit(125);
		}
	}
	dup2(sa->nullfd, 0);
	dup2(sa->logfd, 1);
	dup2(sa->logfd, 2);
	execv(sa->a->v[0], (char *const *)sa->a->v);
	_exit(127);
}

#define SPAWN_STACK (256 * 1024)

/*
 * Starts QEMU with argv a in vm's network namespace (if any), its output
 * appended to logpath, and records its pid in RUNDIR/qemu.pid. A jailed VM
 * starts in new pid, mount, IPC and UTS namespaces and enters its jail
 * (jail.h) before exec; its disks go as descriptors.
 */
static int vm_spawn(const struct engine *eng, struct vm *vm, const struct qargv *a, const char *logpath,
		    struct err *err)
{
	int r = 0;
	struct spawn_args sa = { .vm = vm, .a = a, .logfd = -1, .nullfd = -1 };
	char *stack = NULL, *kdir = NULL, *idir = NULL;
	int fds[DISK_SLOTS];
	for (int i = 0; i < DISK_SLOTS; i++)
		fds[i] = -1;
	sa.logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	sa.nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (sa.logfd < 0 || sa.nullfd < 0) {
		r = err_set(err, errno, "open %s", logpath);
		goto out;
	}
	int flags = SIGCHLD;
	if (vm->jail_slot >= 0) {
		flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
		struct jail_child *jc = &sa.jc;
		jc->jail = vm->jail;
		jc->slot = vm->jail_slot;
		jc->rundir = vm->rundir;
		kdir = xstrdup(eng->kernel);
		idir = xstrdup(eng->image);
		int nro = 0, nrw = 0;
		jc->binds_ro[nro++] = dirname(kdir);
		if (strcmp(idir, eng->kernel) != 0)
			jc->binds_ro[nro++] = dirname(idir);
		if (vm->mem_path)
			jc->binds_rw[nrw++] = vm->mem_path;
		for (int i = 0; i < 8; i++)
			jc->pass_fds[i] = -1;
		for (int i = 0; i < DISK_SLOTS; i++) {
			fds[i] = open_disk(vm->slot_path[i], i);
			if (fds[i] < 0) {
				r = err_set(err, errno, "open disk %s", vm->slot_path[i]);
				goto out;
			}
			jc->pass_fds[i] = fds[i];
		}
		jc->tap = eng->net.mode == NET_TAP;
	}
	stack = xmalloc(SPAWN_STACK);
	pid_t pid = clone(spawn_child, stack + SPAWN_STACK, flags, &sa);
	if (pid < 0) {
		r = err_set(err, errno, "clone");
		goto out;
	}
	vm->pid = pid;
	/* the pid, and the dir QEMU's command line names (the run dir may be renamed) */
	char *pidtxt = xasprintf("%d\n%s\n", (int)pid, vm->rundir);
	char *pidfile = xasprintf("%s/qemu.pid", vm->rundir);
	fs_write_file(pidfile, pidtxt, strlen(pidtxt), 0600, NULL);
	free(pidfile);
	free(pidtxt);
out:
	free(stack);
	free(kdir);
	free(idir);
	for (int i = 0; i < DISK_SLOTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (sa.logfd >= 0)
		close(sa.logfd);
	if (sa.nullfd >= 0)
		close(sa.nullfd);
	return r;
}

/*
 * Jailed VMs: a uid slot, the run dir theirs, a cgroup; a template VM's RAM
 * file made here (QEMU cannot create files beside its run dir) and given to it.
 */
static int vm_jail_setup(const struct engine *eng, struct vm *vm, const struct vm_mem *mem, struct err *err)
{
	vm->jail_slot = -1;
	if (!eng->jail || !eng->jail->on)
		return 0;
	vm->jail = eng->jail;
	vm->jail_mem_mib = eng->mem_mib;
	vm->jail_vcpus = eng->vcpus;
	vm->fdset_next = 16;
	int slot = jail_slot_claim();
	if (slot < 0)
		return err_set(err, EAGAIN, "no free VM uid (%d VMs run)", JAIL_SLOTS);
	vm->jail_slot = slot;
	uid_t uid = vm->jail->uid_base + (uid_t)slot;
	if (chown(vm->rundir, uid, vm->jail->gid) < 0)
		return err_set(err, errno, "chown %s", vm->rundir);
	if (mem && !mem->incoming) {
		int fd = open(mem->mem_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || fchown(fd, uid, vm->jail->gid) < 0) {
			int r = err_set(err, errno, "RAM file %s", mem->mem_path);
			if (fd >= 0)
				close(fd);
			return r;
		}
		close(fd);
	} else if (mem) {
		/* a restore opens the template's RAM file read-write (jail.h): the VM group's (a copied template may not be) */
		struct stat st;
		if (stat(mem->mem_path, &st) == 0 && (st.st_gid != vm->jail->gid || (st.st_mode & 0660) != 0660) &&
		    (chown(mem->mem_path, 0, vm->jail->gid) < 0 || chmod(mem->mem_path, 0660) < 0))
			return err_set(err, errno, "RAM file %s", mem->mem_path);
	}
	return jail_cgroup_create(vm->jail, slot, eng->mem_mib, eng->vcpus, err);
}

int vm_start(const struct engine *eng, const char *rundir, const struct vm_mem *mem, const struct vm_disks *disks,
	     struct vm **out, struct err *err)
{
	*out = NULL;
	if (mkdir(rundir, 0700) < 0)
		return err_set(err, errno, "create run dir %s", rundir);

	struct vm *vm = xcalloc(1, sizeof *vm);
	vm->agent_fd = -1;
	vm->qmp.fd = -1;
	vm->ns.idx = vm->ns.fd = -1;
	vm->empty_disk = eng->empty_disk ? xstrdup(eng->empty_disk) : NULL;
	vm->jail_slot = -1;
	vm_set_rundir(vm, rundir);
	if (mem) {
		vm->mem_path = xstrdup(mem->mem_path);
		vm->mem_template = !mem->incoming;
	}
	char *logpath = xasprintf("%s/qemu.log", rundir);
	char *paths[DISK_SLOTS];
	struct qargv a;
	memset(&a, 0, sizeof a);
	int r = disks_resolve(rundir, vm->empty_disk, disks, paths, err);
	if (r < 0 || (r = vm_jail_setup(eng, vm, mem, err)) < 0)
		goto out;
	build_argv(eng, rundir, mem, false, false, (const char *const *)paths, &a);
	for (int i = 0; i < DISK_SLOTS; i++)
		vm->slot_path[i] = xstrdup(paths[i]);

	if (eng->net.mode == NET_TAP && (r = net_ns_create(&vm->ns, err)) < 0)
		goto out;
	vm->mem_backend = mem != NULL;
	if ((r = vm_spawn(eng, vm, &a, logpath, err)) < 0)
		goto out;
	if (mem || eng->net.mode == NET_USER) {
		char *qmp = xasprintf("%s/qmp.sock", rundir);
		r = qmp_connect(&vm->qmp, qmp, QMP_START_MS, err);
		free(qmp);
		if (r < 0)
			goto out;
	}
	*out = vm;
	vm = NULL; /* transferred */
out:
	free(logpath);
	for (int i = 0; i < DISK_SLOTS; i++)
		free(paths[i]);
	qargv_free(&a);
	if (vm)
		vm_free(vm);
	return r;
}

/* Deletes the file nodes "SLOT-fGEN" named by gen[] (best effort: cleanup). */
static void del_file_nodes(struct vm *vm, const unsigned gen[DISK_SLOTS], const bool which[DISK_SLOTS])
{
	for (int i = 0; i < DISK_SLOTS; i++) {
		if (!which[i])
			continue;
		char node[32];
		snprintf(node, sizeof node, "%s-f%u", slot_node[i], gen[i]);
		qmp_call(&vm->qmp, "blockdev-del", json_pack("{s:s}", "node-name", node), -1, NULL, QMP_CALL_MS, NULL);
	}
}

int vm_set_disks(struct vm *vm, const struct vm_disks *disks, struct err *err)
{
	if (vm->qmp.fd < 0)
		return err_set(err, ENOTSUP, "swapping disks needs QMP (a VM started with vm_mem)");
	char *paths[DISK_SLOTS];
	int r = disks_resolve(vm->rundir, vm->empty_disk, disks, paths, err);
	if (r < 0)
		return err_wrap(err, "set disks");
	unsigned gen = ++vm->disk_gen, newgen[DISK_SLOTS];
	bool added[DISK_SLOTS] = { false };
	json_t *opts = json_array();
	for (int i = 0; i < DISK_SLOTS && r == 0; i++) {
		char node[32];
		newgen[i] = vm->slot_gen[i];
		/* the same file again stays: a second node would fight the first over QEMU's image lock */
		if (!strcmp(paths[i], vm->slot_path[i]))
			continue;
		newgen[i] = gen;
		snprintf(node, sizeof node, "%s-f%u", slot_node[i], gen);
		char fdset[32];
		const char *file = paths[i];
		if (vm->jail_slot >= 0) { /* a jailed QEMU sees no disk paths: the file goes as a descriptor */
			int fd = open_disk(paths[i], i);
			int set = vm->fdset_next++;
			r = fd < 0 ? err_set(err, errno, "open disk %s", paths[i])
				   : qmp_call(&vm->qmp, "add-fd", json_pack("{s:i}", "fdset-id", set), fd, NULL,
					      QMP_CALL_MS, err);
			if (fd >= 0)
				close(fd);
			if (r < 0)
				break;
			snprintf(fdset, sizeof fdset, "/dev/fdset/%d", set);
			file = fdset;
		}
		r = qmp_call(&vm->qmp, "blockdev-add",
			     json_pack("{s:s,s:s,s:s,s:b}", "driver", "file", "node-name", node, "filename", file,
				       "read-only", slot_ro(i)),
			     -1, NULL, QMP_CALL_MS, err);
		if (r == 0) {
			added[i] = true;
			json_array_append_new(opts, json_pack("{s:s,s:s,s:s,s:b}", "driver", "raw", "node-name", slot_node[i],
							      "file", node, "read-only", slot_ro(i)));
		}
	}
	/* one reopen for all slots: QEMU applies it as a transaction */
	if (r == 0 && json_array_size(opts) > 0)
		r = qmp_call(&vm->qmp, "blockdev-reopen", json_pack("{s:O}", "options", opts), -1, NULL, QMP_CALL_MS,
			     err);
	json_decref(opts);
	if (r < 0) {
		del_file_nodes(vm, newgen, added);
	} else {
		del_file_nodes(vm, vm->slot_gen, added);
		memcpy(vm->slot_gen, newgen, sizeof newgen);
		for (int i = 0; i < DISK_SLOTS; i++)
			if (added[i]) {
				free(vm->slot_path[i]);
				vm->slot_path[i] = paths[i];
				paths[i] = NULL; /* transferred */
			}
	}
	for (int i = 0; i < DISK_SLOTS; i++)
		free(paths[i]);
	if (r == -ENOTSUP)
		return err_set(err, ENOTSUP, "this QEMU cannot swap disks (no blockdev-reopen)");
	return r < 0 ? err_wrap(err, "set disks") : 0;
}

/*
 * x-ignore-shared on: RAM in a shared file is left out of the stream (template
 * snapshots and their restores); off: every page goes in (sleep and wake).
 */
static int set_ignore_shared(struct vm *vm, bool on, struct err *err)
{
	json_t *caps = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "x-ignore-shared", "state", on);
	return qmp_call(&vm->qmp, "migrate-set-capabilities", caps, -1, NULL, QMP_CALL_MS, err);
}

/* Hands fd to QEMU under the name "mags-state" (QMP getfd). */
static int pass_fd(struct vm *vm, int fd, struct err *err)
{
	return qmp_call(&vm->qmp, "getfd", json_pack("{s:s}", "fdname", "mags-state"), fd, NULL, QMP_CALL_MS, err);
}

/* Polls query-migrate until the migration completed or failed. */
static int wait_migration(struct vm *vm, struct err *err)
{
	long long deadline = now_ms() + QMP_MIGRATE_MS;
	for (;;) {
		json_t *ret;
		int r = qmp_call(&vm->qmp, "query-migrate", NULL, -1, &ret, QMP_CALL_MS, err);
		if (r < 0)
			return r;
		const char *st = json_string_value(json_object_get(ret, "status"));
		if (st && !strcmp(st, "completed")) {
			json_decref(ret);
			return 0;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			r = err_set(err, EIO, "migration %s: %s", st,
				    json_string_value(json_object_get(ret, "error-desc")) ?: "no reason given");
			json_decref(ret);
			return r;
		}
		json_decref(ret);
		if (now_ms() >= deadline)
			return err_set(err, ETIMEDOUT, "migration still \"%s\" after %d ms", st ? st : "?", QMP_MIGRATE_MS);
		usleep(500);
	}
}

/* A free TCP port on 127.0.0.1 (free now; QEMU binds it right after). */
static int free_local_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int port = -1;
	if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

int vm_forward_port(struct vm *vm, int guest_port, int *host_port, struct err *err)
{
	if (vm->qmp.fd < 0)
		return err_set(err, ENOTSUP, "port forwarding needs QMP (user networking)");
	for (int tries = 0; tries < 3; tries++) {
		int hp = free_local_port();
		if (hp < 0)
			return err_set(err, errno, "find a free port");
		char *cmd = xasprintf("hostfwd_add n0 tcp:127.0.0.1:%d-" AGENT_NET_GUEST ":%d", hp, guest_port);
		json_t *ret = NULL;
		int r = qmp_call(&vm->qmp, "human-monitor-command", json_pack("{s:s}", "command-line", cmd), -1, &ret,
				 QMP_CALL_MS, err);
		free(cmd);
		/* HMP answers "" on success, else a message (a port taken meanwhile: try another) */
		const char *msg = json_is_string(ret) ? json_string_value(ret) : "";
		bool ok = r == 0 && !*msg;
		if (r == 0 && !ok)
			err_set(err, 500, "hostfwd_add: %.200s", msg);
		json_decref(ret);
		if (ok) {
			*host_port = hp;
			return 0;
		}
		if (r < 0)
			return r;
	}
	return -1;
}

/*
 * Pauses the guest and migrates its state into state_path (fsynced; *bytes:
 * its size). ignore_shared: a template, whose RAM stays in its shared file;
 * else every page is written, as fast as the disk takes them. The guest
 * stays paused. QMP must be connected.
 */
static int save_state(struct vm *vm, const char *state_path, bool ignore_shared, long long *bytes, struct err *err)
{
	int fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errno, "create %s", state_path);
	int r = qmp_call(&vm->qmp, "stop", NULL, -1, NULL, QMP_CALL_MS, err);
	if (r == 0)
		r = set_ignore_shared(vm, ignore_shared, err);
	if (r == 0 && !ignore_shared)
		r = qmp_call(&vm->qmp, "migrate-set-parameters", json_pack("{s:I}", "max-bandwidth", (json_int_t)1 << 40),
			     -1, NULL, QMP_CALL_MS, err);
	if (r == 0)
		r = pass_fd(vm, fd, err);
	if (r == 0)
		r = qmp_call(&vm->qmp, "migrate", json_pack("{s:s}", "uri", "fd:mags-state"), -1, NULL, QMP_CALL_MS, err);
	if (r == 0)
		r = wait_migration(vm, err);
	if (r == 0 && fsync(fd) < 0)
		r = err_set(err, errno, "fsync %s", state_path);
	struct stat st;
	*bytes = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
	close(fd);
	return r;
}

/* Hands state_path to QEMU for an incoming migration (see set_ignore_shared). */
static int load_prepare(struct vm *vm, const char *state_path, bool ignore_shared, struct err *err)
{
	int fd = open(state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errno, "open %s", state_path);
	int r = set_ignore_shared(vm, ignore_shared, err);
	if (r == 0)
		r = pass_fd(vm, fd, err);
	close(fd); /* QEMU holds its own copy now */
	return r;
}

int vm_snapshot(struct vm *vm, const char *state_path, struct err *err)
{
	if (vm->qmp.fd < 0)
		return err_set(err, EINVAL, "snapshot of a VM without file-backed memory");
	long long bytes;
	if (save_state(vm, state_path, true, &bytes, err) < 0)
		return err_wrap(err, "snapshot");
	/*
	 * jailed restores run as other uids and QEMU opens a RAM file read-write
	 * even to map it private: the file goes to their shared group
	 */
	if (vm->jail_slot >= 0 && vm->mem_template &&
	    (chown(vm->mem_path, 0, vm->jail->gid) < 0 || chmod(vm->mem_path, 0660) < 0))
		return err_set(err, errno, "snapshot: chown %s", vm->mem_path);
	return 0;
}

int vm_restore_prepare(struct vm *vm, const char *state_path, struct err *err)
{
	if (vm->qmp.fd < 0)
		return err_set(err, EINVAL, "restore into a VM that is not waiting for one");
	return load_prepare(vm, state_path, true, err) < 0 ? err_wrap(err, "prepare restore") : 0;
}

int vm_restore(struct vm *vm, struct err *err)
{
	int r = qmp_call(&vm->qmp, "migrate-incoming", json_pack("{s:s}", "uri", "fd:mags-state"), -1, NULL,
			 QMP_CALL_MS, err);
	if (r == 0)
		r = wait_migration(vm, err);
	/* the template was paused when it was saved, so the copy comes up paused */
	if (r == 0)
		r = qmp_call(&vm->qmp, "cont", NULL, -1, NULL, QMP_CALL_MS, err);
	return r < 0 ? err_wrap(err, "restore") : 0;
}

/* QMP for a VM started without it connected (a cold boot in tap mode): the socket is always there. */
static int qmp_ensure(struct vm *vm, struct err *err)
{
	if (vm->qmp.fd >= 0)
		return 0;
	char *path = xasprintf("%s/qmp.sock", vm->rundir);
	int r = qmp_connect(&vm->qmp, path, QMP_START_MS, err);
	free(path);
	return r;
}

int vm_sleep(struct vm *vm, const char *state_path, long long *bytes, struct err *err)
{
	int r = qmp_ensure(vm, err);
	if (r < 0)
		return err_wrap(err, "sleep");
	/* every page goes to the file (a restored VM's template pages too) */
	r = save_state(vm, state_path, false, bytes, err);
	if (r < 0) {
		/* still whole: let it run on */
		struct err e2 = { 0 };
		qmp_call(&vm->qmp, "cont", NULL, -1, NULL, QMP_CALL_MS, &e2);
		return err_wrap(err, "sleep");
	}
	struct err e2 = { 0 };
	qmp_call(&vm->qmp, "quit", NULL, -1, NULL, QMP_CALL_MS, &e2);
	if (!vm_wait_exit(vm, 5000))
		vm_kill(vm);
	qmp_close(&vm->qmp);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	vm->agent_fd = -1;
	return 0;
}

int vm_wake(const struct engine *eng, struct vm *vm, const char *state_path, struct err *err)
{
	if (vm->pid > 0)
		return err_set(err, EBUSY, "wake: QEMU still runs");
	char *qmp = xasprintf("%s/qmp.sock", vm->rundir);
	char *logpath = xasprintf("%s/qemu.log", vm->rundir);
	unlink(qmp);
	unlink(vm->agent_path);
	struct qargv a;
	build_argv(eng, vm->rundir, NULL, true, vm->mem_backend, (const char *const *)vm->slot_path, &a);
	/* its RAM comes whole from the stream: no file to bind */
	free(vm->mem_path);
	vm->mem_path = NULL;
	int r = vm->jail_slot >= 0 ? jail_cgroup_create(vm->jail, vm->jail_slot, vm->jail_mem_mib, vm->jail_vcpus, err) : 0;
	if (r == 0)
		r = vm_spawn(eng, vm, &a, logpath, err);
	if (r == 0)
		r = qmp_connect(&vm->qmp, qmp, QMP_START_MS, err);
	if (r == 0)
		r = load_prepare(vm, state_path, false, err);
	if (r == 0)
		r = vm_restore(vm, err);
	if (r == 0)
		r = vm_connect_agent(vm, QMP_START_MS, err);
	qargv_free(&a);
	free(qmp);
	free(logpath);
	if (r < 0) {
		vm_kill(vm);
		qmp_close(&vm->qmp);
		return err_wrap(err, "wake");
	}
	return 0;
}

int vm_rename(struct vm *vm, const char *rundir, struct err *err)
{
	if (rename(vm->rundir, rundir) < 0)
		return err_set(err, errno, "rename %s to %s", vm->rundir, rundir);
	/* the per-VM default disks moved with the dir */
	size_t n = strlen(vm->rundir);
	for (int i = 0; i < DISK_SLOTS; i++) {
		char *p = vm->slot_path[i];
		if (p && !strncmp(p, vm->rundir, n) && p[n] == '/') {
			vm->slot_path[i] = xasprintf("%s%s", rundir, p + n);
			free(p);
		}
	}
	vm_set_rundir(vm, rundir);
	return 0;
}

bool vm_wait_exit(struct vm *vm, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (vm->pid > 0) {
		int st;
		pid_t p = waitpid(vm->pid, &st, WNOHANG);
		if (p == vm->pid || (p < 0 && errno == ECHILD)) {
			vm->status = p == vm->pid ? st : 0;
			vm->pid = 0;
			break;
		}
		if (now_ms() >= deadline)
			return false;
		usleep(5000);
	}
	return true;
}

int vm_connect_agent(struct vm *vm, int timeout_ms, struct err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(vm->agent_path) >= sizeof sa.sun_path)
		return err_set(err, ENAMETOOLONG, "agent socket path %s", vm->agent_path);
	strcpy(sa.sun_path, vm->agent_path);
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return err_set(err, errno, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			vm->agent_fd = fd;
			return 0;
		}
		int e = errno;
		close(fd);
		if (e != ENOENT && e != ECONNREFUSED)
			return err_set(err, e, "connect %s", vm->agent_path);
		if (vm_wait_exit(vm, 0))
			return err_set(err, 500, "QEMU exited before the agent channel opened");
		if (now_ms() >= deadline)
			return err_set(err, ETIMEDOUT, "connect %s", vm->agent_path);
		usleep(2000);
	}
}

void vm_kill(struct vm *vm)
{
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		vm_wait_exit(vm, 10000);
	}
}

char *vm_log_tail(const struct vm *vm, const char *name, size_t max)
{
	char *all = NULL, *path = xasprintf("%s/%s", vm->rundir, name);
	size_t len = 0;
	int r = fs_read_file(path, 64 << 20, &all, &len, NULL);
	free(path);
	if (r < 0)
		return xstrdup("");
	if (len <= max)
		return all;
	char *t = xstrdup(all + len - max);
	free(all);
	return t;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_kill(vm);
	if (vm->agent_fd >= 0)
		close(vm->agent_fd);
	qmp_close(&vm->qmp);
	net_ns_destroy(&vm->ns);
	if (vm->jail_slot >= 0) {
		jail_cgroup_remove(vm->jail, vm->jail_slot);
		jail_slot_release(vm->jail_slot);
	}
	free(vm->mem_path);
	fs_rm_tree(vm->rundir);
	free(vm->rundir);
	free(vm->agent_path);
	free(vm->console_path);
	free(vm->empty_disk);
	for (int i = 0; i < DISK_SLOTS; i++)
		free(vm->slot_path[i]);
	free(vm);
}

/* True when /proc/PID/cmdline mentions dir: the pid was not reused by something else. */
static bool pid_runs_in(pid_t pid, const char *dir)
{
	char path[64], *cmd = NULL;
	size_t len = 0;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if (fs_read_file(path, 1 << 20, &cmd, &len, NULL) < 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	bool yes = strstr(cmd, dir) != NULL;
	free(cmd);
	return yes;
}

int engine_reap_stale(const char *run_root)
{
	DIR *d = opendir(run_root);
	if (!d)
		return 0;
	int killed = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", run_root, de->d_name);
		char *pidfile = xasprintf("%s/qemu.pid", dir);
		char *txt = NULL;
		if (fs_read_file(pidfile, PATH_MAX + 64, &txt, NULL, NULL) == 0) {
			pid_t pid = (pid_t)atoi(txt);
			char *origin = strchr(txt, '\n');
			origin = origin && origin[1] ? origin + 1 : dir;
			char *nl = strchr(origin, '\n');
			if (nl)
				*nl = '\0';
			if (pid > 1 && pid_runs_in(pid, origin)) {
				kill(pid, SIGKILL);
				for (int i = 0; i < 200 && kill(pid, 0) == 0 && pid_runs_in(pid, origin); i++)
					usleep(10000);
				killed++;
			}
		}
		free(txt);
		fs_rm_tree(dir);
		free(pidfile);
		free(dir);
	}
	closedir(d);
	return killed;
}
