# SPDX-License-Identifier: MIT
"""Workspaces (issue 4) through magsd, real VMs and a real object store.

Local, named (-w), persistent (-p, pushed to the store and pulled back on a
host whose data directory is empty), base images and copy-on-write children
(--from, chains), ephemeral; file upload (-f, POST /upload); sync of a running
workspace; workspace list/delete and their 409s. The store is file:// here
and s3rver (a real S3 endpoint from npm) where s3rver can be installed.
No test asserts speed."""
import hashlib
import os
import time

import pytest

from conftest import JOB_TIMEOUT


def run(magsd, script, **fields):
    job = magsd.submit(script, **fields)
    job = magsd.wait_job(job["id"])
    return job, magsd.output(job["id"]), magsd.output(job["id"], "stderr") + magsd.output(job["id"], "system")


def run_ok(magsd, script, **fields):
    job, out, err = run(magsd, script, **fields)
    assert job["status"] == "completed", (job, err)
    return out


def workspaces(magsd):
    st, body = magsd.api("GET", "/workspaces")
    assert st == 200, body
    return {w["name"]: w for w in body["workspaces"]}


def wait_held(magsd, name, jid):
    deadline = time.time() + JOB_TIMEOUT
    while workspaces(magsd).get(name, {}).get("in_use_by") != jid:
        assert time.time() < deadline, "job %s never held workspace %s" % (jid, name)
        time.sleep(0.2)


def local_disks(magsd):
    d = os.path.join(magsd.state_dir, "workspaces", "local")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_named_workspace_reconnects_and_local_is_cleared(magsd):
    magsd.wait_template()
    r = magsd.cli("run", "-w", "proj", "echo one > /root/a; mkdir -p /srv/x; echo two > /srv/x/b")
    assert r.returncode == 0, r.stderr
    # what run 1 wrote anywhere in the root, run 2 sees
    assert run_ok(magsd, "cat /root/a /srv/x/b", workspace="proj") == "one\ntwo\n"
    # a local workspace is the job's own and goes away with it
    assert run_ok(magsd, "echo mine > /root/a; cat /root/a") == "mine\n"
    job, out, _ = run(magsd, "cat /root/a")
    assert job["status"] == "failed" and out == ""
    # left: only the blank disks of pooled VMs, one each
    deadline = time.time() + JOB_TIMEOUT
    while len(local_disks(magsd)) != magsd.fast_start()["pool"]:
        assert time.time() < deadline, (local_disks(magsd), magsd.fast_start())
        time.sleep(0.2)
    # the root is the overlay on the workspace disk; ephemeral keeps the tmpfs root
    assert "overlay" in run_ok(magsd, "grep ' / ' /proc/mounts", workspace="proj")
    assert run_ok(magsd, "echo e > /root/e && cat /root/e", ephemeral=True) == "e\n"
    ws = workspaces(magsd)
    assert set(ws) == {"proj"}, ws
    w = ws["proj"]
    assert not w["persistent"] and not w["base_image"] and w["in_use_by"] is None and w["on_host"]
    assert w["size_bytes"] > 0 and w["version"] is None
    assert "proj" in magsd.cli("workspace", "list").stdout


def test_workspace_held_by_one_job_at_a_time(magsd):
    magsd.wait_template()
    a = magsd.submit("echo a >> /root/log; sleep 3; echo a2 >> /root/log", workspace="shared")
    wait_held(magsd, "shared", a["id"])
    b = magsd.submit("echo b >> /root/log; cat /root/log", workspace="shared")
    ja = magsd.wait_job(a["id"])
    jb = magsd.wait_job(b["id"])
    assert ja["status"] == jb["status"] == "completed"
    # b waited for a: its line comes after both of a's
    assert magsd.output(b["id"]) == "a\na2\nb\n"


def test_delete_and_conflicts(magsd):
    magsd.wait_template()
    run_ok(magsd, "echo hi > /root/x", workspace="gone")
    # right after its job ended, a workspace can be deleted (magsd waits for the VM to let go)
    assert magsd.cli("run", "-w", "brief", "true").returncode == 0
    st, body = magsd.api("DELETE", "/workspaces/brief")
    assert st == 200, body
    job = magsd.submit("sleep 30", workspace="busy")
    wait_held(magsd, "busy", job["id"])
    st, body = magsd.api("DELETE", "/workspaces/busy")
    assert st == 409 and "in use" in body["error"], body
    r = magsd.cli("workspace", "delete", "busy")
    assert r.returncode != 0 and "in use" in r.stderr
    magsd.api("POST", "/mags-jobs/%s/stop" % job["id"])
    st, body = magsd.api("DELETE", "/workspaces/gone")
    assert st == 200 and body == {"deleted": "gone"}
    assert not os.path.exists(os.path.join(magsd.state_dir, "workspaces", "u1", "gone.img"))
    st, body = magsd.api("DELETE", "/workspaces/gone")
    assert st == 404
    st, body = magsd.api("GET", "/workspaces/gone")
    assert st == 404
    # a fresh workspace by the same name starts empty
    job, out, _ = run(magsd, "cat /root/x", workspace="gone")
    assert job["status"] == "failed" and out == ""
    # bad names and combinations
    for body, needle in [({"workspace": "../x"}, "workspace name"), ({"persist": True}, "needs a \"workspace\""),
                         ({"ephemeral": True, "workspace": "a"}, "cannot be combined"),
                         ({"from": "nosuch"}, "no workspace named")]:
        body["script"] = "true"
        st, reply = magsd.api("POST", "/mags-jobs", body)
        assert st in (400, 404), (st, reply)
        assert needle in reply["error"], reply


def test_base_image_and_copy_on_write_children(magsd):
    magsd.wait_template()
    r = magsd.cli("run", "-w", "base", "--base-image", "mkdir -p /opt/app; echo v1 > /opt/app/ver; echo keep > /root/k")
    assert r.returncode == 0, r.stderr
    assert "now a base image" in r.stderr
    w = workspaces(magsd)["base"]
    assert w["base_image"] and w["version"] == 1  # a base is pushed to the store
    # a child sees the base and changes only itself
    assert run_ok(magsd, "cat /opt/app/ver; echo v2 > /opt/app/ver; rm /root/k; ls /root",
                  workspace="kid", **{"from": "base"}) == "v1\n"
    assert run_ok(magsd, "cat /opt/app/ver; ls /root", workspace="kid") == "v2\n"  # a child keeps its base
    assert run_ok(magsd, "cat /opt/app/ver /root/k", **{"from": "base"}) == "v1\nkeep\n"  # base untouched
    # a chain: a child frozen as a base, and a grandchild of it
    run_ok(magsd, "echo layer2 > /root/l2", workspace="mid", base_image=True, **{"from": "base"})
    assert run_ok(magsd, "cat /opt/app/ver /root/k /root/l2", **{"from": "mid"}) == "v1\nkeep\nlayer2\n"
    ws = workspaces(magsd)
    assert ws["mid"]["from"] == "base" and ws["mid"]["base_image"] and ws["kid"]["from"] == "base"
    # conflicts: writing to a base, --from a non-base, re-parenting, deleting a base with children
    for fields, needle in [({"workspace": "base"}, "is a base image"), ({"from": "kid"}, "not a base image"),
                           ({"workspace": "kid", "from": "mid"}, "already exists")]:
        st, reply = magsd.api("POST", "/mags-jobs", dict(fields, script="true"))
        assert st == 409 and needle in reply["error"], (st, reply)
    st, reply = magsd.api("DELETE", "/workspaces/base")
    assert st == 409 and "base of workspace" in reply["error"], reply
    # a base whose script failed is not frozen
    job, _, err = run(magsd, "exit 3", workspace="notbase", base_image=True)
    assert job["status"] == "failed" and "not made a base image" in err
    assert not workspaces(magsd)["notbase"]["base_image"]


def test_persistent_workspace_survives_an_empty_host(magsd_factory, mags_tmp):
    store = "file://" + os.path.join(mags_tmp, "shared-store")
    a = magsd_factory(extra_args=["--store", store])
    a.wait_template()
    r = a.cli("run", "-w", "keep", "-p", "head -c 3000000 /dev/urandom > /root/blob; sha256sum /root/blob")
    assert r.returncode == 0, r.stderr
    digest = r.stdout.split()[0]
    assert "synced workspace keep" in r.stderr
    w = workspaces(a)["keep"]
    assert w["persistent"] and w["version"] == 1 and w["synced_at"]
    # a base in the same store, for --from on the other host
    a.cli("run", "-w", "tools", "--base-image", "echo tool > /root/tool")
    # another host, empty data directory, same store
    b = magsd_factory(extra_args=["--store", store])
    out = run_ok(b, "sha256sum /root/blob | cut -d' ' -f1; echo more > /root/more", workspace="keep")
    assert out.strip() == digest
    assert run_ok(b, "cat /root/tool", **{"from": "tools"}) == "tool\n"
    ws = workspaces(b)
    assert ws["keep"]["persistent"] and ws["keep"]["version"] == 2  # pushed again when the job ended
    assert ws["tools"]["base_image"]
    # delete removes it from the store too: a third host finds nothing
    st, _ = b.api("DELETE", "/workspaces/keep")
    assert st == 200
    c = magsd_factory(extra_args=["--store", store])
    job, out, _ = run(c, "cat /root/blob >/dev/null && echo found", workspace="keep")
    assert out == ""


def test_sync_of_a_running_workspace(magsd_factory, mags_tmp):
    store = "file://" + os.path.join(mags_tmp, "sync-store")
    m = magsd_factory(extra_args=["--store", store])
    m.wait_template()
    job = m.submit("echo first > /root/f; echo ready; sleep 60", workspace="live", persist=True)
    m.wait_output(job["id"], "ready")
    st, res = m.api("POST", "/mags-jobs/%s/sync" % job["id"])
    assert st == 200, res
    assert res["workspace"] == "live" and res["version"] == 1 and res["chunks"] > 0
    r = m.cli("sync", "live")
    assert r.returncode == 0 and "version 2" in r.stdout, (r.stdout, r.stderr)
    # the job kept running through both syncs (the filesystem was thawed)
    assert m.job(job["id"])["status"] == "running"
    m.api("POST", "/mags-jobs/%s/stop" % job["id"])
    m.wait_job(job["id"])
    # what the sync pushed is restorable elsewhere
    other = magsd_factory(extra_args=["--store", store])
    assert run_ok(other, "cat /root/f", workspace="live") == "first\n"
    # a job without a named workspace has nothing to sync
    plain = m.submit("true")
    st, res = m.api("POST", "/mags-jobs/%s/sync" % plain["id"])
    assert st == 409, res


def test_corrupt_chunk_is_reported(magsd_factory, mags_tmp):
    store_dir = os.path.join(mags_tmp, "bad-store")
    a = magsd_factory(extra_args=["--store", "file://" + store_dir])
    a.wait_template()
    run_ok(a, "head -c 2000000 /dev/urandom > /root/r", workspace="fragile", persist=True)
    chunks = []
    for dirpath, _, files in os.walk(os.path.join(store_dir, "chunks")):
        chunks += [os.path.join(dirpath, f) for f in files]
    assert chunks
    for c in chunks:  # every chunk: whichever the disk needs is bad
        with open(c, "r+b") as f:
            f.seek(0)
            f.write(b"\0garbage\0")
    b = magsd_factory(extra_args=["--store", "file://" + store_dir])
    job, out, err = run(b, "echo should-not-run", workspace="fragile")
    assert job["status"] == "failed" and out == ""
    assert "corrupt" in job["error"], job


def test_upload_files(magsd, mags_tmp):
    magsd.wait_template()
    big = os.path.join(mags_tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(100 * 1024 * 1024))
    small = os.path.join(mags_tmp, "run.sh")
    with open(small, "w") as f:
        f.write("#!/bin/sh\necho from-script\n")
    os.chmod(small, 0o755)
    want = hashlib.sha256(open(big, "rb").read()).hexdigest()
    r = magsd.cli("run", "-f", big, "-f", small, "sha256sum big.bin | cut -d' ' -f1; ./run.sh; pwd",
                  timeout=JOB_TIMEOUT * 3)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == [want, "from-script", "/root"], r.stdout
    # declared files: the job waits in "queued" until they arrive
    st, job = magsd.api("POST", "/mags-jobs", {"script": "cat d/in.txt; od -An -c bin | head -1",
                                               "files": [{"name": "d/in.txt", "size": 3}, {"name": "bin"}]})
    assert st == 201 and job["status"] == "queued" and job["files_pending"] == 2, job
    jid = job["id"]
    st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=d/in.txt" % jid, raw=b"hi\n",
                        headers={"Content-Type": "application/octet-stream"})
    assert st == 201 and res["size"] == 3 and res["files_pending"] == 1, res
    assert res["sha256"] == hashlib.sha256(b"hi\n").hexdigest()
    assert magsd.job(jid)["status"] == "queued"
    st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=bin&mode=600" % jid, raw=b"\0\1\2\n\xff",
                        headers={"Content-Type": "application/octet-stream"})
    assert st == 201 and res["files_pending"] == 0, res
    job = magsd.wait_job(jid)
    assert job["status"] == "completed", job
    assert magsd.output(jid).startswith("hi\n"), magsd.output(jid)
    # bad names never touch the sandbox
    for name in ["../etc/passwd", "/etc/passwd", "a/../../b", "a%00b", ""]:
        st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=%s" % (jid, name), raw=b"x")
        assert st in (400, 409), (name, st, res)
    other = magsd.submit("sleep 1")
    for name in ["../x", "/abs", "a/../../b", "a%00b"]:
        st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=%s" % (other["id"], name), raw=b"x")
        assert st == 400, (name, st, res)
    st, res = magsd.api("POST", "/mags-jobs", {"script": "true", "files": [{"name": "../x", "content_base64": ""}]})
    assert st == 400 and ".." in res["error"]
    # a finished job takes no files; an unknown one is 404; no token is 401
    magsd.wait_job(other["id"])
    st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=late" % other["id"], raw=b"x")
    assert st == 409, res
    st, res = magsd.api("POST", "/mags-jobs/nosuch/upload?name=x", raw=b"x")
    assert st == 404
    st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=x" % other["id"], raw=b"x", token="wrong")
    assert st == 401
    # a running job gets an upload at once, in its working directory
    job = magsd.submit("echo up; while [ ! -f late.txt ]; do sleep 0.2; done; cat late.txt")
    magsd.wait_output(job["id"], "up")
    st, res = magsd.api("POST", "/mags-jobs/%s/upload?name=late.txt" % job["id"], raw=b"arrived\n")
    assert st == 201, res
    job = magsd.wait_job(job["id"])
    assert job["status"] == "completed" and magsd.output(job["id"]) == "up\narrived\n"
    # uploads are removed once their job's sandbox is gone (just after the job shows as ended)
    deadline = time.time() + JOB_TIMEOUT
    while os.listdir(os.path.join(magsd.state_dir, "uploads")):
        assert time.time() < deadline, os.listdir(os.path.join(magsd.state_dir, "uploads"))
        time.sleep(0.2)


def test_kill_mid_sync_keeps_the_previous_version(magsd_factory, mags_tmp):
    store_dir = os.path.join(mags_tmp, "kill-store")
    a = magsd_factory(extra_args=["--store", "file://" + store_dir])
    a.wait_template()
    run_ok(a, "echo v1 > /root/v", workspace="crashy", persist=True)
    manifests = os.path.join(store_dir, "workspaces", "u1.crashy")
    assert sorted(os.listdir(manifests)) == ["%020d.json" % 1], os.listdir(manifests)

    def chunk_count():
        n = 0
        for _, _, files in os.walk(os.path.join(store_dir, "chunks")):
            n += len(files)
        return n

    before = chunk_count()
    # 300 MB that does not compress: its push takes a while; kill magsd in the middle of it
    job = a.submit("echo v2 > /root/v; head -c 300000000 /dev/urandom > /root/big; echo written", workspace="crashy")
    a.wait_output(job["id"], "written", timeout=JOB_TIMEOUT * 3)
    deadline = time.time() + JOB_TIMEOUT * 3
    while chunk_count() < before + 20:
        assert time.time() < deadline, "the push never started"
        assert a.job(job["id"])["status"] == "running"
        time.sleep(0.05)
    a.kill9()
    assert sorted(os.listdir(manifests)) == ["%020d.json" % 1], "a manifest was written before every chunk was"
    a.start()  # reaps what the killed magsd left
    # an empty host pulls version 1, whole
    b = magsd_factory(extra_args=["--store", "file://" + store_dir])
    assert run_ok(b, "cat /root/v; ls /root", workspace="crashy") == "v1\nv\n"


@pytest.fixture
def s3(mags_tmp, monkeypatch):
    """s3rver behind a SigV4-checking proxy, bucket "mags"; magsds started after this get its keys."""
    from s3rver import S3rver
    srv = S3rver(mags_tmp)
    try:
        srv.start()
    except (RuntimeError, OSError) as e:
        pytest.fail("s3rver: %s (scripts/s3rver.sh installs it from npm)" % e)
    srv.create_bucket("mags")
    for k, v in srv.env({}).items():
        if not k.startswith("MAGS_"):
            monkeypatch.setenv(k, v)
    yield srv
    srv.stop()


def test_persistent_workspace_on_s3(magsd_factory, s3):
    args = ["--store", "s3://mags/team-a", "--s3-endpoint", s3.endpoint]
    a = magsd_factory(extra_args=args)
    a.wait_template()
    r = a.cli("run", "-w", "s3ws", "-p", "head -c 2500000 /dev/urandom > /root/r; sha256sum /root/r")
    assert r.returncode == 0, r.stderr
    digest = r.stdout.split()[0]
    st, res = a.api("POST", "/workspaces/s3ws/sync")  # nothing changed: nothing moves
    assert st == 200 and res["version"] == 2 and res["uploaded_chunks"] == 0, res
    b = magsd_factory(extra_args=args)
    assert run_ok(b, "sha256sum /root/r | cut -d' ' -f1", workspace="s3ws").strip() == digest
    assert not s3.rejected, s3.rejected  # every request was signed right
    keys = [p for m, p in s3.requests if m == "PUT" and "/chunks/" in p]
    assert keys and all(p.startswith("/mags/team-a/") for p in keys), keys[:3]
    st, _ = b.api("DELETE", "/workspaces/s3ws")
    assert st == 200
    c = magsd_factory(extra_args=args)
    job, out, _ = run(c, "ls /root/r && echo found", workspace="s3ws")
    assert out == ""


def test_wrong_s3_secret_is_a_clear_error(magsd_factory, s3, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    m = magsd_factory(extra_args=["--store", "s3://mags", "--s3-endpoint", s3.endpoint])
    m.wait_template()
    # the submit looks the workspace up in the store: refused at once, saying why
    st, res = m.api("POST", "/mags-jobs", {"script": "echo data > /root/d", "workspace": "denied", "persist": True})
    assert st == 500 and "403 SignatureDoesNotMatch" in res["error"], (st, res)
    assert m.api("GET", "/mags-jobs")[1]["jobs"] == []
    assert s3.rejected


def test_incoming_pool_swaps_disks_into_waiting_vms(magsd_factory):
    """--pool-mode incoming: pooled QEMUs wait unrestored; a job's own disks are swapped in over QMP."""
    m = magsd_factory(extra_args=["--pool-mode", "incoming"])
    m.wait_template()
    for _ in range(100):
        if m.fast_start()["pool"] == 2:
            break
        time.sleep(0.2)
    run_ok(m, "echo in > /root/i", workspace="inc", base_image=True)
    assert run_ok(m, "cat /root/i; echo more > /root/m", workspace="inc2", **{"from": "inc"}) == "in\n"
    assert run_ok(m, "cat /root/i /root/m", workspace="inc2") == "in\nmore\n"
    job, out, _ = run(m, "cat /root/i")  # a local workspace on a pooled VM: its own blank disk
    assert job["status"] == "failed" and out == ""
    jobs = m.api("GET", "/mags-jobs")[1]["jobs"]
    assert all(m.how_started(j["id"]) == "restored" for j in jobs), [m.how_started(j["id"]) for j in jobs]
    assert "cannot swap" not in m.log()


def test_half_written_disks_swept_at_start(magsd):
    """Disks a killed magsd left half copied (NAME.img.tmp) or half pulled
    (NAME.img.pull.XXXXXX) are removed when magsd starts; whole disks stay."""
    root = os.path.join(magsd.state_dir, "workspaces")
    os.makedirs(os.path.join(root, "u1"), exist_ok=True)
    os.makedirs(os.path.join(root, "local"), exist_ok=True)
    partial = [os.path.join(root, "u1", "w.img.tmp"), os.path.join(root, "u1", "w.img.pull.Ab12Cd"),
               os.path.join(root, "local", "j.img.tmp"), os.path.join(root, "blank.img.tmp")]
    whole = os.path.join(root, "u1", "keep.img")
    for p in partial + [whole]:
        with open(p, "wb") as f:
            f.write(b"x")
    magsd.restart()
    assert [p for p in partial if os.path.exists(p)] == []
    assert os.path.exists(whole)
