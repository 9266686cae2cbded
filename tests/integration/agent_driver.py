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
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

MSG = {1: "HELLO", 2: "STDOUT", 3: "STDERR", 4: "EXIT", 5: "ERROR", 6: "OK", 7: "PONG",
       32: "INIT", 33: "EXEC", 34: "STDIN", 35: "SIGNAL", 36: "POWEROFF", 37: "PING", 38: "FILE"}
M = {v: k for k, v in MSG.items()}
HDR = struct.Struct("<IHHI")  # len, type, flags, chan
EXIT_TIMEOUT = 0x1


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
    accel = args.accel
    cmd = [args.qemu, "-M", "microvm,acpi=off", "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
           "-m", "512", "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
           "-kernel", args.kernel,
           "-append", "console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/mags-agent quiet panic=-1 "
                      "reboot=t i8042.noaux i8042.nomux i8042.nopnp nomodule no_timer_check",
           "-drive", f"id=root,file={args.image},format=raw,if=none,readonly=on",
           "-device", "virtio-blk-device,drive=root",
           "-device", "virtio-serial-device",
           "-chardev", f"socket,id=ag,path={sock_path},server=on,wait=off",
           "-device", "virtserialport,chardev=ag,name=mags.agent",
           "-serial", f"file:{tmp}/console.log"]
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
