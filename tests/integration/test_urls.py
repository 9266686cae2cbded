# SPDX-License-Identifier: MIT
"""Public URLs: magsd's proxy routes Host NAME.DOMAIN and ALIAS.DOMAIN to a
sandbox's port. Plain requests, aliases, error pages, streaming responses,
large request bodies, WebSocket-style upgrades and HTTPS, against busybox
httpd (with CGI scripts) and nc servers in real guests."""
import http.client
import os
import socket
import ssl
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="guest ports are reachable with tap networking (root)")

# A web server in the guest: a page, CGI scripts (count the body, a response in two
# parts, and "go" which lets the second part out), and an upgrade-then-echo server.
SERVER = r"""
mkdir -p /tmp/w/cgi-bin
echo web-index > /tmp/w/index.html
cat > /tmp/w/cgi-bin/count <<'E'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
wc -c | tr -d ' '
E
cat > /tmp/w/cgi-bin/stream <<'E'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo first
while [ ! -e /tmp/go ]; do sleep 0.1; done
echo second
E
cat > /tmp/w/cgi-bin/go <<'E'
#!/bin/sh
touch /tmp/go
printf 'Content-Type: text/plain\r\n\r\nok\n'
E
chmod +x /tmp/w/cgi-bin/*
cat > /tmp/ws.sh <<'E'
#!/bin/sh
while read -r l; do l=$(printf %s "$l" | tr -d '\r'); [ -z "$l" ] && break; done
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
exec cat
E
chmod +x /tmp/ws.sh
nc -ll -p 8081 -e /tmp/ws.sh &
echo ready
exec httpd -f -p 8080 -h /tmp/w
"""


def start_server(magsd, ws="web", **fields):
    j = magsd.submit(SERVER, workspace=ws, url=True, port=8080, **fields)
    magsd.wait_output(j["id"], "ready")
    return magsd.job(j["id"])


def conn(magsd, timeout=30):
    return http.client.HTTPConnection("127.0.0.1", magsd.access()["url_port"], timeout=timeout)


def get(magsd, host, path="/", method="GET", body=None, headers=None, tries=50):
    """One request through the proxy; retried while the guest's server comes up (502)."""
    for _ in range(tries):
        c = conn(magsd)
        h = {"Host": host}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 502 or tries == 1:
            return r.status, data, r
        time.sleep(0.2)
    return r.status, data, r


def stop(magsd, jid):
    st, _ = magsd.api("POST", "/mags-jobs/%s/stop" % jid)
    assert st == 200
    magsd.wait_job(jid)


def test_url_routes_names_and_aliases(magsd):
    j = start_server(magsd)
    port = magsd.access()["url_port"]
    assert j["url"] == "http://web.localhost:%d" % port, j
    assert j["url_port"] == 8080
    st, body, _ = get(magsd, "web.localhost")
    assert (st, body) == (200, b"web-index\n")
    st, body, _ = get(magsd, "WEB.localhost:%d" % port)  # case and port do not matter
    assert (st, body) == (200, b"web-index\n")

    # unknown names and hosts outside the domain: 404 with a page saying so
    st, body, r = get(magsd, "nosuch.localhost", tries=1)
    assert st == 404 and b"nosuch" in body and r.getheader("Content-Type").startswith("text/html")
    st, body, _ = get(magsd, "localhost", tries=1)
    assert st == 404
    st, body, _ = get(magsd, "example.com", tries=1)
    assert st == 404

    # aliases: create, use, list, get, refuse bad or taken names, delete
    st, a = magsd.api("POST", "/url-aliases", {"alias": "my-app", "workspace": "web"})
    assert st == 201 and a["url"] == "http://my-app.localhost:%d" % port, a
    st, body, _ = get(magsd, "my-app.localhost")
    assert (st, body) == (200, b"web-index\n")
    st, lst = magsd.api("GET", "/url-aliases")
    assert [x["alias"] for x in lst["aliases"]] == ["my-app"]
    st, one = magsd.api("GET", "/url-aliases/my-app")
    assert st == 200 and one["workspace"] == "web"
    for bad in ("-x", "Upper", "a.b", "x" * 64, ""):
        st, e = magsd.api("POST", "/url-aliases", {"alias": bad, "workspace": "web"})
        assert st == 400, (bad, st, e)
    st, e = magsd.api("POST", "/url-aliases", {"alias": "my-app", "workspace": "web"})
    assert st == 409, e
    st, e = magsd.api("POST", "/url-aliases", {"alias": "web", "workspace": "web"})
    assert st == 409, e  # the workspace's own name is taken too
    st, e = magsd.api("POST", "/url-aliases", {"alias": "other", "workspace": "nosuch"})
    assert st == 404, e
    # another user sees none of it
    tok2 = magsd.create_token("someone-else")
    st, lst = magsd.api("GET", "/url-aliases", token=tok2)
    assert lst["aliases"] == []
    st, e = magsd.api("DELETE", "/url-aliases/my-app", token=tok2)
    assert st == 404
    # ... and its own workspace called "web" gets a URL of its own
    st, other = magsd.api("POST", "/mags-jobs", {"script": "true", "workspace": "web", "url": True}, token=tok2)
    assert st == 201 and other["url"].startswith("http://web-") and other["url"] != j["url"], other
    st, body, _ = get(magsd, "web.localhost")
    assert (st, body) == (200, b"web-index\n")
    st, d = magsd.api("DELETE", "/url-aliases/my-app")
    assert st == 200 and d["deleted"] == "my-app"
    st, body, _ = get(magsd, "my-app.localhost", tries=1)
    assert st == 404

    # a port nothing listens on: 502 with a page naming the problem
    st, j2 = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"url": True, "port": 9999})
    assert st == 200 and j2["url_port"] == 9999 and j2["url"] == j["url"], j2
    st, body, _ = get(magsd, "web.localhost", tries=1)
    assert st == 502 and b"9999" in body, body
    st, j2 = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"url": True})
    assert j2["url_port"] == 8080
    st, body, _ = get(magsd, "web.localhost")
    assert st == 200

    # bad access requests
    for bad in ({}, {"port": 80}, {"url": "yes"}, {"url": True, "port": 0}, {"url": True, "port": 70000},
                {"url": True, "extra": 1}, {"ssh": True, "ssh_public_key": "not a key"}):
        st, e = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], bad)
        assert st == 400, (bad, st, e)

    # the sandbox gone: the name stays the workspace's, and says nothing runs
    stop(magsd, j["id"])
    st, body, _ = get(magsd, "web.localhost", tries=1)
    assert st == 502 and b"No sandbox is running" in body, body
    st, e = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"url": True})
    assert st == 409, e


def test_url_streaming_large_bodies_and_upgrade(magsd):
    j = start_server(magsd, ws="stream")
    st, body, _ = get(magsd, "stream.localhost")
    assert st == 200

    # a streamed response: the first part arrives while the script waits for /go
    s = socket.create_connection(("127.0.0.1", magsd.access()["url_port"]), timeout=60)
    s.sendall(b"GET /cgi-bin/stream HTTP/1.1\r\nHost: stream.localhost\r\nConnection: close\r\n\r\n")
    got = b""
    while b"first\n" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert b"second" not in got
    st, body, _ = get(magsd, "stream.localhost", "/cgi-bin/go")
    assert (st, body) == (200, b"ok\n")
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.endswith(b"first\nsecond\n"), got

    # a 24 MiB request body goes through whole
    big = os.urandom(24 << 20)
    st, body, _ = get(magsd, "stream.localhost", "/cgi-bin/count", method="POST", body=big,
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and body.strip() == str(len(big)).encode(), (st, body[:200])

    # an upgrade: after 101 the connection is a byte pipe both ways
    st, j2 = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"url": True, "port": 8081})
    assert st == 200
    s = socket.create_connection(("127.0.0.1", magsd.access()["url_port"]), timeout=60)
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: stream.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    rest = head.split(b"\r\n\r\n", 1)[1]
    for msg in (b"ping-1\n", b"x" * 100000 + b"\n"):
        s.sendall(msg)
        echo = rest
        while len(echo) < len(msg):
            chunk = s.recv(65536)
            assert chunk, len(echo)
            echo += chunk
        assert echo == msg
        rest = b""
    s.close()
    stop(magsd, j["id"])


def test_url_https(magsd_factory, mags_tmp):
    cert, key = os.path.join(mags_tmp, "cert.pem"), os.path.join(mags_tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=mags.test", "-addext", "subjectAltName=DNS:*.mags.test"],
                   check=True, capture_output=True)
    magsd = magsd_factory(extra_args=["--url-domain", "mags.test", "--tls-cert", cert, "--tls-key", key])
    j = start_server(magsd, ws="secure")
    port = magsd.access()["url_port"]
    assert j["url"] == "https://secure.mags.test:%d" % port
    ctx = ssl.create_default_context(cafile=cert)
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        t = ctx.wrap_socket(s, server_hostname="secure.mags.test")  # verifies the certificate
        t.sendall(b"GET / HTTP/1.1\r\nHost: secure.mags.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
        t.close()
        if not data.startswith(b"HTTP/1.1 502") and not data.startswith(b"HTTP/1.0 502"):
            break
        time.sleep(0.2)
    assert data.split(b"\r\n")[0].endswith(b"200 OK") and data.endswith(b"web-index\n"), data[:300]
    # plain HTTP to the HTTPS port is refused, not routed
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET / HTTP/1.1\r\nHost: secure.mags.test\r\n\r\n")
    try:
        assert b"web-index" not in s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    stop(magsd, j["id"])


def test_url_and_ssh_with_user_networking(magsd_factory, mags_tmp):
    """Without tap (magsd not root, or --net user) URLs and SSH go through QEMU port forwards."""
    magsd = magsd_factory(extra_args=["--net", "user"])
    assert "network: user" in magsd.log()
    j = start_server(magsd, ws="slirp")
    st, body, _ = get(magsd, "slirp.localhost")
    assert (st, body) == (200, b"web-index\n")
    key = os.path.join(mags_tmp, "k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    with open(key + ".pub") as f:
        pub = f.read().strip()
    st, j2 = magsd.api("POST", "/mags-jobs/%s/access" % j["id"], {"ssh": True, "ssh_public_key": pub})
    assert st == 200, j2
    kh = os.path.join(mags_tmp, "kh")
    with open(kh, "w") as f:
        f.write("[%s]:%d %s\n" % (j2["ssh"]["host"], j2["ssh"]["port"], j2["ssh"]["host_key"]))
    r = subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + kh,
                        "-o", "StrictHostKeyChecking=yes", "-p", str(j2["ssh"]["port"]), "root@127.0.0.1",
                        "cat /tmp/w/index.html"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "web-index\n", r.stderr
    stop(magsd, j["id"])
