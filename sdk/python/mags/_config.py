# SPDX-License-Identifier: MIT
"""Where the SDK finds its token and magsd's URL.

The same places the `mags` CLI uses (src/cli/config.c), in this order:
the constructor's arguments, the environment (MAGS_TOKEN, alias
MAGS_API_TOKEN; MAGS_API_URL), then ~/.mags/config.json
(`{"api_url": ..., "token": ..., "local": ...}`, written by `mags login` or by
the CLI's local mode). Empty values count as unset.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

from .errors import AuthenticationError, MagsError

DEFAULT_API_URL = "http://127.0.0.1:7557"
API_PREFIX = "/api/v1"

NO_TOKEN_HELP = ("no Mags API token: pass Mags(token=...), set MAGS_TOKEN, "
                 "or run `mags login` (it saves one in ~/.mags/config.json)")


def config_path() -> Optional[str]:
    """~/.mags/config.json, or None when there is no home directory."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        return None
    return os.path.join(home, ".mags", "config.json")


def read_config() -> Dict[str, Any]:
    """The CLI's config file as a dict; {} when it does not exist.

    Raises MagsError when it exists but is not a JSON object.
    """
    path = config_path()
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        raise MagsError("cannot read %s: %s" % (path, e.strerror or e)) from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise MagsError("%s: invalid JSON (%s)" % (path, e)) from e
    if not isinstance(data, dict):
        raise MagsError("%s: not a JSON object" % path)
    return data


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def _file_str(config: Dict[str, Any], key: str) -> Optional[str]:
    value = config.get(key)
    return value if isinstance(value, str) and value else None


def normalize_url(url: str) -> str:
    """A base URL without trailing slashes or /api/v1 (both spellings accepted)."""
    url = url.strip()
    while True:
        url = url.rstrip("/")
        if url.endswith(API_PREFIX):
            url = url[: -len(API_PREFIX)]
        else:
            return url


def resolve(token: Optional[str], api_url: Optional[str]) -> Tuple[str, str]:
    """(token, base URL without /api/v1) from arguments, environment and config file.

    Raises AuthenticationError when no token is found anywhere, ValueError for
    a URL that is not http(s).
    """
    token = token or _env("MAGS_TOKEN") or _env("MAGS_API_TOKEN")
    url = api_url or _env("MAGS_API_URL")
    if not token or not url:
        config = read_config()
        token = token or _file_str(config, "token")
        url = url or _file_str(config, "api_url")
    if not token:
        raise AuthenticationError(NO_TOKEN_HELP)
    url = normalize_url(url or DEFAULT_API_URL)
    if not url.startswith(("http://", "https://")):
        raise ValueError("api_url %r: expected http://HOST:PORT or https://HOST (with or without /api/v1)" % url)
    return token, url
