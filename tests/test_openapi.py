"""The committed OpenAPI document is the product's face: it must match the app."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from app.main import create_app
from app.openapi import derive_links, generate, operations, render, resources
from app.schemas.common import Page
from app.settings import Settings

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
                if status.startswith(("4", "5")) and list(response["content"]) == ["text/xml"]:
                    # Salesforce reads SOAP: a message it sent that is not an Outbound Message is
                    # answered a SOAP fault, which names its codes in x-problem-codes.
                    assert path == "/v1/integrations/salesforce/outbound-messages", where
                    assert response["x-problem-codes"], where
                elif status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], where
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}, where
                    assert schema["allOf"][1]["properties"]["code"]["enum"], where
            if "{" in path:
                assert "404" in responses, f"{where} has a path id but no 404"
            # A CRM's webhook receiver takes no API key, so no Idempotency-Key: it is idempotent by the
            # provider's own event id (a replay finds the inbox entry stored the first time).
            if method == "post" and not path.startswith("/v1/integrations/"):
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
    # Every GET of one object answers an ETag (and so takes If-None-Match): its version when it
    # carries one, else a tag of its content.
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        ok = item.get("get", {}).get("responses", {}).get("200", {})
        ref = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if "version" in properties or (path.endswith("}") and "id" in properties):
            assert "ETag" in ok.get("headers", {}), f"GET {path}: a single object without an ETag"
    put_strategy = spec["paths"]["/v1/deals/{deal_id}/strategy"]["put"]
    assert (
        "428" in put_strategy["responses"] and "428" not in spec["paths"]["/v1/deals/{deal_id}"]["patch"]["responses"]
    )
    # Required, though answered 428 only after visibility, permission and the body.
    (if_match,) = [p for p in put_strategy["parameters"] if p["name"] == "If-Match"]
    assert if_match["required"] is True and if_match["schema"]["type"] == "string"


# --- links (app/openapi.py) --------------------------------------------------------------------


def _operations(spec: dict) -> dict[str, tuple[str, str, dict]]:
    return {
        op["operationId"]: (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    }


def _links(spec: dict) -> list[tuple[dict, str, dict]]:
    """Every (source operation, status, link) of the document."""
    return [
        (op, status, link)
        for item in spec["paths"].values()
        for op in item.values()
        for status, response in op["responses"].items()
        for link in response.get("links", {}).values()
    ]


def _path_parameters(op: dict) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}


def test_links_reach_every_path_parameter() -> None:
    spec = generate()
    needed = {(op["operationId"], name) for _, _, op in _operations(spec).values() for name in _path_parameters(op)}
    provided = {(link["operationId"], name) for _, _, link in _links(spec) for name in link["parameters"]}
    # The upsert names its deal by the CRM's reference, which the caller chooses: no response hands it out.
    assert needed - provided == {
        ("upsert_deal_by_external_ref", "source"),
        ("upsert_deal_by_external_ref", "external_id"),
    }


def test_links_fill_exactly_the_target_path_from_fields_the_source_answers() -> None:
    spec = generate()
    schemas = spec["components"]["schemas"]
    operations = _operations(spec)

    def resolve(schema: dict) -> dict:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    for source, status, link in _links(spec):
        _, _, target = operations[link["operationId"]]
        where = f"{source['operationId']} {status} -> {link['operationId']}"
        assert set(link["parameters"]) == _path_parameters(target), where
        answered = resolve(source["responses"][status]["content"]["application/json"]["schema"])
        for expression in link["parameters"].values():
            if expression.startswith("$request.path."):
                assert expression.removeprefix("$request.path.") in _path_parameters(source), where
                continue
            node = answered
            for step in expression.removeprefix("$response.body#/").split("/"):
                node = resolve(node["items"]) if step == "0" else resolve(node["properties"][step])
            # A field that may be null (an event about no deal) leads nowhere then, and that is all.
            assert "string" in {node.get("type"), *(branch.get("type") for branch in node.get("anyOf", []))}, where


def test_a_created_deal_links_its_chain() -> None:
    spec = generate()
    responses = {(path, method): op["responses"] for path, method, op in _operations(spec).values()}
    deal = responses[("/v1/deals", "post")]["201"]["links"]
    assert {"get_deal", "update_deal", "put_strategy", "create_call", "create_approval"} <= set(deal)
    assert deal["create_call"] == {"operationId": "create_call", "parameters": {"deal_id": "$response.body#/id"}}
    call = responses[("/v1/deals/{deal_id}/calls", "post")]["201"]["links"]
    assert call["create_observation"]["parameters"] == {"call_id": "$response.body#/id"}
    assert call["put_strategy"]["parameters"] == {"deal_id": "$response.body#/deal_id"}
    suggestion = responses[("/v1/deals/{deal_id}/strategy/suggestions", "post")]["201"]["links"]
    assert suggestion["accept_suggestion"]["parameters"] == {
        "deal_id": "$response.body#/deal_id",
        "suggestion_id": "$response.body#/id",
    }
    skill = responses[("/v1/skills", "post")]["201"]["links"]
    assert skill["update_skill"]["parameters"] == {"code": "$response.body#/code"}
    ping = responses[("/v1/webhook-endpoints/{endpoint_id}/ping", "post")]["202"]["links"]
    assert ping["retry_webhook_delivery"]["parameters"] == {"delivery_id": "$response.body#/id"}
    reviews = responses[("/v1/closed-lost-reviews", "get")]["200"]["links"]
    assert reviews["complete_review"]["parameters"] == {"review_id": "$response.body#/items/0/id"}


def test_links_lead_to_the_object_itself_or_to_a_resource_it_names_alone() -> None:
    """A link that passes the object's own id leads under the object's own path; any other leads
    under the path of the one resource whose id parameter is named like the field it passes.
    (Both catalogs live under `{code}`: a skill's links lead to skill operations only.)"""
    routes = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).routes
    ops = operations(routes)
    known = resources(ops)
    paths = {op.operation_id: op.path for op in ops}
    places: dict[str, set[str]] = {}
    for resource in known.values():
        places.setdefault(resource.param, set()).add(resource.base)
    checked = 0
    for (path, method, status), found in derive_links(routes).items():
        model = next(op.models[status] for op in ops if (op.path, op.method) == (path, method))
        item = typing.get_args(model.model_fields["items"].annotation)[0] if issubclass(model, Page) else model
        own = next((known[cls] for cls in item.__mro__ if cls in known), None)
        for link in found.values():
            target = paths[link["operationId"]]
            passed = {
                name: value.rsplit("/", 1)[1]
                for name, value in link["parameters"].items()
                if value.startswith("$response.body#/")
            }
            if own is not None and set(passed.values()) & {"id", own.param}:
                allowed = {own.base}
            else:
                allowed = {base for name in passed if len(places.get(name, ())) == 1 for base in places[name]}
            where = f"{method} {path} {status} -> {link['operationId']}"
            assert any(target == base or target.startswith(base + "/") for base in allowed), where
            checked += 1
    assert checked > 1000
    skill_links = {
        target
        for (path, _, _), found in derive_links(routes).items()
        if path.startswith("/v1/skills")
        for target in found
    }
    assert skill_links == {"get_skill", "update_skill"}


class _Tag(BaseModel):
    code: str


class _Label(BaseModel):
    code: str


class _Note(BaseModel):
    id: str
    code: str


def test_a_parameter_name_two_resources_share_links_each_to_its_own() -> None:
    routes = _app_with(
        ("POST", "/tags", 201, _Tag),
        ("GET", "/tags/{code}", 200, _Tag),
        ("POST", "/labels", 201, _Label),
        ("GET", "/labels/{code}", 200, _Label),
        ("POST", "/notes", 201, _Note),  # names a `code`: of a tag or of a label, it cannot tell
        ("GET", "/notes/{note_id}", 200, _Note),
    )
    links = derive_links(routes)
    read_tag, read_label, read_note = "op1", "op3", "op5"
    assert set(links[("/tags", "post", "201")]) == {read_tag}
    assert set(links[("/labels", "post", "201")]) == {read_label}
    assert set(links[("/notes", "post", "201")]) == {read_note}


class _Thing(BaseModel):
    id: str
    box_id: str


class _ThingWithSecret(_Thing):
    secret: str


class _ThingPage(Page[_Thing]):
    pass


class _Box(BaseModel):
    id: str


def _app_with(*routes: tuple[str, str, int, type[BaseModel]]) -> list[Any]:
    router = APIRouter()
    for method, path, status, model in routes:

        async def handler() -> None: ...

        router.add_api_route(
            path, handler, methods=[method], status_code=status, response_model=model, name=f"op{len(router.routes)}"
        )
    return FastAPI(routes=router.routes).routes


def test_links_derive_from_the_routes() -> None:
    routes = _app_with(
        ("POST", "/things", 201, _ThingWithSecret),  # a creation answering a subclass of the resource
        ("GET", "/things", 200, _ThingPage),
        ("GET", "/things/{thing_id}", 200, _Thing),
        ("POST", "/things/{thing_id}/polish", 200, _Thing),
        ("GET", "/boxes/{box_id}", 200, _Box),
    )
    links = derive_links(routes)
    read, polish, box = "op2", "op3", "op4"
    created = links[("/things", "post", "201")]
    assert created[read]["parameters"] == {"thing_id": "$response.body#/id"}
    assert created[polish]["parameters"] == {"thing_id": "$response.body#/id"}
    assert created[box]["parameters"] == {"box_id": "$response.body#/box_id"}  # what the thing names
    assert links[("/things", "get", "200")][read]["parameters"] == {"thing_id": "$response.body#/items/0/id"}
    assert set(links[("/things/{thing_id}/polish", "post", "200")]) == {read, polish, box}  # a write
    assert ("/things/{thing_id}", "get", "200") not in links  # a read leads nowhere new


def test_a_model_answered_under_two_ids_is_refused() -> None:
    routes = _app_with(("GET", "/things/{thing_id}", 200, _Thing), ("GET", "/gadgets/{gadget_id}", 200, _Thing))
    with pytest.raises(ValueError, match="several ids"):
        derive_links(routes)
