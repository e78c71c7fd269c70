"""The route class of every operation: what the API checks and answers on every request, decided
once per route."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.dependencies.utils import get_flat_params, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from app.http.conditional import none_match
from app.http.responses import CONTENT_ETAG_HEADER, ETAG_HEADER

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters an operation declares, by the names clients send (aliases)."""
    return frozenset(f.alias for f in get_flat_params(route.dependant) if isinstance(f.field_info, params.Query))


def _unknown_query_error(name: str, value: str, declared: frozenset[str]) -> dict[str, Any]:
    takes = ", ".join(f"`{p}`" for p in sorted(declared)) if declared else "none"
    return {
        "type": "extra_forbidden",
        "loc": ("query", name),
        "msg": f"Unknown query parameter `{name}`; this operation takes {takes}",
        "input": value,
    }


def any_query(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """An operation whose URL is the caller's to choose, query string included (a CRM's webhook
    target, which its admin types in and HubSpot signs whole): its undeclared query parameters are
    not refused."""
    endpoint.__dict__["accepts_any_query"] = True
    return endpoint


SERVED_PLAIN = "served_plain"


def served_plain(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A hot operation whose plain requests (that bind without an error; for a GET, no If-None-Match
    and no body) the plain lane serves past FastAPI's routing and binding (app/middleware/lane.py):
    the same endpoint and dependencies, bound as FastAPI would bind them."""
    endpoint.__dict__[SERVED_PLAIN] = True
    return endpoint


NOT_MODIFIED = {
    "description": "Not modified: `If-None-Match` names the current `ETag` (no body)",
    "headers": ETAG_HEADER,
}
MAX_IF_NONE_MATCH = 1024
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_IF_NONE_MATCH},
    "description": 'The `ETag` you hold (`"3"`): 304 with no body while it is still current',
}
# Headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
_KEPT_ON_304 = ("etag", "cache-control", "vary")


def _ok_headers(responses: dict[int | str, Any]) -> dict[str, Any]:
    """The headers the operation declares on its 200."""
    ok = responses.get(200) or responses.get("200") or {}
    return ok.get("headers", {})  # type: ignore[no-any-return]


def _declares_etag(responses: dict[int | str, Any]) -> bool:
    return "ETag" in _ok_headers(responses)


def tags_content(responses: dict[int | str, Any]) -> bool:
    """The operation's 200 carries a tag of its content (``CONTENT_ETAG_HEADER``), not a version."""
    return _ok_headers(responses).get("ETag") is CONTENT_ETAG_HEADER["ETag"]


def content_etag(body: bytes) -> str:
    """A strong ETag of a representation: the same bytes, the same tag."""
    return f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def _if_none_match(scope: Scope) -> str | None:
    # The raw ASGI headers (names lowercased by the server): a third of the cost of Request.headers,
    # on the hot GET by id.
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return str(value.decode("latin-1"))
    return None


def _too_long_if_none_match(tags: str) -> dict[str, Any]:
    return {
        "type": "string_too_long",
        "loc": ("header", "If-None-Match"),
        "msg": f"String should have at most {MAX_IF_NONE_MATCH} characters",
        "input": tags,
    }


def _not_modified(response: Response) -> Response:
    headers = {name: response.headers[name] for name in _KEPT_ON_304 if name in response.headers}
    return Response(status_code=304, headers=headers)


class ApiRoute(APIRoute):
    """Every operation's route.

    A query parameter the operation does not declare is refused (422 validation_error naming it, as
    Stripe does): a typo (`?stagee=`) or a filter the operation does not have would otherwise answer
    everything, unfiltered (unless the operation is marked ``any_query``). A GET of one object that carries an `ETag` answers 304, with no body,
    when `If-None-Match` names it, and documents that. What a route checks is decided once, when it
    is built: a request without a query string or If-None-Match pays a test or two."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        responses = kwargs.get("responses") or {}
        if "GET" in (kwargs.get("methods") or ()) and _declares_etag(responses):
            kwargs["responses"] = {**responses, 304: NOT_MODIFIED}
            extra = kwargs.get("openapi_extra") or {}
            kwargs["openapi_extra"] = {**extra, "parameters": [*extra.get("parameters", []), IF_NONE_MATCH]}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        declared = declared_query_parameters(self)
        strict_query = not getattr(self.endpoint, "accepts_any_query", False)
        path_params = [f for f in get_flat_params(self.dependant) if isinstance(f.field_info, params.Path)]
        conditional = 304 in self.responses
        content_tagged = tags_content(self.responses)

        async def strict_handler(request: Request) -> Response:
            problems = []
            if strict_query and request.scope["query_string"]:
                query = request.query_params
                problems = [_unknown_query_error(k, query[k], declared) for k in query.keys() if k not in declared]
            tags = _if_none_match(request.scope) if conditional else None
            if tags is not None and len(tags) > MAX_IF_NONE_MATCH:
                problems.append(_too_long_if_none_match(tags))
            if problems:
                # A path that names nothing (or a literal path hit with another method) still
                # answers 404 (or 405) first, as without a query string.
                _, wrong_path = request_params_to_args(path_params, request.path_params)
                raise RequestValidationError([*wrong_path, *problems])
            response = await handler(request)
            if content_tagged and response.status_code == 200:
                response.headers["etag"] = content_etag(response.body)
            if tags is not None and response.status_code == 200:
                if (etag := response.headers.get("etag")) and none_match(tags, etag):
                    return _not_modified(response)
            return response

        return strict_handler
