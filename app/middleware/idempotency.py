"""Idempotency-Key for every POST, kept in the database so all workers and instances agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.repositories import auth as auth_repo
from app.db.repositories import idempotency as repo
from app.db.types import utcnow
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import DomainError, IdempotencyInProgress
from app.errors import problem, problem_for_domain_error
from app.http.idempotency import MAX_KEY_LENGTH, Decision, decide, fingerprint

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
        replay_receive = _replaying(body, receive)
        if token is None:  # the app answers 401 itself
            await self.app(scope, replay_receive, send)
            return

        sessionmaker: async_sessionmaker[AsyncSession] = scope["app"].state.sessionmaker
        request_fp = fingerprint("POST", scope["path"], scope.get("query_string", b"").decode("latin-1"), body)
        now = utcnow()
        async with sessionmaker() as session, session.begin():
            member_id = await auth_repo.find_member_id_by_key(session, hash_key(token))
            if member_id is None:
                claimed = None
            else:
                claimed = await repo.claim(
                    session, member_id=member_id, key=key, fingerprint=request_fp, now=now, expires_at=now + self.ttl
                )
        if member_id is None:
            await self.app(scope, replay_receive, send)
            return
        if not claimed:
            try:
                stored = await self._existing(sessionmaker, member_id, key, request_fp, now)
            except DomainError as error:
                await problem_for_domain_error(error, scope["path"])(scope, receive, send)
                return
            if stored is not None:
                await _replay(stored, send)
                return
        await self._run_and_store(sessionmaker, member_id, key, scope, replay_receive, send)

    async def _existing(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        member_id: Any,
        key: str,
        request_fp: str,
        now: dt.datetime,
    ) -> Any | None:
        """The stored response to replay, or None when this request takes over an abandoned one."""
        async with sessionmaker() as session, session.begin():
            stored = await repo.find(session, member_id, key)
            if stored is None:  # expired and purged between our claim and now: treat as in flight
                return None
            decision = decide(stored, request_fp, now=now, lock_seconds=self.lock_seconds)
            if decision is Decision.replay:
                return stored
            stale_before = now - dt.timedelta(seconds=self.lock_seconds)
            if not await repo.take_over(session, member_id=member_id, key=key, stale_before=stale_before, now=now):
                raise IdempotencyInProgress()
            return None

    async def _run_and_store(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        member_id: Any,
        key: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        status: int | None = None
        response_headers: list[list[str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() not in _NOT_REPLAYED
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await self._release(sessionmaker, member_id, key)
            raise
        async with sessionmaker() as session, session.begin():
            if status is not None and status < 500:
                await repo.complete(
                    session,
                    member_id=member_id,
                    key=key,
                    status=status,
                    headers=response_headers,
                    body=b"".join(chunks),
                )
            else:  # a server-side failure is not an answer: let a retry run again
                await repo.release(session, member_id=member_id, key=key)

    async def _release(self, sessionmaker: async_sessionmaker[AsyncSession], member_id: Any, key: str) -> None:
        async with sessionmaker() as session, session.begin():
            await repo.release(session, member_id=member_id, key=key)


def _bearer(header: bytes | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and looks_like_key(token) else None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
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
