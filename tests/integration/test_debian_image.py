# SPDX-License-Identifier: MIT
"""The default guest image (issue 8): Debian 12 with the standard tool set.

One magsd for the whole module, started with --image debian (conftest's magsd
defaults to the busybox image), so the Debian template snapshot is built once
and the jobs run restored from it. In the Debian image: python3, node, gcc +
make, git, jq, pip install of a local package, npm install of a local tarball,
ssh; a workspace sees the image's files but writes only its own layer (the
image file on the host stays byte for byte the same); the same magsd still runs
busybox jobs on request and refuses an image it does not have.

The image is build/guest/debian.img (`make debian-image`, minutes the first
time). Without it the module is skipped, except in CI (env CI set), where a
missing image is a failure: CI must build it.

The guest's /bin/sh is dash: the scripts below stay POSIX. Under TCG node and
npm are slow (npm --version alone takes ~15 s), hence the generous timeouts.
"""
import hashlib
import os
import shutil
import tempfile

import pytest

from conftest import GUEST_DIR, JOB_TIMEOUT, Magsd, kill_pids, qemu_pids

DEBIAN_IMG = os.path.join(GUEST_DIR, "debian.img")
SLOW_TIMEOUT = 300  # npm under TCG


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def deb():
    """One magsd booting the Debian image by default, shared by the module."""
    if not os.path.exists(DEBIAN_IMG):
        msg = "%s missing: build it with make debian-image (as root; minutes the first time)" % DEBIAN_IMG
        if os.environ.get("CI"):
            pytest.fail("CI must build the Debian image: " + msg, pytrace=False)
        pytest.skip(msg)
    tmp = tempfile.mkdtemp(prefix="mags-", dir="/tmp")
    m = Magsd(tmp, extra_args=("--image", "debian"))
    try:
        m.start()
        m.image_sha = sha256(DEBIAN_IMG)
        yield m
        rc = m.stop()
        m.check_clean(rc)
    finally:
        m.stop()
        kill_pids(qemu_pids(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


def run(m, script, timeout=JOB_TIMEOUT, **fields):
    """Submits a job, waits for it; asserts exit 0; returns (job, stdout)."""
    job = m.submit(script, **fields)
    job = m.wait_job(job["id"], timeout=timeout)
    out = m.output(job["id"])
    assert job["status"] == "completed" and job["exit_code"] == 0, (
        "%r\nstdout: %s\nstderr: %s" % (job, out, m.output(job["id"], "stderr")))
    return job, out


def test_health_lists_the_images(deb):
    st, h = deb.api("GET", "/health", token=False)
    assert st == 200, h
    assert "debian" in h["images"] and "busybox" in h["images"], h
    assert h["images"] == sorted(h["images"]), h
    assert h["default_image"] == "debian", h


def test_a_job_without_image_runs_debian(deb):
    job, out = run(deb, ". /etc/os-release; echo \"$ID $VERSION_CODENAME\"; cat /etc/debian_version; "
                        "ls -l /bin/sh; ps -o comm= -p $$")
    assert job["image"] == "debian", job
    assert deb.job(job["id"])["image"] == "debian"
    lines = out.splitlines()
    assert lines[0] == "debian bookworm", out
    assert lines[1].startswith("12."), out
    assert lines[2].endswith("-> dash"), out  # /bin/sh is dash: job scripts must stay POSIX
    assert lines[3] == "sh", out  # procps is in the image


def test_python3(deb):
    _, out = run(deb, "python3 -c 'import json, sqlite3, ssl, sys; "
                      "print(json.dumps({\"v\": list(sys.version_info[:2]), \"sum\": sum(range(10))}))'")
    assert out == '{"v": [3, 11], "sum": 45}\n', out


def test_node(deb):
    _, out = run(deb, "node -e 'const v = process.versions.node.split(\".\")[0]; "
                      "console.log(Number(v) >= 18, [1, 2, 3].map(x => x * 2).join(\",\"))'",
                 timeout=SLOW_TIMEOUT)
    assert out == "true 2,4,6\n", out


def test_gcc_and_make(deb):
    # printf, not a heredoc with tabs: the recipe line's tab must survive as such
    script = r"""set -e
mkdir -p /tmp/c && cd /tmp/c
cat > hello.c <<'EOF'
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) { printf("hello from C, %zu\n", strlen(argc > 1 ? argv[1] : "")); return 0; }
EOF
printf 'hello: hello.c\n\t$(CC) -O2 -Wall -Werror -o $@ $<\n' > Makefile
make CC=gcc
./hello sandbox
"""
    _, out = run(deb, script)
    assert out.splitlines()[-1] == "hello from C, 7", out
    assert "gcc -O2 -Wall -Werror -o hello hello.c" in out, out


def test_git(deb):
    script = """set -e
mkdir /tmp/repo && cd /tmp/repo
git init -q -b main
echo hi > README
git add README
git -c user.name=Mags -c user.email=mags@example.com commit -q -m 'first commit'
git log --oneline
git status --porcelain | wc -l
"""
    _, out = run(deb, script)
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(" first commit") and lines[1].strip() == "0", out


def test_jq(deb):
    _, out = run(deb, "echo '{\"a\": [1, 2, {\"b\": \"x\"}]}' | jq -r '.a[2].b, (.a | length)'")
    assert out == "x\n3\n", out


def test_ssh_client_and_server(deb):
    _, out = run(deb, "ssh -V 2>&1; test -x /usr/sbin/sshd && echo sshd-ok; id -u sshd >/dev/null && echo user-ok")
    lines = out.splitlines()
    assert lines[0].startswith("OpenSSH_") and "Debian" in lines[0], out
    assert lines[1:] == ["sshd-ok", "user-ok"], out


def test_pip_install_of_a_local_package(deb):
    # no PyPI here: a package made in the guest, built with the image's setuptools
    script = """set -e
mkdir -p /tmp/pkg/magsdemo && cd /tmp/pkg
cat > pyproject.toml <<'EOF'
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "magsdemo"
version = "1.2.3"
EOF
echo 'def hello(): return "hello from magsdemo"' > magsdemo/__init__.py
pip install -q --no-index --no-build-isolation --root-user-action=ignore /tmp/pkg
cd /
python3 -c 'import magsdemo; print(magsdemo.hello()); print(magsdemo.__file__)'
pip show magsdemo | grep '^Version'
"""
    _, out = run(deb, script, timeout=SLOW_TIMEOUT)
    lines = out.splitlines()
    assert lines[0] == "hello from magsdemo", out
    # system-wide, in /usr/local (the workspace's layer; the image has no EXTERNALLY-MANAGED marker)
    assert lines[1].startswith("/usr/local/lib/python3"), out
    assert lines[2] == "Version: 1.2.3", out


def test_npm_install_of_a_local_tarball(deb):
    # offline: a package packed in the guest, installed from its tarball
    script = """set -e
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
mkdir -p /tmp/x /tmp/app && cd /tmp/x
echo '{"name": "x", "version": "1.0.0", "main": "index.js"}' > package.json
echo 'exports.hi = () => "hi from x";' > index.js
npm pack --silent
cd /tmp/app
npm install --no-audit --no-fund --offline /tmp/x/x-1.0.0.tgz >/dev/null
node -e "console.log(require('x').hi())"
"""
    _, out = run(deb, script, timeout=SLOW_TIMEOUT)
    assert out.splitlines() == ["x-1.0.0.tgz", "hi from x"], out


def test_workspace_writes_only_its_own_layer(deb):
    ws = "deb-layer"
    # 1: writes to /etc and /usr/local, removes a file of the image
    r = deb.cli("run", "-w", ws, "set -e; echo mine > /etc/mags-note; mkdir -p /usr/local/share/mags; "
                                 "echo local > /usr/local/share/mags/f; rm /usr/bin/jq; echo written")
    assert r.returncode == 0 and r.stdout == "written\n", (r.returncode, r.stdout, r.stderr)
    # 2: the same workspace sees all three, over the image's other files
    r = deb.cli("run", "-w", ws, "cat /etc/mags-note /usr/local/share/mags/f; "
                                 "test -e /usr/bin/jq || echo jq-removed; cat /etc/debian_version")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[:3] == ["mine", "local", "jq-removed"] and lines[3].startswith("12."), r.stdout
    # 3: a fresh sandbox has the image as built
    _, out = run(deb, "test -e /etc/mags-note && echo note; test -e /usr/local/share/mags && echo local; "
                      "test -x /usr/bin/jq && echo jq-there")
    assert out == "jq-there\n", out
    assert sha256(DEBIAN_IMG) == deb.image_sha, "the image file changed on the host"


def test_busybox_on_request(deb):
    job, out = run(deb, "test -e /etc/debian_version && echo debian; busybox | head -1", image="busybox")
    assert job["image"] == "busybox", job
    assert out.startswith("BusyBox v") and "debian" not in out.splitlines(), out
    # the CLI's --image
    r = deb.cli("run", "--image", "busybox", "test -e /etc/debian_version || echo no-debian")
    assert r.returncode == 0 and r.stdout == "no-debian\n", (r.returncode, r.stdout, r.stderr)


def test_an_unknown_image_is_refused(deb):
    st, e = deb.api("POST", "/mags-jobs", {"script": "true", "image": "alpine"})
    assert st == 400, (st, e)
    assert "alpine" in e["error"] and "debian" in e["error"] and "busybox" in e["error"], e
    st, e = deb.api("POST", "/mags-jobs", {"script": "true", "image": "../test"})
    assert st == 400 and "image" in e["error"], (st, e)
    r = deb.cli("run", "--image", "alpine", "true")
    assert r.returncode != 0 and "alpine" in r.stderr and "debian" in r.stderr, (r.returncode, r.stdout, r.stderr)
