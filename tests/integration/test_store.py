# SPDX-License-Identifier: MIT
"""Object store and workspace sync, end to end through build/.../mags-store.

Every test runs against both back ends: file:// (a temporary directory) and
s3:// (a real S3 endpoint, s3rver, behind tests/integration/s3rver.py's
SigV4-checking proxy). Disks are 16 GiB sparse images with a few MiB of
random data, like a real workspace. See docs/sync-format.md.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3rver import S3rver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.abspath(os.environ.get("MAGS_BIN_DIR", os.path.join(ROOT, "build/san/bin")))
TOOL = os.path.join(BIN_DIR, "mags-store")
MiB = 1 << 20
DISK = 16 << 30
SAN = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture(scope="module")
def s3():
    if not os.path.exists(TOOL):
        pytest.fail("%s missing: make SANITIZE=address,undefined BUILD=build/san bins" % TOOL)
    d = tempfile.mkdtemp(prefix="mags-s3-", dir="/tmp")
    srv = S3rver(d)
    srv.start()
    yield srv
    srv.stop()
    subprocess.run(["rm", "-rf", d])


class Store:
    """One fresh store (file:// directory or s3 bucket) and the mags-store tool."""

    def __init__(self, kind, tmp, srv):
        self.kind, self.tmp, self.srv = kind, str(tmp), srv
        self.env = dict(os.environ, **SAN)
        if kind == "file":
            self.dir = os.path.join(self.tmp, "store")
            self.url = "file://" + self.dir
        else:
            bucket = "b" + uuid.uuid4().hex[:12]
            srv.create_bucket(bucket)
            self.url = "s3://%s/some/prefix" % bucket
            self.env.update(srv.env({}))

    def run(self, *args, env=None, check=True, timeout=300):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([TOOL] + [str(a) for a in args], env=e, capture_output=True, timeout=timeout)
        err = p.stderr.decode(errors="replace")
        assert not any(m in err for m in SAN_MARKERS), err
        if check and p.returncode != 0:
            raise AssertionError("mags-store %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode, err))
        return p.returncode, p.stdout, err

    def stats(self, *args, **kw):
        import json
        _, out, _ = self.run(*args, **kw)
        return json.loads(out.decode().strip().splitlines()[-1])

    def ls(self, prefix=""):
        _, out, _ = self.run("ls", self.url, prefix)
        return out.decode().split("\n")[:-1]

    def put_bytes(self, key, data):
        path = os.path.join(self.tmp, "put.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.run("put", self.url, key, path)

    def get_bytes(self, key):
        rc, out, err = self.run("get", self.url, key, "-", check=False)
        return out if rc == 0 else None


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path, s3):
    return Store(request.param, tmp_path, s3 if request.param == "s3" else None)


def make_disk(path, regions, size=DISK):
    """A sparse disk of size bytes with random data at (offset, length) regions."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, n in regions:
            f.seek(off)
            f.write(os.urandom(n))


def extents(path):
    """Data extents (start, end) of a sparse file."""
    out, off = [], 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h))
            off = h
    finally:
        os.close(fd)
    return out


def same_content(a, b):
    """Byte equality of two sparse files, reading only their data extents."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for d, h in extents(a) + extents(b):
            fa.seek(d)
            fb.seek(d)
            while d < h:
                n = min(h - d, 8 * MiB)
                if fa.read(n) != fb.read(n):
                    return False
                d += n
    return True


def chunk_keys(store):
    return [k for k in store.ls("chunks/") if re.fullmatch(r"chunks/[0-9a-f]{2}/[0-9a-f]{64}", k)]


def test_put_get_list_delete(store):
    store.put_bytes("a/b/one", b"one")
    store.put_bytes("a/two words & <xml>", b"two")
    store.put_bytes("zzz", b"")
    assert store.get_bytes("a/b/one") == b"one"
    assert store.get_bytes("a/two words & <xml>") == b"two"
    assert store.get_bytes("zzz") == b""
    assert store.ls() == ["a/b/one", "a/two words & <xml>", "zzz"]
    assert store.ls("a/") == ["a/b/one", "a/two words & <xml>"]
    assert store.ls("a/t") == ["a/two words & <xml>"]
    assert store.ls("nothing/") == []
    store.run("rm", store.url, "a/b/one")
    store.run("rm", store.url, "a/b/one")  # missing: fine
    assert store.ls() == ["a/two words & <xml>", "zzz"]
    rc, _, err = store.run("get", store.url, "a/b/one", "-", check=False)
    assert rc == 3 and "GET a/b/one: no such object" in err
    rc, _, err = store.run("get", store.url, "../etc/passwd", "-", check=False)
    assert rc == 1 and "invalid key" in err


def test_list_paginates(store):
    """S3 returns at most 1000 keys a page: list follows continuation tokens."""
    n = 1050 if store.kind == "s3" else 50
    keys = ["many/%05d" % i for i in range(n)]
    if store.kind == "s3":
        from concurrent.futures import ThreadPoolExecutor
        bucket = store.url[5:].split("/")[0]
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda k: store.srv.put_unsigned(bucket, "some/prefix/" + k, b"x"), keys))
    else:
        for k in keys:
            os.makedirs(os.path.join(store.dir, "many"), exist_ok=True)
            with open(os.path.join(store.dir, k), "wb") as f:
                f.write(b"x")
    assert store.ls("many/") == keys
    assert store.ls("many/00") == keys[:1000]
    assert store.ls() == keys


def test_multipart_put(store):
    data = os.urandom(5 * MiB + 12345)
    path = os.path.join(store.tmp, "big")
    with open(path, "wb") as f:
        f.write(data)
    if store.kind == "s3":
        before = len(store.srv.requests)
    store.run("put", store.url, "big/obj", path, env={"MAGS_STORE_MULTIPART_MIN": str(MiB)})
    assert store.get_bytes("big/obj") == data
    if store.kind == "s3":
        reqs = store.srv.requests[before:]
        parts = [p for m, p in reqs if m == "PUT" and "partNumber=" in p]
        assert any(m == "POST" and "uploads=" in p for m, p in reqs)
        assert len(parts) == 6
        assert any(m == "POST" and "uploadId=" in p for m, p in reqs)


def test_push_pull_incremental_dedup(store):
    disk, out = os.path.join(store.tmp, "disk.img"), os.path.join(store.tmp, "out.img")
    make_disk(disk, [(0, 3 * MiB + 5), (700 * MiB, 2 * MiB), (DISK - 4096, 4096)])
    st = store.stats("push", store.url, "ws1", disk, '{"image":"test"}')
    assert st["version"] == 1 and st["disk_bytes"] == DISK
    assert st["data_chunks"] == 7 and st["uploaded_chunks"] == 7
    assert len(chunk_keys(store)) == 7
    full = st["uploaded_bytes"]
    pl = store.stats("pull", store.url, "ws1", out)
    assert pl["version"] == 1 and pl["downloaded_bytes"] == full
    assert same_content(disk, out)
    assert os.stat(out).st_blocks * 512 < 64 * MiB  # came back sparse
    _, o, _ = store.run("latest", store.url, "ws1")
    assert b'"version":1' in o and b'"image":"test"' in o

    # change 1 MiB (aligned): one new chunk
    with open(disk, "r+b") as f:
        f.seek(700 * MiB)
        f.write(os.urandom(MiB))
    st = store.stats("push", store.url, "ws1", disk)
    assert st["version"] == 2 and 1 <= st["uploaded_chunks"] <= 2
    assert st["uploaded_bytes"] <= 2 * MiB + 4096
    os.unlink(out)
    store.stats("pull", store.url, "ws1", out)
    assert same_content(disk, out)
    st = store.stats("push", store.url, "ws1", disk)
    assert st["version"] == 3 and st["uploaded_chunks"] == 0
    assert store.ls("workspaces/ws1/") == ["workspaces/ws1/%020d.json" % v for v in (2, 3)]

    # another workspace with the same data uploads nothing
    st = store.stats("push", store.url, "ws2", disk)
    assert st["version"] == 1 and st["uploaded_chunks"] == 0 and st["data_chunks"] == 7


def test_kill_mid_push_keeps_previous_version(store):
    disk, out = os.path.join(store.tmp, "disk.img"), os.path.join(store.tmp, "out.img")
    make_disk(disk, [(0, 2 * MiB)])
    store.stats("push", store.url, "k", disk)
    with open(disk, "rb") as f:
        v1 = f.read(2 * MiB)
    make_disk(disk, [(0, 96 * MiB)])
    before = len(chunk_keys(store))
    p = subprocess.Popen([TOOL, "push", store.url, "k", disk], env=dict(store.env, MAGS_WSYNC_THREADS="2"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(chunk_keys(store)) < before + 3:
        assert p.poll() is None, "push finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert len(chunk_keys(store)) < 98  # it really was mid-way
    _, o, _ = store.run("latest", store.url, "k")
    assert b'"version":1' in o
    st = store.stats("pull", store.url, "k", out)
    assert st["version"] == 1
    with open(out, "rb") as f:
        assert f.read(2 * MiB) == v1
    assert os.path.getsize(out) == DISK and extents(out)[-1][1] <= 2 * MiB
    # and the next push completes, reusing what the killed one stored
    st = store.stats("push", store.url, "k", disk)
    assert st["version"] == 2 and st["uploaded_chunks"] < 96


def test_corrupt_chunk_fails_pull(store):
    disk, out = os.path.join(store.tmp, "disk.img"), os.path.join(store.tmp, "out.img")
    make_disk(disk, [(5 * MiB, 3 * MiB)])
    store.stats("push", store.url, "c", disk)
    key = chunk_keys(store)[1]
    store.put_bytes(key, b"\x28\xb5\x2f\xfd garbage, not a chunk")
    rc, _, err = store.run("pull", store.url, "c", out, check=False)
    assert rc == 1
    m = re.search(r"workspace c: chunk (\d+) \(sha256 ([0-9a-f]{64})\) is corrupt", err)
    assert m, err
    assert m.group(2) == key.split("/")[-1] and int(m.group(1)) in (5, 6, 7)
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(store.tmp) if n.startswith("out.img")]
    # a valid zstd frame of other bytes: a hash mismatch
    with open(disk, "rb") as f:
        f.seek(5 * MiB)
        other = f.read(MiB)
    zst = subprocess.run(["zstd", "-q", "-c", "-1"], input=other[::-1], capture_output=True, check=True).stdout
    store.put_bytes(key, zst)
    rc, _, err = store.run("pull", store.url, "c", out, check=False)
    assert rc == 1 and "is corrupt: hash mismatch" in err, err
    assert not os.path.exists(out)
    # a manifest that does not parse names its key
    store.put_bytes("workspaces/c/00000000000000000002.json", b"{not json")
    rc, _, err = store.run("pull", store.url, "c", out, check=False)
    assert rc == 1 and "workspaces/c/00000000000000000002.json" in err, err


def test_delete_collects_unreferenced_chunks(store):
    a, b = os.path.join(store.tmp, "a.img"), os.path.join(store.tmp, "b.img")
    make_disk(a, [(0, 4 * MiB)])
    with open(a, "rb") as f:
        shared = f.read(2 * MiB)
    make_disk(b, [(10 * MiB, 2 * MiB)])
    with open(b, "r+b") as f:
        f.seek(0)
        f.write(shared)  # chunks 0 and 1 are shared with a
    store.stats("push", store.url, "a", a)
    store.stats("push", store.url, "b", b)
    assert len(chunk_keys(store)) == 6
    store.run("delete", store.url, "a")
    assert store.ls("workspaces/a/") == []
    assert len(chunk_keys(store)) == 4  # a's own two went; the shared two stay
    rc, _, err = store.run("latest", store.url, "a", check=False)
    assert rc == 3 and "no version" in err
    out = os.path.join(store.tmp, "out.img")
    store.stats("pull", store.url, "b", out)
    assert same_content(b, out)
    store.run("delete", store.url, "b")
    assert chunk_keys(store) == [] and store.ls("workspaces/") == []


def test_s3_wrong_secret(store):
    if store.kind != "s3":
        pytest.skip("s3 only")
    rc, _, err = store.run("ls", store.url, "", env={"AWS_SECRET_ACCESS_KEY": "wrong"}, check=False)
    assert rc == 1
    assert "store: LIST (all): HTTP 403 SignatureDoesNotMatch: The request signature" in err, err
    assert "tries" not in err  # a 4xx is never retried
    rc, _, err = store.run("ls", store.url, "", env={"AWS_ACCESS_KEY_ID": "nobody"}, check=False)
    assert rc == 1 and "HTTP 403 InvalidAccessKeyId" in err, err
    rc, _, err = store.run("ls", store.url, "", env={"AWS_ACCESS_KEY_ID": ""}, check=False)
    assert rc == 1 and "no credentials" in err


def test_s3_server_down_retries(tmp_path):
    srv = S3rver(tmp_path)
    srv.start()
    srv.create_bucket("gone")
    env = dict(os.environ, **SAN)
    env.update(srv.env({}))
    srv.stop()
    t0 = time.time()
    p = subprocess.run([TOOL, "ls", "s3://gone", ""], env=env, capture_output=True, timeout=60)
    took = time.time() - t0
    err = p.stderr.decode()
    assert p.returncode == 1
    assert "store: LIST (all):" in err and "after 5 tries" in err, err
    assert took >= 0.6  # 100+200+400+800 ms of backoff, +-50%


def test_s3_real_signatures_checked(s3):
    """Every request the other tests sent through the proxy carried a valid SigV4
    signature; only the deliberately wrong secret was refused."""
    assert all("signature mismatch" in r for r in s3.rejected)
