"""Idempotency-Key for every POST, kept in the database so all workers and instances agree."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.repositories import idempotency as repo
from app.db.types import utcnow
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import DatabaseUnavailable, DomainError, IdempotencyInProgress, Unauthenticated
from app.domain.oidc import SignedIn, looks_like_token
from app.errors import is_database_unavailable, problem, problem_for_domain_error
from app.http.idempotency import (
    CLAIMED_WITH_RESPONSE,
    IDEMPOTENT_CALLER,
    IDEMPOTENT_CLAIM,
    IDEMPOTENT_TRANSACTION,
    MAX_KEY_LENGTH,
    SIGNED_IN,
    Decision,
    decide,
    fingerprint,
)

log = logging.getLogger("dealcoach")

# Headers that belong to one delivery of a response, not to the response itself.
_NOT_REPLAYED = {b"x-request-id", b"date", b"server"}


class IdempotencyMiddleware:
    """``claimed_with_response``: the paths of the operations whose key, on PostgreSQL, is claimed
    after they have run (``_Deferred``); any other idempotent POST claims its key first, in the
    transaction it then runs in."""

    def __init__(
        self, app: ASGIApp, *, ttl_hours: int = 24, lock_seconds: int = 60, claimed_with_response: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.ttl = dt.timedelta(hours=ttl_hours)
        self.lock_seconds = lock_seconds
        self.claimed_with_response = frozenset(claimed_with_response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            response = problem(
                422,
                "validation_error",
                "Idempotency-Key must be 1 to 255 characters.",
                scope["path"],
                title="Validation error",
                errors=[
                    {
                        "loc": ["header", "Idempotency-Key"],
                        "msg": "must be 1 to 255 characters",
                        "type": "string_too_short" if not key else "string_too_long",
                    }
                ],
            )
            await response(scope, receive, send)
            return
        token = _bearer(headers.get(b"authorization"))
        body = await _read_body(receive)
        if body is None:
            # The client went away before sending its whole body: nothing to run, and nothing to
            # claim (a key claimed with part of a body would refuse the whole body's retry).
            return
        if token is None:  # the app answers 401 itself
            await self.app(scope, _replaying(body, receive), send)
            return
        request_fp = fingerprint("POST", scope["path"], scope.get("query_string", b"").decode("latin-1"), body)
        engine: AsyncEngine = scope["app"].state.engine
        request = _Request(scope, receive, send, body, key, request_fp)
        if scope["path"] in self.claimed_with_response and engine.dialect.name == "postgresql":
            try:
                credential = await _credential(scope, token)
            except Exception as exc:
                await self._unavailable(exc, request)
                return
            if credential is None:  # a token refused: the app refuses it itself (401)
                await self.app(scope, request.receive(), send)
                return
            if await self._claimed_after(engine, credential, request):
                return
            await self._claimed_first(engine, token, request, verified=credential)
            return
        await self._claimed_first(engine, token, request)

    async def _claimed_first(
        self, engine: AsyncEngine, token: str, request: _Request, *, verified: str | SignedIn | None = None
    ) -> None:
        """Claim the key, then run the request in the claim's transaction (``verified``: the
        credential, when the request already read it from ``token``)."""
        scope = request.scope
        async with engine.connect() as conn:
            caller: Any = None
            try:
                credential = verified if verified is not None else await _credential(scope, token)
                if credential is None:
                    early: Any = _UNAUTHENTICATED
                else:
                    caller, early = await self._claim(conn, credential, request.key, request.fingerprint, scope["path"])
            except Exception as exc:
                await conn.rollback()
                await self._unavailable(exc, request)
                return
            if early is _UNAUTHENTICATED:
                await self.app(scope, request.receive(), request.send)
            elif early is not None:
                await early(scope, request.receive(), request.send)
            else:
                scope[IDEMPOTENT_TRANSACTION] = conn
                scope[IDEMPOTENT_CALLER] = caller
                messages: list[Message] = []
                try:
                    await self.app(scope, request.receive(), _holding(messages))
                finally:
                    del scope[IDEMPOTENT_TRANSACTION], scope[IDEMPOTENT_CALLER]
                await self._commit(conn, caller.id, request, messages)

    async def _claimed_after(self, engine: AsyncEngine, credential: str | SignedIn, request: _Request) -> bool:
        """Run the request, then claim the key by the statement that stores its response and makes
        its write, when the unit of work handed it over (one round trip, its own transaction); or,
        when the request entered its unit of work, in the transaction claimed then. False when the
        key was not claimed after the request ran (its turn was another's, it has a row, or the
        write did not fit): nothing was written, and the request is to run with its key claimed
        first, which answers for each of those cases."""
        scope = request.scope
        claim = _Deferred(self, engine, credential, request)
        messages: list[Message] = []
        scope[IDEMPOTENT_CLAIM] = claim
        try:
            try:
                await self.app(scope, request.receive(), _holding(messages))
            except _ClaimAnswered:
                if claim.early is _UNAUTHENTICATED:
                    await self.app(scope, request.receive(), request.send)
                else:
                    await claim.early(scope, request.receive(), request.send)
                return True
            finally:
                del scope[IDEMPOTENT_CLAIM]
            if claim.connection is not None:
                await self._commit(claim.connection, claim.caller.id, request, messages)
                return True
            status, headers, body = _response_of(messages)
            if status < 500:  # a 5xx is not an answer: nothing is stored, and nothing was written
                now = utcnow()
                try:
                    stored = await repo.store(
                        engine,
                        credential,
                        key=request.key,
                        fingerprint=request.fingerprint,
                        now=now,
                        expires_at=now + self.ttl,
                        status=status,
                        headers=headers,
                        body=body,
                        write=claim.write,
                    )
                except Exception as exc:
                    await self._unavailable(exc, request)
                    return True
                if not stored:
                    return False
            for message in messages:
                await request.send(message)
            return True
        finally:
            if claim.connection is not None:
                await claim.connection.close()

    async def _claim(
        self, conn: AsyncConnection, credential: str | SignedIn, key: str, request_fp: str, path: str
    ) -> tuple[Any, Any]:
        """Open the request's transaction and claim (member, key) in it: the caller's member row,
        and None when the request is to run, or else what to answer instead (a replay, 409,
        422), or _UNAUTHENTICATED for a credential that names no active member."""
        now = utcnow()
        caller, turn, claimed = await repo.claim(
            conn, credential, key=key, fingerprint=request_fp, now=now, expires_at=now + self.ttl
        )
        if caller is None:
            await conn.rollback()
            return None, _UNAUTHENTICATED
        member_id = caller.id
        try:
            if not turn:
                raise IdempotencyInProgress()
            if claimed:
                return caller, None
            stored = await repo.find(conn, member_id, key)
            if stored is None:  # expired and purged by another request between our claim and now
                raise IdempotencyInProgress()
            decision = decide(stored, request_fp, now=now, lock_seconds=self.lock_seconds)
            if decision is Decision.take_over:
                stale_before = now - dt.timedelta(seconds=self.lock_seconds)
                if await repo.take_over(conn, member_id=member_id, key=key, stale_before=stale_before, now=now):
                    return caller, None
                raise IdempotencyInProgress()
        except DomainError as error:
            await conn.rollback()
            return caller, problem_for_domain_error(error, path)
        await conn.rollback()
        return caller, _Replay(stored)

    async def _commit(self, conn: AsyncConnection, member_id: Any, request: _Request, messages: list[Message]) -> None:
        """Commit the request's writes, run in the claim's transaction, with its response, then
        send it. The response is held back until the commit: a client never reads an answer whose
        writes or stored replay could still be lost. A 5xx (or an exception) rolls everything back,
        the claim included, so a retry runs the request again."""
        status, headers, body = _response_of(messages)
        if status >= 500:  # not an answer: let a retry run again
            await conn.rollback()
        else:
            try:
                await repo.complete(
                    conn, member_id=member_id, key=request.key, status=status, headers=headers, body=body
                )
                await conn.commit()
            except Exception as exc:
                await conn.rollback()
                await self._unavailable(exc, request)
                return
        for message in messages:
            await request.send(message)

    @staticmethod
    async def _unavailable(exc: Exception, request: _Request) -> None:
        """Answer 503 for a database out of reach; anything else is raised again."""
        if not is_database_unavailable(exc):
            raise exc
        log.warning("database unavailable: %s", type(exc).__name__)
        scope = request.scope
        await problem_for_domain_error(DatabaseUnavailable(), scope["path"])(scope, request.receive(), request.send)


@dataclass(frozen=True, slots=True)
class _Request:
    """An idempotent POST, its body read."""

    scope: Scope
    raw_receive: Receive
    send: Send
    body: bytes
    key: str
    fingerprint: str

    def receive(self) -> Receive:
        """A receive that gives the body first (for each run of the app)."""
        return _replaying(self.body, self.raw_receive)


class _ClaimAnswered(Exception):
    """Raised into the app by ``_Deferred.open`` when the key has an answer already (a replay, a
    refusal): the middleware sends that answer instead of the app's. No exception handler of the
    app's takes it, so it reaches the middleware as raised."""


class _Deferred:
    """A request's claim, made after it has run (app/db/repositories/idempotency.py
    ``DeferredClaim``): with its response and the write it ``defer``red, or, when it enters its
    unit of work, first (``open``), as ``_claimed_first`` does."""

    def __init__(
        self, middleware: IdempotencyMiddleware, engine: AsyncEngine, credential: str | SignedIn, request: _Request
    ) -> None:
        self.middleware = middleware
        self.engine = engine
        self.credential = credential
        self.request = request
        self.connection: AsyncConnection | None = None
        self.caller: Any = None
        self.early: Any = None
        self.write: tuple[dict[bool, Any], dict[str, Any]] | None = None

    def defer(self, statements: dict[bool, Any], params: dict[str, Any]) -> None:
        assert self.write is None and self.connection is None, "one write is handed to a claim, before it is made"
        self.write = (statements, params)

    async def open(self) -> AsyncConnection:
        assert self.write is None, "a request that handed its write to the claim writes nothing else"
        request = self.request
        conn = await self.engine.connect()
        try:
            self.caller, early = await self.middleware._claim(
                conn, self.credential, request.key, request.fingerprint, request.scope["path"]
            )
        except BaseException:
            await conn.rollback()
            await conn.close()
            raise
        if early is not None:
            await conn.close()
            self.early = early
            raise _ClaimAnswered()
        self.connection = conn
        return conn


def claimed_with_response_paths(routes: Iterable[APIRoute]) -> list[str]:
    """The paths of the POST operations marked ``claimed_with_response`` (app/http/idempotency.py);
    a marked operation whose path has parameters is a programming error (ValueError)."""
    paths = []
    for route in routes:
        if not getattr(route.endpoint, CLAIMED_WITH_RESPONSE, False):
            continue
        if route.methods != {"POST"} or route.param_convertors:
            raise ValueError(f"{route.path}: only a POST whose path has no parameters is claimed with its response")
        paths.append(route.path)
    return paths


def _holding(messages: list[Message]) -> Send:
    async def hold(message: Message) -> None:
        messages.append(message)

    return hold


def _response_of(messages: list[Message]) -> tuple[int, list[list[str]], bytes]:
    """The status, the headers to replay and the body of the response held in ``messages`` (500
    when the app sent none)."""
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:
        return 500, [], b""
    headers = [
        [k.decode("latin-1"), v.decode("latin-1")]
        for k, v in start.get("headers", [])
        if k.lower() not in _NOT_REPLAYED
    ]
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], headers, body


class _Replay:
    """The stored response of the first request with this key, sent again."""

    def __init__(self, stored: Any) -> None:
        self.stored = stored

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _replay(self.stored, send)


_UNAUTHENTICATED = object()


def _bearer(header: bytes | None) -> str | None:
    """The bearer API key or identity provider's token; None for anything else."""
    if not header:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and (looks_like_key(token) or looks_like_token(token)) else None


async def _credential(scope: Scope, token: str) -> str | SignedIn | None:
    """An API key's hash (checked with the claim), or what a token was verified as (kept in the
    scope for the request's own authentication); None for a token refused, which the app then
    refuses itself (401)."""
    if looks_like_key(token):
        return hash_key(token)
    try:
        signed_in = await scope["app"].state.identity_providers.sign_in(token)
    except Unauthenticated:
        return None
    scope[SIGNED_IN] = signed_in
    return signed_in  # type: ignore[no-any-return]


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnected before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(stored: Any, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.response_headers or []]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": stored.response_status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.response_body or b""})
