from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Approval
from app.domain.approvals import ApprovalStatus


class ApprovalRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, approval_id: uuid.UUID) -> Approval | None:
        stmt = sa.select(Approval).where(Approval.id == approval_id, Approval.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self,
        organization_id: uuid.UUID,
        *,
        deal_id: uuid.UUID,
        status: ApprovalStatus | None = None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Approval]:
        stmt = sa.select(Approval).where(Approval.organization_id == organization_id, Approval.deal_id == deal_id)
        if status is not None:
            stmt = stmt.where(Approval.status == status)
        if after is not None:
            stmt = stmt.where(Approval.id > after)
        return list((await self.session.execute(stmt.order_by(Approval.id).limit(limit))).scalars())

    async def lock(self, approval_id: uuid.UUID) -> Approval:
        stmt = (
            sa.select(Approval)
            .where(Approval.id == approval_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()
