# SPDX-License-Identifier: MIT
"""Mags: run code in sandboxes (small VMs) on your own magsd.

    from mags import Mags
    client = Mags()
    job = client.run("echo hello")
    print(job.logs)

    box = client.new("box")                      # a sandbox that stays up
    r = client.exec("box", "uname -a")           # ExecResult(exit_code, stdout, stderr)
    client.files.write("box", "data.csv", b"a,b\n")

See Mags for the methods, Job, Process, ExecResult and FileInfo for what they
return and mags.errors for the exceptions.
"""
from ._version import __version__
from .client import CronJobs, Mags, UrlAliases, Workspaces
from .files import Files
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    JobTimeoutError,
    MagsConnectionError,
    MagsError,
    NotFoundError,
    ServerError,
)
from .job import Job, LogEntry, Workspace
from .sandbox import EventStream, ExecResult, FileInfo, OutputEvent, Process, WatchEvent

__all__ = [
    "__version__",
    "Mags",
    "Job",
    "LogEntry",
    "Workspace",
    "Workspaces",
    "UrlAliases",
    "CronJobs",
    "Files",
    "Process",
    "ExecResult",
    "OutputEvent",
    "FileInfo",
    "WatchEvent",
    "EventStream",
    "MagsError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "ServerError",
    "MagsConnectionError",
    "JobTimeoutError",
]
