# SPDX-License-Identifier: MIT
"""Checks magsd's JSON replies against docs/api.yaml, the API's one description.

A small validator for the subset of OpenAPI 3 the file uses: $ref, type,
nullable, required, properties, additionalProperties (as a schema), items,
enum, minimum/maximum, pattern, oneOf. Every reply the integration harness
receives goes through check_reply(); a reply that does not match its
documented schema fails the test that made the call. The lines of NDJSON
streams (application/x-ndjson) are checked one by one with check_ndjson_line().
"""
import os
import re

import yaml

SPEC_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "docs", "api.yaml")

with open(SPEC_PATH) as f:
    SPEC = yaml.safe_load(f)

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        cur = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            cur = cur[part]
        node = cur
    return node


def validate(value, schema, where="reply"):
    """Raises AssertionError naming the first place value breaks schema."""
    schema = resolve(schema)
    if "oneOf" in schema:
        if value is None and schema.get("nullable"):
            return
        errors = []
        for i, alt in enumerate(schema["oneOf"]):
            try:
                validate(value, alt, "%s (alternative %d)" % (where, i + 1))
            except AssertionError as e:
                errors.append(str(e))
        matched = len(schema["oneOf"]) - len(errors)
        assert matched == 1, "%s: %r matches %d of the oneOf alternatives%s" % (
            where, value, matched, (": " + "; ".join(errors)) if errors else "")
        return
    if value is None:
        assert schema.get("nullable"), "%s is null but not nullable" % where
        return
    t = schema.get("type")
    if t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), "%s: %r is not an integer" % (where, value)
    elif t == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), "%s: %r is not a number" % (where, value)
    elif t:
        assert isinstance(value, TYPES[t]), "%s: %r is not %s" % (where, value, t)
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %s" % (where, value, schema["enum"])
    if "minimum" in schema:
        assert value >= schema["minimum"], "%s: %r < %s" % (where, value, schema["minimum"])
    if "maximum" in schema:
        assert value <= schema["maximum"], "%s: %r > %s" % (where, value, schema["maximum"])
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), "%s: %r does not match %s" % (where, value, schema["pattern"])
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, "%s: missing %r" % (where, key)
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key in value:
                validate(value[key], sub, "%s.%s" % (where, key))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in props:
                    validate(value[key], extra, "%s.%s" % (where, key))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], "%s[%d]" % (where, i))


def _operation(method, path):
    for template, ops in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            op = ops.get(method.lower())
            if op:
                return op
    return None


def check_reply(method, path, status, body):
    """Validates one JSON reply; path is relative to /api/v1, without the query."""
    path = path.split("?", 1)[0]
    if status >= 400:
        validate(body, SPEC["components"]["responses"]["Error"]["content"]["application/json"]["schema"],
                 "%s %s error body" % (method, path))
        assert body["code"] == status, "%s %s: code %r but HTTP %d" % (method, path, body["code"], status)
        return
    op = _operation(method, path)
    assert op, "%s %s answered %d but is not in docs/api.yaml" % (method, path, status)
    resp = resolve(op["responses"].get(str(status)) or {})
    assert resp, "%s %s: status %d is not documented" % (method, path, status)
    schema = resp.get("content", {}).get("application/json", {}).get("schema")
    if schema:
        validate(body, schema, "%s %s" % (method, path))


def check_ndjson_line(method, path, obj, status=200):
    """Validates one line (parsed) of an NDJSON stream reply against the
    operation's application/x-ndjson schema (the schema of one line)."""
    path = path.split("?", 1)[0]
    op = _operation(method, path)
    assert op, "%s %s streamed but is not in docs/api.yaml" % (method, path)
    resp = resolve(op["responses"].get(str(status)) or {})
    content = resp.get("content", {})
    schema = (content.get("application/x-ndjson") or content.get("text/x-ndjson") or {}).get("schema")
    assert schema, "%s %s: no NDJSON schema for status %d" % (method, path, status)
    validate(obj, schema, "%s %s line" % (method, path))
