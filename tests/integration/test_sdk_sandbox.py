# SPDX-License-Identifier: MIT
"""The SDKs' long-lived sandbox API (docs/sandboxes.md): exec with exit codes,
stdout/stderr and stdin, background processes (list, output, signals, wait),
a tty process driven through its stdin, and the files API (a 10 MB binary
round trip through streams, stat/list/mkdir/remove, errors, watch), for the
Python SDK (sdk/python) and the Node SDK (sdk/node), against a real magsd.

The first tests need no VM: they run the Python SDK against a small fake of
the sandbox endpoints (local processes and a local directory), to check the
streaming (NDJSON read as it arrives, base64, chunked and sized uploads,
a watch closed from another thread) and the option mapping.
"""
import base64
import hashlib
import http.server
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pytest

from conftest import ROOT, wait_for

SDK_DIR = os.path.join(ROOT, "sdk", "python")
sys.path.insert(0, SDK_DIR)

import mags  # noqa: E402
from mags import ExecResult, FileInfo, Mags, OutputEvent, Process, WatchEvent  # noqa: E402

NODE = shutil.which("node")
NODE_SDK = os.path.join(ROOT, "sdk", "node")


# ---- a fake of the sandbox endpoints (no VM) ------------------------------------------
class FakeProc:
    def __init__(self, pid, command, stdin, detached, cwd, env, tty):
        self.pid = pid
        self.command = command
        self.detached = detached
        self.tty = tty
        self.cwd = cwd
        self.events = []  # (stream, offset, bytes)
        self.size = 0
        self.cond = threading.Condition()
        self.exit = None
        self.signal = None
        self.stdin_open = stdin or tty
        self.popen = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=dict(os.environ, **(env or {})),
                                      stdin=subprocess.PIPE if self.stdin_open else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.pumps = [threading.Thread(target=self.pump, args=(s, n), daemon=True)
                      for s, n in ((self.popen.stdout, "stdout"), (self.popen.stderr, "stderr"))]
        for t in self.pumps:
            t.start()
        threading.Thread(target=self.reap, daemon=True).start()

    def pump(self, f, name):
        while True:
            data = os.read(f.fileno(), 4096)
            if not data:
                return
            with self.cond:
                self.events.append((name, self.size, data))
                self.size += len(data)
                self.cond.notify_all()

    def reap(self):
        rc = self.popen.wait()
        for t in self.pumps:
            t.join()
        with self.cond:
            if rc < 0:
                self.signal = -rc
                rc = 128 - rc
            self.exit = rc
            self.cond.notify_all()

    def json(self):
        return {"id": self.pid, "command": self.command, "tty": self.tty, "stdin": self.stdin_open,
                "detached": self.detached, "cwd": self.cwd, "status": "running" if self.exit is None else "exited",
                "exit_code": self.exit, "signal": self.signal, "timed_out": False, "started_at": self.started,
                "ended_at": None if self.exit is None else self.started, "output_bytes": self.size,
                "cols": 80, "rows": 24}

    def exit_event(self):
        return {"type": "exit", "offset": self.size, "exit_code": self.exit, "signal": self.signal,
                "timed_out": False, "status": "exited"}


class FakeSandbox:
    """The state of the fake: one sandbox named "box" (job id JOB), rooted in a temp dir."""
    JOB = "11111111-2222-4333-8444-555555555555"

    def __init__(self, root):
        self.root = root
        self.procs = {}
        self.next_pid = 1
        self.watchers = []
        self.requests = []  # (method, path, query, headers)
        self.lock = threading.Lock()

    def local(self, path):
        if not path or "\0" in path:
            return None
        parts = path.split("/")
        if any(p in (".", "..") for p in parts) or any(p == "" for p in parts[1:-1]):
            return None
        if not path.startswith("/"):
            path = "/root/" + path
        return os.path.join(self.root, path.lstrip("/"))

    def info(self, path, local):
        st = os.lstat(local)
        kind = "dir" if os.path.isdir(local) and not os.path.islink(local) else "file"
        return {"name": os.path.basename(path.rstrip("/")), "path": path if path.startswith("/") else "/root/" + path,
                "type": kind, "size": st.st_size, "mode": "%04o" % (st.st_mode & 0o7777),
                "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}

    def notify(self, ev):
        for w in list(self.watchers):
            w.append(ev)


class FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    box = None  # set per server

    def log_message(self, *a):
        pass

    # replies
    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, msg):
        self.reply(status, {"error": msg, "code": status})

    def start_chunked(self, ctype="application/x-ndjson"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                n = int(self.rfile.readline().strip(), 16)
                if n == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    # routing
    def route(self, method):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        box = self.box
        with box.lock:
            box.requests.append((method, u.path, q, dict(self.headers)))
        if self.headers.get("Authorization") != "Bearer tok":
            return self.error(401, "invalid token")
        prefix = "/api/v1/mags-jobs/"
        if not u.path.startswith(prefix):
            return self.error(404, "no such path")
        sid, _, action = u.path[len(prefix):].partition("/")
        if sid not in ("box", box.JOB):
            return self.error(404, 'job "%s" not found' % sid)
        if action == "exec" and method == "POST":
            return self.exec_(json.loads(self.body()))
        if action == "processes" and method == "GET":
            return self.reply(200, {"processes": [p.json() for _, p in sorted(box.procs.items())]})
        if action.startswith("processes/"):
            parts = action.split("/")
            p = box.procs.get(int(parts[1])) if parts[1].isdigit() else None
            if p is None:
                return self.error(404, "no process %s" % parts[1])
            sub = parts[2] if len(parts) > 2 else ""
            return self.process_(method, p, sub, q)
        if action.startswith("files"):
            return self.files_(method, action, q)
        return self.error(404, "no such endpoint")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def exec_(self, req):
        box = self.box
        if not isinstance(req.get("command"), str) or not req["command"]:
            return self.error(400, '"command" is required')
        with box.lock:
            pid = box.next_pid
            box.next_pid += 1
        p = FakeProc(pid, req["command"], bool(req.get("stdin")), bool(req.get("detach")),
                     req.get("cwd") or box.local("/root"), req.get("env"), bool(req.get("tty")))
        box.procs[pid] = p
        if req.get("detach"):
            return self.reply(201, p.json())
        self.start_chunked()
        self.chunk({"type": "start", "process": p.json()})
        self.stream(p, 0, follow=True)

    def stream(self, p, offset, follow):
        i = 0
        while True:
            with p.cond:
                while i >= len(p.events) and p.exit is None and follow:
                    p.cond.wait(0.5)
                evs = p.events[i:]
                i = len(p.events)
                done = p.exit is not None and i == len(p.events)
            for name, off, data in evs:
                if off + len(data) <= offset:
                    continue
                cut = max(0, offset - off)
                self.chunk({"type": name, "offset": off + cut, "data": base64.b64encode(data[cut:]).decode()})
            if done:
                self.chunk(p.exit_event())
                return self.end_chunked()
            if not follow:
                self.chunk({"type": "end", "offset": p.size})
                return self.end_chunked()

    def process_(self, method, p, sub, q):
        if sub == "" and method == "GET":
            return self.reply(200, p.json())
        if sub == "" and method == "DELETE":
            if p.exit is None:
                p.popen.kill()
            del self.box.procs[p.pid]
            return self.reply(200, {})
        if sub == "output" and method == "GET":
            self.start_chunked()
            off = q.get("offset", "0")
            return self.stream(p, p.size if off == "end" else int(off), q.get("follow") == "1")
        if sub == "stdin" and method == "POST":
            data = self.body()
            if not p.stdin_open or p.exit is not None:
                return self.error(409, "process %d has no open stdin" % p.pid)
            p.popen.stdin.write(data)
            p.popen.stdin.flush()
            if q.get("eof") == "1":
                p.popen.stdin.close()
                p.stdin_open = False
            return self.reply(200, {"bytes": len(data)})
        if sub == "signal" and method == "POST":
            req = json.loads(self.body())
            if p.exit is not None:
                return self.error(409, "process %d has ended" % p.pid)
            sig = req["signal"]
            if isinstance(sig, str):
                import signal as sigmod
                sig = getattr(sigmod, sig if sig.startswith("SIG") else "SIG" + sig)
            p.popen.send_signal(sig)
            return self.reply(200, p.json())
        if sub == "wait" and method == "GET":
            try:
                p.popen.wait(timeout=float(q.get("timeout", 30)))
            except subprocess.TimeoutExpired:
                pass
            for _ in range(100):
                if p.exit is not None or p.popen.poll() is None:
                    break
                time.sleep(0.01)
            return self.reply(200, p.json())
        if sub == "resize" and method == "POST":
            self.body()
            return self.error(409, "process %d has no terminal" % p.pid)
        return self.error(404, "no such endpoint")

    def files_(self, method, action, q):
        box = self.box
        if action == "files/mkdir":
            req = json.loads(self.body())
            path = req.get("path", "")
        else:
            path = q.get("path", "")
        local = box.local(path)
        if local is None:
            if method == "PUT":
                self.body()
            return self.error(400, "invalid path %r" % path)
        abspath = path if path.startswith("/") else "/root/" + path
        if action == "files" and method == "PUT":
            os.makedirs(os.path.dirname(local), exist_ok=True)
            existed = os.path.exists(local)
            with open(local, "wb") as f:
                f.write(self.body())
            os.chmod(local, int(q.get("mode", "0644"), 8))
            box.notify({"type": "modify" if existed else "create", "path": abspath, "dir": False})
            return self.reply(200, box.info(path, local))
        if action == "files/mkdir":
            if os.path.exists(local) and not req.get("parents"):
                return self.error(409, "%s: exists" % abspath)
            os.makedirs(local, exist_ok=True)
            return self.reply(201, box.info(path, local))
        if not os.path.lexists(local):
            return self.error(404, "%s: no such file or directory" % abspath)
        if action == "files" and method == "GET":
            if os.path.isdir(local):
                return self.error(400, "%s: is a directory" % abspath)
            size = os.path.getsize(local)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(local, "rb") as f:
                shutil.copyfileobj(f, self.wfile, 65536)
            return None
        if action == "files/stat":
            return self.reply(200, box.info(path, local))
        if action == "files/list":
            return self.reply(200, {"path": abspath, "entries": [box.info(abspath.rstrip("/") + "/" + n,
                                                                          os.path.join(local, n))
                                                                 for n in sorted(os.listdir(local))]})
        if action == "files" and method == "DELETE":
            if os.path.isdir(local):
                if os.listdir(local) and q.get("recursive") != "1":
                    return self.error(409, "%s: directory not empty" % abspath)
                shutil.rmtree(local)
            else:
                os.unlink(local)
            return self.reply(200, {})
        if action == "files/watch":
            events = []
            box.watchers.append(events)
            self.start_chunked()
            self.chunk({"type": "ready"})
            try:
                while True:
                    while events:
                        self.chunk(events.pop(0))
                    time.sleep(0.02)
            except OSError:
                box.watchers.remove(events)
            return None
        return self.error(404, "no such endpoint")


@pytest.fixture
def fake():
    """(client, box) against a fake of the sandbox endpoints on a free port."""
    root = tempfile.mkdtemp(prefix="mags-fake-")
    os.makedirs(os.path.join(root, "root"))
    box = FakeSandbox(root)
    handler = type("H", (FakeHandler,), {"box": box})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield Mags(token="tok", api_url="http://127.0.0.1:%d" % srv.server_address[1]), box
    finally:
        srv.shutdown()
        srv.server_close()
        for p in box.procs.values():
            if p.popen.poll() is None:
                p.popen.kill()
        shutil.rmtree(root, ignore_errors=True)


# ---- offline: the Python SDK against the fake ------------------------------------------
def test_offline_exec_and_processes(fake):
    client, box = fake
    live = []
    r = client.exec("box", "echo out; echo err >&2; exit 3", on_output=live.append)
    assert [(e.type, e.data) for e in live] in ([("stdout", b"out\n"), ("stderr", b"err\n")],
                                                 [("stderr", b"err\n"), ("stdout", b"out\n")]), live
    assert isinstance(r, ExecResult) and (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n"), r
    assert not r.ok and r.process.status == "exited" and r.process.exit_code == 3
    method, path, q, headers = box.requests[-1]
    assert (method, path) == ("POST", "/api/v1/mags-jobs/box/exec")
    # stdin (bytes or str), a list command, cwd/env; a Job works as the sandbox
    r = client.exec(mags.Job(client, {"id": box.JOB}), ["sh", "-c", "cat; echo \"$X\""], env={"X": "x y"},
                    stdin="in-put\n")
    assert (r.exit_code, r.stdout) == (0, b"in-put\nx y\n"), r
    assert box.requests[-1][1].endswith("/stdin") and box.requests[-1][2] == {"eof": "1"}
    assert client.exec("box", "head -c 3", stdin=b"").stdout == b""
    big = os.urandom(3 << 20)  # more than one 1 MiB stdin request
    r = client.exec("box", "sha256sum", stdin=big)
    assert r.stdout.split()[0].decode() == hashlib.sha256(big).hexdigest()
    # binary output survives base64
    assert client.exec("box", "printf '\\000\\377\\n'").stdout == b"\x00\xff\n"

    # background processes
    p = client.spawn("box", "echo started; read line; echo got $line; exit 5", stdin=True)
    assert isinstance(p, Process) and p.running and p.detached and p.stdin
    assert box.requests[-1][1] == "/api/v1/mags-jobs/box/exec"
    wait_for("its first line", lambda: client.process("box", p).output_bytes >= 8, timeout=10)
    evs = list(client.process_output("box", p.id))
    assert [e.type for e in evs] == ["stdout", "end"] and evs[0].data == b"started\n", evs
    assert evs[-1].offset == 8 and evs[0].next_offset == 8
    assert client.send_stdin("box", p, "hello\n", eof=True) == 6
    done = client.wait_process("box", p.id, timeout=10)
    assert (done.status, done.exit_code, done.done) == ("exited", 5, True), done
    evs = list(client.process_output("box", p.id, offset=8))
    assert [(e.type, e.data) for e in evs] == [("stdout", b"got hello\n"), ("exit", b"")], evs
    assert evs[-1].exit_code == 5
    with pytest.raises(mags.ConflictError):
        client.send_stdin("box", p, b"more")
    with pytest.raises(mags.ConflictError):
        client.kill("box", p)

    # follow: events arrive while it runs; a signal ends it
    s = client.spawn("box", "while :; do echo tick; sleep 0.1; done")
    stream = client.process_output("box", s, offset="end", follow=True)
    first = next(stream)
    assert first.type == "stdout" and first.data.startswith(b"tick"), first
    killed = client.kill("box", s, "INT")
    assert killed.id == s.id
    rest = list(stream)
    assert rest[-1].type == "exit" and rest[-1].exit_code == 130 and rest[-1].signal == 2, rest
    assert stream.complete and stream.closed
    assert [x.id for x in client.processes("box")] == [x.id for x in sorted(client.processes("box"), key=lambda x: x.id)]
    client.delete_process("box", s)
    with pytest.raises(mags.NotFoundError):
        client.process("box", s)
    with pytest.raises(mags.ConflictError):
        client.resize("box", p, 100, 40)
    with pytest.raises(mags.NotFoundError):
        client.exec("nobox", "true")

    # a follow stream closed from another thread while it waits
    q = client.spawn("box", "sleep 30")
    stream = client.process_output("box", q, offset="end", follow=True)
    threading.Timer(0.3, stream.close).start()
    t0 = time.monotonic()
    assert list(stream) == [] and time.monotonic() - t0 < 10
    client.delete_process("box", q)

    # types are checked before anything is sent
    n = len(box.requests)
    for bad in (lambda: client.exec("box", ""), lambda: client.exec("box", 5), lambda: client.exec("box", "x", env={"A": 1}),
                lambda: client.exec("box", "x", timeout="1"), lambda: client.spawn("box", "x", cols="80"),
                lambda: client.kill("box", 1, signal=2.0), lambda: client.process_output("box", 1, offset=-1),
                lambda: client.process("box", "one"), lambda: client.exec(None, "true")):
        with pytest.raises((TypeError, ValueError)):
            bad()
    assert len(box.requests) == n


def test_offline_files(fake, tmp_path):
    client, box = fake
    # a 10 MB binary round trip, streamed both ways; a sized file is sent with Content-Length
    blob = os.urandom(10 * 1000 * 1000)
    src = tmp_path / "blob.bin"
    src.write_bytes(blob)
    with open(src, "rb") as f:
        info = client.files.write("box", "/root/d/blob.bin", f, mode=0o600)
    assert isinstance(info, FileInfo) and (info.path, info.type, info.size, info.mode) == (
        "/root/d/blob.bin", "file", len(blob), 0o600), info
    put = [r for r in box.requests if r[0] == "PUT"][-1]
    assert put[3].get("Content-Length") == str(len(blob)) and put[2] == {"path": "/root/d/blob.bin", "mode": "0600"}
    out = tmp_path / "back.bin"
    assert client.files.read_to("box", "d/blob.bin", str(out)) == len(blob)
    assert out.read_bytes() == blob
    # a stream of unknown size (a pipe) goes chunked
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, b"piped data"), os.close(w)), daemon=True).start()
    with os.fdopen(r, "rb") as pipe:
        assert client.files.write("box", "piped.txt", pipe).size == 10
    put = [r for r in box.requests if r[0] == "PUT"][-1]
    assert put[3].get("Transfer-Encoding") == "chunked"
    assert client.files.read("box", "/root/piped.txt") == b"piped data"
    # bytes and str, a file object from the middle
    client.files.write("box", "t.txt", "héllo")
    assert client.files.read("box", "t.txt") == "héllo".encode()
    bio = io.BytesIO(b"skip-keep")
    bio.seek(5)
    assert client.files.write("box", "k.txt", bio).size == 4
    # stat, list, mkdir, remove
    assert client.files.mkdir("box", "/root/e/f").is_dir
    names = [e.name for e in client.files.list("box", "/root")]
    assert names == sorted(names) and {"d", "e", "t.txt", "k.txt", "piped.txt"} <= set(names), names
    assert client.files.stat("box", "t.txt").size == 6
    with pytest.raises(mags.ConflictError):
        client.files.remove("box", "/root/d")
    client.files.remove("box", "/root/d", recursive=True)
    assert not client.files.exists("box", "/root/d") and client.files.exists("box", "t.txt")
    # errors
    with pytest.raises(mags.NotFoundError):
        client.files.read("box", "/root/nope")
    with pytest.raises(mags.NotFoundError):
        client.files.read_to("box", "/root/nope", str(tmp_path / "nope"))
    assert not (tmp_path / "nope").exists()  # no local file for a missing one
    with pytest.raises(mags.BadRequestError):
        client.files.read("box", "../etc/passwd")
    with pytest.raises(mags.BadRequestError):
        client.files.write("box", "/root/../x", blob)  # the error reply of a large body is read, not a broken pipe
    with pytest.raises(mags.BadRequestError):
        client.files.read("box", "/root/e")
    with pytest.raises(TypeError):
        client.files.write("box", "x", 5)
    with pytest.raises(TypeError):
        client.files.write("box", "x", b"", mode="644")
    # watch: ready before it returns; closable from another thread
    w = client.files.watch("box", "/root")
    client.files.write("box", "/root/new.txt", b"x")
    ev = next(w)
    assert isinstance(ev, WatchEvent) and (ev.type, ev.path, ev.is_dir) == ("create", "/root/new.txt", False), ev
    threading.Timer(0.3, w.close).start()
    assert list(w) == [] and w.closed
    with client.files.watch("box", "/root", recursive=True) as w2:
        client.files.write("box", "/root/new.txt", b"y")
        assert next(w2).type == "modify"
    assert box.requests[-2][2] == {"path": "/root", "recursive": "1"}


def test_offline_new_sandbox(monkeypatch):
    """new(): an existing running job of the workspace is the sandbox; else one is submitted and waited for."""
    from mags._http import Transport

    sent = []
    state = {"jobs": []}

    def call(self, method, path, body=None, query=None):
        sent.append((method, path, body, query))
        if method == "GET" and path == "/mags-jobs":
            return {"jobs": [j for j in state["jobs"] if j["status"] == query["status"]
                             and j["workspace"] == query["workspace"]]}
        if method == "POST" and path == "/mags-jobs":
            job = {"id": "j%d" % (len(state["jobs"]) + 1), "status": "queued", "workspace": body["workspace"]}
            state["jobs"].append(job)
            return dict(job)
        if method == "GET":
            job = next(j for j in state["jobs"] if path.endswith(j["id"]))
            job["status"] = "running"
            return dict(job)
        raise AssertionError((method, path))

    monkeypatch.setattr(Transport, "call", call)
    client = Mags(token="t", api_url="http://127.0.0.1:1")
    box = client.new("box", persist=True, image="busybox")
    assert box.status == "running" and box.id == "j1"
    submit = [s for s in sent if s[:2] == ("POST", "/mags-jobs")]
    assert submit[0][2] == {"script": "exec sleep 2147483647", "type": "inline", "workspace": "box", "persist": True,
                            "image": "busybox"}
    again = client.new("box")
    assert again.id == "j1" and len([s for s in sent if s[:2] == ("POST", "/mags-jobs")]) == 1


# ---- against a real magsd: the Python SDK ------------------------------------------------
def client_of(magsd):
    return Mags(token=magsd.token, api_url=magsd.url)


def raw_stream(magsd, method, path, body=None):
    """An NDJSON reply read to its end with every line checked against docs/api.yaml."""
    from openapi import check_ndjson_line

    resp = magsd.request(method, path, body=body, timeout=120)
    assert getattr(resp, "status", None) == 200, resp
    lines = []
    with resp:
        for line in resp:
            if line.strip():
                obj = json.loads(line)
                check_ndjson_line(method, path, obj)
                lines.append(obj)
    return lines


def test_python_exec_and_processes(magsd):
    client = client_of(magsd)
    box = client.new("pybox")
    assert box.status == "running" and box.workspace == "pybox"
    assert client.new("pybox").id == box.id  # the running sandbox is reused

    # exec: exit codes, both streams, stdin, cwd/env, timeout; by name, id or Job
    r = client.exec("pybox", "echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n"), r
    assert r.process.id >= 1 and r.process.status == "exited" and r.process.exit_code == 3
    r = client.exec(box, "cat; echo; pwd; echo $X", stdin=b"from-stdin", cwd="/tmp", env={"X": "x y"})
    assert (r.exit_code, r.stdout) == (0, b"from-stdin\n/tmp\nx y\n"), r
    r = client.exec(box.id, ["sh", "-c", "echo \"$0\" \"$1\"", "a b", "c'd"])
    assert r.stdout == b"a b c'd\n", r
    big = os.urandom(3 << 20)  # stdin over several 1 MiB requests
    r = client.exec("pybox", "sha256sum", stdin=big)
    assert r.exit_code == 0 and r.stdout.split()[0].decode() == hashlib.sha256(big).hexdigest(), r
    r = client.exec("pybox", "head -c 2000000 /dev/urandom | base64 -w0 | head -c 1500000")
    assert len(r.stdout) == 1500000, len(r.stdout)
    r = client.exec("pybox", "sleep 30", timeout=1)
    assert r.exit_code == 124 and r.process.timed_out, r
    with pytest.raises(mags.NotFoundError):
        client.exec("no-such-box", "true")

    # a background process: listed, its output read later, signalled, waited for
    p = client.spawn("pybox", "echo begin; trap 'echo got-term; exit 7' TERM; while :; do sleep 0.2; done")
    assert isinstance(p, Process) and p.running and p.detached
    assert p.id in [x.id for x in client.processes("pybox")]
    st, listed = magsd.api("GET", "/mags-jobs/pybox/processes")  # checked against docs/api.yaml
    assert st == 200 and p.id in [x["id"] for x in listed["processes"]], listed
    wait_for("its first line", lambda: client.process("pybox", p).output_bytes >= 6)
    evs = list(client.process_output("pybox", p))
    assert b"".join(e.data for e in evs) == b"begin\n" and evs[-1].type == "end" and evs[-1].offset == 6, evs
    assert client.wait_process("pybox", p, timeout=1).running  # the time ran out: as it is
    follow = client.process_output("pybox", p, offset="end", follow=True)
    assert client.kill("pybox", p).id == p.id
    rest = list(follow)  # (sh may also say "Terminated" on stderr for its sleep)
    assert b"".join(e.data for e in rest if e.type == "stdout") == b"got-term\n" and rest[-1].type == "exit", rest
    assert rest[-1].exit_code == 7 and follow.complete
    done = client.wait_process("pybox", p.id)
    assert (done.status, done.exit_code, done.done, done.ended_at is not None) == ("exited", 7, True, True), done
    again = list(client.process_output("pybox", p, offset=6))
    assert again[0].offset == 6 and again[-1].type == "exit" and again[-1].offset == rest[-1].offset, again
    assert [e.data for e in again if e.type == "stdout"] == [e.data for e in rest if e.type == "stdout"], again
    with pytest.raises(mags.ConflictError):
        client.kill("pybox", p, "INT")
    with pytest.raises(mags.ConflictError):
        client.send_stdin("pybox", p, b"x")
    q = client.spawn("pybox", "sleep 60")
    assert client.kill("pybox", q, 9).id == q.id
    assert client.wait_process("pybox", q, timeout=30).exit_code == 137
    client.delete_process("pybox", q)
    with pytest.raises(mags.NotFoundError):
        client.process("pybox", q)

    # a background process fed through its stdin
    c = client.spawn("pybox", "read a; read b; echo \"$b-$a\"", stdin=True)
    assert c.stdin
    client.send_stdin("pybox", c, "one\n")
    client.send_stdin("pybox", c, b"two\n", eof=True)
    assert client.wait_process("pybox", c, timeout=30).exit_code == 0
    assert b"".join(e.data for e in client.process_output("pybox", c)) == b"two-one\n"

    # a tty process: its input through send_stdin, resized, exit code 3
    t = client.spawn("pybox", "/bin/sh", tty=True, cols=100, rows=30)
    assert t.tty and t.stdin and (t.cols, t.rows) == (100, 30), t
    assert (client.resize("pybox", t, 120, 40).cols, client.process("pybox", t).rows) == (120, 40)
    client.send_stdin("pybox", t, "stty size; echo hi\n")
    wait_for("the shell's answer", lambda: b"hi" in b"".join(e.data for e in client.process_output("pybox", t)))
    client.send_stdin("pybox", t, "exit 3\n")
    end = client.wait_process("pybox", t, timeout=60)
    assert (end.status, end.exit_code) == ("exited", 3), end
    out = b"".join(e.data for e in client.process_output("pybox", t) if e.type == "stdout")
    assert b"40 120" in out and b"hi\r\n" in out, out
    with pytest.raises(mags.ConflictError):
        client.resize("pybox", p, 80, 24)  # not a tty

    # the stream's lines as docs/api.yaml describes them
    lines = raw_stream(magsd, "POST", "/mags-jobs/pybox/exec", {"command": "echo x; exit 4"})
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "exit" and lines[-1]["exit_code"] == 4, lines
    raw_stream(magsd, "GET", "/mags-jobs/pybox/processes/%d/output" % p.id)

    # an ended sandbox: 409
    client.stop(box)
    with pytest.raises(mags.ConflictError):
        client.exec(box, "true")  # by its id: the job has ended
    with pytest.raises(mags.NotFoundError):
        client.exec("pybox", "true")  # by name: the workspace has no running job


def test_python_files(magsd, mags_tmp):
    client = client_of(magsd)
    box = client.new("pyfiles")

    # a 10 MB binary round trip through streams
    blob = os.urandom(10 * 1000 * 1000)
    src = os.path.join(mags_tmp, "blob.bin")
    with open(src, "wb") as f:
        f.write(blob)
    with open(src, "rb") as f:
        info = client.files.write("pyfiles", "/root/data/blob.bin", f, mode=0o600)
    assert isinstance(info, FileInfo) and (info.path, info.type, info.size, info.mode) == (
        "/root/data/blob.bin", "file", len(blob), 0o600), info
    back = os.path.join(mags_tmp, "back.bin")
    with open(back, "wb") as f:
        assert client.files.read_to(box, "data/blob.bin", f) == len(blob)
    with open(back, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(blob).hexdigest()
    r = client.exec("pyfiles", "sha256sum /root/data/blob.bin")
    assert r.stdout.split()[0].decode() == hashlib.sha256(blob).hexdigest(), r
    # bytes, str, a pipe of unknown size (chunked)
    client.files.write("pyfiles", "hello.txt", "héllo\n")
    assert client.files.read("pyfiles", "/root/hello.txt") == "héllo\n".encode()
    rfd, wfd = os.pipe()
    threading.Thread(target=lambda: (os.write(wfd, b"piped " * 1000), os.close(wfd)), daemon=True).start()
    with os.fdopen(rfd, "rb") as pipe:
        assert client.files.write("pyfiles", "piped.txt", pipe).size == 6000
    assert client.exec("pyfiles", "wc -c < /root/piped.txt").stdout.strip() == b"6000"

    # stat, list, mkdir, remove
    st = client.files.stat("pyfiles", "hello.txt")
    assert (st.name, st.path, st.type, st.size, st.mode) == ("hello.txt", "/root/hello.txt", "file", 7, 0o644), st
    d = client.files.mkdir("pyfiles", "/root/a/b/c")
    assert d.is_dir and d.path == "/root/a/b/c"
    assert client.files.mkdir("pyfiles", "/root/a/b/c").is_dir  # parents: an existing one is fine
    st_, made = magsd.api("POST", "/mags-jobs/pyfiles/files/mkdir", {"path": "/root/a/b/c", "parents": True})
    assert st_ == 200 and made["type"] == "dir", (st_, made)  # checked against docs/api.yaml
    st_, made = magsd.api("POST", "/mags-jobs/pyfiles/files/mkdir", {"path": "/root/a/new"})
    assert st_ == 201 and made["path"] == "/root/a/new", (st_, made)
    with pytest.raises(mags.ConflictError):
        client.files.mkdir("pyfiles", "/root/a/b/c", parents=False)
    entries = client.files.list("pyfiles", "/root")
    names = [e.name for e in entries]
    assert names == sorted(names) and {"a", "data", "hello.txt", "piped.txt"} <= set(names), names
    assert next(e for e in entries if e.name == "a").is_dir
    st_, listing = magsd.api("GET", "/mags-jobs/pyfiles/files/list?path=/root")  # checked against docs/api.yaml
    assert st_ == 200 and listing["path"] == "/root", listing
    client.exec("pyfiles", "ln -s /etc/hostname /root/link")
    ln = client.files.stat("pyfiles", "/root/link")
    assert ln.is_symlink and ln.target == "/etc/hostname", ln
    with pytest.raises(mags.ConflictError):
        client.files.remove("pyfiles", "/root/a")  # not empty
    client.files.remove("pyfiles", "/root/a", recursive=True)
    client.files.remove("pyfiles", "/root/piped.txt")
    assert not client.files.exists("pyfiles", "/root/a") and not client.files.exists("pyfiles", "piped.txt")

    # errors
    with pytest.raises(mags.NotFoundError):
        client.files.read("pyfiles", "/root/missing")
    with pytest.raises(mags.NotFoundError):
        client.files.remove("pyfiles", "/root/missing")
    for bad in ("../etc/passwd", "/root/../etc/passwd", "/root/./x", "/root//x"):
        with pytest.raises(mags.BadRequestError):
            client.files.read("pyfiles", bad)
    with pytest.raises(mags.BadRequestError):
        client.files.write("pyfiles", "/root/../x", b"x" * (4 << 20))  # refused whatever the body
    with pytest.raises(mags.BadRequestError):
        client.files.read("pyfiles", "/root")  # a directory
    # the same through the raw API: error bodies and FileInfo as docs/api.yaml says
    assert magsd.api("GET", "/mags-jobs/pyfiles/files/stat?path=%2Froot%2Fmissing")[0] == 404
    assert magsd.api("GET", "/mags-jobs/pyfiles/files/stat?path=..%2Fetc")[0] == 400
    st_, link = magsd.api("GET", "/mags-jobs/pyfiles/files/stat?path=%2Froot%2Flink")
    assert st_ == 200 and (link["type"], link["target"]) == ("symlink", "/etc/hostname"), link

    # watch: ready when watch() returns; a file written through the API appears under its
    # name (magsd writes a temporary file and renames it: "move_to"), one a command makes
    # is a "create"
    with client.files.watch("pyfiles", "/root") as events:
        client.files.write("pyfiles", "/root/seen.txt", b"x")
        ev = next(ev for ev in events if ev.path == "/root/seen.txt")
        assert isinstance(ev, WatchEvent) and ev.type in ("create", "move_to") and not ev.is_dir, ev
        client.exec("pyfiles", "echo > /root/made.txt")
        ev = next(ev for ev in events if ev.path == "/root/made.txt")
        assert ev.type == "create" and not ev.is_dir, ev
    assert events.closed
    w = client.files.watch("pyfiles", "/root", recursive=True)
    client.files.mkdir("pyfiles", "/root/sub")
    client.exec("pyfiles", "touch /root/sub/deep.txt")
    seen = []
    for ev in w:
        seen.append((ev.type, ev.path, ev.is_dir))
        if ev.path == "/root/sub/deep.txt":
            break
    assert ("create", "/root/sub", True) in seen and ("create", "/root/sub/deep.txt", False) in seen, seen
    threading.Timer(0.5, w.close).start()  # a close from another thread ends a waiting read
    assert list(w) == []

    # the watch's lines as docs/api.yaml describes them
    from openapi import check_ndjson_line

    resp = magsd.request("GET", "/mags-jobs/pyfiles/files/watch?path=%2Froot")
    with resp:
        first = json.loads(resp.readline())
        check_ndjson_line("GET", "/mags-jobs/pyfiles/files/watch", first)
        assert first == {"type": "ready"}, first
        client.exec("pyfiles", "mkdir /root/rawdir")
        while True:
            line = resp.readline()
            if not line.strip():
                continue
            obj = json.loads(line)
            check_ndjson_line("GET", "/mags-jobs/pyfiles/files/watch", obj)
            if obj["path"] == "/root/rawdir":
                assert (obj["type"], obj["dir"]) == ("create", True), obj
                break
    client.stop(box)
