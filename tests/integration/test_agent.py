# SPDX-License-Identifier: MIT
"""The guest agent: its protocol without a VM (agent_driver.py runs mags-agent as a
normal process over a socketpair and checks every request type), then workspace
disks in real VMs with the engine's disk layout (src/engine/qemu.c): MOUNT of a
host-made ext4 disk as the overlay root's upper layer, FILE in pieces, FREEZE/THAW
with a consistent host copy, a clean disk after POWEROFF, and that disk as a
read-only base layer of a second VM whose disks are swapped in over QMP (what
vm_set_disks does); and in a third VM the terminal (EXEC tty=1, RESIZE, ^C, ^D),
PAUSE/RESUME and the files API (FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH, the path
rules) against the guest's own kernel and busybox. Three cold boots in all (~5 s each
under TCG)."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agent_driver import VM, exercise_files, exercise_tty, kv, make_disk, sbin, tty_run  # noqa: E402

GUEST_DIR = os.path.abspath(os.environ.get("MAGS_GUEST_DIR", os.path.join(ROOT, "build/guest")))
KERNEL = os.path.join(GUEST_DIR, "vmlinux")
IMAGE = os.path.join(GUEST_DIR, "test.img")

needs_guest = pytest.mark.skipif(not (os.path.exists(KERNEL) and os.path.exists(IMAGE)
                                      and shutil.which("qemu-system-x86_64")),
                                 reason="no guest kernel/image (make guest) or no QEMU")


def test_agent_protocol_on_host():
    agent = os.path.join(ROOT, "build/bin/mags-agent")
    r = subprocess.run([sys.executable, os.path.join(HERE, "agent_driver.py"), "--host", agent],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def run_ok(vm, chan, cmd):
    out, err, ex = vm.agent.run(chan, cmd)
    assert ex[0] == 0, (cmd, out, err, vm.console()[-2000:])
    return out


def debugfs(disk, req):
    r = subprocess.run([sbin("debugfs"), "-R", req, disk], capture_output=True, text=True)
    return r.stdout


def sha(path):
    """SHA-256 of a sparse file's data extents and their offsets (reading 16 GiB of holes is slow)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        fd, end, off = f.fileno(), os.fstat(f.fileno()).st_size, 0
        while off < end:
            try:
                off = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, off, os.SEEK_HOLE)
            h.update(b"@%d:" % off)
            f.seek(off)
            while off < hole:
                b = f.read(min(1 << 20, hole - off))
                h.update(b)
                off += len(b)
    return h.hexdigest()


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    """The workspace written by the first VM (later the base layer of the second) and the
    data written with FILE."""
    d = tmp_path_factory.mktemp("disks")
    return {"dir": str(d), "ws": str(d / "ws.img"), "ws2": str(d / "ws2.img"),
            "data": os.urandom(3 << 20)}


@needs_guest
def test_workspace_mount_file_freeze_poweroff(disks, tmp_path):
    ws = disks["ws"]
    make_disk(ws)
    vm = VM(KERNEL, IMAGE, str(tmp_path / "vm1"), disks=[ws])
    try:
        a = vm.agent
        name, text = a.request("MOUNT", 0, kv(("upper", "mags-nope")))
        assert name == "ERROR" and "mags-nope" in text
        t = a.ms()
        name, text = a.request("MOUNT", 0, kv(("upper", "mags-ws")))
        mount_ms = a.ms() - t
        assert name == "OK", text + vm.console()[-2000:]
        print(f"MOUNT took {mount_ms:.0f} ms")
        name, text = a.request("MOUNT", 0, kv(("upper", "mags-ws")))
        assert name == "ERROR" and "already" in text

        out = run_ok(vm, 1, "echo hi > /root/x; pwd; cat /proc/mounts")
        lines = out.decode().splitlines()
        assert lines[0] == "/root"
        points = [ln.split()[1] for ln in lines[1:]]
        # the staging mounts lie beneath the new root: not listed (only the overlay's options name them)
        assert sorted(points) == ["/", "/dev", "/dev/pts", "/dev/shm", "/proc", "/run", "/sys", "/tmp"], out
        assert any(ln.startswith("overlay / overlay") for ln in lines) and b"/dev/vd" not in out, out
        assert b".mags-ws" not in run_ok(vm, 7, "ls -a /")

        data = disks["data"]
        t = a.ms()
        assert a.put_file(2, "big/data.bin", data) == ("OK", "")
        secs = (a.ms() - t) / 1000
        print(f"FILE {len(data) >> 20} MiB in {secs:.2f} s: {len(data) / secs / 1e6:.1f} MB/s")
        out = run_ok(vm, 3, "sha256sum /root/big/data.bin")
        assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
        # after the root switch: the files API reads the workspace, a terminal still works
        fr, name, _ = a.fop("FREAD", 8, path="big/data.bin")
        assert name == "OK" and b"".join(p for n, p in fr if n == "DATA") == data
        assert a.fstat(9, "/root/big")["type"] == "dir"
        out, ex = tty_run(a, 10, "tty; stty size", cols="100", rows="30")
        assert ex[0] == 0 and b"/dev/pts/" in out and b"30 100\r\n" in out, out
        assert a.request("FILE", 4, kv(("path", "/root/../etc/x"), ("data", "x")))[0] == "ERROR"

        assert a.request("FREEZE", 0) == ("OK", "")
        assert a.request("FILE", 5, kv(("path", "y"), ("data", "x")))[0] == "ERROR"  # would block PID 1
        copy = os.path.join(disks["dir"], "frozen-copy.img")
        subprocess.run(["cp", "--sparse=always", ws, copy], check=True)
        assert a.request("THAW", 0) == ("OK", "")
        assert a.request("THAW", 0) == ("OK", "")  # idempotent
        r = subprocess.run([sbin("e2fsck"), "-fn", copy], capture_output=True, text=True)
        os.unlink(copy)
        assert r.returncode == 0, r.stdout + r.stderr
        run_ok(vm, 6, "echo after-thaw > /root/y")

        assert vm.poweroff() == ("OK", 0)
    finally:
        vm.kill()
    assert "remount" not in vm.console(), vm.console()[-2000:]
    assert debugfs(ws, "cat /upper/root/x") == "hi\n"
    assert debugfs(ws, "cat /upper/root/y") == "after-thaw\n"
    hdr = subprocess.run([sbin("dumpe2fs"), "-h", ws], capture_output=True, text=True).stdout
    assert "needs_recovery" not in hdr and "Filesystem state:         clean" in hdr, hdr
    r = subprocess.run([sbin("e2fsck"), "-fn", ws], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@needs_guest
def test_base_layer_swapped_in_over_qmp(disks, tmp_path):
    """The first test's workspace as lower layer l0 under a fresh upper, both swapped into
    a VM started with the default (empty) disks, as a pooled VM gets them."""
    base, ws2 = disks["ws"], disks["ws2"]
    if not os.path.exists(base):
        pytest.skip("needs the disk of test_workspace_mount_file_freeze_poweroff")
    before = sha(base)
    make_disk(ws2)
    rundir = str(tmp_path / "vm2")
    vm = VM(KERNEL, IMAGE, rundir, qmp=True)
    try:
        a = vm.agent
        empty = os.path.join(rundir, "empty-layer.img")
        vm.set_disks([ws2, base, empty, empty, empty])
        assert a.request("MOUNT", 0, kv(("upper", "mags-ws"), ("lower", "mags-l0"))) == ("OK", "")
        out = run_ok(vm, 1, "cat /root/x /root/y; sha256sum /root/big/data.bin; rm /root/x; "
                            "echo new > /root/z; ls /root")
        assert out.startswith(b"hi\nafter-thaw\n" + hashlib.sha256(disks["data"]).hexdigest().encode())
        assert out.endswith(b"big\ny\nz\n"), out
        assert vm.poweroff() == ("OK", 0)
    finally:
        vm.kill()
    assert sha(base) == before, "the base layer changed"
    assert debugfs(base, "cat /upper/root/x") == "hi\n"
    assert "(whiteout)" in debugfs(ws2, "ls -l /upper/root") or "x" in debugfs(ws2, "ls /upper/root")
    assert debugfs(ws2, "cat /upper/root/z") == "new\n"
    assert "big" not in debugfs(ws2, "ls /upper/root")  # untouched: stays in the lower layer


@needs_guest
def test_tty_and_files_in_vm(tmp_path):
    """The checks agent_driver.py --host runs for terminals, PAUSE/RESUME and the files API
    (a 4 MiB FREAD there), in a real guest: its devpts, inotify and openat2."""
    vm = VM(KERNEL, IMAGE, str(tmp_path / "vm3"))
    try:
        a = vm.agent
        failures = []
        exercise_tty(a, failures)
        exercise_files(a, failures, "/root/ft", in_vm=True)
        assert not failures, failures
        # relative paths are under /root; FILE and FSTAT agree
        assert a.request("FILE", 1, kv(("path", "rel/dir/f"), ("data", "x"))) == ("OK", "")
        assert a.fstat(2, "rel/dir/f")["path"] == "/root/rel/dir/f"
        assert a.fop("FMKDIR", 3, path="rel/made", mode="711")[1] == "OK"
        assert run_ok(vm, 4, "stat -c %a /root/rel/made") == b"711\n"
        # the magic link of PID 1's root is refused too
        run_ok(vm, 5, "ln -s /proc/1/root /root/r1")
        name, text = a.fop("FSTAT", 6, path="r1/etc")[1:]
        assert name == "ERROR" and text.startswith("EXDEV: "), text
        assert vm.poweroff() == ("OK", 0)
    finally:
        vm.kill()
