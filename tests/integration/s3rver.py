# SPDX-License-Identifier: MIT
"""A real S3 endpoint for tests and benchmarks: s3rver (npm), optionally behind
a small proxy that checks AWS SigV4 signatures.

    from s3rver import S3rver
    srv = S3rver(tmpdir)             # verify_sigv4=True by default
    endpoint = srv.start()           # "http://127.0.0.1:PORT"
    srv.create_bucket("mags")
    env = srv.env()                  # MAGS_S3_ENDPOINT, AWS_ACCESS_KEY_ID, ... for mags-store
    ...
    srv.stop()                       # also at interpreter exit; a second stop is a no-op

Why the proxy: s3rver 3.x checks that the access key exists (a wrong one gets
403 InvalidAccessKeyId) but does not verify V4 signatures at all (its
authentication middleware says "Signature version 4 calculation is
unimplemented"), so a client with a wrong secret, or with a bug in its
canonical request, would pass. The proxy recomputes each request's signature
the way AWS documents it (canonical request from the decoded, re-encoded path
and query, the signed headers and x-amz-content-sha256; the payload's hash
is checked too unless it is UNSIGNED-PAYLOAD) with the secret key and answers
403 SignatureDoesNotMatch on a mismatch, as S3 does. verify_sigv4=False gives
s3rver's port directly (bench/sync uses that: both clients measured alike).

s3rver is installed once by scripts/s3rver.sh into /var/cache/mags/npm (needs
node, npm and the npm registry on the first run). Credentials are s3rver's
defaults: access key S3RVER, secret S3RVER.
"""
import atexit
import hashlib
import hmac
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install():
    """Installs s3rver if needed; returns the path of its executable."""
    out = subprocess.run([os.path.join(ROOT, "scripts/s3rver.sh"), "install"], check=True,
                         stdout=subprocess.PIPE, text=True, timeout=600)
    return out.stdout.strip().splitlines()[-1]


def _uri_encode(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_check(method, raw_path, headers, body, secret):
    """None when the request's SigV4 signature is right, else why not."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "not a SigV4 request"
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        cred = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        provided = fields["Signature"]
        amz_date = headers["x-amz-date"]
        payload_hash = headers["x-amz-content-sha256"]
    except KeyError as e:
        return "missing %s" % e
    if len(cred) != 5 or cred[4] != "aws4_request" or cred[3] != "s3":
        return "bad credential scope"
    if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
        return "payload hash mismatch"
    path, _, query = raw_path.partition("?")
    curi = _uri_encode(urllib.parse.unquote(path), True)
    params = []
    for p in query.split("&") if query else []:
        k, _, v = p.partition("=")
        params.append((_uri_encode(urllib.parse.unquote(k), False), _uri_encode(urllib.parse.unquote(v), False)))
    cquery = "&".join("%s=%s" % kv for kv in sorted(params))
    cheaders = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split())) for h in signed)
    creq = "\n".join([method, curi, cquery, cheaders, ";".join(signed), payload_hash])
    scope = "/".join(cred[1:])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in cred[1:]:
        key = _hmac(key, part)
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, provided):
        return "signature mismatch; canonical request was:\n" + creq
    return None


class _Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # (host, port), set per server class
    secret = SECRET_KEY

    def log_message(self, *args):
        pass

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        self.server.requests.append((self.command, self.path))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        why = sigv4_check(self.command, self.path, headers, body, self.secret)
        if why:
            msg = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                   "<Message>The request signature we calculated does not match the signature you "
                   "provided. Check your key and signing method.</Message></Error>")
            self.server.rejected.append(why)
            return self._reply(403, msg.encode(), [("Content-Type", "application/xml")])
        try:
            c = http.client.HTTPConnection(*self.upstream, timeout=120)
            fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
            c.request(self.command, self.path, body=body if n else None, headers=fwd)
            r = c.getresponse()
            data = r.read()
            hdrs = [(k, v) for k, v in r.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            c.close()
        except OSError:
            self.close_connection = True
            return self._reply(502, b"upstream down")
        self._reply(r.status, data, hdrs)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class S3rver:
    """s3rver on a free loopback port with a fresh data directory under tmpdir."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    def __init__(self, tmpdir, verify_sigv4=True):
        self.tmpdir = str(tmpdir)
        self.verify = verify_sigv4
        self.proc = None
        self.proxy = None
        self.endpoint = None
        self.rejected = []  # why the proxy refused requests
        self.requests = []  # (method, path) of every request through the proxy

    def start(self):
        bin_path = install()
        self.dir = os.path.join(self.tmpdir, "s3rver-data")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = open(os.path.join(self.tmpdir, "s3rver.log"), "wb")
        # s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen([bin_path, "--silent", "--address", "127.0.0.1", "--port", str(self.port),
                                      "--directory", self.dir], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        atexit.register(self.stop)
        base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError("s3rver did not start; see %s/s3rver.log" % self.tmpdir)
                time.sleep(0.1)
        self.endpoint = base
        if self.verify:
            handler = type("Handler", (_Proxy,), {"upstream": ("127.0.0.1", self.port)})
            self.proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            self.proxy.daemon_threads = True
            self.proxy.rejected = self.rejected
            self.proxy.requests = self.requests
            threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
            self.endpoint = "http://127.0.0.1:%d" % self.proxy.server_address[1]
        return self.endpoint

    def create_bucket(self, name):
        # straight to s3rver: it accepts anonymous requests
        req = urllib.request.Request("http://127.0.0.1:%d/%s" % (self.port, name), method="PUT", data=b"")
        urllib.request.urlopen(req, timeout=10).read()

    def put_unsigned(self, bucket, key, data):
        """Stores an object straight into s3rver (test set-up, no signature)."""
        url = "http://127.0.0.1:%d/%s/%s" % (self.port, bucket, urllib.parse.quote(key))
        urllib.request.urlopen(urllib.request.Request(url, method="PUT", data=data), timeout=30).read()

    def env(self, base=None):
        """Environment for mags-store / aws: base (default os.environ) plus endpoint and keys."""
        env = dict(os.environ if base is None else base)
        env.update({"MAGS_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region})
        return env

    def stop(self):
        if self.proxy:
            self.proxy.shutdown()
            self.proxy.server_close()
            self.proxy = None
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
