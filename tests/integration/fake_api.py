#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""FAKE magsd REST API -- for developing the mags CLI only.

This is NOT magsd and tests nothing about it: it speaks the job endpoints of
docs/api.yaml with canned behaviour so the CLI's request building,
NDJSON stream parsing (lines split across chunks, heartbeats, broken streams),
error paths and local-mode auto-start can be exercised without VMs. The real
integration tests (conftest.py) run the real magsd.

Usage: fake_api.py [--port P] [--token T] [--token-file F] [--pidfile F]
                   [--reject FIELD,...]

Files: "files" items with "size" and no content are declared; the job stays
queued until each was POSTed to /mags-jobs/ID/upload?name=N&mode=OCTAL (the
body is hashed as it streams in, never kept). A script containing
"UPLOAD500" / "UPLOAD400" answers uploads with that error (after reading the
body); "UPLOADEARLY" answers 413 without reading it and closes; "UPLOADSLOW"
reads the body at about 1 MiB/s.
Workspaces: a job with "workspace" creates or uses it (in_use_by while the job
runs); POST /_fake/workspaces with a list of workspace objects adds more.
POST .../sync answers with the next version; DELETE refuses (409) a workspace
in use or one that others were created --from.

The script decides what a fake job does:
  "exit N"    exits N (stdout "bye")         "TIMEOUT"   exit 124 + system note
  "BOOTFAIL"  exit_code null, error          "SLOW"      runs until stopped
  "SPLIT"     stream lines cut into pieces   "BREAK"     first stream breaks mid-way
  "BREAKALL"  every stream breaks            "MANY"      500 stdout entries
  "FILES"     stdout one "NAME SIZE MODE SHA256" line per uploaded file
  "LINGER"    stdout "up", runs 1 s, exit 0
  anything else: stdout "ran: SCRIPT\\n", stderr "note\\n", exit 0.
  "exec sleep ..." (what mags new submits): runs until stopped, no output.
GET /_fake/requests returns every request seen (method, path, body) and the
uploads received ({"job", "name", "mode", "size", "sha256"}).

Access (url/ssh): a job submitted with "url"/"ssh" (or given them later by
POST /mags-jobs/ID/access, only while running) shows "url"
("http://WORKSPACE-or-ID8.localhost:7558"), "url_port" and "ssh" ({"host",
"port", "user", "host_key"}) while it runs; "ssh" needs "ssh_public_key".
GET /mags-jobs filters by "status", "workspace" and "limit".
URL aliases: POST/GET /url-aliases, GET/DELETE /url-aliases/ALIAS, for
workspaces the fake knows. POST /_fake/control {"start_delay": SECONDS,
"boot_fail": BOOL} delays every job's start, or makes it fail to boot.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

KNOWN_FIELDS = {"script", "type", "workspace", "persist", "url", "ssh", "startup_command",
                "base_image", "ephemeral", "timeout", "always_on", "from", "port", "files",
                "ssh_public_key"}

LOCK = threading.Condition()
JOBS = {}       # id -> job dict (the API's job object)
LOGS = {}       # id -> [entry]
STOPPED = set()
REQUESTS = []
FOLLOWS = {}    # id -> number of follow connections opened
PENDING = {}    # id -> {name: declared file} still to be uploaded
RECEIVED = {}   # id -> {name: upload record}
UPLOADS = []    # every upload record, in order
WORKSPACES = {}  # name -> the API's workspace object
SYNCS = []      # workspace names synced, in order
ACCESS = {}     # id -> {"url": port or None, "ssh": public key or None} asked for at submit
SSH_KEYS = {}   # id -> the public key last given for SSH
ALIASES = {}    # alias -> {"alias", "workspace", "url"}
CONTROL = {"start_delay": 0.0, "boot_fail": False}
FAKE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyOfTheCliTestsOnly0123456789abcdefgh"
ARGS = None
UPLOAD_MAX = 1 << 30
WS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALIAS = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t % 1 * 1000)


def add_log(jid, stream, data):
    with LOCK:
        logs = LOGS[jid]
        logs.append({"seq": len(logs) + 1, "stream": stream, "data": data, "time": now_iso()})
        LOCK.notify_all()


def finish(jid, exit_code, error):
    with LOCK:
        j = JOBS[jid]
        if j["status"] in ("completed", "failed"):
            return
        j["exit_code"] = exit_code
        j["error"] = error
        j["status"] = "completed" if exit_code == 0 else "failed"
        j["finished_at"] = now_iso()
        j["ssh"] = None
        ws = WORKSPACES.get(j.get("workspace") or "")
        if ws and ws["in_use_by"] == jid:
            ws["in_use_by"] = None
            ws["updated_at"] = now_iso()
        LOCK.notify_all()


def file_name_ok(name):
    return (isinstance(name, str) and name and "\0" not in name and not name.startswith("/")
            and ".." not in name.split("/"))


def check_files(files):
    """Returns an error message for a bad "files" value, else None."""
    if not isinstance(files, list):
        return '"files" must be an array'
    names = set()
    for f in files:
        if not isinstance(f, dict) or not file_name_ok(f.get("name")):
            return "files: bad name %r" % (f.get("name") if isinstance(f, dict) else f)
        if f["name"] in names:
            return 'files: "%s" twice' % f["name"]
        names.add(f["name"])
        if not isinstance(f.get("mode", 0o644), int):
            return "files: bad mode"
        if "content_base64" not in f and not (isinstance(f.get("size"), int) and 0 <= f["size"] <= UPLOAD_MAX):
            return 'files: "%s" has neither content_base64 nor a size' % f["name"]
    return None


def new_workspace(name, **kw):
    t = now_iso()
    w = {"name": name, "persistent": False, "base_image": False, "from": None, "in_use_by": None,
         "size_bytes": 4096, "version": None, "synced_at": None, "created_at": t, "updated_at": t}
    w.update(kw)
    return w


def sync_workspace(name):
    with LOCK:
        w = WORKSPACES[name]
        w["version"] = (w["version"] or 0) + 1
        w["synced_at"] = now_iso()
        SYNCS.append(name)
        return {"workspace": name, "version": w["version"], "chunks": 2, "uploaded_bytes": 1153434,
                "ms": 240}


def access_error(req):
    """Returns an error message for bad url/port/ssh fields, else None."""
    if "url" in req and not isinstance(req["url"], bool):
        return '"url" must be a boolean'
    if "ssh" in req and not isinstance(req["ssh"], bool):
        return '"ssh" must be a boolean'
    port = req.get("port", 8080)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return '"port" must be a port number (1-65535)'
    if req.get("ssh"):
        key = req.get("ssh_public_key")
        if not isinstance(key, str) or not re.match(r"^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+( .*)?$", key):
            return '"ssh_public_key" must be one OpenSSH public key line'
    return None


def grant(jid, url_port, ssh_key):
    """Gives running job jid its url and/or ssh (LOCK held)."""
    j = JOBS[jid]
    if url_port:
        j["url"] = "http://%s.localhost:7558" % (j.get("workspace") or jid[:8])
        j["url_port"] = url_port
    if ssh_key:
        SSH_KEYS[jid] = ssh_key
        j["ssh"] = {"host": "127.0.0.1", "port": 41000 + len(SSH_KEYS), "user": "root",
                    "host_key": FAKE_HOST_KEY + " root@fake"}


def run_job(jid):
    j = JOBS[jid]
    s = j["script"]
    time.sleep(CONTROL["start_delay"])
    if CONTROL["boot_fail"]:
        add_log(jid, "system", "sandbox failed: kernel panic")
        finish(jid, None, "sandbox failed to boot: kernel panic")
        return
    with LOCK:
        if j["status"] != "queued":
            return  # stopped while queued
        j["status"] = "running"
        j["started_at"] = now_iso()
        a = ACCESS.get(jid, {})
        grant(jid, a.get("url"), a.get("ssh"))
    time.sleep(0.05)
    m = re.match(r"exit (\d+)$", s)
    if m:
        add_log(jid, "stdout", "bye\n")
        finish(jid, int(m.group(1)), None)
    elif s == "TIMEOUT":
        add_log(jid, "stdout", "working\n")
        add_log(jid, "system", "timed out after 1s")
        finish(jid, 124, "timed out after 1s")
    elif s == "BOOTFAIL":
        add_log(jid, "system", "sandbox failed: kernel panic\nsecond line")
        finish(jid, None, "sandbox failed to boot: kernel panic")
    elif s.startswith("exec sleep"):
        while jid not in STOPPED:
            time.sleep(0.05)
        finish(jid, None, "stopped")
    elif s == "SLOW":
        i = 0
        while jid not in STOPPED:
            add_log(jid, "stdout", "tick %d\n" % i)
            i += 1
            time.sleep(0.1)
        add_log(jid, "system", "stopped")
        finish(jid, None, "stopped")
    elif s == "LINGER":
        add_log(jid, "stdout", "up\n")
        time.sleep(1)
        finish(jid, 0, None)
    elif s == "MANY":
        for i in range(500):
            add_log(jid, "stdout", "line %d\n" % i)
        finish(jid, 0, None)
    elif s == "FILES":
        with LOCK:
            recs = list(RECEIVED.get(jid, {}).values())
        for r in recs:
            add_log(jid, "stdout", "%s %d %o %s\n" % (r["name"], r["size"], r["mode"], r["sha256"]))
        finish(jid, 0, None)
    elif s in ("SPLIT", "BREAK", "BREAKALL"):
        for i in range(6):
            add_log(jid, "stdout" if i % 2 == 0 else "stderr", "%s %d \u00e9\n" % (s.lower(), i))
            time.sleep(0.1)
        finish(jid, 3, None)
    else:
        prefix = "file: " if j["type"] == "file" else "ran: "
        add_log(jid, "stdout", prefix + s.split("\n")[0] + "\n")
        add_log(jid, "stderr", "note\n")
        finish(jid, 0, None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, msg):
        self.reply(code, {"error": msg, "code": code})

    def authed(self):
        token = ARGS.token
        if ARGS.token_file:
            with open(ARGS.token_file) as f:
                token = f.read().strip()
        if self.headers.get("Authorization") != "Bearer " + token:
            self.error(401, "missing or invalid token")
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def record(self, body):
        with LOCK:
            REQUESTS.append({"method": self.command, "path": self.path,
                             "body": body.decode("utf-8", "replace"),
                             "content_type": self.headers.get("Content-Type")})

    def do_GET(self):
        u = urlparse(self.path)
        if not u.path.startswith("/_fake/"):
            self.record(b"")
        q = parse_qs(u.query)
        if u.path == "/api/v1/health":
            return self.reply(200, {"status": "ok", "version": "0.0.0-fake", "engine": "tcg"})
        if u.path == "/_fake/requests":
            with LOCK:
                return self.reply(200, {"requests": REQUESTS, "follows": FOLLOWS, "uploads": UPLOADS,
                                        "syncs": SYNCS})
        if not self.authed():
            return
        if u.path == "/api/v1/workspaces":
            with LOCK:
                return self.reply(200, {"workspaces": sorted(WORKSPACES.values(), key=lambda w: w["name"])})
        m = re.match(r"^/api/v1/workspaces/([^/]+)$", u.path)
        if m:
            with LOCK:
                w = WORKSPACES.get(unquote(m.group(1)))
                if not w:
                    return self.error(404, 'workspace "%s" not found' % unquote(m.group(1)))
                return self.reply(200, w)
        if u.path == "/api/v1/mags-jobs":
            with LOCK:
                jobs = sorted(JOBS.values(), key=lambda j: j["created_at"], reverse=True)
                for k in ("status", "workspace"):
                    if k in q:
                        jobs = [j for j in jobs if j[k] == q[k][0]]
                if "limit" in q:
                    jobs = jobs[:int(q["limit"][0])]
                return self.reply(200, {"jobs": jobs})
        if u.path == "/api/v1/url-aliases":
            with LOCK:
                return self.reply(200, {"aliases": [ALIASES[a] for a in sorted(ALIASES)]})
        m = re.match(r"^/api/v1/url-aliases/([^/]+)$", u.path)
        if m:
            with LOCK:
                a = ALIASES.get(unquote(m.group(1)))
                if not a:
                    return self.error(404, 'alias "%s" not found' % unquote(m.group(1)))
                return self.reply(200, a)
        m = re.match(r"^/api/v1/mags-jobs/([^/]+)(/logs)?$", u.path)
        if not m or m.group(1) not in JOBS:
            return self.error(404, 'job "%s" not found' % (m.group(1) if m else u.path))
        jid = m.group(1)
        if not m.group(2):
            with LOCK:
                return self.reply(200, JOBS[jid])
        since = int(q.get("since", ["0"])[0])
        if q.get("follow", [""])[0] in ("true", "1"):
            try:
                return self.follow(jid, since)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (e.g. interrupted)
                return
        with LOCK:
            logs = [dict(e) for e in LOGS[jid] if e["seq"] > since]
            j = JOBS[jid]
            return self.reply(200, {"id": jid, "status": j["status"], "exit_code": j["exit_code"],
                                    "logs": logs})

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def follow(self, jid, since):
        with LOCK:
            FOLLOWS[jid] = FOLLOWS.get(jid, 0) + 1
            nth = FOLLOWS[jid]
        script = JOBS[jid]["script"]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        last_beat = time.time()
        while True:
            with LOCK:
                new = [e for e in LOGS[jid] if e["seq"] > since]
                j = JOBS[jid]
                done = j["status"] in ("completed", "failed") and not new
                if not new and not done:
                    LOCK.wait(0.05)
                    new = [e for e in LOGS[jid] if e["seq"] > since]
            for e in new:
                line = json.dumps({"seq": e["seq"], "stream": e["stream"], "data": e["data"]}) + "\n"
                since = e["seq"]
                sent += 1
                if script == "SPLIT":
                    # cut every line in three pieces, with a heartbeat-style pause between
                    a, b = len(line) // 3, 2 * len(line) // 3
                    for piece in (line[:a], line[a:b], line[b:]):
                        self.chunk(piece)
                        time.sleep(0.02)
                    self.chunk("\n")  # an empty heartbeat line
                else:
                    self.chunk(line)
                if (script == "BREAK" and nth == 1 and sent == 2) or (script == "BREAKALL" and sent == 1):
                    # break the transfer mid-line without the terminating chunk
                    self.chunk('{"seq": 99, "stream": "std')
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
            if done:
                final = {"status": j["status"], "exit_code": j["exit_code"], "error": j["error"]}
                self.chunk(json.dumps(final) + "\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            if time.time() - last_beat > 0.3:
                self.chunk("\n")
                last_beat = time.time()

    def upload(self, jid, q):
        """POST /mags-jobs/ID/upload: the body streams through sha256."""
        n = int(self.headers.get("Content-Length") or 0)
        name = q.get("name", [""])[0]
        mode_s = q.get("mode", [""])[0]
        with LOCK:
            job = JOBS.get(jid)
            pending = PENDING.get(jid, {})
        script = job["script"] if job else ""
        if "UPLOADEARLY" in script or n > UPLOAD_MAX:
            # refuse before reading the body, then close as a real server must
            self.close_connection = True
            return self.error(413, "file too large: %d bytes (limit %d)" % (n, UPLOAD_MAX))
        h = hashlib.sha256()
        left = n
        slow = "UPLOADSLOW" in script
        while left:
            chunk = self.rfile.read(min(left, 1 << 16 if slow else 1 << 20))
            if slow:
                time.sleep(0.05)
            if not chunk:
                self.close_connection = True
                return
            h.update(chunk)
            left -= len(chunk)
        if not job:
            return self.error(404, 'job "%s" not found' % jid)
        if job["status"] in ("completed", "failed"):
            return self.error(409, "job %s already %s" % (jid, job["status"]))
        if "UPLOAD500" in script:
            return self.error(500, "cannot store upload: disk full")
        if "UPLOAD400" in script or not file_name_ok(name):
            return self.error(400, 'bad file name "%s"' % name)
        if name not in pending:
            return self.error(400, 'file "%s" was not declared (or was uploaded already)' % name)
        if not re.match(r"^[0-7]{1,4}$", mode_s):
            return self.error(400, 'bad mode "%s"' % mode_s)
        if pending[name]["size"] != n:
            return self.error(400, 'file "%s": %d bytes, declared %d' % (name, n, pending[name]["size"]))
        rec = {"job": jid, "name": name, "mode": int(mode_s, 8), "size": n, "sha256": h.hexdigest(),
               "content_type": self.headers.get("Content-Type")}
        with LOCK:
            del pending[name]
            RECEIVED.setdefault(jid, {})[name] = rec
            UPLOADS.append(rec)
            start = not pending and job["status"] == "queued"
        if start:
            threading.Thread(target=run_job, args=(jid,), daemon=True).start()
        return self.reply(201, {"name": name, "size": n, "sha256": rec["sha256"]})

    def do_POST(self):
        u = urlparse(self.path)
        m = re.match(r"^/api/v1/mags-jobs/([^/]+)/upload$", u.path)
        if m:
            self.record(b"")
            if not self.authed():
                self.close_connection = True
                return
            return self.upload(m.group(1), parse_qs(u.query))
        body = self.body()
        if u.path == "/_fake/workspaces":
            with LOCK:
                for w in json.loads(body):
                    WORKSPACES[w["name"]] = new_workspace(**w)
            return self.reply(200, {})
        if u.path == "/_fake/control":
            with LOCK:
                CONTROL.update(json.loads(body))
            return self.reply(200, CONTROL)
        self.record(body)
        if not self.authed():
            return
        if u.path == "/api/v1/mags-jobs":
            try:
                req = json.loads(body)
            except ValueError:
                return self.error(400, "malformed JSON")
            if not isinstance(req, dict) or not isinstance(req.get("script"), str) or not req["script"]:
                return self.error(400, '"script" is required')
            for k in req:
                if k not in KNOWN_FIELDS:
                    return self.error(400, 'unknown field "%s"' % k)
                if k in ARGS.reject:
                    return self.error(400, '"%s" is not supported yet' % k)
            if "files" in req and check_files(req["files"]):
                return self.error(400, check_files(req["files"]))
            if access_error(req):
                return self.error(400, access_error(req))
            ws = req.get("workspace")
            if ws is not None and not (isinstance(ws, str) and WS_NAME.match(ws)):
                return self.error(400, 'invalid workspace name "%s"' % ws)
            with LOCK:
                if ws in WORKSPACES and WORKSPACES[ws]["in_use_by"]:
                    return self.error(409, 'workspace "%s" is in use by job %s' % (ws, WORKSPACES[ws]["in_use_by"]))
            jid = str(uuid.uuid4())
            job = {"id": jid, "status": "queued", "script": req["script"],
                   "type": req.get("type", "inline"), "timeout": req.get("timeout"),
                   "exit_code": None, "error": None, "engine": "tcg", "created_at": now_iso(),
                   "started_at": None, "finished_at": None, "url": None, "url_port": None, "ssh": None,
                   "workspace": req.get("workspace")}
            pending = {}
            with LOCK:
                JOBS[jid] = job
                LOGS[jid] = []
                ACCESS[jid] = {"url": req.get("port", 8080) if req.get("url") else None,
                               "ssh": req.get("ssh_public_key") if req.get("ssh") else None}
                for f in req.get("files", []):
                    if "content_base64" in f:
                        data = base64.b64decode(f["content_base64"])
                        RECEIVED.setdefault(jid, {})[f["name"]] = {
                            "job": jid, "name": f["name"], "mode": f.get("mode", 0o644), "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}
                    else:
                        pending[f["name"]] = f
                PENDING[jid] = pending
                if ws:
                    w = WORKSPACES.get(ws) or new_workspace(ws, persistent=bool(req.get("persist")),
                                                            base_image=bool(req.get("base_image")),
                                                            **{"from": req.get("from")})
                    w["in_use_by"] = jid
                    WORKSPACES[ws] = w
            if not pending:
                threading.Thread(target=run_job, args=(jid,), daemon=True).start()
            return self.reply(201, job)
        m = re.match(r"^/api/v1/mags-jobs/([^/]+)/access$", u.path)
        if m:
            return self.access(m.group(1), body)
        if u.path == "/api/v1/url-aliases":
            return self.alias_create(body)
        m = re.match(r"^/api/v1/mags-jobs/([^/]+)/sync$", u.path)
        if m:
            jid = m.group(1)
            with LOCK:
                job = JOBS.get(jid)
            if not job:
                return self.error(404, 'job "%s" not found' % jid)
            if not job.get("workspace"):
                return self.error(409, "job %s has no workspace to sync" % jid)
            return self.reply(200, sync_workspace(job["workspace"]))
        m = re.match(r"^/api/v1/workspaces/([^/]+)/sync$", u.path)
        if m:
            name = unquote(m.group(1))
            if name not in WORKSPACES:
                return self.error(404, 'workspace "%s" not found' % name)
            return self.reply(200, sync_workspace(name))
        m = re.match(r"^/api/v1/mags-jobs/([^/]+)/stop$", u.path)
        if m:
            jid = m.group(1)
            if jid not in JOBS:
                return self.error(404, 'job "%s" not found' % jid)
            with LOCK:
                if JOBS[jid]["status"] in ("completed", "failed"):
                    return self.error(409, "job %s already %s" % (jid, JOBS[jid]["status"]))
                STOPPED.add(jid)
            if JOBS[jid]["script"] != "SLOW":
                finish(jid, None, "stopped")
            for _ in range(50):
                if JOBS[jid]["status"] in ("completed", "failed"):
                    break
                time.sleep(0.02)
            with LOCK:
                return self.reply(200, JOBS[jid])
        return self.error(404, "no such endpoint")

    def access(self, jid, body):
        """POST /mags-jobs/ID/access: url and/or ssh for a running job."""
        try:
            req = json.loads(body)
        except ValueError:
            return self.error(400, "malformed JSON")
        if not isinstance(req, dict):
            return self.error(400, "the body must be a JSON object")
        if access_error(req):
            return self.error(400, access_error(req))
        if not req.get("url") and not req.get("ssh"):
            return self.error(400, 'nothing to enable: give "url": true and/or "ssh": true')
        with LOCK:
            j = JOBS.get(jid)
            if not j:
                return self.error(404, 'job "%s" not found' % jid)
            if j["status"] != "running":
                return self.error(409, "job %s is %s, not running" % (jid, j["status"]))
            grant(jid, req.get("port", 8080) if req.get("url") else None,
                  req.get("ssh_public_key") if req.get("ssh") else None)
            return self.reply(200, j)

    def alias_create(self, body):
        try:
            req = json.loads(body)
        except ValueError:
            return self.error(400, "malformed JSON")
        alias = req.get("alias") if isinstance(req, dict) else None
        ws = req.get("workspace") if isinstance(req, dict) else None
        if not isinstance(alias, str) or not ALIAS.match(alias):
            return self.error(400, 'invalid alias "%s"' % alias)
        if not isinstance(ws, str) or not WS_NAME.match(ws):
            return self.error(400, 'invalid workspace name "%s"' % ws)
        with LOCK:
            if ws not in WORKSPACES:
                return self.error(404, 'workspace "%s" not found' % ws)
            if alias in ALIASES:
                return self.error(409, 'alias "%s" is taken' % alias)
            a = {"alias": alias, "workspace": ws, "url": "http://%s.localhost:7558" % alias}
            ALIASES[alias] = a
            return self.reply(201, a)

    def do_DELETE(self):
        body = self.body()
        self.record(body)
        if not self.authed():
            return
        u = urlparse(self.path)
        m = re.match(r"^/api/v1/url-aliases/([^/]+)$", u.path)
        if m:
            alias = unquote(m.group(1))
            with LOCK:
                if alias not in ALIASES:
                    return self.error(404, 'alias "%s" not found' % alias)
                del ALIASES[alias]
            return self.reply(200, {"deleted": alias})
        m = re.match(r"^/api/v1/workspaces/([^/]+)$", u.path)
        if not m:
            return self.error(404, "no such endpoint")
        name = unquote(m.group(1))
        with LOCK:
            w = WORKSPACES.get(name)
            if not w:
                return self.error(404, 'workspace "%s" not found' % name)
            if w["in_use_by"]:
                return self.error(409, 'workspace "%s" is in use by job %s' % (name, w["in_use_by"]))
            kids = sorted(k for k, v in WORKSPACES.items() if v["from"] == name)
            if kids:
                return self.error(409, 'workspace "%s" is the base of %s' % (name, ", ".join(kids)))
            del WORKSPACES[name]
        return self.reply(200, {"deleted": name})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default="good-token")
    p.add_argument("--token-file")
    p.add_argument("--pidfile")
    p.add_argument("--portfile", help="write the bound port here once listening")
    p.add_argument("--reject", default="", help="comma-separated fields answered with 400")
    ARGS = p.parse_args()
    ARGS.reject = set(filter(None, ARGS.reject.split(",")))
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    if ARGS.pidfile:
        with open(ARGS.pidfile, "w") as f:
            f.write(str(os.getpid()))
    if ARGS.portfile:
        with open(ARGS.portfile + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(ARGS.portfile + ".tmp", ARGS.portfile)
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
