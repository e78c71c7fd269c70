"""The committed OpenAPI document is the product's face: it must match the app."""

from __future__ import annotations

import json
from pathlib import Path

from app.openapi import generate, render

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_spec_matches_the_app() -> None:
    assert SPEC.read_text(encoding="utf-8") == render(), "openapi/openapi.json drifted: run `make openapi`"


def test_operation_ids_are_handler_names_and_unique() -> None:
    spec = generate()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and i == i.lower() for i in ids)
    assert "create_member" in ids and "get_me" in ids and "list_events" in ids


def test_every_v1_operation_is_tagged_documented_and_declares_its_problems() -> None:
    spec = generate()
    tags = {t["name"] for t in spec["tags"]}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("tags") and set(op["tags"]) <= tags, where
            assert op.get("description"), where
            if not path.startswith("/v1/"):
                continue
            responses = op["responses"]
            for status in ("401", "422", "429", "503"):
                assert status in responses, f"{where} does not declare {status}"
            responses["429"] = spec["components"]["responses"]["RateLimited"]  # declared once, referenced
            assert "Retry-After" in responses["429"]["headers"], where
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], where
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }
            if "{" in path:
                assert "404" in responses, f"{where} has a path id but no 404"
            if method == "post":
                names = {p["name"] for p in op.get("parameters", [])}
                assert "Idempotency-Key" in names, f"{where} does not document Idempotency-Key"
            if method in ("patch", "put"):
                names = {p["name"] for p in op.get("parameters", [])}
                assert "If-Match" in names and "412" in responses, where


def test_only_health_and_metrics_are_never_rate_limited() -> None:
    spec = generate()
    assert {
        op["responses"]["429"]["$ref"]
        for item in spec["paths"].values()
        for op in item.values()
        if "429" in op["responses"]
    } == {"#/components/responses/RateLimited"}
    unlimited = {path for path, item in spec["paths"].items() for op in item.values() if "429" not in op["responses"]}
    assert unlimited == {"/healthz", "/readyz", "/metrics"}


def test_spec_declares_bearer_auth_and_problem_schema() -> None:
    spec = generate()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(problem["required"])
    json.dumps(spec)  # serialisable


def test_the_strictness_and_caching_statuses_are_declared() -> None:
    spec = generate()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            where, responses = f"{method.upper()} {path}", op["responses"]
            names = {p["name"] for p in op.get("parameters", [])}
            assert "422" in responses, f"{where}: unknown query parameters answer 422"
            assert ("415" in responses) is ("requestBody" in op), where
            etag = "ETag" in responses.get("200", {}).get("headers", {})
            assert ("304" in responses) is ("If-None-Match" in names) is (method == "get" and etag), where
    put_strategy = spec["paths"]["/v1/deals/{deal_id}/strategy"]["put"]
    assert (
        "428" in put_strategy["responses"] and "428" not in spec["paths"]["/v1/deals/{deal_id}"]["patch"]["responses"]
    )
