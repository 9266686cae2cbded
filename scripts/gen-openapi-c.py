#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turns docs/api.yaml into a C file holding it as compact JSON, for magsd's
GET /api/v1/openapi.json: gen-openapi-c.py docs/api.yaml > openapi_json.c"""
import json
import sys

import yaml


def main():
    with open(sys.argv[1]) as f:
        spec = yaml.safe_load(f)
    text = json.dumps(spec, separators=(",", ":"), sort_keys=False)
    data = text.encode()
    out = ["/* Generated from %s by scripts/gen-openapi-c.py; do not edit. */" % sys.argv[1],
           '#include "../../src/daemon/openapi.h"', "", "const char api_openapi_json[] = {"]
    for i in range(0, len(data), 16):
        out.append("\t" + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",")
    out += ["\t0x00", "};", "const size_t api_openapi_json_len = %d;" % len(data), ""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
