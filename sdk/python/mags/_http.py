# SPDX-License-Identifier: MIT
"""HTTP transport: JSON calls, raw uploads and NDJSON streams against magsd's
REST API (docs/api.yaml), with urllib only.

Every path given here is relative to /api/v1. HTTP errors become the
exceptions of errors.py with magsd's error text; failures to connect, or a
connection that breaks, become MagsConnectionError naming the URL.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any, Dict, Iterator, Mapping, Optional, Union

from ._version import __version__
from ._config import API_PREFIX
from .errors import MagsConnectionError, MagsError, error_for_status

Query = Mapping[str, Union[str, int, bool, None]]

DEFAULT_TIMEOUT = 30.0
# follow streams send an empty keep-alive line every 15 s; allow for a slow host
STREAM_TIMEOUT = 90.0
ERROR_BODY_MAX = 64 * 1024

# what a request may raise when magsd is unreachable or the connection breaks
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


def quote(segment: str) -> str:
    """One path segment, percent-encoded (slashes included)."""
    return urllib.parse.quote(str(segment), safe="")


def _query_string(query: Optional[Query]) -> str:
    if not query:
        return ""
    pairs = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _error_message(err: urllib.error.HTTPError) -> str:
    """magsd's "error" text from an error reply, or a description of the reply."""
    try:
        raw = err.read(ERROR_BODY_MAX)
    except (OSError, http.client.HTTPException):
        raw = b""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    text = text.strip()
    return "HTTP %d %s%s" % (err.code, err.reason, (": " + text[:200]) if text else "")


class Transport:
    """Sends authenticated requests to one magsd.

    base_url is magsd's base URL without /api/v1; timeout is the socket
    timeout of ordinary calls, in seconds.
    """

    def __init__(self, base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout

    def url(self, path: str, query: Optional[Query] = None) -> str:
        """The full URL of API path `path` (e.g. "/mags-jobs")."""
        return self.base_url + API_PREFIX + path + _query_string(query)

    def _open(self, method: str, url: str, data: Any = None, headers: Optional[Dict[str, str]] = None,
              timeout: Optional[float] = None) -> http.client.HTTPResponse:
        """Sends one request; returns the open response of a 2xx answer.

        Raises the mapped MagsError for an HTTP error and MagsConnectionError
        when magsd cannot be reached.
        """
        hdrs = {
            "Authorization": "Bearer " + self.token,
            "Accept": "application/json",
            "User-Agent": "mags-python/" + __version__,
        }
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            with e:
                raise error_for_status(e.code, _error_message(e)) from None
        except _NETWORK_ERRORS as e:
            raise MagsConnectionError("cannot reach magsd at %s: %s" % (url, _reason(e)), url) from e

    def call(self, method: str, path: str, body: Any = None, query: Optional[Query] = None) -> Any:
        """One JSON call; returns the parsed reply."""
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        url = self.url(path, query)
        resp = self._open(method, url, data, headers)
        return _read_json(resp, url)

    def upload(self, path: str, stream: IO[bytes], size: int, query: Optional[Query] = None) -> Any:
        """POSTs `size` raw bytes read from `stream` (sent as read, not held in
        memory); returns the parsed reply."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        url = self.url(path, query)
        resp = self._open("POST", url, stream, headers)
        return _read_json(resp, url)

    def stream_lines(self, path: str, query: Optional[Query] = None) -> Iterator[bytes]:
        """GETs `path` and yields the reply's lines (without line ends) as they
        arrive. Raises MagsConnectionError when the connection breaks."""
        url = self.url(path, query)
        resp = self._open("GET", url, headers={"Accept": "application/x-ndjson"}, timeout=STREAM_TIMEOUT)
        with resp:
            try:
                for line in resp:
                    yield line.rstrip(b"\r\n")
            except _NETWORK_ERRORS as e:
                raise MagsConnectionError("stream from %s broke: %s" % (url, _reason(e)), url) from e


def _reason(err: BaseException) -> str:
    """A short description of a network error."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err_or_text = err.reason
        if not isinstance(err_or_text, BaseException):
            return str(err_or_text)
        err = err_or_text
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _read_json(resp: http.client.HTTPResponse, url: str) -> Any:
    """The reply's body as JSON (None when it is empty)."""
    with resp:
        try:
            raw = resp.read()
        except _NETWORK_ERRORS as e:
            raise MagsConnectionError("reading the reply from %s failed: %s" % (url, _reason(e)), url) from e
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise MagsError("invalid JSON from %s: %s" % (url, e)) from e
