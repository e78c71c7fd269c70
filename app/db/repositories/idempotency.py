"""Stored responses for idempotent POSTs; rows live in the database so every worker agrees."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyKey
from app.domain.ids import uuid7

_t = IdempotencyKey.__table__


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
    # Expired keys are gone for good: purge this member's before claiming.
    await session.execute(sa.delete(_t).where(_t.c.member_id == member_id, _t.c.expires_at < now))
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(_t)
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
    stmt = (
        sa.update(_t)
        .where(_t.c.member_id == member_id, _t.c.key == key)
        .values(completed=True, response_status=status, response_headers=headers, response_body=body)
    )
    await session.execute(stmt)


async def release(session: AsyncSession, *, member_id: uuid.UUID, key: str) -> None:
    await session.execute(sa.delete(_t).where(_t.c.member_id == member_id, _t.c.key == key, _t.c.completed.is_(False)))
