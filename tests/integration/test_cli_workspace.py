# SPDX-License-Identifier: MIT
"""The mags CLI's side of -f uploads, `mags sync` and `mags workspace`,
against the FAKE API (fake_api.py; see test_cli_fake_api.py for what that means).

These check what the CLI sends and prints: files declared in the submit and
then streamed to POST /mags-jobs/ID/upload (byte-exact, name and mode, the job
followed only afterwards, a failed upload stopping the job), the sync and
workspace requests and their output, and the usage errors that never reach
the server. They say nothing about magsd itself.
"""
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time

from test_cli_fake_api import MAGS, SAN_MARKERS, CliCase

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class WsCase(CliCase):
    def one_line_error(self, rc, out, err, want_rc=1):
        self.assertEqual((rc, out), (want_rc, ""), err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("mags: "), err)

    def paths(self, method=None):
        return [r["path"] for r in self.requests()["requests"] if method is None or r["method"] == method]

    def write(self, name, data, mode=0o644):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def seed(self, *workspaces):
        import urllib.request
        req = urllib.request.Request(self.url + "/_fake/workspaces", data=json.dumps(workspaces).encode(),
                                     method="POST")
        urllib.request.urlopen(req).read()


class TestUpload(WsCase):
    def test_100mb_byte_exact_then_job(self):
        big = os.path.join(self.tmp, "big.bin")
        h = hashlib.sha256()
        with open(big, "wb") as f:
            for i in range(100):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
        os.chmod(big, 0o751)
        small = self.write("notes.txt", b"hello\n", 0o600)
        # the CLI's own peak RSS (VmHWM of its memory after exec, sampled until it exits: wait4's
        # ru_maxrss would also count the pages it had as a fork of this big pytest process)
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            p = subprocess.Popen([MAGS, "-v", "run", "-w", "upws", "-f", big, "--file", small, "FILES"],
                                 env=self.env(), cwd=self.tmp, stdout=out_f, stderr=err_f)
            peak = 0
            while p.poll() is None:
                try:
                    with open("/proc/%d/status" % p.pid) as f:
                        hwm = [l for l in f if l.startswith("VmHWM:")]
                    if hwm and os.readlink("/proc/%d/exe" % p.pid) == os.path.realpath(MAGS):
                        peak = max(peak, int(hwm[0].split()[1]))
                except OSError:
                    pass
                time.sleep(0.01)
            out_f.seek(0)
            err_f.seek(0)
            out, err = out_f.read().decode(), err_f.read().decode()
        for m in SAN_MARKERS:
            self.assertNotIn(m, err)
        self.assertEqual(p.returncode, 0, err)
        self.assertGreater(peak, 0)
        self.assertLess(peak, 80 * 1024, "peak RSS %d KiB: the file was read into memory?" % peak)
        jid = self.job_id_from(err)
        # the files are declared in the submit, without content
        body = self.last_submit()
        self.assertEqual(body["files"], [{"name": "big.bin", "mode": 0o751, "size": 100 << 20},
                                         {"name": "notes.txt", "mode": 0o600, "size": 6}])
        self.assertEqual(body["workspace"], "upws")
        # ... then streamed, byte-exact, to the upload endpoint
        ups = [u for u in self.requests()["uploads"] if u["job"] == jid]
        self.assertEqual([(u["name"], u["mode"], u["size"], u["sha256"], u["content_type"]) for u in ups], [
            ("big.bin", 0o751, 100 << 20, h.hexdigest(), "application/octet-stream"),
            ("notes.txt", 0o600, 6, hashlib.sha256(b"hello\n").hexdigest(), "application/octet-stream")])
        paths = self.paths("POST")
        self.assertIn("/api/v1/mags-jobs/%s/upload?name=big.bin&mode=0751" % jid, paths)
        self.assertIn("/api/v1/mags-jobs/%s/upload?name=notes.txt&mode=0600" % jid, paths)
        # the job ran after both arrived (FILES prints what it had), and was followed
        self.assertEqual(out, "big.bin %d 751 %s\nnotes.txt 6 600 %s\n" % (
            100 << 20, h.hexdigest(), hashlib.sha256(b"hello\n").hexdigest()))
        # -v: one line per upload on stderr; nothing else from mags on stdout
        self.assertRegex(err, r"mags: uploaded big\.bin \(100\.0 MiB in [0-9.]+ s, sha256 %s\)\n" % h.hexdigest()[:12])
        self.assertRegex(err, r"mags: uploaded notes\.txt \(6 B in [0-9.]+ s, sha256 [0-9a-f]{12}\)\n")
        os.unlink(big)

    def test_quiet_without_v(self):
        f = self.write("q.txt", b"q")
        rc, out, err = self.mags("run", "-f", f, "FILES")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "q.txt 1 644 %s\n" % hashlib.sha256(b"q").hexdigest())

    def test_special_names_escaped(self):
        f = self.write("a b&c=d%.txt", b"x")
        rc, out, err = self.mags("-v", "run", "-f", f, "FILES")
        self.assertEqual(rc, 0, err)
        jid = self.job_id_from(err)
        self.assertIn("/api/v1/mags-jobs/%s/upload?name=a%%20b%%26c%%3Dd%%25.txt&mode=0644" % jid, self.paths("POST"))
        self.assertTrue(out.startswith("a b&c=d%.txt 1 644 "), out)

    def check_failed_upload(self, script, needle, size=1000):
        f = self.write("fail.bin", b"z" * size)
        rc, out, err = self.mags("-v", "run", "-f", f, script)
        lines = err.splitlines()
        jid = self.job_id_from(err)
        self.assertEqual((rc, out), (1, ""), err)
        self.assertEqual(len(lines), 2, err)  # "job ID" (-v) and the one error line
        self.assertEqual(lines[1], "mags: upload of %s failed: %s; stopped job %s" % (f, needle, jid))
        posts = self.paths("POST")
        self.assertEqual(posts.count("/api/v1/mags-jobs/%s/stop" % jid), 1)
        self.assertFalse([p for p in self.paths("GET") if jid in p and "logs" in p], "no follow after a failed upload")
        rc, out, _ = self.mags("status", jid)
        self.assertIn("status: failed\n", out)
        self.assertIn("error: stopped\n", out)

    def test_upload_500_stops_job(self):
        self.check_failed_upload("UPLOAD500", "cannot store upload: disk full")

    def test_upload_400_stops_job(self):
        self.check_failed_upload("UPLOAD400", 'bad file name "fail.bin"')

    def test_upload_refused_early_stops_job(self):
        # magsd answers 413 before reading a big body and closes: its message still shows
        self.check_failed_upload("UPLOADEARLY", "file too large: %d bytes (limit 1073741824)" % (32 << 20),
                                 size=32 << 20)

    def test_interrupt_during_upload(self):
        f = self.write("slow.bin", b"s" * (16 << 20))
        p = subprocess.Popen([MAGS, "-v", "run", "-f", f, "UPLOADSLOW"], env=self.env(), cwd=self.tmp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = p.stderr.readline().decode()
        self.assertRegex(first, r"^mags: job %s\n$" % UUID_RE)
        jid = first.split()[2]
        time.sleep(0.5)  # the upload is under way: the fake reads 1 MiB/s
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        err = err.decode()
        for m in SAN_MARKERS:
            self.assertNotIn(m, err)
        self.assertEqual((p.returncode, out, err), (130, b"", "mags: interrupted: stopped job %s\n" % jid))
        self.assertEqual(self.paths("POST").count("/api/v1/mags-jobs/%s/stop" % jid), 1)
        self.assertEqual([u for u in self.requests()["uploads"] if u["job"] == jid], [])

    def test_checked_before_submitting(self):
        n = self.nrequests()
        big = os.path.join(self.tmp, "huge.bin")
        with open(big, "wb") as f:
            f.truncate((1 << 30) + 1)  # sparse
        rc, out, err = self.mags("run", "-f", big, "echo")
        self.one_line_error(rc, out, err)
        self.assertIn("huge.bin: 1073741825 bytes, more than the 1 GiB limit", err)
        rc, out, err = self.mags("run", "-f", self.tmp, "echo")
        self.one_line_error(rc, out, err)
        self.assertIn("not a regular file", err)
        rc, out, err = self.mags("run", "-f", os.path.join(self.tmp, "nope"), "echo")
        self.one_line_error(rc, out, err)
        self.assertIn("No such file", err)
        os.unlink(big)
        self.assertEqual(self.nrequests(), n, "nothing may reach the server")

    def test_ephemeral_with_files(self):
        f = self.write("e.txt", b"e")
        rc, out, err = self.mags("run", "--ephemeral", "-f", f, "FILES")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.last_submit()["ephemeral"], True)
        self.assertTrue(out.startswith("e.txt 1 644 "))


class TestSync(WsCase):
    def test_by_id_and_by_name(self):
        rc, _, err = self.mags("-v", "run", "-w", "syncws", "-p", "echo")
        self.assertEqual(rc, 0, err)
        jid = self.job_id_from(err)
        rc, out, err = self.mags("sync", jid)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "synced workspace syncws: version 1, 2 chunks (1.1 MiB) uploaded in 240 ms\n")
        self.assertIn("/api/v1/mags-jobs/%s/sync" % jid, self.paths("POST"))
        rc, out, err = self.mags("sync", "syncws")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "synced workspace syncws: version 2, 2 chunks (1.1 MiB) uploaded in 240 ms\n")
        self.assertIn("/api/v1/workspaces/syncws/sync", self.paths("POST"))
        rc, out, err = self.mags("sync", "--json", "syncws")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"workspace": "syncws", "version": 3, "chunks": 2,
                                           "uploaded_bytes": 1153434, "ms": 240})

    def test_errors(self):
        rc, _, err = self.mags("-v", "run", "echo")
        jid = self.job_id_from(err)
        rc, out, err = self.mags("sync", jid)
        self.one_line_error(rc, out, err)
        self.assertEqual(err, "mags: job %s has no workspace to sync\n" % jid)
        rc, out, err = self.mags("sync", "nosuchws")
        self.one_line_error(rc, out, err)
        self.assertEqual(err, 'mags: workspace "nosuchws" not found\n')


class TestWorkspace(WsCase):
    def test_list_and_delete(self):
        busy = "0b7e1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
        self.seed({"name": "py-base", "base_image": True, "persistent": True, "size_bytes": 1288490189,
                   "version": 3, "synced_at": "2026-11-29T03:50:00.123Z"},
                  {"name": "child", "persistent": True, "from": "py-base", "size_bytes": 2048},
                  {"name": "scratch", "in_use_by": busy, "size_bytes": 0})
        rc, out, err = self.mags("workspace", "list")
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^NAME\s+KIND\s+FROM\s+IN USE\s+SIZE\s+SYNCED$")
        rows = {l.split()[0]: l for l in lines[1:]}
        self.assertRegex(rows["py-base"], r"^py-base\s+base\s+-\s+-\s+1\.2 GiB\s+v3 2026-11-29 03:50:00$")
        self.assertRegex(rows["child"], r"^child\s+persistent\s+py-base\s+-\s+2\.0 KiB\s+-$")
        self.assertRegex(rows["scratch"], r"^scratch\s+local\s+-\s+0b7e1a52\s+0 B\s+-$")
        # the columns line up
        col = lines[0].index("KIND")
        self.assertTrue(all(l[col - 2:col] == "  " and l[col] != " " for l in lines))
        rc, out, err = self.mags("workspace", "list", "--json")
        self.assertEqual(rc, 0, err)
        names = sorted(w["name"] for w in json.loads(out)["workspaces"])
        self.assertEqual(names, ["child", "py-base", "scratch"])

        rc, out, err = self.mags("workspace", "delete", "py-base")
        self.one_line_error(rc, out, err)
        self.assertEqual(err, 'mags: workspace "py-base" is the base of child\n')
        rc, out, err = self.mags("workspace", "delete", "scratch")
        self.one_line_error(rc, out, err)
        self.assertEqual(err, 'mags: workspace "scratch" is in use by job %s\n' % busy)
        rc, out, err = self.mags("workspace", "delete", "child")
        self.assertEqual((rc, out, err), (0, "deleted workspace child\n", ""))
        rc, out, err = self.mags("workspace", "delete", "py-base")
        self.assertEqual((rc, out, err), (0, "deleted workspace py-base\n", ""))
        self.assertIn("/api/v1/workspaces/py-base", self.paths("DELETE"))
        rc, out, err = self.mags("workspace", "delete", "py-base")
        self.one_line_error(rc, out, err)
        self.assertEqual(err, 'mags: workspace "py-base" not found\n')
        rc, out, _ = self.mags("workspace", "list")
        self.assertEqual([l.split()[0] for l in out.splitlines()[1:]], ["scratch"])

    def test_empty_list(self):
        rc, out, err = self.mags("workspace", "list", env=self.env())
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("NAME"))


class TestUsage(WsCase):
    def check_usage(self, args, needle):
        n = self.nrequests()
        rc, out, err = self.mags(*args)
        self.one_line_error(rc, out, err, want_rc=2)
        self.assertIn(needle, err)
        self.assertEqual(self.nrequests(), n, "a usage error must not reach the server")

    def test_errors(self):
        eph = "--ephemeral cannot be combined with -w/-p/--base-image/--from"
        self.check_usage(["run", "--ephemeral", "-w", "a", "x"], eph)
        self.check_usage(["run", "--ephemeral", "--from", "b", "x"], eph)
        self.check_usage(["run", "--ephemeral", "--base-image", "x"], eph)
        self.check_usage(["run", "--base-image", "x"], "--base-image needs -w NAME")
        self.check_usage(["run", "-p", "x"], "-p needs -w NAME: a persistent workspace has a name")
        self.check_usage(["run", "-w", "a/b", "x"],
                         '-w: invalid workspace name "a/b" (1-48 characters from A-Z a-z 0-9 . _ -, '
                         'starting with a letter or digit)')
        self.check_usage(["run", "-w", "x" * 65, "x"], "invalid workspace name")
        self.check_usage(["run", "--from", ".x", "x"], '--from: invalid workspace name ".x"')
        self.check_usage(["run", "-f", "a/same", "-f", "b/same", "x"], 'both would be "same" in the sandbox')
        self.check_usage(["workspace"], "workspace: missing subcommand")
        self.check_usage(["workspace", "frob"], 'workspace: unknown subcommand "frob"')
        self.check_usage(["workspace", "list", "extra"], "unexpected argument")
        self.check_usage(["workspace", "delete"], "missing NAME")
        self.check_usage(["workspace", "delete", "a", "b"], "unexpected argument")
        self.check_usage(["workspace", "delete", "bad/name"], 'invalid workspace name "bad/name"')
        self.check_usage(["sync"], "missing ID")
        self.check_usage(["sync", "a", "b"], "unexpected argument")
        self.check_usage(["sync", "bad name"], 'is neither a job id nor a workspace name')
        self.check_usage(["sync", "--all", "x"], "unknown flag")

    def test_help(self):
        rc, out, _ = self.mags("--help")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"\n  sync \[--json\] NAME\|ID\s+push a workspace")
        self.assertRegex(out, r"\n  workspace list\|delete \.\.\.\s+list or delete workspaces")
        for args in (["help", "workspace"], ["workspace", "--help"], ["workspace", "list", "-h"]):
            rc, out, err = self.mags(*args)
            self.assertEqual((rc, err), (0, ""))
            self.assertIn("usage: mags workspace list [--json]\n       mags workspace delete NAME\n", out)
        rc, out, _ = self.mags("sync", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: mags sync [--json] NAME|ID", out)
        rc, out, _ = self.mags("run", "--help")
        self.assertIn("(needs -w)", out)
        self.assertIn("up to 1 GiB", out)
