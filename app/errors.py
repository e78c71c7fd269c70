"""THE mapping from errors to HTTP: problem+json (RFC 9457) with a stable ``code``."""

from __future__ import annotations

import logging
import re
import typing
from collections.abc import Collection, Iterator
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc as sa_exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.domain import errors as de

log = logging.getLogger("dealcoach.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:dealcoach:problem:"

# The bound of app.schemas.common.MAX_JSON_DEPTH (the schemas are above this module), named for
# JSON too deep for the parser itself (tests/api/test_json_limits.py checks they agree).
MAX_JSON_DEPTH = 32

STATUS_BY_BASE: tuple[tuple[type[de.DomainError], int], ...] = (
    (de.NotFound, 404),
    (de.Unauthenticated, 401),
    (de.Forbidden, 403),
    (de.Conflict, 409),
    (de.RuleViolation, 422),
    (de.PreconditionFailed, 412),
    (de.PreconditionRequired, 428),
    (de.Unavailable, 503),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ValidationErrorItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"loc": ["body", "owner_id"], "msg": "Field required", "type": "missing"}]}
    )

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=["urn:dealcoach:problem:not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No member with this id."])
    instance: str = Field(examples=["/v1/members/0190c8a4-6f1e-7000-8000-000000000000"])
    code: str = Field(
        examples=["not_found"],
        description="Stable, machine-readable error code; each operation's responses list the codes it answers",
    )
    errors: list[ValidationErrorItem] | None = Field(
        default=None,
        description="Present on 422 `validation_error` (one entry per invalid input), and on a rule's code "
        "when the rule names the fields at fault",
    )
    missing: list[str] | None = Field(
        default=None,
        description="Present on 422 `review_incomplete`: the fields the review still needs before it completes",
        examples=[["lessons", "seller_reflection"]],
    )
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:dealcoach:problem:validation_error",
                    "title": "Validation error",
                    "status": 422,
                    "detail": "The request is invalid; see errors.",
                    "instance": "/v1/deals",
                    "code": "validation_error",
                    "errors": [{"loc": ["body", "owner_id"], "msg": "Field required", "type": "missing"}],
                }
            ]
        },
    )


def status_for(error: de.DomainError) -> int:
    return status_of(type(error))


def status_of(kind: type[de.DomainError]) -> int:
    for base, status in STATUS_BY_BASE:
        if issubclass(kind, base):
            return status
    return 400


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, code, detail, instance, title=title, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(
    status: int, code: str, detail: str, instance: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The members of a problem document (what ``problem`` answers, and the spec's examples show)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    body.update(extra)
    return body


def _field_errors(error: de.DomainError, source: str = "body") -> list[dict[str, Any]]:
    """A domain error's field problems as validation ``errors``; fields come from the body, or
    from the query string of a request that has none (GET)."""
    return [{"loc": [source, *f.path], "msg": f.msg, "type": f.type} for f in error.fields]


def payload_too_large(instance: str, limit: int) -> JSONResponse:
    # Connection: close, so that the server stops receiving the rest of an oversized upload.
    return problem(
        413,
        "payload_too_large",
        f"The request body is larger than {limit} bytes.",
        instance,
        title="Content Too Large",
        headers={"Connection": "close"},
    )


def problem_fields(error: de.DomainError) -> dict[str, Any]:
    """The members of a domain error's problem that a batch result carries per record."""
    fields: dict[str, Any] = {"status": status_for(error), "code": error.code, "detail": error.detail}
    if error.fields:
        fields["errors"] = _field_errors(error)
    return fields


def validation_problem_fields(
    errors: list[dict[str, Any]], detail: str, *, read_only: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A 422 validation_error's members for input that pydantic refused (a record of a batch)."""
    items = [{"loc": _jsonable_loc(tuple(e["loc"])), "msg": e["msg"], "type": e["type"]} for e in errors]
    return {"status": 422, "code": "validation_error", "detail": detail, "errors": explain_read_only(items, read_only)}


# --- read-only fields -----------------------------------------------------------
# Request models refuse read-only fields (no mass assignment), but a client that sends back what
# GET returned is told what to do with each, for every resource, here.

# Read-only wherever they appear, whatever the operation answers.
_ALWAYS_READ_ONLY = frozenset({"id", "version", "organization_id", "created_at", "updated_at"})
_READ_ONLY_WHY = {
    "version": "send it as `If-Match`",
    "id": "the server assigns it",
    "organization_id": "it is the API key's organisation",
    "author_id": "the author is the caller",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a body annotation takes (``X``, ``X | None``)."""
    candidates = typing.get_args(annotation) or (annotation,)
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def read_only_fields(shown: Any, taken: Any) -> frozenset[str]:
    """The fields an operation answers with (``shown``, a model) that its body (``taken``) does not
    take: what a client sends back when it returns what it read."""
    accepted = {name for model in _models(taken) for name in model.model_fields}
    answered = {name for model in _models(shown) for name in model.model_fields}
    return frozenset((answered | _ALWAYS_READ_ONLY) - accepted)


def read_only_message(field: str, path_params: Collection[str] = ()) -> str:
    """What to do instead of sending a read-only field."""
    if field in path_params:
        return f"`{field}` is read-only: it is in the path"
    return f"`{field}` is read-only: {_READ_ONLY_WHY.get(field, 'the server sets it')}"


def explain_read_only(
    items: list[dict[str, Any]],
    read_only: Collection[str],
    path_params: Collection[str] = (),
    *,
    prefix: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Validation errors with each refused top-level read-only field (or path parameter) explained."""
    depth = len(prefix) + 1
    for item in items:
        loc = item["loc"]
        if item["type"] != "extra_forbidden" or len(loc) != depth or tuple(loc[:-1]) != prefix:
            continue
        field = loc[-1]
        if isinstance(field, str) and (field in read_only or field in path_params):
            item["msg"] = read_only_message(field, path_params)
            item["type"] = "read_only"
    return items


def _route_read_only(request: Request) -> frozenset[str]:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return frozenset()
    return read_only_fields(route.response_model, route.body_field.field_info.annotation)


def problem_for_domain_error(error: de.DomainError, instance: str, *, source: str = "body") -> JSONResponse:
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    extra = dict(error.extra)
    if error.fields:
        extra["errors"] = _field_errors(error, source)
    return problem(status, error.code, error.detail, instance, title=error.title, headers=headers, **extra)


def _jsonable_loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def _unparsed(body: Any) -> bool:
    """FastAPI hands over raw bytes when it did not parse the body: its Content-Type was missing
    or not JSON (application/json, or any application/*+json)."""
    return isinstance(body, (bytes, bytearray)) and bool(body)


def unsupported_media_type(
    request: Request, expected: str = "JSON with `Content-Type: application/json`"
) -> JSONResponse:
    sent = (request.headers.get("content-type") or "")[:100]
    what = f"`Content-Type: {sent}` is not accepted" if sent.strip() else "The body has no `Content-Type`"
    return problem(415, "unsupported_media_type", f"{what}: send the body as {expected}.", request.url.path)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the API serves at this path, read off the OpenAPI paths (Starlette's
    405 names only the first matching route's methods)."""
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = [
            (re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path))), [m.upper() for m in item])
            for path, item in app.openapi().get("paths", {}).items()
        ]
        app.state.allowed_methods = table
    path = request.scope["path"]  # as routed: request.url.path would re-parse (and trim) it
    matches = [(pattern, methods) for pattern, methods in table if pattern.fullmatch(path)]
    # A literal path (/v1/deals/batch-upsert) wins over a template that also matches it.
    literal = [methods for pattern, methods in matches if "[^/]+" not in pattern.pattern]
    return sorted({m for methods in (literal or [m for _, m in matches]) for m in methods})


# SQLSTATE classes that mean "the server cannot serve us now": connection exceptions (08),
# insufficient resources such as too many clients (53), operator intervention (57P).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection refused, timed out or dropped: the database is down, not the request wrong."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # pool checkout timed out
        return True
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    name = type(exc).__name__
    return name in {"CannotConnectNowError", "ConnectionDoesNotExistError", "InterfaceError"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(de.DomainError)
    async def _domain(request: Request, exc: de.DomainError) -> JSONResponse:
        source = "query" if request.method in ("GET", "HEAD") else "body"
        return problem_for_domain_error(exc, request.url.path, source=source)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return problem(400, "malformed_json", "The request body is not valid JSON.", request.url.path)
        if any(err.get("loc", ("",))[0] == "path" for err in errors):
            allowed = _allowed_methods(app, request)
            if allowed and request.method not in allowed:  # e.g. PATCH on /v1/deals/batch-upsert
                return problem(
                    405,
                    "method_not_allowed",
                    "Method Not Allowed",
                    request.url.path,
                    headers={"Allow": ", ".join(allowed)},
                )
            # A path id that is not a UUID names nothing that exists.
            return problem_for_domain_error(de.NotFound("No such resource."), request.url.path)
        if _unparsed(exc.body):  # a body FastAPI did not parse: its media type is refused, whatever it holds
            return unsupported_media_type(request)
        items = [
            {
                "loc": _jsonable_loc(tuple(err.get("loc", ()))),
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in errors
        ]
        if any(item["type"] == "extra_forbidden" for item in items):
            items = explain_read_only(items, _route_read_only(request), request.path_params, prefix=("body",))
        return problem(
            422,
            "validation_error",
            "The request is invalid; see errors.",
            request.url.path,
            title="Validation error",
            errors=items,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = getattr(exc, "headers", None)
        if exc.status_code == 413:  # the body limit stopped FastAPI reading the body
            return payload_too_large(request.url.path, request.app.state.settings.max_body_bytes)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # JSON nested so deep that the parser gave up: far over the depth limit, not malformed.
            return problem(
                422,
                "validation_error",
                "The request is invalid; see errors.",
                request.url.path,
                title="Validation error",
                errors=[
                    {
                        "loc": ["body"],
                        "msg": f"JSON must not be nested deeper than {MAX_JSON_DEPTH} levels",
                        "type": "json_too_deep",
                    }
                ],
            )
        if exc.status_code == 400:  # FastAPI could not read the body (bad encoding, say)
            return problem(400, "malformed_json", "The request body is not valid JSON.", request.url.path)
        if exc.status_code == 404:
            detail = "No such resource."
        if exc.status_code == 405:
            headers = {"Allow": ", ".join(_allowed_methods(app, request))}
        return problem(exc.status_code, code, detail, request.url.path, headers=headers)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_unavailable(exc):
            raise exc  # a real bug: the outermost middleware logs it and answers 500
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem_for_domain_error(de.DatabaseUnavailable(), request.url.path)

    for exc_class in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError):
        app.add_exception_handler(exc_class, _database)


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid API key or sign-in token",
    403: "The caller may see the resource but lacks the right",
    404: "No such resource, or not visible to the caller",
    409: "Conflict with the resource's state",
    412: "Stale `If-Match`",
    422: "Invalid input (a bad or unknown body field or query parameter) or a broken rule",
    428: "No `If-Match`: send the `ETag` you read, or `*`",
    503: "The database is unreachable",
}

# The problem codes an operation may answer whatever it does, by status; app.main adds them to each
# operation's own (declared below, per route) when it renders the OpenAPI document.
GENERIC_CODES: dict[int, tuple[str, ...]] = {
    400: ("malformed_json",),
    401: (de.Unauthenticated.code,),
    404: (de.NotFound.code,),
    412: (de.VersionConflict.code,),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: ("validation_error",),
    428: (de.PreconditionRequired.code,),
    429: ("rate_limited",),
    503: (de.DatabaseUnavailable.code,),
}
# Every POST takes an Idempotency-Key (app/middleware/idempotency.py); a listing takes a cursor.
IDEMPOTENT_CODES: dict[int, tuple[str, ...]] = {
    409: (de.IdempotencyInProgress.code,),
    422: (de.IdempotencyKeyReused.code,),
}
CURSOR_CODES: dict[int, tuple[str, ...]] = {422: (de.InvalidCursor.code,)}

# The key under which problem_responses() hands an operation's own codes to the OpenAPI renderer.
CODES_KEY = "x-problem-codes"


def rate_limited_response() -> dict[str, Any]:
    """The OpenAPI 429 that every rate-limited operation declares (added once, in app.main)."""
    field = {"schema": {"type": "string"}}
    return {
        "description": "Too many requests for the API key or sign-in token, or for the client address without "
        "a valid one (`rate_limited`)",
        "headers": {
            "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}},
            "RateLimit": {
                "description": 'What is left of the budget (`"key"`, `"token"` or `"address"`), e.g. `"key";r=0;t=2`',
                **field,
            },
            "RateLimit-Policy": {"description": 'The budget, e.g. `"key";q=100;w=2`', **field},
        },
        "content": {
            PROBLEM_JSON: {
                "schema": problem_schema(["rate_limited"]),
                "examples": problem_examples(429, ["rate_limited"], "/v1/deals"),
            }
        },
    }


def problem_schema(codes: Collection[str]) -> dict[str, Any]:
    """A Problem whose ``code`` is one of ``codes``: generated SDKs can switch on them."""
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"type": "object", "properties": {"code": {"type": "string", "enum": sorted(codes)}}},
        ]
    }


def problem_responses(*declared: int | type[de.DomainError], auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring the problem documents a route may answer: a status (whose
    generic codes it answers), or a domain error (its status, with its code)."""
    generic = {422, 503, *((401,) if auth else ()), *(item for item in declared if isinstance(item, int))}
    codes: dict[int, set[str]] = {status: set(GENERIC_CODES.get(status, ())) for status in generic}
    for item in declared:
        if not isinstance(item, int):
            codes.setdefault(status_of(item), set()).add(item.code)
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            CODES_KEY: sorted(codes[status]),
        }
        for status in sorted(codes)
    }


# --- examples ---------------------------------------------------------------------
# Each problem response of the spec shows one example per code it declares, as the API renders it.

# The codes no domain error carries: rendered above and by the middleware, with these title and detail.
_HTTP_PROBLEMS: dict[str, tuple[str | None, str]] = {
    "malformed_json": (None, "The request body is not valid JSON."),
    "method_not_allowed": (None, "Method Not Allowed"),
    "payload_too_large": ("Content Too Large", "The request body is larger than 1048576 bytes."),
    "unsupported_media_type": (
        None,
        "`Content-Type: text/plain` is not accepted: send the body as JSON with `Content-Type: application/json`.",
    ),
    "rate_limited": (None, "Too many requests for this API key; retry after 2 s."),
    "validation_error": ("Validation error", "The request is invalid; see errors."),
}


def _domain_errors(kind: type[de.DomainError] = de.DomainError) -> Iterator[type[de.DomainError]]:
    yield kind
    for sub in kind.__subclasses__():
        yield from _domain_errors(sub)


def _domain_error(code: str) -> type[de.DomainError] | None:
    return next((kind for kind in _domain_errors() if kind.code == code), None)


def problem_example(
    status: int, code: str, instance: str, *, query: Collection[str] = (), body: bool = False
) -> dict[str, Any]:
    """A realistic problem document of ``code`` answered at ``instance``: what a request with a
    body (or, without one, the ``query`` parameters) would get."""
    extra: dict[str, Any] = {}
    if code in _HTTP_PROBLEMS:
        title, detail = _HTTP_PROBLEMS[code]
    else:
        kind = _domain_error(code)
        title = kind.title if kind is not None else None
        detail = title or HTTPStatus(status).phrase
    if code == de.NotFound.code:
        detail = "No such resource."
    elif code == "validation_error":
        if body:
            error = {"loc": ["body", "colour"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
        else:
            takes = ", ".join(f"`{p}`" for p in sorted(query)) or "none"
            error = {
                "loc": ["query", "colour"],
                "msg": f"Unknown query parameter `colour`; this operation takes {takes}",
                "type": "extra_forbidden",
            }
        extra["errors"] = [error]
    elif code == de.ReviewIncomplete.code:
        extra["missing"] = ["lessons", "seller_reflection"]
        detail = "Completion needs: lessons, seller_reflection."
    return problem_body(status, code, detail, instance, title=title, **extra)


def problem_examples(
    status: int, codes: Collection[str], instance: str, *, query: Collection[str] = (), body: bool = False
) -> dict[str, Any]:
    """OpenAPI ``examples`` of a problem response: one per code, named by it."""
    found = {}
    for code in sorted(codes):
        value = problem_example(status, code, instance, query=query, body=body)
        found[code] = {"summary": value["title"], "value": value}
    return found
