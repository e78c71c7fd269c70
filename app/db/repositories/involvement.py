"""First involvement of a member in a deal: written once, read by coaching analytics."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import DealInvolvement, Organization
from app.db.types import utcnow

_t = DealInvolvement.__table__


class InvolvementRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def late_stages(self, organization_id: uuid.UUID) -> list[str]:
        stmt = sa.select(Organization.late_stages).where(Organization.id == organization_id)
        return list((await self.session.execute(stmt)).scalar_one())

    async def record_first(
        self,
        *,
        organization_id: uuid.UUID,
        deal_id: uuid.UUID,
        member_id: uuid.UUID,
        kind: str,
        stage: str,
        late: bool,
    ) -> bool:
        """Record the member's first involvement in the deal; False when there was one already."""
        insert = postgresql.insert if self.session.bind.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(_t)
            .values(
                deal_id=deal_id,
                member_id=member_id,
                organization_id=organization_id,
                kind=kind,
                stage=stage,
                late=late,
                first_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["deal_id", "member_id"])
        )
        return bool((await self.session.execute(stmt)).rowcount)
