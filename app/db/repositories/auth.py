"""The one query that turns an API key into the member it acts as."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import ApiKey, Member, Organization

# Key, member and organisation in one round trip: auth is on every request's path.
_ACTOR_BY_KEY = (
    sa.select(
        ApiKey.__table__.c.id.label("api_key_id"),
        *Member.__table__.c,
        Organization.__table__.c.name.label("organization_name"),
    )
    .select_from(ApiKey.__table__)
    .join(Member.__table__, Member.__table__.c.id == ApiKey.__table__.c.member_id)
    .join(Organization.__table__, Organization.__table__.c.id == Member.__table__.c.organization_id)
    .where(
        ApiKey.__table__.c.key_hash == sa.bindparam("key_hash"),
        ApiKey.__table__.c.revoked_at.is_(None),
        Member.__table__.c.active.is_(True),
    )
)


async def find_actor_row(engine: AsyncEngine, key_hash: str) -> sa.Row[Any] | None:
    """On PostgreSQL the lookup runs in autocommit: no BEGIN/ROLLBACK round trips around it."""
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        result = await conn.execute(_ACTOR_BY_KEY, {"key_hash": key_hash})
        return result.first()


_MEMBER_BY_KEY = sa.select(ApiKey.__table__.c.member_id).where(
    ApiKey.__table__.c.key_hash == sa.bindparam("key_hash"), ApiKey.__table__.c.revoked_at.is_(None)
)


async def find_member_id_by_key(session: AsyncSession, key_hash: str) -> Any | None:
    return (await session.execute(_MEMBER_BY_KEY, {"key_hash": key_hash})).scalar_one_or_none()
