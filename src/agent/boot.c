// SPDX-License-Identifier: MIT
/*
 * PID 1 duties of mags-agent. The kernel mounts the image read-only from
 * /dev/vda; boot_pid1() mounts the API filesystems and turns that into a
 * writable root: an overlay (lower = the image, upper = a tmpfs) is mounted on
 * /run/root inside a scratch tmpfs, /proc /sys /dev move into it, and it is
 * moved onto / and chrooted into (as switch_root does). Then /tmp, /run,
 * /dev/pts, /dev/shm, the hostname and the network (lo, eth0). Everything
 * here runs once per cold boot; a restored snapshot starts after it (and so
 * has the network already), so it may be slow-ish but must never fail hard:
 * a guest without a writable root still runs jobs.
 *
 * MOUNT (after boot or restore, once) replaces that root with one whose upper
 * layer is a workspace disk and whose lower layers are frozen workspace disks
 * above the pristine image: the disks are mounted in a private staging tmpfs
 * (WS_STAGE) on the old root, the overlay is assembled there and moved over /
 * like the first one. The staging mounts end up beneath the new root: jobs can
 * neither reach them nor see them in /proc/mounts. FREEZE/THAW and POWEROFF
 * reach the workspace fs through an fd on its root. See docs/agent-protocol.md.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "payload.h"

#define BOOT_SCRATCH "/run"		/* tmpfs holding the overlay's upper and work dirs */
#define BOOT_NEWROOT "/run/root"	/* where the overlay is assembled */
#define WS_STAGE "/.mags-ws"		/* private tmpfs on the old root: disk mounts and the new root */
#define WS_OPTS_MAX 1024		/* overlay mount options */

static void boot_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		agent_log("mount %s on %s: %s", type ? type : src, dst, strerror(errno));
}

static void boot_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		agent_log("mkdir %s: %s", path, strerror(errno));
}

/* Builds the overlay root and switches into it. Returns 0 or -errno. */
static int boot_overlay(void)
{
	static const char *const moved[] = { "/proc", "/sys", "/dev" };
	if (mount("tmpfs", BOOT_SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return -errno;
	boot_mkdir(BOOT_SCRATCH "/upper", 0755);
	boot_mkdir(BOOT_SCRATCH "/work", 0755);
	boot_mkdir(BOOT_NEWROOT, 0755);
	if (mount("overlay", BOOT_NEWROOT, "overlay", 0,
		  "lowerdir=/,upperdir=" BOOT_SCRATCH "/upper,workdir=" BOOT_SCRATCH "/work") < 0) {
		int e = errno;
		umount2(BOOT_SCRATCH, MNT_DETACH);
		return -e;
	}
	for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
		char dst[64];
		snprintf(dst, sizeof dst, "%s%s", BOOT_NEWROOT, moved[i]);
		if (mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0)
			agent_log("move %s: %s", moved[i], strerror(errno));
	}
	if (chdir(BOOT_NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return -errno;
	return 0;
}

/* SIOCSIFADDR or SIOCSIFNETMASK of ifname to the IPv4 address in text. */
static int net_set_addr(int s, const char *ifname, unsigned long req, const char *text)
{
	struct ifreq ifr;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
		return -EINVAL;
	memcpy(&ifr.ifr_addr, &sin, sizeof sin);
	return ioctl(s, req, &ifr) < 0 ? -errno : 0;
}

/* Sets IFF_UP on ifname. Returns 0, -ENODEV when there is no such interface, or -errno. */
static int net_up(int s, const char *ifname)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* The default route via AGENT_NET_GATEWAY on eth0. */
static int net_default_route(int s)
{
	struct rtentry rt;
	struct sockaddr_in any = { .sin_family = AF_INET }, gw = { .sin_family = AF_INET };
	char dev[] = AGENT_NET_IFNAME;
	memset(&rt, 0, sizeof rt);
	inet_pton(AF_INET, AGENT_NET_GATEWAY, &gw.sin_addr);
	memcpy(&rt.rt_dst, &any, sizeof any);
	memcpy(&rt.rt_genmask, &any, sizeof any);
	memcpy(&rt.rt_gateway, &gw, sizeof gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	/* EEXIST: set already (the agent started twice on one kernel) */
	return ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -errno : 0;
}

/*
 * lo, and eth0 with the address every guest has (AGENT_NET_* in proto.h, see
 * docs/agent-protocol.md). ioctls only: no ip(8) on the boot path. A guest
 * without a network device just has lo.
 */
static void boot_net(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		agent_log("network: socket: %s", strerror(errno));
		return;
	}
	int r = net_set_addr(s, "lo", SIOCSIFADDR, "127.0.0.1");
	if (r == 0)
		r = net_set_addr(s, "lo", SIOCSIFNETMASK, "255.0.0.0");
	if (r == 0)
		r = net_up(s, "lo");
	if (r < 0)
		agent_log("network: lo: %s", strerror(-r));
	char mask[INET_ADDRSTRLEN];
	struct in_addr m = { .s_addr = htonl(AGENT_NET_PREFIX ? 0xffffffffu << (32 - AGENT_NET_PREFIX) : 0) };
	inet_ntop(AF_INET, &m, mask, sizeof mask);
	const char *step = "up";
	r = net_up(s, AGENT_NET_IFNAME);
	if (r == -ENODEV) {
		agent_log("network: no %s, only lo", AGENT_NET_IFNAME);
		goto out;
	}
	if (r == 0) {
		step = "address";
		r = net_set_addr(s, AGENT_NET_IFNAME, SIOCSIFADDR, AGENT_NET_GUEST);
	}
	if (r == 0) {
		step = "netmask";
		r = net_set_addr(s, AGENT_NET_IFNAME, SIOCSIFNETMASK, mask);
	}
	if (r == 0) {
		step = "default route";
		r = net_default_route(s);
	}
	if (r < 0)
		agent_log("network: %s %s: %s", AGENT_NET_IFNAME, step, strerror(-r));
out:
	close(s);
}

void boot_pid1(void)
{
	boot_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	boot_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	boot_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	int r = boot_overlay();
	if (r < 0)
		agent_log("writable root: %s (staying on the read-only root)", strerror(-r));
	boot_mkdir("/dev/pts", 0755);
	boot_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
	boot_mkdir("/dev/shm", 01777);
	boot_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	boot_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	boot_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	if (access("/dev/ptmx", F_OK) < 0 && symlink("pts/ptmx", "/dev/ptmx") < 0)
		agent_log("symlink /dev/ptmx: %s", strerror(errno));
	if (sethostname("mags", 4) < 0)
		agent_log("sethostname: %s", strerror(errno));
	boot_net();
	boot_mkdir(AGENT_RUN_DIR, 0755);
	/* /etc/resolv.conf may link here; INIT fills it (ops.c) */
	int fd = open(AGENT_RESOLV_CONF, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0)
		close(fd);
	umask(022);
}

/* The environment every job starts from (it may add its own "env" entries). */
void boot_env(void)
{
	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("USER", "root", 1);
	setenv("LOGNAME", "root", 1);
	setenv("SHELL", "/bin/sh", 1);
	if (chdir("/root") < 0 && chdir("/") < 0)
		agent_log("chdir /root: %s", strerror(errno));
}

long long boot_uptime_ms(void)
{
	char b[64];
	int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	/* "SECONDS.CC IDLE": parse by hand, the fraction has two digits */
	long long ms = 0;
	const char *p = b;
	while (*p >= '0' && *p <= '9')
		ms = ms * 10 + (*p++ - '0');
	ms *= 1000;
	if (*p == '.') {
		int scale = 100;
		for (p++; *p >= '0' && *p <= '9' && scale; p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	return ms;
}

/* Finds the block device whose /sys/block/NAME/serial is serial: "/dev/NAME" into dev. */
static int find_disk(const char *serial, char *dev, size_t devlen)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return -errno;
	int r = -ENOENT;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strlen(e->d_name) > 32)
			continue;
		char path[96], got[AGENT_SERIAL_MAX + 2] = "";
		snprintf(path, sizeof path, "/sys/block/%.32s/serial", e->d_name);
		if (agent_read_line(path, got, sizeof got) < 0)
			continue;
		if (strcmp(got, serial) == 0) {
			snprintf(dev, devlen, "/dev/%.32s", e->d_name);
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

/*
 * Drops the guest's cached blocks of dev: a restored snapshot may hold pages
 * of the file that was in the slot when the template was saved.
 */
static int flush_disk(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ioctl(fd, BLKFLSBUF, 0) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Moves the API mounts that exist (with what is below them) into newroot. */
static void move_api_mounts(const char *newroot)
{
	static const char *const moved[] = { "/proc", "/sys", "/dev", "/tmp", "/run" };
	for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
		char dst[128];
		snprintf(dst, sizeof dst, "%s%s", newroot, moved[i]);
		boot_mkdir(dst, 0755);
		/* EINVAL: not a mount point here, nothing to move */
		if (mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0 && errno != EINVAL)
			agent_log("move %s: %s", moved[i], strerror(errno));
	}
}

/*
 * The MOUNT request, parsed: upper and lower serials resolved to devices.
 * Returns NULL or the text of an ERROR.
 */
struct ws_req {
	char upper[48];
	char lower[AGENT_MOUNT_LOWER_MAX][48];
	unsigned nlower;
};

static const char *ws_parse(const uint8_t *kv, size_t len, struct ws_req *w, char *why, size_t whylen)
{
	struct payload_mount m;
	const char *bad = payload_mount_parse(&m, kv, len);
	if (bad)
		return bad;
	memset(w, 0, sizeof *w);
	w->nlower = m.nlower;
	for (unsigned i = 0; i <= m.nlower; i++) {
		const char *serial = i == 0 ? m.upper : m.lower[i - 1];
		int r = find_disk(serial, i == 0 ? w->upper : w->lower[i - 1], sizeof w->upper);
		if (r < 0) {
			snprintf(why, whylen, "MOUNT: no disk with serial %s: %s", serial, strerror(-r));
			return why;
		}
	}
	return NULL;
}

/* Undoes a partly built staging area (best effort). */
static void ws_unstage(void)
{
	umount2(WS_STAGE, MNT_DETACH);
	rmdir(WS_STAGE);
}

/*
 * Mounts the disks and the overlay under WS_STAGE. Returns 0 or -errno with
 * what failed in why; the caller unstages on failure.
 */
static int ws_stage(const struct ws_req *w, char *why, size_t whylen)
{
	char dir[64], opts[WS_OPTS_MAX];
	if (mkdir(WS_STAGE, 0700) < 0 && errno != EEXIST)
		goto fail_errno_stage;
	if (mount("tmpfs", WS_STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0)
		goto fail_errno_stage;
	boot_mkdir(WS_STAGE "/image", 0755);
	boot_mkdir(WS_STAGE "/ws", 0755);
	boot_mkdir(WS_STAGE "/root", 0755);
	/* the pristine image, not the current root (that has the tmpfs upper) */
	if (mount("/dev/vda", WS_STAGE "/image", "ext4", MS_RDONLY, NULL) < 0) {
		int e = errno;
		snprintf(why, whylen, "mount image /dev/vda: %s", strerror(e));
		return -e;
	}
	int r = flush_disk(w->upper);
	if (r == 0 && mount(w->upper, WS_STAGE "/ws", "ext4", 0, "noinit_itable") < 0)
		r = -errno;
	if (r < 0) {
		snprintf(why, whylen, "mount upper %s: %s", w->upper, strerror(-r));
		return r;
	}
	int n = snprintf(opts, sizeof opts, "lowerdir=");
	for (unsigned i = 0; i < w->nlower; i++) {
		snprintf(dir, sizeof dir, WS_STAGE "/l%u", i);
		boot_mkdir(dir, 0755);
		r = flush_disk(w->lower[i]);
		/* noload: never replay a journal on a frozen base (it is read-only everywhere) */
		if (r == 0 && mount(w->lower[i], dir, "ext4", MS_RDONLY, "noload") < 0)
			r = -errno;
		if (r < 0) {
			snprintf(why, whylen, "mount lower %s: %s", w->lower[i], strerror(-r));
			return r;
		}
		n += snprintf(opts + n, sizeof opts - (size_t)n, "%s/upper:", dir);
	}
	n += snprintf(opts + n, sizeof opts - (size_t)n,
		      WS_STAGE "/image,upperdir=" WS_STAGE "/ws/upper,workdir=" WS_STAGE "/ws/work");
	if ((mkdir(WS_STAGE "/ws/upper", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(WS_STAGE "/ws/work", 0755) < 0 && errno != EEXIST)) {
		r = -errno;
		snprintf(why, whylen, "upper/ and work/ on %s: %s", w->upper, strerror(-r));
		return r;
	}
	if (mount("overlay", WS_STAGE "/root", "overlay", 0, opts) < 0) {
		r = -errno;
		snprintf(why, whylen, "mount overlay (%s): %s", opts, strerror(-r));
		return r;
	}
	return 0;
fail_errno_stage:
	r = -errno;
	snprintf(why, whylen, "staging tmpfs %s: %s", WS_STAGE, strerror(-r));
	return r;
}

void boot_ws_mount(struct agent *a, uint32_t chan, const uint8_t *kv, size_t len)
{
	char why[WS_OPTS_MAX + 128];
	struct ws_req w;
	int64_t t0 = agent_now_ms();
	if (a->ws_mounted) {
		agent_send_error(a, chan, "MOUNT: a workspace is mounted already");
		return;
	}
	const char *bad = ws_parse(kv, len, &w, why, sizeof why);
	if (!bad && !a->pid1)
		bad = "MOUNT: only the guest's PID 1 mounts disks";
	if (bad) {
		agent_send_error(a, chan, "%s", bad);
		return;
	}
	int r = ws_stage(&w, why, sizeof why);
	int fd = r < 0 ? -1 : open(WS_STAGE "/ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r == 0 && fd < 0) {
		r = -errno;
		snprintf(why, sizeof why, "open %s/ws: %s", WS_STAGE, strerror(-r));
	}
	if (r < 0) {
		ws_unstage();
		agent_send_error(a, chan, "MOUNT: %s", why);
		return;
	}
	move_api_mounts(WS_STAGE "/root");
	if (chdir(WS_STAGE "/root") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0) {
		/* the API mounts moved already: there is no going back */
		agent_log("MOUNT: switch root: %s", strerror(errno));
		agent_send_error(a, chan, "MOUNT: switch root: %s", strerror(errno));
		close(fd);
		return;
	}
	a->ws_fd = fd;
	a->ws_mounted = true;
	sshd_root_changed(a);
	boot_mkdir("/root", 0700);
	if (chdir("/root") < 0 && chdir("/") < 0)
		agent_log("chdir /root: %s", strerror(errno));
	agent_log("workspace %s mounted over %u lower disk(s) in %lld ms", w.upper, w.nlower,
		  (long long)(agent_now_ms() - t0));
	agent_send(a, MSG_OK, chan, NULL, 0);
}

void boot_ws_freeze(struct agent *a, uint32_t chan, bool freeze)
{
	const char *what = freeze ? "FREEZE" : "THAW";
	if (a->ws_fd < 0) {
		agent_send_error(a, chan, "%s: no workspace mounted", what);
		return;
	}
	if (freeze) {
		sync();
		/* EBUSY: frozen already */
		if (ioctl(a->ws_fd, FIFREEZE, 0) < 0 && errno != EBUSY) {
			agent_send_error(a, chan, "FREEZE: %s", strerror(errno));
			return;
		}
		a->ws_frozen = true;
	} else {
		/* EINVAL: not frozen; THAW is idempotent */
		if (ioctl(a->ws_fd, FITHAW, 0) < 0 && errno != EINVAL) {
			agent_send_error(a, chan, "THAW: %s", strerror(errno));
			return;
		}
		a->ws_frozen = false;
	}
	agent_send(a, MSG_OK, chan, NULL, 0);
}

/*
 * Leaves the workspace fs clean: remounted read-only, the journal is
 * checkpointed, so the host can use the disk as a lower layer (mounted with
 * noload) or copy it without a journal replay.
 */
static void ws_close(struct agent *a)
{
	if (a->ws_fd < 0)
		return;
	if (a->ws_frozen && ioctl(a->ws_fd, FITHAW, 0) < 0 && errno != EINVAL)
		agent_log("thaw workspace: %s", strerror(errno));
	a->ws_frozen = false;
	/* the overlay first: it syncs its upper and stops writing to it */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
		agent_log("remount / read-only: %s", strerror(errno));
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", a->ws_fd);
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
		agent_log("remount workspace read-only: %s (the host will see a journal to replay)", strerror(errno));
	close(a->ws_fd);
	a->ws_fd = -1;
}

void boot_poweroff(struct agent *a)
{
	if (a->pid1) {
		/* writers blocked on a frozen workspace could not die */
		if (a->ws_frozen && ioctl(a->ws_fd, FITHAW, 0) < 0 && errno != EINVAL)
			agent_log("thaw workspace: %s", strerror(errno));
		a->ws_frozen = false;
		kill(-1, SIGKILL);	/* everything but us */
		exec_reap(a);
		sync();
		ws_close(a);
	}
	agent_send(a, MSG_OK, 0, NULL, 0);
	agent_flush(a, 1000);
	if (!a->pid1)
		exit(0);
	/*
	 * Without ACPI (QEMU -M microvm,acpi=off) power-off would only halt the
	 * CPU; the engine runs QEMU with -no-reboot, so a reboot ends the VM.
	 */
	reboot(access("/sys/firmware/acpi", F_OK) == 0 ? RB_POWER_OFF : RB_AUTOBOOT);
	agent_log("reboot: %s", strerror(errno));
	for (;;)
		pause();
}
