"""The query that turns an API key into the member it acts as."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey, Member, Organization

# Key, member and organisation in one round trip: auth is on every request's path
# (run by app/db/repositories/reads.py, in autocommit).
ACTOR_BY_KEY = (
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


_MEMBER_BY_KEY = sa.select(ApiKey.__table__.c.member_id).where(
    ApiKey.__table__.c.key_hash == sa.bindparam("key_hash"), ApiKey.__table__.c.revoked_at.is_(None)
)


async def find_member_id_by_key(session: AsyncSession, key_hash: str) -> Any | None:
    return (await session.execute(_MEMBER_BY_KEY, {"key_hash": key_hash})).scalar_one_or_none()
