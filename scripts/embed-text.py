#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turns a text file into a C string definition: embed-text.py FILE NAME > out.c
(const char NAME[] = "...";), for texts the CLI writes out (the Claude skill)."""
import sys


def main():
    path, name = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = ["/* Generated from %s by scripts/embed-text.py; do not edit. */" % path,
           "extern const char %s[];" % name, "const char %s[] =" % name]
    for line in text.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        out.append('\t"%s"' % esc)
    out[-1] += ";"
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
