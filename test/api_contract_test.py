#!/usr/bin/env python3
"""The API contract: every answer the server tests received (recorded with ASSENT_API_RECORD)
is checked against the /openapi.json those tests fetched — the operation exists, the status is
documented, the media type is the documented one, and a JSON (or NDJSON) body validates
against the documented JSON Schema; so does every JSON request body the server accepted. Every
operation of the document must have been exercised at least once. Usage:
api_contract_test.py RECORDED.jsonl
"""
import json
import re
import sys

from jsonschema import Draft202012Validator, RefResolver


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def templates(doc):
    """(regex, path template) for each documented path, literal segments first."""
    out = []
    for p in doc["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"
        out.append((re.compile(rx), p, p.count("{")))
    out.sort(key=lambda t: t[2])  # /v1/session before /session/{token}-like templates
    return out


def media(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def main():
    records = load(sys.argv[1])
    docs = [json.loads(r["body"]) for r in records
            if r["method"] == "GET" and r["path"] == "/openapi.json" and r["status"] == 200]
    if not docs:
        print("FAIL no GET /openapi.json among the recorded answers")
        return 1
    doc = docs[0]
    resolver = RefResolver.from_schema(doc)
    Draft202012Validator.check_schema({"$defs": doc.get("components", {}).get("schemas", {})})
    paths = templates(doc)
    failures, checked, seen = [], 0, set()

    def validate(schema, value, what):
        v = Draft202012Validator(schema, resolver=resolver)
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.path))
        for e in errors[:3]:
            where = "/".join(map(str, e.path)) or "(the body)"
            failures.append(f"{what}: at {where}: {e.message[:300]}")
        return not errors

    for r in records:
        path = r["path"].split("?")[0]
        match = next((p for rx, p, _ in paths if rx.match(path)), None)
        what = f"{r['method']} {r['path'][:120]} -> {r['status']}"
        if match is None:
            # A path no route serves: it must be the problem the router answers with.
            if r["status"] != 404:
                failures.append(f"{what}: no documented path matches")
            continue
        op = doc["paths"][match].get(r["method"].lower())
        if op is None:
            if r["status"] != 405:
                failures.append(f"{what}: {r['method']} is not documented for {match}")
            continue
        seen.add((r["method"], match))
        responses = op.get("responses", {})
        spec = responses.get(str(r["status"])) or responses.get(f"{str(r['status'])[0]}XX") \
            or responses.get("default")
        if spec is None:
            failures.append(f"{what}: status {r['status']} is not documented for {r['method']} {match}")
            continue
        checked += 1
        content = spec.get("content", {})
        if not content:
            if r["body"] and r["status"] != 204 and r["method"] != "HEAD":
                failures.append(f"{what}: a body is answered where the document says none")
            continue
        got = media(r["content_type"])
        if got not in content:
            failures.append(f"{what}: answered {got or '(no type)'}, documented {sorted(content)}")
            continue
        schema = content[got].get("schema")
        if schema is None or r.get("truncated"):
            continue
        if got in ("application/json", "application/problem+json"):
            try:
                body = json.loads(r["body"])
            except ValueError:
                failures.append(f"{what}: the body is not JSON")
                continue
            validate(schema, body, what)
        elif got == "application/x-ndjson":
            for i, line in enumerate(r["body"].splitlines()):
                if line.strip() and not validate(schema, json.loads(line), f"{what} line {i + 1}"):
                    break
        # A JSON request body the server accepted is one the document describes.
        if 200 <= r["status"] < 300 and r.get("request") and "requestBody" in op:
            req = op["requestBody"].get("content", {}).get("application/json", {}).get("schema")
            if req is not None:
                try:
                    sent = json.loads(r["request"])
                except ValueError:
                    sent = None
                if sent is not None:
                    validate(req, sent, f"{what} (its request body)")

    missing = [f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops
               if m in ("get", "post", "put", "delete") and (m.upper(), p) not in seen]
    for m in missing:
        failures.append(f"{m}: never exercised by the server tests")
    for f in failures[:60]:
        print("FAIL", f)
    if len(failures) > 60:
        print(f"... and {len(failures) - 60} more")
    print(f"{checked} answers checked against /openapi.json, {len(seen)} operations exercised; "
          f"{'1 failed' if failures else '1 passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
