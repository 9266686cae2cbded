# SPDX-License-Identifier: MIT
"""Scale-out: three magsd nodes on one PostgreSQL and one object store.

Each node is a "machine" of its own: a network namespace magsnodeK
(tests/integration/nodens.py; the node at 10.231.K.2, the host at 10.231.K.1)
with its own magsd (--db on the shared PostgreSQL, --node-id nodeK, its own
--state-dir, --store s3://... on the shared s3rver), which boots real
sandboxes with their own namespaces and NAT nested inside. PostgreSQL and
the SigV4-checking S3 proxy listen on host-side addresses the namespaces
reach; the tests talk to each node at 10.231.K.2.

  - GET /nodes from every node lists all three, alive, itself marked
  - jobs submitted to one node spread over the nodes and run exactly once
  - a named workspace's jobs run on the node that has its disk
  - a persistent always-on job whose node is SIGKILLed starts again on
    another node from its last synced version; the dead node shows lost
  - exec, the files API, the URL proxy and the SSH address of a job work
    through a node that does not hold it (forwarded to the holder)

No wall-clock speed is asserted: three ASan magsds and their TCG guests share
this machine's cores, so every wait has a generous bound."""
import http.client
import os
import re
import shutil
import tempfile
import time
import uuid

import pytest

from conftest import Magsd, kill_pids, qemu_pids, wait_for, wait_no_qemu
from nodens import NodeNet, node_namespaces, serve_s3_on
from pgserver import PgServer
from test_exec import collect, stream
from test_files import get_bytes, put

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="node namespaces need root")

NODES = 3
NODE_TIMEOUT = 10   # the contract's default --node-timeout
FAILOVER = 180      # lost after NODE_TIMEOUT, then a start on another node (TCG, shared cores)

SERVER = r"""
mkdir -p /tmp/w
echo "served-by-$(hostname)" > /tmp/w/index.html
echo ready
exec httpd -f -p 8080 -h /tmp/w
"""


def system_log(m, jid):
    return "".join(e["data"] for e in m.logs(jid)["logs"] if e["stream"] == "system")


# ---- the shared infrastructure: namespaces, PostgreSQL, S3 -------------------------------------
class Infra:
    def __init__(self):
        self.nets = []
        self.pg = None
        self.s3 = None
        self.s3_proxy = None
        self.tmp = tempfile.mkdtemp(prefix="mags-cl-", dir="/tmp")

    def up(self):
        for k in range(1, NODES + 1):
            self.nets.append(NodeNet(k).up())
        host_addrs = [n.host_addr for n in self.nets]
        self.pg = PgServer(addresses=["127.0.0.1"] + host_addrs).start()
        self._s3_up()
        return self

    def _s3_up(self):
        import s3rver
        self.s3 = s3rver.S3rver(self.tmp)
        try:
            self.s3.start()
        except (RuntimeError, OSError) as e:
            pytest.fail("s3rver: %s (scripts/s3rver.sh installs it from npm)" % e)
        self.s3_endpoint, self.s3_proxy = serve_s3_on(self.s3, self.nets[0].host_addr)

    def down(self):
        if self.s3_proxy:
            self.s3_proxy.shutdown()
            self.s3_proxy.server_close()
        if self.s3:
            self.s3.stop()
        if self.pg:
            self.pg.stop()
        for n in self.nets:
            n.down()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def infra():
    inf = Infra()
    try:
        inf.up()
        yield inf
    finally:
        inf.down()
    left = node_namespaces()
    assert not left, "node namespaces left behind: %s" % left


class Cluster:
    """Three started nodes (Magsd objects, .node_id set) on a fresh database and bucket."""

    def __init__(self, infra, tmp):
        self.infra = infra
        self.tmp = tmp
        self.db = "c" + uuid.uuid4().hex[:12]
        infra.pg.create_db(self.db)
        self.bucket = "b" + uuid.uuid4().hex[:12]
        infra.s3.create_bucket(self.bucket)
        self.nodes = []
        self.killed = set()

    def start(self):
        for net in self.infra.nets:
            sub = tempfile.mkdtemp(prefix="n%d" % net.k, dir=self.tmp)
            args = ["--node-id", "node%d" % net.k, "--store", "s3://%s/cluster" % self.bucket,
                    "--s3-endpoint", self.infra.s3_endpoint, "--pool-size", "1"]
            m = Magsd(sub, max_concurrent=2, extra_args=args, host=net.addr, prefix=net.prefix,
                      db=self.infra.pg.url(net.host_addr, db=self.db))
            m.node_id = "node%d" % net.k
            m.net = net
            for k, v in self.infra.s3.env({}).items():
                if not k.startswith("MAGS_"):
                    m.env[k] = v
            self.nodes.append(m)
            m.start()
        return self

    def node(self, node_id):
        return next(m for m in self.nodes if m.node_id == node_id)

    def others(self, *node_ids):
        return [m for m in self.nodes if m.node_id not in node_ids]

    def alive(self):
        return [m for m in self.nodes if m.node_id not in self.killed]

    def kill(self, m):
        self.killed.add(m.node_id)
        m.kill9()

    def logs(self):
        return "".join("\n---- %s magsd log (tail) ----\n%s" % (m.node_id, m.log()[-3000:]) for m in self.nodes)

    def stop(self):
        """Stops every job (so none moves to another node while they go down), then every node."""
        problems = []
        live = [m for m in self.nodes if m.proc is not None and m.proc.poll() is None]
        if live:
            try:
                m = live[0]
                st, lst = m.api("GET", "/mags-jobs?limit=100")
                stopped = []
                for j in lst.get("jobs", []) if st == 200 else []:
                    if j["status"] in ("queued", "running"):
                        # a job of a killed node that is not lost yet may not stop (502): the
                        # test that killed it has said what it wanted about it
                        st, _ = m.api("POST", "/mags-jobs/%s/stop" % j["id"])
                        if st == 200:
                            stopped.append(j["id"])
                for jid in stopped:
                    m.wait_job(jid, timeout=120)
            except BaseException as e:  # the nodes still have to go down
                problems.append("stopping jobs: %s" % e)
        for m in self.nodes:
            if m.node_id in self.killed and (m.proc is None or m.proc.poll() is not None):
                # a SIGKILLed node that was not started again: its run dirs stay; its QEMUs must not
                left = wait_no_qemu(m.state_dir)
                kill_pids(left)
                if left:
                    problems.append("%s: QEMUs outlived the SIGKILLed magsd: %s" % (m.node_id, left))
                continue
            rc = m.stop()
            try:
                m.check_clean(rc)
            except BaseException as e:  # pytest.fail's exception
                problems.append("%s: %s" % (m.node_id, str(e)[:6000]))
        try:
            self.infra.pg.drop_db(self.db)
        except Exception as e:
            problems.append("drop database: %s" % e)
        if problems:
            pytest.fail("cluster teardown:\n" + "\n".join(problems))


@pytest.fixture
def cluster(infra, mags_tmp):
    c = Cluster(infra, mags_tmp)
    try:
        c.start()
        for m in c.nodes:
            m.wait_template()
        yield c
    finally:
        try:
            c.stop()
        finally:
            for m in c.nodes:
                if m.proc is not None and m.proc.poll() is None:
                    m.kill9()
            kill_pids(qemu_pids(mags_tmp))


def job_or_none(m, jid, errors):
    """GET /mags-jobs/ID on node m: the job, or None with the failure recorded in errors
    (a job's status comes from the database; any alive node must answer it)."""
    st, job = m.api("GET", "/mags-jobs/" + jid)
    if st != 200:
        errors.append((m.node_id, time.strftime("%H:%M:%S"), st, job))
        return None
    return job


def nodes_of(m):
    st, body = m.api("GET", "/nodes")
    assert st == 200, (st, body)
    return {n["id"]: n for n in body["nodes"]}


def wait_nodes(cluster, m, pred, what, timeout=60):
    return wait_for("%s (GET /nodes on %s)" % (what, m.node_id), lambda: (lambda n: n if pred(n) else None)(nodes_of(m)),
                    timeout=timeout)


def exec_on(m, jid, command):
    """POST /mags-jobs/ID/exec on node m: (exit event, stdout, stderr)."""
    st, ev = stream(m, "POST", "/mags-jobs/%s/exec" % jid, {"command": command})
    assert st == 200, (m.node_id, st, ev)
    assert ev[0]["type"] == "start" and ev[-1]["type"] == "exit", ev
    out = collect(ev)
    return ev[-1], out["stdout"], out["stderr"]


def started_lines(cluster, jid):
    """magsd log lines, over all nodes, that say the job's sandbox started (one per start)."""
    pat = re.compile(r"job %s: (restored|cold booted)" % jid)
    return [(m.node_id, line) for m in cluster.nodes for line in m.log().splitlines() if pat.search(line)]


# ---- tests --------------------------------------------------------------------------------------
def test_every_node_lists_all_three_alive(cluster):
    ids = sorted(m.node_id for m in cluster.nodes)
    for m in cluster.nodes:
        nodes = wait_nodes(cluster, m, lambda n: sorted(n) == ids and all(x["state"] == "alive" for x in n.values()),
                           "all three nodes alive")
        for nid, n in nodes.items():
            other = cluster.node(nid)
            assert n["url"] == other.url, (m.node_id, n, other.url)
            assert n["self"] is (nid == m.node_id), (m.node_id, n)
            assert n["capacity"] == 2 and n["running"] >= 0, n
            assert n["heartbeat_at"] and n["started_at"], n
    # any node's token is good on every node (one user table)
    st, me = cluster.nodes[1].api("GET", "/whoami", token=cluster.nodes[0].token)
    assert st == 200 and me["user"] == "default", me


def test_jobs_spread_and_run_once(cluster):
    n1 = cluster.nodes[0]
    jobs = [n1.submit("echo out-%d; sleep 2" % i) for i in range(12)]
    assert all(j["node"] is None or j["node"] in {m.node_id for m in cluster.nodes} for j in jobs), jobs
    done = [n1.wait_job(j["id"], timeout=600) for j in jobs]
    bad = [j for j in done if j["status"] != "completed"]
    assert not bad, "%s%s" % (bad, cluster.logs())
    ran_on = {j["id"]: j["node"] for j in done}
    assert set(ran_on.values()) <= {m.node_id for m in cluster.nodes}, ran_on
    assert len(set(ran_on.values())) >= 2, "all 12 jobs ran on %s%s" % (set(ran_on.values()), cluster.logs())
    for i, j in enumerate(done):
        # each job's output once: its command ran once
        assert n1.output(j["id"]) == "out-%d\n" % i, (j, n1.logs(j["id"]))
        starts = started_lines(cluster, j["id"])
        assert len(starts) == 1 and starts[0][0] == j["node"], (j["id"], j["node"], starts)
        # every node tells the same story about it
        for m in cluster.nodes[1:]:
            other = m.job(j["id"])
            assert other["node"] == j["node"] and other["status"] == "completed", (m.node_id, other)
    # no node piles up database connections (two each, and some slack)
    conns = cluster.infra.pg.connections(cluster.db)
    assert conns <= 4 * len(cluster.nodes), "%d connections to the database" % conns


def test_a_workspace_runs_where_it_ran_last(cluster):
    """Placement prefers the node that has the workspace's disk (it ran it last), whichever
    node the job is submitted to, when that node has room."""
    n1 = cluster.nodes[0]
    first = n1.wait_job(n1.submit("echo one > /root/mark", workspace="sticky")["id"], timeout=300)
    assert first["status"] == "completed" and first["node"], first
    home = first["node"]
    for m in cluster.nodes + cluster.nodes:
        j = m.wait_job(m.submit("cat /root/mark", workspace="sticky")["id"], timeout=300)
        assert j["status"] == "completed" and m.output(j["id"]) == "one\n", (m.node_id, j, m.logs(j["id"]))
        assert j["node"] == home, "submitted to %s, ran on %s, the workspace was on %s" % (m.node_id, j["node"], home)


def test_lost_node_always_on_job_moves_with_its_synced_workspace(cluster):
    n1 = cluster.nodes[0]
    script = "echo boot; if [ -f /root/f ]; then echo \"found $(cat /root/f)\"; fi"
    j = n1.submit(script, workspace="keeper", always_on=True, persist=True)
    jid = j["id"]
    wait_for("stays up", lambda: "stays up" in system_log(n1, jid), timeout=300, magsd=n1, jid=jid)
    first = n1.job(jid)
    holder = cluster.node(first["node"])
    assert first["status"] == "running" and first["persist"] is True, first
    # write through the API, sync the workspace to the store
    ex, out, err = exec_on(holder, jid, "echo synced-data > /root/f && sync && cat /root/f")
    assert ex["exit_code"] == 0 and out == b"synced-data\n", (ex, out, err)
    st, res = n1.api("POST", "/mags-jobs/%s/sync" % jid)
    assert st == 200, (st, res)
    old_qemu = holder.state_dir

    cluster.kill(holder)
    # the holder's sandbox goes with it (no job may run twice)
    left = wait_no_qemu(old_qemu, timeout=30)
    assert not left, "the SIGKILLed node's QEMU still runs: %s" % left
    survivors = cluster.alive()
    watcher = survivors[0]
    wait_nodes(cluster, watcher, lambda n: n[holder.node_id]["state"] == "lost", "%s lost" % holder.node_id,
               timeout=NODE_TIMEOUT + 60)

    errors = []

    def moved():
        job = job_or_none(watcher, jid, errors)
        return job if job and job["status"] == "running" and job["node"] not in (None, holder.node_id) else None
    job = wait_for("the always-on job running on another node", moved, timeout=FAILOVER, magsd=watcher, jid=jid)
    new_holder = cluster.node(job["node"])
    wait_for("second boot", lambda: watcher.output(jid).count("boot") == 2, timeout=FAILOVER,
             magsd=new_holder, jid=jid)
    wait_for("found the synced file", lambda: "found synced-data" in watcher.output(jid), timeout=60,
             magsd=new_holder, jid=jid)
    # read the file through the node that holds neither the old nor the new sandbox
    third = cluster.others(holder.node_id, new_holder.node_id)[0]
    ex, out, err = exec_on(third, jid, "cat /root/f")
    assert ex["exit_code"] == 0 and out == b"synced-data\n", (third.node_id, ex, out, err)
    st, data = get_bytes(third, jid, "/root/f")
    assert (st, data) == (200, b"synced-data\n"), (third.node_id, st, data)
    # its system log says it started again, once
    wait_for("stays up again", lambda: system_log(watcher, jid).count("stays up") == 2, timeout=120,
             magsd=new_holder, jid=jid)
    log = system_log(watcher, jid)
    assert "again" in log, log
    time.sleep(3)
    assert watcher.output(jid).count("boot") == 2, watcher.logs(jid)
    starts = started_lines(cluster, jid)
    assert [n for n, _ in starts] == [holder.node_id, new_holder.node_id], starts
    assert len(job_runners(cluster, jid)) == 1

    # the lost node comes back (same id, same state dir): alive again, and it does not take the job back
    holder.start()
    cluster.killed.discard(holder.node_id)
    wait_nodes(cluster, watcher, lambda n: n[holder.node_id]["state"] == "alive", "%s alive again" % holder.node_id)
    time.sleep(NODE_TIMEOUT / 2)
    job = watcher.job(jid)
    assert job["status"] == "running" and job["node"] == new_holder.node_id, job
    assert watcher.output(jid).count("boot") == 2, watcher.logs(jid)
    assert len(job_runners(cluster, jid)) == 1
    # (last, so that the rest was checked) the job's status stayed readable while its node was dead
    assert not errors, "GET /mags-jobs/ID on %s failed %d times from %s to %s while %s was dead: %s" % (
        watcher.node_id, len(errors), errors[0][1], errors[-1][1], holder.node_id, errors[:2])


def job_runners(cluster, jid):
    """Nodes with a live QEMU for the job (STATE/run/JID/qemu.pid)."""
    from conftest import job_qemu_pids
    return [m.node_id for m in cluster.nodes if job_qemu_pids(m.state_dir, jid)]


def test_lost_node_fails_its_other_jobs(cluster):
    n1 = cluster.nodes[0]
    j = n1.submit("echo started; sleep 600")
    jid = j["id"]
    n1.wait_output(jid, "started", timeout=300)
    holder = cluster.node(n1.job(jid)["node"])
    cluster.kill(holder)
    watcher = cluster.alive()[0]
    errors = []
    job = wait_for("the lost node's job to fail", lambda: (lambda j: j if j and j["status"] in ("completed", "failed")
                                                            else None)(job_or_none(watcher, jid, errors)),
                   timeout=NODE_TIMEOUT + 120, magsd=watcher, jid=jid)
    assert job["status"] == "failed", job
    assert job["error"] == "lost: node %s stopped answering" % holder.node_id, job
    assert job["node"] == holder.node_id, job
    assert watcher.output(jid) == "started\n"
    assert not errors, "GET /mags-jobs/ID on %s failed %d times from %s to %s while %s was dead: %s" % (
        watcher.node_id, len(errors), errors[0][1], errors[-1][1], holder.node_id, errors[:2])


def test_exec_files_and_ssh_through_another_node(cluster):
    n1 = cluster.nodes[0]
    j = n1.submit("echo up", workspace="box", always_on=True, ssh=True)
    jid = j["id"]
    wait_for("stays up", lambda: "stays up" in system_log(n1, jid), timeout=300, magsd=n1, jid=jid)
    job = n1.job(jid)
    holder = cluster.node(job["node"])
    for m in cluster.others(holder.node_id):
        ex, out, err = exec_on(m, jid, "echo via-%s; hostname >/dev/null; exit 3" % m.node_id)
        assert ex["exit_code"] == 3 and out == b"via-%s\n" % m.node_id.encode(), (m.node_id, ex, out, err)
        # by workspace name too
        ex, out, _ = exec_on(m, "box", "echo by-name")
        assert ex["exit_code"] == 0 and out == b"by-name\n", (m.node_id, ex, out)
        data = ("from %s\n" % m.node_id).encode() * 1000
        st, body = put(m, jid, "/root/put-%s" % m.node_id, data)
        assert st in (200, 201), (m.node_id, st, body)
        st, got = get_bytes(m, jid, "/root/put-%s" % m.node_id)
        assert (st, got) == (200, data), (m.node_id, st, got[:200])
        st, lst = m.api("GET", "/mags-jobs/%s/files/list?path=/root" % jid)
        assert st == 200, (m.node_id, st, lst)
        # ... and the holder sees what the other node wrote
        st, got = get_bytes(holder, jid, "/root/put-%s" % m.node_id)
        assert (st, got) == (200, data), (holder.node_id, st)
        # a background process started through this node, waited for and read through it
        st, proc = m.api("POST", "/mags-jobs/%s/exec" % jid, {"command": "echo bg-%s" % m.node_id, "detach": True})
        assert st == 201 and proc["detached"], (m.node_id, st, proc)
        st, w = m.api("GET", "/mags-jobs/%s/processes/%d/wait?timeout=60" % (jid, proc["id"]))
        assert st == 200 and w["status"] == "exited" and w["exit_code"] == 0, (m.node_id, st, w)
        st, ev = stream(m, "GET", "/mags-jobs/%s/processes/%d/output" % (jid, proc["id"]))
        assert st == 200 and collect(ev)["stdout"] == b"bg-%s\n" % m.node_id.encode(), (m.node_id, st, ev)
        st, lst = m.api("GET", "/mags-jobs/%s/processes" % jid)
        assert st == 200 and proc["id"] in [x["id"] for x in lst["processes"]], (m.node_id, st, lst)
        # the SSH address is the holder's, whichever node is asked
        ssh = m.job(jid)["ssh"]
        assert ssh and ssh["host"] == holder.net.addr, (m.node_id, ssh, holder.net.addr)
    # the SSH forwarder at that address answers with the guest's sshd
    import socket
    ssh = n1.job(jid)["ssh"]
    s = socket.create_connection((ssh["host"], ssh["port"]), timeout=120)
    try:
        s.settimeout(120)
        assert s.recv(64).startswith(b"SSH-2.0-")
    finally:
        s.close()


def proxy_get(m, host, tries=100):
    """GET / through node m's URL proxy with Host `host`; retried while the server comes up (502)."""
    port = m.access()["url_port"]
    for _ in range(tries):
        c = http.client.HTTPConnection(m.net.addr, port, timeout=60)
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 502:
            return r.status, body
        time.sleep(0.3)
    return r.status, body


def test_url_proxy_forwards_to_the_holder(cluster):
    n1 = cluster.nodes[0]
    j = n1.submit(SERVER, workspace="web", url=True, port=8080)
    jid = j["id"]
    n1.wait_output(jid, "ready", timeout=300)
    holder = cluster.node(n1.job(jid)["node"])
    st, body = proxy_get(holder, "web.localhost")
    assert st == 200 and body.startswith(b"served-by-"), (holder.node_id, st, body)
    for m in cluster.others(holder.node_id):
        st, got = proxy_get(m, "web.localhost")
        assert (st, got) == (200, body), (m.node_id, st, got)
    # an unknown name is still a 404 on every node
    for m in cluster.nodes:
        st, got = proxy_get(m, "nosuch.localhost", tries=1)
        assert st == 404, (m.node_id, st, got)
