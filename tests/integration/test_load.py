# SPDX-License-Identifier: MIT
"""Load: 200 concurrent API clients (wrk) against the test magsd (the
ASan+UBSan build by default) for a bounded time.

The mix (bench/load's wrk script, imported from there): health, job list,
status and logs of seeded jobs, workspace and schedule lists, requests that
must fail (malformed JSON 400, unknown job 404, no token 401) and a few real
job submissions. Asserted: no 5xx, no socket errors other than wrk's
timeouts, every kind of answer seen, magsd alive and answering afterwards,
and, at teardown (conftest's check_clean), magsd exiting 0 on SIGTERM with
no sanitizer report in its log: LeakSanitizer runs at exit (detect_leaks=1).
No time or throughput is asserted; bench/load is the 60 s version that
prints requests/s, latency and magsd's RSS.
"""
import importlib.machinery
import importlib.util
import os
import shutil

import pytest

from conftest import ROOT

SECONDS = 12
CONNECTIONS = 200
THREADS = 2
SUBMIT_EVERY = 4  # seconds between job submissions per wrk thread


def bench_load():
    """bench/load as a module (it has no .py suffix)."""
    path = os.path.join(ROOT, "bench", "load")
    loader = importlib.machinery.SourceFileLoader("mags_bench_load", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.fixture
def wrk():
    if shutil.which("wrk"):
        return
    if os.environ.get("CI"):
        pytest.fail("wrk is not installed (scripts/deps.sh installs it); CI must run the load test", pytrace=False)
    pytest.skip("wrk is not installed (apt-get install wrk)")


def test_200_concurrent_clients(wrk, magsd, mags_tmp):
    bench = bench_load()
    # data for the reads: finished jobs with output (one on a named workspace) and a schedule
    seeds = [magsd.submit("echo seed-0; echo seed-0-err >&2; true", workspace="load-ws")["id"],
             magsd.submit("echo seed-1; true")["id"]]
    for jid in seeds:
        assert magsd.wait_job(jid)["status"] == "completed", magsd.job(jid)
    st, body = magsd.api("POST", "/cron-jobs", {"expression": "0 0 1 1 *", "script": "true", "enabled": False})
    assert st == 201, (st, body)

    lua = bench.write_lua(os.path.join(mags_tmp, "mix.lua"), magsd.token, seeds, submit_every=SUBMIT_EVERY)
    res, out = bench.run_wrk(magsd.url, lua, THREADS, CONNECTIONS, SECONDS)
    report = "wrk: %s\nstatuses %s, errors %s, submitted %d" % (out[-1500:], res["statuses"], res["errors"],
                                                                res["submitted"])
    assert not bench.problems_of(res), report + "\n---- magsd log (tail) ----\n" + magsd.log()[-4000:]
    for code in (200, 400, 401, 404):
        assert res["statuses"].get(code), "no %d answer seen; %s" % (code, report)
    # submissions still in flight when wrk stops are not counted, hence <=
    accepted = res["statuses"].get(201, 0)
    assert 1 <= accepted <= res["submitted"], report

    # magsd is alive and still answers, and the jobs submitted under load run to the end
    assert magsd.proc.poll() is None, "magsd died under load:\n" + magsd.log()[-4000:]
    st, h = magsd.api("GET", "/health", token=False)
    assert st == 200 and h["status"] == "ok", (st, h)
    st, body = magsd.api("GET", "/mags-jobs?limit=1000")
    assert st == 200, (st, body)
    loaded = [j["id"] for j in body["jobs"] if j["id"] not in seeds]
    assert accepted <= len(loaded) <= res["submitted"], (loaded, report)
    for jid in loaded:
        j = magsd.wait_job(jid)
        assert j["status"] == "completed", j
    # teardown (the magsd fixture): SIGTERM, exit 0, no sanitizer or leak report, nothing left behind
