#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Development checks of the mags CLI against the FAKE API (fake_api.py).

These check the CLI's side only: request bodies, NDJSON stream handling,
exit codes, error lines, local-mode auto-start. They say nothing about magsd;
the real integration tests (conftest.py) do. Stdlib only:

    python3 tests/integration/fake_api_cli.py [-v]

MAGS_BIN_DIR picks the mags binary (default build/san/bin, the ASan+UBSan
build); every run's stderr is checked for sanitizer reports.
"""
import json
import os
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
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mags-cli-")
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls.proc, cls.port = start_fake(cls.tmp, "--reject", "ssh")
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

    def mags(self, *args, env=None, cwd=None, timeout=60):
        p = subprocess.run([MAGS] + list(args), env=env or self.env(), cwd=cwd or self.tmp,
                           capture_output=True, timeout=timeout)
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
    def check_usage(self, args, needle):
        n = self.nrequests()
        rc, out, err = self.mags(*args)
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(needle, err)
        self.assertEqual(self.nrequests(), n, "a usage error must not reach the server")

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
        rc, out, err = self.mags("stop", "nope")
        self.assertEqual((rc, err), (1, 'mags: job "nope" not found\n'))
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
