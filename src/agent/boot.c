// SPDX-License-Identifier: MIT
/*
 * PID 1 duties of mags-agent. The kernel mounts the image read-only from
 * /dev/vda; boot_pid1() mounts the API filesystems and turns that into a
 * writable root: an overlay (lower = the image, upper = a tmpfs) is mounted on
 * /run/root inside a scratch tmpfs, /proc /sys /dev move into it, and it is
 * moved onto / and chrooted into (as switch_root does). Then /tmp, /run,
 * /dev/pts, /dev/shm, the hostname and lo. Everything here runs once per cold
 * boot; a restored snapshot starts after it, so it may be slow-ish but must
 * never fail hard: a guest without a writable root still runs jobs.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_SCRATCH "/run"		/* tmpfs holding the overlay's upper and work dirs */
#define BOOT_NEWROOT "/run/root"	/* where the overlay is assembled */

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

static void boot_lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			agent_log("lo up: %s", strerror(errno));
	}
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
	boot_lo_up();
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

void boot_poweroff(struct agent *a)
{
	if (a->pid1) {
		kill(-1, SIGKILL);	/* everything but us */
		exec_reap(a);
		sync();
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
