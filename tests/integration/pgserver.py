# SPDX-License-Identifier: MIT
"""A throwaway PostgreSQL 15 for tests and benchmarks.

    from pgserver import PgServer
    pg = PgServer(addresses=["127.0.0.1", "10.231.1.1"])
    pg.start()                        # initdb + pg_ctl start in a fresh temp dir
    url = pg.url()                    # postgresql://postgres@127.0.0.1:PORT/mags
    url = pg.url("10.231.1.1")        # the same database through another address
    url = pg.create_db("t1")          # a fresh, empty database of that name
    pg.psql("SELECT 1", db="t1")      # stdout of psql -At
    pg.stop()                         # also at interpreter exit; a second stop is a no-op

The server runs as the `postgres` system user (PostgreSQL refuses to run as
root) from /usr/lib/postgresql/15/bin, never from Debian's packaged cluster:
installing the `postgresql` package creates a cluster 15/main on port 5432
(started by systemd where there is one); this server has its own data
directory and a free port, so it does not care whether that one runs. Trust
authentication for the given addresses only, fsync off (a test database is
thrown away), max_connections 200 (three magsd nodes, each with a pool, plus
benchmark clients).
"""
import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

PG_BIN = os.environ.get("MAGS_PG_BIN", "/usr/lib/postgresql/15/bin")
USER = "postgres"
START_TIMEOUT = 60


def free_port(addresses):
    """A TCP port free on every one of `addresses` (best effort: nothing holds it afterwards)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addresses[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((a, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port on %s" % addresses)


class PgServer:
    def __init__(self, addresses=("127.0.0.1",), dbname="mags", max_connections=200, tmpdir=None):
        self.addresses = list(addresses)
        self.dbname = dbname
        self.max_connections = max_connections
        self.tmpdir = tmpdir
        self.dir = None
        self.port = None
        self.running = False
        for prog in ("initdb", "pg_ctl", "postgres", "psql"):
            p = os.path.join(PG_BIN, prog)
            if not os.access(p, os.X_OK):
                raise RuntimeError("%s missing: install PostgreSQL 15 (scripts/deps.sh)" % p)
        try:
            self.pw = pwd.getpwnam(USER)
        except KeyError:
            raise RuntimeError("no system user %r (install the postgresql package: scripts/deps.sh)" % USER)

    # ---- running things as postgres ---------------------------------------
    def _as_pg(self, args, timeout=120, check=True, **kw):
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", USER, "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/", **kw)
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="mags-pg-", dir=self.tmpdir or "/tmp")
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.sockdir = self.dir  # unix socket beside the data (not /var/run/postgresql)
        self.log_path = os.path.join(self.dir, "postgres.log")
        self._as_pg([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", USER,
                     "-E", "UTF8", "--locale=C", "--no-sync"])
        hba = ["local all all trust"]
        for a in self.addresses:
            hba.append("host all all %s/32 trust" % a)
        # the node namespaces reach the server from their own addresses (10.231.K.2)
        hba.append("host all all 10.231.0.0/16 trust")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("\n".join(hba) + "\n")
        atexit.register(self.stop)
        for attempt in range(3):
            self.port = free_port(self.addresses)
            conf = {
                "listen_addresses": "'%s'" % ",".join(self.addresses),
                "port": str(self.port),
                "unix_socket_directories": "'%s'" % self.sockdir,
                "max_connections": str(self.max_connections),
                "shared_buffers": "'64MB'",
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "log_min_messages": "warning",
                "log_min_error_statement": "panic",  # tests provoke errors on purpose; keep the log short
            }
            with open(os.path.join(self.data, "postgresql.auto.conf"), "w") as f:
                f.write("".join("%s = %s\n" % kv for kv in conf.items()))
            r = self._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log_path,
                             "-w", "-t", str(START_TIMEOUT), "start"], check=False)
            if r.returncode == 0:
                break
            if attempt == 2 or "already in use" not in self.log():
                raise RuntimeError("postgres did not start (exit %d):\n%s\n%s" % (r.returncode, r.stderr, self.log()))
        self.running = True
        self.psql("CREATE DATABASE %s" % self.dbname, db="postgres")
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    # ---- clients ---------------------------------------------------------------
    def url(self, host=None, db=None):
        """The libpq URL of database `db` (default the one made at start) at `host`."""
        return "postgresql://%s@%s:%d/%s" % (USER, host or self.addresses[0], self.port, db or self.dbname)

    def psql(self, sql, db=None, timeout=60):
        """Runs SQL through psql over the unix socket; returns its unaligned, tuples-only output."""
        r = self._as_pg([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                         "-h", self.sockdir, "-p", str(self.port), "-U", USER, "-d", db or self.dbname,
                         "-c", sql], timeout=timeout)
        return r.stdout

    def create_db(self, name):
        """A fresh database `name` (dropped first if it exists); returns its URL."""
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, db="postgres")
        self.psql("CREATE DATABASE %s" % name, db="postgres")
        return self.url(db=name)

    def drop_db(self, name):
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, db="postgres")

    def connections(self, db=None):
        """How many client connections `db` has now."""
        return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                             % (db or self.dbname), db="postgres").strip())

    def stop(self):
        if self.running:
            self.running = False
            pg_ctl = os.path.join(PG_BIN, "pg_ctl")
            r = self._as_pg([pg_ctl, "-D", self.data, "-m", "fast", "-w", "-t", "20", "stop"], check=False)
            if r.returncode != 0:
                self._as_pg([pg_ctl, "-D", self.data, "-m", "immediate", "-w", "-t", "20", "stop"], check=False)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


if __name__ == "__main__":  # a quick look: python3 tests/integration/pgserver.py
    pg = PgServer().start()
    print(pg.url(), pg.psql("SELECT version()").strip())
    print(pg.create_db("t1"), pg.connections("t1"))
    pg.stop()
