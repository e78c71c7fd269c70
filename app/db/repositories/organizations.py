"""Organisation rows: the settings that shape the rules."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Organization


class OrganizationRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, *, for_update: bool = False) -> Organization:
        stmt = sa.select(Organization).where(Organization.id == organization_id)  # type: ignore[arg-type]
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one()
