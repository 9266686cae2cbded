# SPDX-License-Identifier: MIT
"""Fast start (issue 3): sandboxes restored from a template snapshot.

Checks that restored sandboxes are really restored (magsd's log says how each
job's sandbox started), that two of them share nothing that must differ
(random numbers, wall clock, hostname), and that a template that is missing,
corrupt or out of date costs a cold boot and a rebuild, never a failed job.
No test asserts speed."""
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import GUEST_DIR, JOB_TIMEOUT, MAGSD, SHARED_TEMPLATES

# prints what must differ between two sandboxes, one item per line
IDENTITY = ("hostname; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
            "cat /proc/sys/kernel/random/boot_id; cat /proc/sys/kernel/random/uuid; date +%s")


def run_ok(magsd, script):
    job = magsd.submit(script)
    job = magsd.wait_job(job["id"])
    assert job["status"] == "completed", (job, magsd.output(job["id"], "stderr"))
    return job["id"], magsd.output(job["id"])


def template_dirs(root):
    return sorted(d for d in os.listdir(root) if not d.startswith("."))


def test_restored_sandboxes_differ(magsd):
    magsd.wait_template()
    outs = {}
    before = time.time()

    def one(i):
        outs[i] = run_ok(magsd, IDENTITY)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = time.time()
    seen = []
    for jid, out in outs.values():
        assert magsd.how_started(jid) == "restored", magsd.log()[-3000:]
        host, rnd, boot_id, uuid, clock = out.split("\n")[:5]
        assert host == "mags-" + jid[:8]
        assert len(rnd) == 64
        # the guest's wall clock is the host's, not the template's
        assert before - 2 <= int(clock) <= after + 2, (clock, before, after)
        seen.append((host, rnd, boot_id, uuid))
    a, b = seen
    for name, x, y in zip(("hostname", "urandom", "boot_id", "uuid"), a, b):
        assert x != y, "two restored sandboxes share their %s: %r" % (name, x)


def test_clock_is_set_after_restore(magsd):
    """A template saved some seconds ago must not hand out its own time."""
    magsd.wait_template()
    time.sleep(3)
    before = time.time()
    jid, out = run_ok(magsd, "date +%s")
    after = time.time()
    assert magsd.how_started(jid) == "restored"
    assert before - 2 <= int(out) <= after + 2, (out, before, after)


def test_no_snapshot_cold_boots(magsd_factory):
    m = magsd_factory(extra_args=["--no-snapshot"])
    fs = m.fast_start()
    assert fs["template"] == "off" and fs["pool"] == 0 and fs["pool_size"] == 0, fs
    jid, out = run_ok(m, "echo cold")
    assert out == "cold\n"
    assert m.how_started(jid) == "cold"


def test_pool_size_zero_still_restores(magsd_factory):
    m = magsd_factory(extra_args=["--pool-size", "0"])
    m.wait_template()
    jid, out = run_ok(m, "echo fast")
    assert out == "fast\n"
    assert m.how_started(jid) == "restored"
    assert m.fast_start()["pool"] == 0


@pytest.mark.parametrize("mode", ["warm", "incoming"])
def test_pool_modes(magsd_factory, mode):
    """Both pool kinds restore, and every job still gets its own identity."""
    m = magsd_factory(extra_args=["--pool-mode", mode])
    m.wait_template()
    deadline = time.time() + JOB_TIMEOUT
    while m.fast_start()["pool"] < 2 and time.time() < deadline:
        time.sleep(0.2)
    fs = m.fast_start()
    assert fs["pool_mode"] == mode and fs["pool"] == 2, fs
    seen = []
    for _ in range(2):
        before = time.time()
        jid, out = run_ok(m, IDENTITY)
        after = time.time()
        assert m.how_started(jid) == "restored"
        host, rnd, boot_id, uuid, clock = out.split("\n")[:5]
        assert host == "mags-" + jid[:8]
        assert before - 2 <= int(clock) <= after + 2, (clock, before, after)
        seen.append((rnd, uuid))
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1], seen


def test_bad_pool_mode(magsd_factory, mags_tmp):
    m = magsd_factory()
    r = subprocess.run([MAGSD, "--state-dir", os.path.join(mags_tmp, "x"), "--pool-mode", "hot"],
                       capture_output=True, text=True, timeout=30, env=m.env)
    assert r.returncode != 0
    assert "--pool-mode" in r.stderr, r.stderr


def own_template_copy(tmp):
    """A private copy of the shared template (new inodes: writing to it cannot
    touch the pages other magsds map)."""
    root = os.path.join(tmp, "tmpl")
    shutil.copytree(SHARED_TEMPLATES, root, ignore=shutil.ignore_patterns(".*"))
    return root


def test_missing_template_is_built(magsd_factory, mags_tmp):
    root = os.path.join(mags_tmp, "empty-tmpl")
    m = magsd_factory(extra_args=["--template-dir", root])
    assert m.fast_start()["template"] in ("building", "ready")
    # a job before the template is ready still runs (cold)
    run_ok(m, "echo early")
    m.wait_template()
    assert len(template_dirs(root)) == 1
    jid, _ = run_ok(m, "echo later")
    assert m.how_started(jid) == "restored"


@pytest.mark.parametrize("part", ["state", "mem", "meta"])
def test_corrupt_template_at_start_is_rebuilt(magsd_factory, mags_tmp, part):
    # make sure the shared template exists, then damage a private copy of it
    first = magsd_factory()
    first.wait_template()
    root = own_template_copy(mags_tmp)
    (key,) = template_dirs(root)
    path = os.path.join(root, key, part)
    with open(path, "r+b") as f:
        f.seek(4096 if part == "mem" else 0)
        f.write(b"\xde\xad\xbe\xef" * 16)
    m = magsd_factory(extra_args=["--template-dir", root])
    jid, out = run_ok(m, "echo still works")
    assert out == "still works\n"
    m.wait_template()
    assert "is unusable" in m.log(), m.log()[-3000:]
    jid, _ = run_ok(m, "echo restored")
    assert m.how_started(jid) == "restored"


def test_template_corrupted_while_running_falls_back(magsd_factory, mags_tmp):
    first = magsd_factory()
    first.wait_template()
    root = own_template_copy(mags_tmp)
    # incoming pool: its QEMUs read the state at take time (a warm pool's
    # VMs were restored before the damage and would not notice)
    m = magsd_factory(extra_args=["--template-dir", root, "--pool-mode", "incoming"])
    m.wait_template()
    (key,) = template_dirs(root)
    with open(os.path.join(root, key, "state"), "r+b") as f:
        f.write(b"garbage!" * 64)
    jid, out = run_ok(m, "echo survived")
    assert out == "survived\n"
    assert m.how_started(jid) == "cold"
    assert "dropped" in m.log()
    m.wait_template()
    jid, _ = run_ok(m, "echo fast again")
    assert m.how_started(jid) == "restored"


def test_template_rebuilt_when_image_changes(magsd_factory, mags_tmp):
    guest = os.path.join(mags_tmp, "guest")
    os.makedirs(guest)
    for name in ("vmlinux", "bzImage"):
        if os.path.exists(os.path.join(GUEST_DIR, name)):
            os.symlink(os.path.join(GUEST_DIR, name), os.path.join(guest, name))
    shutil.copy(os.path.join(GUEST_DIR, "test.img"), os.path.join(guest, "test.img"))
    root = os.path.join(mags_tmp, "tmpl")
    m = magsd_factory(extra_args=["--template-dir", root, "--guest-dir", guest])
    m.wait_template()
    (old,) = template_dirs(root)
    jid, _ = run_ok(m, "true")
    assert m.how_started(jid) == "restored"
    # a rebuilt image: same path, new content
    img = os.path.join(guest, "test.img")
    os.utime(img, (time.time() + 5, time.time() + 5))
    jid, out = run_ok(m, "echo new image")
    assert out == "new image\n"
    assert m.how_started(jid) == "cold"
    m.wait_template()
    deadline = time.time() + JOB_TIMEOUT
    while template_dirs(root) == [old] and time.time() < deadline:
        time.sleep(0.2)
    (new,) = template_dirs(root)
    assert new != old
    jid, _ = run_ok(m, "true")
    assert m.how_started(jid) == "restored"
