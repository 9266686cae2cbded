# SPDX-License-Identifier: MIT
"""The web dashboard (dashboard/, served by magsd at /dashboard/) in a real
headless Chromium: tests/dashboard/run.mjs signs in (a wrong token first), reads
a finished job's logs and follows a running one's live before stopping it,
creates a schedule (after a bad expression), creates and revokes a token,
creates an alias, deletes a workspace, approves and denies `mags login`
requests and signs out. Screenshots of every page go to
build/dashboard-screenshots/.

Needs node and Debian's chromium (scripts/deps.sh); playwright-core is installed
on first use by scripts/playwright.sh (npm registry, then cached)."""
import os
import shutil
import subprocess
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = os.path.join(ROOT, "build", "dashboard-screenshots")


def test_dashboard_in_browser(magsd):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (scripts/deps.sh installs it)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s is not installed (scripts/deps.sh installs Debian's chromium)" % CHROMIUM)

    with urllib.request.urlopen(magsd.url + "/dashboard/", timeout=10) as resp:
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert b'src="app.js"' in resp.read()

    # the data the pages show
    done = magsd.submit("echo '<b>dashboard-hello</b>'; echo dashboard-err >&2", workspace="dash-ws")
    live = magsd.submit("echo live-start; sleep 120")
    job = magsd.wait_job(done["id"])
    assert job["status"] == "completed", job
    magsd.wait_output(live["id"], "live-start")

    inst = subprocess.run([os.path.join(ROOT, "scripts/playwright.sh"), "install"],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, "scripts/playwright.sh install failed:\n" + inst.stderr
    modules = inst.stdout.strip().splitlines()[-1]

    shutil.rmtree(SHOTS, ignore_errors=True)
    env = dict(os.environ,
               MAGS_URL=magsd.url, MAGS_TOKEN=magsd.token, SHOTS_DIR=SHOTS, CHROMIUM=CHROMIUM,
               MAGS_JOB_ID=done["id"], MAGS_JOB_TEXT="<b>dashboard-hello</b>",
               MAGS_LIVE_JOB_ID=live["id"], MAGS_LIVE_TEXT="live-start", MAGS_WORKSPACE="dash-ws",
               PLAYWRIGHT_CORE=os.path.join(modules, "playwright-core", "index.mjs"))
    try:
        r = subprocess.run([node, os.path.join(ROOT, "tests/dashboard/run.mjs")], env=env,
                           capture_output=True, text=True, timeout=120)
    finally:
        if magsd.job(live["id"])["status"] in ("queued", "running"):
            magsd.api("POST", "/mags-jobs/%s/stop" % live["id"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, "tests/dashboard/run.mjs exited %d:\n%s" % (r.returncode, out)

    # what the browser did, seen through the API
    assert magsd.wait_job(live["id"])["error"] == "stopped"
    st, _ = magsd.api("GET", "/workspaces/dash-ws")
    assert st == 404
    shots = sorted(os.listdir(SHOTS))
    assert len(shots) >= 14 and all(s.endswith(".png") for s in shots), shots
