# SPDX-License-Identifier: MIT
"""The files API of a running sandbox (docs/sandboxes.md, "Files") and `mags cp`.

Most tests share one magsd and one sandbox (the module's `box`: a job on
workspace "fbox" whose script prepares a few files and symlinks, then
sleeps), so the suite boots one VM for all of them. Big transfers check
that magsd streams: its resident memory must not grow by anything near the
file's size while 100 MB go through it in either direction.
"""
import hashlib
import http.client
import io
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.parse

import pytest

from conftest import Magsd, kill_pids, qemu_pids, wait_for

BIG = 100 * 1000 * 1000            # bytes of the big round trips
RSS_SLACK = 48 << 20               # magsd may grow this much during one (its buffers are ~5 MiB)

SCRIPT = r"""
set -e
mkdir -p /root/data/sub /root/full/a/b
printf hello > /root/data/hello.txt
printf 'x%.0s' $(seq 1 1000) > /root/data/sub/k.bin
chmod 0600 /root/data/sub/k.bin
touch /root/full/a/b/c
ln -s /proc/1/root /root/esc1
ln -s /proc/self/root /root/esc2
ln -s /proc/1/root/etc /root/esc3
ln -s /etc /root/etc-link
ln -s hello.txt /root/data/link
echo guest-etc > /etc/mags-marker
echo ready
exec sleep 2147483647
"""


# ---- helpers -------------------------------------------------------------------

def q(**kw):
    return urllib.parse.urlencode(kw, quote_via=urllib.parse.quote)


def files_path(box, sub="", **query):
    s = "/mags-jobs/%s/files%s" % (box, "/" + sub if sub else "")
    return s + ("?" + q(**query) if query else "")


def conn(m, timeout=600):
    host, port = m.url[len("http://"):].split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def put_stream(m, box, path, fileobj, size, mode=None, token=None):
    """PUT /files from a file object, streamed; returns (status, JSON)."""
    query = {"path": path}
    if mode is not None:
        query["mode"] = mode
    c = conn(m)
    c.putrequest("PUT", "/api/v1" + files_path(box, **query))
    c.putheader("Authorization", "Bearer " + (token or m.token))
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    while True:
        b = fileobj.read(1 << 20)
        if not b:
            break
        c.send(b)
    r = c.getresponse()
    body = json.loads(r.read() or b"null")
    c.close()
    return r.status, body


def put(m, box, path, data, mode=None, token=None):
    return put_stream(m, box, path, io.BytesIO(data), len(data), mode=mode, token=token)


def get_bytes(m, box, path, token=None):
    """GET /files: (status, bytes) for 200, else (status, JSON error)."""
    c = conn(m)
    c.request("GET", "/api/v1" + files_path(box, path=path),
              headers={"Authorization": "Bearer " + (token or m.token)})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status == 200:
        return 200, data
    return r.status, json.loads(data)


class RssSampler:
    """Samples magsd's VmRSS every 20 ms while running; peak() - base is the growth."""

    def __init__(self, pid):
        self.pid = pid
        self.base = self.rss()
        self.max = self.base
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)

    def rss(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def run(self):
        while not self.stop:
            self.max = max(self.max, self.rss())
            time.sleep(0.02)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.t.join()

    def growth(self):
        return self.max - self.base


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def make_big(path, size=BIG):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 1 << 20))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def err_of(st_body):
    st, body = st_body
    return st, (body.get("error", "") if isinstance(body, dict) else body)


# ---- the shared sandbox ------------------------------------------------------------

@pytest.fixture(scope="module")
def box():
    """(magsd, job id) of a running sandbox on workspace "fbox" (SCRIPT ran)."""
    tmp = tempfile.mkdtemp(prefix="mags-", dir="/tmp")
    m = Magsd(tmp, max_concurrent=3)
    # ASan keeps freed memory in a quarantine (256 MiB by default): magsd's per-frame buffers
    # would fill it during a big transfer and read as growth; a small one still finds misuse
    if "ASAN_OPTIONS" in m.env:
        m.env["ASAN_OPTIONS"] += ":quarantine_size_mb=16"
    try:
        m.start()
        job = m.submit(SCRIPT, workspace="fbox")
        m.wait_output(job["id"], "ready")
        yield m, job["id"]
        m.api("POST", "/mags-jobs/%s/stop" % job["id"])
        m.wait_job(job["id"])
        rc = m.stop()
        m.check_clean(rc)
    finally:
        if m.proc is not None and m.proc.poll() is None:
            m.kill9()
        kill_pids(qemu_pids(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


# ---- stat, list, mkdir, remove ---------------------------------------------------

def test_stat_and_list(box):
    m, jid = box
    st, info = m.api("GET", files_path(jid, "stat", path="/root/data/hello.txt"))
    assert st == 200, info
    assert info["name"] == "hello.txt" and info["path"] == "/root/data/hello.txt"
    assert info["type"] == "file" and info["size"] == 5 and info["mode"] == "0644", info
    assert info["mtime"].endswith("Z") and "." in info["mtime"], info  # RFC 3339 with ms
    # relative paths are under /root; a workspace name works as the id
    st, info2 = m.api("GET", files_path("fbox", "stat", path="data/sub/k.bin"))
    assert st == 200 and info2["path"] == "/root/data/sub/k.bin" and info2["mode"] == "0600", info2
    assert info2["size"] == 1000
    # a symlink is described itself
    st, ln = m.api("GET", files_path(jid, "stat", path="/root/data/link"))
    assert st == 200 and ln["type"] == "symlink" and ln["target"] == "hello.txt", ln
    st, d = m.api("GET", files_path(jid, "stat", path="/root/data"))
    assert st == 200 and d["type"] == "dir", d
    st, lst = m.api("GET", files_path(jid, "list", path="/root/data"))
    assert st == 200, lst
    assert lst["path"] == "/root/data"
    names = [e["name"] for e in lst["entries"]]
    assert names == sorted(names) == ["hello.txt", "link", "sub"], names
    assert {e["name"]: e["type"] for e in lst["entries"]} == {"hello.txt": "file", "link": "symlink", "sub": "dir"}
    assert all(e["path"] == "/root/data/" + e["name"] for e in lst["entries"])
    st, root = m.api("GET", files_path(jid, "list", path="/"))
    assert st == 200 and "root" in [e["name"] for e in root["entries"]], root
    # errors
    st, e = err_of(m.api("GET", files_path(jid, "stat", path="/root/nope")))
    assert st == 404 and "/root/nope" in e, e
    st, e = err_of(m.api("GET", files_path(jid, "list", path="/root/data/hello.txt")))
    assert st == 400, e
    st, e = err_of(m.api("GET", files_path(jid, "list", path="/root/nope")))
    assert st == 404, e
    st, e = err_of(m.api("GET", files_path(jid, "stat")))
    assert st == 400 and "path" in e, e
    st, e = err_of(m.api("POST", files_path(jid, "stat", path="/root")))
    assert st == 405, e
    st, e = err_of(m.api("GET", files_path(jid, "nope", path="/root")))
    assert st == 404, e


def test_mkdir_remove_and_errors(box):
    m, jid = box
    st, d = m.api("POST", files_path(jid, "mkdir"), {"path": "/root/mk"})
    assert st == 201 and d["type"] == "dir" and d["path"] == "/root/mk" and d["mode"] == "0755", d
    st, e = err_of(m.api("POST", files_path(jid, "mkdir"), {"path": "/root/mk"}))
    assert st == 409, e
    st, d = m.api("POST", files_path(jid, "mkdir"), {"path": "/root/mk", "parents": True})
    assert st == 200 and d["type"] == "dir", d
    st, e = err_of(m.api("POST", files_path(jid, "mkdir"), {"path": "/root/mk2/x/y"}))
    assert st == 404, e
    st, d = m.api("POST", files_path(jid, "mkdir"), {"path": "mk2/x/y", "parents": True, "mode": "0700"})
    assert st == 201 and d["path"] == "/root/mk2/x/y" and d["mode"] == "0700", d
    st, e = err_of(m.api("POST", files_path(jid, "mkdir"), {"path": "/root/data/hello.txt", "parents": True}))
    assert st == 409, e
    st, e = err_of(m.api("POST", files_path(jid, "mkdir"), {"path": "/root/data/hello.txt/x"}))
    assert st == 400, e  # ENOTDIR
    for bad in ({}, {"path": 3}, {"path": "/root/x", "parents": "yes"}, {"path": "/root/x", "mode": "99"},
                {"path": "/root/x", "color": "red"}, {"path": "a/../b"}):
        st, e = err_of(m.api("POST", files_path(jid, "mkdir"), bad))
        assert st == 400, (bad, e)
    # remove: a file, an empty dir, a full dir only with recursive
    assert put(m, jid, "/root/mk/f", b"1")[0] == 200
    st, e = err_of(m.api("DELETE", files_path(jid, path="/root/mk")))
    assert st == 409, e  # not empty
    st, r = m.api("DELETE", files_path(jid, path="/root/mk/f"))
    assert st == 200 and r == {}, r
    st, r = m.api("DELETE", files_path(jid, path="/root/mk"))
    assert st == 200, r
    st, e = err_of(m.api("DELETE", files_path(jid, path="/root/mk")))
    assert st == 404, e
    st, e = err_of(m.api("DELETE", files_path(jid, path="/root/full")))
    assert st == 409, e
    st, r = m.api("DELETE", files_path(jid, path="/root/full", recursive="1"))
    assert st == 200, r
    assert m.api("GET", files_path(jid, "stat", path="/root/full"))[0] == 404
    st, e = err_of(m.api("DELETE", files_path(jid, path="/root/x", recursive="maybe")))
    assert st == 400, e
    # removing a symlink removes the link, not what it points to
    st, r = m.api("DELETE", files_path(jid, path="/root/data/link"))
    assert st == 200
    assert m.api("GET", files_path(jid, "stat", path="/root/data/hello.txt"))[0] == 200


def test_put_get_small_and_modes(box):
    m, jid = box
    st, info = put(m, jid, "new/deeper/file.bin", b"\x00\x01binary\xff", mode="0600")
    assert st == 200, info
    assert info["path"] == "/root/new/deeper/file.bin" and info["size"] == 9 and info["mode"] == "0600", info
    assert get_bytes(m, jid, "/root/new/deeper/file.bin") == (200, b"\x00\x01binary\xff")
    # replace it; default mode 0644; empty files
    st, info = put(m, "fbox", "/root/new/deeper/file.bin", b"")
    assert st == 200 and info["size"] == 0 and info["mode"] == "0644", info
    assert get_bytes(m, jid, "/root/new/deeper/file.bin") == (200, b"")
    # errors
    st, e = get_bytes(m, jid, "/root/data")
    assert st == 400, e  # a directory
    st, e = get_bytes(m, jid, "/root/missing")
    assert st == 404 and "/root/missing" in e["error"], e
    for mode in ("8", "abc", "-1", "77777", ""):
        st, e = put(m, jid, "/root/m", b"x", mode=mode)
        assert st == 400 and "mode" in e["error"], (mode, e)
    st, e = put(m, jid, "/root/data", b"x")
    assert st in (400, 409), e  # a directory is there
    st, e = put(m, jid, "/root/data/hello.txt/under", b"x")
    assert st == 400, e


def test_path_checks_and_escapes(box):
    m, jid = box
    for bad in ("../etc/passwd", "a/../../etc", "/root/../etc/passwd", "/root/./x", "./x", "/root//x", "/root/x/",
                "", "a" * 4097):
        for sub in ("stat", "list"):
            st, e = err_of(m.api("GET", files_path(jid, sub, path=bad)))
            assert st == 400, (sub, bad, e)
        st, e = get_bytes(m, jid, bad)
        assert st == 400, (bad, e)
        assert put(m, jid, bad, b"x")[0] == 400, bad
    # NUL bytes, which microhttpd's decoding would otherwise cut off
    for sub in ("stat", ""):
        st, e = err_of(m.api("GET", "/mags-jobs/%s/files%s?path=/root/data/hello.txt%%00/x" % (jid, "/" + sub if sub else "")))
        assert st == 400 and "NUL" in e, e
    # symlinks through /proc magic links are refused: the guest's PID 1 root is the host's view
    for p in ("/root/esc1/etc/passwd", "/root/esc2/etc/passwd", "/root/esc3/passwd", "/proc/1/root/etc/passwd",
              "/proc/self/root/etc/passwd"):
        st, e = get_bytes(m, jid, p)
        assert st == 400 and "escapes" in e["error"], (p, st, e)
        st, e = err_of(m.api("GET", files_path(jid, "list", path=p.rsplit("/", 1)[0])))
        assert st == 400 and "escapes" in e, (p, st, e)
        st, e = put(m, jid, p.rsplit("/", 1)[0] + "/mags-evil", b"x")
        assert st == 400 and "escapes" in e["error"], (p, st, e)
    # a plain symlink to /etc stays in the guest: the guest's file, not the host's
    st, data = get_bytes(m, jid, "/root/etc-link/mags-marker")
    assert st == 200 and data == b"guest-etc\n", (st, data)
    assert not os.path.exists("/etc/mags-marker")
    # the host's files are simply not there
    st, e = get_bytes(m, jid, os.path.join(m.state_dir, "mags.db"))
    assert st == 404, e
    st, e = err_of(m.api("GET", files_path(jid, "stat", path=m.state_dir)))
    assert st == 404, e


def test_not_running_and_other_users(box):
    m, jid = box
    done = m.submit("echo done")
    m.wait_job(done["id"])
    for method, sub, body in (("GET", "stat", None), ("GET", "list", None), ("GET", "", None),
                              ("DELETE", "", None), ("POST", "mkdir", {"path": "/root/x"}),
                              ("GET", "watch", None)):
        st, e = err_of(m.api(method, files_path(done["id"], sub, path="/root/x"), body))
        assert st == 409 and "needs a running sandbox" in e, (method, sub, e)
    st, e = put(m, done["id"], "/root/x", b"data")
    assert st == 409 and "running sandbox" in e["error"], e
    # another user sees none of it: 404, by id or by workspace name
    bob = m.create_token(user="bob")
    auth = {"Authorization": "Bearer " + bob}
    for who in (jid, "fbox"):
        st, e = err_of(m.api("GET", files_path(who, "stat", path="/root"), headers=auth, token=False))
        assert st == 404, e
        assert get_bytes(m, who, "/root/data/hello.txt", token=bob)[0] == 404
        st, e = put(m, who, "/root/bob", b"x", token=bob)
        assert st == 404, e
    assert m.api("GET", files_path(jid, "stat", path="/root/bob"))[0] == 404
    st, e = put(m, jid, "/root/x", b"x", token="nope")
    assert st == 401, e


# ---- watch ------------------------------------------------------------------------

class Watch:
    """GET /files/watch read on a thread; .events collects the lines."""

    def __init__(self, m, box, path, recursive=False):
        query = {"path": path}
        if recursive:
            query["recursive"] = "1"
        self.c = conn(m, timeout=120)
        self.c.request("GET", "/api/v1" + files_path(box, "watch", **query),
                       headers={"Authorization": "Bearer " + m.token})
        self.sock = self.c.sock
        self.resp = self.c.getresponse()
        self.events = []
        self.status = self.resp.status
        if self.status != 200:
            self.error = json.loads(self.resp.read())
            return
        first = json.loads(self.resp.readline())
        assert first == {"type": "ready"}, first
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            for line in self.resp:
                self.events.append(json.loads(line))
        except Exception:  # noqa: BLE001 - close() from the test's thread breaks the read in many ways
            pass

    def wait(self, pred, what, timeout=30):
        return wait_for(what + " in %r" % (self.events,), lambda: any(pred(e) for e in self.events), timeout=timeout)

    def close(self):
        """Hangs up at once (FIN), as a client that goes away does."""
        try:
            self.sock.shutdown(2)
        except OSError:
            pass
        self.resp.close()
        self.c.close()


def test_watch_events(box):
    m, jid = box
    assert m.api("POST", files_path(jid, "mkdir"), {"path": "/root/w/deep", "parents": True})[0] == 201
    w = Watch(m, jid, "/root/w")
    rw = Watch(m, "fbox", "/root/w", recursive=True)
    try:
        assert put(m, jid, "/root/w/a.txt", b"one")[0] == 200
        w.wait(lambda e: e["type"] == "create" and e["path"] == "/root/w/a.txt", "create of a.txt")
        # a write goes to a temporary name renamed over the file: one create each time, nothing of the temporary name
        assert put(m, jid, "/root/w/a.txt", b"two")[0] == 200
        wait_for("a second event for a.txt in %r" % (w.events,),
                 lambda: len([e for e in w.events if e["path"] == "/root/w/a.txt" and e["type"] == "create"]) >= 2,
                 timeout=30)
        assert not any(".mags-tmp-" in e["path"] for e in w.events), w.events
        assert m.api("DELETE", files_path(jid, path="/root/w/a.txt"))[0] == 200
        w.wait(lambda e: e["type"] == "delete" and e["path"] == "/root/w/a.txt", "delete of a.txt")
        assert m.api("POST", files_path(jid, "mkdir"), {"path": "/root/w/sub"})[0] == 201
        w.wait(lambda e: e["type"] == "create" and e["path"] == "/root/w/sub" and e["dir"] is True, "mkdir sub")
        # recursive: the deeper directory is watched too (the plain watch sees nothing there)
        assert put(m, jid, "/root/w/deep/b.txt", b"b")[0] == 200
        rw.wait(lambda e: e["path"] == "/root/w/deep/b.txt" and e["dir"] is False, "write in deep/")
        time.sleep(1)
        assert not any(e["path"].startswith("/root/w/deep/") for e in w.events), w.events
        # a move inside the tree: move_from then move_to
        assert m.api("POST", "/mags-jobs/%s/exec" % jid, {"command": "mv /root/w/deep/b.txt /root/w/deep/c.txt",
                                                           "detach": True})[0] == 201
        rw.wait(lambda e: e["type"] == "move_from" and e["path"] == "/root/w/deep/b.txt", "rename from b.txt")
        rw.wait(lambda e: e["type"] == "move_to" and e["path"] == "/root/w/deep/c.txt", "rename to c.txt")
        assert all(set(e) == {"type", "path", "dir"} for e in w.events + rw.events), (w.events, rw.events)
    finally:
        w.close()
        rw.close()
    # the watched directory goes away: the stream ends with an error line
    w2 = Watch(m, jid, "/root/w/sub")
    assert m.api("DELETE", files_path(jid, path="/root/w", recursive="1"))[0] == 200
    w2.t.join(30)
    assert not w2.t.is_alive(), w2.events
    assert w2.events and w2.events[-1]["type"] == "error" and "gone" in w2.events[-1]["error"], w2.events
    w2.close()
    # errors before the stream starts
    w3 = Watch(m, jid, "/root/nope")
    assert w3.status == 404, w3.error
    w4 = Watch(m, jid, "/root/data/hello.txt")
    assert w4.status == 400, w4.error


def test_watch_client_leaving_frees_the_channel(box):
    """Watches whose clients went away must not pile up: 300 short ones in a row
    would exceed the agent's 256 channels if a hung-up watch stayed open."""
    m, jid = box
    for i in range(40):
        w = Watch(m, jid, "/root")
        assert w.status == 200, (i, w.error)
        w.close()
    time.sleep(2)  # each watch notices its client's hang-up within a second
    w = Watch(m, jid, "/root")
    assert w.status == 200
    assert put(m, jid, "/root/after-watches", b"x")[0] == 200
    w.wait(lambda e: e["path"] == "/root/after-watches", "event after many watches")
    w.close()


# ---- big files: REST and mags cp -----------------------------------------------------

def test_big_round_trip_rest(box, tmp_path):
    m, jid = box
    src = str(tmp_path / "big.bin")
    digest = make_big(src)
    with RssSampler(m.proc.pid) as s, open(src, "rb") as f:
        t0 = time.time()
        st, info = put_stream(m, jid, "/root/big.bin", f, BIG)
        up_s = time.time() - t0
    assert st == 200 and info["size"] == BIG, info
    up_growth = s.growth()
    with RssSampler(m.proc.pid) as s2:
        t0 = time.time()
        c = conn(m)
        c.request("GET", "/api/v1" + files_path(jid, path="/root/big.bin"),
                  headers={"Authorization": "Bearer " + m.token})
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Type") == "application/octet-stream"
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        c.close()
        down_s = time.time() - t0
    down_growth = s2.growth()
    print("\n100 MB REST: up %.1f s (magsd RSS +%.1f MiB), down %.1f s (RSS +%.1f MiB)"
          % (up_s, up_growth / 2**20, down_s, down_growth / 2**20))
    assert n == BIG and h.hexdigest() == digest
    assert up_growth < RSS_SLACK, up_growth
    assert down_growth < RSS_SLACK, down_growth
    # the upload's temporary file is gone from magsd's state directory
    left = [p for p, _, fs in os.walk(os.path.join(m.state_dir, "uploads")) for x in fs if x.startswith(".files-")]
    assert not left, left


def test_slow_reader_download(box, tmp_path):
    """A reader that takes its time gets every byte (the channel is paused, not dropped)
    and a reader that leaves mid-way cancels the read."""
    m, jid = box
    src = str(tmp_path / "mid.bin")
    digest = make_big(src, 24 << 20)
    with open(src, "rb") as f:
        assert put_stream(m, jid, "/root/mid.bin", f, 24 << 20)[0] == 200
    c = conn(m)
    c.request("GET", "/api/v1" + files_path(jid, path="/root/mid.bin"), headers={"Authorization": "Bearer " + m.token})
    r = c.getresponse()
    h = hashlib.sha256()
    first = r.read(1 << 20)
    h.update(first)
    time.sleep(3)  # magsd holds at most a few MiB meanwhile
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        h.update(b)
    c.close()
    assert h.hexdigest() == digest
    for _ in range(5):  # leave after the first MiB
        c = conn(m)
        c.request("GET", "/api/v1" + files_path(jid, path="/root/mid.bin"),
                  headers={"Authorization": "Bearer " + m.token})
        sock = c.sock
        r = c.getresponse()
        assert len(r.read(1 << 20)) == 1 << 20
        sock.shutdown(2)
        r.close()
        c.close()
    time.sleep(2)
    assert get_bytes(m, jid, "/root/data/hello.txt") == (200, b"hello")


def test_big_round_trip_mags_cp(box, tmp_path):
    m, jid = box
    src = str(tmp_path / "big-cp.bin")
    digest = make_big(src)
    with RssSampler(m.proc.pid) as s:
        t0 = time.time()
        r = m.cli("-v", "cp", src, "fbox:/root/cp/")
        up_s = time.time() - t0
    assert r.returncode == 0, r.stderr
    st, info = m.api("GET", files_path(jid, "stat", path="/root/cp/big-cp.bin"))
    assert st == 200 and info["size"] == BIG, info
    dst_dir = tmp_path / "out"
    dst_dir.mkdir()
    with RssSampler(m.proc.pid) as s2:
        t0 = time.time()
        r = m.cli("cp", "%s:/root/cp/big-cp.bin" % jid, str(dst_dir))
        down_s = time.time() - t0
    assert r.returncode == 0, r.stderr
    print("\n100 MB mags cp: up %.1f s (magsd RSS +%.1f MiB), down %.1f s (RSS +%.1f MiB)"
          % (up_s, s.growth() / 2**20, down_s, s2.growth() / 2**20))
    assert sha256_file(str(dst_dir / "big-cp.bin")) == digest
    assert os.listdir(str(dst_dir)) == ["big-cp.bin"]  # no temporary left
    assert s.growth() < RSS_SLACK and s2.growth() < RSS_SLACK, (s.growth(), s2.growth())
    # the file's mode came along (0644 -> 0644 here; make it 0750 and see)
    os.chmod(src, 0o750)
    r = m.cli("cp", src, "fbox:/root/cp/x.bin")
    assert r.returncode == 0, r.stderr
    assert m.api("GET", files_path(jid, "stat", path="/root/cp/x.bin"))[1]["mode"] == "0750"


def test_mags_cp_small_cases(box, tmp_path):
    m, jid = box
    # stdin to a file, then out to stdout
    r = m.cli("cp", "-", "fbox:notes/from-stdin.txt", input="piped text\n")
    assert r.returncode == 0, r.stderr
    r = m.cli("cp", "fbox:/root/notes/from-stdin.txt", "-")
    assert r.returncode == 0 and r.stdout == "piped text\n", (r.stdout, r.stderr)
    # into an existing sandbox directory: keeps the name
    local = tmp_path / "local.txt"
    local.write_text("local\n")
    r = m.cli("cp", str(local), "fbox:/root/data")
    assert r.returncode == 0, r.stderr
    assert get_bytes(m, jid, "/root/data/local.txt") == (200, b"local\n")
    # out to a new local name, replacing nothing half-way
    r = m.cli("cp", "fbox:/root/data/hello.txt", str(tmp_path / "h.txt"))
    assert r.returncode == 0 and (tmp_path / "h.txt").read_bytes() == b"hello", r.stderr
    # failures: one line, exit 1, nothing left behind
    before = sorted(os.listdir(str(tmp_path)))
    r = m.cli("cp", "fbox:/root/x", str(tmp_path))
    assert r.returncode == 1 and r.stderr.strip() == "mags: cp: fbox:/root/x: no such file or directory", r.stderr
    r = m.cli("cp", "fbox:/root/data", str(tmp_path))
    assert r.returncode == 1 and "is a directory" in r.stderr, r.stderr
    r = m.cli("cp", "fbox:/root/esc1/etc/passwd", str(tmp_path))
    assert r.returncode == 1 and "escapes the sandbox" in r.stderr, r.stderr
    assert sorted(os.listdir(str(tmp_path))) == before
    r = m.cli("cp", str(tmp_path / "missing"), "fbox:/root/x")
    assert r.returncode == 1 and "missing" in r.stderr, r.stderr
    r = m.cli("cp", str(tmp_path), "fbox:/root/x")
    assert r.returncode == 1 and "is a directory" in r.stderr, r.stderr
    r = m.cli("cp", "-", "fbox:/root/data", input="x")
    assert r.returncode == 1 and "name the file" in r.stderr, r.stderr
    r = m.cli("cp", str(local), "nobox:/root/x")
    assert r.returncode == 1 and r.stderr.startswith("mags: cp: nobox:/root/x: ") and "nobox" in r.stderr[24:], r.stderr
    # usage errors: exit 2 before anything reaches magsd
    for args, what in ((("a", "b"), "neither"), (("fbox:/a", "fbox:/b"), "both"), (("a",), "missing"),
                       (("a", "b", "c"), "unexpected"), (("-x", "a", "fbox:/b"), "unknown flag")):
        r = m.cli("cp", *args)
        assert r.returncode == 2 and what in r.stderr, (args, r.stderr)
    r = m.cli("help", "cp")
    assert r.returncode == 0 and "NAME:PATH" in r.stdout


def test_queued_job_is_waited_for(box):
    """A request to a job that has not started yet waits for it to run; a watch
    on a sandbox that stops ends with an error line."""
    m, _ = box
    j = m.submit("echo hi; exec sleep 600")
    st, info = put(m, j["id"], "/root/early.txt", b"early")
    assert st == 200, info
    assert get_bytes(m, j["id"], "/root/early.txt") == (200, b"early")
    w = Watch(m, j["id"], "/root")
    assert w.status == 200
    m.api("POST", "/mags-jobs/%s/stop" % j["id"])
    m.wait_job(j["id"])
    w.t.join(30)
    assert not w.t.is_alive() and w.events and w.events[-1]["type"] == "error", w.events
    w.close()
