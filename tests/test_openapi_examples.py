"""Every request body and response in the spec shows a realistic example (in /docs and in the SDK
docstrings), each example is valid for its schema, and each problem example names a code its
operation declares for that status."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from app.openapi import generate

PROBLEM_JSON = "application/problem+json"
COMBINATORS = ("anyOf", "oneOf", "allOf")


@functools.cache
def _spec() -> dict[str, Any]:
    return generate()


def _spec_copy() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(json.dumps(_spec()))
    return spec


def _component(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    _, _, kind, name = ref.split("/")
    found: dict[str, Any] = spec["components"][kind][name]
    return found


def _contents(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every request body and response content of the operations and webhooks, with where it is."""
    for section in ("paths", "webhooks"):
        for path, item in spec.get(section, {}).items():
            for method, operation in item.items():
                where = f"{method.upper()} {path}"
                for media, content in operation.get("requestBody", {}).get("content", {}).items():
                    yield f"{where} request {media}", content
                for status, response in operation["responses"].items():
                    if "$ref" in response:
                        response = _component(spec, response["$ref"])
                    for media, content in response.get("content", {}).items():
                        yield f"{where} {status} {media}", content


def _schema_examples(spec: dict[str, Any], schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> list[Any]:
    """The examples a schema shows: its own, its reference's, a branch's (`X | None`, a Problem's
    `allOf`) or, for a list, its items' (each as a list of one)."""
    if schema.get("examples"):
        return list(schema["examples"])
    if "$ref" in schema and schema["$ref"] not in seen:
        return _schema_examples(spec, _component(spec, schema["$ref"]), seen | {schema["$ref"]})
    for key in COMBINATORS:
        for branch in schema.get(key, []):
            if found := _schema_examples(spec, branch, seen):
                return found
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return [[value] for value in _schema_examples(spec, schema["items"], seen)]
    return []


def _content_examples(spec: dict[str, Any], content: dict[str, Any]) -> list[Any]:
    if "example" in content:
        return [content["example"]]
    if content.get("examples"):
        return [example["value"] for example in content["examples"].values()]
    return _schema_examples(spec, content.get("schema", {}))


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    # Relative references (#/components/schemas/...) resolve against the spec's components.
    root = {**schema, "components": spec["components"]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def _errors(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message}" for e in _validator(spec, schema).iter_errors(value)]


def _schema_nodes(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema inside a component schema (properties, items, branches), with where it is."""
    if not isinstance(node, dict):
        return
    yield where, node
    for name, sub in node.get("properties", {}).items():
        yield from _schema_nodes(sub, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        yield from _schema_nodes(node.get(key), f"{where}[{key}]")
    for key in COMBINATORS:
        for index, sub in enumerate(node.get(key, [])):
            yield from _schema_nodes(sub, f"{where}/{key}/{index}")


def test_every_request_body_and_response_shows_an_example() -> None:
    spec = _spec_copy()
    missing = [where for where, content in _contents(spec) if not _content_examples(spec, content)]
    assert not missing, f"{len(missing)} contents without an example:\n" + "\n".join(missing)


def test_every_request_and_response_model_has_an_example_of_its_own() -> None:
    """Each component a body or response refers to (not the pieces they nest) shows a whole example."""
    spec = _spec_copy()
    referenced = set()
    for _where, content in _contents(spec):
        schema = content.get("schema", {})
        for node in (schema, schema.get("items", {}), *schema.get("anyOf", []), *schema.get("allOf", [])):
            if "$ref" in node:
                referenced.add(node["$ref"].rpartition("/")[2])
    schemas = spec["components"]["schemas"]
    assert referenced >= {"DealCreate", "DealPublic", "DealPage", "Problem"}
    assert sorted(name for name in referenced if not schemas[name].get("examples")) == []


def test_every_example_is_valid_for_its_schema() -> None:
    spec = _spec_copy()
    invalid = []
    checked = 0
    for where, content in _contents(spec):
        schema = content.get("schema", {})
        for value in _content_examples(spec, content):
            checked += 1
            invalid += [f"{where} {error}" for error in _errors(spec, schema, value)]
    for name, component in spec["components"]["schemas"].items():
        for where, node in _schema_nodes(component, name):
            for value in node.get("examples", []):
                checked += 1
                invalid += [f"{where} {error}" for error in _errors(spec, node, value)]
    assert checked > 500
    assert not invalid, "\n".join(invalid)


def test_the_validation_catches_an_invalid_example() -> None:
    spec = _spec_copy()
    schema = {"$ref": "#/components/schemas/DealCreate"}
    (value,) = spec["components"]["schemas"]["DealCreate"]["examples"]
    assert _errors(spec, schema, value) == []
    assert _errors(spec, schema, {**value, "stage": "won"})
    assert _errors(spec, schema, {**value, "owner_id": "sam"})  # formats are checked
    assert _errors(spec, schema, {**value, "id": value["owner_id"]})  # no read-only field in a body
    assert _errors(spec, schema, {k: v for k, v in value.items() if k != "name"})


def _problem_contents(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for section in ("paths", "webhooks"):
        for path, item in spec.get(section, {}).items():
            for method, operation in item.items():
                for status, response in operation["responses"].items():
                    if "$ref" in response:
                        response = _component(spec, response["$ref"])
                    content = response.get("content", {}).get(PROBLEM_JSON)
                    if content is not None:
                        yield f"{method.upper()} {path} {status}", status, content


def test_each_problem_response_shows_one_example_per_declared_code() -> None:
    spec = _spec_copy()
    seen = 0
    for where, status, content in _problem_contents(spec):
        declared = content["schema"]["allOf"][1]["properties"]["code"]["enum"]
        examples = content.get("examples", {})
        assert sorted(examples) == sorted(declared), where
        for name, example in examples.items():
            value = example["value"]
            assert value["code"] == name and value["code"] in declared, where
            assert value["status"] == int(status), where
            assert value["type"] == f"urn:dealcoach:problem:{name}", where
            assert example["summary"], where
            seen += 1
    assert seen > 600


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("/v1/deals post 422", "owner_must_be_seller"),
        ("/v1/deals/{deal_id} patch 412", "version_conflict"),
        ("/v1/closed-lost-reviews/{review_id}/complete post 422", "review_incomplete"),
    ],
)
def test_problem_examples_read_like_the_api_answers(where: str, code: str) -> None:
    path, method, status = where.split()
    spec = _spec_copy()
    content = spec["paths"][path][method]["responses"][status]["content"][PROBLEM_JSON]
    value = content["examples"][code]["value"]
    assert value["instance"].startswith("/v1/") and "{" not in value["instance"]
    assert value["detail"] and value["title"]
    if code == "review_incomplete":
        assert value["missing"]
