#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Compiles the files of a directory into C, for magsd to serve (the dashboard):
embed-files.py DIR > dashboard_files.c. Each file becomes a byte array in the
table dashboard_files[] (path relative to DIR, content type, bytes, length)."""
import os
import sys

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon", ".json": "application/json", ".txt": "text/plain; charset=utf-8"}


def main():
    root = sys.argv[1]
    files = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in sorted(names):
            if n.startswith("."):
                continue
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            ext = os.path.splitext(n)[1].lower()
            with open(full, "rb") as f:
                files.append((rel, TYPES.get(ext, "application/octet-stream"), f.read()))
    out = ["/* Generated from %s/ by scripts/embed-files.py; do not edit. */" % root,
           '#include "../../src/daemon/static.h"', ""]
    for i, (_, _, data) in enumerate(files):
        out.append("static const unsigned char f%d[] = {" % i)
        for k in range(0, len(data), 16):
            out.append("\t" + ", ".join("0x%02x" % b for b in data[k:k + 16]) + ",")
        out.append("\t0x00\n};")
    out.append("const struct static_file dashboard_files[] = {")
    for i, (rel, typ, data) in enumerate(files):
        out.append('\t{ "%s", "%s", f%d, %d },' % (rel, typ, i, len(data)))
    out += ["};", "const size_t dashboard_nfiles = %d;" % len(files), ""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
