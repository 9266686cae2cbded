# SPDX-License-Identifier: MIT
"""The QEMU jail (issue 9, src/engine/jail.c, docs/security.md).

As root magsd jails every QEMU: its own uid, new pid/mount/IPC/UTS
namespaces, a cgroup with memory, pids and CPU limits, rlimits,
no_new_privs and QEMU's seccomp filter; its mount namespace holds only the
system dirs read-only, the guest dir, its run dir and (snapshot VMs) its RAM
file, and disks come as descriptors. The first test reads all of that from
/proc of a running sandbox's QEMU. The second runs hostile guests (a fork
bomb, a memory hog, a disk filler, a CPU spinner) beside a well-behaved
neighbour, whose job must complete with its whole output while magsd keeps
answering. Network reach (the API, the host's loopback, other sandboxes) is
covered by test_network.py.
"""
import os
import time

import pytest

from conftest import job_qemu_pids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the jail needs root (magsd runs QEMU as other uids)")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cgroup_of(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        return {parts[1]: parts[2] for parts in (line.rstrip("\n").split(":", 2) for line in f)}


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_qemu_runs_jailed(magsd):
    job = magsd.submit("echo up; sleep 600")
    magsd.wait_output(job["id"], "up")
    pids = job_qemu_pids(magsd.state_dir, job["id"])
    assert pids, "no QEMU for the job"
    pid = pids[0]
    st = proc_status(pid)
    uid = int(st["Uid"].split()[0])
    assert uid >= 900000, st["Uid"]  # one of magsd's VM uids, not root
    assert st["Uid"].split() == [str(uid)] * 4 and int(st["Gid"].split()[0]) != 0, st
    assert st["NoNewPrivs"] == "1", st
    assert st["Seccomp"] == "2", st  # QEMU's -sandbox filter
    assert st["CapEff"] == "0000000000000000", st
    # its own namespaces, except the network one, which is the sandbox's
    for ns in ("pid", "mnt", "ipc", "uts"):
        assert os.readlink("/proc/%d/ns/%s" % (pid, ns)) != os.readlink("/proc/self/ns/%s" % ns), ns
    assert st["NSpid"].split()[-1] == "1", st["NSpid"]  # pid 1 of its pid namespace
    # its cgroup, with limits: 512 MiB guest + 512 MiB overhead, 256 tasks, one CPU
    cg = cgroup_of(pid)
    if "memory" in cg:  # cgroup v1
        base = "/sys/fs/cgroup"
        assert "/mags/vm-" in cg["memory"], cg
        assert int(read(base + "/memory" + cg["memory"] + "/memory.limit_in_bytes")) == 1024 << 20
        assert read(base + "/pids" + cg["pids"] + "/pids.max") == "256"
        assert read(base + "/cpu" + cg["cpu"] + "/cpu.cfs_quota_us") == "100000"
    else:  # v2
        path = "/sys/fs/cgroup" + cg[""]
        assert "/mags/vm-" in path, cg
        assert int(read(path + "/memory.max")) == 1024 << 20
        assert read(path + "/pids.max") == "256"
        assert read(path + "/cpu.max") == "100000 100000"
    # rlimits
    limits = read("/proc/%d/limits" % pid)
    assert any(l.startswith("Max core file size") and l.split()[4] == "0" for l in limits.splitlines()), limits
    assert any(l.startswith("Max open files") and l.split()[3] == "1024" for l in limits.splitlines()), limits
    # its root: system dirs, the guest dir, its run dir; not magsd's state or the host's home
    root = "/proc/%d/root" % pid
    assert os.path.isdir(root + "/usr/bin") and os.path.isdir(root + "/proc/1")
    assert os.path.exists(root + os.path.join(magsd.state_dir, "run", job["id"], "agent.sock")) or \
        os.listdir(root + os.path.join(magsd.state_dir, "run")), "its run dir is missing from its root"
    assert not os.path.exists(root + os.path.join(magsd.state_dir, "mags.db")), "magsd's database is visible"
    assert not os.path.exists(root + "/root/.ssh") and not os.path.exists(root + "/home"), os.listdir(root)
    assert sorted(os.listdir(root + "/proc/1/task")) and len(os.listdir(root + "/proc")) < 80  # its own pid ns
    # disks are descriptors, not paths it could reopen
    links = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
    assert any(l.endswith(".img") for l in links), links
    magsd.api("POST", "/mags-jobs/%s/stop" % job["id"])
    magsd.wait_job(job["id"], ("completed", "failed"))


HOSTILE = {
    # more processes than the guest can hold: its kernel refuses forks, nothing leaves the VM
    "fork bomb": "b() { b | b & }; b; sleep 20",
    # past the guest's RAM (512 MiB): the guest's OOM killer ends it
    "memory hog": "mkdir -p /mnt/m && mount -t tmpfs -o size=2g tmpfs /mnt/m && "
                  "dd if=/dev/zero of=/mnt/m/f bs=1M count=1500; echo hog-done",
    # writes as fast as it can into its workspace disk until the timeout
    "disk filler": "dd if=/dev/zero of=/root/fill bs=1M count=100000; echo filler-done",
    # a core's worth of spinning, twice over
    "cpu spinner": "while :; do :; done & while :; do :; done",
}


def test_hostile_guests_do_not_disturb_a_neighbour(magsd_factory):
    m = magsd_factory(max_concurrent=len(HOSTILE) + 1)
    hostile = {name: m.submit(script, timeout=25)["id"] for name, script in HOSTILE.items()}
    # the neighbour: a fixed amount of work, and all of its output
    neighbour = m.submit("i=0; while [ $i -lt 15 ]; do echo line $i; i=$((i+1)); sleep 0.5; done; echo done")
    health_ms = []
    deadline = time.time() + 240
    while time.time() < deadline:
        t0 = time.time()
        st, h = m.api("GET", "/health", token=False, timeout=30)
        health_ms.append((time.time() - t0) * 1000)
        assert st == 200, h
        jobs = [m.job(j) for j in list(hostile.values()) + [neighbour["id"]]]
        if all(j["status"] in ("completed", "failed") for j in jobs):
            break
        time.sleep(1)
    nb = m.wait_job(neighbour["id"])
    assert nb["status"] == "completed" and nb["exit_code"] == 0, nb
    assert m.output(neighbour["id"]) == "".join("line %d\n" % i for i in range(15)) + "done\n"
    for name, jid in hostile.items():
        j = m.wait_job(jid)
        # each ended: by its timeout (124), the guest's OOM killer or its own error; never by taking magsd down
        assert j["status"] in ("completed", "failed"), (name, j)
    print("health while attacked: %d probes, max %.0f ms" % (len(health_ms), max(health_ms)))
    # no QEMU of theirs is left (a job is marked ended before its VM is torn down)
    deadline = time.time() + 30
    while any(job_qemu_pids(m.state_dir, jid) for jid in hostile.values()) and time.time() < deadline:
        time.sleep(0.5)
    for jid in hostile.values():
        assert not job_qemu_pids(m.state_dir, jid), jid


def test_cgroups_left_by_a_killed_magsd_are_removed(magsd_factory):
    """A killed magsd leaves its VM slots' cgroups (empty: the QEMUs died with
    it). The next magsd removes those of slots no running magsd holds."""
    if os.path.isdir("/sys/fs/cgroup/memory"):
        roots = ["/sys/fs/cgroup/%s/mags" % c for c in ("memory", "pids", "cpu")]
    else:
        roots = ["/sys/fs/cgroup/mags"]
    if not all(os.path.isdir(r) for r in roots):
        pytest.skip("no mags cgroup hierarchy here")
    left = [os.path.join(r, "vm-1023") for r in roots]  # the last slot: not in use by any magsd here
    for d in left:
        os.makedirs(d, exist_ok=True)
    magsd_factory()
    assert [d for d in left if os.path.exists(d)] == []
