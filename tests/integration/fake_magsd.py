#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""FAKE magsd command line -- for the mags CLI's local-mode tests only.

test_cli_fake_api.py copies this next to a copy of mags as `magsd`, so the CLI's
auto-start path runs it: `token create` prints a token (and keeps it in the
state dir), `--daemon` starts fake_api.py (path in $FAKE_API) on the --listen
port in the background and returns at once, as the real magsd --daemon does.
"""
import os
import subprocess
import sys


def main():
    argv = sys.argv[1:]
    state = os.path.expanduser("~/.mags/local")
    listen = "127.0.0.1:7557"
    with open(os.environ.get("FAKE_MAGSD_LOG", os.devnull), "a") as log:
        log.write(" ".join(argv) + "\n")
    i = 0
    rest = []
    while i < len(argv):
        if argv[i] == "--state-dir":
            state = argv[i + 1]
            i += 2
        elif argv[i] == "--listen":
            listen = argv[i + 1]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    os.makedirs(state, exist_ok=True)
    if rest[:2] == ["token", "create"]:
        with open(os.path.join(state, "token"), "w") as f:
            f.write("local-token-1\n")
        print("local-token-1")
        return 0
    if rest == ["--daemon"]:
        port = listen.rsplit(":", 1)[1]
        subprocess.Popen([sys.executable, os.environ["FAKE_API"], "--port", port,
                          "--token-file", os.path.join(state, "token"),
                          "--pidfile", os.path.join(state, "fake.pid")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        return 0
    print("fake magsd: unexpected arguments %r" % argv, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
