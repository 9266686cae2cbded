# SPDX-License-Identifier: MIT
"""The guest agent's protocol handling, without a VM: agent_driver.py runs
mags-agent as a normal process over a socketpair and checks every request
type (EXEC, STDIN, SIGNAL, FILE, INIT, PING, malformed frames, POWEROFF)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_agent_protocol_on_host():
    agent = os.path.join(ROOT, "build/bin/mags-agent")
    r = subprocess.run([sys.executable, os.path.join(HERE, "agent_driver.py"), "--host", agent],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
