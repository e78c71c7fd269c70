"""The plain lane: the hot reads' plainest requests, served past FastAPI's routing and binding.

A GET of one deal, of the caller's member (`/v1/me`), of the first page of deals or of tasks, sent
with no query string, no `If-None-Match` and no body, has nothing for FastAPI to parse: its path
holds UUIDs, its other parameters take their defaults, and its one dependency reads the
`Authorization` header. FastAPI still walks every router, solves the dependency tree, builds a
request per layer and wraps each `send` in a dozen layers: measured on `GET /v1/me` (one worker,
wrk -c32), 690-770 us of worker CPU per request, of which the lane's way takes 440-480 us
(bench/README.md, "A plain lane").

The lane is the innermost of the app's own middlewares: what sits outside it (CORS, the request
context, rate limits, the body limit, idempotency) applies as to any request. It serves a request
only when it would do exactly what the route does, by calling the route's own endpoint with the
values FastAPI would bind; anything else (a query string, a conditional GET, a body, a path
parameter that is not a canonical UUID, another method) goes down the normal stack. Domain errors
are answered by the app's own mapping (``problem_for_domain_error``), as the exception handler
would; anything else propagates as from any route.

Which operations qualify is decided when the app is built, from each route's declared parameters
(``plain_routes``): only `GET`s whose path parameters are all UUIDs, whose query parameters all
have defaults, whose response is the endpoint's own ``Response`` and whose dependencies are
``async`` callables of the request and defaulted query parameters (the caller, a page request,
a list's filters) qualify, and only if no other
`GET` route matches their paths. tests/api/test_plain_lane.py compares each one's answers with
the normal stack's.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic.fields import FieldInfo
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.domain.errors import DomainError
from app.errors import problem_for_domain_error
from app.http.routes import SERVED_PLAIN

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A header that asks for more than a plain GET does: a conditional GET (304 is the route class's
# work), or a body, which a GET may carry and the normal stack refuses or ignores.
_NOT_PLAIN = frozenset({b"if-none-match", b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class PlainRoute:
    """An operation the lane serves: its path as a pattern, and how to call its endpoint."""

    route: APIRoute
    pattern: re.Pattern[str] | None  # None: a path without parameters, matched exactly
    path_params: tuple[str, ...]
    # (argument, callable, whether it takes the request): each called with its defaults
    dependencies: tuple[tuple[str, Callable[..., Awaitable[Any]], bool], ...]
    defaults: dict[str, Any]

    async def answer(self, request: Request, match: re.Match[str] | None) -> Response:
        arguments = dict(self.defaults)
        if match is not None:
            arguments.update({name: uuid.UUID(match[name]) for name in self.path_params})
        for name, call, takes_request in self.dependencies:
            arguments[name] = await (call(request) if takes_request else call())
        response: Response = await self.route.endpoint(**arguments)
        return response


class PlainLane:
    """Pure ASGI: serve the plain requests of ``routes``, pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, routes: Iterable[PlainRoute]) -> None:
        self.app = app
        routes = tuple(routes)
        self.exact = {r.route.path: r for r in routes if r.pattern is None}
        self.patterned = tuple(r for r in routes if r.pattern is not None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._match(scope) if scope["type"] == "http" else None
        if served is None:
            await self.app(scope, receive, send)
            return
        plain, match = served
        scope["route"] = plain.route  # the route template of the access log and metrics
        try:
            response = await plain.answer(Request(scope, receive), match)
        except DomainError as exc:
            response = problem_for_domain_error(exc, scope["path"], source="query")
        await response(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[PlainRoute, re.Match[str] | None] | None:
        if scope["method"] != "GET" or scope["query_string"]:
            return None
        path = scope["path"]
        plain = self.exact.get(path)
        match = None
        if plain is None:
            for candidate in self.patterned:
                match = candidate.pattern.fullmatch(path)  # type: ignore[union-attr]
                if match is not None:
                    plain = candidate
                    break
            else:
                return None
        for name, _ in scope["headers"]:
            if name in _NOT_PLAIN:
                return None
        return plain, match


def plain_routes(routes: Iterable[APIRoute]) -> list[PlainRoute]:
    """The routes the lane serves, of all the app's ``routes``: each marked ``served_plain``
    (app/http/routes.py),
    checked to qualify (a route marked but not qualifying is a programming error: ValueError)."""
    routes = list(routes)
    gets = [r for r in routes if "GET" in (r.methods or ())]
    lane = []
    for route in routes:
        if not getattr(route.endpoint, SERVED_PLAIN, False):
            continue
        plain = _plain_route(route)
        sample = route.path_format.format(**dict.fromkeys(plain.path_params, uuid.UUID(int=0)))
        others = [r.path for r in gets if r is not route and r.path_regex.match(sample)]
        if others:
            raise ValueError(f"{route.path}: its paths are also {others}'s; the lane could answer for them")
        lane.append(plain)
    return lane


def _plain_route(route: APIRoute) -> PlainRoute:
    dependant = route.dependant
    problem = _disqualified(route, dependant)
    if problem:
        raise ValueError(f"{route.path} cannot be served plain: {problem}")
    path_params = tuple(f.name for f in dependant.path_params)
    pattern = None
    if path_params:
        source = re.escape(route.path_format)
        for name in path_params:
            source = source.replace(re.escape("{" + name + "}"), f"(?P<{name}>{_UUID})")
        pattern = re.compile(source)
    defaults = {f.name: f.field_info.default for f in dependant.query_params}
    dependencies = tuple((d.name, d.call, _request_parameter(d) is not None) for d in dependant.dependencies)
    return PlainRoute(route, pattern, path_params, dependencies, defaults)  # type: ignore[arg-type]


def _disqualified(route: APIRoute, dependant: Dependant) -> str | None:
    if route.methods != {"GET"}:
        return "not a GET"
    if inspect.signature(route.endpoint).return_annotation not in (Response, "Response"):
        return "its endpoint does not return its own Response"
    if dependant.header_params or dependant.cookie_params or dependant.body_params:
        return "it reads headers, cookies or a body"
    if any(f.field_info.annotation is not uuid.UUID for f in dependant.path_params):
        return "a path parameter is not a UUID"
    if any(not _immutable_default(f.field_info) for f in dependant.query_params):
        return "a query parameter is required or its default is mutable"
    for dependency in dependant.dependencies:
        if not _of_the_request_alone(dependency):
            return f"its dependency {dependency.name!r} needs more than the request"
    return None


def _of_the_request_alone(dependency: Dependant) -> bool:
    """An async, non-generator callable whose parameters are the request (first, if it takes it)
    and query parameters with defaults (which, with no query string, it takes): called so, it
    gets what FastAPI would give it."""
    call = dependency.call
    function = call if inspect.isfunction(call) else getattr(call, "__call__", None)  # noqa: B004
    request = _request_parameter(dependency)
    parameters = list(inspect.signature(call).parameters)  # type: ignore[arg-type]
    return (
        inspect.iscoroutinefunction(function)
        and not dependency.dependencies
        and not (dependency.path_params or dependency.header_params or dependency.cookie_params)
        and not dependency.body_params
        and all(_immutable_default(f.field_info) for f in dependency.query_params)
        and (request is None or parameters[0] == request)
    )


def _request_parameter(dependency: Dependant) -> str | None:
    return dependency.request_param_name or dependency.http_connection_param_name


def _immutable_default(field: FieldInfo) -> bool:
    """Optional, with a default the lane may hand to every request."""
    return not field.is_required() and isinstance(field.default, None | bool | int | float | str)
