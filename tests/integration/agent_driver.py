# SPDX-License-Identifier: MIT
"""Host-side driver for mags-agent, stdlib only (docs/agent-protocol.md).

Boots the test image in QEMU (microvm, TCG unless --accel kvm), connects to the
agent's virtio-serial socket, waits for HELLO, runs a few requests, checks the
answers, sends POWEROFF and checks that QEMU exits. Prints every frame and the
timings (QEMU start -> HELLO, -> EXIT, -> QEMU gone).

    python3 tests/integration/agent_driver.py                 # build/guest/{vmlinux,test.img}
    python3 tests/integration/agent_driver.py --kernel build/guest/bzImage
    python3 tests/integration/agent_driver.py --host build/bin/mags-agent
        (no VM: runs the agent as a normal process over a socketpair)

Exit status 0 when every check passed.

As a module (test_agent.py): VM boots the test image with the engine's disk layout
(qemu_argv mirrors src/engine/qemu.c: image vda, then slots mags-ws, mags-l0..l3),
VM.set_disks swaps the slots' files over QMP as vm_set_disks does, make_disk makes a
workspace disk as the host does, Agent.request/put_file send MOUNT, FREEZE, THAW, FILE.
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

MSG = {1: "HELLO", 2: "STDOUT", 3: "STDERR", 4: "EXIT", 5: "ERROR", 6: "OK", 7: "PONG",
       32: "INIT", 33: "EXEC", 34: "STDIN", 35: "SIGNAL", 36: "POWEROFF", 37: "PING", 38: "FILE",
       39: "MOUNT", 40: "FREEZE", 41: "THAW", 42: "SSHD"}
M = {v: k for k, v in MSG.items()}
HDR = struct.Struct("<IHHI")  # len, type, flags, chan
EXIT_TIMEOUT = 0x1
DISK_BYTES = 16 << 30   # ENGINE_DISK_BYTES
LAYER_SLOTS = 4         # ENGINE_LAYER_SLOTS
FILE_CHUNK = 512 * 1024  # AGENT_FILE_CHUNK
APPEND = ("console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/mags-agent quiet panic=-1 "
          "reboot=t i8042.noaux i8042.nomux i8042.nopnp nomodule no_timer_check")
SLOTS = ["ws"] + ["l%d" % i for i in range(LAYER_SLOTS)]  # node names; serials are "mags-" + node


def kv(*pairs):
    out = b""
    for k, v in pairs:
        k = k.encode()
        v = v.encode() if isinstance(v, str) else v
        out += bytes([len(k)]) + k + struct.pack("<I", len(v)) + v
    return out


def kv_parse(p):
    out, off = [], 0
    while off < len(p):
        kl = p[off]
        k = p[off + 1:off + 1 + kl].decode()
        (vl,) = struct.unpack_from("<I", p, off + 1 + kl)
        v = p[off + 5 + kl:off + 5 + kl + vl]
        out.append((k, v))
        off += 5 + kl + vl
    return out


class Agent:
    def __init__(self, sock, t0, verbose=True):
        self.s, self.t0, self.buf, self.verbose = sock, t0, b"", verbose

    def ms(self):
        return (time.monotonic() - self.t0) * 1000

    def send(self, typ, chan, payload=b""):
        self.s.sendall(HDR.pack(len(payload), M[typ], 0, chan) + payload)

    def recv(self, timeout=60):
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HDR.size:
                ln, typ, _flags, chan = HDR.unpack_from(self.buf)
                if len(self.buf) >= HDR.size + ln:
                    p = self.buf[HDR.size:HDR.size + ln]
                    self.buf = self.buf[HDR.size + ln:]
                    name = MSG.get(typ, str(typ))
                    if self.verbose:
                        shown = kv_parse(p) if name == "HELLO" else (
                            struct.unpack("<iiI", p) if name == "EXIT" else
                            (p[:60] + (b"...(%d bytes)" % len(p) if len(p) > 60 else b"")))
                        print(f"  {self.ms():8.1f} ms  {name:7} chan {chan}: {shown}")
                    return name, chan, p
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the agent")
            self.s.settimeout(left)
            d = self.s.recv(65536)
            if not d:
                raise EOFError("agent closed the connection")
            self.buf += d

    def run(self, chan, cmd, wait=60, **kw):
        """EXEC and collect: returns (stdout, stderr, (code, signal, flags)) or ('ERROR', text)."""
        pairs = [("cmd", cmd)]
        for k, v in kw.items():
            if k == "env":
                pairs += [("env", e) for e in v]
            else:
                pairs.append((k, v))
        self.send("EXEC", chan, kv(*pairs))
        out, err = b"", b""
        while True:
            name, c, p = self.recv(wait)
            if c != chan:
                continue
            if name == "STDOUT":
                out += p
            elif name == "STDERR":
                err += p
            elif name == "EXIT":
                return out, err, struct.unpack("<iiI", p)
            elif name == "ERROR":
                return "ERROR", p.decode(errors="replace")

    def wait_for(self, chan, names, timeout=60):
        while True:
            name, c, p = self.recv(timeout)
            if c == chan and name in names:
                return name, p


    def request(self, typ, chan, payload=b"", timeout=60):
        """Sends a request answered by OK or ERROR on chan: returns (name, text)."""
        self.send(typ, chan, payload)
        name, p = self.wait_for(chan, ("OK", "ERROR"), timeout)
        return name, p.decode(errors="replace")

    def put_file(self, chan, path, data, mode=None, chunk=FILE_CHUNK):
        """FILE in pieces of at most chunk bytes at increasing offsets; returns the last answer."""
        off = 0
        while True:
            pairs = [("path", path)] + ([("mode", mode)] if mode else []) + \
                    ([("offset", str(off))] if off else []) + [("data", data[off:off + chunk])]
            ans = self.request("FILE", chan, kv(*pairs))
            off += chunk
            if ans[0] != "OK" or off >= len(data):
                return ans


def make_disk(path, mkfs=True):
    """A workspace disk as the host makes one: sparse, DISK_BYTES, ext4 without eager init."""
    with open(path, "wb") as f:
        f.truncate(DISK_BYTES)
    if mkfs:
        subprocess.run([sbin("mkfs.ext4"), "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                        "-m", "0", path], check=True)


def sbin(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin") or name


def qemu_argv(qemu, kernel, image, rundir, disks, accel="tcg", qmp=False):
    """QEMU's command line as src/engine/qemu.c builds it (cold boot; qmp adds the monitor).
    disks: file for each of SLOTS (workspace first)."""
    cmd = [qemu, "-M", "microvm,acpi=off", "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
           "-m", "512", "-smp", "1"]
    if qmp:
        cmd += ["-qmp", f"unix:{rundir}/qmp.sock,server=on,wait=off"]
    cmd += ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-kernel", kernel, "-append", APPEND]
    for node, path, ro in [("root", image, True)] + [(n, d, n != "ws") for n, d in zip(SLOTS, disks)]:
        rw = "on" if ro else "off"
        cmd += ["-blockdev", f"driver=file,node-name={node}-f0,filename={path},read-only={rw}",
                "-blockdev", f"driver=raw,node-name={node},file={node}-f0,read-only={rw}",
                "-device", f"virtio-blk-device,drive={node},serial=mags-{node}"]
    cmd += ["-device", "virtio-serial-device",
            "-chardev", f"socket,id=ag,path={rundir}/agent.sock,server=on,wait=off",
            "-device", "virtserialport,chardev=ag,name=mags.agent",
            "-chardev", f"file,id=con,path={rundir}/console.log", "-serial", "chardev:con"]
    return cmd


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.call("qmp_capabilities")

    def call(self, cmd, **args):
        """Returns the "return" value; raises RuntimeError on a QMP error."""
        self.f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            m = json.loads(self.f.readline())
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise RuntimeError(f"QMP {cmd}: {m['error'].get('desc')}")

    def close(self):
        self.f.close()
        self.s.close()


class VM:
    """A cold-booted guest with the engine's disk layout. disks: files for SLOTS; a missing
    one gets an empty sparse file in rundir (as the engine's defaults)."""

    def __init__(self, kernel, image, rundir, disks=None, qmp=False, qemu="qemu-system-x86_64", accel="tcg"):
        self.rundir = rundir
        os.makedirs(rundir, exist_ok=True)
        disks = list(disks or [])
        disks += [None] * (len(SLOTS) - len(disks))
        for i, d in enumerate(disks):
            if d is None:
                disks[i] = os.path.join(rundir, "scratch.img" if i == 0 else "empty-layer.img")
                if not os.path.exists(disks[i]):
                    make_disk(disks[i], mkfs=False)
        self.gen = 0
        self.t0 = time.monotonic()
        self.q = subprocess.Popen(qemu_argv(qemu, kernel, image, rundir, disks, accel, qmp),
                                  stdin=subprocess.DEVNULL)
        sock_path = os.path.join(rundir, "agent.sock")
        self.qmp = None
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            while True:
                try:
                    s.connect(sock_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if self.q.poll() is not None or time.monotonic() - self.t0 > 10:
                        raise RuntimeError("QEMU did not open the agent socket")
                    time.sleep(0.005)
            self.agent = Agent(s, self.t0, verbose=False)
            if qmp:
                self.qmp = Qmp(os.path.join(rundir, "qmp.sock"))
            name, _, self.hello = self.agent.recv(timeout=60)
            if name != "HELLO":
                raise RuntimeError("first frame " + name)
        except BaseException:
            self.kill()
            raise

    def set_disks(self, disks):
        """What vm_set_disks does: new file nodes, one blockdev-reopen of every raw node, old ones deleted."""
        self.gen += 1
        opts = []
        for node, path in zip(SLOTS, disks):
            ro = node != "ws"
            self.qmp.call("blockdev-add", driver="file", **{"node-name": f"{node}-f{self.gen}", "filename": path,
                                                            "read-only": ro})
            opts.append({"driver": "raw", "node-name": node, "file": f"{node}-f{self.gen}", "read-only": ro})
        self.qmp.call("blockdev-reopen", options=opts)
        for node in SLOTS:
            self.qmp.call("blockdev-del", **{"node-name": f"{node}-f{self.gen - 1}"})

    def poweroff(self, timeout=30):
        """POWEROFF; returns QEMU's exit status (None if it did not exit)."""
        ans = self.agent.request("POWEROFF", 0, timeout=timeout)
        try:
            self.q.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return ans[0], self.q.poll()

    def console(self):
        try:
            return open(os.path.join(self.rundir, "console.log"), errors="replace").read()
        except FileNotFoundError:
            return ""

    def kill(self):
        if self.q.poll() is None:
            self.q.kill()
            self.q.wait()
        if self.qmp:
            self.qmp.close()


def check(cond, what, failures):
    print(("  ok    " if cond else "  FAIL  ") + what)
    if not cond:
        failures.append(what)


def exercise(a, failures, in_vm):
    """The checks shared by both modes; a has already seen HELLO."""
    t_exec = a.ms()
    out, err, ex = a.run(1, "echo out; echo err >&2; exit 3")
    print(f"  EXEC round trip: {a.ms() - t_exec:.1f} ms")
    check(out == b"out\n" and err == b"err\n" and ex == (3, 0, 0), "EXEC echo out/err, exit 3", failures)
    t_exit = a.ms()

    init = kv(("time_ns", str(time.time_ns())), ("hostname", "mags-test"), ("entropy", os.urandom(32).hex()))
    a.send("INIT", 0, init)
    check(a.wait_for(0, ("OK", "ERROR"))[0] == "OK", "INIT answered OK", failures)
    if in_vm:
        out, _, ex = a.run(2, "hostname; id -u; echo $PATH; pwd; touch /etc/x && echo rw; "
                              "cat /proc/1/comm; ip link show lo | grep -c UP")
        print(f"  guest says: {out!r}")
        check(out.startswith(b"mags-test\n0\n/usr/local/sbin:") and b"/root\nrw\n" in out and ex[0] == 0,
              "guest: hostname, root, PATH, cwd, writable root", failures)

    a.send("PING", 0, b"abc")
    check(a.wait_for(0, ("PONG",))[1] == b"abc", "PING -> PONG echoes payload", failures)

    out, err, ex = a.run(3, "sleep 5", timeout="1")
    check(ex == (124, 9, EXIT_TIMEOUT), f"timeout -> 124 + AGENT_EXIT_TIMEOUT (got {ex})", failures)

    out, err, ex = a.run(4, "(sleep 30 &) ; echo bg")
    check(out == b"bg\n" and ex[0] == 0, "background child holding the pipe does not hang EXIT", failures)

    a.send("EXEC", 5, kv(("cmd", "read x; echo got:$x; cat"), ("stdin", "1")))
    a.send("STDIN", 5, b"hello\nrest")
    a.send("STDIN", 5, b"")
    out = b""
    while True:
        name, c, p = a.recv()
        if c == 5 and name == "STDOUT":
            out += p
        elif c == 5 and name in ("EXIT", "ERROR"):
            break
    check(out == b"got:hello\nrest", f"STDIN pipe and EOF (got {out!r})", failures)

    a.send("EXEC", 6, kv(("cmd", "sleep 30")))
    time.sleep(0.3)
    a.send("SIGNAL", 6, struct.pack("<i", 15))
    name, p = a.wait_for(6, ("EXIT", "ERROR"))
    check(name == "EXIT" and struct.unpack("<iiI", p)[:2] == (143, 15), "SIGNAL 15 -> exit 143", failures)

    path = "/tmp/mags-driver-%d/sub/f.sh" % os.getpid() if not in_vm else "/root/sub/f.sh"
    a.send("FILE", 7, kv(("path", path), ("mode", "755"), ("data", "#!/bin/sh\necho from-file $1\n")))
    check(a.wait_for(7, ("OK", "ERROR"))[0] == "OK", "FILE writes " + path, failures)
    out, _, ex = a.run(8, path + " x")
    check(out == b"from-file x\n", "the written file runs", failures)
    a.send("FILE", 9, kv(("path", "/tmp/../etc/passwd"), ("data", "x")))
    check(a.wait_for(9, ("OK", "ERROR"))[0] == "ERROR", "FILE rejects ..", failures)

    # a big file in pieces: offset > 0 writes into the existing file without truncating it
    data = os.urandom(3 * 100000 + 7)
    big = path + ".big"
    check(a.put_file(13, big, data, chunk=100000)[0] == "OK", "FILE in pieces at offsets", failures)
    out, _, ex = a.run(14, "sha256sum " + big)
    check(out.split()[:1] == [hashlib.sha256(data).hexdigest().encode()], "pieces arrive byte-exact", failures)
    ans = a.request("FILE", 15, kv(("path", big), ("offset", str(len(data) + 1)), ("data", "x")))
    check(ans[0] == "ERROR", f"FILE offset past the end -> ERROR ({ans[1]})", failures)
    ans = a.request("FILE", 15, kv(("path", big + ".missing"), ("offset", "5"), ("data", "x")))
    check(ans[0] == "ERROR", f"FILE offset into a missing file -> ERROR ({ans[1]})", failures)
    ans = a.request("FILE", 15, kv(("path", "a/../b"), ("data", "x")))
    check(ans[0] == "ERROR", "FILE rejects a relative path with ..", failures)
    if not in_vm:
        for req in ("MOUNT", "FREEZE", "THAW"):
            ans = a.request(req, 0, kv(("upper", "mags-ws")) if req == "MOUNT" else b"")
            check(ans[0] == "ERROR", f"{req} outside a guest -> ERROR ({ans[1]})", failures)

    out, _, ex = a.run(10, "#!/bin/sh\necho script $0\n", file="1")
    check(out.startswith(b"script /tmp/.mags-script-10"), "EXEC file=1 with #!", failures)

    out, _, ex = a.run(11, "env", env=["FOO=bar", "PATH=/bin"], cwd="/")
    check(b"FOO=bar\n" in out and b"PATH=/bin\n" in out, "env entries", failures)

    a.send("EXEC", 12, b"\x05cmd")  # truncated KV
    check(a.wait_for(12, ("ERROR", "EXIT"))[0] == "ERROR", "malformed KV -> ERROR", failures)
    a.send("SIGNAL", 99, b"")  # wrong size
    a.send(MSG[7], 0, b"")     # PONG is agent->host only: unknown request
    check(a.wait_for(99, ("ERROR",))[0] == "ERROR", "bad SIGNAL -> ERROR", failures)
    check(a.wait_for(0, ("ERROR",))[0] == "ERROR", "unknown type -> ERROR", failures)

    # an oversized frame is refused and skipped; the stream stays in step
    big = (1 << 20) + 1
    a.s.sendall(HDR.pack(big, M["STDIN"], 0, 30) + b"\0" * big)
    a.send("PING", 0, b"after")
    check(a.wait_for(30, ("ERROR",))[0] == "ERROR", "oversized frame -> ERROR", failures)
    check(a.wait_for(0, ("PONG",))[1] == b"after", "stream in step after an oversized frame", failures)

    # two channels at once, large output
    a.send("EXEC", 20, kv(("cmd", "head -c 300000 /dev/zero")))
    a.send("EXEC", 21, kv(("cmd", "echo quick")))
    got, done = {20: 0, 21: 0}, set()
    while len(done) < 2:
        name, c, p = a.recv()
        if name == "STDOUT" and c in got:
            got[c] += len(p)
        elif name == "EXIT" and c in got:
            done.add(c)
    check(got == {20: 300000, 21: 6}, f"two channels at once, 300000 bytes (got {got})", failures)
    return t_exit


def run_vm(args):
    failures = []
    tmp = tempfile.mkdtemp(prefix="mags-drv-")
    sock_path = os.path.join(tmp, "agent.sock")
    disks = [os.path.join(tmp, "scratch.img")] + [os.path.join(tmp, "empty-layer.img")] * LAYER_SLOTS
    make_disk(disks[0], mkfs=False)
    make_disk(disks[1], mkfs=False)
    cmd = qemu_argv(args.qemu, args.kernel, args.image, tmp, disks, args.accel)
    t0 = time.monotonic()
    q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                s.connect(sock_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if q.poll() is not None or time.monotonic() - t0 > 10:
                    raise RuntimeError("QEMU did not open the agent socket")
                time.sleep(0.005)
        a = Agent(s, t0)
        print(f"  {a.ms():8.1f} ms  connected to {sock_path}")
        name, chan, p = a.recv(timeout=60)
        t_hello = a.ms()
        check(name == "HELLO" and chan == 0 and dict(kv_parse(p)).get("version") == b"1", "HELLO first", failures)
        t_exit = exercise(a, failures, in_vm=True)
        t_off = a.ms()
        a.send("POWEROFF", 0)
        check(a.wait_for(0, ("OK",), timeout=30)[0] == "OK", "POWEROFF answered OK", failures)
        try:
            q.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        t_gone = a.ms()
        check(q.poll() is not None, f"QEMU exited (status {q.returncode})", failures)
        print(f"timings: QEMU start -> HELLO {t_hello:.0f} ms (guest boot_ms {int(dict(kv_parse(p))['boot_ms'])}); "
              f"-> first EXIT {t_exit:.0f} ms; POWEROFF -> QEMU gone {t_gone - t_off:.0f} ms")
    finally:
        if q.poll() is None:
            q.kill()
            q.wait()
        con = os.path.join(tmp, "console.log")
        if os.path.exists(con) and (failures or args.console):
            print("---- guest console ----")
            print(open(con, errors="replace").read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def run_host(args):
    failures = []
    ours, theirs = socket.socketpair()
    t0 = time.monotonic()
    p = subprocess.Popen([args.host, f"fd:{theirs.fileno()}"], pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        a = Agent(ours, t0)
        name, chan, pl = a.recv(timeout=10)
        check(name == "HELLO" and chan == 0, "HELLO first", failures)
        exercise(a, failures, in_vm=False)
        a.send("POWEROFF", 0)
        check(a.wait_for(0, ("OK",))[0] == "OK", "POWEROFF answered OK", failures)
        check(p.wait(timeout=10) == 0, "agent exited 0", failures)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree("/tmp/mags-driver-%d" % os.getpid(), ignore_errors=True)
    return failures


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", default=os.path.join(root, "build/guest/vmlinux"))
    ap.add_argument("--image", default=os.path.join(root, "build/guest/test.img"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--console", action="store_true", help="print the guest console at the end")
    ap.add_argument("--host", metavar="AGENT", help="run AGENT on the host over a socketpair instead of a VM")
    args = ap.parse_args()
    failures = run_host(args) if args.host else run_vm(args)
    print("PASS" if not failures else f"FAIL: {len(failures)} check(s): {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
