# SPDX-License-Identifier: MIT
"""Stress of magsd's process layer (procs.c, api_exec.c, the channels of
jobs.c) in real guests: many execs at once in one sandbox with clients that
leave early, detached processes deleted while they print, a follower of a
process that is deleted, a paused (flow-controlled) process deleted, the
ended-process window, a sandbox stopped (or its VM killed) under open
streams, sleep/wake of an always-on sandbox between execs, and a process
deleted, or its sandbox stopped, while its exec still waits for the wake. Each test ends with nothing left behind:
no process running in the guest, no channel kept open by the agent (its fd
count), magsd's threads back near where they were, no sanitizer report and no
QEMU (the conftest checks those two at stop)."""
import json
import os
import random
import signal
import socket
import threading
import time

from conftest import job_qemu_pids, wait_for
from test_exec import collect, exec_, new_box, stream

STREAM_END_S = 30  # a stream that does not end this long after its process did hangs


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def raw_exec(magsd, box, command, read_until=None, close_at_once=False):
    """POST /exec on a raw socket; reads until `read_until` (bytes) shows up in
    what came (or not at all with close_at_once) and returns the open socket
    (closed already with close_at_once)."""
    s = socket.create_connection(("127.0.0.1", magsd.port), timeout=60)
    body = json.dumps({"command": command}).encode()
    s.sendall(b"POST /api/v1/mags-jobs/%s/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (box.encode(), magsd.token.encode(), len(body), body))
    if close_at_once:
        s.close()
        return None
    got = b""
    while read_until not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    return s


def guest_count(magsd, box, shell):
    ex, out, _ = exec_(magsd, box, shell)
    assert ex["exit_code"] == 0, ex
    return int(out.strip() or b"0")


def agent_fds(magsd, box):
    # the agent is PID 1; each channel it keeps holds pipe fds. The counting
    # shell's own channel is open meanwhile, so the figure is steady.
    return guest_count(magsd, box, "ls /proc/1/fd | wc -l")


def procs(magsd, box):
    st, lst = magsd.api("GET", "/mags-jobs/%s/processes" % box)
    assert st == 200, lst
    return lst["processes"]


def follow_in_thread(magsd, path, into, key):
    """Follows path in a thread; returns once magsd has answered its head (the follow is on)."""
    answered = threading.Event()

    def run():
        try:
            resp = magsd.request("GET", path, timeout=STREAM_END_S + 30)
            answered.set()
            status = resp.status if hasattr(resp, "status") else resp.code
            with resp:
                if status != 200:
                    into[key] = (status, json.loads(resp.read() or b"{}"))
                    return
                into[key] = (status, [json.loads(line) for line in resp if line.strip()])
        except Exception as e:  # a broken transfer or a read timeout (a hang)
            into[key] = ("error", repr(e))
        finally:
            answered.set()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    answered.wait(STREAM_END_S)
    return t


def test_ended_window_keeps_the_last_to_end(magsd):
    jid = new_box(magsd, "win")
    box = "win"
    # -- the ended-process window: the last 64 to END are kept, so a long
    # process that ends after 64 short ones is still there to be asked about
    st, longp = magsd.api("POST", "/mags-jobs/%s/exec" % box, {"command": "sleep 6; exit 7", "detach": True})
    assert st == 201, longp
    shorts = []

    def short_ones(n):
        for _ in range(n):
            st, p = magsd.api("POST", "/mags-jobs/%s/exec" % box, {"command": "true", "detach": True})
            assert st == 201, p
            shorts.append(p["id"])

    ts = [threading.Thread(target=short_ones, args=(8,)) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for q in shorts:
        st, w = magsd.api("GET", "/mags-jobs/%s/processes/%d/wait?timeout=30" % (box, q))
        assert st == 200 and w["status"] == "exited", w
    st, w = magsd.api("GET", "/mags-jobs/%s/processes/%d/wait?timeout=30" % (box, longp["id"]))
    assert st == 200 and w["exit_code"] == 7, w
    st, again = magsd.api("GET", "/mags-jobs/%s/processes/%d" % (box, longp["id"]))
    assert st == 200 and again["exit_code"] == 7, (
        "the process that ended last was dropped from the ended window instead of the one that ended first", again)
    assert len(procs(magsd, box)) == 64
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)


def test_exec_stress(magsd):
    jid = new_box(magsd, "st")
    box = "st"
    pid = magsd.proc.pid
    exec_(magsd, box, "true")
    fds0 = agent_fds(magsd, box)
    threads0 = threads_of(pid)
    t_start = time.time()

    # -- 3 rounds of 36 clients at once: full streams, clients that leave early (after
    # some output, or before any answer), detached processes deleted while
    # they print, followers of a process that is deleted
    for seed in (7, 8, 9):
        rnd = random.Random(seed)
        errors = []
        follows = {}
        followers = []

        def full(i):
            n = 300
            ex, out, err = exec_(magsd, box, "i=0; while [ $i -lt %d ]; do echo %d-$i; i=$((i+1)); done; echo e >&2" % (n, i))
            assert ex["exit_code"] == 0 and ex["status"] == "exited", ex
            assert out == b"".join(b"%d-%d\n" % (i, k) for k in range(n)), out[:200]
            assert err == b"e\n" and ex["offset"] == len(out) + 2, ex

        def leave(i):
            s = raw_exec(magsd, box, "echo started; while :; do echo tick; sleep 0.05; done",
                         read_until=b"c3RhcnRlZA")  # "started"
            extra = rnd.randint(0, 3)
            for _ in range(extra):
                if not s.recv(rnd.randint(1, 4096)):
                    break
            s.close()

        def leave_at_once(i):
            raw_exec(magsd, box, "while :; do echo tick; sleep 0.05; done", close_at_once=True)

        def detach_delete(i):
            st, p = magsd.api("POST", "/mags-jobs/%s/exec" % box,
                              {"command": "i=0; while :; do echo line$i; i=$((i+1)); done", "detach": True})
            assert st == 201, p
            path = "/mags-jobs/%s/processes/%d" % (box, p["id"])
            if i % 2:
                followers.append(follow_in_thread(magsd, path + "/output?follow=1", follows, p["id"]))
            time.sleep(rnd.uniform(0.2, 1.5))
            st, d = magsd.api("DELETE", path)
            assert st == 200, d
            st, d = magsd.api("GET", path)
            assert st == 404, d

        def delete_racing_exit(i):
            # DELETE and the process's own EXIT race; a signal races it too
            st, p = magsd.api("POST", "/mags-jobs/%s/exec" % box, {"command": "echo x", "detach": True})
            assert st == 201, p
            path = "/mags-jobs/%s/processes/%d" % (box, p["id"])
            if i % 2:
                st, _ = magsd.api("POST", path + "/signal", {"signal": "TERM"})
                assert st in (200, 409), st
            st, d = magsd.api("DELETE", path)
            assert st == 200, d
            st, d = magsd.api("GET", path)
            assert st == 404, d

        work = [full] * 12 + [leave] * 8 + [leave_at_once] * 4 + [detach_delete] * 6 + [delete_racing_exit] * 6
        rnd.shuffle(work)

        def guard(fn, i):
            try:
                fn(i)
            except Exception as e:
                errors.append("%s(%d): %r" % (fn.__name__, i, e))

        ts = [threading.Thread(target=guard, args=(fn, i), daemon=True) for i, fn in enumerate(work)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not [t for t in ts if t.is_alive()], "clients still waiting after 120 s"
        assert not errors, errors
        for t in followers:
            t.join(STREAM_END_S)
        assert len(follows) == len(followers), "a follower of a deleted process did not end: %r" % follows
        for k, (st, ev) in follows.items():
            assert st == 200 and ev and ev[-1]["type"] == "exit", (k, st, ev[-3:] if isinstance(ev, list) else ev)
            assert ev[-1]["status"] == "exited", ev[-1]
            out = collect(ev)["stdout"]
            want = b"".join(b"line%d\n" % n for n in range(out.count(b"\n")))
            offs = [e["offset"] for e in ev if e["type"] == "stdout"]
            assert offs == sorted(offs) and ev[-1]["offset"] >= (offs[-1] if offs else 0), offs[-10:]
            if not [e for e in ev if e["type"] == "lost"]:
                assert out[:len(want)] == want and ev[-1]["offset"] == len(out), (k, ev[-1], out[-100:])

    # every foreground process whose client left got SIGHUP and ended
    wait_for("the processes of the clients that left to end",
             lambda: not [p for p in procs(magsd, box) if p["status"] == "running"], timeout=30, magsd=magsd)
    assert guest_count(magsd, box, "ps | grep -c 'tic[k]\\|lin[e]' || true") == 0
    assert agent_fds(magsd, box) <= fds0
    print("3 x 36 clients: %.1f s" % (time.time() - t_start))

    # -- the sandbox stops under 10 open streams: each ends (exit "lost", or
    # a clean end), none hangs
    t_stop = time.time()
    opened = {}
    outs = {}
    ths = []

    def fg(i):
        try:
            resp = magsd.request("POST", "/mags-jobs/%s/exec" % box,
                                 body={"command": "while :; do echo x; sleep 0.2; done"}, timeout=STREAM_END_S + 30)
            assert resp.status == 200
            ev = []
            with resp:
                for line in resp:
                    if line.strip():
                        ev.append(json.loads(line))
                        opened["fg%d" % i] = True
            outs["fg%d" % i] = (200, ev)
        except Exception as e:
            outs["fg%d" % i] = ("error", repr(e))

    for i in range(6):
        t = threading.Thread(target=fg, args=(i,), daemon=True)
        t.start()
        ths.append(t)
    for i in range(4):
        st, p = magsd.api("POST", "/mags-jobs/%s/exec" % box,
                          {"command": "while :; do echo y; sleep 0.2; done", "detach": True})
        assert st == 201, p
        ths.append(follow_in_thread(magsd, "/mags-jobs/%s/processes/%d/output?follow=1" % (box, p["id"]), outs,
                                    "bg%d" % i))
    wait_for("6 foreground streams to start", lambda: len(opened) == 6, timeout=30, magsd=magsd)
    time.sleep(0.5)
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    assert st in (200, 202), st
    for t in ths:
        t.join(STREAM_END_S + 35)
    assert len(outs) == 10, "streams still open after the stop: %r" % sorted(set(
        ["fg%d" % i for i in range(6)] + ["bg%d" % i for i in range(4)]) - set(outs))
    for k, (st, ev) in outs.items():
        assert st == 200, (k, ev)
        assert not ev or ev[-1]["type"] != "exit" or ev[-1]["status"] == "lost", (k, ev[-1])
        assert ev and ev[-1]["type"] == "exit", (k, "ended without its exit event", ev[-2:])
    magsd.wait_job(jid)
    print("stop under 10 streams: %.1f s" % (time.time() - t_stop))

    # magsd's threads are back near where they were (connection threads gone)
    wait_for("magsd's threads to go back to %d (+2)" % threads0, lambda: threads_of(pid) <= threads0 + 2,
             timeout=15, magsd=magsd)


def test_paused_process_deleted(magsd):
    jid = new_box(magsd, "fl")
    box = "fl"
    exec_(magsd, box, "true")
    fds0 = agent_fds(magsd, box)
    # -- a paused process (its reader stopped reading) deleted: it is gone
    # in the guest too, channel and all (no EXIT held back for a RESUME)
    s = raw_exec(magsd, box, "while :; do head -c 1048576 /dev/zero | tr '\\0' x; done", read_until=b'"stdout"')
    flood = max(p["id"] for p in procs(magsd, box))
    last = [-1, time.time()]

    def held():
        n = [p for p in procs(magsd, box) if p["id"] == flood][0]["output_bytes"]
        if n != last[0]:
            last[:] = [n, time.time()]
        return time.time() - last[1] > 1.5

    wait_for("the flood to be paused", held, timeout=30, magsd=magsd)
    assert last[0] < 8 << 20, last
    st, d = magsd.api("DELETE", "/mags-jobs/%s/processes/%d" % (box, flood))
    assert st == 200, d
    s.close()
    fds = []
    deadline = time.time() + 10
    while not fds or fds[-1] > fds0:
        assert time.time() < deadline, (
            "the agent keeps the deleted paused process's channel (its EXIT held for a RESUME that never comes): "
            "agent fds %r, %d before" % (fds[-3:], fds0))
        time.sleep(0.5)
        fds.append(agent_fds(magsd, box))
    assert guest_count(magsd, box, "ps | grep -c '/dev/zer[o]\\|t[r] ' || true") == 0
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)


def test_exec_sleep_wake_stress(magsd):
    j = magsd.submit("echo up", workspace="nap", always_on=True, idle_timeout=1)
    jid = j["id"]
    box = "nap"
    magsd.wait_output(jid, "up")
    pid = magsd.proc.pid
    asleep = lambda: magsd.job(jid).get("sleeping")
    wait_for("sleep", asleep, timeout=60, magsd=magsd, jid=jid)
    threads0 = threads_of(pid)
    for rnd in range(2):
        # exec wakes it; a detached process deleted while it prints does not hold it awake
        ex, out, _ = exec_(magsd, box, "echo r%d >> /tmp/rounds; cat /tmp/rounds" % rnd)
        assert out == b"".join(b"r%d\n" % k for k in range(rnd + 1)), out
        st, p = magsd.api("POST", "/mags-jobs/%s/exec" % box,
                          {"command": "while :; do echo z; sleep 0.05; done", "detach": True})
        assert st == 201, p
        time.sleep(0.5)
        st, _ = magsd.api("DELETE", "/mags-jobs/%s/processes/%d" % (box, p["id"]))
        assert st == 200
        wait_for("sleep after round %d" % rnd, asleep, timeout=60, magsd=magsd, jid=jid)

    # a process deleted while its exec still waits for the sandbox to wake:
    # it must not start (or must be killed), and must not keep the sandbox awake
    res = {}

    def start():
        res["r"] = magsd.api("POST", "/mags-jobs/%s/exec" % box, {"command": "sleep 1000", "detach": True},
                             timeout=120)

    t = threading.Thread(target=start, daemon=True)
    t.start()
    listed = wait_for("the new process to be listed", lambda: [p for p in procs(magsd, box) if "1000" in p["command"]],
                      timeout=30, every=0.05, magsd=magsd)
    st, _ = magsd.api("DELETE", "/mags-jobs/%s/processes/%d" % (box, listed[0]["id"]))
    assert st == 200
    t.join(120)
    assert "r" in res, "exec did not answer"
    # a detached exec answers 201 (or an error when it never started)
    assert res["r"][0] in (201, 409), res
    # sleep 1000 must not run in the guest, and the sandbox sleeps again
    assert guest_count(magsd, box, "ps | grep -c 'sleep 100[0]' || true") == 0, \
        "a process deleted while it started runs on in the guest, unlisted and unkillable"
    wait_for("sleep after the deleted start", asleep, timeout=30, magsd=magsd, jid=jid)

    # the VM dies under open streams (2 foreground, 1 follower): each ends
    # with "lost", the sandbox comes back, process ids go on
    outs = {}
    ths = []
    for i in range(2):
        ths.append(threading.Thread(target=lambda i=i: outs.update({"fg%d" % i: stream(
            magsd, "POST", "/mags-jobs/%s/exec" % box, {"command": "echo on; while :; do sleep 0.2; done"},
            timeout=90)}), daemon=True))
        ths[-1].start()
    st, bg = magsd.api("POST", "/mags-jobs/%s/exec" % box, {"command": "while :; do echo b; sleep 0.2; done",
                                                             "detach": True}, timeout=120)
    assert st == 201, bg
    ths.append(follow_in_thread(magsd, "/mags-jobs/%s/processes/%d/output?follow=1" % (box, bg["id"]), outs, "bg"))
    wait_for("3 running processes", lambda: len([p for p in procs(magsd, box) if p["status"] == "running"]) == 3,
             timeout=60, magsd=magsd)
    qemu = job_qemu_pids(magsd.state_dir, jid)
    assert qemu, "no QEMU for the awake sandbox"
    os.kill(qemu[0], signal.SIGKILL)
    for t in ths:
        t.join(STREAM_END_S + 30)
    assert sorted(outs) == ["bg", "fg0", "fg1"], outs
    for k, (st, ev) in outs.items():
        assert st == 200 and ev and ev[-1]["type"] == "exit" and ev[-1]["status"] == "lost", (k, ev[-2:])
    assert [p["status"] for p in procs(magsd, box) if p["status"] == "running"] == []
    ex, out, _ = exec_(magsd, box, "echo back")
    assert out == b"back\n" and ex["exit_code"] == 0, ex
    assert max(p["id"] for p in procs(magsd, box)) > bg["id"]

    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    magsd.wait_job(jid)
    wait_for("magsd's threads to go back to %d (+2)" % threads0, lambda: threads_of(pid) <= threads0 + 2,
             timeout=15, magsd=magsd)


def test_stop_while_an_exec_wakes_the_sandbox(magsd):
    """The sandbox is stopped while an exec waits for it to wake: a follower of
    that process (it is listed while it starts) ends too, the exec is answered."""
    j = magsd.submit("echo up", workspace="late", always_on=True, idle_timeout=1)
    jid = j["id"]
    box = "late"
    magsd.wait_output(jid, "up")
    asleep = lambda: magsd.job(jid).get("sleeping")
    wait_for("sleep before the stop", asleep, timeout=60, magsd=magsd, jid=jid)
    pid = magsd.proc.pid
    threads0 = threads_of(pid)
    res = {}
    t = threading.Thread(target=lambda: res.update(r=magsd.api(
        "POST", "/mags-jobs/%s/exec" % box, {"command": "echo late", "detach": True}, timeout=120)), daemon=True)
    t.start()
    listed = wait_for("the late process to be listed", lambda: [p for p in procs(magsd, box) if "late" in p["command"]],
                      timeout=30, every=0.02, magsd=magsd)
    outs = {}
    fol = follow_in_thread(magsd, "/mags-jobs/%s/processes/%d/output?follow=1" % (box, listed[0]["id"]), outs, "late")
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    t.join(120)
    assert "r" in res and res["r"][0] in (201, 409), res
    print("exec stopped while it woke the sandbox: %s %s" % res["r"])
    fol.join(STREAM_END_S)
    assert "late" in outs, "the follower of a process whose start failed never ends"
    st, ev = outs["late"]
    assert st == 200 and ev and ev[-1]["type"] == "exit", (st, ev)
    magsd.wait_job(jid)
    wait_for("magsd's threads to go back to %d (+2)" % threads0, lambda: threads_of(pid) <= threads0 + 2,
             timeout=15, magsd=magsd)
