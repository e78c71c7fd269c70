"""Every input the spec describes is bounded: each request string has a maxLength and each
request list a maxItems (API.md: Limits), so no client can send unbounded text anywhere; and
no request body string admits NUL, which the API refuses in any body."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from app.openapi import generate

# Strings whose format (or enum, or const) already bounds them.
BOUNDED_FORMATS = {"uuid", "date", "date-time"}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rpartition("/")[2]
        schema = spec["components"]["schemas"][name]
    return schema


def _unbounded(spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> Iterator[str]:
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for n, sub in enumerate(schema.get(key, [])):
            yield from _unbounded(spec, sub, f"{where}|{n}", seen)
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and "const" not in schema:
        if schema.get("format") not in BOUNDED_FORMATS and "maxLength" not in schema:
            yield f"{where}: string without maxLength"
        # Request bodies refuse NUL anywhere (app.schemas.common): the schema says so.
        if " body" in where and "format" not in schema and re.search(schema.get("pattern", ""), "\x00"):
            yield f"{where}: string that admits NUL"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: array without maxItems"
        if "items" in schema:
            yield from _unbounded(spec, schema["items"], f"{where}[]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _unbounded(spec, sub, f"{where}.{name}", seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _unbounded(spec, extra, f"{where}.*", seen)


def _inputs(spec: dict[str, Any]) -> Iterator[str]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from _unbounded(
                    spec, parameter["schema"], f"{where} {parameter['in']} {parameter['name']}", set()
                )
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from _unbounded(spec, media["schema"], f"{where} body", set())


def test_every_request_string_is_bounded_every_list_has_max_items_and_no_body_string_admits_nul() -> None:
    problems = sorted(set(_inputs(generate())))
    assert problems == [], "\n".join(problems)


def test_the_walk_finds_what_it_looks_for() -> None:
    spec = {
        "components": {"schemas": {"M": {"type": "object", "properties": {"s": {"type": "string"}}}}},
        "paths": {
            "/x": {
                "post": {
                    "parameters": [{"in": "query", "name": "q", "schema": {"type": "string"}}],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        {"$ref": "#/components/schemas/M"},
                                        {"type": "array", "items": {"type": "string", "format": "uuid"}},
                                    ]
                                }
                            }
                        }
                    },
                }
            }
        },
    }
    assert sorted(_inputs(spec)) == [
        "POST /x body|0.s: string that admits NUL",
        "POST /x body|0.s: string without maxLength",
        "POST /x body|1: array without maxItems",
        "POST /x query q: string without maxLength",
    ]
