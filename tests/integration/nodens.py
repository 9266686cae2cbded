# SPDX-License-Identifier: MIT
"""Node namespaces: one network namespace per magsd "machine" of a test cluster.

    from nodens import NodeNet
    net = NodeNet(1).up()     # netns magsnode1, veth mnode1h (host, 10.231.1.1/24)
                              #   <-> eth0 (inside, 10.231.1.2/24), default route via the host
    net.prefix                # ["ip", "netns", "exec", "magsnode1"]: run a command inside
    net.addr, net.host_addr   # "10.231.1.2", "10.231.1.1"
    net.down()                # removes the namespace and the veth (also at exit)

Each node gets its own loopback, its own nftables and its own sandbox NAT, as
separate machines would; the nodes reach each other (10.231.J.2) through the
host, which forwards between the veths (net.ipv4.ip_forward=1), and reach
services on the host at any host-side address 10.231.J.1. The host-side names
(mnodeKh) stay clear of magsd's own "mg*" sandbox interfaces, which magsd's
nftables rules on the host filter.

Namespaces are named magsnodeK and their addresses are fixed, so two test
runs on one machine (a CI checkout beside a work tree) must not use the same
K at once: up() takes an exclusive lock, /run/lock/magsnodeK.lock (flock, so
it goes with the process), waiting for the other run to finish with it. It
then removes a leftover of the same name (a run killed before its teardown:
it held the lock, and its death let go of it).
"""
import atexit
import fcntl
import os
import subprocess
import time

LOCK_WAIT = 1800  # seconds: another run's whole cluster module

PREFIX = "magsnode"
SUBNET = "10.231"


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def namespaces():
    """Names of the network namespaces `ip netns list` shows."""
    return [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()]


def node_namespaces():
    return [n for n in namespaces() if n.startswith(PREFIX)]


class NodeNet:
    def __init__(self, k):
        assert 1 <= k <= 250
        self.k = k
        self.name = "%s%d" % (PREFIX, k)
        self.veth = "mnode%dh" % k
        self.host_addr = "%s.%d.1" % (SUBNET, k)
        self.addr = "%s.%d.2" % (SUBNET, k)
        self.prefix = ["ip", "netns", "exec", self.name]
        self.is_up = False
        self.lock_fd = None

    def _lock(self):
        os.makedirs("/run/lock", exist_ok=True)
        fd = os.open("/run/lock/%s.lock" % self.name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.time() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    os.close(fd)
                    raise RuntimeError("%s: another test run held it for %d s" % (self.name, LOCK_WAIT))
                time.sleep(1)
        self.lock_fd = fd

    def up(self):
        if self.lock_fd is None:
            self._lock()
        self.down(force=True)
        sh("ip", "netns", "add", self.name)
        self.is_up = True
        atexit.register(self.down)
        try:
            sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
            sh("ip", "addr", "add", self.host_addr + "/24", "dev", self.veth)
            sh("ip", "link", "set", self.veth, "up")
            n = ["ip", "-n", self.name]
            sh(*n, "link", "set", "lo", "up")
            sh(*n, "addr", "add", self.addr + "/24", "dev", "eth0")
            sh(*n, "link", "set", "eth0", "up")
            sh(*n, "route", "add", "default", "via", self.host_addr)
            # the host forwards between the nodes' veths
            sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        except Exception:
            self.down()
            raise
        return self

    def run(self, *args, check=True):
        """Runs a command inside the namespace; returns the CompletedProcess."""
        return sh(*(self.prefix + list(args)), check=check)

    def down(self, force=False):
        if not self.is_up and not force:
            return
        self.is_up = False
        # deleting the namespace takes its end of the veth, and so the pair, with it
        sh("ip", "netns", "del", self.name, check=False)
        sh("ip", "link", "del", self.veth, check=False)
        if self.lock_fd is not None and not force:
            os.close(self.lock_fd)  # lets go of the lock
            self.lock_fd = None


def serve_s3_on(srv, addr):
    """s3rver (tests/integration/s3rver.py) and its SigV4 proxy listen on 127.0.0.1 only,
    which the node namespaces cannot reach: a second proxy, with the same checks and
    the same lists of requests and refusals, on host address `addr` (a node's
    host_addr: every namespace reaches it through its default route). Returns
    (endpoint URL, server); server.shutdown() and server_close() end it."""
    import http.server
    import threading
    import s3rver
    handler = type("Handler", (s3rver._Proxy,), {"upstream": ("127.0.0.1", srv.port)})
    server = http.server.ThreadingHTTPServer((addr, 0), handler)
    server.daemon_threads = True
    server.rejected = srv.rejected
    server.requests = srv.requests
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://%s:%d" % (addr, server.server_address[1]), server
