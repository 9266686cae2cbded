# SPDX-License-Identifier: MIT
"""Users and API tokens (create, list, revoke; stored hashed, shown once),
/whoami, the ownership of every resource (a walk of every documented route
with a second user's token), and GET /openapi.json against the routes magsd
really serves."""
import glob
import time
import json
import os
import re
import sqlite3
import urllib.request

import yaml

from openapi import SPEC

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_tokens_create_list_revoke(magsd):
    st, me = magsd.api("GET", "/whoami")
    assert st == 200 and me["user"] == "default", me
    st, t = magsd.api("POST", "/tokens", {"name": "ci runner"})
    assert st == 201 and t["token"].startswith("mags_") and len(t["token"]) == 45, t
    assert t["prefix"] == t["token"][:12] and t["name"] == "ci runner"
    new = t["token"]
    # the new token works and is the one /whoami names
    st, me2 = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 200 and me2 == {"user": "default", "token_id": t["id"]}, me2
    # lists never show secrets; the caller's own token is marked
    st, lst = magsd.api("GET", "/tokens", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 200 and [x["id"] for x in lst["tokens"]] == [me["token_id"], t["id"]], lst
    assert all("token" not in x for x in lst["tokens"])
    assert [x["current"] for x in lst["tokens"]] == [False, True]
    # stored hashed: the database never holds the secret
    db = sqlite3.connect(os.path.join(magsd.state_dir, "mags.db"))
    rows = db.execute("SELECT hash, prefix FROM tokens").fetchall()
    db.close()
    assert all(new not in (h or "") for h, _ in rows) and any(p == new[:12] for _, p in rows)
    # bad requests
    for body, word in (({"name": ""}, "name"), ({"name": "x" * 65}, "name"), ({"name": "a\nb"}, "name"),
                       ({"nme": "x"}, "unknown field"), ([], "object")):
        st, e = magsd.api("POST", "/tokens", body)
        assert st == 400 and word in e["error"], (body, e)
    st, e = magsd.api("PUT", "/tokens")
    assert st == 405, e
    # revoke: the token stops working at once; revoking again is 404
    st, d = magsd.api("DELETE", "/tokens/%d" % t["id"])
    assert st == 200 and d == {"deleted": True, "id": t["id"]}, d
    st, e = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 401, e
    st, e = magsd.api("DELETE", "/tokens/%d" % t["id"])
    assert st == 404, e
    for bad in ("abc", "0", "-1", "99999999999999999999"):
        st, e = magsd.api("DELETE", "/tokens/" + bad)
        assert st == 404, (bad, e)


def check_offline_commands(magsd, run):
    """`magsd token create|list|revoke` and `magsd user list` (run(*args) runs magsd with
    the running magsd's state) against what the API sees."""
    tok = magsd.create_token(user="carol")
    st, me = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + tok}, token=False)
    assert st == 200 and me["user"] == "carol", me
    r = run("token", "list", "--user", "carol")
    assert r.returncode == 0, r.stderr
    lst = json.loads(r.stdout)
    assert len(lst) == 1 and lst[0]["prefix"] == tok[:12] and tok not in r.stdout
    r = run("user", "list")
    assert r.returncode == 0 and {u["name"] for u in json.loads(r.stdout)} >= {"default", "carol"}, r.stdout
    r = run("token", "revoke", str(lst[0]["id"]))
    assert r.returncode == 0, r.stderr
    st, _ = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + tok}, token=False)
    assert st == 401
    r = run("token", "revoke", str(lst[0]["id"]))
    assert r.returncode != 0 and "no token" in r.stderr, r.stderr


def test_magsd_token_and_user_commands(magsd):
    import subprocess
    from conftest import MAGSD
    run = lambda *a: subprocess.run([MAGSD, "--state-dir", magsd.state_dir] + list(a), env=magsd.env,
                                    capture_output=True, text=True, timeout=60)
    check_offline_commands(magsd, run)
    r = run("token", "frobnicate")
    assert r.returncode != 0


def owned_resources(magsd):
    """Makes one of each kind of resource as the default user; returns path parameters."""
    j = magsd.submit("echo mine > /root/f", workspace="alice-ws")
    magsd.wait_job(j["id"])
    st, a = magsd.api("POST", "/url-aliases", {"alias": "alice-app", "workspace": "alice-ws"})
    assert st == 201, a
    st, c = magsd.api("POST", "/cron-jobs", {"expression": "0 0 1 1 *", "script": "true"})
    assert st == 201, c
    st, t = magsd.api("POST", "/tokens", {"name": "alice's"})
    assert st == 201, t
    st, login = magsd.api("POST", "/cli-logins", {"client": "walk"}, token=False)
    assert st == 201, login
    return {"/mags-jobs/{id}": j["id"], "/workspaces/{name}": "alice-ws", "/url-aliases/{alias}": "alice-app",
            "/cron-jobs/{id}": c["id"], "/tokens/{id}": str(t["id"]), "/cli-logins/{code}": login["code"]}


def fill(template, params):
    for prefix, value in params.items():
        head = prefix.split("{")[0]
        if template.startswith(head) and "{" in template:
            # the owner's resource first; nested ids after it (a process number) are plain values
            return re.sub(r"\{[^}]+\}", "1", re.sub(r"\{[^}]+\}", value, template, count=1))
    return template


def test_another_users_token_gets_404_everywhere(magsd):
    params = owned_resources(magsd)
    bob = magsd.create_token(user="bob")
    auth = {"Authorization": "Bearer " + bob}
    walked = 0
    for template, ops in SPEC["paths"].items():
        # a pending CLI login belongs to nobody until someone approves it (its code is on the user's screen)
        if "{" not in template or template.startswith("/cli-logins"):
            continue
        path = fill(template, params)
        assert "{" not in path, "no resource for %s" % template
        for method in ops:
            if method.upper() not in METHODS:
                continue
            body = {} if method.upper() in ("POST", "PATCH") else None
            st, e = magsd.api(method.upper(), path, body, headers=auth, token=False)
            assert st == 404, "%s %s with another user's token: %s %r" % (method.upper(), path, st, e)
            walked += 1
    assert walked >= 15, walked
    # lists show none of the first user's things
    for path, key in (("/mags-jobs", "jobs"), ("/workspaces", "workspaces"), ("/url-aliases", "aliases"),
                      ("/cron-jobs", "cron_jobs")):
        st, lst = magsd.api("GET", path, headers=auth, token=False)
        assert st == 200 and lst[key] == [], (path, lst)
    st, lst = magsd.api("GET", "/tokens", headers=auth, token=False)
    assert st == 200 and len(lst["tokens"]) == 1
    # and the owner still has everything
    for template, value in params.items():
        if template.startswith("/cli-logins"):
            continue
        st, lst = magsd.api("GET", template.split("/{")[0])
        assert st == 200 and value in json.dumps(lst), (template, lst)


def served_routes():
    """(method, path) pairs named in magsd's routers: every path prefix api.c dispatches
    on and every action api_jobs.c / api_workspaces.c compare, for the check that
    each is documented."""
    src = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(ROOT, "src/daemon/api*.c"))}
    prefixes = set(re.findall(r'strn?cmp\(r->path, "(/[a-z.-]+)"', src["api.c"]))
    actions = set(re.findall(r'strcmp\(action, "([a-z]+)"\)', src["api_jobs.c"] + src["api_workspaces.c"]))
    return prefixes, actions


def test_openapi_json_matches_the_routes(magsd):
    raw = urllib.request.urlopen(magsd.url + "/api/v1/openapi.json", timeout=10).read()
    served = json.loads(raw)
    with open(os.path.join(ROOT, "docs", "api.yaml")) as f:
        assert served == yaml.safe_load(f), "openapi.json differs from docs/api.yaml"
    documented = {(m.upper(), p) for p, ops in SPEC["paths"].items() for m in ops if m.upper() in METHODS}
    params = owned_resources(magsd)
    # every route magsd serves is documented: each prefix and action of its routers, with
    # every method the documentation does not list, answers 404 "no such endpoint" or 405
    prefixes, actions = served_routes()
    paths = set(prefixes) | {"/mags-jobs/{id}/" + a for a in actions}
    paths |= {"/workspaces/{name}/sync", "/workspaces/{name}", "/url-aliases/{alias}"}
    paths |= {p + "/{id}" for p in ("/mags-jobs", "/cron-jobs", "/tokens")}
    for template in sorted(paths):
        for method in METHODS:
            if (method, template) in documented:
                continue
            st, e = magsd.api(method, fill(template, params), {} if method in ("POST", "PATCH", "PUT") else None)
            text = (e.get("error") or "") if isinstance(e, dict) else ""
            assert st == 405 or "no such endpoint" in text, "%s %s answers %s but is not in docs/api.yaml: %r" % (
                method, template, st, e)
    # every documented route exists: it never answers the router's "no such endpoint" or 405
    # (deletions last: they take the resources the other calls use)
    for method, template in sorted(documented, key=lambda mt: (mt[0] == "DELETE", mt)):
        path = fill(template, params)
        st, e = magsd.api(method, path, {} if method in ("POST", "PATCH") else None)
        text = (e.get("error") or "") if isinstance(e, dict) else ""
        assert st != 405 and "no such endpoint" not in text, "%s %s is documented but not served: %s %r" % (
            method, template, st, e)


def test_cli_whoami_and_logout(magsd):
    r = magsd.cli("whoami")
    assert r.returncode == 0 and r.stdout == "default\n" and "MAGS_TOKEN" in r.stderr, (r.stdout, r.stderr)
    # a token saved in ~/.mags/config.json (no MAGS_TOKEN): whoami uses it, logout forgets it
    home = os.path.join(magsd.tmp, "loghome")
    os.makedirs(os.path.join(home, ".mags"), mode=0o700)
    cfg = os.path.join(home, ".mags", "config.json")
    with open(cfg, "w") as f:
        json.dump({"api_url": magsd.url, "token": magsd.create_token(user="dave")}, f)
    os.chmod(cfg, 0o600)
    env = {"HOME": home, "MAGS_TOKEN": None, "MAGS_API_URL": None}
    r = magsd.cli("whoami", env=env)
    assert r.returncode == 0 and r.stdout == "dave\n" and "config.json" in r.stderr, (r.stdout, r.stderr)
    r = magsd.cli("logout", env=env)
    assert r.returncode == 0 and "logged out" in r.stdout, r.stderr
    with open(cfg) as f:
        saved = json.load(f)
    assert "token" not in saved and saved["api_url"] == magsd.url
    assert os.stat(cfg).st_mode & 0o777 == 0o600
    r = magsd.cli("logout", env=env)
    assert r.returncode == 0 and "not logged in" in r.stdout
    r = magsd.cli("whoami", env=env)
    assert r.returncode == 1 and r.stderr.startswith("mags: ") and r.stderr.count("\n") == 1, r.stderr
    r = magsd.cli("whoami", "extra")
    assert r.returncode == 2


def start_login(magsd, home):
    """Starts `mags login --no-browser` in the background; returns (process, code, url)."""
    import subprocess
    import select
    from conftest import MAGS
    env = dict(magsd.env, HOME=home)
    for k in ("MAGS_TOKEN", "MAGS_API_TOKEN", "MAGS_API_URL"):
        env.pop(k, None)
    p = subprocess.Popen([MAGS, "login", "--no-browser", "--api-url", magsd.url], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    err = ""
    fd = p.stderr.fileno()
    deadline = time.time() + 30
    while not re.search(r"/approve/\S+\n", err) and time.time() < deadline:
        if select.select([fd], [], [], 1)[0]:
            err += os.read(fd, 4096).decode()
    m = re.search(r"(http://\S+/dashboard/#/approve/([A-Z0-9-]+))", err)
    assert m, err
    return p, m.group(2), m.group(1)


def test_login_flow(magsd):
    home = os.path.join(magsd.tmp, "loginhome")
    os.makedirs(home)
    p, code, url = start_login(magsd, home)
    assert url == magsd.url + "/dashboard/#/approve/" + code
    st, info = magsd.api("GET", "/cli-logins/" + code)
    assert st == 200 and info["status"] == "pending" and info["client"].startswith("mags CLI on "), info
    st, e = magsd.api("POST", "/cli-logins/%s/approve" % code, token=False)
    assert st == 401, e
    st, d = magsd.api("POST", "/cli-logins/%s/approve" % code)
    assert st == 200 and d["status"] == "approved", d
    st, e = magsd.api("POST", "/cli-logins/%s/deny" % code)
    assert st in (404, 409), e  # decided (and maybe already collected by the CLI)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0 and "logged in to %s as default" % magsd.url in out, (out, err)
    cfg = os.path.join(home, ".mags", "config.json")
    assert os.stat(cfg).st_mode & 0o777 == 0o600
    with open(cfg) as f:
        saved = json.load(f)
    assert saved["api_url"] == magsd.url and saved["token"].startswith("mags_")
    r = magsd.cli("whoami", env={"HOME": home, "MAGS_TOKEN": None, "MAGS_API_URL": None})
    assert r.returncode == 0 and r.stdout == "default\n", r.stderr
    st, lst = magsd.api("GET", "/tokens")
    assert any((t["name"] or "").startswith("mags login: mags CLI on ") for t in lst["tokens"]), lst

    # a denied login: the CLI says so and saves nothing new
    p, code, _ = start_login(magsd, home)
    st, d = magsd.api("POST", "/cli-logins/%s/deny" % code)
    assert st == 200 and d["status"] == "denied", d
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "denied" in err, (out, err)
    with open(cfg) as f:
        assert json.load(f)["token"] == saved["token"]

    # the poll needs the secret; unknown codes are 404; bad bodies 400
    st, start = magsd.api("POST", "/cli-logins", {"client": "test"}, token=False)
    assert st == 201 and re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", start["code"]), start
    st, e = magsd.api("GET", "/cli-logins/%s/token?secret=wrong" % start["code"], token=False)
    assert st == 404, e
    st, poll = magsd.api("GET", "/cli-logins/%s/token?secret=%s" % (start["code"], start["secret"]), token=False)
    assert st == 200 and poll == {"status": "pending"}, poll
    st, e = magsd.api("GET", "/cli-logins/NOPE-NOPE")
    assert st == 404, e
    for body in ({"client": ""}, {"client": "a\nb"}, {"who": "x"}, []):
        st, e = magsd.api("POST", "/cli-logins", body, token=False)
        assert st == 400, (body, e)
