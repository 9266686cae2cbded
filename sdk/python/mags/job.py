# SPDX-License-Identifier: MIT
"""What the API returns, as Python objects: Job (a sandbox run), LogEntry
(one piece of its output) and Workspace.

A Job keeps the API's object in `raw` and reads its attributes from there, so
refresh() updates them all. Times are the API's ISO 8601 strings (UTC).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .client import Mags

ENDED = ("completed", "failed")


@dataclass(frozen=True)
class LogEntry:
    """One piece of a job's output.

    stream is "stdout", "stderr" or "system" (magsd's own notes: restarts,
    cron firings, startup commands...); seq orders entries within a job.
    """

    seq: int
    stream: str
    data: str
    time: Optional[str] = None

    @property
    def is_system(self) -> bool:
        """True for magsd's own lines rather than the script's output."""
        return self.stream == "system"

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "LogEntry":
        """A LogEntry from the API's {"seq", "stream", "data"[, "time"]}."""
        return cls(seq=int(obj["seq"]), stream=str(obj["stream"]), data=str(obj.get("data", "")),
                   time=obj.get("time"))


@dataclass(frozen=True)
class Workspace:
    """A workspace as GET /workspaces describes it (the API's object in raw)."""

    name: str
    persistent: bool
    base_image: bool
    from_: Optional[str]
    in_use_by: Optional[str]
    size_bytes: int
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, obj: Dict[str, Any]) -> "Workspace":
        """A Workspace from the API's object."""
        return cls(name=obj["name"], persistent=bool(obj.get("persistent")), base_image=bool(obj.get("base_image")),
                   from_=obj.get("from"), in_use_by=obj.get("in_use_by"), size_bytes=int(obj.get("size_bytes") or 0),
                   raw=obj)


def output_of(entries: Any) -> str:
    """The script's output (stdout and stderr in order) of a list of API log entries."""
    return "".join(e.get("data", "") for e in entries if e.get("stream") in ("stdout", "stderr"))


class Job:
    """One job: a script run in a sandbox.

    Attributes read the last reply seen (see refresh()): id, status ("queued",
    "running", "completed" or "failed"), exit_code (None until it ends, and
    after a sandbox failure; 124 after a timeout), error (why it failed, e.g.
    "stopped"), url (its public URL, if any), workspace, image (the guest
    image it runs on), always_on, and created_at / started_at / finished_at.
    `raw` is the API's whole object.
    """

    def __init__(self, client: "Mags", raw: Dict[str, Any]) -> None:
        self._client = client
        self.raw: Dict[str, Any] = raw
        self._logs: Optional[str] = None  # the output, once the job has ended

    # ---- attributes --------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.raw["id"])

    @property
    def status(self) -> str:
        return str(self.raw.get("status"))

    @property
    def exit_code(self) -> Optional[int]:
        return self.raw.get("exit_code")

    @property
    def error(self) -> Optional[str]:
        return self.raw.get("error")

    @property
    def url(self) -> Optional[str]:
        return self.raw.get("url")

    @property
    def workspace(self) -> Optional[str]:
        return self.raw.get("workspace")

    @property
    def image(self) -> Optional[str]:
        """The guest image the job runs on ("debian", "busybox", ...): the
        one asked for, or magsd's default when none was."""
        return self.raw.get("image")

    @property
    def always_on(self) -> bool:
        return bool(self.raw.get("always_on"))

    @property
    def created_at(self) -> Optional[str]:
        return self.raw.get("created_at")

    @property
    def started_at(self) -> Optional[str]:
        return self.raw.get("started_at")

    @property
    def finished_at(self) -> Optional[str]:
        return self.raw.get("finished_at")

    @property
    def done(self) -> bool:
        """True once the job has ended (completed or failed)."""
        return self.status in ENDED

    @property
    def logs(self) -> str:
        """The job's output, stdout and stderr in the order written.

        A job that has not ended (and is not always-on) is waited for first,
        so this is its whole output; an always-on job gives what it has
        written so far.
        """
        if self._logs is not None:
            return self._logs
        if not self.done and not self.always_on:
            self.wait()
        text = self._client.logs(self.id)
        if self.done:
            self._logs = text
        return text

    # ---- actions -----------------------------------------------------------
    def refresh(self) -> "Job":
        """Reads the job again; returns self."""
        self._update(self._client.get(self.id).raw)
        return self

    def wait(self, timeout: Optional[float] = None) -> "Job":
        """Waits until the job has ended; returns self.

        Raises JobTimeoutError (the job keeps running) when `timeout` seconds
        pass first.
        """
        self._update(self._client.wait(self.id, timeout=timeout).raw)
        return self

    def stop(self) -> "Job":
        """Stops the job (ConflictError if it already ended); returns self."""
        self._update(self._client.stop(self.id).raw)
        return self

    def stream_logs(self) -> Iterator[LogEntry]:
        """Follows the output live until the job ends (see Mags.stream_logs)."""
        return self._client.stream_logs(self.id)

    def _update(self, raw: Dict[str, Any]) -> None:
        self.raw = raw

    # ---- display -----------------------------------------------------------
    def __str__(self) -> str:
        text = "job %s %s" % (self.id, self.status)
        if self.exit_code is not None:
            text += " (exit code %d)" % self.exit_code
        if self.error:
            text += ": " + self.error
        if self.url:
            text += " " + self.url
        return text

    def __repr__(self) -> str:
        return "Job(id=%r, status=%r, exit_code=%r)" % (self.id, self.status, self.exit_code)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)
