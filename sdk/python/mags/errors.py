# SPDX-License-Identifier: MIT
"""Exceptions of the Mags SDK.

Every error the SDK raises on purpose is a MagsError. HTTP errors from magsd
map to a subclass by status code (error_for_status); the API's own error text
("error" in its `{"error": ..., "code": N}` body) is the message. Failures to
reach magsd at all are MagsConnectionError, and a wait that runs out of time is
JobTimeoutError.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .job import Job


class MagsError(Exception):
    """Base class of the SDK's errors.

    Attributes:
        message: what went wrong (for HTTP errors, magsd's own text).
        status: the HTTP status code, or None when no HTTP answer is involved.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return "%s (HTTP %d)" % (self.message, self.status)


class BadRequestError(MagsError):
    """400 or 413: invalid parameters, a missing field, or a body too large."""


class AuthenticationError(MagsError):
    """401: the token is missing or invalid (also raised before any request when
    no token can be found at all)."""


class NotFoundError(MagsError):
    """404: no such job, workspace, alias or schedule (or another user's)."""


class ConflictError(MagsError):
    """409: the resource exists, or is in a state that does not allow the call
    (e.g. stopping a job that already ended)."""


class ServerError(MagsError):
    """5xx: magsd failed to do what was asked."""


class MagsConnectionError(MagsError):
    """magsd could not be reached, or the connection broke.

    Attributes:
        url: the URL that was being requested.
    """

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class JobTimeoutError(MagsError, TimeoutError):
    """A job did not end within the time given to wait for it.

    Attributes:
        job: the job as last seen.
    """

    def __init__(self, message: str, job: "Job") -> None:
        super().__init__(message)
        self.job = job


def error_for_status(status: int, message: str) -> MagsError:
    """The exception for an HTTP error `status` carrying `message`."""
    if status in (400, 413):
        return BadRequestError(message, status)
    if status == 401:
        return AuthenticationError(message, status)
    if status == 404:
        return NotFoundError(message, status)
    if status == 409:
        return ConflictError(message, status)
    if status >= 500:
        return ServerError(message, status)
    return MagsError(message, status)
