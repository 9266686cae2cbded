# SPDX-License-Identifier: MIT
"""Always-on sandboxes: the agent restarts a failing command with backoff, magsd
restarts a VM that died, an idle sandbox sleeps (its QEMU gone, its state on
disk) and the next request wakes it with its memory intact, startup commands
run at every start and wake, and PATCH switches always_on. Real guests."""
import http.client
import os
import re
import signal
import time

import pytest

from conftest import job_qemu_pids, wait_for

# A server whose only state is in memory: a shell variable counting requests (nc
# serves one connection, so right after a request it is briefly not listening).
COUNTER = r"""
i=0
echo ready
while :; do
  i=$((i+1))
  printf 'HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%d\n' $((${#i}+1)) $i | nc -l -p 8080 >/dev/null
done
"""


def system_log(magsd, jid):
    return "".join(e["data"] for e in magsd.logs(jid)["logs"] if e["stream"] == "system")


def get(magsd, host, timeout=60):
    """One GET through the proxy (no retries: a wake must hold the request, not drop it)."""
    c = http.client.HTTPConnection("127.0.0.1", magsd.access()["url_port"], timeout=timeout)
    c.request("GET", "/", headers={"Host": host})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def get_retry(magsd, host, tries=100):
    """GET while the guest's server is coming up: 502 until it listens (with user
    networking the port forward accepts and then closes instead)."""
    for _ in range(tries):
        try:
            st, body = get(magsd, host)
        except (http.client.RemoteDisconnected, ConnectionError):
            st, body = None, b""
        if st not in (502, None):
            return st, body
        time.sleep(0.2)
    return st, body


def stop(magsd, jid):
    st, j = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    assert st == 200, j
    return magsd.wait_job(jid)


def test_failing_command_restarts_with_backoff(magsd):
    j = magsd.submit("echo run; sleep 0.5; exit 3", always_on=True)
    assert j["always_on"] is True
    # without a name it gets a persistent workspace of its own
    assert j["workspace"] == "job-" + j["id"][:8] and j["persist"] is True, j
    jid = j["id"]
    # three failures: restarted after 1 s, then 2 s, then 4 s (the agent's backoff)
    log = wait_for("three restarts", lambda: (lambda s: s if s.count("restarting it in") >= 3 else None)(
        system_log(magsd, jid)))
    delays = re.findall(r"exited with code 3; restarting it in ([0-9.]+) s", log)
    assert delays[:3] == ["1.0", "2.0", "4.0"], log
    assert magsd.output(jid).count("run\n") >= 3
    job = magsd.job(jid)
    assert job["status"] == "running" and job["exit_code"] is None, job
    job = stop(magsd, jid)
    assert job["status"] == "failed" and job["error"] == "stopped", job


def test_clean_exit_stays_up_until_always_on_is_switched_off(magsd):
    jid = magsd.submit("echo once", always_on=True, startup_command="echo startup-ran")["id"]
    wait_for("stays-up line", lambda: "stays up" in system_log(magsd, jid), timeout=60, magsd=magsd, jid=jid)
    out = magsd.output(jid)
    assert out.index("startup-ran") < out.index("once"), out  # startup first
    time.sleep(1)
    assert magsd.job(jid)["status"] == "running"
    # PATCH: bad fields are refused, always_on false ends the job (its command already exited 0)
    st, e = magsd.api("PATCH", "/mags-jobs/" + jid, {"always_on": "no"})
    assert st == 400 and "always_on" in e["error"], e
    st, e = magsd.api("PATCH", "/mags-jobs/" + jid, {"colour": 1})
    assert st == 400 and "colour" in e["error"], e
    st, e = magsd.api("PATCH", "/mags-jobs/" + jid, {"timeout": 30})
    assert st == 409, e
    st, job = magsd.api("PATCH", "/mags-jobs/" + jid, {"always_on": False})
    assert st == 200 and job["always_on"] is False, job
    job = magsd.wait_job(jid)
    assert job["status"] == "completed" and job["exit_code"] == 0, job
    st, e = magsd.api("PATCH", "/mags-jobs/" + jid, {"always_on": True})
    assert st == 409, e


def test_startup_failure_fails_the_job(magsd):
    jid = magsd.submit("echo never", always_on=True, startup_command="echo bad >&2; exit 7")["id"]
    job = magsd.wait_job(jid)
    assert job["status"] == "failed" and "startup command failed: exit code 7" in job["error"], job
    assert "never" not in magsd.output(jid)
    assert "bad" in magsd.output(jid, "stderr")


@pytest.mark.skipif(os.geteuid() != 0, reason="guest ports are reachable with tap networking (root)")
def test_killed_vm_is_restarted(magsd):
    j = magsd.submit(COUNTER, workspace="srv", always_on=True, url=True, port=8080, persist=False)
    jid = j["id"]
    magsd.wait_output(jid, "ready")
    assert get_retry(magsd, "srv.localhost") == (200, b"1\n")
    pids = job_qemu_pids(magsd.state_dir, jid)
    assert pids, "no QEMU for the job"
    os.kill(pids[0], signal.SIGKILL)
    wait_for("VM restart", lambda: magsd.job(jid).get("restarts") == 1)
    assert "VM stopped" in system_log(magsd, jid)
    # the new VM runs the command again: a fresh counter, same URL
    wait_for("second ready", lambda: magsd.output(jid).count("ready") == 2)
    assert get_retry(magsd, "srv.localhost") == (200, b"1\n")
    new = job_qemu_pids(magsd.state_dir, jid)
    assert new and new != pids
    assert magsd.job(jid)["status"] == "running"
    stop(magsd, jid)


@pytest.mark.skipif(os.geteuid() != 0, reason="guest ports are reachable with tap networking (root)")
def test_idle_sandbox_sleeps_and_wakes_with_its_memory(magsd):
    j = magsd.submit(COUNTER, workspace="sleepy", always_on=True, url=True, port=8080, persist=False,
                     idle_timeout=2, startup_command="echo startup-ran")
    jid = j["id"]
    assert j["idle_timeout"] == 2
    magsd.wait_output(jid, "ready")
    assert get_retry(magsd, "sleepy.localhost") == (200, b"1\n")
    assert get_retry(magsd, "sleepy.localhost") == (200, b"2\n")  # nc is back between requests
    # no traffic for 2 s: the sandbox sleeps and its QEMU goes away
    wait_for("sleep", lambda: magsd.job(jid).get("sleeping"))
    wait_for("QEMU gone", lambda: not job_qemu_pids(magsd.state_dir, jid))
    assert "asleep after 2 s" in system_log(magsd, jid)
    row = [l for l in magsd.cli("list").stdout.splitlines() if l.startswith(jid)]
    assert row and row[0].split()[1] == "sleeping", row
    # the next request wakes it and is answered (held, not dropped); the count goes on
    assert get(magsd, "sleepy.localhost") == (200, b"3\n")
    job = magsd.job(jid)
    assert job["status"] == "running" and job["sleeping"] is False, job
    assert "awake again" in system_log(magsd, jid)
    assert magsd.output(jid).count("startup-ran") == 2  # at the start and at the wake
    # a second round
    wait_for("second sleep", lambda: magsd.job(jid).get("sleeping"))
    assert get(magsd, "sleepy.localhost") == (200, b"4\n")
    # idle_timeout 0 (PATCH): it no longer sleeps
    st, job = magsd.api("PATCH", "/mags-jobs/" + jid, {"idle_timeout": 0})
    assert st == 200 and job["idle_timeout"] == 0, job
    time.sleep(3.5)
    assert not magsd.job(jid)["sleeping"] and job_qemu_pids(magsd.state_dir, jid)
    stop(magsd, jid)


def test_stop_while_asleep(magsd):
    jid = magsd.submit("echo up", always_on=True, idle_timeout=1)["id"]
    wait_for("sleep", lambda: magsd.job(jid).get("sleeping"))
    job = stop(magsd, jid)
    assert job["status"] == "failed" and job["error"] == "stopped", job
    assert not job_qemu_pids(magsd.state_dir, jid)


def test_always_on_survives_a_magsd_restart(magsd):
    jid = magsd.submit("echo boot; cat /root/mark 2>/dev/null; echo here > /root/mark",
                       workspace="keeper", always_on=True)["id"]
    wait_for("stays up", lambda: "stays up" in system_log(magsd, jid))
    assert magsd.job(jid)["persist"] is True  # a named always-on workspace persists by default
    magsd.restart()
    job = magsd.wait_job(jid, statuses=("running",))
    wait_for("second start", lambda: magsd.output(jid).count("boot") == 2)
    wait_for("stays up again", lambda: system_log(magsd, jid).count("stays up") == 2)
    assert "here" in magsd.output(jid)  # the workspace came back
    assert "starts again" in system_log(magsd, jid)
    stop(magsd, jid)


@pytest.mark.skipif(os.geteuid() != 0, reason="guest ports are reachable with tap networking (root)")
def test_ssh_connection_wakes_and_keeps_awake(magsd):
    jid = magsd.submit("echo up", always_on=True, ssh=True, idle_timeout=2)["id"]
    ssh = wait_for("ssh", lambda: magsd.job(jid).get("ssh"))
    wait_for("sleep", lambda: magsd.job(jid).get("sleeping"))
    assert not job_qemu_pids(magsd.state_dir, jid)
    # a TCP connection to the SSH forwarder wakes the sandbox and reaches the guest's sshd
    import socket
    s = socket.create_connection((ssh["host"], ssh["port"]), timeout=60)
    banner = s.recv(64)
    assert banner.startswith(b"SSH-2.0-"), banner
    # while it is open the sandbox stays awake
    time.sleep(3.5)
    job = magsd.job(jid)
    assert not job["sleeping"] and job_qemu_pids(magsd.state_dir, jid), job
    s.close()
    wait_for("sleep after the connection closed", lambda: magsd.job(jid).get("sleeping"))
    assert job["ssh"]["host_key"] == magsd.job(jid)["ssh"]["host_key"]  # same sshd, same key
    stop(magsd, jid)


def test_always_on_survives_a_magsd_crash(magsd):
    jid = magsd.submit("echo boot", always_on=True)["id"]
    wait_for("stays up", lambda: "stays up" in system_log(magsd, jid))
    magsd.kill9()
    magsd.start()
    wait_for("second start", lambda: magsd.output(jid).count("boot") == 2)
    assert "magsd restarted; starting the always-on sandbox again" in system_log(magsd, jid)
    assert magsd.job(jid)["status"] == "running"
    stop(magsd, jid)


def test_sleep_and_wake_with_user_networking(magsd_factory):
    """QEMU user networking (magsd not root): the URL's host port forward goes with the
    QEMU at sleep and is made again for the request that wakes it."""
    m = magsd_factory(extra_args=("--net", "user"))
    jid = m.submit(COUNTER, workspace="usr", always_on=True, url=True, port=8080, persist=False,
                   idle_timeout=2)["id"]
    m.wait_output(jid, "ready")
    assert get_retry(m, "usr.localhost") == (200, b"1\n")
    wait_for("sleep", lambda: m.job(jid).get("sleeping"))
    assert not job_qemu_pids(m.state_dir, jid)
    assert get(m, "usr.localhost") == (200, b"2\n")
    stop(m, jid)
