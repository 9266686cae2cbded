# SPDX-License-Identifier: MIT
"""mags exec and mags proc against a real magsd and a real sandbox (docs/sandboxes.md):
exit codes, stdout/stderr, stdin (piped, binary, a file), env and cwd, errors,
signals passed on; PTY shells driven through tmux (prompt, tty, window size and
resize, Ctrl-C, exit code, several shells at once); background processes (list,
logs, wait, kill, attach and detach, rm). No test asserts speed; the timeouts only
keep a broken build from hanging the suite."""
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from conftest import JOB_TIMEOUT, MAGS, sanitizer_report, wait_for

WAIT = 60            # seconds a sandbox may take to answer something simple
EXIT_RUNNING = 75    # mags proc wait: still running after --timeout (cli.h CLI_EXIT_RUNNING)
_term_ids = itertools.count()


class Box:
    """A running sandbox `name` (made by `mags new`) of one magsd, and the CLI to reach it."""

    def __init__(self, magsd, name):
        self.magsd = magsd
        self.name = name
        self.env = dict(magsd.env, MAGS_API_URL=magsd.url, MAGS_TOKEN=magsd.token)
        self.tmp = magsd.tmp

    def run(self, *args, input=None, stdin=None, timeout=JOB_TIMEOUT, text=True):
        """Runs mags ARGS; input: str or bytes; stdin: a file object instead."""
        kw = {"input": input} if input is not None else {"stdin": stdin if stdin is not None else subprocess.DEVNULL}
        r = subprocess.run([MAGS] + [str(a) for a in args], env=self.env, capture_output=True, timeout=timeout,
                           text=text, cwd=self.tmp, **kw)
        err = r.stderr if text else r.stderr.decode(errors="replace")
        rep = sanitizer_report(err)
        if rep:
            pytest.fail("mags %s: %s\n%s" % (" ".join(map(str, args)), rep, err))
        return r

    def exec(self, *cmd, flags=(), **kw):
        return self.run("exec", *flags, self.name, *cmd, **kw)

    def procs(self):
        r = self.run("proc", "list", self.name, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["processes"]

    def proc(self, pid):
        return next((p for p in self.procs() if p["id"] == pid), None)


@pytest.fixture
def box(magsd):
    r = magsd.cli("new", "box")
    assert r.returncode == 0, r.stderr
    return Box(magsd, "box")


def one_error_line(r):
    """The CLI's error shape: exactly one "mags: ..." line on stderr."""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mags: "), r.stderr
    return lines[0]


# ---- mags exec without a terminal ---------------------------------------------

def test_exec_exit_codes_and_output(box):
    r = box.exec("echo out-$((6*7)); echo err-line >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out-42\n" and r.stderr == "err-line\n", (r.stdout, r.stderr)
    r = box.exec("true")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    # the words of CMD are joined with spaces and run by sh -c
    r = box.exec("echo", "a", "b;", "echo", "c")
    assert r.returncode == 0 and r.stdout == "a b\nc\n", r
    r = box.exec("kill -9 $$")
    assert r.returncode == 128 + 9, (r.returncode, r.stderr)
    r = box.exec("sleep 30", flags=("--timeout", "1"))
    assert r.returncode == 124, (r.returncode, r.stderr)
    # env and working directory
    r = box.exec('echo "$A-$B"; pwd', flags=("-e", "A=1", "--env", "B=x y", "-w", "/tmp"))
    assert r.returncode == 0 and r.stdout == "1-x y\n/tmp\n", r
    # a job id works as well as the workspace name
    st, lst = box.magsd.api("GET", "/mags-jobs?workspace=box&status=running")
    jid = lst["jobs"][0]["id"]
    r = box.run("exec", jid, "echo by-id")
    assert r.returncode == 0 and r.stdout == "by-id\n", r


def test_exec_stdin(box):
    r = box.exec("cat", input="hi\n")
    assert r.returncode == 0 and r.stdout == "hi\n", r
    r = box.exec("wc -l", input="a\nb\n")
    assert r.returncode == 0 and r.stdout.strip() == "2", r
    # a few MB of binary data through cat, and through sha256sum in the guest
    data = os.urandom(3 * 1024 * 1024 + 17)
    want = hashlib.sha256(data).hexdigest()
    r = box.exec("cat", input=data, text=False)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == len(data) and hashlib.sha256(r.stdout).hexdigest() == want
    path = os.path.join(box.tmp, "blob")
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:  # stdin a regular file
        r = box.exec("sha256sum", stdin=f)
    assert r.returncode == 0 and r.stdout.split()[0] == want, r
    # stdin /dev/null: nothing to read, and the command still ends
    r = box.exec("cat; echo done")
    assert r.returncode == 0 and r.stdout == "done\n", r


def test_exec_errors(box):
    r = box.run("exec", "nosuchbox", "true")
    assert r.returncode == 1, r
    one_error_line(r)
    job = box.magsd.submit("true")
    box.magsd.wait_job(job["id"])
    r = box.run("exec", job["id"], "true")
    assert r.returncode == 1, r
    one_error_line(r)
    r = box.exec("true", flags=("-t",))  # stdin is /dev/null
    assert r.returncode == 1 and "not a terminal" in one_error_line(r), r
    r = box.run("exec", "box")
    assert r.returncode == 2 and "missing CMD" in r.stderr, r
    r = box.run("exec", "--timeout", "soon", "box", "true")
    assert r.returncode == 2, r
    r = box.run("proc", "kill", "box", "99999")
    assert r.returncode == 1, r
    one_error_line(r)
    r = box.run("proc", "logs", "box", "x")
    assert r.returncode == 2, r
    r = box.run("proc", "frobnicate", "box")
    assert r.returncode == 2, r


def test_exec_signals_passed_on(box):
    """SIGINT to mags exec reaches the process; a second one within 2 s ends mags (130)."""
    script = 'trap "echo got-int; exit 5" INT; echo ready; while :; do sleep 0.2; done'
    p = subprocess.Popen([MAGS, "exec", "box", script], env=box.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 5, (p.returncode, err)
    assert out == "got-int\n", out
    assert not sanitizer_report(err), err

    script = 'trap "" INT; echo ready; while :; do sleep 0.2; done'
    p = subprocess.Popen([MAGS, "exec", "box", script], env=box.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        pid = wait_for("the process in the list",
                       lambda: next((q["id"] for q in box.procs() if q["command"] == script), None), timeout=WAIT)
        p.send_signal(signal.SIGINT)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, (p.returncode, err)
    assert not sanitizer_report(err), err
    # the client went away before the exit: the process got SIGHUP (as with ssh)
    wait_for("process %d to end after its client left" % pid, lambda: box.proc(pid)["status"] != "running",
             timeout=WAIT)


# ---- PTY shells through tmux ----------------------------------------------------

class Term:
    """`mags ARGS` in a detached tmux session on a private server; its exit code
    and stderr land in files (the session ends with the command)."""

    def __init__(self, box, *args, cols=100, rows=30):
        self.id = "mx%d-%d" % (os.getpid(), next(_term_ids))
        self.box = box
        self.mark = os.path.join(box.tmp, self.id + ".exit")
        self.err = os.path.join(box.tmp, self.id + ".err")
        # the pane stays after mags ends, so its last screen can still be read
        cmd = "%s 2>%s; echo $? >%s.tmp; mv %s.tmp %s; exec sleep 3600" % (
            shlex.join([MAGS] + [str(a) for a in args]), shlex.quote(self.err), self.mark, self.mark, self.mark)
        self.tmux("new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), cmd)
        self.socket = self.tmux("display-message", "-p", "-t", "t", "#{socket_path}").stdout.strip()

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.id, "-f", "/dev/null"] + list(args), env=self.box.env,
                              capture_output=True, text=True, timeout=30)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-J", "-t", "t").stdout

    def send(self, *keys):
        r = self.tmux("send-keys", "-t", "t", *keys)
        assert r.returncode == 0, r.stderr

    def line(self, text):
        self.send("-l", text)
        self.send("Enter")

    def wait_for(self, pattern, timeout=WAIT):
        """Waits until the screen matches regex pattern; returns the match."""
        deadline = time.time() + timeout
        while True:
            s = self.screen()
            m = re.search(pattern, s)
            if m:
                return m
            if time.time() > deadline:
                pytest.fail("%r never appeared on the terminal:\n%s\n---- stderr ----\n%s"
                            % (pattern, s, self.stderr()))
            time.sleep(0.2)

    def stderr(self):
        try:
            with open(self.err, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def exit_code(self, timeout=WAIT):
        """Waits for the command to end; returns its exit code (and checks its stderr)."""
        deadline = time.time() + timeout
        while not os.path.exists(self.mark):
            if time.time() > deadline:
                pytest.fail("mags did not end:\n%s\n---- stderr ----\n%s" % (self.screen(), self.stderr()))
            time.sleep(0.2)
        with open(self.mark) as f:
            code = int(f.read())
        rep = sanitizer_report(self.stderr())
        assert not rep, "%s\n%s" % (rep, self.stderr())
        return code

    def close(self):
        self.tmux("kill-server")
        if self.socket.startswith("/"):
            try:
                os.unlink(self.socket)  # tmux leaves it behind
            except OSError:
                pass


needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux not installed")


def shell_ready(t):
    """Waits for the shell to answer (a prompt alone differs between images)."""
    t.line("echo ready-$((6*7))")
    t.wait_for(r"ready-42")


@needs_tmux
def test_exec_tty_shell(box):
    t = Term(box, "exec", "-it", "box")
    try:
        shell_ready(t)
        t.line("tty")
        t.wait_for(r"/dev/pts/\d+")
        t.line("stty size")
        t.wait_for(r"(?m)^30 100\s*$")
        t.tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
        t.line("stty size")
        t.wait_for(r"(?m)^40 120\s*$")
        # Ctrl-C is a byte for the guest's terminal: it interrupts sleep, the shell survives
        t.line("sleep 100")
        time.sleep(1)
        t.send("C-c")
        t.line("echo after-$((6*7))")
        t.wait_for(r"after-42", timeout=30)
        t.line("exit 7")
        assert t.exit_code() == 7
    finally:
        t.close()


@needs_tmux
def test_exec_tty_command_and_several_shells(box):
    # -it with a command: its output and exit code
    t = Term(box, "exec", "-it", "box", "echo cmd-$((6*7)); exit 4")
    try:
        t.wait_for(r"cmd-42")
        assert t.exit_code() == 4
    finally:
        t.close()
    a, b, c = Term(box, "exec", "-it", "box"), Term(box, "exec", "-it", "box"), Term(box, "exec", "-it", "box")
    try:
        for t in (a, b, c):
            shell_ready(t)
        a.line("echo from-$((6*7))-a > /root/shared.txt")
        b.line("cat /root/shared.txt && echo seen-by-b")
        b.wait_for(r"from-42-a\s+seen-by-b")
        c.line("echo from-c >> /root/shared.txt; echo ok-$((1+1))")
        c.wait_for(r"ok-2")
        a.line("cat /root/shared.txt")
        a.wait_for(r"from-42-a\s+from-c")
        ttys = []
        for t in (a, b, c):
            t.line("tty")
            ttys.append(t.wait_for(r"/dev/pts/\d+").group(0))
        assert len(set(ttys)) == 3, ttys
        for t, code in ((a, 0), (b, 1), (c, 2)):
            t.line("exit %d" % code)
            assert t.exit_code() == code
    finally:
        for t in (a, b, c):
            t.close()


# ---- background processes: mags exec -d and mags proc ------------------------------

def start(box, script, flags=()):
    r = box.exec(script, flags=("-d",) + tuple(flags))
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"\d+\n", r.stdout), r.stdout  # just the id, for scripts
    return int(r.stdout)


def test_background_process(box):
    # meanwhile: a command quiet for longer than the client's 60 s stall limit (magsd's
    # heartbeat lines keep its stream alive), and logs -f of a quiet background process
    quiet = subprocess.Popen([MAGS, "exec", "box", "sleep 65; echo slept"], env=box.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qpid = start(box, "sleep 65; echo quiet-done")
    qlogs = subprocess.Popen([MAGS, "proc", "logs", "box", str(qpid), "-f"], env=box.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = start(box, "for i in $(seq 1 100); do echo $i; sleep 0.1; done")
    p = box.proc(pid)
    assert p and p["status"] == "running" and p["detached"], p
    r = box.run("proc", "list", "box")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["ID", "STATUS", "EXIT", "TTY", "COMMAND"], r.stdout
    assert re.search(r"(?m)^\s*%d\s+running\s+-\s+no\s+for i in" % pid, r.stdout), r.stdout
    r = box.run("proc", "wait", "box", pid)
    assert r.returncode == 0, r.stderr
    r = box.run("proc", "logs", "box", pid)
    assert r.returncode == 0 and r.stdout == "".join("%d\n" % i for i in range(1, 101)), r
    r = box.run("proc", "logs", "box", pid, "--offset", "4")  # "1\n2\n" skipped
    assert r.returncode == 0 and r.stdout.startswith("3\n4\n") and r.stdout.endswith("100\n"), r
    assert box.proc(pid)["status"] == "exited" and box.proc(pid)["exit_code"] == 0

    # stdout and stderr of a background process keep their streams; logs -f follows to the end
    pid = start(box, "echo o1; echo e1 >&2; sleep 1; echo o2; exit 6")
    r = box.run("proc", "logs", "box", pid, "-f")
    assert r.returncode == 0 and r.stdout == "o1\no2\n" and r.stderr == "e1\n", r
    r = box.run("proc", "wait", "box", pid)
    assert r.returncode == 6, r

    # kill: KILL -> 137, the default TERM -> 143; wait with a timeout on a running one
    pid = start(box, "sleep 1000")
    r = box.run("proc", "wait", "box", pid, "--timeout", "1")
    assert r.returncode == EXIT_RUNNING and "still running" in one_error_line(r), r
    r = box.run("proc", "kill", "box", pid, "-s", "KILL")
    assert r.returncode == 0, r.stderr
    r = box.run("proc", "wait", "box", pid)
    assert r.returncode == 137, r
    assert box.proc(pid)["exit_code"] == 137
    pid = start(box, "sleep 1000")
    assert box.run("proc", "kill", "box", pid).returncode == 0
    assert box.run("proc", "wait", "box", pid).returncode == 143
    pid = start(box, "sleep 1000")
    assert box.run("proc", "kill", "box", pid, "-s", "SIGINT").returncode == 0
    assert box.run("proc", "wait", "box", pid).returncode == 130
    r = box.run("proc", "kill", "box", pid)  # it has ended
    assert r.returncode == 1, r
    one_error_line(r)

    # rm kills a running one and forgets it
    pid = start(box, "sleep 1000")
    r = box.run("proc", "rm", "box", pid)
    assert r.returncode == 0, r.stderr
    assert box.proc(pid) is None

    for p, want in ((quiet, "slept\n"), (qlogs, "quiet-done\n")):
        out, err = p.communicate(timeout=JOB_TIMEOUT)
        assert p.returncode == 0 and out == want, (p.args, p.returncode, out, err)
        assert not sanitizer_report(err), err


def attach_and_detach(box, pid, typed=None, *patterns):
    """mags proc attach in tmux: waits for each pattern (after typing `typed`, again
    every few seconds until the first appears: the output before the attach is not
    shown), detaches with Ctrl-] and checks that mags exited 0 and the process runs on."""
    t = Term(box, "proc", "attach", "box", pid)
    try:
        deadline = time.time() + WAIT
        while True:
            if typed is not None:
                t.line(typed)
            try:
                t.wait_for(patterns[0], timeout=3)
                break
            except pytest.fail.Exception:
                if time.time() > deadline:
                    raise
        for pat in patterns[1:]:
            t.wait_for(pat)
        t.send("C-]")
        assert t.exit_code() == 0
        assert "detached" in t.stderr(), t.stderr()
    finally:
        t.close()
    assert box.proc(pid)["status"] == "running"


@needs_tmux
def test_attach_and_detach(box):
    pid = start(box, "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.2; done")
    attach_and_detach(box, pid, None, r"tick\d+")
    # a process with stdin: lines typed reach it
    pid2 = start(box, "while read l; do echo got-$l; done; echo stdin-closed", flags=("-i",))
    attach_and_detach(box, pid2, "abc", r"got-abc")
    # a terminal process: typed into its shell, sized to our terminal on attach
    pid3 = start(box, "sh", flags=("-it",))
    attach_and_detach(box, pid3, "echo in-$((6*7)); stty size", r"in-42", r"(?m)^30 100\s*$")
    for p in (pid, pid2, pid3):
        assert box.run("proc", "kill", "box", p, "-s", "KILL").returncode == 0
    # attach follows to the end: exits with the process's code
    pid4 = start(box, "sleep 2; exit 9")
    r = box.run("proc", "attach", "box", pid4)
    assert r.returncode == 9, r
