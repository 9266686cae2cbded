# SPDX-License-Identifier: MIT
"""magsd on PostgreSQL (--db postgresql://...): core behaviours that the rest of
the suite checks on SQLite, run again against a magsd whose state lives in a
throwaway PostgreSQL 15 (tests/integration/pgserver.py; a fresh database per
magsd). Submit/wait/logs, a named workspace reused across jobs, cron
schedules, tokens (the REST API and `magsd token`), state across a restart,
and that the state really is in PostgreSQL (no SQLite file appears).

Most tests are the SQLite suite's own functions: this module overrides the
magsd_factory fixture (and so magsd) to give every magsd --db with a fresh
database. PostgreSQL missing is a failure, not a skip (the pg fixture raises)."""
import json
import os
import subprocess

import pytest

import test_auth
import test_core
import test_cron
import test_workspace
from conftest import MAGSD


@pytest.fixture
def magsd_factory(pg_db, magsd_factory):
    """conftest's factory, each magsd with --db on a database of its own (pg_db is set
    up first so it is dropped last, after magsd stopped)."""
    def make(**kw):
        kw.setdefault("db", pg_db())
        return magsd_factory(**kw)
    return make


# ---- the SQLite suite's tests, on PostgreSQL ---------------------------------------
test_hello_world = test_core.test_hello_world
test_exit_code = test_core.test_exit_code
test_stderr_kept_apart = test_core.test_stderr_kept_apart
test_logs_plain = test_core.test_logs_plain
test_logs_follow_finished = test_core.test_logs_follow_finished
test_cli_list_status_logs = test_core.test_cli_list_status_logs
test_stop = test_core.test_stop
test_stop_queued = test_core.test_stop_queued
test_unknown_id = test_core.test_unknown_id
test_other_users_job_is_404 = test_core.test_other_users_job_is_404
test_jobs_and_logs_survive_restart = test_core.test_jobs_and_logs_survive_restart
test_kill9_mid_job_then_restart = test_core.test_kill9_mid_job_then_restart
test_named_workspace_reconnects_and_local_is_cleared = test_workspace.test_named_workspace_reconnects_and_local_is_cleared
test_workspace_held_by_one_job_at_a_time = test_workspace.test_workspace_held_by_one_job_at_a_time
test_workspace_delete_and_conflicts = test_workspace.test_delete_and_conflicts
test_cron_rest_crud_and_ownership = test_cron.test_rest_crud_and_ownership
test_cron_cli = test_cron.test_cli
test_another_users_token_gets_404_everywhere = test_auth.test_another_users_token_gets_404_everywhere


# ---- PostgreSQL's own -----------------------------------------------------------------
def tables(pg, db_url):
    db = db_url.rsplit("/", 1)[1]
    return set(pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()", db=db).split())


def test_state_is_in_postgres(magsd, pg):
    j = magsd.submit("echo in-pg")
    j = magsd.wait_job(j["id"])
    assert j["status"] == "completed" and magsd.output(j["id"]) == "in-pg\n", j
    # the job row is in PostgreSQL; no SQLite file was made
    have = tables(pg, magsd.db)
    assert {"jobs", "tokens"} <= have, have
    db = magsd.db.rsplit("/", 1)[1]
    got = pg.psql("SELECT count(*) FROM jobs WHERE id = '%s'" % j["id"], db=db).strip()
    assert got == "1", got
    assert not os.path.exists(os.path.join(magsd.state_dir, "mags.db")), os.listdir(magsd.state_dir)
    # on one node the job ran on this one, and /nodes names it alone
    st, nodes = magsd.api("GET", "/nodes")
    assert st == 200 and len(nodes["nodes"]) == 1, nodes
    me = nodes["nodes"][0]
    assert me["self"] is True and me["state"] == "alive" and me["url"] == magsd.url, me
    assert j["node"] == me["id"], (j, me)


def test_tokens_rest_and_cli(magsd, pg):
    st, me = magsd.api("GET", "/whoami")
    assert st == 200 and me["user"] == "default", me
    st, t = magsd.api("POST", "/tokens", {"name": "ci runner"})
    assert st == 201 and t["token"].startswith("mags_"), t
    new = t["token"]
    st, me2 = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 200 and me2 == {"user": "default", "token_id": t["id"]}, me2
    st, lst = magsd.api("GET", "/tokens", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 200 and [x["id"] for x in lst["tokens"]] == [me["token_id"], t["id"]], lst
    # stored hashed: PostgreSQL never holds the secret
    db = magsd.db.rsplit("/", 1)[1]
    dump = pg.psql("SELECT hash, prefix FROM tokens", db=db)
    assert new not in dump and new[:12] in dump, dump
    st, d = magsd.api("DELETE", "/tokens/%d" % t["id"])
    assert st == 200 and d == {"deleted": True, "id": t["id"]}, d
    st, e = magsd.api("GET", "/whoami", headers={"Authorization": "Bearer " + new}, token=False)
    assert st == 401, e

    # magsd token/user commands with --db, against the running magsd's database
    def run(*a):
        return subprocess.run([MAGSD, "--state-dir", magsd.state_dir, "--db", magsd.db] + list(a), env=magsd.env,
                              capture_output=True, text=True, timeout=60)
    test_auth.check_offline_commands(magsd, run)


def test_unreachable_postgres_is_a_clear_error(mags_tmp):
    """magsd with a --db nothing answers at: exits non-zero at start and says why."""
    from conftest import Magsd, free_port
    m = Magsd(mags_tmp, db="postgresql://postgres@127.0.0.1:%d/none?connect_timeout=3" % free_port())
    r = subprocess.run([MAGSD, "--state-dir", m.state_dir, "--db", m.db, "token", "create"], env=m.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stdout == "", (r.returncode, r.stdout)
    assert "127.0.0.1" in r.stderr or "connect" in r.stderr.lower(), r.stderr
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr


def test_nodes_on_sqlite_is_this_one(magsd_factory):
    """Without PostgreSQL, GET /nodes lists the one node itself, and jobs name it."""
    m = magsd_factory(db=None, extra_args=["--node-id", "solo.node_1"])
    assert m.db is None
    j = m.wait_job(m.submit("true")["id"])
    st, body = m.api("GET", "/nodes")
    assert st == 200 and len(body["nodes"]) == 1, body
    n = body["nodes"][0]
    assert n["id"] == "solo.node_1" and n["self"] is True and n["state"] == "alive", n
    assert n["url"] == m.url and n["capacity"] >= 1, n
    assert j["node"] == "solo.node_1", j
    assert os.path.exists(os.path.join(m.state_dir, "mags.db"))


@pytest.mark.parametrize("bad", ["", "a b", "x" * 64, "a/b", "\u00e9t\u00e9"])
def test_bad_node_id_is_refused(mags_tmp, bad):
    from conftest import Magsd
    m = Magsd(mags_tmp)
    r = subprocess.run([MAGSD, "--state-dir", m.state_dir, "--node-id", bad, "--listen", "127.0.0.1:1"], env=m.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "node-id" in r.stderr, (bad, r.returncode, r.stderr)
