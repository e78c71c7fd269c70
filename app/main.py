"""The application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from app.db.engine import make_engine, make_sessionmaker
from app.db.reads import Reads
from app.errors import (
    CODES_KEY,
    CURSOR_CODES,
    GENERIC_CODES,
    IDEMPOTENT_CODES,
    PROBLEM_JSON,
    Problem,
    install_error_handlers,
    problem_examples,
    problem_schema,
    rate_limited_response,
)
from app.http.cursors import Cursors
from app.middleware.body_limit import BodyLimitMiddleware
from app.middleware.idempotency import IdempotencyMiddleware, claimed_with_response_paths
from app.middleware.lane import PlainLane, plain_routes
from app.middleware.rate_limit import EXEMPT_PATHS, RateLimitMiddleware, RateLimits
from app.middleware.request_context import RequestContextMiddleware
from app.observability import configure_logging
from app.openapi import add_links, declare_required_headers, restore_example_nulls
from app.routers import (
    analytics,
    api_keys,
    approvals,
    assignments,
    calls,
    catalogs,
    coaching,
    commitments,
    deals,
    development,
    events,
    integrations,
    members,
    ops,
    org_settings,
    reviews,
    strategy,
    tasks,
    webhooks,
)
from app.schemas.acme import PATH_EXAMPLES
from app.services.inbox_applier import ApplierConfig, InboxApplier
from app.services.oidc import IdentityProviders
from app.services.webhook_dispatcher import Dispatcher, DispatcherConfig
from app.settings import Settings

API_VERSION = "1.0.0"

log = logging.getLogger("dealcoach.main")

DESCRIPTION = """\
Dealcoach holds deals, role assignments, customer calls with managers'
observations, leadership approvals and closed-lost reviews, and enforces the
rules of good sales leadership: the seller owns the deal and its strategy.

Authenticate with `Authorization: Bearer <api key>`, or, from a front end, with a token from the
organisation's identity provider (OpenID Connect; see `oidc_issuer` in the settings): a JWT whose
`iss` is the organisation's issuer and `aud` its audience acts as the organisation's active member
with the token's `email`. Browsers may call the API from the origins in `DEALCOACH_CORS_ORIGINS`.

Errors are `application/problem+json` documents with a stable `code`. Lists are
keyset-paginated with `limit` and `cursor`. Every POST accepts an
`Idempotency-Key`; PATCH and PUT honour `If-Match` (the strategy's
whole-document PUT requires it: 428 `precondition_required`); a GET of one
object answers 304 to `If-None-Match` with its current `ETag`.

Strict input: a query parameter an operation does not declare, an unknown body
field or a read-only one (each named, with what to do instead) answers 422
`validation_error`; a body needs `Content-Type: application/json` (415
`unsupported_media_type`).

Limits: a body over 1 MiB answers 413 `payload_too_large`; JSON nested deeper
than 32 levels, or a list over 1,000 items, answers 422 `validation_error`;
dates (`YYYY-MM-DD`) and timestamps (RFC 3339 with an offset) are strings, never
numbers. A cursor is opaque and valid only for the listing and organisation that
issued it (422 `invalid_cursor` otherwise). Each API key or sign-in token (and each client
address without a valid one) has a rate limit: over it, 429 `rate_limited` with
`Retry-After`; every response carries the IETF `RateLimit` and `RateLimit-Policy` fields.
"""

TAGS = [
    {"name": "deals", "description": "Opportunities, owned by sellers; CRM sync by external reference"},
    {"name": "strategy", "description": "The deal owner's strategy, its versions, and others' suggestions"},
    {"name": "assignments", "description": "Roles on deals: requested by the owner or proposed to the owner"},
    {"name": "calls", "description": "Customer calls led by the owner, with agreed roles and interventions"},
    {
        "name": "observations",
        "description": "Observers' notes on a call: strengths first, a few improvements, a debrief",
    },
    {"name": "approvals", "description": "Leadership sign-off on explicit deal terms, never silently reversed"},
    {"name": "closed-lost-reviews", "description": "The review conversation every lost deal opens"},
    {"name": "commitments", "description": "What sellers committed to in debriefs and reviews, tracked until done"},
    {"name": "development", "description": "Each member's skill profile: strengths, improvements, loss gaps, trend"},
    {"name": "analytics", "description": "Closed-lost, coaching and team-skill figures, computed in SQL"},
    {"name": "members", "description": "The organisation's people, their roles and reporting lines"},
    {"name": "tasks", "description": "Everything waiting on the caller, across deals, each linked to what to act on"},
    {"name": "api-keys", "description": "Keys that act as a member; shown once, stored hashed"},
    {"name": "skills", "description": "The organisation's skill catalog"},
    {"name": "loss-reasons", "description": "The organisation's loss-reason catalog"},
    {"name": "settings", "description": "Organisation settings that shape the rules"},
    {"name": "events", "description": "The immutable change feed"},
    {"name": "webhooks", "description": "Signed deliveries of the feed's events to your endpoints"},
    {
        "name": "integrations",
        "description": "CRM integrations (webhooks in): each CRM's events stored in an inbox, then applied "
        "to deals under the same rules as any other write",
    },
    {"name": "operations", "description": "Health, readiness and metrics"},
]


# The order the API documents its operations in (openapi/openapi.json).
ROUTERS = (
    members,
    tasks,
    api_keys,
    catalogs,
    org_settings,
    deals,
    strategy,
    assignments,
    calls,
    approvals,
    reviews,
    analytics,
    coaching,
    commitments,
    development,
    events,
    webhooks,
    integrations,
    ops,
)
# The order a request is matched in. FastAPI tries every route of every router before the one
# that answers (a regex each, twice for the router that matches), so the routers of the hot
# reads (GET /v1/me, GET /v1/deals, GET /v1/deals/{id}) come first; no path of theirs overlaps
# another router's.
_HOT_FIRST = (members, deals, tasks)


# What a page on an allowed origin may send and read. Credentials are bearer tokens the page sends
# itself, never cookies: no Access-Control-Allow-Credentials.
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Idempotent-Replayed",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-ID",
]


def _documented(routes: list[BaseRoute]) -> list[BaseRoute]:
    position = {id(module.router): i for i, module in enumerate(ROUTERS)}
    return sorted(routes, key=lambda route: position.get(id(getattr(route, "original_router", None)), -1))


def _operation_id(route: APIRoute) -> str:
    return route.name


def served_app() -> FastAPI:
    """The app as `dealcoach serve` runs it in each worker. What building it made (modules, routes,
    schemas, compiled statements: long-lived) is moved out of the garbage collector's way
    (`gc.freeze`), so that a full collection walks only what requests made, not the whole app each
    time: p99 of GET /v1/me 150 -> 74 ms, of POST /v1/deals 363 -> 270 ms (bench/README.md)."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    rate_limits = RateLimits.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.uses_development_secret_key and not settings.is_sqlite:
            log.warning(
                "DEALCOACH_SECRET_KEY is the development default: anyone can forge pagination cursors. "
                "Set a long random secret, the same on every worker and instance."
            )
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        stop = asyncio.Event()
        dispatcher: Dispatcher | None = None
        task: asyncio.Task[None] | None = None
        if settings.webhooks_dispatcher == "on":
            dispatcher = Dispatcher(app.state.sessionmaker, DispatcherConfig.from_settings(settings))
            task = asyncio.create_task(dispatcher.run(stop))
        app.state.webhook_dispatcher = dispatcher
        applier: InboxApplier | None = None
        applying: asyncio.Task[None] | None = None
        if settings.inbox_applier == "on":
            applier = InboxApplier(app.state.sessionmaker, ApplierConfig.from_settings(settings))
            applying = asyncio.create_task(applier.run(stop))
        app.state.inbox_applier = applier
        app.state.reads = Reads(engine)
        app.state.identity_providers = IdentityProviders(app.state.reads, allow_insecure=settings.oidc_allow_insecure)
        try:
            yield
        finally:
            await app.state.identity_providers.close()
            stop.set()
            if task is not None and dispatcher is not None:
                await task
                await dispatcher.close()
            if applying is not None and applier is not None:
                await applying
                await applier.close()
            await engine.dispose()
            if rate_limits is not None:
                await rate_limits.close()

    # Swagger UI's script, stylesheet and favicon come from the installed fastapi-offline package
    # (served under /static-offline-docs), not a CDN: /docs renders without internet access.
    app = FastAPIOffline(
        title="Dealcoach API",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Metrics are Prometheus (app/observability.py) and nothing configures OpenTelemetry; left
        # on, FastAPI's native telemetry looks up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.cursors = Cursors(settings.secret_key.get_secret_value())
    install_error_handlers(app)
    for module in (*_HOT_FIRST, *(m for m in ROUTERS if m not in _HOT_FIRST)):
        app.include_router(module.router)
    app.webhooks.include_router(webhooks.payload_docs)
    # Innermost: everything above applies to what it serves as to any request.
    routes = [r for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]
    app.add_middleware(PlainLane, routes=plain_routes(routes))
    app.add_middleware(
        IdempotencyMiddleware,
        ttl_hours=settings.idempotency_ttl_hours,
        lock_seconds=settings.idempotency_lock_seconds,
        claimed_with_response=claimed_with_response_paths(routes),
    )
    # Outside idempotency: an oversized body is refused before it is read, stored or authenticated.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    if rate_limits is not None:  # outermost but for the request context: a flood is refused before any work
        app.add_middleware(RateLimitMiddleware, limits=rate_limits)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    if settings.cors_origins:
        # Outermost: a preflight is answered before any other work (no rate limit, no auth), and
        # every response an allowed origin gets carries the CORS fields, problem documents (401,
        # 422, 429, the last-resort 500) included, so a front end can read them.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def declare_problem_codes(method: str, operation: dict[str, Any], path: str = "/") -> None:
    """Each problem response's ``code`` as an enum: the codes the route declared, and those every
    operation of its kind may answer (a POST's idempotency, a listing's cursor, a status's own);
    each code shown by an example as the operation at ``path`` answers it."""
    query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    instance = re.sub(r"{(\w+)}", lambda m: PATH_EXAMPLES.get(m[1], m[0]), path)
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        if not status.isdigit() or int(status) < 400 or PROBLEM_JSON not in content:
            continue
        code = int(status)
        # A route's own responses carry their codes; those added above, the codes of their status.
        codes = set(response.pop(CODES_KEY, None) or GENERIC_CODES.get(code, ()))
        if method == "post":
            codes |= set(IDEMPOTENT_CODES.get(code, ()))
        if "cursor" in query:
            codes |= set(CURSOR_CODES.get(code, ()))
        content[PROBLEM_JSON]["schema"] = problem_schema(codes)
        content[PROBLEM_JSON]["examples"] = problem_examples(
            code, codes, instance, query=query, body="requestBody" in operation
        )
        listed = ", ".join(f"`{c}`" for c in sorted(codes))
        response["description"] = f"{response['description'].split(' (`')[0]} ({listed})"


_UNKNOWN_QUERY_PARAMETER = {
    "description": "A query parameter this operation does not declare (`validation_error`)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=_documented(app.routes),
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        separate_input_output_schemas=True,
    )
    restore_example_nulls(schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    from app.schemas.deals import DealBatchRecord
    from app.schemas.integrations import HubSpotEvent, PipedriveWebhook

    for model in (Problem, DealBatchRecord, PipedriveWebhook, HubSpotEvent):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        for name, sub in definition.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = definition
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in problem.pop("$defs", {}).items():
        components[name] = definition
    components["Problem"] = problem
    for path_item in schema.get("webhooks", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)  # the receiver's side: not ours to validate
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            # Every operation refuses query parameters it does not declare (app/http/routes.py).
            operation["responses"].setdefault("422", _UNKNOWN_QUERY_PARAMETER)
            if "requestBody" in operation:
                operation["responses"].setdefault(
                    "400",
                    {
                        "description": "The body is not JSON (`malformed_json`)",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    },
                )
                operation["responses"].setdefault(
                    "413",
                    {
                        "description": "The body is over `DEALCOACH_MAX_BODY_BYTES`, 1 MiB by default (`payload_too_large`)",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    },
                )
                operation["responses"].setdefault(
                    "415",
                    {
                        "description": "A body without `Content-Type: application/json` (`unsupported_media_type`)",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    },
                )
            operation["responses"] = dict(sorted(operation["responses"].items()))
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status >= "400" and "application/problem+json" in content:
                    content.pop("application/json", None)
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            declare_problem_codes(method, operation, path)
    schema["components"].setdefault("responses", {})["RateLimited"] = rate_limited_response()
    for path, path_item in schema.get("paths", {}).items():
        if path not in EXEMPT_PATHS:
            for operation in path_item.values():
                operation["responses"]["429"] = {"$ref": "#/components/responses/RateLimited"}
                operation["responses"] = dict(sorted(operation["responses"].items()))
    declare_required_headers(schema)
    add_links(schema, app.routes)
    app.openapi_schema = schema
    return schema
