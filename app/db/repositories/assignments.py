from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Assignment
from app.domain.assignments import OPEN_STATUSES, AssignmentStatus


class AssignmentRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, assignment_id: uuid.UUID) -> Assignment | None:
        stmt = sa.select(Assignment).where(
            Assignment.id == assignment_id, Assignment.organization_id == organization_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_exists(self, deal_id: uuid.UUID, member_id: uuid.UUID, role: str | None = None) -> bool:
        cond = [
            Assignment.deal_id == deal_id,
            Assignment.member_id == member_id,
            Assignment.status.in_([str(s) for s in OPEN_STATUSES]),
        ]
        if role is not None:
            cond.append(Assignment.role == role)
        return bool((await self.session.execute(sa.select(sa.exists().where(*cond)))).scalar())

    async def is_active_coach(self, deal_id: uuid.UUID, member_id: uuid.UUID) -> bool:
        stmt = sa.select(
            sa.exists().where(
                Assignment.deal_id == deal_id,
                Assignment.member_id == member_id,
                Assignment.role == "coach",
                Assignment.status == AssignmentStatus.active,
            )
        )
        return bool((await self.session.execute(stmt)).scalar())

    async def list_page(
        self,
        organization_id: uuid.UUID,
        *,
        deal_id: uuid.UUID | None = None,
        member_id: uuid.UUID | None = None,
        status: AssignmentStatus | None = None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Assignment]:
        stmt = sa.select(Assignment).where(Assignment.organization_id == organization_id)
        if deal_id is not None:
            stmt = stmt.where(Assignment.deal_id == deal_id)
        if member_id is not None:
            stmt = stmt.where(Assignment.member_id == member_id)
        if status is not None:
            stmt = stmt.where(Assignment.status == status)
        if after is not None:
            stmt = stmt.where(Assignment.id > after)
        return list((await self.session.execute(stmt.order_by(Assignment.id).limit(limit))).scalars())

    async def lock(self, assignment_id: uuid.UUID) -> Assignment:
        stmt = (
            sa.select(Assignment)
            .where(Assignment.id == assignment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()
