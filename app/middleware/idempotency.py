"""Idempotency-Key for every POST, kept in the database so all workers and instances agree."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.repositories import idempotency as repo
from app.db.types import utcnow
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import DatabaseUnavailable, DomainError, IdempotencyInProgress, Unauthenticated
from app.domain.oidc import SignedIn, looks_like_token
from app.errors import is_database_unavailable, problem, problem_for_domain_error
from app.http.idempotency import (
    IDEMPOTENT_CALLER,
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
    def __init__(self, app: ASGIApp, *, ttl_hours: int = 24, lock_seconds: int = 60) -> None:
        self.app = app
        self.ttl = dt.timedelta(hours=ttl_hours)
        self.lock_seconds = lock_seconds

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
        replay_receive = _replaying(body, receive)
        if token is None:  # the app answers 401 itself
            await self.app(scope, replay_receive, send)
            return
        request_fp = fingerprint("POST", scope["path"], scope.get("query_string", b"").decode("latin-1"), body)
        engine: AsyncEngine = scope["app"].state.engine
        async with engine.connect() as conn:
            caller: Any = None
            try:
                credential = await _credential(scope, token)
                if credential is None:
                    early: Any = _UNAUTHENTICATED
                else:
                    caller, early = await self._claim(conn, credential, key, request_fp, scope["path"])
            except Exception as exc:
                await conn.rollback()
                if not is_database_unavailable(exc):
                    raise
                log.warning("database unavailable: %s", type(exc).__name__)
                early = problem_for_domain_error(DatabaseUnavailable(), scope["path"])
            if early is _UNAUTHENTICATED:
                await self.app(scope, replay_receive, send)
            elif early is not None:
                await early(scope, receive, send)
            else:
                await self._run_in_transaction(conn, caller, key, scope, replay_receive, send)

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

    async def _run_in_transaction(
        self, conn: AsyncConnection, caller: Any, key: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the request in the claim's transaction and commit its writes with its response.

        The response is held back until the commit: a client never reads an answer whose writes
        or stored replay could still be lost. A 5xx (or an exception) rolls everything back, the
        claim included, so a retry runs the request again."""
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        scope[IDEMPOTENT_TRANSACTION] = conn
        scope[IDEMPOTENT_CALLER] = caller
        try:
            await self.app(scope, receive, hold)
        finally:
            del scope[IDEMPOTENT_TRANSACTION], scope[IDEMPOTENT_CALLER]
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        status = start["status"] if start is not None else 500
        if status >= 500:  # not an answer: let a retry run again
            await conn.rollback()
        else:
            assert start is not None
            try:
                await repo.complete(
                    conn,
                    member_id=caller.id,
                    key=key,
                    status=status,
                    headers=[
                        [k.decode("latin-1"), v.decode("latin-1")]
                        for k, v in start.get("headers", [])
                        if k.lower() not in _NOT_REPLAYED
                    ],
                    body=b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"),
                )
                await conn.commit()
            except Exception as exc:
                await conn.rollback()
                if not is_database_unavailable(exc):
                    raise
                log.warning("database unavailable: %s", type(exc).__name__)
                await problem_for_domain_error(DatabaseUnavailable(), scope["path"])(scope, receive, send)
                return
        for message in messages:
            await send(message)


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
