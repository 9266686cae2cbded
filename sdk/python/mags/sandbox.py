# SPDX-License-Identifier: MIT
"""What the sandbox API returns (docs/sandboxes.md), as Python objects:
Process (a command started in a running sandbox), ExecResult (what exec()
returns), OutputEvent (one line of a process's output stream), FileInfo (a
file in the sandbox) and WatchEvent (one change seen by files.watch()); and
EventStream, the closable iterator the streams are read through.

Each keeps the API's object in `raw`. Times are the API's RFC 3339 strings.
"""
from __future__ import annotations

import base64
import http.client
import json
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar, Union

from ._http import STREAM_TIMEOUT, quote, set_read_timeout, shutdown
from .errors import MagsConnectionError, MagsError
from .job import Job

SandboxRef = Union[str, Job]
T = TypeVar("T")

PROCESS_ENDED = ("exited", "lost")


def sandbox_id(sandbox: SandboxRef) -> str:
    """The path segment of a sandbox: a Job's id, or the string given (a job
    id or the name of a workspace with a running job)."""
    if isinstance(sandbox, Job):
        return sandbox.id
    if not isinstance(sandbox, str) or not sandbox:
        raise TypeError("sandbox must be a job id, a Job or a workspace name, not %r" % (sandbox,))
    return sandbox


def sandbox_path(sandbox: SandboxRef, *rest: str) -> str:
    """/mags-jobs/ID/REST... for a sandbox reference."""
    return "/".join(["/mags-jobs", quote(sandbox_id(sandbox))] + list(rest))


@dataclass(frozen=True)
class Process:
    """One command started in a sandbox (exec() or spawn()).

    status is "running", "exited" or "lost" (the sandbox's VM restarted or
    stopped while it ran). exit_code is None while it runs, 128+N when
    signal N ended it, 124 after its timeout; error says why an ended
    process has none (it could not be started, it was lost, or deleted).
    output_bytes is the length of its output so far (stdout and stderr, as
    one byte sequence).
    """

    id: int
    command: str
    status: str
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    timed_out: bool = False
    error: Optional[str] = None
    tty: bool = False
    stdin: bool = False
    detached: bool = False
    cwd: Optional[str] = None
    started_at: Optional[str] = None
    ended_at: Optional[str] = None
    output_bytes: int = 0
    cols: Optional[int] = None
    rows: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def done(self) -> bool:
        """True once it has ended (exited, or lost with its VM)."""
        return self.status in PROCESS_ENDED

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "Process":
        """A Process from the API's object."""
        if not isinstance(obj, dict) or "id" not in obj:
            raise MagsError("magsd sent no process object: %r" % (obj,))
        return cls(id=int(obj["id"]), command=str(obj.get("command", "")), status=str(obj.get("status")),
                   exit_code=obj.get("exit_code"), signal=obj.get("signal"), timed_out=bool(obj.get("timed_out")),
                   error=obj.get("error"), tty=bool(obj.get("tty")), stdin=bool(obj.get("stdin")), detached=bool(obj.get("detached")),
                   cwd=obj.get("cwd"), started_at=obj.get("started_at"), ended_at=obj.get("ended_at"),
                   output_bytes=int(obj.get("output_bytes") or 0), cols=obj.get("cols"), rows=obj.get("rows"),
                   raw=obj)

    def __str__(self) -> str:
        text = "process %d %s" % (self.id, self.status)
        if self.exit_code is not None:
            text += " (exit code %d)" % self.exit_code
        return text + ": " + self.command


PidRef = Union[int, Process]


def pid_of(pid: PidRef) -> str:
    """The path segment of a process: its id."""
    if isinstance(pid, Process):
        return str(pid.id)
    if isinstance(pid, bool) or not isinstance(pid, (int, str)) or (isinstance(pid, str) and not pid.isdigit()):
        raise TypeError("a process is its id (an int) or a Process, not %r" % (pid,))
    return str(int(pid))


@dataclass(frozen=True)
class ExecResult:
    """What exec() returns: the exit code (124 after the timeout, 128+N after
    signal N), stdout and stderr as bytes, and the Process as it ended."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    process: Optional[Process] = None

    @property
    def ok(self) -> bool:
        """True when the exit code is 0."""
        return self.exit_code == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return "ExecResult(exit_code=%r, stdout=%r, stderr=%r)" % (
            self.exit_code, self.stdout[:200], self.stderr[:200])


@dataclass(frozen=True)
class OutputEvent:
    """One event of a process's output stream (exec(), process_output()).

    type is one of:
      "start":  the process began (exec only); `process` is it.
      "stdout", "stderr": `data` (bytes) came out at `offset`.
      "lost":   `lost_bytes` bytes before `offset` are no longer kept.
      "exit":   it ended: exit_code, signal, timed_out, status (and error
                when there is no exit code); `offset` is the end of its output.
      "end":    the output kept so far ends at `offset` (a stream without
                follow, of a process still running).
    To read on later, ask process_output() for the offset after the last
    event's bytes: offset + len(data).
    """

    type: str
    offset: Optional[int] = None
    data: bytes = b""
    lost_bytes: int = 0
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    timed_out: bool = False
    status: Optional[str] = None
    error: Optional[str] = None
    process: Optional[Process] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def next_offset(self) -> Optional[int]:
        """Where the output after this event starts."""
        return None if self.offset is None else self.offset + len(self.data)

    TYPES = ("start", "stdout", "stderr", "lost", "exit", "end")

    @classmethod
    def known(cls, obj: Dict[str, Any]) -> Optional["OutputEvent"]:
        """The event of a line, or None for a type this SDK does not know
        (skipped, as the API asks of clients)."""
        return cls.from_api(obj) if obj.get("type") in cls.TYPES else None

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "OutputEvent":
        t = str(obj.get("type"))
        data = b""
        if t in ("stdout", "stderr"):
            try:
                data = base64.b64decode(obj.get("data") or "", validate=True)
            except (ValueError, TypeError) as e:
                raise MagsError("invalid base64 in a %s event: %s" % (t, e)) from e
        proc = obj.get("process")
        return cls(type=t, offset=obj.get("offset"), data=data, lost_bytes=int(obj.get("bytes") or 0),
                   exit_code=obj.get("exit_code"), signal=obj.get("signal"), timed_out=bool(obj.get("timed_out")),
                   status=obj.get("status"), error=obj.get("error"), process=Process.from_api(proc) if isinstance(proc, dict) else None,
                   raw=obj)

    def ended(self, process: Process) -> Process:
        """`process` updated with this exit event's fields."""
        return replace(process, status=self.status or "exited", exit_code=self.exit_code, signal=self.signal,
                       timed_out=self.timed_out, error=self.error,
                       output_bytes=self.offset if self.offset is not None else process.output_bytes)


@dataclass(frozen=True)
class FileInfo:
    """A file in a sandbox: name, path (absolute), type ("file", "dir",
    "symlink" or "other"), size in bytes, mode (the permission bits, an int:
    0o644), mtime (RFC 3339) and target (a symlink's)."""

    name: str
    path: str
    type: str
    size: int = 0
    mode: int = 0
    mtime: Optional[str] = None
    target: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @property
    def is_symlink(self) -> bool:
        return self.type == "symlink"

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "FileInfo":
        if not isinstance(obj, dict) or "path" not in obj:
            raise MagsError("magsd sent no file object: %r" % (obj,))
        mode = obj.get("mode")
        try:
            mode_bits = int(mode, 8) if isinstance(mode, str) else int(mode or 0)
        except ValueError:
            mode_bits = 0
        return cls(name=str(obj.get("name", "")), path=str(obj["path"]), type=str(obj.get("type")),
                   size=int(obj.get("size") or 0), mode=mode_bits, mtime=obj.get("mtime"), target=obj.get("target"),
                   raw=obj)


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by files.watch(): type ("create", "modify", "delete",
    "move_from" or "move_to"), the path it happened to, and is_dir."""

    type: str
    path: str
    is_dir: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    TYPES = ("create", "modify", "delete", "move_from", "move_to")

    @classmethod
    def known(cls, obj: Dict[str, Any]) -> Optional["WatchEvent"]:
        """The event of a line; None for "ready" and types this SDK does not know."""
        return cls.from_api(obj) if obj.get("type") in cls.TYPES else None

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "WatchEvent":
        return cls(type=str(obj.get("type")), path=str(obj.get("path", "")), is_dir=bool(obj.get("dir")), raw=obj)


def parse_line(line: bytes, what: str) -> Optional[Dict[str, Any]]:
    """One NDJSON line as a dict; None for an empty (keep-alive) line."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError as e:
        raise MagsError("invalid line in %s: %s" % (what, e)) from e
    if not isinstance(obj, dict):
        raise MagsError("invalid line in %s: %r" % (what, line[:100]))
    return obj


class EventStream(Iterator[T]):
    """A stream of events read from one HTTP response as they arrive.

    Iterate over it; close() (or leaving a `with` block) ends the HTTP
    response, also from another thread while one is waiting for the next
    event, and the iteration then stops. A stream that has a last event
    (`last`) and breaks off before it raises MagsConnectionError. quiet: a
    stream that may go on a long time (no read timeout of ordinary calls);
    heartbeats: magsd sends an empty line at least every 15 s on it.
    """

    def __init__(self, resp: http.client.HTTPResponse, url: str, what: str,
                 convert: Callable[[Dict[str, Any]], Optional[T]], last: Optional[Callable[[T], bool]] = None,
                 quiet: bool = True, heartbeats: bool = True) -> None:
        self._resp = resp
        self._url = url
        self._what = what
        self._convert = convert
        self._last = last
        self._closed = False
        self._finished = False
        self.complete = False  # the event that ends the stream came
        self._lock = threading.Lock()
        if quiet:
            # the stream may go on for a long time: with heartbeats (an empty line after 15 s
            # without events) a silence of STREAM_TIMEOUT means magsd is gone; without, wait
            set_read_timeout(resp, STREAM_TIMEOUT if heartbeats else None)

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> "EventStream[T]":
        return self

    def __next__(self) -> T:
        while True:
            if self._closed or self._finished:
                raise StopIteration
            obj = self._next_object()
            if obj is None:
                closed = self._closed
                self._finish()
                if self._last is not None and not closed:
                    raise MagsConnectionError("%s from %s ended early" % (self._what, self._url), self._url)
                raise StopIteration
            ev = self._convert(obj)
            if ev is None:
                continue
            if self._last is not None and self._last(ev):
                self.complete = True
                self._finish()
            return ev

    def next_object(self) -> Optional[Dict[str, Any]]:
        """The next line's object as sent (None at the end of the stream)."""
        return self._next_object()

    def _next_object(self) -> Optional[Dict[str, Any]]:
        while True:
            try:
                line = self._resp.readline()
            except (http.client.HTTPException, OSError, ValueError, AttributeError) as e:
                if self._closed:
                    return None
                raise MagsConnectionError("%s from %s broke: %s" % (self._what, self._url, e), self._url) from e
            if not line:
                if self._closed:
                    return None
                self._finished = True
                return None
            obj = parse_line(line, self._what)
            if obj is not None:
                return obj

    def _finish(self) -> None:
        self._finished = True
        self.close()

    def close(self) -> None:
        """Ends the stream (and its HTTP response)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        shutdown(self._resp)

    def __enter__(self) -> "EventStream[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
