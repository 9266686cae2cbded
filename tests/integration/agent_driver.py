# SPDX-License-Identifier: MIT
"""Host-side driver for mags-agent, stdlib only (docs/agent-protocol.md).

Boots the test image in QEMU (microvm, TCG unless --accel kvm), connects to the
agent's virtio-serial socket, waits for HELLO, runs requests of every type (exec
channels, terminals, PAUSE/RESUME, the files API and its path rules), checks the
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
       8: "DATA", 9: "INFO", 10: "EVENT",
       32: "INIT", 33: "EXEC", 34: "STDIN", 35: "SIGNAL", 36: "POWEROFF", 37: "PING", 38: "FILE",
       39: "MOUNT", 40: "FREEZE", 41: "THAW", 42: "SSHD", 43: "RESIZE", 44: "PAUSE", 45: "RESUME",
       46: "FREAD", 47: "FSTAT", 48: "FLIST", 49: "FREMOVE", 50: "FMKDIR", 51: "WATCH", 52: "CANCEL"}
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
                        shown = kv_parse(p) if name in ("HELLO", "INFO", "EVENT") else (
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


    def collect(self, chan, last=("OK", "ERROR"), timeout=60):
        """Frames on chan up to and including the first whose name is in last: [(name, payload)]."""
        out = []
        while True:
            name, c, p = self.recv(timeout)
            if c == chan:
                out.append((name, p))
                if name in last:
                    return out

    def frames_for(self, secs):
        """Every frame that arrives within secs: [(name, chan, payload)]."""
        out, end = [], time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.recv(left))
            except (TimeoutError, socket.timeout):
                return out

    def fop(self, typ, chan, timeout=60, **keys):
        """A file request: returns (frames before the answer, answer name, answer text)."""
        self.send(typ, chan, kv(*keys.items()))
        fr = self.collect(chan, timeout=timeout)
        return fr[:-1], fr[-1][0], fr[-1][1].decode(errors="replace")

    def fstat(self, chan, path):
        """FSTAT: the INFO as a dict of str, or the ERROR text."""
        fr, name, text = self.fop("FSTAT", chan, path=path)
        if name != "OK":
            return text
        return {k: v.decode(errors="replace") for k, v in kv_parse(fr[0][1])}

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


def sh(a, chan, cmd, failures=None):
    """EXEC cmd and return its stdout; a nonzero exit is a failure (or raises without failures)."""
    out, err, ex = a.run(chan, cmd)
    if ex[0] != 0:
        if failures is None:
            raise RuntimeError(f"{cmd!r}: exit {ex}: {err!r}")
        check(False, f"setup {cmd!r} (exit {ex}, {err!r})", failures)
    return out


def tty_run(a, chan, cmd, stdin=(), wait=30, **keys):
    """EXEC tty=1, then STDIN pieces (bytes, ("RESIZE", cols, rows), or a float: sleep that long);
    returns (output, exit tuple) or (output, ERROR text)."""
    a.send("EXEC", chan, kv(("cmd", cmd), ("tty", "1"), *keys.items()))
    for x in stdin:
        if isinstance(x, float):
            time.sleep(x)
        elif isinstance(x, tuple):
            a.send(x[0], chan, struct.pack("<HH", x[1], x[2]))
        else:
            a.send("STDIN", chan, x)
    out = b""
    while True:
        name, c, p = a.recv(wait)
        if c != chan:
            continue
        if name == "STDOUT":
            out += p
        elif name == "STDERR":
            raise AssertionError("STDERR frame on a tty channel")
        elif name == "EXIT":
            return out, struct.unpack("<iiI", p)
        elif name == "ERROR":
            return out, p.decode(errors="replace")


def exercise_tty(a, failures):
    """EXEC tty=1: a terminal, its size, RESIZE, ^C and ^D through STDIN; then PAUSE/RESUME."""
    out, ex = tty_run(a, 40, "tty; stty size; echo TERM=$TERM; test -t 0 && test -t 2 && echo all-tty")
    check(ex == (0, 0, 0) and b"/dev/pts/" in out and b"24 80\r\n" in out and b"TERM=xterm-256color\r\n" in out
          and b"all-tty" in out, f"tty: a pty on 0-2, 80x24, TERM (got {out!r} {ex})", failures)
    out, ex = tty_run(a, 41, "stty size; echo $TERM", cols="132", rows="43", env="TERM=vt100")
    check(out == b"43 132\r\nvt100\r\n" and ex[0] == 0, f"tty: cols/rows and env TERM (got {out!r})", failures)
    out, ex = tty_run(a, 42, "read x; stty size", stdin=[0.2, ("RESIZE", 120, 50), b"\n"])
    check(b"50 120\r\n" in out and ex[0] == 0, f"RESIZE: stty size 50 120 (got {out!r})", failures)
    out, ex = tty_run(a, 43, "trap 'echo winch; exit 7' WINCH; echo ready; while :; do sleep 0.05; done",
                      stdin=[0.5, ("RESIZE", 81, 25)])
    check(b"winch" in out and ex[0] == 7, f"RESIZE sends SIGWINCH (got {out!r} {ex})", failures)
    out, ex = tty_run(a, 44, "sleep 100", stdin=[0.5, b"\x03"])
    check(ex[:2] == (130, 2), f"tty: ^C (0x03 on STDIN) interrupts sleep: exit 130 (got {ex})", failures)
    out, ex = tty_run(a, 45, "cat; echo done", stdin=[b"hi\n", 0.2, b""])
    check(ex[0] == 0 and out.count(b"hi\r\n") == 2 and out.endswith(b"done\r\n"),
          f"tty: empty STDIN types ^D: cat ends (got {out!r} {ex})", failures)
    out, ex = tty_run(a, 46, "printf 'a\\nb\\n'; exit 3")
    check(out == b"a\r\nb\r\n" and ex == (3, 0, 0), f"tty: all output before EXIT (got {out!r} {ex})", failures)
    bad = tty_run(a, 47, "true", cols="0")[1]
    check(isinstance(bad, str), f"tty: cols 0 -> ERROR ({bad})", failures)
    a.send("RESIZE", 48, b"\x01\x00")
    check(a.wait_for(48, ("ERROR",))[0] == "ERROR", "RESIZE of 2 bytes -> ERROR", failures)
    a.send("RESIZE", 48, struct.pack("<HH", 0, 10))
    check(a.wait_for(48, ("ERROR",))[0] == "ERROR", "RESIZE cols 0 -> ERROR", failures)
    out, _, ex = a.run(49, "echo pipe")
    a.send("RESIZE", 49, struct.pack("<HH", 10, 10))  # a gone channel: ignored
    a.send("PING", 0, b"r")
    check(a.wait_for(0, ("PONG",))[1] == b"r" and out == b"pipe\n", "RESIZE of a gone channel: ignored", failures)

    # PAUSE/RESUME: the process blocks on its full pipe; all of it arrives in order, EXIT last
    expect = b"".join(b"%d\n" % i for i in range(1, 600001))
    a.send("EXEC", 50, kv(("cmd", "seq 1 600000")))
    a.send("PAUSE", 50)
    a.send("PAUSE", 50)  # idempotent
    early = [f for f in a.frames_for(1.0) if f[1] == 50]
    check(not early, f"PAUSE right after EXEC: nothing comes ({len(early)} frames)", failures)
    a.send("RESUME", 50)
    got, order, stalled, t = b"", [], None, time.monotonic()
    while True:
        name, c, p = a.recv(60)
        if c != 50:
            continue
        order.append(name)
        if name == "STDOUT":
            got += p
            if len(got) > 1 << 20 and stalled is None:
                a.send("PAUSE", 50)
                for f in a.frames_for(0.4):  # what was on the way before the PAUSE
                    if f[1] == 50:
                        order.append(f[0])
                        got += f[2] if f[0] == "STDOUT" else b""
                stalled = [f for f in a.frames_for(0.6) if f[1] == 50]
                a.send("RESUME", 50)
        else:
            break
    check(stalled == [], f"PAUSE mid-stream: output stops ({len(stalled or [])} frames while paused)", failures)
    check(got == expect and order[-1] == "EXIT" and order.count("EXIT") == 1,
          f"RESUME: 4 MB arrive in order, EXIT last ({len(got)} of {len(expect)} bytes, "
          f"{time.monotonic() - t:.1f} s)", failures)
    # paused after the exit: EXIT waits for RESUME and the drained pipe (no grace while paused)
    a.send("EXEC", 51, kv(("cmd", "echo held")))
    a.send("PAUSE", 51)
    early = [f for f in a.frames_for(0.8) if f[1] == 51]
    a.send("RESUME", 51)
    fr = a.collect(51, last=("EXIT", "ERROR"))
    check(not early and [f[0] for f in fr] == ["STDOUT", "EXIT"] and fr[0][1] == b"held\n",
          f"PAUSE after the exit holds EXIT until RESUME (early {early}, then {fr})", failures)
    a.send("PAUSE", 999)  # unknown channels: ignored
    a.send("RESUME", 999)
    a.send("CANCEL", 999)
    a.send("PING", 0, b"p")
    check(a.wait_for(0, ("PONG",))[1] == b"p" and not [f for f in a.frames_for(0.2) if f[1] == 999],
          "PAUSE/RESUME/CANCEL of an unknown channel: ignored", failures)


def info(fr):
    return [{k: v.decode(errors="replace") for k, v in kv_parse(p)} for n, p in fr if n == "INFO"]


def exercise_files(a, failures, base, in_vm=False):
    """FREAD, FSTAT, FLIST, FREMOVE, FMKDIR, WATCH, CANCEL and the path rules, under base
    (an empty directory); nothing outside it is changed."""
    ch = iter(range(100, 1000))

    # FREAD: 20 MiB of random bytes, with a PAUSE in the middle
    size = (4 if in_vm else 20) << 20
    sh(a, next(ch), f"mkdir -p {base}/r && head -c {size} /dev/urandom > {base}/r/big", failures)
    want = sh(a, next(ch), f"sha256sum {base}/r/big", failures).split()[0].decode()
    c = next(ch)
    a.send("FREAD", c, kv(("path", f"{base}/r/big")))
    h, n, sizes, stalled = hashlib.sha256(), 0, set(), None
    while True:
        name, cc, p = a.recv(60)
        if cc != c:
            continue
        if name != "DATA":
            break
        h.update(p)
        n += len(p)
        sizes.add(len(p))
        if n >= size // 5 and stalled is None:
            a.send("PAUSE", c)
            for f in a.frames_for(0.4):  # on the way before the PAUSE
                if f[1] == c and f[0] == "DATA":
                    h.update(f[2])
                    n += len(f[2])
            stalled = [f for f in a.frames_for(0.5) if f[1] == c]
            a.send("RESUME", c)
    check(name == "OK" and n == size and h.hexdigest() == want and max(sizes) <= 256 << 10 and 0 not in sizes,
          f"FREAD {size >> 20} MiB: sha256 matches, DATA <= 256 KiB, then OK (got {name}, {n} bytes)", failures)
    check(stalled == [], f"FREAD: PAUSE stops DATA ({len(stalled or [])} frames while paused)", failures)
    fr, name, _ = a.fop("FREAD", next(ch), path=f"{base}/r/big", offset=str(size - 1000))
    tail = sh(a, next(ch), f"tail -c 1000 {base}/r/big")
    check(name == "OK" and b"".join(p for _, p in fr) == tail, "FREAD offset: the last 1000 bytes", failures)
    fr, name, _ = a.fop("FREAD", next(ch), path=f"{base}/r/big", offset=str(size + 1))
    check(fr == [] and name == "OK", "FREAD offset past the end: OK, no DATA", failures)
    sh(a, next(ch), f": > {base}/r/empty")
    fr, name, _ = a.fop("FREAD", next(ch), path=f"{base}/r/empty")
    check(fr == [] and name == "OK", "FREAD of an empty file: OK only", failures)
    _, name, text = a.fop("FREAD", next(ch), path=f"{base}/r")
    check(name == "ERROR" and text.startswith("EISDIR: "), f"FREAD of a directory: {text}", failures)
    _, name, text = a.fop("FREAD", next(ch), path=f"{base}/r/nope")
    check(name == "ERROR" and text.startswith("ENOENT: "), f"FREAD of a missing file: {text}", failures)
    c = next(ch)
    a.send("FREAD", c, kv(("path", f"{base}/r/big")))
    a.send("CANCEL", c)
    a.frames_for(0.5)
    _, name, _ = a.fop("FSTAT", c, path=f"{base}/r/big")
    check(name == "OK", "CANCEL ends an FREAD; the channel is free again", failures)

    # FSTAT and FLIST
    d = f"{base}/l"
    sh(a, next(ch), f"mkdir -p {d}/sub && printf hello > {d}/a && chmod 640 {d}/a && ln -s a {d}/link && "
                    f"mkdir {d}/Z && touch {d}/b_ {d}/B && ln -s l {base}/dirlink && mkfifo {d}/fifo", failures)
    st = a.fstat(next(ch), f"{d}/a")
    check(isinstance(st, dict) and st["name"] == "a" and st["path"] == f"{d}/a" and st["type"] == "file"
          and st["size"] == "5" and st["mode"] == "0640" and int(st["mtime_ns"]) > 1e18 and "target" not in st,
          f"FSTAT file: {st}", failures)
    st = a.fstat(next(ch), f"{d}/link")
    check(isinstance(st, dict) and st["type"] == "symlink" and st["target"] == "a", f"FSTAT symlink: {st}", failures)
    st = a.fstat(next(ch), f"{d}/sub")
    check(isinstance(st, dict) and st["type"] == "dir", f"FSTAT dir: {st}", failures)
    st = a.fstat(next(ch), f"{d}/fifo")
    check(isinstance(st, dict) and st["type"] == "other", f"FSTAT fifo: other ({st})", failures)
    _, name, text = a.fop("FREAD", next(ch), path=f"{d}/fifo")
    check(name == "ERROR" and text.startswith("EINVAL: "), f"FREAD of a fifo (does not block): {text}", failures)
    st = a.fstat(next(ch), "/")
    check(isinstance(st, dict) and st["name"] == "/" and st["path"] == "/" and st["type"] == "dir",
          f"FSTAT /: {st}", failures)
    st = a.fstat(next(ch), f"{d}/nope")
    check(isinstance(st, str) and st.startswith("ENOENT: "), f"FSTAT missing: {st}", failures)
    st = a.fstat(next(ch), f"{d}/a/x")
    check(isinstance(st, str) and st.startswith("ENOTDIR: "), f"FSTAT under a file: {st}", failures)
    fr, name, _ = a.fop("FLIST", next(ch), path=f"{base}/dirlink")  # a symlink to the directory: followed
    ents = info(fr)
    check(name == "OK" and [e["name"] for e in ents] == ["B", "Z", "a", "b_", "fifo", "link", "sub"]
          and [e["type"] for e in ents] == ["file", "dir", "file", "file", "other", "symlink", "dir"]
          and ents[0]["path"] == f"{base}/dirlink/B" and ents[5]["target"] == "a" and ents[2]["size"] == "5",
          f"FLIST: sorted by name, lstat of each ({[(e['name'], e['type']) for e in ents]})", failures)
    _, name, text = a.fop("FLIST", next(ch), path=f"{d}/a")
    check(name == "ERROR" and text.startswith("ENOTDIR: "), f"FLIST of a file: {text}", failures)
    sh(a, next(ch), f"mkdir {base}/many && cd {base}/many && seq 1 3000 | xargs touch", failures)
    fr, name, _ = a.fop("FLIST", next(ch), path=f"{base}/many")
    names = [e["name"] for e in info(fr)]
    check(name == "OK" and names == sorted(str(i) for i in range(1, 3001)), f"FLIST of 3000 entries ({len(names)})",
          failures)

    # FMKDIR
    m = f"{base}/m"
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/x/y")
    check(name == "ERROR" and text.startswith("ENOENT: "), f"FMKDIR without parents, parent missing: {text}",
          failures)
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/x/y", parents="1", mode="700")
    st = a.fstat(next(ch), f"{m}/x/y")
    check(name == "OK" and isinstance(st, dict) and st["type"] == "dir" and st["mode"] == "0700",
          f"FMKDIR parents=1 mode=700 ({text} {st})", failures)
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/x/y")
    check(name == "ERROR" and text.startswith("EEXIST: "), f"FMKDIR of an existing dir: {text}", failures)
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/x/y", parents="1")
    check(name == "OK", f"FMKDIR parents=1 of an existing dir: OK ({text})", failures)
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/x/z")
    st = a.fstat(next(ch), f"{m}/x/z")
    check(name == "OK" and isinstance(st, dict) and st["mode"] == "0755", f"FMKDIR default mode 0755 ({st})",
          failures)
    sh(a, next(ch), f"touch {m}/file", failures)
    _, name, text = a.fop("FMKDIR", next(ch), path=f"{m}/file", parents="1")
    check(name == "ERROR" and text.startswith("EEXIST: "), f"FMKDIR parents=1 over a file: {text}", failures)

    # FREMOVE
    r = f"{base}/rm"
    sh(a, next(ch), f"mkdir -p {r}/empty {r}/full/a/b {r}/target/keep && touch {r}/f {r}/full/a/b/c {r}/full/x "
                    f"{r}/target/keep/k && ln -s ../../target {r}/full/a/tl && ln -s target {r}/dl", failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/f")
    check(name == "OK" and isinstance(a.fstat(next(ch), f"{r}/f"), str), f"FREMOVE a file ({text})", failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/empty")
    check(name == "OK", f"FREMOVE an empty dir ({text})", failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/full")
    check(name == "ERROR" and text.startswith("ENOTEMPTY: "), f"FREMOVE non-empty without recursive: {text}",
          failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/full", recursive="1")
    left = sh(a, next(ch), f"ls {r}; ls {r}/target/keep")
    check(name == "OK" and left == b"dl\ntarget\nk\n", f"FREMOVE recursive: the tree goes, a symlink's target "
                                                      f"stays ({text}, {left!r})", failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/dl", recursive="1")
    left = sh(a, next(ch), f"ls {r}; ls {r}/target/keep")
    check(name == "OK" and left == b"target\nk\n", f"FREMOVE of a symlink to a dir unlinks it ({left!r})",
          failures)
    _, name, text = a.fop("FREMOVE", next(ch), path=f"{r}/nope")
    check(name == "ERROR" and text.startswith("ENOENT: "), f"FREMOVE missing: {text}", failures)
    _, name, text = a.fop("FREMOVE", next(ch), path="/", recursive="1")
    check(name == "ERROR" and text.startswith("EBUSY: "), f"FREMOVE / refused: {text}", failures)

    # path rules
    for bad in ("/tmp/../etc/passwd", f"{base}/./x", f"{base}//x", f"{base}/l/", "a/../b", "", f"{base}/a\0b", ".",
                "./x", "x/.."):
        _, name, text = a.fop("FSTAT", next(ch), path=bad)
        check(name == "ERROR" and text.startswith("EINVAL: "), f"path {bad!r} -> {text}", failures)
    sh(a, next(ch), f"mkdir -p {base}/p/q && ln -s /proc/self/root {base}/p/esc && "
                    f"ln -s ../../../../../../../../../../etc {base}/p/q/up && ln -s l2 {base}/p/l1 && "
                    f"ln -s l1 {base}/p/l2 && ln -s /proc/self/fd {base}/p/fds", failures)
    for op, path in (("FSTAT", "esc/etc/passwd"), ("FREAD", "esc/etc/passwd"), ("FLIST", "esc/etc"),
                     ("FREAD", "fds/0"), ("FMKDIR", "esc" + base + "/p/made"), ("WATCH", "esc/etc"),
                     ("FREMOVE", "esc" + base + "/p/q")):
        _, name, text = a.fop(op, next(ch), path=f"{base}/p/{path}")
        check(name == "ERROR" and text.startswith("EXDEV: "), f"{op} through a magic link: {text}", failures)
    ans = a.request("FILE", next(ch), kv(("path", f"{base}/p/esc{base}/p/escaped"), ("data", "x")))
    st = a.fstat(next(ch), f"{base}/p/escaped")
    check(ans[0] == "ERROR" and ans[1].startswith("EXDEV: ") and isinstance(st, str) and st.startswith("ENOENT"),
          f"FILE through a magic link: {ans[1]}", failures)
    st = a.fstat(next(ch), f"{base}/p/q/up/passwd")
    check(isinstance(st, dict) and st["type"] == "file" and st["path"] == f"{base}/p/q/up/passwd",
          f"a symlink to ../../../../etc resolves inside the root ({st})", failures)
    st = a.fstat(next(ch), f"{base}/p/l1/x")
    check(isinstance(st, str) and st.startswith("ELOOP: "), f"a symlink loop stays ELOOP: {st}", failures)
    ans = a.request("FILE", next(ch), kv(("path", f"{base}/p/q/up2/new/f"), ("data", "made")))
    out = sh(a, next(ch), f"cat {base}/p/q/up2/new/f")
    check(ans[0] == "OK" and out == b"made", f"FILE creates parents in the root ({ans})", failures)
    _, name, text = a.fop("FSTAT", 0, path="/")
    check(name == "ERROR" and text.startswith("EINVAL: "), f"a file request on channel 0: {text}", failures)
    a.send("EXEC", 60, kv(("cmd", "sleep 0.5")))
    _, name, text = a.fop("FSTAT", 60, path="/")
    check(name == "ERROR" and text.startswith("EBUSY: "), f"a file request on a busy channel: {text}", failures)
    a.wait_for(60, ("EXIT",))

    exercise_watch(a, failures, base)


def exercise_watch(a, failures, base):
    w = f"{base}/w"
    sh(a, 70, f"mkdir -p {w}/old", failures)
    _, name, text = a.fop("WATCH", 71, path=w, recursive="1")
    check(name == "OK", f"WATCH answers OK once watching ({text})", failures)
    seen = []  # frames of other channels that came while a command ran

    def run(cmd, chan=72):
        a.send("EXEC", chan, kv(("cmd", cmd)))
        while True:
            n, c, p = a.recv(60)
            if c == chan and n in ("EXIT", "ERROR"):
                check(n == "EXIT" and struct.unpack("<iiI", p)[0] == 0, f"setup {cmd!r}", failures)
                return
            if c != chan:
                seen.append((n, c, p))

    def events(secs=0.6, chan=71):
        out = []
        for n, c, p in seen + a.frames_for(secs):
            if c == chan:
                out.append((n, {k: v.decode() for k, v in kv_parse(p)} if n == "EVENT" else p))
        seen.clear()
        return out

    def kinds(evs):
        return [(e[1]["kind"], e[1]["path"][len(w):], e[1]["dir"]) for e in evs if e[0] == "EVENT"]

    run(f"echo x > {w}/f")
    got = kinds(events())
    check(got[:2] == [("create", "/f", "0"), ("modify", "/f", "0")], f"WATCH: create, modify ({got})", failures)
    # a FILE write (a temporary name renamed over the file) shows as one create of the file
    a.send("FILE", 79, kv(("path", f"{w}/put"), ("data", "p")))
    ans = None
    while ans is None:
        n, c, p = a.recv(60)
        if c == 79 and n in ("OK", "ERROR"):
            ans = n
        elif c != 79:
            seen.append((n, c, p))
    got = kinds(events())
    check(ans == "OK" and got == [("create", "/put", "0")], f"WATCH: a FILE write is one create ({got})",
          failures)
    run(f"rm {w}/put")
    events()
    run(f"mv {w}/f {w}/g && rm {w}/g")
    got = kinds(events())
    check(got == [("move_from", "/f", "0"), ("move_to", "/g", "0"), ("delete", "/g", "0")],
          f"WATCH: move_from, move_to, delete ({got})", failures)
    run(f"mkdir {w}/sub")
    got1 = kinds(events(0.3))
    run(f"touch {w}/sub/inner; echo y > {w}/old/o")
    got2 = kinds(events())
    check(got1 == [("create", "/sub", "1")] and ("create", "/sub/inner", "0") in got2
          and ("create", "/old/o", "0") in got2,
          f"recursive WATCH: a new subdirectory is watched ({got1} {got2})", failures)
    run(f"dd if=/dev/zero of={w}/big bs=65536 count=640 2>/dev/null")
    got = kinds(events(0.6))
    mods = [g for g in got if g[0] == "modify"]
    check(("create", "/big", "0") in got and 1 <= len(mods) <= 30 and got[-1] == ("modify", "/big", "0"),
          f"WATCH: 640 writes coalesce into {len(mods)} modify events, the last one sent", failures)
    run(f"mv {w}/sub {w}/sub2 && touch {w}/sub2/after")
    got = kinds(events())
    check(("create", "/sub2/after", "0") in got, f"WATCH: a moved subdirectory keeps its new path ({got})",
          failures)
    run(f"mkdir -p {base}/outside/deep && mv {w}/sub2 {base}/outside/gone && touch {base}/outside/gone/x && "
        f"mv {base}/outside/deep {w}/in")
    got = kinds(events(0.3))  # a directory moved in is watched once its move_to is read
    run(f"touch {w}/in/y")
    got += kinds(events())
    check(got == [("move_from", "/sub2", "1"), ("move_to", "/in", "1"), ("create", "/in/y", "0")],
          f"WATCH: a directory moved out is no longer watched, one moved in is ({got})", failures)
    a.send("PAUSE", 71)
    run(f"touch {w}/while-paused")
    got = events(0.3)
    a.send("RESUME", 71)
    got2 = kinds(events(0.4))
    check(got == [] and ("create", "/while-paused", "0") in got2,
          f"WATCH: PAUSE holds events, RESUME delivers them ({got} {got2})", failures)
    a.send("CANCEL", 71)
    run(f"touch {w}/late")
    got = events(0.4)
    check(got == [], f"CANCEL ends a WATCH without an answer ({got})", failures)
    _, name, text = a.fop("WATCH", 73, path=w)
    run(f"rm -r {w}")
    fr = [f for f in events(0.5, chan=73) if f[0] != "EVENT"]
    check(name == "OK" and fr and fr[-1][0] == "ERROR" and fr[-1][1].decode().startswith(
        "ENOENT: the watched directory is gone"), f"WATCH of a removed directory ends with ERROR ENOENT ({fr})",
        failures)
    _, name, text = a.fop("WATCH", 74, path=f"{base}/r/big")
    check(name == "ERROR" and text.startswith("ENOTDIR: "), f"WATCH of a file: {text}", failures)


def exercise_limits(a, failures, base, pid):
    """Host only (the test reads the agent's memory and makes big trees directly): flow control
    of FREAD, FLIST's and WATCH's limits."""
    big = os.path.join(base, "flow.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 24)
    a.send("FREAD", 80, kv(("path", big)))
    time.sleep(1.5)  # the host reads nothing meanwhile

    def rss_kb():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    held = rss_kb()
    fr = a.collect(80, timeout=60)
    n = sum(len(p) for name, p in fr if name == "DATA")
    check(held < 16 << 10 and n == 24 << 20 and fr[-1][0] == "OK",
          f"FREAD of 24 MiB to a host that does not read: agent RSS {held} KiB, then all {n} bytes", failures)

    many = os.path.join(base, "toomany")
    os.mkdir(many)
    for i in range(100001):
        os.close(os.open(os.path.join(many, str(i)), os.O_CREAT | os.O_WRONLY, 0o644))
    fr, name, text = a.fop("FLIST", 81, path=many)
    check(fr == [] and name == "ERROR" and text.startswith("E2BIG: "),
          f"FLIST of 100001 entries: E2BIG and nothing else ({len(fr)} frames, {text})", failures)
    os.unlink(os.path.join(many, "0"))
    fr, name, text = a.fop("FLIST", 82, path=many, timeout=120)
    check(name == "OK" and len(fr) == 100000, f"FLIST of 100000 entries: all of them ({len(fr)})", failures)
    shutil.rmtree(many)

    flood = os.path.join(base, "flood")
    os.mkdir(flood)
    fr, name, text = a.fop("WATCH", 85, path=flood)
    a.send("PAUSE", 85)
    a.send("PING", 0, b"f")
    a.wait_for(0, ("PONG",))
    qmax = int(open("/proc/sys/fs/inotify/max_queued_events").read())
    for i in range(qmax + 1000):  # more than the kernel queues while nobody reads
        os.close(os.open(os.path.join(flood, str(i)), os.O_CREAT | os.O_WRONLY, 0o644))
    a.send("RESUME", 85)
    fr = a.collect(85, last=("ERROR",), timeout=20)
    check(name == "OK" and fr[-1][1].decode().startswith("EOVERFLOW: "),
          f"WATCH: a queue overflow while paused ends it with EOVERFLOW ({len(fr)} frames, {fr[-1][1][:60]})",
          failures)
    shutil.rmtree(flood)

    tree = os.path.join(base, "wtree")
    for i in range(8191):
        os.makedirs(os.path.join(tree, "d%d" % (i // 100), "e%d" % i) if i >= 100 else os.path.join(tree, "d%d" % i),
                    exist_ok=True)
    ndirs = sum(len(ds) for _, ds, _ in os.walk(tree)) + 1
    os.makedirs(os.path.join(tree, "x", "y"))
    fr, name, text = a.fop("WATCH", 83, path=tree, recursive="1")
    check(name == "ERROR" and text.startswith("ENOSPC: "), f"WATCH of {ndirs + 2} directories: {text}", failures)
    shutil.rmtree(os.path.join(tree, "x"))
    fr, name, text = a.fop("WATCH", 84, path=tree, recursive="1")
    check(name == "OK" and ndirs == 8192, f"WATCH of {ndirs} directories: OK ({text})", failures)
    os.mkdir(os.path.join(tree, "one-more"))
    fr = a.collect(84, last=("ERROR",), timeout=10)
    check(fr[-1][1].decode().startswith("ENOSPC: ") and fr[-2][0] == "EVENT",
          f"WATCH: the 8193rd directory ends it with ENOSPC ({fr[-2:]})", failures)


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
        exercise_tty(a, failures)
        exercise_files(a, failures, "/root/ft", in_vm=True)
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
        exercise_tty(a, failures)
        base = tempfile.mkdtemp(prefix="mags-drv-files-")
        try:
            exercise_files(a, failures, base)
            a.verbose = False  # 100000 INFO frames
            exercise_limits(a, failures, base, p.pid)
            a.verbose = True
        finally:
            shutil.rmtree(base, ignore_errors=True)
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
