# SPDX-License-Identifier: MIT
"""client.files: the files of a running sandbox (docs/sandboxes.md, "Files").

Paths are absolute in the sandbox or relative to /root; a path with a ".."
or "." component is refused by magsd (BadRequestError). Contents stream both
ways: nothing here holds a whole large file in memory (except read(), which
returns the bytes).
"""
from __future__ import annotations

import http.client
import io
import os
import stat as stat_mod
from typing import IO, Any, List, Optional, Union

from ._http import Transport, set_read_timeout
from .errors import MagsConnectionError, MagsError, NotFoundError
from .sandbox import EventStream, FileInfo, SandboxRef, WatchEvent, sandbox_path

COPY_CHUNK = 256 * 1024

WriteData = Union[bytes, bytearray, memoryview, str, IO[bytes]]


def _path_arg(path: Any) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError("path must be a non-empty str, not %r" % (path,))
    return path


def _body_size(f: Any) -> Optional[int]:
    """Bytes left to read in file object f, when that can be known without reading it."""
    try:
        fd = f.fileno()
        st = os.fstat(fd)
        if stat_mod.S_ISREG(st.st_mode):
            return max(0, st.st_size - f.tell())
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    try:
        if f.seekable():
            here = f.tell()
            end = f.seek(0, io.SEEK_END)
            f.seek(here)
            return max(0, end - here)
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    return None


class Files:
    """client.files: read, write, list and watch files in a running sandbox.

    `sandbox` is a job id, a Job, or the name of a workspace with a running
    job. A sandbox whose job has ended is a ConflictError.
    """

    def __init__(self, http: Transport) -> None:
        self._http = http

    def read(self, sandbox: SandboxRef, path: str) -> bytes:
        """The whole content of a file (NotFoundError when there is none,
        BadRequestError for a directory)."""
        buf = io.BytesIO()
        self.read_to(sandbox, path, buf)
        return buf.getvalue()

    def read_to(self, sandbox: SandboxRef, path: str, fileobj: Union[IO[bytes], str, "os.PathLike[str]"]) -> int:
        """Copies a file of any size into `fileobj` (a binary file object, or
        a local path to create), piece by piece; returns the bytes copied."""
        resp = self._http.open("GET", sandbox_path(sandbox, "files"), query={"path": _path_arg(path)},
                               accept="application/octet-stream")
        if isinstance(fileobj, (str, os.PathLike)):  # created once magsd has the file
            with resp, open(fileobj, "wb") as f:
                return self._copy(resp, path, f)
        with resp:
            return self._copy(resp, path, fileobj)

    def _copy(self, resp: http.client.HTTPResponse, path: str, fileobj: IO[bytes]) -> int:
        """Copies a GET /files reply into fileobj in pieces; returns the bytes copied."""
        url = resp.geturl() if hasattr(resp, "geturl") else ""
        expected = resp.getheader("Content-Length")
        total = 0
        while True:
            try:
                chunk = resp.read(COPY_CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise MagsConnectionError("reading %s from %s broke after %d bytes: %s" % (path, url, total, e),
                                          url) from e
            if not chunk:
                break
            fileobj.write(chunk)
            total += len(chunk)
        if expected is not None and expected.isdigit() and int(expected) != total:
            raise MagsConnectionError("reading %s from %s ended after %d of %s bytes" % (path, url, total, expected),
                                      url)
        return total

    def write(self, sandbox: SandboxRef, path: str, data: WriteData, mode: int = 0o644) -> FileInfo:
        """Writes a file (parents are created) and returns its FileInfo.

        data: bytes, a str (written as UTF-8), or a binary file object,
        which is sent as it is read, from its current position: a regular
        file or a seekable stream with its size, anything else (a pipe, a
        socket) chunked. mode: the permission bits (default 0o644).
        """
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise TypeError("mode must be permission bits as an int (e.g. 0o644), not %r" % (mode,))
        query = {"path": _path_arg(path), "mode": "%04o" % mode}
        spath = sandbox_path(sandbox, "files")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
            reply = self._http.send_body("PUT", spath, io.BytesIO(raw), len(raw), query)
        elif hasattr(data, "read"):
            reply = self._http.send_body("PUT", spath, data, _body_size(data), query)
        else:
            raise TypeError("data must be bytes, a str or a binary file object, not %s" % type(data).__name__)
        return FileInfo.from_api(reply)

    def upload(self, sandbox: SandboxRef, local_path: Union[str, "os.PathLike[str]"], path: str,
               mode: Optional[int] = None) -> FileInfo:
        """Copies local file `local_path` to `path` in the sandbox (mode: the
        local file's permission bits unless given)."""
        with open(local_path, "rb") as f:
            bits = stat_mod.S_IMODE(os.fstat(f.fileno()).st_mode) if mode is None else mode
            return self.write(sandbox, path, f, mode=bits)

    def list(self, sandbox: SandboxRef, path: str = "/root") -> List[FileInfo]:
        """The entries of a directory, by name."""
        reply = self._http.call("GET", sandbox_path(sandbox, "files", "list"), query={"path": _path_arg(path)})
        return [FileInfo.from_api(e) for e in (reply or {}).get("entries", [])]

    def stat(self, sandbox: SandboxRef, path: str) -> FileInfo:
        """One file's FileInfo (of a symlink itself, not of its target)."""
        return FileInfo.from_api(self._http.call("GET", sandbox_path(sandbox, "files", "stat"),
                                                 query={"path": _path_arg(path)}))

    def exists(self, sandbox: SandboxRef, path: str) -> bool:
        """True when `path` exists in the sandbox."""
        try:
            self.stat(sandbox, path)
            return True
        except NotFoundError:
            return False

    def remove(self, sandbox: SandboxRef, path: str, recursive: bool = False) -> None:
        """Removes a file or an empty directory; with recursive, a directory
        and all in it. NotFoundError when it is not there; ConflictError for
        a non-empty directory without recursive."""
        self._http.call("DELETE", sandbox_path(sandbox, "files"),
                        query={"path": _path_arg(path), "recursive": "1" if recursive else None})

    def mkdir(self, sandbox: SandboxRef, path: str, parents: bool = True) -> FileInfo:
        """Creates a directory. With parents (the default) missing parents are
        made too and an existing directory is fine; without, an existing one
        is a ConflictError."""
        return FileInfo.from_api(self._http.call("POST", sandbox_path(sandbox, "files", "mkdir"),
                                                 {"path": _path_arg(path), "parents": bool(parents)}))

    def watch(self, sandbox: SandboxRef, path: str = "/root", recursive: bool = False) -> "EventStream[WatchEvent]":
        """Watches a directory: returns, once the watch is in place, an
        iterator of WatchEvent that goes on until it is closed (close(), or a
        `with` block). Changes made after watch() returns are all seen.

            with client.files.watch("box", "/root/out") as events:
                for ev in events:
                    print(ev.type, ev.path)
        """
        spath = sandbox_path(sandbox, "files", "watch")
        resp = self._http.open("GET", spath, query={"path": _path_arg(path), "recursive": "1" if recursive else None},
                               accept="application/x-ndjson")
        url = self._http.url(spath)
        stream: EventStream[WatchEvent] = EventStream(
            resp, url, "the watch of %s" % path,
            WatchEvent.known, quiet=False, heartbeats=False)
        try:
            first = stream.next_object()  # {"type":"ready"}: the watch is in place
            if first is None:
                raise MagsConnectionError("the watch of %s ended before it was ready" % path, url)
            if first.get("type") != "ready":
                raise MagsError("the watch of %s began with %r, not its ready line" % (path, first))
        except BaseException:
            stream.close()
            raise
        set_read_timeout(resp, None)  # events may be hours apart (no heartbeats: TCP keep-alive)
        return stream

