# SPDX-License-Identifier: MIT
"""Sandbox networks (tap mode, magsd as root): egress through NAT, and no way
from a guest to the host's services, magsd's API or another sandbox.

The "internet" is a network namespace the test makes, joined to the host by a
veth pair (198.18.N.1 on the host, 198.18.N.2 inside), with a web server in it.
"""
import os
import random
import socket
import subprocess
import threading

import pytest

from conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tap networking needs root")


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=30)


class Outside:
    """A network namespace standing in for the internet, with an HTTP server."""

    def __init__(self):
        self.n = random.randint(1, 250)
        self.ns = "mtout%d" % self.n
        self.veth = "mto%d" % self.n
        self.host_ip = "198.18.%d.1" % self.n
        self.ip = "198.18.%d.2" % self.n
        self.server = None

    def up(self, tmp):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "addr", "add", self.host_ip + "/24", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        sh("ip", "-n", self.ns, "addr", "add", self.ip + "/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        www = os.path.join(tmp, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "hello.txt"), "w") as f:
            f.write("hello from outside\n")
        self.port = 8000 + self.n
        self.log = open(os.path.join(tmp, "outside-http.log"), "w+")
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "/usr/bin/python3", "-m", "http.server", str(self.port),
             "--bind", self.ip], cwd=www, stdout=self.log, stderr=self.log)
        for _ in range(100):
            if sh("ip", "netns", "exec", self.ns, "/usr/bin/python3", "-c",
                  "import socket; socket.create_connection(('%s', %d), 1)" % (self.ip, self.port),
                  check=False).returncode == 0:
                return self
            import time
            time.sleep(0.1)
        raise RuntimeError("outside web server did not start")

    def down(self):
        if self.server:
            self.server.kill()
            self.server.wait()
        sh("ip", "netns", "del", self.ns, check=False)
        sh("ip", "link", "del", self.veth, check=False)


@pytest.fixture
def outside(mags_tmp):
    o = Outside()
    try:
        yield o.up(mags_tmp)
    finally:
        o.down()


class HostService:
    """A TCP service on the host, on every address (0.0.0.0)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def net_claims(magsd):
    d = "/run/mags/net"
    out = []
    for name in os.listdir(d):
        with open(os.path.join(d, name)) as f:
            if f.read().strip() == str(magsd.proc.pid):
                out.append(int(name))
    return out


def ns_addrs(idx):
    """The host's and the namespace's ends of sandbox namespace idx's veth."""
    base = (10 << 24) | (200 << 16) | (idx << 2)
    fmt = lambda a: "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)
    return fmt(base + 1), fmt(base + 2)


def probe_script(targets):
    """A guest script printing 'ADDR:PORT OPEN|CLOSED' for each target."""
    lines = ["for t in %s; do" % " ".join("%s:%d" % t for t in targets),
             "  if nc -w 2 ${t%:*} ${t#*:} </dev/null >/dev/null 2>&1; then echo \"$t OPEN\"; "
             "else echo \"$t CLOSED\"; fi",
             "done"]
    return "\n".join(lines)


def test_guest_network_identity(magsd):
    j = magsd.submit("ip -4 addr show eth0; ip route; cat /etc/resolv.conf")
    j = magsd.wait_job(j["id"])
    out = magsd.output(j["id"])
    assert j["exit_code"] == 0, (j, out)
    assert "172.16.0.2/24" in out, out
    assert "default via 172.16.0.1" in out, out
    assert "network: tap" in magsd.log()


def test_egress_through_nat(magsd, outside):
    j = magsd.submit("wget -q -O - http://%s:%d/hello.txt" % (outside.ip, outside.port))
    j = magsd.wait_job(j["id"])
    assert j["exit_code"] == 0, (j, magsd.output(j["id"], "stderr"))
    assert magsd.output(j["id"]) == "hello from outside\n"
    # the outside saw the host's address, not the guest's: NAT
    outside.log.flush()
    outside.log.seek(0)
    seen = outside.log.read()
    assert outside.host_ip in seen and "172.16.0.2" not in seen, seen


def test_guest_cannot_reach_host_or_api(magsd_factory, outside):
    # magsd's API on every address, so the guest could try it through any of them
    magsd = magsd_factory(listen_any=True)
    svc = HostService()
    try:
        api_port = magsd.port
        # the host's service and magsd's API are reachable from the outside namespace (the probe works) ...
        for port in (svc.port, api_port):
            r = sh("ip", "netns", "exec", outside.ns, "/usr/bin/python3", "-c",
                   "import socket; socket.create_connection(('%s', %d), 3); print('OPEN')" % (outside.host_ip, port),
                   check=False)
            assert "OPEN" in r.stdout, r.stderr
        before = svc.accepted
        # ... but not from a sandbox, by any host address
        host_addrs = [outside.host_ip] + [ns_addrs(i)[0] for i in net_claims(magsd)]
        targets = [(a, svc.port) for a in host_addrs] + [(a, api_port) for a in host_addrs]
        targets += [("172.16.0.1", svc.port), ("172.16.0.1", api_port)]
        j = magsd.submit(probe_script(targets))
        j = magsd.wait_job(j["id"])
        out = magsd.output(j["id"])
        assert j["exit_code"] == 0, (j, out)
        assert out.count("CLOSED") == len(targets), out
        assert "OPEN" not in out, out
        assert svc.accepted == before + 0
    finally:
        svc.close()


def test_sandboxes_cannot_reach_each_other(magsd):
    a = magsd.submit("mkdir -p /tmp/w && echo served-by-a > /tmp/w/index.html && echo ready && "
                     "exec httpd -f -p 8080 -h /tmp/w", url=True, port=8080)
    magsd.wait_output(a["id"], "ready")
    # positive control: the URL proxy reaches A's port
    acc = magsd.access()
    import urllib.request
    label = magsd.job(a["id"])["url"].split("//")[1].split(".")[0]
    req = urllib.request.Request("http://127.0.0.1:%d/" % acc["url_port"], headers={"Host": "%s.localhost" % label})
    for _ in range(50):
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.read() == b"served-by-a\n"
                break
        except OSError:
            import time
            time.sleep(0.2)
    else:
        pytest.fail("A's server never answered through the proxy")
    # B tries every sandbox namespace's addresses of this magsd, and its own gateway
    targets = []
    for i in net_claims(magsd):
        h, n = ns_addrs(i)
        targets += [(h, 8080), (n, 8080)]
    targets.append(("172.16.0.1", 8080))
    b = magsd.submit(probe_script(targets))
    b = magsd.wait_job(b["id"])
    out = magsd.output(b["id"])
    assert b["exit_code"] == 0, (b, out)
    assert "OPEN" not in out and out.count("CLOSED") == len(targets), out
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % a["id"])
    assert st == 200
    magsd.wait_job(a["id"])


def test_namespaces_removed_with_sandboxes(magsd):
    j = magsd.submit("true")
    magsd.wait_job(j["id"])

    def missing():
        # the pool claims a slot just before it adds the namespace: look again until a moment is settled
        names = sh("ip", "netns", "list").stdout
        return [i for i in net_claims(magsd) if "mags-%d" % i not in names]

    wait_for("every claimed slot has its namespace (missing: %r)" % (missing(),), lambda: not missing(), timeout=15)
    # after the stop check_clean asserts no claim of this magsd is left
