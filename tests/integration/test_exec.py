# SPDX-License-Identifier: MIT
"""Processes of a long-lived sandbox over REST (docs/sandboxes.md): POST /exec
streams output and the exit; several processes at once in one sandbox;
detached processes survive their client and keep their output; stdin, signals,
wait, delete; a foreground process whose client leaves gets SIGHUP; a slow
reader slows a chatty process down instead of losing its output (PAUSE/RESUME);
a workspace name stands for its running job; PATCH timeout on a running
sandbox. Real guests (the busybox image)."""
import base64
import hashlib
import json
import socket
import threading
import time

import pytest

from conftest import wait_for


def new_box(magsd, name="box"):
    r = magsd.cli("new", name)
    assert r.returncode == 0, r.stderr
    st, jobs = magsd.api("GET", "/mags-jobs?workspace=%s&status=running" % name)
    assert st == 200 and jobs["jobs"], jobs
    return jobs["jobs"][0]["id"]


def stream(magsd, method, path, body=None, timeout=120):
    """Reads an NDJSON stream to its end: (status, events)."""
    resp = magsd.request(method, path, body=body, timeout=timeout)
    status = resp.status if hasattr(resp, "status") else resp.code
    events = []
    with resp:
        if status != 200:
            return status, json.loads(resp.read() or b"{}")
        for line in resp:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return status, events


def collect(events):
    out = {"stdout": b"", "stderr": b""}
    for e in events:
        if e["type"] in out:
            out[e["type"]] += base64.b64decode(e["data"])
    return out


def exec_(magsd, box, command, **fields):
    fields["command"] = command
    st, ev = stream(magsd, "POST", "/mags-jobs/%s/exec" % box, fields)
    assert st == 200, ev
    assert ev[0]["type"] == "start" and ev[-1]["type"] == "exit", ev
    out = collect(ev)
    return ev[-1], out["stdout"], out["stderr"]


def test_exec_stream_codes_and_names(magsd):
    jid = new_box(magsd)
    ex, out, err = exec_(magsd, jid, "echo out; echo err >&2; exit 3")
    assert (ex["exit_code"], out, err) == (3, b"out\n", b"err\n")
    # the workspace name stands for its running job
    ex, out, _ = exec_(magsd, "box", "echo $FOO; pwd", env={"FOO": "bar"}, cwd="/tmp")
    assert (ex["exit_code"], out) == (0, b"bar\n/tmp\n")
    ex, _, _ = exec_(magsd, "box", "sleep 30", timeout=1)
    assert ex["exit_code"] == 124 and ex["timed_out"], ex
    ex, _, _ = exec_(magsd, "box", "kill -9 $$")
    assert ex["exit_code"] == 137 and ex["signal"] == 9, ex
    # offsets run over both streams in order
    st, ev = stream(magsd, "POST", "/mags-jobs/box/exec", {"command": "printf ab; printf cd >&2; printf ef"})
    offs = [(e["type"], e["offset"]) for e in ev if e["type"] in ("stdout", "stderr")]
    assert offs[0] == ("stdout", 0) and ev[-1]["offset"] == 6, ev
    # bad requests name the field
    for body, word in (({}, "command"), ({"command": "x", "tty": 1}, "tty"), ({"command": "x", "cols": 0}, "cols"),
                       ({"command": "x", "env": {"1A": "x"}}, "env"), ({"command": "x", "bogus": 1}, "bogus"),
                       ({"command": "x", "timeout": -1}, "timeout")):
        st, e = magsd.api("POST", "/mags-jobs/box/exec", body)
        assert st == 400 and word in e["error"], (body, st, e)
    st, e = magsd.api("POST", "/mags-jobs/nosuchbox/exec", {"command": "true"})
    assert st == 404, e
    st, e = magsd.api("GET", "/mags-jobs/box/processes/999")
    assert st == 404, e
    # another user's sandbox does not exist for them
    other = magsd.create_token("mallory")
    st, e = magsd.api("POST", "/mags-jobs/%s/exec" % jid, {"command": "true"}, token=other)
    assert st == 404, e
    st, e = magsd.api("POST", "/mags-jobs/box/exec", {"command": "true"}, token=other)
    assert st == 404, e
    # an ended sandbox is a conflict
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)
    st, e = magsd.api("POST", "/mags-jobs/%s/exec" % jid, {"command": "true"})
    assert st == 409 and "running" in e["error"], e


def test_concurrent_and_background(magsd):
    jid = new_box(magsd, "bg")
    # a detached process outlives every client and keeps its output
    st, p = magsd.api("POST", "/mags-jobs/bg/exec",
                      {"command": "for i in $(seq 1 30); do echo line$i; sleep 0.1; done", "detach": True})
    assert st == 201 and p["status"] == "running" and p["detached"], p
    pid = p["id"]
    # several foreground processes at once
    results = {}

    def one(i):
        results[i] = exec_(magsd, "bg", "sleep 1; echo %d" % i)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert {i: (r[0]["exit_code"], r[1]) for i, r in results.items()} == {i: (0, b"%d\n" % i) for i in range(4)}
    assert time.time() - t0 < 30
    st, w = magsd.api("GET", "/mags-jobs/bg/processes/%d/wait?timeout=60" % pid)
    assert st == 200 and w["status"] == "exited" and w["exit_code"] == 0, w
    st, ev = stream(magsd, "GET", "/mags-jobs/bg/processes/%d/output" % pid)
    assert collect(ev)["stdout"] == b"".join(b"line%d\n" % i for i in range(1, 31)) and ev[-1]["type"] == "exit"
    # from an offset; then the list
    st, ev = stream(magsd, "GET", "/mags-jobs/bg/processes/%d/output?offset=6" % pid)
    assert collect(ev)["stdout"].startswith(b"line2\n"), ev[:2]
    st, lst = magsd.api("GET", "/mags-jobs/bg/processes")
    assert st == 200 and len(lst["processes"]) == 5 and lst["processes"][0]["id"] == pid, lst
    # a long one: signalled, then deleted; follow sees the end
    st, p = magsd.api("POST", "/mags-jobs/bg/exec", {"command": "trap 'echo got-term; exit 5' TERM; while :; do sleep 0.1; done",
                                                      "detach": True})
    pid2 = p["id"]
    time.sleep(1)
    follow = {}
    th = threading.Thread(target=lambda: follow.update(r=stream(magsd, "GET", "/mags-jobs/bg/processes/%d/output?follow=1" % pid2)))
    th.start()
    st, s = magsd.api("POST", "/mags-jobs/bg/processes/%d/signal" % pid2, {"signal": "TERM"})
    assert st == 200, s
    th.join(60)
    st, ev = follow["r"]
    assert collect(ev)["stdout"] == b"got-term\n" and ev[-1]["exit_code"] == 5, ev
    st, s = magsd.api("POST", "/mags-jobs/bg/processes/%d/signal" % pid2, {"signal": "TERM"})
    assert st == 409, s
    st, s = magsd.api("POST", "/mags-jobs/bg/processes/%d/signal" % pid2, {"signal": "NOPE"})
    assert st == 400, s
    st, p = magsd.api("POST", "/mags-jobs/bg/exec", {"command": "sleep 1000", "detach": True})
    st, d = magsd.api("DELETE", "/mags-jobs/bg/processes/%d" % p["id"])
    assert st == 200
    st, d = magsd.api("GET", "/mags-jobs/bg/processes/%d" % p["id"])
    assert st == 404
    ex, out, _ = exec_(magsd, "bg", "ps | grep -c 'sleep 100[0]' || true")
    assert out.strip() == b"0", out


def test_stdin_and_hangup(magsd):
    new_box(magsd, "io")
    data = bytes(range(256)) * 4096 * 3  # 3 MiB of every byte value
    st, p = magsd.api("POST", "/mags-jobs/io/exec", {"command": "sha256sum", "stdin": True, "detach": True})
    assert st == 201 and p["stdin"], p
    for i in range(0, len(data), 1 << 20):
        st, r = magsd.api("POST", "/mags-jobs/io/processes/%d/stdin" % p["id"], raw=data[i:i + (1 << 20)],
                          headers={"Content-Type": "application/octet-stream"})
        assert st == 200 and r["bytes"] == len(data[i:i + (1 << 20)]), r
    st, r = magsd.api("POST", "/mags-jobs/io/processes/%d/stdin?eof=1" % p["id"], raw=b"")
    assert st == 200, r
    st, w = magsd.api("GET", "/mags-jobs/io/processes/%d/wait?timeout=60" % p["id"])
    st, ev = stream(magsd, "GET", "/mags-jobs/io/processes/%d/output" % p["id"])
    assert collect(ev)["stdout"].split()[0].decode() == hashlib.sha256(data).hexdigest()
    st, r = magsd.api("POST", "/mags-jobs/io/processes/%d/stdin" % p["id"], raw=b"x")
    assert st == 409, r
    # no stdin asked: 409
    st, q = magsd.api("POST", "/mags-jobs/io/exec", {"command": "sleep 5", "detach": True})
    st, r = magsd.api("POST", "/mags-jobs/io/processes/%d/stdin" % q["id"], raw=b"x")
    assert st == 409 and "no stdin" in r["error"], r
    # a foreground process whose client goes away gets SIGHUP
    s = socket.create_connection(("127.0.0.1", magsd.port), timeout=30)
    body = json.dumps({"command": "trap 'echo hup > /tmp/hup; exit 0' HUP; echo started; while :; do sleep 0.1; done"}).encode()
    s.sendall(b"POST /api/v1/mags-jobs/io/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (magsd.token.encode(), len(body), body))
    got = b""
    while b"c3RhcnRlZA" not in got:  # "started" in base64
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    s.close()
    ex, out, _ = exec_(magsd, "io", "for i in $(seq 1 100); do [ -f /tmp/hup ] && break; sleep 0.1; done; cat /tmp/hup")
    assert out == b"hup\n", out
    st, lst = magsd.api("GET", "/mags-jobs/io/processes")
    fg = [x for x in lst["processes"] if "trap" in x["command"]][0]
    assert fg["status"] == "exited", fg


def test_slow_reader_loses_nothing(magsd):
    """A foreground stream read slowly: the process is held (PAUSE) instead of
    its output being dropped; all 24 MiB arrive in order."""
    new_box(magsd, "flow")
    resp = magsd.request("POST", "/mags-jobs/flow/exec",
                         body={"command": "i=0; while [ $i -lt 24 ]; do head -c 1048576 /dev/zero | tr '\\0' x; i=$((i+1)); done"},
                         timeout=300)
    assert resp.status == 200
    total = 0
    lost = False
    paused_seen = False
    n = 0
    with resp:
        for line in resp:
            line = line.strip()
            if not line:
                continue
            e = json.loads(line)
            if e["type"] == "lost":
                lost = True
            if e["type"] == "stdout":
                assert e["offset"] == total, (e["offset"], total)
                total += len(base64.b64decode(e["data"]))
                n += 1
                if n == 20:
                    time.sleep(3)  # the process is held meanwhile
                    st, lst = magsd.api("GET", "/mags-jobs/flow/processes")
                    produced = lst["processes"][0]["output_bytes"]
                    paused_seen = produced - total < 8 << 20
            if e["type"] == "exit":
                assert e["exit_code"] == 0, e
    assert not lost and total == 24 << 20, (lost, total)
    assert paused_seen


def test_patch_timeout_running(magsd):
    jid = new_box(magsd, "tmo")
    st, j = magsd.api("PATCH", "/mags-jobs/%s" % jid, {"timeout": 2})
    assert st == 200, j
    j = magsd.wait_job(jid, timeout=60)
    assert j["status"] == "failed" or j["exit_code"] == 124, j
    assert "timed out after 2s" in (j.get("error") or ""), j


def test_exec_wakes_a_sleeping_sandbox_and_running_processes_keep_it_awake(magsd):
    j = magsd.submit("echo up", workspace="nap", always_on=True, idle_timeout=1)
    jid = j["id"]
    magsd.wait_output(jid, "up")
    wait_for("sleep", lambda: magsd.job(jid).get("sleeping"))
    # exec wakes it: its memory (a file in /tmp, a tmpfs) is still there afterwards
    ex, out, _ = exec_(magsd, "nap", "echo kept > /tmp/mark; echo awake")
    assert (ex["exit_code"], out) == (0, b"awake\n")
    wait_for("sleep again", lambda: magsd.job(jid).get("sleeping"))
    ex, out, _ = exec_(magsd, "nap", "cat /tmp/mark")
    assert out == b"kept\n", out
    # a running background process holds it awake; once it ends the sandbox may sleep
    st, p = magsd.api("POST", "/mags-jobs/nap/exec", {"command": "sleep 4", "detach": True})
    assert st == 201, p
    time.sleep(2.5)
    assert not magsd.job(jid)["sleeping"]
    st, w = magsd.api("GET", "/mags-jobs/nap/processes/%d/wait?timeout=30" % p["id"])
    assert w["exit_code"] == 0, w
    wait_for("sleep after the process", lambda: magsd.job(jid).get("sleeping"))
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)
