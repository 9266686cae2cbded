# SPDX-License-Identifier: MIT
"""The Python SDK (sdk/python, package `mags`) against a real magsd and real
guests: the three examples of its documentation run as written, run and
run_and_wait with exit codes, timeouts and uploads, logs and live log
streams, workspaces, always-on jobs and PATCH, guest images (the `image`
option), the error classes, where the token and URL come from, and a
`pip install` of the package into a venv.

The SDK is imported from the source tree. Jobs are few and reused across
assertions: the guests boot under TCG.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import JOB_TIMEOUT, ROOT, wait_for

SDK_DIR = os.path.join(ROOT, "sdk", "python")
sys.path.insert(0, SDK_DIR)

import mags  # noqa: E402
from mags import Job, Mags  # noqa: E402

IS_ROOT = os.geteuid() == 0  # public URLs need tap networking
NO_POOL = ["--pool-size", "0"]  # for tests that start no sandbox: no idle VMs eating the CPU

# The test image has no python: these workspaces get a `python` that runs the
# file with sh, and the scripts the documentation's examples name.
SHIM = """
printf '#!/bin/sh\\nexec sh "$@"\\n' > /usr/bin/python && chmod +x /usr/bin/python
"""
APP = SHIM + """
printf 'echo app up\\nexec httpd -f -p 8080 -h /root\\n' > /root/app.py
"""
TRAIN = SHIM + """
printf 'while :; do echo step; sleep 1; done\\n' > /root/train.py
"""

EXAMPLE_BASIC = """
from mags import Mags

client = Mags()

# Run a simple command
job = client.run("echo hello")
print(job.logs)
"""

EXAMPLE_APP = """
from mags import Mags

client = Mags()

job = client.run(
    script="python app.py",
    workspace="myapp",
    persist=True,
    url=True,
    files=["data.csv"]
)
print(job.url)
print(job.id)
"""

EXAMPLE_LIFECYCLE = """
from mags import Mags

client = Mags()

# Start a long-running job
job = client.run(
    script="python train.py",
    workspace="ml-training",
    persist=True
)

# Check status
status = client.status(job.id)
print(status)  # "running"

# Stream logs
logs = client.logs(job.id)
print(logs)

# Stop when done
client.stop(job.id)
print(job.id)
"""


def client_of(magsd, **kw):
    return Mags(token=magsd.token, api_url=magsd.url, **kw)


def clean_env(monkeypatch, home):
    """No MAGS_* variables from outside, and HOME = `home`."""
    for k in list(os.environ):
        if k.startswith("MAGS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", home)


def run_example(magsd, code, cwd, python=sys.executable):
    """Runs an example as a program, with the token and URL in the environment."""
    env = dict(magsd.env)
    env.update(MAGS_TOKEN=magsd.token, MAGS_API_URL=magsd.url, PYTHONPATH=SDK_DIR)
    path = os.path.join(cwd, "example.py")
    with open(path, "w") as f:
        f.write(code)
    r = subprocess.run([python, path], cwd=cwd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    assert r.returncode == 0, "example failed:\n%s\n%s" % (r.stdout, r.stderr)
    return r.stdout


def proxy_get(magsd, url, path="/"):
    """GET url+path through magsd's URL proxy (NAME.localhost resolves to 127.0.0.1 anyway)."""
    host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    c = http.client.HTTPConnection("127.0.0.1", magsd.access()["url_port"], timeout=30)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---- the documentation's examples --------------------------------------------------
def test_seed_examples(magsd, mags_tmp):
    client = client_of(magsd)
    cwd = os.path.join(mags_tmp, "cwd")
    os.makedirs(cwd)

    # Basic execution: job.logs waits for the end
    out = run_example(magsd, EXAMPLE_BASIC, cwd)
    assert out == "hello\n\n", out
    basic = client.list(limit=1)[0]
    assert basic.status == "completed" and basic.exit_code == 0 and basic.raw["script"] == "echo hello"

    # Persistent workspace with public URL and a file
    setup = client.run_and_wait(APP, workspace="myapp", persist=True)
    assert setup.status == "completed", (setup, client.logs(setup.id))
    with open(os.path.join(cwd, "data.csv"), "w") as f:
        f.write("a,b\n1,2\n")
    code = EXAMPLE_APP if IS_ROOT else EXAMPLE_APP.replace("url=True,", "")  # URLs need tap networking
    url, jid = run_example(magsd, code, cwd).splitlines()
    app = client.get(jid)
    assert app.workspace == "myapp" and app.raw["persist"] is True
    wait_for("the app's output", lambda: "app up" in client.logs(jid))
    if IS_ROOT:
        assert url == app.url and url.startswith("http://myapp."), (url, app.raw)
        st, body = wait_for("the app through its URL", lambda: (lambda r: r if r[0] == 200 else None)(
            proxy_get(magsd, url, "/data.csv")))
        assert body == b"a,b\n1,2\n"
        # access and aliases
        assert client.enable_access(jid, url=True, port=8080).url == url
        alias = client.url_aliases.create("my-app", workspace="myapp")
        assert alias["url"].startswith("http://my-app."), alias
        assert [a["alias"] for a in client.url_aliases.list()] == ["my-app"]
        assert proxy_get(magsd, alias["url"], "/data.csv") == (200, b"a,b\n1,2\n")
        client.url_aliases.delete("my-app")
        assert client.url_aliases.list() == []
    else:
        assert url == "None"
    # a push of the running workspace, by job and by name
    first = client.sync(jid)
    second = client.sync("myapp")
    assert first["workspace"] == second["workspace"] == "myapp" and second["version"] == first["version"] + 1
    stopped = client.stop(jid)
    assert (stopped.status, stopped.error) == ("failed", "stopped")

    # Job lifecycle: status, logs, stop
    setup = client.run_and_wait(TRAIN, workspace="ml-training", persist=True)
    assert setup.status == "completed", (setup, client.logs(setup.id))
    lines = run_example(magsd, EXAMPLE_LIFECYCLE, cwd).splitlines()
    assert lines[0] in ("queued", "running"), lines
    train = client.get(lines[-1])
    assert train.status == "failed" and train.error == "stopped", train.raw

    # the workspaces stay, and go when deleted
    names = {w.name: w for w in client.workspace.list()}
    assert {"myapp", "ml-training"} <= set(names), names
    assert names["myapp"].persistent is True
    for name in ("myapp", "ml-training"):
        client.workspace.delete(name)
        with pytest.raises(mags.NotFoundError):
            client.workspace.get(name)
    assert not {"myapp", "ml-training"} & {w.name for w in client.workspace.list()}


# ---- jobs, output, uploads -----------------------------------------------------------
CHECK_FILES = """
echo "one: $(cat one.txt)"
echo "two: $(cat two.sh)"
stat -c '%a %s' one.txt two.sh
./two.sh
sleep 2
echo oops >&2
exit 3
"""


def test_run_wait_logs_stream_files(magsd, mags_tmp):
    client = client_of(magsd)
    one = os.path.join(mags_tmp, "one.txt")
    sub = os.path.join(mags_tmp, "sub")
    os.makedirs(sub)
    two = os.path.join(sub, "two.sh")
    with open(one, "w") as f:
        f.write("first file")
    os.chmod(one, 0o644)
    with open(two, "w") as f:
        f.write("echo run from two.sh")
    os.chmod(two, 0o750)

    # two files uploaded before the script runs; the output streams live
    job = client.run(CHECK_FILES, files=[one, two])
    entries = []
    for entry in client.stream_logs(job.id):
        if not entries:
            assert client.status(job.id) == "running"  # live, not after the end
        entries.append(entry)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    out = "".join(e.data for e in entries if e.stream == "stdout")
    assert out == "one: first file\ntwo: echo run from two.sh\n644 10\n750 20\nrun from two.sh\n", entries
    assert "".join(e.data for e in entries if e.stream == "stderr") == "oops\n"
    assert all(e.is_system == (e.stream == "system") for e in entries)
    job.wait(timeout=JOB_TIMEOUT)
    assert (job.status, job.exit_code, job.done) == ("failed", 3, True)
    assert client.logs(job.id) == job.logs == "".join(e.data for e in entries if not e.is_system)
    assert "exit code 3" in str(job) and job.id in str(job)
    # a stream of an ended job replays it and stops; since= skips what was seen
    assert [e.seq for e in job.stream_logs()] == [e.seq for e in entries]
    assert list(client.stream_logs(job.id, since=entries[-1].seq)) == []

    # a duplicate file name is refused before anything is sent
    with open(os.path.join(mags_tmp, "two.sh"), "w") as f:
        f.write("x")
    with pytest.raises(ValueError, match="two.sh"):
        client.run("true", files=[two, os.path.join(mags_tmp, "two.sh")])

    # run_and_wait: the sandbox's own timeout (exit 124) ...
    t = client.run_and_wait("echo start; sleep 30", job_timeout=1, ephemeral=True)
    assert (t.status, t.exit_code, t.raw["timeout"]) == ("failed", 124, 1), t.raw
    assert t.logs == "start\n"
    # ... and a wait that runs out stops the job, like subprocess.run
    with pytest.raises(mags.JobTimeoutError) as ei:
        client.run_and_wait("sleep 60", timeout=2)
    assert isinstance(ei.value, TimeoutError) and ei.value.job.status in ("queued", "running")
    stopped = client.get(ei.value.job.id)
    assert (stopped.status, stopped.error) == ("failed", "stopped"), stopped.raw

    # a job that ended cannot be stopped
    with pytest.raises(mags.ConflictError) as ci:
        client.stop(job.id)
    assert ci.value.status == 409 and "already" in ci.value.message

    # status, get, list
    assert client.status(job.id) == "failed"
    got = client.get(job.id)
    assert got == job and got.raw["script"] == CHECK_FILES and got.finished_at and got.started_at
    ids = [j.id for j in client.list()]
    assert ids[:3] == [stopped.id, t.id, job.id], ids
    assert [j.id for j in client.list(status="completed")] == []
    assert [j.id for j in client.list(limit=1)] == [stopped.id]


def test_base_image_and_startup(magsd):
    client = client_of(magsd)
    # base_image=True freezes the workspace; base_image="NAME" starts from it (the API's "from")
    base = client.run_and_wait("echo from-base > /base.txt", workspace="py-base", base_image=True)
    assert base.status == "completed" and base.raw["base_image"] is True, base.raw
    child = client.run_and_wait("cat /base.txt", base_image="py-base")
    assert (child.status, child.raw["from"], child.logs) == ("completed", "py-base", "from-base\n"), child.raw
    ws = client.workspace.get("py-base")
    assert ws.base_image is True and ws.in_use_by is None
    # startup (alias of startup_command) runs first; when it fails the job fails without running the script
    failed = client.run_and_wait("echo never", startup="echo setting up; exit 7", ephemeral=True)
    assert failed.status == "failed" and failed.raw["startup_command"] == "echo setting up; exit 7"
    assert "exit code 7" in (failed.error or ""), failed.raw
    assert failed.logs == "setting up\n"
    client.workspace.delete("py-base")  # the child had no workspace of its own: nothing depends on the base
    assert client.workspace.list() == []


def test_always_on_and_update(magsd):
    client = client_of(magsd)
    job = client.run("echo up", always_on=True, idle_timeout=0)
    assert job.always_on and job.raw["idle_timeout"] == 0
    wait_for("the always-on job's output", lambda: "up" in client.logs(job.id))
    # its command exited 0: the sandbox stays up, and job.logs does not wait for an end
    wait_for("the note that it stays up", lambda: any(
        "stays up" in e["data"] for e in magsd.logs(job.id)["logs"] if e["stream"] == "system"))
    assert job.refresh().status == "running" and job.logs == "up\n"
    job = client.update(job.id, idle_timeout=30)
    assert job.raw["idle_timeout"] == 30 and job.always_on
    # always_on false ends a job whose command already exited 0
    client.update(job, always_on=False)
    job.wait(timeout=JOB_TIMEOUT)
    assert (job.status, job.exit_code) == ("completed", 0), job.raw
    entries = list(job.stream_logs())
    assert any(e.is_system and "stays up" in e.data for e in entries), entries
    assert "".join(e.data for e in entries if not e.is_system) == "up\n"
    with pytest.raises(mags.ConflictError):
        client.update(job, timeout=10)  # the job has ended
    with pytest.raises(TypeError):
        client.update(job)


# ---- guest images (issue 8) -------------------------------------------------------------
def test_image_option_fields(monkeypatch):
    """image= becomes the API's "image" for run() and schedules (no magsd needed)."""
    from mags._http import Transport
    from mags._options import job_fields

    assert job_fields({"image": "busybox", "ephemeral": True}) == {"image": "busybox", "ephemeral": True}
    assert job_fields({"image": None}) == {}  # None: magsd's default image
    assert job_fields({"image": None}, keep_none=True) == {"image": None}  # a schedule's update: remove it
    assert job_fields({"image": "debian", "base_image": "py-base"}) == {"image": "debian", "from": "py-base"}
    with pytest.raises(TypeError, match="'image' must be a str"):
        job_fields({"image": ["debian"]})
    with pytest.raises(TypeError, match="'image' must be a str"):
        job_fields({"image": True})

    sent = []

    def call(self, method, path, body=None, query=None):
        sent.append((method, path, body))
        if path == "/mags-jobs":
            return {"id": "j1", "status": "queued", "image": body.get("image", "debian")}
        return {"id": "cron-1", "options": body}

    monkeypatch.setattr(Transport, "call", call)
    client = Mags(token="t", api_url="http://127.0.0.1:1")
    job = client.run("uname -a", image="busybox", ephemeral=True)
    assert sent[-1] == ("POST", "/mags-jobs", {"script": "uname -a", "type": "inline", "image": "busybox",
                                               "ephemeral": True})
    assert job.image == "busybox" and Job(client, {"id": "x"}).image is None
    assert client.run("true").image == "debian" and "image" not in sent[-1][2]
    client.cron.create("@daily", "date", image="busybox")
    assert sent[-1] == ("POST", "/cron-jobs", {"expression": "@daily", "script": "date", "image": "busybox"})
    client.cron.update("cron-1", image=None)
    assert sent[-1] == ("PATCH", "/cron-jobs/cron-1", {"image": None})


def test_image(magsd):
    client = client_of(magsd)
    st, health = magsd.api("GET", "/health", token=False)
    assert st == 200 and "busybox" in health["images"] and health["default_image"] in health["images"], health

    # a job on the image asked for: every reply names it
    job = client.run_and_wait("echo on-busybox", image="busybox", ephemeral=True)
    assert (job.status, job.exit_code, job.logs) == ("completed", 0, "on-busybox\n"), job.raw
    assert job.image == job.raw["image"] == "busybox", job.raw
    assert client.get(job.id).image == "busybox"
    assert [(j.id, j.image) for j in client.list(limit=1)] == [(job.id, "busybox")]

    # none asked for: the default's name, resolved at submit
    plain = client.run("true", ephemeral=True)
    assert plain.image == health["default_image"], plain.raw
    try:
        plain.stop()  # only its image matters here
    except mags.ConflictError:
        pass  # it ended already

    # an image this magsd does not have: 400 naming the field and listing the images
    with pytest.raises(mags.BadRequestError) as bi:
        client.run("true", image="no-such-image")
    assert bi.value.status == 400 and "image" in bi.value.message, bi.value
    assert all(name in bi.value.message for name in health["images"]), (bi.value.message, health["images"])

    # schedules take it too, checked the same way; None in an update removes it
    cron = client.cron.create("0 3 1 1 *", "date", image="busybox")
    assert cron["options"]["image"] == "busybox", cron
    with pytest.raises(mags.BadRequestError, match="no-such-image"):
        client.cron.update(cron["id"], image="no-such-image")
    with pytest.raises(mags.BadRequestError, match="image"):
        client.cron.create("0 3 1 1 *", "date", image="no-such-image")
    cron = client.cron.update(cron["id"], image=None)
    assert "image" not in cron["options"], cron
    client.cron.delete(cron["id"])


# ---- errors, configuration, packaging ------------------------------------------------
def test_errors(magsd_factory, mags_tmp, monkeypatch):
    m = magsd_factory(extra_args=NO_POOL)
    client = client_of(m)

    # bad options: TypeError before any request (this client's magsd does not exist)
    nowhere = Mags(token="t", api_url="http://127.0.0.1:1")
    with pytest.raises(TypeError, match="'workspce'"):
        nowhere.run("true", workspce="x")
    with pytest.raises(TypeError, match="persist"):
        nowhere.run("true", persist="yes")
    with pytest.raises(TypeError, match="'image'"):
        nowhere.run("true", image=5)
    with pytest.raises(mags.MagsConnectionError) as ce:
        nowhere.list()
    assert ce.value.url == "http://127.0.0.1:1/api/v1/mags-jobs" and ce.value.url in str(ce.value)

    # the API's 400, with its message
    with pytest.raises(mags.BadRequestError) as bi:
        client.run("true", workspace="bad name!")
    assert bi.value.status == 400 and "workspace" in bi.value.message
    with pytest.raises(mags.BadRequestError, match="timeout"):
        client.run("true", timeout=0)
    with pytest.raises(mags.BadRequestError):
        client.run("true", always_on=True, ephemeral=True)

    # unknown things: 404
    unknown = "00000000-0000-4000-8000-000000000000"
    for call in (client.get, client.status, client.logs, client.stop, client.wait):
        with pytest.raises(mags.NotFoundError) as ni:
            call(unknown)
        assert ni.value.status == 404
    with pytest.raises(mags.NotFoundError):
        list(client.stream_logs(unknown))
    with pytest.raises(mags.NotFoundError):
        client.workspace.delete("nope")

    # a wrong token: 401
    with pytest.raises(mags.AuthenticationError) as ai:
        Mags(token="wrong", api_url=m.url).list()
    assert ai.value.status == 401 and isinstance(ai.value, mags.MagsError)

    # URL aliases and cron schedules (the schedule never fires during the test)
    assert client.url_aliases.list() == []
    with pytest.raises(mags.NotFoundError):
        client.url_aliases.create("my-app", workspace="nope")
    cron = client.cron.create("0 3 1 1 *", "date", name="yearly", workspace="data", timeout=60)
    assert cron["id"].startswith("cron-") and cron["options"]["workspace"] == "data"
    assert [c["id"] for c in client.cron.list()] == [cron["id"]]
    cron = client.cron.update(cron["id"], enabled=False, timeout=None)
    assert cron["enabled"] is False and cron["next_run_at"] is None and "timeout" not in cron["options"]
    assert client.cron.get(cron["id"])["name"] == "yearly"
    with pytest.raises(mags.BadRequestError, match="minute"):
        client.cron.update(cron["id"], expression="61 * * * *")
    client.cron.delete(cron["id"])
    assert client.cron.list() == []


def test_token_and_url_resolution(magsd_factory, mags_tmp, monkeypatch):
    m = magsd_factory(extra_args=NO_POOL)
    home = os.path.join(mags_tmp, "home")
    os.makedirs(home)
    clean_env(monkeypatch, home)

    # nothing anywhere: a clear error that says what to do
    with pytest.raises(mags.AuthenticationError) as ai:
        Mags()
    assert "MAGS_TOKEN" in str(ai.value) and "mags login" in str(ai.value) and ai.value.status is None

    # the environment; MAGS_API_URL with or without /api/v1
    monkeypatch.setenv("MAGS_TOKEN", m.token)
    monkeypatch.setenv("MAGS_API_URL", m.url + "/api/v1/")
    assert Mags().api_url == m.url and Mags().list() == []
    monkeypatch.delenv("MAGS_TOKEN")
    monkeypatch.setenv("MAGS_API_TOKEN", m.token)
    assert Mags().list() == []
    monkeypatch.setenv("MAGS_TOKEN", "wrong")  # MAGS_TOKEN wins over its alias
    with pytest.raises(mags.AuthenticationError):
        Mags().list()
    monkeypatch.delenv("MAGS_TOKEN")
    monkeypatch.delenv("MAGS_API_TOKEN")
    monkeypatch.delenv("MAGS_API_URL")

    # without MAGS_API_URL: the default URL (nothing listens there in the test, or another magsd)
    assert Mags(token="t").api_url == "http://127.0.0.1:7557"

    # ~/.mags/config.json, as `mags login` or the CLI's local mode writes it
    os.makedirs(os.path.join(home, ".mags"), mode=0o700)
    config = os.path.join(home, ".mags", "config.json")
    with open(config, "w") as f:
        json.dump({"api_url": m.url, "token": m.token, "local": True}, f)
    client = Mags()
    assert client.api_url == m.url and client.workspace.list() == []
    # arguments and the environment win over the file
    assert Mags(api_url="http://10.0.0.1:9/").api_url == "http://10.0.0.1:9"
    monkeypatch.setenv("MAGS_TOKEN", "wrong")
    with pytest.raises(mags.AuthenticationError):
        Mags().list()
    assert Mags(token=m.token).list() == []
    monkeypatch.delenv("MAGS_TOKEN")
    with open(config, "w") as f:
        f.write("{not json")
    with pytest.raises(mags.MagsError, match="config.json"):
        Mags()
    with pytest.raises(ValueError, match="http"):
        Mags(token="t", api_url="127.0.0.1:7557")


def test_pip_install_in_venv(magsd_factory, mags_tmp):
    venv = os.path.join(mags_tmp, "venv")
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("python3 -m venv does not work here: %s" % r.stderr.strip()[-300:])
    py = os.path.join(venv, "bin", "python")
    if subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("no pip in the venv")
    # a copy of the source tree: the build must not leave files in the repository
    src = os.path.join(mags_tmp, "sdk-python")
    shutil.copytree(SDK_DIR, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", src],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr

    m = magsd_factory(extra_args=NO_POOL)
    check = textwrap.dedent("""
        import os, sys, mags
        here = os.path.dirname(mags.__file__)
        assert here.startswith(sys.prefix), (here, sys.prefix)
        assert os.path.exists(os.path.join(here, "py.typed"))
        client = mags.Mags()
        print(mags.__version__, len(client.list()), client.workspace.list())
    """)
    env = dict(m.env, MAGS_TOKEN=m.token, MAGS_API_URL=m.url)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([py, "-c", check], cwd=mags_tmp, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == [mags.__version__, "0", "[]"]
