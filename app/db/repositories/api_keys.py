from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey


class ApiKeyRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        stmt = sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(self, member_id: uuid.UUID, *, after: uuid.UUID | None, limit: int) -> list[ApiKey]:
        stmt = sa.select(ApiKey).where(ApiKey.member_id == member_id)
        if after is not None:
            stmt = stmt.where(ApiKey.id > after)
        return list((await self.session.execute(stmt.order_by(ApiKey.id).limit(limit))).scalars())
