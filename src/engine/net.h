/* SPDX-License-Identifier: MIT */
/*
 * Sandbox networks. Every guest has the same address, MAC and gateway
 * (AGENT_NET_* in proto.h), set before the template snapshot, so one
 * snapshot fits every sandbox. What makes each sandbox's network its own is
 * on the host:
 *
 *   tap  (magsd is root): QEMU runs inside a network namespace of its own,
 *        mags-N, holding the guest's tap0 (172.16.0.1/24) and the inner end
 *        of a veth pair; the host end mgN gets 10.200.x.y/30. The namespace
 *        masquerades the guest behind its veth address and drops new
 *        connections from the guest to itself; the host (table inet mags)
 *        masquerades 10.200.0.0/16 on the way out, drops everything a sandbox
 *        sends to the host itself, between sandboxes and to link-local
 *        addresses (cloud metadata). magsd reaches a guest port by opening
 *        the socket inside the namespace (net_connect): no port is published
 *        anywhere.
 *   user (not root): QEMU's user-mode network (slirp). Egress works, but
 *        slirp connects from the host, so the guest can reach the host's
 *        services; magsd says so in its log. Guest ports are reached through
 *        QEMU port forwards from 127.0.0.1 (vm_forward_port).
 *   none: no network device at all.
 *
 * Namespace numbers are claimed with O_EXCL files in NET_RUN_DIR holding the
 * owner's pid, so several magsd on one host never share one, and a dead
 * magsd's namespaces are removed by the next one that starts.
 */
#ifndef MAGS_NET_H
#define MAGS_NET_H

#include <stdbool.h>

#include "err.h"

#define NET_RUN_DIR "/run/mags/net"
#define NET_MAX 16384		/* namespaces per host: 10.200.0.0/16 in /30s */
#define NET_DNS_MAX 3

enum net_mode {
	NET_NONE,
	NET_USER,
	NET_TAP,
};

struct net_config {
	enum net_mode mode;
	char why[160];			/* why this mode, for the log */
	int ndns;			/* name servers given to guests */
	char dns[NET_DNS_MAX][46];
};

/* One sandbox's namespace (tap mode). */
struct net_ns {
	int idx;			/* -1: none */
	int fd;				/* open /run/netns/mags-IDX, -1: none */
};

/*
 * Picks the mode ("auto", "tap", "user" or "none"; auto = tap when root and
 * ip, nft and /dev/net/tun are there), prepares the host for tap (forwarding,
 * the nftables table, stale namespaces) and reads the host's name servers.
 */
int net_init(struct net_config *nc, const char *mode, struct err *err);
const char *net_mode_name(enum net_mode m);
/* QEMU's -netdev value for the mode (NULL: none) and the -device value. */
const char *net_netdev(enum net_mode m);
const char *net_device(void);
/* Creates a namespace with its tap, veth and NAT. */
int net_ns_create(struct net_ns *ns, struct err *err);
/* Removes it (QEMU must be gone or going; the kernel frees it with its last user). */
void net_ns_destroy(struct net_ns *ns);
/*
 * A TCP connection to the guest's port, opened inside netns_fd; waits up to
 * timeout_ms. Returns the connected fd, or -1 with err set (code 502 when
 * nothing listens, ETIMEDOUT when the guest does not answer).
 */
int net_connect(int netns_fd, int port, int timeout_ms, struct err *err);

#endif
