# SPDX-License-Identifier: MIT
"""Run options: the keyword arguments of Mags.run() (and of cron schedules)
checked and turned into the fields of POST /mags-jobs (docs/api.yaml,
JobRequest), the way `mags run` does it (src/cli/run_opts.c).

Everything here runs before any request: an unknown option is a TypeError
naming it, a value of the wrong type a TypeError, files that cannot be sent a
ValueError or OSError.
"""
from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Type

FILE_MAX = 1 << 30  # magsd's limit on one uploaded file

# option name -> (API field, expected type); files and base_image are special
_SIMPLE: Dict[str, Tuple[str, Type[Any]]] = {
    "workspace": ("workspace", str),
    "persist": ("persist", bool),
    "url": ("url", bool),
    "port": ("port", int),
    "ssh": ("ssh", bool),
    "ssh_public_key": ("ssh_public_key", str),
    "always_on": ("always_on", bool),
    "idle_timeout": ("idle_timeout", int),
    "timeout": ("timeout", int),
    "from_": ("from", str),
    "from": ("from", str),
    "ephemeral": ("ephemeral", bool),
    "startup_command": ("startup_command", str),
    "startup": ("startup_command", str),
    "image": ("image", str),
}
_SPECIAL = ("files", "base_image")
RUN_OPTIONS = tuple(sorted(list(_SIMPLE) + list(_SPECIAL)))


@dataclass(frozen=True)
class LocalFile:
    """A local file to put in the sandbox's working directory under `name`."""

    path: str
    name: str
    size: int
    mode: int

    def declaration(self) -> Dict[str, Any]:
        """The file as declared in the submit; it is uploaded afterwards."""
        return {"name": self.name, "size": self.size, "mode": self.mode}

    def inline(self) -> Dict[str, Any]:
        """The file with its content inline (what cron schedules need)."""
        with open(self.path, "rb") as f:
            content = f.read()
        return {"name": self.name, "mode": self.mode, "content_base64": base64.b64encode(content).decode("ascii")}


def _type_name(t: Type[Any]) -> str:
    return {bool: "a bool", int: "an int", str: "a str"}.get(t, t.__name__)


def _check_type(option: str, value: Any, expected: Type[Any]) -> None:
    ok = isinstance(value, expected)
    if expected is int and isinstance(value, bool):
        ok = False  # True is an int to Python, not a number of seconds
    if not ok:
        raise TypeError("option %r must be %s, not %s" % (option, _type_name(expected), type(value).__name__))


def _set_field(fields: Dict[str, Any], given: Dict[str, str], field: str, option: str, value: Any) -> None:
    """Sets one API field, refusing two options that name the same field."""
    if field in given:
        raise ValueError("options %r and %r both set %r: give one" % (given[field], option, field))
    given[field] = option
    fields[field] = value


def job_fields(options: Mapping[str, Any], caller: str = "run", keep_none: bool = False) -> Dict[str, Any]:
    """The API fields for `options` (all but files).

    None means "not given" and is left out, unless keep_none (PATCH of a cron
    schedule, where null removes a run flag). base_image may be a str (the
    base image to start from: the API's "from") or a bool (make this workspace
    a base image: the API's "base_image").
    """
    fields: Dict[str, Any] = {}
    given: Dict[str, str] = {}
    for option, value in options.items():
        if option not in _SIMPLE and option not in _SPECIAL:
            raise TypeError("%s() got an unknown option %r (options: %s)" % (caller, option, ", ".join(RUN_OPTIONS)))
        if option == "files":
            continue
        if option == "base_image":
            field = "from" if isinstance(value, str) else "base_image"
            if value is not None and not isinstance(value, (str, bool)):
                raise TypeError("option 'base_image' must be a str (a base image to start from) or a bool "
                                "(make this workspace a base image), not %s" % type(value).__name__)
        else:
            field, expected = _SIMPLE[option]
            if value is not None:
                _check_type(option, value, expected)
        if value is None and not keep_none:
            continue
        _set_field(fields, given, field, option, value)
    return fields


def file_name(path: str) -> str:
    """The name a local path gets in the sandbox: its last component."""
    return os.path.basename(path.rstrip("/"))


def local_files(paths: Any) -> List[LocalFile]:
    """Checks the `files` option: a list of paths to regular files of at most
    1 GiB, no two with the same file name."""
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        raise TypeError("option 'files' must be a list of paths, not %s" % type(paths).__name__)
    out: List[LocalFile] = []
    seen: Dict[str, str] = {}
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError("option 'files': %r is not a path" % (p,))
        path = os.fspath(p)
        if not isinstance(path, str):
            raise TypeError("option 'files': %r is not a str path" % (p,))
        name = file_name(path)
        if name in ("", ".", ".."):
            raise ValueError("files: %r has no file name" % path)
        if name in seen:
            raise ValueError("files: %r and %r would both be %r in the sandbox" % (seen[name], path, name))
        seen[name] = path
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("files: %r is not a regular file" % path)
        if st.st_size > FILE_MAX:
            raise ValueError("files: %r is %d bytes, more than the 1 GiB limit" % (path, st.st_size))
        out.append(LocalFile(path=path, name=name, size=st.st_size, mode=stat.S_IMODE(st.st_mode) & 0o777))
    return out
