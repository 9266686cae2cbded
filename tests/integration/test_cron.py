# SPDX-License-Identifier: MIT
"""Cron schedules: REST /cron-jobs (CRUD, ownership, 400s that name the field),
the mags cron CLI, and a real `* * * * *` schedule that fires a job in a VM,
then goes on after a magsd restart without firing any minute twice."""
import re
import time

import pytest

FIRED_RE = re.compile(r"cron: schedule (cron-[0-9a-f]+)(?: \([^)]*\))? fired for (\S+)")


def create(magsd, expr="0 0 1 1 *", script="echo hi", **fields):
    body = dict(fields, expression=expr, script=script)
    st, c = magsd.api("POST", "/cron-jobs", body)
    assert st == 201, (st, c)
    return c


def test_rest_crud_and_ownership(magsd):
    c = create(magsd, "*/5 * * * *", "echo five", name="every five", timezone="Europe/Berlin",
               timeout=30, ephemeral=True)
    assert c["id"].startswith("cron-") and c["enabled"] is True
    assert c["name"] == "every five" and c["timezone"] == "Europe/Berlin"
    assert c["script"] == "echo five" and c["options"] == {"timeout": 30, "ephemeral": True, "type": "inline"} \
        or c["options"] == {"timeout": 30, "ephemeral": True}
    assert c["next_run_at"] and c["last_run_at"] is None and c["last_job_id"] is None
    assert int(c["next_run_at"][14:16]) % 5 == 0
    cid = c["id"]
    st, one = magsd.api("GET", "/cron-jobs/" + cid)
    assert st == 200 and one == c
    st, lst = magsd.api("GET", "/cron-jobs")
    assert st == 200 and [x["id"] for x in lst["cron_jobs"]] == [cid]

    # disable: next_run goes null; enable recomputes; change the expression and a run flag
    st, d = magsd.api("PATCH", "/cron-jobs/" + cid, {"enabled": False})
    assert st == 200 and d["enabled"] is False and d["next_run_at"] is None
    st, e = magsd.api("PATCH", "/cron-jobs/" + cid, {"enabled": True, "expression": "30 4 * * mon",
                                                      "timeout": None, "name": None})
    assert st == 200 and e["enabled"] and e["expression"] == "30 4 * * mon" and e["name"] is None
    assert "timeout" not in e["options"] and e["next_run_at"]

    # another user: 404 everywhere, and an empty list
    other = magsd.create_token("someone-else")
    for method, body in (("GET", None), ("PATCH", {"enabled": False}), ("DELETE", None)):
        st, err = magsd.api(method, "/cron-jobs/" + cid, body, token=other)
        assert st == 404, (method, st, err)
    st, lst = magsd.api("GET", "/cron-jobs", token=other)
    assert st == 200 and lst["cron_jobs"] == []
    st, _ = magsd.api("GET", "/cron-jobs", token=False)
    assert st == 401

    st, dl = magsd.api("DELETE", "/cron-jobs/" + cid)
    assert st == 200 and dl == {"deleted": True, "id": cid}
    st, _ = magsd.api("GET", "/cron-jobs/" + cid)
    assert st == 404
    st, _ = magsd.api("DELETE", "/cron-jobs/" + cid)
    assert st == 404


@pytest.mark.parametrize("body,words", [
    ({"expression": "61 * * * *", "script": "x"}, ["expression", "minute", "61"]),
    ({"expression": "* 24 * * *", "script": "x"}, ["expression", "hour"]),
    ({"expression": "* * 0 * *", "script": "x"}, ["expression", "day-of-month"]),
    ({"expression": "* * * 13 *", "script": "x"}, ["expression", "month"]),
    ({"expression": "* * * * 8", "script": "x"}, ["expression", "day-of-week"]),
    ({"expression": "* * * *", "script": "x"}, ["expression"]),
    ({"expression": "0 0 30 2 *", "script": "x"}, ["expression", "never"]),
    ({"expression": 5, "script": "x"}, ["expression"]),
    ({"script": "x"}, ["expression"]),
    ({"expression": "* * * * *"}, ["script"]),
    ({"expression": "* * * * *", "script": "x", "timezone": "Mars/Olympus"}, ["time zone", "Mars/Olympus"]),
    ({"expression": "* * * * *", "script": "x", "timezone": "../../etc/passwd"}, ["timezone"]),
    ({"expression": "* * * * *", "script": "x", "bogus": 1}, ["unknown field", "bogus"]),
    ({"expression": "* * * * *", "script": "x", "always_on": True}, ["always_on"]),
    ({"expression": "* * * * *", "script": "x", "timeout": -3}, ["timeout"]),
    ({"expression": "* * * * *", "script": "x", "name": ""}, ["name"]),
    ({"expression": "* * * * *", "script": "x", "enabled": "yes"}, ["enabled"]),
    ({"expression": "* * * * *", "script": "x", "files": [{"name": "a.txt", "size": 3}]}, ["files", "content_base64"]),
])
def test_rest_bad_requests(magsd, body, words):
    st, err = magsd.api("POST", "/cron-jobs", body)
    assert st == 400, (body, st, err)
    for w in words:
        assert w in err["error"], (body, err)


def test_rest_bad_bodies_and_patch(magsd):
    for raw in ("{", "[]", '{"expression": "* * * * *", "expression": "* * * * *", "script": "x"}'):
        st, err = magsd.api("POST", "/cron-jobs", raw=raw, headers={"Content-Type": "application/json"})
        assert st == 400, (raw, st, err)
    st, err = magsd.api("POST", "/cron-jobs", raw="x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert st in (400, 413), (st, err)
    cid = create(magsd)["id"]
    for body, word in (({"expression": "* * * * 9"}, "day-of-week"), ({"always_on": True}, "always_on"),
                       ({"timezone": "Nowhere/Land"}, "time zone"), ({"id": "x"}, "unknown field"),
                       ({"script": ""}, "script")):
        st, err = magsd.api("PATCH", "/cron-jobs/" + cid, body)
        assert st == 400 and word in err["error"], (body, st, err)
    st, c = magsd.api("GET", "/cron-jobs/" + cid)
    assert st == 200 and c["expression"] == "0 0 1 1 *" and c["script"] == "echo hi"  # unchanged
    st, _ = magsd.api("GET", "/cron-jobs/nonexistent")
    assert st == 404
    st, _ = magsd.api("GET", "/cron-jobs/" + "a" * 300)
    assert st == 404


def test_cli(magsd):
    r = magsd.cli("cron", "create", "15 3 * * *", "echo", "from", "cli", "--name", "nightly", "--tz", "Asia/Kolkata",
                  "--timeout", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[0]
    assert cid.startswith("cron-") and "next run" in r.stdout
    st, c = magsd.api("GET", "/cron-jobs/" + cid)
    assert c["script"] == "echo from cli" and c["options"]["timeout"] == 60 and c["timezone"] == "Asia/Kolkata"
    assert "T21:45:00" in c["next_run_at"]  # 03:15 in Kolkata (+05:30)
    r = magsd.cli("cron", "list")
    assert r.returncode == 0, r.stderr
    head, row = r.stdout.splitlines()[:2]
    assert head.split()[:4] == ["ID", "NAME", "EXPRESSION", "TZ"]
    assert cid in row and "nightly" in row and "Asia/Kolkata" in row and "yes" in row
    r = magsd.cli("cron", "disable", cid)
    assert r.returncode == 0 and "disabled" in r.stdout, r.stderr
    r = magsd.cli("cron", "update", cid, "--expr", "@hourly")
    assert r.returncode == 0, r.stderr
    r = magsd.cli("cron", "enable", cid)
    assert r.returncode == 0 and "next run" in r.stdout, r.stderr
    st, c = magsd.api("GET", "/cron-jobs/" + cid)
    assert c["expression"] == "@hourly" and c["enabled"]
    r = magsd.cli("cron", "create", "61 * * * *", "echo x")
    assert r.returncode != 0 and "minute" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = magsd.cli("cron", "create", "* * * * *", "echo x", "--always-on")
    assert r.returncode != 0 and "always_on" in r.stderr, r.stderr
    r = magsd.cli("cron", "create", "* * * * *")
    assert r.returncode == 2, r.stderr
    r = magsd.cli("cron", "delete", cid)
    assert r.returncode == 0 and cid in r.stdout, r.stderr
    r = magsd.cli("cron", "delete", cid)
    assert r.returncode == 1 and "not found" in r.stderr, r.stderr
    r = magsd.cli("cron", "list", "--json")
    assert r.returncode == 0 and '"cron_jobs": []' in r.stdout


def cron_jobs(magsd, cid):
    st, body = magsd.api("GET", "/mags-jobs?limit=1000")
    assert st == 200
    return [j for j in body["jobs"] if j.get("cron_id") == cid]


def scheduled_time(magsd, jid):
    for e in magsd.logs(jid)["logs"]:
        m = FIRED_RE.search(e["data"]) if e["stream"] == "system" else None
        if m:
            return m.group(2)
    pytest.fail("job %s has no cron system line: %r" % (jid, magsd.logs(jid)))


def wait_firings(magsd, cid, n, timeout):
    deadline = time.time() + timeout
    while True:
        jobs = cron_jobs(magsd, cid)
        if len(jobs) >= n:
            return jobs
        if time.time() > deadline:
            pytest.fail("schedule %s fired %d time(s), wanted %d within %ds\n%s"
                        % (cid, len(jobs), n, timeout, magsd.log()[-4000:]))
        time.sleep(1)


def test_every_minute_fires_and_survives_restart(magsd):
    c = create(magsd, "* * * * *", "echo cron-ran-$((6*7))", name="minutely", timeout=120)
    cid = c["id"]
    job = wait_firings(magsd, cid, 1, 75)[0]
    done = magsd.wait_job(job["id"])
    assert done["status"] == "completed" and done["exit_code"] == 0, done
    assert done["cron_id"] == cid
    assert magsd.output(job["id"]).strip() == "cron-ran-42"
    first = scheduled_time(magsd, job["id"])
    assert first.endswith(":00Z")
    st, c = magsd.api("GET", "/cron-jobs/" + cid)
    assert c["last_run_at"] is not None and c["next_run_at"] > c["last_run_at"]
    r = magsd.cli("list")
    assert r.returncode == 0 and job["id"] in r.stdout, r.stdout

    # restart right after a firing: next_run was advanced before the job was submitted,
    # so the new magsd does not fire that minute again
    magsd.restart()
    jobs = wait_firings(magsd, cid, 2, 75)
    times = [scheduled_time(magsd, j["id"]) for j in jobs]
    assert len(times) == len(set(times)), "a minute fired twice: %s" % times
    assert first in times
    for j in jobs:
        magsd.wait_job(j["id"])
    st, _ = magsd.api("PATCH", "/cron-jobs/" + cid, {"enabled": False})
    assert st == 200
    # nothing fires while disabled, and no minute ever had two jobs
    times = [scheduled_time(magsd, j["id"]) for j in cron_jobs(magsd, cid)]
    assert len(times) == len(set(times)), times


def test_missed_runs_policy(magsd):
    """While magsd was down: a schedule whose newest missed time is under an hour old
    fires once (for that time), one whose missed times are older skips them; both
    then go on from the first time after now."""
    import sqlite3
    recent = create(magsd, "*/10 * * * *", "echo caught-up", timeout=120)["id"]
    # daily at the hour 3 hours back: its newest time is 3-4 hours old whatever the time of day
    old = create(magsd, "0 %d * * *" % ((time.gmtime().tm_hour + 21) % 24), "echo never")["id"]
    broken = create(magsd, "*/10 * * * *", "echo x", **{"from": "nosuch-base"})["id"]  # its job cannot start
    assert magsd.stop() == 0
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(magsd.state_dir + "/mags.db")
    # recent: due 25 min ago (missed 3 times at most); old: due 2 h ago
    db.execute("UPDATE cron_jobs SET next_run = ? WHERE id = ?", (now_ms - 25 * 60000, recent))
    db.execute("UPDATE cron_jobs SET next_run = ? WHERE id = ?", (now_ms - 2 * 3600000, old))
    db.execute("UPDATE cron_jobs SET next_run = ? WHERE id = ?", (now_ms - 25 * 60000, broken))
    db.commit()
    db.close()
    magsd.start()
    jobs = wait_firings(magsd, recent, 1, 60)
    time.sleep(2)
    assert len(cron_jobs(magsd, recent)) == 1  # once, not once per missed time
    at = scheduled_time(magsd, jobs[0]["id"])
    # it stands for the newest missed */10 time: a multiple of 10 minutes, at most 10 min ago
    assert at[14:16] in ("00", "10", "20", "30", "40", "50") and at.endswith(":00Z"), at
    import calendar
    at_s = calendar.timegm(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S"))
    assert now_ms / 1000 - 600 <= at_s <= time.time(), (at, now_ms)
    assert cron_jobs(magsd, old) == []
    # a firing whose job could not be submitted says why on the schedule
    st, c = magsd.api("GET", "/cron-jobs/" + broken)
    assert st == 200 and cron_jobs(magsd, broken) == [] and "nosuch-base" in (c["last_error"] or ""), c
    for cid in (recent, old):
        st, c = magsd.api("GET", "/cron-jobs/" + cid)
        assert st == 200 and c["next_run_at"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), c
    magsd.wait_job(jobs[0]["id"])
