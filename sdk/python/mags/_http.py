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
import socket
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
# a request body is sent in pieces of this size
SEND_CHUNK = 256 * 1024


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


def _error_message(err: Any) -> str:
    """magsd's "error" text from an error reply (an HTTPError or an
    http.client.HTTPResponse), or a description of the reply."""
    try:
        raw = err.read(ERROR_BODY_MAX)
    except (OSError, http.client.HTTPException):
        raw = b""
    code = getattr(err, "code", None) or getattr(err, "status", 0)
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    text = text.strip()
    return "HTTP %d %s%s" % (code, err.reason, (": " + text[:200]) if text else "")


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
        when magsd cannot be reached. `timeout` bounds the connect and each
        read (default: the transport's timeout).
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

    def call_raw(self, method: str, path: str, data: bytes, query: Optional[Query] = None) -> Any:
        """One call with a raw (application/octet-stream) body; returns the parsed reply."""
        url = self.url(path, query)
        resp = self._open(method, url, bytes(data), {"Content-Type": "application/octet-stream"})
        return _read_json(resp, url)

    def open(self, method: str, path: str, body: Any = None, query: Optional[Query] = None,
             accept: str = "application/json", timeout: Optional[float] = None) -> http.client.HTTPResponse:
        """Sends a request (with a JSON body, if any) and returns the open
        response once its headers are in, for the caller to read as it wants.

        timeout: seconds the connect and each read may take (default: the
        transport's); a stream that may stay quiet a long time changes it
        with set_read_timeout() once its headers are in.
        """
        data = None
        headers = {"Accept": accept}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return self._open(method, self.url(path, query), data, headers, timeout=timeout)

    def send_body(self, method: str, path: str, stream: Any, size: Optional[int],
                  query: Optional[Query] = None) -> Any:
        """Sends a raw body read from `stream` (a binary file object) in
        pieces, never all of it in memory: with Content-Length `size`, or
        chunked when size is None. Returns the parsed JSON reply.

        Uses http.client directly so that an error reply that magsd sends
        before it has read the whole body (a bad path, say) is still read
        and raised as its MagsError rather than as a broken pipe.
        """
        url = self.url(path, query)
        parts = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        send_error: Optional[BaseException] = None
        try:
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                conn.putheader("Authorization", "Bearer " + self.token)
                conn.putheader("Accept", "application/json")
                conn.putheader("User-Agent", "mags-python/" + __version__)
                conn.putheader("Content-Type", "application/octet-stream")
                if size is None:
                    conn.putheader("Transfer-Encoding", "chunked")
                else:
                    conn.putheader("Content-Length", str(size))
                conn.endheaders()
            except _NETWORK_ERRORS as e:
                raise MagsConnectionError("cannot reach magsd at %s: %s" % (url, _reason(e)), url) from e
            sent = 0
            try:
                while size is None or sent < size:
                    want = SEND_CHUNK if size is None else min(SEND_CHUNK, size - sent)
                    chunk = stream.read(want)
                    if isinstance(chunk, str):
                        raise TypeError("the file must be opened in binary mode ('rb')")
                    if not chunk:
                        break
                    sent += len(chunk)
                    if size is None:
                        conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    else:
                        conn.send(chunk)
                if size is None:
                    conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError) as e:
                send_error = e  # magsd answered early (an error): read its reply below
            except _NETWORK_ERRORS as e:
                raise MagsConnectionError("sending to %s failed after %d bytes: %s" % (url, sent, _reason(e)),
                                          url) from e
            if send_error is None and size is not None and sent != size:
                raise MagsError("the body ended after %d of %d bytes (did the file change?)" % (sent, size))
            if conn.sock is not None:
                # magsd answers once the sandbox has the whole file: allow for a slow guest
                conn.sock.settimeout(max(self.timeout, STREAM_TIMEOUT))
            try:
                resp = conn.getresponse()
            except _NETWORK_ERRORS as e:
                why = send_error or e
                raise MagsConnectionError("sending to %s failed: %s" % (url, _reason(why)), url) from why
            if resp.status >= 400:
                with resp:
                    raise error_for_status(resp.status, _error_message(resp))
            return _read_json(resp, url)
        finally:
            conn.close()

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


def set_read_timeout(resp: http.client.HTTPResponse, timeout: Optional[float]) -> None:
    """Changes the socket timeout of an open response, e.g. once a stream
    that may stay quiet a long time has begun. None: wait for ever, with TCP
    keep-alive probes to notice a magsd that vanished without closing."""
    sock = _socket_of(resp)
    if sock is None:
        return
    try:
        sock.settimeout(timeout)
        if timeout is None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for opt, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
                if hasattr(socket, opt):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
    except OSError:
        pass


def shutdown(resp: http.client.HTTPResponse) -> None:
    """Ends an open response, also one another thread is blocked reading."""
    sock = _socket_of(resp)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        resp.close()
    except Exception:  # noqa: BLE001 - a reader in another thread may hold the buffer
        pass


def _socket_of(resp: Any) -> Optional[socket.socket]:
    fp = getattr(resp, "fp", None)
    raw = getattr(fp, "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


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
