"""Stored responses for idempotent POSTs; rows live in the database so every worker agrees."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey, Member
from app.db.repositories.auth import ACTOR_BY_KEY, ACTOR_BY_TOKEN, actor_params
from app.db.repositories.reads import fetch_rows_in
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
_TURN = sa.func.pg_try_advisory_xact_lock(
    sa.func.hashtextextended(sa.cast(_members.c.id, sa.Text) + ":" + sa.bindparam("key"), 0)
)
_ACTOR_AND_TURN = {
    (by_token, dialect): actor.add_columns(turn.label("turn"))
    for by_token, actor in ((False, ACTOR_BY_KEY), (True, ACTOR_BY_TOKEN))
    for dialect, turn in (("postgresql", _TURN), ("sqlite", sa.true()))  # SQLite: one writer at a time anyway
}


async def actor_and_turn(
    session: AsyncSession, credential: str | SignedIn, key: str
) -> tuple[sa.Row[Any] | None, bool]:
    """The caller's member as authentication reads it, from an API key's hash or a verified token
    (None when it names no active member), and whether this transaction may run the request: False
    while another holds the same (member, key)."""
    params = actor_params(credential)
    stmt = _ACTOR_AND_TURN[not isinstance(credential, str), session.bind.dialect.name]
    row = (await session.execute(stmt, {**params, "key": key})).first()
    if row is None:
        return None, True
    return row, bool(row.turn)


# PostgreSQL: the claim in one statement, sent on the driver within the claim's transaction
# (app/db/repositories/reads.py ``fetch_rows_in``): this member's expired keys purged, and the
# row for (member, key) inserted, or taken over when it has expired. One row: claimed.
_TS = sa.DateTime(timezone=True)
_MEMBER = sa.bindparam("the_member", type_=_t.c.member_id.type)
_KEY = sa.bindparam("the_key", type_=sa.String())
_NOW = sa.bindparam("now", type_=_TS)
_purged = sa.delete(_t).where(_t.c.member_id == _MEMBER, _t.c.expires_at < _NOW, _t.c.key != _KEY).cte("purged")
_claim_row = postgresql.insert(_t).values(
    id=sa.bindparam("id", type_=_t.c.id.type),
    member_id=_MEMBER,
    key=_KEY,
    fingerprint=sa.bindparam("fingerprint", type_=sa.String()),
    completed=sa.false(),
    locked_at=_NOW,
    expires_at=sa.bindparam("expires_at", type_=_TS),
)
_claimed = (
    _claim_row.on_conflict_do_update(
        index_elements=["member_id", "key"],
        set_={
            "fingerprint": _claim_row.excluded.fingerprint,
            "completed": sa.false(),
            "locked_at": _claim_row.excluded.locked_at,
            "expires_at": _claim_row.excluded.expires_at,
            "response_status": sa.null(),
            "response_headers": sa.null(),
            "response_body": sa.null(),
        },
        where=_t.c.expires_at < _NOW,
    )
    .returning(_t.c.id)
    .cte("claimed")
)
_CLAIM = sa.select(_claimed.c.id).add_cte(_purged)


_completed = (
    sa.update(_t)
    .where(_t.c.member_id == _MEMBER, _t.c.key == _KEY)
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
    session: AsyncSession,
    *,
    member_id: uuid.UUID,
    key: str,
    fingerprint: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> bool:
    """Insert an in-progress row for (member, key); False when one already exists."""
    if session.bind.dialect.name == "postgresql":
        params = {"id": uuid7(), "the_member": member_id, "the_key": key, "fingerprint": fingerprint, "now": now}
        rows = await fetch_rows_in(await session.connection(), _CLAIM, params | {"expires_at": expires_at})
        return bool(rows)
    # Expired keys are gone for good: purge this member's before claiming.
    await session.execute(sa.delete(_t).where(_t.c.member_id == member_id, _t.c.expires_at < now))
    stmt = (
        sqlite.insert(_t)
        .values(
            id=uuid7(),
            member_id=member_id,
            key=key,
            fingerprint=fingerprint,
            completed=False,
            locked_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["member_id", "key"])
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def find(session: AsyncSession, member_id: uuid.UUID, key: str) -> sa.Row[Any] | None:
    stmt = sa.select(_t).where(_t.c.member_id == member_id, _t.c.key == key)
    return (await session.execute(stmt)).first()


async def take_over(
    session: AsyncSession, *, member_id: uuid.UUID, key: str, stale_before: dt.datetime, now: dt.datetime
) -> bool:
    """Re-claim an unfinished request whose worker gave up; only one retry wins."""
    stmt = (
        sa.update(_t)
        .where(_t.c.member_id == member_id, _t.c.key == key, _t.c.completed.is_(False), _t.c.locked_at < stale_before)
        .values(locked_at=now)
    )
    return bool((await session.execute(stmt)).rowcount)


async def complete(
    session: AsyncSession, *, member_id: uuid.UUID, key: str, status: int, headers: list[list[str]], body: bytes
) -> None:
    if session.bind.dialect.name == "postgresql":
        params = {"the_member": member_id, "the_key": key, "status": status, "headers": orjson.dumps(headers).decode()}
        await fetch_rows_in(await session.connection(), _COMPLETE, params | {"body": body})
        return
    stmt = (
        sa.update(_t)
        .where(_t.c.member_id == member_id, _t.c.key == key)
        .values(completed=True, response_status=status, response_headers=headers, response_body=body)
    )
    await session.execute(stmt)


async def release(session: AsyncSession, *, member_id: uuid.UUID, key: str) -> None:
    await session.execute(sa.delete(_t).where(_t.c.member_id == member_id, _t.c.key == key, _t.c.completed.is_(False)))
