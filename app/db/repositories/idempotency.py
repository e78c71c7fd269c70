"""Stored responses for idempotent POSTs; rows live in the database so every worker agrees."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.models import IdempotencyKey, Member
from app.db.repositories.auth import ACTOR_BY_KEY, ACTOR_BY_TOKEN, actor_params, actor_statement
from app.db.repositories.reads import fetch_rows, fetch_rows_in
from app.db.types import DriverType
from app.domain.ids import uuid7
from app.domain.oidc import SignedIn

_t = IdempotencyKey.__table__
_members = Member.__table__

# The caller's member (the columns authentication reads) and, on PostgreSQL, this transaction's
# turn at (member, Idempotency-Key): a transaction-scoped advisory lock, so a duplicate sent while
# the first is still in flight is told so at once (409) instead of waiting on the first one's
# uncommitted row. The request then authenticates from this row: it needs no second connection
# while this one is held (a second checkout per request can starve the pool under load).
_KEY = sa.bindparam("the_key", type_=sa.String())
# (Its constants are written into the SQL: a statement sent on the driver binds named values only.)
_TURN = sa.func.pg_try_advisory_xact_lock(
    sa.func.hashtextextended(sa.cast(_members.c.id, sa.Text) + sa.literal_column("':'") + _KEY, sa.literal_column("0"))
)


# PostgreSQL: the caller, its turn and the claim in one statement, the first of the claim's
# transaction: this member's expired keys purged, and the row for (member, key) inserted, or
# taken over when it has expired, when the turn is this transaction's. ``claimed`` is 1 when the
# request is to run. SQLite sends the same steps one by one.
#
# The same statement, with the response, claims a key for a request already answered
# (``stored_claim``): the row is inserted complete, and a write of the request's (``ClaimedWrite``)
# rides in the same statement, conditioned on the claim.
_TS = sa.DateTime(timezone=True)
_NOW = sa.bindparam("key_now", type_=_TS)
_IN_PROGRESS: dict[str, Any] = {
    "completed": sa.false(),
    "response_status": sa.null(),
    "response_headers": sa.null(),
    "response_body": sa.null(),
}
_ANSWERED: dict[str, Any] = {
    "completed": sa.true(),
    "response_status": sa.bindparam("response_status", type_=sa.Integer()),
    "response_headers": sa.cast(sa.bindparam("response_headers", type_=sa.Text()), postgresql.JSONB()),
    "response_body": sa.bindparam("response_body", type_=DriverType("BYTEA")),
}


@dataclass(frozen=True)
class ClaimedWrite:
    """A request's one write, made by the statement that claims its key with its response: what
    must hold for it to be written (``guard``, checked before the claim is made), and its
    data-modifying CTEs, each written only when the claim was made (``ctes`` of the claim's CTE,
    which returns one row when it was)."""

    guard: sa.ColumnElement[bool]
    ctes: Callable[[sa.CTE], Sequence[sa.CTE]]


def _claim_statement(actor: sa.Select[Any], response: dict[str, Any], write: ClaimedWrite | None) -> sa.Select[Any]:
    me = actor.add_columns(_TURN.label("turn")).cte("me")
    mine = sa.select(me.c.id).where(me.c.turn).scalar_subquery()
    purged = sa.delete(_t).where(_t.c.member_id == mine, _t.c.expires_at < _NOW, _t.c.key != _KEY).cte("purged")
    row = postgresql.insert(_t).from_select(
        ["id", "member_id", "key", "fingerprint", "locked_at", "expires_at", *response],
        sa.select(
            sa.bindparam("key_row_id", type_=_t.c.id.type),
            me.c.id,
            _KEY,
            sa.bindparam("fingerprint", type_=sa.String()),
            _NOW,
            sa.bindparam("expires_at", type_=_TS),
            *response.values(),
        ).where(me.c.turn if write is None else sa.and_(me.c.turn, write.guard)),
    )
    claimed = (
        row.on_conflict_do_update(
            index_elements=["member_id", "key"],
            set_={
                "fingerprint": row.excluded.fingerprint,
                "locked_at": row.excluded.locked_at,
                "expires_at": row.excluded.expires_at,
                **{name: row.excluded[name] for name in response},
            },
            where=_t.c.expires_at < _NOW,
        )
        .returning(_t.c.id)
        .cte("claimed")
    )
    count = sa.select(sa.func.count()).select_from(claimed).scalar_subquery()
    if response is _IN_PROGRESS:
        return sa.select(me, count.label("claimed")).add_cte(purged)
    return sa.select(count.label("stored")).add_cte(purged, *(() if write is None else write.ctes(claimed)))


_ACTORS = ((False, ACTOR_BY_KEY), (True, ACTOR_BY_TOKEN))
_ACTOR_TURN_AND_CLAIM = {by_token: _claim_statement(actor, _IN_PROGRESS, None) for by_token, actor in _ACTORS}


def stored_claim(write: ClaimedWrite | None) -> dict[bool, sa.Select[Any]]:
    """The statements (by credential kind: True for a token) that claim a key for a request
    already answered, with its response and ``write``: one row, ``stored`` 1 when they did.
    Built once per kind of write, at import."""
    return {by_token: _claim_statement(actor, _ANSWERED, write) for by_token, actor in _ACTORS}


_STORED_CLAIM = stored_claim(None)


class DeferredClaim(Protocol):
    """An idempotent POST's claim of its key, made after the request has run (app/middleware/
    idempotency.py): by the statement that stores its response, which carries its write when it
    has one (``defer``); or, when the request needs a transaction, made first, when its unit of
    work is entered (``open``), in the transaction the request then runs in (``connection``)."""

    @property
    def connection(self) -> AsyncConnection | None: ...

    async def open(self) -> AsyncConnection: ...

    def defer(self, statements: dict[bool, sa.Select[Any]], params: dict[str, Any]) -> None: ...


_completed = (
    sa.update(_t)
    .where(_t.c.member_id == sa.bindparam("the_member", type_=_t.c.member_id.type), _t.c.key == _KEY)
    .values(
        completed=sa.true(),
        response_status=sa.bindparam("status", type_=sa.Integer()),
        response_headers=sa.cast(sa.bindparam("headers", type_=sa.Text()), postgresql.JSONB()),
        response_body=sa.bindparam("body", type_=DriverType("BYTEA")),
    )
    .returning(_t.c.id)
    .cte("completed")
)
_COMPLETE = sa.select(_completed.c.id)


async def claim(
    conn: AsyncConnection,
    credential: str | SignedIn,
    *,
    key: str,
    fingerprint: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> tuple[sa.Row[Any] | None, bool, bool]:
    """The claim's first statements, in the transaction they open on ``conn``: the caller's member
    as authentication reads it, from an API key's hash or a verified token (None when it names no
    active member); whether this transaction has the turn at (member, key) (False while another
    holds it); and whether it claimed (member, key) with an in-progress row (False: a row exists)."""
    params = _claim_params(credential, key=key, fingerprint=fingerprint, now=now, expires_at=expires_at)
    by_token = not isinstance(credential, str)
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(_ACTOR_TURN_AND_CLAIM[by_token], params)).first()
        if row is None:
            return None, True, False
        return row, bool(row.turn), bool(row.claimed)
    # SQLite runs one writer at a time: the turn is always this transaction's.
    row = (await conn.execute(actor_statement(credential), params)).first()
    if row is None:
        return None, True, False
    # Expired keys are gone for good: purge this member's before claiming.
    await conn.execute(sa.delete(_t).where(_t.c.member_id == row.id, _t.c.expires_at < now))
    stmt = (
        sqlite.insert(_t)
        .values(
            id=params["key_row_id"],
            member_id=row.id,
            key=key,
            fingerprint=fingerprint,
            completed=False,
            locked_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["member_id", "key"])
    )
    return row, True, bool((await conn.execute(stmt)).rowcount)


async def find(conn: AsyncConnection, member_id: uuid.UUID, key: str) -> sa.Row[Any] | None:
    stmt = sa.select(_t).where(_t.c.member_id == member_id, _t.c.key == key)
    return (await conn.execute(stmt)).first()


async def take_over(
    conn: AsyncConnection, *, member_id: uuid.UUID, key: str, stale_before: dt.datetime, now: dt.datetime
) -> bool:
    """Re-claim an unfinished request whose worker gave up; only one retry wins."""
    stmt = (
        sa.update(_t)
        .where(_t.c.member_id == member_id, _t.c.key == key, _t.c.completed.is_(False), _t.c.locked_at < stale_before)
        .values(locked_at=now)
    )
    return bool((await conn.execute(stmt)).rowcount)


async def complete(
    conn: AsyncConnection, *, member_id: uuid.UUID, key: str, status: int, headers: list[list[str]], body: bytes
) -> None:
    """Store the response with the claim (on PostgreSQL one statement on the driver, in the
    claim's transaction)."""
    if conn.dialect.name == "postgresql":
        params = {"the_member": member_id, "the_key": key, "status": status, "headers": orjson.dumps(headers).decode()}
        await fetch_rows_in(conn, _COMPLETE, params | {"body": body})
        return
    stmt = (
        sa.update(_t)
        .where(_t.c.member_id == member_id, _t.c.key == key)
        .values(completed=True, response_status=status, response_headers=headers, response_body=body)
    )
    await conn.execute(stmt)


def _claim_params(
    credential: str | SignedIn, *, key: str, fingerprint: str, now: dt.datetime, expires_at: dt.datetime
) -> dict[str, Any]:
    params = actor_params(credential) | {"the_key": key, "key_now": now, "key_row_id": uuid7()}
    return params | {"fingerprint": fingerprint, "expires_at": expires_at}


async def store(
    engine: AsyncEngine,
    credential: str | SignedIn,
    *,
    key: str,
    fingerprint: str,
    now: dt.datetime,
    expires_at: dt.datetime,
    status: int,
    headers: list[list[str]],
    body: bytes,
    write: tuple[dict[bool, sa.Select[Any]], dict[str, Any]] | None,
) -> bool:
    """Claim (member, key) for a request already answered, its response stored and its ``write``
    (statements by credential kind, and their parameters) made, in one statement, its own
    transaction (PostgreSQL). False, and nothing written, when the credential names nobody, the
    turn is another's, the key has a row that has not expired, or the write's guard fails."""
    params = _claim_params(credential, key=key, fingerprint=fingerprint, now=now, expires_at=expires_at)
    params |= {"response_status": status, "response_headers": orjson.dumps(headers).decode(), "response_body": body}
    statements = _STORED_CLAIM
    if write is not None:
        statements, write_params = write
        params |= write_params
    (row,) = await fetch_rows(engine, statements[not isinstance(credential, str)], params)
    return bool(row.stored)
