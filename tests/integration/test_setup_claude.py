# SPDX-License-Identifier: MIT
"""mags setup-claude: installs the Claude Code skill (SKILL.md) once, a second run
is harmless, and what the skill says about mags is true: every command it names
exists and every flag it shows is one the command accepts."""
import os
import re
import subprocess
import tempfile

from conftest import MAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKILL = os.path.join(ROOT, "src", "cli", "skill", "SKILL.md")


def mags(*args, home):
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([MAGS] + list(args), env=env, capture_output=True, text=True, timeout=30)


def test_installs_once_and_again():
    with tempfile.TemporaryDirectory() as home:
        r = mags("setup-claude", home=home)
        assert r.returncode == 0 and "installed" in r.stdout, r.stderr
        path = os.path.join(home, ".claude", "skills", "mags", "SKILL.md")
        with open(path) as f, open(SKILL) as g:
            assert f.read() == g.read()
        r = mags("setup-claude", home=home)
        assert r.returncode == 0 and "up to date" in r.stdout, r.stderr
        with open(path, "a") as f:
            f.write("local edit\n")
        r = mags("setup-claude", home=home)
        assert r.returncode == 0 and "updated" in r.stdout, r.stderr
        assert sorted(os.listdir(os.path.join(home, ".claude", "skills"))) == ["mags"]
        proj = os.path.join(home, "proj", ".claude", "skills")
        r = mags("setup-claude", "--dir", proj, home=home)
        assert r.returncode == 0 and os.path.exists(os.path.join(proj, "mags", "SKILL.md")), r.stderr
        assert mags("setup-claude", "--bogus", home=home).returncode == 2


def test_skill_names_only_real_commands_and_flags():
    with open(SKILL) as f:
        text = f.read()
    assert text.startswith("---\nname: mags\ndescription: ")
    uses = re.findall(r"`(mags [^`]+)`", text)
    assert len(uses) > 15, uses
    with tempfile.TemporaryDirectory() as home:
        for use in uses:
            words = use.split()
            cmd = words[1]
            helptext = mags("help", cmd, home=home)
            assert helptext.returncode == 0, "SKILL.md names `mags %s`, which does not exist" % cmd
            usage = mags(cmd, "--help", home=home).stdout + helptext.stdout
            for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", use):
                assert flag in usage, "SKILL.md shows `%s`, but `mags %s --help` has no %s" % (use, cmd, flag)
