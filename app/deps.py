"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPBearer
from pydantic import WithJsonSchema
from starlette.requests import HTTPConnection

from app.db.uow import UnitOfWork
from app.domain.members import Actor
from app.http.conditional import IfMatch, parse_if_match
from app.http.cursors import MAX_CURSOR_LENGTH, Cursors
from app.http.idempotency import IDEMPOTENT_CALLER, IDEMPOTENT_CLAIM, IDEMPOTENT_TRANSACTION, SIGNED_IN
from app.openapi import REQUIRED_LATER
from app.schemas.expand import Expand
from app.services.auth import AuthContext, Caller, authenticate, is_sign_in_token, sign_in
from app.services.pagination import CallerPageRequest, PageRequest


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    # An idempotent POST runs in the transaction that holds its Idempotency-Key and its response,
    # or hands its one write to the claim made with its response (app/middleware/idempotency.py).
    scope = request.scope
    uow = UnitOfWork(
        request.app.state.sessionmaker, within=scope.get(IDEMPOTENT_TRANSACTION), claim=scope.get(IDEMPOTENT_CLAIM)
    )
    try:
        yield uow
    finally:
        await uow.close()


# scope="function": the session closes when the handler returns, before the response is
# sent, so its connection goes back to the pool as early as possible.
UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


class ApiKeyBearer(HTTPBearer):
    """The bearer credential. An API key is read but not yet checked: the service checks it in
    the same statement as the read it serves (one round trip). A token from an organisation's
    identity provider is verified here (its member is found by that same statement). Still an
    HTTPBearer, so OpenAPI documents it."""

    async def __call__(self, request: HTTPConnection) -> Caller:  # type: ignore[override]
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        credential = token.strip() if scheme.lower() == "bearer" else None
        state, scope = request.app.state, request.scope
        if is_sign_in_token(credential):
            # An idempotent POST's token was verified as its Idempotency-Key was claimed.
            caller = await sign_in(state.reads, state.identity_providers, credential, signed_in=scope.get(SIGNED_IN))
        else:
            caller = Caller.of(state.reads, credential)
        # An idempotent POST's caller was read with its claim, on the connection it holds.
        member = scope.get(IDEMPOTENT_CALLER)
        return caller if member is None else replace(caller, member=member)


_bearer = ApiKeyBearer(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="An API key (`Authorization: Bearer dc_...`), or a token (a JWT) from the organisation's "
    "identity provider, whose `iss` is the organisation's `oidc_issuer` and `aud` its `oidc_audience` "
    "(see `PATCH /v1/settings`); it acts as the organisation's active member with the token's `email`.",
)

# The hot reads take the caller and authenticate inside their one statement.
CallerDep = Annotated[Caller, Depends(_bearer)]


async def get_auth(caller: CallerDep) -> AuthContext:
    return await authenticate(caller)


AuthDep = Annotated[AuthContext, Depends(get_auth)]


async def get_actor(caller: CallerDep) -> Actor:
    return (await authenticate(caller)).actor


ActorDep = Annotated[Actor, Depends(get_actor)]


# The cursor's length is documented, not validated: a longer one is refused by the codec as
# invalid_cursor, like any other cursor we did not issue.
Cursor = Annotated[str, WithJsonSchema({"type": "string", "maxLength": MAX_CURSOR_LENGTH})]


Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
CursorQuery = Annotated[
    Cursor | None, Query(description="`next_cursor` of the previous page, as given (422 invalid_cursor otherwise)")
]


async def get_page(request: Request, actor: ActorDep, limit: Limit = 50, cursor: CursorQuery = None) -> PageRequest:
    """A page request whose cursors are sealed for the caller's organisation."""
    cursors: Cursors = request.app.state.cursors
    return PageRequest(limit=limit, cursor=cursor, codec=cursors.for_organization(actor.organization_id))


PageDep = Annotated[PageRequest, Depends(get_page)]


async def get_caller_page(request: Request, limit: Limit = 50, cursor: CursorQuery = None) -> CallerPageRequest:
    """A page request for a hot read, which learns the caller's organisation in its one statement."""
    return CallerPageRequest(limit=limit, cursor=cursor, cursors=request.app.state.cursors)


CallerPageDep = Annotated[CallerPageRequest, Depends(get_caller_page)]


# What a read includes besides the objects (`?expand=members`). A plain query parameter, not a
# dependency: the hot reads that take it pay nothing more for it when it is absent.
Expansions = Annotated[
    list[Expand] | None,
    Query(
        max_length=len(Expand),
        description="`members`: the response also carries `members`, the id, name and role of every "
        "member it names, by id (one map for a whole page)",
    ),
]


async def get_if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=1024,
            description='The `ETag` you read (`"3"`); a stale one answers 412 version_conflict',
        ),
    ] = None,
) -> frozenset[int] | None:
    return parse_if_match(if_match)


IfMatchDep = Annotated[frozenset[int] | None, Depends(get_if_match)]


async def get_required_if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=1024,
            description='Required: the `ETag` you read (`"3"`), or `*` to replace whatever is there; '
            "without it 428 precondition_required, a stale one 412 version_conflict",
            json_schema_extra={REQUIRED_LATER: True},
        ),
    ] = None,
) -> IfMatch:
    # Absent is not refused here: the service refuses it after visibility and permission (404/403 first).
    return IfMatch(given=if_match is not None, versions=parse_if_match(if_match))


RequiredIfMatchDep = Annotated[IfMatch, Depends(get_required_if_match)]


async def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retrying with the same key and body within 24 h replays the first response",
        ),
    ] = None,
) -> None:
    """Documents the header; the idempotency middleware acts on it before the handler runs."""


IdempotencyDeps = [Depends(idempotency_key)]
