# SPDX-License-Identifier: MIT
"""Integration-test harness: the real magsd, the real mags CLI, real VMs.

Each test gets its own magsd (fixture `magsd`, or `magsd_factory` for custom
flags) started from MAGS_BIN_DIR (default build/san/bin: the ASan+UBSan build)
with a private state directory under /tmp, a free loopback port and the guest
kernel and image from MAGS_GUEST_DIR (default build/guest). At teardown the
harness stops magsd with SIGTERM and fails the test when

  - magsd's log holds a sanitizer report, or magsd did not exit 0,
  - a QEMU process that belongs to this state directory is still alive,
  - a per-sandbox run directory is left under STATE/run/.

Fast start: unless a test passes its own --template-dir or --no-snapshot, every
magsd shares one template directory (SHARED_TEMPLATES, made once per session),
so the template snapshot is built once and most jobs run in restored sandboxes.
Tests that corrupt or replace a template use a directory of their own.

State directories are kept short on purpose: the agent's unix socket lives in
STATE/run/<job id>/ and unix socket paths are limited to 108 bytes.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from openapi import check_reply

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.abspath(os.environ.get("MAGS_BIN_DIR", os.path.join(ROOT, "build/san/bin")))
GUEST_DIR = os.path.abspath(os.environ.get("MAGS_GUEST_DIR", os.path.join(ROOT, "build/guest")))
MAGSD = os.path.join(BIN_DIR, "magsd")
MAGS = os.path.join(BIN_DIR, "mags")

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:halt_on_error=1:print_stacktrace=1:"
                    "strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    "LSAN_OPTIONS": "print_suppressions=0",
}
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

SHARED_TEMPLATES = tempfile.mkdtemp(prefix="mags-tmpl-", dir="/tmp")

# generous bounds: they only keep a broken build from hanging the suite
START_TIMEOUT = 30
JOB_TIMEOUT = 180
STOP_TIMEOUT = 60


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(home):
    """The environment every mags/magsd child gets: no inherited MAGS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGS_")}
    env.update(SAN_ENV)
    env["HOME"] = home
    return env


def sanitizer_report(text):
    return next((m for m in SAN_MARKERS if m in text), None)


def qemu_pids(needle):
    """Pids of live QEMU processes whose command line mentions `needle`."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and "qemu" in cmd and needle in cmd:
            pids.append(int(d))
    return pids


def job_qemu_pids(state_dir, jid):
    """The live QEMU running job `jid`, from STATE/run/<jid>/qemu.pid (its first
    line; a restored sandbox's QEMU was started in a pool dir, so its command
    line does not name the job)."""
    try:
        with open(os.path.join(state_dir, "run", jid, "qemu.pid")) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return []
    return [pid] if pid_alive(pid) else []


def wait_for(what, fn, timeout=JOB_TIMEOUT, every=0.2, magsd=None, jid=None):
    """Polls fn until it returns something true and returns that; fails after
    timeout with `what` (and, given magsd, the job's and magsd's logs)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            more = ""
            if magsd is not None:
                more = "\n---- job logs ----\n%r\n---- magsd log ----\n%s" % (
                    magsd.logs(jid)["logs"] if jid else None, magsd.log()[-3000:])
            pytest.fail("timed out waiting for " + what + more)
        time.sleep(every)


def wait_no_qemu(needle, timeout=15):
    """Waits for QEMUs mentioning `needle` to go; returns the ones still alive."""
    deadline = time.time() + timeout
    while True:
        left = qemu_pids(needle)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


def net_claims(pid):
    """Sandbox network namespaces (/run/mags/net/IDX claim files) owned by magsd `pid`."""
    d = "/run/mags/net"
    left = []
    for name in os.listdir(d) if os.path.isdir(d) else []:
        try:
            with open(os.path.join(d, name)) as f:
                if f.read().strip() == str(pid):
                    left.append("mags-" + name)
        except OSError:
            pass
    return left


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Magsd:
    """One magsd under test. `url` is the base URL (no /api/v1)."""

    def __init__(self, tmp, max_concurrent=None, extra_args=(), listen_any=False, host=None, prefix=(), db=None):
        """host: the address magsd listens on (API, URL proxy, SSH host) and tests reach it
        at (default 127.0.0.1); prefix: a command line magsd and `magsd token create` run
        under (e.g. ip netns exec NS); db: magsd's --db (a SQLite path or a postgres URL)."""
        self.tmp = tmp
        self.state_dir = os.path.join(tmp, "state")
        self.home = os.path.join(tmp, "home")
        self.log_path = os.path.join(tmp, "magsd.log")
        os.makedirs(self.home, exist_ok=True)
        self.max_concurrent = max_concurrent
        self.extra_args = list(extra_args)
        self.host = host or "127.0.0.1"
        self.listen_host = "0.0.0.0" if listen_any else self.host
        self.prefix = list(prefix)
        self.db = db
        self.env = base_env(self.home)
        self.proc = None
        self.port = None
        self.url = None
        self.token = None
        self.starts = 0

    # ---- process control ------------------------------------------------
    def create_token(self, user=None):
        cmd = self.prefix + [MAGSD, "--state-dir", self.state_dir] + (["--db", self.db] if self.db else []) + [
            "token", "create"]
        if user:
            cmd += ["--user", user]
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT)
        rep = sanitizer_report(r.stderr)
        assert not rep, "magsd token create: %s\n%s" % (rep, r.stderr)
        assert r.returncode == 0, "magsd token create failed (%d): %s" % (r.returncode, r.stderr)
        tok = r.stdout.strip()
        assert tok and "\n" not in tok, "token create printed %r" % r.stdout
        return tok

    def start(self):
        # a free port can be taken between free_port() and magsd's bind (by another
        # test, or by this magsd's own URL proxy on port 0): then it starts again
        for attempt in range(3):
            if self._start(last=attempt == 2):
                return self

    def _start(self, last):
        assert self.proc is None or self.proc.poll() is not None, "magsd already running"
        if self.token is None:
            self.token = self.create_token()
        self.port = free_port()
        self.url = "http://%s:%d" % (self.host, self.port)
        cmd = self.prefix + [MAGSD, "--state-dir", self.state_dir, "--listen", "%s:%d" % (self.listen_host, self.port),
                             "--guest-dir", GUEST_DIR]
        if self.db:
            cmd += ["--db", self.db]
        if self.max_concurrent:
            cmd += ["--max-concurrent", str(self.max_concurrent)]
        if "--template-dir" not in self.extra_args and "--no-snapshot" not in self.extra_args:
            cmd += ["--template-dir", SHARED_TEMPLATES]
        if "--url-listen" not in self.extra_args:
            cmd += ["--url-listen", self.host + ":0"]  # tests run side by side: any free port
        if "--ssh-host" not in self.extra_args:
            cmd += ["--ssh-host", self.host]
        if "--image" not in self.extra_args:
            cmd += ["--image", "busybox"]  # the small image keeps the suite fast; test_debian_image uses the default
        cmd += self.extra_args
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"\n==== magsd start %d: %s\n" % (self.starts, " ".join(cmd).encode()))
            log.flush()
            self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                this_start = self.log().rsplit("==== magsd start", 1)[-1]
                if not last and self.proc.returncode == 1 and "Address already in use" in this_start:
                    return False
                pytest.fail("magsd exited with %d during start-up:\n%s" % (self.proc.returncode, self.log()))
            try:
                st, body = self.api("GET", "/health", token=False, timeout=2)
                if st == 200:
                    return True
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("magsd did not answer /api/v1/health within %ds:\n%s" % (START_TIMEOUT, self.log()))
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends `sig` and waits; returns magsd's exit status (None if it was not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("magsd did not exit within %ds of signal %d:\n%s" % (timeout, sig, self.log()[-4000:]))

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        rc = self.stop()
        assert rc == 0, "magsd exited %s on SIGTERM:\n%s" % (rc, self.log()[-4000:])
        return self.start()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- clients --------------------------------------------------------
    def cli(self, *args, input=None, timeout=JOB_TIMEOUT, env=None, cwd=None, check_san=True):
        """Runs the mags CLI against this magsd; returns a CompletedProcess (text)."""
        e = dict(self.env)
        e["MAGS_API_URL"] = self.url
        e["MAGS_TOKEN"] = self.token
        if env:
            e.update(env)
        e = {k: v for k, v in e.items() if v is not None}
        r = subprocess.run([MAGS] + [str(a) for a in args], env=e, input=input, capture_output=True,
                           text=True, timeout=timeout, cwd=cwd or self.tmp)
        if check_san:
            rep = sanitizer_report(r.stderr)
            if rep:
                pytest.fail("mags %s: %s\n%s" % (" ".join(map(str, args)), rep, r.stderr))
        return r

    def request(self, method, path, body=None, raw=None, headers=None, token=True, timeout=30):
        """Returns the open urllib response (or HTTPError) for streaming reads."""
        if not path.startswith("/api/"):
            path = "/api/v1" + path
        data = raw
        hdrs = {}
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token is True:
            hdrs["Authorization"] = "Bearer " + self.token
        elif token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        if isinstance(data, str):
            data = data.encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            return urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            return e

    def api(self, method, path, body=None, raw=None, headers=None, token=True, timeout=30):
        """One API call; returns (status, parsed JSON or text)."""
        resp = self.request(method, path, body=body, raw=raw, headers=headers, token=token, timeout=timeout)
        with resp:
            status = resp.status if hasattr(resp, "status") else resp.code
            text = resp.read().decode(errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            return status, text
        path = path[len("/api/v1"):] if path.startswith("/api/v1") else path
        if not path.startswith("/api/"):
            check_reply(method, path, status, body)  # docs/api.yaml is the contract
        return status, body

    def fast_start(self):
        st, h = self.api("GET", "/health", token=False)
        assert st == 200, (st, h)
        return h["fast_start"]

    def wait_template(self, timeout=JOB_TIMEOUT):
        """Waits until the template snapshot is ready; returns the health's fast_start."""
        deadline = time.time() + timeout
        while True:
            fs = self.fast_start()
            if fs["template"] == "ready":
                return fs
            if time.time() > deadline:
                pytest.fail("template not ready after %ds: %r\n%s" % (timeout, fs, self.log()[-4000:]))
            time.sleep(0.2)

    def access(self):
        """GET /health's access object: url_base, url_port, ssh_host."""
        st, h = self.api("GET", "/health", token=False)
        assert st == 200, (st, h)
        return h["access"]

    def how_started(self, jid):
        """'restored' or 'cold', from magsd's log line for the job."""
        for line in self.log().splitlines():
            if "job %s: restored" % jid in line:
                return "restored"
            if "job %s: cold booted" % jid in line:
                return "cold"
        return None

    # ---- helpers used by many tests ---------------------------------------
    def submit(self, script, **fields):
        body = dict(fields)
        body["script"] = script
        st, job = self.api("POST", "/mags-jobs", body)
        assert st == 201, "submit %r: %s %r" % (script, st, job)
        assert job["status"] in ("queued", "running", "completed", "failed"), job
        return job

    def job(self, jid):
        st, job = self.api("GET", "/mags-jobs/" + jid)
        assert st == 200, (st, job)
        return job

    def wait_job(self, jid, statuses=("completed", "failed"), timeout=JOB_TIMEOUT):
        deadline = time.time() + timeout
        while True:
            job = self.job(jid)
            if job["status"] in statuses:
                return job
            if time.time() > deadline:
                pytest.fail("job %s still %s after %ds (wanted %s)\n%s"
                            % (jid, job["status"], timeout, statuses, self.log()[-4000:]))
            time.sleep(0.2)

    def logs(self, jid, since=None):
        path = "/mags-jobs/%s/logs" % jid
        if since is not None:
            path += "?since=%d" % since
        st, body = self.api("GET", path)
        assert st == 200, (st, body)
        return body

    def output(self, jid, stream="stdout"):
        return "".join(e["data"] for e in self.logs(jid)["logs"] if e["stream"] == stream)

    def wait_output(self, jid, text, timeout=JOB_TIMEOUT):
        """Waits until the job's stdout contains `text` (so its VM is surely up)."""
        deadline = time.time() + timeout
        while text not in self.output(jid):
            job = self.job(jid)
            if job["status"] in ("completed", "failed"):
                pytest.fail("job %s ended (%r) before printing %r" % (jid, job, text))
            if time.time() > deadline:
                pytest.fail("job %s did not print %r within %ds" % (jid, text, timeout))
            time.sleep(0.2)

    def run_dirs(self):
        d = os.path.join(self.state_dir, "run")
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    # ---- teardown ---------------------------------------------------------
    def check_clean(self, stopped_rc):
        """Everything a finished magsd must leave behind: nothing."""
        problems = []
        rep = sanitizer_report(self.log())
        if rep:
            problems.append("sanitizer report in magsd log: %s" % rep)
        if stopped_rc not in (None, 0):
            problems.append("magsd exited %s on SIGTERM" % stopped_rc)
        left = wait_no_qemu(self.state_dir)
        if left:
            kill_pids(left)
            problems.append("QEMU processes left running: %s" % left)
        if self.run_dirs():
            problems.append("run dirs left in %s/run: %s" % (self.state_dir, self.run_dirs()))
        if self.proc is not None and net_claims(self.proc.pid):
            problems.append("network namespaces left behind: %s" % net_claims(self.proc.pid))
        if problems:
            pytest.fail("; ".join(problems) + "\n---- magsd log (tail) ----\n" + self.log()[-6000:])


@pytest.fixture
def mags_tmp():
    """A short private directory under /tmp (unix socket paths must stay < 108 bytes)."""
    d = tempfile.mkdtemp(prefix="mags-", dir="/tmp")
    yield d
    left = qemu_pids(d)
    kill_pids(left)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def magsd_factory(mags_tmp):
    """Makes (and starts) magsd instances: magsd_factory(max_concurrent=2)."""
    made = []

    def make(**kw):
        sub = tempfile.mkdtemp(prefix="d", dir=mags_tmp)
        m = Magsd(sub, **kw)
        made.append(m)
        return m.start()

    yield make
    for m in made:
        rc = m.stop()
        m.check_clean(rc)


@pytest.fixture
def magsd(magsd_factory):
    return magsd_factory()


@pytest.fixture(scope="session")
def pg():
    """A throwaway PostgreSQL 15 on 127.0.0.1 for the session (tests/integration/pgserver.py).
    Missing PostgreSQL is an error, never a skip."""
    from pgserver import PgServer
    srv = PgServer(addresses=["127.0.0.1"]).start()
    yield srv
    srv.stop()


@pytest.fixture
def pg_db(pg):
    """Makes fresh, empty databases on the session's PostgreSQL: pg_db() returns
    a postgresql:// URL; each is dropped after the test."""
    made = []

    def make():
        name = "t%d_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9, len(made))
        made.append(name)
        return pg.create_db(name)

    yield make
    for name in made:
        pg.drop_db(name)


def pytest_sessionfinish(session, exitstatus):
    kill_pids(qemu_pids(SHARED_TEMPLATES))
    shutil.rmtree(SHARED_TEMPLATES, ignore_errors=True)


def pytest_report_header(config):
    return "mags: bin dir %s, guest dir %s" % (BIN_DIR, GUEST_DIR)


def pytest_collection_modifyitems(config, items):
    missing = [p for p in (MAGSD, MAGS, os.path.join(GUEST_DIR, "test.img")) if not os.path.exists(p)]
    if not os.path.exists(os.path.join(GUEST_DIR, "vmlinux")) and not os.path.exists(os.path.join(GUEST_DIR, "bzImage")):
        missing.append(os.path.join(GUEST_DIR, "vmlinux"))
    if missing:
        # a missing build is an error, never a silent skip
        raise pytest.UsageError("integration tests need %s (run make, or make test)" % ", ".join(missing))
