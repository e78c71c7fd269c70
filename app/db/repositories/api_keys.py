from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey


async def get(session: AsyncSession, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    stmt = sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == organization_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_page(
    session: AsyncSession, member_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[ApiKey]:
    stmt = sa.select(ApiKey).where(ApiKey.member_id == member_id)
    if after is not None:
        stmt = stmt.where(ApiKey.id > after)
    return list((await session.execute(stmt.order_by(ApiKey.id).limit(limit))).scalars())
