# SPDX-License-Identifier: MIT
"""SSH into sandboxes with the real OpenSSH client, through magsd's per-sandbox
forwarder to sshd in the guest: by the API (--ssh at submit, access later),
by `mags ssh NAME -- CMD`, and interactively in tmux."""
import os
import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="guest ports are reachable with tap networking (root)")


def keypair(d, name="id"):
    path = os.path.join(d, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path], check=True)
    with open(path + ".pub") as f:
        return path, f.read().strip()


def ssh(magsd, job, key, *cmd, known_hosts=None, timeout=120):
    """Runs cmd over SSH; checks the host key against the one the API gave."""
    info = job["ssh"]
    kh = known_hosts or os.path.join(magsd.tmp, "known_hosts")
    with open(kh, "w") as f:
        f.write("[%s]:%d %s\n" % (info["host"], info["port"], info["host_key"]))
    argv = ["ssh", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + kh,
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-p", str(info["port"]),
            "%s@%s" % (info["user"], info["host"])] + list(cmd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={"HOME": magsd.home,
                                                                                        "PATH": os.environ["PATH"]})


def test_ssh_by_api(magsd):
    key, pub = keypair(magsd.tmp)
    j = magsd.submit("echo up; sleep 3600", workspace="sshbox", ssh=True, ssh_public_key=pub + "\n")
    magsd.wait_output(j["id"], "up")
    j = magsd.job(j["id"])
    assert j["ssh"]["user"] == "root" and j["ssh"]["host_key"].startswith("ssh-ed25519 "), j
    r = ssh(magsd, j, key, "echo hello-$((6*7)); hostname; cat /etc/os-release 2>/dev/null | head -1; exit 3")
    assert r.returncode == 3, r.stderr
    assert "hello-42" in r.stdout, r.stdout
    # a second key added later works too; a wrong key does not
    key2, pub2 = keypair(magsd.tmp, "id2")
    key3, _ = keypair(magsd.tmp, "id3")
    st, j2 = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"ssh": True, "ssh_public_key": pub2})
    assert st == 200 and j2["ssh"]["port"] == j["ssh"]["port"], j2
    assert ssh(magsd, j2, key2, "true").returncode == 0
    r = ssh(magsd, j2, key3, "true")
    assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
    # a host key other than the sandbox's is refused by the client (the API's key is the real one)
    bad = dict(j2)
    bad["ssh"] = dict(j2["ssh"], host_key=pub2)  # some other ed25519 key
    r = ssh(magsd, bad, key2, "true")
    assert r.returncode == 255 and "Host key verification failed" in r.stderr, r.stderr
    # the key landed in root's authorized_keys in the workspace
    r = ssh(magsd, j2, key, "cat /root/.ssh/authorized_keys")
    assert pub in r.stdout and pub2 in r.stdout
    port = j["ssh"]["port"]
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % j["id"])
    assert st == 200
    end = magsd.wait_job(j["id"])
    assert end["ssh"] is None
    # the forwarder went with the sandbox
    r = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-p", str(port), "root@127.0.0.1",
                        "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 255


def test_mags_new_then_ssh_command(magsd):
    r = magsd.cli("new", "box")
    assert r.returncode == 0, r.stderr
    assert "box" in r.stdout
    r = magsd.cli("new", "box")  # again: the same sandbox
    assert r.returncode == 0, r.stderr
    st, lst = magsd.api("GET", "/mags-jobs?workspace=box&status=running")
    assert len(lst["jobs"]) == 1, lst
    r = magsd.cli("ssh", "box", "--", "echo", "in-the-box", "&&", "cat", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    assert "in-the-box" in r.stdout
    r = magsd.cli("ssh", "box", "--", "exit 7")
    assert r.returncode == 7, r.stderr
    # the CLI made its key and recorded the sandbox's host key
    assert os.path.exists(os.path.join(magsd.home, ".mags", "id_ed25519"))
    with open(os.path.join(magsd.home, ".mags", "known_hosts")) as f:
        assert "ssh-ed25519" in f.read()
    jid = lst["jobs"][0]["id"]
    r = magsd.cli("stop", "box")  # by name: the workspace's sandbox
    assert r.returncode == 0 and jid in r.stdout, r.stderr
    assert magsd.wait_job(jid)["status"] == "failed"
    r = magsd.cli("stop", "box")
    assert r.returncode == 1 and "no running sandbox for workspace box" in r.stderr, r.stderr


def test_mags_ssh_starts_a_sandbox_when_none_runs(magsd):
    r = magsd.cli("ssh", "fresh", "--", "echo", "started")
    assert r.returncode == 0, r.stderr
    assert "started" in r.stdout
    st, lst = magsd.api("GET", "/mags-jobs?workspace=fresh&status=running")
    assert len(lst["jobs"]) == 1
    jid = lst["jobs"][0]["id"]
    magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed")
def test_interactive_ssh_in_tmux(magsd):
    r = magsd.cli("new", "tty")
    assert r.returncode == 0, r.stderr
    session = "mags-ssh-%d" % os.getpid()
    env = dict(magsd.env, MAGS_API_URL=magsd.url, MAGS_TOKEN=magsd.token)
    from conftest import MAGS
    cmd = " ".join(["env"] + ["%s='%s'" % (k, v) for k, v in env.items() if k.startswith(("MAGS_", "HOME", "ASAN", "UBSAN", "LSAN", "PATH"))]
                   + [MAGS, "ssh", "tty"])
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd], check=True)

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def wait_for(text, timeout=120):
        deadline = time.time() + timeout
        while text not in screen():
            if time.time() > deadline:
                pytest.fail("%r never appeared on the terminal:\n%s" % (text, screen()))
            time.sleep(0.3)

    try:
        wait_for("#")  # root's prompt
        subprocess.run(["tmux", "send-keys", "-t", session, "echo tty-$((6*7)); tty", "Enter"], check=True)
        wait_for("tty-42")
        wait_for("/dev/pts/")
        subprocess.run(["tmux", "send-keys", "-t", session, "exit", "Enter"], check=True)
        deadline = time.time() + 60
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.time() < deadline, screen()
            time.sleep(0.3)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    st, lst = magsd.api("GET", "/mags-jobs?workspace=tty&status=running")
    for j in lst["jobs"]:
        magsd.api("POST", "/mags-jobs/%s/stop" % j["id"])
        magsd.wait_job(j["id"])
