"""The plain lane: the hot operations' plain requests, served past FastAPI's routing and binding.

`GET /v1/me`, a `GET` of one deal or of a page of deals or of tasks, a `POST /v1/deals`, a `PATCH`
of a deal have little for FastAPI to do: path parameters that are UUIDs, a few query parameters
and headers, a JSON body for one model, dependencies that read the credential and open a unit of
work. FastAPI still walks every router, solves the dependency tree generically (cache keys, scopes
and kinds recomputed on each request), builds a request per layer and wraps each `send` in a dozen
layers: measured on `GET /v1/me` (one worker, wrk -c32), 690-770 us of worker CPU per request, of
which the lane's way takes 420-440 (bench/README.md, "A plain lane").

The lane is the innermost of the app's own middlewares: what sits outside it (CORS, the request
context, rate limits, the body limit, idempotency) applies as to any request. It binds a request as
FastAPI would, with FastAPI's own validators (``request_params_to_args``,
``request_body_to_args``), and calls the route's own endpoint and dependencies; exceptions are
answered by the app's own handlers. Only a request that binds without a single error is served: an
unknown or invalid query parameter, an invalid header or body, a path parameter that is not a
canonical UUID, a body that is not JSON, a conditional GET or a GET with a body goes down the
normal stack (a body read is replayed to it), which answers it as it always has.

Which operations qualify is decided when the app is built, from each marked route's declared
parameters (``plain_routes``): path parameters that are UUIDs, query parameters with defaults, no
cookies, one JSON body model at most, a response that is the endpoint's own ``Response`` (and its
own ETag), and dependencies that are ``async`` functions (or function-scoped ``async`` generators)
of the same kinds of parameters; and only if no other route of the same method matches their
paths. tests/api/test_plain_lane.py compares each one's answers with the normal stack's.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import _get_param_aliases, request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from pydantic.fields import FieldInfo
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.routes import SERVED_PLAIN, declared_query_parameters, tags_content

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A GET's headers that ask for more than a plain read: a conditional GET (304 is the route class's
# work), or a body, which a GET may carry and the normal stack refuses or ignores.
_NOT_PLAIN_GET = frozenset({b"if-none-match", b"content-length", b"transfer-encoding"})


class _NotPlain(Exception):
    """The request does not bind without errors: the normal stack answers it (with ``body``, when
    the lane read it, given back first)."""

    def __init__(self, body: bytes | None = None) -> None:
        self.body = body


@dataclass(frozen=True, slots=True)
class _Param:
    """A header or query parameter: its ModelField (validated by FastAPI's request_params_to_args),
    and the names a request may send it by, worked out once."""

    field: Any
    keys: tuple[str, ...]

    @classmethod
    def of(cls, field: Any) -> _Param:
        # The names request_params_to_args itself looks the parameter up by (FastAPI's own helper,
        # private to it: called once per parameter at build, so a change to it fails at start-up
        # or in tests/api/test_plain_lane.py, not in a request).
        return cls(field, tuple(key for _, key in _get_param_aliases(field)))


def _validated(params: tuple[_Param, ...], received: Any) -> dict[str, Any]:
    """The values of the parameters ``received`` carries, validated by FastAPI; ``_NotPlain`` at an
    error. The others are left out: they take their defaults (as FastAPI would give them: the lane
    serves only parameters with immutable defaults it need not validate)."""
    sent = [param.field for param in params if any(key in received for key in param.keys)]
    if not sent:
        return {}
    values, errors = request_params_to_args(sent, received)
    if errors:
        raise _NotPlain
    return values


@dataclass(frozen=True, slots=True)
class _Call:
    """The endpoint or one of its dependencies, with how to bind its arguments."""

    call: Callable[..., Any]
    name: str | None  # the argument it fills in the caller (None: the endpoint, or a route dependency)
    dependencies: tuple[_Call, ...]
    headers: tuple[_Param, ...]
    query: tuple[_Param, ...]
    defaults: dict[str, Any]  # the header and query parameters' defaults (what they take when not sent)
    path_params: tuple[str, ...]
    request: str | None  # the argument that takes the request
    generator: bool

    async def value(self, bound: _Bound, stack: AsyncExitStack) -> Any:
        if self.call in bound.cache:
            return bound.cache[self.call]
        arguments = {**self.defaults, **bound.params[id(self)]}
        for name in self.path_params:
            arguments[name] = bound.path[name]
        if self.request is not None:
            arguments[self.request] = bound.request
        for dependency in self.dependencies:
            value = await dependency.value(bound, stack)
            if dependency.name is not None:
                arguments[dependency.name] = value
        if self.call is bound.endpoint:
            arguments.update(bound.body)
        if self.generator:
            value = await stack.enter_async_context(asynccontextmanager(self.call)(**arguments))
        else:
            value = await self.call(**arguments)
        bound.cache[self.call] = value
        return value

    def walk(self) -> Iterable[_Call]:
        yield self
        for dependency in self.dependencies:
            yield from dependency.walk()

    @property
    def with_parameters(self) -> tuple[_Call, ...]:
        """It and its dependencies that take headers or query parameters."""
        return tuple(call for call in self.walk() if call.headers or call.query)


@dataclass(slots=True)
class _Bound:
    """One request's validated values."""

    request: Request
    endpoint: Callable[..., Any]
    path: dict[str, uuid.UUID]
    params: dict[int, dict[str, Any]]  # by id(_Call): its header (and query) parameters' values
    body: dict[str, Any]
    cache: dict[Any, Any]


@dataclass(frozen=True, slots=True)
class PlainRoute:
    """An operation the lane serves: its path as a pattern, and how to bind and call it."""

    route: APIRoute
    method: str
    pattern: re.Pattern[str] | None  # None: a path without parameters, matched exactly
    root: _Call
    parameterised: tuple[_Call, ...]  # root.with_parameters, worked out once
    body: tuple[Any, ...]  # the body's ModelFields (none for a GET)
    embed_body: bool
    declared: frozenset[str] | None  # the query parameters it takes (None: any, ``any_query``)

    async def bind(self, request: Request, match: re.Match[str] | None) -> _Bound:
        """The request's values, validated as FastAPI would validate them (``_NotPlain`` at the
        first error: the normal stack will report it)."""
        path = {} if match is None else {name: uuid.UUID(value) for name, value in match.groupdict().items()}
        query = request.query_params if request.scope["query_string"] else None
        if query is not None and self.declared is not None and not self.declared.issuperset(query.keys()):
            raise _NotPlain  # an unknown query parameter: the route class refuses it
        params: dict[int, dict[str, Any]] = defaultdict(dict)
        for call in self.parameterised:
            values = _validated(call.headers, request.headers) if call.headers else {}
            if query is not None and call.query:
                values |= _validated(call.query, query)
            params[id(call)] = values
        body: dict[str, Any] = {}
        if self.body:
            media_type = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
            if media_type != "application/json" or "content-length" not in request.headers:
                raise _NotPlain  # FastAPI's media-type rules, or a chunked body: the normal stack's
            raw = await request.body()
            try:
                document = json.loads(raw)  # as Request.json() does
            except ValueError:
                raise _NotPlain(raw) from None
            body, errors = await request_body_to_args(list(self.body), document, self.embed_body)
            if errors:
                raise _NotPlain(raw)
        return _Bound(request, self.route.endpoint, path, params, body, {})

    async def answer(self, bound: _Bound) -> Response:
        async with AsyncExitStack() as stack:  # function-scoped dependencies close before sending
            response: Response = await self.root.value(bound, stack)
        return response


class PlainLane:
    """Pure ASGI: serve the plain requests of ``routes``, pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, routes: Iterable[PlainRoute]) -> None:
        self.app = app
        self.exact: dict[tuple[str, str], PlainRoute] = {}
        self.patterned: dict[str, list[PlainRoute]] = {}
        for plain in routes:
            if plain.pattern is None:
                self.exact[(plain.method, plain.route.path)] = plain
            else:
                self.patterned.setdefault(plain.method, []).append(plain)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._match(scope) if scope["type"] == "http" else None
        if served is None:
            await self.app(scope, receive, send)
            return
        plain, match = served
        request = Request(scope, receive)
        try:
            bound = await plain.bind(request, match)
        except _NotPlain as not_plain:
            await self.app(scope, _replaying(not_plain.body, receive), send)
            return
        scope["route"] = plain.route  # the route template of the access log and metrics
        try:
            response = await plain.answer(bound)
        except Exception as exc:
            handler = _handler_of(scope, exc)
            if handler is None:
                raise  # as from any route: the request context's last resort answers it
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[PlainRoute, re.Match[str] | None] | None:
        method, path = scope["method"], scope["path"]
        plain = self.exact.get((method, path))
        match = None
        if plain is None:
            for candidate in self.patterned.get(method, ()):
                match = candidate.pattern.fullmatch(path)  # type: ignore[union-attr]
                if match is not None:
                    plain = candidate
                    break
            else:
                return None
        if method == "GET" and any(name in _NOT_PLAIN_GET for name, _ in scope["headers"]):
            return None
        return plain, match


def _replaying(body: bytes | None, receive: Receive) -> Receive:
    """``receive``, giving back first the body the lane read (if it read it)."""
    if body is None:
        return receive
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _handler_of(scope: Scope, exc: Exception) -> Callable[..., Any] | None:
    """The app's handler of ``exc`` (by its classes, as Starlette's ExceptionMiddleware finds it)."""
    handlers = scope["app"].exception_handlers
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]  # type: ignore[no-any-return]
    return None


def plain_routes(routes: Iterable[APIRoute]) -> list[PlainRoute]:
    """The routes the lane serves, of all the app's ``routes``: each marked ``served_plain``
    (app/http/routes.py), checked to qualify (a route marked but not qualifying is a programming
    error: ValueError)."""
    routes = list(routes)
    lane = []
    for route in routes:
        if not getattr(route.endpoint, SERVED_PLAIN, False):
            continue
        plain = _plain_route(route)
        names = [f.name for f in route.dependant.path_params]
        sample = route.path_format.format(**dict.fromkeys(names, uuid.UUID(int=0)))
        others = [
            r.path
            for r in routes
            if r is not route and plain.method in (r.methods or ()) and r.path_regex.match(sample)
        ]
        if others:
            raise ValueError(f"{route.path}: its paths are also {others}'s; the lane could answer for them")
        lane.append(plain)
    return lane


def _plain_route(route: APIRoute) -> PlainRoute:
    problem = _disqualified(route)
    if problem:
        raise ValueError(f"{route.path} cannot be served plain: {problem}")
    method = next(iter(route.methods or ()))
    pattern = None
    if route.dependant.path_params:
        source = re.escape(route.path_format)
        for field in route.dependant.path_params:
            source = source.replace(re.escape("{" + field.name + "}"), f"(?P<{field.name}>{_UUID})")
        pattern = re.compile(source)
    root = _compiled(route.dependant, None)
    declared = None if getattr(route.endpoint, "accepts_any_query", False) else declared_query_parameters(route)
    body = tuple(route.dependant.body_params)
    return PlainRoute(route, method, pattern, root, root.with_parameters, body, route._embed_body_fields, declared)


def _compiled(dependant: Dependant, name: str | None) -> _Call:
    assert dependant.call is not None
    return _Call(
        call=dependant.call,
        name=name,
        dependencies=tuple(_compiled(d, d.name) for d in dependant.dependencies),
        headers=tuple(_Param.of(f) for f in dependant.header_params),
        query=tuple(_Param.of(f) for f in dependant.query_params),
        defaults={f.name: f.field_info.default for f in (*dependant.header_params, *dependant.query_params)},
        path_params=tuple(f.name for f in dependant.path_params),
        request=dependant.request_param_name or dependant.http_connection_param_name,
        generator=inspect.isasyncgenfunction(dependant.call),
    )


def _disqualified(route: APIRoute) -> str | None:
    if len(route.methods or ()) != 1:
        return "it answers several methods"
    if inspect.signature(route.endpoint).return_annotation not in (Response, "Response"):
        return "its endpoint does not return its own Response"
    if tags_content(route.responses):
        return "the route class tags its content (its ETag is not the endpoint's)"
    if len(route.dependant.body_params) > 1 or (route.dependant.body_params and route.methods == {"GET"}):
        return "its body is not one JSON model"
    for call in _dependants(route.dependant):
        problem = _call_disqualified(call, route.dependant)
        if problem:
            return problem
    return None


def _dependants(dependant: Dependant) -> Iterable[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _dependants(dependency)


def _call_disqualified(dependant: Dependant, root: Dependant) -> str | None:
    call = dependant.call
    function = call if inspect.isfunction(call) else getattr(call, "__call__", None)  # noqa: B004
    if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
        return f"{dependant.name or 'its endpoint'} is not async"
    if inspect.isasyncgenfunction(function) and dependant.scope != "function":
        return f"{dependant.name} closes after the response (not function-scoped)"
    if dependant.cookie_params or (dependant.body_params and dependant is not root):
        return "it reads cookies, or a dependency reads the body"
    if dependant.security_scopes_param_name or dependant.background_tasks_param_name or dependant.response_param_name:
        return "it takes security scopes, background tasks or the response"
    if any(f.field_info.annotation is not uuid.UUID for f in dependant.path_params):
        return "a path parameter is not a UUID"
    if any(not _immutable_default(f.field_info) for f in (*dependant.header_params, *dependant.query_params)):
        return "a header or query parameter is required, or its default is mutable or validated"
    return None


def _immutable_default(field: FieldInfo) -> bool:
    """Optional, with a default the lane may hand to every request as it is (FastAPI validates a
    default only when asked to)."""
    return (
        not field.is_required()
        and not field.validate_default
        and isinstance(field.default, None | bool | int | float | str)
    )
