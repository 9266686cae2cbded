# SPDX-License-Identifier: MIT
"""The Mags client: one object per magsd and token, with a method per thing
the REST API does (docs/api.yaml).

    from mags import Mags
    client = Mags()                      # token and URL as the CLI finds them
    job = client.run("echo hello")
    print(job.logs)                      # waits for the end, prints "hello"

Jobs: run, run_and_wait, get, status, logs, stream_logs, wait, stop, list,
update, enable_access, sync. Workspaces, URL aliases and cron schedules are
under client.workspace, client.url_aliases and client.cron.

Long-lived sandboxes (docs/sandboxes.md): new, exec, spawn, processes,
process, process_output, send_stdin, kill, wait_process, resize,
delete_process; their files under client.files.
"""
from __future__ import annotations

import json
import math
import re
import shlex
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _config
from ._http import DEFAULT_TIMEOUT, Transport, quote
from ._options import LocalFile, job_fields, local_files
from .errors import ConflictError, JobTimeoutError, MagsConnectionError, MagsError, NotFoundError
from .files import Files
from .job import Job, LogEntry, Workspace, output_of
from .sandbox import (EventStream, ExecResult, OutputEvent, PidRef, Process, SandboxRef, pid_of, sandbox_path)

JobRef = Union[str, Job]

# the script of a sandbox made by new(): it sleeps until stopped (as `mags new`)
NEW_SCRIPT = "exec sleep 2147483647"
NEW_WAIT = 600.0  # seconds a new sandbox may stay queued
STDIN_CHUNK = 1 << 20  # magsd takes at most 1 MiB of stdin per request
WAIT_STEP = 300  # seconds of one GET /processes/:pid/wait when waiting without limit

POLL_FIRST = 0.2  # seconds between status polls: first, growing by half to ...
POLL_MAX = 1.0    # ... at most this
STREAM_RETRIES = 5  # reconnects of a follow stream in a row without progress

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UNSET: Any = object()
_KEEP_ALIVE: Any = object()
_END: Any = object()


def _job_id(job: JobRef) -> str:
    return job.id if isinstance(job, Job) else str(job)


def _job_path(job: JobRef, *rest: str) -> str:
    return "/".join(["/mags-jobs", quote(_job_id(job))] + list(rest))


class Mags:
    """A client of one magsd.

    token: the API token; default MAGS_TOKEN, MAGS_API_TOKEN, then the token
    in ~/.mags/config.json (`mags login`). api_url: magsd's base URL, with or
    without /api/v1; default MAGS_API_URL, then config.json's api_url, then
    http://127.0.0.1:7557. timeout: seconds a single HTTP call may take.

    Raises AuthenticationError when no token is found.
    """

    def __init__(self, token: Optional[str] = None, api_url: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        token, url = _config.resolve(token, api_url)
        self._http = Transport(url, token, timeout)
        self.workspace = Workspaces(self._http)
        self.url_aliases = UrlAliases(self._http)
        self.cron = CronJobs(self._http)
        self.files = Files(self._http)

    @property
    def api_url(self) -> str:
        """magsd's base URL (without /api/v1)."""
        return self._http.base_url

    def __repr__(self) -> str:
        return "Mags(api_url=%r)" % self.api_url

    # ---- jobs ----------------------------------------------------------------
    def run(self, script: str, **options: Any) -> Job:
        """Submits `script` (a shell command line) and returns the new Job at once.

        Options (all optional; see the README): workspace (str), persist,
        url, ssh, always_on, ephemeral (bool), port, timeout, idle_timeout
        (int), files (list of local paths), base_image (str: a base image to
        start from; True: make the workspace a base image), from_ / from (str),
        startup_command / startup (str), ssh_public_key (str), image (str:
        the guest image to run on, one of magsd's; default magsd's default).

        Files are declared in the submit and then uploaded; the job waits in
        "queued" until all have arrived. If an upload fails, the job is
        stopped and the error raised. Unknown options raise TypeError before
        anything is sent.
        """
        body, files = _job_request(script, options)
        job = Job(self, self._http.call("POST", "/mags-jobs", body))
        if files:
            self._upload_all(job, files)
            job.refresh()
        return job

    def run_and_wait(self, script: str, timeout: Optional[float] = None, job_timeout: Optional[int] = None,
                     **options: Any) -> Job:
        """Runs `script` and waits until the job ends; returns the Job.

        A script that fails is not an exception: look at job.status and
        job.exit_code. `timeout` bounds the wait in seconds (like
        subprocess.run): when it passes the job is stopped and JobTimeoutError
        raised. To limit the script's own run time in the sandbox (it then ends
        with exit code 124), pass job_timeout=SECONDS: it is run()'s timeout.
        """
        if job_timeout is not None:
            options["timeout"] = job_timeout
        job = self.run(script, **options)
        try:
            return self.wait(job, timeout=timeout)
        except JobTimeoutError:
            try:
                job.stop()
            except (ConflictError, NotFoundError):
                pass  # it ended meanwhile
            raise

    def get(self, job: JobRef) -> Job:
        """The job with id `job` (NotFoundError when there is none)."""
        return Job(self, self._http.call("GET", _job_path(job)))

    def status(self, job: JobRef) -> str:
        """The job's status: "queued", "running", "completed" or "failed"."""
        return self.get(job).status

    def logs(self, job: JobRef) -> str:
        """The job's output so far, stdout and stderr in the order written
        (magsd's own "system" lines left out; see stream_logs)."""
        reply = self._http.call("GET", _job_path(job, "logs"))
        return output_of(reply.get("logs", []))

    def stream_logs(self, job: JobRef, since: int = 0) -> Iterator[LogEntry]:
        """Yields the job's log entries as they are written, until it ends.

        Starts after sequence number `since` (0: from the beginning). Entries
        with entry.is_system are magsd's own notes, not the script's output.
        A stream that breaks is resumed where it stopped; MagsConnectionError
        when that fails STREAM_RETRIES times in a row.
        """
        path = _job_path(job, "logs")
        failures = 0
        while True:
            progressed = False
            error: Optional[MagsConnectionError] = None
            try:
                for line in self._http.stream_lines(path, {"follow": True, "since": since or None}):
                    entry = _stream_entry(line)
                    if entry is _KEEP_ALIVE:
                        continue
                    if entry is _END:
                        return
                    since = entry.seq
                    progressed = True
                    yield entry
            except MagsConnectionError as e:
                error = e
            # the stream ended without its final line (magsd restarting, a proxy): resume
            failures = 0 if progressed else failures + 1
            if failures >= STREAM_RETRIES:
                if error is not None:
                    raise error
                raise MagsConnectionError("the log stream of job %s ended early %d times in a row"
                                          % (_job_id(job), failures), self._http.url(path))
            if not progressed:
                time.sleep(1.0)

    def wait(self, job: JobRef, timeout: Optional[float] = None) -> Job:
        """Polls the job until it has ended; returns it.

        Raises JobTimeoutError (the job keeps running) when `timeout` seconds
        pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_FIRST
        while True:
            current = self.get(job)
            if current.done:
                return current
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise JobTimeoutError("job %s still %s after %gs" % (current.id, current.status, timeout), current)
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 1.5, POLL_MAX)

    def stop(self, job: JobRef) -> Job:
        """Stops a queued or running job (it ends "failed", error "stopped").

        ConflictError when it has already ended.
        """
        return Job(self, self._http.call("POST", _job_path(job, "stop")))

    def list(self, status: Optional[str] = None, workspace: Optional[str] = None,
             limit: Optional[int] = None) -> List[Job]:
        """The caller's jobs, newest first (magsd returns 100 unless `limit`
        says otherwise), optionally only those with `status` or of `workspace`."""
        reply = self._http.call("GET", "/mags-jobs", query={"status": status, "workspace": workspace, "limit": limit})
        return [Job(self, j) for j in reply.get("jobs", [])]

    def update(self, job: JobRef, always_on: Any = _UNSET, idle_timeout: Any = _UNSET,
               timeout: Any = _UNSET) -> Job:
        """Changes a job's settings (PATCH): always_on and idle_timeout of a
        running job take effect at once (always_on=False ends a job whose
        command already exited 0); timeout of a queued job replaces its
        limit, of a running one sets a new limit counted from now (0: none).
        None sets idle_timeout/timeout back to magsd's default. A job that
        has ended is a ConflictError."""
        body = {k: v for k, v in (("always_on", always_on), ("idle_timeout", idle_timeout), ("timeout", timeout))
                if v is not _UNSET}
        if not body:
            raise TypeError("update() needs at least one of always_on, idle_timeout, timeout")
        return Job(self, self._http.call("PATCH", _job_path(job), body))

    def enable_access(self, job: JobRef, url: bool = False, port: Optional[int] = None, ssh: bool = False,
                      ssh_public_key: Optional[str] = None) -> Job:
        """Turns on a public URL (guest `port`, default 8080) and/or SSH for a
        running job; returns the job (its url, and raw["ssh"] for SSH)."""
        body: Dict[str, Any] = {}
        if url:
            body["url"] = True
        if port is not None:
            body["port"] = port
        if ssh:
            body["ssh"] = True
        if ssh_public_key is not None:
            body["ssh_public_key"] = ssh_public_key
        if not body:
            raise TypeError("enable_access() needs url=True and/or ssh=True")
        return Job(self, self._http.call("POST", _job_path(job, "access"), body))

    def sync(self, target: JobRef) -> Dict[str, Any]:
        """Pushes a workspace to the object store now, without stopping
        anything. `target` is a job (id or Job: its workspace) or a workspace
        name. Returns the API's SyncResult (workspace, version, chunks, ...)."""
        if isinstance(target, Job) or _UUID.match(target):
            return self._http.call("POST", _job_path(target, "sync"))
        return self.workspace.sync(target)

    # ---- long-lived sandboxes ------------------------------------------------------
    def new(self, name: str, persist: bool = False, image: Optional[str] = None,
            timeout: Optional[float] = NEW_WAIT) -> Job:
        """A long-lived sandbox on workspace `name`, as `mags new NAME`: a job
        that runs until it is stopped. When the workspace already has a
        running job, that job is the sandbox. Returns the Job once it runs
        (its name then works as the `sandbox` of exec() and the rest).

        persist: push the workspace to the object store when it stops.
        image: the guest image to boot (default: magsd's). Raises MagsError
        when the sandbox ends instead of starting, JobTimeoutError when it is
        still queued after `timeout` seconds.
        """
        if not isinstance(name, str) or not name:
            raise TypeError("name must be a non-empty str (a workspace name)")
        for status in ("running", "queued"):
            found = [j for j in self.list(status=status, workspace=name, limit=1)
                     if j.workspace == name and j.status == status]
            if found:
                job = self._started(found[0], timeout)
                if job.status == "running":
                    return job
        fields: Dict[str, Any] = {"workspace": name, "persist": persist}
        if image is not None:
            fields["image"] = image
        job = self._started(self.run(NEW_SCRIPT, **fields), timeout)
        if job.status != "running":
            raise MagsError("sandbox %s did not start: job %s %s%s" % (
                name, job.id, job.status, (": " + job.error) if job.error else ""))
        return job

    def _started(self, job: Job, timeout: Optional[float]) -> Job:
        """The job once it has left "queued"."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = POLL_FIRST / 2
        while job.status == "queued":
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise JobTimeoutError("sandbox job %s still queued after %gs" % (job.id, timeout), job)
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 1.5, POLL_MAX)
            job = self.get(job)
        return job

    def exec(self, sandbox: SandboxRef, command: Union[str, Sequence[str]], *, cwd: Optional[str] = None,
             env: Optional[Mapping[str, str]] = None, timeout: Optional[int] = None,
             stdin: Union[bytes, str, None] = None,
             on_output: Optional[Callable[[OutputEvent], None]] = None) -> ExecResult:
        """Runs `command` in a running sandbox and waits for it to end.

        sandbox: a job id, a Job, or the name of a workspace with a running
        job. command: a shell command line (run by /bin/sh -c), or a list of
        words (quoted for the shell). cwd: its working directory (default
        /root); env: extra environment variables; timeout: seconds it may
        run (then exit code 124). stdin: bytes (or a str, as UTF-8) for its
        standard input, which is then closed; without it, stdin is empty.
        on_output: called with each "stdout"/"stderr" OutputEvent as it
        arrives (to show the output live; it is collected all the same).

        Returns ExecResult(exit_code, stdout, stderr, process); a non-zero
        exit code is not an exception. Output is read as it comes (the
        process is slowed, not cut, while it is read).
        """
        if on_output is not None and not callable(on_output):
            raise TypeError("exec(): on_output must be callable")
        body = _exec_body("exec", command, cwd=cwd, env=env, timeout=timeout, stdin=stdin is not None)
        data = _as_bytes("stdin", stdin) if stdin is not None else None
        path = sandbox_path(sandbox, "exec")
        resp = self._http.open("POST", path, body, accept="application/x-ndjson")
        stream: EventStream[OutputEvent] = EventStream(resp, self._http.url(path), "the exec stream",
                                                       OutputEvent.known, lambda e: e.type == "exit")
        out = bytearray()
        err = bytearray()
        proc: Optional[Process] = None
        end: Optional[OutputEvent] = None
        feeder: Optional[threading.Thread] = None
        feed_error: List[BaseException] = []
        try:
            for ev in stream:
                if ev.type == "start" and ev.process is not None:
                    proc = ev.process
                    if data is not None and feeder is None:
                        feeder = threading.Thread(target=self._feed, args=(sandbox, proc.id, data, feed_error),
                                                  name="mags-exec-stdin", daemon=True)
                        feeder.start()
                elif ev.type in ("stdout", "stderr"):
                    (out if ev.type == "stdout" else err).extend(ev.data)
                    if on_output is not None:
                        on_output(ev)
                elif ev.type == "exit":
                    end = ev
        finally:
            stream.close()
            if feeder is not None:
                feeder.join()
        if end is None:  # pragma: no cover - EventStream raises when the exit line is missing
            raise MagsConnectionError("the exec stream ended before the process did", self._http.url(path))
        if feed_error and end.exit_code is None:
            raise feed_error[0]
        exit_code = end.exit_code if end.exit_code is not None else -1
        return ExecResult(exit_code=exit_code, stdout=bytes(out), stderr=bytes(err),
                          process=end.ended(proc) if proc is not None else None)

    def _feed(self, sandbox: SandboxRef, pid: int, data: bytes, errors: List[BaseException]) -> None:
        """exec()'s stdin, sent while its output is read; a process that ends
        (or closes its stdin) before reading it all is no error."""
        try:
            self.send_stdin(sandbox, pid, data, eof=True)
        except ConflictError:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to exec()
            errors.append(e)

    def spawn(self, sandbox: SandboxRef, command: Union[str, Sequence[str]], *, tty: bool = False,
              stdin: bool = False, cwd: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
              timeout: Optional[int] = None, cols: Optional[int] = None, rows: Optional[int] = None) -> Process:
        """Starts `command` in the background; returns its Process at once.

        tty: give it a terminal (cols x rows, default 80x24; its output is
        then all "stdout", and its stdin is open). stdin: keep its standard
        input open for send_stdin(). Its output is kept (the last 4 MiB)
        for process_output(); wait_process() waits for its end.
        """
        body = _exec_body("spawn", command, cwd=cwd, env=env, timeout=timeout, stdin=stdin, tty=tty, cols=cols,
                          rows=rows)
        body["detach"] = True
        return Process.from_api(self._http.call("POST", sandbox_path(sandbox, "exec"), body))

    def processes(self, sandbox: SandboxRef) -> List[Process]:
        """The sandbox's processes, running and recently ended, by id."""
        reply = self._http.call("GET", sandbox_path(sandbox, "processes"))
        return [Process.from_api(p) for p in (reply or {}).get("processes", [])]

    def process(self, sandbox: SandboxRef, pid: PidRef) -> Process:
        """One process as it is now (NotFoundError when there is none)."""
        return Process.from_api(self._http.call("GET", sandbox_path(sandbox, "processes", pid_of(pid))))

    def process_output(self, sandbox: SandboxRef, pid: PidRef, offset: Union[int, str] = 0,
                       follow: bool = False) -> "EventStream[OutputEvent]":
        """A process's output as OutputEvents ("stdout", "stderr", "lost",
        then "exit" once it has ended), read as they arrive.

        offset: where to start (0: the oldest byte kept; "end": only what
        comes next; or an event's next_offset, to resume). Without follow
        the stream ends with what is there (its last event is "end", or
        "exit"); with follow it goes on until the process exits. The
        iterator can be closed (close(), or a `with` block).
        """
        if not (offset == "end" or (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0)):
            raise TypeError("offset must be a byte offset (an int >= 0) or \"end\", not %r" % (offset,))
        path = sandbox_path(sandbox, "processes", pid_of(pid), "output")
        resp = self._http.open("GET", path, query={"offset": offset, "follow": "1" if follow else None},
                               accept="application/x-ndjson")
        return EventStream(resp, self._http.url(path), "the output of process %s" % pid_of(pid),
                           OutputEvent.known, lambda e: e.type in ("exit", "end"), quiet=follow)

    def send_stdin(self, sandbox: SandboxRef, pid: PidRef, data: Union[bytes, str], eof: bool = False) -> int:
        """Writes `data` (bytes, or a str as UTF-8) to a process's stdin; with
        eof its stdin is closed after it. Returns the bytes written.
        ConflictError when it has no stdin, its stdin is closed or it ended."""
        raw = _as_bytes("data", data)
        path = sandbox_path(sandbox, "processes", pid_of(pid), "stdin")
        sent = 0
        pieces = [raw[i:i + STDIN_CHUNK] for i in range(0, len(raw), STDIN_CHUNK)] or [b""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            reply = self._http.call_raw("POST", path, piece, query={"eof": "1" if eof and last else None})
            sent += int((reply or {}).get("bytes", len(piece)))
        return sent

    def kill(self, sandbox: SandboxRef, pid: PidRef, signal: Union[int, str] = "TERM") -> Process:
        """Sends a signal (a number, or a name: "INT", "SIGINT"; default TERM)
        to a process; returns it. ConflictError when it has ended."""
        if isinstance(signal, bool) or not isinstance(signal, (int, str)):
            raise TypeError("signal must be a number or a name such as \"TERM\", not %r" % (signal,))
        return Process.from_api(self._http.call("POST", sandbox_path(sandbox, "processes", pid_of(pid), "signal"),
                                                {"signal": signal}))

    def wait_process(self, sandbox: SandboxRef, pid: PidRef, timeout: Optional[float] = None) -> Process:
        """Waits for a process to end and returns it (exit_code, signal...).

        With `timeout` (seconds) it returns after that even when the process
        still runs: look at .done (or .status). Without, it waits as long as
        it takes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        path = sandbox_path(sandbox, "processes", pid_of(pid), "wait")
        while True:
            left = WAIT_STEP if deadline is None else min(WAIT_STEP, max(0, math.ceil(deadline - time.monotonic())))
            resp = self._http.open("GET", path, query={"timeout": left}, timeout=left + self._http.timeout)
            with resp:
                raw = resp.read()
            try:
                proc = Process.from_api(json.loads(raw.decode("utf-8")))
            except ValueError as e:
                raise MagsError("invalid JSON from %s: %s" % (self._http.url(path), e)) from e
            if proc.done or (deadline is not None and time.monotonic() >= deadline):
                return proc

    def resize(self, sandbox: SandboxRef, pid: PidRef, cols: int, rows: int) -> Process:
        """Changes the terminal size of a tty process; returns it.
        ConflictError when it has no terminal."""
        for what, v in (("cols", cols), ("rows", rows)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s must be an int, not %r" % (what, v))
        return Process.from_api(self._http.call("POST", sandbox_path(sandbox, "processes", pid_of(pid), "resize"),
                                                {"cols": cols, "rows": rows}))

    def delete_process(self, sandbox: SandboxRef, pid: PidRef) -> None:
        """Forgets a process (killing it with SIGKILL if it still runs)."""
        self._http.call("DELETE", sandbox_path(sandbox, "processes", pid_of(pid)))

    # ---- helpers ---------------------------------------------------------------
    def _upload_all(self, job: Job, files: List[LocalFile]) -> None:
        """Uploads the declared files in order; stops the job if one fails."""
        for f in files:
            try:
                self._upload(job, f)
            except BaseException:
                try:
                    self.stop(job)
                except MagsError:
                    pass
                raise

    def _upload(self, job: Job, f: LocalFile) -> None:
        with open(f.path, "rb") as stream:
            reply = self._http.upload(_job_path(job, "upload"), stream, f.size,
                                      query={"name": f.name, "mode": "%04o" % f.mode})
        if isinstance(reply, dict) and reply.get("size") != f.size:
            raise MagsError("upload of %s: magsd stored %s bytes of %d (did the file change?)"
                            % (f.path, reply.get("size"), f.size))


def _as_bytes(what: str, data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("%s must be bytes or a str, not %s" % (what, type(data).__name__))


def _exec_body(caller: str, command: Any, cwd: Optional[str], env: Optional[Mapping[str, str]],
               timeout: Optional[int], stdin: bool, tty: bool = False, cols: Optional[int] = None,
               rows: Optional[int] = None) -> Dict[str, Any]:
    """The POST /exec body; types are checked before anything is sent."""
    if isinstance(command, (list, tuple)):
        if not command or not all(isinstance(w, str) for w in command):
            raise TypeError("%s(): command must be a str or a non-empty list of str" % caller)
        command = " ".join(shlex.quote(w) for w in command)
    if not isinstance(command, str):
        raise TypeError("%s(): command must be a str or a list of str, not %s" % (caller, type(command).__name__))
    if not command:
        raise ValueError("%s(): command is empty" % caller)
    body: Dict[str, Any] = {"command": command}
    if tty:
        body["tty"] = True
    if stdin:
        body["stdin"] = True
    for what, v in (("cols", cols), ("rows", rows)):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s(): %s must be an int, not %r" % (caller, what, v))
            body[what] = v
    if cwd is not None:
        if not isinstance(cwd, str) or not cwd:
            raise TypeError("%s(): cwd must be a non-empty str" % caller)
        body["cwd"] = cwd
    if env is not None:
        if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise TypeError("%s(): env must be a dict of str to str" % caller)
        body["env"] = dict(env)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise TypeError("%s(): timeout must be seconds (a number >= 0), not %r" % (caller, timeout))
        body["timeout"] = int(math.ceil(timeout))
    return body


def _stream_entry(line: bytes) -> Any:
    """One line of a follow stream: a LogEntry, _KEEP_ALIVE (empty line) or
    _END (the final {"status", "exit_code", "error"} line)."""
    if not line.strip():
        return _KEEP_ALIVE
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError as e:
        raise MagsError("invalid line in a log stream: %s" % e) from e
    if not isinstance(obj, dict):
        raise MagsError("invalid line in a log stream: %r" % line[:100])
    return LogEntry.from_api(obj) if "seq" in obj else _END


def _job_request(script: str, options: Dict[str, Any]) -> Tuple[Dict[str, Any], List[LocalFile]]:
    """The POST /mags-jobs body for run(), and the files to upload after it."""
    if not isinstance(script, str):
        raise TypeError("script must be a str, not %s" % type(script).__name__)
    if not script:
        raise ValueError("script is empty")
    body: Dict[str, Any] = {"script": script, "type": "inline"}
    body.update(job_fields(options))
    files = local_files(options["files"]) if options.get("files") is not None else []
    if files:
        body["files"] = [f.declaration() for f in files]
    return body, files


class Workspaces:
    """client.workspace: the caller's workspaces."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def list(self) -> List[Workspace]:
        """All workspaces, by name."""
        reply = self._http.call("GET", "/workspaces")
        return [Workspace.from_api(w) for w in reply.get("workspaces", [])]

    def get(self, name: str) -> Workspace:
        """One workspace (NotFoundError when there is none)."""
        return Workspace.from_api(self._http.call("GET", "/workspaces/" + quote(name)))

    def delete(self, name: str) -> None:
        """Deletes a workspace here and in the object store. ConflictError
        while a job uses it, or for a base image others were created from."""
        self._http.call("DELETE", "/workspaces/" + quote(name))

    def sync(self, name: str) -> Dict[str, Any]:
        """Pushes the workspace to the object store now; returns the SyncResult."""
        return self._http.call("POST", "/workspaces/%s/sync" % quote(name))


class UrlAliases:
    """client.url_aliases: extra names (ALIAS.DOMAIN) for public URLs."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def create(self, alias: str, workspace: Optional[str] = None, job_id: Optional[JobRef] = None) -> Dict[str, Any]:
        """Gives the URL of `workspace` (or of job `job_id`) the name ALIAS."""
        body: Dict[str, Any] = {"alias": alias}
        if workspace is not None:
            body["workspace"] = workspace
        if job_id is not None:
            body["job_id"] = _job_id(job_id)
        return self._http.call("POST", "/url-aliases", body)

    def list(self) -> List[Dict[str, Any]]:
        """The caller's aliases: dicts with alias, workspace, job_id, url, created_at."""
        return self._http.call("GET", "/url-aliases").get("aliases", [])

    def get(self, alias: str) -> Dict[str, Any]:
        """One alias."""
        return self._http.call("GET", "/url-aliases/" + quote(alias))

    def delete(self, alias: str) -> None:
        """Removes an alias."""
        self._http.call("DELETE", "/url-aliases/" + quote(alias))


class CronJobs:
    """client.cron: schedules that submit a job at the times of a cron expression."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def create(self, expression: str, script: str, name: Optional[str] = None, timezone: Optional[str] = None,
               enabled: Optional[bool] = None, **options: Any) -> Dict[str, Any]:
        """Creates a schedule; `options` are run() options (not always_on;
        files are sent inline). Returns the API's CronJob (id, next_run_at...)."""
        body: Dict[str, Any] = {"expression": expression, "script": script}
        for key, value in (("name", name), ("timezone", timezone), ("enabled", enabled)):
            if value is not None:
                body[key] = value
        body.update(_cron_fields(options, "create"))
        return self._http.call("POST", "/cron-jobs", body)

    def list(self) -> List[Dict[str, Any]]:
        """The caller's schedules, oldest first."""
        return self._http.call("GET", "/cron-jobs").get("cron_jobs", [])

    def get(self, cron_id: str) -> Dict[str, Any]:
        """One schedule."""
        return self._http.call("GET", "/cron-jobs/" + quote(cron_id))

    def update(self, cron_id: str, **fields: Any) -> Dict[str, Any]:
        """Changes a schedule: expression, script, name, timezone, enabled
        and run() options; a run option set to None is removed."""
        body: Dict[str, Any] = {}
        for key in ("expression", "script", "name", "timezone", "enabled"):
            if key in fields:
                body[key] = fields.pop(key)
        body.update(_cron_fields(fields, "update", keep_none=True))
        if not body:
            raise TypeError("update() needs at least one field to change")
        return self._http.call("PATCH", "/cron-jobs/" + quote(cron_id), body)

    def delete(self, cron_id: str) -> None:
        """Deletes a schedule (the jobs it submitted stay)."""
        self._http.call("DELETE", "/cron-jobs/" + quote(cron_id))


def _cron_fields(options: Dict[str, Any], caller: str, keep_none: bool = False) -> Dict[str, Any]:
    """Run options as a schedule's fields: files go inline (content_base64)."""
    fields = job_fields(options, caller=caller, keep_none=keep_none)
    if options.get("files") is not None:
        fields["files"] = [f.inline() for f in local_files(options["files"])]
    elif keep_none and "files" in options:
        fields["files"] = None
    return fields
