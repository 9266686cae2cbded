# SPDX-License-Identifier: MIT
"""Mags: run code in sandboxes (small VMs) on your own magsd.

    from mags import Mags
    client = Mags()
    job = client.run("echo hello")
    print(job.logs)

See Mags for the methods, Job for what they return and mags.errors for the
exceptions.
"""
from ._version import __version__
from .client import CronJobs, Mags, UrlAliases, Workspaces
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

__all__ = [
    "__version__",
    "Mags",
    "Job",
    "LogEntry",
    "Workspace",
    "Workspaces",
    "UrlAliases",
    "CronJobs",
    "MagsError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "ServerError",
    "MagsConnectionError",
    "JobTimeoutError",
]
