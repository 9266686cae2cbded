#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Development checks of the mags CLI against the FAKE API (fake_api.py).

These check the CLI's side only: request bodies, NDJSON stream handling,
exit codes, error lines, local-mode auto-start. They say nothing about magsd;
the real integration tests (conftest.py) do. Stdlib only:

    python3 tests/integration/test_cli_fake_api.py [-v]

MAGS_BIN_DIR picks the mags binary (default build/san/bin, the ASan+UBSan
build); every run's stderr is checked for sanitizer reports.
"""
import json
import os
import pty
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN_DIR = os.path.abspath(os.environ.get("MAGS_BIN_DIR", os.path.join(ROOT, "build/san/bin")))
MAGS = os.path.join(BIN_DIR, "mags")
FAKE_API = os.path.join(HERE, "fake_api.py")
FAKE_MAGSD = os.path.join(HERE, "fake_magsd.py")
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:halt_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def start_fake(tmp, *extra):
    portfile = os.path.join(tmp, "port.%d" % time.monotonic_ns())
    proc = subprocess.Popen([sys.executable, FAKE_API, "--portfile", portfile] + list(extra))
    for _ in range(200):
        if os.path.exists(portfile):
            with open(portfile) as f:
                return proc, int(f.read())
        time.sleep(0.025)
    proc.kill()
    raise RuntimeError("fake API did not start")


def port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class CliCase(unittest.TestCase):
    FAKE_ARGS = ("--reject", "ssh")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mags-cli-")
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls.proc, cls.port = start_fake(cls.tmp, *cls.FAKE_ARGS)
        cls.url = "http://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items() if not k.startswith("MAGS_")}
        e.update(SAN_ENV)
        e.update({"HOME": self.home, "MAGS_API_URL": self.url, "MAGS_TOKEN": "good-token"})
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def mags(self, *args, env=None, cwd=None, timeout=60, stdin=subprocess.DEVNULL):
        p = subprocess.run([MAGS] + list(args), env=env or self.env(), cwd=cwd or self.tmp,
                           capture_output=True, timeout=timeout, stdin=stdin)
        out, err = p.stdout.decode(), p.stderr.decode()
        for m in SAN_MARKERS:
            self.assertNotIn(m, err, "sanitizer report:\n" + err)
        return p.returncode, out, err

    def requests(self):
        with urllib.request.urlopen(self.url + "/_fake/requests") as r:
            return json.load(r)

    def last_submit(self):
        subs = [r for r in self.requests()["requests"] if r["method"] == "POST" and r["path"] == "/api/v1/mags-jobs"]
        return json.loads(subs[-1]["body"])

    def nrequests(self):
        return len(self.requests()["requests"])

    def check_usage(self, args, needle):
        n = self.nrequests()
        rc, out, err = self.mags(*args)
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(needle, err)
        self.assertEqual(self.nrequests(), n, "a usage error must not reach the server")

    def job_id_from(self, err):
        for line in err.splitlines():
            if line.startswith("mags: job ") and len(line.split()) == 3:
                return line.split()[2]
        self.fail("no job id in stderr: %r" % err)


class TestRun(CliCase):
    def test_inline(self):
        rc, out, err = self.mags("run", "echo hi")
        self.assertEqual((rc, out, err), (0, "ran: echo hi\n", "note\n"))
        self.assertEqual(self.last_submit(), {"script": "echo hi", "type": "inline"})

    def test_script_joined_and_dashdash(self):
        rc, out, _ = self.mags("run", "--", "echo", "-n", "x")
        self.assertEqual((rc, out), (0, "ran: echo -n x\n"))

    def test_file_script(self):
        path = os.path.join(self.tmp, "job.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho from file\n")
        rc, out, _ = self.mags("run", "job.sh")
        self.assertEqual((rc, out), (0, "file: #!/bin/sh\n"))
        self.assertEqual(self.last_submit(), {"script": "#!/bin/sh\necho from file\n", "type": "file"})

    def test_all_flags(self):
        a = os.path.join(self.tmp, "data.bin")
        with open(a, "wb") as f:
            f.write(b"\x00\x01binary\xff")
        os.chmod(a, 0o640)
        rc, _, err = self.mags("-v", "run", "-w", "ws1", "-p", "-f", a, "--file=" + FAKE_API, "--url", "--port",
                               "3000", "--startup", "node s.js", "--base-image", "--from", "base1",
                               "--timeout", "30", "--always-on", "echo x")
        self.assertEqual(rc, 0, err)
        jid = self.job_id_from(err)
        body = self.last_submit()
        files = body.pop("files")
        self.assertEqual(body, {"script": "echo x", "type": "inline", "workspace": "ws1", "persist": True,
                                "url": True, "port": 3000, "startup_command": "node s.js", "base_image": True,
                                "from": "base1", "timeout": 30, "always_on": True})
        # -f files are declared, then uploaded (test_cli_workspace.py covers the upload)
        self.assertEqual(files, [{"name": "data.bin", "mode": 0o640, "size": 9},
                                 {"name": "fake_api.py", "mode": os.stat(FAKE_API).st_mode & 0o777,
                                  "size": os.path.getsize(FAKE_API)}])
        self.assertEqual([u["name"] for u in self.requests()["uploads"] if u["job"] == jid],
                         ["data.bin", "fake_api.py"])
        rc, _, err = self.mags("run", "--ephemeral", "echo x")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.last_submit(), {"script": "echo x", "type": "inline", "ephemeral": True})

    def test_short_cluster(self):
        rc, _, err = self.mags("run", "-pv", "-wmyws", "echo x")
        self.assertEqual(rc, 0)
        self.assertIn("mags: job ", err)
        b = self.last_submit()
        self.assertEqual((b["persist"], b["workspace"]), (True, "myws"))

    def test_exit_code(self):
        rc, out, err = self.mags("run", "exit 7")
        self.assertEqual((rc, out, err), (7, "bye\n", ""))

    def test_timeout_124(self):
        rc, out, err = self.mags("run", "TIMEOUT")
        self.assertEqual((rc, out), (124, "working\n"))
        self.assertEqual(err, "mags: timed out after 1s\n")

    def test_sandbox_failure(self):
        rc, out, err = self.mags("-v", "run", "BOOTFAIL")
        jid = self.job_id_from(err)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("mags: sandbox failed: kernel panic\nmags: second line\n", err)
        self.assertTrue(err.endswith("mags: job %s failed: sandbox failed to boot: kernel panic\n" % jid), err)

    def test_split_lines_and_heartbeats(self):
        rc, out, err = self.mags("run", "SPLIT")
        self.assertEqual(rc, 3)
        self.assertEqual(out, "split 0 \u00e9\nsplit 2 \u00e9\nsplit 4 \u00e9\n")
        self.assertEqual(err, "split 1 \u00e9\nsplit 3 \u00e9\nsplit 5 \u00e9\n")

    def test_reconnect_since(self):
        rc, out, err = self.mags("-v", "run", "BREAK")
        jid = self.job_id_from(err)
        self.assertEqual(rc, 3)
        self.assertEqual(out, "break 0 \u00e9\nbreak 2 \u00e9\nbreak 4 \u00e9\n")
        follows = [r["path"] for r in self.requests()["requests"] if jid in r["path"] and "follow" in r["path"]]
        self.assertEqual(follows[0], "/api/v1/mags-jobs/%s/logs?follow=true&since=0" % jid)
        self.assertEqual(follows[1], "/api/v1/mags-jobs/%s/logs?follow=true&since=2" % jid)

    def test_fallback_after_retries(self):
        rc, out, err = self.mags("-v", "run", "BREAKALL", timeout=120)
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, "breakall 0 \u00e9\nbreakall 2 \u00e9\nbreakall 4 \u00e9\n")

    def test_many_in_order(self):
        rc, out, _ = self.mags("run", "MANY")
        self.assertEqual(rc, 0)
        self.assertEqual(out, "".join("line %d\n" % i for i in range(500)))

    def test_sigint_stops_job(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            p = subprocess.Popen([MAGS, "-v", "run", "SLOW"], env=self.env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            first = p.stdout.readline()  # arrives while the job still runs: output is live
            self.assertEqual(first, b"tick 0\n")
            p.send_signal(sig)
            out, err = p.communicate(timeout=30)
            err = err.decode()
            for m in SAN_MARKERS:
                self.assertNotIn(m, err)
            self.assertEqual(p.returncode, 130, err)
            jid = self.job_id_from(err)
            self.assertIn("mags: interrupted: stopped job %s" % jid, err)
            stops = [r for r in self.requests()["requests"] if r["path"] == "/api/v1/mags-jobs/%s/stop" % jid]
            self.assertEqual(len(stops), 1)
            rc, out, _ = self.mags("status", jid)
            self.assertIn("status: failed\n", out)
            self.assertIn("error: stopped\n", out)

    def test_verbose_env(self):
        _, _, err = self.mags("run", "echo x", env=self.env(MAGS_VERBOSE="1"))
        self.assertRegex(err, r"^mags: job [0-9a-f-]{36}\n")


class TestUsage(CliCase):
    def test_errors(self):
        self.check_usage(["run", "--bogus", "x"], "unknown flag --bogus")
        self.check_usage(["run", "-z", "x"], "unknown flag -z")
        self.check_usage(["run", "-w"], "-w needs a value")
        self.check_usage(["run", "--timeout"], "--timeout needs a value")
        self.check_usage(["run", "--timeout", "0", "x"], "--timeout")
        self.check_usage(["run", "--timeout", "-5", "x"], "--timeout")
        self.check_usage(["run", "--timeout", "abc", "x"], "--timeout")
        self.check_usage(["run", "--timeout=1.5", "x"], "--timeout")
        self.check_usage(["run", "--port", "70000", "x"], "--port")
        self.check_usage(["run", "--port", "0", "--url", "x"], "--port")
        self.check_usage(["run", "--port", "3000", "x"], "--port needs --url")
        self.check_usage(["run", "--ssh=yes", "x"], "--ssh takes no value")
        self.check_usage(["run"], "missing SCRIPT")
        self.check_usage(["run", "-p"], "missing SCRIPT")
        self.check_usage(["frobnicate"], "unknown command")
        self.check_usage(["--frob"], "unknown flag")
        self.check_usage(["status"], "missing ID")
        self.check_usage(["logs", "a", "b"], "unexpected argument")
        self.check_usage(["logs", "--tail", "a"], "unknown flag")

    def test_missing_file(self):
        rc, out, err = self.mags("run", "-f", "/nonexistent/x", "echo")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/x", err)
        self.assertIn("No such file", err)

    def test_help_version(self):
        for args in (["--help"], ["help"], ["-h"]):
            rc, out, err = self.mags(*args)
            self.assertEqual((rc, err), (0, ""))
            self.assertIn("usage: mags", out)
            self.assertIn("run [flags] SCRIPT", out)
        rc, out, _ = self.mags("help", "run")
        self.assertEqual(rc, 0)
        self.assertIn("--always-on", out)
        rc, out, _ = self.mags("run", "--help")
        self.assertIn("--timeout SECONDS", out)
        rc, out, _ = self.mags("--version")
        self.assertEqual((rc, out), (0, "mags 0.1.0\n"))
        rc, out, err = self.mags()
        self.assertEqual((rc, out), (2, ""))


# "x --timeout" is a script: check that separately (it reaches the server)
class TestScriptArgs(CliCase):
    def test_flag_after_script(self):
        rc, out, _ = self.mags("run", "x", "--timeout")
        self.assertEqual((rc, out), (0, "ran: x --timeout\n"))


class TestOtherCommands(CliCase):
    def submit(self, script):
        rc, _, err = self.mags("-v", "run", script)
        return self.job_id_from(err)

    def test_list(self):
        jid = self.submit("echo listed\nsecond line")
        long_id = self.submit("echo " + "y" * 60)
        rc, out, _ = self.mags("list")
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^ID\s+STATUS\s+EXIT\s+CREATED\s+SCRIPT$")
        row = [l for l in lines if l.startswith(jid)][0]
        self.assertRegex(row, r"completed\s+0\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+echo listed\.\.\.$")
        row = [l for l in lines if l.startswith(long_id)][0]
        self.assertTrue(row.endswith("echo " + "y" * 32 + "..."), row)
        rc, out, _ = self.mags("list", "--json")
        self.assertIn(jid, [j["id"] for j in json.loads(out)["jobs"]])
        rc, _, _ = self.mags("list", "--limit", "2", "--status", "completed")
        self.assertEqual(rc, 0)
        self.assertIn("/api/v1/mags-jobs?status=completed&limit=2", [r["path"] for r in self.requests()["requests"]])

    def test_status(self):
        jid = self.submit("exit 4")
        rc, out, _ = self.mags("status", jid)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("id: %s\nstatus: failed\nexit_code: 4\nerror: -\nscript: exit 4\n" % jid), out)
        rc, out, _ = self.mags("status", "--json", jid)
        self.assertEqual(json.loads(out)["exit_code"], 4)

    def test_logs(self):
        jid = self.submit("SPLIT")
        rc, out, err = self.mags("logs", jid)
        self.assertEqual((rc, out, err), (0, "split 0 \u00e9\nsplit 2 \u00e9\nsplit 4 \u00e9\n",
                                          "split 1 \u00e9\nsplit 3 \u00e9\nsplit 5 \u00e9\n"))
        rc, out2, err2 = self.mags("logs", "-f", jid)
        self.assertEqual((rc, out2, err2), (0, out, err))

    def test_logs_follow_live(self):
        p = subprocess.Popen([MAGS, "-v", "run", "SLOW"], env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdout.readline()
        jid = None
        while not jid:
            line = p.stderr.readline().decode()
            if line.startswith("mags: job "):
                jid = line.split()[2]
        f = subprocess.Popen([MAGS, "logs", "--follow", jid], env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.assertEqual(f.stdout.readline(), b"tick 0\n")
        rc, out, err = self.mags("stop", jid)
        self.assertEqual((rc, out), (0, "stopped %s\n" % jid))
        fout, ferr = f.communicate(timeout=30)
        self.assertEqual(f.returncode, 0)
        self.assertTrue(ferr.decode().endswith("mags: stopped\n"), ferr)
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1)
        rc, out, err = self.mags("stop", jid)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "mags: job %s already failed\n" % jid)

    def test_errors(self):
        rc, out, err = self.mags("status", "nope")
        self.assertEqual((rc, out, err), (1, "", 'mags: job "nope" not found\n'))
        rc, out, err = self.mags("logs", "nope")
        self.assertEqual((rc, err), (1, 'mags: job "nope" not found\n'))
        rc, out, err = self.mags("logs", "-f", "nope")
        self.assertEqual((rc, err), (1, 'mags: job "nope" not found\n'))
        rc, out, err = self.mags("stop", "nope")  # not a job id: a workspace name
        self.assertEqual((rc, err), (1, "mags: no running sandbox for workspace nope\n"))
        rc, out, err = self.mags("list", env=self.env(MAGS_TOKEN="wrong"))
        self.assertEqual((rc, err), (1, "mags: not authenticated (set MAGS_TOKEN or run mags login)\n"))
        rc, out, err = self.mags("run", "--ssh", "x")
        self.assertEqual((rc, out, err), (1, "", 'mags: "ssh" is not supported yet\n'))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        rc, out, err = self.mags("run", "x", env=self.env(MAGS_API_URL="http://127.0.0.1:%d/" % dead))
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("mags: cannot reach magsd at http://127.0.0.1:%d: " % dead), err)
        self.assertEqual(len(err.splitlines()), 1)

    def test_token_sources(self):
        rc, _, err = self.mags("list", env=self.env(MAGS_TOKEN=None, MAGS_API_TOKEN="good-token"))
        self.assertEqual(rc, 0, err)
        home = os.path.join(self.tmp, "home2")
        os.makedirs(os.path.join(home, ".mags"))
        with open(os.path.join(home, ".mags", "config.json"), "w") as f:
            json.dump({"api_url": self.url + "/api/v1", "token": "good-token"}, f)
        rc, _, err = self.mags("list", env=self.env(HOME=home, MAGS_TOKEN=None, MAGS_API_URL=None))
        self.assertEqual(rc, 0, err)
        rc, _, err = self.mags("list", env=self.env(HOME=home, MAGS_TOKEN="bad", MAGS_API_URL=None))
        self.assertEqual(rc, 1, "the environment wins over the config file")


FAKE_SSH = """#!/bin/sh
# stands in for OpenSSH's ssh: records its arguments, one per line, and exits 7
for a in "$@"; do printf '%s\\n' "$a"; done > "$FAKE_SSH_ARGV"
[ -t 0 ] && echo tty >> "$FAKE_SSH_ARGV.tty"
exit 7
"""


class AccessCase(CliCase):
    """The fake here knows ssh; each test gets a HOME of its own (the key lives there)."""
    FAKE_ARGS = ()

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.tmp)
        self.ssh = os.path.join(self.tmp, "fake-ssh")
        if not os.path.exists(self.ssh):
            with open(self.ssh, "w") as f:
                f.write(FAKE_SSH)
            os.chmod(self.ssh, 0o755)
        self.argv_file = os.path.join(self.home, "ssh-argv")

    def env(self, **kw):
        kw.setdefault("MAGS_SSH", self.ssh)
        kw.setdefault("FAKE_SSH_ARGV", self.argv_file)
        return CliCase.env(self, **kw)

    def post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(), method="POST")
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def job(self, jid):
        req = urllib.request.Request(self.url + "/api/v1/mags-jobs/" + jid,
                                     headers={"Authorization": "Bearer good-token"})
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def reqs(self, method, prefix):
        return [r for r in self.requests()["requests"] if r["method"] == method and r["path"].startswith(prefix)]

    def ssh_argv(self):
        with open(self.argv_file) as f:
            return f.read().splitlines()

    def key_paths(self):
        d = os.path.join(self.home, ".mags")
        return d, os.path.join(d, "id_ed25519"), os.path.join(d, "id_ed25519.pub"), os.path.join(d, "known_hosts")

    def pubkey(self):
        with open(self.key_paths()[2]) as f:
            return f.read().strip()

    def expected_ssh(self, jid, port, tail):
        d, key, _, kh = self.key_paths()
        return ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + kh,
                "-o", "HostKeyAlias=mags-" + jid, "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                "-p", str(port)] + tail

    def new(self, name, *flags):
        rc, out, err = self.mags("new", *flags, name)
        self.assertEqual(rc, 0, err)
        m = out.strip()
        self.assertRegex(m, r"^%s: running \(job [0-9a-f-]{36}\)$" % name)
        return m.split()[-1].rstrip(")")

    def stop(self, jid):
        rc, _, err = self.mags("stop", jid)
        self.assertEqual(rc, 0, err)


class TestRunAccess(AccessCase):
    def test_run_url(self):
        rc, out, err = self.mags("run", "-w", "web1", "--url", "--port", "3000", "LINGER")
        self.assertEqual((rc, out), (0, "up\n"), err)
        self.assertEqual(err, "url: http://web1.localhost:7558\n")
        self.assertEqual(self.last_submit(), {"script": "LINGER", "type": "inline", "workspace": "web1",
                                              "url": True, "port": 3000})
        rc, out, err = self.mags("run", "--url", "LINGER")
        self.assertEqual((rc, out), (0, "up\n"), err)
        self.assertRegex(err, r"^url: http://[0-9a-f]{8}\.localhost:7558\n$")
        self.assertEqual(self.last_submit(), {"script": "LINGER", "type": "inline", "url": True, "port": 8080})
        # a job that may end before it is seen running: the output and exit code as usual
        rc, out, err = self.mags("run", "--url", "exit 3")
        self.assertEqual((rc, out), (3, "bye\n"), err)

    def test_run_ssh(self):
        d, key, pub, kh = self.key_paths()
        self.assertFalse(os.path.exists(d))
        rc, out, err = self.mags("-v", "run", "--ssh", "LINGER")
        self.assertEqual((rc, out), (0, "up\n"), err)
        jid = self.job_id_from(err)
        # the key: made by the real ssh-keygen, private 0600 in a 0700 directory
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertTrue(self.pubkey().startswith("ssh-ed25519 AAAA"))
        self.assertTrue(self.pubkey().endswith(" mags"))
        p = subprocess.run(["ssh-keygen", "-l", "-f", key], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_submit(), {"script": "LINGER", "type": "inline", "ssh": True,
                                              "ssh_public_key": self.pubkey()})
        lines = [l for l in err.splitlines() if l.startswith("ssh: ")]
        self.assertEqual(len(lines), 1, err)
        port = int(lines[0].split(" -p ")[1].split()[0])
        self.assertEqual(lines[0], "ssh: " + " ".join(["ssh"] + self.expected_ssh(jid, port, ["root@127.0.0.1"])))
        self.assertEqual(err, "mags: job %s\n%s\n" % (jid, lines[0]))
        with open(kh) as f:
            self.assertEqual(f.read(), "mags-%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyOfTheCliTestsOnly0123456789abcdefgh\n" % jid)
        self.assertEqual(stat.S_IMODE(os.stat(kh).st_mode), 0o600)
        # the same key next time
        before = self.pubkey()
        rc, _, err = self.mags("run", "--ssh", "--url", "LINGER")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.pubkey(), before)
        self.assertEqual(self.last_submit()["ssh_public_key"], before)
        self.assertIn("url: http://", err)
        self.assertIn("ssh: ssh -i ", err)

    def test_pub_rebuilt_and_keygen_missing(self):
        d, key, pub, _ = self.key_paths()
        rc, _, err = self.mags("run", "--ssh", "exit 0")
        self.assertEqual(rc, 0, err)
        before = self.pubkey().split()[:2]
        os.unlink(pub)
        rc, _, err = self.mags("run", "--ssh", "exit 0")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.pubkey().split()[:2], before)
        # no ssh-keygen in PATH: a clear error, nothing submitted
        os.unlink(key)
        empty = tempfile.mkdtemp(dir=self.tmp)
        n = len(self.reqs("POST", "/api/v1/mags-jobs"))
        rc, out, err = self.mags("run", "--ssh", "exit 0", env=self.env(PATH=empty))
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "mags: run --ssh: ssh-keygen not found: install the OpenSSH client tools to make "
                              "the SSH key %s\n" % key)
        self.assertEqual(len(self.reqs("POST", "/api/v1/mags-jobs")), n)
        rc, out, err = self.mags("run", "--ssh", "exit 0", env=self.env(HOME=None))
        self.assertEqual(rc, 1)
        self.assertIn("HOME is not set", err)


class TestUrl(AccessCase):
    def test_enable_by_name_and_id(self):
        jid = self.new("web2")
        rc, out, err = self.mags("url", "enable", "web2")
        self.assertEqual((rc, out, err), (0, "http://web2.localhost:7558\n", ""))
        paths = [r["path"] for r in self.requests()["requests"]]
        self.assertIn("/api/v1/mags-jobs?workspace=web2&status=running&limit=1", paths)
        acc = self.reqs("POST", "/api/v1/mags-jobs/%s/access" % jid)
        self.assertEqual(json.loads(acc[-1]["body"]), {"url": True, "port": 8080})
        rc, out, err = self.mags("url", "enable", "--port", "3000", jid)
        self.assertEqual((rc, out), (0, "http://web2.localhost:7558\n"), err)
        acc = self.reqs("POST", "/api/v1/mags-jobs/%s/access" % jid)
        self.assertEqual(json.loads(acc[-1]["body"]), {"url": True, "port": 3000})
        rc, out, err = self.mags("url", "enable", "--json", "--port=4000", "web2")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual((j["id"], j["url"], j["url_port"]), (jid, "http://web2.localhost:7558", 4000))
        self.stop(jid)
        # by ID once the job ended: magsd's 409 says why
        rc, out, err = self.mags("url", "enable", jid)
        self.assertEqual((rc, out, err), (1, "", "mags: job %s is failed, not running\n" % jid))

    def test_no_running_sandbox(self):
        n = len(self.reqs("POST", "/api/v1/mags-jobs"))
        rc, out, err = self.mags("url", "enable", "nosuch")
        self.assertEqual((rc, out, err), (1, "", "mags: no running sandbox for workspace nosuch "
                                                  "(start one with mags new nosuch)\n"))
        self.assertEqual(len(self.reqs("POST", "/api/v1/mags-jobs")), n, "url enable starts nothing")

    def test_alias(self):
        self.post("/_fake/workspaces", [{"name": "site"}])
        rc, out, err = self.mags("url", "alias", "site", "my-app")
        self.assertEqual((rc, out, err), (0, "http://my-app.localhost:7558\n", ""))
        self.assertEqual(json.loads(self.reqs("POST", "/api/v1/url-aliases")[-1]["body"]),
                         {"alias": "my-app", "workspace": "site"})
        rc, out, err = self.mags("url", "alias", "site", "my-app")
        self.assertEqual((rc, out, err), (1, "", 'mags: alias "my-app" is taken\n'))
        rc, out, err = self.mags("url", "alias", "nows", "other")
        self.assertEqual((rc, err), (1, 'mags: workspace "nows" not found\n'))
        rc, out, err = self.mags("url", "alias", "--json", "site", "a2")
        self.assertEqual(json.loads(out), {"alias": "a2", "workspace": "site", "url": "http://a2.localhost:7558"})
        rc, out, err = self.mags("url", "alias", "list")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "ALIAS   WORKSPACE  URL\n"
                              "a2      site       http://a2.localhost:7558\n"
                              "my-app  site       http://my-app.localhost:7558\n")
        rc, out, err = self.mags("url", "alias", "list", "--json")
        self.assertEqual([a["alias"] for a in json.loads(out)["aliases"]], ["a2", "my-app"])
        rc, out, err = self.mags("url", "alias", "remove", "my-app")
        self.assertEqual((rc, out, err), (0, "removed alias my-app\n", ""))
        self.assertEqual(self.reqs("DELETE", "/api/v1/url-aliases/")[-1]["path"], "/api/v1/url-aliases/my-app")
        rc, out, err = self.mags("url", "alias", "remove", "my-app")
        self.assertEqual((rc, out, err), (1, "", 'mags: alias "my-app" not found\n'))
        self.mags("url", "alias", "remove", "a2")
        rc, out, err = self.mags("url", "alias", "list")
        self.assertEqual((rc, out), (0, "ALIAS  WORKSPACE  URL\n"))

    def test_usage(self):
        self.check_usage(["url"], "url: missing subcommand")
        self.check_usage(["url", "bogus"], 'url: unknown subcommand "bogus"')
        self.check_usage(["url", "enable"], "url enable: missing NAME|ID")
        self.check_usage(["url", "enable", "a", "b"], "unexpected argument")
        self.check_usage(["url", "enable", "a b"], "neither a job id nor a workspace name")
        self.check_usage(["url", "enable", "--port", "0", "web"], '--port: "0" is not a port number')
        self.check_usage(["url", "enable", "--port", "65536", "web"], "--port")
        self.check_usage(["url", "enable", "--port"], "--port needs a value")
        self.check_usage(["url", "enable", "--bogus", "web"], "unknown flag --bogus")
        self.check_usage(["url", "alias"], "missing NAME and ALIAS")
        self.check_usage(["url", "alias", "site"], "missing ALIAS")
        for bad in ("My-App", "my_app", "a-", "-a", "a.b", "x" * 64, ""):
            self.check_usage(["url", "alias", "site", "--", bad], 'invalid alias "%s" (1-63 characters' % bad)
        self.check_usage(["url", "alias", "bad name", "ok"], 'invalid workspace name "bad name"')
        self.check_usage(["url", "alias", "remove", "Bad"], 'url alias remove: invalid alias "Bad"')
        self.check_usage(["url", "alias", "remove"], "missing ALIAS")
        self.check_usage(["url", "alias", "list", "x"], 'unexpected argument "x"')
        self.check_usage(["url", "alias", "site", "a", "b"], 'unexpected argument "b"')
        self.check_usage(["url", "alias", "--port", "1", "site", "a"], "unknown flag --port")
        self.check_usage(["new"], "new: missing NAME")
        self.check_usage(["new", "a", "b"], 'unexpected argument "b"')
        self.check_usage(["new", ".x"], 'new: invalid workspace name ".x"')
        self.check_usage(["new", "--bogus", "x"], "unknown flag --bogus")
        self.check_usage(["ssh"], "ssh: missing NAME|ID")
        self.check_usage(["ssh", "--bogus", "x"], "unknown flag --bogus")
        self.check_usage(["ssh", "a/b"], "neither a job id nor a workspace name")
        # the longest alias is fine (and reaches the server: 404 for the unknown workspace)
        rc, _, err = self.mags("url", "alias", "nows", "x" * 63)
        self.assertEqual(rc, 1, err)

    def test_help(self):
        rc, out, err = self.mags("--help")
        self.assertEqual(rc, 0)
        for cmd in ("new [-p] [--image IMG] NAME", "ssh NAME|ID", "url enable|alias"):
            self.assertIn(cmd, out)
        for args, needle in ((["help", "url"], "mags url alias list [--json]"), (["url", "--help"], "--port P"),
                             (["url", "enable", "-h"], "usage: mags url enable"),
                             (["new", "--help"], "usage: mags new [-p] [--image NAME] NAME"),
                             (["help", "ssh"], "usage: mags ssh NAME|ID [-- CMD [ARGS...]]"),
                             (["ssh", "-h"], "MAGS_SSH"), (["run", "--help"], "--port P")):
            rc, out, err = self.mags(*args)
            self.assertEqual((rc, err), (0, ""), args)
            self.assertIn(needle, out)


class TestNewSsh(AccessCase):
    def tearDown(self):
        self.post("/_fake/control", {"start_delay": 0, "boot_fail": False})

    def test_new_waits_and_is_idempotent(self):
        self.post("/_fake/control", {"start_delay": 1.0})
        t0 = time.monotonic()
        jid = self.new("box1")
        self.assertGreaterEqual(time.monotonic() - t0, 1.0, "returned before the sandbox ran")
        self.assertEqual(self.job(jid)["status"], "running")
        self.assertEqual(self.last_submit(), {"script": "exec sleep 2147483647", "workspace": "box1",
                                              "persist": False})
        self.assertGreater(len(self.reqs("GET", "/api/v1/mags-jobs/" + jid)), 2, "polled while queued")
        n = len(self.reqs("POST", "/api/v1/mags-jobs"))
        self.assertEqual(self.new("box1"), jid)
        self.assertEqual(self.new("box1", "-p"), jid)
        self.assertEqual(len(self.reqs("POST", "/api/v1/mags-jobs")), n, "a running sandbox is not started again")
        self.post("/_fake/control", {"start_delay": 0})
        jid2 = self.new("box2", "--persist")
        self.assertEqual(self.last_submit()["persist"], True)
        self.stop(jid)
        self.stop(jid2)
        # once stopped, mags new starts a fresh one
        self.assertNotEqual(self.new("box1"), jid)

    def test_new_fails(self):
        self.post("/_fake/control", {"boot_fail": True})
        rc, out, err = self.mags("new", "box3")
        self.assertEqual((rc, out), (1, ""))
        self.assertRegex(err, r"^mags: sandbox box3 did not start: job [0-9a-f-]{36} failed: "
                              r"sandbox failed to boot: kernel panic\n$")

    def test_ssh_by_name(self):
        _, key, pub, kh = self.key_paths()
        rc, out, err = self.mags("ssh", "box4")
        self.assertEqual((rc, out), (7, ""), "mags exits with ssh's exit code: " + err)
        self.assertRegex(err, r"^mags: started sandbox box4 \(job [0-9a-f-]{36}\)\n$")
        jid = err.split()[-1].rstrip(")")
        self.assertEqual(self.last_submit(), {"script": "exec sleep 2147483647", "workspace": "box4",
                                              "persist": False})
        acc = self.reqs("POST", "/api/v1/mags-jobs/%s/access" % jid)
        self.assertEqual(json.loads(acc[-1]["body"]), {"ssh": True, "ssh_public_key": self.pubkey()})
        port = self.job(jid)["ssh"]["port"]
        self.assertEqual(self.ssh_argv(), self.expected_ssh(jid, port, ["root@127.0.0.1"]))
        self.assertFalse(os.path.exists(self.argv_file + ".tty"))
        host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyOfTheCliTestsOnly0123456789abcdefgh"
        with open(kh) as f:
            self.assertEqual(f.read(), "mags-%s %s\n" % (jid, host_key))
        # other lines stay; the one for this job is replaced, not added again
        with open(kh, "w") as f:
            f.write("other-host ssh-rsa AAAAB3Nza\nmags-%s ssh-ed25519 AAAAstale\n# comment\n" % jid)
        rc, out, err = self.mags("ssh", "box4", "--", "ls", "-la", "/")
        self.assertEqual((rc, out, err), (7, "", ""))
        port = self.job(jid)["ssh"]["port"]
        self.assertEqual(self.ssh_argv(), self.expected_ssh(jid, port, ["--", "root@127.0.0.1", "ls", "-la", "/"]))
        with open(kh) as f:
            self.assertEqual(f.read(), "other-host ssh-rsa AAAAB3Nza\n# comment\nmags-%s %s\n" % (jid, host_key))
        # a command without "--", and by job id
        rc, out, err = self.mags("ssh", jid, "uname", "-a")
        self.assertEqual((rc, err), (7, ""))
        self.assertEqual(self.ssh_argv()[-4:], ["--", "root@127.0.0.1", "uname", "-a"])
        self.stop(jid)
        rc, out, err = self.mags("ssh", jid)
        self.assertEqual((rc, out, err), (1, "", "mags: job %s is failed, not running\n" % jid))

    def test_ssh_tty_and_existing_sandbox(self):
        jid = self.new("box5")
        master, slave = pty.openpty()
        try:
            rc, out, err = self.mags("ssh", "box5", stdin=slave)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual((rc, out, err), (7, "", ""))
        port = self.job(jid)["ssh"]["port"]
        self.assertEqual(self.ssh_argv(), self.expected_ssh(jid, port, ["-t", "root@127.0.0.1"]))
        self.assertTrue(os.path.exists(self.argv_file + ".tty"))
        self.stop(jid)

    def test_ssh_missing(self):
        n = self.nrequests()
        rc, out, err = self.mags("ssh", "box6", env=self.env(MAGS_SSH="/nonexistent/ssh"))
        self.assertEqual((rc, out, err), (1, "", "mags: MAGS_SSH=/nonexistent/ssh: not an executable file\n"))
        empty = tempfile.mkdtemp(dir=self.tmp)
        rc, out, err = self.mags("ssh", "box6", env=self.env(MAGS_SSH=None, PATH=empty))
        self.assertEqual((rc, out, err), (1, "", "mags: ssh not found: install the OpenSSH client (ssh) to use "
                                                 "mags ssh\n"))
        self.assertEqual(self.nrequests(), n, "nothing reaches magsd without an ssh to run")


@unittest.skipUnless(port_free(7557), "port 7557 is in use")
class TestLocalMode(unittest.TestCase):
    def test_autostart(self):
        tmp = tempfile.mkdtemp(prefix="mags-local-")
        home = os.path.join(tmp, "home")
        bindir = os.path.join(tmp, "bin")
        os.makedirs(home)
        os.makedirs(bindir)
        shutil.copy(MAGS, os.path.join(bindir, "mags"))
        shutil.copy(FAKE_MAGSD, os.path.join(bindir, "magsd"))
        calls = os.path.join(tmp, "magsd-calls")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAGS_")}
        env.update(SAN_ENV)
        env.update({"HOME": home, "FAKE_API": FAKE_API, "FAKE_MAGSD_LOG": calls})
        pidfile = os.path.join(home, ".mags", "local", "fake.pid")
        try:
            for _ in range(2):
                p = subprocess.run([os.path.join(bindir, "mags"), "run", "echo local"], env=env,
                                   capture_output=True, timeout=60)
                err = p.stderr.decode()
                self.assertEqual((p.returncode, p.stdout), (0, b"ran: echo local\n"), err)
                for m in SAN_MARKERS:
                    self.assertNotIn(m, err)
            with open(calls) as f:
                self.assertEqual(f.read().splitlines(), [
                    "--state-dir %s/.mags/local token create" % home,
                    "--state-dir %s/.mags/local --listen 127.0.0.1:7557 --daemon" % home])
            cfg = os.path.join(home, ".mags", "config.json")
            self.assertEqual(stat.S_IMODE(os.stat(cfg).st_mode), 0o600)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(cfg)).st_mode), 0o700)
            with open(cfg) as f:
                self.assertEqual(json.load(f), {"api_url": "http://127.0.0.1:7557", "token": "local-token-1",
                                                "local": True})
        finally:
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    os.kill(int(f.read()), signal.SIGTERM)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_no_magsd_next_to_mags(self):
        tmp = tempfile.mkdtemp(prefix="mags-local-")
        try:
            shutil.copy(MAGS, os.path.join(tmp, "mags"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAGS_")}
            env.update(SAN_ENV)
            env["HOME"] = tmp
            p = subprocess.run([os.path.join(tmp, "mags"), "list"], env=env, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"local mode needs magsd next to mags", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not os.access(MAGS, os.X_OK):
        sys.exit("no mags binary at %s (make SANITIZE=address,undefined BUILD=build/san build/san/bin/mags)" % MAGS)
    unittest.main()
