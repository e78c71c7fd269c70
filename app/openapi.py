"""The OpenAPI document's links, and writing it: `python -m app.openapi openapi/openapi.json`.

Links say where an id a response returns can be used next (OpenAPI 3.1 `links`): the deal that
`POST /v1/deals` creates is the `deal_id` of `GET /v1/deals/{deal_id}`, of
`POST /v1/deals/{deal_id}/calls`, and so on. Clients and generated SDKs read them, and
schemathesis' stateful tests follow them to chain a created deal into its calls, observations,
approvals and reviews. They are derived from the routes, never listed by hand, so a route added
later is linked as soon as it follows the conventions:

- A resource is named by the last path parameter of the operations that answer it (200) under
  that parameter: `ApprovalPublic` by `approval_id` under `/v1/approvals/{approval_id}`.
- An operation creates what it answers 201 or 202 with (and an upsert what it answers with when it
  declares 201): a link goes from that response to every operation under the resource's path.
  Any other write that answers the object (an update, an action such as `/approve`) links the
  same way: what a client gets back from a write tells it what it can do next.
- A listing (a page of a resource) links its first item the same way: that is how clients reach
  what others made, and what no operation creates (a closed-lost review opens when a deal is
  lost, a commitment when an observation is acknowledged).
- The object also links the resources it names by their id parameter's name: a suggestion's
  `deal_id` leads to the deal's operations, an observation's `call_id` to the call's. A field
  named like the object's own id parameter is its own id, and a name two resources share names
  neither: a skill's `code` leads to the skill's operations only, never to the loss reason's.
- Each path parameter of a target takes the created object's field of that name (`code` for a
  catalog entry, `deal_id` for a suggestion's deal), else its `id` for the resource's own
  parameter, else the creating request's path parameter of that name.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.routing import BaseRoute

from app.schemas.common import Page

CREATED = frozenset({"201", "202"})
Link = dict[str, Any]
# Marks a header the operation requires though it reads it as optional, because its absence is
# answered after other checks (If-Match on a whole-document PUT: 404 and 403 come before 428).
REQUIRED_LATER = "x-required-checked-later"


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    params: tuple[str, ...]
    # The model each 2xx status answers with.
    models: dict[str, type[BaseModel]]

    @property
    def creates(self) -> bool:
        return bool(CREATED & self.models.keys())


@dataclass(frozen=True)
class Resource:
    """Where a resource lives: its own path parameter and the path that ends with it."""

    param: str
    base: str

    def targets(self, operations: Iterable[Operation]) -> Iterator[Operation]:
        """The operations that take this resource's id: its own path and everything under it."""
        return (op for op in operations if op.path == self.base or op.path.startswith(self.base + "/"))


def operations(routes: Iterable[BaseRoute]) -> list[Operation]:
    found = []
    for context in iter_route_contexts(list(routes)):
        # A route as included in the app (prefix, responses and dependencies of its router applied).
        route: Any = context
        if not isinstance(context.original_route, APIRoute) or not route.include_in_schema:
            continue
        models: dict[str, type[BaseModel]] = {}
        if _is_model(route.response_model):
            models[str(route.status_code or 200)] = route.response_model
        for status, extra in route.responses.items():
            if str(status).startswith("2") and _is_model(extra.get("model")):
                models[str(status)] = extra["model"]
        params = tuple(re.findall(r"{(\w+)}", route.path_format))
        for method in sorted(route.methods):
            found.append(Operation(route.path_format, method.lower(), route.name, params, models))
    return found


def resources(ops: Iterable[Operation]) -> dict[type[BaseModel], Resource]:
    """Each model that some read or action answers under its own id, with where it lives."""
    places: dict[type[BaseModel], set[Resource]] = {}
    for op in ops:
        if not op.params or op.creates:
            continue
        param = op.params[-1]
        base = op.path[: op.path.index(f"{{{param}}}") + len(param) + 2]
        for model in op.models.values():
            if _page_item(model) is None:
                places.setdefault(model, set()).add(Resource(param, base))
    ambiguous = {model.__name__: sorted(map(str, found)) for model, found in places.items() if len(found) > 1}
    if ambiguous:
        raise ValueError(f"a model is answered under several ids, links cannot tell which: {ambiguous}")
    return {model: next(iter(found)) for model, found in places.items()}


def derive_links(routes: Iterable[BaseRoute]) -> dict[tuple[str, str, str], dict[str, Link]]:
    """The links of each (path, method, status) response."""
    ops = operations(routes)
    known = resources(ops)
    links: dict[tuple[str, str, str], dict[str, Link]] = {}
    for op in ops:
        for status, model in op.models.items():
            subject, pointer = _subject(op, model)
            if subject is None:
                continue
            fields = _fields(subject)
            for resource in _named_by(subject, known):
                for target in resource.targets(ops):
                    link = _link(target, resource, fields, op, pointer)
                    if link is not None:
                        links.setdefault((op.path, op.method, status), {}).setdefault(target.operation_id, link)
    return links


def _subject(op: Operation, model: type[BaseModel]) -> tuple[type[BaseModel] | None, str]:
    """What a response links from: the object a write creates or changes, or the first item of
    the page a listing answers (a read of one object leads nowhere its id did not lead already)."""
    item = _page_item(model)
    if item is None and (op.creates or op.method != "get"):
        return model, "$response.body#/"
    if item is not None and op.method == "get":
        return item, "$response.body#/items/0/"
    return None, ""


def _named_by(model: type[BaseModel], known: dict[type[BaseModel], Resource]) -> list[Resource]:
    """The resources whose ids an object holds: its own, then those it names (a call's `deal_id`)."""
    own = _resource_of(model, known)
    fields = _fields(model)
    living = set(known.values())
    named = sorted((r for r in living if r.param in fields and _names(r, own, living)), key=lambda r: r.base)
    return [own, *named] if own is not None else named


def _names(resource: Resource, own: Resource | None, living: set[Resource]) -> bool:
    """Whether a field named like the resource's id parameter is a reference to that resource: not
    when it is the object's own id (a skill's `code` is no loss reason's), nor when another resource
    lives under a parameter of the same name (a `code` alone cannot tell which catalog)."""
    if own is not None and resource.param == own.param:
        return False
    return all(other.param != resource.param for other in living if other != resource)


def declare_required_headers(schema: dict[str, Any]) -> None:
    """Declare the REQUIRED_LATER headers required, with the string (not null) they must be."""
    for item in schema["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                declared = parameter.get("schema", {})
                if declared.pop(REQUIRED_LATER, False):
                    parameter["required"] = True
                    text = next(branch for branch in declared.pop("anyOf") if branch.get("type") == "string")
                    parameter["schema"] = {**text, **declared}


def add_links(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    for (path, method, status), found in derive_links(routes).items():
        schema["paths"][path][method]["responses"][status]["links"] = dict(sorted(found.items()))


def _link(target: Operation, resource: Resource, fields: set[str], source: Operation, pointer: str) -> Link | None:
    parameters = {}
    for name in target.params:
        if name in fields:
            value = f"{pointer}{name}"
        elif name == resource.param:
            value = f"{pointer}id"
        elif name in source.params:
            value = f"$request.path.{name}"
        else:
            return None
        parameters[name] = value
    return {"operationId": target.operation_id, "parameters": parameters}


def _resource_of(model: type[BaseModel], known: dict[type[BaseModel], Resource]) -> Resource | None:
    """Where a model lives: its own place, or that of the nearest model it extends
    (`ApiKeyCreated` is an `ApiKeyPublic` with the secret)."""
    return next((known[cls] for cls in model.__mro__ if cls in known), None)


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def _page_item(model: type[BaseModel]) -> type[BaseModel] | None:
    if not issubclass(model, Page):
        return None
    (item,) = typing.get_args(model.model_fields["items"].annotation)
    return item if _is_model(item) else None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def restore_example_nulls(schema: dict[str, Any]) -> None:
    """Put back the nulls of the models' examples: FastAPI renders the document without any null
    (`exclude_none`), which would turn `"closed_at": null` into a missing required field."""
    components = schema.get("components", {}).get("schemas", {})
    for name, model in _app_models().items():
        if "examples" in components.get(name, {}):
            components[name]["examples"] = _model_examples(model)


def _app_models() -> dict[str, type[BaseModel]]:
    """The app's models by name (the name of their component), those of ambiguous names left out."""
    found: dict[str, list[type[BaseModel]]] = {}
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("app."):
                found.setdefault(sub.__name__, []).append(sub)
    return {name: models[0] for name, models in found.items() if len(models) == 1}


def _model_examples(model: type[BaseModel]) -> Any:
    extra = model.model_config.get("json_schema_extra")
    if isinstance(extra, dict):
        return extra.get("examples")
    scratch: dict[str, Any] = {}
    if callable(extra):  # the (schema, model) kind: Examples, a page's
        typing.cast(Callable[[dict[str, Any], type], None], extra)(scratch, model)
    return scratch.get("examples")


def generate() -> dict[str, Any]:
    from app.main import create_app
    from app.settings import Settings

    return create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "openapi/openapi.json"
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(render())
