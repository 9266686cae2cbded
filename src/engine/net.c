// SPDX-License-Identifier: MIT
/*
 * Sandbox networks; see net.h. The host side is set up with ip(8) and nft(8)
 * (one shell script per namespace, run when a VM is started: for pooled VMs
 * that is before any job needs them) and torn down in C.
 */
#include "net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define NETNS_DIR "/run/netns"
#define NS_PREFIX "mags-"

/* the host's rules: a sandbox reaches the outside, never the host or another sandbox */
/* slirp's network is the tap one, so the guest's settings are the same in both */
#define NET_USER_NETDEV "user,id=n0,net=172.16.0.0/24,host=" AGENT_NET_GATEWAY ",dns=" NET_USER_DNS
#define NET_USER_DNS "172.16.0.3"

/* the host's rules: a sandbox reaches the outside, never the host or another sandbox */
static const char host_rules[] =
	"table inet mags\n"
	"delete table inet mags\n"
	"table inet mags {\n"
	"  chain input {\n"
	"    type filter hook input priority -10; policy accept;\n"
	"    iifname \"mg*\" ct state established,related accept\n"
	"    iifname \"mg*\" drop\n"
	"  }\n"
	"  chain forward {\n"
	"    type filter hook forward priority -10; policy accept;\n"
	"    iifname \"mg*\" oifname \"mg*\" drop\n"
	"    iifname \"mg*\" ip daddr 169.254.0.0/16 drop\n"
	"    iifname \"mg*\" accept\n"
	"    oifname \"mg*\" ct state established,related accept\n"
	"    oifname \"mg*\" drop\n"
	"  }\n"
	"  chain post {\n"
	"    type nat hook postrouting priority 100; policy accept;\n"
	"    ip saddr 10.200.0.0/16 oifname != \"mg*\" masquerade\n"
	"  }\n"
	"}\n";

/*
 * One namespace: $1 index, $2 host veth address, $3 namespace veth address.
 * The tap's MAC is fixed so the guest's ARP entry for its gateway, taken in
 * the template snapshot, holds in every namespace.
 */
static const char ns_script[] =
	"set -e\n"
	"ns=" NS_PREFIX "$1 h=mg$1\n"
	"ip netns add $ns\n"
	"ip link add $h type veth peer name eth0 netns $ns\n"
	"ip addr add $2/30 dev $h\n"
	"ip link set $h up\n"
	"ip -n $ns -batch - <<EOF\n"
	"link set lo up\n"
	"addr add $3/30 dev eth0\n"
	"link set eth0 up\n"
	"route add default via $2\n"
	"tuntap add tap0 mode tap\n"
	"link set tap0 address " AGENT_NET_GATEWAY_MAC "\n"
	"addr add " AGENT_NET_GATEWAY "/24 dev tap0\n"
	"link set tap0 up\n"
	"EOF\n"
	"ip netns exec $ns nft -f - <<EOF\n"
	"table ip mags {\n"
	"  chain input { type filter hook input priority 0; policy accept;\n"
	"    iifname \"tap0\" ct state established,related accept\n"
	"    iifname \"tap0\" drop\n"
	"  }\n"
	"  chain post { type nat hook postrouting priority 100; policy accept;\n"
	"    oifname \"eth0\" masquerade\n"
	"  }\n"
	"}\n"
	"EOF\n"
	"ip netns exec $ns sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'\n";

const char *net_netdev(enum net_mode m)
{
	return m == NET_TAP ? "tap,id=n0,ifname=tap0,script=no,downscript=no" : m == NET_USER ? NET_USER_NETDEV : NULL;
}

const char *net_device(void)
{
	return "virtio-net-device,netdev=n0,mac=" AGENT_NET_GUEST_MAC;
}

const char *net_mode_name(enum net_mode m)
{
	return m == NET_TAP ? "tap" : m == NET_USER ? "user" : "none";
}

static bool have(const char *prog)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char p[64];
		snprintf(p, sizeof p, "%s/%s", dirs[i], prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* Runs /bin/sh -c script with args and stdin text; its stderr comes back in err. */
static int run_sh(const char *script, const char *const args[], const char *input, struct err *err)
{
	char errpath[] = "/tmp/mags-net.XXXXXX";
	int efd = mkstemp(errpath);
	if (efd < 0)
		return err_set(err, errno, "mkstemp");
	unlink(errpath);
	int in[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		close(efd);
		return err_set(err, errno, "pipe");
	}
	const char *argv[8] = { "/bin/sh", "-c", script, "sh" };
	int n = 4;
	for (int i = 0; args && args[i] && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(efd, 1);
		dup2(efd, 2);
		static const char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		execve("/bin/sh", (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	close(in[0]);
	if (pid > 0 && input) {
		size_t len = strlen(input), off = 0;
		while (off < len) {
			ssize_t w = write(in[1], input + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	close(in[1]);
	int st = 0, r = 0;
	if (pid < 0)
		r = err_set(err, errno, "fork");
	else if (waitpid(pid, &st, 0) < 0)
		r = err_set(err, errno, "waitpid");
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char msg[512] = "";
		ssize_t got = pread(efd, msg, sizeof msg - 1, 0);
		msg[got > 0 ? got : 0] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		r = err_set(err, 500, "%s", *msg ? msg : "network setup failed");
	}
	close(efd);
	return r;
}

/* Removes /run/netns/mags-IDX as `ip netns del` does. */
static void ns_unmount(int idx)
{
	char p[64];
	snprintf(p, sizeof p, NETNS_DIR "/" NS_PREFIX "%d", idx);
	umount2(p, MNT_DETACH);
	unlink(p);
}

/* ... and the claim file. */
static void ns_remove(int idx)
{
	ns_unmount(idx);
	char p[64];
	snprintf(p, sizeof p, NET_RUN_DIR "/%d", idx);
	unlink(p);
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Claim file NET_RUN_DIR/IDX: our pid; a dead owner's claim is taken over. */
static pid_t claim_owner(int idx)
{
	char p[64], *txt = NULL;
	size_t len = 0;
	snprintf(p, sizeof p, NET_RUN_DIR "/%d", idx);
	if (fs_read_file(p, 64, &txt, &len, NULL) < 0)
		return 0;
	pid_t pid = (pid_t)atoi(txt);
	free(txt);
	return pid;
}

static void remove_stale(void)
{
	DIR *d = opendir(NET_RUN_DIR);
	if (!d)
		return;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		char *end;
		long idx = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || idx < 0 || idx >= NET_MAX)
			continue;
		if (!pid_alive(claim_owner((int)idx))) {
			ns_remove((int)idx);
			n++;
		}
	}
	closedir(d);
	if (n)
		log_info("network: removed %d namespace%s a stopped magsd left behind", n, n == 1 ? "" : "s");
}

/* Name servers from the host's resolv.conf a guest can use (not loopback ones). */
static void read_dns(struct net_config *nc)
{
	char *txt = NULL;
	size_t len = 0;
	if (fs_read_file("/etc/resolv.conf", 1 << 16, &txt, &len, NULL) < 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char addr[46];
		struct in_addr in;
		if (sscanf(line, " nameserver %45s", addr) != 1 || inet_pton(AF_INET, addr, &in) != 1)
			continue;
		if ((ntohl(in.s_addr) >> 24) == 127 || nc->ndns >= NET_DNS_MAX)
			continue;
		snprintf(nc->dns[nc->ndns++], sizeof nc->dns[0], "%s", addr);
	}
	free(txt);
}

static int tap_possible(char *why, size_t n)
{
	if (geteuid() != 0)
		return snprintf(why, n, "magsd is not root"), 0;
	if (!have("ip") || !have("nft"))
		return snprintf(why, n, "ip or nft missing (apt-get install iproute2 nftables)"), 0;
	if (access("/dev/net/tun", R_OK | W_OK) != 0)
		return snprintf(why, n, "/dev/net/tun: %s", strerror(errno)), 0;
	return 1;
}

static int tap_prepare(struct err *err)
{
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	bool fwd = fd >= 0 && write(fd, "1\n", 2) == 2;
	if (fd >= 0)
		close(fd);
	if (!fwd)
		log_warn("network: could not enable IPv4 forwarding; sandboxes will have no egress");
	int r;
	if ((r = fs_mkdir_p(NET_RUN_DIR, 0755)) < 0 || (r = fs_mkdir_p(NETNS_DIR, 0755)) < 0)
		return err_set(err, -r, "create %s and %s", NET_RUN_DIR, NETNS_DIR);
	r = run_sh("exec nft -f -", NULL, host_rules, err);
	if (r < 0)
		return err_wrap(err, "install the host's nftables rules");
	remove_stale();
	return 0;
}

int net_init(struct net_config *nc, const char *mode, struct err *err)
{
	memset(nc, 0, sizeof *nc);
	char why[120] = "";
	if (!mode || !strcmp(mode, "auto")) {
		nc->mode = tap_possible(why, sizeof why) ? NET_TAP : NET_USER;
		snprintf(nc->why, sizeof nc->why, "%s", nc->mode == NET_TAP ? "magsd is root" : why);
	} else if (!strcmp(mode, "tap")) {
		if (!tap_possible(why, sizeof why))
			return err_set(err, 400, "--net tap: %s", why);
		nc->mode = NET_TAP;
		snprintf(nc->why, sizeof nc->why, "requested with --net tap");
	} else if (!strcmp(mode, "user") || !strcmp(mode, "none")) {
		nc->mode = !strcmp(mode, "user") ? NET_USER : NET_NONE;
		snprintf(nc->why, sizeof nc->why, "requested with --net %s", mode);
	} else {
		return err_set(err, 400, "--net: expected auto, tap, user or none, not \"%s\"", mode);
	}
	if (nc->mode == NET_TAP && tap_prepare(err) < 0)
		return -1;
	if (nc->mode == NET_TAP)
		read_dns(nc);
	else if (nc->mode == NET_USER)
		snprintf(nc->dns[nc->ndns++], sizeof nc->dns[0], "%s", NET_USER_DNS);
	return 0;
}

/* Claims a free index: O_EXCL on its file, taking over claims of dead owners. */
static int claim(struct err *err)
{
	static unsigned next;
	if (!next)
		next = (unsigned)getpid() * 7919u;
	char txt[24];
	int tl = snprintf(txt, sizeof txt, "%d\n", (int)getpid());
	for (int tries = 0; tries < NET_MAX; tries++) {
		int idx = (int)(__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % NET_MAX);
		char p[64];
		snprintf(p, sizeof p, NET_RUN_DIR "/%d", idx);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno == EEXIST && !pid_alive(claim_owner(idx))) {
			ns_remove(idx);
			fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		}
		if (fd < 0)
			continue;
		ssize_t w = write(fd, txt, (size_t)tl);
		close(fd);
		if (w != tl) {
			unlink(p);
			return err_set(err, EIO, "write %s", p);
		}
		return idx;
	}
	return err_set(err, ENOSPC, "no free network namespace (all %d in use)", NET_MAX);
}

int net_ns_create(struct net_ns *ns, struct err *err)
{
	ns->idx = -1;
	ns->fd = -1;
	int idx = claim(err);
	if (idx < 0)
		return -1;
	/* 10.200.0.0/16 in /30s: .1 the host's end, .2 the namespace's */
	unsigned base = (10u << 24) | (200u << 16) | ((unsigned)idx << 2);
	char sidx[16], host[20], inner[20];
	snprintf(sidx, sizeof sidx, "%d", idx);
	snprintf(host, sizeof host, "%u.%u.%u.%u", 10, 200, ((base + 1) >> 8) & 255, (base + 1) & 255);
	snprintf(inner, sizeof inner, "%u.%u.%u.%u", 10, 200, ((base + 2) >> 8) & 255, (base + 2) & 255);
	const char *args[] = { sidx, host, inner, NULL };
	ns_unmount(idx); /* a dead owner's leftover: start clean */
	char p[64];
	if (run_sh(ns_script, args, NULL, err) < 0) {
		ns_remove(idx);
		return err_wrap(err, "set up network namespace " NS_PREFIX "%d", idx);
	}
	snprintf(p, sizeof p, NETNS_DIR "/" NS_PREFIX "%d", idx);
	ns->fd = open(p, O_RDONLY | O_CLOEXEC);
	if (ns->fd < 0) {
		int r = err_set(err, errno, "open %s", p);
		ns_remove(idx);
		return r;
	}
	ns->idx = idx;
	return 0;
}

void net_ns_destroy(struct net_ns *ns)
{
	if (ns->fd >= 0)
		close(ns->fd);
	if (ns->idx >= 0)
		ns_remove(ns->idx);
	ns->fd = -1;
	ns->idx = -1;
}

/* A socket created inside netns_fd; the calling thread goes back to its own namespace. */
static int socket_in(int netns_fd, struct err *err)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return err_set(err, errno, "open /proc/thread-self/ns/net");
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		int r = err_set(err, errno, "enter the sandbox's network namespace");
		close(self);
		return r;
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int e = errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* this thread would keep serving from inside a sandbox's network: never */
		log_error("network: cannot return to magsd's namespace: %s", strerror(errno));
		abort();
	}
	close(self);
	if (s < 0)
		return err_set(err, e, "socket");
	return s;
}

int net_connect(int netns_fd, int port, int timeout_ms, struct err *err)
{
	int s = socket_in(netns_fd, err);
	if (s < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, AGENT_NET_GUEST, &sa.sin_addr);
	int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
	if (r < 0 && errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = s, .events = POLLOUT };
		r = poll(&pfd, 1, timeout_ms);
		if (r == 0) {
			close(s);
			return err_set(err, ETIMEDOUT, "the sandbox did not answer on port %d", port);
		}
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		errno = soerr;
		r = soerr ? -1 : 0;
	}
	if (r < 0) {
		int e = errno;
		close(s);
		if (e == ECONNREFUSED)
			return err_set(err, 502, "nothing in the sandbox listens on port %d", port);
		return err_set(err, e, "connect to the sandbox's port %d", port);
	}
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
	return s;
}
